//! A test double of the Anthropic Messages API, good enough for the real Claude Code.
//!
//! Self-contained: uses only tokio, hyper (server http1/http2), hyper-util (tokio),
//! http-body-util, bytes, http, serde_json, and for [`FakeAnthropic::start_tls`]
//! tokio-rustls / rustls (ring). Nothing in here panics on a request path: a
//! failure inside a handler (including a panicking [`Responder`]) becomes a 500 with
//! an Anthropic-shaped error body.
//!
//! The server runs on its own thread with its own single-threaded tokio runtime, so it
//! can be used from plain `#[test]`s (e.g. ones that spawn `claude` with
//! `std::process::Command`) as well as from `#[tokio::test]`s, and it outlives no test:
//! dropping the [`FakeAnthropic`] stops the listener, aborts every open connection and
//! joins the thread.
//!
//! Default script (what Claude Code needs for one Bash round trip):
//!
//! * `POST /v1/messages` whose last `user` message carries a `tool_result` block →
//!   a text block ([`Script::final_text`], "All done.") with `stop_reason: end_turn`;
//! * else, if the request's `tools` include one named `Bash` → a `tool_use` block
//!   `{"name":"Bash","input":{"command": <Script::bash_command>,"description": ...}}`
//!   with `stop_reason: tool_use` (optionally preceded by a text block);
//! * else (title generation, quota checks, other side requests) → a short text
//!   ([`Script::side_text`]) with `end_turn`.
//!
//! `"stream": true` is answered as `text/event-stream` with the real event sequence
//! (`message_start`, `ping`, per block `content_block_start` / `content_block_delta`* /
//! `content_block_stop`, `message_delta` with usage, `message_stop`); `input_json_delta`
//! comes in several pieces, the first one empty like the real API. Otherwise one JSON
//! message. `POST /v1/messages/count_tokens` answers `{"input_tokens": N}`. Any other
//! path answers what Claude Code handles quietly (see [`OtherPaths`]). A [`Responder`]
//! hook can answer any request first: errors, other tool calls, or [`Reply::Chunks`]
//! for streams that are cut ([`StreamEnd::Abort`]) or stall ([`StreamEnd::Hang`]).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

/// Largest request body accepted (Claude Code's first /v1/messages is ~50-100 KB, its
/// telemetry batches up to a few hundred KB).
const MAX_BODY: usize = 32 * 1024 * 1024;
/// At most this many requests are kept; older ones are dropped first.
const MAX_RECORDED: usize = 10_000;
/// At most this many connections are served at once; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 256;

// ---------------------------------------------------------------------------------------
// Script
// ---------------------------------------------------------------------------------------

/// A hook that can answer any request before the built-in script does.
/// Return `None` to fall through to the script.
pub type Responder = Arc<dyn Fn(&RecordedRequest) -> Option<Reply> + Send + Sync>;

/// What the fake answers on paths other than `/v1/messages` and `/v1/messages/count_tokens`.
///
/// Observed with Claude Code 2.1.197 (through a CONNECT proxy, where it sends its
/// `/api/...` side requests to api.anthropic.com): `NotFound` lets a `claude -p` turn
/// finish in about 1 s; `EmptyOk` makes it retry `GET /api/claude_code/policy_limits`
/// 4 times with backoff (about 5 s lost), because `{}` is not a valid policy document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtherPaths {
    /// `404` with `{"type":"error","error":{"type":"not_found_error",...}}`.
    NotFound,
    /// `200` with `{}`.
    EmptyOk,
}

