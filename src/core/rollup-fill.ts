import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from '../log.js';
import { HOUR_MS, SETTLED_MS, settledHours } from '../store/rollup.js';
import type { SensorKey } from '../store/rollup.js';
import type { Store } from '../store/types.js';

export interface RollupFillOptions {
  /** Time between ticks. */
  everyMs: number;
  /** Wall time a tick may go on starting slices (it starts one at least); it yields to the event loop between each. */
  budgetMs: number;
  /** Hours of one sensor filled at most per slice: in SQLite a slice holds the event loop for its length. */
  sliceHours: number;
  /** A slice that took longer halves the next (down to an hour); one under half of it doubles it (up to sliceHours). */
  sliceMs: number;
}

/**
 * At 3 µs a reading, 12 hours of one-a-minute readings hold SQLite's (synchronous) event loop about 2 ms; a
 * tick of 20 ms a second catches up a year of one sensor in a few minutes and then keeps up with each new hour.
 */
export const ROLLUP_FILL_DEFAULTS: RollupFillOptions = { everyMs: 1000, budgetMs: 20, sliceHours: 12, sliceMs: 5 };

const PAGE = 100;

/**
 * Fills the hourly rollup in the background so that the first chart of a long range reads cached hours instead
 * of every reading (docs/performance.md, "Aggregated history"). It walks the sensors round after round and fills
 * each one's lacking hours newest first, a slice at a time, through the store's own fill (the one charts use),
 * so it honours the same spans, locks and forgetting. It never runs on the write path: puts wait for nothing.
 */
export class RollupFillJob {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> = Promise.resolve(0);
  private stopped = false;
  /** The sensors of the current page still to visit, and the last one visited (null: from the start). */
  private queue: SensorKey[] = [];
  private after: SensorKey | null = null;
  /** Whether the current round filled anything: a round that did not ends the tick (all caught up). */
  private roundFilled = false;
  /** Hours of the next slice: fewer for sensors written often, so a slice keeps to about sliceMs. */
  private hours: number;
  /**
   * After a round found every sensor caught up, nothing new can be filled before the next hour settles: ticks
   * until then do nothing, so an idle hub stays idle. (A chart still fills what it lacks itself meanwhile.)
   */
  private idleUntil = 0;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly opts: RollupFillOptions = ROLLUP_FILL_DEFAULTS,
    private readonly clock: () => number = Date.now,
  ) {
    this.hours = opts.sliceHours;
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.opts.everyMs);
    this.timer.unref();
  }

  /** One tick (after the one running, if any): the hours it filled. */
  tick(): Promise<number> {
    this.running = this.running.then(() =>
      this.fillFor(this.opts.budgetMs).catch((err) => {
        this.log.warn({ err }, 'background fill of the hourly rollup failed; will retry');
        return 0;
      }),
    );
    return this.running;
  }

  private async fillFor(budgetMs: number): Promise<number> {
    if (this.clock() < this.idleUntil) return 0;
    const until = performance.now() + budgetMs;
    let hours = 0;
    // At least one slice a tick, however small the budget.
    do {
      const sensor = await this.current();
      if (!sensor) {
        this.idleUntil = settledHours(this.clock()) + HOUR_MS + SETTLED_MS;
        break;
      }
      const started = performance.now();
      const filled = await this.store.fillRollup(sensor.deviceId, sensor.sensor, this.clock(), this.hours);
      this.adapt(performance.now() - started);
      if (filled > 0) this.roundFilled = true;
      else this.after = this.queue.shift()!;
      hours += filled;
      await yieldToLoop();
    } while (!this.stopped && performance.now() < until);
    return hours;
  }

  private adapt(tookMs: number): void {
    if (tookMs > this.opts.sliceMs) this.hours = Math.max(1, Math.floor(this.hours / 2));
    else if (tookMs < this.opts.sliceMs / 2) this.hours = Math.min(this.opts.sliceHours, this.hours * 2);
  }

  /** The sensor to fill next, or null when a whole round found nothing lacking (or there are no sensors). */
  private async current(): Promise<SensorKey | null> {
    if (this.queue.length > 0) return this.queue[0];
    this.queue = await this.store.rollupSensors(this.after, PAGE);
    if (this.queue.length > 0) return this.queue[0];
    // End of a round: start another only if this one had work, else wait for the next tick.
    const more = this.roundFilled;
    this.after = null;
    this.roundFilled = false;
    if (!more) return null;
    this.queue = await this.store.rollupSensors(null, PAGE);
    return this.queue[0] ?? null;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
