import fs from 'node:fs';
import readline from 'node:readline';
import type { Config } from '../config.js';
import { createStore, sqliteFileOf } from './index.js';
import { runningServer } from '../instance.js';
import { SqliteTransferDb } from './transfer-db.js';
import type { TransferDb } from './transfer-db.js';
import { MOVED_TABLES, NOT_MOVED, unknownTables } from './transfer-tables.js';
import type { TableSpec } from './transfer-tables.js';

/**
 * The export format, JSON Lines:
 *   {"format":"iotcommunicate-export","version":1,"store":"sqlite","schema":2,"created":"…"}
 *   {"table":"users","columns":["id","email",…]}
 *   [1,"me@example.com",…]                      one line per row, values in the columns' order
 *   {"end":"users","rows":1}
 *   … every table of MOVED_TABLES in order …
 *   {"end":"export","tables":{"users":1,…}}     a file without this line was cut short
 */
export const EXPORT_FORMAT = 'iotcommunicate-export';
export const EXPORT_VERSION = 1;
const BATCH = 1000;

export class TransferError extends Error {
  override name = 'TransferError';
}

export type TableCounts = Record<string, number>;

async function openTransferDb(config: Pick<Config, 'store' | 'dataDir' | 'storePool'>): Promise<TransferDb> {
  // Through the store first: a database is created or brought to this version's schema, as the server would.
  await (await createStore({ ...config, storePool: 1 })).close();
  const file = sqliteFileOf(config);
  if (file) return new SqliteTransferDb(file);
  const { PostgresTransferDb } = await import('./transfer-postgres.js');
  return PostgresTransferDb.open(config.store);
}

/** Refuses a store holding a table or a column this version would leave behind. */
async function checkKnown(db: TransferDb): Promise<void> {
  const unknown = unknownTables(await db.tables());
  if (unknown.length > 0) {
    throw new TransferError(
      `The store has table(s) ${unknown.join(', ')} that export/import does not know: nothing was moved. ` +
        'Add each to MOVED_TABLES or NOT_MOVED in src/store/transfer-tables.ts',
    );
  }
  for (const spec of MOVED_TABLES) {
    const actual = await db.columns(spec.name);
    const extra = actual.filter((c) => !spec.columns.includes(c));
    const missing = spec.columns.filter((c) => !actual.includes(c));
    if (extra.length > 0 || missing.length > 0) {
      throw new TransferError(
        `Table ${spec.name} does not have the columns export/import knows` +
          `${extra.length ? ` (unknown: ${extra.join(', ')})` : ''}${missing.length ? ` (missing: ${missing.join(', ')})` : ''}: update src/store/transfer-tables.ts`,
      );
    }
  }
}

export function describeCounts(counts: TableCounts): string {
  return Object.entries(counts).map(([t, n]) => `${t} ${n}`).join(', ');
}

/** Writes every moved table of the configured store to `file`, from one consistent snapshot. */
export async function exportStore(config: Pick<Config, 'store' | 'dataDir' | 'storePool'>, file: string, opts: { force?: boolean } = {}): Promise<TableCounts> {
  if (fs.existsSync(file) && !opts.force) throw new TransferError(`${file} already exists: pick another name, or add --force to replace it`);
  const db = await openTransferDb(config);
  const partial = `${file}.partial`;
  // It holds password and key hashes: readable by the hub's user only.
  const out = fs.createWriteStream(partial, { mode: 0o600 });
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => {});
  const write = async (value: unknown) => {
    if (!out.write(JSON.stringify(value) + '\n')) await Promise.race([new Promise<void>((r) => out.once('drain', () => r())), failed]);
  };
  const counts: TableCounts = {};
  try {
    await checkKnown(db);
    await db.beginRead();
    try {
      await write({ format: EXPORT_FORMAT, version: EXPORT_VERSION, store: db.kind, schema: await db.schemaVersion(), created: new Date().toISOString() });
      for (const spec of MOVED_TABLES) {
        await write({ table: spec.name, columns: spec.columns });
        let n = 0;
        for await (const rows of db.rows(spec, BATCH)) {
          for (const row of rows) await write(row);
          n += rows.length;
        }
        await write({ end: spec.name, rows: n });
        counts[spec.name] = n;
      }
      await write({ end: 'export', tables: counts });
    } finally {
      await db.endRead();
    }
    await Promise.race([new Promise<void>((resolve) => out.end(resolve)), failed]);
    fs.renameSync(partial, file);
    return counts;
  } catch (err) {
    out.destroy();
    fs.rmSync(partial, { force: true });
    throw err;
  } finally {
    await db.close();
  }
}

type Line = { kind: 'object'; value: Record<string, unknown> } | { kind: 'row'; value: unknown[] };

async function* lines(file: string): AsyncIterable<Line & { n: number }> {
  let n = 0;
  for await (const text of readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity })) {
    n++;
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new TransferError(`Line ${n} of ${file} is not JSON: the file is damaged`);
    }
    if (Array.isArray(value)) yield { kind: 'row', value, n };
    else if (value && typeof value === 'object') yield { kind: 'object', value: value as Record<string, unknown>, n };
    else throw new TransferError(`Line ${n} of ${file} is neither a row nor a section line`);
  }
}

/**
 * Reads an export into the configured store, in one transaction: all of it or, on any problem, none of it.
 * Refuses a store that holds data unless `force` (then what it held is replaced).
 */
