/** Accounts on a real SQLite file: sign-up rules, what is kept of secrets, device ids and keys, ownership. */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Accounts } from '../src/core/accounts.js';
import { DEVICE_ID_PATTERN, DEVICE_KEY_PATTERN, newDeviceId, newDeviceKey, randomToken, verifyPassword } from '../src/core/secrets.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { sleep, tempDir } from './helpers.js';

let tmp: ReturnType<typeof tempDir>;
let file: string;
let store: SqliteStore;
let accounts: Accounts;
before(() => {
  tmp = tempDir();
  file = path.join(tmp.dir, 'iotc.db');
  store = new SqliteStore(file);
  accounts = new Accounts(store, null);
});
after(async () => {
  await store.close();
  tmp.cleanup();
});

/** A second read-only connection, to see exactly what is on disk. */
function row<T>(sql: string, ...params: unknown[]): T {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).get(...params) as T;
  } finally {
    db.close();
  }
}

let n = 0;
const email = () => `person${++n}@example.com`;

describe('sign-up', () => {
  test('keeps the password only as a salted scrypt hash', async () => {
    const password = 'correct horse battery staple';
    const user = await accounts.signUp({ name: 'Ada', email: email(), password });
    const stored = row<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = ?', user.id);
    assert.match(stored.password_hash, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);
    assert.ok(!stored.password_hash.includes(password));
    assert.ok(!fs.readFileSync(file).includes(password) && !fs.readFileSync(file + '-wal').includes(password), 'the password is nowhere in the database files');
    assert.equal(await verifyPassword(password, stored.password_hash), true);
    assert.equal(await verifyPassword(password + '!', stored.password_hash), false);

    // The same password twice gives different hashes (random salt).
    const other = await accounts.signUp({ name: 'Bob', email: email(), password });
    assert.notEqual(row<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = ?', other.id).password_hash, stored.password_hash);
  });

  test('log-in checks the password; a wrong one and an unknown email both give null', async () => {
    const e = email();
    const user = await accounts.signUp({ name: 'Cy', email: e, password: 'password123' });
    assert.equal((await accounts.logIn(e, 'password123'))?.id, user.id);
    assert.equal((await accounts.logIn(`  ${e.toUpperCase()} `, 'password123'))?.id, user.id, 'email is matched case-insensitively');
    assert.equal(await accounts.logIn(e, 'password124'), null);
    assert.equal(await accounts.logIn('nobody@example.com', 'password123'), null);
  });

  test('email is stored lowercased and unique whatever its case: E_CONFLICT', async () => {
    const user = await accounts.signUp({ name: 'Di', email: '  Di.Mixed@Example.COM ', password: 'password123' });
    assert.equal(user.email, 'di.mixed@example.com');
    await assert.rejects(accounts.signUp({ name: 'Di again', email: 'di.mixed@EXAMPLE.com', password: 'password456' }), {
      name: 'IotcError', code: 'E_CONFLICT', message: 'An account with this email already exists',
    });
    // Even past the service, straight into the store, the database refuses a case variant.
    await assert.rejects(store.createUser({ email: 'DI.MIXED@example.com', name: 'x', passwordHash: 'x' }), { code: 'E_CONFLICT' });
    assert.equal(row<{ n: number }>("SELECT COUNT(*) AS n FROM users WHERE email LIKE 'di.mixed@example.com'").n, 1);
  });

  test('bad input is E_VALIDATION with a message naming the field; nothing is stored', async () => {
    const before = row<{ n: number }>('SELECT COUNT(*) AS n FROM users').n;
    const cases: [unknown, string][] = [
      [{ name: 'E', email: email(), password: 'short' }, 'password: password must be at least 8 characters'],
      [{ name: 'E', email: email(), password: '1234567' }, 'password: password must be at least 8 characters'],
      [{ name: 'E', email: 'not-an-email', password: 'password123' }, 'email: email is not a valid address'],
      [{ name: 'E', email: 'a@b', password: 'password123' }, 'email: email is not a valid address'],
      [{ name: 'E', email: '', password: 'password123' }, 'email: email is not a valid address'],
      [{ name: 'E', password: 'password123' }, 'email: email is required'],
      [{ name: '   ', email: email(), password: 'password123' }, 'name: name is required'],
      [{ email: email(), password: 'password123' }, 'name: name is required'],
      [{ name: 'E', email: email() }, 'password: password is required'],
      [{ name: 'E', email: email(), password: 12345678 }, 'password: password is required'],
      [{ name: 'x'.repeat(101), email: email(), password: 'password123' }, 'name: name must be at most 100 characters'],
    ];
    for (const [input, message] of cases) {
      await assert.rejects(accounts.signUp(input), { name: 'IotcError', code: 'E_VALIDATION', message }, JSON.stringify(input));
    }
    await assert.rejects(accounts.signUp(null), { code: 'E_VALIDATION' });
    assert.equal(row<{ n: number }>('SELECT COUNT(*) AS n FROM users').n, before);
    // Exactly eight characters is enough.
    assert.equal((await accounts.signUp({ name: 'E', email: email(), password: '12345678' })).name, 'E');
  });
});

describe('devices', () => {
  test('ids are 20 and keys 15 characters of A-Z0-9; only the key hash is stored, the key is shown once', async () => {
    const user = await accounts.signUp({ name: 'F', email: email(), password: 'password123' });
    const d = await accounts.createDevice(user.id, '  Desk lamp ');
    assert.match(d.id, /^[A-Z0-9]{20}$/);
    assert.match(d.key, /^[A-Z0-9]{15}$/);
    assert.equal(d.name, 'Desk lamp');
    const stored = row<Record<string, unknown>>('SELECT * FROM devices WHERE id = ?', d.id);
    assert.equal(stored.key_hash, crypto.createHash('sha256').update(d.key).digest('hex'));
    for (const v of Object.values(stored)) assert.ok(!String(v).includes(d.key), 'no column holds the key');
    assert.ok(!fs.readFileSync(file + '-wal').includes(d.key) && !fs.readFileSync(file).includes(d.key), 'the key is nowhere on disk');

    // Nothing the owner is shown later carries the key or its hash.
    const listed = await accounts.listDevices(user.id);
    assert.deepEqual(Object.keys(listed[0]).sort(), ['clients', 'createdAt', 'id', 'lastSeen', 'name', 'online']);
    assert.deepEqual(await accounts.getDevice(user.id, d.id), listed[0]);
  });

  test('generated ids and keys are distinct and use every unambiguous letter and digit, never O, 0, I or 1', () => {
    const ids = Array.from({ length: 300 }, newDeviceId);
    const keys = Array.from({ length: 300 }, newDeviceKey);
    assert.ok(ids.every((id) => DEVICE_ID_PATTERN.test(id)));
    assert.ok(keys.every((k) => DEVICE_KEY_PATTERN.test(k)));
    assert.equal(new Set(ids).size, ids.length);
    assert.equal(new Set(keys).size, keys.length);
    const seen = new Set(ids.join('') + keys.join(''));
    assert.equal([...seen].sort().join(''), '23456789ABCDEFGHJKLMNPQRSTUVWXYZ', 'each of the 32 turns up in 10500 characters, and nothing else');
    assert.equal(randomToken(7, 'ab').replace(/[ab]/g, ''), '');
  });

  test('a device name is checked', async () => {
    const user = await accounts.signUp({ name: 'G', email: email(), password: 'password123' });
    await assert.rejects(accounts.createDevice(user.id, ''), { code: 'E_VALIDATION', message: 'name is required' });
    await assert.rejects(accounts.createDevice(user.id, 42), { code: 'E_VALIDATION', message: 'name is required' });
    await assert.rejects(accounts.createDevice(user.id, 'n'.repeat(101)), { code: 'E_VALIDATION', message: 'name must be at most 100 characters' });
    assert.deepEqual(await accounts.listDevices(user.id), []);
  });

  test('a device for a user that does not exist is E_NOT_FOUND', async () => {
    await assert.rejects(accounts.createDevice(999_999, 'Orphan'), { code: 'E_NOT_FOUND' });
  });

  test('listDevices: oldest first, only the user own devices', async () => {
    const a = await accounts.signUp({ name: 'H', email: email(), password: 'password123' });
    const b = await accounts.signUp({ name: 'I', email: email(), password: 'password123' });
    const d1 = await accounts.createDevice(a.id, 'one');
    await sleep(5);
    const d2 = await accounts.createDevice(a.id, 'two');
    await accounts.createDevice(b.id, 'not yours');
    const listed = await accounts.listDevices(a.id);
    assert.deepEqual(listed.map((d) => [d.id, d.name, d.online, d.clients, d.lastSeen]), [
      [d1.id, 'one', false, 0, null],
      [d2.id, 'two', false, 0, null],
    ]);
    assert.ok(listed[0].createdAt < listed[1].createdAt);
  });

  test("another user's device is E_NOT_FOUND for every operation, and stays untouched", async () => {
    const owner = await accounts.signUp({ name: 'J', email: email(), password: 'password123' });
    const stranger = await accounts.signUp({ name: 'K', email: email(), password: 'password123' });
    const d = await accounts.createDevice(owner.id, 'Mine');
    const hashBefore = (await store.getDevice(d.id))!.keyHash;
    const notFound = { name: 'IotcError', code: 'E_NOT_FOUND', message: 'No such device' };
    await assert.rejects(accounts.owned(stranger.id, d.id), notFound);
    await assert.rejects(accounts.getDevice(stranger.id, d.id), notFound);
    await assert.rejects(accounts.rotateKey(stranger.id, d.id), notFound);
    await assert.rejects(accounts.renameDevice(stranger.id, d.id, 'Yours now'), notFound);
    await assert.rejects(accounts.deleteDevice(stranger.id, d.id), notFound);
    // The same answer as for a device that does not exist at all.
    await assert.rejects(accounts.getDevice(stranger.id, 'NOSUCHDEVICE00000000'), notFound);
    const after = await store.getDevice(d.id);
    assert.equal(after?.name, 'Mine');
    assert.equal(after?.keyHash, hashBefore);
  });

  test('the owner renames, rotates (new key, old one dead) and deletes; the CLI acts as administrator (null user)', async () => {
    const owner = await accounts.signUp({ name: 'L', email: email(), password: 'password123' });
    const d = await accounts.createDevice(owner.id, 'Old name');
    await accounts.renameDevice(owner.id, d.id, 'New name');
    assert.equal((await accounts.getDevice(owner.id, d.id)).name, 'New name');
    await assert.rejects(accounts.renameDevice(owner.id, d.id, ' '), { code: 'E_VALIDATION' });

    const eventsBefore = await store.lastDeviceEventSeq();
    const r1 = await accounts.rotateKey(owner.id, d.id);
    const r2 = await accounts.rotateKey(null, d.id);
    assert.match(r2.key, /^[A-Z0-9]{15}$/);
    assert.notEqual(r1.key, d.key);
    assert.notEqual(r2.key, r1.key);
    assert.equal((await store.getDevice(d.id))!.keyHash, crypto.createHash('sha256').update(r2.key).digest('hex'));
    const events = await store.deviceEventsSince(eventsBefore);
    assert.deepEqual(events.map((e) => [e.deviceId, e.kind]), [[d.id, 'rotated'], [d.id, 'rotated']], 'a running server learns of both');

    await accounts.deleteDevice(null, d.id);
    await assert.rejects(accounts.getDevice(owner.id, d.id), { code: 'E_NOT_FOUND' });
    assert.deepEqual((await store.deviceEventsSince(eventsBefore)).map((e) => e.kind), ['rotated', 'rotated', 'deleted']);
    await assert.rejects(accounts.deleteDevice(null, d.id), { code: 'E_NOT_FOUND' });
  });

  test('userByEmail finds a user in any case and says which email was not found', async () => {
    const e = email();
    const user = await accounts.signUp({ name: 'M', email: e, password: 'password123' });
    assert.equal((await accounts.userByEmail(e.toUpperCase())).id, user.id);
    await assert.rejects(accounts.userByEmail('ghost@example.com'), { code: 'E_NOT_FOUND', message: 'No user with email ghost@example.com' });
  });
});
