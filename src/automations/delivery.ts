/**
 * The delivery queue's sender: webhooks and emails waiting in the store are leased, sent, and finished or
 * retried with backoff. The queue lives in the store, so what is pending survives a restart and any node may
 * send it. Each user has at most PER_USER deliveries in flight per node, so a target that hangs or fails holds
 * back only its owner's deliveries.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Transporter } from 'nodemailer';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { DeliveryRecord } from '../store/automation-types.js';
import type { Store } from '../store/types.js';
import type { Action } from './model.js';
import { renderTemplate } from './body-template.js';
import { checkWebhookUrlText, guardedLookup } from './ssrf.js';
import type { Clock } from './engine.js';

type WebhookAction = Extract<Action, { type: 'webhook' }>;
type EmailAction = Extract<Action, { type: 'email' }>;

/** What a webhook receives (and an email tells). */
export interface AutomationEvent {
  event: 'triggered' | 'cleared' | 'offline' | 'online' | 'schedule';
  device: string;
  rule: string;
  name: string;
  sensor: string | null;
  value: unknown;
  time: number;
  /** Set when the owner fired the rule by hand to try it. */
  test?: boolean;
}

export interface DeliveryPayload {
  action: WebhookAction | EmailAction;
  event: AutomationEvent;
}

const PER_USER = 2;
const MAX_IN_FLIGHT = 16;
const MAX_BODY_ANSWER = 1024;

export type DeliveryConfig = Pick<Config, 'webhookTimeout' | 'webhookRetries' | 'webhookBackoff' | 'webhookAllowPrivate' | 'smtpUrl' | 'smtpFrom' | 'rulesTick'>;

interface Attempt {
  ok: boolean;
  status: number | null;
  error: string | null;
  /** Worth trying again later (timeouts, 5xx, 408, 429, network failures). */
  retry: boolean;
}

