//! The policy steps around forwarding: masking the request body before it
//! leaves (and before anything records it), and handing `/v1/messages`
//! answers to the response inspector.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::response::Parts as ResponseParts;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::body::{self, Body};
use super::encoding::{self, decode_bytes, Decoder};
use super::service::error_response;
use super::Shared;
use crate::anthropic::error::ApiError;
use crate::events::Event;
use crate::inspect::stream;
use crate::policy::mask::{Counts, Session, Telemetry};

/// Largest request body hoopctl reads to mask, as sent and again after
/// decoding its `Content-Encoding` (413 beyond it, nothing sent).
pub const MAX_MASKED_BODY: usize = 64 * 1024 * 1024;
/// Largest non-streaming reply it reads to inspect, as sent and again
/// after decoding (502 beyond it).
pub const MAX_INSPECTED_REPLY: usize = 64 * 1024 * 1024;
/// Most plain bytes one event stream may decode to (the stream then ends
/// with an `error` event). Far above any real answer (128k output tokens
/// make some tens of MiB of events); memory is bounded by the decoder's
/// pieces and the per-event limit of `anthropic::sse`, not by this.
pub const MAX_DECODED_STREAM: usize = 1024 * 1024 * 1024;
/// Most bytes of a request body read and thrown away before answering
/// without it (over [`MAX_MASKED_BODY`], or dropped telemetry). An HTTP/2
/// client still sending when the answer comes gets the stream reset, and
/// some (curl) then report a framing error instead of the answer; a body
/// longer than this is cut off that way all the same.
pub const MAX_DRAINED_BODY: u64 = 256 * 1024 * 1024;

/// Per agent session placeholders, keyed by `X-Claude-Code-Session-Id`.
#[derive(Default)]
pub struct Sessions {
    map: std::sync::Mutex<std::collections::HashMap<String, Arc<Session>>>,
}

impl Sessions {
    pub fn get(&self, id: Option<&str>) -> Arc<Session> {
        let mut map = match self.map.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let key = id.unwrap_or("");
        if let Some(s) = map.get(key) {
            return s.clone();
        }
        // Bounded: a proxy that outlives thousands of sessions starts over.
        if map.len() > 4096 {
            map.clear();
        }
        map.entry(key.to_string()).or_default().clone()
    }
}

