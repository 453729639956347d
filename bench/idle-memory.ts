/**
 * Where an idle authenticated WebSocket (or, with --mqtt, MQTT) connection's memory goes: the hub (the built dist/, as `npm run bench`
 * runs it — under tsx every function would carry a `name` property, 256 B each) runs in this process, the
 * connections come from a load-generator worker, and the process's own memory accounts are read (after a
 * full GC) before and after: V8 heap, external/ArrayBuffer memory, and RSS (which also holds the kernel-side
 * socket buffers only partly, and malloc's slack). Run with --expose-gc:
 *   node --expose-gc --import tsx bench/idle-memory.ts [CONNECTIONS] [--mqtt] [--by-class] [--snapshot FILE]
 * (--snapshot keeps the heap snapshot --by-class reads, for a closer look in DevTools.)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { makeFixture } from './fixture.js';
import { Generator } from './generator.js';
import { ROOT, testConfig } from '../test/helpers.js';
import type * as ServerModule from '../src/server.js';
import type * as LogModule from '../src/log.js';
import { ensureBuilt, freePort } from './targets.js';
import type { Endpoint } from './targets.js';

const count = Number(process.argv[2] ?? 3000);
const overMqtt = process.argv.includes('--mqtt');
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iotc-idle-memory-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function snapshot() {
  gc!();
  gc!();
  const m = process.memoryUsage();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]));
  return { ...m, spaces };
}

/** A heap snapshot's self size by constructor name, per connection: where the heap above goes. */
function byClass(n: number): void {
  const keep = process.argv.indexOf('--snapshot');
  const file = v8.writeHeapSnapshot(keep > 0 ? path.resolve(process.argv[keep + 1]) : path.join(dir, 'idle.heapsnapshot'));
  const snap = JSON.parse(fs.readFileSync(file, 'utf8'));
  const fields: string[] = snap.snapshot.meta.node_fields;
  const types: string[] = snap.snapshot.meta.node_types[0];
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const sizes = new Map<string, { bytes: number; count: number }>();
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const key = `${types[snap.nodes[i + iType]]}:${snap.strings[snap.nodes[i + iName]]}`.slice(0, 60);
    const e = sizes.get(key) ?? (sizes.set(key, { bytes: 0, count: 0 }), sizes.get(key)!);
    e.bytes += snap.nodes[i + iSize];
    e.count++;
  }
  // Who holds the dictionary-mode property stores ("(object properties)"): objects that went slow.
  const iEdges = fields.indexOf('edge_count');
  const eFields: string[] = snap.snapshot.meta.edge_fields;
  const iTo = eFields.indexOf('to_node');
  const owners = new Map<string, number>();
  for (let i = 0, e = 0; i < snap.nodes.length; i += fields.length) {
    const owner = `${types[snap.nodes[i + iType]]}:${snap.strings[snap.nodes[i + iName]]}`.slice(0, 60);
    for (let k = 0; k < snap.nodes[i + iEdges]; k++, e += eFields.length) {
      const to = snap.edges[e + iTo];
      if (types[snap.nodes[to + iType]] === 'array' && snap.strings[snap.nodes[to + iName]] === '(object properties)') {
        owners.set(owner, (owners.get(owner) ?? 0) + snap.nodes[to + iSize]);
      }
    }
  }
  console.log('  dictionary-mode properties by owner, bytes per connection:');
  for (const [k, b] of [...owners].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`    ${(b / n).toFixed(0).padStart(6)} B  ${k}`);
  console.log('  heap by constructor (objects with at least one per connection), bytes per connection:');
  for (const [k, e] of [...sizes].filter(([, e]) => e.count >= n).sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 25)) {
    console.log(`    ${(e.bytes / n).toFixed(0).padStart(6)} B  ${(e.count / n).toFixed(1).padStart(5)} ×  ${k}`);
  }
}

try {
  const fixture = await makeFixture(dir, count, () => {});
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir);
  fs.copyFileSync(fixture.file, path.join(dataDir, 'iotc.db'));
  ensureBuilt((line) => console.log(line));
  const { startServer } = (await import(path.join(ROOT, 'dist/server.js'))) as typeof ServerModule;
  const { createLogger } = (await import(path.join(ROOT, 'dist/log.js'))) as typeof LogModule;
  const mqttPort = overMqtt ? await freePort() : 0;
  const server = await startServer(testConfig({ rateLimit: 0, maxUnauthPerAddress: 1_000_000, mqttPort }, dataDir), createLogger('silent'));
  const endpoint: Endpoint = overMqtt ? { protocol: 'mqtt', host: '127.0.0.1', port: mqttPort, login: true } : { protocol: 'iotc', host: '127.0.0.1', port: server.port };
  const gen = await Generator.spawn(1);
  try {
    await sleep(1000);
    const before = snapshot();
    await gen.setup([{ kind: 'connect', endpoint, creds: fixture.devices, rate: 2000, maxPending: 100, localAddresses: ['127.0.0.1'] }]);
    gen.start();
    for (let m = await gen.mark(); m.opened + m.failed < count; m = await gen.mark()) await sleep(250);
    await sleep(2000);
    const after = snapshot();
    const kib = (a: number, b: number) => ((a - b) / count / 1024).toFixed(2).padStart(7);
    const opened = (await gen.mark()).opened;
    if (opened < count) console.log(`only ${opened} of ${count} connections opened`);
    console.log(`${count} idle authenticated ${overMqtt ? 'MQTT' : 'WebSocket'} connections, per connection (KiB):`);
    console.log(`  RSS           ${kib(after.rss, before.rss)}`);
    console.log(`  V8 heap used  ${kib(after.heapUsed, before.heapUsed)}`);
    console.log(`  external      ${kib(after.external, before.external)}  (of which ArrayBuffers ${kib(after.arrayBuffers, before.arrayBuffers).trim()})`);
    for (const [name, used] of Object.entries(after.spaces)) {
      const d = used - (before.spaces[name] ?? 0);
      if (Math.abs(d) / count > 50) console.log(`    heap ${name.padEnd(22)} ${kib(used, before.spaces[name] ?? 0)}`);
    }
    if (process.argv.includes('--by-class')) byClass(count);
    await gen.teardown();
  } finally {
    await gen.exit();
    await server.close();
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