/// How the fake answers. Build with [`Script::bash`] or [`Script::default`] and the
/// `with_*` methods, or set the public fields directly.
#[derive(Clone)]
pub struct Script {
    /// The `command` of the Bash tool call.
    pub bash_command: String,
    /// The `description` of the Bash tool call.
    pub bash_description: String,
    /// Text block sent before the tool_use block in the same message (none by default).
    pub tool_preamble: Option<String>,
    /// The answer once the tool result came back.
    pub final_text: String,
    /// The answer to every other /v1/messages request (titles, quota checks, ...).
    pub side_text: String,
    /// Pause between two SSE events of a streamed answer.
    pub event_delay: Duration,
    /// Answer for paths the fake does not know.
    pub other_paths: OtherPaths,
    /// Consulted first for every request.
    pub responder: Option<Responder>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            bash_command: "echo hello".to_string(),
            bash_description: "Run the requested command".to_string(),
            tool_preamble: None,
            final_text: "All done.".to_string(),
            side_text: "Fake reply".to_string(),
            event_delay: Duration::from_millis(2),
            other_paths: OtherPaths::NotFound,
            responder: None,
        }
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Script")
            .field("bash_command", &self.bash_command)
            .field("bash_description", &self.bash_description)
            .field("tool_preamble", &self.tool_preamble)
            .field("final_text", &self.final_text)
            .field("side_text", &self.side_text)
            .field("event_delay", &self.event_delay)
            .field("other_paths", &self.other_paths)
            .field("responder", &self.responder.as_ref().map(|_| "<fn>"))
            .finish()
    }
}

impl Script {
    /// The Claude Code round trip: one Bash tool call running `command`, then "All done.".
    pub fn bash(command: impl Into<String>) -> Self {
        Script {
            bash_command: command.into(),
            ..Script::default()
        }
    }
    pub fn with_description(mut self, d: impl Into<String>) -> Self {
        self.bash_description = d.into();
        self
    }
    pub fn with_tool_preamble(mut self, t: impl Into<String>) -> Self {
        self.tool_preamble = Some(t.into());
        self
    }
    pub fn with_final_text(mut self, t: impl Into<String>) -> Self {
        self.final_text = t.into();
        self
    }
    pub fn with_side_text(mut self, t: impl Into<String>) -> Self {
        self.side_text = t.into();
        self
    }
    pub fn with_event_delay(mut self, d: Duration) -> Self {
        self.event_delay = d;
        self
    }
    pub fn with_other_paths(mut self, o: OtherPaths) -> Self {
        self.other_paths = o;
        self
    }
    /// Install a hook consulted before the script (return `None` to fall through).
    pub fn with_responder(
        mut self,
        f: impl Fn(&RecordedRequest) -> Option<Reply> + Send + Sync + 'static,
    ) -> Self {
        self.responder = Some(Arc::new(f));
        self
    }
}

/// One answer. `Message` is sent as SSE or JSON depending on the request's `stream`.
#[derive(Clone, Debug)]
pub enum Reply {
    /// An assistant message made of these content blocks (e.g. [`text_block`],
    /// [`tool_use_block`]) with this `stop_reason`.
    Message {
        content: Vec<Value>,
        stop_reason: String,
    },
    /// An Anthropic-shaped error: `{"type":"error","error":{"type":..,"message":..},"request_id":..}`,
    /// with extra response headers (e.g. `("x-should-retry","false")`).
    Error {
        status: u16,
        error_type: String,
        message: String,
        headers: Vec<(String, String)>,
    },
    /// Exactly these bytes.
    Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: Bytes,
    },
    /// A body sent piece by piece, each piece after its pause, then ending as `end` says.
    /// For cut or stalled streams, e.g. the first events of [`sse_events`] then
    /// [`StreamEnd::Abort`].
    Chunks {
        status: u16,
        headers: Vec<(String, String)>,
        chunks: Vec<(Duration, Bytes)>,
        end: StreamEnd,
    },
}

/// How a [`Reply::Chunks`] body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// Normal end of body.
    Finish,
    /// The connection is cut mid-body (hyper aborts it: no terminating chunk).
    Abort,
    /// No more bytes, connection left open until the client gives up or the fake stops.
    Hang,
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::Message {
            content: vec![text_block(text)],
            stop_reason: "end_turn".to_string(),
        }
    }
    pub fn tool_use(name: &str, input: Value) -> Reply {
        Reply::Message {
            content: vec![tool_use_block(&next_id("toolu_fake"), name, input)],
            stop_reason: "tool_use".to_string(),
        }
    }
    /// An error with the conventional `error.type` for `status`.
    pub fn error(status: u16, message: impl Into<String>) -> Reply {
        Reply::Error {
            status,
            error_type: error_type_for(status).to_string(),
            message: message.into(),
            headers: Vec::new(),
        }
    }
}

pub fn text_block(text: impl Into<String>) -> Value {
    json!({"type": "text", "text": text.into()})
}

