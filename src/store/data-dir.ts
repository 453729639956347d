import fs from 'node:fs';
import path from 'node:path';

/** A folder or file IOTcommunicate cannot use, with the path and the reason in words. */
export class DataDirError extends Error {
  override name = 'DataDirError';
}

const REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'it is on a read-only file system',
  ENOTDIR: 'a part of the path is a file, not a folder',
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is used up',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the path is too long',
};

function reason(err: NodeJS.ErrnoException): string {
  return REASONS[err.code ?? ''] ?? err.message;
}

const HINT = 'choose another folder with --data-dir / IOTC_DATA_DIR';
/** What to do about it: permissions can be fixed, a file system or a typo cannot. */
function hint(err?: NodeJS.ErrnoException): string {
  return err?.code === 'EACCES' || err?.code === 'EPERM' ? `${HINT}, or give this user write access to it` : HINT;
}

/**
 * Makes sure `dir` exists and this process may write in it, or throws a DataDirError naming it.
 * Creates missing folders one level at a time: fs.mkdirSync(…, { recursive: true }) loops forever when a parent
 * exists but cannot hold folders (a path under /proc, a dangling symlink), so a typo never hangs the server.
 */
export function prepareDirectory(dir: string): string {
  const target = path.resolve(dir);
  const missing: string[] = [];
  let existing = target;
  while (!fs.existsSync(existing)) {
    missing.unshift(existing);
    const parent = path.dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  let stat: fs.Stats;
  try {
    stat = fs.statSync(existing);
  } catch (err) {
    throw new DataDirError(`Cannot use the data dir ${target}: ${reason(err as NodeJS.ErrnoException)}; ${hint(err as NodeJS.ErrnoException)}`);
  }
  if (!stat.isDirectory()) throw new DataDirError(`Cannot use the data dir ${target}: ${existing} is a file, not a folder; ${HINT}`);
  for (const folder of missing) {
    try {
      // Only the hub's own user may look inside: see file-modes.ts.
      fs.mkdirSync(folder, { mode: 0o700 });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // ENOENT for a folder whose parent exists: the parent cannot hold folders (/proc, a dangling link).
      const why = e.code === 'ENOENT' || e.code === 'EEXIST' ? `${path.dirname(folder)} cannot hold folders` : reason(e);
      throw new DataDirError(`Cannot create the data dir ${target}: ${why}; ${hint(e)}`);
    }
  }
  try {
    fs.accessSync(target, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    throw new DataDirError(`Cannot write to the data dir ${target}: ${reason(err as NodeJS.ErrnoException)}; ${hint(err as NodeJS.ErrnoException)}`);
  }
  return target;
}

/** The same check for a database file: its folder, and the file itself when it exists. */
export function prepareDatabaseFile(file: string): void {
  prepareDirectory(path.dirname(path.resolve(file)));
  if (!fs.existsSync(file)) return;
  try {
    fs.accessSync(file, fs.constants.R_OK | fs.constants.W_OK);
  } catch (err) {
    throw new DataDirError(`Cannot write to the database ${path.resolve(file)}: ${reason(err as NodeJS.ErrnoException)}; ${hint(err as NodeJS.ErrnoException)}`);
  }
}

/** An error from opening a database file, told with its path: SQLite's own says only "unable to open database file". */
export function databaseOpenError(file: string, err: Error): Error {
  if (err instanceof DataDirError) return err;
  return new DataDirError(`Cannot open the database ${path.resolve(file)}: ${err.message}; ${HINT}`);
}
