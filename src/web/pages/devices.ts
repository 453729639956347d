import type { DeviceInfo } from '../../core/accounts.js';
import type { StoredReading } from '../../store/types.js';
import { deviceUrl } from '../address.js';
import type { ServerAddress } from '../address.js';
import { html, jsonAttr, raw } from '../html.js';
import type { Html } from '../html.js';
import type { FormState } from './auth.js';
import { alert, copyButton, csrfField, field, layout, timeAgo } from './layout.js';
import type { Viewer } from './layout.js';

export interface DeviceWithLatest extends DeviceInfo {
  latest: StoredReading[];
}

/** A value as people read it: text as is, everything else as compact JSON, long ones cut. */
export function formatValue(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > 80 ? text.slice(0, 77) + '…' : text;
}

export function statusPill(d: { online: boolean; lastSeen: number | null }): Html {
  return html`<span class="pill ${d.online ? 'pill-on' : 'pill-off'}" data-status><span class="dot"></span><span data-status-text>${d.online ? 'Online' : 'Offline'}</span></span>`;
}

const MAX_CHIPS = 4;

function chips(latest: StoredReading[]): Html {
  if (latest.length === 0) return html`<p class="muted small">No readings yet</p>`;
  const shown = latest.slice(0, MAX_CHIPS);
  return html`<ul class="chips">${shown.map((r) => html`<li><span class="chip-name">${r.sensor}</span><span class="chip-value">${formatValue(r.value)}</span></li>`)}${latest.length > MAX_CHIPS ? html`<li class="muted">+${latest.length - MAX_CHIPS} more</li>` : ''}</ul>`;
}

/** Apps (the client side, this site's pages included) are counted apart from the device: they never make it online. */
function appsText(clients: number): string {
  return `${clients} app${clients === 1 ? '' : 's'} connected`;
}

export function deviceListJson(devices: DeviceWithLatest[]) {
  return devices.map((d) => ({
    id: d.id,
    name: d.name,
    online: d.online,
    lastSeen: d.lastSeen,
    clients: d.clients,
    ...(d.shared ? { shared: d.shared } : {}),
    latest: d.latest.map((r) => ({ sensor: r.sensor, value: r.value, time: r.time, write: r.side })),
  }));
}

export function devicesPage(viewer: Viewer, devices: DeviceWithLatest[], notice?: string): Html {
  const list =
    devices.length === 0
      ? html`<section class="card empty">
  <h2>No devices yet</h2>
  <p>Create a device to get the URL your ESP32, Arduino or script connects with.</p>
  <p><a class="btn" href="/devices/new">Create your first device</a></p>
</section>`
      : html`<ul class="device-grid" data-device-list>${devices.map(
          (d) => html`<li class="card device-card" data-device="${d.id}">
  <a class="device-link" href="/devices/${d.id}">
    <div class="device-card-head"><h2>${d.name}</h2>${statusPill(d)}</div>
    ${d.shared ? html`<p class="muted small" data-shared="${d.shared.role}">Shared with you by ${d.shared.owner} · ${d.shared.role}</p>` : ''}
    <p class="muted small" data-seen-line>${d.lastSeen === null ? 'Never connected' : html`Last seen <span data-last-seen>${timeAgo(d.lastSeen)}</span>`}</p>
    <p class="muted small" data-apps${d.clients ? '' : raw(' hidden')}>${appsText(d.clients)}</p>
    <div data-chips>${chips(d.latest)}</div>
  </a>
</li>`,
        )}</ul>`;
  return layout({
    title: 'My devices',
    viewer,
    nav: 'devices',
    scripts: ['devices.js'],
    body: html`<div class="page-head"><h1>My devices</h1><a class="btn" href="/devices/new">New device</a></div>
${notice ? alert('success', notice) : ''}
${list}`,
  });
}

export function newDevicePage(viewer: Viewer, form: FormState): Html {
  return layout({
    title: 'New device',
    viewer,
    nav: 'devices',
    body: html`<p class="crumbs"><a href="/devices">← My devices</a></p>
<section class="card narrow">
  <h1>New device</h1>
  <p class="muted">A device is one thing that connects: an ESP32, an Arduino, a script. You get its id, its key and its connection URL next.</p>
  ${form.message ? alert('error', form.message) : ''}
  <form method="post" action="/devices/new" novalidate>
    ${csrfField(viewer)}
    ${field({ name: 'name', label: 'Name', value: form.values.name, error: form.errors.name, required: true, autofocus: true, maxlength: 100, placeholder: 'Greenhouse sensor', hint: 'For you only: "Desk lamp", "Greenhouse", "Garage door".' })}
    <button class="btn" type="submit">Create device</button>
  </form>
</section>`,
  });
}

