/** The WebSocket door: refusals, key rotation and deletion (in-process and by the CLI), keep-alive, slow receivers, logs. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import path from 'node:path';
import { LogCapture, makeDevice, runCli, sleep, startTestServer, TestClient, within, waitFor } from './helpers.js';
import type { TestServer } from './helpers.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.stop());

function wsUrl(s: TestServer, query: Record<string, string>, pathname = '/ws'): string {
  return `${s.wsUrl}${pathname}?${new URLSearchParams(query)}`;
}

/** Opens a socket with exactly this query, sends a put the moment it opens, and returns what came back. */
async function refused(s: TestServer, query: Record<string, string>) {
  const c = new TestClient(wsUrl(s, query));
  await c.opened;
  c.send({ method: 'put', status: { sensor: 'sneaky', value: 1 }, id: 1 });
  const closed = await within(c.closed, 5000, 'the socket to close');
  return { closed, messages: c.pending };
}

async function nothingStored(s: TestServer, deviceId: string) {
  assert.equal(await s.hub.store.latest(deviceId, 'sneaky'), null);
  assert.deepEqual(await s.hub.store.latestAll(deviceId), []);
}

describe('refused connections', () => {
  test('a wrong key: {ok:false} E_AUTH, then close 4401 with a readable reason; nothing stored', async () => {
    const d = await makeDevice(server);
    const wrongKey = d.key.slice(0, 14) + (d.key.endsWith('A') ? 'B' : 'A');
    const r = await refused(server, { device: d.id, key: wrongKey, side: 'device' });
    assert.deepEqual(r.messages, [{ ok: false, error: 'Wrong device id or key', code: 'E_AUTH', sensor: null, value: null }]);
    assert.deepEqual(r.closed, { code: 4401, reason: 'Wrong device id or key' });
    await nothingStored(server, d.id);
  });

  test('an unknown device id gets exactly the same refusal as a wrong key', async () => {
    const d = await makeDevice(server);
    const r = await refused(server, { device: 'ZZZZZZZZZZZZZZZZZZZZ', key: d.key, side: 'client' });
    assert.deepEqual(r.messages, [{ ok: false, error: 'Wrong device id or key', code: 'E_AUTH', sensor: null, value: null }]);
    assert.deepEqual(r.closed, { code: 4401, reason: 'Wrong device id or key' });
  });

  test('missing device or key: E_AUTH 4401 saying what the URL needs', async () => {
    const d = await makeDevice(server);
    const queries: Record<string, string>[] = [{ device: d.id }, { key: d.key }, {}, { device: '', key: d.key }];
    for (const query of queries) {
      const r = await refused(server, query);
      assert.deepEqual(r.messages, [{ ok: false, error: 'The URL needs ?device=ID&key=KEY', code: 'E_AUTH', sensor: null, value: null }], JSON.stringify(query));
      assert.deepEqual(r.closed, { code: 4401, reason: 'The URL needs ?device=ID&key=KEY' });
    }
    await nothingStored(server, d.id);
  });

  test('a bad side: E_VALIDATION 4400, even with the right key', async () => {
    const d = await makeDevice(server);
    const r = await refused(server, { device: d.id, key: d.key, side: 'server' });
    assert.deepEqual(r.messages, [{ ok: false, error: 'side must be "device" or "client"', code: 'E_VALIDATION', sensor: null, value: null }]);
    assert.deepEqual(r.closed, { code: 4400, reason: 'side must be "device" or "client"' });
    await nothingStored(server, d.id);
  });

  test('without a side the connection is the device side', async () => {
    const d = await makeDevice(server);
    const dev = new TestClient(wsUrl(server, { device: d.id, key: d.key }));
    await dev.opened;
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    await dev.request({ method: 'put', status: { sensor: 't', value: 1 } });
    assert.equal((await app.reading()).write, 'device');
    await Promise.all([dev.close(), app.close()]);
  });

  test('an upgrade to another path is answered 404', async () => {
    const d = await makeDevice(server);
    const c = new TestClient(wsUrl(server, { device: d.id, key: d.key }, '/nowhere'));
    await assert.rejects(c.opened, /Unexpected server response: 404/);
  });
});

