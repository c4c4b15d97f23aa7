//! Body limits through the real proxy (a child process, real TLS):
//! decompression bombs in requests, JSON answers and event streams, an
//! oversized body over HTTP/2, and request bodies that stop arriving.
//! The proxy's peak memory is read from `/proc/PID/status` (VmHWM).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

use crate::support::client::{self, Proto};
use crate::support::fake_anthropic::{FakeAnthropic, Reply, Script};
use crate::support::{require, Env, Proxy};

/// Peak memory the proxy may reach while refusing a bomb. Its limits keep
/// at most 64 MiB of decoded body (plus growth of the buffer); before the
/// decoders had output limits a bomb took it past 1 GB.
const MAX_PEAK_RSS_KB: u64 = 200 * 1024;

/// `sh -c SCRIPT` and its stdout (bombs are made by gzip/zstd, fast even in
/// a debug build).
fn sh(script: &str) -> Vec<u8> {
    let out = Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {out:?}");
    out.stdout
}

/// `mib` MiB of zeros, gzip-compressed (about 1 KB per MiB).
fn gzip_zeros(mib: usize) -> Vec<u8> {
    require("gzip");
    sh(&format!("head -c {} /dev/zero | gzip -c", mib << 20))
}

/// The proxy's peak resident memory so far, in KiB.
fn peak_rss_kb(proxy: &Proxy) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", proxy.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn fixed(reply: Reply) -> FakeAnthropic {
    FakeAnthropic::start(
        Script::default().with_responder(move |r| r.is_messages().then(|| reply.clone())),
    )
    .unwrap()
}

fn start(env: &Env, fake: &FakeAnthropic, extra: &[&str]) -> Proxy {
    let mut args = vec!["--upstream".to_string(), fake.url()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.start_proxy(&args)
}

async fn anthropic(proxy: &Proxy, proto: Proto) -> client::Client {
    client::open_anthropic(proxy.addr, &proxy.secret, &proxy.ca_pem(), proto).await
}

fn assert_api_error(v: &Value, kind: &str, needle: &str) {
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], kind, "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(needle), "{v}");
}

