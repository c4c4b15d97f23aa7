//! The journal: its records read back as written, segments, records cut
//! short, journals of processes that are gone.

use std::io::Write as _;

use super::*;
use crate::audit::event::Derive;
use crate::audit::store::journal::{self, Journal, Position, Tail};

fn root(path: &std::path::Path) -> PathBuf {
    let root = journal::root(path);
    std::fs::create_dir_all(&root).unwrap();
    root
}

fn read_all(tail: &mut Tail) -> Vec<Event> {
    let mut out = Vec::new();
    loop {
        let batch = tail.read(7).unwrap();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch.into_iter().map(|e| e.event));
    }
}

/// The `n` each test event was made with, in order.
fn numbers(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e.data_value()["n"].as_u64().unwrap())
        .collect()
}

#[test]
fn every_field_reads_back_as_written() {
    let (_dir, path) = store();
    let j = Journal::create(&root(&path), journal::SEGMENT_BYTES).unwrap();
    let r = run("run-fields");
    let mut full = request(&session(&r, Some("agent")), 1);
    full.session.user_agent = Some("claude-cli/2.1 (external, cli)".into());
    full.derive = Some(Derive::MessagesRequest);
    full.body = Some(vec![0, 159, 146, 150, 255].into()); // not UTF-8: bodies are bytes
    let mut bare = Event::new(
        session(&r, None),
        Kind::Egress,
        json!({"host": "h", "port": 443}),
    );
    bare.at_ms = -5;
    j.append(&full, false, true).unwrap();
    j.append(&bare, true, false).unwrap();
    let got = read_all(&mut Tail::new(j.dir(), Position::START, false));
    assert_eq!(got.len(), 2);
    let (a, b) = (&got[0], &got[1]);
    assert_eq!(a.session.run.as_ref(), r.as_ref());
    assert_eq!(a.session.agent_session.as_deref(), Some("agent"));
    assert_eq!(a.session.user_agent, full.session.user_agent);
    assert_eq!((a.at_ms, a.kind), (full.at_ms, Kind::Request));
    assert_eq!(a.request_id, full.request_id);
    assert_eq!(a.data, full.data);
    assert_eq!(a.text, full.text);
    assert_eq!(a.body, full.body);
    assert_eq!(a.derive, Some(Derive::MessagesRequest));
    assert_eq!((b.at_ms, b.kind), (-5, Kind::Egress));
    assert_eq!(b.session.agent_session, None);
    assert_eq!(b.session.user_agent, None);
    assert_eq!(
        (&b.request_id, &b.text, &b.body, b.derive),
        (&None, &None, &None, None)
    );
    assert_eq!(b.data_value(), json!({"host": "h", "port": 443}));
}

/// A journal that copies into a mapping (where this filesystem allows
/// it), and one that writes each record with `pwrite()`.
fn both_kinds(path: &std::path::Path) -> [Journal; 2] {
    let root = root(path);
    [
        Journal::create(&root, journal::SEGMENT_BYTES).unwrap(),
        Journal::create(&root, journal::SEGMENT_BYTES)
            .unwrap()
            .without_mapping(),
    ]
}

#[test]
fn every_event_is_in_the_file_once_appended_in_order() {
    let (_dir, path) = store();
    for j in both_kinds(&path) {
        let s = session(&run("run-order"), Some("a"));
        let mut tail = Tail::new(j.dir(), Position::START, false);
        assert!(read_all(&mut tail).is_empty());
        for n in 1..=3 {
            j.append(&request(&s, n), n == 2, false).unwrap();
            // Read through the file by another handle, not from memory.
            assert_eq!(numbers(&read_all(&mut tail)), [n as u64]);
            assert_eq!(tail.position(), j.end());
        }
        let seg = j.dir().join("00000001.seg");
        let size = std::fs::metadata(&seg).unwrap().len();
        if j.mapped() {
            // The rest of the window is reserved: zeros the reader stops at.
            assert!(size > j.end().offset, "{size}");
        } else {
            assert_eq!(size, j.end().offset);
        }
        drop(j);
        // Closed: the segment is cut to its records.
        assert_eq!(
            std::fs::metadata(&seg).unwrap().len(),
            tail.position().offset
        );
    }
}

