/** PostgreSQL for tests: a fresh database per test file on the machine's server, dropped at the end. */
import crypto from 'node:crypto';
import pg from 'pg';

export const PG_HOST = '127.0.0.1';
export const PG_PORT = 5432;

export function pgUrl(database: string, opts: { port?: number; schema?: string } = {}): string {
  const u = new URL(`postgres://postgres@${PG_HOST}:${opts.port ?? PG_PORT}/${database}`);
  if (opts.schema) u.searchParams.set('schema', opts.schema);
  return u.toString();
}

export interface TestDatabase {
  name: string;
  /** The database's URL, optionally with a schema of its own. */
  url(schema?: string): string;
  /** Runs SQL on the database itself (not through IOTcommunicate). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  drop(): Promise<void>;
}

async function admin<T>(port: number, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ host: PG_HOST, port, user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates `iotc_test_<random>`; `drop()` removes it even with connections left open. */
export async function createTestDatabase(port = PG_PORT): Promise<TestDatabase> {
  const name = `iotc_test_${crypto.randomBytes(6).toString('hex')}`;
  await admin(port, (c) => c.query(`CREATE DATABASE ${name}`));
  const pool = new pg.Pool({ host: PG_HOST, port, user: 'postgres', database: name, max: 2 });
  pool.on('error', () => {});
  return {
    name,
    url: (schema) => pgUrl(name, { port, schema }),
    query: (sql, params) => pool.query(sql, params),
    async drop() {
      await pool.end().catch(() => {});
      await admin(port, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
