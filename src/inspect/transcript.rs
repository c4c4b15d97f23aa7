//! What a Messages answer said, assembled for the record: model, usage,
//! stop reason, the text and the tool calls, never the SSE framing. Fed
//! the upstream's events (masked content, before any rehydration).

use serde::Serialize;
use serde_json::{Map, Value};

/// Texts longer than this are cut in the record (the agent still gets all).
const MAX_TEXT: usize = 1 << 20;

#[derive(Debug, Default, Clone, Serialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub input: Value,
}

/// The assembled answer.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Transcript {
    pub model: Option<String>,
    pub message_id: Option<String>,
    pub stop_reason: Option<String>,
    /// Merged from `message_start` and `message_delta` (the latter wins).
    pub usage: Map<String, Value>,
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    /// An `error` event inside the stream.
    pub error: Option<Value>,
    #[serde(skip)]
    open: Option<Open>,
}

#[derive(Debug, Clone)]
enum Open {
    Text,
    Tool { call: ToolCall, json: String },
    Other,
}

impl Transcript {
    /// One SSE event of a streamed answer (name, data JSON text).
    pub fn feed(&mut self, name: Option<&str>, data: &str) {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        let kind = name
            .map(str::to_string)
            .or_else(|| v["type"].as_str().map(str::to_string))
            .unwrap_or_default();
        match kind.as_str() {
            "message_start" => {
                let m = &v["message"];
                self.model = m["model"].as_str().map(str::to_string);
                self.message_id = m["id"].as_str().map(str::to_string);
                self.merge_usage(&m["usage"]);
            }
            "content_block_start" => {
                let b = &v["content_block"];
                self.open = Some(match b["type"].as_str() {
                    Some("text") => {
                        self.push_text(b["text"].as_str().unwrap_or(""));
                        Open::Text
                    }
                    Some("tool_use") | Some("server_tool_use") => Open::Tool {
                        call: ToolCall {
                            id: b["id"].as_str().unwrap_or("").to_string(),
                            name: b["name"].as_str().unwrap_or("").to_string(),
                            input: b["input"].clone(),
                        },
                        json: String::new(),
                    },
                    _ => Open::Other,
                });
            }
            "content_block_delta" => {
                let d = &v["delta"];
                match (&mut self.open, d["type"].as_str()) {
                    (Some(Open::Text), Some("text_delta")) => {
                        let t = d["text"].as_str().unwrap_or("").to_string();
                        self.push_text(&t);
                    }
                    (Some(Open::Tool { json, .. }), Some("input_json_delta")) => {
                        json.push_str(d["partial_json"].as_str().unwrap_or(""));
                    }
                    _ => {}
                }
            }
            "content_block_stop" => self.close_block(),
            "message_delta" => {
                if let Some(r) = v["delta"]["stop_reason"].as_str() {
                    self.stop_reason = Some(r.to_string());
                }
                self.merge_usage(&v["usage"]);
            }
            "error" => self.error = Some(v["error"].clone()),
            _ => {}
        }
    }

    /// A non-streaming answer (one JSON message).
    pub fn from_message(body: &[u8]) -> Self {
        let mut t = Self::default();
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return t;
        };
        if v["type"] == "error" {
            t.error = Some(v["error"].clone());
            return t;
        }
        t.model = v["model"].as_str().map(str::to_string);
        t.message_id = v["id"].as_str().map(str::to_string);
        t.stop_reason = v["stop_reason"].as_str().map(str::to_string);
        t.merge_usage(&v["usage"]);
        for b in v["content"].as_array().into_iter().flatten() {
            match b["type"].as_str() {
                Some("text") => t.push_text(b["text"].as_str().unwrap_or("")),
                Some("tool_use") | Some("server_tool_use") => t.tool_calls.push(ToolCall {
                    id: b["id"].as_str().unwrap_or("").to_string(),
                    name: b["name"].as_str().unwrap_or("").to_string(),
                    input: b["input"].clone(),
                }),
                _ => {}
            }
        }
        t
    }

    /// The stream ended: a block left open is kept as far as it came.
    pub fn finish(&mut self) {
        self.close_block();
    }

    fn close_block(&mut self) {
        if let Some(Open::Tool { mut call, json }) = self.open.take() {
            if !json.is_empty() {
                call.input = serde_json::from_str(&json).unwrap_or(Value::String(json));
            }
            self.tool_calls.push(call);
        }
    }

    fn push_text(&mut self, t: &str) {
        if self.text.len() < MAX_TEXT {
            if !self.text.is_empty() && matches!(self.open, None | Some(Open::Other)) {
                self.text.push('\n');
            }
            self.text.push_str(t);
        }
    }

    fn merge_usage(&mut self, u: &Value) {
        if let Some(o) = u.as_object() {
            for (k, v) in o {
                if !v.is_null() {
                    self.usage.insert(k.clone(), v.clone());
                }
            }
        }
    }

    /// What search indexes: the text and each tool call's command, file or input.
    pub fn search_text(&self) -> String {
        let mut s = self.text.clone();
        for c in &self.tool_calls {
            s.push('\n');
            s.push_str(&c.name);
            s.push(' ');
            s.push_str(&super::stream::summarize(&c.name, &c.input));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_assembled_without_its_framing() {
        let mut t = Transcript::default();
        let events = [
            (
                "message_start",
                r#"{"type":"message_start","message":{"id":"msg_1","model":"claude-x","usage":{"input_tokens":12,"output_tokens":1}}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"I'll drop "}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"it."}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"Bash","input":{}}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"command\":\"psql -c 'DROP"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" TABLE users'\"}"}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":1}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":40}}"#,
            ),
            ("ping", r#"{"type":"ping"}"#),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ];
        for (name, data) in events {
            t.feed(Some(name), data);
        }
        t.finish();
        assert_eq!(t.model.as_deref(), Some("claude-x"));
        assert_eq!(t.stop_reason.as_deref(), Some("tool_use"));
        assert_eq!(t.usage["input_tokens"], 12);
        assert_eq!(t.usage["output_tokens"], 40);
        assert_eq!(t.text, "I'll drop it.");
        assert_eq!(t.tool_calls.len(), 1);
        assert_eq!(
            t.tool_calls[0].input["command"],
            "psql -c 'DROP TABLE users'"
        );
        assert!(t.search_text().contains("Bash psql -c 'DROP TABLE users'"));
    }

    #[test]
    fn a_cut_stream_keeps_what_came_and_a_json_message_is_read() {
        let mut t = Transcript::default();
        t.feed(Some("content_block_start"), r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"Bash","input":{}}}"#);
        t.feed(Some("content_block_delta"), r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"comm"}}"#);
        t.feed(
            Some("error"),
            r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#,
        );
        t.finish();
        assert_eq!(t.tool_calls[0].input, Value::String("{\"comm".into()));
        assert_eq!(t.error.as_ref().unwrap()["type"], "overloaded_error");
        t.feed(None, "not json");

        let m = Transcript::from_message(
            br#"{"id":"msg","model":"m","stop_reason":"end_turn","usage":{"output_tokens":3},
                "content":[{"type":"text","text":"a"},{"type":"text","text":"b"},
                {"type":"tool_use","id":"t","name":"Write","input":{"file_path":"/x"}}]}"#,
        );
        assert_eq!(m.text, "a\nb");
        assert_eq!(m.tool_calls[0].name, "Write");
        assert_eq!(m.usage["output_tokens"], 3);
    }
}
