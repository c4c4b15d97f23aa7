//! `hoopctl watch`, the pure core: the state ([`App`]) that live events and
//! keys update, and the drawing ([`ui::draw`]) of that state. No I/O: the
//! runtime in `cli/watch.rs` owns the terminal and the control sockets,
//! feeds events, keys and ticks in, and carries out the [`Action`]s.
//!
//! All agent-provided text is made safe (control characters, ANSI and bidi
//! overrides shown, not interpreted) when it enters the state.

pub mod app;
mod cells;
mod keys;
mod panes;
mod ring;
mod text;
pub mod ui;

pub use app::{Action, App, Detail};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ui;
