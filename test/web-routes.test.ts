/** Every web route and its errors, in process (fastify inject) against a real server and SQLite file. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { hashSecret } from '../src/core/secrets.js';
import { escapeHtml, html, raw } from '../src/web/html.js';
import { KeyedLimiter } from '../src/web/limits.js';
import { parseCookies } from '../src/web/session.js';
import { startTestServer, TestClient } from './helpers.js';
import type { TestServer } from './helpers.js';
import { cookieValue, csrfIn, freshEmail, freshIp, PASSWORD, setCookies, webClient } from './web-inject.js';
import type { Res, WebUser } from './web-inject.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.stop());

type Browser = WebUser;
/** The server is started in before(), after this module's top level ran. */
const web = () => webClient(server);
const post: ReturnType<typeof webClient>['post'] = (...args) => web().post(...args);
const get: ReturnType<typeof webClient>['get'] = (...args) => web().get(...args);
const signUp = (name = 'Web User') => web().signUp(name);

/** A logged-out visitor's form token, as the sign-up page hands it out. */
async function formToken(ip = freshIp()): Promise<{ ip: string; cookie: string; token: string }> {
  const res = await server.app.inject({ method: 'GET', url: '/signup', remoteAddress: ip });
  const set = setCookies(res).iotc_form;
  assert.ok(set, 'the sign-up page sets the form cookie');
  return { ip, cookie: `iotc_form=${cookieValue(set)}`, token: csrfIn(res.body) };
}

/** Follows a form's redirect to the page that shows a new key once, as a browser would (with the one-time cookie). */
async function keyPageAfter(res: Res, b: Browser): Promise<Res> {
  assert.equal(res.statusCode, 303, res.body.slice(0, 300));
  const location = res.headers.location as string;
  assert.match(location, /^\/devices\/[A-Z0-9]{20}\/key\?(created|rotated)$/);
  const stash = setCookies(res).iotc_newkey;
  assert.ok(stash, 'the key rides in a one-time cookie');
  assert.match(stash, /Path=\/devices\/[A-Z0-9]{20}\/key;.*HttpOnly/);
  return get(location, { ip: b.ip, cookie: `${b.cookie}; iotc_newkey=${cookieValue(stash)}` });
}

async function newDevice(b: Browser, name = 'Lamp'): Promise<{ id: string; key: string }> {
  const res = await keyPageAfter(await post('/devices/new', { _csrf: b.csrf, name }, b), b);
  assert.equal(res.statusCode, 200, res.body.slice(0, 300));
  const m = /device=([A-Z0-9]{20})&amp;key=([A-Z0-9]{15})/.exec(res.body);
  assert.ok(m, 'the page shows the URL with id and key');
  return { id: m[1], key: m[2] };
}

describe('html escaping', () => {
  test('interpolated values are escaped, nested templates and raw are not', () => {
    assert.equal(escapeHtml(`<a href="x" onclick='y'>&\``), '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&#96;');
    const inner = html`<b>${'<i>'}</b>`;
    assert.equal(html`<p>${inner}${['<', raw('<br>')]}${null}${false}${0}</p>`.text, '<p><b>&lt;i&gt;</b>&lt;<br>0</p>');
  });
});

describe('rate limiter', () => {
  test('limits each key and keeps at most maxKeys buckets', () => {
    const l = new KeyedLimiter(60, 2, 3);
    assert.equal(l.take('a', 0).ok, true);
    assert.equal(l.take('a', 0).ok, true);
    const third = l.take('a', 0);
    assert.equal(third.ok, false);
    assert.equal(!third.ok && third.retryAfter, 1);
    assert.equal(l.take('a', 1000).ok, true, 'refills at 60 a minute');
    for (const k of ['b', 'c', 'd', 'e']) l.take(k, 1000);
    assert.equal(l.size, 3);
  });
});

