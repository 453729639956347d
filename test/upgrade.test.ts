/**
 * The upgrade path: a database written by the previous release (its migrations only, the list truncated) is
 * opened by this version's server, upgraded in place, and answers with what it held.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { hashPassword, hashSecret } from '../src/core/secrets.js';
import { POSTGRES_MIGRATIONS } from '../src/store/postgres-migrations.js';
import { SQLITE_MIGRATIONS } from '../src/store/sqlite-migrations.js';
import { serviceAvailable, startTestServer, tempDir, TestClient } from './helpers.js';
import { createTestDatabase, PG_PORT } from './pg-helpers.js';

/** The previous release (0.1.0): SQLite at migration 2, PostgreSQL at migration 1. */
const PREVIOUS = { sqlite: 2, postgres: 1 };
const DEVICE = { id: 'UPGRADE0000000000001', key: 'KEY000000000001' };
const PASSWORD = 'correct horse battery';

const tmp = tempDir('iotc-upgrade-');
after(() => tmp.cleanup());
const havePg = await serviceAvailable('PostgreSQL', PG_PORT);

/** What the previous release's users had: an account, a device, readings from both sides. */
async function previousReleaseRows(): Promise<unknown[][]> {
  const pw = await hashPassword(PASSWORD);
  return [
    ['INSERT INTO users (email, name, password_hash, created_at) VALUES ($1, $2, $3, $4)', ['old@example.com', 'Old', pw, 1_700_000_000_000]],
    ['INSERT INTO devices (id, user_id, name, key_hash, created_at) VALUES ($1, 1, $2, $3, $4)', [DEVICE.id, 'Boiler', hashSecret(DEVICE.key), 1_700_000_000_000]],
  ];
}

async function assertUpgradedHubAnswers(store: string, dataDir: string): Promise<void> {
  const server = await startTestServer({ store }, dataDir);
  try {
    const app = await TestClient.connect(server.wsUrl, DEVICE.id, DEVICE.key, 'client');
    const temp = await app.request({ method: 'gets', sensor: 'temp' });
    assert.equal(temp.value, 64.5, JSON.stringify(temp));
    assert.equal((await app.request({ method: 'put', status: { sensor: 'setpoint', value: 70 } })).ok, true);
    app.ws.close();
    assert.ok(await server.hub.accounts.logIn('old@example.com', PASSWORD), 'the old password still logs in');
    assert.equal(server.hub.store.kind, store === 'sqlite' ? 'sqlite' : 'postgres');
  } finally {
    await server.stop({ keepData: true });
  }
}

test(`SQLite: a database at the previous release's schema (${PREVIOUS.sqlite}) is upgraded to ${SQLITE_MIGRATIONS.length} and keeps its data`, async () => {
  const dataDir = path.join(tmp.dir, 'sqlite');
  const file = path.join(dataDir, 'iotc.db');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  for (const sql of SQLITE_MIGRATIONS.slice(0, PREVIOUS.sqlite)) db.exec(sql);
  db.pragma(`user_version = ${PREVIOUS.sqlite}`);
  for (const [sql, params] of (await previousReleaseRows()) as [string, unknown[]][]) db.prepare(sql.replace(/\$\d/g, '?')).run(...params);
  db.prepare("INSERT INTO readings_journal (device_id, sensor, side, value, time) VALUES (?, 'temp', 'device', '64.5', ?)").run(DEVICE.id, Date.now());
  db.exec('INSERT INTO latest (device_id, sensor, side, seq, value, time) SELECT device_id, sensor, side, seq, value, time FROM readings_journal');
  db.close();

  await assertUpgradedHubAnswers('sqlite', dataDir);
  const after = new Database(file, { readonly: true });
  assert.equal(after.pragma('user_version', { simple: true }), SQLITE_MIGRATIONS.length);
  after.close();
});

test(`PostgreSQL: a schema at the previous release's migration (${PREVIOUS.postgres}) is upgraded to ${POSTGRES_MIGRATIONS.length}`, { skip: !havePg }, async () => {
  const database = await createTestDatabase();
  try {
    const client = new pg.Client({ connectionString: database.url() });
    await client.connect();
    try {
      await client.query('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
      for (let v = 0; v < PREVIOUS.postgres; v++) {
        await client.query(POSTGRES_MIGRATIONS[v]);
        await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [v + 1, Date.now()]);
      }
      for (const [sql, params] of (await previousReleaseRows()) as [string, unknown[]][]) await client.query(sql, params);
      await client.query("INSERT INTO readings (device_id, sensor, side, value, time) VALUES ($1, 'temp', 'device', '64.5', $2)", [DEVICE.id, Date.now()]);
      await client.query("INSERT INTO latest (device_id, sensor, side, seq, value, time) SELECT device_id, sensor, side, seq, value, time FROM readings");
    } finally {
      await client.end();
    }
    await assertUpgradedHubAnswers(database.url(), path.join(tmp.dir, 'pg-unused'));
    const { rows } = await database.query<{ v: number }>('SELECT MAX(version)::int AS v FROM schema_migrations');
    assert.equal(rows[0].v, POSTGRES_MIGRATIONS.length);
  } finally {
    await database.drop();
  }
});
