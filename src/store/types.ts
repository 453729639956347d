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

/** A change that must close a device's live connections on every node. */
export type DeviceEventKind = 'rotated' | 'deleted';
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

  /** Sequence number up to which `side` of the device has been served; 0 if it never connected. */
  getCursor(deviceId: string, side: Side): Promise<number>;
  /** Records that `side` has now seen everything stored for the device. */
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
