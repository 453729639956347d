import pg from 'pg';
import { parsePostgresUrl, typeParsers } from './postgres-connection.js';
import { cols } from './transfer-db.js';
import type { TransferDb } from './transfer-db.js';
import type { TableSpec } from './transfer-tables.js';

/** Export and import on PostgreSQL: its own module, so the CLI loads pg only for a PostgreSQL store. */
export class PostgresTransferDb implements TransferDb {
  readonly kind = 'postgres';

  private constructor(private readonly client: pg.Client) {}

  static async open(url: string): Promise<PostgresTransferDb> {
    const target = parsePostgresUrl(url);
    const client = new pg.Client({
      connectionString: target.connectionString,
      application_name: 'iotcommunicate-transfer',
      types: typeParsers,
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
