//! The response inspector's pure state machine for the Messages stream
//! (SPEC section 3; STYLE section 3, step 7).
//!
//! Owns: which events pass at once, holding each `tool_use` block until the
//! driver decides it, replacing a blocked block by a text block, and
//! rewriting `stop_reason` when every tool call of the message was blocked
//! (SPEC section 2: otherwise Claude Code retries and fails). Also the same
//! decisions over a non-streaming JSON reply ([`inspect_json`]).
//! Must not: do I/O, wait, or decide policy. `inspect::stream` feeds it and
//! carries out the [`Action`]s.
//!
//! Rules:
//! - Everything except a `tool_use` block is forwarded at once, byte for
//!   byte: `message_start`, text/thinking/server-tool blocks, `ping`,
//!   `error`, unknown events, comments and events without data.
//! - An event whose data is not a JSON object this machine can read (not
//!   JSON, or JSON `serde_json` refuses: nested past its limit, a lone
//!   surrogate escape) ends the stream: [`Action::Fail`] comes after
//!   everything before it, and nothing after it is released. The client's
//!   own parser may read what this one cannot (JavaScript's `JSON.parse`
//!   takes both), so passing it on could let an unchecked `tool_use` block
//!   through.
//! - A `tool_use` block is held from `content_block_start` to
//!   `content_block_stop`; its `input_json_delta` pieces are joined and
//!   parsed, then [`Action::Decide`] asks for a [`Verdict`]. Whatever
//!   arrives meanwhile (pings, later blocks, `message_delta`,
//!   `message_stop`) is queued, and released in order once the decision is
//!   in. So the output is always the input with blocked blocks replaced:
//!   with every call allowed it is the input, byte for byte.
//! - At most one decision is outstanding; parallel tool calls are decided
//!   one by one, in stream order.
//! - Events are classified by their data's `type` (what the client's
//!   accumulator acts on), not by the `event:` name.
//!
//! While the machine holds bytes the client sees none, so the driver should
//! write [`keepalive`] pings on a timer (SPEC section 2: Claude Code gives up
//! after 300 s of silence). Output is always at an event boundary between
//! actions, so a ping may go out at any time.

use std::collections::VecDeque;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::anthropic::sse::{self, Event};

mod json;
pub use json::{inspect_json, inspect_json_with};

/// Default cap on the bytes of one held `tool_use` block: 4 MiB.
pub const DEFAULT_HOLD_LIMIT: usize = 4 * 1024 * 1024;

/// The driver's answer to [`Action::Decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Release the held block unchanged.
    Allow,
    /// Replace the block by a text block carrying `text` (say which rule
    /// blocked what, so the model and the user can see it).
    Block { text: String },
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write these bytes to the client (one or more whole events).
    Forward(Bytes),
    /// A complete `tool_use` block is held: decide it, then call
    /// [`Machine::resolve`] with the same `index`.
    Decide {
        /// The content block index (`u64::MAX` if the stream gave none).
        index: u64,
        id: String,
        name: String,
        /// The parsed input (`{}` when no input was streamed), after
        /// [`TextFilter::tool_input`]. `Value::String` of the raw joined
        /// `partial_json` when it does not parse (cut off, oversize or
        /// malformed), so policy can still look at it.
        input: Value,
        /// The block outgrew the hold limit: `input` is the part seen so
        /// far, the rest of the block is queued behind this decision (and
        /// forwarded or dropped per the verdict).
        oversize: bool,
    },
    /// The stream cannot be inspected past this point: end it with an
    /// error. Always the last action; the machine releases nothing more.
    Fail {
        /// Why, for the error message (does not quote the event).
        reason: String,
    },
}

