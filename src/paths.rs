//! Where hoopctl keeps its files, and how it writes them.
//!
//! Owns: the platform directories (from `directories`), their
//! `HOOPCTL_{CONFIG,DATA,RUNTIME}_DIR` overrides, 0700 directories,
//! 0600 atomic writes, and the one check of whether an existing file or
//! directory can be trusted ([`check_path`], [`check_meta`],
//! [`open_read`]). Must not: know what goes into the files.
//!
//! What is refused and what is fixed silently:
//! - A directory hoopctl creates is made 0700; nothing to refuse.
//! - An existing config, data (and its `ca`, `logs`, journal
//!   subdirectories) directory owned by another user, or writable by
//!   group/others, is refused: whoever can write there can plant the CA
//!   key, a config or the record. Readable is fine: the files in it
//!   protect themselves. Above hoopctl's own directories only what could
//!   replace them is refused ([`check_ancestors`]): an ancestor owned by
//!   another user (root aside), or writable by group/others without the
//!   sticky bit (a 1777 `/tmp` holding them is fine: others cannot
//!   rename what is ours there).
//! - The runtime directory (sockets, proxy state) must be ours, a real
//!   directory (not a symbolic link) and have no group/other bits at all.
//! - Files that hold secrets (the CA key, `config.toml` once it holds a
//!   proxy secret, `audit.db`, token files) must be ours, regular files
//!   (opened with `O_NOFOLLOW`, checked with `fstat` after the open) with
//!   no group/other bits. Files others may read (the CA certificate, a
//!   `config.toml` without secrets) must be ours and not writable by
//!   group/others.
//!
//! Each refusal names the exact `chmod`/`chown`/`rm` to run; hoopctl never
//! changes the mode or owner of something it did not just create, since
//! a wrong mode may mean someone else already had their hands on it.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Could not work out or create one of hoopctl's directories.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not determine a home directory; set HOOPCTL_CONFIG_DIR and HOOPCTL_DATA_DIR")]
    NoHome,
    #[error("could not create directory {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    /// An existing file or directory hoopctl would rely on is not safe:
    /// owned by someone else, open to group/others, or a link.
    #[error("{} {problem}; run: {fix}", .path.display())]
    Unsafe {
        path: PathBuf,
        problem: String,
        fix: String,
    },
    #[error("could not open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Create { source, .. } | Error::Open { source, .. } => source,
            other => io::Error::new(io::ErrorKind::PermissionDenied, other.to_string()),
        }
    }
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

    /// Refuses directories that exist but cannot be trusted (see the
    /// module doc): the config and data directories, the runtime
    /// directory. Missing ones are fine: they are created 0700 when needed.
    pub fn check(&self) -> Result<(), Error> {
        check_path(&self.config, Trust::Dir)?;
        check_path(&self.data, Trust::Dir)?;
        check_path(&self.runtime, Trust::RuntimeDir)?;
        for dir in [&self.config, &self.data, &self.runtime] {
            check_ancestors(dir)?;
        }
        Ok(())
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

/// What an existing path must be for hoopctl to rely on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// A directory hoopctl keeps files in: ours, not writable by
    /// group/others. A symbolic link to such a directory is followed.
    Dir,
    /// The runtime directory: ours, a real directory (never a link), no
    /// group/other bits.
    RuntimeDir,
    /// A file holding secrets: ours, a regular file (never a link), no
    /// group/other bits.
    Secret,
    /// A file others may read: ours, a regular file (never a link), not
    /// writable by group/others.
    Public,
    /// A file that says what hoopctl enforces (a policy file), which
    /// anyone who can change it can loosen: a regular file of ours or
    /// root's, not writable by group/others. Checked where a link the user
    /// named leads ([`check_rules_file`]).
    Rules,
}

impl Trust {
    /// The mode bits that must be clear.
    fn forbidden(self) -> u32 {
        match self {
            Trust::Dir | Trust::Public | Trust::Rules => 0o022,
            Trust::RuntimeDir | Trust::Secret => 0o077,
        }
    }

    /// The mode the refusal tells the user to set.
    fn fix_mode(self) -> &'static str {
        match self {
            Trust::Dir | Trust::RuntimeDir => "700",
            Trust::Secret => "600",
            Trust::Public => "644",
            Trust::Rules => "go-w",
        }
    }

    fn is_dir(self) -> bool {
        matches!(self, Trust::Dir | Trust::RuntimeDir)
    }
}

/// `path` quoted for a POSIX shell.
fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

fn unsafe_path(path: &Path, problem: String, fix: String) -> Error {
    Error::Unsafe {
        path: path.to_path_buf(),
        problem,
        fix,
    }
}

