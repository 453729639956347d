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

  createUser(user: { email: string; name: string; passwordHash: string }): Promise<User>;
  getUserByEmail(email: string): Promise<User | null>;
  getUser(id: number): Promise<User | null>;

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
  /** Marks the invite used by `email`, if it exists, is unused and fits the email; null otherwise. One statement, so two sign-ups cannot both use it. */
  claimInvite(codeHash: string, email: string, now: number): Promise<Invite | null>;
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
  /** Latest value of every sensor, from either side unless `side` is given, ordered by sensor name. */
  latestAll(deviceId: string, side?: Side): Promise<StoredReading[]>;
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

  /** Deletes readings outside the policy, never the latest of a sensor, and device events older than a day. Returns how many readings went. */
  prune(policy: RetentionPolicy, now: number): Promise<number>;

  /** Cheap round trip, for readiness checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
