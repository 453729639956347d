import type { Logger } from '../log.js';
import type { RetentionPolicy, Store } from '../store/types.js';

/** Prunes old readings in the background; the latest value of every sensor is kept by the store. */
export class RetentionJob {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly policy: RetentionPolicy,
    private readonly everyMs: number,
    /** Told after each pruning run (sensors may have been forgotten). */
    private readonly afterPrune: () => void = () => {},
  ) {}

  start(): void {
    if (this.everyMs <= 0 || (this.policy.maxAgeMs <= 0 && this.policy.maxCount <= 0)) return;
    this.timer = setInterval(() => void this.runOnce(), this.everyMs);
    this.timer.unref();
  }

  runOnce(): Promise<void> {
    this.running = this.running.then(async () => {
      try {
        const now = Date.now();
        const removed = await this.store.prune(this.policy, now);
        this.afterPrune();
        await this.store.pruneSessions(now);
        await this.store.pruneAttempts(now);
        if (removed > 0) this.log.info({ removed }, 'pruned old readings');
      } catch (err) {
        this.log.warn({ err }, 'retention pruning failed; will retry');
      }
    });
    return this.running;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
