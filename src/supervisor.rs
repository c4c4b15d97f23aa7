//! `hoopctl connect`: builds the proxy from its parts, then either runs a
//! child command through it (forwarding signals, exiting with the child's
//! code) or runs it in the foreground until Ctrl-C / SIGTERM; then drains.
//!
//! Owns: process lifecycle and signals. Must not: print (the CLI does,
//! through the callbacks it passes).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

use crate::agent::claude_code::{ProxyEnv, SHADOWED};
use crate::audit::event::{now_ms, RunMeta};
use crate::audit::recorder::Recorder;
use crate::audit::store;
use crate::ca::{leaf::LeafCache, Ca};
use crate::policy::Policy;
use crate::proxy::upstream::{self, Origin};
use crate::proxy::{self, Proxy, Settings, Timeouts};
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Ca(#[from] crate::ca::Error),
    #[error(transparent)]
    Proxy(#[from] proxy::Error),
    #[error(transparent)]
    Upstream(#[from] upstream::Error),
    #[error("could not start `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("could not wait for the child process: {0}")]
    Wait(std::io::Error),
    #[error("could not open the control socket: {0}")]
    Control(std::io::Error),
    #[error("could not install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("the audit store cannot record ([audit] fail_closed = true): {0}")]
    Audit(crate::audit::store::Error),
}

pub struct Options {
    pub profile: String,
    pub runtime_dir: PathBuf,
    pub policy: Policy,
    pub ca_dir: PathBuf,
    pub listen: SocketAddr,
    pub secret: Secret,
    pub upstream: Option<Origin>,
    /// Extra CA files trusted for upstreams and the gateway, besides the system store.
    pub extra_cas: Vec<PathBuf>,
    /// Gateway mode: the link that holds the connection credential.
    pub gateway: Option<Arc<crate::gateway::link::Link>>,
    /// Give the child a placeholder API key (gateway mode, none set).
    pub placeholder_key: bool,
    pub timeouts: Timeouts,
    pub limits: crate::proxy::Limits,
    /// The audit store (`audit.db` in the data directory).
    pub audit_db: PathBuf,
    /// Who is logged in (email, else subject), for the record.
    pub user: Option<String>,
}

/// A bound proxy and how to reach it.
pub struct Started {
    pub proxy: Proxy,
    pub env: ProxyEnv,
    pub ca_created: bool,
    control: crate::control::server::Server,
    approvals: Arc<crate::approvals::Approvals>,
    recorder: Option<Arc<Recorder>>,
    shipper: Option<crate::audit::ship::Shipper>,
}

impl Started {
    /// Runs the proxy and its control socket until `shutdown`; then settles
    /// pending approvals as denied, drains, and removes the socket.
    async fn run(self, shutdown: CancellationToken) -> usize {
        let stop_control = CancellationToken::new();
        let control = tokio::spawn(self.control.run(stop_control.clone()));
        let approvals = self.approvals.clone();
        let deny_on_shutdown = shutdown.clone();
        let denier = tokio::spawn(async move {
            deny_on_shutdown.cancelled().await;
            approvals.deny_all("hoopctl is shutting down");
        });
        let stop_shipping = CancellationToken::new();
        let shipping = self
            .shipper
            .map(|s| tokio::spawn(s.run(stop_shipping.clone(), SHIP_GRACE)));
        let left = self.proxy.run(shutdown).await;
        stop_control.cancel();
        let _ = control.await;
        denier.abort();
        if let Some(r) = &self.recorder {
            r.flush().await;
        }
        // The last events get a moment to reach the webhook; what does not
        // waits in the store for the next run.
        stop_shipping.cancel();
        if let Some(s) = shipping {
            let _ = s.await;
        }
        if let Some(r) = &self.recorder {
            r.writer().close();
        }
        left
    }
}

/// Runs a started proxy (and its control socket) until `stop` is
/// cancelled, then drains like the other runners; returns the connections
/// still open at the drain deadline. For in-process callers (`hoopctl demo`).
pub async fn run_until(started: Started, stop: CancellationToken) -> usize {
    started.run(stop).await
}

/// How long the webhook may keep delivering after the proxy stopped.
const SHIP_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// How often a running proxy applies `[audit] retain_days` again (it also
/// does when it starts).
const RETAIN_EVERY: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// The crypto provider hoopctl uses everywhere (ring), passed explicitly.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads (or creates) the CA, builds the upstream client and binds.
pub async fn start(opts: Options) -> Result<Started, Error> {
    let hosts = opts.policy.egress.intercepted().to_vec();
    let (ca, ca_created) = Ca::load_or_create(&opts.ca_dir, &hosts)?;
    ca.check_covers(&hosts)?;
    let ca_cert = ca.cert_path().to_path_buf();
    let provider = provider();
    let leaves = Arc::new(LeafCache::new(Arc::new(ca), provider.clone())?);
    let roots = upstream::roots(&opts.extra_cas)?;
    let client = upstream::client(roots, provider.clone(), opts.timeouts.connect)?;
    let home = directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf());
    let recorder = open_recorder(&opts, &opts.policy)?;
    let shipper = match (&recorder, &opts.policy.audit.webhook) {
        // The webhook shares the upstream client (its roots and pool).
        (Some(r), Some(hook)) => Some(crate::audit::ship::Shipper::new(
            opts.audit_db.clone(),
            hook.clone(),
            client.clone(),
            r.writer().committed(),
        )),
        _ => None,
    };
    let mut policy = opts.policy;
    if let Some(h) = &home {
        policy.guard = policy.guard.with_home(h.clone());
    }
    let bus = crate::events::Bus::new();
    let approvals = Arc::new(crate::approvals::Approvals::new(bus.clone()));
    let settings = Settings {
        secret: opts.secret.clone(),
        policy: Arc::new(policy),
        leaves,
        client,
        upstream: opts.upstream,
        gateway: opts.gateway,
        timeouts: opts.timeouts,
        limits: opts.limits,
        bus: bus.clone(),
        approvals: approvals.clone(),
        home,
        recorder: recorder.clone(),
    };
    let proxy = Proxy::bind(opts.listen, settings).await?;
    let hello = crate::control::protocol::Hello {
        version: crate::control::protocol::VERSION,
        pid: std::process::id(),
        profile: opts.profile.clone(),
        listen: proxy.local_addr().to_string(),
    };
    let control =
        crate::control::server::Server::bind(&opts.runtime_dir, hello, approvals.clone(), bus)
            .map_err(Error::Control)?;
    let env = ProxyEnv {
        listen: proxy.local_addr(),
        secret: opts.secret,
        ca_cert,
        placeholder_key: opts.placeholder_key,
    };
    Ok(Started {
        proxy,
        env,
        ca_created,
        control,
        approvals,
        recorder,
        shipper,
    })
}

/// Opens the audit store when the policy records. A store that cannot be
/// opened stops the start under `fail_closed`; otherwise hoopctl warns and
/// runs unrecorded.
fn open_recorder(opts: &Options, policy: &Policy) -> Result<Option<Arc<Recorder>>, Error> {
    let audit = &policy.audit;
    if !audit.enabled {
        return Ok(None);
    }
    let writer = match store::Writer::start(&opts.audit_db, store::WriterOptions::default()) {
        Ok(w) => w,
        Err(e) if audit.fail_closed => return Err(Error::Audit(e)),
        Err(e) => {
            tracing::error!(error = %e, "the audit store cannot be opened; this run is NOT recorded ([audit] fail_closed = false)");
            eprintln!("warning: {e}; this run is not recorded");
            return Ok(None);
        }
    };
    // Under a file-size limit (`ulimit -f`) the kernel sends SIGXFSZ when
    // a write passes it, which would kill the proxy mid-request. Handled,
    // such a write fails with EFBIG instead, and `fail_closed` decides.
    if let Err(e) = signal(SignalKind::from_raw(
        nix::sys::signal::Signal::SIGXFSZ as std::os::raw::c_int,
    )) {
        tracing::debug!(error = %e, "could not handle SIGXFSZ");
    }
    if audit.retain_days > 0 {
        // At start and then periodically: a stable proxy may run for weeks.
        let (path, days) = (opts.audit_db.clone(), audit.retain_days);
        let spawned = std::thread::Builder::new()
            .name("hoopctl-retention".into())
            .spawn(move || loop {
                match store::retain(&path, days) {
                    Ok((0, _)) => {}
                    Ok((sessions, events)) => {
                        tracing::info!(
                            sessions,
                            events,
                            days,
                            "deleted recorded sessions past retention"
                        )
                    }
                    Err(e) => tracing::warn!(error = %e, "could not apply audit retention"),
                }
                std::thread::sleep(RETAIN_EVERY);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start audit retention");
        }
    }
    let run = RunMeta {
        run_id: crate::secret::random_hex(8).unwrap_or_default(),
        started_at_ms: now_ms(),
        profile: opts.profile.clone(),
        mode: if opts.gateway.is_some() {
            "gateway"
        } else {
            "direct"
        }
        .to_string(),
        gateway: opts.gateway.as_ref().map(|g| g.gateway().to_string()),
        user: opts.user.clone(),
        hoopctl_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    Ok(Some(Arc::new(Recorder::new(
        writer,
        run,
        audit.fail_closed,
    ))))
}

/// Runs `command` with the proxy environment and returns its exit code
/// (128 + N when a signal N ended it).
pub async fn run_child(started: Started, command: &[OsString]) -> Result<i32, Error> {
    let Some((program, args)) = command.split_first() else {
        return Ok(0);
    };
    let shutdown = CancellationToken::new();
    let env = started.env.clone();
    let proxy_task = tokio::spawn(started.run(shutdown.clone()));
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args);
    for key in SHADOWED {
        cmd.env_remove(key);
    }
    cmd.envs(env.vars());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(source) => {
            shutdown.cancel();
            let _ = proxy_task.await;
            return Err(Error::Spawn {
                program: program.to_string_lossy().into_owned(),
                source,
            });
        }
    };
    let status = forward_signals_until_exit(&mut child).await;
    shutdown.cancel();
    let _ = proxy_task.await;
    let status = status?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(1)))
}

