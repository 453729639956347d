import { IotcError } from './errors.js';
import { CallRouter } from './calls.js';
import type { CallLimits } from './calls.js';
import { WriteBatcher, refuseWrite } from './write-batcher.js';
import type { HeldSource, Share } from './write-batcher.js';
import type { WriteSettler } from './write-batcher.js';
import type { BlobDelivery } from './blobs.js';
import { DeviceWatch } from './device-watch.js';
import { PresenceTracker } from './presence.js';
import { LocalReceivers } from './receivers.js';
import type { Receiver } from './receivers.js';
import { secretMatches } from './secrets.js';
import type { AuthLimits } from './auth-limits.js';
import { SensorLimit } from './sensor-limit.js';
import { DEFAULT_VALUE_LIMITS, checkValue } from './values.js';
import type { ValueLimits } from './values.js';
import type { Bus, BusEvent } from '../bus/types.js';
import type { Role } from './sharing.js';
import type { Logger } from '../log.js';
import { otherSide } from '../store/types.js';
import type { Device, HistoryQuery, NewReading, SensorPage, Side, Store, StoredBlob, StoredReading } from '../store/types.js';

/** The doors hand the relay their connections as Receivers. */
export type { Receiver };

export interface Attachment {
  readonly device: Device;
  readonly side: Side;
  /** What the connection may do now: 'owner' for a device key; a shared user's role may change while it is open. */
  readonly role: Role;
  detach(): void;
}

export interface SensorWrite {
  sensor: string;
  value: unknown;
}

export interface RelayOptions {
  store: Store;
  bus: Bus;
  log: Logger;
  nodeId: string;
  maxConnectionsPerDevice: number;
  /** Limits on wrong keys; without it (some tests) keys are checked unlimited. */
  authLimits?: AuthLimits;
  /** How often the store's device events are read, to catch rotations made by the CLI or another node. */
  deviceEventPollMs?: number;
  /** Bounds on open calls to devices; defaults as in config. */
  callLimits?: CallLimits;
  /** Depth and size every value is checked against before it joins a store batch. */
  valueLimits?: ValueLimits;
  /** Distinct sensors a device may have (0 = no limit). */
  maxSensorsPerDevice?: number;
  /** Bytes the latest values of a device's sensors may weigh together (0 = no limit). */
  maxLatestBytesPerDevice?: number;
}

export interface PutOptions {
  /** A rule's own write: rules never act on it again. */
  byRule?: boolean;
  /** put(): the account the write counts for, so that one account's backlog in the store does not hold up others'. */
  owner?: number;
}

/** Hooks for metrics; each is optional and must not throw. */
export interface RelayObserver {
  /** A store transaction of `size` readings took `seconds`; `ok` is false if it failed. */
  batch?(size: number, seconds: number, ok: boolean): void;
  /** Readings arrived from another node `seconds` after they were written. */
  busLag?(seconds: number, count: number): void;
  /** Publishing to other nodes failed. */
  busPublishFailed?(): void;
  /** A door answered or closed a connection with this error code. */
  error?(code: string): void;
}

/**
 * The relay core: authenticates devices, stores readings and routes them to the other side, on this node
 * and (through the bus) on others. It knows nothing of sockets: every door talks to it through Receiver.
 */
/**
 * A connection's place in the relay. A class: each of a fleet's idle connections holds one, and an object
 * literal with a getter is kept as a slow dictionary (about half a kilobyte each).
 */
class Registration implements Attachment {
  readonly side: Side;
  detached = false;

  constructor(
    private readonly receivers: LocalReceivers,
    readonly device: Device,
    private readonly receiver: Receiver,
  ) {
    this.side = receiver.side;
  }

  get role(): Role {
    return this.receiver.grant?.role ?? 'owner';
  }

  detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.receivers.remove(this.device.id, this.receiver);
  }
}

