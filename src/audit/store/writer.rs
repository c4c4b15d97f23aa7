//! The single writer: one thread, one connection, group commit, the hash
//! chains.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use tokio::sync::{oneshot, watch};

use super::chain::{self, hex, unhex32, Prepared};
use super::Error;
use crate::audit::event::{Event, Kind};

/// Tuning for [`Writer::start`].
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Most messages committed in one transaction.
    pub max_batch: usize,
    /// Capacity of the bounded queue in front of the writer thread; a full
    /// queue blocks [`Writer::append`] (back-pressure, nothing dropped).
    pub queue: usize,
    /// Test hook: `PRAGMA max_page_count` for the writer's connection from
    /// the start, so a store can be made to fill up ("database or disk is
    /// full") after a known amount of writing. `None` in production.
    #[doc(hidden)]
    pub max_page_count: Option<i64>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            max_batch: 512,
            // The bounded channel allocates every slot up front.
            queue: 4_096,
            max_page_count: None,
        }
    }
}

/// What the writer has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WriterStats {
    /// Events committed.
    pub events: u64,
    /// Transactions committed.
    pub batches: u64,
    /// Most events committed in one transaction.
    pub largest_batch: u64,
    /// Transactions that failed (their events were not recorded).
    pub failed_batches: u64,
}

/// The single writer of an audit store: a dedicated thread owning one
/// connection. It takes every queued message it can (up to
/// [`WriterOptions::max_batch`]) into one transaction, commits, and only
/// then acknowledges them (group commit). Per session it keeps the hash
/// chain's head in memory.
///
/// Cloning is cheap; the thread drains the queue, commits and stops on
/// [`Writer::close`] or when the last handle is dropped.
#[derive(Clone)]
pub struct Writer {
    inner: Arc<Inner>,
}

struct Inner {
    tx: SyncSender<Msg>,
    path: PathBuf,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Dropped with the last handle: the checkpointer then stops.
    _checkpoints: mpsc::Sender<()>,
}

/// How often the WAL is folded into the database, off the writer thread.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Folds the WAL into the database from its own connection (a PASSIVE
/// checkpoint never blocks the writer), so the writer never stalls on the
/// fsyncs a checkpoint does and commits stay short.
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

struct Shared {
    failing: Mutex<Option<String>>,
    committed: watch::Sender<i64>,
    stats: Mutex<WriterStats>,
}

