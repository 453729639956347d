import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import { toChunks } from './sqlite-chunks.js';
import type { ChunkReading } from './sqlite-chunks.js';
import { READING_OVERHEAD_BYTES } from './reading-types.js';
import type { RetentionPolicy } from './reading-types.js';

/** A chunk row as retention reads it: `keep` is the seq of its key's latest reading (never pruned by count). */
interface PartRow { id: number; data: string; keep: number | null }

/** Whether the latest reading of a chunk's key is among the chunk's seqs (SQL over a chunk row aliased c). */
const HOLDS_LATEST = `EXISTS (SELECT 1 FROM latest l WHERE l.device_id = c.device_id AND l.sensor = c.sensor AND l.side = c.side
  AND l.seq BETWEEN c.seq_from AND c.seq_to)`;
const KEEP = '(SELECT seq FROM latest l WHERE l.device_id = c.device_id AND l.sensor = c.sensor AND l.side = c.side) AS keep';

/*
 * A chunk's weight as READING_OVERHEAD_BYTES counts it is its `weight` column (migration 16), from its text
 * `[[seq,time,value],…]`: each reading takes 5 characters of framing (with the comma after it), its seq and a
 * 13-digit time besides its value, and the chunk 1 more (exact when its seqs have as many digits as the last one).
 */
/** Chunks one step of a pruning deletes or trims: a few milliseconds of the event loop. */
const DROP_STEP_CHUNKS = 256;

const weighReading = (r: ChunkReading): number => Buffer.byteLength(r.json) + READING_OVERHEAD_BYTES;

/**
 * Retention over SQLite's chunks: by age and count for every device, and by bytes for one device. The journal
 * must be settled first, so its readings count too. `forget` hears, per device (null: every device), the newest
 * time a deleted reading had, so the hourly rollup drops those hours.
 */
export class SqliteRetention {
  private readonly stmt;

  constructor(private readonly db: Database.Database, private readonly forget: (deviceId: string | null, upTo: number) => void) {
    this.stmt = {
      decode: db.prepare('SELECT e.value ->> 0 AS seq, e.value ->> 1 AS time, e.value -> 2 AS json FROM json_each(?) e ORDER BY e.key'),
      rewrite: db.prepare('UPDATE reading_chunks SET seq_from = ?, seq_to = ?, time_from = ?, time_to = ?, n = ?, data = ? WHERE id = ?'),
      dropChunk: db.prepare('DELETE FROM reading_chunks WHERE id = ?'),
      chunkData: db.prepare('SELECT data FROM reading_chunks WHERE id = ?').pluck(),
      pruneLatest: db.prepare('DELETE FROM latest WHERE time < ?'),
      // No index leads with time, but the sensor index holds it: the old chunks' ids from a scan of that index
      // alone (3 ms for 80 000 chunks), where one of the table reads a page per chunk.
      oldChunks: db.prepare('SELECT id FROM reading_chunks WHERE time_from < ?').pluck(),
      dropOld: db.prepare(`DELETE FROM reading_chunks AS c WHERE c.id IN (SELECT value FROM json_each(?)) AND c.time_to < ? AND NOT ${HOLDS_LATEST} RETURNING n`).pluck(),
      oldParts: db.prepare(`SELECT c.id, c.data, ${KEEP} FROM reading_chunks c WHERE c.id IN (SELECT value FROM json_each(?)) AND c.time_from < ?`),
      devicesOverCount: db.prepare('SELECT device_id FROM reading_chunks GROUP BY device_id HAVING SUM(n) > ?').pluck(),
      newestChunks: db.prepare('SELECT seq_from, n FROM reading_chunks WHERE device_id = ? ORDER BY seq_to DESC'),
      // Each read from the device index alone (reading_chunks_by_device holds the weight).
      deviceWeight: db.prepare('SELECT SUM(weight) AS total, MAX(seq_to - seq_from) AS span FROM reading_chunks WHERE device_id = ?'),
      oldestByLast: db.prepare('SELECT seq_to, weight FROM reading_chunks WHERE device_id = ? ORDER BY seq_to').raw(),
      // Chunks starting at or before a seq all end before it plus the device's widest chunk: a range of the index.
      oldestByFirst: db.prepare('SELECT seq_from, weight FROM reading_chunks WHERE device_id = ? AND seq_to <= ? AND seq_from <= ? ORDER BY seq_from').raw(),
      weightUpTo: db.prepare('SELECT SUM(weight) FROM reading_chunks WHERE device_id = ? AND seq_to <= ? AND seq_from <= ?').pluck(),
      across: db.prepare('SELECT id FROM reading_chunks WHERE device_id = ? AND seq_to >= ? AND seq_from <= ?').pluck(),
      nthOldestEnd: db.prepare('SELECT seq_to FROM reading_chunks WHERE device_id = ? AND seq_to > ? AND seq_to <= ? ORDER BY seq_to LIMIT 1 OFFSET ?').pluck(),
      nthNewestSeq: db.prepare(`SELECT e.value ->> 0 AS seq FROM reading_chunks c, json_each(c.data) e
        WHERE c.device_id = ? AND c.seq_to >= ? ORDER BY seq DESC LIMIT 1 OFFSET ?`).pluck(),
      dropCounted: db.prepare(`DELETE FROM reading_chunks AS c WHERE c.device_id = ? AND c.seq_to <= ? AND NOT ${HOLDS_LATEST} RETURNING n, time_to`),
      countedParts: db.prepare(`SELECT c.id, c.data, ${KEEP} FROM reading_chunks c WHERE c.device_id = ? AND c.seq_from <= ?`),
    };
  }

