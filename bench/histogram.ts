/**
 * A fixed-size latency histogram in microseconds with about 1 % resolution, cheap to record into and to add
 * up across worker processes (plain arrays of counts travel over IPC as they are).
 */
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
/** Up to ~100 s. */
export const BUCKETS = Math.ceil(Math.log(1e8) / LOG_GROWTH) + 1;

export class Histogram {
  readonly counts: number[];
  total = 0;
  max = 0;

  constructor(counts?: number[]) {
    this.counts = counts ? counts.slice() : new Array<number>(BUCKETS).fill(0);
    if (counts) for (const c of counts) this.total += c;
  }

  record(us: number): void {
    const v = us < 1 ? 1 : us;
    let i = Math.round(Math.log(v) / LOG_GROWTH);
    if (i >= BUCKETS) i = BUCKETS - 1;
    this.counts[i]++;
    this.total++;
    if (v > this.max) this.max = v;
  }

  add(other: { counts: number[]; max?: number }): void {
    for (let i = 0; i < BUCKETS; i++) {
      const c = other.counts[i];
      if (c) {
        this.counts[i] += c;
        this.total += c;
      }
    }
    if ((other.max ?? 0) > this.max) this.max = other.max!;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.max = 0;
  }

  /** The value (µs) at quantile q in [0, 1]; NaN when empty. */
  quantile(q: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(GROWTH ** i, this.max || Infinity);
    }
    return this.max;
  }

  toJSON(): { counts: number[]; max: number } {
    return { counts: this.counts, max: this.max };
  }
}
