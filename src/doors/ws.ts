import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket } from 'ws';
import { IotcError, closeReason, errorFrame, toIotcError } from '../core/errors.js';
import type { Relay } from '../core/relay.js';
import type { Role } from '../core/sharing.js';
import { clientAddress } from './client-address.js';
import type { Logger } from '../log.js';
import type { Device, Side } from '../store/types.js';
import { HandshakeGuard } from './handshake-guard.js';
import type { BlobRoom } from '../core/blobs.js';
import { WsConnection } from './ws-connection.js';
import type { WsDoorConfig, WsDoorShared } from './ws-connection.js';

export type { WsDoorConfig };

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
 * The WebSocket door: `/ws?device=ID&key=KEY&side=device|client`, one JSON text frame per message.
 * It owns sockets, keep-alive and send queues; everything else is the relay's.
 */
export class WebSocketDoor {
  private readonly wss: WebSocketServer;
  private readonly peers = new Set<WsConnection>();
  private readonly shared: WsDoorShared;
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
    const replyBytes = Math.min(config.maxReplyBytes ?? 1_048_576, Math.floor(config.sendQueueBytes / 2));
    this.shared = { relay, config, log, blobs: options.blobs, peers: this.peers, replyBytes, sessionLimits: { ...config, maxReplyBytes: replyBytes } };
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
    const handshake = this.handshakes.admitSocket(address, socket);
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
      ws.send(errorFrame(err, undefined));
      ws.close(err.closeCode, closeReason(err.message));
      // A peer that never answers the close would otherwise hold the socket for the library's 30 s.
      setTimeout(() => ws.terminate(), 2000).unref();
    });
  }

  private accept(ws: WebSocket, socket: Duplex, device: Device, side: Side, watch?: RequestGrant['watch'], grant?: RequestGrant['grant'], binary = false): void {
    new WsConnection(this.shared, ws, socket, device, side, { watch, grant, binary });
  }

  private pingAll(): void {
    for (const peer of this.peers) {
      if (!peer.alive) {
        // Silent for a whole period: the peer is gone without a close (power cut, lost Wi-Fi).
        peer.ws.terminate();
        continue;
      }
      peer.alive = false;
      peer.ws.ping();
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
          const ws = peer.ws;
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          // The acks of the drain's last commit may still wait for the turn's end: they go before the close.
          peer.flush();
          ws.close(1001, 'Server is shutting down');
        }),
    );
    await Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    for (const peer of this.peers) peer.ws.terminate();
    this.wss.close();
  }
}
