//! `hoopctl login`, `logout`, `status` and `token`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use clap::Args;
use serde::Serialize;

use super::output::{emit, Format};
use super::progress::Spinner;
use super::Context;
use crate::auth::browser::Browser;
use crate::auth::loopback::Listener;
use crate::auth::oidc::Provider;
use crate::auth::session::{self, blocking};
use crate::auth::store::{Kind, Store, Tokens};

// `hoopctl login --help`. Not a doc comment, which clap would also use:
// rustdoc would run its indented examples as Rust doctests.
const LOGIN_HELP: &str = r#"Log in with the organisation's OpenID provider (browser, or --device).

The browser opens the provider's login page; hoopctl listens on a
loopback port for the answer (authorization code with PKCE). Tokens go to
the OS keyring (or a 0600 file with --token-store file).

    hoopctl login --gateway https://gateway.example.com
    hoopctl login --issuer https://id.example.com --client-id hoopctl
    hoopctl login --device          # on SSH / headless machines"#;

/// Log in with the organisation's OpenID provider (browser, or --device).
#[derive(Debug, Args)]
#[command(verbatim_doc_comment, long_about = LOGIN_HELP)]
pub struct LoginArgs {
    /// The organisation's gateway; its /api/publicserverinfo names the provider.
    #[arg(long, value_name = "URL")]
    pub gateway: Option<String>,
    /// Extra CA certificates (PEM) to trust for the gateway; remembered in the profile.
    #[arg(long, value_name = "FILE")]
    pub gateway_ca: Option<PathBuf>,
    /// OpenID provider (issuer URL).
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// OAuth client id registered for hoopctl (a public client, no secret).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Extra scope to request (repeatable); openid, email, profile and
    /// offline_access (when offered) are always requested.
    #[arg(long = "scope", value_name = "S")]
    pub scopes: Vec<String>,
    /// Print the URL instead of opening a browser (still listens for the answer).
    #[arg(long)]
    pub no_browser: bool,
    /// Command that opens the URL (given as its last argument); default $BROWSER or the system opener.
    #[arg(long, value_name = "CMD")]
    pub browser_cmd: Option<String>,
    /// Use the device authorization grant: enter a code on another device.
    #[arg(long, conflicts_with_all = ["no_browser"])]
    pub device: bool,
    /// Where tokens are kept (default: the OS keyring).
    #[arg(long, value_enum, value_name = "STORE")]
    pub token_store: Option<Kind>,
    /// Seconds to wait for the login to complete.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u64,
}

#[derive(Serialize)]
struct LoggedIn<'a> {
    profile: &'a str,
    subject: &'a str,
    email: Option<&'a str>,
    name: Option<&'a str>,
    issuer: &'a str,
    expires_at: Option<String>,
    refresh_token: bool,
    token_store: Kind,
    gateway: Option<&'a str>,
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| d.to_rfc3339())
        .unwrap_or_else(|| unix.to_string())
}

fn store_for(ctx: &Context, flag: Option<Kind>) -> Store {
    let kind = flag
        .or(ctx.config.profile(&ctx.profile).token_store)
        .unwrap_or_default();
    Store::new(kind, &ctx.profile, &ctx.dirs)
}

async fn cancelled() {
    let _ = tokio::signal::ctrl_c().await;
}

