/**
 * The first hour's traps on the web side, in process against real servers: a reload never repeats a form (the new
 * key is shown once, never made again), and the docs page's MQTT example points where the hub really listens —
 * checked by running the very command the page shows against the hub.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config.js';
import { hashSecret } from '../src/core/secrets.js';
import { createLogger } from '../src/log.js';
import { WebSessions } from '../src/web/session.js';
import { startServer } from '../src/server.js';
import { freePort, ROOT, runProcess, startTestServer, tempDir, waitFor } from './helpers.js';
import type { TestServer } from './helpers.js';
import { mosquittoAvailable } from './mqtt-clients.js';
import { cookieValue, PASSWORD as PASSWORD_USED, setCookies, webClient } from './web-inject.js';
import type { Res, WebUser } from './web-inject.js';

let server: TestServer;
let web: ReturnType<typeof webClient>;
before(async () => {
  server = await startTestServer();
  web = webClient(server);
});
after(() => server.stop());

const KEY_IN_PAGE = /data-testid="device-key">([A-Z0-9]{15})</;

/** The page a form redirected to, fetched as the browser does: with the one-time cookie the redirect set, if any. */
function follow(res: Res, u: WebUser) {
  assert.equal(res.statusCode, 303, res.body.slice(0, 300));
  const stash = Object.entries(setCookies(res)).filter(([name]) => name === 'iotc_newkey' || name === 'iotc_newtoken');
  const cookie = [u.cookie, ...stash.map(([name, set]) => `${name}=${cookieValue(set)}`)].join('; ');
  return web.get(res.headers.location as string, { ip: u.ip, cookie });
}

async function devicesOf(u: WebUser) {
  const user = (await server.hub.store.getUserByEmail(u.email))!;
  return server.hub.accounts.listDevices(user.id);
}

describe('post/redirect/get: a reload never repeats a form', () => {
  test('a new device: the key is shown once; reloading shows no key and makes no second device', async () => {
    const u = await web.signUp();
    const created = await web.post('/devices/new', { _csrf: u.csrf, name: 'Greenhouse' }, u);
    assert.match(created.headers.location as string, /^\/devices\/[A-Z0-9]{20}\/key\?created$/);
    const shown = await follow(created, u);
    assert.equal(shown.statusCode, 200);
    const key = KEY_IN_PAGE.exec(shown.body)?.[1];
    assert.ok(key, 'the key is on the page');
    assert.match(shown.body, /“Greenhouse” is ready/);
    assert.match(setCookies(shown).iotc_newkey ?? '', /Max-Age=0/, 'the one-time cookie is cleared as it is read');
    const [device] = await devicesOf(u);
    assert.equal((await server.hub.store.getDevice(device.id))!.keyHash, hashSecret(key));

    // F5: the browser repeats the GET (the cookie is gone), never the POST.
    const reloaded = await web.get(created.headers.location as string, u);
    assert.equal(reloaded.statusCode, 200);
    assert.doesNotMatch(reloaded.body, new RegExp(key));
    assert.match(reloaded.body, /The key was shown once/);
    assert.equal((await devicesOf(u)).length, 1, 'no duplicate device');
  });

  test('a rotation: reloading the new-key page does not rotate again; a stale cookie never shows a replaced key', async () => {
    const u = await web.signUp();
    const first = KEY_IN_PAGE.exec((await follow(await web.post('/devices/new', { _csrf: u.csrf, name: 'Lamp' }, u), u)).body)![1];
    const [device] = await devicesOf(u);
    const rotated = await web.post(`/devices/${device.id}/rotate`, { _csrf: u.csrf }, u);
    assert.equal(rotated.headers.location, `/devices/${device.id}/key?rotated`);
    const staleCookie = setCookies(rotated).iotc_newkey;
    const second = KEY_IN_PAGE.exec((await follow(rotated, u)).body)![1];
    assert.notEqual(second, first);
    for (let i = 0; i < 2; i++) assert.equal((await web.get(`/devices/${device.id}/key?rotated`, u)).statusCode, 200);
    assert.equal((await server.hub.store.getDevice(device.id))!.keyHash, hashSecret(second), 'reloads rotated nothing');

    // Rotated again (say, in another tab): the first redirect's cookie, replayed, shows nothing.
    const third = KEY_IN_PAGE.exec((await follow(await web.post(`/devices/${device.id}/rotate`, { _csrf: u.csrf }, u), u)).body)![1];
    const replay = await web.get(`/devices/${device.id}/key?rotated`, { ip: u.ip, cookie: `${u.cookie}; iotc_newkey=${cookieValue(staleCookie)}` });
    assert.doesNotMatch(replay.body, new RegExp(`${second}|${third}`));
    assert.match(replay.body, /The key was shown once/);
  });

  test('the key never appears in a URL, and another user cannot open the page', async () => {
    const u = await web.signUp();
    const created = await web.post('/devices/new', { _csrf: u.csrf, name: 'Private' }, u);
    const key = KEY_IN_PAGE.exec((await follow(created, u)).body)![1];
    assert.doesNotMatch(String(created.headers.location), new RegExp(key));
    const page = await follow(await web.post('/devices/new', { _csrf: u.csrf, name: 'Other' }, u), u);
    assert.doesNotMatch(page.body, /href="[^"]*#key=/, 'the docs link carries no key');
    const other = await web.signUp('Other');
    const stolen = await web.get(created.headers.location as string, { ip: other.ip, cookie: `${other.cookie}; iotc_newkey=${key}` });
    assert.equal(stolen.statusCode, 404);
    assert.equal((await web.get(created.headers.location as string)).statusCode, 303, 'logged out: to the log-in page');
  });
});