/// A symbolic link where hoopctl does not follow one.
fn link_refused(path: &Path, trust: Trust) -> Error {
    let q = quoted(path);
    let fix = if trust.is_dir() {
        format!("rm {q} (hoopctl creates the directory again, mode 0700)")
    } else {
        format!("cp --remove-destination \"$(readlink -f {q})\" {q}")
    };
    unsafe_path(
        path,
        "is a symbolic link, and hoopctl does not follow links for its own files".into(),
        fix,
    )
}

/// The current (effective) user.
fn me() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Checks the metadata of an existing `path` (from `lstat`, or `fstat` of
/// an open file) against `trust`. The one place these rules live.
pub fn check_meta(path: &Path, meta: &fs::Metadata, trust: Trust) -> Result<(), Error> {
    let q = quoted(path);
    if meta.file_type().is_symlink() && trust != Trust::Dir {
        return Err(link_refused(path, trust));
    }
    if trust.is_dir() && !meta.is_dir() {
        return Err(unsafe_path(
            path,
            "is not a directory".into(),
            format!("rm {q} (or point hoopctl elsewhere with HOOPCTL_CONFIG_DIR / HOOPCTL_DATA_DIR / HOOPCTL_RUNTIME_DIR)"),
        ));
    }
    if !trust.is_dir() && !meta.is_file() {
        return Err(unsafe_path(
            path,
            "is not a regular file".into(),
            format!("rm {q}"),
        ));
    }
    let (owner, me) = (meta.uid(), me());
    if owner != me && !(trust == Trust::Rules && owner == 0) {
        return Err(unsafe_path(
            path,
            format!("is owned by uid {owner}, not you (uid {me})"),
            format!("chown {me} {q}"),
        ));
    }
    let mode = meta.mode() & 0o7777;
    let bad = mode & trust.forbidden();
    if bad != 0 {
        let how = match (bad & 0o022 != 0, bad & 0o055 != 0) {
            (true, true) => "readable and writable",
            (true, false) => "writable",
            _ => "readable",
        };
        return Err(unsafe_path(
            path,
            format!("is {how} by group/others (mode {mode:04o})"),
            format!("chmod {} {q}", trust.fix_mode()),
        ));
    }
    Ok(())
}

/// Checks an existing `path` against `trust`; `Ok(false)` when there is
/// nothing there. Links are followed only for [`Trust::Dir`].
pub fn check_path(path: &Path, trust: Trust) -> Result<bool, Error> {
    let meta = match trust {
        Trust::Dir => fs::metadata(path),
        _ => fs::symlink_metadata(path),
    };
    match meta {
        Ok(meta) => check_meta(path, &meta, trust).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(Error::Open {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A file that says what hoopctl enforces (a policy file), which anyone
/// who can change it can loosen: it may be a link (the user named it),
/// but the file it leads to must be a regular file owned by the user or
/// root and not writable by group/others, and every directory above it
/// must hold (see [`check_ancestors`]: ours or root's, not writable by
/// others unless sticky). Others may read it.
pub fn check_rules_file(path: &Path) -> Result<(), Error> {
    let real = fs::canonicalize(path).map_err(|source| Error::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let meta = fs::metadata(&real).map_err(|source| Error::Open {
        path: real.clone(),
        source,
    })?;
    check_meta(&real, &meta, Trust::Rules)?;
    check_ancestors(&real)
}

/// The directories above one of hoopctl's own: whoever may rename
/// entries in one of them can swap hoopctl's directory for their own. An
/// ancestor must belong to us or to root, and must not be writable by
/// group/others unless it has the sticky bit (like `/tmp`, whose entries
/// only their owner can rename). Missing ancestors are skipped (they are
/// created 0700).
pub fn check_ancestors(dir: &Path) -> Result<(), Error> {
    let me = me();
    for ancestor in dir.ancestors().skip(1) {
        if ancestor.as_os_str().is_empty() {
            continue;
        }
        let meta = match fs::metadata(ancestor) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(Error::Open {
                    path: ancestor.to_path_buf(),
                    source,
                })
            }
        };
        let (owner, mode) = (meta.uid(), meta.mode() & 0o7777);
        let q = quoted(ancestor);
        let held = dir.display();
        if owner != me && owner != 0 {
            return Err(unsafe_path(
                ancestor,
                format!(
                    "(which holds {held}) is owned by uid {owner}, who could replace what hoopctl \
                     keeps there"
                ),
                format!("chown {me} {q}, or choose another place with HOOPCTL_CONFIG_DIR / HOOPCTL_DATA_DIR / HOOPCTL_RUNTIME_DIR"),
            ));
        }
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            return Err(unsafe_path(
                ancestor,
                format!(
                    "(which holds {held}) is writable by group/others without the sticky bit \
                     (mode {mode:04o}), so they could replace it"
                ),
                format!("chmod go-w {q}"),
            ));
        }
    }
    Ok(())
}

/// Opens an existing file for reading without following a link
/// (`O_NOFOLLOW`), then checks what was opened (`fstat`) against `trust`,
/// so that nothing can be swapped in between. `Ok(None)` when missing.
pub fn open_read(path: &Path, trust: Trust) -> Result<Option<fs::File>, Error> {
    open_checked(fs::OpenOptions::new().read(true), path, trust)
}

/// Opens `path` for appending, creating it (mode 0600) when missing,
/// without following a link, then checks what was opened against `trust`
/// (a log file: ours, a regular file, not writable by others).
pub fn open_append(path: &Path, trust: Trust) -> Result<fs::File, Error> {
    let mut options = fs::OpenOptions::new();
    options.create(true).append(true).mode(0o600);
    open_checked(&mut options, path, trust)?.ok_or_else(|| Error::Open {
        path: path.to_path_buf(),
        source: io::ErrorKind::NotFound.into(),
    })
}

/// Opens `path` with `options` and `O_NOFOLLOW`, then checks the open file
/// (`fstat`) against `trust`. `Ok(None)` when there is nothing there.
fn open_checked(
    options: &mut fs::OpenOptions,
    path: &Path,
    trust: Trust,
) -> Result<Option<fs::File>, Error> {
    let opened = options
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(link_refused(path, trust))
        }
        Err(source) => {
            return Err(Error::Open {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let meta = file.metadata().map_err(|source| Error::Open {
        path: path.to_path_buf(),
        source,
    })?;
    check_meta(path, &meta, trust)?;
    Ok(Some(file))
}

/// Reads a whole file through [`open_read`]; `Ok(None)` when missing.
pub fn read_trusted(path: &Path, trust: Trust) -> Result<Option<Vec<u8>>, Error> {
    let Some(mut file) = open_read(path, trust)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut file, &mut bytes).map_err(|source| Error::Open {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Some(bytes))
}

/// Creates `path` and its parents with mode 0700, then checks that the
/// directory (new or existing) is ours and not writable by group/others.
pub fn ensure_dir(path: &Path) -> Result<(), Error> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| Error::Create {
            path: path.to_path_buf(),
            source,
        })?;
    check_path(path, Trust::Dir).map(|_| ())
}

/// How many random names [`write_atomic`] tries for its temporary file
/// before it gives up (each is 16 random hex digits; a clash means
/// someone is planting files there).
const TEMP_ATTEMPTS: usize = 8;

/// Writes `bytes` to `path` atomically with exactly `mode`: a randomly
/// named temporary file in the same directory, created exclusively
/// (`O_CREAT|O_EXCL|O_NOFOLLOW`, so nothing planted there is followed or
/// reused) with the final mode from the start, fsync, rename over
/// `path`, fsync of the directory. The temporary file is removed on any
/// error. Parents are created 0700 (and checked, see [`ensure_dir`]).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    ensure_dir(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut attempt = 0;
    let (tmp, mut file) = loop {
        let suffix = crate::secret::random_hex(8)
            .map_err(|_| io::Error::other("no randomness for a temporary file name"))?;
        let tmp = dir.join(format!(".{name}.{suffix}.tmp"));
        let created = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&tmp);
        match created {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt + 1 < TEMP_ATTEMPTS => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    };
    let result = (|| {
        // The mode given to open() is filtered by the umask (never
        // widened): set it exactly, on the file we created.
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp") || n.contains(".tmp"))
            .collect()
    }

    #[test]
    fn open_append_follows_no_link_and_refuses_a_file_others_can_write() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let log = dir.path().join("hoopctl.log");
        std::os::unix::fs::symlink(&victim, &log).unwrap();
        let err = open_append(&log, Trust::Public).unwrap_err().to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        fs::remove_file(&log).unwrap();
        // Created 0600, appended to.
        for line in ["one\n", "two\n"] {
            let mut f = open_append(&log, Trust::Public).unwrap();
            io::Write::write_all(&mut f, line.as_bytes()).unwrap();
        }
        assert_eq!(fs::read_to_string(&log).unwrap(), "one\ntwo\n");
        assert_eq!(
            fs::metadata(&log).unwrap().permissions().mode() & 0o777,
            0o600
        );
        set_mode(&log, 0o666);
        let err = open_append(&log, Trust::Public).unwrap_err().to_string();
        assert!(
            err.contains("writable by group/others") && err.contains("chmod 644"),
            "{err}"
        );
    }

    #[test]
    fn write_atomic_follows_no_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let target = dir.path().join("config.toml");
        // The name the old code used, and names one might guess.
        for planted in [
            format!(".config.toml.tmp{}", std::process::id()),
            ".config.toml.tmp".into(),
            "config.toml.tmp".into(),
        ] {
            std::os::unix::fs::symlink(&victim, dir.path().join(planted)).unwrap();
        }
        write_private(&target, b"mine").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(fs::read_to_string(&target).unwrap(), "mine");
        let meta = fs::symlink_metadata(&target).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // A link at the target itself is replaced, not written through.
        fs::remove_file(&target).unwrap();
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        write_atomic(&target, b"cert", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        let meta = fs::symlink_metadata(&target).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    }

    #[test]
    fn write_atomic_removes_its_temporary_file_on_error() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should go: the rename fails.
        let target = dir.path().join("taken");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("x"), "x").unwrap();
        assert!(write_private(&target, b"data").is_err());
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn directories_open_to_others_or_not_ours_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("data");
        ensure_dir(&d).unwrap();
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
        set_mode(&d, 0o777);
        let err = ensure_dir(&d).unwrap_err().to_string();
        assert!(
            err.contains("is writable by group/others (mode 0777); run: chmod 700 '"),
            "{err}"
        );
        // Readable is fine for a data directory, not for the runtime one.
        set_mode(&d, 0o755);
        check_path(&d, Trust::Dir).unwrap();
        let err = check_path(&d, Trust::RuntimeDir).unwrap_err().to_string();
        assert!(
            err.contains("readable by group/others (mode 0755)"),
            "{err}"
        );
        // A runtime directory that is a link is refused; a data directory
        // reached through a link is checked where it points.
        set_mode(&d, 0o700);
        let link = dir.path().join("run");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        check_path(&link, Trust::Dir).unwrap();
        let err = check_path(&link, Trust::RuntimeDir)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        // Someone else's directory (the tests run as root in CI; elsewhere
        // chown is not allowed and this part is skipped).
        if me() == 0 {
            nix::unistd::chown(&d, Some(nix::unistd::Uid::from_raw(1001)), None).unwrap();
            let err = check_path(&d, Trust::Dir).unwrap_err().to_string();
            assert!(
                err.contains("is owned by uid 1001, not you (uid 0); run: chown 0 '"),
                "{err}"
            );
        }
        assert!(!check_path(&dir.path().join("missing"), Trust::RuntimeDir).unwrap());
    }

    #[test]
    fn an_ancestor_others_can_write_is_refused_unless_sticky() {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("shared");
        let data = parent.join("hoopctl").join("data");
        ensure_dir(&data).unwrap();
        check_ancestors(&data).unwrap();
        set_mode(&parent, 0o777);
        let err = check_ancestors(&data).unwrap_err().to_string();
        assert!(
            err.contains("is writable by group/others without the sticky bit (mode 0777)")
                && err.contains("run: chmod go-w '"),
            "{err}"
        );
        // Sticky like /tmp: others cannot rename what is ours.
        set_mode(&parent, 0o1777);
        check_ancestors(&data).unwrap();
        if me() == 0 {
            nix::unistd::chown(&parent, Some(nix::unistd::Uid::from_raw(1001)), None).unwrap();
            let err = check_ancestors(&data).unwrap_err().to_string();
            assert!(err.contains("is owned by uid 1001"), "{err}");
        }
    }

    #[test]
    fn secret_files_are_opened_without_links_and_checked_after_open() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        fs::write(&key, "k").unwrap();
        set_mode(&key, 0o644);
        let err = read_trusted(&key, Trust::Secret).unwrap_err().to_string();
        assert!(
            err.contains("is readable by group/others (mode 0644); run: chmod 600 '"),
            "{err}"
        );
        // Others may read a public file, not write it.
        read_trusted(&key, Trust::Public).unwrap().unwrap();
        set_mode(&key, 0o666);
        let err = read_trusted(&key, Trust::Public).unwrap_err().to_string();
        assert!(
            err.contains("readable and writable") || err.contains("writable"),
            "{err}"
        );
        set_mode(&key, 0o600);
        assert_eq!(read_trusted(&key, Trust::Secret).unwrap().unwrap(), b"k");
        let link = dir.path().join("link.pem");
        std::os::unix::fs::symlink(&key, &link).unwrap();
        let err = read_trusted(&link, Trust::Secret).unwrap_err().to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        assert!(read_trusted(&dir.path().join("none"), Trust::Secret)
            .unwrap()
            .is_none());
        // A directory is not a key.
        let err = read_trusted(dir.path(), Trust::Secret)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular file"), "{err}");
        // Quoting survives a quote in the path.
        let odd = dir.path().join("it's.pem");
        fs::write(&odd, "k").unwrap();
        set_mode(&odd, 0o640);
        let err = read_trusted(&odd, Trust::Secret).unwrap_err().to_string();
        assert!(err.contains("it'\\''s.pem'"), "{err}");
    }
}
