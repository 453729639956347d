import type pg from 'pg';
import type { Rule } from '../automations/model.js';
import type { AlertRecord, AutomationStore, DeliveryOutcome, DeliveryRecord, NewDelivery, NotificationRecord, RuleLimits } from './automation-types.js';
import {
  KEPT_ALERTS_PER_RULE, KEPT_DELIVERIES_PER_DEVICE, KEPT_NOTIFICATIONS_PER_USER, ruleCapReached, ruleValues, toAlert, toDelivery, toNotification, toRule,
  trimAlertsSql, trimDeliveriesSql, trimNotificationsSql,
} from './automation-rows.js';
import type { AlertRow, DeliveryRow, NotificationRow, RuleRow } from './automation-rows.js';

type Query = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<pg.QueryResult<R>>;
type Tx = <T>(fn: (c: pg.PoolClient) => Promise<T>) => Promise<T>;
type Lock = (c: pg.ClientBase, purpose: string) => Promise<void>;

/** PostgreSQL's numbered placeholders. */
const PG = (n: number) => `$${n}`;
const COUNT_RULES = 'SELECT COUNT(*)::int AS "user", COUNT(*) FILTER (WHERE device_id = $2)::int AS device FROM rules WHERE user_id = $1';

/**
 * Automations in PostgreSQL. What must happen once across nodes is one statement: the partial unique index on
 * open alerts, the primary key of rule_occurrences, and SKIP LOCKED leases on the delivery queue.
 */
export class PostgresAutomationStore implements AutomationStore {
  constructor(private readonly q: Query, private readonly tx: Tx, private readonly lock: Lock) {}

  async createRule(rule: Rule, limits?: RuleLimits): Promise<'device' | 'user' | null> {
    return this.tx(async (c) => {
      if (limits) {
        // One account's creations take turns, so two nodes (or two requests) cannot both slip under a cap.
        await this.lock(c, `rules:${rule.userId}`);
        const { rows } = await c.query<{ user: number; device: number }>(COUNT_RULES, [rule.userId, rule.deviceId]);
        const refused = ruleCapReached(rows[0], limits);
        if (refused) return refused;
      }
      await c.query(`INSERT INTO rules (id, device_id, user_id, name, enabled, trigger_json, actions_json, cooldown_ms, secret, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, ruleValues(rule));
      return null;
    });
  }

  async getRule(id: string): Promise<Rule | null> {
    const { rows } = await this.q<RuleRow>('SELECT * FROM rules WHERE id = $1', [id]);
    return rows[0] ? toRule(rows[0]) : null;
  }

  async listRules(deviceId: string): Promise<Rule[]> {
    const { rows } = await this.q<RuleRow>('SELECT * FROM rules WHERE device_id = $1 ORDER BY created_at, id', [deviceId]);
    return rows.map(toRule);
  }

  async listEnabledRules(): Promise<Rule[]> {
    const { rows } = await this.q<RuleRow>('SELECT * FROM rules WHERE enabled');
    return rows.map(toRule);
  }

  async rulesVersion(): Promise<number> {
    const { rows } = await this.q<{ n: string }>('SELECT n FROM rule_changes WHERE id = 1');
    return Number(rows[0].n);
  }

  async updateRule(r: Rule): Promise<boolean> {
    const res = await this.q('UPDATE rules SET name = $1, enabled = $2, trigger_json = $3, actions_json = $4, cooldown_ms = $5, updated_at = $6 WHERE id = $7',
      [r.name, r.enabled, JSON.stringify(r.trigger), JSON.stringify(r.actions), r.cooldownMs, r.updatedAt, r.id]);
    return (res.rowCount ?? 0) > 0;
  }

  async recordRuleRun(id: string, at: number, error: string | null): Promise<void> {
    await this.q('UPDATE rules SET last_run_at = $1, last_error = $2 WHERE id = $3', [at, error, id]);
  }

  async deleteRule(id: string): Promise<boolean> {
    return ((await this.q('DELETE FROM rules WHERE id = $1', [id])).rowCount ?? 0) > 0;
  }

  async raiseAlert(a: { ruleId: string; deviceId: string; userId: number; detail: unknown; at: number; cooldownMs: number }): Promise<AlertRecord | null> {
    // The cooldown check and the insert are one statement, so two nodes cannot both pass the check.
    const { rows } = await this.q<AlertRow>(
      `INSERT INTO alerts (rule_id, device_id, user_id, detail, raised_at)
       SELECT $1, $2, $3, $4, $5
       WHERE $6::bigint <= 0 OR NOT EXISTS (SELECT 1 FROM alerts WHERE rule_id = $1 AND cleared_at > $5 - $6::bigint)
       ON CONFLICT (rule_id) WHERE cleared_at IS NULL DO NOTHING
       RETURNING *`,
      [a.ruleId, a.deviceId, a.userId, JSON.stringify(a.detail ?? null), a.at, a.cooldownMs],
    );
    if (!rows[0]) return null;
    await this.q(trimAlertsSql(PG), [a.ruleId, KEPT_ALERTS_PER_RULE]);
    return toAlert(rows[0]);
  }

  async hasOpenAlert(ruleId: string): Promise<boolean> {
    const { rows } = await this.q('SELECT 1 FROM alerts WHERE rule_id = $1 AND cleared_at IS NULL', [ruleId]);
    return rows.length > 0;
  }

  async clearAlert(ruleId: string, at: number): Promise<AlertRecord | null> {
    const { rows } = await this.q<AlertRow>('UPDATE alerts SET cleared_at = $1 WHERE rule_id = $2 AND cleared_at IS NULL RETURNING *', [at, ruleId]);
    return rows[0] ? toAlert(rows[0]) : null;
  }

  async acknowledgeAlert(id: number, userId: number, at: number): Promise<boolean> {
    const res = await this.q('UPDATE alerts SET acknowledged_at = $1 WHERE id = $2 AND user_id = $3 AND cleared_at IS NULL AND acknowledged_at IS NULL', [at, id, userId]);
    return (res.rowCount ?? 0) > 0;
  }

  async listAlerts(deviceId: string, limit: number): Promise<AlertRecord[]> {
    const { rows } = await this.q<AlertRow>('SELECT * FROM alerts WHERE device_id = $1 ORDER BY id DESC LIMIT $2', [deviceId, limit]);
    return rows.map(toAlert);
  }

  async claimOccurrence(ruleId: string, occurrence: number): Promise<boolean> {
    const res = await this.q('INSERT INTO rule_occurrences (rule_id, occurrence) VALUES ($1, $2) ON CONFLICT DO NOTHING', [ruleId, occurrence]);
    return (res.rowCount ?? 0) > 0;
  }

  async enqueueDelivery(d: NewDelivery, maxPendingPerUser: number): Promise<DeliveryRecord | null> {
    return this.tx(async (c) => {
      // One user's enqueues take turns, so two nodes cannot both slip under the cap.
      await this.lock(c, `deliveries:${d.userId}`);
      const { rows: count } = await c.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM deliveries WHERE user_id = $1 AND state = 'pending'`, [d.userId]);
      if (count[0].n >= maxPendingPerUser) return null;
      const { rows } = await c.query<DeliveryRow>(
        `INSERT INTO deliveries (user_id, rule_id, device_id, kind, target, payload, state, next_attempt_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7, $7) RETURNING *`,
        [d.userId, d.ruleId, d.deviceId, d.kind, d.target, JSON.stringify(d.payload), d.at],
      );
      await c.query(trimDeliveriesSql(PG), [d.deviceId, KEPT_DELIVERIES_PER_DEVICE]);
      return toDelivery(rows[0]);
    });
  }

