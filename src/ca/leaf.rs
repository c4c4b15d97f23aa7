//! Leaf certificates: host → `Arc<rustls::ServerConfig>`, minted on
//! demand and cached in memory.
//!
//! Owns: leaf minting, the per-process leaf key, ALPN. Must not: decide
//! whether a host is intercepted (that is `policy::egress`).
//!
//! One leaf key per process (not the CA key, unlike hudsucker): only the
//! CA signature differs between hosts. Concurrent first connections to one
//! host share one `OnceCell`, so a host is minted once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::sync::OnceCell;

use super::{Ca, Error};

/// A leaf is valid this long; cached entries are re-minted well before.
const LEAF_VALIDITY: time::Duration = time::Duration::days(7);
const REMINT_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Enough for any agent; beyond it the cache starts over rather than grow.
const MAX_HOSTS: usize = 1024;

/// The name a client without SNI (an IP-address base URL) gets a leaf for.
pub const LOOPBACK: &str = "localhost";

struct Entry {
    config: Arc<ServerConfig>,
    minted: Instant,
}

/// Mints and caches leaf server configs.
pub struct LeafCache {
    ca: Arc<Ca>,
    key: KeyPair,
    provider: Arc<rustls::crypto::CryptoProvider>,
    map: Mutex<HashMap<String, Arc<OnceCell<Entry>>>>,
    minted: AtomicUsize,
}

impl LeafCache {
    pub fn new(ca: Arc<Ca>, provider: Arc<rustls::crypto::CryptoProvider>) -> Result<Self, Error> {
        Ok(Self {
            ca,
            key: KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
            provider,
            map: Mutex::new(HashMap::new()),
            minted: AtomicUsize::new(0),
        })
    }

    /// How many leaves this cache has minted (for tests and stats).
    pub fn minted(&self) -> usize {
        self.minted.load(Ordering::Relaxed)
    }

    /// The server config for `host`, minting it on first use.
    pub async fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, Error> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let cell = self.cell(&host);
        let entry = cell.get_or_try_init(|| async { self.mint(&host) }).await?;
        if entry.minted.elapsed() < REMINT_AFTER {
            return Ok(entry.config.clone());
        }
        // Stale: replace the cell (other tasks keep the old config meanwhile).
        if let Ok(mut map) = self.map.lock() {
            map.remove(&host);
        }
        let cell = self.cell(&host);
        Ok(cell
            .get_or_try_init(|| async { self.mint(&host) })
            .await?
            .config
            .clone())
    }

    fn cell(&self, host: &str) -> Arc<OnceCell<Entry>> {
        let mut map = match self.map.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.len() >= MAX_HOSTS && !map.contains_key(host) {
            map.clear();
        }
        map.entry(host.to_string()).or_default().clone()
    }

    fn mint(&self, host: &str) -> Result<Entry, Error> {
        let der = self.mint_der(host)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Corrupt(self.ca.cert_path().to_path_buf(), e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![der], key)
            .map_err(|e| Error::Corrupt(self.ca.cert_path().to_path_buf(), e.to_string()))?;
        // Claude Code offers no ALPN on some connections; rustls then
        // proceeds without one and we serve HTTP/1.1 (SPEC section 2).
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        self.minted.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(host, "minted leaf certificate");
        Ok(Entry {
            config: Arc::new(config),
            minted: Instant::now(),
        })
    }

    /// A DER leaf for `host` signed by the CA (also used by tests to show
    /// that the name constraints hold).
    pub fn mint_der(&self, host: &str) -> Result<CertificateDer<'static>, Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, host);
        params.subject_alt_names = if host == LOOPBACK {
            vec![
                SanType::DnsName(LOOPBACK.try_into()?),
                SanType::IpAddress(IpAddr::from([127, 0, 0, 1])),
                SanType::IpAddress(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
            ]
        } else if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            vec![SanType::IpAddress(ip)]
        } else {
            vec![SanType::DnsName(host.to_string().try_into()?)]
        };
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        // Backdated for clock skew between hoopctl and the agent's checks.
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + LEAF_VALIDITY;
        params.serial_number = Some(super::random_serial());
        let cert = params.signed_by(&self.key, self.ca.issuer())?;
        Ok(cert.der().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> (tempfile::TempDir, Arc<LeafCache>) {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::create(dir.path(), &["api.anthropic.com".to_string()], false).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        (
            dir,
            Arc::new(LeafCache::new(Arc::new(ca), provider).unwrap()),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_connections_mint_once() {
        let (_dir, cache) = cache();
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let c = cache.clone();
                tokio::spawn(async move { c.server_config("api.anthropic.com").await.unwrap() })
            })
            .collect();
        let mut configs = Vec::new();
        for t in tasks {
            configs.push(t.await.unwrap());
        }
        assert_eq!(cache.minted(), 1);
        assert!(configs.iter().all(|c| Arc::ptr_eq(c, &configs[0])));
        cache.server_config("API.anthropic.com.").await.unwrap();
        assert_eq!(cache.minted(), 1);
        cache.server_config(LOOPBACK).await.unwrap();
        assert_eq!(cache.minted(), 2);
    }
}
