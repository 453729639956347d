import { IotcError } from './errors.js';
import type { NewReading, Store, StoredReading } from '../store/types.js';

/**
 * Told once how a write ended: `stored` null and the error, or every item of its commit, this write's from `from`
 * on. An object with a method rather than a pair of callbacks: a door makes one per message, where a promise, its
 * resolving functions and its reactions were a tenth of the bytes a busy hub allocated per message.
 */
export interface WriteSettler<R> {
  settle(err: unknown, stored: readonly R[] | null, from: number): void;
}

/** Whose writes: an account's id, or a string where no account is at hand. */
export type Share = number | string;

interface Pending<T, R> {
  items: T[];
  weight: number;
  settler: WriteSettler<R>;
  /** Whose write it is (an account): the batcher shares the store fairly between them. */
  share: Share;
}

/** Settles a write refused before it was queued, in a later tick like a rejected promise, never inside the caller's call. */
export function refuseWrite<R>(settler: WriteSettler<R>, err: unknown): void {
  process.nextTick(() => settler.settle(err, null, 0));
}

export interface CommitBatcherOptions<T, R> {
  /** Stores the items in one transaction and returns what was stored, in the same order. */
  commit: (items: T[]) => Promise<R[]>;
  /** Told of every committed batch; runs inside the commit's callback, so it must only queue work. */
  onCommitted?: (stored: R[], written: T[]) => void;
  /** What an item costs against `maxQueued` (1 by default: a count). */
  weigh?: (item: T) => number;
  /** Most weight that may wait for the store; beyond it writes are refused (E_UNAVAILABLE) until it catches up. */
  maxQueued: number;
  /**
   * Most weight one share may have waiting; beyond it that share's writes are refused (E_RATE_LIMITED) while
   * the others' still get in. Below maxQueued, so that one share cannot fill the queue for everyone.
   */
  maxQueuedPerShare?: number;
  /**
   * Most weight of one share in one commit, unless its first write alone is heavier: the rest of that share
   * waits for the next commit, in order, while the other shares' writes behind it join this one. A share with
   * a backlog then delays the others by a commit of this size, not by its whole backlog.
   */
  maxPerCommitPerShare?: number;
  /**
   * Weight of one share waiting at which a source that asks (holdWhileBusy) stops reading that share's writes,
   * until half of it is left: a flooding account is slowed by its own sockets' flow control, where refusing
   * would first cost the hub the parsing of everything it sent.
   */
  holdShareAt?: number;
  /** The item's name in a refusal ("reading", "chunk"). */
  noun: string;
}

/** A source of writes that stops reading while its share's backlog is high (a connection). */
export interface HeldSource {
  resumeReading(): void;
}

/**
 * Gathers the writes of one event-loop turn (and those arriving while a commit runs) into one store
 * transaction, one at a time so commits keep their order. A write's promise settles only after its
 * transaction committed: doors acknowledge then.
 */
export class CommitBatcher<T, R> {
  private queue: Pending<T, R>[] = [];
  private queued = 0;
  /** Weight waiting per share (absent: none). */
  private readonly waiting = new Map<Share, number>();
  private flushing: Promise<void> | null = null;
  private scheduled = false;
  /** Sources holding until their share's backlog falls (see holdShareAt). */
  private readonly holding = new Map<Share, Set<HeldSource>>();
  /** Told about every transaction: how many items, how long it took, whether it committed (for metrics). */
  onBatch: ((size: number, seconds: number, ok: boolean) => void) | null = null;

  constructor(private readonly opts: CommitBatcherOptions<T, R>) {}

  /** The weight accepted but not yet committed: the store's backlog. */
  get pending(): number {
    return this.queued;
  }

  write(items: T[]): Promise<R[]> {
    return new Promise((resolve, reject) => {
      this.enqueue(items, { settle: (err, stored, from) => (stored === null ? reject(err) : resolve(stored.slice(from, from + items.length))) });
    });
  }

