//! `hoopctl completions SHELL`: shell completion scripts from the clap
//! definitions (the committed `completions/` are checked against this).

use clap::CommandFactory;

use super::Cli;

/// The completion script for `shell`.
pub fn script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "hoopctl", &mut out);
    out
}

pub fn run(shell: clap_complete::Shell) -> anyhow::Result<()> {
    use std::io::Write;
    std::io::stdout().write_all(&script(shell))?;
    Ok(())
}
