//! The async driver of the response inspector: feeds the upstream's
//! Messages stream (decoded) through `anthropic::sse` and the pure
//! `inspect::machine`, asks policy about each held tool call, waits for a
//! person on `review` (writing `ping`s so the agent keeps waiting), and
//! writes the result to the agent. Also the same for non-streaming replies.
//!
//! Owns: waiting, timeouts, keepalives, the texts that replace blocked
//! calls. Must not: decide policy (`policy::guard` does).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::Value;
use tokio::sync::mpsc;

use super::machine::{self, Action, Machine, TextFilter, Verdict};
use super::transcript::Transcript;
use crate::anthropic::error::ApiError;
use crate::anthropic::sse::Framer;
use crate::approvals::{Approval, Approvals, Resolution};
use crate::audit::event::{Event as AuditEvent, Kind, SessionRef};
use crate::audit::recorder::Recorder;
use crate::events::{Bus, Event};
use crate::policy::guard::{Decision, OnTimeout};
use crate::policy::mask::{Rehydrator, Session};
use crate::policy::Policy;
use crate::proxy::body::{Body, BoxError};
use crate::proxy::encoding::Decoder;

/// The rule named when a tool call's input cannot be read (it is blocked).
pub const UNREADABLE_INPUT: &str = "builtin:unparsable";

/// How often a held stream gets a `ping` (Claude Code gives up after 300 s of silence).
const KEEPALIVE: Duration = Duration::from_secs(10);

/// What one inspected response needs.
#[derive(Clone)]
pub struct Context {
    pub policy: Arc<Policy>,
    pub approvals: Arc<Approvals>,
    pub bus: Bus,
    pub request_id: String,
    pub session: Option<String>,
    /// Set when the policy rehydrates: the session's placeholders.
    pub rehydrate: Option<Arc<Session>>,
    /// Where the answer and the decisions are recorded.
    pub record: Option<Record>,
}

/// The record of one inspected answer.
#[derive(Clone)]
pub struct Record {
    pub recorder: Arc<Recorder>,
    pub session: SessionRef,
    /// The upstream's status and when the request started.
    pub status: u16,
    pub started: std::time::Instant,
}

impl Record {
    fn event(&self, request_id: &str, kind: Kind, data: Value) -> AuditEvent {
        let mut ev = AuditEvent::new(self.session.clone(), kind, data);
        ev.request_id = Some(request_id.to_string());
        ev
    }

    /// The assembled answer; `ended` says how the stream ended.
    fn response(&self, request_id: &str, t: &Transcript, ended: &str) {
        let calls: Vec<Value> = t
            .tool_calls
            .iter()
            .map(|c| serde_json::json!({"id": c.id, "name": c.name, "summary": summarize(&c.name, &c.input)}))
            .collect();
        let data = serde_json::json!({
            "status": self.status,
            "latency_ms": self.started.elapsed().as_millis() as u64,
            "model": t.model,
            "message_id": t.message_id,
            "usage": t.usage,
            "stop_reason": t.stop_reason,
            "tool_calls": calls,
            "error": t.error,
            "ended": ended,
            "text_chars": t.text.chars().count(),
        });
        let mut ev = self.event(request_id, Kind::Response, data);
        let body = serde_json::json!({"text": t.text, "tool_calls": t.tool_calls});
        ev.body = serde_json::to_vec(&body).ok().map(Into::into);
        ev.text = Some(t.search_text());
        self.recorder.record(ev);
    }
}

/// A response body fed by the driver task.
pub struct Channel {
    rx: mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
}

impl http_body::Body for Channel {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx)
    }
}

/// Starts inspecting an event stream; returns the body the agent reads.
/// The driver runs on `tracker` and stops when the agent goes away.
pub fn sse(
    ctx: Context,
    incoming: Incoming,
    decoder: Decoder,
    tracker: &tokio_util::task::TaskTracker,
) -> Body {
    // A small channel: the upstream is read only as fast as the agent reads.
    let (tx, rx) = mpsc::channel(8);
    tracker.spawn(run(ctx, incoming, decoder, tx));
    Channel { rx }.boxed_unsync()
}

