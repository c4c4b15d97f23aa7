//! The writer: the journal on the caller's thread, and one indexer thread
//! that turns the journal into the database.
//!
//! [`Writer::append_durable`] costs the caller an encoding and a copy into
//! the journal's mapped file ([`super::journal`]), no system call; once it
//! returns, the event survives `kill -9`. The indexer thread, at the
//! lowest CPU priority so it takes only what the proxy leaves, reads the
//! journal and does the rest in large transactions: derived fields,
//! canonical JSON, the per-session hash chains, zstd, the rows and the
//! search index, and the journal position
//! reached (in the same transaction, so nothing is indexed twice). While
//! the proxy is busy (more than [`BUSY_EVENTS_PER_TICK`] events in a tick,
//! far beyond what agents make) indexing waits, for at most [`MAX_DEFER`],
//! and catches up when the load eases: the index lags, nothing is lost.
//! [`Writer::flush`] never waits for that.
//!
//! Journals of processes that died (`kill -9`, a crash) are indexed by the
//! next writer that starts, or by [`recover`] (what `hoopctl sessions`
//! runs first).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use tokio::sync::watch;

use super::chain::{self, hex, unhex32, Prepared};
use super::journal::{self, Journal, Orphan, Position, Tail};
use super::{lock, Error};
use crate::audit::event::{now_ms, Kind, Record};

/// Tuning for [`Writer::start`].
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Most events indexed in one transaction.
    pub max_batch: usize,
    /// Size at which a journal segment is closed and the next begun.
    pub segment_bytes: u64,
    /// Test hook: `PRAGMA max_page_count` for the indexer's connection
    /// from the start, so a store can be made to fill up ("database or
    /// disk is full") after a known amount of writing. `None` in
    /// production.
    #[doc(hidden)]
    pub max_page_count: Option<i64>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            max_batch: 2_048,
            segment_bytes: journal::SEGMENT_BYTES,
            max_page_count: None,
        }
    }
}

/// What the indexer has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WriterStats {
    /// Events indexed (committed to the database).
    pub events: u64,
    /// Transactions committed.
    pub batches: u64,
    /// Most events committed in one transaction.
    pub largest_batch: u64,
    /// Transactions that failed (their events stay in the journal and are
    /// indexed again).
    pub failed_batches: u64,
}

/// How often the indexer looks at the journal when nobody asks it to.
const TICK: Duration = Duration::from_millis(25);

/// More events than this appended in one tick means the proxy is busy:
/// indexing waits (the journal holds everything meanwhile) so that it does
/// not take CPU from traffic. Agents' traffic is far below this.
const BUSY_EVENTS_PER_TICK: u64 = 200;

/// Longest that indexing waits for a busy proxy; after that it indexes
/// alongside the traffic, so the index never falls behind for longer.
const MAX_DEFER: Duration = Duration::from_secs(30);

/// Longest pause between attempts while the database cannot be written.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How often the WAL is folded into the database, off the indexer thread.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The writer of an audit store: a journal and its indexer thread.
/// Cloning is cheap; [`Writer::close`] (or dropping the last handle)
/// indexes what is left, removes the journal and stops the thread.
#[derive(Clone)]
pub struct Writer {
    inner: Arc<Inner>,
}

struct Inner {
    journal: Arc<Journal>,
    path: PathBuf,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
    /// Dropped with the last handle: the checkpointer then stops.
    _checkpoints: mpsc::Sender<()>,
}

struct Shared {
    /// The last journal write error while writes fail.
    failing: Mutex<Option<String>>,
    failing_now: AtomicBool,
    sync: Mutex<Sync>,
    changed: Condvar,
    committed: watch::Sender<i64>,
    stats: Mutex<WriterStats>,
}

