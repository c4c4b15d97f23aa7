//! The state of `hoopctl watch`: what the proxies reported, what the person
//! selected, typed and paused. Pure and synchronous: events and keys go in,
//! [`Action`]s come out; the runtime does all I/O and [`super::ui`] draws.
//!
//! Ingestion is O(1) amortized per event (a keyed ring per view); only the
//! approvals queue, which a person must read whole, is a plain list.

use std::collections::BTreeMap;

use crate::approvals::Approval;
use crate::control::protocol::Hello;
use crate::events::Event;

use super::cells::{feed_cells, matches, request_cells, Badge};
use super::ring::{Key, Ring};
use super::text;

/// How many requests and tool calls the views keep (the oldest go first).
pub const KEEP: usize = 2_000;
/// How long a notice stays in the footer.
const NOTICE_MS: i64 = 6_000;
const ERROR_MS: i64 = 15_000;
/// Longest text an input line accepts.
const INPUT_MAX: usize = 500;

/// What the runtime should do for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Quit,
    Approve {
        pid: u32,
        id: String,
    },
    Deny {
        pid: u32,
        id: String,
        reason: Option<String>,
    },
    /// Load this request from the audit store and call [`App::set_detail`].
    OpenDetail {
        pid: u32,
        request_id: String,
    },
}

/// One request's record, as the runtime loaded it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detail {
    pub title: String,
    /// (heading, preformatted text).
    pub sections: Vec<(String, String)>,
}

/// Which pane keys go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Focus {
    Approvals,
    Requests,
    Feed,
}

/// What a line of input is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Input {
    Filter,
    Deny { pid: u32, id: String },
}

pub(super) struct Proxy {
    pub listen: String,
    pub profile: String,
    /// Why it went away; `None` while attached.
    pub gone: Option<String>,
}

#[derive(Default)]
pub(super) struct RequestRow {
    pub pid: u32,
    pub request_id: String,
    pub at_ms: i64,
    pub session: String,
    pub method: String,
    pub host: String,
    pub path: String,
    pub model: String,
    pub status: Option<u16>,
    pub latency_ms: Option<u64>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub ended: String,
    pub masked: usize,
}

pub(super) struct FeedItem {
    pub pid: u32,
    pub request_id: String,
    pub at_ms: i64,
    pub tool: String,
    pub summary: String,
    pub badge: Badge,
    pub decision: String,
    pub rule: String,
    pub reason: String,
}

pub(super) struct Held {
    pub pid: u32,
    pub approval: Approval,
    /// "approving…" / "denying…" once the person decided, until it is gone.
    pub sent: Option<&'static str>,
}

pub(super) struct Notice {
    pub msg: String,
    pub error: bool,
    until_ms: i64,
}

pub(super) struct DetailView {
    pub pid: u32,
    pub request_id: String,
    pub content: Option<Detail>,
    pub scroll: usize,
    /// Lines shown in the last frame (a page for PgUp/PgDn).
    pub page: usize,
    /// Wrapped lines for one width, so a large record is wrapped once.
    pub wrapped: Option<(u16, Vec<(bool, String)>)>,
}

/// Per table (requests, feed): the anchored selection and scroll.
#[derive(Default, Clone, Copy)]
pub(super) struct View {
    /// Sequence number of the selected item; `None` follows the newest.
    pub sel: Option<u64>,
    pub offset: usize,
    /// Rows shown in the last frame (a page for PgUp/PgDn).
    pub page: usize,
}

/// The whole TUI state.
pub struct App {
    pub(super) color: bool,
    pub(super) now_ms: i64,
    pub(super) proxies: BTreeMap<u32, Proxy>,
    pub(super) requests: Ring<RequestRow>,
    pub(super) feed: Ring<FeedItem>,
    pub(super) held: Vec<Held>,
    pub(super) total_requests: u64,
    pub(super) total_blocked: u64,
    pub(super) focus: Focus,
    /// Where focus returns when the approvals queue empties.
    pub(super) focus_before: Focus,
    pub(super) held_sel: usize,
    pub(super) views: [View; 2],
    pub(super) input: Option<Input>,
    pub(super) filter: String,
    pub(super) deny_text: String,
    /// `Some((next request seq, next feed seq))` at the moment of pausing.
    pub(super) paused: Option<(u64, u64)>,
    pub(super) detail: Option<DetailView>,
    pub(super) help: bool,
    pub(super) notice: Option<Notice>,
    pub(super) quit: bool,
}

