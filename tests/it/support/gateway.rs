//! A test double of the hoop-compatible gateway (SPEC section 5), over real TLS
//! on 127.0.0.1.
//!
//! Two listeners share one certificate from the double's own rcgen test CA (the
//! leaf covers `localhost` and 127.0.0.1; ALPN offers `h2` and `http/1.1`):
//!
//! * the **API** ([`Gateway::url`]): JSON, errors always `{"message": "..."}`.
//!   `GET /api/publicserverinfo` needs no authentication; every other `/api`
//!   route needs `Authorization: Bearer <OIDC access token>`, checked against the
//!   issuer's userinfo endpoint (discovered once, successful checks cached for
//!   [`TOKEN_CACHE`]); without an issuer any non-empty bearer token is user
//!   `test`. Routes: `GET /api/userinfo`, `POST|GET
//!   /api/connections/{name}/credentials`, `POST
//!   /api/connections/{name}/credentials/{session_id}` (resume after a review),
//!   `GET /api/reviews/{id}`. A POST with an empty body answers
//!   `400 {"message":"EOF"}` like the real gateway. The connection `missing`
//!   does not exist (404); every other name does.
//! * the **HTTP proxy endpoint** ([`Gateway::proxy_port`]): authenticated by the
//!   proxy token in `Authorization` (a `Bearer ` prefix tolerated) or, when that
//!   header is absent or empty, `X-Api-Key` (the real gateway's order). It
//!   forwards everything else to [`GatewayConfig::upstream`] (plain http on
//!   loopback) with the gateway's own `x-api-key`, streaming both bodies.
//!   Revoking or expiring a credential cuts its streams in flight (the response
//!   body fails: HTTP/1.1 connection closed mid-body, HTTP/2 stream reset).
//!
//! It runs on its own thread with its own single-threaded runtime, so blocking
//! test code never starves it. [`Gateway::stop`] closes both listeners and every
//! connection; [`Gateway::restart`] brings it back on the same ports with the
//! same CA and state. Dropping it stops everything. It never contacts anything
//! but loopback.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::upstream::BoxError;

/// The gateway's own Anthropic key by default (what the upstream sees).
pub const DEFAULT_API_KEY: &str = "sk-ant-gateway-real-key";
/// How long a successful OIDC token check is reused.
pub const TOKEN_CACHE: Duration = Duration::from_secs(1);
/// What `publicserverinfo` reports as `version`.
pub const VERSION: &str = "1.0.0-hoopctl-test-double";
/// The one connection name that does not exist.
pub const MISSING_CONNECTION: &str = "missing";

const MAX_API_BODY: usize = 1024 * 1024;
const STEP: Duration = Duration::from_secs(10);

/// Bodies the double answers with (not `Sync`: the cut-able proxy body holds a
/// cancellation future).
pub type GwBody = UnsyncBoxBody<Bytes, BoxError>;

/// How the gateway behaves. Set `upstream` (e.g. `FakeAnthropic::url()`).
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// OIDC issuer (`http://127.0.0.1:PORT`); `None` accepts any non-empty bearer
    /// token as user `test`.
    pub issuer: Option<String>,
    /// Published in `publicserverinfo` as `oidc_client_id`.
    pub client_id: Option<String>,
    /// Base URL (plain http, loopback) of the Anthropic API behind the gateway.
    pub upstream: String,
    /// Sent upstream as `x-api-key`.
    pub api_key: String,
    /// New credentials need a review.
    pub review: bool,
    /// Status of the answer that opens a review: 201 or 202.
    pub review_status: u16,
    /// Duration when the POST body has none; `None`: `expire_at` null.
    pub default_duration: Option<u64>,
    /// Cap on `access_duration_seconds`.
    pub max_duration: Option<u64>,
    /// `connection_credentials.hostname`: `127.0.0.1` or `localhost`.
    pub hostname: String,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            issuer: None,
            client_id: None,
            upstream: String::new(),
            api_key: DEFAULT_API_KEY.to_string(),
            review: false,
            review_status: 201,
            default_duration: None,
            max_duration: None,
            hostname: "127.0.0.1".to_string(),
        }
    }
}

