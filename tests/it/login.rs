//! `hoopctl login`, `status`, `token`, `logout` against a real OpenID
//! provider (npm oidc-provider), a real headless browser (Debian chromium
//! through playwright-core), a real Secret Service (gnome-keyring on a
//! private D-Bus session), and a provider double that serves broken answers.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::gateway::{Gateway, GatewayConfig};
use crate::support::oidc::{self, Provider};
use crate::support::{require, Env};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir` (recursively) that contains `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return hits;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            hits.extend(files_containing(&p, needle));
        } else if std::fs::read(&p)
            .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        {
            hits.push(p.display().to_string());
        }
    }
    hits
}

fn login_args<'a>(p: &'a Provider, browser: &'a str) -> Vec<&'a str> {
    vec![
        "login",
        "--issuer",
        &p.issuer,
        "--client-id",
        &p.client_id,
        "--browser-cmd",
        browser,
        "--timeout",
        "60",
    ]
}

/// Runs `script` (bash) on a private D-Bus session with an unlocked
/// gnome-keyring, with hoopctl's isolated environment; `$HOOPCTL` is the binary.
fn with_keyring(env: &Env, script: &str) -> Output {
    require("dbus-run-session");
    require("gnome-keyring-daemon");
    require("secret-tool");
    let mut cmd = Command::new("dbus-run-session");
    env.apply(&mut cmd);
    cmd.env("HOOPCTL", crate::support::hoopctl_bin())
        .args([
            "--",
            "bash",
            "-c",
            &format!("{}\nset -e\n{script}", oidc::UNLOCK_KEYRING),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn browser_login_keeps_tokens_in_the_keyring_and_nowhere_else() {
    let env = Env::new();
    let p = Provider::start(None);
    let args = login_args(&p, &oidc::browser_cmd())
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let script = format!(
        "\"$HOOPCTL\" {args}\n\
         \"$HOOPCTL\" --output json status > \"$HOME/status.json\"\n\
         secret-tool lookup service hoopctl username default > \"$HOME/secret.json\"\n\
         \"$HOOPCTL\" --output json logout > \"$HOME/logout.json\"\n\
         secret-tool lookup service hoopctl username default > \"$HOME/after.json\" || true\n"
    );
    let out = with_keyring(&env, &script);
    assert!(out.status.success(), "{}", text(&out));
    let status: Value =
        serde_json::from_str(&std::fs::read_to_string(env.home().join("status.json")).unwrap())
            .unwrap();
    assert_eq!(status["logged_in"], true, "{status}");
    assert_eq!(status["subject"], "alice");
    assert_eq!(status["email"], "alice@example.com");
    assert_eq!(status["name"], "Alice Example");
    assert_eq!(status["issuer"], p.issuer.as_str());
    assert_eq!(status["token_store"], "keyring");
    // The secret is in the Secret Service, and no token is in any file of ours.
    let secret: Value =
        serde_json::from_str(&std::fs::read_to_string(env.home().join("secret.json")).unwrap())
            .unwrap();
    let access = secret["access_token"].as_str().unwrap();
    let refresh = secret["refresh_token"]
        .as_str()
        .expect("offline_access gives a refresh token");
    for dir in ["config", "data", "run"] {
        assert!(
            files_containing(&env.path(dir), access).is_empty(),
            "access token in {dir}"
        );
        assert!(
            files_containing(&env.path(dir), refresh).is_empty(),
            "refresh token in {dir}"
        );
    }
    let logout: Value =
        serde_json::from_str(&std::fs::read_to_string(env.home().join("logout.json")).unwrap())
            .unwrap();
    assert_eq!(logout["revoked"], true, "{logout}");
    assert_eq!(
        std::fs::read_to_string(env.home().join("after.json"))
            .unwrap()
            .trim(),
        ""
    );
    // Revoked at the provider: the refresh token no longer works.
    assert_ne!(
        p.refresh(refresh).0,
        200,
        "logout revoked the refresh token"
    );
}

#[test]
fn without_a_keyring_login_fails_with_a_hint_and_stores_nothing() {
    let env = Env::new();
    let p = Provider::start(None);
    let out = env
        .cmd()
        .args(login_args(&p, "false"))
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", env.path("no-bus").display()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = text(&out);
    assert!(
        err.contains("no OS keyring is reachable") && err.contains("--token-store file"),
        "{err}"
    );
    assert!(!env.path("config/tokens-default.json").exists());
}

#[test]
fn file_store_refresh_rotation_across_processes_and_revoking_logout() {
    let env = Env::new();
    // Access tokens live 30 s, so every use is within the 60 s refresh window.
    let p = Provider::start(Some(30));
    let browser = oidc::browser_cmd();
    let mut args = login_args(&p, &browser);
    args.extend(["--token-store", "file"]);
    let login: Value =
        serde_json::from_str(&env.run_ok(&[&["--output", "json"][..], &args].concat())).unwrap();
    assert_eq!(login["subject"], "alice");
    assert_eq!(login["refresh_token"], true);
    use std::os::unix::fs::PermissionsExt;
    let file = env.path("config/tokens-default.json");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let status: Value = serde_json::from_str(&env.run_ok(&["--output", "json", "status"])).unwrap();
    assert_eq!(status["token_store"], "file");
    assert!(status["token_location"]
        .as_str()
        .unwrap()
        .contains("tokens-default.json"));

    // Six processes refresh at once. The provider rotates refresh tokens and
    // revokes the grant when an old one is reused, so without the lock some fail.
    let children: Vec<_> = (0..6)
        .map(|_| {
            env.cmd()
                .args(["--output", "json", "token"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        seen.insert(v["access_token"].as_str().unwrap().to_string());
    }
    assert!(seen.len() >= 2, "tokens were refreshed");
    p.rotate_keys(true);
    // The rotated refresh token was saved: one more refresh works.
    let again: Value = serde_json::from_str(&env.run_ok(&["--output", "json", "token"])).unwrap();
    assert_eq!(again["refreshed"], true);
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let refresh = stored["refresh_token"].as_str().unwrap().to_string();

    let out: Value = serde_json::from_str(&env.run_ok(&["--output", "json", "logout"])).unwrap();
    assert_eq!(out["revoked"], true);
    assert!(!file.exists());
    assert_ne!(
        p.refresh(&refresh).0,
        200,
        "logout revoked the refresh token"
    );
    // Idempotent, and token now says what to do.
    let out: Value = serde_json::from_str(&env.run_ok(&["--output", "json", "logout"])).unwrap();
    assert_eq!(out["was_logged_in"], false);
    let out = env.cmd().arg("token").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("run `hoopctl login`"));
}

#[test]
fn a_signing_key_rotated_during_login_is_followed() {
    require("curl");
    let env = Env::new();
    let p = Provider::start(None);
    // The provider replaces its key after hoopctl read the JWKS and before
    // it signs the ID token: hoopctl must refetch the keys, not fail.
    let browser = format!(
        "curl -sS -X POST '{}' >/dev/null && {}",
        p.url("/_test/rotate-keys?drop_old=1"),
        oidc::browser_cmd()
    );
    let mut args = login_args(&p, &browser);
    args.extend(["--token-store", "file"]);
    let out: Value =
        serde_json::from_str(&env.run_ok(&[&["--output", "json"][..], &args].concat())).unwrap();
    assert_eq!(out["subject"], "alice");
}

#[test]
fn a_failed_refresh_says_to_log_in_again() {
    let env = Env::new();
    let p = Provider::start(Some(30));
    let browser = oidc::browser_cmd();
    let mut args = login_args(&p, &browser);
    args.extend(["--token-store", "file"]);
    env.run_ok(&args);
    // Break the stored refresh token.
    let file = env.path("config/tokens-default.json");
    let mut stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    stored["refresh_token"] = "not-a-valid-token".into();
    std::fs::write(&file, stored.to_string()).unwrap();
    let out = env.cmd().arg("token").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out);
    assert!(
        err.contains("could not refresh the session") && err.contains("run `hoopctl login`"),
        "{err}"
    );
}

#[test]
fn device_flow_logs_in_and_a_denial_is_reported() {
    let env = Env::new();
    let p = Provider::start(None);
    for deny in [false, true] {
        let mut child = env
            .cmd()
            .args([
                "--output",
                "json",
                "login",
                "--device",
                "--issuer",
                &p.issuer,
                "--client-id",
                &p.client_id,
            ])
            .args(["--token-store", "file", "--timeout", "60"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The first stderr line is the machine-readable device code.
        let stderr = child.stderr.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
        let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(first["event"], "device_code");
        let drain =
            std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
        let browser = oidc::complete_device(
            first["verification_uri"].as_str().unwrap(),
            first["user_code"].as_str().unwrap(),
            deny,
        );
        assert!(browser.status.success(), "{}", text(&browser));
        let out = child.wait_with_output().unwrap();
        let err = drain.join().unwrap();
        if deny {
            assert_eq!(out.status.code(), Some(1), "{err}");
            assert!(err.contains("access_denied"), "{err}");
            assert!(!env.path("config/tokens-default.json").exists());
        } else {
            assert!(out.status.success(), "{err}");
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["subject"], "alice");
            env.run_ok(&["logout"]);
        }
    }
}

#[test]
fn an_expired_device_code_is_reported() {
    let env = Env::new();
    let p = Provider::start_with_env(&[("DEVICE_TTL", "3"), ("DEVICE_INTERVAL", "1")]);
    let out = env
        .cmd()
        .args([
            "login",
            "--device",
            "--issuer",
            &p.issuer,
            "--client-id",
            &p.client_id,
            "--token-store",
            "file",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("the device code expired"),
        "{}",
        text(&out)
    );
    assert!(!env.path("config/tokens-default.json").exists());
}

#[test]
fn a_keyring_without_an_unlocked_collection_fails_with_a_hint() {
    let env = Env::new();
    let p = Provider::start(None);
    let mut cmd = Command::new("dbus-run-session");
    env.apply(&mut cmd);
    let script = format!(
        "export XDG_RUNTIME_DIR=\"$HOME/.xdg-runtime\"; mkdir -p -m 700 \"$XDG_RUNTIME_DIR\"\n\
         eval \"$(gnome-keyring-daemon --start --components=secrets 2>/dev/null)\"\n\
         exec '{}' login --issuer '{}' --client-id '{}' --browser-cmd false",
        crate::support::hoopctl_bin(),
        p.issuer,
        p.client_id
    );
    let out = cmd
        .args(["--", "bash", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--token-store file"), "{}", text(&out));
    assert!(!env.path("config/tokens-default.json").exists());
}

#[test]
fn denied_in_the_browser_and_no_browser_mode() {
    let env = Env::new();
    let p = Provider::start(None);
    let browser = oidc::browser_cmd_action("deny");
    let mut args = login_args(&p, &browser);
    args.extend(["--token-store", "file"]);
    let out = env.cmd().args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("access_denied"), "{}", text(&out));
    assert!(!env.path("config/tokens-default.json").exists());

    // --no-browser prints the URL and still listens; a browser started by hand completes it.
    let mut child = env
        .cmd()
        .args([
            "login",
            "--no-browser",
            "--issuer",
            &p.issuer,
            "--client-id",
            &p.client_id,
            "--token-store",
            "file",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.trim().starts_with("http").then(|| l.trim().to_string()))
        .expect("no URL printed");
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).count());
    let b = Command::new("sh")
        .arg("-c")
        .arg(format!("{} \"$1\"", oidc::browser_cmd()))
        .arg("sh")
        .arg(&url)
        .output()
        .unwrap();
    assert!(b.status.success(), "{}", text(&b));
    let out = child.wait_with_output().unwrap();
    drain.join().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Logged in as Alice Example"));
}

/// The provider double (tests/oidc/tamper.mjs) breaks one thing per mode.
#[test]
fn broken_providers_are_rejected_and_nothing_is_stored() {
    require("curl");
    let cases = [
        ("ok", ""),
        ("bad_signature", "failed validation"),
        ("unknown_key", "no key in the provider's JWKS"),
        ("wrong_audience", "Invalid audiences"),
        ("wrong_issuer", "Invalid issuer"),
        ("wrong_nonce", "Invalid nonce"),
        ("expired", "expired"),
        ("future_iat", "issued in the future"),
        ("no_id_token", "sent no ID token"),
        ("access_denied", "access_denied (User denied access)"),
        ("wrong_state", "state does not match"),
        ("missing_code", "no authorization code"),
        ("bad_discovery", "could not read the OpenID configuration"),
        ("discovery_500", "could not read the OpenID configuration"),
        ("token_error", "invalid_grant: code expired"),
    ];
    for (mode, expected) in cases {
        let env = Env::new();
        let double = Provider::start_script("tamper.mjs", &[("MODE", mode)]);
        let out = env
            .cmd()
            .args([
                "login",
                "--issuer",
                &double.issuer,
                "--client-id",
                "hoopctl-cli",
                "--token-store",
                "file",
            ])
            .args([
                "--browser-cmd",
                "curl -sS -L -o /dev/null",
                "--timeout",
                "20",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if mode == "ok" {
            assert!(out.status.success(), "{mode}: {}", text(&out));
            assert!(env.path("config/tokens-default.json").exists());
            continue;
        }
        assert_eq!(out.status.code(), Some(1), "{mode}: {}", text(&out));
        assert!(
            text(&out).contains(expected),
            "{mode}: expected {expected:?} in {}",
            text(&out)
        );
        for dir in ["config", "data", "run"] {
            let tokens: Vec<_> = std::fs::read_dir(env.path(dir))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("tokens-"))
                .collect();
            assert!(tokens.is_empty(), "{mode}: tokens stored in {dir}");
        }
    }
}

#[test]
fn an_unreachable_issuer_is_reported_quickly() {
    let env = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = std::time::Instant::now();
    let out = env
        .cmd()
        .args([
            "login",
            "--issuer",
            &format!("http://127.0.0.1:{port}"),
            "--client-id",
            "x",
            "--token-store",
            "file",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("could not read the OpenID configuration"),
        "{}",
        text(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let out = env
        .cmd()
        .args(["login", "--token-store", "file"])
        .output()
        .unwrap();
    assert!(text(&out).contains("--issuer"), "{}", text(&out));
}

#[test]
fn gateway_names_the_provider() {
    let env = Env::new();
    let p = Provider::start(None);
    let gw = Gateway::start(GatewayConfig {
        issuer: Some(p.issuer.clone()),
        client_id: Some(p.client_id.clone()),
        ..GatewayConfig::default()
    });
    let gw_url = gw.url();
    let gw_ca = gw.write_ca(env.dir.path());
    let browser = oidc::browser_cmd();
    let out: Value = serde_json::from_str(&env.run_ok(&[
        "--output",
        "json",
        "login",
        "--gateway",
        &gw_url,
        "--gateway-ca",
        gw_ca.to_str().unwrap(),
        "--browser-cmd",
        &browser,
        "--token-store",
        "file",
    ]))
    .unwrap();
    assert_eq!(out["gateway"], gw_url.as_str());
    assert_eq!(out["issuer"], p.issuer.as_str());
    let status: Value = serde_json::from_str(&env.run_ok(&["--output", "json", "status"])).unwrap();
    assert_eq!(status["gateway"], gw_url.as_str());
    assert_eq!(status["logged_in"], true);
    // The profile remembers the provider: a second login needs no flags.
    env.run_ok(&["login", "--browser-cmd", &browser]);
}