impl App {
    /// `color` is false under `NO_COLOR`: then only modifiers are used.
    pub fn new(color: bool) -> App {
        App {
            color,
            now_ms: 0,
            proxies: BTreeMap::new(),
            requests: Ring::new(KEEP),
            feed: Ring::new(KEEP),
            held: Vec::new(),
            total_requests: 0,
            total_blocked: 0,
            focus: Focus::Requests,
            focus_before: Focus::Requests,
            held_sel: 0,
            views: [View::default(); 2],
            input: None,
            filter: String::new(),
            deny_text: String::new(),
            paused: None,
            detail: None,
            help: false,
            notice: None,
            quit: false,
        }
    }

    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// A proxy attached, or came back. A restarted proxy (new pid, same
    /// address) replaces the entry of the one that went away.
    pub fn proxy_up(&mut self, hello: &Hello) {
        let listen = text::clean(&hello.listen, 100);
        let profile = text::clean(&hello.profile, 60);
        self.proxies
            .retain(|pid, p| *pid == hello.pid || p.gone.is_none() || p.listen != listen);
        self.proxies.insert(
            hello.pid,
            Proxy {
                listen,
                profile,
                gone: None,
            },
        );
    }

    /// A proxy's socket closed: its approvals can no longer be decided here.
    pub fn proxy_down(&mut self, pid: u32, why: &str) {
        let why = text::clean(why, 120);
        match self.proxies.get_mut(&pid) {
            Some(p) => p.gone = Some(why),
            None => {
                self.proxies.insert(
                    pid,
                    Proxy {
                        listen: String::new(),
                        profile: String::new(),
                        gone: Some(why),
                    },
                );
            }
        }
        self.remove_held(|h| h.pid == pid);
    }

    /// The proxy's pending approvals as a whole (sent on attach).
    pub fn pending(&mut self, pid: u32, list: Vec<Approval>) {
        self.remove_held(|h| h.pid == pid);
        let was_empty = self.held.is_empty();
        for a in list {
            self.add_held(pid, a);
        }
        if was_empty {
            // A queue that appears whole starts at its most urgent call.
            self.held_sel = 0;
        }
    }

    /// One live event from proxy `pid`, received at `now_ms` (unix ms).
    pub fn apply(&mut self, pid: u32, ev: Event, now_ms: i64) {
        self.now_ms = now_ms;
        match ev {
            Event::Request {
                request_id,
                session,
                method,
                host,
                path,
                masked,
            } => {
                let row = self.row(pid, request_id, now_ms);
                row.session = text::clean(session.as_deref().unwrap_or(""), 80);
                row.method = text::clean(&method, 12);
                row.host = text::clean(&host, 120);
                row.path = text::clean(&path, 300);
                row.masked = masked.values().fold(0usize, |a, n| a.saturating_add(*n));
            }
            Event::Response {
                request_id,
                status,
                latency_ms,
            } => {
                let row = self.row(pid, request_id, now_ms);
                row.status = Some(status);
                row.latency_ms = Some(latency_ms);
            }
            Event::Answer {
                request_id,
                model,
                input_tokens,
                output_tokens,
                ended,
                ..
            } => {
                let row = self.row(pid, request_id, now_ms);
                if let Some(m) = model {
                    row.model = text::clean(&m, 80);
                }
                row.input_tokens = input_tokens.or(row.input_tokens);
                row.output_tokens = output_tokens.or(row.output_tokens);
                row.ended = text::clean(&ended, 40);
            }
            Event::ToolCall {
                request_id,
                tool_use_id,
                tool,
                summary,
                decision,
                rule,
                reason,
            } => {
                let badge = Badge::of(&decision);
                let key = (pid, tool_use_id);
                let item = FeedItem {
                    pid,
                    request_id,
                    at_ms: now_ms,
                    tool: text::clean(&tool, 60),
                    summary: text::clean(&summary, 1000),
                    badge,
                    decision: text::clean(&decision, 120),
                    rule: text::clean(rule.as_deref().unwrap_or(""), 80),
                    reason: text::clean(reason.as_deref().unwrap_or(""), 300),
                };
                self.push_tool_call(key, item);
            }
            Event::ApprovalRequested { approval } => {
                if self.proxies.get(&pid).is_some_and(|p| p.gone.is_some()) {
                    return;
                }
                self.add_held(pid, approval);
            }
            Event::ApprovalDecided { id, .. } => {
                self.remove_held(|h| h.pid == pid && h.approval.id == id);
            }
            Event::Egress { host, decision } => {
                if Badge::of(&decision) == Badge::Denied {
                    let key = (pid, format!("egress#{}", self.feed.next_seq()));
                    let item = FeedItem {
                        pid,
                        request_id: String::new(),
                        at_ms: now_ms,
                        tool: "CONNECT".into(),
                        summary: text::clean(&host, 300),
                        badge: Badge::Blocked,
                        decision: "blocked".into(),
                        rule: "egress".into(),
                        reason: String::new(),
                    };
                    self.push_tool_call(key, item);
                }
            }
            Event::Other => {}
        }
    }