pub async fn login(ctx: &mut Context, args: LoginArgs) -> anyhow::Result<()> {
    let profile = ctx.config.profile(&ctx.profile);
    let gateway = args.gateway.clone().or(profile.gateway.clone());
    let gateway_ca = args
        .gateway_ca
        .as_ref()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
        .or(profile.gateway_ca.clone());
    let (mut issuer, mut client_id) = (args.issuer.clone(), args.client_id.clone());
    if let (Some(gw), true) = (&args.gateway, issuer.is_none() || client_id.is_none()) {
        let api = crate::gateway::api::Api::open(gw, gateway_ca.as_slice())?;
        let info = api.public_server_info().await?;
        issuer = issuer.or(info.oidc_issuer);
        client_id = client_id.or(info.oidc_client_id);
    }
    let issuer = issuer.or(profile.issuer.clone()).ok_or_else(|| {
        anyhow!("no OpenID provider to log in with: pass --issuer URL and --client-id ID, or --gateway URL")
    })?;
    let client_id = client_id.or(profile.client_id.clone()).ok_or_else(|| {
        anyhow!(
            "no OAuth client id: pass --client-id ID (or --gateway URL when the gateway names it)"
        )
    })?;

    let store = store_for(ctx, args.token_store);
    let kind = store.kind();
    let store = std::sync::Arc::new(store);
    let s = store.clone();
    // Before any browser opens: can the tokens be kept?
    blocking(move || s.check()).await??;

    let provider = Provider::discover(&issuer, &client_id).await?;
    let limit = Duration::from_secs(args.timeout.max(1));
    let tokens = if args.device {
        device(ctx.output, &provider, &args, limit).await?
    } else {
        browser(&provider, &args, limit).await?
    };
    let (s, t) = (store.clone(), tokens.clone());
    blocking(move || s.save(&t)).await??;

    let entry = ctx.config.profiles.entry(ctx.profile.clone()).or_default();
    entry.issuer = Some(issuer);
    entry.client_id = Some(client_id);
    entry.gateway = gateway.clone();
    entry.gateway_ca = gateway_ca;
    entry.token_store = Some(kind);
    ctx.config.save(&ctx.config_path)?;

    let out = LoggedIn {
        profile: &ctx.profile,
        subject: &tokens.subject,
        email: tokens.email.as_deref(),
        name: tokens.name.as_deref(),
        issuer: &tokens.issuer,
        expires_at: tokens.expires_at.map(rfc3339),
        refresh_token: tokens.refresh_token.is_some(),
        token_store: kind,
        gateway: gateway.as_deref(),
    };
    emit(ctx.output, &out, |o| {
        let who = match (o.name, o.email) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (Some(n), None) => n.to_string(),
            (None, Some(e)) => e.to_string(),
            (None, None) => o.subject.to_string(),
        };
        format!(
            "Logged in as {who} at {} (profile {}); tokens in the {}.",
            o.issuer, o.profile, o.token_store
        )
    });
    Ok(())
}

async fn browser(provider: &Provider, args: &LoginArgs, limit: Duration) -> anyhow::Result<Tokens> {
    let listener = Listener::bind()
        .await
        .context("could not listen on 127.0.0.1 for the login callback")?;
    let pending = provider.authorize(&listener.redirect_uri(), &args.scopes)?;
    let url = pending.url.to_string();
    let opener = Browser::choose(args.no_browser, args.browser_cmd.clone());
    let opened = match opener.open(&url) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("warning: could not start the browser ({e})");
            false
        }
    };
    if opened {
        eprintln!(
            "Opened the browser to log in at {}. If it did not open, visit:\n  {url}",
            provider.issuer()
        );
    } else {
        eprintln!(
            "Open this URL in a browser to log in at {}:\n  {url}",
            provider.issuer()
        );
    }
    let state = pending.state.secret().clone();
    let spinner = Spinner::start("Waiting for the login in the browser");
    let callback = tokio::select! {
        r = tokio::time::timeout(limit, listener.wait(&state)) => r,
        _ = cancelled() => { drop(spinner); bail!("login cancelled; nothing was stored") }
    };
    drop(spinner);
    let callback = callback.map_err(|_| {
        anyhow!(
            "no login within {}s; run `hoopctl login` again (--timeout SECS waits longer)",
            limit.as_secs()
        )
    })??;
    provider.check_iss(callback.iss.as_deref())?;
    Ok(provider.exchange(pending, &callback.code).await?)
}

async fn device(
    format: Format,
    provider: &Provider,
    args: &LoginArgs,
    limit: Duration,
) -> anyhow::Result<Tokens> {
    let start = provider.device_start(&args.scopes).await?;
    match format {
        Format::Json => eprintln!(
            "{}",
            serde_json::json!({
                "event": "device_code",
                "verification_uri": start.verification_uri,
                "verification_uri_complete": start.verification_uri_complete,
                "user_code": start.user_code,
                "expires_in": start.expires_in.as_secs(),
            })
        ),
        Format::Text => eprintln!(
            "To log in, open {} on any device and enter the code {}\n(or open {}); the code expires in {}.",
            start.verification_uri,
            start.user_code,
            start.verification_uri_complete.as_deref().unwrap_or(&start.verification_uri),
            match start.expires_in.as_secs() {
                s if s < 120 => format!("{s} seconds"),
                s => format!("{} minutes", s / 60),
            }
        ),
    }
    if let Some(cmd) = &args.browser_cmd {
        let url = start
            .verification_uri_complete
            .clone()
            .unwrap_or_else(|| start.verification_uri.clone());
        let _ = Browser::Command(cmd.clone()).open(&url);
    }
    let spinner = Spinner::start("Waiting for the login on the other device");
    let result = tokio::select! {
        r = tokio::time::timeout(limit, provider.device_finish(start)) => r,
        _ = cancelled() => { drop(spinner); bail!("login cancelled; nothing was stored") }
    };
    drop(spinner);
    Ok(result.map_err(|_| {
        anyhow!(
            "no login within {}s; run `hoopctl login --device` again",
            limit.as_secs()
        )
    })??)
}

