//! The chat server (the model user): an IRC subset, its runtime-agnostic
//! core, the tokio twin and the load generator.
//!
//! ```text
//!  socket ──read──▶ framing::LineFramer ──lines──▶ session::Session ──▶ hub::Hub
//!                                                     │  (rooms, nicks: sharded locks)
//!                                                     ▼
//!  socket ◀──write── writer task ◀── bounded queue ◀── outbox::Outbox::try_push
//! ```
//!
//! [`proto`], [`framing`], [`hub`], [`session`] and [`outbox`] do no I/O and
//! know no runtime; [`tokio_server`] is the tokio glue, and the pinstack
//! server will be the same glue over coroutines.

pub mod config;
pub mod framing;
pub mod hub;
pub mod load;
pub mod outbox;
pub mod proto;
pub mod reply;
pub mod session;
pub mod stats;
pub mod tokio_server;

pub use config::ChatConfig;
pub use hub::{Hub, HubConfig};
pub use outbox::{Line, Outbox, PushError};
pub use session::{Flow, Session};
