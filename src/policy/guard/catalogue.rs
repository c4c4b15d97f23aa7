//! The built-in catalogue of destructive operations: what a Bash command,
//! a file write or an MCP call would do, judged rule by rule.
//!
//! Owns: the shell rules (recursive deletes, disk wipes, force pushes, ...),
//! wrapper unwrapping (`sudo`, `env`, `bash -c`, `xargs`, ...) and the
//! protected-path test. Must not: do I/O (home comes from the caller) or
//! panic on any input.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::shell::{self, Command, Redirect};
use super::sql::{self, Origin};
use super::Finding;

/// Deepest `bash -c '…'` / `eval` / `find -exec` nesting that is followed;
/// deeper is blocked (`builtin:unparsable`).
pub(super) const MAX_NEST: usize = 8;

/// Most string leaves of one MCP input that are examined; more is blocked
/// (`builtin:unparsable`).
pub(super) const MAX_LEAVES: usize = 10_000;

/// Most command-line text read for one call, over every line re-read from
/// `bash -c`, `eval`, `find -exec`, heredocs and substitutions (each line
/// also counts [`LINE_COST`]). Re-reading can multiply a short input
/// (`eval $(eval $(eval …)))` is read once per level), so past this the
/// call is blocked (`builtin:unparsable`) instead of read further.
pub(super) const MAX_SHELL_WORK: usize = 4 * shell::MAX_INPUT_BYTES;

/// What each line read costs against [`MAX_SHELL_WORK`] on top of its
/// bytes, so that many tiny lines are bounded too.
const LINE_COST: usize = 64;

/// The rule for calls the guard could not fully read.
const UNPARSABLE: &str = "builtin:unparsable";

const SHELLS: &[&str] = &["sh", "bash", "zsh", "dash", "ksh", "ash", "mksh", "fish"];
const SQL_CLIENTS: &[&str] = &["psql", "mysql", "mariadb", "sqlite3"];
const FETCHERS: &[&str] = &["curl", "wget", "fetch"];

/// Reserved words that may start a simple command in a compound one.
const KEYWORDS: &[&str] = &[
    "{", "}", "!", "if", "then", "else", "elif", "fi", "do", "done", "while", "until",
];