/// A transform of model-produced text, e.g. rehydrating masked values
/// (`policy::mask`). All methods default to "unchanged".
///
/// Not applied to thinking blocks: their signature covers the text.
pub trait TextFilter {
    /// The text of one `text_delta` of the text block at `index` (or of a
    /// whole text block in a JSON reply). `None` keeps it unchanged. A filter
    /// may hold back a tail (e.g. half a placeholder) and return it from the
    /// next call or from [`TextFilter::flush`].
    fn text(&mut self, index: u64, text: &str) -> Option<String> {
        let _ = (index, text);
        None
    }

    /// The text block at `index` ends: text still held back, sent as one
    /// more `text_delta` before its `content_block_stop`.
    fn flush(&mut self, index: u64) -> Option<String> {
        let _ = index;
        None
    }

    /// A complete tool input, before [`Action::Decide`]. Return true if it
    /// was changed: an allowed block then carries the changed input (one
    /// `input_json_delta` replaces the original ones). Changes to an input
    /// that did not parse, or to an oversize one, are seen by the decision
    /// only.
    fn tool_input(&mut self, name: &str, input: &mut Value) -> bool {
        let _ = (name, input);
        false
    }
}

/// The filter that changes nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoFilter;

impl TextFilter for NoFilter {}

impl<T: TextFilter + ?Sized> TextFilter for &mut T {
    fn text(&mut self, index: u64, text: &str) -> Option<String> {
        (**self).text(index, text)
    }
    fn flush(&mut self, index: u64) -> Option<String> {
        (**self).flush(index)
    }
    fn tool_input(&mut self, name: &str, input: &mut Value) -> bool {
        (**self).tool_input(name, input)
    }
}

/// Errors of the inspector.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no tool_use decision is pending for content block {index}")]
    NotPending { index: u64 },
    #[error("could not encode the rewritten message")]
    Encode(#[from] serde_json::Error),
}

/// The stream inspector; one per response.
///
/// Feed it every event in order; carry out the returned actions in order.
/// [`Action::Decide`] is always the last action of a batch, and while a
/// decision is pending `feed` returns nothing (all is queued), so a driver
/// may simply append the actions of `resolve` after those it still has.
///
/// ```
/// use std::collections::VecDeque;
/// use hoopctl::anthropic::sse::Framer;
/// use hoopctl::inspect::machine::{Action, Machine, Verdict};
///
/// let body = concat!(
///     "event: content_block_start\n",
///     "data: {\"type\":\"content_block_start\",\"index\":0,",
///     "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"Bash\",\"input\":{}}}\n\n",
///     "event: content_block_delta\n",
///     "data: {\"type\":\"content_block_delta\",\"index\":0,",
///     "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"command\\\":\\\"ls\\\"}\"}}\n\n",
///     "event: content_block_stop\n",
///     "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
/// );
/// let (mut framer, mut machine) = (Framer::new(), Machine::new());
/// let mut actions = VecDeque::new();
/// for chunk in body.as_bytes().chunks(7) {
///     for event in framer.push(chunk) {
///         actions.extend(machine.feed(event?));
///     }
/// }
/// for event in framer.finish() {
///     actions.extend(machine.feed(event?));
/// }
/// actions.extend(machine.finish());
/// let mut out = Vec::new();
/// while let Some(action) = actions.pop_front() {
///     match action {
///         Action::Forward(bytes) => out.extend_from_slice(&bytes),
///         Action::Decide { index, name, input, .. } => {
///             assert_eq!((name.as_str(), &input["command"]), ("Bash", &"ls".into()));
///             actions.extend(machine.resolve(index, Verdict::Allow)?);
///         }
///         Action::Fail { reason } => panic!("unreadable: {reason}"),
///     }
/// }
/// assert_eq!(out, body.as_bytes());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Machine<F = NoFilter> {
    filter: F,
    hold_limit: usize,
    /// Events not yet released, in arrival order.
    queue: VecDeque<Entry>,
    /// `tool_use` blocks referenced by `queue` or still arriving, in start
    /// order. Cleared when nothing refers to them any more, so slots stay
    /// valid while any entry holds one.
    tools: Vec<Tool>,
    /// The slot with an outstanding [`Action::Decide`].
    asking: Option<usize>,
    /// Indices of text blocks started and not yet stopped (for `flush`).
    open_text: Vec<u64>,
    /// Verdicts in the current message, counted in release order.
    allowed: usize,
    blocked: usize,
    /// An unreadable event arrived: nothing after it is accepted.
    failed: bool,
}

