/**
 * `npm run soak -- --minutes N`: the built hub (dist/) with a fresh data dir under mixed load on every door
 * (see soak-load.ts), reconnect storms, readers that stop reading, and the attacks of issue 9 in small doses
 * from one account, while a victim account writes puts with ids. Samples over time the hub's RSS (/proc), its
 * event-loop delay (prom-client's default metrics at /metrics, measured inside the hub), /healthz from outside,
 * and acknowledged / failed / lost counts with the victim's p99; prints a table while it runs; writes JSON and
 * an SVG chart. Exits 1 on RSS growth after warm-up beyond --max-growth, on any acknowledged write lost, on the
 * hub dying, or on the victim below 99 % acknowledged.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ALL_ABUSES } from './abuse.js';
import type { Abuse } from './abuse.js';
import { ATTACKER_ADDRESS, HealthPoller, Victim, createDevice, killAllHubs, loopDelay, signUp, startHub } from './arena/index.js';
import type { Hub } from './arena/index.js';
import { renderSoakChart } from './soak-chart.js';
import { SoakLoad } from './soak-load.js';
import { ROOT } from './targets.js';

interface Sample {
  t: number;
  rssMiB: number;
  loopP99Ms: number;
  loopMaxMs: number;
  metricsMs: number;
  healthzMaxMs: number;
  healthzFailed: number;
  victimSent: number;
  victimAcked: number;
  victimFailed: number;
  victimP99Ms: number;
  ackedTotal: number;
  failedTotal: number;
  lost: number;
  loadFailures: number;
  abuse: string;
}

const MiB = 1024 * 1024;
const fmt = (v: number, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : '—');

/** Least-squares slope of y over x. */
function slope(points: [number, number][]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return sxx === 0 ? 0 : points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / sxx;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '30' },
      sample: { type: 'string', default: '5' },
      warmup: { type: 'string' },
      'max-growth': { type: 'string', default: '64' },
      abuse: { type: 'string', default: 'all' },
      'abuse-every': { type: 'string', default: '40' },
      'abuse-scale': { type: 'string', default: '0.05' },
      out: { type: 'string', default: path.join(ROOT, 'bench/results') },
      name: { type: 'string', default: 'soak' },
      verbose: { type: 'boolean', default: false },
    },
  });
  const totalS = Number(values.minutes) * 60;
  const sampleS = Number(values.sample);
  const warmupS = values.warmup !== undefined ? Number(values.warmup) : Math.min(300, Math.max(30, totalS * 0.2));
  const maxGrowth = Number(values['max-growth']);
  const abuses: Abuse[] = values.abuse === 'none' ? [] : values.abuse === 'all' ? [...ALL_ABUSES] : ALL_ABUSES.filter((a) => values.abuse!.split(',').includes(a.id));
  console.log(`IOTcommunicate soak: ${fmt(totalS / 60, 1)} min, a sample every ${sampleS} s, warm-up ${warmupS} s, RSS growth bound ${maxGrowth} MiB`);
  console.log(`abuse from one account every ${values['abuse-every']} s at dose ${values['abuse-scale']}: ${abuses.map((a) => a.id).join(', ') || 'none'}`);

  const hub: Hub = await startHub({ build: 'dist', verbose: values.verbose });
  const started = Date.now();
  const elapsed = () => (Date.now() - started) / 1000;
  const samples: Sample[] = [];
  let crashed: string | null = null;
  let lost = 0;
  let abuseNow = '';
  const abuseLog: string[] = [];
  try {
    // Each account signs up from its own loopback address, as separate people would.
    const victimAccount = await signUp(hub.url, 'victim', '127.0.0.1');
    const loadAccount = await signUp(hub.url, 'load', '127.0.1.1');
    const attacker = await signUp(hub.url, 'attacker', ATTACKER_ADDRESS);
    const loadDevices = [loadAccount.device];
    for (let i = 0; i < 3; i++) loadDevices.push(await createDevice(hub.url, loadAccount.token, `load ${i}`, '127.0.1.1'));
    const load = new SoakLoad(hub, loadAccount, loadDevices, '127.0.1.1');
    await load.start();
    const victim = await new Victim({ wsUrl: hub.wsUrl, httpUrl: hub.url, device: victimAccount.device, rate: 20, reconnectEveryMs: 10_000 }).start();
    const poller = new HealthPoller(hub.url, { intervalMs: 250, timeoutMs: 5000, slowMs: 1000 }).start();
    const writers = [victim, ...load.writers];

    let verifying: Promise<void> | null = null;
    const verifyAll = async () => {
      let missing = 0;
      for (const w of writers) missing += (await w.verify()).lost.length;
      lost = missing;
    };
    // Abuse in turn, one at a time, each over in a few seconds.
    let abuseIndex = 0;
    const abuseTimer = abuses.length
      ? setInterval(() => {
          if (abuseNow || crashed) return;
          const a = abuses[abuseIndex++ % abuses.length];
          abuseNow = a.id;
          const t0 = elapsed();
          void a
            .run({ hub, attacker, victim: victimAccount, seconds: 5, scale: Number(values['abuse-scale']), log: () => {} })
            .then((r) => abuseLog.push(`${fmt(t0)} s: ${a.id} — ${r.notes.join('; ')}`), (e: Error) => abuseLog.push(`${fmt(t0)} s: ${a.id} failed: ${e.message}`))
            .finally(() => (abuseNow = ''));
        }, Number(values['abuse-every']) * 1000)
      : null;

    console.log('\n     t   RSS MiB  loop p99  loop max  /metrics  /healthz max  victim sent/acked/failed  victim p99  acked total  failed total  lost  load fails  abuse');
    let tick = 0;
    while (elapsed() < totalS) {
      await new Promise((r) => setTimeout(r, sampleS * 1000));
      tick++;
      const exit = hub.exit();
      if (exit) {
        crashed = `the hub exited (${exit.code ?? exit.signal}): ${hub.output().slice(-800)}`;
        console.log(crashed);
        break;
      }
      const ld = await loopDelay(hub.url, 5000);
      const h = poller.takeWindow();
      const v = victim.takeWindow();
      const total = victim.stats;
      const loadFailures = Object.values(load.snapshot().failures).reduce((a, b) => a + b, 0);
      if (tick % 6 === 0 && !verifying) verifying = verifyAll().catch(() => {}).finally(() => (verifying = null));
      const s: Sample = {
        t: elapsed(), rssMiB: hub.rss() / MiB, loopP99Ms: ld?.p99Ms ?? NaN, loopMaxMs: ld?.maxMs ?? NaN, metricsMs: ld?.scrapeMs ?? NaN,
        healthzMaxMs: h.maxMs, healthzFailed: h.failed, victimSent: v.sent, victimAcked: v.acked, victimFailed: v.failed, victimP99Ms: v.p99Ms,
        ackedTotal: total.acked, failedTotal: total.failed, lost, loadFailures, abuse: abuseNow,
      };
      samples.push(s);
      console.log(
        `${fmt(s.t).padStart(6)}${fmt(s.rssMiB).padStart(10)}${fmt(s.loopP99Ms, 1).padStart(10)}${fmt(s.loopMaxMs, 1).padStart(10)}${(ld ? fmt(s.metricsMs) : 'none').padStart(10)}${fmt(s.healthzMaxMs).padStart(14)}${`${s.victimSent}/${s.victimAcked}/${s.victimFailed}`.padStart(26)}${fmt(s.victimP99Ms).padStart(12)}${String(s.ackedTotal).padStart(13)}${String(s.failedTotal).padStart(14)}${String(s.lost).padStart(6)}${String(s.loadFailures).padStart(12)}  ${s.abuse}`,
      );
    }
    if (abuseTimer) clearInterval(abuseTimer);
    while (abuseNow) await new Promise((r) => setTimeout(r, 200));
    await load.stop();
    const finalVictim = await victim.stop();
    const health = await poller.stop();
    if (!hub.exit()) {
      await verifying;
      await verifyAll().catch((e: Error) => abuseLog.push(`final read-back failed: ${e.message}`));
    } else crashed ??= `the hub exited: ${hub.output().slice(-800)}`;

    const after = samples.filter((s) => s.t >= warmupS);
    const perSecond = slope(after.map((s) => [s.t, s.rssMiB]));
    const growth = perSecond * (after.length ? after[after.length - 1].t - after[0].t : 0);
    const loadCounters = load.snapshot();
    const writersAcked = load.writers.reduce((a, w) => a + w.stats.acked, 0);
    const verdict = [
      { name: `RSS growth after warm-up ≤ ${maxGrowth} MiB (least-squares trend)`, ok: growth <= maxGrowth, detail: `${fmt(growth, 1)} MiB (${fmt(perSecond * 60, 2)} MiB/min over ${after.length} samples)` },
      { name: 'nothing acknowledged lost', ok: lost === 0, detail: `${lost} missing of ${finalVictim.acked + writersAcked} acknowledged puts with ids (victim + WS load)` },
      { name: 'the hub kept running', ok: crashed === null, detail: crashed ?? 'yes' },
      { name: 'victim ≥ 99 % acknowledged', ok: finalVictim.ackedPct >= 99, detail: `${fmt(finalVictim.ackedPct, 2)} % (${finalVictim.acked}/${finalVictim.sent}; ${Object.entries(finalVictim.reasons).map(([k, n]) => `${k} ${n}`).join(', ') || 'no failures'})` },
    ];
    const info = {
      victimP99Ms: finalVictim.p99Ms, healthz: health, loopP99MaxMs: Math.max(...samples.map((s) => s.loopP99Ms).filter(Number.isFinite)),
      rssFirstAfterWarmupMiB: after[0]?.rssMiB, rssLastMiB: samples[samples.length - 1]?.rssMiB, rssMaxMiB: Math.max(...samples.map((s) => s.rssMiB)), load: loadCounters,
    };
    console.log('\nabuse doses:');
    for (const line of abuseLog) console.log(`  ${line}`);
    console.log(`\nload: ${JSON.stringify(loadCounters)}`);
    console.log(`victim p99 ${fmt(info.victimP99Ms)} ms; /healthz max ${fmt(health.maxMs)} ms, ${health.failed} failed of ${health.probes}; event-loop p99 at worst ${fmt(info.loopP99MaxMs, 1)} ms; RSS ${fmt(info.rssFirstAfterWarmupMiB)} → ${fmt(info.rssLastMiB)} MiB (max ${fmt(info.rssMaxMiB)})`);
    for (const c of verdict) console.log(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);

    fs.mkdirSync(values.out!, { recursive: true });
    const base = path.join(values.out!, values.name!);
    const meta = { date: new Date().toISOString(), minutes: totalS / 60, sampleS, warmupS, maxGrowthMiB: maxGrowth, abuses: abuses.map((a) => a.id), abuseEveryS: Number(values['abuse-every']), abuseScale: Number(values['abuse-scale']) };
    fs.writeFileSync(`${base}.json`, JSON.stringify({ meta, verdict, info, abuseLog, samples }, null, 2) + '\n');
    const pts = (f: (s: Sample) => number) => samples.map((s) => [s.t, f(s)] as [number, number]);
    fs.writeFileSync(
      `${base}.svg`,
      renderSoakChart(`IOTcommunicate soak — ${fmt(totalS / 60, 1)} min`, `${meta.date} · mixed load on WS/HTTP/MQTT, storms, slow readers, abuse every ${meta.abuseEveryS} s · warm-up shaded`, [
        { title: 'Server RSS', unit: 'MiB', series: [{ label: 'RSS', color: '#2b6cb0', points: pts((s) => s.rssMiB) }] },
        { title: 'Event-loop delay (inside the hub)', unit: 'ms', series: [{ label: 'p99', color: '#2f855a', points: pts((s) => s.loopP99Ms) }, { label: 'max', color: '#c05621', points: pts((s) => s.loopMaxMs) }] },
        { title: 'Victim and /healthz', unit: 'ms', series: [{ label: 'victim p99', color: '#6b46c1', points: pts((s) => s.victimP99Ms) }, { label: '/healthz max', color: '#718096', points: pts((s) => s.healthzMaxMs) }] },
        { title: 'Victim puts per sample', unit: 'count', series: [{ label: 'acknowledged', color: '#2f855a', points: pts((s) => s.victimAcked) }, { label: 'failed', color: '#c53030', points: pts((s) => s.victimFailed) }] },
      ], warmupS, elapsed()),
    );
    console.log(`\nwrote ${path.relative(process.cwd(), base)}.json and .svg`);
    process.exitCode = verdict.every((c) => c.ok) ? 0 : 1;
  } finally {
    await hub.stop();
  }
}

process.on('SIGINT', () => {
  killAllHubs();
  process.exit(130);
});
main().then(
  () => process.exit(process.exitCode ?? 0),
  (err) => {
    console.error(err);
    killAllHubs();
    process.exit(2);
  },
);
