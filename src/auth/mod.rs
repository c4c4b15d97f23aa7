//! Who the user is: OIDC login, token storage and refresh.

pub mod browser;
pub mod loopback;
pub mod oidc;
pub mod session;
pub mod store;
