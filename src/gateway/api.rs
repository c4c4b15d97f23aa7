//! The gateway's REST API (SPEC section 5): one client, JSON in and out.
//! Knows nothing of the proxy's request path; it only borrows its TLS
//! client so the API and the proxy endpoint trust the same roots.

use std::error::Error as _;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;

use super::types::{error_message, Credential, PublicServerInfo, Review, UserInfo};
use crate::proxy::body;
use crate::proxy::upstream::HttpClient;

/// How long connecting to the API may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one API call may take, connecting included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest answer read from the API.
const MAX_ANSWER: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid gateway URL {url:?}: {why}")]
    Url { url: String, why: String },
    #[error(transparent)]
    Setup(#[from] crate::proxy::upstream::Error),
    #[error("could not reach the gateway at {url}: {why}")]
    Unreachable { url: String, why: String },
    #[error("the gateway at {url} presented a TLS certificate hoopctl does not trust ({why}); if the gateway uses a private CA, pass --gateway-ca FILE (or set gateway_ca in the profile)")]
    Untrusted { url: String, why: String },
    #[error("the gateway at {url} did not answer within {}s", CALL_TIMEOUT.as_secs())]
    Timeout { url: String },
    #[error("the gateway did not accept your login ({message}); run `hoopctl login`")]
    Unauthorized { message: String },
    #[error("the gateway at {url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("the gateway at {url} sent an unexpected answer: {why}")]
    Invalid { url: String, why: String },
}

impl Error {
    /// The HTTP status the gateway answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            Error::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }
}

/// What a POST for a credential gave: a usable credential, or a review to wait for.
#[derive(Debug, Clone)]
pub enum Minted {
    Ready(Credential),
    Review {
        review_id: String,
        session_id: String,
    },
}

/// The gateway's API at one URL.
#[derive(Clone)]
pub struct Api {
    base: String,
    client: HttpClient,
}

/// A TLS verification failure anywhere in the error's causes.
fn is_untrusted(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        // An io::Error's `source` skips the error it wraps (and connectors
        // wrap io::Errors in io::Errors); unwrap them by hand.
        let mut inner = Some(c);
        while let Some(i) = inner {
            if let Some(tls) = i.downcast_ref::<rustls::Error>() {
                return matches!(
                    tls,
                    rustls::Error::InvalidCertificate(_)
                        | rustls::Error::InvalidCertRevocationList(_)
                );
            }
            inner = i
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|x| x as &(dyn std::error::Error + 'static));
        }
        cur = c.source();
    }
    false
}

impl Api {
    /// `base` is the gateway's URL (`https://gateway.example.com`).
    pub fn new(base: &str, client: HttpClient) -> Result<Self, Error> {
        let base = base.trim_end_matches('/').to_string();
        let uri: http::Uri = base
            .parse()
            .map_err(|e: http::uri::InvalidUri| Error::Url {
                url: base.clone(),
                why: e.to_string(),
            })?;
        if !matches!(uri.scheme_str(), Some("https" | "http")) || uri.host().is_none() {
            return Err(Error::Url {
                url: base,
                why: "it needs https://HOST".into(),
            });
        }
        Ok(Self { base, client })
    }

