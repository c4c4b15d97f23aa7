//! A real OpenID Provider and a real browser for the `hoopctl login` tests.
//!
//! - [`Provider`] runs `tests/oidc/provider.mjs` (panva/oidc-provider) on `127.0.0.1:0`: a
//!   public native client `hoopctl-cli` (PKCE S256 required, redirect URI
//!   `http://127.0.0.1/callback` on any port), authorization code, refresh token (rotated on
//!   every use) and device code grants, RFC 7009 revocation, RFC 9207 `iss`, RS256 ID tokens.
//!   The account is `alice` / `wonderland` (alice@example.com, "Alice Example").
//! - [`browser_cmd`] is a `--browser-cmd` that drives headless Debian chromium through
//!   `tests/oidc/browser.mjs`: signs in as alice and approves (or denies) the consent screen.
//! - [`complete_device`] does the user side of the device flow with `tests/oidc/device.mjs`.
//!
//! Needs node, `tests/oidc/node_modules` and `/usr/bin/chromium` (or `$CHROMIUM_PATH`):
//! `.ci/run` installs them. Everything stays on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// Shell lines (bash or sh) that start a private, unlocked Secret Service: gnome-keyring on the
/// D-Bus session bus of the enclosing `dbus-run-session`, with its login keyring (the
/// `default` collection) created under `$HOME/.local/share/keyrings` and unlocked.
/// Run them first inside `dbus-run-session -- bash -c "$UNLOCK_KEYRING ..."` with a private
/// `HOME`; every later command of that script (hoopctl, `secret-tool`) then reaches it through
/// `DBUS_SESSION_BUS_ADDRESS`, which dbus-run-session already exports. The daemon dies with
/// the bus. A private `XDG_RUNTIME_DIR` keeps parallel tests from finding each other's daemon.
/// (An empty password does not work: gnome-keyring then creates no login keyring and asks a
/// prompter, which fails without a display.)
pub const UNLOCK_KEYRING: &str = r#"export XDG_RUNTIME_DIR="$HOME/.xdg-runtime"
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
eval "$(printf '%s' hoopctl-test | gnome-keyring-daemon --unlock --components=secrets)"
eval "$(gnome-keyring-daemon --start --components=secrets)"
export GNOME_KEYRING_CONTROL"#;

/// The test account of the provider.
pub const USERNAME: &str = "alice";
pub const PASSWORD: &str = "wonderland";
pub const EMAIL: &str = "alice@example.com";
pub const NAME: &str = "Alice Example";
/// The only client the provider knows: public, native, PKCE S256 required.
pub const CLIENT_ID: &str = "hoopctl-cli";

/// How long the provider may take to print its ready line. It takes well under a second here, even
/// with the whole suite running; a CI run once saw it take over 20 s on a starved 2-core machine,
/// so this is generous: it only bounds how long a provider that really hangs delays the failure.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// `tests/oidc` of this repository.
pub fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("oidc")
}

fn script(name: &str) -> PathBuf {
    oidc_dir().join(name)
}

/// The chromium that browser.mjs and device.mjs launch.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn missing(what: &str) -> ! {
    panic!(
        "{what} is missing: run .ci/run (it installs node, chromium and the npm packages of tests/oidc), \
         or `npm ci --prefix tests/oidc` for the packages alone"
    )
}

fn require_node() {
    match Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => missing(&format!(
            "a working node (`node --version` failed: {out:?})"
        )),
        Err(e) => missing(&format!("node ({e})")),
    }
}

fn require_packages() {
    let modules = oidc_dir().join("node_modules");
    for package in ["oidc-provider", "playwright-core"] {
        if !modules.join(package).join("package.json").is_file() {
            missing(&format!("{}", modules.join(package).display()));
        }
    }
}

fn require_chromium() {
    let path = chromium_path();
    if !path.is_file() {
        missing(&format!("chromium ({})", path.display()));
    }
}

/// Panics with a clear message unless node, the npm packages and chromium are all there.
pub fn require_browser() {
    require_node();
    require_packages();
    require_chromium();
}

