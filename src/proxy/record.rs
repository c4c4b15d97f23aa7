//! What of an HTTP exchange goes into the record: headers without their
//! secrets, the masked body, sizes, the prompt text search indexes. The
//! audit module stores it; this module only decides what it is.

use bytes::Bytes;
use http::header::{self, HeaderMap};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::json;

use crate::audit::event::{Derive, Draft, Event, Kind, SessionRef};
use crate::policy::mask::Counts;

/// Header names whose values are never recorded: these, and any name
/// with one of [`SECRET_PARTS`] in it.
const SECRET_NAMES: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "cookie",
    "set-cookie",
];

/// (`session-key` has `key` in it.)
const SECRET_PARTS: [&[u8]; 5] = [b"token", b"secret", b"key", b"password", b"credential"];

/// Whether a header's value is never recorded. One pass over the name (it
/// runs for every header of every request).
fn secret_header(name: &str) -> bool {
    if SECRET_NAMES.contains(&name) {
        return true;
    }
    let b = name.as_bytes();
    (0..b.len()).any(|i| {
        matches!(b[i], b't' | b's' | b'k' | b'p' | b'c')
            && SECRET_PARTS.iter().any(|part| b[i..].starts_with(part))
    })
}

/// Headers as a JSON object, secret values replaced; repeated headers
/// joined with ", ". Serialised straight from the map: the request's path
/// builds no tree of values.
pub struct Headers<'a>(pub &'a HeaderMap);

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.keys_len()))?;
        // A name's values come one after the other.
        let mut values = self.0.iter().peekable();
        while let Some((name, first)) = values.next() {
            let n = name.as_str();
            let mut value = String::from_utf8_lossy(first.as_bytes());
            while let Some((_, more)) = values.next_if(|(next, _)| *next == name) {
                let joined = value.to_mut();
                joined.push_str(", ");
                joined.push_str(&String::from_utf8_lossy(more.as_bytes()));
            }
            if secret_header(n) {
                map.serialize_entry(n, "(redacted)")?;
            } else {
                map.serialize_entry(n, &value)?;
            }
        }
        map.end()
    }
}

#[derive(Serialize)]
pub struct RequestData<'a> {
    method: &'a str,
    host: &'a str,
    path: &'a str,
    headers: Headers<'a>,
    body_bytes: Option<u64>,
    body_recorded: bool,
    masked: &'a Counts,
    masked_total: usize,
}

/// The `request` event: recorded before the request is forwarded. Borrows
/// everything; nothing is built but the record itself.
#[allow(clippy::too_many_arguments)]
pub fn request<'a>(
    session: &'a SessionRef,
    request_id: &'a str,
    method: &'a http::Method,
    host: &'a str,
    path_and_query: &'a str,
    h: &'a HeaderMap,
    body: Option<&'a Bytes>,
    masked: &'a Counts,
) -> Draft<'a, RequestData<'a>> {
    let length = body.map(|b| b.len() as u64).or_else(|| {
        h.get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    });
    let data = RequestData {
        method: method.as_str(),
        host,
        path: path_and_query,
        headers: Headers(h),
        body_bytes: length,
        body_recorded: body.is_some(),
        masked,
        masked_total: masked.values().sum(),
    };
    let mut ev = Draft::new(session, Kind::Request, data);
    ev.request_id = Some(request_id);
    ev.body = body.filter(|b| !b.is_empty()).map(|b| &b[..]);
    // The model and the prompt are read from the body when the store
    // indexes it, not here on the request's way out.
    let path = path_and_query.split('?').next().unwrap_or("");
    if path == "/v1/messages" && ev.body.is_some() {
        ev.derive = Some(Derive::MessagesRequest);
    }
    ev
}

#[derive(Serialize)]
pub struct ResponseHead<'a> {
    status: u16,
    latency_ms: u64,
    content_type: Option<&'a str>,
    content_length: Option<u64>,
}

/// A `response` event from the head alone (answers that are not inspected).
pub fn response_head<'a>(
    session: &'a SessionRef,
    request_id: &'a str,
    status: u16,
    latency_ms: u64,
    h: &'a HeaderMap,
) -> Draft<'a, ResponseHead<'a>> {
    let data = ResponseHead {
        status,
        latency_ms,
        content_type: h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        content_length: h
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()),
    };
    let mut ev = Draft::new(session, Kind::Response, data);
    ev.request_id = Some(request_id);
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

