//! The server side: listens while the proxy runs, answers commands,
//! streams events to watchers. Removes its socket when it stops, and at
//! start the sockets of proxies that died without removing theirs.
//!
//! Limits: [`MAX_CONNECTIONS`] clients at once, lines of at most
//! [`super::protocol::MAX_LINE_BYTES`], failed accepts paused (10 ms
//! doubling to 1 s) instead of retried at once.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use super::protocol::{Command, Hello, LineReader, Reply, ServerLine};
use crate::proxy::limit::{Backoff, ConnLimit};

/// The most control clients served at once (watchers, `pending`,
/// `approve`); beyond it new ones are closed at once.
pub const MAX_CONNECTIONS: usize = 64;
use crate::approvals::{Approvals, Resolution};
use crate::events::Bus;

/// The socket path of the proxy with this pid.
pub fn socket_path(runtime: &Path, pid: u32) -> PathBuf {
    runtime.join(format!("hoopctl-{pid}.sock"))
}

pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    hello: Hello,
    approvals: Arc<Approvals>,
    bus: Bus,
}

impl Server {
    pub fn bind(
        runtime: &Path,
        hello: Hello,
        approvals: Arc<Approvals>,
        bus: Bus,
    ) -> std::io::Result<Self> {
        crate::paths::ensure_dir(runtime).map_err(|e| std::io::Error::other(e.to_string()))?;
        let path = socket_path(runtime, hello.pid);
        remove_stale(runtime);
        if std::fs::symlink_metadata(&path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!(
                    "{} is in use: a live hoopctl (or another program) answers there, or it is not a \
                     socket of this user; stop that program, or remove the file if nothing uses it",
                    path.display()
                ),
            ));
        }
        let listener = UnixListener::bind(&path)?;
        // 0600 whatever the umask was: only this user may approve.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(Self {
            listener,
            path,
            hello,
            approvals,
            bus,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves until `stop` is cancelled, then removes the socket.
    pub async fn run(self, stop: CancellationToken) {
        let me = nix::unistd::getuid().as_raw();
        let tracker = tokio_util::task::TaskTracker::new();
        let mut limit = ConnLimit::new("control socket", MAX_CONNECTIONS);
        let mut backoff = Backoff::default();
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => break,
                r = self.listener.accept() => r,
            };
            let stream = match accepted {
                Ok((stream, _)) => {
                    backoff.succeeded();
                    stream
                }
                Err(e) => {
                    // EMFILE: the client waits in the backlog; do not spin.
                    let pause = backoff.failed();
                    tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "control socket: accept failed");
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(pause) => continue,
                    }
                }
            };
            match stream.peer_cred() {
                Ok(cred) if cred.uid() == me => {}
                other => {
                    tracing::warn!(peer = ?other.map(|c| c.uid()), "control socket: refused a client of another user");
                    continue;
                }
            }
            let Some(slot) = limit.admit() else { continue };
            let (hello, approvals, bus, stop) = (
                self.hello.clone(),
                self.approvals.clone(),
                self.bus.clone(),
                stop.clone(),
            );
            tracker.spawn(async move {
                client(stream, hello, approvals, bus, stop).await;
                drop(slot);
            });
        }
        tracker.close();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), tracker.wait()).await;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Removes the control sockets in `runtime` that nothing listens on any
/// more (their proxy died, e.g. by kill -9). Only sockets of this user are
/// removed, never a symlink or another kind of file; a socket that accepts
/// a connection belongs to a live proxy and stays.
pub fn remove_stale(runtime: &Path) {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let me = nix::unistd::getuid().as_raw();
    for path in super::client::sockets(runtime) {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.file_type().is_socket() || meta.uid() != me {
            tracing::warn!(path = %path.display(), "not a control socket of this user; leaving it");
            continue;
        }
        match probe(&path) {
            None | Some(Ok(())) => {}
            Some(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "removed the stale control socket of a proxy that is gone")
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "could not remove a stale control socket")
                    }
                }
            }
            Some(Err(e)) => {
                tracing::debug!(path = %path.display(), error = %e, "control socket not checked")
            }
        }
    }
}

/// How long a start waits to learn whether a socket is live (a connect to a
/// live listener whose backlog is full blocks); no answer counts as live.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// Connects to `path` once: `Ok` if something listens, the error if not,
/// `None` if the connect did not finish in time.
fn probe(path: &Path) -> Option<std::io::Result<()>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(std::os::unix::net::UnixStream::connect(&path).map(drop));
    });
    rx.recv_timeout(PROBE_TIMEOUT).ok()
}

async fn send(w: &mut tokio::net::unix::OwnedWriteHalf, line: &ServerLine) -> bool {
    let mut text = serde_json::to_string(line).unwrap_or_default();
    text.push('\n');
    w.write_all(text.as_bytes()).await.is_ok()
}

async fn client(
    stream: UnixStream,
    hello: Hello,
    approvals: Arc<Approvals>,
    bus: Bus,
    stop: CancellationToken,
) {
    let (r, mut w) = stream.into_split();
    if !send(&mut w, &ServerLine::Hello(hello)).await {
        return;
    }
    let mut lines = LineReader::new(r);
    let mut events: Option<tokio::sync::broadcast::Receiver<crate::events::Event>> = None;
    loop {
        let next_event = async {
            match events.as_mut() {
                Some(rx) => rx.recv().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            line = lines.next_line() => {
                let line = match line {
                    Ok(Some(line)) => line,
                    Ok(None) => return,
                    Err(super::protocol::LineError::Io(e)) => {
                        return tracing::debug!(error = %e, "control socket: a client went away");
                    }
                    Err(e) => {
                        // Over the line limit (or not UTF-8): this client is closed.
                        return tracing::warn!(error = %e, "control socket: closing a client");
                    }
                };
                let reply = match serde_json::from_str::<Command>(&line) {
                    Ok(Command::Pending) => Reply { ok: true, pending: Some(approvals.pending()), ..Default::default() },
                    Ok(Command::Approve { id }) => outcome(approvals.resolve(&id, Resolution::Approved { by: by() })),
                    Ok(Command::Deny { id, reason }) => outcome(approvals.resolve(&id, Resolution::Denied { by: by(), reason })),
                    Ok(Command::Watch) => {
                        events = Some(bus.subscribe());
                        Reply { ok: true, ..Default::default() }
                    }
                    Err(e) => Reply { ok: false, error: Some(format!("bad command: {e}")), ..Default::default() },
                };
                if !send(&mut w, &ServerLine::Reply(reply)).await {
                    return;
                }
            }
            Some(event) = next_event => {
                if !send(&mut w, &ServerLine::Event(event)).await {
                    return;
                }
            }
        }
    }
}

fn by() -> String {
    std::env::var("USER").unwrap_or_else(|_| "local user".into())
}

fn outcome(r: Result<(), crate::approvals::NotPending>) -> Reply {
    match r {
        Ok(()) => Reply {
            ok: true,
            ..Default::default()
        },
        Err(e) => Reply {
            ok: false,
            error: Some(e.to_string()),
            ..Default::default()
        },
    }
}
