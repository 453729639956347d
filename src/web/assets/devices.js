// Device list: keeps online state, last seen and latest values fresh without a reload.
'use strict';

(() => {
  const list = document.querySelector('[data-device-list]');
  if (!list) return;
  const MAX_CHIPS = 4;

  const format = (v) => {
    const t = typeof v === 'string' ? v : JSON.stringify(v);
    return t.length > 80 ? t.slice(0, 77) + '…' : t;
  };

  function chips(latest) {
    if (!latest.length) {
      const p = document.createElement('p');
      p.className = 'muted small';
      p.textContent = 'No readings yet';
      return p;
    }
    const ul = document.createElement('ul');
    ul.className = 'chips';
    for (const r of latest.slice(0, MAX_CHIPS)) {
      const li = document.createElement('li');
      const name = document.createElement('span');
      name.className = 'chip-name';
      name.textContent = r.sensor;
      const value = document.createElement('span');
      value.className = 'chip-value';
      value.textContent = format(r.value);
      li.append(name, value);
      ul.append(li);
    }
    if (latest.length > MAX_CHIPS) {
      const li = document.createElement('li');
      li.className = 'muted';
      li.textContent = '+' + (latest.length - MAX_CHIPS) + ' more';
      ul.append(li);
    }
    return ul;
  }

  function update(d) {
    const card = list.querySelector('[data-device="' + d.id + '"]');
    if (!card) return;
    const pill = card.querySelector('[data-status]');
    pill.classList.toggle('pill-on', d.online);
    pill.classList.toggle('pill-off', !d.online);
    pill.querySelector('[data-status-text]').textContent = d.online ? 'Online' : 'Offline';
    if (d.lastSeen) {
      const t = document.createElement('time');
      t.dateTime = new Date(d.lastSeen).toISOString();
      t.setAttribute('data-ago', String(d.lastSeen));
      t.textContent = window.iotcAgo ? window.iotcAgo(d.lastSeen) : t.dateTime;
      card.querySelector('[data-seen-line]').replaceChildren('Last seen ', t);
    }
    card.querySelector('[data-chips]').replaceChildren(chips(d.latest));
    const apps = card.querySelector('[data-apps]');
    if (apps && typeof d.clients === 'number') {
      apps.hidden = d.clients === 0;
      apps.textContent = d.clients + (d.clients === 1 ? ' app' : ' apps') + ' connected';
    }
  }

  let stopped = false;
  async function poll() {
    if (stopped || document.hidden) return;
    try {
      const res = await fetch('/devices.json', { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
      if (res.status === 401) {
        stopped = true;
        return;
      }
      if (!res.ok) return;
      const body = await res.json();
      for (const d of body.devices) update(d);
    } catch {}
  }
  setInterval(poll, 5000);
  document.addEventListener('visibilitychange', poll);
})();
