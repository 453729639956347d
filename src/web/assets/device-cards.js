// Device page cards: one per sensor, in name order, showing its latest value (a picture or a download link for a
// binary chunk), when and from which side it came, and a switch for on/off sensors. device.js wires it.
'use strict';

(() => {
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

  /**
   * page: { root, deviceId, sensors, charts (device-charts.js), isCustom(), showControlState(control, label),
   * put(sensor, value), showSendStatus(text, ok) }; returns { card(name), show(reading, opts) }.
   */
  window.iotcDeviceCards = (page) => {
    const { root, deviceId, sensors, charts } = page;
    const { chartNumber } = window.iotcDeviceCharts;
    const grid = root.querySelector('[data-sensor-grid]');
    const empty = root.querySelector('[data-empty]');

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
      page.showControlState(button, label);
      button.addEventListener('click', async () => {
        if (button.classList.contains('pending')) return;
        button.classList.add('pending');
        try {
          await page.put(s.name, flipped(s.kind, s.reading ? s.reading.value : false));
        } catch (err) {
          page.showSendStatus(err.message, false);
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
      if (chartNumber(r.value) !== null && !page.isCustom()) charts.addPoint(s, r.time, chartNumber(r.value));
    }

    return { card, show };
  };
  Object.assign(window.iotcDeviceCards, { format });
})();
