import { IotcError } from './errors.js';
import { CallRouter } from './calls.js';
import type { CallLimits, CallUpdate, DeviceCall } from './calls.js';
import { WriteBatcher } from './write-batcher.js';
import { handOverBlob, syncedBlobs } from './blobs.js';
import type { BlobDelivery } from './blobs.js';
import { PresenceTracker } from './presence.js';
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

/** One open connection of any door, as the relay sees it. */
export interface Receiver {
  readonly side: Side;
  /** Which door the connection came through ('ws', 'mqtt', 'http'...), for metrics. */
  readonly door?: string;
  /** Hands over a reading the other side wrote; `json` is its wire form, shared by every receiver. */
  deliver(reading: StoredReading, json: string): void;
  /** The device's key was rotated or the device deleted: the door closes the connection with this error. */
  revoked(err: IotcError): void;
  /** A call for the device (device-side connections); `json` is its WebSocket frame. A door without it cannot take calls. */
  call?(call: DeviceCall, json: string): void;
  /** A persistent call of the device changed state (client-side connections); `json` is its WebSocket frame. */
  callState?(update: CallUpdate, json: string): void;
  /**
   * Hands over a binary chunk the other side wrote (see core/blobs.ts). A receiver without it is given
   * the chunk's JSON notice through `deliver`, so a text-only connection never sees bytes it cannot read.
   */
  deliverBlob?(blob: BlobDelivery): void;
  /**
   * Set when the connection acts for a user's account (a login cookie, an API token) rather than with the
   * device's key: what they may do. The relay updates `role` when the owner changes the share, and revokes
   * the connection (E_FORBIDDEN) when the share is withdrawn.
   */
  readonly grant?: { userId: number; role: Role };
}

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

/** A live connection and the key hash it authenticated with, so a rotation closes exactly the old ones. */
interface Held {
  receiver: Receiver;
  keyHash: string;
}

/**
 * A device's connections on this node, per side. Plain arrays: a device has one or a few connections
 * per side, and an array holds them in a fraction of the memory of a Set (it counts at 20 000 connections).
 * Never changed in place, only replaced, so a delivery loop can walk one while a receiver leaves.
 */
interface LocalReceivers {
  device: readonly Held[];
  client: readonly Held[];
  /** Highest sequence number delivered to each side's connections, so a resync sends only what they missed. */
  seen: { device: number; client: number };
}

/** What reaches a connection while its sync is made: readings in order, and the newest chunk per sensor. */
interface HeldWhileSettingUp {
  readings: [StoredReading, string][];
  blobs: Map<string, BlobDelivery>;
}

/** The wire form of a reading as every door delivers it. */
export function readingJson(r: StoredReading, extra?: Record<string, unknown>): string {
  if (extra === undefined && r.value !== undefined) {
    // The same text JSON.stringify gives for the object below, without building the object: this runs for every delivery.
    return `{"sensor":${JSON.stringify(r.sensor)},"value":${JSON.stringify(r.value)},"time":${r.time},"write":"${r.side}"}`;
  }
  return JSON.stringify({ sensor: r.sensor, value: r.value, time: r.time, write: r.side, ...extra });
}

export function readingView(r: StoredReading): { sensor: string; value: unknown; time: number; write: Side } {
  return { sensor: r.sensor, value: r.value, time: r.time, write: r.side };
}