/// The recording path's benchmark: what recording costs one request of
/// the relay benchmark (`GET /small`, with the three headers the proxy
/// records of it: Host is not recorded) on the proxy's side, measured
/// apart from the proxy: the `request` event recorded durably (as the
/// proxy does before forwarding) and the `response` event, `n` times on
/// each of `threads` threads at once, into a store in `dir`. Returns
/// nanoseconds of wall time per request, averaged over the threads.
pub fn bench_recording(dir: &std::path::Path, n: usize, threads: usize) -> Result<f64, String> {
    use crate::audit::event::RunMeta;
    use crate::audit::recorder::Recorder;
    use crate::audit::store::{Writer, WriterOptions};

    let writer = Writer::start(&dir.join("audit.db"), WriterOptions::default())
        .map_err(|e| e.to_string())?;
    let run = RunMeta {
        run_id: crate::secret::random_hex(8).map_err(|_| "no randomness")?,
        started_at_ms: crate::audit::event::now_ms(),
        profile: "default".into(),
        mode: "direct".into(),
        gateway: None,
        user: None,
        hoopctl_version: env!("CARGO_PKG_VERSION").into(),
    };
    let recorder = Recorder::new(writer.clone(), run, false);
    let mut h = HeaderMap::new();
    for (name, value) in [
        ("user-agent", "hoopctl-relay-bench/1"),
        ("anthropic-version", "2023-06-01"),
        ("x-api-key", "bench-dummy-key"),
    ] {
        h.insert(name, http::HeaderValue::from_static(value));
    }
    let mut answer = HeaderMap::new();
    answer.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    answer.insert(header::CONTENT_LENGTH, http::HeaderValue::from_static("27"));
    let one_thread = |t: usize| -> Result<f64, String> {
        let (counts, method) = (Counts::new(), http::Method::GET);
        let started = std::time::Instant::now();
        for i in 0..n {
            let s = recorder.session(None, Some("hoopctl-relay-bench/1"));
            let request_id = format!("req_{t}_{i}");
            let ev = request(
                &s,
                &request_id,
                &method,
                "api.anthropic.com",
                "/small",
                &h,
                None,
                &counts,
            );
            recorder.durable(ev)?;
            recorder.record(response_head(&s, &request_id, 200, 1, &answer));
        }
        Ok(started.elapsed().as_nanos() as f64 / n.max(1) as f64)
    };
    let per_thread: Vec<Result<f64, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|t| {
                let one_thread = &one_thread;
                scope.spawn(move || one_thread(t))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a thread panicked".into())))
            .collect()
    });
    writer.close();
    let per_thread = per_thread.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(per_thread.iter().sum::<f64>() / per_thread.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recording_benchmark_records_what_it_measures() {
        let dir = tempfile::tempdir().unwrap();
        let ns = bench_recording(dir.path(), 100, 2).unwrap();
        assert!(ns.is_finite() && ns > 0.0, "{ns}");
        let reader = crate::audit::store::Reader::open(&dir.path().join("audit.db")).unwrap();
        let overview = reader.overview().unwrap();
        // Two threads, 100 requests each, a request and a response event.
        assert_eq!((overview.sessions, overview.events), (1, 400));
        assert!(reader.verify(None).unwrap().iter().all(|v| v.ok));
    }

    #[test]
    fn secrets_in_headers_are_not_recorded() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "sk-ant-123".parse().unwrap());
        h.insert("authorization", "Bearer abc".parse().unwrap());
        h.insert("anthropic-version", "2023-06-01".parse().unwrap());
        h.insert("x-goog-api-key-id", "k".parse().unwrap());
        h.append("accept", "a".parse().unwrap());
        h.append("accept", "b".parse().unwrap());
        h.append("cookie", "c=1".parse().unwrap());
        h.append("cookie", "d=2".parse().unwrap());
        h.insert("x-refresh-token", "t".parse().unwrap());
        h.insert("x-client-secret", "s".parse().unwrap());
        h.insert("x-password", "p".parse().unwrap());
        h.insert("x-credentials", "c".parse().unwrap());
        h.insert("session-key", "k".parse().unwrap());
        h.insert("x-stainless-retry-count", "0".parse().unwrap());
        let v = serde_json::to_value(Headers(&h)).unwrap();
        assert_eq!(v["x-api-key"], "(redacted)");
        assert_eq!(v["authorization"], "(redacted)");
        assert_eq!(v["x-goog-api-key-id"], "(redacted)");
        assert_eq!(v["anthropic-version"], "2023-06-01");
        assert_eq!(v["accept"], "a, b");
        assert_eq!(v["cookie"], "(redacted)");
        for name in [
            "x-refresh-token",
            "x-client-secret",
            "x-password",
            "x-credentials",
            "session-key",
        ] {
            assert_eq!(v[name], "(redacted)", "{name}");
        }
        assert_eq!(v["x-stainless-retry-count"], "0");
        assert_eq!(v.as_object().unwrap().len(), h.keys_len());
        assert!(!v.to_string().contains("sk-ant-123"));
    }
}
