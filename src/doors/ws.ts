import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket } from 'ws';
import { IotcError, closeReason, toIotcError } from '../core/errors.js';
import { ProtocolSession } from '../core/protocol.js';
import type { Attachment, Receiver, Relay } from '../core/relay.js';
import type { Role } from '../core/sharing.js';
import type { Config } from '../config.js';
import { clientAddress } from './client-address.js';
import type { Logger } from '../log.js';
import type { Device, Side } from '../store/types.js';
import { HandshakeGuard } from './handshake-guard.js';
import { isJsonTextFrame } from '../core/blobs.js';
import type { BlobRoom } from '../core/blobs.js';
import { WsBlobChannel } from './ws-blobs.js';

export type WsDoorConfig = Pick<Config, 'maxFrameBytes' | 'rateLimit' | 'rateBurst' | 'sendQueueBytes' | 'pingInterval' | 'handshakeTimeout' | 'maxUnauthPerAddress' | 'trustProxy' | 'maxBlobBytes'> & Partial<Pick<Config, 'maxReplyBytes'>>;

/**
 * Authenticates an upgrade that carries no key by other means (the web app's login cookie); such a
 * connection is always the client side. Resolves null when the request carries no such credentials,
 * rejects (E_AUTH) when it carries bad ones.
 */
export type UpgradeAuthenticator = (req: IncomingMessage, deviceId: string) => Promise<RequestGrant | null>;

/** What request credentials open: the device, and how the credentials' owner closes the socket when they end (log-out). */
export interface RequestGrant {
  device: Device;
  /** The account the credentials belong to and its role on the device (owner, operator, viewer). */
  grant?: { userId: number; role: Role };
  /** Called once the socket is open with a function that closes it; returns what to call when it closes by itself. */
  watch?(close: (err: IotcError) => void): () => void;
}

export interface WsDoorOptions {
  authenticateRequest?: UpgradeAuthenticator;
  /** Shared with the other doors; without one the door keeps its own. */
  handshakes?: HandshakeGuard;
  /** Binary chunks; without it binary frames are read as text, as before. */
  blobs?: BlobRoom;
}

/** Room for a binary frame's length byte and header above the chunk limit. */
const BLOB_HEADER_ROOM = 256;

interface Peer {
  socket: WebSocket;
  alive: boolean;
}

/** Credentials from the query string, checked for shape before any lookup. */
function readCredentials(url: URL, keyOptional: boolean): { deviceId: string; key: string; side: Side } {
  const deviceId = url.searchParams.get('device') ?? '';
  const key = url.searchParams.get('key') ?? '';
  const side = url.searchParams.get('side') ?? 'device';
  if (!deviceId || (!key && !keyOptional)) throw new IotcError('E_AUTH', 'The URL needs ?device=ID&key=KEY');
  if (side !== 'device' && side !== 'client') throw new IotcError('E_VALIDATION', 'side must be "device" or "client"');
  return { deviceId, key, side };
}

const NEEDS_KEY = 'The URL needs ?device=ID&key=KEY';

/**
 * Closures that live as long as the connection, made outside handleUpgrade: a closure made inside it would
 * keep that call's whole scope (the upgrade request with its headers, the head buffer, the URL …) alive
 * for the connection's life — about 1.5 KiB per idle connection.
 */
const destroyer = (socket: Duplex) => () => void socket.destroy();
function settleOnClose(socket: Duplex, handshake: { settle(): void }): void {
  socket.once('close', () => handshake.settle());
}

/**
 * The WebSocket door: `/ws?device=ID&key=KEY&side=device|client`, one JSON text frame per message.
 * It owns sockets, keep-alive and send queues; everything else is the relay's.
 */
export class WebSocketDoor {
  private readonly wss: WebSocketServer;
  private readonly peers = new Set<Peer>();
  private readonly pinger: NodeJS.Timeout;
  private readonly handshakes: HandshakeGuard;
  private open = true;

  constructor(
    private readonly relay: Relay,
    private readonly config: WsDoorConfig,
    private readonly log: Logger,
    private readonly options: WsDoorOptions = {},
  ) {
    // No permessage-deflate: readings are tiny, and compression costs more CPU than it saves bytes.
    // Binary frames may be as large as a chunk; text frames are held to --max-frame by the message handler.
    const maxPayload = options.blobs ? Math.max(config.maxFrameBytes, config.maxBlobBytes + BLOB_HEADER_ROOM) : config.maxFrameBytes;
    this.wss = new WebSocketServer({ noServer: true, maxPayload, perMessageDeflate: false, clientTracking: false });
    this.pinger = setInterval(() => this.pingAll(), config.pingInterval);
    this.pinger.unref();
    this.handshakes = options.handshakes ?? new HandshakeGuard(config, log, (code) => relay.countError(code));
  }

  get connectionCount(): number {
    return this.peers.size;
  }

