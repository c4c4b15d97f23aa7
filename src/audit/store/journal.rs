//! The journal: the record's first, durable copy, and the only place that
//! knows its file format.
//!
//! The proxy appends a request here on the request's own task before the
//! request is forwarded: it is queued ([`Journal::enqueue`]), and
//! [`Journal::commit`] returns once a `write()` has taken it; requests
//! queued meanwhile (on any thread) share that write, so a busy proxy
//! makes one system call for several requests. Once it returns, the event
//! is in the kernel and survives `kill -9` of hoopctl. Turning the journal
//! into the searchable store (derived fields, canonical JSON, hash chain,
//! zstd, SQLite, FTS) is the indexer's job ([`super::writer`]) on a
//! low-priority thread, so a request pays for a copy and a share of a
//! system call. Events that need not be durable first (answers, tool
//! calls, egress) are buffered and written with the next request or within
//! a tick.
//!
//! Layout: next to `audit.db`, a directory `audit.journal/` ([`root`])
//! with one directory per writer (a random id) holding
//! - `lock`: locked (`flock`, exclusive) by the writing process as long
//!   as it lives, which tells a live journal from the journal of a process
//!   that died ([`orphans`]);
//! - `runs`: one JSON line per proxy run ([`RunMeta`]) whose events are in
//!   this journal, written before its first event;
//! - segments `00000001.seg`, `00000002.seg`, ...: appended only; the
//!   next starts once one passes [`SEGMENT_BYTES`]. The indexer deletes a
//!   segment it has read to the end, and the directory when its writer
//!   closes with everything indexed.
//!
//! A journal is built under a hidden name (`.<id>`) and renamed once
//! locked; one left under it by a process that died meanwhile holds no
//! events and is removed by the next [`orphans`] scan.
//!
//! A record is a `u32` LE length of what follows, then: `i64` LE `at_ms`,
//! the kind's name ([`Kind::as_str`]) as `u32` LE length + bytes, a flags
//! byte, and as `u32` LE length + bytes: run id,
//! agent session\*, user agent\*, request id\*, data (JSON), text\*,
//! body\* (\* = present when its flag bit is set). A record cut short (the
//! process died inside `write()`, or a failed write that could not be
//! undone) ends a segment for the reader.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use nix::fcntl::{Flock, FlockArg};

use super::lock;

use crate::audit::event::{Derive, Event, Kind, Record, RunMeta, SessionRef};

/// A segment is closed and the next one started once it is this large.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// Buffered events (not durable first) are written once this much is waiting.
const PENDING_WRITE: usize = 256 << 10;

/// Buffers larger than this are given back after use.
const BUFFER_KEEP: usize = 4 << 20;

/// While writes fail, buffered events are kept up to this much for the
/// next attempt; beyond it they are dropped (and counted).
const PENDING_KEEP: usize = 64 << 20;

const FLAG_AGENT: u8 = 1;
const FLAG_UA: u8 = 1 << 1;
const FLAG_REQUEST_ID: u8 = 1 << 2;
const FLAG_TEXT: u8 = 1 << 3;
const FLAG_BODY: u8 = 1 << 4;
const FLAG_DERIVE_MESSAGES: u8 = 1 << 5;

/// Where in a journal: the segment and the byte offset in it. Ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

impl Position {
    pub const START: Position = Position {
        segment: 1,
        offset: 0,
    };
}

/// The journals' directory for the store at `db` (`audit.db` →
/// `audit.journal`).
pub fn root(db: &Path) -> PathBuf {
    db.with_extension("journal")
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:08}.seg"))
}

fn private_dir(path: &Path) -> io::Result<()> {
    crate::paths::ensure_dir(path).map_err(io::Error::other)
}

