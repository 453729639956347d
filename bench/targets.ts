/**
 * The servers under test, each started by the bench as its own process on a free loopback port, so that
 * /proc shows exactly its cost: IOTcommunicate as shipped, Mosquitto (if installed) and the bare relay.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { FIRE_COOLDOWN_MS } from './webhook-receiver.js';
import type { WebhookReceiver } from './webhook-receiver.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export type Protocol = 'iotc' | 'bare' | 'mqtt';

/** Where and how the load generator reaches a running target. */
export interface Endpoint {
  protocol: Protocol;
  host: string;
  port: number;
  /**
   * MQTT only: IOTcommunicate's MQTT door. CONNECT carries the device id and key, topics are `devices/ID/SENSOR`
   * and the payload is the value itself; Mosquitto takes anyone on the bench's own topics.
   */
  login?: boolean;
}

/** Extra node flags for the IOTcommunicate server, e.g. --cpu-prof (set by `npm run bench -- --profile DIR`). */
export const serverNodeArgs: string[] = [];
/** `--verbose`: pass the targets' own output through. */
export const showServerOutput = { on: false };

export interface StartOptions {
  /** The server's entry script (default: this checkout's dist/cli/main.js). */
  entry?: string;
  /** A SQLite file with the bench's accounts, copied into the target's fresh data dir. */
  template?: string;
  workDir: string;
  maxConnectionsPerDevice: number;
  /** More IOTC_* settings for this target. */
  env?: Record<string, string>;
}

export interface RunningTarget {
  readonly endpoint: Endpoint;
  /** Processes whose CPU and memory count as the server's. */
  readonly pids: number[];
  /** Where an IOTcommunicate target keeps its SQLite file. */
  readonly dbFile?: string;
  /** Stops the target (SIGTERM, or SIGKILL after a grace period or when asked) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last lines it printed, to explain a failure. */
  output(): string;
  /** Counts kept outside the server (webhooks its rules delivered): the bench reports each as a rate over the window. */
  counters?(): Record<string, number>;
  /** IOTcommunicate's /metrics, where the bench reads the server's event-loop delay. */
  readonly metricsUrl?: string;
}

export interface Target {
  readonly name: string;
  readonly label: string;
  readonly protocol: Protocol;
  /** IOTcommunicate itself, through whichever door: its devices are the fixture's, with their ids and keys. */
  readonly hub: boolean;
  /** Whether it keeps readings, so durability means something for it. */
  readonly persists: boolean;
  /** Null when it can run here, otherwise why not. */
  unavailable(): string | null;
  /** One-line description for the report (version, settings). */
  describe(): string;
  start(opts: StartOptions): Promise<RunningTarget>;
}

/** A port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number, out: () => string): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited before listening (${child.exitCode ?? child.signalCode}):\n${out()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`not listening on ${port} after ${timeoutMs} ms:\n${out()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const live = new Set<ChildProcess>();
/** Ends every target process still running (interrupted or failed bench). */
export function killAllTargets(): void {
  for (const child of live) child.kill('SIGKILL');
}

