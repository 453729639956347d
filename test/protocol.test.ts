/** Every kind of bad input gets a clear {ok:false} reply and harms nobody; floods and oversize frames end the connection. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { closeReason } from '../src/core/errors.js';
import { parseRequest } from '../src/core/messages.js';
import { makeDevice, sleep, startTestServer, TestClient, within } from './helpers.js';
import type { Message, TestServer } from './helpers.js';

const METHODS = 'put, get, gets, history, sensors, ping, call, call_status, reply';

/** [frame as sent, expected reply]; the reply's id is the frame's when it has a usable one. */
const BAD: [string, Message][] = [
  ['not json', { error: 'Message is not valid JSON', code: 'E_BAD_MESSAGE' }],
  ['{"method":"put",', { error: 'Message is not valid JSON', code: 'E_BAD_MESSAGE' }],
  ['', { error: 'Message is not valid JSON', code: 'E_BAD_MESSAGE' }],
  ['[{"method":"ping"}]', { error: 'Message must be a JSON object with a "method"', code: 'E_BAD_MESSAGE' }],
  ['null', { error: 'Message must be a JSON object with a "method"', code: 'E_BAD_MESSAGE' }],
  ['42', { error: 'Message must be a JSON object with a "method"', code: 'E_BAD_MESSAGE' }],
  ['"put"', { error: 'Message must be a JSON object with a "method"', code: 'E_BAD_MESSAGE' }],
  ['{"id":1}', { error: `"method" is required: one of ${METHODS}`, code: 'E_BAD_MESSAGE', id: 1 }],
  ['{"method":7,"id":2}', { error: `"method" is required: one of ${METHODS}`, code: 'E_BAD_MESSAGE', id: 2 }],
  ['{"method":"fly","id":"x"}', { error: `Unknown method "fly": use one of ${METHODS}`, code: 'E_BAD_MESSAGE', id: 'x' }],
  ['{"method":"PUT","id":3}', { error: `Unknown method "PUT": use one of ${METHODS}`, code: 'E_BAD_MESSAGE', id: 3 }],
  ['{"method":"put","id":4}', { error: 'status: status must be {"sensor":…,"value":…} or an array of them', code: 'E_VALIDATION', id: 4 }],
  ['{"method":"put","status":5,"id":5}', { error: 'status: status must be {"sensor":…,"value":…} or an array of them', code: 'E_VALIDATION', id: 5 }],
  ['{"method":"put","status":"temp=5","id":6}', { error: 'status: status must be {"sensor":…,"value":…} or an array of them', code: 'E_VALIDATION', id: 6 }],
  ['{"method":"put","status":{"value":1},"id":7}', { error: 'status.sensor: sensor is required', code: 'E_VALIDATION', id: 7 }],
  ['{"method":"put","status":{"sensor":"temp"},"id":8}', { error: 'status.value: value is required (any JSON: number, string, boolean, object, array or null)', code: 'E_VALIDATION', id: 8 }],
  ['{"method":"put","status":{"sensor":"","value":1},"id":9}', { error: 'status.sensor: sensor must not be empty', code: 'E_VALIDATION', id: 9 }],
  [JSON.stringify({ method: 'put', status: { sensor: 's'.repeat(65), value: 1 }, id: 10 }), { error: 'status.sensor: sensor must be at most 64 characters', code: 'E_VALIDATION', id: 10 }],
  [JSON.stringify({ method: 'put', status: { sensor: 'a\u0000b', value: 1 }, id: 'nul' }), { error: 'status.sensor: sensor must not contain NUL characters', code: 'E_VALIDATION', id: 'nul' }],
  [JSON.stringify({ method: 'put', status: [{ sensor: 'ok', value: 1 }, { sensor: '\u0000', value: 2 }], id: 'nul2' }), { error: 'status.1.sensor: sensor must not contain NUL characters', code: 'E_VALIDATION', id: 'nul2' }],
  ['{"method":"put","status":{"sensor":5,"value":1},"id":11}', { error: 'status.sensor: sensor must be a string', code: 'E_VALIDATION', id: 11 }],
  ['{"method":"put","status":[],"id":12}', { error: 'status: a batch needs at least one reading', code: 'E_VALIDATION', id: 12 }],
  [
    JSON.stringify({ method: 'put', status: Array.from({ length: 501 }, (_, i) => ({ sensor: 'b', value: i })), id: 13 }),
    { error: 'status: a batch holds at most 500 readings', code: 'E_VALIDATION', id: 13 },
  ],
  [
    JSON.stringify({ method: 'put', status: [{ sensor: 'ok', value: 1 }, { sensor: '', value: 2 }], id: 14 }),
    { error: 'status.1.sensor: sensor must not be empty', code: 'E_VALIDATION', id: 14 },
  ],
  ['{"method":"put","status":[5],"id":15}', { error: 'status.0: a reading is {"sensor":…,"value":…}', code: 'E_VALIDATION', id: 15 }],
  ['{"method":"gets","id":16}', { error: 'sensor: sensor is required', code: 'E_VALIDATION', id: 16 }],
  ['{"method":"gets","sensor":["temp"],"id":17}', { error: 'sensor: sensor must be a string', code: 'E_VALIDATION', id: 17 }],
  ['{"method":"gets","sensor":"temp","write":"server","id":18}', { error: 'write: write must be "device" or "client"', code: 'E_VALIDATION', id: 18 }],
  ['{"method":"history","sensor":"temp","limit":"many","id":19}', { error: 'limit: limit must be a number', code: 'E_VALIDATION', id: 19 }],
  ['{"method":"history","sensor":"temp","limit":0,"id":20}', { error: 'limit: limit must be at least 1', code: 'E_VALIDATION', id: 20 }],
  ['{"method":"history","sensor":"temp","limit":10001,"id":21}', { error: 'limit: limit must be at most 10000', code: 'E_VALIDATION', id: 21 }],
  ['{"method":"history","sensor":"temp","limit":2.5,"id":22}', { error: 'limit: limit must be a whole number', code: 'E_VALIDATION', id: 22 }],
  ['{"method":"history","sensor":"temp","from":"yesterday","id":23}', { error: 'from: "yesterday" is not a time: use ms since epoch or an ISO 8601 date', code: 'E_VALIDATION', id: 23 }],
  ['{"method":"history","sensor":"temp","to":-5,"id":24}', { error: 'to: a time is ms since epoch (0 or more) or an ISO 8601 date', code: 'E_VALIDATION', id: 24 }],
  ['{"method":"history","sensor":"temp","from":true,"id":25}', { error: 'from: a time is ms since epoch (0 or more) or an ISO 8601 date', code: 'E_VALIDATION', id: 25 }],
  ['{"method":"sensors","write":1,"id":26}', { error: 'write: write must be "device" or "client"', code: 'E_VALIDATION', id: 26 }],
  ['{"method":"ping","id":{"n":1}}', { error: 'id: id must be a string or a number', code: 'E_VALIDATION' }],
  [JSON.stringify({ method: 'ping', id: 'i'.repeat(65) }), { error: 'id: id must be at most 64 characters', code: 'E_VALIDATION', id: 'i'.repeat(65) }],
];

