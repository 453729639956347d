import { TokenBucket } from '../core/rate-limit.js';

/** Token buckets by key (an IP, an email), at most `maxKeys` of them: the least recently used goes first. */
export class KeyedLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly perMinute: number,
    private readonly burst: number,
    private readonly maxKeys = 10_000,
  ) {}

  /** Takes one attempt; the seconds to wait when none is left. */
  take(key: string, now = Date.now()): { ok: true } | { ok: false; retryAfter: number } {
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key);
    } else {
      bucket = new TokenBucket(this.perMinute / 60, this.burst, now);
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(key, bucket);
    return bucket.take(1, now) ? { ok: true } : { ok: false, retryAfter: bucket.waitSeconds() };
  }

  get size(): number {
    return this.buckets.size;
  }
}

export interface WebLimits {
  loginPerIp: KeyedLimiter;
  loginPerAccount: KeyedLimiter;
  signUpPerIp: KeyedLimiter;
  signUpPerAccount: KeyedLimiter;
}

/** Enough for a person who mistypes; far too few for guessing passwords. */
export function webLimits(): WebLimits {
  return {
    loginPerIp: new KeyedLimiter(20, 30),
    loginPerAccount: new KeyedLimiter(2, 8),
    signUpPerIp: new KeyedLimiter(2, 10),
    signUpPerAccount: new KeyedLimiter(2, 5),
  };
}

export function waitText(seconds: number): string {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}