async fn forward_signals_until_exit(
    child: &mut tokio::process::Child,
) -> Result<std::process::ExitStatus, Error> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(Error::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signals)?;
    let mut quit = signal(SignalKind::quit()).map_err(Error::Signals)?;
    // With a terminal, Ctrl-C already reaches the child (same process
    // group); sending it again would make Claude Code quit at the first press.
    let from_terminal = std::io::IsTerminal::is_terminal(&std::io::stdin());
    let pid = child.id().map(|id| Pid::from_raw(id as i32));
    let send = |sig: Signal| {
        if let Some(pid) = pid {
            let _ = kill(pid, sig);
        }
    };
    loop {
        tokio::select! {
            status = child.wait() => return status.map_err(Error::Wait),
            _ = term.recv() => send(Signal::SIGTERM),
            _ = hup.recv() => send(Signal::SIGHUP),
            _ = quit.recv() => send(Signal::SIGQUIT),
            _ = int.recv() => if !from_terminal { send(Signal::SIGINT) },
        }
    }
}

/// Runs the proxy until Ctrl-C, SIGTERM or `quit`. `on_stop` is told when
/// the drain begins. `state` is written while running (for `status`).
pub async fn run_foreground(
    started: Started,
    state: &Path,
    quit: CancellationToken,
    on_stop: impl FnOnce(),
) -> Result<usize, Error> {
    let shutdown = CancellationToken::new();
    let info = serde_json::json!({
        "pid": std::process::id(),
        "listen": started.env.listen.to_string(),
        "ca_cert": started.env.ca_cert,
    });
    if let Err(e) = crate::paths::write_private(state, info.to_string().as_bytes()) {
        tracing::warn!(path = %state.display(), error = %e, "could not write the proxy state file");
    }
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signals)?;
    let stop = shutdown.clone();
    let mut proxy_task = tokio::spawn(started.run(shutdown.clone()));
    let left = tokio::select! {
        _ = term.recv() => None,
        _ = int.recv() => None,
        _ = quit.cancelled() => None,
        r = &mut proxy_task => Some(r.unwrap_or(0)),
    };
    let left = match left {
        Some(n) => n,
        None => {
            on_stop();
            stop.cancel();
            proxy_task.await.unwrap_or(0)
        }
    };
    let _ = std::fs::remove_file(state);
    Ok(left)
}
