/**
 * The automation engine of one node. Readings this node committed are handed over by the relay after their
 * commit (never on the put → ack path) and evaluated in the background; presence and schedules are looked at
 * every tick. Whatever must happen once across a cluster (raise or clear an alert, fire a schedule occurrence,
 * send a delivery) is decided by one atomic store operation, so any node may get there first.
 */
import { Cron } from 'croner';
import type { Config } from '../config.js';
import type { Relay } from '../core/relay.js';
import type { Logger } from '../log.js';
import type { StoredReading, Store } from '../store/types.js';
import { DeliverySender } from './delivery.js';
import type { AutomationEvent, DeliveryPayload } from './delivery.js';
import { compare, describeTrigger } from './model.js';
import type { Rule } from './model.js';

export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

export type EngineConfig = ConstructorParameters<typeof DeliverySender>[1] & Pick<Config, 'deliveryQueue'>;

/** Readings waiting for evaluation; over this, the oldest are dropped (and counted) rather than memory grown. */
const MAX_QUEUED_READINGS = 50_000;
/** How late another node's presence may reach the store (its flush period plus a margin). */
const PRESENCE_LAG_MS = 1500;
/** Finished deliveries, cleared alerts and notifications are kept this long, then pruned (every PRUNE_EVERY_MS). */
export const HISTORY_KEPT_MS = 7 * 86_400_000;
const PRUNE_EVERY_MS = 600_000;
const SERVER_TZ = Intl.DateTimeFormat().resolvedOptions().timeZone;

export class AutomationEngine {
  readonly sender: DeliverySender;
  /** Enabled reading rules (threshold, changed) by device. */
  private byDevice = new Map<string, Rule[]>();
  private presenceRules: Rule[] = [];
  private schedules = new Map<string, { rule: Rule; next: number | null }>();
  private readonly holds = new Map<string, { since: number; timer: NodeJS.Timeout }>();
  private readonly presenceSince = new Map<string, number>();
  private readonly lastFired = new Map<string, number>();
  /**
   * Alone (memory bus), every raise and clear goes through this engine, so whether a rule's alert is open is
   * known here without a store read per reading. In a cluster, the store is asked.
   */
  private readonly openAlerts: Map<string, boolean> | null;
  private queue: StoredReading[] = [];
  private draining: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> = Promise.resolve();
  private lastLoad = 0;
  private lastPrune = 0;
  private stopped = false;
  dropped = 0;

  constructor(
    private readonly store: Store,
    private readonly relay: Relay | null,
    private readonly config: EngineConfig,
    private readonly log: Logger,
    readonly clock: Clock = systemClock,
  ) {
    this.sender = new DeliverySender(store, config, log, clock);
    this.openAlerts = relay?.bus.kind === 'memory' ? new Map() : null;
  }

  private async isOpen(ruleId: string): Promise<boolean> {
    const cached = this.openAlerts?.get(ruleId);
    if (cached !== undefined) return cached;
    const open = await this.store.automations.hasOpenAlert(ruleId);
    this.openAlerts?.set(ruleId, open);
    return open;
  }

  private get reloadEveryMs(): number {
    return Math.max(this.config.rulesTick * 5, 1000);
  }