enum Msg {
    Event(Box<Prepared>, Option<Ack>),
    Flush(Ack),
    Pragma(&'static str, i64, Ack),
    Close,
}

enum Ack {
    Async(oneshot::Sender<Result<(), Error>>),
    Blocking(SyncSender<Result<(), Error>>),
}

impl Ack {
    fn send(self, result: Result<(), Error>) {
        // The waiter may have gone away (a cancelled request): fine.
        match self {
            Ack::Async(tx) => {
                let _ = tx.send(result);
            }
            Ack::Blocking(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Writer {
    /// Opens (creating and migrating) the store at `path` and starts the
    /// writer thread.
    pub fn start(path: &Path, opts: WriterOptions) -> Result<Writer, Error> {
        let conn = super::open(path)?;
        // Checkpoints run on their own thread (see `checkpointer`).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        if let Some(pages) = opts.max_page_count {
            conn.pragma_update(None, "max_page_count", pages)?;
        }
        let max_id: i64 =
            conn.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))?;
        let (tx, rx) = mpsc::sync_channel(opts.queue.max(1));
        let shared = Arc::new(Shared {
            failing: Mutex::new(None),
            committed: watch::channel(max_id).0,
            stats: Mutex::new(WriterStats::default()),
        });
        let worker = Worker {
            conn,
            path: path.to_path_buf(),
            heads: HashMap::new(),
            shared: shared.clone(),
            max_batch: opts.max_batch.max(1),
        };
        let thread = std::thread::Builder::new()
            .name("hoopctl-audit".into())
            .spawn(move || worker.run(rx))
            .map_err(|source| Error::Create {
                path: path.to_path_buf(),
                source,
            })?;
        let (checkpoints, stop) = mpsc::channel();
        let cp_path = path.to_path_buf();
        let _ = std::thread::Builder::new()
            .name("hoopctl-audit-checkpoint".into())
            .spawn(move || checkpointer(cp_path, stop));
        Ok(Writer {
            inner: Arc::new(Inner {
                tx,
                path: path.to_path_buf(),
                shared,
                thread: Mutex::new(Some(thread)),
                _checkpoints: checkpoints,
            }),
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn send(&self, msg: Msg) -> Result<(), Error> {
        self.inner.tx.send(msg).map_err(|_| Error::Closed)
    }

    /// Queues an event and returns at once; blocks only while the bounded
    /// queue is full. Compression and hashing of the body happen here, on
    /// the caller's thread. `Err(Closed)` if the writer thread is gone.
    /// A later failure to commit it shows in [`Writer::failing`].
    pub fn append(&self, ev: Event) -> Result<(), Error> {
        let prepared = chain::prepare(ev)?;
        self.send(Msg::Event(Box::new(prepared), None))
    }

    /// Queues an event and waits until the transaction holding it has
    /// committed (in the WAL file: it survives `kill -9`). What the proxy
    /// awaits before forwarding a request. `Err(Write)` if that transaction
    /// failed: the event is not recorded.
    pub async fn append_durable(&self, ev: Event) -> Result<(), Error> {
        let prepared = chain::prepare(ev)?;
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Event(Box::new(prepared), Some(Ack::Async(tx))))?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Waits until everything queued before this call is committed.
    /// `Err(Write)` if the last transaction failed (or the store is failing).
    pub async fn flush(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Flush(Ack::Async(tx)))?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// [`Writer::flush`] for threads outside an async runtime (tests, CLI).
    pub fn flush_blocking(&self) -> Result<(), Error> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Msg::Flush(Ack::Blocking(tx)))?;
        rx.recv().map_err(|_| Error::Closed)?
    }

    /// The last write error while the store is failing (e.g. "database or
    /// disk is full", "attempt to write a readonly database"); `None` again
    /// after a transaction commits.
    pub fn failing(&self) -> Option<String> {
        lock(&self.inner.shared.failing).clone()
    }

    /// The highest committed event id (`events.id`), updated after every
    /// commit: a shipper waits on `changed()` and then reads
    /// [`super::Reader::events_after`] its cursor. Starts at the highest id
    /// already in the file.
    pub fn committed(&self) -> watch::Receiver<i64> {
        self.inner.shared.committed.subscribe()
    }

    /// Counters: events and transactions committed, largest batch, failures.
    pub fn stats(&self) -> WriterStats {
        *lock(&self.inner.shared.stats)
    }

    /// Drains the queue, commits and stops the thread; waits for it. Later
    /// calls on any clone return `Err(Closed)`.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Test hook: `PRAGMA max_page_count` on the writer's connection (a
    /// small value makes the store fail with "database or disk is full";
    /// SQLite raises a value below the file's size to its size). Applied
    /// after everything queued before it is committed.
    #[doc(hidden)]
    pub fn set_max_page_count(&self, pages: i64) -> Result<(), Error> {
        self.pragma("max_page_count", pages)
    }

    /// Test hook: `PRAGMA query_only` on the writer's connection (makes
    /// writes fail with "attempt to write a readonly database").
    #[doc(hidden)]
    pub fn set_query_only(&self, on: bool) -> Result<(), Error> {
        self.pragma("query_only", i64::from(on))
    }

    fn pragma(&self, name: &'static str, value: i64) -> Result<(), Error> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Msg::Pragma(name, value, Ack::Blocking(tx)))?;
        rx.recv().map_err(|_| Error::Closed)?
    }
}

impl Inner {
    fn close(&self) {
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            let _ = self.tx.send(Msg::Close);
            if thread.join().is_err() {
                tracing::error!(path = %self.path.display(), "the audit writer thread panicked");
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.close();
    }
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
     text, body, body_len, body_sha256, prev_hash, hash) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

const UPDATE_HEAD: &str = "UPDATE sessions SET last_at = max(last_at, ?2), events = events + ?3, \
     requests = requests + ?4, tool_calls = tool_calls + ?5, blocked = blocked + ?6, \
     errors = errors + ?7, head_seq = ?8, head_hash = ?9 WHERE id = ?1";

struct Worker {
    conn: Connection,
    path: PathBuf,
    /// Chain heads of sessions this writer has written, as committed.
    heads: HashMap<String, Head>,
    shared: Arc<Shared>,
    max_batch: usize,
}

impl Worker {
    fn run(mut self, rx: Receiver<Msg>) {
        let mut closing = false;
        loop {
            let first = if closing {
                match rx.try_recv() {
                    Ok(msg) => msg,
                    Err(_) => break,
                }
            } else {
                match rx.recv() {
                    Ok(msg) => msg,
                    Err(_) => break,
                }
            };
            let mut events: Vec<Box<Prepared>> = Vec::new();
            let mut acks: Vec<Ack> = Vec::new();
            let mut flushes: Vec<Ack> = Vec::new();
            let mut control = None;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Event(ev, ack) => {
                        events.push(ev);
                        acks.extend(ack);
                    }
                    Msg::Flush(ack) => flushes.push(ack),
                    other => {
                        // Control messages apply after what came before them.
                        control = Some(other);
                        break;
                    }
                }
                if events.len() + flushes.len() >= self.max_batch {
                    break;
                }
                match rx.try_recv() {
                    Ok(msg) => next = Some(msg),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => {}
                }
            }
            let result = if events.is_empty() {
                match lock(&self.shared.failing).clone() {
                    Some(message) => Err(message),
                    None => Ok(()),
                }
            } else {
                self.commit(&events)
            };
            for ack in acks.into_iter().chain(flushes) {
                ack.send(result.clone().map_err(|message| self.error(message)));
            }
            match control {
                Some(Msg::Pragma(name, value, ack)) => {
                    let result = self.conn.pragma_update(None, name, value);
                    ack.send(result.map_err(Error::from));
                }
                Some(Msg::Close) => closing = true,
                _ => {}
            }
        }
    }

    fn error(&self, message: String) -> Error {
        Error::Write {
            path: self.path.clone(),
            message,
        }
    }

    /// Commits one batch; on failure retries once with the chain heads
    /// reloaded from the database when the failure may come from a stale
    /// head (a constraint, or a session row that vanished under retention).
    fn commit(&mut self, events: &[Box<Prepared>]) -> Result<(), String> {
        let mut result = self.try_commit(events);
        if let Err(e) = &result {
            self.forget(events);
            let stale = matches!(e, rusqlite::Error::StatementChangedRows(_))
                || e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation);
            if stale {
                result = self.try_commit(events);
            }
        }
        match result {
            Ok((last_id, heads)) => {
                self.heads.extend(heads);
                {
                    let mut stats = lock(&self.shared.stats);
                    stats.events += events.len() as u64;
                    stats.batches += 1;
                    stats.largest_batch = stats.largest_batch.max(events.len() as u64);
                }
                if let Some(was) = lock(&self.shared.failing).take() {
                    tracing::info!(path = %self.path.display(), error = %was, "the audit store is writable again");
                }
                self.shared.committed.send_if_modified(|v| {
                    let newer = last_id > *v;
                    if newer {
                        *v = last_id;
                    }
                    newer
                });
                Ok(())
            }
            Err(e) => {
                // Nothing of the batch is in the file; the heads of its
                // sessions are reloaded from the file next time.
                self.forget(events);
                let message = e.to_string();
                lock(&self.shared.stats).failed_batches += 1;
                let previous = lock(&self.shared.failing).replace(message.clone());
                if previous.as_deref() != Some(message.as_str()) {
                    tracing::warn!(path = %self.path.display(), error = %message, events = events.len(),
                        "cannot write to the audit store; these events are not recorded");
                }
                Err(message)
            }
        }
    }

    fn forget(&mut self, events: &[Box<Prepared>]) {
        for ev in events {
            self.heads.remove(&ev.session_id);
        }
    }

    /// One transaction: chains and inserts every event, updates each
    /// touched session's head. Returns the last event id and the new heads.
    fn try_commit(
        &mut self,
        events: &[Box<Prepared>],
    ) -> rusqlite::Result<(i64, Vec<(String, Head)>)> {
        let Worker { conn, heads, .. } = self;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut touched: HashMap<&str, Touched> = HashMap::new();
        let mut last_id = 0;
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
                ])?;
                last_id = tx.last_insert_rowid();
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
        tx.commit()?;
        let heads = touched
            .into_iter()
            .map(|(id, t)| (id.to_string(), t.head))
            .collect();
        Ok((last_id, heads))
    }
}

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
