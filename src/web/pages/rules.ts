/** The device's Rules page: its rules with their last run, a form to add or edit one, alerts, deliveries, notifications. */
import { describeAction, describeTrigger, formatMs } from '../../automations/model.js';
import type { Rule } from '../../automations/model.js';
import type { DeviceInfo } from '../../core/accounts.js';
import type { AlertRecord, DeliveryRecord, NotificationRecord } from '../../store/automation-types.js';
import { html } from '../html.js';
import type { Html } from '../html.js';
import { alert, csrfField, layout, timeAgo } from '../pages/layout.js';
import type { Viewer } from '../pages/layout.js';

/** What the rule form holds, as typed (so a refused form comes back as it was). */
export interface RuleForm {
  name: string;
  when: string;
  for: string;
  every: string;
  tz: string;
  set: string;
  webhook: string;
  /** The webhook's JSON body template; empty: the event as it is. */
  body: string;
  preset: string;
  email: boolean;
  notify: boolean;
  cooldown: string;
}

export const emptyRuleForm = (): RuleForm => ({ name: '', when: '', for: '', every: '', tz: '', set: '', webhook: '', body: '', preset: 'plain', email: false, notify: false, cooldown: '' });

/** A stored rule back in the form's words, for editing. */
export function ruleToForm(rule: Rule): RuleForm {
  const f = emptyRuleForm();
  f.name = rule.name;
  const t = rule.trigger;
  if (t.type === 'schedule') {
    f.every = t.cron;
    f.tz = t.tz ?? '';
  } else {
    f.when = t.type === 'threshold' ? `${t.sensor} ${t.op} ${typeof t.value === 'string' ? t.value : JSON.stringify(t.value)}` : t.type === 'changed' ? `${t.sensor} changed` : t.type;
    if ('forMs' in t && t.forMs > 0) f.for = formatMs(t.forMs);
  }
  for (const a of rule.actions) {
    if (a.type === 'set') f.set = `${a.sensor}=${typeof a.value === 'string' ? a.value : JSON.stringify(a.value)}`;
    if (a.type === 'webhook') {
      f.webhook = a.url;
      f.preset = a.preset;
      f.body = a.body === undefined ? '' : JSON.stringify(a.body);
    }
    if (a.type === 'email') f.email = true;
    if (a.type === 'notify') f.notify = true;
  }
  if (rule.cooldownMs > 0) f.cooldown = formatMs(rule.cooldownMs);
  return f;
}

export interface RulesPageData {
  device: DeviceInfo;
  rules: Rule[];
  alerts: AlertRecord[];
  deliveries: DeliveryRecord[];
  notifications: NotificationRecord[];
  form: RuleForm;
  /** The rule being edited, if the form edits one. */
  editing?: Rule;
  error?: string;
  notice?: string;
}

function input(name: keyof RuleForm, label: string, value: string, hint: string, placeholder = ''): Html {
  return html`<div class="field"><label for="r-${name}">${label}</label>
<input id="r-${name}" name="${name}" value="${value}" placeholder="${placeholder}" maxlength="2048"><p class="hint">${hint}</p></div>`;
}

function ruleForm(viewer: Viewer, d: RulesPageData): Html {
  const f = d.form;
  const action = d.editing ? `/devices/${d.device.id}/rules/${d.editing.id}/edit` : `/devices/${d.device.id}/rules`;
  return html`<form class="card rule-form" method="post" action="${action}" data-rule-form>
${csrfField(viewer)}
<h2>${d.editing ? html`Edit rule <code>${d.editing.id}</code>` : 'New rule'}</h2>
${d.error ? alert('error', d.error) : ''}
${input('name', 'Name', f.name, 'Optional: shown in alerts and emails.', 'frost')}
<fieldset><legend>When</legend>
${input('when', 'Condition', f.when, 'e.g. temp < 2, door == open, temp changed, offline, online', 'temp < 2')}
${input('for', 'For', f.for, 'Optional: how long the condition must hold, e.g. 30s, 10m', '1m')}
${input('every', '…or on a schedule', f.every, 'Instead of a condition: a cron expression (0 7 * * *) or a time of day (07:00)', '0 7 * * *')}
${input('tz', 'Time zone', f.tz, 'For schedules, e.g. Europe/Paris; empty: this browser\'s (the server\'s without scripts)', '')}
</fieldset>
<fieldset><legend>Then</legend>
${input('set', 'Write a value to the device', f.set, 'SENSOR=VALUE, e.g. heater=true', 'heater=true')}
${input('webhook', 'Call a webhook', f.webhook, 'https://… — receives JSON signed with the rule\'s secret', 'https://example.com/hook')}
<div class="field"><label for="r-preset">Webhook kind</label><select id="r-preset" name="preset">
${['plain', 'ntfy', 'gotify'].map((p) => html`<option value="${p}"${p === f.preset ? html` selected` : ''}>${p === 'plain' ? 'JSON (plain)' : p}</option>`)}
</select></div>
<div class="field"><label for="r-body">Webhook body</label>
<textarea id="r-body" name="body" rows="2" maxlength="4096" placeholder='{"text":"{{sensor}} is {{value}}"}'>${f.body}</textarea>
<p class="hint">Optional JSON for a plain webhook, with {{event}}, {{device}}, {{rule}}, {{name}}, {{sensor}}, {{value}}, {{time}}; empty: the event as it is.</p></div>
<label class="check"><input type="checkbox" name="email" value="1"${f.email ? html` checked` : ''}> Email me (${viewer.email})</label>
<label class="check"><input type="checkbox" name="notify" value="1"${f.notify ? html` checked` : ''}> Show a notification here</label>
${input('cooldown', 'Cooldown', f.cooldown, 'Optional: after an alert clears, no new one for this long, e.g. 10m', '')}
</fieldset>
<p class="actions"><button class="btn" type="submit">${d.editing ? 'Save rule' : 'Add rule'}</button>
${d.editing ? html`<a class="btn btn-ghost" href="/devices/${d.device.id}/rules">Cancel</a>` : ''}</p>
</form>`;
}