/// One minted credential (everything the gateway knows about it).
#[derive(Clone, Debug)]
pub struct Credential {
    pub id: String,
    /// `claude-code-` + 32 hex characters.
    pub proxy_token: String,
    pub session_id: String,
    /// The connection name.
    pub connection: String,
    /// RFC 3339, UTC, seconds (`2026-11-22T10:00:00Z`).
    pub created_at: String,
    /// RFC 3339 like `created_at`; `None` without a duration. For a reviewed
    /// credential it is recomputed from the moment of the (first) resume.
    pub expire_at: Option<String>,
    pub revoked: bool,
    /// Effective duration in seconds (after the default and the cap).
    pub duration: Option<u64>,
    /// The OIDC subject the API token belonged to (`test` without an issuer).
    pub user: String,
    pub email: String,
    /// Set when the credential needed a review.
    pub review_id: Option<String>,
    /// Whether the client resumed after the review was approved.
    pub resumed: bool,
}

/// One review.
#[derive(Clone, Debug)]
pub struct ReviewRecord {
    pub id: String,
    pub connection: String,
    pub session_id: String,
    /// `PENDING`, `APPROVED`, `REJECTED` or `REVOKED`.
    pub status: String,
    pub rejection_reason: Option<String>,
    pub created_at: String,
}

/// What a reviewer decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    /// Rejected with this reason.
    Reject(String),
    /// Revoked with this reason (also revokes the credential and cuts its streams).
    Revoke(String),
}

/// One request to the API listener.
#[derive(Clone, Debug)]
pub struct ApiCall {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub status: u16,
    /// Whether an `Authorization` header was present.
    pub authorization: bool,
    pub body: String,
}

/// One request to the proxy listener, recorded when its response head is
/// decided (status 0: the stream was cut before the upstream answered).
#[derive(Clone, Debug)]
pub struct ProxyCall {
    pub method: String,
    /// Path and query, as received.
    pub path: String,
    pub status: u16,
    /// The `Authorization` header as received.
    pub authorization: Option<String>,
    /// The `X-Api-Key` header as received.
    pub x_api_key: Option<String>,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// The credential the token matched, if any.
    pub credential_id: Option<String>,
}

#[derive(Clone, Debug)]
struct User {
    sub: String,
    email: String,
    name: String,
}

struct Cred {
    c: Credential,
    expires: Option<DateTime<Utc>>,
    cancel: CancellationToken,
}

struct Data {
    cfg: GatewayConfig,
    creds: Vec<Cred>,
    reviews: Vec<ReviewRecord>,
    api_log: Vec<ApiCall>,
    proxy_log: Vec<ProxyCall>,
    /// (requests left, status, message)
    fail: Option<(usize, u16, String)>,
    userinfo_endpoint: Option<String>,
    token_cache: HashMap<String, (User, Instant)>,
}

impl Data {
    fn review(&self, id: &str) -> Option<&ReviewRecord> {
        self.reviews.iter().find(|r| r.id == id)
    }

    fn usable(&self, c: &Cred, now: DateTime<Utc>) -> bool {
        !c.c.revoked
            && c.expires.is_none_or(|e| now < e)
            && match &c.c.review_id {
                None => true,
                Some(r) => c.c.resumed && self.review(r).is_some_and(|r| r.status == "APPROVED"),
            }
    }

    fn cut(&mut self, credential_id: &str, expire: bool) {
        let now = Utc::now();
        let Some(c) = self.creds.iter_mut().find(|c| c.c.id == credential_id) else {
            panic!("gateway double: no credential {credential_id:?}");
        };
        if expire {
            c.expires = Some(now);
            c.c.expire_at = Some(rfc3339(now));
        } else {
            c.c.revoked = true;
        }
        c.cancel.cancel();
    }

