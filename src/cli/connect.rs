//! `hoopctl connect claude-code`: run an agent through the proxy, run the
//! stable proxy in the foreground, or print the environment for one.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::output::{emit, Format};
use super::{init_logging, Context, LogTo};
use crate::agent::claude_code::ProxyEnv;
use crate::agent::shell::Shell;
use crate::ca::Ca;
use crate::policy::Policy;
use crate::proxy::upstream::Origin;
use crate::proxy::{parse_listen, Timeouts};
use crate::secret::Secret;
use crate::supervisor::{self, Options};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Agent {
    /// Anthropic's Claude Code (`claude`).
    ClaudeCode,
}

/// Run an agent through hoopctl.
///
/// With a command after `--`, hoopctl starts a proxy on a free loopback port
/// with a fresh secret, runs the command with HTTPS_PROXY, NODE_EXTRA_CA_CERTS
/// and NO_PROXY set, and exits with its exit code:
///
///     hoopctl connect claude-code --direct -- claude
///
/// Without a command it runs the profile's stable proxy in the foreground
/// (default 127.0.0.1:7733, same secret every time) until Ctrl-C; in another
/// terminal `eval "$(hoopctl connect claude-code --print-env)"` then points a
/// shell at it, or `hoopctl claude configure` points plain `claude` at it.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ConnectArgs {
    #[arg(value_enum)]
    pub agent: Agent,
    /// Send traffic straight to the API (no gateway); the agent's own key is used.
    #[arg(long)]
    pub direct: bool,
    /// Loopback address to listen on (default: a free port with a command,
    /// the profile's stable address without; 127.0.0.1:0 picks any free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Send intercepted requests here instead of https://api.anthropic.com (http or https URL).
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// Extra CA certificates (PEM) to trust for the upstream, besides the system store.
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,
    /// Policy file (TOML); built-in defaults apply where it is silent.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Only print the environment for the stable proxy, quoted for a shell, and exit.
    #[arg(long, conflicts_with = "command")]
    pub print_env: bool,
    /// Shell to quote --print-env lines for (default: from $SHELL).
    #[arg(long, value_enum, requires = "print_env")]
    pub shell: Option<Shell>,
    /// Seconds to wait for an upstream connection before answering 502.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub connect_timeout: u64,
    /// Seconds a client may take to send a request head before it is dropped.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub header_read_timeout: u64,
    /// Seconds in-flight streams may run on after Ctrl-C / SIGTERM.
    #[arg(long, value_name = "SECS", default_value_t = 15)]
    pub drain_timeout: u64,
    /// The command to run through the proxy, e.g. `-- claude`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// The policy from `--policy`, else the profile's, else the built-in one.
pub(super) fn load_policy(ctx: &Context, flag: Option<&PathBuf>) -> anyhow::Result<Policy> {
    let path = flag
        .cloned()
        .or_else(|| ctx.config.profile(&ctx.profile).policy);
    let policy = match path {
        Some(p) => Policy::load(&p)?,
        None => Policy::builtin(),
    };
    if !policy.unenforced.is_empty() {
        eprintln!(
            "warning: this hoopctl does not enforce the policy table(s) [{}] yet",
            policy.unenforced.join("], [")
        );
    }
    Ok(policy)
}

