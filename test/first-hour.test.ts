/**
 * A new user's first hour with the real processes: `iotc serve` and the CLI spawned as a person would run them,
 * on a machine where something may already hold the MQTT port (a Home Assistant box runs Mosquitto on 1883).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { freePort, ROOT, runCli, runProcess, spawnServe, tempDir, waitFor } from './helpers.js';
import type { ServeProcess } from './helpers.js';

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function dataDir(): string {
  const tmp = tempDir('iotc-first-hour-');
  cleanups.push(tmp.cleanup);
  return tmp.dir;
}

async function stop(serve: ServeProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (serve.child.exitCode === null && serve.child.signalCode === null) serve.child.kill(signal);
  await serve.exited;
}

/** Holds `port` on 127.0.0.1 unless something (the system's Mosquitto) already does; either way it is taken. */
async function holdPort(port: number): Promise<void> {
  const blocker = net.createServer();
  const held = await new Promise<boolean>((resolve) => {
    blocker.once('error', () => resolve(false));
    blocker.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (held) cleanups.push(() => new Promise((r) => blocker.close(r)));
}

async function userAndDevice(dir: string): Promise<{ email: string; stdout: string; stderr: string }> {
  const email = `first-${Date.now()}@example.com`;
  const made = await runCli(['user', 'add', '--email', email, '--name', 'First'], { env: { IOTC_DATA_DIR: dir }, input: 'first hour password\n' });
  assert.equal(made.code, 0, made.stderr);
  const d = await runCli(['device', 'add', '--email', email, '--name', 'Lamp'], { env: { IOTC_DATA_DIR: dir, IOTC_MQTT_PORT: '' } });
  assert.equal(d.code, 0, d.stderr);
  return { email, stdout: d.stdout, stderr: d.stderr };
}

describe('the default MQTT port already taken (Mosquitto on the machine)', () => {
  test('the banner says MQTT is OFF, why and how to turn it on; server.json and device add never point at 1883', async () => {
    await holdPort(1883);
    const dir = dataDir();
    // IOTC_MQTT_PORT empty: left at its default, as a new user leaves it.
    const serve = await spawnServe({ IOTC_DATA_DIR: dir, IOTC_MQTT_PORT: '' });
    cleanups.push(() => stop(serve));
    await waitFor(() => serve.stdout.includes('"door":"mqtt-ws"'), 5000, 'the banner');
    const records = serve.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const mqtt = records.find((r) => r.door === 'mqtt');
    assert.equal(mqtt.level, 40, 'a warning');
    assert.equal(mqtt.url, null);
    assert.match(mqtt.msg, /^MQTT is OFF: port 1883 is used by another program, probably an MQTT broker such as Mosquitto/);
    assert.match(mqtt.msg, /Devices sent to port 1883 reach that broker, not this hub\. To turn MQTT on, start the server with --mqtt-port \d+ \(or IOTC_MQTT_PORT=\d+\); \d+ is free now$/);
    assert.deepEqual(records.filter((r) => r.door).map((r) => [r.door, r.url]), [
      ['web', `http://127.0.0.1:${serve.port}/`],
      ['ws', `ws://127.0.0.1:${serve.port}/ws?device=ID&key=KEY&side=device|client`],
      ['http', `http://127.0.0.1:${serve.port}/api/v1/update?device=ID&key=KEY&temp=21.5`],
      ['mqtt', null],
      ['mqtt-ws', `ws://127.0.0.1:${serve.port}/mqtt`],
    ]);

    const info = JSON.parse(fs.readFileSync(path.join(dir, 'server.json'), 'utf8'));
    assert.equal(info.pid, serve.child.pid);
    assert.equal(info.addresses.port, serve.port);
    assert.equal(info.addresses.mqttPort, null);
    assert.match(info.addresses.mqttOff, /^port 1883 is used by another program/);

    const { stdout, stderr } = await userAndDevice(dir);
    assert.match(stdout, new RegExp(`^ {2}url: {2}ws://127\\.0\\.0\\.1:${serve.port}/ws\\?device=[A-Z0-9]{20}&key=[A-Z0-9]{15}$`, 'm'));
    assert.match(stdout, /^ {2}mqtt: OFF: port 1883 is used by another program/m);
    assert.ok(!/port 1883,|-p 1883|HOST/.test(stdout), stdout);
    assert.equal(stderr, '');

    await stop(serve);
    assert.ok(!fs.existsSync(path.join(dir, 'server.json')), 'removed on a clean exit');
  });

  test('in a terminal (pretty logs) the banner is a block to read, with readable log lines, not JSON', async () => {
    await holdPort(1883);
    const serve = await spawnServe({ IOTC_DATA_DIR: dataDir(), IOTC_MQTT_PORT: '', IOTC_LOG_FORMAT: 'pretty' });
    cleanups.push(() => stop(serve));
    await waitFor(() => serve.stdout.includes('Stop with Ctrl-C.'), 5000, 'the banner');
    assert.ok(!serve.stdout.includes('{"level"'), 'no JSON lines');
    assert.match(serve.stdout, /^\[\d\d:\d\d:\d\d\] INFO: IOTcommunicate listening on port \d+/m);
    assert.match(serve.stdout, /^IOTcommunicate is running\. Data: .*iotc\.db$/m);
    assert.match(serve.stdout, new RegExp(`^ {2}Web app {7}http://127\\.0\\.0\\.1:${serve.port}/$`, 'm'));
    assert.match(serve.stdout, /^ {2}MQTT {10}OFF: port 1883 is used by another program/m);
    assert.match(serve.stdout, new RegExp(`^ {2}MQTT over WS {2}ws://127\\.0\\.0\\.1:${serve.port}/mqtt$`, 'm'));
  });

  test('with a free MQTT port, the banner, server.json and device add all give that port', async () => {
    const dir = dataDir();
    const mqttPort = await freePort();
    const serve = await spawnServe({ IOTC_DATA_DIR: dir, IOTC_MQTT_PORT: String(mqttPort) });
    cleanups.push(() => stop(serve));
    await waitFor(() => serve.stdout.includes('"door":"mqtt-ws"'), 5000, 'the banner');
    assert.match(serve.stdout, new RegExp(`"door":"mqtt","url":"mqtt://127\\.0\\.0\\.1:${mqttPort}"`));
    const email = `free-${Date.now()}@example.com`;
    assert.equal((await runCli(['user', 'add', '--email', email, '--name', 'F', '--password', 'long enough pw'], { env: { IOTC_DATA_DIR: dir } })).code, 0);
    // The CLI's own settings say 1883: what the running server published wins.
    const d = await runCli(['device', 'add', '--email', email, '--name', 'Lamp'], { env: { IOTC_DATA_DIR: dir, IOTC_MQTT_PORT: '1883' } });
    assert.match(d.stdout, new RegExp(`^ {2}mqtt: host 127\\.0\\.0\\.1 port ${mqttPort}, user name [A-Z0-9]{20}, password the key`, 'm'));
    const list = await runCli(['device', 'list', '--email', email], { env: { IOTC_DATA_DIR: dir } });
    assert.equal(list.stderr, `server: running, web app http://127.0.0.1:${serve.port}/, MQTT port ${mqttPort}\n`);
  });
});

describe('one server per database', () => {
  test('a second server is refused naming the first; after a crash the CLI says so and a new server starts', async () => {
    const dir = dataDir();
    const first = await spawnServe({ IOTC_DATA_DIR: dir });
    cleanups.push(() => stop(first, 'SIGKILL'));
    const second = await runCli(['serve', '--port', '0'], { env: { IOTC_DATA_DIR: dir, IOTC_LOG_LEVEL: 'info' } });
    assert.equal(second.code, 1);
    assert.match(second.stderr, new RegExp(`^iotc: Another IOTcommunicate server \\(pid ${first.child.pid}, port ${first.port}, started [^)]+\\) is already using ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/iotc\\.db\\. Stop it first, or give this one its own data with --data-dir / IOTC_DATA_DIR\\.`));

    // Beside the first server, the commands work and print its port.
    const { stdout } = await userAndDevice(dir);
    assert.match(stdout, new RegExp(`ws://127\\.0\\.0\\.1:${first.port}/ws\\?device=`));

    await stop(first, 'SIGKILL');
    assert.ok(fs.existsSync(path.join(dir, 'server.json')), 'a crash leaves server.json behind');
    const after = await runCli(['device', 'list', '--email', `nobody@example.com`], { env: { IOTC_DATA_DIR: dir } });
    assert.equal(after.code, 1, 'no such user, but it ran');
    const d = await userAndDevice(dir);
    assert.match(d.stderr, new RegExp(`^note: no server is running on .*\\. The server that used it \\(pid ${first.child.pid}\\) stopped without cleaning up\\. Start it with npm start`));
    assert.ok(!d.stdout.includes(`:${first.port}/`), 'not the dead server\'s port');
    assert.match(d.stdout, /ws:\/\/[^/]+:8888\/ws\?device=/, 'the port these settings would use');

    const again = await spawnServe({ IOTC_DATA_DIR: dir });
    cleanups.push(() => stop(again));
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'server.json'), 'utf8')).pid, again.child.pid);
  });
});