/// A test hook's `PRAGMA name = value` for the indexer's connection, and
/// where its result goes.
type Pragma = (&'static str, i64, mpsc::SyncSender<Result<(), Error>>);

/// Why the indexer thread woke up.
struct Wake {
    /// Somebody waits for the index.
    kicked: bool,
    closing: bool,
    pragmas: Vec<Pragma>,
}

/// What the indexer thread and those waiting on it share.
#[derive(Default)]
struct Sync {
    /// Where indexing has got to in the writer's own journal.
    done: Position,
    /// Failed attempts so far, and the last error.
    failures: u64,
    last_error: Option<String>,
    /// Somebody waits: index now rather than at the next tick.
    kick: bool,
    closing: bool,
    stopped: bool,
    pragmas: Vec<Pragma>,
}

/// Folds the WAL into the database from its own connection (a PASSIVE
/// checkpoint never blocks the indexer), so commits stay short.
fn checkpointer(path: PathBuf, stop: mpsc::Receiver<()>) {
    let conn = match super::open(&path) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "audit checkpointer could not open the store");
            return;
        }
    };
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "audit checkpoint");
        }
    }
    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
}

/// Indexes the journals of processes that are gone (killed, crashed)
/// into the store at `path`; returns how many events that added. What a
/// reader runs first, so that it sees everything that was recorded.
pub fn recover(path: &Path) -> Result<u64, Error> {
    // Journals are only read from a directory nobody else can plant in.
    crate::paths::check_path(&journal::root(path), crate::paths::Trust::Dir)?;
    let orphans = journal::orphans(&journal::root(path));
    if orphans.is_empty() {
        return Ok(0);
    }
    let mut ix = Indexer::new(super::open(path)?, path, WriterOptions::default().max_batch);
    ix.index_orphans(orphans, &mut |_| {})
}