/// Stops the proxy; some recorded `error` event's message says `needle`.
fn assert_recorded_error(env: &Env, proxy: &mut Proxy, needle: &str) {
    proxy.stop();
    let errors: Vec<String> = env
        .run_ok(&["sessions", "export", "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "error")
        .map(|e| {
            e["data"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(
        errors.iter().any(|m| m.contains(needle)),
        "{needle}: {errors:?}"
    );
}

/// The data of the event that ends `stream`, which must be an `error` event.
fn final_error_event(stream: &str) -> Value {
    let last = stream.trim_end().rsplit("\n\n").next().unwrap_or_default();
    assert!(last.starts_with("event: error\n"), "{stream}");
    let data = last.split_once("data: ").map_or("", |(_, d)| d);
    serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {last}"))
}

fn messages_sent(fake: &FakeAnthropic) -> usize {
    fake.requests().iter().filter(|r| r.is_messages()).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_request_bomb_gets_413_and_nothing_is_sent() {
    let env = Env::new();
    let fake = fixed(Reply::text("should not be reached"));
    let proxy = start(&env, &fake, &[]);
    // 256 MiB of zeros in about 250 KB.
    let bomb = gzip_zeros(256);
    for proto in [Proto::H1, Proto::H2] {
        let mut c = anthropic(&proxy, proto).await;
        let req = c
            .request(Method::POST, "/v1/messages")
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .header("x-api-key", "k")
            .body(client::full(bomb.clone()))
            .unwrap();
        let resp = c.send(req).await.unwrap();
        assert_eq!(resp.status(), 413, "{proto:?}");
        assert_eq!(resp.headers()["x-should-retry"], "false");
        let v = client::body_json(resp).await;
        assert_api_error(&v, "request_too_large", "decodes");
    }
    assert_eq!(messages_sent(&fake), 0, "{:?}", fake.request_lines());
    assert_eq!(fake.connections(), 0, "the bomb was forwarded");
    let peak = peak_rss_kb(&proxy);
    eprintln!("request bomb: proxy VmHWM {peak} kB");
    assert!(peak < MAX_PEAK_RSS_KB, "proxy VmHWM {peak} kB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_json_answer_bomb_gets_a_502() {
    let env = Env::new();
    let fake = fixed(Reply::Raw {
        status: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("content-encoding".into(), "gzip".into()),
        ],
        body: Bytes::from(gzip_zeros(256)),
    });
    let mut proxy = start(&env, &fake, &[]);
    let mut c = anthropic(&proxy, Proto::H1).await;
    let body = r#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
    let req = c
        .request(Method::POST, "/v1/messages")
        .header("content-type", "application/json")
        .header("x-api-key", "k")
        .body(client::full(body))
        .unwrap();
    let resp = c.send(req).await.unwrap();
    assert_eq!(resp.status(), 502);
    assert!(resp.headers().get("content-encoding").is_none());
    let v = client::body_json(resp).await;
    assert_api_error(
        &v,
        "api_error",
        "decodes (Content-Encoding gzip) to more than 64 MiB",
    );
    let peak = peak_rss_kb(&proxy);
    eprintln!("JSON answer bomb: proxy VmHWM {peak} kB");
    assert!(peak < MAX_PEAK_RSS_KB, "proxy VmHWM {peak} kB");
    assert_recorded_error(&env, &mut proxy, "to more than 64 MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zstd_event_stream_bomb_ends_with_an_error_event() {
    require("zstd");
    let env = Env::new();
    // A real first event, then one "event" of 512 MiB: about 16 KB of zstd.
    let head = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n";
    let first = env.path("first-event");
    std::fs::write(&first, head).unwrap();
    let bomb = sh(&format!(
        "(cat '{}'; printf 'data: '; head -c {} /dev/zero | tr '\\0' a) | zstd -q -c",
        first.display(),
        512 << 20
    ));
    assert!(bomb.len() < 100 * 1024, "{}", bomb.len());
    let fake = fixed(Reply::Chunks {
        status: 200,
        headers: vec![
            ("content-type".into(), "text/event-stream".into()),
            ("content-encoding".into(), "zstd".into()),
        ],
        chunks: vec![(Duration::ZERO, Bytes::from(bomb))],
        end: crate::support::fake_anthropic::StreamEnd::Finish,
    });
    let mut proxy = start(&env, &fake, &[]);
    let mut c = anthropic(&proxy, Proto::H1).await;
    let body = r#"{"model":"m","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let req = c
        .request(Method::POST, "/v1/messages")
        .header("content-type", "application/json")
        .header("x-api-key", "k")
        .body(client::full(body))
        .unwrap();
    let started = Instant::now();
    let resp = c.send(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = String::from_utf8_lossy(&client::body_bytes(resp).await).into_owned();
    assert!(text.contains("event: error"), "{text}");
    assert!(text.contains("larger than"), "{text}");
    let peak = peak_rss_kb(&proxy);
    eprintln!(
        "zstd stream bomb: proxy VmHWM {peak} kB, ended after {:?}",
        started.elapsed()
    );
    assert!(peak < MAX_PEAK_RSS_KB, "proxy VmHWM {peak} kB");
    assert_recorded_error(&env, &mut proxy, "larger than");
}

/// `hoopctl`'s masking limit (`MAX_MASKED_BODY`).
const MAX_MASKED_BODY: usize = 64 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_gets_the_413_json_error_over_h1_and_h2() {
    let env = Env::new();
    let fake = fixed(Reply::text("should not be reached"));
    let proxy = start(&env, &fake, &[]);
    let big = Bytes::from(vec![b'a'; MAX_MASKED_BODY + 1]);
    for proto in [Proto::H2, Proto::H1] {
        let mut c = anthropic(&proxy, proto).await;
        let req = c
            .request(Method::POST, "/v1/messages")
            .header("content-type", "application/json")
            .header("x-api-key", "k")
            .body(client::full(big.clone()))
            .unwrap();
        let resp = c
            .send(req)
            .await
            .unwrap_or_else(|e| panic!("{proto:?}: no answer: {e:?}"));
        assert_eq!(resp.status(), 413, "{proto:?}");
        assert_eq!(resp.headers()["x-should-retry"], "false");
        let v = client::body_json(resp).await;
        assert_api_error(&v, "request_too_large", "larger than 64 MiB");
    }
    assert_eq!(fake.connections(), 0);
}

/// curl reports HTTP/2 stream resets as errors (exit 92) even after a
/// complete answer: the proxy reads (and drops) the rest of the body first.
#[test]
fn curl_gets_the_413_over_h2_while_still_uploading() {
    require("curl");
    let env = Env::new();
    let fake = fixed(Reply::text("should not be reached"));
    let proxy = start(&env, &fake, &[]);
    let file = env.path("big.json");
    std::fs::write(&file, vec![b'a'; 3 * MAX_MASKED_BODY]).unwrap();
    for version in ["--http2", "--http1.1"] {
        let out = proxy
            .curl()
            .args(["--max-time", "60", version])
            .args(["-H", "content-type: application/json", "--data-binary"])
            .arg(format!("@{}", file.display()))
            .args(["-w", "\n%{http_code}"])
            .arg("https://api.anthropic.com/v1/messages")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{version}: curl {:?}: {}{stdout}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let (body, code) = stdout.rsplit_once('\n').unwrap();
        assert_eq!(code, "413", "{version}: {stdout}");
        let v: Value = serde_json::from_str(body).unwrap();
        assert_api_error(&v, "request_too_large", "larger than 64 MiB");
    }
    assert_eq!(fake.connections(), 0);
}

/// `hoopctl`'s bound on what it reads and drops (`MAX_DRAINED_BODY`).
const MAX_DRAINED_BODY: usize = 256 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_of_an_oversized_body_is_drained_only_up_to_a_bound() {
    let env = Env::new();
    let fake = fixed(Reply::text("should not be reached"));
    let proxy = start(&env, &fake, &[]);
    let mut c = anthropic(&proxy, Proto::H2).await;
    // 512 MiB offered in 1 MiB frames; the proxy should stop after about
    // 64 + 256 MiB (plus what flow control lets through).
    let (tx, body) = crate::support::upstream::ChannelBody::new(1);
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sent2 = sent.clone();
    let feeder = tokio::spawn(async move {
        let mib = Bytes::from(vec![b'a'; 1 << 20]);
        for _ in 0..512 {
            if tx.send(Ok(mib.clone())).await.is_err() {
                return;
            }
            sent2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let req = c
        .request(Method::POST, "/v1/messages")
        .header("content-type", "application/json")
        .body(http_body_util::BodyExt::boxed(body))
        .unwrap();
    let resp = c.send(req).await.unwrap();
    let at_answer = sent.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("413 after {at_answer} MiB of 512 were sent");
    assert_eq!(resp.status(), 413);
    let limit_mib = (MAX_MASKED_BODY + MAX_DRAINED_BODY) >> 20;
    assert!(
        at_answer > limit_mib - 8 && at_answer < limit_mib + 32,
        "answered after {at_answer} MiB were sent"
    );
    feeder.abort();
}

/// The progress window the tests set (`--body-progress-timeout`); the
/// proxy wants at least 1 KiB in each.
const WINDOW: Duration = Duration::from_secs(2);

/// Sends a request head over a tunnelled TLS (HTTP/1.1) connection, then
/// `pieces` (each after its pause), and reads the answer; returns it and
/// how long after the head it came.
async fn paced(
    proxy: &Proxy,
    path: &str,
    content_type: &str,
    pieces: Vec<(Duration, Vec<u8>)>,
) -> (client::RawResponse, Duration) {
    let (tls, _) =
        client::open_anthropic_tls(proxy.addr, &proxy.secret, &proxy.ca_pem(), Proto::H1).await;
    let (mut rd, mut wr) = tokio::io::split(tls);
    let len: usize = pieces.iter().map(|(_, p)| p.len()).sum();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: api.anthropic.com\r\nx-api-key: k\r\ncontent-type: {content_type}\r\ncontent-length: {len}\r\n\r\n"
    );
    wr.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for (pause, piece) in pieces {
            tokio::time::sleep(pause).await;
            if wr.write_all(&piece).await.is_err() || wr.flush().await.is_err() {
                return;
            }
        }
        // Keep the connection open until the answer is read.
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let resp = tokio::time::timeout(Duration::from_secs(20), client::read_raw_response(&mut rd))
        .await
        .expect("no answer in time")
        .unwrap();
    let took = started.elapsed();
    writer.abort();
    (resp, took)
}

/// 1 byte a second, 100 times.
fn trickle() -> Vec<(Duration, Vec<u8>)> {
    (0..100)
        .map(|_| (Duration::from_secs(1), b"a".to_vec()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_at_one_byte_a_second_is_cut_with_408() {
    let env = Env::new();
    let fake = fixed(Reply::text("should not be reached"));
    let proxy = start(&env, &fake, &["--body-progress-timeout", "2"]);
    // Read whole (masking), and streamed to the upstream (not maskable).
    for (path, ct) in [
        ("/v1/messages", "application/json"),
        ("/api/upload", "application/octet-stream"),
    ] {
        let (resp, took) = paced(&proxy, path, ct, trickle()).await;
        eprintln!("{path}: {} after {took:?}", resp.status);
        assert_eq!(resp.status, 408, "{path}: {resp:?}");
        let v: Value = serde_json::from_slice(&resp.body).unwrap();
        assert_api_error(&v, "timeout_error", "stopped arriving");
        assert!(
            took >= WINDOW - Duration::from_millis(200),
            "{path}: {took:?}"
        );
        assert!(took < WINDOW + Duration::from_secs(2), "{path}: {took:?}");
    }
    assert_eq!(messages_sent(&fake), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_slow_body_passes() {
    let env = Env::new();
    let fake = fixed(Reply::text("slow but fine"));
    let proxy = start(&env, &fake, &["--body-progress-timeout", "2"]);
    // About 1.5 KiB a second for 5 s: slow, but above 1 KiB per window.
    let text = "a".repeat(7000);
    let body = format!(
        r#"{{"model":"m","max_tokens":10,"messages":[{{"role":"user","content":"{text}"}}]}}"#
    )
    .into_bytes();
    let pieces: Vec<(Duration, Vec<u8>)> = body
        .chunks(body.len().div_ceil(5))
        .map(|c| (Duration::from_secs(1), c.to_vec()))
        .collect();
    let (resp, took) = paced(&proxy, "/v1/messages", "application/json", pieces).await;
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(resp.text().contains("slow but fine"), "{resp:?}");
    assert!(took >= Duration::from_secs(5), "{took:?}");
    assert_eq!(messages_sent(&fake), 1);
}

/// A Bash call whose input nests 200 levels deep: past serde_json's 128,
/// well within what the agent's JSON parser reads.
fn deep_bash_call() -> Value {
    let mut deep = serde_json::json!("x");
    for _ in 0..200 {
        deep = serde_json::json!([deep]);
    }
    crate::support::fake_anthropic::tool_use_block(
        "toolu_deep",
        "Bash",
        serde_json::json!({"command": "rm -rf /", "x": deep}),
    )
}

async fn post_messages(proxy: &Proxy, stream: bool) -> (u16, String) {
    let mut c = anthropic(proxy, Proto::H1).await;
    let body = format!(
        r#"{{"model":"m","max_tokens":10,"stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#
    );
    let req = c
        .request(Method::POST, "/v1/messages")
        .header("content-type", "application/json")
        .header("x-api-key", "k")
        .body(client::full(body))
        .unwrap();
    let resp = c.send(req).await.unwrap();
    let status = resp.status().as_u16();
    let text = String::from_utf8_lossy(&client::body_bytes(resp).await).into_owned();
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_input_too_deep_to_parse_is_blocked_in_a_stream() {
    let env = Env::new();
    let events = crate::support::fake_anthropic::sse_events(
        "msg_1",
        "m",
        &[deep_bash_call()],
        "tool_use",
        3,
    )
    .concat();
    let fake = fixed(Reply::Raw {
        status: 200,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        body: Bytes::from(events),
    });
    let proxy = start(&env, &fake, &[]);
    let (status, text) = post_messages(&proxy, true).await;
    assert_eq!(status, 200);
    assert!(text.contains("builtin:unparsable"), "{text}");
    assert!(!text.contains("\"type\":\"tool_use\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_answer_too_deep_to_parse_gets_a_502() {
    let env = Env::new();
    let message = serde_json::json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [deep_bash_call()],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 1, "output_tokens": 1}
    });
    let fake = fixed(Reply::Raw {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: Bytes::from(message.to_string()),
    });
    let proxy = start(&env, &fake, &[]);
    let (status, text) = post_messages(&proxy, false).await;
    assert_eq!(status, 502, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_api_error(&v, "api_error", "could not inspect it");
    assert!(!text.contains("rm -rf"), "{text}");
}

/// A hostile upstream hides a tool call in an event the agent's parser
/// reads and serde_json does not (a lone surrogate escape, which
/// JavaScript's `JSON.parse` accepts): the stream ends with an error event
/// there, and the call never reaches the agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_inspector_cannot_read_ends_the_stream() {
    let env = Env::new();
    let events = crate::support::fake_anthropic::sse_events(
        "msg_1",
        "m",
        &[
            serde_json::json!({"type": "text", "text": "Cleaning up now."}),
            crate::support::fake_anthropic::tool_use_block(
                "toolu_hidden",
                "Bash",
                serde_json::json!({"command": "rm -rf /"}),
            ),
        ],
        "tool_use",
        3,
    )
    .concat();
    let hostile = String::from_utf8(events.clone())
        .unwrap()
        .replace("\"toolu_hidden\"", r#""toolu_\ud800""#);
    assert_ne!(hostile.as_bytes(), &events[..]);
    let fake = fixed(Reply::Raw {
        status: 200,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        body: Bytes::from(hostile),
    });
    let mut proxy = start(&env, &fake, &[]);
    let (status, text) = post_messages(&proxy, true).await;
    assert_eq!(status, 200);
    assert!(text.contains("message_start"), "{text}");
    assert!(!text.contains("tool_use\""), "{text}");
    assert!(!text.contains("rm -rf"), "{text}");
    assert_api_error(&final_error_event(&text), "api_error", "cannot be read");
    assert_recorded_error(&env, &mut proxy, "cannot be read");
}

/// An answer the inspector cannot read because of its headers (an
/// encoding hoopctl does not decode, or a content type that is neither an
/// event stream nor JSON) is not passed on: the agent's SDK would read the
/// events anyway, tool call included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_in_an_unknown_encoding_or_type_is_not_passed_on() {
    let events = crate::support::fake_anthropic::sse_events(
        "msg_1",
        "m",
        &[crate::support::fake_anthropic::tool_use_block(
            "toolu_1",
            "Bash",
            serde_json::json!({"command": "rm -rf /"}),
        )],
        "tool_use",
        3,
    )
    .concat();
    for (headers, needle) in [
        (
            vec![
                ("content-type", "text/event-stream"),
                ("content-encoding", "x-unknown"),
            ],
            "unsupported Content-Encoding \"x-unknown\"",
        ),
        (
            vec![
                ("content-type", "text/event-stream"),
                ("content-encoding", "gzip, br"),
            ],
            "unsupported Content-Encoding",
        ),
        (
            vec![("content-type", "text/plain")],
            "content type \"text/plain\"",
        ),
        (vec![], "content type none"),
    ] {
        let env = Env::new();
        let fake = fixed(Reply::Raw {
            status: 200,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Bytes::from(events.clone()),
        });
        let proxy = start(&env, &fake, &[]);
        let (status, text) = post_messages(&proxy, true).await;
        assert_eq!(status, 502, "{headers:?}: {text}");
        assert!(!text.contains("rm -rf"), "{headers:?}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_api_error(&v, "api_error", needle);
    }
}

/// An event stream that decodes to more than its limit (1 GiB by default,
/// 1 MiB here), in events each well under the per-event limit, ends with
/// an error event, recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_past_its_decoded_limit_ends_with_an_error_event() {
    require("gzip");
    let env = Env::new();
    let mut plain = String::from("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n");
    while plain.len() < 2 << 20 {
        plain.push_str("event: ping\ndata: {\"type\": \"ping\"}\n\n");
    }
    let file = env.path("stream");
    std::fs::write(&file, &plain).unwrap();
    let gz = sh(&format!("gzip -c '{}'", file.display()));
    let fake = fixed(Reply::Raw {
        status: 200,
        headers: vec![
            ("content-type".into(), "text/event-stream".into()),
            ("content-encoding".into(), "gzip".into()),
        ],
        body: Bytes::from(gz),
    });
    let mut proxy = start(&env, &fake, &["--max-stream-bytes", "1048576"]);
    let (status, text) = post_messages(&proxy, true).await;
    assert_eq!(status, 200);
    assert!(
        text.len() <= (1 << 20) + 4096,
        "{} bytes passed",
        text.len()
    );
    let data = final_error_event(&text);
    assert_api_error(&data, "api_error", "too large");
    assert_api_error(&data, "api_error", "1048576");
    assert_recorded_error(&env, &mut proxy, "too large");
}
