//! The `[audit]` table: whether and how sessions are recorded.

use serde::Deserialize;

/// Days kept when the policy does not say.
pub const DEFAULT_RETAIN_DAYS: u32 = 90;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    enabled: Option<bool>,
    fail_closed: Option<bool>,
    retain_days: Option<u32>,
    webhook: Option<WebhookTable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookTable {
    url: String,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    batch: Option<usize>,
}

/// The compiled table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// Record sessions in the local store.
    pub enabled: bool,
    /// A store that cannot write stops traffic (an Anthropic-shaped 503)
    /// instead of warning and going on.
    pub fail_closed: bool,
    /// Sessions whose last event is older than this are deleted (0 keeps all).
    pub retain_days: u32,
    pub webhook: Option<Webhook>,
}

/// Live shipping of recorded events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    /// Extra request headers (e.g. a SIEM token).
    pub headers: Vec<(String, String)>,
    /// Events per POST.
    pub batch: usize,
}

impl Default for Audit {
    fn default() -> Self {
        Self {
            enabled: true,
            fail_closed: false,
            retain_days: DEFAULT_RETAIN_DAYS,
            webhook: None,
        }
    }
}

impl Audit {
    pub fn from_table(t: Option<Table>) -> Result<Self, String> {
        let Some(t) = t else {
            return Ok(Self::default());
        };
        let webhook = match t.webhook {
            None => None,
            Some(w) => {
                let uri: http::Uri = w
                    .url
                    .parse()
                    .map_err(|e| format!("webhook.url {:?}: {e}", w.url))?;
                if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                    return Err(format!(
                        "webhook.url {:?} must be an http:// or https:// URL",
                        w.url
                    ));
                }
                for (k, v) in &w.headers {
                    http::HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| format!("webhook.headers: {k:?} is not a header name"))?;
                    http::HeaderValue::from_str(v)
                        .map_err(|_| format!("webhook.headers: the value of {k:?} is not valid"))?;
                }
                let batch = w.batch.unwrap_or(100);
                if !(1..=10_000).contains(&batch) {
                    return Err(format!("webhook.batch must be 1 to 10000, not {batch}"));
                }
                Some(Webhook {
                    url: w.url,
                    headers: w.headers.into_iter().collect(),
                    batch,
                })
            }
        };
        Ok(Self {
            enabled: t.enabled.unwrap_or(true),
            fail_closed: t.fail_closed.unwrap_or(false),
            retain_days: t.retain_days.unwrap_or(DEFAULT_RETAIN_DAYS),
            webhook,
        })
    }
}
