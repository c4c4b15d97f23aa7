//! A small reader for POSIX-style shell command lines, written for the
//! guardrails: it splits a line into simple commands (across `&&`, `||`,
//! `;`, `|`, `&`, newlines, `( … )`, `{ …; }`, `$( … )`, backticks and
//! process substitution), removes quoting the way the shell does, and
//! collects heredoc bodies.
//!
//! Owns: shell lexing and its limits. Must not: judge anything (see
//! `catalogue`), panic on any input, or recurse without bound.
//!
//! Every limit below fails closed: where the reader gives up (a limit, or a
//! quote or substitution that never ends) it says so in [`Script::gave_up`],
//! and the catalogue blocks the call, since what was not read was not
//! checked.

mod braces;

/// Longest command line read, in bytes. A longer one is not read at all
/// ([`Limit::Bytes`]); a script that long belongs in a file.
pub(super) const MAX_INPUT_BYTES: usize = 1024 * 1024;

/// Deepest nesting of `( )`, `$( )`, backticks, `<( )`, `${ }`, `$(( ))`
/// and heredoc bodies that is read; deeper is [`Limit::Depth`]. It also
/// bounds the reader's recursion, so no input can exhaust the stack.
pub(super) const MAX_DEPTH: usize = 16;

/// Most simple commands in one line, nested ones included
/// ([`Limit::Commands`]).
pub(super) const MAX_COMMANDS: usize = 10_000;

/// Most words (after quote removal) in one line, over all its commands
/// ([`Limit::Words`]).
pub(super) const MAX_WORDS: usize = 100_000;

/// Most characters brace expansion (`{a,b}`, `{1..9}`) may write for one
/// line, partial words included ([`Limit::Braces`]): `{a,b}` repeated
/// doubles the words each time.
pub(super) const MAX_BRACE_CHARS: usize = 4 * MAX_INPUT_BYTES;

/// Why the reader stopped before the end of a line: the rest was not read,
/// so the line cannot be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Limit {
    /// Longer than [`MAX_INPUT_BYTES`] (the length is kept).
    Bytes(usize),
    /// Nested deeper than [`MAX_DEPTH`].
    Depth,
    /// More than [`MAX_COMMANDS`] simple commands.
    Commands,
    /// More than [`MAX_WORDS`] words.
    Words,
    /// Brace expansion past [`MAX_BRACE_CHARS`].
    Braces,
    /// A quote or substitution that never ends (which one).
    Unterminated(&'static str),
}

impl Limit {
    /// Why the call is blocked, for the agent and the record.
    pub fn reason(self) -> String {
        let what = match self {
            Limit::Bytes(n) => format!(
                "the command is {n} bytes long, more than the {MAX_INPUT_BYTES} bytes the guardrails read (put a long script in a file and run the file)"
            ),
            Limit::Depth => format!(
                "the command nests `( )`, `$( )`, backticks, `<( )`, `${{ }}` or `$(( ))` more than {MAX_DEPTH} levels deep, too deeply nested to check (write it with less nesting)"
            ),
            Limit::Commands => format!(
                "the command has more than {MAX_COMMANDS} simple commands, too many to check (split it up)"
            ),
            Limit::Words => format!(
                "the command has more than {MAX_WORDS} words, too many to check (split it up)"
            ),
            Limit::Braces => format!(
                "the command's brace expansions (`{{a,b}}`, `{{1..9}}`) make more than {MAX_BRACE_CHARS} characters of words, too many to check"
            ),
            Limit::Unterminated(what) => format!(
                "the command has an unterminated {what}, so it cannot be read the way bash would (close it)"
            ),
        };
        format!("{what}; it could not be fully checked, so it is blocked to be safe")
    }
}

/// One simple command: its words after quote removal, its redirections,
/// and what it reads on stdin from heredocs and here-strings.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Command {
    pub words: Vec<String>,
    pub redirects: Vec<Redirect>,
    pub stdin: Vec<String>,
    slots: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Redirect {
    /// The operator with any fd prefix: `>`, `2>>`, `&>`, `<`, ...
    pub op: String,
    pub target: String,
}

