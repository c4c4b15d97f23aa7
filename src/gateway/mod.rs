//! The hoop.dev-compatible gateway (SPEC section 5).

pub mod api;
pub mod types;
