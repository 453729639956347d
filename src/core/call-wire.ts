/** Calls to devices as they cross the wire: their shapes, ids, frames and timeouts (the router is in calls.ts). */
import crypto from 'node:crypto';
import { IotcError } from './errors.js';
import type { ErrorCode } from './errors.js';
import type { CallState, StoredCall } from '../store/types.js';

/** A call as a device receives it. */
export interface DeviceCall {
  call: string;
  method: string;
  params: unknown;
  time: number;
}

/** A persistent call's new state, as pushed to the device's apps. */
export interface CallUpdate {
  call: string;
  state: CallState;
  result?: unknown;
  error?: string;
}

export interface CallRequest {
  method: string;
  params: unknown;
  /** Live call: how long to wait for the answer. Persistent call: how long it may wait for the device before it expires. */
  timeoutMs: number;
  persistent: boolean;
}

export type CallAnswer = { call: string; state: 'answered'; result: unknown } | { call: string; state: 'queued' | 'sent' };

/** What call_status and the HTTP API show of a persistent call. */
export interface CallView {
  call: string;
  method: string;
  params: unknown;
  state: CallState;
  result?: unknown;
  error?: string;
  created: number;
  expires: number;
}

export const CALL_TIMEOUT = { default: 10_000, min: 100, max: 60_000 } as const;
export const PERSISTENT_CALL_TIMEOUT = { default: 3_600_000, max: 7 * 86_400_000 } as const;

/** The timeout a call asked for (or the default), checked against its range. */
export function callTimeoutMs(timeout: number | undefined, persistent: boolean): number {
  if (persistent) {
    const ms = timeout ?? PERSISTENT_CALL_TIMEOUT.default;
    if (ms < CALL_TIMEOUT.min || ms > PERSISTENT_CALL_TIMEOUT.max) {
      throw new IotcError('E_VALIDATION', `timeout of a persistent call must be ${CALL_TIMEOUT.min}..${PERSISTENT_CALL_TIMEOUT.max} ms (7 days)`);
    }
    return ms;
  }
  const ms = timeout ?? CALL_TIMEOUT.default;
  if (ms < CALL_TIMEOUT.min || ms > CALL_TIMEOUT.max) throw new IotcError('E_VALIDATION', `timeout must be ${CALL_TIMEOUT.min}..${CALL_TIMEOUT.max} ms`);
  return ms;
}

/** A failed call that got as far as having an id: the answer names it. */
export class CallFailed extends IotcError {
  constructor(code: ErrorCode, message: string, readonly call: string) {
    super(code, message);
  }
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
/** "c_" + 16 base32 characters: 80 random bits. */
export function newCallId(): string {
  const bytes = crypto.randomBytes(10);
  let bits = 0n;
  for (const b of bytes) bits = (bits << 8n) | BigInt(b);
  let out = '';
  for (let i = 15; i >= 0; i--) out += BASE32[Number((bits >> BigInt(i * 5)) & 31n)];
  return `c_${out}`;
}

/** The frame a device receives: an unasked frame, so it carries sensor and value like any reading. */
export function callFrame(c: DeviceCall): string {
  return JSON.stringify({ sensor: c.method, value: c.params ?? null, call: c.call, time: c.time, write: 'client' });
}

/** The frame the apps receive when a persistent call changes state. */
export function callStateFrame(u: CallUpdate, time: number): string {
  return JSON.stringify({ sensor: '$call', value: u, time });
}

export const callView = (c: StoredCall): CallView => {
  const v: CallView = { call: c.id, method: c.method, params: c.params, state: c.state, created: c.created, expires: c.expires };
  if (c.error !== undefined) v.error = c.error;
  else if (c.state === 'answered') v.result = c.result;
  return v;
};

export const callUpdateOf = (c: StoredCall): CallUpdate => {
  const { call, state, result, error } = callView(c);
  return error !== undefined ? { call, state, error } : state === 'answered' ? { call, state, result } : { call, state };
};

export const secondsText = (ms: number) => `${+(ms / 1000).toFixed(1)}s`;

