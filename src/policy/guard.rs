//! Guardrails: for each tool call the model asks for (a `tool_use` block,
//! SPEC §3), allow it, block it, or hold it for a person to review.
//!
//! The user's `[[guardrails.rules]]` are checked first (first match wins; an
//! `allow` rule overrides the catalogue for that call), then the built-in
//! catalogue of destructive operations (`builtin:*` rules), else allow.
//! SPEC §7 has the table format.
//!
//! Owns: the `[guardrails]` table, [`Decision`] and the catalogue (shell
//! reading in `shell`, SQL in `sql`, the rules in `catalogue`). Must not:
//! do I/O — the home directory is passed in with [`Guard::with_home`] — or
//! panic on any input.

mod catalogue;
mod shell;
mod sql;

use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use catalogue::{Analyzer, Protected};

/// Paths whose files Write/Edit/MultiEdit/NotebookEdit may not touch
/// unless `protected_paths` replaces the list.
pub const DEFAULT_PROTECTED_PATHS: &[&str] =
    &["~/.ssh", "~/.aws", "~/.gnupg", "~/.config/hoopctl", "/etc"];

/// Every rule name the built-in catalogue can report.
pub const BUILTIN_RULES: &[&str] = &[
    "builtin:rm-recursive-broad",
    "builtin:rm-recursive",
    "builtin:mkfs",
    "builtin:dd-device",
    "builtin:write-block-device",
    "builtin:chmod-777-recursive",
    "builtin:chmod-recursive-broad",
    "builtin:chown-recursive-broad",
    "builtin:fork-bomb",
    "builtin:curl-pipe-shell",
    "builtin:git-force-push",
    "builtin:git-clean-fdx",
    "builtin:git-reset-hard",
    "builtin:kubectl-delete",
    "builtin:kubectl-delete-broad",
    "builtin:terraform-destroy",
    "builtin:aws-s3-rm-recursive",
    "builtin:aws-s3-rb-force",
    "builtin:gcloud-delete",
    "builtin:docker-prune-all",
    "builtin:shutdown",
    "builtin:find-delete-broad",
    "builtin:sql-drop",
    "builtin:sql-truncate",
    "builtin:sql-delete-all",
    "builtin:sql-update-all",
    "builtin:sql-drop-column",
    "builtin:protected-path",
    "builtin:unparsable",
];

const DEFAULT_REVIEW_TIMEOUT_SECS: u64 = 300;

/// What a rule does with a call it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Block,
    Review,
}

/// What happens to a held call nobody answers within the review timeout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnTimeout {
    #[default]
    Deny,
    Allow,
}

/// The `[guardrails]` table of a policy file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Whether the built-in catalogue applies.
    #[serde(default = "default_true")]
    pub builtin: bool,
    #[serde(default = "default_review_timeout")]
    pub review_timeout_secs: u64,
    #[serde(default)]
    pub on_timeout: OnTimeout,
    /// Replaces [`DEFAULT_PROTECTED_PATHS`] when given.
    #[serde(default)]
    pub protected_paths: Option<Vec<String>>,
    #[serde(default)]
    pub rules: Vec<RuleTable>,
}

fn default_true() -> bool {
    true
}

fn default_review_timeout() -> u64 {
    DEFAULT_REVIEW_TIMEOUT_SECS
}

/// One `[[guardrails.rules]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTable {
    pub name: String,
    /// A tool name, or a glob with `*` and `?` (`mcp__*`).
    pub tool: String,
    /// A top-level input field (`command`); absent, the whole input as JSON.
    #[serde(default)]
    pub field: Option<String>,
    /// A regular expression searched for in the field.
    pub pattern: String,
    pub action: Action,
    pub reason: String,
}

