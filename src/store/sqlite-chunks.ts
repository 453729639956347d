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
 * Characters of a chunk's data at most (about a 4 KiB page), unless one reading alone holds more. A read
 * expands every reading of a chunk it touches, and SQLite's JSON functions go over each element's text
 * several times: large values stay alone, read without json_each (history of 6 KB values was 8 × slower
 * in chunks of 1 000 than in rows).
 */
export const MAX_CHUNK_CHARS = 4000;

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
 * times more than SPAN_MS apart (a clock set back), or it past MAX_READINGS or MAX_CHUNK_CHARS.
 */
export function toChunks(readings: readonly ChunkReading[]): Chunk[] {
  const out: Chunk[] = [];
  let start = 0;
  let lo = Infinity;
  let hi = -Infinity;
  let chars = 0;
  const texts = readings.map(encodeOne);
  const flush = (end: number) => {
    if (end === start) return;
    out.push({ seqFrom: readings[start].seq, seqTo: readings[end - 1].seq, timeFrom: lo, timeTo: hi, n: end - start, data: `[${texts.slice(start, end).join(',')}]` });
    start = end;
  };
  for (let i = 0; i < readings.length; i++) {
    const t = readings[i].time;
    if (i > start && (i - start >= MAX_READINGS || Math.max(hi, t) - Math.min(lo, t) > SPAN_MS || chars + texts[i].length + 1 > MAX_CHUNK_CHARS)) {
      flush(i);
      lo = Infinity;
      hi = -Infinity;
      chars = 0;
    }
    lo = Math.min(lo, t);
    hi = Math.max(hi, t);
    chars += texts[i].length + 1;
  }
  flush(readings.length);
  return out;
}

/** The value's text in a chunk of one reading, `[[seq,time,value]]`: cut out, not parsed. */
const ONE_VALUE = 'substr(c.data, length(c.seq_from) + length(c.time_from) + 5, length(c.data) - length(c.seq_from) - length(c.time_from) - 6)';

/**
 * The readings of the chunks in `table` (aliased c) that pass `where`, one row each, with the columns of a
 * readings row. `->` returns the value's JSON text as stored. A chunk of one reading (a sensor written less
 * often than the journal moves, or a large value) is read without JSON functions, which cost about as much
 * again per row.
 * `where` appears twice: its parameters are bound twice.
 */
export function expandSql(table: string, where: string): string {
  return `SELECT c.seq_from AS seq, c.device_id AS device_id, c.sensor AS sensor, c.side AS side, ${ONE_VALUE} AS value, c.time_from AS time
    FROM ${table} c WHERE c.n = 1 AND ${where}
    UNION ALL
    SELECT e.value ->> 0 AS seq, c.device_id AS device_id, c.sensor AS sensor, c.side AS side, e.value -> 2 AS value, e.value ->> 1 AS time
    FROM ${table} c, json_each(c.data) e WHERE c.n > 1 AND ${where}`;
}

/** A chunk whose readings may lie in [from, to]: SQL over a chunk row aliased c, and its parameters. */
export function chunkRange(from: number | undefined, to: number | undefined): { sql: string; params: number[] } {
  const sql: string[] = [];
  const params: number[] = [];
  if (from !== undefined) (sql.push('c.time_from >= ? AND c.time_to >= ?'), params.push(from - SPAN_MS, from));
  if (to !== undefined) (sql.push('c.time_from <= ?'), params.push(to));
  return { sql: sql.join(' AND '), params };
}

/** A chunk row as the journal holds it, in CHUNK_COLS order: device_id, sensor, side, seq_from, seq_to, time_from, time_to, n, data. */
export type ChunkRow = [string, string, string, number, number, number, number, number, string];

/**
 * Joins each key's journal rows (in id order, so in seq order) into as few chunks as SPAN_MS and MAX_READINGS
 * allow. Joining is text: each row's elements with its outer brackets cut off, no JSON parsing. With one
 * reading per device per commit, a chunk then holds a device's readings of a whole move, not one.
 */
export function joinRows(rows: readonly (ChunkRow | JournalRow)[]): ChunkRow[] {
  const open = new Map<string, { row: ChunkRow; parts: string[]; chars: number }>();
  const out: ChunkRow[] = [];
  const close = (g: { row: ChunkRow; parts: string[]; chars: number }) => {
    if (g.parts.length > 1) g.row[8] = `[${g.parts.map((p) => p.slice(1, -1)).join(',')}]`;
    out.push(g.row);
  };
  for (const r of rows) {
    const key = `${r[0]}\u0000${r[1]}\u0000${r[2]}`;
    const g = open.get(key);
    if (g) {
      const j = g.row;
      const from = Math.min(j[5], r[5]);
      const to = Math.max(j[6], r[6]);
      if (j[7] + r[7] <= MAX_READINGS && to - from <= SPAN_MS && g.chars + r[8].length <= MAX_CHUNK_CHARS) {
        j[4] = r[4];
        j[5] = from;
        j[6] = to;
        j[7] += r[7];
        g.parts.push(r[8]);
        g.chars += r[8].length;
        continue;
      }
      close(g);
    }
    // Only CHUNK_COLS: a row read with its journal id after them gives a chunk row without it.
    open.set(key, { row: r.slice(0, 9) as ChunkRow, parts: [r[8]], chars: r[8].length });
  }
  for (const g of open.values()) close(g);
  return out;
}

/** A journal row as a stepwise move reads it: CHUNK_COLS, then its id. */
export type JournalRow = [...ChunkRow, number];

/**
 * Journal rows (in id order) split into slices of at most `keys` keys, each key's rows whole and in order within
 * one slice, so a slice's move makes the same chunks a move of all the rows would.
 */
export function slicesByKey(rows: readonly JournalRow[], keys: number): JournalRow[][] {
  const byKey = new Map<string, JournalRow[]>();
  for (const r of rows) {
    const key = `${r[0]}\u0000${r[1]}\u0000${r[2]}`;
    const list = byKey.get(key);
    if (list) list.push(r);
    else byKey.set(key, [r]);
  }
  const out: JournalRow[][] = [];
  let slice: JournalRow[] = [];
  let inSlice = 0;
  for (const list of byKey.values()) {
    if (inSlice === keys) {
      out.push(slice);
      slice = [];
      inSlice = 0;
    }
    for (const r of list) slice.push(r);
    inSlice++;
  }
  if (slice.length > 0) out.push(slice);
  return out;
}
