//! The local certificate authority: load, create, rotate, describe.
//!
//! Owns: the CA's files (`ca.pem` 0644, `ca-key.pem` 0600 in the data
//! dir) and its name constraints. Must not: speak HTTP or TLS; leaves
//! are minted by [`leaf`].
//!
//! The CA is ECDSA P-256 and name-constrained (RFC 5280 4.2.1.10) to the
//! registrable domains of the intercepted hosts plus `localhost`,
//! 127.0.0.1/32 and ::1/128, so that even a stolen key cannot be used to
//! impersonate any other site to a standard verifier.

pub mod leaf;

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, GeneralSubtree,
    IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::paths;

/// How long a new CA is valid. Long enough not to nag, short enough that a
/// forgotten CA dies on its own; `hoopctl ca rotate` makes a new one.
const CA_VALIDITY_DAYS: i64 = 3 * 365;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("could not write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("the CA files in {0} are unusable ({1}); run `hoopctl ca rotate` to replace them")]
    Corrupt(PathBuf, String),
    #[error("a CA already exists in {0}; use `hoopctl ca rotate` to replace it")]
    Exists(PathBuf),
    #[error("no CA in {0}; run `hoopctl ca init`")]
    Missing(PathBuf),
    #[error("the local CA is not allowed to sign for {host} (its name constraints: {permitted}); run `hoopctl ca rotate` so the new CA covers the policy's intercept list")]
    NotCovered { host: String, permitted: String },
    #[error("could not generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(transparent)]
    Dir(#[from] paths::Error),
}

/// A loaded CA: certificate and the issuer that signs leaves with its key.
pub struct Ca {
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    cert_path: PathBuf,
    key_path: PathBuf,
    permitted: Constraints,
}

/// What `hoopctl ca show` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub subject: String,
    pub not_before: String,
    pub not_after: String,
    pub sha256_fingerprint: String,
    pub permitted_dns: Vec<String>,
    pub permitted_ip: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct Constraints {
    dns: Vec<String>,
    ip: Vec<String>,
}

fn cert_path(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}

fn key_path(dir: &Path) -> PathBuf {
    dir.join("ca-key.pem")
}

/// The DNS subtrees a CA for these intercepted hosts is constrained to:
/// each host's registrable domain (public suffix list), then `localhost`.
pub fn permitted_domains(hosts: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for host in hosts {
        if host.parse::<IpAddr>().is_ok() {
            continue;
        }
        let domain = psl::domain_str(host)
            .unwrap_or(host.as_str())
            .to_ascii_lowercase();
        if !out.contains(&domain) {
            out.push(domain);
        }
    }
    if !out.iter().any(|d| d == "localhost") {
        out.push("localhost".into());
    }
    out
}

impl Ca {
    /// Loads the CA in `dir`.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let (cert_path, key_path) = (cert_path(dir), key_path(dir));
        // Whoever can write the directory could swap the key: it must be
        // ours and closed to group/others; the key is opened without
        // following a link and must be ours and 0600, the certificate
        // ours and not writable by others (see `paths`).
        paths::check_path(dir, paths::Trust::Dir)?;
        let key = paths::read_trusted(&key_path, paths::Trust::Secret)?;
        let cert = paths::read_trusted(&cert_path, paths::Trust::Public)?;
        let (Some(key_pem), Some(cert_pem)) = (key, cert) else {
            return Err(Error::Missing(dir.to_path_buf()));
        };
        let text = |p: &Path, bytes: Vec<u8>| {
            String::from_utf8(bytes).map_err(|_| {
                Error::Corrupt(dir.to_path_buf(), format!("{} is not text", p.display()))
            })
        };
        let (cert_pem, key_pem) = (text(&cert_path, cert_pem)?, text(&key_path, key_pem)?);
        let corrupt = |what: String| Error::Corrupt(dir.to_path_buf(), what);
        let key = KeyPair::from_pem(&key_pem).map_err(|e| corrupt(format!("key: {e}")))?;
        let der = pem_to_der(&cert_pem).ok_or_else(|| corrupt("certificate is not PEM".into()))?;
        let cert_der = CertificateDer::from(der);
        let permitted = parse_constraints(&cert_der).map_err(corrupt)?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| corrupt(format!("certificate: {e}")))?;
        Ok(Self {
            cert_der,
            issuer,
            cert_path,
            key_path,
            permitted,
        })
    }

    /// Creates a new CA in `dir` for `hosts`. Refuses to replace one unless `replace`.
    pub fn create(dir: &Path, hosts: &[String], replace: bool) -> Result<Self, Error> {
        let (cert_path, key_path) = (cert_path(dir), key_path(dir));
        paths::ensure_dir(dir)?;
        let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
        if !replace && (exists(&cert_path) || exists(&key_path)) {
            return Err(Error::Exists(dir.to_path_buf()));
        }
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "hoopctl");
        // A CommonName is needed by some verifiers (mkcert notes iOS); make
        // it say whose machine minted it.
        dn.push(
            DnType::CommonName,
            format!("hoopctl local CA ({})", whoami()),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
        params.serial_number = Some(random_serial());
        let mut permitted: Vec<GeneralSubtree> = permitted_domains(hosts)
            .into_iter()
            .map(GeneralSubtree::DnsName)
            .collect();
        permitted.push(GeneralSubtree::IpAddress(CidrSubnet::V4(
            [127, 0, 0, 1],
            [255; 4],
        )));
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        permitted.push(GeneralSubtree::IpAddress(CidrSubnet::V6(v6, [255; 16])));
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: permitted,
            excluded_subtrees: Vec::new(),
        });
        let cert = params.self_signed(&key)?;
        // Key first, so a crash never leaves a certificate without its key.
        paths::write_private(&key_path, key.serialize_pem().as_bytes()).map_err(|source| {
            Error::Write {
                path: key_path.clone(),
                source,
            }
        })?;
        paths::write_atomic(&cert_path, cert.pem().as_bytes(), 0o644).map_err(|source| {
            Error::Write {
                path: cert_path.clone(),
                source,
            }
        })?;
        Self::load(dir)
    }

    /// Loads the CA, creating it when there is none.
    pub fn load_or_create(dir: &Path, hosts: &[String]) -> Result<(Self, bool), Error> {
        match Self::load(dir) {
            Ok(ca) => Ok((ca, false)),
            Err(Error::Missing(_)) => Ok((Self::create(dir, hosts, false)?, true)),
            Err(e) => Err(e),
        }
    }

    /// Fails unless every host is inside the CA's name constraints.
    pub fn check_covers(&self, hosts: &[String]) -> Result<(), Error> {
        for host in hosts {
            if !self.covers(host) {
                return Err(Error::NotCovered {
                    host: host.clone(),
                    permitted: self.permitted.dns.join(", "),
                });
            }
        }
        Ok(())
    }

    /// Whether a leaf for `host` would pass the CA's name constraints.
    pub fn covers(&self, host: &str) -> bool {
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return ip.is_loopback()
                && self
                    .permitted
                    .ip
                    .iter()
                    .any(|c| c == "127.0.0.1/32" || c == "::1/128");
        }
        let host = host.to_ascii_lowercase();
        self.permitted
            .dns
            .iter()
            .any(|d| host == *d || host.ends_with(&format!(".{d}")))
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    pub fn info(&self) -> Result<Info, Error> {
        use x509_parser::prelude::*;
        let corrupt = |e: String| Error::Corrupt(self.cert_path.clone(), e);
        let (_, cert) =
            X509Certificate::from_der(&self.cert_der).map_err(|e| corrupt(e.to_string()))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.cert_der);
        let fingerprint = digest
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let fmt_time = |t: &ASN1Time| {
            t.to_datetime()
                .format(&::time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| t.to_string())
        };
        Ok(Info {
            cert_path: self.cert_path.clone(),
            key_path: self.key_path.clone(),
            subject: cert.subject().to_string(),
            not_before: fmt_time(&cert.validity().not_before),
            not_after: fmt_time(&cert.validity().not_after),
            sha256_fingerprint: fingerprint,
            permitted_dns: self.permitted.dns.clone(),
            permitted_ip: self.permitted.ip.clone(),
        })
    }
}

