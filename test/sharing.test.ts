/**
 * Issue 12 part 1: sharing a device with roles, enforced on every door (HTTP with an API token, the web app's
 * cookie WebSocket, MQTT with an API token), invitations accepted at sign-up, public links, and revocation
 * dropping live connections at once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { MAX_LINKS_PER_TARGET, MAX_PEOPLE_PER_DEVICE } from '../src/core/sharing.js';
import { freePort, makeDevice, runCli, startTestServer, TestClient, waitFor, within } from './helpers.js';
import type { TestServer } from './helpers.js';
import { pageCsrf, pageSocket as pageSocketOf, webLogIn } from './page-session.js';
import { closedWith, mqttConnect } from './mqtt-clients.js';

let server: TestServer;
before(async () => {
  server = await startTestServer({ mqttPort: await freePort() });
});
after(() => server.stop());

async function api(method: string, path: string, token?: string, body?: unknown) {
  const res = await fetch(`${server.url}/api/v1${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

let n = 0;
async function account() {
  const email = `share-${++n}-${Date.now()}@example.com`;
  // Through the account service: sign-ups over HTTP are limited per address, and every test here signs up several.
  const user = await server.hub.accounts.signUp({ name: 'Someone', email, password: 'correct horse battery' });
  return { email, token: (await server.hub.tokens.create(user.id, 'app')).token, userId: user.id };
}

/** The owner with a device, a partner (operator) and a neighbour (viewer), shared through the HTTP API. */
async function household() {
  const d = await makeDevice(server, 'Greenhouse');
  const owner = (await server.hub.tokens.create(d.userId, 'owner')).token;
  const partner = await account();
  const neighbour = await account();
  assert.deepEqual((await api('POST', `/devices/${d.id}/shares`, owner, { email: partner.email, role: 'operator' })).body, { state: 'shared', email: partner.email, role: 'operator' });
  assert.equal((await api('POST', `/devices/${d.id}/shares`, owner, { email: neighbour.email.toUpperCase(), role: 'viewer' })).status, 200);
  return { d, owner, partner, neighbour };
}

const logIn = async (email: string) => (await webLogIn(server, email)).cookie;
const pageSocket = (deviceId: string, cookie: string) => pageSocketOf(server, deviceId, cookie);

describe('HTTP with an API token', () => {
  test('viewer reads but every write and call is E_FORBIDDEN and never reaches the device; operator writes and it does', async () => {
    const { d, partner, neighbour } = await household();
    const device = await TestClient.connect(server.wsUrl, d.id, d.key);
    try {
      const refused = await api('POST', `/devices/${d.id}/readings`, neighbour.token, { sensor: 'pump', value: true });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.error, 'E_FORBIDDEN');
      assert.match(refused.body.message, /viewer/);
      const oneLine = await fetch(`${server.url}/api/v1/update?device=${d.id}&pump=1`, { headers: { authorization: `Bearer ${neighbour.token}` } });
      assert.equal(oneLine.status, 403);
      const call = await api('POST', `/devices/${d.id}/calls`, neighbour.token, { method: 'reboot', timeout: 200 });
      assert.equal(call.status, 403);
      assert.equal(call.body.error, 'E_FORBIDDEN');

      const ok = await api('POST', `/devices/${d.id}/readings`, partner.token, { sensor: 'pump', value: 'on' });
      assert.equal(ok.status, 201);
      const got = await device.next((m) => m.sensor === 'pump');
      assert.equal(got.value, 'on', 'the operator\'s write is what the device receives first: the viewer\'s never arrived');
      assert.equal(got.write, 'client');

      // Reads are allowed to both roles.
      const history = await api('GET', `/devices/${d.id}/sensors/pump/history`, neighbour.token);
      assert.equal(history.status, 200);
      assert.deepEqual(history.body.readings.map((r: any) => r.value), ['on']);
      assert.equal((await api('GET', `/devices/${d.id}/sensors`, neighbour.token)).status, 200);
    } finally {
      device.close();
    }
  });

  test('shared accounts cannot manage the device; a stranger cannot even see it', async () => {
    const { d, partner } = await household();
    const stranger = await account();
    assert.equal((await api('GET', `/devices/${d.id}/shares`, partner.token)).status, 403);
    assert.equal((await api('POST', `/devices/${d.id}/shares`, partner.token, { email: stranger.email, role: 'operator' })).status, 403);
    assert.equal((await api('POST', `/devices/${d.id}/links`, partner.token)).status, 403);
    assert.equal((await api('POST', `/devices/${d.id}/rotate`, partner.token)).status, 404);
    assert.equal((await api('DELETE', `/devices/${d.id}`, partner.token)).status, 404);
    assert.ok(await server.hub.store.getDevice(d.id), 'still there');
    for (const path of [`/devices/${d.id}/sensors`, `/devices/${d.id}`, `/devices/${d.id}/shares`]) {
      const res = await api('GET', path, stranger.token);
      assert.equal(res.status, 404, path);
    }
  });

  test('the device list shows shared devices, marked with role and owner; the owner sees who has it', async () => {
    const { d, owner, partner, neighbour } = await household();
    const list = (await api('GET', '/devices', partner.token)).body.devices;
    const shared = list.find((x: any) => x.id === d.id);
    assert.deepEqual(shared.shared, { role: 'operator', owner: d.email });
    assert.equal((await api('GET', `/devices/${d.id}`, neighbour.token)).body.shared.role, 'viewer');
    const mine = (await api('GET', '/devices', owner)).body.devices.find((x: any) => x.id === d.id);
    assert.equal(mine.shared, undefined);
    const shares = (await api('GET', `/devices/${d.id}/shares`, owner)).body;
    assert.deepEqual(shares.shares.map((s: any) => [s.email, s.role]).sort(), [[neighbour.email, 'viewer'], [partner.email, 'operator']].sort());
    assert.equal((await api('POST', `/devices/${d.id}/shares`, owner, { email: d.email, role: 'viewer' })).status, 400, 'not with the owner');
    assert.equal((await api('POST', `/devices/${d.id}/shares`, owner, { email: partner.email, role: 'admin' })).body.error, 'E_VALIDATION');
  });
});

