/**
 * The one error catalogue. Every door maps an IotcError to its own wire form from this table:
 * sockets send `{ok:false, error, code}` or close with `closeCode`, HTTP answers `{error, message}` with `status`.
 * Codes are stable: clients may switch on them.
 */
export const ERRORS = {
  E_BAD_MESSAGE: { status: 400, closeCode: 4400, message: 'The message is malformed' },
  E_VALIDATION: { status: 400, closeCode: 4400, message: 'A field is missing or invalid' },
  E_AUTH: { status: 401, closeCode: 4401, message: 'Wrong device id or key' },
  E_KEY_ROTATED: { status: 401, closeCode: 4401, message: 'The device key was rotated' },
  E_FORBIDDEN: { status: 403, closeCode: 4403, message: 'Not allowed' },
  E_NOT_FOUND: { status: 404, closeCode: 4404, message: 'Not found' },
  E_DEVICE_DELETED: { status: 404, closeCode: 4404, message: 'The device was deleted' },
  E_CONFLICT: { status: 409, closeCode: 4409, message: 'Already exists' },
  E_LIMIT: { status: 403, closeCode: 4403, message: 'A limit of this hub was reached' },
  E_OFFLINE: { status: 409, closeCode: 4409, message: 'The device is not connected' },
  E_TIMEOUT: { status: 504, closeCode: 4408, message: 'No answer in time' },
  E_DEVICE: { status: 502, closeCode: 4502, message: 'The device answered with an error' },
  E_TOO_LARGE: { status: 413, closeCode: 1009, message: 'Message too large' },
  E_RATE_LIMITED: { status: 429, closeCode: 4429, message: 'Too many messages' },
  E_TOO_MANY_CONNECTIONS: { status: 429, closeCode: 4429, message: 'Too many connections for this device' },
  E_SLOW_CONSUMER: { status: 503, closeCode: 4008, message: 'Receiver too slow: its send queue is full' },
  E_UNAVAILABLE: { status: 503, closeCode: 1013, message: 'Service temporarily unavailable' },
  E_SHUTTING_DOWN: { status: 503, closeCode: 1001, message: 'Server is shutting down' },
  E_INTERNAL: { status: 500, closeCode: 1011, message: 'Internal error' },
} as const satisfies Record<string, { status: number; closeCode: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class IotcError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly closeCode: number;
  readonly retryAfterSeconds?: number;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(message ?? ERRORS[code].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IotcError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.closeCode = ERRORS[code].closeCode;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

/** A store's E_LIMIT said again in the caller's words (which setting, what to do); any other error as it is. */
export function overCap(err: unknown, message: string): unknown {
  return err instanceof IotcError && err.code === 'E_LIMIT' ? new IotcError('E_LIMIT', message) : err;
}

/** Anything thrown becomes an IotcError; unknown failures are internal and keep their cause for the log only. */
export function toIotcError(err: unknown): IotcError {
  if (err instanceof IotcError) return err;
  return new IotcError('E_INTERNAL', undefined, { cause: err });
}

/**
 * A socket's `{"ok":false,…}` frame. One answering a request without an id (a fire-and-forget put, a refusal at
 * connect) carries "sensor" and "value" too, `value` null: the original clients read both from every frame they
 * receive, and a frame without them breaks their callback, which closes their connection.
 */
export function errorFrame(err: IotcError, id: string | number | undefined, extra?: { sensor?: string | null; value?: null; call?: string }): string {
  const frame: Record<string, unknown> = id === undefined
    ? { ok: false, error: err.message, code: err.code, sensor: null, value: null }
    : { ok: false, id, error: err.message, code: err.code };
  return JSON.stringify(extra === undefined ? frame : Object.assign(frame, extra));
}

/** Close reasons are limited to 123 bytes by RFC 6455. */
export function closeReason(text: string): string {
  const buf = Buffer.from(text);
  return buf.length <= 123 ? text : buf.subarray(0, 120).toString('utf8').replace(/\uFFFD*$/, '') + '...';
}
