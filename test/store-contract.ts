/**
 * The Store contract: what every store implementation must do, written once and run against each
 * (test/store.test.ts). Every test gets a fresh, empty database from the fixture.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IotcError } from '../src/core/errors.js';
import { KEPT_SESSIONS_PER_USER } from '../src/store/rows.js';
import type { BridgeChoice, NewReading, Side, Store, StoredReading } from '../src/store/types.js';
import { sleep } from './helpers.js';
import { automationStoreContract } from './store-contract-automations.js';

/** A place a store keeps its data: opened (and reopened) as many times as a test likes. */
export interface StoreLocation {
  open(): Promise<Store>;
  /** Removes the data; called once, after every store opened on it is closed. */
  destroy(): Promise<void>;
}

export interface StoreFixture {
  /** A fresh, empty location, not shared with any other test. */
  fresh(): Promise<StoreLocation>;
}

/** Runs `fn` on a store opened on a fresh location of the fixture, then closes and destroys it, whatever happened. */
export async function withFreshStore(fixture: StoreFixture, fn: (store: Store, loc: StoreLocation) => Promise<void>): Promise<void> {
  const loc = await fixture.fresh();
  const store = await loc.open();
  try {
    await fn(store, loc);
  } finally {
    await store.close();
    await loc.destroy();
  }
}

const DAY = 86_400_000;

