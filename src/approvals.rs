//! Tool calls waiting for a person: the registry of pending approvals.
//! The only path that resolves a hold; the first decision wins.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::events::{Bus, Event};

/// A pending approval as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub tool: String,
    /// The command, file or input summary.
    pub summary: String,
    pub rule: String,
    pub reason: String,
    pub session: Option<String>,
    /// Unix seconds.
    pub requested_at: i64,
    pub expires_at: i64,
}

/// How a hold ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Approved { by: String },
    Denied { by: String, reason: Option<String> },
    TimedOut,
}

#[derive(Debug, thiserror::Error)]
#[error("no pending approval {0} (already decided, timed out, or unknown)")]
pub struct NotPending(pub String);

struct Entry {
    approval: Approval,
    tx: oneshot::Sender<Resolution>,
}

/// The registry, shared by the inspector and the control socket.
pub struct Approvals {
    pending: Mutex<HashMap<String, Entry>>,
    bus: Bus,
}

impl Approvals {
    pub fn new(bus: Bus) -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
            bus,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        match self.pending.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Publishes `approval` and returns where its resolution will arrive.
    pub fn request(&self, approval: Approval) -> oneshot::Receiver<Resolution> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(
            approval.id.clone(),
            Entry {
                approval: approval.clone(),
                tx,
            },
        );
        self.bus.publish(Event::ApprovalRequested { approval });
        rx
    }

    /// Decides `id`. Fails when it is not pending (the first decision won).
    pub fn resolve(&self, id: &str, resolution: Resolution) -> Result<(), NotPending> {
        let entry = self
            .lock()
            .remove(id)
            .ok_or_else(|| NotPending(id.to_string()))?;
        let (approved, by, reason) = match &resolution {
            Resolution::Approved { by } => (true, by.clone(), None),
            Resolution::Denied { by, reason } => (false, by.clone(), reason.clone()),
            Resolution::TimedOut => (
                false,
                "timeout".to_string(),
                Some("no decision before the policy timeout".into()),
            ),
        };
        let _ = entry.tx.send(resolution);
        self.bus.publish(Event::ApprovalDecided {
            id: id.to_string(),
            approved,
            by,
            reason,
        });
        Ok(())
    }

    pub fn pending(&self) -> Vec<Approval> {
        let mut v: Vec<Approval> = self.lock().values().map(|e| e.approval.clone()).collect();
        v.sort_by_key(|a| a.requested_at);
        v
    }

    /// Denies everything still pending (shutdown).
    pub fn deny_all(&self, reason: &str) {
        let ids: Vec<String> = self.lock().keys().cloned().collect();
        for id in ids {
            let _ = self.resolve(
                &id,
                Resolution::Denied {
                    by: "hoopctl".into(),
                    reason: Some(reason.into()),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(id: &str) -> Approval {
        Approval {
            id: id.into(),
            tool: "Bash".into(),
            summary: "git push --force".into(),
            rule: "no-force-push".into(),
            reason: "rewrites history".into(),
            session: None,
            requested_at: 1,
            expires_at: 2,
        }
    }

    #[tokio::test]
    async fn first_decision_wins_and_events_are_published() {
        let bus = Bus::new();
        let mut events = bus.subscribe();
        let a = Approvals::new(bus);
        let rx = a.request(approval("a1"));
        assert_eq!(a.pending().len(), 1);
        a.resolve("a1", Resolution::Approved { by: "alice".into() })
            .unwrap();
        assert!(a
            .resolve(
                "a1",
                Resolution::Denied {
                    by: "bob".into(),
                    reason: None
                }
            )
            .is_err());
        assert_eq!(
            rx.await.unwrap(),
            Resolution::Approved { by: "alice".into() }
        );
        assert!(matches!(
            events.recv().await.unwrap(),
            Event::ApprovalRequested { .. }
        ));
        assert!(matches!(
            events.recv().await.unwrap(),
            Event::ApprovalDecided { approved: true, .. }
        ));
        assert!(a.pending().is_empty());
    }
}
