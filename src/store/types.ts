import type { AutomationStore } from './automation-types.js';
import type { SensorKey } from './rollup.js';

/** Which end of a device a connection or a reading belongs to. */
export type Side = 'device' | 'client';
export const SIDES: readonly Side[] = ['device', 'client'];
export function otherSide(side: Side): Side {
  return side === 'device' ? 'client' : 'device';
}

export interface User {
  id: number;
  email: string;
  name: string;
  passwordHash: string;
  createdAt: number;
}

export interface Device {
  id: string;
  userId: number;
  name: string;
  keyHash: string;
  createdAt: number;
  /** Last time any connection of the device was seen, ms since epoch; null if never. */
  lastSeen: number | null;
}

export interface DeviceStatus extends Device {
  /** Open device-side connections across all nodes. */
  online: boolean;
  clients: number;
}

/** A reading as a door hands it in: the value is any JSON, already validated. */
export interface NewReading {
  deviceId: string;
  sensor: string;
  value: unknown;
  side: Side;
  /** ms since epoch, stamped by the server. */
  time: number;
  /** The value's JSON text when the relay already made it (checking the value); the store keeps this text. */
  json?: string;
}

export interface StoredReading extends NewReading {
  /** Position in the store's total order; later writes have larger numbers. */
  seq: number;
}

export interface HistoryQuery {
  from?: number;
  to?: number;
  limit: number;
  /** Only readings written by this side. */
  side?: Side;
  /**
   * Stop once the readings' value texts (in characters, counted in the order read: oldest first from `from`,
   * newest first without) passed this many: the reading that passes it is the last returned, so a caller
   * cutting a reply knows more follow. Bounds what a query loads, whatever the limit.
   */
  maxBytes?: number;
}

/** A part of a device's sensors: those named after `after`, up to about `maxBytes` of values. */
export interface SensorPage {
  after?: string;
  maxBytes?: number;
}

/** A binary chunk (a camera frame, a file) as a door hands it in: bytes kept exactly as sent. */
export interface NewBlob {
  deviceId: string;
  sensor: string;
  side: Side;
  /** Content type as the sender named it (e.g. image/jpeg); application/octet-stream when it named none. */
  type: string;
  data: Buffer;
  /** ms since epoch, stamped by the server. */
  time: number;
}

/** A stored chunk without its bytes: what listings and notices carry. */
export interface BlobInfo {
  /** Position in the store's order of chunks; later chunks have larger numbers. */
  seq: number;
  deviceId: string;
  sensor: string;
  side: Side;
  type: string;
  size: number;
  time: number;
}

export interface StoredBlob extends BlobInfo {
  data: Buffer;
}

export interface RetentionPolicy {
  /** Keep at most this many readings per device; 0 = no limit. */
  maxCount: number;
  /** Drop readings older than this many ms; 0 = keep forever. */
  maxAgeMs: number;
}

export interface WebSession {
  /** sha256 of the session cookie's value; the value itself is never stored. */
  idHash: string;
  userId: number;
  csrfToken: string;
  createdAt: number;
  expiresAt: number;
}

export interface ApiToken {
  id: number;
  userId: number;
  name: string;
  tokenHash: string;
  createdAt: number;
  lastUsed: number | null;
}

/** An invitation to sign up (IOTC_SIGNUP=invite): the code itself is shown once and never stored. */
export interface Invite {
  codeHash: string;
  /** Only this email may use it; null = anyone with the code. */
  email: string | null;
  createdAt: number;
  usedAt: number | null;
  usedEmail: string | null;
}

/** A change that must close a device's live connections on every node. */
/** 'access': a share of the device was granted, changed or withdrawn (shared users' connections are rechecked). */
export type DeviceEventKind = 'rotated' | 'deleted' | 'access';
export interface DeviceEvent {
  seq: number;
  deviceId: string;
  kind: DeviceEventKind;
  at: number;
}

export interface PresenceEntry {
  deviceId: string;
  side: Side;
  connections: number;
}

/**
 * Everything IOTcommunicate keeps. One implementation per database; each speaks its own SQL.
 * The contract tests in test/store-contract.ts describe the behaviour every implementation must have.
 */
export interface Store {
  readonly kind: string;
  /** Persistent calls to devices. */
  readonly calls: CallStore;
  /** Rules, alerts, schedule occurrences, the delivery queue and notifications (src/store/automation-types.ts). */
  readonly automations: AutomationStore;
  /** Devices shared with other accounts, invitations, public links. */
  readonly sharing: SharingStore;
  /** The pages of widgets users arrange. */
  readonly dashboards: DashboardStore;

