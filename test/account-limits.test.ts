/** Issue 9, finding 5: password guessing, wrong keys and tokens, and devices/tokens per user, each tried as an attacker would. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { WebSocket } from 'ws';
import { AuthLimits } from '../src/core/auth-limits.js';
import { IotcError } from '../src/core/errors.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { WebSessions } from '../src/web/session.js';
import { iotc } from './cli-helpers.js';
import { makeDevice, startTestServer, tempDir } from './helpers.js';
import type { TestServer } from './helpers.js';

const PASSWORD = 'correct horse battery';
let n = 0;
const freshEmail = () => `limits${++n}-${Date.now()}@example.com`;
/** Every request from its own address, as an attacker rotating X-Forwarded-For (or owning a botnet) sends them. */
const rotatingIp = () => `198.51.${Math.floor(++n / 250) % 250}.${n % 250}`;

async function api(server: TestServer, method: string, path: string, opts: { body?: unknown; ip?: string; token?: string } = {}) {
  return await server.app.inject({
    method: method as 'POST',
    url: `/api/v1${path}`,
    headers: { 'x-forwarded-for': opts.ip ?? rotatingIp(), ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) },
    ...(opts.body !== undefined ? { payload: opts.body as object } : {}),
  });
}

/** Opens /ws and resolves how it ended: open (then closed by us) or the server's first error frame and close code. */
function tryWs(server: TestServer, device: string, key: string, ip: string): Promise<{ open: boolean; code?: string; close?: number; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const ws = new WebSocket(`${server.wsUrl}/ws?device=${device}&key=${key}`, { headers: { 'x-forwarded-for': ip } });
    let error: string | undefined;
    ws.on('message', (d) => {
      const m = JSON.parse(String(d));
      if (m.ok === false) error = m.code;
    });
    ws.on('open', () => {
      // A refused connection is opened only to be told why: wait for the close before deciding.
      setTimeout(() => {
        if (ws.readyState === WebSocket.OPEN && !error) {
          ws.close();
          resolve({ open: true, ms: Date.now() - started });
        }
      }, 150);
    });
    ws.on('close', (close) => resolve({ open: false, code: error, close, ms: Date.now() - started }));
    ws.on('error', () => {});
  });
}

describe('passwords: per account, whatever the address', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ trustProxy: true });
  });
  after(() => server.stop());

  test('API log-in: a rotating X-Forwarded-For gets 10 guesses at one account, then 429 with Retry-After; others log in', async () => {
    const email = freshEmail();
    await server.hub.accounts.signUp({ name: 'Victim', email, password: PASSWORD });
    for (let i = 0; i < 10; i++) {
      const res = await api(server, 'POST', '/auth/login', { body: { email, password: `guess ${i}` } });
      assert.equal(res.statusCode, 401, `guess ${i}`);
    }
    const limited = await api(server, 'POST', '/auth/login', { body: { email: email.toUpperCase(), password: 'guess 11' } });
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.json().error, 'E_RATE_LIMITED');
    assert.match(limited.json().message, /Too many log-in attempts for this account\. Please wait \d+ (seconds?|minutes?)/);
    assert.ok(Number(limited.headers['retry-after']) > 0);
    const right = await api(server, 'POST', '/auth/login', { body: { email, password: PASSWORD } });
    assert.equal(right.statusCode, 429, 'no password is checked while the account is limited: a guess could not tell');

    const other = freshEmail();
    await server.hub.accounts.signUp({ name: 'Other', email: other, password: PASSWORD });
    assert.equal((await api(server, 'POST', '/auth/login', { body: { email: other, password: PASSWORD } })).statusCode, 200);
  });

  test('a parallel burst of 60 guesses at one account gets at most 10 password checks', async () => {
    const email = freshEmail();
    await server.hub.accounts.signUp({ name: 'Victim', email, password: PASSWORD });
    const all = await Promise.all(Array.from({ length: 60 }, (_, i) => api(server, 'POST', '/auth/login', { body: { email, password: `burst ${i}` } })));
    const statuses = all.map((r) => r.statusCode);
    assert.equal(statuses.filter((s) => s === 401).length, 10);
    assert.equal(statuses.filter((s) => s === 429).length, 50);
  });

  test('successful log-ins do not use the account up', async () => {
    const email = freshEmail();
    await server.hub.accounts.signUp({ name: 'Busy', email, password: PASSWORD });
    for (let i = 0; i < 15; i++) {
      const res = await api(server, 'POST', '/auth/login', { body: { email, password: PASSWORD } });
      assert.equal(res.statusCode, 200, `log-in ${i}`);
      await api(server, 'DELETE', `/tokens/${res.json().tokenId}`, { token: res.json().token });
    }
  });

  test('web log-in form: the same per-account limit holds behind a rotating X-Forwarded-For', async () => {
    const email = freshEmail();
    await server.hub.accounts.signUp({ name: 'Victim', email, password: PASSWORD });
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      const ip = rotatingIp();
      const page = await server.app.inject({ method: 'GET', url: '/login', headers: { 'x-forwarded-for': ip } });
      const cookie = String(page.headers['set-cookie']).split(';')[0];
      const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)![1];
      const res = await server.app.inject({
        method: 'POST', url: '/login',
        headers: { 'x-forwarded-for': ip, cookie, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ _csrf: csrf, email, password: i < 10 ? `guess ${i}` : PASSWORD }).toString(),
      });
      statuses.push(res.statusCode);
      if (i === 10) {
        assert.match(res.body, /Too many log-in attempts for this account/);
        assert.ok(Number(res.headers['retry-after']) > 0);
      }
    }
    assert.deepEqual(statuses, [...Array(10).fill(401), 429]);
  });

  test('API sign-up of a taken email: 10 tries, then 429 (it tells which emails have accounts)', async () => {
    const email = freshEmail();
    await server.hub.accounts.signUp({ name: 'Known', email, password: PASSWORD });
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await api(server, 'POST', '/auth/signup', { body: { name: 'x', email, password: PASSWORD } })).statusCode);
    assert.deepEqual(statuses, [...Array(10).fill(409), 429]);
  });

  test('API sign-ups are limited per address (no longer by the 20-a-second API rate)', async () => {
    const ip = rotatingIp();
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await api(server, 'POST', '/auth/signup', { ip, body: { name: 'x', email: freshEmail(), password: PASSWORD } })).statusCode);
    assert.deepEqual(statuses, [...Array(10).fill(201), 429, 429]);
  });
});