describe('invitations and public links', () => {
  test('an email without an account is invited, and the share starts at sign-up; withdrawing an invitation works', async () => {
    const d = await makeDevice(server);
    const owner = (await server.hub.tokens.create(d.userId, 'owner')).token;
    const email = `later-${Date.now()}@example.com`;
    assert.deepEqual((await api('POST', `/devices/${d.id}/shares`, owner, { email, role: 'operator' })).body, { state: 'invited', email, role: 'operator' });
    const [pending] = (await api('GET', `/devices/${d.id}/shares`, owner)).body.invitations;
    assert.deepEqual([pending.email, pending.expired], [email, false]);
    assert.equal(pending.expiresAt, pending.createdAt + server.hub.config.inviteTtl, 'it waits IOTC_INVITE_TTL for the sign-up');
    const withdrawn = `never-${Date.now()}@example.com`;
    await api('POST', `/devices/${d.id}/shares`, owner, { email: withdrawn, role: 'viewer' });
    assert.equal((await api('DELETE', `/devices/${d.id}/shares/${encodeURIComponent(withdrawn)}`, owner)).status, 204);
    const res = await api('POST', '/auth/signup', undefined, { name: 'Later', email: email.toUpperCase(), password: 'correct horse battery' });
    assert.equal(res.status, 201);
    const list = (await api('GET', '/devices', res.body.token)).body.devices;
    assert.deepEqual(list.map((x: any) => [x.id, x.shared?.role]), [[d.id, 'operator']]);
    assert.equal((await api('GET', `/devices/${d.id}/shares`, owner)).body.invitations.length, 0);
    const late = await api('POST', '/auth/signup', undefined, { name: 'W', email: withdrawn, password: 'correct horse battery' });
    assert.deepEqual((await api('GET', '/devices', late.body.token)).body.devices, []);
  });

  test('a public link shows the values read-only without credentials, and stops the moment it is revoked', async () => {
    const { d, owner } = await household();
    await fetch(`${server.url}/api/v1/update?device=${d.id}&key=${d.key}&temp=21.5`);
    const link = (await api('POST', `/devices/${d.id}/links`, owner)).body;
    assert.match(link.token, /^iotp_[A-Za-z0-9]{32}$/);
    const open = await api('GET', `/public/${link.token}`);
    assert.equal(open.status, 200);
    assert.equal(open.body.device.name, 'Greenhouse');
    assert.deepEqual(open.body.sensors.map((s: any) => [s.sensor, s.value]), [['temp', 21.5]]);
    assert.equal((await api('GET', `/devices/${d.id}/links`, owner)).body.links[0].token, undefined, 'the token is never listed');
    assert.equal((await api('DELETE', `/devices/${d.id}/links/${link.id}`, owner)).status, 204);
    assert.equal((await api('GET', `/public/${link.token}`)).status, 404);
    assert.equal((await api('GET', `/public/iotp_${'A'.repeat(32)}`)).status, 404);
  });
});

