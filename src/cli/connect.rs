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
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::progress::Spinner;
use crate::agent::claude_code::{has_own_key, ProxyEnv};
use crate::agent::shell::Shell;
use crate::auth::session::TokenSource;
use crate::ca::Ca;
use crate::gateway::api::Api;
use crate::gateway::link::{Link, Progress};
use crate::policy::Policy;
use crate::proxy::upstream::Origin;
use crate::proxy::{self, parse_listen, Timeouts};
use crate::secret::Secret;
use crate::supervisor::{self, Options};

/// The gateway connection asked for when none is named.
pub const DEFAULT_CONNECTION: &str = "claude-code";

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Agent {
    /// Anthropic's Claude Code (`claude`).
    ClaudeCode,
}

// `hoopctl connect --help`. Not a doc comment, which clap would also use:
// rustdoc would run its indented examples as Rust doctests.
const CONNECT_HELP: &str = r#"Run an agent through hoopctl.

With a command after `--`, hoopctl starts a proxy on a free loopback port
with a fresh secret, runs the command with HTTPS_PROXY, NODE_EXTRA_CA_CERTS
and NO_PROXY set, and exits with its exit code:

    hoopctl connect claude-code --direct -- claude

Gateway mode is used whenever the profile has a gateway (`hoopctl login
--gateway URL`) or --gateway URL is given: hoopctl asks the gateway for a
connection credential (waiting for a review when the connection needs
one), sends the agent's traffic to the gateway's proxy endpoint with it,
and removes the agent's own key; the agent gets a placeholder key when it
has none. The credential is reused across runs and renewed before it expires.

    hoopctl login --gateway https://gateway.example.com
    hoopctl connect claude-code -- claude

Without a command it runs the profile's stable proxy in the foreground
(default 127.0.0.1:7733, same secret every time) until Ctrl-C; in another
terminal `eval "$(hoopctl connect claude-code --print-env)"` then points a
shell at it, or `hoopctl claude configure` points plain `claude` at it."#;

