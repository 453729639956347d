import crypto from 'node:crypto';
import { z } from 'zod';
import { IotcError, overCap } from './errors.js';
import { describeIssues } from './messages.js';
import { hashSecret } from './secrets.js';
import type { Relay } from './relay.js';
import { SHARE_ROLES } from '../store/types.js';
import type { Device, Invitation, PublicLink, Share, ShareRole, Store } from '../store/types.js';

/** What a caller wants to do with a device. */
export type Action = 'read' | 'write' | 'call' | 'admin';
/** Who a caller is to a device: its owner (or a holder of its key), a shared account, or a public link. */
export type Role = 'owner' | ShareRole | 'public';

const ALLOWED: Record<Role, readonly Action[]> = {
  owner: ['read', 'write', 'call', 'admin'],
  operator: ['read', 'write', 'call'],
  viewer: ['read'],
  public: ['read'],
};

/** Whether a role may do an action: the one table every door's check comes down to. */
export function roleAllows(role: Role, action: Action): boolean {
  return ALLOWED[role].includes(action);
}

const WHAT: Record<Action, string> = {
  read: 'read this device',
  write: "write this device's values",
  call: "call this device's methods",
  admin: 'manage this device',
};

/** The refusal a door sends when the role does not allow the action. */
export function forbidden(role: Role, action: Action): IotcError {
  const hint = action === 'admin' ? 'only its owner may' : role === 'viewer' ? 'ask the owner for the operator role' : 'not with this access';
  return new IotcError('E_FORBIDDEN', `A ${role} may not ${WHAT[action]}: ${hint}`);
}

/** A user's access to a device, once checked. `role` may change while a connection is open (the relay updates it). */
export interface Grant {
  device: Device;
  userId: number;
  role: Role;
}

export const shareRole = z.enum(SHARE_ROLES as [ShareRole, ...ShareRole[]], { error: 'role must be "viewer" or "operator"' });
const email = z.string({ error: 'email is required' }).trim().toLowerCase().max(254, 'email is too long').email('email is not a valid address');
export const shareInput = z.object({ email, role: shareRole }, { error: 'the body must be {"email":…,"role":"viewer"|"operator"}' });
export const unshareInput = z.object({ email }, { error: 'the body must be {"email":…}' });

function check<T>(schema: z.ZodType<T>, input: unknown): T {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new IotcError('E_VALIDATION', describeIssues(parsed.error));
  return parsed.data;
}

/** Public link tokens: `iotp_` + 32 letters and digits (a prefix secret scanners can spot, as API tokens have). */
export const LINK_PREFIX = 'iotp_';
/**
 * Fixed limits of a hub, so that no account can fill the store with rows through sharing: people a device is
 * shared with or has invited (one row each), and public links per device (or other target).
 */
export const MAX_PEOPLE_PER_DEVICE = 100;
export const MAX_LINKS_PER_TARGET = 20;

const LINK_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function newLinkToken(): string {
  let out = LINK_PREFIX;
  for (const byte of crypto.randomBytes(32)) out += LINK_ALPHABET[byte % 62];
  return out;
}

export interface ShareResult {
  /** 'shared' when the email has an account (effective at once), 'invited' when the share waits for sign-up. */
  state: 'shared' | 'invited';
  email: string;
  role: ShareRole;
}

export interface PublicLinkInfo {
  id: number;
  scope: string;
  target: string;
  createdAt: number;
}

const linkInfo = (l: PublicLink): PublicLinkInfo => ({ id: l.id, scope: l.scope, target: l.target, createdAt: l.createdAt });

/**
 * Who may do what with a device. Every door asks `authorize` ("may user U read / write / call / administer
 * device D?") before acting; a device key is the device's own and is not a user (the doors treat its holder as owner).
 */
/** An invitation as its owner sees it: expired ones stay listed (to withdraw or renew) but give no access. */
export interface PendingInvitation extends Invitation {
  expiresAt: number | null;
  expired: boolean;
}

export class Sharing {
  constructor(
    private readonly store: Store,
    private readonly relay: Relay | null,
    /** How long an invitation waits for its sign-up, in ms (0 = until accepted or withdrawn). */
    private readonly inviteTtl = 0,
  ) {}

  /**
   * The user's grant on the device if the role allows the action. No access at all is E_NOT_FOUND (the same
   * answer as an unknown device, so ids cannot be probed); access without this action is E_FORBIDDEN.
   */
  async authorize(userId: number, deviceId: string, action: Action): Promise<Grant> {
    const grant = await this.grantOf(userId, deviceId);
    if (!grant) throw new IotcError('E_NOT_FOUND', 'No such device');
    if (!roleAllows(grant.role, action)) throw forbidden(grant.role, action);
    return grant;
  }

  /** The user's grant on the device, or null when they have none. */
  async grantOf(userId: number, deviceId: string): Promise<Grant | null> {
    const device = await this.store.getDevice(String(deviceId).slice(0, 64));
    if (!device) return null;
    if (device.userId === userId) return { device, userId, role: 'owner' };
    const role = await this.store.sharing.roleOf(device.id, userId);
    return role ? { device, userId, role } : null;
  }

  /** The role a user now has on a device (null: none), for the relay's recheck of live connections. */
  async currentRole(userId: number, deviceId: string): Promise<Role | null> {
    return (await this.grantOf(userId, deviceId))?.role ?? null;
  }

