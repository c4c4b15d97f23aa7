//! The gateway's JSON (SPEC section 5). The only place it is defined.

use serde::{Deserialize, Deserializer};

use crate::secret::Secret;

/// `GET /api/publicserverinfo`.
#[derive(Debug, Clone, Deserialize)]
pub struct PublicServerInfo {
    #[serde(default)]
    pub auth_method: Option<String>,
    /// Extension: where the CLI logs in.
    #[serde(default)]
    pub oidc_issuer: Option<String>,
    #[serde(default)]
    pub oidc_client_id: Option<String>,
}

/// `GET /api/userinfo` (the fields hoopctl shows).
#[derive(Debug, Clone, Deserialize)]
pub struct UserInfo {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub org_name: Option<String>,
}

/// A connection credential: `POST /api/connections/{name}/credentials`,
/// its resumption after a review, and `GET` of the active one.
#[derive(Debug, Clone, Deserialize)]
pub struct Credential {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub connection_name: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub has_review: bool,
    #[serde(default)]
    pub review_id: Option<String>,
    /// Absent (or null) while a review is pending.
    #[serde(default)]
    pub connection_credentials: Option<ConnectionCredentials>,
    #[serde(default)]
    pub created_at: Option<String>,
    /// Null for a credential without a duration.
    #[serde(default)]
    pub expire_at: Option<String>,
}

/// Where the HTTP proxy endpoint is and the token it accepts.
#[derive(Debug, Clone, Deserialize)]
pub struct ConnectionCredentials {
    pub hostname: String,
    /// A JSON string on the real gateway; a number is tolerated.
    #[serde(deserialize_with = "port")]
    pub port: u16,
    #[serde(deserialize_with = "secret")]
    pub proxy_token: Secret,
}

/// `GET /api/reviews/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Review {
    #[serde(default)]
    pub id: Option<String>,
    pub status: String,
    #[serde(default)]
    pub rejection_reason: Option<String>,
}

/// Where a review stands, as far as a client cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewState {
    Pending,
    Approved,
    /// REJECTED, REVOKED or any other final answer, with the reason.
    Refused {
        status: String,
        reason: Option<String>,
    },
}

impl Review {
    pub fn state(&self) -> ReviewState {
        match self.status.to_ascii_uppercase().as_str() {
            "PENDING" | "" => ReviewState::Pending,
            "APPROVED" => ReviewState::Approved,
            other => ReviewState::Refused {
                status: other.to_string(),
                reason: self.rejection_reason.clone().filter(|r| !r.is_empty()),
            },
        }
    }
}

/// The error body of every gateway answer that is not a success.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    pub message: String,
}

/// `{"message": "..."}` from a gateway error body, if it is one.
pub fn error_message(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|e| e.message)
}

fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Text(String),
        Number(u16),
    }
    match Port::deserialize(d)? {
        Port::Number(n) => Ok(n),
        Port::Text(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("port {s:?} is not a port number"))),
    }
}

fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    String::deserialize(d).map(Secret::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_as_the_real_gateway_sends_it() {
        let c: Credential = serde_json::from_str(
            r#"{"id":"c1","connection_name":"claude-code","connection_type":"httpproxy",
                "connection_subtype":"claude-code",
                "connection_credentials":{"hostname":"localhost","port":"8443",
                  "proxy_token":"claude-code-abc","command":"x"},
                "session_id":"s1","has_review":false,"created_at":"2026-11-22T10:00:00Z",
                "expire_at":null}"#,
        )
        .unwrap();
        let cc = c.connection_credentials.unwrap();
        assert_eq!((cc.hostname.as_str(), cc.port), ("localhost", 8443));
        assert_eq!(cc.proxy_token.expose(), "claude-code-abc");
        assert!(!format!("{cc:?}").contains("claude-code-abc"));
        assert!(c.expire_at.is_none());
        let numeric: ConnectionCredentials =
            serde_json::from_str(r#"{"hostname":"h","port":443,"proxy_token":"t"}"#).unwrap();
        assert_eq!(numeric.port, 443);
        assert!(serde_json::from_str::<ConnectionCredentials>(
            r#"{"hostname":"h","port":"http","proxy_token":"t"}"#
        )
        .is_err());
    }

    #[test]
    fn a_review_pending_then_refused() {
        let r: Credential = serde_json::from_str(
            r#"{"id":"c2","has_review":true,"review_id":"r1","session_id":"s2","connection_credentials":null}"#,
        )
        .unwrap();
        assert!(r.has_review && r.connection_credentials.is_none());
        let rev: Review =
            serde_json::from_str(r#"{"id":"r1","status":"REJECTED","rejection_reason":"no"}"#)
                .unwrap();
        assert_eq!(
            rev.state(),
            ReviewState::Refused {
                status: "REJECTED".into(),
                reason: Some("no".into())
            }
        );
        assert_eq!(
            error_message(br#"{"message":"EOF"}"#).as_deref(),
            Some("EOF")
        );
        assert_eq!(error_message(b"<html>"), None);
    }
}
