import type { DeviceInfo } from '../../core/accounts.js';
import type { ServerAddress } from '../address.js';
import { escapeHtml, html, raw } from '../html.js';
import type { Html } from '../html.js';
import { examples, ID_PLACEHOLDER, KEY_MARK, KEY_PLACEHOLDER } from '../examples.js';
import type { MqttListener } from '../examples.js';
import { alert, copyButton, layout } from './layout.js';
import type { Viewer } from './layout.js';

/** Escapes the code, then turns each key mark into a slot the docs script fills from the URL fragment. */
function codeBlock(id: string, code: string, deviceId: string | null, label = ''): Html {
  const slot = `<span class="key-slot"${deviceId ? ` data-device="${escapeHtml(deviceId)}"` : ''}>${KEY_PLACEHOLDER}</span>`;
  const body = escapeHtml(code).split(KEY_MARK).join(slot);
  return html`<div class="code"><div class="code-bar"><span>${label}</span>${copyButton(id)}</div><pre><code id="${id}">${raw(body)}</code></pre></div>`;
}

function inlineCode(code: string, deviceId: string | null, id: string): Html {
  return codeBlock(id, code, deviceId, 'URL');
}

const PROTOCOL: [string, string, string][] = [
  ['put', '{"method":"put","status":{"sensor":"temp","value":21.5},"id":1}', '{"ok":true,"id":1,"time":1700000000000}'],
  ['put (batch)', '{"method":"put","status":[{"sensor":"temp","value":21.5},{"sensor":"hum","value":40}],"id":2}', '{"ok":true,"id":2,"count":2,"time":1700000000000}'],
  ['gets', '{"method":"gets","sensor":"temp","id":3}', '{"ok":true,"id":3,"sensor":"temp","value":21.5,"time":…,"write":"device"}'],
  ['history', '{"method":"history","sensor":"temp","limit":100,"id":4}', '{"ok":true,"id":4,"sensor":"temp","readings":[…oldest first]}'],
  ['sensors', '{"method":"sensors","id":5}', '{"ok":true,"id":5,"sensors":[…latest of each]}'],
  ['ping', '{"method":"ping","id":6}', '{"ok":true,"id":6,"time":…}'],
  ['call (app)', '{"method":"call","device_method":"reboot","params":{"delay":5},"timeout":5000,"id":7}', '{"ok":true,"id":7,"call":"c_…","result":…} or E_TIMEOUT / E_OFFLINE / E_DEVICE'],
  ['reply (device)', '{"method":"reply","call":"c_…","result":{"rebooting":true}}', 'the device received {"sensor":"reboot","value":{"delay":5},"call":"c_…",…}'],
];

