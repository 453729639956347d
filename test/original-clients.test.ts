/**
 * The original IOTcommunicate's Python scripts (iotdevice.py, iotclient.py, built on the iotcommute library) are a
 * compatibility contract. test/python/ plays them from the protocol they speak: puts without an id, values typed at
 * a prompt sent as strings, `get` to read a state back, and every received frame read as tick['sensor'] and
 * tick['value'] (a frame without them breaks the script and closes its socket). Run with the system Python.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { makeDevice, ROOT, sleep, startTestServer, TestClient, waitFor } from './helpers.js';
import type { TestServer } from './helpers.js';

const PYTHON = '/usr/bin/python3';
function pythonReady(): boolean {
  if (spawnSync(PYTHON, ['-c', 'import websocket'], { stdio: 'ignore' }).status === 0) return true;
  if (process.env.IOTC_REQUIRE_SERVICES === '1') throw new Error('/usr/bin/python3 with websocket-client is required (IOTC_REQUIRE_SERVICES=1): apt-get install python3-websocket');
  console.log('# notice: /usr/bin/python3 with websocket-client (apt-get install python3-websocket) not found; skipping the original clients\' tests');
  return false;
}
const skip = !pythonReady();

interface PeerEvent {
  event: 'open' | 'tick' | 'error' | 'closed';
  sensor?: string;
  value?: unknown;
  error?: string;
}

/** One original script, driven through its prompt. */
class OriginalPeer {
  readonly events: PeerEvent[] = [];
  private readonly child: ChildProcessWithoutNullStreams;
  private stderr = '';
  readonly exited: Promise<number | null>;

  constructor(server: TestServer, deviceId: string, key: string, side: 'device' | 'client') {
    this.child = spawn(PYTHON, ['-u', path.join(ROOT, 'test/python/original_peer.py'), `${server.wsUrl}/ws`, deviceId, key, side], {
      cwd: path.join(ROOT, 'test/python'),
    });
    let buffer = '';
    this.child.stdout.on('data', (d) => {
      buffer += d;
      let i: number;
      while ((i = buffer.indexOf('\n')) >= 0) {
        this.events.push(JSON.parse(buffer.slice(0, i)));
        buffer = buffer.slice(i + 1);
      }
    });
    this.child.stderr.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }

