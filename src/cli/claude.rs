//! `hoopctl claude configure|unconfigure`: the settings.json path, for
//! running plain `claude` beside a foreground `hoopctl connect`.

use clap::Subcommand;

use super::output::emit;
use super::Context;
use crate::agent::claude_code::{self, Change, ProxyEnv};
use crate::ca::Ca;

#[derive(Debug, Subcommand)]
pub enum ClaudeCommand {
    /// Set HTTPS_PROXY, NODE_EXTRA_CA_CERTS and NO_PROXY in the `env` block of
    /// ~/.claude/settings.json (other keys kept; a backup is written).
    Configure {
        /// Address of the stable proxy (default: the profile's, 127.0.0.1:7733).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Remove hoopctl's keys again (restoring values they replaced).
    Unconfigure,
}

fn render(c: &Change, verb: &str) -> String {
    if !c.changed {
        return format!("{} already {verb}; nothing to do.", c.settings.display());
    }
    let mut s = format!("{verb} {}: {}", c.settings.display(), c.keys.join(", "));
    if let Some(b) = &c.backup {
        s.push_str(&format!("\nbackup: {}", b.display()));
    }
    s
}

pub fn run(ctx: &mut Context, cmd: ClaudeCommand) -> anyhow::Result<()> {
    let settings = claude_code::settings_path()?;
    let state = ctx
        .dirs
        .data
        .join(format!("claude-settings-{}.json", ctx.profile));
    let listen = match &cmd {
        ClaudeCommand::Configure { listen: Some(l) } => l.clone(),
        _ => ctx.config.profile(&ctx.profile).listen_addr(),
    };
    let listen = crate::proxy::parse_listen(&listen)?;
    let secret = ctx.config.stable_secret(&ctx.profile, &ctx.config_path)?;
    let hosts = super::connect::load_policy(ctx, None)?
        .egress
        .intercepted()
        .to_vec();
    let (ca, _) = Ca::load_or_create(&ctx.dirs.ca_dir(), &hosts)?;
    let env = ProxyEnv {
        listen,
        secret,
        ca_cert: ca.cert_path().to_path_buf(),
        placeholder_key: false,
    };
    match cmd {
        ClaudeCommand::Configure { .. } => {
            let change = claude_code::configure(&settings, &state, &env)?;
            emit(ctx.output, &change, |c| {
                let mut s = render(c, "configured");
                s.push_str(&format!(
                    "\nClaude Code now uses the proxy at {listen}; keep `hoopctl connect claude-code` running there."
                ));
                s
            });
        }
        ClaudeCommand::Unconfigure => {
            let change = claude_code::unconfigure(&settings, &state, &env)?;
            emit(ctx.output, &change, |c| render(c, "unconfigured"));
        }
    }
    Ok(())
}
