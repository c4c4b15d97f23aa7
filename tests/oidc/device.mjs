// The user side of the OAuth device flow (RFC 8628) against provider.mjs:
//
//   node tests/oidc/device.mjs VERIFICATION_URI USER_CODE
//
// Opens VERIFICATION_URI (or verification_uri_complete) in a headless Debian chromium, enters
// USER_CODE if asked, confirms the device, signs in as alice and approves the consent screen,
// then prints the final page's text to stderr and exits 0 once the provider says the sign-in
// succeeded.
//
// BROWSER_ACTION=deny        Deny on the consent screen (the device then gets access_denied)
// BROWSER_ACTION=deny-device Abort on the device confirmation screen (also access_denied)
// BROWSER_ACTION=deny-login  Cancel on the login screen
// With a deny action it exits 0 once the provider has shown the page that follows the denial.
// Exits non-zero with a message on stderr on any failure, and after 60 s at most.

import {
  ACTION, bodyText, clickAndWait, failOnError, handleInteraction, pageKind, runInBrowser, say,
} from './lib.mjs';

const NAME = 'device.mjs';
const [uri, userCode] = process.argv.slice(2);
let verification;
try {
  verification = new URL(uri);
  if (!userCode) throw new Error('no user code');
} catch {
  say(`${NAME}: usage: node device.mjs VERIFICATION_URI USER_CODE (got ${JSON.stringify(process.argv.slice(2))})`);
  process.exit(2);
}
if (!['127.0.0.1', 'localhost', '[::1]'].includes(verification.hostname)) {
  say(`${NAME}: refusing to open a non-loopback URL: ${verification.origin}`);
  process.exit(2);
}

// The kind of provider page shown, waiting out intermediate pages (GET /device?user_code=...
// answers with a self-submitting form_post page).
async function settledKind(page) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (page.url().startsWith('chrome-error:')) throw new Error('the browser could not load the page');
    const kind = await pageKind(page);
    if (kind || Date.now() > deadline) return kind;
    await page.waitForTimeout(200);
  }
}

const DENIES = new Set(['deny', 'deny-device', 'deny-login']);

await runInBrowser(NAME, async (page) => {
  say(`${NAME}: opening ${verification.origin}${verification.pathname} (action: ${ACTION})`);
  await page.goto(verification.href, { waitUntil: 'load' });
  let denied = false;
  let codeEntered = false;
  for (let step = 0; step < 12; step += 1) {
    const kind = await settledKind(page);
    if (kind === 'device-success') {
      say(`${NAME}: done:\n${await bodyText(page)}`);
      if (DENIES.has(ACTION)) throw new Error('the provider reported success although the browser denied');
      return;
    }
    if (denied) {
      // After a denial the provider shows an error page or the code input page again.
      say(`${NAME}: denied; the provider says:\n${await bodyText(page)}`);
      return;
    }
    await failOnError(page, 'device flow');
    if (kind === 'device-input') {
      const message = await page.innerText('#message');
      if (codeEntered) throw new Error(`the provider rejected the user code: ${message}`);
      say(`${NAME}: code input screen: entering ${userCode}`);
      await page.fill('input[name=user_code]', userCode);
      codeEntered = true;
      await clickAndWait(page, '#device-continue');
      continue;
    }
    if (kind === 'device-confirm') {
      const shown = await page.innerText('#user-code');
      if (ACTION === 'deny-device') {
        say(`${NAME}: confirm screen (code ${shown}): Abort`);
        denied = true;
        await clickAndWait(page, '#device-abort');
      } else {
        say(`${NAME}: confirm screen (code ${shown}): Continue`);
        await clickAndWait(page, '#device-confirm');
      }
      continue;
    }
    if (kind === 'consent' && ACTION === 'deny') denied = true;
    if (kind === 'login' && ACTION === 'deny-login') denied = true;
    if (!(await handleInteraction(page, NAME))) {
      throw new Error(`unexpected page at ${new URL(page.url()).pathname}: ${(await bodyText(page)).slice(0, 500)}`);
    }
  }
  throw new Error('too many steps without finishing the device sign-in');
});