fn append_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Appends the record of `ev` to `out`.
pub fn encode(ev: &dyn Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&ev.at_ms().to_le_bytes());
    put(out, ev.kind().as_str().as_bytes());
    let s = ev.session();
    let (request_id, text, body) = (ev.request_id(), ev.text(), ev.body());
    let mut flags = 0;
    for (present, bit) in [
        (s.agent_session.is_some(), FLAG_AGENT),
        (s.user_agent.is_some(), FLAG_UA),
        (request_id.is_some(), FLAG_REQUEST_ID),
        (text.is_some(), FLAG_TEXT),
        (body.is_some(), FLAG_BODY),
        (
            ev.derive() == Some(Derive::MessagesRequest),
            FLAG_DERIVE_MESSAGES,
        ),
    ] {
        if present {
            flags |= bit;
        }
    }
    out.push(flags);
    put(out, s.run.run_id.as_bytes());
    for v in [
        s.agent_session.as_deref(),
        s.user_agent.as_deref(),
        request_id,
    ]
    .into_iter()
    .flatten()
    {
        put(out, v.as_bytes());
    }
    let data_at = out.len();
    out.extend_from_slice(&[0; 4]);
    ev.write_data(out);
    let data_len = (out.len() - data_at - 4) as u32;
    out[data_at..data_at + 4].copy_from_slice(&data_len.to_le_bytes());
    if let Some(t) = text {
        put(out, t.as_bytes());
    }
    if let Some(b) = body {
        put(out, b);
    }
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// One decoded record, before its run is looked up.
#[derive(Debug)]
struct Raw<'a> {
    at_ms: i64,
    kind: Kind,
    flags: u8,
    run_id: &'a str,
    agent_session: Option<&'a str>,
    user_agent: Option<&'a str>,
    request_id: Option<&'a str>,
    data: &'a str,
    text: Option<&'a str>,
    body: Option<&'a [u8]>,
}

struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
    flags: u8,
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        self.take(len)
    }

    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    /// `Some(None)` when the flag is not set; `None` when the record is bad.
    fn opt_bytes(&mut self, bit: u8) -> Option<Option<&'a [u8]>> {
        if self.flags & bit == 0 {
            Some(None)
        } else {
            self.bytes().map(Some)
        }
    }

    fn opt_str(&mut self, bit: u8) -> Option<Option<&'a str>> {
        if self.flags & bit == 0 {
            Some(None)
        } else {
            self.str().map(Some)
        }
    }
}

/// A record's fields; `None` for a record that does not decode.
fn decode(rec: &[u8]) -> Option<Raw<'_>> {
    let mut f = Fields {
        bytes: rec,
        at: 0,
        flags: 0,
    };
    let at_ms = i64::from_le_bytes(f.take(8)?.try_into().ok()?);
    let kind = Kind::parse(f.str()?)?;
    f.flags = f.take(1)?[0];
    let raw = Raw {
        at_ms,
        kind,
        flags: f.flags,
        run_id: f.str()?,
        agent_session: f.opt_str(FLAG_AGENT)?,
        user_agent: f.opt_str(FLAG_UA)?,
        request_id: f.opt_str(FLAG_REQUEST_ID)?,
        data: f.str()?,
        text: f.opt_str(FLAG_TEXT)?,
        body: f.opt_bytes(FLAG_BODY)?,
    };
    (f.at == rec.len()).then_some(raw)
}

/// A journal being written: the handle the proxy appends to. Every event
/// is encoded outside any lock and copied into the buffer under a short
/// one; a write takes the file's lock and writes the whole buffer with one
/// `write()`.
pub struct Journal {
    dir: PathBuf,
    id: String,
    segment_bytes: u64,
    /// Encoded events not yet written, in the order they were appended.
    /// Each lock on its own cache lines: both are taken by every thread.
    pending: Padded<Mutex<Pending>>,
    /// Runs already in the `runs` file; the first one also without a lock
    /// (a proxy has one run).
    runs: Mutex<Vec<Arc<RunMeta>>>,
    first_run: OnceLock<Arc<RunMeta>>,
    file: Padded<Mutex<Segment>>,
    _lock: Flock<File>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("dir", &self.dir).finish()
    }
}

/// `T` alone on its cache lines (two, for the adjacent-line prefetcher).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Events appended and not yet written.
struct Pending {
    /// Events appended so far (how busy the proxy is).
    appended: u64,
    /// Their records, in the order they were appended.
    bytes: Vec<u8>,
    /// Where in `bytes` the durable events are that must not be written
    /// once their write has failed (their requests were refused).
    drop_on_failure: Vec<Range<usize>>,
    /// What the durable events in `bytes` wait for.
    batch: Arc<Batch>,
}

/// The outcome of the one write that takes a group of durable events.
#[derive(Debug, Default)]
struct Batch {
    outcome: OnceLock<Result<(), (io::ErrorKind, String)>>,
}

