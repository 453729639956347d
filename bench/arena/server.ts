/**
 * A real IOTcommunicate server in its own process, for the fuzz suite, the soak run and the attacks: fresh data
 * dir, its own HTTP and MQTT ports on 127.0.0.1, and the process watched, so a crash is seen (not just a
 * refused connection) and its RSS can be read from /proc without counting the load generator.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rssBytes } from '../proc.js';
import { ROOT, ensureBuilt, freePort } from '../targets.js';

export interface HubOptions {
  /** `dist`: the built server (ensureBuilt first), as shipped; `src`: from source through tsx, as tests do. */
  build?: 'dist' | 'src';
  /** Extra IOTC_* settings; everything else is the default a user gets. */
  env?: Record<string, string>;
  /** Runs the server under `ulimit -n N` (soft and hard), to scale descriptor exhaustion down. */
  openFiles?: number;
  /** Pass the server's output through to stderr. */
  verbose?: boolean;
  /** Keep the data dir after stop (default: removed). */
  keepData?: boolean;
}

export interface Hub {
  url: string;
  wsUrl: string;
  port: number;
  mqttPort: number;
  pid: number;
  dataDir: string;
  dbFile: string;
  /** Null while running; the exit code or signal once the process has ended. */
  exit(): { code: number | null; signal: NodeJS.Signals | null } | null;
  /** Resident set size of the server process in bytes (0 once gone). */
  rss(): number;
  /** The last lines it printed. */
  output(): string;
  /** SIGTERM (SIGKILL after 20 s), then removes the data dir unless keepData. Never throws. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const live = new Set<ChildProcess>();
/** Ends every server this process started (an interrupted run). */
export function killAllHubs(): void {
  for (const child of live) child.kill('SIGKILL');
}
// A run that ends any way at all (a failed test, a timeout) leaves no hub behind.
process.once('exit', killAllHubs);

/** The caller's environment without any IOTC_* setting or PORT, so the harness decides every one. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('IOTC_') && k !== 'PORT' && k !== 'NODE_OPTIONS') env[k] = v;
  return { ...env, ...extra };
}

export async function startHub(opts: HubOptions = {}): Promise<Hub> {
  const build = opts.build ?? 'dist';
  if (build === 'dist') ensureBuilt((s) => process.stderr.write(s + '\n'));
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'iotc-arena-'));
  const [port, mqttPort] = [await freePort(), await freePort()];
  const env = cleanEnv({
    PORT: String(port),
    IOTC_MQTT_PORT: String(mqttPort),
    IOTC_HOST: '127.0.0.1',
    IOTC_DATA_DIR: dataDir,
    IOTC_LOG_LEVEL: 'warn',
    ...opts.env,
  });
  const nodeArgs = build === 'dist' ? [path.join(ROOT, 'dist/cli/main.js'), 'serve'] : ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'serve'];
  const [cmd, args] = opts.openFiles
    ? ['/bin/sh', ['-c', `ulimit -n ${opts.openFiles} && exec "$0" "$@"`, process.execPath, ...nodeArgs]]
    : [process.execPath, nodeArgs];
  const child = spawn(cmd, args as string[], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let tail = '';
  const keep = (d: Buffer) => {
    tail = (tail + d.toString()).slice(-8000);
    if (opts.verbose) process.stderr.write(d);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exitState: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      live.delete(child);
      exitState = { code, signal };
      resolve(exitState);
    }),
  );
  const cleanup = () => {
    if (!opts.keepData) fs.rmSync(dataDir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 30_000;
  for (;;) {
    if (exitState) {
      cleanup();
      throw new Error(`the server exited before answering (${JSON.stringify(exitState)}):\n${tail}`);
    }
    const ok = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > until) {
      child.kill('SIGKILL');
      await exited;
      cleanup();
      throw new Error(`the server did not answer /healthz within 30 s:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    wsUrl: `ws://127.0.0.1:${port}`,
    port,
    mqttPort,
    pid: child.pid!,
    dataDir,
    dbFile: path.join(dataDir, 'iotc.db'),
    exit: () => exitState,
    rss: () => rssBytes(child.pid!),
    output: () => tail,
    async stop() {
      if (!exitState) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const result = await exited;
      clearTimeout(timer);
      cleanup();
      return result;
    },
  };
}