describe('pages when logged out', () => {
  test('public pages render; private ones redirect to log in, JSON answers 401', async () => {
    const home = await get('/');
    assert.equal(home.statusCode, 200);
    assert.match(home.headers['content-type'] as string, /^text\/html/);
    assert.match(home.headers['content-security-policy'] as string, /default-src 'self'/);
    assert.equal(home.headers['x-frame-options'], 'DENY');
    assert.equal(home.headers['x-content-type-options'], 'nosniff');
    assert.equal(home.headers['cache-control'], 'no-store');
    for (const url of ['/devices', '/devices/new', '/devices/AAAAAAAAAAAAAAAAAAAA']) {
      const res = await get(url);
      assert.equal(res.statusCode, 303, url);
      assert.equal(res.headers.location, `/login?next=${encodeURIComponent(url)}`);
    }
    const json = await get('/devices.json', undefined, { accept: 'application/json' });
    assert.equal(json.statusCode, 401);
    assert.deepEqual(json.json(), { error: 'E_AUTH', message: 'Log in first' });
    const docs = await get('/docs');
    assert.equal(docs.statusCode, 200);
    assert.match(docs.body, /device=DEVICE_ID&amp;key=<span class="key-slot">DEVICE_KEY<\/span>/);
  });

  test('assets are served locally with long-lived caching, and nothing else is', async () => {
    const page = (await get('/login')).body;
    const css = /href="(\/assets\/[0-9a-f]{12}\/app\.css)"/.exec(page)![1];
    const base = css.slice(0, css.lastIndexOf('/') + 1);
    const res = await get(css);
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['cache-control'] as string, /max-age=31536000.*immutable|immutable.*max-age=31536000/);
    assert.ok(res.headers.etag);
    assert.equal((await get(css, undefined, { 'if-none-match': res.headers.etag as string })).statusCode, 304);
    const uplot = await get(`${base}uPlot.iife.min.js`);
    assert.equal(uplot.statusCode, 200);
    assert.match(uplot.body, /uPlot/);
    assert.equal((await get(`${base}uPlot.min.css`)).statusCode, 200);
    assert.equal((await get(`${base}uPlot.cjs.js`)).statusCode, 404, 'only the two uPlot files the pages use');
    for (const escape of [`${base}..%2f..%2f..%2fpackage.json`, `${base}../../package.json`, `${base}%2e%2e/%2e%2e/package.json`]) {
      const res = await get(escape);
      assert.ok([403, 404].includes(res.statusCode), `${escape}: ${res.statusCode}`);
      assert.doesNotMatch(res.body, /"dependencies"/);
    }
    assert.doesNotMatch(page, /https?:\/\/(?!127\.0\.0\.1|localhost)[a-z]/i, 'no external CDN or font service');
  });
});

describe('sign up', () => {
  test('field errors keep what was typed, never the password', async () => {
    const f = await formToken();
    const res = await post('/signup', { _csrf: f.token, name: 'Ada <Maker>', email: 'nope', password: 'short' }, f);
    assert.equal(res.statusCode, 400);
    assert.match(res.body, /id="f-email-error">Email is not a valid address/);
    assert.match(res.body, /id="f-password-error">Password must be at least 8 characters/);
    assert.match(res.body, /value="Ada &lt;Maker&gt;"/);
    assert.match(res.body, /value="nope"/);
    assert.doesNotMatch(res.body, /value="short"/);
    const empty = await post('/signup', { _csrf: f.token }, f);
    assert.equal(empty.statusCode, 400);
    assert.match(empty.body, /Name is required/);
  });

  test('without the form token, or from another site, nothing is created', async () => {
    const f = await formToken();
    const email = freshEmail();
    const noToken = await post('/signup', { name: 'X', email, password: PASSWORD }, f);
    assert.equal(noToken.statusCode, 403);
    assert.match(noToken.body, /form expired/);
    assert.match(noToken.body, new RegExp(`value="${email}"`));
    const noCookie = await post('/signup', { _csrf: f.token, name: 'X', email, password: PASSWORD }, { ip: f.ip });
    assert.equal(noCookie.statusCode, 403);
    const foreign = await post('/signup', { _csrf: f.token, name: 'X', email, password: PASSWORD }, { ...f, headers: { origin: 'https://evil.example' } });
    assert.equal(foreign.statusCode, 403);
    assert.equal(await server.hub.store.getUserByEmail(email), null);
  });

  test('a taken email is a field error (409); success sets a safe session cookie', async () => {
    const b = await signUp();
    const f = await formToken();
    const again = await post('/signup', { _csrf: f.token, name: 'Twin', email: b.email.toUpperCase(), password: PASSWORD }, f);
    assert.equal(again.statusCode, 409);
    assert.match(again.body, /already exists/);
    const g = await formToken();
    const res = await post('/signup', { _csrf: g.token, name: 'New', email: freshEmail(), password: PASSWORD }, g);
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/devices?welcome=1');
    const cookie = setCookies(res).iotc_session;
    assert.match(cookie, /; HttpOnly/);
    assert.match(cookie, /; SameSite=Lax/);
    assert.doesNotMatch(cookie, /Secure/, 'plain http without a trusted proxy');
    assert.match(cookie, /Max-Age=2592000/);
    const stored = await server.hub.store.getSession(hashSecret(cookieValue(cookie)), Date.now());
    assert.ok(stored, 'only the hash of the cookie is the key in the store');
  });

  test('sign-ups are limited per address with a clear message', async () => {
    const f = await formToken();
    for (let i = 0; i < 10; i++) assert.equal((await post('/signup', { _csrf: f.token, name: 'x', email: 'bad' }, f)).statusCode, 400);
    const res = await post('/signup', { _csrf: f.token, name: 'x', email: freshEmail(), password: PASSWORD }, f);
    assert.equal(res.statusCode, 429);
    assert.match(res.body, /Too many sign-ups from your network\. Please wait \d+ seconds? and try again/);
    assert.ok(Number(res.headers['retry-after']) > 0);
  });
});