impl Batch {
    fn outcome(&self) -> Option<io::Result<()>> {
        self.outcome.get().map(|o| {
            o.as_ref()
                .copied()
                .map_err(|(kind, message)| io::Error::new(*kind, message.clone()))
        })
    }
}

/// A durable event in the journal's buffer, not yet known to be written:
/// [`Journal::commit`] writes it (with everything before it) unless an
/// earlier write took it.
#[derive(Debug)]
#[must_use = "a queued event is durable only once committed"]
pub struct Queued(Arc<Batch>);

/// The segment being written.
struct Segment {
    /// The buffer that is not `pending` (they swap on every write, so
    /// neither is ever freed or grown again once warm).
    spare: Vec<u8>,
    /// Likewise for [`Pending::drop_on_failure`].
    spare_drops: Vec<Range<usize>>,
    /// Writes so far (each one `write()`, as far as the kernel takes it).
    writes: u64,
    /// `None` after a segment could not be created (the next write tries
    /// again).
    file: Option<File>,
    number: u64,
    /// Bytes in it.
    written: u64,
    /// The end of the last successful write.
    end: Position,
    /// It may end in a partial record that could not be removed: the next
    /// write starts a new segment.
    torn: bool,
}

thread_local! {
    /// The calling thread's buffer for a durable record.
    static RECORD: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(4096));
}

/// `write_all` that counts on one `write()` (again only for what is left
/// after a short write).
fn write_all(file: &mut File, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match file.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Calls `f` with the record of `ev`, encoded in the thread's buffer
/// (outside any lock).
fn with_record<T>(ev: &dyn Record, f: impl FnOnce(&[u8]) -> T) -> T {
    RECORD.with(|cell| {
        let mut own = Vec::new();
        let mut borrowed = cell.try_borrow_mut();
        let record = match &mut borrowed {
            Ok(buf) => &mut **buf,
            Err(_) => &mut own,
        };
        record.clear();
        encode(ev, record);
        let out = f(record);
        if record.capacity() > BUFFER_KEEP {
            *record = Vec::with_capacity(4096);
        }
        out
    })
}

/// Takes `m`, spinning briefly first: the holder is inside one short
/// `write()`, and sleeping and waking costs more than that.
fn lock_spinning<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    for _ in 0..64 {
        match m.try_lock() {
            Ok(guard) => return guard,
            Err(std::sync::TryLockError::Poisoned(p)) => return p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => std::hint::spin_loop(),
        }
    }
    lock(m)
}

