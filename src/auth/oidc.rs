//! OpenID Connect against the organisation's provider: discovery, the
//! authorization code flow with PKCE (S256), the device authorization
//! grant (RFC 8628), refresh, revocation (RFC 7009), and validation of
//! every ID token before anything is stored. Built on `openidconnect`.
//!
//! Owns: the protocol. Must not: print, open browsers or store tokens.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClient, CoreClientAuthMethod, CoreDeviceAuthorizationResponse, CoreGrantType, CoreIdToken,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType, CoreTokenResponse,
};
use openidconnect::{
    reqwest, AdditionalProviderMetadata, AuthorizationCode, ClientId, CsrfToken,
    DeviceAuthorizationUrl, IssuerUrl, JsonWebKeySet, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl, RefreshToken, Scope,
    TokenResponse,
};
use serde::{Deserialize, Serialize};

use super::store::Tokens;

/// Clock skew tolerated on `exp` and `iat`.
const SKEW: TimeDelta = TimeDelta::seconds(60);
const HTTP_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid issuer URL {0:?}: {1}")]
    IssuerUrl(String, String),
    #[error("could not read the OpenID configuration of {issuer}: {why}")]
    Discovery { issuer: String, why: String },
    #[error("the provider {issuer} does not offer the device flow (no device_authorization_endpoint); log in with the browser instead")]
    NoDeviceFlow { issuer: String },
    #[error("the provider refused the login: {0}")]
    Denied(String),
    #[error("the login callback is invalid: {0}; nothing was stored")]
    Callback(String),
    #[error("could not exchange the authorization code at {issuer}: {why}")]
    Exchange { issuer: String, why: String },
    #[error("the ID token from {issuer} failed validation ({why}); nothing was stored")]
    IdToken { issuer: String, why: String },
    #[error("the device code expired before the login was completed; run `hoopctl login --device` again")]
    DeviceExpired,
    #[error("could not refresh the session at {issuer} ({why}); run `hoopctl login`")]
    Refresh { issuer: String, why: String },
    #[error("could not revoke the token at {issuer}: {why}")]
    Revoke { issuer: String, why: String },
    #[error("could not set up HTTPS: {0}")]
    Http(String),
}

/// Discovery fields beyond the core ones that hoopctl uses.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Extra {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}
impl AdditionalProviderMetadata for Extra {}

type Metadata = ProviderMetadata<
    Extra,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// A discovered provider, for one client id.
pub struct Provider {
    metadata: Metadata,
    client_id: ClientId,
    issuer: String,
    http: reqwest::Client,
}

/// What the authorization request left to check when the browser comes back.
pub struct Pending {
    pub url: openidconnect::url::Url,
    pub state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
    redirect: RedirectUrl,
}

/// The device flow's first answer: what the user must do.
pub struct DeviceStart {
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub user_code: String,
    pub expires_in: Duration,
    details: CoreDeviceAuthorizationResponse,
}

/// The provider's error for a failed token request, e.g. `invalid_grant (...)`.
fn token_error<E: std::error::Error + 'static, T: openidconnect::ErrorResponse + 'static>(
    e: &openidconnect::RequestTokenError<E, T>,
) -> String {
    match e {
        openidconnect::RequestTokenError::ServerResponse(r) => r.to_string(),
        other => crate::errors::one_line(other),
    }
}