impl Writer {
    /// Opens (creating and migrating) the store at `path`, creates this
    /// writer's journal next to it and starts the indexer thread (which
    /// first indexes journals left by processes that died).
    pub fn start(path: &Path, opts: WriterOptions) -> Result<Writer, Error> {
        let conn = super::open(path)?;
        // Checkpoints run on their own thread (see `checkpointer`).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        if let Some(pages) = opts.max_page_count {
            conn.pragma_update(None, "max_page_count", pages)?;
        }
        let max_id: i64 =
            conn.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))?;
        // One more run known to the marker `sessions verify` checks.
        super::marker::run_started(path, &conn)?;
        let root = journal::root(path);
        let journal = Arc::new(
            Journal::create(&root, opts.segment_bytes)
                .map_err(|source| Error::Create { path: root, source })?,
        );
        if !journal.mapped() {
            tracing::info!(dir = %journal.dir().display(),
                "the audit journal's filesystem is not one hoopctl maps into memory safely (ext4, XFS, tmpfs): each event costs one pwrite()");
        }
        let shared = Arc::new(Shared {
            failing: Mutex::new(None),
            failing_now: AtomicBool::new(false),
            sync: Mutex::new(Sync {
                done: Position::START,
                ..Sync::default()
            }),
            changed: Condvar::new(),
            committed: watch::channel(max_id).0,
            stats: Mutex::new(WriterStats::default()),
        });
        let ix = Indexer::new(conn, path, opts.max_batch.max(1));
        let source = Source {
            id: journal.id().to_string(),
            tail: Tail::new(journal.dir(), Position::START, false),
        };
        let thread = {
            let (journal, shared) = (journal.clone(), shared.clone());
            std::thread::Builder::new()
                .name("hoopctl-audit".into())
                .spawn(move || index_thread(ix, source, journal, shared))
                .map_err(|source| Error::Create {
                    path: path.to_path_buf(),
                    source,
                })?
        };
        let (checkpoints, stop) = mpsc::channel();
        let cp_path = path.to_path_buf();
        let _ = std::thread::Builder::new()
            .name("hoopctl-audit-checkpoint".into())
            .spawn(move || checkpointer(cp_path, stop));
        Ok(Writer {
            inner: Arc::new(Inner {
                journal,
                path: path.to_path_buf(),
                shared,
                thread: Mutex::new(Some(thread)),
                closed: AtomicBool::new(false),
                _checkpoints: checkpoints,
            }),
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Records `ev`. `Err(Closed)` after [`Writer::close`]; `Err(Write)`
    /// when the journal cannot take it (it is then kept for the next
    /// append that works).
    pub fn append(&self, ev: impl Record) -> Result<(), Error> {
        self.write(&ev, false, true)
    }

    /// Records `ev` in the journal before returning: once `Ok`, it
    /// survives `kill -9` of this process. What the proxy does before it
    /// forwards a request. `Err(Write)` when the journal cannot take it;
    /// the event is then not recorded at all.
    pub fn append_durable(&self, ev: impl Record) -> Result<(), Error> {
        self.write(&ev, true, false)
    }

    /// [`Writer::append_durable`], except that an event the journal cannot
    /// take now is kept and written with the next append that works (for
    /// traffic that goes on while the store fails).
    pub fn append_durable_or_later(&self, ev: impl Record) -> Result<(), Error> {
        self.write(&ev, true, true)
    }

    fn write(&self, ev: &dyn Record, durable: bool, keep: bool) -> Result<(), Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let result = self.inner.journal.append(ev, durable, keep);
        self.inner
            .shared
            .journal_result(&self.inner.path, result.map(|()| true))
    }

    /// Waits until everything recorded before this call is indexed.
    /// `Err(Write)` when the journal or the database cannot be written
    /// (what is in the journal is indexed later).
    pub async fn flush(&self) -> Result<(), Error> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.flush_blocking())
            .await
            .map_err(|_| Error::Closed)?
    }

    /// [`Writer::flush`] for threads outside an async runtime.
    pub fn flush_blocking(&self) -> Result<(), Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let shared = &self.inner.shared;
        shared.journal_result(&self.inner.path, self.inner.journal.flush())?;
        let target = self.inner.journal.end();
        let mut s = lock(&shared.sync);
        let failures = s.failures;
        s.kick = true;
        shared.changed.notify_all();
        loop {
            if s.done >= target {
                return Ok(());
            }
            if s.failures > failures {
                return Err(Error::Write {
                    path: self.inner.path.clone(),
                    message: s.last_error.clone().unwrap_or_default(),
                });
            }
            if s.stopped {
                return Err(Error::Closed);
            }
            s = shared
                .changed
                .wait(s)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// The last journal write error while the journal cannot be written
    /// (e.g. "No space left on device", "File too large"); `None` again
    /// after a write works.
    pub fn failing(&self) -> Option<String> {
        lock(&self.inner.shared.failing).clone()
    }

    /// The highest indexed event id (`events.id`), updated after every
    /// commit: a shipper waits on `changed()` and then reads
    /// [`super::Reader::events_after`] its cursor. Starts at the highest id
    /// already in the file.
    pub fn committed(&self) -> watch::Receiver<i64> {
        self.inner.shared.committed.subscribe()
    }

    /// Counters of the indexer (events and transactions committed, largest
    /// batch, failures).
    pub fn stats(&self) -> WriterStats {
        *lock(&self.inner.shared.stats)
    }

    /// Indexes what is left, removes the journal (when all of it is in the
    /// database) and stops the thread; waits for it. Later calls on any
    /// clone return `Err(Closed)`.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Test hook: `PRAGMA max_page_count` on the indexer's connection (a
    /// small value makes indexing fail with "database or disk is full";
    /// SQLite raises a value below the file's size to its size).
    #[doc(hidden)]
    pub fn set_max_page_count(&self, pages: i64) -> Result<(), Error> {
        self.pragma("max_page_count", pages)
    }

    #[cfg(test)]
    pub(crate) fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    /// Test hook: `PRAGMA query_only` on the indexer's connection (makes
    /// indexing fail with "attempt to write a readonly database").
    #[doc(hidden)]
    pub fn set_query_only(&self, on: bool) -> Result<(), Error> {
        self.pragma("query_only", i64::from(on))
    }

    fn pragma(&self, name: &'static str, value: i64) -> Result<(), Error> {
        let (tx, rx) = mpsc::sync_channel(1);
        {
            let mut s = lock(&self.inner.shared.sync);
            if s.stopped {
                return Err(Error::Closed);
            }
            s.pragmas.push((name, value, tx));
            s.kick = true;
        }
        self.inner.shared.changed.notify_all();
        rx.recv().map_err(|_| Error::Closed)?
    }
}

