//! A small upstream double for the proxy tests, for what the fake Anthropic API
//! does not do: it records every request head it receives (method, path and
//! query, HTTP version, headers), counts streamed uploads frame by frame without
//! buffering them, serves SSE streams that can be paced, gated by the test, or
//! aborted mid-way, and a gzip-labelled body. Plain HTTP/1.1, or HTTPS (HTTP/1.1
//! and HTTP/2 by ALPN) with a certificate from its own rcgen test CA.
//!
//! It runs on its own thread with its own single-threaded runtime, so blocking
//! test code never starves it; dropping it stops the listener and every
//! connection.
//!
//! Routes (by path; the query carries parameters):
//! * `/sse?n=N&ms=M&gate=K&abort=1&tag=T`: N `content_block_delta` events whose
//!   text is `T-i`, M ms apart; with `gate=K` it waits after event K until the
//!   test calls [`Upstream::open_gate`]; then `message_stop`, or with `abort=1`
//!   the connection is broken instead (see [`sse_expected`]).
//! * `/upload`: reads the request body frame by frame, publishing the running
//!   byte count ([`Upstream::received`]), and answers
//!   `{"bytes": N, "fnv": "hex"}` (FNV-1a 64 of the body, see [`fnv1a`]).
//! * `/gzip`: answers [`GZIP_BODY`] with `content-encoding: gzip`.
//! * anything else: a JSON echo of the request head
//!   `{"method","path","version","headers":{name:[values]},"body_len"}`, with the
//!   status from a `status=NNN` query parameter (default 200), and the response
//!   headers `x-upstream: test-upstream`, `connection: x-resp-hop`,
//!   `x-resp-hop: 1` (the last two on HTTP/1.1 only).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_util::sync::CancellationToken;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type RespBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// The body `/gzip` answers (gzip magic, then arbitrary bytes: only the label matters).
pub const GZIP_BODY: &[u8] = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab\x56\x2a\xa9\x2c\x48\x55\xb2\x52\x00\x00\xff\xfe\x80\x7f";

pub const FNV_INIT: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a 64, incremental: `fnv1a(fnv1a(FNV_INIT, a), b) == fnv1a(FNV_INIT, a ++ b)`.
pub fn fnv1a(mut h: u64, data: &[u8]) -> u64 {
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The exact body `/sse?n=N&tag=T` sends when it completes (without `abort`).
pub fn sse_expected(tag: &str, n: usize) -> String {
    let mut s: String = (1..=n).map(|i| sse_event(tag, i)).collect();
    s.push_str(SSE_STOP);
    s
}

/// Event number `i` of `/sse` with tag `tag`.
pub fn sse_event(tag: &str, i: usize) -> String {
    format!(
        "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{tag}-{i}\"}}}}\n\n"
    )
}

pub const SSE_STOP: &str = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

/// One request head the upstream received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, as received.
    pub path: String,
    pub version: Version,
    pub headers: HeaderMap,
}

/// A test CA and the upstream's leaf certificate.
#[derive(Clone)]
pub struct TestTls {
    pub ca_pem: String,
    pub leaf_der: rustls_pki_types::CertificateDer<'static>,
    config: Arc<rustls::ServerConfig>,
}

impl TestTls {
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }
}

struct State {
    seen: Mutex<Vec<Seen>>,
    gate: Semaphore,
    received: watch::Sender<u64>,
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub tls: Option<TestTls>,
    state: Arc<State>,
    stop: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    /// Plain HTTP/1.1 on 127.0.0.1:0.
    pub fn start() -> Self {
        Self::spawn(None)
    }

    /// HTTPS on 127.0.0.1:0 with a fresh test CA; the leaf covers `localhost`
    /// and 127.0.0.1; ALPN offers `alpn` (e.g. `["h2", "http/1.1"]`).
    pub fn start_tls(alpn: &[&str]) -> Self {
        Self::spawn(Some(test_tls("hoopctl test upstream CA", alpn)))
    }

    fn spawn(tls: Option<TestTls>) -> Self {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let state = Arc::new(State {
            seen: Mutex::new(Vec::new()),
            gate: Semaphore::new(0),
            received: watch::Sender::new(0),
        });
        let stop = CancellationToken::new();
        let (st, stop2, tls2) = (state.clone(), stop.clone(), tls.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                loop {
                    let accepted = tokio::select! {
                        _ = stop2.cancelled() => break,
                        r = listener.accept() => r,
                    };
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_conn(stream, st.clone(), tls2.clone()));
                }
            });
            // Dropping the runtime drops every connection task.
        });
        Self {
            addr,
            tls,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` or `https://localhost:PORT`.
    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("https://localhost:{}", self.addr.port()),
            None => format!("http://{}", self.addr),
        }
    }

    /// Writes the test CA (PEM) into `dir` and returns its path.
    pub fn write_ca(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("test-upstream-ca.pem");
        std::fs::write(&path, &self.tls.as_ref().unwrap().ca_pem).unwrap();
        path
    }

    /// Every request head received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The received request whose path starts with `prefix` (exactly one).
    pub fn seen_one(&self, prefix: &str) -> Seen {
        let all: Vec<Seen> = self
            .seen()
            .into_iter()
            .filter(|s| s.path.starts_with(prefix))
            .collect();
        assert_eq!(
            all.len(),
            1,
            "expected one request to {prefix}, got {all:#?}"
        );
        all.into_iter().next().unwrap()
    }

    /// Lets `n` gated SSE streams go on past their first event.
    pub fn open_gate(&self, n: usize) {
        self.state.gate.add_permits(n);
    }

    /// The running count of upload bytes received by `/upload`.
    pub fn received(&self) -> watch::Receiver<u64> {
        self.state.received.subscribe()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A fresh test CA named `ca_name` and a server leaf for `localhost` and
/// 127.0.0.1 signed by it, offering `alpn`.
pub fn test_tls(ca_name: &str, alpn: &[&str]) -> TestTls {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    TestTls {
        ca_pem: ca_cert.pem(),
        leaf_der: leaf.der().clone(),
        config: Arc::new(config),
    }
}

async fn serve_conn(stream: TcpStream, state: Arc<State>, tls: Option<TestTls>) {
    let svc = hyper::service::service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(state, req).await) }
    });
    match tls {
        None => {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        }
        Some(tls) => {
            let acceptor = tls.acceptor();
            let Ok(Ok(stream)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await
            else {
                return;
            };
            if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            } else {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            }
        }
    }
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn full(bytes: impl Into<Bytes>) -> RespBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<RespBody> {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    state.seen.lock().unwrap().push(Seen {
        method: req.method().to_string(),
        path: path.clone(),
        version: req.version(),
        headers: req.headers().clone(),
    });
    let query = req.uri().query().unwrap_or("").to_string();
    match req.uri().path() {
        "/sse" => sse(state, &query),
        "/upload" => upload(state, req).await,
        "/gzip" => {
            let mut resp = Response::new(full(GZIP_BODY));
            resp.headers_mut()
                .insert("content-encoding", "gzip".parse().unwrap());
            resp.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            resp
        }
        _ => echo(req, &path, &query).await,
    }
}