describe('log in and log out', () => {
  test('wrong password keeps the email; empty fields are field errors; success honours a local next only', async () => {
    const b = await signUp();
    const f = await formToken();
    const wrong = await post('/login', { _csrf: f.token, email: b.email, password: 'not the password' }, f);
    assert.equal(wrong.statusCode, 401);
    assert.match(wrong.body, /Wrong email or password/);
    assert.match(wrong.body, new RegExp(`value="${b.email}"`));
    const empty = await post('/login', { _csrf: f.token, email: '', password: '' }, f);
    assert.equal(empty.statusCode, 400);
    assert.match(empty.body, /Enter your email/);
    assert.match(empty.body, /Enter your password/);
    const noToken = await post('/login', { email: b.email, password: PASSWORD }, f);
    assert.equal(noToken.statusCode, 403);
    const ok = await post('/login', { _csrf: f.token, email: b.email, password: PASSWORD, next: '/docs' }, f);
    assert.equal(ok.statusCode, 303);
    assert.equal(ok.headers.location, '/docs');
    for (const next of ['//evil.example/x', '/\\evil.example', 'https://evil.example']) {
      const res = await post('/login', { _csrf: f.token, email: b.email, password: PASSWORD, next }, f);
      assert.equal(res.headers.location, '/devices', next);
    }
  });

  test('log-in attempts are limited per account and per address', async () => {
    const b = await signUp();
    for (let i = 0; i < 10; i++) {
      const f = await formToken();
      assert.equal((await post('/login', { _csrf: f.token, email: b.email, password: 'wrong password' }, f)).statusCode, 401);
    }
    const f = await formToken();
    const limited = await post('/login', { _csrf: f.token, email: b.email, password: PASSWORD }, f);
    assert.equal(limited.statusCode, 429, 'even the right password waits');
    assert.match(limited.body, /Too many log-in attempts for this account/);
    assert.ok(Number(limited.headers['retry-after']) > 0);

    const g = await formToken();
    for (let i = 0; i < 30; i++) assert.equal((await post('/login', { _csrf: g.token, email: '', password: '' }, g)).statusCode, 400);
    const byIp = await post('/login', { _csrf: g.token, email: freshEmail(), password: PASSWORD }, g);
    assert.equal(byIp.statusCode, 429);
    assert.match(byIp.body, /Too many log-in attempts from your network/);
  });

  test('log out needs the CSRF token, then ends the session on the server', async () => {
    const b = await signUp();
    assert.equal((await post('/logout', {}, b)).statusCode, 403);
    assert.equal((await get('/devices', b)).statusCode, 200, 'a forged log-out did nothing');
    const res = await post('/logout', { _csrf: b.csrf }, b);
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/login?bye');
    assert.match(setCookies(res).iotc_session, /Max-Age=0/);
    const after = await get('/devices', b);
    assert.equal(after.statusCode, 303, 'the old cookie no longer works');
    assert.match(after.headers.location as string, /^\/login/);
  });

  test('an expired session is no session', async () => {
    const b = await signUp();
    const user = (await server.hub.store.getUserByEmail(b.email))!;
    const value = 'expired-session-cookie-value-0123456789abcdefgh';
    await server.hub.store.createSession({ idHash: hashSecret(value), userId: user.id, csrfToken: 'x', createdAt: Date.now() - 10_000, expiresAt: Date.now() - 1 });
    assert.equal((await get('/devices', { ip: b.ip, cookie: `iotc_session=${value}` })).statusCode, 303);
  });
});

