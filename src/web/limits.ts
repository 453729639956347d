import { KeyedBuckets } from '../core/rate-limit.js';

/** Attempts a minute per key, in bursts of `burst`. The log-in and sign-up limits live in core/auth-limits.ts. */
export class KeyedLimiter extends KeyedBuckets {
  constructor(perMinute: number, burst: number, maxKeys = 10_000) {
    super(perMinute / 60, burst, maxKeys);
  }
}

export { waitText } from '../core/auth-limits.js';