/// A running `tests/oidc/provider.mjs`; killed on drop.
pub struct Provider {
    /// `http://127.0.0.1:PORT` (no trailing slash), as in the ID tokens' `iss`.
    pub issuer: String,
    pub client_id: String,
    pub port: u16,
    /// The whole ready line.
    pub ready: Value,
    child: Child,
    // Held open: provider.mjs exits when its stdin closes, so it dies with the test process.
    _stdin: Option<ChildStdin>,
    log: Arc<Mutex<String>>,
}

impl Provider {
    /// Starts the provider; `access_ttl_secs` sets the access token lifetime (default 3600).
    pub fn start(access_ttl_secs: Option<u64>) -> Provider {
        let ttl = access_ttl_secs.map(|t| t.to_string());
        let mut env: Vec<(&str, &str)> = Vec::new();
        if let Some(ttl) = &ttl {
            env.push(("ACCESS_TTL", ttl));
        }
        Self::start_with_env(&env)
    }

    /// Starts the provider with extra environment (`ACCESS_TTL`, `REFRESH_TTL`, `DEVICE_TTL`,
    /// `ID_TOKEN_TTL`, `DEVICE_INTERVAL`, `REDIRECT_URIS`, `ALICE_PASSWORD`, `OIDC_LOG=1`; see
    /// provider.mjs).
    pub fn start_with_env(env: &[(&str, &str)]) -> Provider {
        Self::start_script("provider.mjs", env)
    }

