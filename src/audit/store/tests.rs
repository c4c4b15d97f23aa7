//! Unit tests of the store. Shared helpers here; the tests by area below.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::audit::event::{now_ms, Event, Kind, RunMeta, SessionRef};

mod journal;
mod read;
mod tamper;
mod writer;

pub(super) fn store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join(FILE_NAME);
    (dir, path)
}

pub(super) fn run(id: &str) -> Arc<RunMeta> {
    Arc::new(RunMeta {
        run_id: id.to_string(),
        started_at_ms: 1_700_000_000_000,
        profile: "default".into(),
        mode: "direct".into(),
        gateway: None,
        user: Some("ana@example.com".into()),
        hoopctl_version: "0.1.0".into(),
    })
}

pub(super) fn session(run: &Arc<RunMeta>, agent: Option<&str>) -> SessionRef {
    SessionRef {
        run: run.clone(),
        agent_session: agent.map(Arc::from),
        user_agent: None,
    }
}

/// A request event numbered `n`, with a JSON body and some search text.
pub(super) fn request(s: &SessionRef, n: usize) -> Event {
    let mut ev = Event::new(
        s.clone(),
        Kind::Request,
        json!({"method": "POST", "path": "/v1/messages", "n": n}),
    );
    ev.request_id = Some(format!("req-{n}"));
    ev.text = Some(format!("prompt number {n}"));
    ev.body = Some(
        format!(r#"{{"messages":[{{"role":"user","content":"hello {n}"}}]}}"#)
            .into_bytes()
            .into(),
    );
    ev
}

/// The `n` of each stored event of `session` made by [`request`], in order.
pub(super) fn stored_numbers(reader: &Reader, session: &SessionRef) -> Vec<u64> {
    reader
        .events(&session.id())
        .unwrap()
        .iter()
        .map(|e| e.data["n"].as_u64().unwrap())
        .collect()
}

/// Writes `n` requests into one session and returns the store's reader
/// and the session id.
pub(super) fn filled(path: &std::path::Path, n: usize) -> String {
    let writer = Writer::start(path, WriterOptions::default()).unwrap();
    let s = session(&run("run-1"), Some("agent-1"));
    for i in 1..=n {
        writer.append(request(&s, i)).unwrap();
    }
    writer.flush_blocking().unwrap();
    writer.close();
    s.id()
}

/// 0600, as hoopctl creates the store (a file made here by sqlite
/// follows the umask, and the store refuses one readable by others).
fn private(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

pub(super) fn second_connection(path: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn
}

#[test]
fn fresh_store_has_the_schema_version_and_private_modes() {
    let (_dir, path) = store();
    let conn = open(&path).unwrap();
    assert_eq!(schema::user_version(&conn).unwrap(), SCHEMA_VERSION);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let file = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        let dir = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(file, 0o600);
        assert_eq!(dir, 0o700);
        // SQLite gives the WAL the database file's mode.
        let writer = Writer::start(&path, WriterOptions::default()).unwrap();
        writer
            .append(request(&session(&run("r"), None), 1))
            .unwrap();
        writer.flush_blocking().unwrap();
        let wal = path.with_file_name(format!("{FILE_NAME}-wal"));
        let wal = std::fs::metadata(wal).unwrap().permissions().mode() & 0o777;
        assert_eq!(wal, 0o600);
        writer.close();
    }
    drop(conn);
    // Opening again is a no-op migration.
    let conn = open(&path).unwrap();
    assert_eq!(schema::user_version(&conn).unwrap(), SCHEMA_VERSION);
}

#[test]
fn a_newer_schema_is_refused_clearly() {
    let (_dir, path) = store();
    drop(open(&path).unwrap());
    second_connection(&path)
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = open(&path).unwrap_err();
    assert!(matches!(err, Error::TooNew { found: 99, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("newer") && msg.contains(FILE_NAME), "{msg}");
    assert!(matches!(Reader::open(&path), Err(Error::TooNew { .. })));
    assert!(matches!(
        Writer::start(&path, WriterOptions::default()),
        Err(Error::TooNew { .. })
    ));
}

/// A store as schema version 2 left it: `rows` (a current store)
/// copied into a file made by the first two migrations.
fn version_2_copy_of(rows: &std::path::Path, path: &std::path::Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = rusqlite::Connection::open(path).unwrap();
    private(path);
    for sql in &schema::MIGRATIONS[..2] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", 2).unwrap();
    conn.execute("ATTACH ?1 AS cur", [rows.to_str().unwrap()])
        .unwrap();
    conn.execute_batch(
        "INSERT INTO sessions SELECT * FROM cur.sessions; \
         INSERT INTO events SELECT * FROM cur.events; \
         INSERT INTO events_fts (rowid, text) SELECT id, text FROM cur.events WHERE text IS NOT NULL; \
         DETACH cur;",
    )
    .unwrap();
}

#[test]
fn after_migration_an_event_id_is_never_used_again_even_when_retention_deleted_the_newest() {
    let (_dir, current) = store();
    let writer = Writer::start(&current, WriterOptions::default()).unwrap();
    let r = run("r");
    let (kept, newest) = (session(&r, Some("kept")), session(&r, Some("newest")));
    for i in 1..=3 {
        writer.append(request(&kept, i)).unwrap();
    }
    for i in 1..=5 {
        writer.append(request(&newest, i)).unwrap();
    }
    writer.flush_blocking().unwrap();
    writer.close();

    let (_d2, path) = store();
    version_2_copy_of(&current, &path);
    // A webhook shipped all 8 events; then the newest session was deleted.
    {
        let conn = second_connection(&path);
        set_cursor_on(&conn, "webhook", 8).unwrap();
        conn.execute_batch(&format!(
            "DELETE FROM events_fts WHERE rowid > 3; \
             DELETE FROM events WHERE session_id = '{0}'; \
             DELETE FROM sessions WHERE id = '{0}';",
            newest.id()
        ))
        .unwrap();
    }

    // Migrated: the kept session is whole, searchable and verifies.
    let writer = Writer::start(&path, WriterOptions::default()).unwrap();
    let reader = Reader::open(&path).unwrap();
    let ids: Vec<i64> = reader
        .events(&kept.id())
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(
        reader.search("prompt number 2", false, 10).unwrap().len(),
        1
    );
    assert!(reader.verify(None).unwrap().iter().all(|v| v.ok));

    // A new event gets an id the webhook has not passed (under version 2
    // it was 4, which the webhook would have skipped).
    writer.append(request(&kept, 4)).unwrap();
    writer.flush_blocking().unwrap();
    assert_eq!(reader.last_event_id().unwrap(), 9);
    let unsent = reader
        .events_after(cursor(&path, "webhook").unwrap(), 10)
        .unwrap();
    assert_eq!(unsent.len(), 1);
    // Even once every event is deleted.
    retain_all(&path);
    writer.append(request(&kept, 5)).unwrap();
    writer.flush_blocking().unwrap();
    assert_eq!(reader.last_event_id().unwrap(), 10);
    writer.close();
}

/// Deletes every session, as retention does.
fn retain_all(path: &std::path::Path) {
    let conn = second_connection(path);
    conn.execute_batch("DELETE FROM events_fts; DELETE FROM events; DELETE FROM sessions;")
        .unwrap();
}

#[test]
fn an_old_schema_is_migrated() {
    let (_dir, path) = store();
    // A file with no schema at all (version 0), as an older binary left it.
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    drop(rusqlite::Connection::open(&path).unwrap());
    private(&path);
    let conn = open(&path).unwrap();
    assert_eq!(schema::user_version(&conn).unwrap(), SCHEMA_VERSION);
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('sessions','events','events_fts','cursors')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 4);
}

#[test]
fn a_file_that_is_not_a_database_names_the_file() {
    let (_dir, path) = store();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        b"this is not sqlite, just some text that is long enough to matter",
    )
    .unwrap();
    let msg = open(&path).unwrap_err().to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

#[test]
fn canonical_json_sorts_keys_at_every_level() {
    let v = json!({"b": 1, "a": {"z": [3, {"y": null, "x": "é\""}], "c": true}});
    assert_eq!(
        chain::canonical_json(&v),
        r#"{"a":{"c":true,"z":[3,{"x":"é\"","y":null}]},"b":1}"#
    );
}

#[test]
fn the_canonical_encoding_is_unambiguous() {
    let base = chain::Canon {
        session_id: "s",
        seq: 1,
        at_ms: 5,
        kind: "request",
        request_id: None,
        data: "{}",
        text: Some("ab"),
        body_sha256: None,
    };
    let prev = [0u8; 32];
    let shifted = chain::Canon {
        text: Some("a"),
        body_sha256: Some("b"),
        ..base
    };
    let none_vs_empty = chain::Canon {
        request_id: Some(""),
        ..base
    };
    let h = base.hash(&prev);
    assert_ne!(h, shifted.hash(&prev));
    assert_ne!(h, none_vs_empty.hash(&prev));
    assert_ne!(h, base.hash(&[1u8; 32]));
    assert_eq!(h, base.hash(&prev));
    assert_eq!(chain::unhex32(&chain::hex(&h)), Some(h));
    assert_eq!(chain::unhex32("zz"), None);
}

#[test]
fn blocked_counts_refusals_only() {
    use chain::is_blocked;
    assert!(is_blocked(Kind::ToolCall, &json!({"decision": "blocked"})));
    assert!(!is_blocked(Kind::ToolCall, &json!({"decision": "allowed"})));
    assert!(is_blocked(Kind::Decision, &json!({"approved": false})));
    assert!(!is_blocked(Kind::Decision, &json!({"approved": true})));
    assert!(is_blocked(Kind::Egress, &json!({"decision": "denied"})));
    assert!(!is_blocked(Kind::Request, &json!({"decision": "denied"})));
}

#[test]
fn retention_deletes_whole_old_sessions_only() {
    let (_dir, path) = store();
    let writer = Writer::start(&path, WriterOptions::default()).unwrap();
    let r = run("run-retain");
    let old = session(&r, Some("old"));
    let new = session(&r, Some("new"));
    let ten_days_ago = now_ms() - 10 * 86_400_000;
    for i in 0..5 {
        let mut ev = request(&old, i);
        ev.at_ms = ten_days_ago + i as i64;
        ev.text = Some(format!("ancient secret-word {i}"));
        writer.append(ev).unwrap();
    }
    for i in 0..3 {
        writer.append(request(&new, i)).unwrap();
    }
    writer.flush_blocking().unwrap();

    assert_eq!(retain(&path, 0).unwrap(), (0, 0));
    assert_eq!(retain(&path, 30).unwrap(), (0, 0));
    assert_eq!(retain(&path, 7).unwrap(), (1, 5));
    assert_eq!(retain(&path, 7).unwrap(), (0, 0));

    let reader = Reader::open(&path).unwrap();
    let left = reader.sessions(None, 10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].agent_session.as_deref(), Some("new"));
    assert!(reader.search("secret-word", false, 10).unwrap().is_empty());
    let fts_rows: i64 = reader
        .conn
        .query_row("SELECT count(*) FROM events_fts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fts_rows, 3);
    assert!(reader.verify(None).unwrap().iter().all(|v| v.ok));

    // The writer is still running: the old session, deleted under it,
    // starts again from seq 1 and the new one goes on.
    writer.append(request(&old, 99)).unwrap();
    writer.append(request(&new, 99)).unwrap();
    writer.flush_blocking().unwrap();
    let old_events = reader.events(&old.id()).unwrap();
    assert_eq!(old_events.len(), 1);
    assert_eq!(old_events[0].seq, 1);
    assert_eq!(reader.events(&new.id()).unwrap().len(), 4);
    assert!(reader.verify(None).unwrap().iter().all(|v| v.ok));
    writer.close();

    // A missing store is not an error.
    let (_d2, missing) = store();
    assert_eq!(retain(&missing, 7).unwrap(), (0, 0));
    assert!(!missing.exists());
}

#[test]
fn shipping_cursor_round_trips() {
    let (_dir, path) = store();
    assert_eq!(cursor(&path, "webhook:x").unwrap(), 0);
    assert!(!path.exists(), "reading a cursor creates nothing");
    filled(&path, 5);
    let reader = Reader::open(&path).unwrap();
    let first = reader.events_after(0, 2).unwrap();
    assert_eq!(first.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
    set_cursor(&path, "webhook:x", first[1].id).unwrap();
    assert_eq!(cursor(&path, "webhook:x").unwrap(), first[1].id);
    assert_eq!(reader.cursor("webhook:x").unwrap(), first[1].id);
    assert_eq!(cursor(&path, "webhook:y").unwrap(), 0);
    let rest = reader
        .events_after(cursor(&path, "webhook:x").unwrap(), 100)
        .unwrap();
    assert_eq!(
        rest.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    set_cursor(&path, "webhook:x", rest[2].id).unwrap();
    assert!(reader.events_after(rest[2].id, 100).unwrap().is_empty());
    assert_eq!(reader.last_event_id().unwrap(), rest[2].id);
}

/// Throughput of the store (debug builds are several times slower than
/// release; `cargo test --release -- --ignored --nocapture throughput`).
#[test]
fn throughput_is_reported() {
    let (_dir, path) = store();
    let n = if cfg!(debug_assertions) {
        20_000
    } else {
        200_000
    };
    let rate = bench_append(&path, n).unwrap();
    println!("audit store: {rate:.0} events/s ({n} events)");
    let reader = Reader::open(&path).unwrap();
    let total: i64 = reader
        .sessions(None, 100)
        .unwrap()
        .iter()
        .map(|s| s.events)
        .sum();
    assert_eq!(total, n as i64);
    if !cfg!(debug_assertions) {
        assert!(rate > 20_000.0, "{rate:.0} events/s");
    }
}
