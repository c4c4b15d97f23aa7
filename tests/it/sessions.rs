//! The local record: a real Claude Code session recorded, searched,
//! exported and verified; tampering with the sqlite3 CLI detected; nothing
//! lost to kill -9; fail_closed; webhook shipping through a receiver that
//! goes down and comes back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::fake_anthropic::{FakeAnthropic, Script};
use crate::support::{claude_cmd, curl_messages, require, write_policy, Env};

const KEY: &str = "sk-ant-agent-key-for-the-record";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn db(env: &Env) -> PathBuf {
    env.path("data/audit.db")
}

fn json_out(env: &Env, args: &[&str]) -> Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&env.run_ok(&all)).unwrap()
}

fn export(env: &Env, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["sessions", "export", "--format", "jsonl"];
    args.extend_from_slice(extra);
    env.run_ok(&args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `hoopctl sessions verify [ID]` on a database file: (exit code, JSON verdicts).
fn verify_db(env: &Env, id: Option<&str>) -> (i32, Value) {
    let mut cmd = env.cmd();
    cmd.args(["--output", "json", "sessions", "verify"]);
    if let Some(id) = id {
        cmd.arg(id);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code().unwrap_or(-1), v)
}

/// The first user message of every recorded request, in record order.
fn recorded_prompts(env: &Env) -> Vec<String> {
    export(env, &[])
        .iter()
        .filter(|e| e["kind"] == "request")
        .filter_map(|e| {
            e["body"]["messages"][0]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

fn sqlite(db: &Path, sql: &str) -> String {
    require("sqlite3");
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "sqlite3 {sql}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_claude_code_session_is_recorded_searched_exported_and_verified() {
    require("claude");
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    let marker = target.path().join("marker");
    let fake = FakeAnthropic::start(Script::bash(format!("touch {}", marker.display()))).unwrap();
    let prompt = format!(
        "Create the marker file in {}, write to alice@example.com, and never DROP TABLE users",
        target.path().display()
    );
    let mut cmd = claude_cmd(&env, &fake, None, work.path(), &prompt);
    cmd.env("ANTHROPIC_API_KEY", KEY);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(marker.exists());

    // list: the agent's session, with its client and mode.
    let list = json_out(&env, &["sessions", "list"]);
    let sessions = list.as_array().unwrap();
    let agent = sessions
        .iter()
        .find(|s| s["agent_session"].is_string())
        .unwrap_or_else(|| panic!("no agent session recorded: {list}"));
    let id = agent["id"].as_str().unwrap().to_string();
    assert_eq!(agent["mode"], "direct");
    assert!(
        agent["user_agent"]
            .as_str()
            .unwrap_or("")
            .contains("claude-cli"),
        "{agent}"
    );

    // show: the request as it left (masked), the answer with its tool call,
    // and the decision on it.
    let shown = json_out(&env, &["sessions", "show", &id]);
    let events = shown["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"request"), "{kinds:?}");
    let tool_call = events
        .iter()
        .find(|e| e["kind"] == "tool_call")
        .unwrap_or_else(|| panic!("no tool call: {kinds:?}"));
    assert_eq!(tool_call["data"]["tool"], "Bash");
    assert_eq!(tool_call["data"]["decision"], "allowed");
    assert!(tool_call["data"]["summary"]
        .as_str()
        .unwrap()
        .contains("touch"));
    let answer = events
        .iter()
        .find(|e| e["kind"] == "response" && e["data"]["stop_reason"] == "tool_use")
        .unwrap_or_else(|| panic!("no tool_use answer: {kinds:?}"));
    assert_eq!(answer["data"]["tool_calls"][0]["name"], "Bash");
    assert!(answer["body"]["tool_calls"][0]["input"]["command"]
        .as_str()
        .unwrap()
        .contains("touch"));
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    // Only masked content, no key: the export holds the placeholder, never the address.
    let all = export(&env, &[]);
    let dump = serde_json::to_string(&all).unwrap();
    assert!(
        dump.contains("<EMAIL_1>"),
        "the masked prompt is not recorded"
    );
    assert!(
        !dump.contains("alice@example.com"),
        "an unmasked address was recorded"
    );
    assert!(!dump.contains(KEY), "the agent's key was recorded");
    let request = events
        .iter()
        .find(|e| {
            e["kind"] == "request"
                && e["data"]["path"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("/v1/messages")
        })
        .unwrap();
    assert_eq!(request["data"]["headers"]["x-api-key"], "(redacted)");
    assert_eq!(request["data"]["masked"]["email"], 1);

    // search: the prompt and the command.
    let found = json_out(&env, &["sessions", "search", "DROP TABLE"]);
    let hits = found["hits"].as_array().unwrap();
    assert!(
        hits.iter()
            .any(|h| h["session"] == id.as_str() && h["kind"] == "request"),
        "{found}"
    );
    let found = json_out(&env, &["sessions", "search", "touch"]);
    assert!(
        found["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["kind"] == "tool_call"),
        "{found}"
    );
    let text_out = env.run_ok(&["sessions", "search", "DROP TABLE"]);
    assert!(text_out.contains(&id), "{text_out}");

    // export of one session: one JSON object per event, in order.
    let one = export(&env, &["--session", &id]);
    assert_eq!(one.len(), events.len());
    assert!(one.iter().all(|e| e["session"] == id.as_str()));
    assert!(export(&env, &["--since", "2099-01-01"]).is_empty());

    // verify: intact.
    let (code, verdicts) = verify_db(&env, None);
    assert_eq!(code, 0, "{verdicts}");
    assert!(verdicts.as_array().unwrap().iter().all(|v| v["ok"] == true));
    let human = env.run_ok(&["sessions", "show", &id]);
    assert!(
        human.contains("tool_call") && human.contains("Bash"),
        "{human}"
    );
    // What a person sees (shown with --nocapture).
    println!(
        "$ hoopctl sessions list\n{}\n$ hoopctl sessions show {id}\n{human}\n$ hoopctl sessions search 'DROP TABLE'\n{text_out}\n$ hoopctl sessions export --session {id} | head -c 300\n{}\n$ hoopctl sessions verify\n{}",
        env.run_ok(&["sessions", "list"]),
        env.run_ok(&["sessions", "export", "--session", &id]).chars().take(300).collect::<String>(),
        env.run_ok(&["sessions", "verify"])
    );
}

/// Records a session of `n` requests through a foreground proxy; returns its id.
fn record_some(env: &Env, n: usize) -> String {
    let fake = FakeAnthropic::start(Script::default()).unwrap();
    let mut proxy = env.start_proxy(&["--upstream", &fake.url()]);
    for i in 0..n {
        let (status, body, _) = curl_messages(&proxy, KEY, &format!("prompt number {i}"));
        assert_eq!(status, 200, "{body}");
    }
    proxy.stop();
    let list = json_out(env, &["sessions", "list"]);
    list.as_array()
        .unwrap()
        .iter()
        .max_by_key(|s| s["events"].as_i64().unwrap_or(0))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn list_and_search_say_when_their_limit_hides_more() {
    let env = Env::new();
    record_some(&env, 2);
    record_some(&env, 2);
    let sessions = json_out(&env, &["sessions", "list"])
        .as_array()
        .unwrap()
        .len();
    assert!(sessions >= 2, "{sessions} sessions");
    let rows = |out: &str| out.lines().filter(|l| l.contains(" direct ")).count();

    let fewer = (sessions - 1).to_string();
    let out = env.run_ok(&["sessions", "list", "--limit", &fewer]);
    assert_eq!(rows(&out), sessions - 1, "{out}");
    assert!(out.contains("`--limit N` shows more"), "{out}");
    let out = env.run_ok(&["sessions", "list", "--limit", &sessions.to_string()]);
    assert_eq!(rows(&out), sessions, "{out}");
    assert!(!out.contains("--limit"), "nothing more to show: {out}");
    let json = json_out(&env, &["sessions", "list", "--limit", &fewer]);
    assert_eq!(json.as_array().unwrap().len(), sessions - 1);

    let hits = json_out(&env, &["sessions", "search", "prompt", "--limit", "100"])["hits"]
        .as_array()
        .unwrap()
        .len();
    assert!(hits >= 4, "{hits} hits");
    let out = env.run_ok(&["sessions", "search", "prompt", "--limit", "3"]);
    assert!(
        out.contains("The newest 3 matches (`--limit N` shows more)"),
        "{out}"
    );
    let out = env.run_ok(&["sessions", "search", "prompt", "--limit", &hits.to_string()]);
    assert!(out.contains(&format!("{hits} match(es);")), "{out}");

    // An empty query would match nothing and look like an empty record.
    let out = env
        .cmd()
        .args(["sessions", "search", " "])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("at least one word"), "{}", text(&out));

    // 0 would show nothing and look like an empty record.
    let out = env
        .cmd()
        .args(["sessions", "list", "--limit", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("1 or more"), "{}", text(&out));
}

#[test]
fn before_anything_is_recorded_sessions_commands_find_nothing_and_status_says_so() {
    let env = Env::new();
    // Scripts get empty answers and success, not an error.
    assert_eq!(json_out(&env, &["sessions", "list"]), serde_json::json!([]));
    assert_eq!(
        json_out(&env, &["sessions", "search", "DROP TABLE"])["hits"],
        serde_json::json!([])
    );
    assert!(export(&env, &[]).is_empty());
    let (code, verdicts) = verify_db(&env, None);
    assert_eq!((code, verdicts), (0, serde_json::json!([])));
    // A person is told why, and where the record will be.
    let out = env.run_ok(&["sessions", "list"]);
    assert!(
        out.contains("Nothing is recorded yet") && out.contains("audit.db"),
        "{out}"
    );
    // Naming a session still fails: it names nothing.
    for args in [
        &["sessions", "show", "abcd"][..],
        &["sessions", "verify", "abcd"],
        &["sessions", "export", "--session", "abcd"],
    ] {
        let out = env.cmd().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("no recorded sessions yet"),
            "{}",
            text(&out)
        );
    }
    // Reading creates nothing.
    assert!(!db(&env).exists());

    // `status` says where the record is and, once there is one, what it holds.
    let st = json_out(&env, &["status"]);
    assert_eq!(st["record"]["sessions"], Value::Null, "{st}");
    assert!(env
        .run_ok(&["status"])
        .contains("Record:       nothing recorded yet"));
    record_some(&env, 2);
    let list = json_out(&env, &["sessions", "list"]);
    let sessions = list.as_array().unwrap();
    let events: i64 = sessions.iter().map(|s| s["events"].as_i64().unwrap()).sum();
    let st = json_out(&env, &["status"]);
    assert_eq!(st["record"]["sessions"], sessions.len(), "{st}");
    assert_eq!(st["record"]["events"], events, "{st}");
    assert!(st["record"]["last_event_at"].is_string(), "{st}");
    let out = env.run_ok(&["status"]);
    assert!(
        out.contains(&format!("{} session(s), {events} event(s)", sessions.len())),
        "{out}"
    );
}

#[test]
fn a_proxy_that_starts_deletes_sessions_past_retain_days_and_keeps_the_rest() {
    let env = Env::new();
    let ids = || -> Vec<String> {
        json_out(&env, &["sessions", "list"])
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    record_some(&env, 1);
    let old = ids();
    record_some(&env, 1);
    let recent: Vec<String> = ids().into_iter().filter(|id| !old.contains(id)).collect();
    assert!(!old.is_empty() && !recent.is_empty());
    // Make the first run's sessions 10 days old.
    let ten_days_ago = chrono::Utc::now().timestamp_millis() - 10 * 86_400_000;
    for id in &old {
        sqlite(
            &db(&env),
            &format!("UPDATE sessions SET last_at = {ten_days_ago} WHERE id = '{id}'"),
        );
    }
    let fake = FakeAnthropic::start(Script::default()).unwrap();
    let policy = write_policy(&env, "[audit]\nretain_days = 7\n");
    let mut proxy = env.start_proxy(&[
        "--upstream",
        &fake.url(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while ids().iter().any(|id| old.contains(id)) {
        assert!(
            Instant::now() < deadline,
            "retention never ran: {:?}",
            ids()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    proxy.stop();
    let left = ids();
    assert!(recent.iter().all(|id| left.contains(id)), "{left:?}");
    for id in &old {
        let events = sqlite(
            &db(&env),
            &format!("SELECT count(*) FROM events WHERE session_id = '{id}'"),
        );
        assert_eq!(events, "0", "events of {id} are left");
    }
    // What is left still verifies.
    let (code, verdicts) = verify_db(&env, None);
    assert_eq!(code, 0, "{verdicts}");
}

#[test]
fn export_after_id_continues_where_the_last_export_stopped() {
    let env = Env::new();
    record_some(&env, 2);
    let first = export(&env, &[]);
    let last = first.last().unwrap()["id"].as_i64().unwrap();
    assert!(export(&env, &["--after-id", &last.to_string()]).is_empty());
    record_some(&env, 2);
    let next = export(&env, &["--after-id", &last.to_string()]);
    assert!(!next.is_empty());
    assert!(next.iter().all(|e| e["id"].as_i64().unwrap() > last));
    // Together, the two exports are exactly everything, each event once.
    let ids = |v: &[Value]| -> Vec<i64> { v.iter().map(|e| e["id"].as_i64().unwrap()).collect() };
    let mut both = ids(&first);
    both.extend(ids(&next));
    assert_eq!(both, ids(&export(&env, &[])));
}

#[test]
fn edits_deletions_and_reordering_with_sqlite3_are_detected() {
    let pristine = Env::new();
    let id = record_some(&pristine, 4);
    let (code, _) = verify_db(&pristine, Some(&id));
    assert_eq!(code, 0);
    let events: i64 = sqlite(
        &db(&pristine),
        &format!("SELECT count(*) FROM events WHERE session_id = '{id}'"),
    )
    .parse()
    .unwrap();
    assert!(events >= 8, "{events} events");

    let tamper = |sql: &str| -> Value {
        let env = Env::new();
        std::fs::create_dir_all(env.path("data")).unwrap();
        // A consistent copy (the WAL folded in), then the edit.
        sqlite(
            &db(&pristine),
            &format!("VACUUM INTO '{}'", db(&env).display()),
        );
        // 0600 like the original: hoopctl refuses a store others can read.
        std::fs::set_permissions(
            db(&env),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        sqlite(&db(&env), &sql.replace("ID", &id));
        let (code, verdicts) = verify_db(&env, Some(&id));
        assert_eq!(code, 1, "{sql}: not detected: {verdicts}");
        verdicts[0]["first_broken"].clone()
    };
    // Per curl request: egress (CONNECT), request, response.
    assert_eq!(
        sqlite(
            &db(&pristine),
            &format!(
                "SELECT kind FROM events WHERE session_id = '{id}' AND seq IN (2, 3) ORDER BY seq"
            )
        ),
        "request\nresponse"
    );
    // An edited answer.
    let broken = tamper("UPDATE events SET data = json_set(data, '$.status', 500) WHERE session_id = 'ID' AND seq = 3");
    assert_eq!(broken["seq"], 3, "{broken}");
    // An edited (compressed) prompt body.
    let broken =
        tamper("UPDATE events SET body = zeroblob(16) WHERE session_id = 'ID' AND seq = 5");
    assert_eq!(broken["seq"], 5, "{broken}");
    // An edited time.
    let broken = tamper("UPDATE events SET at = at + 1000 WHERE session_id = 'ID' AND seq = 2");
    assert_eq!(broken["seq"], 2, "{broken}");
    // A deleted event in the middle.
    let broken = tamper("DELETE FROM events WHERE session_id = 'ID' AND seq = 4");
    assert!(broken["seq"] == 4 || broken["seq"] == 5, "{broken}");
    // The last event deleted.
    let broken = tamper("DELETE FROM events WHERE session_id = 'ID' AND seq = (SELECT max(seq) FROM events WHERE session_id = 'ID')");
    assert!(!broken.is_null());
    // Two events swapped.
    let broken = tamper(
        "UPDATE events SET seq = -1 WHERE session_id = 'ID' AND seq = 2; \
         UPDATE events SET seq = 2 WHERE session_id = 'ID' AND seq = 3; \
         UPDATE events SET seq = 3 WHERE session_id = 'ID' AND seq = -1;",
    );
    assert_eq!(broken["seq"], 2, "{broken}");
    // The human report names the link.
    let env = Env::new();
    std::fs::create_dir_all(env.path("data")).unwrap();
    sqlite(
        &db(&pristine),
        &format!("VACUUM INTO '{}'", db(&env).display()),
    );
    std::fs::set_permissions(
        db(&env),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    sqlite(
        &db(&env),
        &format!("DELETE FROM events WHERE session_id = '{id}' AND seq = 2"),
    );
    let out = env
        .cmd()
        .args(["sessions", "verify"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("BROKEN"), "{}", text(&out));
}

#[test]
fn kill_9_loses_no_request_that_left_the_machine() {
    let env = Env::new();
    let fake =
        FakeAnthropic::start(Script::default().with_event_delay(Duration::from_millis(5))).unwrap();
    let mut proxy = env.start_proxy(&["--upstream", &fake.url()]);
    let proxy_url = proxy.proxy_url.clone();
    let ca = proxy.ca_cert.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (proxy_url, ca, stop) = (proxy_url.clone(), ca.clone(), stop.clone());
        clients.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let body = serde_json::json!({
                    "model": "m", "max_tokens": 5,
                    "messages": [{"role": "user", "content": format!("client {c} request {i}")}],
                })
                .to_string();
                let _ = Command::new("curl")
                    .args([
                        "-sS",
                        "-o",
                        "/dev/null",
                        "--max-time",
                        "5",
                        "--proxy",
                        &proxy_url,
                    ])
                    .arg("--cacert")
                    .arg(&ca)
                    .args([
                        "-H",
                        "content-type: application/json",
                        "-H",
                        &format!("x-api-key: {KEY}"),
                    ])
                    .args([
                        "--data-binary",
                        &body,
                        "https://api.anthropic.com/v1/messages",
                    ])
                    .stdin(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                i += 1;
            }
        }));
    }
    assert!(fake.wait_until(Duration::from_secs(20), |r| r.len() >= 20));
    // kill -9 in the middle of the traffic.
    crate::support::signal(&proxy.child, "KILL");
    let _ = proxy.wait_exit(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let sent: Vec<String> = fake
        .messages_requests()
        .iter()
        .filter_map(|b| b["messages"][0]["content"].as_str().map(str::to_string))
        .collect();
    assert!(sent.len() >= 20);
    let recorded: std::collections::HashSet<String> = recorded_prompts(&env).into_iter().collect();
    let lost: Vec<&String> = sent.iter().filter(|p| !recorded.contains(*p)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} sent requests were not recorded: {lost:?}",
        lost.len(),
        sent.len()
    );
    let (code, verdicts) = verify_db(&env, None);
    assert_eq!(code, 0, "{verdicts}");
}

/// Sets the soft file-size limit (`ulimit -f`, in bytes) of a running
/// process with util-linux `prlimit`: past it every write to a regular file
/// fails (EFBIG), as on a full disk. `None` lifts it.
fn file_size_limit(pid: u32, bytes: Option<u64>) {
    require("prlimit");
    let value = bytes.map_or("unlimited".to_string(), |b| b.to_string());
    let out = Command::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--fsize={value}:"))
        .output()
        .unwrap();
    assert!(out.status.success(), "prlimit: {}", text(&out));
}

#[test]
fn a_failing_store_stops_traffic_only_when_fail_closed() {
    let fake = FakeAnthropic::start(Script::default()).unwrap();
    for fail_closed in [true, false] {
        let env = Env::new();
        let policy = write_policy(&env, &format!("[audit]\nfail_closed = {fail_closed}\n"));
        // The log goes to a regular file, which the limit below stops too:
        // a log line that cannot be written must not take a request down.
        let log = env.path("proxy.log");
        let mut proxy = env.start_proxy_logging_to(
            &[
                "--upstream",
                &fake.url(),
                "--policy",
                policy.to_str().unwrap(),
            ],
            &log,
        );
        let (status, body, _) = curl_messages(&proxy, KEY, "before");
        assert_eq!(status, 200, "{body}");
        fake.clear();
        // No file of the proxy's can grow: the journal cannot take more of
        // its file. It reserves its file a window at a time (1 MiB), so a
        // small request would still fit in space reserved before the limit;
        // this one is larger than the window.
        file_size_limit(proxy.child.id(), Some(1));
        let large = format!("while writes fail{}", " ...".repeat(300_000));
        let (status, body, _) = curl_messages(&proxy, KEY, &large);
        if fail_closed {
            assert_eq!(status, 503, "{body}");
            let message = body["error"]["message"].as_str().unwrap_or("");
            assert!(message.contains("could not record"), "{message}");
            assert!(message.contains("fail_closed"), "{message}");
            // The kernel's own error, not a simulation of one.
            assert!(message.contains("File too large"), "{message}");
            assert!(
                fake.messages_requests().is_empty(),
                "an unrecorded request was sent"
            );
        } else {
            assert_eq!(status, 200, "{body}");
            assert_eq!(fake.messages_requests().len(), 1);
        }
        file_size_limit(proxy.child.id(), None);
        let (status, body, _) = curl_messages(&proxy, KEY, "after");
        assert_eq!(status, 200, "{body}");
        proxy.stop();
        let (code, verdicts) = verify_db(&env, None);
        assert_eq!(code, 0, "{verdicts}");
        let prompts: Vec<String> = recorded_prompts(&env)
            .into_iter()
            .map(|p| p.trim_end_matches(" ...").to_string())
            .collect();
        // Refused and not recorded; or sent, and recorded once the journal
        // could be written again.
        let expected: &[&str] = if fail_closed {
            &["before", "after"]
        } else {
            &["before", "while writes fail", "after"]
        };
        assert_eq!(prompts, expected, "fail_closed = {fail_closed}");
    }
    // A store that cannot even be opened: fail_closed refuses to start.
    let env = Env::new();
    std::fs::create_dir_all(db(&env)).unwrap();
    let policy = write_policy(&env, "[audit]\nfail_closed = true\n");
    let out = env
        .connect_cmd()
        .args([
            "--upstream",
            &fake.url(),
            "--policy",
            policy.to_str().unwrap(),
            "--",
            "true",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("fail_closed"), "{}", text(&out));
    let out = env
        .connect_cmd()
        .args(["--upstream", &fake.url(), "--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("not recorded"), "{}", text(&out));
}

/// A webhook receiver on a fixed port that can be stopped and started again.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Value>>>,
    posts: Arc<Mutex<u64>>,
    stop: Option<Arc<AtomicBool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut r = Receiver {
            addr,
            got: Arc::default(),
            posts: Arc::default(),
            stop: None,
            thread: None,
        };
        r.serve(listener);
        r
    }

    fn serve(&mut self, listener: TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (got, posts, flag) = (self.got.clone(), self.posts.clone(), stop.clone());
        self.stop = Some(stop);
        self.thread = Some(std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = handle(s, &got, &posts, &flag);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }));
    }

    fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            s.store(true, Ordering::Relaxed);
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    fn restart(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(e) => {
                    assert!(Instant::now() < deadline, "rebind {}: {e}", self.addr);
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        self.serve(listener);
    }

    fn events(&self) -> Vec<Value> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One keep-alive connection: each POST's JSON array is appended, answered 200.
fn handle(
    s: TcpStream,
    got: &Mutex<Vec<Value>>,
    posts: &Mutex<u64>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut reader = BufReader::new(s.try_clone()?);
    let mut s = s;
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            match reader.read_line(&mut line) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            }
            if !line.ends_with('\n') {
                continue;
            }
            let l = line.trim_end().to_ascii_lowercase();
            line.clear();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        let batch: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
        got.lock().unwrap().extend(batch);
        *posts.lock().unwrap() += 1;
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")?;
    }
}

#[test]
fn the_webhook_receives_everything_in_order_after_being_down() {
    let env = Env::new();
    let fake = FakeAnthropic::start(Script::default()).unwrap();
    let mut receiver = Receiver::start();
    let policy = write_policy(
        &env,
        &format!(
            "[audit.webhook]\nurl = \"http://{}/events\"\nbatch = 3\n",
            receiver.addr
        ),
    );
    let mut proxy = env.start_proxy(&[
        "--upstream",
        &fake.url(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    for i in 0..2 {
        let (status, body, _) = curl_messages(&proxy, KEY, &format!("up {i}"));
        assert_eq!(status, 200, "{body}");
    }
    let wait_for = |r: &Receiver, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while r.events().len() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} events arrived",
                r.events().len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(&receiver, 4);

    receiver.stop();
    for i in 0..5 {
        let (status, body, _) = curl_messages(&proxy, KEY, &format!("down {i}"));
        assert_eq!(status, 200, "{body}");
    }
    std::thread::sleep(Duration::from_secs(1));
    receiver.restart();
    let recorded = export(&env, &[]);
    wait_for(&receiver, recorded.len());
    std::thread::sleep(Duration::from_millis(500));
    let got = receiver.events();
    let ids: Vec<i64> = got.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    let want: Vec<i64> = recorded.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, want, "not everything, or not in order, or twice");
    assert!(got
        .iter()
        .any(|e| e["kind"] == "request" && e["body"]["messages"][0]["content"] == "down 4"));
    assert!(
        *receiver.posts.lock().unwrap() >= 4,
        "batches of 3 expected"
    );
    proxy.stop();
}