impl Journal {
    /// Creates a new journal (a fresh id) under `root`, locked by this
    /// process until the journal is dropped. A segment is closed once it
    /// holds `segment_bytes` ([`SEGMENT_BYTES`] unless testing).
    pub fn create(root: &Path, segment_bytes: u64) -> io::Result<Journal> {
        private_dir(root)?;
        let id = crate::secret::random_hex(8).map_err(|_| io::Error::other("no randomness"))?;
        // Built under a hidden name and renamed once locked, so that no
        // other process ever sees it unlocked.
        let building = root.join(format!(".{id}"));
        private_dir(&building)?;
        let lock_file = append_file(&building.join("lock"))?;
        let flock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, errno)| io::Error::from(errno))?;
        append_file(&building.join("runs"))?;
        let file = append_file(&segment_path(&building, 1))?;
        let dir = root.join(&id);
        std::fs::rename(&building, &dir)?;
        Ok(Journal {
            dir,
            id,
            segment_bytes: segment_bytes.max(1),
            pending: Padded(Mutex::new(Pending {
                appended: 0,
                bytes: Vec::with_capacity(64 << 10),
                drop_on_failure: Vec::new(),
                batch: Arc::default(),
            })),
            runs: Mutex::new(Vec::new()),
            first_run: OnceLock::new(),
            file: Padded(Mutex::new(Segment {
                spare: Vec::with_capacity(64 << 10),
                spare_drops: Vec::new(),
                writes: 0,
                file: Some(file),
                number: 1,
                written: 0,
                end: Position::START,
                torn: false,
            })),
            _lock: flock,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `ev`. With `durable`, the event (and everything buffered
    /// before it) is written before this returns ([`Journal::enqueue`]
    /// and [`Journal::commit`] at once); otherwise it is buffered and
    /// written with the next durable event, a [`Journal::flush`] or once
    /// [`PENDING_WRITE`] bytes wait.
    ///
    /// When a durable write fails, the event is dropped unless
    /// `keep_on_failure` (then it is written with the next write that
    /// works); buffered events are kept for the next attempt.
    pub fn append(&self, ev: &dyn Record, durable: bool, keep_on_failure: bool) -> io::Result<()> {
        if durable {
            let queued = self.enqueue(ev, keep_on_failure)?;
            return self.commit(queued);
        }
        self.note_run(&ev.session().run)?;
        let waiting = with_record(ev, |record| {
            let mut pending = lock(&self.pending);
            pending.appended += 1;
            pending.bytes.extend_from_slice(record);
            pending.bytes.len()
        });
        if waiting >= PENDING_WRITE {
            self.flush().map(drop)
        } else {
            Ok(())
        }
    }

    /// Buffers durable `ev` behind everything appended so far; it is
    /// written by [`Journal::commit`], or by any write that comes first,
    /// so that durable events queued together share one `write()`.
    /// `keep_on_failure`: see [`Journal::append`].
    pub fn enqueue(&self, ev: &dyn Record, keep_on_failure: bool) -> io::Result<Queued> {
        self.note_run(&ev.session().run)?;
        Ok(with_record(ev, |record| {
            let mut pending = lock(&self.pending);
            pending.appended += 1;
            let start = pending.bytes.len();
            pending.bytes.extend_from_slice(record);
            if !keep_on_failure {
                let end = pending.bytes.len();
                pending.drop_on_failure.push(start..end);
            }
            Queued(pending.batch.clone())
        }))
    }

    /// Returns once `queued` is written (the outcome of the write that
    /// took it), writing everything buffered if no write has taken it yet.
    pub fn commit(&self, queued: Queued) -> io::Result<()> {
        if let Some(outcome) = queued.0.outcome() {
            return outcome;
        }
        let mut segment = lock_spinning(&self.file);
        self.commit_locked(&queued, &mut segment)
    }

    /// [`Journal::commit`] for a caller that would rather do something
    /// else than wait while another thread writes: `None` then (that write
    /// may well take `queued`; try again later).
    pub fn try_commit(&self, queued: &Queued) -> Option<io::Result<()>> {
        if let Some(outcome) = queued.0.outcome() {
            return Some(outcome);
        }
        let mut segment = match self.file.try_lock() {
            Ok(segment) => segment,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(self.commit_locked(queued, &mut segment))
    }

    fn commit_locked(&self, queued: &Queued, segment: &mut Segment) -> io::Result<()> {
        // A write finished while this waited for the file.
        if let Some(outcome) = queued.0.outcome() {
            return outcome;
        }
        // Batches are taken and settled under the file's lock: one not
        // settled yet is still the one being filled, and this writes it.
        self.write_pending(segment)?;
        queued
            .0
            .outcome()
            .unwrap_or_else(|| Err(io::Error::other("a queued audit event was not written")))
    }

    /// Writes everything buffered; `Ok(true)` when there was something to
    /// write (so the journal is known to take writes).
    pub fn flush(&self) -> io::Result<bool> {
        let mut segment = lock_spinning(&self.file);
        self.write_pending(&mut segment)
    }

    /// Writes what `pending` holds with one `write()` and settles the
    /// batch of durable events in it. On failure, what is buffered goes
    /// back in front of what was appended meanwhile, but for the durable
    /// events that must not be kept.
    fn write_pending(&self, segment: &mut Segment) -> io::Result<bool> {
        let mut out = std::mem::take(&mut segment.spare);
        let mut drops = std::mem::take(&mut segment.spare_drops);
        let batch = {
            let mut pending = lock(&self.pending);
            std::mem::swap(&mut out, &mut pending.bytes);
            std::mem::swap(&mut drops, &mut pending.drop_on_failure);
            // A batch nobody waits for stays to be filled further.
            (Arc::strong_count(&pending.batch) > 1).then(|| std::mem::take(&mut pending.batch))
        };
        let wrote = !out.is_empty();
        let result = self.write(segment, &out);
        if let Some(batch) = batch {
            let outcome = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err((e.kind(), e.to_string())),
            };
            let _ = batch.outcome.set(outcome);
        }
        if result.is_err() {
            let mut kept = Vec::with_capacity(out.len());
            let mut at = 0;
            for r in &drops {
                kept.extend_from_slice(&out[at..r.start]);
                at = r.end;
            }
            kept.extend_from_slice(&out[at..]);
            out.clear();
            let mut pending = lock(&self.pending);
            let shift = kept.len();
            kept.extend_from_slice(&pending.bytes);
            std::mem::swap(&mut kept, &mut pending.bytes);
            for r in &mut pending.drop_on_failure {
                *r = r.start + shift..r.end + shift;
            }
            if pending.bytes.len() > PENDING_KEEP {
                tracing::error!(bytes = pending.bytes.len(), dir = %self.dir.display(),
                    "the audit journal has failed for so long that the events waiting for it are dropped");
                pending.bytes.clear();
                pending.drop_on_failure.clear();
            }
        }
        out.clear();
        // One large body must not pin its size for the whole run.
        if out.capacity() > BUFFER_KEEP {
            out = Vec::with_capacity(64 << 10);
        }
        drops.clear();
        segment.spare = out;
        segment.spare_drops = drops;
        result.map(|()| wrote)
    }

    /// Test hook: the current segment's handle becomes read-only, so the
    /// next write fails (EBADF) the way a full disk would.
    #[cfg(test)]
    pub fn break_writes(&self) -> io::Result<()> {
        let mut segment = lock(&self.file);
        let path = segment_path(&self.dir, segment.number);
        segment.file = Some(File::open(path)?);
        Ok(())
    }

    /// Writes (`write()` calls) so far.
    pub fn writes(&self) -> u64 {
        lock(&self.file).writes
    }

    /// Writes the run's line to `runs` before its first event.
    fn note_run(&self, run: &Arc<RunMeta>) -> io::Result<()> {
        // Threads record with their own copies of a run (same id).
        if self
            .first_run
            .get()
            .is_some_and(|r| Arc::ptr_eq(r, run) || r.run_id == run.run_id)
        {
            return Ok(());
        }
        let mut runs = lock(&self.runs);
        if runs
            .iter()
            .any(|r| Arc::ptr_eq(r, run) || r.run_id == run.run_id)
        {
            return Ok(());
        }
        let mut line = serde_json::to_vec(&**run).map_err(io::Error::other)?;
        line.push(b'\n');
        append_file(&self.dir.join("runs"))?.write_all(&line)?;
        runs.push(run.clone());
        let _ = self.first_run.set(run.clone());
        Ok(())
    }

    /// Events appended so far.
    pub fn appended(&self) -> u64 {
        lock(&self.pending).appended
    }

    /// Where the last successful write ended: everything appended before
    /// it is at or before this position.
    pub fn end(&self) -> Position {
        lock(&self.file).end
    }

    /// Writes `bytes` with one system call (as far as the kernel takes
    /// them at once).
    fn write(&self, st: &mut Segment, bytes: &[u8]) -> io::Result<()> {
        let len = bytes.len();
        if len == 0 {
            return Ok(());
        }
        if st.torn {
            st.file = None;
            st.number += 1;
            st.written = 0;
            st.torn = false;
        }
        let file = match &mut st.file {
            Some(f) => f,
            None => st
                .file
                .insert(append_file(&segment_path(&self.dir, st.number))?),
        };
        st.writes += 1;
        if let Err(e) = write_all(file, bytes) {
            // Undo a partial write, so the segment never holds half a
            // record followed by whole ones.
            if file.set_len(st.written).is_err() {
                st.torn = true;
            }
            return Err(e);
        }
        st.written += len as u64;
        st.end = Position {
            segment: st.number,
            offset: st.written,
        };
        if st.written >= self.segment_bytes {
            // The next segment exists before anything is written to it, so
            // a reader that finds it knows this one is complete.
            st.number += 1;
            st.written = 0;
            st.file = append_file(&segment_path(&self.dir, st.number)).ok();
        }
        Ok(())
    }
}

/// The directory of a journal whose writer is gone, locked by this process
/// while it is being indexed.
pub struct Orphan {
    pub id: String,
    pub dir: PathBuf,
    _lock: Flock<File>,
}

/// A journal directory still under its hidden name this long after it
/// was made was left by a process that died inside [`Journal::create`].
const UNFINISHED_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// The journals under `root` whose writing process is gone (their lock
/// could be taken), each locked for the caller. Also removes what a
/// process that died inside [`Journal::create`] left (no events).
pub fn orphans(root: &Path) -> Vec<Orphan> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.path().is_dir() {
            continue;
        }
        if name.starts_with('.') {
            remove_if_unfinished(&entry.path());
            continue;
        }
        let Ok(file) = OpenOptions::new()
            .read(true)
            .open(entry.path().join("lock"))
        else {
            continue;
        };
        if let Ok(flock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            out.push(Orphan {
                id: name,
                dir: entry.path(),
                _lock: flock,
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Removes `dir`, a journal directory under its hidden name, when it is
/// old and no live process holds its lock (a creating process holds it from
/// just after the directory is made until the rename).
fn remove_if_unfinished(dir: &Path) {
    let old = std::fs::metadata(dir)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age >= UNFINISHED_AFTER);
    if !old {
        return;
    }
    let _held = match OpenOptions::new().read(true).open(dir.join("lock")) {
        Ok(file) => match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(held) => Some(held),
            Err(_) => return,
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(_) => return,
    };
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::debug!(dir = %dir.display(), error = %e, "could not remove an unfinished audit journal");
    }
}

/// One event read back, and the position right after its record.
#[derive(Debug)]
pub struct Entry {
    pub event: Event,
    pub end: Position,
}

/// Reads a journal's events in order, from a position on.
pub struct Tail {
    dir: PathBuf,
    pos: Position,
    file: Option<(u64, File)>,
    runs: HashMap<String, Arc<RunMeta>>,
    buf: Vec<u8>,
    /// The writer is gone: a partial record at the very end is torn, not
    /// still being written.
    finished: bool,
    /// Bytes after the last complete record of the current segment.
    partial: bool,
    /// Records skipped: cut short at a segment's end, or not decodable.
    skipped: u64,
}

/// How much of a segment one read takes (more for a larger record).
const READ_CHUNK: usize = 4 << 20;

impl Tail {
    /// A reader of the journal in `dir` from `pos`. `finished`: its
    /// writer is gone (see [`orphans`]).
    pub fn new(dir: &Path, pos: Position, finished: bool) -> Tail {
        Tail {
            dir: dir.to_path_buf(),
            pos: pos.max(Position::START),
            file: None,
            runs: HashMap::new(),
            buf: Vec::new(),
            finished,
            partial: false,
            skipped: 0,
        }
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The position after the last event returned.
    pub fn position(&self) -> Position {
        self.pos
    }

    /// Goes back to `pos` (events after it are read again).
    pub fn seek(&mut self, pos: Position) {
        if pos.segment != self.pos.segment {
            self.file = None;
        }
        self.pos = pos;
    }

    /// Records skipped so far (cut short, or not decodable).
    #[cfg(test)]
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Up to `max` events after the position; empty at the end. Moves on
    /// to the next segment when the current one is complete and deletes
    /// the one left behind: call it only once everything returned before
    /// is stored.
    pub fn read(&mut self, max: usize) -> io::Result<Vec<Entry>> {
        loop {
            let entries = self.read_segment(max)?;
            if !entries.is_empty() {
                return Ok(entries);
            }
            let later = self.segments()?.into_iter().find(|s| *s > self.pos.segment);
            match later {
                Some(next) => {
                    // This segment was complete before the later one was
                    // created; what was read before looking may not be all.
                    let entries = self.read_segment(max)?;
                    if !entries.is_empty() {
                        return Ok(entries);
                    }
                    self.skip_torn_tail();
                    let _ = std::fs::remove_file(segment_path(&self.dir, self.pos.segment));
                    self.file = None;
                    self.pos = Position {
                        segment: next,
                        offset: 0,
                    };
                }
                None => {
                    if self.finished {
                        self.skip_torn_tail();
                    }
                    return Ok(entries);
                }
            }
        }
    }

    fn skip_torn_tail(&mut self) {
        if std::mem::take(&mut self.partial) {
            self.skipped += 1;
            tracing::warn!(dir = %self.dir.display(), segment = self.pos.segment,
                "the audit journal ends in a record cut short (its writer stopped while writing it); skipped");
        }
    }

    fn read_segment(&mut self, max: usize) -> io::Result<Vec<Entry>> {
        self.partial = false;
        let segment = self.pos.segment;
        if self.file.as_ref().map(|(s, _)| *s) != Some(segment) {
            match File::open(segment_path(&self.dir, segment)) {
                Ok(f) => self.file = Some((segment, f)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.file = None;
                    return Ok(Vec::new());
                }
                Err(e) => return Err(e),
            }
        }
        let Some((_, file)) = &self.file else {
            return Ok(Vec::new());
        };
        let size = file.metadata()?.len();
        let mut want = READ_CHUNK;
        loop {
            let available = size.saturating_sub(self.pos.offset);
            let n = available.min(want as u64) as usize;
            self.buf.resize(n, 0);
            file.read_exact_at(&mut self.buf, self.pos.offset)?;
            let (records, used, first_len) = split(&self.buf, max);
            if records.is_empty() {
                if let Some(len) = first_len.filter(|l| *l as u64 <= available) {
                    // One record larger than the chunk: read all of it.
                    want = len;
                    continue;
                }
                self.partial = available > 0;
                return Ok(Vec::new());
            }
            let mut entries = Vec::with_capacity(records.len());
            let mut offset = self.pos.offset;
            let mut bad = 0;
            let runs = &mut self.runs;
            for rec in records {
                offset += 4 + rec.len() as u64;
                let end = Position { segment, offset };
                match decode(rec) {
                    Some(raw) => entries.push(Entry {
                        event: to_event(raw, runs, &self.dir),
                        end,
                    }),
                    None => bad += 1,
                }
            }
            if bad > 0 {
                self.skipped += bad;
                tracing::warn!(dir = %self.dir.display(), segment, records = bad,
                    "audit journal records that do not decode were skipped");
            }
            self.pos.offset += used as u64;
            self.partial = (used as u64) < available;
            if entries.is_empty() {
                // Only bad records: go on reading after them.
                continue;
            }
            return Ok(entries);
        }
    }

    fn segments(&self) -> io::Result<Vec<u64>> {
        let mut out: Vec<u64> = std::fs::read_dir(&self.dir)?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        out.sort_unstable();
        Ok(out)
    }
}

/// The complete records at the start of `buf` (at most `max`), the bytes
/// they take, and the length of the first record whether complete or not
/// (with its length prefix).
fn split(buf: &[u8], max: usize) -> (Vec<&[u8]>, usize, Option<usize>) {
    let mut records = Vec::new();
    let mut at = 0;
    let mut first = None;
    while records.len() < max {
        let Some(head) = buf.get(at..at + 4) else {
            break;
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        first.get_or_insert(4 + len);
        let Some(rec) = buf.get(at + 4..at + 4 + len) else {
            break;
        };
        records.push(rec);
        at += 4 + len;
    }
    (records, at, first)
}

/// The event of a record; its run from the journal's `runs` file.
fn to_event(raw: Raw<'_>, runs: &mut HashMap<String, Arc<RunMeta>>, dir: &Path) -> Event {
    if !runs.contains_key(raw.run_id) {
        load_runs(dir, runs);
    }
    let run = runs
        .entry(raw.run_id.to_string())
        .or_insert_with(|| {
            tracing::warn!(dir = %dir.display(), run = raw.run_id, "an audit journal names a run it has no record of");
            Arc::new(RunMeta {
                run_id: raw.run_id.to_string(),
                started_at_ms: raw.at_ms,
                profile: "?".into(),
                mode: "?".into(),
                gateway: None,
                user: None,
                hoopctl_version: "?".into(),
            })
        })
        .clone();
    Event {
        session: SessionRef {
            run,
            agent_session: raw.agent_session.map(Arc::from),
            user_agent: raw.user_agent.map(Arc::from),
        },
        at_ms: raw.at_ms,
        kind: raw.kind,
        request_id: raw.request_id.map(str::to_string),
        data: raw.data.to_string(),
        body: raw.body.map(bytes::Bytes::copy_from_slice),
        text: raw.text.map(str::to_string),
        derive: (raw.flags & FLAG_DERIVE_MESSAGES != 0).then_some(Derive::MessagesRequest),
    }
}

fn load_runs(dir: &Path, runs: &mut HashMap<String, Arc<RunMeta>>) {
    let Ok(file) = File::open(dir.join("runs")) else {
        return;
    };
    for line in io::BufReader::new(file).lines().map_while(Result::ok) {
        if let Ok(run) = serde_json::from_str::<RunMeta>(&line) {
            runs.entry(run.run_id.clone())
                .or_insert_with(|| Arc::new(run));
        }
    }
}
