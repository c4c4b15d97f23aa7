//! TLS termination: after an intercepted CONNECT, and for base-URL mode
//! over https (a ClientHello arriving directly on the listener).
//!
//! `LazyConfigAcceptor` reads the ClientHello first, so the leaf is chosen
//! by SNI and checked against the CONNECT target before any key is used.

use std::sync::Arc;

use rustls::server::Acceptor;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

use super::{accept, connect, service, Shared};
use crate::ca::leaf::LOOPBACK;

/// Terminates TLS inside an intercepted CONNECT tunnel to `host:port`.
pub(super) async fn intercept<IO>(shared: Arc<Shared>, io: IO, host: String, port: u16)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(tls) = within(&shared, handshake_in_tunnel(&shared, io, &host)).await else {
        return;
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let Some(target) = shared.target_for(&host, port) else {
        return tracing::warn!(host, "no upstream origin for host");
    };
    let s = shared.clone();
    accept::serve(&shared, tls, h2, move |req| {
        let s = s.clone();
        let target = target.clone();
        async move {
            let pq = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".into());
            service::forward(&s, req, &target, &pq).await
        }
    })
    .await;
}

/// Base-URL mode over https: the agent connects straight to the listener.
pub(super) async fn serve_base_url(shared: Arc<Shared>, stream: tokio::net::TcpStream) {
    let Some(tls) = within(&shared, handshake_base_url(&shared, stream)).await else {
        return;
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let s = shared.clone();
    accept::serve(&shared, tls, h2, move |req| {
        connect::base_url(s.clone(), req)
    })
    .await;
}

/// Runs a handshake within [`super::Timeouts::tls_handshake`]: a client
/// that stalls anywhere in it (before or after its ClientHello) is closed.
async fn within<T>(
    shared: &Shared,
    handshake: impl std::future::Future<Output = Option<T>>,
) -> Option<T> {
    let limit = shared.settings.timeouts.tls_handshake;
    match tokio::time::timeout(limit, handshake).await {
        Ok(t) => t,
        Err(_) => {
            tracing::debug!(
                secs = limit.as_secs_f32(),
                "TLS handshake not complete in time; closing"
            );
            None
        }
    }
}

/// The handshake inside an intercepted tunnel to `host`.
async fn handshake_in_tunnel<IO>(shared: &Shared, io: IO, host: &str) -> Option<TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let start = match LazyConfigAcceptor::new(Acceptor::default(), io).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(host, error = %e, "no TLS ClientHello in the tunnel");
            return None;
        }
    };
    if let Some(sni) = start.client_hello().server_name() {
        // A client must not use a tunnel to one host to reach another.
        if !sni.eq_ignore_ascii_case(host) {
            tracing::warn!(host, sni, "SNI differs from the CONNECT target; closing");
            return None;
        }
    }
    let config = match shared.settings.leaves.server_config(host).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(host, error = %e, "could not mint a leaf certificate");
            return None;
        }
    };
    start
        .into_stream(config)
        .await
        .map_err(|e| tracing::debug!(host, error = %e, "TLS handshake with the agent failed"))
        .ok()
}

/// The handshake of base-URL mode over https (no proxy authentication yet).
async fn handshake_base_url(
    shared: &Shared,
    stream: tokio::net::TcpStream,
) -> Option<TlsStream<tokio::net::TcpStream>> {
    let start = match LazyConfigAcceptor::new(Acceptor::default(), stream).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "bad TLS ClientHello");
            return None;
        }
    };
    // Clients send no SNI for IP addresses; a name, if sent, must be one we may sign.
    let name = match start.client_hello().server_name() {
        None => LOOPBACK.to_string(),
        Some(n) if n.eq_ignore_ascii_case(LOOPBACK) => LOOPBACK.to_string(),
        Some(n) if n.eq_ignore_ascii_case(&shared.default_host) => n.to_ascii_lowercase(),
        Some(n) => {
            tracing::warn!(sni = n, "base-URL TLS for an unexpected name; closing");
            return None;
        }
    };
    let config = match shared.settings.leaves.server_config(&name).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(name, error = %e, "could not mint a leaf certificate");
            return None;
        }
    };
    start
        .into_stream(config)
        .await
        .map_err(|e| tracing::debug!(error = %e, "TLS handshake with the agent failed"))
        .ok()
}
