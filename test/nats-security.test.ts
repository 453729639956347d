/** Issue 9: the NATS bus checks every message it receives, and talks to a NATS that wants credentials or TLS. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { createBus } from '../src/bus/index.js';
import { busEventProblem, NatsBus } from '../src/bus/nats.js';
import type { BusEvent } from '../src/bus/types.js';
import { newDeviceId } from '../src/core/secrets.js';
import { createLogger } from '../src/log.js';
import { LogCapture, sleep, tempDir, waitFor } from './helpers.js';
import { natsServerInstalled, ThrowawayNats } from './services.js';

const reading = (deviceId: string, value: unknown, extra: Record<string, unknown> = {}) => ({ deviceId, sensor: 'temp', value, side: 'device', seq: 1, time: Date.now(), ...extra });

describe('NATS security', { skip: !natsServerInstalled() && 'nats-server not installed' }, () => {
  test('every received message is checked; bad ones are dropped, counted and logged (not once per message)', async () => {
    const nats = await ThrowawayNats.start();
    const logs = new LogCapture();
    const b = await NatsBus.connect({ url: nats.url, nodeId: 'b', log: createLogger('info', logs) });
    const raw = await connect({ servers: `127.0.0.1:${nats.port}` });
    try {
      const got: BusEvent[] = [];
      b.onEvent((e) => got.push(e));
      const x = newDeviceId();
      b.subscribe(x);
      await b.ping();
      const bad = [
        { type: 'readings', deviceId: x, readings: [reading(x, 1, { sensor: 's'.repeat(65) })] },
        { type: 'readings', deviceId: x, readings: [reading(x, 1, { seq: -1 })] },
        { type: 'readings', deviceId: x, readings: [reading(x, 1, { time: 1e300 })] },
        { type: 'readings', deviceId: x, readings: [{ ...reading(x, 1), value: undefined }] },
        { type: 'readings', deviceId: x, readings: [] },
        { type: 'readings', deviceId: x, readings: [reading('OTHER', 1)] },
        { type: 'device', deviceId: x, kind: 'exploded' },
        { type: 'surprise', deviceId: x },
        [1, 2, 3],
      ];
      for (const m of bad) raw.publish(`iotc.dev.${x}`, JSON.stringify(m));
      raw.publish(`iotc.dev.${x}`, JSON.stringify({ type: 'readings', deviceId: x, readings: [reading(x, 'good')] }));
      await raw.flush();
      await waitFor(() => got.length > 0, 5000, 'the good event');
      await sleep(100);
      assert.equal(got.length, 1);
      assert.equal(got[0].type === 'readings' && got[0].readings[0].value, 'good');
      assert.equal(b.droppedEvents, bad.length);
      // More readings than any relay batch (NATS's 1 MB payload cap stops most such messages before us).
      assert.match(busEventProblem({ type: 'readings', deviceId: x, readings: Array.from({ length: 10_001 }, () => reading(x, 1)) }, x)!, /readings/);
      const lines = logs.entries.filter((e) => /dropped a bus message/.test(e.msg));
      assert.equal(lines.length, 1, 'one line for a burst');
      assert.ok(lines[0].problem && lines[0].droppedTotal >= 1);
    } finally {
      await raw.close();
      await b.close();
      await nats.stop();
    }
  });

  test('user and password, or a token, in the bus URL; without them a clear refusal', async () => {
    const nats = await ThrowawayNats.start(['--user', 'iotc', '--pass', 'n4ts-s3cret']);
    try {
      await assert.rejects(NatsBus.connect({ url: nats.url, nodeId: 'a' }), /Cannot reach NATS at nats:\/\/127\.0\.0\.1:\d+: .*(Authorization|AUTHORIZATION)/i);
      const wrong = `nats://iotc:nope@127.0.0.1:${nats.port}`;
      await assert.rejects(NatsBus.connect({ url: wrong, nodeId: 'a' }), (err: Error) => !err.message.includes('nope') && /iotc:\*\*\*@/.test(err.message));
      const bus = await createBus({ bus: `nats://iotc:n4ts-s3cret@127.0.0.1:${nats.port}` }, 'a');
      await bus.ping();
      await bus.close();
    } finally {
      await nats.stop();
    }
    const tokenNats = await ThrowawayNats.start(['--auth', 'T0KEN-for-nodes']);
    try {
      const bus = await createBus({ bus: `nats://T0KEN-for-nodes@127.0.0.1:${tokenNats.port}` }, 'a');
      await bus.ping();
      await bus.close();
    } finally {
      await tokenNats.stop();
    }
  });

  test('mutual TLS: the server is verified with IOTC_NATS_TLS_CA and knows the node by its certificate', async () => {
    const { dir, cleanup } = tempDir();
    const f = (name: string) => path.join(dir, name);
    const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
    try {
      ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=iotc test CA', '-keyout', f('ca.key'), '-out', f('ca.pem'));
      for (const who of ['server', 'node']) {
        ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${who}`, '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`));
        const ext = f(`${who}.ext`);
        execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth,clientAuth\\n' > ${ext}`]);
        ssl('x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', ext, '-out', f(`${who}.pem`));
      }
      const nats = await ThrowawayNats.start(['--tlsverify', '--tlscert', f('server.pem'), '--tlskey', f('server.key'), '--tlscacert', f('ca.pem')]);
      try {
        const url = `tls://127.0.0.1:${nats.port}`;
        await assert.rejects(createBus({ bus: url }, 'a'), /Cannot reach NATS/, 'an unknown server certificate is refused');
        await assert.rejects(createBus({ bus: url, natsTlsCa: f('ca.pem') }, 'a'), /Cannot reach NATS/, 'the server wants our certificate');
        await assert.rejects(createBus({ bus: url, natsTlsCa: f('ca.pem'), natsTlsCert: f('node.pem') }, 'a'), /both the certificate .* and its key/);
        await assert.rejects(createBus({ bus: url, natsCreds: f('missing.creds') }, 'a'), /Cannot read the NATS credentials file .*missing\.creds/);
        const bus = await createBus({ bus: url, natsTlsCa: f('ca.pem'), natsTlsCert: f('node.pem'), natsTlsKey: f('node.key') }, 'a');
        await bus.ping();
        await bus.close();
      } finally {
        await nats.stop();
      }
    } finally {
      cleanup();
    }
  });
});