    /// Time passes: countdowns move and notices expire.
    pub fn tick(&mut self, now_ms: i64) {
        self.now_ms = now_ms;
        if self.notice.as_ref().is_some_and(|n| now_ms >= n.until_ms) {
            self.notice = None;
        }
    }

    /// A status-line message; `error` shows it as such.
    pub fn notice(&mut self, msg: impl Into<String>, error: bool) {
        if error {
            // Whatever was sent may have failed: let the person try again.
            for h in &mut self.held {
                h.sent = None;
            }
        }
        let ttl = if error { ERROR_MS } else { NOTICE_MS };
        self.notice = Some(Notice {
            msg: text::clean(&msg.into(), 300),
            error,
            until_ms: self.now_ms.saturating_add(ttl),
        });
    }

    /// The record the runtime loaded after [`Action::OpenDetail`]; dropped
    /// when the person already closed the overlay.
    pub fn set_detail(&mut self, d: Detail) {
        if let Some(view) = &mut self.detail {
            let sections = d
                .sections
                .iter()
                .map(|(h, t)| (text::clean(h, 200), text::clean_multiline(t)))
                .collect();
            view.content = Some(Detail {
                title: text::clean(&d.title, 200),
                sections,
            });
            view.wrapped = None;
            view.scroll = 0;
        }
    }

    /// Bracketed paste goes to the input line, if one is open.
    pub fn on_paste(&mut self, pasted: &str) {
        let buf = match self.input {
            Some(Input::Filter) => &mut self.filter,
            Some(Input::Deny { .. }) => &mut self.deny_text,
            None => return,
        };
        let room = INPUT_MAX.saturating_sub(buf.chars().count());
        let part: String = pasted.chars().take(room).collect();
        buf.push_str(&text::clean(&part, usize::MAX));
        if self.input == Some(Input::Filter) {
            self.views = [View::default(); 2];
        }
    }

    /// Types one character into the open input line.
    pub(super) fn type_char(&mut self, c: char) {
        let buf = match self.input {
            Some(Input::Filter) => &mut self.filter,
            Some(Input::Deny { .. }) => &mut self.deny_text,
            None => return,
        };
        if !c.is_control() && buf.chars().count() < INPUT_MAX {
            buf.push(c);
        }
    }

    pub(super) fn input_buf(&mut self) -> Option<&mut String> {
        match self.input {
            Some(Input::Filter) => Some(&mut self.filter),
            Some(Input::Deny { .. }) => Some(&mut self.deny_text),
            None => None,
        }
    }

    fn row(&mut self, pid: u32, request_id: String, now_ms: i64) -> &mut RequestRow {
        let (row, new) = self
            .requests
            .get_or_push((pid, request_id), |key| RequestRow {
                pid,
                request_id: key.1.clone(),
                at_ms: now_ms,
                ..RequestRow::default()
            });
        if new {
            self.total_requests += 1;
        }
        row
    }

