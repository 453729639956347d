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

  /** Seconds until `count` tokens are there. */
  waitSeconds(count = 1): number {
    return this.rate === 0 ? 0 : Math.max(1, Math.ceil((count - this.tokens) / this.rate));
  }
}
