import { IotcError } from './errors.js';
import type { ClientErrorCode } from './errors.js';
import { Connection } from './connection.js';
import type { BlobChunk, CallHandler, CallOptions, CallState, ClientEvents, ClientOptions, Reading, ReconnectOptions, SocketFactory, SocketLike } from './types.js';
import type { Side } from './url.js';
import { blobFrame, timeBound, toReading } from './wire.js';

/**
 * One connection to the hub as one side of one device, kept open across network losses and server restarts.
 * Made by `connect()` from the Node or browser entry point.
 */
export class Client extends Connection {
  private readonly handlers = new Map<string, CallHandler>();

  /**
   * Writes a reading (or a batch of up to 500) and resolves once the hub has durably stored it, with the time it
   * stamped. While disconnected the put waits in a bounded queue and is sent on reconnecting. A put whose
   * connection was lost before its acknowledgement is sent again, so it is stored at least once.
   */
  put(sensor: string, value: unknown): Promise<{ time: number }>;
  put(readings: { sensor: string; value: unknown }[]): Promise<{ time: number; count: number }>;
  put(sensorOrBatch: string | { sensor: string; value: unknown }[], value?: unknown): Promise<{ time: number; count?: number }> {
    const status = typeof sensorOrBatch === 'string' ? { sensor: sensorOrBatch, value: value === undefined ? null : value } : sensorOrBatch;
    if (!this.accepted) {
      let queued = 0;
      for (const p of this.pending.values()) if (p.kind === 'put') queued++;
      if (queued >= this.queueLimit) {
        return Promise.reject(new IotcError('E_LIMIT', `Offline queue full: ${this.queueLimit} puts wait for the connection (option queueLimit)`));
      }
    }
    return this.enqueue('put', { method: 'put', status }, 0).then((b) => (b.count === undefined ? { time: b.time } : { time: b.time, count: b.count }));
  }

