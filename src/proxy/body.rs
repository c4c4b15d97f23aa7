//! The one body type every stage of the proxy uses, the relay body that
//! turns an upstream failure mid-stream into an SSE `error` event, and the
//! progress rule for request bodies ([`Progress`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;

use crate::anthropic::error::ApiError;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every request and response the proxy handles.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

pub fn incoming(body: Incoming) -> Body {
    body.map_err(BoxError::from).boxed_unsync()
}

/// An upstream response body relayed frame by frame. When the upstream
/// fails mid-way and the response is an event stream, the client's stream
/// ends with an Anthropic `error` event instead of a bare reset, so the
/// agent shows a message (SPEC section 3).
pub struct Relay {
    inner: Incoming,
    sse: bool,
    done: bool,
    host: String,
}

impl Relay {
    pub fn new(inner: Incoming, sse: bool, host: String) -> Self {
        Self {
            inner,
            sse,
            done: false,
            host,
        }
    }
}

impl http_body::Body for Relay {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => {
                tracing::warn!(host = %self.host, error = %e, "upstream stream failed mid-response");
                if self.sse {
                    self.done = true;
                    let msg = format!(
                        "hoopctl: the connection to the upstream {} broke in the middle of the response ({e}); retry the request",
                        self.host
                    );
                    let event = ApiError::new(502, msg).to_sse_event();
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))))
                } else {
                    Poll::Ready(Some(Err(e.into())))
                }
            }
            other => other.map_err(BoxError::from),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.sse {
            // An error event may be appended, so promise no exact length.
            SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}

/// Least a request body must deliver in each [`BODY_PROGRESS_INTERVAL`]
/// while hoopctl waits for it. The agent is a local process on loopback: an
/// honest one sends a whole body in milliseconds, and even one slowed down
/// by a loaded machine sends kilobytes per second. 1 KiB per 10 s (about
/// 100 bytes/s) is a thousand times below that, yet a body trickled at
/// 1 byte/s is cut after 10 s instead of holding a connection forever.
pub const MIN_BODY_PROGRESS_BYTES: u64 = 1024;
/// The window [`MIN_BODY_PROGRESS_BYTES`] is counted over.
pub const BODY_PROGRESS_INTERVAL: Duration = Duration::from_secs(10);

/// How fast a request body must arrive (see [`MIN_BODY_PROGRESS_BYTES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressRule {
    pub min_bytes: u64,
    pub interval: Duration,
}

impl Default for ProgressRule {
    fn default() -> Self {
        Self {
            min_bytes: MIN_BODY_PROGRESS_BYTES,
            interval: BODY_PROGRESS_INTERVAL,
        }
    }
}

/// The error of a request body that broke the progress rule.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly: fewer than {} bytes in {} ms", .0.min_bytes, .0.interval.as_millis())]
pub struct TooSlow(pub ProgressRule);

/// Set when a [`Progress`] body broke its rule, for whoever must answer
/// for the request after the body was handed on (e.g. to the upstream
/// client, whose error may not carry the cause).
#[derive(Debug, Clone, Default)]
pub struct Stalled(Arc<AtomicBool>);

impl Stalled {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A request body held to a [`ProgressRule`]: while hoopctl waits for the
/// client, each window of `interval` must bring `min_bytes`, or the body
/// fails with [`TooSlow`]. Time the consumer (the upstream) takes to ask
/// for more is not counted against the client.
pub struct Progress<B = Incoming> {
    inner: B,
    rule: ProgressRule,
    /// Bytes received in the current window.
    bytes: u64,
    /// The end of the current window.
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// The last poll of `inner` was pending: hoopctl is waiting on the client.
    waiting: bool,
    stalled: Stalled,
}

impl<B> Progress<B> {
    pub fn new(inner: B, mut rule: ProgressRule, stalled: Stalled) -> Self {
        rule.interval = rule.interval.max(Duration::from_millis(10));
        Self {
            inner,
            rule,
            bytes: 0,
            deadline: Box::pin(tokio::time::sleep(rule.interval)),
            waiting: false,
            stalled,
        }
    }

    fn restart(&mut self) {
        self.bytes = 0;
        let next = tokio::time::Instant::now() + self.rule.interval;
        self.deadline.as_mut().reset(next);
    }

    /// At the end of a window: fails when the client was waited on and
    /// sent too little, else starts the next window.
    fn window_over(&mut self) -> Result<(), BoxError> {
        if self.waiting && self.bytes < self.rule.min_bytes {
            self.stalled.0.store(true, Ordering::Relaxed);
            return Err(Box::new(TooSlow(self.rule)));
        }
        self.restart();
        Ok(())
    }
}

impl<B> http_body::Body for Progress<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.stalled.is_set() {
            return Poll::Ready(Some(Err(Box::new(TooSlow(this.rule)))));
        }
        if this.deadline.is_elapsed() {
            if let Err(e) = this.window_over() {
                return Poll::Ready(Some(Err(e)));
            }
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                if let Some(Ok(f)) = &frame {
                    if let Some(d) = f.data_ref() {
                        this.bytes = this.bytes.saturating_add(d.len() as u64);
                    }
                }
                Poll::Ready(frame.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                this.waiting = true;
                // Wakes this task at the end of the window.
                while this.deadline.as_mut().poll(cx).is_ready() {
                    if let Err(e) = this.window_over() {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
