import Database from 'better-sqlite3';
import { secureSqliteFile } from './file-modes.js';
import { IotcError } from '../core/errors.js';
import { databaseOpenError, prepareDatabaseFile } from './data-dir.js';
import { SqliteAutomationStore } from './sqlite-automations.js';
import { Checkpointer } from './sqlite-checkpointer.js';
import { SQLITE_MIGRATIONS } from './sqlite-migrations.js';
import { SqliteCallStore } from './calls-sqlite.js';
import { SqliteSharingStore } from './sharing-sqlite.js';
import { SqliteReadings } from './sqlite-readings.js';
import { toBucket, toRawBucket } from './buckets.js';
import type { BucketQuery, HistoryBucket } from './buckets.js';
import { planRollup } from './rollup.js';
import type { SensorKey } from './rollup.js';
import { SqliteRollup } from './rollup-sqlite.js';
import { SqliteDashboardStore } from './dashboards-sqlite.js';
import type {
  ApiToken, Device, DeviceEvent, Invite, DeviceEventKind, DeviceStatus, HistoryQuery, NewReading, PresenceEntry, RetentionPolicy, SensorPage, Side, Store, StoredReading, User, WebSession,
} from './types.js';
import { READING_COLS, toDevice, toInvite, toReading, toSession, toToken, toUser } from './rows.js';
import type { DeviceRow, InviteRow, ReadingRow, SessionRow, TokenRow, UserRow } from './rows.js';
import { BLOB_INFO_COLS, blobsToSyncSql, latestBlobsSql, newestPerDevice, PRUNE_BLOBS_SQL, toBlobInfo, toStoredBlob } from './blob-rows.js';
import type { BlobRow } from './blob-rows.js';
import { otherSide } from './types.js';
import type { BlobInfo, NewBlob, StoredBlob } from './types.js';

/** Applies pending migrations in one transaction; refuses a database written by a newer IOTcommunicate. */
export function migrateSqlite(db: Database.Database, file: string): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  const known = SQLITE_MIGRATIONS.length;
  if (current > known) {
    throw new Error(
      `The database ${file} is at schema version ${current}, but this IOTcommunicate knows only up to ${known}. ` +
        'It was written by a newer version: upgrade IOTcommunicate, or point --data-dir/IOTC_STORE at another database.',
    );
  }
  if (current === known) return;
  db.transaction(() => {
    for (let v = current; v < known; v++) db.exec(SQLITE_MIGRATIONS[v]);
    db.pragma(`user_version = ${known}`);
  }).immediate();
}

/** How the journal is moved into readings: often enough to stay small, in batches big enough to be cheap. */
export interface JournalPolicy {
  /** How often the journal is looked at. */
  everyMs: number;
  /** Rows moved per transaction: a bigger batch updates each index page once for more readings, but holds the writer longer. */
  batch: number;
  /** How often the background checkpoint copies the WAL into the database. */
  checkpointMs?: number;
  /** WAL frames past which commits wait for the WAL to start over (see watchWal). */
  walRestartFrames?: number;
}

const JOURNAL: JournalPolicy = { everyMs: 100, batch: 5000, checkpointMs: 1000 };
/** 16 384 frames of 4 KiB: 64 MiB of WAL before the writer holds its commits back so the WAL can start over. */
const WAL_RESTART_FRAMES = 16_384;
/** The longest commits wait for that checkpoint, should the worker not answer. */
const WAL_RESTART_WAIT_MS = 1000;

