//! Egress: for each host and port an agent asks to reach, intercept it
//! (TLS terminated and inspected), tunnel it unchanged, or deny it.
//! Intercepted and allowed hosts are reached on port 443 only, unless an
//! `allow` entry names another port (`host:port`, `host:*` for any).
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

/// The only port of intercepted hosts, and of allowed hosts whose `allow`
/// entry names no port.
pub const HTTPS_PORT: u16 = 443;

/// The `[egress]` table of a policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Replaces the built-in intercept list when given.
    #[serde(default)]
    intercept: Option<Vec<String>>,
    /// Tunneled unchanged, in addition to the built-in sign-in/update hosts:
    /// `host` (port 443), `host:port`, or `host:*` (any port).
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

/// Which ports an `allow` entry opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ports {
    One(u16),
    Any,
}

/// One `allow` entry: a host glob and its ports.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    host: String,
    ports: Ports,
}

impl Allowed {
    /// `host`, `host:port` or `host:*`.
    fn parse(entry: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("egress.allow: `{entry}`: {why}");
        let entry = entry.trim();
        let (host, ports) = match entry.rsplit_once(':') {
            None => (entry, Ports::One(HTTPS_PORT)),
            Some((host, "*")) => (host, Ports::Any),
            Some((host, port)) => match port.parse::<u16>() {
                Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => {
                    (host, Ports::One(p))
                }
                _ => return Err(bad("the port must be a number from 1 to 65535, or *")),
            },
        };
        let host = normalize(host);
        if host.is_empty() || host.contains(['/', ':', ' ']) {
            return Err(bad("not a host name or glob (host, host:port or host:*)"));
        }
        Ok(Self { host, ports })
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        let port_ok = match self.ports {
            Ports::One(p) => p == port,
            Ports::Any => true,
        };
        port_ok && glob_match(&self.host, host)
    }
}

