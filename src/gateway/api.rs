//! The gateway's REST API. Knows nothing of the proxy.

use std::time::Duration;

use openidconnect::reqwest;

use super::types::PublicServerInfo;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not reach the gateway at {url}: {why}")]
    Unreachable { url: String, why: String },
    #[error("the gateway at {url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("the gateway at {url} sent an unexpected answer: {why}")]
    Invalid { url: String, why: String },
}

/// `GET {gateway}/api/publicserverinfo`.
pub async fn public_server_info(gateway: &str) -> Result<PublicServerInfo, Error> {
    let url = format!("{}/api/publicserverinfo", gateway.trim_end_matches('/'));
    let http = reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| Error::Unreachable {
            url: url.clone(),
            why: e.to_string(),
        })?;
    let resp = http
        .get(&url)
        .send()
        .await
        .map_err(|e| Error::Unreachable {
            url: url.clone(),
            why: e.to_string(),
        })?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| Error::Unreachable {
        url: url.clone(),
        why: e.to_string(),
    })?;
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or(body);
        return Err(Error::Status {
            url,
            status: status.as_u16(),
            message,
        });
    }
    serde_json::from_str(&body).map_err(|e| Error::Invalid {
        url,
        why: e.to_string(),
    })
}
