/**
 * The MQTT door's own framing (src/doors/mqtt/framing.ts and fast-publish.ts) against mqtt-packet, the library
 * the broker reads and writes with: what the door writes must be what mqtt-packet writes, byte for byte, and what
 * the door reads itself must be what mqtt-packet reads.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import mqttPacket from 'mqtt-packet';
import { frameLength, publishFrame } from '../src/doors/mqtt/framing.js';
import { parsePublish } from '../src/doors/mqtt/fast-publish.js';

// Around each length where the remaining length takes one more byte (127/128, 16383/16384, 2097151/2097152).
const PAYLOAD_SIZES = [0, 1, 100, 105, 106, 107, 108, 109, 200, 16_360, 16_365, 16_366, 16_367, 16_368, 16_400, 2_097_130, 2_097_134, 2_097_135, 2_097_136, 2_097_140];
const TOPICS = ['devices/ABCDEFGHIJ0123456789/temp', 'devices/X/température/😀'];

test('a QoS 0 PUBLISH the door writes is byte for byte the one mqtt-packet generates, text or bytes, retained or not', () => {
  let checked = 0;
  for (const size of PAYLOAD_SIZES) {
    for (const topic of TOPICS) {
      for (const retain of [false, true]) {
        // Text of `size` bytes with two-byte characters in it, and the same number of raw bytes.
        const text = 'é'.repeat(Math.floor(size / 2)) + 'a'.repeat(size % 2);
        for (const payload of [text, Buffer.alloc(size, 0xa5)]) {
          const expected = mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 0, retain, dup: false } as mqttPacket.IPublishPacket, { protocolVersion: 4 });
          const written = publishFrame(topic, payload, retain);
          assert.ok(written.equals(expected), `topic ${topic}, ${size} bytes, retain ${retain}, ${typeof payload}`);
          checked++;
        }
      }
    }
  }
  assert.equal(checked, PAYLOAD_SIZES.length * TOPICS.length * 4);
});

test('a PUBLISH the door reads off the wire is what mqtt-packet parses; any form the broker must judge is left to it', () => {
  for (const [qos, messageId] of [[0, undefined], [1, 1], [1, 65535]] as const) {
    for (const size of [0, 5, 200, 20_000]) {
      for (const retain of [false, true]) {
        for (const dup of qos === 1 ? [false, true] : [false]) {
          const topic = TOPICS[1];
          const payload = Buffer.alloc(size, 7);
          const bytes = mqttPacket.generate({ cmd: 'publish', topic, payload, qos, messageId, retain, dup } as mqttPacket.IPublishPacket);
          // In the middle of a read, as the wire offers it.
          const buf = Buffer.concat([Buffer.from([1, 2, 3]), bytes, Buffer.from([9])]);
          const length = frameLength(buf, 3, 1 << 30);
          assert.equal(length, bytes.length);
          const got = parsePublish(buf, 3, length);
          const parser = mqttPacket.parser({ protocolVersion: 4 });
          let expected: mqttPacket.IPublishPacket | undefined;
          parser.on('packet', (p) => (expected = p as mqttPacket.IPublishPacket));
          parser.parse(bytes);
          assert.ok(got && expected);
          assert.deepEqual(
            { topic: got.topic, payload: Buffer.from(got.payload), qos: got.qos, retain: got.retain, dup: got.dup, messageId: got.messageId },
            { topic: expected.topic, payload: Buffer.from(expected.payload), qos: expected.qos, retain: expected.retain, dup: expected.dup, messageId: expected.messageId },
          );
        }
      }
    }
  }
  const publish = (topic: string, qos: number, messageId?: number) => mqttPacket.generate({ cmd: 'publish', topic, payload: 'x', qos, messageId, retain: false, dup: false } as mqttPacket.IPublishPacket);
  const refused: [string, Buffer][] = [
    ['QoS 2', publish('devices/X/t', 2, 7)],
    ['QoS 3', Buffer.from([0x36, 0x04, 0x00, 0x01, 0x61, 0x31])],
    ['a single-level wildcard', publish('devices/X/+', 1, 7)],
    ['a multi-level wildcard', publish('devices/#', 0)],
    ['an empty topic', Buffer.from([0x30, 0x03, 0x00, 0x00, 0x31])],
    ['33 levels', publish(Array.from({ length: 33 }, () => 'a').join('/'), 0)],
    ['message id 0', Buffer.from([0x32, 0x06, 0x00, 0x01, 0x61, 0x00, 0x00, 0x31])],
    ['a topic longer than the packet', Buffer.from([0x30, 0x03, 0x00, 0x09, 0x61])],
    ['a QoS 1 packet without its message id', Buffer.from([0x32, 0x03, 0x00, 0x01, 0x61])],
    ['a SUBSCRIBE', mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a', qos: 0 }] } as mqttPacket.ISubscribePacket)],
  ];
  for (const [what, bytes] of refused) assert.equal(parsePublish(bytes, 0, bytes.length), null, what);
  const deepest = publish(Array.from({ length: 32 }, () => 'a').join('/'), 0);
  assert.ok(parsePublish(deepest, 0, deepest.length), '32 levels are taken');
});
