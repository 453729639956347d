import path from 'node:path';
import type { Config } from '../config.js';
import { hideUrlPasswords } from '../log.js';
import type { Logger } from '../log.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './types.js';

export type { Store } from './types.js';

/** The one place a store is chosen from config. */
export async function createStore(config: Pick<Config, 'store' | 'dataDir'> & Partial<Pick<Config, 'storePool'>>, log?: Logger): Promise<Store> {
  const url = config.store;
  if (url === 'sqlite' || url.startsWith('sqlite:')) {
    const store = new SqliteStore(url === 'sqlite' ? path.join(config.dataDir, 'iotc.db') : url.slice('sqlite:'.length));
    for (const warning of store.permissionWarnings) log?.warn(warning);
    return store;
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    // Loaded only when chosen: a hub on the embedded default never holds pg's code in memory.
    const { PostgresStore } = await import('./postgres.js');
    return PostgresStore.open(url, { poolSize: config.storePool, log: log?.child({ component: 'postgres' }) });
  }
  throw new Error(`Store "${url}" is not supported; use "sqlite", "sqlite:FILE" or "postgres://user@host:5432/db"`);
}

/** Where the store keeps its data, for logs, without credentials. */
export function describeStore(config: Pick<Config, 'store' | 'dataDir'>): string {
  if (config.store === 'sqlite') return path.resolve(config.dataDir, 'iotc.db');
  if (config.store.startsWith('sqlite:')) return path.resolve(config.store.slice('sqlite:'.length));
  return hideUrlPasswords(config.store);
}

/** The SQLite file the config points at, or null for PostgreSQL. */
export function sqliteFileOf(config: Pick<Config, 'store' | 'dataDir'>): string | null {
  if (config.store === 'sqlite') return path.join(config.dataDir, 'iotc.db');
  if (config.store.startsWith('sqlite:')) return config.store.slice('sqlite:'.length);
  return null;
}
