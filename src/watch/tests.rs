//! Unit tests of the state: ingestion, joins, bounds and keys.

use std::collections::BTreeMap;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{Focus, KEEP};
use super::cells::Badge;
use super::*;
use crate::approvals::Approval;
use crate::control::protocol::Hello;
use crate::events::Event;

/// 2026-01-01 12:00:00 UTC.
pub(super) const T0: i64 = 1_767_268_800_000;

pub(super) fn hello(pid: u32, listen: &str) -> Hello {
    Hello {
        version: 1,
        pid,
        profile: "default".into(),
        listen: listen.into(),
    }
}

pub(super) fn request(id: &str, path: &str, masked: usize) -> Event {
    let mut m = BTreeMap::new();
    if masked > 0 {
        m.insert("email".to_string(), masked);
    }
    Event::Request {
        request_id: id.into(),
        session: Some("3f2a9c1b-77e1-4c51-9a0e-2b1d6c0f8e11".into()),
        method: "POST".into(),
        host: "api.anthropic.com".into(),
        path: path.into(),
        masked: m,
    }
}

pub(super) fn response(id: &str, status: u16, latency_ms: u64) -> Event {
    Event::Response {
        request_id: id.into(),
        status,
        latency_ms,
    }
}

pub(super) fn answer(id: &str, model: &str, i: u64, o: u64) -> Event {
    Event::Answer {
        request_id: id.into(),
        model: Some(model.into()),
        input_tokens: Some(i),
        output_tokens: Some(o),
        stop_reason: Some("tool_use".into()),
        ended: "complete".into(),
    }
}

pub(super) fn tool(
    req: &str,
    id: &str,
    tool: &str,
    summary: &str,
    decision: &str,
    rule: Option<&str>,
) -> Event {
    Event::ToolCall {
        request_id: req.into(),
        tool_use_id: id.into(),
        tool: tool.into(),
        summary: summary.into(),
        decision: decision.into(),
        rule: rule.map(str::to_string),
        reason: rule.map(|_| "policy says so".to_string()),
    }
}

pub(super) fn approval(id: &str, tool: &str, summary: &str, expires_at: i64) -> Approval {
    Approval {
        id: id.into(),
        tool: tool.into(),
        summary: summary.into(),
        rule: "review-deletes".into(),
        reason: "deletes files recursively".into(),
        session: Some("3f2a9c1b-77e1".into()),
        requested_at: expires_at - 120,
        expires_at,
    }
}

pub(super) fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

pub(super) fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

fn typed(app: &mut App, s: &str) {
    for c in s.chars() {
        assert_eq!(app.on_key(ch(c)), None);
    }
}

fn held_app() -> App {
    let mut app = App::new(true);
    app.proxy_up(&hello(42, "127.0.0.1:8877"));
    app.pending(
        42,
        vec![approval("apr-1f", "Bash", "rm -rf build", T0 / 1000 + 90)],
    );
    app.tick(T0);
    app
}

#[test]
fn approve_with_a_when_the_queue_has_focus() {
    let mut app = held_app();
    assert_eq!(app.focus, Focus::Approvals, "approvals take focus");
    assert_eq!(
        app.on_key(ch('a')),
        Some(Action::Approve {
            pid: 42,
            id: "apr-1f".into()
        })
    );
    assert_eq!(app.held[0].sent, Some("approving…"));
    // An error from the runtime lets the person try again.
    app.notice("proxy 42 refused: no pending approval", true);
    assert_eq!(app.held[0].sent, None);
}

#[test]
fn a_elsewhere_only_focuses_the_queue() {
    let mut app = held_app();
    app.on_key(key(KeyCode::Tab));
    assert_eq!(app.focus, Focus::Requests);
    assert_eq!(app.on_key(ch('a')), None);
    assert_eq!(app.focus, Focus::Approvals);
    assert!(app.notice.is_some());
}

#[test]
fn deny_with_a_reason_typed_in_place() {
    let mut app = held_app();
    assert_eq!(app.on_key(ch('d')), None);
    typed(&mut app, "not in prod, q");
    app.on_paste("uit\nplease");
    app.on_key(key(KeyCode::Backspace));
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        Some(Action::Deny {
            pid: 42,
            id: "apr-1f".into(),
            reason: Some("not in prod, quit pleas".into())
        })
    );
    assert!(!app.should_quit(), "q while typing is text");
    assert!(app.input.is_none());
}

#[test]
fn deny_without_a_reason_and_cancel() {
    let mut app = held_app();
    app.on_key(ch('d'));
    typed(&mut app, "  ");
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        Some(Action::Deny {
            pid: 42,
            id: "apr-1f".into(),
            reason: None
        })
    );
    app.on_key(ch('d'));
    typed(&mut app, "oops");
    assert_eq!(app.on_key(key(KeyCode::Esc)), None);
    assert!(app.input.is_none());
    assert_eq!(app.on_key(ch('q')), Some(Action::Quit));
    assert!(app.should_quit());
}