describe('bad data dirs', () => {
  test('a path under /proc, a file, and a folder this user cannot write are refused at once, naming the path', async () => {
    const file = path.join(dataDir(), 'a-file');
    fs.writeFileSync(file, '');
    const cases: [string[], RegExp][] = [
      [['serve', '--data-dir', '/proc/x'], /^iotc: Cannot create the data dir \/proc\/x: \/proc cannot hold folders; choose another folder with --data-dir \/ IOTC_DATA_DIR\n$/],
      [['device', 'list', '--email', 'x@example.com', '--data-dir', '/proc/x/y'], /^iotc: Cannot create the data dir \/proc\/x\/y: \/proc cannot hold folders/],
      [['serve', '--data-dir', `${file}/data`], new RegExp(`^iotc: Cannot use the data dir ${file}/data: ${file} is a file, not a folder`)],
    ];
    for (const [argv, message] of cases) {
      const r = await runCli(argv, { timeoutMs: 15_000 });
      assert.equal(r.code, 1, argv.join(' '));
      assert.match(r.stderr, message);
    }
  });

  test('a read-only data dir: the message names the folder and the problem', async (t) => {
    const dir = dataDir();
    const readOnly = path.join(dir, 'read-only');
    fs.mkdirSync(readOnly, { mode: 0o555 });
    fs.chmodSync(dir, 0o755);
    // root writes anywhere: run the CLI as nobody then, as an ordinary user would run it.
    const asNobody = process.getuid?.() === 0;
    if (asNobody && !fs.existsSync('/usr/bin/setpriv')) return t.skip('running as root without setpriv');
    const cli = [process.execPath, '--import', 'tsx', path.join(ROOT, 'src/cli/main.ts')];
    const [cmd, ...prefix] = asNobody ? ['/usr/bin/setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...cli] : cli;
    const env = { ...process.env, IOTC_LOG_LEVEL: 'silent', IOTC_MQTT_PORT: '0', IOTC_HOST: '127.0.0.1' };
    let r = await runProcess(cmd, [...prefix, 'serve', '--data-dir', readOnly], { cwd: ROOT, env });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `iotc: Cannot write to the data dir ${readOnly}: permission denied; choose another folder with --data-dir / IOTC_DATA_DIR, or give this user write access to it\n`);
    r = await runProcess(cmd, [...prefix, 'device', 'list', '--email', 'x@example.com', '--data-dir', path.join(readOnly, 'sub')], { cwd: ROOT, env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^iotc: Cannot create the data dir ${readOnly}/sub: permission denied`));
  });
});

describe('the command line as a shell uses it', () => {
  test('iotc config | head: a reader that leaves early ends it quietly, no EPIPE stack trace', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'config'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // the reader is gone before the first line is written
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });

  test('user add at a terminal asks for the password twice and never shows it', async (t) => {
    if (!fs.existsSync('/usr/bin/script')) return t.skip('needs script(1) for a pseudo-terminal');
    const dir = dataDir();
    const email = `tty-${Date.now()}@example.com`;
    const command = [process.execPath, '--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'user', 'add', '--email', email, '--name', 'Tty'].map((a) => `'${a}'`).join(' ');
    const child = spawn('/usr/bin/script', ['-qec', command, '/dev/null'], { cwd: ROOT, env: { ...process.env, IOTC_DATA_DIR: dir, IOTC_LOG_LEVEL: 'silent' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let seen = '';
    child.stdout.on('data', (d) => (seen += d));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    // Type only once the prompt is up (raw mode, no echo), as a person would.
    await waitFor(() => seen.includes('(8 characters or more; not shown): '), 15_000, 'the password prompt');
    // Both typed before the second prompt shows: the second line must not be lost with the first one's chunk.
    child.stdin.write('tty secret pw\rtty secret pw\r');
    await waitFor(() => seen.includes('Same password again: '), 5000, 'the second prompt');
    await waitFor(() => seen.includes(`created user ${email}`), 10_000, 'the account');
    child.stdin.end();
    await closed;
    assert.ok(!seen.includes('tty secret pw'), `the password was echoed: ${seen}`);
    const login = await runCli(['user', 'add', '--email', email, '--name', 'Again', '--password', 'another long pw'], { env: { IOTC_DATA_DIR: dir } });
    assert.equal(login.stderr, 'iotc: An account with this email already exists\n', 'the account exists');
  });
});
