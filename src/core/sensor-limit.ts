import { IotcError } from './errors.js';
import { READING_OVERHEAD_BYTES } from '../store/types.js';
import type { LatestWeight, Side, Store } from '../store/types.js';

/** What a sensor's latest value weighs on each side (0: none on that side). */
interface Weights { device: number; client: number }

interface Known {
  /** Every sensor of the device. */
  names: Map<string, Weights>;
  /** What the latest values of every sensor and side weigh together. */
  total: number;
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
 * Bounds the distinct sensors of a device, and what their latest values weigh together: the store keeps the
 * latest value of each sensor whatever retention does, so without this a device could keep max-sensors values
 * of the largest size. A put of sensors the device already has costs a lookup in a map; only a new name, or a
 * put past the weight, reads the store (the truth, shared by every node), and only when the cached names are
 * stale or a limit would be passed. Checks of one device run in order, so its puts keep their order.
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
    /** Bytes the latest values of a device's sensors may weigh together (0 = no limit). */
    readonly maxLatestBytes = 0,
  ) {}

  /**
   * Resolves (synchronously when it can: null) once the writes may be stored: `jsons` are their values' JSON
   * texts. Rejects with E_LIMIT.
   */
  admit(deviceId: string, side: Side, writes: readonly { sensor: string }[], jsons: readonly string[]): Promise<void> | null {
    if (this.max <= 0 && this.maxLatestBytes <= 0) return null;
    const pending = this.busy.get(deviceId);
    if (!pending) {
      const known = this.touch(deviceId);
      if (known && allKnown(known.names, writes)) {
        const total = this.weightWith(known, side, writes, jsons);
        // A heavier put goes by the store once the cache is stale: other nodes' puts weigh in too.
        const stale = total > known.total && this.maxLatestBytes > 0 && Date.now() - known.loadedAt > FRESH_MS;
        if (!stale && !this.tooHeavy(known, total)) return this.countIn(known, side, writes, jsons, total);
      }
    }
    const check = (pending ?? Promise.resolve()).then(() => this.check(deviceId, side, writes, jsons));
    const tail = check.then(settled, settled);
    this.busy.set(deviceId, tail);
    void tail.then(() => {
      if (this.busy.get(deviceId) === tail) this.busy.delete(deviceId);
    });
    return check;
  }

  private async check(deviceId: string, side: Side, writes: readonly { sensor: string }[], jsons: readonly string[]): Promise<void> {
    const isNew = (k: Known) => [...new Set(writes.map((w) => w.sensor))].filter((s) => !k.names.has(s));
    const tooMany = (k: Known) => this.max > 0 && k.names.size + isNew(k).length > this.max;
    let known = this.touch(deviceId);
    const age = known ? Date.now() - known.loadedAt : Infinity;
    if (!known || age > FRESH_MS || ((tooMany(known) || this.tooHeavy(known, this.weightWith(known, side, writes, jsons))) && age > RECHECK_MS)) {
      known = this.remember(deviceId, await this.store.latestWeights(deviceId));
    }
    if (tooMany(known)) {
      throw new IotcError(
        'E_LIMIT',
        `This device has ${known.names.size} sensors, the most this hub allows is ${this.max} (max-sensors / IOTC_MAX_SENSORS): ` +
          `"${isNew(known)[0].slice(0, 64)}" was not created; existing sensors keep working`,
      );
    }
    const total = this.weightWith(known, side, writes, jsons);
    if (this.tooHeavy(known, total)) {
      throw new IotcError(
        'E_LIMIT',
        `This device's latest values would weigh ${total} bytes, the most this hub allows is ${this.maxLatestBytes} ` +
          '(max-latest-bytes / IOTC_MAX_LATEST_BYTES): nothing was stored; write smaller values, or to fewer sensors',
      );
    }
    this.countIn(known, side, writes, jsons, total);
  }

  /** What the device's latest values would weigh with the writes' values as their sensors' latest. */
  private weightWith(known: Known, side: Side, writes: readonly { sensor: string }[], jsons: readonly string[]): number {
    if (writes.length === 1) return known.total - (known.names.get(writes[0].sensor)?.[side] ?? 0) + jsons[0].length + READING_OVERHEAD_BYTES;
    // A batch may write a sensor more than once: its last value is the latest.
    const last = new Map<string, number>();
    for (let i = 0; i < writes.length; i++) last.set(writes[i].sensor, jsons[i].length + READING_OVERHEAD_BYTES);
    let total = known.total;
    for (const [sensor, bytes] of last) total += bytes - (known.names.get(sensor)?.[side] ?? 0);
    return total;
  }

  /** Past the weight, and heavier than now: a put that makes a device over its weight no heavier still passes. */
  private tooHeavy(known: Known, total: number): boolean {
    return this.maxLatestBytes > 0 && total > this.maxLatestBytes && total > known.total;
  }

  /**
   * Counts the writes' sensors and values as the latest, before the write commits, so two puts racing past a
   * limit cannot both get in.
   */
  private countIn(known: Known, side: Side, writes: readonly { sensor: string }[], jsons: readonly string[], total: number): null {
    for (let i = 0; i < writes.length; i++) {
      let w = known.names.get(writes[i].sensor);
      if (!w) known.names.set(writes[i].sensor, (w = { device: 0, client: 0 }));
      w[side] = jsons[i].length + READING_OVERHEAD_BYTES;
    }
    known.total = total;
    return null;
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

  private remember(deviceId: string, weights: readonly LatestWeight[]): Known {
    const known: Known = { names: new Map(), total: 0, loadedAt: Date.now(), movedAt: this.uses };
    for (const { sensor, side, bytes } of weights) {
      let w = known.names.get(sensor);
      if (!w) known.names.set(sensor, (w = { device: 0, client: 0 }));
      w[side] = Number(bytes);
      known.total += Number(bytes);
    }
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
function allKnown(names: Map<string, Weights>, writes: readonly { sensor: string }[]): boolean {
  for (let i = 0; i < writes.length; i++) if (!names.has(writes[i].sensor)) return false;
  return true;
}