  /**
   * Deletes readings outside the policy; the latest reading of a key is kept whatever the count, until it is
   * older than the age. Returns how many readings went. Goes in steps, each its own transaction with the event
   * loop free between them (see dropInSteps): a minute of a busy hub's readings past the count took half a second
   * and more in one.
   */
  async prune(policy: RetentionPolicy, now: number): Promise<number> {
    let removed = 0;
    if (policy.maxAgeMs > 0) {
      const cutoff = now - policy.maxAgeMs;
      // Sensors not written for the whole age go first, so their last readings are pruned with the rest.
      this.stmt.pruneLatest.run(cutoff);
      let aged = 0;
      const old = this.stmt.oldChunks.all(cutoff) as number[];
      for (let at = 0; at < old.length; at += DROP_STEP_CHUNKS) {
        const ids = JSON.stringify(old.slice(at, at + DROP_STEP_CHUNKS));
        aged += this.db.transaction(() => this.pruneAgeOf(cutoff, ids)).immediate();
        if (!(await this.breathe())) return removed + aged;
      }
      if (aged > 0) this.forget(null, cutoff - 1);
      removed += aged;
    }
    if (policy.maxCount > 0) {
      for (const deviceId of this.stmt.devicesOverCount.all(policy.maxCount) as string[]) {
        const last = this.oldestKeptSeq(deviceId, policy.maxCount);
        if (last !== undefined) removed += await this.dropInSteps(deviceId, last);
        if (!(await this.breathe())) break;
      }
    }
    return removed;
  }

  /** Deletes the device's oldest readings past `maxBytes`, in steps (see Store.pruneDeviceBytes). */
  async pruneBytes(deviceId: string, maxBytes: number): Promise<number> {
    const last = this.heaviestKeptSeq(deviceId, maxBytes);
    return last === undefined ? 0 : this.dropInSteps(deviceId, last);
  }

  /** The readings older than `cutoff` in the chunks of `ids` (a JSON array), but each key's latest. */
  private pruneAgeOf(cutoff: number, ids: string): number {
    let aged = 0;
    for (const n of this.stmt.dropOld.all(ids, cutoff) as number[]) aged += n;
    // What is left before the cutoff: chunks across it, or holding a key's latest reading.
    for (const c of this.stmt.oldParts.all(ids, cutoff) as PartRow[]) aged += this.cut(c, (seq, time) => time >= cutoff || seq === c.keep).n;
    return aged;
  }

  /**
   * Deletes the device's readings up to seq `last` (but each key's latest) in steps of at most DROP_STEP_CHUNKS
   * whole chunks: an eighth of a 64 MiB budget of small readings is thousands of chunks, tens of ms to delete at
   * once. Each step deletes only readings the whole cut would, so a step is never wrong, only not yet done; the
   * chunks across the cut are trimmed by the last.
   */
  private async dropInSteps(deviceId: string, last: number): Promise<number> {
    let removed = 0;
    // Counting from the last step's bound, the chunks a step kept (a key's latest) do not hold the next one back.
    for (let upTo = this.stepBound(deviceId, -1, last); upTo < last; upTo = this.stepBound(deviceId, upTo, last)) {
      const bound = upTo;
      removed += this.db.transaction(() => this.dropWhole(deviceId, bound)).immediate();
      if (!(await this.breathe())) return removed;
    }
    return removed + this.db.transaction(() => this.dropUpTo(deviceId, last)).immediate();
  }

  /** Lets the event loop run; false once the store closed meanwhile. */
  private async breathe(): Promise<boolean> {
    await yieldToLoop();
    return this.db.open;
  }

  /** The seq_to of the device's DROP_STEP_CHUNKS-th oldest chunk ending after `after` and at or before `last`, else `last`. */
  private stepBound(deviceId: string, after: number, last: number): number {
    return (this.stmt.nthOldestEnd.get(deviceId, after, last, DROP_STEP_CHUNKS - 1) as number | undefined) ?? last;
  }

  /** Deletes the device's chunks that end at or before `upTo` (but a key's latest); returns how many readings went. */
  private dropWhole(deviceId: string, upTo: number): number {
    const { removed, newest } = this.dropWholeChunks(deviceId, upTo);
    if (newest > -Infinity) this.forget(deviceId, newest);
    return removed;
  }