/** Spawns a server process, keeps its last output, and gives it a stop that always ends it. */
async function launch(cmd: string, args: string[], env: NodeJS.ProcessEnv, endpoint: Endpoint, extra: Partial<RunningTarget> = {}): Promise<RunningTarget> {
  const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let tail = '';
  const keep = (d: Buffer) => {
    tail = (tail + d.toString()).slice(-4000);
    if (showServerOutput.on) process.stderr.write(d);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    }),
  );
  try {
    await waitForPort(endpoint.port, child, 20_000, () => tail);
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  }
  return {
    endpoint,
    pids: [child.pid!],
    ...extra,
    output: () => tail,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/** Environment without any IOTC_* setting of the caller's shell, so the bench controls them all. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('IOTC_') && k !== 'PORT' && !k.startsWith('NODE_OPTIONS')) env[k] = v;
  return { ...env, ...extra };
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds dist/ when it is missing or older than src/, so the bench always measures the code as it is. */
export function ensureBuilt(log: (s: string) => void): void {
  const main = path.join(ROOT, 'dist/cli/main.js');
  const stale = !fs.existsSync(main) || newestMtime(path.join(ROOT, 'src')) > newestMtime(path.join(ROOT, 'dist'));
  if (!stale) return;
  log('building dist/ (npm run build) …');
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
}

/** The hub as `npm start` runs it, reached through its WebSocket door or, with an MQTT port, its MQTT door. */
async function startHub(opts: StartOptions, mqttPort = 0): Promise<RunningTarget> {
  const dataDir = path.join(opts.workDir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const dbFile = path.join(dataDir, 'iotc.db');
  if (opts.template) fs.copyFileSync(opts.template, dbFile);
  const port = await freePort();
  const env = cleanEnv({
    PORT: String(port),
    IOTC_HOST: '127.0.0.1',
    IOTC_DATA_DIR: dataDir,
    IOTC_LOG_LEVEL: 'warn',
    // Off unless asked, so the WebSocket target holds no listener it does not use.
    IOTC_MQTT_PORT: String(mqttPort),
    // The per-connection flood limit (200/s by default) would cap the load itself; unlimited is documented.
    IOTC_RATE_LIMIT: '0',
    // The load generator opens up to 100 connections at once from each of its addresses: past the per-address
    // cap on connections still in their handshake (64 by default), the hub would close its oldest.
    IOTC_MAX_UNAUTH_PER_ADDRESS: '1000000',
    IOTC_MAX_CONNECTIONS_PER_DEVICE: String(opts.maxConnectionsPerDevice),
    ...opts.env,
  });
  const endpoint: Endpoint = mqttPort ? { protocol: 'mqtt', host: '127.0.0.1', port: mqttPort, login: true } : { protocol: 'iotc', host: '127.0.0.1', port };
  // Both listeners open before startup ends; waiting for the door the load uses is enough.
  return launch(process.execPath, [...serverNodeArgs, opts.entry ?? path.join(ROOT, 'dist/cli/main.js'), 'serve'], env, endpoint, {
    dbFile,
    metricsUrl: `http://127.0.0.1:${port}/metrics`,
  });
}

export const iotc: Target = {
  name: 'iotc',
  label: 'IOTcommunicate',
  protocol: 'iotc',
  hub: true,
  persists: true,
  unavailable: () => null,
  describe: () => 'WebSocket door, SQLite store (WAL, synchronous=NORMAL), every reading persisted and acknowledged after commit; built dist/, IOTC_RATE_LIMIT=0',
  start: (opts) => startHub(opts),
};

/**
 * The same hub through its MQTT door, driven by the MQTT client the bench drives Mosquitto with: the comparison
 * an MQTT user makes. Devices and apps log in with the device id and key (`ID`, `ID:client`).
 */
export const iotcMqtt: Target = {
  ...iotc,
  name: 'iotc-mqtt',
  label: 'IOTcommunicate MQTT',
  protocol: 'mqtt',
  describe: () =>
    'MQTT door of the same hub, MQTT 3.1.1 with the device id and key in CONNECT, topic devices/ID/temp with the value as payload; QoS 1 PUBACK after commit; every reading persisted',
  start: async (opts) => startHub(opts, await freePort()),
};

let mosquittoVersion: string | null | undefined;
function findMosquitto(): string | null {
  if (mosquittoVersion !== undefined) return mosquittoVersion;
  try {
    // `mosquitto -h` prints its version and exits with 3.
    const out = execFileSync('mosquitto', ['-h'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    mosquittoVersion = /mosquitto version (\S+)/.exec(out)?.[1] ?? 'unknown';
  } catch (err) {
    const out = String((err as { stdout?: string }).stdout ?? '');
    const m = /mosquitto version (\S+)/.exec(out);
    mosquittoVersion = m ? m[1] : null;
  }
  return mosquittoVersion;
}

/**
 * Another build of IOTcommunicate (the dist/ folder of an older checkout, say), run exactly like `iotc` (or, given
 * `door`, like `iotc-mqtt`), so a change can be measured against what it replaces in the same interleaved run:
 * `--baseline DIR`.
 */
export function baselineTarget(distDir: string, name = 'baseline', door: Target = iotc): Target {
  const main = path.join(distDir, 'cli/main.js');
  return {
    ...door,
    name,
    label: `${door.label} (${name.replace(/-mqtt$/, '')})`,
    unavailable: () => (fs.existsSync(main) ? null : `${main} not found: point --baseline at a built dist/ folder`),
    describe: () => `${door.describe()}; built from ${distDir}`,
    start: (opts) => door.start({ ...opts, entry: main }),
  };
}

/**
 * IOTcommunicate itself on a fixture whose devices have `perDevice` automation rules each: `--rules N`. With a
 * receiver (`--fire`), target "iotc-fire": two more rules per device that act, with webhooks to that receiver.
 */
export function rulesTarget(perDevice: number, receiver?: WebhookReceiver): Target {
  const rules = `${perDevice} rule${perDevice === 1 ? '' : 's'}/device`;
  if (!receiver) {
    return {
      ...iotc,
      name: 'iotc-rules',
      label: `IOTcommunicate (${rules})`,
      describe: () => `${iotc.describe()}; ${perDevice} automation rule(s) per device evaluated for every reading`,
    };
  }
  return {
    ...iotc,
    name: 'iotc-fire',
    label: `IOTcommunicate (${rules} + 2 firing)`,
    describe: () => `${iotc.describe()}; ${perDevice} automation rule(s) per device that never hold, and 2 that act with webhooks to a local receiver (one holding from the first reading, one on every change at most once per ${FIRE_COOLDOWN_MS / 1000} s)`,
    async start(opts) {
      // The receiver listens on loopback, which webhooks may reach only when the hub allows it.
      const running = await iotc.start({ ...opts, env: { ...opts.env, IOTC_WEBHOOK_ALLOW_PRIVATE: 'true' } });
      return { ...running, stop: running.stop, output: running.output, counters: () => receiver.counts() };
    },
  };
}

export const mosquitto: Target = {
  name: 'mosquitto',
  label: 'Mosquitto',
  protocol: 'mqtt',
  hub: false,
  persists: false,
  unavailable: () => (findMosquitto() ? null : 'the mosquitto binary is not installed (apt-get install mosquitto)'),
  describe: () => `Mosquitto ${findMosquitto() ?? '?'}, MQTT 3.1.1 QoS 0, anonymous, no persistence, TCP_NODELAY on`,
  async start(opts) {
    const port = await freePort();
    const conf = path.join(opts.workDir, 'mosquitto.conf');
    fs.writeFileSync(
      conf,
      [
        `listener ${port} 127.0.0.1`,
        'allow_anonymous true',
        'persistence false',
        // Node's ws sets TCP_NODELAY on every socket; give Mosquitto the same so neither waits on Nagle.
        'set_tcp_nodelay true',
        'max_connections -1',
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        '',
      ].join('\n'),
    );
    return launch('mosquitto', ['-c', conf], cleanEnv({}), { protocol: 'mqtt', host: '127.0.0.1', port });
  },
};

/**
 * The bare relay runs as plain JavaScript (transpiled here once), like the built IOTcommunicate, so
 * neither carries a TypeScript loader. It lives under node_modules/.cache so that it finds `ws`.
 */
function bareRelayScript(): string {
  const out = path.join(ROOT, 'node_modules/.cache/iotc-bench/bare-relay.mjs');
  const src = path.join(ROOT, 'bench/bare-relay.ts');
  if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(src).mtimeMs) {
    const js = ts.transpileModule(fs.readFileSync(src, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, js);
  }
  return out;
}

export const bare: Target = {
  name: 'bare',
  label: 'bare ws relay',
  protocol: 'bare',
  hub: false,
  persists: false,
  unavailable: () => null,
  describe: () => 'ws server, no auth, no storage, no acks: JSON.parse + JSON.stringify once + send to the other side',
  async start() {
    const port = await freePort();
    return launch(process.execPath, [bareRelayScript()], cleanEnv({ PORT: String(port) }), { protocol: 'bare', host: '127.0.0.1', port });
  },
};

export const ALL_TARGETS: readonly Target[] = [iotc, iotcMqtt, mosquitto, bare];
