/**
 * What one node knows of each enabled rule between readings, and the index that finds a reading's rules. Kept
 * in one object per rule so the reading path touches no map keyed by rule id.
 */
import type { Rule } from './model.js';

export interface RuleState {
  rule: Rule;
  /**
   * Whether the rule's alert is open, when this node can know it without asking the store (alone on a memory
   * bus, every raise and clear goes through this engine); undefined when unknown.
   */
  open: boolean | undefined;
  /** A threshold met on this node and waiting out its `for`. */
  hold: { since: number; timer: NodeJS.Timeout } | null;
  /** Readings of this rule handed to the slow path and not yet evaluated there: until none, the fast path steps aside. */
  busy: number;
  /** The JSON text of the last reading of the rule's sensor (alone on a memory bus; `changed` rules). */
  previous: string | undefined;
  /** When a `changed` rule last fired (its cooldown). */
  lastFired: number;
  /** Since when an offline/online rule's condition holds. */
  presenceSince: number | undefined;
  /** A schedule's next occurrence. */
  next: number | null;
}

export function newState(rule: Rule): RuleState {
  return { rule, open: undefined, hold: null, busy: 0, previous: undefined, lastFired: 0, presenceSince: undefined, next: null };
}

/** Forgets what was learnt of the rule (it was edited or deleted here); the cooldown's clock is kept. */
export function resetState(s: RuleState): void {
  if (s.hold) clearTimeout(s.hold.timer);
  s.hold = null;
  s.open = undefined;
  s.previous = undefined;
  s.presenceSince = undefined;
}

/** Reading rules (threshold, changed) by device, then by sensor: a reading of a sensor no rule names costs a map miss. */
export type ReadingIndex = Map<string, Map<string, RuleState[]>>;

/** The engine's rules, sorted by how each is evaluated. */
export interface RuleSet {
  states: Map<string, RuleState>;
  byReading: ReadingIndex;
  presence: RuleState[];
  schedules: RuleState[];
}

/**
 * Sorts the enabled rules, keeping the state of rules already known. A schedule keeps its next occurrence while
 * its definition is unchanged; `nextOccurrence` gives it one otherwise.
 */
export function sortRules(rules: Rule[], known: Map<string, RuleState>, nextOccurrence: (rule: Rule) => number | null): RuleSet {
  const set: RuleSet = { states: new Map(), byReading: new Map(), presence: [], schedules: [] };
  for (const rule of rules) {
    const old = known.get(rule.id);
    const s = old ?? newState(rule);
    const sameDefinition = old !== undefined && old.rule.updatedAt === rule.updatedAt;
    s.rule = rule;
    set.states.set(rule.id, s);
    const t = rule.trigger;
    if (t.type === 'threshold' || t.type === 'changed') {
      let bySensor = set.byReading.get(rule.deviceId);
      if (!bySensor) set.byReading.set(rule.deviceId, (bySensor = new Map()));
      const list = bySensor.get(t.sensor);
      if (list) list.push(s);
      else bySensor.set(t.sensor, [s]);
    } else if (t.type === 'offline' || t.type === 'online') set.presence.push(s);
    else {
      if (!sameDefinition) s.next = nextOccurrence(rule);
      set.schedules.push(s);
    }
  }
  for (const [id, s] of known) if (!set.states.has(id) && s.hold) clearTimeout(s.hold.timer);
  return set;
}
