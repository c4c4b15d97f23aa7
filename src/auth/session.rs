//! A valid access token for commands that need one: refreshed when it
//! expires within 60 s, under a cross-process lock, with the rotated
//! refresh token saved back before the lock is released.

use chrono::Utc;

use super::oidc::{self, Provider};
use super::store::{self, Kind, Lock, Store, Tokens};
use crate::paths::Dirs;

/// Refresh when the access token expires within this many seconds.
pub const REFRESH_BEFORE: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not logged in (profile {0}); run `hoopctl login`")]
    NotLoggedIn(String),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Oidc(#[from] oidc::Error),
    #[error("internal error: {0}")]
    Join(String),
}

pub fn expiring(t: &Tokens) -> bool {
    t.expires_at
        .is_some_and(|at| at - Utc::now().timestamp() <= REFRESH_BEFORE)
}

/// Runs blocking store work (the keyring talks D-Bus synchronously) off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Join(e.to_string()))
}

/// The profile's tokens, refreshed if needed. `refreshed` tells whether a refresh happened.
pub async fn valid_tokens(
    dirs: &Dirs,
    profile: &str,
    store: Store,
) -> Result<(Tokens, bool), Error> {
    tokens(dirs, profile, store, None).await
}

/// Like [`valid_tokens`], but when `rejected` is the access token in use,
/// it is refreshed even if it has not expired (a server refused it).
async fn tokens(
    dirs: &Dirs,
    profile: &str,
    store: Store,
    rejected: Option<&str>,
) -> Result<(Tokens, bool), Error> {
    let stale = |t: &Tokens| {
        expiring(t) || (rejected == Some(t.access_token.as_str()) && t.refresh_token.is_some())
    };
    let store = std::sync::Arc::new(store);
    let s = store.clone();
    let current = blocking(move || s.load()).await??;
    let current = current.ok_or_else(|| Error::NotLoggedIn(profile.to_string()))?;
    if !stale(&current) {
        return Ok((current, false));
    }
    let (d, p) = (dirs.clone(), profile.to_string());
    let lock = blocking(move || Lock::acquire(&d, &p)).await??;
    // Another process may have refreshed while this one waited for the lock.
    let s = store.clone();
    let current = blocking(move || s.load())
        .await??
        .ok_or_else(|| Error::NotLoggedIn(profile.to_string()))?;
    if !stale(&current) {
        drop(lock);
        return Ok((current, false));
    }
    let provider = Provider::discover(&current.issuer, &current.client_id).await?;
    let fresh = provider.refresh(&current).await?;
    let (s, saved) = (store.clone(), fresh.clone());
    blocking(move || s.save(&saved)).await??;
    drop(lock);
    Ok((fresh, true))
}

/// Access tokens for long-running work (the gateway link): reads the
/// store each time, so a refresh by another process is picked up.
#[derive(Debug, Clone)]
pub struct TokenSource {
    dirs: Dirs,
    profile: String,
    kind: Kind,
}

impl TokenSource {
    pub fn new(dirs: Dirs, profile: &str, kind: Kind) -> Self {
        Self {
            dirs,
            profile: profile.to_string(),
            kind,
        }
    }

    /// A valid access token, refreshed when it expires soon.
    pub async fn access_token(&self) -> Result<String, Error> {
        let store = Store::new(self.kind, &self.profile, &self.dirs);
        Ok(valid_tokens(&self.dirs, &self.profile, store)
            .await?
            .0
            .access_token)
    }

    /// A new access token after a server refused `rejected` (refreshed
    /// if it is still the saved one and a refresh token exists).
    pub async fn after_rejection(&self, rejected: &str) -> Result<String, Error> {
        let store = Store::new(self.kind, &self.profile, &self.dirs);
        Ok(tokens(&self.dirs, &self.profile, store, Some(rejected))
            .await?
            .0
            .access_token)
    }
}