  /**
   * Sends a binary chunk (a camera frame, a file; at most the hub's --max-blob, 256 KiB by default) for a sensor,
   * relayed byte-exact to the other side, and resolves once stored. Queued while disconnected, like put.
   */
  putBlob(sensor: string, bytes: Uint8Array, type = 'application/octet-stream'): Promise<{ seq: number; size: number; time: number }> {
    try {
      blobFrame({ sensor, type, bytes: new Uint8Array(0) }, 0);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue('put', { method: 'blob', sensor, type, bytes }, 0).then((b) => ({ seq: b.seq, size: b.size, time: b.time }));
  }

  /** The latest value of a sensor (written by `write` only, if given), or null if it has none. */
  async get(sensor: string, options: { write?: Side } = {}): Promise<Reading | null> {
    try {
      return toReading(await this.request({ method: 'gets', sensor, ...options }));
    } catch (err) {
      if (err instanceof IotcError && err.code === 'E_NOT_FOUND') return null;
      throw err;
    }
  }

  /** Past values of a sensor, oldest first: the last `limit` (default 100), or the first `limit` from `from`. */
  async history(sensor: string, options: { limit?: number; from?: number | string | Date; to?: number | string | Date; write?: Side } = {}): Promise<Reading[]> {
    const { from, to, ...rest } = options;
    const body = await this.request({ method: 'history', sensor, ...rest, ...(from === undefined ? {} : { from: timeBound(from) }), ...(to === undefined ? {} : { to: timeBound(to) }) });
    return (body.readings as Reading[]).map(toReading);
  }

  /** The latest value of every sensor. */
  async sensors(options: { write?: Side } = {}): Promise<Reading[]> {
    return ((await this.request({ method: 'sensors', ...options })).sensors as Reading[]).map(toReading);
  }

  /**
   * Sends a command to the device and resolves with its answer; rejects with E_TIMEOUT, E_OFFLINE or E_DEVICE
   * (the device's own error message). A persistent call resolves at once with its state (`queued` or `sent`);
   * `callResult()` waits for its answer. A call in flight when the connection drops rejects with E_UNAVAILABLE
   * and is not sent again (the device may have run it).
   */
  async call(method: string, params: unknown = null, options: CallOptions = {}): Promise<any> {
    const message: Record<string, unknown> = { method: 'call', device_method: method, params, persistent: options.persistent ?? false };
    if (options.timeout !== undefined) message.timeout = options.timeout;
    const wait = options.persistent ? this.requestTimeout : (options.timeout ?? 10_000) + this.requestTimeout;
    const body = await this.enqueue('call', message, wait);
    if (options.persistent) return { call: body.call, state: body.state, ...('result' in body ? { result: body.result } : {}) } as CallState;
    return body.result;
  }

  /** A persistent call's state now. */
  async callStatus(call: string): Promise<CallState> {
    const { ok: _ok, id: _id, ...state } = await this.request({ method: 'call_status', call });
    return state as CallState;
  }

  /** Waits for a persistent call's answer: resolves with the device's result, rejects with E_DEVICE or E_TIMEOUT (expired). */
  callResult(call: string, timeoutMs = 60 * 60_000): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const settle = (s: CallState): boolean => {
        if (s.state === 'answered') s.error !== undefined ? reject(new IotcError('E_DEVICE', s.error, { call })) : resolve(s.result);
        else if (s.state === 'expired') reject(new IotcError('E_TIMEOUT', 'The call expired before the device answered', { call }));
        else return false;
        return true;
      };
      const done = () => (clearTimeout(timer), offState(), offConnected());
      const check = () => this.callStatus(call).then((s) => settle(s) && done(), (err) => (done(), reject(err)));
      const timer = setTimeout(() => (done(), reject(new IotcError('E_TIMEOUT', `No answer to call ${call} within ${timeoutMs} ms`, { call }))), timeoutMs);
      const offState = this.on('callstate', (s) => s.call === call && settle(s) && done());
      // A state pushed while disconnected is missed: ask again on every reconnect.
      const offConnected = this.on('connected', () => void check());
      void check();
    });
  }

  /**
   * Answers calls of `method` on the device side: the handler's return value (or promise) is sent back as the
   * result, a thrown error's message as the error. `'*'` answers every method without its own handler; a call
   * nobody handles is answered with an error. Returns a function that removes the handler.
   */
  onCall(method: string, handler: CallHandler): () => void {
    this.handlers.set(method, handler);
    return () => {
      if (this.handlers.get(method) === handler) this.handlers.delete(method);
    };
  }

  /** Resolves once every put made so far is acknowledged (or failed). */
  async flush(): Promise<void> {
    const puts = [...this.pending.values()].filter((p) => p.kind === 'put');
    await Promise.all(puts.map((p) => new Promise<void>((done) => {
      const { resolve, reject } = p;
      p.resolve = (b) => (resolve(b), done());
      p.reject = (e) => (reject(e), done());
    })));
  }

  protected unasked(m: any): void {
    if (typeof m.call === 'string' && this.side === 'device') return void this.answer(m);
    if (m.sensor === '$call' && m.value && typeof m.value === 'object') return this.emit('callstate', m.value as CallState);
    this.emit('reading', toReading(m));
  }

  private async answer(m: { sensor: string; value: unknown; call: string; time: number }): Promise<void> {
    const handler = this.handlers.get(m.sensor) ?? this.handlers.get('*');
    const reply: Record<string, unknown> = { method: 'reply', call: m.call };
    if (!handler) reply.error = `This device has no handler for "${m.sensor}"`;
    else {
      try {
        const result = await handler(m.value, { id: m.call, method: m.sensor, time: m.time });
        reply.result = result === undefined ? null : result;
      } catch (err) {
        reply.error = err instanceof Error ? err.message : String(err);
      }
    }
    // An expired call's answer is refused with E_NOT_FOUND: nobody waits for it any more.
    this.request(reply).catch((err: IotcError) => err.code !== 'E_NOT_FOUND' && this.emit('error', err));
  }
}

export type { ClientErrorCode };
export type { BlobChunk, CallHandler, CallOptions, CallState, ClientEvents, ClientOptions, Reading, ReconnectOptions, SocketFactory, SocketLike };
