//! Tampering through a second connection, and what verify says.

use super::*;

/// A store with one 5-event session (plus an untouched second session),
/// tampered by `sql`; returns the verdict of the first session.
fn tampered(sql: &str) -> (Verdict, Vec<Verdict>, Vec<i64>) {
    let (_dir, path) = store();
    let id = filled(&path, 5);
    {
        let writer = Writer::start(&path, WriterOptions::default()).unwrap();
        let other = session(&run("run-2"), Some("agent-2"));
        for n in 0..3 {
            writer.append(request(&other, n)).unwrap();
        }
        writer.close();
    }
    let reader = Reader::open(&path).unwrap();
    let ids: Vec<i64> = reader.events(&id).unwrap().iter().map(|e| e.id).collect();
    let before = reader.verify(None).unwrap();
    assert!(before.iter().all(|v| v.ok), "{before:?}");
    let conn = second_connection(&path);
    conn.execute_batch(&sql.replace("$S", &id)).unwrap();
    drop(conn);
    let all = reader.verify(None).unwrap();
    let mine = reader.verify(Some(&id)).unwrap().remove(0);
    (mine, all, ids)
}

fn broken_at(sql: &str, seq: i64, reason: &str) -> Verdict {
    let (v, all, ids) = tampered(sql);
    assert!(!v.ok, "{sql}: not detected");
    let b = v.first_broken.clone().unwrap();
    assert_eq!(b.seq, seq, "{sql}: {b:?}");
    assert!(b.reason.contains(reason), "{sql}: {b:?}");
    // The row found at that position: the original one unless rows moved.
    let moved = b.reason.contains("out of order");
    if let (Some(event_id), Some(original), false) =
        (b.event_id, ids.get((seq - 1) as usize), moved)
    {
        assert_eq!(event_id, *original, "{sql}: {b:?}");
    }
    // The other session is unaffected.
    assert_eq!(all.iter().filter(|v| !v.ok).count(), 1, "{all:?}");
    v
}

#[test]
fn an_edited_data_column_is_found() {
    broken_at(
        r#"UPDATE events SET data = '{"method":"GET","n":3,"path":"/v1/messages"}' WHERE session_id = '$S' AND seq = 3"#,
        3,
        "event edited",
    );
}

