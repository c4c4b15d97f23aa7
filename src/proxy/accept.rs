//! The accept loop and the HTTP connection driver shared by every kind of
//! connection (front door, intercepted TLS, base-URL TLS).

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::body::Body;
use super::{connect, Shared, MAX_HEADER_BYTES};

/// Accepts until `shutdown` is cancelled; one tracked task per connection.
pub(super) async fn run(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                let shared2 = shared.clone();
                shared
                    .tracker
                    .spawn(async move { connect::handle(shared2, stream, peer).await });
            }
            Err(e) => {
                // EMFILE and friends: log, breathe, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Drives one connection future; on shutdown asks it to finish gracefully,
/// and drops it when the drain deadline passes.
macro_rules! drive {
    ($conn:expr, $shared:expr) => {{
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
    let svc = hyper::service::service_fn(move |req| {
        let fut = service(req);
        async move { Ok::<_, Infallible>(fut.await) }
    });
    let io = TokioIo::new(io);
    let result = if h2 {
        let mut b = http2::Builder::new(TokioExecutor::new());
        b.timer(TokioTimer::new())
            .max_header_list_size(MAX_HEADER_BYTES as u32);
        drive!(b.serve_connection(io, svc), shared)
    } else {
        let mut b = http1::Builder::new();
        b.timer(TokioTimer::new())
            .header_read_timeout(shared.settings.timeouts.header_read)
            // Enforced as bytes arrive (431 beyond it); unlike max_buf_size
            // it does not also cap body reads.
            .max_header_size(MAX_HEADER_BYTES)
            .keep_alive(true);
        drive!(b.serve_connection(io, svc).with_upgrades(), shared)
    };
    if let Err(e) = result {
        // Clients going away is normal; keep it at debug.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
