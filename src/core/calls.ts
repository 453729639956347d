import { IotcError } from './errors.js';
import type { Relay } from './relay.js';
import type { BusCall, BusEvent } from '../bus/types.js';
import type { Logger } from '../log.js';
import { FINAL_CALL_STATES } from '../store/types.js';
import type { CallOutcome, Device } from '../store/types.js';
import { CallFailed, callFrame, callStateFrame, callUpdateOf, callView, newCallId, secondsText } from './call-wire.js';
import type { CallAnswer, CallRequest, CallUpdate, CallView, DeviceCall } from './call-wire.js';

export * from './call-wire.js';

/** How long a live call waits for another node to say it reached the device, when presence says the device is offline. */
const DELIVERY_WAIT_MS = 1000;
/** HTTP long-polls for calls one device may hold open on a node. */
const MAX_POLLERS_PER_DEVICE = 8;

export interface CallLimits {
  maxCallsPerDevice: number;
  maxCallsPerUser: number;
}

interface Pending {
  deviceId: string;
  settle(outcome: CallOutcome | null): void;
  /** Another node handed the call to a device connection. */
  delivered: boolean;
  onDelivered?: () => void;
}

/**
 * Commands with confirmation: an app calls a method of its device and gets the device's answer, a timeout or
 * an offline error. Live calls wait in memory on the node that took them; the device may be connected to any
 * node (the call and its answer cross through the bus). Persistent calls are stored, delivered when the device
 * connects, and expire by time; their state changes are pushed to the device's apps on every node.
 */
export class CallRouter {
  /** Live calls made on this node, by call id. */
  private readonly pending = new Map<string, Pending>();
  /** Live calls from other nodes handed to devices here, so their answers can be sent back. */
  private readonly delivered = new Map<string, { deviceId: string; expires: number }>();
  private readonly inflightByDevice = new Map<string, number>();
  private readonly inflightByUser = new Map<number, number>();
  /** Devices long-polling over HTTP for their next call. */
  private readonly pollers = new Map<string, Set<(c: DeviceCall | null) => void>>();
  /** Requests waiting for a persistent call to change, woken early when it does. */
  private readonly watchers = new Map<string, Set<() => void>>();
  private sweepTimer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> = Promise.resolve();
  private closing = false;

  constructor(
    private readonly relay: Relay,
    private readonly limits: CallLimits,
    private readonly log: Logger,
    private readonly sweepEveryMs = 1000,
  ) {}

  start(): void {
    this.sweepTimer = setInterval(() => void this.sweep(), this.sweepEveryMs);
    this.sweepTimer.unref();
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    this.closing = true;
    for (const p of [...this.pending.values()]) p.settle(null);
    for (const set of [...this.pollers.values()]) for (const poll of [...set]) poll(null);
    await this.sweeping;
  }

  call(device: Device, req: CallRequest): Promise<CallAnswer> {
    return req.persistent ? this.callPersistent(device, req) : this.callLive(device, req);
  }