async fn echo(req: Request<Incoming>, path: &str, query: &str) -> Response<RespBody> {
    let mut headers = serde_json::Map::new();
    for name in req.headers().keys() {
        let values: Vec<serde_json::Value> = req
            .headers()
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into())
            .collect();
        headers.insert(name.as_str().to_string(), values.into());
    }
    let method = req.method().to_string();
    let version = format!("{:?}", req.version());
    let h1 = req.version() == Version::HTTP_11;
    let body_len = match req.into_body().collect().await {
        Ok(b) => b.to_bytes().len(),
        Err(_) => return error(StatusCode::BAD_REQUEST, "request body failed"),
    };
    let json = serde_json::json!({
        "method": method, "path": path, "version": version, "headers": headers, "body_len": body_len,
    });
    let status = query_param(query, "status")
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let mut resp = Response::new(full(json.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap();
    let h = resp.headers_mut();
    h.insert("content-type", "application/json".parse().unwrap());
    h.insert("x-upstream", "test-upstream".parse().unwrap());
    if h1 {
        h.insert("connection", "x-resp-hop".parse().unwrap());
        h.insert("x-resp-hop", "1".parse().unwrap());
    }
    resp
}

fn error(status: StatusCode, msg: &str) -> Response<RespBody> {
    let mut resp = Response::new(full(msg.to_string()));
    *resp.status_mut() = status;
    resp
}

async fn upload(state: Arc<State>, req: Request<Incoming>) -> Response<RespBody> {
    let mut body = req.into_body();
    let (mut bytes, mut hash, mut frames) = (0u64, FNV_INIT, 0u64);
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return error(StatusCode::BAD_REQUEST, "upload body failed");
        };
        if let Some(data) = frame.data_ref() {
            bytes += data.len() as u64;
            frames += 1;
            hash = fnv1a(hash, data);
            let n = data.len() as u64;
            state.received.send_modify(|r| *r += n);
        }
    }
    let json = serde_json::json!({"bytes": bytes, "fnv": format!("{hash:016x}"), "frames": frames});
    let mut resp = Response::new(full(json.to_string()));
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    resp
}

fn sse(state: Arc<State>, query: &str) -> Response<RespBody> {
    let n: usize = query_param(query, "n")
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let ms: u64 = query_param(query, "ms")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let gate: Option<usize> = query_param(query, "gate").and_then(|s| s.parse().ok());
    let abort = query_param(query, "abort") == Some("1");
    let tag = query_param(query, "tag").unwrap_or("t").to_string();
    let (tx, body) = ChannelBody::new(4);
    tokio::spawn(async move {
        for i in 1..=n {
            if i > 1 && ms > 0 {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            if tx.send(Ok(Bytes::from(sse_event(&tag, i)))).await.is_err() {
                return;
            }
            if gate == Some(i) {
                // Bounded: a test that never opens the gate gets a broken stream.
                match tokio::time::timeout(Duration::from_secs(20), state.gate.acquire()).await {
                    Ok(Ok(permit)) => permit.forget(),
                    _ => {
                        let _ = tx.send(Err(io::Error::other("gate never opened"))).await;
                        return;
                    }
                }
            }
        }
        let last = if abort {
            Err(io::Error::other("upstream aborted the stream"))
        } else {
            Ok(Bytes::from(SSE_STOP))
        };
        let _ = tx.send(last).await;
    });
    let mut resp = Response::new(body.boxed());
    resp.headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    resp.headers_mut()
        .insert("cache-control", "no-cache".parse().unwrap());
    resp
}

/// A body fed through a channel: each `Ok` is one data frame, an `Err` fails
/// the body (the connection or stream is then reset), and closing the sender
/// ends it cleanly.
pub struct ChannelBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    done: bool,
}

impl ChannelBody {
    pub fn new(capacity: usize) -> (mpsc::Sender<io::Result<Bytes>>, Self) {
        let (tx, rx) = mpsc::channel(capacity);
        (tx, Self { rx, done: false })
    }
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
