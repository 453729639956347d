/** Rows of the calls table as both SQL stores read them, and their domain objects. */
import type { CallOutcome, CallState, StoredCall } from './types.js';

export interface CallRow {
  id: string;
  device_id: string;
  user_id: number;
  method: string;
  params: string;
  state: CallState;
  result: string | null;
  error: string | null;
  created_at: number;
  expires_at: number;
  updated_at: number;
}

export const CALL_COLS = 'id, device_id, user_id, method, params, state, result, error, created_at, expires_at, updated_at';

/** How long a final call stays readable by call_status before it is forgotten. */
export const FINAL_CALL_KEEP_MS = 86_400_000;
/**
 * Within that day, final calls past this count per device and state are forgotten, oldest first: a device that
 * is called and answers as fast as its connections may send must not fill the store meanwhile.
 */
export const FINAL_CALLS_KEPT_PER_DEVICE = 1000;
export const FINAL_STATES = ['answered', 'expired'] as const;

/** Forgets a device's final calls of one state older than its newest FINAL_CALLS_KEPT_PER_DEVICE (`p` numbers the placeholders). */
export const trimFinalCalls = (p: (n: number) => string) =>
  `DELETE FROM calls WHERE device_id = ${p(1)} AND state = ${p(2)} AND created_at <= (
     SELECT created_at FROM calls WHERE device_id = ${p(1)} AND state = ${p(2)} ORDER BY created_at DESC LIMIT 1 OFFSET ${p(3)})`;

export function toCall(r: CallRow): StoredCall {
  const call: StoredCall = {
    id: r.id, deviceId: r.device_id, userId: r.user_id, method: r.method, params: JSON.parse(r.params), state: r.state,
    created: r.created_at, expires: r.expires_at, updated: r.updated_at,
  };
  if (r.error !== null) call.error = r.error;
  else if (r.result !== null) call.result = JSON.parse(r.result);
  return call;
}

/** An outcome as the result and error columns hold it. */
export function outcomeColumns(outcome: CallOutcome): { result: string | null; error: string | null } {
  return 'error' in outcome ? { result: null, error: outcome.error } : { result: JSON.stringify(outcome.result ?? null), error: null };
}
