/**
 * Summarises V8 .cpuprofile files (node --cpu-prof): self time by function and by package/file, so a
 * profile can be read in a terminal and quoted in docs/performance.md.
 * With --spans, how long each named function held the thread at a time: the durations of runs of consecutive
 * samples whose stack holds it (record with --cpu-prof-interval=100 for sub-millisecond runs), which is how
 * the event loop's long turns were traced to the journal move and the WAL checkpoint.
 *   node --import tsx bench/profile-summary.ts PROFILE.cpuprofile [--top 30] [--spans settleSome,commit]
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

function where(url: string): string {
  if (!url) return '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 13).split('/').slice(0, url.slice(nm + 13).startsWith('@') ? 2 : 1).join('/');
  if (url.startsWith('node:')) return url;
  const i = Math.max(url.lastIndexOf('/dist/'), url.lastIndexOf('/src/'), url.lastIndexOf('/bench/'));
  return i >= 0 ? url.slice(i + 1) : url;
}

const { values, positionals: files } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '30' }, spans: { type: 'string', default: '' } },
});
const spanNames = values.spans!.split(',').filter(Boolean);
/** Per --spans function, the length in ms of each run of samples holding it. */
const spans = new Map<string, number[]>(spanNames.map((n) => [n, []]));
const top = Number(values.top);
if (!Number.isInteger(top) || top < 1) throw new Error(`--top must be a whole number of rows, got "${values.top}"`);
if (files.length === 0) throw new Error('usage: profile-summary.ts PROFILE.cpuprofile [MORE.cpuprofile …] [--top 30]');
const byFn = new Map<string, number>();
const byFile = new Map<string, number>();
let total = 0;
for (const file of files) {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  if (spanNames.length > 0) collectSpans(p, nodes);
  for (let i = 0; i < p.samples.length; i++) {
    const n = nodes.get(p.samples[i])!;
    const dt = p.timeDeltas[i] ?? 0;
    total += dt;
    const f = n.callFrame;
    const fn = `${f.functionName || '(anonymous)'}  ${where(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + dt);
    const w = f.functionName === '(idle)' ? '(idle)' : f.functionName === '(garbage collector)' ? '(gc)' : where(f.url);
    byFile.set(w, (byFile.get(w) ?? 0) + dt);
  }
}
const pct = (v: number) => `${((v / total) * 100).toFixed(1).padStart(5)} %`;
const show = (title: string, m: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${k}`);
};
console.log(`${files.length} profile(s), ${(total / 1e6).toFixed(1)} s sampled`);
show('self time by package / file', byFile);
show('self time by function', byFn);
if (spanNames.length > 0) {
  console.log('\nspans: how long each function held the thread at a time (ms)');
  for (const [name, d] of spans) {
    d.sort((a, b) => a - b);
    const q = (x: number) => (d.length ? d[Math.min(d.length - 1, Math.floor(x * d.length))].toFixed(2) : '–');
    const sum = d.reduce((a, b) => a + b, 0);
    console.log(`${name.padEnd(28)} runs ${String(d.length).padStart(6)}  p50 ${q(0.5)}  p99 ${q(0.99)}  max ${d.length ? d[d.length - 1].toFixed(2) : '–'}  total ${sum.toFixed(0)}`);
  }
}

function collectSpans(p: Profile, nodes: Map<number, Node>): void {
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const holds = new Map<number, Set<string>>();
  const held = (id: number): Set<string> => {
    let out = holds.get(id);
    if (out) return out;
    out = new Set();
    for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) {
      const fn = nodes.get(x)!.callFrame.functionName;
      if (spans.has(fn)) out.add(fn);
    }
    holds.set(id, out);
    return out;
  };
  const open = new Map<string, number>();
  let t = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const now = held(p.samples[i]);
    for (const name of spanNames) {
      if (now.has(name) && !open.has(name)) open.set(name, t);
      else if (!now.has(name) && open.has(name)) {
        spans.get(name)!.push((t - open.get(name)!) / 1000);
        open.delete(name);
      }
    }
    t += p.timeDeltas[i + 1] ?? 0;
  }
}
