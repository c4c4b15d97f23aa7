//! The journal: the record's first, durable copy, and the only place that
//! knows its file format.
//!
//! The proxy appends a request here on the request's own task before the
//! request is forwarded. Appending copies the encoded event into a shared
//! mapping of the segment file ([`Journal::append`]): once copied it is in
//! the kernel's page cache and survives `kill -9` of hoopctl, with no
//! system call and no wait. The file's space is reserved ahead (zeros
//! written, a window at a time), so a full disk or a file-size limit shows
//! as an error when a window is reserved, never as a lost event.
//! Turning the journal into the searchable store (derived fields,
//! canonical JSON, hash chain, zstd, SQLite, FTS) is the indexer's job
//! ([`super::writer`]) on a low-priority thread, so a request pays for
//! encoding and one copy.
//!
//! Layout: next to `audit.db`, a directory `audit.journal/` ([`root`])
//! with one directory per writer (a random id) holding
//! - `lock`: locked (`flock`, exclusive) by the writing process as long
//!   as it lives, which tells a live journal from the journal of a process
//!   that died ([`orphans`]);
//! - `runs`: one JSON line per proxy run ([`RunMeta`]) whose events are in
//!   this journal, written before its first event;
//! - segments `00000001.seg`, `00000002.seg`, ...: appended only; the
//!   next starts once one passes [`SEGMENT_BYTES`]. A segment being
//!   written ends in reserved zeros; it is cut to its records when it is
//!   closed. The indexer deletes a segment it has read to the end, and the
//!   directory when its writer closes with everything indexed.
//!
//! A journal is built under a hidden name (`.<id>`) and renamed once
//! locked; one left under it by a process that died meanwhile holds no
//! events and is removed by the next [`orphans`] scan.
//!
//! A record is a `u32` LE length of what follows, then: `i64` LE `at_ms`,
//! the kind's name ([`Kind::as_str`]) as `u32` LE length + bytes, a flags
//! byte, and as `u32` LE length + bytes: run id,
//! agent session\*, user agent\*, request id\*, data (JSON), text\*,
//! body\* (\* = present when its flag bit is set). The length is copied
//! last: a zero length ends a segment's records (the reserved rest, or a
//! record its writer died copying). A record cut short at the end of a
//! file (a failed `pwrite()`, or a journal of an earlier hoopctl) also
//! ends a segment for the reader.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use nix::fcntl::{Flock, FlockArg};

use super::lock;

mod window;
use window::{mappable, reserve, Window};

use crate::audit::event::{Derive, Event, Kind, Record, RunMeta, SessionRef};

/// A segment is closed and the next one started once it is this large.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// Buffers larger than this are given back after use.
const BUFFER_KEEP: usize = 4 << 20;