describe('caps on sharing', () => {
  test('a device is shared with or waits on at most MAX_PEOPLE_PER_DEVICE people, and has at most MAX_LINKS_PER_TARGET links: then 403 E_LIMIT saying what to do', async () => {
    const d = await makeDevice(server);
    const owner = (await server.hub.tokens.create(d.userId, 'owner')).token;
    const partner = await account();
    assert.equal((await api('POST', `/devices/${d.id}/shares`, owner, { email: partner.email, role: 'viewer' })).status, 200);
    for (let i = 1; i < MAX_PEOPLE_PER_DEVICE; i++) await server.hub.sharing.share(d.userId, d.id, { email: `crowd${i}-${Date.now()}@example.com`, role: 'viewer' });
    const over = await api('POST', `/devices/${d.id}/shares`, owner, { email: `one-more-${Date.now()}@example.com`, role: 'viewer' });
    assert.equal(over.status, 403);
    assert.equal(over.body.error, 'E_LIMIT');
    assert.match(over.body.message, new RegExp(`${MAX_PEOPLE_PER_DEVICE} people.*withdraw a share or an invitation first`));
    const stranger = await account();
    assert.equal((await api('POST', `/devices/${d.id}/shares`, owner, { email: stranger.email, role: 'viewer' })).status, 403, 'an account as much as an invitation');
    assert.equal((await api('POST', `/devices/${d.id}/shares`, owner, { email: partner.email, role: 'operator' })).status, 200, 'someone already there may change role');
    assert.equal((await api('DELETE', `/devices/${d.id}/shares/${encodeURIComponent(partner.email)}`, owner)).status, 204);
    assert.equal((await api('POST', `/devices/${d.id}/shares`, owner, { email: stranger.email, role: 'viewer' })).status, 200, 'a withdrawn share frees its place');

    for (let i = 0; i < MAX_LINKS_PER_TARGET; i++) await server.hub.sharing.createDeviceLink(d.userId, d.id);
    const link = await api('POST', `/devices/${d.id}/links`, owner);
    assert.equal(link.status, 403);
    assert.equal(link.body.error, 'E_LIMIT');
    assert.match(link.body.message, new RegExp(`${MAX_LINKS_PER_TARGET} public links.*revoke one first`));
  });
});

describe('the web app\'s cookie WebSocket', () => {
  test('a viewer\'s put and call are E_FORBIDDEN; an operator\'s put reaches the device; a role change applies live', async () => {
    const { d, owner, partner, neighbour } = await household();
    const device = await TestClient.connect(server.wsUrl, d.id, d.key);
    const viewer = await pageSocket(d.id, await logIn(neighbour.email));
    const operator = await pageSocket(d.id, await logIn(partner.email));
    try {
      const refused = await viewer.request({ method: 'put', status: { sensor: 'pump', value: 1 } });
      assert.deepEqual([refused.ok, refused.code], [false, 'E_FORBIDDEN']);
      const call = await viewer.request({ method: 'call', device_method: 'reboot', timeout: 200 });
      assert.equal(call.code, 'E_FORBIDDEN');
      assert.equal((await viewer.request({ method: 'gets', sensor: 'pump' })).code, 'E_NOT_FOUND', 'reads work (nothing stored yet)');
      assert.equal((await operator.request({ method: 'put', status: { sensor: 'pump', value: 2 } })).ok, true);
      assert.equal((await device.next((m) => m.sensor === 'pump')).value, 2);
      // The owner makes the neighbour an operator: the open socket may now write, without reconnecting.
      await api('POST', `/devices/${d.id}/shares`, owner, { email: neighbour.email, role: 'operator' });
      assert.equal((await viewer.request({ method: 'put', status: { sensor: 'pump', value: 3 } })).ok, true);
      assert.equal((await device.next((m) => m.sensor === 'pump')).value, 3);
    } finally {
      device.close();
      viewer.ws.close();
      operator.ws.close();
    }
  });

  test('unsharing closes that user\'s open sockets at once (E_FORBIDDEN), not the others\'', async () => {
    const { d, owner, partner, neighbour } = await household();
    const a = await pageSocket(d.id, await logIn(partner.email));
    const b = await pageSocket(d.id, await logIn(neighbour.email));
    try {
      assert.equal((await api('DELETE', `/devices/${d.id}/shares/${encodeURIComponent(partner.email)}`, owner)).status, 204);
      const closed = await within(a.closed, 1000, 'the unshared socket to close');
      assert.equal(closed.code, 4403);
      assert.match(closed.reason, /stopped sharing/);
      assert.equal((await b.request({ method: 'ping' })).ok, true, 'the other shared user stays');
      const again = new WebSocket(`${server.wsUrl}/ws?device=${d.id}&side=client`, { headers: { cookie: await logIn(partner.email), origin: server.url } });
      const code = await new Promise<number>((resolve) => again.once('close', (c) => resolve(c)));
      assert.equal(code, 4401, 'no longer let in');
    } finally {
      b.ws.close();
    }
  });
});