describe('key rotation', () => {
  test('Accounts.rotateKey closes every live connection of the device with 4401; the new key works, the old does not', async () => {
    const d = await makeDevice(server);
    const other = await makeDevice(server);
    const dev = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    const bystander = await TestClient.connect(server.wsUrl, other.id, other.key, 'device');

    const rotated = await server.hub.accounts.rotateKey(d.userId, d.id);
    assert.match(rotated.key, /^[A-Z0-9]{15}$/);
    assert.notEqual(rotated.key, d.key);
    for (const c of [dev, app]) assert.deepEqual(await within(c.closed, 5000, 'the socket to close'), { code: 4401, reason: 'The device key was rotated' });
    assert.equal((await bystander.request({ method: 'ping' })).ok, true, 'another device is untouched');

    const old = await refused(server, { device: d.id, key: d.key, side: 'device' });
    assert.equal(old.closed.code, 4401);
    const fresh = await TestClient.connect(server.wsUrl, d.id, rotated.key, 'device');
    assert.equal((await fresh.request({ method: 'put', status: { sensor: 't', value: 'after' } })).ok, true);
    // The server's poll of device events sees the same rotation again a moment later: the new key's connection stays.
    await sleep(1300);
    assert.equal((await fresh.request({ method: 'ping' })).ok, true);
    await Promise.all([fresh.close(), bystander.close()]);
  });

  test('`iotc device rotate` run as another process closes the old connections within about 2 s', async () => {
    const d = await makeDevice(server);
    const dev = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    await dev.request({ method: 'put', status: { sensor: 'temp', value: 7 } });
    await app.reading();

    const r = await runCli(['device', 'rotate', d.id, '--json'], { env: { IOTC_DATA_DIR: server.dataDir } });
    const cliDone = Date.now();
    assert.equal(r.code, 0, r.stderr);
    const printed = JSON.parse(r.stdout);
    assert.equal(printed.id, d.id);
    assert.match(printed.key, /^[A-Z0-9]{15}$/);

    for (const c of [dev, app]) assert.deepEqual(await within(c.closed, 5000, 'the socket to close'), { code: 4401, reason: 'The device key was rotated' });
    const took = Date.now() - cliDone;
    assert.ok(took < 2000, `closed ${took} ms after the CLI finished`);

    const fresh = await TestClient.connect(server.wsUrl, d.id, printed.key, 'client');
    assert.equal((await fresh.request({ method: 'gets', sensor: 'temp' })).value, 7, 'the data stays');
    assert.equal((await refused(server, { device: d.id, key: d.key, side: 'client' })).closed.code, 4401);
    await fresh.close();
  });
});

