/** A reading's wire text (src/core/reading-wire.ts), written out piece by piece: it must be JSON.stringify's, byte for byte. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readingJson } from '../src/core/reading-wire.js';
import type { StoredReading } from '../src/store/types.js';

const reading = (sensor: string, value: unknown, side: 'device' | 'client' = 'device'): StoredReading => ({ seq: 1, deviceId: 'D', sensor, side, value, time: 1_764_600_000_123 });
const expected = (r: StoredReading, extra?: Record<string, unknown>) => JSON.stringify({ sensor: r.sensor, value: r.value, time: r.time, write: r.side, ...extra });

test("every name and value, both sides, with and without the value's text: the same text as JSON.stringify of the reading", () => {
  const names = ['temp', 'a/b/c', 'say "hi"', 'back\\slash', 'tab\there', 'température', '温度', '😀', 'x'.repeat(200), '\u2028', ''];
  const values = [21.5, -0, 0, true, null, 'on', 'line\nbreak', { a: [1, { b: 'c' }] }, [], 1e21, 'x'.repeat(1000)];
  for (const name of names) {
    for (const value of values) {
      for (const side of ['device', 'client'] as const) {
        const r = reading(name, value, side);
        assert.equal(readingJson(r), expected(r));
        assert.equal(readingJson(r, undefined, JSON.stringify(value)), expected(r));
      }
    }
  }
});

test('extra fields, and a value the JSON form has no text for, take the general way', () => {
  const r = reading('temp', 5);
  assert.equal(readingJson(r, { sync: true }), expected(r, { sync: true }));
  const u = reading('temp', undefined);
  assert.equal(readingJson(u), expected(u));
});

test('more names than are kept: each reading still gets its own name', () => {
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 3000; i++) {
      const r = reading(`s${i}`, i, i % 2 ? 'client' : 'device');
      assert.equal(readingJson(r), expected(r));
    }
  }
});
