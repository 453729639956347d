import { FATAL_CLOSE_CODES, IotcError } from './errors.js';
import type { ClientErrorCode } from './errors.js';
import { Emitter } from './emitter.js';
import type { BlobChunk, CallHandler, CallOptions, CallState, ClientEvents, ClientOptions, Reading, ReconnectOptions, SocketFactory, SocketLike } from './types.js';
import { socketUrl } from './url.js';
import type { Side } from './url.js';

type Kind = 'put' | 'request' | 'call';
interface Pending {
  id: number;
  kind: Kind;
  message: Record<string, unknown>;
  resolve: (body: any) => void;
  reject: (err: IotcError) => void;
  timer?: ReturnType<typeof setTimeout>;
  /** Waiting in the outbox for the rate limiter. */
  queued: boolean;
  sent: boolean;
}

const OPEN = 1;
const HELLO = 'hello';

/**
 * One connection to the hub as one side of one device, kept open across network losses and server restarts.
 * Made by `connect()` from the Node or browser entry point.
 */
export class Client extends Emitter<ClientEvents> {
  readonly url: string;
  readonly side: Side;
  private readonly Socket: SocketFactory;
  private readonly backoff: Required<ReconnectOptions> | null;
  private readonly queueLimit: number;
  private readonly requestTimeout: number;
  private readonly keepAlive: number;
  private readonly maxRate: number;
  private readonly maxBurst: number;
  private tokens: number;
  private refilled = Date.now();
  private outbox: Pending[] = [];
  private pumpTimer: ReturnType<typeof setTimeout> | null = null;
  private socket: SocketLike | null = null;
  /** True once the hub answered the first ping on this socket: only then is the connection known to be accepted. */
  private accepted = false;
  private everConnected = false;
  private closedByUser = false;
  /** Why the client stopped for good (wrong key, device deleted): what is asked afterwards fails with it too. */
  private fatal: IotcError | null = null;
  private attempt = 0;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly handlers = new Map<string, CallHandler>();
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private keepAliveTimer: ReturnType<typeof setInterval> | null = null;
  private lastHeard = 0;
  /** Frames that came before the answer to the first ping (sync on connect): 'connected' is emitted first. */
  private held: any[] = [];
  /** The last `{ok:false}` without an id: a refusal arrives as one just before the close. */
  private lastRefusal: IotcError | null = null;

  constructor(options: ClientOptions) {
    super();
    if (!options.WebSocket) throw new IotcError('E_VALIDATION', 'No WebSocket implementation: import connect from "iotcommunicate/client"');
    this.Socket = options.WebSocket;
    this.url = socketUrl(options);
    if (options.binary) this.url += '&binary=1';
    this.side = new URL(this.url).searchParams.get('side') as Side;
    const r = options.reconnect ?? true;
    this.backoff = r === false ? null : { initialDelay: 500, maxDelay: 30_000, factor: 2, ...(r === true ? {} : r) };
    this.queueLimit = options.queueLimit ?? 1000;
    this.requestTimeout = options.requestTimeout ?? 10_000;
    this.keepAlive = options.keepAlive ?? 25_000;
    this.maxRate = options.maxRate ?? 100;
    this.maxBurst = options.maxBurst ?? 200;
    this.tokens = this.maxBurst;
    this.open();
  }

  /** Whether the hub has accepted the current connection. */
  get connected(): boolean {
    return this.accepted;
  }

  /** The device id this client speaks for. */
  get device(): string {
    return new URL(this.url).searchParams.get('device')!;
  }

  /** Resolves once connected (at once if already), rejects if the client stops first (wrong key, closed). */
  ready(): Promise<void> {
    if (this.accepted) return Promise.resolve();
    if (this.closedByUser) return Promise.reject(this.fatal ?? new IotcError('E_UNAVAILABLE', 'The client was closed'));
    return new Promise((resolve, reject) => {
      const offOk = this.on('connected', () => (offOk(), offGone(), resolve()));
      const offGone = this.on('disconnected', (e) => {
        if (e.retryIn === null) (offOk(), offGone(), reject(e.error ?? new IotcError('E_UNAVAILABLE', 'The client was closed')));
      });
    });
  }

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

