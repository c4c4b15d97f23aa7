// A deliberately broken OpenID Provider double for hoopctl's `login` negative tests.
//
//   MODE=<mode> node tests/oidc/tamper.mjs
//
// Listens on 127.0.0.1 (any free port), plain http, issuer `http://127.0.0.1:PORT`, and prints ONE
// JSON line on stdout when ready: {"issuer":"http://127.0.0.1:PORT","client_id":"hoopctl-cli"}.
// Serves until SIGTERM/SIGINT, or until its stdin (when it is a pipe/socket) closes.
// Only Node built-ins; no user interaction: GET /authorize redirects straight back to the client,
// so a "browser" of `curl -sS -L -o /dev/null` completes the flow.
//
// Each MODE injects exactly ONE defect (hoopctl must reject all but `ok` and store nothing):
//   ok              no defect
//   bad_signature   ID token signature bytes altered
//   unknown_key     ID token signed by another key, kid "k2", never in the JWKS
//   wrong_audience  aud "someone-else"
//   wrong_issuer    iss "http://evil.example"
//   wrong_nonce     nonce "not-the-one"
//   expired         exp = now-3600, iat = now-7200
//   future_iat      iat = now+3600
//   no_id_token     token response without id_token
//   access_denied   authorize redirects with error=access_denied (+ description, state)
//   wrong_state     authorize redirects with a different state
//   missing_code    authorize redirects with only state
//   bad_discovery   discovery answers {"issuer": 42}
//   discovery_500   discovery answers 500
//   token_error     token endpoint answers 400 invalid_grant "code expired"
//
// Every request is logged to stderr as one line: method and path (never the query or body).

import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { fstatSync } from 'node:fs';
import http from 'node:http';
import { URL } from 'node:url';

const HOST = '127.0.0.1';
const CLIENT_ID = 'hoopctl-cli';
const MODES = [
  'ok', 'bad_signature', 'unknown_key', 'wrong_audience', 'wrong_issuer', 'wrong_nonce', 'expired',
  'future_iat', 'no_id_token', 'access_denied', 'wrong_state', 'missing_code', 'bad_discovery',
  'discovery_500', 'token_error',
];
const MODE = process.env.MODE || 'ok';
if (!MODES.includes(MODE)) {
  console.error(`tamper.mjs: unknown MODE ${JSON.stringify(MODE)}; one of: ${MODES.join(', ')}`);
  process.exit(2);
}

// ---------------------------------------------------------------- keys

// k1 is published in the JWKS and signs normally; k2 (unknown_key) is never published.
const newKey = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
const k1 = newKey();
const k2 = MODE === 'unknown_key' ? newKey() : null;
const publicJwk = { ...k1.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' };

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** An RS256 JWT over `claims`, signed with `key` and labelled `kid`. */
function jwt(claims, key, kid) {
  const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid }));
  const body = b64url(JSON.stringify(claims));
  const sig = sign('sha256', Buffer.from(`${head}.${body}`), key);
  if (MODE === 'bad_signature') sig[sig.length - 1] ^= 0x01; // flip one bit: still valid base64url
  return `${head}.${body}.${b64url(sig)}`;
}

// ---------------------------------------------------------------- state

/** code -> { nonce, challenge, redirectUri } for codes issued by /authorize (single use). */
const codes = new Map();

const log = (...args) => console.error('[tamper]', ...args);

function json(res, status, body, extra = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...extra });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 64 * 1024) { reject(new Error('body too large')); req.destroy(); } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------- endpoints

function discovery(res, issuer) {
  if (MODE === 'discovery_500') return json(res, 500, { error: 'server_error' });
  if (MODE === 'bad_discovery') return json(res, 200, { issuer: 42 });
  json(res, 200, {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    scopes_supported: ['openid', 'email', 'profile'],
    code_challenge_methods_supported: ['S256'],
    grant_types_supported: ['authorization_code'],
    token_endpoint_auth_methods_supported: ['none'],
  });
}