  async claimDeliveries(now: number, leaseUntil: number, limit: number, perUser: number): Promise<DeliveryRecord[]> {
    const { rows } = await this.q<DeliveryRow>(
      `UPDATE deliveries SET lease_until = $1 WHERE id IN (
         SELECT id FROM (
           SELECT id, next_attempt_at, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY next_attempt_at, id) AS n FROM deliveries
           WHERE state = 'pending' AND next_attempt_at <= $2 AND lease_until <= $2
         ) due WHERE n <= $3 ORDER BY next_attempt_at, id LIMIT $4)
       AND state = 'pending' AND lease_until <= $2
       RETURNING *`,
      [leaseUntil, now, perUser, limit],
    );
    return rows.map(toDelivery);
  }

  async finishDelivery(id: number, o: DeliveryOutcome): Promise<void> {
    await this.q(`UPDATE deliveries SET state = $1, attempts = $2, next_attempt_at = $3, last_status = $4, last_error = $5, updated_at = $6, lease_until = 0 WHERE id = $7`,
      [o.state, o.attempts, o.nextAttemptAt, o.lastStatus, o.lastError, o.at, id]);
  }

  async listDeliveries(deviceId: string, limit: number): Promise<DeliveryRecord[]> {
    const { rows } = await this.q<DeliveryRow>('SELECT * FROM deliveries WHERE device_id = $1 ORDER BY id DESC LIMIT $2', [deviceId, limit]);
    return rows.map(toDelivery);
  }

  async addNotification(n: { userId: number; deviceId: string; ruleId: string | null; text: string; time: number }): Promise<void> {
    await this.q('INSERT INTO notifications (user_id, device_id, rule_id, text, time) VALUES ($1, $2, $3, $4, $5)', [n.userId, n.deviceId, n.ruleId, n.text, n.time]);
    await this.q(trimNotificationsSql(PG), [n.userId, KEPT_NOTIFICATIONS_PER_USER]);
  }

  async listNotifications(userId: number, limit: number): Promise<NotificationRecord[]> {
    const { rows } = await this.q<NotificationRow>('SELECT * FROM notifications WHERE user_id = $1 ORDER BY id DESC LIMIT $2', [userId, limit]);
    return rows.map(toNotification);
  }

  async markNotificationsRead(userId: number): Promise<void> {
    await this.q('UPDATE notifications SET read = true WHERE user_id = $1 AND NOT read', [userId]);
  }

  async pruneAutomationHistory(before: number): Promise<number> {
    let n = 0;
    for (const sql of [
      `DELETE FROM deliveries WHERE state <> 'pending' AND updated_at < $1`, 'DELETE FROM alerts WHERE cleared_at < $1',
      'DELETE FROM notifications WHERE time < $1', 'DELETE FROM rule_occurrences WHERE occurrence < $1',
    ]) n += (await this.q(sql, [before])).rowCount ?? 0;
    return n;
  }

  async onlineDevices(deviceIds: string[], now: number): Promise<Set<string>> {
    if (deviceIds.length === 0) return new Set();
    const { rows } = await this.q<{ device_id: string }>(
      `SELECT DISTINCT device_id FROM presence WHERE side = 'device' AND connections > 0 AND expires_at > $1 AND device_id = ANY($2::text[])`, [now, deviceIds]);
    return new Set(rows.map((r) => r.device_id));
  }
}