describe('MQTT with an API token', { timeout: 20_000 }, () => {
  const url = () => `mqtt://127.0.0.1:${server.mqttPort}`;

  test('a viewer\'s publish is refused (MQTT 5: not authorized) and never reaches the device; an operator\'s does', async () => {
    const { d, partner, neighbour } = await household();
    const device = await TestClient.connect(server.wsUrl, d.id, d.key);
    const viewer = await mqttConnect(url(), { username: `${d.id}:client`, password: neighbour.token, protocolVersion: 5 });
    const viewer3 = await mqttConnect(url(), { username: `${d.id}:client`, password: neighbour.token });
    const operator = await mqttConnect(url(), { username: `${d.id}:client`, password: partner.token });
    try {
      await assert.rejects(viewer.publishAsync(`devices/${d.id}/pump`, '1', { qos: 1 }), (err: any) => err.code === 0x87, 'PUBACK: not authorized');
      const closed = closedWith(viewer3);
      viewer3.publish(`devices/${d.id}/pump`, '1', { qos: 1 });
      await closed;
      await assert.rejects(viewer.publishAsync(`devices/${d.id}/rpc/request/r1`, JSON.stringify({ method: 'reboot' }), { qos: 1 }), (err: any) => err.code === 0x87);
      await operator.publishAsync(`devices/${d.id}/pump`, '"on"', { qos: 1 });
      const got = await device.next((m) => m.sensor === 'pump');
      assert.equal(got.value, 'on', 'the first value the device sees is the operator\'s');
    } finally {
      device.close();
      for (const c of [viewer, operator, viewer3]) c.end(true);
    }
  });

  test('a wrong token, or a token of an account the device is not shared with, is refused; unsharing drops the connection', async () => {
    const { d, owner, partner } = await household();
    const stranger = await account();
    await assert.rejects(mqttConnect(url(), { username: `${d.id}:client`, password: stranger.token }));
    await assert.rejects(mqttConnect(url(), { username: `${d.id}:client`, password: `iotc_${'x'.repeat(32)}` }));
    const client = await mqttConnect(url(), { username: `${d.id}:client`, password: partner.token, protocolVersion: 5 });
    const closed = closedWith(client, 3000);
    await api('DELETE', `/devices/${d.id}/shares/${encodeURIComponent(partner.email)}`, owner);
    await closed;
    client.end(true);
  });
});

test('CLI: iotc device share / unshare, seen by the running server', async () => {
  const d = await makeDevice(server);
  const partner = await account();
  const env = { IOTC_DATA_DIR: server.dataDir };
  const shared = await runCli(['device', 'share', d.id, '--email', partner.email, '--role', 'viewer'], { env });
  assert.equal(shared.code, 0, shared.stderr);
  assert.match(shared.stdout, /shared with .* as viewer/);
  assert.equal(await server.hub.store.sharing.roleOf(d.id, partner.userId), 'viewer');
  const socket = await pageSocket(d.id, await logIn(partner.email));
  const bad = await runCli(['device', 'share', d.id, '--email', partner.email, '--role', 'boss'], { env });
  assert.equal(bad.code !== 0, true);
  assert.match(bad.stderr, /viewer.*operator/);
  const unshared = await runCli(['device', 'unshare', d.id, '--email', partner.email], { env });
  assert.equal(unshared.code, 0, unshared.stderr);
  // The CLI has no relay: the server sees the device event in the store and drops the socket.
  const closed = await within(socket.closed, 5000, 'the socket to close after the CLI unshared');
  assert.equal(closed.code, 4403);
  const invited = await runCli(['device', 'share', d.id, '--email', 'nobody-yet@example.com', '--role', 'operator'], { env });
  assert.match(invited.stdout, /invited as operator/);
  await waitFor(async () => (await server.hub.store.sharing.invitationsOf(d.id)).length === 1);
});

