//! The control socket's wire format: one JSON object per line.
//!
//! The server greets with `{"hello":{"version":1,...}}`. A client sends
//! commands; each gets one `{"reply":...}`; after `watch` the server also
//! sends `{"event":...}` lines. Unknown fields are ignored, unknown
//! commands get an error reply, so versions can grow.

use serde::{Deserialize, Serialize};

use crate::approvals::Approval;
use crate::events::Event;

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    pub pid: u32,
    pub profile: String,
    pub listen: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    Pending,
    Approve { id: String },
    Deny { id: String, reason: Option<String> },
    Watch,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Vec<Approval>>,
}

/// Any line the server sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerLine {
    Hello(Hello),
    Reply(Reply),
    Event(Event),
}

/// The longest line either side reads (64 KiB). A server closes a client
/// that sends a longer one; a client reports a server that does.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("a line longer than {} KiB (the control protocol's limit)", MAX_LINE_BYTES / 1024)]
    TooLong,
    #[error("a line that is not UTF-8")]
    NotUtf8,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads `\n`-terminated lines of at most [`MAX_LINE_BYTES`]; a longer one
/// is an error as soon as the limit is passed (nothing more is buffered).
/// Cancel-safe: bytes read before a cancelled call stay for the next one.
pub struct LineReader<R> {
    inner: tokio::io::BufReader<R>,
    line: Vec<u8>,
}

impl<R: tokio::io::AsyncRead + Unpin> LineReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner: tokio::io::BufReader::new(inner),
            line: Vec::new(),
        }
    }

    /// The next line without its `\n` (or `\r\n`); `None` at the end.
    pub async fn next_line(&mut self) -> Result<Option<String>, LineError> {
        use tokio::io::AsyncBufReadExt;
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                if self.line.is_empty() {
                    return Ok(None);
                }
                return self.take().map(Some);
            }
            let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (available.len(), false),
            };
            if self.line.len() + chunk > MAX_LINE_BYTES {
                self.line = Vec::new();
                return Err(LineError::TooLong);
            }
            self.line.extend_from_slice(&available[..chunk]);
            self.inner.consume(chunk + usize::from(done));
            if done {
                return self.take().map(Some);
            }
        }
    }

    fn take(&mut self) -> Result<String, LineError> {
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        String::from_utf8(line).map_err(|_| LineError::NotUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_up_to_the_limit_are_read() {
        let mut input = b"one\r\ntwo\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES));
        input.extend_from_slice(b"\nlast");
        let mut r = LineReader::new(&input[..]);
        assert_eq!(r.next_line().await.unwrap().as_deref(), Some("one"));
        assert_eq!(r.next_line().await.unwrap().as_deref(), Some("two"));
        assert_eq!(r.next_line().await.unwrap().unwrap().len(), MAX_LINE_BYTES);
        assert_eq!(r.next_line().await.unwrap().as_deref(), Some("last"));
        assert!(r.next_line().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_longer_line_is_refused_without_buffering_it() {
        let input = vec![b'x'; MAX_LINE_BYTES + 1];
        let mut r = LineReader::new(&input[..]);
        assert!(matches!(r.next_line().await, Err(LineError::TooLong)));
        assert!(r.line.capacity() <= MAX_LINE_BYTES);
        let mut r = LineReader::new(&b"\xff\xfe\n"[..]);
        assert!(matches!(r.next_line().await, Err(LineError::NotUtf8)));
    }
}
