/**
 * `npm run bench`: one load generator, several targets, interleaved rounds (A B C, C B A, A B C …), medians.
 * Prints progress while it runs and a table at the end; writes JSON and an SVG chart under bench/results/.
 *
 *   npm run bench                       full run (a few minutes)
 *   npm run bench -- --quick            short run while developing
 *   npm run bench -- --scenarios p2p,latency --targets iotc,bare --rounds 5 --duration 10
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { renderChart } from './chart.js';
import { copyFixture, fixtureWithRules, makeFixture } from './fixture.js';
import { Generator } from './generator.js';
import { startWebhookReceiver } from './webhook-receiver.js';
import { clkTck, openFileLimit, procAvailable } from './proc.js';
import { finish, judge, renderTables } from './report.js';
import type { Results, ScenarioResult } from './report.js';
import { SCENARIO_TABLE, SCENARIOS } from './scenarios.js';
import type { BenchParams, ScenarioName } from './scenarios.js';
import { ALL_TARGETS, ROOT, baselineTarget, iotcMqtt, ensureBuilt, killAllTargets, rulesTarget, serverNodeArgs, showServerOutput } from './targets.js';

const HELP = `npm run bench -- [options]

  --frames              camera frames instead: 10 cameras × 10 frames/s × 50 KB to 10 viewers each, and a
                        slow viewer, against Mosquitto in the same run (bench/frames.ts; with --quick, 3 s)
  --quick               short run (1 round, small loads, ~1 minute) written to bench/results/quick.*
  --rounds N            interleaved rounds per scenario (default 3; quick 1)
  --duration S          measured seconds per round (default 5; quick 1.5)
  --warmup S            seconds of load before measuring (default 1; quick 0.5)
  --scenarios a,b       any of ${SCENARIOS.join(', ')} (default all)
  --targets x,y         any of ${ALL_TARGETS.map((t) => t.name).join(', ')} (default all that can run here)
  --generators N        load-generator processes for the stream scenarios (default 1)
  --pairs N             point-to-point pairs (default 100)
  --window W            messages in flight per device (default 16)
  --deep PxW            deep-pipeline point-to-point: pairs × messages in flight (default 10x50)
  --fan N               devices (fan-in) or clients (fan-out) (default 100)
  --rate R              open-loop offered msg/s (default 10000)
  --connections N[,N]   idle connections, opened in these steps (default 5000,10000,20000; quick 1000,2000)
  --connect-rate R      connections opened per second, offered (default 4000)
  --settle S            seconds idle connections sit before their RSS is read (default 2)
  --rules N             also run IOTcommunicate with N automation rules per device, as target "iotc-rules"
                        (thresholds on the written sensor that never hold: the evaluation's steady-state cost),
                        in the same interleaved rounds as "iotc"; the report adds rules-on ÷ rules-off ratios
  --fire                with --rules, also target "iotc-fire": the same rules plus two per device that act,
                        with webhooks to a receiver in the bench (one holding, one on each change ≤ 1 per 5 s)
  --out DIR             where results go (default bench/results)
  --name NAME           results file name without extension (default results; quick)
  --profile DIR         run IOTcommunicate under node --cpu-prof, profiles into DIR
                        (summarise with: node --import tsx bench/profile-summary.ts DIR/*.cpuprofile)
  --node-flags="F …"    extra node flags for the IOTcommunicate server (e.g. "--trace-gc", "--max-semi-space-size=4"),
                        with --verbose to see what they print
  --verbose             show the servers' own output
  --report FILE         print the tables and redraw the chart of an earlier results .json
  --baseline DIR        also run another IOTcommunicate build (its dist/ folder) as target "baseline";
                        several as NAME=DIR,NAME=DIR (each a target of that name, in that order); with
                        iotc-mqtt among the targets, also through its MQTT door as NAME-mqtt
`;

function options() {
  const { values } = parseArgs({
    options: {
      help: { type: 'boolean', short: 'h' },
      quick: { type: 'boolean' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      scenarios: { type: 'string' },
      targets: { type: 'string' },
      generators: { type: 'string' },
      pairs: { type: 'string' },
      window: { type: 'string' },
      deep: { type: 'string' },
      fan: { type: 'string' },
      rate: { type: 'string' },
      connections: { type: 'string' },
      'connect-rate': { type: 'string' },
      settle: { type: 'string' },
      rules: { type: 'string' },
      fire: { type: 'boolean' },
      out: { type: 'string' },
      name: { type: 'string' },
      profile: { type: 'string' },
      'node-flags': { type: 'string' },
      verbose: { type: 'boolean' },
      baseline: { type: 'string' },
      report: { type: 'string' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const quick = values.quick === true;
  const num = (v: string | undefined, def: number, what: string) => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${what} must be a positive number, not "${v}"`);
    return n;
  };
  const fan = num(values.fan, quick ? 20 : 100, 'fan');
  const [deepPairs, deepWindow] = (values.deep ?? '10x50').split('x').map((v) => num(v, 0, 'deep'));
  const steps = (values.connections ?? (quick ? '1000,2000' : '5000,10000,20000')).split(',').map((v) => Math.round(num(v, 0, 'connections')));
  const params: BenchParams = {
    warmup: num(values.warmup, quick ? 0.5 : 1, 'warmup'),
    duration: num(values.duration, quick ? 1.5 : 5, 'duration'),
    generators: Math.round(num(values.generators, 1, 'generators')),
    pairs: Math.round(num(values.pairs, quick ? 20 : 100, 'pairs')),
    window: Math.round(num(values.window, 16, 'window')),
    deepPairs: Math.round(deepPairs),
    deepWindow: Math.round(deepWindow),
    fanDevices: fan,
    fanClients: fan,
    fanWindow: Math.round(num(values.window, 16, 'window')),
    rate: num(values.rate, 10_000, 'rate'),
    latencyPairs: Math.round(num(values.pairs, quick ? 20 : 100, 'pairs')),
    connections: Math.max(...steps),
    connectionSteps: steps,
    connectRate: num(values['connect-rate'], 4000, 'connect-rate'),
    connectWorkers: 4,
    settle: num(values.settle, 2, 'settle'),
    durabilityDevices: quick ? 5 : 20,
    durabilityWindow: 32,
  };
  const pick = <T extends string>(v: string | undefined, all: readonly T[], what: string): T[] => {
    if (!v) return [...all];
    const names = v.split(',').map((s) => s.trim()).filter(Boolean);
    for (const n of names) if (!all.includes(n as T)) throw new Error(`unknown ${what} "${n}": use ${all.join(', ')}`);
    return names as T[];
  };
  return {
    quick,
    rounds: Math.round(num(values.rounds, quick ? 1 : 3, 'rounds')),
    scenarios: pick(values.scenarios, SCENARIOS, 'scenario') as ScenarioName[],
    targets: pick(values.targets, ALL_TARGETS.map((t) => t.name), 'target'),
    out: path.resolve(values.out ?? path.join(ROOT, 'bench/results')),
    name: values.name ?? (quick ? 'quick' : 'results'),
    profile: values.profile ? path.resolve(values.profile) : null,
    nodeFlags: (values['node-flags'] ?? '').split(/\s+/).filter(Boolean),
    verbose: values.verbose === true,
    baselines: (values.baseline ?? '')
      .split(',')
      .filter(Boolean)
      .map((b) => (b.includes('=') ? { name: b.slice(0, b.indexOf('=')), dir: path.resolve(b.slice(b.indexOf('=') + 1)) } : { name: 'baseline', dir: path.resolve(b) })),
    params,
    report: values.report ? path.resolve(values.report) : null,
    rules: Math.max(0, Math.round(num(values.rules, 0, 'rules'))),
    fire: values.fire === true,
  };
}

/** `--report FILE`: the tables, goals and chart again from a results file, without running anything. */
function rerender(file: string): void {
  const results = JSON.parse(fs.readFileSync(file, 'utf8')) as Results;
  results.goals = judge(results, (results.meta.params as BenchParams).rate);
  process.stdout.write(renderTables(results) + '\n');
  fs.writeFileSync(file, JSON.stringify(results, null, 1) + '\n');
  fs.writeFileSync(file.replace(/\.json$/, '.svg'), renderChart(results));
}

