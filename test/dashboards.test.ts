/**
 * Dashboards in process (fastify inject) against a real server and SQLite file: the web pages and their JSON,
 * the API routes, who may see what, what is refused and why, and the PWA's manifest, worker and offline page.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MAX_DASHBOARDS_PER_USER } from '../src/core/dashboards.js';
import { startTestServer } from './helpers.js';
import type { TestServer } from './helpers.js';
import { webClient } from './web-inject.js';
import type { WebUser } from './web-inject.js';

let server: TestServer;
let web: ReturnType<typeof webClient>;
before(async () => {
  server = await startTestServer();
  web = webClient(server);
});
after(() => server.stop());

async function deviceOf(u: WebUser, name = 'Greenhouse') {
  const user = (await server.hub.store.getUserByEmail(u.email))!;
  return { userId: user.id, device: await server.hub.accounts.createDevice(user.id, name) };
}

const gauge = (device: string, extra: Record<string, unknown> = {}) => ({ id: 'g1', type: 'gauge', x: 0, y: 0, w: 4, h: 3, device, sensor: 'temp', min: 0, max: 40, units: '°C', ...extra });

function putJson(u: WebUser, id: number, body: unknown, headers: Record<string, string> = {}) {
  return server.app.inject({
    method: 'PUT',
    url: `/dashboards/${id}/data.json`,
    remoteAddress: u.ip,
    headers: { cookie: u.cookie, 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': u.csrf, ...headers },
    payload: JSON.stringify(body),
  });
}

async function created(u: WebUser, name = 'Greenhouse'): Promise<number> {
  const res = await web.post('/dashboards', { _csrf: u.csrf, name }, { ip: u.ip, cookie: u.cookie });
  assert.equal(res.statusCode, 303, res.body.slice(0, 300));
  const m = /^\/dashboards\/(\d+)\?edit$/.exec(String(res.headers.location));
  assert.ok(m, String(res.headers.location));
  return Number(m[1]);
}

describe('dashboard pages', () => {
  test('a user creates a dashboard, saves widgets with the page JSON, and sees them on the page and in the list', async () => {
    const u = await web.signUp();
    const { device } = await deviceOf(u);
    const id = await created(u, 'Serre <1>');
    const saved = await putJson(u, id, { widgets: [gauge(device.id)] });
    assert.equal(saved.statusCode, 200, saved.body);
    assert.deepEqual(saved.json().widgets, [gauge(device.id)]);

    const page = await web.get(`/dashboards/${id}`, u);
    assert.equal(page.statusCode, 200);
    assert.match(page.headers['content-security-policy'] as string, /script-src 'self'/);
    assert.ok(page.body.includes('Serre &lt;1&gt;'), 'the name is escaped');
    const data = JSON.parse(/data-dashboard="([^"]+)"/.exec(page.body)![1].replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'));
    assert.deepEqual(data.widgets, [gauge(device.id)]);
    assert.ok(page.body.includes(`value="${device.id}"`), 'the editor offers the device');

    const list = await web.get('/dashboards', u);
    assert.match(list.body, /Serre &lt;1&gt;[\s\S]*1 widget /);
    const json = await web.get(`/dashboards/${id}/data.json`, u, { accept: 'application/json' });
    assert.equal(json.json().name, 'Serre <1>');
  });

  test("another user's dashboard is not found, on every route, and is never changed", async () => {
    const owner = await web.signUp();
    const { device } = await deviceOf(owner);
    const id = await created(owner);
    assert.equal((await putJson(owner, id, { widgets: [gauge(device.id)] })).statusCode, 200);
    const other = await web.signUp();
    assert.equal((await web.get(`/dashboards/${id}`, other)).statusCode, 404);
    assert.equal((await web.get(`/dashboards/${id}/data.json`, other, { accept: 'application/json' })).statusCode, 404);
    const put = await putJson(other, id, { widgets: [] });
    assert.equal(put.statusCode, 404);
    assert.equal(put.json().error, 'E_NOT_FOUND');
    assert.equal((await web.post(`/dashboards/${id}/delete`, { _csrf: other.csrf }, { ip: other.ip, cookie: other.cookie })).statusCode, 404);
    // Nor may anyone put another user's device on their own dashboard.
    const mine = await created(other);
    const stolen = await putJson(other, mine, { widgets: [gauge(device.id)] });
    assert.equal(stolen.statusCode, 400);
    assert.match(stolen.json().message, new RegExp(`no device ${device.id} in your account`));
    const kept = await server.hub.dashboards.get(owner.email ? (await server.hub.store.getUserByEmail(owner.email))!.id : 0, id);
    assert.deepEqual(kept.widgets, [gauge(device.id)]);
  });

  test('saving needs the session and its CSRF token from a page of ours; bad widgets say what is wrong', async () => {
    const u = await web.signUp();
    const { device } = await deviceOf(u);
    const id = await created(u);
    assert.equal((await putJson(u, id, { widgets: [] }, { 'x-csrf-token': 'wrong' })).statusCode, 403);
    assert.equal((await putJson(u, id, { widgets: [] }, { origin: 'https://evil.example' })).statusCode, 403);
    const anonymous = await server.app.inject({ method: 'GET', url: `/dashboards/${id}`, headers: { accept: 'text/html' } });
    assert.equal(anonymous.statusCode, 303);
    assert.match(String(anonymous.headers.location), /^\/login\?next=/);

    const cases: [unknown, RegExp][] = [
      [{ widgets: [gauge(device.id, { type: 'dial' })] }, /type must be one of/],
      [{ widgets: [gauge(device.id, { x: 10, w: 4 })] }, /fit in 12 columns/],
      [{ widgets: [gauge(device.id, { min: 5, max: 5 })] }, /min must be less than max/],
      [{ widgets: [gauge(device.id, { sensor: undefined })] }, /needs a sensor/],
      [{ widgets: [gauge(device.id), gauge(device.id)] }, /ids must be unique/],
      [{ widgets: [gauge(device.id, { script: 'alert(1)' })] }, /Unrecognized key.*script/],
      [{ widgets: [{ ...gauge(device.id), type: 'image', url: 'https://tracker.example/pixel.gif' }] }, /path on this hub/],
      [{ widgets: Array.from({ length: 61 }, (_, i) => gauge(device.id, { id: `w${i}` })) }, /at most 60 widgets/],
      [{ name: '' }, /name must not be empty/],
      [{}, /give name and\/or widgets/],
    ];
    for (const [body, why] of cases) {
      const res = await putJson(u, id, body);
      assert.equal(res.statusCode, 400, JSON.stringify(body).slice(0, 100));
      assert.equal(res.json().error, 'E_VALIDATION');
      assert.match(res.json().message, why);
    }
  });

  test("a chart's range is a preset or dates from before to; anything else says what is wrong, and a good one is kept", async () => {
    const u = await web.signUp();
    const { device } = await deviceOf(u);
    const id = await created(u);
    const chart = (range: unknown, extra: Record<string, unknown> = {}) => ({ widgets: [gauge(device.id, { type: 'chart', min: undefined, max: undefined, units: undefined, range, ...extra })] });
    const cases: [unknown, RegExp][] = [
      [chart('fortnight'), /range must be one of hour, day, week, month, year, or \{"from":…,"to":…\}/],
      [chart(604800000), /range must be one of hour/],
      [chart({ from: 2000, to: 1000 }), /range\.from must be before range\.to/],
      [chart({ from: 1000, to: 1000 }), /range\.from must be before range\.to/],
      [chart({ from: 1.5, to: 1000 }), /range\.from must be a whole number of ms/],
      [chart({ from: -1, to: 1000 }), /range\.from must be 0 or more/],
      [chart({ from: 0, to: 9e15 }), /range\.to must be before the year 275760/],
      [chart({ from: 0, to: 'tomorrow' }), /range\.to must be a time in ms/],
      [chart({ from: 0, to: 1000, step: 'x' }), /Unrecognized key.*step/],
      [{ widgets: [gauge(device.id, { range: 'day' })] }, /only a chart has a range/],
    ];
    for (const [body, why] of cases) {
      const res = await putJson(u, id, body);
      assert.equal(res.statusCode, 400, JSON.stringify(body).slice(0, 160));
      assert.equal(res.json().error, 'E_VALIDATION');
      assert.match(res.json().message, why, JSON.stringify(body).slice(0, 160));
    }
    for (const range of ['hour', 'week', 'year', { from: 1764000000000, to: 1764086400000 }]) {
      const res = await putJson(u, id, chart(range));
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json().widgets[0].range, range);
    }
  });

  test('a device deleted since does not stop its owner rearranging the rest; its widget says it is gone', async () => {
    const u = await web.signUp();
    const { userId, device } = await deviceOf(u);
    const spare = await server.hub.accounts.createDevice(userId, 'Spare');
    const id = await created(u);
    assert.equal((await putJson(u, id, { widgets: [gauge(device.id), gauge(spare.id, { id: 'g2', x: 4 })] })).statusCode, 200);
    await server.hub.accounts.deleteDevice(userId, spare.id);
    const moved = await putJson(u, id, { widgets: [gauge(device.id, { x: 8 }), gauge(spare.id, { id: 'g2', x: 0 })] });
    assert.equal(moved.statusCode, 200, moved.body);
    // A deleted device cannot come back onto another dashboard.
    const other = await created(u, 'Other');
    assert.equal((await putJson(u, other, { widgets: [gauge(spare.id)] })).statusCode, 400);
    const page = await web.get(`/dashboards/${id}`, u);
    assert.ok(!page.body.includes(`value="${spare.id}"`), 'the editor no longer offers it');
  });

  test('deleting a dashboard leaves its devices; an account keeps a bounded number of dashboards', async () => {
    const u = await web.signUp();
    const { userId, device } = await deviceOf(u);
    const id = await created(u);
    const del = await web.post(`/dashboards/${id}/delete`, { _csrf: u.csrf }, { ip: u.ip, cookie: u.cookie });
    assert.equal(del.statusCode, 303);
    assert.equal((await web.get(`/dashboards/${id}`, u)).statusCode, 404);
    assert.ok(await server.hub.store.getDevice(device.id));

    for (let i = 0; i < MAX_DASHBOARDS_PER_USER; i++) await server.hub.dashboards.create(userId, { name: `D${i}` });
    const over = await web.post('/dashboards', { _csrf: u.csrf, name: 'One more' }, { ip: u.ip, cookie: u.cookie });
    assert.equal(over.statusCode, 403);
    assert.match(over.body, /the most an account keeps/);
  });
});

describe('dashboards over the API', () => {
  async function apiUser() {
    const u = await web.signUp();
    const user = (await server.hub.store.getUserByEmail(u.email))!;
    const { token } = await server.hub.tokens.create(user.id, 'test');
    return { userId: user.id, auth: { authorization: `Bearer ${token}` } };
  }
  const api = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, headers: Record<string, string>, body?: unknown) =>
    server.app.inject({ method, url: `/api/v1${url}`, headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, payload: body === undefined ? undefined : JSON.stringify(body) });

  test('CRUD for the owner; another token gets 404; no token 401; E_LIMIT past the cap', async () => {
    const a = await apiUser();
    const device = await server.hub.accounts.createDevice(a.userId, 'Pump');
    const made = await api('POST', '/dashboards', a.auth, { name: 'Pumps', widgets: [gauge(device.id)] });
    assert.equal(made.statusCode, 201, made.body);
    const id = made.json().id;
    assert.equal((await api('GET', `/dashboards/${id}`, a.auth)).json().name, 'Pumps');
    const moved = await api('PUT', `/dashboards/${id}`, a.auth, { widgets: [gauge(device.id, { x: 8 })] });
    assert.equal(moved.json().widgets[0].x, 8);
    assert.deepEqual((await api('GET', '/dashboards', a.auth)).json().dashboards.map((d: { id: number }) => d.id), [id]);

    const b = await apiUser();
    for (const [method, body] of [['GET'], ['PUT', { name: 'x' }], ['DELETE']] as const) {
      const res = await api(method, `/dashboards/${id}`, b.auth, body);
      assert.equal(res.statusCode, 404, `${method}: ${res.body}`);
      assert.equal(res.json().error, 'E_NOT_FOUND');
    }
    assert.equal((await api('GET', '/dashboards/abc', a.auth)).statusCode, 404);
    assert.equal((await api('GET', '/dashboards', {})).statusCode, 401);
    const foreign = await api('POST', '/dashboards', b.auth, { name: 'Theirs', widgets: [gauge(device.id)] });
    assert.equal(foreign.statusCode, 400);

    assert.equal((await api('DELETE', `/dashboards/${id}`, a.auth)).statusCode, 204);
    assert.equal((await api('GET', `/dashboards/${id}`, a.auth)).statusCode, 404);

    for (let i = 0; i < MAX_DASHBOARDS_PER_USER; i++) assert.equal((await api('POST', '/dashboards', a.auth, { name: `D${i}` })).statusCode, 201);
    const over = await api('POST', '/dashboards', a.auth, { name: 'One more' });
    assert.equal(over.statusCode, 403);
    assert.equal(over.json().error, 'E_LIMIT');
  });
});

describe('installable web app', () => {
  test('the manifest, the service worker at the root and the offline page are served to anyone', async () => {
    const manifest = await server.app.inject({ method: 'GET', url: '/manifest.webmanifest' });
    assert.equal(manifest.statusCode, 200);
    assert.match(String(manifest.headers['content-type']), /^application\/manifest\+json/);
    const m = manifest.json();
    assert.equal(m.display, 'standalone');
    for (const icon of m.icons) {
      const res = await server.app.inject({ method: 'GET', url: icon.src });
      assert.equal(res.statusCode, 200, icon.src);
      assert.equal(res.headers['content-type'], 'image/png');
    }
    const sw = await server.app.inject({ method: 'GET', url: '/sw.js' });
    assert.equal(sw.statusCode, 200);
    assert.match(String(sw.headers['content-type']), /^text\/javascript/);
    assert.equal(sw.headers['cache-control'], 'no-cache');
    // Every file the worker caches at install exists, or installing would fail.
    const shell = JSON.parse(/const SHELL = (\[.*\]);/.exec(sw.body)![1]) as string[];
    assert.ok(shell.includes('/offline'));
    for (const url of shell) assert.equal((await server.app.inject({ method: 'GET', url })).statusCode, 200, url);
    const offline = await server.app.inject({ method: 'GET', url: '/offline' });
    assert.match(offline.body, /You are offline/);
    const page = await web.get('/login');
    assert.match(page.body, /<link rel="manifest" href="\/manifest.webmanifest">/);
  });
});