pub fn tool_use_block(id: &str, name: &str, input: Value) -> Value {
    json!({"type": "tool_use", "id": id, "name": name, "input": input})
}

/// `error.type` by HTTP status, as the real API uses them.
pub fn error_type_for(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

// ---------------------------------------------------------------------------------------
// Recorded requests
// ---------------------------------------------------------------------------------------

/// One request as received (body as sent on the wire: not decompressed).
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query, e.g. `/v1/messages?beta=true`.
    pub path: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Milliseconds since the fake started.
    pub at_ms: u64,
}

impl RecordedRequest {
    /// The path without the query.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }
    /// First value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The body parsed as JSON (`None` if it is not JSON, e.g. compressed).
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
    /// `POST /v1/messages` (with or without a query).
    pub fn is_messages(&self) -> bool {
        self.method == "POST" && self.path_only() == "/v1/messages"
    }
}

/// What the fake does with a /v1/messages body under the built-in script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turn {
    /// The last user message carries a tool_result: answer `final_text`.
    AfterToolResult,
    /// `tools` includes Bash: answer the Bash tool call.
    ToolCall,
    /// Anything else: answer `side_text`.
    Side,
}

/// Classify a /v1/messages request body the way the script does.
pub fn classify(body: &Value) -> Turn {
    if last_user_has_tool_result(body) {
        Turn::AfterToolResult
    } else if has_tool(body, "Bash") {
        Turn::ToolCall
    } else {
        Turn::Side
    }
}

/// True when the last message with `role: user` has a `tool_result` content block.
pub fn last_user_has_tool_result(body: &Value) -> bool {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return false;
    };
    let Some(last_user) = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
    else {
        return false;
    };
    last_user
        .get("content")
        .and_then(Value::as_array)
        .is_some_and(|blocks| {
            blocks
                .iter()
                .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        })
}

/// All `tool_result` blocks of the last user message.
pub fn tool_results(body: &Value) -> Vec<Value> {
    body.get("messages")
        .and_then(Value::as_array)
        .and_then(|ms| {
            ms.iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        })
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .map(|blocks| {
            blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// True when the request offers a tool with this name.
pub fn has_tool(body: &Value, name: &str) -> bool {
    body.get("tools")
        .and_then(Value::as_array)
        .is_some_and(|tools| {
            tools
                .iter()
                .any(|t| t.get("name").and_then(Value::as_str) == Some(name))
        })
}

// ---------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------

struct Shared {
    script: Script,
    started: Instant,
    requests: Mutex<VecDeque<RecordedRequest>>,
    connections: AtomicU64,
}

/// A running fake. Dropping it stops the server.
pub struct FakeAnthropic {
    addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    shutdown: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for FakeAnthropic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeAnthropic")
            .field("url", &self.url())
            .finish()
    }
}

impl FakeAnthropic {
    /// Plain HTTP/1.1 on 127.0.0.1 with an ephemeral port.
    pub fn start(script: Script) -> io::Result<FakeAnthropic> {
        Self::spawn(script, None)
    }

    /// HTTPS on 127.0.0.1 with this certificate chain and key (PEM); ALPN offers `h2` and
    /// `http/1.1` and HTTP/1.1 is used when the client offers no ALPN.
    pub fn start_tls(script: Script, cert_pem: &str, key_pem: &str) -> io::Result<FakeAnthropic> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("cert pem: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("key pem: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| io::Error::other(format!("tls versions: {e}")))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("tls cert: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self::spawn(
            script,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
    }

    fn spawn(script: Script, tls: Option<tokio_rustls::TlsAcceptor>) -> io::Result<FakeAnthropic> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let shared = Arc::new(Shared {
            script,
            started: Instant::now(),
            requests: Mutex::new(VecDeque::new()),
            connections: AtomicU64::new(0),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (tx, rx) = watch::channel(false);
        let is_tls = tls.is_some();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-anthropic-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(serve(std_listener, tls, thread_shared, rx));
                // Dropping the runtime here cancels every task still running.
            })?;
        Ok(FakeAnthropic {
            addr,
            tls: is_tls,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT` (or `https://` for [`start_tls`](Self::start_tls)), no trailing slash.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn script(&self) -> &Script {
        &self.shared.script
    }

    /// Every request received so far, in order of arrival (complete bodies only).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        match self.shared.requests.lock() {
            Ok(g) => g.iter().cloned().collect(),
            Err(p) => p.into_inner().iter().cloned().collect(),
        }
    }

    /// Bodies of the `POST /v1/messages` requests (query allowed) that were JSON.
    pub fn messages_requests(&self) -> Vec<Value> {
        self.requests()
            .iter()
            .filter(|r| r.is_messages())
            .filter_map(|r| r.json())
            .collect()
    }

    /// `"METHOD /path?query"` for every request, handy in assertion messages.
    pub fn request_lines(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// Number of TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Forget the requests recorded so far.
    pub fn clear(&self) {
        match self.shared.requests.lock() {
            Ok(mut g) => g.clear(),
            Err(p) => p.into_inner().clear(),
        }
    }

    /// Poll (blocking this thread, 10 ms steps) until `pred(requests)` holds or `timeout`
    /// passes; returns whether it held. Don't call it on a current-thread tokio runtime
    /// that also runs the code under test.
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&[RecordedRequest]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.requests()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stop the server now (also done on drop).
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FakeAnthropic {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn serve(
    std_listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
        return;
    };
    let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.changed() => break,
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            a = listener.accept() => a,
        };
        // Reap finished connection tasks so the set stays small.
        while conns.try_join_next().is_some() {}
        let Ok((tcp, _peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        shared.connections.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        let tls = tls.clone();
        conns.spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_h1(TokioIo::new(tcp), shared).await,
                Some(acceptor) => {
                    let hs =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
                    let Ok(Ok(stream)) = hs else { return };
                    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                    if h2 {
                        let svc = service_fn(move |req| handle(req, shared.clone()));
                        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    } else {
                        serve_h1(TokioIo::new(stream), shared).await;
                    }
                }
            }
        });
    }
    // Dropping `conns` aborts every connection still open.
    conns.abort_all();
}

