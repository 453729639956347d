// Every page: copy buttons, live relative times, device keys kept for this tab only.
'use strict';

(() => {
  const KEY_PATTERN = /^[A-Z0-9]{15}$/;
  const keyName = (device) => 'iotc-key:' + device;

  function ago(ms) {
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 5) return 'just now';
    if (s < 60) return s + ' s ago';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' min ago';
    const h = Math.floor(m / 60);
    if (h < 48) return h + ' h ago';
    return Math.floor(h / 24) + ' days ago';
  }

  function refreshTimes() {
    for (const el of document.querySelectorAll('[data-ago]')) {
      const ms = Number(el.getAttribute('data-ago'));
      if (Number.isFinite(ms) && ms > 0) el.textContent = ago(ms);
    }
  }

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch {}
    }
    // Plain http on a LAN address has no Clipboard API: select the text and copy it the old way.
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.style.position = 'fixed';
    area.style.opacity = '0';
    document.body.append(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {}
    area.remove();
    return ok;
  }

  document.addEventListener('click', async (event) => {
    const button = event.target.closest('button.copy');
    if (!button) return;
    const target = document.getElementById(button.dataset.copy);
    if (!target) return;
    const label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    const ok = await copyText(target.textContent.trim());
    button.textContent = ok ? 'Copied' : 'Select and copy';
    button.classList.toggle('done', ok);
    if (!ok) window.getSelection().selectAllChildren(target);
    setTimeout(() => {
      button.textContent = label;
      button.classList.remove('done');
    }, 1600);
  });

  // Forms that cannot be undone (revoking a token) ask first.
  document.addEventListener('submit', (event) => {
    const form = event.target.closest('form[data-confirm]');
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  // A schedule made here runs in its owner's time zone (this browser's) unless another is typed.
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone) for (const tz of document.querySelectorAll('form[data-rule-form] input[name="tz"]')) tz.placeholder = zone;
  document.addEventListener('submit', (event) => {
    const form = event.target.closest('form[data-rule-form]');
    const every = form && form.elements.namedItem('every');
    const tz = form && form.elements.namedItem('tz');
    if (zone && every && tz && every.value.trim() && !tz.value.trim()) tz.value = zone;
  });

  document.addEventListener('change', (event) => {
    const select = event.target.closest('[data-autosubmit]');
    if (select && select.form) select.form.submit();
  });

  // A key is shown once by the server; remember it in this tab so the docs and device page can fill it in.
  const fresh = document.querySelector('[data-new-key]');
  if (fresh && KEY_PATTERN.test(fresh.dataset.key)) sessionStorage.setItem(keyName(fresh.dataset.deviceId), fresh.dataset.key);

  // The docs page gets the key in the URL fragment (#key=...), which never reaches the server.
  const docs = document.getElementById('docs');
  const fromHash = /^#key=([A-Z0-9]{15})$/.exec(location.hash);
  if (docs && docs.dataset.device && fromHash) {
    sessionStorage.setItem(keyName(docs.dataset.device), fromHash[1]);
    history.replaceState(null, '', location.pathname + location.search);
  }

  window.iotcFillKeys = () => {
    let filled = 0;
    for (const slot of document.querySelectorAll('.key-slot[data-device]')) {
      const key = sessionStorage.getItem(keyName(slot.dataset.device));
      if (key && KEY_PATTERN.test(key)) {
        slot.textContent = key;
        slot.classList.add('filled');
        filled++;
      }
    }
    return filled;
  };
  window.iotcFillKeys();

  // The new-key page, reloaded: the server no longer has the key; this tab may (it never asks for a new one).
  if (fresh && !fresh.dataset.key) {
    const kept = fresh.querySelector('#device-key .key-slot.filled');
    const gone = fresh.querySelector('[data-key-gone]');
    const keptNote = fresh.querySelector('[data-key-kept]');
    if (kept && gone && keptNote) {
      gone.hidden = true;
      keptNote.hidden = false;
    }
  }

  refreshTimes();
  setInterval(refreshTimes, 1000);
  window.iotcAgo = ago;
})();
