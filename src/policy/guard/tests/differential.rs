//! Differential test of the shell reader against bash itself.
//!
//! Random but valid command lines are built from a small grammar
//! (pipelines, `;`, `&&`, `||`, `!`, `( )`, `{ …; }`, `$( )`, backticks,
//! `${x:-$( )}`, `$(( ))`, heredocs, here-strings, assignments, all the
//! quoting forms, brace expansion) whose programs are stub scripts in a
//! temporary directory, the only one on `PATH`. Each stub appends its name
//! and argv to a trace file. Every line is run with `bash -c`, and what
//! bash ran is compared with the simple commands [`shell::parse`] reports.
//!
//! The property: every command bash runs (program and arguments) is one
//! the reader reports, counted with multiplicity; and when nothing can be
//! skipped (no `||`, no `!`, no stub that fails), the two are equal. The
//! reader may report more than bash runs because it reads both sides of
//! `&&`/`||`; it must never report less, or the guard would miss a command.
//!
//! Arguments that are substitutions are left out on both sides: the stubs
//! print nothing, so bash passes an empty string or nothing, while the
//! reader keeps the substitution's text; literal arguments are never empty
//! and never hold `$` or a backtick, so the two sides can be told apart.
//!
//! `HOOPCTL_DIFF_SEED` and `HOOPCTL_DIFF_CASES` change the seed (default
//! fixed) and the number of lines (default [`CASES`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use super::super::shell;
use super::Rng;

/// Lines run by default.
const CASES: usize = 300;

/// Default seed.
const SEED: u64 = 0x5EED_0016_6A2D_1234;

/// Longest one `bash -c` may run.
const RUN_TIMEOUT: Duration = Duration::from_secs(10);

/// Stubs that succeed, and stubs that fail (exit 1).
/// (Never names of real programs: `PATH` holds only the stubs, but a
/// mistake there must not run `rm -rf /`.)
const OK: &[&str] = &["p0", "p1", "p2", "p3", "p4"];
const FAIL: &[&str] = &["f0", "f1"];

/// Field and record separators in the trace.
const US: char = '\u{1f}';
const RS: char = '\u{1e}';

type Ran = BTreeMap<(String, Vec<String>), usize>;

/// Builds one line; remembers whether a command in it may be skipped.
struct Gen {
    rng: Rng,
    /// Half the lines use no `||`, `!` or failing stub: nothing in them
    /// can be skipped, so bash must run exactly what the reader reports.
    strict: bool,
    skippable: bool,
    vars: usize,
}