type Tx = mpsc::Sender<Result<Frame<Bytes>, BoxError>>;

async fn send(tx: &Tx, bytes: Bytes) -> bool {
    tx.send(Ok(Frame::data(bytes))).await.is_ok()
}

async fn run(ctx: Context, incoming: Incoming, decoder: Decoder, tx: Tx) {
    let mut transcript = Transcript::default();
    let ended = drive(&ctx, incoming, decoder, tx, &mut transcript).await;
    transcript.finish();
    answered(&ctx, &transcript, ended);
}

/// Publishes and records a finished answer.
fn answered(ctx: &Context, t: &Transcript, ended: &str) {
    if ctx.bus.active() {
        let tokens = |k: &str| t.usage.get(k).and_then(Value::as_u64);
        ctx.bus.publish(Event::Answer {
            request_id: ctx.request_id.clone(),
            model: t.model.clone(),
            input_tokens: tokens("input_tokens"),
            output_tokens: tokens("output_tokens"),
            stop_reason: t.stop_reason.clone(),
            ended: ended.to_string(),
        });
    }
    if let Some(r) = &ctx.record {
        r.response(&ctx.request_id, t, ended);
    }
}

/// Relays and inspects the stream; returns how it ended. The upstream's
/// chunks are decoded in bounded pieces (`encoding::PIECE`), each framed,
/// inspected and relayed before the next is decoded.
async fn drive(
    ctx: &Context,
    mut incoming: Incoming,
    mut decoder: Decoder,
    tx: Tx,
    transcript: &mut Transcript,
) -> &'static str {
    let mut framer = Framer::new();
    let filter = Rehydrate::new(ctx.rehydrate.clone());
    let mut machine = Machine::with_filter(filter);
    loop {
        let frame = incoming.frame().await;
        let end = match frame {
            Some(Ok(f)) => match f.into_data() {
                Ok(d) => {
                    decoder.feed(d);
                    false
                }
                Err(_) => continue,
            },
            Some(Err(e)) => {
                let msg = format!("hoopctl: the upstream stream broke ({e}); retry the request");
                let _ = send(&tx, Bytes::from(ApiError::new(502, msg).to_sse_event())).await;
                return "upstream_broke";
            }
            None => {
                decoder.end();
                true
            }
        };
        loop {
            let piece = match decoder.next_piece() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    let (msg, ended) = match e {
                        crate::proxy::encoding::Error::TooLarge { .. } => (
                            format!("hoopctl: the upstream stream is too large: {e}"),
                            "too_large",
                        ),
                        e => (
                            format!("hoopctl could not decode the upstream stream: {e}"),
                            "undecodable",
                        ),
                    };
                    tracing::warn!(request_id = %ctx.request_id, error = %msg, "event stream ended");
                    let _ = fail(ctx, &tx, ApiError::new(502, msg)).await;
                    return ended;
                }
            };
            let events: Vec<_> = framer.push(&piece).collect();
            if let Err(ended) = relay(ctx, &mut machine, transcript, events, &tx).await {
                return ended;
            }
        }
        if end {
            let events: Vec<_> = framer.finish().collect();
            if let Err(ended) = relay(ctx, &mut machine, transcript, events, &tx).await {
                return ended;
            }
            let last = machine.finish();
            if let Err(ended) = apply(ctx, &mut machine, last, &tx).await {
                return ended;
            }
            return "complete";
        }
    }
}

/// Ends a started stream with an `error` event, recorded as an error
/// (a limit was hit, or the stream could not be read); false when the
/// agent went away.
async fn fail(ctx: &Context, tx: &Tx, err: ApiError) -> bool {
    if let Some(r) = &ctx.record {
        r.recorder.record(crate::proxy::record::error(
            r.session.clone(),
            &ctx.request_id,
            err.status,
            &err.message,
        ));
    }
    send(tx, Bytes::from(err.to_sse_event())).await
}