describe('device keys and API tokens', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ trustProxy: true, keyFailuresPerAddress: 5, keyFailuresPerDevice: 1000, authFailuresPerAddress: 1000 });
  });
  after(() => server.stop());

  test('WebSocket: wrong keys for a device from one address are refused for a while; the real device elsewhere still connects', async () => {
    const d = await makeDevice(server);
    const attacker = rotatingIp();
    for (let i = 0; i < 5; i++) assert.equal((await tryWs(server, d.id, 'WRONGKEY0000000', attacker)).code, 'E_AUTH');
    const limited = await tryWs(server, d.id, 'WRONGKEY0000000', attacker);
    assert.deepEqual([limited.code, limited.close], ['E_RATE_LIMITED', 4429]);
    assert.equal((await tryWs(server, d.id, d.key, attacker)).code, 'E_RATE_LIMITED', 'not even the right key is checked from there');
    assert.equal((await tryWs(server, d.id, d.key, rotatingIp())).open, true, 'the device at its own address connects');
  });

  test('HTTP: wrong keys for a device from one address get 429 after 5', async () => {
    const d = await makeDevice(server);
    const ip = rotatingIp();
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await server.app.inject({ method: 'GET', url: `/api/v1/update?device=${d.id}&key=WRONGKEY0000000&t=1`, headers: { 'x-forwarded-for': ip } });
      statuses.push(res.statusCode);
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429]);
    const ok = await server.app.inject({ method: 'GET', url: `/api/v1/update?device=${d.id}&key=${d.key}&t=1`, headers: { 'x-forwarded-for': rotatingIp() } });
    assert.equal(ok.statusCode, 200);
  });

  test('MQTT (over WebSocket): wrong passwords are refused as bad credentials, then as unavailable', async () => {
    const d = await makeDevice(server);
    const ip = rotatingIp();
    const attempt = (password: string, from: string) =>
      new Promise<string>((resolve) => {
        const client = mqtt.connect(`ws://127.0.0.1:${server.port}/mqtt`, {
          username: d.id, password, reconnectPeriod: 0, connectTimeout: 5000, wsOptions: { headers: { 'x-forwarded-for': from } },
        });
        client.on('connect', () => {
          client.end(true);
          resolve('connected');
        });
        client.on('error', (err) => {
          client.end(true);
          resolve(String((err as { code?: number }).code ?? err.message));
        });
      });
    const codes: string[] = [];
    for (let i = 0; i < 6; i++) codes.push(await attempt('WRONGKEY0000000', ip));
    assert.deepEqual(codes, ['4', '4', '4', '4', '4', '3']);
    assert.equal(await attempt(d.key, rotatingIp()), 'connected');
  });

  test('a guesser with many addresses only slows the device down: the right key still connects', async () => {
    const slow = await startTestServer({ trustProxy: true, keyFailuresPerAddress: 100, keyFailuresPerDevice: 3, authFailuresPerAddress: 1000 });
    try {
      const d = await makeDevice(slow);
      for (let i = 0; i < 3; i++) assert.equal((await tryWs(slow, d.id, 'WRONGKEY0000000', rotatingIp())).code, 'E_AUTH');
      const wrong = await tryWs(slow, d.id, 'WRONGKEY0000000', rotatingIp());
      assert.equal(wrong.code, 'E_AUTH');
      assert.ok(wrong.ms >= 900, `slowed down (${wrong.ms} ms)`);
      const right = await tryWs(slow, d.id, d.key, rotatingIp());
      assert.equal(right.open, true, 'never refused');
      assert.ok(right.ms >= 900, `slowed down too (${right.ms} ms)`);
    } finally {
      await slow.stop();
    }
  });

  test('wrong API tokens from one address: 429 after the limit; a right token elsewhere works', async () => {
    const strict = await startTestServer({ trustProxy: true, authFailuresPerAddress: 5 });
    try {
      const email = freshEmail();
      await strict.hub.accounts.signUp({ name: 'Tok', email, password: PASSWORD });
      const login = await api(strict, 'POST', '/auth/login', { body: { email, password: PASSWORD } });
      const token = login.json().token as string;
      const ip = rotatingIp();
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await api(strict, 'GET', '/devices', { ip, token: `iotc_${'x'.repeat(31)}${i}` })).statusCode);
      assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429]);
      const limited = await api(strict, 'GET', '/devices', { ip, token });
      assert.equal(limited.statusCode, 429);
      assert.match(limited.json().message, /wrong API tokens from your address.*IOTC_AUTH_FAILURES_PER_ADDRESS/);
      assert.equal((await api(strict, 'GET', '/devices', { token })).statusCode, 200);
    } finally {
      await strict.stop();
    }
  });

  test('spraying device ids from one address slows that address down; a right key from there still connects', async () => {
    const strict = await startTestServer({ trustProxy: true, authFailuresPerAddress: 5 });
    try {
      const d = await makeDevice(strict);
      const sprayer = rotatingIp();
      const update = async (id: string, key: string) => {
        const started = Date.now();
        const res = await strict.app.inject({ method: 'GET', url: `/api/v1/update?device=${id}&key=${key}&t=1`, headers: { 'x-forwarded-for': sprayer } });
        return { status: res.statusCode, ms: Date.now() - started };
      };
      for (let i = 0; i < 5; i++) {
        const r = await update(`SPRAY${String(i).padStart(15, '0')}`, 'WRONGKEY0000000');
        assert.equal(r.status, 401);
        assert.ok(r.ms < 900, `not slowed yet (${r.ms} ms)`);
      }
      const slowed = await update('SPRAY000000000000099', 'WRONGKEY0000000');
      assert.equal(slowed.status, 401);
      assert.ok(slowed.ms >= 900, `slowed (${slowed.ms} ms)`);
      const right = await update(d.id, d.key);
      assert.equal(right.status, 200, 'the real device on the same network is never refused');
      assert.ok(right.ms >= 900, `but slowed too (${right.ms} ms)`);
    } finally {
      await strict.stop();
    }
  });
});

