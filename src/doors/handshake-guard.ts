import type { Config } from '../config.js';
import type { Logger } from '../log.js';

export type HandshakeGuardConfig = Pick<Config, 'handshakeTimeout' | 'maxUnauthPerAddress'>;

/** A connection still in its handshake; settle() once it is authenticated, refused or gone. */
export interface PendingHandshake {
  settle(): void;
}

interface Entry {
  address: string | null;
  drop: () => void;
  timer: NodeJS.Timeout;
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
    const entry: Entry = {
      address,
      drop,
      timer: setTimeout(() => {
        this.release(entry);
        this.count('E_TIMEOUT');
        this.log.debug({ remote: address }, `closing connection: no handshake within ${this.config.handshakeTimeout} ms (--handshake-timeout / IOTC_HANDSHAKE_TIMEOUT)`);
        drop();
      }, this.config.handshakeTimeout),
    };
    entry.timer.unref();
    if (address !== null) {
      let peers = this.byAddress.get(address);
      if (!peers) this.byAddress.set(address, (peers = new Set()));
      if (peers.size >= this.config.maxUnauthPerAddress) {
        // A Set iterates in insertion order: the first is the oldest.
        const oldest = peers.values().next().value!;
        this.release(oldest);
        this.evicted(address);
        oldest.drop();
      }
      peers.add(entry);
    }
    this.all.add(entry);
    let settled = false;
    return {
      settle: () => {
        if (settled) return;
        settled = true;
        this.release(entry);
      },
    };
  }

  private release(entry: Entry): void {
    if (!this.all.delete(entry)) return;
    clearTimeout(entry.timer);
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
    for (const entry of [...this.all]) this.release(entry);
  }
}