/// Run an agent through hoopctl.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment, long_about = CONNECT_HELP)]
pub struct ConnectArgs {
    #[arg(value_enum)]
    pub agent: Agent,
    /// Send traffic straight to the API (no gateway); the agent's own key is used.
    #[arg(long)]
    pub direct: bool,
    /// Send traffic through the organisation's gateway at URL (default: the
    /// profile's gateway, set by `hoopctl login --gateway`).
    #[arg(long, value_name = "URL", conflicts_with = "direct")]
    pub gateway: Option<String>,
    /// Extra CA certificates (PEM) to trust for the gateway, besides the system store.
    #[arg(long, value_name = "FILE")]
    pub gateway_ca: Option<PathBuf>,
    /// The gateway connection to ask credentials for [default: claude-code].
    #[arg(long, value_name = "NAME")]
    pub connection: Option<String>,
    /// Ask the gateway for a credential valid this many seconds (default: the gateway's choice).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub duration: Option<u64>,
    /// Loopback address to listen on (default: a free port with a command,
    /// the profile's stable address without; 127.0.0.1:0 picks any free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Send intercepted requests here instead of https://api.anthropic.com (http or https URL; direct mode).
    #[arg(long, value_name = "URL", conflicts_with = "gateway")]
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
    /// Run the stable proxy and the `hoopctl watch` TUI in this terminal
    /// (quitting the TUI stops the proxy). Not with a command: it owns the terminal.
    #[arg(long, conflicts_with_all = ["command", "print_env"])]
    pub tui: bool,
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
    /// Seconds an agent may take for its whole TLS handshake (tests).
    #[arg(long, value_name = "SECS", hide = true)]
    pub tls_handshake_timeout: Option<u64>,
    /// Seconds a connection with no request in flight stays open (tests).
    #[arg(long, value_name = "SECS", hide = true)]
    pub idle_timeout: Option<u64>,
    /// Seconds to wait for an upstream's response head before a 504 (tests).
    #[arg(long, value_name = "SECS", hide = true)]
    pub response_head_timeout: Option<u64>,
    /// Seconds in which a request body must bring at least 1 KiB while
    /// hoopctl waits for it (408 otherwise). For tests.
    #[arg(long, value_name = "SECS", default_value_t = crate::proxy::body::BODY_PROGRESS_INTERVAL.as_secs(), hide = true)]
    pub body_progress_timeout: u64,
    /// Most decoded bytes of one inspected event stream (tests).
    #[arg(long, value_name = "BYTES", hide = true)]
    pub max_stream_bytes: Option<usize>,
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
    mode: &'static str,
    upstream: String,
    gateway: Option<GatewayReady>,
    env: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct GatewayReady {
    url: String,
    connection: String,
    credential_id: String,
    credential_reused: bool,
    expires_at: Option<String>,
}

/// The gateway URL when gateway mode applies.
fn gateway_url(
    args: &ConnectArgs,
    profile: &crate::config::Profile,
) -> anyhow::Result<Option<String>> {
    if args.direct {
        return Ok(None);
    }
    let url = args.gateway.clone().or(profile.gateway.clone());
    if url.is_some() && args.upstream.is_some() {
        anyhow::bail!(
            "--upstream applies to direct mode; this profile uses the gateway {} (pass --direct to send traffic to --upstream instead)",
            url.unwrap_or_default()
        );
    }
    Ok(url)
}

/// The stable proxy with the TUI in front: the ready line is printed when
/// the TUI closes (the screen belongs to it until then).
async fn run_with_tui(
    ctx: &Context,
    started: supervisor::Started,
    ready: Ready,
) -> anyhow::Result<ExitCode> {
    let state = ctx.dirs.proxy_state(&ctx.profile);
    let quit = CancellationToken::new();
    let proxy_stopped = CancellationToken::new();
    let tui = tokio::spawn(super::watch::run(
        ctx.dirs.runtime.clone(),
        ctx.dirs.audit_db(),
        Some(proxy_stopped.clone()),
    ));
    let tui_quit = quit.clone();
    let tui_done = tokio::spawn(async move {
        let r = tui.await;
        tui_quit.cancel();
        r
    });
    let left = supervisor::run_foreground(started, &state, quit, || {}).await;
    proxy_stopped.cancel();
    let tui_result = tui_done.await;
    let left = left?;
    match tui_result {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => return Err(e),
        Ok(Err(e)) | Err(e) => anyhow::bail!("the TUI stopped: {e}"),
    }
    emit(ctx.output, &ready, |r| {
        format!("hoopctl proxy on {} stopped with the TUI", r.listen)
    });
    if left > 0 {
        eprintln!("({left} connection(s) still open at the drain deadline were closed)");
    }
    Ok(ExitCode::SUCCESS)
}

/// Who is logged in on this profile (email, else subject), for the record;
/// `None` when nobody is or the token store does not answer quickly.
async fn identity(ctx: &Context) -> Option<String> {
    let profile = ctx.config.profile(&ctx.profile);
    profile.issuer.as_ref()?;
    let store = crate::auth::store::Store::new(
        profile.token_store.unwrap_or_default(),
        &ctx.profile,
        &ctx.dirs,
    );
    let load = tokio::task::spawn_blocking(move || store.load());
    match tokio::time::timeout(Duration::from_secs(3), load).await {
        Ok(Ok(Ok(Some(t)))) => Some(t.email.unwrap_or(t.subject)),
        _ => None,
    }
}

/// Gets the gateway credential, telling the person about reviews; Ctrl-C stops waiting.
async fn establish(ctx: &Context, args: &ConnectArgs, url: &str) -> anyhow::Result<Arc<Link>> {
    let profile = ctx.config.profile(&ctx.profile);
    if profile.issuer.is_none() {
        anyhow::bail!(
            "not logged in (profile {}); gateway mode needs a login: run `hoopctl login --gateway {url}`",
            ctx.profile
        );
    }
    let cas: Vec<PathBuf> = args
        .gateway_ca
        .clone()
        .or(profile.gateway_ca.clone())
        .into_iter()
        .collect();
    let api = Api::open(url, &cas)?;
    let tokens = TokenSource::new(
        ctx.dirs.clone(),
        &ctx.profile,
        profile.token_store.unwrap_or_default(),
    );
    let connection = args
        .connection
        .clone()
        .or(profile.connection.clone())
        .unwrap_or_else(|| DEFAULT_CONNECTION.to_string());
    let format = ctx.output;
    let spinner: Mutex<Option<Spinner>> = Mutex::new(None);
    let set_spinner = |s: Option<Spinner>| {
        if let Ok(mut slot) = spinner.lock() {
            *slot = s;
        }
    };
    let name = connection.clone();
    let progress = move |p: Progress| match (p, format) {
        (Progress::ReviewRequired { review_id, url }, Format::Json) => eprintln!(
            "{}",
            serde_json::json!({"event": "review_required", "connection": name, "review_id": review_id, "review_url": url})
        ),
        (Progress::ReviewRequired { review_id, url }, Format::Text) => {
            eprintln!(
                "Connection {name} needs approval on the gateway (review {review_id}).
Approve it at: {url}"
            );
            set_spinner(Some(Spinner::start("Waiting for the approval")));
        }
        (Progress::ReviewApproved, Format::Json) => eprintln!(
            "{}",
            serde_json::json!({"event": "review_approved", "connection": name})
        ),
        (Progress::ReviewApproved, Format::Text) => {
            set_spinner(None);
            eprintln!("Approved.");
        }
        (Progress::ReviewPoll { status }, _) => {
            tracing::debug!(%status, "review poll");
        }
        (Progress::Reused, _) => tracing::debug!("reusing the active gateway credential"),
    };
    let result = tokio::select! {
        r = Link::establish(api, tokens, &connection, args.duration, &progress) => r,
        _ = tokio::signal::ctrl_c() => {
            set_spinner(None);
            anyhow::bail!("stopped waiting for the gateway; the agent was not started")
        }
    };
    set_spinner(None);
    Ok(result?)
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

    let gateway = gateway_url(&args, &profile)?;
    if args.print_env {
        init_logging(verbose, LogTo::Stderr);
        let listen = parse_listen(&args.listen.clone().unwrap_or_else(|| profile.listen_addr()))?;
        let secret = ctx.config.stable_secret(&ctx.profile, &ctx.config_path)?;
        let (ca, _) = Ca::load_or_create(&ctx.dirs.ca_dir(), policy.egress.intercepted())?;
        let env = ProxyEnv {
            listen,
            secret,
            ca_cert: ca.cert_path().to_path_buf(),
            placeholder_key: gateway.is_some() && !has_own_key(),
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

    if args.tui
        && !(std::io::IsTerminal::is_terminal(&std::io::stdout())
            && std::io::IsTerminal::is_terminal(&std::io::stdin()))
    {
        anyhow::bail!("--tui needs a terminal; without one, run the proxy alone and use `hoopctl pending` / `approve` / `deny`");
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
        if foreground && !args.tui {
            LogTo::Stderr
        } else {
            LogTo::File(ctx.dirs.log_file())
        },
    );
    let link = match &gateway {
        Some(url) => Some(establish(ctx, &args, url).await?),
        None => None,
    };
    let upstream_url = match link {
        Some(_) => None,
        None => args.upstream.clone().or(profile.upstream.clone()),
    };
    let upstream = upstream_url.as_deref().map(Origin::parse).transpose()?;
    let extra_cas = [
        args.upstream_ca.clone().or(profile.upstream_ca.clone()),
        link.as_ref()
            .and(args.gateway_ca.clone().or(profile.gateway_ca.clone())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let options = Options {
        profile: ctx.profile.clone(),
        runtime_dir: ctx.dirs.runtime.clone(),
        policy,
        ca_dir: ctx.dirs.ca_dir(),
        listen: parse_listen(&listen)?,
        secret,
        upstream,
        extra_cas,
        gateway: link.clone(),
        placeholder_key: link.is_some() && !has_own_key(),
        audit_db: ctx.dirs.audit_db(),
        user: identity(ctx).await,
        timeouts: Timeouts {
            connect: Duration::from_secs(args.connect_timeout.max(1)),
            header_read: Duration::from_secs(args.header_read_timeout.max(1)),
            drain: Duration::from_secs(args.drain_timeout),
            tls_handshake: secs_or(args.tls_handshake_timeout, proxy::TLS_HANDSHAKE_TIMEOUT),
            idle: secs_or(args.idle_timeout, proxy::IDLE_TIMEOUT),
            response_head: secs_or(args.response_head_timeout, proxy::RESPONSE_HEAD_TIMEOUT),
            body_progress: crate::proxy::body::ProgressRule {
                interval: Duration::from_secs(args.body_progress_timeout.max(1)),
                ..Default::default()
            },
            ..Timeouts::default()
        },
        limits: proxy::Limits {
            decoded_stream: args
                .max_stream_bytes
                .unwrap_or(proxy::Limits::default().decoded_stream),
        },
    };
    let started = supervisor::start(options).await?;
    if !foreground {
        let code = supervisor::run_child(started, &args.command).await?;
        return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
    }

    let upstream_text = match &link {
        Some(l) => l.current().origin.to_string(),
        None => upstream_url.unwrap_or_else(|| "https://api.anthropic.com".into()),
    };
    let gateway_ready = link.as_ref().map(|l| {
        let active = l.current();
        GatewayReady {
            url: l.gateway().to_string(),
            connection: l.connection().to_string(),
            credential_id: active.id.clone(),
            credential_reused: active.reused,
            expires_at: active.expire_at.map(|t| t.to_rfc3339()),
        }
    });
    let ready = Ready {
        event: "listening",
        listen: started.env.listen.to_string(),
        proxy_url: started.env.proxy_url(),
        base_url: started.env.base_url(),
        ca_cert: started.env.ca_cert.clone(),
        ca_created: started.ca_created,
        mode: if link.is_some() { "gateway" } else { "direct" },
        upstream: upstream_text,
        gateway: gateway_ready,
        env: env_map(&started.env),
    };
    let format = ctx.output;
    if args.tui {
        return run_with_tui(ctx, started, ready).await;
    }
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
        let mode = match &r.gateway {
            Some(g) => format!(
                "gateway mode: connection {} at {}, proxy endpoint {}{}",
                g.connection,
                g.url,
                r.upstream,
                g.expires_at
                    .as_ref()
                    .map(|t| format!(", credential renewed before {t}"))
                    .unwrap_or_default()
            ),
            None => format!("direct mode, upstream {}", r.upstream),
        };
        let mut s = format!(
            "hoopctl proxy listening on {} ({mode})\nCA certificate: {}{}\n\nIn another terminal:\n  eval \"$({print_env})\"\n  claude\nor set these yourself:\n",
            r.listen,
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
    let left = supervisor::run_foreground(started, &state, CancellationToken::new(), || {
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

/// A hidden `--*-timeout SECS` flag (at least 1 s), else the default.
fn secs_or(flag: Option<u64>, default: Duration) -> Duration {
    flag.map_or(default, |s| Duration::from_secs(s.max(1)))
}