function postButton(viewer: Viewer, path: string, label: string, cls = 'btn btn-small btn-ghost'): Html {
  return html`<form method="post" action="${path}" class="inline-form">${csrfField(viewer)}<button class="${cls}" type="submit">${label}</button></form>`;
}

function ruleRow(viewer: Viewer, deviceId: string, r: Rule): Html {
  const base = `/devices/${deviceId}/rules/${r.id}`;
  return html`<li class="card rule" data-rule="${r.id}">
<div class="rule-head"><strong>${r.name || r.id}</strong> <span class="pill" data-rule-state>${r.enabled ? 'enabled' : 'disabled'}</span></div>
<p>When <b>${describeTrigger(r.trigger)}</b> → ${r.actions.map(describeAction).join(', ')}${r.cooldownMs ? html` · cooldown ${formatMs(r.cooldownMs)}` : ''}</p>
<p class="small muted">Last run: ${timeAgo(r.lastRunAt, 'never')}${r.lastRunAt && !r.lastError ? ' — ok' : ''}</p>
${r.lastError ? html`<p class="alert alert-error" data-rule-error>${r.lastError}</p>` : ''}
${r.actions.some((a) => a.type === 'webhook') ? html`<details><summary class="small">Webhook secret</summary><code data-secret>${r.secret}</code></details>` : ''}
<div class="actions">
${postButton(viewer, `${base}/toggle`, r.enabled ? 'Disable' : 'Enable')}
${postButton(viewer, `${base}/test`, 'Test-fire')}
<a class="btn btn-small btn-ghost" href="${base}/edit">Edit</a>
${postButton(viewer, `${base}/delete`, 'Delete', 'btn btn-small btn-danger')}
</div></li>`;
}

export function rulesPage(viewer: Viewer, d: RulesPageData): Html {
  const byId = new Map(d.rules.map((r) => [r.id, r]));
  const ruleName = (id: string) => byId.get(id)?.name || id;
  return layout({
    title: `Rules · ${d.device.name}`,
    styles: ['rules.css'],
    viewer,
    nav: 'devices',
    body: html`<p class="crumbs"><a href="/devices/${d.device.id}">← ${d.device.name}</a></p>
<div class="page-head"><h1>Rules</h1></div>
${d.notice ? alert('success', d.notice) : ''}
${d.notifications.some((n) => !n.read) ? html`<section class="card notifications" data-notifications><h2>Notifications</h2><ul>
${d.notifications.filter((n) => !n.read).map((n) => html`<li>${timeAgo(n.time)} — ${n.text}</li>`)}</ul>
${postButton(viewer, `/devices/${d.device.id}/rules/notifications/read`, 'Mark all read')}</section>` : ''}
<section aria-label="Rules"><h2>This device's rules</h2>
${d.rules.length === 0 ? html`<p class="muted">No rules yet. Add one below: e.g. “temp &lt; 2” for 10m → email me and set heater=true.</p>` : html`<ul class="rules">${d.rules.map((r) => ruleRow(viewer, d.device.id, r))}</ul>`}
</section>
${ruleForm(viewer, d)}
<section aria-label="Alerts"><h2>Alerts</h2>
${d.alerts.length === 0 ? html`<p class="muted">No alerts.</p>` : html`<div class="table-wrap"><table class="table" data-alerts><thead><tr><th>Rule</th><th>State</th><th>Raised</th><th>Cleared</th><th>What</th><th></th></tr></thead><tbody>
${d.alerts.map((a) => html`<tr data-alert="${a.id}"><td>${ruleName(a.ruleId)}</td><td data-alert-state>${a.state}</td><td>${timeAgo(a.raisedAt)}</td><td>${timeAgo(a.clearedAt, '—')}</td><td><code>${JSON.stringify(a.detail)}</code></td>
<td>${a.state === 'active' ? postButton(viewer, `/devices/${d.device.id}/rules/alerts/${a.id}/acknowledge`, 'Acknowledge') : ''}</td></tr>`)}
</tbody></table></div>`}
</section>
<section aria-label="Delivery log"><h2>Delivery log</h2>
${d.deliveries.length === 0 ? html`<p class="muted">Nothing sent yet.</p>` : html`<div class="table-wrap"><table class="table" data-deliveries><thead><tr><th>When</th><th>Rule</th><th>Kind</th><th>To</th><th>Event</th><th>State</th><th>Attempts</th><th>Status</th><th>Error</th></tr></thead><tbody>
${d.deliveries.map((x) => html`<tr data-delivery="${x.id}"><td>${timeAgo(x.createdAt)}</td><td>${ruleName(x.ruleId)}</td><td>${x.kind}</td><td><code>${x.target}</code></td>
<td>${(x.payload as { event?: { event?: string } }).event?.event ?? ''}</td><td data-delivery-state>${x.state}</td><td>${x.attempts}</td><td data-delivery-status>${x.lastStatus ?? '—'}</td><td>${x.lastError ?? ''}</td></tr>`)}
</tbody></table></div>`}
</section>`,
  });
}