#[derive(Serialize)]
struct PrintedEnv {
    shell: Shell,
    env: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct Ready {
    event: &'static str,
    listen: String,
    proxy_url: String,
    base_url: String,
    ca_cert: PathBuf,
    ca_created: bool,
    upstream: String,
    env: serde_json::Map<String, serde_json::Value>,
}

fn env_map(env: &ProxyEnv) -> serde_json::Map<String, serde_json::Value> {
    env.vars()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect()
}

pub async fn run(ctx: &mut Context, args: ConnectArgs, verbose: u8) -> anyhow::Result<ExitCode> {
    let Agent::ClaudeCode = args.agent;
    let profile = ctx.config.profile(&ctx.profile);
    let policy = load_policy(ctx, args.policy.as_ref())?;

    if args.print_env {
        init_logging(verbose, LogTo::Stderr);
        let listen = parse_listen(&args.listen.clone().unwrap_or_else(|| profile.listen_addr()))?;
        let secret = ctx.config.stable_secret(&ctx.profile, &ctx.config_path)?;
        let (ca, _) = Ca::load_or_create(&ctx.dirs.ca_dir(), policy.egress.intercepted())?;
        let env = ProxyEnv {
            listen,
            secret,
            ca_cert: ca.cert_path().to_path_buf(),
        };
        let shell = args.shell.unwrap_or_else(Shell::detect);
        let printed = PrintedEnv {
            shell,
            env: env_map(&env),
        };
        emit(ctx.output, &printed, |_| {
            env.vars()
                .iter()
                .map(|(k, v)| shell.export(k, v))
                .collect::<Vec<_>>()
                .join("\n")
        });
        return Ok(ExitCode::SUCCESS);
    }

    let foreground = args.command.is_empty();
    let (listen, secret) = if foreground {
        let listen = args.listen.clone().unwrap_or_else(|| profile.listen_addr());
        (
            listen,
            ctx.config.stable_secret(&ctx.profile, &ctx.config_path)?,
        )
    } else {
        // Each run gets its own port and secret, so agents never share one.
        let listen = args.listen.clone().unwrap_or_else(|| "127.0.0.1:0".into());
        (
            listen,
            Secret::random().map_err(|_| anyhow::anyhow!("could not generate a proxy secret"))?,
        )
    };
    init_logging(
        verbose,
        if foreground {
            LogTo::Stderr
        } else {
            LogTo::File(ctx.dirs.log_file())
        },
    );
    let upstream_url = args.upstream.clone().or(profile.upstream.clone());
    let upstream = upstream_url.as_deref().map(Origin::parse).transpose()?;
    let options = Options {
        profile: ctx.profile.clone(),
        runtime_dir: ctx.dirs.runtime.clone(),
        policy,
        ca_dir: ctx.dirs.ca_dir(),
        listen: parse_listen(&listen)?,
        secret,
        upstream,
        upstream_ca: args.upstream_ca.clone().or(profile.upstream_ca.clone()),
        timeouts: Timeouts {
            connect: Duration::from_secs(args.connect_timeout.max(1)),
            header_read: Duration::from_secs(args.header_read_timeout.max(1)),
            drain: Duration::from_secs(args.drain_timeout),
        },
    };
    let started = supervisor::start(options).await?;
    if !foreground {
        let code = supervisor::run_child(started, &args.command).await?;
        return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
    }

    let upstream_text = upstream_url.unwrap_or_else(|| "https://api.anthropic.com".into());
    let ready = Ready {
        event: "listening",
        listen: started.env.listen.to_string(),
        proxy_url: started.env.proxy_url(),
        base_url: started.env.base_url(),
        ca_cert: started.env.ca_cert.clone(),
        ca_created: started.ca_created,
        upstream: upstream_text,
        env: env_map(&started.env),
    };
    let format = ctx.output;
    let stable =
        args.listen.is_none() || args.listen.as_deref() == Some(profile.listen_addr().as_str());
    emit(format, &ready, |r| {
        let shell = Shell::detect();
        let print_env = if stable {
            "hoopctl connect claude-code --print-env".to_string()
        } else {
            format!(
                "hoopctl connect claude-code --print-env --listen {}",
                r.listen
            )
        };
        let mut s = format!(
            "hoopctl proxy listening on {} (direct mode, upstream {})\nCA certificate: {}{}\n\nIn another terminal:\n  eval \"$({print_env})\"\n  claude\nor set these yourself:\n",
            r.listen,
            r.upstream,
            r.ca_cert.display(),
            if r.ca_created { " (created)" } else { "" },
        );
        for (k, v) in started.env.vars() {
            s.push_str(&format!("  {}\n", shell.export(k, &v)));
        }
        s.push_str("Press Ctrl-C to stop.");
        s
    });
    let state = ctx.dirs.proxy_state(&ctx.profile);
    let drain = args.drain_timeout;
    let left = supervisor::run_foreground(started, &state, || {
        if format == Format::Text {
            eprintln!(
                "stopping: no new connections; waiting up to {drain}s for requests in flight"
            );
        }
    })
    .await?;
    emit(
        format,
        &serde_json::json!({"event": "stopped", "dropped_connections": left}),
        |_| {
            if left > 0 {
                format!("stopped ({left} connection(s) still open at the deadline were closed)")
            } else {
                "stopped".into()
            }
        },
    );
    Ok(ExitCode::SUCCESS)
}
