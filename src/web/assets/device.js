// Device page: the browser connects as the device's client side (authenticated by the login cookie),
// shows every sensor's latest value live, charts numeric ones, and sends values and switch flips to the device.
// Its parts: device-cards.js (a card per sensor), device-charts.js (their charts), device-call.js (calling a method).
'use strict';

(() => {
  const root = document.getElementById('device-page');
  if (!root) return;
  const deviceId = root.dataset.device;
  const chartGrid = root.querySelector('[data-chart-grid]');
  const livePill = root.querySelector('[data-live]');
  const liveError = root.querySelector('[data-live-error]');
  const statusPill = root.querySelector('[data-status]');
  const lastSeen = root.querySelector('[data-last-seen]');
  const sendForm = root.querySelector('[data-send-form]');
  const sendStatus = root.querySelector('[data-send-status]');
  const { MAX_POINTS, chartNumber } = window.iotcDeviceCharts;
  const { format } = window.iotcDeviceCards;
  const sensors = new Map();
  const charts = window.iotcDeviceCharts(chartGrid, sensors);
  const picker = window.iotcChartRange(root, () => refresh().catch(() => {}));
  const isCustom = picker.isCustom;
  const { card, show } = window.iotcDeviceCards({ root, deviceId, sensors, charts, isCustom, showControlState, put, showSendStatus });

  // ---- Connection (the shared live socket: live.js) ----

  let live = null;
  const request = (body, timeoutMs) => live.request(body, timeoutMs);

  function setLive(state, text) {
    livePill.dataset.state = state;
    livePill.textContent = text;
    showControlsState();
  }

  // ---- Controls follow the page's connection ----
  // Anything marked data-needs-live works only through the live connection: while it is down, every such control
  // is disabled and the state next to it says why, rather than a click that silently does nothing.

  const isLive = () => livePill.dataset.state === 'live';
  const CONTROL_STATE_TEXT = { live: 'Tap to switch', connecting: 'Offline: retrying…', off: 'Offline' };

  // A shared viewer sees values but may not write: its controls stay disabled whatever the connection.
  const readOnly = root.dataset.role === 'viewer';

  function showControlState(control, label) {
    const live = isLive() && !readOnly;
    control.disabled = !live;
    control.setAttribute('aria-disabled', String(!live));
    if (label) {
      label.textContent = readOnly ? 'View only' : CONTROL_STATE_TEXT[livePill.dataset.state] || CONTROL_STATE_TEXT.connecting;
      label.classList.toggle('offline', !live);
    }
  }

  function showControlsState() {
    for (const control of root.querySelectorAll('[data-needs-live]')) showControlState(control, null);
    for (const s of sensors.values()) if (s.toggle) showControlState(s.toggle, s.toggle.parentElement.querySelector('[data-conn-state]'));
    const note = root.querySelector('[data-send-conn]');
    if (note) {
      const live = isLive();
      if (readOnly) {
        note.textContent = 'View only: the owner shared this device with you as a viewer.';
        note.classList.add('offline');
        return;
      }
      note.textContent = live ? 'Connected: sends at once.' : livePill.dataset.state === 'off' ? 'Not connected: sending is off.' : 'Not connected: reconnecting… Sending is off until then.';
      note.classList.toggle('offline', !live);
    }
  }

  function showLiveError(text, link) {
    liveError.replaceChildren(document.createTextNode(text + ' '));
    if (link) {
      const a = document.createElement('a');
      a.href = link.href;
      a.textContent = link.label;
      liveError.append(a);
    }
    liveError.hidden = false;
  }

  async function put(sensor, value) {
    const reply = await live.put(sensor, value);
    // Our own writes are not echoed back to us: show them as the server stored them.
    show({ sensor, value, time: reply.time, write: 'client' });
    showSendStatus('Sent ' + sensor + ' = ' + format(value), true);
    return reply;
  }

  // ---- Time range (src/web/assets/chart-range.js, the picker above): the latest readings, or aggregated buckets over a range ----

  /** The sensor's chart over the picked range: one point (the average) per bucket; buckets missing between two are a gap. */
  async function loadRange(s, range) {
    const h = await request(window.iotcChartRange.request(s.name, range));
    if (!h.ok) return;
    s.data = window.iotcChartRange.series(h);
    if (s.data[0].length || isCustom()) {
      charts.redraw(s);
      s.chartCount.textContent = window.iotcChartRange.label(h);
    }
  }

  async function refresh() {
    const reply = await request({ method: 'sensors' });
    if (!reply.ok) return;
    for (const r of reply.sensors) show(r, { quiet: true });
    fetch('/devices/' + encodeURIComponent(deviceId) + '/blobs.json', { credentials: 'same-origin' })
      .then((res) => (res.ok ? res.json() : { blobs: [] }))
      .then((body) => body.blobs.forEach((r) => show(r)))
      .catch(() => {});
    await Promise.all(
      reply.sensors
        .filter((r) => chartNumber(r.value) !== null)
        .map(async (r) => {
          const range = picker.range();
          if (range) return loadRange(card(r.sensor), range);
          const h = await request({ method: 'history', sensor: r.sensor, limit: MAX_POINTS });
          if (h.ok) charts.loadHistory(card(r.sensor), h.readings);
        }),
    );
  }
  function connect() {
    live = window.iotcLive(deviceId, {
      state(state, { again, why }) {
        if (state === 'connecting') return setLive('connecting', again ? 'Reconnecting…' : 'Connecting…');
        if (state === 'live') {
          liveError.hidden = true;
          setLive('live', 'Live');
          return refresh().catch(() => {});
        }
        setLive('off', 'Offline');
        if (why === 'deleted') showLiveError('This device was deleted.', { href: '/devices', label: 'Back to my devices' });
        else showLiveError('Your session has ended, so live updates stopped.', { href: '/login?next=' + encodeURIComponent(location.pathname), label: 'Log in again' });
      },
      frame(msg) {
        if (msg.sensor === '$call') return onCallState(msg.value);
        show(msg);
        // A reading from the device side may have come over HTTP, without a connection: ask the server what is true.
        if (msg.write === 'device') pollStatus();
      },
    });
  }

  // ---- Online state ----

  function markOnline(online, seen) {
    statusPill.classList.toggle('pill-on', online);
    statusPill.classList.toggle('pill-off', !online);
    statusPill.querySelector('[data-status-text]').textContent = online ? 'Online' : 'Offline';
    if (seen) {
      const t = document.createElement('time');
      t.dateTime = new Date(seen).toISOString();
      t.setAttribute('data-ago', String(seen));
      t.textContent = window.iotcAgo ? window.iotcAgo(seen) : t.dateTime;
      lastSeen.replaceChildren(t);
    }
  }

  async function pollStatus() {
    if (document.hidden) return;
    try {
      const res = await fetch('/devices/' + encodeURIComponent(deviceId) + '/status.json', { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
      if (!res.ok) return;
      const d = await res.json();
      markOnline(d.online, d.lastSeen);
    } catch {}
  }

  // ---- Send form ----

  function showSendStatus(text, ok) {
    sendStatus.textContent = text;
    sendStatus.className = 'form-status ' + (ok ? 'ok' : 'bad');
  }

  sendForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const sensor = sendForm.elements.sensor.value.trim();
    const text = sendForm.elements.value.value.trim();
    if (!sensor) return showSendStatus('Enter a sensor name, e.g. led.', false);
    if (sensor.length > 64) return showSendStatus('A sensor name has at most 64 characters.', false);
    if (!text) return showSendStatus('Enter a value, e.g. true or 42.', false);
    let value;
    try {
      value = JSON.parse(text);
    } catch {
      value = text;
    }
    try {
      await put(sensor, value);
    } catch (err) {
      showSendStatus(err.message, false);
    }
  });

  // ---- Call a method (device-call.js) ----

  const { onCallState } = window.iotcDeviceCall(root, request);

  // ---- Start ----

  let initial = [];
  try {
    initial = JSON.parse(root.dataset.sensors || '[]');
  } catch {}
  for (const r of initial) show(r, { quiet: true });
  connect();
  setInterval(pollStatus, 5000);
  document.addEventListener('visibilitychange', pollStatus);
})();
