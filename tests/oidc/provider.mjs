// A real OpenID Provider (panva/oidc-provider) for hoopctl's `login` integration tests.
//
//   node tests/oidc/provider.mjs
//
// Listens on 127.0.0.1 only (port from $PORT, default 0 = any free port), plain http, issuer
// `http://127.0.0.1:PORT`. Prints ONE JSON line on stdout when ready, e.g.
//   {"event":"ready","issuer":"http://127.0.0.1:41234","client_id":"hoopctl-cli",...}
// then serves until SIGTERM/SIGINT, or until its stdin (when it is a pipe) closes.
//
// Environment:
//   PORT          port to listen on (default 0: a free one)
//   ACCESS_TTL    access token lifetime in seconds (default 3600)
//   REFRESH_TTL   refresh token lifetime in seconds (default 14 days)
//   ID_TOKEN_TTL  ID token lifetime in seconds (default 3600)
//   DEVICE_TTL    device code lifetime in seconds (default 600)
//   DEVICE_INTERVAL  if set, the device authorization response carries this `interval`
//                 (oidc-provider omits it, so clients fall back to RFC 8628's 5 s; it never
//                 answers slow_down)
//   ALICE_PASSWORD the test account's password (default "wonderland")
//   REDIRECT_URIS comma-separated redirect URIs of the client (default http://127.0.0.1/callback;
//                 for a native client any loopback port matches, RFC 8252 7.3)
//   (the provider allows no clock skew: a token is rejected as soon as its TTL has passed)
//   OIDC_LOG=1    log each request (method, path, status) to stderr
//
// Test-only endpoints (not OIDC):
//   POST /_test/rotate-keys  adds a fresh RS256 signing key that signs from now on; the old key
//                            stays in the JWKS (add ?drop_old=1 to remove old keys). Sessions,
//                            grants and tokens survive. Answers {"kids":[...]} (signing kid first).
//   GET  /_test/health       200 "ok"
//
// Every page this server renders is self-contained: nothing references another host.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { fstatSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const HOST = '127.0.0.1';
const CLIENT_ID = 'hoopctl-cli';
const ACCOUNT = {
  sub: 'alice',
  email: 'alice@example.com',
  email_verified: true,
  name: 'Alice Example',
  preferred_username: 'alice',
};
const PASSWORD = process.env.ALICE_PASSWORD || 'wonderland';

function intEnv(name, dflt) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`provider.mjs: ${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

const PORT = intEnv('PORT', 0);
const ACCESS_TTL = intEnv('ACCESS_TTL', 3600);
const REFRESH_TTL = intEnv('REFRESH_TTL', 14 * 24 * 3600);
const ID_TOKEN_TTL = intEnv('ID_TOKEN_TTL', 3600);
const DEVICE_TTL = intEnv('DEVICE_TTL', 600);
const DEVICE_INTERVAL = intEnv('DEVICE_INTERVAL', 0);
const REDIRECT_URIS = (process.env.REDIRECT_URIS || 'http://127.0.0.1/callback')
  .split(',').map((s) => s.trim()).filter(Boolean);
const LOG = process.env.OIDC_LOG === '1';

const log = (...args) => console.error('[oidc]', ...args);

// ---------------------------------------------------------------- keys

function newSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `k-${randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig' };
}

let keys = [newSigningKey()];
const cookieKeys = [randomBytes(32).toString('base64url')];

// ---------------------------------------------------------------- storage

// In-memory storage shared by every Provider instance of this process, so that
// /_test/rotate-keys (which builds a new instance) keeps sessions, grants and tokens.
// Expired records are kept: the provider checks `exp` itself and answers with the
// precise error (expired_token, "refresh token is expired", ...).
const store = new Map();
const grantMembers = new Map(); // grantId -> Set of keys
const uidIndex = new Map(); // session uid -> key
const userCodeIndex = new Map(); // user code -> key

