/** A SQLite store for tests of its chunks: two devices of their own, and a journal that moves only when told. */
import path from 'node:path';
import { SqliteStore } from '../src/store/sqlite.js';
import { tempDir } from './helpers.js';

export const DEVICES = ['A'.repeat(20), 'B'.repeat(20)];

/** A small deterministic generator, so a failure can be replayed. */
export function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

export async function newStore(file: string): Promise<SqliteStore> {
  // The journal moves only when a test says so.
  const store = new SqliteStore(file, { everyMs: 3_600_000, batch: 7 });
  for (const id of DEVICES) {
    const user = await store.createUser({ email: `${id}@example.com`, name: 'T', passwordHash: 'x' });
    await store.createDevice({ id, userId: user.id, name: 'dev', keyHash: 'h' });
  }
  return store;
}

/** Runs `fn` on a new store in a directory of its own, removed afterwards. */
export async function withStore(fn: (store: SqliteStore) => Promise<void>): Promise<void> {
  const { dir, cleanup } = tempDir();
  const store = await newStore(path.join(dir, 'chunks.db'));
  try {
    await fn(store);
  } finally {
    await store.close();
    cleanup();
  }
}
