//! The live link to the gateway: one connection credential at a time.
//! It is obtained once at start (reusing an active one, waiting out a
//! review), renewed before it expires, and renewed at once when the proxy
//! endpoint refuses it. Requests read the current one without waiting.
//!
//! Owns: the credential lifecycle. Must not: touch requests (the proxy
//! asks for [`Link::current`] and reports refusals to [`Link::renew`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::api::{self, Api, Minted};
use super::types::{Credential, ReviewState};
use crate::auth::session::{self, TokenSource};
use crate::proxy::upstream::Origin;
use crate::secret::Secret;

/// An active credential is reused only when it has at least this long to live.
const REUSE_MIN: Duration = Duration::from_secs(60);
/// Review polling: first interval, growth, and cap.
const POLL_FIRST: Duration = Duration::from_millis(1000);
const POLL_MAX: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Api(#[from] api::Error),
    #[error("{0}")]
    Login(#[from] session::Error),
    #[error("the gateway refused access to connection {connection}: review {status}{}", reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Refused {
        connection: String,
        status: String,
        reason: Option<String>,
    },
    #[error("the gateway gave connection {connection} an unusable proxy endpoint: {why}")]
    Endpoint { connection: String, why: String },
}

/// A usable credential.
#[derive(Debug)]
pub struct Active {
    /// Grows with each credential this link holds.
    pub generation: u64,
    pub id: String,
    /// The HTTP proxy endpoint, `https://{hostname}:{port}`.
    pub origin: Origin,
    /// Sent as `Authorization` to the proxy endpoint.
    pub token: Secret,
    pub expire_at: Option<DateTime<Utc>>,
    /// When this link started using it.
    pub since: DateTime<Utc>,
    /// Reused from an earlier run rather than minted now.
    pub reused: bool,
}

impl Active {
    /// When to renew: a fifth of its remaining life before expiry
    /// (between 2 s and 5 min early); `None` when it never expires.
    pub fn renew_at(&self) -> Option<DateTime<Utc>> {
        let at = self.expire_at?;
        let life = (at - self.since).num_milliseconds().max(0);
        let margin = (life / 5).clamp(2_000, 300_000);
        Some(at - chrono::Duration::milliseconds(margin))
    }
}

/// What the link tells the person waiting for it.
#[derive(Debug, Clone)]
pub enum Progress {
    /// An active credential from an earlier run is used again.
    Reused,
    /// The connection needs a review; a person approves it at `url`.
    ReviewRequired {
        review_id: String,
        url: String,
    },
    /// A poll of the review, with its status or why the poll failed.
    ReviewPoll {
        status: String,
    },
    ReviewApproved,
}

pub struct Link {
    minter: Minter,
    current: RwLock<Arc<Active>>,
    /// One renewal at a time; callers that waited take its result.
    renewing: tokio::sync::Mutex<()>,
    /// The review a renewal is waiting for, to tell the agent where.
    waiting_for: Mutex<Option<String>>,
}

/// Gets credentials from the API.
struct Minter {
    api: Api,
    tokens: TokenSource,
    connection: String,
    duration: Option<u64>,
    generation: AtomicU64,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("gateway", &self.minter.api.url())
            .field("connection", &self.minter.connection)
            .finish()
    }
}

fn parse_time(t: Option<&str>) -> Option<DateTime<Utc>> {
    let t = t?;
    match DateTime::parse_from_rfc3339(t) {
        Ok(d) => Some(d.with_timezone(&Utc)),
        Err(e) => {
            tracing::warn!(expire_at = t, error = %e, "unreadable expire_at; the credential is treated as not expiring");
            None
        }
    }
}

