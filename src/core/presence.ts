import type { Logger } from '../log.js';
import type { PresenceEntry, Side, Store } from '../store/types.js';

/**
 * Counts this node's open connections per device and side, and writes the counts to the store about
 * once a second (only what changed), plus a heartbeat that keeps them alive. A node that dies stops the
 * heartbeat and its counts expire, so "online" heals by itself across a cluster.
 */
export class PresenceTracker {
  private readonly counts = new Map<string, number>();
  private readonly dirty = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private lastHeartbeat = 0;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly nodeId: string,
    private readonly log: Logger,
    private readonly flushEveryMs = 1000,
    private readonly ttlMs = 60_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.flushEveryMs);
    this.timer.unref();
  }

  count(deviceId: string, side: Side): number {
    return this.counts.get(key(deviceId, side)) ?? 0;
  }

  change(deviceId: string, side: Side, delta: number): number {
    const k = key(deviceId, side);
    const n = (this.counts.get(k) ?? 0) + delta;
    if (n > 0) this.counts.set(k, n);
    else this.counts.delete(k);
    this.dirty.add(k);
    return n;
  }

  /** Writes what changed, and a heartbeat every third of the TTL. Failures are logged and retried next time. */
  flush(): Promise<void> {
    this.writing = this.writing.then(async () => {
      const now = Date.now();
      // Renewing every entry of the node costs as much as it has connections: only every third of the TTL.
      const heartbeat = now - this.lastHeartbeat >= this.ttlMs / 3;
      if (this.dirty.size === 0 && !heartbeat) return;
      const keys = [...this.dirty];
      this.dirty.clear();
      const entries: PresenceEntry[] = keys.map((k) => {
        const [deviceId, side] = k.split('|') as [string, Side];
        return { deviceId, side, connections: this.counts.get(k) ?? 0 };
      });
      try {
        await this.store.savePresence(this.nodeId, entries, now, now + this.ttlMs, heartbeat);
        if (heartbeat) this.lastHeartbeat = now;
      } catch (err) {
        for (const k of keys) this.dirty.add(k);
        this.log.warn({ err }, 'could not save presence; will retry');
      }
    });
    return this.writing;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.writing;
    try {
      await this.store.clearPresence(this.nodeId);
    } catch (err) {
      this.log.warn({ err }, 'could not clear presence');
    }
  }
}

const key = (deviceId: string, side: Side) => `${deviceId}|${side}`;
