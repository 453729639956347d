import type pg from 'pg';
import { CALL_COLS, FINAL_CALL_KEEP_MS, FINAL_CALLS_KEPT_PER_DEVICE, FINAL_STATES, outcomeColumns, toCall, trimFinalCalls } from './call-rows.js';
import type { CallRow } from './call-rows.js';
import type { CallOutcome, CallStore, NewCall, StoredCall } from './types.js';

export interface PostgresAccess {
  q<R extends pg.QueryResultRow>(text: string, values?: unknown[], name?: string): Promise<pg.QueryResult<R>>;
  tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T>;
  /** A lock name unique to this store's schema. */
  lockKey(purpose: string): string;
  /** Holds the lock named `purpose` in this store's schema until `c`'s transaction ends: holders take turns, on any node. */
  lock(c: pg.ClientBase, purpose: string): Promise<void>;
}

const OPEN = "state IN ('queued', 'sent') AND expires_at > $2";

/** Persistent calls in the PostgreSQL store. */
export class PostgresCallStore implements CallStore {
  constructor(private readonly db: PostgresAccess) {}

  async create(call: NewCall, limits: { perDevice: number; perUser: number }, now: number): Promise<{ call: StoredCall } | { limit: 'device' | 'user' }> {
    return this.db.tx(async (c) => {
      // Nodes creating calls for one user at once take turns, so the limits hold across a cluster.
      await this.db.lock(c, `calls:${call.userId}`);
      const { rows: counts } = await c.query<{ device: number; user: number }>(
        `SELECT COUNT(*) FILTER (WHERE device_id = $3)::int AS device, COUNT(*)::int AS user FROM calls WHERE user_id = $1 AND ${OPEN}`,
        [call.userId, now, call.deviceId],
      );
      if (counts[0].device >= limits.perDevice) return { limit: 'device' as const };
      if (counts[0].user >= limits.perUser) return { limit: 'user' as const };
      const { rows } = await c.query<CallRow>(
        `INSERT INTO calls (${CALL_COLS}) VALUES ($1, $2, $3, $4, $5, 'queued', NULL, NULL, $6, $7, $8) RETURNING ${CALL_COLS}`,
        [call.id, call.deviceId, call.userId, call.method, JSON.stringify(call.params ?? null), call.created, call.expires, now],
      );
      for (const state of FINAL_STATES) await c.query(trimFinalCalls((n) => `$${n}`), [call.deviceId, state, FINAL_CALLS_KEPT_PER_DEVICE]);
      return { call: toCall(rows[0]) };
    });
  }

  async get(id: string): Promise<StoredCall | null> {
    const { rows } = await this.db.q<CallRow>(`SELECT ${CALL_COLS} FROM calls WHERE id = $1`, [id], 'iotc_call_get');
    return rows[0] ? toCall(rows[0]) : null;
  }

  async open(deviceId: string, now: number, opts: { queuedOnly?: boolean; limit?: number } = {}): Promise<StoredCall[]> {
    const where = opts.queuedOnly ? "state = 'queued' AND expires_at > $2" : OPEN;
    const { rows } = await this.db.q<CallRow>(
      `SELECT ${CALL_COLS} FROM calls WHERE device_id = $1 AND ${where} ORDER BY created_at, id LIMIT $3`,
      [deviceId, now, opts.limit ?? 100],
    );
    return rows.map(toCall);
  }

  async markSent(id: string, now: number): Promise<boolean> {
    const { rowCount } = await this.db.q("UPDATE calls SET state = 'sent', updated_at = $2 WHERE id = $1 AND state = 'queued'", [id, now]);
    return (rowCount ?? 0) > 0;
  }

  async finish(id: string, deviceId: string, outcome: CallOutcome, now: number): Promise<StoredCall | null> {
    const { result, error } = outcomeColumns(outcome);
    const { rows } = await this.db.q<CallRow>(
      `UPDATE calls SET state = 'answered', result = $4, error = $5, updated_at = $2
       WHERE id = $1 AND device_id = $3 AND ${OPEN} RETURNING ${CALL_COLS}`,
      [id, now, deviceId, result, error],
    );
    return rows[0] ? toCall(rows[0]) : null;
  }

  async expire(now: number): Promise<StoredCall[]> {
    const { rows } = await this.db.q<CallRow>(
      `UPDATE calls SET state = 'expired', updated_at = $1 WHERE state IN ('queued', 'sent') AND expires_at <= $1 RETURNING ${CALL_COLS}`,
      [now],
    );
    await this.db.q("DELETE FROM calls WHERE state IN ('answered', 'expired') AND updated_at < $1", [now - FINAL_CALL_KEEP_MS]);
    return rows.map(toCall);
  }
}
