import { WIDGET_TYPES } from '../../core/dashboards.js';
import type { dashboardView } from '../../core/dashboards.js';
import { html, jsonAttr } from '../html.js';
import type { Html } from '../html.js';
import type { Dashboard } from '../../store/types.js';
import { alert, csrfField, layout, timeAgo } from './layout.js';
import type { Viewer } from './layout.js';

export interface DashboardDevice {
  id: string;
  name: string;
  online: boolean;
  lastSeen: number | null;
  sensors: string[];
  /** Whether this user may write to it (controls are disabled otherwise). */
  writable?: boolean;
}

const TYPE_LABELS: Record<(typeof WIDGET_TYPES)[number], string> = {
  value: 'Value', gauge: 'Gauge', chart: 'Line chart', switch: 'Switch', slider: 'Slider', button: 'Button', text: 'Text field', status: 'Status / last seen', image: 'Image',
};

export function dashboardListPage(viewer: Viewer, list: Dashboard[], notice?: string, error?: string): Html {
  return layout({
    title: 'Dashboards',
    viewer,
    nav: 'dashboards',
    styles: ['dashboard.css'],
    body: html`<div class="page-head"><h1>Dashboards</h1></div>
${notice ? alert(list.length || !notice.startsWith('There is no') ? 'success' : 'warn', notice) : ''}
${error ? alert('error', error) : ''}
${list.length
  ? html`<ul class="dash-list">${list.map(
      (d) => html`<li class="card"><a href="/dashboards/${d.id}"><h2>${d.name}</h2></a><p class="muted small">${d.widgets.length} widget${d.widgets.length === 1 ? '' : 's'} · changed ${timeAgo(d.updatedAt)}</p></li>`,
    )}</ul>`
  : html`<section class="card empty"><h2>No dashboards yet</h2><p>A dashboard puts the gauges, charts and switches you care about, from any of your devices, on one screen.</p></section>`}
<form method="post" action="/dashboards" class="card dash-new">
  ${csrfField(viewer)}
  <div class="field"><label for="dash-name">New dashboard</label><input id="dash-name" name="name" maxlength="60" placeholder="Greenhouse" required></div>
  <button class="btn" type="submit">Create dashboard</button>
</form>`,
  });
}

export function dashboardPage(viewer: Viewer, d: ReturnType<typeof dashboardView>, devices: DashboardDevice[]): Html {
  const noDevices = devices.length === 0;
  return layout({
    title: d.name,
    viewer,
    nav: 'dashboards',
    styles: ['uPlot.min.css', 'dashboard.css'],
    scripts: ['uPlot.iife.min.js', 'chart-range.js', 'live.js', 'dashboard-widgets.js', 'dashboard-arrange.js', 'dashboard-form.js', 'dashboard.js'],
    body: html`<div id="dashboard" data-dashboard="${jsonAttr(d)}" data-devices="${jsonAttr(devices)}" data-csrf="${viewer.csrf}">
<div class="page-head">
  <h1 data-name>${d.name}</h1>
  <div class="head-status"><span class="form-status" data-save-status role="status"></span><button type="button" class="btn btn-ghost" data-edit aria-pressed="false">Edit</button></div>
</div>
<p class="alert alert-error" data-save-error hidden></p>
<section class="card dash-editor" data-editor hidden>
  <h2 data-form-heading>Add a widget</h2>
  ${noDevices ? alert('info', html`You have no devices yet. <a href="/devices/new">Create one</a> first.`) : ''}
  <form class="dash-add" data-add-form>
    <div class="field"><label for="w-type">Widget</label><select id="w-type" name="type">${WIDGET_TYPES.map((t) => html`<option value="${t}">${TYPE_LABELS[t]}</option>`)}</select></div>
    <div class="field"><label for="w-device">Device</label><select id="w-device" name="device" required>${devices.map((dev) => html`<option value="${dev.id}">${dev.name}</option>`)}</select></div>
    <div class="field" data-for="value gauge switch slider button text image chart"><label for="w-sensor">Sensor</label><input id="w-sensor" name="sensor" maxlength="64" list="w-sensors" placeholder="temp" autocomplete="off"><datalist id="w-sensors"></datalist></div>
    <div class="field" data-for="chart"><label for="w-more">More sensors</label><input id="w-more" name="more" placeholder="humidity, pressure" autocomplete="off"></div>
    <div class="field" data-for="chart"><label for="w-range">Shows</label><select id="w-range" name="range"><option value="">the latest readings</option><option value="hour">the last hour</option><option value="day">the last day</option><option value="week">the last week</option><option value="month">the last month</option><option value="year">the last year</option><option value="custom">a range of dates…</option></select></div>
    <div class="field" data-for="chart" data-custom-range><label for="w-from">From</label><input id="w-from" name="from" type="datetime-local"></div>
    <div class="field" data-for="chart" data-custom-range><label for="w-to">To</label><input id="w-to" name="to" type="datetime-local"></div>
    <div class="field"><label for="w-title">Title</label><input id="w-title" name="title" maxlength="60" placeholder="(the sensor's name)"></div>
    <div class="field" data-for="gauge slider"><label for="w-min">Min</label><input id="w-min" name="min" type="number" step="any" value="0"></div>
    <div class="field" data-for="gauge slider"><label for="w-max">Max</label><input id="w-max" name="max" type="number" step="any" value="100"></div>
    <div class="field" data-for="slider"><label for="w-step">Step</label><input id="w-step" name="step" type="number" step="any" min="0" value="1"></div>
    <div class="field" data-for="value gauge slider"><label for="w-units">Units</label><input id="w-units" name="units" maxlength="16" placeholder="°C"></div>
    <div class="field" data-for="button"><label for="w-payload">Sends</label><input id="w-payload" name="payload" placeholder="true, 42, &quot;open&quot;, {&quot;r&quot;:255}"></div>
    <div class="field" data-for="image"><label for="w-url">Or image path on this hub</label><input id="w-url" name="url" maxlength="512" placeholder="/api/v1/devices/ID/blobs/camera"></div>
    <div class="dash-form-buttons"><button class="btn" type="submit"${noDevices ? html` disabled` : ''}>Add widget</button><button class="btn btn-ghost" type="button" data-edit-cancel hidden>Cancel</button></div>
  </form>
  <p class="form-status" data-add-status role="status"></p>
  <p class="hint">Drag a widget by its title bar to move it; drag its corner to resize it; press its ✎ to change its settings. Changes are saved at once.</p>
  <div class="dash-editor-foot">
    <form class="dash-rename" data-rename-form><div class="field"><label for="dash-rename">Name</label><input id="dash-rename" name="name" maxlength="60" value="${d.name}" required></div><button class="btn btn-ghost" type="submit">Rename</button></form>
    <form method="post" action="/dashboards/${d.id}/delete" data-confirm="Delete this dashboard? Its devices and their data stay.">${csrfField(viewer)}<button class="btn btn-danger" type="submit">Delete dashboard</button></form>
  </div>
</section>
<p class="muted" data-empty hidden>No widgets yet. Press <strong>Edit</strong> to add gauges, charts and switches from any of your devices.</p>
<div class="dash-grid" data-grid></div>
</div>`,
  });
}