impl Shared {
    /// Keeps `failing` up to date after a journal append or flush
    /// (`Ok(true)`: something was written, so writes work); logs the change.
    fn journal_result(&self, path: &Path, result: std::io::Result<bool>) -> Result<(), Error> {
        match result {
            Ok(wrote) => {
                if wrote && self.failing_now.load(Ordering::Relaxed) {
                    self.failing_now.store(false, Ordering::Relaxed);
                    if let Some(was) = lock(&self.failing).take() {
                        tracing::info!(path = %path.display(), error = %was, "the audit journal is writable again");
                    }
                }
                Ok(())
            }
            Err(e) => {
                let message = e.to_string();
                self.failing_now.store(true, Ordering::Relaxed);
                let previous = lock(&self.failing).replace(message.clone());
                if previous.as_deref() != Some(message.as_str()) {
                    tracing::warn!(path = %path.display(), error = %message, "cannot write the audit journal");
                }
                Err(Error::Write {
                    path: path.to_path_buf(),
                    message,
                })
            }
        }
    }

    /// Waits for a kick, closing or `timeout`.
    fn wait(&self, timeout: Duration) -> Wake {
        let mut s = lock(&self.sync);
        if !s.kick && !s.closing {
            s = self
                .changed
                .wait_timeout(s, timeout)
                .map(|(g, _)| g)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
        Wake {
            kicked: std::mem::take(&mut s.kick),
            closing: s.closing,
            pragmas: std::mem::take(&mut s.pragmas),
        }
    }

    fn indexed(&self, n: usize, last_id: i64) {
        {
            let mut stats = lock(&self.stats);
            stats.events += n as u64;
            stats.batches += 1;
            stats.largest_batch = stats.largest_batch.max(n as u64);
        }
        self.committed.send_if_modified(|v| {
            let newer = last_id > *v;
            if newer {
                *v = last_id;
            }
            newer
        });
    }

    fn progress(&self, done: Position) {
        let mut s = lock(&self.sync);
        if s.last_error.take().is_some() {
            tracing::info!("the audit store is writable again; the journal is being indexed");
        }
        s.done = done;
        self.changed.notify_all();
    }

    fn failed(&self, path: &Path, message: String) {
        lock(&self.stats).failed_batches += 1;
        let mut s = lock(&self.sync);
        s.failures += 1;
        if s.last_error.as_deref() != Some(message.as_str()) {
            tracing::warn!(path = %path.display(), error = %message,
                "cannot index the audit journal into the store; the events stay in the journal and are indexed once it can");
        }
        s.last_error = Some(message);
        self.changed.notify_all();
    }
}

impl Inner {
    fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            lock(&self.shared.sync).closing = true;
            self.shared.changed.notify_all();
            if thread.join().is_err() {
                tracing::error!(path = %self.path.display(), "the audit indexer thread panicked");
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.close();
    }
}

/// The lowest CPU priority for the calling thread: indexing takes only
/// the time the proxy leaves (Linux sets nice values per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
        tracing::debug!(error = %e, "could not lower the audit indexer's priority");
    }
}

