//! Body limits through the real proxy (a child process, real TLS):
//! decompression bombs in requests, JSON answers and event streams, an
//! oversized body over HTTP/2, and request bodies that stop arriving.
//! The proxy's peak memory is read from `/proc/PID/status` (VmHWM).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

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
    let proxy = start(&env, &fake, &[]);
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
    let proxy = start(&env, &fake, &[]);
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
}
