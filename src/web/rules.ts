/** The web app's Rules pages (forms posted with the session's CSRF token; no script needed). */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DeviceInfo } from '../core/accounts.js';
import { IotcError } from '../core/errors.js';
import type { Hub } from '../core/hub.js';
import { UsageError } from '../cli/io.js';
import { ruleFromFlags } from '../cli/rules.js';
import type { Html } from './html.js';
import type { Viewer } from './pages/layout.js';
import { emptyRuleForm, ruleToForm, rulesPage } from './pages/rules.js';
import type { RuleForm, RulesPageData } from './pages/rules.js';

interface SignedUser {
  user: { id: number; email: string };
  viewer: Viewer;
}

/** What the web app lends these routes: its session checks and page sending. */
export interface RulePageHelpers {
  needUser(req: FastifyRequest, reply: FastifyReply): Promise<SignedUser | null>;
  guarded(req: FastifyRequest, reply: FastifyReply): Promise<SignedUser | null>;
  ownDevice(signed: SignedUser, id: string, reply: FastifyReply): Promise<DeviceInfo | null>;
  sendPage(reply: FastifyReply, page: Html, status?: number): unknown;
}

type Params = { Params: { id: string; ruleId?: string; alertId?: string } };

function formFrom(body: unknown): RuleForm {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const s = (k: string) => (typeof b[k] === 'string' ? (b[k] as string).trim() : '');
  return {
    name: s('name'), when: s('when'), for: s('for'), every: s('every'), tz: s('tz'), set: s('set'), webhook: s('webhook'), body: s('body'),
    preset: ['plain', 'ntfy', 'gotify'].includes(s('preset')) ? s('preset') : 'plain', email: b.email !== undefined, notify: b.notify !== undefined, cooldown: s('cooldown'),
  };
}

/** The form's fields as the CLI's flags, so both read a rule the same way. */
function formToInput(f: RuleForm, email: string): unknown {
  const flags: Record<string, unknown> = {
    name: f.name || undefined, when: f.when || undefined, for: f.for || undefined, every: f.every || undefined, tz: f.tz || undefined,
    set: f.set ? [f.set] : undefined, webhook: f.webhook ? [f.webhook] : undefined, body: f.body || undefined, preset: f.preset, email: f.email ? [email] : undefined,
    notify: f.notify, cooldown: f.cooldown || undefined,
  };
  try {
    return ruleFromFlags(flags);
  } catch (err) {
    if (err instanceof UsageError) {
      throw new IotcError('E_VALIDATION', err.message.replace('give either --when CONDITION or --every SCHEDULE', 'Give a condition or a schedule (not both)')
        .replace('give an action: --webhook URL, --set SENSOR=VALUE, --email ADDR or --notify', 'Choose at least one thing to do').replace(/--(\w+)/g, '$1'));
    }
    throw err;
  }
}

