/**
 * The CallStore contract (persistent calls to devices), run against every store by test/store.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FINAL_CALLS_KEPT_PER_DEVICE } from '../src/store/call-rows.js';
import type { NewCall, Store } from '../src/store/types.js';
import { withFreshStore } from './store-contract.js';
import type { StoreFixture } from './store-contract.js';

const DAY = 86_400_000;
const LIMITS = { perDevice: 3, perUser: 5 };

export function callStoreContract(name: string, fixture: StoreFixture, opts: { skip?: boolean | string } = {}): void {
  const withStore = (fn: (store: Store) => Promise<void>) => withFreshStore(fixture, fn);
  let n = 0;
  const newDeviceId = () => `CALL${String(++n).padStart(6, '0')}${'Y'.repeat(10)}`;
  async function owner(store: Store, devices = 1) {
    const user = await store.createUser({ email: `calls${++n}@example.com`, name: 'Owner', passwordHash: 'h' });
    const ids: string[] = [];
    for (let i = 0; i < devices; i++) ids.push((await store.createDevice({ id: newDeviceId(), userId: user.id, name: 'Lamp', keyHash: 'k' })).id);
    return { userId: user.id, ids };
  }
  const call = (deviceId: string, userId: number, t: number, extra: Partial<NewCall> = {}): NewCall => ({
    id: `c_${String(++n).padStart(16, 'A')}`, deviceId, userId, method: 'reboot', params: { delay: 5, s: 'ünï' }, created: t, expires: t + 60_000, ...extra,
  });

  describe(`CallStore contract: ${name}`, { skip: opts.skip }, () => {
    test('a call is stored queued with its params, read back, listed open oldest first, then sent', () =>
      withStore(async (store) => {
        const { userId, ids: [dev] } = await owner(store);
        const t = 1_700_000_000_000;
        const a = call(dev, userId, t);
        const b = call(dev, userId, t + 1, { params: null });
        const made = await store.calls.create(a, LIMITS, t);
        assert.ok('call' in made);
        assert.deepEqual(made.call, { ...a, state: 'queued', updated: t });
        await store.calls.create(b, LIMITS, t + 1);
        assert.deepEqual(await store.calls.get(a.id), { ...a, state: 'queued', updated: t });
        assert.equal(await store.calls.get('c_nosuchcall'), null);
        assert.deepEqual((await store.calls.open(dev, t + 2)).map((c) => c.id), [a.id, b.id]);
        assert.equal(await store.calls.markSent(a.id, t + 3), true);
        assert.equal(await store.calls.markSent(a.id, t + 4), false, 'only a queued call is marked sent');
        assert.equal((await store.calls.get(a.id))?.state, 'sent');
        assert.deepEqual((await store.calls.open(dev, t + 5, { queuedOnly: true })).map((c) => c.id), [b.id]);
        assert.deepEqual((await store.calls.open(dev, t + 5)).map((c) => c.id), [a.id, b.id]);
        assert.deepEqual(await store.calls.open(dev, t + 60_001), [], 'an expired call is not open');
      }));

    test('final calls past FINAL_CALLS_KEPT_PER_DEVICE per state are forgotten, oldest first; open calls never', () =>
      withStore(async (store) => {
        const { userId, ids: [dev, other] } = await owner(store, 2);
        const t = 1_700_000_000_000;
        const wide = { perDevice: 100_000, perUser: 100_000 };
        const first = call(dev, userId, t - 1, { expires: t + 10 * DAY });
        await store.calls.create(first, wide, t - 1);
        const theirs = call(other, userId, t - 1);
        await store.calls.create(theirs, wide, t - 1);
        await store.calls.finish(theirs.id, other, { result: 0 }, t);
        const made: string[] = [];
        for (let i = 0; i < FINAL_CALLS_KEPT_PER_DEVICE + 5; i++) {
          const c = call(dev, userId, t + i);
          await store.calls.create(c, wide, t + i);
          await store.calls.finish(c.id, dev, { result: i }, t + i);
          made.push(c.id);
        }
        await store.calls.create(call(dev, userId, t + 5000), wide, t + 5000);
        assert.equal(await store.calls.get(made[4]), null, 'the oldest answered calls are forgotten');
        assert.equal((await store.calls.get(made[5]))?.state, 'answered', 'the newest 1 000 are kept');
        assert.equal((await store.calls.get(made[made.length - 1]))?.state, 'answered');
        assert.equal((await store.calls.get(first.id))?.state, 'queued', 'an open call is never forgotten, however old');
        assert.equal((await store.calls.get(theirs.id))?.state, 'answered', "another device's calls are not touched");
      }));

    test('the first answer wins, only from the call\'s own device, with a result or an error', () =>
      withStore(async (store) => {
        const { userId, ids: [dev, other] } = await owner(store, 2);
        const t = 1_700_000_000_000;
        const a = call(dev, userId, t);
        const b = call(dev, userId, t);
        await store.calls.create(a, LIMITS, t);
        await store.calls.create(b, LIMITS, t);
        assert.equal(await store.calls.finish(a.id, other, { result: 1 }, t + 1), null, 'another device cannot answer');
        const done = await store.calls.finish(a.id, dev, { result: { rebooting: true } }, t + 2);
        assert.equal(done?.state, 'answered');
        assert.deepEqual(done?.result, { rebooting: true });
        assert.equal(await store.calls.finish(a.id, dev, { result: 2 }, t + 3), null, 'a second answer is refused');
        assert.deepEqual((await store.calls.get(a.id))?.result, { rebooting: true });
        const failed = await store.calls.finish(b.id, dev, { error: 'busy' }, t + 4);
        assert.equal(failed?.error, 'busy');
        assert.equal('result' in failed!, false);
        const c = call(dev, userId, t);
        await store.calls.create(c, LIMITS, t);
        assert.equal((await store.calls.finish(c.id, dev, { result: null }, t + 5))?.result, null, 'a null result is kept as null');
        assert.equal(await store.calls.finish(call(dev, userId, t).id, dev, { result: 1 }, t), null, 'unknown call');
      }));

    test('open calls expire by time (returned once), late answers are refused, final calls are forgotten after a day', () =>
      withStore(async (store) => {
        const { userId, ids: [dev] } = await owner(store);
        const t = 1_700_000_000_000;
        const a = call(dev, userId, t, { expires: t + 1000 });
        const b = call(dev, userId, t, { expires: t + 5000 });
        const c = call(dev, userId, t, { expires: t + 1000 });
        for (const x of [a, b, c]) await store.calls.create(x, LIMITS, t);
        await store.calls.markSent(c.id, t);
        assert.equal(await store.calls.finish(a.id, dev, { result: 1 }, t + 1000), null, 'too late at the expiry');
        const expired = await store.calls.expire(t + 1000);
        assert.deepEqual(expired.map((x) => x.id).sort(), [a.id, c.id].sort());
        assert.ok(expired.every((x) => x.state === 'expired'));
        assert.deepEqual(await store.calls.expire(t + 1001), [], 'expired once');
        assert.equal((await store.calls.get(b.id))?.state, 'queued');
        assert.equal((await store.calls.get(a.id))?.state, 'expired');
        await store.calls.expire(t + 1000 + DAY + 1);
        assert.equal(await store.calls.get(a.id), null, 'forgotten after a day');
        assert.equal((await store.calls.get(b.id))?.state, 'expired', 'b expired in that sweep, and is kept a day from then');
      }));

    test('open calls are bounded per device and per user; answered and expired ones do not count', () =>
      withStore(async (store) => {
        const { userId, ids } = await owner(store, 3);
        const t = 1_700_000_000_000;
        for (let i = 0; i < 3; i++) assert.ok('call' in (await store.calls.create(call(ids[0], userId, t), LIMITS, t)));
        assert.deepEqual(await store.calls.create(call(ids[0], userId, t), LIMITS, t), { limit: 'device' });
        assert.ok('call' in (await store.calls.create(call(ids[1], userId, t), LIMITS, t)));
        const last = call(ids[1], userId, t);
        assert.ok('call' in (await store.calls.create(last, LIMITS, t)));
        assert.deepEqual(await store.calls.create(call(ids[2], userId, t), LIMITS, t), { limit: 'user' });
        await store.calls.finish(last.id, ids[1], { result: 'ok' }, t);
        assert.ok('call' in (await store.calls.create(call(ids[2], userId, t), LIMITS, t)), 'an answered call frees its place');
        const other = await owner(store);
        assert.ok('call' in (await store.calls.create(call(other.ids[0], other.userId, t), LIMITS, t)), "another user's limit is their own");
      }));

    test('deleting a device deletes its calls', () =>
      withStore(async (store) => {
        const { userId, ids: [dev] } = await owner(store);
        const a = call(dev, userId, Date.now());
        await store.calls.create(a, LIMITS, Date.now());
        await store.deleteDevice(dev);
        assert.equal(await store.calls.get(a.id), null);
      }));
  });
}
