import { IotcError } from './errors.js';
import { blobDelivery, handOverBlob, syncedBlobs } from './blobs.js';
import type { BlobDelivery } from './blobs.js';
import type { CallUpdate, DeviceCall } from './calls.js';
import type { PresenceTracker } from './presence.js';
import { readingJson } from './reading-wire.js';
import type { Role } from './sharing.js';
import type { Bus } from '../bus/types.js';
import type { Logger } from '../log.js';
import { otherSide } from '../store/types.js';
import type { Device, NewReading, Side, Store, StoredBlob, StoredReading } from '../store/types.js';

/** How far apart the nodes' clocks may be for a resync to still find every chunk stored while the bus was down. */
const CLOCK_SLACK_MS = 10_000;

/** One open connection of any door, as the relay sees it. */
export interface Receiver {
  readonly side: Side;
  /** Which door the connection came through ('ws', 'mqtt', 'http'...), for metrics. */
  readonly door?: string;
  /**
   * Hands over a reading the other side wrote; `json` is its wire form, shared by every receiver, and
   * `valueJson`, when the put is at hand, its value's JSON text as checked and stored.
   */
  deliver(reading: StoredReading, json: string, valueJson?: string): void;
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
export interface DeviceReceivers {
  device: readonly Held[];
  client: readonly Held[];
  /** Highest sequence number delivered to each side's connections, so a resync sends only what they missed. */
  seen: { device: number; client: number };
  /** The same for binary chunks (their own sequence). */
  blobSeen: { device: number; client: number };
}

/** What reaches a connection while its sync is made: readings in order, and the newest chunk per sensor. */
interface HeldWhileSettingUp {
  readings: [StoredReading, string][];
  blobs: Map<string, BlobDelivery>;
}

/** What a new connection is sent first: the other side's readings since its side's cursor, and chunks to sync. */
export interface Sync {
  cursor: number;
  missed: StoredReading[];
  chunks: StoredBlob[];
}

/**
 * This node's open connections per device and side: the bus interest they hold, their presence, and the
 * fan-out of each reading to the other side's connections (a new connection's sync first).
 */
export class LocalReceivers {
  private readonly local = new Map<string, DeviceReceivers>();
  /** Bus interest held for devices without connections here (calls awaiting an answer, HTTP pollers). */
  private readonly interests = new Map<string, number>();
  /**
   * Live readings for connections still being set up are held here until their sync is sent, so each reading
   * reaches a new connection once, sync first. A reading written elsewhere while the sync query runs would
   * otherwise arrive twice (live, then again as sync) or live before older sync readings.
   */
  private readonly settingUp = new Map<Receiver, HeldWhileSettingUp>();
  private resyncing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly presence: PresenceTracker,
    private readonly log: Logger,
    /** The relay's counters: readings handed to connections are counted there. */
    private readonly counters: { readingsOut: number },
    private readonly maxConnectionsPerDevice: number,
  ) {}

  /** The open connections of one side of a device. */
  of(deviceId: string, side: Side): Receiver[] {
    return this.local.get(deviceId)?.[side].map((h) => h.receiver) ?? [];
  }

