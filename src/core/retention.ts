import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from '../log.js';
import { READING_OVERHEAD_BYTES } from '../store/types.js';
import type { NewReading, RetentionPolicy, Store } from '../store/types.js';

export interface RetentionSettings extends RetentionPolicy {
  /** Bytes of readings kept per device (Store.pruneDeviceBytes); 0 = no limit. */
  maxBytesPerDevice: number;
}

/** Devices weighed by one periodic run, of those written since start and not weighed yet (a restart's backlog). */
const FIRST_WEIGHINGS_PER_RUN = 500;
/**
 * A device is weighed once this share of its budget was written to it since (an eighth): how far over its budget
 * it may get on one node, and how much one weighing deletes (its time on the event loop grows with that).
 */
const WEIGH_EVERY_SHARE = 8;
/** Devices whose writes are tracked at once; past it the tracking starts over (each is weighed again). */
const MAX_TRACKED_DEVICES = 100_000;

/**
 * Prunes readings by age and count in the background (the latest value of every sensor is kept by the store),
 * and keeps each device within its byte budget. Weighing a device reads its store, so it is done when the
 * device was written an eighth of its budget on this node since it was last weighed: at most an eighth over
 * on each node, however fast it is written. A device is weighed once after start too, for what it held before.
 */
export class RetentionJob {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Bytes written to each device on this node since it was last weighed; absent: not weighed since start. */
  private readonly sinceWeighed = new Map<string, number>();
  /** Written since start, not weighed yet. */
  private readonly unweighed = new Set<string>();
  /** Written an eighth of the budget since last weighed: weighed as soon as the job is free. */
  private readonly heavy = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly policy: RetentionSettings,
    private readonly everyMs: number,
    /** Told after each pruning run (sensors may have been forgotten). */
    private readonly afterPrune: () => void = () => {},
  ) {}

  start(): void {
    if (this.everyMs <= 0 || (this.policy.maxAgeMs <= 0 && this.policy.maxCount <= 0 && this.policy.maxBytesPerDevice <= 0)) return;
    this.timer = setInterval(() => void this.runOnce(), this.everyMs);
    this.timer.unref();
  }

  /** Told of a device's readings committed on this node: `written[from..to)`, with their JSON text. */
  noteStored(deviceId: string, written: readonly NewReading[], from: number, to: number): void {
    const budget = this.policy.maxBytesPerDevice;
    if (budget <= 0 || this.stopped) return;
    let bytes = 0;
    for (let i = from; i < to; i++) bytes += (written[i].json?.length ?? 0) + READING_OVERHEAD_BYTES;
    const before = this.sinceWeighed.get(deviceId);
    if (before === undefined) {
      if (this.sinceWeighed.size >= MAX_TRACKED_DEVICES) this.sinceWeighed.clear();
      if (this.unweighed.size < MAX_TRACKED_DEVICES) this.unweighed.add(deviceId);
    }
    const total = (before ?? 0) + bytes;
    this.sinceWeighed.set(deviceId, total);
    if (total >= budget / WEIGH_EVERY_SHARE && !this.heavy.has(deviceId)) {
      this.heavy.add(deviceId);
      if (this.heavy.size === 1) this.queue(() => this.weigh(this.takeAll(this.heavy)));
    }
  }

  runOnce(): Promise<void> {
    return this.queue(async () => {
      const now = Date.now();
      const removed = await this.store.prune(this.policy, now);
      this.afterPrune();
      await this.store.pruneSessions(now);
      await this.store.pruneAttempts(now);
      if (removed > 0) this.log.info({ removed }, 'pruned old readings');
      await this.weigh(this.takeAll(this.unweighed, FIRST_WEIGHINGS_PER_RUN));
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** Runs after what is queued; a failure is logged and the next run tries again. */
  private queue(work: () => Promise<void>): Promise<void> {
    this.running = this.running.then(async () => {
      try {
        await work();
      } catch (err) {
        this.log.warn({ err }, 'retention pruning failed; will retry');
      }
    });
    return this.running;
  }

  private takeAll(set: Set<string>, max = Infinity): string[] {
    const out: string[] = [];
    for (const id of set) {
      if (out.length >= max) break;
      out.push(id);
    }
    for (const id of out) set.delete(id);
    return out;
  }

  /** Prunes each device to its byte budget. */
  private async weigh(deviceIds: string[]): Promise<void> {
    const budget = this.policy.maxBytesPerDevice;
    if (budget <= 0) return;
    let removed = 0;
    for (const id of deviceIds) {
      // What is written from now on counts towards the next weighing.
      this.sinceWeighed.set(id, 0);
      this.unweighed.delete(id);
      try {
        removed += await this.store.pruneDeviceBytes(id, budget);
        // One device at a time: several weighed back to back held the event loop for all of them.
        await yieldToLoop();
      } catch (err) {
        // Weighed again once an eighth more is written to it.
        this.log.warn({ err, deviceId: id }, 'could not prune a device to its byte budget; will retry');
      }
    }
    if (removed > 0) this.log.info({ removed, devices: deviceIds.length }, 'pruned readings past their device’s byte budget');
  }
}
