import Database from 'better-sqlite3';
import { databaseOpenError, prepareDatabaseFile } from './data-dir.js';
import { secureSqliteFile } from './file-modes.js';
import { SQLITE_MIGRATIONS } from './sqlite-migrations.js';

/** Applies pending migrations in one transaction; refuses a database written by a newer IOTcommunicate. */
export function migrateSqlite(db: Database.Database, file: string): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  const known = SQLITE_MIGRATIONS.length;
  if (current > known) {
    throw new Error(
      `The database ${file} is at schema version ${current}, but this IOTcommunicate knows only up to ${known}. ` +
        'It was written by a newer version: upgrade IOTcommunicate, or point --data-dir/IOTC_STORE at another database.',
    );
  }
  if (current === known) return;
  db.transaction(() => {
    for (let v = current; v < known; v++) db.exec(SQLITE_MIGRATIONS[v]);
    db.pragma(`user_version = ${known}`);
  }).immediate();
}

/**
 * Opens the store's file, set up and migrated. `permissionWarnings` is what other users of the machine
 * could read (see secureSqliteFile), logged at start.
 */
export function openSqlite(file: string): { db: Database.Database; permissionWarnings: string[] } {
  if (file !== ':memory:') prepareDatabaseFile(file);
  const permissionWarnings = file === ':memory:' ? [] : secureSqliteFile(file);
  let db: Database.Database;
  try {
    db = new Database(file);
  } catch (err) {
    throw databaseOpenError(file, err as Error);
  }
  // WAL keeps readers off the writer's back; NORMAL syncs at checkpoints only, which loses nothing
  // on a process crash (the WAL is in the OS already), so "ack after commit" holds for crashes.
  try {
    db.pragma('journal_mode = WAL');
  } catch (err) {
    db.close();
    throw databaseOpenError(file, err as Error);
  }
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  try {
    migrateSqlite(db, file);
  } catch (err) {
    // A refused or failed database must not stay open behind the error (the caller may retry or move the file).
    db.close();
    throw err;
  }
  return { db, permissionWarnings };
}
