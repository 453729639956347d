import { IotcError } from '../../core/errors.js';
import { KeyedBuckets } from '../../core/rate-limit.js';

/** Requests a second per caller (device key, API token, address), answered E_RATE_LIMITED with Retry-After. */
export class RateLimits {
  private readonly buckets: KeyedBuckets;

  constructor(private readonly rate: number, burst: number, maxEntries = 10_000) {
    this.buckets = new KeyedBuckets(rate, burst, maxEntries);
  }

  /** Takes one request from `who`'s bucket or throws E_RATE_LIMITED with the seconds to wait. */
  take(who: string, what = 'requests'): void {
    const taken = this.buckets.take(who);
    if (!taken.ok) {
      throw new IotcError('E_RATE_LIMITED', `Too many ${what}: at most ${this.rate} a second; retry in ${taken.retryAfter}s`, { retryAfterSeconds: taken.retryAfter });
    }
  }

  get size(): number {
    return this.buckets.size;
  }
}