  createUser(user: { email: string; name: string; passwordHash: string }): Promise<User>;
  getUserByEmail(email: string): Promise<User | null>;
  getUser(id: number): Promise<User | null>;
  /** Changes the account's name and/or password hash; false if there is no such user. */
  updateUser(id: number, change: { name?: string; passwordHash?: string }): Promise<boolean>;
  /** Removes the account with its sessions and API tokens. Its devices are deleted first, one by one (see deleteDevice). */
  deleteUser(id: number): Promise<boolean>;
  /** Ends every web session of the user except `keepIdHash` (after a password change); returns how many. */
  deleteUserSessions(userId: number, keepIdHash?: string): Promise<number>;

  createDevice(device: { id: string; userId: number; name: string; keyHash: string }): Promise<Device>;
  getDevice(id: string): Promise<Device | null>;
  /** The user's devices, oldest first, with whether each is online now. */
  listDevices(userId: number): Promise<DeviceStatus[]>;
  /** Replaces the key hash and records a 'rotated' device event in the same transaction. */
  setDeviceKey(id: string, keyHash: string): Promise<boolean>;
  renameDevice(id: string, name: string): Promise<boolean>;
  /** Removes the device and everything stored for it, and records a 'deleted' device event. */
  deleteDevice(id: string): Promise<boolean>;
  /** Device events after `afterSeq`, oldest first. */
  deviceEventsSince(afterSeq: number): Promise<DeviceEvent[]>;
  /** Sequence number of the newest device event, 0 if none. */
  lastDeviceEventSeq(): Promise<number>;

  createSession(session: WebSession): Promise<void>;
  /** The session if it exists and has not expired at `now`. */
  getSession(idHash: string, now: number): Promise<WebSession | null>;
  deleteSession(idHash: string): Promise<void>;
  /** Drops expired sessions; returns how many. */
  pruneSessions(now: number): Promise<number>;

  createApiToken(token: { userId: number; name: string; tokenHash: string }): Promise<ApiToken>;
  listApiTokens(userId: number): Promise<ApiToken[]>;
  /** Looks a token up by hash and records its use at `now`. */
  useApiToken(tokenHash: string, now: number): Promise<ApiToken | null>;
  deleteApiToken(userId: number, id: number): Promise<boolean>;

  createInvite(invite: { codeHash: string; email: string | null }): Promise<Invite>;
  /**
   * Marks the invite used by `email`, if it exists, is unused, was made at or after `validSince` and fits the
   * email; null otherwise. One statement, so two sign-ups cannot both use it.
   */
  claimInvite(codeHash: string, email: string, now: number, validSince: number): Promise<Invite | null>;
  /** Makes a claimed invite usable again (the sign-up it was claimed for did not happen). */
  releaseInvite(codeHash: string): Promise<void>;
  /** Every invite, newest first. */
  listInvites(): Promise<Invite[]>;

  /** Shows the device in Home Assistant (the bridge's opt-in) or stops; false for an unknown device. */
  setHomeAssistant(deviceId: string, on: boolean): Promise<boolean>;
  /** Ids of the devices opted in to Home Assistant, or of every device with `all`, sorted. */
  homeAssistantDevices(all: boolean): Promise<string[]>;

  /** Stores the readings in one transaction and returns them with their sequence numbers, in order. */
  appendReadings(readings: NewReading[]): Promise<StoredReading[]>;
  /** Latest value of one sensor, from either side unless `side` is given. */
  latest(deviceId: string, sensor: string, side?: Side): Promise<StoredReading | null>;
  /**
   * Latest value of every sensor, from either side unless `side` is given, ordered by sensor name (UTF-8 byte
   * order). With a page: only sensors named after `after`, stopping at the one whose value passes `maxBytes`
   * (counted as history counts them).
   */
  latestAll(deviceId: string, side?: Side, page?: SensorPage): Promise<StoredReading[]>;
  /** Names of the device's sensors (written by either side and not pruned), in no particular order. */
  sensorNames(deviceId: string): Promise<string[]>;
  /** Latest value of each sensor that `side` wrote after sequence number `afterSeq`, oldest first. */
  latestSince(deviceId: string, side: Side, afterSeq: number): Promise<StoredReading[]>;
  /** Readings of one sensor, oldest first; with only a limit, the most recent `limit`. */
  history(deviceId: string, sensor: string, query: HistoryQuery): Promise<StoredReading[]>;
  /**
   * One row per non-empty bucket of `bucketMs` (aligned to the epoch) between from and to (inclusive), oldest
   * first, at most `limit`: min, max, avg, count and last (by time) of the numeric values. JSON numbers and
   * strings holding a number ("21.5") count; other values are left out.
   */
  historyBuckets(deviceId: string, sensor: string, query: BucketQuery): Promise<HistoryBucket[]>;
  /** Sensors (of every device) after `after`, at most `limit`, in a stable order: what the rollup's background fill walks. */
  rollupSensors(after: SensorKey | null, limit: number): Promise<SensorKey[]>;
  /**
   * Fills at most `maxHours` settled hours of a sensor's hourly rollup that no chart filled yet, newest first,
   * exactly as a chart would (src/store/rollup.ts). Returns the hours filled; 0 when none is lacking.
   */
  fillRollup(deviceId: string, sensor: string, now: number, maxHours: number): Promise<number>;

