/**
 * The arithmetic of the attempt buckets both stores keep (Store.takeAttempt): a bucket holds at most `burst`
 * attempts and refills `perSecond`. A bucket with no row is full. Each store reads and writes its row under a
 * lock of its own; what the row becomes is decided here, once for both.
 */
export interface AttemptLimit {
  burst: number;
  perSecond: number;
}

export interface AttemptRow {
  level: number;
  /** When `level` was last set, ms since the epoch. */
  at: number;
}

/** What a row to write holds: its level, when it was set, and when the bucket is full again (then it may go). */
export interface AttemptWrite extends AttemptRow {
  fullAt: number;
}

function levelNow(row: AttemptRow | null, limit: AttemptLimit, now: number): number {
  if (!row) return limit.burst;
  // A clock that went back refills nothing, and never empties a bucket either.
  return Math.min(limit.burst, row.level + (Math.max(0, now - row.at) / 1000) * limit.perSecond);
}

function written(level: number, limit: AttemptLimit, now: number): AttemptWrite {
  return { level, at: now, fullAt: now + Math.ceil(((limit.burst - level) / limit.perSecond) * 1000) };
}

/** Takes one attempt: the row to write, or (none left) the whole seconds until one is back. */
export function takeOne(row: AttemptRow | null, limit: AttemptLimit, now: number): { write: AttemptWrite } | { waitSeconds: number } {
  const level = levelNow(row, limit, now);
  if (level < 1) return { waitSeconds: Math.max(1, Math.ceil((1 - level) / limit.perSecond)) };
  return { write: written(level - 1, limit, now) };
}

/** Gives one attempt back, never above the burst: the row to write, or null when the bucket is full (its row may go). */
export function giveOne(row: AttemptRow | null, limit: AttemptLimit, now: number): AttemptWrite | null {
  const level = Math.min(limit.burst, levelNow(row, limit, now) + 1);
  return level >= limit.burst ? null : written(level, limit, now);
}
