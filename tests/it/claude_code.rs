//! The real Claude Code (npm @anthropic-ai/claude-code, installed by
//! .ci/run) running unchanged through hoopctl against the fake API.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::fake_anthropic::{classify, tool_results, FakeAnthropic, Script, Turn};
use crate::support::{require, Env, Proxy};

/// The environment Claude Code gets in these tests: offline, quiet, no
/// base URL (the proxy path is what is under test), a dummy key.
fn claude_env(cmd: &mut Command, env: &Env, work: &Path) {
    cmd.env("ANTHROPIC_API_KEY", "sk-ant-dummy-test-key")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("ANTHROPIC_AUTH_TOKEN")
        .env_remove("NODE_EXTRA_CA_CERTS")
        .current_dir(work)
        .stdin(Stdio::null());
    env.apply(cmd);
}

fn claude_args(marker_dir: &Path) -> Vec<String> {
    vec![
        "claude".into(),
        "-p".into(),
        format!("Create the marker file in {}", marker_dir.display()),
        // Root may not use --dangerously-skip-permissions; this allows Bash only.
        "--allowedTools".into(),
        "Bash".into(),
    ]
}

/// What the fake must have seen for one complete Bash round trip.
fn assert_round_trip(fake: &FakeAnthropic, marker: &Path, output: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "claude failed: {:?}\n{stdout}\n{stderr}\n{:?}",
        output.status,
        fake.request_lines()
    );
    assert!(
        marker.exists(),
        "the Bash tool did not run: {:?}\n{stdout}",
        fake.request_lines()
    );
    assert_eq!(stdout.trim(), "All done.");
    let msgs = fake.messages_requests();
    let tool_turn = msgs
        .iter()
        .position(|m| classify(m) == Turn::ToolCall)
        .expect("no tool-call turn");
    let results: Vec<Value> = msgs[tool_turn + 1..]
        .iter()
        .flat_map(tool_results)
        .collect();
    assert_eq!(results.len(), 1, "{:?}", fake.request_lines());
    assert_eq!(results[0]["is_error"], false, "{results:?}");
    // Direct mode: the agent's own key reaches the API unchanged.
    let reqs = fake.requests();
    let messages: Vec<_> = reqs.iter().filter(|r| r.is_messages()).collect();
    assert!(messages
        .iter()
        .all(|r| r.header("x-api-key") == Some("sk-ant-dummy-test-key")));
    assert!(messages
        .iter()
        .all(|r| r.header("anthropic-version").is_some()));
    assert!(messages
        .iter()
        .all(|r| r.header("proxy-authorization").is_none()));
}

#[test]
fn claude_code_runs_a_tool_round_trip_through_connect() {
    require("claude");
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    let marker = target.path().join("marker");
    let fake = FakeAnthropic::start(Script::bash(format!("touch {}", marker.display()))).unwrap();
    let mut cmd = env.cmd();
    cmd.args([
        "connect",
        "claude-code",
        "--direct",
        "--upstream",
        &fake.url(),
        "--",
    ]);
    cmd.args(claude_args(target.path()));
    claude_env(&mut cmd, &env, work.path());
    let out = cmd.output().unwrap();
    assert_round_trip(&fake, &marker, &out);
    // Every request went through the intercepting proxy: the log shows them.
    let log = std::fs::read_to_string(env.path("data/logs/hoopctl.log")).unwrap();
    assert!(log.contains("/v1/messages"), "{log}");
    assert!(
        !log.contains("sk-ant-dummy-test-key"),
        "a key reached the log"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn plain_claude_runs_through_claude_configure() {
    require("claude");
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    let marker = target.path().join("marker");
    let fake = FakeAnthropic::start(Script::bash(format!("touch {}", marker.display()))).unwrap();

    // The profile's stable address, then the foreground proxy on it.
    let port = free_port();
    std::fs::create_dir_all(env.path("config")).unwrap();
    std::fs::write(
        env.path("config/config.toml"),
        format!("[profiles.default]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let mut cmd = env.cmd();
    cmd.args([
        "--output",
        "json",
        "connect",
        "claude-code",
        "--direct",
        "--upstream",
        &fake.url(),
    ]);
    let mut proxy = Proxy::spawn(cmd);
    assert_eq!(proxy.addr.port(), port);

    // A settings.json with keys of its own, which must survive.
    let settings = env.home().join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(
        &settings,
        r#"{"includeCoAuthoredBy": false, "env": {"MY_VAR": "kept"}}"#,
    )
    .unwrap();
    let change: Value =
        serde_json::from_str(&env.run_ok(&["--output", "json", "claude", "configure"])).unwrap();
    assert_eq!(change["changed"], true);
    let configured: Value =
        serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
    assert_eq!(
        configured["env"]["HTTPS_PROXY"].as_str().unwrap(),
        proxy.proxy_url
    );
    assert_eq!(configured["env"]["MY_VAR"], "kept");
    assert_eq!(configured["includeCoAuthoredBy"], false);

    // Plain `claude`, with nothing in its environment pointing at hoopctl.
    let mut claude = Command::new("claude");
    claude.args(&claude_args(target.path())[1..]);
    claude_env(&mut claude, &env, work.path());
    let out = claude.output().unwrap();
    assert_round_trip(&fake, &marker, &out);

    env.run_ok(&["claude", "unconfigure"]);
    let restored: Value =
        serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
    assert_eq!(
        restored,
        serde_json::json!({"includeCoAuthoredBy": false, "env": {"MY_VAR": "kept"}})
    );

    let (status, rest) = proxy.stop();
    assert!(status.success());
    assert!(rest.iter().any(|l| l.contains("\"stopped\"")), "{rest:?}");
    assert!(proxy.wait_exit(Duration::from_secs(1)).is_some());
}