test('web app: the device list marks shared devices with role and owner; a viewer\'s device page is view-only', async () => {
  const { d, neighbour, partner } = await household();
  const viewerCookie = await logIn(neighbour.email);
  const list = await (await fetch(`${server.url}/devices`, { headers: { cookie: viewerCookie, accept: 'text/html' } })).text();
  assert.match(list, new RegExp(`data-device="${d.id}"`));
  assert.match(list, /data-shared="viewer"/);
  assert.match(list, new RegExp(`Shared with you by ${d.email.replace('.', '\\.')}`));
  const page = await (await fetch(`${server.url}/devices/${d.id}`, { headers: { cookie: viewerCookie, accept: 'text/html' } })).text();
  assert.match(page, /data-role="viewer"/);
  assert.doesNotMatch(page, /Call a method/);
  assert.doesNotMatch(page, /Delete device/);
  const operatorPage = await (await fetch(`${server.url}/devices/${d.id}`, { headers: { cookie: await logIn(partner.email), accept: 'text/html' } })).text();
  assert.match(operatorPage, /data-role="operator"/);
  assert.match(operatorPage, /Call a method/);
  assert.doesNotMatch(operatorPage, /Delete device/);
  const json = await (await fetch(`${server.url}/devices.json`, { headers: { cookie: viewerCookie } })).json();
  assert.deepEqual(json.devices.find((x: any) => x.id === d.id).shared, { role: 'viewer', owner: d.email });
});

test('web app: the owner shares, changes the role, revokes and makes a public link from the device page', async () => {
  const d = await makeDevice(server);
  const friend = await account();
  const cookie = await logIn(d.email);
  const page = async () => (await fetch(`${server.url}/devices/${d.id}`, { headers: { cookie, accept: 'text/html' } })).text();
  const post = async (path: string, fields: Record<string, string>) => {
    const csrf = await pageCsrf(server, cookie, `/devices/${d.id}`);
    return fetch(`${server.url}${path}`, {
      method: 'POST', redirect: 'manual',
      headers: { cookie, origin: server.url, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrf, ...fields }).toString(),
    });
  };
  assert.match(await page(), /data-sharing/);
  assert.equal((await post(`/devices/${d.id}/shares`, { email: friend.email, role: 'viewer' })).status, 303);
  assert.equal(await server.hub.store.sharing.roleOf(d.id, friend.userId), 'viewer');
  assert.match(await page(), new RegExp(`data-share="${friend.email}"`));
  await post(`/devices/${d.id}/shares`, { email: friend.email, role: 'operator' });
  assert.equal(await server.hub.store.sharing.roleOf(d.id, friend.userId), 'operator');
  const bad = await post(`/devices/${d.id}/shares`, { email: 'not an email', role: 'viewer' });
  assert.equal(bad.status, 400);
  await post(`/devices/${d.id}/shares/remove`, { email: friend.email });
  assert.equal(await server.hub.store.sharing.roleOf(d.id, friend.userId), null);
  const made = await post(`/devices/${d.id}/links`, {});
  assert.equal(made.status, 303);
  const linkCookie = made.headers.get('set-cookie')!.split(';')[0];
  const shown = await (await fetch(`${server.url}/devices/${d.id}`, { headers: { cookie: `${cookie}; ${linkCookie}`, accept: 'text/html' } })).text();
  const token = /public\/(iotp_[A-Za-z0-9]{32})/.exec(shown)![1];
  assert.equal((await fetch(`${server.url}/api/v1/public/${token}`)).status, 200);
  const [link] = await server.hub.sharing.deviceLinks(d.userId, d.id);
  await post(`/devices/${d.id}/links/${link.id}/revoke`, {});
  assert.equal((await fetch(`${server.url}/api/v1/public/${token}`)).status, 404);
});
