//! JSON-aware masking of request bodies without a parse-and-reserialise
//! round trip: one validating pass finds the top-level keys, a second walks
//! only the parts that carry conversation text and splices placeholders
//! into the original bytes. Everything else (key order, spacing, escapes,
//! numbers) is kept byte for byte, and a body with no findings comes back
//! identical.
//!
//! Owns: which parts of a Messages request are text (SPEC section 3 block
//! shapes). Must not: change structure, ids, tool names, signatures or
//! opaque data (thinking, images, encrypted search results).

use std::borrow::Cow;

use super::detect::Scanner;
use super::{Finding, MaskError, Session};

/// How strings under a value are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Validate only.
    Skip,
    /// Mask every string value (telemetry, tool inputs).
    All,
    /// Top-level `system`: a string or text blocks.
    System,
    /// Top-level `messages`: an array of messages.
    Messages,
    /// One message: only `content` is text.
    Message,
    /// A `content`: a string or blocks.
    Content,
    /// A content block: text fields masked, structural fields kept.
    Block,
    /// A document/image `source`; its `data` is text only for `"type":"text"`.
    Source,
    SourceText,
    SourceOpaque,
}

/// Block fields that are structure or opaque data, never text.
const STRUCTURAL: &[&str] = &[
    "type",
    "id",
    "tool_use_id",
    "name",
    "cache_control",
    "signature",
    "thinking",
    "data",
    "encrypted_content",
    "encrypted_index",
    "media_type",
    "file_id",
    "server_name",
    "tool_name",
    "caller",
];

impl Mode {
    fn child(self, key: &str) -> Mode {
        match self {
            Mode::Skip | Mode::Messages => Mode::Skip,
            Mode::All => Mode::All,
            Mode::Message => {
                if key == "content" {
                    Mode::Content
                } else {
                    Mode::Skip
                }
            }
            Mode::System | Mode::Content | Mode::Block => match key {
                "input" => Mode::All,
                "content" => Mode::Content,
                "source" => Mode::Source,
                k if STRUCTURAL.contains(&k) => Mode::Skip,
                _ => Mode::Block,
            },
            Mode::Source | Mode::SourceOpaque => match key {
                "content" => Mode::Content,
                _ => Mode::Skip,
            },
            Mode::SourceText => match key {
                "content" => Mode::Content,
                "data" => Mode::Block,
                _ => Mode::Skip,
            },
        }
    }

    fn element(self) -> Mode {
        match self {
            Mode::Skip | Mode::Message | Mode::Source | Mode::SourceText | Mode::SourceOpaque => {
                Mode::Skip
            }
            Mode::All => Mode::All,
            Mode::Messages => Mode::Message,
            Mode::System | Mode::Content | Mode::Block => Mode::Block,
        }
    }

    fn masks_strings(self) -> bool {
        matches!(
            self,
            Mode::All | Mode::System | Mode::Content | Mode::Block | Mode::Source
        )
    }
}

/// Deep enough for any real request; deeper input is refused rather than
/// risking the stack.
const MAX_DEPTH: usize = 256;

struct Walker<'a> {
    src: &'a [u8],
    pos: usize,
    depth: usize,
    scanner: &'a Scanner,
    session: &'a Session,
    /// Output so far; `src[emitted..]` has not been copied yet.
    out: Vec<u8>,
    emitted: usize,
    findings: Vec<Finding>,
    scratch: String,
}

type Res<T> = Result<T, MaskError>;

pub(super) fn mask(
    scanner: &Scanner,
    session: &Session,
    src: &[u8],
) -> Res<(Vec<u8>, Vec<Finding>)> {
    let mut w = Walker {
        src,
        pos: 0,
        depth: 0,
        scanner,
        session,
        out: Vec::new(),
        emitted: 0,
        findings: Vec::new(),
        scratch: String::new(),
    };
    w.ws();
    let root = w.pos;
    // Optimistic single pass: treat an object as a Messages request (mask
    // only `system` and `messages`); if it has no `messages` array after
    // all, start again masking every string value.
    let messages = w.peek() == Some(b'{') && w.messages_request()?;
    if !messages {
        w.out.clear();
        w.emitted = 0;
        w.findings.clear();
        w.pos = root;
        w.value(Mode::All)?;
    }
    w.ws();
    if w.pos != src.len() {
        return Err(w.err("trailing characters"));
    }
    if w.findings.is_empty() {
        return Ok((src.to_vec(), Vec::new()));
    }
    let rest = src.get(w.emitted..).unwrap_or_default();
    w.out.extend_from_slice(rest);
    Ok((w.out, w.findings))
}