function loopbackHint(addr: ServerAddress): Html {
  if (!addr.loopback) return html``;
  return alert(
    'info',
    html`You opened this page as <b>${addr.hostname}</b>: a device on your network cannot reach that name.
    ${addr.lanHosts.length ? html`Use this computer's network address instead, e.g. <code>${addr.lanHosts[0]}</code> in place of <code>${addr.host}</code>.` : html`Use this computer's network address in its place.`}`,
  );
}

/**
 * Shown once, right after creation or rotation: only the key's hash is kept. Reloaded (key null), the page fills the
 * key in from this browser tab's memory, or says it is gone; it never makes a new one.
 */
export function keyPage(viewer: Viewer, device: DeviceInfo, key: string | null, addr: ServerAddress, mode: 'created' | 'rotated'): Html {
  const slot = html`<span class="key-slot" data-device="${device.id}">KEY</span>`;
  const keyHtml = key ?? slot;
  const urlHtml = key ? html`${deviceUrl(addr, device.id, key)}` : html`${addr.wsBase}/ws?device=${device.id}&amp;key=${slot}`;
  return layout({
    title: mode === 'created' ? 'Device created' : 'New key',
    viewer,
    nav: 'devices',
    body: html`<p class="crumbs"><a href="/devices">← My devices</a></p>
<section class="card narrow keybox" data-new-key data-device-id="${device.id}" data-key="${key ?? ''}">
  <h1>${mode === 'created' ? html`“${device.name}” is ready` : html`New key for “${device.name}”`}</h1>
  ${key
    ? alert('warn', html`<b>The key is shown only now.</b> Copy it, or the whole URL, somewhere safe: only a fingerprint of it is stored, so it cannot be shown again. Lost it? Rotate the key to get a new one.${mode === 'rotated' ? ' The old key has stopped working.' : ''}`)
    : html`<div data-key-kept hidden>${alert('warn', html`<b>Shown again from this browser tab's memory</b>: the server does not keep the key. Copy it somewhere safe before you close the tab.`)}</div>
  <div data-key-gone>${alert('info', html`<b>The key was shown once</b> and is not kept on the server, so it cannot be shown again here. Lost it? <a href="/devices/${device.id}/rotate">Rotate the key</a> to get a new one.`)}</div>`}
  <dl class="secrets">
    <dt>Device ID</dt><dd><code id="device-id" data-testid="device-id">${device.id}</code>${copyButton('device-id')}</dd>
    <dt>Device key</dt><dd><code id="device-key" data-testid="device-key">${keyHtml}</code>${copyButton('device-key')}</dd>
    <dt>Connection URL</dt><dd class="url"><code id="device-url" data-testid="device-url">${urlHtml}</code>${copyButton('device-url', 'Copy URL')}</dd>
  </dl>
  <p class="hint">Add <code>&amp;side=client</code> to the URL for an app (phone, dashboard, script) that talks to the device rather than being it.</p>
  ${loopbackHint(addr)}
  <p class="actions"><a class="btn" href="/docs?device=${device.id}" data-docs-link>Examples with your key</a>
  <a class="btn btn-ghost" href="/devices/${device.id}">Open the device page</a></p>
</section>`,
  });
}

/** What the user typed into the rename form, and what is wrong with it. */
export interface RenameState {
  value: string;
  error: string;
}

