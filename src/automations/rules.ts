/**
 * The rules service every door uses: owner checks, per-user limits and the SSRF check happen here, before
 * anything is stored. `userId` null is the CLI on the server's machine, which may act on any device.
 */
import crypto from 'node:crypto';
import type { Config } from '../config.js';
import { IotcError } from '../core/errors.js';
import type { AlertRecord, DeliveryRecord, NotificationRecord } from '../store/automation-types.js';
import type { Device, Store } from '../store/types.js';
import type { AutomationEngine } from './engine.js';
import { parseRuleInput } from './model.js';
import type { Rule, RuleInput } from './model.js';
import { checkWebhookUrlText } from './ssrf.js';

export type RulesConfig = Pick<Config, 'rulesPerDevice' | 'rulesPerUser' | 'webhookAllowPrivate' | 'smtpUrl'>;

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const randomId = (prefix: string, n: number) => prefix + Array.from(crypto.randomBytes(n), (b) => BASE32[b & 31]).join('');

/** A rule as shown to its owner. */
export type RuleView = Rule;

export class Rules {
  constructor(private readonly store: Store, private readonly config: RulesConfig, private readonly engine: AutomationEngine | null) {}

  private async device(userId: number | null, deviceId: string): Promise<Device> {
    const device = await this.store.getDevice(deviceId);
    if (!device || (userId !== null && device.userId !== userId)) throw new IotcError('E_NOT_FOUND', 'No such device');
    return device;
  }

  private async rule(userId: number | null, ruleId: string): Promise<Rule> {
    const rule = await this.store.automations.getRule(ruleId);
    if (!rule || (userId !== null && rule.userId !== userId)) throw new IotcError('E_NOT_FOUND', 'No such rule');
    return rule;
  }

  /** Checks what only the hub knows: webhook targets, email recipients, whether email is set up. */
  private async checkActions(input: RuleInput, ownerId: number): Promise<void> {
    for (const a of input.actions) {
      if (a.type === 'webhook') {
        const refused = checkWebhookUrlText(a.url, this.config.webhookAllowPrivate);
        if (refused) throw new IotcError('E_VALIDATION', `webhook URL ${refused}`);
      } else if (a.type === 'email') {
        if (!this.config.smtpUrl) throw new IotcError('E_VALIDATION', 'email actions need an SMTP server: the hub admin sets IOTC_SMTP_URL');
        const owner = await this.store.getUser(ownerId);
        // Open sign-up must not make the hub a mail relay: a rule mails only its owner.
        if (!owner || owner.email.toLowerCase() !== a.to.toLowerCase()) {
          throw new IotcError('E_VALIDATION', `email actions go to the account's own address (${owner?.email ?? 'unknown'}), not ${a.to}`);
        }
      }
    }
  }

  async create(userId: number | null, deviceId: string, input: unknown): Promise<Rule> {
    const device = await this.device(userId, deviceId);
    const parsed = parseRuleInput(input);
    await this.checkActions(parsed, device.userId);
    const now = Date.now();
    const rule: Rule = {
      ...parsed, id: randomId('r_', 16), deviceId: device.id, userId: device.userId, secret: randomId('whsec_', 32),
      createdAt: now, updatedAt: now, lastRunAt: null, lastError: null,
    };
    const { rulesPerDevice, rulesPerUser } = this.config;
    const refused = await this.store.automations.createRule(rule, { perDevice: rulesPerDevice, perUser: rulesPerUser });
    if (refused === 'device') {
      throw new IotcError('E_LIMIT', `This device already has ${rulesPerDevice} rules, the most this hub allows (--rules-per-device ${rulesPerDevice})`);
    }
    if (refused === 'user') {
      throw new IotcError('E_LIMIT', `This account already has ${rulesPerUser} rules, the most this hub allows (--rules-per-user ${rulesPerUser})`);
    }
    await this.engine?.ruleChanged(rule.id);
    return rule;
  }

  async list(userId: number | null, deviceId: string): Promise<Rule[]> {
    await this.device(userId, deviceId);
    return this.store.automations.listRules(deviceId);
  }

  get(userId: number | null, ruleId: string): Promise<Rule> {
    return this.rule(userId, ruleId);
  }

  /** Replaces a rule's definition (name, enabled, trigger, actions, cooldown); a partial input keeps the rest. */
  async update(userId: number | null, ruleId: string, input: unknown): Promise<Rule> {
    const old = await this.rule(userId, ruleId);
    const patch = typeof input === 'object' && input !== null && !Array.isArray(input) ? input : {};
    const merged = { name: old.name, enabled: old.enabled, trigger: old.trigger, actions: old.actions, cooldownMs: old.cooldownMs, ...patch };
    const parsed = parseRuleInput(merged);
    await this.checkActions(parsed, old.userId);
    const rule: Rule = { ...old, ...parsed, updatedAt: Math.max(Date.now(), old.updatedAt + 1) };
    if (!(await this.store.automations.updateRule(rule))) throw new IotcError('E_NOT_FOUND', 'No such rule');
    await this.engine?.ruleChanged(rule.id);
    return rule;
  }

  async delete(userId: number | null, ruleId: string): Promise<void> {
    await this.rule(userId, ruleId);
    await this.store.automations.deleteRule(ruleId);
    await this.engine?.ruleChanged(ruleId);
  }

  /** Runs the rule's actions now, as if it fired; the error, if any, is returned and shown as its last run. */
  async testFire(userId: number | null, ruleId: string): Promise<{ error: string | null }> {
    const rule = await this.rule(userId, ruleId);
    if (!this.engine) throw new IotcError('E_UNAVAILABLE', 'Rules can be tried only on a running hub');
    const error = await this.engine.testFire(rule);
    if (error?.includes('E_LIMIT')) throw new IotcError('E_LIMIT', error);
    return { error };
  }

  async alerts(userId: number | null, deviceId: string, limit = 100): Promise<AlertRecord[]> {
    await this.device(userId, deviceId);
    return this.store.automations.listAlerts(deviceId, limit);
  }

  async acknowledge(userId: number, alertId: number): Promise<void> {
    if (!(await this.store.automations.acknowledgeAlert(alertId, userId, Date.now()))) {
      throw new IotcError('E_NOT_FOUND', 'No such open, unacknowledged alert');
    }
  }

  async deliveries(userId: number | null, deviceId: string, limit = 100): Promise<DeliveryRecord[]> {
    await this.device(userId, deviceId);
    return this.store.automations.listDeliveries(deviceId, limit);
  }

  notifications(userId: number, limit = 50): Promise<NotificationRecord[]> {
    return this.store.automations.listNotifications(userId, limit);
  }
}
