//! The hoop.dev-compatible gateway (SPEC section 5): its API, and the link
//! that keeps a connection credential for the proxy.

pub mod api;
pub mod link;
pub mod types;
