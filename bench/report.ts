/** Medians, ratios, the goals of the issue, the console table and the JSON results. */
import { STREAM_SCENARIOS } from './scenarios.js';
import type { Figures, ScenarioName } from './scenarios.js';

export interface TargetResult {
  label: string;
  rounds: Figures[];
  median: Figures;
  /** Each median figure divided by the bare relay's / Mosquitto's from the same run. */
  vsBare?: Figures;
  vsMosquitto?: Figures;
  notes: string[];
}

export interface ScenarioResult {
  name: ScenarioName;
  title: string;
  method: string;
  targets: Record<string, TargetResult>;
  skipped: Record<string, string>;
}

export interface Goal {
  goal: string;
  measured: string;
  met: boolean | null;
}

export interface Results {
  meta: Record<string, unknown>;
  scenarios: ScenarioResult[];
  goals: Goal[];
}

export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function medians(rounds: Figures[]): Figures {
  const keys = new Set(rounds.flatMap((r) => Object.keys(r)));
  const out: Figures = {};
  for (const k of keys) out[k] = median(rounds.map((r) => r[k]));
  return out;
}

function ratios(a: Figures, b: Figures): Figures {
  const out: Figures = {};
  for (const [k, v] of Object.entries(a)) if (Number.isFinite(v) && Number.isFinite(b[k]) && b[k] !== 0) out[k] = v / b[k];
  return out;
}

/** Fills in medians and ratios once all rounds of a scenario are in. */
export function finish(s: ScenarioResult): void {
  for (const t of Object.values(s.targets)) t.median = medians(t.rounds);
  const bare = s.targets.bare?.median;
  const mosq = s.targets.mosquitto?.median;
  for (const [name, t] of Object.entries(s.targets)) {
    if (bare && name !== 'bare') t.vsBare = ratios(t.median, bare);
    if (mosq && name !== 'mosquitto') t.vsMosquitto = ratios(t.median, mosq);
  }
}

export function fmt(v: number | undefined, digits?: number): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  const d = digits ?? (Math.abs(v) >= 1000 ? 0 : Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);
  return v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

const ratio = (v: number | undefined, digits = 2) => (v === undefined || !Number.isFinite(v) ? '–' : `${v.toFixed(digits)}×`);

interface Column {
  head: string;
  cell(t: TargetResult, name: string): string;
}

const fig = (key: string, head: string, digits?: number): Column => ({ head, cell: (t) => fmt(t.median[key], digits) });
const vs = (key: string, ref: 'bare' | 'mosquitto'): Column => ({
  head: ref === 'bare' ? '÷bare' : '÷mosq',
  cell: (t, name) => (name === ref ? '1' : ratio(ref === 'bare' ? t.vsBare?.[key] : t.vsMosquitto?.[key])),
});

const STREAM: Column[] = [
  fig('msgPerSec', 'msg/s'), vs('msgPerSec', 'bare'), vs('msgPerSec', 'mosquitto'),
  fig('cpuUsPerMsg', 'CPU µs/msg'), vs('cpuUsPerMsg', 'bare'), vs('cpuUsPerMsg', 'mosquitto'),
  fig('serverCpuPct', 'srv CPU %', 0),
  fig('p50Ms', 'p50 ms'), fig('p99Ms', 'p99 ms'), fig('p999Ms', 'p99.9 ms'),
  fig('rssPeakMiB', 'RSS MiB'), vs('rssPeakMiB', 'bare'), vs('rssPeakMiB', 'mosquitto'),
  fig('loopP99Ms', 'loop p99 ms'), fig('loopMaxMs', 'loop max ms'),
  fig('genCpuUsPerMsg', 'gen µs/msg'),
];

const COLUMNS: Record<ScenarioName, Column[]> = {
  ...(Object.fromEntries(STREAM_SCENARIOS.map((n) => [n, STREAM])) as Record<ScenarioName, Column[]>),
  latency: [
    fig('sentPerSec', 'offered/s'), fig('msgPerSec', 'delivered/s'),
    fig('p50Ms', 'p50 ms'), fig('p99Ms', 'p99 ms'), vs('p99Ms', 'bare'), vs('p99Ms', 'mosquitto'), fig('p999Ms', 'p99.9 ms'), fig('maxMs', 'max ms'),
    fig('cpuUsPerMsg', 'CPU µs/msg'), vs('cpuUsPerMsg', 'bare'), vs('cpuUsPerMsg', 'mosquitto'), fig('serverCpuPct', 'srv CPU %', 0),
    fig('rssPeakMiB', 'RSS MiB'), fig('loopP99Ms', 'loop p99 ms'), fig('loopP999Ms', 'loop p99.9 ms'), fig('loopMaxMs', 'loop max ms'),
    fig('mainWaitMsPerSec', 'waits for CPU ms/s'),
  ],
  connections: [
    fig('connections', 'open', 0), fig('failed', 'failed', 0),
    fig('connectPerSec', 'conn/s'), vs('connectPerSec', 'bare'), vs('connectPerSec', 'mosquitto'),
    fig('rssPerConnKiB', 'KiB/conn'), vs('rssPerConnKiB', 'bare'), vs('rssPerConnKiB', 'mosquitto'),
    fig('marginalKiB', 'last step KiB/conn'), fig('projected100kMiB', '100k proj. MiB', 0),
    fig('cpuUsPerConn', 'CPU µs/conn'), vs('cpuUsPerConn', 'bare'), vs('cpuUsPerConn', 'mosquitto'),
    fig('connectP99Ms', 'connect p99 ms'), fig('rssMiB', 'RSS MiB'), fig('genCpuUsPerConn', 'gen µs/conn'),
  ],
  durability: [
    fig('termAcknowledged', 'SIGTERM acked', 0), fig('termStored', 'stored', 0), fig('termLost', 'lost', 0), fig('termStoredNotAcknowledged', 'unacked', 0),
    fig('killAcknowledged', 'SIGKILL acked', 0), fig('killStored', 'stored', 0), fig('killLost', 'lost', 0), fig('killStoredNotAcknowledged', 'unacked', 0),
  ],
};

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const RULES_TARGETS = ['iotc-rules', 'iotc-fire'];

