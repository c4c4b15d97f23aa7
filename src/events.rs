//! Live activity, as data: what the proxy did, for `hoopctl watch`,
//! `hoopctl pending` and (later) the recorder. No rendering here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// One thing that happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A request was forwarded (after masking).
    Request {
        request_id: String,
        session: Option<String>,
        method: String,
        host: String,
        path: String,
        /// Findings per detector in what left the machine.
        masked: BTreeMap<String, usize>,
    },
    /// Its response head arrived.
    Response {
        request_id: String,
        status: u16,
        latency_ms: u64,
    },
    /// A Messages answer ended: what the model said, in numbers.
    Answer {
        request_id: String,
        model: Option<String>,
        input_tokens: Option<u64>,
        output_tokens: Option<u64>,
        stop_reason: Option<String>,
        /// How the stream ended: `complete`, `agent_gone`, `upstream_broke`, ...
        ended: String,
    },
    /// A tool call the model asked for, and what policy decided.
    ToolCall {
        request_id: String,
        tool_use_id: String,
        tool: String,
        summary: String,
        decision: String,
        rule: Option<String>,
        reason: Option<String>,
    },
    /// A tool call waits for a person.
    ApprovalRequested {
        approval: crate::approvals::Approval,
    },
    /// The person (or the timeout) decided.
    ApprovalDecided {
        id: String,
        approved: bool,
        by: String,
        reason: Option<String>,
    },
    /// A CONNECT target was denied or tunneled.
    Egress { host: String, decision: String },
    /// Unknown event kinds from newer proxies are skipped, not rejected.
    #[serde(other)]
    Other,
}

/// The broadcast bus. Slow watchers lose old events rather than slow the proxy.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Event>,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

impl Bus {
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(4096).0,
        }
    }

    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    /// Whether anyone listens: the hot path builds events only then.
    pub fn active(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
