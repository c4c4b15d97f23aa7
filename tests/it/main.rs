//! The single integration-test binary (links once): one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod body_limits;
mod ca;
mod claude_code;
mod cli;
mod conn_limits;
mod demo;
mod file_trust;
mod fuzz_replay;
mod gateway;
mod gateway_double;
mod guard_limits;
mod inspect;
mod login;
mod policy;
mod proxy;
mod sessions;
mod watch;
