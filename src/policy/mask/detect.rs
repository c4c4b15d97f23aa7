//! Detectors: a candidate regex per kind of sensitive value, then a
//! validation step (Luhn, mod-97, SSN ranges, a JWT header that decodes,
//! a keyword near an AWS secret) so near-misses are not masked.
//!
//! Owns: what counts as a sensitive value and which one wins an overlap.
//! Must not: know about sessions, placeholders' numbering or JSON.

use std::collections::BTreeMap;

use regex::{Regex, RegexSet};

/// Built-in detector names, as written in `[masking] detectors` and in findings.
pub const BUILTIN: &[&str] = &[
    "email",
    "phone",
    "credit_card",
    "us_ssn",
    "iban",
    "aws_access_key",
    "aws_secret_key",
    "private_key",
    "jwt",
    "github_token",
    "slack_token",
    "anthropic_key",
    "generic_secret",
];

/// Anything shaped like a placeholder is reserved: never re-masked.
pub(super) const PLACEHOLDER: &str = r"<[A-Z][A-Z0-9_]*_[0-9]+>";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Email,
    Phone,
    CreditCard,
    UsSsn,
    Iban,
    AwsAccessKey,
    AwsSecretKey,
    PrivateKey,
    Jwt,
    GithubToken,
    SlackToken,
    AnthropicKey,
    GenericSecret,
    Custom,
}

const KINDS: [Kind; 13] = [
    Kind::Email,
    Kind::Phone,
    Kind::CreditCard,
    Kind::UsSsn,
    Kind::Iban,
    Kind::AwsAccessKey,
    Kind::AwsSecretKey,
    Kind::PrivateKey,
    Kind::Jwt,
    Kind::GithubToken,
    Kind::SlackToken,
    Kind::AnthropicKey,
    Kind::GenericSecret,
];

// ASCII word boundaries keep every pattern inside the lazy DFA (a Unicode
// `\b` makes the regex crate fall back to a slower engine on non-ASCII text).
const EMAIL: &str =
    r"(?-u:\b)[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?-u:\b)";
const PHONE: &str = r"\+[1-9][0-9 ().-]{6,22}[0-9]|(?:1[ .-])?(?:\([2-9][0-9]{2}\) ?|(?-u:\b)[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}(?-u:\b)";
const CREDIT_CARD: &str = r"(?-u:\b)[0-9](?:[ -]?[0-9]){12,18}(?-u:\b)";
const US_SSN: &str = r"(?-u:\b)[0-9]{3}[ -][0-9]{2}[ -][0-9]{4}(?-u:\b)";
const IBAN: &str = r"(?-u:\b)[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]){11,30}";
const AWS_ACCESS_KEY: &str = r"(?-u:\b)(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b)";
const AWS_KEYWORD: &str = r"(?i:aws|secret)";
const PRIVATE_KEY: &str = r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----";
const JWT: &str = r"(?-u:\b)eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*";
const GITHUB_TOKEN: &str =
    r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})(?-u:\b)";
const SLACK_TOKEN: &str = r"(?-u:\b)(?:xox[bpar]|xapp)-[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+";
const ANTHROPIC_KEY: &str = r"(?-u:\b)sk-ant-[A-Za-z0-9_-]{20,}";
const GENERIC_SECRET: &str = r#"(?i)(?-u:\b)(?P<key>[A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key))(?P<kq>["']?)(?P<sp>[ \t]*)(?:=>|:=|=|:)[ \t]*(?P<q>["'`]?)(?P<v>[^ \t\r\n"'`]{8,})"#;

impl Kind {
    pub(super) fn from_name(name: &str) -> Option<Kind> {
        BUILTIN
            .iter()
            .position(|n| *n == name)
            .and_then(|i| KINDS.get(i).copied())
    }

    /// Lower wins an overlap: most specific first (a private key block
    /// contains anything; a token inside `token=` is a token, not a
    /// generic secret; a Luhn-valid card beats a phone shape).
    fn rank(self) -> u8 {
        match self {
            Kind::PrivateKey => 1,
            Kind::Jwt => 2,
            Kind::AnthropicKey | Kind::GithubToken | Kind::SlackToken | Kind::AwsAccessKey => 3,
            Kind::AwsSecretKey => 4,
            Kind::CreditCard | Kind::Iban => 5,
            Kind::UsSsn => 6,
            Kind::Custom => 7,
            Kind::Email => 8,
            Kind::Phone => 9,
            Kind::GenericSecret => 10,
        }
    }