describe('parseRequest', () => {
  for (const [frame, expected] of BAD) {
    test(`refuses ${frame.slice(0, 60)}`, () => {
      assert.throws(() => parseRequest(frame), (err: any) => err.code === expected.code && err.message === expected.error);
    });
  }

  test('accepts the documented forms and converts ISO times to ms', () => {
    assert.deepEqual(parseRequest('{"method":"put","status":{"sensor":"t","value":null},"id":1}'), { method: 'put', status: { sensor: 't', value: null }, id: 1 });
    assert.deepEqual(parseRequest('{"method":"put","status":[{"sensor":"a","value":1},{"sensor":"b","value":[2]}]}'), {
      method: 'put', status: [{ sensor: 'a', value: 1 }, { sensor: 'b', value: [2] }],
    });
    assert.deepEqual(parseRequest('{"method":"history","sensor":"t","from":"2024-01-02T03:04:05.678Z","to":1704164645999,"limit":"5"}'), {
      method: 'history', sensor: 't', from: Date.UTC(2024, 0, 2, 3, 4, 5, 678), to: 1704164645999, limit: 5,
    });
    assert.deepEqual(parseRequest('{"method":"gets","sensor":"t","write":"client"}'), { method: 'gets', sensor: 't', write: 'client' });
    assert.deepEqual(parseRequest('{"method":"sensors"}'), { method: 'sensors' });
    assert.deepEqual(parseRequest('{"method":"ping","id":"abc"}'), { method: 'ping', id: 'abc' });
  });
});

