/**
 * SQLite keeps readings in chunks: one row per device, sensor and side per commit, holding that commit's
 * readings as JSON `[[seq,time,value],…]` with the value's own JSON text inside. A row, an index entry and a
 * page are written once for all the readings of a commit instead of once (or three times, through the old
 * journal) per reading. Reads expand chunks in SQL with json_each, which keeps each value's text as stored.
 */

/**
 * A chunk's readings lie within this many ms of its time_from, so a read of a time range finds every chunk
 * that may hold part of it by scanning time_from from `from - SPAN_MS` (the index has no time_to order).
 */
export const SPAN_MS = 60_000;
/** Readings per chunk at most: a chunk cut by retention is decoded and written again whole. */
export const MAX_READINGS = 1000;
/**
 * A commit's journal rows hold half of each, so that the move may join a key's rows of the same half-span
 * window into one chunk (see MOVE_SQL) and stay within both bounds.
 */
export const JOURNAL_SPAN_MS = SPAN_MS / 2;
export const JOURNAL_READINGS = MAX_READINGS / 2;

/** The columns a chunk row is written with, in the journal and in reading_chunks alike. */
export const CHUNK_COLS = 'device_id, sensor, side, seq_from, seq_to, time_from, time_to, n, data';

export interface ChunkReading {
  seq: number;
  time: number;
  /** The value's JSON text, kept as it is. */
  json: string;
}

export interface Chunk {
  seqFrom: number;
  seqTo: number;
  timeFrom: number;
  timeTo: number;
  n: number;
  data: string;
}

const encodeOne = (r: ChunkReading) => `[${r.seq},${r.time},${r.json}]`;

/**
 * One key's readings (in seq order) as chunks, starting a new one when the next reading would take the chunk's
 * times more than SPAN_MS apart (a clock set back) or past MAX_READINGS.
 */
export function toChunks(readings: readonly ChunkReading[], span = SPAN_MS, most = MAX_READINGS): Chunk[] {
  const out: Chunk[] = [];
  let start = 0;
  let lo = Infinity;
  let hi = -Infinity;
  const flush = (end: number) => {
    if (end === start) return;
    const part = readings.slice(start, end);
    out.push({ seqFrom: part[0].seq, seqTo: part[part.length - 1].seq, timeFrom: lo, timeTo: hi, n: part.length, data: `[${part.map(encodeOne).join(',')}]` });
    start = end;
  };
  for (let i = 0; i < readings.length; i++) {
    const t = readings[i].time;
    if (i > start && (i - start >= most || Math.max(hi, t) - Math.min(lo, t) > span)) {
      flush(i);
      lo = Infinity;
      hi = -Infinity;
    }
    lo = Math.min(lo, t);
    hi = Math.max(hi, t);
  }
  flush(readings.length);
  return out;
}

/**
 * The readings of the chunks in `table` (aliased c) that pass `where`, one row each, with the columns of a
 * readings row. `->` returns the value's JSON text as stored.
 */
export function expandSql(table: string, where: string): string {
  return `SELECT e.value ->> 0 AS seq, c.device_id AS device_id, c.sensor AS sensor, c.side AS side, e.value -> 2 AS value, e.value ->> 1 AS time
    FROM ${table} c, json_each(c.data) e WHERE ${where}`;
}

/** A chunk whose readings may lie in [from, to]: SQL over a chunk row aliased c, and its parameters. */
export function chunkRange(from: number | undefined, to: number | undefined): { sql: string; params: number[] } {
  const sql: string[] = [];
  const params: number[] = [];
  if (from !== undefined) (sql.push('c.time_from >= ? AND c.time_to >= ?'), params.push(from - SPAN_MS, from));
  if (to !== undefined) (sql.push('c.time_from <= ?'), params.push(to));
  return { sql: sql.join(' AND '), params };
}

/**
 * Moves journal rows up to id ? into reading_chunks, joining each key's rows into as few chunks as the bounds
 * allow: rows whose time_from share a JOURNAL_SPAN_MS window (each row spanning at most that, the join spans
 * at most SPAN_MS) and whose readings before them in the batch fall in the same JOURNAL_READINGS part (the
 * join holds at most that plus one row's). Joining is text: each row's elements, outer brackets cut off.
 * With one reading per device per commit, a chunk then holds a device's readings of a whole move.
 */
export const MOVE_SQL = `INSERT INTO reading_chunks (${CHUNK_COLS})
  SELECT device_id, sensor, side, MIN(seq_from), MAX(seq_to), MIN(time_from), MAX(time_to), SUM(n),
    '[' || group_concat(substr(data, 2, length(data) - 2), ',' ORDER BY id) || ']'
  FROM (SELECT *, (SUM(n) OVER (PARTITION BY device_id, sensor, side ORDER BY id) - n) / ${JOURNAL_READINGS} AS part
    FROM readings_journal WHERE id <= ?)
  GROUP BY device_id, sensor, side, time_from / ${JOURNAL_SPAN_MS}, part`;