/// Index of the first `"` or `\` in `s`, eight bytes at a time.
fn find_quote_or_backslash(s: &[u8]) -> Option<usize> {
    find2(s, b'"', b'\\')
}

/// Index of the first `a` or `b` in `s`, eight bytes at a time.
fn find2(s: &[u8], a: u8, b: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut i = 0;
    for chunk in s.chunks_exact(8) {
        let w = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        if has_zero(w ^ (ONES * u64::from(a))) | has_zero(w ^ (ONES * u64::from(b))) != 0 {
            break;
        }
        i += 8;
    }
    s.get(i..)?
        .iter()
        .position(|&c| c == a || c == b)
        .map(|p| i + p)
}

impl<'a> Walker<'a> {
    fn err(&self, reason: &'static str) -> MaskError {
        MaskError::Json {
            offset: self.pos,
            reason,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8, reason: &'static str) -> Res<()> {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(reason))
        }
    }

    /// Walks the top-level object as a Messages request; true if it has a
    /// `messages` array.
    fn messages_request(&mut self) -> Res<bool> {
        let mut messages = false;
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(false);
        }
        loop {
            self.ws();
            let key = self.key()?;
            self.expect(b':', "expected `:`")?;
            self.ws();
            let mode = match &*key {
                "system" => Mode::System,
                "messages" if self.peek() == Some(b'[') => {
                    messages = true;
                    Mode::Messages
                }
                _ => Mode::Skip,
            };
            self.value(mode)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(messages);
                }
                _ => return Err(self.err("expected `,` or `}`")),
            }
        }
    }

    fn value(&mut self, mode: Mode) -> Res<()> {
        self.ws();
        match self.peek() {
            Some(b'{') => self.nested(mode, true),
            Some(b'[') => self.nested(mode, false),
            Some(b'"') => {
                let (start, end, escaped) = self.string()?;
                if mode.masks_strings() {
                    self.mask_string(start, end, escaped)?;
                }
                Ok(())
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => {
                while matches!(
                    self.peek(),
                    Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                ) {
                    self.pos += 1;
                }
                Ok(())
            }
            _ => Err(self.err("expected a value")),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Res<()> {
        if self.src.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn nested(&mut self, mode: Mode, object: bool) -> Res<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        let r = if object {
            self.object(mode)
        } else {
            self.array(mode)
        };
        self.depth -= 1;
        r
    }

    fn object(&mut self, mut mode: Mode) -> Res<()> {
        if mode == Mode::Source {
            mode = if self.object_type()?.as_deref() == Some("text") {
                Mode::SourceText
            } else {
                Mode::SourceOpaque
            };
        }
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let child = if mode == Mode::Skip || mode == Mode::All {
                self.string()?;
                mode
            } else {
                let key = self.key()?;
                mode.child(&key)
            };
            self.expect(b':', "expected `:`")?;
            self.value(child)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected `,` or `}`")),
            }
        }
    }

    /// The `type` string of the object at `pos`, without moving.
    fn object_type(&mut self) -> Res<Option<String>> {
        let saved = self.pos;
        let mut found = None;
        self.pos += 1;
        self.ws();
        if self.peek() != Some(b'}') {
            loop {
                self.ws();
                let key = self.key()?.into_owned();
                self.expect(b':', "expected `:`")?;
                self.ws();
                if key == "type" && self.peek() == Some(b'"') {
                    found = Some(self.key()?.into_owned());
                } else {
                    self.value(Mode::Skip)?;
                }
                self.ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => break,
                    _ => return Err(self.err("expected `,` or `}`")),
                }
            }
        }
        self.pos = saved;
        Ok(found)
    }

    fn array(&mut self, mode: Mode) -> Res<()> {
        let elem = mode.element();
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.value(elem)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected `,` or `]`")),
            }
        }
    }

    /// A string token at `pos`: (content start, content end, has escapes).
    fn string(&mut self) -> Res<(usize, usize, bool)> {
        if self.peek() != Some(b'"') {
            return Err(self.err("expected a string"));
        }
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            let rest = self.src.get(self.pos..).unwrap_or_default();
            let Some(i) = find_quote_or_backslash(rest) else {
                return Err(self.err("unterminated string"));
            };
            self.pos += i;
            if self.peek() == Some(b'"') {
                let end = self.pos;
                self.pos += 1;
                return Ok((start, end, escaped));
            }
            escaped = true;
            self.pos += 2;
        }
    }

    /// A key (or short string) decoded.
    fn key(&mut self) -> Res<Cow<'a, str>> {
        let (start, end, escaped) = self.string()?;
        let src: &'a [u8] = self.src;
        let raw = src
            .get(start..end)
            .and_then(|r| std::str::from_utf8(r).ok())
            .ok_or_else(|| self.err("string is not UTF-8"))?;
        if !escaped {
            return Ok(Cow::Borrowed(raw));
        }
        let mut s = String::new();
        unescape(raw, &mut s, None).map_err(|r| self.err(r))?;
        Ok(Cow::Owned(s))
    }

    fn mask_string(&mut self, start: usize, end: usize, escaped: bool) -> Res<()> {
        let src: &'a [u8] = self.src;
        let raw = src
            .get(start..end)
            .and_then(|r| std::str::from_utf8(r).ok())
            .ok_or_else(|| self.err("string is not UTF-8"))?;
        let mut scratch = std::mem::take(&mut self.scratch);
        let text: &str = if escaped {
            scratch.clear();
            unescape(raw, &mut scratch, None).map_err(|r| self.err(r))?;
            &scratch
        } else {
            raw
        };
        let spans = self.scanner.scan(text);
        if !spans.is_empty() {
            let mut map = Vec::new();
            if escaped {
                let mut again = String::with_capacity(text.len());
                unescape(raw, &mut again, Some(&mut map)).map_err(|r| self.err(r))?;
            }
            let to_raw = |u: usize| -> usize {
                let i = map.partition_point(|&(uu, _)| uu <= u);
                match i.checked_sub(1).and_then(|j| map.get(j)) {
                    Some(&(uu, rr)) => rr + (u - uu),
                    None => u,
                }
            };
            if self.out.capacity() == 0 {
                self.out.reserve(src.len() + src.len() / 8);
            }
            let mut inner = self.session.lock();
            for sp in spans {
                let (Some(d), Some(value)) =
                    (self.scanner.detector(sp.det), text.get(sp.start..sp.end))
                else {
                    continue;
                };
                let placeholder = inner.placeholder(&d.label, value);
                let (rs, re) = (start + to_raw(sp.start), start + to_raw(sp.end));
                self.out
                    .extend_from_slice(src.get(self.emitted..rs).unwrap_or_default());
                self.out.extend_from_slice(placeholder.as_bytes());
                self.emitted = re;
                self.findings.push(Finding {
                    detector: d.name.clone(),
                    start: rs,
                    end: re,
                    placeholder,
                });
            }
        }
        self.scratch = scratch;
        Ok(())
    }
}

