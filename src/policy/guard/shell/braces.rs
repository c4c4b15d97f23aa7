//! Brace expansion, as bash does it before anything else: `{rm,-rf,/}` is
//! the three words `rm -rf /`, `a{b,c}d` is `abd acd`, `{1..3}` is
//! `1 2 3`, `{a..c}` is `a b c`.
//!
//! Owns: brace expansion of one word whose unquoted `{`, `,` and `}` the
//! reader marked. Must not: recurse (a worklist is used) or produce without
//! bound (the caller's budget of characters is charged for every partial
//! word, so the work is bounded too). Zero-padding of `{01..10}` is not
//! done: the numbers come out unpadded.

/// One character of a word: a literal, or an unquoted brace or comma.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Open,
    Comma,
    Close,
}

/// Longest `{a..z}` / `{1..n}` sequence expanded; a longer one is over
/// budget whatever the budget left.
const MAX_SEQUENCE: i64 = 100_000;

/// The words `text` expands to, given the byte offsets of its unquoted
/// `{`, `,` and `}` (ascending); `None` if that would take more than
/// `budget` characters (partial words included), which is then used up.
pub(super) fn expand(text: &str, marks: &[usize], budget: &mut usize) -> Option<Vec<String>> {
    let mut marks = marks.iter().peekable();
    let toks: Vec<Tok> = text
        .char_indices()
        .map(|(i, c)| {
            if marks.next_if(|&&m| m == i).is_some() {
                match c {
                    '{' => Tok::Open,
                    ',' => Tok::Comma,
                    '}' => Tok::Close,
                    c => Tok::Lit(c),
                }
            } else {
                Tok::Lit(c)
            }
        })
        .collect();
    let mut out = Vec::new();
    let mut work = vec![toks];
    while let Some(toks) = work.pop() {
        *budget = budget.checked_sub(toks.len())?;
        match group(&toks)? {
            None => out.push(render(&toks)),
            Some((open, close, alts)) => {
                let (head, tail) = (
                    toks.get(..open).unwrap_or_default(),
                    toks.get(close + 1..).unwrap_or_default(),
                );
                for alt in alts.into_iter().rev() {
                    let size = head.len() + alt.len() + tail.len();
                    *budget = budget.checked_sub(size)?;
                    let mut t = Vec::with_capacity(size);
                    t.extend_from_slice(head);
                    t.extend(alt);
                    t.extend_from_slice(tail);
                    work.push(t);
                }
            }
        }
    }
    Some(out)
}

fn render(toks: &[Tok]) -> String {
    toks.iter()
        .map(|t| match t {
            Tok::Lit(c) => *c,
            Tok::Open => '{',
            Tok::Comma => ',',
            Tok::Close => '}',
        })
        .collect()
}

/// A brace group that expands: where it opens and closes, and its
/// alternatives.
type Group = (usize, usize, Vec<Vec<Tok>>);

/// The first brace group that expands, if any; `None` if it is a sequence
/// longer than [`MAX_SEQUENCE`].
fn group(toks: &[Tok]) -> Option<Option<Group>> {
    let opens = toks.iter().enumerate().filter(|(_, t)| **t == Tok::Open);
    for (open, _) in opens {
        let mut depth = 0usize;
        let mut commas = Vec::new();
        let mut close = None;
        for (j, t) in toks.iter().enumerate().skip(open + 1) {
            match t {
                Tok::Open => depth += 1,
                Tok::Comma if depth == 0 => commas.push(j),
                Tok::Close if depth == 0 => {
                    close = Some(j);
                    break;
                }
                Tok::Close => depth -= 1,
                _ => {}
            }
        }
        let Some(close) = close else { continue };
        if !commas.is_empty() {
            let mut alts = Vec::new();
            let mut start = open + 1;
            for c in commas.into_iter().chain([close]) {
                alts.push(toks.get(start..c).unwrap_or_default().to_vec());
                start = c + 1;
            }
            return Some(Some((open, close, alts)));
        }
        let body = render(toks.get(open + 1..close).unwrap_or_default());
        if let Some(items) = sequence(&body) {
            let alts = items?
                .into_iter()
                .map(|s| s.chars().map(Tok::Lit).collect())
                .collect();
            return Some(Some((open, close, alts)));
        }
    }
    Some(None)
}

