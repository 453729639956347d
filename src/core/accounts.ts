import { z } from 'zod';
import { IotcError, overCap } from './errors.js';
import { describeIssues } from './messages.js';
import { hashPassword, hashSecret, newDeviceId, newDeviceKey, verifyPassword } from './secrets.js';
import type { Relay } from './relay.js';
import type { Device, DeviceStatus, SharedDevice, ShareRole, Store, User } from '../store/types.js';

export const signUpInput = z.object({
  name: z.string({ error: 'name is required' }).trim().min(1, 'name is required').max(100, 'name must be at most 100 characters'),
  email: z.string({ error: 'email is required' }).trim().toLowerCase().max(254, 'email is too long').email('email is not a valid address'),
  password: z.string({ error: 'password is required' }).min(8, 'password must be at least 8 characters').max(1024, 'password is too long'),
});
export const deviceName = z.string({ error: 'name is required' }).trim().min(1, 'name is required').max(100, 'name must be at most 100 characters');

/** A device as its owner sees it: never the key hash. */
export interface DeviceInfo {
  id: string;
  name: string;
  createdAt: number;
  lastSeen: number | null;
  online: boolean;
  clients: number;
  /** Present on a device another account shared with this user: their role and the owner's email. */
  shared?: { role: ShareRole; owner: string };
}

export interface NewDevice extends DeviceInfo {
  /** Shown once: only its hash is kept. */
  key: string;
}

function check<T>(schema: z.ZodType<T>, input: unknown): T {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new IotcError('E_VALIDATION', describeIssues(parsed.error));
  return parsed.data;
}

const info = (d: Device | DeviceStatus): DeviceInfo => ({
  id: d.id,
  name: d.name,
  createdAt: d.createdAt,
  lastSeen: d.lastSeen,
  online: 'online' in d ? d.online : false,
  clients: 'clients' in d ? d.clients : 0,
});

const sharedInfo = (d: SharedDevice): DeviceInfo => ({ ...info(d), shared: { role: d.role, owner: d.ownerEmail } });

/** Limits the account service enforces; 0 or absent = unlimited. */
export interface AccountLimits {
  maxDevicesPerUser?: number;
  /** How long an invitation stays valid, in ms; 0 or absent = until used. */
  inviteTtl?: number;
}

/** The oldest creation time of an invitation still valid at `now` (0: all of them). */
export function invitationsValidSince(inviteTtl: number | undefined, now: number): number {
  return inviteTtl ? now - inviteTtl : 0;
}

/** Users and their devices. Every device operation takes the acting user and answers E_NOT_FOUND for another user's device. */
export class Accounts {
  constructor(private readonly store: Store, private readonly relay: Relay | null, private readonly limits: AccountLimits = {}) {}

  /** A new account; invitations waiting for its email become shares. */
  async signUp(input: unknown): Promise<User> {
    const { name, email, password } = check(signUpInput, input);
    const user = await this.store.createUser({ name, email, passwordHash: await hashPassword(password) });
    const now = Date.now();
    await this.store.sharing.acceptInvitations(user.id, user.email, now, invitationsValidSince(this.limits.inviteTtl, now));
    return user;
  }

  /** Null for an unknown email or a wrong password alike. */
  async logIn(email: string, password: string): Promise<User | null> {
    const user = await this.store.getUserByEmail(String(email).trim().toLowerCase());
    if (!user) {
      // Spend the same time as a real check, so response times do not reveal which emails exist.
      await verifyPassword(password, DUMMY_HASH);
      return null;
    }
    return (await verifyPassword(password, user.passwordHash)) ? user : null;
  }

  async renameUser(userId: number, name: unknown): Promise<void> {
    const clean = check(signUpInput.shape.name, name);
    if (!(await this.store.updateUser(userId, { name: clean }))) throw new IotcError('E_NOT_FOUND', 'No such user');
  }

  /** Needs the current password; E_AUTH when it is wrong. Other logins are for the caller to end (it knows which one to keep). */
  async changePassword(userId: number, current: string, next: unknown): Promise<void> {
    const password = check(signUpInput.shape.password, next);
    await this.checkPassword(userId, current);
    await this.store.updateUser(userId, { passwordHash: await hashPassword(password) });
  }

