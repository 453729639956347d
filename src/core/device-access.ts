import type { Sharing } from './sharing.js';
import { IotcError } from './errors.js';
import type { Device } from '../store/types.js';

/**
 * Who may see and who may write a device, for the dashboards (their widgets, saving them, their live
 * connections): the sharing room's roles (a viewer reads; an operator and the owner write). Every dashboard
 * check goes through these functions.
 */
export interface DeviceAccess {
  /** The device if the user may read it; E_NOT_FOUND otherwise (the same for another's device and none at all). */
  canRead(userId: number, deviceId: string): Promise<Device>;
  /** The device if the user may write to it as the client side; E_NOT_FOUND / E_FORBIDDEN otherwise. */
  canWrite(userId: number, deviceId: string): Promise<Device>;
  /** Whether the user may write, for showing a control enabled or not; never throws for "no". */
  writable(userId: number, deviceId: string): Promise<boolean>;
}

/** The devices a user owns or has been shared, each as its role allows. */
export function sharedAccess(sharing: Pick<Sharing, 'authorize'>): DeviceAccess {
  return withWritable(
    async (userId, deviceId) => (await sharing.authorize(userId, deviceId, 'read')).device,
    async (userId, deviceId) => (await sharing.authorize(userId, deviceId, 'write')).device,
  );
}

function withWritable(canRead: DeviceAccess['canRead'], canWrite: DeviceAccess['canWrite']): DeviceAccess {
  return {
    canRead,
    canWrite,
    async writable(userId, deviceId) {
      try {
        await canWrite(userId, deviceId);
        return true;
      } catch (err) {
        if (err instanceof IotcError && (err.code === 'E_NOT_FOUND' || err.code === 'E_FORBIDDEN')) return false;
        throw err;
      }
    },
  };
}
