//! Masking (SPEC section 7 `[masking]`): finds sensitive values in what the
//! agent sends (emails, cards, keys, tokens, custom patterns), replaces each
//! distinct value with a per-session placeholder (`<EMAIL_1>`), and can put
//! the originals back into what flows back to the agent.
//!
//! Owns: the `[masking]` table, the detectors, placeholder numbering, the
//! JSON-aware walk of a Messages request body and rehydration. Must not: do
//! I/O, log values, or put an original value into a finding or an error.
//!
//! Layout: `detect` (detectors and overlap rules), `json` (request bodies),
//! `rehydrate` (placeholders back to originals, streaming-safe).

mod detect;
mod json;
mod rehydrate;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use regex::Regex;
use serde::{Deserialize, Serialize};

pub use detect::BUILTIN;
pub use rehydrate::Rehydrator;

/// The `[masking]` table of a policy file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Built-in detectors to run; all of them when absent.
    #[serde(default)]
    pub detectors: Option<Vec<String>>,
    /// Restore original values in what flows back to the agent.
    #[serde(default)]
    pub rehydrate: bool,
    /// `[[masking.custom]]` rules.
    #[serde(default)]
    pub custom: Vec<Custom>,
    /// What happens to telemetry bodies (`/api/event_logging/...`).
    #[serde(default)]
    pub telemetry: Telemetry,
}

/// A `[[masking.custom]]` rule: a named regex.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Custom {
    pub name: String,
    pub pattern: String,
}

/// What the proxy does with telemetry requests (SPEC section 2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Telemetry {
    /// Mask every string value, then send.
    #[default]
    Mask,
    /// Do not send at all.
    Block,
}

/// Compiled masking rules; cheap to clone (the regexes are shared).
#[derive(Debug, Clone)]
pub struct Masking {
    scanner: detect::Scanner,
    rehydrate: bool,
    telemetry: Telemetry,
}

/// Longest custom name, so placeholders stay short and streaming
/// rehydration can bound what it holds back.
const MAX_CUSTOM_NAME: usize = 40;

impl Masking {
    /// Every built-in detector on, no rehydration, telemetry masked.
    pub fn builtin() -> Self {
        let kinds: Vec<detect::Kind> = BUILTIN
            .iter()
            .filter_map(|n| detect::Kind::from_name(n))
            .collect();
        // The built-in patterns are constants that every unit test compiles,
        // so this cannot fail at run time.
        #[allow(clippy::expect_used)]
        let scanner =
            detect::Scanner::new(&kinds, Vec::new()).expect("built-in masking patterns compile");
        Self {
            scanner,
            rehydrate: false,
            telemetry: Telemetry::Mask,
        }
    }

    /// Compiles a `[masking]` table (`None`: the built-in defaults). The
    /// error names the offending field.
    pub fn from_table(table: Option<Table>) -> Result<Self, String> {
        let Some(t) = table else {
            return Ok(Self::builtin());
        };
        let kinds = match &t.detectors {
            None => BUILTIN
                .iter()
                .filter_map(|n| detect::Kind::from_name(n))
                .collect(),
            Some(names) => {
                let mut kinds = Vec::new();
                for n in names {
                    let kind = detect::Kind::from_name(n).ok_or_else(|| {
                        format!(
                            "masking.detectors: unknown detector `{n}` (known: {})",
                            BUILTIN.join(", ")
                        )
                    })?;
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                    }
                }
                kinds
            }
        };
        let mut custom = Vec::new();
        for c in t.custom {
            let valid_name = c.name.len() <= MAX_CUSTOM_NAME
                && c.name.starts_with(|ch: char| ch.is_ascii_alphabetic())
                && c.name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
            if !valid_name {
                return Err(format!(
                    "masking.custom `{}`: name must be a letter followed by letters, digits, `_` or `-` (at most {MAX_CUSTOM_NAME})",
                    c.name
                ));
            }
            if BUILTIN.contains(&c.name.as_str())
                || custom.iter().any(|(n, _): &(String, Regex)| n == &c.name)
            {
                return Err(format!(
                    "masking.custom `{}`: name is already used by another detector",
                    c.name
                ));
            }
            let regex = Regex::new(&c.pattern)
                .map_err(|e| format!("masking.custom `{}`: invalid pattern: {e}", c.name))?;
            if regex.is_match("") {
                return Err(format!(
                    "masking.custom `{}`: pattern matches the empty string",
                    c.name
                ));
            }
            custom.push((c.name, regex));
        }
        let scanner = detect::Scanner::new(&kinds, custom)
            .map_err(|e| format!("masking.custom: patterns do not compile together: {e}"))?;
        Ok(Self {
            scanner,
            rehydrate: t.rehydrate,
            telemetry: t.telemetry,
        })
    }

    /// Whether originals are restored in responses.
    pub fn rehydrate(&self) -> bool {
        self.rehydrate
    }

    pub fn telemetry(&self) -> Telemetry {
        self.telemetry
    }

    /// True when no detector is enabled (masking is a no-op).
    pub fn is_empty(&self) -> bool {
        self.scanner.is_empty()
    }

    /// Enabled detector names, built-in first, then custom.
    pub fn detectors(&self) -> impl Iterator<Item = &str> {
        self.scanner.names()
    }
}

