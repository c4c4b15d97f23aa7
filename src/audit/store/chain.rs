//! What the hash chain covers, and the work done on the caller's thread
//! before an event reaches the writer (canonical JSON, zstd, SHA-256).
//!
//! Each event's hash is
//!
//! ```text
//! SHA-256( prev_hash (32 bytes; all zero for seq 1) || canonical )
//! ```
//!
//! where `canonical` is an unambiguous encoding of the event as stored:
//! the domain tag [`DOMAIN`], then the fields `session_id`, `seq`,
//! `at_ms`, `kind`, `request_id`, `data` (the canonical JSON text stored),
//! `text` (what search indexes) and `body_sha256` (the hex digest of the
//! uncompressed body). Integers are 8 bytes big-endian; every other field
//! is a presence byte (`0` = none, `1` = some) followed, when present, by
//! its length as 8 bytes big-endian and its UTF-8 bytes.

use std::cell::RefCell;
use std::sync::Arc;

use ring::digest::{Context, SHA256};
use serde_json::Value;

use super::Error;
use crate::audit::event::{Event, Kind, RunMeta};

/// The first bytes of every canonical encoding: names the format, so a
/// later format can never be confused with this one.
pub const DOMAIN: &[u8] = b"hoopctl.audit.chain.v1";

/// zstd level for bodies: fast, and about 4x on JSON.
const ZSTD_LEVEL: i32 = 3;

/// The fields one link of the chain covers, borrowed from wherever they are.
#[derive(Debug, Clone, Copy)]
pub struct Canon<'a> {
    pub session_id: &'a str,
    pub seq: i64,
    pub at_ms: i64,
    pub kind: &'a str,
    pub request_id: Option<&'a str>,
    pub data: &'a str,
    pub text: Option<&'a str>,
    pub body_sha256: Option<&'a str>,
}

impl Canon<'_> {
    /// The link's hash given the previous one.
    pub fn hash(&self, prev: &[u8; 32]) -> [u8; 32] {
        let mut ctx = Context::new(&SHA256);
        ctx.update(prev);
        ctx.update(DOMAIN);
        field(&mut ctx, Some(self.session_id));
        ctx.update(&self.seq.to_be_bytes());
        ctx.update(&self.at_ms.to_be_bytes());
        field(&mut ctx, Some(self.kind));
        field(&mut ctx, self.request_id);
        field(&mut ctx, Some(self.data));
        field(&mut ctx, self.text);
        field(&mut ctx, self.body_sha256);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }
}

fn field(ctx: &mut Context, value: Option<&str>) {
    match value {
        None => ctx.update(&[0]),
        Some(s) => {
            ctx.update(&[1]);
            ctx.update(&(s.len() as u64).to_be_bytes());
            ctx.update(s.as_bytes());
        }
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Parses 64 hex characters; `None` for anything else.
pub fn unhex32(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&SHA256, bytes).as_ref())
}

/// JSON text with object keys sorted (by their UTF-8 bytes) at every
/// level and no insignificant whitespace, whatever `serde_json`'s map
/// features are: the same value always gives the same text.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::with_capacity(64);
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            // Scalars: serde_json's own text, which is already canonical.
            out.push_str(&value.to_string());
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
    }
}

/// An event ready for the writer: everything CPU-heavy already done.
#[derive(Debug)]
pub struct Prepared {
    pub session_id: String,
    pub run: Arc<RunMeta>,
    pub agent_session: Option<String>,
    pub user_agent: Option<String>,
    pub at_ms: i64,
    pub kind: Kind,
    pub request_id: Option<String>,
    /// Canonical JSON.
    pub data: String,
    pub text: Option<String>,
    /// zstd-compressed.
    pub body: Option<Vec<u8>>,
    pub body_len: Option<i64>,
    pub body_sha256: Option<String>,
    /// Counts toward the session's `blocked` figure.
    pub blocked: bool,
}

impl Prepared {
    pub fn canon(&self, seq: i64) -> Canon<'_> {
        Canon {
            session_id: &self.session_id,
            seq,
            at_ms: self.at_ms,
            kind: self.kind.as_str(),
            request_id: self.request_id.as_deref(),
            data: &self.data,
            text: self.text.as_deref(),
            body_sha256: self.body_sha256.as_deref(),
        }
    }
}

/// Does the indexer's work before the insert: derived fields, canonical
/// JSON, SHA-256 and zstd of the body.
pub fn prepare(ev: Event) -> Result<Prepared, Error> {
    let session_id = ev.session.id();
    let mut value = ev.data_value();
    let mut text = ev.text;
    if let Some(derive) = ev.derive {
        derive.apply(&mut value, &mut text, ev.body.as_deref());
    }
    let data = canonical_json(&value);
    let blocked = is_blocked(ev.kind, &value);
    let (body, body_len, body_sha256) = match ev.body {
        None => (None, None, None),
        Some(raw) => {
            let sha = sha256_hex(&raw);
            let packed = compress(&raw).map_err(Error::Compress)?;
            (Some(packed), Some(raw.len() as i64), Some(sha))
        }
    };
    Ok(Prepared {
        session_id,
        run: ev.session.run,
        agent_session: ev.session.agent_session.map(|a| a.to_string()),
        user_agent: ev
            .session
            .user_agent
            .filter(|ua| !ua.is_empty())
            .map(|ua| ua.to_string()),
        at_ms: ev.at_ms,
        kind: ev.kind,
        request_id: ev.request_id,
        data,
        text: text.filter(|t| !t.is_empty()),
        body,
        body_len,
        body_sha256,
        blocked,
    })
}

/// Bodies up to this size reuse the calling thread's zstd context; larger
/// ones get their own, so no thread keeps a context sized for megabytes.
const REUSE_CONTEXT_UP_TO: usize = 64 * 1024;

thread_local! {
    /// One zstd context per calling thread: creating one per body costs
    /// more than compressing a small body.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { RefCell::new(None) };
}

fn compress(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    if raw.len() > REUSE_CONTEXT_UP_TO {
        return zstd::bulk::compress(raw, ZSTD_LEVEL);
    }
    COMPRESSOR.with(|cell| {
        let mut slot = cell.try_borrow_mut().map_err(std::io::Error::other)?;
        let compressor = match &mut *slot {
            Some(c) => c,
            None => slot.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
        };
        compressor.compress(raw)
    })
}

/// Whether an event records something refused: a tool call blocked by
/// policy, a held call denied (by a person or the timeout), or an egress
/// target denied. Read from `data.decision` (`blocked`, `block`, `denied`,
/// `deny`, `rejected`) or, for decisions, `data.approved == false`.
pub fn is_blocked(kind: Kind, data: &Value) -> bool {
    let refused = |v: Option<&Value>| {
        matches!(
            v.and_then(Value::as_str),
            Some("blocked" | "block" | "denied" | "deny" | "rejected")
        )
    };
    match kind {
        Kind::ToolCall | Kind::Egress => refused(data.get("decision")),
        Kind::Decision => {
            refused(data.get("decision")) || data.get("approved") == Some(&Value::Bool(false))
        }
        Kind::Request | Kind::Response | Kind::Error => false,
    }
}
