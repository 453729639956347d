/**
 * The SharingStore contract (shares, invitations, public links), run against every store by test/store.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IotcError } from '../src/core/errors.js';
import type { Store } from '../src/store/types.js';
import { withFreshStore } from './store-contract.js';
import type { StoreFixture, StoreLocation } from './store-contract.js';

export function sharingStoreContract(name: string, fixture: StoreFixture, opts: { skip?: boolean | string } = {}): void {
  const withStore = (fn: (store: Store, loc: StoreLocation) => Promise<void>) => withFreshStore(fixture, fn);
  let n = 0;
  const user = (store: Store, email = `share${++n}@example.com`) => store.createUser({ email, name: 'U', passwordHash: 'h' });
  const device = async (store: Store, userId: number) => store.createDevice({ id: `SHARE${String(++n).padStart(5, '0')}${'Z'.repeat(10)}`, userId, name: 'Pump', keyHash: 'k' });

  describe(`SharingStore contract: ${name}`, { skip: opts.skip }, () => {
    test('caps: shares and invitations together per device, links per target, held by a burst through two stores at once', () =>
      withStore(async (store, loc) => {
        // A second store on the same data: another node of a cluster.
        const second = await loc.open();
        try {
          const owner = await user(store);
          const d = await device(store, owner.id);
          const people = await Promise.all([user(store), user(store), user(store)]);
          const refusals = (results: PromiseSettledResult<unknown>[]) => {
            for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as IotcError).code, 'E_LIMIT', String(r.reason));
            return results.filter((r) => r.status === 'fulfilled').length;
          };
          const burst = await Promise.allSettled([
            ...people.map((p, i) => (i % 2 ? second : store).sharing.share(d.id, p.id, 'viewer', 1000, 4)),
            ...Array.from({ length: 6 }, (_, i) => (i % 2 ? store : second).sharing.invite(d.id, `guest${i}@example.com`, 'viewer', 1000, 4)),
          ]);
          assert.equal(refusals(burst), 4, 'four people in all, shares and invitations together');
          const held = (await store.sharing.sharesOf(d.id)).length + (await store.sharing.invitationsOf(d.id)).length;
          assert.equal(held, 4);
          // Someone already there may change role, at the cap.
          const someone = (await store.sharing.sharesOf(d.id))[0] ?? null;
          if (someone) assert.equal(await second.sharing.share(d.id, someone.userId, 'operator', 2000, 4), true);
          const invited = (await store.sharing.invitationsOf(d.id))[0] ?? null;
          if (invited) await second.sharing.invite(d.id, invited.email.toUpperCase(), 'operator', 2000, 4);
          await assert.rejects(store.sharing.invite(d.id, 'one.more@example.com', 'viewer', 3000, 4), (e: unknown) => (e as IotcError).code === 'E_LIMIT');
          await store.sharing.invite(d.id, 'uncapped@example.com', 'viewer', 3000);

          const links = await Promise.allSettled(
            Array.from({ length: 7 }, (_, i) => (i % 2 ? second : store).sharing.createLink({ tokenHash: `cap-${i}`, scope: 'device', target: d.id, userId: owner.id }, 1000, 3)),
          );
          assert.equal(refusals(links), 3);
          assert.equal((await store.sharing.linksOf('device', d.id)).length, 3);
          const other = await device(store, owner.id);
          assert.equal((await store.sharing.createLink({ tokenHash: 'cap-other', scope: 'device', target: other.id, userId: owner.id }, 1000, 3)).target, other.id, 'another target counts apart');
        } finally {
          await second.close();
        }
      }));

    test('share, change the role, read it, list it both ways, unshare; each change records an access event', () =>
      withStore(async (store) => {
        const owner = await user(store);
        const partner = await user(store);
        const d = await device(store, owner.id);
        const before = await store.lastDeviceEventSeq();
        assert.equal(await store.sharing.roleOf(d.id, partner.id), null);
        assert.equal(await store.sharing.share(d.id, partner.id, 'viewer', 1000), true);
        assert.equal(await store.sharing.roleOf(d.id, partner.id), 'viewer');
        assert.equal(await store.sharing.share(d.id, partner.id, 'operator', 2000), true);
        assert.equal(await store.sharing.roleOf(d.id, partner.id), 'operator');
        assert.deepEqual(await store.sharing.sharesOf(d.id), [{ deviceId: d.id, userId: partner.id, email: partner.email, role: 'operator', createdAt: 1000 }]);
        const shared = await store.sharing.sharedWith(partner.id, Date.now());
        assert.equal(shared.length, 1);
        assert.equal(shared[0].id, d.id);
        assert.equal(shared[0].role, 'operator');
        assert.equal(shared[0].ownerEmail, owner.email);
        assert.equal(shared[0].online, false);
        assert.deepEqual(await store.sharing.sharedWith(owner.id, Date.now()), [], 'the owner\'s own devices are not "shared with" them');
        const events = await store.deviceEventsSince(before);
        assert.deepEqual(events.map((e) => [e.deviceId, e.kind]), [[d.id, 'access'], [d.id, 'access']]);
        assert.equal(await store.sharing.unshare(d.id, partner.id, 3000), true);
        assert.equal(await store.sharing.unshare(d.id, partner.id, 3000), false, 'a second unshare changes nothing');
        assert.equal(await store.sharing.roleOf(d.id, partner.id), null);
        assert.equal((await store.deviceEventsSince(before)).length, 3);
      }));

    test('sharing an unknown device or with an unknown user is refused; deleting the device or the user removes the share', () =>
      withStore(async (store) => {
        const owner = await user(store);
        const partner = await user(store);
        const d = await device(store, owner.id);
        assert.equal(await store.sharing.share('NOSUCHDEVICE00000000', partner.id, 'viewer', 1), false);
        assert.equal(await store.sharing.share(d.id, 999_999, 'viewer', 1), false);
        await store.sharing.share(d.id, partner.id, 'viewer', 1);
        await store.deleteUser(partner.id);
        assert.deepEqual(await store.sharing.sharesOf(d.id), []);
        const other = await user(store);
        await store.sharing.share(d.id, other.id, 'viewer', 1);
        await store.deleteDevice(d.id);
        assert.deepEqual(await store.sharing.sharedWith(other.id, Date.now()), []);
      }));

    test('invitations: created, re-roled, listed, withdrawn, and accepted at sign-up into shares (case-insensitive)', () =>
      withStore(async (store) => {
        const owner = await user(store);
        const d1 = await device(store, owner.id);
        const d2 = await device(store, owner.id);
        const d3 = await device(store, owner.id);
        await store.sharing.invite(d1.id, 'New.Person@Example.com', 'viewer', 10);
        await store.sharing.invite(d1.id, 'new.person@example.com', 'operator', 20);
        await store.sharing.invite(d2.id, 'new.person@example.com', 'viewer', 30);
        await store.sharing.invite(d3.id, 'someone@example.com', 'viewer', 40);
        assert.deepEqual(await store.sharing.invitationsOf(d1.id), [{ deviceId: d1.id, email: 'new.person@example.com', role: 'operator', createdAt: 20 }], 'inviting again changes the role and renews the invitation');
        assert.equal(await store.sharing.uninvite(d3.id, 'SOMEONE@example.com'), true);
        assert.equal(await store.sharing.uninvite(d3.id, 'someone@example.com'), false);
        const before = await store.lastDeviceEventSeq();
        const newcomer = await user(store, 'new.person@example.com');
        assert.equal(await store.sharing.acceptInvitations(newcomer.id, 'NEW.person@example.com', 50, 0), 2);
        assert.equal(await store.sharing.roleOf(d1.id, newcomer.id), 'operator');
        assert.equal(await store.sharing.roleOf(d2.id, newcomer.id), 'viewer');
        assert.deepEqual(await store.sharing.invitationsOf(d1.id), [], 'accepted invitations are gone');
        assert.equal((await store.deviceEventsSince(before)).filter((e) => e.kind === 'access').length, 2);
        assert.equal(await store.sharing.acceptInvitations(newcomer.id, 'new.person@example.com', 60, 0), 0, 'nothing is accepted twice');
      }));

    test('an invitation made before validSince is not accepted, and is dropped all the same', () =>
      withStore(async (store) => {
        const owner = await user(store, 'old-inviter@example.com');
        const old = await device(store, owner.id);
        const fresh = await device(store, owner.id);
        await store.sharing.invite(old.id, 'late@example.com', 'operator', 100);
        await store.sharing.invite(fresh.id, 'late@example.com', 'viewer', 500);
        const late = await user(store, 'late@example.com');
        assert.equal(await store.sharing.acceptInvitations(late.id, 'late@example.com', 1000, 400), 1);
        assert.equal(await store.sharing.roleOf(old.id, late.id), null, 'the expired invitation gives no access');
        assert.equal(await store.sharing.roleOf(fresh.id, late.id), 'viewer');
        assert.deepEqual(await store.sharing.invitationsOf(old.id), [], 'the expired invitation is gone');
      }));

    test("an invitation to the owner's own email is not turned into a share with themselves", () =>
      withStore(async (store) => {
        const owner = await user(store, 'own@example.com');
        const d = await device(store, owner.id);
        await store.sharing.invite(d.id, 'own@example.com', 'viewer', 1);
        assert.equal(await store.sharing.acceptInvitations(owner.id, 'own@example.com', 2, 0), 0);
        assert.equal(await store.sharing.roleOf(d.id, owner.id), null);
      }));

    test('public links: created, found by hash, listed per target, deleted only for their own target', () =>
      withStore(async (store) => {
        const owner = await user(store);
        const d = await device(store, owner.id);
        const a = await store.sharing.createLink({ tokenHash: 'hash-a', scope: 'device', target: d.id, userId: owner.id }, 100);
        const b = await store.sharing.createLink({ tokenHash: 'hash-b', scope: 'dashboard', target: '7', userId: owner.id }, 200);
        assert.deepEqual(a, { id: a.id, tokenHash: 'hash-a', scope: 'device', target: d.id, userId: owner.id, createdAt: 100 });
        assert.deepEqual(await store.sharing.linkByHash('hash-b'), b);
        assert.equal(await store.sharing.linkByHash('nope'), null);
        assert.deepEqual((await store.sharing.linksOf('device', d.id)).map((l) => l.id), [a.id]);
        assert.equal(await store.sharing.deleteLink(a.id, 'dashboard', '7'), false, 'not that target\'s link');
        assert.equal(await store.sharing.deleteLink(a.id, 'device', d.id), true);
        assert.equal(await store.sharing.linkByHash('hash-a'), null);
        await store.sharing.createLink({ tokenHash: 'hash-c', scope: 'device', target: d.id, userId: owner.id }, 300);
        assert.equal(await store.sharing.deleteLinksOf('device', d.id), 1);
        assert.deepEqual(await store.sharing.linksOf('device', d.id), []);
        await store.deleteUser(owner.id);
        assert.equal(await store.sharing.linkByHash('hash-b'), null, 'a user\'s links go with the account');
      }));

    test('historyBuckets: min, max, avg, count, last per non-empty bucket, numeric strings as numbers, others left out', () =>
      withStore(async (store) => {
        const owner = await user(store);
        const d = await device(store, owner.id);
        const t0 = 1_700_000_000_000; // a multiple of 1000: buckets start at t0, t0+1000, t0+2000
        const r = (dt: number, value: unknown, sensor = 'temp', side: 'device' | 'client' = 'device') => ({ deviceId: d.id, sensor, value, side, time: t0 + dt });
        await store.appendReadings([
          r(100, 1), r(200, '3'), r(300, 2), r(350, 99, 'other'), r(400, 50, 'temp', 'client'),
          r(1500, 'on'), r(1600, { x: 1 }),
          r(2500, 10), r(2600, ' -4.5 '), r(2700, true),
        ]);
        const q = { from: t0, to: t0 + 2999, bucketMs: 1000, limit: 100 };
        assert.deepEqual(await store.historyBuckets(d.id, 'temp', { ...q, side: 'device' }), [
          { time: t0, min: 1, max: 3, avg: 2, count: 3, last: 2 },
          { time: t0 + 2000, min: -4.5, max: 10, avg: 2.75, count: 2, last: -4.5 },
        ]);
        const both = await store.historyBuckets(d.id, 'temp', q);
        assert.deepEqual(both[0], { time: t0, min: 1, max: 50, avg: 14, count: 4, last: 50 });
        assert.deepEqual(await store.historyBuckets(d.id, 'temp', { ...q, limit: 1 }), [both[0]]);
        assert.deepEqual(await store.historyBuckets(d.id, 'temp', { ...q, from: t0 + 2550 }), [{ time: t0 + 2000, min: -4.5, max: -4.5, avg: -4.5, count: 1, last: -4.5 }]);
        assert.deepEqual(await store.historyBuckets(d.id, 'nothing', q), []);
      }));
  });
}