fn index_thread(mut ix: Indexer, mut own: Source, journal: Arc<Journal>, shared: Arc<Shared>) {
    lower_priority();
    let orphans = journal::orphans(&journal::root(&ix.path));
    if !orphans.is_empty() {
        match ix.index_orphans(orphans, &mut |(n, id)| shared.indexed(n, id)) {
            Ok(n) if n > 0 => {
                tracing::info!(
                    events = n,
                    "indexed audit journals left by hoopctl processes that stopped"
                )
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not index audit journals left by stopped processes")
            }
        }
    }
    // The marker (see `marker`): the last id committed, and when the
    // marker last took it.
    let (mut last_committed, mut marked) = (0i64, std::time::Instant::now());
    let mark = |ix: &Indexer, id: i64| {
        if let Err(e) = super::marker::advance(&ix.path, id) {
            tracing::warn!(error = %e, "could not update the audit marker");
        }
    };
    let mut backoff: Option<Duration> = None;
    let mut seen = journal.appended();
    let mut busy_since: Option<std::time::Instant> = None;
    loop {
        let wake = shared.wait(backoff.unwrap_or(TICK));
        for (name, value, ack) in wake.pragmas {
            let _ = ack.send(
                ix.conn
                    .pragma_update(None, name, value)
                    .map_err(Error::from),
            );
        }
        // Events held while the journal failed are written at the latest
        // here; that also tells that the journal works again.
        let _ = shared.journal_result(&ix.path, journal.flush());
        own.tail.limit(journal.end());
        let appended = journal.appended();
        let busy = appended - seen > BUSY_EVENTS_PER_TICK;
        seen = appended;
        if busy && !wake.kicked && !wake.closing {
            let since = *busy_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() < MAX_DEFER {
                continue;
            }
        } else if !busy {
            busy_since = None;
        }
        let mut caught_up = false;
        loop {
            match ix.step(&mut own) {
                Ok(None) => {
                    shared.progress(own.tail.position());
                    backoff = None;
                    caught_up = true;
                    break;
                }
                Ok(Some((n, last_id))) => {
                    shared.indexed(n, last_id);
                    shared.progress(own.tail.position());
                    last_committed = last_committed.max(last_id);
                    if marked.elapsed() >= super::marker::MARKER_EVERY {
                        mark(&ix, last_committed);
                        marked = std::time::Instant::now();
                    }
                }
                Err(message) => {
                    shared.failed(&ix.path, message);
                    backoff = Some(
                        backoff.map_or(Duration::from_millis(100), |b| (b * 2).min(MAX_BACKOFF)),
                    );
                    break;
                }
            }
        }
        if wake.closing {
            // Removed only when everything written is indexed; an event
            // that raced the close keeps the journal for the next process.
            let flushed = journal.flush().is_ok();
            if flushed && caught_up && own.tail.position() >= journal.end() {
                ix.finish(&own);
            }
            mark(&ix, last_committed);
            break;
        }
    }
    let mut s = lock(&shared.sync);
    s.stopped = true;
    for (_, _, ack) in s.pragmas.drain(..) {
        let _ = ack.send(Err(Error::Closed));
    }
    shared.changed.notify_all();
}

/// One journal being indexed.
struct Source {
    id: String,
    tail: Tail,
}

/// Turns journal entries into database rows: one connection, the chain
/// heads of the sessions it has written.
struct Indexer {
    conn: Connection,
    path: PathBuf,
    /// Chain heads of sessions this indexer has written, as committed.
    heads: HashMap<String, Head>,
    max_batch: usize,
}

impl Indexer {
    fn new(conn: Connection, path: &Path, max_batch: usize) -> Indexer {
        Indexer {
            conn,
            path: path.to_path_buf(),
            heads: HashMap::new(),
            max_batch,
        }
    }

    /// Indexes the next batch of `src`: `Some((events, last id))`, or
    /// `None` when there is nothing new. On failure nothing of the batch
    /// is stored and the same events are read again next time.
    fn step(&mut self, src: &mut Source) -> Result<Option<(usize, i64)>, String> {
        let start = src.tail.position();
        let entries = src
            .tail
            .read(self.max_batch)
            .map_err(|e| format!("cannot read the audit journal {}: {e}", src.id))?;
        let Some(end) = entries.last().map(|e| e.end) else {
            return Ok(None);
        };
        let prepared: Result<Vec<Prepared>, Error> = entries
            .into_iter()
            .map(|e| chain::prepare(e.event))
            .collect();
        let result = prepared
            .map_err(|e| e.to_string())
            .and_then(|p| self.commit(&p, &src.id, end).map(|id| (p.len(), id)));
        match result {
            Ok(done) => Ok(Some(done)),
            Err(message) => {
                src.tail.seek(start);
                Err(message)
            }
        }
    }

    /// Indexes whole journals whose writers are gone, then removes them.
    fn index_orphans(
        &mut self,
        orphans: Vec<Orphan>,
        on_batch: &mut dyn FnMut((usize, i64)),
    ) -> Result<u64, Error> {
        let mut total = 0u64;
        for orphan in orphans {
            let at = stored_position(&self.conn, &orphan.id)?;
            let mut src = Source {
                id: orphan.id.clone(),
                tail: Tail::new(&orphan.dir, at, true),
            };
            loop {
                match self.step(&mut src) {
                    Ok(None) => break,
                    Ok(Some(batch)) => {
                        total += batch.0 as u64;
                        on_batch(batch);
                    }
                    Err(message) => {
                        return Err(Error::Write {
                            path: self.path.clone(),
                            message,
                        })
                    }
                }
            }
            self.finish(&src);
            drop(orphan);
        }
        Ok(total)
    }

