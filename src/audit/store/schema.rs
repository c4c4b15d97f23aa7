//! Creating, configuring and migrating the database file.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::{Error, SCHEMA_VERSION};

/// Migration `i` takes the schema from version `i` to `i + 1`. Append only;
/// never edit a shipped entry.
pub(super) const MIGRATIONS: &[&str] = &[V1, V2, V3];

const V1: &str = r#"
CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL,
    agent_session   TEXT,
    run_started_at  INTEGER NOT NULL,
    started_at      INTEGER NOT NULL,
    last_at         INTEGER NOT NULL,
    profile         TEXT NOT NULL,
    mode            TEXT NOT NULL,
    gateway         TEXT,
    user            TEXT,
    user_agent      TEXT,
    hoopctl_version TEXT NOT NULL,
    events          INTEGER NOT NULL DEFAULT 0,
    requests        INTEGER NOT NULL DEFAULT 0,
    tool_calls      INTEGER NOT NULL DEFAULT 0,
    blocked         INTEGER NOT NULL DEFAULT 0,
    errors          INTEGER NOT NULL DEFAULT 0,
    head_seq        INTEGER NOT NULL DEFAULT 0,
    head_hash       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_last_at ON sessions (last_at);
CREATE INDEX sessions_agent_session ON sessions (agent_session);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions (id),
    seq         INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    request_id  TEXT,
    data        TEXT NOT NULL,
    text        TEXT,
    body        BLOB,
    body_len    INTEGER,
    body_sha256 TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    UNIQUE (session_id, seq)
);
CREATE INDEX events_at ON events (at);
CREATE INDEX events_request_id ON events (request_id) WHERE request_id IS NOT NULL;

CREATE VIRTUAL TABLE events_fts USING fts5 (
    text,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TABLE cursors (
    name       TEXT PRIMARY KEY,
    event_id   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
"#;

/// Version 2: how far each journal has been indexed (see `journal`),
/// committed with the events, so nothing is indexed twice.
const V2: &str = r#"
CREATE TABLE journals (
    id         TEXT PRIMARY KEY,
    segment    INTEGER NOT NULL,
    at_byte    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
"#;

/// Version 3: event ids are never used again, so a cursor (the webhook's,
/// an incremental export's) never skips new events after retention
/// deleted the newest ones, or all of them. `id_floor` holds the highest
/// id ever deleted (a trigger keeps it, whoever deletes) or passed by a
/// cursor; the writer numbers events above it and above every id left.
/// (No AUTOINCREMENT: adding it rebuilds the table, which for a large
/// store means a long pause and a file twice the size.)
const V3: &str = r#"
CREATE TABLE id_floor (id INTEGER NOT NULL);
INSERT INTO id_floor (id) SELECT coalesce(max(event_id), 0) FROM cursors;
CREATE TRIGGER events_id_floor AFTER DELETE ON events
BEGIN
    UPDATE id_floor SET id = max(id, OLD.id);
END;
"#;

/// Creates the parent directory (0700) and the file (0600) when missing.
/// An existing directory must be ours and closed to group/others (see
/// [`crate::paths::ensure_dir`]).
pub fn create_file(path: &Path) -> Result<(), Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::paths::ensure_dir(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    {
        use std::os::unix::fs::OpenOptionsExt;
        options
            .mode(0o600)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits());
    }
    match options.open(path) {
        Ok(_) => {}
        // There already (or someone else created it meanwhile): fine, as
        // long as `connect` trusts it.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(Error::Create {
                path: path.to_path_buf(),
                source,
            })
        }
    }
    Ok(())
}

/// Refuses a store file that is a link, not ours, or open to
/// group/others: the record is private (prompts, tool calls), and a
/// store others can write is no record.
pub fn check_file(path: &Path) -> Result<(), Error> {
    crate::paths::check_path(path, crate::paths::Trust::Secret)?;
    Ok(())
}

/// Opens an existing file read-write (never creating it), configures the
/// connection and migrates the schema.
pub fn connect(path: &Path) -> Result<Connection, Error> {
    let open_err = |source| Error::Open {
        path: path.to_path_buf(),
        source,
    };
    check_file(path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    configure(&conn).map_err(open_err)?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    // WAL: readers never block the writer; with synchronous=NORMAL a
    // commit is in the WAL file when COMMIT returns, so it survives the
    // process being killed (only an OS crash or power loss can lose the
    // last transactions).
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "the audit store could not switch to WAL mode");
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

pub fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Runs the missing migrations, in order, in one transaction.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), Error> {
    let too_new = |found| Error::TooNew {
        path: path.to_path_buf(),
        found,
        known: SCHEMA_VERSION,
    };
    let migrate_err = |source| Error::Migrate {
        path: path.to_path_buf(),
        to: SCHEMA_VERSION,
        source,
    };
    let found = user_version(conn).map_err(|source| Error::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if found > SCHEMA_VERSION {
        return Err(too_new(found));
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(migrate_err)?;
    // Another process may have migrated while we waited for the lock.
    let found = user_version(&tx).map_err(migrate_err)?;
    if found > SCHEMA_VERSION {
        return Err(too_new(found));
    }
    for sql in MIGRATIONS.iter().skip(found.max(0) as usize) {
        tx.execute_batch(sql).map_err(migrate_err)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(migrate_err)?;
    tx.commit().map_err(migrate_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_migration_per_version() {
        assert_eq!(MIGRATIONS.len() as i64, SCHEMA_VERSION);
    }
}