#[test]
fn ctrl_c_quits_even_while_typing_and_releases_are_ignored() {
    let mut app = held_app();
    app.on_key(ch('/'));
    let mut release = ch('x');
    release.kind = KeyEventKind::Release;
    assert_eq!(app.on_key(release), None);
    assert_eq!(app.filter, "");
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(app.on_key(ctrl_c), Some(Action::Quit));
    assert!(app.should_quit());
}

#[test]
fn tab_cycles_and_enter_opens_the_selected_row() {
    let mut app = held_app();
    for (i, id) in ["r1", "r2", "r3"].iter().enumerate() {
        app.apply(42, request(id, "/v1/messages", 0), T0 + i as i64);
        app.apply(
            42,
            tool(id, &format!("tu{i}"), "Bash", "ls", "allowed", None),
            T0 + i as i64,
        );
    }
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        None,
        "nothing to open in the queue"
    );
    app.on_key(key(KeyCode::Tab));
    assert_eq!(app.focus, Focus::Requests);
    app.on_key(ch('j'));
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        Some(Action::OpenDetail {
            pid: 42,
            request_id: "r2".into()
        })
    );
    assert!(app.detail.as_ref().is_some_and(|d| d.content.is_none()));
    app.on_key(key(KeyCode::PageDown));
    assert_eq!(app.on_key(ch('q')), None, "q closes the overlay");
    assert!(app.detail.is_none() && !app.should_quit());
    app.on_key(key(KeyCode::Tab));
    assert_eq!(app.focus, Focus::Feed);
    app.on_key(key(KeyCode::End));
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        Some(Action::OpenDetail {
            pid: 42,
            request_id: "r1".into()
        })
    );
    app.on_key(key(KeyCode::Esc));
    app.on_key(key(KeyCode::Tab));
    assert_eq!(app.focus, Focus::Approvals);
    app.on_key(key(KeyCode::BackTab));
    assert_eq!(app.focus, Focus::Feed);
}

#[test]
fn help_and_filter_keys() {
    let mut app = App::new(false);
    app.on_key(ch('?'));
    assert!(app.help);
    assert_eq!(app.on_key(ch('q')), None);
    assert!(!app.help && !app.should_quit());
    app.on_key(ch('/'));
    typed(&mut app, "Bq");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.filter, "Bq");
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.filter, "", "Esc clears a kept filter");
    app.on_key(ch('/'));
    typed(&mut app, "x");
    app.on_key(key(KeyCode::Esc));
    assert!(app.filter.is_empty() && app.input.is_none());
}

#[test]
fn joins_by_request_id_in_any_order() {
    let mut app = App::new(true);
    app.apply(1, answer("r1", "claude-sonnet-4-5", 1200, 80), T0);
    app.apply(1, response("r1", 200, 950), T0 + 1);
    app.apply(1, request("r1", "/v1/messages", 3), T0 + 2);
    app.apply(2, request("r1", "/v1/messages", 0), T0 + 3);
    assert_eq!(app.requests.len(), 2, "ids are per proxy");
    assert_eq!(app.total_requests, 2);
    let rows = app.visible_requests();
    let r = rows
        .iter()
        .find(|(_, r)| r.pid == 1)
        .map(|(_, r)| r)
        .unwrap();
    assert_eq!(r.status, Some(200));
    assert_eq!(r.latency_ms, Some(950));
    assert_eq!(r.model, "claude-sonnet-4-5");
    assert_eq!((r.input_tokens, r.output_tokens), (Some(1200), Some(80)));
    assert_eq!(r.masked, 3);
    assert_eq!(r.method, "POST");
    assert_eq!(r.at_ms, T0, "first seen");
}

#[test]
fn second_tool_call_updates_the_badge() {
    let mut app = App::new(true);
    app.apply(
        1,
        tool("r1", "tu1", "Bash", "rm -rf /", "waiting", Some("rm")),
        T0,
    );
    app.apply(
        1,
        tool(
            "r1",
            "tu1",
            "Bash",
            "rm -rf /",
            "denied by alice",
            Some("rm"),
        ),
        T0 + 5,
    );
    assert_eq!(app.feed.len(), 1);
    let feed = app.visible_feed();
    assert_eq!(feed[0].1.badge, Badge::Denied);
    assert_eq!(app.total_blocked, 1);
    drop(feed);
    // A repeated decision is not counted twice.
    app.apply(
        1,
        tool(
            "r1",
            "tu1",
            "Bash",
            "rm -rf /",
            "denied by alice",
            Some("rm"),
        ),
        T0 + 6,
    );
    assert_eq!(app.total_blocked, 1);
    for (d, b) in [
        ("allowed", Badge::Allowed),
        ("blocked", Badge::Blocked),
        ("approved by bob", Badge::Approved),
        ("allowed after the review timeout", Badge::Allowed),
        ("denied: no decision in time", Badge::Denied),
        ("maybe", Badge::Other),
    ] {
        app.apply(1, tool("r2", "tu2", "Bash", "x", d, None), T0);
        assert_eq!(app.visible_feed()[0].1.badge, b, "{d}");
    }
}

