import { PostgresAutomationStore } from './postgres-automations.js';
import pg from 'pg';
import { IotcError } from '../core/errors.js';
import type { Logger } from '../log.js';
import { POSTGRES_MIGRATIONS } from './postgres-migrations.js';
import { PostgresCallStore } from './calls-postgres.js';
import { PostgresSharingStore } from './sharing-postgres.js';
import { bucketsSql, POSTGRES_NUMERIC, toBucket, toRawBucket } from './buckets.js';
import type { BucketQuery, BucketRow, HistoryBucket } from './buckets.js';
import { planRollup } from './rollup.js';
import type { SensorKey } from './rollup.js';
import { PostgresRollup } from './rollup-postgres.js';
import { PostgresDashboardStore } from './dashboards-postgres.js';
import type {
  ApiToken, Device, DeviceEvent, Invite, DeviceEventKind, DeviceStatus, HistoryQuery, NewReading, PresenceEntry, RetentionPolicy, SensorPage, Side, Store, StoredReading, User, WebSession,
} from './types.js';
import { READING_COLS, toDevice, toInvite, toReading, toSession, toToken, toUser } from './rows.js';
import type { DeviceRow, InviteRow, ReadingRow, SessionRow, TokenRow, UserRow } from './rows.js';
import { BLOB_INFO_COLS, blobsToSyncSql, latestBlobsSql, newestPerDevice, toBlobInfo, toStoredBlob } from './blob-rows.js';
import type { BlobRow } from './blob-rows.js';
import { otherSide } from './types.js';
import type { BlobInfo, NewBlob, StoredBlob } from './types.js';

const DAY_MS = 86_400_000;
/** Chunks per insert statement: 7 parameters each, well within PostgreSQL's 65 535. */
const BLOB_ROWS_PER_INSERT = 500;
/** PRUNE_BLOBS_SQL (blob-rows.ts) for several devices at once: $1 devices, $2 the newest seq of each (never dropped), $3 the budget. */
const PRUNE_LOCK_SQL = `SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtext('iotc:blobs:' || d) AS k FROM unnest($1::text[]) d) l ORDER BY k`;
const PRUNE_DEVICES_SQL = `DELETE FROM blobs WHERE seq IN (
  SELECT k.seq FROM unnest($1::text[], $2::bigint[]) AS n(device_id, newest)
  CROSS JOIN LATERAL (SELECT seq, SUM(size) OVER (ORDER BY seq DESC) AS running FROM blobs WHERE device_id = n.device_id) k
  WHERE k.running > $3 AND k.seq < n.newest)`;

// Ids, sequence numbers and ms timestamps are BIGINT; they all fit a JS number exactly (< 2^53).
const INT8_OID = 20;
const typeParsers = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID ? (v: string) => Number(v) : (pg.types.getTypeParser as (o: number, f?: string) => unknown)(oid, format)) as never,
};

/** What a store URL says, without the parts that only IOTcommunicate reads. */
export interface PostgresTarget {
  connectionString: string;
  /** Schema to keep the tables in; the server's default search path when absent. */
  schema: string | null;
}

/** `postgres://user:pass@host:5432/db?schema=name`: `schema` is ours, the rest goes to the driver. */
export function parsePostgresUrl(url: string): PostgresTarget {
  const u = new URL(url);
  const schema = u.searchParams.get('schema');
  u.searchParams.delete('schema');
  if (schema !== null && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
    throw new Error(`Invalid schema "${schema}" in the store URL: use letters, digits and _ (not starting with a digit)`);
  }
  return { connectionString: u.toString(), schema };
}

/** The store URL with its password hidden, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://…';
  }
}

/** SQLSTATE classes and socket errors that mean "the database cannot be reached right now". */
function isUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  const code = e?.code ?? '';
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'].includes(code)) return true;
  // 08: connection exception; 57P0x: shutting down / cannot connect now; 53300: too many connections;
  // 40001/40P01: serialization failure / deadlock: the statement can simply be retried.
  if (code.startsWith('08') || /^57P0[1-4]$/.test(code) || ['53300', '40001', '40P01'].includes(code)) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Connection ended/i.test(e?.message ?? '');
}

