//! Opening the authorization URL: `--browser-cmd CMD` (the URL is its last
//! argument), else `$BROWSER`, else the platform opener.

use std::process::{Command, Stdio};

/// How the URL is opened.
#[derive(Debug, Clone)]
pub enum Browser {
    /// Print the URL only (`--no-browser`).
    None,
    /// A command line run by `sh -c`, with the URL appended as one argument.
    Command(String),
    /// xdg-open / open / start.
    System,
}

impl Browser {
    pub fn choose(no_browser: bool, cmd: Option<String>) -> Self {
        if no_browser {
            return Self::None;
        }
        match cmd.or_else(|| {
            std::env::var("BROWSER")
                .ok()
                .filter(|b| !b.trim().is_empty())
        }) {
            Some(c) => Self::Command(c),
            None => Self::System,
        }
    }

    /// Starts the browser without waiting for it. `Ok(false)` when nothing was started.
    pub fn open(&self, url: &str) -> std::io::Result<bool> {
        let mut cmd = match self {
            Self::None => return Ok(false),
            Self::Command(c) => {
                let mut cmd = Command::new("sh");
                cmd.arg("-c")
                    .arg(format!("{c} \"$1\""))
                    .arg("hoopctl-browser")
                    .arg(url);
                cmd
            }
            Self::System => {
                let mut cmd = Command::new(if cfg!(target_os = "macos") {
                    "open"
                } else {
                    "xdg-open"
                });
                cmd.arg(url);
                cmd
            }
        };
        // The browser's own chatter must not garble the terminal.
        let quiet = matches!(self, Self::System);
        cmd.stdin(Stdio::null());
        if quiet {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        let mut child = cmd.spawn()?;
        // Reap it in the background so it leaves no zombie.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        Ok(true)
    }
}
