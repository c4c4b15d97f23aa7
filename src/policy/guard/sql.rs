//! Destructive SQL: `DROP TABLE|DATABASE|SCHEMA`, `TRUNCATE`, `DELETE` or
//! `UPDATE` without `WHERE` (block) and `ALTER TABLE … DROP COLUMN`
//! (review), read with sqlparser.
//!
//! Owns: the SQL rules of the catalogue and their limits. Must not: panic.
//! Fails closed: text that looks like `DROP`/`TRUNCATE` (or, from an SQL
//! client, `DELETE`/`UPDATE`) but does not parse is blocked, and so is a
//! statement too long or too deeply nested to parse.

use std::sync::LazyLock;

use regex::Regex;
use sqlparser::ast::{AlterTableOperation, ObjectType, Statement};
use sqlparser::dialect::{Dialect, GenericDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::{Parser, ParserError};

use super::Finding;

/// Longest text parsed as a whole, and longest single statement parsed, in
/// bytes. A longer statement that mentions a judged keyword is blocked.
pub(super) const MAX_SQL_BYTES: usize = 256 * 1024;

/// Most statements of one text that are parsed one by one; past this a
/// text that did not parse as a whole is blocked.
pub(super) const MAX_SQL_STATEMENTS: usize = 1_000;

/// How deep sqlparser may recurse (nested expressions, subqueries) before
/// it gives up; a statement over it that mentions a judged keyword is
/// blocked. This is sqlparser's own default, made explicit: it keeps the
/// parser well inside the stack.
pub(super) const SQL_RECURSION_LIMIT: usize = 50;

/// The rule for SQL the guard could not fully read.
const UNPARSABLE: &str = "builtin:unparsable";

/// Text without any of these words cannot hold a statement we judge.
static KEYWORDS: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)\b(drop|truncate|delete|update|alter)\b").ok());

/// Fail-closed test for text from a place where anything might be SQL
/// (an MCP argument): only an unmistakable `DROP TABLE x` / `TRUNCATE x`.
static STRICT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)^(drop\s+(temporary\s+)?(table|database|schema)\b|truncate\s+(table\s+)?[\w."`\[\]]+\s*(;|$|\s(cascade|restart|continue)))"#,
    )
    .ok()
});

/// Where the text came from: an SQL client's argument or stdin is SQL by
/// intent; a string inside an MCP input only maybe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    Client,
    Embedded,
}

/// Findings for `text` read as one or more SQL statements.
pub(super) fn check(text: &str, origin: Origin) -> Vec<Finding> {
    let mentions = KEYWORDS.as_ref().is_none_or(|re| re.is_match(text));
    if !mentions {
        return Vec::new();
    }
    if text.len() <= MAX_SQL_BYTES {
        if let Parsed::Everywhere(stmts) = parse_whole(text) {
            let mut out: Vec<Finding> = Vec::new();
            for f in stmts.iter().filter_map(judge) {
                if !out.contains(&f) {
                    out.push(f);
                }
            }
            return out;
        }
    }
    // Not valid SQL as a whole: psql meta-commands (`\c db`) or a dialect
    // sqlparser does not know. Try each statement on its own.
    let cleaned: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('\\'))
        .collect::<Vec<_>>()
        .join("\n");
    let stmts = split_statements(&cleaned);
    if stmts.len() > MAX_SQL_STATEMENTS {
        return vec![Finding::block(
            UNPARSABLE,
            format!(
                "the SQL has {} statements, more than the {MAX_SQL_STATEMENTS} the guardrails check one by one; it could not be fully checked, so it is blocked to be safe",
                stmts.len()
            ),
        )];
    }
    let mut out = Vec::new();
    for stmt in stmts {
        let parsed = if stmt.len() <= MAX_SQL_BYTES {
            parse_any(stmt)
        } else {
            Err(Unparsed::TooLong)
        };
        match parsed {
            Ok(stmts) => out.extend(stmts.iter().filter_map(judge)),
            Err(why) => out.extend(fail_closed(stmt, origin, why)),
        }
    }
    out
}

/// Why a statement was not parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unparsed {
    /// No dialect accepts it.
    Syntax,
    /// Over [`MAX_SQL_BYTES`].
    TooLong,
    /// Over [`SQL_RECURSION_LIMIT`] in some dialect.
    TooDeep,
}