/// Decodes a JSON string body into `out`. With `map`, records
/// (decoded offset, raw offset) pairs at both edges of every escape, so a
/// decoded offset maps back to the raw text.
fn unescape(
    raw: &str,
    out: &mut String,
    mut map: Option<&mut Vec<(usize, usize)>>,
) -> Result<(), &'static str> {
    let b = raw.as_bytes();
    let mut i = 0;
    while let Some(off) = b.get(i..).and_then(|r| find2(r, b'\\', b'\\')) {
        let at = i + off;
        out.push_str(raw.get(i..at).unwrap_or_default());
        if let Some(m) = map.as_deref_mut() {
            m.push((out.len(), at));
        }
        let (ch, len) = match b.get(at + 1) {
            Some(b'"') => ('"', 2),
            Some(b'\\') => ('\\', 2),
            Some(b'/') => ('/', 2),
            Some(b'b') => ('\u{8}', 2),
            Some(b'f') => ('\u{c}', 2),
            Some(b'n') => ('\n', 2),
            Some(b'r') => ('\r', 2),
            Some(b't') => ('\t', 2),
            Some(b'u') => {
                let hi = hex4(b, at + 2).ok_or("invalid \\u escape")?;
                let lo = (b.get(at + 6) == Some(&b'\\') && b.get(at + 7) == Some(&b'u'))
                    .then(|| hex4(b, at + 8))
                    .flatten();
                match (hi, lo) {
                    (0xD800..=0xDBFF, Some(lo @ 0xDC00..=0xDFFF)) => {
                        let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                        (char::from_u32(c).unwrap_or('\u{FFFD}'), 12)
                    }
                    _ => (char::from_u32(hi).unwrap_or('\u{FFFD}'), 6),
                }
            }
            _ => return Err("invalid escape"),
        };
        out.push(ch);
        i = at + len;
        if let Some(m) = map.as_deref_mut() {
            m.push((out.len(), i));
        }
    }
    out.push_str(raw.get(i..).unwrap_or_default());
    Ok(())
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let s = std::str::from_utf8(b.get(at..at + 4)?).ok()?;
    u32::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::super::{Masking, Session};
    use serde_json::{json, Value};

    fn mask(body: &Value) -> (Value, Vec<super::Finding>, Session) {
        let s = Session::new();
        let bytes = serde_json::to_vec(body).unwrap();
        let (out, findings, _) = s.mask_messages_json(&Masking::builtin(), &bytes).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        for f in &findings {
            // Spans point into the original body.
            assert!(f.end <= bytes.len() && f.start < f.end);
        }
        (v, findings, s)
    }

    #[test]
    fn messages_request_keeps_structure() {
        let body = json!({
            "model": "claude-sonnet-4-5 a@example.com",
            "max_tokens": 1024,
            "system": [{"type": "text", "text": "User is jane@example.com", "cache_control": {"type": "ephemeral"}}],
            "tools": [{"name": "Bash", "description": "mail ops@example.com", "input_schema": {"type": "object"}}],
            "metadata": {"user_id": "user_a@example.com"},
            "messages": [
                {"role": "user", "content": "my card is 4111 1111 1111 1111"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "jane@example.com", "signature": "sig"},
                    {"type": "text", "text": "Emailing jane@example.com"},
                    {"type": "tool_use", "id": "toolu_01", "name": "Bash",
                     "input": {"command": "mail jane@example.com", "opts": {"cc": ["b@example.com"]}, "n": 3}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "sent to b@example.com"},
                    {"type": "tool_result", "tool_use_id": "toolu_02", "is_error": true,
                     "content": [{"type": "text", "text": "SSN 123-45-6789"}]},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "a@example.com"}},
                    {"type": "document", "source": {"data": "doc by c@example.com", "media_type": "text/plain", "type": "text"},
                     "title": "notes", "context": "from d@example.com"}
                ]}
            ]
        });
        let (v, findings, _) = mask(&body);
        let want = json!({
            "model": "claude-sonnet-4-5 a@example.com",
            "max_tokens": 1024,
            "system": [{"type": "text", "text": "User is <EMAIL_1>", "cache_control": {"type": "ephemeral"}}],
            "tools": [{"name": "Bash", "description": "mail ops@example.com", "input_schema": {"type": "object"}}],
            "metadata": {"user_id": "user_a@example.com"},
            "messages": [
                {"role": "user", "content": "my card is <CREDIT_CARD_1>"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "jane@example.com", "signature": "sig"},
                    {"type": "text", "text": "Emailing <EMAIL_1>"},
                    {"type": "tool_use", "id": "toolu_01", "name": "Bash",
                     "input": {"command": "mail <EMAIL_1>", "opts": {"cc": ["<EMAIL_2>"]}, "n": 3}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "sent to <EMAIL_2>"},
                    {"type": "tool_result", "tool_use_id": "toolu_02", "is_error": true,
                     "content": [{"type": "text", "text": "SSN <US_SSN_1>"}]},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "a@example.com"}},
                    {"type": "document", "source": {"data": "doc by <EMAIL_4>", "media_type": "text/plain", "type": "text"},
                     "title": "notes", "context": "from <EMAIL_3>"}
                ]}
            ]
        });
        assert_eq!(v, want);
        let c = super::super::counts(&findings);
        assert_eq!(c.get("email"), Some(&7));
        assert_eq!(c.get("credit_card"), Some(&1));
        assert_eq!(c.get("us_ssn"), Some(&1));
    }

    #[test]
    fn system_as_string_and_escapes() {
        let body = json!({
            "system": "line\n\"quoted\" jane@example.com\tend \u{e9}",
            "messages": [{"role": "user", "content": "key:\n-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\nbye"}]
        });
        let bytes = serde_json::to_vec(&body).unwrap();
        let s = Session::new();
        let (out, findings, _) = s.mask_messages_json(&Masking::builtin(), &bytes).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["system"], "line\n\"quoted\" <EMAIL_1>\tend \u{e9}");
        assert_eq!(v["messages"][0]["content"], "key:\n<PRIVATE_KEY_1>\nbye");
        // Raw spans cover the escaped form in the body.
        // serde_json writes keys sorted: `messages` comes first.
        let key = &findings[0];
        let raw = std::str::from_utf8(&bytes[key.start..key.end]).unwrap();
        assert!(raw.starts_with("-----BEGIN") && raw.contains("\\n") && raw.ends_with("KEY-----"));
        assert_eq!(
            &bytes[findings[1].start..findings[1].end],
            b"jane@example.com"
        );
    }

    #[test]
    fn untouched_body_is_byte_identical() {
        let text = "{ \"model\" : \"x\",\n  \"messages\": [ {\"role\":\"user\",\"content\":\"hi \\u00e9\\/\"} ] , \"n\": -1.5e3 }";
        let s = Session::new();
        let (out, f, _) = s
            .mask_messages_json(&Masking::builtin(), text.as_bytes())
            .unwrap();
        assert_eq!(out, text.as_bytes());
        assert!(f.is_empty());
        // And only the masked value changes when something is found.
        let with = text.replace("hi ", "hi a@example.com ");
        let (out, _, _) = s
            .mask_messages_json(&Masking::builtin(), with.as_bytes())
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            text.replace("hi ", "hi <EMAIL_1> ")
        );
    }

    #[test]
    fn telemetry_masks_all_values_but_not_keys() {
        let body = json!({"events": [{"a@example.com": "a@example.com", "n": 1, "nested": {"msg": "call +44 20 7946 0958"}}]});
        let (v, _, _) = mask(&body);
        assert_eq!(
            v,
            json!({"events": [{"a@example.com": "<EMAIL_1>", "n": 1, "nested": {"msg": "call <PHONE_1>"}}]})
        );
        let (v, _, _) = mask(&json!(["b@example.com", null, true]));
        assert_eq!(v, json!(["<EMAIL_1>", null, true]));
    }

    #[test]
    fn invalid_json_is_an_error_and_falls_back() {
        let s = Session::new();
        let m = Masking::builtin();
        for bad in [
            &b"{\"a\": }"[..],
            b"{\"a\": 1} x",
            b"[\"unterminated",
            b"{\"a\" 1}",
            b"{\"a\": \"\\q\"}",
            b"{\"a\": tru}",
            b"\"\xff\"",
        ] {
            assert!(s.mask_messages_json(&m, bad).is_err(), "{bad:?}");
        }
        let deep = "[".repeat(10_000);
        assert!(s.mask_messages_json(&m, deep.as_bytes()).is_err());
        let (out, f, _) = s.mask_body(&m, b"{broken a@example.com");
        assert_eq!(out, b"{broken <EMAIL_1>");
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn surrogate_escapes_map_back() {
        let text =
            r#"{"messages":[{"role":"user","content":"\ud83d\ude00 a@example.com \ud800 x"}]}"#;
        let s = Session::new();
        let (out, f, _) = s
            .mask_messages_json(&Masking::builtin(), text.as_bytes())
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"messages":[{"role":"user","content":"\ud83d\ude00 <EMAIL_1> \ud800 x"}]}"#
        );
        assert_eq!(&text.as_bytes()[f[0].start..f[0].end], b"a@example.com");
    }

    #[test]
    fn quote_scan_finds_every_position() {
        for n in 0..40 {
            let mut s = vec![b'a'; n];
            assert_eq!(super::find_quote_or_backslash(&s), None);
            for (i, c) in [(0usize, b'"'), (n / 2, b'\\'), (n.saturating_sub(1), b'"')] {
                if n > 0 {
                    s[i] = c;
                    assert_eq!(super::find_quote_or_backslash(&s), Some(i));
                    s[i] = b'a';
                }
            }
        }
    }
}

