//! `hoopctl policy check` and `hoopctl policy mask`: try a policy before
//! relying on it. They call the very functions the proxy calls.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use serde::Serialize;

use super::output::emit;
use super::Context;
use crate::policy::guard::Decision;
use crate::policy::mask::{Finding, Session};

// The long `--help` texts. Not doc comments, which clap would also use:
// rustdoc would run their indented examples as Rust doctests.
const CHECK_HELP: &str = r#"What policy decides for one tool call, which rule, and why.

    hoopctl policy check --tool Bash --input '{"command":"cd / && rm -rf *"}'

`--input -` reads the input from stdin, for inputs too long for a command line."#;
const MASK_HELP: &str = r#"Mask text or JSON read from stdin, as it would leave the machine.

    echo 'mail bob@example.com, card 4111 1111 1111 1111' | hoopctl policy mask"#;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// What policy decides for one tool call, which rule, and why.
    #[command(verbatim_doc_comment, long_about = CHECK_HELP)]
    Check {
        /// Tool name as the model sends it (Bash, Write, mcp__db__query, ...).
        #[arg(long, value_name = "NAME")]
        tool: String,
        /// The tool input as JSON.
        #[arg(long, value_name = "JSON")]
        input: String,
        /// Policy file (default: the profile's, else the built-in policy).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Mask text or JSON read from stdin, as it would leave the machine.
    #[command(verbatim_doc_comment, long_about = MASK_HELP)]
    Mask {
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
}

#[derive(Serialize)]
struct Checked<'a> {
    tool: &'a str,
    decision: &'a Decision,
    explanation: String,
}

#[derive(Serialize)]
struct MaskedOut {
    masked: String,
    findings: Vec<Finding>,
    counts: crate::policy::mask::Counts,
}

pub fn run(ctx: &Context, cmd: PolicyCommand) -> anyhow::Result<()> {
    match cmd {
        PolicyCommand::Check {
            tool,
            input,
            policy,
        } => {
            let policy = super::connect::load_policy(ctx, policy.as_ref())?;
            let input = if input == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("could not read the tool input from stdin")?;
                text
            } else {
                input
            };
            let input: serde_json::Value = serde_json::from_str(&input)
                .context("--input is not valid JSON (e.g. '{\"command\":\"ls\"}')")?;
            let mut guard = policy.guard;
            if let Some(home) = directories::BaseDirs::new() {
                guard = guard.with_home(home.home_dir().to_path_buf());
            }
            let decision = guard.decide(&tool, &input);
            let out = Checked {
                tool: &tool,
                decision: &decision,
                explanation: decision.explain(),
            };
            emit(ctx.output, &out, |o| {
                let verb = match o.decision {
                    Decision::Allow => "allow",
                    Decision::Block { .. } => "block",
                    Decision::Review { .. } => "review",
                };
                format!("{verb}: {}", o.explanation)
            });
        }
        PolicyCommand::Mask { policy } => {
            let policy = super::connect::load_policy(ctx, policy.as_ref())?;
            let mut input = Vec::new();
            std::io::stdin()
                .read_to_end(&mut input)
                .context("could not read stdin")?;
            let (masked, findings, counts) = Session::new().mask_body(&policy.masking, &input);
            let out = MaskedOut {
                masked: String::from_utf8_lossy(&masked).into_owned(),
                findings,
                counts,
            };
            emit(ctx.output, &out, |o| o.masked.clone());
        }
    }
    Ok(())
}