#[derive(Debug)]
enum Entry {
    Pass(Bytes),
    /// An unreadable event: ends the stream when released.
    Fail(String),
    /// Starts a message: resets the verdict counts when released.
    MessageStart(Bytes),
    /// May need its `stop_reason` rewritten when released.
    MessageDelta(Event),
    /// Part of a held `tool_use` block.
    Tool {
        slot: usize,
        part: Part,
        raw: Bytes,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Start,
    Delta,
    Stop,
}

#[derive(Debug)]
struct Tool {
    index: Option<u64>,
    id: String,
    name: String,
    /// `content_block.input` of the start event, used when no deltas come.
    start_input: Option<Value>,
    json: String,
    held: usize,
    /// No `content_block_stop` yet (and the stream has not ended).
    open: bool,
    oversize: bool,
    verdict: Option<Verdict>,
    /// The filtered input to send instead of the original deltas on Allow.
    replacement: Option<String>,
}

impl Default for Machine {
    fn default() -> Self {
        Self::new()
    }
}

impl Machine {
    /// A machine without a text filter.
    pub fn new() -> Self {
        Self::with_filter(NoFilter)
    }
}

impl<F: TextFilter> Machine<F> {
    /// A machine applying `filter` to text and tool inputs.
    pub fn with_filter(filter: F) -> Self {
        Self {
            filter,
            hold_limit: DEFAULT_HOLD_LIMIT,
            queue: VecDeque::new(),
            tools: Vec::new(),
            asking: None,
            open_text: Vec::new(),
            allowed: 0,
            blocked: 0,
            failed: false,
        }
    }

    /// Sets the cap on one held block's bytes (see [`Action::Decide`]'s
    /// `oversize`).
    pub fn hold_limit(mut self, bytes: usize) -> Self {
        self.hold_limit = bytes;
        self
    }

    /// Takes the next event of the stream (ignored once an unreadable one
    /// came, see [`Action::Fail`]).
    pub fn feed(&mut self, event: Event) -> Vec<Action> {
        if self.failed {
            return Vec::new();
        }
        self.classify(event);
        let mut out = Vec::new();
        self.pump(&mut out);
        out
    }

    /// The upstream stream ended: a `tool_use` block cut off before its stop
    /// is decided on what arrived (never released undecided).
    pub fn finish(&mut self) -> Vec<Action> {
        if self.failed {
            let mut out = Vec::new();
            self.pump(&mut out);
            return out;
        }
        self.close_tools(|_| true);
        for index in std::mem::take(&mut self.open_text) {
            if let Some(tail) = self.filter.flush(index) {
                self.queue
                    .push_back(Entry::Pass(text_delta_event(Some(index), &tail)));
            }
        }
        let mut out = Vec::new();
        self.pump(&mut out);
        out
    }

    /// Answers the outstanding [`Action::Decide`] for block `index`.
    pub fn resolve(&mut self, index: u64, verdict: Verdict) -> Result<Vec<Action>, Error> {
        let tool = self
            .asking
            .and_then(|slot| self.tools.get_mut(slot))
            .filter(|tool| tool.index.unwrap_or(u64::MAX) == index)
            .ok_or(Error::NotPending { index })?;
        match verdict {
            Verdict::Allow => self.allowed += 1,
            Verdict::Block { .. } => self.blocked += 1,
        }
        tool.verdict = Some(verdict);
        self.asking = None;
        let mut out = Vec::new();
        self.pump(&mut out);
        Ok(out)
    }