    /// (candidate regex, prefilter pattern for the shared RegexSet).
    fn patterns(self) -> (&'static str, &'static str) {
        match self {
            Kind::Email => (EMAIL, EMAIL),
            Kind::Phone => (PHONE, PHONE),
            Kind::CreditCard => (CREDIT_CARD, CREDIT_CARD),
            Kind::UsSsn => (US_SSN, US_SSN),
            Kind::Iban => (IBAN, IBAN),
            Kind::AwsAccessKey => (AWS_ACCESS_KEY, AWS_ACCESS_KEY),
            Kind::AwsSecretKey => (AWS_KEYWORD, AWS_KEYWORD),
            Kind::PrivateKey => (PRIVATE_KEY, PRIVATE_KEY),
            Kind::Jwt => (JWT, JWT),
            Kind::GithubToken => (GITHUB_TOKEN, GITHUB_TOKEN),
            Kind::SlackToken => (SLACK_TOKEN, SLACK_TOKEN),
            Kind::AnthropicKey => (ANTHROPIC_KEY, ANTHROPIC_KEY),
            Kind::GenericSecret => (GENERIC_SECRET, GENERIC_SECRET),
            Kind::Custom => ("", ""),
        }
    }
}

/// One enabled detector.
#[derive(Debug, Clone)]
pub(super) struct Detector {
    /// Name in policy and findings (`email`, `employee_id`).
    pub name: String,
    /// Placeholder stem (`EMAIL`, `CUSTOM_EMPLOYEE_ID`).
    pub label: String,
    kind: Kind,
    regex: Regex,
}

/// A detected span of the scanned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub start: usize,
    pub end: usize,
    /// Index into [`Scanner::detector`]; `RESERVED` for an existing placeholder.
    pub det: usize,
    rank: u8,
}

const RESERVED: usize = usize::MAX;

/// All enabled detectors, compiled once, behind one RegexSet prefilter.
#[derive(Debug, Clone)]
pub(super) struct Scanner {
    /// Index 0 is [`PLACEHOLDER`]; index i+1 is `detectors[i]`.
    set: RegexSet,
    placeholder: Regex,
    detectors: Vec<Detector>,
}

impl Scanner {
    /// `custom` are (name, compiled regex) pairs, already validated.
    pub(super) fn new(kinds: &[Kind], custom: Vec<(String, Regex)>) -> Result<Self, regex::Error> {
        let mut detectors = Vec::new();
        let mut triggers = vec![PLACEHOLDER.to_string()];
        for &kind in kinds {
            let (pattern, trigger) = kind.patterns();
            let name = BUILTIN
                .iter()
                .zip(KINDS)
                .find(|(_, k)| *k == kind)
                .map(|(n, _)| n.to_string())
                .unwrap_or_default();
            detectors.push(Detector {
                label: name.to_ascii_uppercase(),
                name,
                kind,
                regex: Regex::new(pattern)?,
            });
            triggers.push(trigger.to_string());
        }
        for (name, regex) in custom {
            triggers.push(regex.as_str().to_string());
            detectors.push(Detector {
                label: format!("CUSTOM_{}", name.to_ascii_uppercase().replace('-', "_")),
                name,
                kind: Kind::Custom,
                regex,
            });
        }
        Ok(Self {
            set: RegexSet::new(&triggers)?,
            placeholder: Regex::new(PLACEHOLDER)?,
            detectors,
        })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.detectors.is_empty()
    }

    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        self.detectors.iter().map(|d| d.name.as_str())
    }

    pub(super) fn detector(&self, i: usize) -> Option<&Detector> {
        self.detectors.get(i)
    }

    /// Non-overlapping detections in `text`, sorted by start. Allocates
    /// nothing when the prefilter finds no candidate.
    pub(super) fn scan(&self, text: &str) -> Vec<Span> {
        if text.is_empty() || self.detectors.is_empty() {
            return Vec::new();
        }
        let hits = self.set.matches(text);
        if !hits.matched_any() {
            return Vec::new();
        }
        let mut cands = Vec::new();
        for i in hits.iter() {
            if i == 0 {
                cands.extend(self.placeholder.find_iter(text).map(|m| Span {
                    start: m.start(),
                    end: m.end(),
                    det: RESERVED,
                    rank: 0,
                }));
            } else if let Some(d) = self.detectors.get(i - 1) {
                find(d, i - 1, text, &mut cands);
            }
        }
        resolve(cands)
    }
}

