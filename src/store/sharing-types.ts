import type { DeviceStatus } from './device-types.js';

/** What a shared account may do with a device: a viewer reads; an operator also writes and calls. */
export type ShareRole = 'viewer' | 'operator';
export const SHARE_ROLES: readonly ShareRole[] = ['viewer', 'operator'];

export interface Share {
  deviceId: string;
  userId: number;
  /** The shared account's email (for the owner's list). */
  email: string;
  role: ShareRole;
  createdAt: number;
}

/** A share waiting for an account: the email has none yet; it becomes a share at sign-up. */
export interface Invitation {
  deviceId: string;
  email: string;
  role: ShareRole;
  createdAt: number;
}

/** A device shared with the user, with the device's state, for the user's device list. */
export interface SharedDevice extends DeviceStatus {
  role: ShareRole;
  ownerEmail: string;
}

/** A read-only link anyone holding its token may open: `scope` says what kind of thing `target` names. */
export interface PublicLink {
  id: number;
  /** sha256 of the token; the token itself is shown once. */
  tokenHash: string;
  /** 'device' (its values and history); other scopes (a dashboard) are for their own features. */
  scope: string;
  target: string;
  /** Who made it (the target's owner). */
  userId: number;
  createdAt: number;
}

/**
 * Sharing of devices. Every change of a share records an 'access' device event in the same transaction, so
 * every node rechecks the shared user's live connections. The contract tests in test/sharing-store-contract.ts describe it.
 */
export interface SharingStore {
  /**
   * Grants or changes a role; false if the device or user does not exist. With `maxPeople` (0: none), refuses
   * with E_LIMIT a new person once the device's shares and invitations together number that many: counted and
   * written under one lock per device, so parallel requests on any number of nodes cannot pass it.
   */
  share(deviceId: string, userId: number, role: ShareRole, now: number, maxPeople?: number): Promise<boolean>;
  /** Withdraws a share; false if there was none. */
  unshare(deviceId: string, userId: number, now: number): Promise<boolean>;
  /** The user's role on a device shared with them, or null. */
  roleOf(deviceId: string, userId: number): Promise<ShareRole | null>;
  /** The device's shares, oldest first. */
  sharesOf(deviceId: string): Promise<Share[]>;
  /** Devices shared with the user, oldest share first, with their state at `now`. */
  sharedWith(userId: number, now: number): Promise<SharedDevice[]>;

  /** Creates or changes an invitation (email compared case-insensitively, stored lower-case); `maxPeople` as in share. */
  invite(deviceId: string, email: string, role: ShareRole, now: number, maxPeople?: number): Promise<void>;
  uninvite(deviceId: string, email: string): Promise<boolean>;
  invitationsOf(deviceId: string): Promise<Invitation[]>;
  /**
   * Turns every invitation for the email made at or after `validSince` into a share of the user, and drops the
   * expired ones, in one transaction; returns how many shares it made.
   */
  acceptInvitations(userId: number, email: string, now: number, validSince: number): Promise<number>;

  /** With `maxPerTarget` (0: none), refuses with E_LIMIT once the target has that many links, as share does. */
  createLink(link: { tokenHash: string; scope: string; target: string; userId: number }, now: number, maxPerTarget?: number): Promise<PublicLink>;
  linkByHash(tokenHash: string): Promise<PublicLink | null>;
  linksOf(scope: string, target: string): Promise<PublicLink[]>;
  /** Deletes the link if it is `scope`/`target`'s; false otherwise. */
  deleteLink(id: number, scope: string, target: string): Promise<boolean>;
  /** Deletes every link to the target (it was deleted). */
  deleteLinksOf(scope: string, target: string): Promise<number>;
}
