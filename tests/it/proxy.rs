//! The forward proxy end to end: a real `hoopctl connect claude-code` process
//! between curl or a Rust client and a local test upstream. Every server listens
//! on 127.0.0.1:0; nothing leaves the machine (denied hosts are never dialled).

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, StatusCode, Version};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::client::{self, Client, Proto};
use crate::support::upstream::{self, ChannelBody, Upstream};
use crate::support::{self, Env, Proxy};

/// A proxy with its private environment (the proxy is dropped first).
struct Setup {
    proxy: Proxy,
    env: Env,
}

fn start(upstream_url: &str, extra: &[&str]) -> Setup {
    start_in(Env::new(), upstream_url, extra)
}

fn start_in(env: Env, upstream_url: &str, extra: &[&str]) -> Setup {
    let mut args = vec!["--upstream", upstream_url];
    args.extend_from_slice(extra);
    let proxy = env.start_proxy(&args);
    Setup { proxy, env }
}

impl Setup {
    fn ca(&self) -> String {
        self.proxy.ca_cert.to_str().unwrap().to_string()
    }

    fn ca_pem(&self) -> String {
        self.proxy.ca_pem()
    }

    async fn anthropic(&self, proto: Proto) -> Client {
        client::open_anthropic(self.proxy.addr, &self.proxy.secret, &self.ca_pem(), proto).await
    }
}

/// curl without any config file or proxy variables from the environment.
fn curl(args: &[&str]) -> Output {
    support::require("curl");
    let mut cmd = Command::new("curl");
    cmd.arg("-q").args(["-sS", "--max-time", "20"]).args(args);
    for v in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(v);
    }
    cmd.output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The last line of curl's output, written by `-w '\n...'`.
fn last_line(out: &Output) -> String {
    stdout(out).lines().last().unwrap_or_default().to_string()
}

fn header<'a>(seen: &'a upstream::Seen, name: &str) -> Option<&'a str> {
    seen.headers.get(name).map(|v| v.to_str().unwrap())
}