/// Feeds framed events to the inspector and carries out what it says;
/// `Err` says how the stream ended.
async fn relay<F: TextFilter>(
    ctx: &Context,
    machine: &mut Machine<F>,
    transcript: &mut Transcript,
    events: Vec<Result<crate::anthropic::sse::Event, crate::anthropic::sse::Error>>,
    tx: &Tx,
) -> Result<(), &'static str> {
    let mut actions = Vec::new();
    for event in events {
        match event {
            Ok(ev) => {
                if ctx.record.is_some() || ctx.bus.active() {
                    transcript.feed(ev.name.as_deref(), &ev.data);
                }
                actions.extend(machine.feed(ev));
            }
            Err(e) => {
                let msg = format!("hoopctl: {e}");
                let _ = fail(ctx, tx, ApiError::new(502, msg)).await;
                return Err("unreadable");
            }
        }
    }
    apply(ctx, machine, actions, tx).await
}

/// Carries out actions in order; `Err` says how the stream ended
/// (the agent went away, or the inspector could not read an event).
async fn apply<F: TextFilter>(
    ctx: &Context,
    machine: &mut Machine<F>,
    actions: Vec<Action>,
    tx: &Tx,
) -> Result<(), &'static str> {
    let mut queue: std::collections::VecDeque<Action> = actions.into();
    while let Some(action) = queue.pop_front() {
        match action {
            Action::Forward(bytes) => {
                if !send(tx, bytes).await {
                    return Err("agent_gone");
                }
            }
            Action::Fail { reason } => {
                let msg = format!(
                    "hoopctl stopped the upstream stream: {reason}; nothing after it was passed on \
                     unchecked. Retry the request"
                );
                tracing::warn!(request_id = %ctx.request_id, error = %msg, "event stream ended");
                let _ = fail(ctx, tx, ApiError::new(502, msg)).await;
                return Err("unreadable");
            }
            Action::Decide {
                index,
                id,
                name,
                input,
                ..
            } => {
                let Some(verdict) = decide(ctx, &id, &name, &input, Some(tx)).await else {
                    return Err("agent_gone");
                };
                match machine.resolve(index, verdict) {
                    Ok(more) => queue.extend(more),
                    Err(e) => {
                        tracing::error!(error = %e, "inspector out of step");
                        return Err("agent_gone");
                    }
                }
            }
        }
    }
    Ok(())
}

/// What the agent (and its user) reads instead of a blocked call.
fn blocked_text(tool: &str, summary: &str, decision: &Decision) -> String {
    format!(
        "hoopctl blocked this {tool} call (`{summary}`): {}. It did not run. If it is needed, ask the user to change the hoopctl policy, or to use a `review` rule so it can be approved with `hoopctl approve`.",
        decision.explain()
    )
}

/// A short description of a tool call: the command, the file, or the input.
pub fn summarize(tool: &str, input: &Value) -> String {
    let field = match tool {
        "Bash" => input.get("command"),
        "Write" | "Edit" | "MultiEdit" | "Read" | "NotebookEdit" => {
            input.get("file_path").or(input.get("notebook_path"))
        }
        "WebFetch" => input.get("url"),
        _ => None,
    };
    let s = match field.and_then(Value::as_str) {
        Some(s) => s.to_string(),
        None => input.to_string(),
    };
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s
    }
}

