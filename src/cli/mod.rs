//! The command line: parsing, global flags, logging, dispatch, exit codes.
//!
//! Owns: clap, anyhow, stdout/stderr, the tokio runtime. Nothing else in
//! the crate imports `cli`.

mod approvals;
mod ca;
mod claude;
pub mod completions;
mod connect;
mod demo;
mod exit;
mod login;
pub mod output;
mod policy;
mod progress;
mod sessions;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::paths::Dirs;
use output::Format;

/// hoopctl governs what AI coding agents do: it runs Claude Code through a
/// local TLS-intercepting proxy with its own name-constrained CA.
#[derive(Debug, Parser)]
#[command(
    name = "hoopctl",
    version,
    after_help = "Quick start:\n  hoopctl demo                                        a one-minute offline tour\n  hoopctl connect claude-code --direct -- claude      run Claude Code through hoopctl\n  hoopctl watch                                       live requests, tool calls and approvals\n  eval \"$(hoopctl connect claude-code --print-env)\"   point this shell at a running proxy\n\nFiles: HOOPCTL_CONFIG_DIR, HOOPCTL_DATA_DIR and HOOPCTL_RUNTIME_DIR override where\nhoopctl keeps its configuration, CA and logs, and runtime state."
)]
pub struct Cli {
    /// Configuration profile to use.
    #[arg(long, global = true, value_name = "NAME", env = "HOOPCTL_PROFILE")]
    pub profile: Option<String>,
    /// Output format of commands that report something.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Configuration file (default: config.toml in the config directory).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the local certificate authority that signs intercepted hosts.
    #[command(subcommand)]
    Ca(ca::CaCommand),
    Connect(connect::ConnectArgs),
    /// A self-contained offline tour: masking, a blocked command, an approval you answer, the record.
    #[command(long_about = demo::LONG_ABOUT)]
    Demo(demo::DemoArgs),
    /// Route plain `claude` through hoopctl via ~/.claude/settings.json.
    #[command(subcommand)]
    Claude(claude::ClaudeCommand),
    Login(login::LoginArgs),
    /// The live TUI: requests, tool calls and approvals of every running proxy.
    ///
    /// Attaches to every hoopctl proxy of this user (and to proxies that start
    /// or restart later). Keys: Tab switches panels, Enter opens a request
    /// from the record, `a` approves and `d` denies (with a reason typed in
    /// place) the selected held call, `/` filters, `p` pauses, `?` help, `q` quits.
    Watch,
    /// List tool calls waiting for approval in running proxies.
    Pending,
    /// Let a held tool call run.
    Approve {
        /// The approval id (from `hoopctl pending` or the TUI).
        id: String,
    },
    /// Refuse a held tool call; the agent is told why.
    Deny {
        id: String,
        /// Shown to the agent and recorded.
        #[arg(long, value_name = "R")]
        reason: Option<String>,
    },
    /// Revoke the tokens at the provider (when it can) and delete them here.
    Logout,
    /// Show the login, token store, gateway, CA, the local record and running proxies.
    Status,
    /// Print a valid access token (refreshed when it is about to expire), for scripts.
    Token,
    /// Try the policy: decide a tool call, or mask stdin.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// The local record of what agents did: list, show, search, export, verify.
    #[command(subcommand, long_about = sessions::SESSIONS_HELP)]
    Sessions(sessions::SessionsCommand),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// What every command gets: directories, configuration, profile, output.
pub struct Context {
    pub dirs: Dirs,
    pub config_path: PathBuf,
    pub config: Config,
    pub profile: String,
    pub output: Format,
}

impl Context {
    fn load(cli: &Cli) -> anyhow::Result<Self> {
        let dirs = Dirs::resolve()?;
        dirs.check()?;
        let config_path = cli.config.clone().unwrap_or_else(|| dirs.config_file());
        let config = Config::load(&config_path)?;
        let profile = config.profile_name(cli.profile.as_deref());
        Ok(Self {
            dirs,
            config_path,
            config,
            profile,
            output: cli.output,
        })
    }
}

/// Where log lines go.
pub(crate) enum LogTo {
    Stderr,
    /// The terminal belongs to a child process.
    File(PathBuf),
}

pub(crate) fn init_logging(verbose: u8, to: LogTo) {
    use tracing_subscriber::EnvFilter;
    let default = match (verbose, &to) {
        (0, LogTo::Stderr) => "warn",
        (0, LogTo::File(_)) => "info",
        (1, _) => "hoopctl=debug,info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // A log line that cannot be written (a full disk, a file-size limit
    // on a redirected stderr) is dropped: reporting it with `eprintln!`
    // would panic the thread that logged.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .log_internal_errors(false);
    let result = match to {
        LogTo::Stderr => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .try_init(),
        LogTo::File(path) => {
            let file = path
                .parent()
                .map(crate::paths::ensure_dir)
                .transpose()
                .and_then(|_| crate::paths::open_append(&path, crate::paths::Trust::Public));
            match file {
                Ok(f) => builder
                    .with_ansi(false)
                    .with_writer(std::sync::Mutex::new(f))
                    .try_init(),
                Err(e) => {
                    eprintln!("hoopctl: logging to the terminal instead of the log file: {e}");
                    builder
                        .with_ansi(false)
                        .with_writer(std::io::stderr)
                        .try_init()
                }
            }
        }
    };
    let _ = result;
}

/// Parses the command line, runs the command, maps errors to exit codes.
pub fn main() -> ExitCode {
    // Everything hoopctl creates is private to the user (keys, secrets, logs).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let cli = Cli::parse();
    let format = cli.output;
    match run(cli) {
        Ok(code) => code,
        Err(e) => exit::report(&e, format),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Completions { shell } = &cli.command {
        completions::run(*shell)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut ctx = Context::load(&cli)?;
    match cli.command {
        Command::Ca(cmd) => {
            init_logging(cli.verbose, LogTo::Stderr);
            ca::run(&mut ctx, cmd)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(cmd) => {
            init_logging(cli.verbose, LogTo::Stderr);
            policy::run(&ctx, cmd)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sessions(cmd) => {
            init_logging(cli.verbose, LogTo::Stderr);
            sessions::run(&ctx, cmd)
        }
        Command::Claude(cmd) => {
            init_logging(cli.verbose, LogTo::Stderr);
            claude::run(&mut ctx, cmd)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Watch => {
            // The terminal belongs to the TUI: logs go to the log file.
            init_logging(cli.verbose, LogTo::File(ctx.dirs.log_file()));
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("could not start the async runtime")?;
            runtime.block_on(watch::run(
                ctx.dirs.runtime.clone(),
                ctx.dirs.audit_db(),
                None,
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("could not start the async runtime")?;
            runtime.block_on(demo::run(&ctx, args, cli.verbose))
        }
        Command::Connect(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("hoopctl")
                .build()
                .context("could not start the async runtime")?;
            runtime.block_on(connect::run(&mut ctx, args, cli.verbose))
        }
        Command::Login(_)
        | Command::Logout
        | Command::Status
        | Command::Token
        | Command::Pending
        | Command::Approve { .. }
        | Command::Deny { .. } => {
            init_logging(cli.verbose, LogTo::Stderr);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("could not start the async runtime")?;
            runtime.block_on(async {
                match cli.command {
                    Command::Login(args) => login::login(&mut ctx, args).await,
                    Command::Logout => login::logout(&mut ctx).await,
                    Command::Status => login::status(&mut ctx).await,
                    Command::Pending => approvals::pending(&ctx).await,
                    Command::Approve { id } => approvals::decide(&ctx, &id, true, None).await,
                    Command::Deny { id, reason } => {
                        approvals::decide(&ctx, &id, false, reason).await
                    }
                    _ => login::token(&mut ctx).await,
                }
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { .. } => Ok(ExitCode::SUCCESS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn spec_names_parse() {
        for args in [
            &["hoopctl", "ca", "init"][..],
            &["hoopctl", "ca", "show", "--output", "json"],
            &["hoopctl", "ca", "path"],
            &["hoopctl", "ca", "rotate"],
            &[
                "hoopctl",
                "--profile",
                "work",
                "-v",
                "connect",
                "claude-code",
                "--direct",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "http://127.0.0.1:1",
                "--policy",
                "p.toml",
                "--",
                "claude",
                "-p",
                "hi",
            ],
            &[
                "hoopctl",
                "connect",
                "claude-code",
                "--print-env",
                "--shell",
                "fish",
            ],
            &["hoopctl", "claude", "configure"],
            &["hoopctl", "claude", "unconfigure"],
            &["hoopctl", "completions", "zsh"],
            &[
                "hoopctl", "--config", "c.toml", "--output", "json", "ca", "show",
            ],
        ] {
            Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
        assert!(
            Cli::try_parse_from(["hoopctl", "connect", "claude-code", "--shell", "bash"]).is_err()
        );
        assert!(Cli::try_parse_from([
            "hoopctl",
            "connect",
            "claude-code",
            "--print-env",
            "--",
            "claude"
        ])
        .is_err());
    }
}
