/**
 * Throwaway copies of the services, for tests that stop and start them: the machine's shared PostgreSQL
 * and NATS are used by other tests at the same time and are never touched. Also: spawning real server
 * processes for cluster tests.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, ROOT, SERVE_ENV, sleep, tempDir, waitFor } from './helpers.js';

export { freePort };

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    sock.once('connect', () => (sock.destroy(), resolve(true)));
    sock.once('error', () => resolve(false));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

/** Runs a command without blocking the event loop (other tests' timers keep running); rejects with its output on failure. */
async function run(cmd: string, args: string[]): Promise<void> {
  try {
    await promisify(execFile)(cmd, args, { encoding: 'utf8' });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd} ${args.slice(0, 4).join(' ')} failed: ${e.stderr || e.stdout || e.message}`);
  }
}

export const NATS_SERVER = '/usr/sbin/nats-server';
export const natsServerInstalled = () => fs.existsSync(NATS_SERVER);

/** A nats-server of our own on a free port, with monitoring, that can be stopped and started again on the same port. */
export class ThrowawayNats {
  private child: ChildProcess | null = null;
  private constructor(readonly port: number, readonly monitorPort: number, private readonly args: string[] = []) {}

  /** `args`: more nats-server flags (e.g. --user/--pass, --tls…), for tests of NATS authentication. */
  static async start(args: string[] = []): Promise<ThrowawayNats> {
    const n = new ThrowawayNats(await freePort(), await freePort(), args);
    await n.start();
    return n;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.child = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(this.port), '-m', String(this.monitorPort), ...this.args], { stdio: 'ignore' });
    await waitFor(() => portOpen(this.port), 10_000, `nats-server on port ${this.port}`);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child) return;
    child.kill('SIGTERM');
    await exited(child);
  }

  /** The server's monitoring endpoint, e.g. `connz?subs=1`. */
  async monitor(pathAndQuery: string): Promise<any> {
    const res = await fetch(`http://127.0.0.1:${this.monitorPort}/${pathAndQuery}`);
    return res.json();
  }
}

const PG_BIN = (() => {
  try {
    const versions = fs.readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    return versions.length ? `/usr/lib/postgresql/${versions[0]}/bin` : null;
  } catch {
    return null;
  }
})();
export const postgresInstalled = () => PG_BIN !== null && process.getuid?.() === 0;

/**
 * A PostgreSQL cluster of our own in a temp dir, run as the `postgres` OS user on a free port (trust auth),
 * that can be stopped and started again. fsync is off: it is thrown away.
 */
export class ThrowawayPostgres {
  private constructor(readonly port: number, readonly dir: string, private readonly cleanupDir: () => void) {}

  static async start(): Promise<ThrowawayPostgres> {
    if (!PG_BIN) throw new Error('PostgreSQL binaries not installed');
    const tmp = tempDir('iotc-pg-');
    fs.chmodSync(tmp.dir, 0o755);
    const data = path.join(tmp.dir, 'data');
    fs.mkdirSync(data);
    try {
      await run('chown', ['-R', 'postgres:postgres', tmp.dir]);
      await run('runuser', ['-u', 'postgres', '--', `${PG_BIN}/initdb`, '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    } catch (err) {
      tmp.cleanup();
      throw err;
    }
    const pgInstance = new ThrowawayPostgres(await freePort(), tmp.dir, tmp.cleanup);
    await pgInstance.start();
    return pgInstance;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private ctl(...args: string[]): Promise<void> {
    return run('runuser', ['-u', 'postgres', '--', `${PG_BIN}/pg_ctl`, '-D', path.join(this.dir, 'data'), ...args]);
  }

  async start(): Promise<void> {
    const opts = `-p ${this.port} -k ${this.dir} -h 127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=50 -c shared_buffers=16MB`;
    await this.ctl('start', '-w', '-t', '30', '-l', path.join(this.dir, 'log'), '-o', opts);
    await waitFor(() => portOpen(this.port), 10_000, 'throwaway PostgreSQL');
  }

  /** A fast shutdown: open connections are cut, as in a restart or failover. */
  async stop(): Promise<void> {
    await this.ctl('stop', '-w', '-m', 'fast');
  }

  async destroy(): Promise<void> {
    try {
      await this.ctl('stop', '-w', '-m', 'immediate');
    } catch {
      // already stopped
    }
    this.cleanupDir();
  }
}

/** A server process (`iotc serve`) for cluster tests. */
export class NodeProcess {
  readonly output: string[] = [];
  private constructor(readonly child: ChildProcess, readonly port: number, readonly name: string) {}

  static async start(name: string, env: Record<string, string>): Promise<NodeProcess> {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'serve'], {
      cwd: ROOT,
      env: { ...process.env, ...SERVE_ENV, PORT: String(port), IOTC_NODE_ID: name, IOTC_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const node = new NodeProcess(child, port, name);
    child.stdout!.on('data', (d) => node.output.push(String(d)));
    child.stderr!.on('data', (d) => node.output.push(String(d)));
    try {
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`node ${name} exited with ${child.exitCode}: ${node.output.join('')}`);
        return (await fetch(`${node.url}/readyz`).catch(() => null))?.ok;
      }, 30_000, `node ${name} ready`);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    return node;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** SIGTERM (a clean, draining stop) or SIGKILL (a crash). */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    await Promise.race([exited(this.child), sleep(15_000).then(() => this.child.kill('SIGKILL'))]);
    await exited(this.child);
  }
}

/** A TCP relay to a local port whose connections can be cut and refused, to fail one client's link only. */
export class TcpProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private constructor(readonly port: number, private readonly target: number) {}

  static async start(target: number): Promise<TcpProxy> {
    const p = new TcpProxy(await freePort(), target);
    await p.resume();
    return p;
  }

  resume(): Promise<void> {
    this.server = net.createServer((inbound) => {
      const outbound = net.connect({ port: this.target, host: '127.0.0.1' });
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
    });
    return new Promise((r) => this.server!.listen(this.port, '127.0.0.1', () => r()));
  }

  /** Drops every connection through the proxy and refuses new ones until resume(). */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise((r) => server.close(r));
  }
}
