import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import { bucketsSql, SQLITE_NUMERIC } from './buckets.js';
import type { BucketQuery, BucketRow } from './buckets.js';
import { READING_COLS, toReading } from './rows.js';
import type { ReadingRow } from './rows.js';
import { CHUNK_COLS, chunkRange, expandSql, joinRows, SPAN_MS, toChunks } from './sqlite-chunks.js';
import type { ChunkReading, JournalRow } from './sqlite-chunks.js';
import { JournalMove } from './sqlite-journal-move.js';
import type { JournalSide, MoveSteps } from './sqlite-journal-move.js';
import type { SqliteReader } from './sqlite-reader.js';
import type { HistoryQuery, NewReading, StoredReading } from './types.js';

/** Readings in its chunks past which an aggregation goes to the reader's thread: about 30 ms of the event loop. */
const OFFLOADED_READINGS = 10_000;
/** The same for a page of history, which sorts and returns every reading: 10 000 took 90–130 ms. */
const OFFLOADED_PAGE_READINGS = 2_000;
/** Chunks one step of a device's deletion deletes: a few milliseconds of the event loop. */
const DELETE_STEP_CHUNKS = 128;

/** A key's newest reading on its way to the latest table: device_id, sensor, side, seq, value (JSON text), time. */
type LatestRow = [string, string, string, number, string, number];

/**
 * Readings in SQLite: a commit appends one chunk per device+sensor+side to readings_journal (no secondary
 * index, so a commit costs a few pages whatever the number of devices); settle() moves journal rows into
 * reading_chunks and its indexes in batches. Every read expands chunks of both tables.
 *
 * The latest table is not written by a commit: it was most of a commit's pages (a commit of ten devices'
 * readings touched their rows' pages of latest, each written whole to the WAL). Each key's newest committed
 * reading waits in `unwritten` until writeLatest(), which the store calls before anything reads latest, and
 * which every journal move does in its own transaction. After a crash the journal still holds those
 * readings: opening the store writes latest from it.
 */
export class SqliteReadings {
  /** Rows in the journal, as far as this connection knows. */
  journaled: number;
  private readonly stmt;
  private readonly cache = new Map<string, Database.Statement>();
  private readonly appendTx: Database.Transaction<(readings: NewReading[], newest: Map<string, LatestRow>) => StoredReading[]>;
  private readonly settleTx: Database.Transaction<(limit: number) => number>;
  private readonly latestTx: Database.Transaction<() => void>;
  /** Each key's newest committed reading not yet in the latest table, by `device\0sensor\0side`. */
  private readonly unwritten = new Map<string, LatestRow>();
  /** What a move in steps reads and writes. */
  private readonly journalSide: JournalSide;
  private move: JournalMove | null = null;