    /// A journal fully indexed: its directory goes, then its position.
    fn finish(&mut self, src: &Source) {
        let dir = src.tail.dir();
        if let Err(e) = std::fs::remove_dir_all(dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "could not remove an indexed audit journal");
            return;
        }
        let _ = self
            .conn
            .execute("DELETE FROM journals WHERE id = ?1", [&src.id]);
    }

    /// Commits one batch; on failure retries once with the chain heads
    /// reloaded from the database when the failure may come from a stale
    /// head (a constraint, or a session row that vanished under retention).
    fn commit(&mut self, events: &[Prepared], journal: &str, end: Position) -> Result<i64, String> {
        let mut result = self.try_commit(events, journal, end);
        if let Err(e) = &result {
            self.forget(events);
            let stale = matches!(e, rusqlite::Error::StatementChangedRows(_))
                || e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation);
            if stale {
                result = self.try_commit(events, journal, end);
            }
        }
        match result {
            Ok((last_id, heads)) => {
                self.heads.extend(heads);
                Ok(last_id)
            }
            Err(e) => {
                // Nothing of the batch is in the file; the heads of its
                // sessions are reloaded from the file next time.
                self.forget(events);
                Err(e.to_string())
            }
        }
    }

    fn forget(&mut self, events: &[Prepared]) {
        for ev in events {
            self.heads.remove(&ev.session_id);
        }
    }

    /// One transaction: chains and inserts every event, updates each
    /// touched session's head and the journal's position. Returns the last
    /// event id and the new heads.
    fn try_commit(
        &mut self,
        events: &[Prepared],
        journal: &str,
        end: Position,
    ) -> rusqlite::Result<(i64, Vec<(String, Head)>)> {
        let Indexer { conn, heads, .. } = self;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut touched: HashMap<&str, Touched> = HashMap::new();
        let mut last_id = 0;
        let mut next_id: i64 = tx.prepare_cached(NEXT_ID)?.query_row([], |r| r.get(0))?;
        {
            let mut insert = tx.prepare_cached(INSERT_EVENT)?;
            let mut index =
                tx.prepare_cached("INSERT INTO events_fts (rowid, text) VALUES (?1, ?2)")?;
            for ev in events {
                let t = match touched.entry(ev.session_id.as_str()) {
                    Entry::Occupied(o) => o.into_mut(),
                    Entry::Vacant(v) => {
                        let head = match heads.get(&ev.session_id) {
                            Some(head) => *head,
                            None => load_head(&tx, ev)?,
                        };
                        v.insert(Touched {
                            head,
                            last_at: ev.at_ms,
                            events: 0,
                            requests: 0,
                            tool_calls: 0,
                            blocked: 0,
                            errors: 0,
                        })
                    }
                };
                if let (Some(ua), false) = (&ev.user_agent, t.head.has_user_agent) {
                    tx.prepare_cached(
                        "UPDATE sessions SET user_agent = ?2 WHERE id = ?1 AND user_agent IS NULL",
                    )?
                    .execute(params![ev.session_id, ua])?;
                    t.head.has_user_agent = true;
                }
                let seq = t.head.seq + 1;
                let hash = ev.canon(seq).hash(&t.head.hash);
                insert.execute(params![
                    ev.session_id,
                    seq,
                    ev.at_ms,
                    ev.kind.as_str(),
                    ev.request_id,
                    ev.data,
                    ev.text,
                    ev.body,
                    ev.body_len,
                    ev.body_sha256,
                    hex(&t.head.hash),
                    hex(&hash),
                    next_id,
                ])?;
                last_id = next_id;
                next_id += 1;
                if let Some(text) = &ev.text {
                    index.execute(params![last_id, text])?;
                }
                t.head.seq = seq;
                t.head.hash = hash;
                t.last_at = t.last_at.max(ev.at_ms);
                t.events += 1;
                match ev.kind {
                    Kind::Request => t.requests += 1,
                    Kind::ToolCall => t.tool_calls += 1,
                    Kind::Error => t.errors += 1,
                    Kind::Response | Kind::Decision | Kind::Egress => {}
                }
                t.blocked += i64::from(ev.blocked);
            }
        }
        {
            let mut update = tx.prepare_cached(UPDATE_HEAD)?;
            for (id, t) in &touched {
                let changed = update.execute(params![
                    id,
                    t.last_at,
                    t.events,
                    t.requests,
                    t.tool_calls,
                    t.blocked,
                    t.errors,
                    t.head.seq,
                    hex(&t.head.hash),
                ])?;
                if changed != 1 {
                    return Err(rusqlite::Error::StatementChangedRows(changed));
                }
            }
        }
        tx.prepare_cached(UPSERT_JOURNAL)?.execute(params![
            journal,
            end.segment as i64,
            end.offset as i64,
            now_ms()
        ])?;
        tx.commit()?;
        let heads = touched
            .into_iter()
            .map(|(id, t)| (id.to_string(), t.head))
            .collect();
        Ok((last_id, heads))
    }
}

