//! The scripted Anthropic Messages API the demo's proxy talks to: plain
//! HTTP/1.1 on 127.0.0.1, answering `POST /v1/messages` from
//! [`super::script::answer`] (as a `text/event-stream` when the request
//! asks for `stream`, else one JSON message) and anything else with an
//! Anthropic-shaped 404. It keeps every request body it received, so the
//! demo can show what the API actually saw.
//!
//! Owns: the listener, the SSE encoding of a scripted turn. Must not: reach
//! anything but its own loopback socket.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::script::{self, Turn};
use crate::anthropic::error::ApiError;
use crate::anthropic::sse;

/// Largest request body the scripted API reads.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// One request as the scripted API received it (after hoopctl).
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// The `x-api-key` header, if any.
    pub api_key: Option<String>,
    /// The body as JSON (`Null` when it was not JSON).
    pub body: Value,
}

/// The running scripted API; stops when dropped.
pub struct Upstream {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: CancellationToken,
}

impl Upstream {
    /// Binds 127.0.0.1 on a free port and serves in the background.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, received.clone(), stop.clone()));
        Ok(Self {
            addr,
            received,
            stop,
        })
    }

    /// `http://127.0.0.1:PORT`, for the proxy's upstream.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        match self.received.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(
    listener: TcpListener,
    received: Arc<Mutex<Vec<Received>>>,
    stop: CancellationToken,
) {
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => r,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let (received, stop) = (received.clone(), stop.clone());
        tracker.spawn(async move {
            let service = service_fn(move |req| handle(req, received.clone()));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {}
            }
        });
    }
    tracker.close();
}

type Reply = Response<Full<Bytes>>;

async fn handle(
    req: Request<Incoming>,
    received: Arc<Mutex<Vec<Received>>>,
) -> Result<Reply, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let api_key = req
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(error(413, "request body too large for the demo API")),
    };
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let entry = Received {
        method: method.to_string(),
        path: path.clone(),
        api_key,
        body: body.clone(),
    };
    match received.lock() {
        Ok(mut g) => g.push(entry),
        Err(p) => p.into_inner().push(entry),
    }
    if method != Method::POST || path != "/v1/messages" {
        return Ok(error(
            404,
            &format!("the hoopctl demo API only answers POST /v1/messages, not {method} {path}"),
        ));
    }
    if !body.is_object() {
        return Ok(error(400, "the request body is not a JSON object"));
    }
    let turn = script::answer(&body);
    let id = format!(
        "msg_demo_{}",
        crate::secret::random_hex(6).unwrap_or_default()
    );
    let streaming = body.get("stream").and_then(Value::as_bool) == Some(true);
    let reply = if streaming {
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Full::new(Bytes::from(sse_events(&id, &turn))))
    } else {
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(message(&id, &turn).to_string())))
    };
    Ok(reply.unwrap_or_else(|_| error(500, "could not build the answer")))
}

fn error(status: u16, message: &str) -> Reply {
    let mut resp = Response::new(Full::new(Bytes::from(
        ApiError::new(status, message).to_json("req_demo"),
    )));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn usage() -> Value {
    json!({"input_tokens": 42, "output_tokens": 17})
}

/// The non-streaming answer: one JSON message.
fn message(id: &str, turn: &Turn) -> Value {
    json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": script::MODEL,
        "content": turn.content,
        "stop_reason": turn.stop_reason,
        "stop_sequence": null,
        "usage": usage(),
    })
}

/// The streaming answer, event by event as the real API sends it (SPEC §3).
pub fn sse_events(id: &str, turn: &Turn) -> Vec<u8> {
    let mut out = Vec::new();
    let mut push =
        |name: &str, data: Value| out.extend_from_slice(&sse::encode(name, &data.to_string()));
    push(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": script::MODEL,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 42, "output_tokens": 1}}}),
    );
    push("ping", json!({"type": "ping"}));
    for (index, block) in turn.content.iter().enumerate() {
        match block.get("type").and_then(Value::as_str) {
            Some("tool_use") => {
                let mut start = block.clone();
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                if let Some(o) = start.as_object_mut() {
                    o.insert("input".into(), json!({}));
                }
                push(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index, "content_block": start}),
                );
                // Like the real API: an empty first piece, then the JSON in pieces.
                let json_text = input.to_string();
                let mut pieces = vec![String::new()];
                pieces.extend(pieces_of(&json_text, 3));
                for p in pieces {
                    push(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index,
                               "delta": {"type": "input_json_delta", "partial_json": p}}),
                    );
                }
            }
            _ => {
                let text = block.get("text").and_then(Value::as_str).unwrap_or("");
                push(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index,
                           "content_block": {"type": "text", "text": ""}}),
                );
                for p in pieces_of(text, 2) {
                    push(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index,
                               "delta": {"type": "text_delta", "text": p}}),
                    );
                }
            }
        }
        push(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        );
    }
    push(
        "message_delta",
        json!({"type": "message_delta",
               "delta": {"stop_reason": turn.stop_reason, "stop_sequence": null},
               "usage": {"output_tokens": 17}}),
    );
    push("message_stop", json!({"type": "message_stop"}));
    out
}

/// `s` in `n` pieces of about equal length (on character boundaries).
fn pieces_of(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let size = chars.len().div_ceil(n.max(1));
    chars
        .chunks(size.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_reassembles_to_the_turn() {
        let turn = script::answer(&json!({"messages": [{"role": "user", "content": "hi"}]}));
        let bytes = sse_events("msg_1", &turn);
        let mut framer = sse::Framer::new();
        let mut names = Vec::new();
        let mut json_text = String::new();
        for ev in framer.push(&bytes) {
            let ev = ev.unwrap();
            let data: Value = serde_json::from_str(&ev.data).unwrap();
            if let Some(p) = data["delta"]["partial_json"].as_str() {
                json_text.push_str(p);
            }
            names.push(ev.name.unwrap());
        }
        assert_eq!(names.first().unwrap(), "message_start");
        assert_eq!(names.last().unwrap(), "message_stop");
        let input: Value = serde_json::from_str(&json_text).unwrap();
        assert_eq!(input["command"], script::DESTRUCTIVE);
    }

    #[test]
    fn pieces_cover_the_text() {
        assert_eq!(pieces_of("abcdefg", 3).concat(), "abcdefg");
        assert!(pieces_of("", 3).is_empty());
        assert_eq!(pieces_of("é", 4), vec!["é"]);
    }
}
