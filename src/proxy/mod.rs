//! The forward proxy: a loopback listener that authenticates the agent,
//! asks policy what to do with each host, terminates TLS for intercepted
//! hosts and relays requests to the upstream.
//!
//! Owns: the proxy's lifecycle (bind, run, graceful drain). Must not:
//! decide policy itself; it asks `policy`.

mod accept;
pub mod body;
mod connect;
pub mod encoding;
mod gateway;
#[doc(hidden)]
pub mod head;
pub(crate) mod limit;
mod pipeline;
pub(crate) mod record;
pub use record::bench_recording;
mod rewind;
mod service;
mod tls;
pub mod upstream;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ca::leaf::LeafCache;
use crate::policy::Policy;
use crate::secret::Secret;
use upstream::{HttpClient, Origin};

/// The user name in the proxy URL; only the password (the secret) is checked.
pub const PROXY_USER: &str = "hoopctl";
/// Path prefix that authenticates base-URL mode, where no proxy header is sent:
/// `ANTHROPIC_BASE_URL=http://127.0.0.1:PORT/_hoopctl/SECRET`.
pub const BASE_URL_PREFIX: &str = "/_hoopctl/";
/// Largest request head accepted from the agent (431 beyond it).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid listen address {0:?}: expected IP:PORT, e.g. 127.0.0.1:7733")]
    BadAddress(String),
    #[error("refusing to listen on {0}: hoopctl only listens on loopback (127.0.0.1 or ::1)")]
    NotLoopback(SocketAddr),
    #[error("{0} is already in use (another hoopctl proxy, or another program); pick another port with --listen 127.0.0.1:PORT, or 127.0.0.1:0 for any free port")]
    InUse(SocketAddr),
    #[error("could not listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

/// Default of [`Timeouts::tls_handshake`].
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`Timeouts::idle`].
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Default of [`Timeouts::h2_ping`].
pub const H2_PING_INTERVAL: Duration = Duration::from_secs(20);
/// Default of [`Timeouts::response_head`]: 10 minutes, the request timeout
/// of Claude Code and the Anthropic SDKs (`API_TIMEOUT_MS`). A streaming
/// answer sends its head at once, but a non-streaming one (Claude Code's
/// fallback after a stalled stream) sends it only when the whole answer is
/// generated, which can take minutes: a shorter bound would cut honest
/// answers. It frees what a stopped upstream holds.
pub const RESPONSE_HEAD_TIMEOUT: Duration = Duration::from_secs(600);
/// The most connections the proxy listener serves at once (front door,
/// tunnels, base-URL TLS alike). Beyond it new connections are closed at
/// once, so stalled ones cannot take every descriptor.
pub const MAX_CONNECTIONS: usize = 512;

/// Timeouts of the proxy.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Connecting to an upstream (TCP + TLS), so an unreachable one fails fast.
    pub connect: Duration,
    /// How long a client may take to send a request head (slow clients).
    pub header_read: Duration,
    /// How long in-flight streams may run on after shutdown begins.
    pub drain: Duration,
    /// The whole TLS handshake with the agent (ClientHello to Finished), in
    /// a CONNECT tunnel or on the base-URL TLS port; a stalled one is closed.
    pub tls_handshake: Duration,
    /// How long a connection with no request in flight stays open (HTTP/2
    /// included, where hyper has no idle timer). Until its first request a
    /// connection gets `header_read` instead, so an unauthenticated one
    /// holds its descriptor no longer than a slow request head may. A
    /// CONNECT tunnel with no byte either way for this long is closed too.
    pub idle: Duration,
    /// HTTP/2 keep-alive: a PING every this long, and the connection is
    /// closed when one goes unanswered this long (a half-open peer).
    pub h2_ping: Duration,
    /// From sending a request upstream to its response head; then the agent
    /// gets an Anthropic-shaped 504 (streams send their head at once; only
    /// a stopped upstream takes this long).
    pub response_head: Duration,
    /// How fast a request body must arrive while hoopctl waits for it
    /// (408 otherwise); see `body::MIN_BODY_PROGRESS_BYTES`.
    pub body_progress: body::ProgressRule,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            header_read: Duration::from_secs(30),
            drain: Duration::from_secs(15),
            tls_handshake: TLS_HANDSHAKE_TIMEOUT,
            idle: IDLE_TIMEOUT,
            h2_ping: H2_PING_INTERVAL,
            response_head: RESPONSE_HEAD_TIMEOUT,
            body_progress: body::ProgressRule::default(),
        }
    }
}

/// Size limits that tests shrink (the others are constants).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most decoded bytes of one inspected event stream
    /// (`pipeline::MAX_DECODED_STREAM`); past it the stream ends with an
    /// error event.
    pub decoded_stream: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            decoded_stream: pipeline::MAX_DECODED_STREAM,
        }
    }
}

/// Everything the proxy needs, built by the supervisor.
pub struct Settings {
    pub secret: Secret,
    pub policy: Arc<Policy>,
    pub leaves: Arc<LeafCache>,
    pub client: HttpClient,
    /// Replaces the origin of intercepted hosts (`--upstream`).
    pub upstream: Option<Origin>,
    /// Gateway mode: intercepted hosts go to the gateway's proxy endpoint
    /// with this link's credential (`upstream` is then unused).
    pub gateway: Option<Arc<crate::gateway::link::Link>>,
    pub timeouts: Timeouts,
    pub limits: Limits,
    /// Live events (control socket, TUI).
    pub bus: crate::events::Bus,
    /// Tool calls held for a person.
    pub approvals: Arc<crate::approvals::Approvals>,
    /// The home directory guardrails expand `~` against.
    pub home: Option<std::path::PathBuf>,
    /// The local record (`None` when `[audit] enabled = false`).
    pub recorder: Option<Arc<crate::audit::recorder::Recorder>>,
}