class SharedMemoryAdapter {
  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload) {
    const key = this.key(id);
    store.set(key, payload);
    if (payload.grantId) {
      if (!grantMembers.has(payload.grantId)) grantMembers.set(payload.grantId, new Set());
      grantMembers.get(payload.grantId).add(key);
    }
    if (this.model === 'Session' && payload.uid) uidIndex.set(payload.uid, key);
    if (payload.userCode) userCodeIndex.set(payload.userCode, key);
  }

  async find(id) { return store.get(this.key(id)); }

  async findByUid(uid) {
    const key = uidIndex.get(uid);
    return key ? store.get(key) : undefined;
  }

  async findByUserCode(userCode) {
    const key = userCodeIndex.get(userCode);
    return key ? store.get(key) : undefined;
  }

  async consume(id) {
    const payload = store.get(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { store.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    const members = grantMembers.get(grantId);
    if (!members) return;
    for (const key of members) {
      if (key.startsWith(`${this.model}:`)) {
        store.delete(key);
        members.delete(key);
      }
    }
  }
}

// ---------------------------------------------------------------- html

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

function page(title, body, id) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;max-width:32em;margin:2em auto}input,button{display:block;margin:.5em 0;font-size:1em}</style>
</head><body data-page="${esc(id)}"><h1>${esc(title)}</h1>
${body}
</body></html>`;
}

// ---------------------------------------------------------------- provider

function configuration() {
  return {
    clients: [{
      client_id: CLIENT_ID,
      client_name: 'hoopctl',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: REDIRECT_URIS,
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      id_token_signed_response_alg: 'RS256',
    }],
    adapter: SharedMemoryAdapter,
    jwks: { keys },
    cookies: { keys: cookieKeys },
    scopes: ['openid', 'email', 'profile', 'offline_access'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
    },
    // Put the scope-granted claims (email, name) into the ID token too, not only userinfo.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    // Expired means expired (the default tolerates 15 s of clock skew, which hides a short ACCESS_TTL).
    clockTolerance: 0,
    async findAccount(ctx, sub) {
      if (sub !== ACCOUNT.sub) return undefined;
      return { accountId: sub, async claims() { return { ...ACCOUNT }; } };
    },
    // Always a refresh token when offline_access is granted (the default also requires it).
    async issueRefreshToken(ctx, client, code) {
      return client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access');
    },
    // Rotation ON for every refresh (the default rotates for public clients only, which this is).
    rotateRefreshToken: () => true,
    ttl: {
      AccessToken: ACCESS_TTL,
      AuthorizationCode: 60,
      IdToken: ID_TOKEN_TTL,
      RefreshToken: REFRESH_TTL,
      DeviceCode: DEVICE_TTL,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      introspection: { enabled: true },
      userinfo: { enabled: true },
      deviceFlow: {
        enabled: true,
        charset: 'base-20',
        mask: '****-****',
        async userCodeInputSource(ctx, form, out, err) {
          let msg = '<p id="message">Enter the code displayed on your device</p>';
          if (err && (err.userCode || err.name === 'NoCodeError')) {
            msg = '<p id="message" class="error">The code you entered is incorrect. Try again</p>';
          } else if (err && err.name === 'AbortedError') {
            msg = '<p id="message" class="error">The Sign-in request was interrupted</p>';
          } else if (err) {
            msg = '<p id="message" class="error">There was an error processing your request</p>';
          }
          ctx.type = 'html';
          ctx.body = page('Device sign-in', `${msg}
${form}
<button id="device-continue" type="submit" form="op.deviceInputForm">Continue</button>`, 'device-input');
        },
        async userCodeConfirmSource(ctx, form, client, deviceInfo, userCode) {
          ctx.type = 'html';
          ctx.body = page('Confirm device', `<p><strong>${esc(client.clientName || client.clientId)}</strong> shows the code <code id="user-code">${esc(userCode)}</code>.</p>
${form}
<button id="device-confirm" type="submit" form="op.deviceConfirmForm">Continue</button>
<button id="device-abort" type="submit" form="op.deviceConfirmForm" value="yes" name="abort">Abort</button>`, 'device-confirm');
        },
        async successSource(ctx) {
          ctx.type = 'html';
          ctx.body = page('Sign-in Success', '<p id="message">Your sign-in with hoopctl was successful, you can now close this page.</p>', 'device-success');
        },
      },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.body = page('Sign out', `${form}
<button id="logout-yes" type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button id="logout-no" type="submit" form="op.logoutForm">No, stay signed in</button>`, 'logout');
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = page('Sign-out Success', '<p id="message">Your sign-out was successful.</p>', 'logout-success');
        },
      },
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Error', Object.entries(out)
        .map(([k, v]) => `<pre class="error-field"><strong>${esc(k)}</strong>: <span id="${esc(k)}">${esc(v)}</span></pre>`)
        .join('\n'), 'error');
    },
  };
}

function makeProvider(issuer) {
  const p = new Provider(issuer, configuration());
  if (DEVICE_INTERVAL > 0) {
    p.use(async (ctx, next) => {
      await next();
      if (ctx.path === '/device/auth' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
        ctx.body.interval = DEVICE_INTERVAL;
      }
    });
  }
  p.on('server_error', (ctx, err) => log('server_error', ctx?.path, err));
  if (LOG) {
    for (const ev of ['grant.error', 'authorization.error', 'end_session.error', 'revocation.error']) {
      p.on(ev, (ctx, err) => log(ev, err?.message, err?.error_description ?? '', err?.error_detail ?? ''));
    }
  }
  return p;
}

// ---------------------------------------------------------------- interactions (login + consent)

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(c);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

function loginPage(uid, details, error) {
  const hint = details.params.login_hint || '';
  return page('Sign in', `${error ? `<p id="error" class="error">${esc(error)}</p>` : ''}
<p>Client <strong>${esc(details.params.client_id)}</strong> asks you to sign in.</p>
<form id="login-form" method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
  <label>Username <input id="login" type="text" name="login" value="${esc(hint)}" required autofocus></label>
  <label>Password <input id="password" type="password" name="password" required></label>
  <button id="submit" type="submit">Sign in</button>
</form>
<form id="abort-form" method="post" action="/interaction/${esc(uid)}/abort">
  <button id="deny" type="submit">Cancel</button>
