//! The columns of the two tables as text: what is drawn and what the
//! filter searches, so the two cannot disagree.

use super::app::{FeedItem, RequestRow};
use super::text;

/// A tool call's decision, as a badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Badge {
    Allowed,
    Blocked,
    Waiting,
    Approved,
    Denied,
    Other,
}

impl Badge {
    pub(super) fn of(decision: &str) -> Self {
        let d = decision.trim_start().to_ascii_lowercase();
        if d == "waiting" {
            Badge::Waiting
        } else if d.starts_with("approved") {
            Badge::Approved
        } else if d.starts_with("allowed") {
            Badge::Allowed
        } else if d.starts_with("denied") || d == "deny" {
            Badge::Denied
        } else if d.starts_with("blocked") {
            Badge::Blocked
        } else {
            Badge::Other
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Badge::Allowed => "ALLOWED",
            Badge::Blocked => "BLOCKED",
            Badge::Waiting => "WAITING",
            Badge::Approved => "APPROVED",
            Badge::Denied => "DENIED",
            Badge::Other => "OTHER",
        }
    }

    pub(super) fn stops(self) -> bool {
        matches!(self, Badge::Blocked | Badge::Denied)
    }
}

/// Whether any column contains `needle` (already lowercase).
pub(super) fn matches(cells: &[String], needle: &str) -> bool {
    cells.iter().any(|c| c.to_lowercase().contains(needle))
}

/// The columns of a request row, as shown (and as the filter sees them):
/// time, session, method, path, model, status, latency, tokens, masked.
pub(super) fn request_cells(r: &RequestRow) -> [String; 9] {
    let dash = || "—".to_string();
    let tokens = match (r.input_tokens, r.output_tokens) {
        (None, None) => String::new(),
        (i, o) => format!(
            "{}/{}",
            i.map_or_else(dash, text::tokens),
            o.map_or_else(dash, text::tokens)
        ),
    };
    let path = match (r.path.is_empty(), r.method.is_empty()) {
        (true, true) => format!("({})", text::clean(&r.request_id, 20)),
        _ => r.path.clone(),
    };
    [
        text::hms(r.at_ms),
        text::prefix(&r.session, 8).to_string(),
        r.method.clone(),
        path,
        short_model(&r.model).to_string(),
        r.status.map(|s| s.to_string()).unwrap_or_default(),
        r.latency_ms.map(text::latency).unwrap_or_default(),
        tokens,
        if r.masked == 0 {
            String::new()
        } else {
            r.masked.to_string()
        },
    ]
}

/// `claude-sonnet-4-5-20250929` → `sonnet-4-5`: what tells models apart.
fn short_model(m: &str) -> &str {
    let m = m.strip_prefix("claude-").unwrap_or(m);
    match m.rsplit_once('-') {
        Some((head, date)) if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => m,
    }
}

/// The columns of a feed item: time, decision, tool, command/file, rule/why.
pub(super) fn feed_cells(f: &FeedItem) -> [String; 5] {
    let label = match f.badge {
        Badge::Other => text::prefix(&f.decision, 8).to_uppercase(),
        b => b.label().to_string(),
    };
    let decision = if f.decision.starts_with("allowed after") {
        "timed out, allowed"
    } else if f.decision.starts_with("denied: no decision") {
        "timed out, denied"
    } else {
        f.decision.as_str()
    };
    let plain = matches!(
        f.decision.as_str(),
        "allowed" | "blocked" | "waiting" | "approved" | "denied"
    );
    let why = match (f.rule.is_empty(), plain || f.badge == Badge::Other) {
        (true, true) => String::new(),
        (true, false) => decision.to_string(),
        (false, true) => f.rule.clone(),
        (false, false) => format!("{} · {decision}", f.rule),
    };
    [
        text::hms(f.at_ms),
        label,
        f.tool.clone(),
        f.summary.clone(),
        why,
    ]
}
