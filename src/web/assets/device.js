// Device page: the browser connects as the device's client side (authenticated by the login cookie),
// shows every sensor's latest value live, charts numeric ones, and sends values and switch flips to the device.
'use strict';

(() => {
  const root = document.getElementById('device-page');
  if (!root) return;
  const deviceId = root.dataset.device;
  const grid = root.querySelector('[data-sensor-grid]');
  const chartGrid = root.querySelector('[data-chart-grid]');
  const empty = root.querySelector('[data-empty]');
  const livePill = root.querySelector('[data-live]');
  const liveError = root.querySelector('[data-live-error]');
  const statusPill = root.querySelector('[data-status]');
  const lastSeen = root.querySelector('[data-last-seen]');
  const sendForm = root.querySelector('[data-send-form]');
  const sendStatus = root.querySelector('[data-send-status]');
  const MAX_POINTS = 500;
  const CHART_HEIGHT = 200;
  const sensors = new Map();

  // ---- Values ----

  const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);
  /** A value as a point on a chart: numbers, and numeric strings ("22" from the original clients' prompts). */
  function chartNumber(v) {
    if (isNumber(v)) return v;
    if (typeof v !== 'string' || !/^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(v)) return null;
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }
  const ON_OFF_NAME = /^(led|lamp|light|relay|switch|power|fan|pump|heater|valve|lock|door|buzzer|alarm|motor|socket|plug)s?([_\-\s]?\w*)?$/i;
  function onOffKind(name, v) {
    if (typeof v === 'boolean') return 'bool';
    if (!ON_OFF_NAME.test(name)) return null;
    if (v === 0 || v === 1) return 'num';
    if (typeof v === 'string' && /^(on|off)$/i.test(v)) return 'word';
    return null;
  }
  const isOn = (v) => v === true || v === 1 || (typeof v === 'string' && v.toLowerCase() === 'on');
  function flipped(kind, v) {
    const on = !isOn(v);
    return kind === 'bool' ? on : kind === 'num' ? (on ? 1 : 0) : on ? 'on' : 'off';
  }
  function format(v) {
    const t = typeof v === 'string' ? v : JSON.stringify(v);
    return t.length > 160 ? t.slice(0, 157) + '…' : t;
  }
  const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  // ---- Cards ----

  function card(name) {
    let s = sensors.get(name);
    if (s) return s;
    const el = document.createElement('article');
    el.className = 'card sensor';
    el.dataset.sensor = name;
    const title = document.createElement('h3');
    title.textContent = name;
    const value = document.createElement('div');
    value.className = 'value';
    value.dataset.value = '';
    const meta = document.createElement('p');
    meta.className = 'meta';
    el.append(title, value, meta);
    el.addEventListener('animationend', () => el.classList.remove('flash'));
    s = { name, el, meta, value, reading: null, chart: null, chartCard: null, chartBox: null, data: [[], []], toggle: null, kind: null };
    sensors.set(name, s);
    // Keep tiles in name order, as the server lists sensors.
    const after = [...sensors.keys()].sort().find((n) => n > name && sensors.get(n).el.isConnected);
    grid.insertBefore(el, after ? sensors.get(after).el : null);
    empty.hidden = true;
    addSensorOption(name);
    return s;
  }

  function addSensorOption(name) {
    const list = document.getElementById('sensor-names');
    if (list && ![...list.options].some((o) => o.value === name)) {
      const o = document.createElement('option');
      o.value = name;
      list.append(o);
    }
    const select = document.getElementById('csv-sensor');
    if (select && ![...select.options].some((o) => o.value === name)) {
      const o = document.createElement('option');
      o.value = name;
      o.textContent = name;
      select.append(o);
    }
  }

  function setMeta(s, r) {
    const by = document.createElement('span');
    by.textContent = (r.write === 'client' ? 'sent from app' : 'from device') + ' · ';
    const t = document.createElement('time');
    t.dateTime = new Date(r.time).toISOString();
    t.title = new Date(r.time).toLocaleString();
    t.setAttribute('data-ago', String(r.time));
    t.textContent = window.iotcAgo ? window.iotcAgo(r.time) : t.title;
    s.meta.replaceChildren(by, t);
  }

  function ensureToggle(s, kind) {
    s.kind = kind;
    if (s.toggle) return;
    const row = document.createElement('div');
    row.className = 'switch-row';
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'switch';
    button.setAttribute('role', 'switch');
    button.setAttribute('aria-label', 'Switch ' + s.name);
    button.dataset.switch = s.name;
    const label = document.createElement('span');
    label.className = 'muted small conn-state';
    label.dataset.connState = '';
    button.dataset.needsLive = '';
    row.append(button, label);
    s.el.insertBefore(row, s.meta);
    s.toggle = button;
    showControlState(button, label);
    button.addEventListener('click', async () => {
      if (button.classList.contains('pending')) return;
      button.classList.add('pending');
      try {
        await put(s.name, flipped(s.kind, s.reading ? s.reading.value : false));
      } catch (err) {
        showSendStatus(err.message, false);
      } finally {
        button.classList.remove('pending');
      }
    });
  }

  /**
   * A binary chunk's notice: an image shows as the latest frame (fetched by its seq, so each frame is a new URL),
   * anything else as a download link.
   */
  function showBlob(r) {
    const s = card(r.sensor);
    if (s.reading && r.time < s.reading.time) return;
    s.reading = r;
    const url = '/api/v1/devices/' + encodeURIComponent(deviceId) + '/blobs/' + encodeURIComponent(r.sensor) + '/' + r.value.seq;
    const size = r.value.size >= 1024 ? Math.round(r.value.size / 1024) + ' KB' : r.value.size + ' bytes';
    if (/^image\/(jpeg|png|gif|webp|bmp)$/i.test(r.value.type)) {
      let img = s.value.querySelector('img');
      if (!img) {
        s.value.textContent = '';
        img = document.createElement('img');
        img.className = 'blob-image';
        img.alt = r.sensor;
        s.value.append(img);
      }
      // The next frame is loaded off screen and swapped in whole, so the picture never flickers half-drawn.
      const next = new Image();
      next.onload = () => {
        if (s.reading === r) img.src = next.src;
      };
      next.src = url;
    } else {
      s.value.textContent = '';
      const a = document.createElement('a');
      a.href = url;
      a.className = 'blob-download';
      a.textContent = 'Download (' + r.value.type + ', ' + size + ')';
      s.value.append(a);
    }
    setMeta(s, r);
  }

  /** Shows a reading: the card's value, its switch, and a point on its chart. */
  function show(r, opts = {}) {
    if (r.value && typeof r.value === 'object' && r.value.blob === true) return showBlob(r);
    const s = card(r.sensor);
    if (!s.reading || r.time >= s.reading.time) {
      s.reading = r;
      const text = format(r.value);
      s.value.textContent = text;
      s.value.classList.toggle('long', text.length > 24);
      setMeta(s, r);
      const kind = onOffKind(r.sensor, r.value);
      if (kind) {
        ensureToggle(s, kind);
        s.toggle.setAttribute('aria-checked', String(isOn(r.value)));
      }
      if (!opts.quiet) {
        s.el.classList.remove('flash');
        void s.el.offsetWidth;
        s.el.classList.add('flash');
      }
    }
    // Dates picked by hand stay as picked: a live reading is after them.
    if (chartNumber(r.value) !== null && !isCustom()) addPoint(s, r.time, chartNumber(r.value));
  }

  // ---- Charts ----

  function ensureChart(s) {
    if (s.chart) return;
    const chartCard = document.createElement('article');
    chartCard.className = 'card chart-card';
    chartCard.dataset.chartCard = s.name;
    const head = document.createElement('header');
    const title = document.createElement('h3');
    title.textContent = s.name;
    const count = document.createElement('span');
    count.className = 'muted small';
    head.append(title, count);
    const box = document.createElement('div');
    box.className = 'chart';
    box.dataset.chart = s.name;
    chartCard.append(head, box);
    const after = [...sensors.keys()].sort().find((n) => n > s.name && sensors.get(n).chartCard);
    chartGrid.insertBefore(chartCard, after ? sensors.get(after).chartCard : null);
    s.chartCard = chartCard;
    s.chartBox = box;
    s.chartCount = count;
    const accent = cssVar('--accent') || '#0f766e';
    const muted = cssVar('--muted') || '#5f6b7a';
    const line = cssVar('--line') || '#e1e6ec';
    const axis = { stroke: muted, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1 }, font: '12px system-ui, sans-serif' };
    s.chart = new uPlot(
      {
        width: Math.max(200, box.clientWidth),
        height: CHART_HEIGHT,
        series: [{}, { label: s.name, stroke: accent, width: 2, fill: cssVar('--chart-fill') || 'rgba(15,118,110,0.12)' }],
        axes: [axis, { ...axis, size: 56 }],
        scales: { x: { time: true } },
        cursor: { drag: { x: true, y: false } },
        legend: { show: true, live: true },
      },
      s.data,
      box,
    );
    new ResizeObserver(() => {
      const width = Math.max(200, box.clientWidth);
      if (width !== s.chart.width) s.chart.setSize({ width, height: CHART_HEIGHT });
    }).observe(box);
  }

  /** A chart once a sensor has two numeric points: one point is a value, not a trend. */
  function redraw(s) {
    if (s.data[0].length < 2 && !s.chart) return;
    ensureChart(s);
    s.chart.setData(s.data);
    s.chartBox.dataset.points = String(s.data[0].length);
    s.chartCount.textContent = 'last ' + s.data[0].length + ' readings';
  }

  function addPoint(s, time, value) {
    const [xs, ys] = s.data;
    const x = time / 1000;
    let i = xs.length;
    while (i > 0 && xs[i - 1] > x) i--;
    if (i > 0 && xs[i - 1] === x && ys[i - 1] === value) return; // already there (history and live overlap)
    xs.splice(i, 0, x);
    ys.splice(i, 0, value);
    if (xs.length > MAX_POINTS) {
      xs.splice(0, xs.length - MAX_POINTS);
      ys.splice(0, ys.length - MAX_POINTS);
    }
    redraw(s);
  }

  function loadHistory(s, readings) {
    const xs = [];
    const ys = [];
    for (const r of readings) {
      if (chartNumber(r.value) !== null) {
        xs.push(r.time / 1000);
        ys.push(chartNumber(r.value));
      }
    }
    // Points that arrived live while the history was on its way come after it.
    const last = xs.length ? xs[xs.length - 1] : -Infinity;
    s.data[0].forEach((x, i) => {
      if (x > last) {
        xs.push(x);
        ys.push(s.data[1][i]);
      }
    });
    s.data = [xs.slice(-MAX_POINTS), ys.slice(-MAX_POINTS)];
    if (xs.length) redraw(s);
  }

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

  // ---- Time range (src/web/assets/chart-range.js): the latest readings, or aggregated buckets over a range ----
  const picker = window.iotcChartRange(root, () => refresh().catch(() => {}));
  const isCustom = picker.isCustom;

  /** The sensor's chart over the picked range: one point (the average) per bucket; buckets missing between two are a gap. */
  async function loadRange(s, range) {
    const h = await request(window.iotcChartRange.request(s.name, range));
    if (!h.ok) return;
    s.data = window.iotcChartRange.series(h);
    if (s.data[0].length || isCustom()) {
      redraw(s);
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
          if (h.ok) loadHistory(card(r.sensor), h.readings);
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

  // ---- Call a method ----

  const callForm = root.querySelector('[data-call-form]');
  const callStatus = root.querySelector('[data-call-status]');
  const callResult = root.querySelector('[data-call-result]');
  /** The persistent call this page is waiting on: its answer arrives later as a $call frame. */
  let awaitedCall = null;

  function showCall(text, ok, result) {
    callStatus.textContent = text;
    callStatus.className = 'form-status ' + (ok ? 'ok' : 'bad');
    callStatus.dataset.outcome = ok ? 'ok' : 'bad';
    callResult.hidden = result === undefined;
    callResult.textContent = result === undefined ? '' : JSON.stringify(result, null, 2);
  }

  function callFailure(reply, seconds) {
    switch (reply.code) {
      case 'E_TIMEOUT':
        return 'No answer: the device did not answer within ' + seconds + ' s.';
      case 'E_OFFLINE':
        return 'The device is offline. Tick "wait for it" to deliver the call when it connects.';
      case 'E_DEVICE':
        return 'The device answered with an error: ' + reply.error;
      default:
        return reply.error;
    }
  }

  function onCallState(update) {
    if (!update || update.call !== awaitedCall) return;
    if (update.state === 'sent') return showCall('Delivered to the device; waiting for its answer…', true);
    awaitedCall = null;
    if (update.state === 'expired') return showCall('Expired: the device did not answer in time.', false);
    if (update.error !== undefined) return showCall('The device answered with an error: ' + update.error, false);
    showCall('Answered:', true, update.result);
  }

  if (callForm) {
    callForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      const method = callForm.elements.method.value.trim();
      const paramsText = callForm.elements.params.value.trim();
      const seconds = Number(callForm.elements.timeout.value || 10);
      const persistent = callForm.elements.persistent.checked;
      if (!method) return showCall('Enter a method name, e.g. reboot.', false);
      let params = null;
      if (paramsText) {
        try {
          params = JSON.parse(paramsText);
        } catch {
          return showCall('Params must be JSON, e.g. {"delay":5}, 42 or "text".', false);
        }
      }
      const max = persistent ? 7 * 86400 : 60;
      if (!(seconds >= 0.1 && seconds <= max)) return showCall('The timeout is 0.1 to ' + (persistent ? '604800 (7 days)' : '60') + ' seconds.', false);
      const button = callForm.querySelector('button[type=submit]');
      button.disabled = true;
      showCall(persistent ? 'Sending…' : 'Calling ' + method + '… (up to ' + seconds + ' s)', true);
      try {
        const timeout = Math.round(seconds * 1000);
        const reply = await request({ method: 'call', device_method: method, params, timeout, persistent }, persistent ? 10000 : timeout + 10000);
        if (!reply.ok) return showCall(callFailure(reply, seconds), false);
        if (reply.state === 'queued' || reply.state === 'sent') {
          awaitedCall = reply.call;
          return showCall(reply.state === 'queued' ? 'Queued: the call is delivered when the device connects; its answer shows here.' : 'Delivered to the device; waiting for its answer…', true);
        }
        showCall('Answered:', true, reply.result);
      } catch (err) {
        showCall(err.message, false);
      } finally {
        button.disabled = false;
      }
    });
  }

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
