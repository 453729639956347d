/** The CLI contract for rules: iotc rule add / list / delete, beside a running hub that acts on what it adds. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cliDevice, cliHub, cliUser, iotc } from './cli-helpers.js';
import { startReceiver } from './automation-helpers.js';
import type { Receiver } from './automation-helpers.js';
import { TestClient } from './helpers.js';

const cli = cliHub({ rulesTick: 50, webhookAllowPrivate: true }, { IOTC_WEBHOOK_ALLOW_PRIVATE: 'true', IOTC_SMTP_URL: 'smtp://127.0.0.1:2525' });
const { env } = cli;
let hook: Receiver;
let device: { id: string; key: string };
const email = 'rules-cli@example.com';

before(async () => {
  hook = await startReceiver();
  await cli.ready();
  await cliUser(env, email, 'Rules');
  device = await cliDevice(env, email, 'Greenhouse');
});
after(() => hook.close());

describe('iotc rule', () => {
  test('add (condition, offline, schedule, email), list and delete, as the issue spells them', async () => {
    const temp = await iotc(['rule', 'add', '--device', device.id, '--when', 'temp > 30', '--for', '1m', '--webhook', hook.url, '--json'], env);
    assert.equal(temp.code, 0, temp.stderr);
    const rule = JSON.parse(temp.stdout);
    assert.match(rule.id, /^r_[a-z2-7]{16}$/);
    assert.deepEqual(rule.trigger, { type: 'threshold', sensor: 'temp', op: '>', value: 30, forMs: 60_000 });
    assert.deepEqual(rule.actions, [{ type: 'webhook', url: hook.url, method: 'POST', preset: 'plain' }]);
    assert.match(rule.secret, /^whsec_/);

    const offline = await iotc(['rule', 'add', '--device', device.id, '--when', 'offline', '--for', '30s', '--webhook', hook.url], env);
    assert.equal(offline.code, 0, offline.stderr);
    assert.match(offline.stdout, /^rule r_\w+ created: when offline for 30s → webhook POST http:\/\/127\.0\.0\.1:\d+\/hook\n {2}webhook secret \(X-IOTC-Signature\): whsec_\w+\n$/);
    const every = await iotc(['rule', 'add', '--device', device.id, '--every', '0 7 * * *', '--set', 'pump=true', '--json'], env);
    assert.equal(every.code, 0, every.stderr);
    assert.deepEqual(JSON.parse(every.stdout).actions, [{ type: 'set', sensor: 'pump', value: true }]);
    assert.deepEqual(JSON.parse(every.stdout).trigger, { type: 'schedule', cron: '0 7 * * *' });
    const mail = await iotc(['rule', 'add', '--device', device.id, '--when', 'temp < 2', '--for', '10m', '--email', email, '--set', 'heater=true', '--json'], env);
    assert.equal(mail.code, 0, mail.stderr);
    assert.deepEqual(JSON.parse(mail.stdout).actions.map((a: { type: string }) => a.type), ['set', 'email']);

    const list = await iotc(['rule', 'list', '--device', device.id], env);
    assert.equal(list.code, 0);
    const lines = list.stdout.trim().split('\n');
    assert.equal(lines.length, 4);
    assert.match(lines[0], new RegExp(`^${rule.id}  on   when temp > 30 for 1m → webhook POST .*\\(never ran\\)$`));
    assert.match(lines[2], /when every "0 7 \* \* \*" → set pump=true/);
    const json = await iotc(['rule', 'list', '--device', device.id, '--json'], env);
    assert.equal(JSON.parse(json.stdout).length, 4);

    const del = await iotc(['rule', 'delete', rule.id], env);
    assert.deepEqual([del.code, del.stdout], [0, `deleted rule ${rule.id}\n`]);
    const gone = await iotc(['rule', 'delete', rule.id], env);
    assert.deepEqual([gone.code, gone.stderr], [1, 'iotc: No such rule\n']);
    assert.equal(JSON.parse((await iotc(['rule', 'list', '--device', device.id, '--json'], env)).stdout).length, 3);
  });

  test('mistakes are explained', async () => {
    const cases: [string[], number, RegExp][] = [
      [['rule', 'add', '--device', device.id, '--when', 'temp > 30'], 2, /give an action: --webhook URL, --set SENSOR=VALUE, --email ADDR or --notify/],
      [['rule', 'add', '--device', device.id, '--webhook', hook.url], 2, /give either --when CONDITION or --every SCHEDULE/],
      [['rule', 'add', '--device', device.id, '--when', 'temp is hot', '--webhook', hook.url], 1, /"temp is hot" is not a condition/],
      [['rule', 'add', '--device', device.id, '--when', 'temp > 1', '--for', 'soon', '--webhook', hook.url], 2, /--for: "soon" is not a duration/],
      [['rule', 'add', '--device', device.id, '--every', 'often', '--set', 'pump=true'], 1, /"often" is not a schedule/],
      [['rule', 'add', '--device', device.id, '--when', 'temp > 1', '--set', 'pump'], 2, /--set SENSOR=VALUE/],
      [['rule', 'add', '--device', device.id, '--when', 'temp > 1', '--webhook', 'ftp://x'], 1, /only http:\/\/ and https:\/\/ URLs/],
      [['rule', 'add', '--device', device.id, '--when', 'temp > 1', '--email', 'stranger@example.com'], 1, /own address/],
      [['rule', 'add', '--device', 'NOSUCHDEVICE00000000', '--when', 'temp > 1', '--notify'], 1, /No such device/],
      [['rule', 'list'], 2, /--device is required/],
      [['rule', 'delete'], 2, /give the rule id/],
    ];
    for (const [argv, code, pattern] of cases) {
      const r = await iotc(argv, env);
      assert.equal(r.code, code, `${argv.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern, argv.join(' '));
    }
  });

  test('a running hub acts on a rule the CLI added', async () => {
    const add = await iotc(['rule', 'add', '--device', device.id, '--when', 'level >= 10', '--webhook', hook.url, '--json'], env);
    assert.equal(add.code, 0, add.stderr);
    const rule = JSON.parse(add.stdout);
    // The hub reloads rules every few ticks; until then the rule is not yet known to it.
    await new Promise((r) => setTimeout(r, 1200));
    const dev = await TestClient.connect(cli.server.wsUrl, device.id, device.key, 'device');
    await dev.request({ method: 'put', status: { sensor: 'level', value: 12 } });
    const [got] = await hook.waitForHooks(1);
    assert.equal(got.body.rule, rule.id);
    assert.equal(got.body.event, 'triggered');
    assert.equal(got.body.value, 12);
    assert.ok(got.signed(rule.secret));
    await dev.close();
  });
});