  /**
   * Shares the device with the account of `email`, or invites the email when it has no account yet. Changing
   * the role of an existing share takes effect on open connections at once, on every node.
   */
  async share(ownerId: number | null, deviceId: string, input: unknown): Promise<ShareResult> {
    const { email: address, role } = check(shareInput, input);
    const device = await this.owned(ownerId, deviceId);
    const user = await this.store.getUserByEmail(address);
    if (user && user.id === device.userId) throw new IotcError('E_VALIDATION', 'This is the owner\'s own email: a device cannot be shared with its owner');
    const now = Date.now();
    const full = `This device is already shared with or waiting on ${MAX_PEOPLE_PER_DEVICE} people, the most this hub allows: withdraw a share or an invitation first`;
    if (!user) {
      await this.store.sharing.invite(device.id, address, role, now, MAX_PEOPLE_PER_DEVICE).catch((err) => {
        throw overCap(err, full);
      });
      return { state: 'invited', email: address, role };
    }
    await this.store.sharing.share(device.id, user.id, role, now, MAX_PEOPLE_PER_DEVICE).catch((err) => {
      throw overCap(err, full);
    });
    await this.relay?.deviceChanged(device.id, 'access');
    return { state: 'shared', email: user.email, role };
  }

  /** Withdraws the share (the user's open connections to the device close at once, on every node) or the invitation. */
  async unshare(ownerId: number | null, deviceId: string, input: unknown): Promise<void> {
    const { email: address } = check(unshareInput, input);
    const device = await this.owned(ownerId, deviceId);
    const user = await this.store.getUserByEmail(address);
    const invited = await this.store.sharing.uninvite(device.id, address);
    const shared = user ? await this.store.sharing.unshare(device.id, user.id, Date.now()) : false;
    if (shared) await this.relay?.deviceChanged(device.id, 'access');
    if (!shared && !invited) throw new IotcError('E_NOT_FOUND', `The device is not shared with ${address}`);
  }

  async sharesOf(ownerId: number | null, deviceId: string): Promise<{ shares: Share[]; invitations: PendingInvitation[] }> {
    const device = await this.owned(ownerId, deviceId);
    const now = Date.now();
    const invitations = (await this.store.sharing.invitationsOf(device.id)).map((i) => {
      const expiresAt = this.inviteTtl ? i.createdAt + this.inviteTtl : null;
      return { ...i, expiresAt, expired: expiresAt !== null && expiresAt < now };
    });
    return { shares: await this.store.sharing.sharesOf(device.id), invitations };
  }

  /** A read-only public link to the device's values; the token is returned once, here. */
  async createDeviceLink(ownerId: number, deviceId: string): Promise<PublicLinkInfo & { token: string }> {
    const device = await this.owned(ownerId, deviceId);
    return this.createLink(device.userId, 'device', device.id);
  }

  /** A link for any scope (a dashboard's feature checks the target's ownership before calling this). */
  async createLink(userId: number, scope: string, target: string): Promise<PublicLinkInfo & { token: string }> {
    const token = newLinkToken();
    const link = await this.store.sharing
      .createLink({ tokenHash: hashSecret(token), scope, target, userId }, Date.now(), MAX_LINKS_PER_TARGET)
      .catch((err) => {
        throw overCap(err, `This ${scope} already has ${MAX_LINKS_PER_TARGET} public links, the most this hub allows: revoke one first`);
      });
    return { ...linkInfo(link), token };
  }

  async deviceLinks(ownerId: number | null, deviceId: string): Promise<PublicLinkInfo[]> {
    const device = await this.owned(ownerId, deviceId);
    return (await this.store.sharing.linksOf('device', device.id)).map(linkInfo);
  }

  async revokeDeviceLink(ownerId: number | null, deviceId: string, linkId: number): Promise<void> {
    const device = await this.owned(ownerId, deviceId);
    if (!(await this.store.sharing.deleteLink(linkId, 'device', device.id))) throw new IotcError('E_NOT_FOUND', 'No such link');
  }

  /** What a public link opens, or E_NOT_FOUND (revoked, never existed, or not of this scope). */
  async openLink(token: string, scope: string): Promise<PublicLink> {
    const link = typeof token === 'string' && token.startsWith(LINK_PREFIX) && token.length <= 64 ? await this.store.sharing.linkByHash(hashSecret(token)) : null;
    if (!link || link.scope !== scope) throw new IotcError('E_NOT_FOUND', 'This link does not exist or was revoked');
    return link;
  }

  /** The device opened by a public device link. */
  async linkedDevice(token: string): Promise<Device> {
    const link = await this.openLink(token, 'device');
    const device = await this.store.getDevice(link.target);
    if (!device) throw new IotcError('E_NOT_FOUND', 'This link does not exist or was revoked');
    return device;
  }

  /** Null owner = an administrator (the CLI on the server's machine). */
  private async owned(ownerId: number | null, deviceId: string): Promise<Device> {
    const device = await this.store.getDevice(String(deviceId).slice(0, 64));
    if (!device || (ownerId !== null && device.userId !== ownerId)) {
      // A shared user asking to manage the device learns it exists (they can see it) but may not.
      if (device && ownerId !== null && (await this.store.sharing.roleOf(device.id, ownerId))) throw forbidden('operator', 'admin');
      throw new IotcError('E_NOT_FOUND', 'No such device');
    }
    return device;
  }
}
