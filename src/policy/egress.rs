//! Egress: for each host an agent asks to reach, intercept it (TLS
//! terminated and inspected), tunnel it unchanged, or deny it.
//!
//! Pure and sync. The built-in lists are documented in README.md.

use serde::Deserialize;

/// What the proxy does with a CONNECT (or absolute-form) target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Intercept,
    Tunnel,
    Deny,
}

/// Hosts Claude Code talks to whose traffic hoopctl inspects.
pub const CLAUDE_CODE_INTERCEPT: &[&str] = &["api.anthropic.com"];

/// Hosts Claude Code needs for its own sign-in and updates, tunneled
/// unchanged (its network documentation; see README "Egress").
/// `sentry.io` and `statsig.anthropic.com` carry error reports and
/// telemetry out of the machine, so they are denied unless allowed.
pub const CLAUDE_CODE_TUNNEL: &[&str] = &[
    "claude.ai",
    "platform.claude.com",
    "console.anthropic.com",
    "downloads.claude.ai",
    "registry.npmjs.org",
];

/// The `[egress]` table of a policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Replaces the built-in intercept list when given.
    #[serde(default)]
    intercept: Option<Vec<String>>,
    /// Tunneled unchanged, in addition to the built-in sign-in/update hosts.
    #[serde(default)]
    allow: Vec<String>,
    /// Denied even if another list names them.
    #[serde(default)]
    deny: Vec<String>,
    /// What happens to any other host.
    #[serde(default)]
    default: Option<Default>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Default {
    Deny,
    Tunnel,
}

/// Compiled egress rules.
#[derive(Debug, Clone)]
pub struct Egress {
    intercept: Vec<String>,
    allow: Vec<String>,
    deny: Vec<String>,
    default: Default,
}

impl Egress {
    pub fn claude_code_default() -> Self {
        Self {
            intercept: CLAUDE_CODE_INTERCEPT
                .iter()
                .map(|s| s.to_string())
                .collect(),
            allow: CLAUDE_CODE_TUNNEL.iter().map(|s| s.to_string()).collect(),
            deny: Vec::new(),
            default: Default::Deny,
        }
    }

    pub(crate) fn from_table(t: Table) -> Result<Self, String> {
        let mut e = Self::claude_code_default();
        if let Some(list) = t.intercept {
            e.intercept = list;
        }
        e.allow.extend(t.allow);
        e.deny = t.deny;
        if let Some(d) = t.default {
            e.default = d;
        }
        for list in [&mut e.intercept, &mut e.allow, &mut e.deny] {
            for pattern in list.iter_mut() {
                *pattern = normalize(pattern);
                if pattern.is_empty() || pattern.contains(['/', ':', ' ']) {
                    return Err(format!("egress: `{pattern}` is not a host name or glob"));
                }
            }
        }
        for pattern in &e.intercept {
            if pattern.contains('*') {
                return Err(format!(
                    "egress.intercept: `{pattern}`: intercepted hosts must be named exactly (the CA is constrained to them)"
                ));
            }
        }
        Ok(e)
    }

    /// The decision for `host` (any port).
    pub fn decide(&self, host: &str) -> Decision {
        let host = normalize(host);
        let hit = |list: &[String]| list.iter().any(|p| glob_match(p, &host));
        if hit(&self.deny) {
            Decision::Deny
        } else if hit(&self.intercept) {
            Decision::Intercept
        } else if hit(&self.allow) {
            Decision::Tunnel
        } else {
            match self.default {
                Default::Deny => Decision::Deny,
                Default::Tunnel => Decision::Tunnel,
            }
        }
    }

    /// The hosts whose TLS is terminated; the CA is constrained to them.
    pub fn intercepted(&self) -> &[String] {
        &self.intercept
    }
}

/// Lowercase, without a trailing dot or IPv6 brackets.
fn normalize(host: &str) -> String {
    host.trim()
        .trim_end_matches('.')
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// `*` matches any run of characters; everything else literally.
fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_code_defaults() {
        let e = Egress::claude_code_default();
        assert_eq!(e.decide("api.anthropic.com"), Decision::Intercept);
        assert_eq!(e.decide("API.Anthropic.com."), Decision::Intercept);
        assert_eq!(e.decide("claude.ai"), Decision::Tunnel);
        assert_eq!(e.decide("platform.claude.com"), Decision::Tunnel);
        assert_eq!(e.decide("example.com"), Decision::Deny);
        assert_eq!(e.decide("sentry.io"), Decision::Deny);
        assert_eq!(e.decide("evil-api.anthropic.com"), Decision::Deny);
    }

    #[test]
    fn globs() {
        assert!(glob_match("*.example.com", "a.example.com"));
        assert!(glob_match("*.example.com", "a.b.example.com"));
        assert!(!glob_match("*.example.com", "example.com"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("git*.com", "github.com"));
        assert!(!glob_match("github.com", "github.co"));
    }

    #[test]
    fn table_overrides() {
        let t: Table = toml::from_str(
            "allow = [\"*.github.com\"]\ndeny = [\"claude.ai\"]\ndefault = \"tunnel\"",
        )
        .unwrap();
        let e = Egress::from_table(t).unwrap();
        assert_eq!(e.decide("api.github.com"), Decision::Tunnel);
        assert_eq!(e.decide("claude.ai"), Decision::Deny);
        assert_eq!(e.decide("whatever.org"), Decision::Tunnel);
        assert_eq!(e.decide("api.anthropic.com"), Decision::Intercept);
    }

    #[test]
    fn intercept_globs_are_refused() {
        let t: Table = toml::from_str("intercept = [\"*.anthropic.com\"]").unwrap();
        assert!(Egress::from_table(t).unwrap_err().contains("named exactly"));
    }
}
