// The device page's range picker: the latest readings, the last hour … month, or a range of dates picked in the
// browser's time zone; kept in the page's URL (?range=…, or ?range=custom&from=…&to=… as instants), so a reload or
// a shared link charts the same range. Below it, what the dashboard's chart widgets share with the device page:
// a kept range as times, the aggregated request, and buckets as chart data.
'use strict';

(() => {
  /** A datetime-local value is a wall-clock time here; the other way, an instant as this zone's wall clock. */
  const fromLocal = (text) => (text ? new Date(text).getTime() : NaN);
  const toLocal = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60000).toISOString().slice(0, 16);

  /** Wires the picker inside `root`; `changed` runs when another range is to be charted. */
  window.iotcChartRange = (root, changed) => {
    const picker = root.querySelector('[data-range]');
    const customBox = root.querySelector('[data-custom-range]');
    const fromInput = root.querySelector('[data-range-from]');
    const toInput = root.querySelector('[data-range-to]');
    const error = root.querySelector('[data-range-error]');
    const isCustom = () => !!picker && picker.value === 'custom';
    let custom = null;

    /** The range charted now as [from, to] in ms, or null for the latest readings. */
    function range() {
      if (isCustom()) return custom;
      const ms = Number(picker ? picker.value : 0) || 0;
      return ms ? [Date.now() - ms, Date.now()] : null;
    }

    /** The custom dates, or null having said what is wrong with them. */
    function readCustom() {
      const from = fromLocal(fromInput.value);
      const to = fromLocal(toInput.value);
      error.textContent = Number.isNaN(from) || Number.isNaN(to) ? 'Pick both dates.' : from >= to ? 'The start must be before the end.' : '';
      return error.textContent ? null : [from, to];
    }

    function keepInUrl() {
      const q = new URLSearchParams(location.search);
      for (const k of ['range', 'from', 'to']) q.delete(k);
      if (isCustom() && custom) {
        q.set('range', 'custom');
        q.set('from', new Date(custom[0]).toISOString());
        q.set('to', new Date(custom[1]).toISOString());
      } else if (picker.value && !isCustom()) q.set('range', picker.value);
      history.replaceState(null, '', location.pathname + (q.toString() ? '?' + q : ''));
    }

    /** The range the URL names, picked again. */
    function fromUrl() {
      const q = new URLSearchParams(location.search);
      const named = q.get('range');
      if (named === 'custom') {
        const from = Date.parse(q.get('from') || '');
        const to = Date.parse(q.get('to') || '');
        if (Number.isNaN(from) || Number.isNaN(to) || from >= to) return;
        picker.value = 'custom';
        fromInput.value = toLocal(from);
        toInput.value = toLocal(to);
        custom = [from, to];
      } else if (named && [...picker.options].some((o) => o.value === named)) picker.value = named;
      customBox.hidden = !isCustom();
    }

    if (picker) {
      fromUrl();
      picker.addEventListener('change', () => {
        customBox.hidden = !isCustom();
        if (isCustom()) {
          // Starts from the last day, for the dates to be changed from there.
          if (!fromInput.value) fromInput.value = toLocal(Date.now() - 86_400_000);
          if (!toInput.value) toInput.value = toLocal(Date.now());
          fromInput.focus();
          return;
        }
        keepInUrl();
        changed();
      });
      root.querySelector('[data-range-apply]').addEventListener('click', () => {
        custom = readCustom();
        if (!custom) return;
        keepInUrl();
        changed();
      });
    }
    return { range, isCustom };
  };

  /** The ranges a dashboard's chart widget keeps by name (src/core/dashboards.ts), as their length in ms. */
  const PRESETS = { hour: 3_600_000, day: 86_400_000, week: 604_800_000, month: 2_592_000_000, year: 31_536_000_000 };
  Object.assign(window.iotcChartRange, {
    PRESETS,
    fromLocal,
    toLocal,
    /** A kept range (a preset's name, or {from, to}) as [from, to] in ms now, or null for the latest readings. */
    span(kept) {
      if (!kept) return null;
      if (typeof kept === 'object') return [kept.from, kept.to];
      return PRESETS[kept] ? [Date.now() - PRESETS[kept], Date.now()] : null;
    },
    /** The `history` request for a sensor over [from, to]: aggregated buckets, sized by the hub ("auto"). */
    request: (sensor, [from, to]) => ({ method: 'history', sensor, from, to, bucket: 'auto' }),
    /** An aggregated history reply as chart data: the average per bucket; more than two buckets missing between two are a gap. */
    series(h) {
      const xs = [];
      const ys = [];
      let prev = null;
      for (const b of h.buckets) {
        // A null between them makes uPlot break the line there.
        if (prev !== null && b.time - prev > 2 * h.bucket) {
          xs.push((prev + h.bucket) / 1000);
          ys.push(null);
        }
        xs.push(b.time / 1000);
        ys.push(b.avg);
        prev = b.time;
      }
      return [xs, ys];
    },
    /** "168 buckets of 1 h" */
    label: (h) => h.buckets.length + ' buckets of ' + (h.bucket >= 3600000 ? h.bucket / 3600000 + ' h' : h.bucket >= 60000 ? h.bucket / 60000 + ' min' : h.bucket / 1000 + ' s'),
  });
})();
