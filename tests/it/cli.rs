//! The command line as a user meets it: help, completions, --print-env,
//! listen addresses, policy errors, and running a child command.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    self,
    fake_anthropic::{FakeAnthropic, Script},
    require, Env,
};

const COMPLETIONS: &[(&str, &str)] = &[
    ("bash", "hoopctl.bash"),
    ("zsh", "_hoopctl"),
    ("fish", "hoopctl.fish"),
    ("powershell", "_hoopctl.ps1"),
    ("elvish", "hoopctl.elv"),
];

#[test]
fn committed_completions_match_the_binary() {
    let env = Env::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    for (shell, file) in COMPLETIONS {
        let generated = env.run_ok(&["completions", shell]);
        let committed = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        assert!(
            generated == committed,
            "completions/{file} is stale: run `cargo run -- completions {shell} > completions/{file}`"
        );
    }
}

#[test]
fn help_teaches_the_main_paths() {
    let env = Env::new();
    for (args, needles) in [
        (
            &["--help"][..],
            &[
                "connect",
                "ca",
                "claude",
                "completions",
                "--output",
                "HOOPCTL_CONFIG_DIR",
            ][..],
        ),
        (
            &["connect", "--help"],
            &[
                "--print-env",
                "--upstream",
                "--listen",
                "-- claude",
                "7733",
                "NODE_EXTRA_CA_CERTS",
            ],
        ),
        (
            &["sessions", "--help"],
            &[
                "hoopctl sessions search 'DROP TABLE'",
                "export --since 7d",
                "fail_closed",
                "retain_days",
                "[audit.webhook]",
            ],
        ),
    ] {
        let help = env.run_ok(args);
        for needle in needles {
            assert!(help.contains(needle), "{needle} missing in {args:?}");
        }
    }
}

