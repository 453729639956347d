import { KeyedBuckets } from '../core/rate-limit.js';

/** Attempts a minute per key, in bursts of `burst`. */
export class KeyedLimiter extends KeyedBuckets {
  constructor(perMinute: number, burst: number, maxKeys = 10_000) {
    super(perMinute / 60, burst, maxKeys);
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
