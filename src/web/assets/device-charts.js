// Device page charts: a line chart (uPlot) per numeric sensor, drawn once it has two points, fed by the history
// the page asks for and by live readings, in name order below the cards. device.js wires it with its sensors.
'use strict';

(() => {
  const MAX_POINTS = 500;
  const CHART_HEIGHT = 200;

  const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);
  /** A value as a point on a chart: numbers, and numeric strings ("22" from the original clients' prompts). */
  function chartNumber(v) {
    if (isNumber(v)) return v;
    if (typeof v !== 'string' || !/^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(v)) return null;
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }
  const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  /** chartGrid: where chart cards go; sensors: the page's sensor states by name. Returns { redraw, addPoint, loadHistory }. */
  window.iotcDeviceCharts = (chartGrid, sensors) => {
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

    return { redraw, addPoint, loadHistory };
  };
  Object.assign(window.iotcDeviceCharts, { MAX_POINTS, chartNumber });
})();
