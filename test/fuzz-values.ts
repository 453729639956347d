/**
 * Hostile and random JSON for the fuzz suite, as text (so that values JSON.stringify cannot make — 1e400,
 * integers beyond 2^53, 6 000-deep nesting — reach the server exactly as an attacker would type them).
 */
import fc from 'fast-check';

const deepArray = (d: number) => '['.repeat(d) + ']'.repeat(d);
const deepObject = (d: number) => '{"a":'.repeat(d) + '1' + '}'.repeat(d);

/** Numbers at and beyond what a double or a safe integer holds. */
export const hostileNumberText = fc.constantFrom(
  '1e400', '-1e400', '1e-400', '0.1e999999', '123456789012345678901234567890', '9007199254740993', '-9007199254740993',
  '-0', '1.7976931348623157e308', '5e-324', '99999999999999999999',
);

/** Text that may be JSON or not, some long, some with characters that trip encoders. */
export const hostileStringText = fc.oneof(
  fc.string().map((s) => JSON.stringify(s)),
  fc.string({ unit: 'binary', maxLength: 40 }).map((s) => JSON.stringify(s)),
  fc.constantFrom('"\\u0000"', '"\\ud800"', '"\\udfff\\ud800"', '"=cmd|\' /C calc\'!A0"', '"-2+3+cmd|x"', '"<script>alert(1)</script>"', '"%00"', '"../../etc/passwd"'),
  fc.constantFrom(1_000, 30_000, 60_000, 70_000).map((n) => JSON.stringify('x'.repeat(n))),
);

/** The JSON text of a value: random JSON, or one of the shapes the hardening issue names. */
export const valueText: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.json({ maxDepth: 4 }) },
  { weight: 2, arbitrary: hostileNumberText },
  { weight: 2, arbitrary: hostileStringText },
  { weight: 2, arbitrary: fc.integer({ min: 50, max: 7_000 }).map(deepArray) },
  { weight: 1, arbitrary: fc.integer({ min: 50, max: 5_000 }).map(deepObject) },
  { weight: 1, arbitrary: fc.constantFrom('null', 'true', '{}', '[]', '""') },
);

/** Sensor names: ordinary ones, the limits' edges and characters with a meaning somewhere (MQTT, CSV, SQL). */
export const sensorText = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('"temp"', '"v"', '"led"', '"a/b/c"', '"=1+2"', '"-1+2"', '"\\"; DROP TABLE readings; --"') },
  { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 70 }).map((s) => JSON.stringify(s)) },
  { weight: 1, arbitrary: fc.constantFrom('""', '"#"', '"+"', '"a\\u0000b"', JSON.stringify('s'.repeat(65)), '5', 'null', '{}', '[]') },
  // Many distinct sensors: the per-device sensor limit is among what the suite walks into.
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 1e9 }).map((n) => `"s${n}"`) },
);

export const readingText = fc.tuple(sensorText, valueText).map(([s, v]) => `{"sensor":${s},"value":${v}}`);

/** A reading or a batch: small batches, and the largest allowed (500) or one more. */
export const statusText = fc.oneof(
  { weight: 4, arbitrary: readingText },
  { weight: 2, arbitrary: fc.array(readingText, { minLength: 0, maxLength: 6 }).map((a) => `[${a.join(',')}]`) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(500, 501), valueText).map(([n, v]) => `[${Array.from({ length: n }, (_, i) => `{"sensor":"b${i % 7}","value":${v.length < 60 ? v : '1'}}`).join(',')}]`) },
  { weight: 1, arbitrary: fc.constantFrom('null', '"temp"', '5', '{"sensor":"x"}', '{"value":1}') },
);

/** Request ids: fine ones and every wrong type. */
export const idText = fc.oneof(fc.integer().map(String), fc.constantFrom('"abc"', JSON.stringify('i'.repeat(65)), '{}', '[]', 'null', '1e400', 'true'));

const timeText = fc.oneof(fc.constantFrom('0', '-1', '99999999999999999999', '1e400', '"2026-13-45"', '"2026-11-30T00:00:00Z"', '"yesterday"', 'null'), fc.integer().map(String));
const limitText = fc.oneof(fc.constantFrom('10000', '10001', '0', '-1', '"abc"', '1.5', '1e400', '1'), fc.integer().map(String));

/** One protocol message as JSON text, meant or malformed, of every method and of none. */
export const messageText: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(idText, statusText).map(([id, st]) => `{"method":"put","id":${id},"status":${st}}`) },
  { weight: 2, arbitrary: fc.tuple(idText, sensorText, timeText, timeText, limitText).map(([id, s, f, t, l]) => `{"method":"history","id":${id},"sensor":${s},"from":${f},"to":${t},"limit":${l}}`) },
  { weight: 1, arbitrary: fc.tuple(idText, sensorText).map(([id, s]) => `{"method":"gets","id":${id},"sensor":${s},"write":"client"}`) },
  { weight: 1, arbitrary: fc.tuple(idText, fc.constantFrom('"device"', '"client"', '"both"', '5')).map(([id, w]) => `{"method":"sensors","id":${id},"write":${w}}`) },
  { weight: 1, arbitrary: idText.map((id) => `{"method":"ping","id":${id}}`) },
  { weight: 2, arbitrary: fc.tuple(fc.oneof(fc.string().map((s) => JSON.stringify(s)), fc.constantFrom('5', 'null', '{}', '"PUT"', '"__proto__"', '"constructor"')), idText).map(([m, id]) => `{"method":${m},"id":${id}}`) },
  { weight: 1, arbitrary: fc.constantFrom('{"__proto__":{"method":"put"},"method":"put","id":1,"status":{"sensor":"p","value":1}}', '[]', '5', '"put"', 'null', '{}', '{"method":"put"}') },
  { weight: 2, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: valueText },
);
