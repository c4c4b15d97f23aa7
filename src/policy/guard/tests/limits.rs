//! Every limit of the shell reader, the catalogue and the SQL guard fails
//! closed: hitting it blocks the call (`builtin:unparsable`) instead of
//! allowing what was not read. Each test here allowed the call before.

use std::time::{Duration, Instant};

use super::*;
use crate::policy::guard::catalogue::{MAX_LEAVES, MAX_NEST, MAX_SHELL_WORK};
use crate::policy::guard::shell::{MAX_COMMANDS, MAX_DEPTH, MAX_INPUT_BYTES, MAX_WORDS};
use crate::policy::guard::sql::{MAX_SQL_BYTES, MAX_SQL_STATEMENTS, SQL_RECURSION_LIMIT};

const RM: &str = "rm -rf /";
const PSQL: &str = "psql -c \"DROP TABLE users\"";

/// How long a pathological input may take to judge (debug build, shared
/// machine); they take milliseconds.
const QUICK: Duration = Duration::from_secs(2);

/// `inner` put `n` levels deep into one construct the shell reader
/// recurses into.
type Nest = fn(&str, usize) -> String;

fn parens(inner: &str, n: usize) -> String {
    format!("{}{inner}{}", "(".repeat(n), ")".repeat(n))
}

fn dollar(inner: &str, n: usize) -> String {
    format!("echo {}{inner}{}", "$(".repeat(n), ")".repeat(n))
}

fn backticks(inner: &str, n: usize) -> String {
    let mut s = inner.to_string();
    for _ in 0..n {
        s = format!("echo `{}`", s.replace('\\', "\\\\").replace('`', "\\`"));
    }
    s
}

fn process_subst(inner: &str, n: usize) -> String {
    format!("cat {}{inner}{}", "<(".repeat(n), ")".repeat(n))
}

fn param(inner: &str, n: usize) -> String {
    let k = n.saturating_sub(1);
    format!("echo {}$({inner}){}", "${x:-".repeat(k), "}".repeat(k))
}

fn arith(inner: &str, n: usize) -> String {
    let k = n.saturating_sub(1);
    format!("echo {}$({inner}){}", "$(( 1 + ".repeat(k), " ))".repeat(k))
}

fn heredoc(inner: &str, n: usize) -> String {
    let k = n.saturating_sub(1);
    format!("cat <<EOF\n{}{inner}{}\nEOF", "$(".repeat(k), ")".repeat(k))
}

fn here_string(inner: &str, n: usize) -> String {
    format!("cat <<< {}{inner}{}", "\"$(".repeat(n), ")\"".repeat(n))
}

/// Constructs the shell reader recurses into, each capped at [`MAX_DEPTH`].
const READER: &[(&str, Nest)] = &[
    ("( )", parens),
    ("$( )", dollar),
    ("backticks", backticks),
    ("<( )", process_subst),
    ("${x:-…}", param),
    ("$(( ))", arith),
    ("heredoc", heredoc),
    ("<<< \"$( )\"", here_string),
];