  /**
   * Stores chunks in one transaction, then drops each of their devices' oldest chunks until the bytes it keeps
   * are at most `budgetBytes` (never the device's newest chunk of the batch), once per device. Returns each
   * chunk's info, in order.
   */
  appendBlobs(blobs: NewBlob[], budgetBytes: number): Promise<BlobInfo[]>;
  /** The newest chunk of a sensor, with its bytes, from either side unless `side` is given. */
  latestBlob(deviceId: string, sensor: string, side?: Side): Promise<StoredBlob | null>;
  /** One chunk of a sensor by its sequence number, with its bytes. */
  getBlob(deviceId: string, sensor: string, seq: number): Promise<StoredBlob | null>;
  /** The most recent `limit` chunks of a sensor, newest first, without bytes. */
  listBlobs(deviceId: string, sensor: string, limit: number): Promise<BlobInfo[]>;
  /**
   * Sync on connect for `side`: the newest chunk, with its bytes, of each sensor the other side wrote since `side`
   * was last connected (see advanceCursor), oldest first. At most the device's budget of bytes.
   */
  blobsToSync(deviceId: string, side: Side): Promise<StoredBlob[]>;
  /** The newest chunk of every sensor of the device that has any (written by `side`, if given), without bytes, ordered by sensor. */
  latestBlobs(deviceId: string, side?: Side): Promise<BlobInfo[]>;
  /** Bytes of chunks the device keeps. */
  blobBytes(deviceId: string): Promise<number>;

  /** Sequence number up to which `side` of the device has been served; 0 if it never connected. */
  getCursor(deviceId: string, side: Side): Promise<number>;
  /** Records that `side` has now seen everything stored for the device, readings and chunks. */
  advanceCursor(deviceId: string, side: Side): Promise<void>;

  /**
   * Replaces this node's connection counts for the given devices. With `heartbeat` (the default) it also keeps
   * all of the node's presence alive until `expiresAt` and marks its devices seen: work that grows with the
   * node's connections, which the tracker asks for only every third of the TTL.
   */
  savePresence(nodeId: string, entries: PresenceEntry[], now: number, expiresAt: number, heartbeat?: boolean): Promise<void>;
  /** Forgets this node's presence (clean shutdown). */
  clearPresence(nodeId: string): Promise<void>;

  /**
   * Deletes readings outside the policy and device events older than a day. The latest reading of a sensor
   * and side is kept whatever the count, until it is older than the age: then the sensor itself is forgotten.
   * Returns how many readings went.
   */
  prune(policy: RetentionPolicy, now: number): Promise<number>;

