//! The audit store: `audit.db` in the data directory, and the journals
//! next to it.
//!
//! - Schema and migrations ([`open`], [`SCHEMA_VERSION`]): WAL,
//!   `synchronous=NORMAL`, `PRAGMA user_version` as the schema version.
//! - The writer ([`Writer`]): appends each event to this process's
//!   journal (`journal`: a copy into a shared mapping of the file, durable
//!   against `kill -9` when it returns), and one low-priority indexer
//!   thread that turns the journal into rows in large transactions,
//!   keeping a SHA-256 hash chain per session. [`recover`] indexes the
//!   journals of processes that died.
//! - The read side ([`Reader`]): list, resolve, show, search (FTS5),
//!   export, verify; the shipping cursor ([`cursor`], [`set_cursor`]) and
//!   retention ([`retain`]).
//!
//! Tables: `sessions` (one row per proxy run × agent session, with the
//! chain's head), `events` (one row per event: canonical JSON `data`,
//! search `text`, zstd `body`, the chain `prev_hash`/`hash`),
//! `events_fts` (contentless FTS5 over `text`, rowid = `events.id`),
//! `cursors` (how far each shipper got) and `journals` (how far each
//! journal has been indexed).
//!
//! The chain ([`chain`]): every event's hash covers the previous hash and
//! the event's canonical bytes, so editing, deleting, inserting or
//! reordering events shows in [`Reader::verify`]. Deleting a whole session
//! (its row and all its events) is what retention does and is not
//! detectable from the chain alone.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension};

pub mod chain;
mod journal;
pub mod marker;
mod read;
mod schema;
mod verify;
mod writer;

#[cfg(test)]
mod tests;

pub use read::{rfc3339_ms, ExportFilter, Hit, Overview, Reader, SessionSummary, StoredEvent};
pub use verify::{Broken, Verdict};
pub use writer::{recover, Writer, WriterOptions, WriterStats};

/// Takes `m` even when a thread panicked holding it: the store's shared
/// state stays usable (each holder leaves it consistent between writes).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The store's file name in the data directory.
pub const FILE_NAME: &str = "audit.db";

/// The schema this binary writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the audit store {}: {source}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create {}: {source}", .path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no recorded sessions yet at {}", .path.display())]
    Missing { path: PathBuf },
    #[error(
        "the audit store {} has schema version {found}, newer than this hoopctl understands \
         ({known}); use a newer hoopctl to read it",
        .path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("cannot migrate the audit store {} to schema version {to}: {source}", .path.display())]
    Migrate {
        path: PathBuf,
        to: i64,
        #[source]
        source: rusqlite::Error,
    },
    #[error("audit store query failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A transaction of the writer failed (disk full, read-only file, I/O
    /// error); the events in it were not recorded.
    #[error("cannot write to the audit store {}: {message}", .path.display())]
    Write { path: PathBuf, message: String },
    /// The writer thread is gone (closed, or it could not start).
    #[error("the audit writer has stopped")]
    Closed,
    #[error("the audit store {} is damaged at event {event_id}: {reason}", .path.display())]
    Corrupt {
        path: PathBuf,
        event_id: i64,
        reason: String,
    },
    #[error("no recorded session matches `{0}`")]
    NoSuchSession(String),
    #[error(
        "no recorded session is `{0}`; a prefix of an id needs at least 4 characters \
         (`hoopctl sessions list` shows the ids)"
    )]
    ShortPrefix(String),
    #[error("`{id}` matches several sessions ({}); give more characters", .candidates.join(", "))]
    Ambiguous { id: String, candidates: Vec<String> },
    #[error("invalid search query `{query}`: {message}")]
    Query { query: String, message: String },
    #[error("cannot compress an event body: {0}")]
    Compress(#[source] std::io::Error),
    /// The marker next to the store (see [`marker`]) is not one hoopctl wrote.
    #[error(
        "the audit marker {} is unusable ({why}); if you mean to start a new record, \
         remove it: rm '{}'",
        .path.display(), .path.display()
    )]
    Marker { path: PathBuf, why: String },
    /// Runs were recorded (the marker says so) but the store is gone,
    /// empty or behind.
    #[error(
        "the record is gone: the audit store {} {why}, while the marker {} says {runs} run(s) \
         recorded events up to #{event_id}. Restore audit.db from a backup; if it was removed \
         on purpose, remove the marker to start a new record: rm '{}'",
        .path.display(), .marker.display(), .marker.display()
    )]
    RecordGone {
        path: PathBuf,
        marker: PathBuf,
        why: String,
        runs: u64,
        event_id: i64,
    },
    /// The store file or its directory cannot be trusted (see `paths`).
    #[error(transparent)]
    Unsafe(#[from] crate::paths::Error),
    /// For callers of [`Reader::export`]: their sink failed.
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
}

/// Opens the store at `path`, creating the file (0600) and its directory
/// (0700) if missing, and migrates it to [`SCHEMA_VERSION`] (all missing
/// migrations in one transaction). The connection is in WAL mode with
/// `synchronous=NORMAL` (a commit survives `kill -9` of the process: it is
/// in the WAL file), `busy_timeout` 5 s and foreign keys on. A file written
/// by a newer hoopctl is refused with [`Error::TooNew`].
pub fn open(path: &Path) -> Result<Connection, Error> {
    schema::create_file(path)?;
    schema::connect(path)
}