/// The verdict on one tool call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Block { rule: String, reason: String },
    Review { rule: String, reason: String },
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// The rule that decided, unless nothing matched.
    pub fn rule(&self) -> Option<&str> {
        match self {
            Decision::Allow => None,
            Decision::Block { rule, .. } | Decision::Review { rule, .. } => Some(rule),
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Decision::Allow => None,
            Decision::Block { reason, .. } | Decision::Review { reason, .. } => Some(reason),
        }
    }

    /// One line for the agent, the TUI and the record: "blocked by policy
    /// rule `builtin:rm-recursive-broad`: recursive delete of `~` (the home
    /// directory)".
    pub fn explain(&self) -> String {
        match self {
            Decision::Allow => "allowed".to_string(),
            Decision::Block { rule, reason } => {
                format!("blocked by policy rule `{rule}`: {reason}")
            }
            Decision::Review { rule, reason } => {
                format!("held for review by policy rule `{rule}`: {reason}")
            }
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.explain())
    }
}

/// A [`Decision`] plus, when a user `allow` rule let the call through, that
/// rule's name (the catalogue may have objected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    #[serde(flatten)]
    pub decision: Decision,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_by: Option<String>,
}

/// What the catalogue found in one call (internal).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    rule: &'static str,
    block: bool,
    reason: String,
}

impl Finding {
    fn block(rule: &'static str, reason: impl Into<String>) -> Self {
        Self {
            rule,
            block: true,
            reason: reason.into(),
        }
    }