const tty = process.stderr.isTTY;
let lastStatusAt = 0;
function status(text: string): void {
  if (tty) process.stderr.write(`\r\x1b[K${text}`);
  else if (performance.now() - lastStatusAt > 2000) {
    lastStatusAt = performance.now();
    process.stderr.write(`${text}\n`);
  }
}
function say(text: string): void {
  if (tty) process.stderr.write('\r\x1b[K');
  process.stderr.write(`${text}\n`);
}

function summary(f: Record<string, number>): string {
  const n = (v: number, d = 0) => (Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: d }) : '–');
  if ('msgPerSec' in f) return `${n(f.msgPerSec)} msg/s, ${n(f.cpuUsPerMsg, 1)} µs CPU/msg, p99 ${n(f.p99Ms, 2)} ms, RSS ${n(f.rssPeakMiB)} MiB${'loopMaxMs' in f ? `, loop p99 ${n(f.loopP99Ms, 2)} max ${n(f.loopMaxMs, 1)} ms` : ''}${'webhooksPerSec' in f ? `, ${n(f.webhooksPerSec)} webhooks/s` : ''}`;
  if ('connections' in f) return `${n(f.connections)} open at ${n(f.connectPerSec)}/s, ${n(f.rssPerConnKiB, 1)} KiB/conn (marginal ${n(f.marginalKiB, 1)}), 100k → ${n(f.projected100kMiB)} MiB`;
  if ('termAcknowledged' in f) return `SIGTERM ${n(f.termAcknowledged)} acked / ${n(f.termStored)} stored; SIGKILL ${n(f.killLost)} of ${n(f.killAcknowledged)} acked lost`;
  return JSON.stringify(f);
}

