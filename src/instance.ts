import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { ServerAddresses } from './addresses.js';
import type { Config } from './config.js';
import { prepareDirectory } from './store/data-dir.js';

/**
 * One server per SQLite database, and what it publishes for the CLI.
 *
 * The lock is an SQLite file held in an exclusive transaction for the server's life. The operating system drops
 * the lock when the process ends, however it ends, so a crash never leaves a stale lock and a reused pid never
 * blocks a start. Beside it, server.json says which process holds it and where it listens; the CLI reads it to
 * print the ports actually in use, and asks the lock (not the pid) whether the server is still running.
 * With PostgreSQL several nodes share the database on purpose: no lock, nothing published.
 */
export interface ServerInfo {
  pid: number;
  startedAt: string;
  node: string;
  store: string;
  /** Null while the server is still starting. */
  addresses: ServerAddresses | null;
}

export interface InstanceFiles {
  lock: string;
  info: string;
  /** The folder the files live in, for messages. */
  dir: string;
}

/** Where the lock and server.json live: the data dir for the default store, beside the file for sqlite:FILE. */
export function instanceFiles(config: Pick<Config, 'store' | 'dataDir'>): InstanceFiles | null {
  if (config.store === 'sqlite') {
    const dir = path.resolve(config.dataDir);
    return { dir, lock: path.join(dir, 'server.lock'), info: path.join(dir, 'server.json') };
  }
  if (config.store.startsWith('sqlite:')) {
    const file = path.resolve(config.store.slice('sqlite:'.length));
    return { dir: path.dirname(file), lock: `${file}.lock`, info: `${file}.server.json` };
  }
  return null;
}

export class ServerAlreadyRunning extends Error {
  override name = 'ServerAlreadyRunning';
}

function readInfo(file: string): ServerInfo | null {
  try {
    const info = JSON.parse(fs.readFileSync(file, 'utf8')) as ServerInfo;
    return typeof info.pid === 'number' ? info : null;
  } catch {
    return null;
  }
}

function writeInfo(file: string, info: ServerInfo): void {
  // Written aside and renamed, so a reader never sees half a file.
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(info, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

const isBusy = (err: unknown) => /^SQLITE_BUSY/.test((err as { code?: string }).code ?? '');

/** Tries to take the lock; null when another connection holds it. */
function takeLock(file: string, waitMs: number): Database.Database | null {
  const db = new Database(file, { timeout: waitMs });
  try {
    db.pragma('journal_mode = MEMORY');
    db.exec('BEGIN EXCLUSIVE');
    return db;
  } catch (err) {
    db.close();
    if (isBusy(err)) return null;
    throw err;
  }
}

export class InstanceLock {
  private constructor(
    private readonly files: InstanceFiles,
    private readonly db: Database.Database,
    private info: ServerInfo,
  ) {}

  /**
   * Takes the database for this process, or throws ServerAlreadyRunning naming the server that has it.
   * Null for stores that several nodes share (PostgreSQL).
   */
  static claim(config: Pick<Config, 'store' | 'dataDir'>, node: string, store: string): InstanceLock | null {
    const files = instanceFiles(config);
    if (!files) return null;
    prepareDirectory(files.dir);
    // A CLI command checking whether a server runs holds the lock for a moment: wait that out.
    const db = takeLock(files.lock, 2000);
    if (!db) {
      const other = readInfo(files.info);
      const who = other ? `pid ${other.pid}${other.addresses ? `, port ${other.addresses.port}` : ''}, started ${other.startedAt}` : 'another process';
      throw new ServerAlreadyRunning(
        `Another IOTcommunicate server (${who}) is already using ${store}. Stop it first, or give this one its own ` +
          'data with --data-dir / IOTC_DATA_DIR. The iotc commands (user add, device add, …) work beside a running server.',
      );
    }
    const info: ServerInfo = { pid: process.pid, startedAt: new Date().toISOString(), node, store, addresses: null };
    try {
      writeInfo(files.info, info);
    } catch (err) {
      db.close();
      throw err;
    }
    return new InstanceLock(files, db, info);
  }

  /** Publishes where the server listens, once its doors are bound. */
  publish(addresses: ServerAddresses, node: string): void {
    this.info = { ...this.info, node, addresses };
    writeInfo(this.files.info, this.info);
  }

  /** Removes server.json (if it is still ours) and lets the next server in. */
  release(): void {
    if (readInfo(this.files.info)?.pid === process.pid) fs.rmSync(this.files.info, { force: true });
    if (this.db.open) this.db.close();
  }
}

export type ServerState =
  | { state: 'running'; info: ServerInfo | null; files: InstanceFiles }
  | { state: 'stopped'; stale: ServerInfo | null; files: InstanceFiles }
  /** PostgreSQL: servers publish nothing, the CLI cannot tell. */
  | { state: 'unknown' };

/** Whether a server runs on this config's database, and where it listens. Never blocks a server that is starting. */
export function findServer(config: Pick<Config, 'store' | 'dataDir'>): ServerState {
  const files = instanceFiles(config);
  if (!files) return { state: 'unknown' };
  if (!fs.existsSync(files.lock)) return { state: 'stopped', stale: null, files };
  let db: Database.Database | null;
  try {
    db = takeLock(files.lock, 0);
  } catch {
    return { state: 'stopped', stale: readInfo(files.info), files };
  }
  if (!db) return { state: 'running', info: readInfo(files.info), files };
  db.close();
  return { state: 'stopped', stale: readInfo(files.info), files };
}

/** Words naming the server that runs on this config's SQLite database ("process 1234"), or null when none does. */
export function runningServer(config: Pick<Config, 'store' | 'dataDir'>): string | null {
  const found = findServer(config);
  if (found.state !== 'running') return null;
  return found.info ? `process ${found.info.pid}` : 'a server still starting';
}