    fn decide(&mut self, review_id: &str, d: Decision) {
        let Some(r) = self.reviews.iter_mut().find(|r| r.id == review_id) else {
            panic!("gateway double: no review {review_id:?}");
        };
        let (status, reason) = match d {
            Decision::Approve => ("APPROVED", None),
            Decision::Reject(why) => ("REJECTED", Some(why)),
            Decision::Revoke(why) => ("REVOKED", Some(why)),
        };
        r.status = status.to_string();
        r.rejection_reason = reason;
        if status == "REVOKED" {
            let session = r.session_id.clone();
            for c in self.creds.iter_mut().filter(|c| c.c.session_id == session) {
                c.c.revoked = true;
                c.cancel.cancel();
            }
        }
    }
}

struct Shared {
    data: Mutex<Data>,
    proxy_port: u16,
    closed: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Running {
    stop: CancellationToken,
    thread: JoinHandle<()>,
}

/// A running gateway double. Dropping it stops it.
pub struct Gateway {
    shared: Arc<Shared>,
    api_addr: SocketAddr,
    proxy_addr: SocketAddr,
    ca_pem: String,
    tls: tokio_rustls::TlsAcceptor,
    running: Mutex<Option<Running>>,
}

impl Gateway {
    /// Binds the API and the proxy listeners on 127.0.0.1:0 and serves them.
    pub fn start(cfg: GatewayConfig) -> Gateway {
        if !cfg.upstream.is_empty() {
            let uri: Uri = cfg.upstream.parse().unwrap();
            assert!(
                uri.scheme_str() == Some("http") && is_loopback(&uri),
                "the gateway double forwards to plain http on loopback only, not {:?}",
                cfg.upstream
            );
        }
        if let Some(issuer) = &cfg.issuer {
            let uri: Uri = issuer.parse().unwrap();
            assert!(
                is_loopback(&uri),
                "the OIDC issuer must be on loopback: {issuer:?}"
            );
        }
        let api = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let api_addr = api.local_addr().unwrap();
        let proxy_addr = proxy.local_addr().unwrap();
        let (ca_pem, tls) = gateway_tls();
        let shared = Arc::new(Shared {
            data: Mutex::new(Data {
                cfg,
                creds: Vec::new(),
                reviews: Vec::new(),
                api_log: Vec::new(),
                proxy_log: Vec::new(),
                fail: None,
                userinfo_endpoint: None,
                token_cache: HashMap::new(),
            }),
            proxy_port: proxy_addr.port(),
            closed: AtomicBool::new(false),
        });
        let running = run(shared.clone(), api, proxy, tls.clone());
        Gateway {
            shared,
            api_addr,
            proxy_addr,
            ca_pem,
            tls,
            running: Mutex::new(Some(running)),
        }
    }

    /// `https://127.0.0.1:APIPORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.api_addr.port())
    }

    pub fn api_port(&self) -> u16 {
        self.api_addr.port()
    }

    pub fn proxy_port(&self) -> u16 {
        self.proxy_addr.port()
    }

    /// `https://{hostname}:{proxy port}`, what the credentials point at.
    pub fn proxy_url(&self) -> String {
        let host = self.shared.lock().cfg.hostname.clone();
        format!("https://{host}:{}", self.proxy_addr.port())
    }

