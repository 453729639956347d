import path from 'node:path';
import type { Config } from '../config.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './types.js';

export type { Store } from './types.js';

/** The one place a store is chosen from config. */
export async function createStore(config: Pick<Config, 'store' | 'dataDir'>): Promise<Store> {
  const url = config.store;
  if (url === 'sqlite') return new SqliteStore(path.join(config.dataDir, 'iotc.db'));
  if (url.startsWith('sqlite:')) return new SqliteStore(url.slice('sqlite:'.length));
  throw new Error(`Store "${url}" is not supported by this build; use "sqlite" or "sqlite:FILE"`);
}

/** Where the store keeps its data, for logs, without credentials. */
export function describeStore(config: Pick<Config, 'store' | 'dataDir'>): string {
  if (config.store === 'sqlite') return path.resolve(config.dataDir, 'iotc.db');
  if (config.store.startsWith('sqlite:')) return path.resolve(config.store.slice('sqlite:'.length));
  try {
    const u = new URL(config.store);
    u.password = '';
    return u.toString();
  } catch {
    return 'store';
  }
}