export function devicePage(viewer: Viewer, device: DeviceInfo, latest: StoredReading[], addr: ServerAddress, notice?: string, rename?: RenameState, sharing?: Html): Html {
  const initial = latest.map((r) => ({ sensor: r.sensor, value: r.value, time: r.time, write: r.side }));
  const sensorNames = latest.map((r) => r.sensor);
  return layout({
    title: device.name,
    viewer,
    nav: 'devices',
    styles: ['uPlot.min.css'],
    scripts: ['uPlot.iife.min.js', 'chart-range.js', 'live.js', 'device-charts.js', 'device-cards.js', 'device-call.js', 'device.js'],
    body: html`<p class="crumbs"><a href="/devices">← My devices</a></p>
<div id="device-page" data-device="${device.id}" data-csrf="${viewer.csrf}" data-sensors="${jsonAttr(initial)}" data-role="${device.shared?.role ?? 'owner'}">
<div class="page-head device-head">
  <div>
    <h1 data-device-name>${device.name}</h1>
    <p class="muted small">ID <code id="the-id">${device.id}</code> ${copyButton('the-id')} · last seen <span data-last-seen>${timeAgo(device.lastSeen)}</span></p>
    <p class="small"><a href="/devices/${device.id}/rules" data-rules-link>Rules, alerts and schedules →</a></p>
  </div>
  <div class="head-status">${statusPill(device)}<span class="pill pill-live" data-live title="The page's own live connection">Connecting…</span></div>
</div>
${notice ? alert('success', notice) : ''}
${device.shared ? html`<p class="alert" data-shared="${device.shared.role}">Shared with you by ${device.shared.owner} as ${device.shared.role}: ${device.shared.role === 'viewer' ? 'you can see its values and history, not send or call.' : 'you can see, send values and call its methods.'}</p>` : ''}
<p class="alert alert-error" data-live-error hidden></p>

<section class="sensors" aria-label="Sensors">
  <div class="sensor-grid" data-sensor-grid></div>
  <p class="range-picker"><label for="chart-range">Charts show</label>
    <select id="chart-range" data-range><option value="">the latest readings</option><option value="3600000">the last hour</option><option value="86400000">the last day</option><option value="604800000">the last week</option><option value="2592000000">the last month</option><option value="custom">a range of dates…</option></select>
    <span class="custom-range" data-custom-range hidden><label>from <input type="datetime-local" data-range-from></label>
      <label>to <input type="datetime-local" data-range-to></label>
      <button type="button" class="btn btn-small" data-range-apply>Show</button> <span class="error" role="status" data-range-error></span></span></p>
  <div class="chart-grid" data-chart-grid></div>
  <div class="card empty" data-empty ${initial.length ? raw('hidden') : ''}>
    <h2>Waiting for the first reading</h2>
    <p>Connect your device with its URL (below) and its readings appear here the moment they arrive.</p>
  </div>
  <noscript>
    <table class="table"><thead><tr><th>Sensor</th><th>Value</th><th>When</th><th>Written by</th></tr></thead>
    <tbody>${latest.map((r) => html`<tr><td>${r.sensor}</td><td>${formatValue(r.value)}</td><td>${timeAgo(r.time)}</td><td>${r.side}</td></tr>`)}</tbody></table>
  </noscript>
</section>

<div class="columns">
<section class="card">
  <h2>Send a value</h2>
  <p class="muted small">Goes to the device at once if it is online, or when it next connects.</p>
  <form class="send-form" data-send-form novalidate>
    <div class="field"><label for="send-sensor">Sensor</label><input id="send-sensor" name="sensor" list="sensor-names" required maxlength="64" placeholder="led" autocomplete="off" data-needs-live disabled></div>
    <div class="field"><label for="send-value">Value</label><input id="send-value" name="value" required placeholder="true, 42, on, {&quot;r&quot;:255}" autocomplete="off" data-needs-live disabled></div>
    <button class="btn" type="submit" data-needs-live disabled>Send</button>
    <p class="conn-state small" data-send-conn role="status">Not connected yet: connecting…</p>
    <p class="hint">Numbers, true/false, null and JSON are sent as such; anything else as text.</p>
    <p class="form-status" data-send-status role="status"></p>
  </form>
  <datalist id="sensor-names">${sensorNames.map((s) => html`<option value="${s}">`)}</datalist>
</section>

${device.shared?.role === 'viewer' ? '' : html`<section class="card">
  <h2>Call a method</h2>
  <p class="muted small">Asks the device to do something and shows its answer. The device receives the method as a sensor, with the params as its value, and answers with a reply (see the protocol docs).</p>
  <form class="call-form" data-call-form novalidate>
    <div class="field"><label for="call-method">Method</label><input id="call-method" name="method" required maxlength="64" placeholder="reboot" autocomplete="off"></div>
    <div class="field"><label for="call-timeout">Timeout (seconds)</label><input id="call-timeout" name="timeout" type="number" min="0.1" step="any" value="10"></div>
    <div class="field wide"><label for="call-params">Params (JSON)</label><input id="call-params" name="params" placeholder="{&quot;delay&quot;:5}" autocomplete="off"></div>
    <label class="check-row"><input type="checkbox" name="persistent"> If the device is offline, wait for it (up to the timeout, at most 7 days)</label>
    <button class="btn" type="submit">Call</button>
    <p class="form-status" data-call-status role="status"></p>
    <pre class="call-result" data-call-result hidden></pre>
  </form>
</section>`}

<section class="card">
  <h2>Connect</h2>
  <p class="muted small">Your device connects with this URL; put in its key (shown when the device was created or its key rotated).</p>
  <div class="codeline"><code id="conn-url">${addr.wsBase}/ws?device=${device.id}&amp;key=<span class="key-slot" data-device="${device.id}">KEY</span></code>${copyButton('conn-url')}</div>
  <p><a href="/docs?device=${device.id}">Arduino, Python and JavaScript examples for this device →</a></p>
  <h2>History</h2>
  <form class="inline-form" method="get" action="/devices/${device.id}/history.csv">
    <label for="csv-sensor" class="sr-only">Sensor</label>
    <select id="csv-sensor" name="sensor"><option value="">All sensors</option>${sensorNames.map((s) => html`<option value="${s}">${s}</option>`)}</select>
    <button class="btn btn-ghost" type="submit" data-csv>Download CSV</button>
  </form>
</section>
</div>

${sharing ?? ''}
${device.shared ? '' : html`<section class="card settings">
  <h2>Settings</h2>
  <form class="rename-form${rename ? ' has-error' : ''}" method="post" action="/devices/${device.id}/rename" novalidate>
    ${csrfField(viewer)}
    <label for="rename">Name</label>
    <div class="inline-form">
      <input id="rename" name="name" value="${rename ? rename.value : device.name}" maxlength="100" required${rename ? raw(' aria-invalid="true" aria-describedby="rename-error" autofocus') : ''}>
      <button class="btn btn-ghost" type="submit">Rename</button>
    </div>
    ${rename ? html`<p class="error" id="rename-error">${rename.error}</p>` : ''}
  </form>
  <div class="danger">
    <div><h3>Rotate key</h3><p class="muted small">Get a new key; the old one stops at once and connected devices are disconnected.</p></div>
    <a class="btn btn-ghost" href="/devices/${device.id}/rotate">Rotate key…</a>
  </div>
  <div class="danger">
    <div><h3>Delete device</h3><p class="muted small">Removes the device and all its readings. This cannot be undone.</p></div>
    <a class="btn btn-danger" href="/devices/${device.id}/delete">Delete…</a>
  </div>
</section>`}
</div>`,
  });
}

