/** Real headless Chromium (Debian's package) for end-to-end tests; no browser download. */
import fs from 'node:fs';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Whether Chromium is installed here. Absent: prints a notice and returns false (skip), or throws when
 * IOTC_REQUIRE_SERVICES=1 (as CI sets it).
 */
export function chromiumAvailable(): boolean {
  if (fs.existsSync(CHROMIUM_PATH)) return true;
  if (process.env.IOTC_REQUIRE_SERVICES === '1') throw new Error(`Chromium is required (IOTC_REQUIRE_SERVICES=1) but ${CHROMIUM_PATH} is missing: apt-get install chromium`);
  console.log(`# notice: ${CHROMIUM_PATH} not found (apt-get install chromium); skipping browser tests`);
  return false;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}
