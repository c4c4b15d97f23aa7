//! Limits shared by every accept loop (the proxy listener, the control
//! socket): a cap on connections served at once, and a pause after a failed
//! `accept()` that grows while it keeps failing.
//!
//! Owns: how many descriptors connections may hold, and the log line that
//! says a limit was reached (at most one per [`WARN_EVERY`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The first pause after a failed `accept()` (EMFILE and friends).
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// The longest pause between failed `accept()`s; the pause doubles up to it.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Descriptors kept back from connections for everything else (upstream
/// pools, the record, the CA, logs) when the cap is derived from the
/// process's descriptor limit.
pub const RESERVED_FDS: u64 = 64;
/// At most one "limit reached" log line per this long.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// The pause after failed `accept()`s: 10 ms doubling to 1 s, back to the
/// start after a success. A listener that cannot accept (no descriptors
/// left) must not spin: the connection stays in the backlog meanwhile.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: ACCEPT_BACKOFF_MIN,
        }
    }
}

impl Backoff {
    /// The pause to take now; the next one is twice as long (up to the max).
    pub(crate) fn failed(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(ACCEPT_BACKOFF_MAX);
        now
    }

    pub(crate) fn succeeded(&mut self) {
        self.next = ACCEPT_BACKOFF_MIN;
    }
}

/// A cap on the connections one listener serves at once. A connection
/// over it is closed at once (not queued: a queue of stalled clients would
/// starve real ones just the same), and a rate-limited line says so.
pub(crate) struct ConnLimit {
    what: &'static str,
    slots: Arc<Semaphore>,
    max: usize,
    refused: u64,
    warned: Option<Instant>,
}

impl ConnLimit {
    pub(crate) fn new(what: &'static str, max: usize) -> Self {
        let max = max.max(1);
        Self {
            what,
            slots: Arc::new(Semaphore::new(max)),
            max,
            refused: 0,
            warned: None,
        }
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// A slot for a new connection (held until the permit is dropped), or
    /// `None` when every slot is taken: the caller closes the connection.
    pub(crate) fn admit(&mut self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Some(permit);
        }
        self.refused += 1;
        if self.warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            tracing::warn!(
                listener = self.what,
                open = self.max,
                closed = self.refused,
                "connection limit reached: {} connections are open, so new ones are closed at once \
                 ({} so far). Stalled clients are closed when their timeouts pass; if real clients \
                 need more, raise the descriptor limit (ulimit -n)",
                self.max,
                self.refused
            );
            self.warned = Some(Instant::now());
        }
        None
    }
}

/// The cap for a listener: `max`, or less when the process's descriptor
/// limit leaves room for fewer (each proxied connection may hold two: the
/// agent's and the upstream's).
pub(crate) fn connection_cap(max: usize) -> usize {
    let room = nofile_limit()
        .map(|n| (n.saturating_sub(RESERVED_FDS) / 2).max(1))
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(max);
    max.min(room)
}

#[cfg(target_os = "linux")]
fn nofile_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(target_os = "linux"))]
fn nofile_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_max_and_resets() {
        let mut b = Backoff::default();
        let pauses: Vec<_> = (0..9).map(|_| b.failed()).collect();
        assert_eq!(pauses[0], Duration::from_millis(10));
        assert_eq!(pauses[1], Duration::from_millis(20));
        assert_eq!(pauses[6], Duration::from_millis(640));
        assert_eq!(pauses[7], ACCEPT_BACKOFF_MAX);
        assert_eq!(pauses[8], ACCEPT_BACKOFF_MAX);
        b.succeeded();
        assert_eq!(b.failed(), ACCEPT_BACKOFF_MIN);
    }

    #[test]
    fn the_cap_closes_connections_beyond_it_and_frees_slots() {
        let mut limit = ConnLimit::new("test", 2);
        let a = limit.admit().unwrap();
        let _b = limit.admit().unwrap();
        assert!(limit.admit().is_none());
        assert!(limit.admit().is_none());
        assert_eq!(limit.refused, 2);
        drop(a);
        assert!(limit.admit().is_some());
    }

    #[test]
    fn the_cap_leaves_descriptors_for_upstreams() {
        let cap = connection_cap(1_000_000);
        if let Some(n) = nofile_limit() {
            assert!(cap as u64 <= n.saturating_sub(RESERVED_FDS) / 2 + 1);
        }
        assert_eq!(connection_cap(3).min(3), connection_cap(3));
    }
}