export function rulePages(app: FastifyInstance, hub: Hub, h: RulePageHelpers): void {
  const { rules } = hub;

  async function page(signed: SignedUser, device: DeviceInfo, extra: Partial<RulesPageData> = {}): Promise<RulesPageData> {
    const [list, alerts, deliveries, notifications] = await Promise.all([
      rules.list(signed.user.id, device.id), rules.alerts(signed.user.id, device.id, 50), rules.deliveries(signed.user.id, device.id, 50), rules.notifications(signed.user.id, 20),
    ]);
    return { device, rules: list, alerts, deliveries, notifications, form: emptyRuleForm(), ...extra };
  }

  /** Signed in (and, for a post, with the CSRF token), owning the device: else the helper has answered. */
  async function context(req: FastifyRequest<Params>, reply: FastifyReply, post: boolean) {
    const signed = post ? await h.guarded(req, reply) : await h.needUser(req, reply);
    if (!signed) return null;
    const device = await h.ownDevice(signed, req.params.id, reply);
    if (!device) return null;
    return { signed, device };
  }

  const back = (reply: FastifyReply, deviceId: string, notice: string) => reply.redirect(`/devices/${deviceId}/rules?${new URLSearchParams({ notice })}`, 303);

  app.get<Params>('/devices/:id/rules', async (req, reply) => {
    const c = await context(req, reply, false);
    if (!c) return reply;
    const notice = typeof (req.query as Record<string, unknown>).notice === 'string' ? String((req.query as Record<string, string>).notice).slice(0, 200) : undefined;
    return h.sendPage(reply, rulesPage(c.signed.viewer, await page(c.signed, c.device, { notice })));
  });

  app.post<Params>('/devices/:id/rules', async (req, reply) => {
    const c = await context(req, reply, true);
    if (!c) return reply;
    const form = formFrom(req.body);
    try {
      const rule = await rules.create(c.signed.user.id, c.device.id, formToInput(form, c.signed.user.email));
      return back(reply, c.device.id, `Rule ${rule.name || rule.id} added.`);
    } catch (err) {
      if (!(err instanceof IotcError) || !['E_VALIDATION', 'E_LIMIT'].includes(err.code)) throw err;
      return h.sendPage(reply, rulesPage(c.signed.viewer, await page(c.signed, c.device, { form, error: err.message })), err.status);
    }
  });

  app.get<Params>('/devices/:id/rules/:ruleId/edit', async (req, reply) => {
    const c = await context(req, reply, false);
    if (!c) return reply;
    const rule = await rules.get(c.signed.user.id, String(req.params.ruleId));
    if (rule.deviceId !== c.device.id) throw new IotcError('E_NOT_FOUND', 'No such rule');
    return h.sendPage(reply, rulesPage(c.signed.viewer, await page(c.signed, c.device, { form: ruleToForm(rule), editing: rule })));
  });

  app.post<Params>('/devices/:id/rules/:ruleId/edit', async (req, reply) => {
    const c = await context(req, reply, true);
    if (!c) return reply;
    const rule = await rules.get(c.signed.user.id, String(req.params.ruleId));
    if (rule.deviceId !== c.device.id) throw new IotcError('E_NOT_FOUND', 'No such rule');
    const form = formFrom(req.body);
    try {
      await rules.update(c.signed.user.id, rule.id, formToInput(form, c.signed.user.email));
      return back(reply, c.device.id, `Rule ${rule.name || rule.id} saved.`);
    } catch (err) {
      if (!(err instanceof IotcError) || err.code !== 'E_VALIDATION') throw err;
      return h.sendPage(reply, rulesPage(c.signed.viewer, await page(c.signed, c.device, { form, editing: rule, error: err.message })), 400);
    }
  });

  for (const action of ['toggle', 'test', 'delete'] as const) {
    app.post<Params>(`/devices/:id/rules/:ruleId/${action}`, async (req, reply) => {
      const c = await context(req, reply, true);
      if (!c) return reply;
      const rule = await rules.get(c.signed.user.id, String(req.params.ruleId));
      if (rule.deviceId !== c.device.id) throw new IotcError('E_NOT_FOUND', 'No such rule');
      const label = rule.name || rule.id;
      if (action === 'toggle') {
        await rules.update(c.signed.user.id, rule.id, { enabled: !rule.enabled });
        return back(reply, c.device.id, `Rule ${label} ${rule.enabled ? 'disabled' : 'enabled'}.`);
      }
      if (action === 'delete') {
        await rules.delete(c.signed.user.id, rule.id);
        return back(reply, c.device.id, `Rule ${label} deleted.`);
      }
      const { error } = await rules.testFire(c.signed.user.id, rule.id);
      return back(reply, c.device.id, error ? `Test of ${label}: ${error}` : `Test of ${label} fired: see the delivery log.`);
    });
  }

  app.post<Params>('/devices/:id/rules/alerts/:alertId/acknowledge', async (req, reply) => {
    const c = await context(req, reply, true);
    if (!c) return reply;
    const id = Number(req.params.alertId);
    if (!Number.isSafeInteger(id) || id <= 0) throw new IotcError('E_NOT_FOUND', 'No such alert');
    await rules.acknowledge(c.signed.user.id, id);
    return back(reply, c.device.id, 'Alert acknowledged.');
  });

  app.post<Params>('/devices/:id/rules/notifications/read', async (req, reply) => {
    const c = await context(req, reply, true);
    if (!c) return reply;
    await hub.store.automations.markNotificationsRead(c.signed.user.id);
    return back(reply, c.device.id, 'Notifications marked read.');
  });
}
