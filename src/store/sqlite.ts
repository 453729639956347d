import type Database from 'better-sqlite3';
import { SqliteAutomationStore } from './sqlite-automations.js';
import { Checkpointer } from './sqlite-checkpointer.js';
import { openSqlite } from './sqlite-connection.js';
import { SqliteAccounts } from './sqlite-accounts.js';
import { SqliteBlobs } from './sqlite-blobs.js';
import { SqliteDevices } from './sqlite-devices.js';
import { SqliteLatest } from './sqlite-latest.js';
import { SqliteCallStore } from './calls-sqlite.js';
import { SqliteSharingStore } from './sharing-sqlite.js';
import { SqliteReader } from './sqlite-reader.js';
import { SqliteRetention } from './sqlite-retention.js';
import { SqliteReadings } from './sqlite-readings.js';
import type { MoveSteps } from './sqlite-journal-move.js';
import { toBucket, toRawBucket } from './buckets.js';
import type { BucketQuery, HistoryBucket } from './buckets.js';
import { planRollup } from './rollup.js';
import type { SensorKey } from './rollup.js';
import { SqliteRollup } from './rollup-sqlite.js';
import { SqliteDashboardStore } from './dashboards-sqlite.js';
import type {
  ApiToken, AttemptLimit, BlobInfo, BridgeChoice, BridgedDevice, Device, DeviceEvent, DeviceStatus, HistoryQuery, Invite, NewBlob, NewReading, PresenceEntry, RetentionPolicy, SensorPage, Side, Store,
  LatestWeight, StoredBlob, StoredReading, User, WebSession,
} from './types.js';

/** How the journal is moved into readings: often enough to stay small, in batches big enough to be cheap. */
export interface JournalPolicy {
  /** How often the journal is looked at. */
  everyMs: number;
  /**
   * Rows a move takes at most: a bigger batch updates each index page once for more readings. The timer's move goes
   * in steps of `readRows` rows read and `sliceKeys` keys moved per transaction, each step a turn of its own.
   */
  batch: number;
  readRows?: number;
  sliceKeys?: number;
  /** How often the background checkpoint copies the WAL into the database. */
  checkpointMs?: number;
  /** WAL frames past which commits wait for the WAL to start over (see watchWal). */
  walRestartFrames?: number;
}

const JOURNAL: JournalPolicy = { everyMs: 100, batch: 5000, readRows: 1000, sliceKeys: 256, checkpointMs: 1000 };
/** 16 384 frames of 4 KiB: 64 MiB of WAL before the writer holds its commits back so the WAL can start over. */
const WAL_RESTART_FRAMES = 16_384;
/** The longest commits wait for that checkpoint, should the worker not answer. */
const WAL_RESTART_WAIT_MS = 1000;
const DAY_MS = 86_400_000;

