/** The commit batcher's promise-free path (enqueue and its settlers), on a real SQLite store. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SqliteStore } from '../src/store/sqlite.js';
import { CommitBatcher, WriteBatcher } from '../src/core/write-batcher.js';
import type { Share, WriteSettler } from '../src/core/write-batcher.js';
import type { NewReading, StoredReading } from '../src/store/types.js';
import { tempDir } from './helpers.js';

const DEVICE = 'BATCHERXXXXXXXXXXXXX';
let store: SqliteStore;
let cleanup: () => void;

before(async () => {
  const tmp = tempDir('iotc-batcher-');
  cleanup = tmp.cleanup;
  store = new SqliteStore(`${tmp.dir}/iotc.db`);
  const user = await store.createUser({ email: 'b@example.com', name: 'B', passwordHash: 'h' });
  await store.createDevice({ id: DEVICE, userId: user.id, name: 'b', keyHash: 'h' });
});
after(async () => {
  await store.close();
  cleanup();
});

const readings = (...values: number[]): NewReading[] => values.map((value) => ({ deviceId: DEVICE, sensor: 'temp', value, side: 'device', time: Date.now() }));

/** A settler that records what it was told, and whether it was told during the call that queued it. */
function recorder(): WriteSettler<StoredReading> & { calls: { err: unknown; values: unknown[] | null }[]; queuing: boolean; count: number } {
  const r = {
    calls: [] as { err: unknown; values: unknown[] | null }[],
    queuing: true,
    count: 0,
    settle(err: unknown, stored: readonly StoredReading[] | null, from: number) {
      assert.equal(r.queuing, false, 'a settler is never called inside the call that queued its write');
      r.calls.push({ err, values: stored === null ? null : stored.slice(from, from + r.count).map((s) => s.value) });
    },
  };
  return r;
}

function enqueue(batcher: CommitBatcher<NewReading, StoredReading>, items: NewReading[], share: Share = '') {
  const r = recorder();
  r.count = items.length;
  batcher.enqueue(items, r, share);
  r.queuing = false;
  return r;
}

