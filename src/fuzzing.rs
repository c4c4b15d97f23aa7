//! Fuzz harnesses: one function per `cargo fuzz` target (see `fuzz/`), each
//! taking the fuzzer's bytes, running the real component and checking what
//! it promises, not only that it does not crash. `tests/it/fuzz_replay.rs`
//! feeds the saved inputs under `tests/fuzz_regressions/<target>/` through
//! the same functions on stable, so every finding stays fixed.
//!
//! Owns: the invariants checked per target. Must not: be used by the
//! product (it is `#[doc(hidden)]` and only the fuzz crate and the tests
//! call it).
//!
//! A broken invariant panics: that is how libFuzzer (and `cargo test`)
//! report a failure, hence the lint exceptions below.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::anthropic::sse::{self, Framer};
use crate::control::protocol::{Command, LineError, LineReader, ServerLine, MAX_LINE_BYTES};
use crate::inspect::machine::{Action, Machine, Verdict};
use crate::policy::guard::{Decision, Guard};
use crate::policy::mask::{Masking, Session};

/// The longest one guard decision may take in a harness. Generous (debug
/// builds, a loaded machine): a real regression is seconds or a hang.
pub const GUARD_DEADLINE: Duration = Duration::from_secs(5);

/// The SSE framer's event bound in the `sse_inspector` harness: small, so
/// fuzzed inputs reach it.
pub const SSE_EVENT_LIMIT: usize = 2048;

/// The inspector's hold limit in the `sse_inspector` harness: small, so
/// fuzzed inputs make oversize `tool_use` blocks.
pub const SSE_HOLD_LIMIT: usize = 512;

/// The built-in detectors, compiled once (compiling them per input would
/// dominate the run time).
static MASKING: LazyLock<Masking> = LazyLock::new(Masking::builtin);

/// Home directory the harness guards run with (for `~` in rules).
const HOME: &str = "/home/fuzz";

fn guard() -> Guard {
    Guard::builtin().with_home(HOME)
}

fn timed_decide(guard: &Guard, tool: &str, input: &Value) -> Decision {
    let started = Instant::now();
    let d = guard.decide(tool, input);
    let took = started.elapsed();
    assert!(
        took <= GUARD_DEADLINE,
        "guard took {took:?} on {tool} {input}"
    );
    d
}

/// Shell commands wrapped so bash still runs `x` (each a metamorphic
/// variant: a blocked `x` must not become allowed). The newline before each
/// closer ends a trailing comment in `x`.
fn shell_wrappings(x: &str) -> Vec<String> {
    vec![
        format!("( {x}\n)"),
        format!("{{ {x}\n}}"),
        format!("echo \"$( {x}\n)\""),
        format!("true && {x}"),
        format!("true; {x}"),
    ]
}

/// `shell`: the guard on `Bash {"command": <input as UTF-8, lossy>}` is
/// deterministic and quick, and a blocked or held command stays so when
/// wrapped in a subshell, a group, a command substitution or after another
/// command.
pub fn shell(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let g = guard();
    let input = json!({ "command": text });
    let first = timed_decide(&g, "Bash", &input);
    let again = timed_decide(&g, "Bash", &input);
    assert_eq!(first, again, "guard is not deterministic on {text:?}");
    if first.is_allow() {
        return;
    }
    // Wrappings would be read differently from the bare command when an
    // unbalanced quote or heredoc swallows the closer; bash then fails to
    // parse the whole line and runs nothing, so there is nothing to check.
    if !balanced_for_wrapping(&text) {
        return;
    }
    for wrapped in shell_wrappings(&text) {
        let d = timed_decide(&g, "Bash", &json!({ "command": wrapped }));
        // A line bash cannot parse runs nothing: not a bypass. Asked of
        // bash itself, and only when the check fails (rare, so cheap).
        if d.is_allow() && bash_parses(&text) && bash_parses(&wrapped) {
            panic!("{text:?} is {first} but wrapped as {wrapped:?} it is allowed");
        }
    }
}

