/**
 * Draws the app icons (PNG) the web app manifest names, from the logo, in headless Chromium: run it after
 * changing the logo (`node --import tsx scripts/make-icons.ts`) and commit the files it writes.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../test/browser.js';

const ASSETS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'web', 'assets');
const MARK = '<circle cx="16" cy="19" r="3" fill="#fff"/><path d="M10.3 13.3a8 8 0 0 1 11.4 0M6.8 9.8a13 13 0 0 1 18.4 0" stroke="#fff" stroke-width="2.4" fill="none" stroke-linecap="round"/>';
// "any": the rounded tile as the favicon; "maskable": the mark inside the central safe zone of a full square.
const ANY = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#0f766e"/>${MARK}</svg>`;
const MASKABLE = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="-8 -8 48 48"><rect x="-8" y="-8" width="48" height="48" fill="#0f766e"/>${MARK}</svg>`;

const browser = await launchChromium();
try {
  for (const [name, svg, size] of [['icon-192.png', ANY, 192], ['icon-512.png', ANY, 512], ['icon-maskable-512.png', MASKABLE, 512]] as const) {
    const page = await browser.newPage({ viewport: { width: size, height: size } });
    await page.setContent(`<html><body style="margin:0;background:transparent">${svg.replace('<svg ', `<svg width="${size}" height="${size}" `)}</body></html>`);
    await page.screenshot({ path: path.join(ASSETS, name), omitBackground: true });
    await page.close();
    console.log(`wrote src/web/assets/${name}`);
  }
} finally {
  await browser.close();
}
