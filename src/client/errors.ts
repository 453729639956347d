import type { ErrorCode } from '../core/errors.js';

/** A code of the hub's error catalogue (docs/protocol.md), e.g. E_AUTH, E_NOT_FOUND, E_TIMEOUT, E_OFFLINE, E_DEVICE. */
export type ClientErrorCode = ErrorCode | 'E_DEVICE';

/**
 * What every failed promise of the client rejects with. `code` is the catalogue code the hub sent (or the one
 * that fits a failure the client saw itself: E_TIMEOUT, E_UNAVAILABLE, E_LIMIT), so callers can switch on it.
 */
export class IotcError extends Error {
  override name = 'IotcError';
  readonly code: ClientErrorCode;
  /** The call id, for errors of a command to a device. */
  readonly call?: string;
  /** The WebSocket close code, when the hub closed the connection. */
  readonly closeCode?: number;

  constructor(code: ClientErrorCode, message: string, extra: { call?: string; closeCode?: number } = {}) {
    super(message);
    this.code = code;
    if (extra.call !== undefined) this.call = extra.call;
    if (extra.closeCode !== undefined) this.closeCode = extra.closeCode;
  }
}

/** Close codes after which trying again cannot help: wrong id or key, key rotated, device deleted, a malformed URL. */
export const FATAL_CLOSE_CODES: ReadonlyMap<number, ClientErrorCode> = new Map([
  [4400, 'E_VALIDATION'],
  [4401, 'E_AUTH'],
  [4404, 'E_DEVICE_DELETED'],
] as [number, ClientErrorCode][]);
