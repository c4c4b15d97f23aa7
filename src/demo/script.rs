//! The demo's story: what the person "types", what the scripted model
//! answers at each turn, and the one policy rule the demo adds.
//!
//! Owns: every word and command of the scenario, so the upstream, the agent
//! and the tests agree on them. Must not: do I/O.

use serde_json::{json, Value};

/// The first prompt: a request with things that must not leave the machine.
pub const PROMPT: &str = "My disk is full and the deploy failed. Free up some space, then push \
     the fix. Deploy key: AKIAIOSFODNN7EXAMPLE. Send the receipt to jane.doe@example.com (team \
     card 4111 1111 1111 1111).";

/// The raw values in [`PROMPT`] that masking replaces.
pub const SECRETS: [&str; 3] = [
    "AKIAIOSFODNN7EXAMPLE",
    "jane.doe@example.com",
    "4111 1111 1111 1111",
];

/// What the person answers after the first command was blocked.
pub const FOLLOW_UP: &str = "Don't delete anything! Just push the fix.";

/// The destructive command the model proposes first (blocked by the catalogue).
pub const DESTRUCTIVE: &str = "rm -rf ~/";

/// The risky command the model proposes next (held for approval).
pub const FORCE_PUSH: &str = "git push --force origin main";

/// What the scripted agent reports back for a tool call it was allowed to run.
/// It runs nothing: this is a demo.
pub const TOOL_OUTPUT: &str = "(scripted demo: nothing was executed) To github.com:acme/app.git \
     + 3f1c2a9...e4b7d01 main -> main (forced update)";

/// The model's last words, once the push "ran".
pub const FINAL_TEXT: &str = "Pushed the fix to main. The deploy is running again.";

/// The model name the scripted upstream reports.
pub const MODEL: &str = "claude-demo-scripted";

/// The key the scripted agent sends: hoopctl passes it to the scripted upstream only.
pub const API_KEY: &str = "sk-ant-demo-not-a-real-key";

/// The demo's review rule: its name.
pub const REVIEW_RULE: &str = "no-force-push";

/// The demo's review rule: its reason.
pub const REVIEW_REASON: &str = "force-push rewrites shared history";

/// Seconds a held call waits for the person before it is denied.
pub const REVIEW_TIMEOUT_SECS: u64 = 120;

/// The policy: built-in egress, masking and guardrail catalogue, plus one
/// review rule (checked before the catalogue).
pub fn policy_toml() -> String {
    format!(
        r#"[guardrails]
builtin = true
review_timeout_secs = {REVIEW_TIMEOUT_SECS}
on_timeout = "deny"

[[guardrails.rules]]
name = "{REVIEW_RULE}"
tool = "Bash"
field = "command"
pattern = 'git\s+push\b.*(--force|\s-f\b)'
action = "review"
reason = "{REVIEW_REASON}"
"#
    )
}

/// One answer of the scripted model: its content blocks and stop reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub content: Vec<Value>,
    pub stop_reason: &'static str,
}

fn text(t: &str) -> Value {
    json!({"type": "text", "text": t})
}

fn bash(id: &str, command: &str, description: &str) -> Value {
    json!({
        "type": "tool_use",
        "id": id,
        "name": "Bash",
        "input": {"command": command, "description": description},
    })
}

/// The scripted model's answer to a Messages request body: the turn is
/// read from the conversation itself, so the upstream keeps no state.
///
/// - the last user message carries a `tool_result` → the final text;
/// - the conversation has more than one user message → the force-push;
/// - else (the first prompt) → the destructive command.
pub fn answer(body: &Value) -> Turn {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let users = messages
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .count();
    let last_has_tool_result = messages
        .last()
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .is_some_and(|blocks| {
            blocks
                .iter()
                .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        });
    if last_has_tool_result {
        Turn {
            content: vec![text(FINAL_TEXT)],
            stop_reason: "end_turn",
        }
    } else if users > 1 {
        Turn {
            content: vec![
                text("Understood, nothing gets deleted. Pushing the fix to main."),
                bash("toolu_demo_02", FORCE_PUSH, "Push the fix to main"),
            ],
            stop_reason: "tool_use",
        }
    } else {
        Turn {
            content: vec![
                text("I'll free up disk space first."),
                bash(
                    "toolu_demo_01",
                    DESTRUCTIVE,
                    "Delete files to free disk space",
                ),
            ],
            stop_reason: "tool_use",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::guard::Decision;
    use crate::policy::Policy;
    use std::path::Path;

    #[test]
    fn the_policy_parses_and_decides_as_the_story_says() {
        let policy = Policy::parse(&policy_toml(), Path::new("demo policy")).unwrap();
        let guard = policy.guard.with_home("/home/demo");
        let d = guard.decide("Bash", &json!({"command": DESTRUCTIVE}));
        assert!(matches!(d, Decision::Block { .. }), "{d:?}");
        let d = guard.decide("Bash", &json!({"command": FORCE_PUSH}));
        assert_eq!(
            d,
            Decision::Review {
                rule: REVIEW_RULE.into(),
                reason: REVIEW_REASON.into()
            }
        );
        assert_eq!(
            guard.review_timeout(),
            std::time::Duration::from_secs(REVIEW_TIMEOUT_SECS)
        );
        assert!(guard
            .decide("Bash", &json!({"command": "git push origin main"}))
            .is_allow());
    }

    #[test]
    fn every_secret_of_the_prompt_is_masked() {
        let policy = Policy::builtin();
        let session = crate::policy::mask::Session::default();
        let (masked, _, counts) = session.mask_body(&policy.masking, PROMPT.as_bytes());
        let masked = String::from_utf8(masked).unwrap();
        for s in SECRETS {
            assert!(PROMPT.contains(s));
            assert!(!masked.contains(s), "{masked}");
        }
        assert_eq!(counts.values().sum::<usize>(), 3, "{counts:?}");
    }

    #[test]
    fn turns_follow_the_conversation() {
        let first = json!({"messages": [{"role": "user", "content": PROMPT}]});
        assert_eq!(answer(&first).content[1]["input"]["command"], DESTRUCTIVE);
        let second = json!({"messages": [
            {"role": "user", "content": PROMPT},
            {"role": "assistant", "content": [{"type": "text", "text": "blocked"}]},
            {"role": "user", "content": FOLLOW_UP},
        ]});
        assert_eq!(answer(&second).content[1]["input"]["command"], FORCE_PUSH);
        let third = json!({"messages": [
            {"role": "user", "content": PROMPT},
            {"role": "assistant", "content": []},
            {"role": "user", "content": FOLLOW_UP},
            {"role": "assistant", "content": []},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_demo_02", "content": "ok"}]},
        ]});
        assert_eq!(answer(&third).stop_reason, "end_turn");
    }
}
