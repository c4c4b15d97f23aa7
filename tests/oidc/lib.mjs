// Shared by browser.mjs and device.mjs: a headless Debian chromium through playwright-core
// that can reach 127.0.0.1 (and localhost / [::1]) only, and helpers to drive the pages of
// provider.mjs (login, consent, device code) like a person would.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

export const TIMEOUT_MS = Number(process.env.BROWSER_TIMEOUT_MS || 60_000);
export const USERNAME = process.env.OIDC_USERNAME || 'alice';
export const PASSWORD = process.env.ALICE_PASSWORD || 'wonderland';
// BROWSER_ACTION: "approve" (default), "deny" (Deny on the consent screen),
// "deny-login" (Cancel on the login screen), and for device.mjs also "deny-device"
// (Abort on the device confirmation screen).
export const ACTION = process.env.BROWSER_ACTION || 'approve';
const EXECUTABLE = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export const say = (msg) => process.stderr.write(`${msg}\n`);

/** Runs `body(page)` in a fresh headless chromium; exits the process with its result. */
export async function runInBrowser(name, body) {
  const profile = mkdtempSync(join(tmpdir(), 'hoopctl-chromium-'));
  let context;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    say(`${name}: timed out after ${TIMEOUT_MS / 1000}s`);
    const closed = context ? context.close().catch(() => {}) : Promise.resolve();
    Promise.race([closed, new Promise((r) => { setTimeout(r, 3_000); })]).finally(() => {
      cleanup(profile);
      process.exit(3);
    });
  }, TIMEOUT_MS);
  let code = 0;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: EXECUTABLE,
      headless: true,
      chromiumSandbox: false,
      timeout: 30_000,
      // Inside a test's dbus-run-session: --password-store=basic keeps chromium's own secrets
      // out of the test keyring; NO_AT_BRIDGE=1 asks GTK to leave the accessibility bus alone.
      env: { ...process.env, NO_AT_BRIDGE: '1' },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
        '--disable-sync',
        '--no-proxy-server',
        '--password-store=basic',
        '--disable-features=Translate,OptimizationHints,MediaRouter',
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost, EXCLUDE [::1]',
      ],
    });
    // Nothing but loopback, whatever a page links to.
    await context.route('**/*', (route) => {
      const { protocol, hostname } = new URL(route.request().url());
      if ((protocol === 'http:' || protocol === 'https:') && !LOOPBACK.has(hostname)) {
        say(`${name}: blocked a request to ${hostname}`);
        return route.abort('blockedbyclient');
      }
      return route.continue();
    });
    context.setDefaultTimeout(30_000);
    const page = context.pages()[0] || await context.newPage();
    await body(page);
  } catch (err) {
    if (timedOut) return; // the timer reports and exits
    say(`${name}: ${err?.message || err}`);
    code = 1;
  } finally {
    if (!timedOut) clearTimeout(timer);
    try { await context?.close(); } catch { /* already gone */ }
    cleanup(profile);
  }
  process.exit(code);
}

function cleanup(profile) {
  try { rmSync(profile, { recursive: true, force: true }); } catch { /* best effort */ }
}

/** The `data-page` marker of provider.mjs pages, or null for other pages. */
export async function pageKind(page) {
  try {
    return await page.evaluate(() => document.body?.dataset?.page ?? null);
  } catch {
    return null;
  }
}

export async function bodyText(page) {
  try {
    return (await page.innerText('body', { timeout: 5_000 })).trim();
  } catch {
    return '';
  }
}

/** Clicks `selector` and waits for the main frame's next document to load. */
export async function clickAndWait(page, selector) {
  const nav = page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame() });
  await page.click(selector);
  await nav;
  await page.waitForLoadState('load');
}

/** Fails with the text of a provider error page. */
export async function failOnError(page, what) {
  const kind = await pageKind(page);
  if (kind === 'error' || kind === 'not-found') {
    throw new Error(`${what}: the provider showed an error page: ${(await bodyText(page)).replace(/\s+/g, ' ')}`);
  }
}

/** Handles one login or consent screen; returns true if it acted. */
export async function handleInteraction(page, name) {
  const kind = await pageKind(page);
  if (kind === 'login') {
    if (ACTION === 'deny-login') {
      say(`${name}: login screen: Cancel`);
      await clickAndWait(page, '#deny');
      return true;
    }
    if (await page.$('#error')) {
      throw new Error(`login rejected: ${await page.innerText('#error')}`);
    }
    say(`${name}: login screen: signing in as ${USERNAME}`);
    await page.fill('#login', USERNAME);
    await page.fill('#password', PASSWORD);
    await clickAndWait(page, '#submit');
    return true;
  }
  if (kind === 'consent') {
    if (ACTION === 'deny') {
      say(`${name}: consent screen: Deny`);
      await clickAndWait(page, '#deny');
    } else {
      say(`${name}: consent screen: Allow (scopes: ${await page.innerText('#scopes')})`);
      await clickAndWait(page, '#allow');
    }
    return true;
  }
  return false;
}
