import { IotcError } from '../../core/errors.js';
import { TokenBucket } from '../../core/rate-limit.js';

/**
 * One token bucket per caller (device key, API token, address), in a map bounded by `maxEntries`:
 * the least recently seen caller is forgotten first, so a flood of distinct callers cannot grow memory.
 * A forgotten caller starts again with a full bucket, which only ever errs on the generous side.
 */
export class RateLimits {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly maxEntries = 10_000,
  ) {}

  /** Takes one request from `who`'s bucket or throws E_RATE_LIMITED with the seconds to wait. */
  take(who: string, what = 'requests'): void {
    if (this.rate === 0) return;
    let bucket = this.buckets.get(who);
    if (bucket) this.buckets.delete(who);
    else bucket = new TokenBucket(this.rate, this.burst);
    this.buckets.set(who, bucket);
    if (this.buckets.size > this.maxEntries) this.buckets.delete(this.buckets.keys().next().value!);
    if (!bucket.take()) {
      const wait = bucket.waitSeconds();
      throw new IotcError('E_RATE_LIMITED', `Too many ${what}: at most ${this.rate} a second; retry in ${wait}s`, { retryAfterSeconds: wait });
    }
  }

  get size(): number {
    return this.buckets.size;
  }
}
