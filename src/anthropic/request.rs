//! What a Messages request (`POST /v1/messages`) says, for the record: the
//! model, whether it streams, how many turns it carries, and the newest
//! user turn as text (what search finds as "the prompt").

use serde_json::Value;

/// The facts of one Messages request body.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub model: Value,
    pub stream: Value,
    /// Number of entries in `messages`.
    pub messages: usize,
    /// The newest user turn's text blocks and tool results, one per line.
    pub prompt: Option<String>,
}

/// `None` when the body is not a JSON object.
pub fn summarize(body: &[u8]) -> Option<Summary> {
    let v: Value = serde_json::from_slice(body).ok()?;
    if !v.is_object() {
        return None;
    }
    Some(Summary {
        model: v["model"].clone(),
        stream: v["stream"].clone(),
        messages: v["messages"].as_array().map_or(0, Vec::len),
        prompt: prompt_of(&v),
    })
}

/// The newest user turn of a Messages request, as text.
pub fn prompt_text(body: &[u8]) -> Option<String> {
    prompt_of(&serde_json::from_slice(body).ok()?)
}

fn prompt_of(v: &Value) -> Option<String> {
    let last = v["messages"]
        .as_array()?
        .iter()
        .rev()
        .find(|m| m["role"] == "user")?;
    let mut out = String::new();
    let mut push = |s: &str| {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(s);
    };
    match &last["content"] {
        Value::String(s) => push(s),
        Value::Array(blocks) => {
            for b in blocks {
                match b["type"].as_str() {
                    Some("text") => push(b["text"].as_str().unwrap_or("")),
                    Some("tool_result") => match &b["content"] {
                        Value::String(s) => push(s),
                        Value::Array(parts) => {
                            for p in parts {
                                if let Some(t) = p["text"].as_str() {
                                    push(t);
                                }
                            }
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        _ => {}
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_is_the_newest_user_turn() {
        let body = br#"{"messages":[
            {"role":"user","content":"old question"},
            {"role":"assistant","content":[{"type":"text","text":"x"}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"rm: done"},
                                      {"type":"text","text":"now DROP TABLE users"}]}]}"#;
        assert_eq!(
            prompt_text(body).as_deref(),
            Some("rm: done\nnow DROP TABLE users")
        );
        assert_eq!(prompt_text(b"{}"), None);
        assert_eq!(prompt_text(b"not json"), None);
    }

    #[test]
    fn a_summary_has_model_stream_turns_and_prompt() {
        let s = summarize(
            br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
        assert_eq!(s.model, "m");
        assert_eq!(s.stream, true);
        assert_eq!(s.messages, 1);
        assert_eq!(s.prompt.as_deref(), Some("hi"));
        assert_eq!(summarize(b"[1]"), None);
        assert_eq!(summarize(b"{").map(|s| s.messages), None);
    }
}
