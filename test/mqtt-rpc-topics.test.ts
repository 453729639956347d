/**
 * Which publishes are calls (src/doors/mqtt/rpc.ts), and which sensor a publish writes (topics.ts): every publish is
 * asked both, so the answers must be exact for near misses too.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRpcTopic } from '../src/doors/mqtt/rpc.js';
import { sensorFromTopic } from '../src/doors/mqtt/topics.js';

const D = 'ABCDEFGHIJ0123456789';

test('a publish is a call or an answer only under devices/ID/rpc/request|response/ of its own device', () => {
  assert.deepEqual(parseRpcTopic(`devices/${D}/rpc/request/abc`, D), { kind: 'request', id: 'abc' });
  assert.deepEqual(parseRpcTopic(`devices/${D}/rpc/response/x-1`, D), { kind: 'response', id: 'x-1' });
  assert.deepEqual(parseRpcTopic(`devices/${D}/rpc/request/`, D), { kind: 'request', id: null }, 'in the rpc space, no usable id');
  assert.deepEqual(parseRpcTopic(`devices/${D}/rpc/request/a/b`, D), { kind: 'request', id: null }, 'an id holds no level separator');
  assert.deepEqual(parseRpcTopic(`devices/${D}/rpc/request/${'i'.repeat(65)}`, D), { kind: 'request', id: null }, 'an id of at most 64 characters');
  for (const topic of [
    `devices/${D}/temp`,
    `devices/${D}/rpc`,
    `devices/${D}/rpc/other/x`,
    `devices/${D}X/rpc/request/a`,
    `devices/${D.slice(0, 19)}Z/rpc/request/a`,
    `device/${D}/rpc/request/a`,
    `devicesX${D}/rpc/request/a`,
    `xevices/${D}/rpc/request/a`,
    `devices/${D}/rpcx/request/a`,
    `/rpc/request/a`,
  ]) {
    assert.equal(parseRpcTopic(topic, D), null, topic);
  }
});

test('a publish writes a sensor only under devices/ID/ of its own device, with a name of at least one character', () => {
  assert.equal(sensorFromTopic(`devices/${D}/temp`, D), 'temp');
  assert.equal(sensorFromTopic(`devices/${D}/a/b/c`, D), 'a/b/c', 'a sensor name may hold /');
  assert.equal(sensorFromTopic(`devices/${D}/t`, D), 't');
  assert.equal(sensorFromTopic(`devices/${D}//`, D), '/');
  for (const topic of [
    `devices/${D}/`,
    `devices/${D}`,
    `devices/${D}X/temp`,
    `devices/${D.slice(0, 19)}/temp`,
    `devices/${D.slice(0, 19)}Z/temp`,
    `device/${D}/temp`,
    `devicesX${D}/temp`,
    `xevices/${D}/temp`,
    `Devices/${D}/temp`,
    `devices/${D.toLowerCase()}/temp`,
    `/devices/${D}/temp`,
    `devices//${D}/temp`,
    'devices',
    '',
  ]) {
    assert.equal(sensorFromTopic(topic, D), null, JSON.stringify(topic));
  }
});