    /// The block index of the outstanding decision, if any.
    pub fn pending(&self) -> Option<u64> {
        self.asking
            .and_then(|slot| self.tools.get(slot))
            .map(|tool| tool.index.unwrap_or(u64::MAX))
    }

    /// True while events are held back (time to send keep-alive pings).
    pub fn is_holding(&self) -> bool {
        !self.queue.is_empty()
    }

    fn classify(&mut self, event: Event) {
        if event.data.is_empty() {
            self.queue.push_back(Entry::Pass(event.raw));
            return;
        }
        let obj = match serde_json::from_str::<Value>(&event.data) {
            Ok(Value::Object(obj)) => obj,
            Ok(_) => return self.unreadable("an event's data is JSON but not an object".into()),
            Err(e) => return self.unreadable(format!("an event's data cannot be read: {e}")),
        };
        let index = obj.get("index").and_then(Value::as_u64);
        let entry = match str_at(&obj, "type") {
            Some("message_start") => Entry::MessageStart(event.raw),
            Some("message_delta") => {
                // A block cannot continue past the end of its message.
                self.close_tools(|_| true);
                Entry::MessageDelta(event)
            }
            Some("content_block_start") => {
                let block = obj.get("content_block");
                match block.and_then(|b| b.get("type")).and_then(Value::as_str) {
                    Some("tool_use") => {
                        self.close_tools(|tool| tool.index == index);
                        let field = |key: &str| {
                            block
                                .and_then(|b| b.get(key))
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned()
                        };
                        let tool = Tool {
                            index,
                            id: field("id"),
                            name: field("name"),
                            start_input: block.and_then(|b| b.get("input")).cloned(),
                            json: String::new(),
                            held: event.raw.len(),
                            open: true,
                            oversize: event.raw.len() > self.hold_limit,
                            verdict: None,
                            replacement: None,
                        };
                        self.tools.push(tool);
                        Entry::Tool {
                            slot: self.tools.len() - 1,
                            part: Part::Start,
                            raw: event.raw,
                        }
                    }
                    Some("text") => {
                        self.open_text.extend(index);
                        Entry::Pass(event.raw)
                    }
                    _ => Entry::Pass(event.raw),
                }
            }
            Some("content_block_delta") => {
                let delta = obj.get("delta");
                let delta_type = delta.and_then(|d| d.get("type")).and_then(Value::as_str);
                if let Some(slot) = self.open_tool(index) {
                    let limit = self.hold_limit;
                    if let Some(tool) = self.tools.get_mut(slot) {
                        tool.held += event.raw.len();
                        if !tool.oversize {
                            if delta_type == Some("input_json_delta") {
                                let piece = delta
                                    .and_then(|d| d.get("partial_json"))
                                    .and_then(Value::as_str);
                                tool.json.push_str(piece.unwrap_or_default());
                            }
                            tool.oversize = tool.held > limit;
                        }
                    }
                    Entry::Tool {
                        slot,
                        part: Part::Delta,
                        raw: event.raw,
                    }
                } else {
                    let text = delta.and_then(|d| d.get("text")).and_then(Value::as_str);
                    match (delta_type, index, text) {
                        (Some("text_delta"), Some(i), Some(text)) => {
                            match self.filter.text(i, text) {
                                Some(new) => {
                                    Entry::Pass(replace_text(&event, &new).unwrap_or(event.raw))
                                }
                                None => Entry::Pass(event.raw),
                            }
                        }
                        _ => Entry::Pass(event.raw),
                    }
                }
            }
            Some("content_block_stop") => {
                if let Some(slot) = self.open_tool(index) {
                    if let Some(tool) = self.tools.get_mut(slot) {
                        tool.open = false;
                    }
                    Entry::Tool {
                        slot,
                        part: Part::Stop,
                        raw: event.raw,
                    }
                } else {
                    let open = self.open_text.iter().position(|&i| Some(i) == index);
                    if let (Some(pos), Some(i)) = (open, index) {
                        self.open_text.remove(pos);
                        if let Some(tail) = self.filter.flush(i) {
                            self.queue
                                .push_back(Entry::Pass(text_delta_event(index, &tail)));
                        }
                    }
                    Entry::Pass(event.raw)
                }
            }
            _ => Entry::Pass(event.raw),
        };
        self.queue.push_back(entry);
    }

