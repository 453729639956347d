import { IotcError } from './errors.js';
import type { Store } from '../store/types.js';

interface Known {
  names: Set<string>;
  loadedAt: number;
  /** The cache's use count when the entry last moved to the newest end. */
  movedAt: number;
}

/** Devices whose sensor names are kept in memory; the rest are read from the store again when they write. */
const CACHED_DEVICES = 2000;
/** A cache older than this is read again from the store before it admits a new sensor: other nodes and retention change the truth. */
const FRESH_MS = 60_000;
/** A device at its limit has its names read again at most this often: retrying a refused sensor must not cost the store each time. */
const RECHECK_MS = 5_000;

/**
 * Bounds the distinct sensors of a device. A put of sensors the device already has costs a lookup in a set;
 * only a new name reads the store (the truth, shared by every node), and only when the cached names are
 * stale or the limit would be passed. Checks of one device run in order, so its puts keep their order.
 */
export class SensorLimit {
  private readonly known = new Map<string, Known>();
  /** Lookups so far: the clock of movedAt. */
  private uses = 0;
  /** A device's check that is waiting for the store: later puts of the device queue behind it. */
  private readonly busy = new Map<string, Promise<void>>();

  constructor(
    private readonly store: Store,
    readonly max: number,
  ) {}

  /** Resolves (synchronously when it can: null) once `sensors` may be written to the device; rejects with E_LIMIT. */
  admit(deviceId: string, writes: readonly { sensor: string }[]): Promise<void> | null {
    if (this.max <= 0) return null;
    const pending = this.busy.get(deviceId);
    if (!pending) {
      const known = this.touch(deviceId);
      if (known && allKnown(known.names, writes)) return null;
    }
    const sensors = writes.map((w) => w.sensor);
    const check = (pending ?? Promise.resolve()).then(() => this.check(deviceId, sensors));
    const tail = check.then(settled, settled);
    this.busy.set(deviceId, tail);
    void tail.then(() => {
      if (this.busy.get(deviceId) === tail) this.busy.delete(deviceId);
    });
    return check;
  }

  private async check(deviceId: string, sensors: string[]): Promise<void> {
    let known = this.touch(deviceId);
    const isNew = (k: Known) => [...new Set(sensors)].filter((s) => !k.names.has(s));
    if (known && isNew(known).length === 0) return;
    const age = known ? Date.now() - known.loadedAt : Infinity;
    if (!known || age > FRESH_MS || (known.names.size + isNew(known).length > this.max && age > RECHECK_MS)) {
      known = this.remember(deviceId, { names: new Set(await this.store.sensorNames(deviceId)), loadedAt: Date.now() });
    }
    const added = isNew(known);
    if (known.names.size + added.length > this.max) {
      throw new IotcError(
        'E_LIMIT',
        `This device has ${known.names.size} sensors, the most this hub allows is ${this.max} (max-sensors / IOTC_MAX_SENSORS): ` +
          `"${added[0].slice(0, 64)}" was not created; existing sensors keep working`,
      );
    }
    // Counted now, before the write commits, so two puts racing past the limit cannot both get in.
    for (const s of added) known.names.add(s);
  }

  /**
   * The device's cached names, marked recently used. An entry moves to the newest end only once it has fallen
   * half the cache behind: moving it on every put (a delete and an insert) was 2 % of a busy hub's CPU, and
   * an entry used within the last half cache of uses is not the one eviction reaches first anyway.
   */
  private touch(deviceId: string): Known | undefined {
    const known = this.known.get(deviceId);
    if (known && ++this.uses - known.movedAt > CACHED_DEVICES / 2) {
      this.known.delete(deviceId);
      this.known.set(deviceId, known);
      known.movedAt = this.uses;
    }
    return known;
  }

  private remember(deviceId: string, loaded: Omit<Known, 'movedAt'>): Known {
    const known: Known = { ...loaded, movedAt: this.uses };
    this.known.delete(deviceId);
    this.known.set(deviceId, known);
    if (this.known.size > CACHED_DEVICES) this.known.delete(this.known.keys().next().value!);
    return known;
  }

  /** The device is gone: read its names from the store next time. */
  forget(deviceId: string): void {
    this.known.delete(deviceId);
  }

  /** Retention may have forgotten sensors of any device: read every device's names from the store next time. */
  forgetAll(): void {
    this.known.clear();
  }
}

const settled = () => undefined;

/** A loop, not every() with a closure: this runs for every put. */
function allKnown(names: Set<string>, writes: readonly { sensor: string }[]): boolean {
  for (let i = 0; i < writes.length; i++) if (!names.has(writes[i].sensor)) return false;
  return true;
}