  private dropWholeChunks(deviceId: string, upTo: number): { removed: number; newest: number } {
    let removed = 0;
    let newest = -Infinity;
    for (const c of this.stmt.dropCounted.all(deviceId, upTo) as { n: number; time_to: number }[]) {
      removed += c.n;
      newest = Math.max(newest, c.time_to);
    }
    return { removed, newest };
  }

  /** The seq of the device's (max+1)-th newest reading: it and older ones go. */
  private oldestKeptSeq(deviceId: string, max: number): number | undefined {
    // The newest chunks (by their last seq) holding more than max readings: every reading from the lowest
    // seq among them up lies in a chunk ending at or after it, so only those are expanded.
    let held = 0;
    let lowest = Infinity;
    for (const c of this.stmt.newestChunks.iterate(deviceId) as IterableIterator<{ seq_from: number; n: number }>) {
      held += c.n;
      lowest = Math.min(lowest, c.seq_from);
      if (held > max) break;
    }
    if (held <= max) return undefined;
    return this.stmt.nthNewestSeq.get(deviceId, lowest, max) as number | undefined;
  }

  /**
   * The seq of the newest reading that does not fit in `max` bytes with every newer one: it and older ones go.
   * Chunks are weighed whole from the device index, oldest first, only as far as the excess over `max`; only
   * those across the cut are decoded, as a key's chunks overlap another key's in seq.
   */
  private heaviestKeptSeq(deviceId: string, max: number): number | undefined {
    const { total, span } = this.stmt.deviceWeight.get(deviceId) as { total: number | null; span: number | null };
    if (total === null || total <= max) return undefined;
    const excess = total - max;
    // The cut lies between `low` and `high`: by first seqs, the chunks from `low` up already weigh more than
    // max; by last seqs, those above `high` weigh at most max. Each is where the oldest chunks, in that order,
    // first weigh as much as the excess.
    const reach = (rows: IterableIterator<[number, number]>): number => {
      let sum = 0;
      for (const [seq, weight] of rows) {
        sum += weight;
        if (sum >= excess) {
          rows.return?.();
          return seq;
        }
      }
      throw new Error('a device weighs less than its chunks');
    };
    const high = reach(this.stmt.oldestByLast.iterate(deviceId) as IterableIterator<[number, number]>);
    const reachOf = high + (span ?? 0);
    const low = reach(this.stmt.oldestByFirst.iterate(deviceId, reachOf, high) as IterableIterator<[number, number]>);
    let above = total - ((this.stmt.weightUpTo.get(deviceId, reachOf, high) as number | null) ?? 0);
    const across: ChunkReading[] = [];
    for (const id of this.stmt.across.all(deviceId, low, high) as number[]) {
      across.push(...(this.stmt.decode.all(this.stmt.chunkData.get(id)) as ChunkReading[]));
    }
    across.sort((a, b) => b.seq - a.seq);
    for (const r of across) {
      above += weighReading(r);
      // The cut is at or below `high`: above it, only a chunk's header weight differing from its readings' could pass max.
      if (above > max && r.seq <= high) return r.seq;
    }
    // Only where a chunk's header weight and its readings' weights differ (times not of 13 digits).
    return high;
  }

  /** Deletes the device's readings up to seq `last`, but for each key's latest; returns how many went. */
  private dropUpTo(deviceId: string, last: number): number {
    let { removed, newest } = this.dropWholeChunks(deviceId, last);
    for (const c of this.stmt.countedParts.all(deviceId, last) as PartRow[]) {
      const cut = this.cut(c, (seq) => seq > last || seq === c.keep);
      removed += cut.n;
      newest = Math.max(newest, cut.newest);
    }
    if (newest > -Infinity) this.forget(deviceId, newest);
    return removed;
  }

  /**
   * Keeps a chunk's readings that pass `keep` (written again, or the chunk deleted); returns how many went and
   * the newest time among them.
   */
  private cut(c: PartRow, keep: (seq: number, time: number) => boolean): { n: number; newest: number } {
    const all = this.stmt.decode.all(c.data) as ChunkReading[];
    const kept = all.filter((r) => keep(r.seq, r.time));
    if (kept.length === all.length) return { n: 0, newest: -Infinity };
    let newest = -Infinity;
    for (const r of all) if (!keep(r.seq, r.time)) newest = Math.max(newest, r.time);
    if (kept.length === 0) this.stmt.dropChunk.run(c.id);
    else {
      // A part of a chunk is within its bounds: one chunk again.
      const [k] = toChunks(kept);
      this.stmt.rewrite.run(k.seqFrom, k.seqTo, k.timeFrom, k.timeTo, k.n, k.data, c.id);
    }
    return { n: all.length - kept.length, newest };
  }
}
