/**
 * The six scenarios. Each round starts a fresh target process (fresh copy of the accounts, empty store),
 * loads it through the generator workers, reads the server's /proc before and after the measured window,
 * and returns its figures. Rounds of different targets are interleaved by run.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Fixture } from './fixture.js';
import { storedSequenceNumbers } from './fixture.js';
import type { Generator, Snapshot } from './generator.js';
import type { GroupCreds, GroupSpec, StreamJob, ConnectJob } from './jobs.js';
import { SENSOR } from './links.js';
import { clkTck, openFileLimit, sample } from './proc.js';
import type { Endpoint, RunningTarget, Target } from './targets.js';

export type ScenarioName =
  | 'p2p' | 'p2p-ff' | 'deep' | 'deep-ff' | 'fanin' | 'fanin-ff' | 'fanout' | 'fanout-ff' | 'latency' | 'connections' | 'durability';
export const SCENARIOS: readonly ScenarioName[] = [
  'p2p', 'p2p-ff', 'deep', 'deep-ff', 'fanin', 'fanin-ff', 'fanout', 'fanout-ff', 'latency', 'connections', 'durability',
];
/** Scenarios that stream readings (the same columns and goals). */
export const STREAM_SCENARIOS: readonly ScenarioName[] = ['p2p', 'p2p-ff', 'deep', 'deep-ff', 'fanin', 'fanin-ff', 'fanout', 'fanout-ff'];

export interface BenchParams {
  warmup: number;
  duration: number;
  generators: number;
  pairs: number;
  window: number;
  /** Few connections, deep pipelines: pairs and messages in flight per device. */
  deepPairs: number;
  deepWindow: number;
  fanDevices: number;
  fanClients: number;
  fanWindow: number;
  rate: number;
  latencyPairs: number;
  connections: number;
  /** Idle connections are opened in these steps (the last is `connections`); RSS is read after each. */
  connectionSteps: number[];
  connectRate: number;
  connectWorkers: number;
  /** Seconds connections sit idle before RSS is read (and the server idles before its baseline). */
  settle: number;
  durabilityDevices: number;
  durabilityWindow: number;
}

export type Figures = Record<string, number>;

export interface RoundContext {
  target: Target;
  gen: Generator;
  fixture: Fixture;
  params: BenchParams;
  /** Live status for the progress line. */
  status(text: string): void;
  /** Something worth keeping in the results (errors seen, limits hit). */
  note(text: string): void;
}

