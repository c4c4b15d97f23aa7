//! `hoopctl demo`: the offline tour ([`crate::demo`]) told on the terminal,
//! with the one question (approve the held command?) asked on stdin.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::Args;
use tokio::sync::oneshot;

use super::output::{emit, Format};
use super::{init_logging, Context, LogTo};
use crate::demo::{
    self, script, Approval, Guardrail, Held, Masking, Narrator, Outcome, Record, Setup,
};

/// The long help of `hoopctl demo` (the variant's doc comment is the short one).
pub const LONG_ABOUT: &str = "\
A self-contained tour of hoopctl, offline, in a few seconds.

A scripted agent talks to a scripted Anthropic API built into hoopctl, through the real hoopctl
proxy and its real policy engine, exactly as Claude Code would (CONNECT api.anthropic.com:443,
TLS with hoopctl's CA). You see:

  1. Masking     the prompt you \"typed\" has an email, a card number and an AWS key;
                 the API receives <EMAIL_1>, <CREDIT_CARD_1>, <AWS_ACCESS_KEY_1>
  2. Guardrails  the model asks to run `rm -rf ~/`; the built-in catalogue blocks it,
                 and the agent is told why instead
  3. Approval    the model asks to run `git push --force origin main`; a demo rule
                 holds it until you answer [y/N]
  4. The record  every step was recorded in a hash-chained store, read back and verified

No account, no login, no network, no Claude Code needed: everything runs on 127.0.0.1 in a
temporary directory with its own throwaway CA and record, removed at the end. Your CA,
configuration and recorded sessions are not touched.

  hoopctl demo                       answer the approval yourself
  hoopctl demo --yes                 approve without asking (scripts)
  hoopctl --output json demo --no    deny, and print one JSON summary of every step";

/// Options of `hoopctl demo` (help text: [`LONG_ABOUT`]).
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Approve the held command without asking.
    #[arg(long, conflicts_with = "no")]
    pub yes: bool,
    /// Deny the held command without asking.
    #[arg(long)]
    pub no: bool,
}

/// Bold and colors, only for a terminal without NO_COLOR.
#[derive(Clone, Copy)]
struct Style {
    on: bool,
}

impl Style {
    fn detect() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            on: std::io::stdout().is_terminal() && !no_color,
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }

    fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }

    fn red(&self, s: &str) -> String {
        self.paint("1;31", s)
    }

    fn green(&self, s: &str) -> String {
        self.paint("1;32", s)
    }

    fn yellow(&self, s: &str) -> String {
        self.paint("1;33", s)
    }

    fn cyan(&self, s: &str) -> String {
        self.paint("36", s)
    }
}

/// How the held command is answered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    Yes,
    No,
    Ask,
}

/// Lines are wrapped to this width (or the terminal's, when narrower).
const WIDTH: usize = 96;

struct Teller {
    format: Format,
    style: Style,
    answer: Answer,
    width: usize,
}

impl Teller {
    fn text(&self) -> bool {
        self.format == Format::Text
    }

    /// `label` then `text`, wrapped with a hanging indent; `paint` colors
    /// each wrapped line.
    fn field(&self, label: &str, text: &str, paint: impl Fn(&str) -> String) {
        let indent = 3 + label.chars().count();
        let lines = wrap(text, self.width.saturating_sub(indent).max(30));
        for (i, line) in lines.iter().enumerate() {
            if i == 0 {
                println!("   {}{}", self.style.dim(label), paint(line));
            } else {
                println!("{}{}", " ".repeat(indent), paint(line));
            }
        }
    }

    /// Texts the agent received, quoted.
    fn quoted(&self, texts: &[String]) {
        for t in texts {
            for line in wrap(t, self.width.saturating_sub(5).max(30)) {
                println!("{}{line}", self.style.dim("   │ "));
            }
        }
    }

    fn heading(&self, n: u8, title: &str, what: &str) {
        println!();
        println!(
            "{} {}",
            self.style.bold(&format!("{n}. {title}")),
            self.style.dim(what)
        );
    }
}

/// Greedy word wrap (at spaces; longer words stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        for word in para.split(' ') {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

