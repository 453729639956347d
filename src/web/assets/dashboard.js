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

  function build(spec) {
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
    head.append(title, dot, remove);
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
    remove.addEventListener('click', () => {
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
    grid.append(el);
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

  async function send(change) {
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
      saveError.textContent = 'Could not save: ' + why;
      saveError.hidden = false;
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
      const widgetsNow = specs();
      saving = saving.then(() => send({ widgets: widgetsNow })).catch(() => {});
    }, 150);
  }

  // ---- Arranging (dashboard-arrange.js) ----

  const { settle } = window.iotcDashboardArrange({ grid, widgets, phone, specs, place, placeAll, save, editing: () => editing });

  // ---- Editing ----

  function setEditing(on) {
    editing = on;
    root.classList.toggle('editing', on);
    editor.hidden = !on;
    editButton.textContent = on ? 'Done' : 'Edit';
    editButton.setAttribute('aria-pressed', String(on));
    for (const w of widgets.values()) showState(w);
  }
  editButton.addEventListener('click', () => setEditing(!editing));

  const addForm = root.querySelector('[data-add-form]');
  const addStatus = root.querySelector('[data-add-status]');
  const sensorList = root.querySelector('#w-sensors');
  const SIZES = { value: [3, 2], gauge: [3, 3], chart: [6, 3], switch: [3, 2], slider: [3, 2], button: [3, 2], text: [4, 2], status: [3, 2], image: [4, 3] };

  function showFields() {
    const type = addForm.elements.type.value;
    for (const f of addForm.querySelectorAll('[data-for]')) f.hidden = !f.dataset.for.split(' ').includes(type) || (f.hasAttribute('data-custom-range') && addForm.elements.range.value !== 'custom');
    const dev = devices.get(addForm.elements.device.value);
    sensorList.replaceChildren(...(dev ? dev.sensors : []).map((s) => Object.assign(document.createElement('option'), { value: s })));
  }
  addForm.addEventListener('change', showFields);
  showFields();

  const num = (v) => (v.trim() === '' ? undefined : Number(v));

  addForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const f = addForm.elements;
    const type = f.type.value;
    const [w, h] = SIZES[type];
    const bottom = Math.max(0, ...[...widgets.values()].map((x) => x.spec.y + x.spec.h));
    const spec = { id: 'w' + Math.random().toString(36).slice(2, 10), type, x: 0, y: bottom, w, h, device: f.device.value };
    const sensor = f.sensor.value.trim();
    if (sensor) spec.sensor = sensor;
    if (f.title.value.trim()) spec.title = f.title.value.trim();
    if (type === 'chart') {
      const more = f.more.value.split(',').map((s) => s.trim()).filter(Boolean);
      if (more.length) spec.sensors = more;
      if (f.range.value === 'custom') {
        const from = window.iotcChartRange.fromLocal(f.from.value);
        const to = window.iotcChartRange.fromLocal(f.to.value);
        if (Number.isNaN(from) || Number.isNaN(to) || from >= to) {
          addStatus.textContent = Number.isNaN(from) || Number.isNaN(to) ? 'Pick both dates of the range.' : 'The start must be before the end.';
          addStatus.className = 'form-status bad';
          return;
        }
        spec.range = { from, to };
      } else if (f.range.value) spec.range = f.range.value;
    }
    if (type === 'gauge' || type === 'slider') {
      spec.min = num(f.min.value);
      spec.max = num(f.max.value);
    }
    if (type === 'slider' && num(f.step.value)) spec.step = num(f.step.value);
    if (['value', 'gauge', 'slider'].includes(type) && f.units.value.trim()) spec.units = f.units.value.trim();
    if (type === 'button' && f.payload.value.trim()) {
      try {
        spec.payload = JSON.parse(f.payload.value);
      } catch {
        spec.payload = f.payload.value.trim();
      }
    }
    if (type === 'image' && f.url.value.trim()) spec.url = f.url.value.trim();
    const needsSensor = !['status', 'image'].includes(type) || (type === 'image' && !spec.url);
    if (needsSensor && !spec.sensor && !(type === 'chart' && spec.sensors)) {
      addStatus.textContent = 'Enter the sensor this widget shows or writes, e.g. temp.';
      addStatus.className = 'form-status bad';
      return;
    }
    addStatus.textContent = 'Added ' + (spec.title || spec.sensor || type) + '.';
    addStatus.className = 'form-status ok';
    build(spec);
    settle(widgets.get(spec.id));
    save();
    const c = conns.get(spec.device);
    if (c && c.state === 'live') refresh(c).catch(() => {});
  });

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
