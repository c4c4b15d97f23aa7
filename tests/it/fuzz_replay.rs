//! Fuzzing on stable: every saved input under `tests/fuzz_regressions/`
//! replayed through its harness (`hoopctl::fuzzing`), and the JSON masking
//! walker checked against serde_json on random JSON (a differential
//! property test).

use std::path::{Path, PathBuf};

use hoopctl::fuzzing;
use hoopctl::policy::mask::{Masking, Session};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// A harness: panics when an invariant breaks.
type Harness = fn(&[u8]);

/// Every fuzz target with saved inputs, and its harness.
const TARGETS: &[(&str, Harness)] = &[
    ("shell", fuzzing::shell),
    ("sql", fuzzing::sql),
    ("sse_inspector", fuzzing::sse_inspector),
    ("mask_json", fuzzing::mask_json),
    ("control", fuzzing::control),
    ("decoders", fuzzing::decoders),
    ("front_door", fuzzing::front_door),
];

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions")
}

/// Runs every file of `dir` through `harness`; returns the failures.
fn replay_dir(dir: &Path, harness: Harness) -> (usize, Vec<String>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut failed = Vec::new();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        if let Err(e) = std::panic::catch_unwind(|| harness(&data)) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{}: {msg}", f.display()));
        }
    }
    (files.len(), failed)
}

#[test]
fn regression_inputs_replay() {
    let mut failed = Vec::new();
    for (target, harness) in TARGETS {
        let (n, f) = replay_dir(&regressions().join(target), *harness);
        assert!(n > 0, "no saved inputs for fuzz target `{target}`");
        failed.extend(f);
    }
    assert!(
        failed.is_empty(),
        "fuzz regression inputs fail their harness:\n{}",
        failed.join("\n")
    );
}