fn bash_c(inner: &str, n: usize) -> String {
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

fn eval(inner: &str, n: usize) -> String {
    format!("{}{inner}", "eval ".repeat(n))
}

/// Constructs the catalogue re-reads, each capped at [`MAX_NEST`].
const REREAD: &[(&str, Nest)] = &[("bash -c", bash_c), ("eval", eval)];

fn assert_unparsable(d: &Decision, says: &str, what: &str) {
    assert_eq!(short(d), "block:builtin:unparsable", "{what}");
    let reason = d.reason().unwrap_or_default();
    assert!(reason.contains(says), "{what}: {reason}");
    assert!(reason.contains("blocked to be safe"), "{what}: {reason}");
}

#[test]
fn nesting_past_the_reader_depth_blocks() {
    let g = guard();
    for (inner, rule) in [
        (RM, "block:builtin:rm-recursive-broad"),
        (PSQL, "block:builtin:sql-drop"),
    ] {
        for (name, nest) in READER {
            let at = nest(inner, MAX_DEPTH);
            assert_eq!(short(&bash(&g, &at)), rule, "{name} x{MAX_DEPTH}: {at}");
            let past = nest(inner, MAX_DEPTH + 1);
            assert_unparsable(
                &bash(&g, &past),
                "too deeply nested",
                &format!("{name} x{}", MAX_DEPTH + 1),
            );
        }
        for (name, nest) in REREAD {
            let at = nest(inner, MAX_NEST);
            assert_eq!(short(&bash(&g, &at)), rule, "{name} x{MAX_NEST}: {at}");
            let past = nest(inner, MAX_NEST + 1);
            assert_unparsable(
                &bash(&g, &past),
                "too deeply nested",
                &format!("{name} x{}", MAX_NEST + 1),
            );
        }
    }
    // `{ …; }` is not nesting to the reader: any depth is read.
    let braces = format!("{}{RM}{}", "{ ".repeat(100), "; }".repeat(100));
    assert_eq!(
        short(&bash(&g, &braces)),
        "block:builtin:rm-recursive-broad"
    );
}

#[test]
fn ten_thousand_levels_return_quickly_and_block() {
    let g = guard();
    let constructs = READER
        .iter()
        .filter(|(name, _)| *name != "backticks")
        .chain(REREAD.iter().filter(|(name, _)| *name == "eval"));
    for (name, nest) in constructs {
        let deep = nest(RM, 10_000);
        let t = Instant::now();
        let d = bash(&g, &deep);
        let took = t.elapsed();
        assert_unparsable(&d, "too deeply nested", name);
        assert!(took < QUICK, "{name} x10000 took {took:?}");
    }
    // Unclosed openings, 10 000 of each.
    for open in ["(", "$(", "${", "$((", "<(", "\"$(", "`"] {
        let deep = open.repeat(10_001);
        let t = Instant::now();
        let d = bash(&g, &deep);
        let took = t.elapsed();
        assert!(!d.is_allow(), "{open} x10000");
        assert!(took < QUICK, "{open} x10000 took {took:?}");
    }
}

#[test]
fn substitutions_inside_expansions_and_heredocs_are_read() {
    let g = guard();
    for cmd in [
        "echo $(( $(rm -rf /) + 1 ))",
        "echo $((rm -rf /) )",
        "echo $((ls); (rm -rf /))",
        "echo ${x:-$(rm -rf /)}",
        "echo \"${x:-`rm -rf /`}\"",
        "echo ${x:-\"$(rm -rf /)\"}",
        "echo \"${x:-'$(rm -rf /)'}\"",
        "cat <<EOF\n$(rm -rf /)\nEOF",
        "cat <<EOF\n`rm -rf /`\nEOF",
        "cat <<-EOF\n\t${x:-$(rm -rf /)}\n\tEOF",
        // A bare `{` does not nest in `${ }` (found by fuzzing): the
        // expansion ends at its first `}`, and the rm runs.
        "{ echo ${x:-{}; rm -rf /\n}",
        "( echo ${x:-{}; rm -rf /\n)",
        "echo ${x:-{a}b}; rm -rf /",
        // `$$` is one token, so `{` after it starts nothing (found by
        // fuzzing): bash runs `rm -rf / }`.
        "echo $${ ; rm -rf / }",
        "echo \"$${\" ; rm -rf /",
    ] {
        assert_eq!(
            short(&bash(&g, cmd)),
            "block:builtin:rm-recursive-broad",
            "{cmd}"
        );
    }
    // Bodies of quoted delimiters are data, and arithmetic is not a command.
    for cmd in [
        "cat <<'EOF'\n$(rm -rf /)\nEOF",
        "cat <<\"EOF\"\n`rm -rf /`\nEOF",
        "cat <<\\EOF\n$(rm -rf /)\nEOF",
        "echo $(( (1 + 2) * 3 ))",
        "echo ${x:-'$(rm -rf /)'}",
    ] {
        assert_eq!(short(&bash(&g, cmd)), "allow", "{cmd}");
    }
}

/// Found by the differential test: bash expands braces before it runs
/// anything, so `{rm,-rf,/}` is `rm -rf /`.
#[test]
fn brace_expansion_is_read() {
    let g = guard();
    for cmd in [
        "{rm,-rf,/}",
        "{r..r}m -rf /",
        "sudo {rm,-rf} /",
        "x=1 {rm,-rf} /",
        "psql -c {'DROP TABLE users',x}",
        "echo $({rm,-rf,~})",
    ] {
        assert_ne!(short(&bash(&g, cmd)), "allow", "{cmd}");
    }
    for cmd in [
        "'{rm,-rf,/}'",
        "\\{rm,-rf,/}",
        "echo {rm,-rf,/}",
        "echo {a..c}",
    ] {
        assert_eq!(short(&bash(&g, cmd)), "allow", "{cmd}");
    }
    // `{a,b}` forty times is 2^40 words: over the budget, blocked.
    let bomb = format!("echo {}", "{a,b}".repeat(40));
    let t = Instant::now();
    assert_unparsable(&bash(&g, &bomb), "brace expansions", "brace bomb");
    assert!(t.elapsed() < QUICK, "brace bomb took {:?}", t.elapsed());
}

#[test]
fn unterminated_quotes_and_substitutions_block() {
    let g = guard();
    for (cmd, says) in [
        ("echo 'rm -rf /", "unterminated `'` quote"),
        ("echo \"$HOME", "unterminated `\"` quote"),
        ("echo $'abc", "unterminated `$'` quote"),
        ("echo $(ls", "unterminated `(` or `$(`"),
        ("(ls; pwd", "unterminated `(` or `$(`"),
        ("cat <(ls", "unterminated `(` or `$(`"),
        ("echo `ls", "unterminated backtick"),
        ("echo ${HOME", "unterminated `${`"),
        ("echo $(( 1 + 2 ", "unterminated"),
    ] {
        assert_unparsable(&bash(&g, cmd), says, cmd);
    }
    // A heredoc without its delimiter runs to the end in bash too.
    assert_eq!(short(&bash(&g, "cat <<EOF\nhello")), "allow");
}

#[test]
fn input_longer_than_the_limit_blocks() {
    let g = guard();
    let at = format!("echo {}", "a".repeat(MAX_INPUT_BYTES - 5));
    assert_eq!(at.len(), MAX_INPUT_BYTES);
    assert_eq!(short(&bash(&g, &at)), "allow");
    let past = format!("{at}b");
    assert_unparsable(&bash(&g, &past), "bytes long", "long input");
}

#[test]
fn a_one_mebibyte_command_is_judged_quickly() {
    let g = guard();
    let fill = |unit: &str| unit.repeat(MAX_INPUT_BYTES / unit.len() - 8);
    let shapes = [
        ("one long word", format!("echo {}", fill("a"))),
        (
            "quoted heredoc",
            format!("cat > f <<'EOF'\n{}\nEOF", fill("data $(x) `y`\n")),
        ),
        (
            "unquoted heredoc",
            format!("cat > f <<EOF\n{}\nEOF", fill("line ${x} $((1+2))\n")),
        ),
        ("double-quoted", format!("echo \"{}\"", fill("a b \\\" c "))),
        ("comment", format!("ls # {}", fill("x"))),
        (
            "SQL on stdin",
            format!(
                "psql <<'EOF'\n{}\nEOF",
                fill("UPDATE t SET a = 1 WHERE id = 2;\n")
            ),
        ),
    ];
    for (name, cmd) in shapes {
        assert!(cmd.len() <= MAX_INPUT_BYTES, "{name}: {}", cmd.len());
        let t = Instant::now();
        let d = bash(&g, &cmd);
        let took = t.elapsed();
        eprintln!("1 MiB {name}: {} in {took:?}", short(&d));
        assert!(took < QUICK, "{name} took {took:?}");
    }
}

#[test]
fn more_commands_than_the_limit_blocks() {
    let g = guard();
    let at = "true;".repeat(MAX_COMMANDS);
    assert_eq!(short(&bash(&g, &at)), "allow");
    let past = format!("{at}true");
    assert_unparsable(&bash(&g, &past), "simple commands", "commands");
    // Nested commands count too.
    let nested = format!("echo $({}true)", "true;".repeat(MAX_COMMANDS));
    assert_unparsable(&bash(&g, &nested), "simple commands", "nested commands");
}

#[test]
fn more_words_than_the_limit_blocks() {
    let g = guard();
    let at = format!("echo{}", " a".repeat(MAX_WORDS - 1));
    assert_eq!(short(&bash(&g, &at)), "allow");
    let past = format!("{at} a");
    assert_unparsable(&bash(&g, &past), "words", "words");
}

#[test]
fn rereading_more_than_the_work_limit_blocks() {
    let g = guard();
    // Each `eval` reads what follows again: k evals read the tail k times.
    let tail = format!("echo {}", "a".repeat(MAX_SHELL_WORK / 8));
    let at = format!("eval eval {tail}");
    assert_eq!(short(&bash(&g, &at)), "allow");
    let past = format!("{}{tail}", "eval ".repeat(MAX_NEST));
    assert!(past.len() <= MAX_INPUT_BYTES);
    assert_unparsable(&bash(&g, &past), "more than", "re-read work");
    // Read once per level it is nested in, a substitution multiplies.
    let mut s = "ls".to_string();
    for _ in 0..MAX_DEPTH - 1 {
        s = format!("eval \"$({s})\" \"$({s})\"");
    }
    let t = Instant::now();
    let d = bash(&g, &s);
    assert!(t.elapsed() < QUICK, "doubling evals took {:?}", t.elapsed());
    assert!(!d.is_allow(), "doubling evals");
}

#[test]
fn deeper_find_exec_than_the_limit_blocks() {
    let g = guard();
    let at = format!("{}rm -rf /", "find . -exec ".repeat(MAX_NEST));
    assert_eq!(short(&bash(&g, &at)), "block:builtin:rm-recursive-broad");
    let past = format!("{}ls", "find . -exec ".repeat(MAX_NEST + 1));
    assert_unparsable(&bash(&g, &past), "too deeply nested", "find -exec");
}

#[test]
fn more_mcp_strings_than_the_limit_blocks() {
    let g = guard();
    let at: Vec<String> = (0..MAX_LEAVES).map(|i| format!("item {i}")).collect();
    assert_eq!(
        short(&g.decide("mcp__x__y", &json!({ "items": at }))),
        "allow"
    );
    let past: Vec<String> = (0..=MAX_LEAVES).map(|i| format!("item {i}")).collect();
    assert_unparsable(
        &g.decide("mcp__x__y", &json!({ "items": past })),
        "strings",
        "leaves",
    );
}

fn psql_c(sql: &str) -> String {
    format!("psql -c '{}'", sql.replace('\'', "'\\''"))
}

#[test]
fn sql_longer_than_the_limit_blocks() {
    let g = guard();
    let pad = "x".repeat(MAX_SQL_BYTES);
    let update = psql_c(&format!("UPDATE users SET a = 1 /* {pad} */"));
    assert_unparsable(&bash(&g, &update), "bytes long", "long UPDATE");
    let select = psql_c(&format!("SELECT 1 /* {} */", "x".repeat(1000)));
    assert_eq!(short(&bash(&g, &select)), "allow");
    // Under the limit, the same UPDATE is parsed and judged.
    let short_update = psql_c("UPDATE users SET a = 1 /* x */");
    assert_eq!(
        short(&bash(&g, &short_update)),
        "block:builtin:sql-update-all"
    );
}

#[test]
fn sql_nested_past_the_recursion_limit_blocks() {
    let g = guard();
    let nest = |n: usize| format!("{}1{}", "(".repeat(n), ")".repeat(n));
    let within = psql_c(&format!(
        "UPDATE users SET a = {} WHERE id = 2",
        nest(SQL_RECURSION_LIMIT / 4)
    ));
    assert_eq!(short(&bash(&g, &within)), "allow");
    for n in [SQL_RECURSION_LIMIT + 1, 10_000] {
        let deep = psql_c(&format!("UPDATE users SET a = {} WHERE id = 2", nest(n)));
        let t = Instant::now();
        let d = bash(&g, &deep);
        assert!(t.elapsed() < QUICK, "{n} levels took {:?}", t.elapsed());
        assert_unparsable(&d, "too deeply nested", "deep UPDATE");
    }
    // Embedded in an MCP input, a deep statement blocks when it starts with
    // a judged keyword.
    let deep = format!("DELETE FROM t WHERE a = {}", nest(SQL_RECURSION_LIMIT + 1));
    assert_unparsable(
        &g.decide("mcp__db__query", &json!({ "sql": deep })),
        "too deeply nested",
        "embedded",
    );
}

#[test]
fn more_sql_statements_than_the_limit_blocks() {
    let g = guard();
    // The `\set` line keeps the text from parsing as a whole, so each
    // statement is parsed on its own.
    let script = |n: usize| {
        format!(
            "psql <<'EOF'\n\\set x 1\n{}DELETE FROM t WHERE id = 1;\nEOF",
            "SELECT 1;\n".repeat(n - 1)
        )
    };
    assert_eq!(short(&bash(&g, &script(MAX_SQL_STATEMENTS))), "allow");
    assert_unparsable(
        &bash(&g, &script(MAX_SQL_STATEMENTS + 1)),
        "statements",
        "statements",
    );
}

#[test]
fn unparsable_delete_or_update_from_a_client_blocks() {
    let g = guard();
    for (sql, rule) in [
        ("DELETE FROM users ???", "block:builtin:sql-delete-all"),
        ("UPDATE users SET ???", "block:builtin:sql-update-all"),
    ] {
        assert_eq!(short(&bash(&g, &psql_c(sql))), rule, "{sql}");
    }
}
