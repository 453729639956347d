/**
 * `npm run attacks`: re-runs each attack of issue 9 (findings 1–6), and attack 7 (one account's write flood, finding
 * "–": one account's abuse must never slow or break another's), against a fresh built hub while another
 * account (the victim) writes puts with ids, and judges each against the issue's "done when": the victim's
 * writes ≥ 99 % acknowledged with p99 under 500 ms, /healthz under a second, server RSS growth under 200 MiB —
 * plus nothing acknowledged lost, the hub still running, and, where a finding is a missing limit, that limit.
 *
 *   npm run attacks                       every attack, 20 s each
 *   npm run attacks -- --only 2,3 --seconds 30 --out DIR --verbose
 *
 * Exits 1 when any attack fails its verdict.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ALL_ABUSES } from './abuse.js';
import type { Abuse, Check } from './abuse.js';
import { ATTACKER_ADDRESS, HealthPoller, Victim, killAllHubs, request, signUp, startHub } from './arena/index.js';
import type { HealthStats, VictimStats } from './arena/index.js';
import { ROOT } from './targets.js';

export const GOALS = { ackedPct: 99, p99Ms: 500, healthzMs: 1000, rssGrowthMiB: 200 } as const;

interface AttackReport {
  id: string;
  finding: number;
  title: string;
  scaled: string;
  seconds: number;
  victim: VictimStats & { lost: number };
  healthz: HealthStats;
  rss: { baselineMiB: number; peakMiB: number; growthMiB: number };
  crashed: string | null;
  notes: string[];
  checks: Check[];
  pass: boolean;
}

const MiB = 1024 * 1024;
const fmt = (v: number, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : '—');

/** One attack against its own fresh hub, measured from the victim's side and from /proc. */
async function runAttack(abuse: Abuse, seconds: number, verbose: boolean): Promise<AttackReport> {
  const log = (s: string) => console.log(`  ${s}`);
  const hub = await startHub({ build: 'dist', verbose, ...abuse.hub });
  try {
    const victimAccount = await signUp(hub.url, 'victim', '127.0.0.1');
    const attacker = await signUp(hub.url, 'attacker', ATTACKER_ADDRESS);
    const victim = await new Victim({ wsUrl: hub.wsUrl, httpUrl: hub.url, device: victimAccount.device, rate: 20, reconnectEveryMs: abuse.victimReconnectMs }).start();
    const poller = new HealthPoller(hub.url, { intervalMs: 250, timeoutMs: 10_000, slowMs: GOALS.healthzMs }).start();
    // Baseline: the hub with both accounts and the victim writing, before the attack.
    await new Promise((r) => setTimeout(r, 1500));
    const baseline = hub.rss();
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, hub.rss())), 200);
    let outcome: { notes: string[]; checks: Check[] } = { notes: [], checks: [] };
    try {
      // An attack that wedges the hub must not wedge the run: it gets its time plus two minutes.
      outcome = await Promise.race([
        abuse.run({ hub, attacker, victim: victimAccount, seconds, scale: 1, log }),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the attack did not finish within its time + 120 s')), (seconds + 120) * 1000).unref()),
      ]);
    } catch (err) {
      outcome.notes.push(`attack error: ${(err as Error).message}`);
    }
    // A hub still wedged by the attack gets up to a minute to come back before the victim's writes are read back.
    const recovering = Date.now();
    let answered = false;
    while (!answered && !hub.exit() && Date.now() - recovering < 60_000) {
      answered = await request(`${hub.url}/healthz`, { timeoutMs: 2000, localAddress: '127.0.0.1' }).then((r) => r.status === 200, () => false);
    }
    const waited = ((Date.now() - recovering) / 1000).toFixed(0);
    if (!answered) outcome.notes.push(`the hub still did not answer /healthz ${waited} s after the attack ended`);
    else if (Date.now() - recovering > 2000) outcome.notes.push(`the hub answered /healthz again ${waited} s after the attack ended`);
    await new Promise((r) => setTimeout(r, 1000));
    clearInterval(sampler);
    peak = Math.max(peak, hub.rss());
    const written = await victim.stop();
    const health = await poller.stop();
    const exit = hub.exit();
    let lost = NaN;
    if (!exit) {
      try {
        lost = (await victim.verify()).lost.length;
      } catch (err) {
        outcome.notes.push(`reading the victim's writes back failed: ${(err as Error).message}`);
      }
    }
    const report: AttackReport = {
      id: abuse.id, finding: abuse.finding, title: abuse.title, scaled: abuse.scaled, seconds,
      victim: { ...written, lost },
      healthz: health,
      rss: { baselineMiB: baseline / MiB, peakMiB: peak / MiB, growthMiB: (peak - baseline) / MiB },
      crashed: exit ? `the hub exited (${exit.code ?? exit.signal}): ${hub.output().slice(-600)}` : null,
      notes: outcome.notes,
      checks: outcome.checks,
      pass: false,
    };
    report.checks = [...verdictChecks(report), ...report.checks];
    report.pass = report.checks.every((c) => c.ok);
    return report;
  } finally {
    await hub.stop();
  }
}

