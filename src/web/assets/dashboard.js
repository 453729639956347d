// Dashboard page: widgets from any of the user's devices on a 12-column grid, live over one cookie-authenticated
// client-side WebSocket per device (as the device page), arranged by dragging in edit mode (dashboard-arrange.js)
// and saved at once.
'use strict';

(() => {
  const root = document.getElementById('dashboard');
  if (!root) return;
  const dashboard = JSON.parse(root.dataset.dashboard);
  const devices = new Map(JSON.parse(root.dataset.devices).map((d) => [d.id, d]));
  const grid = root.querySelector('[data-grid]');
  const empty = root.querySelector('[data-empty]');
  const editButton = root.querySelector('[data-edit]');
  const editor = root.querySelector('[data-editor]');
  const saveStatus = root.querySelector('[data-save-status]');
  const saveError = root.querySelector('[data-save-error]');
  const STATE_TEXT = { live: 'Live', connecting: 'Offline: retrying…', off: 'Offline' };
  /** widget id → { spec, el, view, controls } */
  const widgets = new Map();
  let editing = false;

  // ---- Live connections, one per device ----

  const conns = new Map();

  function conn(deviceId) {
    let c = conns.get(deviceId);
    if (c) return c;
    c = { deviceId, state: 'connecting', live: null };
    conns.set(deviceId, c);
    c.live = window.iotcLive(deviceId, {
      state(state) {
        setState(c, state);
        if (state === 'live') refresh(c).catch(() => {});
      },
      frame(msg) {
        if (typeof msg.sensor !== 'string' || msg.sensor === '$call') return;
        deliver(deviceId, msg);
        if (msg.write === 'device') pollStatus();
      },
    });
    return c;
  }

  function setState(c, state) {
    c.state = state;
    for (const w of widgets.values()) if (w.spec.device === c.deviceId) showState(w);
  }

  const request = (c, body) => c.live.request(body);

  function deliver(deviceId, r) {
    for (const w of widgets.values()) {
      if (w.spec.device !== deviceId || !w.view.reading) continue;
      const wants = w.view.sensors ? w.view.sensors.includes(r.sensor) : w.spec.sensor === r.sensor;
      if (wants) w.view.reading(r);
    }
  }

  /** On (re)connecting: every sensor's latest value, and the history the device's charts draw. */
  async function refresh(c) {
    const reply = await request(c, { method: 'sensors' });
    if (!reply.ok) return;
    for (const r of reply.sensors) deliver(c.deviceId, r);
    // Charts of the latest readings share one request per sensor; a chart with a range asks for its own buckets.
    const charted = new Set();
    const ranged = [];
    for (const w of widgets.values()) {
      if (w.spec.device !== c.deviceId || !w.view.sensors) continue;
      if (w.view.range) w.view.sensors.forEach((sensor) => ranged.push({ w, sensor }));
      else w.view.sensors.forEach((s) => charted.add(s));
    }
    await Promise.all([
      ...[...charted].map(async (sensor) => {
        const h = await request(c, { method: 'history', sensor, limit: 500 });
        if (!h.ok) return;
        for (const w of widgets.values()) if (w.spec.device === c.deviceId && w.view.history && !w.view.range) w.view.history(sensor, h.readings);
      }),
      ...ranged.map(async ({ w, sensor }) => {
        const h = await request(c, window.iotcChartRange.request(sensor, window.iotcChartRange.span(w.view.range)));
        if (h.ok) w.view.buckets(sensor, h);
        else w.error(h.error);
      }),
    ]);
  }

  // ---- Widgets ----

  function showState(w) {
    const c = conns.get(w.spec.device);
    const state = c ? c.state : 'connecting';
    const writable = devices.get(w.spec.device)?.writable !== false;
    w.el.dataset.conn = state;
    w.dot.dataset.state = state;
    w.dot.title = STATE_TEXT[state];
    w.stateText.textContent = !writable && w.controls.length ? 'Read only' : STATE_TEXT[state];
    w.stateText.classList.toggle('offline', state !== 'live');
    for (const control of w.controls) {
      const usable = state === 'live' && writable && !editing;
      control.disabled = !usable;
      control.setAttribute('aria-disabled', String(!usable));
    }
  }

  // A phone stacks the widgets in one column, in their desktop reading order (top to bottom, left to right),
  // each as high as on the desktop; dragging there moves a widget before another (see drop()).
  const phone = window.matchMedia('(max-width: 640px)');

  function place(w) {
    const s = w.spec;
    w.el.style.gridColumn = phone.matches ? '1 / -1' : s.x + 1 + ' / span ' + s.w;
    w.el.style.gridRow = phone.matches ? 'span ' + s.h : s.y + 1 + ' / span ' + s.h;
  }

  function placeAll() {
    specs().forEach((spec, i) => {
      const w = widgets.get(spec.id);
      w.el.style.order = String(i);
      place(w);
    });
  }
  phone.addEventListener('change', placeAll);

  /** Draws a widget: added to the grid, or in place of `replacing` (an edited widget's old element). */
  function build(spec, replacing) {
    const dev = devices.get(spec.device);
    const el = document.createElement('article');
    el.className = 'card widget widget-' + spec.type;
    el.dataset.widget = spec.id;
    el.dataset.type = spec.type;
    const head = document.createElement('header');
    head.className = 'widget-head';
    head.dataset.dragHandle = '';
    const title = document.createElement('h3');
    title.textContent = spec.title || (spec.type === 'status' ? (dev ? dev.name : spec.device) : spec.sensor || (spec.sensors || []).join(', ') || spec.type);
    title.title = (dev ? dev.name : 'Unknown device') + (spec.sensor ? ' · ' + spec.sensor : '');
    const dot = document.createElement('span');
    dot.className = 'conn-dot';
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'widget-remove';
    remove.textContent = '×';
    remove.setAttribute('aria-label', 'Remove widget');
    const edit = document.createElement('button');
    edit.type = 'button';
    edit.className = 'widget-edit';
    edit.dataset.widgetEdit = '';
    edit.textContent = '✎';
    edit.title = 'Edit widget';
    edit.setAttribute('aria-label', 'Edit widget');
    // A widget of a device gone from the account can be removed, not edited: the form cannot pick its device.
    edit.hidden = !dev;
    head.append(title, dot, edit, remove);
    const body = document.createElement('div');
    body.className = 'widget-body';
    const foot = document.createElement('p');
    foot.className = 'widget-foot small';
    const stateText = document.createElement('span');
    stateText.className = 'conn-state';
    stateText.dataset.connState = '';
    const errorText = document.createElement('span');
    errorText.className = 'widget-error';
    errorText.setAttribute('role', 'alert');
    foot.append(stateText, errorText);
    const resize = document.createElement('span');
    resize.className = 'widget-resize';
    resize.dataset.resizeHandle = '';
    resize.setAttribute('aria-hidden', 'true');
    el.append(head, body, foot, resize);
    const w = { spec, el, body, dot, stateText, controls: [], view: {} };
    w.error = (text) => (errorText.textContent = text);
    // Writes as the client side, with an id: resolves once the hub has stored it, else throws its error.
    w.put = async (value) => {
      const reply = await conn(spec.device).live.put(spec.sensor, value);
      deliver(spec.device, { sensor: spec.sensor, value, time: reply.time, write: 'client' });
    };
    edit.addEventListener('click', () => widgetForm.open(w));
    remove.addEventListener('click', () => {
      if (widgetForm.editing() === w) widgetForm.close(true);
      widgets.delete(spec.id);
      el.remove();
      save();
    });
    if (!dev) {
      body.textContent = 'This device is no longer in your account.';
    } else {
      const make = window.iotcWidgets.make[spec.type];
      if (make) w.view = make(w) || {};
      if (w.view.status) w.view.status(dev);
    }
    widgets.set(spec.id, w);
    place(w);
    if (replacing) replacing.replaceWith(el);
    else grid.append(el);
    if (dev) conn(spec.device);
    showState(w);
    return w;
  }

  // ---- Device online state (status tiles) ----

  async function pollStatus() {
    if (document.hidden) return;
    const ids = new Set([...widgets.values()].filter((w) => w.view.status).map((w) => w.spec.device));
    await Promise.all(
      [...ids].map(async (id) => {
        try {
          const res = await fetch('/devices/' + encodeURIComponent(id) + '/status.json', { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
          if (!res.ok) return;
          const d = await res.json();
          for (const w of widgets.values()) if (w.spec.device === id && w.view.status) w.view.status(d);
        } catch {}
      }),
    );
  }

  // ---- Saving ----

  let saveTimer = null;
  let saving = Promise.resolve();

  function specs() {
    return [...widgets.values()].map((w) => w.spec).sort((a, b) => a.y - b.y || a.x - b.x);
  }

  function showSaved(text, ok) {
    saveStatus.textContent = text;
    saveStatus.className = 'form-status ' + (ok ? 'ok' : 'bad');
    saveStatus.dataset.saved = ok ? 'yes' : 'no';
  }

  /** Sends a change; a refusal throws its reason, said in the banner unless the caller says it (`inForm`). */
  async function send(change, inForm) {
    showSaved('Saving…', true);
    saveStatus.dataset.saved = 'pending';
    const res = await fetch('/dashboards/' + dashboard.id + '/data.json', {
      method: 'PUT',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRF-Token': root.dataset.csrf },
      body: JSON.stringify(change),
    });
    let body = null;
    try {
      body = await res.json();
    } catch {}
    if (!res.ok) {
      const why = body && body.message ? body.message : res.status === 403 ? 'your session changed: reload the page' : 'the server said ' + res.status;
      showSaved('Not saved', false);
      if (!inForm) {
        saveError.textContent = 'Could not save: ' + why;
        saveError.hidden = false;
      }
      throw new Error(why);
    }
    saveError.hidden = true;
    showSaved('Saved', true);
    return body;
  }

  /** Saves the whole layout, one request at a time, the last change winning. */
  function save() {
    empty.hidden = widgets.size > 0;
    showSaved('Saving…', true);
    saveStatus.dataset.saved = 'pending';
    clearTimeout(saveTimer);
    saveTimer = setTimeout(() => {
      saveTimer = null;
      const widgetsNow = specs();
      saving = saving.then(() => send({ widgets: widgetsNow })).catch(() => {});
    }, 150);
  }

  /**
   * Saves the layout with one widget's edited settings, before they are drawn: throws the hub's reason if it
   * refuses them. Layout changes still waiting to be saved go with it (or after, alone, if it is refused).
   */
  async function saveWidget(spec) {
    const waiting = saveTimer !== null;
    clearTimeout(saveTimer);
    saveTimer = null;
    const attempt = saving.then(() => send({ widgets: specs().map((s) => (s.id === spec.id ? spec : s)) }, true));
    saving = attempt.catch(() => {});
    try {
      await attempt;
    } catch (err) {
      if (waiting) save();
      throw err;
    }
  }

  // ---- Arranging (dashboard-arrange.js) ----

  const { settle } = window.iotcDashboardArrange({ grid, widgets, phone, specs, place, placeAll, save, editing: () => editing });

  // ---- Editing ----

  function setEditing(on) {
    editing = on;
    root.classList.toggle('editing', on);
    editor.hidden = !on;
    if (!on) widgetForm.close(true);
    editButton.textContent = on ? 'Done' : 'Edit';
    editButton.setAttribute('aria-pressed', String(on));
    for (const w of widgets.values()) showState(w);
  }
  editButton.addEventListener('click', () => setEditing(!editing));

  const widgetForm = window.iotcDashboardForm({
    root,
    devices,
    widgets,
    add(spec) {
      build(spec);
      settle(widgets.get(spec.id));
      save();
      redraw(spec.device);
    },
    saveWidget,
    /** The widget drawn anew from its edited settings, where it was. */
    replace(old, spec) {
      build(spec, old.el);
      placeAll();
      redraw(spec.device);
    },
  });

  /** New or changed widgets of a connected device get their values and history now (else when it connects). */
  function redraw(deviceId) {
    const c = conns.get(deviceId);
    if (c && c.state === 'live') refresh(c).catch(() => {});
  }

  root.querySelector('[data-rename-form]').addEventListener('submit', async (event) => {
    event.preventDefault();
    const name = event.target.elements.name.value.trim();
    if (!name) return;
    try {
      const d = await send({ name });
      root.querySelector('[data-name]').textContent = d.name;
      document.title = d.name + ' · IOTcommunicate';
    } catch {}
  });

  // ---- Start ----

  for (const spec of dashboard.widgets) build(spec);
  placeAll();
  empty.hidden = widgets.size > 0;
  if (new URLSearchParams(location.search).has('edit')) {
    setEditing(true);
    history.replaceState(null, '', location.pathname);
  }
  setInterval(pollStatus, 5000);
  document.addEventListener('visibilitychange', pollStatus);
})();
