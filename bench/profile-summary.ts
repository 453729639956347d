/**
 * Summarises V8 .cpuprofile files (node --cpu-prof): self time by function and by package/file, so a
 * profile can be read in a terminal and quoted in docs/performance.md.
 *   node --import tsx bench/profile-summary.ts PROFILE.cpuprofile [--top 30]
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

const { values, positionals: files } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' } } });
const top = Number(values.top);
if (!Number.isInteger(top) || top < 1) throw new Error(`--top must be a whole number of rows, got "${values.top}"`);
if (files.length === 0) throw new Error('usage: profile-summary.ts PROFILE.cpuprofile [MORE.cpuprofile …] [--top 30]');
const byFn = new Map<string, number>();
const byFile = new Map<string, number>();
let total = 0;
for (const file of files) {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
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
