/** The store's reader thread: answers from its own connection, in order; a failing query rejects alone; it stops. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { SqliteReader } from '../src/store/sqlite-reader.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { tempDir } from './helpers.js';

test('the reader answers committed rows, rejects a bad query with its error, goes on after it, and stops', async () => {
  const tmp = tempDir();
  const file = path.join(tmp.dir, 'iotc.db');
  const store = new SqliteStore(file);
  const reader = new SqliteReader(file);
  try {
    await store.createUser({ email: 'r@example.com', name: 'R', passwordHash: 'h' });
    const [rows, bad, again] = await Promise.allSettled([
      reader.all('SELECT email FROM users WHERE name = ?', ['R']),
      reader.all('SELECT missing FROM users', []),
      reader.all('SELECT COUNT(*) AS n FROM users', []),
    ]);
    assert.deepEqual(rows, { status: 'fulfilled', value: [{ email: 'r@example.com' }] });
    assert.equal(bad.status, 'rejected');
    assert.match(String((bad as PromiseRejectedResult).reason.message), /no such column: missing/);
    assert.deepEqual(again, { status: 'fulfilled', value: [{ n: 1 }] }, 'a failed query does not stop the reader');
    // Read-only: its connection cannot write.
    await assert.rejects(reader.all('DELETE FROM users RETURNING id', []), /readonly/);
    // A user added after it started is seen by its next query.
    await store.createUser({ email: 's@example.com', name: 'S', passwordHash: 'h' });
    assert.deepEqual(await reader.all('SELECT COUNT(*) AS n FROM users', []), [{ n: 2 }]);
  } finally {
    await reader.stop();
    await store.close();
    tmp.cleanup();
  }
});