export function docsPage(viewer: Viewer | null, addr: ServerAddress, devices: DeviceInfo[], selected: DeviceInfo | null, hostOverride?: string, mqtt?: MqttListener): Html {
  const id = selected?.id ?? ID_PLACEHOLDER;
  const list = examples({ addr, id, mqtt });
  const deviceId = selected?.id ?? null;
  const url = `${addr.wsBase}/ws?device=${id}&key=${KEY_MARK}`;

  const picker = viewer
    ? devices.length
      ? html`<form class="inline-form picker" method="get" action="/docs">
  <label for="doc-device">Examples for</label>
  <select id="doc-device" name="device" data-autosubmit>${devices.map((d) => html`<option value="${d.id}"${d.id === selected?.id ? raw(' selected') : ''}>${d.name}</option>`)}</select>
  ${hostOverride ? html`<input type="hidden" name="host" value="${hostOverride}">` : ''}
  <noscript><button class="btn btn-small" type="submit">Show</button></noscript>
</form>`
      : html`<p class="muted">The examples below use placeholders. <a href="/devices/new">Create a device</a> to get them filled in with your own id and key.</p>`
    : html`<p class="muted"><a href="/signup">Sign up</a> or <a href="/login">log in</a> to get these examples filled in with your own device id and key.</p>`;

  const hostHint = addr.loopback
    ? alert(
        'info',
        html`You opened this page as <code>${addr.host}</code>, which only this computer can reach.
        ${addr.lanHosts.length
          ? html`The Arduino sketch uses this computer's network address, <code>${addr.lanHosts[0]}</code>; the other examples keep <code>${addr.host}</code> (they run here).
            To have them all use a network address: ${addr.lanHosts.map((h, i) => html`${i ? ', ' : ''}<a href="/docs?${new URLSearchParams({ ...(deviceId ? { device: deviceId } : {}), host: h })}">${h}</a>`)}.`
          : html`No network address was found: put this computer's network address in its place for a board.`}`,
      )
    : '';
  const mqttHint =
    mqtt?.port == null
      ? alert('warn', html`<b>MQTT:</b> this hub has no MQTT TCP listener — ${mqtt?.off ?? 'it is off'}.${mqtt?.taken ? ` Anything answering on port ${mqtt.taken} here is another broker, not this hub.` : ''} MQTT over WebSocket works at <code data-mqtt-ws>${addr.wsBase}/mqtt</code>.`)
      : html`<p class="muted small" data-mqtt-port="${String(mqtt.port)}">MQTT: port <b>${String(mqtt.port)}</b> on this hub (and over WebSocket at <code>${addr.wsBase}/mqtt</code>).</p>`;

  return layout({
    title: 'Documentation',
    viewer,
    nav: 'docs',
    scripts: ['docs.js'],
    body: html`<div class="docs" id="docs" data-device="${deviceId ?? ''}">
<aside class="toc card">
  <p class="toc-title">On this page</p>
  <ol>
    <li><a href="#start">Getting started</a></li>
    <li><a href="#examples">Examples</a></li>
    <li><a href="#protocol">The protocol</a></li>
    <li><a href="#limits">Errors and limits</a></li>
    <li data-openapi-toc hidden><a href="#api">HTTP API reference</a></li>
  </ol>
</aside>
<article class="docs-body">
<h1>Documentation</h1>
${picker}
<p class="key-status" data-key-status>${selected ? html`The examples carry <b>${selected.name}</b>'s id. Its key is shown only when you create the device or rotate its key; open this page from there to have it filled in, or replace <code>${KEY_PLACEHOLDER}</code> yourself.` : ''}</p>
${hostHint}
${mqttHint}

<section id="start">
<h2>Getting started</h2>
<ol class="howto">
  <li><b>Create a device</b> on <a href="/devices/new">New device</a>. You get its <b>id</b>, its <b>key</b> (shown once) and its connection URL.</li>
  <li><b>Connect</b> your board or script to the URL, below as it is for ${selected ? html`<b>${selected.name}</b>` : 'your device'}:
    ${inlineCode(url, deviceId, 'ex-url')}
    A program acting as the device uses <code>side=device</code> (the default); an app that reads and controls it — a phone, a dashboard, the device page — uses <code>side=client</code>.</li>
  <li><b>Send readings</b> as JSON text messages: <code>{"method":"put","status":{"sensor":"temp","value":21.5}}</code>. Any name and any JSON value: numbers get a chart on the device page.</li>
  <li><b>Receive</b> what the other side writes, e.g. the lamp switch from the device page: <code>{"sensor":"led","value":true,"time":1700000000000,"write":"client"}</code>. A device that was offline gets what it missed as soon as it reconnects.</li>
</ol>
</section>

<section id="examples">
<h2>Examples</h2>
<p>Each one is complete: copy it, fill in your Wi-Fi where asked, run it, and watch the device page.</p>
<div class="tabs" role="tablist" data-tabs>${list.map((e, i) => html`<button type="button" role="tab" class="tab" id="tab-${e.id}" aria-controls="panel-${e.id}" aria-selected="${i === 0 ? 'true' : 'false'}" data-tab="${e.id}">${e.tab}</button>`)}</div>
${list.map(
  (e) => html`<section class="tab-panel" id="panel-${e.id}" role="tabpanel" aria-labelledby="tab-${e.id}" data-panel="${e.id}">
  <h3>${e.title}</h3>
  <p>${e.intro}</p>
  ${codeBlock(`ex-${e.id}`, e.code, deviceId, e.file)}
</section>`,
)}
</section>

<section id="protocol">
<h2>The protocol</h2>
<p>One WebSocket per device and side, one JSON object per text message. Every request may carry an <code>id</code>, echoed in its reply.
What one side <code>put</code>s is stored with the server's time and delivered at once to the other side.</p>
<div class="table-wrap"><table class="table">
<thead><tr><th>Method</th><th>Request</th><th>Reply</th></tr></thead>
<tbody>${PROTOCOL.map(([m, req, rep]) => html`<tr><td><b>${m}</b></td><td><code>${req}</code></td><td><code>${rep}</code></td></tr>`)}</tbody>
</table></div>
<p><code>gets</code>, <code>history</code> and <code>sensors</code> take an optional <code>"write":"device"</code> or <code>"client"</code> to read only what one side wrote;
<code>history</code> also takes <code>from</code> and <code>to</code> (ms since 1970, or an ISO date). Times are milliseconds since 1970 (UTC).</p>
</section>

<section id="limits">
<h2>Errors and limits</h2>
<p>A bad request gets <code>{"ok":false,"error":"what is wrong","code":"E_…"}</code> and the connection stays open. The server closes a connection with a code that says why:</p>
<div class="table-wrap"><table class="table">
<thead><tr><th>Close code</th><th>Meaning</th><th>What to do</th></tr></thead>
<tbody>
<tr><td>4401</td><td>Wrong device id or key, or the key was rotated</td><td>Use the current URL</td></tr>
<tr><td>4404</td><td>The device was deleted</td><td>Create a new device</td></tr>
<tr><td>4429</td><td>Too many messages, or too many connections for the device</td><td>Send less often; reconnect later</td></tr>
<tr><td>4008</td><td>The connection did not read its messages fast enough</td><td>Reconnect</td></tr>
<tr><td>1009</td><td>A message was too large</td><td>Send smaller messages</td></tr>
<tr><td>1001</td><td>The server is restarting</td><td>Reconnect after a few seconds</td></tr>
</tbody></table></div>
</section>

<section id="api" data-openapi hidden>
<h2>HTTP API reference</h2>
<p>Every route this server offers, from its <a href="/api/openapi.json">OpenAPI description</a>:</p>
<div class="table-wrap"><table class="table"><thead><tr><th>Method</th><th>Path</th><th>What it does</th></tr></thead><tbody data-openapi-rows></tbody></table></div>
</section>
</article>
</div>`,
  });
}
