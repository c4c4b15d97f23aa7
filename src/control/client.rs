//! The client side: finds every running proxy's socket and talks to it.
//! Used by `pending`, `approve`, `deny` (and `watch` later).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

use super::protocol::{Command, Hello, LineReader, Reply, ServerLine, VERSION};

/// How long a client waits to connect, for the server's greeting, and for
/// each reply; a socket that stays silent longer is reported, not skipped.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no hoopctl proxy is running (no control socket in {0})")]
    NoProxy(PathBuf),
    #[error("control socket {path}: {why}")]
    Socket { path: PathBuf, why: String },
    /// Nothing listens there any more (a proxy that died): skipped.
    #[error("control socket {path} is stale (nothing listens there): {why}")]
    Stale { path: PathBuf, why: String },
    #[error("the control socket {path} did not answer within {secs}s ({what}); is another program listening there? If no hoopctl proxy is running, remove it")]
    Silent {
        path: PathBuf,
        what: &'static str,
        secs: u64,
    },
}

/// Control sockets in `runtime` (stale ones are skipped when connecting).
pub fn sockets(runtime: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(runtime) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("hoopctl-") && n.ends_with(".sock"))
        })
        .collect();
    v.sort();
    v
}

/// One connection to one proxy.
pub struct Conn {
    pub hello: Hello,
    lines: LineReader<tokio::net::unix::OwnedReadHalf>,
    w: tokio::net::unix::OwnedWriteHalf,
    path: PathBuf,
}

impl Conn {
    pub async fn connect(path: &Path) -> Result<Self, Error> {
        let err = |why: String| Error::Socket {
            path: path.to_path_buf(),
            why,
        };
        let silent = |what| Error::Silent {
            path: path.to_path_buf(),
            what,
            secs: ANSWER_TIMEOUT.as_secs(),
        };
        let stream = match tokio::time::timeout(ANSWER_TIMEOUT, UnixStream::connect(path)).await {
            Err(_) => return Err(silent("no connection")),
            Ok(Ok(s)) => s,
            Ok(Err(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
                ) =>
            {
                return Err(Error::Stale {
                    path: path.to_path_buf(),
                    why: e.to_string(),
                })
            }
            Ok(Err(e)) => return Err(err(e.to_string())),
        };
        let (r, w) = stream.into_split();
        let mut lines = LineReader::new(r);
        let first = tokio::time::timeout(ANSWER_TIMEOUT, lines.next_line())
            .await
            .map_err(|_| silent("no greeting"))?
            .map_err(|e| err(e.to_string()))?
            .ok_or_else(|| err("closed before greeting".into()))?;
        let hello = match serde_json::from_str::<ServerLine>(&first) {
            Ok(ServerLine::Hello(h)) if h.version == VERSION => h,
            Ok(ServerLine::Hello(h)) => {
                return Err(err(format!(
                    "protocol version {} (this hoopctl speaks {VERSION})",
                    h.version
                )))
            }
            _ => {
                return Err(err(
                    "unexpected greeting (is another program listening there?)".into(),
                ))
            }
        };
        Ok(Self {
            hello,
            lines,
            w,
            path: path.to_path_buf(),
        })
    }

    /// Sends a command and returns its reply (events before it are skipped).
    pub async fn call(&mut self, cmd: &Command) -> Result<Reply, Error> {
        let path = self.path.clone();
        let err = |why: String| Error::Socket {
            path: path.clone(),
            why,
        };
        let mut text = serde_json::to_string(cmd).unwrap_or_default();
        text.push('\n');
        self.w
            .write_all(text.as_bytes())
            .await
            .map_err(|e| err(e.to_string()))?;
        let reply = async {
            loop {
                let line = self
                    .lines
                    .next_line()
                    .await
                    .map_err(|e| err(e.to_string()))?
                    .ok_or_else(|| err("closed".into()))?;
                if let Ok(ServerLine::Reply(r)) = serde_json::from_str::<ServerLine>(&line) {
                    return Ok(r);
                }
            }
        };
        tokio::time::timeout(ANSWER_TIMEOUT, reply)
            .await
            .map_err(|_| Error::Silent {
                path: path.clone(),
                what: "no reply",
                secs: ANSWER_TIMEOUT.as_secs(),
            })?
    }

    /// The next event line (after `watch`).
    pub async fn next_event(&mut self) -> Result<Option<crate::events::Event>, Error> {
        loop {
            let Some(line) = self.lines.next_line().await.map_err(|e| Error::Socket {
                path: self.path.clone(),
                why: e.to_string(),
            })?
            else {
                return Ok(None);
            };
            if let Ok(ServerLine::Event(e)) = serde_json::from_str::<ServerLine>(&line) {
                return Ok(Some(e));
            }
        }
    }
}

/// Connects to every running proxy; fails when there is none, or when a
/// socket accepts but does not answer as a hoopctl proxy (stale sockets of
/// proxies that died are skipped).
pub async fn connect_all(runtime: &Path) -> Result<Vec<Conn>, Error> {
    let mut conns = Vec::new();
    for path in sockets(runtime) {
        match Conn::connect(&path).await {
            Ok(c) => conns.push(c),
            Err(e @ Error::Stale { .. }) => {
                tracing::debug!(error = %e, "skipping a stale control socket")
            }
            Err(e) => return Err(e),
        }
    }
    if conns.is_empty() {
        return Err(Error::NoProxy(runtime.to_path_buf()));
    }
    Ok(conns)
}
