//! TLS termination: after an intercepted CONNECT, and for base-URL mode
//! over https (a ClientHello arriving directly on the listener).
//!
//! `LazyConfigAcceptor` reads the ClientHello first, so the leaf is chosen
//! by SNI and checked against the CONNECT target before any key is used.

use std::sync::Arc;

use rustls::server::Acceptor;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::LazyConfigAcceptor;

use super::{accept, connect, service, Shared};
use crate::ca::leaf::LOOPBACK;

/// Terminates TLS inside an intercepted CONNECT tunnel to `host:port`.
pub(super) async fn intercept<IO>(shared: Arc<Shared>, io: IO, host: String, port: u16)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let acceptor = LazyConfigAcceptor::new(Acceptor::default(), io);
    let start = match tokio::time::timeout(shared.settings.timeouts.header_read, acceptor).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return tracing::debug!(host, error = %e, "no TLS ClientHello in the tunnel"),
        Err(_) => return tracing::debug!(host, "ClientHello timeout"),
    };
    if let Some(sni) = start.client_hello().server_name() {
        // A client must not use a tunnel to one host to reach another.
        if !sni.eq_ignore_ascii_case(&host) {
            tracing::warn!(host, sni, "SNI differs from the CONNECT target; closing");
            return;
        }
    }
    let config = match shared.settings.leaves.server_config(&host).await {
        Ok(c) => c,
        Err(e) => return tracing::error!(host, error = %e, "could not mint a leaf certificate"),
    };
    let tls = match start.into_stream(config).await {
        Ok(t) => t,
        Err(e) => return tracing::debug!(host, error = %e, "TLS handshake with the agent failed"),
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
    let acceptor = LazyConfigAcceptor::new(Acceptor::default(), stream);
    let start = match tokio::time::timeout(shared.settings.timeouts.header_read, acceptor).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return tracing::debug!(error = %e, "bad TLS ClientHello"),
        Err(_) => return tracing::debug!("ClientHello timeout"),
    };
    // Clients send no SNI for IP addresses; a name, if sent, must be one we may sign.
    let name = match start.client_hello().server_name() {
        None => LOOPBACK.to_string(),
        Some(n) if n.eq_ignore_ascii_case(LOOPBACK) => LOOPBACK.to_string(),
        Some(n) if n.eq_ignore_ascii_case(&shared.default_host) => n.to_ascii_lowercase(),
        Some(n) => return tracing::warn!(sni = n, "base-URL TLS for an unexpected name; closing"),
    };
    let config = match shared.settings.leaves.server_config(&name).await {
        Ok(c) => c,
        Err(e) => return tracing::error!(name, error = %e, "could not mint a leaf certificate"),
    };
    let tls = match start.into_stream(config).await {
        Ok(t) => t,
        Err(e) => return tracing::debug!(error = %e, "TLS handshake with the agent failed"),
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let s = shared.clone();
    accept::serve(&shared, tls, h2, move |req| {
        connect::base_url(s.clone(), req)
    })
    .await;
}
