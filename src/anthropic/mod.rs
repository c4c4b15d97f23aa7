//! The Anthropic API's wire formats, as far as hoopctl reads or writes them.
//! Pure: no I/O.

pub mod error;
pub mod request;
pub mod sse;