  private async callLive(device: Device, req: CallRequest): Promise<CallAnswer> {
    const perDevice = this.inflightByDevice.get(device.id) ?? 0;
    const perUser = this.inflightByUser.get(device.userId) ?? 0;
    if (perDevice >= this.limits.maxCallsPerDevice) throw this.limitError('device');
    if (perUser >= this.limits.maxCallsPerUser) throw this.limitError('user');
    this.inflightByDevice.set(device.id, perDevice + 1);
    this.inflightByUser.set(device.userId, perUser + 1);
    // The answer may come through the bus even when the app's connection is not a relay connection (HTTP, a poll).
    const releaseInterest = this.relay.holdInterest(device.id);
    const time = Date.now();
    const c: DeviceCall = { call: newCallId(), method: req.method, params: req.params ?? null, time };
    let timer: NodeJS.Timeout | undefined;
    const answered = new Promise<CallOutcome | null>((resolve) => {
      const settle = (o: CallOutcome | null) => {
        clearTimeout(timer);
        this.pending.delete(c.call);
        resolve(o);
      };
      this.pending.set(c.call, { deviceId: device.id, settle, delivered: false });
      timer = setTimeout(() => settle(null), req.timeoutMs);
    });
    try {
      const here = this.deliverHere(device.id, c);
      await this.publish({ type: 'call', deviceId: device.id, call: { ...c, expires: time + req.timeoutMs, persistent: false } });
      // Presence is saved about once a second: a device that has just connected to another node is found by
      // that node's "delivered" notice instead. One node alone (the in-process bus) has no one else to ask.
      if (here === 0 && !(await this.onlineElsewhere(device)) && !(await this.deliveredWithin(c.call, this.relay.bus.kind === 'memory' ? 0 : DELIVERY_WAIT_MS))) {
        this.pending.get(c.call)?.settle(null);
        throw new IotcError('E_OFFLINE', 'The device is not connected');
      }
      const outcome = await answered;
      if (outcome === null && this.closing) throw new CallFailed('E_SHUTTING_DOWN', 'The server is shutting down; call again shortly', c.call);
      if (outcome === null) throw new CallFailed('E_TIMEOUT', `The device did not answer within ${secondsText(req.timeoutMs)}`, c.call);
      if ('error' in outcome) throw new CallFailed('E_DEVICE', outcome.error, c.call);
      return { call: c.call, state: 'answered', result: outcome.result };
    } finally {
      this.inflightByDevice.set(device.id, (this.inflightByDevice.get(device.id) ?? 1) - 1);
      if (this.inflightByDevice.get(device.id)! <= 0) this.inflightByDevice.delete(device.id);
      this.inflightByUser.set(device.userId, (this.inflightByUser.get(device.userId) ?? 1) - 1);
      if (this.inflightByUser.get(device.userId)! <= 0) this.inflightByUser.delete(device.userId);
      releaseInterest();
    }
  }

  private async callPersistent(device: Device, req: CallRequest): Promise<CallAnswer> {
    const now = Date.now();
    const made = await this.relay.store.calls.create(
      { id: newCallId(), deviceId: device.id, userId: device.userId, method: req.method, params: req.params ?? null, created: now, expires: now + req.timeoutMs },
      { perDevice: this.limits.maxCallsPerDevice, perUser: this.limits.maxCallsPerUser },
      now,
    );
    if ('limit' in made) throw this.limitError(made.limit);
    const stored = made.call;
    const c: DeviceCall = { call: stored.id, method: stored.method, params: stored.params, time: now };
    let state: 'queued' | 'sent' = 'queued';
    if (this.deliverHere(device.id, c) > 0 && (await this.relay.store.calls.markSent(c.call, Date.now()))) state = 'sent';
    await this.publish({ type: 'call', deviceId: device.id, call: { ...c, expires: stored.expires, persistent: true } });
    return { call: c.call, state };
  }

  private limitError(which: 'device' | 'user'): IotcError {
    return which === 'device'
      ? new IotcError('E_LIMIT', `This device already has ${this.limits.maxCallsPerDevice} open calls (limit set by --max-calls-per-device / IOTC_MAX_CALLS_PER_DEVICE)`)
      : new IotcError('E_LIMIT', `Your devices already have ${this.limits.maxCallsPerUser} open calls (limit set by --max-calls-per-user / IOTC_MAX_CALLS_PER_USER)`);
  }

  /** Hands a call to every device-side connection of the device on this node and to its HTTP pollers; returns how many. */
  private deliverHere(deviceId: string, c: DeviceCall): number {
    let count = 0;
    const json = callFrame(c);
    for (const r of this.relay.receiversOf(deviceId, 'device')) {
      if (!r.call) continue;
      r.call(c, json);
      count++;
    }
    const polls = this.pollers.get(deviceId);
    if (polls) {
      count += polls.size;
      for (const poll of [...polls]) poll(c);
    }
    return count;
  }