  constructor(private readonly db: Database.Database) {
    this.stmt = {
      // The highest seq issued: the journal's last row (a commit writes its rows in seq order), or what
      // reading_seq remembers of rows moved or deleted. Read only, so a commit writes no counter page.
      lastSeq: db.prepare(`SELECT MAX((SELECT seq FROM reading_seq),
        COALESCE((SELECT seq_to FROM readings_journal ORDER BY id DESC LIMIT 1), 0)) AS seq`).pluck(),
      rememberSeqs: db.prepare('UPDATE reading_seq SET seq = MAX(seq, (SELECT COALESCE(MAX(seq_to), 0) FROM readings_journal WHERE id <= ?))'),
      rememberSeq: db.prepare('UPDATE reading_seq SET seq = MAX(seq, ?)'),
      journalAfter: db.prepare(`SELECT ${CHUNK_COLS}, id FROM readings_journal WHERE id > ? ORDER BY id LIMIT ?`).raw(true),
      takeJournal: db.prepare('DELETE FROM readings_journal WHERE id IN (SELECT value FROM json_each(?)) RETURNING id').pluck(),
      insertChunk: db.prepare(`INSERT INTO reading_chunks (${CHUNK_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      journalChunk: db.prepare(`INSERT INTO readings_journal (${CHUNK_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      upsertLatest: db.prepare(`INSERT INTO latest (device_id, sensor, side, seq, value, time) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (device_id, sensor, side) DO UPDATE SET seq = excluded.seq, value = excluded.value, time = excluded.time
        WHERE excluded.seq > latest.seq`),
      // Each key's last journal row holds its newest reading, last in the row's data.
      latestFromJournal: db.prepare(`INSERT INTO latest (device_id, sensor, side, seq, value, time)
        SELECT j.device_id, j.sensor, j.side, j.seq_to, j.data -> '$[#-1][2]', j.data ->> '$[#-1][1]'
        FROM readings_journal j JOIN (SELECT MAX(id) AS id FROM readings_journal GROUP BY device_id, sensor, side) k ON j.id = k.id
        WHERE true -- an upsert after a join needs a WHERE, or SQLite reads ON CONFLICT as the join's
        ON CONFLICT (device_id, sensor, side) DO UPDATE SET seq = excluded.seq, value = excluded.value, time = excluded.time
        WHERE excluded.seq > latest.seq`),
      journalCount: db.prepare('SELECT COUNT(*) AS n FROM readings_journal'),
      deleteChunks: db.prepare('DELETE FROM reading_chunks WHERE device_id = ?'),
      lastChunkOf: db.prepare('SELECT MAX(seq_to) FROM reading_chunks WHERE device_id = ?').pluck(),
      // In the device index's order: neighbouring chunks share pages.
      deleteSomeChunks: db.prepare('DELETE FROM reading_chunks WHERE id IN (SELECT id FROM reading_chunks WHERE device_id = ? AND seq_to <= ? ORDER BY seq_to LIMIT ?)'),
      deleteJournal: db.prepare('DELETE FROM readings_journal WHERE device_id = ?'),
    };
    this.appendTx = db.transaction((readings, newest) => this.appendNow(readings, newest));
    const upsertUnwritten = () => {
      for (const row of this.unwritten.values()) this.stmt.upsertLatest.run(...row);
    };
    this.latestTx = db.transaction(upsertUnwritten);
    // Moves journal rows, with the latest rows waiting, into reading_chunks: in one transaction of its own for
    // settle(), or a slice of rows read in an earlier step for a move in steps.
    const moveRows = (rows: JournalRow[]): number => {
      upsertUnwritten();
      // Only rows still in the journal: another move, or a device's deletion, may have taken some since they were read.
      const taken = this.stmt.takeJournal.all(JSON.stringify(rows.map((r) => r[9]))) as number[];
      let kept = rows;
      if (taken.length < rows.length) {
        const still = new Set(taken);
        kept = rows.filter((r) => still.has(r[9]));
      }
      let last = 0;
      for (const r of kept) last = Math.max(last, r[4]);
      if (last > 0) this.stmt.rememberSeq.run(last);
      for (const c of joinRows(kept)) this.stmt.insertChunk.run(...c);
      return kept.length;
    };
    this.settleTx = db.transaction((limit: number): number => moveRows(this.stmt.journalAfter.all(0, limit) as JournalRow[]));
    const sliceTx = db.transaction(moveRows);
    this.journalSide = {
      read: (after, n) => this.stmt.journalAfter.all(after, n) as JournalRow[],
      moveSlice: (rows) => {
        const moved = sliceTx.immediate(rows);
        // The slice's transaction wrote them too.
        this.unwritten.clear();
        this.journaled = Math.max(0, this.journaled - moved);
      },
      reachedEnd: (rows) => (this.journaled = rows),
    };
    this.journaled = (this.stmt.journalCount.get() as { n: number }).n;
    // What a crash left in the journal: its newest readings may not have reached latest.
    if (this.journaled > 0) this.stmt.latestFromJournal.run();
  }

  append(readings: NewReading[]): StoredReading[] {
    const newest = new Map<string, LatestRow>();
    const out = this.appendTx.immediate(readings, newest);
    // Only once committed: a failed commit must not reach latest.
    for (const [key, row] of newest) this.unwritten.set(key, row);
    return out;
  }

  /** Writes each key's newest committed reading into the latest table (before anything reads it). */
  writeLatest(): void {
    if (this.unwritten.size === 0 || !this.db.open) return;
    this.latestTx.immediate();
    this.unwritten.clear();
  }

  /** Numbers the readings in order, then writes each key's readings of this commit as one journal row. */
  private appendNow(readings: NewReading[], newest: Map<string, LatestRow>): StoredReading[] {
    const count = readings.length;
    const first = (this.stmt.lastSeq.get() as number) + 1;
    const out: StoredReading[] = new Array(count);
    const jsons: string[] = new Array(count);
    const byKey = new Map<string, number[]>();
    let run: number[] = [];
    for (let i = 0; i < count; i++) {
      const r = readings[i];
      jsons[i] = r.json ?? JSON.stringify(r.value);
      out[i] = { seq: first + i, deviceId: r.deviceId, sensor: r.sensor, side: r.side, value: r.value, time: r.time };
      // A run of one writer's readings (a batch put, a deep pipeline, a fan-in) shares the key made for its first.
      const prev = i > 0 ? readings[i - 1] : undefined;
      if (prev === undefined || r.deviceId !== prev.deviceId || r.sensor !== prev.sensor || r.side !== prev.side) {
        const key = `${r.deviceId}\u0000${r.sensor}\u0000${r.side}`;
        const known = byKey.get(key);
        if (known) run = known;
        else byKey.set(key, (run = []));
      }
      run.push(i);
    }
    // Keys in the order of their last reading, so the journal's last row holds the commit's highest seq.
    for (const [key, list] of [...byKey].sort(([, a], [, b]) => a[a.length - 1] - b[b.length - 1])) {
      const { deviceId, sensor, side } = out[list[0]];
      if (list.length === 1) {
        const { seq, time } = out[list[0]];
        this.stmt.journalChunk.run(deviceId, sensor, side, seq, seq, time, time, 1, `[[${seq},${time},${jsons[list[0]]}]]`);
        this.journaled++;
      } else {
        const mine = list.map((i): ChunkReading => ({ seq: out[i].seq, time: out[i].time, json: jsons[i] }));
        for (const c of toChunks(mine)) {
          this.stmt.journalChunk.run(deviceId, sensor, side, c.seqFrom, c.seqTo, c.timeFrom, c.timeTo, c.n, c.data);
          this.journaled++;
        }
      }
      // Only the last write of a key in this commit is its latest.
      const last = list[list.length - 1];
      newest.set(key, [deviceId, sensor, side, out[last].seq, jsons[last], out[last].time]);
    }
    return out;
  }

  /** Moves up to `limit` journal rows into reading_chunks; returns how many moved. */
  settle(limit: number): number {
    if (!this.db.open) return 0;
    if (this.journaled === 0) {
      this.writeLatest();
      return 0;
    }
    const moved = this.settleTx.immediate(limit);
    // The move's transaction wrote them too.
    this.unwritten.clear();
    // Less than a batch means the journal is empty now, whatever the count said (the CLI may have deleted rows).
    this.journaled = moved < limit ? 0 : Math.max(0, this.journaled - moved);
    return moved;
  }

  /** Begins a move of up to `limit` journal rows taken in steps (see JournalMove); with none, writes latest. */
  beginMove(limit: number): void {
    this.move = this.journaled === 0 ? null : new JournalMove(limit, this.journalSide);
    if (!this.move) this.writeLatest();
  }

  /**
   * One step of the move begun; returns whether steps are left. A failed step ends the move: its rows stay in the
   * journal, read as they were, for the next.
   */
  moveStep(steps: MoveSteps): boolean {
    if (!this.move || !this.db.open) return this.endMove();
    try {
      return this.move.step(steps) || this.endMove();
    } catch (err) {
      this.endMove();
      throw err;
    }
  }

  /** Drops the move under way (its rows not yet moved stay in the journal). */
  endMove(): false {
    this.move = null;
    return false;
  }

  /**
   * Deletes a device's chunks as they are now, DELETE_STEP_CHUNKS at a time, each step its own transaction with the
   * event loop free between them: a device at its byte budget of small readings is 20 000 chunks, 0.7 s to delete in
   * one. What it writes meanwhile is left for deleteDevice, with the device itself.
   */
  async deleteChunksInSteps(deviceId: string): Promise<void> {
    const last = this.stmt.lastChunkOf.get(deviceId) as number | null;
    if (last === null) return;
    while (this.db.open && this.db.transaction(() => this.stmt.deleteSomeChunks.run(deviceId, last, DELETE_STEP_CHUNKS).changes).immediate() === DELETE_STEP_CHUNKS) {
      await yieldToLoop();
    }
  }

  /** Call after writeLatest(), inside the transaction that deletes the device's latest rows: nothing of it waits then. */
  deleteDevice(deviceId: string): void {
    // Its journal rows may hold the highest seq issued: remembered, so it is never issued again.
    this.stmt.rememberSeqs.run(Number.MAX_SAFE_INTEGER);
    this.stmt.deleteChunks.run(deviceId);
    this.journaled = Math.max(0, this.journaled - this.stmt.deleteJournal.run(deviceId).changes);
  }

  private prepared(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) this.cache.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  /**
   * A page of a sensor's readings; from the reader's thread when the chunks it must expand count more than
   * OFFLOADED_PAGE_READINGS: readings that share their time (a batch's do) cannot be told apart by the chunks' times,
   * so even a short page may expand many (a page of 100 of a million such readings took 48 ms).
   */
  async history(deviceId: string, sensor: string, q: HistoryQuery, reader: SqliteReader | null): Promise<StoredReading[]> {
    const { sql, args, newestFirst, range } = this.historySql(deviceId, sensor, q);
    return inOrder(await this.readWhere<ReadingRow>(reader, OFFLOADED_PAGE_READINGS, { deviceId, sensor, ...range }, sql, args), newestFirst);
  }

  private historySql(deviceId: string, sensor: string, q: HistoryQuery) {
    const newestFirst = q.from === undefined;
    const [from, to] = newestFirst ? [this.newestBound(deviceId, sensor, q), q.to] : [q.from, this.oldestBound(deviceId, sensor, q)];
    const { where, params } = this.source(deviceId, sensor, from, to, q.side);
    const order = `ORDER BY time ${newestFirst ? 'DESC' : 'ASC'}, seq ${newestFirst ? 'DESC' : 'ASC'}`;
    // Each table limited on its own, then the two merged: the journal holds the last moments, not yet moved.
    const arm = (table: string) => `SELECT * FROM (SELECT ${READING_COLS} FROM (${expandSql(table, where.chunk)}) WHERE ${where.row} ${order} LIMIT ?)`;
    let sql = `${arm('reading_chunks')} UNION ALL ${arm('readings_journal')} ${order} LIMIT ?`;
    const args: unknown[] = [...params, q.limit, ...params, q.limit, q.limit];
    if (q.maxBytes !== undefined) {
      // What the rows before each one hold, summed inside SQLite: the values past the bound are never loaded here.
      sql = `SELECT ${READING_COLS} FROM (SELECT *, SUM(length(value)) OVER (${order} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
        FROM (${sql})) WHERE before IS NULL OR before <= ? ${order}`;
      args.push(q.maxBytes);
    }
    return { sql, args, newestFirst, range: { from, to, side: q.side } };
  }

  /**
   * Aggregated history straight from the chunks and the journal (with each bucket's sum, for the rollup);
   * aggregating costs about 3 µs a reading, and one sensor may hold millions.
   */
  rawBuckets(deviceId: string, sensor: string, q: BucketQuery, reader: SqliteReader | null): Promise<BucketRow[]> {
    const { where, params } = this.source(deviceId, sensor, q.from, q.to, q.side);
    const arm = (table: string) => `SELECT time, seq, value FROM (${expandSql(table, where.chunk)}) WHERE ${where.row}`;
    // Placeholders bind in text order: the bucket size twice, then the source's, then the limit.
    const sql = bucketsSql(SQLITE_NUMERIC, `(${arm('reading_chunks')} UNION ALL ${arm('readings_journal')})`, () => 'CAST(? AS INTEGER)');
    return this.readWhere<BucketRow>(reader, OFFLOADED_READINGS, { deviceId, sensor, ...q }, sql, [q.bucketMs, q.bucketMs, ...params, ...params, q.limit]);
  }

  /**
   * The rows of `sql`: here, or from the reader's thread when the chunks that may hold the range count more than
   * `over` readings (read from the sensor index; the journal's are few).
   */
  private async readWhere<R>(reader: SqliteReader | null, over: number, range: { deviceId: string; sensor: string; from?: number; to?: number; side?: string }, sql: string, args: unknown[]): Promise<R[]> {
    if (reader !== null) {
      const { where, chunkParams } = this.source(range.deviceId, range.sensor, range.from, range.to, range.side);
      const readings = this.prepared(`SELECT COALESCE(SUM(n), 0) FROM reading_chunks c WHERE ${where.chunk}`).pluck().get(...chunkParams) as number;
      if (readings > over) return (await reader.all(sql, args)) as R[];
    }
    return this.prepared(sql).all(...args) as R[];
  }

  /** SQL picking one sensor's chunks that may hold readings in [from, to], and its readings in that range. */
  private source(deviceId: string, sensor: string, from: number | undefined, to: number | undefined, side: string | undefined) {
    const chunk = ['c.device_id = ?', 'c.sensor = ?'];
    const chunkParams: unknown[] = [deviceId, sensor];
    if (side !== undefined) (chunk.push('c.side = ?'), chunkParams.push(side));
    const range = chunkRange(from, to);
    if (range.sql) (chunk.push(range.sql), chunkParams.push(...range.params));
    const row = ['1'];
    const rowParams: unknown[] = [];
    if (from !== undefined) (row.push('time >= ?'), rowParams.push(from));
    if (to !== undefined) (row.push('time <= ?'), rowParams.push(to));
    // expandSql places the chunk condition twice.
    return { where: { chunk: chunk.join(' AND '), row: row.join(' AND ') }, params: [...chunkParams, ...chunkParams, ...rowParams], chunkParams };
  }

  /**
   * A time at or below which the newest `limit` readings (up to `to`) cannot lie, from the chunk index alone:
   * chunks whole within the range are counted, newest first, until they hold `limit` readings.
   */
  private newestBound(deviceId: string, sensor: string, q: HistoryQuery): number | undefined {
    const sql = `SELECT time_from, time_to, n FROM reading_chunks WHERE device_id = ? AND sensor = ?${q.side ? ' AND side = ?' : ''}${
      q.to !== undefined ? ' AND time_from <= ?' : ''} ORDER BY time_from DESC`;
    const params: unknown[] = [deviceId, sensor];
    if (q.side) params.push(q.side);
    if (q.to !== undefined) params.push(q.to);
    let held = 0;
    for (const c of this.prepared(sql).iterate(...params) as IterableIterator<{ time_from: number; time_to: number; n: number }>) {
      if (q.to !== undefined && c.time_to > q.to) continue;
      held += c.n;
      if (held >= q.limit) return c.time_from;
    }
    return undefined;
  }

  /** The same from the other end: a time at or above which the oldest `limit` readings from `from` cannot lie. */
  private oldestBound(deviceId: string, sensor: string, q: HistoryQuery): number | undefined {
    const from = q.from!;
    const sql = `SELECT time_from, time_to, n FROM reading_chunks WHERE device_id = ? AND sensor = ?${q.side ? ' AND side = ?' : ''}
      AND time_from >= ?${q.to !== undefined ? ' AND time_from <= ?' : ''} ORDER BY time_from`;
    const params: unknown[] = [deviceId, sensor];
    if (q.side) params.push(q.side);
    params.push(from - SPAN_MS);
    if (q.to !== undefined) params.push(q.to);
    let held = 0;
    let upTo = -Infinity;
    for (const c of this.prepared(sql).iterate(...params) as IterableIterator<{ time_from: number; time_to: number; n: number }>) {
      if (c.time_from < from || (q.to !== undefined && c.time_to > q.to)) continue;
      held += c.n;
      upTo = Math.max(upTo, c.time_to);
      if (held >= q.limit) return upTo;
    }
    return q.to;
  }
}

/** Rows as read, oldest first. */
function inOrder(rows: ReadingRow[], newestFirst: boolean): StoredReading[] {
  const readings = rows.map(toReading);
  return newestFirst ? readings.reverse() : readings;
}
