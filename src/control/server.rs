//! The server side: listens while the proxy runs, answers commands,
//! streams events to watchers. Removes its socket when it stops.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use super::protocol::{Command, Hello, Reply, ServerLine};
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
        let _ = std::fs::remove_file(&path);
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
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => break,
                r = self.listener.accept() => r,
            };
            let Ok((stream, _)) = accepted else { continue };
            match stream.peer_cred() {
                Ok(cred) if cred.uid() == me => {}
                other => {
                    tracing::warn!(peer = ?other.map(|c| c.uid()), "control socket: refused a client of another user");
                    continue;
                }
            }
            let (hello, approvals, bus, stop) = (
                self.hello.clone(),
                self.approvals.clone(),
                self.bus.clone(),
                stop.clone(),
            );
            tracker.spawn(async move { client(stream, hello, approvals, bus, stop).await });
        }
        tracker.close();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), tracker.wait()).await;
        let _ = std::fs::remove_file(&self.path);
    }
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
    let mut lines = BufReader::new(r).lines();
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
                let Ok(Some(line)) = line else { return };
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
