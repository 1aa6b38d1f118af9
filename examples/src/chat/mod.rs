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
//! [`proto`], [`framing`], [`hub`], [`session`], [`idle`], [`outbox`] and
//! [`scratch`] do no I/O and know no runtime; [`tokio_server`] is the tokio
//! glue, and [`pinstack_server`] the same glue over coroutines (with a
//! per-request arena per message as its [`scratch::Scratch`]).
//!
//! # Writing another twin
//!
//! 1. Implement [`Outbox`] over a bounded queue (`try_push` never blocks;
//!    `close` sets a flag, keeps the farewell, wakes reader and writer).
//! 2. Per connection, a reader: `read` into [`framing::LineFramer::spare`],
//!    feed each frame to [`Session::on_line`] (or [`Session::on_line_in`]
//!    with per-message [`scratch::Scratch`] memory) / [`Session::on_line_too_long`],
//!    drive an [`idle::IdleClock`] with one timer ([`Session::on_idle`],
//!    [`Session::on_ping_timeout`]); at the end [`Session::disconnect`].
//! 3. A writer draining the queue into the socket; when every sender is gone
//!    it shuts the socket down; on `close` it drops the queue, finishes the
//!    line in flight, writes the farewell within `close_grace`, and closes.
//! 4. Count into [`stats::ServerStats`], honour [`ChatConfig`], and run the
//!    cases in `tests/common/chat_cases.rs` against it.

pub mod admin;
pub mod config;
pub mod framing;
pub mod hub;
pub mod idle;
pub mod load;
pub mod outbox;
pub mod pinstack_server;
pub mod proto;
pub mod reply;
pub mod scratch;
pub mod session;
pub mod stats;
pub mod tokio_server;

pub use config::ChatConfig;
pub use hub::{Hub, HubConfig};
pub use outbox::{Line, Outbox, PushError, WriteBatch};
pub use session::{Flow, Session};