  /** Needs the password; deletes every device (closing their connections, as deleteDevice does), then the account. */
  async deleteAccount(userId: number, password: string): Promise<void> {
    await this.checkPassword(userId, password);
    for (const device of await this.store.listDevices(userId)) await this.deleteDevice(userId, device.id);
    await this.store.deleteUser(userId);
  }

  /** Whether this is the user's password (to confirm an action when already logged in). */
  async passwordMatches(userId: number, password: string): Promise<boolean> {
    const user = await this.store.getUser(userId);
    return user !== null && (await verifyPassword(String(password), user.passwordHash));
  }

  private async checkPassword(userId: number, password: string): Promise<void> {
    if (!(await this.passwordMatches(userId, password))) throw new IotcError('E_AUTH', 'Wrong password');
  }

  async userByEmail(email: string): Promise<User> {
    const user = await this.store.getUserByEmail(String(email).trim().toLowerCase());
    if (!user) throw new IotcError('E_NOT_FOUND', `No user with email ${email}`);
    return user;
  }

  /** E_LIMIT once the user has IOTC_MAX_DEVICES_PER_USER devices: the store counts and inserts under one lock, on every node. */
  async createDevice(userId: number, name: unknown): Promise<NewDevice> {
    const clean = check(deviceName, name);
    const max = this.limits.maxDevicesPerUser ?? 0;
    const key = newDeviceKey();
    // 36^20 ids make a collision practically impossible; retry anyway rather than fail a user on one.
    for (let attempt = 0; ; attempt++) {
      try {
        const device = await this.store.createDevice({ id: newDeviceId(), userId, name: clean, keyHash: hashSecret(key) }, max);
        return { ...info(device), key };
      } catch (err) {
        if (!(err instanceof IotcError && err.code === 'E_CONFLICT') || attempt >= 3) {
          throw overCap(err, `This account has reached its limit of ${max} devices (set by --max-devices-per-user / IOTC_MAX_DEVICES_PER_USER): delete a device you no longer use first`);
        }
      }
    }
  }

  /** The user's own devices, then those shared with them (marked `shared`). */
  async listDevices(userId: number): Promise<DeviceInfo[]> {
    const own = (await this.store.listDevices(userId)).map(info);
    return [...own, ...(await this.store.sharing.sharedWith(userId, Date.now())).map(sharedInfo)];
  }

  async getDevice(userId: number, deviceId: string): Promise<DeviceInfo> {
    const status = (await this.listDevices(userId)).find((d) => d.id === deviceId);
    if (!status) throw new IotcError('E_NOT_FOUND', 'No such device');
    return status;
  }

  /** Null user = an administrator (the CLI on the server's own machine). */
  async owned(userId: number | null, deviceId: string): Promise<Device> {
    const device = await this.store.getDevice(String(deviceId));
    if (!device || (userId !== null && device.userId !== userId)) throw new IotcError('E_NOT_FOUND', 'No such device');
    return device;
  }

  /** New key at once; connections holding the old one are closed on every node. */
  async rotateKey(userId: number | null, deviceId: string): Promise<NewDevice> {
    const device = await this.owned(userId, deviceId);
    const key = newDeviceKey();
    await this.store.setDeviceKey(device.id, hashSecret(key));
    await this.relay?.deviceChanged(device.id, 'rotated');
    return { ...info(device), key };
  }

  async renameDevice(userId: number | null, deviceId: string, name: unknown): Promise<void> {
    const device = await this.owned(userId, deviceId);
    await this.store.renameDevice(device.id, check(deviceName, name));
  }

  /** Removes the device and all its readings; its connections are closed on every node. */
  async deleteDevice(userId: number | null, deviceId: string): Promise<void> {
    const device = await this.owned(userId, deviceId);
    await this.store.deleteDevice(device.id);
    await this.store.sharing.deleteLinksOf('device', device.id);
    await this.relay?.deviceChanged(device.id, 'deleted');
  }
}

const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
