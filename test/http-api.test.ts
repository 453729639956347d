import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import SwaggerParser from '@apidevtools/swagger-parser';
import Ajv2020Module from 'ajv/dist/2020.js';
import { makeDevice, runCli, startTestServer, tempDir, TestClient } from './helpers.js';
import type { TestServer } from './helpers.js';

// ajv is CommonJS: under ESM its class is the default export's `default`.
const Ajv2020 = ((Ajv2020Module as unknown as { default?: unknown }).default ?? Ajv2020Module) as unknown as typeof Ajv2020Module.default;

let server: TestServer;
let api: string;
before(async () => {
  server = await startTestServer();
  api = `${server.url}/api/v1`;
});
after(() => server.stop());

interface Answer {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

async function call(method: string, path: string, opts: { headers?: Record<string, string>; body?: unknown; raw?: string; base?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${opts.base ?? api}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A user with an API token, made through the API itself. */
async function signUp(): Promise<{ token: string; userId: number; email: string }> {
  const email = `app-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`;
  const res = await call('POST', '/auth/signup', { body: { name: 'App Dev', email, password: 'correct horse battery' } });
  assert.equal(res.status, 201, res.text);
  return { token: res.body.token, userId: res.body.user.id, email };
}

function assertError(res: Answer, status: number, code: string): void {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${res.text}`);
  assert.equal(res.body?.error, code, res.text);
  assert.equal(typeof res.body?.message, 'string');
  assert.ok(res.body.message.length > 0);
}

describe('device side', () => {
  test('the one-line update stores numbers as numbers and reaches a WebSocket client', async () => {
    const d = await makeDevice(server);
    const client = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    const res = await call('GET', `/update?device=${d.id}&key=${d.key}&temp=21.5&hum=40&state=open&on=true`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.ok, true);
    assert.equal(res.body.count, 4);
    assert.equal(typeof res.body.time, 'number');
    const got = new Map<string, unknown>();
    for (let i = 0; i < 4; i++) {
      const r = await client.reading();
      assert.equal(r.write, 'device');
      got.set(r.sensor, r.value);
    }
    assert.deepEqual(Object.fromEntries(got), { temp: 21.5, hum: 40, state: 'open', on: true });
    await client.close();
  });

  test('the one-line update refuses a wrong key, no sensors, and an over-long sensor name', async () => {
    const d = await makeDevice(server);
    assertError(await call('GET', `/update?device=${d.id}&key=WRONGWRONGWRONG&temp=1`), 401, 'E_AUTH');
    assertError(await call('GET', `/update?device=${d.id}&temp=1`), 401, 'E_AUTH');
    assertError(await call('GET', `/update?device=${d.id}&key=${d.key}`), 400, 'E_VALIDATION');
    assertError(await call('GET', `/update?device=${d.id}&key=${d.key}&${'s'.repeat(65)}=1`), 400, 'E_VALIDATION');
    assert.equal(await server.hub.relay.gets(d.id, 'temp'), null, 'nothing was stored by refused requests');
  });

  test('POST readings with X-Device-Key writes one reading or a batch, acknowledged after commit', async () => {
    const d = await makeDevice(server);
    const one = await call('POST', `/devices/${d.id}/readings`, { headers: { 'x-device-key': d.key }, body: { sensor: 'temp', value: 20.25 } });
    assert.equal(one.status, 201, one.text);
    assert.deepEqual([one.body.ok, one.body.count], [true, 1]);
    const stored = await server.hub.relay.gets(d.id, 'temp');
    assert.equal(stored?.value, 20.25, 'stored once acknowledged');
    const batch = await call('POST', `/devices/${d.id}/readings`, {
      headers: { 'x-device-key': d.key },
      body: [{ sensor: 'a', value: { nested: [1, 2] } }, { sensor: 'b', value: null }, { sensor: 'c', value: 'text' }],
    });
    assert.equal(batch.status, 201, batch.text);
    assert.equal(batch.body.count, 3);
    assert.deepEqual((await server.hub.relay.gets(d.id, 'a'))?.value, { nested: [1, 2] });
    // curl -d sends a form content type; the body is still read as JSON.
    const form = await call('POST', `/devices/${d.id}/readings?key=${d.key}`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, raw: '{"sensor":"f","value":7}' });
    assert.equal(form.status, 201, form.text);
    assert.equal((await server.hub.relay.gets(d.id, 'f'))?.value, 7);
  });

  test('side=client lets an app holding the key write to the device; the device polls it from latest', async () => {
    const d = await makeDevice(server);
    const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    const res = await call('POST', `/devices/${d.id}/readings?side=client`, { headers: { 'x-device-key': d.key }, body: { sensor: 'relay', value: 'on' } });
    assert.equal(res.status, 201, res.text);
    const got = await device.reading();
    assert.deepEqual([got.sensor, got.value, got.write], ['relay', 'on', 'client']);
    const viaHeader = await call('POST', `/devices/${d.id}/readings`, { headers: { 'x-device-key': d.key, 'x-device-side': 'client' }, body: { sensor: 'led', value: 3 } });
    assert.equal(viaHeader.status, 201);
    assert.equal((await device.reading()).write, 'client');
    await device.close();

    // The device's own readings are not its commands: latest shows only what the other side wrote.
    await call('POST', `/devices/${d.id}/readings`, { headers: { 'x-device-key': d.key }, body: { sensor: 'temp', value: 19 } });
    const latest = await call('GET', `/devices/${d.id}/latest`, { headers: { 'x-device-key': d.key } });
    assert.equal(latest.status, 200, latest.text);
    assert.deepEqual(latest.body.values, { led: 3, relay: 'on' });
    assert.ok(latest.body.readings.every((r: any) => r.write === 'client'));
    const since = latest.body.readings.find((r: any) => r.sensor === 'led').time;
    const newer = await call('GET', `/devices/${d.id}/latest?key=${d.key}&since=${since}`);
    assert.deepEqual(newer.body.readings, []);
    const one = await call('GET', `/devices/${d.id}/latest?key=${d.key}&sensor=relay`);
    assert.deepEqual(Object.keys(one.body.values), ['relay']);
    const asClient = await call('GET', `/devices/${d.id}/latest?key=${d.key}&side=client`);
    assert.deepEqual(asClient.body.values, { temp: 19 });
  });

  test('a key opens only its own device', async () => {
    const a = await makeDevice(server);
    const b = await makeDevice(server);
    assertError(await call('POST', `/devices/${b.id}/readings`, { headers: { 'x-device-key': a.key }, body: { sensor: 't', value: 1 } }), 401, 'E_AUTH');
    assertError(await call('GET', `/devices/${b.id}/latest?device=${a.id}&key=${a.key}`), 403, 'E_FORBIDDEN');
    assertError(await call('GET', `/devices/${b.id}/sensors/t/history`, { headers: { 'x-device-key': a.key } }), 401, 'E_AUTH');
    assertError(await call('GET', `/devices/${a.id}/latest?side=both`, { headers: { 'x-device-key': a.key } }), 400, 'E_VALIDATION');
    assert.equal(await server.hub.relay.gets(b.id, 't'), null);
  });

  test('bad bodies: malformed JSON, wrong shape, too large, too many readings', async () => {
    const d = await makeDevice(server);
    const h = { 'x-device-key': d.key };
    assertError(await call('POST', `/devices/${d.id}/readings`, { headers: { ...h, 'content-type': 'application/json' }, raw: '{"sensor":' }), 400, 'E_BAD_MESSAGE');
    assertError(await call('POST', `/devices/${d.id}/readings`, { headers: h, body: { sensor: 'x' } }), 400, 'E_VALIDATION');
    assertError(await call('POST', `/devices/${d.id}/readings`, { headers: h, body: [] }), 400, 'E_VALIDATION');
    assertError(await call('POST', `/devices/${d.id}/readings`, { headers: h, body: Array.from({ length: 501 }, (_, i) => ({ sensor: `s${i}`, value: i })) }), 400, 'E_VALIDATION');
    const big = await call('POST', `/devices/${d.id}/readings`, { headers: h, body: { sensor: 'x', value: 'y'.repeat(70_000) } });
    assertError(big, 413, 'E_TOO_LARGE');
    assert.match(big.body.message, /65536/);
    assertError(await call('GET', '/no/such/route'), 404, 'E_NOT_FOUND');
    assert.equal(await server.hub.relay.gets(d.id, 'x'), null);
  });

  test('history as JSON and CSV, with from, to and limit', async () => {
    const d = await makeDevice(server);
    const h = { 'x-device-key': d.key };
    const times: number[] = [];
    for (const v of [1, 2, 3, 'a,"quoted" value']) {
      const res = await call('POST', `/devices/${d.id}/readings`, { headers: h, body: { sensor: 'temp', value: v } });
      times.push(res.body.time);
      await new Promise((r) => setTimeout(r, 3));
    }
    const all = await call('GET', `/devices/${d.id}/sensors/temp/history`, { headers: h });
    assert.equal(all.status, 200, all.text);
    assert.deepEqual(all.body.readings.map((r: any) => r.value), [1, 2, 3, 'a,"quoted" value']);
    const limited = await call('GET', `/devices/${d.id}/sensors/temp/history?limit=2`, { headers: h });
    assert.deepEqual(limited.body.readings.map((r: any) => r.value), [3, 'a,"quoted" value']);
    const window = await call('GET', `/devices/${d.id}/sensors/temp/history?from=${times[1]}&to=${new Date(times[2]).toISOString()}`, { headers: h });
    assert.deepEqual(window.body.readings.map((r: any) => r.value), [2, 3]);
    const csv = await call('GET', `/devices/${d.id}/sensors/temp/history?format=csv`, { headers: h });
    assert.equal(csv.status, 200);
    assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/);
    const lines = csv.text.trim().split('\r\n');
    assert.equal(lines[0], 'time,time_ms,sensor,value,write');
    assert.equal(lines.length, 5);
    assert.ok(lines[4].endsWith(',temp,"a,""quoted"" value",device'), lines[4]);
    const accept = await call('GET', `/devices/${d.id}/sensors/temp/history`, { headers: { ...h, accept: 'text/csv' } });
    assert.match(accept.headers.get('content-type') ?? '', /^text\/csv/);
    assertError(await call('GET', `/devices/${d.id}/sensors/temp/history?from=yesterday`, { headers: h }), 400, 'E_VALIDATION');
    assertError(await call('GET', `/devices/${d.id}/sensors/temp/history?limit=0`, { headers: h }), 400, 'E_VALIDATION');
  });
});

describe('account side', () => {
  test('sign-up, log-in, tokens: create, list, revoke; a revoked or made-up token is refused', async () => {
    const u = await signUp();
    assert.match(u.token, /^iotc_[A-Za-z0-9]{32}$/);
    assertError(await call('POST', '/auth/signup', { body: { name: 'Again', email: u.email, password: 'correct horse battery' } }), 409, 'E_CONFLICT');
    assertError(await call('POST', '/auth/signup', { body: { name: 'X', email: 'not-an-email', password: 'correct horse battery' } }), 400, 'E_VALIDATION');
    assertError(await call('POST', '/auth/login', { body: { email: u.email, password: 'wrong password' } }), 401, 'E_AUTH');
    const login = await call('POST', '/auth/login', { body: { email: u.email.toUpperCase(), password: 'correct horse battery', tokenName: 'laptop' } });
    assert.equal(login.status, 200, login.text);
    assert.equal(login.body.user.email, u.email);

    const created = await call('POST', '/tokens', { headers: bearer(login.body.token), body: { name: 'ci script' } });
    assert.equal(created.status, 201, created.text);
    const list = await call('GET', '/tokens', { headers: bearer(u.token) });
    assert.deepEqual(list.body.tokens.map((t: any) => t.name).sort(), ['ci script', 'laptop', 'sign-up']);
    assert.ok(!list.text.includes(created.body.token), 'token text is never listed');
    assert.ok(list.body.tokens.find((t: any) => t.name === 'sign-up').lastUsed > 0, 'use is recorded');

    assert.equal((await call('DELETE', `/tokens/${created.body.id}`, { headers: bearer(u.token) })).status, 204);
    assertError(await call('GET', '/devices', { headers: bearer(created.body.token) }), 401, 'E_AUTH');
    assertError(await call('DELETE', `/tokens/${created.body.id}`, { headers: bearer(u.token) }), 404, 'E_NOT_FOUND');
    assertError(await call('GET', '/devices', { headers: bearer('iotc_' + 'x'.repeat(32)) }), 401, 'E_AUTH');
    assertError(await call('GET', '/devices', { headers: { authorization: 'Basic abc' } }), 401, 'E_AUTH');
    assertError(await call('GET', '/devices'), 401, 'E_AUTH');
    // Another user cannot revoke this user's token.
    const other = await signUp();
    const mine = (await call('GET', '/tokens', { headers: bearer(u.token) })).body.tokens[0];
    assertError(await call('DELETE', `/tokens/${mine.id}`, { headers: bearer(other.token) }), 404, 'E_NOT_FOUND');
  });

  test('devices: create, list, get, rename, rotate (old key refused), delete; another user sees none of it', async () => {
    const u = await signUp();
    const other = await signUp();
    const made = await call('POST', '/devices', { headers: bearer(u.token), body: { name: 'Greenhouse' } });
    assert.equal(made.status, 201, made.text);
    assert.match(made.body.id, /^[A-Z0-9]{20}$/);
    assert.match(made.body.key, /^[A-Z0-9]{15}$/);
    const list = await call('GET', '/devices', { headers: bearer(u.token) });
    assert.deepEqual(list.body.devices.map((d: any) => d.id), [made.body.id]);
    assert.ok(!('key' in list.body.devices[0]));
    const renamed = await call('PATCH', `/devices/${made.body.id}`, { headers: bearer(u.token), body: { name: 'Greenhouse 2' } });
    assert.equal(renamed.body.name, 'Greenhouse 2');
    assert.equal((await call('GET', `/devices/${made.body.id}`, { headers: bearer(u.token) })).body.name, 'Greenhouse 2');

    assertError(await call('GET', `/devices/${made.body.id}`, { headers: bearer(other.token) }), 404, 'E_NOT_FOUND');
    assertError(await call('POST', `/devices/${made.body.id}/readings`, { headers: bearer(other.token), body: { sensor: 'x', value: 1 } }), 404, 'E_NOT_FOUND');
    assertError(await call('POST', `/devices/${made.body.id}/rotate`, { headers: bearer(other.token) }), 404, 'E_NOT_FOUND');
    assertError(await call('DELETE', `/devices/${made.body.id}`, { headers: bearer(other.token) }), 404, 'E_NOT_FOUND');
    assertError(await call('POST', '/devices', { headers: bearer(u.token), body: { name: '' } }), 400, 'E_VALIDATION');

    const ws = await TestClient.connect(server.wsUrl, made.body.id, made.body.key, 'device');
    const rotated = await call('POST', `/devices/${made.body.id}/rotate`, { headers: bearer(u.token) });
    assert.equal(rotated.status, 200);
    assert.notEqual(rotated.body.key, made.body.key);
    assert.equal((await ws.closed).code, 4401, 'the WebSocket with the old key is closed');
    assertError(await call('GET', `/update?device=${made.body.id}&key=${made.body.key}&t=1`), 401, 'E_AUTH');
    assert.equal((await call('GET', `/update?device=${made.body.id}&key=${rotated.body.key}&t=1`)).status, 200);

    assert.equal((await call('DELETE', `/devices/${made.body.id}`, { headers: bearer(u.token) })).status, 204);
    assertError(await call('GET', `/devices/${made.body.id}`, { headers: bearer(u.token) }), 404, 'E_NOT_FOUND');
    assertError(await call('GET', `/update?device=${made.body.id}&key=${rotated.body.key}&t=1`), 401, 'E_AUTH');
  });

  test('a token write is the client side: delivered live to the device, kept for it when offline', async () => {
    const u = await signUp();
    const made = (await call('POST', '/devices', { headers: bearer(u.token), body: { name: 'Lamp' } })).body;
    const device = await TestClient.connect(server.wsUrl, made.id, made.key, 'device');
    const res = await call('POST', `/devices/${made.id}/readings`, { headers: bearer(u.token), body: { sensor: 'switch', value: true } });
    assert.equal(res.status, 201, res.text);
    const live = await device.reading();
    assert.deepEqual([live.sensor, live.value, live.write], ['switch', true, 'client']);
    await device.close();
    await new Promise((r) => setTimeout(r, 50));
    await call('POST', `/devices/${made.id}/readings`, { headers: bearer(u.token), body: { sensor: 'switch', value: false } });
    const back = await TestClient.connect(server.wsUrl, made.id, made.key, 'device');
    const synced = await back.reading();
    assert.deepEqual([synced.sensor, synced.value, synced.sync], ['switch', false, true]);
    await back.close();
    // The token's "latest" is what the device wrote; "sensors" is everything.
    await call('GET', `/update?device=${made.id}&key=${made.key}&temp=22`);
    const latest = await call('GET', `/devices/${made.id}/latest`, { headers: bearer(u.token) });
    assert.deepEqual(latest.body.values, { temp: 22 });
    const sensors = await call('GET', `/devices/${made.id}/sensors`, { headers: bearer(u.token) });
    assert.deepEqual(sensors.body.sensors.map((r: any) => r.sensor), ['switch', 'temp']);
  });

  test('CLI: iotc token add, list, revoke', async () => {
    const tmp = tempDir();
    try {
      const env = { IOTC_DATA_DIR: tmp.dir };
      assert.equal((await runCli(['user', 'add', '--email', 'cli@example.com', '--name', 'Cli', '--password', 'correct horse'], { env })).code, 0);
      const add = await runCli(['token', 'add', '--email', 'cli@example.com', '--name', 'backup job', '--json'], { env });
      assert.equal(add.code, 0, add.stderr);
      const t = JSON.parse(add.stdout);
      assert.match(t.token, /^iotc_/);
      const list = await runCli(['token', 'list', '--email', 'cli@example.com', '--json'], { env });
      assert.deepEqual(JSON.parse(list.stdout).map((x: any) => x.name), ['backup job']);
      assert.ok(!list.stdout.includes(t.token));
      const revoke = await runCli(['token', 'revoke', '--email', 'cli@example.com', String(t.id)], { env });
      assert.equal(revoke.code, 0, revoke.stderr);
      assert.equal((await runCli(['token', 'list', '--email', 'cli@example.com'], { env })).stdout.trim(), 'no tokens');
      const again = await runCli(['token', 'revoke', '--email', 'cli@example.com', String(t.id)], { env });
      assert.equal(again.code, 1);
      assert.match(again.stderr, /No such token/);
    } finally {
      tmp.cleanup();
    }
  });
});

test('browser apps on other origins may call the API: preflight and CORS header', async () => {
  const pre = await fetch(`${api}/devices`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), '*');
  assert.match(pre.headers.get('access-control-allow-headers') ?? '', /Authorization/);
  const res = await call('GET', '/devices', { headers: { origin: 'https://app.example' } });
  assert.equal(res.status, 401);
  assert.equal(res.headers.get('access-control-allow-origin'), '*', 'errors carry it too, so the app can read them');
});

test('rate limits per key and per token answer 429 with Retry-After; others are unaffected', async () => {
  const limited = await startTestServer({ apiRateLimit: 1, apiRateBurst: 3 });
  try {
    const base = `${limited.url}/api/v1`;
    const a = await makeDevice(limited);
    const b = await makeDevice(limited);
    const statuses: number[] = [];
    let last: Answer | null = null;
    for (let i = 0; i < 5; i++) {
      last = await call('GET', `/update?device=${a.id}&key=${a.key}&n=${i}`, { base });
      statuses.push(last.status);
    }
    assert.deepEqual(statuses.slice(0, 3), [200, 200, 200]);
    assert.equal(statuses[4], 429);
    assertError(last!, 429, 'E_RATE_LIMITED');
    assert.ok(Number(last!.headers.get('retry-after')) >= 1);
    assert.equal((await call('GET', `/update?device=${b.id}&key=${b.key}&n=1`, { base })).status, 200, 'another key has its own bucket');

    const tok = await limited.hub.tokens.create(a.userId, 'script');
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await call('GET', '/devices', { base, headers: bearer(tok.token) })).status);
    assert.equal(codes[4], 429);
  } finally {
    await limited.stop();
  }
});

describe('OpenAPI document', () => {
  test('is a valid OpenAPI 3.1 document, served at /api/openapi.json', async () => {
    const res = await call('GET', '/api/openapi.json', { base: server.url });
    assert.equal(res.status, 200);
    assert.equal(res.body.openapi, '3.1.0');
    await SwaggerParser.validate(structuredClone(res.body));
  });

  test('every documented operation answers as documented', async () => {
    const doc = (await call('GET', '/api/openapi.json', { base: server.url })).body;
    const deref: any = await SwaggerParser.dereference(structuredClone(doc));
    const ajv = new Ajv2020({ strict: false, validateFormats: false });

    const u = await signUp();
    const d = await makeDevice(server);
    const mine = (await call('POST', '/devices', { headers: bearer(u.token), body: { name: 'Doc device' } })).body;
    const doomed = (await call('POST', '/devices', { headers: bearer(u.token), body: { name: 'To delete' } })).body;
    const spare = (await call('POST', '/tokens', { headers: bearer(u.token), body: { name: 'spare' } })).body;
    await call('GET', `/update?device=${mine.id}&key=${mine.key}&temp=20`);
    const key = { 'x-device-key': d.key };
    const tok = bearer(u.token);
    const ownerOfD = bearer((await server.hub.tokens.create(d.userId, 'doc')).token);
    const persistentCall = async () => (await call('POST', `/devices/${d.id}/calls`, { headers: ownerOfD, body: { method: 'setup', persistent: true } })).body.call;
    const [toRead, toAnswer] = [await persistentCall(), await persistentCall()];
    const email = `doc-${Date.now()}@example.com`;
    const ruleBody = { name: 'hot', trigger: { type: 'threshold', sensor: 'temp', op: '>', value: 30, forMs: '1m' }, actions: [{ type: 'notify' }] };
    const rule = (await call('POST', `/devices/${mine.id}/rules`, { headers: tok, body: ruleBody })).body;
    const doomedRule = (await call('POST', `/devices/${mine.id}/rules`, { headers: tok, body: ruleBody })).body;
    const alert = await server.hub.store.automations.raiseAlert({ ruleId: rule.id, deviceId: mine.id, userId: rule.userId, detail: { sensor: 'temp', value: 31 }, at: Date.now(), cooldownMs: 0 });
    const frame = (await call('PUT', `/devices/${d.id}/blobs/cam`, { headers: { ...key, 'content-type': 'image/jpeg' }, raw: 'JPEG bytes' })).body;
    const partner = await signUp();
    const neighbour = await signUp();
    await server.hub.sharing.share(u.userId, mine.id, { email: neighbour.email, role: 'viewer' });
    const linkToRevoke = await server.hub.sharing.createDeviceLink(u.userId, mine.id);
    const publicLink = await server.hub.sharing.createDeviceLink(u.userId, mine.id);
    const gauge = { id: 'g1', type: 'gauge', x: 0, y: 0, w: 4, h: 3, device: mine.id, sensor: 'temp', min: 0, max: 40, units: '°C' };
    const board = (await call('POST', '/dashboards', { headers: tok, body: { name: 'Board', widgets: [gauge] } })).body;
    const doomedBoard = (await call('POST', '/dashboards', { headers: tok, body: { name: 'Doomed' } })).body;

    // One good request per operation; the test fails if the document gains an operation not called here.
    const calls: Record<string, { method: string; path: string; headers?: Record<string, string>; body?: unknown; raw?: string }> = {
      updateOneLine: { method: 'GET', path: `/update?device=${d.id}&key=${d.key}&temp=21.5` },
      writeReadings: { method: 'POST', path: `/devices/${d.id}/readings`, headers: key, body: { sensor: 'temp', value: 1 } },
      latestFromOtherSide: { method: 'GET', path: `/devices/${mine.id}/latest`, headers: tok },
      listSensors: { method: 'GET', path: `/devices/${d.id}/sensors`, headers: key },
      sensorHistory: { method: 'GET', path: `/devices/${d.id}/sensors/temp/history?limit=5`, headers: key },
      callDevice: { method: 'POST', path: `/devices/${d.id}/calls`, headers: ownerOfD, body: { method: 'reboot', params: { delay: 1 }, persistent: true } },
      nextCall: { method: 'GET', path: `/devices/${d.id}/calls/next?wait=0`, headers: key },
      getCall: { method: 'GET', path: `/devices/${d.id}/calls/${toRead}?wait=0`, headers: ownerOfD },
      replyToCall: { method: 'POST', path: `/devices/${d.id}/calls/${toAnswer}/reply`, headers: key, body: { result: { ok: true } } },
      listShares: { method: 'GET', path: `/devices/${mine.id}/shares`, headers: tok },
      shareDevice: { method: 'POST', path: `/devices/${mine.id}/shares`, headers: tok, body: { email: partner.email, role: 'operator' } },
      unshareDevice: { method: 'DELETE', path: `/devices/${mine.id}/shares/${encodeURIComponent(neighbour.email)}`, headers: tok },
      listPublicLinks: { method: 'GET', path: `/devices/${mine.id}/links`, headers: tok },
      createPublicLink: { method: 'POST', path: `/devices/${mine.id}/links`, headers: tok },
      revokePublicLink: { method: 'DELETE', path: `/devices/${mine.id}/links/${linkToRevoke.id}`, headers: tok },
      publicDevice: { method: 'GET', path: `/public/${publicLink.token}` },
      listDevices: { method: 'GET', path: '/devices', headers: tok },
      listDashboards: { method: 'GET', path: '/dashboards', headers: tok },
      createDashboard: { method: 'POST', path: '/dashboards', headers: tok, body: { name: 'New', widgets: [{ ...gauge, id: 'g2', x: 4 }] } },
      getDashboard: { method: 'GET', path: `/dashboards/${board.id}`, headers: tok },
      updateDashboard: { method: 'PUT', path: `/dashboards/${board.id}`, headers: tok, body: { widgets: [{ ...gauge, x: 8 }] } },
      deleteDashboard: { method: 'DELETE', path: `/dashboards/${doomedBoard.id}`, headers: tok },
      createDevice: { method: 'POST', path: '/devices', headers: tok, body: { name: 'Another' } },
      getDevice: { method: 'GET', path: `/devices/${mine.id}`, headers: tok },
      renameDevice: { method: 'PATCH', path: `/devices/${mine.id}`, headers: tok, body: { name: 'Renamed' } },
      deleteDevice: { method: 'DELETE', path: `/devices/${doomed.id}`, headers: tok },
      rotateDeviceKey: { method: 'POST', path: `/devices/${mine.id}/rotate`, headers: tok },
      listTokens: { method: 'GET', path: '/tokens', headers: tok },
      createToken: { method: 'POST', path: '/tokens', headers: tok, body: { name: 'another' } },
      revokeToken: { method: 'DELETE', path: `/tokens/${spare.id}`, headers: tok },
      signUp: { method: 'POST', path: '/auth/signup', body: { name: 'Doc', email, password: 'correct horse battery' } },
      logIn: { method: 'POST', path: '/auth/login', body: { email, password: 'correct horse battery' } },
      listRules: { method: 'GET', path: `/devices/${mine.id}/rules`, headers: tok },
      createRule: { method: 'POST', path: `/devices/${mine.id}/rules`, headers: tok, body: { trigger: { type: 'offline', forMs: '30s' }, actions: [{ type: 'set', sensor: 'lamp', value: 'off' }] } },
      getRule: { method: 'GET', path: `/rules/${rule.id}`, headers: tok },
      updateRule: { method: 'PATCH', path: `/rules/${rule.id}`, headers: tok, body: { enabled: false } },
      deleteRule: { method: 'DELETE', path: `/rules/${doomedRule.id}`, headers: tok },
      testRule: { method: 'POST', path: `/rules/${rule.id}/test`, headers: tok },
      listAlerts: { method: 'GET', path: `/devices/${mine.id}/alerts`, headers: tok },
      acknowledgeAlert: { method: 'POST', path: `/alerts/${alert!.id}/acknowledge`, headers: tok },
      listDeliveries: { method: 'GET', path: `/devices/${mine.id}/deliveries?limit=10`, headers: tok },
      listNotifications: { method: 'GET', path: '/notifications', headers: tok },
      putBlob: { method: 'PUT', path: `/devices/${d.id}/blobs/cam`, headers: { ...key, 'content-type': 'image/jpeg' }, raw: 'more JPEG bytes' },
      getBlob: { method: 'GET', path: `/devices/${d.id}/blobs/cam`, headers: key },
      blobHistory: { method: 'GET', path: `/devices/${d.id}/blobs/cam/history?limit=5`, headers: key },
      getBlobBySeq: { method: 'GET', path: `/devices/${d.id}/blobs/cam/${frame.seq}`, headers: key },
      listBlobs: { method: 'GET', path: `/devices/${d.id}/blobs`, headers: key },
    };

    const operations: { id: string; method: string; template: string; op: any }[] = [];
    for (const [template, item] of Object.entries<any>(deref.paths)) {
      for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
        if (item[method]) operations.push({ id: item[method].operationId, method: method.toUpperCase(), template, op: item[method] });
      }
    }
    assert.deepEqual(operations.map((o) => o.id).sort(), Object.keys(calls).sort(), 'the test calls exactly the documented operations');

    for (const { id, method, template, op } of operations) {
      const c = calls[id];
      assert.equal(c.method, method, `${id} method`);
      const pattern = new RegExp('^' + template.replace(/\{[^}]+\}/g, '[^/?]+') + '(\\?|$)');
      assert.match(c.path, pattern, `${id} path matches ${template}`);
      const res = await call(c.method, c.path, { headers: c.headers, body: c.body, raw: c.raw });
      const documented = op.responses[String(res.status)];
      assert.ok(documented, `${id}: status ${res.status} is documented (${res.text.slice(0, 200)})`);
      assert.ok(res.status < 300, `${id}: succeeded (${res.status} ${res.text.slice(0, 200)})`);
      const schema = documented.content?.['application/json']?.schema;
      if (schema) {
        const validate = ajv.compile(schema);
        assert.ok(validate(res.body), `${id}: body matches the documented schema: ${ajv.errorsText(validate.errors)} in ${res.text.slice(0, 300)}`);
      } else if (!documented.content) {
        assert.equal(res.text, '', `${id}: no body documented, none sent`);
      }

      // Without credentials, a secured operation answers the documented 401 in the documented error form.
      const secured = op.security === undefined ? deref.security?.length > 0 : op.security.length > 0;
      if (secured) {
        const bare = await call(c.method, c.path.replace(/([?&])key=[^&]*/, '$1key=WRONG'), { body: c.body });
        assert.equal(bare.status, 401, `${id} without credentials: ${bare.text}`);
        const errSchema = op.responses['401']?.content?.['application/json']?.schema;
        assert.ok(errSchema, `${id}: 401 is documented`);
        assert.ok(ajv.validate(errSchema, bare.body), `${id}: 401 body matches the Error schema`);
      }
    }
  });
});