    /// An API client of its own that trusts the system roots plus `extra_cas`.
    pub fn open(base: &str, extra_cas: &[std::path::PathBuf]) -> Result<Self, Error> {
        use crate::proxy::upstream;
        let roots = upstream::roots(extra_cas)?;
        let client = upstream::client(roots, crate::supervisor::provider(), CONNECT_TIMEOUT)?;
        Self::new(base, client)
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// Where a person reviews a request in the gateway's web app.
    pub fn review_url(&self, review_id: &str) -> String {
        format!("{}/reviews/{review_id}", self.base)
    }

    /// One call; `Ok((status, body))` for any answer the gateway gave.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        json: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, Bytes), Error> {
        let url = format!("{}{path}", self.base);
        let mut req = Request::builder()
            .method(method)
            .uri(&url)
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("hoopctl/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match json {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                body::full(v.to_string())
            }
            None => body::empty(),
        };
        let req = req.body(body).map_err(|e| Error::Url {
            url: url.clone(),
            why: e.to_string(),
        })?;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| {
                let why = crate::errors::one_line(&e);
                if is_untrusted(&e) {
                    Error::Untrusted {
                        url: self.base.clone(),
                        why,
                    }
                } else {
                    Error::Unreachable {
                        url: self.base.clone(),
                        why,
                    }
                }
            })?;
            let status = resp.status();
            let bytes = Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| Error::Unreachable {
                    url: self.base.clone(),
                    why: format!("reading the answer: {e}"),
                })?
                .to_bytes();
            Ok((status, bytes))
        };
        tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| Error::Timeout {
                url: self.base.clone(),
            })?
    }

    fn failure(&self, status: StatusCode, body: &[u8]) -> Error {
        let message = error_message(body).unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("no message")
                    .to_string()
            } else {
                text.chars().take(300).collect()
            }
        });
        if status == StatusCode::UNAUTHORIZED {
            Error::Unauthorized { message }
        } else {
            Error::Status {
                url: self.base.clone(),
                status: status.as_u16(),
                message,
            }
        }
    }

    fn parse<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T, Error> {
        serde_json::from_slice(body).map_err(|e| Error::Invalid {
            url: self.base.clone(),
            why: e.to_string(),
        })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<T, Error> {
        let (status, bytes) = self.call(method, path, token, body).await?;
        if !status.is_success() {
            return Err(self.failure(status, &bytes));
        }
        self.parse(&bytes)
    }

    /// `GET /api/publicserverinfo` (no login needed).
    pub async fn public_server_info(&self) -> Result<PublicServerInfo, Error> {
        self.json(Method::GET, "/api/publicserverinfo", None, None)
            .await
    }

    /// `GET /api/userinfo`.
    pub async fn userinfo(&self, token: &str) -> Result<UserInfo, Error> {
        self.json(Method::GET, "/api/userinfo", Some(token), None)
            .await
    }

    /// `GET /api/connections/{name}/credentials`: the active credential, if any.
    pub async fn active_credential(
        &self,
        token: &str,
        connection: &str,
    ) -> Result<Option<Credential>, Error> {
        let path = format!("/api/connections/{}/credentials", segment(connection));
        let (status, bytes) = self.call(Method::GET, &path, Some(token), None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.failure(status, &bytes));
        }
        self.parse(&bytes).map(Some)
    }

    /// `POST /api/connections/{name}/credentials`. The body is never empty:
    /// the real gateway rejects that with `400 EOF`.
    pub async fn create_credential(
        &self,
        token: &str,
        connection: &str,
        duration_secs: Option<u64>,
    ) -> Result<Minted, Error> {
        let path = format!("/api/connections/{}/credentials", segment(connection));
        let body = match duration_secs {
            Some(d) => serde_json::json!({ "access_duration_seconds": d }),
            None => serde_json::json!({}),
        };
        let (status, bytes) = self
            .call(Method::POST, &path, Some(token), Some(&body))
            .await?;
        if !status.is_success() {
            return Err(self.failure(status, &bytes));
        }
        let cred: Credential = self.parse(&bytes)?;
        let waiting = status == StatusCode::ACCEPTED
            || (cred.has_review && cred.connection_credentials.is_none());
        if !waiting {
            return self.ready(cred);
        }
        match (cred.review_id.clone(), cred.session_id.clone()) {
            (Some(review_id), Some(session_id)) => Ok(Minted::Review {
                review_id,
                session_id,
            }),
            _ => Err(Error::Invalid {
                url: self.base.clone(),
                why:
                    "the connection needs a review but the answer names no review_id and session_id"
                        .into(),
            }),
        }
    }

    fn ready(&self, cred: Credential) -> Result<Minted, Error> {
        if cred.connection_credentials.is_none() {
            return Err(Error::Invalid {
                url: self.base.clone(),
                why: "the answer carries no connection_credentials".into(),
            });
        }
        Ok(Minted::Ready(cred))
    }

    /// `GET /api/reviews/{id}`.
    pub async fn review(&self, token: &str, review_id: &str) -> Result<Review, Error> {
        let path = format!("/api/reviews/{}", segment(review_id));
        self.json(Method::GET, &path, Some(token), None).await
    }

    /// `POST /api/connections/{name}/credentials/{session_id}`: the
    /// credential of an approved review.
    pub async fn resume(
        &self,
        token: &str,
        connection: &str,
        session_id: &str,
    ) -> Result<Credential, Error> {
        let path = format!(
            "/api/connections/{}/credentials/{}",
            segment(connection),
            segment(session_id)
        );
        let cred: Credential = self
            .json(
                Method::POST,
                &path,
                Some(token),
                Some(&serde_json::json!({})),
            )
            .await?;
        match self.ready(cred)? {
            Minted::Ready(c) => Ok(c),
            Minted::Review { .. } => Err(Error::Invalid {
                url: self.base.clone(),
                why: "the resumed credential is still waiting for review".into(),
            }),
        }
    }
}

/// A path segment, percent-encoded where a name could break the path.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("base", &self.base).finish()
    }
}

/// Whether a client error is a TLS verification failure (for callers that
/// talk to the proxy endpoint with the same client).
pub fn untrusted(e: &hyper_util::client::legacy::Error) -> bool {
    is_untrusted(e) || e.source().is_some_and(is_untrusted)
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn names_cannot_escape_their_path_segment() {
        assert_eq!(segment("claude-code"), "claude-code");
        assert_eq!(segment("../admin?x=1"), "%2E%2E%2Fadmin%3Fx%3D1");
    }
}