/// Where a request goes.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A fixed origin: direct mode, `--upstream`, hosts passed through.
    Origin(Origin),
    /// The gateway's proxy endpoint, with the link's current credential.
    Gateway,
}

pub(crate) struct Shared {
    settings: Settings,
    /// Where base-URL requests go: the gateway, `--upstream`, else the
    /// first intercepted host.
    default_target: Target,
    default_host: String,
    tracker: TaskTracker,
    /// Masking placeholders per agent session.
    sessions: pipeline::Sessions,
    /// Request ids: a per-run prefix and a counter (no RNG call per request).
    id_prefix: String,
    next_id: std::sync::atomic::AtomicU64,
    /// Cancelled when shutdown begins: stop accepting, finish in-flight work.
    graceful: CancellationToken,
    /// Cancelled when the drain deadline passes: drop everything.
    hard: CancellationToken,
}

impl Shared {
    fn next_request_id(&self) -> String {
        let n = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("req_{}{n:06}", self.id_prefix)
    }

    /// Where an intercepted `host:port` is forwarded to.
    fn target_for(&self, host: &str, port: u16) -> Option<Target> {
        if self.settings.gateway.is_some() {
            return Some(Target::Gateway);
        }
        match &self.settings.upstream {
            Some(o) => Some(Target::Origin(o.clone())),
            None => Origin::https(host, port).ok().map(Target::Origin),
        }
    }
}

/// A bound, not yet running proxy.
pub struct Proxy {
    listener: TcpListener,
    shared: Arc<Shared>,
}

/// Parses and checks a listen address; only loopback is accepted.
pub fn parse_listen(addr: &str) -> Result<SocketAddr, Error> {
    let parsed: SocketAddr = match addr.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}").parse(),
        None => addr.parse(),
    }
    .map_err(|_| Error::BadAddress(addr.to_string()))?;
    if !parsed.ip().is_loopback() {
        return Err(Error::NotLoopback(parsed));
    }
    Ok(parsed)
}

impl Proxy {
    /// Binds `addr` (loopback only) and prepares the proxy.
    pub async fn bind(addr: SocketAddr, settings: Settings) -> Result<Self, Error> {
        if !addr.ip().is_loopback() {
            return Err(Error::NotLoopback(addr));
        }
        let listener = TcpListener::bind(addr).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => Error::InUse(addr),
            _ => Error::Bind(addr, e),
        })?;
        let default_host = settings
            .policy
            .egress
            .intercepted()
            .first()
            .cloned()
            .unwrap_or_else(|| "api.anthropic.com".to_string());
        let default_target = match (&settings.gateway, &settings.upstream) {
            (Some(_), _) => Target::Gateway,
            (None, Some(o)) => Target::Origin(o.clone()),
            (None, None) => Target::Origin(
                Origin::https(&default_host, 443)
                    .map_err(|_| Error::BadAddress(default_host.clone()))?,
            ),
        };
        let shared = Arc::new(Shared {
            settings,
            default_target,
            default_host,
            tracker: TaskTracker::new(),
            sessions: pipeline::Sessions::default(),
            id_prefix: crate::secret::random_hex(4).unwrap_or_default(),
            next_id: std::sync::atomic::AtomicU64::new(1),
            graceful: CancellationToken::new(),
            hard: CancellationToken::new(),
        });
        Ok(Self { listener, shared })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from((IpAddr::from([127, 0, 0, 1]), 0)))
    }

    /// Runs until `shutdown` is cancelled, then stops accepting, lets
    /// in-flight requests and streams finish for up to the drain timeout,
    /// and returns how many connections were still open when it gave up.
    pub async fn run(self, shutdown: CancellationToken) -> usize {
        let shared = self.shared.clone();
        // Mint the intercepted hosts' leaves now, off the accept path, so
        // the first connection does not pay for it.
        let warm = shared.clone();
        shared.tracker.spawn(async move {
            let mut hosts = warm.settings.policy.egress.intercepted().to_vec();
            hosts.push(crate::ca::leaf::LOOPBACK.to_string());
            for host in hosts {
                if let Err(e) = warm.settings.leaves.server_config(&host).await {
                    tracing::warn!(host, error = %e, "could not mint leaf certificate");
                }
            }
        });
        if let Some(link) = &shared.settings.gateway {
            tokio::spawn(link.clone().keep_fresh(shared.graceful.clone()));
        }
        let cap = limit::connection_cap(MAX_CONNECTIONS);
        accept::run(self.listener, shared.clone(), shutdown, cap).await;
        shared.graceful.cancel();
        shared.tracker.close();
        let open = shared.tracker.len();
        if open > 0 {
            tracing::info!(open, "draining in-flight connections");
        }
        if tokio::time::timeout(shared.settings.timeouts.drain, shared.tracker.wait())
            .await
            .is_err()
        {
            let left = shared.tracker.len();
            tracing::warn!(
                left,
                "drain timeout reached; closing the remaining connections"
            );
            shared.hard.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(2), shared.tracker.wait()).await;
            return left;
        }
        0
    }
}