  /** Called by the server for an upgrade request to /ws. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    if (!this.open) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    // Until authenticated, the connection has the handshake timeout and counts among its address's
    // unauthenticated connections; a refused one too, until it is gone.
    const address = clientAddress(req, this.config.trustProxy);
    const handshake = this.handshakes.admit(address, destroyer(socket));
    settleOnClose(socket, handshake);
    let creds: ReturnType<typeof readCredentials>;
    const viaRequest = this.options.authenticateRequest;
    try {
      creds = readCredentials(url, viaRequest !== undefined);
    } catch (err) {
      this.refuse(req, socket, head, toIotcError(err));
      return;
    }
    // Without a key only the request's own credentials (a login cookie) can open the client side.
    const authenticated: Promise<{ device: Device; side: Side; watch?: RequestGrant['watch']; grant?: RequestGrant['grant'] }> = creds.key
      ? this.relay.authenticate(creds.deviceId, creds.key, address).then((device) => ({ device, side: creds.side }))
      : viaRequest!(req, creds.deviceId).then((grant) => {
          if (!grant) throw new IotcError('E_AUTH', NEEDS_KEY);
          return { device: grant.device, side: 'client' as const, watch: grant.watch?.bind(grant), grant: grant.grant };
        });
    // Authenticate before completing the handshake: the client's first frames wait in the TCP buffer meanwhile.
    authenticated.then(
      ({ device, side, watch, grant }) => {
        handshake.settle();
        if (socket.destroyed) return;
        const binary = url.searchParams.get('binary') === '1';
        this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, socket, device, side, watch, grant, binary));
      },
      (err) => {
        const e = toIotcError(err);
        if (e.code === 'E_AUTH' || e.code === 'E_RATE_LIMITED') this.log.info({ deviceId: creds.deviceId.slice(0, 20), remote: req.socket.remoteAddress }, e.code === 'E_AUTH' ? 'websocket refused: wrong device id or key' : 'websocket refused: too many wrong keys');
        else this.log.error({ err }, 'websocket authentication failed');
        this.refuse(req, socket, head, e);
      },
    );
  }

  /** Completes the handshake only to close with a code and reason a browser can read, which a bare HTTP 401 is not. */
  private refuse(req: IncomingMessage, socket: Duplex, head: Buffer, err: IotcError): void {
    if (socket.destroyed) return;
    this.relay.countError(err.code);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      // What the refused peer sends meanwhile (invalid UTF-8, an oversize frame) errors this socket: without a
      // listener that error would be thrown and take the whole hub down.
      ws.on('error', () => ws.terminate());
      ws.send(JSON.stringify({ ok: false, error: err.message, code: err.code }));
      ws.close(err.closeCode, closeReason(err.message));
      // A peer that never answers the close would otherwise hold the socket for the library's 30 s.
      setTimeout(() => ws.terminate(), 2000).unref();
    });
  }

  private accept(ws: WebSocket, socket: Duplex, device: Attachment['device'], side: Side, watch?: RequestGrant['watch'], grant?: RequestGrant['grant'], binary = false): void {
    const peer: Peer = { socket: ws, alive: true };
    // Frames sent in one turn of the event loop (a committed batch's deliveries and acks) leave in one
    // write: the socket is corked at the first and uncorked once the turn's callbacks and promises ran.
    let corked = false;
    // Bytes queued while corked this turn: they count in bufferedAmount, but say nothing of whether the peer reads.
    let corkedBytes = 0;
    const uncork = () => {
      corked = false;
      corkedBytes = 0;
      socket.uncork();
    };
    const send = (text: string) => {
      if (!corked) {
        corked = true;
        socket.cork();
        process.nextTick(uncork);
      }
      corkedBytes += text.length;
      ws.send(text);
    };
    this.peers.add(peer);
    let session: ProtocolSession | null = null;
    let early: string[] | null = [];
    let attachment: Attachment | null = null;
    let closed = false;
    /** Set once the server decides to close: nothing more this peer sends is acted on (a revoked key must not write). */
    let closing = false;

    const closeWith = (err: IotcError) => {
      closing = true;
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
        this.relay.countError(err.code);
        ws.close(err.closeCode, closeReason(err.message));
        // A peer that does not read will never take the close frame from behind its full queue.
        setTimeout(() => ws.terminate(), 2000).unref();
      }
    };

    /** Every frame to the peer, live reading or reply, is counted against its send queue. */
    const queue = (text: string) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      // The backlog the peer left from earlier turns: a big burst in one turn is not a slow reader.
      if (ws.bufferedAmount - corkedBytes + text.length > this.config.sendQueueBytes) {
        this.log.warn({ deviceId: device.id, side }, 'closing slow receiver: send queue full');
        closeWith(new IotcError('E_SLOW_CONSUMER'));
        return;
      }
      send(text);
    };
    // A reply is made only when the queue can take the largest one: a peer that asks and does not read waits (and
    // is dropped by the keep-alive), holding no more than its queue. A reply takes at most half the queue, so
    // live readings still fit beside one on its way out.
    const replyBytes = Math.min(this.config.maxReplyBytes ?? 1_048_576, Math.floor(this.config.sendQueueBytes / 2));
    const roomForReply = async () => {
      for (let wait = 5; ws.readyState === WebSocket.OPEN && ws.bufferedAmount - corkedBytes + replyBytes > this.config.sendQueueBytes; wait = Math.min(wait * 2, 250)) {
        await new Promise((r) => setTimeout(r, wait));
      }
      return ws.readyState === WebSocket.OPEN;
    };

    const receiver: Receiver = {
      side,
      door: 'ws',
      // A copy: the relay changes the role when the owner does.
      grant: grant ? { ...grant } : undefined,
      deliver: (_reading, json) => queue(json),
      revoked: (err) => closeWith(err),
      // Calls and call states are unasked frames like readings: {"sensor":…,"value":…,…}.
      call: (_call, json) => receiver.deliver(null as never, json),
      callState: (_update, json) => receiver.deliver(null as never, json),
    };
    const blobRoom = this.options.blobs;
    let blobs: WsBlobChannel | null = null;
    if (blobRoom) {
      const sendFrame = (frame: Buffer) => {
        if (!corked) {
          corked = true;
          socket.cork();
          process.nextTick(uncork);
        }
        corkedBytes += frame.length;
        ws.send(frame, { binary: true });
      };
      const reply = (t: string) => ws.readyState === WebSocket.OPEN && send(t);
      const channel = new WsBlobChannel(ws, socket, device, side, blobRoom, this.config, reply, () => corkedBytes, sendFrame, this.log, binary);
      blobs = channel;
      receiver.deliverBlob = (d) => {
        if (channel.wantsBinary) channel.deliver(d);
        else receiver.deliver(d.noticeReading, d.notice);
      };
    }
    const unwatch = watch?.(closeWith);

    ws.on('pong', () => (peer.alive = true));
    // The session is made on the first message: most connections of a big fleet sit idle, and it counts per connection.
    const handle = (text: string) => {
      session ??= new ProtocolSession(this.relay, attachment!, queue, closeWith, this.log, { ...this.config, maxReplyBytes: replyBytes }, roomForReply);
      void session.handle(text);
    };
    ws.on('message', (data, isBinary) => {
      peer.alive = true;
      if (closing) return;
      if (blobs) {
        const bytes = data as Buffer;
        if (isBinary && !isJsonTextFrame(bytes)) {
          void blobs.receive(bytes);
          return;
        }
        if (bytes.length > this.config.maxFrameBytes) {
          closeWith(new IotcError('E_TOO_LARGE', `Text message larger than ${this.config.maxFrameBytes} bytes (--max-frame); binary chunks may be up to ${this.config.maxBlobBytes}`));
          return;
        }
      }
      const text = isBinary || typeof data !== 'string' ? data.toString() : data;
      if (early) early.push(text);
      else handle(text);
    });
    ws.on('error', (err) => {
      // ws reports oversize frames and protocol violations here, then closes with 1009 / 1002.
      this.log.info({ deviceId: device.id, side, err: err.message }, 'websocket error');
    });
    ws.on('close', () => {
      closed = true;
      blobs?.close();
      unwatch?.();
      this.peers.delete(peer);
      attachment?.detach();
    });

    this.relay.attach(device, receiver).then(
      (att) => {
        attachment = att;
        if (closed) {
          att.detach();
          return;
        }
        const queued = early!;
        early = null;
        for (const text of queued) handle(text);
      },
      (err) => {
        const e = toIotcError(err);
        if (e.code === 'E_INTERNAL') this.log.error({ err }, 'could not attach connection');
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ ok: false, error: e.message, code: e.code }));
        closeWith(e);
      },
    );
  }

  private pingAll(): void {
    for (const peer of this.peers) {
      if (!peer.alive) {
        // Silent for a whole period: the peer is gone without a close (power cut, lost Wi-Fi).
        peer.socket.terminate();
        continue;
      }
      peer.alive = false;
      peer.socket.ping();
    }
  }

  /** Stops taking connections. */
  stopAccepting(): void {
    this.open = false;
  }

  /** Closes every connection with 1001 and waits (up to `timeoutMs`) for them to go. */
  async close(timeoutMs: number): Promise<void> {
    this.open = false;
    clearInterval(this.pinger);
    const closing = [...this.peers].map(
      (peer) =>
        new Promise<void>((resolve) => {
          if (peer.socket.readyState === WebSocket.CLOSED) return resolve();
          peer.socket.once('close', () => resolve());
          peer.socket.close(1001, 'Server is shutting down');
        }),
    );
    await Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    for (const peer of this.peers) peer.socket.terminate();
    this.wss.close();
  }
}
