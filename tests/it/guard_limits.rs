//! The guardrails fail closed at every limit of the shell reader and the
//! SQL guard, through the real binary: `hoopctl policy check` blocks
//! (`builtin:unparsable`) what it could not fully read, where it used to
//! allow it. The limits are the guard's constants (`MAX_DEPTH` 16,
//! `MAX_NEST` 8, `MAX_INPUT_BYTES` 1 MiB, `MAX_COMMANDS` 10 000,
//! `MAX_WORDS` 100 000, `MAX_LEAVES` 10 000, `MAX_SQL_BYTES` 256 KiB,
//! `MAX_SQL_STATEMENTS` 1 000, `SQL_RECURSION_LIMIT` 50).

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::Env;

const MAX_DEPTH: usize = 16;
const MAX_NEST: usize = 8;
const MAX_INPUT_BYTES: usize = 1024 * 1024;

/// How long one `policy check` of a pathological input may take, process
/// start included (debug build, shared machine).
const QUICK: Duration = Duration::from_secs(5);

const RM: &str = "rm -rf /";
const PSQL: &str = "psql -c \"DROP TABLE users\"";

/// `hoopctl --output json policy check --tool <tool> --input -`, the input
/// on stdin (too long for a command line). The decision and the time taken.
fn check(env: &Env, tool: &str, input: &Value) -> (Value, Duration) {
    let start = Instant::now();
    let mut child = env
        .cmd()
        .args([
            "--output", "json", "policy", "check", "--tool", tool, "--input", "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let text = input.to_string();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "policy check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (v["decision"].clone(), took)
}

fn bash(env: &Env, command: &str) -> (Value, Duration) {
    check(env, "Bash", &json!({ "command": command }))
}

fn assert_blocked_unparsable(d: &Value, says: &str, what: &str) {
    assert_eq!(d["action"], "block", "{what}: {d}");
    assert_eq!(d["rule"], "builtin:unparsable", "{what}: {d}");
    let reason = d["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(says), "{what}: {reason}");
}

fn nest(name: &str, inner: &str, n: usize) -> String {
    let k = n.saturating_sub(1);
    match name {
        "( )" => format!("{}{inner}{}", "(".repeat(n), ")".repeat(n)),
        "$( )" => format!("echo {}{inner}{}", "$(".repeat(n), ")".repeat(n)),
        "<( )" => format!("cat {}{inner}{}", "<(".repeat(n), ")".repeat(n)),
        "${x:-…}" => format!("echo {}$({inner}){}", "${x:-".repeat(k), "}".repeat(k)),
        "$(( ))" => format!("echo {}$({inner}){}", "$(( 1 + ".repeat(k), " ))".repeat(k)),
        "heredoc" => format!("cat <<EOF\n{}{inner}{}\nEOF", "$(".repeat(k), ")".repeat(k)),
        "<<< \"$( )\"" => format!("cat <<< {}{inner}{}", "\"$(".repeat(n), ")\"".repeat(n)),
        "backticks" => {
            let mut s = inner.to_string();
            for _ in 0..n {
                s = format!("echo `{}`", s.replace('\\', "\\\\").replace('`', "\\`"));
            }
            s
        }
        "eval" => format!("{}{inner}", "eval ".repeat(n)),
        "bash -c" => {
            let mut s = inner.to_string();
            for _ in 0..n {
                let q = s
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('$', "\\$")
                    .replace('`', "\\`");
                s = format!("bash -c \"{q}\"");
            }
            s
        }
        _ => unreachable!("{name}"),
    }
}

const READER: &[&str] = &[
    "( )",
    "$( )",
    "backticks",
    "<( )",
    "${x:-…}",
    "$(( ))",
    "heredoc",
    "<<< \"$( )\"",
];

#[test]
fn nesting_past_the_limit_is_blocked_not_allowed() {
    let env = Env::new();
    for (inner, rule) in [
        (RM, "builtin:rm-recursive-broad"),
        (PSQL, "builtin:sql-drop"),
    ] {
        let constructs = READER
            .iter()
            .map(|c| (*c, MAX_DEPTH))
            .chain([("eval", MAX_NEST), ("bash -c", MAX_NEST)]);
        for (name, limit) in constructs {
            let (d, _) = bash(&env, &nest(name, inner, limit));
            assert_eq!(d["rule"], rule, "{name} x{limit}: {d}");
            let (d, took) = bash(&env, &nest(name, inner, limit + 1));
            eprintln!("{name} x{} around {inner:?}: {d} in {took:?}", limit + 1);
            assert_blocked_unparsable(&d, "too deeply nested", name);
        }
    }
}

#[test]
fn ten_thousand_levels_are_blocked_quickly() {
    let env = Env::new();
    for name in READER
        .iter()
        .filter(|n| **n != "backticks")
        .chain(&["eval"])
    {
        let (d, took) = bash(&env, &nest(name, RM, 10_000));
        eprintln!("{name} x10000: {} in {took:?}", d["action"]);
        assert_blocked_unparsable(&d, "too deeply nested", name);
        assert!(took < QUICK, "{name} x10000 took {took:?}");
    }
}

#[test]
fn a_command_over_one_mebibyte_is_blocked_and_one_at_it_is_judged_quickly() {
    let env = Env::new();
    let at = format!("echo {}", "a".repeat(MAX_INPUT_BYTES - 5));
    let (d, took) = bash(&env, &at);
    eprintln!("1 MiB command: {} in {took:?}", d["action"]);
    assert_eq!(d["action"], "allow");
    assert!(took < QUICK, "1 MiB took {took:?}");
    let (d, took) = bash(&env, &format!("{at} rm -rf /"));
    eprintln!("1 MiB + 9 bytes: {} in {took:?}", d["action"]);
    assert_blocked_unparsable(&d, "bytes long", "over 1 MiB");
}

#[test]
fn too_many_commands_or_words_are_blocked() {
    let env = Env::new();
    let (d, _) = bash(&env, &"true;".repeat(10_000));
    assert_eq!(d["action"], "allow");
    let (d, _) = bash(&env, &format!("{}true", "true;".repeat(10_000)));
    assert_blocked_unparsable(&d, "simple commands", "commands");
    let (d, _) = bash(&env, &format!("echo{}", " a".repeat(100_000)));
    assert_blocked_unparsable(&d, "words", "words");
    let (d, _) = bash(&env, &format!("echo {}", "{a,b}".repeat(40)));
    assert_blocked_unparsable(&d, "brace expansions", "brace bomb");
}

#[test]
fn unterminated_quotes_and_substitutions_are_blocked() {
    let env = Env::new();
    for cmd in [
        "echo 'x",
        "echo \"x",
        "echo $(ls",
        "echo `ls",
        "echo ${x",
        "(ls",
    ] {
        let (d, _) = bash(&env, cmd);
        assert_blocked_unparsable(&d, "unterminated", cmd);
    }
}

#[test]
fn substitutions_bash_runs_are_seen() {
    let env = Env::new();
    for cmd in [
        "echo $(( $(rm -rf /) ))",
        "echo ${x:-$(rm -rf /)}",
        "echo \"${x:-'$(rm -rf /)'}\"",
        "cat <<EOF\n$(rm -rf /)\nEOF",
        "{rm,-rf,/}",
    ] {
        let (d, _) = bash(&env, cmd);
        assert_eq!(d["rule"], "builtin:rm-recursive-broad", "{cmd}: {d}");
    }
}

#[test]
fn sql_past_its_limits_is_blocked() {
    let env = Env::new();
    let psql = |sql: &str| format!("psql -c '{sql}'");
    let deep = format!("UPDATE users SET a = {}1{}", "(".repeat(51), ")".repeat(51));
    let long = format!("UPDATE users SET a = 1 /* {} */", "x".repeat(256 * 1024));
    let many = format!(
        "psql <<'EOF'\n\\set x 1\n{}DELETE FROM t WHERE id = 1;\nEOF",
        "SELECT 1;\n".repeat(1_000)
    );
    for (cmd, says) in [
        (psql(&deep), "too deeply nested"),
        (psql(&long), "bytes long"),
        (many, "statements"),
    ] {
        let (d, took) = bash(&env, &cmd);
        assert_blocked_unparsable(&d, says, says);
        assert!(took < QUICK, "{says} took {took:?}");
    }
    let (d, _) = bash(&env, &psql("UPDATE users SET a = (((1))) WHERE id = 2"));
    assert_eq!(d["action"], "allow");
}

#[test]
fn an_mcp_input_with_too_many_strings_is_blocked() {
    let env = Env::new();
    let items: Vec<String> = (0..10_001).map(|i| format!("item {i}")).collect();
    let (d, _) = check(&env, "mcp__x__y", &json!({ "items": items }));
    assert_blocked_unparsable(&d, "strings", "leaves");
}
