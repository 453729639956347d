import type { AutomationStore } from './automation-types.js';
import type { SensorKey } from './rollup.js';
import type { ApiToken, Invite, User, WebSession } from './account-types.js';
import type { AttemptLimit } from './attempt-buckets.js';
import type { BlobInfo, NewBlob, StoredBlob } from './blob-types.js';
import type { CallStore } from './call-types.js';
import type { DashboardStore } from './dashboard-types.js';
import type { BridgeChoice, BridgedDevice, Device, DeviceEvent, DeviceStatus, PresenceEntry, Side } from './device-types.js';
import type { BucketQuery, HistoryBucket, HistoryQuery, LatestWeight, NewReading, RetentionPolicy, SensorPage, StoredReading } from './reading-types.js';
import type { SharingStore } from './sharing-types.js';

// The types of each area live beside it; importers keep reaching all of them here.
export * from './account-types.js';
export type { AttemptLimit } from './attempt-buckets.js';
export * from './blob-types.js';
export * from './call-types.js';
export * from './dashboard-types.js';
export * from './device-types.js';
export * from './reading-types.js';
export * from './sharing-types.js';

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

  /**
   * With `maxPerUser` (0: none), refuses with E_LIMIT once the user has that many devices: counted and inserted
   * under one lock, so parallel creations on any number of nodes cannot pass the cap.
   */
  createDevice(device: { id: string; userId: number; name: string; keyHash: string }, maxPerUser?: number): Promise<Device>;
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

  /**
   * Takes one attempt from `key`'s bucket (src/store/attempt-buckets.ts), the same bucket for every node and
   * process using this store: 0 when taken, else the whole seconds until an attempt is back.
   */
  takeAttempt(key: string, limit: AttemptLimit, now: number): Promise<number>;
  /** Gives back an attempt takeAttempt took (it succeeded), never above the burst. */
  giveAttemptBack(key: string, limit: AttemptLimit, now: number): Promise<void>;
  /** Drops the buckets full again by `now` (they hold nothing a missing bucket would not); returns how many. */
  pruneAttempts(now: number): Promise<number>;

  /** With `maxPerUser` (0: none), refuses with E_LIMIT once the user has that many tokens, as createDevice does. */
  createApiToken(token: { userId: number; name: string; tokenHash: string }, maxPerUser?: number): Promise<ApiToken>;
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
  /** The devices the Home Assistant bridge shows (see BridgeChoice) that exist, sorted by id, with what it publishes of them. */
  homeAssistantDevices(which: BridgeChoice): Promise<BridgedDevice[]>;

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
  /**
   * Each sensor of the device (written by either side and not pruned), per side, in no particular order, with
   * what its latest value weighs: its JSON text plus READING_OVERHEAD_BYTES (the byte budget's measure).
   */
  latestWeights(deviceId: string): Promise<LatestWeight[]>;
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

  /**
   * Deletes a device's oldest readings until the rest weigh at most `maxBytes`, each its value's JSON text plus
   * READING_OVERHEAD_BYTES; the latest reading of each sensor and side stays, whatever it weighs. Returns how
   * many readings went.
   */
  pruneDeviceBytes(deviceId: string, maxBytes: number): Promise<number>;

  /** Cheap round trip, for readiness checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