/// Decides one tool call; on `review` waits for a person (or the timeout),
/// keeping the stream alive. `None` when the agent went away meanwhile.
pub async fn decide(
    ctx: &Context,
    id: &str,
    tool: &str,
    input: &Value,
    tx: Option<&Tx>,
) -> Option<Verdict> {
    let guard = &ctx.policy.guard;
    // Tool inputs are JSON objects. Anything else is input the inspector
    // could not read (malformed, nested past serde_json's depth limit that
    // the agent's parser does not have, or over the hold limit): the guard
    // cannot see its command or path, so it is blocked, not allowed.
    let decision = if input.is_object() {
        guard.decide(tool, input)
    } else {
        Decision::Block {
            rule: UNREADABLE_INPUT.to_string(),
            reason: "hoopctl could not read this call's input as a JSON object (malformed, nested too deeply, or too large to hold), so it could not be checked".to_string(),
        }
    };
    let summary = summarize(tool, input);
    let publish = |decision: &str, d: &Decision| {
        if let Some(r) = &ctx.record {
            let data = serde_json::json!({
                "tool_use_id": id,
                "tool": tool,
                "summary": summary,
                "input": input,
                "decision": decision,
                "rule": d.rule(),
                "reason": d.reason(),
            });
            let mut ev = r.event(&ctx.request_id, Kind::ToolCall, data);
            ev.text = Some(format!("{tool} {summary}"));
            r.recorder.record(ev);
        }
        ctx.bus.publish(Event::ToolCall {
            request_id: ctx.request_id.clone(),
            tool_use_id: id.to_string(),
            tool: tool.to_string(),
            summary: summary.clone(),
            decision: decision.to_string(),
            rule: d.rule().map(str::to_string),
            reason: d.reason().map(str::to_string),
        })
    };
    tracing::info!(tool, decision = %decision, "tool call");
    let (rule, reason) = match &decision {
        Decision::Allow => {
            publish("allowed", &decision);
            return Some(Verdict::Allow);
        }
        Decision::Block { .. } => {
            publish("blocked", &decision);
            return Some(Verdict::Block {
                text: blocked_text(tool, &summary, &decision),
            });
        }
        Decision::Review { rule, reason } => (rule.clone(), reason.clone()),
    };
    publish("waiting", &decision);
    let timeout = guard.review_timeout();
    let now = chrono::Utc::now().timestamp();
    let approval_id = format!("apr-{}", crate::secret::random_hex(4).unwrap_or_default());
    let mut rx = ctx.approvals.request(Approval {
        id: approval_id.clone(),
        tool: tool.to_string(),
        summary: summary.clone(),
        rule: rule.clone(),
        reason: reason.clone(),
        session: ctx.session.clone(),
        requested_at: now,
        expires_at: now + timeout.as_secs() as i64,
    });
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
    let mut expired = false;
    let resolution = loop {
        tokio::select! {
            r = &mut rx => break r.unwrap_or(Resolution::TimedOut),
            _ = &mut deadline, if !expired => {
                expired = true;
                // The first decision wins: if a person decided just now, rx has it.
                let _ = ctx.approvals.resolve(&approval_id, Resolution::TimedOut);
            }
            _ = ping.tick(), if tx.is_some() => {
                if let Some(tx) = tx {
                    if !send(tx, machine::keepalive()).await {
                        let _ = ctx.approvals.resolve(&approval_id, Resolution::Denied { by: "hoopctl".into(), reason: Some("the agent disconnected".into()) });
                        return None;
                    }
                }
            }
        }
    };
    if let Some(r) = &ctx.record {
        let (approved, by, why) = match &resolution {
            Resolution::Approved { by } => (true, by.clone(), None),
            Resolution::Denied { by, reason } => (false, by.clone(), reason.clone()),
            Resolution::TimedOut => (
                guard.on_timeout() == OnTimeout::Allow,
                "timeout".to_string(),
                Some(format!("no decision within {} s", timeout.as_secs())),
            ),
        };
        let data = serde_json::json!({
            "approval_id": approval_id,
            "tool_use_id": id,
            "tool": tool,
            "summary": summary,
            "rule": rule,
            "approved": approved,
            "by": by,
            "reason": why,
            "requested_at": now,
            "decided_at": chrono::Utc::now().timestamp(),
        });
        r.recorder
            .record(r.event(&ctx.request_id, Kind::Decision, data));
    }
    let (label, verdict) = match resolution {
        Resolution::Approved { by } => (format!("approved by {by}"), Verdict::Allow),
        Resolution::Denied { by, reason: why } => (
            format!("denied by {by}"),
            Verdict::Block {
                text: format!(
                    "hoopctl: the user denied this {tool} call (`{summary}`, held by policy rule `{rule}`){}. It did not run.",
                    why.map(|w| format!(": {w}")).unwrap_or_default()
                ),
            },
        ),
        Resolution::TimedOut => match guard.on_timeout() {
            OnTimeout::Allow => ("allowed after the review timeout".into(), Verdict::Allow),
            OnTimeout::Deny => (
                "denied: no decision in time".into(),
                Verdict::Block {
                    text: format!(
                        "hoopctl: this {tool} call (`{summary}`) waited for approval under policy rule `{rule}` ({reason}) and nobody decided within {} s, so it did not run.",
                        timeout.as_secs()
                    ),
                },
            ),
        },
    };
    publish(&label, &decision);
    Some(verdict)
}

