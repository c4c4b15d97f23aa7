//! The policy: loaded from built-in defaults plus an optional TOML file
//! (SPEC section 7), compiled once and shared as `Arc<Policy>`.
//!
//! Owns: the policy file format and its error messages. Must not: do I/O
//! beyond reading the file in [`Policy::load`]; decisions are pure.

pub mod audit;
pub mod egress;
pub mod guard;
pub mod mask;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use egress::{Decision, Egress};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not read policy file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid policy file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("refusing the policy file: {0}")]
    Unsafe(crate::paths::Error),
}

/// Tables of the policy format that later parts of hoopctl enforce; this
/// build says so instead of ignoring them.
const NOT_YET_ENFORCED: &[&str] = &[];

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    egress: Option<egress::Table>,
    #[serde(default)]
    masking: Option<mask::Table>,
    #[serde(default)]
    guardrails: Option<guard::Table>,
    #[serde(default)]
    audit: Option<audit::Table>,
    #[serde(flatten)]
    rest: toml::Table,
}

/// A compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub egress: Egress,
    pub masking: mask::Masking,
    pub guard: guard::Guard,
    pub audit: audit::Audit,
    /// The file it came from, if any (for messages).
    pub source: Option<PathBuf>,
    /// Tables present in the file that this build does not enforce yet.
    pub unenforced: Vec<String>,
}

impl Policy {
    /// The built-in policy for Claude Code.
    pub fn builtin() -> Self {
        Self {
            egress: Egress::claude_code_default(),
            masking: mask::Masking::builtin(),
            guard: guard::Guard::builtin(),
            audit: audit::Audit::default(),
            source: None,
            unenforced: Vec::new(),
        }
    }

    /// Built-in defaults overlaid with the file at `path`, which must be
    /// safe from other users ([`crate::paths::check_rules_file`]).
    pub fn load(path: &Path) -> Result<Self, Error> {
        crate::paths::check_rules_file(path).map_err(|e| match e {
            crate::paths::Error::Open { path, source } => Error::Read { path, source },
            e => Error::Unsafe(e),
        })?;
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses policy text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let invalid = |message: String| Error::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let file: File = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut unenforced = Vec::new();
        for key in file.rest.keys() {
            if NOT_YET_ENFORCED.contains(&key.as_str()) {
                unenforced.push(key.clone());
            } else {
                return Err(invalid(format!(
                    "unknown table or key `{key}` (known: egress, masking, guardrails, audit)"
                )));
            }
        }
        let egress = match file.egress {
            Some(t) => Egress::from_table(t).map_err(invalid)?,
            None => Egress::claude_code_default(),
        };
        let masking = mask::Masking::from_table(file.masking)
            .map_err(|e| invalid(format!("[masking]: {e}")))?;
        let guard = guard::Guard::from_table(file.guardrails)
            .map_err(|e| invalid(format!("[guardrails]: {e}")))?;
        let audit =
            audit::Audit::from_table(file.audit).map_err(|e| invalid(format!("[audit]: {e}")))?;
        Ok(Self {
            egress,
            masking,
            guard,
            audit,
            source: Some(path.to_path_buf()),
            unenforced,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_file_line_and_field() {
        let text = "[egress]\nintercept = [\"api.anthropic.com\"]\ndefualt = \"deny\"\n";
        let err = Policy::parse(text, Path::new("team.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("team.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("defualt"), "{err}");
    }

    #[test]
    fn bad_value_is_explained() {
        let text = "[egress]\ndefault = \"maybe\"\n";
        let err = Policy::parse(text, Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("default"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn the_audit_table_and_unknown_tables() {
        let text = "[audit]\nretain_days = 3\nfail_closed = true\n[audit.webhook]\nurl = \"http://127.0.0.1:9/x\"\n";
        let p = Policy::parse(text, Path::new("p.toml")).unwrap();
        assert!(p.unenforced.is_empty());
        assert_eq!(p.audit.retain_days, 3);
        assert!(p.audit.fail_closed && p.audit.enabled);
        assert_eq!(p.audit.webhook.as_ref().unwrap().batch, 100);
        assert_eq!(Policy::builtin().audit, audit::Audit::default());
        let err = Policy::parse("[audit.webhook]\nurl = \"ftp://x\"\n", Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[audit]") && err.contains("http"), "{err}");
        let err = Policy::parse("[audit]\nretian_days = 1\n", Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("retian_days"), "{err}");
        let err = Policy::parse("[egres]\n", Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("egres"), "{err}");
    }
}
