//! `hoopctl sessions list|show|search|export|verify`: the local record.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::Value;

use super::output::{emit, Format};
use super::Context;
use crate::audit::store::{self, Reader, SessionSummary, StoredEvent};

/// `hoopctl sessions --help`.
pub const SESSIONS_HELP: &str = r#"The local record of what agents did: list, show, search, export, verify.

Every proxy records into one SQLite store in the data directory
(`audit.db`): requests as they left the machine (masked), answers (text
and tool calls), tool-call decisions and approvals, egress, and errors,
each event hash-chained to the previous one of its session. Only masked
content is stored; secret headers are never recorded.

    hoopctl sessions list --since 24h
    hoopctl sessions show 3f9a                 # an id prefix, or Claude Code's session id
    hoopctl sessions search 'DROP TABLE'
    hoopctl sessions export --since 7d > events.jsonl
    hoopctl sessions export --after-id 1234    # what came after the last line you have
    hoopctl sessions verify                    # exit 1 when a record was altered

Every command takes --output json. The policy's [audit] table sets
`fail_closed` (stop traffic when the record cannot be written),
`retain_days` (default 90; whole sessions older than that are deleted
when a proxy starts and every 6 hours while it runs) and
`[audit.webhook] url` (live shipping to a SIEM)."#;

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Recorded sessions, newest first.
    List {
        /// Only sessions active since T (RFC 3339, a date, or an age like 30m, 24h, 7d).
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// At most N sessions, the most recently active first.
        #[arg(long, value_name = "N", default_value_t = 50, value_parser = at_least_one)]
        limit: usize,
    },
    /// Every event of one session, in order: requests, answers, tool calls and decisions.
    ///
    /// ID is a session id (or a unique prefix of at least 4 characters) or
    /// Claude Code's session id.
    Show {
        id: String,
        /// Also print the recorded bodies (masked requests, assembled answers).
        #[arg(long)]
        bodies: bool,
    },
    /// Full-text search over prompts, answers and commands, e.g. `'DROP TABLE'`.
    ///
    /// Every word must match (in any order); `--raw` takes SQLite FTS5
    /// syntax instead (`"rm -rf" OR chmod`, `drop*`).
    Search {
        query: String,
        #[arg(long)]
        raw: bool,
        /// At most N matches, the newest first.
        #[arg(long, value_name = "N", default_value_t = 50, value_parser = at_least_one)]
        limit: usize,
    },
    /// Stream events as JSON lines (one object per event), for a SIEM.
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Only events since T (RFC 3339, a date, or an age like 30m, 24h, 7d).
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// Only this session.
        #[arg(long, value_name = "ID")]
        session: Option<String>,
        /// Only events with an id above N: give the `id` of the last line a
        /// previous export wrote, and nothing is repeated or missed (ids
        /// only grow, and are never used again).
        #[arg(long, value_name = "N")]
        after_id: Option<i64>,
    },
    /// Check the hash chains: report the first broken link of each session.
    ///
    /// Exits 0 when every chain is intact, 1 when one is not.
    Verify {
        /// One session (default: all).
        id: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
}