/// The dialects SQL text is read in: the client that runs it is not always
/// known, and they disagree (MySQL reads `#` as a comment, PostgreSQL does
/// not), so a text is judged as every one of them reads it.
fn dialects() -> [&'static dyn Dialect; 4] {
    [
        &GenericDialect {},
        &PostgreSqlDialect {},
        &MySqlDialect {},
        &SQLiteDialect {},
    ]
}

fn parse_in(d: &dyn Dialect, text: &str) -> Result<Vec<Statement>, ParserError> {
    Parser::new(d)
        .with_recursion_limit(SQL_RECURSION_LIMIT)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_statements())
}

/// How a whole text parses across [`dialects`].
enum Parsed {
    /// Every dialect reads it, and these are all the statements they found
    /// (one dialect's reading after another).
    Everywhere(Vec<Statement>),
    /// Some dialect does not: the text is read statement by statement,
    /// where a comment or quote that only one dialect knows cannot hide
    /// what another dialect would run.
    NotEverywhere,
}

fn parse_whole(text: &str) -> Parsed {
    let mut all = Vec::new();
    for d in dialects() {
        match parse_in(d, text) {
            Ok(stmts) => all.extend(stmts),
            Err(_) => return Parsed::NotEverywhere,
        }
    }
    // No statement in any dialect (only comments): nothing runs.
    Parsed::Everywhere(all)
}

/// One statement, as any dialect reads it (the first that does).
fn parse_any(text: &str) -> Result<Vec<Statement>, Unparsed> {
    let mut why = Unparsed::Syntax;
    for d in dialects() {
        match parse_in(d, text) {
            Ok(stmts) if !stmts.is_empty() => return Ok(stmts),
            Ok(_) => {}
            Err(ParserError::RecursionLimitExceeded) => why = Unparsed::TooDeep,
            Err(_) => {}
        }
    }
    Err(why)
}

fn judge(stmt: &Statement) -> Option<Finding> {
    match stmt {
        Statement::Drop {
            object_type, names, ..
        } => {
            let kind = match object_type {
                ObjectType::Table => "TABLE",
                ObjectType::Database => "DATABASE",
                ObjectType::Schema => "SCHEMA",
                _ => return None,
            };
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            Some(Finding::block(
                "builtin:sql-drop",
                format!(
                    "`DROP {kind} {}` destroys it and all its data",
                    names.join(", ")
                ),
            ))
        }
        Statement::Truncate(t) => {
            let names: Vec<String> = t.table_names.iter().map(|n| n.name.to_string()).collect();
            Some(Finding::block(
                "builtin:sql-truncate",
                format!("`TRUNCATE {}` removes every row", names.join(", ")),
            ))
        }
        Statement::Delete(d) if d.selection.is_none() => Some(Finding::block(
            "builtin:sql-delete-all",
            format!(
                "`DELETE` without `WHERE` removes every row of {}",
                delete_target(d)
            ),
        )),
        Statement::Update(u) if u.selection.is_none() => Some(Finding::block(
            "builtin:sql-update-all",
            format!(
                "`UPDATE {}` without `WHERE` rewrites every row",
                u.table.relation
            ),
        )),
        Statement::AlterTable(a)
            if a.operations
                .iter()
                .any(|o| matches!(o, AlterTableOperation::DropColumn { .. })) =>
        {
            Some(Finding::review(
                "builtin:sql-drop-column",
                format!(
                    "`ALTER TABLE {} DROP COLUMN` deletes a column's data",
                    a.name
                ),
            ))
        }
        _ => None,
    }
}

fn delete_target(d: &sqlparser::ast::Delete) -> String {
    use sqlparser::ast::FromTable;
    let from = match &d.from {
        FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
    };
    let names: Vec<String> = from.iter().map(|t| t.relation.to_string()).collect();
    if names.is_empty() {
        "the table".to_string()
    } else {
        format!("`{}`", names.join(", "))
    }
}

