//! The TOML configuration: profiles, loaded once and passed down.
//!
//! Owns: the file format of `config.toml` and saving it (0600, atomic,
//! since a profile keeps its stable proxy secret here). Must not: read
//! the environment or decide defaults that belong to a command.
//!
//! Loading trusts the file only as [`crate::paths`] allows: it is opened
//! without following a link and must be ours and not writable by
//! group/others (whoever can write it chooses the upstream and the
//! policy); once it holds a proxy secret it must not be readable by
//! group/others either. A hand-written `config.toml` without secrets may
//! stay 0644.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths;
use crate::secret::Secret;

/// The fixed, documented port of the stable foreground proxy.
pub const DEFAULT_PORT: u16 = 7733;
pub const DEFAULT_PROFILE: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not read config file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("could not write config file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("could not generate a proxy secret")]
    Random,
    #[error(transparent)]
    Unsafe(#[from] paths::Error),
}

/// The whole file.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Profile used when `--profile` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_profile: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// One profile: where the stable proxy listens and how it forwards.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Address of the stable foreground proxy (default `127.0.0.1:7733`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Policy file (TOML, SPEC section 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PathBuf>,
    /// Replaces the intercepted origin (enterprise endpoints, tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Extra CA certificates (PEM) trusted for the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_ca: Option<PathBuf>,
    /// The stable proxy's secret, generated on first use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret: Option<String>,
    /// The organisation's gateway (`hoopctl login --gateway`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Extra CA certificates (PEM) trusted for the gateway (its API and proxy endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_ca: Option<PathBuf>,
    /// The gateway connection `connect` asks credentials for (default `claude-code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// OpenID provider and client of the last login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `keyring` (default) or `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_store: Option<crate::auth::store::Kind>,
}

impl Config {
    /// Loads `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let Some(mut file) = paths::open_read(path, paths::Trust::Public)? else {
            return Ok(Self::default());
        };
        let mut text = String::new();
        io::Read::read_to_string(&mut file, &mut text).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config: Self = toml::from_str(&text).map_err(|source| Error::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        if config.profiles.values().any(|p| p.proxy_secret.is_some()) {
            let meta = file.metadata().map_err(|source| Error::Read {
                path: path.to_path_buf(),
                source,
            })?;
            paths::check_meta(path, &meta, paths::Trust::Secret)?;
        }
        Ok(config)
    }

    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let text = toml::to_string_pretty(self).map_err(|e| Error::Write {
            path: path.to_path_buf(),
            source: io::Error::other(e.to_string()),
        })?;
        let text = format!(
            "# hoopctl configuration (profiles). Kept 0600: it holds proxy secrets.\n{text}"
        );
        paths::write_private(path, text.as_bytes()).map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The name of the profile to use: the flag, else `default_profile`, else `default`.
    pub fn profile_name(&self, flag: Option<&str>) -> String {
        flag.map(str::to_owned)
            .or_else(|| self.default_profile.clone())
            .unwrap_or_else(|| DEFAULT_PROFILE.to_owned())
    }

    pub fn profile(&self, name: &str) -> Profile {
        self.profiles.get(name).cloned().unwrap_or_default()
    }

    /// The profile's stable proxy secret, generated and saved on first use.
    pub fn stable_secret(&mut self, name: &str, path: &Path) -> Result<Secret, Error> {
        if let Some(s) = self.profiles.get(name).and_then(|p| p.proxy_secret.clone()) {
            return Ok(Secret::new(s));
        }
        let secret = Secret::random().map_err(|_| Error::Random)?;
        self.profiles
            .entry(name.to_owned())
            .or_default()
            .proxy_secret = Some(secret.expose().to_owned());
        self.save(path)?;
        Ok(secret)
    }
}

impl Profile {
    /// The stable listen address as configured, or the documented default.
    pub fn listen_addr(&self) -> String {
        self.listen
            .clone()
            .unwrap_or_else(|| format!("127.0.0.1:{DEFAULT_PORT}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_empty_and_unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        assert!(Config::load(&path).unwrap().profiles.is_empty());
        std::fs::write(
            &path,
            "[profiles.default]\nlisten = \"127.0.0.1:1\"\nlistne = 3\n",
        )
        .unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("listne"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn stable_secret_is_generated_once_and_saved_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let mut cfg = Config::load(&path).unwrap();
        let a = cfg.stable_secret("default", &path).unwrap();
        let mut again = Config::load(&path).unwrap();
        let b = again.stable_secret("default", &path).unwrap();
        assert_eq!(a, b);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_config_open_to_others_or_a_link_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let set = |mode| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode));
        // Without a secret, 0644 is fine; group-writable is not.
        std::fs::write(&path, "[profiles.default]\nlisten = \"127.0.0.1:1\"\n").unwrap();
        set(0o644).unwrap();
        Config::load(&path).unwrap();
        set(0o664).unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("writable by group/others (mode 0664)"),
            "{err}"
        );
        assert!(err.contains("run: chmod 644 '"), "{err}");
        // With a secret, readable by others is refused too.
        std::fs::write(&path, "[profiles.default]\nproxy_secret = \"s3cret\"\n").unwrap();
        set(0o644).unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("readable by group/others (mode 0644)"),
            "{err}"
        );
        assert!(err.contains("chmod 600"), "{err}");
        set(0o600).unwrap();
        Config::load(&path).unwrap();
        // A link is not followed.
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = Config::load(&link).unwrap_err().to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
    }
}
