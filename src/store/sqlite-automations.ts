import type Database from 'better-sqlite3';
import type { Rule } from '../automations/model.js';
import type { AlertRecord, AutomationStore, DeliveryOutcome, DeliveryRecord, NewDelivery, NotificationRecord, RuleLimits } from './automation-types.js';
import {
  KEPT_ALERTS_PER_RULE, KEPT_DELIVERIES_PER_DEVICE, KEPT_NOTIFICATIONS_PER_USER, ruleCapReached, ruleValues, toAlert, toDelivery, toNotification, toRule,
  trimAlertsSql, trimDeliveriesSql, trimNotificationsSql,
} from './automation-rows.js';
import type { AlertRow, DeliveryRow, NotificationRow, RuleRow } from './automation-rows.js';

/** Automations in the SQLite file. Calls are synchronous underneath, so each method is atomic by itself. */
export class SqliteAutomationStore implements AutomationStore {
  private readonly stmt;

  constructor(private readonly db: Database.Database) {
    this.stmt = {
      insertRule: db.prepare(`INSERT INTO rules (id, device_id, user_id, name, enabled, trigger_json, actions_json, cooldown_ms, secret, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      ruleById: db.prepare('SELECT * FROM rules WHERE id = ?'),
      rulesByDevice: db.prepare('SELECT * FROM rules WHERE device_id = ? ORDER BY created_at, id'),
      enabledRules: db.prepare('SELECT * FROM rules WHERE enabled = 1'),
      rulesVersion: db.prepare('SELECT n FROM rule_changes WHERE id = 1').pluck(),
      countRules: db.prepare('SELECT COUNT(*) AS user, COALESCE(SUM(device_id = ?), 0) AS device FROM rules WHERE user_id = ?'),
      updateRule: db.prepare('UPDATE rules SET name = ?, enabled = ?, trigger_json = ?, actions_json = ?, cooldown_ms = ?, updated_at = ? WHERE id = ?'),
      recordRun: db.prepare('UPDATE rules SET last_run_at = ?, last_error = ? WHERE id = ?'),
      deleteRule: db.prepare('DELETE FROM rules WHERE id = ?'),
      lastCleared: db.prepare('SELECT MAX(cleared_at) AS at FROM alerts WHERE rule_id = ?'),
      insertAlert: db.prepare(`INSERT OR IGNORE INTO alerts (rule_id, device_id, user_id, detail, raised_at) VALUES (?, ?, ?, ?, ?) RETURNING *`),
      openAlert: db.prepare('SELECT 1 AS x FROM alerts WHERE rule_id = ? AND cleared_at IS NULL'),
      clearAlert: db.prepare('UPDATE alerts SET cleared_at = ? WHERE rule_id = ? AND cleared_at IS NULL RETURNING *'),
      ackAlert: db.prepare('UPDATE alerts SET acknowledged_at = ? WHERE id = ? AND user_id = ? AND cleared_at IS NULL AND acknowledged_at IS NULL'),
      alertsByDevice: db.prepare('SELECT * FROM alerts WHERE device_id = ? ORDER BY id DESC LIMIT ?'),
      claimOccurrence: db.prepare('INSERT OR IGNORE INTO rule_occurrences (rule_id, occurrence) VALUES (?, ?)'),
      pendingOfUser: db.prepare(`SELECT COUNT(*) AS n FROM deliveries WHERE user_id = ? AND state = 'pending'`),
      insertDelivery: db.prepare(`INSERT INTO deliveries (user_id, rule_id, device_id, kind, target, payload, state, next_attempt_at, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?) RETURNING *`),
      claimDeliveries: db.prepare(`UPDATE deliveries SET lease_until = ? WHERE id IN (
          SELECT id FROM (
            SELECT id, next_attempt_at, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY next_attempt_at, id) AS n FROM deliveries
            WHERE state = 'pending' AND next_attempt_at <= ? AND lease_until <= ?
          ) WHERE n <= ? ORDER BY next_attempt_at, id LIMIT ?)
        RETURNING *`),
      finishDelivery: db.prepare(`UPDATE deliveries SET state = ?, attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?, updated_at = ?, lease_until = 0
        WHERE id = ?`),
      deliveriesByDevice: db.prepare('SELECT * FROM deliveries WHERE device_id = ? ORDER BY id DESC LIMIT ?'),
      insertNotification: db.prepare('INSERT INTO notifications (user_id, device_id, rule_id, text, time) VALUES (?, ?, ?, ?, ?)'),
      notificationsByUser: db.prepare('SELECT * FROM notifications WHERE user_id = ? ORDER BY id DESC LIMIT ?'),
      readNotifications: db.prepare('UPDATE notifications SET read = 1 WHERE user_id = ? AND read = 0'),
      // Each drops what is older than the newest KEPT_… rows of its rule, device or user (see automation-rows.ts).
      trimAlerts: db.prepare(trimAlertsSql(() => '?')),
      trimDeliveries: db.prepare(trimDeliveriesSql(() => '?')),
      trimNotifications: db.prepare(trimNotificationsSql(() => '?')),
    };
  }

  async createRule(rule: Rule, limits?: RuleLimits): Promise<'device' | 'user' | null> {
    const v = ruleValues(rule);
    v[4] = rule.enabled ? 1 : 0;
    // IMMEDIATE: the count and the insert hold the write lock together, against another process too.
    return this.db
      .transaction(() => {
        if (limits) {
          const refused = ruleCapReached(this.stmt.countRules.get(rule.deviceId, rule.userId) as { user: number; device: number }, limits);
          if (refused) return refused;
        }
        this.stmt.insertRule.run(...v);
        return null;
      })
      .immediate();
  }

  async getRule(id: string): Promise<Rule | null> {
    const row = this.stmt.ruleById.get(id) as RuleRow | undefined;
    return row ? toRule(row) : null;
  }

  async listRules(deviceId: string): Promise<Rule[]> {
    return (this.stmt.rulesByDevice.all(deviceId) as RuleRow[]).map(toRule);
  }

  async listEnabledRules(): Promise<Rule[]> {
    return (this.stmt.enabledRules.all() as RuleRow[]).map(toRule);
  }

  async rulesVersion(): Promise<number> {
    return this.stmt.rulesVersion.get() as number;
  }

  async updateRule(r: Rule): Promise<boolean> {
    const info = this.stmt.updateRule.run(r.name, r.enabled ? 1 : 0, JSON.stringify(r.trigger), JSON.stringify(r.actions), r.cooldownMs, r.updatedAt, r.id);
    return info.changes > 0;
  }

  async recordRuleRun(id: string, at: number, error: string | null): Promise<void> {
    this.stmt.recordRun.run(at, error, id);
  }

  async deleteRule(id: string): Promise<boolean> {
    return this.stmt.deleteRule.run(id).changes > 0;
  }

  async raiseAlert(a: { ruleId: string; deviceId: string; userId: number; detail: unknown; at: number; cooldownMs: number }): Promise<AlertRecord | null> {
    return this.db.transaction(() => {
      if (a.cooldownMs > 0) {
        const last = (this.stmt.lastCleared.get(a.ruleId) as { at: number | null }).at;
        if (last !== null && a.at - last < a.cooldownMs) return null;
      }
      const row = this.stmt.insertAlert.get(a.ruleId, a.deviceId, a.userId, JSON.stringify(a.detail ?? null), a.at) as AlertRow | undefined;
      if (row) this.stmt.trimAlerts.run(a.ruleId, a.ruleId, KEPT_ALERTS_PER_RULE);
      return row ? toAlert(row) : null;
    }).immediate();
  }

  async hasOpenAlert(ruleId: string): Promise<boolean> {
    return this.stmt.openAlert.get(ruleId) !== undefined;
  }

  async clearAlert(ruleId: string, at: number): Promise<AlertRecord | null> {
    const row = this.stmt.clearAlert.get(at, ruleId) as AlertRow | undefined;
    return row ? toAlert(row) : null;
  }

  async acknowledgeAlert(id: number, userId: number, at: number): Promise<boolean> {
    return this.stmt.ackAlert.run(at, id, userId).changes > 0;
  }

  async listAlerts(deviceId: string, limit: number): Promise<AlertRecord[]> {
    return (this.stmt.alertsByDevice.all(deviceId, limit) as AlertRow[]).map(toAlert);
  }

  async claimOccurrence(ruleId: string, occurrence: number): Promise<boolean> {
    return this.stmt.claimOccurrence.run(ruleId, occurrence).changes > 0;
  }

  async enqueueDelivery(d: NewDelivery, maxPendingPerUser: number): Promise<DeliveryRecord | null> {
    return this.db.transaction(() => {
      if ((this.stmt.pendingOfUser.get(d.userId) as { n: number }).n >= maxPendingPerUser) return null;
      const row = this.stmt.insertDelivery.get(d.userId, d.ruleId, d.deviceId, d.kind, d.target, JSON.stringify(d.payload), d.at, d.at, d.at) as DeliveryRow;
      this.stmt.trimDeliveries.run(d.deviceId, d.deviceId, KEPT_DELIVERIES_PER_DEVICE);
      return toDelivery(row);
    }).immediate();
  }

  async claimDeliveries(now: number, leaseUntil: number, limit: number, perUser: number): Promise<DeliveryRecord[]> {
    return (this.stmt.claimDeliveries.all(leaseUntil, now, now, perUser, limit) as DeliveryRow[]).map(toDelivery);
  }

  async finishDelivery(id: number, o: DeliveryOutcome): Promise<void> {
    this.stmt.finishDelivery.run(o.state, o.attempts, o.nextAttemptAt, o.lastStatus, o.lastError, o.at, id);
  }

  async listDeliveries(deviceId: string, limit: number): Promise<DeliveryRecord[]> {
    return (this.stmt.deliveriesByDevice.all(deviceId, limit) as DeliveryRow[]).map(toDelivery);
  }

  async addNotification(n: { userId: number; deviceId: string; ruleId: string | null; text: string; time: number }): Promise<void> {
    this.db.transaction(() => {
      this.stmt.insertNotification.run(n.userId, n.deviceId, n.ruleId, n.text, n.time);
      this.stmt.trimNotifications.run(n.userId, n.userId, KEPT_NOTIFICATIONS_PER_USER);
    }).immediate();
  }

  async listNotifications(userId: number, limit: number): Promise<NotificationRecord[]> {
    return (this.stmt.notificationsByUser.all(userId, limit) as NotificationRow[]).map(toNotification);
  }

  async markNotificationsRead(userId: number): Promise<void> {
    this.stmt.readNotifications.run(userId);
  }

  async pruneAutomationHistory(before: number): Promise<number> {
    return this.db.transaction(() =>
      this.db.prepare(`DELETE FROM deliveries WHERE state <> 'pending' AND updated_at < ?`).run(before).changes +
      this.db.prepare('DELETE FROM alerts WHERE cleared_at < ?').run(before).changes +
      this.db.prepare('DELETE FROM notifications WHERE time < ?').run(before).changes +
      this.db.prepare('DELETE FROM rule_occurrences WHERE occurrence < ?').run(before).changes,
    ).immediate();
  }

  async onlineDevices(deviceIds: string[], now: number): Promise<Set<string>> {
    if (deviceIds.length === 0) return new Set();
    const rows = this.db
      .prepare(`SELECT DISTINCT device_id FROM presence WHERE side = 'device' AND connections > 0 AND expires_at > ? AND device_id IN (SELECT value FROM json_each(?))`)
      .all(now, JSON.stringify(deviceIds)) as { device_id: string }[];
    return new Set(rows.map((r) => r.device_id));
  }
}
