import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { IotcError, closeReason, errorFrame, toIotcError } from '../core/errors.js';
import { ProtocolSession } from '../core/protocol.js';
import type { ProtocolLimits } from '../core/protocol.js';
import type { Attachment, Receiver, Relay } from '../core/relay.js';
import type { BlobDelivery, BlobRoom } from '../core/blobs.js';
import { isJsonTextFrame } from '../core/blobs.js';
import type { Role } from '../core/sharing.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Device, Side } from '../store/types.js';
import { WsBlobChannel } from './ws-blobs.js';
import { textFrames } from './ws-frames.js';

export type WsDoorConfig = Pick<Config, 'maxFrameBytes' | 'rateLimit' | 'rateBurst' | 'sendQueueBytes' | 'pingInterval' | 'handshakeTimeout' | 'maxUnauthPerAddress' | 'trustProxy' | 'maxBlobBytes'> & Partial<Pick<Config, 'maxReplyBytes'>>;

/** What every connection of one door shares. */
export interface WsDoorShared {
  readonly relay: Relay;
  readonly config: WsDoorConfig;
  readonly log: Logger;
  readonly blobs: BlobRoom | undefined;
  /** Open connections, for keep-alive and shutdown. */
  readonly peers: Set<WsConnection>;
  /**
   * The largest reply a read may make. A reply is made only when the send queue can take one this big, and it
   * takes at most half the queue, so live readings still fit beside one on its way out.
   */
  readonly replyBytes: number;
  readonly sessionLimits: ProtocolLimits;
}

/** How the door closes a connection when its owner's credentials end (log-out); returns what to call when it closes by itself. */
export type CloseWatch = (close: (err: IotcError) => void) => () => void;

function uncork(c: WsConnection): void {
  c.uncork();
}

function flushOutbox(c: WsConnection): void {
  c.flush();
}

/**
 * The connection a `ws` socket's listeners act for, kept on the socket (as `ws` keeps its own back-references):
 * the listeners below are then shared by every connection, where four closures and their context cost each idle
 * connection about 180 bytes. An emitter calls its listeners with itself as `this`.
 */
const CONNECTION = Symbol('iotc.wsConnection');
type TaggedSocket = WebSocket & { [CONNECTION]: WsConnection };
const connectionOf = (ws: WebSocket) => (ws as TaggedSocket)[CONNECTION];

function resumeConnection(c: WsConnection): void {
  c.resumeNow();
}
function onPong(this: WebSocket): void {
  connectionOf(this).alive = true;
}
function onMessage(this: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
  connectionOf(this).received(data as Buffer, isBinary);
}
// ws reports oversize frames and protocol violations here, then closes with 1009 / 1002.
function onError(this: WebSocket, err: Error): void {
  const c = connectionOf(this);
  c.shared.log.info({ deviceId: c.device.id, side: c.side, err: err.message }, 'websocket error');
}
function onClose(this: WebSocket): void {
  connectionOf(this).closed();
}

function listen(c: WsConnection, ws: WebSocket): void {
  (ws as TaggedSocket)[CONNECTION] = c;
  ws.on('pong', onPong);
  ws.on('message', onMessage);
  ws.on('error', onError);
  ws.on('close', onClose);
}

/**
 * One authenticated WebSocket connection: the relay's receiver for it, its send queue and its keep-alive flag.
 * A class rather than closures: a fleet's connections mostly sit idle, and twenty closures each would cost
 * more than a kilobyte per connection.
 */
