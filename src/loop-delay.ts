import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { IntervalHistogram } from 'node:perf_hooks';

/** The event loop's delay since the previous read, in seconds. */
export interface LoopDelay {
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export interface LoopDelayOptions {
  /** Resolution while the hub carries traffic (ms): fine enough to see pauses of a few milliseconds. */
  busyResolutionMs?: number;
  /** Resolution while it is quiet (ms), as prom-client's own `nodejs_eventloop_lag_*`. */
  quietResolutionMs?: number;
  /** How often `activity` is looked at (ms). */
  checkMs?: number;
  /** How long `activity` stays still before the hub counts as quiet (ms). */
  quietAfterMs?: number;
}

/**
 * The event loop's pauses, measured at 1 ms while the hub carries traffic and at 10 ms while it is quiet. A
 * 1 ms timer wakes an otherwise idle process a thousand times a second, about 2 % of a core on the
 * development machine, to time pauses nobody is waiting on. `activity` is any count that moves with traffic
 * (readings and chunks in and out); the fine timer starts within `checkMs` of it moving.
 */
export class LoopDelayMonitor {
  private readonly busy: IntervalHistogram;
  private readonly quiet: IntervalHistogram;
  private readonly timer: NodeJS.Timeout;
  private readonly quietAfterMs: number;
  private lastActivity: number;
  private stillFor = 0;
  private fine = false;

  constructor(private readonly activity: () => number, opts: LoopDelayOptions = {}) {
    this.busy = monitorEventLoopDelay({ resolution: opts.busyResolutionMs ?? 1 });
    this.quiet = monitorEventLoopDelay({ resolution: opts.quietResolutionMs ?? 10 });
    this.quiet.enable();
    this.quietAfterMs = opts.quietAfterMs ?? 10_000;
    this.lastActivity = activity();
    const checkMs = opts.checkMs ?? 250;
    this.timer = setInterval(() => this.check(checkMs), checkMs);
    this.timer.unref();
  }

  /** Whether pauses are timed at the busy resolution now. */
  get measuringFinely(): boolean {
    return this.fine;
  }

  private check(elapsedMs: number): void {
    const now = this.activity();
    if (now !== this.lastActivity) {
      this.lastActivity = now;
      this.stillFor = 0;
      if (!this.fine) this.switchTo(true);
      return;
    }
    this.stillFor += elapsedMs;
    if (this.fine && this.stillFor >= this.quietAfterMs) this.switchTo(false);
  }

  private switchTo(fine: boolean): void {
    this.fine = fine;
    // Each histogram keeps what it measured until the next read: a switch loses nothing.
    (fine ? this.busy : this.quiet).enable();
    (fine ? this.quiet : this.busy).disable();
  }

  /**
   * Since the previous read: the quantiles of the busy stretch when there was one (the fine histogram's), the
   * quiet one's otherwise, and the longest pause of either. Both start afresh.
   */
  read(): LoopDelay {
    const from = this.busy.count > 0 ? this.busy : this.quiet;
    const s = (ns: number) => (Number.isFinite(ns) ? ns / 1e9 : 0);
    const out = {
      p50: s(from.percentile(50)),
      p99: s(from.percentile(99)),
      p999: s(from.percentile(99.9)),
      max: Math.max(s(this.busy.max), s(this.quiet.max)),
    };
    // Node's reset also forgets when the monitor last ticked: the interval under way is not recorded, so a pause
    // that begins within one resolution of a read (10 ms while quiet) is counted in neither window.
    this.busy.reset();
    this.quiet.reset();
    return out;
  }

  stop(): void {
    clearInterval(this.timer);
    this.busy.disable();
    this.quiet.disable();
  }
}
