import type { PendingInvitation, PublicLinkInfo } from '../../core/sharing.js';
import type { Share } from '../../store/types.js';
import { html } from '../html.js';
import type { Html } from '../html.js';
import { csrfField, timeAgo } from './layout.js';
import type { Viewer } from './layout.js';

export interface SharingState {
  shares: Share[];
  invitations: PendingInvitation[];
  links: PublicLinkInfo[];
}

/** The owner's Sharing section of the device page: who has it, with which role; invitations; public links. */
export function sharingSection(viewer: Viewer, deviceId: string, state: SharingState): Html {
  const row = (email: string, role: string, pending: boolean, expired = false) => html`<li data-share="${email}">
  <span>${email}</span> <span class="pill">${pending ? `${expired ? 'invitation expired' : 'invited'} · ${role}` : role}</span>
  ${pending ? '' : html`<form class="inline-form" method="post" action="/devices/${deviceId}/shares">${csrfField(viewer)}<input type="hidden" name="email" value="${email}"><input type="hidden" name="role" value="${role === 'viewer' ? 'operator' : 'viewer'}"><button class="btn btn-ghost" type="submit">Make ${role === 'viewer' ? 'operator' : 'viewer'}</button></form>`}
  <form class="inline-form" method="post" action="/devices/${deviceId}/shares/remove">${csrfField(viewer)}<input type="hidden" name="email" value="${email}"><button class="btn btn-ghost" type="submit">${pending ? 'Withdraw' : 'Revoke'}</button></form>
</li>`;
  return html`<section class="card" data-sharing>
  <h2>Sharing</h2>
  <p class="muted small">A viewer sees values, history and charts; an operator may also send values and call methods. Revoking closes their open connections at once.</p>
  <ul class="plain-list">${state.shares.map((s) => row(s.email, s.role, false))}${state.invitations.map((i) => row(i.email, i.role, true, i.expired))}</ul>
  <form class="inline-form" method="post" action="/devices/${deviceId}/shares">
    ${csrfField(viewer)}
    <label for="share-email" class="sr-only">Email</label><input id="share-email" name="email" type="email" required maxlength="254" placeholder="partner@example.com">
    <label for="share-role" class="sr-only">Role</label><select id="share-role" name="role"><option value="viewer">viewer</option><option value="operator">operator</option></select>
    <button class="btn" type="submit">Share</button>
  </form>
  <h3>Public links</h3>
  <p class="muted small">Anyone with a link sees the device's latest values, read-only.</p>
  <ul class="plain-list">${state.links.map((l) => html`<li data-link="${String(l.id)}">Link ${String(l.id)}, made ${timeAgo(l.createdAt)}
    <form class="inline-form" method="post" action="/devices/${deviceId}/links/${String(l.id)}/revoke">${csrfField(viewer)}<button class="btn btn-ghost" type="submit">Revoke</button></form></li>`)}</ul>
  <form method="post" action="/devices/${deviceId}/links">${csrfField(viewer)}<button class="btn btn-ghost" type="submit">Create a public link</button></form>
</section>`;
}
