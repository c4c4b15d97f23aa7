//! What of an HTTP exchange goes into the record: headers without their
//! secrets, the masked body, sizes, the prompt text search indexes. The
//! audit module stores it; this module only decides what it is.

use bytes::Bytes;
use http::header::{self, HeaderMap};
use serde_json::{json, Map, Value};

use crate::audit::event::{Event, Kind, SessionRef};
use crate::policy::mask::Counts;

/// Header names whose values are never recorded.
fn secret_header(name: &str) -> bool {
    matches!(
        name,
        "authorization" | "proxy-authorization" | "x-api-key" | "cookie" | "set-cookie"
    ) || [
        "token",
        "secret",
        "key",
        "password",
        "session-key",
        "credential",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// Headers as JSON, secret values replaced.
pub fn headers(h: &HeaderMap) -> Value {
    let mut out = Map::new();
    for (name, value) in h {
        let n = name.as_str();
        let v = if secret_header(n) {
            "(redacted)".to_string()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        match out.get_mut(n) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&v);
            }
            _ => {
                out.insert(n.to_string(), Value::String(v));
            }
        }
    }
    Value::Object(out)
}

/// The newest user turn of a Messages request, as text: what search
/// finds as "the prompt" (its text blocks and tool results).
pub fn prompt_text(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let last = v["messages"]
        .as_array()?
        .iter()
        .rev()
        .find(|m| m["role"] == "user")?;
    let mut out = String::new();
    let mut push = |s: &str| {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(s);
    };
    match &last["content"] {
        Value::String(s) => push(s),
        Value::Array(blocks) => {
            for b in blocks {
                match b["type"].as_str() {
                    Some("text") => push(b["text"].as_str().unwrap_or("")),
                    Some("tool_result") => match &b["content"] {
                        Value::String(s) => push(s),
                        Value::Array(parts) => {
                            for p in parts {
                                if let Some(t) = p["text"].as_str() {
                                    push(t);
                                }
                            }
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        _ => {}
    }
    (!out.is_empty()).then_some(out)
}

/// The `request` event: recorded before the request is forwarded.
#[allow(clippy::too_many_arguments)]
pub fn request(
    session: SessionRef,
    request_id: &str,
    method: &http::Method,
    host: &str,
    path_and_query: &str,
    h: &HeaderMap,
    body: Option<&Bytes>,
    masked: &Counts,
) -> Event {
    let length = body.map(|b| b.len() as u64).or_else(|| {
        h.get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    });
    let path = path_and_query.split('?').next().unwrap_or("");
    let messages = path == "/v1/messages";
    let parsed = body
        .filter(|_| messages)
        .and_then(|b| serde_json::from_slice::<Value>(b).ok());
    let mut data = json!({
        "method": method.as_str(),
        "host": host,
        "path": path_and_query,
        "headers": headers(h),
        "body_bytes": length,
        "body_recorded": body.is_some(),
        "masked": masked,
        "masked_total": masked.values().sum::<usize>(),
    });
    if let Some(p) = &parsed {
        data["model"] = p["model"].clone();
        data["stream"] = p["stream"].clone();
        data["messages"] = json!(p["messages"].as_array().map_or(0, Vec::len));
    }
    let mut ev = Event::new(session, Kind::Request, data);
    ev.request_id = Some(request_id.to_string());
    ev.body = body.filter(|b| !b.is_empty()).map(|b| b.to_vec());
    ev.text = body.filter(|_| messages).and_then(|b| prompt_text(b));
    ev
}

/// A `response` event from the head alone (answers that are not inspected).
pub fn response_head(
    session: SessionRef,
    request_id: &str,
    status: u16,
    latency_ms: u64,
    h: &HeaderMap,
) -> Event {
    let mut ev = Event::new(
        session,
        Kind::Response,
        json!({
            "status": status,
            "latency_ms": latency_ms,
            "content_type": h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
            "content_length": h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok()),
        }),
    );
    ev.request_id = Some(request_id.to_string());
    ev
}

/// An `error` event: hoopctl answered in the agent's place.
pub fn error(session: SessionRef, request_id: &str, status: u16, message: &str) -> Event {
    let mut ev = Event::new(
        session,
        Kind::Error,
        json!({ "status": status, "message": message }),
    );
    ev.request_id = Some(request_id.to_string());
    ev.text = Some(message.to_string());
    ev
}

/// An `egress` event for a CONNECT (or absolute-form) target.
pub fn egress(
    session: SessionRef,
    host: &str,
    port: u16,
    decision: &str,
    bytes: Option<(u64, u64)>,
) -> Event {
    let mut data = json!({ "host": host, "port": port, "decision": decision });
    if let Some((up, down)) = bytes {
        data["bytes_up"] = json!(up);
        data["bytes_down"] = json!(down);
    }
    Event::new(session, Kind::Egress, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_headers_are_not_recorded() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "sk-ant-123".parse().unwrap());
        h.insert("authorization", "Bearer abc".parse().unwrap());
        h.insert("anthropic-version", "2023-06-01".parse().unwrap());
        h.insert("x-goog-api-key-id", "k".parse().unwrap());
        h.append("accept", "a".parse().unwrap());
        h.append("accept", "b".parse().unwrap());
        let v = headers(&h);
        assert_eq!(v["x-api-key"], "(redacted)");
        assert_eq!(v["authorization"], "(redacted)");
        assert_eq!(v["x-goog-api-key-id"], "(redacted)");
        assert_eq!(v["anthropic-version"], "2023-06-01");
        assert_eq!(v["accept"], "a, b");
        assert!(!v.to_string().contains("sk-ant-123"));
    }

    #[test]
    fn the_prompt_is_the_newest_user_turn() {
        let body = br#"{"messages":[
            {"role":"user","content":"old question"},
            {"role":"assistant","content":[{"type":"text","text":"x"}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"rm: done"},
                                      {"type":"text","text":"now DROP TABLE users"}]}]}"#;
        assert_eq!(
            prompt_text(body).as_deref(),
            Some("rm: done\nnow DROP TABLE users")
        );
        assert_eq!(prompt_text(b"{}"), None);
        assert_eq!(prompt_text(b"not json"), None);
    }
}
