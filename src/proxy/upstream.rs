//! The upstream side: a pooled hyper client over rustls (HTTP/2 when the
//! upstream offers it), and where each request goes.
//!
//! Owns: TLS roots for upstreams (system store plus `--upstream-ca`), the
//! connect timeout, and the mapping host → origin (`--upstream`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::body::Body;

pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid upstream URL {0}: {1}")]
    Url(String, String),
    #[error("could not read upstream CA file {path}: {source}")]
    CaFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("upstream CA file {0} holds no usable PEM certificate")]
    CaEmpty(std::path::PathBuf),
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// Where a request goes: scheme, authority and a path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: Scheme,
    pub authority: Authority,
    /// Prepended to the request path (no trailing slash), e.g. `/anthropic`.
    pub prefix: String,
}

impl Origin {
    /// Parses an `http` or `https` URL (path kept as a prefix).
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::Url(url.to_string(), why.to_string());
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| bad("it needs http:// or https://"))?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(bad("only http and https are supported"));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| bad("it has no host"))?;
        if uri.query().is_some() {
            return Err(bad("it must not carry a query"));
        }
        let prefix = uri.path().trim_end_matches('/').to_string();
        Ok(Self {
            scheme,
            authority,
            prefix,
        })
    }

    /// `https://host:port`, the origin of an intercepted CONNECT target.
    pub fn https(host: &str, port: u16) -> Result<Self, Error> {
        let auth = if port == 443 {
            host.to_string()
        } else {
            format!("{host}:{port}")
        };
        Self::parse(&format!("https://{auth}"))
    }

    /// The absolute URI for a request path and query on this origin.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        let pq = if path_and_query.is_empty() {
            "/"
        } else {
            path_and_query
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(format!("{}{pq}", self.prefix))
            .build()
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.prefix)
    }
}

/// The root store for upstream TLS: the system store plus extra PEM certificates.
pub fn roots(extra_cas: &[impl AsRef<Path>]) -> Result<rustls::RootCertStore, Error> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "skipping an unreadable system certificate");
    }
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, "system roots loaded");
    for path in extra_cas {
        let path = path.as_ref();
        use rustls_pki_types::pem::PemObject;
        let bytes = std::fs::read(path).map_err(|source| Error::CaFile {
            path: path.to_path_buf(),
            source,
        })?;
        let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(&bytes)
            .filter_map(Result::ok)
            .collect();
        let (n, _) = roots.add_parsable_certificates(certs);
        if n == 0 {
            return Err(Error::CaEmpty(path.to_path_buf()));
        }
    }
    Ok(roots)
}

/// The pooled upstream client.
pub fn client(
    roots: rustls::RootCertStore,
    provider: Arc<rustls::crypto::CryptoProvider>,
    connect_timeout: Duration,
) -> Result<HttpClient, Error> {
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .build(https))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let o = Origin::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(
            o.uri("/v1/messages?beta=true").unwrap().to_string(),
            "http://127.0.0.1:9000/v1/messages?beta=true"
        );
        let o = Origin::parse("https://gw.example.com/anthropic/").unwrap();
        assert_eq!(
            o.uri("/v1/models").unwrap().to_string(),
            "https://gw.example.com/anthropic/v1/models"
        );
        assert_eq!(
            Origin::https("api.anthropic.com", 443).unwrap().to_string(),
            "https://api.anthropic.com"
        );
        assert!(Origin::parse("ftp://x").is_err());
        assert!(Origin::parse("127.0.0.1:80").is_err());
    }
}
