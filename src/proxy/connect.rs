//! The front door: what arrives on the listener. A first byte of 0x16 is a
//! TLS ClientHello (base-URL mode over https); anything else is HTTP/1.1:
//! `CONNECT host:port`, an absolute-form proxy request, or an origin-form
//! request in base-URL mode.
//!
//! Owns: proxy authentication and the egress verdict for each target.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use http::{header, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::{self, Body};
use super::{accept, service, tls, Shared, BASE_URL_PREFIX};
use crate::policy::Decision;
use crate::secret::constant_time_eq;

/// One accepted TCP connection.
pub(super) async fn handle(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
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
            tracing::debug!(%peer, error = %e, "connection failed before its first byte");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "client sent nothing before the header timeout");
            return;
        }
    }
    if first[0] == 0x16 {
        tls::serve_base_url(shared, stream).await;
    } else {
        let s = shared.clone();
        accept::serve(&shared, stream, false, move |req| front(s.clone(), req)).await;
    }
}

async fn front(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    if req.method() == Method::CONNECT {
        connect(shared, req).await
    } else if req.uri().scheme().is_some() {
        absolute(shared, req).await
    } else {
        base_url(shared, req).await
    }
}

/// Whether `Proxy-Authorization: Basic base64(user:secret)` carries the secret.
fn authorized(shared: &Shared, req: &Request<Incoming>) -> bool {
    let Some(value) = req.headers().get(header::PROXY_AUTHORIZATION) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
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
    let password = match decoded.iter().position(|&b| b == b':') {
        Some(i) => &decoded[i + 1..],
        None => return false,
    };
    constant_time_eq(password, shared.settings.secret.expose().as_bytes())
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(body::full(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

fn auth_required() -> Response<Body> {
    let mut resp = text(
        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        "hoopctl: proxy authentication required. Use the proxy URL that `hoopctl connect claude-code` \
         sets or prints (`--print-env`); it carries this proxy's secret.\n"
            .to_string(),
    );
    resp.headers_mut()
        .insert(header::PROXY_AUTHENTICATE, http::HeaderValue::from_static("Basic realm=\"hoopctl\""));
    resp
}

fn denied(host: &str) -> Response<Body> {
    tracing::info!(host, decision = "deny", "egress denied");
    text(
        StatusCode::FORBIDDEN,
        format!(
            "hoopctl: connections to {host} are denied by policy (egress). To allow it unchanged, \
             add it to `allow` in the [egress] table of your policy file (--policy).\n"
        ),
    )
}

async fn connect(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    if !authorized(&shared, &req) {
        return auth_required();
    }
    let Some(authority) = req.uri().authority().cloned() else {
        return text(StatusCode::BAD_REQUEST, "hoopctl: CONNECT needs host:port\n".into());
    };
    let host = authority.host().trim_matches(['[', ']']).to_string();
    let port = authority.port_u16().unwrap_or(443);
    match shared.settings.policy.egress.decide(&host) {
        Decision::Deny => denied(&host),
        Decision::Tunnel => tunnel(shared, req, host, port).await,
        Decision::Intercept => {
            tracing::debug!(host, port, "intercepting");
            let s = shared.clone();
            shared.tracker.spawn(async move {
                match hyper::upgrade::on(req).await {
                    Ok(upgraded) => tls::intercept(s, TokioIo::new(upgraded), host, port).await,
                    Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
                }
            });
            Response::new(body::empty())
        }
    }
}

/// Tunnels the connection unchanged. The upstream is dialled before the
/// 200, so a failure reaches the client as a 502 instead of a reset.
async fn tunnel(shared: Arc<Shared>, req: Request<Incoming>, host: String, port: u16) -> Response<Body> {
    let dial = tokio::time::timeout(shared.settings.timeouts.connect, TcpStream::connect((host.as_str(), port)));
    let mut upstream = match dial.await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return text(StatusCode::BAD_GATEWAY, format!("hoopctl: could not connect to {host}:{port}: {e}\n"))
        }
        Err(_) => {
            return text(StatusCode::GATEWAY_TIMEOUT, format!("hoopctl: connecting to {host}:{port} timed out\n"))
        }
    };
    let _ = upstream.set_nodelay(true);
    tracing::info!(host, port, decision = "tunnel", "egress tunneled");
    let s = shared.clone();
    shared.tracker.spawn(async move {
        let upgraded = match hyper::upgrade::on(req).await {
            Ok(u) => u,
            Err(e) => return tracing::debug!(error = %e, "CONNECT upgrade failed"),
        };
        let mut client = TokioIo::new(upgraded);
        tokio::select! {
            r = tokio::io::copy_bidirectional(&mut client, &mut upstream) => match r {
                Ok((up, down)) => tracing::debug!(host, up, down, "tunnel closed"),
                Err(e) => tracing::debug!(host, error = %e, "tunnel failed"),
            },
            _ = s.hard.cancelled() => {}
        }
    });
    Response::new(body::empty())
}

/// `GET http://host/path` through the proxy.
async fn absolute(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    if !authorized(&shared, &req) {
        return auth_required();
    }
    let Some(authority) = req.uri().authority().cloned() else {
        return text(StatusCode::BAD_REQUEST, "hoopctl: request URI has no host\n".into());
    };
    let host = authority.host().to_string();
    let default_port = if req.uri().scheme() == Some(&http::uri::Scheme::HTTPS) { 443 } else { 80 };
    let port = authority.port_u16().unwrap_or(default_port);
    let pq = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let origin = match shared.settings.policy.egress.decide(&host) {
        Decision::Deny => return denied(&host),
        Decision::Intercept => shared.origin_for(&host, 443),
        Decision::Tunnel => {
            let scheme = req.uri().scheme_str().unwrap_or("http");
            super::upstream::Origin::parse(&format!("{scheme}://{host}:{port}")).ok()
        }
    };
    match origin {
        Some(origin) => service::forward(&shared, req, &origin, &pq).await,
        None => text(StatusCode::BAD_REQUEST, format!("hoopctl: cannot forward to {host}\n")),
    }
}

/// Base-URL mode (`ANTHROPIC_BASE_URL=http(s)://127.0.0.1:PORT/_hoopctl/SECRET`):
/// an origin-form request for the default intercepted host.
pub(super) async fn base_url(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
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
    let origin = shared.default_origin.clone();
    service::forward(&shared, req, &origin, &pq).await
}
