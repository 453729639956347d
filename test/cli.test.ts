/** The iotc command line: in-process through run(argv, io) where it can be, as a real process for the simulators. */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { run } from '../src/cli/main.js';
import { startTestServer, TestClient, waitFor, within } from './helpers.js';
import type { TestServer } from './helpers.js';

/** Runs a command in-process with its own stdin/stdout/stderr and environment. */
async function iotc(argv: string[], env: NodeJS.ProcessEnv = {}, input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  stdin.end(input);
  const code = await run(argv, { stdin, stdout, stderr, env: { IOTC_LOG_LEVEL: 'silent', ...env } });
  return { code, stdout: out, stderr: err };
}

// One server for the whole file; the CLI works on the same data dir beside it, as it would on a real machine.
let server: TestServer;
let env: NodeJS.ProcessEnv;
before(async () => {
  server = await startTestServer();
  env = { IOTC_DATA_DIR: server.dataDir };
});
after(() => server.stop());

let n = 0;
async function user(): Promise<string> {
  const email = `cli${++n}@example.com`;
  const r = await iotc(['user', 'add', '--email', email, '--name', `CLI user ${n}`, '--password', 'long enough pw'], env);
  assert.equal(r.code, 0, r.stderr);
  return email;
}

async function device(email: string, name = 'Thing'): Promise<{ id: string; key: string }> {
  const r = await iotc(['device', 'add', '--email', email, '--name', name, '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

describe('help, usage errors and configuration', () => {
  test('--help and help print the usage and every setting, exit 0', async () => {
    for (const argv of [['device', 'run', '--help'], ['client', 'run', '--help']]) {
      const r = await iotc(argv);
      assert.equal(r.code, 0, argv.join(' '));
      assert.match(r.stdout, /^Type a line and press Enter:\n {2}SENSOR VALUE {8}send a value/, `${argv.join(' ')} shows the simulator's help`);
    }
    for (const argv of [['--help'], ['help'], ['-h'], ['device', 'add', '--help']]) {
      const r = await iotc(argv);
      assert.equal(r.code, 0, argv.join(' '));
      assert.match(r.stdout, /^iotc — IOTcommunicate/);
      assert.match(r.stdout, /iotc device add --email E --name N \[--json\]/);
      assert.match(r.stdout, /\| `--data-dir` \| `IOTC_DATA_DIR` \| `\.\/data` \|/);
      assert.equal(r.stderr, '');
    }
  });

  test('no command prints the usage and exits 2', async () => {
    const r = await iotc([]);
    assert.equal(r.code, 2);
    assert.match(r.stdout, /Usage:/);
  });

  test('an unknown command or option exits 2 with a hint to --help', async () => {
    const cases: [string[], string][] = [
      [['frobnicate'], 'iotc: unknown command "frobnicate"'],
      [['device', 'explode', 'X'], 'iotc: unknown command "device explode X"'],
      [['user'], 'iotc: unknown command "user"'],
      [['serve', '--bogus'], "iotc: Unknown option '--bogus'"],
      [['device', 'list', '--email'], "iotc: Option '--email <value>' argument missing"],
    ];
    for (const [argv, first] of cases) {
      const r = await iotc(argv, env);
      assert.equal(r.code, 2, argv.join(' '));
      assert.ok(r.stderr.startsWith(first), `${argv.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /\nRun "iotc --help" for usage\.\n$/);
      assert.equal(r.stdout, '');
    }
  });

  test('invalid settings exit 1 naming the setting, its value and what is expected', async () => {
    let r = await iotc(['serve'], { ...env, PORT: 'abc' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^iotc: Invalid configuration:\n {2}PORT="abc": /);
    r = await iotc(['serve', '--port', '70000'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--port="70000": .*65535/);
    r = await iotc(['config'], { ...env, IOTC_RETENTION_AGE: 'forever', IOTC_BUS: 'carrier-pigeon' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /IOTC_RETENTION_AGE="forever": "forever" is not a duration; use e\.g\. 500ms, 30s, 15m, 12h or 30d/);
    assert.match(r.stderr, /IOTC_BUS="carrier-pigeon": use "memory" \(one node\) or "nats:\/\/host:4222"/, 'every problem is listed at once');
  });

  test('config shows the settings in effect, flags over environment over defaults', async () => {
    const r = await iotc(['config', '--port', '1234', '--retention-age', '2d'], { ...env, PORT: '999', IOTC_RATE_LIMIT: '7' });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^port = 1234$/m);
    assert.match(r.stdout, /^rateLimit = 7$/m);
    assert.match(r.stdout, /^retentionAge = 172800000$/m);
    assert.match(r.stdout, /^maxFrameBytes = 65536$/m);
    const md = await iotc(['config', '--markdown']);
    assert.match(md.stdout, /^\| Flag \| Environment \| Default \| Meaning \|$/m);
  });

  test('config never prints a database password', async () => {
    const r = await iotc(['config'], { IOTC_STORE: 'postgres://iotc:s3cret@db.example:5432/iotc' });
    assert.equal(r.code, 0);
    assert.ok(!r.stdout.includes('s3cret'));
    assert.match(r.stdout, /^store = "postgres:\/\/iotc:\*\*\*@db\.example:5432\/iotc"$/m);
  });

  test('serve on a port already taken exits 1 saying so', async () => {
    const r = await iotc(['serve', '--port', String(server.port), '--host', '127.0.0.1'], env);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `iotc: Port ${server.port} is already in use: stop what runs there or pick another with --port / PORT\n`);
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
      [['--email', 'nopw@example.com', '--name', 'M'], 2, 'iotc: --password is required\nRun "iotc --help" for usage.\n'],
      [['--name', 'M', '--password', 'long enough pw'], 2, 'iotc: --email is required\nRun "iotc --help" for usage.\n'],
    ];
    for (const [args, code, stderr] of cases) {
      const r = await iotc(['user', 'add', ...args], env);
      assert.equal(r.code, code, args.join(' '));
      assert.equal(r.stderr, stderr);
      assert.equal(r.stdout, '');
    }
    assert.equal(await server.hub.store.getUserByEmail('short@example.com'), null);
  });
});

describe('devices', () => {
  test('device add --json prints an id and key that connect to the server', async () => {
    const email = await user();
    const d = await device(email, 'Desk lamp');
    assert.deepEqual(Object.keys(d), ['id', 'key']);
    assert.match(d.id, /^[A-Z0-9]{20}$/);
    assert.match(d.key, /^[A-Z0-9]{15}$/);
    const dev = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    await dev.request({ method: 'put', status: { sensor: 'temp', value: 19 } });
    assert.equal((await app.reading()).value, 19);
    await Promise.all([dev.close(), app.close()]);
  });

  test('device add without --json shows the id, the key once, and the URL', async () => {
    const email = await user();
    const r = await iotc(['device', 'add', '--email', email, '--name', 'Fan', '--port', '8888'], env);
    assert.equal(r.code, 0);
    const id = /id: {2}([A-Z0-9]{20})/.exec(r.stdout)?.[1];
    const key = /key: ([A-Z0-9]{15}) {3}\(shown only now: keep it\)/.exec(r.stdout)?.[1];
    assert.ok(id && key, r.stdout);
    assert.match(r.stdout, /^device "Fan" created$/m);
    assert.ok(r.stdout.includes(`url: ws://HOST:8888/ws?device=${id}&key=${key}`));
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
    const dev = await TestClient.connect(server.wsUrl, a.id, a.key, 'device');
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
    await dev.close();
  });

  test('device rotate prints a new key; the server closes the old connections and takes the new key', async () => {
    const d = await device(await user());
    const dev = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    const r = await iotc(['device', 'rotate', d.id], env);
    assert.equal(r.code, 0);
    const key = new RegExp(`^new key for ${d.id}: ([A-Z0-9]{15}) {3}\\(shown only now; the old key no longer works\\)\n$`).exec(r.stdout)?.[1];
    assert.ok(key, r.stdout);
    assert.deepEqual(await within(dev.closed, 3000, 'close'), { code: 4401, reason: 'The device key was rotated' });
    const fresh = await TestClient.connect(server.wsUrl, d.id, key, 'device');
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