test('memory stays bounded when an attacker rotates emails, device ids and addresses; the store forgets full buckets', async () => {
  const tmp = tempDir('iotc-limits-');
  const store = new SqliteStore(path.join(tmp.dir, 'iotc.db'));
  try {
    const limits = new AuthLimits({ loginFailuresPerAccount: 10, keyFailuresPerAddress: 10, keyFailuresPerDevice: 100, authFailuresPerAddress: 60 }, store, 1000);
    const fail = async () => {
      throw new IotcError('E_AUTH');
    };
    const started = Date.now();
    for (let i = 0; i < 5000; i++) {
      await limits.forAccount('log-in', `u${i}@example.com`, async () => null);
      await limits.deviceKey(`D${i}`, `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, fail).catch(() => undefined);
    }
    for (const [name, size] of Object.entries(limits.sizes())) assert.ok(size <= 1000, `${name}: ${size} entries`);
    // Accounts are counted in the store, each failure's bucket full again a minute later (10 per 10 minutes).
    assert.equal(await store.pruneAttempts(started), 0, 'nothing is full again yet');
    assert.equal(await store.pruneAttempts(Date.now() + 61_000), 5000, 'every bucket is full again after a minute, and goes');
    assert.equal(await store.pruneAttempts(Date.now() + 61_000), 0);
  } finally {
    await store.close();
    tmp.cleanup();
  }
});

describe('devices and tokens per user', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ trustProxy: true, maxDevicesPerUser: 5, maxTokensPerUser: 3 });
  });
  after(() => server.stop());

  test('a parallel burst of 40 device creations makes exactly 5; the rest get E_LIMIT naming the setting', async () => {
    const email = freshEmail();
    await server.hub.accounts.signUp({ name: 'Burst', email, password: PASSWORD });
    const { token } = (await api(server, 'POST', '/auth/login', { body: { email, password: PASSWORD } })).json();
    const all = await Promise.all(Array.from({ length: 40 }, (_, i) => api(server, 'POST', '/devices', { token, body: { name: `d${i}` } })));
    const statuses = all.map((r) => r.statusCode);
    assert.equal(statuses.filter((s) => s === 201).length, 5);
    const refused = all.filter((r) => r.statusCode === 403);
    assert.equal(refused.length, 35);
    assert.equal(refused[0].json().error, 'E_LIMIT');
    assert.match(refused[0].json().message, /limit of 5 devices.*--max-devices-per-user \/ IOTC_MAX_DEVICES_PER_USER/);
    assert.equal((await api(server, 'GET', '/devices', { token })).json().devices.length, 5);
  });

  test('tokens: each API log-in makes one; over the cap the log-in says which limit and what to do', async () => {
    const email = freshEmail();
    await server.hub.accounts.signUp({ name: 'Tokens', email, password: PASSWORD });
    const all = await Promise.all(Array.from({ length: 10 }, () => api(server, 'POST', '/auth/login', { body: { email, password: PASSWORD } })));
    assert.equal(all.filter((r) => r.statusCode === 200).length, 3);
    const refused = all.find((r) => r.statusCode === 403)!;
    assert.equal(refused.json().error, 'E_LIMIT');
    assert.match(refused.json().message, /limit of 3 API tokens.*IOTC_MAX_TOKENS_PER_USER.*revoke/);
    const { token, tokenId } = all.find((r) => r.statusCode === 200)!.json();
    assert.equal((await api(server, 'POST', '/tokens', { token, body: { name: 'one more' } })).statusCode, 403);
    await api(server, 'DELETE', `/tokens/${tokenId}`, { token });
    const again = await api(server, 'POST', '/auth/login', { body: { email, password: PASSWORD } });
    assert.equal(again.statusCode, 200, 'a revoked token frees its place');
  });

  test('the web app shows the limit on the new-device page', async () => {
    const user = await server.hub.accounts.signUp({ name: 'Web', email: freshEmail(), password: PASSWORD });
    for (let i = 0; i < 5; i++) await server.hub.accounts.createDevice(user.id, `d${i}`);
    const { cookieValue, session } = await new WebSessions(server.hub.store, 60_000, server.hub.log).create(user.id);
    const res = await server.app.inject({
      method: 'POST', url: '/devices/new',
      headers: { cookie: `iotc_session=${cookieValue}`, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ _csrf: session.csrfToken, name: 'one too many' }).toString(),
    });
    assert.equal(res.statusCode, 403);
    assert.match(res.body, /limit of 5 devices/);
  });

  test('the CLI keeps the same cap; the hub\'s admin lifts it for one command with the flag', async () => {
    const email = freshEmail();
    const user = await server.hub.accounts.signUp({ name: 'Cli', email, password: PASSWORD });
    for (let i = 0; i < 5; i++) await server.hub.accounts.createDevice(user.id, `d${i}`);
    const env = { IOTC_DATA_DIR: server.dataDir, IOTC_MAX_DEVICES_PER_USER: '5' };
    const cli = async (argv: string[]) => {
      const r = await iotc(argv, env);
      return { code: r.code, text: r.stdout + r.stderr };
    };
    const refused = await cli(['device', 'add', '--email', email, '--name', 'sixth']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.text, /limit of 5 devices.*--max-devices-per-user/);
    const lifted = await cli(['device', 'add', '--email', email, '--name', 'sixth', '--max-devices-per-user', '0']);
    assert.equal(lifted.code, 0, lifted.text);
    assert.equal((await server.hub.accounts.listDevices(user.id)).length, 6);
  });
});