  async start(): Promise<void> {
    await this.reload();
    if (this.relay) this.relay.onCommitted = (stored, byRule) => this.committed(stored, byRule);
    this.timer = setInterval(() => void this.tick(), this.config.rulesTick);
    this.timer.unref();
    this.sender.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.relay) this.relay.onCommitted = null;
    if (this.timer) clearInterval(this.timer);
    for (const h of this.holds.values()) clearTimeout(h.timer);
    this.holds.clear();
    await this.ticking;
    await this.draining;
    await this.sender.stop();
  }

  /** Rules changed on this node are seen at once; those changed on other nodes at the next reload. */
  async reload(): Promise<void> {
    const rules = await this.store.automations.listEnabledRules();
    this.lastLoad = this.clock.now();
    const byDevice = new Map<string, Rule[]>();
    const presence: Rule[] = [];
    const schedules = new Map<string, { rule: Rule; next: number | null }>();
    const ids = new Set<string>();
    for (const rule of rules) {
      ids.add(rule.id);
      const t = rule.trigger;
      if (t.type === 'threshold' || t.type === 'changed') {
        const list = byDevice.get(rule.deviceId);
        if (list) list.push(rule);
        else byDevice.set(rule.deviceId, [rule]);
      } else if (t.type === 'offline' || t.type === 'online') presence.push(rule);
      else {
        const old = this.schedules.get(rule.id);
        const same = old && old.rule.updatedAt === rule.updatedAt;
        schedules.set(rule.id, { rule, next: same ? old.next : this.nextOccurrence(rule, this.clock.now()) });
      }
    }
    for (const [id, hold] of this.holds) {
      if (!ids.has(id)) {
        clearTimeout(hold.timer);
        this.holds.delete(id);
      }
    }
    for (const map of [this.presenceSince, this.lastFired, this.openAlerts ?? new Map()]) for (const id of map.keys()) if (!ids.has(id)) map.delete(id);
    this.byDevice = byDevice;
    this.presenceRules = presence;
    this.schedules = schedules;
  }

  /** Forget what this node knew of a rule (it was edited or deleted here), then reload. */
  async ruleChanged(ruleId: string): Promise<void> {
    this.openAlerts?.delete(ruleId);
    this.presenceSince.delete(ruleId);
    const hold = this.holds.get(ruleId);
    if (hold) clearTimeout(hold.timer);
    this.holds.delete(ruleId);
    await this.reload();
  }

  private committed(stored: StoredReading[], byRule: (i: number) => boolean): void {
    if (this.byDevice.size === 0 || this.stopped) return;
    for (let i = 0; i < stored.length; i++) {
      // A rule's own writes are never evaluated: a rule cannot trigger itself or another rule into a loop.
      if (this.byDevice.has(stored[i].deviceId) && !byRule(i)) this.queue.push(stored[i]);
    }
    if (this.queue.length > MAX_QUEUED_READINGS) {
      this.dropped += this.queue.length - MAX_QUEUED_READINGS;
      this.queue.splice(0, this.queue.length - MAX_QUEUED_READINGS);
    }
    if (this.queue.length > 0 && !this.draining) this.draining = new Promise<void>((r) => setImmediate(r)).then(() => this.drain());
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      for (const r of batch) {
        for (const rule of this.byDevice.get(r.deviceId) ?? []) {
          const t = rule.trigger;
          if (t.type !== 'threshold' && t.type !== 'changed') continue;
          if (t.sensor !== r.sensor || this.nothingToDo(rule, r)) continue;
          try {
            await this.evaluate(rule, r);
          } catch (err) {
            this.log.warn({ err, rule: rule.id }, 'could not evaluate a rule');
          }
        }
      }
    }
    this.draining = null;
  }

  /**
   * The steady state, decided without a promise: a threshold that does not hold and has no open alert nor a
   * running hold, or one that holds with its alert already open. Most readings end here.
   */
  private nothingToDo(rule: Rule, r: StoredReading): boolean {
    const t = rule.trigger;
    const open = this.openAlerts?.get(rule.id);
    if (t.type !== 'threshold' || open === undefined) return false;
    return compare(r.value, t.op, t.value) ? open : !open && !this.holds.has(rule.id);
  }

  /** Settles once every reading committed so far has been evaluated (tests). */
  async settled(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async evaluate(rule: Rule, r: StoredReading): Promise<void> {
    const t = rule.trigger;
    if (t.type === 'changed') {
      const json = JSON.stringify(r.value);
      // The reading before this one, whichever node committed it.
      const before = (await this.store.history(r.deviceId, r.sensor, { to: r.time, limit: 20 })).filter((h) => h.seq < r.seq);
      const previous = before.length > 0 ? JSON.stringify(before[before.length - 1].value) : undefined;
      if (previous === undefined || previous === json) return;
      const last = this.lastFired.get(rule.id) ?? 0;
      if (rule.cooldownMs > 0 && r.time - last < rule.cooldownMs) return;
      this.lastFired.set(rule.id, r.time);
      await this.fire(rule, 'triggered', r.sensor, r.value, r.time, true);
      return;
    }
    if (t.type !== 'threshold') return;
    if (compare(r.value, t.op, t.value)) {
      if (t.forMs === 0) return this.raise(rule, 'triggered', r.sensor, r.value, r.time);
      if (this.holds.has(rule.id) || (await this.isOpen(rule.id))) return;
      const since = r.time;
      const timer = setTimeout(() => {
        this.holds.delete(rule.id);
        void this.holdElapsed(rule, since).catch((err) => this.log.warn({ err, rule: rule.id }, 'could not check a held condition'));
      }, Math.max(0, since + t.forMs - this.clock.now()));
      timer.unref();
      this.holds.set(rule.id, { since, timer });
    } else {
      const hold = this.holds.get(rule.id);
      if (hold) clearTimeout(hold.timer);
      this.holds.delete(rule.id);
      await this.clear(rule, 'cleared', r.sensor, r.value, r.time);
    }
  }

  /**
   * The condition was met `forMs` ago on this node: it holds if every reading since then (committed on any
   * node) still meets it.
   */
  private async holdElapsed(rule: Rule, since: number): Promise<void> {
    const t = rule.trigger;
    if (t.type !== 'threshold' || this.stopped) return;
    const readings = await this.store.history(rule.deviceId, t.sensor, { from: since, limit: 10_000 });
    if (readings.length === 0 || !readings.every((r) => compare(r.value, t.op, t.value))) return;
    const last = readings[readings.length - 1];
    await this.raise(rule, 'triggered', t.sensor, last.value, this.clock.now());
  }

  private async raise(rule: Rule, event: AutomationEvent['event'], sensor: string | null, value: unknown, time: number): Promise<void> {
    // A read first: while the condition keeps holding, each reading costs no write.
    if (await this.isOpen(rule.id)) return;
    const alert = await this.store.automations.raiseAlert({
      ruleId: rule.id, deviceId: rule.deviceId, userId: rule.userId, detail: { event, sensor, value }, at: time, cooldownMs: rule.cooldownMs,
    });
    // Null is also a raise refused by the cooldown: then no alert is open, and the next reading asks again.
    this.openAlerts?.set(rule.id, alert !== null);
    if (alert) await this.fire(rule, event, sensor, value, time, true);
  }

  private async clear(rule: Rule, event: AutomationEvent['event'], sensor: string | null, value: unknown, time: number): Promise<void> {
    if (!(await this.isOpen(rule.id))) return;
    const alert = await this.store.automations.clearAlert(rule.id, time);
    if (alert) await this.fire(rule, event, sensor, value, time, false);
  }

  /** Looks at presence and schedules; reloads rules now and then. */
  tick(): Promise<void> {
    this.ticking = this.ticking.then(async () => {
      if (this.stopped) return;
      try {
        if (this.clock.now() - this.lastLoad >= this.reloadEveryMs) await this.reload();
        await this.checkPresence();
        await this.checkSchedules();
        if (this.clock.now() - this.lastPrune >= PRUNE_EVERY_MS) {
          this.lastPrune = this.clock.now();
          await this.store.automations.pruneAutomationHistory(this.clock.now() - HISTORY_KEPT_MS);
        }
      } catch (err) {
        this.log.warn({ err }, 'automation tick failed; will retry');
      }
    });
    return this.ticking;
  }

  private async checkPresence(): Promise<void> {
    if (this.presenceRules.length === 0) return;
    const now = this.clock.now();
    const online = await this.store.automations.onlineDevices([...new Set(this.presenceRules.map((r) => r.deviceId))], now);
    for (const rule of this.presenceRules) {
      const t = rule.trigger;
      if (t.type !== 'offline' && t.type !== 'online') continue;
      const isOnline = online.has(rule.deviceId) || (this.relay?.presence.count(rule.deviceId, 'device') ?? 0) > 0;
      const holding = t.type === 'online' ? isOnline : !isOnline;
      const raiseEvent = t.type;
      const clearEvent = t.type === 'online' ? 'offline' : 'online';
      if (holding) {
        const since = this.presenceSince.get(rule.id) ?? now;
        this.presenceSince.set(rule.id, since);
        // Presence reaches the store about a second late from other nodes: "offline" must outlast that.
        const hold = t.type === 'offline' ? Math.max(t.forMs, PRESENCE_LAG_MS) : t.forMs;
        if (now - since >= hold) await this.raise(rule, raiseEvent, null, null, now);
      } else {
        this.presenceSince.delete(rule.id);
        await this.clear(rule, clearEvent, null, null, now);
      }
    }
  }

  nextOccurrence(rule: Rule, after: number): number | null {
    const t = rule.trigger;
    if (t.type !== 'schedule') return null;
    try {
      const next = new Cron(t.cron, { timezone: t.tz ?? SERVER_TZ, paused: true }).nextRun(new Date(after));
      return next ? next.getTime() : null;
    } catch {
      return null;
    }
  }

  private async checkSchedules(): Promise<void> {
    const now = this.clock.now();
    for (const entry of this.schedules.values()) {
      if (entry.next === null || entry.next > now) continue;
      const occurrence = entry.next;
      // Missed occurrences (the hub was down) fire once, not once each.
      entry.next = this.nextOccurrence(entry.rule, now);
      if (await this.store.automations.claimOccurrence(entry.rule.id, occurrence)) {
        await this.fire(entry.rule, 'schedule', null, null, occurrence, true);
      }
    }
  }

  /** The owner fires a rule by hand to try its actions; the event says `test: true`. */
  async testFire(rule: Rule): Promise<string | null> {
    const t = rule.trigger;
    const event: AutomationEvent['event'] = t.type === 'schedule' ? 'schedule' : t.type === 'offline' || t.type === 'online' ? t.type : 'triggered';
    const sensor = t.type === 'threshold' || t.type === 'changed' ? t.sensor : null;
    const value = t.type === 'threshold' ? t.value : null;
    return this.fire(rule, event, sensor, value, this.clock.now(), true, true);
  }

  /** Runs the rule's actions for an event; records the run and any error on the rule. Returns the error text. */
  private async fire(rule: Rule, event: AutomationEvent['event'], sensor: string | null, value: unknown, time: number, raising: boolean, test = false): Promise<string | null> {
    const payload: AutomationEvent = { event, device: rule.deviceId, rule: rule.id, name: rule.name, sensor, value, time, ...(test ? { test } : {}) };
    const errors: string[] = [];
    for (const action of rule.actions) {
      try {
        if (action.type === 'set') {
          // Only when the condition starts holding: clearing writes nothing.
          if (!raising) continue;
          if (!this.relay) throw new Error('no relay on this node');
          await this.relay.put(rule.deviceId, 'client', [{ sensor: action.sensor, value: action.value }], { byRule: true });
        } else if (action.type === 'notify') {
          await this.store.automations.addNotification({ userId: rule.userId, deviceId: rule.deviceId, ruleId: rule.id, text: `${describeTrigger(rule.trigger)}: ${event}${test ? ' (test)' : ''}`, time });
        } else {
          const d: DeliveryPayload = { action, event: payload };
          const queued = await this.store.automations.enqueueDelivery(
            { userId: rule.userId, ruleId: rule.id, deviceId: rule.deviceId, kind: action.type, target: action.type === 'webhook' ? action.url : action.to, payload: d, at: this.clock.now() },
            this.config.deliveryQueue,
          );
          if (!queued) throw new Error(`E_LIMIT: ${this.config.deliveryQueue} deliveries are already waiting for this account (--delivery-queue); this ${action.type} was dropped`);
        }
      } catch (err) {
        errors.push(`${action.type}: ${(err as Error).message}`);
      }
    }
    const error = errors.length > 0 ? errors.join('; ') : null;
    await this.store.automations.recordRuleRun(rule.id, this.clock.now(), error).catch((err) => this.log.warn({ err }, 'could not record a rule run'));
    if (!this.stopped) void this.sender.tick();
    return error;
  }
}