/// Asserts an Anthropic-shaped error body and returns its message.
fn assert_api_error(json: &Value, error_type: &str) -> String {
    assert_eq!(json["type"], "error", "{json}");
    assert_eq!(json["error"]["type"], error_type, "{json}");
    assert!(
        json["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{json}"
    );
    json["error"]["message"].as_str().unwrap().to_string()
}

// 1. curl over HTTP/1.1 and HTTP/2.
#[test]
fn curl_through_the_proxy_over_http1_and_http2() {
    let up = Upstream::start();
    let s = start(&up.url(), &[]);
    let proxy = format!("http://{}", s.proxy.addr);
    let user = format!("hoopctl:{}", s.proxy.secret);
    let ca = s.ca();
    for (flag, version, tag) in [("--http1.1", "1.1", "h1"), ("--http2", "2", "h2")] {
        let headers_file = s.env.path(&format!("headers-{tag}"));
        let url = format!("https://api.anthropic.com/v1/echo?beta=true&status=201&tag={tag}");
        let mut args = vec![
            "--proxy",
            &proxy,
            "--proxy-user",
            &user,
            "--cacert",
            &ca,
            flag,
            "-D",
            headers_file.to_str().unwrap(),
            "-H",
            "anthropic-version: 2023-06-01",
            "-H",
            "anthropic-beta: prompt-caching-2024-07-31,interleaved-thinking-2025-05-14",
            "-H",
            "x-api-key: sk-ant-test-key",
            "-w",
            "\n%{http_code} %{http_version}",
        ];
        if tag == "h1" {
            // curl drops connection-specific headers itself on HTTP/2.
            args.extend(["-H", "Connection: x-hop", "-H", "x-hop: 1"]);
        }
        args.push(&url);
        let out = curl(&args);
        assert!(
            out.status.success(),
            "curl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            last_line(&out),
            format!("201 {version}"),
            "{}",
            stdout(&out)
        );
        let body: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
        assert_eq!(
            body["path"],
            format!("/v1/echo?beta=true&status=201&tag={tag}")
        );
        let resp_headers = support::read(&headers_file).to_ascii_lowercase();
        assert!(
            resp_headers.contains("x-upstream: test-upstream"),
            "{resp_headers}"
        );
        assert!(
            !resp_headers.contains("x-resp-hop"),
            "hop-by-hop response header relayed: {resp_headers}"
        );

        let seen = up.seen_one(&format!("/v1/echo?beta=true&status=201&tag={tag}"));
        assert_eq!(seen.method, "GET");
        assert_eq!(header(&seen, "anthropic-version"), Some("2023-06-01"));
        assert_eq!(
            header(&seen, "anthropic-beta"),
            Some("prompt-caching-2024-07-31,interleaved-thinking-2025-05-14")
        );
        assert_eq!(header(&seen, "x-api-key"), Some("sk-ant-test-key"));
        for gone in [
            "proxy-authorization",
            "proxy-connection",
            "connection",
            "x-hop",
            "te",
            "keep-alive",
        ] {
            assert!(
                seen.headers.get(gone).is_none(),
                "{gone} reached the upstream: {:?}",
                seen.headers
            );
        }
    }
}

// 2. A Rust client: CONNECT + rustls + hyper, HTTP/1.1 and HTTP/2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_over_http1_and_http2() {
    let up = Upstream::start();
    let s = start(&up.url(), &[]);
    for proto in [Proto::H1, Proto::H2] {
        let (tls, alpn) =
            client::open_anthropic_tls(s.proxy.addr, &s.proxy.secret, &s.ca_pem(), proto).await;
        assert_eq!(alpn.as_deref(), Some(proto.alpn().as_bytes()));
        let mut c = Client::handshake(tls, proto, "api.anthropic.com").await;
        // Two requests on one connection, the second with a body.
        let path = format!("/v1/echo?client={proto:?}");
        let resp = c
            .send(
                c.request(Method::GET, &path)
                    .header("anthropic-version", "2023-06-01")
                    .body(client::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-upstream"], "test-upstream");
        assert!(resp.headers().get("x-resp-hop").is_none());
        let json = client::body_json(resp).await;
        assert_eq!(json["path"], path);
        assert_eq!(json["headers"]["anthropic-version"][0], "2023-06-01");

        let post = format!("/v1/messages?beta=true&client={proto:?}");
        let payload = r#"{"model":"claude-test","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#;
        let req = c
            .request(Method::POST, &post)
            .header("content-type", "application/json")
            .header("x-api-key", "sk-ant-rust")
            .body(client::full(payload))
            .unwrap();
        let resp = c.send(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let json = client::body_json(resp).await;
        assert_eq!(json["method"], "POST");
        assert_eq!(json["body_len"], payload.len());
        let seen = up.seen_one(&post);
        assert_eq!(header(&seen, "x-api-key"), Some("sk-ant-rust"));
        assert!(seen.headers.get("proxy-authorization").is_none());
    }
}

// 3a. SSE is relayed event by event, not buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_is_relayed_incrementally() {
    let up = Upstream::start();
    let s = start(&up.url(), &[]);
    for proto in [Proto::H1, Proto::H2] {
        let tag = format!("{proto:?}");
        let mut c = s.anthropic(proto).await;
        let resp = c.get(&format!("/sse?n=2&gate=1&tag={tag}")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut body = resp.into_body();
        let mut buf = Vec::new();
        // The upstream sends event 2 only after the client has event 1, so a
        // proxy that buffered the stream would time out here.
        client::read_until(&mut body, &mut buf, &upstream::sse_event(&tag, 1)).await;
        assert!(!String::from_utf8_lossy(&buf).contains(&format!("{tag}-2")));
        up.open_gate(1);
        while let Some(data) = client::next_data(&mut body).await {
            buf.extend_from_slice(&data);
        }
        assert_eq!(
            String::from_utf8_lossy(&buf),
            upstream::sse_expected(&tag, 2)
        );
    }
}

// 3b. Content-Encoding and the encoded bytes pass through unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_encoding_passes_through_unchanged() {
    let up = Upstream::start();
    let s = start(&up.url(), &[]);
    for proto in [Proto::H1, Proto::H2] {
        let mut c = s.anthropic(proto).await;
        let req = c
            .request(Method::GET, &format!("/gzip?client={proto:?}"))
            .header("accept-encoding", "gzip, deflate, br, zstd")
            .body(client::empty())
            .unwrap();
        let resp = c.send(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-encoding"], "gzip");
        assert_eq!(&client::body_bytes(resp).await[..], upstream::GZIP_BODY);
        let seen = up.seen_one(&format!("/gzip?client={proto:?}"));
        assert_eq!(
            header(&seen, "accept-encoding"),
            Some("gzip, deflate, br, zstd")
        );
    }
}

/// Deterministic upload bytes for offsets `off..off + len`.
fn pattern(off: usize, len: usize) -> Vec<u8> {
    (off..off + len)
        .map(|i| ((i as u64).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

// 4. A 32 MiB upload is streamed through, not buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_of_32_mib_streams_through() {
    const TOTAL: usize = 32 << 20;
    const CHUNK: usize = 256 << 10;
    let up = Upstream::start();
    let s = start(&up.url(), &[]);
    let mut c = s.anthropic(Proto::H1).await;
    let (tx, body) = ChannelBody::new(4);
    let mut received = up.received();
    let producer = tokio::spawn(async move {
        let mut hash = upstream::FNV_INIT;
        let mut off = 0;
        while off < TOTAL {
            if off == TOTAL / 2 {
                // Half sent: the upstream must already have bytes, or the proxy buffers uploads.
                tokio::time::timeout(client::STEP, received.wait_for(|n| *n >= 1 << 20))
                    .await
                    .expect("the upstream got nothing while the client was still uploading: the proxy buffers request bodies")
                    .unwrap();
            }
            let chunk = pattern(off, CHUNK);
            hash = upstream::fnv1a(hash, &chunk);
            tx.send(Ok(chunk.into())).await.unwrap();
            off += CHUNK;
        }
        hash
    });
    let req = c
        .request(Method::POST, "/upload")
        .header("content-type", "application/octet-stream")
        .body(body.boxed())
        .unwrap();
    let resp = c.send(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let json = client::body_json(resp).await;
    let hash = producer.await.unwrap();
    assert_eq!(json["bytes"], TOTAL as u64, "{json}");
    assert_eq!(json["fnv"], format!("{hash:016x}"), "{json}");
}

// 5. 200 concurrent streams through one proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_streams() {
    const N: usize = 200;
    const EVENTS: usize = 5;
    let up = Upstream::start();
    let s = start(&up.url(), &[]);
    let (addr, secret, ca_pem) = (s.proxy.addr, s.proxy.secret.clone(), s.ca_pem());
    let barrier = Arc::new(tokio::sync::Barrier::new(N + 1));
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let (secret, ca_pem, barrier) = (secret.clone(), ca_pem.clone(), barrier.clone());
            tokio::spawn(async move {
                let tag = format!("s{i}");
                let mut c = client::open_anthropic(addr, &secret, &ca_pem, Proto::H1).await;
                let resp = c
                    .get(&format!("/sse?n={EVENTS}&ms=20&gate=1&tag={tag}"))
                    .await;
                assert_eq!(resp.status(), StatusCode::OK);
                let mut body = resp.into_body();
                let mut buf = Vec::new();
                client::read_until(&mut body, &mut buf, &upstream::sse_event(&tag, 1)).await;
                // Every stream is open and has its first event at once.
                barrier.wait().await;
                while let Some(data) = client::next_data(&mut body).await {
                    buf.extend_from_slice(&data);
                }
                assert_eq!(
                    String::from_utf8_lossy(&buf),
                    upstream::sse_expected(&tag, EVENTS)
                );
            })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(40), barrier.wait())
        .await
        .expect("not all 200 streams were open with their first event");
    up.open_gate(N);
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .expect("a stream did not finish")
            .unwrap();
    }
}

// 6. Proxy authentication and denied hosts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_auth_is_required_and_denied_hosts_get_403() {
    let up = Upstream::start();
    let s = start(&up.url(), &[]);
    let addr = s.proxy.addr;
    let good = client::basic_auth(&s.proxy.secret);

    // Raw CONNECT: no credentials, a wrong secret, a malformed header.
    for auth in [
        None,
        Some(client::basic_auth("wrong-secret")),
        Some("Basic !!!".to_string()),
    ] {
        let (_, resp) = client::connect_tunnel(addr, "api.anthropic.com:443", auth.as_deref())
            .await
            .unwrap();
        assert_eq!(resp.status, 407, "{auth:?}: {resp:?}");
        assert!(
            resp.header("proxy-authenticate")
                .is_some_and(|v| v.starts_with("Basic")),
            "{resp:?}"
        );
    }
    // Absolute-form without credentials.
    let resp = client::raw_request(
        addr,
        "GET http://api.anthropic.com/v1/echo HTTP/1.1\r\nHost: api.anthropic.com\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 407, "{resp:?}");

    // Denied host: CONNECT (never dialled) and absolute-form.
    let (_, resp) = client::connect_tunnel(addr, "example.com:443", Some(&good))
        .await
        .unwrap();
    assert_eq!(resp.status, 403, "{resp:?}");
    assert!(
        resp.text().contains("example.com") && resp.text().contains("denied by policy"),
        "{}",
        resp.text()
    );
    let resp = client::raw_request(
        addr,
        &format!("GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\nProxy-Authorization: {good}\r\n\r\n"),
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 403, "{resp:?}");
    assert!(resp.text().contains("denied by policy"), "{}", resp.text());

    // The same with curl.
    let proxy = format!("http://{}", addr);
    let ca = s.ca();
    let base = [
        "--proxy",
        proxy.as_str(),
        "--cacert",
        ca.as_str(),
        "-w",
        "\n%{http_connect}",
    ];
    let out = tokio::task::block_in_place(|| {
        curl(&[&base[..], &["https://api.anthropic.com/v1/echo"]].concat())
    });
    assert!(!out.status.success());
    assert_eq!(last_line(&out), "407");
    let wrong = "hoopctl:not-the-secret";
    let out = tokio::task::block_in_place(|| {
        curl(
            &[
                &base[..],
                &["--proxy-user", wrong, "https://api.anthropic.com/v1/echo"],
            ]
            .concat(),
        )
    });
    assert!(!out.status.success());
    assert_eq!(last_line(&out), "407");
    let user = format!("hoopctl:{}", s.proxy.secret);
    let out = tokio::task::block_in_place(|| {
        curl(&[&base[..], &["--proxy-user", &user, "https://example.com/"]].concat())
    });
    assert!(!out.status.success());
    assert_eq!(last_line(&out), "403");

    assert!(
        up.seen().is_empty(),
        "something reached the upstream: {:#?}",
        up.seen()
    );
}

// Absolute-form requests for the intercepted host go to the upstream too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_to_the_api_is_forwarded() {
    let up = Upstream::start();
    let s = start(&up.url(), &[]);
    let good = client::basic_auth(&s.proxy.secret);
    let resp = client::raw_request(
        s.proxy.addr,
        &format!(
            "GET http://api.anthropic.com/v1/echo?abs=1 HTTP/1.1\r\nHost: api.anthropic.com\r\nProxy-Authorization: {good}\r\nanthropic-version: 2023-06-01\r\n\r\n"
        ),
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{resp:?}");
    let json: Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(json["path"], "/v1/echo?abs=1");
    let seen = up.seen_one("/v1/echo?abs=1");
    assert!(seen.headers.get("proxy-authorization").is_none());
    assert_eq!(header(&seen, "anthropic-version"), Some("2023-06-01"));
}

// 7. An unreachable upstream is a fast, Anthropic-shaped 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_is_a_fast_502() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = start(&format!("http://127.0.0.1:{port}"), &[]);
    for proto in [Proto::H1, Proto::H2] {
        let mut c = s.anthropic(proto).await;
        let started = Instant::now();
        let resp = c.get("/v1/messages").await;
        let elapsed = started.elapsed();
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
        assert!(elapsed < Duration::from_secs(3), "502 took {elapsed:?}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        let json = client::body_json(resp).await;
        let message = assert_api_error(&json, "api_error");
        assert!(
            message.contains("could not reach") && message.contains(&port.to_string()),
            "{message}"
        );
    }
}

// 8. An upstream reset mid-stream ends the client's stream with an error event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_reset_mid_sse_becomes_an_error_event() {
    let up = Upstream::start();
    let s = start(&up.url(), &[]);
    for proto in [Proto::H1, Proto::H2] {
        let tag = format!("r{proto:?}");
        let mut c = s.anthropic(proto).await;
        // Two events, then (once the client has them) the upstream breaks the connection.
        let resp = c.get(&format!("/sse?n=2&gate=2&abort=1&tag={tag}")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let mut body = resp.into_body();
        let mut buf = Vec::new();
        let events = format!(
            "{}{}",
            upstream::sse_event(&tag, 1),
            upstream::sse_event(&tag, 2)
        );
        client::read_until(&mut body, &mut buf, &events).await;
        up.open_gate(1);
        // The client's stream then ends cleanly (no transport error), with an error event last.
        while let Some(data) = client::next_data(&mut body).await {
            buf.extend_from_slice(&data);
        }
        let text = String::from_utf8(buf).unwrap();
        let rest = text
            .strip_prefix(&events)
            .unwrap_or_else(|| panic!("events missing: {text:?}"));
        let data = rest
            .strip_prefix("event: error\ndata: ")
            .unwrap_or_else(|| panic!("no error event: {rest:?}"))
            .trim_end();
        assert!(rest.ends_with("\n\n"), "{rest:?}");
        let json: Value = serde_json::from_str(data).unwrap();
        assert_eq!(json["type"], "error", "{json}");
        assert_eq!(json["error"]["type"], "api_error", "{json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("upstream"),
            "{json}"
        );
        assert!(!text.contains("message_stop"));
    }
}

/// Reads until EOF or reset; returns what arrived.
async fn read_to_close(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => panic!(
                "connection still open after {within:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

// 9a. Slow clients are dropped after --header-read-timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_dropped() {
    let up = Upstream::start();
    let s = start(&up.url(), &["--header-read-timeout", "1"]);
    let addr = s.proxy.addr;

    // Half a request head, then silence.
    let started = Instant::now();
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /v1/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nx-slow: 1\r\n")
        .await
        .unwrap();
    let got = read_to_close(&mut slow, Duration::from_secs(5)).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "slow client dropped only after {elapsed:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(500),
        "closed at once ({elapsed:?}), not by the timeout"
    );
    let got = String::from_utf8_lossy(&got);
    assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got:?}");

    // Nothing at all.
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    read_to_close(&mut silent, Duration::from_secs(5)).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3) && elapsed >= Duration::from_millis(500),
        "{elapsed:?}"
    );
    assert!(up.seen().is_empty(), "{:#?}", up.seen());
}

