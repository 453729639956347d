/** The bench's side of the load-generator workers: spawn them once, hand out jobs, gather their counters. */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { Histogram } from './histogram.js';
import type { Counters, FromWorker, Job, ToWorker } from './jobs.js';
import { ROOT } from './targets.js';

export interface Snapshot {
  at: number;
  sent: number;
  delivered: number;
  acked: number;
  failed: number;
  opened: number;
  lagging: number;
  errors: Record<string, number>;
  firstConnectAt: number;
  lastOpenAt: number;
  latency: Histogram;
  ackLatency: Histogram;
  connectLatency: Histogram;
}

function merge(all: Counters[]): Snapshot {
  const s: Snapshot = {
    at: performance.now(), sent: 0, delivered: 0, acked: 0, failed: 0, opened: 0, lagging: 0, errors: {},
    firstConnectAt: Infinity, lastOpenAt: 0, latency: new Histogram(), ackLatency: new Histogram(), connectLatency: new Histogram(),
  };
  for (const c of all) {
    s.sent += c.sent;
    s.delivered += c.delivered;
    s.acked += c.acked;
    s.failed += c.failed;
    s.opened += c.opened;
    s.lagging += c.lagging;
    for (const [k, v] of Object.entries(c.errors)) s.errors[k] = (s.errors[k] ?? 0) + v;
    if (c.firstConnectAt) s.firstConnectAt = Math.min(s.firstConnectAt, c.firstConnectAt);
    s.lastOpenAt = Math.max(s.lastOpenAt, c.lastOpenAt);
    s.latency.add(c.latency);
    s.ackLatency.add(c.ackLatency);
    s.connectLatency.add(c.connectLatency);
  }
  return s;
}

class Worker {
  private waiters: { pred: (m: FromWorker) => boolean; resolve: (m: FromWorker) => void }[] = [];
  constructor(readonly child: ChildProcess) {
    child.on('message', (m: FromWorker) => {
      const i = this.waiters.findIndex((w) => w.pred(m));
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
    });
  }

  send(m: ToWorker): void {
    this.child.send(m);
  }

  next<T extends FromWorker>(pred: (m: FromWorker) => boolean, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        this.child.off('exit', onExit);
        reject(new Error(`load generator ${this.child.pid}: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const onExit = () => reject(new Error(`load generator ${this.child.pid} exited while waiting for ${what}`));
      this.child.once('exit', onExit);
      const waiter = {
        pred,
        resolve: (m: FromWorker) => {
          clearTimeout(timer);
          this.child.off('exit', onExit);
          resolve(m as T);
        },
      };
      this.waiters.push(waiter);
    });
  }
}

export class Generator {
  private marks = 0;
  private active: Worker[] = [];

  private constructor(private readonly workers: Worker[]) {}

  /** Starts `count` worker processes (each a separate Node process, so their CPU is theirs). */
  static async spawn(count: number): Promise<Generator> {
    const workers: Worker[] = [];
    for (let i = 0; i < count; i++) {
      const child = fork(path.join(ROOT, 'bench/loadgen-worker.ts'), [], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        cwd: ROOT,
      });
      workers.push(new Worker(child));
    }
    await Promise.all(workers.map((w) => new Promise<void>((resolve, reject) => {
      w.child.once('spawn', () => resolve());
      w.child.once('error', reject);
    })));
    return new Generator(workers);
  }

  get size(): number {
    return this.workers.length;
  }

  /** Pids of the workers in use by the current job. */
  get pids(): number[] {
    return this.active.map((w) => w.child.pid!);
  }

  /** Gives job i to worker i and resolves once every connection is open. */
  async setup(jobs: Job[], timeoutMs = 120_000): Promise<number> {
    if (jobs.length > this.workers.length) throw new Error(`${jobs.length} jobs for ${this.workers.length} load generators`);
    this.active = this.workers.slice(0, jobs.length);
    const replies = await Promise.all(
      this.active.map((w, i) => {
        const reply = w.next<FromWorker>((m) => m.type === 'ready' || m.type === 'error', timeoutMs, 'setup');
        w.send({ type: 'setup', job: jobs[i] });
        return reply;
      }),
    );
    const failed = replies.find((r) => r.type === 'error');
    if (failed && failed.type === 'error') throw new Error(`load generator could not connect: ${failed.message}`);
    return replies.reduce((n, r) => n + (r.type === 'ready' ? r.connections : 0), 0);
  }

  start(): void {
    for (const w of this.active) w.send({ type: 'start' });
  }

  /** Counters of every active worker, added up. `reset` starts the latency histograms afresh. */
  async mark(reset = false): Promise<Snapshot> {
    const id = ++this.marks;
    const replies = await Promise.all(
      this.active.map((w) => {
        const reply = w.next<Extract<FromWorker, { type: 'mark' }>>((m) => m.type === 'mark' && m.id === id, 30_000, 'mark');
        w.send({ type: 'mark', id, reset });
        return reply;
      }),
    );
    return merge(replies.map((r) => r.counters));
  }

  /** Stops sending and waits (up to drainMs) for what is in flight; returns final counters and acked sequence numbers. */
  async stop(drainMs = 3000): Promise<{ snapshot: Snapshot; acked: Map<string, number[]> }> {
    const replies = await Promise.all(
      this.active.map((w) => {
        const reply = w.next<Extract<FromWorker, { type: 'stopped' }>>((m) => m.type === 'stopped', drainMs + 30_000, 'stop');
        w.send({ type: 'stop', drainMs });
        return reply;
      }),
    );
    const acked = new Map<string, number[]>();
    for (const r of replies) for (const [k, v] of Object.entries(r.acked ?? {})) acked.set(k, (acked.get(k) ?? []).concat(v));
    return { snapshot: merge(replies.map((r) => r.counters)), acked };
  }

  /** Closes every connection of the current job. */
  async teardown(): Promise<void> {
    await Promise.all(
      this.active.map((w) => {
        const reply = w.next((m) => m.type === 'torndown', 60_000, 'teardown');
        w.send({ type: 'teardown' });
        return reply;
      }),
    );
    this.active = [];
  }

  async exit(): Promise<void> {
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.child.exitCode !== null || w.child.signalCode !== null) return resolve();
            w.child.once('exit', () => resolve());
            w.send({ type: 'exit' });
            setTimeout(() => w.child.kill('SIGKILL'), 5000).unref();
          }),
      ),
    );
  }
}
