// Every page: registers the service worker (the hub installs as an app and opens offline) and shows a clear
// banner while the browser has no network.
'use strict';

(() => {
  if ('serviceWorker' in navigator && window.isSecureContext) {
    navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch(() => {});
  }
  let banner = null;
  function show() {
    if (navigator.onLine) {
      if (banner) banner.hidden = true;
      return;
    }
    if (!banner) {
      banner = document.createElement('p');
      banner.className = 'offline-banner';
      banner.setAttribute('role', 'status');
      banner.dataset.offlineBanner = '';
      banner.textContent = 'Offline: no network. Values shown are the last ones received; controls are off until the hub is reachable again.';
      document.body.prepend(banner);
    }
    banner.hidden = false;
  }
  window.addEventListener('online', show);
  window.addEventListener('offline', show);
  show();
  // The offline page (the service worker's answer when the hub did not answer): a LAN may be "online" while the
  // hub is down, so ask the hub itself every few seconds, and go back to the page the user wanted once it answers.
  if (document.querySelector('[data-offline-page]')) {
    setInterval(async () => {
      try {
        const res = await fetch('/manifest.webmanifest', { cache: 'no-store' });
        if (res.ok) location.reload();
      } catch {}
    }, 3000);
  }
})();