// 9b. A request head over 64 KiB gets 431.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_heads_get_431() {
    let up = Upstream::start();
    let s = start(&up.url(), &[]);
    let big = "a".repeat(70 * 1024);
    let mut stream = TcpStream::connect(s.proxy.addr).await.unwrap();
    let head = format!("GET /v1/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nx-big: {big}\r\n\r\n");
    // The proxy may answer and close before reading it all.
    let _ = stream.write_all(head.as_bytes()).await;
    let resp = client::read_raw_response(&mut stream).await.unwrap();
    assert_eq!(resp.status, 431, "{}", resp.head);
    assert!(up.seen().is_empty(), "{:#?}", up.seen());
}

// 10. Base-URL mode: plain HTTP and direct TLS with the secret prefix; 401 without.
#[test]
fn base_url_mode_over_http_and_https() {
    let up = Upstream::start();
    let s = start(&up.url(), &[]);
    let (addr, secret) = (s.proxy.addr, s.proxy.secret.clone());
    let port = addr.port().to_string();
    assert_eq!(
        s.proxy.ready["base_url"],
        format!("http://{addr}/_hoopctl/{secret}")
    );
    let ca = s.ca();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let w = "\n%{http_code} %{http_version}";
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (
            vec![format!(
                "http://{addr}/_hoopctl/{secret}/v1/echo?mode=plain"
            )],
            "/v1/echo?mode=plain",
            "1.1",
        ),
        (
            vec![
                "--http1.1".into(),
                "--cacert".into(),
                ca.clone(),
                format!("https://127.0.0.1:{port}/_hoopctl/{secret}/v1/echo?mode=tls"),
            ],
            "/v1/echo?mode=tls",
            "1.1",
        ),
        (
            vec![
                "--http2".into(),
                "--cacert".into(),
                ca.clone(),
                "--resolve".into(),
                resolve.clone(),
                format!("https://localhost:{port}/_hoopctl/{secret}/v1/echo?mode=tls-h2"),
            ],
            "/v1/echo?mode=tls-h2",
            "2",
        ),
    ];
    for (args, path, version) in cases {
        let mut all: Vec<&str> = vec!["-H", "anthropic-version: 2023-06-01", "-w", w];
        all.extend(args.iter().map(String::as_str));
        let out = curl(&all);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            last_line(&out),
            format!("200 {version}"),
            "{args:?}: {}",
            stdout(&out)
        );
        let seen = up.seen_one(path);
        assert_eq!(header(&seen, "anthropic-version"), Some("2023-06-01"));
    }

    // Without the secret, with a wrong one, with one that merely starts like it.
    let denied = [
        vec![format!("http://{addr}/v1/echo?mode=none")],
        vec![format!("http://{addr}/_hoopctl/wrong/v1/echo")],
        vec![format!("http://{addr}/_hoopctl/{secret}x/v1/echo")],
        vec![
            "--cacert".into(),
            ca.clone(),
            format!("https://127.0.0.1:{port}/v1/echo?mode=tls-none"),
        ],
    ];
    for args in denied {
        let mut all: Vec<&str> = vec!["-w", w];
        all.extend(args.iter().map(String::as_str));
        let out = curl(&all);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            last_line(&out).starts_with("401 "),
            "{args:?}: {}",
            stdout(&out)
        );
        let json: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
        let message = assert_api_error(&json, "authentication_error");
        assert!(message.contains("/_hoopctl/"), "{message}");
        assert!(
            !message.contains(&secret),
            "the secret leaked into an error: {message}"
        );
    }
    assert_eq!(up.seen().len(), 3, "{:#?}", up.seen());
}

