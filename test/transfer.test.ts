/** iotc export / import: everything moved between SQLite and the real PostgreSQL, counts compared both ways. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { ApiTokens } from '../src/core/tokens.js';
import { exportStore, importStore } from '../src/store/transfer.js';
import { MOVED_TABLES } from '../src/store/transfer-tables.js';
import { makeDevice, runCli, serviceAvailable, startTestServer, tempDir, TestClient, testConfig } from './helpers.js';
import { createTestDatabase, PG_PORT } from './pg-helpers.js';
import type { TestDatabase } from './pg-helpers.js';

const tmp = tempDir('iotc-transfer-');
after(() => tmp.cleanup());
const havePg = await serviceAvailable('PostgreSQL', PG_PORT);

interface Source {
  dataDir: string;
  device: { id: string; key: string; email: string };
  token: string;
  readings: number;
}

/** A SQLite hub with two accounts, devices, a token, a web session's worth of tables and readings past one batch. */
async function sqliteHub(name: string): Promise<Source> {
  const dataDir = path.join(tmp.dir, name);
  const server = await startTestServer({}, dataDir);
  try {
    const d = await makeDevice(server, 'Greenhouse');
    const other = await makeDevice(server, 'Garage');
    const token = await new ApiTokens(server.hub.store, testConfig()).create(d.userId, 'script');
    const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    assert.equal((await device.request({ method: 'put', status: { sensor: 'temp', value: 21.5 } })).ok, true);
    assert.equal((await device.request({ method: 'put', status: { sensor: 'mode', value: { auto: true, note: 'ünïcødé "quoted"' } } })).ok, true);
    device.ws.close();
    const bulk = Array.from({ length: 2500 }, (_, i) => ({ deviceId: other.id, sensor: 'n', value: i, side: 'device' as const, time: 1_764_000_000_000 + i }));
    await server.hub.store.appendReadings(bulk);
    return { dataDir, device: { id: d.id, key: d.key, email: d.email }, token: token.token, readings: bulk.length + 2 };
  } finally {
    await server.stop({ keepData: true });
  }
}

function sqliteCounts(dataDir: string): Record<string, number> {
  const db = new Database(path.join(dataDir, 'iotc.db'), { readonly: true });
  try {
    const n = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
    // readings is a view expanding the chunks (moved or journaled): one row per reading.
    return Object.fromEntries(MOVED_TABLES.map((s) => [s.name, n(`SELECT COUNT(*) AS n FROM ${s.name}`)]));
  } finally {
    db.close();
  }
}

