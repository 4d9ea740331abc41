/// <reference lib="dom" />

// A real browser for the dashboard's tests and benchmark: Debian's chromium,
// headless, driven by playwright-core (which downloads no browser of its own).

import { existsSync } from 'node:fs';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium`);
  // --no-sandbox: the tests run as root, where chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

/** A fresh context (its own sessionStorage, so its own login) that trusts the cluster's self-signed CA. */
export function newContext(browser: Browser): Promise<BrowserContext> {
  return browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1400, height: 900 } });
}

/** Opens the dashboard at base (https://127.0.0.1:PORT) and logs in with token; resolves on the overview. */
export async function login(page: Page, base: string, token: string): Promise<void> {
  await page.goto(`${base}/dashboard/`);
  await page.getByLabel('Bearer token').fill(token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Cluster overview' }).waitFor();
}

/** Goes to a dashboard route by its hash: the app routes in place, no page load. */
export async function go(page: Page, hash: string): Promise<void> {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
}