describe('secure cookies behind a proxy', () => {
  test('X-Forwarded-Proto counts only when IOTC_TRUST_PROXY is on', async () => {
    const trusting = await startTestServer({ trustProxy: true });
    try {
      for (const [srv, expectSecure] of [[server, false], [trusting, true]] as const) {
        const res = await srv.app.inject({ method: 'GET', url: '/signup', headers: { 'x-forwarded-proto': 'https' } });
        assert.equal(/; Secure/.test(setCookies(res).iotc_form), expectSecure);
      }
    } finally {
      await trusting.stop();
    }
  });
});

describe('devices', () => {
  test('new device: name errors keep what was typed; CSRF token and same origin required', async () => {
    const b = await signUp();
    const empty = await post('/devices/new', { _csrf: b.csrf, name: '   ' }, b);
    assert.equal(empty.statusCode, 400);
    assert.match(empty.body, /Name is required/);
    const long = 'x'.repeat(101);
    const tooLong = await post('/devices/new', { _csrf: b.csrf, name: long }, b);
    assert.equal(tooLong.statusCode, 400);
    assert.match(tooLong.body, /at most 100 characters/);
    assert.match(tooLong.body, new RegExp(`value="${long}"`));
    assert.equal((await post('/devices/new', { name: 'A' }, b)).statusCode, 403);
    assert.equal((await post('/devices/new', { _csrf: 'wrong', name: 'A' }, b)).statusCode, 403);
    assert.equal((await post('/devices/new', { _csrf: b.csrf, name: 'A' }, { ...b, headers: { origin: 'http://evil.example' } })).statusCode, 403);
    const user = (await server.hub.store.getUserByEmail(b.email))!;
    assert.equal((await server.hub.accounts.listDevices(user.id)).length, 0);
    // The token may come as a header instead of a field (scripts).
    const viaHeader = await post('/devices/new', { name: 'Header' }, { ...b, headers: { 'x-csrf-token': b.csrf, origin: 'http://localhost:80' } });
    assert.equal(viaHeader.statusCode, 303);
  });

  test('the created page shows id, key and URL once; the key works and is not stored in clear', async () => {
    const b = await signUp();
    const res = await keyPageAfter(await post('/devices/new', { _csrf: b.csrf, name: 'Greenhouse' }, b), b);
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /shown only now/);
    assert.match(res.headers['cache-control'] as string, /no-store/);
    const m = /ws:\/\/localhost:80\/ws\?device=([A-Z0-9]{20})&amp;key=([A-Z0-9]{15})/.exec(res.body);
    assert.ok(m, 'URL built from the Host the browser used');
    const device = await TestClient.connect(server.wsUrl, m[1], m[2], 'device');
    await device.close();
    const page = await get(`/devices/${m[1]}`, b);
    assert.equal(page.statusCode, 200);
    assert.doesNotMatch(page.body, new RegExp(m[2]), 'the device page never shows the key');
  });

  test('names are escaped everywhere they appear', async () => {
    const b = await signUp();
    const { id } = await newDevice(b, '<img src=x onerror=alert(1)>');
    for (const url of ['/devices', `/devices/${id}`, `/docs?device=${id}`, `/devices/${id}/delete`]) {
      const body = (await get(url, b)).body;
      assert.doesNotMatch(body, /<img src=x/, url);
      assert.match(body, /&lt;img src=x onerror=alert\(1\)&gt;/, url);
    }
  });

  test('list, list JSON and status JSON show state and latest values', async () => {
    const b = await signUp();
    const { id, key } = await newDevice(b, 'Sensor');
    const device = await TestClient.connect(server.wsUrl, id, key, 'device');
    await device.request({ method: 'put', status: [{ sensor: 'temp', value: 21.5 }, { sensor: 'led', value: false }] });
    await server.hub.relay.presence.flush(); // presence reaches the store about once a second
    const list = await get('/devices', b);
    assert.match(list.body, /Online/);
    assert.match(list.body, /<span class="chip-name">temp<\/span><span class="chip-value">21.5<\/span>/);
    const json = (await get('/devices.json', b, { accept: 'application/json' })).json();
    assert.equal(json.devices.length, 1);
    assert.equal(json.devices[0].online, true);
    assert.deepEqual(json.devices[0].latest.map((r: { sensor: string }) => r.sensor).sort(), ['led', 'temp']);
    const status = (await get(`/devices/${id}/status.json`, b)).json();
    assert.equal(status.online, true);
    assert.equal(typeof status.lastSeen, 'number');
    await device.close();
  });

  test('rename: errors keep what was typed; success renames', async () => {
    const b = await signUp();
    const { id } = await newDevice(b, 'Old');
    const bad = await post(`/devices/${id}/rename`, { _csrf: b.csrf, name: '' }, b);
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /id="rename-error">Name is required/);
    assert.equal((await post(`/devices/${id}/rename`, { name: 'New' }, b)).statusCode, 403);
    const ok = await post(`/devices/${id}/rename`, { _csrf: b.csrf, name: 'New name' }, b);
    assert.equal(ok.statusCode, 303);
    assert.equal((await server.hub.store.getDevice(id))!.name, 'New name');
  });

  test('rotate: confirmation page, then a new key shown once; the old key stops', async () => {
    const b = await signUp();
    const { id, key } = await newDevice(b);
    const old = await TestClient.connect(server.wsUrl, id, key, 'device');
    const confirm = await get(`/devices/${id}/rotate`, b);
    assert.equal(confirm.statusCode, 200);
    assert.match(confirm.body, /Rotate the key/);
    assert.equal((await post(`/devices/${id}/rotate`, {}, b)).statusCode, 403);
    const res = await keyPageAfter(await post(`/devices/${id}/rotate`, { _csrf: b.csrf }, b), b);
    assert.equal(res.statusCode, 200);
    const newKey = /data-testid="device-key">([A-Z0-9]{15})</.exec(res.body)![1];
    assert.notEqual(newKey, key);
    assert.equal((await old.closed).code, 4401);
    const refused = new TestClient(`${server.wsUrl}/ws?device=${id}&key=${key}`);
    assert.equal((await refused.closed).code, 4401);
    const fresh = await TestClient.connect(server.wsUrl, id, newKey, 'device');
    await fresh.close();
  });

  test('delete: the name must be typed (kept on error), then the device and its readings go', async () => {
    const b = await signUp();
    const { id } = await newDevice(b, 'Doomed');
    const wrong = await post(`/devices/${id}/delete`, { _csrf: b.csrf, confirm: 'Doom' }, b);
    assert.equal(wrong.statusCode, 400);
    assert.match(wrong.body, /value="Doom"/);
    assert.match(wrong.body, /Type “Doomed” to confirm/);
    assert.ok(await server.hub.store.getDevice(id));
    assert.equal((await post(`/devices/${id}/delete`, { confirm: 'Doomed' }, b)).statusCode, 403);
    const ok = await post(`/devices/${id}/delete`, { _csrf: b.csrf, confirm: 'Doomed' }, b);
    assert.equal(ok.statusCode, 303);
    assert.equal(ok.headers.location, '/devices?deleted');
    assert.equal(await server.hub.store.getDevice(id), null);
    assert.equal((await get(`/devices/${id}`, b)).statusCode, 404);
  });

  test('CSV: every sensor or one, as an attachment; bad parameters are 400 with a message', async () => {
    const b = await signUp();
    const { id, key } = await newDevice(b, 'Meter');
    const device = await TestClient.connect(server.wsUrl, id, key, 'device');
    await device.request({ method: 'put', status: [{ sensor: 'temp', value: 20 }, { sensor: 'note', value: '=cmd,"x"' }] });
    await device.request({ method: 'put', status: { sensor: 'temp', value: 21 } });
    await device.close();
    const all = await get(`/devices/${id}/history.csv`, b);
    assert.equal(all.statusCode, 200);
    assert.match(all.headers['content-type'] as string, /^text\/csv/);
    assert.match(all.headers['content-disposition'] as string, /^attachment; filename="Meter-all-\d{8}-\d{4}\.csv"$/);
    const lines = all.body.trim().split('\r\n');
    assert.equal(lines[0], 'time,time_ms,sensor,value,write');
    assert.equal(lines.length, 4);
    assert.ok(lines.some((l) => l.endsWith(`,note,"'=cmd,""x""",device`)), 'spreadsheet formulas are defused');
    const one = await get(`/devices/${id}/history.csv?sensor=temp&limit=1`, b);
    assert.deepEqual(one.body.trim().split('\r\n').slice(1).map((l) => l.split(',')[3]), ['21']);
    for (const q of ['limit=0', 'limit=abc', 'from=yesterday', `sensor=${'s'.repeat(65)}`]) {
      const res = await get(`/devices/${id}/history.csv?${q}`, b, { accept: 'application/json' });
      assert.equal(res.statusCode, 400, q);
      assert.equal(res.json().error, 'E_VALIDATION');
      assert.ok(res.json().message.length > 5);
    }
  });

  test('another user gets 404 for every device route, and changes nothing', async () => {
    const owner = await signUp('Owner');
    const { id, key } = await newDevice(owner, 'Private');
    const other = await signUp('Other');
    for (const suffix of ['', '/status.json', '/history.csv', '/rotate', '/delete']) {
      assert.equal((await get(`/devices/${id}${suffix}`, other)).statusCode, 404, `GET ${suffix}`);
    }
    assert.equal((await get(`/docs?device=${id}`, other)).statusCode, 404);
    const json = await get(`/devices/${id}/status.json`, other, { accept: 'application/json' });
    assert.deepEqual(json.json(), { error: 'E_NOT_FOUND', message: 'No such device' });
    for (const [suffix, form] of [['/rename', { name: 'Hacked' }], ['/rotate', {}], ['/delete', { confirm: 'Private' }]] as const) {
      assert.equal((await post(`/devices/${id}${suffix}`, { _csrf: other.csrf, ...form }, other)).statusCode, 404, `POST ${suffix}`);
    }
    const device = (await server.hub.store.getDevice(id))!;
    assert.equal(device.name, 'Private');
    assert.equal(device.keyHash, hashSecret(key), 'the key was not rotated');
    assert.doesNotMatch((await get('/devices', other)).body, /Private/);
    assert.equal((await get('/devices/not-a-device-id', owner)).statusCode, 404);
    assert.equal((await get('/devices/ZZZZZZZZZZZZZZZZZZZZ', owner)).statusCode, 404);
  });
});

