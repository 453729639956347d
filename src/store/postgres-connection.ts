/** Reaching PostgreSQL: what a store URL says, which driver errors mean something to a caller, and migrating the schema. */
import pg from 'pg';
import { IotcError } from '../core/errors.js';
import { POSTGRES_MIGRATIONS } from './postgres-migrations.js';

// Ids, sequence numbers and ms timestamps are BIGINT; they all fit a JS number exactly (< 2^53).
const INT8_OID = 20;
export const typeParsers = {
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

/** SQLSTATE classes and socket errors that mean "the database cannot be reached right now". */
export function isUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  const code = e?.code ?? '';
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'].includes(code)) return true;
  // 08: connection exception; 57P0x: shutting down / cannot connect now; 53300: too many connections;
  // 40001/40P01: serialization failure / deadlock: the statement can simply be retried.
  if (code.startsWith('08') || /^57P0[1-4]$/.test(code) || ['53300', '40001', '40P01'].includes(code)) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Connection ended/i.test(e?.message ?? '');
}

/** Turns driver errors into catalogue errors where they mean something to a caller; anything else stays as it is. */
export function mapError(err: unknown): unknown {
  if (err instanceof IotcError) return err;
  if (isUnavailable(err)) {
    return new IotcError('E_UNAVAILABLE', `The database is unreachable (${(err as Error).message}); try again shortly`, { cause: err, retryAfterSeconds: 1 });
  }
  if ((err as { code?: string }).code === '22021') {
    return new IotcError('E_VALIDATION', 'Text must not contain NUL characters', { cause: err });
  }
  return err;
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
