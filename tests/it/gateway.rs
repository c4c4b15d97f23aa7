//! Gateway mode (SPEC section 5) end to end: a real login at the test OpenID
//! provider (oidc-provider, headless chromium), the gateway double over real
//! TLS with its own CA, the fake Anthropic API behind it, and hoopctl in
//! between; the real Claude Code where the agent's side matters.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::fake_anthropic::{FakeAnthropic, Script};
use crate::support::gateway::{Decision, Gateway, GatewayConfig};
use crate::support::oidc::{self, Provider};
use crate::support::{curl_messages, require, Env, Proxy};

const AGENT_KEY: &str = "sk-ant-agent-own-key-must-not-leave";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One test's world: provider, fake API, gateway, and hoopctl's directories.
struct World {
    env: Env,
    provider: Option<Provider>,
    fake: FakeAnthropic,
    gateway: Gateway,
    gateway_ca: PathBuf,
    /// The gateway's own Anthropic key.
    api_key: String,
}

impl World {
    /// Everything, with a provider the gateway checks tokens against.
    fn new(script: Script, tweak: impl FnOnce(&mut GatewayConfig)) -> World {
        let provider = Provider::start(None);
        let mut w = Self::build(script, Some(&provider), tweak);
        w.provider = Some(provider);
        w
    }

    /// No provider: the gateway accepts any bearer token (for tests that
    /// stop before a credential is asked for).
    fn without_provider(tweak: impl FnOnce(&mut GatewayConfig)) -> World {
        Self::build(Script::default(), None, tweak)
    }

    fn build(
        script: Script,
        provider: Option<&Provider>,
        tweak: impl FnOnce(&mut GatewayConfig),
    ) -> World {
        let fake = FakeAnthropic::start(script).unwrap();
        let mut cfg = GatewayConfig {
            issuer: provider.map(|p| p.issuer.clone()),
            client_id: provider.map(|p| p.client_id.clone()),
            upstream: fake.url(),
            ..GatewayConfig::default()
        };
        tweak(&mut cfg);
        let api_key = cfg.api_key.clone();
        let gateway = Gateway::start(cfg);
        let env = Env::new();
        let gateway_ca = gateway.write_ca(env.dir.path());
        World {
            env,
            provider: None,
            fake,
            gateway,
            gateway_ca,
            api_key,
        }
    }

    /// `hoopctl login --gateway URL --gateway-ca CA` with the browser, tokens in a file.
    fn login(&self) {
        self.env.run_ok(&[
            "login",
            "--gateway",
            &self.gateway.url(),
            "--gateway-ca",
            self.gateway_ca.to_str().unwrap(),
            "--token-store",
            "file",
            "--browser-cmd",
            &oidc::browser_cmd(),
            "--timeout",
            "60",
        ]);
    }

    /// The foreground proxy in gateway mode (the profile's gateway).
    fn start_proxy(&self, args: &[&str]) -> Proxy {
        let mut cmd = self.env.cmd();
        cmd.args([
            "--output",
            "json",
            "connect",
            "claude-code",
            "--listen",
            "127.0.0.1:0",
        ]);
        cmd.args(args);
        Proxy::spawn(cmd)
    }

    /// `hoopctl connect claude-code ARGS -- claude -p ...` for a Bash round trip.
    fn claude(&self, args: &[&str], work: &Path, marker_dir: &Path, key: Option<&str>) -> Output {
        require("claude");
        let mut cmd = self.env.cmd();
        cmd.args(["connect", "claude-code"]).args(args).args([
            "--",
            "claude",
            "-p",
            &format!("Create the marker file in {}", marker_dir.display()),
            "--allowedTools",
            "Bash",
        ]);
        cmd.env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            .env_remove("ANTHROPIC_BASE_URL")
            .env_remove("ANTHROPIC_AUTH_TOKEN")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("NODE_EXTRA_CA_CERTS")
            .current_dir(work)
            .stdin(Stdio::null());
        if let Some(k) = key {
            cmd.env("ANTHROPIC_API_KEY", k);
        }
        cmd.output().unwrap()
    }
}

