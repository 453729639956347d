/** `iotc rule add|list|delete`: automation rules from the command line (docs/automations.md). */
import type { Config } from '../config.js';
import { duration } from '../config.js';
import { Rules } from '../automations/rules.js';
import { describeAction, describeTrigger, parseEvery, parseScalar, parseWhen } from '../automations/model.js';
import type { Action, Rule, Trigger } from '../automations/model.js';
import type { Store } from '../store/types.js';
import { UsageError } from './io.js';

type Flags = Record<string, unknown>;

function ms(text: unknown, flag: string): number {
  if (text === undefined) return 0;
  const parsed = duration.safeParse(text);
  if (!parsed.success) throw new UsageError(`--${flag}: ${parsed.error.issues[0].message}`);
  return parsed.data;
}

function list(v: unknown): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)];
}

/** `--body '{"temp":"{{value}}"}'`: the webhooks' JSON body template. */
function bodyFlag(text: unknown, webhooks: boolean): unknown {
  if (typeof text !== 'string' || text.trim() === '') return undefined;
  if (!webhooks) throw new UsageError('--body goes with --webhook');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--body: not JSON (${(err as Error).message}); e.g. --body '{"text":"temp is {{value}}"}'`);
  }
}

export function ruleFromFlags(flags: Flags): { name: string; trigger: Trigger; actions: Action[]; cooldownMs: number } {
  const when = typeof flags.when === 'string' ? flags.when : undefined;
  const every = typeof flags.every === 'string' ? flags.every : undefined;
  if ((when === undefined) === (every === undefined)) throw new UsageError('give either --when CONDITION or --every SCHEDULE');
  const trigger: Trigger = when !== undefined
    ? parseWhen(when, ms(flags.for, 'for'))
    : { type: 'schedule', cron: parseEvery(every!), ...(typeof flags.tz === 'string' ? { tz: flags.tz } : {}) };
  if (when !== undefined && flags.tz !== undefined) throw new UsageError('--tz goes with --every');
  const preset = typeof flags.preset === 'string' ? flags.preset : 'plain';
  const body = bodyFlag(flags.body, list(flags.webhook).length > 0);
  const actions: Action[] = [
    ...list(flags.webhook).map((url) => ({ type: 'webhook', url, method: 'POST', preset, ...(body !== undefined ? { body } : {}) }) as Action),
    ...list(flags.set).map((pair) => {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new UsageError(`--set ${pair}: use --set SENSOR=VALUE, e.g. --set heater=true`);
      return { type: 'set', sensor: pair.slice(0, eq), value: parseScalar(pair.slice(eq + 1)) } as Action;
    }),
    ...list(flags.email).map((to) => ({ type: 'email', to }) as Action),
    ...(flags.notify ? [{ type: 'notify' } as Action] : []),
  ];
  if (actions.length === 0) throw new UsageError('give an action: --webhook URL, --set SENSOR=VALUE, --email ADDR or --notify');
  return { name: typeof flags.name === 'string' ? flags.name : '', trigger, actions, cooldownMs: ms(flags.cooldown, 'cooldown') };
}

export function ruleLine(r: Rule): string {
  const last = r.lastRunAt ? `last run ${new Date(r.lastRunAt).toISOString()}${r.lastError ? ` FAILED: ${r.lastError}` : ' ok'}` : 'never ran';
  return `${r.id}  ${r.enabled ? 'on ' : 'off'}  when ${describeTrigger(r.trigger)} → ${r.actions.map(describeAction).join(', ')}  (${last})${r.name ? `  ${r.name}` : ''}`;
}

/** Runs `iotc rule SUB`; the store is the server's, so a running hub picks the change up within a few seconds. */
export async function ruleCommand(sub: string | undefined, arg: string | undefined, flags: Flags, config: Config, store: Store, out: (s: string) => void): Promise<number> {
  const rules = new Rules(store, config, null);
  const device = () => {
    const d = flags.device;
    if (typeof d !== 'string' || d === '') throw new UsageError('--device is required');
    return d;
  };
  switch (sub) {
    case 'add': {
      const rule = await rules.create(null, device(), ruleFromFlags(flags));
      if (flags.json) out(JSON.stringify(rule));
      else {
        out(`rule ${rule.id} created: when ${describeTrigger(rule.trigger)} → ${rule.actions.map(describeAction).join(', ')}`);
        if (rule.actions.some((a) => a.type === 'webhook')) out(`  webhook secret (X-IOTC-Signature): ${rule.secret}`);
      }
      return 0;
    }
    case 'list': {
      const all = await rules.list(null, device());
      if (flags.json) out(JSON.stringify(all));
      else if (all.length === 0) out('no rules');
      else for (const r of all) out(ruleLine(r));
      return 0;
    }
    case 'delete': {
      if (!arg) throw new UsageError('give the rule id: iotc rule delete RULE_ID (see iotc rule list --device ID)');
      await rules.delete(null, arg);
      out(`deleted rule ${arg}`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command "rule${sub ? ` ${sub}` : ''}"`);
  }
}


