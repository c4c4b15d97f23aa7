//! The client side: finds every running proxy's socket and talks to it.
//! Used by `pending`, `approve`, `deny` (and `watch` later).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::protocol::{Command, Hello, Reply, ServerLine, VERSION};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no hoopctl proxy is running (no control socket in {0})")]
    NoProxy(PathBuf),
    #[error("control socket {path}: {why}")]
    Socket { path: PathBuf, why: String },
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
    lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    w: tokio::net::unix::OwnedWriteHalf,
    path: PathBuf,
}

impl Conn {
    pub async fn connect(path: &Path) -> Result<Self, Error> {
        let err = |why: String| Error::Socket {
            path: path.to_path_buf(),
            why,
        };
        let stream = tokio::time::timeout(Duration::from_secs(2), UnixStream::connect(path))
            .await
            .map_err(|_| err("timed out".into()))?
            .map_err(|e| err(e.to_string()))?;
        let (r, w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        let first = tokio::time::timeout(Duration::from_secs(2), lines.next_line())
            .await
            .map_err(|_| err("no greeting".into()))?
            .map_err(|e| err(e.to_string()))?
            .ok_or_else(|| err("closed".into()))?;
        let hello = match serde_json::from_str::<ServerLine>(&first) {
            Ok(ServerLine::Hello(h)) if h.version == VERSION => h,
            Ok(ServerLine::Hello(h)) => {
                return Err(err(format!(
                    "protocol version {} (this hoopctl speaks {VERSION})",
                    h.version
                )))
            }
            _ => return Err(err("unexpected greeting".into())),
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
        let err = |why: String| Error::Socket {
            path: self.path.clone(),
            why,
        };
        let mut text = serde_json::to_string(cmd).unwrap_or_default();
        text.push('\n');
        self.w
            .write_all(text.as_bytes())
            .await
            .map_err(|e| err(e.to_string()))?;
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

/// Connects to every running proxy; fails when there is none.
pub async fn connect_all(runtime: &Path) -> Result<Vec<Conn>, Error> {
    let mut conns = Vec::new();
    for path in sockets(runtime) {
        match Conn::connect(&path).await {
            Ok(c) => conns.push(c),
            Err(e) => tracing::debug!(error = %e, "skipping a stale control socket"),
        }
    }
    if conns.is_empty() {
        return Err(Error::NoProxy(runtime.to_path_buf()));
    }
    Ok(conns)
}
