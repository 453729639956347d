/**
 * The victim: another account's device that keeps writing puts with ids over the WebSocket door at a steady
 * rate, times each acknowledgement, and can read everything acknowledged back through the HTTP history API.
 * Every put either is acknowledged, gets an error, times out, or could not even be sent (no connection):
 * all but the first count as failed.
 */
import { WebSocket } from 'ws';
import { request } from './http.js';

export interface VictimOptions {
  wsUrl: string;
  httpUrl: string;
  device: { id: string; key: string };
  /** Puts per second (default 20). */
  rate?: number;
  sensor?: string;
  /** A put with no answer after this long counts as failed (default 5 s). */
  timeoutMs?: number;
  /** Reopen the connection this often (ms; 0 = keep one): a victim that also needs fresh connections. */
  reconnectEveryMs?: number;
  localAddress?: string;
}

export interface VictimStats {
  sent: number;
  acked: number;
  failed: number;
  /** Failures by reason: an error code, 'timeout', 'closed' (connection lost before the answer) or 'no connection'. */
  reasons: Record<string, number>;
  /** Acknowledgement latencies (ms) in this period. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  ackedPct: number;
}

interface InFlight {
  n: number;
  at: number;
  timer: NodeJS.Timeout;
  ws: WebSocket;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

class Tally {
  sent = 0;
  acked = 0;
  reasons: Record<string, number> = {};
  latencies: number[] = [];

  fail(reason: string): void {
    this.reasons[reason] = (this.reasons[reason] ?? 0) + 1;
  }

  stats(): VictimStats {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const failed = Object.values(this.reasons).reduce((a, b) => a + b, 0);
    return {
      sent: this.sent,
      acked: this.acked,
      failed,
      reasons: { ...this.reasons },
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted.length ? sorted[sorted.length - 1] : NaN,
      ackedPct: this.sent ? (100 * this.acked) / this.sent : 100,
    };
  }
}

export class Victim {
  private ws: WebSocket | null = null;
  private open = false;
  private seq = 0;
  private readonly inFlight = new Map<number, InFlight>();
  /** Every acknowledged sequence number and the time the hub stamped on it. */
  readonly acked = new Map<number, number>();
  private readonly verified = new Set<number>();
  private total = new Tally();
  private window = new Tally();
  private ticker: NodeJS.Timeout | null = null;
  private recycler: NodeJS.Timeout | null = null;
  private stopping = false;
  readonly sensor: string;

  constructor(private readonly opts: VictimOptions) {
    this.sensor = opts.sensor ?? 'v';
  }

  async start(): Promise<this> {
    await this.connect();
    this.ticker = setInterval(() => this.putOne(), 1000 / (this.opts.rate ?? 20));
    if (this.opts.reconnectEveryMs) this.recycler = setInterval(() => void this.recycle(), this.opts.reconnectEveryMs);
    return this;
  }

  /** Make before break: a new connection takes the puts once open; the old one closes when its answers are in. */
  private async recycle(): Promise<void> {
    const old = this.ws;
    if (!old || !this.open) return;
    this.replacing = true;
    await this.connect();
    this.replacing = false;
    const until = Date.now() + 2000;
    while ([...this.inFlight.values()].some((f) => f.ws === old) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    old.close(1000);
  }

  private replacing = false;

  private connect(): Promise<void> {
    const q = new URLSearchParams({ device: this.opts.device.id, key: this.opts.device.key, side: 'device' });
    const ws = new WebSocket(`${this.opts.wsUrl}/ws?${q}`, { localAddress: this.opts.localAddress ?? '127.0.0.1', handshakeTimeout: 5000 });
    return new Promise((resolve) => {
      ws.on('open', () => {
        this.ws = ws;
        this.open = true;
        resolve();
      });
      ws.on('message', (data) => this.onMessage(data.toString()));
      ws.on('error', () => {});
      ws.on('close', () => {
        resolve();
        for (const f of [...this.inFlight.values()]) {
          if (f.ws !== ws) continue;
          clearTimeout(f.timer);
          this.failed(f.n, 'closed');
        }
        const current = this.ws === ws;
        if (current) this.open = false;
        // Retry when the serving connection is lost, or a reconnect attempt failed; a recycle that failed keeps the old one.
        const retry = current || (!this.open && !this.replacing);
        if (retry && !this.stopping) setTimeout(() => void this.connect(), 100);
      });
    });
  }

  private onMessage(text: string): void {
    let m: { ok?: boolean; id?: unknown; time?: number; code?: string };
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof m.id !== 'number' || !('ok' in m)) return;
    const f = this.inFlight.get(m.id);
    if (!f) {
      // An answer after the timeout: the put failed as far as the writer knew, but it was stored.
      if (m.ok && typeof m.time === 'number') this.acked.set(m.id, m.time);
      return;
    }
    this.inFlight.delete(m.id);
    clearTimeout(f.timer);
    if (m.ok && typeof m.time === 'number') {
      const ms = performance.now() - f.at;
      this.acked.set(m.id, m.time);
      for (const t of [this.total, this.window]) {
        t.acked++;
        t.latencies.push(ms);
      }
    } else {
      this.failed(m.id, m.code ?? 'error');
    }
  }