/// Whether `bash -n` accepts `script` (no syntax error). Without bash,
/// true: the check stays strict. With a NUL byte, false: no argument can
/// carry one to bash.
fn bash_parses(script: &str) -> bool {
    use std::process::{Command, Stdio};
    if script.contains('\0') {
        return false;
    }
    Command::new("bash")
        .args(["-n", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_or(true, |s| s.success())
}

/// True when `text` has no construct that would swallow a closer appended
/// after it: an unterminated quote, backtick, `$(`/`(`/`{` group, a
/// heredoc, or a trailing backslash.
fn balanced_for_wrapping(text: &str) -> bool {
    if text.contains("<<") || text.ends_with('\\') || text.contains('\0') {
        return false;
    }
    let (mut single, mut double, mut back) = (false, false, false);
    let mut depth: i64 = 0;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if !single => {
                chars.next();
            }
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '`' if !single => back = !back,
            // Inside backticks parens belong to the inner command: `(`)
            // is a `(` substitution, then a stray `)`.
            '(' | '{' if !single && !double && !back => depth += 1,
            ')' | '}' if !single && !double && !back => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    !single && !double && !back && depth == 0
}

/// SQL statements prepended to a blocked statement (each followed by `;`).
const BENIGN_SQL: &[&str] = &["SELECT 1", "SET search_path TO public", "BEGIN"];

/// `sql`: the SQL guard on arbitrary text, reached the two ways the
/// catalogue reads SQL (an MCP tool's string argument, `psql -c`). A
/// statement sqlparser reads as `DROP TABLE|DATABASE|SCHEMA` or `TRUNCATE`
/// is blocked; a blocked text stays blocked with a benign statement before
/// it; decisions are deterministic and quick.
pub fn sql(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let g = guard();
    let via_mcp = |t: &str| timed_decide(&g, "mcp__db__query", &json!({ "sql": t }));
    let via_psql = |t: &str| {
        let quoted = format!("'{}'", t.replace('\'', r"'\''"));
        timed_decide(
            &g,
            "Bash",
            &json!({ "command": format!("psql -d app -c {quoted}") }),
        )
    };
    let mcp = via_mcp(&text);
    assert_eq!(mcp, via_mcp(&text), "not deterministic on {text:?}");
    let psql = via_psql(&text);

    if let Some(kind) = sqlparser_destructive(&text) {
        assert!(
            matches!(psql, Decision::Block { .. }),
            "sqlparser reads {text:?} as {kind} but `psql -c` of it is {psql}"
        );
    }
    if !text.contains('\0') {
        for benign in BENIGN_SQL {
            for (before, how) in [(&mcp, "mcp"), (&psql, "psql")] {
                if before.is_allow() {
                    continue;
                }
                let longer = format!("{benign};\n{text}");
                let after = if how == "mcp" {
                    via_mcp(&longer)
                } else {
                    via_psql(&longer)
                };
                assert!(
                    !after.is_allow(),
                    "{text:?} is {before} via {how}, but allowed after `{benign};`"
                );
            }
        }
    }
}

/// What sqlparser reads in `text`, in any of the dialects the catalogue
/// tries, that the catalogue must block, if anything.
fn sqlparser_destructive(text: &str) -> Option<&'static str> {
    use sqlparser::ast::{ObjectType, Statement};
    use sqlparser::dialect::{
        Dialect, GenericDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect,
    };
    use sqlparser::parser::Parser;
    if text.len() > 64 * 1024 {
        return None;
    }
    let dialects: [&dyn Dialect; 4] = [
        &GenericDialect {},
        &PostgreSqlDialect {},
        &MySqlDialect {},
        &SQLiteDialect {},
    ];
    dialects.iter().find_map(|d| {
        let stmts = Parser::parse_sql(*d, text).ok()?;
        stmts.iter().find_map(|s| match s {
            Statement::Drop {
                object_type: ObjectType::Table | ObjectType::Database | ObjectType::Schema,
                ..
            } => Some("DROP"),
            Statement::Truncate(_) => Some("TRUNCATE"),
            _ => None,
        })
    })
}

/// Chunks `stream` at the cut points the fuzzer chose (`cuts`, as deltas).
fn chunks<'a>(stream: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = stream;
    for &c in cuts {
        let n = usize::from(c).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out.push(rest);
    out
}

/// What one run of framer + inspector produced.
#[derive(Debug, PartialEq)]
struct Run {
    /// Every event's `(raw, name, data)` as framed.
    events: Vec<(Vec<u8>, Option<String>, String)>,
    /// The framer's error, if the stream hit [`SSE_EVENT_LIMIT`].
    framing_failed: bool,
    /// The inspector's [`Action::Fail`]: it met an event it cannot read.
    inspect_failed: bool,
    /// What the inspector wrote to the client.
    out: Vec<u8>,
    /// Every decision asked for: (index, id, name, input, oversize).
    decisions: Vec<(u64, String, String, Value, bool)>,
}

/// Carries out the actions; false after [`Action::Fail`] (which must be
/// the last one).
fn drain(
    machine: &mut Machine,
    verdict: &Verdict,
    actions: Vec<Action>,
    out: &mut Vec<u8>,
    decisions: &mut Vec<(u64, String, String, Value, bool)>,
) -> bool {
    let mut queue: VecDeque<Action> = actions.into();
    while let Some(action) = queue.pop_front() {
        match action {
            Action::Forward(bytes) => out.extend_from_slice(&bytes),
            Action::Fail { .. } => {
                assert!(queue.is_empty(), "actions after Fail");
                assert!(!machine.is_holding(), "events held after Fail");
                return false;
            }
            Action::Decide {
                index,
                id,
                name,
                input,
                oversize,
            } => {
                assert_eq!(machine.pending(), Some(index), "Decide without pending");
                decisions.push((index, id, name, input, oversize));
                let more = machine
                    .resolve(index, verdict.clone())
                    .expect("the decision just asked for is pending");
                queue.extend(more);
            }
        }
    }
    true
}

fn run_stream(chunks: &[&[u8]], verdict: &Verdict) -> Run {
    let mut framer = Framer::with_limit(SSE_EVENT_LIMIT);
    let mut machine = Machine::new().hold_limit(SSE_HOLD_LIMIT);
    let mut run = Run {
        events: Vec::new(),
        framing_failed: false,
        inspect_failed: false,
        out: Vec::new(),
        decisions: Vec::new(),
    };
    let feed = |run: &mut Run, machine: &mut Machine, ev: Result<sse::Event, sse::Error>| match ev {
        Ok(ev) => {
            assert!(ev.raw.len() <= SSE_EVENT_LIMIT, "event over the limit");
            run.events
                .push((ev.raw.to_vec(), ev.name.clone(), ev.data.clone()));
            let actions = machine.feed(ev);
            run.inspect_failed =
                !drain(machine, verdict, actions, &mut run.out, &mut run.decisions);
            !run.inspect_failed
        }
        Err(sse::Error::TooLarge { limit }) => {
            assert_eq!(limit, SSE_EVENT_LIMIT);
            run.framing_failed = true;
            false
        }
    };
    for chunk in chunks {
        let events: Vec<_> = framer.push(chunk).collect();
        for ev in events {
            if !feed(&mut run, &mut machine, ev) {
                return run;
            }
        }
        assert!(
            framer.buffered() <= SSE_EVENT_LIMIT,
            "framer buffers {} bytes, over its {SSE_EVENT_LIMIT}-byte limit",
            framer.buffered()
        );
    }
    let events: Vec<_> = framer.finish().collect();
    for ev in events {
        if !feed(&mut run, &mut machine, ev) {
            return run;
        }
    }
    let actions = machine.finish();
    let finished = drain(
        &mut machine,
        verdict,
        actions,
        &mut run.out,
        &mut run.decisions,
    );
    assert!(finished, "Fail from finish");
    assert!(!machine.is_holding(), "inspector holds events after finish");
    run
}

/// True when the inspector can read `data` (none, or a JSON object).
fn readable(data: &str) -> bool {
    data.is_empty() || matches!(serde_json::from_str::<Value>(data), Ok(Value::Object(_)))
}

/// True when `data` is a `content_block_start` of a `tool_use` block.
fn is_tool_use_start(data: &str) -> bool {
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(data) else {
        return false;
    };
    obj.get("type").and_then(Value::as_str) == Some("content_block_start")
        && obj
            .get("content_block")
            .and_then(|b| b.get("type"))
            .and_then(Value::as_str)
            == Some("tool_use")
}

/// `sse_inspector`: the first byte `n` (mod 16) and the next `n` bytes are
/// chunk sizes; the rest is an event stream, fed through the SSE framer
/// and the inspector in those chunks, whole, and byte by byte. Framing does
/// not depend on the chunking and gives back the input; with every call
/// allowed the inspector's output is the input byte for byte (up to a
/// framing error or the first event it cannot read, where it fails); it
/// never passes on an event it cannot read; with every call blocked no
/// `tool_use` block reaches the client; the same decisions are asked for
/// however the bytes arrive.
pub fn sse_inspector(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 16).min(rest.len());
    let (cuts, stream) = rest.split_at(n);
    let split = chunks(stream, cuts);
    let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
    let block = Verdict::Block {
        text: "blocked by the fuzz harness".into(),
    };
    for verdict in [Verdict::Allow, block] {
        let whole = run_stream(&[stream], &verdict);
        for other in [&split, &bytewise] {
            let r = run_stream(other, &verdict);
            assert_eq!(
                whole.events, r.events,
                "framing depends on the chunking ({verdict:?})"
            );
            assert_eq!(whole.framing_failed, r.framing_failed);
            assert_eq!(whole.inspect_failed, r.inspect_failed);
            assert_eq!(
                whole.out, r.out,
                "output depends on the chunking ({verdict:?})"
            );
            assert_eq!(whole.decisions, r.decisions);
        }
        let framed: Vec<u8> = whole.events.iter().flat_map(|e| e.0.clone()).collect();
        let unreadable = whole.events.iter().position(|e| !readable(&e.2));
        assert_eq!(
            whole.inspect_failed,
            unreadable.is_some(),
            "the inspector fails exactly on an event it cannot read"
        );
        if let Some(at) = unreadable {
            assert_eq!(
                at + 1,
                whole.events.len(),
                "events read past the unreadable one"
            );
        }
        let mut again = Framer::new();
        let mut released: Vec<_> = again.push(&whole.out).collect();
        released.extend(again.finish());
        for ev in &released {
            let ev = ev.as_ref().expect("the inspector's output frames");
            assert!(
                readable(&ev.data),
                "passed on an unreadable event: {:?}",
                ev.data
            );
        }
        if !whole.framing_failed && !whole.inspect_failed {
            assert_eq!(framed, stream, "framed events do not give back the input");
        } else {
            assert!(stream.starts_with(&framed));
        }
        match verdict {
            Verdict::Allow => {
                assert!(
                    framed.starts_with(&whole.out),
                    "allowed everything, yet the output is not the input"
                );
                if !whole.framing_failed && !whole.inspect_failed {
                    assert_eq!(whole.out, framed, "allowed everything, output != input");
                }
            }
            Verdict::Block { .. } => {
                for ev in released.iter().flatten() {
                    assert!(
                        !is_tool_use_start(&ev.data),
                        "a tool_use block got through with every call blocked: {:?}",
                        ev.data
                    );
                }
            }
        }
    }
}