    /// Runs another node server of `tests/oidc` that follows the same contract (listens on
    /// 127.0.0.1, prints one JSON ready line with `issuer` and `client_id`, exits on SIGTERM or
    /// when stdin closes), e.g. `start_script("tamper.mjs", &[("MODE", "wrong_nonce")])`.
    pub fn start_script(script_name: &str, env: &[(&str, &str)]) -> Provider {
        require_node();
        require_packages();
        let mut cmd = Command::new("node");
        cmd.arg(script(script_name))
            .current_dir(oidc_dir())
            .env_remove("PORT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| missing(&format!("node ({e})")));
        let stdin = child.stdin.take();

        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut log) = sink.lock() {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });

        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining so the provider never blocks on a full pipe.
            lines.for_each(drop);
        });
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let status = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                let log = log.lock().map(|l| l.clone()).unwrap_or_default();
                panic!(
                    "tests/oidc/{script_name} printed no ready line within {READY_TIMEOUT:?} \
                     ({other:?}; exit: {status:?}); stderr:\n{log}\n(missing packages? run .ci/run)"
                );
            }
        };
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{script_name}: bad ready line {line:?}: {e}"));
        let issuer = ready["issuer"]
            .as_str()
            .unwrap_or_else(|| panic!("{script_name}: no issuer in {ready}"))
            .to_string();
        let client_id = ready["client_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{script_name}: no client_id in {ready}"))
            .to_string();
        let port = issuer
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
            .unwrap_or_else(|| panic!("{script_name}: no port in the issuer {issuer:?}"));
        Provider {
            issuer,
            client_id,
            port,
            ready,
            child,
            _stdin: stdin,
            log,
        }
    }

    /// `issuer` + `path` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// `/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        self.url("/.well-known/openid-configuration")
    }

    /// What the provider wrote to stderr so far (warnings; requests too with `OIDC_LOG=1`).
    pub fn logs(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Adds a fresh RS256 signing key that signs from now on (the old keys stay in the JWKS
    /// unless `drop_old`); sessions, grants and tokens survive. Returns the kids, signing first.
    pub fn rotate_keys(&self, drop_old: bool) -> Vec<String> {
        let path = if drop_old {
            "/_test/rotate-keys?drop_old=1"
        } else {
            "/_test/rotate-keys"
        };
        let (status, body) = self.http("POST", path, "");
        assert_eq!(status, 200, "rotate-keys: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body:?}: {e}"));
        v["kids"]
            .as_array()
            .unwrap_or_else(|| panic!("rotate-keys: {v}"))
            .iter()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect()
    }

    /// A plain HTTP/1.1 request to the provider (form body if non-empty); returns
    /// (status, body). For checks such as a refresh token being revoked after logout.
    pub fn http(&self, method: &str, path: &str, form: &str) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("connect to the provider: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            self.port,
            form.len()
        );
        s.write_all(req.as_bytes())
            .unwrap_or_else(|e| panic!("write to the provider: {e}"));
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .unwrap_or_else(|e| panic!("read from the provider: {e}"));
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad response from the provider: {raw:?}"));
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        };
        (status, body)
    }

    /// `grant_type=refresh_token` at the token endpoint: (status, JSON body).
    pub fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        let form = format!(
            "grant_type=refresh_token&client_id={}&refresh_token={}",
            self.client_id,
            form_encode(refresh_token)
        );
        let (status, body) = self.http("POST", "/token", &form);
        let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
        (status, v)
    }

    /// RFC 7662 introspection of one of the client's own tokens: `{"active":true,...}` while
    /// valid, `{"active":false}` once revoked or expired (the way to check a logout's revocation).
    pub fn introspect(&self, token: &str) -> Value {
        let form = format!("client_id={}&token={}", self.client_id, form_encode(token));
        let (status, body) = self.http("POST", "/token/introspection", &form);
        assert_eq!(status, 200, "introspection: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("introspection: {body:?}: {e}"))
    }

    /// The status of GET /me (userinfo) with a bearer token: 200, or 401 once it expired or
    /// was revoked.
    pub fn userinfo_status(&self, access_token: &str) -> u16 {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("connect to the provider: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let req = format!(
            "GET /me HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
             Authorization: Bearer {access_token}\r\n\r\n",
            self.port
        );
        s.write_all(req.as_bytes())
            .unwrap_or_else(|e| panic!("write to the provider: {e}"));
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .unwrap_or_else(|e| panic!("read from the provider: {e}"));
        String::from_utf8_lossy(&raw)
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad userinfo response: {raw:?}"))
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.=:,+@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The `--browser-cmd` that approves: `node /abs/tests/oidc/browser.mjs` (hoopctl appends
/// the authorization URL). It signs in as alice, approves, waits for the loopback callback
/// page, prints its text to stderr and exits 0.
pub fn browser_cmd() -> String {
    require_browser();
    format!(
        "node {}",
        shell_quote(&script("browser.mjs").display().to_string())
    )
}

/// A `--browser-cmd` with a `BROWSER_ACTION`: `"deny"` (Deny on the consent screen: hoopctl's
/// callback gets `error=access_denied`), `"deny-login"` (Cancel on the login screen) or
/// `"approve"`. Runs as `env BROWSER_ACTION=... node .../browser.mjs`.
pub fn browser_cmd_action(action: &str) -> String {
    require_browser();
    format!(
        "env BROWSER_ACTION={} node {}",
        shell_quote(action),
        shell_quote(&script("browser.mjs").display().to_string())
    )
}

/// The user side of the device flow: opens `verification_uri` (or `verification_uri_complete`)
/// in headless chromium, enters `user_code` if asked, confirms, signs in as alice and approves
/// (or, with `deny`, denies on the consent screen, so the device gets `access_denied`).
/// Returns when the provider has shown its final page (60 s at most); stderr tells each step.
pub fn complete_device(verification_uri: &str, user_code: &str, deny: bool) -> Output {
    require_browser();
    Command::new("node")
        .arg(script("device.mjs"))
        .arg(verification_uri)
        .arg(user_code)
        .env("BROWSER_ACTION", if deny { "deny" } else { "approve" })
        .current_dir(oidc_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| missing(&format!("node ({e})")))
}

/// [`complete_device`], asserting that device.mjs succeeded.
pub fn complete_device_ok(verification_uri: &str, user_code: &str, deny: bool) -> String {
    let out = complete_device(verification_uri, user_code, deny);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "device.mjs {verification_uri} {user_code} failed: {:?}\n{stderr}",
        out.status
    );
    stderr
}
