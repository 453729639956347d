import type { Duplex } from 'node:stream';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';

export type HandshakeGuardConfig = Pick<Config, 'handshakeTimeout' | 'maxUnauthPerAddress'>;

/** A connection still in its handshake; settle() once it is authenticated, refused or gone. */
export interface PendingHandshake {
  settle(): void;
}

/** What a handshake watches: the socket it closes when the handshake takes too long. */
type WatchedSocket = Pick<Duplex, 'destroy' | 'once' | 'removeListener'>;

/**
 * One open handshake. Once settled it lets go of its timer, its socket and its close listener: a connection
 * lives on for hours after its handshake, and whatever this still held would be held per connection.
 */
class Entry implements PendingHandshake {
  timer: NodeJS.Timeout | undefined;
  private settled = false;
  private readonly onClose = () => this.settle();

  constructor(
    private readonly guard: HandshakeGuard,
    readonly address: string | null,
    private drop: (() => void) | null,
    private socket: WatchedSocket | null,
    private then: (() => void) | null,
  ) {
    socket?.once('close', this.onClose);
  }

  settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.guard.release(this);
    this.socket?.removeListener('close', this.onClose);
    const then = this.then;
    this.socket = this.drop = this.then = null;
    then?.();
  }

  /** Closes the connection (out of time, or evicted by a newer one from its address). */
  close(): void {
    const drop = this.drop;
    this.settle();
    drop?.();
  }
}

function expire(entry: Entry, guard: HandshakeGuard): void {
  guard.expired(entry);
}

/** How often at most a flood of evictions from one guard is logged. */
const LOG_EVERY_MS = 10_000;

/**
 * Bounds connections that have not yet proved who they are, on every door: each must finish its handshake
 * (HTTP request, WebSocket upgrade, MQTT CONNECT and authentication) within the handshake timeout, and one
 * address holds at most maxUnauthPerAddress of them at once. Over that, the OLDEST is closed rather than
 * the newest refused: idle sockets cannot lock out a real client from the same address (a NAT, loopback),
 * while a flood still holds no more than the cap of file descriptors.
 */
export class HandshakeGuard {
  private readonly byAddress = new Map<string, Set<Entry>>();
  private readonly all = new Set<Entry>();
  private evictedSinceLog = 0;
  private lastLog = 0;

  constructor(
    private readonly config: HandshakeGuardConfig,
    private readonly log: Logger,
    private readonly count: (code: 'E_LIMIT' | 'E_TIMEOUT') => void = () => {},
  ) {}

  /** Open handshakes, for tests and metrics. */
  get pending(): number {
    return this.all.size;
  }

  /**
   * A connection from `address` begins its handshake; `drop` closes it. A null address (the TCP peer of the
   * HTTP port behind a trusted proxy, which is the proxy itself) is timed but not counted.
   */
  admit(address: string | null, drop: () => void): PendingHandshake {
    return this.enter(new Entry(this, address, drop, null, null));
  }

  /**
   * As admit(), for a socket: it is destroyed when out of time, and the handshake settles by itself when the
   * socket closes first. `then` runs once, whichever way the handshake settles.
   */
  admitSocket(address: string | null, socket: WatchedSocket, then?: () => void): PendingHandshake {
    return this.enter(new Entry(this, address, () => void socket.destroy(), socket, then ?? null));
  }

  private enter(entry: Entry): Entry {
    entry.timer = setTimeout(expire, this.config.handshakeTimeout, entry, this);
    entry.timer.unref();
    const address = entry.address;
    if (address !== null) {
      const waiting = this.byAddress.get(address);
      if (waiting && waiting.size >= this.config.maxUnauthPerAddress) {
        // A Set iterates in insertion order: the first is the oldest. Closing it may empty and drop the set.
        waiting.values().next().value!.close();
        this.evicted(address);
      }
      let peers = this.byAddress.get(address);
      if (!peers) this.byAddress.set(address, (peers = new Set()));
      peers.add(entry);
    }
    this.all.add(entry);
    return entry;
  }

  /** Called by an entry's timer. */
  expired(entry: Entry): void {
    this.count('E_TIMEOUT');
    this.log.debug({ remote: entry.address }, `closing connection: no handshake within ${this.config.handshakeTimeout} ms (--handshake-timeout / IOTC_HANDSHAKE_TIMEOUT)`);
    entry.close();
  }

  /** Called by an entry as it settles. */
  release(entry: Entry): void {
    if (!this.all.delete(entry)) return;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    if (entry.address === null) return;
    const peers = this.byAddress.get(entry.address);
    peers?.delete(entry);
    if (peers?.size === 0) this.byAddress.delete(entry.address);
  }

  private evicted(address: string): void {
    this.count('E_LIMIT');
    this.evictedSinceLog++;
    const now = Date.now();
    if (now - this.lastLog < LOG_EVERY_MS) return;
    this.log.warn(
      { remote: address, closed: this.evictedSinceLog },
      `closing the oldest unauthenticated connection from ${address}: more than ${this.config.maxUnauthPerAddress} connections from one address in their handshake (--max-unauth-per-address / IOTC_MAX_UNAUTH_PER_ADDRESS)`,
    );
    this.lastLog = now;
    this.evictedSinceLog = 0;
  }

  /** Stops every timer (the server is closing; its connections are closed by their doors). */
  close(): void {
    for (const entry of [...this.all]) entry.settle();
  }
}
