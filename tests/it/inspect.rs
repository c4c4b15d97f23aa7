//! The response inspector and masking through the proxy, without Claude
//! Code: compressed answers, parallel tool calls, non-streaming replies,
//! telemetry, the control socket, and `hoopctl policy check|mask`.

use std::io::Write;
use std::process::{Output, Stdio};

use bytes::Bytes;
use serde_json::{json, Value};

use crate::support::fake_anthropic::{
    sse_events, text_block, tool_use_block, FakeAnthropic, Reply, Script,
};
use crate::support::{require, Env, Proxy};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A fake that answers every request with these bytes and headers.
fn fixed(body: Vec<u8>, headers: &[(&str, &str)]) -> FakeAnthropic {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let body = Bytes::from(body);
    FakeAnthropic::start(Script::default().with_responder(move |_| {
        Some(Reply::Raw {
            status: 200,
            headers: headers.clone(),
            body: body.clone(),
        })
    }))
    .unwrap()
}

/// POST /v1/messages through the proxy with curl.
fn post(proxy: &Proxy, body: &Value, extra: &[&str]) -> Output {
    proxy
        .curl()
        .args(extra)
        .args([
            "-H",
            "content-type: application/json",
            "-H",
            "x-api-key: k",
            "-H",
            "anthropic-version: 2023-06-01",
        ])
        .args([
            "-d",
            &body.to_string(),
            "https://api.anthropic.com/v1/messages",
        ])
        .output()
        .unwrap()
}

fn stream_req() -> Value {
    json!({"model": "m", "max_tokens": 10, "stream": true, "messages": [{"role": "user", "content": "go"}]})
}

fn sse(content: &[Value], stop: &str) -> Vec<u8> {
    sse_events("msg_1", "m", content, stop, 3).concat()
}

#[test]
fn a_gzip_event_stream_is_decoded_and_the_delete_blocked() {
    let env = Env::new();
    let content = [
        text_block("Deleting."),
        tool_use_block("toolu_1", "Bash", json!({"command": "rm -rf /"})),
    ];
    let fake = fixed(
        gzip(&sse(&content, "tool_use")),
        &[
            ("content-type", "text/event-stream"),
            ("content-encoding", "gzip"),
        ],
    );
    let proxy = env.start_proxy(&["--upstream", &fake.url()]);
    let out = post(&proxy, &stream_req(), &["--compressed"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"text\":\"Del\"") && text.contains("\"text\":\"ng.\""),
        "{text}"
    );
    assert!(text.contains("builtin:rm-recursive-broad"), "{text}");
    assert!(
        !text.contains("\"tool_use\",\"id\""),
        "the tool call reached the client: {text}"
    );
    assert!(text.contains("\"stop_reason\":\"end_turn\""), "{text}");
    // The request asked the upstream for identity encoding.
    let r = fake
        .requests()
        .into_iter()
        .find(|r| r.is_messages())
        .unwrap();
    assert_eq!(r.header("accept-encoding"), Some("identity"));
}

#[test]
fn parallel_tool_calls_are_decided_one_by_one() {
    let env = Env::new();
    let content = [
        tool_use_block("toolu_a", "Bash", json!({"command": "ls -la"})),
        tool_use_block("toolu_b", "Bash", json!({"command": "cd / && rm -rf *"})),
        tool_use_block(
            "toolu_c",
            "Write",
            json!({"file_path": "src/main.rs", "content": "fn main() {}"}),
        ),
    ];
    let fake = fixed(
        sse(&content, "tool_use"),
        &[("content-type", "text/event-stream")],
    );
    let proxy = env.start_proxy(&["--upstream", &fake.url()]);
    let text = String::from_utf8_lossy(&post(&proxy, &stream_req(), &[]).stdout).to_string();
    assert!(
        text.contains("toolu_a") && text.contains("toolu_c"),
        "{text}"
    );
    assert!(!text.contains("toolu_b"), "{text}");
    assert!(text.contains("hoopctl blocked this Bash call"), "{text}");
    // Tool calls remain, so the turn still ends in tool_use.
    assert!(text.contains("\"stop_reason\":\"tool_use\""), "{text}");
}