describe('bad input over a socket', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ rateLimit: 0 });
  });
  after(() => server.stop());

  test('each bad frame gets its {ok:false} reply; the connection and its neighbours keep working; nothing is stored', async () => {
    const d = await makeDevice(server);
    const dev = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    const twin = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    let n = 0;
    for (const [frame, expected] of BAD) {
      dev.send(frame);
      const reply = await dev.next();
      // A refusal without an id names no sensor here (none could be read) and carries value null, for the original clients.
      assert.deepEqual(reply, { ok: false, ...expected, ...('id' in expected ? {} : { sensor: null, value: null }) }, `reply to ${frame.slice(0, 80)}`);
      // The same connection still works...
      const ack = await dev.request({ method: 'put', status: { sensor: 'good', value: ++n } });
      assert.equal(ack.ok, true);
      // ...and its neighbours did not notice.
      assert.deepEqual(await app.reading(), { sensor: 'good', value: n, time: ack.time, write: 'device' });
      assert.equal((await twin.request({ method: 'ping' })).ok, true);
    }
    const sensors = await app.request({ method: 'sensors' });
    assert.deepEqual(sensors.sensors.map((r: any) => r.sensor), ['good'], 'no bad put stored anything');
    assert.equal((await app.request({ method: 'history', sensor: 'good', limit: 1000 })).readings.length, BAD.length);
    await Promise.all([dev.close(), app.close(), twin.close()]);
  });

  test('a binary frame holding JSON is read like a text frame', async () => {
    const d = await makeDevice(server);
    const dev = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    dev.ws.send(Buffer.from('{"method":"ping","id":"bin"}'), { binary: true });
    assert.equal((await dev.next((m) => m.id === 'bin')).ok, true);
    dev.ws.send(Buffer.from([0xff, 0xfe, 0x00]), { binary: true });
    assert.equal((await dev.next()).code, 'E_BAD_MESSAGE');
    assert.equal((await dev.request({ method: 'ping' })).ok, true);
    await dev.close();
  });
});

describe('the original protocol', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  test('a put without an id is fire-and-forget: stored and delivered, never answered; a failing one is answered', async () => {
    const d = await makeDevice(server);
    const dev = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    dev.send({ method: 'put', status: { sensor: 'temp', value: '22' } });
    dev.send({ method: 'put', status: [{ sensor: 'a', value: 1 }, { sensor: 'b', value: 2 }] });
    assert.deepEqual((await app.reading()).value, '22');
    await app.reading();
    await app.reading();
    dev.send({ method: 'put', status: { sensor: '', value: 1 } });
    assert.deepEqual(await dev.next(), { ok: false, error: 'status.sensor: sensor must not be empty', code: 'E_VALIDATION', sensor: null, value: null });
    // A refused reading's sensor is named, so an original script reading tick['sensor'] and tick['value'] carries on.
    dev.send({ method: 'put', status: { sensor: 'big', value: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]] } });
    const deep = await dev.next();
    assert.match(String(deep.error), /deeper than 32 levels/);
    assert.deepEqual({ ...deep, error: '' }, { ok: false, error: '', code: 'E_VALIDATION', sensor: 'big', value: null });
    // With an id, the durable ack as before.
    const ack = await dev.request({ method: 'put', status: { sensor: 'temp', value: 23 } });
    assert.deepEqual(Object.keys(ack).sort(), ['id', 'ok', 'time']);
    assert.deepEqual(dev.pending, [], 'nothing answered the puts without an id');
    await Promise.all([dev.close(), app.close()]);
  });

  test('get answers exactly like gets', async () => {
    const d = await makeDevice(server);
    const dev = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    await dev.request({ method: 'put', status: { sensor: 'LED', value: '1' } });
    for (const body of [{ sensor: 'LED' }, { sensor: 'LED', write: 'client' }, { sensor: 'nothing' }]) {
      const { id: _a, ...viaGet } = await dev.request({ method: 'get', ...body });
      const { id: _b, ...viaGets } = await dev.request({ method: 'gets', ...body });
      assert.deepEqual(viaGet, viaGets, JSON.stringify(body));
      assert.ok('sensor' in viaGet && 'value' in viaGet, 'an original client reads sensor and value from the answer');
    }
    dev.send({ method: 'get', sensor: 'LED' });
    assert.deepEqual((await dev.next()).value, '1', 'answered without an id too');
    await dev.close();
  });
});

