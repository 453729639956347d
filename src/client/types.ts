import type { IotcError } from './errors.js';
import type { Address, Side } from './url.js';

/** The part of the WebSocket API the client uses: the browser's global and the `ws` package both have it. */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string | Uint8Array): void;
  /** Set to 'arraybuffer' so binary frames arrive as bytes (both implementations have it). */
  binaryType?: string;
  close(code?: number, reason?: string): void;
}
export type SocketFactory = new (url: string) => SocketLike;

export interface Reading {
  sensor: string;
  value: unknown;
  /** ms since the epoch, stamped by the hub. */
  time: number;
  /** The side that wrote it. */
  write: Side;
  /** Set on readings sent on connecting: what the other side wrote while this one was away. */
  sync?: boolean;
}

/** A binary chunk (camera frame, file) the other side wrote, exactly as it sent it. */
export interface BlobChunk {
  sensor: string;
  /** Content type the sender named (application/octet-stream if none). */
  type: string;
  data: Uint8Array;
  size: number;
  time: number;
  write: Side;
  /** The chunk's number: GET /api/v1/devices/ID/blobs/SENSOR/SEQ fetches it again while it is kept. */
  seq: number;
}

export interface ReconnectOptions {
  /** First wait after a lost connection, ms (default 500). */
  initialDelay?: number;
  /** The longest wait, ms (default 30 000). */
  maxDelay?: number;
  /** Growth of the wait after each failed try (default 2). */
  factor?: number;
}

export interface ClientOptions extends Address {
  /** Reconnect with jittered, capped exponential backoff (default on); `false` to stay closed. */
  reconnect?: boolean | ReconnectOptions;
  /** Puts kept while disconnected; one more is refused with E_LIMIT (default 1000). */
  queueLimit?: number;
  /** How long get/history/sensors/ping wait for an answer, connected or not, ms (default 10 000). */
  requestTimeout?: number;
  /** Idle time after which the client pings the hub, ms; twice that in silence and it reconnects (default 25 000, 0 off). */
  keepAlive?: number;
  /**
   * Messages per second the client sends at most, and the burst it may send at once (default 100 and 200, half
   * the hub's default rate limit): a long offline queue is flushed at that pace instead of being refused.
   */
  maxRate?: number;
  maxBurst?: number;
  /**
   * Receive the other side's binary chunks as 'blob' events (default false: they arrive as 'reading' events whose
   * value is a notice `{blob:true,type,size,seq,url}`). Sending a chunk with putBlob turns it on too.
   */
  binary?: boolean;
  /** The WebSocket class; the Node and browser entry points fill it in. */
  WebSocket?: SocketFactory;
}

export interface CallOptions {
  /** ms to wait for the device (default 10 000); for a persistent call, how long it may wait queued (default 1 h). */
  timeout?: number;
  /** Keep the call while the device is offline and deliver it when it connects. */
  persistent?: boolean;
}

/** A persistent call's state, as answered or pushed by the hub. */
export interface CallState {
  call: string;
  state: 'queued' | 'sent' | 'answered' | 'expired' | string;
  result?: unknown;
  error?: string;
  code?: string;
}

/** Runs on the device side for each call of its method; what it returns (or throws) is the answer. */
export type CallHandler = (params: unknown, call: { id: string; method: string; time: number }) => unknown;

export interface ClientEvents {
  /** The hub accepted the connection (after a reconnect too). */
  connected: { reconnected: boolean };
  /** The connection was lost; `retryIn` is the wait before the next try, null when the client gives up. */
  disconnected: { code: number; reason: string; retryIn: number | null; error?: IotcError };
  /** A reading from the other side, live or synced on connecting. */
  reading: Reading;
  /** A binary chunk from the other side (with the `binary` option, or once this client sent one). */
  blob: BlobChunk;
  /** A persistent call's new state, pushed by the hub to the app side. */
  callstate: CallState;
  /** An error the hub sent unasked, or the reason the client stopped (wrong key, device deleted). */
  error: IotcError;
}
