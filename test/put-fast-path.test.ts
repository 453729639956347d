import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRequest, request, describeIssues } from '../src/core/messages.js';

/** What the zod schema alone makes of a frame: the reference the hand-checked put must match exactly. */
function viaZod(text: string): unknown {
  const parsed = request.safeParse(JSON.parse(text));
  return parsed.success ? { ok: parsed.data } : { error: describeIssues(parsed.error) };
}

function viaParse(text: string): unknown {
  try {
    return { ok: parseRequest(text) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

const long = 'x'.repeat(64);
const puts = [
  '{"method":"put","status":{"sensor":"temp","value":20}}',
  '{"method":"put","status":{"sensor":"temp","value":20},"id":7}',
  '{"method":"put","status":{"sensor":"temp","value":20},"id":-0.5}',
  '{"method":"put","status":{"sensor":"temp","value":20},"id":"abc"}',
  `{"method":"put","status":{"sensor":"${long}","value":20},"id":"${long}"}`,
  `{"method":"put","status":{"sensor":"${long}x","value":20}}`,
  `{"method":"put","status":{"sensor":"temp","value":20},"id":"${long}x"}`,
  '{"method":"put","status":{"sensor":"temp","value":20},"id":1e400}',
  '{"method":"put","status":{"sensor":"temp","value":20},"id":null}',
  '{"method":"put","status":{"sensor":"temp","value":20},"id":true}',
  '{"method":"put","status":{"sensor":"temp","value":null}}',
  '{"method":"put","status":{"sensor":"temp","value":{"a":[1,2,{"b":"c"}]}},"extra":1}',
  '{"method":"put","status":{"sensor":"temp","value":1,"unknown":"dropped"}}',
  '{"method":"put","status":{"sensor":"temp"}}',
  '{"method":"put","status":{"sensor":"","value":1}}',
  '{"method":"put","status":{"sensor":5,"value":1}}',
  '{"method":"put","status":"temp"}',
  '{"method":"put","status":null}',
  '{"method":"put"}',
  '{"method":"put","status":[]}',
  '{"method":"put","status":[{"sensor":"a","value":1},{"sensor":"b","value":"x","more":true}],"id":3}',
  '{"method":"put","status":[{"sensor":"a","value":1},{"sensor":"b"}]}',
  '{"method":"put","status":[{"sensor":"a","value":1},null]}',
  `{"method":"put","status":[${Array(500).fill('{"sensor":"a","value":1}').join(',')}]}`,
  `{"method":"put","status":[${Array(501).fill('{"sensor":"a","value":1}').join(',')}]}`,
  '{"method":"put","status":[[{"sensor":"a","value":1}]]}',
];

test('the hand-checked put accepts, shapes and refuses exactly as the zod schema does', () => {
  for (const text of puts) assert.deepEqual(viaParse(text), viaZod(text), text.slice(0, 120));
});

test('a number that would be rounded is refused the same way whichever path reads the put', () => {
  const message = 'the number 12345678901234567890 is beyond ±2^53 and would lose precision; send it as a string';
  for (const text of [
    '{"method":"put","status":{"sensor":"temp","value":12345678901234567890},"id":1}',
    '{"method":"put","status":{"sensor":"temp","value":12345678901234567890,"extra":1},"id":"x"}',
    '{"method":"put","status":[{"sensor":"a","value":1},{"sensor":"b","value":[12345678901234567890]}]}',
    '{"method":"put","status":{"sensor":"temp","value":1},"id":12345678901234567890}',
  ]) assert.deepEqual(viaParse(text), { error: message }, text);
  assert.deepEqual(viaParse('{"method":"put","status":{"sensor":"temp","value":"12345678901234567890"}}'), viaZod('{"method":"put","status":{"sensor":"temp","value":"12345678901234567890"}}'));
});