fn content_type(headers: &http::HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Bodies that are read and masked: JSON and text, and anything sent to the
/// Messages API. Binary uploads stream through untouched.
fn maskable(parts: &Parts, path: &str) -> bool {
    let ct = content_type(&parts.headers).to_ascii_lowercase();
    path.starts_with("/v1/")
        || ct.contains("json")
        || ct.starts_with("text/")
        || ct.contains("x-www-form-urlencoded")
}

fn is_telemetry(path: &str) -> bool {
    path.starts_with("/api/event_logging") || path.starts_with("/api/eval")
}

/// The request body to forward, masked when policy reads it.
pub struct Outgoing {
    pub body: Body,
    /// The same bytes again, when the body is all in memory (so the
    /// request can be sent a second time); `None` when it streams.
    pub replay: Option<Bytes>,
    pub masked: Counts,
    /// Set when the client stopped sending the body (answer 408, see
    /// [`stalled_answer`]).
    pub stalled: body::Stalled,
}

/// The answer when the client's request body broke the progress rule.
pub fn stalled_answer(shared: &Shared) -> http::Response<Body> {
    let rule = shared.settings.timeouts.body_progress;
    let msg = format!(
        "hoopctl: the request body stopped arriving (fewer than {} bytes in {} s); the request was abandoned",
        rule.min_bytes,
        rule.interval.as_secs_f32()
    );
    error_response(&ApiError::new(408, msg))
}

/// The request body to forward: masked when policy reads it. An `Err` is
/// the answer to send instead of forwarding.
pub async fn request_body(
    shared: &Shared,
    parts: &mut Parts,
    incoming: Incoming,
    path: &str,
    session: impl FnOnce() -> Arc<Session>,
) -> Result<Outgoing, http::Response<Body>> {
    let policy = &shared.settings.policy;
    // Not the headers: an HTTP/2 request may carry a body without a length.
    let has_body = !http_body::Body::is_end_stream(&incoming);
    let stalled = body::Stalled::default();
    let rule = shared.settings.timeouts.body_progress;
    let incoming = body::Progress::new(incoming, rule, stalled.clone());
    if is_telemetry(path) && policy.masking.telemetry() == Telemetry::Block {
        // Dropped here, answered as accepted so the agent does not retry.
        // The body is read first: an unread body can reset the stream.
        let mut incoming = incoming;
        drain(&mut incoming).await;
        let mut resp = http::Response::new(body::empty());
        *resp.status_mut() = http::StatusCode::NO_CONTENT;
        return Err(resp);
    }
    if !has_body {
        return Ok(Outgoing {
            body: incoming.boxed_unsync(),
            replay: Some(Bytes::new()),
            masked: Counts::new(),
            stalled,
        });
    }
    if policy.masking.is_empty() || !maskable(parts, path) {
        return Ok(Outgoing {
            body: incoming.boxed_unsync(),
            replay: None,
            masked: Counts::new(),
            stalled,
        });
    }
    let mut incoming = incoming;
    let bytes = match read_up_to(&mut incoming, MAX_MASKED_BODY).await {
        Ok(b) => b,
        Err(None) => {
            drain(&mut incoming).await;
            if stalled.is_set() {
                return Err(stalled_answer(shared));
            }
            let msg = format!(
                "hoopctl: the request body is larger than {} MiB, the most it masks; nothing was sent",
                MAX_MASKED_BODY >> 20
            );
            return Err(error_response(&ApiError::final_(413, msg)));
        }
        Err(Some(_)) if stalled.is_set() => return Err(stalled_answer(shared)),
        Err(Some(e)) => {
            let msg = format!("hoopctl could not read the request body: {e}");
            return Err(error_response(&ApiError::new(400, msg)));
        }
    };
    let encoding = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let plain = match decode_bytes(encoding.as_deref(), bytes, MAX_MASKED_BODY) {
        Ok(p) => p,
        Err(encoding::Error::TooLarge { limit }) => {
            let msg = format!(
                "hoopctl: the request body decodes (Content-Encoding {}) to more than {} MiB, the most it masks; nothing was sent",
                encoding.as_deref().unwrap_or("identity"),
                limit >> 20
            );
            return Err(error_response(&ApiError::final_(413, msg)));
        }
        Err(e) => {
            let msg = format!("hoopctl: {e}; nothing was sent");
            return Err(error_response(&ApiError::final_(400, msg)));
        }
    };
    let (masked, _findings, counts) = session().mask_body(&policy.masking, &plain);
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(masked.len()));
    let masked = Bytes::from(masked);
    Ok(Outgoing {
        body: body::full(masked.clone()),
        replay: Some(masked),
        masked: counts,
        stalled,
    })
}