/// A download fed to a shell through substitution: `bash <(curl …)`,
/// `sh -c "$(curl …)"`, `eval "$(wget -O- …)"`.
static FETCH_SUBST: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(\$\(|<\(|`)\s*(sudo\s+)?(\S*/)?(curl|wget)\b").ok());

/// A protected path: as configured (for messages) and expanded.
#[derive(Debug, Clone)]
pub(super) struct Protected {
    pub shown: String,
    pub path: String,
}

impl Protected {
    pub fn new(shown: &str, home: Option<&str>) -> Self {
        Self {
            shown: shown.to_string(),
            path: normalize(&expand_home(shown, home)),
        }
    }
}

pub(super) struct Analyzer<'a> {
    home: Option<&'a str>,
    protected: &'a [Protected],
    pub findings: Vec<Finding>,
    /// The directory a preceding `cd` moved to, when known (normalised).
    cwd: Option<String>,
    /// Command-line text read so far, against [`MAX_SHELL_WORK`].
    work: usize,
    /// Set once a limit stopped the reading: nothing more is read.
    stopped: bool,
}

impl<'a> Analyzer<'a> {
    pub fn new(home: Option<&'a str>, protected: &'a [Protected]) -> Self {
        Self {
            home,
            protected,
            findings: Vec::new(),
            cwd: None,
            work: 0,
            stopped: false,
        }
    }

    /// Examines one tool call.
    pub fn tool(&mut self, tool: &str, input: &Value) {
        match tool {
            "Bash" => {
                if let Some(cmd) = input.get("command").and_then(Value::as_str) {
                    self.shell(cmd, 0);
                }
            }
            "Write" | "Edit" | "MultiEdit" | "NotebookEdit" => {
                for key in ["file_path", "notebook_path"] {
                    if let Some(p) = input.get(key).and_then(Value::as_str) {
                        self.protected_write(p, tool);
                    }
                }
            }
            t if t.starts_with("mcp__") => self.mcp(input),
            _ => {}
        }
    }

    fn block(&mut self, rule: &'static str, reason: String) {
        self.findings.push(Finding::block(rule, reason));
    }

    fn review(&mut self, rule: &'static str, reason: String) {
        self.findings.push(Finding::review(rule, reason));
    }

    /// Every string leaf of an MCP input: `command`/`cmd` as shell, the
    /// rest as possible SQL.
    fn mcp(&mut self, input: &Value) {
        let mut stack: Vec<(Option<&str>, &Value)> = vec![(None, input)];
        let mut leaves = 0;
        while let Some((key, v)) = stack.pop() {
            match v {
                Value::String(s) => {
                    leaves += 1;
                    if leaves > MAX_LEAVES {
                        self.unparsable(format!(
                            "the input has more than {MAX_LEAVES} strings, too many to check"
                        ));
                        return;
                    }
                    if matches!(key, Some("command" | "cmd")) {
                        self.shell(s, 0);
                    } else {
                        self.findings.extend(sql::check(s, Origin::Embedded));
                    }
                }
                Value::Array(items) => stack.extend(items.iter().map(|i| (key, i))),
                Value::Object(map) => stack.extend(map.iter().map(|(k, i)| (Some(k.as_str()), i))),
                _ => {}
            }
        }
    }

    fn protected_write(&mut self, path: &str, what: &str) {
        if let Some(p) = self.protected_match(path) {
            let shown = p.shown.clone();
            self.block(
                "builtin:protected-path",
                format!("{what} to `{path}` is inside the protected path `{shown}`"),
            );
        }
    }

    fn protected_match(&self, path: &str) -> Option<&'a Protected> {
        let path = normalize(&expand_home(path, self.home));
        self.protected.iter().find(|p| inside(&path, &p.path))
    }

    /// Blocks a call that could not be fully read, and stops reading.
    fn unparsable(&mut self, what: String) {
        self.stopped = true;
        self.block(
            UNPARSABLE,
            format!("{what}; it could not be fully checked, so it is blocked to be safe"),
        );
    }

    /// A command line, and any command line nested in it.
    pub fn shell(&mut self, text: &str, depth: usize) {
        if self.stopped {
            return;
        }
        if depth > MAX_NEST {
            self.unparsable(format!(
                "the command nests `bash -c`, `eval`, `find -exec` or a script on stdin more than {MAX_NEST} levels deep, too deeply nested to check (write it with less nesting)"
            ));
            return;
        }
        self.work = self
            .work
            .saturating_add(text.len())
            .saturating_add(LINE_COST);
        if self.work > MAX_SHELL_WORK {
            self.unparsable(format!(
                "the command re-runs nested command lines (`eval`, `bash -c`, substitutions) that add up to more than {MAX_SHELL_WORK} bytes to read, too much to check"
            ));
            return;
        }
        let script = shell::parse(text);
        if let Some(limit) = script.gave_up {
            // Blocked whatever the part that was read holds; reading it
            // further would only cost time.
            self.stopped = true;
            self.block(UNPARSABLE, limit.reason());
            return;
        }
        for pipeline in &script.pipelines {
            let argvs: Vec<Vec<String>> = pipeline
                .iter()
                .map(|cmd| self.command(cmd, depth))
                .collect();
            self.pipeline(pipeline, &argvs, &script.functions, depth);
            if let [argv] = argvs.as_slice() {
                self.track_cd(argv);
            }
        }
    }

    /// Follows `cd` so that `cd / && rm -rf usr` is seen as `rm -rf /usr`.
    /// Only ever used to find more, never less: `*` and `.` stay broad.
    fn track_cd(&mut self, argv: &[String]) {
        if argv.first().map(|w| basename(w)) != Some("cd") {
            return;
        }
        let target = argv
            .get(1..)
            .unwrap_or_default()
            .iter()
            .find(|a| !short_cluster(a) || a.as_str() == "-");
        self.cwd = match target.map(String::as_str) {
            None => Some(normalize(&expand_home("~", self.home))),
            Some(t) if t.starts_with('/') || t.starts_with('~') || t.starts_with("$HOME") => {
                Some(normalize(&expand_home(t, self.home)))
            }
            Some(t) if !t.starts_with('$') && t != "-" => {
                self.cwd.as_ref().map(|c| normalize(&format!("{c}/{t}")))
            }
            Some(_) => None,
        };
    }

    fn command(&mut self, cmd: &Command, depth: usize) -> Vec<String> {
        for r in &cmd.redirects {
            self.redirect(r);
        }
        self.words(&cmd.words, &cmd.stdin, depth)
    }

    fn redirect(&mut self, r: &Redirect) {
        if r.writes() {
            self.write_target(&r.target, "a redirection");
        }
    }

    fn write_target(&mut self, target: &str, how: &str) {
        if is_device(target) {
            self.block(
                "builtin:write-block-device",
                format!("{how} writes straight to the device `{target}`, destroying what is on it"),
            );
        } else {
            self.protected_write(target, how);
        }
    }

    /// Unwraps a simple command and judges what it runs; returns the
    /// effective argv (wrappers removed).
    fn words(&mut self, words: &[String], stdin: &[String], depth: usize) -> Vec<String> {
        let (argv, scripts) = unwrap(words);
        for s in scripts {
            self.shell(&s, depth + 1);
        }
        self.argv(&argv, stdin, depth);
        argv
    }

    fn pipeline(
        &mut self,
        cmds: &[Command],
        argvs: &[Vec<String>],
        functions: &[String],
        depth: usize,
    ) {
        let name = |i: usize| argvs.get(i).and_then(|a| a.first()).map(|w| basename(w));
        // `:(){ :|:& };:` — a function piping into itself.
        let calls = (0..argvs.len())
            .filter(|&i| name(i).is_some_and(|n| functions.iter().any(|f| f == n)))
            .count();
        if argvs.len() >= 2 && calls >= 2 {
            self.block(
                "builtin:fork-bomb",
                "a function that pipes into itself in the background (a fork bomb) exhausts the machine".into(),
            );
        }
        for (j, argv) in argvs.iter().enumerate() {
            if reads_script_from_stdin(argv) {
                // `bash <<EOF … EOF`, `echo "rm -rf /" | sh`: the script
                // arrives on stdin.
                let mut scripts: Vec<String> =
                    cmds.get(j).map(|c| c.stdin.clone()).unwrap_or_default();
                if let Some(prev) = j.checked_sub(1).and_then(|p| argvs.get(p)) {
                    if matches!(prev.first().map(|w| basename(w)), Some("echo" | "printf")) {
                        scripts.push(prev.get(1..).unwrap_or_default().join(" "));
                    }
                }
                for s in scripts {
                    self.shell(&s, depth + 1);
                }
            }
            if j == 0 {
                continue;
            }
            let before = argvs.get(..j).unwrap_or_default();
            if reads_script_from_stdin(argv) {
                if let Some(f) = before
                    .iter()
                    .filter_map(|a| a.first())
                    .find(|w| FETCHERS.contains(&basename(w)))
                {
                    let (f, sh) = (basename(f).to_string(), basename(&argv[0]).to_string());
                    self.block(
                        "builtin:curl-pipe-shell",
                        format!("pipes a download (`{f}`) straight into `{sh}`, running unreviewed code"),
                    );
                }
            }
            if name(j).is_some_and(|n| SQL_CLIENTS.contains(&n)) {
                // `echo "DROP TABLE t" | psql`, `cat <<EOF | mysql`.
                if let (Some(prev), Some(cmd)) = (argvs.get(j - 1), cmds.get(j - 1)) {
                    if matches!(prev.first().map(|w| basename(w)), Some("echo" | "printf")) {
                        let text = prev.get(1..).unwrap_or_default().join(" ");
                        self.findings.extend(sql::check(&text, Origin::Client));
                    }
                    for doc in &cmd.stdin {
                        self.findings.extend(sql::check(doc, Origin::Client));
                    }
                }
            }
        }
    }

    fn argv(&mut self, argv: &[String], stdin: &[String], depth: usize) {
        let Some(first) = argv.first() else { return };
        let name = basename(first);
        let args = argv.get(1..).unwrap_or_default();
        match name {
            "rm" => self.rm(args),
            "chmod" => self.chmod(args),
            "chown" | "chgrp" => self.chown(name, args),
            "dd" => {
                for t in args.iter().filter_map(|a| a.strip_prefix("of=")) {
                    if is_device(t) {
                        self.block(
                            "builtin:dd-device",
                            format!("`dd of={t}` overwrites the device, destroying what is on it"),
                        );
                    }
                }
            }
            "tee" => {
                for a in args.iter().filter(|a| !a.starts_with('-')) {
                    self.write_target(a, "`tee`");
                }
            }
            n if n.starts_with("mkfs") || n == "mke2fs" => self.block(
                "builtin:mkfs",
                format!("`{n}` creates a new filesystem, erasing the device"),
            ),
            "shutdown" | "reboot" | "halt" | "poweroff" => self.block(
                "builtin:shutdown",
                format!("`{name}` stops or restarts the machine"),
            ),
            "systemctl" | "loginctl" => {
                let power = ["poweroff", "reboot", "halt", "kexec", "soft-reboot"];
                if let Some(a) = args.iter().find(|a| power.contains(&a.as_str())) {
                    self.block(
                        "builtin:shutdown",
                        format!("`{name} {a}` stops or restarts the machine"),
                    );
                }
            }
            "init" | "telinit" if matches!(args.first().map(String::as_str), Some("0" | "6")) => {
                self.block(
                    "builtin:shutdown",
                    format!("`{name} {}` stops or restarts the machine", args[0]),
                )
            }
            "git" => self.git(args),
            "kubectl" | "oc" => self.kubectl(name, args),
            "terraform" | "tofu" | "terragrunt" => self.terraform(name, args),
            "aws" => self.aws(args),
            "gcloud" if positionals(args, &[]).contains(&"delete") => self.block(
                "builtin:gcloud-delete",
                "`gcloud … delete` deletes cloud resources".into(),
            ),
            "docker" | "podman" => {
                let pos = positionals(args, &[]);
                let all = args
                    .iter()
                    .any(|a| a == "--all" || (short_cluster(a) && a.contains('a')));
                if pos.windows(2).any(|w| w == ["system", "prune"]) && all {
                    self.block(
                        "builtin:docker-prune-all",
                        format!("`{name} system prune -a` deletes every unused image, container and network"),
                    );
                }
            }
            n if SQL_CLIENTS.contains(&n) => self.sql_client(n, args, stdin),
            "find" => self.find(args, depth),
            n if SHELLS.contains(&n) || matches!(n, "source" | "." | "eval") => {
                let fetches = FETCH_SUBST.as_ref();
                if args
                    .iter()
                    .any(|a| fetches.is_some_and(|re| re.is_match(a)))
                {
                    self.block(
                        "builtin:curl-pipe-shell",
                        format!("feeds a download straight into `{n}`, running unreviewed code"),
                    );
                }
            }
            _ => {}
        }
    }

    fn rm(&mut self, args: &[String]) {
        let mut recursive = false;
        let mut targets = Vec::new();
        let mut options = true;
        for a in args {
            if options && a == "--" {
                options = false;
            } else if options && a.starts_with("--") {
                recursive |= a == "--recursive";
            } else if options && short_cluster(a) {
                recursive |= a.contains('r') || a.contains('R');
            } else {
                targets.push(a.as_str());
            }
        }
        if !recursive {
            return;
        }
        for t in &targets {
            if let Some(b) = broad(t, self.home) {
                self.block(
                    "builtin:rm-recursive-broad",
                    format!("recursive delete of `{t}` ({})", b.describe()),
                );
                return;
            }
            let relative = !(t.starts_with('/') || t.starts_with('~') || t.starts_with('$'));
            if let Some(cwd) = self.cwd.clone().filter(|_| relative) {
                let full = normalize(&format!("{cwd}/{t}"));
                if let Some(b) = broad(&full, self.home) {
                    self.block(
                        "builtin:rm-recursive-broad",
                        format!(
                            "recursive delete of `{t}` in `{cwd}`, that is `{full}` ({})",
                            b.describe()
                        ),
                    );
                    return;
                }
            }
        }
        for t in &targets {
            if let Some(p) = self.protected_match(t) {
                let shown = p.shown.clone();
                self.block(
                    "builtin:protected-path",
                    format!("recursive delete of `{t}` inside the protected path `{shown}`"),
                );
                return;
            }
        }
        let reason = match targets.as_slice() {
            [] => "recursive delete of paths computed at runtime".to_string(),
            [t, ..] if t.starts_with('$') => format!(
                "recursive delete of `{t}`, which depends on a variable (empty, it could mean `/`)"
            ),
            ts => format!("recursive delete of {}", quoted_list(ts)),
        };
        self.review("builtin:rm-recursive", reason);
    }

    fn chmod(&mut self, args: &[String]) {
        let mut recursive = false;
        let mut mode: Option<&str> = None;
        let mut targets = Vec::new();
        for a in args {
            let flags = a.len() > 1
                && a.starts_with('-')
                && a.chars().skip(1).all(|c| "RfvcHLP".contains(c));
            if a == "--recursive" || (flags && a.contains('R')) {
                recursive = true;
            } else if flags || a.starts_with("--") {
            } else if mode.is_none() {
                mode = Some(a);
            } else {
                targets.push(a.as_str());
            }
        }
        if !recursive {
            return;
        }
        let mode = mode.unwrap_or_default();
        if world_writable(mode) {
            self.block(
                "builtin:chmod-777-recursive",
                format!(
                    "`chmod -R {mode}` makes everything under {} writable by anyone",
                    quoted_list(&targets)
                ),
            );
        } else if let Some((t, b)) = self.system_target(&targets) {
            self.block(
                "builtin:chmod-recursive-broad",
                format!("recursive `chmod` of `{t}` ({})", b.describe()),
            );
        }
    }

    fn chown(&mut self, name: &str, args: &[String]) {
        let recursive = args
            .iter()
            .any(|a| a == "--recursive" || (short_cluster(a) && a.contains('R')));
        if !recursive {
            return;
        }
        let targets: Vec<&str> = positionals(args, &[]).into_iter().skip(1).collect();
        if let Some((t, b)) = self.system_target(&targets) {
            self.block(
                "builtin:chown-recursive-broad",
                format!("recursive `{name}` of `{t}` ({})", b.describe()),
            );
        }
    }

    /// The first target that is `/`, the home directory or a top-level
    /// directory (the current directory is fine for chmod/chown).
    fn system_target<'t>(&self, targets: &[&'t str]) -> Option<(&'t str, Broad)> {
        targets.iter().find_map(|t| {
            broad(t, self.home)
                .filter(|b| matches!(b, Broad::Root | Broad::Home | Broad::TopLevel))
                .map(|b| (*t, b))
        })
    }

    fn git(&mut self, args: &[String]) {
        let with_arg = [
            "-C",
            "-c",
            "--git-dir",
            "--work-tree",
            "--namespace",
            "--config-env",
        ];
        let mut i = 0;
        while let Some(a) = args.get(i) {
            if !a.starts_with('-') {
                break;
            }
            i += if with_arg.contains(&a.as_str()) { 2 } else { 1 };
        }
        let Some(sub) = args.get(i) else { return };
        let rest = args.get(i + 1..).unwrap_or_default();
        match sub.as_str() {
            "push" => {
                let force_flag = rest.iter().find(|a| {
                    matches!(
                        a.as_str(),
                        "--force" | "--force-with-lease" | "--force-if-includes"
                    ) || a.starts_with("--force-with-lease=")
                        || (short_cluster(a) && a.contains('f'))
                });
                let plus_refspec = positionals(
                    rest,
                    &["-o", "--push-option", "--repo", "--receive-pack", "--exec"],
                )
                .into_iter()
                .skip(1)
                .find(|r| r.starts_with('+'));
                if let Some(how) = force_flag.map(String::as_str).or(plus_refspec) {
                    self.review(
                        "builtin:git-force-push",
                        format!("`git push {how}` force-pushes, rewriting shared history"),
                    );
                }
            }
            "clean" => {
                let mut letters = String::new();
                for a in rest {
                    match a.as_str() {
                        "--force" => letters.push('f'),
                        "--dry-run" => letters.push('n'),
                        a if short_cluster(a) => letters.push_str(a.get(1..).unwrap_or_default()),
                        _ => {}
                    }
                }
                let has = |c: char| letters.contains(c);
                if has('f') && (has('x') || has('X')) && !has('n') {
                    self.block(
                        "builtin:git-clean-fdx",
                        "`git clean -fdx` deletes untracked and ignored files (local config, .env, data)".into(),
                    );
                }
            }
            "reset" if rest.iter().any(|a| a == "--hard") => self.review(
                "builtin:git-reset-hard",
                "`git reset --hard` discards uncommitted changes".into(),
            ),
            _ => {}
        }
    }

    fn kubectl(&mut self, name: &str, args: &[String]) {
        let with_arg = [
            "-n",
            "--namespace",
            "--context",
            "--cluster",
            "--kubeconfig",
            "-s",
            "--server",
            "--user",
            "--token",
            "-l",
            "--selector",
            "-f",
            "--filename",
            "-o",
            "--output",
            "--field-selector",
            "--grace-period",
            "--timeout",
            "--as",
            "--as-group",
        ];
        let pos = positionals(args, &with_arg);
        if pos.first() != Some(&"delete") {
            return;
        }
        let all = args
            .iter()
            .any(|a| matches!(a.as_str(), "--all" | "--all-namespaces" | "-A"));
        let namespace = pos.iter().skip(1).any(|r| {
            r.split(',').any(|k| {
                let kind = k.split('/').next().unwrap_or_default();
                matches!(kind, "ns" | "namespace" | "namespaces")
            })
        });
        if all || namespace {
            self.block(
                "builtin:kubectl-delete-broad",
                format!("`{name} delete` of every resource of a kind or of a whole namespace"),
            );
        } else {
            let what = pos.get(1..).unwrap_or_default().join(" ");
            self.review(
                "builtin:kubectl-delete",
                format!("`{name} delete {what}` deletes cluster resources"),
            );
        }
    }

    fn terraform(&mut self, name: &str, args: &[String]) {
        let pos = positionals(args, &[]);
        let destroy = pos.iter().any(|a| matches!(*a, "destroy" | "destroy-all"))
            || (pos.contains(&"apply") && args.iter().any(|a| a == "-destroy" || a == "--destroy"));
        if destroy {
            self.block(
                "builtin:terraform-destroy",
                format!("`{name} destroy` deletes the infrastructure it manages"),
            );
        }
    }

    fn aws(&mut self, args: &[String]) {
        let has = |flag: &str| args.iter().any(|a| a == flag);
        for w in args.windows(2) {
            match (w[0].as_str(), w[1].as_str()) {
                ("s3", "rm") if has("--recursive") => self.block(
                    "builtin:aws-s3-rm-recursive",
                    "`aws s3 rm --recursive` deletes every object under the prefix".into(),
                ),
                ("s3", "rb") if has("--force") => self.block(
                    "builtin:aws-s3-rb-force",
                    "`aws s3 rb --force` deletes the bucket and everything in it".into(),
                ),
                _ => {}
            }
        }
    }

    fn sql_client(&mut self, name: &str, args: &[String], stdin: &[String]) {
        let mut texts: Vec<&str> = stdin.iter().map(String::as_str).collect();
        let (short, long) = if name == "psql" {
            ('c', "--command")
        } else {
            ('e', "--execute")
        };
        if name == "sqlite3" {
            let with_arg = [
                "-separator",
                "-newline",
                "-nullvalue",
                "-init",
                "-vfs",
                "-mmap",
                "-maxsize",
                "-lookaside",
                "-pagecache",
                "-heap",
                "-escape",
            ];
            let mut i = 0;
            let mut db_seen = false;
            while let Some(a) = args.get(i) {
                let opt = a
                    .strip_prefix('-')
                    .map(|s| format!("-{}", s.trim_start_matches('-')));
                match opt.as_deref() {
                    Some("-cmd") => {
                        texts.extend(args.get(i + 1).map(String::as_str));
                        i += 1;
                    }
                    Some(o) if with_arg.contains(&o) => i += 1,
                    Some(_) => {}
                    None if !db_seen => db_seen = true,
                    None => texts.push(a),
                }
                i += 1;
            }
        } else {
            let mut iter = args.iter();
            while let Some(a) = iter.next() {
                if let Some(v) = a.strip_prefix(&format!("{long}=")) {
                    texts.push(v);
                } else if a == long || (short_cluster(a) && a.ends_with(short)) {
                    texts.extend(iter.next().map(String::as_str));
                } else if let Some(v) = a.strip_prefix(&format!("-{short}")) {
                    if !v.is_empty() && !a.starts_with("--") {
                        texts.push(v);
                    }
                }
            }
        }
        for t in texts {
            self.findings.extend(sql::check(t, Origin::Client));
        }
    }

    fn find(&mut self, args: &[String], depth: usize) {
        let mut i = 0;
        while let Some(a) = args.get(i) {
            i += 1;
            if matches!(a.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
                let start = i;
                while args.get(i).is_some_and(|a| a != ";" && a != "+") {
                    i += 1;
                }
                let sub = args.get(start..i).unwrap_or_default();
                if depth < MAX_NEST {
                    self.words(sub, &[], depth + 1);
                } else if !self.stopped {
                    self.unparsable(format!(
                        "the command nests `find -exec` more than {MAX_NEST} levels deep, too deeply nested to check (write it with less nesting)"
                    ));
                }
            }
        }
        if args.iter().any(|a| a == "-delete") {
            let roots: Vec<&str> = args
                .iter()
                .take_while(|a| !a.starts_with('-') && *a != "(" && *a != "!")
                .map(String::as_str)
                .collect();
            if let Some((t, b)) = self.system_target(&roots) {
                self.review(
                    "builtin:find-delete-broad",
                    format!("`find {t} … -delete` deletes files across {}", b.describe()),
                );
            }
        }
    }
}

/// Removes wrappers (`sudo`, `env`, `nohup`, `xargs`, ...), assignments and
/// reserved words; returns the argv that runs and any command-line strings
/// it runs (`bash -c`, `eval`, `su -c`, `ssh host cmd`, `watch`).
fn unwrap(words: &[String]) -> (Vec<String>, Vec<String>) {
    let mut scripts = Vec::new();
    let mut i = 0;
    loop {
        while words
            .get(i)
            .is_some_and(|w| KEYWORDS.contains(&w.as_str()) || is_assignment(w))
        {
            i += 1;
        }
        let rest = words.get(i..).unwrap_or_default();
        let Some(first) = rest.first() else {
            return (Vec::new(), scripts);
        };
        let args = rest.get(1..).unwrap_or_default();
        let skip = |with_arg: &[&str]| i + 1 + skip_options(args, with_arg);
        match basename(first) {
            "sudo" | "doas" => {
                i = skip(&[
                    "-u",
                    "-g",
                    "-h",
                    "-p",
                    "-C",
                    "-D",
                    "-r",
                    "-t",
                    "-T",
                    "-U",
                    "-R",
                    "--user",
                    "--group",
                    "--host",
                    "--prompt",
                    "--chdir",
                    "--role",
                    "--type",
                    "--close-from",
                    "--other-user",
                ])
            }
            "env" => {
                let mut j = 0;
                while let Some(a) = args.get(j) {
                    if a == "-S" || a == "--split-string" {
                        scripts.push(args.get(j + 1..).unwrap_or_default().join(" "));
                        return (rest.to_vec(), scripts);
                    } else if let Some(s) =
                        a.strip_prefix("--split-string=").or(a.strip_prefix("-S"))
                    {
                        let tail = args.get(j + 1..).unwrap_or_default().join(" ");
                        scripts.push(format!("{s} {tail}"));
                        return (rest.to_vec(), scripts);
                    } else if a == "--" {
                        j += 1;
                        break;
                    } else if matches!(a.as_str(), "-u" | "--unset" | "-C" | "--chdir" | "-P") {
                        j += 2;
                    } else if a.starts_with('-') || is_assignment(a) {
                        j += 1;
                    } else {
                        break;
                    }
                }
                i += 1 + j;
            }
            "nohup" | "builtin" | "unbuffer" | "chronic" | "command" => i = skip(&[]),
            "exec" => i = skip(&["-a"]),
            "nice" => i = skip(&["-n", "--adjustment"]),
            "ionice" => i = skip(&["-c", "-n", "--class", "--classdata"]),
            "stdbuf" => i = skip(&["-i", "-o", "-e"]),
            "time" => i = skip(&["-f", "--format", "-o", "--output"]),
            "timeout" => i = skip(&["-s", "--signal", "-k", "--kill-after"]) + 1,
            "xargs" => {
                i = skip(&[
                    "-I",
                    "-L",
                    "-n",
                    "-P",
                    "-s",
                    "-d",
                    "-a",
                    "-E",
                    "--max-args",
                    "--max-procs",
                    "--delimiter",
                    "--arg-file",
                    "--max-lines",
                    "--max-chars",
                ])
            }
            "watch" => {
                let j = skip(&["-n", "--interval", "-d", "--differences"]);
                scripts.push(words.get(j..).unwrap_or_default().join(" "));
                return (rest.to_vec(), scripts);
            }
            "eval" => {
                scripts.push(args.join(" "));
                return (rest.to_vec(), scripts);
            }
            "su" => {
                let mut it = args.iter();
                while let Some(a) = it.next() {
                    if a == "-c" || a == "--command" {
                        scripts.extend(it.next().cloned());
                    } else if let Some(s) = a.strip_prefix("--command=") {
                        scripts.push(s.to_string());
                    }
                }
                return (rest.to_vec(), scripts);
            }
            "ssh" => {
                let j = skip_options(
                    args,
                    &[
                        "-b", "-B", "-c", "-D", "-E", "-e", "-F", "-I", "-i", "-J", "-L", "-l",
                        "-m", "-O", "-o", "-p", "-Q", "-R", "-S", "-W", "-w",
                    ],
                );
                let remote = args.get(j + 1..).unwrap_or_default();
                if !remote.is_empty() {
                    scripts.push(remote.join(" "));
                }
                return (rest.to_vec(), scripts);
            }
            n if SHELLS.contains(&n) => {
                let mut j = 0;
                while let Some(a) = args.get(j) {
                    if a == "--" || !(a.starts_with('-') || a.starts_with('+')) {
                        break;
                    }
                    if short_cluster(a) && a.contains('c') {
                        scripts.extend(args.get(j + 1).cloned());
                        break;
                    }
                    j += if matches!(a.as_str(), "-o" | "+o" | "-O" | "+O") {
                        2
                    } else {
                        1
                    };
                }
                return (rest.to_vec(), scripts);
            }
            _ => return (rest.to_vec(), scripts),
        }
    }
}

/// How many leading option words `args` has (`--` included).
fn skip_options(args: &[String], with_arg: &[&str]) -> usize {
    let mut j = 0;
    while let Some(a) = args.get(j) {
        if a == "--" {
            return j + 1;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        j += if with_arg.contains(&a.as_str()) { 2 } else { 1 };
    }
    j
}

/// Non-option arguments, skipping the values of options in `with_arg`.
fn positionals<'s>(args: &'s [String], with_arg: &[&str]) -> Vec<&'s str> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if with_arg.contains(&a.as_str()) {
            it.next();
        } else if !a.starts_with('-') {
            out.push(a.as_str());
        }
    }
    out
}

/// `-rf`, `-x`: a short option or a cluster of them.
fn short_cluster(a: &str) -> bool {
    a.len() > 1 && a.starts_with('-') && !a.starts_with("--")
}

fn is_assignment(w: &str) -> bool {
    let Some((name, _)) = w.split_once('=') else {
        return false;
    };
    let name = name.strip_suffix('+').unwrap_or(name);
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn basename(w: &str) -> &str {
    w.rsplit('/').next().unwrap_or(w)
}

fn quoted_list(items: &[&str]) -> String {
    let mut shown: Vec<String> = items.iter().take(3).map(|t| format!("`{t}`")).collect();
    if items.len() > 3 {
        shown.push(format!("and {} more", items.len() - 3));
    }
    if shown.is_empty() {
        "the targets".to_string()
    } else {
        shown.join(", ")
    }
}

/// A script read from stdin: `sh`, `bash -s`, `sudo bash -`, not `bash x.sh`
/// or `bash -c …`.
fn reads_script_from_stdin(argv: &[String]) -> bool {
    let Some(first) = argv.first() else {
        return false;
    };
    if !SHELLS.contains(&basename(first)) {
        return false;
    }
    let args = argv.get(1..).unwrap_or_default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-" || a == "--" || a == "-s" {
            return true;
        }
        if short_cluster(a) && a.contains('c') {
            return false;
        }
        if matches!(a.as_str(), "-o" | "+o" | "-O" | "+O") {
            it.next();
        } else if !a.starts_with('-') && !a.starts_with('+') {
            return false;
        }
    }
    true
}

/// A device file other than the harmless ones (`/dev/null`, ...).
fn is_device(target: &str) -> bool {
    let Some(dev) = target.strip_prefix("/dev/") else {
        return false;
    };
    let harmless = [
        "null", "zero", "full", "random", "urandom", "stdin", "stdout", "stderr", "tty",
    ];
    let dir = dev.split('/').next().unwrap_or_default();
    !dev.is_empty()
        && !harmless.contains(&dev)
        && !matches!(dir, "fd" | "pts" | "shm" | "tcp" | "udp")
}

/// `777`, `0666`, `a+rwx`, `o+w`: anyone may write.
fn world_writable(mode: &str) -> bool {
    if !mode.is_empty() && mode.chars().all(|c| c.is_ascii_digit()) {
        return mode
            .chars()
            .last()
            .and_then(|c| c.to_digit(8))
            .is_some_and(|d| d & 2 != 0);
    }
    mode.split(',').any(|clause| {
        let who: String = clause.chars().take_while(|c| "ugoa".contains(*c)).collect();
        let rest = clause.get(who.len()..).unwrap_or_default();
        (who.contains('o') || who.contains('a'))
            && (rest.starts_with('+') || rest.starts_with('='))
            && rest.contains('w')
    })
}

/// A recursive operation on one of these reaches far beyond a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broad {
    Root,
    Home,
    TopLevel,
    Cwd,
    Parent,
}

impl Broad {
    fn describe(self) -> &'static str {
        match self {
            Broad::Root => "the root directory",
            Broad::Home => "the home directory",
            Broad::TopLevel => "a top-level system directory",
            Broad::Cwd => "the whole current directory",
            Broad::Parent => "the parent directory",
        }
    }
}

/// Whether `target` (as an `rm`/`chmod` argument) is the root, the home
/// directory, a directory of depth ≤ 1, or the current or parent
/// directory; trailing `/*` counts as the directory itself.
fn broad(target: &str, home: Option<&str>) -> Option<Broad> {
    let t = target.trim().replace("${HOME}", "$HOME");
    if t.is_empty() {
        return None;
    }
    let expanded = expand_home(&t, home);
    let (home_relative, rest) = if expanded == "~" {
        (true, "")
    } else if let Some(r) = expanded.strip_prefix("~/") {
        (true, r)
    } else if expanded.starts_with('~') {
        // `~user`: another user's home.
        let mut parts = expanded.splitn(2, '/');
        let _user = parts.next();
        let r = parts.next().unwrap_or_default();
        if components(r).0.is_empty() {
            return Some(Broad::Home);
        }
        return None;
    } else {
        (false, expanded.as_str())
    };
    let (mut stack, up) = components(rest);
    while stack.last().is_some_and(|c| is_pure_glob(c)) {
        stack.pop();
    }
    if home_relative {
        return match (up, stack.is_empty()) {
            (0, true) => Some(Broad::Home),
            (u, _) if u > 0 => Some(Broad::TopLevel),
            _ => None,
        };
    }
    if rest.starts_with('/') {
        let home_stack = home.map(|h| components(h).0);
        if stack.is_empty() {
            Some(Broad::Root)
        } else if home_stack.as_ref() == Some(&stack) {
            Some(Broad::Home)
        } else if stack.len() == 1 {
            Some(Broad::TopLevel)
        } else {
            None
        }
    } else {
        match (up, stack.is_empty()) {
            (0, true) => Some(Broad::Cwd),
            (u, true) if u > 0 => Some(Broad::Parent),
            _ => None,
        }
    }
}

/// Path components with `.` removed and `..` applied; the second value
/// counts `..` that climbed above the start.
fn components(path: &str) -> (Vec<&str>, usize) {
    let mut stack = Vec::new();
    let mut up = 0;
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if stack.pop().is_none() {
                    up += 1;
                }
            }
            c => stack.push(c),
        }
    }
    (stack, up)
}

/// `*`, `.*`, `*.*`: a glob naming everything in its directory.
fn is_pure_glob(c: &str) -> bool {
    c.contains('*') && c.chars().all(|ch| matches!(ch, '*' | '?' | '.'))
}

/// `~`, `~/x`, `$HOME`, `$HOME/x` with the home directory put in; left
/// as `~…` when no home is known.
pub(super) fn expand_home(p: &str, home: Option<&str>) -> String {
    let p = p.trim();
    let rest = if matches!(p, "~" | "$HOME" | "${HOME}") {
        Some("")
    } else {
        p.strip_prefix("~/")
            .or_else(|| p.strip_prefix("$HOME/"))
            .or_else(|| p.strip_prefix("${HOME}/"))
    };
    match (rest, home) {
        (Some(r), Some(h)) => format!("{}/{r}", h.trim_end_matches('/')),
        (Some(r), None) => format!("~/{r}"),
        (None, _) => p.to_string(),
    }
}

/// Lexically normalised: `.` and `..` resolved, duplicate and trailing
/// slashes removed; keeps a leading `/` or `~`.
pub(super) fn normalize(p: &str) -> String {
    let (prefix, rest) = if let Some(r) = p.strip_prefix('/') {
        ("/", r)
    } else if p == "~" || p.starts_with("~/") {
        ("~/", p.get(1..).unwrap_or_default())
    } else {
        ("", p)
    };
    let (stack, up) = components(rest);
    let mut parts: Vec<&str> = Vec::new();
    if prefix.is_empty() {
        parts.extend(std::iter::repeat_n("..", up));
    }
    parts.extend(stack);
    let joined = parts.join("/");
    match prefix {
        "/" => format!("/{joined}"),
        "~/" if joined.is_empty() => "~".to_string(),
        _ => format!("{prefix}{joined}"),
    }
}

/// Whether normalised `path` is `dir` or below it.
fn inside(path: &str, dir: &str) -> bool {
    if dir == "/" {
        return path.starts_with('/');
    }
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn unwraps_wrappers() {
        let cases: &[(&[&str], &[&str], &[&str])] = &[
            (
                &["sudo", "-u", "root", "FOO=1", "rm", "-rf", "/"],
                &["rm", "-rf", "/"],
                &[],
            ),
            (
                &["env", "-i", "A=1", "nohup", "nice", "-n", "5", "rm", "x"],
                &["rm", "x"],
                &[],
            ),
            (
                &["xargs", "-0", "-n", "1", "rm", "-rf"],
                &["rm", "-rf"],
                &[],
            ),
            (
                &["timeout", "-s", "KILL", "10", "/bin/rm", "-r", "a"],
                &["/bin/rm", "-r", "a"],
                &[],
            ),
            (
                &["command", "exec", "-a", "x", "time", "-p", "ls"],
                &["ls"],
                &[],
            ),
            (
                &["bash", "-lc", "rm -rf ~"],
                &["bash", "-lc", "rm -rf ~"],
                &["rm -rf ~"],
            ),
            (
                &["sudo", "sh", "-e", "-c", "x"],
                &["sh", "-e", "-c", "x"],
                &["x"],
            ),
            (
                &["eval", "rm", "-rf", "/"],
                &["eval", "rm", "-rf", "/"],
                &["rm -rf /"],
            ),
            (
                &["env", "-S", "rm -rf", "/"],
                &["env", "-S", "rm -rf", "/"],
                &["rm -rf /"],
            ),
            (
                &["ssh", "-p", "22", "host", "rm", "-rf", "/"],
                &["ssh", "-p", "22", "host", "rm", "-rf", "/"],
                &["rm -rf /"],
            ),
            (&["{", "!", "ls"], &["ls"], &[]),
            (&["A=1"], &[], &[]),
        ];
        for (words, argv, scripts) in cases {
            let (a, sc) = unwrap(&s(words));
            assert_eq!(a, s(argv), "{words:?}");
            assert_eq!(sc, s(scripts), "{words:?}");
        }
    }

    #[test]
    fn broad_targets() {
        let home = Some("/home/me");
        let cases: &[(&str, Option<Broad>)] = &[
            ("/", Some(Broad::Root)),
            ("/*", Some(Broad::Root)),
            ("//", Some(Broad::Root)),
            ("/tmp/..", Some(Broad::Root)),
            ("~", Some(Broad::Home)),
            ("~/", Some(Broad::Home)),
            ("~/*", Some(Broad::Home)),
            ("$HOME", Some(Broad::Home)),
            ("${HOME}/", Some(Broad::Home)),
            ("/home/me/", Some(Broad::Home)),
            ("~/..", Some(Broad::TopLevel)),
            ("~bob", Some(Broad::Home)),
            (".", Some(Broad::Cwd)),
            ("./", Some(Broad::Cwd)),
            ("*", Some(Broad::Cwd)),
            ("./*", Some(Broad::Cwd)),
            (".*", Some(Broad::Cwd)),
            ("..", Some(Broad::Parent)),
            ("../*", Some(Broad::Parent)),
            ("/home", Some(Broad::TopLevel)),
            ("/usr/", Some(Broad::TopLevel)),
            ("/etc/*", Some(Broad::TopLevel)),
            ("/var", Some(Broad::TopLevel)),
            ("/opt/x/..", Some(Broad::TopLevel)),
            ("/usr/lib", None),
            ("~/projects/x", None),
            ("build", None),
            ("./build/*", None),
            ("../sibling", None),
            ("$DIR/", None),
            ("", None),
        ];
        for (t, want) in cases {
            assert_eq!(broad(t, home), *want, "{t}");
        }
        assert_eq!(broad("~/..", None), Some(Broad::TopLevel));
        assert_eq!(broad("~/x", None), None);
    }

    #[test]
    fn paths() {
        assert_eq!(normalize("/a//b/./c/../"), "/a/b");
        assert_eq!(normalize("~/.ssh/"), "~/.ssh");
        assert_eq!(normalize("../x/./y"), "../x/y");
        assert_eq!(expand_home("~/.ssh", Some("/h/")), "/h/.ssh");
        assert!(inside("/etc/passwd", "/etc"));
        assert!(!inside("/etcetera", "/etc"));
        assert!(inside("/etc", "/etc"));
        assert!(world_writable("777") && world_writable("0666") && world_writable("a+rwx"));
        assert!(!world_writable("755") && !world_writable("u+x") && !world_writable("go-w"));
        assert!(is_device("/dev/sda") && is_device("/dev/nvme0n1") && !is_device("/dev/null"));
    }
}
