//! `hoopctl demo`: the offline tour runs end to end (real proxy, scripted
//! API and agent), answers the approval from flags or stdin, and leaves
//! nothing in hoopctl's own directories.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::Env;

/// The tour must finish well inside this, answered at once.
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `hoopctl ARGS` with `stdin` piped in, killing it past [`LIMIT`].
fn run(env: &Env, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd: Command = env.cmd();
    cmd.args(args)
        .env_remove("NO_COLOR")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
    }
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "hoopctl {args:?} did not finish within {LIMIT:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out_reader.join().unwrap()),
                String::from_utf8_lossy(&err_reader.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

fn ok_text(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "demo failed: {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The part of the text between the line starting with `from` and the next
/// line starting with `to`.
fn section<'a>(text: &'a str, from: &str, to: &str) -> &'a str {
    let start = text
        .find(from)
        .unwrap_or_else(|| panic!("{from:?} not in:\n{text}"));
    let rest = &text[start..];
    let end = rest[from.len()..]
        .find(to)
        .map(|i| i + from.len())
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Nothing of the demo lands in the Env's own directories.
fn untouched(env: &Env) {
    assert!(!env.path("data/ca").exists(), "the demo created data/ca");
    assert!(
        !env.path("data/audit.db").exists(),
        "the demo wrote the real record"
    );
    assert!(
        !env.path("config/config.toml").exists(),
        "the demo wrote a configuration"
    );
    let run_dir = env.path("run");
    if run_dir.exists() {
        assert_eq!(std::fs::read_dir(&run_dir).unwrap().count(), 0);
    }
}

#[test]
fn approved_with_yes() {
    let env = Env::new();
    let started = Instant::now();
    let out = run(&env, &["demo", "--yes"], None);
    let text = ok_text(&out);
    assert!(started.elapsed() < LIMIT);
    // No colors when stdout is not a terminal.
    assert!(!text.contains('\x1b'), "{text}");

    // 1. Masking: the API saw placeholders, never the raw values.
    let received = section(&text, "The API received:", "Masked:");
    for placeholder in ["<EMAIL_1>", "<CREDIT_CARD_1>", "<AWS_ACCESS_KEY_1>"] {
        assert!(received.contains(placeholder), "{received}");
    }
    for raw in [
        "jane.doe@example.com",
        "4111 1111 1111 1111",
        "AKIAIOSFODNN7EXAMPLE",
    ] {
        assert!(!received.contains(raw), "{raw} reached the API: {received}");
    }
    let typed = section(&text, "You typed:", "The API received:");
    assert!(typed.contains("jane.doe@example.com"), "{typed}");
    let masked = section(&text, "Masked:", "2. Guardrails");
    for kind in ["email", "credit_card", "aws_access_key"] {
        assert!(masked.contains(kind), "{masked}");
    }

    // 2. Guardrails: the destructive command was blocked by the catalogue.
    let guard = section(&text, "2. Guardrails", "3. Approval");
    assert!(guard.contains("rm -rf ~/"), "{guard}");
    assert!(guard.contains("BLOCKED"), "{guard}");
    assert!(guard.contains("builtin:rm-recursive-broad"), "{guard}");
    assert!(guard.contains("hoopctl blocked this Bash call"), "{guard}");

    // 3. Approval: held by the demo rule, approved, the turn went on.
    let approval = section(&text, "3. Approval", "4. The record");
    assert!(
        approval.contains("git push --force origin main"),
        "{approval}"
    );
    assert!(
        approval.contains("HELD by rule no-force-push"),
        "{approval}"
    );
    assert!(approval.contains("[y/N] y"), "{approval}");
    assert!(approval.contains("APPROVED"), "{approval}");
    assert!(approval.contains("Pushed the fix to main"), "{approval}");

    // 4. The record was read back and verified.
    let record = section(&text, "4. The record", "Next");
    assert!(record.contains("Hash chain verified"), "{record}");
    assert!(text.contains("hoopctl connect claude-code"), "{text}");

    untouched(&env);
}

#[test]
fn denied_with_no() {
    let env = Env::new();
    let out = run(&env, &["demo", "--no"], None);
    let text = ok_text(&out);
    let approval = section(&text, "3. Approval", "4. The record");
    assert!(approval.contains("[y/N] n"), "{approval}");
    assert!(approval.contains("DENIED"), "{approval}");
    assert!(
        approval.contains("hoopctl: the user denied this Bash call"),
        "{approval}"
    );
    assert!(!approval.contains("APPROVED"), "{approval}");
    assert!(!approval.contains("Pushed the fix"), "{approval}");
    untouched(&env);
}

#[test]
fn answered_on_stdin() {
    let env = Env::new();
    let text = ok_text(&run(&env, &["demo"], Some("y\n")));
    let approval = section(&text, "3. Approval", "4. The record");
    assert!(approval.contains("APPROVED"), "{approval}");

    // End of input without an answer denies.
    let text = ok_text(&run(&env, &["demo"], Some("")));
    let approval = section(&text, "3. Approval", "4. The record");
    assert!(approval.contains("DENIED"), "{approval}");
    untouched(&env);
}

#[test]
fn json_summarizes_every_step() {
    let env = Env::new();
    let out = run(&env, &["--output", "json", "demo", "--yes"], None);
    let text = ok_text(&out);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one JSON object on stdout: {text}");
    let v: Value = serde_json::from_str(lines[0]).unwrap();

    let m = &v["masking"];
    assert_eq!(m["findings"]["email"], 1, "{v}");
    assert_eq!(m["findings"]["credit_card"], 1, "{v}");
    assert_eq!(m["findings"]["aws_access_key"], 1, "{v}");
    assert_eq!(m["leaked"], serde_json::json!([]), "{v}");
    let received = m["api_received"].as_str().unwrap();
    assert!(received.contains("<EMAIL_1>") && !received.contains("jane.doe"));

    let g = &v["guardrail"];
    assert_eq!(g["command"], "rm -rf ~/");
    assert_eq!(g["decision"], "blocked");
    assert_eq!(g["rule"], "builtin:rm-recursive-broad");
    assert_eq!(g["reached_agent"], false);

    let a = &v["approval"];
    assert_eq!(a["command"], "git push --force origin main");
    assert_eq!(a["rule"], "no-force-push");
    assert_eq!(a["outcome"], "approved");
    assert_eq!(a["reached_agent"], true);

    let r = &v["record"];
    assert!(r["events"].as_i64().unwrap() >= 6, "{v}");
    assert_eq!(r["chain_ok"], true);
    assert!(r["kinds"]["tool_call"].as_i64().unwrap() >= 2, "{v}");

    // The question went to stderr, so stdout stays one JSON object.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Approve `git push --force origin main`?"),
        "{stderr}"
    );
    untouched(&env);
}

#[test]
fn help_says_what_it_shows() {
    let env = Env::new();
    let help = env.run_ok(&["demo", "--help"]);
    for needle in [
        "Masking",
        "Guardrails",
        "Approval",
        "record",
        "--yes",
        "--no",
        "offline",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
}
