//! Claude Code: the environment that routes it through hoopctl (SPEC
//! section 2), and `~/.claude/settings.json` for `hoopctl claude configure`.
//!
//! Owns: the variable names and values, and the settings.json merge
//! (every other key kept, atomic write, backup).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::paths;
use crate::proxy::PROXY_USER;
use crate::secret::Secret;

/// Local addresses that must bypass the proxy, or local MCP servers break.
pub const NO_PROXY: &str = "localhost,127.0.0.1,::1";
/// The keys hoopctl sets, in the order it prints them.
pub const KEYS: [&str; 3] = ["HTTPS_PROXY", "NODE_EXTRA_CA_CERTS", "NO_PROXY"];
/// Lowercase twins some HTTP stacks prefer; removed from the child so
/// they cannot send the agent elsewhere.
pub const SHADOWED: [&str; 3] = ["https_proxy", "no_proxy", "http_proxy"];

/// The key Claude Code is given in gateway mode when it has none: hoopctl
/// removes whatever key the agent sends and the gateway holds the real one,
/// but Claude Code will not start without some key.
pub const PLACEHOLDER_KEY: &str = "sk-ant-hoopctl-gateway-placeholder";
pub const API_KEY_VARS: [&str; 2] = ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"];

/// How to reach a running proxy.
#[derive(Debug, Clone)]
pub struct ProxyEnv {
    pub listen: std::net::SocketAddr,
    pub secret: Secret,
    pub ca_cert: PathBuf,
    /// Also set `ANTHROPIC_API_KEY` to [`PLACEHOLDER_KEY`] (gateway mode, no key set).
    pub placeholder_key: bool,
}

/// Whether this process's environment gives Claude Code a key of its own.
pub fn has_own_key() -> bool {
    API_KEY_VARS
        .iter()
        .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))
}

impl ProxyEnv {
    /// `http://hoopctl:SECRET@127.0.0.1:PORT`.
    pub fn proxy_url(&self) -> String {
        format!(
            "http://{PROXY_USER}:{}@{}",
            self.secret.expose(),
            self.listen
        )
    }

    /// Base-URL mode, for agents that cannot use a proxy.
    pub fn base_url(&self) -> String {
        format!(
            "http://{}{}{}",
            self.listen,
            crate::proxy::BASE_URL_PREFIX,
            self.secret.expose()
        )
    }

    /// The variables, in [`KEYS`] order (then the placeholder key, if any).
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            (KEYS[0], self.proxy_url()),
            (KEYS[1], self.ca_cert.display().to_string()),
            (KEYS[2], NO_PROXY.to_string()),
        ];
        if self.placeholder_key {
            vars.push((API_KEY_VARS[0], PLACEHOLDER_KEY.to_string()));
        }
        vars
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON ({source}); fix or move it, hoopctl will not overwrite it")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {what} is not a JSON object; hoopctl will not overwrite it")]
    Shape { path: PathBuf, what: &'static str },
    #[error("could not write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not determine the home directory; set CLAUDE_CONFIG_DIR")]
    NoHome,
}

/// `$CLAUDE_CONFIG_DIR/settings.json`, else `~/.claude/settings.json`.
pub fn settings_path() -> Result<PathBuf, Error> {
    if let Some(dir) = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir).join("settings.json"));
    }
    let base = directories::BaseDirs::new().ok_or(Error::NoHome)?;
    Ok(base.home_dir().join(".claude").join("settings.json"))
}

/// What `configure` / `unconfigure` did.
#[derive(Debug, Serialize)]
pub struct Change {
    pub settings: PathBuf,
    pub backup: Option<PathBuf>,
    /// Keys set (configure) or removed/restored (unconfigure).
    pub keys: Vec<String>,
    pub changed: bool,
}

/// Values the settings had before hoopctl set its keys, restored by `unconfigure`.
#[derive(Debug, Default, Serialize, serde::Deserialize)]
struct Saved {
    env_existed: bool,
    previous: Map<String, Value>,
}

