// A "browser" for `hoopctl login --browser-cmd "node /abs/path/tests/oidc/browser.mjs"`.
//
// Takes the authorization URL as its LAST argument, opens it in a headless Debian chromium
// (through playwright-core, with a fresh profile), signs in as alice, approves the consent
// screen (BROWSER_ACTION=deny: denies it; deny-login: cancels the login screen), waits for the
// redirect to the loopback callback, prints the callback page's text to stderr and exits 0.
// Exits non-zero with a message on stderr on any failure, and after 60 s at most.
//
// It prints the callback URL with parameter values hidden (`code=…`), except `error`,
// `error_description` and `iss`, so authorization codes never reach logs.

import {
  ACTION, bodyText, failOnError, handleInteraction, runInBrowser, say,
} from './lib.mjs';

const NAME = 'browser.mjs';
const target = process.argv[process.argv.length - 1];
let authUrl;
try {
  authUrl = new URL(target);
  if (process.argv.length < 3 || !/^https?:$/.test(authUrl.protocol)) throw new Error('not http(s)');
} catch {
  say(`${NAME}: usage: node browser.mjs [...] AUTHORIZATION_URL (got ${JSON.stringify(process.argv.slice(2))})`);
  process.exit(2);
}
if (!['127.0.0.1', 'localhost', '[::1]'].includes(authUrl.hostname)) {
  say(`${NAME}: refusing to open a non-loopback URL: ${authUrl.origin}`);
  process.exit(2);
}

function describeCallback(u) {
  const shown = new Set(['error', 'error_description', 'iss']);
  const parts = [...u.searchParams.keys()].map((k) => (shown.has(k) ? `${k}=${u.searchParams.get(k)}` : `${k}=…`));
  return `${u.origin}${u.pathname}${parts.length ? `?${parts.join('&')}` : ''}`;
}

await runInBrowser(NAME, async (page) => {
  say(`${NAME}: opening ${authUrl.origin}${authUrl.pathname} (action: ${ACTION})`);
  await page.goto(authUrl.href, { waitUntil: 'load' });
  for (let step = 0; step < 10; step += 1) {
    const here = page.url();
    if (here.startsWith('chrome-error:')) {
      throw new Error('the browser could not load the page (is the callback listener still up?)');
    }
    const u = new URL(here);
    if (u.origin !== authUrl.origin) {
      // Landed on the loopback redirect URI: hoopctl's listener answered.
      say(`${NAME}: callback reached: ${describeCallback(u)}`);
      await page.waitForLoadState('load');
      const text = await bodyText(page);
      say(`${NAME}: callback page says:\n${text}`);
      return;
    }
    await failOnError(page, 'authorization');
    if (!(await handleInteraction(page, NAME))) {
      throw new Error(`unexpected page at ${u.pathname}: ${(await bodyText(page)).slice(0, 500)}`);
    }
  }
  throw new Error('too many steps without reaching the callback');
});