/// Same keys, same array lengths, same non-string values; strings may
/// differ (masking changes string contents only).
fn same_shape(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(_), Value::String(_)) => true,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_shape(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_shape(v, w)))
        }
        _ => a == b,
    }
}

/// `mask_json`: the JSON masking walker on any bytes. What serde_json
/// parses, the walker accepts; its output is the input with exactly the
/// reported spans replaced by their placeholders (in order, in bounds, not
/// overlapping), parses again with the same shape, and masking it again
/// keeps every placeholder. `mask_body` never fails.
pub fn mask_json(data: &[u8]) {
    let masking = &*MASKING;
    let session = Session::new();
    let parsed = serde_json::from_slice::<Value>(data).ok();
    let result = session.mask_messages_json(masking, data);
    let (out, findings, counts) = match result {
        Ok(r) => r,
        Err(e) => {
            assert!(
                parsed.is_none(),
                "serde_json parses the input but the walker refuses it: {e}"
            );
            // Not JSON: `mask_body` masks it as text, which with nothing
            // found is the identity.
            let (body, found, _) = session.mask_body(masking, data);
            if found.is_empty() {
                assert_eq!(body, data, "nothing found, yet the body changed");
            }
            return;
        }
    };
    assert_eq!(counts.values().sum::<usize>(), findings.len());
    let mut rebuilt = Vec::with_capacity(out.len());
    let mut at = 0;
    for f in &findings {
        assert!(
            at <= f.start && f.start < f.end && f.end <= data.len(),
            "finding spans out of order or bounds: {findings:?}"
        );
        rebuilt.extend_from_slice(&data[at..f.start]);
        rebuilt.extend_from_slice(f.placeholder.as_bytes());
        at = f.end;
    }
    rebuilt.extend_from_slice(&data[at..]);
    assert_eq!(
        rebuilt, out,
        "the output is not the input with the findings replaced"
    );
    if let Some(before) = parsed {
        let after: Value = serde_json::from_slice(&out).expect("masked output parses");
        assert!(
            same_shape(&before, &after),
            "masking changed the structure: {before} -> {after}"
        );
    }
    // Masking again never touches a placeholder (they are reserved). It
    // may find more: where detections overlapped, the losing one's
    // uncovered rest is scanned afresh (`.bepb@x.io` after a token that
    // swallowed the start of an email), so exact idempotence does not hold.
    let (twice, more, _) = session
        .mask_messages_json(masking, &out)
        .expect("the walker accepts its own output");
    for f in &findings {
        let p = f.placeholder.as_bytes();
        let count = |b: &[u8]| b.windows(p.len()).filter(|w| *w == p).count();
        assert!(
            count(&twice) >= count(&out),
            "masking again broke placeholder {} in {:?}",
            f.placeholder,
            String::from_utf8_lossy(&out)
        );
    }
    if more.is_empty() {
        assert_eq!(twice, out);
    }
}