/// Longest, most specific wins; reserved placeholders beat everything and
/// are dropped from the result.
fn resolve(mut cands: Vec<Span>) -> Vec<Span> {
    if cands.len() > 1 {
        cands.sort_by_key(|c| (c.rank, std::cmp::Reverse(c.end - c.start), c.start));
        if cands.len() <= 32 {
            let mut kept: Vec<Span> = Vec::with_capacity(cands.len());
            for c in cands {
                if kept.iter().all(|k| k.end <= c.start || c.end <= k.start) {
                    kept.push(c);
                }
            }
            kept.sort_by_key(|c| c.start);
            cands = kept;
        } else {
            let mut kept: BTreeMap<usize, Span> = BTreeMap::new();
            for c in cands {
                let before = kept
                    .range(..=c.start)
                    .next_back()
                    .map(|(_, s)| s.end > c.start);
                let after = kept.range(c.start..c.end).next().is_some();
                if before != Some(true) && !after {
                    kept.insert(c.start, c);
                }
            }
            cands = kept.into_values().collect();
        }
    }
    cands.retain(|c| c.det != RESERVED);
    cands
}

fn find(d: &Detector, det: usize, text: &str, out: &mut Vec<Span>) {
    let rank = d.kind.rank();
    let mut push = |start: usize, end: usize| {
        out.push(Span {
            start,
            end,
            det,
            rank,
        })
    };
    match d.kind {
        Kind::GenericSecret => {
            for c in d.regex.captures_iter(text) {
                if let Some((s, e)) = generic_secret(&c) {
                    push(s, e);
                }
            }
        }
        Kind::AwsSecretKey => {
            for m in d.regex.find_iter(text) {
                if let Some((s, e)) = aws_secret_after(text, m.end()) {
                    push(s, e);
                }
            }
        }
        kind => {
            // Next `-----END ` at or after the last key found (None: none left).
            let mut next_end: Option<Option<usize>> = None;
            for m in d.regex.find_iter(text) {
                let (s, e) = (m.start(), m.end());
                let span = match kind {
                    Kind::Email => email_ok(text, s, e).then_some((s, e)),
                    Kind::Phone => phone_ok(text, s, e).then_some((s, e)),
                    Kind::CreditCard => card_ok(text, s, e).then_some((s, e)),
                    Kind::UsSsn => ssn_ok(text, s, e).then_some((s, e)),
                    Kind::Iban => iban_end(text, s).map(|end| (s, end)),
                    Kind::PrivateKey => Some((s, private_key_end(text, e, &mut next_end))),
                    Kind::Jwt => jwt_ok(m.as_str()).then_some((s, e)),
                    Kind::GithubToken => (e - s <= 255).then_some((s, e)),
                    Kind::SlackToken => (e - s >= 24).then_some((s, e)),
                    _ => (e > s).then_some((s, e)),
                };
                if let Some((s, e)) = span {
                    push(s, e);
                }
            }
        }
    }
}

fn byte_before(text: &str, i: usize) -> Option<u8> {
    i.checked_sub(1)
        .and_then(|j| text.as_bytes().get(j).copied())
}

fn byte_at(text: &str, i: usize) -> Option<u8> {
    text.as_bytes().get(i).copied()
}

/// True when the span is glued to a longer number (`1.2.3.4`, `12-345-67-8901`).
fn inside_number(text: &str, s: usize, e: usize) -> bool {
    let digit = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_digit());
    let sep = |b: Option<u8>| matches!(b, Some(b'.' | b'-' | b'/' | b','));
    let before = byte_before(text, s);
    let after = byte_at(text, e);
    digit(before)
        || digit(after)
        || (sep(before) && digit(s.checked_sub(2).and_then(|j| byte_at(text, j))))
        || (sep(after) && digit(byte_at(text, e + 1)))
}

/// File names like `icon@2x.png` look like addresses; these endings are
/// never a mail domain in practice.
const NOT_TLDS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "css", "js", "ts", "tsx", "jsx", "map",
    "json", "lock", "txt", "md",
];

pub(super) fn email_ok(text: &str, s: usize, e: usize) -> bool {
    let Some((local, domain)) = text.get(s..e).and_then(|a| a.split_once('@')) else {
        return false;
    };
    let tld = domain.rsplit('.').next().unwrap_or_default();
    let labels_ok = domain
        .split('.')
        .all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'));
    let lower = domain.to_ascii_lowercase();
    // Service addresses every coding session carries (SSH remotes, the
    // co-author trailer Claude Code writes): masking them breaks commands.
    let service = local == "git"
        || lower == "anthropic.com" && local == "noreply"
        || lower == "users.noreply.github.com";
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && domain.len() <= 253
        && labels_ok
        && !NOT_TLDS.contains(&tld.to_ascii_lowercase().as_str())
        && !service
        && byte_before(text, s) != Some(b'@')
}

