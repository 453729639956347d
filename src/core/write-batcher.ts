import { IotcError } from './errors.js';
import type { NewReading, Store, StoredReading } from '../store/types.js';

interface Pending {
  readings: NewReading[];
  resolve: (stored: StoredReading[]) => void;
  reject: (err: unknown) => void;
}

/**
 * Gathers the writes of one event-loop turn into one store transaction, one at a time so commits keep
 * their order. A write's promise settles only after its transaction committed: doors acknowledge then.
 */
export class WriteBatcher {
  private queue: Pending[] = [];
  private queuedReadings = 0;
  private flushing: Promise<void> | null = null;
  private scheduled = false;
  /** Told about every transaction: how many readings, how long it took, whether it committed (for metrics). */
  onBatch: ((size: number, seconds: number, ok: boolean) => void) | null = null;

  constructor(
    private readonly store: Store,
    private readonly onCommitted: (stored: StoredReading[], written: NewReading[]) => void,
    private readonly maxQueuedReadings = 100_000,
  ) {}

  get pending(): number {
    return this.queuedReadings;
  }

  write(readings: NewReading[]): Promise<StoredReading[]> {
    if (this.queuedReadings + readings.length > this.maxQueuedReadings) {
      return Promise.reject(new IotcError('E_UNAVAILABLE', 'The store is falling behind; try again shortly', { retryAfterSeconds: 1 }));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ readings, resolve, reject });
      this.queuedReadings += readings.length;
      this.schedule();
    });
  }

  /** Resolves once everything queued so far is committed (or failed). */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.flushing) {
      if (this.flushing) await this.flushing;
      else await this.flush();
    }
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private flush(): Promise<void> {
    if (this.flushing || this.queue.length === 0) return this.flushing ?? Promise.resolve();
    const batch = this.queue;
    this.queue = [];
    this.queuedReadings = 0;
    const all = batch.length === 1 ? batch[0].readings : batch.flatMap((p) => p.readings);
    const started = performance.now();
    this.flushing = this.store.appendReadings(all).then(
      (stored) => {
        this.onBatch?.(all.length, (performance.now() - started) / 1000, true);
        let at = 0;
        for (const p of batch) {
          p.resolve(stored.slice(at, at + p.readings.length));
          at += p.readings.length;
        }
        this.onCommitted(stored, all);
      },
      (err) => {
        this.onBatch?.(all.length, (performance.now() - started) / 1000, false);
        const failure = new IotcError('E_UNAVAILABLE', 'The store could not save the reading; it was not kept', { cause: err, retryAfterSeconds: 1 });
        for (const p of batch) p.reject(failure);
      },
    ).finally(() => {
      this.flushing = null;
      if (this.queue.length > 0) this.schedule();
    });
    return this.flushing;
  }
}
