//! The control socket: a Unix socket per running proxy, in the runtime
//! directory, mode 0600, peer uid checked; JSON lines (see `protocol`).

pub mod client;
pub mod protocol;
pub mod server;
