//! The per-request pipeline: header hygiene, forward to the upstream,
//! relay the response. Later issues add masking, recording and the
//! response inspector here.
//!
//! Owns: hop-by-hop header handling (RFC 9110 section 7.6.1) and turning
//! upstream failures into Anthropic-shaped errors.

use std::error::Error as _;
use std::time::Instant;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::body::{self, Body, Relay};
use super::upstream::Origin;
use super::{gateway, pipeline, record, Shared, Target};
use crate::anthropic::error::ApiError;

/// Headers that describe one connection, never the message (RFC 9110
/// 7.6.1), plus the proxy's own.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers, including those named by `Connection`.
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// An Anthropic-shaped error response (SPEC section 3).
pub(super) fn error_response(err: &ApiError) -> Response<Body> {
    let request_id = format!(
        "req_hoopctl_{}",
        crate::secret::random_hex(12).unwrap_or_default()
    );
    let mut resp = Response::new(body::full(err.to_json(&request_id)));
    *resp.status_mut() = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("request-id", v);
    }
    if !err.should_retry {
        h.insert("x-should-retry", HeaderValue::from_static("false"));
    }
    // For the record: what hoopctl answered and why.
    resp.extensions_mut().insert(err.clone());
    resp
}

/// Forwards `req` to `target` + `path_and_query` and relays the answer.
pub(super) async fn forward(
    shared: &Shared,
    req: Request<Incoming>,
    target: &Target,
    path_and_query: &str,
) -> Response<Body> {
    let started = Instant::now();
    let (mut parts, incoming) = req.into_parts();
    let method = parts.method.clone();
    strip_hop_by_hop(&mut parts.headers);
    let client_host = parts
        .uri
        .host()
        .map(str::to_string)
        .or_else(|| {
            let h = parts.headers.get(header::HOST)?.to_str().ok()?;
            Some(h.rsplit_once(':').map_or(h, |(host, _)| host).to_string())
        })
        .unwrap_or_default();
    // The client sets Host (HTTP/1.1) or :authority (HTTP/2) from the URI.
    parts.headers.remove(header::HOST);
    parts.version = Version::HTTP_11;
    let path = path_and_query.split('?').next().unwrap_or("").to_string();
    let request_id = shared.next_request_id();
    let session_id = parts
        .headers
        .get("x-claude-code-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let session = || shared.sessions.get(session_id.as_deref());
    let recorder = shared.settings.recorder.as_ref();
    let record_session = recorder.as_ref().map(|r| {
        let ua = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        r.session(session_id.as_deref(), ua)
    });
    // An answer that is not inspected is recorded from its head.
    let note_head = |status: u16, headers: &http::HeaderMap| {
        if let (Some(r), Some(s)) = (&recorder, &record_session) {
            let ms = started.elapsed().as_millis() as u64;
            r.record(record::response_head(s, &request_id, status, ms, headers));
        }
    };
    let note_error = |resp: &Response<Body>| {
        if let (Some(r), Some(err), Some(s)) = (
            &recorder,
            resp.extensions().get::<ApiError>(),
            &record_session,
        ) {
            r.record(record::error(
                s.clone(),
                &request_id,
                err.status,
                &err.message,
            ));
        }
    };
    let outgoing = match pipeline::request_body(shared, &mut parts, incoming, &path, session).await
    {
        Ok(o) => o,
        Err(answer) => {
            note_error(&answer);
            return answer;
        }
    };
    if let (Some(r), Some(s)) = (&recorder, &record_session) {
        let ev = record::request(
            s,
            &request_id,
            &method,
            &client_host,
            path_and_query,
            &parts.headers,
            outgoing.replay.as_ref(),
            &outgoing.masked,
        );
        // Recorded before it leaves: a request that was sent is never lost.
        if let Err(why) = r.durable(ev) {
            let err = ApiError::new(
                503,
                format!(
                    "hoopctl could not record this request, so it was not sent ({why}). The policy \
                     sets [audit] fail_closed = true: free disk space or fix the data directory \
                     (or set fail_closed = false to keep working unrecorded)"
                ),
            );
            return error_response(&err);
        }
    }
    let messages = method == http::Method::POST && path == "/v1/messages";
    if messages {
        // The inspector reads the answer; plain bytes save decoding them.
        parts.headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
    }
    let stalled = outgoing.stalled.clone();
    let (answer, upstream) = match target {
        Target::Origin(origin) => {
            let host = origin.authority.as_str();
            let masked = outgoing.masked;
            pipeline::announce(
                shared,
                &request_id,
                session_id.as_deref(),
                &parts,
                host,
                &path,
                masked,
            );
            let answer = direct(
                shared,
                parts,
                outgoing.body,
                origin,
                path_and_query,
                started,
            )
            .await;
            (answer, origin.to_string())
        }
        Target::Gateway => {
            let Some(link) = shared.settings.gateway.clone() else {
                let err = ApiError::new(500, "hoopctl: gateway mode without a gateway link");
                return error_response(&err);
            };
            let host = link.current().origin.authority.to_string();
            let masked = outgoing.masked.clone();
            pipeline::announce(
                shared,
                &request_id,
                session_id.as_deref(),
                &parts,
                &host,
                &path,
                masked,
            );
            let answer = gateway::exchange(shared, &link, parts, outgoing, path_and_query).await;
            (answer, format!("the gateway {}", link.gateway()))
        }
    };
    let resp = match answer {
        // The client stopped sending the body mid-way: its fault, not the upstream's.
        Err(_) if stalled.is_set() => {
            let ours = pipeline::stalled_answer(shared);
            publish_response(shared, &request_id, ours.status().as_u16(), started);
            note_error(&ours);
            return ours;
        }
        Ok(resp) => resp,
        Err(ours) => {
            publish_response(shared, &request_id, ours.status().as_u16(), started);
            if ours.extensions().get::<ApiError>().is_some() {
                note_error(&ours);
            } else {
                note_head(ours.status().as_u16(), ours.headers());
            }
            return ours;
        }
    };
    let (mut parts, incoming) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let sse = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
    tracing::info!(
        %method,
        %upstream,
        path = %path,
        status = parts.status.as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    publish_response(shared, &request_id, parts.status.as_u16(), started);
    if messages && parts.status.is_success() {
        let policy = &shared.settings.policy;
        let rehydrate = policy
            .masking
            .rehydrate()
            .then(|| shared.sessions.get(session_id.as_deref()));
        let ctx = crate::inspect::stream::Context {
            policy: policy.clone(),
            approvals: shared.settings.approvals.clone(),
            bus: shared.settings.bus.clone(),
            request_id: request_id.clone(),
            session: session_id,
            rehydrate,
            record: recorder
                .cloned()
                .zip(record_session.clone())
                .map(|(recorder, session)| crate::inspect::stream::Record {
                    recorder,
                    session,
                    status: parts.status.as_u16(),
                    started,
                }),
        };
        let body = pipeline::response_body(shared, &mut parts, incoming, ctx).await;
        return Response::from_parts(parts, body);
    }
    note_head(parts.status.as_u16(), &parts.headers);
    let relay = Relay::new(incoming, sse, upstream);
    Response::from_parts(parts, relay.boxed_unsync())
}

fn publish_response(shared: &Shared, request_id: &str, status: u16, started: Instant) {
    if shared.settings.bus.active() {
        shared.settings.bus.publish(crate::events::Event::Response {
            request_id: request_id.to_string(),
            status,
            latency_ms: started.elapsed().as_millis() as u64,
        });
    }
}

/// Sends the request to a fixed origin; a failure becomes an Anthropic 502.
async fn direct(
    shared: &Shared,
    mut parts: http::request::Parts,
    body: Body,
    origin: &Origin,
    path_and_query: &str,
    started: Instant,
) -> Result<Response<Incoming>, Response<Body>> {
    parts.uri = match origin.uri(path_and_query) {
        Ok(u) => u,
        Err(e) => {
            return Err(error_response(&ApiError::final_(
                400,
                format!("hoopctl: invalid request path: {e}"),
            )))
        }
    };
    let method = parts.method.clone();
    let sent = shared
        .settings
        .client
        .request(Request::from_parts(parts, body));
    let limit = shared.settings.timeouts.response_head;
    let e = match tokio::time::timeout(limit, sent).await {
        Ok(Ok(resp)) => return Ok(resp),
        Ok(Err(e)) => e,
        Err(_) => {
            tracing::warn!(%method, upstream = %origin, secs = limit.as_secs(), "no response head from the upstream in time");
            // A retry can help: the next attempt may reach a working upstream.
            let message = format!(
                "the upstream {origin} sent no answer within {}s of the request; hoopctl stopped \
                 waiting. It may be overloaded or stuck; the request can be sent again",
                limit.as_secs()
            );
            return Err(head_timeout(ApiError::new(504, message)));
        }
    };
    let detail = crate::errors::one_line(&e);
    let message = if e.is_connect() {
        if started.elapsed() >= shared.settings.timeouts.connect {
            format!("hoopctl could not reach the upstream {origin}: connecting timed out after {}s. Check your network or the --upstream setting.", shared.settings.timeouts.connect.as_secs())
        } else {
            format!("hoopctl could not reach the upstream {origin} ({detail}). Check your network or the --upstream setting.")
        }
    } else if closed_early(&e) {
        format!("the upstream {origin} closed the connection before answering ({detail})")
    } else {
        format!("hoopctl could not forward the request to {origin} ({detail})")
    };
    tracing::warn!(%method, upstream = %origin, error = %detail, "upstream request failed");
    Err(error_response(&ApiError::new(502, message)))
}

/// The 504 for an upstream that sent no response head in time
/// ([`super::Timeouts::response_head`]), with `x-should-retry` spelled out
/// either way.
pub(super) fn head_timeout(err: ApiError) -> Response<Body> {
    let retry = err.should_retry;
    let mut resp = error_response(&err);
    resp.headers_mut().insert(
        "x-should-retry",
        HeaderValue::from_static(if retry { "true" } else { "false" }),
    );
    resp
}

/// The upstream took the request but the connection ended before an answer.
pub(super) fn closed_early(e: &hyper_util::client::legacy::Error) -> bool {
    e.source()
        .is_some_and(|s| s.is::<hyper::Error>() || s.is::<std::io::Error>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_end_to_end_ones_stay() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("close, x-custom-hop"),
        );
        h.insert("x-custom-hop", HeaderValue::from_static("1"));
        h.insert("proxy-authorization", HeaderValue::from_static("Basic x"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        h.insert("anthropic-beta", HeaderValue::from_static("x"));
        h.insert("x-api-key", HeaderValue::from_static("k"));
        h.insert("content-encoding", HeaderValue::from_static("gzip"));
        strip_hop_by_hop(&mut h);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(
            left,
            vec![
                "anthropic-beta",
                "anthropic-version",
                "content-encoding",
                "x-api-key"
            ]
        );
    }

    #[test]
    fn error_response_shape() {
        let r = error_response(&ApiError::final_(401, "run hoopctl login"));
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["x-should-retry"], "false");
        assert!(r.headers()["request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_hoopctl_"));
        let r = error_response(&ApiError::new(502, "down"));
        assert!(r.headers().get("x-should-retry").is_none());
    }
}