export class Relay {
  readonly store: Store;
  readonly bus: Bus;
  readonly nodeId: string;
  readonly presence: PresenceTracker;
  /** Commands to devices that wait for their answer. */
  readonly calls: CallRouter;
  readonly counters = { readingsIn: 0, readingsOut: 0 };
  private readonly log: Logger;
  private readonly batcher: WriteBatcher;
  private readonly valueLimits: ValueLimits;
  private readonly sensorLimit: SensorLimit;
  private readonly receivers: LocalReceivers;
  private readonly deviceWatch: DeviceWatch;
  private readonly authLimits: AuthLimits | undefined;
  private accepting = true;
  observer: RelayObserver = {};
  /**
   * Told of every batch this node committed (so each reading is evaluated once in a cluster): the stored readings
   * and, at the same positions, the readings as written (isRuleWrite tells a rule's own). Runs inside the commit
   * callback, before the acks are sent: it must only keep the batch for later, never walk it or wait.
   */
  onCommitted: ((stored: StoredReading[], written: NewReading[]) => void) | null = null;
  /**
   * Told of each device's readings in every batch this node committed, a device at a time: `written[from..to)`,
   * with their JSON text. Runs inside the commit callback, before the acks are sent: retention only sums the
   * run's sizes there.
   */
  onDeviceStored: ((deviceId: string, written: readonly NewReading[], from: number, to: number) => void) | null = null;
  /** Readings written by automation rules: their own writes must never trigger rules again (no endless loops). */
  private readonly ruleWrites = new WeakSet<NewReading>();
  isRuleWrite(r: NewReading): boolean {
    return this.ruleWrites.has(r);
  }
  /** Chunks stored on other nodes (see core/blobs.ts); set by the blob room. */
  onBusBlob: ((event: Extract<BusEvent, { type: 'blob' }>) => void) | null = null;

  constructor(opts: RelayOptions) {
    this.store = opts.store;
    this.bus = opts.bus;
    this.log = opts.log;
    this.nodeId = opts.nodeId;
    this.authLimits = opts.authLimits;
    this.presence = new PresenceTracker(opts.store, opts.nodeId, opts.log);
    this.receivers = new LocalReceivers(opts.store, opts.bus, this.presence, opts.log, this.counters, opts.maxConnectionsPerDevice);
    this.deviceWatch = new DeviceWatch(opts.store, this.receivers, opts.log, opts.deviceEventPollMs ?? 1000, (deviceId) => this.deviceDeleted(deviceId));
    this.valueLimits = opts.valueLimits ?? DEFAULT_VALUE_LIMITS;
    this.sensorLimit = new SensorLimit(opts.store, opts.maxSensorsPerDevice ?? 0, opts.maxLatestBytesPerDevice ?? 0);
    this.batcher = new WriteBatcher(opts.store, (stored, written) => {
      this.committed(stored, written);
      this.onCommitted?.(stored, written);
    });
    this.batcher.onBatch = (size, seconds, ok) => this.observer.batch?.(size, seconds, ok);
    this.calls = new CallRouter(this, opts.callLimits ?? { maxCallsPerDevice: 100, maxCallsPerUser: 1000 }, opts.log);
    this.bus.onEvent((event) => this.fromBus(event));
    this.bus.onReconnect?.((downSince) => void this.receivers.resync(downSince));
  }

  async start(): Promise<void> {
    await this.deviceWatch.start();
    this.presence.start();
    this.deviceWatch.poll();
    this.calls.start();
  }

  /** This node's open connections of one side of a device (calls, binary chunks: deliveries that are not readings). */
  receiversOf(deviceId: string, side: Side): Receiver[] {
    return this.receivers.of(deviceId, side);
  }

  /** Keeps this node subscribed to the device's bus events until the returned function is called. */
  holdInterest(deviceId: string): () => void {
    return this.receivers.holdInterest(deviceId);
  }

  get connections(): { device: number; client: number } {
    return this.receivers.counts;
  }

  /** Open connections per door and side, for metrics. */
  connectionsByDoor(): Map<string, { device: number; client: number }> {
    return this.receivers.byDoor();
  }

  /** Readings accepted but not yet committed: the store's backlog. */
  get pendingWrites(): number {
    return this.batcher.pending;
  }

  /**
   * Asked by a door after each message of a connection writing for `owner` (the device's account): true when
   * that account has a commit's worth of readings waiting for the store, and the door should stop reading the
   * connection until `source.resumeReading()` is called. Flow control, not a refusal: nothing is lost or refused.
   */
  holdWhileBusy(owner: Share, source: HeldSource): boolean {
    return this.batcher.holdWhileBusy(owner, source);
  }

  /** A held connection closed. */
  letGo(owner: Share, source: HeldSource): void {
    this.batcher.letGo(owner, source);
  }

  /** Doors report every error they send or close with, so errors can be counted by code. */
  countError(code: string): void {
    this.observer.error?.(code);
  }

