//! Tests of the inspector: hand-written Messages streams (SPEC section 3)
//! through `sse::Framer` + `Machine`, split at every byte offset (STYLE
//! section 4, habit 10), with decisions answered at once or late.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::*;
use crate::anthropic::sse::Framer;

// ---------------------------------------------------------------- fixtures

const MSG_START: &str = r#"{"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":2}}}"#;
const PING: &str = r#"{"type": "ping"}"#;
const MSG_STOP: &str = r#"{"type":"message_stop"}"#;

fn sse(events: &[(&str, String)]) -> String {
    events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect()
}

fn e(name: &str, data: impl Into<String>) -> (&str, String) {
    (name, data.into())
}

fn js(s: &str) -> String {
    let mut out = String::new();
    push_json_string(&mut out, s);
    out
}

fn message_start() -> (&'static str, String) {
    e("message_start", MSG_START)
}
fn ping() -> (&'static str, String) {
    e("ping", PING)
}
fn message_stop() -> (&'static str, String) {
    e("message_stop", MSG_STOP)
}
fn text_start(i: u64) -> (&'static str, String) {
    e(
        "content_block_start",
        format!(
            r#"{{"type":"content_block_start","index":{i},"content_block":{{"type":"text","text":""}}}}"#
        ),
    )
}
fn text(i: u64, t: &str) -> (&'static str, String) {
    e(
        "content_block_delta",
        format!(
            r#"{{"type":"content_block_delta","index":{i},"delta":{{"type":"text_delta","text":{}}}}}"#,
            js(t)
        ),
    )
}
fn stop(i: u64) -> (&'static str, String) {
    e(
        "content_block_stop",
        format!(r#"{{"type":"content_block_stop","index":{i}}}"#),
    )
}
fn tool_start(i: u64, id: &str, name: &str) -> (&'static str, String) {
    e(
        "content_block_start",
        format!(
            r#"{{"type":"content_block_start","index":{i},"content_block":{{"type":"tool_use","id":"{id}","name":"{name}","input":{{}}}}}}"#
        ),
    )
}
fn input(i: u64, piece: &str) -> (&'static str, String) {
    e(
        "content_block_delta",
        format!(
            r#"{{"type":"content_block_delta","index":{i},"delta":{{"type":"input_json_delta","partial_json":{}}}}}"#,
            js(piece)
        ),
    )
}
fn message_delta(reason: &str) -> (&'static str, String) {
    e(
        "message_delta",
        format!(
            r#"{{"type":"message_delta","delta":{{"stop_reason":"{reason}","stop_sequence":null}},"usage":{{"output_tokens":89}}}}"#
        ),
    )
}

fn bash_tool(i: u64) -> Vec<(&'static str, String)> {
    vec![
        tool_start(i, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "Bash"),
        input(i, ""),
        input(i, r#"{"command": "ls"#),
        input(i, r#" -la /tmp", "descr"#),
        input(i, r#"iption": "List files in /tmp"}"#),
        stop(i),
    ]
}

fn bash_input() -> Value {
    json!({"command": "ls -la /tmp", "description": "List files in /tmp"})
}

fn text_only() -> String {
    sse(&[
        message_start(),
        text_start(0),
        ping(),
        text(0, "Hello"),
        text(0, " w\u{f6}rld \u{2713}\nsecond \"line\" \u{1f600}"),
        stop(0),
        message_delta("end_turn"),
        message_stop(),
    ])
}

fn thinking_text() -> String {
    sse(&[
        message_start(),
        e(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
        ),
        e(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants a list. "}}"#,
        ),
        e(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"I should run ls."}}"#,
        ),
        e(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}"#,
        ),
        stop(0),
        text_start(1),
        text(1, "Here is the answer."),
        stop(1),
        message_delta("end_turn"),
        message_stop(),
    ])
}

fn text_tool() -> String {
    let mut events = vec![
        message_start(),
        text_start(0),
        text(0, "I'll list the files."),
        stop(0),
    ];
    events.extend(bash_tool(1));
    events.extend([message_delta("tool_use"), message_stop()]);
    sse(&events)
}

fn read_tool(i: u64) -> Vec<(&'static str, String)> {
    vec![
        tool_start(i, "toolu_01A09q90qw90lq917835lq9", "Read"),
        input(i, r#"{"file_path":"#),
        input(i, r#" "/etc/hosts"}"#),
        stop(i),
    ]
}

fn two_tools() -> String {
    let mut events = vec![
        message_start(),
        text_start(0),
        text(0, "Two things at once."),
        stop(0),
    ];
    events.extend(bash_tool(1));
    events.push(ping());
    events.extend(read_tool(2));
    events.extend([message_delta("tool_use"), message_stop()]);
    sse(&events)
}

fn error_stream() -> String {
    sse(&[
        message_start(),
        text_start(0),
        text(0, "Partial"),
        e(
            "error",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ),
    ])
}

fn pings_everywhere() -> String {
    let mut events = vec![
        ping(),
        message_start(),
        ping(),
        text_start(0),
        ping(),
        text(0, "Sure."),
        ping(),
        stop(0),
    ];
    for event in bash_tool(1) {
        events.push(event);
        events.push(ping());
    }
    events.extend([message_delta("tool_use"), ping(), message_stop(), ping()]);
    sse(&events)
}

fn unknown_events() -> String {
    let mut s = sse(&[
        message_start(),
        e(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"srvtoolu_014hJH82Qum7Td6UV8gDXThB","name":"web_search","input":{}}}"#,
        ),
        e(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"query\": \"rust sse\"}"}}"#,
        ),
        stop(0),
        e(
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"web_search_tool_result","tool_use_id":"srvtoolu_014hJH82Qum7Td6UV8gDXThB","content":[]}}"#,
        ),
        stop(1),
        e(
            "future_event",
            r#"{"type":"future_event","payload":{"x":1}}"#,
        ),
    ]);
    s.push_str(": keep-alive comment\n\n");
    s.push_str("data: {\"type\":\"nameless\"}\n\n");
    s.push_str(&sse(&[
        text_start(2),
        text(2, "Found it."),
        stop(2),
        message_delta("end_turn"),
        message_stop(),
    ]));
    s
}

fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

/// (fixture name, stream, tool calls it makes as (name, input)).
type Fixture = (&'static str, String, Vec<(&'static str, Value)>);
/// An SSE event as (name, data).
type Ev = (&'static str, String);

fn fixtures() -> Vec<Fixture> {
    let read = json!({"file_path": "/etc/hosts"});
    vec![
        ("text_only", text_only(), vec![]),
        ("thinking_text", thinking_text(), vec![]),
        ("text_tool", text_tool(), vec![("Bash", bash_input())]),
        (
            "two_tools",
            two_tools(),
            vec![("Bash", bash_input()), ("Read", read)],
        ),
        ("error", error_stream(), vec![]),
        ("pings", pings_everywhere(), vec![("Bash", bash_input())]),
        ("unknown", unknown_events(), vec![]),
        ("crlf", crlf(&text_tool()), vec![("Bash", bash_input())]),
    ]
}

// ------------------------------------------------------------------ driver

#[derive(Debug, Default)]
struct Run {
    out: Vec<u8>,
    /// (index, id, name, input, oversize) in the order asked.
    decisions: Vec<(u64, String, String, Value, bool)>,
    /// The reason of [`Action::Fail`], if it came.
    failed: Option<String>,
}

/// Plays the async driver: frames `chunks`, feeds the machine, and answers
/// each decision with `verdict` after `delay` more chunks (0: at once,
/// `usize::MAX`: only after the stream ended).
struct Driver<'v, F> {
    machine: Machine<F>,
    verdict: &'v mut dyn FnMut(&str, &Value) -> Verdict,
    delay: usize,
    pending: Option<(u64, Verdict, usize)>,
    run: Run,
}

impl<F: TextFilter> Driver<'_, F> {
    fn apply(&mut self, actions: Vec<Action>) {
        let count = actions.len();
        for (n, action) in actions.into_iter().enumerate() {
            match action {
                Action::Forward(bytes) => self.run.out.extend_from_slice(&bytes),
                Action::Fail { reason } => {
                    assert_eq!(n + 1, count, "Fail is the last action of a batch");
                    assert!(self.run.failed.is_none(), "one Fail");
                    self.run.failed = Some(reason);
                }
                Action::Decide {
                    index,
                    id,
                    name,
                    input,
                    oversize,
                } => {
                    assert_eq!(n + 1, count, "Decide is the last action of a batch");
                    assert!(self.pending.is_none(), "one decision at a time");
                    assert_eq!(self.machine.pending(), Some(index));
                    let verdict = (self.verdict)(&name, &input);
                    self.run.decisions.push((index, id, name, input, oversize));
                    self.pending = Some((index, verdict, 0));
                    if self.delay == 0 {
                        self.answer();
                    }
                }
            }
        }
    }

    fn answer(&mut self) {
        if let Some((index, verdict, _)) = self.pending.take() {
            let actions = self.machine.resolve(index, verdict).unwrap();
            self.apply(actions);
        }
    }

    fn tick(&mut self) {
        if let Some((_, _, age)) = &mut self.pending {
            *age += 1;
            if *age >= self.delay {
                self.answer();
            }
        }
    }
}

fn drive<F: TextFilter>(
    machine: Machine<F>,
    chunks: &[&[u8]],
    delay: usize,
    verdict: &mut dyn FnMut(&str, &Value) -> Verdict,
) -> Run {
    let mut framer = Framer::new();
    let mut d = Driver {
        machine,
        verdict,
        delay,
        pending: None,
        run: Run::default(),
    };
    for chunk in chunks {
        for event in framer.push(chunk) {
            let waiting = d.pending.is_some();
            let actions = d.machine.feed(event.unwrap());
            assert!(
                !waiting || actions.is_empty(),
                "nothing moves while deciding"
            );
            d.apply(actions);
        }
        d.tick();
    }
    for event in framer.finish() {
        let actions = d.machine.feed(event.unwrap());
        d.apply(actions);
    }
    let actions = d.machine.finish();
    d.apply(actions);
    while d.pending.is_some() {
        d.answer();
    }
    assert!(!d.machine.is_holding(), "everything released at the end");
    assert_eq!(d.machine.pending(), None);
    d.run
}