#[test]
fn non_streaming_replies_get_the_same_decisions() {
    let env = Env::new();
    let message = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [tool_use_block("toolu_1", "Bash", json!({"command": "psql -c 'DROP TABLE users'"}))],
        "stop_reason": "tool_use", "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 1}
    });
    let fake = fixed(
        gzip(message.to_string().as_bytes()),
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
    );
    let proxy = env.start_proxy(&["--upstream", &fake.url()]);
    let mut req = stream_req();
    req["stream"] = false.into();
    let out = post(&proxy, &req, &["--compressed"]);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(v["stop_reason"], "end_turn", "{v}");
    assert_eq!(v["content"][0]["type"], "text");
    assert!(
        v["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("builtin:sql-drop"),
        "{v}"
    );
}

#[test]
fn telemetry_is_masked_or_blocked_as_the_policy_says() {
    require("curl");
    let env = Env::new();
    let fake = FakeAnthropic::start(Script::default().with_responder(|_| {
        Some(Reply::Raw {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from_static(b"{}"),
        })
    }))
    .unwrap();
    let send = |proxy: &Proxy| {
        proxy
            .curl()
            .args(["-o", "/dev/null", "-w", "%{http_code}"])
            .args([
                "-H",
                "content-type: application/json",
                "-d",
                r#"{"events":[{"user":"carol@corp.example","msg":"card 4111 1111 1111 1111"}]}"#,
            ])
            .arg("https://api.anthropic.com/api/event_logging/v2/batch")
            .output()
            .unwrap()
    };
    let proxy = env.start_proxy(&["--upstream", &fake.url()]);
    assert_eq!(String::from_utf8_lossy(&send(&proxy).stdout), "200");
    let body = String::from_utf8_lossy(&fake.requests()[0].body).to_string();
    assert!(
        !body.contains("carol@corp.example") && !body.contains("4111 1111"),
        "{body}"
    );
    assert!(body.contains("<EMAIL_1>"), "{body}");
    drop(proxy);

    let policy = env.path("policy.toml");
    std::fs::write(&policy, "[masking]\ntelemetry = \"block\"\n").unwrap();
    fake.clear();
    let proxy = env.start_proxy(&[
        "--upstream",
        &fake.url(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(String::from_utf8_lossy(&send(&proxy).stdout), "204");
    assert!(
        fake.requests().is_empty(),
        "blocked telemetry left the machine"
    );
}

#[test]
fn the_control_socket_is_private_and_serves_several_watchers() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let out = env.cmd().arg("pending").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no hoopctl proxy is running"));

    let fake = FakeAnthropic::start(Script::default()).unwrap();
    let proxy = env.start_proxy(&["--upstream", &fake.url()]);
    let sockets = hoopctl::control::client::sockets(&env.path("run"));
    assert_eq!(sockets.len(), 1);
    assert_eq!(
        std::fs::metadata(&sockets[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use hoopctl::control::{client::Conn, protocol::Command as C};
        let mut a = Conn::connect(&sockets[0]).await.unwrap();
        let mut b = Conn::connect(&sockets[0]).await.unwrap();
        assert_eq!(a.hello.pid, proxy.child.id());
        assert!(a.call(&C::Watch).await.unwrap().ok);
        assert!(b.call(&C::Watch).await.unwrap().ok);
        let reply = a
            .call(&C::Approve {
                id: "apr-nope".into(),
            })
            .await
            .unwrap();
        assert!(!reply.ok && reply.error.unwrap().contains("no pending approval"));
        // A request through the proxy reaches both watchers as an event.
        let out = post(&proxy, &stream_req(), &[]);
        assert!(out.status.success());
        for conn in [&mut a, &mut b] {
            // The CONNECT's egress decision comes first, then the request.
            let ev = tokio::time::timeout(std::time::Duration::from_secs(5), conn.next_event())
                .await
                .unwrap()
                .unwrap();
            assert!(
                matches!(&ev, Some(hoopctl::events::Event::Egress { decision, .. }) if decision == "intercept"),
                "{ev:?}"
            );
            let ev = tokio::time::timeout(std::time::Duration::from_secs(5), conn.next_event())
                .await
                .unwrap()
                .unwrap();
            assert!(
                matches!(ev, Some(hoopctl::events::Event::Request { .. })),
                "{ev:?}"
            );
        }
    });
    drop(proxy);
}

#[test]
fn policy_check_and_mask_explain_themselves() {
    let env = Env::new();
    let v: Value = serde_json::from_str(&env.run_ok(&[
        "--output",
        "json",
        "policy",
        "check",
        "--tool",
        "Bash",
        "--input",
        r#"{"command":"cd / && rm -rf *"}"#,
    ]))
    .unwrap();
    assert_eq!(v["decision"]["action"], "block");
    assert_eq!(v["decision"]["rule"], "builtin:rm-recursive-broad");
    let text = env.run_ok(&[
        "policy",
        "check",
        "--tool",
        "Bash",
        "--input",
        r#"{"command":"echo \"rm -rf /\""}"#,
    ]);
    assert!(text.starts_with("allow"), "{text}");
    let out = env
        .cmd()
        .args(["policy", "check", "--tool", "Bash", "--input", "not json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    let mut child = env
        .cmd()
        .args(["--output", "json", "policy", "mask"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"write to dan@corp.example about IBAN DE89370400440532013000")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["masked"], "write to <EMAIL_1> about IBAN <IBAN_1>");
    assert_eq!(v["findings"][0]["detector"], "email");
    assert_eq!(v["findings"][0]["start"], 9);
    assert_eq!(v["counts"]["iban"], 1);
}

#[test]
fn an_undecided_review_times_out_as_the_policy_says() {
    let env = Env::new();
    let content = [tool_use_block(
        "toolu_1",
        "Bash",
        json!({"command": "git push --force origin main"}),
    )];
    let fake = fixed(
        sse(&content, "tool_use"),
        &[("content-type", "text/event-stream")],
    );
    let policy = env.path("policy.toml");
    std::fs::write(
        &policy,
        "[guardrails]\nreview_timeout_secs = 1\non_timeout = \"deny\"\n",
    )
    .unwrap();
    let proxy = env.start_proxy(&[
        "--upstream",
        &fake.url(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    let started = std::time::Instant::now();
    let text = String::from_utf8_lossy(&post(&proxy, &stream_req(), &[]).stdout).to_string();
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    assert!(
        text.contains("builtin:git-force-push") && text.contains("nobody decided within 1 s"),
        "{text}"
    );
    assert!(text.contains("\"stop_reason\":\"end_turn\""), "{text}");
}

#[test]
fn an_http2_body_without_a_length_is_masked_too() {
    require("curl");
    let env = Env::new();
    let fake = FakeAnthropic::start(Script::default()).unwrap();
    let proxy = env.start_proxy(&["--upstream", &fake.url()]);
    // `-T -` streams stdin: over HTTP/2 the request carries no content-length.
    let mut child = proxy
        .curl()
        .args(["--http2", "-X", "POST", "-T", "-"])
        .args([
            "-H",
            "content-type: application/json",
            "-w",
            "%{http_version}",
            "-o",
            "/dev/null",
        ])
        .arg("https://api.anthropic.com/v1/messages")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let body = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "ping eve@corp.example"}]});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2");
    let seen = fake
        .requests()
        .into_iter()
        .find(|r| r.is_messages())
        .expect("request reached the fake");
    assert!(seen.header("content-length").is_some());
    let text = String::from_utf8_lossy(&seen.body);
    assert!(
        text.contains("<EMAIL_1>") && !text.contains("eve@corp.example"),
        "{text}"
    );
}
