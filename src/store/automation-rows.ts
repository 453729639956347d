/** Automation rows as both SQL stores read them, and their domain objects. */
import type { Rule } from '../automations/model.js';
import type { AlertRecord, DeliveryRecord, NotificationRecord, RuleLimits } from './automation-types.js';

export interface RuleRow {
  id: string; device_id: string; user_id: number; name: string; enabled: number | boolean; trigger_json: string; actions_json: string;
  cooldown_ms: number; secret: string; created_at: number; updated_at: number; last_run_at: number | null; last_error: string | null;
}
export interface AlertRow {
  id: number; rule_id: string; device_id: string; user_id: number; detail: string; raised_at: number; cleared_at: number | null; acknowledged_at: number | null;
}
export interface DeliveryRow {
  id: number; user_id: number; rule_id: string; device_id: string; kind: 'webhook' | 'email'; target: string; payload: string; state: 'pending' | 'delivered' | 'failed';
  attempts: number; next_attempt_at: number; last_status: number | null; last_error: string | null; created_at: number; updated_at: number;
}
export interface NotificationRow { id: number; user_id: number; device_id: string; rule_id: string | null; text: string; time: number; read: number | boolean }

/**
 * History is kept for its age (HISTORY_KEPT_MS) and, past these counts, only the newest: a rule made to fire
 * without end (a value toggled as fast as its connection may send) must not fill the store in the meantime.
 * Open alerts and pending deliveries are never trimmed; a rule keeps its last cleared alert, which its cooldown reads.
 */
export const KEPT_ALERTS_PER_RULE = 100;
export const KEPT_DELIVERIES_PER_DEVICE = 1000;
export const KEPT_NOTIFICATIONS_PER_USER = 1000;

/**
 * The SQL of those trims, in either dialect: what is older than the newest `kept` rows of the rule, device or
 * user goes. `p` numbers the placeholders (SQLite's `?` takes the key twice): 1 the key, 2 the count kept.
 */
const keepNewest = (table: string, key: string, dropOnly: string) => (p: (n: number) => string) =>
  `DELETE FROM ${table} WHERE ${key} = ${p(1)}${dropOnly} AND id <= (SELECT id FROM ${table} WHERE ${key} = ${p(1)} ORDER BY id DESC LIMIT 1 OFFSET ${p(2)})`;
export const trimAlertsSql = keepNewest('alerts', 'rule_id', ' AND cleared_at IS NOT NULL');
export const trimDeliveriesSql = keepNewest('deliveries', 'device_id', " AND state <> 'pending'");
export const trimNotificationsSql = keepNewest('notifications', 'user_id', '');

/** Which cap a new rule would pass, given the rules its account and device have now; null if none. */
export function ruleCapReached(counts: { user: number; device: number }, limits: RuleLimits): 'device' | 'user' | null {
  if (limits.perDevice > 0 && counts.device >= limits.perDevice) return 'device';
  if (limits.perUser > 0 && counts.user >= limits.perUser) return 'user';
  return null;
}

export const ruleValues = (r: Rule) => [
  r.id, r.deviceId, r.userId, r.name, r.enabled, JSON.stringify(r.trigger), JSON.stringify(r.actions), r.cooldownMs, r.secret, r.createdAt, r.updatedAt,
];

export const toRule = (r: RuleRow): Rule => ({
  id: r.id, deviceId: r.device_id, userId: r.user_id, name: r.name, enabled: Boolean(r.enabled), trigger: JSON.parse(r.trigger_json),
  actions: JSON.parse(r.actions_json), cooldownMs: r.cooldown_ms, secret: r.secret, createdAt: r.created_at, updatedAt: r.updated_at,
  lastRunAt: r.last_run_at, lastError: r.last_error,
});

export const toAlert = (r: AlertRow): AlertRecord => ({
  id: r.id, ruleId: r.rule_id, deviceId: r.device_id, userId: r.user_id, detail: JSON.parse(r.detail), raisedAt: r.raised_at,
  clearedAt: r.cleared_at, acknowledgedAt: r.acknowledged_at,
  state: r.cleared_at !== null ? 'cleared' : r.acknowledged_at !== null ? 'acknowledged' : 'active',
});

export const toDelivery = (r: DeliveryRow): DeliveryRecord => ({
  id: r.id, userId: r.user_id, ruleId: r.rule_id, deviceId: r.device_id, kind: r.kind, target: r.target, payload: JSON.parse(r.payload),
  state: r.state, attempts: r.attempts, nextAttemptAt: r.next_attempt_at, lastStatus: r.last_status, lastError: r.last_error,
  createdAt: r.created_at, updatedAt: r.updated_at,
});

export const toNotification = (r: NotificationRow): NotificationRecord => ({
  id: r.id, userId: r.user_id, deviceId: r.device_id, ruleId: r.rule_id, text: r.text, time: r.time, read: Boolean(r.read),
});