function verdictChecks(r: AttackReport): Check[] {
  const v = r.victim;
  return [
    { name: `victim writes acknowledged ≥ ${GOALS.ackedPct} %`, ok: v.ackedPct >= GOALS.ackedPct, detail: `${fmt(v.ackedPct, 1)} % (${v.acked}/${v.sent}; failed: ${Object.entries(v.reasons).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'})` },
    { name: `victim p99 < ${GOALS.p99Ms} ms`, ok: v.p99Ms < GOALS.p99Ms, detail: `${fmt(v.p99Ms)} ms over the acknowledged writes (max ${fmt(v.maxMs)} ms)` },
    { name: `/healthz < ${GOALS.healthzMs} ms throughout`, ok: r.healthz.maxMs < GOALS.healthzMs && r.healthz.failed === 0, detail: `max ${fmt(r.healthz.maxMs)} ms over ${r.healthz.probes} probes, ${r.healthz.failed} failed${r.healthz.errors.length ? ` (${r.healthz.errors[0]})` : ''}` },
    { name: `server RSS growth < ${GOALS.rssGrowthMiB} MiB`, ok: r.rss.growthMiB < GOALS.rssGrowthMiB, detail: `${fmt(r.rss.growthMiB)} MiB (${fmt(r.rss.baselineMiB)} → peak ${fmt(r.rss.peakMiB)} MiB)` },
    { name: 'nothing acknowledged lost', ok: v.lost === 0, detail: Number.isNaN(v.lost) ? 'could not read back' : `${v.lost} missing` },
    { name: 'the hub kept running', ok: r.crashed === null, detail: r.crashed ?? 'yes' },
  ];
}

function printReport(r: AttackReport): void {
  console.log(`  ${r.pass ? 'PASS' : 'FAIL'}  attack ${r.id} (finding ${r.finding || '–'})`);
  for (const note of r.notes) console.log(`    · ${note}`);
  for (const c of r.checks) console.log(`    ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      seconds: { type: 'string', default: '20' },
      out: { type: 'string', default: path.join(ROOT, 'bench/results') },
      name: { type: 'string', default: 'attacks' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log('npm run attacks -- [--only 1a,2,...] [--seconds 20] [--out DIR] [--name attacks] [--verbose]');
    for (const a of ALL_ABUSES) console.log(`  ${a.id.padEnd(3)} ${a.title}\n      ${a.scaled}`);
    return;
  }
  const only = values.only?.split(',').map((s) => s.trim());
  const selected = ALL_ABUSES.filter((a) => !only || only.includes(a.id) || (a.finding > 0 && only.includes(String(a.finding))));
  if (selected.length === 0) throw new Error(`no attack matches --only ${values.only}`);
  const seconds = Number(values.seconds);
  console.log(`IOTcommunicate attacks (issue 9): ${selected.length} attack(s), ${seconds} s each, every one on a fresh built hub`);
  console.log(`goals: victim ≥ ${GOALS.ackedPct} % acknowledged, p99 < ${GOALS.p99Ms} ms, /healthz < ${GOALS.healthzMs} ms, RSS growth < ${GOALS.rssGrowthMiB} MiB\n`);
  const reports: AttackReport[] = [];
  for (const abuse of selected) {
    console.log(`attack ${abuse.id} (finding ${abuse.finding || '–'}): ${abuse.title}\n  scaled: ${abuse.scaled}`);
    const r = await runAttack(abuse, seconds, values.verbose);
    printReport(r);
    reports.push(r);
    console.log('');
  }
  console.log('attack  finding  victim acked  victim p99  max /healthz  RSS growth  verdict');
  for (const r of reports) {
    console.log(
      `${r.id.padEnd(8)}${String(r.finding || '–').padEnd(9)}${`${fmt(r.victim.ackedPct, 1)} %`.padStart(12)}${`${fmt(r.victim.p99Ms)} ms`.padStart(12)}${`${fmt(r.healthz.maxMs)} ms`.padStart(14)}${`${fmt(r.rss.growthMiB)} MiB`.padStart(12)}  ${r.pass ? 'pass' : `FAIL (${r.checks.filter((c) => !c.ok).map((c) => c.name).join('; ')})`}`,
    );
  }
  fs.mkdirSync(values.out, { recursive: true });
  const file = path.join(values.out, `${values.name}.json`);
  fs.writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), goals: GOALS, seconds, attacks: reports }, null, 2) + '\n');
  console.log(`\nwrote ${path.relative(process.cwd(), file) || file}`);
  process.exitCode = reports.every((r) => r.pass) ? 0 : 1;
}

process.on('SIGINT', () => {
  killAllHubs();
  process.exit(130);
});
main().catch((err) => {
  console.error(err);
  killAllHubs();
  process.exit(2);
});
