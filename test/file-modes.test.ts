/** Issue 9: the data dir and the SQLite files are the hub user's alone. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createLogger } from '../src/log.js';
import { createStore } from '../src/store/index.js';
import { LogCapture, tempDir } from './helpers.js';

const mode = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);

test('a new data dir is 0700 and the database, its WAL and SHM files 0600, whatever the umask', async () => {
  const { dir, cleanup } = tempDir();
  const old = process.umask(0o022);
  try {
    const dataDir = path.join(dir, 'nested', 'data');
    const store = await createStore({ store: 'sqlite', dataDir });
    await store.createUser({ name: 'A', email: 'a@example.com', passwordHash: 'x' });
    const db = path.join(dataDir, 'iotc.db');
    assert.ok(fs.existsSync(`${db}-wal`) && fs.existsSync(`${db}-shm`), 'WAL mode made its files');
    assert.deepEqual([mode(dataDir), mode(db), mode(`${db}-wal`), mode(`${db}-shm`)], ['700', '600', '600', '600']);
    await store.close();
  } finally {
    process.umask(old);
    cleanup();
  }
});

test('an existing data dir others can read is kept as it is, with a warning at start saying how to fix it', async () => {
  const { dir, cleanup } = tempDir();
  try {
    fs.chmodSync(dir, 0o755);
    const logs = new LogCapture();
    const store = await createStore({ store: 'sqlite', dataDir: dir }, createLogger('info', logs));
    await store.close();
    assert.equal(mode(dir), '755');
    assert.match(logs.text, new RegExp(`data dir ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} can be read by other users.*chmod 700`));
    assert.doesNotMatch(logs.text, /database file/, 'the database file it made is 0600');
  } finally {
    cleanup();
  }
});