  private failed(n: number, reason: string): void {
    this.inFlight.delete(n);
    this.total.fail(reason);
    this.window.fail(reason);
  }

  private putOne(): void {
    const n = ++this.seq;
    this.total.sent++;
    this.window.sent++;
    if (!this.open || !this.ws) {
      this.failed(n, 'no connection');
      return;
    }
    const timer = setTimeout(() => this.failed(n, 'timeout'), this.opts.timeoutMs ?? 5000);
    this.inFlight.set(n, { n, at: performance.now(), timer, ws: this.ws });
    this.ws.send(JSON.stringify({ method: 'put', id: n, status: { sensor: this.sensor, value: { n } } }));
  }

  get stats(): VictimStats {
    return this.total.stats();
  }

  /** What happened since the last call (for a time series). */
  takeWindow(): VictimStats {
    const w = this.window;
    this.window = new Tally();
    return w.stats();
  }

  /** Stops writing, waits for the answers still due, and closes. */
  async stop(): Promise<VictimStats> {
    this.stopping = true;
    if (this.ticker) clearInterval(this.ticker);
    if (this.recycler) clearInterval(this.recycler);
    const until = Date.now() + (this.opts.timeoutMs ?? 5000) + 500;
    while (this.inFlight.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    this.ws?.close();
    return this.stats;
  }

  /**
   * Reads back, through the HTTP history API, every acknowledged reading not yet seen there, and returns the
   * sequence numbers that are missing (acknowledged but lost). Pages by time, 1 000 readings at a time.
   */
  async verify(): Promise<{ checked: number; lost: number[] }> {
    const due = [...this.acked.entries()].filter(([n]) => !this.verified.has(n));
    if (due.length === 0) return { checked: 0, lost: [] };
    const to = Math.max(...due.map(([, t]) => t));
    let from = Math.min(...due.map(([, t]) => t));
    const seen = new Set<number>();
    const base = `${this.opts.httpUrl}/api/v1/devices/${this.opts.device.id}/sensors/${encodeURIComponent(this.sensor)}/history`;
    for (let page = 0; page < 10_000; page++) {
      const q = new URLSearchParams({ from: String(from), to: String(to), limit: '1000' });
      const res = await request(`${base}?${q}`, { headers: { 'x-device-key': this.opts.device.key }, localAddress: this.opts.localAddress ?? '127.0.0.1', timeoutMs: 30_000 });
      if (res.status === 429) {
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      if (res.status !== 200) throw new Error(`reading the victim's history back failed: ${res.status} ${res.text().slice(0, 300)}`);
      const rows = res.json().readings as { value: { n?: number }; time: number }[];
      for (const r of rows) if (typeof r.value?.n === 'number') seen.add(r.value.n);
      if (rows.length < 1000) break;
      const last = rows[rows.length - 1].time;
      // Readings sharing the last page's final millisecond are read again on the next page, never skipped.
      from = last > from ? last : last + 1;
    }
    const lost: number[] = [];
    for (const [n] of due) {
      if (seen.has(n)) this.verified.add(n);
      else lost.push(n);
    }
    return { checked: due.length, lost };
  }
}