async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof IotcError, `expected an IotcError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

/** The device's sensors, each once, whichever side wrote it. */
async function sensorNames(store: Store, deviceId: string): Promise<string[]> {
  return [...new Set((await store.latestWeights(deviceId)).map((w) => w.sensor))];
}

const view = (r: StoredReading) => ({ sensor: r.sensor, value: r.value, side: r.side, time: r.time });

/** Registers the contract tests for one implementation. */
export function storeContract(name: string, fixture: StoreFixture, opts: { skip?: boolean | string } = {}): void {
  /** Runs `fn` on a store over a fresh location, then closes and removes everything. */
  const withStore = (fn: (store: Store, loc: StoreLocation) => Promise<void>) => withFreshStore(fixture, fn);

  let deviceCounter = 0;
  /** A user and a device of theirs; ids are unique within the test run and sort in creation order. */
  async function userWithDevice(store: Store, email = `owner${deviceCounter}@example.com`) {
    const user = await store.createUser({ email, name: 'Owner', passwordHash: 'scrypt$hash' });
    const device = await store.createDevice({ id: newId(), userId: user.id, name: 'Lamp', keyHash: 'hash-1' });
    return { user, device };
  }
  const newId = () => `DEV${String(++deviceCounter).padStart(6, '0')}${'X'.repeat(11)}`;

  const reading = (deviceId: string, sensor: string, value: unknown, side: Side, time: number): NewReading => ({ deviceId, sensor, value, side, time });

  describe(`Store contract: ${name}`, { skip: opts.skip }, () => {
    describe('users', () => {
      test('createUser returns the user with an id and a creation time; getUser and getUserByEmail find it', () =>
        withStore(async (store) => {
          const before = Date.now();
          const u = await store.createUser({ email: 'ann@example.com', name: 'Ann', passwordHash: 'scrypt$abc' });
          assert.equal(typeof u.id, 'number');
          assert.equal(u.email, 'ann@example.com');
          assert.equal(u.name, 'Ann');
          assert.equal(u.passwordHash, 'scrypt$abc');
          assert.ok(u.createdAt >= before && u.createdAt <= Date.now() + 1);
          assert.deepEqual(await store.getUser(u.id), u);
          assert.deepEqual(await store.getUserByEmail('ann@example.com'), u);
          const other = await store.createUser({ email: 'bob@example.com', name: 'Bob', passwordHash: 'scrypt$def' });
          assert.notEqual(other.id, u.id);
          assert.equal((await store.getUser(other.id))?.name, 'Bob');
        }));

      test('email lookups ignore ASCII case', () =>
        withStore(async (store) => {
          const u = await store.createUser({ email: 'Ann@Example.com', name: 'Ann', passwordHash: 'h' });
          assert.equal((await store.getUserByEmail('ann@example.com'))?.id, u.id);
          assert.equal((await store.getUserByEmail('ANN@EXAMPLE.COM'))?.id, u.id);
        }));

      test('a duplicate email is refused with E_CONFLICT, also when only the case differs', () =>
        withStore(async (store) => {
          await store.createUser({ email: 'ann@example.com', name: 'Ann', passwordHash: 'h' });
          await rejectsWithCode(store.createUser({ email: 'ann@example.com', name: 'Other', passwordHash: 'h2' }), 'E_CONFLICT');
          await rejectsWithCode(store.createUser({ email: 'ANN@example.com', name: 'Other', passwordHash: 'h2' }), 'E_CONFLICT');
          assert.equal((await store.getUserByEmail('ann@example.com'))?.name, 'Ann');
        }));

      test('updateUser changes the name and/or the password hash of that user only', () =>
        withStore(async (store) => {
          const u = await store.createUser({ email: 'ann@example.com', name: 'Ann', passwordHash: 'h1' });
          const other = await store.createUser({ email: 'bob@example.com', name: 'Bob', passwordHash: 'hb' });
          assert.equal(await store.updateUser(u.id, { name: 'Ann B.' }), true);
          assert.deepEqual(await store.getUser(u.id), { ...u, name: 'Ann B.' });
          assert.equal(await store.updateUser(u.id, { passwordHash: 'h2' }), true);
          assert.deepEqual(await store.getUser(u.id), { ...u, name: 'Ann B.', passwordHash: 'h2' });
          assert.equal(await store.updateUser(987654, { name: 'Nobody' }), false);
          assert.deepEqual(await store.getUser(other.id), other);
        }));

      test('deleteUser removes the account with its sessions and tokens; deleteUserSessions keeps the one asked for', () =>
        withStore(async (store) => {
          const { user } = await userWithDevice(store);
          const { user: other } = await userWithDevice(store, 'other@example.com');
          const now = Date.now();
          const session = (idHash: string, userId: number) => ({ idHash, userId, csrfToken: 'c', createdAt: now, expiresAt: now + 60_000 });
          for (const s of [session('mine-1', user.id), session('mine-2', user.id), session('mine-3', user.id), session('theirs', other.id)]) await store.createSession(s);
          assert.equal(await store.deleteUserSessions(user.id, 'mine-2'), 2);
          assert.equal(await store.getSession('mine-1', now), null);
          assert.ok(await store.getSession('mine-2', now));
          assert.ok(await store.getSession('theirs', now), "another user's session stays");
          await store.createApiToken({ userId: user.id, name: 't', tokenHash: 'th-mine' });
          await store.createApiToken({ userId: other.id, name: 't', tokenHash: 'th-theirs' });
          for (const d of await store.listDevices(user.id)) await store.deleteDevice(d.id);
          assert.equal(await store.deleteUser(user.id), true);
          assert.equal(await store.getUser(user.id), null);
          assert.equal(await store.getSession('mine-2', now), null);
          assert.equal(await store.useApiToken('th-mine', now), null);
          assert.equal(await store.deleteUser(user.id), false);
          assert.ok(await store.getSession('theirs', now));
          assert.ok(await store.useApiToken('th-theirs', now));
          assert.equal((await store.listDevices(other.id)).length, 1);
        }));

      test('unknown users are null', () =>
        withStore(async (store) => {
          assert.equal(await store.getUser(987654), null);
          assert.equal(await store.getUserByEmail('nobody@example.com'), null);
        }));
    });

    describe('devices', () => {
      test('createDevice returns the device, never seen; getDevice finds it; unknown is null', () =>
        withStore(async (store) => {
          const user = await store.createUser({ email: 'a@example.com', name: 'A', passwordHash: 'h' });
          const before = Date.now();
          const id = newId();
          const d = await store.createDevice({ id, userId: user.id, name: 'Lamp', keyHash: 'kh' });
          assert.deepEqual({ ...d, createdAt: 0 }, { id, userId: user.id, name: 'Lamp', keyHash: 'kh', createdAt: 0, lastSeen: null });
          assert.ok(d.createdAt >= before && d.createdAt <= Date.now() + 1);
          assert.deepEqual(await store.getDevice(id), d);
          assert.equal(await store.getDevice('NOSUCHDEVICE00000000'), null);
        }));

      test('a duplicate device id is E_CONFLICT; an unknown user is E_NOT_FOUND', () =>
        withStore(async (store) => {
          const { user, device } = await userWithDevice(store);
          await rejectsWithCode(store.createDevice({ id: device.id, userId: user.id, name: 'Again', keyHash: 'x' }), 'E_CONFLICT');
          await rejectsWithCode(store.createDevice({ id: newId(), userId: 987654, name: 'Orphan', keyHash: 'x' }), 'E_NOT_FOUND');
          assert.equal((await store.getDevice(device.id))?.name, 'Lamp');
        }));

      test("listDevices gives the user's devices oldest first, offline, and nobody else's", () =>
        withStore(async (store) => {
          const a = await store.createUser({ email: 'a@example.com', name: 'A', passwordHash: 'h' });
          const b = await store.createUser({ email: 'b@example.com', name: 'B', passwordHash: 'h' });
          const ids = [newId(), newId(), newId()];
          for (const [i, id] of ids.entries()) await store.createDevice({ id, userId: a.id, name: `D${i}`, keyHash: 'h' });
          await store.createDevice({ id: newId(), userId: b.id, name: 'Theirs', keyHash: 'h' });
          const list = await store.listDevices(a.id);
          assert.deepEqual(list.map((d) => d.id), ids);
          assert.deepEqual(list.map((d) => d.name), ['D0', 'D1', 'D2']);
          for (const d of list) assert.deepEqual([d.online, d.clients, d.userId], [false, 0, a.id]);
          assert.deepEqual(await store.listDevices(987654), []);
        }));

      test('renameDevice changes the name; an unknown device is false', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          assert.equal(await store.renameDevice(device.id, 'Desk lamp'), true);
          assert.equal((await store.getDevice(device.id))?.name, 'Desk lamp');
          assert.equal(await store.renameDevice('NOSUCHDEVICE00000000', 'x'), false);
        }));

      test("setDeviceKey replaces the key hash and records a 'rotated' event; an unknown device records nothing", () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          assert.equal(await store.lastDeviceEventSeq(), 0);
          assert.deepEqual(await store.deviceEventsSince(0), []);
          const before = Date.now();
          assert.equal(await store.setDeviceKey(device.id, 'hash-2'), true);
          assert.equal((await store.getDevice(device.id))?.keyHash, 'hash-2');
          const events = await store.deviceEventsSince(0);
          assert.equal(events.length, 1);
          assert.equal(events[0].deviceId, device.id);
          assert.equal(events[0].kind, 'rotated');
          assert.ok(events[0].at >= before && events[0].at <= Date.now() + 1);
          assert.equal(await store.lastDeviceEventSeq(), events[0].seq);
          assert.equal(await store.setDeviceKey('NOSUCHDEVICE00000000', 'x'), false);
          assert.equal((await store.deviceEventsSince(0)).length, 1);
        }));

      test('device events come oldest first with increasing numbers, and only those after the given number', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const { device: other } = await userWithDevice(store, 'second@example.com');
          await store.setDeviceKey(device.id, 'h2');
          await store.setDeviceKey(other.id, 'h2');
          await store.setDeviceKey(device.id, 'h3');
          await store.deleteDevice(other.id);
          const all = await store.deviceEventsSince(0);
          assert.deepEqual(all.map((e) => [e.deviceId, e.kind]), [
            [device.id, 'rotated'], [other.id, 'rotated'], [device.id, 'rotated'], [other.id, 'deleted'],
          ]);
          for (let i = 1; i < all.length; i++) assert.ok(all[i].seq > all[i - 1].seq);
          assert.deepEqual(await store.deviceEventsSince(all[1].seq), all.slice(2));
          assert.deepEqual(await store.deviceEventsSince(all[3].seq), []);
          assert.equal(await store.lastDeviceEventSeq(), all[3].seq);
        }));

      test("deleteDevice removes the device with its readings, latest values, cursors and presence, records 'deleted', and leaves other devices alone", () =>
        withStore(async (store) => {
          const { user, device } = await userWithDevice(store);
          const keep = await store.createDevice({ id: newId(), userId: user.id, name: 'Keep', keyHash: 'h' });
          const now = Date.now();
          await store.appendReadings([
            reading(device.id, 'temp', 1, 'device', now), reading(device.id, 'cmd', 'on', 'client', now),
            reading(keep.id, 'temp', 2, 'device', now),
          ]);
          await store.advanceCursor(device.id, 'client');
          await store.advanceCursor(keep.id, 'client');
          await store.savePresence('node-a', [{ deviceId: device.id, side: 'device', connections: 1 }, { deviceId: keep.id, side: 'device', connections: 1 }], now, now + 60_000);

          assert.equal(await store.deleteDevice(device.id), true);
          assert.equal(await store.getDevice(device.id), null);
          assert.equal(await store.latest(device.id, 'temp'), null);
          assert.deepEqual(await store.latestAll(device.id), []);
          assert.deepEqual(await store.history(device.id, 'temp', { limit: 10 }), []);
          assert.deepEqual(await store.latestSince(device.id, 'device', 0), []);
          assert.equal(await store.getCursor(device.id, 'client'), 0);
          const events = await store.deviceEventsSince(0);
          assert.deepEqual(events.map((e) => [e.deviceId, e.kind]), [[device.id, 'deleted']]);

          const list = await store.listDevices(user.id);
          assert.deepEqual(list.map((d) => [d.id, d.online]), [[keep.id, true]]);
          assert.equal((await store.latest(keep.id, 'temp'))?.value, 2);
          assert.equal((await store.history(keep.id, 'temp', { limit: 10 })).length, 1);
          assert.ok((await store.getCursor(keep.id, 'client')) > 0);

          assert.equal(await store.deleteDevice(device.id), false);
          assert.equal((await store.deviceEventsSince(0)).length, 1);
        }));
    });

    describe('readings', () => {
      test('appendReadings returns the readings in order, values intact, with sequence numbers increasing across calls', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          assert.deepEqual(await store.appendReadings([]), []);
          const values: unknown[] = [
            20, -0.5, 0.1, 1e300, Number.MAX_SAFE_INTEGER, 'text with "quotes", \\ and ünïcödé ✓ 😀', '', null, true, false,
            { nested: { list: [1, 'two', null, { three: 3 }] }, 'key with space': 'x' }, [], {},
            "{ \"a\": 1 } is just a string; so is '1'", '\u0000 escaped NUL in a value',
          ];
          const input = values.map((v, i) => reading(device.id, `s${i}`, v, i % 2 ? 'client' : 'device', 1_700_000_000_000 + i));
          const stored = await store.appendReadings(input);
          assert.equal(stored.length, input.length);
          stored.forEach((s, i) => {
            assert.deepEqual(view(s), view({ ...input[i], seq: 0 }));
            assert.equal(s.deviceId, device.id);
            assert.equal(typeof s.seq, 'number');
            if (i > 0) assert.ok(s.seq > stored[i - 1].seq, 'sequence numbers increase in input order');
          });
          for (const [i, v] of values.entries()) {
            const [h] = await store.history(device.id, `s${i}`, { limit: 1 });
            assert.deepEqual(h.value, v, `value ${i} round-trips`);
            assert.equal(h.seq, stored[i].seq);
          }
          const more = await store.appendReadings([reading(device.id, 'later', 1, 'device', 1_700_000_001_000)]);
          assert.ok(more[0].seq > stored[stored.length - 1].seq);
        }));

      test('the same sensor written several times in one batch: history has all, latest has the last', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const t = 1_700_000_000_000;
          const stored = await store.appendReadings([1, 2, 3, 4, 5].map((v) => reading(device.id, 'temp', v, 'device', t)));
          assert.deepEqual((await store.history(device.id, 'temp', { limit: 10 })).map((r) => r.value), [1, 2, 3, 4, 5]);
          const latest = await store.latest(device.id, 'temp');
          assert.equal(latest?.value, 5);
          assert.equal(latest?.seq, stored[4].seq);
        }));

      test('latest gives the newest value of a sensor from either side, or from the side asked; null when none', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const t = 1_700_000_000_000;
          await store.appendReadings([reading(device.id, 'lamp', 'off', 'device', t)]);
          await store.appendReadings([reading(device.id, 'lamp', 'on', 'client', t + 1)]);
          assert.deepEqual(view((await store.latest(device.id, 'lamp'))!), { sensor: 'lamp', value: 'on', side: 'client', time: t + 1 });
          assert.equal((await store.latest(device.id, 'lamp', 'device'))?.value, 'off');
          assert.equal((await store.latest(device.id, 'lamp', 'client'))?.value, 'on');
          await store.appendReadings([reading(device.id, 'lamp', 'dim', 'device', t + 2)]);
          assert.equal((await store.latest(device.id, 'lamp'))?.value, 'dim');
          assert.equal((await store.latest(device.id, 'lamp', 'client'))?.value, 'on');
          assert.equal(await store.latest(device.id, 'nothing'), null);
          assert.equal(await store.latest(device.id, 'lamp'.toUpperCase()), null);
          assert.equal(await store.latest('NOSUCHDEVICE00000000', 'lamp'), null);
        }));

      test('latestAll gives one reading per sensor, newest of either side or of the side asked, ordered by sensor name', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const { device: other } = await userWithDevice(store, 'other@example.com');
          const t = 1_700_000_000_000;
          await store.appendReadings([
            reading(device.id, 'b', 1, 'device', t), reading(device.id, 'a', 2, 'device', t),
            reading(device.id, 'B', 3, 'client', t), reading(device.id, 'a', 4, 'client', t + 1),
            reading(device.id, 'b', 5, 'device', t + 2), reading(other.id, 'a', 99, 'device', t),
          ]);
          // Byte order, as a programmer expects: upper case before lower case.
          assert.deepEqual((await store.latestAll(device.id)).map((r) => [r.sensor, r.value, r.side]), [
            ['B', 3, 'client'], ['a', 4, 'client'], ['b', 5, 'device'],
          ]);
          assert.deepEqual((await store.latestAll(device.id, 'device')).map((r) => [r.sensor, r.value]), [['a', 2], ['b', 5]]);
          assert.deepEqual((await store.latestAll(device.id, 'client')).map((r) => [r.sensor, r.value]), [['B', 3], ['a', 4]]);
          assert.deepEqual(await store.latestAll('NOSUCHDEVICE00000000'), []);
        }));

      test('latestAll with a page: sensors after a name, in byte order, stopping at the value that passes maxBytes', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const t = Date.now();
          // Values of 12 JSON characters each; 'é' (two UTF-8 bytes) sorts after every ASCII name.
          const names = ['a', 'b', 'c', 'd', 'e', 'Z', 'é'];
          await store.appendReadings(names.map((n) => reading(device.id, n, 'x'.repeat(10), 'device', t)));
          await store.appendReadings([reading(device.id, 'c', 'y'.repeat(10), 'client', t + 1)]);
          const sensors = async (side: Side | undefined, page: { after?: string; maxBytes?: number }) => (await store.latestAll(device.id, side, page)).map((r) => r.sensor);
          assert.deepEqual(await sensors(undefined, {}), ['Z', 'a', 'b', 'c', 'd', 'e', 'é']);
          assert.deepEqual(await sensors(undefined, { maxBytes: 30 }), ['Z', 'a', 'b']);
          assert.deepEqual(await sensors(undefined, { after: 'b', maxBytes: 30 }), ['c', 'd', 'e']);
          assert.deepEqual(await sensors(undefined, { after: 'd' }), ['e', 'é']);
          assert.deepEqual(await sensors('client', { after: 'a', maxBytes: 0 }), ['c']);
          assert.equal((await store.latestAll(device.id, undefined, { after: 'b', maxBytes: 30 }))[0].value, 'y'.repeat(10), 'the newest of either side');
        }));

      test('latestSince gives the newest value of each sensor one side wrote after a sequence number, oldest first', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const t = 1_700_000_000_000;
          const first = await store.appendReadings([reading(device.id, 'x', 1, 'device', t), reading(device.id, 'y', 1, 'device', t)]);
          const mark = first[1].seq;
          await store.appendReadings([
            reading(device.id, 'y', 2, 'device', t + 1), reading(device.id, 'cmd', 'go', 'client', t + 1),
            reading(device.id, 'z', 1, 'device', t + 2), reading(device.id, 'y', 3, 'device', t + 3),
          ]);
          const since = await store.latestSince(device.id, 'device', mark);
          assert.deepEqual(since.map((r) => [r.sensor, r.value]), [['z', 1], ['y', 3]]);
          assert.ok(since[0].seq < since[1].seq);
          assert.deepEqual((await store.latestSince(device.id, 'device', 0)).map((r) => [r.sensor, r.value]), [['x', 1], ['z', 1], ['y', 3]]);
          assert.deepEqual((await store.latestSince(device.id, 'client', 0)).map((r) => [r.sensor, r.value]), [['cmd', 'go']]);
          assert.deepEqual(await store.latestSince(device.id, 'device', since[1].seq), []);
        }));

      test('history with only a limit gives the most recent N, oldest first; without a limit hit, all', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const t = 1_700_000_000_000;
          await store.appendReadings(Array.from({ length: 20 }, (_, i) => reading(device.id, 'temp', i, 'device', t + i * 1000)));
          await store.appendReadings([reading(device.id, 'other', 'x', 'device', t)]);
          assert.deepEqual((await store.history(device.id, 'temp', { limit: 5 })).map((r) => r.value), [15, 16, 17, 18, 19]);
          const all = await store.history(device.id, 'temp', { limit: 100 });
          assert.deepEqual(all.map((r) => r.value), Array.from({ length: 20 }, (_, i) => i));
          assert.ok(all.every((r) => r.sensor === 'temp' && r.deviceId === device.id));
          assert.deepEqual(await store.history(device.id, 'none', { limit: 5 }), []);
        }));

      test('history over a range reads forward from its start, bounds included, up to the limit', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const t = 1_700_000_000_000;
          await store.appendReadings(Array.from({ length: 20 }, (_, i) => reading(device.id, 'temp', i, 'device', t + i * 1000)));
          const range = await store.history(device.id, 'temp', { from: t + 5000, to: t + 9000, limit: 100 });
          assert.deepEqual(range.map((r) => r.value), [5, 6, 7, 8, 9]);
          const capped = await store.history(device.id, 'temp', { from: t + 5000, to: t + 9000, limit: 2 });
          assert.deepEqual(capped.map((r) => r.value), [5, 6]);
          const fromOnly = await store.history(device.id, 'temp', { from: t + 17_000, limit: 100 });
          assert.deepEqual(fromOnly.map((r) => r.value), [17, 18, 19]);
          const toOnly = await store.history(device.id, 'temp', { to: t + 2000, limit: 2 });
          assert.deepEqual(toOnly.map((r) => r.value), [1, 2], 'with only an upper bound: the most recent N before it');
          assert.deepEqual(await store.history(device.id, 'temp', { from: t + 50_000, limit: 10 }), []);
        }));

      test('history can keep only one side, and orders equal times by sequence', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const t = 1_700_000_000_000;
          await store.appendReadings([
            reading(device.id, 'lamp', 'a', 'device', t), reading(device.id, 'lamp', 'b', 'client', t),
            reading(device.id, 'lamp', 'c', 'device', t), reading(device.id, 'lamp', 'd', 'client', t),
          ]);
          assert.deepEqual((await store.history(device.id, 'lamp', { limit: 10 })).map((r) => r.value), ['a', 'b', 'c', 'd']);
          assert.deepEqual((await store.history(device.id, 'lamp', { limit: 10, side: 'client' })).map((r) => r.value), ['b', 'd']);
          assert.deepEqual((await store.history(device.id, 'lamp', { limit: 1, side: 'device' })).map((r) => r.value), ['c']);
          assert.deepEqual((await store.history(device.id, 'lamp', { from: t, limit: 3 })).map((r) => r.value), ['a', 'b', 'c']);
        }));

      test('history with maxBytes stops at the reading whose value passes the bound, in the order read', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const t = 1_700_000_000_000;
          // Each value's JSON is 12 characters: "xxxxxxxxxx" with its quotes.
          await store.appendReadings(Array.from({ length: 10 }, (_, i) => reading(device.id, 'big', `${i}`.repeat(10), 'device', t + i)));
          // Newest first: 9, 8, 7 hold 36 > 30 characters; 7 is the one that passes, and the last returned.
          const newest = await store.history(device.id, 'big', { limit: 10, maxBytes: 30 });
          assert.deepEqual(newest.map((r) => r.time - t), [7, 8, 9]);
          // From a time: oldest first, 2, 3, 4 hold 36 > 30.
          const forward = await store.history(device.id, 'big', { from: t + 2, limit: 10, maxBytes: 30 });
          assert.deepEqual(forward.map((r) => r.time - t), [2, 3, 4]);
          assert.deepEqual((await store.history(device.id, 'big', { limit: 10, maxBytes: 36 })).map((r) => r.time - t), [6, 7, 8, 9]);
          assert.equal((await store.history(device.id, 'big', { limit: 10, maxBytes: 1000 })).length, 10);
          assert.deepEqual((await store.history(device.id, 'big', { limit: 2, maxBytes: 1000 })).map((r) => r.time - t), [8, 9]);
          assert.deepEqual((await store.history(device.id, 'big', { limit: 10, maxBytes: 0 })).map((r) => r.time - t), [9], 'the first reading always comes');
        }));
    });

    describe('sync cursors', () => {
      test('a cursor starts at 0, advances to the newest stored sequence number, per side', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const { device: other } = await userWithDevice(store, 'other@example.com');
          assert.equal(await store.getCursor(device.id, 'client'), 0);
          await store.advanceCursor(device.id, 'client');
          assert.equal(await store.getCursor(device.id, 'client'), 0, 'nothing stored yet');
          const t = Date.now();
          const stored = await store.appendReadings([reading(device.id, 'a', 1, 'device', t), reading(device.id, 'b', 2, 'client', t)]);
          await store.appendReadings([reading(other.id, 'a', 1, 'device', t)]);
          await store.advanceCursor(device.id, 'client');
          assert.equal(await store.getCursor(device.id, 'client'), stored[1].seq);
          assert.equal(await store.getCursor(device.id, 'device'), 0, 'the other side is separate');
          const later = await store.appendReadings([reading(device.id, 'a', 3, 'device', t + 1)]);
          assert.equal(await store.getCursor(device.id, 'client'), stored[1].seq, 'stays until advanced');
          await store.advanceCursor(device.id, 'client');
          await store.advanceCursor(device.id, 'client');
          assert.equal(await store.getCursor(device.id, 'client'), later[0].seq);
          // What the client missed since its cursor: nothing now; one reading after a new write.
          assert.deepEqual(await store.latestSince(device.id, 'device', await store.getCursor(device.id, 'client')), []);
        }));
    });

    describe('presence', () => {
      test('connection counts from several nodes add up in listDevices; a count of 0 removes a node\'s entry', () =>
        withStore(async (store) => {
          const { user, device } = await userWithDevice(store);
          const now = Date.now();
          await store.savePresence('node-a', [{ deviceId: device.id, side: 'device', connections: 1 }], now, now + 60_000);
          let [d] = await store.listDevices(user.id);
          assert.deepEqual([d.online, d.clients], [true, 0]);
          await store.savePresence('node-b', [{ deviceId: device.id, side: 'client', connections: 2 }], now, now + 60_000);
          await store.savePresence('node-c', [{ deviceId: device.id, side: 'client', connections: 3 }], now, now + 60_000);
          [d] = await store.listDevices(user.id);
          assert.deepEqual([d.online, d.clients], [true, 5]);
          await store.savePresence('node-a', [{ deviceId: device.id, side: 'device', connections: 0 }], now, now + 60_000);
          await store.savePresence('node-b', [{ deviceId: device.id, side: 'client', connections: 1 }], now, now + 60_000);
          [d] = await store.listDevices(user.id);
          assert.deepEqual([d.online, d.clients], [false, 4]);
          await store.clearPresence('node-c');
          [d] = await store.listDevices(user.id);
          assert.deepEqual([d.online, d.clients], [false, 1]);
        }));

      test('presence expires unless the node keeps it alive; a heartbeat with no changes refreshes it', () =>
        withStore(async (store) => {
          const { user, device } = await userWithDevice(store);
          const { user: u2, device: d2 } = await userWithDevice(store, 'two@example.com');
          let now = Date.now();
          await store.savePresence('node-a', [{ deviceId: device.id, side: 'device', connections: 1 }], now, now + 1000);
          await store.savePresence('node-dead', [{ deviceId: d2.id, side: 'device', connections: 1 }], now, now + 1000);
          assert.equal((await store.listDevices(user.id))[0].online, true);
          await sleep(500);
          now = Date.now();
          await store.savePresence('node-a', [], now, now + 60_000);
          await sleep(700);
          assert.equal((await store.listDevices(user.id))[0].online, true, 'refreshed by the heartbeat');
          assert.equal((await store.listDevices(u2.id))[0].online, false, "the dead node's count expired");
        }));

      test('saving presence records when a device was last seen, for changed devices and on every heartbeat', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const t0 = Date.now();
          await store.savePresence('node-a', [{ deviceId: device.id, side: 'device', connections: 1 }], t0, t0 + 60_000);
          assert.equal((await store.getDevice(device.id))?.lastSeen, t0);
          await store.savePresence('node-a', [], t0 + 1000, t0 + 61_000);
          assert.equal((await store.getDevice(device.id))?.lastSeen, t0 + 1000);
          await store.savePresence('node-a', [{ deviceId: device.id, side: 'device', connections: 0 }], t0 + 2000, t0 + 62_000);
          assert.equal((await store.getDevice(device.id))?.lastSeen, t0 + 2000, 'the moment it left is the last time it was seen');
          await store.savePresence('node-a', [], t0 + 3000, t0 + 63_000);
          assert.equal((await store.getDevice(device.id))?.lastSeen, t0 + 2000, 'not seen after it left');
        }));

      test('an app (client side) connected to a device never marks the device seen or online', () =>
        withStore(async (store) => {
          const { user, device } = await userWithDevice(store);
          const t0 = Date.now();
          await store.savePresence('node-a', [{ deviceId: device.id, side: 'client', connections: 1 }], t0, t0 + 60_000);
          await store.savePresence('node-a', [], t0 + 1000, t0 + 61_000);
          await store.savePresence('node-a', [{ deviceId: device.id, side: 'client', connections: 0 }], t0 + 2000, t0 + 62_000);
          const [d] = await store.listDevices(user.id);
          assert.deepEqual([d.lastSeen, d.online], [null, false]);
        }));
    });

    describe('web sessions', () => {
      test('a session is found until it expires, can be deleted, and pruning drops only expired ones', () =>
        withStore(async (store) => {
          const { user } = await userWithDevice(store);
          const now = Date.now();
          const live = { idHash: 'hash-live', userId: user.id, csrfToken: 'csrf-1', createdAt: now, expiresAt: now + 60_000 };
          const old = { idHash: 'hash-old', userId: user.id, csrfToken: 'csrf-2', createdAt: now - 120_000, expiresAt: now - 1 };
          const gone = { idHash: 'hash-gone', userId: user.id, csrfToken: 'csrf-3', createdAt: now, expiresAt: now + 60_000 };
          for (const s of [live, old, gone]) await store.createSession(s);
          assert.deepEqual(await store.getSession('hash-live', now), live);
          assert.equal(await store.getSession('hash-live', now + 60_000), null, 'expired at its expiry time');
          assert.equal(await store.getSession('hash-old', now), null);
          assert.equal(await store.getSession('nope', now), null);
          await store.deleteSession('hash-gone');
          assert.equal(await store.getSession('hash-gone', now), null);
          assert.equal(await store.pruneSessions(now), 1);
          assert.deepEqual(await store.getSession('hash-live', now), live);
          assert.equal(await store.pruneSessions(now), 0);
        }));

      test('a log-in past KEPT_SESSIONS_PER_USER ends the account\'s oldest session, not another account\'s', () =>
        withStore(async (store) => {
          const { user } = await userWithDevice(store);
          const { user: other } = await userWithDevice(store, 'other@example.com');
          const now = Date.now();
          const make = (idHash: string, userId: number, at: number) => ({ idHash, userId, csrfToken: 'c', createdAt: at, expiresAt: now + 60_000 });
          await store.createSession(make('theirs', other.id, now - 10_000));
          for (let i = 0; i < KEPT_SESSIONS_PER_USER + 2; i++) await store.createSession(make(`mine-${i}`, user.id, now - 5000 + i));
          assert.equal(await store.getSession('mine-0', now), null);
          assert.equal(await store.getSession('mine-1', now), null);
          assert.ok(await store.getSession('mine-2', now), 'the newest are kept');
          assert.ok(await store.getSession(`mine-${KEPT_SESSIONS_PER_USER + 1}`, now));
          assert.ok(await store.getSession('theirs', now));
          assert.equal(await store.deleteUserSessions(user.id), KEPT_SESSIONS_PER_USER, 'exactly the cap was left');
        }));
    });

    describe('API tokens', () => {
      test('tokens are listed per user, looked up by hash with their use recorded, and deleted only by their owner', () =>
        withStore(async (store) => {
          const { user } = await userWithDevice(store);
          const { user: other } = await userWithDevice(store, 'other@example.com');
          const before = Date.now();
          const t1 = await store.createApiToken({ userId: user.id, name: 'script', tokenHash: 'th-1' });
          const t2 = await store.createApiToken({ userId: user.id, name: 'phone', tokenHash: 'th-2' });
          const t3 = await store.createApiToken({ userId: other.id, name: 'theirs', tokenHash: 'th-3' });
          assert.equal(typeof t1.id, 'number');
          assert.deepEqual({ ...t1, id: 0, createdAt: 0 }, { id: 0, userId: user.id, name: 'script', tokenHash: 'th-1', createdAt: 0, lastUsed: null });
          assert.ok(t1.createdAt >= before);
          assert.deepEqual((await store.listApiTokens(user.id)).map((t) => t.name), ['script', 'phone']);
          const used = await store.useApiToken('th-2', before + 5);
          assert.deepEqual(used, { ...t2, lastUsed: before + 5 });
          assert.equal((await store.listApiTokens(user.id))[1].lastUsed, before + 5);
          assert.equal(await store.useApiToken('th-unknown', before), null);
          assert.equal(await store.deleteApiToken(user.id, t3.id), false, "another user's token");
          assert.equal(await store.deleteApiToken(user.id, t1.id), true);
          assert.equal(await store.deleteApiToken(user.id, t1.id), false);
          assert.equal(await store.useApiToken('th-1', before), null);
          assert.deepEqual((await store.listApiTokens(user.id)).map((t) => t.id), [t2.id]);
          assert.deepEqual((await store.listApiTokens(other.id)).map((t) => t.id), [t3.id]);
        }));
    });

    describe('caps per user, held across nodes', () => {
      test('a burst of device and token creations through two stores at once makes exactly the cap; the rest get E_LIMIT', () =>
        withStore(async (store, loc) => {
          // A second store on the same data: another node of a cluster, or the CLI beside a running hub.
          const second = await loc.open();
          try {
            const { user } = await userWithDevice(store);
            const { user: other } = await userWithDevice(store, 'other@example.com');
            const burst = <T>(make: (s: Store, i: number) => Promise<T>) =>
              Promise.allSettled(Array.from({ length: 16 }, (_, i) => make(i % 2 ? second : store, i)));
            const devices = await burst((s, i) => s.createDevice({ id: newId(), userId: user.id, name: `D${i}`, keyHash: 'h' }, 4));
            assert.equal(devices.filter((r) => r.status === 'fulfilled').length, 3, 'the user already had one: three more');
            for (const r of devices.filter((x) => x.status === 'rejected')) assert.equal(((r as PromiseRejectedResult).reason as IotcError).code, 'E_LIMIT');
            assert.equal((await store.listDevices(user.id)).length, 4);
            assert.equal((await store.createDevice({ id: newId(), userId: other.id, name: 'Theirs', keyHash: 'h' }, 2)).userId, other.id, "another user's devices do not count");
            assert.equal((await store.createDevice({ id: newId(), userId: user.id, name: 'Uncapped', keyHash: 'h' })).name, 'Uncapped', 'no cap given: none');
            await rejectsWithCode(store.createDevice({ id: newId(), userId: 987654, name: 'Orphan', keyHash: 'x' }, 5), 'E_NOT_FOUND');

            const tokens = await burst((s, i) => s.createApiToken({ userId: user.id, name: `t${i}`, tokenHash: `th-cap-${i}` }, 5));
            assert.equal(tokens.filter((r) => r.status === 'fulfilled').length, 5);
            for (const r of tokens.filter((x) => x.status === 'rejected')) assert.equal(((r as PromiseRejectedResult).reason as IotcError).code, 'E_LIMIT');
            assert.equal((await store.listApiTokens(user.id)).length, 5);
            await rejectsWithCode(second.createApiToken({ userId: user.id, name: 'one more', tokenHash: 'th-cap-x' }, 5), 'E_LIMIT');
            assert.equal((await store.createApiToken({ userId: other.id, name: 't', tokenHash: 'th-other' }, 5)).userId, other.id);
          } finally {
            await second.close();
          }
        }));

      test('attempt buckets: shared by two stores, refilled with time, given back, never overdrawn by a parallel burst, pruned once full', () =>
        withStore(async (store, loc) => {
          const second = await loc.open();
          try {
            const limit = { burst: 3, perSecond: 1 / 60 };
            const t0 = 1_700_000_000_000;
            const takes = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? second : store).takeAttempt('account:a', limit, t0)));
            assert.equal(takes.filter((w) => w === 0).length, 3, 'exactly the burst is taken, whichever store took it');
            for (const w of takes.filter((x) => x > 0)) assert.equal(w, 60, 'the wait is until one attempt is back');
            assert.equal(await store.takeAttempt('account:b', limit, t0), 0, 'another key has its own bucket');
            assert.equal(await second.takeAttempt('account:a', limit, t0 + 30_000), 30, 'half an attempt back: 30 s more');
            assert.equal(await second.takeAttempt('account:a', limit, t0 + 60_000), 0, 'a minute later one is back');
            assert.equal(await store.takeAttempt('account:a', limit, t0 + 60_000), 60);
            await store.giveAttemptBack('account:a', limit, t0 + 60_000);
            assert.equal(await second.takeAttempt('account:a', limit, t0 + 60_000), 0, 'a given-back attempt can be taken again');
            // Full again (3 attempts back) 3 minutes after the last take: then, and only then, the row may go.
            assert.equal(await store.pruneAttempts(t0 + 60_000 + 179_000), 1, "b's bucket (one taken at t0) is full again");
            assert.equal(await store.pruneAttempts(t0 + 60_000 + 179_000), 0);
            assert.equal(await store.pruneAttempts(t0 + 60_000 + 180_000), 1);
            assert.equal(await store.takeAttempt('account:a', limit, t0 + 60_000 + 180_000), 0, 'a pruned bucket starts full');
            assert.equal(await store.takeAttempt('account:a', limit, t0 + 60_000 + 180_000), 0);
            await store.giveAttemptBack('account:a', limit, t0 + 60_000 + 180_000);
            await store.giveAttemptBack('account:a', limit, t0 + 60_000 + 180_000);
            await store.giveAttemptBack('account:a', limit, t0 + 60_000 + 180_000);
            assert.equal(await store.pruneAttempts(t0 + 10 * DAY), 0, 'given back to full: the row went at once');
            const again = await Promise.all(Array.from({ length: 5 }, () => store.takeAttempt('account:a', limit, t0 + 60_000 + 180_000)));
            assert.equal(again.filter((w) => w === 0).length, 3, 'never more than the burst, even given back more than was taken');
          } finally {
            await second.close();
          }
        }));
    });

    describe('retention', () => {
      test('pruning by count keeps the newest N per device, plus the latest of every sensor and side', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const { device: small } = await userWithDevice(store, 'small@example.com');
          const t = Date.now() - 1000;
          await store.appendReadings([reading(device.id, 'rare', 'kept', 'device', t), reading(device.id, 'cmd', 'on', 'client', t)]);
          await store.appendReadings(Array.from({ length: 10 }, (_, i) => reading(device.id, 'temp', i, 'device', t + i)));
          await store.appendReadings([reading(small.id, 'temp', 1, 'device', t)]);
          const removed = await store.prune({ maxCount: 3, maxAgeMs: 0 }, Date.now());
          assert.equal(removed, 7);
          assert.deepEqual((await store.history(device.id, 'temp', { limit: 100 })).map((r) => r.value), [7, 8, 9]);
          assert.deepEqual((await store.history(device.id, 'rare', { limit: 100 })).map((r) => r.value), ['kept']);
          assert.deepEqual((await store.history(device.id, 'cmd', { limit: 100 })).map((r) => r.value), ['on']);
          assert.equal((await store.history(small.id, 'temp', { limit: 100 })).length, 1);
          assert.equal(await store.prune({ maxCount: 3, maxAgeMs: 0 }, Date.now()), 0);
        }));

      test('pruning a device by bytes keeps its newest readings within the budget, plus the latest of every sensor and side', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const { device: other } = await userWithDevice(store, 'other@example.com');
          const t = Date.now() - 10_000;
          // A value whose JSON is 1 000 characters: each weighs 1 024 bytes, so ten fit in 10 500 and eleven do not.
          const big = (i: number) => `${String(i).padStart(4, '0')}${'x'.repeat(994)}`;
          const values = async (id: string, sensor: string) => (await store.history(id, sensor, { limit: 100 })).map((r) => r.value);
          await store.appendReadings([reading(device.id, 'rare', 'kept', 'device', t), reading(device.id, 'cmd', 'on', 'client', t)]);
          await store.appendReadings(Array.from({ length: 30 }, (_, i) => reading(device.id, 'photo', big(i), 'device', t + 1 + i)));
          await store.appendReadings(Array.from({ length: 30 }, (_, i) => reading(other.id, 'photo', big(i), 'device', t + 1 + i)));
          assert.equal(await store.pruneDeviceBytes(device.id, 10_500), 20);
          assert.deepEqual(await values(device.id, 'photo'), Array.from({ length: 10 }, (_, i) => big(20 + i)));
          assert.deepEqual(await values(device.id, 'rare'), ['kept']);
          assert.deepEqual(await values(device.id, 'cmd'), ['on']);
          assert.equal((await values(other.id, 'photo')).length, 30, 'another device is untouched');
          assert.equal(await store.pruneDeviceBytes(device.id, 10_500), 0, 'nothing more to do');

          // Two sensors written in turn, so their readings interleave: the newest by order of writing stay.
          await store.appendReadings(Array.from({ length: 20 }, (_, i) => reading(device.id, i % 2 ? 'b' : 'a', big(i), 'device', t + 100 + i)));
          assert.equal(await store.pruneDeviceBytes(device.id, 10_500), 19, 'the ten oldest of a and b go, and the photos but the latest');
          assert.deepEqual(await values(device.id, 'a'), [10, 12, 14, 16, 18].map(big));
          assert.deepEqual(await values(device.id, 'b'), [11, 13, 15, 17, 19].map(big));
          assert.deepEqual(await values(device.id, 'photo'), [big(29)], 'the latest photo stays');

          // The latest of each key stays, whatever it weighs.
          assert.equal(await store.pruneDeviceBytes(device.id, 1), 8);
          assert.deepEqual(await values(device.id, 'a'), [big(18)]);
          assert.deepEqual(await values(device.id, 'b'), [big(19)]);
          assert.deepEqual(await values(device.id, 'rare'), ['kept']);
          assert.equal((await store.latest(device.id, 'photo'))?.value, big(29));
          assert.equal(await store.pruneDeviceBytes('NOSUCHDEVICE00000000', 1), 0);
        }));

      test('pruning by age drops old readings, keeping the latest of a sensor and side while it is younger than the age', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const now = Date.now();
          const old = now - 10 * DAY;
          await store.appendReadings([
            reading(device.id, 'temp', 1, 'device', old), reading(device.id, 'temp', 2, 'device', old + 1),
            reading(device.id, 'temp', 3, 'client', now - DAY + 1000), reading(device.id, 'temp', 4, 'device', now - 1000),
            reading(device.id, 'young', 'only', 'device', now - 2000),
          ]);
          const removed = await store.prune({ maxCount: 0, maxAgeMs: DAY }, now);
          assert.equal(removed, 2);
          assert.deepEqual((await store.history(device.id, 'temp', { limit: 100 })).map((r) => r.value), [3, 4]);
          assert.deepEqual((await store.history(device.id, 'young', { limit: 100 })).map((r) => r.value), ['only']);
          assert.equal((await store.latest(device.id, 'temp', 'client'))?.value, 3);
        }));

      test('a sensor (and side) not written for the retention age is forgotten: its latest value and last reading go', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const { device: other } = await userWithDevice(store, 'other@example.com');
          const now = Date.now();
          const old = now - 10 * DAY;
          await store.appendReadings([
            reading(device.id, 'stale', 'gone', 'device', old), reading(device.id, 'temp', 1, 'client', old),
            reading(device.id, 'temp', 2, 'device', now - 1000), reading(other.id, 'stale', 'gone too', 'client', old),
          ]);
          assert.deepEqual((await sensorNames(store, device.id)).sort(), ['stale', 'temp']);
          const removed = await store.prune({ maxCount: 0, maxAgeMs: DAY }, now);
          assert.equal(removed, 3);
          assert.deepEqual((await store.latestAll(device.id)).map((r) => [r.sensor, r.value]), [['temp', 2]]);
          assert.equal(await store.latest(device.id, 'temp', 'client'), null);
          assert.equal(await store.latest(device.id, 'stale'), null);
          assert.deepEqual(await store.history(device.id, 'stale', { limit: 100 }), []);
          assert.deepEqual(await sensorNames(store, device.id), ['temp']);
          assert.deepEqual(await sensorNames(store, other.id), []);
          // Pruning by count alone never forgets a sensor.
          await store.appendReadings([reading(device.id, 'rare', 'kept', 'device', old)]);
          await store.prune({ maxCount: 1, maxAgeMs: 0 }, now);
          assert.equal((await store.latest(device.id, 'rare'))?.value, 'kept');
        }));

      test('latestWeights lists each sensor of the device per side that wrote it, with what its latest value weighs', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const { device: other } = await userWithDevice(store, 'names@example.com');
          const t = Date.now();
          await store.appendReadings([
            reading(device.id, 'temp', 1, 'device', t), reading(device.id, 'temp', 2, 'client', t), reading(device.id, 'led', true, 'client', t),
            reading(other.id, 'hum', 40, 'device', t),
          ]);
          await store.appendReadings([reading(device.id, 'temp', 'x'.repeat(100), 'device', t + 1)]);
          const weights = (await store.latestWeights(device.id)).map((w) => [w.sensor, w.side, Number(w.bytes)]);
          assert.deepEqual(weights.sort(), [['led', 'client', 4 + 24], ['temp', 'client', 1 + 24], ['temp', 'device', 102 + 24]]);
          assert.deepEqual(await sensorNames(store, 'NOSUCHDEVICEXXXXXXXX'), []);
        }));

      test('a policy of zeros removes no reading; device events older than a day are dropped', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          await store.appendReadings(Array.from({ length: 5 }, (_, i) => reading(device.id, 'temp', i, 'device', 1000 + i)));
          await store.setDeviceKey(device.id, 'h2');
          assert.equal(await store.prune({ maxCount: 0, maxAgeMs: 0 }, Date.now()), 0);
          assert.equal((await store.deviceEventsSince(0)).length, 1, 'a fresh event stays');
          assert.equal(await store.prune({ maxCount: 0, maxAgeMs: 0 }, Date.now() + 2 * DAY), 0);
          assert.deepEqual(await store.deviceEventsSince(0), []);
          assert.equal((await store.history(device.id, 'temp', { limit: 10 })).length, 5);
        }));

      test('event numbers keep growing after pruning empties the events, so a node reading "after N" misses none', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          await store.setDeviceKey(device.id, 'h2');
          const [first] = await store.deviceEventsSince(0);
          await store.prune({ maxCount: 0, maxAgeMs: 0 }, Date.now() + 2 * DAY);
          assert.deepEqual(await store.deviceEventsSince(0), []);
          await store.setDeviceKey(device.id, 'h3');
          const after = await store.deviceEventsSince(first.seq);
          assert.equal(after.length, 1, 'the event after the pruned one is seen by a reader that stopped at it');
          assert.ok(after[0].seq > first.seq);
        }));
    });

    describe('blobs', () => {
      const blob = (deviceId: string, sensor: string, data: Buffer, side: Side = 'device', type = 'image/jpeg', time = Date.now()) => ({ deviceId, sensor, side, type, data, time });
      const appendOne = async (store: Store, b: ReturnType<typeof blob>, budget: number) => (await store.appendBlobs([b], budget))[0];

      test('appendBlob keeps the bytes exactly; latestBlob, getBlob, listBlobs and latestBlobs find them', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const first = Buffer.from([0xff, 0xd8, 0x00, 0x80, 0xfe, 0xff, 0x00]);
          const second = Buffer.alloc(70_000, 0xab);
          const a = await appendOne(store, blob(device.id, 'cam', first), 1 << 20);
          const b = await appendOne(store, blob(device.id, 'cam', second, 'device', 'image/png'), 1 << 20);
          const c = await appendOne(store, blob(device.id, 'file', Buffer.from('x'), 'client', 'application/octet-stream'), 1 << 20);
          assert.ok(b.seq > a.seq && c.seq > b.seq);
          assert.equal(a.size, first.length);
          assert.equal(b.type, 'image/png');
          const latest = await store.latestBlob(device.id, 'cam');
          assert.ok(latest && latest.data.equals(second));
          assert.equal(latest.seq, b.seq);
          assert.ok((await store.getBlob(device.id, 'cam', a.seq))?.data.equals(first));
          assert.equal(await store.getBlob(device.id, 'file', a.seq), null, 'a seq of another sensor is not found');
          assert.equal(await store.latestBlob(device.id, 'cam', 'client'), null);
          assert.equal((await store.latestBlob(device.id, 'file', 'client'))?.side, 'client');
          assert.deepEqual((await store.listBlobs(device.id, 'cam', 10)).map((x) => x.seq), [b.seq, a.seq]);
          assert.deepEqual((await store.listBlobs(device.id, 'cam', 1)).map((x) => x.seq), [b.seq]);
          assert.deepEqual((await store.latestBlobs(device.id)).map((x) => [x.sensor, x.seq]), [['cam', b.seq], ['file', c.seq]]);
          assert.equal(await store.blobBytes(device.id), first.length + second.length + 1);
        }));

      test("appendBlob drops the device's oldest chunks beyond its budget, never the new one, and never another device's", () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const { device: other } = await userWithDevice(store, 'other-blobs@example.com');
          await appendOne(store, blob(other.id, 'cam', Buffer.alloc(1000)), 1500);
          const seqs = [];
          for (let i = 0; i < 5; i++) seqs.push((await appendOne(store, blob(device.id, 'cam', Buffer.alloc(1000, i)), 2500)).seq);
          assert.deepEqual((await store.listBlobs(device.id, 'cam', 10)).map((x) => x.seq), [seqs[4], seqs[3]]);
          assert.equal(await store.blobBytes(device.id), 2000);
          const big = await appendOne(store, blob(device.id, 'cam', Buffer.alloc(4000)), 2500);
          assert.deepEqual((await store.listBlobs(device.id, 'cam', 10)).map((x) => x.seq), [big.seq], 'a chunk over the budget alone is still kept');
          assert.equal(await store.blobBytes(other.id), 1000);
        }));

      test('appendBlobs stores a batch in order and prunes each device once, keeping its newest of the batch', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const { device: other } = await userWithDevice(store, 'batch-blobs@example.com');
          const infos = await store.appendBlobs([
            blob(device.id, 'cam', Buffer.alloc(1000, 1)),
            blob(other.id, 'cam', Buffer.alloc(1000, 2)),
            blob(device.id, 'cam', Buffer.alloc(1000, 3)),
            blob(device.id, 'mic', Buffer.alloc(1000, 4)),
            blob(other.id, 'cam', Buffer.alloc(3000, 5)),
          ], 2500);
          assert.deepEqual(infos.map((b) => [b.deviceId === device.id ? 'd' : 'o', b.sensor, b.size]), [['d', 'cam', 1000], ['o', 'cam', 1000], ['d', 'cam', 1000], ['d', 'mic', 1000], ['o', 'cam', 3000]]);
          assert.ok(infos.every((b, i) => i === 0 || b.seq > infos[i - 1].seq), 'sequence numbers follow the order given');
          assert.deepEqual((await store.listBlobs(device.id, 'cam', 10)).map((x) => x.seq), [infos[2].seq], 'the oldest beyond the budget went');
          assert.equal((await store.latestBlob(device.id, 'mic'))?.data[0], 4);
          assert.equal(await store.blobBytes(device.id), 2000);
          assert.deepEqual((await store.listBlobs(other.id, 'cam', 10)).map((x) => x.seq), [infos[4].seq], "a device's newest of the batch stays, even over the budget alone");
          assert.deepEqual(await store.appendBlobs([], 2500), []);
        }));

      test('blobsToSync: the newest chunk of each sensor the other side wrote since this side was last connected', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          const a = await appendOne(store, blob(device.id, 'cam', Buffer.from([1])), 1 << 20);
          const b = await appendOne(store, blob(device.id, 'cam', Buffer.from([2, 0xff])), 1 << 20);
          const c = await appendOne(store, blob(device.id, 'cmd', Buffer.from([3]), 'client'), 1 << 20);
          const d = await appendOne(store, blob(device.id, 'mic', Buffer.from([4])), 1 << 20);
          const forClient = await store.blobsToSync(device.id, 'client');
          assert.deepEqual(forClient.map((x) => x.seq), [b.seq, d.seq], 'newest per sensor written by the device, oldest first');
          assert.ok(forClient[0].data.equals(Buffer.from([2, 0xff])), 'with the bytes');
          assert.ok(a.seq < b.seq);
          assert.deepEqual((await store.blobsToSync(device.id, 'device')).map((x) => x.seq), [c.seq]);
          await store.advanceCursor(device.id, 'client');
          assert.deepEqual(await store.blobsToSync(device.id, 'client'), [], 'nothing new since the client side was last connected');
          assert.deepEqual((await store.blobsToSync(device.id, 'device')).map((x) => x.seq), [c.seq], 'the other side keeps its own cursor');
          const e = await appendOne(store, blob(device.id, 'cam', Buffer.from([5])), 1 << 20);
          assert.deepEqual((await store.blobsToSync(device.id, 'client')).map((x) => x.seq), [e.seq]);
          assert.deepEqual((await store.latestBlobs(device.id, 'client')).map((x) => x.seq), [c.seq]);
          assert.deepEqual((await store.latestBlobs(device.id, 'device')).map((x) => [x.sensor, x.seq]), [['cam', e.seq], ['mic', d.seq]]);
        }));

      test('deleteDevice removes its chunks', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store);
          await appendOne(store, blob(device.id, 'cam', Buffer.alloc(10)), 1000);
          await store.deleteDevice(device.id);
          assert.equal(await store.blobBytes(device.id), 0);
          assert.equal(await store.latestBlob(device.id, 'cam'), null);
        }));
    });

    describe('invites', () => {
      test('an invite is used once; one made for an email only by that email (any case); a released one can be used again', () =>
        withStore(async (store) => {
          const open = await store.createInvite({ codeHash: 'hash-open', email: null });
          assert.equal(open.usedAt, null);
          await store.createInvite({ codeHash: 'hash-ann', email: 'ann@example.com' });
          assert.equal(await store.claimInvite('hash-unknown', 'x@example.com', 1, 0), null);
          assert.equal(await store.claimInvite('hash-ann', 'bob@example.com', 1, 0), null);
          const ann = await store.claimInvite('hash-ann', 'ANN@example.com', 5, 0);
          assert.equal(ann?.usedAt, 5);
          assert.equal(ann?.usedEmail, 'ANN@example.com');
          assert.equal((await store.claimInvite('hash-open', 'bob@example.com', 6, 0))?.usedEmail, 'bob@example.com');
          assert.equal(await store.claimInvite('hash-open', 'carol@example.com', 7, 0), null, 'used once');
          await store.releaseInvite('hash-open');
          assert.equal((await store.claimInvite('hash-open', 'carol@example.com', 8, 0))?.usedEmail, 'carol@example.com');
          const all = await store.listInvites();
          assert.deepEqual(all.map((i) => i.codeHash).sort(), ['hash-ann', 'hash-open']);
        }));
      test('an invite made before validSince is refused and stays unused', () =>
        withStore(async (store) => {
          const made = await store.createInvite({ codeHash: 'hash-old', email: null });
          assert.equal(await store.claimInvite('hash-old', 'late@example.com', made.createdAt + 10, made.createdAt + 1), null, 'expired');
          assert.equal((await store.listInvites()).find((i) => i.codeHash === 'hash-old')?.usedAt, null);
          assert.equal((await store.claimInvite('hash-old', 'late@example.com', made.createdAt + 10, made.createdAt))?.usedEmail, 'late@example.com', 'valid from its creation on');
        }));
      test('two sign-ups racing for one invite: exactly one gets it', () =>
        withStore(async (store) => {
          await store.createInvite({ codeHash: 'hash-race', email: null });
          const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.claimInvite('hash-race', `u${i}@example.com`, i, 0)));
          assert.equal(results.filter(Boolean).length, 1);
        }));
    });

    describe('Home Assistant opt-in', () => {
      test('devices opted in are listed until opted out or deleted; all lists every device; an unknown device is false', () =>
        withStore(async (store) => {
          const { device: a } = await userWithDevice(store, 'ha-a@example.com');
          const { device: b } = await userWithDevice(store, 'ha-b@example.com');
          const ids = async (which: BridgeChoice) => (await store.homeAssistantDevices(which)).map((d) => d.id);
          assert.deepEqual(await ids('opted'), []);
          assert.equal(await store.setHomeAssistant(a.id, true), true);
          assert.equal(await store.setHomeAssistant(a.id, true), true, 'twice is fine');
          assert.equal(await store.setHomeAssistant(b.id, true), true);
          assert.deepEqual(await ids('opted'), [a.id, b.id].sort());
          assert.equal(await store.setHomeAssistant(b.id, false), true);
          assert.deepEqual(await ids('opted'), [a.id]);
          assert.deepEqual(await ids('all'), [a.id, b.id].sort());
          assert.deepEqual(await ids([b.id, 'NOSUCHDEVICE00000000']), [b.id], 'listed ids that exist');
          assert.equal(await store.setHomeAssistant('NOSUCHDEVICE00000000', true), false);
          assert.equal(await store.deleteDevice(a.id), true);
          assert.deepEqual(await ids('opted'), []);
        }));
      test('each bridged device comes with its name, whether it is online, and a mark that moves with its latest values only', () =>
        withStore(async (store) => {
          const { device } = await userWithDevice(store, 'ha-mark@example.com');
          const { device: other } = await userWithDevice(store, 'ha-other@example.com');
          const view = async () => (await store.homeAssistantDevices([device.id]))[0];
          const empty = await view();
          assert.equal(empty.name, device.name);
          assert.equal(empty.userId, device.userId);
          assert.equal(empty.online, false);
          const now = Date.now();
          await store.savePresence('node-ha', [{ deviceId: device.id, side: 'device', connections: 1 }], now, now + 60_000);
          assert.equal((await view()).online, true, 'a device-side connection');
          await store.savePresence('node-ha', [{ deviceId: device.id, side: 'device', connections: 0 }, { deviceId: device.id, side: 'client', connections: 2 }], now, now + 60_000);
          assert.equal((await view()).online, false, 'apps alone do not make the device online');
          await store.appendReadings([reading(device.id, 'temp', 21.5, 'device', now)]);
          const first = (await view()).readingsMark;
          assert.notEqual(first, empty.readingsMark, 'a first reading');
          assert.equal((await view()).readingsMark, first, 'nothing new');
          await store.appendReadings([reading(other.id, 'temp', 1, 'device', now)]);
          assert.equal((await view()).readingsMark, first, "another device's reading");
          await store.appendReadings([reading(device.id, 'temp', 21.5, 'device', now + 1)]);
          const second = (await view()).readingsMark;
          assert.notEqual(second, first, 'the same value written again');
          await store.appendReadings([reading(device.id, 'lamp', 'on', 'client', now + 2)]);
          assert.notEqual((await view()).readingsMark, second, 'an app-side write');
          assert.equal(await store.renameDevice(device.id, 'Kitchen'), true);
          assert.equal((await view()).name, 'Kitchen');
        }));
    });

    describe('lifecycle', () => {
      test('ping answers; reopening the same database keeps everything and migrates nothing twice', async () => {
        const loc = await fixture.fresh();
        try {
          const first = await loc.open();
          await first.ping();
          const { user, device } = await userWithDevice(first);
          const [r] = await first.appendReadings([reading(device.id, 'temp', 21.5, 'device', Date.now())]);
          await first.close();
          const second = await loc.open();
          try {
            await second.ping();
            assert.equal((await second.getUser(user.id))?.email, user.email);
            assert.deepEqual(await second.latest(device.id, 'temp'), r);
            const [next] = await second.appendReadings([reading(device.id, 'temp', 22, 'device', Date.now())]);
            assert.ok(next.seq > r.seq, 'sequence numbers continue after a reopen');
          } finally {
            await second.close();
          }
          const third = await loc.open();
          await third.close();
        } finally {
          await loc.destroy();
        }
      });
    });
  });
  automationStoreContract(name, fixture, opts);
}