/// Statements split at `;` outside quotes and comments.
fn split_statements(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quote: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' | '`' => quote = Some(c),
                '-' if chars.peek().map(|p| p.1) == Some('-') => {
                    for (_, n) in chars.by_ref() {
                        if n == '\n' {
                            break;
                        }
                    }
                }
                ';' => {
                    out.push(text.get(start..i).unwrap_or(""));
                    start = i + 1;
                }
                _ => {}
            },
        }
    }
    out.push(text.get(start..).unwrap_or(""));
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// Leading whitespace and `--`, `#` and `/* */` comments removed.
fn strip_comments(mut s: &str) -> &str {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("--").or_else(|| s.strip_prefix('#')) {
            s = rest.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r);
        } else {
            return s;
        }
    }
}

/// Where a statement that did not parse may begin, as some client reads
/// it: after its leading comments, and at the start of each later line (a
/// line comment only one dialect knows, MySQL's `#`, or bytes no dialect
/// parses, can stand before a statement another client runs). Each line is
/// looked at on its own, so the work stays linear in the text.
fn starts(stmt: &str) -> impl Iterator<Item = &str> {
    std::iter::once(strip_comments(stmt)).chain(stmt.split('\n').skip(1).filter_map(|line| {
        let line = line.trim_start();
        let line = match line.strip_prefix("/*") {
            Some(rest) => rest.split_once("*/")?.1.trim_start(),
            None => line,
        };
        (!line.is_empty() && !line.starts_with('#') && !line.starts_with("--")).then_some(line)
    }))
}

fn fail_closed(stmt: &str, origin: Origin, why: Unparsed) -> Option<Finding> {
    if why == Unparsed::Syntax {
        return starts(stmt).find_map(|s| fail_closed_at(stmt, s, origin, why));
    }
    fail_closed_at(stmt, strip_comments(stmt), origin, why)
}