    fn push_tool_call(&mut self, key: Key, item: FeedItem) {
        let now_stops = item.badge.stops();
        match self.feed.get_mut(&key) {
            Some(old) => {
                if now_stops && !old.badge.stops() {
                    self.total_blocked += 1;
                }
                old.badge = item.badge;
                old.decision = item.decision;
                if !item.summary.is_empty() {
                    old.summary = item.summary;
                }
                if !item.rule.is_empty() {
                    old.rule = item.rule;
                }
                if !item.reason.is_empty() {
                    old.reason = item.reason;
                }
            }
            None => {
                if now_stops {
                    self.total_blocked += 1;
                }
                self.feed.push(key, item);
            }
        }
    }

    /// Queues an approval. Its text is cleaned for display; its id is kept
    /// as the proxy sent it, since actions must name it exactly.
    fn add_held(&mut self, pid: u32, mut a: Approval) {
        a.tool = text::clean(&a.tool, 60);
        a.summary = text::clean(&a.summary, 1000);
        a.rule = text::clean(&a.rule, 80);
        a.reason = text::clean(&a.reason, 300);
        a.session = a.session.map(|s| text::clean(&s, 80));
        let selected = self.selected_held().map(|h| (h.pid, h.approval.id.clone()));
        let was_empty = self.held.is_empty();
        self.held
            .retain(|h| !(h.pid == pid && h.approval.id == a.id));
        // Most urgent first.
        let at = self
            .held
            .partition_point(|h| h.approval.expires_at <= a.expires_at);
        self.held.insert(
            at,
            Held {
                pid,
                approval: a,
                sent: None,
            },
        );
        self.reselect(selected);
        if was_empty && self.focus != Focus::Approvals {
            self.focus_before = self.focus;
            self.focus = Focus::Approvals;
        }
    }

    fn remove_held(&mut self, gone: impl Fn(&Held) -> bool) {
        let selected = self.selected_held().map(|h| (h.pid, h.approval.id.clone()));
        let before = self.held.len();
        if let Some(Input::Deny { pid, id }) = &self.input {
            if self
                .held
                .iter()
                .any(|h| gone(h) && h.pid == *pid && h.approval.id == *id)
            {
                let msg = format!("{id} was decided or withdrawn while you typed");
                self.input = None;
                self.deny_text.clear();
                self.notice(msg, false);
            }
        }
        self.held.retain(|h| !gone(h));
        if self.held.len() == before {
            return;
        }
        self.reselect(selected);
        if self.held.is_empty() && self.focus == Focus::Approvals {
            self.focus = self.focus_before;
        }
    }

    /// Keeps the same approval selected when the list changes, or the one
    /// that took its place.
    fn reselect(&mut self, selected: Option<(u32, String)>) {
        if let Some((pid, id)) = selected {
            if let Some(at) = self
                .held
                .iter()
                .position(|h| h.pid == pid && h.approval.id == id)
            {
                self.held_sel = at;
                return;
            }
        }
        self.held_sel = self.held_sel.min(self.held.len().saturating_sub(1));
    }

    pub(super) fn selected_held(&self) -> Option<&Held> {
        self.held.get(self.held_sel)
    }

    /// Items a pane shows: frozen while paused, filtered, newest first.
    pub(super) fn visible_requests(&self) -> Vec<(u64, &RequestRow)> {
        let upto = self.paused.map_or(u64::MAX, |p| p.0);
        let needle = self.filter.to_lowercase();
        self.requests
            .newest_first()
            .filter(|(seq, _)| *seq < upto)
            .filter(|(_, r)| needle.is_empty() || matches(&request_cells(r), &needle))
            .collect()
    }

    pub(super) fn visible_feed(&self) -> Vec<(u64, &FeedItem)> {
        let upto = self.paused.map_or(u64::MAX, |p| p.1);
        let needle = self.filter.to_lowercase();
        self.feed
            .newest_first()
            .filter(|(seq, _)| *seq < upto)
            .filter(|(_, f)| needle.is_empty() || matches(&feed_cells(f), &needle))
            .collect()
    }

    /// Events that arrived since pausing.
    pub(super) fn new_since_pause(&self) -> u64 {
        self.paused.map_or(0, |(r, f)| {
            self.requests.next_seq().saturating_sub(r) + self.feed.next_seq().saturating_sub(f)
        })
    }
}
