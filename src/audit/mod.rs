//! The local record (SPEC section 8, "nothing is lost"): a tamper-evident,
//! searchable SQLite store of what agents did, indexed off the hot path.
//!
//! - [`event`]: what is recorded (the proxy builds these).
//! - [`store`]: the journal each proxy appends to before a request leaves,
//!   the database it is indexed into (schema and migrations, per-session
//!   hash chains: `store::chain` owns the canonical bytes each hash
//!   covers), and the read side (list, show, search, export, verify,
//!   retention, shipping cursor).
//! - [`recorder`]: the proxy's handle: durable requests, `fail_closed`.
//! - [`ship`]: live shipping to a webhook, with the store as the spool.
//!
//! Only masked content ever reaches this module: the proxy records after
//! policy has masked a request body.

pub mod event;
pub mod recorder;
pub mod ship;
pub mod store;
