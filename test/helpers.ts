/** Shared test helpers: real servers on port 0, real SQLite files in temp dirs, real WebSocket clients. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { WebSocket } from 'ws';
import type { ClientOptions } from 'ws';
import { loadConfig } from '../src/config.js';
import type { Config } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { startServer } from '../src/server.js';
import type { RunningServer } from '../src/server.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A fresh temp dir, removed by the returned cleanup. */
export function tempDir(prefix = 'iotc-test-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export function testConfig(overrides: Partial<Config> = {}, dataDir?: string): Config {
  // mqttPort 0: the MQTT listener stays off unless a test asks for one (1883 belongs to the system broker).
  return loadConfig({}, {}, { port: 0, mqttPort: 0, host: '127.0.0.1', logLevel: 'silent', dataDir, ...overrides });
}

export interface TestServer extends RunningServer {
  wsUrl: string;
  dataDir: string;
  /** Stops the server and removes its data dir (unless keepData). */
  stop(opts?: { keepData?: boolean }): Promise<void>;
}

/**
 * Starts a real server on a free port with its own SQLite file. Logs go nowhere unless `logs` is given
 * (then at the `logLevel` override, or info).
 */
export async function startTestServer(overrides: Partial<Config> = {}, dataDir?: string, opts: { logs?: LogCapture } = {}): Promise<TestServer> {
  const tmp = dataDir ? null : tempDir();
  const dir = dataDir ?? tmp!.dir;
  const config = testConfig({ ...(opts.logs ? { logLevel: 'info' } : {}), ...overrides }, dir);
  let server: RunningServer;
  try {
    server = await startServer(config, createLogger(config.logLevel, opts.logs));
  } catch (err) {
    tmp?.cleanup();
    throw err;
  }
  return Object.assign(server, {
    wsUrl: `ws://127.0.0.1:${server.port}`,
    dataDir: dir,
    async stop(opts?: { keepData?: boolean }) {
      await server.close();
      if (tmp && !opts?.keepData) tmp.cleanup();
    },
  });
}

let userCounter = 0;
/** A user with one device, made through the same account service the web app and CLI use. */
export async function makeDevice(server: RunningServer, name = 'Lamp'): Promise<{ userId: number; email: string; id: string; key: string }> {
  const email = `user${++userCounter}-${Date.now()}@example.com`;
  const user = await server.hub.accounts.signUp({ name: 'Test User', email, password: 'correct horse battery' });
  const device = await server.hub.accounts.createDevice(user.id, name);
  return { userId: user.id, email, id: device.id, key: device.key };
}

export interface Message {
  [k: string]: any;
}

/** A WebSocket to `url` whose errors never throw: `opened` settles with the handshake, `closed` with the close. */
export function socketTo(url: string, options?: ClientOptions): { ws: WebSocket; opened: Promise<void>; closed: Promise<{ code: number; reason: string }> } {
  const ws = new WebSocket(url, options);
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.on('error', () => {});
  return { ws, opened, closed };
}

/** A WebSocket client that queues what arrives, so tests can await the next message in order. */
export class TestClient {
  readonly ws: WebSocket;
  private readonly inbox: Message[] = [];
  private waiters: { pred: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  private nextId = 1;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(url: string) {
    ({ ws: this.ws, opened: this.opened, closed: this.closed } = socketTo(url));
    this.ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      const i = this.waiters.findIndex((w) => w.pred(m));
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
      else this.inbox.push(m);
    });
  }

  static async connect(base: string, device: string, key: string, side?: 'device' | 'client'): Promise<TestClient> {
    const q = new URLSearchParams({ device, key, ...(side ? { side } : {}) });
    const c = new TestClient(`${base}/ws?${q}`);
    await c.opened;
    return c;
  }

  /** The next message matching `pred` (already arrived or yet to come). */
  next(pred: (m: Message) => boolean = () => true, timeoutMs = 5000): Promise<Message> {
    const i = this.inbox.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const waiter = { pred, resolve: (m: Message) => (clearTimeout(timer), resolve(m)) };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no matching message within ${timeoutMs} ms; inbox: ${JSON.stringify(this.inbox).slice(0, 500)}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** The next delivered reading (a message without "ok"). */
  reading(timeoutMs?: number): Promise<Message> {
    return this.next((m) => !('ok' in m), timeoutMs);
  }

  /** Sends a request with a fresh id and resolves with the reply carrying that id. */
  request(body: Message, timeoutMs?: number): Promise<Message> {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ ...body, id }));
    return this.next((m) => m.id === id, timeoutMs);
  }

  /** Stops reading from the socket, as a peer that hangs or cannot keep up would (pongs stop too). */
  pauseSocket(): void {
    (this.ws as unknown as { _socket: net.Socket })._socket.pause();
  }

  resumeSocket(): void {
    (this.ws as unknown as { _socket: net.Socket })._socket.resume();
  }

  send(raw: string | Message): void {
    this.ws.send(typeof raw === 'string' ? raw : JSON.stringify(raw));
  }

  /** Messages that arrived and were not taken. */
  get pending(): Message[] {
    return [...this.inbox];
  }

  close(): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
    return this.closed;
  }
}