/** The signature a receiver recomputes: HMAC-SHA256 over "TIMESTAMP.BODY" with the rule's secret, hex. */
export function signature(secret: string, timestamp: number, body: string): string {
  return 'sha256=' + crypto.createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

export function eventTitle(e: AutomationEvent): string {
  const what = e.sensor !== null && e.value !== undefined ? `: ${e.sensor} = ${JSON.stringify(e.value)}` : '';
  return `${e.name || e.rule} ${e.event}${e.test ? ' (test)' : ''} on ${e.device}${what}`;
}

export class DeliverySender {
  private timer: NodeJS.Timeout | null = null;
  private readonly inFlight = new Map<number, Promise<void>>();
  private readonly perUser = new Map<number, number>();
  private mailer: Transporter | null = null;
  private ticking: Promise<void> = Promise.resolve();
  private waiting: Promise<void> | null = null;

  constructor(private readonly store: Store, private readonly config: DeliveryConfig, private readonly log: Logger, private readonly clock: Clock) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), Math.min(this.config.rulesTick, 1000));
    this.timer.unref();
  }

  /**
   * Claims due deliveries and starts sending them; does not wait for them. Calls while a claim is waiting its
   * turn join it: a burst of fired rules costs one claim, not one each.
   */
  tick(): Promise<void> {
    if (this.waiting) return this.waiting;
    this.ticking = this.waiting = this.ticking.then(async () => {
      this.waiting = null;
      const room = MAX_IN_FLIGHT - this.inFlight.size;
      if (room <= 0) return;
      const now = this.clock.now();
      let claimed: DeliveryRecord[];
      try {
        claimed = await this.store.automations.claimDeliveries(now, now + this.config.webhookTimeout + 5000, room, PER_USER);
      } catch (err) {
        this.log.warn({ err }, 'could not read the delivery queue; will retry');
        return;
      }
      for (const d of claimed) {
        const busy = this.perUser.get(d.userId) ?? 0;
        if (busy >= PER_USER) {
          // Hand it back at once: this user already has its share in flight here.
          await this.finish(d, { state: 'pending', attempts: d.attempts, nextAttemptAt: d.nextAttemptAt, lastStatus: d.lastStatus, lastError: d.lastError });
          continue;
        }
        this.perUser.set(d.userId, busy + 1);
        const p = this.send(d).finally(() => {
          this.inFlight.delete(d.id);
          const n = (this.perUser.get(d.userId) ?? 1) - 1;
          if (n > 0) this.perUser.set(d.userId, n);
          else this.perUser.delete(d.userId);
          // A slot is free: what waits (this user's next delivery, say) goes now, not at the next tick.
          if (this.timer) void this.tick();
        });
        this.inFlight.set(d.id, p);
      }
    });
    return this.ticking;
  }

  /** Resolves when everything claimed so far has been sent or given up (tests and shutdown). */
  async idle(): Promise<void> {
    await this.ticking;
    await Promise.all(this.inFlight.values());
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.idle();
    this.mailer?.close();
  }

  private async send(d: DeliveryRecord): Promise<void> {
    const payload = d.payload as DeliveryPayload;
    let attempt: Attempt;
    try {
      attempt = d.kind === 'webhook' ? await this.sendWebhook(d, payload) : await this.sendEmail(payload);
    } catch (err) {
      attempt = { ok: false, status: null, error: (err as Error).message, retry: true };
    }
    const attempts = d.attempts + 1;
    const now = this.clock.now();
    const retry = !attempt.ok && attempt.retry && attempts <= this.config.webhookRetries;
    const state = attempt.ok ? 'delivered' : retry ? 'pending' : 'failed';
    const nextAttemptAt = retry ? now + this.config.webhookBackoff * 2 ** (attempts - 1) : now;
    await this.finish(d, { state, attempts, nextAttemptAt, lastStatus: attempt.status, lastError: attempt.error });
    if (state === 'failed') {
      const error = `${d.kind} to ${d.target} failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${attempt.error}`;
      await this.store.automations.recordRuleRun(d.ruleId, now, error).catch(() => {});
    }
  }

  private async finish(d: DeliveryRecord, o: Omit<Parameters<Store['automations']['finishDelivery']>[1], 'at'>): Promise<void> {
    try {
      await this.store.automations.finishDelivery(d.id, { ...o, at: this.clock.now() });
    } catch (err) {
      // The lease runs out and the delivery is tried again: at least once, never lost.
      this.log.warn({ err, delivery: d.id }, 'could not record a delivery outcome');
    }
  }

  private async sendWebhook(d: DeliveryRecord, p: DeliveryPayload): Promise<Attempt> {
    const action = p.action as WebhookAction;
    const refused = checkWebhookUrlText(action.url, this.config.webhookAllowPrivate);
    if (refused) return { ok: false, status: null, error: refused, retry: false };
    const rule = await this.store.automations.getRule(d.ruleId);
    if (!rule) return { ok: false, status: null, error: 'the rule was deleted', retry: false };
    const { body, headers } = webhookRequest(action, p.event);
    const timestamp = Math.floor(this.clock.now() / 1000);
    headers['X-IOTC-Timestamp'] = String(timestamp);
    headers['X-IOTC-Signature'] = signature(rule.secret, timestamp, body);
    headers['X-IOTC-Delivery'] = String(d.id);
    headers['User-Agent'] = 'IOTcommunicate-webhook';
    return this.request(action.url, action.method, headers, body);
  }

  private request(url: string, method: string, headers: Record<string, string>, body: string): Promise<Attempt> {
    const u = new URL(url);
    const lib = u.protocol === 'https:' ? https : http;
    return new Promise((resolve) => {
      const req = lib.request(u, {
        method, headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) },
        lookup: guardedLookup(this.config.webhookAllowPrivate), timeout: this.config.webhookTimeout, agent: false,
      }, (res) => {
        const status = res.statusCode ?? 0;
        let answer = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (answer.length < MAX_BODY_ANSWER) answer += c;
        });
        res.on('end', () => {
          const ok = status >= 200 && status < 300;
          resolve({ ok, status, error: ok ? null : `HTTP ${status}${answer ? `: ${answer.slice(0, 200)}` : ''}`, retry: status >= 500 || status === 408 || status === 429 });
        });
        res.on('error', (err) => resolve({ ok: false, status, error: err.message, retry: true }));
      });
      // The whole exchange, not only each silence, must fit the timeout: a target trickling bytes holds nothing for long.
      const deadline = setTimeout(() => req.destroy(new Error(`no complete answer within ${this.config.webhookTimeout} ms`)), this.config.webhookTimeout);
      req.on('close', () => clearTimeout(deadline));
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.config.webhookTimeout} ms`)));
      req.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, status: null, error: err.message, retry: err.code !== 'E_PRIVATE_ADDRESS' }));
      req.end(body);
    });
  }

  private async sendEmail(p: DeliveryPayload): Promise<Attempt> {
    if (!this.config.smtpUrl) return { ok: false, status: null, error: 'no SMTP server is set up on this hub (IOTC_SMTP_URL)', retry: false };
    if (!this.mailer) {
      const u = new URL(this.config.smtpUrl);
      const secure = u.protocol === 'smtps:';
      const timeout = this.config.webhookTimeout;
      // Loaded on first use: most hubs never send email, and every CLI command starts faster without it.
      const { default: nodemailer } = await import('nodemailer');
      this.mailer = nodemailer.createTransport({
        host: u.hostname, port: u.port ? Number(u.port) : secure ? 465 : 587, secure,
        auth: u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : undefined,
        connectionTimeout: timeout, greetingTimeout: timeout, socketTimeout: timeout,
      });
    }
    const action = p.action as EmailAction;
    const e = p.event;
    const info = await this.mailer.sendMail({
      from: this.config.smtpFrom,
      to: action.to,
      subject: `[IOTcommunicate] ${eventTitle(e)}`,
      text: [eventTitle(e), '', `event:  ${e.event}`, `device: ${e.device}`, `rule:   ${e.rule}${e.name ? ` (${e.name})` : ''}`,
        ...(e.sensor !== null ? [`sensor: ${e.sensor}`, `value:  ${JSON.stringify(e.value)}`] : []), `time:   ${new Date(e.time).toISOString()}`, ''].join('\n'),
    });
    const rejected = (info.rejected ?? []).length > 0;
    return { ok: !rejected, status: rejected ? 550 : 250, error: rejected ? `the SMTP server refused ${action.to}` : null, retry: false };
  }
}

/** The request body and headers for a webhook action and its preset. */
export function webhookRequest(action: WebhookAction, e: AutomationEvent): { body: string; headers: Record<string, string> } {
  if (action.preset === 'ntfy') {
    const headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8', Title: `IOTcommunicate: ${e.event}`, Tags: e.event };
    if (action.token) headers.Authorization = `Bearer ${action.token}`;
    return { body: eventTitle(e), headers };
  }
  if (action.preset === 'gotify') {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (action.token) headers['X-Gotify-Key'] = action.token;
    return { body: JSON.stringify({ title: `IOTcommunicate: ${e.event}`, message: eventTitle(e), priority: e.event === 'cleared' || e.event === 'online' ? 2 : 5, extras: { iotc: e } }), headers };
  }
  const body = action.body === undefined ? e : renderTemplate(action.body, e);
  return { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } };
}
