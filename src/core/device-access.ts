import type { Accounts } from './accounts.js';
import { IotcError } from './errors.js';
import type { Device } from '../store/types.js';

/**
 * Who may see and who may write a device, for the dashboards (their widgets, saving them, their live
 * connections). Today: the owner only. The one place to point at sharing's roles (viewer reads, operator
 * and owner write) once they exist; every dashboard check goes through these two functions.
 */
export interface DeviceAccess {
  /** The device if the user may read it; E_NOT_FOUND otherwise (the same for another's device and none at all). */
  canRead(userId: number, deviceId: string): Promise<Device>;
  /** The device if the user may write to it as the client side; E_NOT_FOUND / E_FORBIDDEN otherwise. */
  canWrite(userId: number, deviceId: string): Promise<Device>;
  /** Whether the user may write, for showing a control enabled or not; never throws for "no". */
  writable(userId: number, deviceId: string): Promise<boolean>;
}

export function ownerAccess(accounts: Pick<Accounts, 'owned'>): DeviceAccess {
  const canRead = (userId: number, deviceId: string) => accounts.owned(userId, deviceId);
  return {
    canRead,
    canWrite: canRead,
    async writable(userId, deviceId) {
      try {
        await canRead(userId, deviceId);
        return true;
      } catch (err) {
        if (err instanceof IotcError && (err.code === 'E_NOT_FOUND' || err.code === 'E_FORBIDDEN')) return false;
        throw err;
      }
    },
  };
}