const UPSERT_JOURNAL: &str = "INSERT INTO journals (id, segment, at_byte, updated_at) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO UPDATE SET segment = excluded.segment, \
     at_byte = excluded.at_byte, updated_at = excluded.updated_at";

/// How far a journal was indexed (the start when never).
fn stored_position(conn: &Connection, id: &str) -> Result<Position, Error> {
    let row: Option<(i64, i64)> = conn
        .query_row(
            "SELECT segment, at_byte FROM journals WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(row.map_or(Position::START, |(segment, offset)| Position {
        segment: segment.max(1) as u64,
        offset: offset.max(0) as u64,
    }))
}

/// A session's chain head as the writer knows it.
#[derive(Debug, Clone, Copy)]
struct Head {
    seq: i64,
    hash: [u8; 32],
    has_user_agent: bool,
}

/// What one transaction did to one session.
struct Touched {
    head: Head,
    last_at: i64,
    events: i64,
    requests: i64,
    tool_calls: i64,
    blocked: i64,
    errors: i64,
}

const INSERT_SESSION: &str = "INSERT INTO sessions (id, run_id, agent_session, run_started_at, \
     started_at, last_at, profile, mode, gateway, user, user_agent, hoopctl_version) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

const INSERT_EVENT: &str = "INSERT INTO events (session_id, seq, at, kind, request_id, data, \
     text, body, body_len, body_sha256, prev_hash, hash, id) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

/// The next event id: above every id in the table and every id ever
/// deleted or passed by a cursor (see `id_floor` in the schema), so ids
/// are never used twice. Read inside the (immediate) write transaction.
const NEXT_ID: &str = "SELECT max(coalesce((SELECT max(id) FROM events), 0), \
     (SELECT coalesce(max(id), 0) FROM id_floor)) + 1";

const UPDATE_HEAD: &str = "UPDATE sessions SET last_at = max(last_at, ?2), events = events + ?3, \
     requests = requests + ?4, tool_calls = tool_calls + ?5, blocked = blocked + ?6, \
     errors = errors + ?7, head_seq = ?8, head_hash = ?9 WHERE id = ?1";

/// A session's head from its row, inserting the row when the session is
/// new. The row's head (not the last event) is what the chain continues
/// from, so an event deleted behind the writer's back stays a visible gap.
fn load_head(tx: &Connection, ev: &Prepared) -> rusqlite::Result<Head> {
    let row: Option<(i64, String, bool)> = tx
        .prepare_cached(
            "SELECT head_seq, head_hash, user_agent IS NOT NULL FROM sessions WHERE id = ?1",
        )?
        .query_row([&ev.session_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    if let Some((seq, hash, has_user_agent)) = row {
        return Ok(Head {
            seq,
            hash: unhex32(&hash).unwrap_or([0; 32]),
            has_user_agent,
        });
    }
    let run = &ev.run;
    tx.prepare_cached(INSERT_SESSION)?.execute(params![
        ev.session_id,
        run.run_id,
        ev.agent_session,
        run.started_at_ms,
        ev.at_ms,
        run.profile,
        run.mode,
        run.gateway,
        run.user,
        ev.user_agent,
        run.hoopctl_version,
    ])?;
    Ok(Head {
        seq: 0,
        hash: [0; 32],
        has_user_agent: ev.user_agent.is_some(),
    })
}