    fn review(rule: &'static str, reason: impl Into<String>) -> Self {
        Self {
            rule,
            block: false,
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    tool: Regex,
    field: Option<String>,
    pattern: Regex,
    action: Action,
    reason: String,
}

impl Rule {
    fn compile(index: usize, t: RuleTable) -> Result<Self, String> {
        let label = if t.name.trim().is_empty() {
            format!("guardrails.rules[{index}]")
        } else {
            format!("guardrails rule `{}`", t.name)
        };
        let err = |field: &str, msg: String| format!("{label}: field `{field}`: {msg}");
        if t.name.trim().is_empty() {
            return Err(err("name", "must not be empty".into()));
        }
        if t.name.starts_with("builtin:") {
            return Err(err("name", "the `builtin:` prefix is reserved".into()));
        }
        if t.tool.trim().is_empty() {
            return Err(err("tool", "must not be empty".into()));
        }
        if t.field.as_deref().is_some_and(|f| f.trim().is_empty()) {
            return Err(err(
                "field",
                "must not be empty (omit it to match the whole input)".into(),
            ));
        }
        let tool = Regex::new(&glob_regex(&t.tool))
            .map_err(|e| err("tool", format!("invalid glob `{}`: {e}", t.tool)))?;
        let pattern = Regex::new(&t.pattern)
            .map_err(|e| err("pattern", format!("invalid regex `{}`: {e}", t.pattern)))?;
        Ok(Self {
            name: t.name,
            tool,
            field: t.field,
            pattern,
            action: t.action,
            reason: t.reason,
        })
    }

    fn matches(&self, tool: &str, input: &Value) -> bool {
        if !self.tool.is_match(tool) {
            return false;
        }
        match &self.field {
            Some(f) => match input.get(f) {
                Some(Value::String(s)) => self.pattern.is_match(s),
                Some(v) => self.pattern.is_match(&v.to_string()),
                None => false,
            },
            None => self.pattern.is_match(&input.to_string()),
        }
    }
}

fn glob_regex(glob: &str) -> String {
    let mut re = String::from("^");
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    re.push('$');
    re
}

/// Compiled guardrails.
#[derive(Debug, Clone)]
pub struct Guard {
    builtin: bool,
    review_timeout: Duration,
    on_timeout: OnTimeout,
    protected_raw: Vec<String>,
    protected: Vec<Protected>,
    rules: Vec<Rule>,
    home: Option<String>,
}

impl Default for Guard {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Guard {
    /// The shipped defaults: catalogue on, 300 s review timeout, deny on
    /// timeout, the default protected paths, no user rules, no home.
    pub fn builtin() -> Self {
        let protected_raw: Vec<String> = DEFAULT_PROTECTED_PATHS
            .iter()
            .map(|s| s.to_string())
            .collect();
        Self {
            builtin: true,
            review_timeout: Duration::from_secs(DEFAULT_REVIEW_TIMEOUT_SECS),
            on_timeout: OnTimeout::Deny,
            protected: compile_protected(&protected_raw, None),
            protected_raw,
            rules: Vec::new(),
            home: None,
        }
    }

    /// Compiles a `[guardrails]` table (absent: [`Guard::builtin`]). The
    /// error names the rule and the field at fault.
    pub fn from_table(table: Option<Table>) -> Result<Self, String> {
        let mut g = Self::builtin();
        let Some(t) = table else { return Ok(g) };
        if t.review_timeout_secs == 0 {
            return Err("guardrails: field `review_timeout_secs`: must be at least 1".into());
        }
        g.builtin = t.builtin;
        g.review_timeout = Duration::from_secs(t.review_timeout_secs);
        g.on_timeout = t.on_timeout;
        if let Some(paths) = t.protected_paths {
            if let Some(i) = paths.iter().position(|p| p.trim().is_empty()) {
                return Err(format!(
                    "guardrails: field `protected_paths`: entry {i} is empty"
                ));
            }
            g.protected = compile_protected(&paths, None);
            g.protected_raw = paths;
        }
        let mut seen: Vec<&str> = Vec::new();
        for (i, r) in t.rules.iter().enumerate() {
            if seen.contains(&r.name.as_str()) {
                return Err(format!(
                    "guardrails rule `{}`: field `name`: used by more than one rule",
                    r.name
                ));
            }
            seen.push(&r.name);
            g.rules.push(Rule::compile(i, r.clone())?);
        }
        Ok(g)
    }

    /// The user's home directory, for `~` and `$HOME` in protected paths,
    /// file paths and `rm` targets. Without it, `~` is only matched as
    /// written.
    pub fn with_home(mut self, home: impl Into<PathBuf>) -> Self {
        let home = home.into().to_string_lossy().into_owned();
        self.home = Some(home).filter(|h| !h.is_empty());
        self.protected = compile_protected(&self.protected_raw, self.home.as_deref());
        self
    }

    pub fn review_timeout(&self) -> Duration {
        self.review_timeout
    }

    pub fn on_timeout(&self) -> OnTimeout {
        self.on_timeout
    }

    pub fn builtin_enabled(&self) -> bool {
        self.builtin
    }

    /// The protected paths as configured (before `~` expansion).
    pub fn protected_paths(&self) -> &[String] {
        &self.protected_raw
    }

    /// The decision on a call to `tool` with `input`.
    pub fn decide(&self, tool: &str, input: &Value) -> Decision {
        self.judge(tool, input).decision
    }

    /// Like [`Guard::decide`], also naming the user rule that allowed it.
    pub fn judge(&self, tool: &str, input: &Value) -> Verdict {
        if let Some(rule) = self.rules.iter().find(|r| r.matches(tool, input)) {
            let (rule_name, reason) = (rule.name.clone(), rule.reason.clone());
            let decision = match rule.action {
                Action::Allow => {
                    return Verdict {
                        decision: Decision::Allow,
                        allowed_by: Some(rule_name),
                    }
                }
                Action::Block => Decision::Block {
                    rule: rule_name,
                    reason,
                },
                Action::Review => Decision::Review {
                    rule: rule_name,
                    reason,
                },
            };
            return Verdict {
                decision,
                allowed_by: None,
            };
        }
        let decision = if self.builtin {
            self.catalogue(tool, input)
        } else {
            Decision::Allow
        };
        Verdict {
            decision,
            allowed_by: None,
        }
    }

    fn catalogue(&self, tool: &str, input: &Value) -> Decision {
        let mut a = Analyzer::new(self.home.as_deref(), &self.protected);
        a.tool(tool, input);
        let worst = a
            .findings
            .iter()
            .find(|f| f.block)
            .or_else(|| a.findings.first());
        match worst {
            None => Decision::Allow,
            Some(f) if f.block => Decision::Block {
                rule: f.rule.to_string(),
                reason: f.reason.clone(),
            },
            Some(f) => Decision::Review {
                rule: f.rule.to_string(),
                reason: f.reason.clone(),
            },
        }
    }
}

fn compile_protected(paths: &[String], home: Option<&str>) -> Vec<Protected> {
    paths.iter().map(|p| Protected::new(p, home)).collect()
}

#[cfg(test)]
mod tests;
