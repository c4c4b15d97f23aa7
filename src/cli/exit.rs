//! Errors → exit code and one line of advice. The only such table.

use std::process::ExitCode;

use super::output::Format;
use crate::{ca, proxy, supervisor};

/// Advice for errors whose message alone does not say what to do.
fn hint(err: &anyhow::Error) -> Option<String> {
    for cause in err.chain() {
        if let Some(supervisor::Error::Spawn { program, source }) = cause.downcast_ref() {
            if source.kind() == std::io::ErrorKind::NotFound {
                return Some(if program == "claude" {
                    "is Claude Code installed and on PATH? (npm install -g @anthropic-ai/claude-code)".into()
                } else {
                    format!("is `{program}` installed and on PATH?")
                });
            }
        }
        if let Some(proxy::Error::Bind(_, e)) = cause.downcast_ref() {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                return Some("ports below 1024 need privileges; use a higher port".into());
            }
        }
        if let Some(ca::Error::Write { .. }) = cause.downcast_ref() {
            return Some("HOOPCTL_DATA_DIR chooses another data directory".into());
        }
    }
    None
}

/// Prints the error (text or JSON on stderr) and returns exit code 1.
pub fn report(err: &anyhow::Error, format: Format) -> ExitCode {
    let hint = hint(err);
    match format {
        Format::Json => {
            let v = serde_json::json!({ "error": format!("{err:#}"), "hint": hint });
            eprintln!("{v}");
        }
        Format::Text => {
            eprintln!("error: {err:#}");
            if let Some(h) = hint {
                eprintln!("hint: {h}");
            }
        }
    }
    ExitCode::from(1)
}
