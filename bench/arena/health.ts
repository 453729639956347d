/**
 * Watches /healthz from the outside, each probe on a fresh connection (a hub that cannot accept any more
 * connections, or whose event loop is stuck, shows here), and /metrics for the server's own event-loop delay.
 */
import { request } from './http.js';

export interface HealthStats {
  probes: number;
  /** Probes that got no 200 within the timeout (refused, reset, timed out or another status). */
  failed: number;
  /** Probes slower than `slowMs` (failed ones included). */
  slow: number;
  /** The slowest probe in ms (a failed probe counts as the time it took to fail). */
  maxMs: number;
  /** What went wrong, first few. */
  errors: string[];
}

const empty = (): HealthStats => ({ probes: 0, failed: 0, slow: 0, maxMs: 0, errors: [] });

export class HealthPoller {
  private total = empty();
  private window = empty();
  private running = false;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly baseUrl: string,
    private readonly opts: { intervalMs?: number; timeoutMs?: number; slowMs?: number; localAddress?: string } = {},
  ) {}

  start(): this {
    this.running = true;
    this.loop = this.run();
    return this;
  }

  private async run(): Promise<void> {
    const interval = this.opts.intervalMs ?? 250;
    while (this.running) {
      const started = performance.now();
      let error: string | null = null;
      try {
        const res = await request(`${this.baseUrl}/healthz`, { timeoutMs: this.opts.timeoutMs ?? 1000, localAddress: this.opts.localAddress ?? '127.0.0.1' });
        if (res.status !== 200) error = `status ${res.status}`;
      } catch (err) {
        error = (err as Error).message;
      }
      const ms = performance.now() - started;
      for (const s of [this.total, this.window]) {
        s.probes++;
        s.maxMs = Math.max(s.maxMs, ms);
        if (ms > (this.opts.slowMs ?? 1000) || error) s.slow++;
        if (error) {
          s.failed++;
          if (s.errors.length < 5) s.errors.push(`${new Date().toISOString()}: ${error}`);
        }
      }
      await new Promise((r) => setTimeout(r, Math.max(0, interval - ms)));
    }
  }

  get stats(): HealthStats {
    return { ...this.total, errors: [...this.total.errors] };
  }

  /** What happened since the last call (for a time series). */
  takeWindow(): HealthStats {
    const w = this.window;
    this.window = empty();
    return w;
  }

  async stop(): Promise<HealthStats> {
    this.running = false;
    await this.loop;
    return this.stats;
  }
}

/** One sample from a Prometheus text exposition, e.g. `nodejs_eventloop_lag_p99_seconds`; undefined when absent. */
export function promSample(text: string, name: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    if (line.slice(0, at) === name) return Number(line.slice(at + 1));
  }
  return undefined;
}

export interface LoopDelay {
  /** prom-client's default metrics (perf_hooks monitorEventLoopDelay inside the server), in ms. */
  p99Ms: number;
  maxMs: number;
  /** How long /metrics itself took to answer, in ms: a second, outside view of a busy loop. */
  scrapeMs: number;
}

/** The server's own event-loop delay from /metrics; null when it did not answer within the timeout. */
export async function loopDelay(baseUrl: string, timeoutMs = 5000): Promise<LoopDelay | null> {
  try {
    const res = await request(`${baseUrl}/metrics`, { timeoutMs, localAddress: '127.0.0.1' });
    const text = res.text();
    const p99 = promSample(text, 'nodejs_eventloop_lag_p99_seconds');
    const max = promSample(text, 'nodejs_eventloop_lag_max_seconds');
    return { p99Ms: (p99 ?? NaN) * 1000, maxMs: (max ?? NaN) * 1000, scrapeMs: res.ms };
  } catch {
    return null;
  }
}