fn allow(_: &str, _: &Value) -> Verdict {
    Verdict::Allow
}

fn block_names<'a>(names: &'a [&'a str]) -> impl FnMut(&str, &Value) -> Verdict + 'a {
    move |name, _| {
        if names.contains(&name) {
            Verdict::Block {
                text: format!("hoopctl blocked {name}: rule \"no-{name}\""),
            }
        } else {
            Verdict::Allow
        }
    }
}

/// Every way to cut `input` into chunks that the tests try: whole, one cut
/// at every offset, and 1-byte chunks.
fn splits(input: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut all = vec![vec![input]];
    for cut in 0..=input.len() {
        all.push(vec![&input[..cut], &input[cut..]]);
    }
    all.push(input.chunks(1).collect());
    all
}

/// Runs `input` split every way with decisions at once, one chunk late and
/// after the end; all must agree. Returns the run on the whole input.
fn run_all_ways<F: TextFilter>(
    make: impl Fn() -> Machine<F>,
    input: &str,
    verdict: &mut dyn FnMut(&str, &Value) -> Verdict,
) -> Run {
    let whole = drive(make(), &[input.as_bytes()], 0, verdict);
    let splits = splits(input.as_bytes());
    let last = splits.len() - 1;
    for (n, chunks) in splits.iter().enumerate() {
        // Late answers (a chunk or three after the question) on 1-byte
        // chunks; at once and after the end on every split.
        let delays: &[usize] = if n == last {
            &[0, 1, 3, usize::MAX]
        } else {
            &[0, usize::MAX]
        };
        for &delay in delays {
            let run = drive(make(), chunks, delay, verdict);
            assert_eq!(
                String::from_utf8_lossy(&run.out),
                String::from_utf8_lossy(&whole.out),
                "{} chunks, delay {delay}",
                chunks.len()
            );
            assert_eq!(run.decisions, whole.decisions);
            assert_eq!(run.failed, whole.failed);
        }
    }
    whole
}

/// What a client's accumulator makes of a stream: content blocks and the
/// stop reason.
fn assemble(out: &[u8]) -> (Vec<Value>, Option<String>) {
    let mut framer = Framer::new();
    let mut events: Vec<_> = framer.push(out).map(|e| e.unwrap()).collect();
    events.extend(framer.finish().map(|e| e.unwrap()));
    let mut content: Vec<Value> = Vec::new();
    let mut json: HashMap<usize, String> = HashMap::new();
    let mut stop_reason = None;
    for event in events {
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
            continue;
        };
        let index = data["index"].as_u64().unwrap_or(0) as usize;
        match data["type"].as_str() {
            Some("content_block_start") => {
                assert_eq!(index, content.len(), "blocks start in order");
                content.push(data["content_block"].clone());
            }
            Some("content_block_delta") => {
                let delta = &data["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        let text = content[index]["text"].as_str().unwrap().to_owned();
                        content[index]["text"] = json!(text + delta["text"].as_str().unwrap());
                    }
                    Some("input_json_delta") => json
                        .entry(index)
                        .or_default()
                        .push_str(delta["partial_json"].as_str().unwrap()),
                    _ => {}
                }
            }
            Some("content_block_stop") => {
                if let Some(buf) = json.remove(&index).filter(|b| !b.is_empty()) {
                    content[index]["input"] = serde_json::from_str(&buf).unwrap();
                }
            }
            Some("message_delta") => {
                stop_reason = data["delta"]["stop_reason"].as_str().map(str::to_owned);
            }
            _ => {}
        }
    }
    (content, stop_reason)
}

// ------------------------------------------------------------------- tests

#[test]
fn all_allowed_output_is_the_input_split_every_way() {
    for (name, input, tools) in fixtures() {
        let run = run_all_ways(Machine::new, &input, &mut allow);
        assert_eq!(run.out, input.as_bytes(), "{name}");
        let asked: Vec<(&str, &Value)> = run
            .decisions
            .iter()
            .map(|(_, _, name, input, _)| (name.as_str(), input))
            .collect();
        let want: Vec<(&str, &Value)> = tools.iter().map(|(n, v)| (*n, v)).collect();
        assert_eq!(asked, want, "{name}");
    }
}