/// While the journal fails, events are kept up to this much for the next
/// write that works; beyond it they are dropped (and logged).
const HELD_KEEP: usize = 64 << 20;

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
/// is encoded outside any lock and copied into the segment's mapped
/// window under a short one.
pub struct Journal {
    dir: PathBuf,
    id: String,
    segment_bytes: u64,
    /// Appends copy into a mapped window ([`window`]); else (a filesystem
    /// where that is not safe) each is one `pwrite()`.
    mapped: bool,
    /// Runs already in the `runs` file; the first one also without a lock
    /// (a proxy has one run).
    runs: Mutex<Vec<Arc<RunMeta>>>,
    first_run: OnceLock<Arc<RunMeta>>,
    /// On its own cache lines: every thread takes it for every event.
    state: Padded<Mutex<Segment>>,
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

/// How much of a segment is reserved and mapped at a time (more for a
/// larger record).
const WINDOW_BYTES: u64 = 1 << 20;

/// The segment being written.
struct Segment {
    /// `None` after a segment could not be created (the next append tries
    /// again).
    file: Option<File>,
    number: u64,
    /// Bytes of records in it.
    written: u64,
    /// Bytes of it reserved so far (records, then zeros).
    reserved: u64,
    window: Option<Window>,
    /// Events appended so far (how busy the proxy is).
    appended: u64,
    /// Records that could not be written (the journal failed) and are
    /// kept, in order, for the next append that works.
    held: Vec<u8>,
    /// The end of the last record written.
    end: Position,
}

thread_local! {
    /// The calling thread's buffer for a record.
    static RECORD: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(4096));
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

fn open_segment(dir: &Path, number: u64) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(segment_path(dir, number))
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
        let file = open_segment(&building, 1)?;
        let mapped = mappable(&file);
        let dir = root.join(&id);
        std::fs::rename(&building, &dir)?;
        Ok(Journal {
            dir,
            id,
            segment_bytes: segment_bytes.max(1),
            mapped,
            runs: Mutex::new(Vec::new()),
            first_run: OnceLock::new(),
            state: Padded(Mutex::new(Segment {
                file: Some(file),
                number: 1,
                written: 0,
                reserved: 0,
                window: None,
                appended: 0,
                held: Vec::new(),
                end: Position::START,
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

    /// Whether appends copy into a mapping (else one `pwrite()` each).
    pub fn mapped(&self) -> bool {
        self.mapped
    }

    /// Appends `ev`: once this returns `Ok`, the event is in the kernel
    /// (the page cache of the segment's file) and survives `kill -9` of
    /// this process, without a system call of its own.
    ///
    /// When the journal cannot take it (the disk is full, the file cannot
    /// grow), the event is dropped if `durable` and not `keep_on_failure`
    /// (a request that will not be sent); otherwise it is kept and written
    /// first by the next append or [`Journal::flush`] that works.
    pub fn append(&self, ev: &dyn Record, durable: bool, keep_on_failure: bool) -> io::Result<()> {
        self.note_run(&ev.session().run)?;
        with_record(ev, |record| {
            let mut st = lock(&self.state);
            st.appended += 1;
            let result = self
                .write_held(&mut st)
                .and_then(|()| self.put(&mut st, record));
            if result.is_err() && (!durable || keep_on_failure) {
                self.hold(&mut st, record);
            }
            result
        })
    }

    /// Keeps `record` for the next write that works.
    fn hold(&self, st: &mut Segment, record: &[u8]) {
        if st.held.len() + record.len() > HELD_KEEP {
            if !st.held.is_empty() {
                tracing::error!(bytes = st.held.len(), dir = %self.dir.display(),
                    "the audit journal has failed for so long that the events waiting for it are dropped");
            }
            st.held = Vec::new();
        }
        st.held.extend_from_slice(record);
    }

    /// Writes the records held while the journal failed, in order.
    fn write_held(&self, st: &mut Segment) -> io::Result<()> {
        if st.held.is_empty() {
            return Ok(());
        }
        let held = std::mem::take(&mut st.held);
        let mut at = 0;
        let mut result = Ok(());
        for rec in split(&held, usize::MAX).records {
            let whole = &held[at..at + 4 + rec.len()];
            if let Err(e) = self.put(st, whole) {
                result = Err(e);
                break;
            }
            at += whole.len();
        }
        if result.is_err() {
            let mut rest = held[at..].to_vec();
            rest.extend_from_slice(&st.held);
            st.held = rest;
        }
        result
    }

    /// Copies one record (with its length prefix) to the end of the
    /// segment: into the mapped window or, unmapped, with one `pwrite()`.
    fn put(&self, st: &mut Segment, rec: &[u8]) -> io::Result<()> {
        let at = st.written;
        if self.mapped {
            self.window(st, rec.len())?.put(at, rec);
        } else {
            let file = self.segment_file(st)?;
            if let Err(e) = file.write_all_at(rec, at) {
                // No part of it stays for a reader to take for a record.
                if file.set_len(at).is_err() {
                    st.file = None;
                }
                return Err(e);
            }
        }
        st.written += rec.len() as u64;
        st.end = Position {
            segment: st.number,
            offset: st.written,
        };
        if st.written >= self.segment_bytes {
            self.next_segment(st);
        }
        Ok(())
    }

    fn segment_file<'s>(&self, st: &'s mut Segment) -> io::Result<&'s mut File> {
        if st.file.is_none() {
            st.file = Some(open_segment(&self.dir, st.number)?);
        }
        st.file
            .as_mut()
            .ok_or_else(|| io::Error::other("no audit journal segment"))
    }

    /// A window that holds the next `n` bytes of the segment: the current
    /// one, or the next part of the segment reserved and mapped.
    fn window<'s>(&self, st: &'s mut Segment, n: usize) -> io::Result<&'s mut Window> {
        let at = st.written;
        if let Some(w) = st.window.take().filter(|w| w.holds(at, n)) {
            return Ok(st.window.insert(w));
        }
        let start = at - at % window::MAP_ALIGN;
        // No more than the segment takes (it closes past its size).
        let len = WINDOW_BYTES
            .min(self.segment_bytes.saturating_sub(start))
            .max(at - start + n as u64)
            .div_ceil(window::MAP_ALIGN)
            * window::MAP_ALIGN;
        // Zeros only after what is reserved already: before it are records.
        let (from, to) = (st.reserved.max(start), start + len);
        let file = self.segment_file(st)?;
        let mapped = reserve(file, from, to.saturating_sub(from))
            .and_then(|()| Window::map(file, start, len as usize));
        match mapped {
            Ok(w) => {
                st.reserved = st.reserved.max(to);
                Ok(st.window.insert(w))
            }
            Err(e) => {
                // Opened again for the next attempt.
                st.file = None;
                Err(e)
            }
        }
    }

    /// Closes the segment (cut to its records) and starts the next, which
    /// exists before anything is written to it, so that a reader that
    /// finds it knows this one is complete.
    fn next_segment(&self, st: &mut Segment) {
        st.close();
        st.number += 1;
        st.written = 0;
        st.reserved = 0;
        st.file = open_segment(&self.dir, st.number).ok();
    }

    /// Test hook: appends with one `pwrite()` each, as on a filesystem
    /// where a mapping is not safe.
    #[cfg(test)]
    pub fn without_mapping(mut self) -> Journal {
        self.mapped = false;
        self
    }

    /// Test hook: the segment's mapping is dropped and its handle becomes
    /// read-only, so the next append fails (EBADF) the way a full disk
    /// would.
    #[cfg(test)]
    pub fn break_writes(&self) -> io::Result<()> {
        let mut st = lock(&self.state);
        st.window = None;
        let path = segment_path(&self.dir, st.number);
        st.file = Some(File::open(path)?);
        Ok(())
    }

    /// Writes the events held while the journal failed; `Ok(true)` when
    /// there were some (so the journal is known to take writes again).
    pub fn flush(&self) -> io::Result<bool> {
        let mut st = lock(&self.state);
        let held = !st.held.is_empty();
        self.write_held(&mut st).map(|()| held)
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
        lock(&self.state).appended
    }

    /// The end of the last record written: everything appended before is
    /// at or before this position.
    pub fn end(&self) -> Position {
        lock(&self.state).end
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.state
            .0
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .close();
    }
}

impl Segment {
    /// Unmaps the segment and cuts its file to its records (a reader stops
    /// at the reserved zeros anyway, e.g. after `kill -9`).
    fn close(&mut self) {
        self.window = None;
        if let Some(file) = self.file.take() {
            if let Err(e) = file.set_len(self.written) {
                tracing::debug!(error = %e, "could not cut an audit journal segment to its records");
            }
        }
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
    /// Read no further than this (the writer's last record, for a journal
    /// being written).
    limit: Option<Position>,
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
            limit: None,
        }
    }

