import { IotcError } from './errors.js';
import type { LocalReceivers } from './receivers.js';
import type { Role } from './sharing.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/types.js';

/**
 * Keeps this node's connections in step with their device's key, existence and sharing, whoever changed them
 * (this node, another one, the CLI): the store's device events are read every `pollMs`, and each device named
 * is rechecked.
 */
export class DeviceWatch {
  private lastDeviceEvent = 0;
  private pollTimer: NodeJS.Timeout | null = null;
  private polling: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly receivers: LocalReceivers,
    private readonly log: Logger,
    private readonly pollMs: number,
    /** The device is gone: called after its connections here were revoked. */
    private readonly deleted: (deviceId: string) => Promise<void>,
  ) {}

  async start(): Promise<void> {
    this.lastDeviceEvent = await this.store.lastDeviceEventSeq();
  }

  /** Starts reading device events; start() must have resolved. */
  poll(): void {
    this.pollTimer = setInterval(() => void this.pollDeviceEvents(), this.pollMs);
    this.pollTimer.unref();
  }

  stop(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
  }

  /** Resolves once the read of device events under way (if any) is done. */
  settled(): Promise<void> {
    return this.polling;
  }

  /** Closes the connections that authenticated with a key that no longer holds, or whose user lost access. */
  async recheck(deviceId: string): Promise<void> {
    const entry = this.receivers.entry(deviceId);
    if (!entry) return;
    const current = await this.store.getDevice(deviceId);
    for (const { receiver, keyHash } of [...entry.device, ...entry.client]) {
      if (!current) receiver.revoked(new IotcError('E_DEVICE_DELETED'));
      else if (receiver.grant) {
        // A user's connection holds no key: it lasts as long as the user's access, with the role they have now.
        const role = current.userId === receiver.grant.userId ? 'owner' : await this.store.sharing.roleOf(deviceId, receiver.grant.userId);
        if (role) {
          (receiver.grant as { role: Role }).role = role;
          continue;
        }
        receiver.revoked(new IotcError('E_FORBIDDEN', 'The owner stopped sharing this device with you'));
      } else if (keyHash !== current.keyHash) receiver.revoked(new IotcError('E_KEY_ROTATED'));
      else continue;
      // A deleted device keeps no cursor.
      this.receivers.remove(deviceId, receiver, current !== null);
    }
    if (!current) await this.deleted(deviceId);
  }

  private pollDeviceEvents(): Promise<void> {
    this.polling = this.polling.then(async () => {
      try {
        const events = await this.store.deviceEventsSince(this.lastDeviceEvent);
        for (const e of events) {
          this.lastDeviceEvent = e.seq;
          await this.recheck(e.deviceId);
        }
      } catch (err) {
        this.log.warn({ err }, 'could not read device events; will retry');
      }
    });
    return this.polling;
  }
}