/// A runtime for the harnesses that drive async readers.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
});

/// `control`: the control socket's line reader splits any byte stream
/// exactly as the protocol says (lines end at `\n`, one `\r` before it is
/// dropped, a line over [`MAX_LINE_BYTES`] or not UTF-8 is an error and
/// ends the reading), and every line it returns goes through
/// [`control_line`]. An input that starts with `0xff` and two bytes `n`
/// is read after `2n` bytes of `a`, so short fuzz inputs reach the limit.
pub fn control(data: &[u8]) {
    let input: Vec<u8> = match data {
        [0xff, hi, lo, rest @ ..] => {
            let n = 2 * usize::from(u16::from_be_bytes([*hi, *lo]));
            let mut v = vec![b'a'; n];
            v.extend_from_slice(rest);
            v
        }
        _ => data.to_vec(),
    };
    // The oracle: the same split, written out plainly.
    let mut expected: Vec<Result<Vec<u8>, &'static str>> = Vec::new();
    let mut segments: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    if segments.last().is_some_and(|s| s.is_empty()) {
        segments.pop();
    }
    for seg in segments {
        if seg.len() > MAX_LINE_BYTES {
            expected.push(Err("too long"));
            break;
        }
        let line = seg.strip_suffix(b"\r").unwrap_or(seg);
        if std::str::from_utf8(line).is_err() {
            expected.push(Err("not UTF-8"));
            break;
        }
        expected.push(Ok(line.to_vec()));
    }
    let got: Vec<Result<Vec<u8>, &'static str>> = RUNTIME.block_on(async {
        let mut reader = LineReader::new(&input[..]);
        let mut got = Vec::new();
        loop {
            match reader.next_line().await {
                Ok(Some(line)) => got.push(Ok(line.into_bytes())),
                Ok(None) => break,
                Err(LineError::TooLong) => {
                    got.push(Err("too long"));
                    break;
                }
                Err(LineError::NotUtf8) => {
                    got.push(Err("not UTF-8"));
                    break;
                }
                Err(LineError::Io(e)) => panic!("reading a slice failed: {e}"),
            }
        }
        got
    });
    assert_eq!(got.len(), expected.len(), "line count differs");
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e, "line differs");
    }
    for line in got.into_iter().flatten() {
        assert!(line.len() <= MAX_LINE_BYTES);
        control_line(&line);
    }
}

