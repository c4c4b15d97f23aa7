//! The proxy's handle on the record: builds sessions for one run, records
//! requests durably before they are forwarded, everything else without
//! waiting, and applies `fail_closed`.
//!
//! Owns: what a failing store means for traffic. Must not: know HTTP (the
//! proxy decides what goes into each event).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use super::event::{now_ms, Event, RunMeta, SessionRef};
use super::store::{self, Writer};

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
            run: self.run.clone(),
            agent_session: agent_session.map(str::to_string),
            user_agent: user_agent.map(str::to_string),
        }
    }

    /// Records `ev` and waits until it is committed. `Err` (with the
    /// reason) only when the store fails and the policy is fail-closed;
    /// otherwise a failure is logged and traffic goes on.
    pub async fn durable(&self, ev: Event) -> Result<(), String> {
        match self.writer.append_durable(ev).await {
            Ok(()) => Ok(()),
            Err(e) => self.failed(&e),
        }
    }

    /// Records `ev` without waiting.
    pub fn record(&self, ev: Event) {
        if let Err(e) = self.writer.append(ev) {
            let _ = self.failed(&e);
        }
    }

    /// Whether the store is failing now (for requests under fail_closed
    /// that need not wait for a commit to find out).
    pub fn failing(&self) -> Option<String> {
        self.writer.failing()
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

    /// Waits until everything recorded so far is committed (shutdown).
    pub async fn flush(&self) {
        if let Err(e) = self.writer.flush().await {
            tracing::error!(error = %e, "could not commit the last audit events");
        }
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }
}