/// Reads the permitted subtrees back out of the certificate, so what is
/// enforced and what is shown are the same bytes.
fn parse_constraints(der: &[u8]) -> Result<Constraints, String> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    let mut out = Constraints::default();
    let nc = cert.name_constraints().map_err(|e| e.to_string())?;
    let Some(nc) = nc else {
        return Err("the CA has no name constraints".into());
    };
    for subtree in nc.value.permitted_subtrees.iter().flatten() {
        match &subtree.base {
            GeneralName::DNSName(d) => out.dns.push(d.to_ascii_lowercase()),
            GeneralName::IPAddress(bytes) => out.ip.push(format_cidr(bytes)),
            other => out.dns.push(other.to_string()),
        }
    }
    Ok(out)
}

fn format_cidr(bytes: &[u8]) -> String {
    let (addr, mask): (IpAddr, &[u8]) = match bytes.len() {
        8 => (
            IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]]),
            &bytes[4..],
        ),
        32 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&bytes[..16]);
            (IpAddr::from(a), &bytes[16..])
        }
        _ => return format!("{bytes:02x?}"),
    };
    let prefix: u32 = mask.iter().map(|b| b.count_ones()).sum();
    format!("{addr}/{prefix}")
}

fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let start = pem.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let end = pem[start..].find("-----END CERTIFICATE-----")? + start;
    let b64: String = pem[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

fn random_serial() -> rcgen::SerialNumber {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    // A failing system RNG would already have failed the key generation.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    bytes[0] &= 0x7f; // keep the serial positive
    rcgen::SerialNumber::from_slice(&bytes)
}

fn whoami() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "user".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if host.is_empty() {
        user
    } else {
        format!("{user}@{host}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permitted_domains_use_the_public_suffix_list() {
        let hosts = vec![
            "api.anthropic.com".to_string(),
            "x.api.example.co.uk".into(),
            "127.0.0.1".into(),
        ];
        assert_eq!(
            permitted_domains(&hosts),
            vec!["anthropic.com", "example.co.uk", "localhost"]
        );
    }

    #[test]
    fn create_load_and_describe() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = vec!["api.anthropic.com".to_string()];
        let ca = Ca::create(dir.path(), &hosts, false).unwrap();
        assert!(matches!(
            Ca::create(dir.path(), &hosts, false),
            Err(Error::Exists(_))
        ));
        let info = ca.info().unwrap();
        assert_eq!(info.permitted_dns, vec!["anthropic.com", "localhost"]);
        assert_eq!(info.permitted_ip, vec!["127.0.0.1/32", "::1/128"]);
        assert!(info.subject.contains("hoopctl local CA"));
        assert_eq!(info.sha256_fingerprint.len(), 32 * 3 - 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(key_path(dir.path()))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let again = Ca::load(dir.path()).unwrap();
        assert_eq!(again.cert_der(), ca.cert_der());
        assert!(again.covers("api.anthropic.com"));
        assert!(again.covers("localhost"));
        assert!(again.covers("127.0.0.1"));
        assert!(!again.covers("example.com"));
        assert!(!again.covers("evilanthropic.com"));
        assert!(again.check_covers(&["google.com".to_string()]).is_err());
    }

    #[test]
    fn corrupt_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(cert_path(dir.path()), "garbage").unwrap();
        std::fs::write(key_path(dir.path()), "garbage").unwrap();
        // Private, as hoopctl writes it: the contents are what is wrong.
        std::fs::set_permissions(
            key_path(dir.path()),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let err = Ca::load(dir.path()).err().unwrap().to_string();
        assert!(err.contains("ca rotate"), "{err}");
    }
}
