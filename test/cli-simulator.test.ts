/** The CLI simulators (iotc device run / client run) as real processes: piped, at a terminal, and across a server restart. */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { cliDevice, cliHub, cliUser, iotcOk } from './cli-helpers.js';
import { ROOT, runCli, runProcess, SERVE_ENV, spawnServe, startTestServer, tempDir, waitFor } from './helpers.js';
import type { ServeProcess } from './helpers.js';

/** util-linux script(1), to run a process on a pseudo-terminal. */
function haveScript(): boolean {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env.IOTC_REQUIRE_SERVICES === '1') throw new Error('script(1) is required (IOTC_REQUIRE_SERVICES=1): apt-get install bsdutils');
    return false;
  }
}

let n = 0;
async function newDevice(env: NodeJS.ProcessEnv): Promise<{ id: string; key: string }> {
  const email = `sim${++n}@example.com`;
  await cliUser(env, email, 'Sim');
  return cliDevice(env, email, 'Thing');
}

describe('piped input', () => {
  const beside = cliHub();
  const { env } = beside;

  test('device run and client run exchange values; each put says what was stored', async () => {
    const d = await newDevice(env);
    const url = beside.server.url;
    const dev = await runCli(['device', 'run', '--device', d.id, '--key', d.key, '--url', url], {
      input: 'temp 21.5\nnote "hello world"\nconfig {"mode":"eco","levels":[1,2]}\n',
    });
    assert.equal(dev.code, 0, dev.stderr);
    assert.match(dev.stdout, new RegExp(`^connected to ws://127\\.0\\.0\\.1:${beside.server.port} as the device side of ${d.id}$`, 'm'));
    assert.match(dev.stdout, /^stored temp = 21\.5 at \d{4}-\d\d-\d\dT[\d:.]+Z$/m);
    assert.match(dev.stdout, /^stored note = "hello world" at /m);
    assert.match(dev.stdout, /^stored config = \{"mode":"eco","levels":\[1,2\]\} at /m);
    assert.doesNotMatch(dev.stdout, /ok #\d/);

    const app = await runCli(['client', 'run', '--device', d.id, '--key', d.key, '--url', url], { input: 'gets temp\nled true\nsensors\n' });
    assert.equal(app.code, 0, app.stderr);
    assert.match(app.stdout, /^<- temp = 21\.5 {2}\(from device, while you were away, \d{4}-\d\d-\d\dT.*Z\)$/m);
    assert.match(app.stdout, /^<- note = "hello world" {2}\(from device, while you were away/m);
    assert.match(app.stdout, /^<- config = \{"mode":"eco","levels":\[1,2\]\} {2}\(from device/m);
    assert.match(app.stdout, /^ {3}temp = 21\.5 \(device, \d{4}-/m);
    assert.match(app.stdout, /^stored led = true at /m);
    assert.match(app.stdout, /^ {3}led = true \(client\)$/m);
    assert.deepEqual((await beside.server.hub.store.latest(d.id, 'config'))?.value, { mode: 'eco', levels: [1, 2] });
    assert.equal((await beside.server.hub.store.latest(d.id, 'led'))?.value, true);

    const back = await runCli(['device', 'run', '--device', d.id, '--key', d.key, '--url', url], { input: 'history temp 5\n' });
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, /^<- led = true {2}\(from client, while you were away/m);
    assert.match(back.stdout, /^ {3}\d{4}-\d\d-\d\dT[\d:.]+Z {2}21\.5$/m);
  });

  test('--url takes the form device add prints, with or without /ws, and then needs no --device or --key', async () => {
    const d = await newDevice(env);
    for (const url of [`ws://127.0.0.1:${beside.server.port}/ws?device=${d.id}&key=${d.key}`, `http://127.0.0.1:${beside.server.port}/?device=${d.id}&key=${d.key}`]) {
      const r = await runCli(['device', 'run', '--url', url], { input: 'temp 3\n' });
      assert.equal(r.code, 0, `${url}: ${r.stderr}`);
      assert.match(r.stdout, /^stored temp = 3 at /m, url);
    }
    const missing = await runCli(['device', 'run', '--url', beside.server.url], { input: '' });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^iotc: give --device and --key \(or a --url with \?device=ID&key=KEY\)\n/);
  });

  test('a wrong key prints one line saying so: no "connected", no help first; exit 1', async () => {
    const d = await newDevice(env);
    const refused = await runCli(['device', 'run', '--device', d.id, '--key', 'AAAAAAAAAAAAAAA', '--url', beside.server.url], { input: 'temp 1\n' });
    assert.equal(refused.code, 1);
    assert.equal(refused.stdout, '');
    assert.equal(refused.stderr, `refused by ws://127.0.0.1:${beside.server.port}: Wrong device id or key [E_AUTH]\n`);

    const nowhere = await runCli(['device', 'run', '--device', d.id, '--key', d.key, '--url', 'http://127.0.0.1:1'], { input: '' });
    assert.equal(nowhere.code, 1);
    assert.equal(nowhere.stderr, 'cannot connect to ws://127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1\n', 'one line saying why');
  });

  test('a failed request prints the hub reason and code, and the exit code is 1', async () => {
    const d = await newDevice(env);
    const failing = await runCli(['client', 'run', '--device', d.id, '--key', d.key, '--url', beside.server.url], { input: 'gets nothing\nlonely\n' });
    assert.equal(failing.code, 1);
    assert.match(failing.stdout, /^!! No value stored for sensor "nothing" \[E_NOT_FOUND\]$/m);
    assert.match(failing.stdout, /^!! give a sensor and a value, e\.g\. {2}temp 21\.5$/m);
  });

  test('at a terminal the simulator shows its help and a prompt', { skip: !haveScript() && 'script(1) not found (apt-get install bsdutils)' }, async () => {
    const d = await newDevice(env);
    const cli = [process.execPath, '--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'client', 'run', '--device', d.id, '--key', d.key, '--url', beside.server.url];
    // util-linux script(1) runs the simulator on a pseudo-terminal.
    const r = await runProcess('script', ['-qec', cli.map((a) => `'${a}'`).join(' '), '/dev/null'], {
      cwd: ROOT,
      env: { ...process.env, ...SERVE_ENV, IOTC_LOG_LEVEL: 'silent', NO_COLOR: '1' },
      input: 'led true\nquit\n',
    });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /Type a line and press Enter:/);
    assert.match(r.stdout, /client> /);
    assert.match(r.stdout, /stored led = true at /);
  });
});

/** A simulator process that keeps running while the test types into it. */
function interactive(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...SERVE_ENV, IOTC_LOG_LEVEL: 'silent' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    type: (line: string) => child.stdin.write(line + '\n'),
    end: () => child.stdin.end(),
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    saw: (re: RegExp, what: string) => waitFor(() => re.test(stdout), 15_000, `${what}; stdout: ${stdout}; stderr: ${stderr}`),
    exited,
    kill: () => child.kill('SIGKILL'),
  };
}

describe('server restart', () => {
  test('the simulator stays up while the server restarts, queues what is typed meanwhile and sends it on reconnecting', async () => {
    const { dir, cleanup } = tempDir();
    const env = { IOTC_DATA_DIR: dir };
    let serve: ServeProcess | null = await spawnServe(env);
    const port = serve.port;
    const d = await newDevice(env);
    const sim = interactive(['device', 'run', '--url', `ws://127.0.0.1:${port}/ws?device=${d.id}&key=${d.key}`]);
    try {
      await sim.saw(/^connected to /m, 'connected');
      sim.type('temp 1');
      await sim.saw(/^stored temp = 1 at /m, 'first put stored');

      serve.child.kill('SIGTERM');
      await serve.exited;
      serve = null;
      await sim.saw(/^-- connection lost .*reconnecting/m, 'the loss reported');
      sim.type('temp 2');
      await sim.saw(/^-- not connected: temp = 2 waits and is sent on reconnecting$/m, 'the put queued');

      serve = await spawnServe({ ...env, PORT: String(port) });
      await sim.saw(/^-- reconnected to ws:\/\/127\.0\.0\.1:\d+$/m, 'reconnected');
      await sim.saw(/^stored temp = 2 at /m, 'the queued put stored after the restart');
      sim.type('history temp');
      await sim.saw(/Z {2}1\n.*Z {2}2$/m, 'both readings in the history');
      sim.end();
      assert.equal(await sim.exited, 0, sim.stderr);
      assert.equal(sim.stderr, '');
    } finally {
      sim.kill();
      if (serve) {
        serve.child.kill('SIGTERM');
        await serve.exited;
      }
      cleanup();
    }
  });
});

describe('key rotated', () => {
  test('a simulator whose key is rotated stops with one line saying why, exit 1, instead of retrying', async () => {
    const server = await startTestServer();
    const env = { IOTC_DATA_DIR: server.dataDir };
    const d = await newDevice(env);
    const sim = interactive(['device', 'run', '--url', `${server.wsUrl}/ws?device=${d.id}&key=${d.key}`]);
    try {
      await sim.saw(/^connected to /m, 'connected');
      await iotcOk(['device', 'rotate', d.id], env);
      assert.equal(await sim.exited, 1);
      assert.equal(sim.stderr, 'connection closed: The device key was rotated [E_AUTH]\n');
      assert.doesNotMatch(sim.stdout, /reconnect/);
    } finally {
      sim.kill();
      await server.stop();
    }
  });
});

describe('commands (against a stand-in hub speaking the call contract of docs/protocol.md)', () => {
  /** Answers the first ping; hands every other message to `onMessage` with a way to send. */
  async function standIn(onMessage: (m: any, send: (o: object) => void) => void, onAccepted: (send: (o: object) => void) => void = () => {}) {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => wss.once('listening', r));
    wss.on('connection', (ws) => {
      const send = (o: object) => ws.send(JSON.stringify(o));
      ws.on('message', (data) => {
        const m = JSON.parse(data.toString());
        if (m.method === 'ping') {
          send({ ok: true, id: m.id, time: Date.now() });
          if (m.id === 'hello') onAccepted(send);
          return;
        }
        onMessage(m, send);
      });
    });
    return { url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/ws?device=D&key=K`, close: () => wss.close() };
  }

  test('client run: call METHOD JSON prints the device answer, or the error and its code', async () => {
    const calls: any[] = [];
    const hub = await standIn((m, send) => {
      calls.push(m);
      if (m.device_method === 'reboot') send({ ok: true, id: m.id, call: 'c_1', result: { rebooting: true } });
      else send({ ok: false, id: m.id, code: 'E_OFFLINE', error: 'The device is not connected' });
    });
    try {
      const r = await runCli(['client', 'run', '--url', hub.url], { input: 'call reboot {"delay":5}\ncall wake\n' });
      assert.equal(r.code, 1, 'a failed command makes the exit code 1');
      assert.match(r.stdout, /^<- reboot answered: \{"rebooting":true\}$/m);
      assert.match(r.stdout, /^!! The device is not connected \[E_OFFLINE\]$/m);
      assert.deepEqual(calls.map((m) => [m.device_method, m.params]), [['reboot', { delay: 5 }], ['wake', null]]);
    } finally {
      hub.close();
    }
  });

  test('device run: a command is shown and answered with reply JSON or fail MESSAGE', async () => {
    const replies: any[] = [];
    const hub = await standIn(
      (m, send) => {
        replies.push(m);
        send({ ok: true, id: m.id });
      },
      (send) => {
        send({ sensor: 'reboot', value: { delay: 5 }, call: 'c_1', time: 1, write: 'client' });
        send({ sensor: 'wake', value: null, call: 'c_2', time: 2, write: 'client' });
      },
    );
    const sim = interactive(['device', 'run', '--url', hub.url]);
    try {
      await sim.saw(/^<- command reboot \{"delay":5\} {2}\(call c_1: answer with {2}reply \[JSON\] {2}or {2}fail MESSAGE\)$/m, 'the command shown');
      await sim.saw(/^<- command wake null /m, 'the second command shown');
      sim.type('reply {"rebooting":true}');
      sim.type('fail not now');
      await waitFor(() => replies.length === 2, 10_000, 'two replies');
      assert.deepEqual(replies.map((m) => [m.method, m.call, m.result, m.error]), [['reply', 'c_1', { rebooting: true }, undefined], ['reply', 'c_2', undefined, 'not now']]);
      sim.end();
      assert.equal(await sim.exited, 0, sim.stderr);
    } finally {
      sim.kill();
      hub.close();
    }
  });
});
