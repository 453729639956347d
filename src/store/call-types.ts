/** Where a persistent call to a device stands: waiting for the device, handed to it, answered, or given up. */
export type CallState = 'queued' | 'sent' | 'answered' | 'expired';
export const FINAL_CALL_STATES: readonly CallState[] = ['answered', 'expired'];

export interface NewCall {
  /** "c_" + 16 base32 characters, made by the call router. */
  id: string;
  deviceId: string;
  /** The device's owner, so open calls can be bounded per user. */
  userId: number;
  method: string;
  params: unknown;
  created: number;
  /** ms since epoch after which an unanswered call expires. */
  expires: number;
}

export interface StoredCall extends NewCall {
  state: CallState;
  /** The device's result, once answered without an error. */
  result?: unknown;
  /** The device's error message, once answered with one. */
  error?: string;
  updated: number;
}

/** A device's answer to a call: a result, or an error message. */
export type CallOutcome = { result: unknown } | { error: string };

/**
 * Persistent calls (commands to a device that wait for it while it is offline). Open calls are those
 * queued or sent whose expiry has not passed. The contract tests in test/call-store-contract.ts describe it.
 */
export interface CallStore {
  /** Stores a queued call unless the device or the user already has that many open calls: then says which limit held. */
  create(call: NewCall, limits: { perDevice: number; perUser: number }, now: number): Promise<{ call: StoredCall } | { limit: 'device' | 'user' }>;
  get(id: string): Promise<StoredCall | null>;
  /** The device's open calls, oldest first (at most `limit`); only queued ones with `queuedOnly`. */
  open(deviceId: string, now: number, opts?: { queuedOnly?: boolean; limit?: number }): Promise<StoredCall[]>;
  /** queued → sent; false if the call was not queued (sent already, answered, expired or unknown). */
  markSent(id: string, now: number): Promise<boolean>;
  /** An open call of this device → answered; the updated call, or null if no such open call (first answer wins). */
  finish(id: string, deviceId: string, outcome: CallOutcome, now: number): Promise<StoredCall | null>;
  /** Open calls past their expiry → expired, returned; final calls a day old are forgotten. */
  expire(now: number): Promise<StoredCall[]>;
}
