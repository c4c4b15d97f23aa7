//! `hoopctl pending`, `approve ID`, `deny ID [--reason R]`: approvals
//! without the TUI, across every running proxy of this user.

use anyhow::bail;
use serde::Serialize;

use super::output::emit;
use super::Context;
use crate::approvals::Approval;
use crate::control::client::connect_all;
use crate::control::protocol::Command;

#[derive(Serialize)]
struct Pending {
    pending: Vec<Approval>,
}

pub async fn pending(ctx: &Context) -> anyhow::Result<()> {
    let mut all = Vec::new();
    for mut conn in connect_all(&ctx.dirs.runtime).await? {
        let reply = conn.call(&Command::Pending).await?;
        all.extend(reply.pending.unwrap_or_default());
    }
    all.sort_by_key(|a| a.requested_at);
    let now = chrono::Utc::now().timestamp();
    emit(ctx.output, &Pending { pending: all }, |p| {
        if p.pending.is_empty() {
            return "No tool calls are waiting for approval.".into();
        }
        let mut s = String::new();
        for a in &p.pending {
            s.push_str(&format!(
                "{}  {}  {}\n    rule {}: {} (decided as denied in {}s unless approved)\n",
                a.id,
                a.tool,
                a.summary,
                a.rule,
                a.reason,
                (a.expires_at - now).max(0)
            ));
        }
        s.push_str("Approve with `hoopctl approve ID`, deny with `hoopctl deny ID --reason R`.");
        s
    });
    Ok(())
}

#[derive(Serialize)]
struct Decided<'a> {
    id: &'a str,
    approved: bool,
}

/// Sends the decision to every proxy; the one holding `id` takes it.
pub async fn decide(
    ctx: &Context,
    id: &str,
    approve: bool,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let cmd = if approve {
        Command::Approve { id: id.into() }
    } else {
        Command::Deny {
            id: id.into(),
            reason,
        }
    };
    let mut errors = Vec::new();
    for mut conn in connect_all(&ctx.dirs.runtime).await? {
        let reply = conn.call(&cmd).await?;
        if reply.ok {
            emit(
                ctx.output,
                &Decided {
                    id,
                    approved: approve,
                },
                |d| {
                    format!(
                        "{} {}.",
                        if d.approved { "Approved" } else { "Denied" },
                        d.id
                    )
                },
            );
            return Ok(());
        }
        errors.extend(reply.error);
    }
    bail!(
        "{}",
        errors
            .first()
            .cloned()
            .unwrap_or_else(|| format!("no pending approval {id}"))
    )
}
