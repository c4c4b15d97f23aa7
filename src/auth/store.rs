//! Where a profile's tokens live: the OS keyring (Secret Service, Keychain,
//! Credential Manager) through the `keyring` crate, or, when the user chose
//! it, a 0600 file in the config directory. Never both at once.
//!
//! Owns: the stored record's format, the keyring entry's name, and the
//! cross-process lock that serialises refreshes.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths;

/// The keyring service name; the account is the profile name.
pub const SERVICE: &str = "hoopctl";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no OS keyring is reachable ({0}). Start or unlock one (GNOME Keyring, KWallet, KeePassXC with Secret Service), or log in with --token-store file to keep tokens in a 0600 file")]
    Unavailable(String),
    #[error("could not access the OS keyring: {0}")]
    Keyring(String),
    #[error(
        "the stored login for profile {profile} is unreadable ({why}); run `hoopctl login` again"
    )]
    Corrupt { profile: String, why: String },
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Which store holds the tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Keyring,
    File,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Keyring => "OS keyring",
            Self::File => "file",
        })
    }
}

/// What one login leaves behind.
#[derive(Clone, Serialize, Deserialize)]
pub struct Tokens {
    pub issuer: String,
    pub client_id: String,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: String,
    /// Unix seconds; `None` when the provider did not say.
    pub expires_at: Option<i64>,
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("subject", &self.subject)
            .field("expires_at", &self.expires_at)
            .field("tokens", &"(redacted)")
            .finish()
    }
}

/// The store of one profile.
pub struct Store {
    kind: Kind,
    profile: String,
    file: PathBuf,
}

fn keyring_error(e: keyring::Error) -> Error {
    match e {
        keyring::Error::NoStorageAccess(inner) => Error::Unavailable(inner.to_string()),
        keyring::Error::PlatformFailure(inner) => Error::Unavailable(inner.to_string()),
        other => Error::Keyring(other.to_string()),
    }
}

impl Store {
    pub fn new(kind: Kind, profile: &str, dirs: &paths::Dirs) -> Self {
        Self {
            kind,
            profile: profile.to_string(),
            file: dirs.config.join(format!("tokens-{profile}.json")),
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    fn entry(&self) -> Result<keyring::Entry, Error> {
        keyring::Entry::new(SERVICE, &self.profile).map_err(keyring_error)
    }

    /// Fails early (before any browser opens) when the store cannot be used.
    pub fn check(&self) -> Result<(), Error> {
        match self.kind {
            Kind::File => Ok(()),
            Kind::Keyring => match self.entry()?.get_password() {
                Ok(_) | Err(keyring::Error::NoEntry) => Ok(()),
                Err(e) => Err(keyring_error(e)),
            },
        }
    }

    pub fn load(&self) -> Result<Option<Tokens>, Error> {
        let text = match self.kind {
            Kind::Keyring => match self.entry()?.get_password() {
                Ok(t) => t,
                Err(keyring::Error::NoEntry) => return Ok(None),
                Err(e) => return Err(keyring_error(e)),
            },
            // Not a link, ours, 0600 (see `paths`).
            Kind::File => match paths::read_trusted(&self.file, paths::Trust::Secret) {
                Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                Ok(None) => return Ok(None),
                Err(e) => {
                    return Err(Error::Read {
                        path: self.file.clone(),
                        source: e.into(),
                    })
                }
            },
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Corrupt {
                profile: self.profile.clone(),
                why: e.to_string(),
            })
    }

    /// Saves the tokens here and removes any copy from the other store.
    pub fn save(&self, tokens: &Tokens) -> Result<(), Error> {
        let text = serde_json::to_string(tokens).unwrap_or_default();
        match self.kind {
            Kind::Keyring => {
                self.entry()?.set_password(&text).map_err(keyring_error)?;
                remove_file(&self.file)?;
            }
            Kind::File => {
                paths::write_private(&self.file, text.as_bytes()).map_err(|source| {
                    Error::Write {
                        path: self.file.clone(),
                        source,
                    }
                })?;
                // Best effort: a keyring that is not there holds nothing to remove.
                if let Ok(entry) = self.entry() {
                    let _ = entry.delete_credential();
                }
            }
        }
        Ok(())
    }

    /// Deletes the stored tokens; `false` when there were none.
    pub fn delete(&self) -> Result<bool, Error> {
        match self.kind {
            Kind::Keyring => match self.entry()?.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring::Error::NoEntry) => Ok(false),
                Err(e) => Err(keyring_error(e)),
            },
            Kind::File => {
                let existed = self.file.exists();
                remove_file(&self.file)?;
                Ok(existed)
            }
        }
    }

    /// Where the tokens are, for `status`.
    pub fn describe(&self) -> String {
        match self.kind {
            Kind::Keyring => format!("OS keyring (service {SERVICE}, account {})", self.profile),
            Kind::File => format!("file {}", self.file.display()),
        }
    }
}

fn remove_file(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Write {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// An exclusive lock across processes (flock on a file in the runtime
/// directory), held while a refresh reads, rotates and saves tokens.
pub struct Lock {
    _flock: nix::fcntl::Flock<std::fs::File>,
}

impl Lock {
    /// Blocks until the lock for `profile` is held.
    pub fn acquire(dirs: &paths::Dirs, profile: &str) -> Result<Self, Error> {
        let path = dirs.runtime.join(format!("login-{profile}.lock"));
        let err = |source| Error::Lock {
            path: path.clone(),
            source,
        };
        paths::ensure_dir(&dirs.runtime).map_err(|e| err(std::io::Error::other(e.to_string())))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(err)?;
        let flock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| err(std::io::Error::from(errno)))?;
        Ok(Self { _flock: flock })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens {
            issuer: "https://id.example".into(),
            client_id: "cli".into(),
            access_token: "at-secret".into(),
            refresh_token: Some("rt-secret".into()),
            id_token: "idt".into(),
            expires_at: Some(1),
            subject: "alice".into(),
            email: None,
            name: None,
        }
    }

    #[test]
    fn debug_never_shows_tokens() {
        let s = format!("{:?}", tokens());
        assert!(!s.contains("secret"), "{s}");
    }

    #[test]
    fn file_store_round_trip_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let dirs = paths::Dirs {
            config: dir.path().join("c"),
            data: dir.path().join("d"),
            runtime: dir.path().join("r"),
        };
        let store = Store::new(Kind::File, "p", &dirs);
        assert!(store.load().unwrap().is_none());
        store.save(&tokens()).unwrap();
        let mode = std::fs::metadata(dirs.config.join("tokens-p.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(store.load().unwrap().unwrap().access_token, "at-secret");
        assert!(store.delete().unwrap());
        assert!(!store.delete().unwrap());
        let _lock = Lock::acquire(&dirs, "p").unwrap();
    }
}