describe('device deletion', () => {
  test('closes live connections with 4404 and removes everything stored for the device', async () => {
    const d = await makeDevice(server);
    const keep = await makeDevice(server);
    const dev = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    const keepDev = await TestClient.connect(server.wsUrl, keep.id, keep.key, 'device');
    await dev.request({ method: 'put', status: [{ sensor: 'a', value: 1 }, { sensor: 'b', value: 2 }] });
    await app.request({ method: 'put', status: { sensor: 'led', value: true } });
    await keepDev.request({ method: 'put', status: { sensor: 'a', value: 'kept' } });
    // Let presence reach the store, so its removal is checked too.
    await waitFor(async () => (await server.hub.accounts.listDevices(d.userId))[0].online, 3000, 'presence');

    await assert.rejects(server.hub.accounts.deleteDevice(keep.userId, d.id), { code: 'E_NOT_FOUND' });
    await server.hub.accounts.deleteDevice(d.userId, d.id);
    for (const c of [dev, app]) assert.deepEqual(await within(c.closed, 5000, 'the socket to close'), { code: 4404, reason: 'The device was deleted' });

    assert.equal(await server.hub.store.getDevice(d.id), null);
    assert.deepEqual(await server.hub.store.latestAll(d.id), []);
    assert.deepEqual(await server.hub.store.history(d.id, 'a', { limit: 10 }), []);
    assert.deepEqual(await server.hub.accounts.listDevices(d.userId), []);
    await sleep(1200); // a presence flush after the close must not bring anything back
    const db = new Database(path.join(server.dataDir, 'iotc.db'), { readonly: true });
    try {
      for (const table of ['readings', 'latest', 'cursors', 'presence', 'devices']) {
        const col = table === 'devices' ? 'id' : 'device_id';
        const row = db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE ${col} = ?`).get(d.id) as { n: number };
        assert.equal(row.n, 0, `${table} still holds rows of the deleted device`);
      }
    } finally {
      db.close();
    }
    assert.equal((await keepDev.request({ method: 'gets', sensor: 'a' })).value, 'kept', "another user's data is untouched");
    assert.equal((await refused(server, { device: d.id, key: d.key, side: 'device' })).closed.code, 4401);
    await keepDev.close();
  });

  test('`iotc device delete` from another process while the device keeps writing: closed 4404, nothing left behind', async () => {
    const d = await makeDevice(server);
    const dev = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    let writing = true;
    let acked = 0;
    // The server learns of the deletion only at its next device-event poll; the device writes all the while.
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        dev.send({ method: 'put', status: { sensor: 'n', value: i }, id: i });
        await sleep(5);
        if (dev.ws.readyState !== dev.ws.OPEN) break;
      }
    })();
    await waitFor(() => dev.pending.filter((m) => m.ok).length > 20, 3000, 'writes to flow');
    const r = await runCli(['device', 'delete', d.id], { env: { IOTC_DATA_DIR: server.dataDir } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `deleted device ${d.id}`);
    for (const c of [dev, app]) assert.deepEqual(await within(c.closed, 5000, 'the socket to close'), { code: 4404, reason: 'The device was deleted' });
    writing = false;
    await writer;
    acked = dev.pending.filter((m) => m.ok).length;
    assert.ok(acked > 20);
    await sleep(1200);
    const db = new Database(path.join(server.dataDir, 'iotc.db'), { readonly: true });
    try {
      for (const table of ['readings', 'latest', 'cursors', 'presence']) {
        const row = db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE device_id = ?`).get(d.id) as { n: number };
        assert.equal(row.n, 0, `${table} still holds ${row.n} rows of the deleted device`);
      }
    } finally {
      db.close();
    }
  });
});

describe('keep-alive', () => {
  test('a peer that stops answering pings is dropped; the device then shows offline', async () => {
    const s = await startTestServer({ pingInterval: 200 });
    try {
      const d = await makeDevice(s);
      const dev = await TestClient.connect(s.wsUrl, d.id, d.key, 'device');
      const app = await TestClient.connect(s.wsUrl, d.id, d.key, 'client');
      const status = async () => (await s.hub.accounts.listDevices(d.userId))[0];
      await waitFor(async () => (await status()).online, 3000, 'online');
      assert.equal((await status()).clients, 1);

      // Six intervals of answering pings keep a connection open.
      await sleep(1200);
      assert.equal((await dev.request({ method: 'ping' })).ok, true);
      assert.equal((await status()).online, true);

      dev.pauseSocket();
      const paused = Date.now();
      await waitFor(() => s.hub.relay.presence.count(d.id, 'device') === 0, 3000, 'the silent device to be dropped');
      const dropped = Date.now() - paused;
      assert.ok(dropped <= 1000, `dropped after ${dropped} ms with a 200 ms ping interval`);
      await waitFor(async () => !(await status()).online, 2500, 'offline in listDevices');
      assert.ok((await status()).lastSeen! >= paused - 1500);
      dev.resumeSocket();
      assert.equal((await within(dev.closed, 5000, 'the socket to close')).code, 1006, 'dropped without a close handshake');

      // The client kept answering and is still there.
      assert.equal((await app.request({ method: 'ping' })).ok, true);
      assert.equal((await status()).clients, 1);
      await app.close();
    } finally {
      await s.stop();
    }
  });
});