impl Gen {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.below(items.len())]
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.rng.below(one_in) == 0
    }

    /// A whole line: a list, then perhaps a heredoc command, then `wait`
    /// for anything put in the background.
    fn line(&mut self) -> String {
        let mut s = self.list(0, false);
        if self.chance(4) {
            s.push_str(" # p3 comment");
        }
        if self.chance(3) {
            s.push('\n');
            s.push_str(&self.heredoc());
        }
        s.push_str("\nwait");
        s
    }

    fn list(&mut self, depth: usize, in_bt: bool) -> String {
        let n = 1 + self.rng.below(if depth == 0 { 4 } else { 2 });
        let mut s = self.and_or(depth, in_bt);
        for _ in 1..n {
            let sep = self.pick(&["; ", " && ", " || ", "\n", " & "]);
            let sep = if self.strict && sep == " || " {
                " && "
            } else {
                sep
            };
            if sep == " || " {
                self.skippable = true;
            }
            let sep = if sep == " & " && (depth > 0 || in_bt) {
                "; "
            } else {
                sep
            };
            s.push_str(sep);
            s.push_str(&self.and_or(depth, in_bt));
        }
        s
    }

    fn and_or(&mut self, depth: usize, in_bt: bool) -> String {
        let mut s = String::new();
        if !self.strict && self.chance(8) {
            self.skippable = true;
            s.push_str("! ");
        }
        let n = 1 + self.rng.below(if depth == 0 { 3 } else { 2 });
        for i in 0..n {
            if i > 0 {
                s.push_str(" | ");
            }
            s.push_str(&self.command(depth, in_bt));
        }
        s
    }

    fn command(&mut self, depth: usize, in_bt: bool) -> String {
        let deeper = depth < 3 && self.chance(2);
        match self.rng.below(10) {
            0 if deeper => format!("( {} )", self.list(depth + 1, in_bt)),
            1 if deeper => format!("{{ {}; }}", self.list(depth + 1, in_bt)),
            2 if deeper => {
                // `:` ignores its arguments, so any expansion may go there.
                format!(": {}", self.expansion(depth + 1, in_bt))
            }
            3 if deeper => {
                self.vars += 1;
                let (n, value) = (self.vars, self.opaque(depth + 1, in_bt));
                let v = format!("v{n}={value}");
                if self.chance(2) {
                    v
                } else {
                    format!("{v} {}", self.simple(depth, in_bt))
                }
            }
            _ => self.simple(depth, in_bt),
        }
    }

    fn name(&mut self, in_bt: bool) -> String {
        let name = if !self.strict && self.chance(6) {
            self.skippable = true;
            self.pick(FAIL)
        } else {
            self.pick(OK)
        };
        match self.rng.below(6) {
            0 => format!("'{name}'"),
            1 => format!("\"{name}\""),
            2 if !in_bt => {
                let (a, b) = name.split_at(1);
                format!("{a}\\{b}")
            }
            _ => name.to_string(),
        }
    }

    fn simple(&mut self, depth: usize, in_bt: bool) -> String {
        let mut s = self.name(in_bt);
        for _ in 0..self.rng.below(4) {
            s.push(' ');
            if depth < 3 && self.chance(6) {
                s.push_str(&self.opaque(depth + 1, in_bt));
            } else {
                s.push_str(&self.literal(in_bt));
            }
        }
        if depth < 3 && self.chance(8) {
            let target = self.opaque(depth + 1, in_bt);
            s.push_str(&format!(" <<< {target}"));
        }
        s
    }

    /// A word that expands to nothing (or "") but runs commands. (A space
    /// after `$(`: `$((` would be arithmetic.)
    fn opaque(&mut self, depth: usize, in_bt: bool) -> String {
        match self.rng.below(if in_bt { 4 } else { 5 }) {
            0 => format!("$( {} )", self.list(depth, in_bt)),
            1 => format!("\"$( {} )\"", self.list(depth, in_bt)),
            2 => format!("${{x:-$( {})}}", self.list(depth, in_bt)),
            3 => format!("\"${{x:-$( {})}}\"", self.list(depth, in_bt)),
            _ => format!("`{}`", self.list(depth, true)),
        }
    }

    /// An argument for `:`: arithmetic and parameter expansion that run
    /// commands.
    fn expansion(&mut self, depth: usize, in_bt: bool) -> String {
        match self.rng.below(3) {
            0 => format!("$(( $( {})0 + 1 ))", self.list(depth, in_bt)),
            1 => format!("\"$(( ( $( {})1 ) * 2 ))\"", self.list(depth, in_bt)),
            _ => self.opaque(depth, in_bt),
        }
    }

    /// A non-empty argument without `$` or backticks, in any quoting.
    fn literal(&mut self, in_bt: bool) -> String {
        const PLAIN: &[&str] = &["a", "b1", "-rf", "/", "x.y", "k=v", "--", "./p", "+", "%"];
        const QUOTED: &[&str] = &[
            "a b", ";", "|", "&&", "(x)", "<y>", "#c", "*", "?", "~", "{a,b}", "\"", "\\", "'",
        ];
        let mut s = String::new();
        for _ in 0..1 + self.rng.below(2) {
            match self.rng.below(if in_bt { 4 } else { 7 }) {
                0 | 1 => s.push_str(self.pick(PLAIN)),
                2 => {
                    let q = self.pick(QUOTED).replace('\'', "");
                    if q.is_empty() || (in_bt && q.contains('\\')) {
                        s.push('q');
                    } else {
                        s.push_str(&format!("'{q}'"));
                    }
                }
                3 => {
                    let q = self.pick(QUOTED).replace(['"', '\\'], "");
                    if q.is_empty() {
                        s.push('w');
                    } else {
                        s.push_str(&format!("\"{q}\""));
                    }
                }
                4 => {
                    let q = self.pick(QUOTED);
                    s.push_str(&format!(
                        "\"{}\"",
                        q.replace('\\', "\\\\").replace('"', "\\\"")
                    ));
                }
                // Not `\&`: bash 5.2 drops the `;` after it inside
                // `$( { …; } )` (a syntax error there, so it runs less).
                5 => s.push_str(&format!("\\{}", self.pick(&[";", "|", " ", "(", "#"]))),
                _ => s.push_str(self.pick(&["$'a\\nb'", "$'\\t'", "$'\\''", "$'x\\\\y'"])),
            }
        }
        if !in_bt && self.chance(8) {
            // Brace expansion: one word becomes several.
            s.push_str(self.pick(&["{c,d}", "{1..3}", "{p,q}{r,s}"]));
        }
        s
    }

    fn heredoc(&mut self) -> String {
        let quoted = self.chance(2);
        let mut s = self.simple(3, false);
        s.push_str(if quoted { " <<'EOF'\n" } else { " <<EOF\n" });
        for _ in 0..1 + self.rng.below(3) {
            if self.chance(2) {
                // Quoted: stays text. Unquoted: bash runs it.
                s.push_str(&format!("x $( {} ) y\n", self.list(2, false)));
            } else {
                s.push_str("plain 'text' \"here\"\n");
            }
        }
        s.push_str("EOF");
        s
    }
}