#[derive(Serialize)]
struct Proxy {
    profile: String,
    pid: i32,
    listen: String,
}

#[derive(Serialize)]
struct CaStatus {
    path: PathBuf,
    sha256_fingerprint: String,
    not_after: String,
}

/// The local record, for `status`.
#[derive(Serialize)]
struct RecordStatus {
    path: PathBuf,
    /// `None` before anything was recorded, or when it cannot be read.
    sessions: Option<i64>,
    events: Option<i64>,
    last_event_at: Option<String>,
    error: Option<String>,
}

fn record_status(ctx: &Context) -> RecordStatus {
    let path = ctx.dirs.audit_db();
    let mut st = RecordStatus {
        path: path.clone(),
        sessions: None,
        events: None,
        last_event_at: None,
        error: None,
    };
    if !path.exists() {
        return st;
    }
    match crate::audit::store::Reader::open(&path).and_then(|r| r.overview()) {
        Ok(o) => {
            st.sessions = Some(o.sessions);
            st.events = Some(o.events);
            st.last_event_at = o.last_at_ms.map(crate::audit::store::rfc3339_ms);
        }
        Err(e) => st.error = Some(e.to_string()),
    }
    st
}

#[derive(Serialize)]
struct Status {
    profile: String,
    logged_in: bool,
    subject: Option<String>,
    email: Option<String>,
    name: Option<String>,
    issuer: Option<String>,
    expires_at: Option<String>,
    expired: Option<bool>,
    token_store: Kind,
    token_location: String,
    token_store_error: Option<String>,
    gateway: Option<String>,
    ca: Option<CaStatus>,
    proxies: Vec<Proxy>,
    record: RecordStatus,
}

fn running_proxies(ctx: &Context) -> Vec<Proxy> {
    let Ok(entries) = std::fs::read_dir(&ctx.dirs.runtime) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(profile) = name
            .strip_prefix("proxy-")
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let Ok(v) =
            std::fs::read(entry.path()).map(|b| serde_json::from_slice::<serde_json::Value>(&b))
        else {
            continue;
        };
        let Ok(v) = v else { continue };
        let pid = v["pid"].as_i64().unwrap_or(0) as i32;
        let alive =
            pid > 0 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        if alive {
            out.push(Proxy {
                profile: profile.to_string(),
                pid,
                listen: v["listen"].as_str().unwrap_or("").to_string(),
            });
        }
    }
    out
}

