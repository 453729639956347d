import { createHistogram } from 'node:perf_hooks';
import type { RecordableHistogram } from 'node:perf_hooks';

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
 *
 * The timer is our own rather than `monitorEventLoopDelay`'s: resetting that one also forgets when it last
 * ticked, so a pause that began within one resolution of a read (10 ms while quiet) was counted in neither
 * window. Ours keeps its last tick across reads and switches, so every interval lands in exactly one window.
 */
export class LoopDelayMonitor {
  private readonly busy: RecordableHistogram = createHistogram();
  private readonly quiet: RecordableHistogram = createHistogram();
  private readonly busyResolutionMs: number;
  private readonly quietResolutionMs: number;
  private readonly checkMs: number;
  private readonly quietAfterMs: number;
  private timer: NodeJS.Timeout | undefined;
  private lastTick = performance.now();
  private lastCheck = this.lastTick;
  private lastActivity: number;
  private stillFor = 0;
  private fine = false;

  constructor(private readonly activity: () => number, opts: LoopDelayOptions = {}) {
    this.busyResolutionMs = opts.busyResolutionMs ?? 1;
    this.quietResolutionMs = opts.quietResolutionMs ?? 10;
    this.checkMs = opts.checkMs ?? 250;
    this.quietAfterMs = opts.quietAfterMs ?? 10_000;
    this.lastActivity = activity();
    this.arm();
  }

  /** Whether pauses are timed at the busy resolution now. */
  get measuringFinely(): boolean {
    return this.fine;
  }

  private arm(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), this.fine ? this.busyResolutionMs : this.quietResolutionMs);
    this.timer.unref();
  }

  /** One interval of the timer, pause included, into the window of the resolution it was timed at. */
  private tick(): void {
    const now = performance.now();
    (this.fine ? this.busy : this.quiet).record(Math.max(1, Math.round((now - this.lastTick) * 1e6)));
    this.lastTick = now;
    if (now - this.lastCheck >= this.checkMs) {
      this.check(now - this.lastCheck);
      this.lastCheck = now;
    }
  }

  /** Checked right after a tick, so switching resolution cuts no interval in two. */
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
    this.arm();
  }

  /**
   * Since the previous read: the quantiles of the busy stretch when there was one (the fine histogram's), the
   * quiet one's otherwise, and the longest pause of either. Both start afresh; the interval under way is not
   * cut, it lands in the next window.
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
    this.busy.reset();
    this.quiet.reset();
    return out;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