#[test]
fn print_env_evals_in_bash_and_matches_the_stable_proxy() {
    require("bash");
    let env = Env::new();
    let json: Value = serde_json::from_str(&env.run_ok(&[
        "--output",
        "json",
        "connect",
        "claude-code",
        "--print-env",
    ]))
    .unwrap();
    let proxy_url = json["env"]["HTTPS_PROXY"].as_str().unwrap().to_string();
    assert!(
        proxy_url.starts_with("http://hoopctl:") && proxy_url.ends_with("@127.0.0.1:7733"),
        "{proxy_url}"
    );
    assert_eq!(json["env"]["NO_PROXY"], "localhost,127.0.0.1,::1");
    assert_eq!(
        json["env"]["NODE_EXTRA_CA_CERTS"],
        env.ca_cert().display().to_string()
    );
    assert!(
        env.ca_cert().exists(),
        "print-env creates the CA it points at"
    );

    // The same values survive a real shell's eval.
    let mut cmd = Command::new("bash");
    env.apply(&mut cmd);
    let script = format!(
        "eval \"$({} connect claude-code --print-env --shell bash)\" && printf '%s|%s|%s' \"$HTTPS_PROXY\" \"$NODE_EXTRA_CA_CERTS\" \"$NO_PROXY\"",
        support::hoopctl_bin()
    );
    let out = cmd.args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "{proxy_url}|{}|localhost,127.0.0.1,::1",
            env.ca_cert().display()
        )
    );

    // fish and powershell quoting.
    let fish = env.run_ok(&["connect", "claude-code", "--print-env", "--shell", "fish"]);
    assert!(
        fish.contains(&format!("set -gx HTTPS_PROXY '{proxy_url}'")),
        "{fish}"
    );
    let ps = env.run_ok(&[
        "connect",
        "claude-code",
        "--print-env",
        "--shell",
        "powershell",
    ]);
    assert!(
        ps.contains(&format!("$env:HTTPS_PROXY = '{proxy_url}'")),
        "{ps}"
    );

    // The foreground proxy uses the same (stable) secret; config is 0600.
    let proxy = env.start_proxy(&[]);
    assert_eq!(
        support::secret_of(&proxy.proxy_url),
        support::secret_of(&proxy_url)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(env.path("config/config.toml"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn listen_addresses_are_checked() {
    let env = Env::new();
    let out = env
        .cmd()
        .args(["connect", "claude-code", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("loopback"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let started = Instant::now();
    let out = env
        .cmd()
        .args(["connect", "claude-code", "--listen", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already in use") && err.contains("--listen"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    let out = env
        .cmd()
        .args([
            "--output",
            "json",
            "connect",
            "claude-code",
            "--listen",
            "nonsense",
        ])
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(String::from_utf8_lossy(&out.stderr).trim()).unwrap();
    assert!(v["error"].as_str().unwrap().contains("nonsense"));
}

#[test]
fn a_bad_policy_file_is_named_with_its_line() {
    let env = Env::new();
    let policy = env.path("team-policy.toml");
    std::fs::write(
        &policy,
        "[egress]\nallow = [\"github.com\"]\ndefault = \"sometimes\"\n",
    )
    .unwrap();
    let out = env
        .connect_cmd()
        .arg("--policy")
        .arg(&policy)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("team-policy.toml") && err.contains("line 3") && err.contains("default"),
        "{err}"
    );
}

#[test]
fn the_child_gets_the_environment_and_its_exit_code_is_returned() {
    require("curl");
    let env = Env::new();
    let fake = FakeAnthropic::start(Script::default()).unwrap();
    let upstream = fake.url();
    // The child reaches the API through the proxy using only what hoopctl set.
    let script = "printf '%s\\n' \"$NO_PROXY\"; curl -sS --fail-with-body --cacert \"$NODE_EXTRA_CA_CERTS\" \
                  -X POST -H 'content-type: application/json' -H 'x-api-key: k' \
                  -d '{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}' \
                  https://api.anthropic.com/v1/messages; exit 7";
    let out = env
        .cmd()
        .args([
            "connect",
            "claude-code",
            "--direct",
            "--upstream",
            &upstream,
            "--",
            "sh",
            "-c",
            script,
        ])
        .env("https_proxy", "http://127.0.0.1:9") // a stale lowercase proxy must not win
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("localhost,127.0.0.1,::1\n"), "{stdout}");
    assert!(stdout.contains("\"type\":\"message\""), "{stdout}");
    assert_eq!(fake.messages_requests().len(), 1);
    assert!(
        env.path("data/logs/hoopctl.log").exists(),
        "connect with a command logs to a file"
    );

    let out = env
        .cmd()
        .args(["connect", "claude-code", "--", "hoopctl-no-such-program"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not start `hoopctl-no-such-program`")
    );
}

#[test]
fn signals_are_forwarded_to_the_child() {
    let env = Env::new();
    let ready = env.path("child-ready");
    let script = format!(
        "trap 'exit 42' TERM; touch {}; while :; do sleep 0.05; done",
        ready.display()
    );
    let mut child = env
        .cmd()
        .args([
            "connect",
            "claude-code",
            "--direct",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "child never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    support::signal(&child, "TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(42));
}

#[test]
fn status_shows_the_ca_and_running_proxies_without_a_login() {
    let env = Env::new();
    let st: Value = serde_json::from_str(&env.run_ok(&["--output", "json", "status"])).unwrap();
    assert_eq!(st["logged_in"], false);
    assert!(st["ca"].is_null());
    assert_eq!(st["proxies"], serde_json::json!([]));
    let mut proxy = env.start_proxy(&[]);
    let st: Value = serde_json::from_str(&env.run_ok(&["--output", "json", "status"])).unwrap();
    assert_eq!(st["proxies"][0]["listen"], proxy.addr.to_string());
    assert_eq!(st["proxies"][0]["pid"], proxy.child.id());
    let shown: Value =
        serde_json::from_str(&env.run_ok(&["--output", "json", "ca", "show"])).unwrap();
    assert_eq!(st["ca"]["sha256_fingerprint"], shown["sha256_fingerprint"]);
    let text = env.run_ok(&["status"]);
    assert!(
        text.contains("Logged in:    no (run `hoopctl login`)"),
        "{text}"
    );
    proxy.stop();
    let st: Value = serde_json::from_str(&env.run_ok(&["--output", "json", "status"])).unwrap();
    assert_eq!(st["proxies"], serde_json::json!([]));
}
