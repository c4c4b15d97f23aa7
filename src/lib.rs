//! hoopctl: a governed, recorded path between AI coding agents and the
//! services they talk to. See README.md and SPEC.md.
//!
//! The binary is a thin wrapper around [`cli`]; the other modules are the
//! parts, usable (and tested) on their own.

pub mod agent;
pub mod anthropic;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod ca;
pub mod cli;
pub mod config;
pub mod control;
pub mod demo;
pub mod errors;
pub mod events;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod inspect;
pub mod paths;
pub mod policy;
pub mod proxy;
pub mod secret;
pub mod supervisor;
pub mod watch;
