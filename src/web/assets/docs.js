// Docs page: example tabs, the key status line, and the HTTP API reference when the server has one.
'use strict';

(() => {
  const docs = document.getElementById('docs');
  if (!docs) return;

  const tabs = docs.querySelector('[data-tabs]');
  const panels = [...docs.querySelectorAll('[data-panel]')];
  function select(id) {
    for (const tab of tabs.querySelectorAll('[data-tab]')) tab.setAttribute('aria-selected', String(tab.dataset.tab === id));
    for (const panel of panels) panel.hidden = panel.dataset.panel !== id;
    try {
      localStorage.setItem('iotc-docs-tab', id);
    } catch {}
  }
  if (tabs && panels.length) {
    tabs.classList.add('ready');
    tabs.addEventListener('click', (event) => {
      const tab = event.target.closest('[data-tab]');
      if (tab) select(tab.dataset.tab);
    });
    let initial = panels[0].dataset.panel;
    try {
      const saved = localStorage.getItem('iotc-docs-tab');
      if (saved && panels.some((p) => p.dataset.panel === saved)) initial = saved;
    } catch {}
    select(initial);
  }

  const status = docs.querySelector('[data-key-status]');
  const filled = docs.querySelectorAll('.key-slot.filled').length;
  if (status && filled) {
    status.textContent = 'Your device id and key are filled in below. The key stays in this browser tab only; keep it secret.';
    status.classList.add('alert', 'alert-success');
  }

  // The HTTP API describes itself at /api/openapi.json; list its routes when this server has it.
  fetch('/api/openapi.json', { headers: { Accept: 'application/json' } })
    .then((res) => (res.ok ? res.json() : null))
    .then((spec) => {
      if (!spec || typeof spec.paths !== 'object') return;
      const rows = docs.querySelector('[data-openapi-rows]');
      for (const [path, item] of Object.entries(spec.paths)) {
        for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
          const op = item && item[method];
          if (!op) continue;
          const tr = document.createElement('tr');
          const m = document.createElement('td');
          const b = document.createElement('b');
          b.textContent = method.toUpperCase();
          m.append(b);
          const p = document.createElement('td');
          const code = document.createElement('code');
          code.textContent = path;
          p.append(code);
          const d = document.createElement('td');
          d.textContent = op.summary || op.description || '';
          tr.append(m, p, d);
          rows.append(tr);
        }
      }
      if (rows.children.length) {
        docs.querySelector('[data-openapi]').hidden = false;
        docs.querySelector('[data-openapi-toc]').hidden = false;
      }
    })
    .catch(() => {});
})();