/// Compiled egress rules.
#[derive(Debug, Clone)]
pub struct Egress {
    intercept: Vec<String>,
    allow: Vec<Allowed>,
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
            allow: CLAUDE_CODE_TUNNEL
                .iter()
                .map(|s| Allowed {
                    host: s.to_string(),
                    ports: Ports::One(HTTPS_PORT),
                })
                .collect(),
            deny: Vec::new(),
            default: Default::Deny,
        }
    }

    pub(crate) fn from_table(t: Table) -> Result<Self, String> {
        let mut e = Self::claude_code_default();
        if let Some(list) = t.intercept {
            e.intercept = list;
        }
        for entry in &t.allow {
            e.allow.push(Allowed::parse(entry)?);
        }
        e.deny = t.deny;
        if let Some(d) = t.default {
            e.default = d;
        }
        for (key, list) in [("intercept", &mut e.intercept), ("deny", &mut e.deny)] {
            for pattern in list.iter_mut() {
                *pattern = normalize(pattern);
                if pattern.is_empty() || pattern.contains(['/', ' ']) {
                    return Err(format!("egress: `{pattern}` is not a host name or glob"));
                }
                if pattern.contains(':') {
                    return Err(format!(
                        "egress.{key}: `{pattern}`: name the host alone (ports are for `allow` entries)"
                    ));
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

    /// The decision for `host` on `port`. Denied hosts are denied on every
    /// port; intercepted hosts are intercepted on 443 only (on another port
    /// only an `allow` entry naming it tunnels them); allowed hosts are
    /// tunneled on the ports their entry names; anything else gets the default.
    pub fn decide(&self, host: &str, port: u16) -> Decision {
        let host = normalize(host);
        let allowed = self.allow.iter().any(|a| a.matches(&host, port));
        if self.deny.iter().any(|p| glob_match(p, &host)) {
            Decision::Deny
        } else if self.intercepts(&host) {
            match (port == HTTPS_PORT, allowed) {
                (true, _) => Decision::Intercept,
                (false, true) => Decision::Tunnel,
                (false, false) => Decision::Deny,
            }
        } else if allowed {
            Decision::Tunnel
        } else {
            match self.default {
                Default::Deny => Decision::Deny,
                Default::Tunnel => Decision::Tunnel,
            }
        }
    }

    /// Whether `host` is on the intercept list (whatever the port).
    pub fn intercepts(&self, host: &str) -> bool {
        let host = normalize(host);
        self.intercept.iter().any(|p| glob_match(p, &host))
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
        assert_eq!(e.decide("api.anthropic.com", 443), Decision::Intercept);
        assert_eq!(e.decide("API.Anthropic.com.", 443), Decision::Intercept);
        assert_eq!(e.decide("claude.ai", 443), Decision::Tunnel);
        assert_eq!(e.decide("platform.claude.com", 443), Decision::Tunnel);
        assert_eq!(e.decide("example.com", 443), Decision::Deny);
        assert_eq!(e.decide("sentry.io", 443), Decision::Deny);
        assert_eq!(e.decide("evil-api.anthropic.com", 443), Decision::Deny);
    }

    #[test]
    fn known_hosts_only_on_443() {
        let e = Egress::claude_code_default();
        assert_eq!(e.decide("claude.ai", 25), Decision::Deny);
        assert_eq!(e.decide("claude.ai", 80), Decision::Deny);
        assert_eq!(e.decide("api.anthropic.com", 22), Decision::Deny);
        assert_eq!(e.decide("registry.npmjs.org", 8443), Decision::Deny);
    }

    #[test]
    fn allow_entries_may_name_ports() {
        let t: Table = toml::from_str(
            "allow = [\"git.example.com:22\", \"*.corp.example:*\", \"plain.example.com\", \"api.anthropic.com:8443\"]",
        )
        .unwrap();
        let e = Egress::from_table(t).unwrap();
        assert_eq!(e.decide("git.example.com", 22), Decision::Tunnel);
        assert_eq!(e.decide("git.example.com", 443), Decision::Deny);
        assert_eq!(e.decide("a.corp.example", 5432), Decision::Tunnel);
        assert_eq!(e.decide("a.corp.example", 443), Decision::Tunnel);
        assert_eq!(e.decide("plain.example.com", 443), Decision::Tunnel);
        assert_eq!(e.decide("plain.example.com", 80), Decision::Deny);
        // An intercepted host on another port is tunneled only when named with it.
        assert_eq!(e.decide("api.anthropic.com", 8443), Decision::Tunnel);
        assert_eq!(e.decide("api.anthropic.com", 25), Decision::Deny);
        assert_eq!(e.decide("api.anthropic.com", 443), Decision::Intercept);
    }

    #[test]
    fn bad_ports_in_entries_are_refused() {
        for entry in ["h:0", "h:65536", "h:x", "h:", ":443", "h:-1", "a:b:c"] {
            let t: Table = toml::from_str(&format!("allow = [\"{entry}\"]")).unwrap();
            assert!(Egress::from_table(t).is_err(), "{entry}");
        }
        let t: Table = toml::from_str("deny = [\"h:25\"]").unwrap();
        assert!(Egress::from_table(t).unwrap_err().contains("host alone"));
        let t: Table = toml::from_str("intercept = [\"h:443\"]").unwrap();
        assert!(Egress::from_table(t).is_err());
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
        assert_eq!(e.decide("api.github.com", 443), Decision::Tunnel);
        assert_eq!(e.decide("claude.ai", 443), Decision::Deny);
        assert_eq!(e.decide("claude.ai", 8080), Decision::Deny);
        // `default = "tunnel"` opens every other host and port, as before.
        assert_eq!(e.decide("whatever.org", 443), Decision::Tunnel);
        assert_eq!(e.decide("whatever.org", 25), Decision::Tunnel);
        assert_eq!(e.decide("api.anthropic.com", 443), Decision::Intercept);
    }

    #[test]
    fn intercept_globs_are_refused() {
        let t: Table = toml::from_str("intercept = [\"*.anthropic.com\"]").unwrap();
        assert!(Egress::from_table(t).unwrap_err().contains("named exactly"));
    }
}