/** A port that was free a moment ago, for listeners where 0 means "off" rather than "any" (the MQTT door). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `promise`, or a rejection naming `what` if it takes longer than `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what = 'result'): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `check` until it returns a truthy value or the time runs out. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/**
 * Environment for a server or CLI a test starts as a process: loopback only, and no MQTT listener unless a
 * test asks for one (1883 is the system broker's port).
 */
export const SERVE_ENV = { IOTC_HOST: '127.0.0.1', IOTC_MQTT_PORT: '0' } as const;

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion with its output captured; killed (SIGKILL unless `killSignal`) and rejected after `timeoutMs`. */
export function runProcess(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number; killSignal?: NodeJS.Signals } = {},
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill(opts.killSignal ?? 'SIGKILL');
      reject(new Error(`${path.basename(cmd)} ${args.join(' ')} timed out; stdout: ${stdout.slice(-2000)} stderr: ${stderr.slice(-2000)}`));
    }, opts.timeoutMs ?? 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs the CLI from source in a child process. */
export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<ProcessResult> {
  return runProcess(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...SERVE_ENV, IOTC_LOG_LEVEL: 'silent', ...opts.env },
    input: opts.input,
    timeoutMs: opts.timeoutMs,
  });
}

/**
 * Whether a service answers on host:port. Absent: tests skip with a printed notice, or fail when
 * IOTC_REQUIRE_SERVICES=1 (as CI sets it).
 */
export async function serviceAvailable(name: string, port: number, host = '127.0.0.1'): Promise<boolean> {
  const up = await new Promise<boolean>((resolve) => {
    const sock = net.connect({ port, host });
    sock.setTimeout(1000);
    sock.once('connect', () => (sock.destroy(), resolve(true)));
    sock.once('error', () => resolve(false));
    sock.once('timeout', () => (sock.destroy(), resolve(false)));
  });
  if (!up) {
    if (process.env.IOTC_REQUIRE_SERVICES === '1') throw new Error(`${name} is required (IOTC_REQUIRE_SERVICES=1) but not reachable at ${host}:${port}`);
    console.log(`# notice: ${name} not reachable at ${host}:${port}; skipping tests that need it`);
  }
  return up;
}

/** A pino destination that keeps every log line, for tests that read what the server logged. */
export class LogCapture extends Writable {
  private chunks: string[] = [];

  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: () => void): void {
    this.chunks.push(chunk.toString());
    done();
  }

  get text(): string {
    return this.chunks.join('');
  }

  /** Every line that parses as JSON. */
  get entries(): Message[] {
    return this.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  }
}

export interface ServeProcess {
  child: ChildProcessWithoutNullStreams;
  port: number;
  wsUrl: string;
  /** Everything the process printed so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves once the process has exited and its output is all read. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs the real `iotc serve` from source in a child process on a free port and resolves once it listens
 * (the port is read from its "listening on port N" log line). The caller ends it with a signal.
 */
export function spawnServe(env: NodeJS.ProcessEnv, timeoutMs = 20_000): Promise<ServeProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'serve'], {
    cwd: ROOT,
    env: { ...process.env, ...SERVE_ENV, PORT: '0', IOTC_LOG_LEVEL: 'info', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`iotc serve did not start within ${timeoutMs} ms; stdout: ${stdout} stderr: ${stderr}`));
    }, timeoutMs);
    let started = false;
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => {
      stdout += d;
      const m = /IOTcommunicate listening on port (\d+)/.exec(stdout);
      if (m && !started) {
        started = true;
        clearTimeout(timer);
        const port = Number(m[1]);
        resolve({
          child, port, wsUrl: `ws://127.0.0.1:${port}`, exited,
          get stdout() { return stdout; },
          get stderr() { return stderr; },
        });
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`iotc serve exited (${code ?? signal}) before listening; stdout: ${stdout} stderr: ${stderr}`));
    });
  });
}
