import Database from 'better-sqlite3';
import pg from 'pg';
import { parsePostgresUrl } from './postgres-connection.js';
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

const cols = (c: readonly string[]) => c.map((n) => `"${n}"`).join(', ');

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

export class PostgresTransferDb implements TransferDb {
  readonly kind = 'postgres';

  private constructor(private readonly client: pg.Client) {}

  static async open(url: string): Promise<PostgresTransferDb> {
    const target = parsePostgresUrl(url);
    const client = new pg.Client({
      connectionString: target.connectionString,
      application_name: 'iotcommunicate-transfer',
      // BIGINT columns hold ids and ms timestamps, all below 2^53.
      types: { getTypeParser: ((oid: number, format?: string) => (oid === 20 ? (v: string) => Number(v) : (pg.types.getTypeParser as (o: number, f?: string) => unknown)(oid, format))) as never },
      ...(target.schema ? { options: `-c search_path="${target.schema}"` } : {}),
    });
    await client.connect();
    return new PostgresTransferDb(client);
  }

  async schemaVersion() {
    const { rows } = await this.client.query<{ v: number }>('SELECT COALESCE(MAX(version), 0)::int AS v FROM schema_migrations');
    return rows[0].v;
  }
  async tables() {
    const { rows } = await this.client.query<{ t: string }>(
      "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
    );
    return rows.map((r) => r.t);
  }
  async columns(table: string) {
    const { rows } = await this.client.query<{ c: string }>(
      'SELECT column_name AS c FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position',
      [table],
    );
    return rows.map((r) => r.c);
  }
  async count(spec: TableSpec) {
    const { rows } = await this.client.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM "${spec.name}"`);
    return rows[0].n;
  }
  async beginRead() {
    await this.client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  }
  async endRead() {
    await this.client.query('COMMIT');
  }
  async *rows(spec: TableSpec, batch: number): AsyncIterable<unknown[][]> {
    // Keyset pages: each page starts after the last key of the one before, so a big table costs no more per page.
    const keyIdx = spec.key.map((k) => spec.columns.indexOf(k));
    let after: unknown[] | null = null;
    for (;;) {
      const where: string = after ? `WHERE (${cols(spec.key)}) > (${spec.key.map((_, i) => `$${i + 1}`).join(', ')})` : '';
      const res: pg.QueryArrayResult<unknown[]> = await this.client.query({
        text: `SELECT ${cols(spec.columns)} FROM "${spec.name}" ${where} ORDER BY ${cols(spec.key)} LIMIT ${batch}`,
        values: after ?? [],
        rowMode: 'array',
      });
      if (res.rows.length > 0) yield res.rows;
      if (res.rows.length < batch) return;
      const last = res.rows[res.rows.length - 1];
      after = keyIdx.map((i) => last[i]);
    }
  }
  async begin() {
    await this.client.query('BEGIN');
  }
  async commit() {
    await this.client.query('COMMIT');
  }
  async rollback() {
    await this.client.query('ROLLBACK').catch(() => {});
  }
  async clear(spec: TableSpec) {
    await this.client.query(`DELETE FROM "${spec.name}"`);
  }
  async insert(spec: TableSpec, columns: readonly string[], rows: unknown[][]) {
    const values: unknown[] = [];
    const tuples = rows.map((row) => `(${row.map((v) => (values.push(v), `$${values.length}`)).join(', ')})`);
    const overriding = spec.identity ? 'OVERRIDING SYSTEM VALUE' : '';
    await this.client.query(`INSERT INTO "${spec.name}" (${cols(columns)}) ${overriding} VALUES ${tuples.join(', ')}`, values);
  }
  async resetCounters(specs: readonly TableSpec[]) {
    for (const spec of specs) {
      if (!spec.identity) continue;
      await this.client.query(
        `SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT MAX("${spec.identity}") FROM "${spec.name}"), 0) + 1, false)`,
        [spec.name, spec.identity],
      );
    }
  }
  async close() {
    await this.client.end();
  }
}
