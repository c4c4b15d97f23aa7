//! Rehydration: placeholders a session issued are replaced by their
//! originals in what flows back to the agent, including when a placeholder
//! is split across stream pieces (`"<EMA"` then `"IL_1> is"`).
//!
//! Owns: the placeholder grammar on the way back. Must not: touch
//! placeholders the session did not issue (they stay as written).

use std::borrow::Cow;

use super::Session;

/// `<` + stem + `_` + number + `>`; the stem is at most `CUSTOM_` plus a
/// 40-character name, the number at most 20 digits.
const MAX_PLACEHOLDER: usize = 1 + 7 + 40 + 1 + 20 + 1;

enum Shape {
    /// A complete placeholder of this many bytes.
    Full(usize),
    /// Could still become one with more bytes.
    Prefix,
    No,
}

/// What `s` (starting at `<`) begins with.
fn shape(s: &[u8]) -> Shape {
    let mut last_underscore = None;
    for (i, &c) in s.iter().enumerate().skip(1) {
        if i >= MAX_PLACEHOLDER {
            return Shape::No;
        }
        match c {
            b'A'..=b'Z' => {}
            b'0'..=b'9' | b'_' if i > 1 => {
                if c == b'_' {
                    last_underscore = Some(i);
                }
            }
            b'>' => {
                let ok = last_underscore
                    .is_some_and(|u| u + 1 < i && s[u + 1..i].iter().all(u8::is_ascii_digit));
                return if ok { Shape::Full(i + 1) } else { Shape::No };
            }
            _ => return Shape::No,
        }
    }
    Shape::Prefix
}

fn escaped(original: &str) -> String {
    let quoted = serde_json::to_string(original).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_string()
}

/// Replaces complete placeholders in `text`; returns the output and the
/// offset of a trailing partial placeholder, if any.
fn replace(session: &Session, text: &str, json: bool, out: &mut String) -> Option<usize> {
    let b = text.as_bytes();
    let mut last = 0;
    let mut i = 0;
    while let Some(off) = b.get(i..).and_then(|r| r.iter().position(|&c| c == b'<')) {
        let at = i + off;
        match shape(&b[at..]) {
            Shape::Full(n) => {
                let ph = text.get(at..at + n).unwrap_or_default();
                if let Some(orig) = session.original(ph) {
                    out.push_str(text.get(last..at).unwrap_or_default());
                    if json {
                        out.push_str(&escaped(&orig));
                    } else {
                        out.push_str(&orig);
                    }
                    last = at + n;
                }
                i = at + n;
            }
            Shape::Prefix => {
                out.push_str(text.get(last..at).unwrap_or_default());
                return Some(at);
            }
            Shape::No => i = at + 1,
        }
    }
    out.push_str(text.get(last..).unwrap_or_default());
    None
}

pub(super) fn replace_all<'a>(session: &Session, text: &'a str, json: bool) -> Cow<'a, str> {
    if !text.contains('<') || session.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    if let Some(at) = replace(session, text, json, &mut out) {
        out.push_str(text.get(at..).unwrap_or_default());
    }
    if out == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(out)
    }
}

/// Streaming rehydration of successive text pieces: SSE `text_delta`s
/// ([`Rehydrator::new_text`]) or the `partial_json` pieces of one tool
/// input ([`Rehydrator::new_json`], which JSON-escapes originals because
/// they land inside string literals). One per content block; call
/// [`Rehydrator::finish`] at `content_block_stop`.
#[derive(Debug, Default)]
pub struct Rehydrator {
    json: bool,
    pending: String,
}

impl Rehydrator {
    pub fn new_text() -> Self {
        Self::default()
    }

    pub fn new_json() -> Self {
        Self {
            json: true,
            pending: String::new(),
        }
    }

