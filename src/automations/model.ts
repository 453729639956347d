/**
 * What a rule is: its trigger, its actions and their checks. Every door (CLI, HTTP API, web app) builds rules
 * through ruleInput, so a rule in the store has always passed these checks.
 */
import { Cron } from 'croner';
import { z } from 'zod';
import { duration } from '../config.js';
import { IotcError } from '../core/errors.js';
import { templateProblem } from './body-template.js';

export const COMPARISONS = ['>', '>=', '<', '<=', '==', '!='] as const;
export type Comparison = (typeof COMPARISONS)[number];

const sensorName = z.string().min(1).max(64).regex(/^[A-Za-z0-9_.:-]+$/, 'a sensor name: letters, digits, _ . : and - only');
const holdFor = duration.pipe(z.number().int().min(0).max(7 * 86_400_000, 'at most 7d'));
const scalar = z.union([z.number().finite(), z.string().max(256), z.boolean()]);

export const triggerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('threshold'), sensor: sensorName, op: z.enum(COMPARISONS), value: scalar, forMs: holdFor.default(0) }),
  z.object({ type: z.literal('changed'), sensor: sensorName }),
  z.object({ type: z.literal('offline'), forMs: holdFor.default(0) }),
  z.object({ type: z.literal('online'), forMs: holdFor.default(0) }),
  z.object({ type: z.literal('schedule'), cron: z.string().min(1).max(100), tz: z.string().min(1).max(64).optional() }),
]);
export type Trigger = z.output<typeof triggerSchema>;

export const PRESETS = ['plain', 'ntfy', 'gotify'] as const;

export const actionSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('set'), sensor: sensorName, value: z.unknown().refine((v) => v !== undefined, 'a value is required') }),
  z.object({
    type: z.literal('webhook'),
    url: z.string().max(2048).url('a full http:// or https:// URL').refine((u) => /^https?:\/\//i.test(u), 'only http:// and https:// URLs'),
    method: z.enum(['POST', 'PUT']).default('POST'),
    /** ntfy and Gotify take a different body; the signature header is sent either way. */
    preset: z.enum(PRESETS).default('plain'),
    /** Gotify's application token or an ntfy access token, sent as a header by the preset. */
    token: z.string().max(256).optional(),
    /** The plain webhook's own JSON body, with {{field}} placeholders (body-template.ts); without, the event as it is. */
    body: z.unknown().optional(),
  }).superRefine((a, ctx) => {
    if (a.body === undefined) return;
    if (a.preset !== 'plain') ctx.addIssue({ code: 'custom', path: ['body'], message: `a body template is for plain webhooks; ${a.preset} has its own` });
    const problem = templateProblem(a.body);
    if (problem) ctx.addIssue({ code: 'custom', path: ['body'], message: `the body template ${problem}` });
  }),
  z.object({ type: z.literal('email'), to: z.string().email('an email address').max(254) }),
  z.object({ type: z.literal('notify') }),
]);
export type Action = z.output<typeof actionSchema>;

export const ruleInputSchema = z.object({
  name: z.string().trim().max(100).default(''),
  enabled: z.boolean().default(true),
  trigger: triggerSchema,
  actions: z.array(actionSchema).min(1, 'a rule needs at least one action').max(5, 'at most 5 actions per rule'),
  /** After an alert clears, a new one is not raised for this long (nor does a `changed` rule fire again). */
  cooldownMs: duration.pipe(z.number().int().min(0).max(7 * 86_400_000)).default(0),
}).superRefine((rule, ctx) => {
  if (rule.trigger.type === 'schedule') {
    try {
      new Cron(rule.trigger.cron, { timezone: rule.trigger.tz, paused: true });
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['trigger', 'cron'], message: `"${rule.trigger.cron}" is not a schedule: ${(err as Error).message}` });
    }
    if (rule.trigger.tz !== undefined && !validTimeZone(rule.trigger.tz)) {
      ctx.addIssue({ code: 'custom', path: ['trigger', 'tz'], message: `"${rule.trigger.tz}" is not a time zone (use e.g. Europe/Paris)` });
    }
  }
});
export type RuleInput = z.output<typeof ruleInputSchema>;

export interface Rule extends RuleInput {
  id: string;
  deviceId: string;
  userId: number;
  /** Signs webhook bodies (HMAC-SHA256); shown to the owner so their receiver can check it. */
  secret: string;
  createdAt: number;
  updatedAt: number;
  lastRunAt: number | null;
  /** What went wrong the last time the rule ran, in plain words; null if it went well. */
  lastError: string | null;
}