/** Turns driver errors into catalogue errors where they mean something to a caller; anything else stays as it is. */
function mapError(err: unknown): unknown {
  if (err instanceof IotcError) return err;
  if (isUnavailable(err)) {
    return new IotcError('E_UNAVAILABLE', `The database is unreachable (${(err as Error).message}); try again shortly`, { cause: err, retryAfterSeconds: 1 });
  }
  if ((err as { code?: string }).code === '22021') {
    return new IotcError('E_VALIDATION', 'Text must not contain NUL characters', { cause: err });
  }
  return err;
}

export interface PostgresStoreOptions {
  /** Most connections this node opens to the database. */
  poolSize?: number;
  log?: Logger;
}

/** Applies pending migrations in one transaction, under an advisory lock so nodes starting together take turns. */
export async function migratePostgres(pool: pg.Pool, schema: string | null): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`iotc:migrate:${schema ?? ''}`]);
    if (schema) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
    const { rows } = await client.query<{ v: number }>('SELECT COALESCE(MAX(version), 0)::int AS v FROM schema_migrations');
    const current = rows[0].v;
    const known = POSTGRES_MIGRATIONS.length;
    if (current > known) {
      throw new Error(
        `The database is at schema version ${current}, but this IOTcommunicate knows only up to ${known}. ` +
          'It was written by a newer version: upgrade IOTcommunicate, or point --store/IOTC_STORE at another database.',
      );
    }
    for (let v = current; v < known; v++) {
      await client.query(POSTGRES_MIGRATIONS[v]);
      await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [v + 1, Date.now()]);
    }
    await client.query('COMMIT');
    return known - current;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/**
 * The store for several nodes: PostgreSQL through a connection pool. Every write that must be atomic is
 * one statement or one transaction, and the latest-value table only ever moves forward, so nodes writing
 * at once cannot step back each other's values.
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres';
  readonly calls = new PostgresCallStore({ q: (text, values, name) => this.q(text, values, name), tx: (fn) => this.tx(fn), lockKey: (p) => this.lockKey(p) });
  readonly automations: PostgresAutomationStore;
  readonly sharing = new PostgresSharingStore({ q: (text, values, name) => this.q(text, values, name), tx: (fn) => this.tx(fn), lockKey: (p) => this.lockKey(p) });
  readonly dashboards = new PostgresDashboardStore({ q: (text, values, name) => this.q(text, values, name), tx: (fn) => this.tx(fn), lockKey: (p) => this.lockKey(p) });
  private readonly rollup = new PostgresRollup(
    { q: (text, values, name) => this.q(text, values, name), tx: (fn) => this.tx(fn), lockKey: (p) => this.lockKey(p) },
    async (c, deviceId, sensor, q) => (await this.rawBuckets(c, deviceId, sensor, q)).map(toRawBucket),
  );
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string | null,
  ) {
    this.automations = new PostgresAutomationStore((text, values) => this.q(text, values), (fn) => this.tx(fn));
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
      if (isUnavailable(err)) throw new Error(`Cannot reach PostgreSQL at ${redactUrl(url)}: ${(err as Error).message}`, { cause: err });
      throw err;
    }
    return new PostgresStore(pool, target.schema);
  }

  private lockKey(purpose: string): string {
    return `iotc:${purpose}:${this.schema ?? ''}`;
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

  async createUser(u: { email: string; name: string; passwordHash: string }): Promise<User> {
    try {
      const { rows } = await this.pool.query<UserRow>(
        'INSERT INTO users (email, name, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING *',
        [u.email, u.name, u.passwordHash, Date.now()],
      );
      return toUser(rows[0]);
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw new IotcError('E_CONFLICT', 'An account with this email already exists');
      throw mapError(err);
    }
  }

  async getUserByEmail(email: string): Promise<User | null> {
    const { rows } = await this.q<UserRow>('SELECT * FROM users WHERE lower(email) = lower($1)', [email]);
    return rows[0] ? toUser(rows[0]) : null;
  }

  async getUser(id: number): Promise<User | null> {
    const { rows } = await this.q<UserRow>('SELECT * FROM users WHERE id = $1', [id]);
    return rows[0] ? toUser(rows[0]) : null;
  }

  async updateUser(id: number, change: { name?: string; passwordHash?: string }): Promise<boolean> {
    const r = await this.q('UPDATE users SET name = COALESCE($2, name), password_hash = COALESCE($3, password_hash) WHERE id = $1', [id, change.name ?? null, change.passwordHash ?? null]);
    return (r.rowCount ?? 0) > 0;
  }

  async deleteUser(id: number): Promise<boolean> {
    // Sessions, API tokens (and any device row left) go with it: ON DELETE CASCADE.
    return ((await this.q('DELETE FROM users WHERE id = $1', [id])).rowCount ?? 0) > 0;
  }

  async deleteUserSessions(userId: number, keepIdHash = ''): Promise<number> {
    return (await this.q('DELETE FROM web_sessions WHERE user_id = $1 AND id_hash <> $2', [userId, keepIdHash])).rowCount ?? 0;
  }

  async createDevice(d: { id: string; userId: number; name: string; keyHash: string }): Promise<Device> {
    try {
      const { rows } = await this.pool.query<DeviceRow>(
        'INSERT INTO devices (id, user_id, name, key_hash, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING *',
        [d.id, d.userId, d.name, d.keyHash, Date.now()],
      );
      return toDevice(rows[0]);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === '23505') throw new IotcError('E_CONFLICT', 'A device with this id already exists');
      if (code === '23503') throw new IotcError('E_NOT_FOUND', 'No such user');
      throw mapError(err);
    }
  }

  async getDevice(id: string): Promise<Device | null> {
    const { rows } = await this.q<DeviceRow>('SELECT * FROM devices WHERE id = $1', [id], 'iotc_device_by_id');
    return rows[0] ? toDevice(rows[0]) : null;
  }

  async listDevices(userId: number): Promise<DeviceStatus[]> {
    const { rows } = await this.q<DeviceRow & { device_conns: number; client_conns: number }>(
      // Counts per device through the presence key (device_id, side, node_id): only this user's devices are read.
      `SELECT d.*,
         (SELECT COALESCE(SUM(connections), 0) FROM presence p WHERE p.device_id = d.id AND p.side = 'device' AND p.expires_at > $2) AS device_conns,
         (SELECT COALESCE(SUM(connections), 0) FROM presence p WHERE p.device_id = d.id AND p.side = 'client' AND p.expires_at > $2) AS client_conns
       FROM devices d WHERE d.user_id = $1 ORDER BY d.created_at, d.id`,
      [userId, Date.now()],
    );
    return rows.map((r) => ({ ...toDevice(r), online: r.device_conns > 0, clients: r.client_conns }));
  }

  /**
   * Device events are numbered under a lock held to commit, so they become visible in number order and a
   * node reading "events after N" can never skip one that commits late.
   */
  private async recordDeviceEvent(c: pg.PoolClient, sql: string, values: unknown[]): Promise<boolean> {
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [this.lockKey('events')]);
    return ((await c.query(sql, values)).rowCount ?? 0) > 0;
  }

  async setDeviceKey(id: string, keyHash: string): Promise<boolean> {
    return this.tx((c) =>
      this.recordDeviceEvent(
        c,
        `WITH changed AS (UPDATE devices SET key_hash = $2 WHERE id = $1 RETURNING id)
         INSERT INTO device_events (device_id, kind, at) SELECT id, 'rotated', $3 FROM changed`,
        [id, keyHash, Date.now()],
      ),
    );
  }

  async renameDevice(id: string, name: string): Promise<boolean> {
    return ((await this.q('UPDATE devices SET name = $2 WHERE id = $1', [id, name])).rowCount ?? 0) > 0;
  }

  async deleteDevice(id: string): Promise<boolean> {
    return this.tx((c) =>
      this.recordDeviceEvent(
        c,
        // Statements in WITH run to completion whether or not their output is read.
        `WITH r AS (DELETE FROM readings WHERE device_id = $1),
              l AS (DELETE FROM latest WHERE device_id = $1),
              c AS (DELETE FROM cursors WHERE device_id = $1),
              p AS (DELETE FROM presence WHERE device_id = $1),
              b AS (DELETE FROM blobs WHERE device_id = $1),
              d AS (DELETE FROM devices WHERE id = $1 RETURNING id)
         INSERT INTO device_events (device_id, kind, at) SELECT id, 'deleted', $2 FROM d`,
        [id, Date.now()],
      ),
    );
  }

  /**
   * Two statements and one commit for the whole batch: a multi-row insert (each chunk's bytes a binary
   * parameter; an array of them would travel as hex text, twice the size), then one prune for all its devices.
   */
  async appendBlobs(blobs: NewBlob[], budgetBytes: number): Promise<BlobInfo[]> {
    if (blobs.length === 0) return [];
    return this.tx(async (c) => {
      const infos: BlobInfo[] = [];
      for (let at = 0; at < blobs.length; at += BLOB_ROWS_PER_INSERT) {
        const part = blobs.slice(at, at + BLOB_ROWS_PER_INSERT);
        const { rows } = await c.query<BlobRow>(
          `INSERT INTO blobs (device_id, sensor, side, type, size, time, data) VALUES ${part.map((_, i) => `($${7 * i + 1}, $${7 * i + 2}, $${7 * i + 3}, $${7 * i + 4}, $${7 * i + 5}, $${7 * i + 6}, $${7 * i + 7})`).join(', ')} RETURNING ${BLOB_INFO_COLS}`,
          part.flatMap((b) => [b.deviceId, b.sensor, b.side, b.type, b.data.length, b.time, b.data]),
        );
        // Rows are inserted, and numbered, in the order of VALUES.
        infos.push(...rows.map(toBlobInfo).sort((x, y) => x.seq - y.seq));
      }
      const newest = newestPerDevice(infos);
      const devices = [...newest.keys()];
      // Two nodes pruning one device at once would delete the same rows in different orders and deadlock: each
      // device's prune waits its turn, locks taken in one order everywhere.
      await c.query({ name: 'iotc_blob_prune_lock', text: PRUNE_LOCK_SQL, values: [devices] });
      await c.query({ name: 'iotc_blob_prune', text: PRUNE_DEVICES_SQL, values: [devices, [...newest.values()], budgetBytes] });
      return infos;
    });
  }

  async latestBlob(deviceId: string, sensor: string, side?: Side): Promise<StoredBlob | null> {
    const { rows } = side
      ? await this.q<BlobRow>('SELECT * FROM blobs WHERE device_id = $1 AND sensor = $2 AND side = $3 ORDER BY seq DESC LIMIT 1', [deviceId, sensor, side])
      : await this.q<BlobRow>('SELECT * FROM blobs WHERE device_id = $1 AND sensor = $2 ORDER BY seq DESC LIMIT 1', [deviceId, sensor]);
    return rows[0] ? toStoredBlob(rows[0]) : null;
  }

  async getBlob(deviceId: string, sensor: string, seq: number): Promise<StoredBlob | null> {
    const { rows } = await this.q<BlobRow>('SELECT * FROM blobs WHERE device_id = $1 AND sensor = $2 AND seq = $3', [deviceId, sensor, seq]);
    return rows[0] ? toStoredBlob(rows[0]) : null;
  }

  async listBlobs(deviceId: string, sensor: string, limit: number): Promise<BlobInfo[]> {
    const { rows } = await this.q<BlobRow>(`SELECT ${BLOB_INFO_COLS} FROM blobs WHERE device_id = $1 AND sensor = $2 ORDER BY seq DESC LIMIT $3`, [deviceId, sensor, limit]);
    return rows.map(toBlobInfo);
  }

  async blobsToSync(deviceId: string, side: Side): Promise<StoredBlob[]> {
    const { rows } = await this.q<BlobRow>(blobsToSyncSql(true), [deviceId, otherSide(side), side], 'iotc_blobs_to_sync');
    return rows.map(toStoredBlob);
  }

  async latestBlobs(deviceId: string, side?: Side): Promise<BlobInfo[]> {
    const { rows } = await this.q<BlobRow>(latestBlobsSql(true, side !== undefined), side ? [deviceId, side] : [deviceId]);
    return rows.map(toBlobInfo);
  }

  async blobBytes(deviceId: string): Promise<number> {
    const { rows } = await this.q<{ n: string | number }>('SELECT COALESCE(SUM(size), 0) AS n FROM blobs WHERE device_id = $1', [deviceId]);
    return Number(rows[0].n);
  }

  async deviceEventsSince(afterSeq: number): Promise<DeviceEvent[]> {
    const { rows } = await this.q<{ seq: number; device_id: string; kind: DeviceEventKind; at: number }>(
      'SELECT seq, device_id, kind, at FROM device_events WHERE seq > $1 ORDER BY seq LIMIT 1000',
      [afterSeq],
      'iotc_events_since',
    );
    return rows.map((r) => ({ seq: r.seq, deviceId: r.device_id, kind: r.kind, at: r.at }));
  }

  async lastDeviceEventSeq(): Promise<number> {
    const { rows } = await this.q<{ seq: number }>('SELECT COALESCE(MAX(seq), 0) AS seq FROM device_events');
    return rows[0].seq;
  }

  async createSession(s: WebSession): Promise<void> {
    await this.q('INSERT INTO web_sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)', [
      s.idHash, s.userId, s.csrfToken, s.createdAt, s.expiresAt,
    ]);
  }

  async getSession(idHash: string, now: number): Promise<WebSession | null> {
    const { rows } = await this.q<SessionRow>('SELECT * FROM web_sessions WHERE id_hash = $1 AND expires_at > $2', [idHash, now]);
    const r = rows[0];
    return r ? toSession(r) : null;
  }

  async deleteSession(idHash: string): Promise<void> {
    await this.q('DELETE FROM web_sessions WHERE id_hash = $1', [idHash]);
  }

  async pruneSessions(now: number): Promise<number> {
    return (await this.q('DELETE FROM web_sessions WHERE expires_at <= $1', [now])).rowCount ?? 0;
  }

  async createApiToken(t: { userId: number; name: string; tokenHash: string }): Promise<ApiToken> {
    const { rows } = await this.q<TokenRow>(
      'INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING *',
      [t.userId, t.name, t.tokenHash, Date.now()],
    );
    return toToken(rows[0]);
  }

  async listApiTokens(userId: number): Promise<ApiToken[]> {
    return (await this.q<TokenRow>('SELECT * FROM api_tokens WHERE user_id = $1 ORDER BY created_at, id', [userId])).rows.map(toToken);
  }

  async useApiToken(tokenHash: string, now: number): Promise<ApiToken | null> {
    const { rows } = await this.q<TokenRow>('UPDATE api_tokens SET last_used = $1 WHERE token_hash = $2 RETURNING *', [now, tokenHash]);
    return rows[0] ? toToken(rows[0]) : null;
  }

  async deleteApiToken(userId: number, id: number): Promise<boolean> {
    return ((await this.q('DELETE FROM api_tokens WHERE user_id = $1 AND id = $2', [userId, id])).rowCount ?? 0) > 0;
  }

  async createInvite(invite: { codeHash: string; email: string | null }): Promise<Invite> {
    const { rows } = await this.q<InviteRow>('INSERT INTO invites (code_hash, email, created_at) VALUES ($1, $2, $3) RETURNING *', [invite.codeHash, invite.email, Date.now()]);
    return toInvite(rows[0]);
  }

  async claimInvite(codeHash: string, email: string, now: number, validSince: number): Promise<Invite | null> {
    const { rows } = await this.q<InviteRow>(
      'UPDATE invites SET used_at = $1, used_email = $2 WHERE code_hash = $3 AND used_at IS NULL AND created_at >= $4 AND (email IS NULL OR lower(email) = lower($2)) RETURNING *',
      [now, email, codeHash, validSince],
    );
    return rows[0] ? toInvite(rows[0]) : null;
  }

  async releaseInvite(codeHash: string): Promise<void> {
    await this.q('UPDATE invites SET used_at = NULL, used_email = NULL WHERE code_hash = $1', [codeHash]);
  }

  async listInvites(): Promise<Invite[]> {
    return (await this.q<InviteRow>('SELECT * FROM invites ORDER BY created_at DESC, code_hash')).rows.map(toInvite);
  }

  async setHomeAssistant(deviceId: string, on: boolean): Promise<boolean> {
    if (on) {
      const { rowCount } = await this.q('INSERT INTO ha_devices (device_id) SELECT id FROM devices WHERE id = $1 ON CONFLICT DO NOTHING', [deviceId]);
      if ((rowCount ?? 0) > 0) return true;
    } else {
      await this.q('DELETE FROM ha_devices WHERE device_id = $1', [deviceId]);
    }
    return (await this.q('SELECT 1 FROM devices WHERE id = $1', [deviceId])).rows.length > 0;
  }

  async homeAssistantDevices(all: boolean): Promise<string[]> {
    const sql = all ? 'SELECT id FROM devices ORDER BY id' : 'SELECT device_id AS id FROM ha_devices ORDER BY device_id';
    return (await this.q<{ id: string }>(sql)).rows.map((r) => r.id);
  }

  /**
   * One statement, so one round trip and its own transaction: a multi-row insert from arrays, then the
   * newest reading of each (device, sensor, side) moved into the latest table, in key order so concurrent
   * batches lock rows in the same order, and only forward so a slower node cannot put back an older value.
   */
  async appendReadings(readings: NewReading[]): Promise<StoredReading[]> {
    if (readings.length === 0) return [];
    const n = readings.length;
    const ids = new Array<string>(n);
    const sensors = new Array<string>(n);
    const sides = new Array<string>(n);
    const values = new Array<string>(n);
    const times = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const r = readings[i];
      ids[i] = r.deviceId;
      sensors[i] = r.sensor;
      sides[i] = r.side;
      values[i] = r.json ?? JSON.stringify(r.value);
      times[i] = r.time;
    }
    const { rows } = await this.q<{ seq: number }>(
      `WITH input AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
           WITH ORDINALITY AS t(device_id, sensor, side, value, time, ord)
       ), ins AS (
         INSERT INTO readings (device_id, sensor, side, value, time)
         SELECT device_id, sensor, side, value, time FROM input ORDER BY ord
         RETURNING seq, device_id, sensor, side, value, time
       ), up AS (
         INSERT INTO latest (device_id, sensor, side, seq, value, time)
         SELECT DISTINCT ON (device_id, sensor, side) device_id, sensor, side, seq, value, time
         FROM ins ORDER BY device_id, sensor, side, seq DESC
         ON CONFLICT (device_id, sensor, side) DO UPDATE SET seq = excluded.seq, value = excluded.value, time = excluded.time
         WHERE latest.seq < excluded.seq
       )
       SELECT seq FROM ins`,
      [ids, sensors, sides, values, times],
      'iotc_append_readings',
    );
    // Sequence numbers are drawn in insertion order, which is input order: the i-th smallest is the i-th reading's.
    const seqs = rows.map((r) => r.seq).sort((a, b) => a - b);
    return readings.map((r, i) => ({ seq: seqs[i], deviceId: r.deviceId, sensor: r.sensor, side: r.side, value: r.value, time: r.time }));
  }

  async latest(deviceId: string, sensor: string, side?: Side): Promise<StoredReading | null> {
    const { rows } = side
      ? await this.q<ReadingRow>(`SELECT ${READING_COLS} FROM latest WHERE device_id = $1 AND sensor = $2 AND side = $3`, [deviceId, sensor, side], 'iotc_latest_side')
      : await this.q<ReadingRow>(`SELECT ${READING_COLS} FROM latest WHERE device_id = $1 AND sensor = $2 ORDER BY seq DESC LIMIT 1`, [deviceId, sensor], 'iotc_latest_any');
    return rows[0] ? toReading(rows[0]) : null;
  }

  async latestAll(deviceId: string, side?: Side, page: SensorPage = {}): Promise<StoredReading[]> {
    const params: unknown[] = [deviceId];
    const where = ['device_id = $1'];
    if (side) where.push(`side = $${params.push(side)}`);
    if (page.after !== undefined) where.push(`sensor > $${params.push(page.after)}`);
    let sql = side
      ? `SELECT ${READING_COLS} FROM latest WHERE ${where.join(' AND ')} ORDER BY sensor`
      : `SELECT DISTINCT ON (sensor) ${READING_COLS} FROM latest WHERE ${where.join(' AND ')} ORDER BY sensor, seq DESC`;
    if (page.maxBytes !== undefined) {
      sql = `SELECT ${READING_COLS} FROM (SELECT *, SUM(length(value)) OVER (ORDER BY sensor ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
        FROM (${sql}) listed) counted WHERE before IS NULL OR before <= $${params.push(page.maxBytes)} ORDER BY sensor`;
    }
    const { rows } = await this.q<ReadingRow>(sql, params);
    return rows.map(toReading);
  }

  async sensorNames(deviceId: string): Promise<string[]> {
    const { rows } = await this.q<{ sensor: string }>('SELECT DISTINCT sensor FROM latest WHERE device_id = $1', [deviceId], 'iotc_sensor_names');
    return rows.map((r) => r.sensor);
  }

  async latestSince(deviceId: string, side: Side, afterSeq: number): Promise<StoredReading[]> {
    const { rows } = await this.q<ReadingRow>(
      `SELECT ${READING_COLS} FROM latest WHERE device_id = $1 AND side = $2 AND seq > $3 ORDER BY seq`,
      [deviceId, side, afterSeq],
      'iotc_latest_since',
    );
    return rows.map(toReading);
  }

  async history(deviceId: string, sensor: string, q: HistoryQuery): Promise<StoredReading[]> {
    const where = ['device_id = $1', 'sensor = $2'];
    const params: unknown[] = [deviceId, sensor];
    const add = (sql: string, v: unknown) => (params.push(v), where.push(sql.replace('?', `$${params.length}`)));
    if (q.from !== undefined) add('time >= ?', q.from);
    if (q.to !== undefined) add('time <= ?', q.to);
    if (q.side !== undefined) add('side = ?', q.side);
    params.push(q.limit);
    // A range reads forward from its start; a bare limit means "the most recent N".
    const newestFirst = q.from === undefined;
    const dir = newestFirst ? 'DESC' : 'ASC';
    const order = `ORDER BY time ${dir}, seq ${dir}`;
    let sql = `SELECT ${READING_COLS} FROM readings WHERE ${where.join(' AND ')} ${order} LIMIT $${params.length}`;
    if (q.maxBytes !== undefined) {
      // What the rows before each one hold, summed in the database: the values past the bound are never sent here.
      params.push(q.maxBytes);
      sql = `SELECT ${READING_COLS} FROM (SELECT *, SUM(length(value)) OVER (${order} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
        FROM (${sql}) limited) counted WHERE before IS NULL OR before <= $${params.length} ${order}`;
    }
    const { rows } = await this.q<ReadingRow>(sql, params);
    const out = rows.map(toReading);
    return newestFirst ? out.reverse() : out;
  }

  rollupSensors(after: SensorKey | null, limit: number): Promise<SensorKey[]> {
    return this.rollup.sensorsAfter(after, limit);
  }

  fillRollup(deviceId: string, sensor: string, now: number, maxHours: number): Promise<number> {
    return this.rollup.fillSlice(deviceId, sensor, now, maxHours);
  }

  async historyBuckets(deviceId: string, sensor: string, q: BucketQuery): Promise<HistoryBucket[]> {
    const plan = planRollup(q, Date.now());
    if (plan) return this.rollup.buckets(deviceId, sensor, q, plan);
    return (await this.rawBuckets(null, deviceId, sensor, q)).map(toBucket);
  }

  /** Aggregated history straight from the readings, on `c` (a transaction) or the pool. */
  private async rawBuckets(c: pg.PoolClient | null, deviceId: string, sensor: string, q: BucketQuery): Promise<BucketRow[]> {
    const source = `(SELECT time, seq, value FROM readings WHERE device_id = $3 AND sensor = $4 AND time >= $5 AND time <= $6${q.side ? ' AND side = $7' : ''}) AS src`;
    const params: unknown[] = [q.bucketMs, q.limit, deviceId, sensor, q.from, q.to];
    if (q.side) params.push(q.side);
    const sql = bucketsSql(POSTGRES_NUMERIC, source, (n) => `$${n}::bigint`);
    return (c ? await c.query<BucketRow>(sql, params) : await this.q<BucketRow>(sql, params)).rows;
  }

  async getCursor(deviceId: string, side: Side): Promise<number> {
    const { rows } = await this.q<{ seq: number }>('SELECT seq FROM cursors WHERE device_id = $1 AND side = $2', [deviceId, side], 'iotc_get_cursor');
    return rows[0]?.seq ?? 0;
  }

  async advanceCursor(deviceId: string, side: Side): Promise<void> {
    await this.q(
      `INSERT INTO cursors (device_id, side, seq, blob_seq)
       VALUES ($1, $2, (SELECT COALESCE(MAX(seq), 0) FROM latest WHERE device_id = $1), (SELECT COALESCE(MAX(seq), 0) FROM blobs WHERE device_id = $1))
       ON CONFLICT (device_id, side) DO UPDATE SET seq = GREATEST(cursors.seq, excluded.seq), blob_seq = GREATEST(cursors.blob_seq, excluded.blob_seq)`,
      [deviceId, side],
      'iotc_advance_cursor',
    );
  }

  async savePresence(nodeId: string, entries: PresenceEntry[], now: number, expiresAt: number): Promise<void> {
    // Sorted so that nodes saving at once lock rows in the same order.
    const sorted = [...entries].sort((a, b) => (a.deviceId === b.deviceId ? (a.side < b.side ? -1 : 1) : a.deviceId < b.deviceId ? -1 : 1));
    const open = sorted.filter((e) => e.connections > 0);
    const gone = sorted.filter((e) => e.connections <= 0);
    await this.tx(async (c) => {
      if (gone.length > 0) {
        await c.query('DELETE FROM presence WHERE node_id = $1 AND (device_id, side) IN (SELECT * FROM unnest($2::text[], $3::text[]))', [
          nodeId, gone.map((e) => e.deviceId), gone.map((e) => e.side),
        ]);
      }
      if (open.length > 0) {
        await c.query(
          `INSERT INTO presence (node_id, device_id, side, connections, expires_at)
           SELECT $1, d, s, n, $5 FROM unnest($2::text[], $3::text[], $4::int[]) AS t(d, s, n)
           ON CONFLICT (device_id, side, node_id) DO UPDATE SET connections = excluded.connections, expires_at = excluded.expires_at`,
          [nodeId, open.map((e) => e.deviceId), open.map((e) => e.side), open.map((e) => e.connections), expiresAt],
        );
      }
      await c.query('UPDATE presence SET expires_at = $2 WHERE node_id = $1', [nodeId, expiresAt]);
      // Last, and in id order, so the device rows shared with other nodes are locked briefly and in one order.
      // Last seen is the device's own side: an app (or the owner's browser) watching it is not the device.
      await c.query(
        `UPDATE devices d SET last_seen = $1 FROM (
           SELECT id FROM devices WHERE id = ANY($2::text[]) OR id IN (SELECT device_id FROM presence WHERE node_id = $3 AND side = 'device')
           ORDER BY id FOR UPDATE
         ) s WHERE d.id = s.id`,
        [now, sorted.filter((e) => e.side === 'device').map((e) => e.deviceId), nodeId],
      );
    });
    // Other nodes' expired counts: dead nodes leave them behind. Outside the transaction: nothing depends on it.
    await this.q('DELETE FROM presence WHERE expires_at <= $1', [now]);
  }

  async clearPresence(nodeId: string): Promise<void> {
    await this.q('DELETE FROM presence WHERE node_id = $1', [nodeId]);
  }

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
        let removed = 0;
        const keepsLatest = 'NOT EXISTS (SELECT 1 FROM latest l WHERE l.device_id = r.device_id AND l.sensor = r.sensor AND l.side = r.side AND l.seq = r.seq)';
        if (policy.maxAgeMs > 0) {
          // Sensors not written for the whole age go first, so their last readings are pruned with the rest.
          await client.query('DELETE FROM latest WHERE time < $1', [now - policy.maxAgeMs]);
          const aged = (await client.query(`DELETE FROM readings r WHERE time < $1 AND ${keepsLatest}`, [now - policy.maxAgeMs])).rowCount ?? 0;
          if (aged > 0) await this.rollup.forgetBefore(client, null, now - policy.maxAgeMs - 1);
          removed += aged;
        }
        if (policy.maxCount > 0) {
          const over = await client.query<{ device_id: string }>('SELECT device_id FROM readings GROUP BY device_id HAVING COUNT(*) > $1', [policy.maxCount]);
          for (const { device_id } of over.rows) {
            // The time of the newest reading deleted, so the rollup forgets the hours up to it.
            const { rows: [gone] } = await client.query<{ n: number; newest: number | null }>(
              `WITH d AS (DELETE FROM readings r WHERE device_id = $1
               AND seq <= (SELECT seq FROM readings WHERE device_id = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)
               AND ${keepsLatest} RETURNING time)
               SELECT COUNT(*)::bigint AS n, MAX(time) AS newest FROM d`,
              [device_id, policy.maxCount],
            );
            if (gone.newest !== null) await this.rollup.forgetBefore(client, device_id, gone.newest);
            removed += gone.n;
          }
        }
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

  async ping(): Promise<void> {
    await this.q('SELECT 1');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
