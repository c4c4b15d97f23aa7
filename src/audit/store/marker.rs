//! The record's marker: `audit.marker` next to `audit.db`, outside the
//! store, so that `sessions verify` can tell "nothing recorded yet" from
//! "the record is gone".
//!
//! It holds how many runs (writers) have started on this store and the
//! highest event id known to be committed. Event ids are never used
//! again (schema v3's `id_floor` keeps the highest id ever deleted), so
//! the store's high-water mark never goes down, even under retention: a
//! store below the marker was deleted, emptied, truncated or replaced by
//! an older copy. The marker is written atomically (0600) when a writer
//! starts, at most every [`MARKER_EVERY`] while it indexes, and when it
//! stops, from the indexer thread: never on a request's path. It only
//! ever lags the store (it is written after the commit), so it can miss
//! the last seconds before a `kill -9`, never accuse a store falsely.
//! Several proxies racing to update it can only make it lag as well.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::Error;

/// How often at most the indexer rewrites the marker while events keep
/// coming (one small atomic write; the last one is at the writer's close).
pub const MARKER_EVERY: Duration = Duration::from_secs(2);

/// The largest marker file read (a real one is under 100 bytes); a larger
/// one is not a marker hoopctl wrote and is refused.
pub const MARKER_MAX_BYTES: usize = 4096;

/// What the marker says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// Writers (proxy runs) started on this store.
    pub runs: u64,
    /// The highest event id known committed to the store.
    pub event_id: i64,
    /// When the marker was last written (ms since the epoch).
    pub updated_at_ms: i64,
    /// Set when a writer started on a store already behind the marker,
    /// and kept: new runs filling a replaced store back up past the old
    /// high-water mark must not hide that the earlier record was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<String>,
}

/// The marker of the store at `db` (`audit.db` → `audit.marker`).
pub fn path(db: &Path) -> PathBuf {
    db.with_extension("marker")
}

/// Reads the marker: `None` when there is none. A marker that is a link,
/// open to others, oversized or unparsable is an error (it says how to
/// start over).
pub fn read(db: &Path) -> Result<Option<Marker>, Error> {
    let file = path(db);
    let Some(bytes) = crate::paths::read_trusted(&file, crate::paths::Trust::Secret)? else {
        return Ok(None);
    };
    let bad = |why: String| Error::Marker {
        path: file.clone(),
        why,
    };
    if bytes.len() > MARKER_MAX_BYTES {
        return Err(bad(format!("larger than {MARKER_MAX_BYTES} bytes")));
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| bad(e.to_string()))
}

fn write(db: &Path, marker: &Marker) -> Result<(), Error> {
    let file = path(db);
    let text = serde_json::to_vec(marker).map_err(|e| Error::Create {
        path: file.clone(),
        source: std::io::Error::other(e),
    })?;
    crate::paths::write_private(&file, &text).map_err(|source| Error::Create { path: file, source })
}

/// The store's high-water mark: the highest event id it holds or ever
/// deleted.
pub fn high_water(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT max((SELECT coalesce(max(id), 0) FROM events), \
                    (SELECT coalesce(max(id), 0) FROM id_floor))",
        [],
        |r| r.get(0),
    )
}

/// A writer starts on the store at `db` (open as `conn`): one more run.
/// The event id is never lowered: a store found below the marker stays
/// reported by `sessions verify` until the marker is removed.
pub fn run_started(db: &Path, conn: &Connection) -> Result<(), Error> {
    let old = read(db)?.unwrap_or_default();
    let stored = high_water(conn)?;
    let lost = old.lost.clone().or_else(|| {
        let why = behind_by(stored, old.event_id)?;
        tracing::warn!(store = %db.display(), "the audit store {why}; `hoopctl sessions verify` reports it");
        Some(why)
    });
    write(
        db,
        &Marker {
            runs: old.runs.saturating_add(1),
            event_id: old.event_id.max(stored),
            updated_at_ms: crate::audit::event::now_ms(),
            lost,
        },
    )
}