async fn serve_h1<I>(io: I, shared: Arc<Shared>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| handle(req, shared.clone()));
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .keep_alive(true)
        .serve_connection(io, svc)
        .await;
}

// ---------------------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------------------

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<FakeBody>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            let too_large = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            return Ok(if too_large {
                error_response(413, "request_too_large", "request body too large", &[])
            } else {
                error_response(
                    400,
                    "invalid_request_error",
                    &format!("reading body: {e}"),
                    &[],
                )
            });
        }
    };
    let recorded = RecordedRequest {
        method: parts.method.as_str().to_string(),
        version: format!("{:?}", parts.version),
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".to_string()),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        at_ms: u64::try_from(shared.started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    {
        let mut g = match shared.requests.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if g.len() >= MAX_RECORDED {
            g.pop_front();
        }
        g.push_back(recorded.clone());
    }
    // Everything below is pure computation; a panic (e.g. in a user responder) becomes a 500.
    let planned = catch_unwind(AssertUnwindSafe(|| plan(&recorded, &shared.script)));
    let response = match planned {
        Ok(p) => render(p, &recorded, &shared.script),
        Err(_) => error_response(500, "api_error", "fake_anthropic: handler panicked", &[]),
    };
    Ok(response)
}

fn plan(req: &RecordedRequest, script: &Script) -> Reply {
    if let Some(r) = &script.responder {
        if let Some(reply) = r(req) {
            return reply;
        }
    }
    let path = req.path_only();
    if req.method == "POST" && path == "/v1/messages" {
        let Some(body) = req.json() else {
            return Reply::error(400, "fake_anthropic: body is not JSON");
        };
        return match classify(&body) {
            Turn::AfterToolResult => Reply::text(script.final_text.clone()),
            Turn::ToolCall => {
                let mut content = Vec::new();
                if let Some(pre) = &script.tool_preamble {
                    content.push(text_block(pre.clone()));
                }
                content.push(tool_use_block(
                    &next_id("toolu_fake"),
                    "Bash",
                    json!({"command": script.bash_command, "description": script.bash_description}),
                ));
                Reply::Message {
                    content,
                    stop_reason: "tool_use".to_string(),
                }
            }
            Turn::Side => Reply::text(side_answer(&body, &script.side_text)),
        };
    }
    if req.method == "POST" && path == "/v1/messages/count_tokens" {
        let n = req.body.len() / 4 + 1;
        return Reply::Raw {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(json!({"input_tokens": n}).to_string()),
        };
    }
    match script.other_paths {
        OtherPaths::NotFound => Reply::error(
            404,
            format!("fake_anthropic: no route for {} {}", req.method, path),
        ),
        OtherPaths::EmptyOk => Reply::Raw {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from_static(b"{}"),
        },
    }
}