#[test]
fn appends_go_through_a_mapping_on_this_filesystem() {
    let (_dir, path) = store();
    let root = root(&path);
    let j = Journal::create(&root, journal::SEGMENT_BYTES).unwrap();
    // What the tests here run on (ext4, XFS or tmpfs); the other kind of
    // filesystem is covered by `without_mapping`.
    let fs = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(&root)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let expected = ["ext2/ext3", "xfs", "tmpfs"].contains(&fs.as_str());
    assert_eq!(j.mapped(), expected, "{fs}");
}

#[test]
fn a_reader_with_a_limit_reads_no_further() {
    let (_dir, path) = store();
    let j = Journal::create(&root(&path), journal::SEGMENT_BYTES).unwrap();
    let s = session(&run("run-limit"), Some("a"));
    j.append(&request(&s, 1), true, false).unwrap();
    let end = j.end();
    j.append(&request(&s, 2), true, false).unwrap();
    let mut tail = Tail::new(j.dir(), Position::START, false);
    tail.limit(end);
    assert_eq!(numbers(&read_all(&mut tail)), [1]);
    tail.limit(j.end());
    assert_eq!(numbers(&read_all(&mut tail)), [2]);
}

#[test]
fn while_the_journal_fails_durable_events_are_refused_and_the_rest_kept_in_order() {
    let (_dir, path) = store();
    for j in both_kinds(&path) {
        let s = session(&run("run-fail"), Some("a"));
        j.append(&request(&s, 1), false, true).unwrap();
        // 2, 3: fail-closed requests, refused, so never recorded. 4: a
        // fail-open request, sent anyway; 5: an answer. Both are kept.
        for (n, durable, keep) in [
            (2, true, false),
            (3, true, false),
            (4, true, true),
            (5, false, true),
        ] {
            j.break_writes().unwrap();
            assert!(j.append(&request(&s, n), durable, keep).is_err(), "{n}");
        }
        let mut tail = Tail::new(j.dir(), Position::START, false);
        assert_eq!(numbers(&read_all(&mut tail)), [1]);
        // The journal works again: what was kept comes first, in order.
        j.break_writes().unwrap();
        assert!(j.flush().is_err());
        assert!(j.flush().unwrap(), "kept events were written");
        assert!(!j.flush().unwrap(), "nothing left to write");
        j.append(&request(&s, 6), true, false).unwrap();
        assert_eq!(numbers(&read_all(&mut tail)), [4, 5, 6]);
    }
}

#[test]
fn segments_roll_over_and_are_deleted_once_read() {
    let (_dir, path) = store();
    let j = Journal::create(&root(&path), 2_000).unwrap();
    let s = session(&run("run-seg"), Some("a"));
    let mut tail = Tail::new(j.dir(), Position::START, false);
    let mut got = Vec::new();
    for n in 0..200 {
        j.append(&request(&s, n), n % 3 == 0, false).unwrap();
        if n % 50 == 0 {
            got.extend(read_all(&mut tail));
        }
    }
    j.flush().unwrap();
    let segments = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".seg")
            })
            .count()
    };
    assert!(j.end().segment > 5, "{:?}", j.end());
    got.extend(read_all(&mut tail));
    assert_eq!(numbers(&got), (0..200).collect::<Vec<_>>());
    assert!(segments(j.dir()) <= 2, "read segments are deleted");

    // A reader that starts at a stored position carries on from there.
    let j2 = Journal::create(&root(&path), 2_000).unwrap();
    for n in 0..60 {
        j2.append(&request(&s, n), true, false).unwrap();
    }
    let mut first = Tail::new(j2.dir(), Position::START, false);
    let mut batch = Vec::new();
    while batch.len() < 25 {
        batch.extend(first.read(5).unwrap());
    }
    let at = batch.last().unwrap().end;
    let rest = read_all(&mut Tail::new(j2.dir(), at, false));
    assert_eq!(rest[0].data_value()["n"].as_u64(), Some(batch.len() as u64));
    assert_eq!(batch.len() + rest.len(), 60);
}

/// A closed journal's first segment, to add bytes to by hand.
fn closed_segment(j: Journal) -> PathBuf {
    let seg = j.dir().join("00000001.seg");
    drop(j);
    seg
}