export async function importStore(config: Pick<Config, 'store' | 'dataDir' | 'storePool'>, file: string, opts: { force?: boolean } = {}): Promise<TableCounts> {
  if (!fs.existsSync(file)) throw new TransferError(`There is no file ${file} to import`);
  const sqliteFile = sqliteFileOf(config);
  const running = sqliteFile ? runningServer(config) : null;
  if (running !== null) throw new TransferError(`A server (${running}) is running on ${sqliteFile}: stop it before importing`);
  const db = await openTransferDb(config);
  try {
    await checkKnown(db);
    const held = (await Promise.all(MOVED_TABLES.map(async (s) => [s.name, await db.count(s)] as const))).filter(([, n]) => n > 0);
    if (held.length > 0 && !opts.force) {
      throw new TransferError(`The store is not empty (${held.map(([t, n]) => `${t} ${n}`).join(', ')}): import into an empty store, or add --force to replace what it holds`);
    }
    await db.begin();
    try {
      const counts = await readInto(db, file);
      await db.resetCounters(MOVED_TABLES);
      for (const spec of MOVED_TABLES) {
        const n = await db.count(spec);
        if (n !== counts[spec.name]) throw new TransferError(`Table ${spec.name} holds ${n} rows after the import, but the file has ${counts[spec.name]}: nothing was imported`);
      }
      await db.commit();
      return counts;
    } catch (err) {
      await db.rollback();
      throw err;
    }
  } finally {
    await db.close();
  }
}

async function readInto(db: TransferDb, file: string): Promise<TableCounts> {
  const counts: TableCounts = {};
  let header: Record<string, unknown> | null = null;
  let table: { spec: TableSpec; columns: string[]; rows: unknown[][]; n: number } | null = null;
  let ended = false;
  const flush = async () => {
    if (table && table.rows.length > 0) await db.insert(table.spec, table.columns, table.rows);
    if (table) table.rows = [];
  };
  for await (const line of lines(file)) {
    const where = `line ${line.n} of ${file}`;
    if (ended) throw new TransferError(`${where}: more after the end of the export`);
    if (!header) {
      header = line.kind === 'object' ? line.value : null;
      if (header?.format !== EXPORT_FORMAT) throw new TransferError(`${file} is not an IOTcommunicate export (its first line has no "format":"${EXPORT_FORMAT}")`);
      if (header.version !== EXPORT_VERSION) throw new TransferError(`${file} is export format version ${String(header.version)}; this IOTcommunicate reads version ${EXPORT_VERSION}`);
      // The store is cleared here, inside the transaction, so a file refused above leaves it as it was.
      for (const spec of [...MOVED_TABLES].reverse()) await db.clear(spec);
      continue;
    }
    if (line.kind === 'row') {
      if (!table) throw new TransferError(`${where}: a row outside any table`);
      if (line.value.length !== table.columns.length) throw new TransferError(`${where}: ${line.value.length} values for ${table.columns.length} columns of ${table.spec.name}`);
      table.rows.push(line.value);
      table.n++;
      if (table.rows.length >= BATCH) await flush();
      continue;
    }
    const v = line.value;
    if (typeof v.table === 'string') {
      if (table) throw new TransferError(`${where}: table ${v.table} starts before ${table.spec.name} ended`);
      const spec = MOVED_TABLES.find((s) => s.name === v.table);
      if (!spec) {
        const why = NOT_MOVED[v.table] ? ` (${NOT_MOVED[v.table]})` : '';
        throw new TransferError(`${where}: table ${v.table} is not one this IOTcommunicate imports${why}: nothing was imported. A newer version may have written it`);
      }
      if (v.table in counts) throw new TransferError(`${where}: table ${v.table} appears twice`);
      const columns = Array.isArray(v.columns) ? v.columns.map(String) : [];
      const unknown = columns.filter((c) => !spec.columns.includes(c));
      const missing = spec.columns.filter((c) => !columns.includes(c));
      if (unknown.length || missing.length) {
        throw new TransferError(`${where}: the columns of ${spec.name} do not match this version's${unknown.length ? ` (unknown: ${unknown.join(', ')})` : ''}${missing.length ? ` (missing: ${missing.join(', ')})` : ''}`);
      }
      table = { spec, columns, rows: [], n: 0 };
    } else if (v.end === 'export') {
      if (table) throw new TransferError(`${where}: the export ends inside table ${table.spec.name}`);
      const declared = (v.tables ?? {}) as TableCounts;
      for (const spec of MOVED_TABLES) {
        if (!(spec.name in counts)) throw new TransferError(`${file} has no table ${spec.name}: nothing was imported`);
        if (declared[spec.name] !== counts[spec.name]) throw new TransferError(`${file} declares ${declared[spec.name]} rows of ${spec.name} but holds ${counts[spec.name]}`);
      }
      ended = true;
    } else if (typeof v.end === 'string') {
      if (!table || table.spec.name !== v.end) throw new TransferError(`${where}: end of ${v.end}, which is not the open table`);
      if (v.rows !== table.n) throw new TransferError(`${where}: ${table.spec.name} declares ${String(v.rows)} rows but has ${table.n}: the file is damaged`);
      await flush();
      counts[table.spec.name] = table.n;
      table = null;
    } else {
      throw new TransferError(`${where}: a line this IOTcommunicate does not understand`);
    }
  }
  if (!header) throw new TransferError(`${file} is empty`);
  if (!ended) throw new TransferError(`${file} was cut short (no end line): nothing was imported`);
  return counts;
}