/// A realistic Claude Code request (system prompt, tool definitions, a
/// conversation of source files, command output and git logs) of about
/// `target` bytes, with a few sensitive values sprinkled in.
#[cfg(test)]
pub(super) fn realistic_body(target: usize) -> Vec<u8> {
    use serde_json::{json, Value};
    const CODE: &str = r#"use std::collections::HashMap;

/// Parses the config at `path` (see RFC 7231 section 6.5.1).
pub fn load(path: &Path) -> Result<Config, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Read(e))?;
    let mut map: HashMap<String, u64> = HashMap::with_capacity(1024);
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') { continue; }
        let (k, v) = line.split_once('=').ok_or(Error::Syntax { line: i + 1 })?;
        map.insert(k.trim().to_string(), v.trim().parse().unwrap_or(0));
    }
    let token = env::var("SERVICE_TOKEN").ok();
    let timeout = Duration::from_millis(map.get("timeout_ms").copied().unwrap_or(30_000));
    Ok(Config { map, token, timeout, version: "1.24.3", build: 20240115 })
}
"#;
    const LS: &str = "total 48\ndrwxr-xr-x  12 dev  staff   384 Jan 15 10:30 .\n-rw-r--r--   1 dev  staff  1067 Jan 15 10:30 Cargo.toml\n-rw-r--r--   1 dev  staff 52311 Jan 15 10:31 Cargo.lock\ndrwxr-xr-x   8 dev  staff   256 Jan 14 18:02 src\n";
    const GIT: &str = "commit 3f9a1c2b7e5d4a6f8091b2c3d4e5f60718293a4b\nAuthor: Jane Doe <jane.doe@example.com>\nDate:   Mon Jan 15 10:30:00 2024 +0100\n\n    Fix timeout handling (#1234)\n\n    Co-Authored-By: Claude <noreply@anthropic.com>\n";
    const PROSE: &str = "I'll look at the configuration loader first, then run the tests. The failure in test_timeout suggests the default of 30000 ms is applied before the file is read; version 2.3.1 changed the order. Let me check src/config.rs lines 40-58.\n";
    const JSONF: &str = "{\n  \"name\": \"web\",\n  \"version\": \"3.2.1\",\n  \"dependencies\": {\"react\": \"^18.2.0\", \"zod\": \"3.22.4\"},\n  \"port\": 8080,\n  \"retries\": [100, 200, 400]\n}\n";
    let mut messages: Vec<Value> = Vec::new();
    let mut size = 0;
    let mut i = 0usize;
    while size < target {
        let file = match i % 4 {
            0 => CODE.repeat(3),
            1 => LS.repeat(5),
            2 => GIT.repeat(4),
            _ => JSONF.repeat(6),
        };
        let secret = if i % 50 == 7 {
            format!(
                "\nDB_PASSWORD=hunter{i}x2\ncard 4111 1111 1111 1111 call +1 415 555 {:04}",
                i % 10_000
            )
        } else {
            String::new()
        };
        let id = format!("toolu_01{i:020}");
        messages.push(json!({"role": "assistant", "content": [
            {"type": "text", "text": PROSE},
            {"type": "tool_use", "id": id, "name": "Read", "input": {"file_path": format!("/home/dev/project/src/file_{i}.rs")}}
        ]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": id, "content": format!("{file}{secret}")}
        ]}));
        size += file.len() + PROSE.len() + 300;
        i += 1;
    }
    let tools: Vec<Value> = (0..20)
        .map(|t| {
            json!({"name": format!("tool_{t}"), "description": PROSE.repeat(8),
            "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}})
        })
        .collect();
    let body = json!({
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "system": [{"type": "text", "text": PROSE.repeat(40), "cache_control": {"type": "ephemeral"}}],
        "tools": tools,
        "messages": messages,
        "stream": true
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod corpus_tests {
    use super::super::{Masking, Session};
    use super::realistic_body;

    #[test]
    fn one_megabyte_body() {
        let body = realistic_body(1 << 20);
        assert!(body.len() > 1 << 20);
        let s = Session::new();
        let t = std::time::Instant::now();
        let (out, findings, counts) = s.mask_messages_json(&Masking::builtin(), &body).unwrap();
        let took = t.elapsed();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v["messages"].as_array().is_some_and(|m| m.len() > 100));
        assert!(counts.get("credit_card").is_some_and(|&n| n > 1));
        assert!(counts.get("generic_secret").is_some_and(|&n| n > 1));
        assert!(counts.get("phone").is_some_and(|&n| n > 1));
        // Commit authors are masked, the co-author trailer is not.
        assert!(counts.get("email").is_some_and(|&n| n > 10));
        assert!(!findings.is_empty());
        // Generous: unoptimised test builds are ~20x slower than release.
        assert!(took.as_secs() < 20, "{took:?}");
    }
}