    /// Output for this piece. A possible placeholder at its end is held
    /// back until the next piece completes or rules it out; the output may
    /// therefore be empty.
    pub fn push<'a>(&mut self, session: &Session, piece: &'a str) -> Cow<'a, str> {
        if self.pending.is_empty() && (!piece.contains('<') || session.is_empty()) {
            return Cow::Borrowed(piece);
        }
        let mut buf = std::mem::take(&mut self.pending);
        buf.push_str(piece);
        let mut out = String::with_capacity(buf.len());
        if let Some(at) = replace(session, &buf, self.json, &mut out) {
            self.pending = buf.get(at..).unwrap_or_default().to_string();
        }
        Cow::Owned(out)
    }

    /// Whatever is still held back (an incomplete placeholder, verbatim).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Masking;
    use super::*;

    fn session() -> (Session, String) {
        let s = Session::new();
        let m = Masking::builtin();
        let masked = s
            .mask_text(
                &m,
                "write to jane@example.com, key \"pass\\word=x\" 4111 1111 1111 1111",
            )
            .text
            .into_owned();
        // Register a value with quotes and a newline for the JSON case.
        let k = "-----BEGIN PRIVATE KEY-----\nAB\"CD\n-----END PRIVATE KEY-----";
        let _ = s.mask_text(&m, k);
        (s, masked)
    }

    #[test]
    fn shapes() {
        assert!(matches!(shape(b"<EMAIL_1>"), Shape::Full(9)));
        assert!(matches!(shape(b"<CUSTOM_EMP_ID_12> x"), Shape::Full(18)));
        assert!(matches!(shape(b"<EMA"), Shape::Prefix));
        assert!(matches!(shape(b"<EMAIL_1"), Shape::Prefix));
        assert!(matches!(shape(b"<"), Shape::Prefix));
        assert!(matches!(shape(b"<email_1>"), Shape::No));
        assert!(matches!(shape(b"<EMAIL>"), Shape::No));
        assert!(matches!(shape(b"<EMAIL_>"), Shape::No));
        assert!(matches!(shape(b"<_1>"), Shape::No));
        assert!(matches!(shape(b"< 3"), Shape::No));
        let long = format!("<{}", "A".repeat(MAX_PLACEHOLDER));
        assert!(matches!(shape(long.as_bytes()), Shape::No));
    }

    #[test]
    fn whole_text() {
        let (s, masked) = session();
        assert_eq!(
            masked,
            "write to <EMAIL_1>, key \"pass\\word=x\" <CREDIT_CARD_1>"
        );
        assert_eq!(
            s.rehydrate(&masked),
            "write to jane@example.com, key \"pass\\word=x\" 4111 1111 1111 1111"
        );
        // Unknown placeholders and plain `<` stay.
        let t = "a < b, <EMAIL_9>, <div>";
        assert!(matches!(s.rehydrate(t), Cow::Borrowed(_)));
        assert_eq!(
            s.rehydrate_json(r#"{"k":"<PRIVATE_KEY_1>"}"#),
            r#"{"k":"-----BEGIN PRIVATE KEY-----\nAB\"CD\n-----END PRIVATE KEY-----"}"#
        );
    }

    #[test]
    fn split_at_every_offset() {
        let (s, _) = session();
        let input = "to <EMAIL_1> and <EMAIL_9> a<b <CREDIT_CARD_1><EMAIL_1>!<";
        let want = s.rehydrate(input).into_owned();
        assert!(want.contains("jane@example.com and <EMAIL_9> a<b 4111"));
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let mut r = Rehydrator::new_text();
                let mut got = String::new();
                for piece in [&input[..i], &input[i..j], &input[j..]] {
                    got.push_str(&r.push(&s, piece));
                }
                got.push_str(&r.finish());
                assert_eq!(got, want, "split at {i},{j}");
            }
        }
    }

    #[test]
    fn holds_back_only_possible_placeholders() {
        let (s, _) = session();
        let mut r = Rehydrator::new_text();
        assert_eq!(r.push(&s, "hi <EMA"), "hi ");
        assert_eq!(r.push(&s, "IL_1> is"), "jane@example.com is");
        assert_eq!(r.push(&s, " a <b"), " a <b");
        assert_eq!(r.push(&s, " x <"), " x ");
        assert_eq!(r.finish(), "<");
    }

    #[test]
    fn json_pieces_escape_originals() {
        let (s, _) = session();
        let pieces = [
            "{\"content\": \"",
            "<PRIVATE_",
            "KEY_1> and <EMAIL_1>",
            "\"}",
        ];
        let mut r = Rehydrator::new_json();
        let mut got = String::new();
        for p in pieces {
            got.push_str(&r.push(&s, p));
        }
        got.push_str(&r.finish());
        let v: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(
            v["content"],
            "-----BEGIN PRIVATE KEY-----\nAB\"CD\n-----END PRIVATE KEY----- and jane@example.com"
        );
    }
}
