//! The inspector's decisions over a non-streaming Messages reply (SPEC
//! section 2: when a stream fails, Claude Code falls back to one, so it must
//! be rewritten the same way).

use serde_json::{Map, Value};

use super::{str_at, Error, NoFilter, TextFilter, Verdict};

/// Applies the same decisions to a non-streaming Messages reply: each
/// `tool_use` block of `content` is decided (`decide(name, id, input)`),
/// blocked ones become `{"type":"text","text":...}`, and `stop_reason`
/// `tool_use` becomes `end_turn` when no tool call remains. A body that is
/// not a message (an error, not JSON) or needs no change is returned
/// unchanged, byte for byte; a changed one is re-serialized (object keys in
/// sorted order).
///
/// The decisions are synchronous; to await reviews, run it once with a
/// closure that collects the calls and allows them, await the verdicts, then
/// run it again answering from them.
pub fn inspect_json(
    body: &[u8],
    decide: impl FnMut(&str, &str, &Value) -> Verdict,
) -> Result<Vec<u8>, Error> {
    inspect_json_with(body, &mut NoFilter, decide)
}

/// [`inspect_json`] with a [`TextFilter`] over text blocks (`text` then
/// `flush`, with the block's position as index) and tool inputs.
pub fn inspect_json_with(
    body: &[u8],
    filter: &mut impl TextFilter,
    mut decide: impl FnMut(&str, &str, &Value) -> Verdict,
) -> Result<Vec<u8>, Error> {
    let Ok(Value::Object(mut message)) = serde_json::from_slice::<Value>(body) else {
        return Ok(body.to_vec());
    };
    if str_at(&message, "type") != Some("message") {
        return Ok(body.to_vec());
    }
    let Some(Value::Array(content)) = message.get_mut("content") else {
        return Ok(body.to_vec());
    };
    let (mut changed, mut allowed, mut blocked) = (false, 0usize, 0usize);
    for (position, block) in content.iter_mut().enumerate() {
        let Value::Object(fields) = block else {
            continue;
        };
        let index = u64::try_from(position).unwrap_or(u64::MAX);
        match str_at(fields, "type") {
            Some("text") => {
                if let Some(Value::String(text)) = fields.get_mut("text") {
                    let new = filter.text(index, text);
                    let tail = filter.flush(index);
                    if new.is_some() || tail.is_some() {
                        let mut new = new.unwrap_or_else(|| text.clone());
                        new.push_str(tail.as_deref().unwrap_or_default());
                        *text = new;
                        changed = true;
                    }
                }
            }
            Some("tool_use") => {
                let name = str_at(fields, "name").unwrap_or_default().to_owned();
                let id = str_at(fields, "id").unwrap_or_default().to_owned();
                let mut input = fields
                    .remove("input")
                    .unwrap_or_else(|| Value::Object(Map::new()));
                let filtered = filter.tool_input(&name, &mut input);
                match decide(&name, &id, &input) {
                    Verdict::Allow => {
                        allowed += 1;
                        changed |= filtered;
                        fields.insert("input".to_owned(), input);
                    }
                    Verdict::Block { text } => {
                        blocked += 1;
                        changed = true;
                        let mut replacement = Map::new();
                        replacement.insert("type".to_owned(), Value::from("text"));
                        replacement.insert("text".to_owned(), Value::from(text));
                        *fields = replacement;
                    }
                }
            }
            _ => {}
        }
    }
    if blocked > 0 && allowed == 0 && str_at(&message, "stop_reason") == Some("tool_use") {
        message.insert("stop_reason".to_owned(), Value::from("end_turn"));
        changed = true;
    }
    if !changed {
        return Ok(body.to_vec());
    }
    Ok(serde_json::to_vec(&message)?)
}
