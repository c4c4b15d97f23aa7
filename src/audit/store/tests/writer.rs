//! The writer: concurrency, durability, batching, failures, restarts.

use std::collections::HashMap;

use super::*;

#[test]
fn concurrent_sessions_are_complete_contiguous_and_verify() {
    let (_dir, path) = store();
    let writer = Writer::start(
        &path,
        WriterOptions {
            max_batch: 64,
            // Many segments, so the indexer moves across them under load.
            segment_bytes: 16 * 1024,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    let runs = [run("run-a"), run("run-b")];
    // 10 sessions, each written by every thread at once.
    let sessions: Vec<SessionRef> = (0..10)
        .map(|i| session(&runs[i % 2], Some(&format!("agent-{i}"))))
        .collect();
    let threads = 4;
    let per_thread = 1_000;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let writer = writer.clone();
            let sessions = &sessions;
            scope.spawn(move || {
                for i in 0..per_thread {
                    let mut ev = request(&sessions[(i + t) % sessions.len()], t * per_thread + i);
                    if i % 3 == 0 {
                        ev.body = None;
                    }
                    writer.append(ev).unwrap();
                }
            });
        }
    });
    writer.flush_blocking().unwrap();
    assert_eq!(writer.failing(), None);

    let reader = Reader::open(&path).unwrap();
    let mut seen_n = std::collections::HashSet::new();
    let mut total = 0;
    for s in &sessions {
        let events = reader.events(&s.id()).unwrap();
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=events.len() as i64).collect::<Vec<_>>());
        for e in &events {
            assert!(seen_n.insert(e.data["n"].as_u64().unwrap()));
        }
        let summary = reader.resolve(&s.id()).unwrap();
        assert_eq!(summary.events, events.len() as i64);
        assert_eq!(summary.requests, events.len() as i64);
        total += events.len();
    }
    assert_eq!(total, threads * per_thread);
    let verdicts = reader.verify(None).unwrap();
    assert_eq!(verdicts.len(), sessions.len());
    assert!(verdicts.iter().all(|v| v.ok), "{verdicts:?}");
    assert_eq!(writer.stats().events, (threads * per_thread) as u64);
    writer.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_durable_is_in_the_journal_at_once_and_flush_indexes_it() {
    let (_dir, path) = store();
    let writer = Writer::start(&path, WriterOptions::default()).unwrap();
    let mut committed = writer.committed();
    assert_eq!(*committed.borrow_and_update(), 0);
    let s = session(&run("run-d"), Some("agent-d"));
    let journal = journal_dir(&path);
    for n in 0..20 {
        let before = journal_records(&journal);
        writer.append_durable(request(&s, n)).unwrap();
        // In the file when the call returns, without waiting for the index.
        assert!(journal_records(&journal) > before);
    }
    writer.flush().await.unwrap();
    let other = second_connection(&path);
    for n in 0..20 {
        let (id, seq): (i64, i64) = other
            .query_row(
                "SELECT id, seq FROM events WHERE request_id = ?1",
                [format!("req-{n}")],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(seq, n as i64 + 1);
        assert!(*committed.borrow_and_update() >= id);
    }
    writer.close();
    // Everything indexed: the journal is gone.
    assert!(!journal.exists(), "{}", journal.display());
    assert!(matches!(
        writer.append_durable(request(&s, 99)),
        Err(Error::Closed)
    ));
    assert!(matches!(writer.flush().await, Err(Error::Closed)));
}

#[test]
fn durable_appends_from_threads_at_once_are_each_in_the_journal_when_they_return() {
    let (_dir, path) = store();
    let writer = Writer::start(&path, WriterOptions::default()).unwrap();
    let journal = journal_dir(&path);
    let sessions: Vec<_> = (0..4)
        .map(|t| session(&run("run-threads"), Some(&format!("agent-{t}"))))
        .collect();
    std::thread::scope(|scope| {
        for s in &sessions {
            let (writer, journal) = (&writer, &journal);
            scope.spawn(move || {
                for n in 0..300 {
                    let before = journal_records(journal);
                    writer.append_durable(request(s, n)).unwrap();
                    // In the file (read by another handle) once it returns.
                    assert!(journal_records(journal) > before);
                }
            });
        }
    });
    writer.flush_blocking().unwrap();
    let reader = Reader::open(&path).unwrap();
    for s in &sessions {
        let ns = stored_numbers(&reader, s);
        assert_eq!(ns, (0..300).collect::<Vec<_>>(), "each thread's order kept");
    }
    assert!(reader.verify(None).unwrap().iter().all(|v| v.ok));
}

/// The one journal directory of the store at `path`.
fn journal_dir(path: &std::path::Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(crate::audit::store::journal::root(path))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// Records in a journal, read through its files.
fn journal_records(dir: &std::path::Path) -> usize {
    use crate::audit::store::journal::{Position, Tail};
    let mut tail = Tail::new(dir, Position::START, false);
    let mut n = 0;
    loop {
        match tail.read(1000).unwrap().len() {
            0 => return n,
            k => n += k,
        }
    }
}

#[test]
fn queued_events_share_one_transaction() {
    let (_dir, path) = store();
    let writer = Writer::start(&path, WriterOptions::default()).unwrap();
    let s = session(&run("run-g"), Some("agent-g"));
    writer.append(request(&s, 0)).unwrap();
    writer.flush_blocking().unwrap();
    // Hold the write lock so the writer stalls and the queue fills.
    let blocker = second_connection(&path);
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    for n in 1..=300 {
        writer.append(request(&s, n)).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    blocker.execute_batch("COMMIT").unwrap();
    writer.flush_blocking().unwrap();
    let stats = writer.stats();
    assert_eq!(stats.events, 301);
    assert!(stats.largest_batch >= 100, "{stats:?}");
    assert!(stats.batches < 100, "{stats:?}");
    let reader = Reader::open(&path).unwrap();
    assert_eq!(reader.events(&s.id()).unwrap().len(), 301);
    assert!(reader.verify(None).unwrap()[0].ok);
}

/// Bytes zstd cannot shrink.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_keeps_events_in_the_journal_until_it_has_room() {
    let (_dir, path) = store();
    let writer = Writer::start(&path, WriterOptions::default()).unwrap();
    let s = session(&run("run-full"), Some("agent-full"));
    for n in 0..3 {
        writer.append_durable(request(&s, n)).unwrap();
    }
    writer.flush().await.unwrap();
    // SQLite raises a limit below the file's size to its size: no growth.
    writer.set_max_page_count(1).unwrap();
    let mut big = request(&s, 100);
    big.body = Some(noise(256 * 1024, 7).into());
    // Recording still works: the journal takes it.
    writer.append_durable(big).unwrap();
    let err = writer.flush().await.unwrap_err();
    assert!(matches!(err, Error::Write { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("full") && msg.contains(FILE_NAME), "{msg}");
    assert_eq!(writer.failing(), None, "the journal is fine");
    assert!(writer.stats().failed_batches >= 1);
    writer.append(request(&s, 4)).unwrap();
    assert!(writer.flush().await.is_err());

    writer.set_max_page_count(1_073_741_823).unwrap();
    writer.flush().await.unwrap();
    let reader = Reader::open(&path).unwrap();
    let events = reader.events(&s.id()).unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(events[3].body.as_ref().map(Vec::len), Some(256 * 1024));
    assert_eq!(events[4].data["n"], 4);
    assert!(reader.verify(None).unwrap().iter().all(|v| v.ok));
    assert_eq!(reader.resolve(&s.id()).unwrap().events, 5);
}

#[test]
fn a_page_limit_from_the_start_fills_the_store_mid_run() {
    let (_dir, path) = store();
    drop(open(&path).unwrap());
    let pages: i64 = open(&path)
        .unwrap()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    let opts = WriterOptions {
        max_page_count: Some(pages + 40),
        ..WriterOptions::default()
    };
    let writer = Writer::start(&path, opts).unwrap();
    let s = session(&run("run-limit"), Some("agent-limit"));
    let mut stored = 0;
    let mut appended = 0;
    for n in 0..100 {
        let mut ev = request(&s, n);
        ev.body = Some(noise(8 * 1024, n as u64 + 1).into());
        writer.append(ev).unwrap();
        appended += 1;
        match writer.flush_blocking() {
            Ok(()) => stored += 1,
            Err(e) => {
                assert!(e.to_string().contains("full"), "{e}");
                break;
            }
        }
    }
    assert!(stored > 5 && appended == stored + 1, "stored {stored}");
    writer.close();
    let reader = Reader::open(&path).unwrap();
    assert_eq!(reader.events(&s.id()).unwrap().len(), stored);
    assert!(reader.verify(None).unwrap()[0].ok);
    // The journal outlives the writer; once the process lets go of it, the
    // next reader indexes the rest (here without the page limit).
    drop(writer);
    assert_eq!(recover(&path).unwrap(), 1);
    assert_eq!(reader.events(&s.id()).unwrap().len(), appended);
    assert!(reader.verify(None).unwrap()[0].ok);
    assert_eq!(
        std::fs::read_dir(crate::audit::store::journal::root(&path))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn writer_futures_can_be_spawned() {
    fn send<T: Send>(_: &T) {}
    let (_dir, path) = store();
    let writer = Writer::start(&path, WriterOptions::default()).unwrap();
    send(&writer.flush());
}

#[test]
fn a_read_only_store_fails_and_recovers() {
    let (_dir, path) = store();
    let writer = Writer::start(&path, WriterOptions::default()).unwrap();
    let s = session(&run("run-ro"), Some("agent-ro"));
    writer.append(request(&s, 0)).unwrap();
    writer.flush_blocking().unwrap();
    writer.set_query_only(true).unwrap();
    writer.append(request(&s, 1)).unwrap();
    let err = writer.flush_blocking().unwrap_err();
    assert!(err.to_string().contains("readonly"), "{err}");
    writer.set_query_only(false).unwrap();
    writer.append(request(&s, 2)).unwrap();
    writer.flush_blocking().unwrap();
    let reader = Reader::open(&path).unwrap();
    let events = reader.events(&s.id()).unwrap();
    // Nothing was lost while the database refused writes.
    assert_eq!(
        events
            .iter()
            .map(|e| e.data["n"].as_u64())
            .collect::<Vec<_>>(),
        vec![Some(0), Some(1), Some(2)]
    );
    assert!(reader.verify(None).unwrap()[0].ok);
}

#[test]
fn a_restarted_writer_continues_the_chain() {
    let (_dir, path) = store();
    let r = run("run-re");
    let s = session(&r, Some("agent-re"));
    for round in 0..3 {
        let writer = Writer::start(&path, WriterOptions::default()).unwrap();
        for n in 0..4 {
            writer.append(request(&s, round * 10 + n)).unwrap();
        }
        writer.close();
        assert!(matches!(writer.append(request(&s, 0)), Err(Error::Closed)));
        assert!(matches!(writer.flush_blocking(), Err(Error::Closed)));
    }
    let reader = Reader::open(&path).unwrap();
    let events = reader.events(&s.id()).unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=12).collect::<Vec<_>>()
    );
    assert!(reader.verify(None).unwrap()[0].ok);
}

#[test]
fn dropping_the_last_handle_commits_what_was_queued() {
    let (_dir, path) = store();
    let s = session(&run("run-drop"), None);
    {
        let writer = Writer::start(&path, WriterOptions::default()).unwrap();
        let clone = writer.clone();
        for n in 0..500 {
            clone.append(request(&s, n)).unwrap();
        }
        drop(writer);
        // The clone keeps it running.
        clone.append(request(&s, 500)).unwrap();
    }
    let reader = Reader::open(&path).unwrap();
    assert_eq!(reader.events(&s.id()).unwrap().len(), 501);
}

#[test]
fn sessions_keep_run_meta_user_agent_and_counts() {
    let (_dir, path) = store();
    let writer = Writer::start(&path, WriterOptions::default()).unwrap();
    let r = run("run-meta");
    let mut s = session(&r, Some("agent-meta"));
    writer.append(request(&s, 0)).unwrap();
    s.user_agent = Some("claude-cli/2.1.330 (external, cli)".into());
    let kinds = [
        (Kind::Request, json!({})),
        (Kind::Response, json!({"status": 200})),
        (
            Kind::ToolCall,
            json!({"tool": "Bash", "decision": "allowed"}),
        ),
        (
            Kind::ToolCall,
            json!({"tool": "Bash", "decision": "blocked"}),
        ),
        (Kind::Decision, json!({"approved": false, "by": "timeout"})),
        (
            Kind::Egress,
            json!({"host": "evil.example", "decision": "denied"}),
        ),
        (Kind::Error, json!({"status": 502})),
    ];
    for (kind, data) in kinds {
        writer.append(Event::new(s.clone(), kind, data)).unwrap();
    }
    s.user_agent = Some("something-else/1".into());
    writer.append(request(&s, 9)).unwrap();
    writer.close();

    let reader = Reader::open(&path).unwrap();
    let got = reader.resolve(&s.id()).unwrap();
    assert_eq!(got.run_id, "run-meta");
    assert_eq!(got.agent_session.as_deref(), Some("agent-meta"));
    assert_eq!(got.user.as_deref(), Some("ana@example.com"));
    assert_eq!(got.mode, "direct");
    assert_eq!(got.profile, "default");
    assert_eq!(got.run_started_at_ms, 1_700_000_000_000);
    // The first user agent seen is kept.
    assert_eq!(
        got.user_agent.as_deref(),
        Some("claude-cli/2.1.330 (external, cli)")
    );
    assert_eq!(
        (
            got.events,
            got.requests,
            got.tool_calls,
            got.blocked,
            got.errors
        ),
        (9, 3, 2, 3, 1)
    );
    assert!(got.started_at_ms <= got.last_at_ms);
}

#[test]
fn many_writers_on_one_file_keep_their_own_chains() {
    // Two proxies (two runs) writing the same file at once.
    let (_dir, path) = store();
    drop(open(&path).unwrap());
    let mut ids = HashMap::new();
    std::thread::scope(|scope| {
        for name in ["run-x", "run-y"] {
            let path = &path;
            let s = session(&run(name), Some("shared-agent"));
            ids.insert(name, s.id());
            scope.spawn(move || {
                let writer = Writer::start(path, WriterOptions::default()).unwrap();
                for n in 0..300 {
                    writer.append(request(&s, n)).unwrap();
                }
                writer.close();
            });
        }
    });
    let reader = Reader::open(&path).unwrap();
    for id in ids.values() {
        assert_eq!(reader.events(id).unwrap().len(), 300);
    }
    assert!(reader.verify(None).unwrap().iter().all(|v| v.ok));
    // Same agent session in two runs: resolving it is ambiguous.
    let err = reader.resolve("shared-agent").unwrap_err();
    assert!(matches!(err, Error::Ambiguous { ref candidates, .. } if candidates.len() == 2));
}

const CHILD_DB: &str = "HOOPCTL_AUDIT_TEST_CHILD_DB";

/// The child of [`kill_9_loses_nothing_acknowledged`]: records durably
/// and says so after each, until it is killed.
#[test]
#[ignore = "a child process of kill_9_loses_nothing_acknowledged"]
fn child_records_until_killed() {
    let Ok(path) = std::env::var(CHILD_DB) else {
        return;
    };
    let writer = Writer::start(std::path::Path::new(&path), WriterOptions::default()).unwrap();
    let s = session(&run("run-kill"), Some("agent-kill"));
    let mut big = request(&s, 0);
    big.body = Some(noise(64 * 1024, 3).into());
    for n in 0.. {
        // Some fire-and-forget traffic in between, as the proxy makes.
        for _ in 0..5 {
            writer.append(big.clone()).unwrap();
        }
        writer.append_durable(request(&s, n)).unwrap();
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "acked {n}").unwrap();
        out.flush().unwrap();
    }
}

#[cfg(unix)]
#[test]
fn kill_9_loses_nothing_acknowledged() {
    use std::io::BufRead as _;
    let (_dir, path) = store();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "audit::store::tests::writer::child_records_until_killed",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut last_acked = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("acked ") {
            let n: i64 = n.trim().parse().unwrap();
            last_acked = Some(n);
            if n >= 60 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let last_acked = last_acked.expect("the child never acknowledged an event");
    // What a reader does first: index the journal the dead process left.
    assert!(recover(&path).unwrap() > 0);
    let reader = Reader::open(&path).unwrap();
    let s = reader.resolve("agent-kill").unwrap();
    let acked: Vec<i64> = reader
        .events(&s.id)
        .unwrap()
        .iter()
        .filter(|e| e.kind == "request" && e.body.as_ref().is_some_and(|b| b.len() < 1024))
        .map(|e| e.data["n"].as_i64().unwrap())
        .collect();
    assert!(
        acked.len() as i64 > last_acked,
        "acknowledged up to {last_acked}, found {acked:?}"
    );
    assert_eq!(
        acked[..=last_acked as usize],
        (0..=last_acked).collect::<Vec<_>>()[..]
    );
    assert!(reader.verify(None).unwrap().iter().all(|v| v.ok));
}

#[test]
fn a_journal_that_takes_writes_again_is_no_longer_failing() {
    let (_dir, path) = store();
    let writer = Writer::start(&path, WriterOptions::default()).unwrap();
    let s = session(&run("run-heal"), Some("agent-heal"));
    writer.append_durable(request(&s, 0)).unwrap();
    writer.journal().break_writes().unwrap();
    let err = writer.append_durable(request(&s, 1)).unwrap_err();
    assert!(matches!(err, Error::Write { .. }), "{err:?}");
    assert!(writer.failing().is_some());
    // No request comes; an answer is appended (the segment opened again):
    // that alone says writes work again.
    writer.append(request(&s, 2)).unwrap();
    assert_eq!(writer.failing(), None);
    writer.flush_blocking().unwrap();
    let reader = Reader::open(&path).unwrap();
    assert_eq!(
        stored_numbers(&reader, &s),
        [0, 2],
        "the refused one is not recorded, the answer is"
    );
}