/**
 * The embedded default store: one SQLite file in WAL mode. Calls are synchronous underneath, so they run in order.
 *
 * Readings are kept in chunks (see SqliteReadings): a commit appends them to a journal without indexes, and
 * a timer moves the journal into the indexed chunk table in batches. The latest table is written at those
 * moves, and before anything reads it (writeLatest), not by each commit.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly file: string;
  readonly automations: SqliteAutomationStore;
  private readonly db: Database.Database;
  private readonly pingStmt: Database.Statement;
  private readonly readings: SqliteReadings;
  private readonly latestValues: SqliteLatest;
  private readonly accounts: SqliteAccounts;
  private readonly devices: SqliteDevices;
  private readonly blobs: SqliteBlobs;
  private readonly journalTimer: NodeJS.Timeout;
  private checkpointer: Checkpointer | null = null;
  /** Heavy reads off the event loop (a file's store only: an in-memory database has no second connection). */
  private readonly reader: SqliteReader | null;
  /** A move of the journal is under way, in steps. */
  private moving = false;
  private readonly steps: MoveSteps;
  /** While the worker copies the whole WAL, so that the next commit starts it over: commits wait for it. */
  private walRestart: Promise<void> | null = null;
  /** What other users of the machine could read (see secureSqliteFile), logged at start. */
  readonly permissionWarnings: string[];
  readonly calls: SqliteCallStore;
  readonly sharing: SqliteSharingStore;
  readonly dashboards: SqliteDashboardStore;
  private readonly rollup: SqliteRollup;
  private readonly retention: SqliteRetention;

  constructor(file: string, private readonly journal: JournalPolicy = JOURNAL) {
    this.file = file;
    this.reader = file === ':memory:' ? null : new SqliteReader(file);
    const opened = openSqlite(file);
    this.db = opened.db;
    this.permissionWarnings = opened.permissionWarnings;
    const db = this.db;
    this.calls = new SqliteCallStore(db);
    this.automations = new SqliteAutomationStore(db);
    this.sharing = new SqliteSharingStore(db);
    this.dashboards = new SqliteDashboardStore(db);
    this.rollup = new SqliteRollup(db, async (deviceId, sensor, q) => (await this.readings.rawBuckets(deviceId, sensor, q, this.reader)).map(toRawBucket));
    this.accounts = new SqliteAccounts(db);
    this.blobs = new SqliteBlobs(db);
    this.pingStmt = db.prepare('SELECT 1');
    this.readings = new SqliteReadings(db);
    this.latestValues = new SqliteLatest(db, this.readings);
    this.devices = new SqliteDevices(db, this.readings);
    this.retention = new SqliteRetention(db, (deviceId, upTo) => this.rollup.forgetBefore(deviceId, upTo));
    this.steps = { readRows: journal.readRows ?? JOURNAL.readRows!, sliceKeys: journal.sliceKeys ?? JOURNAL.sliceKeys! };
    this.journalTimer = setInterval(() => this.settleSome(), journal.everyMs);
    this.journalTimer.unref();
  }

  /** A move taken in steps, as the timer takes it (see SqliteReadings.beginMove); tests drive it step by step. */
  beginMove(limit = this.journal.batch): void {
    this.readings.beginMove(limit);
  }

  moveStep(steps: MoveSteps = this.steps): boolean {
    return this.readings.moveStep(steps);
  }

  /** Moves up to one batch of journaled readings into readings, in one transaction; returns how many moved. */
  settle(limit = this.journal.batch): number {
    return this.readings.settle(limit);
  }

  private settleSome(): void {
    if (this.walRestart || this.moving) return;
    this.readings.beginMove(this.journal.batch);
    this.stepTimerMove();
  }

  /** A step of the timer's move, then the next in a turn of its own, so that sockets are read between them. */
  private stepTimerMove(): void {
    let more = false;
    try {
      more = !this.walRestart && this.readings.moveStep(this.steps);
    } catch {
      // Busy or failing disk: the readings stay in the journal, readable, and the next move tries again.
    }
    this.moving = more;
    if (more) setImmediate(() => this.stepTimerMove());
    else {
      this.readings.endMove();
      try {
        this.watchWal();
      } catch {
        // As above: the next move looks again.
      }
    }
  }

  /**
   * Checkpoints run in a worker once readings flow (not for the CLI's short visits). A passive checkpoint
   * beside a busy writer rarely finds the WAL fully copied, and only then can the WAL start over: when it
   * has grown past WAL_RESTART_FRAMES, readings and journal moves wait while the worker copies the rest, and
   * the next commit starts the WAL over. The event loop goes on meanwhile: done here, that checkpoint (its
   * copy and two fsyncs) held it for 20–40 ms at 10 000 readings/s.
   */
  private startCheckpointer(): void {
    if (this.checkpointer || this.file === ':memory:') return;
    this.checkpointer = new Checkpointer(this.file, this.journal.checkpointMs ?? JOURNAL.checkpointMs!);
    this.db.pragma('wal_autocheckpoint = 0');
  }

  private watchWal(): void {
    const c = this.checkpointer;
    if (!c) return;
    if (c.failure) {
      this.db.pragma('wal_autocheckpoint = 1000');
      this.checkpointer = null;
      void c.stop();
    } else if (c.walFrames > (this.journal.walRestartFrames ?? WAL_RESTART_FRAMES) && !this.walRestart) {
      this.walRestart = c.checkpointNow(WAL_RESTART_WAIT_MS).finally(() => {
        // What it reported is the WAL the next commit starts over: not a reason for another round.
        c.walFrames = 0;
        this.walRestart = null;
      });
    }
  }

  // Each area's SQL is in its own module (sqlite-accounts.ts, sqlite-devices.ts, sqlite-latest.ts, sqlite-readings.ts, sqlite-blobs.ts).
  // The areas answer synchronously, as better-sqlite3 does: a call through here still makes the one promise it always did.
  async createUser(u: { email: string; name: string; passwordHash: string }): Promise<User> { return this.accounts.createUser(u); }
  async getUserByEmail(email: string): Promise<User | null> { return this.accounts.getUserByEmail(email); }
  async getUser(id: number): Promise<User | null> { return this.accounts.getUser(id); }
  async updateUser(id: number, change: { name?: string; passwordHash?: string }): Promise<boolean> { return this.accounts.updateUser(id, change); }
  async deleteUser(id: number): Promise<boolean> { return this.accounts.deleteUser(id); }
  async deleteUserSessions(userId: number, keepIdHash?: string): Promise<number> { return this.accounts.deleteUserSessions(userId, keepIdHash); }
  async createSession(s: WebSession): Promise<void> { this.accounts.createSession(s); }
  async getSession(idHash: string, now: number): Promise<WebSession | null> { return this.accounts.getSession(idHash, now); }
  async deleteSession(idHash: string): Promise<void> { this.accounts.deleteSession(idHash); }
  async pruneSessions(now: number): Promise<number> { return this.accounts.pruneSessions(now); }
  async takeAttempt(key: string, limit: AttemptLimit, now: number): Promise<number> { return this.accounts.takeAttempt(key, limit, now); }
  async giveAttemptBack(key: string, limit: AttemptLimit, now: number): Promise<void> { this.accounts.giveAttemptBack(key, limit, now); }
  async pruneAttempts(now: number): Promise<number> { return this.accounts.pruneAttempts(now); }
  async createApiToken(t: { userId: number; name: string; tokenHash: string }, maxPerUser?: number): Promise<ApiToken> { return this.accounts.createApiToken(t, maxPerUser); }
  async listApiTokens(userId: number): Promise<ApiToken[]> { return this.accounts.listApiTokens(userId); }
  async useApiToken(tokenHash: string, now: number): Promise<ApiToken | null> { return this.accounts.useApiToken(tokenHash, now); }
  async deleteApiToken(userId: number, id: number): Promise<boolean> { return this.accounts.deleteApiToken(userId, id); }
  async createInvite(invite: { codeHash: string; email: string | null }): Promise<Invite> { return this.accounts.createInvite(invite); }
  async claimInvite(codeHash: string, email: string, now: number, validSince: number): Promise<Invite | null> { return this.accounts.claimInvite(codeHash, email, now, validSince); }
  async releaseInvite(codeHash: string): Promise<void> { this.accounts.releaseInvite(codeHash); }
  async listInvites(): Promise<Invite[]> { return this.accounts.listInvites(); }

  async createDevice(d: { id: string; userId: number; name: string; keyHash: string }, maxPerUser?: number): Promise<Device> { return this.devices.createDevice(d, maxPerUser); }
  async getDevice(id: string): Promise<Device | null> { return this.devices.getDevice(id); }
  async listDevices(userId: number): Promise<DeviceStatus[]> { return this.devices.listDevices(userId); }
  async setDeviceKey(id: string, keyHash: string): Promise<boolean> { return this.devices.setDeviceKey(id, keyHash); }
  async renameDevice(id: string, name: string): Promise<boolean> { return this.devices.renameDevice(id, name); }
  async deleteDevice(id: string): Promise<boolean> {
    // Most of its readings first, in steps; the rest, written meanwhile, go with the device in one transaction.
    await this.readings.deleteChunksInSteps(id);
    return this.devices.deleteDevice(id);
  }
  async deviceEventsSince(afterSeq: number): Promise<DeviceEvent[]> { return this.devices.deviceEventsSince(afterSeq); }
  async lastDeviceEventSeq(): Promise<number> { return this.devices.lastDeviceEventSeq(); }
  async setHomeAssistant(deviceId: string, on: boolean): Promise<boolean> { return this.devices.setHomeAssistant(deviceId, on); }
  async homeAssistantDevices(which: BridgeChoice): Promise<BridgedDevice[]> { return this.devices.homeAssistantDevices(which); }
  async getCursor(deviceId: string, side: Side): Promise<number> { return this.devices.getCursor(deviceId, side); }
  async advanceCursor(deviceId: string, side: Side): Promise<void> { this.devices.advanceCursor(deviceId, side); }
  async savePresence(nodeId: string, entries: PresenceEntry[], now: number, expiresAt: number, heartbeat?: boolean): Promise<void> { this.devices.savePresence(nodeId, entries, now, expiresAt, heartbeat); }
  async clearPresence(nodeId: string): Promise<void> { this.devices.clearPresence(nodeId); }

  async appendReadings(readings: NewReading[]): Promise<StoredReading[]> {
    if (readings.length === 0) return [];
    if (this.walRestart) await this.walRestart;
    const stored = this.readings.append(readings);
    if (!this.checkpointer) this.startCheckpointer();
    return stored;
  }

  async latest(deviceId: string, sensor: string, side?: Side): Promise<StoredReading | null> { return this.latestValues.latest(deviceId, sensor, side); }
  async latestAll(deviceId: string, side?: Side, page?: SensorPage): Promise<StoredReading[]> { return this.latestValues.latestAll(deviceId, side, page); }
  async latestWeights(deviceId: string): Promise<LatestWeight[]> { return this.latestValues.latestWeights(deviceId); }
  async latestSince(deviceId: string, side: Side, afterSeq: number): Promise<StoredReading[]> { return this.latestValues.latestSince(deviceId, side, afterSeq); }
  async history(deviceId: string, sensor: string, q: HistoryQuery): Promise<StoredReading[]> { return this.readings.history(deviceId, sensor, q, this.reader); }

  async rollupSensors(after: SensorKey | null, limit: number): Promise<SensorKey[]> {
    this.readings.writeLatest();
    return this.rollup.sensorsAfter(after, limit);
  }

  async fillRollup(deviceId: string, sensor: string, now: number, maxHours: number): Promise<number> {
    return this.rollup.fillSlice(deviceId, sensor, now, maxHours);
  }

  async historyBuckets(deviceId: string, sensor: string, q: BucketQuery): Promise<HistoryBucket[]> {
    const plan = planRollup(q, Date.now());
    if (plan) return this.rollup.buckets(deviceId, sensor, q, plan);
    return (await this.readings.rawBuckets(deviceId, sensor, q, this.reader)).map(toBucket);
  }

  async appendBlobs(blobs: NewBlob[], budgetBytes: number): Promise<BlobInfo[]> {
    if (this.walRestart) await this.walRestart;
    return this.blobs.appendBlobs(blobs, budgetBytes);
  }

  async latestBlob(deviceId: string, sensor: string, side?: Side): Promise<StoredBlob | null> { return this.blobs.latestBlob(deviceId, sensor, side); }
  async getBlob(deviceId: string, sensor: string, seq: number): Promise<StoredBlob | null> { return this.blobs.getBlob(deviceId, sensor, seq); }
  async listBlobs(deviceId: string, sensor: string, limit: number): Promise<BlobInfo[]> { return this.blobs.listBlobs(deviceId, sensor, limit); }
  async blobsToSync(deviceId: string, side: Side): Promise<StoredBlob[]> { return this.blobs.blobsToSync(deviceId, side); }
  async latestBlobs(deviceId: string, side?: Side): Promise<BlobInfo[]> { return this.blobs.latestBlobs(deviceId, side); }
  async blobBytes(deviceId: string): Promise<number> { return this.blobs.blobBytes(deviceId); }

  async prune(policy: RetentionPolicy, now: number): Promise<number> {
    // Pruning reads and deletes in readings only: move the journal in first, so its readings count too.
    while (this.settle() > 0);
    const removed = await this.retention.prune(policy, now);
    if (this.db.open) this.devices.pruneEvents(now - DAY_MS);
    return removed;
  }

  async pruneDeviceBytes(deviceId: string, maxBytes: number): Promise<number> {
    while (this.settle() > 0);
    return this.retention.pruneBytes(deviceId, maxBytes);
  }

  async ping(): Promise<void> {
    this.pingStmt.get();
  }

  async close(): Promise<void> {
    clearInterval(this.journalTimer);
    await this.reader?.stop();
    await this.checkpointer?.stop();
    this.checkpointer = null;
    if (!this.db.open) return;
    try {
      while (this.settle() > 0);
    } catch {
      // Left in the journal: still read, and moved when the store next opens.
    }
    this.db.close();
  }
}
