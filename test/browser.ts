/** Real headless Chromium (Debian's package) for end-to-end tests; no browser download. */
import fs from 'node:fs';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import type { Config } from '../src/config.js';
import { startTestServer } from './helpers.js';
import type { TestServer } from './helpers.js';

export const CHROMIUM_PATH = '/usr/bin/chromium';
/** The password every browser test signs up and logs in with. */
export const PASSWORD = 'correct horse battery';

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

export interface BrowserHub {
  /** What a test takes as its `skip`: false, or why it cannot run here (no Chromium). */
  readonly skip: false | string;
  readonly browser: Browser;
  readonly server: TestServer;
  /** Run after the file's tests, the last added first, while the browser is still open (contexts, folders). */
  readonly cleanups: (() => unknown)[];
  /**
   * Resolves once Chromium and the hub are up. A file's own `before` awaits it first: Node 20 runs a file's
   * top-level `before` hooks side by side, not one after the other.
   */
  ready(): Promise<void>;
}

/**
 * A browser test file's Chromium and hub: registers the hooks that start them before its tests (the hub with
 * `options`, which may be worked out then) and close them after. Without Chromium the hooks do nothing.
 */
export function browserHub(options: Partial<Config> | (() => Promise<Partial<Config>>) = {}): BrowserHub {
  const available = chromiumAvailable();
  let browser: Browser | null = null;
  let server: TestServer | null = null;
  let starting: Promise<void> | null = null;
  const cleanups: (() => unknown)[] = [];
  const ready = () =>
    (starting ??= (async () => {
      if (!available) return;
      browser = await launchChromium();
      server = await startTestServer(typeof options === 'function' ? await options() : options);
    })());
  before(ready);
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
    await browser?.close();
    await server?.stop();
  });
  return {
    skip: available ? false : 'Chromium not installed',
    get browser() {
      return browser!;
    },
    get server() {
      return server!;
    },
    cleanups,
    ready,
  };
}

/** Signs up through the form, as a new user does, and waits for the welcome on the device list. */
export async function signUp(page: Page, base: string, name: string, email: string): Promise<void> {
  await page.goto(`${base}/signup`);
  await page.fill('#f-name', name);
  await page.fill('#f-email', email);
  await page.fill('#f-password', PASSWORD);
  await Promise.all([page.waitForURL(/\/devices\?welcome/), page.click('form[action="/signup"] button[type=submit]')]);
}

/** Logs in through the form and waits for the device list. */
export async function logIn(page: Page, base: string, email: string): Promise<void> {
  await page.goto(`${base}/login`);
  await page.fill('#f-email', email);
  await page.fill('#f-password', PASSWORD);
  await Promise.all([page.waitForURL(/\/devices/), page.click('form[action^="/login"] button[type=submit]')]);
}