pub async fn status(ctx: &mut Context) -> anyhow::Result<()> {
    let store = store_for(ctx, None);
    let (kind, location) = (store.kind(), store.describe());
    // Status reports a keyring it cannot reach instead of failing on it.
    let (tokens, store_error) = match blocking(move || store.load()).await? {
        Ok(t) => (t, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let ca = crate::ca::Ca::load(&ctx.dirs.ca_dir())
        .ok()
        .and_then(|ca| ca.info().ok())
        .map(|i| CaStatus {
            path: i.cert_path,
            sha256_fingerprint: i.sha256_fingerprint,
            not_after: i.not_after,
        });
    let now = chrono::Utc::now().timestamp();
    let st = Status {
        profile: ctx.profile.clone(),
        logged_in: tokens.is_some(),
        subject: tokens.as_ref().map(|t| t.subject.clone()),
        email: tokens.as_ref().and_then(|t| t.email.clone()),
        name: tokens.as_ref().and_then(|t| t.name.clone()),
        issuer: tokens.as_ref().map(|t| t.issuer.clone()),
        expires_at: tokens.as_ref().and_then(|t| t.expires_at).map(rfc3339),
        expired: tokens.as_ref().and_then(|t| t.expires_at).map(|e| e <= now),
        token_store: kind,
        token_location: location,
        token_store_error: store_error,
        gateway: ctx.config.profile(&ctx.profile).gateway,
        ca,
        proxies: running_proxies(ctx),
        record: record_status(ctx),
    };
    emit(ctx.output, &st, |s| {
        let mut out = format!("Profile:      {}\n", s.profile);
        if s.logged_in {
            out.push_str(&format!(
                "Logged in:    {} ({}{})\nIssuer:       {}\nAccess token: {}\n",
                s.name.clone().or(s.email.clone()).unwrap_or_default(),
                s.subject.clone().unwrap_or_default(),
                s.email
                    .as_ref()
                    .map(|e| format!(", {e}"))
                    .unwrap_or_default(),
                s.issuer.clone().unwrap_or_default(),
                match (&s.expires_at, s.expired) {
                    (Some(at), Some(true)) => format!("expired at {at} (refreshed on next use)"),
                    (Some(at), _) => format!("valid until {at}"),
                    _ => "no expiry given".into(),
                }
            ));
        } else {
            out.push_str("Logged in:    no (run `hoopctl login`)\n");
        }
        out.push_str(&format!("Token store:  {}\n", s.token_location));
        if let Some(e) = &s.token_store_error {
            out.push_str(&format!("              unavailable: {e}\n"));
        }
        out.push_str(&format!(
            "Gateway:      {}\n",
            s.gateway
                .clone()
                .unwrap_or_else(|| "none (direct mode)".into())
        ));
        match &s.ca {
            Some(ca) => out.push_str(&format!(
                "CA:           {} (until {})\n",
                ca.sha256_fingerprint, ca.not_after
            )),
            None => out.push_str("CA:           not created yet\n"),
        }
        let r = &s.record;
        match (&r.error, r.sessions, r.events) {
            (Some(e), _, _) => out.push_str(&format!("Record:       unreadable: {e}\n")),
            (None, Some(sessions), Some(events)) => out.push_str(&format!(
                "Record:       {sessions} session(s), {events} event(s){} in {} (`hoopctl sessions`)\n",
                r.last_event_at
                    .as_ref()
                    .map(|at| format!(", the latest at {at}"))
                    .unwrap_or_default(),
                r.path.display()
            )),
            _ => out.push_str(&format!(
                "Record:       nothing recorded yet ({})\n",
                r.path.display()
            )),
        }
        if s.proxies.is_empty() {
            out.push_str("Proxies:      none running");
        } else {
            for p in &s.proxies {
                out.push_str(&format!(
                    "Proxy:        {} (profile {}, pid {})\n",
                    p.listen, p.profile, p.pid
                ));
            }
        }
        out
    });
    Ok(())
}

#[derive(Serialize)]
struct LoggedOut {
    profile: String,
    was_logged_in: bool,
    revoked: bool,
    revocation_error: Option<String>,
}

pub async fn logout(ctx: &mut Context) -> anyhow::Result<()> {
    let store = std::sync::Arc::new(store_for(ctx, None));
    let s = store.clone();
    let tokens = blocking(move || s.load()).await??;
    let mut out = LoggedOut {
        profile: ctx.profile.clone(),
        was_logged_in: tokens.is_some(),
        revoked: false,
        revocation_error: None,
    };
    if let Some(t) = &tokens {
        match Provider::discover(&t.issuer, &t.client_id).await {
            Ok(p) => match p.revoke(t).await {
                Ok(r) => out.revoked = r,
                Err(e) => out.revocation_error = Some(e.to_string()),
            },
            Err(e) => out.revocation_error = Some(e.to_string()),
        }
        let s = store.clone();
        blocking(move || s.delete()).await??;
    }
    emit(ctx.output, &out, |o| {
        let mut s = if o.was_logged_in {
            format!("Logged out of profile {}.", o.profile)
        } else {
            format!("Profile {} was not logged in.", o.profile)
        };
        if o.revoked {
            s.push_str(" The tokens were revoked at the provider.");
        }
        if let Some(e) = &o.revocation_error {
            s.push_str(&format!("\nwarning: {e}; the tokens were deleted here but may stay valid until they expire."));
        }
        s
    });
    Ok(())
}

#[derive(Serialize)]
struct Token {
    access_token: String,
    expires_at: Option<String>,
    refreshed: bool,
}

pub async fn token(ctx: &mut Context) -> anyhow::Result<()> {
    let store = store_for(ctx, None);
    let (tokens, refreshed) = session::valid_tokens(&ctx.dirs, &ctx.profile, store).await?;
    let out = Token {
        access_token: tokens.access_token.clone(),
        expires_at: tokens.expires_at.map(rfc3339),
        refreshed,
    };
    emit(ctx.output, &out, |t| t.access_token.clone());
    Ok(())
}
