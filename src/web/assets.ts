import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root, found from this file whether it runs from src/ (tsx) or from dist/ (built). */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'src', 'web', 'assets'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('IOTcommunicate: cannot find the web assets folder (src/web/assets) above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** The files of uPlot the pages use, served from its own package: no CDN. */
export const VENDOR_FILES = ['uPlot.iife.min.js', 'uPlot.min.css'];

export interface AssetDirs {
  own: string;
  vendor: string;
  /** Changes whenever any served file changes, so URLs carrying it can be cached forever. */
  version: string;
}

let cached: AssetDirs | null = null;

export function assetDirs(): AssetDirs {
  if (cached) return cached;
  const own = path.join(packageRoot(), 'src', 'web', 'assets');
  const vendor = path.dirname(createRequire(import.meta.url).resolve('uplot'));
  const hash = crypto.createHash('sha256');
  for (const name of fs.readdirSync(own).sort()) hash.update(name).update(fs.readFileSync(path.join(own, name)));
  for (const name of VENDOR_FILES) hash.update(name).update(fs.readFileSync(path.join(vendor, name)));
  cached = { own, vendor, version: hash.digest('hex').slice(0, 12) };
  return cached;
}

export function assetUrl(name: string): string {
  return `/assets/${assetDirs().version}/${name}`;
}