pub(super) fn phone_ok(text: &str, s: usize, e: usize) -> bool {
    let Some(p) = text.get(s..e) else {
        return false;
    };
    let before = byte_before(text, s);
    if before.is_some_and(|b| b.is_ascii_alphanumeric() || b"_+.-/)]".contains(&b)) {
        return false;
    }
    let after = byte_at(text, e);
    if after.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') || inside_number(text, s, e) {
        return false;
    }
    let digits = p.bytes().filter(u8::is_ascii_digit).count();
    if !p.starts_with('+') {
        return (10..=11).contains(&digits);
    }
    // International: E.164 allows at most 15 digits; separators are single
    // (") " and " (" aside) and at most one pair of parentheses.
    let opens = p.matches('(').count();
    let closes = p.matches(')').count();
    let mut prev_sep = false;
    for c in p.bytes().skip(1) {
        let sep = matches!(c, b' ' | b'.' | b'-');
        if sep && prev_sep {
            return false;
        }
        prev_sep = sep;
    }
    (8..=15).contains(&digits) && opens == closes && opens <= 1 && !p.contains("..")
}

pub(super) fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum % 10 == 0
}

/// Known issuer prefixes (IIN ranges) and their lengths.
pub(super) fn known_iin(d: &[u8]) -> bool {
    let n = d.len();
    let prefix = |k: usize| -> u32 {
        d.iter()
            .take(k)
            .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'))
    };
    let (p1, p2, p3, p4, p6) = (prefix(1), prefix(2), prefix(3), prefix(4), prefix(6));
    match p1 {
        4 => matches!(n, 13 | 16 | 19), // Visa
        5 => (51..=55).contains(&p2) && n == 16 || p2 == 50 || (56..=58).contains(&p2), // Mastercard, Maestro
        2 => (2221..=2720).contains(&p4) && n == 16, // Mastercard 2-series
        3 => {
            (p2 == 34 || p2 == 37) && n == 15                           // Amex
                || (300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39 // Diners
                || (3528..=3589).contains(&p4) && n >= 16 // JCB
        }
        6 => {
            p4 == 6011 || (644..=649).contains(&p3) || p2 == 65         // Discover
                || (622126..=622925).contains(&p6) || p2 == 62          // UnionPay
                || (60..=69).contains(&p2) // Maestro
        }
        _ => false,
    }
}

pub(super) fn card_ok(text: &str, s: usize, e: usize) -> bool {
    let Some(c) = text.get(s..e) else {
        return false;
    };
    if inside_number(text, s, e) {
        return false;
    }
    let digits: Vec<u8> = c.bytes().filter(u8::is_ascii_digit).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    // Separated forms use one separator and card-like groups (4-4-4-4,
    // 4-6-5 for Amex, a short last group for 19 digits).
    let seps: Vec<u8> = c.bytes().filter(|b| !b.is_ascii_digit()).collect();
    if let Some(&first) = seps.first() {
        if seps.iter().any(|&b| b != first) {
            return false;
        }
        let groups: Vec<usize> = c.split(first as char).map(str::len).collect();
        let fours = groups.iter().rev().skip(1).all(|&g| g == 4);
        let amex = groups == [4, 6, 5];
        if !(fours || amex) {
            return false;
        }
    }
    luhn(&digits) && known_iin(&digits)
}

pub(super) fn ssn_ok(text: &str, s: usize, e: usize) -> bool {
    let Some(c) = text.get(s..e) else {
        return false;
    };
    let b = c.as_bytes();
    if b.len() != 11 || b.get(3) != b.get(6) || inside_number(text, s, e) {
        return false;
    }
    let area = c.get(0..3).unwrap_or_default();
    let group = c.get(4..6).unwrap_or_default();
    let serial = c.get(7..11).unwrap_or_default();
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

/// IBAN length per country (the common SEPA and nearby countries).
pub(super) fn iban_len(country: &str) -> Option<usize> {
    const LENS: &[(&str, usize)] = &[
        ("AD", 24),
        ("AE", 23),
        ("AL", 28),
        ("AT", 20),
        ("AZ", 28),
        ("BA", 20),
        ("BE", 16),
        ("BG", 22),
        ("BH", 22),
        ("BR", 29),
        ("CH", 21),
        ("CR", 22),
        ("CY", 28),
        ("CZ", 24),
        ("DE", 22),
        ("DK", 18),
        ("DO", 28),
        ("EE", 20),
        ("EG", 29),
        ("ES", 24),
        ("FI", 18),
        ("FO", 18),
        ("FR", 27),
        ("GB", 22),
        ("GE", 22),
        ("GI", 23),
        ("GL", 18),
        ("GR", 27),
        ("GT", 28),
        ("HR", 21),
        ("HU", 28),
        ("IE", 22),
        ("IL", 23),
        ("IS", 26),
        ("IT", 27),
        ("JO", 30),
        ("KW", 30),
        ("KZ", 20),
        ("LB", 28),
        ("LI", 21),
        ("LT", 20),
        ("LU", 20),
        ("LV", 21),
        ("MC", 27),
        ("MD", 24),
        ("ME", 22),
        ("MK", 19),
        ("MR", 27),
        ("MT", 31),
        ("MU", 30),
        ("NL", 18),
        ("NO", 15),
        ("PK", 24),
        ("PL", 28),
        ("PS", 29),
        ("PT", 25),
        ("QA", 29),
        ("RO", 24),
        ("RS", 22),
        ("SA", 24),
        ("SE", 24),
        ("SI", 19),
        ("SK", 24),
        ("SM", 27),
        ("TN", 24),
        ("TR", 26),
        ("UA", 29),
        ("VG", 24),
        ("XK", 20),
    ];
    LENS.iter().find(|(c, _)| *c == country).map(|(_, n)| *n)
}

pub(super) fn iban_mod97(iban: &[u8]) -> bool {
    let rearranged = iban.iter().skip(4).chain(iban.iter().take(4));
    let mut rem = 0u32;
    for &c in rearranged {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// End of a valid IBAN starting at `s`: the country's length of
/// characters, spaces allowed only between groups of four.
pub(super) fn iban_end(text: &str, s: usize) -> Option<usize> {
    let b = text.as_bytes();
    let want = iban_len(text.get(s..s + 2)?)?;
    let mut chars = Vec::with_capacity(want);
    let mut i = s;
    while chars.len() < want {
        let c = *b.get(i)?;
        if c == b' ' && chars.len() % 4 == 0 && b.get(i + 1).is_some_and(u8::is_ascii_alphanumeric)
        {
            i += 1;
            continue;
        }
        if !(c.is_ascii_uppercase() || c.is_ascii_digit()) {
            return None;
        }
        chars.push(c);
        i += 1;
    }
    if b.get(i)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    {
        return None;
    }
    iban_mod97(&chars).then_some(i)
}

/// Where a key block that starts before `from` ends: after its
/// `-----END ...-----` line if one follows within 64 KiB, else after the
/// base64 body (a truncated key is still a key). Bounded so many BEGIN
/// markers without an END cost linear time.
pub(super) fn private_key_end(
    text: &str,
    from: usize,
    next_end: &mut Option<Option<usize>>,
) -> usize {
    let stale = match *next_end {
        None => true,
        Some(Some(p)) => p < from,
        Some(None) => false,
    };
    if stale {
        *next_end = Some(
            text.get(from..)
                .and_then(|t| t.find("-----END "))
                .map(|p| from + p),
        );
    }
    if let Some(Some(at)) = *next_end {
        let tail = text.get(at + 9..).unwrap_or_default();
        let label = tail
            .bytes()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b' ')
            .count();
        let name = tail.get(..label).unwrap_or_default();
        if at - from <= 65_536
            && (name.ends_with("PRIVATE KEY") || name.ends_with("PRIVATE KEY BLOCK"))
            && tail.get(label..label + 5) == Some("-----")
        {
            return at + 9 + label + 5;
        }
    }
    // Truncated: the following lines that are base64 or `Header: value`.
    let mut end = from;
    let mut line_start = from;
    for line in text.get(from..).unwrap_or_default().split_inclusive('\n') {
        let l = line.trim_end_matches(['\n', '\r']);
        let base64 = !l.is_empty()
            && l.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c));
        let header = l.split_once(": ").is_some_and(|(k, _)| {
            !k.is_empty() && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        });
        let first = line_start == from;
        if !(base64 || header || (first && l.is_empty())) {
            break;
        }
        line_start += line.len();
        if !l.is_empty() {
            end = line_start - (line.len() - l.len());
        }
    }
    end
}

fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

/// A JWT's header decodes to a JSON object with an `alg`.
pub(super) fn jwt_ok(token: &str) -> bool {
    let header = token.split('.').next().unwrap_or_default();
    let Some(bytes) = b64url_decode(header) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .is_some_and(|v| v.get("alg").is_some_and(serde_json::Value::is_string))
}

fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'/' || b == b'+'
}