</form>`, 'login');
}

function consentPage(uid, details) {
  const { prompt, params } = details;
  const scopes = (params.scope || '').split(' ').filter(Boolean);
  return page('Authorize', `<p>Client <strong>${esc(params.client_id)}</strong> asks for access to your account <strong>${esc(details.session?.accountId)}</strong>.</p>
<p>Scopes: <span id="scopes">${esc(scopes.join(' '))}</span></p>
${scopes.includes('offline_access') ? '<p id="offline">It asks for offline access (a refresh token).</p>' : ''}
<p id="reasons" hidden>${esc((prompt.reasons || []).join(' '))}</p>
<form id="consent-form" method="post" action="/interaction/${esc(uid)}/confirm">
  <button id="allow" type="submit" autofocus>Allow</button>
</form>
<form id="abort-form" method="post" action="/interaction/${esc(uid)}/abort">
  <button id="deny" type="submit">Deny</button>
</form>`, 'consent');
}

async function handleInteraction(provider, req, res, url) {
  const m = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/);
  if (!m) return send(res, 404, page('Not found', '', 'not-found'));
  const [, uid, action] = m;
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    return send(res, 400, page('Error', `<p id="error">${esc(err.message)}</p>`, 'error'));
  }
  if (details.uid !== uid) return send(res, 400, page('Error', '<p id="error">interaction mismatch</p>', 'error'));
  const { prompt } = details;

  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') return send(res, 200, loginPage(uid, details));
    if (prompt.name === 'consent') return send(res, 200, consentPage(uid, details));
    return send(res, 501, page('Error', `<p id="error">unknown prompt ${esc(prompt.name)}</p>`, 'error'));
  }
  if (req.method !== 'POST' || !action) return send(res, 405, page('Error', '<p id="error">method not allowed</p>', 'error'));

  const form = await readForm(req);
  if (action === 'abort') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }
  if (action === 'login') {
    if (prompt.name !== 'login') return send(res, 400, page('Error', '<p id="error">not a login prompt</p>', 'error'));
    if (form.get('login') !== ACCOUNT.sub || form.get('password') !== PASSWORD) {
      return send(res, 200, loginPage(uid, details, 'Invalid username or password'));
    }
    return provider.interactionFinished(req, res, {
      login: { accountId: ACCOUNT.sub },
    }, { mergeWithLastSubmission: false });
  }
  // confirm
  if (prompt.name !== 'consent') return send(res, 400, page('Error', '<p id="error">not a consent prompt</p>', 'error'));
  const { params, session } = details;
  const { details: missing } = prompt;
  let { grantId } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scope] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scope.join(' '));
    }
  }
  grantId = await grant.save();
  const consent = {};
  if (!details.grantId) consent.grantId = grantId;
  return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

// ---------------------------------------------------------------- server

let provider;
let callback;

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (LOG) res.on('finish', () => log(req.method, url.pathname, res.statusCode));
  try {
    if (url.pathname === '/_test/health') return send(res, 200, 'ok\n', 'text/plain');
    if (url.pathname === '/_test/rotate-keys' && req.method === 'POST') {
      const fresh = newSigningKey();
      keys = url.searchParams.get('drop_old') === '1' ? [fresh] : [fresh, ...keys];
      provider = makeProvider(provider.issuer);
      callback = provider.callback();
      return send(res, 200, `${JSON.stringify({ kids: keys.map((k) => k.kid) })}\n`, 'application/json');
    }
    if (url.pathname.startsWith('/interaction/')) {
      return await handleInteraction(provider, req, res, url);
    }
    return callback(req, res);
  } catch (err) {
    log('error', req.method, url.pathname, err);
    if (!res.headersSent) send(res, 500, page('Error', `<p id="error">${esc(err.message)}</p>`, 'error'));
    else res.destroy();
  }
});

server.listen(PORT, HOST, () => {
  const { port } = server.address();
  const issuer = `http://${HOST}:${port}`;
  provider = makeProvider(issuer);
  callback = provider.callback();
  const ready = {
    event: 'ready',
    issuer,
    client_id: CLIENT_ID,
    redirect_uris: REDIRECT_URIS,
    port,
    pid: process.pid,
    username: ACCOUNT.sub,
    password: PASSWORD,
    email: ACCOUNT.email,
    access_ttl: ACCESS_TTL,
    discovery: `${issuer}/.well-known/openid-configuration`,
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
});

server.on('error', (err) => {
  console.error(`provider.mjs: cannot listen on ${HOST}:${PORT}: ${err.message}`);
  process.exit(1);
});

function shutdown(why) {
  if (LOG) log('exiting:', why);
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
// Exit when the parent goes away: only when stdin is a pipe/socket (not a tty or /dev/null).
try {
  const st = fstatSync(0);
  if (st.isFIFO() || st.isSocket()) {
    process.stdin.on('end', () => shutdown('stdin closed'));
    process.stdin.on('error', () => shutdown('stdin error'));
    process.stdin.resume();
  }
} catch {
  // no stdin at all
}