/// `--since`: RFC 3339, `YYYY-MM-DD` (UTC midnight) or an age (`90s`, `30m`, `24h`, `7d`).
pub fn parse_since(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    if unit.starts_with(['-', ':', 'T', 't']) {
        bail!("--since {s:?} is not a valid date or time: use YYYY-MM-DD or RFC 3339 (2026-11-22T10:00:00Z)");
    }
    let Ok(n) = num.parse::<i64>() else {
        bail!("--since {s:?}: use RFC 3339, YYYY-MM-DD, or an age like 30m, 24h, 7d");
    };
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => bail!("--since {s:?}: the unit must be s, m, h, d or w"),
    };
    // Ages past the beginning of the epoch mean "everything".
    let ago_ms = n.saturating_mul(unit_secs).saturating_mul(1000);
    Ok(chrono::Utc::now()
        .timestamp_millis()
        .saturating_sub(ago_ms)
        .max(0))
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn clock(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.trim();
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat.to_string()
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// One line saying what an event was.
pub fn describe(ev: &StoredEvent) -> String {
    let d = &ev.data;
    let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
    match ev.kind.as_str() {
        "request" => {
            let mut out = format!("{} {}{}", s("method"), s("host"), s("path"));
            if let Some(m) = d["model"].as_str() {
                out.push_str(&format!(" model={m}"));
            }
            if let Some(n) = d["body_bytes"].as_u64() {
                out.push_str(&format!(" {}", bytes(n)));
            }
            if let Some(masked) = d["masked"].as_object().filter(|m| !m.is_empty()) {
                let list: Vec<String> = masked
                    .iter()
                    .map(|(k, v)| format!("{k}×{}", v.as_u64().unwrap_or(0)))
                    .collect();
                out.push_str(&format!(" masked[{}]", list.join(",")));
            }
            out
        }
        "response" => {
            let mut out = format!("{} in {} ms", d["status"], d["latency_ms"]);
            if let Some(m) = d["model"].as_str() {
                out.push_str(&format!(" {m}"));
            }
            if let Some(r) = d["stop_reason"].as_str() {
                out.push_str(&format!(" stop={r}"));
            }
            if let (Some(i), Some(o)) = (
                d["usage"]["input_tokens"].as_u64(),
                d["usage"]["output_tokens"].as_u64(),
            ) {
                out.push_str(&format!(" tokens={i}/{o}"));
            }
            if let Some(calls) = d["tool_calls"].as_array().filter(|c| !c.is_empty()) {
                let names: Vec<&str> = calls.iter().filter_map(|c| c["name"].as_str()).collect();
                out.push_str(&format!(" tools=[{}]", names.join(",")));
            }
            if let Some(e) = d["ended"].as_str().filter(|e| *e != "complete") {
                out.push_str(&format!(" ({e})"));
            }
            out
        }
        "tool_call" => {
            let mut out = format!(
                "{} `{}` → {}",
                s("tool"),
                one_line(&s("summary"), 100),
                s("decision")
            );
            if let Some(r) = d["rule"].as_str() {
                out.push_str(&format!(" (rule {r})"));
            }
            out
        }
        "decision" => format!(
            "{} {} `{}` {} by {}{}",
            s("approval_id"),
            s("tool"),
            one_line(&s("summary"), 80),
            if d["approved"] == true {
                "approved"
            } else {
                "denied"
            },
            s("by"),
            d["reason"]
                .as_str()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        "egress" => {
            let mut out = format!("CONNECT {}:{} {}", s("host"), d["port"], s("decision"));
            if let (Some(u), Some(dn)) = (d["bytes_up"].as_u64(), d["bytes_down"].as_u64()) {
                out.push_str(&format!(" ↑{} ↓{}", bytes(u), bytes(dn)));
            }
            out
        }
        "error" => format!("{} {}", d["status"], one_line(&s("message"), 160)),
        _ => one_line(&d.to_string(), 160),
    }
}

/// The store, after indexing what proxies that stopped without finishing
/// (killed, crashed) left in their journals, so that nothing recorded is
/// missing from what is shown. `None` before anything was ever recorded:
/// listing, searching, exporting and verifying all of nothing is not an
/// error (an id still is: it names nothing).
fn reader(ctx: &Context) -> anyhow::Result<Option<Reader>> {
    let db = ctx.dirs.audit_db();
    if !db.exists() {
        return Ok(None);
    }
    match store::recover(&db) {
        Ok(0) => {}
        Ok(n) => tracing::info!(events = n, "indexed the journals of proxies that stopped"),
        Err(e) => eprintln!("warning: {e}; events of proxies that stopped may be missing"),
    }
    Ok(Some(Reader::open(&db)?))
}

/// The store when a command names a session: without one, nothing matches.
fn reader_for_id(ctx: &Context) -> anyhow::Result<Reader> {
    match reader(ctx)? {
        Some(r) => Ok(r),
        None => Err(store::Error::Missing {
            path: ctx.dirs.audit_db(),
        }
        .into()),
    }
}

/// `sessions verify` when the marker knows of runs the store no longer has.
fn record_gone(db: &std::path::Path, marker: store::marker::Marker, why: String) -> store::Error {
    store::Error::RecordGone {
        path: db.to_path_buf(),
        marker: store::marker::path(db),
        why,
        runs: marker.runs,
        event_id: marker.event_id,
    }
}

/// What an empty answer says when nothing was ever recorded.
fn nothing_yet(ctx: &Context) -> String {
    format!(
        "Nothing is recorded yet: the audit store {} is created by the first proxy that records \
         (`hoopctl connect`).",
        ctx.dirs.audit_db().display()
    )
}

#[derive(Serialize)]
struct Shown {
    session: SessionSummary,
    events: Vec<Value>,
}

#[derive(Serialize)]
struct Found {
    query: String,
    hits: Vec<Value>,
}

/// `--limit`: a count of 1 or more (0 would silently show nothing).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number of 1 or more".into()),
    }
}

