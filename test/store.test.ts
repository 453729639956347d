/**
 * The Store contract against every store (SQLite in a temp file; PostgreSQL in a fresh schema per test
 * inside a database made for this file), plus what only PostgreSQL has: concurrent migrations, refusing a
 * newer schema, one pruning node at a time, clear errors when the database is unreachable, and the CLI.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { IotcError } from '../src/core/errors.js';
import { POSTGRES_MIGRATIONS } from '../src/store/postgres-migrations.js';
import { PostgresStore } from '../src/store/postgres.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { createStore, describeStore } from '../src/store/index.js';
import { runCli, serviceAvailable, tempDir } from './helpers.js';
import { createTestDatabase } from './pg-helpers.js';
import type { TestDatabase } from './pg-helpers.js';
import { storeContract } from './store-contract.js';
import { callStoreContract } from './call-store-contract.js';
import { sharingStoreContract } from './sharing-store-contract.js';
import { dashboardStoreContract } from './dashboard-store-contract.js';

// Checked before any test is declared: tests start running at once, and SQLite's synchronous calls would
// hold up the check's timer.
const pgUp = await serviceAvailable('PostgreSQL', 5432);

const sqliteFixture = {
  async fresh() {
    const tmp = tempDir('iotc-store-');
    const file = path.join(tmp.dir, 'iotc.db');
    return { open: async () => new SqliteStore(file), destroy: async () => tmp.cleanup() };
  },
};
storeContract('sqlite', sqliteFixture);
callStoreContract('sqlite', sqliteFixture);
sharingStoreContract('sqlite', sqliteFixture);
dashboardStoreContract('sqlite', sqliteFixture);

let db: TestDatabase | null = null;
if (pgUp) {
  db = await createTestDatabase();
  after(() => db!.drop());
}
const newSchema = () => `s_${crypto.randomBytes(5).toString('hex')}`;

const postgresFixture = {
  async fresh() {
    const schema = newSchema();
    return {
      open: () => PostgresStore.open(db!.url(schema)),
      destroy: async () => void (await db!.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)),
    };
  },
};
storeContract('postgres', postgresFixture, { skip: !pgUp && 'PostgreSQL not reachable' });
callStoreContract('postgres', postgresFixture, { skip: !pgUp && 'PostgreSQL not reachable' });
sharingStoreContract('postgres', postgresFixture, { skip: !pgUp && 'PostgreSQL not reachable' });
dashboardStoreContract('postgres', postgresFixture, { skip: !pgUp && 'PostgreSQL not reachable' });

describe('PostgreSQL store specifics', { skip: !pgUp && 'PostgreSQL not reachable' }, () => {
  test('nodes starting at once migrate the schema exactly once', async () => {
    const schema = newSchema();
    const stores = await Promise.all(Array.from({ length: 5 }, () => PostgresStore.open(db!.url(schema))));
    try {
      const { rows } = await db!.query<{ version: number }>(`SELECT version FROM ${schema}.schema_migrations ORDER BY version`);
      assert.deepEqual(rows.map((r) => r.version), POSTGRES_MIGRATIONS.map((_, i) => i + 1));
      // All five work on the same tables.
      const user = await stores[0].createUser({ email: 'a@example.com', name: 'A', passwordHash: 'h' });
      for (const s of stores) assert.equal((await s.getUser(user.id))?.email, 'a@example.com');
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await db!.query(`DROP SCHEMA ${schema} CASCADE`);
    }
  });

  test('every foreign key has an index leading with it: a cascading delete never reads the whole hub', async () => {
    const schema = newSchema();
    const s = await PostgresStore.open(db!.url(schema));
    await s.close();
    try {
      // A partial index (the open alert of a rule) does not hold every row a cascade must find.
      const { rows } = await db!.query<{ fk: string }>(
        `SELECT c.conrelid::regclass::text || '.' || a.attname AS fk
           FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
          WHERE c.contype = 'f' AND c.connamespace = $1::regnamespace
            AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1] AND i.indpred IS NULL)
          ORDER BY 1`,
        [schema],
      );
      assert.deepEqual(rows.map((r) => r.fk), []);
    } finally {
      await db!.query(`DROP SCHEMA ${schema} CASCADE`);
    }
  });

  test('a database written by a newer version is refused with a clear message', async () => {
    const schema = newSchema();
    const s = await PostgresStore.open(db!.url(schema));
    await s.close();
    await db!.query(`INSERT INTO ${schema}.schema_migrations (version, applied_at) VALUES ($1, 0)`, [POSTGRES_MIGRATIONS.length + 1]);
    try {
      await assert.rejects(PostgresStore.open(db!.url(schema)), /schema version \d+, but this IOTcommunicate knows only up to \d+.*newer version/s);
    } finally {
      await db!.query(`DROP SCHEMA ${schema} CASCADE`);
    }
  });

  test('while one node prunes, the others skip the round', async () => {
    const schema = newSchema();
    const a = await PostgresStore.open(db!.url(schema));
    const b = await PostgresStore.open(db!.url(schema));
    try {
      const user = await a.createUser({ email: 'p@example.com', name: 'P', passwordHash: 'h' });
      const device = await a.createDevice({ id: 'PRUNEDEVICE000000001', userId: user.id, name: 'D', keyHash: 'h' });
      await a.appendReadings(Array.from({ length: 10 }, (_, i) => ({ deviceId: device.id, sensor: 't', value: i, side: 'device' as const, time: 1000 + i })));
      // Hold the pruning lock the way a pruning node does, from a connection of its own.
      const other = new pg.Client({ connectionString: db!.url().replace(/\?.*$/, '') });
      await other.connect();
      try {
        const { rows } = await other.query<{ got: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS got', [`iotc:prune:${schema}`]);
        assert.equal(rows[0].got, true);
        assert.equal(await b.prune({ maxCount: 2, maxAgeMs: 0 }, Date.now()), 0, 'skipped: another node holds the lock');
        assert.equal((await b.history(device.id, 't', { limit: 100 })).length, 10);
        await other.query('SELECT pg_advisory_unlock(hashtext($1))', [`iotc:prune:${schema}`]);
      } finally {
        await other.end();
      }
      // Two nodes pruning at once: the work is done once, whoever wins.
      const [ra, rb] = await Promise.all([a.prune({ maxCount: 2, maxAgeMs: 0 }, Date.now()), b.prune({ maxCount: 2, maxAgeMs: 0 }, Date.now())]);
      assert.equal(ra + rb, 8);
      assert.deepEqual((await a.history(device.id, 't', { limit: 100 })).map((r) => r.value), [8, 9]);
    } finally {
      await a.close();
      await b.close();
      await db!.query(`DROP SCHEMA ${schema} CASCADE`);
    }
  });

  test('batches from several nodes at once keep every reading, and latest ends at the highest sequence number', async () => {
    const schema = newSchema();
    const nodes = await Promise.all([0, 1, 2].map(() => PostgresStore.open(db!.url(schema))));
    try {
      const user = await nodes[0].createUser({ email: 'c@example.com', name: 'C', passwordHash: 'h' });
      const device = await nodes[0].createDevice({ id: 'CONCURRENTDEVICE0001', userId: user.id, name: 'D', keyHash: 'h' });
      const batches = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          nodes[i % 3].appendReadings(
            ['a', 'b', 'c'].map((sensor) => ({ deviceId: device.id, sensor, value: i, side: (i % 2 ? 'client' : 'device') as 'client' | 'device', time: 1000 + i })),
          ),
        ),
      );
      const all = batches.flat();
      assert.equal(new Set(all.map((r) => r.seq)).size, 90, 'every reading has its own sequence number');
      for (const sensor of ['a', 'b', 'c']) {
        const hist = await nodes[1].history(device.id, sensor, { limit: 1000 });
        assert.equal(hist.length, 30);
        for (const side of ['device', 'client'] as const) {
          const newest = all.filter((r) => r.sensor === sensor && r.side === side).sort((x, y) => y.seq - x.seq)[0];
          assert.equal((await nodes[2].latest(device.id, sensor, side))?.seq, newest.seq);
        }
      }
    } finally {
      await Promise.all(nodes.map((n) => n.close()));
      await db!.query(`DROP SCHEMA ${schema} CASCADE`);
    }
  });

  test('text with a NUL character is a validation error, not a crash', async () => {
    const schema = newSchema();
    const s = await PostgresStore.open(db!.url(schema));
    try {
      await assert.rejects(s.createUser({ email: 'n@example.com', name: 'bad\u0000name', passwordHash: 'h' }), (err: unknown) => {
        assert.ok(err instanceof IotcError);
        assert.equal(err.code, 'E_VALIDATION');
        return true;
      });
    } finally {
      await s.close();
      await db!.query(`DROP SCHEMA ${schema} CASCADE`);
    }
  });

  test('the factory picks PostgreSQL from a postgres:// URL, and logs it without the password', async () => {
    const schema = newSchema();
    const store = await createStore({ store: db!.url(schema), dataDir: '/nonexistent', storePool: 2 });
    try {
      assert.equal(store.kind, 'postgres');
      await store.ping();
    } finally {
      await store.close();
      await db!.query(`DROP SCHEMA ${schema} CASCADE`);
    }
    assert.equal(describeStore({ store: 'postgres://iotc:s3cret@db.example:5432/iotc', dataDir: '.' }).includes('s3cret'), false);
  });

  test('the CLI creates users and devices, lists, rotates and deletes against PostgreSQL', async () => {
    const schema = newSchema();
    const env = { IOTC_STORE: db!.url(schema) };
    try {
      const user = await runCli(['user', 'add', '--email', 'cli@example.com', '--name', 'Cli', '--password', 'correct horse', '--json'], { env });
      assert.equal(user.code, 0, user.stderr);
      assert.equal(JSON.parse(user.stdout).email, 'cli@example.com');
      const dev = await runCli(['device', 'add', '--email', 'cli@example.com', '--name', 'Lamp', '--json'], { env });
      assert.equal(dev.code, 0, dev.stderr);
      const { id, key } = JSON.parse(dev.stdout);
      assert.match(id, /^[A-Z0-9]{20}$/);
      assert.match(key, /^[A-Z0-9]{15}$/);
      const list = await runCli(['device', 'list', '--email', 'cli@example.com', '--json'], { env });
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual(JSON.parse(list.stdout).map((d: { id: string; online: boolean }) => [d.id, d.online]), [[id, false]]);
      const rotated = await runCli(['device', 'rotate', id, '--json'], { env });
      assert.equal(rotated.code, 0, rotated.stderr);
      assert.notEqual(JSON.parse(rotated.stdout).key, key);
      const dup = await runCli(['user', 'add', '--email', 'cli@example.com', '--name', 'Again', '--password', 'correct horse'], { env });
      assert.equal(dup.code, 1);
      assert.match(dup.stderr, /already exists/);
      const del = await runCli(['device', 'delete', id], { env });
      assert.equal(del.code, 0, del.stderr);
      const { rows } = await db!.query<{ kind: string }>(`SELECT kind FROM ${schema}.device_events ORDER BY seq`);
      assert.deepEqual(rows.map((r) => r.kind), ['rotated', 'deleted']);
    } finally {
      await db!.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  });
});

describe('PostgreSQL unreachable', () => {
  let closedPort = 0;
  before(async () => {
    // A port nothing listens on: bind one, note it, free it.
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    closedPort = (srv.address() as net.AddressInfo).port;
    await new Promise((r) => srv.close(r));
  });

  test('opening fails fast with a message naming the server and hiding the password', async () => {
    const started = Date.now();
    await assert.rejects(PostgresStore.open(`postgres://iotc:s3cret@127.0.0.1:${closedPort}/iotc`), (err: Error) => {
      assert.match(err.message, new RegExp(`Cannot reach PostgreSQL at postgres://iotc:\\*\\*\\*@127\\.0\\.0\\.1:${closedPort}/iotc`));
      assert.equal(err.message.includes('s3cret'), false);
      return true;
    });
    assert.ok(Date.now() - started < 6000);
  });

  test('the CLI says so and exits 1', async () => {
    const r = await runCli(['device', 'list', '--email', 'x@example.com'], { env: { IOTC_STORE: `postgres://postgres@127.0.0.1:${closedPort}/iotc` } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Cannot reach PostgreSQL/);
  });
});
