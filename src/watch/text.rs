//! Text helpers for the watch TUI: making agent-provided text safe to show,
//! and fitting it to columns by display width (never by byte offset).
//! Pure functions, no styling.

use ratatui::text::Span;

/// Display width of `s` in terminal columns.
pub(super) fn width(s: &str) -> usize {
    Span::raw(s).width()
}

fn char_width(c: char) -> usize {
    let mut buf = [0u8; 4];
    width(c.encode_utf8(&mut buf))
}

/// What a control character looks like on screen: `^[` for ESC, `^@` for
/// NUL, `^?` for DEL. Bidi overrides and C1 controls, which could make a
/// command look like another, become `�`.
fn escape(c: char, out: &mut String) {
    match c {
        '\t' | '\n' | '\r' => out.push(' '),
        '\u{0}'..='\u{1f}' => {
            out.push('^');
            out.push(char::from(b'@' + c as u8));
        }
        '\u{7f}' => out.push_str("^?"),
        '\u{80}'..='\u{9f}'
        | '\u{200e}'
        | '\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}' => out.push('\u{fffd}'),
        c => out.push(c),
    }
}

/// `s` on one line with every control character made visible, cut to at
/// most `max_chars` characters (then ending in `…`).
pub(super) fn clean(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars.saturating_mul(4)));
    for (n, c) in s.chars().enumerate() {
        if n >= max_chars {
            out.push('…');
            break;
        }
        escape(c, &mut out);
    }
    out
}

/// Like [`clean`] but keeps line breaks; tabs become four spaces.
pub(super) fn clean_multiline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push('\n'),
            '\t' => out.push_str("    "),
            '\r' => {}
            c => escape(c, &mut out),
        }
    }
    out
}

/// `s` cut to at most `max` columns, ending in `…` when cut.
pub(super) fn fit(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = char_width(c);
        if used + w > max - 1 {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// [`fit`], then padded on the left to exactly `max` columns.
pub(super) fn fit_right(s: &str, max: usize) -> String {
    let cut = fit(s, max);
    let pad = max.saturating_sub(width(&cut));
    format!("{}{cut}", " ".repeat(pad))
}

/// Hard-wraps one line of text into pieces of at most `max` columns.
pub(super) fn wrap(line: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut used = 0;
    for c in line.chars() {
        let w = char_width(c);
        if used + w > max && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
            used = 0;
        }
        used += w;
        cur.push(c);
    }
    out.push(cur);
    out
}

/// The first `n` characters of `s`.
pub(super) fn prefix(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `HH:MM:SS` (UTC) of a unix time in milliseconds.
pub(super) fn hms(ms: i64) -> String {
    let day = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", day / 3600, day / 60 % 60, day % 60)
}

/// `mm:ss` of a number of seconds (minutes may exceed 59).
pub(super) fn mmss(secs: i64) -> String {
    let s = secs.max(0);
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// A latency in the unit a person reads fastest.
pub(super) fn latency(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=9_999 => format!("{:.1}s", ms as f64 / 1000.0),
        10_000..=59_999 => format!("{}s", ms / 1000),
        _ => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
    }
}

/// A token count: `950`, `12.3k`, `1.2M`.
pub(super) fn tokens(n: u64) -> String {
    match n {
        0..=999 => n.to_string(),
        1_000..=99_999 => format!("{:.1}k", n as f64 / 1000.0),
        100_000..=999_999 => format!("{}k", n / 1000),
        _ => format!("{:.1}M", n as f64 / 1_000_000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_spoofing_characters() {
        assert_eq!(clean("a\u{1b}[31mb\u{0}\u{7f}", 100), "a^[[31mb^@^?");
        assert_eq!(clean("rm \u{202e}fdp.exe", 100), "rm \u{fffd}fdp.exe");
        assert_eq!(clean("x\ny\tz", 100), "x y z");
        assert_eq!(clean("héllo wörld", 5), "héllo…");
        assert_eq!(clean_multiline("a\r\n\tb\u{1b}"), "a\n    b^[");
    }

    #[test]
    fn fits_by_display_width_on_char_boundaries() {
        assert_eq!(fit("hello", 5), "hello");
        assert_eq!(fit("hello world", 5), "hell…");
        assert_eq!(fit("日本語テキスト", 6), "日本…");
        assert_eq!(width(&fit("日本語テキスト", 6)), 5);
        assert_eq!(fit("ééééé", 3), "éé…");
        assert_eq!(fit("abc", 0), "");
        assert_eq!(fit("abc", 1), "…");
        assert_eq!(fit_right("42", 5), "   42");
        assert_eq!(wrap("日本語", 4), vec!["日本", "語"]);
        assert_eq!(wrap("", 4), vec![""]);
        assert_eq!(wrap("abcdef", 0), vec!["a", "b", "c", "d", "e", "f"]);
        assert_eq!(prefix("ü1234567890", 8), "ü1234567");
        assert_eq!(prefix("ab", 8), "ab");
    }

    #[test]
    fn formats_numbers_and_times() {
        assert_eq!(hms(1_767_225_600_000 + 3_723_000), "01:02:03");
        assert_eq!(hms(-1000), "23:59:59");
        assert_eq!(mmss(125), "02:05");
        assert_eq!(mmss(-3), "00:00");
        assert_eq!(mmss(6000), "100:00");
        assert_eq!(latency(850), "850ms");
        assert_eq!(latency(1234), "1.2s");
        assert_eq!(latency(42_000), "42s");
        assert_eq!(latency(125_000), "2m05s");
        assert_eq!(tokens(950), "950");
        assert_eq!(tokens(12_345), "12.3k");
        assert_eq!(tokens(123_456), "123k");
        assert_eq!(tokens(1_234_567), "1.2M");
    }
}
