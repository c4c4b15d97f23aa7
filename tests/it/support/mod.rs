//! Test support: the hoopctl process harness and the doubles it talks to.
#![allow(dead_code)]

pub mod client;
pub mod fake_anthropic;
pub mod gateway;
pub mod oidc;
pub mod upstream;

use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub fn hoopctl_bin() -> &'static str {
    env!("CARGO_BIN_EXE_hoopctl")
}

/// A private world for one test: hoopctl's directories and a HOME.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Self { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn home(&self) -> PathBuf {
        self.path("home")
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.path("data/ca/ca.pem")
    }

    /// Applies the isolated environment to any command.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("HOOPCTL_CONFIG_DIR", self.path("config"))
            .env("HOOPCTL_DATA_DIR", self.path("data"))
            .env("HOOPCTL_RUNTIME_DIR", self.path("run"))
            .env("HOME", self.home())
            .env_remove("CLAUDE_CONFIG_DIR")
            .env_remove("RUST_LOG")
            .env_remove("HOOPCTL_PROFILE");
        for v in [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "NO_PROXY",
            "no_proxy",
            "ALL_PROXY",
        ] {
            cmd.env_remove(v);
        }
    }

    /// `hoopctl` with this environment.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(hoopctl_bin());
        self.apply(&mut cmd);
        cmd
    }

    /// Runs hoopctl to completion; panics with its output if it fails.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).stdin(Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "hoopctl {args:?} failed: {:?}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `hoopctl connect claude-code --direct --listen 127.0.0.1:0` (add flags and `-- CMD`).
    pub fn connect_cmd(&self) -> Command {
        let mut cmd = self.cmd();
        cmd.args([
            "connect",
            "claude-code",
            "--direct",
            "--listen",
            "127.0.0.1:0",
        ]);
        cmd
    }

    /// Starts `hoopctl --output json connect claude-code --direct --listen 127.0.0.1:0 ARGS`
    /// in the foreground and waits for its ready line.
    pub fn start_proxy(&self, args: &[&str]) -> Proxy {
        Proxy::spawn(self.proxy_cmd(args))
    }

    /// [`Env::start_proxy`] with the proxy's log in the regular file `log`.
    pub fn start_proxy_logging_to(&self, args: &[&str], log: &Path) -> Proxy {
        let file = std::fs::File::create(log).unwrap();
        Proxy::spawn_with_stderr(self.proxy_cmd(args), file.into())
    }

    fn proxy_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.cmd();
        cmd.args([
            "--output",
            "json",
            "connect",
            "claude-code",
            "--direct",
            "--listen",
            "127.0.0.1:0",
        ]);
        cmd.args(args);
        cmd
    }
}

/// A running foreground proxy.
pub struct Proxy {
    pub child: Child,
    pub ready: Value,
    pub addr: SocketAddr,
    pub secret: String,
    pub proxy_url: String,
    pub ca_cert: PathBuf,
    lines: mpsc::Receiver<String>,
}

