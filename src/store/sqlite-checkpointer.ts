import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** The checkpoint loop, run as an eval'd worker so the built server and tests under tsx load it alike. */
const LOOP = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 1000');
const checkpoint = (asked) => {
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ log: r.log, checkpointed: r.checkpointed, asked });
  } catch (err) {
    parentPort.postMessage({ error: String((err && err.message) || err), asked });
  }
};
const timer = setInterval(() => checkpoint(false), workerData.everyMs);
parentPort.on('message', (m) => {
  if (m === 'now') return checkpoint(true);
  if (m !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

/**
 * Copies the WAL back into the database file from a worker thread with its own connection. A checkpoint
 * fsyncs the WAL and the database (synchronous=NORMAL); done in the committing thread, as SQLite's
 * automatic checkpoint does, each one stalled the event loop for milliseconds — every few hundred
 * readings under load. A passive checkpoint never blocks the writer, and commits never wait for it.
 */
export class Checkpointer {
  /** WAL frames, and how many of them are copied into the database, at the last checkpoint. */
  walFrames = 0;
  copiedFrames = 0;
  failure: string | null = null;
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private asked: (() => void) | null = null;

  constructor(file: string, everyMs: number) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(LOOP, { eval: true, workerData: { file, driver, everyMs } });
    this.worker.unref();
    this.worker.on('message', (m: { log?: number; checkpointed?: number; error?: string; asked?: boolean }) => {
      if (m.error) this.failure = m.error;
      else {
        this.walFrames = m.log ?? 0;
        this.copiedFrames = m.checkpointed ?? 0;
      }
      if (m.asked) this.answered();
    });
    this.worker.on('error', (err) => (this.failure = err.message));
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }

  /**
   * One checkpoint now, resolved when it is done (or after `timeoutMs`, or at once if the worker is gone): while
   * the writer holds its commits back, it copies every frame, so the next commit starts the WAL over.
   */
  checkpointNow(timeoutMs: number): Promise<void> {
    if (this.failure) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.answered(), timeoutMs);
      this.asked = () => {
        clearTimeout(timer);
        this.asked = null;
        resolve();
      };
      this.worker.postMessage('now');
    });
  }

  private answered(): void {
    this.asked?.();
  }

  async stop(): Promise<void> {
    this.answered();
    this.worker.postMessage('stop');
    const timer = setTimeout(() => void this.worker.terminate(), 2000);
    await this.exited;
    clearTimeout(timer);
  }
}
