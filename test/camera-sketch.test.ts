/**
 * The ESP32-CAM sketch (clients/arduino/CameraFrames) compiles with warnings as errors against the host shims of the
 * Arduino core, the camera driver and HTTPClient, and run on this machine it PUTs its camera's frame to a real hub,
 * which stores it byte-exact as image/jpeg.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { makeDevice, ROOT, startTestServer, tempDir } from './helpers.js';
import type { TestServer } from './helpers.js';

const run = promisify(execFile);
const ARDUINO = path.join(ROOT, 'clients/arduino');
const haveGxx = (() => {
  try {
    execFileSync('g++', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env.IOTC_REQUIRE_SERVICES === '1') throw new Error('g++ is required (IOTC_REQUIRE_SERVICES=1): apt-get install g++');
    console.log('# notice: g++ not found; skipping the ESP32-CAM sketch test');
    return false;
  }
})();

const out = tempDir('iotc-camera-sketch-');
let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.stop();
  out.cleanup();
});

test('the ESP32-CAM sketch compiles, and its frame reaches the hub byte-exact as image/jpeg', { skip: !haveGxx }, async () => {
  const dev = await makeDevice(server, 'Camera');
  // The sketch as a user fills it in: this hub's address, the device's id and key.
  const sketch = fs.readFileSync(path.join(ARDUINO, 'CameraFrames/CameraFrames.ino'), 'utf8')
    .replace('"192.168.1.10"', '"127.0.0.1"')
    .replace('PORT = 8888', `PORT = ${server.port}`)
    .replace('"DEVICE_ID"', JSON.stringify(dev.id))
    .replace('"DEVICE_KEY"', JSON.stringify(dev.key));
  assert.ok(sketch.includes(dev.key) && sketch.includes(String(server.port)), 'the sketch still names its settings as the test expects');
  const unit = path.join(out.dir, 'CameraFrames.cpp');
  fs.writeFileSync(unit, `#include <Arduino.h>\n${sketch}`);
  const binary = path.join(out.dir, 'CameraFrames');
  const shim = path.join(ARDUINO, 'host-shim');
  await run('g++', ['-std=gnu++17', '-Wall', '-Wextra', '-Werror', '-I', shim, unit, path.join(shim, 'host_main.cpp'), path.join(shim, 'esp32_cam_host.cpp'), '-o', binary], { timeout: 120_000 });

  const jpeg = crypto.randomBytes(40_000);
  jpeg.set([0xff, 0xd8, 0xff, 0xe0], 0);
  const frameFile = path.join(out.dir, 'frame.jpg');
  fs.writeFileSync(frameFile, jpeg);
  // setup() then one loop(): one frame PUT.
  const ran = await run(binary, [], { timeout: 20_000, env: { ...process.env, IOTC_HOST_FRAME: frameFile } });
  assert.doesNotMatch(ran.stdout, /not stored|failed/, ran.stdout);
  const stored = await server.hub.store.latestBlob(dev.id, 'cam');
  assert.ok(stored, 'a frame was stored');
  assert.equal(stored.type, 'image/jpeg');
  assert.equal(stored.side, 'device');
  assert.ok(stored.data.equals(jpeg), 'byte-exact');
});