  /** A line typed at the script's prompt. */
  type(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  ticks(sensor?: string): PeerEvent[] {
    return this.events.filter((e) => e.event === 'tick' && (sensor === undefined || e.sensor === sensor));
  }

  async waitTick(sensor: string, value: unknown, timeoutMs = 5000): Promise<void> {
    await waitFor(() => this.ticks(sensor).some((e) => JSON.stringify(e.value) === JSON.stringify(value)), timeoutMs, `${sensor}=${JSON.stringify(value)}; got ${this.describe()}`);
  }

  describe(): string {
    return `${JSON.stringify(this.events).slice(0, 800)} stderr: ${this.stderr.slice(0, 800)}`;
  }

  async opened(): Promise<void> {
    await waitFor(() => this.events.some((e) => e.event === 'open'), 10_000, `the script to connect; ${this.describe()}`);
  }

  /** Quits through the prompt; resolves with the exit code (0: no frame broke it). */
  async quit(): Promise<number | null> {
    this.type('quit');
    this.child.stdin.end();
    return this.exited;
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

let server: TestServer;
before(async () => {
  if (!skip) server = await startTestServer();
});
after(() => server?.stop());

test('an original device and an original client talk through the hub: typed values arrive as strings, get reads them back, no frame lacks sensor or value', { skip }, async () => {
  const d = await makeDevice(server);
  const device = new OriginalPeer(server, d.id, d.key, 'device');
  const client = new OriginalPeer(server, d.id, d.key, 'client');
  try {
    await device.opened();
    await client.opened();
    // Both asked for the LED's state on connect, before anything was written: the answer names the sensor, value null.
    await device.waitTick('LED', null);
    await client.waitTick('LED', null);

    client.type('LED 1');
    await device.waitTick('LED', '1');
    device.type('temp 22');
    device.type('hum 40.5');
    await client.waitTick('temp', '22');
    await client.waitTick('hum', '40.5');

    // Stored as sent: strings.
    assert.equal((await server.hub.relay.gets(d.id, 'temp'))?.value, '22');
    assert.equal((await server.hub.relay.gets(d.id, 'LED'))?.value, '1');

    // `get` reads a value back, as iotcommute's get_state does.
    const before = client.ticks('temp').length;
    client.type('get temp');
    await waitFor(() => client.ticks('temp').length > before, 5000, `get temp; ${client.describe()}`);
    assert.equal(client.ticks('temp').at(-1)!.value, '22');
    device.type('get LED');
    await waitFor(() => device.ticks('LED').filter((e) => e.value === '1').length >= 2, 5000, `get LED; ${device.describe()}`);

    // A burst of puts without ids: no acknowledgement comes back to break the scripts.
    for (let i = 0; i < 20; i++) device.type(`count ${i}`);
    await client.waitTick('count', '19');
    await sleep(200);
    assert.deepEqual(device.events.filter((e) => e.event === 'error' || e.event === 'closed'), [], device.describe());

    assert.equal(await device.quit(), 0, device.describe());
    assert.equal(await client.quit(), 0, client.describe());
    for (const peer of [device, client]) {
      assert.deepEqual(peer.events.filter((e) => e.event === 'error'), [], 'no frame broke the script');
      assert.ok(peer.ticks().every((e) => typeof e.sensor === 'string' && 'value' in e));
    }
  } finally {
    device.kill();
    client.kill();
  }
});

test('an original client gets what a new app writes and what the device wrote while it was away, all as sensor and value', { skip }, async () => {
  const d = await makeDevice(server);
  const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
  await device.request({ method: 'put', status: [{ sensor: 'temp', value: 21.5 }, { sensor: 'door', value: { open: true } }] });
  const client = new OriginalPeer(server, d.id, d.key, 'client');
  try {
    await client.opened();
    // Sync on connect, then live readings, then a call's frame would also be {sensor, value}: nothing else arrives.
    await client.waitTick('temp', 21.5);
    await client.waitTick('door', { open: true });
    await device.request({ method: 'put', status: { sensor: 'temp', value: 22 } });
    await client.waitTick('temp', 22);
    assert.equal(await client.quit(), 0, client.describe());
  } finally {
    client.kill();
    await device.close();
  }
});

test('a call from a new app reaches an original device as a plain sensor and value', { skip }, async () => {
  const d = await makeDevice(server);
  const device = new OriginalPeer(server, d.id, d.key, 'device');
  const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
  try {
    await device.opened();
    const answer = app.request({ method: 'call', device_method: 'LED', params: '1', timeout: 300 });
    await device.waitTick('LED', '1');
    // The original device cannot answer: the app gets a clear timeout, and the device carries on.
    assert.equal((await answer).code, 'E_TIMEOUT');
    device.type('temp 20');
    await app.next((m) => m.sensor === 'temp' && m.value === '20');
    assert.equal(await device.quit(), 0, device.describe());
  } finally {
    device.kill();
    await app.close();
  }
});

test('a put the hub refuses, a flood and a wrong key are answered with frames an original script can read, and it keeps its connection', { skip }, async () => {
  const strict = await startTestServer({ maxSensors: 2, rateLimit: 5, rateBurst: 5 });
  const d = await makeDevice(strict);
  const device = new OriginalPeer(strict, d.id, d.key, 'device');
  const app = await TestClient.connect(strict.wsUrl, d.id, d.key, 'client');
  const stranger = new OriginalPeer(strict, d.id, 'X'.repeat(15), 'client');
  try {
    await device.opened();
    device.type('a 1');
    device.type('b 2');
    await app.next((m) => m.sensor === 'b');
    // A third sensor is past max-sensors (E_LIMIT); a 70-character name breaks the rules (E_VALIDATION).
    device.type('c 3');
    device.type(`${'n'.repeat(70)} 4`);
    await device.waitTick('c', null);
    await waitFor(() => device.ticks().some((e) => e.sensor === null), 5000, `the refusal of a bad name; ${device.describe()}`);
    // More than five a second: the rest are refused one by one, each naming its sensor.
    await sleep(1100);
    for (let i = 0; i < 12; i++) device.type(`a ${i}`);
    await waitFor(() => device.ticks('a').filter((e) => e.value === null).length >= 5, 5000, `rate refusals; ${device.describe()}`);
    await sleep(1100);
    device.type('a done');
    await app.next((m) => m.sensor === 'a' && m.value === 'done');
    assert.equal(await strict.hub.relay.gets(d.id, 'c'), null, 'the refused reading was not stored');
    assert.deepEqual(device.events.filter((e) => e.event === 'error' || e.event === 'closed'), [], device.describe());
    assert.equal(await device.quit(), 0, device.describe());

    // A wrong key: one readable frame, then the close, and the script ends without an error.
    assert.equal(await stranger.exited, 0, stranger.describe());
    assert.deepEqual(stranger.events.map((e) => e.event), ['open', 'tick', 'closed'], stranger.describe());
  } finally {
    device.kill();
    stranger.kill();
    await app.close();
    await strict.stop();
  }
});