/// Puts real values back in place of placeholders (policy `rehydrate`).
pub struct Rehydrate {
    session: Option<Arc<Session>>,
    text: HashMap<u64, Rehydrator>,
}

impl Rehydrate {
    pub fn new(session: Option<Arc<Session>>) -> Self {
        Self {
            session,
            text: HashMap::new(),
        }
    }
}

fn rehydrate_value(session: &Session, v: &mut Value) -> bool {
    match v {
        Value::String(s) => {
            let new = session.rehydrate(s).into_owned();
            let changed = new != *s;
            *s = new;
            changed
        }
        Value::Array(a) => a
            .iter_mut()
            .fold(false, |c, x| rehydrate_value(session, x) | c),
        Value::Object(o) => o
            .values_mut()
            .fold(false, |c, x| rehydrate_value(session, x) | c),
        _ => false,
    }
}

impl TextFilter for Rehydrate {
    fn text(&mut self, index: u64, text: &str) -> Option<String> {
        let session = self.session.as_ref()?;
        let r = self.text.entry(index).or_insert_with(Rehydrator::new_text);
        match r.push(session, text) {
            std::borrow::Cow::Borrowed(_) => None,
            std::borrow::Cow::Owned(s) => Some(s),
        }
    }

    fn flush(&mut self, index: u64) -> Option<String> {
        let rest = self.text.remove(&index)?.finish();
        (!rest.is_empty()).then_some(rest)
    }

    fn tool_input(&mut self, _name: &str, input: &mut Value) -> bool {
        match &self.session {
            Some(session) => rehydrate_value(session, input),
            None => false,
        }
    }
}

/// The same decisions over a non-streaming reply (the fallback Claude
/// Code uses after a failed stream must not run a blocked command).
pub async fn json(ctx: &Context, body: &[u8]) -> Vec<u8> {
    let out = json_inner(ctx, body).await;
    if ctx.record.is_some() || ctx.bus.active() {
        answered(ctx, &Transcript::from_message(body), "complete");
    }
    out
}

async fn json_inner(ctx: &Context, body: &[u8]) -> Vec<u8> {
    // Decide every tool call first (a review may wait), then rewrite.
    let mut filter = Rehydrate::new(ctx.rehydrate.clone());
    let mut calls: Vec<(String, String, Value)> = Vec::new();
    let _ = machine::inspect_json_with(body, &mut filter, |name, id, input| {
        calls.push((id.to_string(), name.to_string(), input.clone()));
        Verdict::Allow
    });
    let mut verdicts: HashMap<String, Verdict> = HashMap::new();
    for (id, name, input) in calls {
        let v = decide(ctx, &id, &name, &input, None)
            .await
            .unwrap_or(Verdict::Block {
                text: "hoopctl: blocked".into(),
            });
        verdicts.insert(id, v);
    }
    let mut filter = Rehydrate::new(ctx.rehydrate.clone());
    machine::inspect_json_with(body, &mut filter, |_, id, _| {
        verdicts.remove(id).unwrap_or(Verdict::Allow)
    })
    .unwrap_or_else(|_| body.to_vec())
}
