//! The control socket's wire format: one JSON object per line.
//!
//! The server greets with `{"hello":{"version":1,...}}`. A client sends
//! commands; each gets one `{"reply":...}`; after `watch` the server also
//! sends `{"event":...}` lines. Unknown fields are ignored, unknown
//! commands get an error reply, so versions can grow.

use serde::{Deserialize, Serialize};

use crate::approvals::Approval;
use crate::events::Event;

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    pub pid: u32,
    pub profile: String,
    pub listen: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    Pending,
    Approve { id: String },
    Deny { id: String, reason: Option<String> },
    Watch,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Vec<Approval>>,
}

/// Any line the server sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerLine {
    Hello(Hello),
    Reply(Reply),
    Event(Event),
}
