//! The accept loop and the HTTP connection driver shared by every kind of
//! connection (front door, intercepted TLS, base-URL TLS).
//!
//! Owns: the listener's connection cap, the pause after failed accepts,
//! and the idle timer of served connections (HTTP/1.1 and HTTP/2).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::body::{Body, BoxError};
use super::limit::{Backoff, ConnLimit};
use super::{connect, Shared, MAX_HEADER_BYTES};

/// How long a connection closed for idleness may take to finish closing
/// (an HTTP/2 peer that never acknowledges the GOAWAY) before it is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Accepts until `shutdown` is cancelled; one tracked task per connection,
/// at most `max_connections` at once.
pub(super) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    max_connections: usize,
) {
    let mut limit = ConnLimit::new("proxy", max_connections);
    tracing::debug!(max = limit.max(), "proxy connection cap");
    let mut backoff = Backoff::default();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff.succeeded();
                // Over the cap the connection is dropped here: closed at once.
                let Some(slot) = limit.admit() else { continue };
                let shared2 = shared.clone();
                shared.tracker.spawn(async move {
                    connect::handle(shared2, stream, peer).await;
                    drop(slot);
                });
            }
            Err(e) => {
                // EMFILE and friends: log, breathe (longer each time), keep serving.
                let pause = backoff.failed();
                tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "accept failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

/// Requests in flight on one connection and when the last one ended, for
/// the idle timer.
struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    /// Milliseconds after `start` of the last request's start or end.
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    /// Resolves once no request has been in flight for the limit: `first`
    /// before the first request (HTTP/2 preface, TLS clients that never ask),
    /// `idle` after it. Returns whether the connection ever served a request
    /// (then it is closed politely, with an HTTP/2 GOAWAY).
    async fn idle(&self, first: Duration, idle: Duration) -> bool {
        loop {
            let limit = if self.requests.load(Ordering::Relaxed) == 0 {
                first
            } else {
                idle
            };
            if self.in_flight.load(Ordering::Relaxed) > 0 {
                tokio::time::sleep(limit).await;
                continue;
            }
            let deadline = self.last() + limit;
            if Instant::now() >= deadline {
                return self.requests.load(Ordering::Relaxed) > 0;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

/// One request in flight; it ends when its response body is dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request counted as in flight.
struct Tracked {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Drives one connection future; on shutdown, or when it has been idle too
/// long, asks it to finish gracefully, and drops it when the drain deadline
/// (or the close grace) passes.
macro_rules! drive {
    ($conn:expr, $shared:expr, $idle:expr) => {{
        let conn = $conn;
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => r,
            _ = $shared.graceful.cancelled() => {
                conn.as_mut().graceful_shutdown();
                tokio::select! {
                    r = conn.as_mut() => r,
                    _ = $shared.hard.cancelled() => Ok(()),
                }
            }
            served = $idle => {
                tracing::debug!(served, "closing an idle connection");
                if !served {
                    // Nothing to finish (an HTTP/2 graceful close would wait
                    // for the preface the client never sent): drop it.
                    return;
                }
                conn.as_mut().graceful_shutdown();
                tokio::select! {
                    r = conn.as_mut() => r,
                    _ = tokio::time::sleep(CLOSE_GRACE) => Ok(()),
                    _ = $shared.hard.cancelled() => Ok(()),
                }
            }
        }
    }};
}

/// Serves HTTP/1.1 (with upgrades, for CONNECT) or HTTP/2 on `io`.
pub(super) async fn serve<I, S, F>(shared: &Shared, io: I, h2: bool, service: S)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    let activity = Activity::new();
    let svc = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req| {
            let in_flight = activity.begin();
            let fut = service(req);
            async move {
                let resp = fut.await.map(|inner| {
                    Tracked {
                        inner,
                        _in_flight: in_flight,
                    }
                    .boxed_unsync()
                });
                Ok::<_, Infallible>(resp)
            }
        })
    };
    let t = shared.settings.timeouts;
    let idle = activity.idle(t.header_read, t.idle);
    let io = TokioIo::new(io);
    let result = if h2 {
        let mut b = http2::Builder::new(TokioExecutor::new());
        b.timer(TokioTimer::new())
            .max_header_list_size(MAX_HEADER_BYTES as u32)
            // A peer that stops answering PINGs (half-open) is closed,
            // even with streams open.
            .keep_alive_interval(Some(t.h2_ping))
            .keep_alive_timeout(t.h2_ping);
        drive!(b.serve_connection(io, svc), shared, idle)
    } else {
        let mut b = http1::Builder::new();
        b.timer(TokioTimer::new())
            .header_read_timeout(t.header_read)
            // Enforced as bytes arrive (431 beyond it); unlike max_buf_size
            // it does not also cap body reads.
            .max_header_size(MAX_HEADER_BYTES)
            .keep_alive(true);
        drive!(b.serve_connection(io, svc).with_upgrades(), shared, idle)
    };
    if let Err(e) = result {
        // Clients going away is normal; keep it at debug.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