test('writes of one turn share a commit; each settler finds its own readings from its offset, and write() its own slice', async () => {
  const batches: number[] = [];
  const delivered: unknown[] = [];
  const batcher = new WriteBatcher(store, (stored) => delivered.push(...stored.map((s) => s.value)));
  batcher.onBatch = (size, _s, ok) => ok && batches.push(size);
  const one = enqueue(batcher, readings(1));
  const three = enqueue(batcher, readings(2, 3, 4));
  const promised = batcher.write(readings(5, 6));
  const last = enqueue(batcher, readings(7));
  assert.deepEqual((await promised).map((s) => s.value), [5, 6]);
  await batcher.drain();
  assert.deepEqual(batches, [7], 'one transaction for the turn');
  assert.deepEqual(one.calls, [{ err: null, values: [1] }]);
  assert.deepEqual(three.calls, [{ err: null, values: [2, 3, 4] }]);
  assert.deepEqual(last.calls, [{ err: null, values: [7] }]);
  assert.deepEqual(delivered, [1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual((await store.history(DEVICE, 'temp', { limit: 10 })).map((s) => s.value).sort(), [1, 2, 3, 4, 5, 6, 7]);
});

test('a write beyond the queue limit is refused in a later tick, with E_UNAVAILABLE, and nothing of it is stored', async () => {
  const batcher = new WriteBatcher(store, () => {}, 2);
  const fits = enqueue(batcher, readings(100, 101), 'one account');
  const over = enqueue(batcher, readings(102), 'another');
  assert.equal(over.calls.length, 0, 'not yet: the refusal comes after the caller returned');
  await new Promise((resolve) => process.nextTick(resolve));
  assert.equal(over.calls.length, 1);
  assert.equal((over.calls[0].err as { code: string }).code, 'E_UNAVAILABLE');
  assert.equal(over.calls[0].values, null);
  await batcher.drain();
  assert.deepEqual(fits.calls, [{ err: null, values: [100, 101] }]);
  const stored = (await store.history(DEVICE, 'temp', { limit: 100 })).map((s) => s.value);
  assert.ok(stored.includes(101) && !stored.includes(102));
});

test('a settler that throws leaves no other write waiting and the batch still delivered; what it threw surfaces', async () => {
  const delivered: unknown[] = [];
  const batcher = new WriteBatcher(store, (stored) => delivered.push(...stored.map((s) => s.value)));
  const before = enqueue(batcher, readings(200));
  batcher.enqueue(readings(201), { settle: () => { throw new Error('a bug in a door'); } });
  const afterIt = enqueue(batcher, readings(202));
  // Whoever waits for the commit hears of it (with no one waiting, it is an unhandled rejection, as a throwing
  // promise reaction was).
  await assert.rejects(batcher.drain(), /a bug in a door/);
  assert.deepEqual(before.calls, [{ err: null, values: [200] }]);
  assert.deepEqual(afterIt.calls, [{ err: null, values: [202] }]);
  assert.deepEqual(delivered, [200, 201, 202]);
  // The batcher goes on committing.
  assert.deepEqual((await batcher.write(readings(203))).map((s) => s.value), [203]);
});

test('one account cannot fill the queue: past its share its writes are refused (E_RATE_LIMITED) while others still get in', async () => {
  const batcher = new WriteBatcher(store, () => {}, 10);
  const first = enqueue(batcher, readings(200, 201, 202, 203, 204), 1);
  const over = enqueue(batcher, readings(205), 1);
  const other = enqueue(batcher, readings(206, 207, 208), 2);
  await batcher.drain();
  // A refusal is told in a later tick, which a commit made of microtasks alone may not have reached.
  await new Promise((resolve) => process.nextTick(resolve));
  assert.deepEqual(first.calls, [{ err: null, values: [200, 201, 202, 203, 204] }]);
  assert.equal((over.calls[0].err as { code: string }).code, 'E_RATE_LIMITED');
  assert.match((over.calls[0].err as Error).message, /5 readings of this account wait for the store already, and one account may have 5 waiting/);
  assert.deepEqual(other.calls, [{ err: null, values: [206, 207, 208] }]);
  const again = enqueue(batcher, readings(209), 1);
  await batcher.drain();
  assert.deepEqual(again.calls, [{ err: null, values: [209] }], 'room again once its writes committed');
});

test('a commit takes at most a quota of one account\'s writes, in order; the rest waits while others\' join', async () => {
  const sizes: number[] = [];
  const delivered: unknown[] = [];
  const batcher = new CommitBatcher<NewReading, StoredReading>({
    commit: (items) => store.appendReadings(items), onCommitted: (stored) => delivered.push(...stored.map((r) => r.value)),
    noun: 'reading', maxQueued: 100, maxPerCommitPerShare: 3,
  });
  batcher.onBatch = (size, _s, ok) => ok && sizes.push(size);
  const writes = [
    enqueue(batcher, readings(300, 301), 'busy'),
    enqueue(batcher, readings(302, 303), 'busy'),
    enqueue(batcher, readings(304), 'quiet'),
    enqueue(batcher, readings(305), 'busy'),
    enqueue(batcher, readings(306, 307, 308, 309, 310), 'bulk'),
  ];
  await batcher.drain();
  assert.deepEqual(sizes, [8, 3], 'busy\'s second write waits, and its third behind it; bulk goes whole, being alone');
  assert.deepEqual(delivered, [300, 301, 304, 306, 307, 308, 309, 310, 302, 303, 305]);
  assert.ok(writes.every((w) => w.calls.length === 1 && w.calls[0].err === null));

  sizes.length = 0;
  for (const v of [400, 401, 402, 403, 404]) enqueue(batcher, readings(v), 'alone');
  await batcher.drain();
  assert.deepEqual(sizes, [3, 2], 'one account alone: its writes in order, a quota at a time');
});

test('a share with holdShareAt waiting tells its sources to hold; they resume once, when half is left; other shares and let-go sources are untouched', async () => {
  const batcher = new CommitBatcher<NewReading, StoredReading>({
    commit: (items) => store.appendReadings(items), noun: 'reading', maxQueued: 100, maxPerCommitPerShare: 4, holdShareAt: 4,
  });
  const resumed: string[] = [];
  const source = (name: string) => ({ resumeReading: () => resumed.push(name) });
  const [a, b, gone, quiet] = [source('a'), source('b'), source('gone'), source('quiet')];
  enqueue(batcher, readings(500, 501, 502), 'flood');
  assert.equal(batcher.holdWhileBusy('flood', a), false, 'three waiting, under four');
  const writes = [enqueue(batcher, readings(503, 504), 'flood'), enqueue(batcher, readings(505, 506, 507, 508), 'flood')];
  assert.equal(batcher.holdWhileBusy('flood', a), true, 'nine waiting');
  assert.equal(batcher.holdWhileBusy('flood', b), true);
  assert.equal(batcher.holdWhileBusy('flood', gone), true);
  assert.equal(batcher.holdWhileBusy('quiet', quiet), false, 'another account is not held by this one\'s backlog');
  batcher.letGo('flood', gone);
  // Commits take whole writes up to the quota of four: 500–502, then 503–504 (six, then four left: more than half
  // of holdShareAt), then 505–508: the sources resume, each once.
  const commits: number[] = [];
  batcher.onBatch = (size) => {
    commits.push(size);
    if (commits.length < 3) assert.deepEqual(resumed, [], `still ${commits.length === 1 ? 6 : 4} waiting`);
  };
  await batcher.drain();
  assert.deepEqual(commits, [3, 2, 4]);
  assert.deepEqual(resumed, ['a', 'b'], 'each held source resumed once, the one let go not at all');
  assert.ok(writes.every((w) => w.calls.length === 1 && w.calls[0].err === null));
  await batcher.drain();
  assert.deepEqual(resumed, ['a', 'b']);
});
