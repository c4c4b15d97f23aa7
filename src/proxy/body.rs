//! The one body type every stage of the proxy uses, and the relay body
//! that turns an upstream failure mid-stream into an SSE `error` event.

use std::pin::Pin;
use std::task::{Context, Poll};

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