async function main(): Promise<void> {
  // Camera frames (binary chunks) against Mosquitto: a run of its own (bench/frames.ts).
  if (process.argv.includes('--frames')) {
    const { runFrames } = await import('./frames.js');
    await runFrames({ quick: process.argv.includes('--quick') });
    return;
  }
  const opts = options();
  if (opts.report) return rerender(opts.report);
  if (!procAvailable()) throw new Error('the bench reads server CPU and memory from /proc: run it on Linux');
  const targets = ALL_TARGETS.filter((t) => opts.targets.includes(t.name));
  // A baseline build runs right after IOTcommunicate in each round, so the two see the same machine; through the
  // MQTT door too when that runs (as NAME-mqtt, right after iotc-mqtt).
  const atMqtt = targets.findIndex((t) => t.name === 'iotc-mqtt') + 1;
  if (atMqtt > 0) targets.splice(atMqtt, 0, ...opts.baselines.map((b) => baselineTarget(b.dir, `${b.name}-mqtt`, iotcMqtt)));
  const at = targets.findIndex((t) => t.name === 'iotc') + 1;
  if (at > 0 || atMqtt === 0) targets.splice(at, 0, ...opts.baselines.map((b) => baselineTarget(b.dir, b.name)));
  if (opts.fire && opts.rules === 0) throw new Error('--fire needs --rules N');
  const receiver = opts.fire && at > 0 ? await startWebhookReceiver() : null;
  if (receiver) targets.splice(at, 0, rulesTarget(opts.rules, receiver));
  if (opts.rules > 0 && at > 0) targets.splice(at, 0, rulesTarget(opts.rules));
  const skippedTargets: Record<string, string> = {};
  const runnable = targets.filter((t) => {
    const why = t.unavailable();
    if (why) {
      skippedTargets[t.name] = why;
      say(`notice: ${t.label} skipped: ${why}`);
    }
    return !why;
  });
  if (runnable.some((t) => t.name === 'iotc')) ensureBuilt(say);
  showServerOutput.on = opts.verbose;
  serverNodeArgs.push(...opts.nodeFlags);
  if (opts.profile) {
    fs.mkdirSync(opts.profile, { recursive: true });
    serverNodeArgs.push('--cpu-prof', `--cpu-prof-dir=${opts.profile}`);
    say(`profiling IOTcommunicate into ${opts.profile} (figures are slower under the profiler)`);
  }

  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'iotc-bench-'));
  let gen: Generator | null = null;
  const cleanup = async () => {
    killAllTargets();
    await gen?.exit();
    await receiver?.close();
    fs.rmSync(workDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    say('interrupted: stopping servers and generators');
    void cleanup().finally(() => process.exit(130));
  });

  try {
    const scenarios = opts.scenarios.map((n) => SCENARIO_TABLE[n]);
    const needed = Math.max(1, ...scenarios.map((s) => s.devicesNeeded(opts.params)));
    say(`IOTcommunicate bench: ${opts.scenarios.join(', ')} × ${runnable.map((t) => t.name).join(', ')}, ${opts.rounds} round(s) each`);
    const started = performance.now();
    const fixture = await makeFixture(workDir, needed, (done) => status(`creating ${needed.toLocaleString('en-US')} devices: ${done.toLocaleString('en-US')}`));
    say(`created ${needed.toLocaleString('en-US')} bench devices in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const fixtures = new Map(runnable.map((t) => [t.name, fixture]));
    for (const b of opts.baselines) {
      if (runnable.some((t) => t.name === b.name)) fixtures.set(b.name, await copyFixture(fixture, b.dir, path.join(workDir, `${b.name}.db`)));
    }
    if (opts.rules > 0 && runnable.some((t) => t.name === 'iotc-rules')) {
      fixtures.set('iotc-rules', await fixtureWithRules(fixture, opts.rules, path.join(workDir, 'rules.db')));
      say(`added ${opts.rules} rule(s) to each of the ${needed.toLocaleString('en-US')} devices for iotc-rules`);
    }
    if (receiver && runnable.some((t) => t.name === 'iotc-fire')) {
      fixtures.set('iotc-fire', await fixtureWithRules(fixture, opts.rules, path.join(workDir, 'fire.db'), receiver.url));
    }
    const wantsConnections = opts.scenarios.includes('connections');
    gen = await Generator.spawn(Math.max(opts.params.generators, wantsConnections ? opts.params.connectWorkers : 1));

    const results: Results = {
      meta: {
        date: new Date().toISOString(),
        machine: `${os.cpus().length} × ${os.cpus()[0]?.model?.trim() ?? 'CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}`,
        node: process.version,
        loadAverageAtStart: os.loadavg(),
        openFileLimit: openFileLimit(),
        clockTicksPerSecond: clkTck(),
        rounds: opts.rounds,
        params: opts.params,
        targets: Object.fromEntries(runnable.map((t) => [t.name, t.describe()])),
        skippedTargets,
        method:
          'Each round starts a fresh server process on a free loopback port (fresh copy of the accounts, empty store). ' +
          'Rounds run interleaved, every other one in reverse order (A B C, C B A, A B C …); figures are medians over rounds. Server CPU = utime+stime of the server ' +
          'process from /proc/PID/stat over the measured window, divided by the messages delivered in it; RSS = VmRSS. ' +
          'The load generator runs in separate processes and its own CPU is reported separately (gen µs/msg).',
      },
      scenarios: [],
      goals: [],
    };

    for (const scenario of scenarios) {
      const sr: ScenarioResult = { name: scenario.name, title: scenario.title, method: scenario.method(opts.params), targets: {}, skipped: {} };
      results.scenarios.push(sr);
      const taking = runnable.filter((t) => {
        const why = scenario.skip(t);
        if (why) sr.skipped[t.name] = why;
        return !why;
      });
      for (const t of taking) sr.targets[t.name] = { label: t.label, rounds: [], median: {}, notes: [] };
      for (let round = 1; round <= opts.rounds; round++) {
        // Every other round in reverse (A B C, C B A, …): no target always runs first, right after the previous
        // round's teardown, and neighbours (IOTcommunicate and a baseline) still run side by side.
        for (const target of round % 2 === 1 ? taking : [...taking].reverse()) {
          const tag = `[${scenario.name} ${round}/${opts.rounds}] ${target.name}`;
          const tr = sr.targets[target.name];
          const roundStart = performance.now();
          try {
            const figures = await scenario.run({
              target,
              gen,
              fixture: fixtures.get(target.name) ?? fixture,
              params: opts.params,
              status: (text) => status(`${tag}: ${text}`),
              note: (text) => tr.notes.push(text),
            });
            tr.rounds.push(figures);
            say(`${tag}: ${summary(figures)}  (${((performance.now() - roundStart) / 1000).toFixed(1)} s)`);
          } catch (err) {
            tr.notes.push(`round ${round} failed: ${(err as Error).message.slice(0, 300)}`);
            say(`${tag}: FAILED ${(err as Error).message}`);
            await gen.teardown().catch(() => {});
          }
        }
      }
      finish(sr);
    }
    results.goals = judge(results, opts.params.rate);
    results.meta.seconds = Math.round((performance.now() - started) / 1000);

    process.stdout.write(renderTables(results) + '\n');
    fs.mkdirSync(opts.out, { recursive: true });
    const json = path.join(opts.out, `${opts.name}.json`);
    const svg = path.join(opts.out, `${opts.name}.svg`);
    fs.writeFileSync(json, JSON.stringify(results, null, 1) + '\n');
    fs.writeFileSync(svg, renderChart(results));
    say(`\nwrote ${path.relative(process.cwd(), json) || json} and ${path.relative(process.cwd(), svg) || svg}`);
  } finally {
    await cleanup();
  }
}

main().catch((err) => {
  say(`bench failed: ${(err as Error).stack ?? err}`);
  killAllTargets();
  process.exit(1);
});