    /// An event that cannot be read: blocks still arriving are decided on
    /// what came (so nothing is released undecided), then the stream ends.
    fn unreadable(&mut self, why: String) {
        self.failed = true;
        self.close_tools(|_| true);
        self.queue.push_back(Entry::Fail(why));
    }

    /// Marks matching still-arriving tool blocks complete (malformed
    /// streams), so they are decided instead of holding the stream.
    fn close_tools(&mut self, which: impl Fn(&Tool) -> bool) {
        for tool in self.tools.iter_mut().filter(|tool| tool.open) {
            if which(tool) {
                tool.open = false;
            }
        }
    }

    /// The slot of the latest still-arriving tool block with this index.
    fn open_tool(&self, index: Option<u64>) -> Option<usize> {
        self.tools
            .iter()
            .rposition(|tool| tool.open && tool.index == index)
    }

    /// Releases what can go, then asks about the next tool block if none is
    /// outstanding.
    fn pump(&mut self, out: &mut Vec<Action>) {
        while let Some(front) = self.queue.front() {
            if let Entry::Tool { slot, .. } = front {
                if self.tools.get(*slot).is_some_and(|t| t.verdict.is_none()) {
                    break;
                }
            }
            if let Some(entry) = self.queue.pop_front() {
                self.release(entry, out);
            }
        }
        if self.asking.is_none() {
            let next = self.tools.iter().position(|t| t.verdict.is_none());
            if let Some(slot) = next {
                if self.tools.get(slot).is_some_and(|t| !t.open || t.oversize) {
                    self.ask(slot, out);
                }
            }
        }
        if self.queue.is_empty()
            && self.asking.is_none()
            && self.tools.iter().all(|t| !t.open && t.verdict.is_some())
        {
            self.tools.clear();
        }
    }

    fn ask(&mut self, slot: usize, out: &mut Vec<Action>) {
        let Some(tool) = self.tools.get_mut(slot) else {
            return;
        };
        let json = std::mem::take(&mut tool.json);
        let (mut input, parsed) = if json.is_empty() {
            let input = tool.start_input.take();
            (input.unwrap_or_else(|| Value::Object(Map::new())), true)
        } else {
            match serde_json::from_str::<Value>(&json) {
                Ok(value) => (value, true),
                Err(_) => (Value::String(json), false),
            }
        };
        let changed = self.filter.tool_input(&tool.name, &mut input);
        if changed && parsed && !tool.oversize {
            tool.replacement = serde_json::to_string(&input).ok();
        }
        self.asking = Some(slot);
        out.push(Action::Decide {
            index: tool.index.unwrap_or(u64::MAX),
            id: tool.id.clone(),
            name: tool.name.clone(),
            input,
            oversize: tool.oversize,
        });
    }