    /// The double's test CA (PEM).
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// Writes the test CA to `dir/gateway-ca.pem` and returns the path.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("gateway-ca.pem");
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }

    /// Every credential ever minted, in order.
    pub fn credentials(&self) -> Vec<Credential> {
        self.shared
            .lock()
            .creds
            .iter()
            .map(|c| c.c.clone())
            .collect()
    }

    /// Revokes a credential: its token gets 401 and its streams in flight are cut.
    pub fn revoke(&self, credential_id: &str) {
        self.shared.lock().cut(credential_id, false);
    }

    /// Sets a credential's `expire_at` to now: like [`revoke`](Self::revoke), but
    /// the credential reads as expired.
    pub fn expire(&self, credential_id: &str) {
        self.shared.lock().cut(credential_id, true);
    }

    /// Every review, in order.
    pub fn reviews(&self) -> Vec<ReviewRecord> {
        self.shared.lock().reviews.clone()
    }

    /// Decides a review now.
    pub fn decide(&self, review_id: &str, d: Decision) {
        self.shared.lock().decide(review_id, d);
    }

    /// After `delay`, from a background thread, decides the first PENDING
    /// review (or the next one created, waiting up to 60 s for it).
    pub fn decide_after(&self, delay: Duration, d: Decision) {
        let shared = self.shared.clone();
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline && !shared.closed.load(Ordering::SeqCst) {
                {
                    let mut data = shared.lock();
                    let pending = data
                        .reviews
                        .iter()
                        .find(|r| r.status == "PENDING")
                        .map(|r| r.id.clone());
                    if let Some(id) = pending {
                        data.decide(&id, d);
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
    }

    /// Takes the gateway down: both listeners closed and every connection
    /// dropped (connections are refused until [`restart`](Self::restart)).
    pub fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(r) = running {
            r.stop.cancel();
            let _ = r.thread.join();
        }
    }

    /// Brings a stopped gateway back on the same two ports, with the same CA
    /// and state (a running one is left as it is).
    pub fn restart(&self) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if running.is_some() {
            return;
        }
        let api = bind_again(self.api_addr);
        let proxy = bind_again(self.proxy_addr);
        *running = Some(run(self.shared.clone(), api, proxy, self.tls.clone()));
    }

    /// Every API request, in order.
    pub fn api_log(&self) -> Vec<ApiCall> {
        self.shared.lock().api_log.clone()
    }

    /// Every proxy request, in order of their response heads.
    pub fn proxy_log(&self) -> Vec<ProxyCall> {
        self.shared.lock().proxy_log.clone()
    }

    /// The next `n` authenticated proxy requests answer `status` with
    /// `{"message": message}` instead of being forwarded (replaces an earlier
    /// injection).
    pub fn fail_proxy(&self, n: usize, status: u16, message: &str) {
        self.shared.lock().fail = Some((n, status, message.to_string()));
    }

    /// Whether NEW credentials need a review.
    pub fn set_review(&self, review: bool) {
        self.shared.lock().cfg.review = review;
    }

    /// The duration of NEW credentials whose request names none.
    pub fn set_default_duration(&self, d: Option<u64>) {
        self.shared.lock().cfg.default_duration = d;
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.stop();
    }
}

fn bind_again(addr: SocketAddr) -> std::net::TcpListener {
    // std sets SO_REUSEADDR on Unix, so TIME_WAIT connections do not block the bind.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::net::TcpListener::bind(addr) {
            Ok(l) => return l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("gateway double: cannot bind {addr} again: {e}"),
        }
    }
}

fn gateway_tls() -> (String, tokio_rustls::TlsAcceptor) {
    let tls = super::upstream::test_tls("hoopctl test gateway CA", &["h2", "http/1.1"]);
    (tls.ca_pem.clone(), tls.acceptor())
}

#[derive(Clone, Copy)]
enum Kind {
    Api,
    Proxy,
}

type HttpClient = Client<HttpConnector, GwBody>;

fn run(
    shared: Arc<Shared>,
    api: std::net::TcpListener,
    proxy: std::net::TcpListener,
    tls: tokio_rustls::TlsAcceptor,
) -> Running {
    api.set_nonblocking(true).unwrap();
    proxy.set_nonblocking(true).unwrap();
    let stop = CancellationToken::new();
    let stop2 = stop.clone();
    let thread = std::thread::Builder::new()
        .name(format!("gateway-double-{}", shared.proxy_port))
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let api = TcpListener::from_std(api).unwrap();
                let proxy = TcpListener::from_std(proxy).unwrap();
                let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
                loop {
                    let (accepted, kind) = tokio::select! {
                        _ = stop2.cancelled() => break,
                        r = api.accept() => (r, Kind::Api),
                        r = proxy.accept() => (r, Kind::Proxy),
                    };
                    let Ok((stream, _)) = accepted else { continue };
                    tokio::spawn(serve_conn(
                        stream,
                        kind,
                        shared.clone(),
                        client.clone(),
                        tls.clone(),
                    ));
                }
                // The listeners close here.
            });
            // Drops every connection task (and so every connection).
            rt.shutdown_timeout(Duration::from_secs(1));
        })
        .unwrap();
    Running { stop, thread }
}

