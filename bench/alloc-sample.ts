/**
 * What a running server allocates, by function: a sampling heap profile taken over the inspector with the
 * objects that minor and major GCs collected included, so it counts what was allocated (what makes the
 * collector run), not what is still alive. Start the server with an inspector, put it under load, and run:
 *   npm run bench -- --scenarios latency --targets iotc --node-flags=--inspect=127.0.0.1:9229 &
 *   node --import tsx bench/alloc-sample.ts [--port 9229] [--wait 3500] [--for 3000] [--top 25] [--out FILE]
 * At a fixed offered rate (the latency scenario) the total divided by the messages of the window is the bytes
 * allocated per message. --out keeps the .heapprofile for DevTools.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';

interface SampleNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SampleNode[];
}

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '9229' },
    wait: { type: 'string', default: '3500' },
    for: { type: 'string', default: '3000' },
    top: { type: 'string', default: '25' },
    out: { type: 'string' },
  },
});
const number = (name: keyof typeof values) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number, got "${values[name]}"`);
  return n;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

await sleep(number('wait'));
const targets = (await (await fetch(`http://127.0.0.1:${number('port')}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
if (targets.length === 0) throw new Error('no inspector target on that port: start the server with --inspect');
const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
let lastId = 0;
const waiting = new Map<number, (result: unknown) => void>();
ws.on('message', (data) => {
  const m = JSON.parse(String(data)) as { id?: number; result?: unknown };
  if (m.id !== undefined) waiting.get(m.id)?.(m.result);
});
const call = (method: string, params: object = {}) =>
  new Promise<unknown>((resolve) => {
    const id = ++lastId;
    waiting.set(id, resolve);
    ws.send(JSON.stringify({ id, method, params }));
  });

await call('HeapProfiler.enable');
await call('HeapProfiler.startSampling', { samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
await sleep(number('for'));
const { profile } = (await call('HeapProfiler.stopSampling')) as { profile: { head: SampleNode } };
ws.close();
if (values.out) fs.writeFileSync(values.out, JSON.stringify(profile));

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
const nameOf = (n: SampleNode) => {
  const f = n.callFrame;
  return `${f.functionName || '(anonymous)'}  ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
};
function walk(n: SampleNode, above: Set<string>): number {
  const name = nameOf(n);
  self.set(name, (self.get(name) ?? 0) + n.selfSize);
  const inner = new Set(above).add(name);
  let total = n.selfSize;
  for (const c of n.children) total += walk(c, inner);
  // A recursive function counts once, at its outermost frame.
  if (!above.has(name)) inclusive.set(name, (inclusive.get(name) ?? 0) + total);
  return total;
}
const total = walk(profile.head, new Set());
const mb = (b: number) => (b / 1_048_576).toFixed(2).padStart(8);
console.log(`${mb(total).trim()} MB allocated in ${values.for} ms (sampled every 16 KiB on average)`);
for (const [title, table] of [['self', self], ['inclusive', inclusive]] as const) {
  console.log(`\nby function, ${title} (MB)`);
  for (const [name, bytes] of [...table].sort((a, b) => b[1] - a[1]).slice(0, number('top'))) console.log(`${mb(bytes)}  ${name}`);
}