/** A hub started on `store` still knows the device's key, its values and the API token. */
async function assertSameData(store: string, dataDir: string, src: Source, temp = 21.5): Promise<void> {
  const server = await startTestServer({ store }, dataDir);
  try {
    const app = await TestClient.connect(server.wsUrl, src.device.id, src.device.key, 'client');
    assert.equal((await app.request({ method: 'gets', sensor: 'temp' })).value, temp);
    assert.deepEqual((await app.request({ method: 'gets', sensor: 'mode' })).value, { auto: true, note: 'ünïcødé "quoted"' });
    // New writes get numbers above the imported ones: the latest is the new value.
    assert.equal((await app.request({ method: 'put', status: { sensor: 'temp', value: 22 } })).ok, true);
    assert.equal((await app.request({ method: 'gets', sensor: 'temp' })).value, 22);
    app.ws.close();
    const res = await fetch(`${server.url}/api/v1/devices`, { headers: { authorization: `Bearer ${src.token}` } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { devices: { id: string }[] } | { id: string }[];
    const devices = Array.isArray(body) ? body : body.devices;
    assert.ok(devices.some((d) => d.id === src.device.id), JSON.stringify(body));
    // A new user gets an id past the imported ones.
    const user = await server.hub.accounts.signUp({ email: `new-${Date.now()}@example.com`, name: 'New', password: 'correct horse battery' });
    assert.ok(user.id > 2);
  } finally {
    await server.stop({ keepData: true });
  }
}

describe('export and import between SQLite and PostgreSQL', { skip: !havePg }, () => {
  let pgdb: TestDatabase;
  let src: Source;
  before(async () => {
    pgdb = await createTestDatabase();
    src = await sqliteHub('source');
  });
  after(() => pgdb?.drop());

  test('SQLite → PostgreSQL → SQLite with the CLI: every table arrives with the same count and the same data', async () => {
    const file = path.join(tmp.dir, 'hub.jsonl');
    const exp = await runCli(['export', file], { env: { IOTC_DATA_DIR: src.dataDir } });
    assert.equal(exp.code, 0, exp.stderr);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const before = sqliteCounts(src.dataDir);
    assert.equal(before.readings, src.readings);
    assert.equal(before.users, 2);
    assert.equal(before.api_tokens, 1);
    assert.match(exp.stdout, new RegExp(`readings ${src.readings}`));
    const header = JSON.parse(fs.readFileSync(file, 'utf8').split('\n')[0]);
    assert.equal(header.format, 'iotcommunicate-export');
    assert.equal(header.store, 'sqlite');
    assert.equal(typeof header.schema, 'number');

    const pgUrl = pgdb.url();
    const imp = await runCli(['import', file], { env: { IOTC_STORE: pgUrl } });
    assert.equal(imp.code, 0, imp.stderr);
    for (const spec of MOVED_TABLES) {
      const { rows } = await pgdb.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM ${spec.name}`);
      assert.equal(rows[0].n, before[spec.name], `${spec.name} in PostgreSQL`);
    }
    const hash = await pgdb.query<{ key_hash: string }>('SELECT key_hash FROM devices WHERE id = $1', [src.device.id]);
    const db = new Database(path.join(src.dataDir, 'iotc.db'), { readonly: true });
    assert.equal(hash.rows[0].key_hash, (db.prepare('SELECT key_hash FROM devices WHERE id = ?').get(src.device.id) as { key_hash: string }).key_hash);
    db.close();

    // A second import into a store holding data is refused, and changes nothing.
    const again = await runCli(['import', file], { env: { IOTC_STORE: pgUrl } });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /not empty \(users 2.*--force/);

    await assertSameData(pgUrl, path.join(tmp.dir, 'unused'), src);

    // And back: PostgreSQL → a new SQLite data dir.
    const back = path.join(tmp.dir, 'back.jsonl');
    const exp2 = await runCli(['export', back], { env: { IOTC_STORE: pgUrl } });
    assert.equal(exp2.code, 0, exp2.stderr);
    assert.equal(JSON.parse(fs.readFileSync(back, 'utf8').split('\n')[0]).store, 'postgres');
    const target = path.join(tmp.dir, 'back-sqlite');
    const imp2 = await runCli(['import', back], { env: { IOTC_DATA_DIR: target } });
    assert.equal(imp2.code, 0, imp2.stderr);
    const after = sqliteCounts(target);
    // What assertSameData wrote on PostgreSQL came along: a user, and the app's reading with its latest value and cursor.
    assert.deepEqual(after, { ...before, users: before.users + 1, readings: before.readings + 1, latest: before.latest + 1, cursors: before.cursors + 1 });
    // The app's 22 written on PostgreSQL is the latest here too.
    await assertSameData('sqlite', target, src, 22);

    // --force replaces what a store holds.
    const forced = await runCli(['import', file, '--force'], { env: { IOTC_DATA_DIR: target } });
    assert.equal(forced.code, 0, forced.stderr);
    assert.deepEqual(sqliteCounts(target), before);
  });
});

describe('export and import refuse what they do not know', () => {
  test('a store with an unknown table: export names it and writes nothing', async () => {
    const src = await sqliteHub('mystery');
    const db = new Database(path.join(src.dataDir, 'iotc.db'));
    db.exec('CREATE TABLE mystery_widgets (id INTEGER PRIMARY KEY, spec TEXT)');
    db.close();
    const file = path.join(tmp.dir, 'mystery.jsonl');
    await assert.rejects(exportStore({ store: 'sqlite', dataDir: src.dataDir, storePool: 1 }, file), /table\(s\) mystery_widgets .* does not know.*transfer-tables\.ts/);
    assert.equal(fs.existsSync(file), false);
    assert.equal(fs.existsSync(file + '.partial'), false);
  });

  test('a file with an unknown table, a cut-short file or a wrong count: nothing is imported', async () => {
    const src = await sqliteHub('files');
    const good = path.join(tmp.dir, 'files.jsonl');
    await exportStore({ store: 'sqlite', dataDir: src.dataDir, storePool: 1 }, good);
    const lines = fs.readFileSync(good, 'utf8').trimEnd().split('\n');
    const variants: [string, string[], RegExp][] = [
      ['unknown-table', [...lines.slice(0, -1), '{"table":"mystery_widgets","columns":["id"]}', '[1]', '{"end":"mystery_widgets","rows":1}', lines.at(-1)!], /table mystery_widgets is not one this IOTcommunicate imports/],
      ['cut', lines.slice(0, Math.floor(lines.length / 2)), /cut short|ends inside|no table/],
      ['miscount', lines.map((l) => l.replace(/^\{"end":"devices","rows":2\}$/, '{"end":"devices","rows":3}')), /devices declares 3 rows but has 2/],
      ['not-export', ['{"hello":1}'], /not an IOTcommunicate export/],
    ];
    for (const [name, content, error] of variants) {
      const file = path.join(tmp.dir, `${name}.jsonl`);
      fs.writeFileSync(file, content.join('\n') + '\n');
      const dataDir = path.join(tmp.dir, `into-${name}`);
      await assert.rejects(importStore({ store: 'sqlite', dataDir, storePool: 1 }, file), error, name);
      const counts = sqliteCounts(dataDir);
      assert.ok(Object.values(counts).every((n) => n === 0), `${name}: the store stays empty, got ${JSON.stringify(counts)}`);
    }
    // And the good file goes in.
    const dataDir = path.join(tmp.dir, 'into-good');
    const counts = await importStore({ store: 'sqlite', dataDir, storePool: 1 }, good);
    assert.deepEqual(sqliteCounts(dataDir), counts);
  });
});