/** Validates untrusted input into a rule, or throws E_VALIDATION naming the field. */
export function parseRuleInput(input: unknown): RuleInput {
  const parsed = ruleInputSchema.safeParse(input);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join('.') || 'rule'}: ${i.message}`).join('; ');
    throw new IotcError('E_VALIDATION', msg);
  }
  return parsed.data;
}

export function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** "temp > 30", "door == open", "temp changed", "offline", "online": the CLI's and the web app's short form. */
export function parseWhen(text: string, forMs = 0): Trigger {
  const t = text.trim();
  if (/^offline$/i.test(t)) return { type: 'offline', forMs };
  if (/^online$/i.test(t)) return { type: 'online', forMs };
  const changed = /^([A-Za-z0-9_.:-]+)\s+changed$/i.exec(t);
  if (changed) return { type: 'changed', sensor: changed[1] };
  const m = /^([A-Za-z0-9_.:-]+)\s*(>=|<=|==|!=|>|<)\s*(.+)$/.exec(t);
  if (!m) {
    throw new IotcError('E_VALIDATION', `"${text}" is not a condition; use e.g. "temp > 30", "door == open", "temp changed", "offline" or "online"`);
  }
  return { type: 'threshold', sensor: m[1], op: m[2] as Comparison, value: parseScalar(m[3]), forMs };
}

/** "30", "true", "open" or "\"30\"": a number or boolean when it reads as one, else text (quotes force text). */
export function parseScalar(text: string): number | string | boolean {
  const t = text.trim();
  if (/^".*"$/.test(t)) return t.slice(1, -1);
  if (t === 'true') return true;
  if (t === 'false') return false;
  if (t !== '' && Number.isFinite(Number(t))) return Number(t);
  return t;
}

/** "0 7 * * *" stays a cron expression; "07:00" or "every day at 07:00" becomes "0 7 * * *". */
export function parseEvery(text: string): string {
  const m = /^(?:every\s+day\s+at\s+)?(\d{1,2}):(\d{2})$/i.exec(text.trim());
  if (m && Number(m[1]) < 24 && Number(m[2]) < 60) return `${Number(m[2])} ${Number(m[1])} * * *`;
  return text.trim();
}

/**
 * Does a reading's value meet the condition? Numbers (and numeric strings) compare as numbers, the rest as text.
 * `json` is the value's JSON text when the caller has it already (the relay made it), so none is made here.
 */
export function compare(value: unknown, op: Comparison, target: number | string | boolean, json?: string): boolean {
  let a: number | string | boolean;
  let b: number | string | boolean = target;
  if (typeof target === 'number') {
    const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
    if (!Number.isFinite(n)) return false;
    a = n;
  } else if (typeof target === 'boolean') {
    if (typeof value !== 'boolean') return op === '!=';
    a = value;
  } else {
    a = typeof value === 'string' ? value : json ?? JSON.stringify(value);
    b = target;
  }
  switch (op) {
    case '>': return a > b;
    case '>=': return a >= b;
    case '<': return a < b;
    case '<=': return a <= b;
    case '==': return a === b;
    case '!=': return a !== b;
  }
}

/** One line a person reads: "temp < 2 for 1m", "offline for 30s", "every 0 7 * * * (Europe/Paris)". */
export function describeTrigger(t: Trigger): string {
  const held = (ms: number) => (ms > 0 ? ` for ${formatMs(ms)}` : '');
  switch (t.type) {
    case 'threshold': return `${t.sensor} ${t.op} ${JSON.stringify(t.value)}${held(t.forMs)}`;
    case 'changed': return `${t.sensor} changed`;
    case 'offline': return `offline${held(t.forMs)}`;
    case 'online': return `online${held(t.forMs)}`;
    case 'schedule': return `every "${t.cron}"${t.tz ? ` (${t.tz})` : ''}`;
  }
}

export function describeAction(a: Action): string {
  switch (a.type) {
    case 'set': return `set ${a.sensor}=${JSON.stringify(a.value)}`;
    case 'webhook': return `${a.preset === 'plain' ? 'webhook' : a.preset} ${a.method} ${a.url}`;
    case 'email': return `email ${a.to}`;
    case 'notify': return 'notify in the web app';
  }
}

export function formatMs(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
