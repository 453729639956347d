import type Database from 'better-sqlite3';
import { CALL_COLS, FINAL_CALL_KEEP_MS, FINAL_CALLS_KEPT_PER_DEVICE, FINAL_STATES, outcomeColumns, toCall, trimFinalCalls } from './call-rows.js';
import type { CallRow } from './call-rows.js';
import type { CallOutcome, CallStore, NewCall, StoredCall } from './types.js';

/** Persistent calls in the SQLite store. Calls are synchronous underneath, so a check-then-insert is atomic. */
export class SqliteCallStore implements CallStore {
  private readonly stmt;
  private readonly createTx: Database.Transaction<(call: NewCall, perDevice: number, perUser: number, now: number) => { call: StoredCall } | { limit: 'device' | 'user' }>;
  private readonly expireTx: Database.Transaction<(now: number) => StoredCall[]>;

  constructor(db: Database.Database) {
    const open = "state IN ('queued', 'sent') AND expires_at > ?";
    // INDEXED BY: without statistics SQLite would read a device's (or user's) calls through the expiry index, that
    // is every open call of the hub, so one account's queued calls would slow every other device's connection.
    const ofDevice = 'calls INDEXED BY calls_by_device WHERE device_id = ?';
    this.stmt = {
      openOfDevice: db.prepare(`SELECT COUNT(*) AS n FROM ${ofDevice} AND ${open}`),
      openOfUser: db.prepare(`SELECT COUNT(*) AS n FROM calls INDEXED BY calls_by_user WHERE user_id = ? AND ${open}`),
      insert: db.prepare(`INSERT INTO calls (${CALL_COLS}) VALUES (?, ?, ?, ?, ?, 'queued', NULL, NULL, ?, ?, ?) RETURNING ${CALL_COLS}`),
      get: db.prepare(`SELECT ${CALL_COLS} FROM calls WHERE id = ?`),
      open: db.prepare(`SELECT ${CALL_COLS} FROM ${ofDevice} AND ${open} ORDER BY created_at, id LIMIT ?`),
      queued: db.prepare(`SELECT ${CALL_COLS} FROM ${ofDevice} AND state = 'queued' AND expires_at > ? ORDER BY created_at, id LIMIT ?`),
      markSent: db.prepare("UPDATE calls SET state = 'sent', updated_at = ? WHERE id = ? AND state = 'queued'"),
      finish: db.prepare(`UPDATE calls SET state = 'answered', result = ?, error = ?, updated_at = ? WHERE id = ? AND device_id = ? AND ${open} RETURNING ${CALL_COLS}`),
      expire: db.prepare(`UPDATE calls SET state = 'expired', updated_at = ? WHERE state IN ('queued', 'sent') AND expires_at <= ? RETURNING ${CALL_COLS}`),
      forget: db.prepare("DELETE FROM calls WHERE state IN ('answered', 'expired') AND updated_at < ?"),
      trimFinal: db.prepare(trimFinalCalls(() => '?')),
    };
    this.createTx = db.transaction((call, perDevice, perUser, now) => {
      if ((this.stmt.openOfDevice.get(call.deviceId, now) as { n: number }).n >= perDevice) return { limit: 'device' as const };
      if ((this.stmt.openOfUser.get(call.userId, now) as { n: number }).n >= perUser) return { limit: 'user' as const };
      const row = this.stmt.insert.get(call.id, call.deviceId, call.userId, call.method, JSON.stringify(call.params ?? null), call.created, call.expires, now) as CallRow;
      for (const state of FINAL_STATES) this.stmt.trimFinal.run(call.deviceId, state, call.deviceId, state, FINAL_CALLS_KEPT_PER_DEVICE);
      return { call: toCall(row) };
    });
    this.expireTx = db.transaction((now) => {
      const rows = this.stmt.expire.all(now, now) as CallRow[];
      this.stmt.forget.run(now - FINAL_CALL_KEEP_MS);
      return rows.map(toCall);
    });
  }

  async create(call: NewCall, limits: { perDevice: number; perUser: number }, now: number) {
    return this.createTx.immediate(call, limits.perDevice, limits.perUser, now);
  }

  async get(id: string): Promise<StoredCall | null> {
    const row = this.stmt.get.get(id) as CallRow | undefined;
    return row ? toCall(row) : null;
  }

  async open(deviceId: string, now: number, opts: { queuedOnly?: boolean; limit?: number } = {}): Promise<StoredCall[]> {
    const stmt = opts.queuedOnly ? this.stmt.queued : this.stmt.open;
    return (stmt.all(deviceId, now, opts.limit ?? 100) as CallRow[]).map(toCall);
  }

  async markSent(id: string, now: number): Promise<boolean> {
    return this.stmt.markSent.run(now, id).changes > 0;
  }

  async finish(id: string, deviceId: string, outcome: CallOutcome, now: number): Promise<StoredCall | null> {
    const { result, error } = outcomeColumns(outcome);
    const row = this.stmt.finish.get(result, error, now, id, deviceId, now) as CallRow | undefined;
    return row ? toCall(row) : null;
  }

  async expire(now: number): Promise<StoredCall[]> {
    return this.expireTx.immediate(now);
  }
}
