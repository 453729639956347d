// Dashboard widget form: adds a widget or, opened from a widget's Edit control, changes that widget's settings in
// place (same id, place and size). An edit is saved before it is shown: the hub checks it with the same schema as
// any dashboard change, and its refusal is said in the form, the widget left as it was. dashboard.js wires it.
'use strict';

(() => {
  const SIZES = { value: [3, 2], gauge: [3, 3], chart: [6, 3], switch: [3, 2], slider: [3, 2], button: [3, 2], text: [4, 2], status: [3, 2], image: [4, 3] };
  const num = (v) => (v.trim() === '' ? undefined : Number(v));

  /** board: { root, devices, widgets, add(spec), saveWidget(spec), replace(w, spec) }; returns { open(w), close() }. */
  window.iotcDashboardForm = (board) => {
    const { root, devices, widgets } = board;
    const form = root.querySelector('[data-add-form]');
    const f = form.elements;
    const status = root.querySelector('[data-add-status]');
    const heading = root.querySelector('[data-form-heading]');
    const submit = form.querySelector('button[type=submit]');
    const cancel = form.querySelector('[data-edit-cancel]');
    const sensorList = root.querySelector('#w-sensors');
    const ranges = window.iotcChartRange;
    /** The widget being edited, or null while the form adds one. */
    let editing = null;

    function say(text, ok) {
      status.textContent = text;
      status.className = 'form-status ' + (ok ? 'ok' : 'bad');
    }

    function showFields() {
      const type = f.type.value;
      for (const field of form.querySelectorAll('[data-for]')) field.hidden = !field.dataset.for.split(' ').includes(type) || (field.hasAttribute('data-custom-range') && f.range.value !== 'custom');
      const dev = devices.get(f.device.value);
      sensorList.replaceChildren(...(dev ? dev.sensors : []).map((s) => Object.assign(document.createElement('option'), { value: s })));
    }
    form.addEventListener('change', showFields);
    showFields();

    /** The widget the form describes, without its place; or null having said what is wrong. */
    function read() {
      const type = f.type.value;
      const spec = { type, device: f.device.value };
      const sensor = f.sensor.value.trim();
      if (sensor) spec.sensor = sensor;
      if (f.title.value.trim()) spec.title = f.title.value.trim();
      if (type === 'chart') {
        const more = f.more.value.split(',').map((s) => s.trim()).filter(Boolean);
        if (more.length) spec.sensors = more;
        if (f.range.value === 'custom') {
          const from = ranges.fromLocal(f.from.value);
          const to = ranges.fromLocal(f.to.value);
          if (Number.isNaN(from) || Number.isNaN(to) || from >= to) {
            say(Number.isNaN(from) || Number.isNaN(to) ? 'Pick both dates of the range.' : 'The start must be before the end.', false);
            return null;
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
        say('Enter the sensor this widget shows or writes, e.g. temp.', false);
        return null;
      }
      return spec;
    }

    /** The form showing a widget's settings; those it does not have at their defaults. */
    function fill(spec) {
      form.reset();
      const set = (name, value) => value !== undefined && value !== null && (f[name].value = String(value));
      set('type', spec.type);
      set('device', spec.device);
      set('sensor', spec.sensor);
      set('more', spec.sensors && spec.sensors.join(', '));
      set('title', spec.title);
      for (const name of ['min', 'max', 'step', 'units', 'url']) set(name, spec[name]);
      // Written back as JSON, a payload reads back as the same value ("open" stays a string).
      if (spec.payload !== undefined) set('payload', JSON.stringify(spec.payload));
      if (spec.range && typeof spec.range === 'object') {
        set('range', 'custom');
        set('from', ranges.toLocal(spec.range.from));
        set('to', ranges.toLocal(spec.range.to));
      } else set('range', spec.range || '');
      showFields();
    }

    function mode(w) {
      if (editing) editing.el.classList.remove('being-edited');
      editing = w;
      if (w) w.el.classList.add('being-edited');
      form.dataset.mode = w ? 'edit' : 'add';
      heading.textContent = w ? 'Edit widget' : 'Add a widget';
      submit.textContent = w ? 'Save widget' : 'Add widget';
      cancel.hidden = !w;
      // A widget keeps its type: its place and size were made for it. Another type is another widget.
      f.type.disabled = !!w;
    }

    function open(w) {
      mode(w);
      fill(w.spec);
      say('', true);
      form.scrollIntoView({ block: 'nearest' });
      (f.sensor.closest('[hidden]') ? f.title : f.sensor).focus();
    }

    /** Back to adding, with the form cleared (and what it last said kept, unless `quiet`). */
    function close(quiet) {
      if (!editing) return;
      mode(null);
      form.reset();
      showFields();
      if (quiet) say('', true);
    }
    cancel.addEventListener('click', () => close(true));

    const nameOf = (spec) => spec.title || spec.sensor || spec.type;

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const fields = read();
      if (!fields) return;
      if (!editing) {
        const [w, h] = SIZES[fields.type];
        const bottom = Math.max(0, ...[...widgets.values()].map((x) => x.spec.y + x.spec.h));
        const spec = { id: 'w' + Math.random().toString(36).slice(2, 10), ...fields, x: 0, y: bottom, w, h };
        say('Added ' + nameOf(spec) + '.', true);
        board.add(spec);
        return;
      }
      const w = editing;
      const spec = { id: w.spec.id, ...fields, x: w.spec.x, y: w.spec.y, w: w.spec.w, h: w.spec.h };
      submit.disabled = true;
      say('Saving…', true);
      try {
        await board.saveWidget(spec);
      } catch (err) {
        // The hub names each field as it sits in the whole list ("widgets.3.range.from: …"): this form is that widget.
        say('Not saved: ' + String(err.message).replace(/(^|; )widgets\.\d+\./g, '$1'), false);
        return;
      } finally {
        submit.disabled = false;
      }
      if (widgets.get(spec.id) === w) board.replace(w, spec);
      say('Saved ' + nameOf(spec) + '.', true);
      close();
    });

    return { open, close, editing: () => editing };
  };
})();