  /**
   * Checks id and key. The same refusal for an unknown id and a wrong key, so ids cannot be probed.
   * `address` (the caller's, as the door sees it) is what wrong keys are counted against.
   */
  async authenticate(deviceId: string, key: string, address = 'unknown'): Promise<Device> {
    if (!this.accepting) throw new IotcError('E_SHUTTING_DOWN');
    if (this.authLimits) return this.authLimits.deviceKey(deviceId, address, () => this.checkKey(deviceId, key));
    return this.checkKey(deviceId, key);
  }

  private async checkKey(deviceId: string, key: string): Promise<Device> {
    const device = await this.store.getDevice(deviceId);
    if (!device || !secretMatches(key, device.keyHash)) throw new IotcError('E_AUTH');
    return device;
  }

  /**
   * Registers a live connection, then sends it what the other side wrote since this side was last
   * connected (each reading marked `"sync":true`), and the newest chunk of each sensor likewise.
   * Registering first means nothing falls between the two.
   */
  async attach(device: Device, receiver: Receiver): Promise<Attachment> {
    if (!this.accepting) throw new IotcError('E_SHUTTING_DOWN');
    const side = receiver.side;
    const entry = this.receivers.add(device, receiver);

    const attachment = new Registration(this.receivers, device, receiver);

    let missed: StoredReading[];
    let cursor: number;
    let chunks: StoredBlob[];
    try {
      [cursor, chunks] = await Promise.all([this.store.getCursor(device.id, side), this.store.blobsToSync(device.id, side)]);
      missed = await this.store.latestSince(device.id, otherSide(side), cursor);
    } catch (err) {
      // The caller gets no attachment to detach: unregister here, or the slot and its presence leak for good.
      attachment.detached = true;
      this.receivers.abandonSetup(device.id, receiver);
      throw err;
    }
    this.receivers.endSetup(entry, receiver, attachment.detached ? null : { cursor, missed, chunks });
    // Persistent calls that waited for the device; not awaited: the connection is usable meanwhile.
    if (!attachment.detached && side === 'device') void this.calls.deliverOpen(device.id, receiver);
    return attachment;
  }

  /**
   * Stores the readings (one transaction per event-loop turn) and resolves once they are committed.
   * Every value is checked first, and the device's sensor limit: a reading that breaks a rule is refused
   * here, alone, before it can join (and fail) a batch shared with other devices.
   */
  put(deviceId: string, side: Side, writes: SensorWrite[], opts?: PutOptions): Promise<StoredReading[]> {
    return new Promise((resolve, reject) => {
      const settle = (err: unknown, stored: readonly StoredReading[] | null, from: number) =>
        stored === null ? reject(err) : resolve(stored.slice(from, from + writes.length));
      this.putWith(opts?.owner === undefined ? deviceId : { id: deviceId, userId: opts.owner }, side, writes, { settle }, opts);
    });
  }

  /**
   * put() for the doors' per-message path: `settler` is told once, after the commit (this put's readings are
   * `stored[from]` on) or with the refusal, and never before putWith returns. `device` is the device, whose
   * owner's account the write counts for, or only its id.
   */
  putWith(device: string | Pick<Device, 'id' | 'userId'>, side: Side, writes: SensorWrite[], settler: WriteSettler<StoredReading>, opts?: PutOptions): void {
    const deviceId = typeof device === 'string' ? device : device.id;
    if (!this.accepting) return refuseWrite(settler, new IotcError('E_SHUTTING_DOWN'));
    const count = writes.length;
    const jsons: string[] = new Array(count);
    try {
      for (let i = 0; i < count; i++) jsons[i] = checkValue(writes[i].value, this.valueLimits, count === 1 ? 'value' : `value of reading ${i + 1} ("${writes[i].sensor.slice(0, 64)}")`);
    } catch (err) {
      return refuseWrite(settler, err);
    }
    const admitted = this.sensorLimit.admit(deviceId, side, writes, jsons);
    const share = typeof device === 'string' ? device : device.userId;
    if (admitted === null) return this.storeReadings(deviceId, share, side, writes, jsons, opts, settler);
    admitted.then(
      () => this.storeReadings(deviceId, share, side, writes, jsons, opts, settler),
      (err) => settler.settle(err, null, 0),
    );
  }