impl Redirect {
    /// Whether the redirection writes to its target.
    pub fn writes(&self) -> bool {
        self.op.contains('>') && !self.op.ends_with(">&")
    }
}

/// Everything read from one command line, nested commands included.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Script {
    /// Pipelines in no particular order; each is one or more commands
    /// joined by `|`.
    pub pipelines: Vec<Vec<Command>>,
    /// Names of the shell functions the line defines.
    pub functions: Vec<String>,
    /// Where the reader gave up, if it did: the line was not fully read.
    pub gave_up: Option<Limit>,
}

/// Reads `text` as a shell command line. Never fails: whatever is not valid
/// shell is read as best it can be.
///
/// A line that is not read to its end has [`Script::gave_up`] set.
pub(super) fn parse(text: &str) -> Script {
    if text.len() > MAX_INPUT_BYTES {
        return Script {
            gave_up: Some(Limit::Bytes(text.len())),
            ..Script::default()
        };
    }
    let mut p = Parser::new(text, 0);
    p.list(false);
    p.finish()
}

struct Pending {
    delimiter: String,
    strip_tabs: bool,
    /// Unquoted delimiter: the body undergoes `$( )` and backtick
    /// substitution.
    expand: bool,
    slot: usize,
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
    out: Vec<Vec<Command>>,
    functions: Vec<String>,
    pending: Vec<Pending>,
    bodies: Vec<String>,
    /// Simple commands and words read so far, nested readers included.
    commands: usize,
    words: usize,
    /// What is left of [`MAX_BRACE_CHARS`].
    brace_budget: usize,
    /// Offsets in the last word read of its unquoted `{`, `,` and `}`.
    braces: Vec<usize>,
    gave_up: Option<Limit>,
}

/// Reserved words that may stand before a command (and so before a
/// function definition) in a compound command.
const OPENING_WORDS: &[&str] = &[
    "{", "!", "if", "then", "else", "elif", "do", "while", "until",
];

fn is_meta(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>'
    )
}

impl Parser {
    fn new(text: &str, depth: usize) -> Self {
        Self {
            chars: text.chars().collect(),
            pos: 0,
            depth,
            out: Vec::new(),
            functions: Vec::new(),
            pending: Vec::new(),
            bodies: Vec::new(),
            commands: 0,
            words: 0,
            brace_budget: MAX_BRACE_CHARS,
            braces: Vec::new(),
            gave_up: None,
        }
    }

    /// Stops reading: the first reason is kept and the rest of the line is
    /// skipped, so every loop above ends.
    fn give_up(&mut self, limit: Limit) {
        if self.gave_up.is_none() {
            self.gave_up = Some(limit);
        }
        self.pos = self.chars.len();
    }

    /// Enters one more level of nesting, or gives up at [`MAX_DEPTH`].
    fn enter(&mut self) -> bool {
        if self.depth >= MAX_DEPTH {
            self.give_up(Limit::Depth);
            return false;
        }
        self.depth += 1;
        true
    }

    /// A reader for nested text (a backtick body, a heredoc body), sharing
    /// this one's depth and counts; see [`Parser::absorb`].
    fn child(&self, text: &str) -> Parser {
        let mut p = Parser::new(text, self.depth);
        p.commands = self.commands;
        p.words = self.words;
        p.brace_budget = self.brace_budget;
        p
    }

    /// Takes what a [`Parser::child`] read.
    fn absorb(&mut self, child: Parser) {
        self.commands = child.commands;
        self.words = child.words;
        self.brace_budget = child.brace_budget;
        let gave_up = child.gave_up;
        let s = child.finish();
        self.out.extend(s.pipelines);
        self.functions.extend(s.functions);
        if let Some(limit) = gave_up {
            self.give_up(limit);
        }
    }

    fn finish(mut self) -> Script {
        let bodies = std::mem::take(&mut self.bodies);
        for pipeline in &mut self.out {
            for cmd in pipeline.iter_mut() {
                for slot in std::mem::take(&mut cmd.slots) {
                    if let Some(body) = bodies.get(slot) {
                        cmd.stdin.push(body.clone());
                    }
                }
            }
        }
        Script {
            pipelines: self.out,
            functions: self.functions,
            gave_up: self.gave_up,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn raw(&self, start: usize) -> String {
        let end = self.pos.min(self.chars.len());
        self.chars
            .get(start.min(end)..end)
            .map(|s| s.iter().collect())
            .unwrap_or_default()
    }

    /// Spaces, tabs and line continuations.
    fn skip_blanks(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r') => self.pos += 1,
                Some('\\') if self.peek_at(1) == Some('\n') => self.pos += 2,
                _ => return,
            }
        }
    }