/// One masked value. Never carries the original.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Detector name (`email`, or a custom rule's name).
    pub detector: String,
    /// Byte span in the original input (for a JSON body: the span of the
    /// encoded value inside the body, escapes included).
    pub start: usize,
    pub end: usize,
    pub placeholder: String,
}

/// Findings per detector name.
pub type Counts = BTreeMap<String, usize>;

/// Counts findings per detector.
pub fn counts(findings: &[Finding]) -> Counts {
    let mut c = Counts::new();
    for f in findings {
        *c.entry(f.detector.clone()).or_default() += 1;
    }
    c
}

/// Masked text; borrowed when nothing was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked<'a> {
    pub text: Cow<'a, str>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    #[error("request body is not valid JSON at byte {offset}: {reason}")]
    Json { offset: usize, reason: &'static str },
}

/// Placeholder numbering for one agent session (the caller keys sessions,
/// e.g. by `X-Claude-Code-Session-Id`): the same value always gets the same
/// placeholder, so re-sent history masks identically and prompt caching
/// keeps working. Shareable across connections (`Arc<Session>`).
#[derive(Debug, Default)]
pub struct Session {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_value: HashMap<String, String>,
    by_placeholder: HashMap<String, String>,
    next: HashMap<String, usize>,
}

impl Inner {
    fn placeholder(&mut self, label: &str, value: &str) -> String {
        if let Some(p) = self.by_value.get(value) {
            return p.clone();
        }
        let n = self.next.entry(label.to_string()).or_insert(0);
        *n += 1;
        let p = format!("<{label}_{n}>");
        self.by_value.insert(value.to_string(), p.clone());
        self.by_placeholder.insert(p.clone(), value.to_string());
        p
    }
}

impl Session {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the maps consistent (every
        // insert pair is completed before anything can panic), so a
        // poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of distinct values masked so far.
    pub fn len(&self) -> usize {
        self.lock().by_placeholder.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The original behind a placeholder this session issued.
    pub(crate) fn original(&self, placeholder: &str) -> Option<String> {
        self.lock().by_placeholder.get(placeholder).cloned()
    }

    /// Masks plain text.
    pub fn mask_text<'a>(&self, masking: &Masking, text: &'a str) -> Masked<'a> {
        let mut findings = Vec::new();
        let text = self.mask_str(masking, text, 0, &mut findings);
        Masked { text, findings }
    }