/// How far the shipper `name` got: the last event id it delivered (0 when
/// it never ran, or when there is no store yet).
pub fn cursor(path: &Path, name: &str) -> Result<i64, Error> {
    if !path.exists() {
        return Ok(0);
    }
    cursor_on(&schema::connect(path)?, name)
}

/// Records that the shipper `name` delivered everything up to `event_id`.
/// A small write; fine next to a running [`Writer`] (WAL, busy timeout).
pub fn set_cursor(path: &Path, name: &str, event_id: i64) -> Result<(), Error> {
    set_cursor_on(&open(path)?, name, event_id)
}

/// [`cursor`] on an open connection.
pub fn cursor_on(conn: &Connection, name: &str) -> Result<i64, Error> {
    Ok(conn
        .query_row(
            "SELECT event_id FROM cursors WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// [`set_cursor`] on an open connection.
pub fn set_cursor_on(conn: &Connection, name: &str, event_id: i64) -> Result<(), Error> {
    conn.execute(
        "INSERT INTO cursors (name, event_id, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET event_id = excluded.event_id,
                                          updated_at = excluded.updated_at",
        rusqlite::params![name, event_id, crate::audit::event::now_ms()],
    )?;
    Ok(())
}

/// Retention: deletes the sessions whose last event is older than `days`
/// days, with their events and search entries; returns (sessions, events)
/// deleted. Whole sessions only, so every chain left stays verifiable; one
/// short transaction per session, so a running writer is never held up for
/// long. `days == 0` keeps everything. A missing store is not an error.
///
/// Sessions are deleted whether or not a shipper has delivered them.
pub fn retain(path: &Path, days: u32) -> Result<(u64, u64), Error> {
    if days == 0 || !path.exists() {
        return Ok((0, 0));
    }
    let cutoff = crate::audit::event::now_ms() - i64::from(days) * 86_400_000;
    let mut conn = schema::connect(path)?;
    let old: Vec<String> = {
        let mut stmt = conn.prepare("SELECT id FROM sessions WHERE last_at < ?1")?;
        let rows = stmt.query_map([cutoff], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let (mut sessions, mut events) = (0u64, 0u64);
    for id in old {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Re-check inside the transaction: the writer may have added to it.
        let still_old: bool = tx
            .query_row(
                "SELECT last_at < ?2 FROM sessions WHERE id = ?1",
                rusqlite::params![id, cutoff],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(false);
        if !still_old {
            continue;
        }
        tx.execute(
            "DELETE FROM events_fts WHERE rowid IN (SELECT id FROM events WHERE session_id = ?1)",
            [&id],
        )?;
        events += tx.execute("DELETE FROM events WHERE session_id = ?1", [&id])? as u64;
        sessions += tx.execute("DELETE FROM sessions WHERE id = ?1", [&id])? as u64;
        tx.commit()?;
    }
    Ok((sessions, events))
}

/// The store's benchmark: appends `n` small events (a request-sized
/// `data`, a short search text, a 300-byte body; spread over 16 sessions)
/// from two producer threads through a [`Writer`] on `path`, waits until
/// all are indexed, and returns events per second.
pub fn bench_append(path: &Path, n: usize) -> Result<f64, Error> {
    use crate::audit::event::{Event, Kind, RunMeta, SessionRef};
    use std::sync::Arc;

    let writer = Writer::start(path, WriterOptions::default())?;
    let run = Arc::new(RunMeta {
        run_id: format!("bench-{}", crate::audit::event::now_ms()),
        started_at_ms: crate::audit::event::now_ms(),
        profile: "default".into(),
        mode: "direct".into(),
        gateway: None,
        user: Some("bench@example.com".into()),
        hoopctl_version: env!("CARGO_PKG_VERSION").into(),
    });
    let body = concat!(
        r#"{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","#,
        r#""content":"list the files in the current directory and tell me which ones are "#,
        r#"larger than one megabyte, then summarise the build setup"}],"stream":true}"#
    )
    .as_bytes()
    .to_vec();
    let producers = 2usize;
    let started = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let writer = writer.clone();
            let run = run.clone();
            let body = body.clone();
            std::thread::spawn(move || -> Result<(), Error> {
                let mine = n / producers + usize::from(p < n % producers);
                for i in 0..mine {
                    let session = SessionRef {
                        run: run.clone(),
                        agent_session: Some(format!("agent-{}", (i * producers + p) % 16).into()),
                        user_agent: Some("claude-cli/2.1.330 (external, cli)".into()),
                    };
                    let mut ev = Event::new(
                        session,
                        Kind::Request,
                        serde_json::json!({
                            "method": "POST", "host": "api.anthropic.com",
                            "path": "/v1/messages", "status": 200, "masked": {"email": 1},
                        }),
                    );
                    ev.request_id = Some(format!("req-{p}-{i}"));
                    ev.text = Some(format!("run cargo test in crate number {i} and report"));
                    ev.body = Some(body.clone().into());
                    writer.append(ev)?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| Error::Closed)??;
    }
    writer.flush_blocking()?;
    let secs = started.elapsed().as_secs_f64();
    writer.close();
    Ok(n as f64 / secs.max(1e-9))
}