describe('docs', () => {
  test('examples carry the user\'s device id; a chosen host replaces the one the browser used', async () => {
    const b = await signUp();
    const { id } = await newDevice(b, 'Docs device');
    const res = await get(`/docs?device=${id}&host=192.168.1.50:8888`, b);
    assert.equal(res.statusCode, 200);
    assert.ok(res.body.includes(`URL = &quot;ws://192.168.1.50:8888/ws?device=${id}&amp;key=<span class="key-slot" data-device="${id}">DEVICE_KEY</span>&amp;side=device&quot;`));
    assert.ok(res.body.includes('const char* HOST = &quot;192.168.1.50&quot;;'));
    assert.ok(res.body.includes('const uint16_t PORT = 8888;'));
    assert.ok(res.body.includes(`curl &quot;http://192.168.1.50:8888/api/v1/update?device=${id}&amp;key=`));
    // The test server has no MQTT TCP listener: the page says so and never offers a port where the hub is not.
    assert.ok(res.body.includes(`mqtt sub -l ws -h 192.168.1.50 -p 8888 --path /mqtt -u ${id} -P `));
    assert.doesNotMatch(res.body, /mosquitto_(pub|sub)|-p 1883/);
    const bad = await get(`/docs?device=${id}&host=${encodeURIComponent('evil"><script>')}`, b);
    assert.doesNotMatch(bad.body, /<script>/);
    assert.ok(bad.body.includes(`ws://localhost:80/ws?device=${id}`));
    // Without a device in the URL, the newest device is used.
    assert.ok((await get('/docs', b)).body.includes(`device=${id}&amp;key=`));
  });
});

