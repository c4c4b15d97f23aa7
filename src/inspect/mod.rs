//! The response inspector.

pub mod machine;
pub mod stream;
pub mod transcript;