  private storeReadings(deviceId: string, share: Share, side: Side, writes: SensorWrite[], jsons: string[], opts: PutOptions | undefined, settler: WriteSettler<StoredReading>): void {
    // A put that waited for its sensors' check may find the server stopping meanwhile.
    if (!this.accepting) return refuseWrite(settler, new IotcError('E_SHUTTING_DOWN'));
    const time = Date.now();
    const readings: NewReading[] = new Array(writes.length);
    for (let i = 0; i < writes.length; i++) {
      const r: NewReading = { deviceId, sensor: writes[i].sensor, value: writes[i].value, side, time, json: jsons[i] };
      readings[i] = r;
      // A rule's own writes are marked, so rules never act on them again (no endless loop).
      if (opts?.byRule) this.ruleWrites.add(r);
    }
    this.counters.readingsIn += readings.length;
    // The store is shared fairly between accounts: the device's owner, or the device itself where not told.
    this.batcher.enqueue(readings, settler, share);
  }

  /** Retention ran: sensors may have been forgotten, making room under the sensors-per-device limit. */
  sensorsPruned(): void {
    this.sensorLimit.forgetAll();
  }

  gets(deviceId: string, sensor: string, side?: Side): Promise<StoredReading | null> {
    return this.store.latest(deviceId, sensor, side);
  }

  sensors(deviceId: string, side?: Side, page?: SensorPage): Promise<StoredReading[]> {
    return this.store.latestAll(deviceId, side, page);
  }

  history(deviceId: string, sensor: string, query: HistoryQuery): Promise<StoredReading[]> {
    return this.store.history(deviceId, sensor, query);
  }

  /**
   * A device's key or existence changed (here, on another node, or by the CLI): close the connections
   * that authenticated with a key that no longer holds, and tell the other nodes.
   */
  async deviceChanged(deviceId: string, kind: 'rotated' | 'deleted' | 'access', announce = true): Promise<void> {
    await this.deviceWatch.recheck(deviceId);
    if (announce) {
      await this.bus.publish({ type: 'device', deviceId, kind }).catch((err) => this.log.warn({ err, deviceId }, 'could not announce device change; other nodes will see it in the store'));
    }
  }

  /**
   * Until this node heard of the deletion (made by the CLI or another node), its connections kept writing:
   * commit what they queued, then remove it, so nothing of the device outlives it.
   */
  private async deviceDeleted(deviceId: string): Promise<void> {
    this.sensorLimit.forget(deviceId);
    await this.drain();
    await this.store.deleteDevice(deviceId);
  }

  private committed(stored: StoredReading[], written: NewReading[]): void {
    let start = 0;
    // Readings arrive grouped by writer more often than not; publish one bus event per run of a device.
    for (let i = 1; i <= stored.length; i++) {
      if (i === stored.length || stored[i].deviceId !== stored[start].deviceId) {
        const run = stored.slice(start, i);
        this.receivers.deliver(run, written, start);
        this.onDeviceStored?.(run[0].deviceId, written, start, i);
        this.bus.publish({ type: 'readings', deviceId: run[0].deviceId, readings: run }).catch((err) => {
          this.observer.busPublishFailed?.();
          this.log.error({ err, deviceId: run[0].deviceId }, 'could not publish readings to other nodes; they are stored, and other nodes catch up when the bus returns');
        });
        start = i;
      }
    }
  }

  /** A chunk for one connection; while its sync is being made, only the newest per sensor is held for after it. */
  sendBlob(receiver: Receiver, d: BlobDelivery): void {
    this.receivers.sendBlob(receiver, d);
  }

  private fromBus(event: BusEvent): void {
    if (event.type === 'readings') {
      const r = event.readings;
      this.observer.busLag?.(Math.max(0, Date.now() - r[r.length - 1].time) / 1000, r.length);
      this.receivers.deliver(r);
    } else if (event.type === 'call' || event.type === 'reply' || event.type === 'state') this.calls.fromBus(event);
    else if (event.type === 'blob') this.onBusBlob?.(event);
    else void this.deviceWatch.recheck(event.deviceId).catch((err) => this.log.warn({ err }, 'could not recheck device'));
  }

  /** Refuses new work; what is already queued is still committed by drain(). */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Commits every queued write. */
  drain(): Promise<void> {
    return this.batcher.drain();
  }

  async close(): Promise<void> {
    this.stopAccepting();
    this.deviceWatch.stop();
    await this.calls.close();
    await this.drain();
    await this.deviceWatch.settled();
    await this.receivers.resynced();
    await this.presence.stop();
  }
}