/// `1..5`, `5..1..2`, `a..e`: `None` if `body` is not a sequence, else
/// its items, or `Some(None)` if there are more than [`MAX_SEQUENCE`].
fn sequence(body: &str) -> Option<Option<Vec<String>>> {
    let parts: Vec<&str> = body.split("..").collect();
    let (from, to, step) = match parts.as_slice() {
        [a, b] => (*a, *b, 1),
        [a, b, s] => (*a, *b, s.parse::<i64>().ok()?.checked_abs()?.max(1)),
        _ => return None,
    };
    let (a, b) = match (from.parse::<i64>(), to.parse::<i64>()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            let (mut fc, mut tc) = (from.chars(), to.chars());
            match (fc.next(), fc.next(), tc.next(), tc.next()) {
                (Some(a), None, Some(b), None)
                    if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() =>
                {
                    (a as i64, b as i64)
                }
                _ => return None,
            }
        }
    };
    let letters = from.parse::<i64>().is_err();
    if a.abs_diff(b) / step.unsigned_abs() >= MAX_SEQUENCE.unsigned_abs() {
        return Some(None);
    }
    let dir = if b >= a { step } else { -step };
    let mut items = Vec::new();
    let mut n = a;
    while (dir > 0 && n <= b) || (dir < 0 && n >= b) {
        if letters {
            items.extend(u8::try_from(n).ok().map(|c| char::from(c).to_string()));
        } else {
            items.push(n.to_string());
        }
        n += dir;
    }
    Some(Some(items))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Marks every `{`, `,` and `}` of `text` as unquoted.
    fn all(text: &str) -> Vec<String> {
        let marks: Vec<usize> = text
            .char_indices()
            .filter(|(_, c)| matches!(c, '{' | ',' | '}'))
            .map(|(i, _)| i)
            .collect();
        let mut budget = 1_000_000;
        expand(text, &marks, &mut budget).unwrap_or_default()
    }

    #[test]
    fn expands_like_bash() {
        let cases: &[(&str, &[&str])] = &[
            ("{rm,-rf,/}", &["rm", "-rf", "/"]),
            ("a{b,c}d", &["abd", "acd"]),
            ("{a,b}{c,d}", &["ac", "ad", "bc", "bd"]),
            ("{a,{b,c}}", &["a", "b", "c"]),
            ("{x{b,c}}", &["{xb}", "{xc}"]),
            ("{a}{b,c}", &["{a}b", "{a}c"]),
            ("{1..3}", &["1", "2", "3"]),
            ("{3..1}", &["3", "2", "1"]),
            ("{1..7..3}", &["1", "4", "7"]),
            ("{q..s}m", &["qm", "rm", "sm"]),
            ("{a,}", &["a", ""]),
            ("{}", &["{}"]),
            ("{", &["{"]),
            ("}", &["}"]),
            ("{a..}", &["{a..}"]),
            ("{a,b", &["{a,b"]),
        ];
        for (text, want) in cases {
            assert_eq!(all(text), *want, "{text}");
        }
        // Only marked braces expand (the others were quoted).
        let mut budget = 100;
        assert_eq!(
            expand("{a,b}", &[], &mut budget),
            Some(vec!["{a,b}".to_string()])
        );
    }

    #[test]
    fn the_budget_bounds_the_work() {
        let text = "{a,b}".repeat(40);
        let marks: Vec<usize> = (0..text.len())
            .filter(|i| i % 5 != 1 && i % 5 != 3)
            .collect();
        let mut budget = 10_000;
        assert_eq!(expand(&text, &marks, &mut budget), None);
        let mut budget = usize::MAX;
        assert_eq!(expand("{1..100000000}", &[0, 13], &mut budget), None);
    }
}