/// [`fail_closed`] for the statement `stmt` read as beginning at `s`.
fn fail_closed_at(stmt: &str, s: &str, origin: Origin, why: Unparsed) -> Option<Finding> {
    let head: String = s
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase();
    let shown: String = s
        .split_whitespace()
        .take(4)
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(80)
        .collect();
    if why != Unparsed::Syntax {
        // A limit, not a syntax error: what it does was not read. From a
        // client any mention of a judged keyword blocks; embedded text
        // only when it starts with one.
        let judged = matches!(
            head.as_str(),
            "drop" | "truncate" | "delete" | "update" | "alter"
        );
        let hit = match origin {
            Origin::Client => judged || KEYWORDS.as_ref().is_none_or(|re| re.is_match(s)),
            Origin::Embedded => judged,
        };
        if !hit {
            return None;
        }
        let limit = match why {
            Unparsed::TooLong => format!(
                "is {} bytes long, more than the {MAX_SQL_BYTES} bytes the guardrails parse",
                stmt.len()
            ),
            _ => format!(
                "nests more than {SQL_RECURSION_LIMIT} levels deep, too deeply nested to parse"
            ),
        };
        return Some(Finding::block(
            UNPARSABLE,
            format!("the SQL statement `{shown}` {limit}; it could not be fully checked, so it is blocked to be safe"),
        ));
    }
    if origin == Origin::Client && matches!(head.as_str(), "delete" | "update") {
        let (rule, what) = if head == "delete" {
            ("builtin:sql-delete-all", "DELETE")
        } else {
            ("builtin:sql-update-all", "UPDATE")
        };
        return Some(Finding::block(
            rule,
            format!("`{shown}` looks like {what} but could not be parsed, so whether it has a `WHERE` is unknown; it is blocked to be safe"),
        ));
    }
    let hit = match origin {
        Origin::Client => head == "drop" || head == "truncate",
        Origin::Embedded => STRICT.as_ref().is_some_and(|re| re.is_match(s)),
    };
    if !hit {
        return None;
    }
    let (rule, what) = if head == "drop" {
        ("builtin:sql-drop", "DROP")
    } else {
        ("builtin:sql-truncate", "TRUNCATE")
    };
    Some(Finding::block(
        rule,
        format!("`{shown}` looks like {what} but could not be parsed, so it is blocked to be safe"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str, origin: Origin) -> Vec<&'static str> {
        check(text, origin).iter().map(|f| f.rule).collect()
    }

    #[test]
    fn statements() {
        let cases: &[(&str, &[&str])] = &[
            ("DROP TABLE users", &["builtin:sql-drop"]),
            ("drop table if exists a, b cascade;", &["builtin:sql-drop"]),
            ("drop database prod", &["builtin:sql-drop"]),
            ("DROP SCHEMA s CASCADE", &["builtin:sql-drop"]),
            ("DROP VIEW v", &[]),
            ("DROP INDEX i", &[]),
            ("TRUNCATE t", &["builtin:sql-truncate"]),
            (
                "TRUNCATE TABLE a, b RESTART IDENTITY",
                &["builtin:sql-truncate"],
            ),
            ("DELETE FROM users", &["builtin:sql-delete-all"]),
            ("delete from users where id = 1", &[]),
            ("UPDATE users SET admin = true", &["builtin:sql-update-all"]),
            ("UPDATE users SET admin = true WHERE id = 2", &[]),
            ("ALTER TABLE t DROP COLUMN c", &["builtin:sql-drop-column"]),
            ("ALTER TABLE t ADD COLUMN c int", &[]),
            ("SELECT * FROM users", &[]),
            ("SELECT 'drop table x'", &[]),
            (
                "BEGIN; DELETE FROM a WHERE x; DROP TABLE b; COMMIT;",
                &["builtin:sql-drop"],
            ),
            ("\\c prod\nDROP TABLE users;\n\\q", &["builtin:sql-drop"]),
            (
                "-- cleanup\nDROP TABLE weird syntax here !!",
                &["builtin:sql-drop"],
            ),
            ("/* x */ truncate ???", &["builtin:sql-truncate"]),
            ("dropped it", &[]),
            ("", &[]),
            // Found by fuzzing: MySQL reads `#` as a comment, PostgreSQL
            // and SQLite do not, and run the DROP.
            ("SELECT 1;\n# x;DROP TABLE users;\n", &["builtin:sql-drop"]),
            ("#;drop table t", &["builtin:sql-drop"]),
            ("SELECT 1; -- note\nSELECT 2", &[]),
            // Found by fuzzing: bytes no dialect parses after MySQL's `#`
            // comment made the piece unparsable, and its DROP was missed;
            // every line start of an unparsable piece is now read.
            (
                "SELECT 0;\n# x;é\nDROP TABLE users;\n",
                &["builtin:sql-drop"],
            ),
            (
                "SELECT 0;\n# x;\u{fffd}\u{fffd}\n  truncate t;\n",
                &["builtin:sql-truncate"],
            ),
            (
                "SELECT 0;\n@@@ é\n/* c */ DROP TABLE users",
                &["builtin:sql-drop"],
            ),
            ("SELECT 0;\n# x;é\nSELECT 1;", &[]),
            // Only comments, in every dialect: nothing runs (found by
            // fuzzing: blocked alone, allowed after `SELECT 1;`) ...
            ("/* x;é\n; DROP TABLE users; */", &[]),
            ("-- DROP TABLE users", &[]),
            // ... but MySQL runs what its executable comments hold.
            ("/*! DROP TABLE users */", &["builtin:sql-drop"]),
            (
                "SELECT 1; /*!50000 DROP TABLE users */",
                &["builtin:sql-drop"],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(rules(text, Origin::Client), *want, "{text}");
        }
    }

    #[test]
    fn embedded_sql_after_a_line_no_dialect_parses_is_read() {
        let text = "SELECT 0;\n# x;é\nDROP TABLE users;\n";
        assert_eq!(rules(text, Origin::Embedded), ["builtin:sql-drop"]);
    }

    #[test]
    fn reading_every_line_start_stays_linear() {
        // 256 KiB of unclosed block comments and stray bytes, one per
        // line: each line is looked at on its own.
        let text = format!("DELETE é {}", "/*\n".repeat(MAX_SQL_BYTES / 3 - 5));
        assert!(text.len() <= MAX_SQL_BYTES);
        let started = std::time::Instant::now();
        let _ = check(&text, Origin::Client);
        let _ = check(&text, Origin::Embedded);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn embedded_text_fails_closed_only_when_unmistakable() {
        assert_eq!(
            rules("Drop the old table and move on", Origin::Embedded),
            Vec::<&str>::new()
        );
        assert_eq!(
            rules("Truncate the log", Origin::Embedded),
            Vec::<&str>::new()
        );
        assert_eq!(
            rules("DROP TABLE users IF !!", Origin::Embedded),
            ["builtin:sql-drop"]
        );
        assert_eq!(
            rules("TRUNCATE t", Origin::Embedded),
            ["builtin:sql-truncate"]
        );
    }
}