  /** Closes the connection for good; what still waits rejects with E_UNAVAILABLE. */
  close(): void {
    this.closedByUser = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.stopKeepAlive();
    const socket = this.socket;
    this.socket = null;
    const wasAccepted = this.accepted;
    this.accepted = false;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = null;
      // Closing a socket still connecting reports an error; nobody listens for this socket any more.
      socket.onerror = () => {};
      socket.close(1000);
    }
    this.failAll(new IotcError('E_UNAVAILABLE', 'The client was closed'));
    if (socket || wasAccepted) this.emit('disconnected', { code: 1000, reason: 'closed by the client', retryIn: null });
  }

  /** Sends any request and resolves with the hub's `{ok:true}` reply (rejects with its error). */
  request(message: Record<string, unknown>): Promise<any> {
    return this.enqueue('request', message, this.requestTimeout);
  }

  private enqueue(kind: Kind, message: Record<string, unknown>, timeoutMs: number): Promise<any> {
    if (this.closedByUser) return Promise.reject(this.fatal ?? new IotcError('E_UNAVAILABLE', 'The client was closed'));
    return new Promise((resolve, reject) => {
      const p: Pending = { id: this.nextId++, kind, message, resolve, reject, queued: false, sent: false };
      if (timeoutMs > 0) {
        p.timer = setTimeout(() => {
          this.pending.delete(p.id);
          const why = this.accepted ? 'no answer from the hub' : 'not connected to the hub';
          p.reject(new IotcError('E_TIMEOUT', `${String(message.method)}: ${why} within ${timeoutMs / 1000}s`));
        }, timeoutMs);
      }
      this.pending.set(p.id, p);
      if (this.accepted) this.transmit(p);
    });
  }

  /** Queues a request for sending, paced by a token bucket so a flushed offline queue stays under the hub's rate limit. */
  private transmit(p: Pending): void {
    p.queued = true;
    this.outbox.push(p);
    this.pump();
  }

  private pump(): void {
    const now = Date.now();
    this.tokens = Math.min(this.maxBurst, this.tokens + ((now - this.refilled) * this.maxRate) / 1000);
    this.refilled = now;
    while (this.outbox.length > 0 && this.tokens >= 1 && this.accepted && this.socket) {
      const p = this.outbox.shift()!;
      p.queued = false;
      if (this.pending.get(p.id) !== p) continue;
      this.tokens -= 1;
      p.sent = true;
      this.socket.send(p.message.method === 'blob' ? blobFrame(p.message, p.id) : JSON.stringify({ ...p.message, id: p.id }));
    }
    if (this.outbox.length > 0 && this.accepted && !this.pumpTimer) {
      this.pumpTimer = setTimeout(() => {
        this.pumpTimer = null;
        this.pump();
      }, Math.ceil(((1 - this.tokens) * 1000) / this.maxRate));
    }
  }

  private open(): void {
    this.accepted = false;
    this.lastRefusal = null;
    this.held = [];
    let socket: SocketLike;
    try {
      socket = new this.Socket(this.url);
    } catch (err) {
      this.lost(1006, (err as Error).message);
      return;
    }
    this.socket = socket;
    let failure = '';
    socket.onopen = () => {
      this.lastHeard = Date.now();
      // The hub completes the handshake even to refuse a key, then closes: only an answer proves acceptance.
      socket.send(JSON.stringify({ method: 'ping', id: HELLO }));
    };
    socket.binaryType = 'arraybuffer';
    socket.onmessage = (ev) => (typeof ev.data === 'string' ? this.receive(ev.data) : this.receiveBinary(ev.data));
    socket.onerror = (ev) => {
      const e = ev as { message?: string; error?: { message?: string } };
      failure = e.message ?? e.error?.message ?? '';
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.lost(ev.code, ev.reason || failure);
    };
  }

  private receive(text: string): void {
    this.lastHeard = Date.now();
    let m: any;
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    if (m === null || typeof m !== 'object') return;
    if ('ok' in m) {
      if (m.id === HELLO) return this.onAccepted();
      const p = typeof m.id === 'number' ? this.pending.get(m.id) : undefined;
      if (!p) {
        if (m.ok === false && m.id === undefined) {
          const err = new IotcError(m.code ?? 'E_INTERNAL', m.error ?? 'Error');
          if (this.accepted) this.emit('error', err);
          else this.lastRefusal = err;
        }
        return;
      }
      this.pending.delete(p.id);
      if (p.timer) clearTimeout(p.timer);
      if (m.ok) p.resolve(m);
      else p.reject(new IotcError(m.code ?? 'E_INTERNAL', m.error ?? 'Error', { call: m.call }));
      return;
    }
    if (typeof m.sensor !== 'string') return;
    if (!this.accepted) this.held.push(m);
    else this.unasked(m);
  }

  /** A binary frame: one length byte, a JSON header, the bytes (docs/protocol.md). */
  private receiveBinary(data: unknown): void {
    this.lastHeard = Date.now();
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data instanceof Uint8Array ? data : null;
    if (!bytes || bytes.length < 1 || !this.accepted) return;
    let header: any;
    try {
      header = JSON.parse(new TextDecoder().decode(bytes.subarray(1, 1 + bytes[0])));
    } catch {
      return;
    }
    if (typeof header?.sensor !== 'string') return;
    const blob: BlobChunk = { sensor: header.sensor, type: header.type, data: bytes.subarray(1 + bytes[0]), size: header.size, time: header.time, write: header.write, seq: header.seq };
    this.emit('blob', blob);
  }

  private unasked(m: any): void {
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

  private onAccepted(): void {
    this.accepted = true;
    this.attempt = 0;
    const reconnected = this.everConnected;
    this.everConnected = true;
    this.startKeepAlive();
    for (const p of [...this.pending.values()].sort((a, b) => a.id - b.id)) if (!p.sent && !p.queued) this.transmit(p);
    this.emit('connected', { reconnected });
    const held = this.held;
    this.held = [];
    for (const m of held) this.unasked(m);
  }

  private lost(code: number, reason: string): void {
    this.stopKeepAlive();
    const wasAccepted = this.accepted;
    this.accepted = false;
    const fatalCode = FATAL_CLOSE_CODES.get(code);
    if (fatalCode || this.backoff === null) {
      const error = fatalCode
        ? this.lastRefusal ?? new IotcError(fatalCode, reason || 'The hub refused the connection', { closeCode: code })
        : new IotcError('E_UNAVAILABLE', `Connection lost (${code}${reason ? ` ${reason}` : ''})`, { closeCode: code });
      this.closedByUser = true;
      if (fatalCode) this.fatal = error;
      this.failAll(error);
      this.emit('disconnected', { code, reason, retryIn: null, error });
      if (fatalCode) this.emit('error', error);
      return;
    }
    // What waited in the outbox goes again, in order, once reconnected.
    for (const p of this.outbox) p.queued = false;
    this.outbox = [];
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.pumpTimer = null;
    for (const p of [...this.pending.values()]) {
      if (!p.sent) continue;
      // Reads are safe to repeat and puts are stored at least once; a command may have run, so it is not repeated.
      if (p.kind === 'call') {
        this.pending.delete(p.id);
        if (p.timer) clearTimeout(p.timer);
        p.reject(new IotcError('E_UNAVAILABLE', 'The connection to the hub was lost before the answer: the device may or may not have run the command'));
      } else p.sent = false;
    }
    const { initialDelay, maxDelay, factor } = this.backoff;
    const ceiling = Math.min(maxDelay, initialDelay * factor ** this.attempt++);
    // Jitter, so a fleet cut off by one server restart does not come back in one wave.
    const retryIn = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.emit('disconnected', { code, reason: wasAccepted || reason ? reason : 'could not connect', retryIn });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.closedByUser) this.open();
    }, retryIn);
  }

  private failAll(err: IotcError): void {
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }

  private startKeepAlive(): void {
    if (this.keepAlive <= 0) return;
    this.keepAliveTimer = setInterval(() => {
      const quiet = Date.now() - this.lastHeard;
      if (quiet >= 2 * this.keepAlive) this.dropSilentSocket();
      else if (quiet >= this.keepAlive && this.socket?.readyState === OPEN) this.socket.send(JSON.stringify({ method: 'ping', id: 'keepalive' }));
    }, Math.max(50, Math.floor(this.keepAlive / 2)));
  }

  /** The hub went silent (power cut, lost route): a close handshake would wait for it too, so `ws` terminates. */
  private dropSilentSocket(): void {
    const socket = this.socket as (SocketLike & { terminate?: () => void }) | null;
    if (socket?.terminate) socket.terminate();
    else socket?.close(4000, 'no answer to keep-alive pings');
  }

  private stopKeepAlive(): void {
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = null;
  }
}

function toReading(m: any): Reading {
  const r: Reading = { sensor: m.sensor, value: m.value, time: m.time, write: m.write };
  if (m.sync) r.sync = true;
  return r;
}

function timeBound(t: number | string | Date): number | string {
  return t instanceof Date ? t.getTime() : t;
}

export type { ClientErrorCode };
export type { BlobChunk, CallHandler, CallOptions, CallState, ClientEvents, ClientOptions, Reading, ReconnectOptions, SocketFactory, SocketLike };

/** The binary frame of a putBlob: its length byte, its JSON header (with the request id, for the ack), the bytes. */
function blobFrame(message: Record<string, unknown>, id: number): Uint8Array {
  const head = new TextEncoder().encode(JSON.stringify({ sensor: message.sensor, type: message.type, id }));
  if (head.length > 255) throw new IotcError('E_VALIDATION', 'The sensor name and type are too long for a binary frame header');
  const bytes = message.bytes as Uint8Array;
  const frame = new Uint8Array(1 + head.length + bytes.length);
  frame[0] = head.length;
  frame.set(head, 1);
  frame.set(bytes, 1 + head.length);
  return frame;
}