/// The side answer: `side_text`, or when the request asks for structured output
/// (`output_config.format.type == "json_schema"`, e.g. Claude Code's session-title
/// request) a JSON document matching the schema, with `side_text` in every string.
pub fn side_answer(body: &Value, side_text: &str) -> String {
    let format = body.get("output_config").and_then(|o| o.get("format"));
    match format {
        Some(f) if f.get("type").and_then(Value::as_str) == Some("json_schema") => {
            let schema = f.get("schema").cloned().unwrap_or(Value::Null);
            schema_instance(&schema, side_text, 0).to_string()
        }
        _ => side_text.to_string(),
    }
}

fn schema_instance(schema: &Value, text: &str, depth: usize) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match ty {
        "object" => {
            let mut out = serde_json::Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, sub) in props {
                    out.insert(k.clone(), schema_instance(sub, text, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => Value::Array(Vec::new()),
        "integer" | "number" => json!(0),
        "boolean" => json!(false),
        "null" => Value::Null,
        _ => json!(text),
    }
}

fn render(reply: Reply, req: &RecordedRequest, script: &Script) -> Response<FakeBody> {
    match reply {
        Reply::Raw {
            status,
            headers,
            body,
        } => {
            let mut resp = Response::new(FakeBody::full(body));
            *resp.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            add_headers(&mut resp, &headers);
            add_request_id(&mut resp);
            resp
        }
        Reply::Chunks {
            status,
            headers,
            chunks,
            end,
        } => {
            let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(16);
            tokio::spawn(async move {
                for (pause, chunk) in chunks {
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                    if tx.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                }
                match end {
                    StreamEnd::Finish => {}
                    StreamEnd::Abort => {
                        let _ = tx
                            .send(Err(io::Error::other("fake_anthropic: stream cut")))
                            .await;
                    }
                    StreamEnd::Hang => {
                        tokio::select! {
                            _ = tx.closed() => {}
                            _ = std::future::pending::<()>() => {}
                        }
                    }
                }
            });
            let mut resp = Response::new(FakeBody::Stream(rx));
            *resp.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            add_headers(&mut resp, &headers);
            add_request_id(&mut resp);
            resp
        }
        Reply::Error {
            status,
            error_type,
            message,
            headers,
        } => {
            let pairs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            error_response(status, &error_type, &message, &pairs)
        }
        Reply::Message {
            content,
            stop_reason,
        } => {
            let body = req.json().unwrap_or(Value::Null);
            let model = body
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("claude-fake-1")
                .to_string();
            let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
            let input_tokens = req.body.len() / 4 + 1;
            let message_id = next_id("msg_fake");
            if stream {
                let events = sse_events(&message_id, &model, &content, &stop_reason, input_tokens);
                let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(16);
                let delay = script.event_delay;
                tokio::spawn(async move {
                    for ev in events {
                        if tx.send(Ok(ev)).await.is_err() {
                            return; // client went away
                        }
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                    }
                });
                let mut resp = Response::new(FakeBody::Stream(rx));
                add_headers(
                    &mut resp,
                    &[
                        (
                            "content-type".into(),
                            "text/event-stream; charset=utf-8".into(),
                        ),
                        ("cache-control".into(), "no-cache".into()),
                    ],
                );
                add_request_id(&mut resp);
                resp
            } else {
                let out_tokens = output_tokens(&content);
                let msg = json!({
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop_reason,
                    "stop_sequence": null,
                    "usage": {
                        "input_tokens": input_tokens,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                        "output_tokens": out_tokens,
                    }
                });
                let mut resp = Response::new(FakeBody::full(Bytes::from(msg.to_string())));
                add_headers(
                    &mut resp,
                    &[("content-type".into(), "application/json".into())],
                );
                add_request_id(&mut resp);
                resp
            }
        }
    }
}

fn output_tokens(content: &[Value]) -> usize {
    content.iter().map(|b| b.to_string().len() / 4 + 1).sum()
}

/// One SSE event, `event: NAME\ndata: JSON\n\n`.
pub fn sse_event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// The full event sequence of a streamed message, one `Bytes` per event.
pub fn sse_events(
    message_id: &str,
    model: &str,
    content: &[Value],
    stop_reason: &str,
    input_tokens: usize,
) -> Vec<Bytes> {
    let mut out = Vec::new();
    out.push(sse_event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": message_id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 1}}}),
    ));
    out.push(sse_event("ping", &json!({"type": "ping"})));
    for (index, block) in content.iter().enumerate() {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("text");
        match kind {
            "text" => {
                let text = block.get("text").and_then(Value::as_str).unwrap_or("");
                out.push(sse_event(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": index,
                            "content_block": {"type": "text", "text": ""}}),
                ));
                for piece in split_pieces(text, 3) {
                    out.push(sse_event(
                        "content_block_delta",
                        &json!({"type": "content_block_delta", "index": index,
                                "delta": {"type": "text_delta", "text": piece}}),
                    ));
                }
            }
            "tool_use" | "server_tool_use" => {
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                let mut start = block.clone();
                if let Some(obj) = start.as_object_mut() {
                    obj.insert("input".to_string(), json!({}));
                }
                out.push(sse_event(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": index, "content_block": start}),
                ));
                // Like the real API: an empty first piece, then the JSON in a few pieces.
                let mut pieces = vec![String::new()];
                pieces.extend(split_pieces(&input.to_string(), 4));
                for piece in pieces {
                    out.push(sse_event(
                        "content_block_delta",
                        &json!({"type": "content_block_delta", "index": index,
                                "delta": {"type": "input_json_delta", "partial_json": piece}}),
                    ));
                }
            }
            _ => {
                // Unknown block kinds (thinking, ...) are sent whole in the start event.
                out.push(sse_event(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": index, "content_block": block}),
                ));
            }
        }
        out.push(sse_event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
        if index == 0 {
            out.push(sse_event("ping", &json!({"type": "ping"})));
        }
    }
    out.push(sse_event(
        "message_delta",
        &json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": output_tokens(content)}}),
    ));
    out.push(sse_event("message_stop", &json!({"type": "message_stop"})));
    out
}

