import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** The reader's loop, run as an eval'd worker so the built server and tests under tsx load it alike. */
const LOOP = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { readonly: true });
db.pragma('busy_timeout = 5000');
const statements = new Map();
parentPort.on('message', (m) => {
  if (m === 'stop') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    let s = statements.get(m.sql);
    if (!s) statements.set(m.sql, (s = db.prepare(m.sql)));
    parentPort.postMessage({ id: m.id, rows: s.all(...m.params) });
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String((err && err.message) || err), code: err && err.code });
  }
});
`;

/**
 * Read-only queries run in a worker thread with a connection of its own, for the reads whose cost grows with
 * what one account wrote (aggregating a million readings of one sensor took 2.6–3.8 s of the event loop). In WAL
 * mode a reader sees every committed write and never blocks the writer. Started at the first such query; queries
 * run one at a time, in order.
 */
export class SqliteReader {
  private worker: Worker | null = null;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (rows: unknown[]) => void; reject: (err: Error) => void }>();

  constructor(private readonly file: string) {}

  all(sql: string, params: readonly unknown[]): Promise<unknown[]> {
    const worker = this.worker ?? this.start();
    const id = ++this.nextId;
    // Held while a query waits (a process with nothing else to do waits for its answer), let go when idle.
    if (this.waiting.size === 0) worker.ref();
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ id, sql, params });
    });
  }

  private start(): Worker {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(LOOP, { eval: true, workerData: { file: this.file, driver } });
    worker.on('message', (m: { id: number; rows?: unknown[]; error?: string; code?: string }) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (this.waiting.size === 0) worker.unref();
      if (m.error === undefined) w.resolve(m.rows ?? []);
      else w.reject(Object.assign(new Error(m.error), { code: m.code }));
    });
    // A worker that dies fails what waited on it; the next query starts another.
    const gone = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = null;
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    };
    worker.on('error', gone);
    worker.on('exit', () => gone(new Error('the store\'s reader stopped')));
    this.worker = worker;
    return worker;
  }

  async stop(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    // Held until it has exited: an idle reader is let go, and the process would not wait for it.
    worker.ref();
    worker.postMessage('stop');
    await exited;
  }
}