#[test]
fn an_edited_body_is_found() {
    // A different, valid zstd body.
    let (_dir, path) = store();
    let id = filled(&path, 5);
    let other = zstd::bulk::compress(br#"{"messages":[]}"#, 3).unwrap();
    let conn = second_connection(&path);
    conn.execute(
        "UPDATE events SET body = ?1 WHERE session_id = ?2 AND seq = 2",
        rusqlite::params![other, id],
    )
    .unwrap();
    let v = Reader::open(&path)
        .unwrap()
        .verify(Some(&id))
        .unwrap()
        .remove(0);
    let b = v.first_broken.unwrap();
    assert_eq!(
        (b.seq, b.reason.contains("body edited")),
        (2, true),
        "{b:?}"
    );

    // Garbage instead of zstd.
    broken_at(
        "UPDATE events SET body = x'00112233' WHERE session_id = '$S' AND seq = 4",
        4,
        "decompressed",
    );
    // A body removed, its digest too.
    broken_at(
        "UPDATE events SET body = NULL, body_sha256 = NULL, body_len = NULL WHERE session_id = '$S' AND seq = 1",
        1,
        "event edited",
    );
}

#[test]
fn a_planted_body_bomb_is_refused_not_expanded() {
    // A few KiB of zstd that expands past the limit: reading and verifying
    // stop at MAX_STORED_BODY instead of decompressing it all.
    use crate::audit::store::read::MAX_STORED_BODY;
    let zeros = vec![0u8; (MAX_STORED_BODY + (1 << 20)) as usize];
    let bomb = zstd::bulk::compress(&zeros, 19).unwrap();
    drop(zeros);
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    let hex: String = bomb.iter().map(|b| format!("{b:02x}")).collect();
    broken_at(
        &format!("UPDATE events SET body = x'{hex}' WHERE session_id = '$S' AND seq = 2"),
        2,
        "decompressed",
    );
    let err = super::super::read::unpack(&bomb).unwrap_err().to_string();
    assert!(err.contains("more than 128 MiB"), "{err}");
}

#[test]
fn edited_hashed_columns_are_found() {
    for (column, value) in [
        ("at", "1"),
        ("kind", "'response'"),
        ("request_id", "'req-other'"),
        ("request_id", "NULL"),
        ("text", "'nothing to see'"),
        ("body_sha256", "'00'"),
        ("session_id", "'0000000000000000'"),
    ] {
        let sql = format!("PRAGMA foreign_keys = OFF; UPDATE events SET {column} = {value} WHERE session_id = '$S' AND seq = 2");
        let (v, _, _) = tampered(&sql);
        let b = v
            .first_broken
            .unwrap_or_else(|| panic!("{column}: not detected"));
        assert_eq!(b.seq, 2, "{column}: {b:?}");
    }
}

#[test]
fn a_deleted_middle_event_is_found() {
    let v = broken_at(
        "DELETE FROM events WHERE session_id = '$S' AND seq = 3",
        3,
        "seq 3 missing (event deleted)",
    );
    assert_eq!(v.events, 4);
    assert_eq!(v.first_broken.unwrap().event_id, None);
    broken_at(
        "DELETE FROM events WHERE session_id = '$S' AND seq IN (2, 3)",
        2,
        "seq 2 to 3 missing",
    );
    broken_at(
        "DELETE FROM events WHERE session_id = '$S' AND seq = 1",
        1,
        "seq 1 missing",
    );
}

#[test]
fn a_deleted_last_event_is_found() {
    broken_at(
        "DELETE FROM events WHERE session_id = '$S' AND seq = 5",
        5,
        "last event deleted",
    );
    broken_at(
        "DELETE FROM events WHERE session_id = '$S' AND seq >= 4",
        4,
        "last events deleted",
    );
}

#[test]
fn reordered_rows_are_found() {
    // Swap the seq values of two rows (through a free value: seq is unique).
    let v = broken_at(
        "UPDATE events SET seq = -1 WHERE session_id = '$S' AND seq = 3;
         UPDATE events SET seq = 3 WHERE session_id = '$S' AND seq = 4;
         UPDATE events SET seq = 4 WHERE session_id = '$S' AND seq = -1;",
        3,
        "out of order",
    );
    // Reported at the row now holding seq 3: the 4th one written (ids
    // start at 1 in a fresh store).
    assert_eq!(v.first_broken.unwrap().event_id, Some(4));
    // Swap two rows' data.
    broken_at(
        "UPDATE events SET data = (SELECT data FROM events WHERE session_id = '$S' AND seq = 4)
             WHERE session_id = '$S' AND seq = 3;
         UPDATE events SET data = '{\"method\":\"POST\",\"n\":3,\"path\":\"/v1/messages\"}'
             WHERE session_id = '$S' AND seq = 4;",
        3,
        "event edited",
    );
    // Swap the ids of two rows, all else kept: the chain itself holds, but
    // the rows no longer follow it (export order would be wrong).
    let (v, _, ids) = tampered(
        "CREATE TEMP TABLE t AS SELECT * FROM events WHERE session_id = '$S' AND seq IN (2, 3);
         DELETE FROM events WHERE session_id = '$S' AND seq IN (2, 3);
         INSERT INTO events SELECT (SELECT id FROM t AS o WHERE o.seq <> t.seq), session_id, seq,
             at, kind, request_id, data, text, body, body_len, body_sha256, prev_hash, hash FROM t;",
    );
    let b = v.first_broken.unwrap();
    assert_eq!((b.seq, b.event_id), (3, Some(ids[1])), "{b:?}");
    assert!(b.reason.contains("out of order"), "{b:?}");
}

#[test]
fn an_edited_hash_or_head_is_found() {
    broken_at(
        "UPDATE events SET hash = '0000000000000000000000000000000000000000000000000000000000000000' WHERE session_id = '$S' AND seq = 2",
        2,
        "hash column edited",
    );
    broken_at(
        "UPDATE events SET hash = '0000000000000000000000000000000000000000000000000000000000000000' WHERE session_id = '$S' AND seq = 5",
        5,
        "",
    );
    broken_at(
        "UPDATE events SET prev_hash = hash WHERE session_id = '$S' AND seq = 2",
        2,
        "prev_hash",
    );
    broken_at(
        "UPDATE sessions SET head_seq = 4 WHERE id = '$S'",
        5,
        "head mismatch",
    );
    broken_at(
        "UPDATE sessions SET head_hash = 'ab' WHERE id = '$S'",
        5,
        "head mismatch",
    );
    broken_at("UPDATE sessions SET events = 7 WHERE id = '$S'", 5, "count");
}

#[test]
fn a_rewritten_chain_tail_is_found() {
    // Deleting the last event and fixing the head is still caught when the
    // writer continued after it: a new event is appended after seq 5.
    broken_at(
        "INSERT INTO events (session_id, seq, at, kind, data, prev_hash, hash)
             VALUES ('$S', 6, 0, 'request', '{}', '', '')",
        6,
        "",
    );
}

#[test]
fn a_deleted_session_row_is_found() {
    let (v, all, _) = tampered("PRAGMA foreign_keys = OFF; DELETE FROM sessions WHERE id = '$S'");
    // verify(Some(id)) still finds the orphan events by their exact id.
    assert!(!v.ok);
    let b = v.first_broken.unwrap();
    assert_eq!(b.seq, 0);
    assert!(b.reason.contains("session row missing"), "{b:?}");
    assert_eq!(all.len(), 2);
    assert_eq!(all.iter().filter(|v| !v.ok).count(), 1);
}

#[test]
fn verify_of_an_unknown_session_is_an_error() {
    let (_dir, path) = store();
    filled(&path, 2);
    let reader = Reader::open(&path).unwrap();
    assert!(matches!(
        reader.verify(Some("ffffffffffffffff")),
        Err(Error::NoSuchSession(_))
    ));
}