/// Events up to `event_id` are committed.
pub fn advance(db: &Path, event_id: i64) -> Result<(), Error> {
    let old = read(db)?.unwrap_or_default();
    if event_id <= old.event_id {
        return Ok(());
    }
    write(
        db,
        &Marker {
            runs: old.runs.max(1),
            event_id,
            updated_at_ms: crate::audit::event::now_ms(),
            lost: old.lost,
        },
    )
}

/// What `sessions verify` finds before it reads the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// No marker and no store: nothing was ever recorded here.
    Nothing,
    /// A store to verify; `Some` marker to hold it against.
    Store(Option<Marker>),
    /// The marker says runs were recorded, but the store is gone or empty.
    Gone { marker: Marker, why: String },
}

/// Looks at the marker and the store file of `db` (without opening it).
pub fn inspect(db: &Path) -> Result<Found, Error> {
    let marker = read(db)?;
    let meta = match std::fs::symlink_metadata(db) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(Error::Create {
                path: db.to_path_buf(),
                source,
            })
        }
    };
    Ok(match (marker, meta) {
        (None, None) => Found::Nothing,
        (Some(marker), None) => Found::Gone {
            marker,
            why: "is missing".into(),
        },
        (Some(marker), Some(m)) if m.len() == 0 => Found::Gone {
            marker,
            why: "is empty (0 bytes)".into(),
        },
        (marker, Some(_)) => Found::Store(marker),
    })
}

/// The store (open as `conn`) against its marker: `Some(why)` when it
/// ends below what the marker knows was committed.
pub fn behind(conn: &Connection, marker: &Marker) -> Result<Option<String>, Error> {
    if let Some(lost) = &marker.lost {
        return Ok(Some(format!(
            "was found behind its marker by a later run: it {lost}"
        )));
    }
    Ok(behind_by(high_water(conn)?, marker.event_id))
}

fn behind_by(stored: i64, known: i64) -> Option<String> {
    (stored < known).then(|| {
        format!(
            "ends at event #{stored}, but events up to #{known} were recorded (it was truncated, \
             emptied or replaced by an older copy)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_tells_nothing_from_gone_and_never_goes_down() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        assert_eq!(inspect(&db).unwrap(), Found::Nothing);
        let conn = super::super::open(&db).unwrap();
        run_started(&db, &conn).unwrap();
        assert!(matches!(inspect(&db).unwrap(), Found::Store(Some(m)) if m.runs == 1));
        advance(&db, 5).unwrap();
        advance(&db, 3).unwrap();
        let m = read(&db).unwrap().unwrap();
        assert_eq!((m.runs, m.event_id), (1, 5));
        // The empty store is behind the marker.
        assert!(behind(&conn, &m).unwrap().unwrap().contains("#0"));
        std::fs::write(&db, b"").unwrap();
        assert!(
            matches!(inspect(&db).unwrap(), Found::Gone { why, .. } if why.contains("0 bytes"))
        );
        std::fs::remove_file(&db).unwrap();
        assert!(matches!(inspect(&db).unwrap(), Found::Gone { why, .. } if why == "is missing"));
        // A run started on a store behind the marker: kept as lost, even
        // once new events pass the old mark.
        let conn = super::super::open(&db).unwrap();
        run_started(&db, &conn).unwrap();
        advance(&db, 50).unwrap();
        let m = read(&db).unwrap().unwrap();
        assert_eq!((m.runs, m.event_id), (2, 50));
        let why = behind(&conn, &m).unwrap().unwrap();
        assert!(
            why.contains("ends at event #0, but events up to #5"),
            "{why}"
        );
        drop(conn);
        // The marker is private, and an oversized one is refused.
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(path(&db)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let big = vec![b' '; MARKER_MAX_BYTES + 1];
        std::fs::write(path(&db), big).unwrap();
        assert!(read(&db).unwrap_err().to_string().contains("larger than"));
    }
}