#[test]
fn replay_catches_a_broken_invariant() {
    // The replay must not pass vacuously: a harness that rejects an input
    // fails it, and the failure names the file.
    fn picky(data: &[u8]) {
        assert!(!data.is_empty(), "empty input");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok"), b"x").unwrap();
    std::fs::write(dir.path().join("bad"), b"").unwrap();
    let (n, failed) = replay_dir(dir.path(), picky);
    assert_eq!(n, 2);
    assert_eq!(failed.len(), 1);
    assert!(failed[0].contains("bad") && failed[0].contains("empty input"));
}

// ---- the JSON walker against serde_json ----

/// Strings that are sometimes sensitive: emails, cards, keys, phone
/// numbers, mixed with text, quotes, control characters and non-ASCII.
fn text() -> impl Strategy<Value = String> + Clone {
    let piece = prop_oneof![
        4 => "[a-zA-Z0-9 .,:;!?-]{0,12}",
        1 => "[\"\\\\/\\n\\t\\u{0}-\\u{1f}]{1,3}",
        1 => "[éü€中😀\\u{2028}]{1,3}",
        2 => "[a-z]{1,8}(\\.[a-z]{1,5})?@[a-z]{2,8}\\.(com|org|io)",
        1 => Just("4111 1111 1111 1111".to_string()),
        1 => Just("5500-0000-0000-0004".to_string()),
        1 => Just("AKIAIOSFODNN7EXAMPLE".to_string()),
        1 => "sk-ant-api03-[A-Za-z0-9_-]{40}",
        1 => "ghp_[A-Za-z0-9]{36}",
        1 => Just("+1 415 555 0100".to_string()),
        1 => Just("123-45-6789".to_string()),
        1 => Just("GB82 WEST 1234 5698 7654 32".to_string()),
    ];
    prop::collection::vec(piece, 0..5).prop_map(|v| v.concat())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Serialises `v` with every non-ASCII character and some ASCII ones as
/// `\uXXXX` escapes and `/` as `\/` (both valid JSON serde_json never
/// writes), keys included.
fn escaped(v: &Value) -> String {
    fn s(out: &mut String, text: &str) {
        out.push('"');
        for (i, c) in text.chars().enumerate() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '/' => out.push_str("\\/"),
                '\n' => out.push_str("\\n"),
                c if (c as u32) < 0x20 || !c.is_ascii() || i % 7 == 3 => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    fn walk(out: &mut String, v: &Value) {
        match v {
            Value::String(t) => s(out, t),
            Value::Array(a) => {
                out.push_str("[ ");
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" ,\n");
                    }
                    walk(out, x);
                }
                out.push(']');
            }
            Value::Object(m) => {
                out.push('{');
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    s(out, k);
                    out.push_str(" :\t");
                    walk(out, x);
                }
                out.push_str("\r\n}");
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    walk(&mut out, v);
    out
}

/// The oracle: every string value (never a key) masked as plain text.
fn mask_values(session: &Session, masking: &Masking, v: &Value) -> Value {
    match v {
        Value::String(t) => Value::String(session.mask_text(masking, t).text.into_owned()),
        Value::Array(a) => {
            Value::Array(a.iter().map(|x| mask_values(session, masking, x)).collect())
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), mask_values(session, masking, x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Runs the walker on `body` (JSON text) and compares with the oracle
/// applied to serde_json's reading of it. Not a Messages request, so every string value is text.
fn check_differential(body: &str) -> Result<(), TestCaseError> {
    let masking = Masking::builtin();
    let session = Session::new();
    let (out, findings, _) = session
        .mask_messages_json(&masking, body.as_bytes())
        .map_err(|e| TestCaseError::fail(format!("walker refused {body}: {e}")))?;
    let got: Value = serde_json::from_slice(&out)
        .map_err(|e| TestCaseError::fail(format!("walker output does not parse: {e}")))?;
    // The same session: a value the walker masked maps to the same
    // placeholder, one it missed gets a new one (and the test fails).
    // serde_json's own reading of the body, so float rounding agrees.
    let parsed: Value = serde_json::from_str(body).unwrap();
    let want = mask_values(&session, &masking, &parsed);
    prop_assert_eq!(&got, &want, "body: {}", body);
    if findings.is_empty() {
        prop_assert_eq!(out.as_slice(), body.as_bytes(), "no findings, yet changed");
    }
    Ok(())
}

fn not_messages(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.remove("messages");
    }
    v
}

/// A content block of the shapes SPEC section 3 lists.
fn block() -> impl Strategy<Value = Value> {
    let text_block = || text().prop_map(|t| serde_json::json!({"type": "text", "text": t}));
    prop_oneof![
        3 => text_block(),
        1 => (text(), text(), json_value()).prop_map(|(id, name, input)| {
            serde_json::json!({"type": "tool_use", "id": id, "name": name, "input": input})
        }),
        1 => (text(), prop_oneof![
                text().prop_map(Value::String),
                prop::collection::vec(text_block(), 0..3).prop_map(Value::Array),
            ], any::<bool>())
            .prop_map(|(id, content, is_error)| serde_json::json!({
                "type": "tool_result", "tool_use_id": id, "content": content, "is_error": is_error
            })),
        1 => (text(), text()).prop_map(|(t, sig)| {
            serde_json::json!({"type": "thinking", "thinking": t, "signature": sig})
        }),
    ]
}

/// A Messages request: system text, messages with string or block
/// content, and top-level fields that are not conversation text.
fn messages_request() -> impl Strategy<Value = Value> {
    let content = prop_oneof![
        text().prop_map(Value::String),
        prop::collection::vec(block(), 0..4).prop_map(Value::Array),
    ];
    let message = (prop_oneof![Just("user"), Just("assistant")], content)
        .prop_map(|(role, content)| serde_json::json!({"role": role, "content": content}));
    (
        text(),
        prop::collection::vec(text(), 0..3),
        prop::collection::vec(message, 0..4),
        text(),
    )
        .prop_map(|(model, system, messages, user)| {
            let system: Vec<Value> = system
                .into_iter()
                .map(|t| serde_json::json!({"type": "text", "text": t}))
                .collect();
            serde_json::json!({
                "model": model, "max_tokens": 1024, "system": system,
                "metadata": {"user_id": user}, "messages": messages, "stream": true
            })
        })
}

/// The oracle for a Messages request, from SPEC section 3: conversation
/// text is masked (system and `text` blocks, string content, tool inputs,
/// tool results); ids, names, thinking, signatures, the model and the
/// metadata are not.
fn mask_request(session: &Session, masking: &Masking, v: &Value) -> Value {
    let text = |t: &Value| mask_values(session, masking, t);
    let mut out = v.clone();
    for b in out["system"].as_array_mut().unwrap() {
        b["text"] = text(&b["text"]);
    }
    for m in out["messages"].as_array_mut().unwrap() {
        let content = &mut m["content"];
        if content.is_string() {
            *content = text(content);
            continue;
        }
        for b in content.as_array_mut().unwrap() {
            match b["type"].as_str().unwrap() {
                "text" => b["text"] = text(&b["text"]),
                "tool_use" => b["input"] = text(&b["input"]),
                "tool_result" => b["content"] = text(&b["content"]),
                _ => {}
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn walker_masks_exactly_what_the_detectors_flag(v in json_value().prop_map(not_messages)) {
        check_differential(&serde_json::to_string(&v).unwrap())?;
        check_differential(&serde_json::to_string_pretty(&v).unwrap())?;
        check_differential(&escaped(&v))?;
    }

    #[test]
    fn walker_masks_exactly_the_conversation_text(v in messages_request()) {
        for body in [serde_json::to_string(&v).unwrap(), escaped(&v)] {
            let masking = Masking::builtin();
            let session = Session::new();
            let (out, _, _) = session.mask_messages_json(&masking, body.as_bytes()).unwrap();
            let got: Value = serde_json::from_slice(&out).unwrap();
            let parsed: Value = serde_json::from_str(&body).unwrap();
            prop_assert_eq!(&got, &mask_request(&session, &masking, &parsed), "body: {}", body);
        }
    }

    #[test]
    fn walker_harness_holds_on_random_json(v in json_value()) {
        fuzzing::mask_json(serde_json::to_string(&v).unwrap().as_bytes());
        fuzzing::mask_json(escaped(&v).as_bytes());
    }
}

#[test]
fn escaped_serialisation_is_valid_json() {
    let v = serde_json::json!({"a/é": ["x\"y\\z/😀\u{1}", 1, null], "k": {"": true}});
    let text = escaped(&v);
    assert!(text.contains("\\/") && text.contains("\\u00e9") && text.contains("\\ud83d"));
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
}
