//! What is recorded. The proxy builds [`Event`]s; the writer chains and
//! stores them.

use std::sync::Arc;

use serde::Serialize;

/// The kinds of event, stored by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A request that left the machine (after masking): method, host, path,
    /// headers with secrets removed, sizes, masking counts; body = the masked body.
    Request,
    /// Its answer: status, latency, model, usage, stop reason, tool calls;
    /// body = the assembled text and tool calls as JSON (never raw SSE).
    Response,
    /// A tool call the model asked for and what policy decided (rule, reason).
    ToolCall,
    /// A person's (or the timeout's) decision on a held tool call: approver, time.
    Decision,
    /// A CONNECT target: intercepted, tunneled (with bytes each way) or denied.
    Egress,
    /// An error hoopctl answered in the agent's place.
    Error,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::Response => "response",
            Kind::ToolCall => "tool_call",
            Kind::Decision => "decision",
            Kind::Egress => "egress",
            Kind::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "request" => Kind::Request,
            "response" => Kind::Response,
            "tool_call" => Kind::ToolCall,
            "decision" => Kind::Decision,
            "egress" => Kind::Egress,
            "error" => Kind::Error,
            _ => return None,
        })
    }
}

/// Facts about one proxy run, shared by all its sessions.
#[derive(Debug, Clone, Serialize)]
pub struct RunMeta {
    /// Random per proxy process.
    pub run_id: String,
    pub started_at_ms: i64,
    pub profile: String,
    /// `direct` or `gateway`.
    pub mode: String,
    pub gateway: Option<String>,
    /// The logged-in user (email, else subject), when known.
    pub user: Option<String>,
    pub hoopctl_version: String,
}

/// Which session an event belongs to: one proxy run and one agent session
/// (`X-Claude-Code-Session-Id`; `None` for traffic without one, e.g. CONNECTs).
#[derive(Debug, Clone)]
pub struct SessionRef {
    pub run: Arc<RunMeta>,
    pub agent_session: Option<String>,
    /// The client's `User-Agent`, when the event came from a request.
    pub user_agent: Option<String>,
}

impl SessionRef {
    /// The session's id: 16 hex characters of SHA-256 over the run id and
    /// the agent session id, so every process derives it without a lookup.
    pub fn id(&self) -> String {
        session_id(&self.run.run_id, self.agent_session.as_deref())
    }
}

/// See [`SessionRef::id`].
pub fn session_id(run_id: &str, agent_session: Option<&str>) -> String {
    let mut input = run_id.as_bytes().to_vec();
    input.push(0);
    input.extend_from_slice(agent_session.unwrap_or("").as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA256, &input);
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One thing to record.
#[derive(Debug, Clone)]
pub struct Event {
    pub session: SessionRef,
    /// Unix milliseconds.
    pub at_ms: i64,
    pub kind: Kind,
    pub request_id: Option<String>,
    /// Structured fields (small). Stored as canonical JSON (sorted keys).
    pub data: serde_json::Value,
    /// Large content (masked request body, assembled response), stored zstd-compressed.
    pub body: Option<Vec<u8>>,
    /// What full-text search indexes (prompt text, response text, commands).
    pub text: Option<String>,
}

impl Event {
    pub fn new(session: SessionRef, kind: Kind, data: serde_json::Value) -> Self {
        Self {
            session,
            at_ms: now_ms(),
            kind,
            request_id: None,
            data,
            body: None,
            text: None,
        }
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
