import fs from 'node:fs';
import path from 'node:path';

/**
 * Readings, password hashes and session hashes live in the SQLite files: only the hub's own user may read
 * them. A new data dir is made 0700 and a new database file 0600 before SQLite opens it; SQLite gives its
 * -wal and -shm files the database file's mode. Existing files keep their mode (the operator may share them
 * on purpose, e.g. with a backup group): what others can read is returned as warnings to log at start.
 */
export function secureSqliteFile(file: string): string[] {
  // The folder exists already: prepareDatabaseFile (data-dir.ts) made it, 0700, or said why it could not.
  const dir = path.dirname(path.resolve(file));
  try {
    fs.closeSync(fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const warnings: string[] = [];
  for (const [what, where] of [['data dir', dir], ['database file', file]] as const) {
    const mode = fs.statSync(where).mode & 0o777;
    if (mode & 0o077) {
      warnings.push(`The ${what} ${where} can be read by other users of this machine (mode ${mode.toString(8)}): run chmod ${what === 'data dir' ? '700' : '600'} ${where}`);
    }
  }
  return warnings;
}
