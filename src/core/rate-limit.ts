/** Token bucket: `rate` tokens a second, holding at most `burst`. rate 0 means unlimited. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(private readonly rate: number, private readonly burst: number, now = Date.now()) {
    this.tokens = burst;
    this.last = now;
  }

  take(count = 1, now = Date.now()): boolean {
    if (this.rate === 0) return true;
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < count) return false;
    this.tokens -= count;
    return true;
  }

  /** Puts back what an attempt took, never above the burst: a right password does not count as a failure. */
  give(count = 1, now = Date.now()): void {
    if (this.rate === 0) return;
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate + count);
    this.last = now;
  }

  /** Whether `count` tokens are there now, without taking them. */
  has(count = 1, now = Date.now()): boolean {
    if (this.rate === 0) return true;
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    return this.tokens >= count;
  }

  /** Seconds until `count` tokens are there. */
  waitSeconds(count = 1): number {
    return this.rate === 0 ? 0 : Math.max(1, Math.ceil((count - this.tokens) / this.rate));
  }
}

/**
 * One token bucket per key (a device, a token, an address, an email), at most `maxKeys` of them: the least
 * recently seen key is forgotten first, so a flood of distinct callers cannot grow memory. A forgotten key
 * starts again with a full bucket, which only ever errs on the generous side.
 */
export class KeyedBuckets {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly maxKeys = 10_000,
  ) {}

  /** Takes one from `key`'s bucket; when none is left, the whole seconds to wait. */
  take(key: string, now = Date.now()): { ok: true } | { ok: false; retryAfter: number } {
    if (this.rate === 0) return { ok: true };
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key);
    } else {
      bucket = new TokenBucket(this.rate, this.burst, now);
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(key, bucket);
    return bucket.take(1, now) ? { ok: true } : { ok: false, retryAfter: bucket.waitSeconds() };
  }

  /** Whether `key` could take one now, without taking it or remembering the key. */
  check(key: string, now = Date.now()): { ok: true } | { ok: false; retryAfter: number } {
    const bucket = this.buckets.get(key);
    if (this.rate === 0 || !bucket || bucket.has(1, now)) return { ok: true };
    return { ok: false, retryAfter: bucket.waitSeconds() };
  }

  /** Gives back one token `take` took (the attempt succeeded). */
  refund(key: string, now = Date.now()): void {
    this.buckets.get(key)?.give(1, now);
  }

  get size(): number {
    return this.buckets.size;
  }
}