export class WsConnection implements Receiver {
  readonly door = 'ws';
  /** Heard from since the last ping. */
  alive = true;
  /** A copy: the relay changes the role when the owner does. */
  readonly grant: { userId: number; role: Role } | undefined;
  /** Bytes of binary frames queued while corked this turn: they count in bufferedAmount, but say nothing of whether the peer reads. */
  corkedBytes = 0;
  private corked = false;
  /** This turn's text frames, written as one buffer when the turn ends (see flush). */
  private outbox: string[] | null = null;
  /** Made on the first message: most connections of a big fleet sit idle. */
  private session: ProtocolSession | null = null;
  /**
   * Messages to handle later: those that came before the relay attached the connection, and those read while the
   * account's backlog holds it (what the socket had already read when it was paused: one read's worth at most).
   */
  private early: string[] | null = [];
  private attachment: Attachment | null = null;
  private isClosed = false;
  /** Set once the server decides to close: nothing more this peer sends is acted on (a revoked key must not write). */
  private closing = false;
  /** Whether chunks go to this peer as binary frames (`&binary=1`, or once it sent one) or as JSON notices. */
  private binary: boolean;
  /** Made at the first chunk either way. */
  private blobChannel: WsBlobChannel | null = null;
  private readonly unwatch: (() => void) | undefined;

  constructor(
    readonly shared: WsDoorShared,
    readonly ws: WebSocket,
    /** The TCP (or TLS) socket under `ws`: corked so that one turn's frames leave in one write. */
    readonly socket: Duplex,
    readonly device: Device,
    readonly side: Side,
    options: { watch?: CloseWatch; grant?: { userId: number; role: Role }; binary: boolean },
  ) {
    this.grant = options.grant ? { ...options.grant } : undefined;
    this.binary = options.binary;
    this.unwatch = options.watch?.((err) => this.closeWith(err));
    shared.peers.add(this);
    listen(this, ws);
    shared.relay.attach(device, this).then(
      (att) => this.attached(att),
      (err) => {
        const e = toIotcError(err);
        if (e.code === 'E_INTERNAL') shared.log.error({ err }, 'could not attach connection');
        if (ws.readyState === WebSocket.OPEN) ws.send(errorFrame(e, undefined));
        this.closeWith(e);
      },
    );
  }

  // The relay's receiver: calls and call states are unasked frames like readings ({"sensor":…,"value":…,…}).
  deliver(_reading: unknown, json: string): void {
    this.queue(json);
  }
  call(_call: unknown, json: string): void {
    this.queue(json);
  }
  callState(_update: unknown, json: string): void {
    this.queue(json);
  }
  revoked(err: IotcError): void {
    this.closeWith(err);
  }
  deliverBlob(d: BlobDelivery): void {
    if (this.binary && this.shared.blobs) this.blobs(this.shared.blobs).deliver(d);
    else this.queue(d.notice);
  }

