//! Gateway mode on the request path (SPEC section 5): the connection
//! credential replaces whatever key the agent sent, a credential the
//! gateway refuses is renewed once and the request sent again, and the
//! gateway's own `{"message": ...}` errors become Anthropic-shaped ones.
//!
//! Owns: what goes to and comes back from the gateway's proxy endpoint.
//! The credential itself belongs to `gateway::link`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::body::{self, Body};
use super::pipeline::Outgoing;
use super::service::{closed_early, error_response, head_timeout};
use super::Shared;
use crate::anthropic::error::ApiError;
use crate::gateway::link::{Active, Link};
use crate::gateway::types::error_message;

/// How long a request waits for a renewed credential before it is told why.
const RENEW_WAIT: Duration = Duration::from_secs(30);
/// The largest error body read from the gateway to translate it.
const MAX_ERROR_BODY: usize = 256 * 1024;

/// Sends one request to the gateway and returns its answer, or the answer
/// hoopctl gives instead (`Err`, sent to the agent as it is).
pub(super) async fn exchange(
    shared: &Shared,
    link: &Arc<Link>,
    parts: http::request::Parts,
    outgoing: Outgoing,
    path_and_query: &str,
) -> Result<Response<Incoming>, Response<Body>> {
    let method = parts.method;
    let mut headers = parts.headers;
    // No agent-side key ever reaches the gateway.
    headers.remove(header::AUTHORIZATION);
    headers.remove("x-api-key");
    let active = link.current();
    let first = send(
        shared,
        &method,
        &headers,
        &active,
        outgoing.body,
        path_and_query,
    )
    .await?;
    let refusal = match classify(first).await {
        Answer::Through(answer) => return answer,
        Answer::Refused(why) => why,
    };
    tracing::info!(connection = link.connection(), credential = %active.id, %refusal, "the gateway refused the credential; renewing it");
    let fresh = renewed(link, active.generation).await?;
    let Some(replay) = outgoing.replay else {
        return Err(error_response(&ApiError::new(
            401,
            format!(
                "the gateway refused hoopctl's credential for connection {} ({refusal}); hoopctl \
                 renewed it, but this request's body had already been streamed: send it again",
                link.connection()
            ),
        )));
    };
    let second = send(
        shared,
        &method,
        &headers,
        &fresh,
        body::full(replay),
        path_and_query,
    )
    .await?;
    let refusal = match classify(second).await {
        Answer::Through(answer) => return answer,
        Answer::Refused(why) => why,
    };
    Err(error_response(&ApiError::final_(
        401,
        format!(
            "the gateway {} refused hoopctl's credential for connection {} even after renewing it \
             ({refusal}); run `hoopctl login`, then start the agent again",
            link.gateway(),
            link.connection()
        ),
    )))
}

/// A gateway answer, sorted: one to pass on (or hoopctl's answer in its
/// place), or the gateway's own refusal of the credential, with its message.
enum Answer {
    Through(Result<Response<Incoming>, Response<Body>>),
    Refused(String),
}

async fn classify(resp: Response<Incoming>) -> Answer {
    if resp.status() != StatusCode::UNAUTHORIZED {
        return Answer::Through(translate(resp).await);
    }
    match read_error(resp).await {
        Err(ours) => Answer::Through(Err(ours)),
        // The API's own 401 (behind the gateway) is the agent's to see.
        Ok((head, bytes)) if is_anthropic_error(&bytes) => {
            Answer::Through(Err(Response::from_parts(head, body::full(bytes))))
        }
        Ok((_, bytes)) => Answer::Refused(error_message(&bytes).unwrap_or_else(|| "401".into())),
    }
}

/// Waits (bounded) for the link to replace the credential of `generation`.
async fn renewed(link: &Arc<Link>, generation: u64) -> Result<Arc<Active>, Response<Body>> {
    // The renewal runs on its own task, so a request that gives up waiting
    // does not cancel it (a review may take a person minutes).
    let task = tokio::spawn({
        let link = link.clone();
        async move { link.renew(generation).await }
    });
    match tokio::time::timeout(RENEW_WAIT, task).await {
        Ok(Ok(Ok(fresh))) => Ok(fresh),
        Ok(Ok(Err(e))) => {
            let refused = matches!(e, crate::gateway::link::Error::Refused { .. });
            let message = if refused {
                format!(
                    "{e}. Ask for access again, or stop and start hoopctl to request a new review"
                )
            } else {
                format!(
                    "the gateway refused hoopctl's credential for connection {} and a new one could \
                     not be obtained: {e}. Run `hoopctl login`, then start the agent again",
                    link.connection()
                )
            };
            Err(error_response(&ApiError::final_(
                if refused { 403 } else { 401 },
                message,
            )))
        }
        Ok(Err(join)) => Err(error_response(&ApiError::new(
            500,
            format!("hoopctl: renewing the gateway credential failed: {join}"),
        ))),
        Err(_) => {
            let message = match link.waiting_for() {
                Some(url) => format!(
                    "the gateway needs a review before connection {} can be used again; approve it at \
                     {url}, then send the request again",
                    link.connection()
                ),
                None => format!(
                    "hoopctl is still renewing the gateway credential for connection {} after {}s; \
                     send the request again in a moment",
                    link.connection(),
                    RENEW_WAIT.as_secs()
                ),
            };
            Err(error_response(&ApiError::final_(403, message)))
        }
    }
}