fn read_lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Proxy {
    /// curl through this proxy, trusting its CA, without a config file or
    /// proxy variables from the environment; add `--max-time`, the request
    /// and the URL.
    pub fn curl(&self) -> Command {
        require("curl");
        let mut cmd = Command::new("curl");
        cmd.args(["-q", "-sS", "--proxy", &self.proxy_url, "--cacert"])
            .arg(&self.ca_cert)
            .stdin(Stdio::null());
        for v in ["HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"] {
            cmd.env_remove(v);
        }
        cmd
    }

    pub fn spawn(cmd: Command) -> Self {
        Self::spawn_with_stderr(cmd, Stdio::inherit())
    }

    /// [`Proxy::spawn`] with the proxy's stderr (its log) going to `stderr`.
    pub fn spawn_with_stderr(mut cmd: Command, stderr: Stdio) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let lines = read_lines(child.stdout.take().unwrap());
        let line = match lines.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => l,
            Err(e) => {
                let _ = child.kill();
                panic!(
                    "hoopctl printed no ready line: {e}; exit: {:?}",
                    child.wait()
                );
            }
        };
        let ready: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad ready line {line:?}: {e}"));
        assert_eq!(ready["event"], "listening", "{ready}");
        let addr: SocketAddr = ready["listen"].as_str().unwrap().parse().unwrap();
        let proxy_url = ready["proxy_url"].as_str().unwrap().to_string();
        let secret = secret_of(&proxy_url).to_string();
        let ca_cert = PathBuf::from(ready["ca_cert"].as_str().unwrap());
        Self {
            child,
            ready,
            addr,
            secret,
            proxy_url,
            ca_cert,
            lines,
        }
    }

    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(&self.ca_cert).unwrap()
    }

    /// Sends SIGTERM and waits; returns the exit status and the lines printed after the ready line.
    pub fn stop(&mut self) -> (ExitStatus, Vec<String>) {
        signal(&self.child, "TERM");
        let status = self.child.wait().unwrap();
        let rest = self.lines.try_iter().collect();
        (status, rest)
    }

    /// Waits for the process to exit (with a deadline).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The secret in a proxy URL `http://hoopctl:SECRET@ADDR`.
pub fn secret_of(proxy_url: &str) -> &str {
    let userinfo = proxy_url.split('@').next().unwrap();
    userinfo.rsplit(':').next().unwrap()
}

/// Sends a signal by name (`kill -s NAME PID`).
pub fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args(["-s", name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Whether a program is on PATH (for clear failures, never silent skips).
pub fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is needed by this test; .ci/run installs it"
    );
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `POST /v1/messages` (not streamed) through a running proxy with curl,
/// carrying `api_key` as the agent's own key: (status, JSON body, time taken).
pub fn curl_messages(proxy: &Proxy, api_key: &str, prompt: &str) -> (u16, Value, Duration) {
    let body = serde_json::json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": prompt}],
    })
    .to_string();
    let started = std::time::Instant::now();
    let mut child = proxy
        .curl()
        .args(["--max-time", "40"])
        .args([
            "-H",
            "content-type: application/json",
            "-H",
            "anthropic-version: 2023-06-01",
            "-H",
            &format!("x-api-key: {api_key}"),
            // On stdin: a prompt may be larger than one argument can be.
            "--data-binary",
            "@-",
            "-w",
            "\n%{http_code}",
            "https://api.anthropic.com/v1/messages",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(body.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (json, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let code: u16 = code
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("curl: {stdout}{}", String::from_utf8_lossy(&out.stderr)));
    let json = serde_json::from_str(json).unwrap_or(Value::String(json.to_string()));
    (code, json, elapsed)
}

/// `hoopctl connect claude-code --direct --upstream FAKE [--policy P] -- claude -p PROMPT
/// --allowedTools Bash`, offline and quiet, with a dummy key of the agent's own.
pub fn claude_cmd(
    env: &Env,
    fake: &fake_anthropic::FakeAnthropic,
    policy: Option<&Path>,
    work: &Path,
    prompt: &str,
) -> Command {
    require("claude");
    let mut cmd = env.cmd();
    cmd.args([
        "connect",
        "claude-code",
        "--direct",
        "--upstream",
        &fake.url(),
    ]);
    if let Some(p) = policy {
        cmd.arg("--policy").arg(p);
    }
    cmd.args(["--", "claude", "-p", prompt, "--allowedTools", "Bash"])
        .env("ANTHROPIC_API_KEY", "sk-ant-dummy-test-key")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env_remove("ANTHROPIC_BASE_URL")
        .current_dir(work)
        .stdin(Stdio::null());
    cmd
}

/// Writes `body` to `policy.toml` in the test's directory.
pub fn write_policy(env: &Env, body: &str) -> PathBuf {
    let p = env.path("policy.toml");
    std::fs::write(&p, body).unwrap();
    p
}
