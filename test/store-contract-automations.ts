/**
 * The automation part of the Store contract (store.automations), run against every store by storeContract.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Rule } from '../src/automations/model.js';
import { KEPT_ALERTS_PER_RULE, KEPT_DELIVERIES_PER_DEVICE, KEPT_NOTIFICATIONS_PER_USER } from '../src/store/automation-rows.js';
import type { Store } from '../src/store/types.js';
import { withFreshStore } from './store-contract.js';
import type { StoreFixture, StoreLocation } from './store-contract.js';

let counter = 0;

export function automationStoreContract(name: string, fixture: StoreFixture, opts: { skip?: boolean | string } = {}): void {
  const withStore = (fn: (store: Store, loc: StoreLocation) => Promise<void>) => withFreshStore(fixture, fn);

  async function owner(store: Store) {
    const n = ++counter;
    const user = await store.createUser({ email: `auto${n}@example.com`, name: 'Owner', passwordHash: 'scrypt$hash' });
    const device = await store.createDevice({ id: `AUTO${String(n).padStart(5, '0')}${'Y'.repeat(11)}`, userId: user.id, name: 'Greenhouse', keyHash: 'h' });
    return { user, device };
  }

  function rule(deviceId: string, userId: number, extra: Partial<Rule> = {}): Rule {
    const n = ++counter;
    return {
      id: `r_test${n}`, deviceId, userId, name: `rule ${n}`, enabled: true,
      trigger: { type: 'threshold', sensor: 'temp', op: '<', value: 2, forMs: 60_000 },
      actions: [{ type: 'set', sensor: 'heater', value: true }, { type: 'webhook', url: 'https://example.com/h', method: 'POST', preset: 'plain' }],
      cooldownMs: 0, secret: 'whsec_x', createdAt: 1000 + n, updatedAt: 1000 + n, lastRunAt: null, lastError: null, ...extra,
    };
  }

  describe(`Store contract (automations): ${name}`, { skip: opts.skip }, () => {
    test('rules: a burst of creations through two stores at once stops at the caps per device and per account', () =>
      withStore(async (store, loc) => {
        // A second store on the same data: another node of a cluster.
        const second = await loc.open();
        try {
          const { user, device } = await owner(store);
          const extra = await store.createDevice({ id: `AUTOX${String(++counter).padStart(4, '0')}${'Z'.repeat(11)}`, userId: user.id, name: 'Shed', keyHash: 'h' });
          const limits = { perDevice: 3, perUser: 5 };
          const burst = (deviceId: string) =>
            Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? second : store).automations.createRule(rule(deviceId, user.id), limits)));
          const first = await burst(device.id);
          assert.equal(first.filter((r) => r === null).length, 3, 'three on the first device');
          assert.deepEqual([...new Set(first.filter((r) => r !== null))], ['device']);
          const next = await burst(extra.id);
          assert.equal(next.filter((r) => r === null).length, 2, 'two more on the second: five for the account');
          assert.deepEqual([...new Set(next.filter((r) => r !== null))], ['user']);
          assert.deepEqual([(await store.automations.listRules(device.id)).length, (await store.automations.listRules(extra.id)).length], [3, 2]);
          assert.equal(await store.automations.createRule(rule(device.id, user.id)), null, 'no limits given: stored');
        } finally {
          await second.close();
        }
      }));

    test('history past its counts keeps only the newest: alerts per rule, finished deliveries per device, notifications per user', () =>
      withStore(async (store) => {
        const { user, device } = await owner(store);
        const other = await owner(store);
        const r = rule(device.id, user.id);
        await store.automations.createRule(r);
        // A rule toggled without end: every raise adds an alert.
        for (let at = 1; at <= KEPT_ALERTS_PER_RULE + 5; at++) {
          assert.ok(await store.automations.raiseAlert({ ruleId: r.id, deviceId: device.id, userId: user.id, detail: null, at: at * 10, cooldownMs: 0 }));
          if (at <= KEPT_ALERTS_PER_RULE + 4) assert.ok(await store.automations.clearAlert(r.id, at * 10 + 5));
        }
        const alerts = await store.automations.listAlerts(device.id, 1000);
        assert.equal(alerts.length, KEPT_ALERTS_PER_RULE);
        assert.equal(alerts[0].raisedAt, (KEPT_ALERTS_PER_RULE + 5) * 10, 'the newest, still open, is kept');
        assert.equal(alerts[0].clearedAt, null);
        assert.equal(alerts[alerts.length - 1].raisedAt, 60, 'the oldest go first');
        assert.equal(await store.automations.raiseAlert({ ruleId: r.id, deviceId: device.id, userId: user.id, detail: null, at: 5000, cooldownMs: 0 }), null, 'the open alert holds');

        const delivery = (target: string) => ({ userId: user.id, ruleId: r.id, deviceId: device.id, kind: 'webhook' as const, target, payload: {}, at: 1 });
        const pending = await store.automations.enqueueDelivery(delivery('still pending'), 100_000);
        for (let i = 0; i < KEPT_DELIVERIES_PER_DEVICE + 5; i++) {
          const d = await store.automations.enqueueDelivery(delivery(`done ${i}`), 100_000);
          await store.automations.finishDelivery(d!.id, { state: 'delivered', attempts: 1, nextAttemptAt: 2, lastStatus: 200, lastError: null, at: 2 });
        }
        await store.automations.enqueueDelivery(delivery('last'), 100_000);
        const deliveries = await store.automations.listDeliveries(device.id, 100_000);
        assert.equal(deliveries.length, KEPT_DELIVERIES_PER_DEVICE + 1, 'the newest finished ones, and the pending one however old');
        assert.equal(deliveries[0].target, 'last');
        assert.ok(deliveries.some((d) => d.id === pending!.id), 'a pending delivery is never trimmed');
        assert.ok(!deliveries.some((d) => d.target === 'done 4'));

        for (let i = 0; i < KEPT_NOTIFICATIONS_PER_USER + 3; i++) await store.automations.addNotification({ userId: user.id, deviceId: device.id, ruleId: r.id, text: `n${i}`, time: i });
        await store.automations.addNotification({ userId: other.user.id, deviceId: other.device.id, ruleId: null, text: 'theirs', time: 1 });
        const notes = await store.automations.listNotifications(user.id, 100_000);
        assert.equal(notes.length, KEPT_NOTIFICATIONS_PER_USER);
        assert.equal(notes[0].text, `n${KEPT_NOTIFICATIONS_PER_USER + 2}`);
        assert.equal((await store.automations.listNotifications(other.user.id, 10)).length, 1, "another account's are not touched");
      }));

    test('rules: create, get, list per device, enabled list, count, update, record a run, delete', () =>
      withStore(async (store) => {
        const { user, device } = await owner(store);
        const other = await owner(store);
        const a = rule(device.id, user.id);
        const b = rule(device.id, user.id, { enabled: false, trigger: { type: 'schedule', cron: '0 7 * * *', tz: 'Europe/Paris' } });
        const c = rule(other.device.id, other.user.id);
        for (const r of [a, b, c]) await store.automations.createRule(r);
        assert.deepEqual(await store.automations.getRule(a.id), a);
        assert.equal(await store.automations.getRule('r_missing'), null);
        assert.deepEqual((await store.automations.listRules(device.id)).map((r) => r.id), [a.id, b.id]);
        assert.deepEqual((await store.automations.listEnabledRules()).map((r) => r.id).sort(), [a.id, c.id].sort());
        assert.deepEqual((await store.automations.listRules(other.device.id)).map((r) => r.id), [c.id]);
        const changed = { ...a, name: 'renamed', enabled: false, cooldownMs: 5000, updatedAt: a.updatedAt + 1 };
        assert.equal(await store.automations.updateRule(changed), true);
        assert.equal(await store.automations.updateRule({ ...changed, id: 'r_missing' }), false);
        await store.automations.recordRuleRun(a.id, 9999, 'webhook: HTTP 500');
        assert.deepEqual(await store.automations.getRule(a.id), { ...changed, lastRunAt: 9999, lastError: 'webhook: HTTP 500' });
        assert.equal(await store.automations.deleteRule(a.id), true);
        assert.equal(await store.automations.deleteRule(a.id), false);
        assert.deepEqual((await store.automations.listRules(device.id)).map((r) => r.id), [b.id]);
      }));

    test("the rules version moves with every change to the rules, anyone's, and not when a rule runs", () =>
      withStore(async (store) => {
        const { user, device } = await owner(store);
        const versions: number[] = [await store.automations.rulesVersion()];
        const moved = async (what: string) => {
          const v = await store.automations.rulesVersion();
          assert.notEqual(v, versions.at(-1), `the version moves when ${what}`);
          versions.push(v);
        };
        const a = rule(device.id, user.id);
        await store.automations.createRule(a);
        await moved('a rule is created');
        await store.automations.createRule(rule(device.id, user.id, { enabled: false }));
        await moved('a disabled rule is created');
        await store.automations.recordRuleRun(a.id, 5000, null);
        assert.equal(await store.automations.rulesVersion(), versions.at(-1), 'a run changes nothing a node evaluates');
        await store.automations.updateRule({ ...a, enabled: false, updatedAt: a.updatedAt + 1 });
        await moved('a rule is disabled');
        await store.automations.deleteRule(a.id);
        await moved('a rule is deleted');
        await store.deleteDevice(device.id);
        await moved("the device, and with it its last rule, is deleted");
        assert.equal(new Set(versions).size, versions.length, 'never back to an earlier version');
      }));

    test('deleting the device removes its rules, alerts and deliveries', () =>
      withStore(async (store) => {
        const { user, device } = await owner(store);
        const r = rule(device.id, user.id);
        await store.automations.createRule(r);
        await store.automations.raiseAlert({ ruleId: r.id, deviceId: device.id, userId: user.id, detail: null, at: 1, cooldownMs: 0 });
        await store.automations.enqueueDelivery({ userId: user.id, ruleId: r.id, deviceId: device.id, kind: 'webhook', target: 'u', payload: {}, at: 1 }, 10);
        await store.deleteDevice(device.id);
        assert.equal(await store.automations.getRule(r.id), null);
        assert.deepEqual(await store.automations.listAlerts(device.id, 10), []);
        assert.deepEqual(await store.automations.listDeliveries(device.id, 10), []);
      }));

    test('alerts: raised once while open, cleared once, acknowledged by the owner only, cooldown after a clear', () =>
      withStore(async (store) => {
        const { user, device } = await owner(store);
        const r = rule(device.id, user.id);
        await store.automations.createRule(r);
        const raise = (at: number, cooldownMs = 0) => store.automations.raiseAlert({ ruleId: r.id, deviceId: device.id, userId: user.id, detail: { sensor: 'temp', value: 1.5 }, at, cooldownMs });
        assert.equal(await store.automations.hasOpenAlert(r.id), false);
        const results = await Promise.all([raise(100), raise(101), raise(102)]);
        assert.equal(await store.automations.hasOpenAlert(r.id), true);
        const raised = results.filter((x) => x !== null);
        assert.equal(raised.length, 1, 'exactly one raise wins');
        assert.deepEqual(raised[0]!.detail, { sensor: 'temp', value: 1.5 });
        assert.equal(raised[0]!.state, 'active');
        assert.equal(await store.automations.acknowledgeAlert(raised[0]!.id, user.id + 1000, 150), false, 'not someone else');
        assert.equal(await store.automations.acknowledgeAlert(raised[0]!.id, user.id, 150), true);
        assert.equal(await store.automations.acknowledgeAlert(raised[0]!.id, user.id, 151), false, 'once');
        assert.equal((await store.automations.listAlerts(device.id, 10))[0].state, 'acknowledged');
        const cleared = await Promise.all([store.automations.clearAlert(r.id, 200), store.automations.clearAlert(r.id, 201)]);
        assert.equal(cleared.filter((x) => x !== null).length, 1, 'exactly one clear wins');
        assert.equal(await store.automations.hasOpenAlert(r.id), false);
        assert.equal(await raise(250, 100), null, 'within the cooldown after the clear');
        const again = await raise(400, 100);
        assert.ok(again);
        const list = await store.automations.listAlerts(device.id, 10);
        assert.deepEqual(list.map((x) => x.state), ['active', 'cleared'], 'newest first');
        assert.ok(list[1].clearedAt === 200 || list[1].clearedAt === 201, 'the winning clear\'s time');
        assert.equal(list[1].acknowledgedAt, 150);
      }));

    test('a schedule occurrence is claimed once', () =>
      withStore(async (store) => {
        const { user, device } = await owner(store);
        const r = rule(device.id, user.id);
        await store.automations.createRule(r);
        const claims = await Promise.all([store.automations.claimOccurrence(r.id, 5000), store.automations.claimOccurrence(r.id, 5000)]);
        assert.deepEqual(claims.sort(), [false, true]);
        assert.equal(await store.automations.claimOccurrence(r.id, 6000), true);
      }));

    test('deliveries: bounded per user, claimed with a lease (fairly per user), finished, listed newest first', () =>
      withStore(async (store) => {
        const a = await owner(store);
        const b = await owner(store);
        const ra = rule(a.device.id, a.user.id);
        const rb = rule(b.device.id, b.user.id);
        await store.automations.createRule(ra);
        await store.automations.createRule(rb);
        const enqueue = (o: typeof a, r: Rule, at: number) =>
          store.automations.enqueueDelivery({ userId: o.user.id, ruleId: r.id, deviceId: o.device.id, kind: 'webhook', target: 'https://example.com/h', payload: { n: at }, at }, 3);
        for (const at of [10, 11, 12]) assert.ok(await enqueue(a, ra, at));
        assert.equal(await enqueue(a, ra, 13), null, 'the user\'s queue is full');
        assert.ok(await enqueue(b, rb, 14), 'another user is not held back');
        assert.deepEqual(await store.automations.claimDeliveries(5, 1000, 10, 2), [], 'nothing due yet');
        const first = await store.automations.claimDeliveries(100, 1000, 10, 2);
        assert.deepEqual(first.map((d) => (d.payload as { n: number }).n), [10, 11, 14], 'two of a, one of b');
        assert.deepEqual(await store.automations.claimDeliveries(100, 1000, 10, 2).then((x) => x.map((d) => (d.payload as { n: number }).n)), [12], 'leased ones are not handed out again');
        assert.deepEqual(await store.automations.claimDeliveries(200, 1000, 10, 2), []);
        await store.automations.finishDelivery(first[0].id, { state: 'delivered', attempts: 1, nextAttemptAt: 300, lastStatus: 200, lastError: null, at: 300 });
        await store.automations.finishDelivery(first[1].id, { state: 'pending', attempts: 1, nextAttemptAt: 2000, lastStatus: 503, lastError: 'HTTP 503', at: 300 });
        assert.ok(await enqueue(a, ra, 15), 'a delivered one makes room');
        assert.equal(await enqueue(a, ra, 16), null);
        const again = await store.automations.claimDeliveries(1500, 3000, 10, 2);
        assert.deepEqual(again.map((d) => (d.payload as { n: number }).n).sort(), [12, 14, 15], 'leases ran out: due again; the retry waits for its time');
        const retried = await store.automations.claimDeliveries(2500, 4000, 10, 5);
        assert.deepEqual(retried.map((d) => d.id), [first[1].id]);
        assert.equal(retried[0].attempts, 1);
        assert.equal(retried[0].lastStatus, 503);
        const log = await store.automations.listDeliveries(a.device.id, 10);
        assert.deepEqual(log.map((d) => (d.payload as { n: number }).n), [15, 12, 11, 10]);
        assert.deepEqual([log[3].state, log[3].lastStatus, log[3].attempts], ['delivered', 200, 1]);
      }));

    test('notifications: added, listed newest first, marked read', () =>
      withStore(async (store) => {
        const { user, device } = await owner(store);
        await store.automations.addNotification({ userId: user.id, deviceId: device.id, ruleId: null, text: 'one', time: 1 });
        await store.automations.addNotification({ userId: user.id, deviceId: device.id, ruleId: 'r_x', text: 'two', time: 2 });
        const list = await store.automations.listNotifications(user.id, 10);
        assert.deepEqual(list.map((n) => [n.text, n.read, n.ruleId]), [['two', false, 'r_x'], ['one', false, null]]);
        await store.automations.markNotificationsRead(user.id);
        assert.ok((await store.automations.listNotifications(user.id, 10)).every((n) => n.read));
        assert.deepEqual(await store.automations.listNotifications(user.id + 1000, 10), []);
      }));

    test('pruneAutomationHistory forgets finished deliveries, cleared alerts, notifications and occurrences before a time', () =>
      withStore(async (store) => {
        const { user, device } = await owner(store);
        const r = rule(device.id, user.id);
        await store.automations.createRule(r);
        const a = store.automations;
        await a.raiseAlert({ ruleId: r.id, deviceId: device.id, userId: user.id, detail: null, at: 10, cooldownMs: 0 });
        await a.clearAlert(r.id, 20);
        await a.raiseAlert({ ruleId: r.id, deviceId: device.id, userId: user.id, detail: null, at: 30, cooldownMs: 0 });
        const done = await a.enqueueDelivery({ userId: user.id, ruleId: r.id, deviceId: device.id, kind: 'webhook', target: 'u', payload: {}, at: 10 }, 10);
        await a.finishDelivery(done!.id, { state: 'delivered', attempts: 1, nextAttemptAt: 15, lastStatus: 200, lastError: null, at: 15 });
        await a.enqueueDelivery({ userId: user.id, ruleId: r.id, deviceId: device.id, kind: 'webhook', target: 'u', payload: {}, at: 12 }, 10);
        await a.addNotification({ userId: user.id, deviceId: device.id, ruleId: r.id, text: 'old', time: 5 });
        await a.addNotification({ userId: user.id, deviceId: device.id, ruleId: r.id, text: 'new', time: 500 });
        await a.claimOccurrence(r.id, 40);
        assert.equal(await a.pruneAutomationHistory(100), 4);
        assert.deepEqual((await a.listAlerts(device.id, 10)).map((x) => x.state), ['active'], 'the open alert stays');
        assert.deepEqual((await a.listDeliveries(device.id, 10)).map((x) => x.state), ['pending'], 'pending deliveries stay');
        assert.deepEqual((await a.listNotifications(user.id, 10)).map((n) => n.text), ['new']);
        assert.equal(await a.claimOccurrence(r.id, 40), true, 'the occurrence row went');
      }));

    test('onlineDevices: only live device-side presence counts', () =>
      withStore(async (store) => {
        const a = await owner(store);
        const b = await owner(store);
        const c = await owner(store);
        await store.savePresence('n1', [{ deviceId: a.device.id, side: 'device', connections: 1 }, { deviceId: b.device.id, side: 'client', connections: 2 }], 1000, 5000);
        await store.savePresence('n2', [{ deviceId: c.device.id, side: 'device', connections: 1 }], 1000, 1500);
        assert.deepEqual([...(await store.automations.onlineDevices([a.device.id, b.device.id, c.device.id], 2000))], [a.device.id]);
        assert.deepEqual([...(await store.automations.onlineDevices([], 2000))], []);
      }));
  });
}