/** One rules target against IOTcommunicate without rules in one streaming scenario of the same run. */
export interface RulesComparison {
  scenario: ScenarioName;
  target: string;
  label: string;
  /** Rules on ÷ rules off, of the medians. */
  msgRatio: number;
  cpuRatio: number;
  /** The median of each round's ratio: rounds of the two ran one after the other, so they saw the same machine. */
  pairedMsgRatio: number;
  pairedCpuRatio: number;
  webhooksPerSec: number;
}

export function rulesComparisons(results: Results): RulesComparison[] {
  const out: RulesComparison[] = [];
  for (const s of results.scenarios) {
    const off = s.targets.iotc;
    // Streams compare throughput; latency (open loop, a fixed offered rate) compares CPU per message at equal load.
    if (!off || !(STREAM_SCENARIOS.includes(s.name) || s.name === 'latency')) continue;
    for (const name of RULES_TARGETS) {
      const on = s.targets[name];
      if (!on) continue;
      const paired = (k: string) => (on.rounds.length === off.rounds.length ? median(on.rounds.map((r, i) => r[k] / off.rounds[i][k])) : NaN);
      out.push({
        scenario: s.name, target: name, label: on.label,
        msgRatio: on.median.msgPerSec / off.median.msgPerSec, cpuRatio: on.median.cpuUsPerMsg / off.median.cpuUsPerMsg,
        pairedMsgRatio: paired('msgPerSec'), pairedCpuRatio: paired('cpuUsPerMsg'), webhooksPerSec: on.median.webhooksPerSec,
      });
    }
  }
  return out;
}

export function renderTables(results: Results): string {
  const out: string[] = [];
  for (const s of results.scenarios) {
    const cols = COLUMNS[s.name];
    const rows = Object.entries(s.targets).map(([name, t]) => [t.label, ...cols.map((c) => c.cell(t, name))]);
    out.push(`\n${s.title.toUpperCase()} — ${s.method}`);
    out.push(table(['target', ...cols.map((c) => c.head)], rows));
    for (const [name, why] of Object.entries(s.skipped)) out.push(`  (${name} skipped: ${why})`);
    for (const t of Object.values(s.targets)) for (const n of new Set(t.notes)) out.push(`  note (${t.label}): ${n}`);
  }
  const rules = rulesComparisons(results);
  if (rules.length > 0) {
    out.push('\nRULES ON ÷ RULES OFF — IOTcommunicate with automation rules against IOTcommunicate without, same run (ratio of medians; median of per-round ratios)');
    out.push(table(['scenario', 'target', 'msg/s', 'per round', 'CPU µs/msg', 'per round', 'webhooks/s'], rules.map((c) => [
      c.scenario, c.label, ratio(c.msgRatio, 3), ratio(c.pairedMsgRatio, 3), ratio(c.cpuRatio, 3), ratio(c.pairedCpuRatio, 3), fmt(c.webhooksPerSec),
    ])));
  }
  out.push('\nGOALS (issues 15 and 11, this machine)');
  out.push(table(['goal', 'measured', 'met'], results.goals.map((g) => [g.goal, g.measured, g.met === null ? 'n/a' : g.met ? 'yes' : 'NO'])));
  return out.join('\n');
}

/** The hub's doors the goals judge, and how a goal names each ('' for the WebSocket door, the headline). */
const HUB_DOORS: [string, string][] = [['iotc', ''], ['iotc-mqtt', ' (MQTT door)']];