  /** Whether another node reports having handed the live call to the device within `ms` (or it was answered already). */
  private deliveredWithin(callId: string, ms: number): Promise<boolean> {
    const pending = this.pending.get(callId);
    if (!pending || pending.delivered) return Promise.resolve(true);
    if (ms <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(pending.delivered || !this.pending.has(callId)), ms);
      pending.onDelivered = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }

  /** Whether a device-side connection is open on another node (presence, as the store has it). */
  private async onlineElsewhere(device: Device): Promise<boolean> {
    const devices = await this.relay.store.listDevices(device.userId);
    return devices.some((d) => d.id === device.id && d.online);
  }

  private async publish(event: BusEvent): Promise<void> {
    await this.relay.bus.publish(event).catch((err) => this.log.warn({ err, deviceId: event.deviceId }, 'could not publish a call event to other nodes'));
  }

  /** A device answers a call. The first answer wins; an unknown, answered or expired call is E_NOT_FOUND. */
  async reply(deviceId: string, callId: string, outcome: CallOutcome): Promise<void> {
    const pending = this.pending.get(callId);
    if (pending && pending.deviceId === deviceId) {
      pending.settle(outcome);
      return;
    }
    const delivered = this.delivered.get(callId);
    if (delivered && delivered.deviceId === deviceId) {
      this.delivered.delete(callId);
      await this.publish({ type: 'reply', deviceId, call: callId, ...outcome });
      return;
    }
    const done = await this.relay.store.calls.finish(callId, deviceId, outcome, Date.now());
    if (done) {
      this.announce(deviceId, callUpdateOf(done));
      return;
    }
    throw new IotcError('E_NOT_FOUND', `No open call "${callId.slice(0, 64)}" for this device: unknown, already answered or expired`);
  }

  /** A persistent call of the device, or E_NOT_FOUND (also for another device's call). */
  async status(device: Device, callId: string): Promise<CallView> {
    const c = await this.relay.store.calls.get(callId);
    if (!c || c.deviceId !== device.id) throw new IotcError('E_NOT_FOUND', `No call "${callId.slice(0, 64)}" for this device`);
    return callView(c);
  }

