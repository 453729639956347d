import { FATAL_CLOSE_CODES, IotcError } from './errors.js';
import { Emitter } from './emitter.js';
import type { BlobChunk, ClientEvents, ClientOptions, ReconnectOptions, SocketFactory, SocketLike } from './types.js';
import { socketUrl } from './url.js';
import type { Side } from './url.js';
import { blobFrame } from './wire.js';

/** What a request is, for what happens to it when the connection drops (a call is not sent again). */
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
 * The socket under a Client: opened and kept open across network losses and server restarts (reconnecting with
 * backoff, keep-alive pings), requests matched to their answers, sent in order and paced under the hub's rate
 * limit. What the hub sends unasked (readings, calls, call states) goes to `unasked`.
 */
export abstract class Connection extends Emitter<ClientEvents> {
  readonly url: string;
  readonly side: Side;
  private readonly Socket: SocketFactory;
  private readonly backoff: Required<ReconnectOptions> | null;
  protected readonly queueLimit: number;
  protected readonly requestTimeout: number;
  private readonly keepAlive: number;
  private readonly maxRate: number;
  private readonly maxBurst: number;
  private tokens: number;
  private refilled = Date.now();
  private outbox: Pending[] = [];
  private pumpTimer: ReturnType<typeof setTimeout> | null = null;
  private socket: SocketLike | null = null;
  /** True once the hub answered the first ping on this socket: only then is the connection known to be accepted. */
  protected accepted = false;
  private everConnected = false;
  private closedByUser = false;
  /** Why the client stopped for good (wrong key, device deleted): what is asked afterwards fails with it too. */
  private fatal: IotcError | null = null;
  private attempt = 0;
  private nextId = 1;
  protected readonly pending = new Map<number, Pending>();
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

  protected enqueue(kind: Kind, message: Record<string, unknown>, timeoutMs: number): Promise<any> {
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

  /** A frame the hub sent unasked: a reading, a call for the device, a call's new state. */
  protected abstract unasked(m: any): void;

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
