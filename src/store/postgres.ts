import pg from 'pg';
import { hideUrlPasswords } from '../log.js';
import type { Logger } from '../log.js';
import { PostgresAutomationStore } from './postgres-automations.js';
import { isUnavailable, mapError, migratePostgres, parsePostgresUrl, typeParsers } from './postgres-connection.js';
import { PostgresAccounts } from './postgres-accounts.js';
import { PostgresBlobs } from './postgres-blobs.js';
import { PostgresDevices } from './postgres-devices.js';
import { PostgresReadings } from './postgres-readings.js';
import { PostgresCallStore } from './calls-postgres.js';
import type { PostgresAccess } from './calls-postgres.js';
import { PostgresSharingStore } from './sharing-postgres.js';
import { PostgresDashboardStore } from './dashboards-postgres.js';
import type { SensorKey } from './rollup.js';
import type {
  ApiToken, AttemptLimit, BlobInfo, BridgeChoice, BridgedDevice, BucketQuery, Device, DeviceEvent, DeviceStatus, HistoryBucket, HistoryQuery, Invite, NewBlob, NewReading, PresenceEntry,
  RetentionPolicy, SensorPage, Side, Store, StoredBlob, StoredReading, LatestWeight, User, WebSession,
} from './types.js';

const DAY_MS = 86_400_000;

export interface PostgresStoreOptions {
  /** Most connections this node opens to the database. */
  poolSize?: number;
  log?: Logger;
}