export function confirmPage(viewer: Viewer, device: DeviceInfo, action: 'rotate' | 'delete', error?: string, typed = ''): Html {
  const rotate = action === 'rotate';
  return layout({
    title: rotate ? 'Rotate key' : 'Delete device',
    viewer,
    nav: 'devices',
    body: html`<p class="crumbs"><a href="/devices/${device.id}">← ${device.name}</a></p>
<section class="card narrow">
  <h1>${rotate ? html`Rotate the key of “${device.name}”?` : html`Delete “${device.name}”?`}</h1>
  ${rotate
    ? html`<p>A new key is made and shown once. The current key stops working at once: every device and app using it is disconnected until you give it the new URL.</p>`
    : html`<p>The device <code>${device.id}</code> and <b>all its readings</b> are deleted, and anything connected with its key is disconnected. This cannot be undone.</p>
  <p>Type the device's name to confirm.</p>`}
  <form method="post" action="/devices/${device.id}/${action}">
    ${csrfField(viewer)}
    ${rotate ? '' : field({ name: 'confirm', label: 'Device name', value: typed, required: true, autocomplete: 'off', error })}
    <p class="actions"><button class="btn ${rotate ? '' : 'btn-danger'}" type="submit">${rotate ? 'Rotate key' : 'Delete device'}</button>
    <a class="btn btn-ghost" href="/devices/${device.id}">Cancel</a></p>
  </form>
</section>`,
  });
}

export function messagePage(viewer: Viewer | null, title: string, message: string, link: { href: string; label: string } = { href: viewer ? '/devices' : '/', label: viewer ? 'Back to my devices' : 'Home' }): Html {
  return layout({
    title,
    viewer,
    body: html`<section class="card narrow message">
  <h1>${title}</h1>
  <p>${message}</p>
  <p><a class="btn" href="${link.href}">${link.label}</a></p>
</section>`,
  });
}