describe('slow consumer', () => {
  test('a receiver that stops reading is closed with 4008 while the device and other receivers carry on', async (t) => {
    const logs = new LogCapture();
    const s = await startTestServer({ sendQueueBytes: 64 * 1024, rateLimit: 0 }, undefined, { logs });
    try {
      const d = await makeDevice(s);
      const dev = await TestClient.connect(s.wsUrl, d.id, d.key, 'device');
      const slow = await TestClient.connect(s.wsUrl, d.id, d.key, 'client');
      const fine = await TestClient.connect(s.wsUrl, d.id, d.key, 'client');
      slow.pauseSocket();

      const big = 'x'.repeat(30_000);
      let sent = 0;
      const slowClosing = () => logs.text.includes('closing slow receiver');
      // The kernel buffers a few MB before the server's own queue grows: keep writing until the server gives up.
      while (!slowClosing() && sent < 2000) {
        const acks = [];
        for (let i = 0; i < 20; i++) acks.push(dev.request({ method: 'put', status: { sensor: 'blob', value: `${sent++}:${big}` } }));
        for (const a of await Promise.all(acks)) assert.equal(a.ok, true, 'the device is served throughout');
      }
      assert.ok(slowClosing(), `no slow-receiver close after ${sent} readings of 30 kB`);
      t.diagnostic(`the server gave up on the paused receiver after ${sent} readings of 30 kB`);
      slow.resumeSocket();
      assert.deepEqual(await within(slow.closed, 5000, 'the socket to close'), { code: 4008, reason: 'Receiver too slow: its send queue is full' });

      // The device is still served, and the receiver that kept reading got every reading, in order.
      const last = await dev.request({ method: 'put', status: { sensor: 'blob', value: 'done' } });
      assert.equal(last.ok, true);
      for (let i = 0; i < sent; i++) assert.equal((await fine.reading()).value.split(':')[0], String(i));
      assert.equal((await fine.reading()).value, 'done');
      const entry = logs.entries.find((e) => e.msg === 'closing slow receiver: send queue full');
      assert.equal(entry?.deviceId, d.id);
      await Promise.all([dev.close(), fine.close()]);
    } finally {
      await s.stop();
    }
  });
});

describe('logs', () => {
  test('never contain a device key, whether the connection is refused, accepted or rotated', async () => {
    const logs = new LogCapture();
    const s = await startTestServer({ logLevel: 'trace', maxConnectionsPerDevice: 1, maxFrameBytes: 1024 }, undefined, { logs });
    try {
      const d = await makeDevice(s);
      const wrongKey = 'WRONGKEY1234567';
      const bad = new TestClient(`${s.wsUrl}/ws?device=${d.id}&key=${wrongKey}&side=device`);
      assert.equal((await within(bad.closed, 5000, 'the socket to close')).code, 4401);
      const dev = await TestClient.connect(s.wsUrl, d.id, d.key, 'device');
      await dev.request({ method: 'put', status: { sensor: 'temp', value: 1 } });
      dev.send('not json');
      const extra = await TestClient.connect(s.wsUrl, d.id, d.key, 'device');
      assert.equal((await within(extra.closed, 5000, 'the socket to close')).code, 4429);
      const huge = await TestClient.connect(s.wsUrl, d.id, d.key, 'client');
      huge.send('x'.repeat(5000));
      assert.equal((await within(huge.closed, 5000, 'the socket to close')).code, 1009);
      const rotated = await s.hub.accounts.rotateKey(d.userId, d.id);
      assert.equal((await within(dev.closed, 5000, 'the socket to close')).code, 4401);
      await s.stop();

      const text = logs.text;
      assert.match(text, /websocket refused: wrong device id or key/, 'the refusal was logged');
      assert.ok(text.includes(d.id), 'the device id may be logged');
      for (const secret of [d.key, wrongKey, rotated.key]) assert.ok(!text.includes(secret), `the log contains the key ${secret}`);
    } finally {
      await s.stop();
    }
  });
});