fn read_settings(path: &Path) -> Result<(Map<String, Value>, bool), Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Map::new(), false)),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if text.trim().is_empty() {
        return Ok((Map::new(), true));
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok((m, true)),
        Ok(_) => Err(Error::Shape {
            path: path.to_path_buf(),
            what: "the file",
        }),
        Err(source) => Err(Error::Parse {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write_settings(
    path: &Path,
    map: &Map<String, Value>,
    existed: bool,
) -> Result<Option<PathBuf>, Error> {
    let backup = if existed {
        let b = path.with_extension("json.hoopctl-backup");
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        paths::write_private(&b, &bytes).map_err(|source| Error::Write {
            path: b.clone(),
            source,
        })?;
        Some(b)
    } else {
        None
    };
    let mut text = serde_json::to_string_pretty(map).unwrap_or_default();
    text.push('\n');
    // 0600: the proxy URL in it carries the proxy's secret.
    paths::write_private(path, text.as_bytes()).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(backup)
}

fn is_ours(key: &str, value: &Value, env: &ProxyEnv) -> bool {
    let Some(v) = value.as_str() else {
        return false;
    };
    match key {
        "HTTPS_PROXY" => v.starts_with(&format!("http://{PROXY_USER}:")),
        "NODE_EXTRA_CA_CERTS" => Path::new(v) == env.ca_cert,
        "NO_PROXY" => v == NO_PROXY,
        _ => false,
    }
}

/// Merges hoopctl's keys into the `env` block of `settings`.
/// `state` is where the previous values are kept for `unconfigure`.
pub fn configure(settings: &Path, state: &Path, env: &ProxyEnv) -> Result<Change, Error> {
    let (mut map, existed) = read_settings(settings)?;
    let env_existed = map.contains_key("env");
    let block = map
        .entry("env")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(block) = block else {
        return Err(Error::Shape {
            path: settings.to_path_buf(),
            what: "\"env\"",
        });
    };
    // Remember what was there before hoopctl first touched it.
    if !state.exists() {
        let mut saved = Saved {
            env_existed,
            previous: Map::new(),
        };
        for key in KEYS {
            if let Some(v) = block.get(key).filter(|v| !is_ours(key, v, env)) {
                saved.previous.insert(key.to_string(), v.clone());
            }
        }
        let bytes = serde_json::to_vec_pretty(&saved).unwrap_or_default();
        paths::write_private(state, &bytes).map_err(|source| Error::Write {
            path: state.to_path_buf(),
            source,
        })?;
    }
    let mut changed = false;
    for (key, value) in env.vars() {
        let value = Value::String(value);
        if block.get(key) != Some(&value) {
            block.insert(key.to_string(), value);
            changed = true;
        }
    }
    let backup = if changed {
        write_settings(settings, &map, existed)?
    } else {
        None
    };
    Ok(Change {
        settings: settings.to_path_buf(),
        backup,
        keys: KEYS.iter().map(|k| k.to_string()).collect(),
        changed,
    })
}

/// Removes hoopctl's keys (restoring earlier values); idempotent.
pub fn unconfigure(settings: &Path, state: &Path, env: &ProxyEnv) -> Result<Change, Error> {
    let saved: Saved = std::fs::read(state)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Saved {
            env_existed: true,
            previous: Map::new(),
        });
    let (mut map, existed) = read_settings(settings)?;
    let mut keys = Vec::new();
    if let Some(Value::Object(block)) = map.get_mut("env") {
        for key in KEYS {
            if block.get(key).is_some_and(|v| is_ours(key, v, env)) {
                match saved.previous.get(key) {
                    Some(prev) => block.insert(key.to_string(), prev.clone()),
                    None => block.remove(key),
                };
                keys.push(key.to_string());
            }
        }
        if block.is_empty() && !saved.env_existed {
            map.remove("env");
        }
    }
    let changed = !keys.is_empty();
    let backup = if changed {
        write_settings(settings, &map, existed)?
    } else {
        None
    };
    let _ = std::fs::remove_file(state);
    Ok(Change {
        settings: settings.to_path_buf(),
        backup,
        keys,
        changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(dir: &Path) -> ProxyEnv {
        ProxyEnv {
            listen: "127.0.0.1:7733".parse().unwrap(),
            secret: Secret::new("s3cret"),
            ca_cert: dir.join("ca.pem"),
            placeholder_key: false,
        }
    }

    #[test]
    fn configure_keeps_other_keys_and_unconfigure_restores() {
        let dir = tempfile::tempdir().unwrap();
        let settings = dir.path().join(".claude/settings.json");
        let state = dir.path().join("state.json");
        std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
        let original = r#"{"model":"opus","env":{"FOO":"1","NO_PROXY":"corp.local"},"permissions":{"allow":["Bash(ls)"]}}"#;
        std::fs::write(&settings, original).unwrap();
        let e = env(dir.path());
        let c = configure(&settings, &state, &e).unwrap();
        assert!(c.changed);
        assert_eq!(
            std::fs::read_to_string(c.backup.unwrap()).unwrap(),
            original
        );
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
        assert_eq!(v["model"], "opus");
        assert_eq!(v["permissions"]["allow"][0], "Bash(ls)");
        assert_eq!(v["env"]["FOO"], "1");
        assert_eq!(
            v["env"]["HTTPS_PROXY"],
            "http://hoopctl:s3cret@127.0.0.1:7733"
        );
        assert_eq!(v["env"]["NO_PROXY"], NO_PROXY);
        // Twice is a no-op.
        assert!(!configure(&settings, &state, &e).unwrap().changed);
        let u = unconfigure(&settings, &state, &e).unwrap();
        assert_eq!(u.keys.len(), 3);
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
        let o: Value = serde_json::from_str(original).unwrap();
        assert_eq!(v, o);
        assert!(!unconfigure(&settings, &state, &e).unwrap().changed);
    }

    #[test]
    fn fresh_file_round_trip_and_invalid_file_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let settings = dir.path().join("settings.json");
        let state = dir.path().join("state.json");
        let e = env(dir.path());
        configure(&settings, &state, &e).unwrap();
        unconfigure(&settings, &state, &e).unwrap();
        assert_eq!(std::fs::read_to_string(&settings).unwrap().trim(), "{}");
        std::fs::write(&settings, "{not json").unwrap();
        assert!(matches!(
            configure(&settings, &state, &e),
            Err(Error::Parse { .. })
        ));
        assert_eq!(std::fs::read_to_string(&settings).unwrap(), "{not json");
    }
}
