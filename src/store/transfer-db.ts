import Database from 'better-sqlite3';
import type { TableSpec } from './transfer-tables.js';
import { CHUNK_COLS, toChunks } from './sqlite-chunks.js';

/** Row-level access to a store's tables for export and import: the same operations in each dialect. */
export interface TransferDb {
  readonly kind: 'sqlite' | 'postgres';
  schemaVersion(): Promise<number>;
  tables(): Promise<string[]>;
  columns(table: string): Promise<string[]>;
  count(spec: TableSpec): Promise<number>;
  /** Starts a read-only snapshot: everything read until endRead is one consistent moment. */
  beginRead(): Promise<void>;
  endRead(): Promise<void>;
  /** The table's rows in key order, as arrays in spec.columns order, a batch at a time. */
  rows(spec: TableSpec, batch: number): AsyncIterable<unknown[][]>;
  begin(): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  clear(spec: TableSpec): Promise<void>;
  insert(spec: TableSpec, columns: readonly string[], rows: unknown[][]): Promise<void>;
  /** Sets the database's counters past the imported rows, so new users, tokens and readings get fresh numbers. */
  resetCounters(specs: readonly TableSpec[]): Promise<void>;
  close(): Promise<void>;
}

/** Quoted column names, comma-separated, for either dialect. */
export const cols = (c: readonly string[]) => c.map((n) => `"${n}"`).join(', ');

export class SqliteTransferDb implements TransferDb {
  readonly kind = 'sqlite';
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file, { fileMustExist: true });
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
  }

  async schemaVersion() {
    return this.db.pragma('user_version', { simple: true }) as number;
  }
  async tables() {
    return (this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
  }
  async columns(table: string) {
    return (this.db.prepare('SELECT name FROM pragma_table_info(?) ORDER BY cid').all(table) as { name: string }[]).map((r) => r.name);
  }
  async count(spec: TableSpec) {
    // readings is a view over chunks (journaled or moved): their counts add up without expanding them.
    const sql = spec.name === 'readings'
      ? 'SELECT (SELECT COALESCE(SUM(n), 0) FROM reading_chunks) + (SELECT COALESCE(SUM(n), 0) FROM readings_journal) AS n'
      : `SELECT COUNT(*) AS n FROM "${spec.name}"`;
    return (this.db.prepare(sql).get() as { n: number }).n;
  }
  async beginRead() {
    this.db.exec('BEGIN');
    // A deferred transaction takes its snapshot at its first read.
    this.db.prepare('SELECT COUNT(*) FROM sqlite_master').get();
  }
  async endRead() {
    this.db.exec('COMMIT');
  }
  async *rows(spec: TableSpec, batch: number): AsyncIterable<unknown[][]> {
    const stmt = this.db.prepare(`SELECT ${cols(spec.columns)} FROM "${spec.name}" ORDER BY ${cols(spec.key)}`).raw(true);
    let rows: unknown[][] = [];
    for (const row of stmt.iterate() as IterableIterator<unknown[]>) {
      rows.push(row);
      if (rows.length >= batch) {
        yield rows;
        rows = [];
      }
    }
    if (rows.length > 0) yield rows;
  }
  async begin() {
    this.db.exec('BEGIN IMMEDIATE');
  }
  async commit() {
    this.db.exec('COMMIT');
  }
  async rollback() {
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
  }
  async clear(spec: TableSpec) {
    if (spec.name === 'readings') this.db.exec('DELETE FROM reading_chunks; DELETE FROM readings_journal');
    else this.db.exec(`DELETE FROM "${spec.name}"`);
  }
  async insert(spec: TableSpec, columns: readonly string[], rows: unknown[][]) {
    if (spec.name === 'readings') return this.insertReadings(columns, rows);
    const stmt = this.db.prepare(`INSERT INTO "${spec.name}" (${cols(columns)}) VALUES (${columns.map(() => '?').join(', ')})`);
    for (const row of rows) stmt.run(...row);
  }
  /** Readings are stored as chunks: each batch's readings of one device, sensor and side (in seq order) as few as fit. */
  private insertReadings(columns: readonly string[], rows: unknown[][]) {
    const at = (c: string) => columns.indexOf(c);
    const [seq, device, sensor, side, value, time] = ['seq', 'device_id', 'sensor', 'side', 'value', 'time'].map(at);
    const byKey = new Map<string, unknown[][]>();
    for (const row of [...rows].sort((a, b) => Number(a[seq]) - Number(b[seq]))) {
      const key = JSON.stringify([row[device], row[sensor], row[side]]);
      const list = byKey.get(key);
      if (list) list.push(row);
      else byKey.set(key, [row]);
    }
    const stmt = this.db.prepare(`INSERT INTO reading_chunks (${CHUNK_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    for (const list of byKey.values()) {
      const readings = list.map((r) => ({ seq: Number(r[seq]), time: Number(r[time]), json: String(r[value]) }));
      for (const c of toChunks(readings)) stmt.run(list[0][device], list[0][sensor], list[0][side], c.seqFrom, c.seqTo, c.timeFrom, c.timeTo, c.n, c.data);
    }
  }
  async resetCounters() {
    // New readings are numbered from reading_seq: it must start above every imported reading.
    this.db.exec('UPDATE reading_seq SET seq = MAX(seq, (SELECT COALESCE(MAX(seq_to), 0) FROM reading_chunks), (SELECT COALESCE(MAX(seq), 0) FROM latest))');
  }
  async close() {
    this.db.close();
  }
}