describe('live connection with the login cookie', () => {
  /** Refusals complete the handshake and then close (so browsers can read the code): code 0 = still open after 300 ms. */
  function open(url: string, headers: Record<string, string>): Promise<{ code: number; messages: any[]; ws: WebSocket }> {
    return new Promise((resolve) => {
      const ws = new WebSocket(url, { headers });
      const messages: any[] = [];
      ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
      ws.on('open', () => setTimeout(() => resolve({ code: 0, messages, ws }), 300));
      ws.on('close', (code) => resolve({ code, messages, ws }));
      ws.on('error', () => {});
    });
  }

  test('the owner\'s page connects as the client side without the key; others are refused like a wrong key', async () => {
    const owner = await signUp();
    const { id, key } = await newDevice(owner);
    const origin = `http://127.0.0.1:${server.port}`;
    const url = `${server.wsUrl}/ws?device=${id}&side=device`;

    const page = await open(url, { cookie: owner.cookie, origin });
    assert.equal(page.code, 0, 'connected');
    const device = await TestClient.connect(server.wsUrl, id, key, 'device');
    await device.request({ method: 'put', status: { sensor: 'temp', value: 7 } });
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(page.messages.map((m) => [m.sensor, m.value, m.write]), [['temp', 7, 'device']], 'forced to the client side');
    page.ws.send(JSON.stringify({ method: 'put', status: { sensor: 'led', value: true }, id: 1 }));
    const led = await device.reading();
    assert.deepEqual([led.sensor, led.value, led.write], ['led', true, 'client']);
    page.ws.close();
    await device.close();

    const crossSite = await open(url, { cookie: owner.cookie, origin: 'https://evil.example' });
    assert.equal(crossSite.code, 4401);
    const noCookie = await open(url, { origin });
    assert.equal(noCookie.code, 4401);
    assert.match(noCookie.messages[0].error, /needs \?device=ID&key=KEY/);
    const other = await signUp();
    const stranger = await open(url, { cookie: other.cookie, origin });
    assert.equal(stranger.code, 4401);
    assert.equal(stranger.messages[0].code, 'E_AUTH');
    await post('/logout', { _csrf: owner.csrf }, owner);
    assert.equal((await open(url, { cookie: owner.cookie, origin })).code, 4401, 'logged out: refused');
  });
});

describe('cookie parsing', () => {
  test('first value of a name wins; quotes and encoding are undone; garbage is skipped', () => {
    assert.deepEqual(parseCookies('a=1; b="two"; a=3; c=%20x; bad; =x'), { a: '1', b: 'two', c: ' x' });
    assert.deepEqual(parseCookies(undefined), {});
  });
});

describe('addresses nothing answers', () => {
  test('a browser gets an HTML not-found page that escapes the path; other clients get the JSON error shape', async () => {
    const page = await server.app.inject({ method: 'GET', url: '/no/<b>such</b>', headers: { accept: 'text/html' } });
    assert.equal(page.statusCode, 404);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(page.body, /Not found/);
    assert.ok(page.body.includes('There is no page at /no/%3Cb%3Esuch%3C/b%3E.'), 'the page names the path as requested');
    assert.ok(!page.body.includes('<b>such</b>'), 'markup in the path is never rendered');

    const json = await server.app.inject({ method: 'DELETE', url: '/no/such', headers: { accept: 'application/json' } });
    assert.equal(json.statusCode, 404);
    assert.deepEqual(json.json(), { error: 'E_NOT_FOUND', message: 'Nothing at DELETE /no/such' });
  });
});
