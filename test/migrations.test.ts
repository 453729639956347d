/** SQLite schema migrations: applied once and atomically; a database from a newer version is refused, untouched. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, test } from 'node:test';
import Database from 'better-sqlite3';
import { run } from '../src/cli/main.js';
import { SQLITE_MIGRATIONS } from '../src/store/sqlite-migrations.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { startTestServer, tempDir } from './helpers.js';

const KNOWN = SQLITE_MIGRATIONS.length;
const TABLES = ['alerts', 'api_tokens', 'attempt_buckets', 'blobs', 'calls', 'cursors', 'dashboards', 'deliveries', 'device_events', 'device_invitations', 'device_shares', 'devices', 'ha_devices', 'invites', 'latest', 'notifications', 'presence', 'public_links', 'reading_chunks', 'reading_hour_spans', 'reading_hours', 'reading_seq', 'readings_journal', 'rule_changes', 'rule_occurrences', 'rules', 'users', 'web_sessions'];

let tmp: ReturnType<typeof tempDir>;
let file: string;
beforeEach(() => {
  tmp = tempDir();
  file = path.join(tmp.dir, 'iotc.db');
});
afterEach(() => tmp.cleanup());

function inspect(): { version: number; tables: string[] } {
  const db = new Database(file, { readonly: true });
  try {
    return {
      version: db.pragma('user_version', { simple: true }) as number,
      tables: (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map((r) => r.name),
    };
  } finally {
    db.close();
  }
}

/** Open file descriptors of this process on the database file. */
function openHandles(): number {
  return fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`) === file;
    } catch {
      return false;
    }
  }).length;
}

function futureDatabase(version: number): void {
  const db = new Database(file);
  db.exec('CREATE TABLE from_the_future (x INTEGER)');
  db.pragma(`user_version = ${version}`);
  db.close();
}

test('a new database gets every migration and records the version; reopening changes nothing', async () => {
  const store = new SqliteStore(file);
  const user = await store.createUser({ email: 'a@example.com', name: 'A', passwordHash: 'h' });
  await store.close();
  assert.deepEqual(inspect(), { version: KNOWN, tables: TABLES });

  const again = new SqliteStore(file);
  assert.equal((await again.getUser(user.id))?.email, 'a@example.com');
  await again.close();
  assert.equal(inspect().version, KNOWN);
});

test('a database written by a newer version is refused with a clear message and left as it was', () => {
  futureDatabase(KNOWN + 1);
  assert.throws(
    () => new SqliteStore(file),
    (err: Error) =>
      err.message.includes(`The database ${file} is at schema version ${KNOWN + 1}, but this IOTcommunicate knows only up to ${KNOWN}.`) &&
      err.message.includes('upgrade IOTcommunicate'),
  );
  assert.deepEqual(inspect(), { version: KNOWN + 1, tables: ['from_the_future'] });
  assert.equal(openHandles(), 0, 'the refused database is not left open');
});

test('the server and the CLI refuse such a database too, with exit code 1 and the same message', async () => {
  futureDatabase(KNOWN + 5);
  await assert.rejects(startTestServer({}, tmp.dir), /knows only up to/);

  for (const argv of [['serve'], ['device', 'list', '--email', 'a@example.com']]) {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let err = '';
    stderr.on('data', (d) => (err += d));
    const code = await run([...argv, '--port', '0', '--host', '127.0.0.1'], {
      stdin: new PassThrough(), stdout, stderr, env: { IOTC_DATA_DIR: tmp.dir, IOTC_LOG_LEVEL: 'silent' },
    });
    assert.equal(code, 1, argv.join(' '));
    assert.match(err, new RegExp(`^iotc: The database .* is at schema version ${KNOWN + 5}, but this IOTcommunicate knows only up to ${KNOWN}\\.`));
  }
  assert.deepEqual(inspect(), { version: KNOWN + 5, tables: ['from_the_future'] });
});

test('a migration that fails is rolled back whole: no half-made schema, version unchanged', () => {
  const db = new Database(file);
  // A table in the way of the last statement of migration 1.
  db.exec('CREATE TABLE device_events (unrelated TEXT)');
  db.close();
  assert.throws(() => new SqliteStore(file), /already exists/);
  assert.deepEqual(inspect(), { version: 0, tables: ['device_events'] });
  assert.equal(openHandles(), 0, 'the database is not left open');
});

test('every foreign key has an index leading with it: a cascading delete never reads the whole hub', async () => {
  // Deleting a rule deletes its alerts and deliveries, deleting an account its public links …: without such an
  // index each of those deletes read every account's rows of the table.
  await new SqliteStore(file).close();
  const db = new Database(file, { readonly: true });
  try {
    const unindexed: string[] = [];
    for (const { name: table } of db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[]) {
      const leading = new Set<string>();
      for (const index of db.prepare('SELECT name, partial FROM pragma_index_list(?)').all(table) as { name: string; partial: number }[]) {
        if (index.partial) continue; // a partial index does not hold every row a cascade must find
        const first = db.prepare('SELECT name FROM pragma_index_info(?) WHERE seqno = 0').get(index.name) as { name: string } | undefined;
        if (first) leading.add(first.name);
      }
      const pk = db.prepare('SELECT name FROM pragma_table_info(?) WHERE pk = 1').get(table) as { name: string } | undefined;
      if (pk) leading.add(pk.name);
      for (const fk of db.prepare('SELECT "from" AS col, "table" AS parent FROM pragma_foreign_key_list(?)').all(table) as { col: string; parent: string }[]) {
        if (!leading.has(fk.col)) unindexed.push(`${table}.${fk.col} → ${fk.parent}`);
      }
    }
    assert.deepEqual(unindexed, []);
  } finally {
    db.close();
  }
});
