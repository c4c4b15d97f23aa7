//! The front door: what arrives on the listener. A first byte of 0x16 is a
//! TLS ClientHello (base-URL mode over https). Anything else is HTTP/1.1
//! whose head the front door reads itself: `CONNECT host:port` is answered
//! directly on the socket (no HTTP server and no upgrade machinery between
//! the agent and its TLS tunnel); other requests (absolute-form proxy
//! requests, origin-form base-URL requests) go to hyper with the head put
//! back in front of the stream.
//!
//! Owns: proxy authentication and the egress verdict for each target.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine;
use bytes::{Bytes, BytesMut};
use http::{header, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::body::{self, Body};
use super::rewind::Rewind;
use super::{accept, service, tls, Shared, BASE_URL_PREFIX, MAX_HEADER_BYTES};
use crate::policy::Decision;
use crate::secret::constant_time_eq;

/// One accepted TCP connection.
pub(super) async fn handle(shared: Arc<Shared>, mut stream: TcpStream, peer: SocketAddr) {
    // Without TCP_NODELAY small writes (SSE events, TLS records) wait for
    // Nagle + delayed ACK: 40 ms stalls (SPEC section 8).
    let _ = stream.set_nodelay(true);
    let mut first = [0u8; 1];
    let peeked = tokio::select! {
        r = tokio::time::timeout(shared.settings.timeouts.header_read, stream.peek(&mut first)) => r,
        _ = shared.graceful.cancelled() => return,
    };
    match peeked {
        Ok(Ok(1)) => {}
        Ok(Ok(_)) => return,
        Ok(Err(e)) => {
            return tracing::debug!(%peer, error = %e, "connection failed before its first byte")
        }
        Err(_) => return tracing::debug!(%peer, "client sent nothing before the header timeout"),
    }
    if first[0] == 0x16 {
        return tls::serve_base_url(shared, stream).await;
    }
    let head = tokio::select! {
        r = tokio::time::timeout(shared.settings.timeouts.header_read, read_head(&mut stream)) => r,
        _ = shared.graceful.cancelled() => return,
    };
    let (buf, head_len) = match head {
        Ok(Ok(h)) => h,
        Ok(Err(HeadError::TooLarge)) => {
            let r = Refusal::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "hoopctl: request head too large\n",
            );
            return r.write(&mut stream).await;
        }
        Ok(Err(HeadError::Io(e))) => {
            return tracing::debug!(%peer, error = %e, "connection closed mid-head")
        }
        Err(_) => {
            return tracing::debug!(%peer, "request head not complete before the header timeout")
        }
    };
    if buf.starts_with(b"CONNECT ") {
        connect(shared, stream, buf, head_len).await;
    } else {
        let s = shared.clone();
        let io = Rewind::new(buf.freeze(), stream);
        accept::serve(&shared, io, false, move |req| front(s.clone(), req)).await;
    }
}

enum HeadError {
    TooLarge,
    Io(std::io::Error),
}

/// Reads until the end of the request head; returns everything read so
/// far and the head's length.
async fn read_head(stream: &mut TcpStream) -> Result<(BytesMut, usize), HeadError> {
    let mut buf = BytesMut::with_capacity(1024);
    let mut scanned = 0;
    loop {
        if let Some(i) = buf[scanned..].windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok((buf, scanned + i + 4));
        }
        scanned = buf.len().saturating_sub(3);
        if buf.len() >= MAX_HEADER_BYTES {
            return Err(HeadError::TooLarge);
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) => return Err(HeadError::Io(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => {}
            Err(e) => return Err(HeadError::Io(e)),
        }
    }
}

/// A refusal the front door sends, on the socket or through hyper.
struct Refusal {
    status: StatusCode,
    body: String,
    authenticate: bool,
}

impl Refusal {
    fn new(status: StatusCode, body: impl Into<String>) -> Self {
        Self {
            status,
            body: body.into(),
            authenticate: false,
        }
    }

    fn auth_required() -> Self {
        Self {
            authenticate: true,
            ..Self::new(
                StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                "hoopctl: proxy authentication required. Use the proxy URL that `hoopctl connect claude-code` \
                 sets or prints (`--print-env`); it carries this proxy's secret.\n",
            )
        }
    }

    fn denied(host: &str, port: u16) -> Self {
        tracing::info!(host, port, decision = "deny", "egress denied");
        let body = if port == crate::policy::egress::HTTPS_PORT {
            format!(
                "hoopctl: connections to {host} are denied by policy (egress). To allow it unchanged, \
                 add it to `allow` in the [egress] table of your policy file (--policy).\n"
            )
        } else {
            format!(
                "hoopctl: connections to {host} on port {port} are denied by policy (egress); hosts are \
                 allowed on port 443 only unless an `allow` entry names the port. To allow it unchanged, \
                 add \"{host}:{port}\" to `allow` in the [egress] table of your policy file (--policy).\n"
            )
        };
        Self::new(StatusCode::FORBIDDEN, body)
    }

