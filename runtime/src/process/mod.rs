//! Child processes started without `fork`, waited for without blocking the
//! worker.
//!
//! The API follows `std::process`: a [`Command`] builder, a [`Child`] with
//! [`wait`](Child::wait), [`try_wait`](Child::try_wait),
//! [`kill`](Child::kill) and [`wait_with_output`](Child::wait_with_output),
//! and piped [`ChildStdin`], [`ChildStdout`], [`ChildStderr`] that implement
//! `Write`/`Read`. Inside a task every wait and every pipe read or write
//! suspends only that task; on a plain thread it blocks the thread.
//!
//! # Why not `fork`
//!
//! A pinstack server maps one stack per task. A million tasks is tens of GiB
//! of virtual memory, much of it touched, and many memory mappings. `fork`
//! copies the parent's page tables and mapping list (and marks every
//! writable page copy-on-write), so its cost grows with all of that, and the
//! copy-on-write faults that follow land on the parent's workers. A service
//! that forks under a global lock stalls behind it.
//!
//! [`Command::spawn`] calls glibc's `posix_spawnp`, which (since glibc 2.24)
//! starts the child with `clone(CLONE_VM | CLONE_VFORK)`: the child borrows
//! the parent's address space on a small stack of its own, performs the file
//! actions (`dup2` of pipes, `/dev/null`, `chdir`) and calls `execve`. No
//! page table is copied, so spawning costs the same with 20 GiB mapped as
//! with nothing mapped. The child also starts with an empty signal mask and
//! every signal at its default disposition (Rust programs ignore `SIGPIPE`,
//! and an ignored signal would survive `execve`).
//!
//! # Waiting
//!
//! After the spawn the parent opens a *pidfd* (`pidfd_open`, Linux 5.3+).
//! It becomes readable when the child exits, and it names this child only,
//! even once its pid is reused, so [`Child::kill`] (`pidfd_send_signal`) and
//! the reap (`waitid(P_PIDFD)`) cannot hit an unrelated process. A waiting
//! task registers the pidfd with its worker's poller, like a socket, and
//! suspends; the worker runs other tasks meanwhile.
//!
//! # Dropping a `Child`
//!
//! As with std, dropping a [`Child`] does not kill it (unless
//! [`Command::kill_on_drop`] is set). Unlike std, it does not leave a zombie
//! either: the pidfd of a child dropped before it was reaped goes to a
//! process-wide reaper thread (started at the first such drop, one thread
//! for the whole process, 64 KiB of stack) that reaps the child when it
//! exits. A child that has already exited is reaped on the spot, without
//! the thread.
//!
//! # Example
//!
//! ```
//! use pinstack::process::{Command, Stdio};
//! use std::io::{Read, Write};
//!
//! let rt = pinstack::Runtime::new()?;
//! rt.block_on(|| -> std::io::Result<()> {
//!     let mut child = Command::new("tr")
//!         .arg("a-z")
//!         .arg("A-Z")
//!         .stdin(Stdio::piped())
//!         .stdout(Stdio::piped())
//!         .spawn()?;
//!     let mut stdin = child.stdin.take().expect("piped");
//!     // Another task feeds the child while this one reads its output.
//!     let feeder = pinstack::spawn(move || stdin.write_all(b"hello"));
//!     let mut upper = String::new();
//!     child.stdout.take().expect("piped").read_to_string(&mut upper)?;
//!     feeder.join().expect("feeder ran")?;
//!     assert_eq!(upper, "HELLO");
//!     assert!(child.wait()?.success());
//!     Ok(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod child;
mod command;
mod output;
mod reaper;
pub(crate) mod stdio;
pub(crate) mod sys;

pub use child::Child;
pub use command::Command;
pub use std::process::{ExitStatus, Output};
pub use stdio::{ChildStderr, ChildStdin, ChildStdout, Stdio};