  /** A device's connections, or undefined when it has none here. */
  entry(deviceId: string): DeviceReceivers | undefined {
    return this.local.get(deviceId);
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

  get counts(): { device: number; client: number } {
    let device = 0;
    let client = 0;
    for (const r of this.local.values()) {
      device += r.device.length;
      client += r.client.length;
    }
    return { device, client };
  }

  /** Open connections per door and side, for metrics. */
  byDoor(): Map<string, { device: number; client: number }> {
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

  /** Registers a new connection, its live readings held back until endSetup() has sent its sync. */
  add(device: Device, receiver: Receiver): DeviceReceivers {
    const side = receiver.side;
    let entry = this.local.get(device.id);
    if (entry && entry[side].length >= this.maxConnectionsPerDevice) {
      throw new IotcError('E_TOO_MANY_CONNECTIONS', `At most ${this.maxConnectionsPerDevice} ${side} connections per device`);
    }
    if (!entry) {
      entry = { device: [], client: [], seen: { device: 0, client: 0 }, blobSeen: { device: 0, client: 0 } };
      this.local.set(device.id, entry);
      this.bus.subscribe(device.id);
    }
    this.settingUp.set(receiver, { readings: [], blobs: new Map() });
    // concat sizes the new array exactly; a spread into a literal grows it to 17 slots (~130 B more per idle connection).
    entry[side] = entry[side].concat({ receiver, keyHash: device.keyHash });
    this.presence.change(device.id, side, +1);
    return entry;
  }

  /** The sync could not be read: the connection is unregistered, its side's cursor left where it was (it saw nothing). */
  abandonSetup(deviceId: string, receiver: Receiver): void {
    this.settingUp.delete(receiver);
    this.remove(deviceId, receiver, false);
  }

  /**
   * Sends a new connection its sync (each reading marked `"sync":true`), then what arrived live meanwhile and the
   * sync did not hold, then the newest chunk of each sensor likewise. `sync` is null when the connection left meanwhile.
   */
  endSetup(entry: DeviceReceivers, receiver: Receiver, sync: Sync | null): void {
    const held = this.settingUp.get(receiver) ?? { readings: [], blobs: new Map() };
    this.settingUp.delete(receiver);
    if (!sync) return;
    const side = receiver.side;
    const synced = new Set<number>();
    for (const r of sync.missed) {
      receiver.deliver(r, readingJson(r, { sync: true }));
      synced.add(r.seq);
    }
    for (const [r, json] of held.readings) if (!synced.has(r.seq)) receiver.deliver(r, json);
    for (const d of syncedBlobs(sync.chunks, held.blobs)) {
      handOverBlob(receiver, d);
      if (d.info.seq > entry.blobSeen[side]) entry.blobSeen[side] = d.info.seq;
    }
    entry.seen[side] = sync.missed.reduce((max, r) => Math.max(max, r.seq), Math.max(entry.seen[side], sync.cursor));
  }

  remove(deviceId: string, receiver: Receiver, saveCursor = true): void {
    const entry = this.local.get(deviceId);
    const held = entry?.[receiver.side];
    if (!entry || !held!.some((h) => h.receiver === receiver)) return;
    entry[receiver.side] = without(held!, receiver);
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
   * Hands readings of one device to the other side's connections here. `written`, when given, holds each reading
   * as written from `offset` on: its value's JSON text, made when the put was checked, is sent as it is.
   */
  deliver(readings: StoredReading[], written?: readonly NewReading[], offset = 0): void {
    const entry = this.local.get(readings[0].deviceId);
    if (!entry) return;
    for (let i = 0; i < readings.length; i++) {
      const r = readings[i];
      const to = otherSide(r.side);
      const held = entry[to];
      if (held.length === 0) continue;
      const valueJson = written?.[offset + i].json;
      const json = readingJson(r, undefined, valueJson);
      for (const h of held) this.send(h.receiver, r, json, valueJson);
      this.counters.readingsOut += held.length;
      if (r.seq > entry.seen[to]) entry.seen[to] = r.seq;
    }
  }

  private send(receiver: Receiver, r: StoredReading, json: string, valueJson?: string): void {
    const held = this.settingUp.size > 0 ? this.settingUp.get(receiver) : undefined;
    if (held) held.readings.push([r, json]);
    else receiver.deliver(r, json, valueJson);
  }

  /** A chunk for one connection; while its sync is being made, only the newest per sensor is held for after it. */
  sendBlob(receiver: Receiver, d: BlobDelivery): void {
    const held = this.settingUp.size > 0 ? this.settingUp.get(receiver) : undefined;
    if (!held) {
      const entry = this.local.get(d.info.deviceId);
      if (entry && d.info.seq > entry.blobSeen[receiver.side]) entry.blobSeen[receiver.side] = d.info.seq;
      return handOverBlob(receiver, d);
    }
    const had = held.blobs.get(d.info.sensor);
    if (!had || had.info.seq < d.info.seq) held.blobs.set(d.info.sensor, d);
  }

  /**
   * The bus came back after an outage: what other nodes published meanwhile may never have arrived.
   * Each connection gets, as a sync, the newest value of every sensor the other side wrote since the last
   * reading its side was given, the same rule as sync-on-connect; and the newest chunk of every sensor
   * stored since the link dropped (`downSince`) that its side was not given.
   */
  resync(downSince = 0): Promise<void> {
    this.resyncing = this.resyncing.then(async () => {
      let sent = 0;
      let chunks = 0;
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
            chunks += await this.resyncChunks(deviceId, entry, side, downSince);
          } catch (err) {
            this.log.warn({ err, deviceId }, 'could not resync a device after the bus returned');
          }
        }
      }
      this.counters.readingsOut += sent;
      if (sent > 0 || chunks > 0) this.log.info({ readings: sent, chunks }, 'resynced connections after the bus returned');
    });
    return this.resyncing;
  }

  /**
   * Chunks are announced on the bus, so those stored on another node while the link was down never came. The
   * chunks' times are the writing node's clock: CLOCK_SLACK_MS keeps a skew between nodes from hiding one.
   */
  private async resyncChunks(deviceId: string, entry: DeviceReceivers, side: Side, downSince: number): Promise<number> {
    let sent = 0;
    const newest = await this.store.latestBlobs(deviceId, otherSide(side));
    for (const info of newest.filter((b) => b.seq > entry.blobSeen[side] && b.time >= downSince - CLOCK_SLACK_MS).sort((a, b) => a.seq - b.seq)) {
      const blob = await this.store.getBlob(deviceId, info.sensor, info.seq);
      // Pruned meanwhile: a newer chunk of the sensor was stored, and reaches the connections live.
      if (!blob) continue;
      const d = blobDelivery(blob, blob.data, true);
      for (const h of entry[side]) this.sendBlob(h.receiver, d);
      sent += entry[side].length;
    }
    return sent;
  }

  /** Resolves once the resync under way (if any) is done. */
  resynced(): Promise<void> {
    return this.resyncing;
  }
}

/** The list less one receiver, in an array of exactly the size left (filter's result keeps room to grow). */
function without(held: readonly Held[], receiver: Receiver): Held[] {
  const left = new Array<Held>(held.length - 1);
  let at = 0;
  for (const h of held) if (h.receiver !== receiver) left[at++] = h;
  return left;
}
