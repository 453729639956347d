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
    label.className = 'muted small';
    label.textContent = 'Tap to switch';
    row.append(button, label);
    s.el.insertBefore(row, s.meta);
    s.toggle = button;
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
    const url = '/devices/' + encodeURIComponent(deviceId) + '/blobs/' + encodeURIComponent(r.sensor) + '?seq=' + r.value.seq;
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
    if (isNumber(r.value)) addPoint(s, r.time, r.value);
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
      if (isNumber(r.value)) {
        xs.push(r.time / 1000);
        ys.push(r.value);
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

  // ---- Connection ----

  let ws = null;
  let nextId = 1;
  let attempts = 0;
  let authFailures = 0;
  const pending = new Map();

  function setLive(state, text) {
    livePill.dataset.state = state;
    livePill.textContent = text;
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

  function request(body) {
    return new Promise((resolve, reject) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) {
        reject(new Error('Not connected: reconnecting…'));
        return;
      }
      const id = 'w' + nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error('No answer from the server'));
      }, 10000);
      pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...body, id }));
    });
  }

  async function put(sensor, value) {
    const reply = await request({ method: 'put', status: { sensor, value } });
    if (!reply.ok) throw new Error(reply.error);
    // Our own writes are not echoed back to us: show them as the server stored them.
    show({ sensor, value, time: reply.time, write: 'client' });
    showSendStatus('Sent ' + sensor + ' = ' + format(value), true);
    return reply;
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
        .filter((r) => isNumber(r.value))
        .map(async (r) => {
          const h = await request({ method: 'history', sensor: r.sensor, limit: MAX_POINTS });
          if (h.ok) loadHistory(card(r.sensor), h.readings);
        }),
    );
  }

  function connect() {
    setLive('connecting', attempts ? 'Reconnecting…' : 'Connecting…');
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    ws = new WebSocket(scheme + location.host + '/ws?device=' + encodeURIComponent(deviceId) + '&side=client');
    ws.onopen = () => {
      attempts = 0;
      authFailures = 0;
      liveError.hidden = true;
      setLive('live', 'Live');
      refresh().catch(() => {});
    };
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if ('ok' in msg) {
        const p = msg.id !== undefined && pending.get(msg.id);
        if (p) {
          clearTimeout(p.timer);
          pending.delete(msg.id);
          p.resolve(msg);
        }
        return;
      }
      show(msg);
      if (msg.write === 'device') markOnline(true, msg.time);
    };
    ws.onclose = (event) => {
      for (const [id, p] of pending) {
        clearTimeout(p.timer);
        p.reject(new Error('Connection lost'));
        pending.delete(id);
      }
      if (event.code === 4404) {
        setLive('off', 'Offline');
        showLiveError('This device was deleted.', { href: '/devices', label: 'Back to my devices' });
        return;
      }
      authFailures = event.code === 4401 ? authFailures + 1 : 0;
      if (authFailures >= 3) {
        setLive('off', 'Offline');
        showLiveError('Your session has ended, so live updates stopped.', { href: '/login?next=' + encodeURIComponent(location.pathname), label: 'Log in again' });
        return;
      }
      setLive('connecting', 'Reconnecting…');
      setTimeout(connect, Math.min(10000, 500 * 2 ** attempts++));
    };
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