    fn release(&mut self, entry: Entry, out: &mut Vec<Action>) {
        match entry {
            Entry::Pass(raw) => out.push(Action::Forward(raw)),
            Entry::Fail(reason) => {
                // Nothing queued after it is released, nothing more asked.
                self.queue.clear();
                self.tools.clear();
                out.push(Action::Fail { reason });
            }
            Entry::MessageStart(raw) => {
                self.allowed = 0;
                self.blocked = 0;
                out.push(Action::Forward(raw));
            }
            Entry::MessageDelta(event) => {
                let rewritten = (self.blocked > 0 && self.allowed == 0)
                    .then(|| end_turn(&event))
                    .flatten();
                out.push(Action::Forward(rewritten.unwrap_or(event.raw)));
            }
            Entry::Tool { slot, part, raw } => {
                let Some(tool) = self.tools.get(slot) else {
                    out.push(Action::Forward(raw));
                    return;
                };
                match (&tool.verdict, part) {
                    (Some(Verdict::Block { text }), Part::Start) => {
                        out.push(Action::Forward(text_start_event(tool.index)));
                        out.push(Action::Forward(text_delta_event(tool.index, text)));
                    }
                    (Some(Verdict::Block { .. }), Part::Delta) => {}
                    (_, Part::Delta) if tool.replacement.is_some() => {}
                    (_, Part::Stop) => {
                        if let (Some(Verdict::Allow), Some(json)) =
                            (&tool.verdict, &tool.replacement)
                        {
                            out.push(Action::Forward(input_json_event(tool.index, json)));
                        }
                        out.push(Action::Forward(raw));
                    }
                    _ => out.push(Action::Forward(raw)),
                }
            }
        }
    }
}

/// An Anthropic `ping` event, for the driver to keep the client's connection
/// alive while a decision is pending.
pub fn keepalive() -> Bytes {
    sse::encode("ping", "{\"type\": \"ping\"}")
}

fn str_at<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

// Typed views of the two events that are rewritten in place: declared fields
// serialize first, in wire order, then the others, so only the changed
// value differs (serde_json's Map would sort all keys).

#[derive(Serialize, Deserialize)]
struct MessageDelta {
    #[serde(rename = "type")]
    kind: String,
    delta: StopDelta,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Serialize, Deserialize)]
struct StopDelta {
    #[serde(default)]
    stop_reason: Value,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Serialize, Deserialize)]
struct TextDeltaEvent {
    #[serde(rename = "type")]
    kind: String,
    index: Value,
    delta: TextDelta,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Serialize, Deserialize)]
struct TextDelta {
    #[serde(rename = "type")]
    kind: String,
    text: String,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// `message_delta` with `stop_reason` `tool_use` → `end_turn`; `None` leaves
/// the event as it was.
fn end_turn(event: &Event) -> Option<Bytes> {
    let mut delta: MessageDelta = serde_json::from_str(&event.data).ok()?;
    if delta.delta.stop_reason.as_str() != Some("tool_use") {
        return None;
    }
    delta.delta.stop_reason = Value::from("end_turn");
    let data = serde_json::to_string(&delta).ok()?;
    Some(sse::encode(
        event.name.as_deref().unwrap_or("message_delta"),
        &data,
    ))
}

fn replace_text(event: &Event, text: &str) -> Option<Bytes> {
    let mut delta: TextDeltaEvent = serde_json::from_str(&event.data).ok()?;
    text.clone_into(&mut delta.delta.text);
    let data = serde_json::to_string(&delta).ok()?;
    let name = event.name.as_deref().unwrap_or("content_block_delta");
    Some(sse::encode(name, &data))
}

fn text_start_event(index: Option<u64>) -> Bytes {
    let data = format!(
        "{{\"type\":\"content_block_start\",{}\"content_block\":{{\"type\":\"text\",\"text\":\"\"}}}}",
        index_field(index)
    );
    sse::encode("content_block_start", &data)
}

fn text_delta_event(index: Option<u64>, text: &str) -> Bytes {
    delta_event(index, "text_delta", "text", text)
}

fn input_json_event(index: Option<u64>, json: &str) -> Bytes {
    delta_event(index, "input_json_delta", "partial_json", json)
}

fn delta_event(index: Option<u64>, kind: &str, key: &str, value: &str) -> Bytes {
    let mut data = format!(
        "{{\"type\":\"content_block_delta\",{}\"delta\":{{\"type\":\"{kind}\",\"{key}\":",
        index_field(index)
    );
    push_json_string(&mut data, value);
    data.push_str("}}");
    sse::encode("content_block_delta", &data)
}

fn index_field(index: Option<u64>) -> String {
    index.map(|i| format!("\"index\":{i},")).unwrap_or_default()
}

/// Appends `s` as a JSON string literal.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests;
