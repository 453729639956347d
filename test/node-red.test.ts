/**
 * The Node-RED nodes (integrations/node-red) loaded into a real Node-RED runtime from npm, running a small flow
 * against a running hub: iotc in → function → iotc out, and inject → iotc call, with a WebSocket device at the end.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { makeDevice, ROOT, startTestServer, tempDir, TestClient } from './helpers.js';
import type { TestServer } from './helpers.js';

const require = createRequire(import.meta.url);
function available(): string | null {
  try {
    require.resolve('node-red');
  } catch {
    return 'node-red is not installed (a devDependency: npm install)';
  }
  if (!fs.existsSync(path.join(ROOT, 'dist/client/node.js'))) return 'the JavaScript client is not built (npm run build)';
  return null;
}
const missing = available();
if (missing) console.log(`# notice: ${missing}; skipping the Node-RED test`);

const tmp = tempDir('iotc-node-red-');
let server: TestServer;
let RED: any;
let device: { id: string; key: string };

/** A Node-RED user dir with the package installed as npm would, and the hub's package beside it. */
function userDir(): string {
  const dir = path.join(tmp.dir, 'user');
  const pkg = path.join(dir, 'node_modules', 'node-red-contrib-iotcommunicate');
  fs.mkdirSync(pkg, { recursive: true });
  for (const f of ['package.json', 'iotc.js', 'iotc.html']) fs.copyFileSync(path.join(ROOT, 'integrations/node-red', f), path.join(pkg, f));
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'iotcommunicate'), 'dir');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'flows', dependencies: { 'node-red-contrib-iotcommunicate': '*' } }));
  return dir;
}

function flows(url: string, id: string) {
  return [
    { id: 'f-tab', type: 'tab', label: 'iotc' },
    { id: 'f-hub', type: 'iotc-hub', url, device: id, side: 'client' },
    // What the device writes to temp comes back, doubled, as the app's write to double.
    { id: 'f-in', type: 'iotc in', z: 'f-tab', hub: 'f-hub', sensor: 'temp', skipSync: true, wires: [['f-double']] },
    { id: 'f-double', type: 'function', z: 'f-tab', func: "msg.topic = 'double'; msg.payload = msg.payload * 2; return msg;", outputs: 1, wires: [['f-out']] },
    { id: 'f-out', type: 'iotc out', z: 'f-tab', hub: 'f-hub', sensor: '', wires: [[]] },
    // A call to the device; its answer (or the hub's refusal, caught) is written back as a reading the device sees.
    { id: 'f-go', type: 'inject', z: 'f-tab', topic: 'reboot', payload: '{"delay":1}', payloadType: 'json', once: true, onceDelay: 1.5, repeat: '', props: [{ p: 'payload' }, { p: 'topic', vt: 'str' }], wires: [['f-call']] },
    { id: 'f-call', type: 'iotc call', z: 'f-tab', hub: 'f-hub', method: '', timeout: 3000, wires: [['f-answered']] },
    { id: 'f-answered', type: 'function', z: 'f-tab', func: "msg.topic = 'callresult'; return msg;", outputs: 1, wires: [['f-out']] },
    { id: 'f-catch', type: 'catch', z: 'f-tab', scope: ['f-call'], wires: [['f-failed']] },
    { id: 'f-failed', type: 'function', z: 'f-tab', func: "msg.topic = 'callerror'; msg.payload = msg.error.message; return msg;", outputs: 1, wires: [['f-out']] },
  ];
}

before(async () => {
  if (missing) return;
  server = await startTestServer();
  device = await makeDevice(server, 'Node-RED lamp');
  const dir = userDir();
  fs.writeFileSync(path.join(dir, 'flows.json'), JSON.stringify(flows(server.wsUrl, device.id)));
  fs.writeFileSync(path.join(dir, 'flows_cred.json'), JSON.stringify({ 'f-hub': { key: device.key } }));
  RED = require('node-red');
  RED.init(http.createServer(), {
    userDir: dir,
    flowFile: 'flows.json',
    credentialSecret: false,
    httpAdminRoot: false,
    httpNodeRoot: false,
    disableEditor: true,
    logging: { console: { level: 'warn' } },
    editorTheme: { tours: false },
  });
});

after(async () => {
  if (missing) return;
  await RED?.stop().catch(() => {});
  await server?.stop();
  tmp.cleanup();
});

test('a Node-RED flow reads from and writes to a device through the hub', { skip: missing ?? false, timeout: 60_000 }, async () => {
  const dev = await TestClient.connect(server.wsUrl, device.id, device.key, 'device');
  await RED.start();
  const types = RED.nodes.getNodeList().filter((n: { module: string }) => n.module === 'node-red-contrib-iotcommunicate');
  assert.deepEqual(types.flatMap((n: { types: string[] }) => n.types).sort(), ['iotc call', 'iotc in', 'iotc out', 'iotc-hub']);
  assert.ok(types.every((n: { enabled: boolean; err?: string }) => n.enabled && !n.err), JSON.stringify(types));

  // The call goes out once the flow starts: a hub with calls passes it to the device, which answers.
  const callOutcome = dev.next((m) => m.call !== undefined || m.sensor === 'callerror', 15_000);
  const first = await callOutcome;
  if (first.call !== undefined) {
    assert.equal(first.sensor, 'reboot');
    assert.deepEqual(first.value, { delay: 1 });
    dev.send({ method: 'reply', call: first.call, result: { rebooting: true } });
    const result = await dev.next((m) => m.sensor === 'callresult', 10_000);
    assert.deepEqual(result.value, { rebooting: true });
  } else {
    // This hub does not take calls yet: the call node reports the hub's refusal to a Catch node.
    assert.equal(typeof first.value, 'string');
    assert.match(first.value, /call|method/i);
  }

  // The device writes; the flow doubles it and writes it back as the app: the device receives it.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await dev.request({ method: 'put', status: { sensor: 'temp', value: 21 } })).ok, true);
  const doubled = await dev.next((m) => m.sensor === 'double', 10_000);
  assert.equal(doubled.value, 42);
  assert.equal(doubled.write, 'client');
  dev.ws.close();
});
