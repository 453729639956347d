/**
 * What the store keeps for automations: rules, their alerts, schedule occurrences claimed, the delivery queue
 * (webhooks and emails, with their log) and in-app notifications. Every write that must happen once across a
 * cluster (raise an alert, clear it, fire a schedule occurrence, claim a delivery) is one atomic statement here.
 */
import type { Rule } from '../automations/model.js';

/** The most rules a device and an account may have (0: no cap). */
export interface RuleLimits {
  perDevice: number;
  perUser: number;
}

export type AlertState = 'active' | 'acknowledged' | 'cleared';

export interface AlertRecord {
  id: number;
  ruleId: string;
  deviceId: string;
  userId: number;
  /** What raised it, e.g. {"sensor":"temp","value":1.5}. */
  detail: unknown;
  raisedAt: number;
  clearedAt: number | null;
  acknowledgedAt: number | null;
  state: AlertState;
}

export type DeliveryKind = 'webhook' | 'email';
export type DeliveryState = 'pending' | 'delivered' | 'failed';

export interface NewDelivery {
  userId: number;
  ruleId: string;
  deviceId: string;
  kind: DeliveryKind;
  /** The URL or the email address. */
  target: string;
  /** The action and the event, as the dispatcher needs them to send. */
  payload: unknown;
  at: number;
}

export interface DeliveryRecord extends Omit<NewDelivery, 'at'> {
  id: number;
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: number;
  /** HTTP status of the last attempt (or 250 for an accepted email); null if no answer came. */
  lastStatus: number | null;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface DeliveryOutcome {
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: number;
  lastStatus: number | null;
  lastError: string | null;
  at: number;
}

export interface NotificationRecord {
  id: number;
  userId: number;
  deviceId: string;
  ruleId: string | null;
  text: string;
  time: number;
  read: boolean;
}

export interface AutomationStore {
  /**
   * Stores the rule unless its device or its account already has the most rules `limits` allow: counted and
   * inserted under one lock per account, so parallel creations on any number of nodes cannot pass the caps.
   * Returns which cap refused it, or null once stored.
   */
  createRule(rule: Rule, limits?: RuleLimits): Promise<'device' | 'user' | null>;
  getRule(id: string): Promise<Rule | null>;
  /** The device's rules, oldest first. */
  listRules(deviceId: string): Promise<Rule[]>;
  /** Every enabled rule of every device: what a node evaluates. */
  listEnabledRules(): Promise<Rule[]>;
  /**
   * A number that changes whenever a rule is created, changed or deleted (by any node, or with its device or
   * account), and not when one merely runs: a node reloads the rules only when it moved.
   */
  rulesVersion(): Promise<number>;
  /** Replaces the rule's name, enabled, trigger, actions and cooldown; false if it is gone. */
  updateRule(rule: Rule): Promise<boolean>;
  recordRuleRun(id: string, at: number, error: string | null): Promise<void>;
  deleteRule(id: string): Promise<boolean>;

  /**
   * Opens an alert for the rule unless one is open already, or one cleared less than `cooldownMs` before `at`.
   * Returns the new alert, or null: exactly one caller across all nodes gets it.
   */
  raiseAlert(alert: { ruleId: string; deviceId: string; userId: number; detail: unknown; at: number; cooldownMs: number }): Promise<AlertRecord | null>;
  /** Whether the rule has an open (active or acknowledged) alert: a read, so a steady state costs no write. */
  hasOpenAlert(ruleId: string): Promise<boolean>;
  /** Clears the rule's open alert; returns it to exactly one caller, null if none was open. */
  clearAlert(ruleId: string, at: number): Promise<AlertRecord | null>;
  /** Marks an open alert of the user's as seen; false if there is no such open alert. */
  acknowledgeAlert(id: number, userId: number, at: number): Promise<boolean>;
  /** The device's alerts, newest first. */
  listAlerts(deviceId: string, limit: number): Promise<AlertRecord[]>;

  /** True for exactly one caller per (rule, occurrence): a schedule fires once whichever node gets there first. */
  claimOccurrence(ruleId: string, occurrence: number): Promise<boolean>;

  /** Queues a delivery, or returns null when the user already has `maxPendingPerUser` waiting. */
  enqueueDelivery(d: NewDelivery, maxPendingPerUser: number): Promise<DeliveryRecord | null>;
  /**
   * Takes due pending deliveries (oldest first, at most `perUser` of each user) and leases them until `leaseUntil`,
   * so no other node sends them meanwhile. A lease that runs out (the node died) makes them due again.
   */
  claimDeliveries(now: number, leaseUntil: number, limit: number, perUser: number): Promise<DeliveryRecord[]>;
  finishDelivery(id: number, outcome: DeliveryOutcome): Promise<void>;
  /** The device's delivery log, newest first. */
  listDeliveries(deviceId: string, limit: number): Promise<DeliveryRecord[]>;

  addNotification(n: { userId: number; deviceId: string; ruleId: string | null; text: string; time: number }): Promise<void>;
  /** The user's notifications, newest first. */
  listNotifications(userId: number, limit: number): Promise<NotificationRecord[]>;
  markNotificationsRead(userId: number): Promise<void>;

  /**
   * Forgets what is over before `before`: finished deliveries, cleared alerts, notifications and claimed schedule
   * occurrences. Returns how many rows went.
   */
  pruneAutomationHistory(before: number): Promise<number>;

  /** Which of these devices have a device-side connection on any node now. */
  onlineDevices(deviceIds: string[], now: number): Promise<Set<string>>;
}
