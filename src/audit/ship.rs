//! Live shipping of the record to a webhook (`[audit.webhook]`). The store
//! is the spool: the shipper posts events in id order from a cursor kept
//! in the database, and moves the cursor only after the receiver accepted
//! a batch. A receiver that is down gets everything, in order, when it is
//! back, even across hoopctl restarts.
//!
//! Owns: the webhook's wire format (a JSON array of exported events per
//! POST) and its retry schedule.

use std::path::PathBuf;
use std::time::Duration;

use http::{header, HeaderName, HeaderValue, Method, Request};
use http_body_util::BodyExt;
use tokio_util::sync::CancellationToken;

use super::store::{self, Reader};
use crate::policy::audit::Webhook;
use crate::proxy::body;
use crate::proxy::upstream::HttpClient;

/// Retry delays after a failed POST: from the first to the cap.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How long one POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the store is looked at when nothing announces commits.
const IDLE_POLL: Duration = Duration::from_secs(2);

pub struct Shipper {
    db: PathBuf,
    hook: Webhook,
    client: HttpClient,
    committed: tokio::sync::watch::Receiver<i64>,
}

/// The cursor's name for a webhook URL: each URL has its own position.
pub fn cursor_name(url: &str) -> String {
    format!("webhook:{url}")
}

impl Shipper {
    pub fn new(
        db: PathBuf,
        hook: Webhook,
        client: HttpClient,
        committed: tokio::sync::watch::Receiver<i64>,
    ) -> Self {
        Self {
            db,
            hook,
            client,
            committed,
        }
    }

    /// Ships until `stop`; then keeps trying for up to `grace` to deliver
    /// what is left (the rest waits in the store for the next run).
    pub async fn run(mut self, stop: CancellationToken, grace: Duration) {
        let name = cursor_name(&self.hook.url);
        let mut delay = RETRY_FIRST;
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            if deadline.is_none() && stop.is_cancelled() {
                deadline = Some(tokio::time::Instant::now() + grace);
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return;
            }
            let batch = self.next_batch(&name).await;
            let events = match batch {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook: could not read the audit store");
                    if self.pause(&stop, deadline, delay).await {
                        return;
                    }
                    continue;
                }
            };
            let Some(last) = events.last().map(|e| e.id) else {
                if deadline.is_some() {
                    return;
                }
                // Nothing to send: wait for a commit (or poll now and then).
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = self.committed.changed() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
                continue;
            };
            let first = events.first().map_or(last, |e| e.id);
            let payload: Vec<serde_json::Value> = events.iter().map(|e| e.to_json()).collect();
            match self.post(&payload, first, last).await {
                Ok(()) => {
                    delay = RETRY_FIRST;
                    let (db, n) = (self.db.clone(), name.clone());
                    let saved =
                        tokio::task::spawn_blocking(move || store::set_cursor(&db, &n, last)).await;
                    let failed = match saved {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e.to_string()),
                        Err(e) => Some(e.to_string()),
                    };
                    if let Some(e) = failed {
                        tracing::warn!(error = %e, "webhook: could not save the shipping cursor");
                    }
                    tracing::debug!(first, last, "webhook: events delivered");
                }
                Err(why) => {
                    tracing::warn!(url = %self.hook.url, error = %why, retry_in = ?delay, "webhook: delivery failed; the events stay spooled");
                    if self.pause(&stop, deadline, delay).await {
                        return;
                    }
                    delay = (delay * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// Sleeps `delay`; true when the grace period ran out meanwhile.
    async fn pause(
        &self,
        stop: &CancellationToken,
        deadline: Option<tokio::time::Instant>,
        delay: Duration,
    ) -> bool {
        match deadline {
            Some(d) => {
                tokio::time::sleep_until(d.min(tokio::time::Instant::now() + delay)).await;
                tokio::time::Instant::now() >= d
            }
            None => {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(delay) => {}
                }
                false
            }
        }
    }

    async fn next_batch(&self, name: &str) -> Result<Vec<store::StoredEvent>, String> {
        let (db, name, limit) = (self.db.clone(), name.to_string(), self.hook.batch);
        tokio::task::spawn_blocking(move || {
            let after = store::cursor(&db, &name)?;
            Reader::open(&db)?.events_after(after, limit)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
    }

    async fn post(
        &self,
        payload: &[serde_json::Value],
        first: i64,
        last: i64,
    ) -> Result<(), String> {
        let body = serde_json::to_vec(payload).map_err(|e| e.to_string())?;
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(&self.hook.url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("hoopctl/", env!("CARGO_PKG_VERSION")),
            )
            .header("x-hoopctl-events", format!("{first}-{last}"));
        for (k, v) in &self.hook.headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                req = req.header(k, v);
            }
        }
        let req = req.body(body::full(body)).map_err(|e| e.to_string())?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| crate::errors::one_line(&e))?;
            let status = resp.status();
            // Read the answer so the connection can be reused.
            let _ = resp.into_body().collect().await;
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("the receiver answered {status}"))
            }
        };
        tokio::time::timeout(POST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("no answer within {}s", POST_TIMEOUT.as_secs()))?
    }
}
