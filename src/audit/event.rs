//! What is recorded. The proxy builds [`Event`]s; the writer chains and
//! stores them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub agent_session: Option<Arc<str>>,
    /// The client's `User-Agent`, when the event came from a request.
    pub user_agent: Option<Arc<str>>,
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
    /// Structured fields (small): a JSON object, serialised when the event
    /// is made (no tree of values on the request's path). The store keeps
    /// it as canonical JSON (sorted keys).
    pub data: String,
    /// Large content (masked request body, assembled response), stored zstd-compressed.
    pub body: Option<bytes::Bytes>,
    /// What full-text search indexes (prompt text, response text, commands).
    pub text: Option<String>,
    /// Facts the store reads from `body` when it indexes the event, so
    /// that the request's path never parses a body a second time.
    pub derive: Option<Derive>,
}

/// What the journal needs of an event. [`Event`] owns its parts; a
/// [`Draft`] borrows them, so the request's path records without building
/// an event first.
pub trait Record {
    fn at_ms(&self) -> i64;
    fn kind(&self) -> Kind;
    fn session(&self) -> &SessionRef;
    fn request_id(&self) -> Option<&str>;
    /// Appends `data` as JSON text to `out`.
    fn write_data(&self, out: &mut Vec<u8>);
    fn text(&self) -> Option<&str>;
    fn body(&self) -> Option<&[u8]>;
    fn derive(&self) -> Option<Derive>;
}

impl Record for Event {
    fn at_ms(&self) -> i64 {
        self.at_ms
    }
    fn kind(&self) -> Kind {
        self.kind
    }
    fn session(&self) -> &SessionRef {
        &self.session
    }
    fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }
    fn write_data(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.data.as_bytes());
    }
    fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }
    fn body(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }
    fn derive(&self) -> Option<Derive> {
        self.derive
    }
}

/// An event made of borrowed parts, `data` serialised straight into the
/// journal.
pub struct Draft<'a, D: Serialize> {
    pub session: &'a SessionRef,
    pub at_ms: i64,
    pub kind: Kind,
    pub request_id: Option<&'a str>,
    pub data: D,
    pub text: Option<&'a str>,
    pub body: Option<&'a [u8]>,
    pub derive: Option<Derive>,
}

impl<'a, D: Serialize> Draft<'a, D> {
    /// A draft now, with only `data`.
    pub fn new(session: &'a SessionRef, kind: Kind, data: D) -> Self {
        Draft {
            session,
            at_ms: now_ms(),
            kind,
            request_id: None,
            data,
            text: None,
            body: None,
            derive: None,
        }
    }
}

impl<D: Serialize> Record for Draft<'_, D> {
    fn at_ms(&self) -> i64 {
        self.at_ms
    }
    fn kind(&self) -> Kind {
        self.kind
    }
    fn session(&self) -> &SessionRef {
        self.session
    }
    fn request_id(&self) -> Option<&str> {
        self.request_id
    }
    fn write_data(&self, out: &mut Vec<u8>) {
        write_json(out, &self.data);
    }
    fn text(&self) -> Option<&str> {
        self.text
    }
    fn body(&self) -> Option<&[u8]> {
        self.body
    }
    fn derive(&self) -> Option<Derive> {
        self.derive
    }
}

/// Appends `data` as JSON to `out`; what cannot be serialised (a map
/// with non-string keys, a failing `Serialize`) becomes
/// `{"unserialisable": why}`.
fn write_json(out: &mut Vec<u8>, data: &impl Serialize) {
    let at = out.len();
    if let Err(e) = serde_json::to_writer(&mut *out, data) {
        out.truncate(at);
        let _ = serde_json::to_writer(out, &serde_json::json!({ "unserialisable": e.to_string() }));
    }
}

/// See [`Event::derive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derive {
    /// The body is a Messages request: its `model`, `stream` and number of
    /// `messages` go into `data`, its newest user turn into `text`.
    MessagesRequest,
}

impl Event {
    /// An event now; `data` is serialised at once (a `json!` value, or a
    /// struct of borrowed fields where it must be cheap).
    pub fn new(session: SessionRef, kind: Kind, data: impl Serialize) -> Self {
        let mut out = Vec::with_capacity(256);
        write_json(&mut out, &data);
        // serde_json writes UTF-8.
        let data = String::from_utf8(out).unwrap_or_default();
        Self {
            session,
            at_ms: now_ms(),
            kind,
            request_id: None,
            data,
            body: None,
            text: None,
            derive: None,
        }
    }

    /// `data` as a value (`{"undecodable": text}` when it is not JSON).
    pub fn data_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|_| serde_json::json!({ "undecodable": self.data }))
    }
}

impl Derive {
    /// Fills in what this derivation reads from `body` (the store calls
    /// this when it indexes the event).
    pub fn apply(
        self,
        data: &mut serde_json::Value,
        text: &mut Option<String>,
        body: Option<&[u8]>,
    ) {
        match self {
            Derive::MessagesRequest => {
                let summary = body.and_then(crate::anthropic::request::summarize);
                if let (Some(s), Some(data)) = (summary, data.as_object_mut()) {
                    data.insert("model".into(), s.model);
                    data.insert("stream".into(), s.stream);
                    data.insert("messages".into(), s.messages.into());
                    if text.is_none() {
                        *text = s.prompt;
                    }
                }
            }
        }
    }
}

/// Unix milliseconds now (straight from the clock: no calendar).
pub fn now_ms() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(before) => -(before.duration().as_millis() as i64),
    }
}
