/**
 * The DashboardStore contract (pages of widgets users arrange), run against every store by test/store.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Store } from '../src/store/types.js';
import { withFreshStore } from './store-contract.js';
import type { StoreFixture } from './store-contract.js';

export function dashboardStoreContract(name: string, fixture: StoreFixture, opts: { skip?: boolean | string } = {}): void {
  const withStore = (fn: (store: Store) => Promise<void>) => withFreshStore(fixture, fn);
  let n = 0;
  const user = async (store: Store) => (await store.createUser({ email: `dash${++n}@example.com`, name: 'Owner', passwordHash: 'h' })).id;
  const widgets = [{ id: 'w1', type: 'gauge', x: 0, y: 0, w: 4, h: 3, device: 'A'.repeat(20), sensor: 'temp', title: 'Température ✓', min: -10, max: 40 }];

  describe(`DashboardStore contract: ${name}`, { skip: opts.skip }, () => {
    test('a dashboard is stored with its widgets, read back, listed oldest first, updated and deleted', () =>
      withStore(async (store) => {
        const u = await user(store);
        const a = await store.dashboards.create(u, { name: 'Greenhouse', widgets }, 10, 1000);
        const b = await store.dashboards.create(u, { name: 'Empty', widgets: [] }, 10, 2000);
        assert.ok(a && b);
        assert.deepEqual(a, { id: a.id, userId: u, name: 'Greenhouse', widgets, createdAt: 1000, updatedAt: 1000 });
        assert.deepEqual(await store.dashboards.get(u, a.id), a);
        assert.deepEqual((await store.dashboards.list(u)).map((d) => d.name), ['Greenhouse', 'Empty']);

        const moved = [{ ...widgets[0], x: 4, y: 2 }];
        const updated = await store.dashboards.update(u, a.id, { widgets: moved }, 3000);
        assert.deepEqual(updated, { ...a, widgets: moved, updatedAt: 3000 });
        const renamed = await store.dashboards.update(u, a.id, { name: 'Serre' }, 4000);
        assert.deepEqual(renamed, { ...a, name: 'Serre', widgets: moved, updatedAt: 4000 });

        assert.equal(await store.dashboards.delete(u, a.id), true);
        assert.equal(await store.dashboards.get(u, a.id), null);
        assert.equal(await store.dashboards.delete(u, a.id), false);
        assert.deepEqual((await store.dashboards.list(u)).map((d) => d.id), [b.id]);
      }));

    test("another user's dashboard is never read, changed or deleted", () =>
      withStore(async (store) => {
        const owner = await user(store);
        const other = await user(store);
        const d = (await store.dashboards.create(owner, { name: 'Mine', widgets }, 10, 1000))!;
        assert.equal(await store.dashboards.get(other, d.id), null);
        assert.equal(await store.dashboards.update(other, d.id, { name: 'Stolen', widgets: [] }, 2000), null);
        assert.equal(await store.dashboards.delete(other, d.id), false);
        assert.deepEqual(await store.dashboards.list(other), []);
        assert.deepEqual(await store.dashboards.get(owner, d.id), d);
      }));

    test('the per-user cap holds, even for creations at once; other users are not affected', () =>
      withStore(async (store) => {
        const u = await user(store);
        const made = await Promise.all(Array.from({ length: 5 }, (_, i) => store.dashboards.create(u, { name: `D${i}`, widgets: [] }, 3, 1000)));
        assert.equal(made.filter(Boolean).length, 3);
        assert.equal((await store.dashboards.list(u)).length, 3);
        assert.ok(await store.dashboards.create(await user(store), { name: 'Other', widgets: [] }, 3, 1000));
      }));

    test("deleting the user deletes the user's dashboards", () =>
      withStore(async (store) => {
        const u = await user(store);
        const d = (await store.dashboards.create(u, { name: 'Gone', widgets }, 10, 1000))!;
        assert.equal(await store.deleteUser(u), true);
        assert.equal(await store.dashboards.get(u, d.id), null);
      }));
  });
}