  /** Every frame to the peer, live reading or reply, is counted against its send queue. */
  queue(text: string): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    // The backlog the peer left from earlier turns: a big burst in one turn is not a slow reader.
    if (this.ws.bufferedAmount - this.corkedBytes + text.length > this.shared.config.sendQueueBytes) {
      this.shared.log.warn({ deviceId: this.device.id, side: this.side }, 'closing slow receiver: send queue full');
      this.closeWith(new IotcError('E_SLOW_CONSUMER'));
      return;
    }
    this.send(text);
  }

  /** A reply outside the send queue's count (chunk acks), while the socket is open. */
  reply(text: string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.send(text);
  }

  sendFrame(frame: Buffer): void {
    this.flush();
    this.cork(frame.length);
    this.ws.send(frame, { binary: true });
  }

  /**
   * Writes this turn's text frames, in one buffer: when the turn ends, and before any frame `ws` writes itself
   * (a binary chunk, the close), which would otherwise overtake them.
   */
  flush(): void {
    const texts = this.outbox;
    if (texts === null) return;
    this.outbox = null;
    if (this.ws.readyState === WebSocket.OPEN) this.socket.write(textFrames(texts));
  }

  uncork(): void {
    this.corked = false;
    this.corkedBytes = 0;
    this.socket.uncork();
  }

  closeWith(err: IotcError): void {
    this.closing = true;
    const ws = this.ws;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
      this.shared.relay.countError(err.code);
      this.flush();
      ws.close(err.closeCode, closeReason(err.message));
      // A peer that does not read will never take the close frame from behind its full queue.
      setTimeout(() => ws.terminate(), 2000).unref();
    }
  }

  received(data: Buffer, isBinary: boolean): void {
    this.alive = true;
    if (this.closing) return;
    const blobs = this.shared.blobs;
    if (blobs) {
      if (isBinary && !isJsonTextFrame(data)) {
        this.binary = true;
        void this.blobs(blobs).receive(data);
        return;
      }
      const max = this.shared.config.maxFrameBytes;
      if (data.length > max) {
        this.closeWith(new IotcError('E_TOO_LARGE', `Text message larger than ${max} bytes (--max-frame); binary chunks may be up to ${this.shared.config.maxBlobBytes}`));
        return;
      }
    }
    const text = data.toString();
    if (this.early) this.early.push(text);
    else this.handle(text);
  }

  closed(): void {
    this.isClosed = true;
    if (this.ws.isPaused) this.shared.relay.letGo(this.device.userId, this);
    this.blobChannel?.close();
    this.unwatch?.();
    this.shared.peers.delete(this);
    this.attachment?.detach();
  }

  /** Binary frames sent in one turn of the event loop leave in one write. */
  private cork(bytes: number): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(uncork, this);
    }
    this.corkedBytes += bytes;
  }

  /** Frames sent in one turn of the event loop (a committed batch's deliveries and acks) leave in one write. */
  private send(text: string): void {
    if (this.outbox === null) {
      this.outbox = [];
      process.nextTick(flushOutbox, this);
    }
    this.outbox.push(text);
  }

  private attached(att: Attachment): void {
    this.attachment = att;
    if (this.isClosed) {
      att.detach();
      return;
    }
    this.handleEarly();
  }

  /** Handles the messages kept for later, in order, until they are done or the account's backlog holds it again. */
  private handleEarly(): void {
    const queued = this.early!;
    this.early = null;
    for (let i = 0; i < queued.length; i++) {
      // Closing (a rotated key, a deleted device): nothing more it sent is acted on.
      if (this.closing) return;
      if (this.early !== null) {
        // Held again: what is left goes before anything read meanwhile.
        this.early = [...queued.slice(i), ...this.early];
        return;
      }
      this.handle(queued[i]);
    }
  }

  private handle(text: string): void {
    this.session ??= new ProtocolSession(
      this.shared.relay,
      this.attachment!,
      (t) => this.queue(t),
      (err) => this.closeWith(err),
      this.shared.log,
      this.shared.sessionLimits,
      () => this.roomForReply(),
    );
    void this.session.handle(text);
    // An account with a commit's worth of readings waiting is read no further until they leave: its flood waits
    // in its own sockets, not in the hub's memory, and the turns it takes leave room for everyone else's.
    if (this.early === null && this.shared.relay.holdWhileBusy(this.device.userId, this)) {
      this.early = [];
      this.ws.pause();
    }
  }

  /** The account's backlog fell: go on in a later turn, not inside the store's flush that said so. */
  resumeReading(): void {
    setImmediate(resumeConnection, this);
  }

  resumeNow(): void {
    if (this.isClosed || this.closing) return;
    this.handleEarly();
    if (this.early === null) this.ws.resume();
  }

  /** A peer that asks and does not read waits (and is dropped by the keep-alive), holding no more than its queue. */
  private async roomForReply(): Promise<boolean> {
    const { ws, shared } = this;
    for (let wait = 5; ws.readyState === WebSocket.OPEN && ws.bufferedAmount - this.corkedBytes + shared.replyBytes > shared.config.sendQueueBytes; wait = Math.min(wait * 2, 250)) {
      await new Promise((r) => setTimeout(r, wait));
    }
    return ws.readyState === WebSocket.OPEN;
  }

  private blobs(room: BlobRoom): WsBlobChannel {
    return (this.blobChannel ??= new WsBlobChannel(this, room, this.shared.config, this.shared.log));
  }
}