fn error_message(v: &Value) -> String {
    assert_eq!(v["type"], "error", "not an Anthropic error: {v}");
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The fake API saw the gateway's key on every request and the agent's key nowhere.
fn assert_only_gateway_key_upstream(w: &World) {
    let reqs = w.fake.requests();
    assert!(!reqs.is_empty());
    for r in &reqs {
        assert_eq!(
            r.header("x-api-key"),
            Some(w.api_key.as_str()),
            "{}",
            r.path
        );
        assert!(r.header("authorization").is_none(), "{}", r.path);
        for (name, value) in &r.headers {
            assert!(
                !value.contains("sk-ant-agent") && !value.contains("hoopctl-gateway-placeholder"),
                "the agent's key reached the API in {name}"
            );
        }
    }
    // And the gateway saw hoopctl's proxy token, not the agent's key, over
    // HTTP/2 (which it offers).
    for call in w.gateway.proxy_log() {
        let auth = call.authorization.clone().unwrap_or_default();
        assert!(auth.starts_with("claude-code-"), "{auth:?}");
        assert!(call.x_api_key.is_none(), "{:?}", call.x_api_key);
        assert_eq!(call.version, "HTTP/2.0");
    }
}

#[test]
fn claude_code_runs_through_the_gateway_with_a_dummy_key_and_reuses_the_credential() {
    let work = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    let marker = target.path().join("marker");
    let w = World::new(Script::bash(format!("touch {}", marker.display())), |c| {
        c.default_duration = Some(600)
    });
    w.login();

    // The profile's gateway applies without flags; the agent's own key is a dummy.
    let out = w.claude(&[], work.path(), target.path(), Some(AGENT_KEY));
    assert!(out.status.success(), "{}", text(&out));
    assert!(marker.exists(), "the Bash tool did not run: {}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "All done.");
    assert_only_gateway_key_upstream(&w);
    assert_eq!(w.gateway.credentials().len(), 1);
    // The credential POST carried a JSON body (the real gateway rejects an empty one).
    let posts: Vec<_> = w
        .gateway
        .api_log()
        .into_iter()
        .filter(|c| c.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].path, "/api/connections/claude-code/credentials");
    assert_eq!(posts[0].status, 201);

    // No key at all: hoopctl gives Claude Code a placeholder, and the
    // active credential is reused instead of minting another.
    std::fs::remove_file(&marker).unwrap();
    w.fake.clear();
    let out = w.claude(&[], work.path(), target.path(), None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(marker.exists(), "{}", text(&out));
    assert_only_gateway_key_upstream(&w);
    assert_eq!(
        w.gateway.credentials().len(),
        1,
        "the credential was not reused"
    );

    // Neither the proxy token nor the agent's key is in hoopctl's log.
    let token = w.gateway.credentials()[0].proxy_token.clone();
    let log = std::fs::read_to_string(w.env.path("data/logs/hoopctl.log")).unwrap();
    assert!(log.contains("/v1/messages"), "{log}");
    assert!(!log.contains(&token), "the proxy token reached the log");
    assert!(!log.contains(AGENT_KEY), "the agent's key reached the log");
}

#[test]
fn a_connection_under_review_waits_for_the_approval_then_runs() {
    let work = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    let marker = target.path().join("marker");
    let w = World::new(Script::bash(format!("touch {}", marker.display())), |c| {
        c.review = true;
        c.default_duration = Some(600);
    });
    w.login();
    w.gateway
        .decide_after(Duration::from_millis(2500), Decision::Approve);
    let started = Instant::now();
    let out = w.claude(&[], work.path(), target.path(), Some(AGENT_KEY));
    assert!(out.status.success(), "{}", text(&out));
    assert!(started.elapsed() >= Duration::from_millis(2500));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let review = &w.gateway.reviews()[0];
    assert!(stderr.contains("needs approval"), "{stderr}");
    assert!(
        stderr.contains(&format!("{}/reviews/{}", w.gateway.url(), review.id)),
        "{stderr}"
    );
    assert!(stderr.contains("Approved."), "{stderr}");
    assert!(marker.exists());
    assert_only_gateway_key_upstream(&w);
    let log = w.gateway.api_log();
    assert!(
        log.iter()
            .filter(|c| c.method == "GET" && c.path == format!("/api/reviews/{}", review.id))
            .count()
            >= 1,
        "{log:?}"
    );
    let resume = format!(
        "/api/connections/claude-code/credentials/{}",
        review.session_id
    );
    assert!(
        log.iter()
            .any(|c| c.method == "POST" && c.path == resume && c.status == 201),
        "{log:?}"
    );
}

#[test]
fn a_rejected_review_stops_before_the_agent_starts() {
    let work = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    let w = World::new(Script::default(), |c| {
        c.review = true;
        c.review_status = 202;
    });
    w.login();
    w.gateway.decide_after(
        Duration::from_millis(800),
        Decision::Reject("change freeze until Monday".into()),
    );
    let out = w.claude(&["--output", "json"], work.path(), target.path(), None);
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        lines.iter().any(|l| l["event"] == "review_required"),
        "{stderr}"
    );
    let error = lines
        .iter()
        .find_map(|l| l["error"].as_str())
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(error.contains("change freeze until Monday"), "{error}");
    assert!(error.contains("REJECTED"), "{error}");
    assert!(w.fake.requests().is_empty(), "the agent ran");
}

#[test]
fn an_expiring_credential_is_renewed_before_it_lapses() {
    let w = World::new(Script::default(), |c| c.default_duration = Some(4));
    w.login();
    let mut proxy = w.start_proxy(&[]);
    assert_eq!(proxy.ready["mode"], "gateway");
    assert!(
        proxy.ready["gateway"]["expires_at"].is_string(),
        "{}",
        proxy.ready
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    while Instant::now() < deadline {
        let (status, body, _) = curl_messages(&proxy, AGENT_KEY, &format!("request {n}"));
        assert_eq!(status, 200, "request {n}: {body}");
        n += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    let creds = w.gateway.credentials();
    assert!(
        creds.len() >= 3,
        "{} credentials for 10 s of 4 s ones",
        creds.len()
    );
    // Renewed ahead of time: the gateway never had to refuse a request.
    let log = w.gateway.proxy_log();
    let statuses: Vec<u16> = log.iter().map(|c| c.status).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let used: std::collections::BTreeSet<_> =
        log.iter().filter_map(|c| c.authorization.clone()).collect();
    assert!(used.len() >= 3, "{used:?}");
    proxy.stop();
}

#[test]
fn a_revoked_credential_is_renewed_once_then_login_is_asked_for() {
    let w = World::new(Script::default(), |c| c.default_duration = None);
    w.login();
    let mut proxy = w.start_proxy(&[]);
    assert!(proxy.ready["gateway"]["expires_at"].is_null());
    let (status, body, _) = curl_messages(&proxy, AGENT_KEY, "first");
    assert_eq!(status, 200, "{body}");

    // Revoked at the gateway: the next request is refused once, hoopctl
    // renews the credential and sends it again; the agent sees a success.
    let first = w.gateway.credentials()[0].clone();
    w.gateway.revoke(&first.id);
    let (status, body, _) = curl_messages(&proxy, AGENT_KEY, "second");
    assert_eq!(status, 200, "{body}");
    let creds = w.gateway.credentials();
    assert_eq!(creds.len(), 2);
    let log = w.gateway.proxy_log();
    let statuses: Vec<u16> = log.iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![200, 401, 200], "{log:?}");
    assert_eq!(
        log[1].authorization.as_deref(),
        Some(first.proxy_token.as_str())
    );
    assert_eq!(
        log[2].authorization.as_deref(),
        Some(creds[1].proxy_token.as_str())
    );

    // Logged out (tokens revoked at the provider and deleted): the next
    // refusal cannot be mended, and the agent is told to log in.
    w.env.run_ok(&["logout"]);
    w.gateway.revoke(&creds[1].id);
    let (status, body, _) = curl_messages(&proxy, AGENT_KEY, "third");
    assert_eq!(status, 401, "{body}");
    let message = error_message(&body);
    assert!(message.contains("hoopctl login"), "{message}");
    assert_eq!(w.gateway.credentials().len(), 2);
    proxy.stop();
}

#[test]
fn the_gateway_going_down_fails_fast_and_coming_back_works_again() {
    let w = World::new(Script::default(), |c| c.default_duration = Some(600));
    w.login();
    let mut proxy = w.start_proxy(&[]);
    let (status, body, _) = curl_messages(&proxy, AGENT_KEY, "up");
    assert_eq!(status, 200, "{body}");

    w.gateway.stop();
    let (status, body, took) = curl_messages(&proxy, AGENT_KEY, "down");
    assert_eq!(status, 502, "{body}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let message = error_message(&body);
    assert!(message.contains("could not reach the gateway"), "{message}");

    w.gateway.restart();
    let (status, body, _) = curl_messages(&proxy, AGENT_KEY, "back");
    assert_eq!(status, 200, "{body}");
    assert_eq!(w.gateway.credentials().len(), 1);
    proxy.stop();
}

/// A gateway that takes the request and never answers (its upstream is
/// silent): the agent gets an Anthropic 504 `timeout_error` after the
/// response-head timeout, marked not to be retried (each retry would hold
/// the person as long again), and the proxy still serves the next request.
#[test]
fn a_gateway_that_never_answers_gets_a_504_not_retried() {
    // Connections wait in the backlog; nothing is ever read or answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let w = World::new(Script::default(), |c| {
        c.default_duration = Some(600);
        c.upstream = silent_url;
    });
    w.login();
    let mut proxy = w.start_proxy(&["--response-head-timeout", "2"]);
    let started = Instant::now();
    let out = proxy
        .curl()
        .args(["-i", "--max-time", "30"])
        .args([
            "-H",
            "content-type: application/json",
            "-H",
            &format!("x-api-key: {AGENT_KEY}"),
            "--data-binary",
            r#"{"model":"m","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#,
            "https://api.anthropic.com/v1/messages",
        ])
        .output()
        .unwrap();
    let took = started.elapsed();
    let reply = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(15),
        "{took:?}: {reply}"
    );
    // After the proxy's answer to CONNECT, the API's.
    let api = reply
        .split_once("Connection Established\n\n")
        .map_or(reply.as_str(), |(_, rest)| rest);
    let (head, body) = api.split_once("\n\n").unwrap_or_default();
    assert!(
        head.starts_with("HTTP/2 504") || head.starts_with("HTTP/1.1 504"),
        "{reply}"
    );
    assert!(
        head.to_ascii_lowercase().contains("x-should-retry: false"),
        "{reply}"
    );
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{reply}"));
    assert_eq!(body["error"]["type"], "timeout_error", "{body}");
    let message = error_message(&body);
    assert!(message.contains("sent no answer within 2s"), "{message}");
    proxy.stop();
}

