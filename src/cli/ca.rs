//! `hoopctl ca init|show|path|rotate`.

use clap::Subcommand;

use super::output::emit;
use super::Context;
use crate::ca::{Ca, Info};

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create the local CA (done automatically by the first `connect`).
    Init,
    /// Print the CA's subject, validity, SHA-256 fingerprint and name constraints.
    Show,
    /// Print the path of the CA certificate (PEM), e.g. for NODE_EXTRA_CA_CERTS.
    Path,
    /// Replace the CA with a new one (new key); restart running proxies afterwards.
    Rotate,
}

fn render(info: &Info) -> String {
    format!(
        "Subject:      {}\nValid:        {} .. {}\nSHA-256:      {}\nPermitted:    DNS {}; IP {}\nCertificate:  {}\nKey:          {} (0600)\n",
        info.subject,
        info.not_before,
        info.not_after,
        info.sha256_fingerprint,
        info.permitted_dns.join(", "),
        info.permitted_ip.join(", "),
        info.cert_path.display(),
        info.key_path.display(),
    )
}

pub fn run(ctx: &mut Context, cmd: CaCommand) -> anyhow::Result<()> {
    let dir = ctx.dirs.ca_dir();
    let hosts = || -> anyhow::Result<Vec<String>> {
        Ok(super::connect::load_policy(ctx, None)?
            .egress
            .intercepted()
            .to_vec())
    };
    match cmd {
        CaCommand::Init => {
            let info = Ca::create(&dir, &hosts()?, false)?.info()?;
            emit(ctx.output, &info, |i| {
                format!("Created a new local CA.\n{}", render(i))
            });
        }
        CaCommand::Rotate => {
            let info = Ca::create(&dir, &hosts()?, true)?.info()?;
            emit(ctx.output, &info, |i| {
                format!("Replaced the local CA. Restart running proxies and agents so they use the new one.\n{}", render(i))
            });
        }
        CaCommand::Show => {
            let info = Ca::load(&dir)?.info()?;
            emit(ctx.output, &info, render);
        }
        CaCommand::Path => {
            let ca = Ca::load(&dir)?;
            let value = serde_json::json!({ "cert_path": ca.cert_path() });
            emit(ctx.output, &value, |_| ca.cert_path().display().to_string());
        }
    }
    Ok(())
}
