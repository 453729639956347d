/** The rules API: owner only, validated before anything is stored, limits with E_LIMIT, the full cycle over HTTP. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startReceiver } from './automation-helpers.js';
import type { Receiver } from './automation-helpers.js';
import { makeDevice, startTestServer, waitFor } from './helpers.js';
import type { TestServer } from './helpers.js';

let server: TestServer;
let hook: Receiver;
before(async () => {
  hook = await startReceiver();
  server = await startTestServer({ rulesTick: 50, webhookAllowPrivate: true, rulesPerDevice: 3 });
});
after(async () => {
  await server.stop();
  await hook.close();
});

async function owner() {
  const d = await makeDevice(server);
  const t = await server.hub.tokens.create(d.userId, 'rules');
  return { ...d, headers: { authorization: `Bearer ${t.token}` } };
}

async function api(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}/api/v1${path}`, {
    method, headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

test('create, list, edit, disable, test-fire, alerts, acknowledge, delivery log, delete: over HTTP', async () => {
  const me = await owner();
  const created = await api('POST', `/devices/${me.id}/rules`, me.headers, {
    name: 'too hot', trigger: { type: 'threshold', sensor: 'temp', op: '>', value: 30 }, actions: [{ type: 'webhook', url: hook.url }],
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const rule = created.body;
  assert.deepEqual((await api('GET', `/devices/${me.id}/rules`, me.headers)).body.rules.map((r: { id: string }) => r.id), [rule.id]);

  await api('POST', `/devices/${me.id}/readings`, me.headers, { sensor: 'temp', value: 35 });
  const [fired] = await hook.waitForHooks(1);
  assert.equal(fired.body.rule, rule.id);
  assert.equal(fired.body.value, 35);
  assert.ok(fired.signed(rule.secret));

  const alerts = (await api('GET', `/devices/${me.id}/alerts`, me.headers)).body.alerts;
  assert.deepEqual(alerts.map((a: { state: string }) => a.state), ['active']);
  assert.equal((await api('POST', `/alerts/${alerts[0].id}/acknowledge`, me.headers)).status, 204);
  assert.equal((await api('POST', `/alerts/${alerts[0].id}/acknowledge`, me.headers)).status, 404, 'once');
  assert.equal((await api('GET', `/devices/${me.id}/alerts`, me.headers)).body.alerts[0].state, 'acknowledged');

  const off = await api('PATCH', `/rules/${rule.id}`, me.headers, { enabled: false });
  assert.equal(off.status, 200);
  assert.equal(off.body.enabled, false);
  assert.equal(off.body.name, 'too hot', 'other fields kept');
  const tried = await api('POST', `/rules/${rule.id}/test`, me.headers);
  assert.deepEqual(tried, { status: 200, body: { error: null } });
  const hooks = await hook.waitForHooks(2);
  assert.equal(hooks[1].body.test, true);
  const log = await waitFor(async () => {
    const l = (await api('GET', `/devices/${me.id}/deliveries`, me.headers)).body.deliveries;
    return l.length === 2 && l.every((x: { state: string }) => x.state === 'delivered') ? l : null;
  });
  assert.deepEqual(log!.map((x: { lastStatus: number }) => x.lastStatus), [200, 200]);

  assert.equal((await api('DELETE', `/rules/${rule.id}`, me.headers)).status, 204);
  assert.equal((await api('GET', `/rules/${rule.id}`, me.headers)).status, 404);
});

test('another account\'s device and rules are "not found"; bad rules are 400 with the field named; limits are 403 E_LIMIT', async () => {
  const me = await owner();
  const other = await owner();
  const body = { trigger: { type: 'online' }, actions: [{ type: 'notify' }] };
  const rule = (await api('POST', `/devices/${me.id}/rules`, me.headers, body)).body;
  for (const [method, path] of [['GET', `/devices/${me.id}/rules`], ['POST', `/devices/${me.id}/rules`], ['GET', `/rules/${rule.id}`], ['PATCH', `/rules/${rule.id}`], ['DELETE', `/rules/${rule.id}`], ['POST', `/rules/${rule.id}/test`], ['GET', `/devices/${me.id}/alerts`], ['GET', `/devices/${me.id}/deliveries`]]) {
    const r = await api(method, path, other.headers, method === 'GET' || method === 'DELETE' || path.endsWith('/test') ? undefined : body);
    assert.equal(r.status, 404, `${method} ${path}`);
    assert.equal(r.body.error, 'E_NOT_FOUND');
  }
  assert.equal((await api('GET', `/rules/${rule.id}`, me.headers)).status, 200, 'still there');

  const bad = await api('POST', `/devices/${me.id}/rules`, me.headers, { trigger: { type: 'threshold', sensor: 'temp', op: '~', value: 1 }, actions: [{ type: 'webhook', url: 'not a url' }] });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error, 'E_VALIDATION');
  assert.match(bad.body.message, /trigger\.op/);
  assert.match(bad.body.message, /actions\.0\.url/);
  // A body sent as a form (what curl -d sends) is read as JSON text, as on every other route: an integer that
  // would be rounded is refused, and no body at all is said to be missing.
  const asForm = async (text: string) => {
    const res = await fetch(`${server.url}/api/v1/devices/${me.id}/rules`, { method: 'POST', headers: { ...me.headers, 'content-type': 'application/x-www-form-urlencoded' }, body: text });
    return { status: res.status, body: await res.json() };
  };
  const big = await asForm('{"trigger":{"type":"threshold","sensor":"temp","op":">","value":12345678901234567890},"actions":[{"type":"notify"}]}');
  assert.deepEqual([big.status, big.body.error], [400, 'E_VALIDATION']);
  const none = await asForm('');
  assert.deepEqual([none.status, none.body.error, none.body.message], [400, 'E_VALIDATION', 'A JSON body is required']);

  await api('POST', `/devices/${me.id}/rules`, me.headers, body);
  await api('POST', `/devices/${me.id}/rules`, me.headers, body);
  const over = await api('POST', `/devices/${me.id}/rules`, me.headers, body);
  assert.equal(over.status, 403);
  assert.equal(over.body.error, 'E_LIMIT');
  assert.match(over.body.message, /--rules-per-device 3/);
});

test('a parallel burst of rule creations makes exactly the cap per device; the rest get E_LIMIT', async () => {
  const me = await owner();
  const rule = (i: number) => ({ name: `r${i}`, trigger: { type: 'threshold', sensor: 'temp', op: '>', value: i }, actions: [{ type: 'notify' }] });
  const all = await Promise.all(Array.from({ length: 12 }, (_, i) => api('POST', `/devices/${me.id}/rules`, me.headers, rule(i))));
  assert.equal(all.filter((r) => r.status === 201).length, 3, JSON.stringify(all.map((r) => r.status)));
  for (const r of all.filter((x) => x.status !== 201)) {
    assert.equal(r.status, 403);
    assert.equal(r.body.error, 'E_LIMIT');
  }
  assert.equal((await api('GET', `/devices/${me.id}/rules`, me.headers)).body.rules.length, 3);
});