/**
 * The embedded default store: one SQLite file in WAL mode. Calls are synchronous underneath, so they run in order.
 *
 * Readings are kept in chunks (see SqliteReadings): a commit appends them to a journal without indexes, and
 * a timer moves the journal into the indexed chunk table in batches. The latest table is written at those
 * moves, and before any method here reads it (writeLatest), not by each commit.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly file: string;
  readonly automations: SqliteAutomationStore;
  private readonly db: Database.Database;
  private readonly stmt;
  private readonly readings: SqliteReadings;
  private readonly journalTimer: NodeJS.Timeout;
  private checkpointer: Checkpointer | null = null;
  /** While the worker copies the whole WAL, so that the next commit starts it over: commits wait for it. */
  private walRestart: Promise<void> | null = null;
  /** What other users of the machine could read (see secureSqliteFile), logged at start. */
  readonly permissionWarnings: string[];
  readonly calls: SqliteCallStore;
  readonly sharing: SqliteSharingStore;
  readonly dashboards: SqliteDashboardStore;
  private readonly rollup: SqliteRollup;

  constructor(file: string, private readonly journal: JournalPolicy = JOURNAL) {
    this.file = file;
    if (file !== ':memory:') prepareDatabaseFile(file);
    this.permissionWarnings = file === ':memory:' ? [] : secureSqliteFile(file);
    try {
      this.db = new Database(file);
    } catch (err) {
      throw databaseOpenError(file, err as Error);
    }
    // WAL keeps readers off the writer's back; NORMAL syncs at checkpoints only, which loses nothing
    // on a process crash (the WAL is in the OS already), so "ack after commit" holds for crashes.
    try {
      this.db.pragma('journal_mode = WAL');
    } catch (err) {
      this.db.close();
      throw databaseOpenError(file, err as Error);
    }
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    try {
      migrateSqlite(this.db, file);
    } catch (err) {
      // A refused or failed database must not stay open behind the error (the caller may retry or move the file).
      this.db.close();
      throw err;
    }
    const db = this.db;
    this.calls = new SqliteCallStore(db);
    this.automations = new SqliteAutomationStore(db);
    this.sharing = new SqliteSharingStore(db);
    this.dashboards = new SqliteDashboardStore(db);
    this.rollup = new SqliteRollup(db, (deviceId, sensor, q) => this.readings.rawBuckets(deviceId, sensor, q).map(toRawBucket));
    this.stmt = {
      insertUser: db.prepare('INSERT INTO users (email, name, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING *'),
      userByEmail: db.prepare('SELECT * FROM users WHERE email = ?'),
      userById: db.prepare('SELECT * FROM users WHERE id = ?'),
      insertDevice: db.prepare('INSERT INTO devices (id, user_id, name, key_hash, created_at) VALUES (?, ?, ?, ?, ?) RETURNING *'),
      deviceById: db.prepare('SELECT * FROM devices WHERE id = ?'),
      devicesByUser: db.prepare(`
        SELECT d.*,
          (SELECT COALESCE(SUM(connections), 0) FROM presence p WHERE p.device_id = d.id AND p.side = 'device' AND p.expires_at > ?) AS device_conns,
          (SELECT COALESCE(SUM(connections), 0) FROM presence p WHERE p.device_id = d.id AND p.side = 'client' AND p.expires_at > ?) AS client_conns
        FROM devices d WHERE d.user_id = ? ORDER BY d.created_at, d.id`),
      setKey: db.prepare('UPDATE devices SET key_hash = ? WHERE id = ?'),
      rename: db.prepare('UPDATE devices SET name = ? WHERE id = ?'),
      deleteDevice: db.prepare('DELETE FROM devices WHERE id = ?'),
      deleteLatest: db.prepare('DELETE FROM latest WHERE device_id = ?'),
      deleteCursors: db.prepare('DELETE FROM cursors WHERE device_id = ?'),
      deletePresence: db.prepare('DELETE FROM presence WHERE device_id = ?'),
      latestAny: db.prepare(`SELECT ${READING_COLS} FROM latest WHERE device_id = ? AND sensor = ? ORDER BY seq DESC LIMIT 1`),
      latestSide: db.prepare(`SELECT ${READING_COLS} FROM latest WHERE device_id = ? AND sensor = ? AND side = ?`),
      latestAllAny: db.prepare(`SELECT ${READING_COLS} FROM latest l WHERE device_id = ?
        AND seq = (SELECT MAX(seq) FROM latest m WHERE m.device_id = l.device_id AND m.sensor = l.sensor) ORDER BY sensor`),
      latestAllSide: db.prepare(`SELECT ${READING_COLS} FROM latest WHERE device_id = ? AND side = ? ORDER BY sensor`),
      sensorNames: db.prepare('SELECT DISTINCT sensor FROM latest WHERE device_id = ?').pluck(),
      latestSince: db.prepare(`SELECT ${READING_COLS} FROM latest WHERE device_id = ? AND side = ? AND seq > ? ORDER BY seq`),
      getCursor: db.prepare('SELECT seq FROM cursors WHERE device_id = ? AND side = ?'),
      advanceCursor: db.prepare(`INSERT INTO cursors (device_id, side, seq, blob_seq)
        VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) FROM latest WHERE device_id = ?), (SELECT COALESCE(MAX(seq), 0) FROM blobs WHERE device_id = ?))
        ON CONFLICT (device_id, side) DO UPDATE SET seq = MAX(cursors.seq, excluded.seq), blob_seq = MAX(cursors.blob_seq, excluded.blob_seq)`),
      upsertPresence: db.prepare(`INSERT INTO presence (node_id, device_id, side, connections, expires_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (device_id, side, node_id) DO UPDATE SET connections = excluded.connections, expires_at = excluded.expires_at`),
      deletePresenceEntry: db.prepare('DELETE FROM presence WHERE node_id = ? AND device_id = ? AND side = ?'),
      touchDevice: db.prepare('UPDATE devices SET last_seen = ? WHERE id = ?'),
      refreshPresence: db.prepare('UPDATE presence SET expires_at = ? WHERE node_id = ?'),
      touchNodeDevices: db.prepare("UPDATE devices SET last_seen = ? WHERE id IN (SELECT device_id FROM presence WHERE node_id = ? AND side = 'device')"),
      clearPresence: db.prepare('DELETE FROM presence WHERE node_id = ?'),
      dropExpiredPresence: db.prepare('DELETE FROM presence WHERE expires_at <= ?'),
      insertEvent: db.prepare('INSERT INTO device_events (device_id, kind, at) VALUES (?, ?, ?)'),
      eventsSince: db.prepare('SELECT seq, device_id, kind, at FROM device_events WHERE seq > ? ORDER BY seq LIMIT 1000'),
      // The highest number ever issued, which pruning does not lower.
      lastEvent: db.prepare("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'device_events'), 0) AS seq"),
      // The newest event always stays: SQLite numbers a new row max(seq)+1, so emptying the table would restart
      // seq at 1 and running servers, which poll for events after the last seq they saw, would miss the next ones.
      pruneEvents: db.prepare('DELETE FROM device_events WHERE at < ?'),
      insertSession: db.prepare('INSERT INTO web_sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)'),
      getSession: db.prepare('SELECT * FROM web_sessions WHERE id_hash = ? AND expires_at > ?'),
      deleteSession: db.prepare('DELETE FROM web_sessions WHERE id_hash = ?'),
      pruneSessions: db.prepare('DELETE FROM web_sessions WHERE expires_at <= ?'),
      insertToken: db.prepare('INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES (?, ?, ?, ?) RETURNING *'),
      tokensByUser: db.prepare('SELECT * FROM api_tokens WHERE user_id = ? ORDER BY created_at, id'),
      useToken: db.prepare('UPDATE api_tokens SET last_used = ? WHERE token_hash = ? RETURNING *'),
      deleteToken: db.prepare('DELETE FROM api_tokens WHERE user_id = ? AND id = ?'),
      ping: db.prepare('SELECT 1'),
      insertBlob: db.prepare(`INSERT INTO blobs (device_id, sensor, side, type, size, time, data) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING ${BLOB_INFO_COLS}`),
      pruneBlobs: db.prepare(PRUNE_BLOBS_SQL),
      blobBytes: db.prepare('SELECT COALESCE(SUM(size), 0) AS n FROM blobs WHERE device_id = ?'),
      latestBlobAny: db.prepare('SELECT * FROM blobs WHERE device_id = ? AND sensor = ? ORDER BY seq DESC LIMIT 1'),
      latestBlobSide: db.prepare('SELECT * FROM blobs WHERE device_id = ? AND sensor = ? AND side = ? ORDER BY seq DESC LIMIT 1'),
      blobBySeq: db.prepare('SELECT * FROM blobs WHERE device_id = ? AND sensor = ? AND seq = ?'),
      listBlobs: db.prepare(`SELECT ${BLOB_INFO_COLS} FROM blobs WHERE device_id = ? AND sensor = ? ORDER BY seq DESC LIMIT ?`),
      blobsToSync: db.prepare(blobsToSyncSql(false)),
      latestBlobs: db.prepare(latestBlobsSql(false, false)),
      latestBlobsSide: db.prepare(latestBlobsSql(false, true)),
      deleteBlobs: db.prepare('DELETE FROM blobs WHERE device_id = ?'),
    };

    this.readings = new SqliteReadings(db);
    this.journalTimer = setInterval(() => this.settleSome(), journal.everyMs);
    this.journalTimer.unref();
  }

  /** Moves up to one batch of journaled readings into readings; returns how many moved. */
  settle(limit = this.journal.batch): number {
    return this.readings.settle(limit);
  }

  private settleSome(): void {
    if (this.walRestart) return;
    try {
      this.settle();
      this.watchWal();
    } catch {
      // Busy or failing disk: the readings stay in the journal, readable, and the next turn tries again.
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

  async createUser(u: { email: string; name: string; passwordHash: string }): Promise<User> {
    try {
      return toUser(this.stmt.insertUser.get(u.email, u.name, u.passwordHash, Date.now()) as UserRow);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw new IotcError('E_CONFLICT', 'An account with this email already exists');
      }
      throw err;
    }
  }

  async getUserByEmail(email: string): Promise<User | null> {
    const row = this.stmt.userByEmail.get(email) as UserRow | undefined;
    return row ? toUser(row) : null;
  }

  async getUser(id: number): Promise<User | null> {
    const row = this.stmt.userById.get(id) as UserRow | undefined;
    return row ? toUser(row) : null;
  }

  async updateUser(id: number, change: { name?: string; passwordHash?: string }): Promise<boolean> {
    const r = this.db
      .prepare('UPDATE users SET name = COALESCE(?, name), password_hash = COALESCE(?, password_hash) WHERE id = ?')
      .run(change.name ?? null, change.passwordHash ?? null, id);
    return r.changes > 0;
  }

  async deleteUser(id: number): Promise<boolean> {
    // Sessions, API tokens (and any device row left) go with it: ON DELETE CASCADE.
    return this.db.prepare('DELETE FROM users WHERE id = ?').run(id).changes > 0;
  }

  async deleteUserSessions(userId: number, keepIdHash = ''): Promise<number> {
    return this.db.prepare('DELETE FROM web_sessions WHERE user_id = ? AND id_hash <> ?').run(userId, keepIdHash).changes;
  }

  async createDevice(d: { id: string; userId: number; name: string; keyHash: string }): Promise<Device> {
    try {
      return toDevice(this.stmt.insertDevice.get(d.id, d.userId, d.name, d.keyHash, Date.now()) as DeviceRow);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new IotcError('E_CONFLICT', 'A device with this id already exists');
      if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw new IotcError('E_NOT_FOUND', 'No such user');
      throw err;
    }
  }

  async getDevice(id: string): Promise<Device | null> {
    const row = this.stmt.deviceById.get(id) as DeviceRow | undefined;
    return row ? toDevice(row) : null;
  }

  async listDevices(userId: number): Promise<DeviceStatus[]> {
    const now = Date.now();
    const rows = this.stmt.devicesByUser.all(now, now, userId) as (DeviceRow & { device_conns: number; client_conns: number })[];
    return rows.map((r) => ({ ...toDevice(r), online: r.device_conns > 0, clients: r.client_conns }));
  }

  async setDeviceKey(id: string, keyHash: string): Promise<boolean> {
    return this.db.transaction(() => {
      const changed = this.stmt.setKey.run(keyHash, id).changes > 0;
      if (changed) this.stmt.insertEvent.run(id, 'rotated', Date.now());
      return changed;
    }).immediate();
  }

  async renameDevice(id: string, name: string): Promise<boolean> {
    return this.stmt.rename.run(name, id).changes > 0;
  }

  async deleteDevice(id: string): Promise<boolean> {
    this.readings.writeLatest();
    return this.db.transaction(() => {
      this.readings.deleteDevice(id);
      this.stmt.deleteLatest.run(id);
      this.stmt.deleteCursors.run(id);
      this.stmt.deletePresence.run(id);
      this.stmt.deleteBlobs.run(id);
      const deleted = this.stmt.deleteDevice.run(id).changes > 0;
      if (deleted) this.stmt.insertEvent.run(id, 'deleted', Date.now());
      return deleted;
    }).immediate();
  }

  async appendBlobs(blobs: NewBlob[], budgetBytes: number): Promise<BlobInfo[]> {
    if (this.walRestart) await this.walRestart;
    return this.db.transaction(() => {
      const infos = blobs.map((b) => toBlobInfo(this.stmt.insertBlob.get(b.deviceId, b.sensor, b.side, b.type, b.data.length, b.time, b.data) as BlobRow));
      for (const [deviceId, newest] of newestPerDevice(infos)) this.stmt.pruneBlobs.run(deviceId, newest, deviceId, budgetBytes);
      return infos;
    }).immediate();
  }

  async latestBlob(deviceId: string, sensor: string, side?: Side): Promise<StoredBlob | null> {
    const row = (side ? this.stmt.latestBlobSide.get(deviceId, sensor, side) : this.stmt.latestBlobAny.get(deviceId, sensor)) as BlobRow | undefined;
    return row ? toStoredBlob(row) : null;
  }

  async getBlob(deviceId: string, sensor: string, seq: number): Promise<StoredBlob | null> {
    const row = this.stmt.blobBySeq.get(deviceId, sensor, seq) as BlobRow | undefined;
    return row ? toStoredBlob(row) : null;
  }

  async listBlobs(deviceId: string, sensor: string, limit: number): Promise<BlobInfo[]> {
    return (this.stmt.listBlobs.all(deviceId, sensor, limit) as BlobRow[]).map(toBlobInfo);
  }

  async blobsToSync(deviceId: string, side: Side): Promise<StoredBlob[]> {
    return (this.stmt.blobsToSync.all(deviceId, otherSide(side), deviceId, side) as BlobRow[]).map(toStoredBlob);
  }

  async latestBlobs(deviceId: string, side?: Side): Promise<BlobInfo[]> {
    return ((side ? this.stmt.latestBlobsSide.all(deviceId, side) : this.stmt.latestBlobs.all(deviceId)) as BlobRow[]).map(toBlobInfo);
  }

  async blobBytes(deviceId: string): Promise<number> {
    return (this.stmt.blobBytes.get(deviceId) as { n: number }).n;
  }

  async deviceEventsSince(afterSeq: number): Promise<DeviceEvent[]> {
    const rows = this.stmt.eventsSince.all(afterSeq) as { seq: number; device_id: string; kind: DeviceEventKind; at: number }[];
    return rows.map((r) => ({ seq: r.seq, deviceId: r.device_id, kind: r.kind, at: r.at }));
  }

  async lastDeviceEventSeq(): Promise<number> {
    return (this.stmt.lastEvent.get() as { seq: number }).seq;
  }

  async createSession(s: WebSession): Promise<void> {
    this.stmt.insertSession.run(s.idHash, s.userId, s.csrfToken, s.createdAt, s.expiresAt);
  }

  async getSession(idHash: string, now: number): Promise<WebSession | null> {
    const r = this.stmt.getSession.get(idHash, now) as SessionRow | undefined;
    return r ? toSession(r) : null;
  }

  async deleteSession(idHash: string): Promise<void> {
    this.stmt.deleteSession.run(idHash);
  }

  async pruneSessions(now: number): Promise<number> {
    return this.stmt.pruneSessions.run(now).changes;
  }

  async createApiToken(t: { userId: number; name: string; tokenHash: string }): Promise<ApiToken> {
    return toToken(this.stmt.insertToken.get(t.userId, t.name, t.tokenHash, Date.now()) as TokenRow);
  }

  async listApiTokens(userId: number): Promise<ApiToken[]> {
    return (this.stmt.tokensByUser.all(userId) as TokenRow[]).map(toToken);
  }

  async useApiToken(tokenHash: string, now: number): Promise<ApiToken | null> {
    const row = this.stmt.useToken.get(now, tokenHash) as TokenRow | undefined;
    return row ? toToken(row) : null;
  }

  async deleteApiToken(userId: number, id: number): Promise<boolean> {
    return this.stmt.deleteToken.run(userId, id).changes > 0;
  }

  async createInvite(invite: { codeHash: string; email: string | null }): Promise<Invite> {
    return toInvite(this.db.prepare('INSERT INTO invites (code_hash, email, created_at) VALUES (?, ?, ?) RETURNING *').get(invite.codeHash, invite.email, Date.now()) as InviteRow);
  }

  async claimInvite(codeHash: string, email: string, now: number, validSince: number): Promise<Invite | null> {
    const row = this.db
      .prepare('UPDATE invites SET used_at = ?, used_email = ? WHERE code_hash = ? AND used_at IS NULL AND created_at >= ? AND (email IS NULL OR email = ?) RETURNING *')
      .get(now, email, codeHash, validSince, email) as InviteRow | undefined;
    return row ? toInvite(row) : null;
  }

  async releaseInvite(codeHash: string): Promise<void> {
    this.db.prepare('UPDATE invites SET used_at = NULL, used_email = NULL WHERE code_hash = ?').run(codeHash);
  }

  async listInvites(): Promise<Invite[]> {
    return (this.db.prepare('SELECT * FROM invites ORDER BY created_at DESC, code_hash').all() as InviteRow[]).map(toInvite);
  }

  async setHomeAssistant(deviceId: string, on: boolean): Promise<boolean> {
    if (!this.stmt.deviceById.get(deviceId)) return false;
    if (on) this.db.prepare('INSERT OR IGNORE INTO ha_devices (device_id) VALUES (?)').run(deviceId);
    else this.db.prepare('DELETE FROM ha_devices WHERE device_id = ?').run(deviceId);
    return true;
  }

  async homeAssistantDevices(all: boolean): Promise<string[]> {
    const sql = all ? 'SELECT id FROM devices ORDER BY id' : 'SELECT device_id AS id FROM ha_devices ORDER BY device_id';
    return (this.db.prepare(sql).all() as { id: string }[]).map((r) => r.id);
  }

  async appendReadings(readings: NewReading[]): Promise<StoredReading[]> {
    if (readings.length === 0) return [];
    if (this.walRestart) await this.walRestart;
    const stored = this.readings.append(readings);
    if (!this.checkpointer) this.startCheckpointer();
    return stored;
  }

  async latest(deviceId: string, sensor: string, side?: Side): Promise<StoredReading | null> {
    this.readings.writeLatest();
    const row = (side ? this.stmt.latestSide.get(deviceId, sensor, side) : this.stmt.latestAny.get(deviceId, sensor)) as
      | ReadingRow
      | undefined;
    return row ? toReading(row) : null;
  }

  async latestAll(deviceId: string, side?: Side, page?: SensorPage): Promise<StoredReading[]> {
    this.readings.writeLatest();
    if (page === undefined) {
      const rows = (side ? this.stmt.latestAllSide.all(deviceId, side) : this.stmt.latestAllAny.all(deviceId)) as ReadingRow[];
      return rows.map(toReading);
    }
    const where = ['device_id = ?'];
    const params: unknown[] = [deviceId];
    if (side) (where.push('side = ?'), params.push(side));
    else where.push('seq = (SELECT MAX(seq) FROM latest m WHERE m.device_id = l.device_id AND m.sensor = l.sensor)');
    if (page.after !== undefined) (where.push('sensor > ?'), params.push(page.after));
    let sql = `SELECT ${READING_COLS} FROM latest l WHERE ${where.join(' AND ')} ORDER BY sensor`;
    if (page.maxBytes !== undefined) {
      sql = `SELECT ${READING_COLS} FROM (SELECT *, SUM(length(value)) OVER (ORDER BY sensor ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
        FROM (${sql})) WHERE before IS NULL OR before <= ? ORDER BY sensor`;
      params.push(page.maxBytes);
    }
    return (this.db.prepare(sql).all(...params) as ReadingRow[]).map(toReading);
  }

  async sensorNames(deviceId: string): Promise<string[]> {
    this.readings.writeLatest();
    return this.stmt.sensorNames.all(deviceId) as string[];
  }

  async latestSince(deviceId: string, side: Side, afterSeq: number): Promise<StoredReading[]> {
    this.readings.writeLatest();
    return (this.stmt.latestSince.all(deviceId, side, afterSeq) as ReadingRow[]).map(toReading);
  }

  async history(deviceId: string, sensor: string, q: HistoryQuery): Promise<StoredReading[]> {
    return this.readings.history(deviceId, sensor, q);
  }

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
    return this.readings.rawBuckets(deviceId, sensor, q).map(toBucket);
  }

  async getCursor(deviceId: string, side: Side): Promise<number> {
    const row = this.stmt.getCursor.get(deviceId, side) as { seq: number } | undefined;
    return row?.seq ?? 0;
  }

  async advanceCursor(deviceId: string, side: Side): Promise<void> {
    this.readings.writeLatest();
    this.stmt.advanceCursor.run(deviceId, side, deviceId, deviceId);
  }

  async savePresence(nodeId: string, entries: PresenceEntry[], now: number, expiresAt: number, heartbeat = true): Promise<void> {
    this.db.transaction(() => {
      for (const e of entries) {
        if (e.connections > 0) this.stmt.upsertPresence.run(nodeId, e.deviceId, e.side, e.connections, expiresAt);
        else this.stmt.deletePresenceEntry.run(nodeId, e.deviceId, e.side);
        // Last seen is the device's own side: an app (or the owner's browser) watching it is not the device.
        if (e.side === 'device') this.stmt.touchDevice.run(now, e.deviceId);
      }
      if (heartbeat) {
        this.stmt.refreshPresence.run(expiresAt, nodeId);
        this.stmt.touchNodeDevices.run(now, nodeId);
        this.stmt.dropExpiredPresence.run(now);
      }
    }).immediate();
  }

  async clearPresence(nodeId: string): Promise<void> {
    this.stmt.clearPresence.run(nodeId);
  }

  async prune(policy: RetentionPolicy, now: number): Promise<number> {
    // Pruning reads and deletes in readings only: move the journal in first, so its readings count too.
    while (this.settle() > 0);
    const removed = this.db.transaction(() => this.readings.prune(policy, now, (deviceId, upTo) => this.rollup.forgetBefore(deviceId, upTo))).immediate();
    this.stmt.pruneEvents.run(now - 86_400_000);
    return removed;
  }

  async ping(): Promise<void> {
    this.stmt.ping.get();
  }

  async close(): Promise<void> {
    clearInterval(this.journalTimer);
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