    /// Reads no further than `end` ([`Journal::end`], for the journal
    /// being written: what is past it may still be being copied).
    pub fn limit(&mut self, end: Position) {
        self.limit = Some(end);
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
        let mut size = file.metadata()?.len();
        match self.limit {
            Some(end) if end.segment == segment => size = size.min(end.offset),
            // Started after the writer's last record.
            Some(end) if end.segment < segment => size = 0,
            _ => {}
        }
        let mut want = READ_CHUNK;
        loop {
            let available = size.saturating_sub(self.pos.offset);
            let n = available.min(want as u64) as usize;
            self.buf.resize(n, 0);
            file.read_exact_at(&mut self.buf, self.pos.offset)?;
            let Split {
                records,
                used,
                first,
                ended,
            } = split(&self.buf, max);
            if records.is_empty() {
                if let Some(len) = first.filter(|l| *l as u64 <= available && !ended) {
                    // One record larger than the chunk: read all of it.
                    want = len;
                    continue;
                }
                self.partial = available > 0 && !ended;
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
            self.partial = !ended && (used as u64) < available;
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

/// The complete records at the start of `buf` (at most `max`).
struct Split<'a> {
    records: Vec<&'a [u8]>,
    /// The bytes they take.
    used: usize,
    /// The length of the first record, complete or not (with its prefix).
    first: Option<usize>,
    /// The records end at a zero length: the rest of the segment is
    /// reserved and not written yet (or was being written when its writer
    /// died).
    ended: bool,
}

fn split(buf: &[u8], max: usize) -> Split<'_> {
    let mut out = Split {
        records: Vec::new(),
        used: 0,
        first: None,
        ended: false,
    };
    while out.records.len() < max {
        let at = out.used;
        let Some(head) = buf.get(at..at + 4) else {
            break;
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if len == 0 {
            out.ended = true;
            break;
        }
        out.first.get_or_insert(4 + len);
        let Some(rec) = buf.get(at + 4..at + 4 + len) else {
            break;
        };
        out.records.push(rec);
        out.used += 4 + len;
    }
    out
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