    fn into_response(self) -> Response<Body> {
        let mut resp = Response::new(body::full(self.body));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if self.authenticate {
            h.insert(
                header::PROXY_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"hoopctl\""),
            );
        }
        resp
    }

    /// Writes the response on the raw socket and closes it.
    async fn write<S: tokio::io::AsyncWrite + Unpin>(self, stream: &mut S) {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or(""),
            self.body.len()
        );
        if self.authenticate {
            out.push_str("Proxy-Authenticate: Basic realm=\"hoopctl\"\r\n");
        }
        out.push_str("\r\n");
        out.push_str(&self.body);
        let _ = stream.write_all(out.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
}

/// Whether a `Proxy-Authorization: Basic base64(user:secret)` value carries the secret.
fn proxy_auth_ok(shared: &Shared, value: Option<&[u8]>) -> bool {
    let Some(value) = value.and_then(|v| std::str::from_utf8(v).ok()) else {
        return false;
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    match decoded.iter().position(|&b| b == b':') {
        Some(i) => constant_time_eq(
            &decoded[i + 1..],
            shared.settings.secret.expose().as_bytes(),
        ),
        None => false,
    }
}

fn authorized(shared: &Shared, req: &Request<Incoming>) -> bool {
    proxy_auth_ok(
        shared,
        req.headers()
            .get(header::PROXY_AUTHORIZATION)
            .map(|v| v.as_bytes()),
    )
}

const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection Established\r\n\r\n";

/// `CONNECT host:port`, answered on the socket.
async fn connect(shared: Arc<Shared>, mut stream: TcpStream, buf: BytesMut, head_len: usize) {
    let head = match super::head::parse_connect(&buf[..head_len]) {
        Ok(h) => h,
        Err(why) => {
            return Refusal::new(StatusCode::BAD_REQUEST, format!("hoopctl: {why}\n"))
                .write(&mut stream)
                .await;
        }
    };
    if !proxy_auth_ok(&shared, head.proxy_authorization.as_deref()) {
        return Refusal::auth_required().write(&mut stream).await;
    }
    let (host, port) = (head.host, head.port);
    // Bytes the client sent after the head (a pipelined ClientHello) stay in front.
    let rest = Bytes::copy_from_slice(&buf[head_len..]);
    // Nothing is dialled for a denied host or port.
    match shared.settings.policy.egress.decide(&host, port) {
        Decision::Deny => {
            note_egress(&shared, &host, port, "deny", None);
            Refusal::denied(&host, port).write(&mut stream).await
        }
        Decision::Tunnel => tunnel(&shared, stream, rest, &host, port).await,
        Decision::Intercept => {
            note_egress(&shared, &host, port, "intercept", None);
            if stream.write_all(ESTABLISHED).await.is_err() {
                return;
            }
            tracing::debug!(host, port, "intercepting");
            tls::intercept(shared.clone(), Rewind::new(rest, stream), host, port).await;
        }
    }
}

/// Tunnels the connection unchanged. The upstream is dialled before the
/// 200, so a failure reaches the client as a 502 instead of a reset.
async fn tunnel(shared: &Shared, mut stream: TcpStream, rest: Bytes, host: &str, port: u16) {
    let dial = tokio::time::timeout(
        shared.settings.timeouts.connect,
        TcpStream::connect((host, port)),
    );
    let mut upstream = match dial.await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            note_egress(shared, host, port, "tunnel_failed", None);
            let body = format!("hoopctl: could not connect to {host}:{port}: {e}\n");
            return Refusal::new(StatusCode::BAD_GATEWAY, body)
                .write(&mut stream)
                .await;
        }
        Err(_) => {
            note_egress(shared, host, port, "tunnel_failed", None);
            let body = format!("hoopctl: connecting to {host}:{port} timed out\n");
            return Refusal::new(StatusCode::GATEWAY_TIMEOUT, body)
                .write(&mut stream)
                .await;
        }
    };
    let _ = upstream.set_nodelay(true);
    if stream.write_all(ESTABLISHED).await.is_err() {
        return;
    }
    tracing::info!(host, port, decision = "tunnel", "egress tunneled");
    let client = Rewind::new(rest, stream);
    // Counted as they pass, so a tunnel cut at shutdown still reports its bytes.
    let mut client = Counted::new(client);
    let (read, written) = (client.read.clone(), client.written.clone());
    let idle = shared.settings.timeouts.idle;
    let silent = async {
        // Checked a few times per period: closes after `idle` to 4/3 `idle`
        // without a byte either way.
        let tick = (idle / 3).max(std::time::Duration::from_millis(10));
        let total = || read.load(Ordering::Relaxed) + written.load(Ordering::Relaxed);
        let (mut seen, mut since) = (total(), tokio::time::Instant::now());
        loop {
            tokio::time::sleep(tick).await;
            let now = total();
            if now != seen {
                (seen, since) = (now, tokio::time::Instant::now());
            } else if since.elapsed() >= idle {
                return;
            }
        }
    };
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut client, &mut upstream) => match r {
            Ok((up, down)) => tracing::debug!(host, up, down, "tunnel closed"),
            Err(e) => tracing::debug!(host, error = %e, "tunnel failed"),
        },
        _ = silent => {
            tracing::debug!(host, secs = idle.as_secs(), "tunnel closed after no traffic either way")
        }
        _ = shared.hard.cancelled() => {}
    }
    note_egress(
        shared,
        host,
        port,
        "tunnel",
        Some((
            client.read.load(Ordering::Relaxed),
            client.written.load(Ordering::Relaxed),
        )),
    );
}

