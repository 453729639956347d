import type { FastifyInstance } from 'fastify';
import { assetUrl } from './assets.js';
import { html } from './html.js';
import { layout } from './pages/layout.js';

/** The files of the app shell: cached by the service worker when it installs, so the hub opens offline. */
const SHELL_ASSETS = ['app.css', 'app.js', 'pwa.js', 'favicon.svg', 'icon-192.png', 'icon-512.png'];
export const OFFLINE_PATH = '/offline';

/** The web app manifest: what a phone needs to add the hub to its home screen. */
export function manifest() {
  return {
    id: '/',
    name: 'IOTcommunicate',
    short_name: 'IOTc',
    description: 'Your devices, their values and switches: the self-hosted IoT hub.',
    start_url: '/dashboards',
    scope: '/',
    display: 'standalone',
    background_color: '#f5f7fa',
    theme_color: '#0f766e',
    icons: [
      { src: assetUrl('icon-192.png'), sizes: '192x192', type: 'image/png', purpose: 'any' },
      { src: assetUrl('icon-512.png'), sizes: '512x512', type: 'image/png', purpose: 'any' },
      { src: assetUrl('icon-maskable-512.png'), sizes: '512x512', type: 'image/png', purpose: 'maskable' },
    ],
  };
}

/**
 * The service worker, with this build's asset URLs written in: a new build is a new worker, which replaces
 * the old cache. Pages always come from the network (they are live and per user, never cached); when the
 * network is down a navigation gets the cached offline page. Versioned assets come from the cache first.
 */
function serviceWorker(): string {
  const cacheName = `iotc-shell-${assetUrl('').split('/')[2]}`;
  const shell = [OFFLINE_PATH, ...SHELL_ASSETS.map(assetUrl)];
  return `'use strict';
const CACHE = ${JSON.stringify(cacheName)};
const SHELL = ${JSON.stringify(shell)};
self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('iotc-shell-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});
self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (req.mode === 'navigate') {
    event.respondWith(fetch(req).catch(() => caches.match(${JSON.stringify(OFFLINE_PATH)})));
    return;
  }
  if (url.pathname.startsWith('/assets/')) {
    event.respondWith(caches.match(req).then((hit) => hit || fetch(req).then((res) => {
      if (res.ok) { const copy = res.clone(); caches.open(CACHE).then((c) => c.put(req, copy)); }
      return res;
    })));
  }
});
`;
}

/** The manifest, the service worker (at the root, so it may control every page) and the offline page. */
export function registerPwa(app: FastifyInstance): void {
  const manifestText = JSON.stringify(manifest());
  const workerText = serviceWorker();
  const offlinePage = layout({
    title: 'Offline',
    viewer: null,
    body: html`<section class="card empty offline-page" data-offline-page>
  <h1>You are offline</h1>
  <p>IOTcommunicate cannot reach your hub right now: this phone or computer has no network, or the hub is not running.</p>
  <p>Values, charts and switches need the hub. This page tries again as soon as the network is back.</p>
  <p><a class="btn" href="/dashboards" data-retry>Try again</a></p>
</section>`,
  }).text;

  app.get('/manifest.webmanifest', async (_req, reply) =>
    reply.type('application/manifest+json; charset=utf-8').header('Cache-Control', 'no-cache').send(manifestText),
  );
  app.get('/sw.js', async (_req, reply) =>
    // no-cache: the browser checks for a new worker (a new build) on every visit.
    reply.type('text/javascript; charset=utf-8').header('Cache-Control', 'no-cache').send(workerText),
  );
  app.get(OFFLINE_PATH, async (_req, reply) => reply.type('text/html; charset=utf-8').header('Cache-Control', 'no-cache').send(offlinePage));
}
