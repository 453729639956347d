/** iotc backup and restore against real spawned servers and real SQLite files. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { findServer } from '../src/instance.js';
import path from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { runCli, spawnServe, startTestServer, tempDir, TestClient } from './helpers.js';
import type { ServeProcess } from './helpers.js';

const tmp = tempDir('iotc-backup-');
after(() => tmp.cleanup());

async function stop(serve: ServeProcess): Promise<void> {
  serve.child.kill('SIGTERM');
  await serve.exited;
}

async function makeAccount(dataDir: string): Promise<{ id: string; key: string }> {
  const env = { IOTC_DATA_DIR: dataDir };
  const user = await runCli(['user', 'add', '--email', 'club@example.com', '--name', 'Club', '--password', 'correct horse battery'], { env });
  assert.equal(user.code, 0, user.stderr);
  const device = await runCli(['device', 'add', '--email', 'club@example.com', '--name', 'Greenhouse', '--json'], { env });
  assert.equal(device.code, 0, device.stderr);
  return JSON.parse(device.stdout);
}

test('a backup taken while the server writes, restored into an empty data dir, answers gets with the backed-up values', async () => {
  const liveDir = path.join(tmp.dir, 'live');
  const restoredDir = path.join(tmp.dir, 'restored');
  const backupFile = path.join(tmp.dir, 'hub.backup');
  const d = await makeAccount(liveDir);

  // The writer below goes as fast as acks come: no rate limit in its way.
  const live = await spawnServe({ IOTC_DATA_DIR: liveDir, IOTC_RATE_LIMIT: '0' });
  let device: TestClient | null = null;
  try {
    device = await TestClient.connect(live.wsUrl, d.id, d.key, 'device');
    for (const [sensor, value] of [['temp', 21.5], ['door', 'closed'], ['light', { lux: 300 }]] as const) {
      const ack = await device.request({ method: 'put', status: { sensor, value } });
      assert.equal(ack.ok, true, JSON.stringify(ack));
    }
    // Keep writing while the backup runs: the copy must still be consistent.
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) await device!.request({ method: 'put', status: { sensor: 'counter', value: i } });
    })();
    const b = await runCli(['backup', backupFile], { env: { IOTC_DATA_DIR: liveDir } });
    writing = false;
    await writer;
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, /backed up .* 1 user\(s\), 1 device\(s\), \d+ reading\(s\)/);
    const mode = fs.statSync(backupFile).mode & 0o777;
    assert.equal(mode, 0o600, 'the backup holds key hashes: owner only');
    assert.equal(fs.existsSync(backupFile + '-wal'), false, 'the backup is one file');

    // Written after the backup: must not be in it.
    const late = await device.request({ method: 'put', status: { sensor: 'temp', value: 99 } });
    assert.equal(late.ok, true, JSON.stringify(late));

    // A second backup to the same name is refused without --force.
    const again = await runCli(['backup', backupFile], { env: { IOTC_DATA_DIR: liveDir } });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists.*--force/);
  } finally {
    device?.ws.close();
    await stop(live);
  }

  const backupDb = new Database(backupFile, { readonly: true });
  assert.equal(backupDb.pragma('quick_check', { simple: true }), 'ok');
  backupDb.close();

  const r = await runCli(['restore', backupFile], { env: { IOTC_DATA_DIR: restoredDir } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /restored .* 1 user\(s\), 1 device\(s\)/);

  const restored = await spawnServe({ IOTC_DATA_DIR: restoredDir });
  try {
    // The device's key hash came along: the same key opens it.
    const app = await TestClient.connect(restored.wsUrl, d.id, d.key, 'client');
    const temp = await app.request({ method: 'gets', sensor: 'temp' });
    assert.equal(temp.ok, true, JSON.stringify(temp));
    assert.equal(temp.value, 21.5, 'the value from before the backup, not the one written after it');
    assert.equal((await app.request({ method: 'gets', sensor: 'door' })).value, 'closed');
    assert.deepEqual((await app.request({ method: 'gets', sensor: 'light' })).value, { lux: 300 });
    app.ws.close();

    // A server runs on the restored dir: restoring over it is refused, even with --force.
    const busy = await runCli(['restore', backupFile, '--force'], { env: { IOTC_DATA_DIR: restoredDir } });
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, new RegExp(`server \\(process ${restored.child.pid}\\) is running`));
  } finally {
    await stop(restored);
  }

  // Stopped, the dir holds data: refused without --force, done with it.
  const full = await runCli(['restore', backupFile], { env: { IOTC_DATA_DIR: restoredDir } });
  assert.equal(full.code, 1);
  assert.match(full.stderr, /is not empty \(it holds 1 user\(s\), 1 device\(s\).*--force/);
  const forced = await runCli(['restore', backupFile, '--force'], { env: { IOTC_DATA_DIR: restoredDir } });
  assert.equal(forced.code, 0, forced.stderr);
});

test('restore refuses what is not a backup, and backup says what to do with PostgreSQL', async () => {
  const dir = path.join(tmp.dir, 'refusals');
  fs.mkdirSync(dir);
  const junk = path.join(dir, 'junk.db');
  fs.writeFileSync(junk, 'this is not a database at all, just some text');
  const r = await runCli(['restore', junk], { env: { IOTC_DATA_DIR: path.join(dir, 'data') } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /backup .*junk\.db/);
  const missing = await runCli(['restore', path.join(dir, 'nope.db')], { env: { IOTC_DATA_DIR: path.join(dir, 'data') } });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Cannot open the backup/);
  const pg = await runCli(['backup', path.join(dir, 'x.db')], { env: { IOTC_STORE: 'postgres://postgres@127.0.0.1:5432/iotc' } });
  assert.equal(pg.code, 1);
  assert.match(pg.stderr, /pg_dump --format=custom/);
  const noFile = await runCli(['backup'], { env: { IOTC_DATA_DIR: dir } });
  assert.equal(noFile.code, 2);
});

test('restore is refused while a server runs on the database (its instance lock), and the lock goes with the server', async () => {
  const server = await startTestServer();
  const config = { store: 'sqlite', dataDir: server.dataDir };
  assert.equal(findServer(config).state, 'running');
  const r = await runCli(['restore', path.join(server.dataDir, 'iotc.db')], { env: { IOTC_DATA_DIR: server.dataDir } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`A server \\(process ${process.pid}\\) is running on`));
  await server.stop({ keepData: true });
  assert.equal(findServer(config).state, 'stopped');
  fs.rmSync(server.dataDir, { recursive: true, force: true });
});