// 11. An allowed host is tunnelled unchanged: the client sees the upstream's own certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_hosts_are_tunnelled_unchanged() {
    let up = Upstream::start_tls(&["http/1.1"]);
    let env = Env::new();
    let policy = env.path("policy.toml");
    std::fs::write(&policy, "[egress]\nallow = [\"localhost:*\"]\n").unwrap();
    // The upstream flag is irrelevant for a tunnel; point it at something closed.
    let s = start_in(
        env,
        "http://127.0.0.1:9",
        &["--policy", policy.to_str().unwrap()],
    );
    let target = format!("localhost:{}", up.addr.port());
    let tls = up.tls.as_ref().unwrap();
    let auth = client::basic_auth(&s.proxy.secret);

    let (stream, resp) = client::connect_tunnel(s.proxy.addr, &target, Some(&auth))
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{resp:?}");
    let stream = client::tls_connect(
        stream,
        client::tls_config(&[&tls.ca_pem], &["http/1.1"]),
        "localhost",
    )
    .await
    .unwrap();
    let peer = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(
        peer, tls.leaf_der,
        "the tunnel re-signed the upstream's certificate"
    );
    let mut c = Client::handshake(stream, Proto::H1, &target).await;
    let resp = c.get("/v1/echo?tunnel=1").await;
    assert_eq!(resp.status(), StatusCode::OK);
    // Inside a tunnel the proxy touches nothing, hop-by-hop headers included.
    assert_eq!(resp.headers()["x-resp-hop"], "1");
    up.seen_one("/v1/echo?tunnel=1");

    // Trusting only hoopctl's CA fails: nothing was intercepted.
    let (stream, resp) = client::connect_tunnel(s.proxy.addr, &target, Some(&auth))
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    let err = client::tls_connect(
        stream,
        client::tls_config(&[&s.ca_pem()], &["http/1.1"]),
        "localhost",
    )
    .await;
    assert!(
        err.is_err(),
        "hoopctl's CA verified a tunnelled host's certificate"
    );

    // A tunnel still needs the secret.
    let (_, resp) = client::connect_tunnel(s.proxy.addr, &target, None)
        .await
        .unwrap();
    assert_eq!(resp.status, 407);
}

