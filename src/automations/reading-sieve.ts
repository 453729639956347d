/**
 * Where committed readings meet the reading rules. The relay hands over each committed batch as it is (two
 * array pushes, nothing per reading before the acks go out); once per event-loop turn the sieve walks what
 * came in and settles the steady state on the spot — a sensor no rule names, a threshold that does not hold
 * with no alert open, one that holds with its alert open, a value unchanged — without a promise, a store read
 * or an allocation. Only a reading that may change something goes on to the engine's slow path, in order.
 */
import type { NewReading, StoredReading } from '../store/types.js';
import { compare } from './model.js';
import type { ReadingIndex, RuleState } from './rule-state.js';

/** A reading that may raise, clear or fire a rule: evaluated by the engine, one at a time, in commit order. */
export interface SlowJob {
  s: RuleState;
  r: StoredReading;
  /** The reading's value as JSON text. */
  json: string;
  /**
   * For a `changed` rule, the JSON text of the sensor's reading before this one when this node knows it: then the
   * sieve has decided already (a change, out of the cooldown, which it restarted) and the rule fires. Undefined:
   * the engine asks the store and decides.
   */
  previous: string | undefined;
}

/** Readings waiting for the sieve or the slow path; over this, the oldest are dropped (and counted) rather than memory grown. */
const MAX_WAITING = 50_000;
/**
 * Slow jobs one account may have waiting; past it, that account's new ones are dropped (and counted). The slow
 * path is one queue in commit order, so an account churning its rules without end (a value toggled as fast as its
 * connections may send) delays another account's rules by at most this many jobs, and never has theirs dropped.
 */
export const MAX_WAITING_PER_ACCOUNT = 1000;

export class ReadingSieve {
  index: ReadingIndex = new Map();
  private storedBatches: StoredReading[][] = [];
  private writtenBatches: NewReading[][] = [];
  private waiting = 0;
  private scheduled = false;
  private slow: SlowJob[] = [];
  private working: Promise<void> | null = null;
  /** Slow jobs waiting, per account. */
  private readonly waitingOf = new Map<number, number>();
  /** Readings dropped unevaluated because the engine fell too far behind, or their account had too many waiting. */
  dropped = 0;

  /**
   * `knowsAlerts`: alone on a memory bus, whether an alert is open and the previous value of a sensor are known
   * here (RuleState.open, .previous); in a cluster another node may have changed them, so the store is asked.
   */
  constructor(
    private readonly knowsAlerts: boolean,
    private readonly isRuleWrite: (r: NewReading) => boolean,
    private readonly evaluate: (job: SlowJob) => Promise<void>,
  ) {}

  /** Runs in the relay's commit callback, before the acks are written: it only keeps the batch for later. */
  take(stored: StoredReading[], written: NewReading[]): void {
    if (this.index.size === 0) return;
    this.storedBatches.push(stored);
    this.writtenBatches.push(written);
    this.waiting += stored.length;
    if (this.waiting > MAX_WAITING) this.dropOldest();
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.sift);
    }
  }

  private dropOldest(): void {
    while (this.waiting > MAX_WAITING && this.storedBatches.length > 1) {
      const n = this.storedBatches.shift()!.length;
      this.writtenBatches.shift();
      this.waiting -= n;
      this.dropped += n;
    }
  }

  private readonly sift = (): void => {
    this.scheduled = false;
    const storedBatches = this.storedBatches;
    const writtenBatches = this.writtenBatches;
    for (let b = 0; b < storedBatches.length; b++) {
      const stored = storedBatches[b];
      const written = writtenBatches[b];
      for (let i = 0; i < stored.length; i++) {
        const r = stored[i];
        const states = this.index.get(r.deviceId)?.get(r.sensor);
        if (states === undefined) continue;
        const w = written[i];
        const json = w.json ?? JSON.stringify(r.value);
        const byRule = this.isRuleWrite(w);
        for (let k = 0; k < states.length; k++) this.look(states[k], r, json, byRule);
      }
    }
    storedBatches.length = 0;
    writtenBatches.length = 0;
    this.waiting = 0;
    if (this.slow.length > 0 && !this.working) this.working = this.work();
  };

  /** The steady state ends here; anything else becomes a slow job. */
  private look(s: RuleState, r: StoredReading, json: string, byRule: boolean): void {
    const t = s.rule.trigger;
    if (t.type === 'changed') {
      const previous = s.previous;
      // A rule's own write is still the sensor's latest value, but it is never evaluated (no endless loops).
      if (this.knowsAlerts) s.previous = json;
      if (byRule) return;
      // lastFired only grows: within the cooldown now is within it whatever the slow path still has to do.
      if (previous === json || (previous !== undefined && s.rule.cooldownMs > 0 && r.time - s.lastFired < s.rule.cooldownMs)) return;
      // Restarted here, so the readings behind this one within the cooldown stop here too.
      if (previous !== undefined) s.lastFired = r.time;
      this.toSlow(s, r, json, previous);
      return;
    }
    if (byRule || t.type !== 'threshold') return;
    if (s.busy === 0 && s.open !== undefined) {
      const holding = compare(r.value, t.op, t.value, json);
      if (holding ? s.open || s.hold !== null : !s.open && s.hold === null) return;
    }
    this.toSlow(s, r, json, undefined);
  }

  private toSlow(s: RuleState, r: StoredReading, json: string, previous: string | undefined): void {
    const account = s.rule.userId;
    const mine = this.waitingOf.get(account) ?? 0;
    if (mine >= MAX_WAITING_PER_ACCOUNT) {
      this.dropped++;
      return;
    }
    this.waitingOf.set(account, mine + 1);
    s.busy++;
    if (this.slow.length >= MAX_WAITING) {
      this.done(this.slow.shift()!);
      this.dropped++;
    }
    this.slow.push({ s, r, json, previous });
  }

  /** A job evaluated or dropped: its rule and its account have one fewer waiting. */
  private done(job: SlowJob): void {
    job.s.busy--;
    const account = job.s.rule.userId;
    const left = (this.waitingOf.get(account) ?? 1) - 1;
    if (left > 0) this.waitingOf.set(account, left);
    else this.waitingOf.delete(account);
  }

  private async work(): Promise<void> {
    while (this.slow.length > 0) {
      const jobs = this.slow;
      this.slow = [];
      for (const job of jobs) {
        try {
          await this.evaluate(job);
        } finally {
          this.done(job);
        }
      }
    }
    this.working = null;
  }

  /** Settles once every reading taken so far has been evaluated (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.scheduled || this.working) {
      if (this.working) await this.working;
      else await new Promise<void>((r) => setImmediate(r));
    }
  }
}
