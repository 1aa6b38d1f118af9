//! The echo workload: a loopback echo server (tokio twin here) and a
//! closed-loop load generator.

pub mod load;
pub mod pinstack_server;
pub mod tokio_server;

pub use load::{EchoLoadConfig, EchoReport};
pub use tokio_server::EchoConfig;
