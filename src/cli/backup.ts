import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Config } from '../config.js';
import { secureSqliteFile } from '../store/file-modes.js';
import { sqliteFileOf } from '../store/index.js';
import { runningServer } from '../instance.js';
import { prepareDatabaseFile } from '../store/data-dir.js';
import { SqliteStore } from '../store/sqlite.js';
import { SQLITE_MIGRATIONS } from '../store/sqlite-migrations.js';

/** A refusal or failure of backup/restore, printed as is (exit code 1). */
export class BackupError extends Error {
  override name = 'BackupError';
}

const PG_BACKUP_HINT =
  'With PostgreSQL, back up with its own tools: pg_dump --format=custom --file=iotc.dump DBURL, and restore with ' +
  'pg_restore --clean --if-exists --dbname=DBURL iotc.dump (see docs/deploy.md); or use iotc export/import, which work with either store';

function sqliteTarget(config: Pick<Config, 'store' | 'dataDir'>): string {
  const file = sqliteFileOf(config);
  if (!file) throw new BackupError(`iotc backup and restore copy the embedded SQLite database. ${PG_BACKUP_HINT}.`);
  return file;
}

/** Rows in each of the hub's main tables, for what the commands print and to tell an empty database. */
function counts(db: Database.Database): { users: number; devices: number; readings: number } {
  const has = (t: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(t) !== undefined;
  const n = (t: string) => (has(t) ? (db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n : 0);
  // Since migration 10 readings are chunks holding n readings each (readings is a view over them).
  const sum = (t: string) => (db.prepare(`SELECT COALESCE(SUM(n), 0) AS n FROM ${t}`).get() as { n: number }).n;
  const readings = has('reading_chunks') ? sum('reading_chunks') + sum('readings_journal') : n('readings') + n('readings_journal');
  return { users: n('users'), devices: n('devices'), readings };
}

function describe(c: ReturnType<typeof counts>): string {
  return `${c.users} user(s), ${c.devices} device(s), ${c.readings} reading(s)`;
}

/** Opens a database file that must be an IOTcommunicate database this version can read. */
function openChecked(file: string, what: string): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(file, { fileMustExist: true });
  } catch (err) {
    throw new BackupError(`Cannot open the ${what} ${file}: ${(err as Error).message}`);
  }
  try {
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new BackupError(`The ${what} ${file} is damaged: ${String(check)}`);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version < 1 || !db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'users'").get()) {
      throw new BackupError(`The ${what} ${file} is not an IOTcommunicate database`);
    }
    if (version > SQLITE_MIGRATIONS.length) {
      throw new BackupError(`The ${what} ${file} was written by a newer IOTcommunicate (schema ${version}; this one knows up to ${SQLITE_MIGRATIONS.length}): upgrade first`);
    }
    return db;
  } catch (err) {
    db.close();
    if (err instanceof BackupError) throw err;
    throw new BackupError(`Cannot read the ${what} ${file}: ${(err as Error).message}`);
  }
}

/**
 * Copies the live database to `dest` with SQLite's online backup API: a consistent snapshot, taken while the
 * server goes on writing. The copy is written beside `dest` and renamed into place once checked, so a failed
 * backup never leaves a half file under the name.
 */
export async function backup(config: Pick<Config, 'store' | 'dataDir'>, dest: string, opts: { force?: boolean } = {}): Promise<string> {
  const source = sqliteTarget(config);
  if (!fs.existsSync(source)) throw new BackupError(`There is no database at ${source} to back up (check --data-dir / IOTC_DATA_DIR or --store)`);
  if (path.resolve(dest) === path.resolve(source)) throw new BackupError('The backup file must not be the database itself');
  if (fs.existsSync(dest) && !opts.force) throw new BackupError(`${dest} already exists: pick another name, or add --force to replace it`);
  const partial = `${dest}.partial`;
  fs.rmSync(partial, { force: true });
  const db = openChecked(source, 'database');
  try {
    db.pragma('busy_timeout = 5000');
    // After a first step, copy every remaining page in one go: a busy writer cannot make the copy start over and over.
    await db.backup(partial, { progress: ({ remainingPages }) => Math.max(remainingPages, 100) });
  } catch (err) {
    fs.rmSync(partial, { force: true });
    throw new BackupError(`Backup failed: ${(err as Error).message}`);
  } finally {
    db.close();
  }
  const copy = openChecked(partial, 'backup');
  let summary: string;
  try {
    // One self-contained file (no -wal beside it), safe to copy elsewhere as is.
    copy.pragma('journal_mode = DELETE');
    summary = describe(counts(copy));
  } finally {
    copy.close();
  }
  // It holds password and key hashes: readable by the hub's user only.
  fs.chmodSync(partial, 0o600);
  fs.renameSync(partial, dest);
  return `backed up ${source} to ${dest}: ${summary}`;
}

/**
 * Puts a backup in place of the configured database. Refuses while a server runs on it, and refuses to replace
 * a database holding anything unless `force`. The restored file is upgraded to this version's schema at once.
 */
export async function restore(config: Pick<Config, 'store' | 'dataDir'>, from: string, opts: { force?: boolean } = {}): Promise<string> {
  const target = sqliteTarget(config);
  const running = runningServer(config);
  if (running !== null) throw new BackupError(`A server (${running}) is running on ${target}: stop it before restoring`);
  const src = openChecked(from, 'backup');
  const summary = describe(counts(src));
  src.close();
  if (fs.existsSync(target) && fs.statSync(target).size > 0) {
    let holds: string | null;
    try {
      const db = new Database(target, { fileMustExist: true });
      try {
        const c = counts(db);
        holds = c.users + c.devices + c.readings > 0 ? describe(c) : null;
      } finally {
        db.close();
      }
    } catch (err) {
      holds = `a database that does not open (${(err as Error).message})`;
    }
    if (holds && !opts.force) throw new BackupError(`${target} is not empty (it holds ${holds}): restore into an empty data dir, or add --force to replace it`);
  }
  prepareDatabaseFile(target);
  secureSqliteFile(target);
  const incoming = `${target}.restoring`;
  fs.copyFileSync(from, incoming);
  fs.chmodSync(incoming, 0o600);
  // The old database's write-ahead log belongs to the old file: it must not be replayed into the restored one.
  for (const suffix of ['-wal', '-shm', '-journal']) fs.rmSync(target + suffix, { force: true });
  fs.renameSync(incoming, target);
  // Open once through the store: a backup from an earlier version is upgraded now, not at the server's start.
  await new SqliteStore(target).close();
  return `restored ${from} into ${target}: ${summary}`;
}
