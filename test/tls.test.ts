/** TLS built in: https, wss and mqtts with a certificate made at test time, and certificates swapped without a restart. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { createLogger } from '../src/log.js';
import { startServer } from '../src/server.js';
import { freePort, makeDevice, spawnServe, startTestServer, tempDir, testConfig, waitFor, within } from './helpers.js';
import type { TestServer } from './helpers.js';
import { mqttConnect } from './mqtt-clients.js';

const tmp = tempDir('iotc-tls-');
after(() => tmp.cleanup());

/** A self-signed EC certificate for 127.0.0.1 and localhost; it is its own CA. */
function makeCertificate(name: string): { cert: string; key: string; pem: string; fingerprint: string } {
  const cert = path.join(tmp.dir, `${name}.crt`);
  const key = path.join(tmp.dir, `${name}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-keyout', key, '-out', cert, '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'pipe' });
  const pem = fs.readFileSync(cert, 'utf8');
  return { cert, key, pem, fingerprint: new crypto.X509Certificate(pem).fingerprint256 };
}

function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const agent = new https.Agent({ ca });
    https.get(url, { agent }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/** The fingerprint of the certificate a fresh TLS connection to `port` is shown. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const fp = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
      socket.destroy();
      resolve(fp);
    });
    socket.on('error', reject);
  });
}

describe('TLS built in', () => {
  const first = makeCertificate('first');
  let server: TestServer;

  before(async () => {
    server = await startTestServer({ tlsCert: first.cert, tlsKey: first.key, mqttsPort: await freePort() });
  });
  after(() => server.stop());

  test('https: the API and health answer over TLS to a client trusting the certificate; plain http is not served', async () => {
    assert.match(server.url, /^https:/);
    const res = await httpsGet(`https://127.0.0.1:${server.port}/healthz`, first.pem);
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body), { ok: true });
    // A client that does not trust the certificate is refused by its own check.
    await assert.rejects(httpsGet(`https://127.0.0.1:${server.port}/healthz`, makeCertificate('stranger').pem), /self[- ]signed|unable to verify|certificate/i);
    const plain = await fetch(`http://127.0.0.1:${server.port}/healthz`).then((r) => r.status, (err: Error) => err);
    assert.ok(plain instanceof Error || plain >= 400, `plain http must not be served, got ${String(plain)}`);
  });

  test('wss: a device and an app exchange a reading over WebSocket with TLS', async () => {
    const d = await makeDevice(server);
    const open = (side: string) => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`wss://127.0.0.1:${server.port}/ws?device=${d.id}&key=${d.key}&side=${side}`, { ca: first.pem });
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
    const device = await open('device');
    const app = await open('client');
    const got = new Promise<any>((resolve) => app.on('message', (m) => {
      const msg = JSON.parse(m.toString());
      if (msg.sensor === 'temp') resolve(msg);
    }));
    device.send(JSON.stringify({ method: 'put', id: 1, status: { sensor: 'temp', value: 21.5 } }));
    const reading = await within(got, 5000, 'reading over wss');
    assert.equal(reading.value, 21.5);
    device.close();
    app.close();
  });

  test('mqtts: the mqtt client with the CA publishes, and the reading is stored', async () => {
    assert.ok(server.mqttsPort);
    const d = await makeDevice(server);
    const client = await mqttConnect(`mqtts://127.0.0.1:${server.mqttsPort}`, { username: d.id, password: d.key, ca: first.pem });
    try {
      await client.publishAsync(`devices/${d.id}/humidity`, '40', { qos: 1 });
      const latest = await server.hub.store.latest(d.id, 'humidity');
      assert.equal(latest?.value, 40);
    } finally {
      await client.endAsync();
    }
    // Without trusting the certificate the client refuses the server.
    await assert.rejects(mqttConnect(`mqtts://127.0.0.1:${server.mqttsPort}`, { username: d.id, password: d.key, ca: makeCertificate('other').pem }));
  });
});