/// One control line (UTF-8, lossy) read as a client [`Command`] or a
/// [`ServerLine`] either fails cleanly or parses; what parses serialises
/// and parses back to the same value.
pub fn control_line(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    if let Ok(cmd) = serde_json::from_str::<Command>(&line) {
        let text = serde_json::to_string(&cmd).expect("a command serialises");
        assert!(!text.contains('\n'), "a command line contains a newline");
        let back: Command = serde_json::from_str(&text).expect("a command re-parses");
        assert_eq!(
            serde_json::to_value(&cmd).expect("serialises"),
            serde_json::to_value(&back).expect("serialises"),
            "command changed in a round trip: {line:?}"
        );
    }
    if let Ok(sl) = serde_json::from_str::<ServerLine>(&line) {
        let text = serde_json::to_string(&sl).expect("a server line serialises");
        assert!(!text.contains('\n'), "a server line contains a newline");
        let back: ServerLine = serde_json::from_str(&text).expect("a server line re-parses");
        assert_eq!(
            serde_json::to_value(&sl).expect("serialises"),
            serde_json::to_value(&back).expect("serialises"),
            "server line changed in a round trip: {line:?}"
        );
    }
}

/// The most plain output the `decoders` harness allows a decoder (its
/// limit is drawn below this from the input).
pub const DECODER_LIMIT_MAX: usize = 1 << 20;

