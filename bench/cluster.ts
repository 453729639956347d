/**
 * Cluster benchmark: 1, 2 and 3 server processes on PostgreSQL (127.0.0.1:5432, a fresh database per run)
 * and NATS (127.0.0.1:4222). Each device writes on one node and its client listens on the next one, so with
 * two or more nodes every reading crosses nodes. Measures delivered readings per second and latency.
 * With `--placement same`, a device and its client connect to the same node (as a load balancer that routes by
 * device id would place them), so readings stay on their node and nodes share the work without crossing.
 * CPU per delivered reading is the nodes' own (all threads), and the whole machine's besides: nodes, PostgreSQL,
 * NATS and this process, which plays every device and client.
 *
 *   node --import tsx bench/cluster.ts [--nodes 1,2,3] [--devices 24] [--readings 1000] [--window 20] [--placement cross|same]
 */
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { Accounts } from '../src/core/accounts.js';
import { PostgresStore } from '../src/store/postgres.js';
import { serviceAvailable } from '../test/helpers.js';
import { createTestDatabase } from '../test/pg-helpers.js';
import { NodeProcess } from '../test/services.js';
import { sample } from './proc.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1,2,3' },
    devices: { type: 'string', default: '24' },
    readings: { type: 'string', default: '1000' },
    window: { type: 'string', default: '20' },
    placement: { type: 'string', default: 'cross' },
  },
});
if (values.placement !== 'cross' && values.placement !== 'same') throw new Error('--placement is cross or same');
const CROSS = values.placement === 'cross';
const NODE_COUNTS = values.nodes!.split(',').map(Number);
const DEVICES = Number(values.devices);
const READINGS = Number(values.readings);
const WINDOW = Number(values.window);

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Writes `count` readings with at most `window` unacknowledged; resolves when all are acknowledged. */
function write(ws: WebSocket, count: number, window: number, sensor: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let acked = 0;
    const send = () => {
      while (sent < count && sent - acked < window) {
        sent++;
        ws.send(JSON.stringify({ method: 'put', id: sent, status: { sensor, value: sent } }));
      }
    };
    ws.on('message', (data) => {
      const m = JSON.parse(String(data));
      if (!('ok' in m)) return;
      if (!m.ok) return reject(new Error(`write refused: ${m.error}`));
      if (++acked === count) resolve();
      else send();
    });
    send();
  });
}

/** Counts readings of `sensor` arriving, with their latency from the server's time stamp. */
function listen(ws: WebSocket, sensor: string, expect: number, latencies: number[]): Promise<void> {
  return new Promise((resolve) => {
    let got = 0;
    ws.on('message', (data) => {
      const m = JSON.parse(String(data));
      if (m.sensor !== sensor || m.sync) return;
      latencies.push(Date.now() - m.time);
      if (++got === expect) resolve();
    });
  });
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];

async function metric(node: NodeProcess, name: string): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

async function runOnce(nodeCount: number) {
  const db = await createTestDatabase();
  const store = await PostgresStore.open(db.url());
  const nodes: NodeProcess[] = [];
  const sockets: WebSocket[] = [];
  try {
    const env = { IOTC_STORE: db.url(), IOTC_BUS: 'nats://127.0.0.1:4222', IOTC_RATE_LIMIT: '0', IOTC_MAX_UNAUTH_PER_ADDRESS: '1000000', IOTC_LOG_LEVEL: 'error' };
    nodes.push(...(await Promise.all(Array.from({ length: nodeCount }, (_, i) => NodeProcess.start(`bench-${nodeCount}-${i}`, env)))));
    const accounts = new Accounts(store, null);
    const user = await accounts.signUp({ email: 'bench@example.com', name: 'Bench', password: 'correct horse battery' });
    const pairs = [];
    for (let i = 0; i < DEVICES; i++) {
      const d = await accounts.createDevice(user.id, `bench ${i}`);
      const q = (side: string) => `/ws?device=${d.id}&key=${d.key}&side=${side}`;
      const device = await open(nodes[i % nodeCount].wsUrl + q('device'));
      const client = await open(nodes[(i + (CROSS ? 1 : 0)) % nodeCount].wsUrl + q('client'));
      sockets.push(device, client);
      pairs.push({ device, client });
    }
    // Warm up: connections, prepared statements, JIT.
    const warm: number[] = [];
    await Promise.all(pairs.map((p) => Promise.all([listen(p.client, 'warm', 50, warm), write(p.device, 50, WINDOW, 'warm')])));
    const batchesBefore = await Promise.all(nodes.map((n) => Promise.all([metric(n, 'iotc_store_batch_size_sum'), metric(n, 'iotc_store_batch_size_count')])));

    const nodePids = nodes.map((n) => n.child.pid!);
    const machinePids = [...nodePids, ...servicePids(), process.pid];
    const cpuBefore = [sample(nodePids).cpuUs, sample(machinePids).cpuUs];
    const latencies: number[] = [];
    const started = performance.now();
    await Promise.all(pairs.map((p) => Promise.all([listen(p.client, 'bench', READINGS, latencies), write(p.device, READINGS, WINDOW, 'bench')])));
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = [sample(nodePids).cpuUs, sample(machinePids).cpuUs];

    const batchesAfter = await Promise.all(nodes.map((n) => Promise.all([metric(n, 'iotc_store_batch_size_sum'), metric(n, 'iotc_store_batch_size_count')])));
    const readingsStored = batchesAfter.reduce((s, [sum], i) => s + sum - batchesBefore[i][0], 0);
    const batches = batchesAfter.reduce((s, [, count], i) => s + count - batchesBefore[i][1], 0);
    latencies.sort((a, b) => a - b);
    return {
      nodes: nodeCount,
      delivered: latencies.length,
      seconds: Number(seconds.toFixed(2)),
      perSecond: Math.round(latencies.length / seconds),
      p50ms: pct(latencies, 50),
      p99ms: pct(latencies, 99),
      avgBatch: Number((readingsStored / Math.max(1, batches)).toFixed(1)),
      nodesUsPerReading: Number(((cpuAfter[0] - cpuBefore[0]) / latencies.length).toFixed(1)),
      machineUsPerReading: Number(((cpuAfter[1] - cpuBefore[1]) / latencies.length).toFixed(1)),
    };
  } finally {
    for (const ws of sockets) ws.terminate();
    await Promise.all(nodes.map((n) => n.stop('SIGTERM')));
    await store.close();
    await db.drop();
  }
}

/** PostgreSQL's and NATS's processes on this machine, whose CPU the run also costs. */
function servicePids(): number[] {
  try {
    return execFileSync('pgrep', ['-f', 'postgres|nats-server'], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

if (!(await serviceAvailable('PostgreSQL', 5432)) || !(await serviceAvailable('NATS', 4222))) process.exit(1);
console.log(`cluster bench: ${DEVICES} devices, ${READINGS} readings each, ${WINDOW} in flight per device; device on node i, client on node ${CROSS ? 'i+1' : 'i'}`);
const rows = [];
for (const n of NODE_COUNTS) {
  const r = await runOnce(n);
  rows.push(r);
  console.log(JSON.stringify(r));
}
console.log('\n| Nodes | Delivered | Seconds | Readings/s | p50 latency | p99 latency | Avg store batch | Nodes\' CPU µs/reading | Machine CPU µs/reading |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  console.log(`| ${r.nodes} | ${r.delivered} | ${r.seconds} | ${r.perSecond} | ${r.p50ms} ms | ${r.p99ms} ms | ${r.avgBatch} | ${r.nodesUsPerReading} | ${r.machineUsPerReading} |`);
}
