//! pinstack's model users: a chat server and an echo server, their tokio
//! twins, and the load generators that drive both.
//!
//! The chat server speaks a subset of IRC (enough for irssi or weechat to
//! connect, join and talk). Its protocol ([`chat::proto`]), line framing
//! ([`chat::framing`]) and state machine ([`chat::hub`], [`chat::session`])
//! do no I/O and know no runtime: a runtime plugs in through the
//! [`chat::Outbox`] trait. [`chat::tokio_server`] is the tokio twin; the
//! pinstack server reuses the same core.
//!
//! The load generators ([`chat::load`], [`echo::load`]) are clients on a
//! tokio runtime; they target any address and stop by themselves.
//!
//! ```no_run
//! use pinstack_examples::chat::{self, load::LoadConfig, ChatConfig};
//! use pinstack_examples::Shutdown;
//!
//! // A tokio chat server on a free port, driven by 200 clients for 2 s.
//! let mut cfg = ChatConfig::default();
//! cfg.addr = "127.0.0.1:0".parse().unwrap();
//! let server = chat::tokio_server::spawn(cfg).unwrap();
//! let mut load = LoadConfig::new(server.addr());
//! load.clients = 200;
//! load.rooms = 10;
//! load.rate = 500.0;
//! load.duration = std::time::Duration::from_secs(2);
//! let report = chat::load::run(&load).unwrap();
//! println!("{report}");
//! assert_eq!(report.steady.as_ref().unwrap().lost, 0);
//! server.stop().unwrap();
//! # let _ = Shutdown::new();
//! ```
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![doc(test(attr(deny(warnings))))]

pub mod chat;
pub mod echo;
pub mod flags;

mod connect;
mod histogram;
mod host;
mod limits;
mod procfs;
mod server_thread;
mod shutdown;
mod sys;

pub use connect::{connect_from, SourcePlan};
pub use histogram::Histogram;
pub use host::{apply_host_flags, loopback_up, set_sysctl};
pub use limits::{raise_nofile_limit, raise_nofile_limit_to, NofileLimit};
pub use procfs::{cpu_time, rss_kib};
pub use server_thread::ServerThread;
pub use shutdown::Shutdown;
