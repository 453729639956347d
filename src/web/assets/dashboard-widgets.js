// Dashboard widgets: each type draws itself from readings and, for controls, writes through `ctx.put`.
// A widget gets { el, body, spec, ctx } and returns { reading(r), history(sensor, readings), state(live, writable), status(d) }.
'use strict';

(() => {
  const SVG = 'http://www.w3.org/2000/svg';
  const MAX_POINTS = 500;

  /** A value as a number: numbers, and numeric strings ("22" from the original clients' prompts). */
  function chartNumber(v) {
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (typeof v !== 'string' || !/^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(v)) return null;
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }
  const isOn = (v) => v === true || v === 1 || (typeof v === 'string' && /^(on|true|1)$/i.test(v));
  function format(v) {
    const t = typeof v === 'string' ? v : JSON.stringify(v);
    return t.length > 80 ? t.slice(0, 77) + '…' : t;
  }
  function round(n) {
    return Math.abs(n) >= 100 ? String(Math.round(n)) : String(Math.round(n * 100) / 100);
  }
  const cssVar = (name, fallback) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function ago(ms) {
    const t = el('time', 'muted small');
    t.dateTime = new Date(ms).toISOString();
    t.title = new Date(ms).toLocaleString();
    t.setAttribute('data-ago', String(ms));
    t.textContent = window.iotcAgo ? window.iotcAgo(ms) : t.title;
    return t;
  }

  /** Runs a control's write, shows its failure in the widget and keeps it from being sent twice. */
  async function writing(w, control, fn) {
    if (control.classList.contains('pending')) return;
    control.classList.add('pending');
    w.error('');
    try {
      await fn();
    } catch (err) {
      w.error(err.message);
    } finally {
      control.classList.remove('pending');
    }
  }

  function valueWidget(w) {
    const value = el('div', 'value', '–');
    value.dataset.value = '';
    const meta = el('p', 'meta');
    w.body.append(value, meta);
    return {
      reading(r) {
        const n = chartNumber(r.value);
        value.textContent = (n !== null ? round(n) : format(r.value)) + (w.spec.units ? ' ' + w.spec.units : '');
        meta.replaceChildren(ago(r.time));
      },
    };
  }

  function gaugeWidget(w) {
    const min = w.spec.min ?? 0;
    const max = w.spec.max ?? 100;
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 120 74');
    svg.classList.add('gauge');
    // A half circle: 180° from the left to the right, filled up to the value.
    const arc = (frac) => {
      const a = Math.PI * (1 - frac);
      return `M 10 64 A 50 50 0 0 1 ${60 + 50 * Math.cos(a)} ${64 - 50 * Math.sin(a)}`;
    };
    const track = document.createElementNS(SVG, 'path');
    track.setAttribute('d', arc(1));
    track.setAttribute('class', 'gauge-track');
    const fill = document.createElementNS(SVG, 'path');
    fill.setAttribute('class', 'gauge-fill');
    const text = document.createElementNS(SVG, 'text');
    text.setAttribute('x', '60');
    text.setAttribute('y', '60');
    text.setAttribute('class', 'gauge-text');
    text.textContent = '–';
    svg.append(track, fill, text);
    const scale = el('div', 'gauge-scale muted small');
    scale.append(el('span', '', round(min)), el('span', '', w.spec.units || ''), el('span', '', round(max)));
    w.body.append(svg, scale);
    return {
      reading(r) {
        const n = chartNumber(r.value);
        if (n === null) {
          text.textContent = format(r.value);
          fill.removeAttribute('d');
          return;
        }
        const frac = Math.min(1, Math.max(0, (n - min) / (max - min)));
        if (frac > 0) fill.setAttribute('d', arc(frac));
        else fill.removeAttribute('d');
        text.textContent = round(n) + (w.spec.units ? ' ' + w.spec.units : '');
        w.el.dataset.gaugeValue = String(n);
      },
    };
  }

  function chartWidget(w) {
    const sensors = [...new Set([w.spec.sensor, ...(w.spec.sensors || [])].filter(Boolean))];
    const box = el('div', 'chart');
    box.dataset.chart = sensors.join(',');
    w.body.append(box);
    const data = new Map(sensors.map((s) => [s, [[], []]]));
    const palette = [cssVar('--accent', '#0f766e'), '#d97706', '#7c3aed', '#dc2626', '#2563eb', '#059669', '#db2777', '#4b5563'];
    const muted = cssVar('--muted', '#5f6b7a');
    const line = cssVar('--line', '#e1e6ec');
    const axis = { stroke: muted, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1 }, font: '11px system-ui, sans-serif' };
    let chart = null;
    const size = () => ({ width: Math.max(120, box.clientWidth), height: Math.max(80, box.clientHeight - 30) });
    // A range (chart-range.js): aggregated buckets over it; the last hour or day also takes live readings, sliding
    // along, while longer or fixed ranges keep their buckets (a raw reading among hourly averages would mislead).
    const range = w.spec.range;
    const ranges = window.iotcChartRange;
    const live = !range || range === 'hour' || range === 'day';
    if (range) box.dataset.range = typeof range === 'string' ? range : 'custom';
    function draw() {
      // Series of different sensors have different times: join them on one time axis, gaps as nulls.
      const tables = sensors.map((s) => data.get(s));
      // A range's gaps (nulls between buckets) stay gaps: kept through the join, not spanned.
      const joined = sensors.length === 1 ? tables[0] : uPlot.join(tables, range ? tables.map(() => [1]) : undefined);
      box.dataset.points = String(tables.reduce((n, t) => n + t[0].length, 0));
      if (!chart) {
        if (joined[0].length < 1) return;
        chart = new uPlot(
          {
            ...size(),
            series: [{}, ...sensors.map((s, i) => ({ label: s, stroke: palette[i % palette.length], width: 2, spanGaps: !range }))],
            axes: [axis, { ...axis, size: 48 }],
            scales: { x: { time: true } },
            legend: { show: sensors.length > 1 },
          },
          joined,
          box,
        );
        new ResizeObserver(() => {
          const s = size();
          if (s.width !== chart.width || s.height !== chart.height) chart.setSize(s);
        }).observe(box);
      } else {
        chart.setData(joined);
      }
    }
    function add(sensor, time, value) {
      const [xs, ys] = data.get(sensor);
      const x = time / 1000;
      let i = xs.length;
      while (i > 0 && xs[i - 1] > x) i--;
      if (i > 0 && xs[i - 1] === x) return;
      xs.splice(i, 0, x);
      ys.splice(i, 0, value);
      const span = ranges.span(range);
      const keep = span ? xs.findIndex((t) => t >= span[0] / 1000) : xs.length - MAX_POINTS;
      if (keep > 0) {
        xs.splice(0, keep);
        ys.splice(0, keep);
      }
    }
    return {
      sensors,
      range: ranges.span(range) && range,
      reading(r) {
        const n = chartNumber(r.value);
        if (n === null || !data.has(r.sensor) || !live) return;
        add(r.sensor, r.time, n);
        draw();
      },
      /** An aggregated history reply for this chart's range. */
      buckets(sensor, h) {
        if (!data.has(sensor)) return;
        data.set(sensor, ranges.series(h));
        box.dataset.bucket = String(h.bucket);
        box.title = ranges.label(h);
        draw();
      },
      history(sensor, readings) {
        if (!data.has(sensor)) return;
        for (const r of readings) {
          const n = chartNumber(r.value);
          if (n !== null) add(sensor, r.time, n);
        }
        draw();
      },
    };
  }

  function switchWidget(w) {
    const row = el('div', 'switch-row');
    const button = el('button', 'switch');
    button.type = 'button';
    button.setAttribute('role', 'switch');
    button.setAttribute('aria-checked', 'false');
    button.setAttribute('aria-label', 'Switch ' + (w.spec.title || w.spec.sensor));
    button.dataset.switch = w.spec.sensor;
    row.append(button);
    w.body.append(row);
    w.controls.push(button);
    let last = null;
    // Writes back the kind of value the device uses: true/false, 1/0 or "on"/"off".
    function next() {
      const on = !isOn(last);
      if (typeof last === 'number') return on ? 1 : 0;
      if (typeof last === 'string') return /^(on|off)$/.test(last) ? (on ? 'on' : 'off') : /^(ON|OFF)$/.test(last) ? (on ? 'ON' : 'OFF') : on;
      return on;
    }
    button.addEventListener('click', () => writing(w, button, () => w.put(next())));
    return {
      reading(r) {
        last = r.value;
        button.setAttribute('aria-checked', String(isOn(r.value)));
      },
    };
  }

  function sliderWidget(w) {
    const min = w.spec.min ?? 0;
    const max = w.spec.max ?? 100;
    const input = el('input', 'slider');
    Object.assign(input, { type: 'range', min: String(min), max: String(max), step: String(w.spec.step ?? 1), value: String(min) });
    input.setAttribute('aria-label', w.spec.title || w.spec.sensor);
    const out = el('div', 'value value-small', '–');
    w.body.append(out, input);
    w.controls.push(input);
    const show = (n) => (out.textContent = round(n) + (w.spec.units ? ' ' + w.spec.units : ''));
    input.addEventListener('input', () => show(Number(input.value)));
    input.addEventListener('change', () => writing(w, input, () => w.put(Number(input.value))));
    return {
      reading(r) {
        const n = chartNumber(r.value);
        if (n === null) return;
        if (document.activeElement !== input) input.value = String(n);
        show(n);
      },
    };
  }

  function buttonWidget(w) {
    const button = el('button', 'btn dash-button', w.spec.title || 'Send');
    button.type = 'button';
    const meta = el('p', 'meta');
    w.body.append(button, meta);
    w.controls.push(button);
    const payload = w.spec.payload === undefined ? true : w.spec.payload;
    button.addEventListener('click', () => writing(w, button, () => w.put(payload)));
    return {
      reading(r) {
        meta.replaceChildren(document.createTextNode('Last: ' + format(r.value) + ' · '), ago(r.time));
      },
    };
  }

  function textWidget(w) {
    const form = el('form', 'dash-text');
    const input = el('input');
    input.name = 'value';
    input.maxLength = 1000;
    input.setAttribute('aria-label', w.spec.title || w.spec.sensor);
    const send = el('button', 'btn btn-small', 'Send');
    send.type = 'submit';
    form.append(input, send);
    const meta = el('p', 'meta');
    w.body.append(form, meta);
    w.controls.push(input, send);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      writing(w, send, async () => {
        await w.put(input.value);
        input.value = '';
      });
    });
    return {
      reading(r) {
        meta.replaceChildren(document.createTextNode(format(r.value) + ' · '), ago(r.time));
      },
    };
  }

  function statusWidget(w) {
    const pill = el('span', 'pill');
    const dot = el('span', 'dot');
    const text = el('span', '', '…');
    pill.append(dot, text);
    const seen = el('p', 'meta', '');
    w.body.append(pill, seen);
    return {
      status(d) {
        pill.classList.toggle('pill-on', d.online);
        pill.classList.toggle('pill-off', !d.online);
        text.textContent = d.online ? 'Online' : 'Offline';
        w.el.dataset.online = String(d.online);
        seen.replaceChildren(d.lastSeen ? document.createTextNode('Last seen ') : document.createTextNode('Never connected'));
        if (d.lastSeen) seen.append(ago(d.lastSeen));
      },
    };
  }

  function imageWidget(w) {
    const img = el('img', 'dash-image');
    img.alt = w.spec.title || w.spec.sensor || 'image';
    const placeholder = el('p', 'dash-placeholder muted', 'No image yet');
    placeholder.hidden = true;
    w.body.append(img, placeholder);
    const base = w.spec.url || '/api/v1/devices/' + encodeURIComponent(w.spec.device) + '/blobs/' + encodeURIComponent(w.spec.sensor);
    img.addEventListener('error', () => {
      img.hidden = true;
      placeholder.hidden = false;
    });
    img.addEventListener('load', () => {
      img.hidden = false;
      placeholder.hidden = true;
    });
    const load = (stamp) => (img.src = base + (stamp ? (base.includes('?') ? '&' : '?') + 't=' + stamp : ''));
    load(0);
    return {
      // A new chunk for the sensor: fetch the picture again.
      reading(r) {
        if (!w.spec.url) load(r.time);
      },
    };
  }

  window.iotcWidgets = {
    make: { value: valueWidget, gauge: gaugeWidget, chart: chartWidget, switch: switchWidget, slider: sliderWidget, button: buttonWidget, text: textWidget, status: statusWidget, image: imageWidget },
    chartNumber,
    format,
  };
})();