#[test]
fn a_record_cut_short_waits_while_its_writer_lives_and_is_skipped_after() {
    let (_dir, path) = store();
    let j = Journal::create(&root(&path), journal::SEGMENT_BYTES).unwrap();
    let s = session(&run("run-torn"), Some("a"));
    j.append(&request(&s, 1), true, false).unwrap();
    let dir = j.dir().to_path_buf();
    // Half of a record at the end of the file (a journal of an earlier
    // hoopctl, written with `write()`, whose process was killed inside it).
    let mut rec = Vec::new();
    journal::encode(&request(&s, 2), &mut rec);
    std::fs::OpenOptions::new()
        .append(true)
        .open(closed_segment(j))
        .unwrap()
        .write_all(&rec[..rec.len() / 2])
        .unwrap();
    let mut live = Tail::new(&dir, Position::START, false);
    assert_eq!(read_all(&mut live).len(), 1);
    assert_eq!(live.skipped(), 0, "a live writer may be finishing it");
    let mut gone = Tail::new(&dir, Position::START, true);
    assert_eq!(read_all(&mut gone).len(), 1);
    assert_eq!(gone.skipped(), 1);
}

#[test]
fn a_record_its_writer_died_copying_has_no_length_and_ends_the_records() {
    let (_dir, path) = store();
    let j = Journal::create(&root(&path), journal::SEGMENT_BYTES).unwrap();
    let s = session(&run("run-copying"), Some("a"));
    j.append(&request(&s, 1), true, false).unwrap();
    // What a process killed while copying a record leaves in the reserved
    // zeros: all of it but its length, which is copied last.
    let mut rec = Vec::new();
    journal::encode(&request(&s, 2), &mut rec);
    let seg = std::fs::OpenOptions::new()
        .write(true)
        .open(j.dir().join("00000001.seg"))
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&seg, &rec[4..], j.end().offset + 4).unwrap();
    let mut gone = Tail::new(j.dir(), Position::START, true);
    assert_eq!(numbers(&read_all(&mut gone)), [1]);
    assert_eq!(gone.skipped(), 0, "zeros are not a record");
}

#[test]
fn a_record_that_does_not_decode_is_skipped_and_reading_goes_on() {
    let (_dir, path) = store();
    let j = Journal::create(&root(&path), journal::SEGMENT_BYTES).unwrap();
    let s = session(&run("run-bad"), Some("a"));
    j.append(&request(&s, 1), true, false).unwrap();
    let dir = j.dir().to_path_buf();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(closed_segment(j))
        .unwrap();
    // A whole record whose kind does not exist, then a good one.
    f.write_all(&[
        17, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 4, 0, 0, 0, b'n', b'o', b'p', b'e', 0,
    ])
    .unwrap();
    let mut rec = Vec::new();
    journal::encode(&request(&s, 2), &mut rec);
    f.write_all(&rec).unwrap();
    drop(f);
    let mut tail = Tail::new(&dir, Position::START, false);
    assert_eq!(numbers(&read_all(&mut tail)), [1, 2]);
    assert_eq!(tail.skipped(), 1);
}

#[test]
fn a_journal_whose_writer_was_killed_is_read_up_to_its_reserved_zeros() {
    let (_dir, path) = store();
    let root = root(&path);
    let s = session(&run("run-killed"), Some("agent-killed"));
    let j = Journal::create(&root, journal::SEGMENT_BYTES).unwrap();
    for n in 0..5 {
        j.append(&request(&s, n), true, false).unwrap();
    }
    // The files as `kill -9` leaves them (nothing cut, nothing unlocked),
    // copied while the writer lives, under a journal id of their own.
    let killed = root.join("00000000deadbeef");
    std::fs::create_dir_all(&killed).unwrap();
    for f in ["lock", "runs", "00000001.seg"] {
        std::fs::copy(j.dir().join(f), killed.join(f)).unwrap();
    }
    let seg = std::fs::metadata(killed.join("00000001.seg"))
        .unwrap()
        .len();
    assert!(seg > j.end().offset, "the copy keeps the reserved zeros");
    assert_eq!(recover(&path).unwrap(), 5);
    assert!(!killed.exists());
    let reader = Reader::open(&path).unwrap();
    assert_eq!(stored_numbers(&reader, &s), [0, 1, 2, 3, 4]);
}

