/** The iotc command line: in-process through run(argv, io) where it can be, as a real process for the simulators. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { cliDevice, cliHub, cliUser, iotc } from './cli-helpers.js';
import { runCli, tempDir, TestClient, waitFor, within } from './helpers.js';

// One server for the whole file; the CLI works on the same data dir beside it, as it would on a real machine.
const cli = cliHub();
const { env } = cli;

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

let n = 0;
async function user(): Promise<string> {
  const email = `cli${++n}@example.com`;
  await cliUser(env, email, `CLI user ${n}`);
  return email;
}

const device = (email: string, name = 'Thing') => cliDevice(env, email, name);

describe('help, usage errors and configuration', () => {
  test('--help and help print the usage and every setting, readable (no Markdown), exit 0', async () => {
    for (const argv of [['device', 'run', '--help'], ['client', 'run', '--help']]) {
      const r = await iotc(argv);
      assert.equal(r.code, 0, argv.join(' '));
      assert.match(r.stdout, /^Type a line and press Enter:\n {2}SENSOR VALUE {8}send a value/, `${argv.join(' ')} shows the simulator's help`);
    }
    for (const argv of [['--help'], ['help'], ['-h']]) {
      const r = await iotc(argv);
      assert.equal(r.code, 0, argv.join(' '));
      assert.match(r.stdout, /^iotc — IOTcommunicate/);
      assert.match(r.stdout, /iotc device add --email E --name N \[--json\]/);
      assert.match(r.stdout, /^ {2}--data-dir +IOTC_DATA_DIR +default \.\/data\n {6}Folder for the embedded SQLite database$/m);
      assert.match(r.stdout, /^ {2}--ping-interval +IOTC_PING_INTERVAL +default 25s$/m, 'durations as durations');
      assert.ok(!r.stdout.includes('| --- |') && !r.stdout.includes('`'), 'no Markdown table');
      assert.equal(r.stderr, '');
    }
  });

  test('iotc CMD --help and iotc help CMD print that command\'s help', async () => {
    for (const argv of [['device', 'add', '--help'], ['help', 'device', 'add'], ['device', 'add', '-h', '--email', 'x@example.com']]) {
      const r = await iotc(argv);
      assert.equal(r.code, 0, argv.join(' '));
      assert.match(r.stdout, /^Usage: iotc device add --email E --name N \[--json\]\n\nCreate a device; prints its id, its key \(shown once\) and its URLs\.\n/);
      assert.ok(!r.stdout.includes('iotc token add'), 'only that command');
    }
    const serve = await iotc(['serve', '--help']);
    assert.match(serve.stdout, /^Usage: iotc serve \[settings\]/);
    assert.match(serve.stdout, /^ {2}--mqtt-port +IOTC_MQTT_PORT +default 1883$/m, 'serve --help lists the settings');
    const user = await iotc(['user', 'add', '--help']);
    assert.match(user.stdout, /Without --password it asks for the password \(hidden as you type\)/);
    const group = await iotc(['device', '--help']);
    assert.match(group.stdout, /^Usage:\n {2}iotc device add .*\n {2}iotc device list /);
    assert.ok(!group.stdout.includes('iotc token'));
  });

  test('no command prints the usage and exits 2; a group without its subcommand lists them and exits 2', async () => {
    const r = await iotc([]);
    assert.equal(r.code, 2);
    assert.match(r.stdout, /Usage:/);
    // The summaries' column is not pushed out by the longest usage (rule add's): its summary goes below it.
    assert.match(r.stdout, /^ {2}iotc serve \[settings\] {2,40}run the server/m);
    assert.match(r.stdout, /^ {2}iotc rule add .*\[--json\]\n {20,70}a rule: when/m);
    const user = await iotc(['user']);
    assert.equal(user.code, 2);
    assert.match(user.stderr, /^iotc: which user command\?\nUsage:\n {2}iotc user add /);
  });

  test('an unknown command or option exits 2, suggesting the likely one, with a hint to --help', async () => {
    const cases: [string[], string][] = [
      [['frobnicate'], 'iotc: unknown command "frobnicate"\n'],
      [['device', 'explode', 'X'], 'iotc: unknown command "device explode X"\n'],
      [['devcie', 'add'], 'iotc: unknown command "devcie add" (did you mean "device add"?)\n'],
      [['sevre'], 'iotc: unknown command "sevre" (did you mean "serve"?)\n'],
      [['serve', '--bogus'], 'iotc: unknown option --bogus\n'],
      [['user', 'add', '--emial', 'me@example.com', '--name', 'Me'], 'iotc: unknown option --emial (did you mean --email?)\n'],
      [['device', 'list', '--emial=me@example.com'], 'iotc: unknown option --emial (did you mean --email?)\n'],
      [['config', '--data-dri', 'x'], 'iotc: unknown option --data-dri (did you mean --data-dir?)\n'],
      [['serve', '--email', 'me@example.com'], 'iotc: unknown option --email (iotc serve does not take it; see iotc serve --help)\n'],
      [['device', 'list', '--email'], 'iotc: --email needs a value, e.g. --email me@example.com\n'],
      [['device', 'list', '--json=yes', '--email', 'me@example.com'], 'iotc: --json takes no value\n'],
    ];
    for (const [argv, first] of cases) {
      const r = await iotc(argv, env);
      assert.equal(r.code, 2, argv.join(' '));
      assert.equal(r.stderr, `${first}Run "iotc --help" for usage.\n`, argv.join(' '));
      assert.equal(r.stdout, '');
    }
  });

  test('invalid settings exit 1 naming the setting, its value and what is expected', async () => {
    let r = await iotc(['serve'], { ...env, PORT: 'abc' });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'iotc: Invalid configuration:\n  PORT: "abc" is not a port number (0–65535)\n');
    r = await iotc(['serve', '--port', 'abc'], env);
    assert.equal(r.stderr, 'iotc: Invalid configuration:\n  --port: "abc" is not a port number (0–65535)\n');
    r = await iotc(['serve', '--port', '70000'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--port: "70000" is out of range: use 0–65535/);
    r = await iotc(['serve', '--max-frame', '10', '--ping-interval', '0', '--rate-limit', 'lots'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ {2}--max-frame: "10" is out of range: use 256 or more$/m);
    assert.match(r.stderr, /^ {2}--ping-interval="0": keep-alive cannot be turned off; use at least 100ms \(the default is 25s\)$/m);
    assert.match(r.stderr, /^ {2}--rate-limit: "lots" is not a whole number \(0 or more\)$/m);
    r = await iotc(['config'], { ...env, IOTC_RETENTION_AGE: 'forever', IOTC_BUS: 'carrier-pigeon' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /IOTC_RETENTION_AGE: "forever" is not a duration; use e\.g\. 500ms, 30s, 15m, 12h or 30d/);
    assert.match(r.stderr, /IOTC_BUS="carrier-pigeon": use "memory" \(one node\) or "nats:\/\/host:4222"/, 'every problem is listed at once');
    // The smallest accepted values still start.
    assert.equal((await iotc(['config', '--max-frame', '256', '--ping-interval', '100ms'], env)).code, 0);
  });

  test('config shows each setting in force and where it came from, durations as durations', async () => {
    const r = await iotc(['config', '--port', '1234', '--retention-age', '2d'], { ...env, PORT: '999', IOTC_RATE_LIMIT: '7', IOTC_PING_INTERVAL: '90000' });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^port +1234 +from --port$/m);
    assert.match(r.stdout, /^rate-limit +7 +from IOTC_RATE_LIMIT$/m);
    assert.match(r.stdout, /^retention-age +2d +from --retention-age$/m);
    assert.match(r.stdout, /^ping-interval +90s +from IOTC_PING_INTERVAL$/m);
    assert.match(r.stdout, /^session-ttl +30d +default$/m);
    assert.match(r.stdout, /^shutdown-timeout +10s +default$/m);
    assert.match(r.stdout, /^max-frame +65536 +default$/m);
    assert.match(r.stdout, /^data-dir +\S+ +from IOTC_DATA_DIR$/m);
    assert.ok(!/\b25000\b|\b2592000000\b/.test(r.stdout), 'no duration in milliseconds');
    const md = await iotc(['config', '--markdown']);
    assert.match(md.stdout, /^\| Flag \| Environment \| Default \| Meaning \|$/m);
  });

  test('config never prints a database password', async () => {
    const r = await iotc(['config'], { IOTC_STORE: 'postgres://iotc:s3cret@db.example:5432/iotc' });
    assert.equal(r.code, 0);
    assert.ok(!r.stdout.includes('s3cret'));
    assert.match(r.stdout, /^store +postgres:\/\/iotc:\*\*\*@db\.example:5432\/iotc +from IOTC_STORE$/m);
  });

  test('serve on a port already taken exits 1 saying so', async () => {
    const tmp = tempDir();
    try {
      const r = await iotc(['serve', '--port', String(cli.server.port), '--host', '127.0.0.1', '--mqtt-port', '0'], { IOTC_DATA_DIR: tmp.dir });
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `iotc: Port ${cli.server.port} is already in use: stop what runs there or pick another with --port / PORT\n`);
    } finally {
      tmp.cleanup();
    }
  });

  test('the server knows its real addresses in-process (server.addresses, hub.addresses) and publishes them in server.json', async () => {
    assert.equal(cli.server.hub.addresses, cli.server.addresses);
    assert.deepEqual(
      { port: cli.server.addresses.port, mqttPort: cli.server.addresses.mqttPort, mqttOff: cli.server.addresses.mqttOff, ws: cli.server.addresses.ws, mqttWs: cli.server.addresses.mqttWs },
      { port: cli.server.port, mqttPort: null, mqttOff: 'turned off (--mqtt-port 0)', ws: `ws://127.0.0.1:${cli.server.port}/ws`, mqttWs: `ws://127.0.0.1:${cli.server.port}/mqtt` },
    );
    const published = JSON.parse(fs.readFileSync(path.join(cli.server.dataDir, 'server.json'), 'utf8'));
    assert.equal(published.pid, process.pid);
    assert.deepEqual(published.addresses, cli.server.addresses);
  });

  test('a second server on the same data dir is refused, naming the first; the commands still work beside it', async () => {
    const r = await iotc(['serve', '--port', '0', '--host', '127.0.0.1', '--mqtt-port', '0'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^iotc: Another IOTcommunicate server \\(pid ${process.pid}, port ${cli.server.port}, started [^)]+\\) is already using ${escape(cli.server.dataDir)}/iotc\\.db\\. Stop it first`));
    await user();
  });
});

describe('user add', () => {
  test('creates an account; --json prints it', async () => {
    const r = await iotc(['user', 'add', '--email', 'New.Person@Example.com', '--name', 'New', '--password', 'long enough pw', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const printed = JSON.parse(r.stdout);
    assert.deepEqual({ email: printed.email, name: printed.name }, { email: 'new.person@example.com', name: 'New' });
    assert.equal(typeof printed.id, 'number');
    const plain = await iotc(['user', 'add', '--email', 'plain@example.com', '--name', 'P', '--password', 'long enough pw'], env);
    assert.equal(plain.stdout, 'created user plain@example.com\n');
  });

  test('a taken email, a short password or a malformed email exit 1 with the reason; a missing flag exits 2', async () => {
    const email = await user();
    const cases: [string[], number, string][] = [
      [['--email', email.toUpperCase(), '--name', 'Again', '--password', 'long enough pw'], 1, 'iotc: An account with this email already exists\n'],
      [['--email', 'short@example.com', '--name', 'S', '--password', 'short'], 1, 'iotc: password: password must be at least 8 characters\n'],
      [['--email', 'not-an-email', '--name', 'M', '--password', 'long enough pw'], 1, 'iotc: email: email is not a valid address\n'],
      [['--email', 'nopw@example.com', '--name', 'M'], 2, 'iotc: give the password: type it when asked (in a terminal), pipe it on stdin, or use --password P\nRun "iotc --help" for usage.\n'],
      [['--name', 'M', '--password', 'long enough pw'], 2, 'iotc: --email is required\nRun "iotc --help" for usage.\n'],
    ];
    for (const [args, code, stderr] of cases) {
      const r = await iotc(['user', 'add', ...args], env);
      assert.equal(r.code, code, args.join(' '));
      assert.equal(r.stderr, stderr);
      assert.equal(r.stdout, '');
    }
    assert.equal(await cli.server.hub.store.getUserByEmail('short@example.com'), null);
  });

  test('without --password, the password is read from piped stdin and never printed', async () => {
    const r = await iotc(['user', 'add', '--email', 'piped@example.com', '--name', 'Piped'], env, 'piped secret pw\nnext line ignored\n');
    assert.deepEqual(r, { code: 0, stdout: 'created user piped@example.com\n', stderr: '' });
    assert.ok(await cli.server.hub.accounts.logIn('piped@example.com', 'piped secret pw'), 'the first line is the password');
  });
});

describe('devices', () => {
  test('device add --json prints an id and key that connect to the server', async () => {
    const email = await user();
    const d = await device(email, 'Desk lamp');
    assert.deepEqual(Object.keys(d), ['id', 'key']);
    assert.match(d.id, /^[A-Z0-9]{20}$/);
    assert.match(d.key, /^[A-Z0-9]{15}$/);
    const dev = await TestClient.connect(cli.server.wsUrl, d.id, d.key, 'device');
    const app = await TestClient.connect(cli.server.wsUrl, d.id, d.key, 'client');
    await dev.request({ method: 'put', status: { sensor: 'temp', value: 19 } });
    assert.equal((await app.reading()).value, 19);
    await Promise.all([dev.close(), app.close()]);
  });

  test('device add without --json shows the id, the key once, and the URLs where the running server really listens', async () => {
    const email = await user();
    // --port 8888 is what this command's settings say; the server beside it listens elsewhere, and that wins.
    const r = await iotc(['device', 'add', '--email', email, '--name', 'Fan', '--port', '8888'], env);
    assert.equal(r.code, 0);
    const id = /id: {3}([A-Z0-9]{20})/.exec(r.stdout)?.[1];
    const key = /key: {2}([A-Z0-9]{15}) {3}\(shown only now: keep it\)/.exec(r.stdout)?.[1];
    assert.ok(id && key, r.stdout);
    assert.match(r.stdout, /^device "Fan" created$/m);
    assert.ok(r.stdout.includes(`  url:  ws://127.0.0.1:${cli.server.port}/ws?device=${id}&key=${key}\n`), r.stdout);
    assert.ok(r.stdout.includes(`  http: curl 'http://127.0.0.1:${cli.server.port}/api/v1/update?device=${id}&key=${key}&temp=21.5'\n`), r.stdout);
    // This test server runs without the MQTT listener: the CLI says so instead of printing a port.
    assert.ok(r.stdout.includes('  mqtt: OFF: turned off (--mqtt-port 0)\n'), r.stdout);
    assert.ok(r.stdout.includes(`MQTT over WebSocket works: ws://127.0.0.1:${cli.server.port}/mqtt`), r.stdout);
    assert.ok(!/HOST|:8888\b|1883/.test(r.stdout), 'no placeholder, no port where the hub is not');
    assert.equal(r.stderr, '', 'the server runs: nothing to warn about');
  });

  test('device add for an unknown user or with a bad name exits 1', async () => {
    let r = await iotc(['device', 'add', '--email', 'ghost@example.com', '--name', 'X'], env);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'iotc: No user with email ghost@example.com\n');
    r = await iotc(['device', 'add', '--email', await user(), '--name', 'x'.repeat(101)], env);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'iotc: name must be at most 100 characters\n');
  });

  test('device list shows the user devices, online while connected', async () => {
    const email = await user();
    let r = await iotc(['device', 'list', '--email', email], env);
    assert.equal(r.stdout, 'no devices\n');
    const a = await device(email, 'Alpha');
    const b = await device(email, 'Beta');
    await device(await user(), 'Someone else');
    const dev = await TestClient.connect(cli.server.wsUrl, a.id, a.key, 'device');
    await waitFor(async () => JSON.parse((await iotc(['device', 'list', '--email', email, '--json'], env)).stdout)[0].online, 3000, 'online');
    r = await iotc(['device', 'list', '--email', email, '--json'], env);
    const listed = JSON.parse(r.stdout);
    assert.deepEqual(listed.map((d: any) => [d.id, d.name, d.online]), [[a.id, 'Alpha', true], [b.id, 'Beta', false]]);
    assert.ok(!r.stdout.includes(a.key) && !r.stdout.includes('keyHash'));
    r = await iotc(['device', 'list', '--email', email], env);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0], new RegExp(`^${a.id} {2}online {3}last seen \\d{4}-.*Z {2}created .* {2}Alpha$`));
    assert.match(lines[1], new RegExp(`^${b.id} {2}offline {2}last seen never {2}created .* {2}Beta$`));
    assert.equal(r.stderr, `server: running, web app http://127.0.0.1:${cli.server.port}/, MQTT OFF\n`);
    await dev.close();
  });

  test('device rotate prints a new key; the server closes the old connections and takes the new key', async () => {
    const d = await device(await user());
    const dev = await TestClient.connect(cli.server.wsUrl, d.id, d.key, 'device');
    const r = await iotc(['device', 'rotate', d.id], env);
    assert.equal(r.code, 0);
    const key = new RegExp(`^new key for ${d.id}: ([A-Z0-9]{15}) {3}\\(shown only now; the old key no longer works\\)\n`).exec(r.stdout)?.[1];
    assert.ok(key, r.stdout);
    assert.ok(r.stdout.includes(`  url:  ws://127.0.0.1:${cli.server.port}/ws?device=${d.id}&key=${key}\n`), 'the new URL, ready to paste');
    assert.deepEqual(await within(dev.closed, 3000, 'close'), { code: 4401, reason: 'The device key was rotated' });
    const fresh = await TestClient.connect(cli.server.wsUrl, d.id, key, 'device');
    assert.equal((await fresh.request({ method: 'ping' })).ok, true);
    await fresh.close();
  });

  test('device delete removes the device; rotate and delete need an existing id', async () => {
    const email = await user();
    const d = await device(email);
    let r = await iotc(['device', 'delete', d.id], env);
    assert.deepEqual(r, { code: 0, stdout: `deleted device ${d.id}\n`, stderr: '' });
    assert.equal((await iotc(['device', 'list', '--email', email], env)).stdout, 'no devices\n');
    for (const argv of [['device', 'delete', d.id], ['device', 'rotate', d.id]]) {
      r = await iotc(argv, env);
      assert.deepEqual(r, { code: 1, stdout: '', stderr: 'iotc: No such device\n' }, argv.join(' '));
    }
    for (const argv of [['device', 'delete'], ['device', 'rotate']]) {
      r = await iotc(argv, env);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^iotc: give the device id: iotc device (delete|rotate) ID\n/);
    }
  });
});

// The simulators (device run, client run) are tested as real processes in cli-simulator.test.ts.