#[test]
fn decide_carries_index_id_and_name() {
    let run = drive(Machine::new(), &[two_tools().as_bytes()], 0, &mut allow);
    let ids: Vec<(u64, &str, bool)> = run
        .decisions
        .iter()
        .map(|(i, id, _, _, oversize)| (*i, id.as_str(), *oversize))
        .collect();
    assert_eq!(
        ids,
        [
            (1, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", false),
            (2, "toolu_01A09q90qw90lq917835lq9", false)
        ]
    );
}

#[test]
fn blocked_tool_becomes_text_and_turn_ends() {
    let blocked = "hoopctl blocked Bash: rule \"no-Bash\"";
    let want = sse(&[
        message_start(),
        text_start(0),
        text(0, "I'll list the files."),
        stop(0),
        text_start(1),
        text(1, blocked),
        stop(1),
        message_delta("end_turn"),
        message_stop(),
    ]);
    for input in [text_tool(), crlf(&text_tool())] {
        let run = run_all_ways(Machine::new, &input, &mut block_names(&["Bash"]));
        if input.contains('\r') {
            let (content, stop_reason) = assemble(&run.out);
            assert_eq!(content, assemble(want.as_bytes()).0);
            assert_eq!(stop_reason.as_deref(), Some("end_turn"));
        } else {
            assert_eq!(String::from_utf8(run.out).unwrap(), want);
        }
    }
}

#[test]
fn pings_inside_a_blocked_block_keep_their_place() {
    let run = run_all_ways(
        Machine::new,
        &pings_everywhere(),
        &mut block_names(&["Bash"]),
    );
    let out = String::from_utf8(run.out).unwrap();
    assert_eq!(
        out.matches("event: ping").count(),
        pings_everywhere().matches("event: ping").count()
    );
    assert!(!out.contains("input_json_delta"));
    let (content, stop_reason) = assemble(out.as_bytes());
    assert_eq!(
        content[1],
        json!({"type": "text", "text": "hoopctl blocked Bash: rule \"no-Bash\""})
    );
    assert_eq!(stop_reason.as_deref(), Some("end_turn"));
}

#[test]
fn blocking_one_of_two_parallel_tools_keeps_tool_use() {
    let run = run_all_ways(Machine::new, &two_tools(), &mut block_names(&["Bash"]));
    let (content, stop_reason) = assemble(&run.out);
    assert_eq!(content.len(), 3);
    assert_eq!(content[1]["type"], "text");
    assert_eq!(content[2]["type"], "tool_use");
    assert_eq!(content[2]["input"], json!({"file_path": "/etc/hosts"}));
    assert_eq!(stop_reason.as_deref(), Some("tool_use"));
    // The other tool blocked instead: the same.
    let run = run_all_ways(Machine::new, &two_tools(), &mut block_names(&["Read"]));
    let (content, stop_reason) = assemble(&run.out);
    assert_eq!(content[1]["input"], bash_input());
    assert_eq!(content[2]["type"], "text");
    assert_eq!(stop_reason.as_deref(), Some("tool_use"));
    // Both blocked: the turn ends.
    let run = run_all_ways(
        Machine::new,
        &two_tools(),
        &mut block_names(&["Bash", "Read"]),
    );
    let (content, stop_reason) = assemble(&run.out);
    let types: Vec<&str> = content
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["text", "text", "text"]);
    assert_eq!(stop_reason.as_deref(), Some("end_turn"));
}

#[test]
fn stop_reason_rewrite_keeps_other_fields() {
    let input = sse(&[
        message_start(),
        tool_start(0, "toolu_1", "Bash"),
        stop(0),
        e(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89},"context_management":{"applied_edits":[]}}"#,
        ),
    ]);
    let run = drive(
        Machine::new(),
        &[input.as_bytes()],
        0,
        &mut block_names(&["Bash"]),
    );
    let out = String::from_utf8(run.out).unwrap();
    assert!(out.ends_with(
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"context_management\":{\"applied_edits\":[]},\"usage\":{\"output_tokens\":89}}\n\n"
    ), "{out}");
    // Other stop reasons are left alone.
    let input = sse(&[
        tool_start(0, "toolu_1", "Bash"),
        stop(0),
        message_delta("max_tokens"),
    ]);
    let run = drive(
        Machine::new(),
        &[input.as_bytes()],
        0,
        &mut block_names(&["Bash"]),
    );
    assert!(String::from_utf8(run.out)
        .unwrap()
        .ends_with(&sse(&[message_delta("max_tokens")])));
}