/** The MQTT tab of the docs page as text, with the device key put where the page leaves its slot. */
function mqttExample(body: string, key: string): string {
  const code = /<code id="ex-mqtt">([\s\S]*?)<\/code>/.exec(body)![1];
  return code
    .replace(/<span class="key-slot"[^>]*>DEVICE_KEY<\/span>/g, key)
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>');
}

/** A command line from the example, split as the shell would (the examples quote with '…' only). */
function commandLine(example: string, program: string): string[] {
  const line = example.split('\n').find((l) => l.startsWith(`${program} `));
  assert.ok(line, `the example has a ${program} line:\n${example}`);
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]);
}

describe('the docs page shows the MQTT port in use', () => {
  async function deviceOn(s: { hub: TestServer['hub']; app: TestServer['app'] }) {
    const email = `mqtt-${Date.now()}-${Math.random()}@example.com`;
    const user = await s.hub.accounts.signUp({ name: 'M', email, password: 'correct horse battery' });
    const device = await s.hub.accounts.createDevice(user.id, 'Meter');
    const w = webClient(s as TestServer);
    const ip = '10.8.0.1';
    // Logged in as the log-in form would: a session of the user's, in its cookie.
    const { cookieValue: session } = await new WebSessions(s.hub.store, 60_000, s.hub.log).create(user.id);
    const cookie = `iotc_session=${session}`;
    const docs = await w.get(`/docs?device=${device.id}`, { ip, cookie });
    assert.equal(docs.statusCode, 200);
    return { device, body: docs.body };
  }

  test('with a TCP listener: its real port, and the mosquitto_pub line on the page reaches the hub', { skip: !mosquittoAvailable() && 'mosquitto-clients not installed' }, async () => {
    const port = await freePort();
    const s = await startTestServer({ mqttPort: port });
    try {
      const { device, body } = await deviceOn(s);
      assert.match(body, new RegExp(`data-mqtt-port="${port}"`));
      const example = mqttExample(body, device.key);
      const args = commandLine(example, 'mosquitto_pub');
      assert.deepEqual(args.slice(1, 5), ['-h', 'localhost', '-p', String(port)]);
      args[2] = '127.0.0.1'; // inject's Host is localhost:80; the hub listens on 127.0.0.1 here
      const run = await runProcess('mosquitto_pub', [...args.slice(1), '-q', '1'], { timeoutMs: 10_000 });
      assert.equal(run.code, 0, run.stderr);
      await waitFor(async () => (await s.hub.relay.sensors(device.id)).some((r) => r.sensor === 'temp' && r.value === 21.5), 5000, 'the reading in the hub');
    } finally {
      await s.stop();
    }
  });

  test('default port taken by another program: the page says so, never offers that port, and its WebSocket line works', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const taken = (holder.address() as net.AddressInfo).port;
    const dir = tempDir();
    // The MQTT port left at its default (not chosen by the user) and held by someone else: the hub starts without it.
    const config = loadConfig({}, {}, { port: 0, host: '127.0.0.1', logLevel: 'silent', dataDir: dir.dir });
    config.mqttPort = taken;
    const s = await startServer(config, createLogger('silent'));
    try {
      assert.equal(s.mqttPort, null);
      const { device, body } = await deviceOn(s as unknown as TestServer);
      assert.match(body, new RegExp(`port ${taken} was already taken by another program`));
      assert.match(body, new RegExp(`Anything answering on port ${taken} here is another broker, not this hub`));
      const example = mqttExample(body, device.key);
      assert.doesNotMatch(example, new RegExp(`-p ${taken}\\b|mosquitto_pub`));
      const args = commandLine(example, 'mqtt');
      assert.deepEqual(args.slice(1, 6), ['pub', '-l', 'ws', '-h', 'localhost']);
      args[5] = '127.0.0.1';
      args[7] = String(s.port); // inject's Host says port 80; the page uses the port the browser came in on
      const run = await runProcess(path.join(ROOT, 'node_modules/.bin/mqtt'), [...args.slice(1), '-q', '1'], { timeoutMs: 15_000 });
      assert.equal(run.code, 0, run.stderr);
      await waitFor(async () => (await s.hub.relay.sensors(device.id)).some((r) => r.sensor === 'temp' && r.value === 21.5), 5000, 'the reading in the hub');
    } finally {
      await s.close();
      holder.close();
      dir.cleanup();
    }
  });

  test('turned off on purpose: the page says it is off and shows MQTT over WebSocket', async () => {
    const { body } = await deviceOn(server);
    assert.match(body, /no MQTT TCP listener — it is turned off \(--mqtt-port 0\)/);
    assert.match(body, /data-mqtt-ws>ws:\/\/localhost:80\/mqtt</);
    assert.doesNotMatch(body, /-p 1883|mosquitto_pub/);
  });
});