describe('size and rate limits', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ maxFrameBytes: 1024, rateLimit: 5, rateBurst: 5 });
  });
  after(() => server.stop());

  test('a frame over the size limit closes that connection with 1009; others are unaffected', async () => {
    const d = await makeDevice(server);
    const dev = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    // At the limit is fine.
    const fits = JSON.stringify({ method: 'put', status: { sensor: 'big', value: '' }, id: 1 });
    dev.send(JSON.stringify({ method: 'put', status: { sensor: 'big', value: 'v'.repeat(1024 - fits.length) }, id: 1 }));
    assert.equal((await dev.next((m) => m.id === 1)).ok, true);
    dev.send(JSON.stringify({ method: 'put', status: { sensor: 'big', value: 'v'.repeat(2000) }, id: 2 }));
    const closed = await within(dev.closed, 5000, 'the socket to close');
    assert.equal(closed.code, 1009);
    assert.equal((await app.reading()).value.length, 1024 - fits.length, 'only the fitting reading arrived');
    assert.equal((await app.request({ method: 'gets', sensor: 'big' })).value.length, 1024 - fits.length);
    const again = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    assert.equal((await again.request({ method: 'ping' })).ok, true);
    await Promise.all([app.close(), again.close()]);
  });

  test('beyond the rate a message gets E_RATE_LIMITED, and the connection works again once it slows down', async () => {
    const d = await makeDevice(server);
    const dev = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    for (let i = 1; i <= 10; i++) dev.send({ method: 'put', status: { sensor: 'n', value: i }, id: i });
    const replies = [];
    for (let i = 1; i <= 10; i++) replies.push(await dev.next((m) => m.id === i));
    assert.deepEqual(replies.slice(0, 5).map((r) => r.ok), [true, true, true, true, true]);
    for (const r of replies.slice(5)) {
      assert.deepEqual(r, { ok: false, error: 'Too many messages: slow down (retry in 1s)', code: 'E_RATE_LIMITED', id: r.id });
    }
    // Refused puts were not stored.
    assert.deepEqual((await app.request({ method: 'history', sensor: 'n' })).readings.map((r: any) => r.value), [1, 2, 3, 4, 5]);
    await sleep(1100);
    assert.equal((await dev.request({ method: 'ping' })).ok, true);
    await Promise.all([dev.close(), app.close()]);
  });

  test('a flood well beyond the rate is closed with 4429; another connection of the device is unaffected', async () => {
    const d = await makeDevice(server);
    const dev = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    for (let i = 1; i <= 300; i++) dev.send({ method: 'ping', id: i });
    const closed = await within(dev.closed, 5000, 'the socket to close');
    assert.deepEqual(closed, { code: 4429, reason: 'Message flood: connection closed' });
    const limited = dev.pending.filter((m) => m.code === 'E_RATE_LIMITED');
    assert.ok(limited.length >= 100, `${limited.length} E_RATE_LIMITED replies before the close`);
    assert.ok(dev.pending.length < 300, 'the server stopped answering once it closed the connection');
    assert.equal((await app.request({ method: 'ping' })).ok, true);
    await app.close();
  });
});

describe('close reasons', () => {
  test('fit the 123 bytes RFC 6455 allows, without splitting a character', () => {
    assert.equal(closeReason('Wrong device id or key'), 'Wrong device id or key');
    const ascii = closeReason('x'.repeat(200));
    assert.equal(ascii, 'x'.repeat(120) + '...');
    const wide = closeReason('é'.repeat(100)); // 2 bytes each
    assert.ok(Buffer.byteLength(wide) <= 123, `${Buffer.byteLength(wide)} bytes`);
    assert.equal(wide, 'é'.repeat(60) + '...');
    const odd = closeReason('a' + '€'.repeat(60)); // 1 + 3n bytes: byte 120 falls inside a character
    assert.ok(Buffer.byteLength(odd) <= 123);
    assert.ok(!odd.includes('\uFFFD'), 'no half character');
    assert.equal(odd, 'a' + '€'.repeat(39) + '...');
  });
});
