//! Where hoopctl keeps its files, and how it writes them.
//!
//! Owns: the platform directories (from `directories`), their
//! `HOOPCTL_{CONFIG,DATA,RUNTIME}_DIR` overrides, 0700 directories and
//! 0600 atomic writes. Must not: know what goes into the files.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Could not work out or create one of hoopctl's directories.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not determine a home directory; set HOOPCTL_CONFIG_DIR and HOOPCTL_DATA_DIR")]
    NoHome,
    #[error("could not create directory {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
}

/// The three directories hoopctl uses.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// `config.toml` and the profiles' stable proxy secrets.
    pub config: PathBuf,
    /// The local CA, logs, later the audit store.
    pub data: PathBuf,
    /// Sockets and per-run state of running proxies.
    pub runtime: PathBuf,
}

impl Dirs {
    /// Resolves the directories: environment overrides first, then the
    /// platform defaults. Nothing is created here.
    pub fn resolve() -> Result<Self, Error> {
        let project = directories::ProjectDirs::from("dev", "hoop", "hoopctl");
        let from_env = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let config = match from_env("HOOPCTL_CONFIG_DIR") {
            Some(p) => p,
            None => project
                .as_ref()
                .ok_or(Error::NoHome)?
                .config_dir()
                .to_path_buf(),
        };
        let data = match from_env("HOOPCTL_DATA_DIR") {
            Some(p) => p,
            None => project
                .as_ref()
                .ok_or(Error::NoHome)?
                .data_dir()
                .to_path_buf(),
        };
        let runtime = match from_env("HOOPCTL_RUNTIME_DIR") {
            Some(p) => p,
            // Linux has XDG_RUNTIME_DIR; elsewhere a folder in the data dir
            // serves, since it is private to the user as well.
            None => match project.as_ref().and_then(|p| p.runtime_dir()) {
                Some(p) => p.to_path_buf(),
                None => data.join("run"),
            },
        };
        Ok(Self {
            config,
            data,
            runtime,
        })
    }

    pub fn config_file(&self) -> PathBuf {
        self.config.join("config.toml")
    }

    pub fn ca_dir(&self) -> PathBuf {
        self.data.join("ca")
    }

    /// The audit store (sessions recorded by every proxy of this user).
    pub fn audit_db(&self) -> PathBuf {
        self.data.join("audit.db")
    }

    pub fn log_file(&self) -> PathBuf {
        self.data.join("logs").join("hoopctl.log")
    }

    /// State file a foreground proxy of `profile` writes while it runs.
    pub fn proxy_state(&self, profile: &str) -> PathBuf {
        self.runtime.join(format!("proxy-{profile}.json"))
    }
}

/// Creates `path` and its parents with mode 0700 (existing ones are left as they are).
pub fn ensure_dir(path: &Path) -> Result<(), Error> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| Error::Create {
            path: path.to_path_buf(),
            source,
        })
}

/// Writes `bytes` to `path` atomically (temporary file in the same
/// directory, fsync, rename) with the given mode. Parents are created 0700.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    ensure_dir(dir).map_err(|e| io::Error::other(e.to_string()))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        // The mode given to open() is filtered by the umask; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes a secret file: 0600, atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, bytes, 0o600)
}