    fn skip_comment(&mut self) {
        if self.peek() == Some('#') {
            while let Some(c) = self.peek() {
                if c == '\n' {
                    return;
                }
                self.pos += 1;
            }
        }
    }

    /// Called after a newline outside quotes: reads the heredoc bodies
    /// that the line just ended announced.
    fn newline(&mut self) {
        for p in std::mem::take(&mut self.pending) {
            let mut body = String::new();
            while self.pos < self.chars.len() {
                let mut line = String::new();
                while let Some(c) = self.bump() {
                    if c == '\n' {
                        break;
                    }
                    line.push(c);
                }
                let cmp = if p.strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    line.as_str()
                };
                if cmp.trim_end_matches('\r') == p.delimiter {
                    break;
                }
                body.push_str(&line);
                body.push('\n');
            }
            if p.expand {
                self.expand_body(&body);
            }
            if let Some(b) = self.bodies.get_mut(p.slot) {
                *b = body;
            }
        }
    }

    /// Reads the `$( )`, `${ }`, `$(( ))` and backtick substitutions of a
    /// heredoc body with an unquoted delimiter: bash runs them.
    fn expand_body(&mut self, body: &str) {
        if !self.enter() {
            return;
        }
        let mut p = self.child(body);
        let mut scratch = String::new();
        while let Some(c) = p.peek() {
            match c {
                '\\' => p.pos += 2,
                '$' => p.dollar(&mut scratch, true),
                '`' => p.backtick(&mut scratch),
                _ => p.pos += 1,
            }
            scratch.clear();
        }
        self.absorb(p);
        self.depth -= 1;
    }

    /// Reads commands until the end, or until the `)` that closes a group
    /// when `in_paren`; false if the input ended first.
    fn list(&mut self, in_paren: bool) -> bool {
        loop {
            self.skip_blanks();
            self.skip_comment();
            let before = self.pos;
            match self.peek() {
                None => return !in_paren,
                Some(')') => {
                    self.pos += 1;
                    if in_paren {
                        return true;
                    }
                }
                Some('\n') => {
                    self.pos += 1;
                    self.newline();
                }
                Some(';' | '&' | '|') => self.pos += 1,
                Some(_) => self.pipeline(),
            }
            if self.pos == before {
                // Defensive: every branch above consumes input, but a
                // parser that stops making progress must not spin.
                self.pos += 1;
            }
        }
    }

    fn pipeline(&mut self) {
        let mut cmds = Vec::new();
        loop {
            let cmd = self.command();
            if !cmd.words.is_empty() || !cmd.redirects.is_empty() || !cmd.slots.is_empty() {
                self.commands += 1;
                if self.commands > MAX_COMMANDS {
                    self.give_up(Limit::Commands);
                }
                cmds.push(cmd);
            }
            self.skip_blanks();
            if self.peek() == Some('|') && self.peek_at(1) != Some('|') {
                self.pos += 1;
                if self.peek() == Some('&') {
                    self.pos += 1;
                }
                loop {
                    self.skip_blanks();
                    if self.peek() == Some('\n') {
                        self.pos += 1;
                        self.newline();
                    } else {
                        break;
                    }
                }
                continue;
            }
            break;
        }
        if !cmds.is_empty() {
            self.out.push(cmds);
        }
    }

    fn command(&mut self) -> Command {
        let mut cmd = Command::default();
        loop {
            self.skip_blanks();
            let Some(c) = self.peek() else { break };
            match c {
                '\n' | ';' | '|' | ')' => break,
                '&' if self.peek_at(1) == Some('>') => self.redirect(&mut cmd, String::new()),
                '&' => break,
                '<' | '>' if self.peek_at(1) == Some('(') => {
                    // Process substitution: `<(cmd)` is a word naming a pipe.
                    let start = self.pos;
                    self.pos += 2;
                    self.nested();
                    cmd.words.push(self.raw(start));
                }
                '<' | '>' => self.redirect(&mut cmd, String::new()),
                '(' => {
                    let mut j = self.pos + 1;
                    while matches!(self.chars.get(j), Some(' ' | '\t')) {
                        j += 1;
                    }
                    // Reserved words before the name (`{ f() …`, `then f() …`)
                    // still make it a definition, as bash reads it.
                    let defines = cmd.words.split_last().is_some_and(|(_, before)| {
                        before.iter().all(|w| OPENING_WORDS.contains(&w.as_str()))
                    });
                    if defines && self.chars.get(j) == Some(&')') {
                        // `name() body`: a function definition.
                        self.functions.extend(cmd.words.pop());
                        self.pos = j + 1;
                    } else {
                        self.pos += 1;
                        self.nested();
                    }
                }
                '#' => self.skip_comment(),
                _ => {
                    let (text, plain) = self.word();
                    let fd = plain && !text.is_empty() && text.chars().all(|c| c.is_ascii_digit());
                    if fd && matches!(self.peek(), Some('<' | '>')) {
                        self.redirect(&mut cmd, text);
                    } else if plain && text == "function" && cmd.words.is_empty() {
                        self.skip_blanks();
                        let (name, _) = self.word();
                        if !name.is_empty() {
                            self.functions.push(name);
                        }
                    } else if self.braces.is_empty() {
                        self.push_word(&mut cmd, text);
                    } else {
                        let marks = std::mem::take(&mut self.braces);
                        match braces::expand(&text, &marks, &mut self.brace_budget) {
                            Some(words) => {
                                for w in words {
                                    self.push_word(&mut cmd, w);
                                }
                            }
                            None => self.give_up(Limit::Braces),
                        }
                    }
                }
            }
        }
        cmd
    }

    fn push_word(&mut self, cmd: &mut Command, word: String) {
        self.words += 1;
        if self.words > MAX_WORDS {
            self.give_up(Limit::Words);
        }
        cmd.words.push(word);
    }

    fn redirect(&mut self, cmd: &mut Command, mut op: String) {
        if self.peek() == Some('&') {
            op.push('&');
            self.pos += 1;
        }
        match self.bump() {
            Some('>') => {
                op.push('>');
                if let Some(c @ ('>' | '|' | '&')) = self.peek() {
                    op.push(c);
                    self.pos += 1;
                }
            }
            Some('<') => {
                op.push('<');
                match self.peek() {
                    Some('<') => {
                        op.push('<');
                        self.pos += 1;
                        if let Some(c @ ('-' | '<')) = self.peek() {
                            op.push(c);
                            self.pos += 1;
                        }
                    }
                    Some(c @ ('&' | '>')) => {
                        op.push(c);
                        self.pos += 1;
                    }
                    _ => {}
                }
            }
            _ => return,
        }
        self.skip_blanks();
        let start = self.pos;
        let target = match self.peek() {
            Some(c) if !is_meta(c) => self.word().0,
            _ => String::new(),
        };
        let quoted = self.raw(start).contains(['\'', '"', '\\']);
        if op.ends_with("<<<") {
            cmd.stdin.push(target);
        } else if op.ends_with("<<") || op.ends_with("<<-") {
            let slot = self.bodies.len();
            self.bodies.push(String::new());
            self.pending.push(Pending {
                delimiter: target,
                strip_tabs: op.ends_with('-'),
                expand: !quoted,
                slot,
            });
            cmd.slots.push(slot);
        } else {
            cmd.redirects.push(Redirect { op, target });
        }
    }

    /// One word with quotes removed; `plain` is false if any quoting,
    /// escaping or expansion was involved.
    /// The offsets of its unquoted `{`, `,` and `}` are left in
    /// `self.braces`, for brace expansion.
    fn word(&mut self) -> (String, bool) {
        let mut text = String::new();
        let mut plain = true;
        let mut marks = Vec::new();
        while let Some(c) = self.peek() {
            if is_meta(c) {
                break;
            }
            match c {
                '\\' => {
                    plain = false;
                    self.pos += 1;
                    match self.bump() {
                        Some('\n') | None => {}
                        Some(n) => text.push(n),
                    }
                }
                '\'' => {
                    plain = false;
                    self.pos += 1;
                    self.single_quoted(&mut text);
                }
                '"' => {
                    plain = false;
                    self.pos += 1;
                    self.double_quoted(&mut text);
                }
                '$' => {
                    plain = false;
                    self.dollar(&mut text, false);
                }
                '`' => {
                    plain = false;
                    self.backtick(&mut text);
                }
                _ => {
                    if matches!(c, '{' | ',' | '}') {
                        marks.push(text.len());
                    }
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
        // Only a `{` can start an expansion.
        self.braces = if marks.iter().any(|&m| text.as_bytes().get(m) == Some(&b'{')) {
            marks
        } else {
            Vec::new()
        };
        (text, plain)
    }

    /// After a `'`: up to the closing one.
    fn single_quoted(&mut self, text: &mut String) {
        while let Some(n) = self.bump() {
            if n == '\'' {
                return;
            }
            text.push(n);
        }
        self.give_up(Limit::Unterminated("`'` quote"));
    }

    /// After a `"`: up to the closing one, reading substitutions.
    fn double_quoted(&mut self, text: &mut String) {
        while let Some(c) = self.peek() {
            match c {
                '"' => {
                    self.pos += 1;
                    return;
                }
                '\\' => match self.peek_at(1) {
                    Some(n @ ('$' | '`' | '"' | '\\')) => {
                        text.push(n);
                        self.pos += 2;
                    }
                    Some('\n') => self.pos += 2,
                    _ => {
                        text.push('\\');
                        self.pos += 1;
                    }
                },
                '$' => self.dollar(text, true),
                '`' => self.backtick(text),
                _ => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
        self.give_up(Limit::Unterminated("`\"` quote"));
    }

    /// At a `$`: command substitution is read as commands and kept in the
    /// word as written; `$'…'` is decoded; anything else is kept literally.
    fn dollar(&mut self, text: &mut String, in_double: bool) {
        let start = self.pos;
        match self.peek_at(1) {
            Some('(') if self.peek_at(2) == Some('(') && self.arith_closes(self.pos + 3) => {
                // Arithmetic: bash expands the `$( )` and backticks in it.
                self.pos += 3;
                self.expansion('(', ')', 2, in_double, "`$((` arithmetic");
                text.push_str(&self.raw(start));
            }
            Some('(') => {
                self.pos += 2;
                self.nested();
                text.push_str(&self.raw(start));
            }
            Some('{') => {
                // `${x:-$(cmd)}`: bash runs the substitutions in it.
                self.pos += 2;
                self.expansion('{', '}', 1, in_double, "`${` parameter expansion");
                text.push_str(&self.raw(start));
            }
            Some('\'') if !in_double => {
                self.pos += 2;
                self.ansi_c(text);
            }
            Some('"') if !in_double => {
                // `$"…"` (locale translation) is a double-quoted string.
                self.pos += 1;
            }
            Some('$') => {
                // `$$` (the shell's pid) is one token: in `$${ …; rm -rf / }`
                // the `{` is a plain character, not an expansion (found by
                // fuzzing).
                text.push_str("$$");
                self.pos += 2;
            }
            _ => {
                text.push('$');
                self.pos += 1;
            }
        }
    }

    fn ansi_c(&mut self, text: &mut String) {
        while let Some(c) = self.bump() {
            match c {
                '\'' => return,
                '\\' => match self.bump() {
                    Some('n') => text.push('\n'),
                    Some('t') => text.push('\t'),
                    Some('r') => text.push('\r'),
                    Some('e' | 'E') => text.push('\u{1b}'),
                    Some('0') => text.push('\0'),
                    Some(n) => text.push(n),
                    None => {}
                },
                _ => text.push(c),
            }
        }
        self.give_up(Limit::Unterminated("`$'` quote"));
    }

    fn backtick(&mut self, text: &mut String) {
        let start = self.pos;
        self.pos += 1;
        let mut inner = String::new();
        let mut closed = false;
        while let Some(c) = self.bump() {
            match c {
                '`' => {
                    closed = true;
                    break;
                }
                '\\' => match self.peek() {
                    Some(n @ ('`' | '\\' | '$')) => {
                        inner.push(n);
                        self.pos += 1;
                    }
                    _ => inner.push('\\'),
                },
                _ => inner.push(c),
            }
        }
        if !closed {
            self.give_up(Limit::Unterminated("backtick substitution"));
            return;
        }
        self.sub_parse(&inner);
        text.push_str(&self.raw(start));
    }

    /// Reads a `( … )` group as commands, after its `(`.
    fn nested(&mut self) {
        if !self.enter() {
            return;
        }
        if !self.list(true) {
            self.give_up(Limit::Unterminated("`(` or `$(`"));
        }
        self.depth -= 1;
    }

    fn sub_parse(&mut self, inner: &str) {
        if !self.enter() {
            return;
        }
        let mut p = self.child(inner);
        p.list(false);
        self.absorb(p);
        self.depth -= 1;
    }

    /// Reads up to the `close` that brings `depth` to zero, after the
    /// opening of a `${ }` or `$(( ))`: quotes are minded and the `$( )`,
    /// `${ }` and backtick substitutions inside are read as commands.
    /// Inside double quotes a `'` is an ordinary character
    /// (`"${x:-'$(cmd)'}"` runs `cmd`).
    fn expansion(
        &mut self,
        open: char,
        close: char,
        mut depth: usize,
        in_double: bool,
        what: &'static str,
    ) {
        if !self.enter() {
            return;
        }
        let mut scratch = String::new();
        while let Some(c) = self.peek() {
            match c {
                '\\' => self.pos += 2,
                '\'' if !in_double => {
                    self.pos += 1;
                    self.single_quoted(&mut scratch);
                }
                '"' => {
                    self.pos += 1;
                    self.double_quoted(&mut scratch);
                }
                '$' => self.dollar(&mut scratch, false),
                '`' => self.backtick(&mut scratch),
                // Bash nests `(` in arithmetic but not a bare `{` in `${ }`:
                // `${x:-{}` ends at its first `}` (`{ echo ${x:-{}; rm -rf /
                // }` runs the rm; found by fuzzing).
                c if c == open && open != '{' => {
                    depth += 1;
                    self.pos += 1;
                }
                c if c == close => {
                    self.pos += 1;
                    depth -= 1;
                    if depth == 0 {
                        self.depth -= 1;
                        return;
                    }
                }
                _ => self.pos += 1,
            }
            scratch.clear();
        }
        self.give_up(Limit::Unterminated(what));
        self.depth -= 1;
    }

    /// Whether the `$((` whose text starts at `from` is arithmetic: its
    /// parentheses close with `))`. Otherwise (`$((cmd) | (cmd))`) bash
    /// reads it as a command substitution of a subshell.
    fn arith_closes(&self, from: usize) -> bool {
        let mut depth = 0usize;
        let mut i = from;
        while let Some(&c) = self.chars.get(i) {
            i += 1;
            match c {
                '\\' => i += 1,
                '\'' => {
                    while self.chars.get(i).is_some_and(|&n| n != '\'') {
                        i += 1;
                    }
                    i += 1;
                }
                '"' => {
                    while let Some(&n) = self.chars.get(i) {
                        i += if n == '\\' { 2 } else { 1 };
                        if n == '"' {
                            break;
                        }
                    }
                }
                '(' => depth += 1,
                ')' if depth == 0 => return self.chars.get(i) == Some(&')'),
                ')' => depth -= 1,
                _ => {}
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(text: &str) -> Vec<Vec<String>> {
        let mut v: Vec<Vec<String>> = parse(text)
            .pipelines
            .into_iter()
            .flatten()
            .map(|c| c.words)
            .collect();
        v.sort();
        v
    }

    fn w(words: &[&[&str]]) -> Vec<Vec<String>> {
        let mut v: Vec<Vec<String>> = words
            .iter()
            .map(|c| c.iter().map(|s| s.to_string()).collect())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn splits_and_unquotes() {
        let cases: &[(&str, &[&[&str]])] = &[
            ("echo \"rm -rf /\"", &[&["echo", "rm -rf /"]]),
            ("echo 'a b' c\\ d", &[&["echo", "a b", "c d"]]),
            ("ls; rm -rf /", &[&["ls"], &["rm", "-rf", "/"]]),
            ("a && b || c & d", &[&["a"], &["b"], &["c"], &["d"]]),
            ("a | b |& c", &[&["a"], &["b"], &["c"]]),
            ("a\nb\n\n  c # d e\n", &[&["a"], &["b"], &["c"]]),
            ("(cd / && rm -rf *)", &[&["cd", "/"], &["rm", "-rf", "*"]]),
            ("{ a; b; }", &[&["{", "a"], &["b"], &["}"]]),
            (
                "echo $(rm -rf ~)",
                &[&["echo", "$(rm -rf ~)"], &["rm", "-rf", "~"]],
            ),
            (
                "echo \"$(a \"$(b 'c)')\")\"",
                &[
                    &["echo", "$(a \"$(b 'c)')\")"],
                    &["a", "$(b 'c)')"],
                    &["b", "c)"],
                ],
            ),
            ("x=`rm -rf /`", &[&["x=`rm -rf /`"], &["rm", "-rf", "/"]]),
            ("echo \"a\\\"b\\$c\\d\"", &[&["echo", "a\"b$c\\d"]]),
            ("echo $'a\\nb\\'c'", &[&["echo", "a\nb'c"]]),
            (
                "echo ${HOME}/x $((1+(2)))",
                &[&["echo", "${HOME}/x", "$((1+(2)))"]],
            ),
            ("a\\\nb c", &[&["ab", "c"]]),
            ("echo a#b #c", &[&["echo", "a#b"]]),
            (
                "diff <(ls a) <(ls b)",
                &[&["diff", "<(ls a)", "<(ls b)"], &["ls", "a"], &["ls", "b"]],
            ),
            ("FOO=1 BAR='x y' cmd", &[&["FOO=1", "BAR=x y", "cmd"]]),
        ];
        for (text, want) in cases {
            assert_eq!(commands(text), w(want), "{text}");
        }
    }

    #[test]
    fn redirects_and_heredocs() {
        let s = parse("cat a 2>/dev/null >out &>>log <in; echo x > /dev/sda");
        let first = &s.pipelines[0][0];
        assert_eq!(first.words, ["cat", "a"]);
        let ops: Vec<(&str, &str)> = first
            .redirects
            .iter()
            .map(|r| (r.op.as_str(), r.target.as_str()))
            .collect();
        assert_eq!(
            ops,
            [
                ("2>", "/dev/null"),
                (">", "out"),
                ("&>>", "log"),
                ("<", "in")
            ]
        );
        assert!(s.pipelines[1][0].redirects[0].writes());

        let s = parse("psql db <<'EOF' && echo done\nDROP TABLE x;\n  EOF\nEOF\nls");
        let cmds: Vec<&Command> = s.pipelines.iter().flatten().collect();
        assert_eq!(cmds[0].words, ["psql", "db"]);
        assert_eq!(cmds[0].stdin, ["DROP TABLE x;\n  EOF\n"]);
        assert_eq!(cmds[1].words, ["echo", "done"]);
        assert_eq!(cmds[2].words, ["ls"]);

        let s = parse("mysql <<-END\n\tdrop database p;\n\tEND\nsqlite3 d <<< 'DELETE FROM t'");
        let cmds: Vec<&Command> = s.pipelines.iter().flatten().collect();
        assert_eq!(cmds[0].stdin, ["\tdrop database p;\n"]);
        assert_eq!(cmds[1].stdin, ["DELETE FROM t"]);
    }

    #[test]
    fn functions_are_recorded() {
        let s = parse(":(){ :|:& };:");
        assert_eq!(s.functions, [":"]);
        let pipe = s.pipelines.iter().find(|p| p.len() == 2).map(|p| p.len());
        assert_eq!(pipe, Some(2));
        assert_eq!(parse("function f { g; }").functions, ["f"]);
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let deep = "$(".repeat(10_000) + &")".repeat(10_000);
        let _ = parse(&deep);
        let deep = "(".repeat(10_000);
        let _ = parse(&deep);
        let deep = "echo \"$(".repeat(500);
        let _ = parse(&deep);
    }
}