describe('certificate reload', () => {
  test('a changed file and reloadTls (SIGHUP) swap the certificate on every TLS listener without a restart', async () => {
    const a = makeCertificate('reload-a');
    const b = makeCertificate('reload-b');
    const c = makeCertificate('reload-c');
    const certFile = path.join(tmp.dir, 'live.crt');
    const keyFile = path.join(tmp.dir, 'live.key');
    fs.copyFileSync(a.cert, certFile);
    fs.copyFileSync(a.key, keyFile);
    const dir = tempDir();
    const config = testConfig({ tlsCert: certFile, tlsKey: keyFile, mqttsPort: await freePort() }, dir.dir);
    const server = await startServer(config, createLogger('silent'), { tlsPollMs: 100 });
    try {
      assert.equal(await servedFingerprint(server.port), a.fingerprint);
      assert.equal(await servedFingerprint(server.mqttsPort!), a.fingerprint);

      // Renewal by writing new files over the old ones (as certbot's deploy hooks and Kubernetes secrets do).
      fs.copyFileSync(b.key, keyFile);
      fs.copyFileSync(b.cert, certFile);
      await waitFor(async () => (await servedFingerprint(server.port)) === b.fingerprint, 5000, 'the new certificate on the HTTP port');
      assert.equal(await servedFingerprint(server.mqttsPort!), b.fingerprint);

      // A half-written pair is refused and the certificate in use stays.
      fs.writeFileSync(certFile, 'not a certificate');
      assert.equal(server.reloadTls(), false);
      assert.equal(await servedFingerprint(server.port), b.fingerprint);

      // Explicit reload (what SIGHUP calls).
      fs.copyFileSync(c.cert, certFile);
      fs.copyFileSync(c.key, keyFile);
      assert.equal(server.reloadTls(), true);
      assert.equal(await servedFingerprint(server.port), c.fingerprint);
      assert.equal(await servedFingerprint(server.mqttsPort!), c.fingerprint);
      const res = await httpsGet(`https://127.0.0.1:${server.port}/healthz`, c.pem);
      assert.equal(res.status, 200);
    } finally {
      await server.close();
      dir.cleanup();
    }
  });

  test('iotc serve reloads its certificate on SIGHUP', async () => {
    const a = makeCertificate('hup-a');
    const b = makeCertificate('hup-b');
    const certFile = path.join(tmp.dir, 'hup.crt');
    const keyFile = path.join(tmp.dir, 'hup.key');
    fs.copyFileSync(a.cert, certFile);
    fs.copyFileSync(a.key, keyFile);
    const dir = tempDir();
    const serve = await spawnServe({ IOTC_DATA_DIR: dir.dir, IOTC_TLS_CERT: certFile, IOTC_TLS_KEY: keyFile, IOTC_MQTTS_PORT: '0' });
    try {
      assert.equal(await servedFingerprint(serve.port), a.fingerprint);
      // Replace by rename, atomically, so the file watcher may see it too: either way the new one must be served.
      fs.copyFileSync(b.cert, certFile + '.new');
      fs.copyFileSync(b.key, keyFile);
      fs.renameSync(certFile + '.new', certFile);
      serve.child.kill('SIGHUP');
      await waitFor(async () => (await servedFingerprint(serve.port)) === b.fingerprint, 10_000, 'the certificate after SIGHUP');
      // The log line travels through a pipe: it may reach this process after the new certificate is served.
      await waitFor(() => /TLS certificate reloaded/.test(serve.stdout), 5000, 'the reload in the log');
    } finally {
      serve.child.kill('SIGTERM');
      await serve.exited;
      dir.cleanup();
    }
  });

  test('a certificate without its key, or a key that does not match, stops the start with a clear message', async () => {
    const a = makeCertificate('bad-a');
    const b = makeCertificate('bad-b');
    const dir = tempDir();
    try {
      await assert.rejects(startServer(testConfig({ tlsCert: a.cert }, dir.dir), createLogger('silent')), /--tls-key \/ IOTC_TLS_KEY/);
      await assert.rejects(startServer(testConfig({ tlsCert: a.cert, tlsKey: b.key }, dir.dir), createLogger('silent')), /cannot be used together/);
      await assert.rejects(startServer(testConfig({ tlsCert: path.join(dir.dir, 'missing.crt'), tlsKey: a.key }, dir.dir), createLogger('silent')), /Cannot read the TLS certificate/);
    } finally {
      dir.cleanup();
    }
  });
});