#[test]
fn only_journals_whose_writer_is_gone_are_recovered() {
    let (_dir, path) = store();
    let root = root(&path);
    let s = session(&run("run-orphan"), Some("agent-orphan"));
    let live = Journal::create(&root, journal::SEGMENT_BYTES).unwrap();
    let dead = Journal::create(&root, journal::SEGMENT_BYTES).unwrap();
    for n in 0..10 {
        dead.append(&request(&s, n), n == 9, false).unwrap();
    }
    live.append(&request(&s, 100), true, false).unwrap();
    let live_ids: Vec<String> = journal::orphans(&root).into_iter().map(|o| o.id).collect();
    assert!(live_ids.is_empty(), "{live_ids:?}");
    let dead_dir = dead.dir().to_path_buf();
    drop(dead); // its process "dies": the lock goes with it
    assert_eq!(journal::orphans(&root).len(), 1);
    assert_eq!(recover(&path).unwrap(), 10);
    assert!(!dead_dir.exists());
    assert!(live.dir().exists());
    let reader = Reader::open(&path).unwrap();
    let events = reader.events(&s.id()).unwrap();
    assert_eq!(events.len(), 10);
    assert!(reader.verify(None).unwrap()[0].ok);
    // Nothing is indexed twice.
    assert_eq!(recover(&path).unwrap(), 0);
}

#[test]
fn journals_left_half_created_are_removed_once_old_and_unlocked() {
    let (_dir, path) = store();
    let root = root(&path);
    let live = Journal::create(&root, journal::SEGMENT_BYTES).unwrap();
    let age = |dir: &std::path::Path, secs: u64| {
        let when = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
        std::fs::File::open(dir)
            .unwrap()
            .set_modified(when)
            .unwrap();
    };
    // What a process that died inside `create` leaves: the hidden name,
    // a lock nobody holds, an empty segment.
    let dead = root.join(".0123456789abcdef");
    std::fs::create_dir_all(&dead).unwrap();
    for f in ["lock", "runs", "00000001.seg"] {
        std::fs::write(dead.join(f), b"").unwrap();
    }
    age(&dead, 120);
    // One that died before even its lock file.
    let bare = root.join(".fedcba9876543210");
    std::fs::create_dir_all(&bare).unwrap();
    age(&bare, 120);
    // One being created right now (recent), and an old one whose creator
    // still holds the lock: both stay.
    let fresh = root.join(".00000000000000ff");
    std::fs::create_dir_all(&fresh).unwrap();
    let held = root.join(".00000000000000ee");
    std::fs::create_dir_all(&held).unwrap();
    std::fs::write(held.join("lock"), b"").unwrap();
    let lock = nix::fcntl::Flock::lock(
        std::fs::File::open(held.join("lock")).unwrap(),
        nix::fcntl::FlockArg::LockExclusiveNonblock,
    )
    .map_err(|(_, e)| e)
    .unwrap();
    age(&held, 120);

    assert!(journal::orphans(&root).is_empty());
    assert!(!dead.exists(), "an abandoned half-created journal stays");
    assert!(!bare.exists());
    assert!(fresh.exists(), "a journal being created was removed");
    assert!(held.exists(), "a locked journal was removed");
    assert!(live.dir().exists());
    drop(lock);
}

#[test]
fn derived_fields_are_filled_when_indexed() {
    let (_dir, path) = store();
    let writer = Writer::start(&path, WriterOptions::default()).unwrap();
    let s = session(&run("run-derive"), Some("a"));
    let mut ev = Event::new(s.clone(), Kind::Request, json!({"path": "/v1/messages"}));
    ev.body = Some(
        br#"{"model":"claude-x","stream":true,"messages":[{"role":"user","content":"never DROP TABLE users"}]}"#
            .to_vec()
            .into(),
    );
    ev.derive = Some(Derive::MessagesRequest);
    writer.append_durable(ev).unwrap();
    writer.close();
    let reader = Reader::open(&path).unwrap();
    let got = &reader.events(&s.id()).unwrap()[0];
    assert_eq!(got.data["model"], "claude-x");
    assert_eq!(got.data["stream"], true);
    assert_eq!(got.data["messages"], 1);
    assert_eq!(got.text.as_deref(), Some("never DROP TABLE users"));
    assert_eq!(reader.search("DROP TABLE", false, 10).unwrap().len(), 1);
    assert!(reader.verify(None).unwrap()[0].ok);
}