fn stubs(dir: &Path) {
    let script = "#!/bin/sh\nr=\"${0##*/}\"\nfor a in \"$@\"; do r=\"$r$US$a\"; done\nprintf '%s%s' \"$r\" \"$RS\" >> \"$TRACE\"\n";
    for name in OK.iter().chain(FAIL) {
        let body = if FAIL.contains(name) {
            format!("{script}exit 1\n")
        } else {
            script.to_string()
        };
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// What bash ran for `line`, and what it said on stderr.
fn run(line: &str, bin: &Path, cwd: &Path, trace: &Path) -> (Ran, String) {
    std::fs::write(trace, "").unwrap();
    let err = trace.with_extension("err");
    let mut child = Process::new("/bin/bash")
        .args(["--norc", "--noprofile", "-c", line])
        .env_clear()
        .env("PATH", bin)
        .env("TRACE", trace)
        .env("US", US.to_string())
        .env("RS", RS.to_string())
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bash ran longer than {RUN_TIMEOUT:?}: {line:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let text = std::fs::read_to_string(trace).unwrap();
    let mut ran = Ran::new();
    for rec in text.split(RS).filter(|r| !r.is_empty()) {
        let mut fields = rec.split(US).map(str::to_string);
        let name = fields.next().unwrap_or_default();
        let args: Vec<String> = fields.filter(|a| !a.is_empty()).collect();
        *ran.entry((name, args)).or_default() += 1;
    }
    (ran, std::fs::read_to_string(&err).unwrap_or_default())
}

/// What the reader reports for `line`, in the same terms.
fn reported(line: &str) -> Ran {
    let script = shell::parse(line);
    assert_eq!(script.gave_up, None, "reader gave up on {line:?}");
    let is_assignment = |w: &str| {
        w.split_once('=').is_some_and(|(n, _)| {
            !n.is_empty()
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !n.starts_with(|c: char| c.is_ascii_digit())
        })
    };
    let mut out = Ran::new();
    for cmd in script.pipelines.iter().flatten() {
        let mut words = cmd
            .words
            .iter()
            .skip_while(|w| matches!(w.as_str(), "{" | "!") || is_assignment(w));
        let Some(name) = words.next() else { continue };
        if !OK.contains(&name.as_str()) && !FAIL.contains(&name.as_str()) {
            continue;
        }
        let args: Vec<String> = words
            .filter(|w| !w.starts_with('$') && !w.starts_with('`') && !w.starts_with("\"$"))
            .cloned()
            .collect();
        *out.entry((name.clone(), args)).or_default() += 1;
    }
    out
}

#[test]
fn reader_reports_every_command_bash_runs() {
    if !Path::new("/bin/bash").exists() {
        eprintln!("no /bin/bash: differential test skipped");
        return;
    }
    let seed = std::env::var("HOOPCTL_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    let cases = std::env::var("HOOPCTL_DIFF_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(CASES);
    let tmp = tempfile::tempdir().unwrap();
    let (bin, cwd, trace) = (
        tmp.path().join("bin"),
        tmp.path().join("cwd"),
        tmp.path().join("trace"),
    );
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&cwd).unwrap();
    stubs(&bin);
    let mut gen = Gen {
        rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        strict: false,
        skippable: false,
        vars: 0,
    };
    let (mut equal, mut ran_total) = (0, 0);
    for case in 0..cases {
        gen.skippable = false;
        gen.strict = gen.chance(2);
        let line = gen.line();
        let (ran, stderr) = run(&line, &bin, &cwd, &trace);
        let seen = reported(&line);
        for (cmd, n) in &ran {
            let r = seen.get(cmd).copied().unwrap_or(0);
            assert!(
                r >= *n,
                "case {case} (seed {seed}): bash ran {cmd:?} {n}x, the reader reports it {r}x\nline: {line:?}\nbash: {ran:?}\nreader: {seen:?}\nstderr: {stderr}"
            );
        }
        if !gen.skippable {
            assert_eq!(
                ran, seen,
                "case {case} (seed {seed}): nothing could be skipped, yet the reader differs\nline: {line:?}\nstderr: {stderr}"
            );
            equal += 1;
        }
        ran_total += ran.values().sum::<usize>();
    }
    eprintln!(
        "differential: {cases} lines (seed {seed}), {ran_total} commands run by bash, {equal} lines compared for equality"
    );
    assert!(
        ran_total > cases,
        "the stubs hardly ran: is the trace written?"
    );
}