fn encode(encoding: &str, plain: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match encoding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(plain).expect("gzip into memory");
            e.finish().expect("gzip into memory")
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(plain).expect("zlib into memory");
            e.finish().expect("zlib into memory")
        }
        "br" => {
            let mut w = brotli::CompressorWriter::new(Vec::new(), 4096, 1, 18);
            w.write_all(plain).expect("brotli into memory");
            w.into_inner()
        }
        "zstd" => zstd::encode_all(plain, 1).expect("zstd into memory"),
        _ => plain.to_vec(),
    }
}

/// Decodes `body` fed in chunks of the given sizes (cycled); the plain
/// bytes, or the error's kind.
fn decode_chunked(
    encoding: &str,
    body: &[u8],
    limit: usize,
    sizes: &[u8],
) -> Result<Vec<u8>, &'static str> {
    use crate::proxy::encoding::{Decoder, Error, PIECE};
    let kind = |e: Error| match e {
        Error::TooLarge { .. } => "too large",
        Error::Corrupt(..) => "corrupt",
        Error::Unsupported(_) => "unsupported",
    };
    let mut d = Decoder::with_limit(Some(encoding), limit).map_err(kind)?;
    let mut out = Vec::new();
    let mut rest = body;
    let mut i = 0;
    let take = |d: &mut Decoder, out: &mut Vec<u8>| -> Result<(), &'static str> {
        while let Some(piece) = d.next_piece().map_err(kind)? {
            assert!(
                d.is_identity() || piece.len() <= PIECE,
                "a {encoding} piece of {} bytes",
                piece.len()
            );
            out.extend_from_slice(&piece);
            assert!(
                out.len() <= limit,
                "{} plain bytes past the {limit}-byte limit",
                out.len()
            );
        }
        Ok(())
    };
    while !rest.is_empty() {
        let n = sizes
            .get(i % sizes.len().max(1))
            .map_or(rest.len(), |&s| usize::from(s).max(1))
            .min(rest.len());
        i += 1;
        let (chunk, tail) = rest.split_at(n);
        d.feed(bytes::Bytes::copy_from_slice(chunk));
        take(&mut d, &mut out)?;
        rest = tail;
    }
    d.end();
    take(&mut d, &mut out)?;
    Ok(out)
}