async fn send(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    active: &Active,
    body: Body,
    path_and_query: &str,
) -> Result<Response<Incoming>, Response<Body>> {
    let origin = &active.origin;
    let uri = origin.uri(path_and_query).map_err(|e| {
        error_response(&ApiError::final_(
            400,
            format!("hoopctl: invalid request path: {e}"),
        ))
    })?;
    let mut req = Request::new(body);
    *req.method_mut() = method.clone();
    *req.uri_mut() = uri;
    *req.headers_mut() = headers.clone();
    let token = HeaderValue::from_str(active.token.expose()).map_err(|_| {
        error_response(&ApiError::final_(
            500,
            "hoopctl: the gateway's proxy token cannot be sent in a header",
        ))
    })?;
    req.headers_mut().insert(header::AUTHORIZATION, token);
    let started = std::time::Instant::now();
    let limit = shared.settings.timeouts.response_head;
    let e = match tokio::time::timeout(limit, shared.settings.client.request(req)).await {
        Ok(Ok(resp)) => return Ok(resp),
        Ok(Err(e)) => e,
        Err(_) => {
            tracing::warn!(%method, gateway = %origin, secs = limit.as_secs(), "no response head from the gateway in time");
            // Not retried by the agent: the gateway has its own timeouts
            // towards the API, so one that holds a request this long is
            // stuck, and each of the agent's retries would hold the person
            // as long again. The next request tries the gateway again.
            return Err(head_timeout(ApiError::final_(
                504,
                format!(
                    "the gateway's proxy endpoint {origin} sent no answer within {}s of the request; \
                     hoopctl stopped waiting. The gateway may be stuck or overloaded; send the request \
                     again later, or ask the gateway's operators",
                    limit.as_secs()
                ),
            )));
        }
    };
    let detail = crate::errors::one_line(&e);
    tracing::warn!(%method, gateway = %origin, error = %detail, "gateway request failed");
    let connect = shared.settings.timeouts.connect;
    let err = if crate::gateway::api::untrusted(&e) {
        ApiError::final_(
            502,
            format!(
                "the gateway's proxy endpoint {origin} presented a TLS certificate hoopctl does not \
                 trust ({detail}); if the gateway uses a private CA, start hoopctl with --gateway-ca FILE"
            ),
        )
    } else if e.is_connect() {
        let why = if started.elapsed() >= connect {
            format!("no connection within {}s", connect.as_secs())
        } else {
            detail
        };
        // Not retried by the agent: the person learns at once; the next
        // request tries the gateway again.
        ApiError::final_(
            502,
            format!(
                "hoopctl could not reach the gateway's proxy endpoint {origin} ({why}). The gateway \
                 may be down or unreachable from this network; hoopctl tries again with the next request"
            ),
        )
    } else if closed_early(&e) {
        ApiError::new(
            502,
            format!("the gateway's proxy endpoint {origin} closed the connection before answering ({detail})"),
        )
    } else {
        ApiError::new(
            502,
            format!("hoopctl could not forward the request to the gateway {origin} ({detail})"),
        )
    };
    Err(error_response(&err))
}

/// Reads a (small) error answer whole.
async fn read_error(
    resp: Response<Incoming>,
) -> Result<(http::response::Parts, Bytes), Response<Body>> {
    let (mut head, incoming) = resp.into_parts();
    let bytes = Limited::new(incoming, MAX_ERROR_BODY)
        .collect()
        .await
        .map_err(|e| {
            error_response(&ApiError::new(
                502,
                format!("hoopctl could not read the gateway's error answer: {e}"),
            ))
        })?
        .to_bytes();
    super::service::strip_hop_by_hop(&mut head.headers);
    head.headers.remove(header::CONTENT_ENCODING);
    head.headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Ok((head, bytes))
}

/// `{"type":"error","error":{...}}`: the API's own error, passed through.
fn is_anthropic_error(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|v| v["type"] == "error" && v["error"].is_object())
}

/// Successes and streams go on as they are; the gateway's own errors are
/// rewritten in Anthropic's shape with the gateway's message.
async fn translate(resp: Response<Incoming>) -> Result<Response<Incoming>, Response<Body>> {
    let status = resp.status();
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    let compressed = resp.headers().contains_key(header::CONTENT_ENCODING);
    if status.is_success() || status.is_informational() || !json || compressed {
        return Ok(resp);
    }
    let (head, bytes) = read_error(resp).await?;
    if is_anthropic_error(&bytes) {
        return Err(Response::from_parts(head, body::full(bytes)));
    }
    match error_message(&bytes) {
        Some(message) => {
            let mut err = ApiError::new(
                status.as_u16(),
                format!("the gateway answered {}: {message}", status.as_u16()),
            );
            err.should_retry = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
            Err(error_response(&err))
        }
        None => Err(Response::from_parts(head, body::full(bytes))),
    }
}

#[cfg(test)]
mod tests {
    use super::is_anthropic_error;

    #[test]
    fn anthropic_errors_are_told_from_the_gateways() {
        assert!(is_anthropic_error(
            br#"{"type":"error","error":{"type":"api_error","message":"x"}}"#
        ));
        assert!(!is_anthropic_error(
            br#"{"message":"Invalid Cookie/Authorization"}"#
        ));
        assert!(!is_anthropic_error(b"not json"));
    }
}
