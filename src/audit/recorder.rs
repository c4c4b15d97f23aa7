//! The proxy's handle on the record: builds sessions for one run, records
//! requests in the journal before they are forwarded, and applies
//! `fail_closed`.
//!
//! Owns: what a failing store means for traffic. Must not: know HTTP (the
//! proxy decides what goes into each event).

use std::cell::RefCell;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use super::event::{now_ms, Record, RunMeta, SessionRef};
use super::store::{self, Writer};

thread_local! {
    /// The last agent session id and user agent this thread saw: the same
    /// few values come with every request, so they are shared, not copied.
    static LAST_AGENT_SESSION: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
    static LAST_USER_AGENT: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
    /// This thread's own copy of the last run it recorded for: every event
    /// holds its run, and a count shared by all threads would bounce
    /// between their cores on every request.
    static LAST_RUN: RefCell<Option<Arc<RunMeta>>> = const { RefCell::new(None) };
}

/// The thread's last value in `cache` when `same` says it will do, else
/// a new one from `make`, kept for next time.
fn thread_cached<T: ?Sized>(
    cache: &'static std::thread::LocalKey<RefCell<Option<Arc<T>>>>,
    same: impl FnOnce(&T) -> bool,
    make: impl FnOnce() -> Arc<T>,
) -> Arc<T> {
    cache.with(|cell| {
        let Ok(mut last) = cell.try_borrow_mut() else {
            return make();
        };
        match &*last {
            Some(hit) if same(hit) => hit.clone(),
            _ => last.insert(make()).clone(),
        }
    })
}

/// `run`, as this thread's own copy.
fn thread_run(run: &Arc<RunMeta>) -> Arc<RunMeta> {
    thread_cached(
        &LAST_RUN,
        |mine| mine.run_id == run.run_id,
        || Arc::new(RunMeta::clone(run)),
    )
}

/// `s` as a shared string, reusing the thread's last one when equal.
fn shared_str(
    cache: &'static std::thread::LocalKey<RefCell<Option<Arc<str>>>>,
    s: &str,
) -> Arc<str> {
    thread_cached(cache, |hit| hit == s, || Arc::from(s))
}

/// How often a failing store is reported in the log.
const WARN_EVERY_MS: i64 = 10_000;

pub struct Recorder {
    writer: Writer,
    run: Arc<RunMeta>,
    fail_closed: bool,
    last_warning: AtomicI64,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("run", &self.run.run_id)
            .field("fail_closed", &self.fail_closed)
            .finish()
    }
}

impl Recorder {
    pub fn new(writer: Writer, run: RunMeta, fail_closed: bool) -> Self {
        Self {
            writer,
            run: Arc::new(run),
            fail_closed,
            last_warning: AtomicI64::new(0),
        }
    }

    pub fn run(&self) -> &RunMeta {
        &self.run
    }

    pub fn fail_closed(&self) -> bool {
        self.fail_closed
    }

    /// The session of an agent session id in this run.
    pub fn session(&self, agent_session: Option<&str>, user_agent: Option<&str>) -> SessionRef {
        SessionRef {
            run: thread_run(&self.run),
            agent_session: agent_session.map(|a| shared_str(&LAST_AGENT_SESSION, a)),
            user_agent: user_agent.map(|ua| shared_str(&LAST_USER_AGENT, ua)),
        }
    }

    /// Records `ev` in the journal: once this returns, the event survives
    /// `kill -9`. `Err` (with the reason) only when the journal cannot
    /// take it and the policy is fail-closed: the event is then not
    /// recorded, and the caller must not send what it describes.
    /// Otherwise a failure is logged, traffic goes on, and the event is
    /// kept for the next append that works.
    pub fn durable(&self, ev: impl Record) -> Result<(), String> {
        let written = if self.fail_closed {
            self.writer.append_durable(ev)
        } else {
            self.writer.append_durable_or_later(ev)
        };
        match written {
            Ok(()) => Ok(()),
            Err(e) => self.failed(&e),
        }
    }

    /// Records `ev` without waiting.
    pub fn record(&self, ev: impl Record) {
        if let Err(e) = self.writer.append(ev) {
            let _ = self.failed(&e);
        }
    }

    fn failed(&self, e: &store::Error) -> Result<(), String> {
        let now = now_ms();
        let last = self.last_warning.load(Ordering::Relaxed);
        if now - last >= WARN_EVERY_MS
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            if self.fail_closed {
                tracing::error!(error = %e, "the audit store cannot record; traffic is stopped ([audit] fail_closed = true)");
            } else {
                tracing::error!(error = %e, "the audit store cannot record; traffic goes on UNRECORDED ([audit] fail_closed = false)");
            }
        }
        if self.fail_closed {
            Err(e.to_string())
        } else {
            Ok(())
        }
    }

    /// Waits until everything recorded so far is indexed (shutdown).
    pub async fn flush(&self) {
        if let Err(e) = self.writer.flush().await {
            tracing::error!(error = %e, "could not index the last audit events; they stay in the journal and are indexed by the next hoopctl that opens the store");
        }
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }
}