function authorize(res, q) {
  const redirectUri = q.get('redirect_uri');
  const state = q.get('state');
  let target;
  try { target = new URL(redirectUri); } catch { return json(res, 400, { error: 'invalid_request', error_description: 'bad redirect_uri' }); }
  // Only loopback redirects: this double never sends anyone off-host.
  if (target.protocol !== 'http:' || target.hostname !== HOST) {
    return json(res, 400, { error: 'invalid_request', error_description: 'redirect_uri must be http://127.0.0.1' });
  }
  if (q.get('client_id') !== CLIENT_ID) return json(res, 400, { error: 'invalid_client' });
  if (q.get('response_type') !== 'code' || q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) {
    return json(res, 400, { error: 'invalid_request', error_description: 'need response_type=code and S256 PKCE' });
  }

  const code = b64url(randomBytes(24));
  codes.set(code, { nonce: q.get('nonce'), challenge: q.get('code_challenge'), redirectUri });

  const p = target.searchParams;
  if (MODE === 'access_denied') {
    p.set('error', 'access_denied');
    p.set('error_description', 'User denied access');
  } else if (MODE !== 'missing_code') {
    p.set('code', code);
  }
  if (state !== null) p.set('state', MODE === 'wrong_state' ? `${state}-tampered` : state);
  p.set('iss', issuerOf(res.req)); // RFC 9207
  res.writeHead(302, { location: target.toString() });
  res.end();
}

async function token(req, res, issuer) {
  const form = new URLSearchParams(await readBody(req));
  if (form.get('grant_type') !== 'authorization_code') return json(res, 400, { error: 'unsupported_grant_type' });
  const grant = codes.get(form.get('code') || '');
  codes.delete(form.get('code') || ''); // single use
  if (!grant) return json(res, 400, { error: 'invalid_grant', error_description: 'unknown code' });
  if (form.get('redirect_uri') !== grant.redirectUri || form.get('client_id') !== CLIENT_ID) {
    return json(res, 400, { error: 'invalid_grant', error_description: 'redirect_uri or client_id mismatch' });
  }
  const verifier = form.get('code_verifier') || '';
  if (b64url(createHash('sha256').update(verifier).digest()) !== grant.challenge) {
    return json(res, 400, { error: 'invalid_grant', error_description: 'PKCE verification failed' });
  }
  if (MODE === 'token_error') return json(res, 400, { error: 'invalid_grant', error_description: 'code expired' });

  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: MODE === 'wrong_issuer' ? 'http://evil.example' : issuer,
    sub: 'alice',
    aud: MODE === 'wrong_audience' ? 'someone-else' : CLIENT_ID,
    exp: MODE === 'expired' ? now - 3600 : now + 3600,
    iat: MODE === 'expired' ? now - 7200 : MODE === 'future_iat' ? now + 3600 : now,
    email: 'alice@example.com',
    name: 'Alice Example',
  };
  if (grant.nonce !== null || MODE === 'wrong_nonce') claims.nonce = MODE === 'wrong_nonce' ? 'not-the-one' : grant.nonce;

  const body = { access_token: b64url(randomBytes(32)), token_type: 'Bearer', expires_in: 3600 };
  if (MODE !== 'no_id_token') {
    body.id_token = MODE === 'unknown_key' ? jwt(claims, k2.privateKey, 'k2') : jwt(claims, k1.privateKey, 'k1');
  }
  json(res, 200, body);
}

// ---------------------------------------------------------------- server

const issuerOf = (req) => `http://${HOST}:${req.socket.localPort}`;

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  log(req.method, url.pathname); // path only: query strings carry codes, states and challenges
  const issuer = issuerOf(req);
  try {
    if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration') return discovery(res, issuer);
    if (req.method === 'GET' && url.pathname === '/jwks') return json(res, 200, { keys: [publicJwk] });
    if (req.method === 'GET' && url.pathname === '/authorize') return authorize(res, url.searchParams);
    if (req.method === 'POST' && url.pathname === '/token') return await token(req, res, issuer);
    json(res, 404, { error: 'not_found' });
  } catch (e) {
    log('error:', e.message);
    if (!res.headersSent) json(res, 500, { error: 'server_error' });
    else res.destroy();
  }
});

server.listen(0, HOST, () => {
  const { port } = server.address();
  process.stdout.write(`${JSON.stringify({ issuer: `http://${HOST}:${port}`, client_id: CLIENT_ID })}\n`);
  log(`MODE=${MODE} listening on ${HOST}:${port}`);
});

function shutdown(why) {
  log(`exiting (${why})`);
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
