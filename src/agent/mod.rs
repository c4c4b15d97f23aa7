//! What an agent needs to run through hoopctl: its environment, and the
//! `--print-env` lines for a shell.

pub mod claude_code;
pub mod shell;
