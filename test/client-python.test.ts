/** The Python client (clients/python/iotcommunicate.py) run by the system python3 against a real hub. */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { connect } from '../src/client/node.js';
import { makeDevice, ROOT, startTestServer, TestClient, tempDir, waitFor, within } from './helpers.js';
import type { TestServer } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const havePython = (() => {
  try {
    execFileSync(PYTHON, ['-c', 'import websocket'], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env.IOTC_REQUIRE_SERVICES === '1') throw new Error(`${PYTHON} with websocket-client is required (IOTC_REQUIRE_SERVICES=1): apt-get install python3-websocket`);
    console.log(`# notice: ${PYTHON} with websocket-client not found (apt-get install python3-websocket); skipping the Python client tests`);
    return false;
  }
})();

let server: TestServer;
let scripts: ReturnType<typeof tempDir>;
before(async () => {
  server = await startTestServer();
  scripts = tempDir('iotc-py-');
});
after(async () => {
  await server.stop();
  scripts.cleanup();
});

let n = 0;
/** Starts a Python script with the client importable; lines written with `say` go to its stdin. */
function python(source: string, args: string[] = []) {
  const file = path.join(scripts.dir, `script${++n}.py`);
  fs.writeFileSync(file, source);
  const child = spawn(PYTHON, [file, ...args], { env: { ...process.env, PYTHONPATH: path.join(ROOT, 'clients/python'), PYTHONUNBUFFERED: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  void exited.then(() => clearTimeout(timer));
  return {
    say: (line: string) => child.stdin.write(line + '\n'),
    saw: (re: RegExp, what: string) => waitFor(() => re.test(stdout), 15_000, `${what}; stdout: ${stdout}; stderr: ${stderr}`),
    /** Waits for the exit; resolves with the code and output. */
    done: async () => ({ code: await exited, stdout, stderr }),
  };
}

/** The lines a script printed as JSON. */
const jsonLines = (out: string) => out.split('\n').filter((l) => l.startsWith('{') || l.startsWith('[')).map((l) => JSON.parse(l));

describe('Python client', { skip: !havePython }, () => {
  test('a script written for the original iotcommute runs after changing one import', async () => {
    const d = await makeDevice(server);
    const phone = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    await phone.request({ method: 'put', status: { sensor: 'led', value: true } });
    // The original library's README example, plus get_state; only the import line differs.
    const r = await python(`
import json, sys
from iotcommunicate import WebSocket

iws = WebSocket(sys.argv[1], sys.argv[2], "device", sys.argv[3])
ticks = []

def on_tick(tick, ws):
    ticks.append(tick)
    print(json.dumps(tick))
    if len(ticks) == 2:
        ws.close()

def on_connect(ws):
    print("connection is established")
    ws.send_message("temp", 21.5)
    ws.get_state("led")

iws.on_tick = on_tick
iws.on_connect = on_connect
iws.connect()
print("done")
`, [d.id, d.key, `${server.wsUrl}/ws`]).done();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^connection is established\n/);
    const ticks = jsonLines(r.stdout);
    assert.equal(ticks.length, 2);
    assert.deepEqual([ticks[0].sensor, ticks[0].value, ticks[0].sync], ['led', true, true], 'the phone\'s switch, synced on connecting');
    assert.deepEqual([ticks[1].sensor, ticks[1].value, ticks[1].write], ['led', true, 'client'], "get_state's answer arrives as a tick");
    for (const t of ticks) assert.ok(!('ok' in t) && 'sensor' in t && 'value' in t, 'on_tick only sees frames with sensor and value');
    assert.match(r.stdout, /\ndone\n$/);
    assert.equal((await phone.reading()).value, 21.5, 'send_message reached the other side');
    await phone.close();
  });

  test('put waits for the durable ack; get, history and sensors read back; errors raise IotcError with the code', async () => {
    const d = await makeDevice(server);
    const r = await python(`
import json, sys
from iotcommunicate import WebSocket, IotcError

ws = WebSocket(sys.argv[1], sys.argv[2], "device", sys.argv[3]).connect(threaded=True)
ws.wait_connected(10)
print(json.dumps(ws.put("temp", 20)))
print(json.dumps(ws.put([{"sensor": "temp", "value": 21}, {"sensor": "hum", "value": {"rel": 40}}])))
print(json.dumps(ws.get("temp")))
print(json.dumps([ws.get("nothing")]))
print(json.dumps([r["value"] for r in ws.history("temp", limit=5)]))
print(json.dumps([[r["sensor"], r["value"]] for r in ws.sensors()]))
try:
    ws.put("", 1)
except IotcError as e:
    print(json.dumps({"code": e.code, "message": e.message}))
ws.close()
`, [d.id, d.key, server.url]).done();
    assert.equal(r.code, 0, r.stderr);
    const [ack, batch, latest, missing, history, sensors, error] = jsonLines(r.stdout);
    assert.equal(typeof ack.time, 'number');
    assert.equal(batch.count, 2);
    assert.deepEqual(latest, { sensor: 'temp', value: 21, time: batch.time, write: 'device' });
    assert.deepEqual(missing, [null]);
    assert.deepEqual(history, [20, 21]);
    assert.deepEqual(sensors, [['hum', { rel: 40 }], ['temp', 21]]);
    assert.deepEqual(error, { code: 'E_VALIDATION', message: 'status.sensor: sensor must not be empty' });
    assert.equal((await server.hub.store.history(d.id, 'temp', { limit: 10 })).length, 2);
  });

  test('600 puts queued before connecting are flushed at a pace the hub accepts, all acknowledged, in order', async () => {
    const d = await makeDevice(server);
    const r = await python(`
import sys
from iotcommunicate import WebSocket

ws = WebSocket(sys.argv[1], sys.argv[2], "device", sys.argv[3])
futures = [ws.put_async("seq", i) for i in range(600)]
ws.connect(threaded=True)
print("acked", sum(1 for f in futures if f.result(30)["ok"]))
ws.close()
`, [d.id, d.key, server.url]).done();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'acked 600\n');
    const stored = await server.hub.store.history(d.id, 'seq', { limit: 1000 });
    assert.deepEqual(stored.map((x) => x.value), Array.from({ length: 600 }, (_, i) => i));
  });

  test('a wrong key calls on_error with E_AUTH, never on_connect, and connect() returns instead of retrying', async () => {
    const d = await makeDevice(server);
    const r = await python(`
import sys
from iotcommunicate import WebSocket, IotcError

ws = WebSocket(sys.argv[1], "AAAAAAAAAAAAAAA", "device", sys.argv[2])
ws.on_connect = lambda ws: print("connected?!")
ws.on_error = lambda err, ws: isinstance(err, IotcError) and print("error", err.code, err.message)
ws.connect()
try:
    ws.put("temp", 1)
except IotcError as e:
    print("put", e.code)
`, [d.id, server.url]).done();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'error E_AUTH Wrong device id or key\nput E_AUTH\n');
  });

  test('reconnects across a server restart; a put made while it is down is sent on reconnecting and acknowledged', async () => {
    const { dir, cleanup } = tempDir();
    let hub = await startTestServer({}, dir);
    const port = hub.port;
    const d = await makeDevice(hub);
    const script = python(`
import json, sys
from iotcommunicate import WebSocket

ws = WebSocket(sys.argv[1], sys.argv[2], "device", sys.argv[3])
ws.RECONNECT_INTERVAL = 0.05
ws.RECONNECT_MAX_INTERVAL = 0.4
ws.on_reconnect = lambda ws, attempt, delay: print("retry", attempt, round(delay, 3))
ws.on_connect = lambda ws: print("connected")
ws.connect(threaded=True)
ws.wait_connected(10)
print("put1", ws.put("n", 1)["time"] > 0)
sys.stdin.readline()
print("connected now?", ws.is_connected())
pending = ws.put_async("n", 2)
print("queued")
print("put2", pending.result(20)["time"] > 0)
ws.close()
`, [d.id, d.key, `ws://127.0.0.1:${port}`]);
    try {
      await script.saw(/^put1 True$/m, 'the first put');
      await hub.stop({ keepData: true });
      await script.saw(/^retry 2 /m, 'retries while the server is down');
      script.say('go');
      await script.saw(/^queued$/m, 'the put queued');
      hub = await startTestServer({ port }, dir);
      const r = await script.done();
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^connected now\? False$/m);
      assert.match(r.stdout, /^put2 True$/m);
      assert.equal((r.stdout.match(/^connected$/gm) ?? []).length, 2, 'on_connect again after the restart');
      for (const [, delay] of r.stdout.matchAll(/^retry \d+ ([\d.]+)$/gm)) assert.ok(Number(delay) <= 0.4, `capped: ${delay}`);
      assert.deepEqual((await hub.hub.store.history(d.id, 'n', { limit: 10 })).map((x) => x.value), [1, 2]);
    } finally {
      await hub.stop();
      cleanup();
    }
  });

  test('on_call answers a command with the handler result or its exception (stand-in hub speaking the call contract)', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => wss.once('listening', r));
    const replies: any[] = [];
    wss.on('connection', (ws) => {
      ws.on('message', (data) => {
        const m = JSON.parse(data.toString());
        if (m.method === 'ping') {
          ws.send(JSON.stringify({ ok: true, id: m.id, time: Date.now() }));
          ws.send(JSON.stringify({ sensor: 'reboot', value: { delay: 5 }, call: 'c_A', time: 1, write: 'client' }));
          ws.send(JSON.stringify({ sensor: 'reboot', value: { delay: -1 }, call: 'c_B', time: 2, write: 'client' }));
          ws.send(JSON.stringify({ sensor: 'other', value: null, call: 'c_C', time: 3, write: 'client' }));
          return;
        }
        replies.push(m);
        ws.send(JSON.stringify({ ok: true, id: m.id }));
      });
    });
    const port = (wss.address() as { port: number }).port;
    const script = python(`
import sys
from iotcommunicate import WebSocket

ws = WebSocket("D", "K", "device", sys.argv[1])

@ws.on_call("reboot")
def reboot(params):
    if params["delay"] < 0:
        raise ValueError("delay must be positive")
    return {"rebooting": params["delay"]}

ws.on_tick = lambda tick, ws: print("tick?!", tick)
ws.connect(threaded=True)
sys.stdin.readline()
ws.close()
`, [`ws://127.0.0.1:${port}`]);
    try {
      await waitFor(() => replies.length === 3, 15_000, 'three replies');
      const byCall = Object.fromEntries(replies.map((m) => [m.call, m]));
      assert.deepEqual([byCall.c_A.method, byCall.c_A.result], ['reply', { rebooting: 5 }]);
      assert.equal(typeof byCall.c_A.id, 'number');
      assert.equal(byCall.c_B.error, 'delay must be positive');
      assert.equal(byCall.c_C.error, 'This device has no handler for "other"');
      script.say('stop');
      const r = await script.done();
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /tick\?!/, 'calls are not ticks');
    } finally {
      wss.close();
    }
  });

  test('a JavaScript app calls a Python device through the hub (needs the hub\'s "call" method)', async (t) => {
    const d = await makeDevice(server);
    const app = connect(server.wsUrl, { device: d.id, key: d.key, side: 'client' });
    await app.ready();
    const probe = await app.request({ method: 'call', device_method: 'probe', timeout: 100 }).catch((e) => e);
    if (/Unknown method "call"/.test(probe.message ?? '')) {
      app.close();
      t.skip('this hub has no "call" method yet');
      return;
    }
    const script = python(`
import sys
from iotcommunicate import WebSocket
ws = WebSocket(sys.argv[1], sys.argv[2], "device", sys.argv[3])
ws.on_call("double", lambda params: params * 2)
ws.on_connect = lambda ws: print("ready")
ws.connect(threaded=True)
sys.stdin.readline()
ws.close()
`, [d.id, d.key, server.url]);
    try {
      await script.saw(/^ready$/m, 'the device connected');
      assert.equal(await within(app.call('double', 21, { timeout: 5000 }), 10_000, 'the answer'), 42);
    } finally {
      script.say('stop');
      await script.done();
      app.close();
    }
  });
});
