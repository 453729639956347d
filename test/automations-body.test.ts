/** A webhook's own JSON body: placeholders filled from the event, signed as sent, checked when the rule is saved. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { renderTemplate, templateProblem } from '../src/automations/body-template.js';
import { UsageError } from '../src/cli/io.js';
import { ruleFromFlags } from '../src/cli/rules.js';
import { IotcError } from '../src/core/errors.js';
import { startReceiver } from './automation-helpers.js';
import type { Receiver } from './automation-helpers.js';
import { makeDevice, startTestServer } from './helpers.js';
import type { TestServer } from './helpers.js';

let server: TestServer;
let hook: Receiver;
before(async () => {
  hook = await startReceiver();
  server = await startTestServer({ rulesTick: 50, webhookAllowPrivate: true });
});
after(async () => {
  await server.stop();
  await hook.close();
});

test('a placeholder alone keeps the value as it is; inside text it becomes text; keys and other values stay', () => {
  const e = { event: 'triggered' as const, device: 'D1', rule: 'r_1', name: 'frost', sensor: 'temp', value: { c: 1.5 }, time: 1000 };
  assert.deepEqual(renderTemplate({ v: '{{value}}', t: 'at {{ time }}: {{sensor}}={{value}} ({{event}})', '{{device}}': [1, null, '{{name}}'] }, e), {
    v: { c: 1.5 }, t: 'at 1000: temp={"c":1.5} (triggered)', '{{device}}': [1, null, 'frost'],
  });
  assert.equal(renderTemplate('{{sensor}}', { ...e, sensor: null }), null, 'a field the event lacks is null');
  assert.equal(templateProblem({ ok: '{{value}}' }), null);
  assert.match(templateProblem({ a: '{{temp}}' }) ?? '', /no such field: \{\{temp\}\}/);
  assert.match(templateProblem({ a: 'x'.repeat(5000) }) ?? '', /more than the 4096 allowed/);
});

test('the webhook receives the rendered body, signed as sent; a bad template is refused naming the field', async () => {
  const d = await makeDevice(server);
  const rule = await server.hub.rules.create(d.userId, d.id, {
    trigger: { type: 'threshold', sensor: 'temp', op: '<', value: 2 },
    actions: [{ type: 'webhook', url: hook.url, body: { text: '{{sensor}} is {{value}} on {{device}}', reading: '{{value}}', kind: '{{event}}' } }],
  });
  await server.hub.relay.put(d.id, 'device', [{ sensor: 'temp', value: 1.5 }]);
  const [h] = await hook.waitForHooks(1);
  assert.deepEqual(h.body, { text: `temp is 1.5 on ${d.id}`, reading: 1.5, kind: 'triggered' });
  assert.ok(h.signed(rule.secret));
  await assert.rejects(
    server.hub.rules.create(d.userId, d.id, { trigger: { type: 'changed', sensor: 't' }, actions: [{ type: 'webhook', url: hook.url, body: { a: '{{temperature}}' } }] }),
    (err: unknown) => err instanceof IotcError && err.code === 'E_VALIDATION' && /actions\.0\.body: .*\{\{temperature\}\}/.test(err.message),
  );
  await assert.rejects(
    server.hub.rules.create(d.userId, d.id, { trigger: { type: 'changed', sensor: 't' }, actions: [{ type: 'webhook', url: hook.url, preset: 'ntfy', body: {} }] }),
    (err: unknown) => err instanceof IotcError && /for plain webhooks; ntfy has its own/.test(err.message),
  );
});

test('the CLI takes it as --body JSON, with --webhook only', () => {
  const rule = ruleFromFlags({ when: 'temp > 30', webhook: ['https://example.com/h'], body: '{"t":"{{value}}"}' });
  assert.deepEqual(rule.actions, [{ type: 'webhook', url: 'https://example.com/h', method: 'POST', preset: 'plain', body: { t: '{{value}}' } }]);
  assert.throws(() => ruleFromFlags({ when: 'temp > 30', webhook: ['https://example.com/h'], body: '{t:1}' }), (e: unknown) => e instanceof UsageError && /--body: not JSON/.test(e.message));
  assert.throws(() => ruleFromFlags({ when: 'temp > 30', set: ['x=1'], body: '{}' }), (e: unknown) => e instanceof UsageError && /--body goes with --webhook/.test(e.message));
});