// 12. An https upstream with --upstream-ca, spoken to over HTTP/2; without the CA a 502 says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_upstream_with_its_own_ca_and_http2() {
    let up = Upstream::start_tls(&["h2", "http/1.1"]);
    let env = Env::new();
    let ca_file = up.write_ca(env.dir.path());
    let s = start_in(
        env,
        &up.url(),
        &["--upstream-ca", ca_file.to_str().unwrap()],
    );
    let mut c = s.anthropic(Proto::H1).await;
    let resp = c.get("/v1/echo?via=https").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let json = client::body_json(resp).await;
    assert_eq!(json["version"], "HTTP/2.0", "{json}");
    assert_eq!(up.seen_one("/v1/echo?via=https").version, Version::HTTP_2);

    let plain = start(&up.url(), &[]);
    let mut c = plain.anthropic(Proto::H1).await;
    let resp = c.get("/v1/echo?via=untrusted").await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let json = client::body_json(resp).await;
    let message = assert_api_error(&json, "api_error");
    assert!(
        message.to_ascii_lowercase().contains("certificate"),
        "{message}"
    );
    assert!(up.seen().iter().all(|s| !s.path.contains("untrusted")));
}

// 13. SIGTERM: in-flight streams finish, new connections are refused, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_streams() {
    let up = Upstream::start();
    let mut s = start(&up.url(), &[]);
    let addr = s.proxy.addr;
    let mut c = s.anthropic(Proto::H1).await;
    // 8 events 200 ms apart: about 1.4 s after the first.
    let resp = c.get("/sse?n=8&ms=200&tag=g").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    client::read_until(&mut body, &mut buf, &upstream::sse_event("g", 1)).await;

    support::signal(&s.proxy.child, "TERM");
    let signalled = Instant::now();
    // The listener closes promptly (bounded poll for that event).
    loop {
        match TcpStream::connect(addr).await {
            // Refused, or reset from the closed listener's backlog: not accepted.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                break
            }
            Err(e) => panic!("unexpected connect error: {e}"),
            Ok(_) => {
                assert!(
                    signalled.elapsed() < Duration::from_secs(3),
                    "still accepting 3 s after SIGTERM"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert!(
        !String::from_utf8_lossy(&buf).contains("message_stop"),
        "the stream ended before the check"
    );
    while let Some(data) = client::next_data(&mut body).await {
        buf.extend_from_slice(&data);
    }
    assert_eq!(
        String::from_utf8_lossy(&buf),
        upstream::sse_expected("g", 8)
    );

    let status = tokio::task::block_in_place(|| s.proxy.wait_exit(Duration::from_secs(10)))
        .expect("no exit");
    assert!(status.success(), "{status:?}");
    let line = s
        .proxy
        .next_line(Duration::from_secs(2))
        .expect("no stopped event");
    let stopped: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(stopped["event"], "stopped", "{stopped}");
    assert_eq!(stopped["dropped_connections"], 0, "{stopped}");
    // The drain ended with the stream, not at the 15 s deadline.
    assert!(
        signalled.elapsed() < Duration::from_secs(8),
        "exit took {:?}",
        signalled.elapsed()
    );
}

// 14. A tunnel to api.anthropic.com cannot be used for another name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_must_match_the_connect_target() {
    let up = Upstream::start();
    let s = start(&up.url(), &[]);
    let auth = client::basic_auth(&s.proxy.secret);
    // Accept any certificate, so a failure can only come from the proxy.
    let any = client::accept_any_tls_config(&["http/1.1"]);
    let (stream, resp) = client::connect_tunnel(s.proxy.addr, "api.anthropic.com:443", Some(&auth))
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    let err = client::tls_connect(stream, any.clone(), "other.example").await;
    assert!(
        err.is_err(),
        "TLS for other.example inside a tunnel to api.anthropic.com succeeded"
    );

    // Control: the right name works with the same client.
    let (stream, resp) = client::connect_tunnel(s.proxy.addr, "api.anthropic.com:443", Some(&auth))
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    client::tls_connect(stream, any, "api.anthropic.com")
        .await
        .unwrap();
}