/// An AWS secret access key: exactly 40 base64 characters, on the same
/// line within 64 bytes after an `aws`/`secret` keyword, mixed case with a
/// digit (so a 40-hex git SHA next to "secret" is not one).
pub(super) fn aws_secret_after(text: &str, from: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let mut i = from;
    let limit = (from + 64).min(b.len());
    // Skip the rest of the keyword's own word (`aws_secret_access_key`).
    while i < limit
        && (b
            .get(i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_'))
    {
        i += 1;
    }
    while i < limit {
        let c = *b.get(i)?;
        if c == b'\n' {
            return None;
        }
        if is_b64(c) {
            let start = i;
            while b.get(i).is_some_and(|&c| is_b64(c)) {
                i += 1;
            }
            let run = text.get(start..i)?;
            let ok = run.len() == 40
                && b.get(i) != Some(&b'=')
                && run.bytes().any(|c| c.is_ascii_uppercase())
                && run.bytes().any(|c| c.is_ascii_lowercase())
                && run.bytes().any(|c| c.is_ascii_digit());
            if ok {
                return Some((start, i));
            }
        } else {
            i += 1;
        }
    }
    None
}

/// Values that are placeholders in docs rather than secrets.
const NOT_SECRETS: &[&str] = &[
    "undefined",
    "password",
    "redacted",
    "<redacted>",
    "changeit",
];

/// The value of a `password=`/`api_key:`/`token=` assignment, if it looks
/// like a literal secret rather than code (`token = self.get_token()`).
fn generic_secret(c: &regex::Captures<'_>) -> Option<(usize, usize)> {
    let v = c.name("v")?;
    let quoted = c.name("q").is_some_and(|q| !q.as_str().is_empty());
    let mut value = v.as_str();
    if !quoted {
        value = value.trim_end_matches([',', ';', ')', ']', '}', '.']);
    }
    if value.len() < 8 {
        return None;
    }
    let lower = value.to_ascii_lowercase();
    let first = value.as_bytes().first().copied().unwrap_or_default();
    let code_like = b"$%{<&*".contains(&first)
        || value.contains('(')
        || value.contains('[')
        || value.contains("{{")
        || value.bytes().all(|b| b == first)
        || NOT_SECRETS.contains(&lower.as_str());
    if code_like {
        return None;
    }
    if !quoted {
        let ident = value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
            && !first.is_ascii_digit();
        if ident {
            // An identifier after `=` is usually a variable; only bare
            // `KEY=value` / `key: value` lines (env, ini, YAML) count, and
            // never a dotted path or a name containing the keyword itself.
            let keyword = ["pass", "pwd", "secret", "token", "key"]
                .iter()
                .any(|k| lower.contains(k));
            let spaced = c.name("sp").is_some_and(|s| !s.as_str().is_empty());
            let key_quoted = c.name("kq").is_some_and(|q| !q.as_str().is_empty());
            let env_style = c
                .name("key")
                .is_some_and(|k| !k.as_str().bytes().any(|b| b.is_ascii_lowercase()));
            if value.contains('.') || (keyword && !env_style) || spaced || key_quoted {
                return None;
            }
        }
    }
    Some((v.start(), v.start() + value.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner() -> Scanner {
        Scanner::new(&KINDS, Vec::new()).unwrap()
    }

    /// (detector name, matched text) of every detection.
    fn detect(text: &str) -> Vec<(String, String)> {
        let s = scanner();
        s.scan(text)
            .into_iter()
            .map(|sp| {
                (
                    s.detector(sp.det).unwrap().name.clone(),
                    text[sp.start..sp.end].to_string(),
                )
            })
            .collect()
    }

    fn one(text: &str, name: &str, value: &str) {
        assert_eq!(
            detect(text),
            vec![(name.to_string(), value.to_string())],
            "in {text:?}"
        );
    }

    fn none(text: &str) {
        assert_eq!(detect(text), vec![], "in {text:?}");
    }

    #[test]
    fn every_builtin_name_has_a_kind() {
        for n in BUILTIN {
            assert!(Kind::from_name(n).is_some(), "{n}");
        }
        assert_eq!(Kind::from_name("nope"), None);
    }

    #[test]
    fn email() {
        one(
            "mail jane.doe+x@example.co.uk now",
            "email",
            "jane.doe+x@example.co.uk",
        );
        one("<a@b-c.io>", "email", "a@b-c.io");
        none("user@localhost and foo@bar and @example.com");
        none("icon@2x.png and git@github.com:org/repo.git");
        none("Co-Authored-By: Claude <noreply@anthropic.com>");
        none("npm i @scope/pkg@1.2.3");
    }

    #[test]
    fn phone() {
        one("call +1 415 555 2671.", "phone", "+1 415 555 2671");
        one("call +44 20 7946 0958 today", "phone", "+44 20 7946 0958");
        one("tel (415) 555-2671", "phone", "(415) 555-2671");
        one("tel 415-555-2671", "phone", "415-555-2671");
        one("tel 415.555.2671", "phone", "415.555.2671");
        one("tel 1-415-555-2671", "phone", "1-415-555-2671");
        none("version 1.2.3 and 10.0.19045.2965");
        none("date 2024-01-15 10:30:00 and 4155552671");
        none("ip 192.168.100.200 and 123-456-7890");
        none("x+1234 and +12 and a+4155552671");
        none("v1.415.555.2671.9");
    }

    #[test]
    fn credit_card() {
        one(
            "card 4111 1111 1111 1111 exp",
            "credit_card",
            "4111 1111 1111 1111",
        );
        one(
            "card 4111-1111-1111-1111",
            "credit_card",
            "4111-1111-1111-1111",
        );
        one("card 5555555555554444", "credit_card", "5555555555554444");
        one("amex 3782 822463 10005", "credit_card", "3782 822463 10005");
        // Luhn fails.
        none("card 4111 1111 1111 1112");
        // Luhn-valid but no known issuer (a millisecond timestamp shape).
        none("ts 1000000000009");
        // Mixed separators, odd grouping.
        none("4111-1111 1111-1111 and 41111 11111 11111 1");
        // Part of a longer number.
        none("id 4111111111111111.5 and 99.4111111111111111");
    }

    #[test]
    fn luhn_and_iin() {
        assert!(luhn(b"4111111111111111"));
        assert!(!luhn(b"4111111111111112"));
        assert!(known_iin(b"378282246310005"));
        assert!(!known_iin(b"9111111111111111"));
    }

    #[test]
    fn us_ssn() {
        one("ssn 123-45-6789.", "us_ssn", "123-45-6789");
        one("ssn 123 45 6789", "us_ssn", "123 45 6789");
        none("ssn 000-12-3456 666-12-3456 912-12-3456");
        none("ssn 123-00-4567 123-45-0000 123-45 6789");
        none("phone 1-123-45-6789 and 123-45-6789-1");
    }

    #[test]
    fn iban() {
        one(
            "pay DE89370400440532013000 now",
            "iban",
            "DE89370400440532013000",
        );
        one(
            "pay GB82 WEST 1234 5698 7654 32 ok",
            "iban",
            "GB82 WEST 1234 5698 7654 32",
        );
        one(
            "pay GB82 WEST 1234 5698 7654 32 IS VALID",
            "iban",
            "GB82 WEST 1234 5698 7654 32",
        );
        // Wrong check digits.
        none("pay DE88370400440532013000 now");
        // Wrong length for the country.
        none("pay DE8937040044053201300 now");
        // Unknown country.
        none("pay ZZ89370400440532013000 now");
    }

    #[test]
    fn iban_validators() {
        assert!(iban_mod97(b"GB82WEST12345698765432"));
        assert!(!iban_mod97(b"GB83WEST12345698765432"));
        assert_eq!(iban_len("NO"), Some(15));
        assert_eq!(iban_end("NO9386011117947", 0), Some(15));
    }

    #[test]
    fn aws_keys() {
        one(
            "id AKIAIOSFODNN7EXAMPLE.",
            "aws_access_key",
            "AKIAIOSFODNN7EXAMPLE",
        );
        one(
            "id ASIAIOSFODNN7EXAMPLE",
            "aws_access_key",
            "ASIAIOSFODNN7EXAMPLE",
        );
        none("id AKIAIOSFODNN7EXAMPL and AKIAIOSFODNN7EXAMPLEX");
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        one(
            &format!("aws_secret_access_key = {secret}\n"),
            "aws_secret_key",
            secret,
        );
        one(
            &format!("my AWS secret is {secret}"),
            "aws_secret_key",
            secret,
        );
        // Same 40 characters with no keyword nearby.
        none(&format!("blob {secret} here"));
        // A git SHA next to "secret".
        none("secret rotated in da39a3ee5e6b4b0d3255bfef95601890afd80709");
        // Keyword on another line.
        none(&format!("aws\n{secret}"));
    }

    #[test]
    fn private_key() {
        let k = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc+/=\n-----END RSA PRIVATE KEY-----";
        one(&format!("key:\n{k}\nafter"), "private_key", k);
        let o = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----";
        one(o, "private_key", o);
        // Truncated: mask the base64 body anyway.
        let t = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nMIIEvQIBADANBgkqhkiG9w0B\nAAAA==";
        one(
            &format!("{t}\nthen I ran the tests and it worked\n"),
            "private_key",
            t,
        );
        none("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
        none("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----");
        // Many BEGIN markers and no END: linear, each masks its own body.
        let many =
            "-----BEGIN PRIVATE KEY-----\nAAAA\n. ".repeat(20_000) + "-----END CERTIFICATE-----";
        let t = std::time::Instant::now();
        assert_eq!(detect(&many).len(), 20_000);
        assert!(t.elapsed().as_secs() < 10);
    }

    #[test]
    fn jwt() {
        let t = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        one(&format!("Bearer {t}"), "jwt", t);
        assert!(jwt_ok(t));
        // Header without "alg".
        let no_alg = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.abcdefghij";
        none(no_alg);
        assert!(!jwt_ok("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9garbage.x.y"));
    }

    #[test]
    fn vendor_tokens() {
        let gh = format!("ghp_{}", "a1B2".repeat(9));
        one(&format!("GH={gh} "), "github_token", &gh);
        let pat = format!("github_pat_{}", "11ABCDEFG0_".repeat(3));
        one(&format!("t {pat}"), "github_token", &pat);
        none("ghp_short1234 and ghx_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        let slack = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp";
        one(&format!("slack {slack}"), "slack_token", slack);
        one(
            "xapp-1-A0123456789-1234567890123-abcdef0123",
            "slack_token",
            "xapp-1-A0123456789-1234567890123-abcdef0123",
        );
        none("xoxb-test-tok and xoxz-123456789012-1234567890123");
        let ant = format!("sk-ant-api03-{}AA", "Zx9_-".repeat(18));
        one(&format!("key {ant}"), "anthropic_key", &ant);
        none("sk-ant-xyz and sk-proj-abc");
    }

    #[test]
    fn generic_secret_masks_only_the_value() {
        one("password=hunter22", "generic_secret", "hunter22");
        one("passwd: s3cr3t-value", "generic_secret", "s3cr3t-value");
        one("api_key: 'abcd1234efgh'", "generic_secret", "abcd1234efgh");
        one(
            r#"{"client_secret": "Zm9vYmFyYmF6"}"#,
            "generic_secret",
            "Zm9vYmFyYmF6",
        );
        one("DB_PASSWORD=supersecret", "generic_secret", "supersecret");
        one("token=abc123def456, next", "generic_secret", "abc123def456");
        // Too short.
        none("password=abc and token=1234567");
        // Code, references and placeholders.
        none("token = self.get_token()");
        none("password = config.db_password");
        none("api_key=${API_KEY} and secret=$SECRET_VALUE and token=%TOKEN_VAL%");
        none("password=********");
        none("token = access_token_value");
        none("token=access_token_value and f(password=user_password)");
        none("max_tokens: 1024");
        none("password=<GENERIC_SECRET_1>");
    }

    #[test]
    fn overlaps_pick_the_most_specific() {
        let gh = format!("ghp_{}", "a1B2".repeat(9));
        one(&format!("token={gh}"), "github_token", &gh);
        // A Luhn-valid card in phone-ish spacing is a card.
        one("4111 1111 1111 1111", "credit_card", "4111 1111 1111 1111");
        // A private key containing things that look like other values.
        let k =
            "-----BEGIN PRIVATE KEY-----\nAKIAIOSFODNN7EXAMPLE a@b.com\n-----END PRIVATE KEY-----";
        one(k, "private_key", k);
    }

    #[test]
    fn many_candidates_resolve_like_few() {
        let text: String = (0..100)
            .map(|i| format!("u{i}@example.com token={i:08}-aaaa <EMAIL_{i}> "))
            .collect();
        let found = detect(&text);
        assert_eq!(found.iter().filter(|(n, _)| n == "email").count(), 100);
        assert_eq!(
            found.iter().filter(|(n, _)| n == "generic_secret").count(),
            100
        );
        assert_eq!(found.len(), 200);
    }

    #[test]
    fn placeholders_are_reserved() {
        none("<EMAIL_1> <CREDIT_CARD_12> <CUSTOM_EMPLOYEE_ID_3>");
        let custom = Regex::new(r"[A-Z]+_[0-9]").unwrap();
        let s = Scanner::new(&[], vec![("c".into(), custom)]).unwrap();
        assert!(s.scan("<EMAIL_1>").is_empty());
        assert_eq!(s.scan("x ABC_1").len(), 1);
    }

    #[test]
    fn non_ascii_text_is_scanned() {
        one("é: jane@example.com — ünïcode", "email", "jane@example.com");
    }
}