    /// Masks `text`, reporting spans shifted by `base`.
    fn mask_str<'a>(
        &self,
        masking: &Masking,
        text: &'a str,
        base: usize,
        findings: &mut Vec<Finding>,
    ) -> Cow<'a, str> {
        let spans = masking.scanner.scan(text);
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        let mut inner = self.lock();
        for sp in spans {
            let (Some(d), Some(value), Some(before)) = (
                masking.scanner.detector(sp.det),
                text.get(sp.start..sp.end),
                text.get(last..sp.start),
            ) else {
                continue;
            };
            let placeholder = inner.placeholder(&d.label, value);
            out.push_str(before);
            out.push_str(&placeholder);
            last = sp.end;
            findings.push(Finding {
                detector: d.name.clone(),
                start: base + sp.start,
                end: base + sp.end,
                placeholder,
            });
        }
        out.push_str(text.get(last..).unwrap_or_default());
        Cow::Owned(out)
    }

    /// Masks an Anthropic Messages request body (or any JSON: then every
    /// string value is masked, keys never). Only string contents change;
    /// every other byte is kept as sent. The caller fixes Content-Length.
    pub fn mask_messages_json(
        &self,
        masking: &Masking,
        body: &[u8],
    ) -> Result<(Vec<u8>, Vec<Finding>, Counts), MaskError> {
        if masking.is_empty() {
            return Ok((body.to_vec(), Vec::new(), Counts::new()));
        }
        let (out, findings) = json::mask(&masking.scanner, self, body)?;
        let c = counts(&findings);
        Ok((out, findings, c))
    }

    /// Masks any request body: JSON-aware when it parses as JSON, else as
    /// text; in bytes that are not UTF-8 only the UTF-8 runs are masked and
    /// the rest is kept byte for byte. The body must already be decoded
    /// (no Content-Encoding).
    pub fn mask_body(&self, masking: &Masking, body: &[u8]) -> (Vec<u8>, Vec<Finding>, Counts) {
        if let Ok(r) = self.mask_messages_json(masking, body) {
            return r;
        }
        let mut findings = Vec::new();
        let mut out = Vec::with_capacity(body.len());
        let mut base = 0;
        for chunk in body.utf8_chunks() {
            let text = self.mask_str(masking, chunk.valid(), base, &mut findings);
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(chunk.invalid());
            base += chunk.valid().len() + chunk.invalid().len();
        }
        let c = counts(&findings);
        (out, findings, c)
    }

    /// Puts originals back for every placeholder this session issued.
    pub fn rehydrate<'a>(&self, text: &'a str) -> Cow<'a, str> {
        rehydrate::replace_all(self, text, false)
    }

    /// Like [`Session::rehydrate`] for JSON text whose placeholders sit
    /// inside string literals (a non-streaming response body): originals
    /// are JSON-escaped.
    pub fn rehydrate_json<'a>(&self, json_text: &'a str) -> Cow<'a, str> {
        rehydrate::replace_all(self, json_text, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(toml_text: &str) -> Result<Masking, String> {
        #[derive(Deserialize)]
        struct F {
            masking: Table,
        }
        let f: F = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        Masking::from_table(Some(f.masking))
    }

    #[test]
    fn table_defaults_and_fields() {
        let m = table("[masking]\n").unwrap();
        assert_eq!(m.detectors().count(), BUILTIN.len());
        assert!(!m.rehydrate());
        assert_eq!(m.telemetry(), Telemetry::Mask);
        let m = table(
            "[masking]\ndetectors = [\"email\"]\nrehydrate = true\ntelemetry = \"block\"\n\
             [[masking.custom]]\nname = \"employee_id\"\npattern = 'EMP-\\d{6}'\n",
        )
        .unwrap();
        assert_eq!(m.detectors().collect::<Vec<_>>(), ["email", "employee_id"]);
        assert!(m.rehydrate());
        assert_eq!(m.telemetry(), Telemetry::Block);
        assert!(Masking::from_table(None).unwrap().detectors().count() == BUILTIN.len());
        let none = table("[masking]\ndetectors = []\n").unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn table_errors_name_the_field() {
        let e = table("[masking]\ndetectors = [\"emali\"]\n").unwrap_err();
        assert!(
            e.contains("masking.detectors") && e.contains("emali"),
            "{e}"
        );
        let e = table("[[masking.custom]]\nname = \"emp\"\npattern = 'EMP-(\\d'\n").unwrap_err();
        assert!(
            e.contains("masking.custom `emp`") && e.contains("pattern"),
            "{e}"
        );
        let e = table("[[masking.custom]]\nname = \"email\"\npattern = 'x'\n").unwrap_err();
        assert!(e.contains("already used"), "{e}");
        let e = table("[[masking.custom]]\nname = \"x y\"\npattern = 'x'\n").unwrap_err();
        assert!(e.contains("name"), "{e}");
        let e = table("[[masking.custom]]\nname = \"e\"\npattern = 'x*'\n").unwrap_err();
        assert!(e.contains("empty string"), "{e}");
        let e = table("[masking]\nrehydrat = true\n").unwrap_err();
        assert!(e.contains("rehydrat"), "{e}");
        let e = table("[masking]\ntelemetry = \"drop\"\n").unwrap_err();
        assert!(e.contains("drop"), "{e}");
    }

    #[test]
    fn placeholders_are_consistent_per_session() {
        let m = Masking::builtin();
        let s = Session::new();
        let a = s.mask_text(
            &m,
            "mail a@example.com and b@example.com, again a@example.com",
        );
        assert_eq!(a.text, "mail <EMAIL_1> and <EMAIL_2>, again <EMAIL_1>");
        assert_eq!(a.findings.len(), 3);
        assert_eq!(a.findings[0].start, 5);
        assert_eq!(a.findings[0].end, 18);
        assert_eq!(a.findings[0].detector, "email");
        let b = s.mask_text(&m, "b@example.com then card 4111 1111 1111 1111");
        assert_eq!(b.text, "<EMAIL_2> then card <CREDIT_CARD_1>");
        assert_eq!(s.len(), 3);
        // Another session numbers independently.
        let other = Session::new();
        assert_eq!(other.mask_text(&m, "b@example.com").text, "<EMAIL_1>");
        // Masked output re-masked is unchanged.
        let again = s.mask_text(&m, &b.text);
        assert!(again.findings.is_empty());
        assert!(matches!(again.text, Cow::Borrowed(_)));
    }

    #[test]
    fn custom_placeholders() {
        let m =
            table("[[masking.custom]]\nname = \"employee-id\"\npattern = 'EMP-\\d{6}'\n").unwrap();
        let s = Session::new();
        let r = s.mask_text(&m, "EMP-123456 / EMP-654321 / EMP-123456");
        assert_eq!(
            r.text,
            "<CUSTOM_EMPLOYEE_ID_1> / <CUSTOM_EMPLOYEE_ID_2> / <CUSTOM_EMPLOYEE_ID_1>"
        );
        assert_eq!(counts(&r.findings).get("employee-id"), Some(&3));
    }

    #[test]
    fn nothing_found_borrows() {
        let m = Masking::builtin();
        let s = Session::new();
        let r = s.mask_text(&m, "fn main() { println!(\"{}\", 1 + 2); }");
        assert!(matches!(r.text, Cow::Borrowed(_)));
        assert!(r.findings.is_empty());
    }

    #[test]
    fn body_falls_back_to_text_and_keeps_invalid_bytes() {
        let m = Masking::builtin();
        let s = Session::new();
        let (out, f, c) = s.mask_body(&m, b"not json: a@example.com");
        assert_eq!(out, b"not json: <EMAIL_1>");
        assert_eq!((f[0].start, f[0].end), (10, 23));
        assert_eq!(c.get("email"), Some(&1));
        let mut bin = b"\xff\xfe x a@example.com \xc3".to_vec();
        bin.extend_from_slice(b" b@example.com");
        let (out, f, _) = s.mask_body(&m, &bin);
        assert_eq!(out, b"\xff\xfe x <EMAIL_1> \xc3 <EMAIL_2>");
        assert_eq!((f[1].start, f[1].end), (21, 34));
        assert_eq!(&bin[f[1].start..f[1].end], b"b@example.com");
    }

    #[test]
    fn disabled_masking_is_a_no_op() {
        let m = Masking::from_table(Some(Table {
            detectors: Some(Vec::new()),
            ..Table::default()
        }))
        .unwrap();
        let s = Session::new();
        let body = br#"{"messages":[{"role":"user","content":"a@example.com"}]}"#;
        let (out, f, _) = s.mask_body(&m, body);
        assert_eq!(out, body);
        assert!(f.is_empty());
    }
}