#[test]
fn queued_events_wait_for_the_decision_in_order() {
    let input = two_tools();
    let mut framer = Framer::new();
    let mut machine = Machine::new();
    let mut out = Vec::new();
    let mut decides = Vec::new();
    let take = |actions: Vec<Action>, out: &mut Vec<u8>, decides: &mut Vec<u64>| {
        for action in actions {
            match action {
                Action::Forward(bytes) => out.extend_from_slice(&bytes),
                Action::Decide { index, .. } => decides.push(index),
                Action::Fail { reason } => panic!("{reason}"),
            }
        }
    };
    for event in framer.push(input.as_bytes()) {
        let actions = machine.feed(event.unwrap());
        take(actions, &mut out, &mut decides);
    }
    // Only what precedes the first tool block went out; one decision asked.
    let first_tool = input
        .find("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1")
        .unwrap();
    assert_eq!(String::from_utf8(out.clone()).unwrap(), input[..first_tool]);
    assert_eq!(decides, [1]);
    assert!(machine.is_holding());
    // Answering the wrong block, or twice, is an error.
    assert!(matches!(
        machine.resolve(2, Verdict::Allow),
        Err(Error::NotPending { index: 2 })
    ));
    let actions = machine.resolve(1, Verdict::Allow).unwrap();
    take(actions, &mut out, &mut decides);
    assert!(machine.resolve(1, Verdict::Allow).is_err());
    // Block 1 and the ping after it went out; block 2 is now asked about.
    let second_tool = input
        .find("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2")
        .unwrap();
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        input[..second_tool]
    );
    assert_eq!(decides, [1, 2]);
    assert_eq!(machine.pending(), Some(2));
    let actions = machine.resolve(2, Verdict::Allow).unwrap();
    take(actions, &mut out, &mut decides);
    assert_eq!(String::from_utf8(out).unwrap(), input);
    assert!(!machine.is_holding());
    assert_eq!(machine.pending(), None);
    assert!(machine.finish().is_empty());
}