/**
 * The store for several nodes: PostgreSQL through a connection pool. Every write that must be atomic is
 * one statement or one transaction, and the latest-value table only ever moves forward, so nodes writing
 * at once cannot step back each other's values.
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres';
  private readonly db: PostgresAccess = { q: (text, values, name) => this.q(text, values, name), tx: (fn) => this.tx(fn), lockKey: (p) => this.lockKey(p), lock: (c, p) => this.lock(c, p) };
  readonly calls = new PostgresCallStore(this.db);
  readonly automations: PostgresAutomationStore;
  readonly sharing = new PostgresSharingStore(this.db);
  readonly dashboards = new PostgresDashboardStore(this.db);
  private readonly accounts = new PostgresAccounts(this.db);
  private readonly devices = new PostgresDevices(this.db);
  private readonly readings = new PostgresReadings(this.db);
  private readonly blobs = new PostgresBlobs(this.db);
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string | null,
  ) {
    this.automations = new PostgresAutomationStore((text, values) => this.q(text, values), (fn) => this.tx(fn), this.db.lock);
  }

  /** Connects, creates the schema if asked, and migrates. Fails with a clear message if the database is unreachable. */
  static async open(url: string, opts: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const target = parsePostgresUrl(url);
    const pool = new pg.Pool({
      connectionString: target.connectionString,
      max: opts.poolSize ?? 10,
      application_name: 'iotcommunicate',
      connectionTimeoutMillis: 5000,
      query_timeout: 30_000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      types: typeParsers,
      ...(target.schema ? { options: `-c search_path="${target.schema}"` } : {}),
    });
    // An idle connection the server drops (restart, failover) is reported here; the pool replaces it.
    pool.on('error', (err) => opts.log?.warn({ err: err.message }, 'PostgreSQL connection lost; the pool will reconnect'));
    try {
      const applied = await migratePostgres(pool, target.schema);
      if (applied > 0) opts.log?.info({ applied, schema: target.schema ?? 'default' }, 'PostgreSQL schema migrated');
    } catch (err) {
      await pool.end().catch(() => {});
      if (isUnavailable(err)) throw new Error(`Cannot reach PostgreSQL at ${hideUrlPasswords(url)}: ${(err as Error).message}`, { cause: err });
      throw err;
    }
    return new PostgresStore(pool, target.schema);
  }

  private lockKey(purpose: string): string {
    return `iotc:${purpose}:${this.schema ?? ''}`;
  }

  private async lock(c: pg.ClientBase, purpose: string): Promise<void> {
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [this.lockKey(purpose)]);
  }

  private async q<R extends pg.QueryResultRow>(text: string, values: unknown[] = [], name?: string): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(name ? { name, text, values } : { text, values });
    } catch (err) {
      throw mapError(err);
    }
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw mapError(err);
    }
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw mapError(err);
    } finally {
      // A connection that could not even roll back is not handed out again.
      client.release(broken);
    }
  }

  // Each area's SQL is in its own module (postgres-accounts.ts, postgres-devices.ts, postgres-readings.ts, postgres-blobs.ts).
  createUser(u: { email: string; name: string; passwordHash: string }): Promise<User> { return this.accounts.createUser(u); }
  getUserByEmail(email: string): Promise<User | null> { return this.accounts.getUserByEmail(email); }
  getUser(id: number): Promise<User | null> { return this.accounts.getUser(id); }
  updateUser(id: number, change: { name?: string; passwordHash?: string }): Promise<boolean> { return this.accounts.updateUser(id, change); }
  deleteUser(id: number): Promise<boolean> { return this.accounts.deleteUser(id); }
  deleteUserSessions(userId: number, keepIdHash?: string): Promise<number> { return this.accounts.deleteUserSessions(userId, keepIdHash); }
  createSession(s: WebSession): Promise<void> { return this.accounts.createSession(s); }
  getSession(idHash: string, now: number): Promise<WebSession | null> { return this.accounts.getSession(idHash, now); }
  deleteSession(idHash: string): Promise<void> { return this.accounts.deleteSession(idHash); }
  pruneSessions(now: number): Promise<number> { return this.accounts.pruneSessions(now); }
  takeAttempt(key: string, limit: AttemptLimit, now: number): Promise<number> { return this.accounts.takeAttempt(key, limit, now); }
  giveAttemptBack(key: string, limit: AttemptLimit, now: number): Promise<void> { return this.accounts.giveAttemptBack(key, limit, now); }
  pruneAttempts(now: number): Promise<number> { return this.accounts.pruneAttempts(now); }
  createApiToken(t: { userId: number; name: string; tokenHash: string }, maxPerUser?: number): Promise<ApiToken> { return this.accounts.createApiToken(t, maxPerUser); }
  listApiTokens(userId: number): Promise<ApiToken[]> { return this.accounts.listApiTokens(userId); }
  useApiToken(tokenHash: string, now: number): Promise<ApiToken | null> { return this.accounts.useApiToken(tokenHash, now); }
  deleteApiToken(userId: number, id: number): Promise<boolean> { return this.accounts.deleteApiToken(userId, id); }
  createInvite(invite: { codeHash: string; email: string | null }): Promise<Invite> { return this.accounts.createInvite(invite); }
  claimInvite(codeHash: string, email: string, now: number, validSince: number): Promise<Invite | null> { return this.accounts.claimInvite(codeHash, email, now, validSince); }
  releaseInvite(codeHash: string): Promise<void> { return this.accounts.releaseInvite(codeHash); }
  listInvites(): Promise<Invite[]> { return this.accounts.listInvites(); }

  createDevice(d: { id: string; userId: number; name: string; keyHash: string }, maxPerUser?: number): Promise<Device> { return this.devices.createDevice(d, maxPerUser); }
  getDevice(id: string): Promise<Device | null> { return this.devices.getDevice(id); }
  listDevices(userId: number): Promise<DeviceStatus[]> { return this.devices.listDevices(userId); }
  setDeviceKey(id: string, keyHash: string): Promise<boolean> { return this.devices.setDeviceKey(id, keyHash); }
  renameDevice(id: string, name: string): Promise<boolean> { return this.devices.renameDevice(id, name); }
  deleteDevice(id: string): Promise<boolean> { return this.devices.deleteDevice(id); }
  deviceEventsSince(afterSeq: number): Promise<DeviceEvent[]> { return this.devices.deviceEventsSince(afterSeq); }
  lastDeviceEventSeq(): Promise<number> { return this.devices.lastDeviceEventSeq(); }
  setHomeAssistant(deviceId: string, on: boolean): Promise<boolean> { return this.devices.setHomeAssistant(deviceId, on); }
  homeAssistantDevices(which: BridgeChoice): Promise<BridgedDevice[]> { return this.devices.homeAssistantDevices(which); }
  getCursor(deviceId: string, side: Side): Promise<number> { return this.devices.getCursor(deviceId, side); }
  advanceCursor(deviceId: string, side: Side): Promise<void> { return this.devices.advanceCursor(deviceId, side); }
  savePresence(nodeId: string, entries: PresenceEntry[], now: number, expiresAt: number): Promise<void> { return this.devices.savePresence(nodeId, entries, now, expiresAt); }
  clearPresence(nodeId: string): Promise<void> { return this.devices.clearPresence(nodeId); }

  appendReadings(readings: NewReading[]): Promise<StoredReading[]> { return this.readings.appendReadings(readings); }
  latest(deviceId: string, sensor: string, side?: Side): Promise<StoredReading | null> { return this.readings.latest(deviceId, sensor, side); }
  latestAll(deviceId: string, side?: Side, page?: SensorPage): Promise<StoredReading[]> { return this.readings.latestAll(deviceId, side, page); }
  latestWeights(deviceId: string): Promise<LatestWeight[]> { return this.readings.latestWeights(deviceId); }
  latestSince(deviceId: string, side: Side, afterSeq: number): Promise<StoredReading[]> { return this.readings.latestSince(deviceId, side, afterSeq); }
  history(deviceId: string, sensor: string, q: HistoryQuery): Promise<StoredReading[]> { return this.readings.history(deviceId, sensor, q); }
  historyBuckets(deviceId: string, sensor: string, q: BucketQuery): Promise<HistoryBucket[]> { return this.readings.historyBuckets(deviceId, sensor, q); }
  rollupSensors(after: SensorKey | null, limit: number): Promise<SensorKey[]> { return this.readings.rollupSensors(after, limit); }
  fillRollup(deviceId: string, sensor: string, now: number, maxHours: number): Promise<number> { return this.readings.fillRollup(deviceId, sensor, now, maxHours); }

  appendBlobs(blobs: NewBlob[], budgetBytes: number): Promise<BlobInfo[]> { return this.blobs.appendBlobs(blobs, budgetBytes); }
  latestBlob(deviceId: string, sensor: string, side?: Side): Promise<StoredBlob | null> { return this.blobs.latestBlob(deviceId, sensor, side); }
  getBlob(deviceId: string, sensor: string, seq: number): Promise<StoredBlob | null> { return this.blobs.getBlob(deviceId, sensor, seq); }
  listBlobs(deviceId: string, sensor: string, limit: number): Promise<BlobInfo[]> { return this.blobs.listBlobs(deviceId, sensor, limit); }
  blobsToSync(deviceId: string, side: Side): Promise<StoredBlob[]> { return this.blobs.blobsToSync(deviceId, side); }
  latestBlobs(deviceId: string, side?: Side): Promise<BlobInfo[]> { return this.blobs.latestBlobs(deviceId, side); }
  blobBytes(deviceId: string): Promise<number> { return this.blobs.blobBytes(deviceId); }

  /** One node at a time: the others find the lock taken and skip this round. */
  async prune(policy: RetentionPolicy, now: number): Promise<number> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw mapError(err);
    }
    const key = this.lockKey('prune');
    let broken: Error | undefined;
    try {
      const { rows } = await client.query<{ got: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS got', [key]);
      if (!rows[0].got) return 0;
      try {
        const removed = await this.readings.prune(client, policy, now);
        await client.query('DELETE FROM device_events WHERE at < $1', [now - DAY_MS]);
        return removed;
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', [key]).catch((e: Error) => (broken = e));
      }
    } catch (err) {
      broken ??= err as Error;
      throw mapError(err);
    } finally {
      // A connection whose unlock failed may still hold the lock: dropping it releases the lock for sure.
      client.release(broken);
    }
  }

  pruneDeviceBytes(deviceId: string, maxBytes: number): Promise<number> {
    return this.tx((c) => this.readings.pruneDeviceBytes(c, deviceId, maxBytes));
  }

  async ping(): Promise<void> {
    await this.q('SELECT 1');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