/**
 * The relay core: authenticates devices, stores readings and routes them to the other side, on this node
 * and (through the bus) on others. It knows nothing of sockets: every door talks to it through Receiver.
 */
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
  private readonly local = new Map<string, LocalReceivers>();
  /** Bus interest held for devices without connections here (calls awaiting an answer, HTTP pollers). */
  private readonly interests = new Map<string, number>();
  private readonly maxConnectionsPerDevice: number;
  private readonly authLimits: AuthLimits | undefined;
  private readonly deviceEventPollMs: number;
  private lastDeviceEvent = 0;
  private pollTimer: NodeJS.Timeout | null = null;
  private polling: Promise<void> = Promise.resolve();
  private accepting = true;
  private resyncing: Promise<void> = Promise.resolve();
  /**
   * Live readings for connections still being set up are held here until their sync is sent, so each reading
   * reaches a new connection once, sync first. A reading written elsewhere while the sync query runs would
   * otherwise arrive twice (live, then again as sync) or live before older sync readings.
   */
  private readonly settingUp = new Map<Receiver, HeldWhileSettingUp>();
  observer: RelayObserver = {};
  /**
   * Told of every batch this node committed (so each reading is evaluated once in a cluster): the stored readings
   * and, at the same positions, the readings as written (isRuleWrite tells a rule's own). Runs inside the commit
   * callback, before the acks are sent: it must only keep the batch for later, never walk it or wait.
   */
  onCommitted: ((stored: StoredReading[], written: NewReading[]) => void) | null = null;
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
    this.maxConnectionsPerDevice = opts.maxConnectionsPerDevice;
    this.authLimits = opts.authLimits;
    this.deviceEventPollMs = opts.deviceEventPollMs ?? 1000;
    this.presence = new PresenceTracker(opts.store, opts.nodeId, opts.log);
    this.valueLimits = opts.valueLimits ?? DEFAULT_VALUE_LIMITS;
    this.sensorLimit = new SensorLimit(opts.store, opts.maxSensorsPerDevice ?? 0);
    this.batcher = new WriteBatcher(opts.store, (stored, written) => {
      this.committed(stored);
      this.onCommitted?.(stored, written);
    });
    this.batcher.onBatch = (size, seconds, ok) => this.observer.batch?.(size, seconds, ok);
    this.calls = new CallRouter(this, opts.callLimits ?? { maxCallsPerDevice: 100, maxCallsPerUser: 1000 }, opts.log);
    this.bus.onEvent((event) => this.fromBus(event));
    this.bus.onReconnect?.(() => void this.resync());
  }

  async start(): Promise<void> {
    this.lastDeviceEvent = await this.store.lastDeviceEventSeq();
    this.presence.start();
    this.pollTimer = setInterval(() => void this.pollDeviceEvents(), this.deviceEventPollMs);
    this.pollTimer.unref();
    this.calls.start();
  }

  /** This node's open connections of one side of a device (calls, binary chunks: deliveries that are not readings). */
  receiversOf(deviceId: string, side: Side): Receiver[] {
    return this.local.get(deviceId)?.[side].map((h) => h.receiver) ?? [];
  }

  /** Keeps this node subscribed to the device's bus events until the returned function is called. */
  holdInterest(deviceId: string): () => void {
    this.interests.set(deviceId, (this.interests.get(deviceId) ?? 0) + 1);
    this.bus.subscribe(deviceId);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.interests.get(deviceId) ?? 1) - 1;
      if (left > 0) this.interests.set(deviceId, left);
      else {
        this.interests.delete(deviceId);
        if (!this.local.has(deviceId)) this.bus.unsubscribe(deviceId);
      }
    };
  }

  get connections(): { device: number; client: number } {
    let device = 0;
    let client = 0;
    for (const r of this.local.values()) {
      device += r.device.length;
      client += r.client.length;
    }
    return { device, client };
  }

  /** Open connections per door and side, for metrics. */
  connectionsByDoor(): Map<string, { device: number; client: number }> {
    const out = new Map<string, { device: number; client: number }>();
    for (const entry of this.local.values()) {
      for (const side of ['device', 'client'] as const) {
        for (const { receiver: r } of entry[side]) {
          const door = r.door ?? 'other';
          let counts = out.get(door);
          if (!counts) out.set(door, (counts = { device: 0, client: 0 }));
          counts[side]++;
        }
      }
    }
    return out;
  }

  /** Readings accepted but not yet committed: the store's backlog. */
  get pendingWrites(): number {
    return this.batcher.pending;
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
    let entry = this.local.get(device.id);
    if (entry && entry[side].length >= this.maxConnectionsPerDevice) {
      throw new IotcError('E_TOO_MANY_CONNECTIONS', `At most ${this.maxConnectionsPerDevice} ${side} connections per device`);
    }
    if (!entry) {
      entry = { device: [], client: [], seen: { device: 0, client: 0 } };
      this.local.set(device.id, entry);
      this.bus.subscribe(device.id);
    }
    this.settingUp.set(receiver, { readings: [], blobs: new Map() });
    entry[side] = [...entry[side], { receiver, keyHash: device.keyHash }];
    this.presence.change(device.id, side, +1);

    let detached = false;
    const attachment: Attachment = {
      device,
      side,
      get role() {
        return receiver.grant?.role ?? 'owner';
      },
      detach: () => {
        if (detached) return;
        detached = true;
        this.remove(device.id, receiver);
      },
    };

    let missed: StoredReading[];
    let cursor: number;
    let chunks: StoredBlob[];
    try {
      [cursor, chunks] = await Promise.all([this.store.getCursor(device.id, side), this.store.blobsToSync(device.id, side)]);
      missed = await this.store.latestSince(device.id, otherSide(side), cursor);
    } catch (err) {
      this.settingUp.delete(receiver);
      // The caller gets no attachment to detach: unregister here, or the slot and its presence leak for good.
      // The side saw nothing, so its sync cursor stays where it was.
      detached = true;
      this.remove(device.id, receiver, false);
      throw err;
    }
    const held = this.settingUp.get(receiver) ?? { readings: [], blobs: new Map() };
    this.settingUp.delete(receiver);
    if (!detached) {
      const synced = new Set<number>();
      for (const r of missed) {
        receiver.deliver(r, readingJson(r, { sync: true }));
        synced.add(r.seq);
      }
      for (const [r, json] of held.readings) if (!synced.has(r.seq)) receiver.deliver(r, json);
      for (const d of syncedBlobs(chunks, held.blobs)) handOverBlob(receiver, d);
      entry.seen[side] = missed.reduce((max, r) => Math.max(max, r.seq), Math.max(entry.seen[side], cursor));
      // Persistent calls that waited for the device; not awaited: the connection is usable meanwhile.
      if (side === 'device') void this.calls.deliverOpen(device.id, receiver);
    }
    return attachment;
  }

  private remove(deviceId: string, receiver: Receiver, saveCursor = true): void {
    const entry = this.local.get(deviceId);
    const held = entry?.[receiver.side];
    if (!entry || !held!.some((h) => h.receiver === receiver)) return;
    entry[receiver.side] = held!.filter((h) => h.receiver !== receiver);
    const left = this.presence.change(deviceId, receiver.side, -1);
    if (left === 0 && saveCursor) {
      // This side has now seen everything up to here: a later connection syncs only what comes after.
      this.store.advanceCursor(deviceId, receiver.side).catch((err) => this.log.warn({ err, deviceId }, 'could not save sync cursor'));
    }
    if (entry.device.length === 0 && entry.client.length === 0) {
      this.local.delete(deviceId);
      if (!this.interests.has(deviceId)) this.bus.unsubscribe(deviceId);
    }
  }

  /**
   * Stores the readings (one transaction per event-loop turn) and resolves once they are committed.
   * Every value is checked first, and the device's sensor limit: a reading that breaks a rule is refused
   * here, alone, before it can join (and fail) a batch shared with other devices.
   */
  put(deviceId: string, side: Side, writes: SensorWrite[], opts?: { byRule?: boolean }): Promise<StoredReading[]> {
    if (!this.accepting) return Promise.reject(new IotcError('E_SHUTTING_DOWN'));
    let jsons: string[];
    try {
      jsons = writes.map((w, i) => checkValue(w.value, this.valueLimits, writes.length === 1 ? 'value' : `value of reading ${i + 1} ("${w.sensor.slice(0, 64)}")`));
    } catch (err) {
      return Promise.reject(err);
    }
    const store = () => {
      // A put that waited for its sensors' check may find the server stopping meanwhile.
      if (!this.accepting) throw new IotcError('E_SHUTTING_DOWN');
      const time = Date.now();
      const readings: NewReading[] = writes.map((w, i) => ({ deviceId, sensor: w.sensor, value: w.value, side, time, json: jsons[i] }));
      // A rule's own writes are marked, so rules never act on them again (no endless loop).
      if (opts?.byRule) for (const r of readings) this.ruleWrites.add(r);
      this.counters.readingsIn += readings.length;
      return this.batcher.write(readings);
    };
    const admitted = this.sensorLimit.admit(deviceId, writes.map((w) => w.sensor));
    return admitted === null ? store() : admitted.then(store);
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
    await this.recheckDevice(deviceId);
    if (announce) {
      await this.bus.publish({ type: 'device', deviceId, kind }).catch((err) => this.log.warn({ err, deviceId }, 'could not announce device change; other nodes will see it in the store'));
    }
  }

  private async recheckDevice(deviceId: string): Promise<void> {
    const entry = this.local.get(deviceId);
    if (!entry) return;
    const current = await this.store.getDevice(deviceId);
    for (const { receiver, keyHash } of [...entry.device, ...entry.client]) {
      if (!current) receiver.revoked(new IotcError('E_DEVICE_DELETED'));
      else if (receiver.grant) {
        // A user's connection holds no key: it lasts as long as the user's access, with the role they have now.
        const role = current.userId === receiver.grant.userId ? 'owner' : await this.store.sharing.roleOf(deviceId, receiver.grant.userId);
        if (role) {
          (receiver.grant as { role: Role }).role = role;
          continue;
        }
        receiver.revoked(new IotcError('E_FORBIDDEN', 'The owner stopped sharing this device with you'));
      } else if (keyHash !== current.keyHash) receiver.revoked(new IotcError('E_KEY_ROTATED'));
      else continue;
      // A deleted device keeps no cursor.
      this.remove(deviceId, receiver, current !== null);
    }
    if (!current) {
      this.sensorLimit.forget(deviceId);
      // Until this node heard of the deletion (made by the CLI or another node), its connections kept writing:
      // commit what they queued, then remove it, so nothing of the device outlives it.
      await this.drain();
      await this.store.deleteDevice(deviceId);
    }
  }

  private pollDeviceEvents(): Promise<void> {
    this.polling = this.polling.then(async () => {
      try {
        const events = await this.store.deviceEventsSince(this.lastDeviceEvent);
        for (const e of events) {
          this.lastDeviceEvent = e.seq;
          await this.recheckDevice(e.deviceId);
        }
      } catch (err) {
        this.log.warn({ err }, 'could not read device events; will retry');
      }
    });
    return this.polling;
  }

  private committed(stored: StoredReading[]): void {
    let start = 0;
    // Readings arrive grouped by writer more often than not; publish one bus event per run of a device.
    for (let i = 1; i <= stored.length; i++) {
      if (i === stored.length || stored[i].deviceId !== stored[start].deviceId) {
        const run = stored.slice(start, i);
        this.deliverLocal(run);
        this.bus.publish({ type: 'readings', deviceId: run[0].deviceId, readings: run }).catch((err) => {
          this.observer.busPublishFailed?.();
          this.log.error({ err, deviceId: run[0].deviceId }, 'could not publish readings to other nodes; they are stored, and other nodes catch up when the bus returns');
        });
        start = i;
      }
    }
  }

  private deliverLocal(readings: StoredReading[]): void {
    const entry = this.local.get(readings[0].deviceId);
    if (!entry) return;
    for (const r of readings) {
      const to = otherSide(r.side);
      const held = entry[to];
      if (held.length === 0) continue;
      const json = readingJson(r);
      for (const h of held) this.send(h.receiver, r, json);
      this.counters.readingsOut += held.length;
      if (r.seq > entry.seen[to]) entry.seen[to] = r.seq;
    }
  }

  private send(receiver: Receiver, r: StoredReading, json: string): void {
    const held = this.settingUp.size > 0 ? this.settingUp.get(receiver) : undefined;
    if (held) held.readings.push([r, json]);
    else receiver.deliver(r, json);
  }

  /** A chunk for one connection; while its sync is being made, only the newest per sensor is held for after it. */
  sendBlob(receiver: Receiver, d: BlobDelivery): void {
    const held = this.settingUp.size > 0 ? this.settingUp.get(receiver) : undefined;
    if (!held) return handOverBlob(receiver, d);
    const had = held.blobs.get(d.info.sensor);
    if (!had || had.info.seq < d.info.seq) held.blobs.set(d.info.sensor, d);
  }

  /**
   * The bus came back after an outage: what other nodes published meanwhile may never have arrived.
   * Each connection gets, as a sync, the newest value of every sensor the other side wrote since the last
   * reading its side was given, the same rule as sync-on-connect.
   */
  private resync(): Promise<void> {
    this.resyncing = this.resyncing.then(async () => {
      let sent = 0;
      for (const [deviceId, entry] of [...this.local]) {
        for (const side of ['device', 'client'] as const) {
          if (entry[side].length === 0) continue;
          try {
            const missed = (await this.store.latestSince(deviceId, otherSide(side), entry.seen[side])).filter((r) => r.seq > entry.seen[side]);
            for (const r of missed) {
              const json = readingJson(r, { sync: true });
              for (const h of entry[side]) this.send(h.receiver, r, json);
              entry.seen[side] = Math.max(entry.seen[side], r.seq);
              sent += entry[side].length;
            }
          } catch (err) {
            this.log.warn({ err, deviceId }, 'could not resync a device after the bus returned');
          }
        }
      }
      this.counters.readingsOut += sent;
      if (sent > 0) this.log.info({ readings: sent }, 'resynced connections after the bus returned');
    });
    return this.resyncing;
  }

  private fromBus(event: BusEvent): void {
    if (event.type === 'readings') {
      const r = event.readings;
      this.observer.busLag?.(Math.max(0, Date.now() - r[r.length - 1].time) / 1000, r.length);
      this.deliverLocal(r);
    } else if (event.type === 'call' || event.type === 'reply' || event.type === 'state') this.calls.fromBus(event);
    else if (event.type === 'blob') this.onBusBlob?.(event);
    else void this.recheckDevice(event.deviceId).catch((err) => this.log.warn({ err }, 'could not recheck device'));
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
    if (this.pollTimer) clearInterval(this.pollTimer);
    await this.calls.close();
    await this.drain();
    await this.polling;
    await this.resyncing;
    await this.presence.stop();
  }
}