  /** Cheap round trip, for readiness checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Where a persistent call to a device stands: waiting for the device, handed to it, answered, or given up. */
export type CallState = 'queued' | 'sent' | 'answered' | 'expired';
export const FINAL_CALL_STATES: readonly CallState[] = ['answered', 'expired'];

export interface NewCall {
  /** "c_" + 16 base32 characters, made by the call router. */
  id: string;
  deviceId: string;
  /** The device's owner, so open calls can be bounded per user. */
  userId: number;
  method: string;
  params: unknown;
  created: number;
  /** ms since epoch after which an unanswered call expires. */
  expires: number;
}

export interface StoredCall extends NewCall {
  state: CallState;
  /** The device's result, once answered without an error. */
  result?: unknown;
  /** The device's error message, once answered with one. */
  error?: string;
  updated: number;
}

/** A device's answer to a call: a result, or an error message. */
export type CallOutcome = { result: unknown } | { error: string };

/**
 * Persistent calls (commands to a device that wait for it while it is offline). Open calls are those
 * queued or sent whose expiry has not passed. The contract tests in test/call-store-contract.ts describe it.
 */
export interface CallStore {
  /** Stores a queued call unless the device or the user already has that many open calls: then says which limit held. */
  create(call: NewCall, limits: { perDevice: number; perUser: number }, now: number): Promise<{ call: StoredCall } | { limit: 'device' | 'user' }>;
  get(id: string): Promise<StoredCall | null>;
  /** The device's open calls, oldest first (at most `limit`); only queued ones with `queuedOnly`. */
  open(deviceId: string, now: number, opts?: { queuedOnly?: boolean; limit?: number }): Promise<StoredCall[]>;
  /** queued → sent; false if the call was not queued (sent already, answered, expired or unknown). */
  markSent(id: string, now: number): Promise<boolean>;
  /** An open call of this device → answered; the updated call, or null if no such open call (first answer wins). */
  finish(id: string, deviceId: string, outcome: CallOutcome, now: number): Promise<StoredCall | null>;
  /** Open calls past their expiry → expired, returned; final calls a day old are forgotten. */
  expire(now: number): Promise<StoredCall[]>;
}

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
  /** Grants or changes a role; false if the device or user does not exist. */
  share(deviceId: string, userId: number, role: ShareRole, now: number): Promise<boolean>;
  /** Withdraws a share; false if there was none. */
  unshare(deviceId: string, userId: number, now: number): Promise<boolean>;
  /** The user's role on a device shared with them, or null. */
  roleOf(deviceId: string, userId: number): Promise<ShareRole | null>;
  /** The device's shares, oldest first. */
  sharesOf(deviceId: string): Promise<Share[]>;
  /** Devices shared with the user, oldest share first, with their state at `now`. */
  sharedWith(userId: number, now: number): Promise<SharedDevice[]>;

  /** Creates or changes an invitation (email compared case-insensitively, stored lower-case). */
  invite(deviceId: string, email: string, role: ShareRole, now: number): Promise<void>;
  uninvite(deviceId: string, email: string): Promise<boolean>;
  invitationsOf(deviceId: string): Promise<Invitation[]>;
  /**
   * Turns every invitation for the email made at or after `validSince` into a share of the user, and drops the
   * expired ones, in one transaction; returns how many shares it made.
   */
  acceptInvitations(userId: number, email: string, now: number, validSince: number): Promise<number>;

  createLink(link: { tokenHash: string; scope: string; target: string; userId: number }, now: number): Promise<PublicLink>;
  linkByHash(tokenHash: string): Promise<PublicLink | null>;
  linksOf(scope: string, target: string): Promise<PublicLink[]>;
  /** Deletes the link if it is `scope`/`target`'s; false otherwise. */
  deleteLink(id: number, scope: string, target: string): Promise<boolean>;
  /** Deletes every link to the target (it was deleted). */
  deleteLinksOf(scope: string, target: string): Promise<number>;
}

export interface BucketQuery {
  from: number;
  to: number;
  bucketMs: number;
  limit: number;
  side?: Side;
}

export interface HistoryBucket {
  /** Bucket start, ms since epoch. */
  time: number;
  min: number;
  max: number;
  avg: number;
  count: number;
  last: number;
}

/** A page of widgets a user arranged; the widgets are JSON the web app checks (src/core/dashboards.ts). */
export interface Dashboard {
  id: number;
  userId: number;
  name: string;
  widgets: unknown[];
  createdAt: number;
  updatedAt: number;
}

/**
 * Dashboards, always read and written through their owner: another user's dashboard is "none".
 * The contract tests in test/dashboard-store-contract.ts describe it.
 */
export interface DashboardStore {
  /** Stores a new dashboard unless the user already has `max`: then null. */
  create(userId: number, dashboard: { name: string; widgets: unknown[] }, max: number, now: number): Promise<Dashboard | null>;
  /** The user's dashboards, oldest first. */
  list(userId: number): Promise<Dashboard[]>;
  get(userId: number, id: number): Promise<Dashboard | null>;
  /** Replaces the name and/or the widgets; the updated dashboard, or null if the user has no such dashboard. */
  update(userId: number, id: number, change: { name?: string; widgets?: unknown[] }, now: number): Promise<Dashboard | null>;
  delete(userId: number, id: number): Promise<boolean>;
}