  /** write() without a promise, for the doors' per-message path; `share` says whose write it is. */
  enqueue(items: T[], settler: WriteSettler<R>, share: Share = ''): void {
    const weigh = this.opts.weigh;
    const weight = weigh ? items.reduce((sum, item) => sum + weigh(item), 0) : items.length;
    const mine = this.waiting.get(share) ?? 0;
    const perShare = this.opts.maxQueuedPerShare;
    if (perShare !== undefined && mine + weight > perShare && mine > 0) {
      const what = `${mine} ${this.opts.noun}s of this account wait for the store already, and one account may have ${perShare} waiting`;
      refuseWrite(settler, new IotcError('E_RATE_LIMITED', `${what}: try again shortly`, { retryAfterSeconds: 1 }));
      return;
    }
    if (this.queued + weight > this.opts.maxQueued) {
      refuseWrite(settler, new IotcError('E_UNAVAILABLE', 'The store is falling behind; try again shortly', { retryAfterSeconds: 1 }));
      return;
    }
    this.queue.push({ items, weight, settler, share });
    this.queued += weight;
    this.waiting.set(share, mine + weight);
    this.schedule();
  }

  /**
   * Whether `source`, writing for `share`, should stop reading now: true when the share has holdShareAt or more
   * waiting, and then `source.resumeReading()` is called once, when half of it is left (or the source is let go).
   */
  holdWhileBusy(share: Share, source: HeldSource): boolean {
    const at = this.opts.holdShareAt;
    if (at === undefined || (this.waiting.get(share) ?? 0) < at) return false;
    let sources = this.holding.get(share);
    if (sources === undefined) this.holding.set(share, (sources = new Set()));
    sources.add(source);
    return true;
  }

  /** Forgets a held source (its connection closed). */
  letGo(share: Share, source: HeldSource): void {
    const sources = this.holding.get(share);
    if (sources?.delete(source) && sources.size === 0) this.holding.delete(share);
  }

  /** Resumes the sources of every share whose backlog fell to half of holdShareAt. */
  private release(): void {
    const low = (this.opts.holdShareAt ?? 0) / 2;
    for (const [share, sources] of this.holding) {
      if ((this.waiting.get(share) ?? 0) > low) continue;
      this.holding.delete(share);
      for (const source of sources) source.resumeReading();
    }
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
    const batch = this.takeBatch();
    for (const p of batch) {
      this.queued -= p.weight;
      const left = this.waiting.get(p.share)! - p.weight;
      if (left > 0) this.waiting.set(p.share, left);
      else this.waiting.delete(p.share);
    }
    if (this.holding.size > 0) this.release();
    this.flushing = this.commit(batch).finally(() => {
      this.flushing = null;
      if (this.queue.length > 0) this.schedule();
    });
    return this.flushing;
  }

  /** What the next commit takes: everything waiting, but at most maxPerCommitPerShare of each share. */
  private takeBatch(): Pending<T, R>[] {
    const quota = this.opts.maxPerCommitPerShare;
    // Under the quota in all, no share can be over it: the common case takes the queue as it is.
    if (quota === undefined || this.queued <= quota) {
      const all = this.queue;
      this.queue = [];
      return all;
    }
    if (this.waiting.size === 1) {
      // One share only (one busy account): its first writes up to the quota, without a look at each of the rest.
      let end = 1;
      for (let t = this.queue[0].weight; end < this.queue.length && t + this.queue[end].weight <= quota; end++) t += this.queue[end].weight;
      return this.queue.splice(0, end);
    }
    const batch: Pending<T, R>[] = [];
    const rest: Pending<T, R>[] = [];
    const taken = new Map<Share, number>();
    const deferred = new Set<Share>();
    for (const p of this.queue) {
      const t = taken.get(p.share) ?? 0;
      // Once one write of a share waits, so do its later ones: a share's writes commit in their order.
      if (deferred.has(p.share) || (t > 0 && t + p.weight > quota)) {
        deferred.add(p.share);
        rest.push(p);
      } else {
        taken.set(p.share, t + p.weight);
        batch.push(p);
      }
    }
    this.queue = rest;
    return batch;
  }