export interface Scenario {
  name: ScenarioName;
  title: string;
  /** What the scenario measures, for the report and docs. */
  method(p: BenchParams): string;
  /** Null if the target takes part, otherwise why it is left out. */
  skip(target: Target): string | null;
  /** Devices the fixture must hold for this scenario. */
  devicesNeeded(p: BenchParams): number;
  run(ctx: RoundContext): Promise<Figures>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (us: number) => Math.round(us) / 1000;
/** Server CPU the measured window must hold before it closes: below this, one tick more or less swings the figure. */
const MIN_CPU_TICKS = 3;

/** Splits `items` into `n` nearly equal consecutive slices (none empty when items ≥ n). */
function split<T>(items: T[], n: number): T[][] {
  const out: T[][] = [];
  const k = Math.min(n, Math.max(1, items.length));
  for (let i = 0; i < k; i++) out.push(items.slice(Math.floor((i * items.length) / k), Math.floor(((i + 1) * items.length) / k)));
  return out;
}

/** Group credentials in the target's terms: a device id and key, a relay pair, or an MQTT topic segment. */
function creds(ctx: RoundContext, i: number): GroupCreds {
  if (ctx.target.hub) return ctx.fixture.devices[i];
  return { id: `g${i}` };
}

async function withTarget<T>(ctx: RoundContext, maxConnectionsPerDevice: number, fn: (t: RunningTarget, dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `iotc-bench-${ctx.target.name}-`));
  let running: RunningTarget | null = null;
  try {
    running = await ctx.target.start({ template: ctx.fixture.file, workDir: dir, maxConnectionsPerDevice });
    return await fn(running, dir);
  } finally {
    if (running) {
      const exit = await running.stop('SIGTERM');
      if (exit.code !== 0 && exit.code !== null && ctx.target.name !== 'mosquitto') ctx.note(`${ctx.target.label} exited with ${exit.code}: ${running.output().slice(-300)}`);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function errorNote(ctx: RoundContext, s: Snapshot): void {
  const entries = Object.entries(s.errors);
  if (entries.length > 0) ctx.note(`errors: ${entries.map(([k, v]) => `${k} ×${v}`).join(', ')}`);
}

/**
 * The server's event-loop delay since the previous read (IOTcommunicate's /metrics, which resets it on every
 * scrape): p50, p99, p99.9 and max in ms. Empty for targets without it (other servers, older builds).
 */
async function loopDelay(ctx: RoundContext, running: RunningTarget): Promise<Figures> {
  if (!running.metricsUrl) return {};
  try {
    const res = await fetch(running.metricsUrl);
    const text = await res.text();
    const f: Figures = {};
    const names: Record<string, string> = { '0.5': 'loopP50Ms', '0.99': 'loopP99Ms', '0.999': 'loopP999Ms', max: 'loopMaxMs' };
    for (const m of text.matchAll(/^iotc_eventloop_delay_seconds\{quantile="([^"]+)"\} (\S+)$/gm)) {
      if (names[m[1]]) f[names[m[1]]] = Number(m[2]) * 1000;
    }
    return f;
  } catch (err) {
    ctx.note(`could not read /metrics: ${(err as Error).message}`);
    return {};
  }
}

/** Runs stream jobs on a fresh target: warm-up, then a measured window; figures from the window only. */
async function streamRound(ctx: RoundContext, maxConns: number, jobs: (e: Endpoint) => StreamJob[]): Promise<Figures> {
  const { gen, params } = ctx;
  return withTarget(ctx, maxConns, async (running) => {
    ctx.status('connecting');
    await gen.setup(jobs(running.endpoint));
    try {
      gen.start();
      const warmUntil = performance.now() + params.warmup * 1000;
      while (performance.now() < warmUntil) {
        await sleep(250);
        ctx.status('warming up');
      }
      await loopDelay(ctx, running);
      const s0 = sample(running.pids);
      const g0 = sample(gen.pids);
      const c0 = running.counters?.() ?? {};
      const m0 = await gen.mark(true);
      let rssPeak = s0.rss;
      const end = performance.now() + params.duration * 1000;
      // /proc counts CPU in clock ticks (10 ms): a short run of a frugal server can fall below one, so the
      // window stays open until a few ticks have been counted (or long enough that the figure is honest).
      const minCpuUs = (MIN_CPU_TICKS * 1e6) / clkTck();
      const latest = end + Math.max(5000, params.duration * 1000);
      const measuring = (): boolean => performance.now() < end || (sample(running.pids).cpuUs - s0.cpuUs < minCpuUs && performance.now() < latest);
      let last = m0;
      while (measuring()) {
        await sleep(Math.min(500, Math.max(50, end - performance.now())));
        const m = await gen.mark();
        const s = sample(running.pids);
        rssPeak = Math.max(rssPeak, s.rss);
        const rate = (m.delivered - last.delivered) / ((m.at - last.at) / 1000);
        ctx.status(`${Math.round(rate).toLocaleString('en-US')} msg/s  ${Math.max(0, (end - performance.now()) / 1000).toFixed(1)}s left`);
        last = m;
      }
      const s1 = sample(running.pids);
      const g1 = sample(gen.pids);
      const c1 = running.counters?.() ?? {};
      const m1 = await gen.mark();
      const loop = await loopDelay(ctx, running);
      rssPeak = Math.max(rssPeak, s1.rss);
      const seconds = (m1.at - m0.at) / 1000;
      const delivered = m1.delivered - m0.delivered;
      const sent = m1.sent - m0.sent;
      errorNote(ctx, m1);
      if (s1.cpuUs - s0.cpuUs < minCpuUs) ctx.note(`server CPU of ${Math.round((s1.cpuUs - s0.cpuUs) / 1000)} ms is within the clock's resolution: its per-message figure is rough`);
      if (m1.lagging > 0) ctx.note(`generator fell behind the offered rate by ${m1.lagging} messages`);
      const f: Figures = {
        msgPerSec: delivered / seconds,
        sentPerSec: sent / seconds,
        cpuUsPerMsg: (s1.cpuUs - s0.cpuUs) / delivered,
        serverCpuPct: ((s1.cpuUs - s0.cpuUs) / 1e6 / seconds) * 100,
        genCpuUsPerMsg: (g1.cpuUs - g0.cpuUs) / delivered,
        genCpuPct: ((g1.cpuUs - g0.cpuUs) / 1e6 / seconds) * 100,
        p50Ms: ms(m1.latency.quantile(0.5)),
        p99Ms: ms(m1.latency.quantile(0.99)),
        p999Ms: ms(m1.latency.quantile(0.999)),
        maxMs: ms(m1.latency.max),
        rssMiB: s1.rss / 1048576,
        rssPeakMiB: rssPeak / 1048576,
        mainWaitMsPerSec: (s1.waitUs - s0.waitUs) / 1000 / seconds,
        ...loop,
      };
      for (const [k, v] of Object.entries(c1)) f[`${k}PerSec`] = (v - (c0[k] ?? 0)) / seconds;
      if (ctx.target.hub || m1.acked > 0) {
        f.ackedPerSec = (m1.acked - m0.acked) / seconds;
        f.ackP50Ms = ms(m1.ackLatency.quantile(0.5));
        f.ackP99Ms = ms(m1.ackLatency.quantile(0.99));
      }
      await gen.stop(2000);
      return f;
    } finally {
      await gen.teardown();
    }
  });
}

function streamJobs(endpoint: Endpoint, groups: GroupSpec[], workers: number, extra: Partial<StreamJob>): StreamJob[] {
  return split(groups, workers).map((g) => ({
    kind: 'stream', endpoint, groups: g, window: 0, flow: 'delivered', rate: 0, recordAcks: false, ids: true, localAddresses: ['127.0.0.1'], ...extra,
  }));
}

const ACKED = 'puts with an id, each acknowledged after commit (Mosquitto: QoS 1 publish, PUBACK)';
const FF = 'puts without an id, fire-and-forget (Mosquitto: QoS 0), measured by delivery to the receivers';

/** Point-to-point: `pairs` device/client pairs, each device keeping `window` in flight. */
function pointToPoint(name: ScenarioName, title: string, ids: boolean, shape: (p: BenchParams) => { pairs: number; window: number }): Scenario {
  return {
    name,
    title,
    method: (p) => {
      const { pairs, window } = shape(p);
      return `${pairs} device/client pairs, each device keeping ${window} messages in flight (sent − delivered to its client); ${ids ? ACKED : FF}; ${p.generators} generator process(es)`;
    },
    skip: () => null,
    devicesNeeded: (p) => shape(p).pairs,
    run: (ctx) => {
      const p = ctx.params;
      const { pairs, window } = shape(p);
      return streamRound(ctx, 1, (e) =>
        streamJobs(e, Array.from({ length: pairs }, (_, i) => ({ creds: creds(ctx, i), devices: 1, clients: 1 })), p.generators, { window, ids }),
      );
    },
  };
}

const p2p = pointToPoint('p2p', 'point-to-point, many connections', true, (p) => ({ pairs: p.pairs, window: p.window }));
const p2pFf = pointToPoint('p2p-ff', 'point-to-point, many connections, fire-and-forget', false, (p) => ({ pairs: p.pairs, window: p.window }));
const deep = pointToPoint('deep', 'point-to-point, deep pipelines', true, (p) => ({ pairs: p.deepPairs, window: p.deepWindow }));
const deepFf = pointToPoint('deep-ff', 'point-to-point, deep pipelines, fire-and-forget', false, (p) => ({ pairs: p.deepPairs, window: p.deepWindow }));

function fanIn(name: ScenarioName, ids: boolean): Scenario {
  return {
    name,
    title: ids ? 'fan-in' : 'fan-in, fire-and-forget',
    method: (p) => `${p.fanDevices} device connections writing to one client connection (one IOTcommunicate device id / one relay pair / one MQTT topic), each device keeping ${p.fanWindow} in flight; ${ids ? ACKED : FF}`,
    skip: () => null,
    devicesNeeded: () => 1,
    run: (ctx) => {
      const p = ctx.params;
      return streamRound(ctx, p.fanDevices + 1, (e) => streamJobs(e, [{ creds: creds(ctx, 0), devices: p.fanDevices, clients: 1 }], 1, { window: p.fanWindow, ids }));
    },
  };
}

function fanOut(name: ScenarioName, ids: boolean): Scenario {
  return {
    name,
    title: ids ? 'fan-out' : 'fan-out, fire-and-forget',
    method: (p) => `one device writing to ${p.fanClients} client connections, keeping ${p.fanWindow} messages in flight (until every client has it); delivered = messages × receivers; ${ids ? ACKED : FF}`,
    skip: () => null,
    devicesNeeded: () => 1,
    run: (ctx) => {
      const p = ctx.params;
      return streamRound(ctx, p.fanClients + 1, (e) => streamJobs(e, [{ creds: creds(ctx, 0), devices: 1, clients: p.fanClients }], 1, { window: p.fanWindow, ids }));
    },
  };
}
const fanin = fanIn('fanin', true);
const faninFf = fanIn('fanin-ff', false);
const fanout = fanOut('fanout', true);
const fanoutFf = fanOut('fanout-ff', false);

const latency: Scenario = {
  name: 'latency',
  title: 'open-loop latency',
  method: (p) => `${p.rate.toLocaleString('en-US')} msg/s offered on a fixed schedule (1 ms ticks) over ${p.latencyPairs} pairs, whatever the replies; latency = send → delivery at the client`,
  skip: () => null,
  devicesNeeded: (p) => p.latencyPairs,
  run: (ctx) => {
    const p = ctx.params;
    const groups = Array.from({ length: p.latencyPairs }, (_, i) => ({ creds: creds(ctx, i), devices: 1, clients: 1 }));
    const jobs = (e: Endpoint) => {
      const parts = split(groups, p.generators);
      return parts.map((g) => streamJobs(e, g, 1, { rate: (p.rate * g.length) / groups.length })[0]);
    };
    return streamRound(ctx, 1, jobs);
  },
};

let addressBlock = 0;
/** Fresh loopback source addresses for every connections round, so earlier rounds' TIME_WAIT ports never collide. */
function nextAddresses(n: number): string[] {
  addressBlock++;
  return Array.from({ length: n }, (_, i) => `127.${Math.floor(addressBlock / 250) + 1}.${(addressBlock % 250) + 1}.${i + 1}`);
}

const connections: Scenario = {
  name: 'connections',
  title: 'idle connections',
  method: (p) =>
    `${p.connections.toLocaleString('en-US')} authenticated idle connections (one device each) opened at ${p.connectRate.toLocaleString("en-US")}/s offered (at most 100 handshakes pending per process, below the listen backlog) from ${p.connectWorkers} generator processes on distinct loopback source addresses; in steps of ${p.connectionSteps.map((n) => n.toLocaleString('en-US')).join(' → ')}; RSS per connection = (RSS after − RSS before) / connections, ${p.settle} s after the last of each step opened; 100k projected from the last step's cost per added connection`,
  skip: () => null,
  devicesNeeded: (p) => p.connections,
  run: async (ctx) => {
    const p = ctx.params;
    // The server needs a descriptor per connection plus its own (store, listener, stdio): stay under the limit.
    const limit = openFileLimit().hard;
    let count = p.connections;
    if (count > limit - 64) {
      count = limit - 64;
      ctx.note(`open-file limit here is ${limit} (not raisable: no CAP_SYS_RESOURCE), so ${count} connections instead of ${p.connections}`);
    }
    const steps = [...new Set([...p.connectionSteps.filter((n) => n < count), count])].sort((a, b) => a - b);
    return withTarget(ctx, 1, async (running) => {
      await sleep((p.settle * 1000) / 2);
      const r0 = sample(running.pids);
      const all = Array.from({ length: count }, (_, i) => (ctx.target.hub ? ctx.fixture.devices[i] : { id: `c${i}` }));
      const addresses = nextAddresses(p.connectWorkers);
      const f: Figures = {};
      let opened = 0;
      let prev = { n: 0, rss: r0.rss };
      try {
        const g0 = sample(ctx.gen.pids);
        let s1 = r0;
        let g1 = g0;
        let m: Snapshot | null = null;
        // Each step adds connections to those already open, then lets them settle and reads RSS.
        for (const [k, step] of steps.entries()) {
          const parts = split(all.slice(prev.n, step), p.connectWorkers);
          const jobs: ConnectJob[] = parts.map((c, i) => ({
            kind: 'connect', endpoint: running.endpoint, creds: c, rate: (p.connectRate * c.length) / (step - prev.n), maxPending: 100, localAddresses: [addresses[i]], keep: k > 0,
          }));
          await ctx.gen.setup(jobs);
          const before = k === 0 ? 0 : (m?.opened ?? 0) + (m?.failed ?? 0);
          const stepStart = sample(running.pids);
          ctx.gen.start();
          const deadline = performance.now() + ((step - prev.n) / p.connectRate) * 4000 + 30_000;
          m = await ctx.gen.mark();
          while (m.opened + m.failed < step && performance.now() < deadline) {
            await sleep(250);
            m = await ctx.gen.mark();
            ctx.status(`${m.opened.toLocaleString('en-US')} open${m.failed ? `, ${m.failed} failed` : ''}`);
          }
          s1 = sample(running.pids);
          g1 = sample(ctx.gen.pids);
          const seconds = (m.lastOpenAt - m.firstConnectAt) / 1e6;
          f.connectPerSec = seconds > 0 ? (m.opened + m.failed - before) / seconds : 0;
          f.cpuUsPerConn = (s1.cpuUs - stepStart.cpuUs) / Math.max(1, m.opened + m.failed - before);
          ctx.status('settling');
          await sleep(p.settle * 1000);
          const r = sample(running.pids);
          opened = m.opened;
          f[`rssPerConnKiB_${step}`] = (r.rss - r0.rss) / Math.max(1, opened) / 1024;
          f.marginalKiB = (r.rss - prev.rss) / Math.max(1, step - prev.n) / 1024;
          f.rssPerConnKiB = f[`rssPerConnKiB_${step}`];
          f.rssMiB = r.rss / 1048576;
          prev = { n: step, rss: r.rss };
        }
        const last = await ctx.gen.mark();
        errorNote(ctx, last);
        // 100 000 connections: what the last step holds plus the rest at the last step's cost per added connection.
        // A step whose RSS fell (the heap returned pages meanwhile, seen at small steps) says nothing of that cost:
        // the average over all the connections stands in for it then.
        const perAdded = f.marginalKiB > 0 ? f.marginalKiB : Math.max(0, f.rssPerConnKiB);
        if (!(f.marginalKiB > 0)) ctx.note(`RSS fell during the last step (${f.marginalKiB.toFixed(2)} KiB per added connection): the projection uses the average, ${perAdded.toFixed(2)} KiB`);
        f.projected100kMiB = prev.rss / 1048576 + (Math.max(0, 100_000 - prev.n) * perAdded) / 1024;
        return {
          connections: last.opened,
          failed: last.failed,
          ...f,
          genCpuUsPerConn: (g1.cpuUs - g0.cpuUs) / Math.max(1, opened),
          serverCpuPct: ((s1.cpuUs - r0.cpuUs) / 1e6 / ((s1.at - r0.at) / 1000)) * 100,
          connectP50Ms: ms(last.connectLatency.quantile(0.5)),
          connectP99Ms: ms(last.connectLatency.quantile(0.99)),
          rssBaseMiB: r0.rss / 1048576,
          // Connections the server dropped while idle: should be none.
          droppedIdle: Math.max(0, Object.entries(last.errors).filter(([k]) => !k.startsWith('connect')).reduce((n, [, v]) => n + v, 0)),
        };
      } finally {
        await ctx.gen.teardown();
      }
    });
  },
};

/** Readings acknowledged to the devices vs readings found in the store once the server is gone. */
async function durabilityRun(ctx: RoundContext, signal: NodeJS.Signals): Promise<Figures> {
  const p = ctx.params;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iotc-bench-durability-'));
  const running = await ctx.target.start({ template: ctx.fixture.file, workDir: dir, maxConnectionsPerDevice: 1 });
  try {
    const devices = ctx.fixture.devices.slice(0, p.durabilityDevices);
    const groups = devices.map((d) => ({ creds: d, devices: 1, clients: 0 }));
    await ctx.gen.setup(streamJobs(running.endpoint, groups, p.generators, { window: p.durabilityWindow, flow: 'acked', recordAcks: true }));
    let final: Awaited<ReturnType<Generator['stop']>>;
    try {
      ctx.gen.start();
      const until = performance.now() + p.duration * 1000;
      while (performance.now() < until) {
        await sleep(250);
        const m = await ctx.gen.mark();
        ctx.status(`${signal}: ${m.acked.toLocaleString('en-US')} acknowledged`);
      }
      // Stop the server in the middle of the stream: writes keep arriving while it drains or dies.
      await running.stop(signal);
      final = await ctx.gen.stop(2000);
    } finally {
      await ctx.gen.teardown();
    }
    const stored = await storedSequenceNumbers(running.dbFile!, devices.map((d) => d.id), SENSOR);
    let acknowledged = 0;
    let storedCount = 0;
    let lost = 0;
    let extra = 0;
    for (const d of devices) {
      const acked = final.acked.get(d.id) ?? [];
      const have = new Set(stored.get(d.id) ?? []);
      acknowledged += acked.length;
      storedCount += have.size;
      for (const n of acked) if (!have.has(n)) lost++;
      extra += have.size - (acked.length - acked.filter((n) => !have.has(n)).length);
    }
    const refused = Object.entries(final.snapshot.errors).filter(([k]) => k.startsWith('E_')).reduce((n, [, v]) => n + v, 0);
    return { acknowledged, stored: storedCount, lost, storedNotAcknowledged: extra, refused };
  } finally {
    await running.stop('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const durability: Scenario = {
  name: 'durability',
  title: 'durability',
  method: (p) =>
    `${p.durabilityDevices} devices, ${p.durabilityWindow} puts in flight each (flow by acks); after ${p.duration}s the server is sent SIGTERM (graceful) or SIGKILL (crash) mid-stream; then every acknowledged reading is looked up in the store`,
  skip: (t) => (t.persists ? null : 'keeps no readings (QoS 0 / relay): nothing to check'),
  devicesNeeded: (p) => p.durabilityDevices,
  run: async (ctx) => {
    const term = await durabilityRun(ctx, 'SIGTERM');
    const kill = await durabilityRun(ctx, 'SIGKILL');
    const f: Figures = {};
    for (const [k, v] of Object.entries(term)) f[`term${k[0].toUpperCase()}${k.slice(1)}`] = v;
    for (const [k, v] of Object.entries(kill)) f[`kill${k[0].toUpperCase()}${k.slice(1)}`] = v;
    return f;
  },
};

export const SCENARIO_TABLE: Record<ScenarioName, Scenario> = {
  p2p, 'p2p-ff': p2pFf, deep, 'deep-ff': deepFf, fanin, 'fanin-ff': faninFf, fanout, 'fanout-ff': fanoutFf, latency, connections, durability,
};
