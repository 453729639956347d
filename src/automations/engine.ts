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
import { ReadingSieve } from './reading-sieve.js';
import type { SlowJob } from './reading-sieve.js';
import { patchRule, resetState, sortRules } from './rule-state.js';
import type { RuleSet, RuleState } from './rule-state.js';

export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

export type EngineConfig = ConstructorParameters<typeof DeliverySender>[1] & Pick<Config, 'deliveryQueue'>;

/** How late another node's presence may reach the store (its flush period plus a margin). */
const PRESENCE_LAG_MS = 1500;
/** Finished deliveries, cleared alerts and notifications are kept this long, then pruned (every PRUNE_EVERY_MS). */
export const HISTORY_KEPT_MS = 7 * 86_400_000;
const PRUNE_EVERY_MS = 600_000;
let serverTz: string | undefined;
/**
 * The server's own time zone, asked of ICU only when a schedule without a zone first needs it: ICU's data costs a
 * process about 8 MiB of RSS once touched, which a hub with no schedules need not pay.
 */
function serverTimeZone(): string {
  serverTz ??= Intl.DateTimeFormat().resolvedOptions().timeZone;
  return serverTz;
}

export class AutomationEngine {
  readonly sender: DeliverySender;
  private rules: RuleSet = { states: new Map(), byReading: new Map(), presence: [], schedules: [] };
  private readonly sieve: ReadingSieve;
  /**
   * Alone (memory bus), every raise and clear goes through this engine, so whether a rule's alert is open is
   * known here without a store read per reading. In a cluster, the store is asked.
   */
  private readonly knowsAlerts: boolean;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> = Promise.resolve();
  private lastLoad = 0;
  /** The store's rules version the loaded rules are from (see AutomationStore.rulesVersion). */
  private loadedVersion: number | null = null;
  private lastPrune = 0;
  private droppedSaid = 0;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly relay: Relay | null,
    private readonly config: EngineConfig,
    private readonly log: Logger,
    readonly clock: Clock = systemClock,
  ) {
    this.sender = new DeliverySender(store, config, log, clock);
    this.knowsAlerts = relay?.bus.kind === 'memory';
    this.sieve = new ReadingSieve(this.knowsAlerts, (r) => relay?.isRuleWrite(r) ?? false, (job) =>
      this.evaluate(job).catch((err) => this.log.warn({ err, rule: job.s.rule.id }, 'could not evaluate a rule')));
  }

  /** Readings dropped unevaluated because evaluation fell too far behind. */
  get dropped(): number {
    return this.sieve.dropped;
  }

  private async isOpen(s: RuleState): Promise<boolean> {
    if (s.open !== undefined) return s.open;
    const open = await this.store.automations.hasOpenAlert(s.rule.id);
    if (this.knowsAlerts) s.open = open;
    return open;
  }

  private get reloadEveryMs(): number {
    return Math.max(this.config.rulesTick * 5, 1000);
  }

  async start(): Promise<void> {
    await this.reload();
    if (this.relay) this.relay.onCommitted = (stored, written) => this.sieve.take(stored, written);
    this.timer = setInterval(() => void this.tick(), this.config.rulesTick);
    this.timer.unref();
    this.sender.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.relay) this.relay.onCommitted = null;
    if (this.timer) clearInterval(this.timer);
    for (const s of this.rules.states.values()) if (s.hold) clearTimeout(s.hold.timer);
    await this.ticking;
    await this.sieve.settled();
    await this.sender.stop();
  }

  /**
   * Rules changed on this node are seen at once; those changed on other nodes at the next reload. `version`: the
   * rules version the caller has just read, if it has.
   */
  async reload(version?: number): Promise<void> {
    // The version first: a change made while the rules are read moves it past this, and is loaded next time.
    version ??= await this.store.automations.rulesVersion();
    const rules = await this.store.automations.listEnabledRules();
    this.loadedVersion = version;
    this.lastLoad = this.clock.now();
    this.rules = sortRules(rules, this.rules.states, (rule) => this.nextOccurrence(rule, this.clock.now()));
    this.sieve.index = this.rules.byReading;
  }

  /** Reads every rule again only when one was created, changed or deleted since they were loaded, anywhere. */
  private async reloadIfChanged(): Promise<void> {
    this.lastLoad = this.clock.now();
    const version = await this.store.automations.rulesVersion();
    if (version !== this.loadedVersion) await this.reload(version);
  }

  /**
   * Forget what this node knew of a rule (it was edited or deleted here), and take its new definition. When that
   * change is the only one since the rules were loaded, only this rule is read: one account editing its rules
   * must not make the node read every account's.
   */
  async ruleChanged(ruleId: string): Promise<void> {
    const s = this.rules.states.get(ruleId);
    if (s) resetState(s);
    // The version first: a change after it is read moves the counter past it, and is loaded at the next period.
    const version = await this.store.automations.rulesVersion();
    if (this.loadedVersion === null || version !== this.loadedVersion + 1) return this.reload(version);
    const rule = await this.store.automations.getRule(ruleId);
    patchRule(this.rules, ruleId, rule, (r) => this.nextOccurrence(r, this.clock.now()));
    this.loadedVersion = version;
  }

  /** Settles once every reading committed so far has been evaluated (tests). */
  settled(): Promise<void> {
    return this.sieve.settled();
  }

  private async evaluate({ s, r, json, previous }: SlowJob): Promise<void> {
    const rule = s.rule;
    const t = rule.trigger;
    if (t.type === 'changed') {
      // Unless the sieve decided (it knew the value before), the reading before this one, whichever node committed it.
      if (previous === undefined) {
        const before = await this.previousJson(r);
        if (before === undefined || before === json) return;
        if (rule.cooldownMs > 0 && r.time - s.lastFired < rule.cooldownMs) return;
        s.lastFired = r.time;
      }
      await this.fire(rule, 'triggered', r.sensor, r.value, r.time, true);
      return;
    }
    if (t.type !== 'threshold') return;
    if (compare(r.value, t.op, t.value, json)) {
      if (t.forMs === 0) return this.raise(s, 'triggered', r.sensor, r.value, r.time);
      if (s.hold || (await this.isOpen(s))) return;
      const since = r.time;
      const timer = setTimeout(() => {
        if (s.hold?.timer === timer) s.hold = null;
        void this.holdElapsed(s, since).catch((err) => this.log.warn({ err, rule: rule.id }, 'could not check a held condition'));
      }, Math.max(0, since + t.forMs - this.clock.now()));
      timer.unref();
      s.hold = { since, timer };
    } else {
      if (s.hold) clearTimeout(s.hold.timer);
      s.hold = null;
      await this.clear(s, 'cleared', r.sensor, r.value, r.time);
    }
  }

  private async previousJson(r: StoredReading): Promise<string | undefined> {
    const before = (await this.store.history(r.deviceId, r.sensor, { to: r.time, limit: 20 })).filter((h) => h.seq < r.seq);
    return before.length > 0 ? JSON.stringify(before[before.length - 1].value) : undefined;
  }

  /**
   * The condition was met `forMs` ago on this node: it holds if every reading since then (committed on any
   * node) still meets it.
   */
  private async holdElapsed(s: RuleState, since: number): Promise<void> {
    const t = s.rule.trigger;
    if (t.type !== 'threshold' || this.stopped) return;
    const readings = await this.store.history(s.rule.deviceId, t.sensor, { from: since, limit: 10_000 });
    if (readings.length === 0 || !readings.every((r) => compare(r.value, t.op, t.value))) return;
    const last = readings[readings.length - 1];
    await this.raise(s, 'triggered', t.sensor, last.value, this.clock.now());
  }

  private async raise(s: RuleState, event: AutomationEvent['event'], sensor: string | null, value: unknown, time: number): Promise<void> {
    // A read first: while the condition keeps holding, each reading costs no write.
    if (await this.isOpen(s)) return;
    const rule = s.rule;
    const alert = await this.store.automations.raiseAlert({
      ruleId: rule.id, deviceId: rule.deviceId, userId: rule.userId, detail: { event, sensor, value }, at: time, cooldownMs: rule.cooldownMs,
    });
    // Null is also a raise refused by the cooldown: then no alert is open, and the next reading asks again.
    if (this.knowsAlerts) s.open = alert !== null;
    if (alert) await this.fire(rule, event, sensor, value, time, true);
  }

  private async clear(s: RuleState, event: AutomationEvent['event'], sensor: string | null, value: unknown, time: number): Promise<void> {
    if (!(await this.isOpen(s))) return;
    const alert = await this.store.automations.clearAlert(s.rule.id, time);
    if (this.knowsAlerts) s.open = false;
    if (alert) await this.fire(s.rule, event, sensor, value, time, false);
  }

  /** Looks at presence and schedules; reloads rules now and then. */
  tick(): Promise<void> {
    this.ticking = this.ticking.then(async () => {
      if (this.stopped) return;
      if (this.sieve.dropped > this.droppedSaid) {
        this.log.warn({ dropped: this.sieve.dropped - this.droppedSaid }, 'rule evaluation fell behind: readings were dropped unevaluated');
        this.droppedSaid = this.sieve.dropped;
      }
      try {
        if (this.clock.now() - this.lastLoad >= this.reloadEveryMs) await this.reloadIfChanged();
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
    const rules = this.rules.presence;
    if (rules.length === 0) return;
    const now = this.clock.now();
    const online = await this.store.automations.onlineDevices([...new Set(rules.map((s) => s.rule.deviceId))], now);
    for (const s of rules) {
      const t = s.rule.trigger;
      if (t.type !== 'offline' && t.type !== 'online') continue;
      const isOnline = online.has(s.rule.deviceId) || (this.relay?.presence.count(s.rule.deviceId, 'device') ?? 0) > 0;
      const holding = t.type === 'online' ? isOnline : !isOnline;
      const raiseEvent = t.type;
      const clearEvent = t.type === 'online' ? 'offline' : 'online';
      if (holding) {
        s.presenceSince ??= now;
        // Presence reaches the store about a second late from other nodes: "offline" must outlast that.
        const hold = t.type === 'offline' ? Math.max(t.forMs, PRESENCE_LAG_MS) : t.forMs;
        if (now - s.presenceSince >= hold) await this.raise(s, raiseEvent, null, null, now);
      } else {
        s.presenceSince = undefined;
        await this.clear(s, clearEvent, null, null, now);
      }
    }
  }

  nextOccurrence(rule: Rule, after: number): number | null {
    const t = rule.trigger;
    if (t.type !== 'schedule') return null;
    try {
      const next = new Cron(t.cron, { timezone: t.tz ?? serverTimeZone(), paused: true }).nextRun(new Date(after));
      return next ? next.getTime() : null;
    } catch {
      return null;
    }
  }

  private async checkSchedules(): Promise<void> {
    const now = this.clock.now();
    for (const s of this.rules.schedules) {
      if (s.next === null || s.next > now) continue;
      const occurrence = s.next;
      // Missed occurrences (the hub was down) fire once, not once each.
      s.next = this.nextOccurrence(s.rule, now);
      if (await this.store.automations.claimOccurrence(s.rule.id, occurrence)) {
        await this.fire(s.rule, 'schedule', null, null, occurrence, true);
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
          await this.relay.put(rule.deviceId, 'client', [{ sensor: action.sensor, value: action.value }], { byRule: true, owner: rule.userId });
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