/// Reads a whole body of at most `limit` bytes; `Err(None)` when it is
/// longer (the rest is left unread), `Err(Some(e))` when it fails.
async fn read_up_to(
    body: &mut body::Progress,
    limit: usize,
) -> Result<Bytes, Option<body::BoxError>> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(Some)?.into_data() {
            if buf.len().saturating_add(data.len()) > limit {
                return Err(None);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Reads and discards the rest of a body, at most [`MAX_DRAINED_BODY`]
/// bytes (the progress rule still applies).
async fn drain(body: &mut body::Progress) {
    let mut seen = 0u64;
    while seen <= MAX_DRAINED_BODY {
        match body.frame().await {
            Some(Ok(f)) => seen += f.data_ref().map_or(0, |d| d.len() as u64),
            _ => return,
        }
    }
}

/// Publishes the request event (never the body).
pub fn announce(
    shared: &Shared,
    request_id: &str,
    session: Option<&str>,
    parts: &Parts,
    host: &str,
    path: &str,
    masked: Counts,
) {
    shared.settings.bus.publish(Event::Request {
        request_id: request_id.to_string(),
        session: session.map(str::to_string),
        method: parts.method.to_string(),
        host: host.to_string(),
        path: path.to_string(),
        masked,
    });
}

/// Swaps the upstream's head for an error's (its length and encoding no
/// longer describe the body), records the error, and returns its body.
fn replace_with_error(parts: &mut ResponseParts, ctx: &stream::Context, err: ApiError) -> Body {
    tracing::warn!(request_id = %ctx.request_id, status = err.status, error = %err.message, "answer replaced by an error");
    if let Some(r) = &ctx.record {
        r.recorder.record(super::record::error(
            r.session.clone(),
            &ctx.request_id,
            err.status,
            &err.message,
        ));
    }
    let (head, body) = error_response(&err).into_parts();
    *parts = head;
    body
}

/// Inspects a successful `/v1/messages` answer. What cannot be inspected
/// (an unknown encoding or content type) is replaced by a recorded 502.
pub async fn response_body(
    shared: &Shared,
    parts: &mut ResponseParts,
    incoming: Incoming,
    ctx: stream::Context,
) -> Body {
    let ct = content_type(&parts.headers).to_ascii_lowercase();
    let encoding = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // What cannot be inspected is not passed on: the agent's SDK reads a
    // streamed answer as events whatever its type or encoding says.
    if ct.starts_with("text/event-stream") {
        let decoder = match Decoder::with_limit(
            encoding.as_deref(),
            shared.settings.limits.decoded_stream,
        ) {
            Ok(d) => d,
            Err(e) => {
                let msg = format!(
                    "hoopctl: the upstream event stream has an {e}, so hoopctl could not inspect it; it was not passed on"
                );
                return replace_with_error(parts, &ctx, ApiError::new(502, msg));
            }
        };
        parts.headers.remove(header::CONTENT_ENCODING);
        parts.headers.remove(header::CONTENT_LENGTH);
        return stream::sse(ctx, incoming, decoder, &shared.tracker);
    }
    if !ct.contains("json") {
        drop(incoming);
        let shown = if ct.is_empty() {
            "none".to_string()
        } else {
            format!("{ct:?}")
        };
        let msg = format!(
            "hoopctl: the upstream answer has content type {shown}, neither an event stream nor JSON, so hoopctl could not inspect it; it was not passed on"
        );
        return replace_with_error(parts, &ctx, ApiError::new(502, msg));
    }
    let bytes = match Limited::new(incoming, MAX_INSPECTED_REPLY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            let msg = format!("hoopctl could not read the upstream answer: {e}");
            return replace_with_error(parts, &ctx, ApiError::new(502, msg));
        }
    };
    let plain = match decode_bytes(encoding.as_deref(), bytes, MAX_INSPECTED_REPLY) {
        Ok(p) => p,
        Err(encoding::Error::TooLarge { limit }) => {
            let msg = format!(
                "hoopctl: the upstream answer decodes (Content-Encoding {}) to more than {} MiB, the most it inspects; it was not passed on",
                encoding.as_deref().unwrap_or("identity"),
                limit >> 20
            );
            return replace_with_error(parts, &ctx, ApiError::new(502, msg));
        }
        Err(e) => {
            let msg = format!("hoopctl: {e}");
            return replace_with_error(parts, &ctx, ApiError::new(502, msg));
        }
    };
    // What the inspector cannot parse it cannot check (serde_json stops at
    // 128 levels of nesting; the agent's parser does not): not passed on.
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&plain) {
        let msg = format!(
            "hoopctl could not read the upstream answer as JSON ({e}), so it could not inspect it; it was not passed on"
        );
        return replace_with_error(parts, &ctx, ApiError::new(502, msg));
    }
    let out = stream::json(&ctx, &plain).await;
    parts.headers.remove(header::CONTENT_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
    body::full(Bytes::from(out))
}