impl Link {
    /// Gets a usable credential for `connection` (reusing an active one),
    /// waiting for a review when the gateway asks for one.
    pub async fn establish(
        api: Api,
        tokens: TokenSource,
        connection: &str,
        duration: Option<u64>,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<Arc<Self>, Error> {
        let minter = Minter {
            api,
            tokens,
            connection: connection.to_string(),
            duration,
            generation: AtomicU64::new(0),
        };
        let first = minter.obtain(true, progress).await?;
        Ok(Arc::new(Self {
            minter,
            current: RwLock::new(Arc::new(first)),
            renewing: tokio::sync::Mutex::new(()),
            waiting_for: Mutex::new(None),
        }))
    }

    pub fn connection(&self) -> &str {
        &self.minter.connection
    }

    pub fn gateway(&self) -> &str {
        self.minter.api.url()
    }

    /// The credential to use now.
    pub fn current(&self) -> Arc<Active> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The review URL a renewal is waiting for, if any.
    pub fn waiting_for(&self) -> Option<String> {
        match self.waiting_for.lock() {
            Ok(w) => w.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the credential of `failed` generation with a new one. When
    /// another caller already did, its credential is returned.
    pub async fn renew(&self, failed: u64) -> Result<Arc<Active>, Error> {
        let _one = self.renewing.lock().await;
        let cur = self.current();
        if cur.generation != failed {
            return Ok(cur);
        }
        let waiting = |p: Progress| {
            if let Progress::ReviewRequired { url, .. } = p {
                tracing::warn!(connection = %self.minter.connection, %url, "renewing the gateway credential needs a review");
                if let Ok(mut w) = self.waiting_for.lock() {
                    *w = Some(url);
                }
            }
        };
        let result = self.minter.obtain(false, &waiting).await;
        if let Ok(mut w) = self.waiting_for.lock() {
            *w = None;
        }
        let fresh = Arc::new(result?);
        tracing::info!(connection = %self.minter.connection, credential = %fresh.id, expire_at = ?fresh.expire_at, "gateway credential renewed");
        match self.current.write() {
            Ok(mut c) => *c = fresh.clone(),
            Err(p) => *p.into_inner() = fresh.clone(),
        }
        Ok(fresh)
    }

    /// Renews each credential before it expires, until `stop`. A failed
    /// renewal is retried with backoff; requests keep the old credential
    /// meanwhile.
    pub async fn keep_fresh(self: Arc<Self>, stop: CancellationToken) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let cur = self.current();
            let Some(at) = cur.renew_at() else {
                // Never expires; a refusal still renews it through `renew`.
                stop.cancelled().await;
                return;
            };
            let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            if self.current().generation != cur.generation {
                continue;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                r = self.renew(cur.generation) => match r {
                    Ok(_) => backoff = Duration::from_secs(1),
                    Err(e) => {
                        tracing::warn!(connection = %self.minter.connection, error = %e, retry_in = ?backoff, "could not renew the gateway credential");
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
        }
    }
}

impl Minter {
    /// Runs `call` with an access token; when the gateway refuses it,
    /// once more with a refreshed one.
    async fn authed<T, F, Fut>(&self, call: F) -> Result<T, Error>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, api::Error>>,
    {
        let token = self.tokens.access_token().await?;
        match call(token.clone()).await {
            Err(refused @ api::Error::Unauthorized { .. }) => {
                let fresh = self.tokens.after_rejection(&token).await?;
                if fresh == token {
                    return Err(refused.into());
                }
                Ok(call(fresh).await?)
            }
            other => Ok(other?),
        }
    }

    /// A usable credential: the active one when `reuse` and it lives long
    /// enough, else a new one (after a review if the gateway wants one).
    async fn obtain(
        &self,
        reuse: bool,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<Active, Error> {
        let (api, name) = (&self.api, self.connection.as_str());
        if reuse {
            let found = self
                .authed(|t| async move { api.active_credential(&t, name).await })
                .await?;
            if let Some(c) = found {
                let expire = parse_time(c.expire_at.as_deref());
                let lives = expire.is_none_or(|at| {
                    (at - Utc::now()).to_std().unwrap_or(Duration::ZERO) >= REUSE_MIN
                });
                if c.connection_credentials.is_some() && lives {
                    progress(Progress::Reused);
                    return self.activate(c, true);
                }
            }
        }
        let duration = self.duration;
        let minted = self
            .authed(|t| async move { api.create_credential(&t, name, duration).await })
            .await?;
        let cred = match minted {
            Minted::Ready(c) => c,
            Minted::Review {
                review_id,
                session_id,
            } => {
                progress(Progress::ReviewRequired {
                    url: api.review_url(&review_id),
                    review_id: review_id.clone(),
                });
                self.await_review(&review_id, progress).await?;
                progress(Progress::ReviewApproved);
                let sid = session_id.as_str();
                self.authed(|t| async move { api.resume(&t, name, sid).await })
                    .await?
            }
        };
        self.activate(cred, false)
    }

    /// Polls the review with backoff until it is decided.
    async fn await_review(
        &self,
        review_id: &str,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<(), Error> {
        let api = &self.api;
        let mut interval = POLL_FIRST;
        loop {
            tokio::time::sleep(interval).await;
            interval = (interval * 3 / 2).min(POLL_MAX);
            let review = self
                .authed(|t| async move { api.review(&t, review_id).await })
                .await;
            match review {
                Ok(r) => match r.state() {
                    ReviewState::Pending => progress(Progress::ReviewPoll {
                        status: r.status.clone(),
                    }),
                    ReviewState::Approved => return Ok(()),
                    ReviewState::Refused { status, reason } => {
                        return Err(Error::Refused {
                            connection: self.connection.clone(),
                            status,
                            reason,
                        })
                    }
                },
                // The gateway blinked; the review is still there.
                Err(Error::Api(
                    e @ (api::Error::Unreachable { .. } | api::Error::Timeout { .. }),
                )) => progress(Progress::ReviewPoll {
                    status: format!("retrying: {e}"),
                }),
                Err(Error::Api(e)) if e.status().is_some_and(|s| s >= 500) => {
                    progress(Progress::ReviewPoll {
                        status: format!("retrying: {e}"),
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn activate(&self, cred: Credential, reused: bool) -> Result<Active, Error> {
        let bad = |why: String| Error::Endpoint {
            connection: self.connection.clone(),
            why,
        };
        let cc = cred
            .connection_credentials
            .ok_or_else(|| bad("no connection_credentials".into()))?;
        if cc.proxy_token.expose().is_empty() {
            return Err(bad("an empty proxy_token".into()));
        }
        if http::HeaderValue::from_str(cc.proxy_token.expose()).is_err() {
            return Err(bad("a proxy_token that cannot be sent in a header".into()));
        }
        let origin = Origin::https(&cc.hostname, cc.port)
            .map_err(|e| bad(format!("{}:{}: {e}", cc.hostname, cc.port)))?;
        Ok(Active {
            generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
            id: cred.id.unwrap_or_default(),
            origin,
            token: cc.proxy_token,
            expire_at: parse_time(cred.expire_at.as_deref()),
            since: Utc::now(),
            reused,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(life_secs: i64) -> Active {
        let since = Utc::now();
        Active {
            generation: 1,
            id: "c".into(),
            origin: Origin::https("localhost", 8443).unwrap(),
            token: Secret::new("t"),
            expire_at: Some(since + chrono::Duration::seconds(life_secs)),
            since,
            reused: false,
        }
    }

    #[test]
    fn renewal_comes_a_fifth_of_the_life_early_within_bounds() {
        let a = active(3600);
        let early = a.expire_at.unwrap() - a.renew_at().unwrap();
        assert_eq!(early.num_seconds(), 300);
        let a = active(100);
        assert_eq!(
            (a.expire_at.unwrap() - a.renew_at().unwrap()).num_seconds(),
            20
        );
        let a = active(4);
        assert_eq!(
            (a.expire_at.unwrap() - a.renew_at().unwrap()).num_seconds(),
            2
        );
        let mut never = active(10);
        never.expire_at = None;
        assert!(never.renew_at().is_none());
    }
}