describe('the device list', () => {
  test('apps connected are shown apart: they make the device neither online nor seen', async () => {
    const u = await web.signUp();
    const user = (await server.hub.store.getUserByEmail(u.email))!;
    const device = await server.hub.accounts.createDevice(user.id, 'Watched');
    const { TestClient } = await import('./helpers.js');
    const apps = [await TestClient.connect(server.wsUrl, device.id, device.key, 'client'), await TestClient.connect(server.wsUrl, device.id, device.key, 'client')];
    await server.hub.relay.presence.flush();
    const page = (await web.get('/devices', u)).body;
    assert.match(page, /data-apps>2 apps connected</);
    assert.match(page, /Never connected/);
    assert.match(page, /data-status-text>Offline</);
    const json = (await web.get('/devices.json', u, { accept: 'application/json' })).json();
    assert.deepEqual([json.devices[0].online, json.devices[0].lastSeen, json.devices[0].clients], [false, null, 2]);
    for (const a of apps) await a.close();
  });
});

describe('API token page', () => {
  const api = (url: string, token: string) => server.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });

  test('create (shown once, a reload makes no second), list with last use, revoke; CSRF required', async () => {
    const u = await web.signUp();
    assert.equal((await web.post('/tokens', { name: 'script' }, u)).statusCode, 403, 'no CSRF token');
    const empty = await web.post('/tokens', { _csrf: u.csrf, name: '  ' }, u);
    assert.equal(empty.statusCode, 400);
    assert.match(empty.body, /Name is required/);

    const created = await web.post('/tokens', { _csrf: u.csrf, name: 'backup script' }, u);
    assert.match(created.headers.location as string, /^\/tokens\?created=\d+$/);
    const shown = await follow(created, u);
    const token = /data-testid="new-token">(iotc_[A-Za-z0-9]{32})</.exec(shown.body)?.[1];
    assert.ok(token, 'the token is on the page once');
    assert.match(shown.body, /“backup script” is ready/);
    const reloaded = await web.get('/tokens', u);
    assert.doesNotMatch(reloaded.body, new RegExp(token));
    assert.equal((reloaded.body.match(/data-token="/g) ?? []).length, 1, 'one token, no duplicate');
    assert.match(reloaded.body, /data-last-used><span class="muted">never</);

    assert.equal((await api('/api/v1/devices', token)).statusCode, 200);
    const used = await web.get('/tokens', u);
    assert.doesNotMatch(used.body, /data-last-used><span class="muted">never</, 'last use shown');
    assert.match(used.body, /data-last-used><time datetime=/);

    const id = /data-token="(\d+)"/.exec(used.body)![1];
    const other = await web.signUp('Other');
    assert.equal((await web.post(`/tokens/${id}/revoke`, { _csrf: other.csrf }, other)).statusCode, 404, "another user's token");
    assert.equal((await api('/api/v1/devices', token)).statusCode, 200);
    assert.equal((await web.post(`/tokens/${id}/revoke`, {}, u)).statusCode, 403, 'no CSRF token');
    const revoked = await web.post(`/tokens/${id}/revoke`, { _csrf: u.csrf }, u);
    assert.equal(revoked.headers.location, '/tokens?revoked');
    assert.equal((await api('/api/v1/devices', token)).statusCode, 401);
    assert.doesNotMatch((await web.get('/tokens', u)).body, /data-token="/);
    // The one-time cookie replayed after revocation shows nothing.
    const replay = await web.get('/tokens', { ip: u.ip, cookie: `${u.cookie}; iotc_newtoken=${token}` });
    assert.doesNotMatch(replay.body, new RegExp(token));
  });
});

describe('account page', () => {
  test('rename: errors keep what was typed; the new name shows', async () => {
    const u = await web.signUp('Ada');
    assert.equal((await web.post('/account/name', { name: 'X' }, u)).statusCode, 403);
    const bad = await web.post('/account/name', { _csrf: u.csrf, name: 'x'.repeat(101) }, u);
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /at most 100 characters/);
    const ok = await web.post('/account/name', { _csrf: u.csrf, name: 'Ada Lovelace' }, u);
    assert.equal(ok.headers.location, '/account?renamed');
    assert.equal((await server.hub.store.getUserByEmail(u.email))!.name, 'Ada Lovelace');
    assert.match((await web.get('/account?renamed', u)).body, /Your name was saved/);
  });

  test('password change needs the current password, and ends the other logins only', async () => {
    const u = await web.signUp();
    // The same account logged in elsewhere, e.g. a phone.
    const phoneLogin = await server.hub.store.getUserByEmail(u.email);
    const sessions = new WebSessions(server.hub.store, 60_000, server.hub.log);
    const phone = await sessions.create(phoneLogin!.id);
    const phoneCookie = `iotc_session=${phone.cookieValue}`;
    assert.equal((await web.get('/devices', { ip: u.ip, cookie: phoneCookie })).statusCode, 200);

    const short = await web.post('/account/password', { _csrf: u.csrf, current: PASSWORD_USED, password: 'short' }, u);
    assert.equal(short.statusCode, 400);
    assert.match(short.body, /at least 8/);
    const wrong = await web.post('/account/password', { _csrf: u.csrf, current: 'not my password', password: 'a new long password' }, u);
    assert.equal(wrong.statusCode, 401);
    assert.match(wrong.body, /not your current password/);
    assert.doesNotMatch(wrong.body, /a new long password/, 'passwords are never sent back');
    const ok = await web.post('/account/password', { _csrf: u.csrf, current: PASSWORD_USED, password: 'a new long password' }, u);
    assert.equal(ok.headers.location, '/account?password');
    assert.ok(await server.hub.accounts.logIn(u.email, 'a new long password'));
    assert.equal(await server.hub.accounts.logIn(u.email, PASSWORD_USED), null);
    assert.equal((await web.get('/devices', u)).statusCode, 200, 'this browser stays logged in');
    assert.equal((await web.get('/devices', { ip: u.ip, cookie: phoneCookie })).statusCode, 303, 'the other login ended');
  });

  test('wrong passwords are limited per account', async () => {
    const u = await web.signUp();
    // They share the account's log-in limit (IOTC_LOGIN_FAILURES_PER_ACCOUNT, 10 by default): ten wrong, then refused.
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      statuses.push((await web.post('/account/password', { _csrf: u.csrf, current: `guess ${i}`, password: 'a new long password' }, u)).statusCode);
    }
    assert.deepEqual(statuses, [...Array(10).fill(401), 429]);
  });

  test('delete: typed confirmation and password; then the account, its devices, readings and tokens are gone', async () => {
    const u = await web.signUp();
    const user = (await server.hub.store.getUserByEmail(u.email))!;
    const device = await server.hub.accounts.createDevice(user.id, 'Doomed');
    const { token } = await server.hub.tokens.create(user.id, 'script');
    const { TestClient } = await import('./helpers.js');
    const connected = await TestClient.connect(server.wsUrl, device.id, device.key, 'device');
    assert.equal((await connected.request({ method: 'put', status: { sensor: 'temp', value: 1 }, id: 1 })).ok, true);

    const page = await web.get('/account/delete', u);
    assert.match(page.body, /Delete your account\?/);
    const noConfirm = await web.post('/account/delete', { _csrf: u.csrf, confirm: 'delete', password: PASSWORD_USED }, u);
    assert.equal(noConfirm.statusCode, 400);
    assert.match(noConfirm.body, /Type DELETE/);
    const wrong = await web.post('/account/delete', { _csrf: u.csrf, confirm: 'DELETE', password: 'nope nope nope' }, u);
    assert.equal(wrong.statusCode, 401);
    assert.equal((await web.post('/account/delete', { confirm: 'DELETE', password: PASSWORD_USED }, u)).statusCode, 403, 'no CSRF token');
    assert.ok(await server.hub.store.getUser(user.id), 'nothing deleted yet');

    const ok = await web.post('/account/delete', { _csrf: u.csrf, confirm: 'DELETE', password: PASSWORD_USED }, u);
    assert.equal(ok.headers.location, '/account/deleted');
    assert.match(setCookies(ok).iotc_session ?? '', /Max-Age=0/);
    assert.equal((await connected.closed).code, 4404, "the device's connection is closed");
    assert.equal(await server.hub.store.getUser(user.id), null);
    assert.equal(await server.hub.store.getDevice(device.id), null);
    assert.deepEqual(await server.hub.store.latestAll(device.id), []);
    assert.equal((await server.app.inject({ method: 'GET', url: '/api/v1/devices', headers: { authorization: `Bearer ${token}` } })).statusCode, 401);
    assert.equal((await web.get('/devices', u)).statusCode, 303, 'logged out');
    assert.match((await web.get('/account/deleted')).body, /Your account was deleted/);
  });
});