/// Records an egress decision (no agent session is known at CONNECT) and
/// tells watchers.
fn note_egress(shared: &Shared, host: &str, port: u16, decision: &str, bytes: Option<(u64, u64)>) {
    if shared.settings.bus.active() {
        shared.settings.bus.publish(crate::events::Event::Egress {
            host: format!("{host}:{port}"),
            decision: decision.to_string(),
        });
    }
    if let Some(r) = &shared.settings.recorder {
        r.record(super::record::egress(
            r.session(None, None),
            host,
            port,
            decision,
            bytes,
        ));
    }
}

/// A stream that counts the bytes read from and written to it.
struct Counted<S> {
    inner: S,
    /// Shared with the tunnel's idle watch.
    read: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl<S> Counted<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            read: Arc::default(),
            written: Arc::default(),
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.read.fetch_add(n, Ordering::Relaxed);
        r
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, data);
        if let std::task::Poll::Ready(Ok(n)) = &r {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Requests other than a leading CONNECT, served by hyper.
async fn front(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    if req.method() == Method::CONNECT {
        let msg = "hoopctl: send CONNECT as the first request of a new connection\n";
        Refusal::new(StatusCode::BAD_REQUEST, msg).into_response()
    } else if req.uri().scheme().is_some() {
        absolute(shared, req).await
    } else {
        base_url(shared, req).await
    }
}

/// `GET http://host/path` through the proxy.
async fn absolute(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    if !authorized(&shared, &req) {
        return Refusal::auth_required().into_response();
    }
    let Some(authority) = req.uri().authority().cloned() else {
        return Refusal::new(
            StatusCode::BAD_REQUEST,
            "hoopctl: request URI has no host\n",
        )
        .into_response();
    };
    let host = authority.host().to_ascii_lowercase();
    let default_port = if req.uri().scheme() == Some(&http::uri::Scheme::HTTPS) {
        443
    } else {
        80
    };
    let port = authority.port_u16().unwrap_or(default_port);
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let egress = &shared.settings.policy.egress;
    // Intercepted hosts are always forwarded to their port 443, whatever
    // port the URL names; nothing is dialled on the port asked for.
    let asked = if egress.intercepts(&host) { 443 } else { port };
    let origin = match egress.decide(&host, asked) {
        Decision::Deny => {
            note_egress(&shared, &host, port, "deny", None);
            return Refusal::denied(&host, port).into_response();
        }
        Decision::Intercept => shared.target_for(&host, 443),
        Decision::Tunnel => {
            let scheme = req.uri().scheme_str().unwrap_or("http");
            super::upstream::Origin::parse(&format!("{scheme}://{host}:{port}"))
                .ok()
                .map(super::Target::Origin)
        }
    };
    match origin {
        Some(target) => service::forward(&shared, req, &target, &pq).await,
        None => Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("hoopctl: cannot forward to {host}\n"),
        )
        .into_response(),
    }
}

/// Base-URL mode (`ANTHROPIC_BASE_URL=http(s)://127.0.0.1:PORT/_hoopctl/SECRET`):
/// an origin-form request for the default intercepted host.
pub(super) async fn base_url(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let rest = pq.strip_prefix(BASE_URL_PREFIX).and_then(|after| {
        let secret = shared.settings.secret.expose();
        let after_secret = after.get(secret.len()..)?;
        let ok = constant_time_eq(after.as_bytes().get(..secret.len())?, secret.as_bytes())
            && (after_secret.is_empty() || after_secret.starts_with(['/', '?']));
        ok.then(|| after_secret.to_string())
    });
    let pq = match rest {
        Some(rest) => rest,
        None if authorized(&shared, &req) => pq.to_string(),
        None => {
            let err = crate::anthropic::error::ApiError::final_(
                401,
                "hoopctl: this proxy needs its secret. Set ANTHROPIC_BASE_URL to the base URL \
                 `hoopctl connect claude-code` prints (it ends in /_hoopctl/SECRET), or use HTTPS_PROXY.",
            );
            return service::error_response(&err);
        }
    };
    let target = shared.default_target.clone();
    service::forward(&shared, req, &target, &pq).await
}