/// Split `s` into at most `n` non-empty pieces on char boundaries (one piece if short).
fn split_pieces(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    let n = n.clamp(1, chars.len());
    let size = chars.len().div_ceil(n);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn error_response(
    status: u16,
    error_type: &str,
    message: &str,
    headers: &[(&str, &str)],
) -> Response<FakeBody> {
    let body = json!({
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": next_id("req_fake"),
    });
    let mut resp = Response::new(FakeBody::full(Bytes::from(body.to_string())));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut pairs: Vec<(String, String)> = vec![("content-type".into(), "application/json".into())];
    pairs.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    add_headers(&mut resp, &pairs);
    add_request_id(&mut resp);
    resp
}

fn add_headers(resp: &mut Response<FakeBody>, headers: &[(String, String)]) {
    for (k, v) in headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            resp.headers_mut().append(name, value);
        }
    }
}

fn add_request_id(resp: &mut Response<FakeBody>) {
    if !resp.headers().contains_key("request-id") {
        if let Ok(v) = HeaderValue::from_str(&next_id("req_fake")) {
            resp.headers_mut().insert("request-id", v);
        }
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id(prefix: &str) -> String {
    format!("{prefix}_{:016x}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

// ---------------------------------------------------------------------------------------
// Response body: either one chunk or a channel of SSE events
// ---------------------------------------------------------------------------------------

pub enum FakeBody {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Result<Bytes, io::Error>>),
}

impl FakeBody {
    fn full(b: Bytes) -> FakeBody {
        FakeBody::Full(Some(b))
    }
}

impl hyper::body::Body for FakeBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            FakeBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            FakeBody::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, FakeBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            FakeBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            FakeBody::Full(None) => SizeHint::with_exact(0),
            FakeBody::Stream(_) => SizeHint::default(),
        }
    }
}
