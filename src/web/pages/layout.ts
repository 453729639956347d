import { assetUrl } from '../assets.js';
import { html, raw } from '../html.js';
import type { Html } from '../html.js';

export interface Viewer {
  name: string;
  email: string;
  csrf: string;
}

export interface PageOptions {
  title: string;
  viewer: Viewer | null;
  body: Html;
  /** Extra scripts from the assets folder (or vendor files), in order. */
  scripts?: string[];
  styles?: string[];
  /** Which nav entry is current. */
  nav?: 'devices' | 'dashboards' | 'docs' | 'login' | 'signup' | 'account';
}

const LOGO = raw(
  '<svg class="logo" viewBox="0 0 32 32" width="28" height="28" aria-hidden="true"><rect width="32" height="32" rx="8" fill="currentColor"/><circle cx="16" cy="19" r="3" fill="#fff"/><path d="M10.3 13.3a8 8 0 0 1 11.4 0M6.8 9.8a13 13 0 0 1 18.4 0" stroke="#fff" stroke-width="2.4" fill="none" stroke-linecap="round"/></svg>',
);

export function csrfField(viewer: { csrf: string }): Html {
  return html`<input type="hidden" name="_csrf" value="${viewer.csrf}">`;
}

export function layout(opts: PageOptions): Html {
  const { viewer, nav } = opts;
  const current = (name: PageOptions['nav']) => (nav === name ? raw(' aria-current="page"') : '');
  const links = viewer
    ? html`<a href="/devices"${current('devices')}>Devices</a><a href="/dashboards"${current('dashboards')}>Dashboards</a><a href="/docs"${current('docs')}>Docs</a><a href="/account"${current('account')}>Account</a>
        <form method="post" action="/logout" class="logout">${csrfField(viewer)}<button type="submit" class="link" title="${viewer.email}">Log out</button></form>`
    : html`<a href="/docs"${current('docs')}>Docs</a><a href="/login"${current('login')}>Log in</a><a class="btn btn-small" href="/signup">Sign up</a>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${opts.title} · IOTcommunicate</title>
<link rel="icon" href="${assetUrl('favicon.svg')}" type="image/svg+xml">
<link rel="manifest" href="/manifest.webmanifest">
<meta name="theme-color" content="#0f766e">
<link rel="apple-touch-icon" href="${assetUrl('icon-192.png')}">
${(opts.styles ?? []).map((s) => html`<link rel="stylesheet" href="${assetUrl(s)}">`)}
<link rel="stylesheet" href="${assetUrl('app.css')}">
<script src="${assetUrl('app.js')}" defer></script>
<script src="${assetUrl('pwa.js')}" defer></script>
${(opts.scripts ?? []).map((s) => html`<script src="${assetUrl(s)}" defer></script>`)}
</head>
<body>
<header class="topbar">
  <div class="wrap topbar-inner">
    <a class="brand" href="${viewer ? '/devices' : '/'}">${LOGO}<span>IOTcommunicate</span></a>
    <nav class="nav">${links}</nav>
  </div>
</header>
<main class="wrap" id="main">
${opts.body}
</main>
<footer class="wrap footer">IOTcommunicate · self-hosted · <a href="/docs">Documentation</a></footer>
</body>
</html>`;
}

/** A labelled input that shows its error and keeps what was typed (never for passwords). */
export function field(opts: {
  name: string;
  label: string;
  type?: string;
  value?: string;
  error?: string;
  autocomplete?: string;
  hint?: string;
  required?: boolean;
  autofocus?: boolean;
  maxlength?: number;
  placeholder?: string;
}): Html {
  const id = `f-${opts.name}`;
  const describedBy = [opts.error ? `${id}-error` : '', opts.hint ? `${id}-hint` : ''].filter(Boolean).join(' ');
  return html`<div class="field${opts.error ? ' has-error' : ''}">
  <label for="${id}">${opts.label}</label>
  <input id="${id}" name="${opts.name}" type="${opts.type ?? 'text'}" value="${opts.value ?? ''}"${opts.autocomplete ? html` autocomplete="${opts.autocomplete}"` : ''}${opts.required ? raw(' required') : ''}${opts.autofocus ? raw(' autofocus') : ''}${opts.maxlength ? html` maxlength="${opts.maxlength}"` : ''}${opts.placeholder ? html` placeholder="${opts.placeholder}"` : ''}${opts.error ? raw(' aria-invalid="true"') : ''}${describedBy ? html` aria-describedby="${describedBy}"` : ''}>
  ${opts.hint ? html`<p class="hint" id="${id}-hint">${opts.hint}</p>` : ''}
  ${opts.error ? html`<p class="error" id="${id}-error">${opts.error}</p>` : ''}
</div>`;
}

export function alert(kind: 'error' | 'info' | 'warn' | 'success', message: Html | string): Html {
  return html`<div class="alert alert-${kind}" role="${kind === 'error' ? 'alert' : 'status'}">${message}</div>`;
}

/** Relative time that the page script keeps fresh; an absolute UTC time without scripts. */
export function timeAgo(ms: number | null, never = 'never'): Html {
  if (ms === null) return html`<span class="muted">${never}</span>`;
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}" data-ago="${ms}" title="${iso}">${iso.replace('T', ' ').slice(0, 19)} UTC</time>`;
}

export function copyButton(targetId: string, label = 'Copy'): Html {
  return html`<button type="button" class="btn btn-small btn-ghost copy" data-copy="${targetId}">${label}</button>`;
}