#[test]
fn approval_decided_removes_it_and_unknown_ids_are_ignored() {
    let mut app = held_app();
    let decided = |id: &str| Event::ApprovalDecided {
        id: id.into(),
        approved: true,
        by: "alice".into(),
        reason: None,
    };
    app.apply(42, decided("apr-unknown"), T0);
    app.apply(7, decided("apr-1f"), T0);
    assert_eq!(app.held.len(), 1, "another proxy's id is another approval");
    app.on_key(ch('d'));
    app.apply(42, decided("apr-1f"), T0);
    assert!(app.held.is_empty());
    assert!(
        app.input.is_none(),
        "the deny input closes with its approval"
    );
    assert_eq!(app.focus, Focus::Requests, "focus returns");
    assert_eq!(app.on_key(ch('a')), None);
}

#[test]
fn proxy_down_drops_its_approvals_and_restart_replaces_it() {
    let mut app = held_app();
    app.proxy_up(&hello(43, "127.0.0.1:9000"));
    app.apply(
        43,
        Event::ApprovalRequested {
            approval: approval("apr-2", "Bash", "x", T0 / 1000 + 10),
        },
        T0,
    );
    assert_eq!(app.held.len(), 2);
    assert_eq!(app.held[0].approval.id, "apr-2", "most urgent first");
    app.proxy_down(42, "connection reset");
    assert_eq!(app.held.len(), 1);
    assert!(app.proxies[&42].gone.is_some());
    // Events from a proxy that went away do not break anything.
    app.apply(42, request("late", "/v1/messages", 0), T0);
    app.apply(
        42,
        Event::ApprovalRequested {
            approval: approval("apr-3", "Bash", "x", T0 / 1000),
        },
        T0,
    );
    assert_eq!(app.held.len(), 1);
    app.proxy_down(999, "never said hello");
    // Restarted on the same address with a new pid: replaces the gone entry.
    app.proxy_up(&hello(44, "127.0.0.1:8877"));
    assert!(!app.proxies.contains_key(&42));
    assert_eq!(app.proxies.len(), 3);
}

#[test]
fn pause_freezes_the_views_and_counts_new_events() {
    let mut app = App::new(true);
    app.apply(1, request("r1", "/a", 0), T0);
    app.on_key(ch('p'));
    for i in 0..5 {
        app.apply(1, request(&format!("n{i}"), "/b", 0), T0);
    }
    app.apply(1, tool("r1", "tu", "Bash", "ls", "allowed", None), T0);
    app.apply(1, response("r1", 200, 5), T0);
    assert_eq!(app.visible_requests().len(), 1);
    assert_eq!(
        app.visible_requests()[0].1.status,
        Some(200),
        "rows still update"
    );
    assert_eq!(app.visible_feed().len(), 0);
    assert_eq!(app.new_since_pause(), 6);
    assert_eq!(app.total_requests, 6);
    app.on_key(ch('p'));
    assert_eq!(app.visible_requests().len(), 6);
}

#[test]
fn a_burst_is_ingested_fast_and_bounded() {
    let mut app = App::new(true);
    app.proxy_up(&hello(1, "127.0.0.1:1"));
    let events: Vec<Event> = (0..25_000)
        .flat_map(|i| {
            let id = format!("req-{i}");
            [
                answer(&id, "claude-opus-4", 10, 20),
                request(&id, "/v1/messages?beta=true", 1),
                response(&id, 200, 12),
                tool(
                    &id,
                    &format!("tu-{i}"),
                    "Bash",
                    "cargo test",
                    "blocked",
                    Some("r"),
                ),
            ]
        })
        .collect();
    let started = Instant::now();
    for (i, ev) in events.into_iter().enumerate() {
        app.apply(1, ev, T0 + i as i64);
    }
    let took = started.elapsed();
    assert!(took.as_millis() < 1000, "100,000 events took {took:?}");
    assert_eq!(app.requests.len(), KEEP);
    assert_eq!(app.feed.len(), KEEP);
    assert_eq!(app.total_requests, 25_000);
    assert_eq!(app.total_blocked, 25_000);
    let newest = app.visible_requests();
    assert_eq!(newest[0].1.request_id, "req-24999");
    assert_eq!(newest[0].1.status, Some(200));
    assert_eq!(newest[KEEP - 1].1.request_id, "req-23000");
}

#[test]
fn notices_expire_and_details_arrive_only_when_open() {
    let mut app = App::new(true);
    app.tick(T0);
    app.notice("approved apr-1f", false);
    app.tick(T0 + 5_000);
    assert!(app.notice.is_some());
    app.tick(T0 + 7_000);
    assert!(app.notice.is_none());
    app.set_detail(Detail::default());
    assert!(app.detail.is_none());
}
