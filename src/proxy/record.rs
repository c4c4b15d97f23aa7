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

/// Query parameter names (compared in lower case, after percent-decoding)
/// whose values are never recorded, besides every name
/// [`secret_header`] refuses (`token`, `key`, `secret`, `password`,
/// `credential` anywhere in it, `authorization`, `cookie`, ...).
const SECRET_QUERY_NAMES: [&str; 13] = [
    "auth",
    "passwd",
    "pwd",
    "pass",
    "sig",
    "signature",
    "code",
    "session",
    "sessionid",
    "session_id",
    "sid",
    "jwt",
    "otp",
];

/// What a secret value is replaced with, in headers and query strings.
const REDACTED: &str = "(redacted)";

/// Whether the value of the query parameter `name` (raw, as in the URL)
/// is never recorded.
fn secret_query_name(name: &str) -> bool {
    let decoded = percent_decode(name).to_ascii_lowercase();
    let name = decoded.trim();
    SECRET_QUERY_NAMES.contains(&name) || name.ends_with("signature") || secret_header(name)
}

/// `%XX` escapes and `+` decoded (invalid escapes kept as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The request target as recorded: the path as it was, each query
/// parameter whose name looks secret with its value replaced by
/// `(redacted)` (like a secret header). A target without a query is
/// recorded without copying it.
pub struct Target<'a>(pub &'a str);

impl Target<'_> {
    /// The target with secret query values replaced.
    pub fn redacted(&self) -> std::borrow::Cow<'_, str> {
        let Some((path, query)) = self.0.split_once('?') else {
            return self.0.into();
        };
        let (query, fragment) = match query.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (query, None),
        };
        let mut out = String::with_capacity(self.0.len());
        out.push_str(path);
        out.push('?');
        let mut changed = false;
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((name, value)) if !value.is_empty() && secret_query_name(name) => {
                    out.push_str(name);
                    out.push('=');
                    out.push_str(REDACTED);
                    changed = true;
                }
                _ => out.push_str(pair),
            }
        }
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
        if changed {
            out.into()
        } else {
            self.0.into()
        }
    }
}

impl Serialize for Target<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
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
                map.serialize_entry(n, REDACTED)?;
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
    path: Target<'a>,
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
        path: Target(path_and_query),
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
    fn secret_query_values_are_not_recorded() {
        let cases = [
            ("/v1/messages", "/v1/messages"),
            ("/v1/messages?beta=true", "/v1/messages?beta=true"),
            (
                "/v1/messages?beta=true&token=T0P&api_key=K3Y&x=1",
                "/v1/messages?beta=true&token=(redacted)&api_key=(redacted)&x=1",
            ),
            (
                "/cb?code=C0DE&state=s&client_secret=S3C&access_token=A&refresh_token=R",
                "/cb?code=(redacted)&state=s&client_secret=(redacted)&access_token=(redacted)&refresh_token=(redacted)",
            ),
            (
                "/x?Password=p&PWD=p&passwd=p&auth=a&Authorization=a&sig=s&X-Amz-Signature=s&session=s&apikey=k",
                "/x?Password=(redacted)&PWD=(redacted)&passwd=(redacted)&auth=(redacted)&Authorization=(redacted)&sig=(redacted)&X-Amz-Signature=(redacted)&session=(redacted)&apikey=(redacted)",
            ),
            // Percent-encoded names are decoded before they are judged;
            // empty values and bare names are left alone.
            ("/x?api%5Fkey=k&token=&token", "/x?api%5Fkey=(redacted)&token=&token"),
            ("/x?a=1&key=v#frag", "/x?a=1&key=(redacted)#frag"),
            ("/x?author=bob&page=2", "/x?author=bob&page=2"),
        ];
        for (given, recorded) in cases {
            assert_eq!(Target(given).redacted(), recorded, "{given}");
        }
        assert!(matches!(
            Target("/v1/messages?beta=true").redacted(),
            std::borrow::Cow::Borrowed(_)
        ));
        let v = serde_json::to_value(Target("/p?token=sk-ant-999")).unwrap();
        assert_eq!(v, "/p?token=(redacted)");
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