/// Colors the placeholders in a masked line.
fn paint_placeholders(style: Style, line: &str) -> String {
    if !style.on {
        return line.to_string();
    }
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        let candidate = &rest[start..=start + len];
        let inner = &candidate[1..candidate.len() - 1];
        out.push_str(&rest[..start]);
        if !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            out.push_str(&style.green(candidate));
        } else {
            out.push_str(candidate);
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// Colors the raw secrets in a line of the prompt.
fn paint_secrets(style: Style, line: &str) -> String {
    let mut out = line.to_string();
    for s in script::SECRETS {
        out = out.replace(s, &style.red(s));
    }
    out
}

fn findings_text(findings: &BTreeMap<String, usize>) -> String {
    if findings.is_empty() {
        return "nothing (the proxy reported no findings)".into();
    }
    findings
        .iter()
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Narrator for Teller {
    fn setup(&mut self, setup: &Setup) {
        if !self.text() {
            return;
        }
        let s = self.style;
        println!(
            "{} the real hoopctl proxy between a scripted agent and a scripted Anthropic API.",
            s.bold("hoopctl demo:")
        );
        println!(
            "All on 127.0.0.1, in a throwaway directory: your own CA, config and record are not touched."
        );
        println!();
        println!(
            "   {}{} (throwaway CA; built-in policy plus the demo rule `{}`)",
            s.dim("proxy  "),
            setup.proxy,
            script::REVIEW_RULE
        );
        println!(
            "   {}like Claude Code: CONNECT api.anthropic.com:443, TLS, POST /v1/messages",
            s.dim("agent  ")
        );
        println!("   {}scripted, at {}", s.dim("API    "), setup.upstream);
    }

    fn masking(&mut self, step: &Masking) {
        if !self.text() {
            return;
        }
        let s = self.style;
        self.heading(
            1,
            "Masking",
            "(secrets and personal data are replaced before a request leaves the machine)",
        );
        self.field("You typed:         ", &step.typed, |l| paint_secrets(s, l));
        self.field("The API received:  ", &step.api_received, |l| {
            paint_placeholders(s, l)
        });
        self.field("Masked:            ", &findings_text(&step.findings), |l| {
            l.to_string()
        });
        if !step.leaked.is_empty() {
            println!(
                "   {} these values reached the API: {}",
                s.red("WARNING:"),
                step.leaked.join(", ")
            );
        }
    }

    fn guardrail(&mut self, step: &Guardrail) {
        if !self.text() {
            return;
        }
        let s = self.style;
        self.heading(
            2,
            "Guardrails",
            "(destructive commands are stopped before the agent can run them)",
        );
        println!(
            "   {}{}",
            s.dim("The model asked to run:  "),
            s.cyan(&step.command)
        );
        let verdict = match step.decision.as_str() {
            "blocked" => s.red("BLOCKED"),
            other => s.yellow(&other.to_uppercase()),
        };
        println!(
            "   {verdict} by rule {}: {}",
            s.bold(step.rule.as_deref().unwrap_or("(none)")),
            step.reason.as_deref().unwrap_or("(no reason given)")
        );
        println!(
            "   {}",
            s.dim("The agent received this answer, with no command in it:")
        );
        self.quoted(&step.agent_received);
    }

    fn held(&mut self, held: &Held) -> oneshot::Receiver<bool> {
        let s = self.style;
        if self.text() {
            self.heading(3, "Approval", "(risky commands wait for a person)");
            self.field("You replied:             ", &held.follow_up, |l| {
                l.to_string()
            });
            println!(
                "   {}{}",
                s.dim("The model asked to run:  "),
                s.cyan(&held.command)
            );
            println!(
                "   {} by rule {}: {}",
                s.yellow("HELD"),
                s.bold(&held.rule),
                held.reason
            );
            println!(
                "   {}",
                s.dim(&format!(
                    "The answer is paused (kept alive) until you decide; denied after {} s unanswered.",
                    held.timeout_secs
                ))
            );
        }
        let question = format!("Approve `{}`? [y/N] ", held.command);
        let (tx, rx) = oneshot::channel();
        let to_stdout = self.text();
        let prompt = |text: &str| {
            if to_stdout {
                print!("   {}{text}", s.bold(&question));
                let _ = std::io::stdout().flush();
            } else {
                eprint!("{question}{text}");
                let _ = std::io::stderr().flush();
            }
        };
        match self.answer {
            Answer::Yes => {
                prompt("y (--yes)\n");
                let _ = tx.send(true);
            }
            Answer::No => {
                prompt("n (--no)\n");
                let _ = tx.send(false);
            }
            Answer::Ask => {
                prompt("");
                let terminal = std::io::stdin().is_terminal();
                // A thread, not the runtime: a read of stdin cannot be
                // cancelled, and the process may end while it waits.
                std::thread::spawn(move || {
                    let mut line = String::new();
                    let read = std::io::stdin().lock().read_line(&mut line);
                    let answer = line.trim().to_ascii_lowercase();
                    let approve =
                        matches!(read, Ok(n) if n > 0) && (answer == "y" || answer == "yes");
                    if !terminal {
                        // Show what was read, as a terminal would have echoed it.
                        let shown = match read {
                            Ok(0) | Err(_) => "(end of input: deny)".to_string(),
                            _ => line.trim().to_string(),
                        };
                        if to_stdout {
                            println!("{shown}");
                        } else {
                            eprintln!("{shown}");
                        }
                    }
                    let _ = tx.send(approve);
                });
            }
        }
        rx
    }

    fn approval(&mut self, step: &Approval) {
        if !self.text() {
            return;
        }
        let s = self.style;
        match step.outcome {
            Outcome::Approved => {
                println!(
                    "   {} the tool call reached the agent (which, being scripted, runs nothing).",
                    s.green("APPROVED:")
                );
                if let Some(t) = &step.final_text {
                    self.field("The model finished:  ", t, |l| l.to_string());
                }
            }
            Outcome::Denied | Outcome::TimedOut => {
                if step.outcome == Outcome::TimedOut && self.answer == Answer::Ask {
                    // The question is still on the line; nobody answered it.
                    println!();
                }
                let label = if step.outcome == Outcome::Denied {
                    s.red("DENIED:")
                } else {
                    s.red("NO ANSWER IN TIME, DENIED:")
                };
                println!(
                    "   {label} the command did not run; the agent received this answer instead:"
                );
                self.quoted(&step.agent_received);
            }
        }
        println!(
            "   {}",
            s.dim("Real agents: answer in `hoopctl watch`, or `hoopctl pending` + `hoopctl approve ID`.")
        );
    }

    fn record(&mut self, step: &Record) {
        if !self.text() {
            return;
        }
        let s = self.style;
        self.heading(
            4,
            "The record",
            "(every request, answer, tool call and decision, hash-chained)",
        );
        // In the order a request goes through them, in words.
        let names = [
            ("egress", "egress decision"),
            ("request", "request"),
            ("response", "answer"),
            ("tool_call", "tool call"),
            ("decision", "approval"),
            ("error", "error"),
        ];
        let mut kinds: Vec<(&String, &usize)> = step.kinds.iter().collect();
        kinds.sort_by_key(|(k, _)| {
            names
                .iter()
                .position(|(o, _)| o == k)
                .unwrap_or(names.len())
        });
        let kinds = kinds
            .iter()
            .map(|(k, n)| {
                let name = names
                    .iter()
                    .find(|(o, _)| o == k)
                    .map(|(_, name)| *name)
                    .unwrap_or(k.as_str());
                format!("{n} {name}{}", if **n == 1 { "" } else { "s" })
            })
            .collect::<Vec<_>>()
            .join(", ");
        println!("   {} events: {kinds}", step.events);
        let width = step
            .tool_calls
            .iter()
            .map(|c| c.tool.chars().count() + c.summary.chars().count() + 1)
            .max()
            .unwrap_or(0);
        let decided = step
            .tool_calls
            .iter()
            .map(|c| c.decision.chars().count())
            .max()
            .unwrap_or(0);
        for c in &step.tool_calls {
            let call = format!("{} {}", c.tool, c.summary);
            let rule = c
                .rule
                .as_deref()
                .map(|r| format!("  rule {r}"))
                .unwrap_or_default();
            println!(
                "{}{call:<width$}  {:<decided$}{}",
                s.dim("   │ "),
                c.decision,
                s.dim(&rule)
            );
        }
        if step.chain_ok {
            println!(
                "   {} no event was edited, removed or reordered.",
                s.green("Hash chain verified:")
            );
        } else {
            println!(
                "   {} `hoopctl sessions verify` says where.",
                s.red("Hash chain BROKEN:")
            );
        }
        println!(
            "   {} hoopctl sessions list | show ID | search TEXT | verify",
            s.dim("Your real proxies record the same way:")
        );
    }
}

pub async fn run(ctx: &Context, args: DemoArgs, verbose: u8) -> anyhow::Result<ExitCode> {
    init_logging(verbose, LogTo::Stderr);
    let style = Style::detect();
    let width = if style.on {
        match crossterm::terminal::size() {
            Ok((w, _)) if w >= 60 => usize::from(w).min(WIDTH),
            _ => WIDTH,
        }
    } else {
        WIDTH
    };
    let mut teller = Teller {
        format: ctx.output,
        style,
        answer: match (args.yes, args.no) {
            (true, _) => Answer::Yes,
            (_, true) => Answer::No,
            _ => Answer::Ask,
        },
        width,
    };
    let report = tokio::select! {
        r = demo::run(&mut teller) => r?,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ninterrupted; the demo's temporary directory was removed");
            return Ok(ExitCode::from(130));
        }
    };
    emit(ctx.output, &report, |_| {
        format!(
            "\n{} hoopctl connect claude-code --direct -- claude",
            style.bold("Next, run Claude Code through hoopctl:")
        )
    });
    Ok(ExitCode::SUCCESS)
}