pub fn run(ctx: &Context, cmd: SessionsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SessionsCommand::List { since, limit } => {
            let since = since.as_deref().map(parse_since).transpose()?;
            // One more than shown tells whether there are more.
            let store = reader(ctx)?;
            let mut list = match &store {
                Some(r) => r.sessions(since, limit.saturating_add(1))?,
                None => Vec::new(),
            };
            let more = list.len() > limit;
            list.truncate(limit);
            emit(ctx.output, &list, |list| {
                if store.is_none() {
                    return nothing_yet(ctx);
                }
                if list.is_empty() {
                    return match since {
                        Some(_) => "No session was active in that time.".into(),
                        None => "No recorded sessions.".into(),
                    };
                }
                let mut out = format!(
                    "{:<16}  {:<20}  {:<20}  {:<7}  {:>6}  {:<24}  {}\n",
                    "ID", "STARTED", "LAST", "MODE", "EVENTS", "USER", "AGENT SESSION"
                );
                for s in list {
                    out.push_str(&format!(
                        "{:<16}  {:<20}  {:<20}  {:<7}  {:>6}  {:<24}  {}\n",
                        s.id,
                        time(s.started_at_ms),
                        time(s.last_at_ms),
                        s.mode,
                        s.events,
                        one_line(s.user.as_deref().unwrap_or("-"), 24),
                        s.agent_session.as_deref().unwrap_or("(proxy)"),
                    ));
                }
                if more {
                    out.push_str(&format!(
                        "Only the {limit} most recently active are shown; `--limit N` shows more.\n"
                    ));
                }
                out
            });
        }
        SessionsCommand::Show { id, bodies } => {
            let r = reader_for_id(ctx)?;
            let session = r.resolve(&id)?;
            let events = r.events(&session.id)?;
            let shown = Shown {
                session,
                events: events.iter().map(StoredEvent::to_json).collect(),
            };
            emit(ctx.output, &shown, |sh| {
                let s = &sh.session;
                let mut out = format!(
                    "Session {} ({} events)\n  agent session: {}\n  started:       {}\n  user:          {}\n  mode:          {}{}\n  client:        {}\n  proxy run:     {} (profile {})\n\n",
                    s.id,
                    s.events,
                    s.agent_session.as_deref().unwrap_or("none (proxy-level events)"),
                    time(s.started_at_ms),
                    s.user.as_deref().unwrap_or("not logged in"),
                    s.mode,
                    s.gateway.as_deref().map(|g| format!(" via {g}")).unwrap_or_default(),
                    s.user_agent.as_deref().unwrap_or("-"),
                    s.run_id,
                    s.profile,
                );
                for ev in &events {
                    out.push_str(&format!(
                        "#{:<4} {}  {:<9}  {}\n",
                        ev.seq,
                        clock(ev.at_ms),
                        ev.kind,
                        describe(ev)
                    ));
                    if bodies {
                        if let Some(b) = &ev.body {
                            let text = String::from_utf8_lossy(b);
                            for line in text.lines() {
                                out.push_str(&format!("        | {line}\n"));
                            }
                        }
                    }
                }
                out
            });
        }
        SessionsCommand::Search { query, raw, limit } => {
            if query.trim().is_empty() {
                bail!("give at least one word to search for, e.g. `hoopctl sessions search 'DROP TABLE'`");
            }
            let store = reader(ctx)?;
            let mut hits = match &store {
                Some(r) => r.search(&query, raw, limit.saturating_add(1))?,
                None => Vec::new(),
            };
            let more = hits.len() > limit;
            hits.truncate(limit);
            let found = Found {
                query: query.clone(),
                hits: hits
                    .iter()
                    .map(|h| {
                        let mut v = h.event.to_json();
                        v["snippet"] = Value::String(h.snippet.clone());
                        v
                    })
                    .collect(),
            };
            emit(ctx.output, &found, |_| {
                if store.is_none() {
                    return nothing_yet(ctx);
                }
                if hits.is_empty() {
                    return format!("Nothing recorded matches {query:?}.");
                }
                let mut out = String::new();
                for h in &hits {
                    let ev = &h.event;
                    out.push_str(&format!(
                        "{} #{:<4} {}  {:<9}  {}\n        {}\n",
                        ev.session_id,
                        ev.seq,
                        time(ev.at_ms),
                        ev.kind,
                        describe(ev),
                        one_line(&h.snippet, 160)
                    ));
                }
                let shown = if more {
                    format!("The newest {limit} matches (`--limit N` shows more)")
                } else {
                    format!("{} match(es)", hits.len())
                };
                out.push_str(&format!(
                    "{shown}; `hoopctl sessions show ID` shows a whole session."
                ));
                out
            });
        }
        SessionsCommand::Export {
            format: ExportFormat::Jsonl,
            since,
            session,
            after_id,
        } => {
            let since = since.as_deref().map(parse_since).transpose()?;
            let r = match &session {
                Some(_) => reader_for_id(ctx)?,
                None => match reader(ctx)? {
                    Some(r) => r,
                    None => {
                        if ctx.output == Format::Text {
                            eprintln!("exported 0 event(s). {}", nothing_yet(ctx));
                        }
                        return Ok(ExitCode::SUCCESS);
                    }
                },
            };
            // `export` resolves the session (prefix or agent session id).
            let filter = store::ExportFilter {
                since_ms: since,
                session: session.as_deref(),
                after_id,
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut broken_pipe = false;
            let n = r.export(&filter, &mut |ev| {
                if broken_pipe {
                    return Ok(());
                }
                let line = ev.to_json().to_string();
                if writeln!(out, "{line}").is_err() {
                    broken_pipe = true;
                }
                Ok(())
            })?;
            let _ = out.flush();
            if ctx.output == Format::Text && !broken_pipe {
                eprintln!("exported {n} event(s)");
            }
        }
        SessionsCommand::Verify { id } => {
            // Before the store is opened (opening migrates, so an emptied
            // file would look like a new one): is there a record at all,
            // and should there be one?
            let db = ctx.dirs.audit_db();
            let marker = match store::marker::inspect(&db)? {
                store::marker::Found::Gone { marker, why } => {
                    return Err(record_gone(&db, marker, why).into())
                }
                store::marker::Found::Nothing | store::marker::Found::Store(None) => None,
                store::marker::Found::Store(Some(m)) => Some(m),
            };
            let store = match id {
                Some(_) => Some(reader_for_id(ctx)?),
                None => reader(ctx)?,
            };
            if let (Some(r), Some(m)) = (&store, marker) {
                if let Some(why) = r.behind(&m)? {
                    return Err(record_gone(&db, m, why).into());
                }
            }
            let verdicts = match (id, &store) {
                (Some(id), Some(r)) => {
                    let session = r.resolve(&id)?.id;
                    r.verify(Some(&session))?
                }
                (None, Some(r)) => r.verify(None)?,
                (_, None) => Vec::new(),
            };
            let ok = verdicts.iter().all(|v| v.ok);
            emit(ctx.output, &verdicts, |vs| {
                if vs.is_empty() {
                    return nothing_yet(ctx);
                }
                let mut out = String::new();
                for v in vs {
                    match &v.first_broken {
                        None => out
                            .push_str(&format!("{}  ok      {} events\n", v.session_id, v.events)),
                        Some(b) => out.push_str(&format!(
                            "{}  BROKEN  at #{}: {}\n",
                            v.session_id, b.seq, b.reason
                        )),
                    }
                }
                let bad = vs.iter().filter(|v| !v.ok).count();
                if bad == 0 {
                    out.push_str(&format!(
                        "{} session(s) verified: every hash chain is intact.",
                        vs.len()
                    ));
                } else {
                    out.push_str(&format!(
                        "{bad} of {} session(s) FAILED verification: the record was altered after it was written.",
                        vs.len()
                    ));
                }
                out
            });
            if !ok {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_since;

    #[test]
    fn since_takes_times_dates_and_ages() {
        assert_eq!(
            parse_since("2026-11-22T10:00:00Z").unwrap(),
            1_795_341_600_000
        );
        assert_eq!(parse_since("2026-11-22").unwrap(), 1_795_305_600_000);
        let now = chrono::Utc::now().timestamp_millis();
        let d = parse_since("2h").unwrap();
        assert!((now - d - 7_200_000).abs() < 5_000);
        let err = format!("{:#}", parse_since("yesterday").unwrap_err());
        assert!(err.contains("an age like 30m"), "{err}");
        assert!(!err.contains("parse integer"), "{err}");
        assert!(parse_since("3y").is_err());
        // A date that is not one is not taken for an age with a bad unit.
        for bad in ["2026-13-01", "2026-12-01T25:00:00Z", "12:30"] {
            let err = format!("{:#}", parse_since(bad).unwrap_err());
            assert!(err.contains("not a valid date or time"), "{bad}: {err}");
        }
        // Absurd ages do not overflow: they reach back to the start.
        assert_eq!(parse_since("99999999999999999w").unwrap(), 0);
        assert_eq!(parse_since("9223372036854775807s").unwrap(), 0);
    }
}