#[test]
fn gateway_errors_reach_the_agent_in_anthropic_shape() {
    let w = World::new(Script::default(), |c| {
        c.default_duration = Some(600);
        c.hostname = "localhost".into();
    });
    w.login();
    let mut proxy = w.start_proxy(&[]);
    w.gateway
        .fail_proxy(1, 503, "upstream pool exhausted, try later");
    let (status, body, _) = curl_messages(&proxy, AGENT_KEY, "x");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["type"], "api_error", "{body}");
    let message = error_message(&body);
    assert!(
        message.contains("the gateway answered 503: upstream pool exhausted, try later"),
        "{message}"
    );
    // The endpoint's hostname was `localhost`; the next request goes through.
    assert_eq!(
        proxy.ready["upstream"],
        format!("https://localhost:{}", w.gateway.proxy_port())
    );
    let (status, body, _) = curl_messages(&proxy, AGENT_KEY, "y");
    assert_eq!(status, 200, "{body}");
    proxy.stop();
}

#[test]
fn ctrl_c_stops_waiting_for_a_review() {
    let w = World::new(Script::default(), |c| c.review = true);
    w.login();
    let mut child = w
        .env
        .cmd()
        .args(["connect", "claude-code", "--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while w.gateway.reviews().is_empty() {
        assert!(Instant::now() < deadline, "no review was opened");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    crate::support::signal(&child, "INT");
    let started = Instant::now();
    let out = loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break child.wait_with_output().unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still waiting after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("stopped waiting for the gateway"),
        "{}",
        text(&out)
    );
    assert_eq!(w.gateway.reviews()[0].status, "PENDING");
}

#[test]
fn an_untrusted_gateway_certificate_is_a_clear_error() {
    let w = World::new(Script::default(), |_| {});
    let p = w.provider.as_ref().unwrap();
    // Logged in at the provider directly: the profile knows no gateway CA.
    w.env.run_ok(&[
        "login",
        "--issuer",
        &p.issuer,
        "--client-id",
        &p.client_id,
        "--token-store",
        "file",
        "--browser-cmd",
        &oidc::browser_cmd(),
    ]);
    let out = w
        .env
        .cmd()
        .args([
            "connect",
            "claude-code",
            "--gateway",
            &w.gateway.url(),
            "--",
            "true",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not trust"), "{stderr}");
    assert!(stderr.contains("--gateway-ca"), "{stderr}");
    assert!(w.gateway.credentials().is_empty());
    // With the CA it works.
    let out = w
        .env
        .cmd()
        .args(["connect", "claude-code", "--gateway", &w.gateway.url()])
        .arg("--gateway-ca")
        .arg(&w.gateway_ca)
        .args(["--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(w.gateway.credentials().len(), 1);
}

#[test]
fn gateway_mode_without_a_login_says_to_log_in() {
    let w = World::without_provider(|_| {});
    let out = w
        .env
        .cmd()
        .args(["connect", "claude-code", "--gateway", &w.gateway.url()])
        .arg("--gateway-ca")
        .arg(&w.gateway_ca)
        .args(["--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("hoopctl login"), "{}", text(&out));
    assert!(w.gateway.api_log().is_empty());
}

#[test]
fn print_env_gives_a_placeholder_key_only_in_gateway_mode_without_one() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("config")).unwrap();
    std::fs::write(
        env.path("config/config.toml"),
        "[profiles.default]\ngateway = \"https://gateway.invalid\"\n",
    )
    .unwrap();
    let printed = |key: Option<&str>, extra: &[&str]| -> Value {
        let mut cmd = env.cmd();
        cmd.args(["--output", "json", "connect", "claude-code", "--print-env"])
            .args(extra)
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("ANTHROPIC_AUTH_TOKEN");
        if let Some(k) = key {
            cmd.env("ANTHROPIC_API_KEY", k);
        }
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["env"].clone()
    };
    let env_vars = printed(None, &[]);
    assert_eq!(
        env_vars["ANTHROPIC_API_KEY"], "sk-ant-hoopctl-gateway-placeholder",
        "{env_vars}"
    );
    assert!(printed(Some("sk-ant-own"), &[])["ANTHROPIC_API_KEY"].is_null());
    assert!(printed(None, &["--direct"])["ANTHROPIC_API_KEY"].is_null());
}
