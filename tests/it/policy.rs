//! The policy engine with the real Claude Code: destructive commands
//! blocked, `review` rules held for `hoopctl approve`/`deny`, sensitive
//! data masked before it leaves, and rehydrated for the command that runs.

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::fake_anthropic::{classify, tool_results, FakeAnthropic, Reply, Script, Turn};
use crate::support::{claude_cmd, write_policy, Env};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_recursive_delete_is_blocked_and_the_turn_ends_cleanly() {
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let victim = tempfile::tempdir().unwrap();
    std::fs::write(victim.path().join("precious.txt"), "keep me").unwrap();
    let fake =
        FakeAnthropic::start(Script::bash(format!("rm -rf {}", victim.path().display()))).unwrap();
    // rm -rf of an explicit directory is a review in the catalogue; this policy blocks it.
    let policy = write_policy(
        &env,
        "[[guardrails.rules]]\nname = \"no-rm-rf\"\ntool = \"Bash\"\nfield = \"command\"\npattern = 'rm\\s+-rf'\naction = \"block\"\nreason = \"recursive deletes are not allowed here\"\n",
    );
    let out = claude_cmd(&env, &fake, Some(&policy), work.path(), "clean up")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        victim.path().join("precious.txt").exists(),
        "the directory was deleted"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("no-rm-rf") && stdout.contains("blocked"),
        "{stdout}"
    );
    // No tool ran, so no tool_result went back.
    assert!(fake
        .messages_requests()
        .iter()
        .all(|m| tool_results(m).is_empty()));
}

#[test]
fn the_builtin_catalogue_blocks_deleting_the_home_directory() {
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    // HOME is the test's own directory: were the guard to fail, only it would go.
    std::fs::write(env.home().join("notes.txt"), "keep").unwrap();
    let fake = FakeAnthropic::start(Script::bash("cd ~ && rm -rf .")).unwrap();
    let out = claude_cmd(&env, &fake, None, work.path(), "tidy my home")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        env.home().join("notes.txt").exists(),
        "the home directory was deleted"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("builtin:rm-recursive-broad"), "{stdout}");
}

fn pending(env: &Env, deadline: Duration) -> Value {
    let until = Instant::now() + deadline;
    loop {
        let out = env
            .cmd()
            .args(["--output", "json", "pending"])
            .output()
            .unwrap();
        if out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            if v["pending"].as_array().is_some_and(|a| !a.is_empty()) {
                return v["pending"][0].clone();
            }
        }
        assert!(
            Instant::now() < until,
            "nothing became pending: {}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn review_run(approve: bool) -> (Output, bool, Value) {
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("reviewed-marker");
    let fake = FakeAnthropic::start(Script::bash(format!("touch {}", marker.display()))).unwrap();
    let policy = write_policy(
        &env,
        "[guardrails]\nreview_timeout_secs = 60\n\n[[guardrails.rules]]\nname = \"review-touch\"\ntool = \"Bash\"\nfield = \"command\"\npattern = 'touch .*reviewed-marker'\naction = \"review\"\nreason = \"a person checks file creation\"\n",
    );
    let child: Child = claude_cmd(&env, &fake, Some(&policy), work.path(), "make the marker")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let held = pending(&env, Duration::from_secs(60));
    assert_eq!(held["tool"], "Bash");
    assert_eq!(held["rule"], "review-touch");
    assert!(held["summary"]
        .as_str()
        .unwrap()
        .contains("reviewed-marker"));
    assert!(!marker.exists(), "nothing runs while held");
    let id = held["id"].as_str().unwrap();
    if approve {
        env.run_ok(&["approve", id]);
    } else {
        env.run_ok(&["deny", id, "--reason", "not today"]);
    }
    let out = child.wait_with_output().unwrap();
    // A second decision is refused: the first one won.
    let again = env.cmd().args(["approve", id]).output().unwrap();
    assert!(!again.status.success());
    let first = fake
        .messages_requests()
        .into_iter()
        .find(|m| classify(m) == Turn::ToolCall)
        .unwrap_or(Value::Null);
    (out, marker.exists(), first)
}

#[test]
fn a_review_rule_holds_the_command_until_it_is_approved() {
    let (out, ran, _) = review_run(true);
    assert!(out.status.success(), "{}", text(&out));
    assert!(ran, "approved command did not run: {}", text(&out));
}

#[test]
fn a_denied_review_does_not_run_and_claude_is_told_why() {
    let (out, ran, _) = review_run(false);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!ran, "denied command ran");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not today"),
        "{}",
        text(&out)
    );
}

const SECRETS: [&str; 4] = [
    "alice.secret@corp.example",
    "4111 1111 1111 1111",
    "123-45-6789",
    "AKIAIOSFODNN7EXAMPLE",
];

#[test]
fn sensitive_data_never_reaches_the_api() {
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let fake =
        FakeAnthropic::start(Script::default().with_responder(|_| Some(Reply::text("Noted."))))
            .unwrap();
    let prompt = format!(
        "Mail {} about card {} (SSN {}), key {}",
        SECRETS[0], SECRETS[1], SECRETS[2], SECRETS[3]
    );
    let out = claude_cmd(&env, &fake, None, work.path(), &prompt)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let requests = fake.requests();
    assert!(requests.iter().any(|r| r.is_messages()));
    for r in &requests {
        let body = String::from_utf8_lossy(&r.body);
        for s in SECRETS {
            assert!(
                !body.contains(s),
                "{s} reached the API in {} {}",
                r.method,
                r.path
            );
        }
    }
    let all: String = requests
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).to_string())
        .collect();
    for placeholder in [
        "<EMAIL_1>",
        "<CREDIT_CARD_1>",
        "<US_SSN_1>",
        "<AWS_ACCESS_KEY_1>",
    ] {
        assert!(all.contains(placeholder), "{placeholder} missing");
    }
}

#[test]
fn rehydrated_placeholders_give_the_command_its_real_value() {
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let out_file = work.path().join("who.txt");
    let target = out_file.display().to_string();
    // The fake model asks to write whatever placeholder it was given.
    let fake = FakeAnthropic::start(Script::default().with_responder(move |r| {
        let body = r.json()?;
        if !r.is_messages() || crate::support::fake_anthropic::last_user_has_tool_result(&body) {
            return None;
        }
        let text = body.to_string();
        let start = text.find("<EMAIL_")?;
        let end = start + text[start..].find('>')? + 1;
        let placeholder = &text[start..end];
        Some(Reply::tool_use("Bash", serde_json::json!({"command": format!("echo {placeholder} > {target}"), "description": "write"})))
    }))
    .unwrap();
    let policy = write_policy(&env, "[masking]\nrehydrate = true\n");
    let out = claude_cmd(
        &env,
        &fake,
        Some(&policy),
        work.path(),
        "Write down bob.real@corp.example",
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap().trim(),
        "bob.real@corp.example",
        "{}",
        text(&out)
    );
    assert!(fake
        .requests()
        .iter()
        .all(|r| !String::from_utf8_lossy(&r.body).contains("bob.real@corp.example")));
}
