import type { TokenInfo } from '../../core/tokens.js';
import { html } from '../html.js';
import type { Html } from '../html.js';
import type { FormState } from './auth.js';
import { alert, copyButton, csrfField, field, layout, timeAgo } from './layout.js';
import type { Viewer } from './layout.js';

/** A password input: never pre-filled, its error shown under it. */
function passwordField(name: string, label: string, error: string | undefined, autocomplete: string, hint?: string): Html {
  const id = `f-${name}`;
  return html`<div class="field${error ? ' has-error' : ''}">
  <label for="${id}">${label}</label>
  <input id="${id}" name="${name}" type="password" autocomplete="${autocomplete}" required maxlength="1024"${error ? html` aria-invalid="true" aria-describedby="${id}-error"` : ''}>
  ${hint ? html`<p class="hint">${hint}</p>` : ''}
  ${error ? html`<p class="error" id="${id}-error">${error}</p>` : ''}
</div>`;
}

export interface AccountForms {
  name?: FormState;
  password?: FormState;
}

export function accountPage(viewer: Viewer, forms: AccountForms = {}, notice?: string): Html {
  const nameForm = forms.name ?? { values: { name: viewer.name }, errors: {} };
  const pw = forms.password ?? { values: {}, errors: {} };
  return layout({
    title: 'Account',
    viewer,
    nav: 'account',
    body: html`<div class="page-head"><h1>Account</h1><a class="btn btn-ghost" href="/tokens">API tokens</a></div>
${notice ? alert('success', notice) : ''}
<div class="columns">
<section class="card">
  <h2>Name</h2>
  <p class="muted small">Signed in as <b>${viewer.email}</b>.</p>
  ${nameForm.message ? alert('error', nameForm.message) : ''}
  <form method="post" action="/account/name" novalidate data-form="name">
    ${csrfField(viewer)}
    ${field({ name: 'name', label: 'Your name', value: nameForm.values.name, error: nameForm.errors.name, required: true, maxlength: 100, autocomplete: 'name' })}
    <button class="btn" type="submit">Save name</button>
  </form>
</section>
<section class="card">
  <h2>Password</h2>
  <p class="muted small">Changing it logs you out everywhere else.</p>
  ${pw.message ? alert('error', pw.message) : ''}
  <form method="post" action="/account/password" novalidate data-form="password">
    ${csrfField(viewer)}
    ${passwordField('current', 'Current password', pw.errors.current, 'current-password')}
    ${passwordField('password', 'New password', pw.errors.password, 'new-password', '8 characters or more.')}
    <button class="btn" type="submit">Change password</button>
  </form>
</section>
</div>
<section class="card settings">
  <h2>API tokens</h2>
  <p class="muted small">Personal tokens let your own scripts and apps use the HTTP API as you.</p>
  <p><a href="/tokens">Manage API tokens →</a></p>
  <div class="danger">
    <div><h3>Delete account</h3><p class="muted small">Deletes your account, every device in it and all their readings. This cannot be undone.</p></div>
    <a class="btn btn-danger" href="/account/delete">Delete account…</a>
  </div>
</section>`,
  });
}

export function deleteAccountPage(viewer: Viewer, deviceCount: number, form: FormState = { values: {}, errors: {} }): Html {
  return layout({
    title: 'Delete account',
    viewer,
    nav: 'account',
    body: html`<p class="crumbs"><a href="/account">← Account</a></p>
<section class="card narrow">
  <h1>Delete your account?</h1>
  <p>Your account <b>${viewer.email}</b>, ${deviceCount === 1 ? 'its device' : html`its <b>${String(deviceCount)}</b> devices`} and <b>all their readings</b> are deleted,
  your API tokens stop working, and anything connected with your devices' keys is disconnected. This cannot be undone.</p>
  ${form.message ? alert('error', form.message) : ''}
  <form method="post" action="/account/delete" novalidate>
    ${csrfField(viewer)}
    ${field({ name: 'confirm', label: 'Type DELETE to confirm', value: form.values.confirm, error: form.errors.confirm, required: true, autocomplete: 'off' })}
    ${passwordField('password', 'Your password', form.errors.password, 'current-password')}
    <p class="actions"><button class="btn btn-danger" type="submit">Delete my account</button>
    <a class="btn btn-ghost" href="/account">Cancel</a></p>
  </form>
</section>`,
  });
}

export interface NewToken {
  id: number;
  name: string;
  token: string;
}

export function tokensPage(viewer: Viewer, tokens: TokenInfo[], httpBase: string, opts: { form?: FormState; created?: NewToken; notice?: string } = {}): Html {
  const form = opts.form ?? { values: {}, errors: {} };
  const list = tokens.length
    ? html`<div class="table-wrap"><table class="table tokens" data-token-list>
<thead><tr><th>Name</th><th>Created</th><th>Last used</th><th><span class="sr-only">Revoke</span></th></tr></thead>
<tbody>${tokens.map(
        (t) => html`<tr data-token="${String(t.id)}"><td class="token-name">${t.name}</td><td>${timeAgo(t.createdAt)}</td><td data-last-used>${timeAgo(t.lastUsed, 'never')}</td>
<td><form method="post" action="/tokens/${String(t.id)}/revoke" class="inline-form" data-confirm="Revoke “${t.name}”? Scripts using it stop working at once.">${csrfField(viewer)}<button class="btn btn-small btn-danger" type="submit">Revoke</button></form></td></tr>`,
      )}</tbody></table></div>`
    : html`<p class="muted">No API tokens yet.</p>`;
  return layout({
    title: 'API tokens',
    viewer,
    nav: 'account',
    body: html`<p class="crumbs"><a href="/account">← Account</a></p>
<div class="page-head"><h1>API tokens</h1></div>
${opts.notice ? alert('success', opts.notice) : ''}
${opts.created
  ? html`<section class="card keybox token-once" data-new-token>
  <h2>“${opts.created.name}” is ready</h2>
  ${alert('warn', html`<b>The token is shown only now.</b> Copy it somewhere safe: only a fingerprint of it is stored.`)}
  <div class="codeline"><code id="new-token" data-testid="new-token">${opts.created.token}</code>${copyButton('new-token')}</div>
  <p class="hint">Send it in the <code>Authorization</code> header, e.g. <code>curl -H "Authorization: Bearer ${opts.created.token}" ${httpBase}/api/v1/devices</code> lists your devices. See <a href="/docs#api">the HTTP API</a>.</p>
</section>`
  : ''}
<div class="columns">
<section class="card">
  <h2>New token</h2>
  <p class="muted small">For your own scripts and apps: a token acts as you on the HTTP API, with all your devices.</p>
  ${form.message ? alert('error', form.message) : ''}
  <form method="post" action="/tokens" novalidate>
    ${csrfField(viewer)}
    ${field({ name: 'name', label: 'Name', value: form.values.name, error: form.errors.name, required: true, maxlength: 100, placeholder: 'backup script', autocomplete: 'off', hint: 'What uses it, so you know which one to revoke.' })}
    <button class="btn" type="submit">Create token</button>
  </form>
</section>
<section class="card">
  <h2>Your tokens</h2>
  ${list}
</section>
</div>`,
  });
}

export function accountDeletedPage(): Html {
  return layout({
    title: 'Account deleted',
    viewer: null,
    body: html`<section class="card narrow message">
  <h1>Your account was deleted</h1>
  <p>Your devices and their readings are gone, and your API tokens no longer work.</p>
  <p><a class="btn" href="/">Home</a></p>
</section>`,
  });
}
