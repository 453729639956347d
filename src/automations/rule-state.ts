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

/** Where a rule's state is listed, by how it is evaluated: `change` gives the list that replaces it (empty: none). */
function withList(set: RuleSet, rule: Rule, change: (list: RuleState[]) => RuleState[]): void {
  const t = rule.trigger;
  if (t.type === 'threshold' || t.type === 'changed') {
    let bySensor = set.byReading.get(rule.deviceId);
    const list = change(bySensor?.get(t.sensor) ?? []);
    if (list.length > 0) {
      if (!bySensor) set.byReading.set(rule.deviceId, (bySensor = new Map()));
      bySensor.set(t.sensor, list);
    } else if (bySensor) {
      bySensor.delete(t.sensor);
      if (bySensor.size === 0) set.byReading.delete(rule.deviceId);
    }
  } else if (t.type === 'offline' || t.type === 'online') set.presence = change(set.presence);
  else set.schedules = change(set.schedules);
}

/** The state a rule is evaluated with: the known one, kept; a schedule's next occurrence anew if its definition changed. */
function stateOf(rule: Rule, old: RuleState | undefined, nextOccurrence: (rule: Rule) => number | null): RuleState {
  const s = old ?? newState(rule);
  const sameDefinition = old !== undefined && old.rule.updatedAt === rule.updatedAt;
  s.rule = rule;
  if (!sameDefinition && rule.trigger.type === 'schedule') s.next = nextOccurrence(rule);
  return s;
}

/**
 * Sorts the enabled rules, keeping the state of rules already known. A schedule keeps its next occurrence while
 * its definition is unchanged; `nextOccurrence` gives it one otherwise.
 */
export function sortRules(rules: Rule[], known: Map<string, RuleState>, nextOccurrence: (rule: Rule) => number | null): RuleSet {
  const set: RuleSet = { states: new Map(), byReading: new Map(), presence: [], schedules: [] };
  for (const rule of rules) {
    const s = stateOf(rule, known.get(rule.id), nextOccurrence);
    set.states.set(rule.id, s);
    // A fresh set: its lists are filled in place.
    withList(set, rule, (list) => (list.push(s), list));
  }
  for (const [id, s] of known) if (!set.states.has(id) && s.hold) clearTimeout(s.hold.timer);
  return set;
}

/**
 * One rule changed on this node: `rule` is what the store holds now (null once deleted). The set is mended in
 * place without reading or sorting the other rules, so a change costs the same however many rules the hub holds.
 * The lists it touches are replaced, never changed in place: a tick may be walking one.
 */
export function patchRule(set: RuleSet, id: string, rule: Rule | null, nextOccurrence: (rule: Rule) => number | null): void {
  const old = set.states.get(id);
  if (old) {
    set.states.delete(id);
    withList(set, old.rule, (list) => list.filter((x) => x !== old));
  }
  if (!rule?.enabled) {
    if (old?.hold) clearTimeout(old.hold.timer);
    return;
  }
  const s = stateOf(rule, old, nextOccurrence);
  set.states.set(id, s);
  withList(set, rule, (list) => [...list, s]);
}