/// `decoders`: the content decoders (gzip, deflate, br, zstd, identity)
/// under an output limit. Byte 0 picks the encoding, bytes 1-2 the limit,
/// byte 3 the mode, the next 8 the chunk sizes; the rest is the payload.
/// - Round trip (mode even): the payload compressed by the real encoder
///   decodes to exactly the payload when it fits the limit, and fails as
///   too large when it does not, however it is chunked.
/// - Raw (mode odd): the payload itself is decoded; the result is the
///   same fed whole and fed in chunks (the same bytes, or an error both
///   ways), no piece is larger than `PIECE`, and no more than the limit
///   ever comes out.
pub fn decoders(data: &[u8]) {
    const ENCODINGS: [&str; 5] = ["identity", "gzip", "deflate", "br", "zstd"];
    let [e, hi, lo, mode, rest @ ..] = data else {
        return;
    };
    let encoding = ENCODINGS[usize::from(*e) % ENCODINGS.len()];
    let limit = (usize::from(u16::from_be_bytes([*hi, *lo])) * 16).min(DECODER_LIMIT_MAX);
    let (sizes, payload) = rest.split_at(rest.len().min(8));
    if mode % 2 == 0 {
        let body = encode(encoding, payload);
        let got = decode_chunked(encoding, &body, limit, sizes);
        if payload.len() <= limit {
            assert_eq!(
                got.as_deref(),
                Ok(payload),
                "{encoding} round trip under {limit}"
            );
        } else {
            assert_eq!(
                got,
                Err("too large"),
                "{encoding}: {} bytes past {limit}",
                payload.len()
            );
        }
    } else {
        let whole = decode_chunked(encoding, payload, limit, &[]);
        let chunked = decode_chunked(encoding, payload, limit, sizes);
        match (&whole, &chunked) {
            // A stream both corrupt and too large may be called either,
            // depending on where the input was cut (finding: deflate).
            (Err(_), Err(_)) => {}
            _ => assert_eq!(
                whole, chunked,
                "{encoding}: whole and chunked decoding differ"
            ),
        }
        if let Ok(plain) = &whole {
            let body = bytes::Bytes::copy_from_slice(payload);
            let all = crate::proxy::encoding::decode_bytes(Some(encoding), body, limit);
            assert_eq!(
                all.ok().as_deref(),
                Some(&plain[..]),
                "decode_bytes differs"
            );
        }
    }
}

/// `front_door`: the CONNECT head parser. Any head either is refused or
/// gives a host and a port from 1 to 65535; the host is lowercase and not
/// empty, and rendered back as an authority it parses to the same host
/// and port. The input is tried as a whole head, and (its first line) as
/// the target of a well-formed CONNECT head.
pub fn front_door(data: &[u8]) {
    use crate::proxy::head::{parse_authority, parse_connect, MAX_AUTHORITY_BYTES};
    let check = |host: &str, port: u16| {
        assert!(port != 0, "port 0 accepted");
        assert!(!host.is_empty(), "empty host accepted");
        assert_eq!(host, host.to_ascii_lowercase(), "host not lowercase");
        assert!(
            !host.contains(['/', '@', ' ', '\r', '\n']),
            "odd host {host:?}"
        );
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        assert!(authority.len() <= MAX_AUTHORITY_BYTES + 2);
        assert_eq!(
            parse_authority(&authority),
            Ok((host.to_string(), port)),
            "{authority} does not parse back"
        );
    };
    if let Ok(head) = parse_connect(data) {
        check(&head.host, head.port);
    }
    let target = String::from_utf8_lossy(data.split(|&b| b == b'\n').next().unwrap_or_default());
    let head = format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic eDp5\r\n\r\n"
    );
    match parse_connect(head.as_bytes()) {
        Ok(h) => {
            check(&h.host, h.port);
            assert_eq!(h.proxy_authorization.as_deref(), Some(&b"Basic eDp5"[..]));
            assert_eq!(parse_authority(target.as_ref()), Ok((h.host, h.port)));
        }
        Err(_) => {
            if let Ok((host, port)) = parse_authority(target.as_ref()) {
                // The authority alone parses, so only the head around it
                // (a space or control byte in the target) can refuse it.
                assert!(
                    target.contains([' ', '\r', '\t', '\0'])
                        || target.bytes().any(|b| b < 0x20 || b == 0x7f),
                    "{target:?} parses ({host}, {port}) but not in a head"
                );
            }
        }
    }
}