async fn serve_conn(
    stream: TcpStream,
    kind: Kind,
    shared: Arc<Shared>,
    client: HttpClient,
    tls: tokio_rustls::TlsAcceptor,
) {
    let _ = stream.set_nodelay(true);
    let Ok(Ok(stream)) = tokio::time::timeout(STEP, tls.accept(stream)).await else {
        return;
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let svc = service_fn(move |req: Request<Incoming>| {
        let (shared, client) = (shared.clone(), client.clone());
        async move {
            match kind {
                Kind::Api => Ok::<_, std::io::Error>(api(shared, client, req).await),
                Kind::Proxy => proxy(shared, client, req).await,
            }
        }
    });
    let io = TokioIo::new(stream);
    if h2 {
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(io, svc)
            .await;
    } else {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, svc)
            .await;
    }
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new().fill(&mut b).unwrap();
    b
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random version-4 UUID.
fn uuid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn is_loopback(uri: &Uri) -> bool {
    matches!(
        uri.host(),
        Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
    )
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn full_body(bytes: impl Into<Bytes>) -> GwBody {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

fn json_response(status: u16, v: &Value) -> Response<GwBody> {
    let mut resp = Response::new(full_body(v.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn msg(status: u16, message: &str) -> (u16, Value) {
    (status, json!({ "message": message }))
}

/// Connection-level headers, never forwarded either way.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(name);
    }
}

// ---------------------------------------------------------------------------------------
// OIDC
// ---------------------------------------------------------------------------------------

async fn http_get(client: &HttpClient, url: &str, bearer: Option<&str>) -> Option<(u16, Bytes)> {
    let uri: Uri = url.parse().ok()?;
    if uri.scheme_str() != Some("http") || !is_loopback(&uri) {
        return None;
    }
    let mut req = Request::builder().method(Method::GET).uri(uri);
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let req = req.body(full_body(Bytes::new())).ok()?;
    let fut = async {
        let resp = client.request(req).await.ok()?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        Some((status, body))
    };
    tokio::time::timeout(STEP, fut).await.ok()?
}

/// The user an API token belongs to, or `None` (401).
async fn verify(shared: &Shared, client: &HttpClient, token: &str) -> Option<User> {
    let (issuer, endpoint) = {
        let mut data = shared.lock();
        let Some(issuer) = data.cfg.issuer.clone() else {
            return Some(User {
                sub: "test".to_string(),
                email: "test@example.com".to_string(),
                name: "Test User".to_string(),
            });
        };
        data.token_cache
            .retain(|_, (_, at)| at.elapsed() < TOKEN_CACHE);
        if let Some((user, _)) = data.token_cache.get(token) {
            return Some(user.clone());
        }
        (issuer, data.userinfo_endpoint.clone())
    };
    let endpoint = match endpoint {
        Some(e) => e,
        None => {
            let url = format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            );
            let (status, body) = http_get(client, &url, None).await?;
            if status != 200 {
                return None;
            }
            let doc: Value = serde_json::from_slice(&body).ok()?;
            let e = doc["userinfo_endpoint"].as_str()?.to_string();
            shared.lock().userinfo_endpoint = Some(e.clone());
            e
        }
    };
    let (status, body) = http_get(client, &endpoint, Some(token)).await?;
    if status != 200 {
        return None;
    }
    let info: Value = serde_json::from_slice(&body).ok()?;
    let sub = info["sub"].as_str()?.to_string();
    let email = info["email"].as_str().unwrap_or_default().to_string();
    let name = info["name"].as_str().unwrap_or_default().to_string();
    let user = User { sub, email, name };
    shared
        .lock()
        .token_cache
        .insert(token.to_string(), (user.clone(), Instant::now()));
    Some(user)
}

// ---------------------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------------------

async fn api(shared: Arc<Shared>, client: HttpClient, req: Request<Incoming>) -> Response<GwBody> {
    let method = req.method().clone();
    let path_q = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let path = req.uri().path().to_string();
    let auth = header_str(req.headers(), "authorization");
    let body = match Limited::new(req.into_body(), MAX_API_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let (status, value) = route(&shared, &client, &method, &path, auth.as_deref(), &body).await;
    shared.lock().api_log.push(ApiCall {
        method: method.to_string(),
        path: path_q,
        status,
        authorization: auth.is_some(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    json_response(status, &value)
}

async fn route(
    shared: &Shared,
    client: &HttpClient,
    method: &Method,
    path: &str,
    auth: Option<&str>,
    body: &[u8],
) -> (u16, Value) {
    if path == "/api/publicserverinfo" && method == Method::GET {
        let data = shared.lock();
        let mut v = json!({"auth_method": "oidc", "version": VERSION});
        if let Some(issuer) = &data.cfg.issuer {
            v["oidc_issuer"] = json!(issuer);
        }
        if let Some(client_id) = &data.cfg.client_id {
            v["oidc_client_id"] = json!(client_id);
        }
        return (200, v);
    }
    let Some(rest) = path.strip_prefix("/api/") else {
        return msg(404, "not found");
    };
    let Some(auth) = auth else {
        return msg(401, "missing authorization header");
    };
    let token = auth
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return msg(401, "invalid authentication");
    };
    let Some(user) = verify(shared, client, token).await else {
        return msg(401, "invalid authentication");
    };
    let segs: Vec<&str> = rest.split('/').collect();
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["userinfo"]) => (
            200,
            json!({
                "id": user.sub,
                "sub": user.sub,
                "email": user.email,
                "name": user.name,
                "groups": ["developers"],
                "org_id": "5d1f6f3a-0000-4000-8000-00000000000a",
                "org_name": "hoopctl-test-org",
                "status": "active",
                "verified": true,
            }),
        ),
        ("POST", ["connections", name, "credentials"]) => create(shared, &user, name, body),
        ("GET", ["connections", name, "credentials"]) => active(shared, &user, name),
        ("POST", ["connections", name, "credentials", session]) => {
            resume(shared, &user, name, session, body)
        }
        ("GET", ["reviews", id]) => {
            let data = shared.lock();
            match data.review(id) {
                Some(r) => (200, review_json(r)),
                None => msg(404, "review not found"),
            }
        }
        _ => msg(404, "not found"),
    }
}

/// The JSON object of a POST body; an empty body is `400 EOF` like the real gateway.
fn parse_body(body: &[u8]) -> Result<Value, (u16, Value)> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(msg(400, "EOF"));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| msg(400, &e.to_string()))?;
    if !v.is_object() {
        return Err(msg(400, "json: cannot unmarshal into an object"));
    }
    Ok(v)
}

fn review_json(r: &ReviewRecord) -> Value {
    json!({
        "id": r.id,
        "session": r.session_id,
        "connection": r.connection,
        "type": "onetime",
        "status": r.status,
        "rejection_reason": r.rejection_reason,
        "created_at": r.created_at,
    })
}

fn cred_json(c: &Cred, hostname: &str, port: u16, with_credentials: bool) -> Value {
    let cc = if with_credentials {
        json!({
            "hostname": hostname,
            "port": port.to_string(),
            "proxy_token": c.c.proxy_token,
            "command": format!(
                "curl -H 'Authorization: {}' https://{hostname}:{port}/v1/models",
                c.c.proxy_token
            ),
        })
    } else {
        Value::Null
    };
    json!({
        "id": c.c.id,
        "connection_name": c.c.connection,
        "connection_type": "httpproxy",
        "connection_subtype": "claude-code",
        "connection_credentials": cc,
        "session_id": c.c.session_id,
        "has_review": c.c.review_id.is_some(),
        "review_id": c.c.review_id,
        "created_at": c.c.created_at,
        "expire_at": c.c.expire_at,
    })
}

fn create(shared: &Shared, user: &User, name: &str, body: &[u8]) -> (u16, Value) {
    let body = match parse_body(body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    if name == MISSING_CONNECTION {
        return msg(404, "connection not found");
    }
    let requested = match &body["access_duration_seconds"] {
        Value::Null => None,
        v => match v.as_u64() {
            Some(n) => Some(n),
            None => {
                return msg(
                    400,
                    "access_duration_seconds must be a non-negative integer",
                )
            }
        },
    };
    let mut data = shared.lock();
    let cfg = data.cfg.clone();
    let duration = requested
        .filter(|&n| n > 0)
        .or(cfg.default_duration)
        .map(|n| cfg.max_duration.map_or(n, |max| n.min(max)));
    let now = Utc::now();
    let expires = duration.map(|d| now + chrono::Duration::seconds(d as i64));
    let session_id = uuid();
    let review_id = cfg.review.then(uuid);
    if let Some(id) = &review_id {
        data.reviews.push(ReviewRecord {
            id: id.clone(),
            connection: name.to_string(),
            session_id: session_id.clone(),
            status: "PENDING".to_string(),
            rejection_reason: None,
            created_at: rfc3339(now),
        });
    }
    let cred = Cred {
        c: Credential {
            id: uuid(),
            proxy_token: format!("claude-code-{}", hex(&random_bytes::<16>())),
            session_id,
            connection: name.to_string(),
            created_at: rfc3339(now),
            expire_at: expires.map(rfc3339),
            revoked: false,
            duration,
            user: user.sub.clone(),
            email: user.email.clone(),
            review_id: review_id.clone(),
            resumed: false,
        },
        expires,
        cancel: CancellationToken::new(),
    };
    let status = if review_id.is_some() {
        cfg.review_status
    } else {
        201
    };
    let v = cred_json(&cred, &cfg.hostname, shared.proxy_port, review_id.is_none());
    data.creds.push(cred);
    (status, v)
}

fn active(shared: &Shared, user: &User, name: &str) -> (u16, Value) {
    if name == MISSING_CONNECTION {
        return msg(404, "connection not found");
    }
    let data = shared.lock();
    let now = Utc::now();
    let found = data
        .creds
        .iter()
        .rev()
        .find(|c| c.c.user == user.sub && c.c.connection == name && data.usable(c, now));
    match found {
        Some(c) => (
            200,
            cred_json(c, &data.cfg.hostname, shared.proxy_port, true),
        ),
        None => msg(404, "no active credentials"),
    }
}

fn resume(shared: &Shared, user: &User, name: &str, session: &str, body: &[u8]) -> (u16, Value) {
    if let Err(e) = parse_body(body) {
        return e;
    }
    if name == MISSING_CONNECTION {
        return msg(404, "connection not found");
    }
    let mut data = shared.lock();
    let Some(idx) = data
        .creds
        .iter()
        .position(|c| c.c.session_id == session && c.c.connection == name && c.c.user == user.sub)
    else {
        return msg(404, "session not found");
    };
    let review = data.creds[idx]
        .c
        .review_id
        .as_deref()
        .and_then(|r| data.review(r))
        .map(|r| (r.status.clone(), r.rejection_reason.clone()));
    match review {
        Some((status, _)) if status == "PENDING" => return msg(400, "review is pending"),
        Some((status, reason)) if status != "APPROVED" => {
            return msg(
                403,
                &format!("review was rejected: {}", reason.unwrap_or_default()),
            )
        }
        _ => {}
    }
    let c = &mut data.creds[idx];
    if c.c.revoked {
        return msg(403, "credential was revoked");
    }
    if !c.c.resumed {
        c.c.resumed = true;
        if c.c.review_id.is_some() {
            // The access window starts with the approved session.
            let now = Utc::now();
            c.expires =
                c.c.duration
                    .map(|d| now + chrono::Duration::seconds(d as i64));
            c.c.expire_at = c.expires.map(rfc3339);
        }
    }
    let c = &data.creds[idx];
    (
        201,
        cred_json(c, &data.cfg.hostname, shared.proxy_port, true),
    )
}

// ---------------------------------------------------------------------------------------
// HTTP proxy endpoint
// ---------------------------------------------------------------------------------------

fn proxy_done(shared: &Shared, mut call: ProxyCall, status: u16) {
    call.status = status;
    shared.lock().proxy_log.push(call);
}

async fn proxy(
    shared: Arc<Shared>,
    client: HttpClient,
    req: Request<Incoming>,
) -> Result<Response<GwBody>, std::io::Error> {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let authorization = header_str(req.headers(), "authorization");
    let x_api_key = header_str(req.headers(), "x-api-key");
    let mut call = ProxyCall {
        method: req.method().to_string(),
        path: path.clone(),
        status: 0,
        authorization: authorization.clone(),
        x_api_key: x_api_key.clone(),
        version: format!("{:?}", req.version()),
        credential_id: None,
    };
    let reply = |call: ProxyCall, status: u16, message: &str| {
        proxy_done(&shared, call, status);
        Ok(json_response(status, &json!({ "message": message })))
    };
    // Authorization first, X-Api-Key only when it is absent or empty.
    let raw = authorization
        .filter(|s| !s.is_empty())
        .or(x_api_key.filter(|s| !s.is_empty()));
    let Some(raw) = raw else {
        return reply(call, 401, "missing Authorization or X-Api-Key header");
    };
    let token = raw.strip_prefix("Bearer ").unwrap_or(&raw).trim();
    let found = {
        let data = shared.lock();
        let now = Utc::now();
        data.creds
            .iter()
            .find(|c| c.c.proxy_token == token && data.usable(c, now))
            .map(|c| (c.c.id.clone(), c.cancel.clone()))
    };
    let Some((credential_id, cancel)) = found else {
        return reply(call, 401, "Invalid Cookie/Authorization");
    };
    call.credential_id = Some(credential_id);
    let (injected, upstream, api_key) = {
        let mut data = shared.lock();
        let injected = match &mut data.fail {
            Some((n, status, message)) if *n > 0 => {
                *n -= 1;
                Some((*status, message.clone()))
            }
            _ => None,
        };
        (
            injected,
            data.cfg.upstream.clone(),
            data.cfg.api_key.clone(),
        )
    };
    if let Some((status, message)) = injected {
        return reply(call, status, &message);
    }
    let Ok(uri) = format!("{}{path}", upstream.trim_end_matches('/')).parse::<Uri>() else {
        return reply(call, 502, "failed to forward request: bad upstream");
    };
    let version = req.version();
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    for name in ["host", "authorization", "x-api-key"] {
        headers.remove(name);
    }
    let mut up = Request::builder()
        .method(parts.method)
        .uri(uri)
        .version(Version::HTTP_11)
        .body(body.map_err(BoxError::from).boxed_unsync())
        .map_err(std::io::Error::other)?;
    *up.headers_mut() = headers;
    up.headers_mut().insert(
        "x-api-key",
        HeaderValue::from_str(&api_key).map_err(std::io::Error::other)?,
    );
    let resp = tokio::select! {
        _ = cancel.cancelled() => {
            proxy_done(&shared, call, 0);
            return Err(std::io::Error::other("credential revoked"));
        }
        r = client.request(up) => r,
    };
    let resp = match resp {
        Ok(r) => r,
        Err(e) => return reply(call, 502, &format!("failed to forward request: {e}")),
    };
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts
        .headers
        .insert("server", HeaderValue::from_static("httpproxy-hoopgateway"));
    parts.version = version;
    proxy_done(&shared, call, parts.status.as_u16());
    let body = CutBody {
        inner: body,
        cancelled: Box::pin(cancel.cancelled_owned()),
        done: false,
    };
    Ok(Response::from_parts(parts, body.boxed_unsync()))
}

/// The upstream's response body, failed as soon as the credential is revoked
/// or expired (hyper then breaks the HTTP/1.1 connection or resets the HTTP/2
/// stream).
struct CutBody {
    inner: Incoming,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    done: bool,
}

impl Body for CutBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.cancelled.as_mut().poll(cx).is_ready() {
            self.done = true;
            return Poll::Ready(Some(Err("credential revoked: stream cut".into())));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            other => other.map(|o| o.map(|r| r.map_err(BoxError::from))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
