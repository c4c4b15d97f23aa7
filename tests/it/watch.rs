//! `hoopctl watch` end to end in a real terminal (tmux): the real Claude
//! Code asks for a command that a `review` rule holds; a person presses `a`
//! (or `d`) in the TUI and the command runs (or does not).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::fake_anthropic::{FakeAnthropic, Script};
use crate::support::{claude_cmd, hoopctl_bin, require, Env};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A private tmux server running `hoopctl watch` in one pane.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn start(env: &Env) -> Tmux {
        Self::run(env, "watch")
    }

    /// `hoopctl ARGS` in a pane; the pane stays a while after it exits,
    /// showing `exited N`.
    fn run(env: &Env, args: &str) -> Tmux {
        require("tmux");
        let socket = env.path("tmux.sock");
        let watch = format!(
            "env HOOPCTL_CONFIG_DIR='{}' HOOPCTL_DATA_DIR='{}' HOOPCTL_RUNTIME_DIR='{}' HOME='{}' TERM=xterm-256color '{}' {args}; echo exited $?; sleep 30",
            env.path("config").display(),
            env.path("data").display(),
            env.path("run").display(),
            env.home().display(),
            hoopctl_bin(),
        );
        let t = Tmux { socket };
        let out = t
            .cmd()
            .args([
                "new-session",
                "-d",
                "-s",
                "w",
                "-x",
                "150",
                "-y",
                "45",
                &watch,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "tmux: {}", text(&out));
        t
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket).stdin(Stdio::null());
        c
    }

    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "w"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let out = self
            .cmd()
            .args(["send-keys", "-t", "w"])
            .args(keys)
            .output()
            .unwrap();
        assert!(out.status.success(), "send-keys: {}", text(&out));
    }

    /// Waits until the pane shows every one of `needles`.
    fn wait_for(&self, needles: &[&str], timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.screen();
            if needles.iter().all(|n| s.contains(n)) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the TUI never showed {needles:?}; the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

/// The held command is decided with `keys` in the TUI; returns Claude
/// Code's output, whether the command ran, and the screen at the decision.
fn decide_in_tui(keys: &[&[&str]]) -> (Output, bool, String) {
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("watched-marker");
    let fake = FakeAnthropic::start(Script::bash(format!("touch {}", marker.display()))).unwrap();
    let policy = env.path("policy.toml");
    std::fs::write(
        &policy,
        "[guardrails]\nreview_timeout_secs = 90\n\n[[guardrails.rules]]\nname = \"review-touch\"\ntool = \"Bash\"\nfield = \"command\"\npattern = 'touch .*watched-marker'\naction = \"review\"\nreason = \"a person checks file creation\"\n",
    )
    .unwrap();
    let tmux = Tmux::start(&env);
    let child = claude_cmd(&env, &fake, Some(&policy), work.path(), "make the marker")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let held = tmux.wait_for(&["watched-marker", "review-touch"], Duration::from_secs(60));
    assert!(!marker.exists(), "nothing runs while held");
    for k in keys {
        tmux.keys(k);
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = child.wait_with_output().unwrap();
    // The feed shows the outcome.
    let after = tmux.wait_for(&["watched-marker"], Duration::from_secs(10));
    println!("--- the TUI while the command was held ---\n{held}\n--- after ---\n{after}");
    (out, marker.exists(), held)
}

#[test]
fn pressing_a_in_watch_lets_the_held_command_run() {
    let (out, ran, _) = decide_in_tui(&[&["a"]]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(ran, "the approved command did not run: {}", text(&out));
}

#[test]
fn pressing_d_in_watch_denies_it_with_the_reason_typed_in_place() {
    let (out, ran, _) = decide_in_tui(&[&["d"], &["-l", "not on a Friday"], &["Enter"]]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!ran, "the denied command ran");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not on a Friday"),
        "{}",
        text(&out)
    );
}

#[test]
fn connect_tui_runs_the_proxy_and_the_tui_together_and_q_stops_both() {
    let env = Env::new();
    let fake = FakeAnthropic::start(Script::default()).unwrap();
    let tmux = Tmux::run(
        &env,
        &format!(
            "connect claude-code --direct --tui --listen 127.0.0.1:0 --upstream {}",
            fake.url()
        ),
    );
    // The TUI attached to its own proxy.
    tmux.wait_for(&["1 proxy", "127.0.0.1:"], Duration::from_secs(30));
    let sockets: Vec<_> = std::fs::read_dir(env.path("run"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sock"))
        .collect();
    assert_eq!(sockets.len(), 1);
    tmux.keys(&["q"]);
    let screen = tmux.wait_for(&["exited 0"], Duration::from_secs(30));
    assert!(screen.contains("stopped with the TUI"), "{screen}");
    // The proxy went with it: its control socket is gone.
    assert!(!sockets[0].path().exists());
}

#[test]
fn watch_follows_proxies_that_stop_and_start_again() {
    let env = Env::new();
    let fake = FakeAnthropic::start(Script::default()).unwrap();
    let tmux = Tmux::start(&env);
    tmux.wait_for(&["no proxy attached"], Duration::from_secs(20));
    let mut first = env.start_proxy(&["--upstream", &fake.url()]);
    let pid = first.child.id().to_string();
    tmux.wait_for(&["1 proxy", &pid], Duration::from_secs(20));
    first.stop();
    tmux.wait_for(&["gone"], Duration::from_secs(20));
    let second = env.start_proxy(&["--upstream", &fake.url()]);
    let pid = second.child.id().to_string();
    let screen = tmux.wait_for(&["1 proxy", &pid], Duration::from_secs(20));
    // A request through the new proxy shows up live.
    let (status, _, _) = crate::support::curl_messages(&second, "sk-ant-watch", "hello");
    assert_eq!(status, 200);
    let screen2 = tmux.wait_for(&["/v1/messages"], Duration::from_secs(20));
    println!("{screen}\n{screen2}");
}
