//! `--print-env` lines, quoted for the user's shell.

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

impl Shell {
    /// The shell named by `$SHELL`, else bash.
    pub fn detect() -> Self {
        let shell = std::env::var("SHELL").unwrap_or_default();
        match shell.rsplit('/').next().unwrap_or("") {
            "zsh" => Self::Zsh,
            "fish" => Self::Fish,
            "pwsh" | "powershell" => Self::Powershell,
            _ => Self::Bash,
        }
    }

    /// One line that sets `name` to `value` in this shell.
    pub fn export(self, name: &str, value: &str) -> String {
        match self {
            Self::Bash | Self::Zsh => format!("export {name}={}", posix_quote(value)),
            Self::Fish => format!("set -gx {name} {}", fish_quote(value)),
            Self::Powershell => format!("$env:{name} = '{}'", value.replace('\'', "''")),
        }
    }
}

fn posix_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn fish_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        let v = "http://u:p@127.0.0.1:1/it's $HOME";
        assert_eq!(
            Shell::Bash.export("X", v),
            r"export X='http://u:p@127.0.0.1:1/it'\''s $HOME'"
        );
        assert_eq!(
            Shell::Fish.export("X", v),
            r"set -gx X 'http://u:p@127.0.0.1:1/it\'s $HOME'"
        );
        assert_eq!(
            Shell::Powershell.export("X", v),
            "$env:X = 'http://u:p@127.0.0.1:1/it''s $HOME'"
        );
    }

    #[test]
    fn bash_quoting_round_trips_through_a_real_shell() {
        let v = "a'b\"c $d `e` \\f";
        let line = Shell::Bash.export("HOOP_T", v);
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("{line}; printf %s \"$HOOP_T\""))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), v);
    }
}