impl Provider {
    /// Reads `/.well-known/openid-configuration` and the provider's keys.
    pub async fn discover(issuer: &str, client_id: &str) -> Result<Self, Error> {
        let url = IssuerUrl::new(issuer.to_string())
            .map_err(|e| Error::IssuerUrl(issuer.into(), e.to_string()))?;
        let http = reqwest::ClientBuilder::new()
            // Following redirects would open the client to SSRF.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Http(e.to_string()))?;
        let metadata =
            Metadata::discover_async(url, &http)
                .await
                .map_err(|e| Error::Discovery {
                    issuer: issuer.into(),
                    why: crate::errors::one_line(&e),
                })?;
        Ok(Self {
            metadata,
            client_id: ClientId::new(client_id.into()),
            issuer: issuer.into(),
            http,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn client(
        &self,
    ) -> CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(self.metadata.clone(), self.client_id.clone(), None)
    }

    /// Whether refresh tokens can be asked for with `offline_access`.
    pub fn offers_offline_access(&self) -> bool {
        self.metadata
            .scopes_supported()
            .is_some_and(|s| s.iter().any(|s| s.as_str() == "offline_access"))
    }

    /// Whether the provider sends the RFC 9207 `iss` parameter on callbacks.
    pub fn sends_iss(&self) -> bool {
        self.metadata
            .additional_metadata()
            .authorization_response_iss_parameter_supported
            == Some(true)
    }

    pub fn revocation_endpoint(&self) -> Option<&str> {
        self.metadata
            .additional_metadata()
            .revocation_endpoint
            .as_deref()
    }

    fn scopes(&self, extra: &[String]) -> Vec<Scope> {
        let mut scopes: Vec<String> = vec!["email".into(), "profile".into()];
        if self.offers_offline_access() {
            scopes.push("offline_access".into());
        }
        for s in extra {
            if !scopes.contains(s) && s != "openid" {
                scopes.push(s.clone());
            }
        }
        scopes.into_iter().map(Scope::new).collect()
    }

    /// Builds the authorization URL (PKCE S256, state, nonce) for `redirect`.
    pub fn authorize(&self, redirect: &str, extra_scopes: &[String]) -> Result<Pending, Error> {
        let redirect =
            RedirectUrl::new(redirect.to_string()).map_err(|e| Error::Callback(e.to_string()))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = self.client().set_redirect_uri(redirect.clone());
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.scopes(extra_scopes) {
            request = request.add_scope(scope);
        }
        if self.offers_offline_access() {
            // OIDC Core 11: offline_access needs prompt=consent for a refresh token.
            request = request.add_prompt(CoreAuthPrompt::Consent);
        }
        let (url, state, nonce) = request.url();
        Ok(Pending {
            url,
            state,
            nonce,
            verifier,
            redirect,
        })
    }

    /// Checks the callback's `iss` (RFC 9207) against this provider.
    pub fn check_iss(&self, iss: Option<&str>) -> Result<(), Error> {
        match iss {
            Some(iss)
                if iss != self.issuer
                    && iss.trim_end_matches('/') != self.issuer.trim_end_matches('/') =>
            {
                Err(Error::Callback(format!(
                    "it names issuer {iss}, not {}",
                    self.issuer
                )))
            }
            None if self.sends_iss() => Err(Error::Callback("the iss parameter is missing".into())),
            _ => Ok(()),
        }
    }

    /// Exchanges the code and validates the ID token.
    pub async fn exchange(&self, pending: Pending, code: &str) -> Result<Tokens, Error> {
        let err = |why: String| Error::Exchange {
            issuer: self.issuer.clone(),
            why,
        };
        let client = self.client().set_redirect_uri(pending.redirect);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| err(e.to_string()))?
            .set_pkce_verifier(pending.verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| err(token_error(&e)))?;
        self.tokens(&response, Some(&pending.nonce), None).await
    }

    /// Starts the device authorization grant.
    pub async fn device_start(&self, extra_scopes: &[String]) -> Result<DeviceStart, Error> {
        let Some(endpoint) = self
            .metadata
            .additional_metadata()
            .device_authorization_endpoint
            .clone()
        else {
            return Err(Error::NoDeviceFlow {
                issuer: self.issuer.clone(),
            });
        };
        let url = DeviceAuthorizationUrl::new(endpoint).map_err(|e| Error::Http(e.to_string()))?;
        let client = self.client().set_device_authorization_url(url);
        let mut request = client.exchange_device_code();
        for scope in self.scopes(extra_scopes) {
            request = request.add_scope(scope);
        }
        let details: CoreDeviceAuthorizationResponse = request
            .request_async(&self.http)
            .await
            .map_err(|e| Error::Exchange {
                issuer: self.issuer.clone(),
                why: token_error(&e),
            })?;
        Ok(DeviceStart {
            verification_uri: details.verification_uri().to_string(),
            verification_uri_complete: details
                .verification_uri_complete()
                .map(|u| u.secret().to_string()),
            user_code: details.user_code().secret().to_string(),
            expires_in: details.expires_in(),
            details,
        })
    }

    /// Polls until the user approves (honouring `authorization_pending` and
    /// `slow_down`), then validates the ID token.
    pub async fn device_finish(&self, start: DeviceStart) -> Result<Tokens, Error> {
        use openidconnect::DeviceCodeErrorResponseType as D;
        let endpoint = self
            .metadata
            .additional_metadata()
            .device_authorization_endpoint
            .clone()
            .unwrap_or_default();
        let url = DeviceAuthorizationUrl::new(endpoint).map_err(|e| Error::Http(e.to_string()))?;
        let client = self.client().set_device_authorization_url(url);
        let response = client
            .exchange_device_access_token(&start.details)
            .map_err(|e| Error::Exchange {
                issuer: self.issuer.clone(),
                why: e.to_string(),
            })?
            .request_async(&self.http, tokio::time::sleep, Some(start.expires_in))
            .await;
        let response = match response {
            Ok(r) => r,
            Err(openidconnect::RequestTokenError::ServerResponse(r)) => {
                return Err(match r.error() {
                    D::ExpiredToken => Error::DeviceExpired,
                    D::AccessDenied => {
                        Error::Denied("access_denied: the login was denied in the browser".into())
                    }
                    _ => Error::Exchange {
                        issuer: self.issuer.clone(),
                        why: r.to_string(),
                    },
                })
            }
            Err(e) => {
                return Err(Error::Exchange {
                    issuer: self.issuer.clone(),
                    why: token_error(&e),
                })
            }
        };
        // The device flow carries no nonce.
        self.tokens(&response, None, None).await
    }

    /// Uses the refresh token; the provider may rotate it.
    pub async fn refresh(&self, old: &Tokens) -> Result<Tokens, Error> {
        let err = |why: String| Error::Refresh {
            issuer: self.issuer.clone(),
            why,
        };
        let Some(rt) = old.refresh_token.clone() else {
            return Err(err("the login has no refresh token".into()));
        };
        let response = self
            .client()
            .exchange_refresh_token(&RefreshToken::new(rt))
            .map_err(|e| err(e.to_string()))?
            .request_async(&self.http)
            .await
            .map_err(|e| err(token_error(&e)))?;
        self.tokens(&response, None, Some(old))
            .await
            .map_err(|e| match e {
                Error::IdToken { why, .. } => {
                    err(format!("the new ID token failed validation: {why}"))
                }
                other => other,
            })
    }

    /// Revokes the refresh and access tokens (RFC 7009). `Ok(false)` when
    /// the provider has no revocation endpoint. (A plain form POST: the
    /// oauth2 crate refuses non-https endpoints, which loopback providers use.)
    pub async fn revoke(&self, tokens: &Tokens) -> Result<bool, Error> {
        let Some(endpoint) = self.revocation_endpoint() else {
            return Ok(false);
        };
        let err = |why: String| Error::Revoke {
            issuer: self.issuer.clone(),
            why,
        };
        let mut targets = Vec::new();
        if let Some(rt) = &tokens.refresh_token {
            targets.push((rt.as_str(), "refresh_token"));
        }
        targets.push((tokens.access_token.as_str(), "access_token"));
        for (token, hint) in targets {
            let form = [
                ("token", token),
                ("token_type_hint", hint),
                ("client_id", self.client_id.as_str()),
            ];
            let resp = self
                .http
                .post(endpoint)
                .form(&form)
                .send()
                .await
                .map_err(|e| err(crate::errors::one_line(&e)))?;
            // RFC 7009 2.2: 200 also for tokens that were already invalid.
            if !resp.status().is_success() {
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                return Err(err(format!(
                    "{status}: {}",
                    body.chars().take(200).collect::<String>()
                )));
            }
        }
        Ok(true)
    }

    /// Validates the ID token (refetching the keys once if the signing key
    /// is unknown: a rotation) and builds the record to store.
    async fn tokens(
        &self,
        response: &CoreTokenResponse,
        nonce: Option<&Nonce>,
        old: Option<&Tokens>,
    ) -> Result<Tokens, Error> {
        let invalid = |why: String| Error::IdToken {
            issuer: self.issuer.clone(),
            why,
        };
        let id_token = match (response.id_token(), old) {
            (Some(t), _) => t.clone(),
            // A refresh may omit the ID token; keep the one validated at login.
            (None, Some(old)) => {
                return Ok(Tokens {
                    access_token: response.access_token().secret().clone(),
                    refresh_token: response
                        .refresh_token()
                        .map(|r| r.secret().clone())
                        .or(old.refresh_token.clone()),
                    expires_at: expires_at(response),
                    ..old.clone()
                })
            }
            (None, None) => return Err(invalid("the provider sent no ID token".into())),
        };
        let claims = match self.verify(&id_token, nonce, &self.metadata) {
            Err(ClaimsError::Signature) => {
                let jwks = JsonWebKeySet::fetch_async(self.metadata.jwks_uri(), &self.http)
                    .await
                    .map_err(|e| {
                        invalid(format!(
                            "could not refetch the signing keys: {}",
                            crate::errors::one_line(&e)
                        ))
                    })?;
                let fresh = self.metadata.clone().set_jwks(jwks);
                self.verify(&id_token, nonce, &fresh)
                    .map_err(|e| invalid(e.to_string()))?
            }
            other => other.map_err(|e| invalid(e.to_string()))?,
        };
        if let Some(old) = old {
            if claims.subject != old.subject {
                return Err(invalid(
                    "the refreshed ID token names another subject".into(),
                ));
            }
        }
        Ok(Tokens {
            issuer: self.issuer.clone(),
            client_id: self.client_id.as_str().to_string(),
            access_token: response.access_token().secret().clone(),
            refresh_token: response
                .refresh_token()
                .map(|r| r.secret().clone())
                .or_else(|| old.and_then(|o| o.refresh_token.clone())),
            id_token: id_token.to_string(),
            expires_at: expires_at(response),
            subject: claims.subject,
            email: claims.email,
            name: claims.name,
        })
    }

    fn verify(
        &self,
        token: &CoreIdToken,
        nonce: Option<&Nonce>,
        metadata: &Metadata,
    ) -> Result<Claims, ClaimsError> {
        let client =
            CoreClient::from_provider_metadata(metadata.clone(), self.client_id.clone(), None);
        // The provider's advertised asymmetric algorithms (RS256 when it names none).
        use openidconnect::core::CoreJwsSigningAlgorithm as Alg;
        let mut algs: Vec<Alg> = metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter(|a| {
                !matches!(
                    a,
                    Alg::None | Alg::HmacSha256 | Alg::HmacSha384 | Alg::HmacSha512
                )
            })
            .cloned()
            .collect();
        if algs.is_empty() {
            algs.push(Alg::RsaSsaPkcs1V15Sha256);
        }
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(algs)
            .set_time_fn(|| Utc::now() - SKEW)
            .set_issue_time_verifier_fn(|iat| {
                if iat > Utc::now() + SKEW {
                    Err(format!("issued in the future ({iat})"))
                } else {
                    Ok(())
                }
            });
        let result = match nonce {
            Some(n) => token.claims(&verifier, n),
            None => token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
        };
        let claims = result.map_err(|e| match e {
            openidconnect::ClaimsVerificationError::SignatureVerification(
                openidconnect::SignatureVerificationError::NoMatchingKey,
            ) => ClaimsError::Signature,
            other => ClaimsError::Other(crate::errors::one_line(&other)),
        })?;
        Ok(Claims {
            subject: claims.subject().as_str().to_string(),
            email: claims.email().map(|e| e.as_str().to_string()),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_string()),
        })
    }
}

struct Claims {
    subject: String,
    email: Option<String>,
    name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
enum ClaimsError {
    #[error("no key in the provider's JWKS matches the token's signing key")]
    Signature,
    #[error("{0}")]
    Other(String),
}

fn expires_at(response: &CoreTokenResponse) -> Option<i64> {
    response
        .expires_in()
        .map(|d| Utc::now().timestamp() + d.as_secs() as i64)
}