#[test]
fn tool_inputs_table() {
    let cases: Vec<(&str, Vec<Ev>, Value)> = vec![
        (
            "no deltas",
            vec![tool_start(0, "t", "ToolA"), stop(0)],
            json!({}),
        ),
        (
            "empty delta",
            vec![tool_start(0, "t", "ToolA"), input(0, ""), stop(0)],
            json!({}),
        ),
        (
            "input in start",
            vec![
                e(
                    "content_block_start",
                    r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"ToolA","input":{"a":1}}}"#,
                ),
                stop(0),
            ],
            json!({"a": 1}),
        ),
        (
            "malformed",
            vec![
                tool_start(0, "t", "ToolA"),
                input(0, r#"{"command": "rm -rf"#),
                stop(0),
            ],
            json!(r#"{"command": "rm -rf"#),
        ),
        (
            "cut off",
            vec![tool_start(0, "t", "ToolA"), input(0, r#"{"command": "rm"#)],
            json!(r#"{"command": "rm"#),
        ),
        (
            "cut off after complete json",
            vec![
                tool_start(0, "t", "ToolA"),
                input(0, r#"{"command": "rm"}"#),
            ],
            json!({"command": "rm"}),
        ),
        (
            "other deltas ignored",
            vec![
                tool_start(0, "t", "ToolA"),
                input(0, r#"{"x":"#),
                text(0, "stray"),
                input(0, "true}"),
                stop(0),
            ],
            json!({"x": true}),
        ),
    ];
    for (what, events, want) in cases {
        let input = sse(&events);
        let run = run_all_ways(Machine::new, &input, &mut allow);
        assert_eq!(run.out, input.as_bytes(), "{what}");
        assert_eq!(run.decisions.len(), 1, "{what}");
        assert_eq!(run.decisions[0].3, want, "{what}");
        // Blocked, nothing of the block survives.
        let run = drive(
            Machine::new(),
            &[input.as_bytes()],
            0,
            &mut block_names(&["ToolA"]),
        );
        let out = String::from_utf8(run.out).unwrap();
        assert!(
            !out.contains("tool_use") && !out.contains("rm"),
            "{what}: {out}"
        );
    }
}

#[test]
fn unterminated_blocks_do_not_stall_the_stream() {
    // A tool block without its stop is decided when the message ends, and a
    // second start at the same index completes the first.
    let input = sse(&[
        message_start(),
        tool_start(0, "toolu_a", "Bash"),
        input(0, r#"{"command":"a"}"#),
        tool_start(0, "toolu_b", "Bash"),
        input(0, r#"{"command":"b"}"#),
        message_delta("tool_use"),
        message_stop(),
    ]);
    let mut framer = Framer::new();
    let mut machine = Machine::new();
    let mut asked = Vec::new();
    for event in framer.push(input.as_bytes()) {
        for action in machine.feed(event.unwrap()) {
            if let Action::Decide { id, input, .. } = action {
                asked.push((id.clone(), input));
                let more = machine.resolve(0, Verdict::Allow).unwrap();
                for action in more {
                    if let Action::Decide { id, input, .. } = action {
                        asked.push((id, input));
                        assert!(machine.resolve(0, Verdict::Allow).unwrap().len() > 1);
                    }
                }
            }
        }
    }
    assert_eq!(
        asked,
        [
            ("toolu_a".to_owned(), json!({"command": "a"})),
            ("toolu_b".to_owned(), json!({"command": "b"}))
        ]
    );
    assert!(!machine.is_holding());
}

#[test]
fn oversize_block_is_decided_early() {
    let big = "x".repeat(2000);
    let pieces: Vec<String> = big
        .as_bytes()
        .chunks(100)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let mut events = vec![
        message_start(),
        tool_start(0, "toolu_big", "Write"),
        input(0, "{\"content\": \""),
    ];
    events.extend(pieces.iter().map(|p| input(0, p)));
    events.extend([
        input(0, "\"}"),
        stop(0),
        message_delta("tool_use"),
        message_stop(),
    ]);
    let input_text = sse(&events);
    let make = || Machine::new().hold_limit(1000);

    let run = run_all_ways(make, &input_text, &mut allow);
    assert_eq!(run.out, input_text.as_bytes());
    let (_, _, name, seen, oversize) = &run.decisions[0];
    assert_eq!(name, "Write");
    assert!(*oversize);
    let seen = seen.as_str().unwrap();
    assert!(
        seen.starts_with("{\"content\": \"xxx") && seen.len() < 1000,
        "{seen}"
    );

    let run = run_all_ways(make, &input_text, &mut block_names(&["Write"]));
    let (content, stop_reason) = assemble(&run.out);
    assert_eq!(content.len(), 1);
    assert_eq!(content[0]["type"], "text");
    assert_eq!(stop_reason.as_deref(), Some("end_turn"));
    assert!(!String::from_utf8(run.out).unwrap().contains("xxx"));
}

/// Rehydrates the placeholder `PH1` to `value`, also when a delta boundary
/// splits it (holding back a possible prefix until the next delta or the
/// block's end).
#[derive(Default)]
struct Rehydrate {
    held: HashMap<u64, String>,
}

impl TextFilter for Rehydrate {
    fn text(&mut self, index: u64, text: &str) -> Option<String> {
        let mut s = self.held.remove(&index).unwrap_or_default() + text;
        let keep = ["PH", "P"]
            .iter()
            .find(|p| s.ends_with(*p))
            .map_or(0, |p| p.len());
        let tail = s.split_off(s.len() - keep);
        if !tail.is_empty() {
            self.held.insert(index, tail);
        }
        Some(s.replace("PH1", "value"))
    }
    fn flush(&mut self, index: u64) -> Option<String> {
        self.held.remove(&index)
    }
    fn tool_input(&mut self, _name: &str, input: &mut Value) -> bool {
        fn walk(v: &mut Value) -> bool {
            match v {
                Value::String(s) if s.contains("PH1") => {
                    *s = s.replace("PH1", "value");
                    true
                }
                Value::Array(a) => a.iter_mut().fold(false, |c, v| walk(v) | c),
                Value::Object(o) => o.values_mut().fold(false, |c, v| walk(v) | c),
                _ => false,
            }
        }
        walk(input)
    }
}

#[test]
fn text_filter_rewrites_text_and_tool_input() {
    let body = sse(&[
        message_start(),
        text_start(0),
        text(0, "Mail P"),
        text(0, "H1 and PH"),
        ping(),
        text(0, "1, end P"),
        stop(0),
        tool_start(1, "toolu_1", "Bash"),
        input(1, r#"{"command": "echo P"#),
        input(1, r#"H1"}"#),
        stop(1),
        message_delta("tool_use"),
        message_stop(),
    ]);
    let run = run_all_ways(
        || Machine::with_filter(Rehydrate::default()),
        &body,
        &mut allow,
    );
    assert_eq!(run.decisions[0].3, json!({"command": "echo value"}));
    let (content, stop_reason) = assemble(&run.out);
    assert_eq!(content[0]["text"], "Mail value and value, end P");
    assert_eq!(content[1]["input"], json!({"command": "echo value"}));
    assert_eq!(stop_reason.as_deref(), Some("tool_use"));
    // Events keep their field order when rewritten.
    let out = String::from_utf8(run.out).unwrap();
    assert!(out.contains(&sse(&[text(0, "Mail ")])), "{out}");
    assert!(
        out.contains(&sse(&[input(1, r#"{"command":"echo value"}"#), stop(1)])),
        "{out}"
    );

    // A filter borrowed mutably works too, and its tail is flushed at the
    // end of a cut-off stream.
    let mut filter = Rehydrate::default();
    let cut = sse(&[text_start(0), text(0, "a P")]);
    let run = drive(
        Machine::with_filter(&mut filter),
        &[cut.as_bytes()],
        0,
        &mut allow,
    );
    assert_eq!(assemble(&run.out).0[0]["text"], "a P");
}

/// A small deterministic generator for the mutation test.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }
}

#[test]
fn mutated_streams_pass_byte_for_byte_when_allowed() {
    let alphabet = b"\n\r:{}\",[]x0 \xE2\x82";
    let mut rng = Lcg(7);
    let all: Vec<String> = fixtures().into_iter().map(|(_, s, _)| s).collect();
    for round in 0..300 {
        let mut bytes = all[round % all.len()].clone().into_bytes();
        for _ in 0..1 + rng.next(8) {
            let at = rng.next(bytes.len());
            match rng.next(3) {
                0 => bytes[at] = alphabet[rng.next(alphabet.len())],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, alphabet[rng.next(alphabet.len())]),
            }
        }
        let cut = rng.next(bytes.len());
        let chunks = [&bytes[..cut], &bytes[cut..]];
        let run = drive(Machine::new(), &chunks, rng.next(3), &mut allow);
        // Byte for byte up to the first event it cannot read, where it
        // stops.
        let mut framer = Framer::new();
        let mut events: Vec<_> = framer.push(&bytes).map(|e| e.unwrap()).collect();
        events.extend(framer.finish().map(|e| e.unwrap()));
        let readable = |data: &str| {
            data.is_empty() || matches!(serde_json::from_str(data), Ok(Value::Object(_)))
        };
        let want: Vec<u8> = match events.iter().position(|e| !readable(&e.data)) {
            Some(at) => events[..at].iter().flat_map(|e| e.raw.to_vec()).collect(),
            None => bytes.clone(),
        };
        assert_eq!(
            run.failed.is_some(),
            want.len() < bytes.len(),
            "round {round}"
        );
        assert_eq!(run.out, want, "round {round}");
        // Blocking everything never panics and yields parseable events.
        let run = drive(Machine::new(), &chunks, 0, &mut |_, _| Verdict::Block {
            text: "no".into(),
        });
        let mut framer = Framer::new();
        assert!(framer.push(&run.out).all(|e| e.is_ok()));
        assert!(framer.finish().all(|e| e.is_ok()));
    }
}

#[test]
fn keepalive_is_a_ping() {
    let mut framer = Framer::new();
    let events: Vec<_> = framer.push(&keepalive()).map(|e| e.unwrap()).collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].name.as_deref(), Some("ping"));
    assert_eq!(
        serde_json::from_str::<Value>(&events[0].data).unwrap(),
        json!({"type": "ping"})
    );
}

#[test]
fn synthesized_text_is_escaped() {
    let tricky = "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} \u{2028} \u{1f600}";
    let body = sse(&[tool_start(0, "t", "Bash"), stop(0)]);
    let run = drive(Machine::new(), &[body.as_bytes()], 0, &mut |_, _| {
        Verdict::Block {
            text: tricky.into(),
        }
    });
    assert_eq!(assemble(&run.out).0[0]["text"], tricky);
}

// ------------------------------------------------------------- inspect_json

const JSON_TOOL: &str = r#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Listing."},{"type":"tool_use","id":"toolu_1","name":"Bash","input":{"command":"ls"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":5}}"#;
const JSON_TWO: &str = r#"{"type":"message","content":[{"type":"tool_use","id":"toolu_1","name":"Bash","input":{"command":"ls"}},{"type":"tool_use","id":"toolu_2","name":"Read","input":{"file_path":"/etc/hosts"}}],"stop_reason":"tool_use"}"#;

#[test]
fn inspect_json_table() {
    let bash_blocked = json!({"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Listing."},{"type":"text","text":"hoopctl blocked Bash: rule \"no-Bash\""}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":5}});
    let one_of_two = json!({"type":"message","content":[{"type":"text","text":"hoopctl blocked Bash: rule \"no-Bash\""},{"type":"tool_use","id":"toolu_2","name":"Read","input":{"file_path":"/etc/hosts"}}],"stop_reason":"tool_use"});
    let both = json!({"type":"message","content":[{"type":"text","text":"hoopctl blocked Bash: rule \"no-Bash\""},{"type":"text","text":"hoopctl blocked Read: rule \"no-Read\""}],"stop_reason":"end_turn"});
    // (body, blocked names, expected: None = unchanged bytes)
    let cases: Vec<(&str, &[&str], Option<Value>)> = vec![
        (JSON_TOOL, &[], None),
        (JSON_TOOL, &["Read"], None),
        (JSON_TOOL, &["Bash"], Some(bash_blocked)),
        (JSON_TWO, &["Bash"], Some(one_of_two)),
        (JSON_TWO, &["Bash", "Read"], Some(both)),
        (
            r#"{"type":"message","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn"}"#,
            &["Bash"],
            None,
        ),
        (
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            &["Bash"],
            None,
        ),
        (
            r#"{"type":"message","content":"not an array"}"#,
            &["Bash"],
            None,
        ),
        (r#"[1,2]"#, &["Bash"], None),
        ("not json at all", &["Bash"], None),
        ("", &["Bash"], None),
    ];
    for (body, names, want) in cases {
        let out = inspect_json(body.as_bytes(), |name, _, _| {
            block_names(names)(name, &Value::Null)
        })
        .unwrap();
        match want {
            None => assert_eq!(out, body.as_bytes(), "{body}"),
            Some(want) => assert_eq!(
                serde_json::from_slice::<Value>(&out).unwrap(),
                want,
                "{body}"
            ),
        }
    }
}

#[test]
fn inspect_json_passes_the_call_to_decide() {
    let mut seen = Vec::new();
    inspect_json(JSON_TWO.as_bytes(), |name, id, input| {
        seen.push((name.to_owned(), id.to_owned(), input.clone()));
        Verdict::Allow
    })
    .unwrap();
    assert_eq!(
        seen,
        [
            ("Bash".into(), "toolu_1".into(), json!({"command": "ls"})),
            (
                "Read".into(),
                "toolu_2".into(),
                json!({"file_path": "/etc/hosts"})
            )
        ]
    );
}

#[test]
fn inspect_json_with_filter() {
    let body = r#"{"type":"message","content":[{"type":"text","text":"Mail PH1 P"},{"type":"tool_use","id":"t","name":"Bash","input":{"command":"echo PH1"}}],"stop_reason":"tool_use"}"#;
    let mut seen = Value::Null;
    let out = inspect_json_with(body.as_bytes(), &mut Rehydrate::default(), |_, _, input| {
        seen = input.clone();
        Verdict::Allow
    })
    .unwrap();
    assert_eq!(seen, json!({"command": "echo value"}));
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["content"][0]["text"], "Mail value P");
    assert_eq!(out["content"][1]["input"], json!({"command": "echo value"}));
    assert_eq!(out["stop_reason"], "tool_use");
}

// ------------------------------------------------------- unreadable events

/// A `tool_use` start that JavaScript's `JSON.parse` reads but `serde_json`
/// refuses: a lone surrogate escape in the id.
fn lone_surrogate_tool_start(i: u64) -> (&'static str, String) {
    e(
        "content_block_start",
        format!(
            r#"{{"type":"content_block_start","index":{i},"content_block":{{"type":"tool_use","id":"toolu_\ud800","name":"Bash","input":{{}}}}}}"#
        ),
    )
}

/// A `tool_use` start nested past `serde_json`'s 128 levels (in a field
/// the client ignores).
fn deep_tool_start(i: u64) -> (&'static str, String) {
    e(
        "content_block_start",
        format!(
            r#"{{"type":"content_block_start","index":{i},"pad":{}{},"content_block":{{"type":"tool_use","id":"toolu_1","name":"Bash","input":{{}}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        ),
    )
}

#[test]
fn an_event_it_cannot_read_ends_the_stream_before_a_hidden_tool_call() {
    let before = sse(&[
        message_start(),
        text_start(0),
        text(0, "Cleaning up."),
        stop(0),
    ]);
    for (what, start) in [
        ("lone surrogate", lone_surrogate_tool_start(1)),
        ("deep nesting", deep_tool_start(1)),
        (
            "not JSON",
            e("content_block_start", "{\"type\":\"content_block_start\","),
        ),
        ("not an object", e("content_block_start", "[1,2]")),
    ] {
        let mut tail = vec![
            start,
            input(1, r#"{"command": "rm -rf /"}"#),
            stop(1),
            message_delta("tool_use"),
            message_stop(),
        ];
        tail.extend(bash_tool(2));
        let input = format!("{before}{}", sse(&tail));
        for verdict in [
            &mut allow as &mut dyn FnMut(&str, &Value) -> Verdict,
            &mut block_names(&["Bash"]),
        ] {
            let run = run_all_ways(Machine::new, &input, verdict);
            assert_eq!(String::from_utf8_lossy(&run.out), before, "{what}");
            assert!(
                run.decisions.is_empty(),
                "{what}: nothing after it is decided"
            );
            let reason = run.failed.unwrap_or_else(|| panic!("{what}: no Fail"));
            assert!(
                !reason.contains("rm -rf"),
                "{what}: the reason quotes the event"
            );
        }
    }
}

#[test]
fn a_tool_call_cut_off_by_an_unreadable_event_is_decided_before_the_end() {
    let mut events = vec![message_start()];
    events.extend(bash_tool(0).into_iter().take(3));
    events.push(e("content_block_delta", "{not json"));
    events.push(stop(0));
    let input = sse(&events);
    let run = run_all_ways(Machine::new, &input, &mut block_names(&["Bash"]));
    let decided: Vec<(&str, &Value)> = run
        .decisions
        .iter()
        .map(|(_, _, name, input, _)| (name.as_str(), input))
        .collect();
    // What arrived of the input, unparsed (policy blocks non-objects).
    assert_eq!(decided, [("Bash", &json!(r#"{"command": "ls"#))]);
    assert!(run.failed.is_some());
    let out = String::from_utf8_lossy(&run.out);
    assert!(!out.contains("tool_use"), "{out}");
    assert!(out.contains("hoopctl blocked"), "{out}");
}

#[test]
fn events_without_data_and_pings_still_pass() {
    let mut input = sse(&[message_start(), ping()]);
    input.push_str("event: ping\n\n: a comment\n\n");
    input.push_str(&sse(&[
        text_start(0),
        text(0, "ok"),
        stop(0),
        message_stop(),
    ]));
    let run = run_all_ways(Machine::new, &input, &mut allow);
    assert_eq!(run.out, input.as_bytes());
    assert_eq!(run.failed, None);
}