/** The targets, judged on this run's medians. */
export function judge(results: Results, offeredRate: number): Goal[] {
  const get = (s: ScenarioName) => results.scenarios.find((x) => x.name === s);
  const goals: Goal[] = [];
  const p2p = get('p2p');
  const iotc = p2p?.targets.iotc;
  if (iotc?.vsBare) {
    const r = iotc.vsBare.msgPerSec;
    goals.push({ goal: 'p2p throughput, every reading persisted ≥ 0.8 × bare relay', measured: `${ratio(r, 3)} (${fmt(iotc.median.msgPerSec)} vs ${fmt(p2p!.targets.bare.median.msgPerSec)} msg/s)`, met: r >= 0.8 });
    const m = iotc.vsBare.rssPeakMiB;
    goals.push({ goal: 'p2p server RSS ≤ 1.5 × bare relay', measured: `${ratio(m)} (${fmt(iotc.median.rssPeakMiB)} vs ${fmt(p2p!.targets.bare.median.rssPeakMiB)} MiB)`, met: m <= 1.5 });
  }
  // Server CPU per delivered message against Mosquitto's in every streaming shape (acked puts against QoS 1), through
  // each door the run measured.
  for (const [door, suffix] of HUB_DOORS) {
    for (const name of STREAM_SCENARIOS) {
      const s = get(name);
      const own = s?.targets[door];
      if (!own) continue;
      const goal = `${name}${suffix}: server CPU per delivered message ≤ Mosquitto`;
      const mq = s.targets.mosquitto;
      const a = own.median.cpuUsPerMsg;
      if (!mq) {
        goals.push({ goal, measured: `${fmt(a)} µs; Mosquitto not run`, met: null });
        continue;
      }
      const b = mq.median.cpuUsPerMsg;
      goals.push({ goal, measured: `${fmt(a)} µs vs ${fmt(b)} µs (${ratio(a / b)})`, met: a <= b });
    }
  }
  const lat = get('latency')?.targets.iotc;
  if (lat) {
    const full = offeredRate >= 10_000;
    goals.push({ goal: `p99 latency ≤ 5 ms at 10 000 msg/s offered`, measured: `${fmt(lat.median.p99Ms)} ms at ${fmt(offeredRate)} msg/s offered`, met: full ? lat.median.p99Ms <= 5 : null });
    goals.push({ goal: `p99.9 latency ≤ 15 ms at 10 000 msg/s offered`, measured: `${fmt(lat.median.p999Ms)} ms`, met: full ? lat.median.p999Ms <= 15 : null });
    goals.push({ goal: 'no event-loop pause over 5 ms under that load', measured: `longest ${fmt(lat.median.loopMaxMs)} ms (p99 ${fmt(lat.median.loopP99Ms)}, p99.9 ${fmt(lat.median.loopP999Ms)} ms)`, met: Number.isFinite(lat.median.loopMaxMs) && full ? lat.median.loopMaxMs <= 5 : null });
  }
  const conn = get('connections')?.targets.iotc;
  if (conn) {
    const m = conn.median;
    const capped = conn.notes.some((n) => n.startsWith('open-file limit'));
    goals.push({
      goal: '20 000 idle authenticated connections',
      measured: `${fmt(m.connections, 0)} open, ${fmt(m.failed, 0)} failed${capped ? ' (all this machine’s open-file limit allows)' : ''}`,
      met: m.connections >= 20_000 && m.failed === 0,
    });
    goals.push({ goal: '≤ 4 KiB RSS per idle authenticated connection', measured: `${fmt(m.rssPerConnKiB)} KiB (last step ${fmt(m.marginalKiB)} KiB each; 100k projected ${fmt(m.projected100kMiB, 0)} MiB)`, met: m.rssPerConnKiB <= 4 });
    goals.push({ goal: 'connect rate ≥ 2 000/s', measured: `${fmt(m.connectPerSec)}/s`, met: m.connectPerSec >= 2000 });
  }
  // Issue 11: rules never slow the relay.
  for (const c of rulesComparisons(results)) {
    if (c.scenario === 'latency') continue;
    goals.push({
      goal: `${c.scenario}: throughput with rules (${c.target}) ≥ 0.9 × without`,
      measured: `${ratio(c.msgRatio, 3)} (per round ${ratio(c.pairedMsgRatio, 3)}); CPU/msg ${ratio(c.cpuRatio, 3)}`,
      met: c.msgRatio >= 0.9,
    });
  }
  for (const [door, suffix] of HUB_DOORS) {
    const dur = get('durability')?.targets[door];
    if (!dur) continue;
    const every = dur.rounds.every((r) => r.termAcknowledged === r.termStored && r.termLost === 0 && r.killLost === 0);
    const sum = (k: string) => dur.rounds.reduce((n, r) => n + r[k], 0);
    goals.push({
      goal: `durability${suffix}: acknowledged = stored (SIGTERM), nothing acknowledged lost (SIGKILL)`,
      measured: `SIGTERM ${fmt(sum('termAcknowledged'), 0)} acked / ${fmt(sum('termStored'), 0)} stored; SIGKILL ${fmt(sum('killLost'), 0)} lost of ${fmt(sum('killAcknowledged'), 0)} acked`,
      met: every,
    });
  }
  return goals;
}