  /** The call once answered or expired, or as it stands after `waitMs`. */
  async waitFinal(device: Device, callId: string, waitMs: number, aborted: () => boolean = () => false): Promise<CallView> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const view = await this.status(device, callId);
      const left = deadline - Date.now();
      if (FINAL_CALL_STATES.includes(view.state) || left <= 0 || aborted()) return view;
      // Woken at once by a change seen on this node; the store is read again at least every second for the rest.
      await new Promise<void>((resolve) => {
        let set = this.watchers.get(callId);
        if (!set) this.watchers.set(callId, (set = new Set()));
        const wake = () => {
          clearTimeout(timer);
          set!.delete(wake);
          if (set!.size === 0) this.watchers.delete(callId);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(1000, left));
        set.add(wake);
      });
    }
  }

  /** An HTTP device's long-poll: its oldest queued call, or the next call made within `waitMs`, or null. */
  async next(device: Device, waitMs: number, aborted: () => boolean = () => false): Promise<DeviceCall | null> {
    const [queued] = await this.relay.store.calls.open(device.id, Date.now(), { queuedOnly: true, limit: 1 });
    if (queued && (await this.relay.store.calls.markSent(queued.id, Date.now()))) {
      this.announce(device.id, { call: queued.id, state: 'sent' });
      return { call: queued.id, method: queued.method, params: queued.params, time: queued.created };
    }
    if (waitMs <= 0 || aborted()) return null;
    if ((this.pollers.get(device.id)?.size ?? 0) >= MAX_POLLERS_PER_DEVICE) {
      throw new IotcError('E_TOO_MANY_CONNECTIONS', `At most ${MAX_POLLERS_PER_DEVICE} long-polls for calls per device at once`);
    }
    return new Promise((resolve) => {
      let set = this.pollers.get(device.id);
      if (!set) this.pollers.set(device.id, (set = new Set()));
      // Persistent calls made on other nodes are published to the nodes interested in the device.
      const releaseInterest = this.relay.holdInterest(device.id);
      const poll = (c: DeviceCall | null) => {
        clearTimeout(timer);
        clearInterval(check);
        set!.delete(poll);
        if (set!.size === 0 && this.pollers.get(device.id) === set) this.pollers.delete(device.id);
        releaseInterest();
        resolve(c);
      };
      const timer = setTimeout(() => poll(null), waitMs);
      const check = setInterval(() => aborted() && poll(null), 1000);
      set.add(poll);
    });
  }

  /** A device-side connection opened (or, for MQTT, subscribed to its calls): it gets the device's open persistent calls. */
  async deliverOpen(deviceId: string, receiver: { call?(c: DeviceCall, json: string): void }): Promise<void> {
    if (!receiver.call) return;
    try {
      for (const stored of await this.relay.store.calls.open(deviceId, Date.now())) {
        const c: DeviceCall = { call: stored.id, method: stored.method, params: stored.params, time: stored.created };
        receiver.call(c, callFrame(c));
        if (stored.state === 'queued' && (await this.relay.store.calls.markSent(stored.id, Date.now()))) this.announce(deviceId, { call: stored.id, state: 'sent' });
      }
    } catch (err) {
      this.log.warn({ err, deviceId }, 'could not deliver queued calls; they are delivered at the next connection');
    }
  }

  /** Tells the device's apps here (and, through the bus, on other nodes) that a persistent call changed. */
  private announce(deviceId: string, u: CallUpdate, publish = true): void {
    const json = callStateFrame(u, Date.now());
    for (const r of this.relay.receiversOf(deviceId, 'client')) r.callState?.(u, json);
    for (const wake of [...(this.watchers.get(u.call) ?? [])]) wake();
    if (publish) void this.publish({ type: 'state', deviceId, ...u });
  }

  fromBus(event: BusEvent): void {
    if (event.type === 'call') void this.callFromBus(event.deviceId, event.call);
    else if (event.type === 'reply') {
      const pending = this.pending.get(event.call);
      if (!pending || pending.deviceId !== event.deviceId) return;
      if (event.delivered) {
        pending.delivered = true;
        pending.onDelivered?.();
      } else pending.settle(event.error !== undefined ? { error: event.error } : { result: event.result ?? null });
    } else if (event.type === 'state') {
      const { call, state, result, error } = event;
      this.announce(event.deviceId, error !== undefined ? { call, state, error } : state === 'answered' ? { call, state, result } : { call, state }, false);
    }
  }

  private async callFromBus(deviceId: string, bc: BusCall): Promise<void> {
    if (bc.expires <= Date.now()) return;
    const c: DeviceCall = { call: bc.call, method: bc.method, params: bc.params, time: bc.time };
    if (this.deliverHere(deviceId, c) === 0) return;
    if (!bc.persistent) {
      this.delivered.set(c.call, { deviceId, expires: bc.expires });
      await this.publish({ type: 'reply', deviceId, call: c.call, delivered: true });
      return;
    }
    try {
      if (await this.relay.store.calls.markSent(c.call, Date.now())) this.announce(deviceId, { call: c.call, state: 'sent' });
    } catch (err) {
      this.log.warn({ err, deviceId }, 'could not mark a call sent');
    }
  }

  /** Expires persistent calls past their time (each node may; the store hands each expired call to one of them). */
  private sweep(): Promise<void> {
    this.sweeping = this.sweeping.then(async () => {
      const now = Date.now();
      for (const [id, d] of this.delivered) if (d.expires <= now) this.delivered.delete(id);
      try {
        for (const c of await this.relay.store.calls.expire(now)) this.announce(c.deviceId, callUpdateOf(c));
      } catch (err) {
        this.log.warn({ err }, 'could not expire calls; will retry');
      }
    });
    return this.sweeping;
  }
}
