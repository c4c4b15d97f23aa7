//! The gateway's JSON (SPEC section 5). The only place it is defined.

use serde::Deserialize;

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
