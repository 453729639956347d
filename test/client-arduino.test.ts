/**
 * The Arduino library (clients/arduino/IOTcommunicate) compiles, links and runs setup()/loop() on this machine with g++
 * against the documented host shims of the Arduino core, arduinoWebSockets and ArduinoJson (clients/arduino/host-shim).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import crypto from 'node:crypto';
import { makeDevice, ROOT, startTestServer, tempDir } from './helpers.js';
import type { TestServer } from './helpers.js';

/** Runs a program with no standard input (a sketch that exits at once must not race a pipe); rejects on failure. */
const run = promisify(execFile);

const ARDUINO = path.join(ROOT, 'clients/arduino');
const LIBRARY = path.join(ARDUINO, 'IOTcommunicate');
const haveGxx = (() => {
  try {
    execFileSync('g++', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env.IOTC_REQUIRE_SERVICES === '1') throw new Error('g++ is required (IOTC_REQUIRE_SERVICES=1): apt-get install g++');
    console.log('# notice: g++ not found; skipping the Arduino library compile test');
    return false;
  }
})();

const examples = fs.readdirSync(path.join(LIBRARY, 'examples'));
const out = tempDir('iotc-arduino-');
after(() => out.cleanup());

describe('Arduino library', { skip: !haveGxx }, () => {
  test('has the three examples and an Arduino library layout', () => {
    assert.deepEqual(examples.sort(), ['CommandWithConfirmation', 'LampSwitch', 'Sensor']);
    const props = fs.readFileSync(path.join(LIBRARY, 'library.properties'), 'utf8');
    assert.match(props, /^name=IOTcommunicate$/m);
    assert.match(props, /^depends=WebSockets, ArduinoJson$/m);
    for (const ex of examples) assert.ok(fs.existsSync(path.join(LIBRARY, 'examples', ex, `${ex}.ino`)), ex);
  });

  for (const ex of examples) {
    test(`example ${ex} compiles with warnings as errors, links and runs setup() and loop() on the host shims`, async () => {
      // A sketch is C++ with Arduino.h included first, which the IDE does and g++ needs told.
      const unit = path.join(out.dir, `${ex}.cpp`);
      fs.writeFileSync(unit, `#include <Arduino.h>\n#include "${path.join(LIBRARY, 'examples', ex, `${ex}.ino`)}"\n`);
      const binary = path.join(out.dir, ex);
      const args = ['-std=gnu++17', '-Wall', '-Wextra', '-Werror', '-I', path.join(ARDUINO, 'host-shim'), '-I', path.join(LIBRARY, 'src'), unit, path.join(LIBRARY, 'src/IOTcommunicate.cpp'), path.join(ARDUINO, 'host-shim/host_main.cpp'), '-o', binary];
      // Both reject (failing the test with the compiler's or the program's output) on a non-zero exit.
      await run('g++', args, { timeout: 120_000 });
      const ran = await run(binary, [], { timeout: 10_000 });
      assert.equal(ran.stderr, '');
    });
  }
});

/**
 * The ESP32-CAM sketch (clients/arduino/CameraFrames) beside the library compiles against the host shims of the camera
 * driver and HTTPClient too, and run on this machine it PUTs its camera's frame to a real hub.
 */
describe('ESP32-CAM sketch', { skip: !haveGxx }, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  test('compiles, and its frame reaches the hub byte-exact as image/jpeg', async () => {
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
});