  /**
   * Commits the writes in one transaction. If it fails for a reason other than the store being out of
   * reach, one write may be at fault (a value the store cannot take): the halves are tried apart, down to
   * single writes, so only the failing write is refused and its batch-mates commit, in their order.
   */
  private async commit(batch: Pending<T, R>[]): Promise<void> {
    const all = batch.length === 1 ? batch[0].items : batch.flatMap((p) => p.items);
    const started = performance.now();
    let stored: R[];
    try {
      stored = await this.opts.commit(all);
    } catch (err) {
      this.onBatch?.(all.length, (performance.now() - started) / 1000, false);
      if (batch.length > 1 && !storeUnreachable(err)) {
        const half = Math.ceil(batch.length / 2);
        try {
          await this.commit(batch.slice(0, half));
        } finally {
          // Whatever became of the first half, the second is settled too: no write is left waiting.
          await this.commit(batch.slice(half));
        }
        return;
      }
      const failure = refusal(err, this.opts.noun);
      const thrown = settleAll(batch, failure, null);
      if (thrown) throw thrown.err;
      return;
    }
    this.onBatch?.(all.length, (performance.now() - started) / 1000, true);
    const thrown = settleAll(batch, null, stored);
    this.opts.onCommitted?.(stored, all);
    if (thrown) throw thrown.err;
  }
}

/**
 * Readings: one transaction per turn, shared fairly between accounts. At most `maxQueuedReadings` wait, half of
 * them one account's; a commit takes at most 10 000 of one account's while others' wait, and an account's
 * connections stop being read while it has a commit's worth waiting.
 */
export class WriteBatcher extends CommitBatcher<NewReading, StoredReading> {
  constructor(store: Store, onCommitted: (stored: StoredReading[], written: NewReading[]) => void, maxQueuedReadings = 200_000) {
    super({
      commit: (readings) => store.appendReadings(readings), onCommitted, noun: 'reading',
      // An account is held when it has more waiting than the next commit takes of it.
      maxQueued: maxQueuedReadings, maxQueuedPerShare: maxQueuedReadings / 2, maxPerCommitPerShare: 10_000, holdShareAt: 10_000,
    });
  }
}

/**
 * Settles every write of a batch, each told where its items start. A settler that throws is a bug, but it must not
 * leave the writes after it waiting for good, nor the batch undelivered: what it threw is returned, for the caller
 * to throw once the rest is done.
 */
function settleAll<T, R>(batch: Pending<T, R>[], err: unknown, stored: readonly R[] | null): { err: unknown } | null {
  let at = 0;
  let thrown: { err: unknown } | null = null;
  for (const p of batch) {
    try {
      p.settler.settle(err, stored, at);
    } catch (e) {
      thrown ??= { err: e };
    }
    at += p.items.length;
  }
  return thrown;
}

/**
 * The store is down, busy or out of space, not the data at fault: trying the writes apart would only fail
 * each again (SQLite waits its busy timeout each time).
 */
function storeUnreachable(err: unknown): boolean {
  if (err instanceof IotcError) return err.code === 'E_UNAVAILABLE' || err.code === 'E_SHUTTING_DOWN';
  const code = String((err as { code?: unknown })?.code ?? '');
  return /^SQLITE_(BUSY|LOCKED|FULL|IOERR|READONLY|CANTOPEN|NOMEM|CORRUPT|NOTADB|PROTOCOL)/.test(code) || /database connection is not open/i.test(String((err as Error)?.message));
}

/** A refusal the client can act on keeps its code (E_VALIDATION); anything else means "not kept, try again". */
function refusal(err: unknown, noun: string): IotcError {
  if (err instanceof IotcError && err.status < 500) return err;
  return new IotcError('E_UNAVAILABLE', `The store could not save the ${noun}; it was not kept`, { cause: err, retryAfterSeconds: 1 });
}
