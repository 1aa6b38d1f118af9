//! A server running on a thread of its own: the handle every server of this
//! crate returns from its `spawn` (the chat and echo twins alike).
//!
//! ```text
//! caller                               server thread (named)
//!   spawn(config, name, what, run) ──▶ run(&config, &shutdown, stats, ready)
//!   waits ◀── ready(addr) ────────────┘    serves until shutdown.trigger()
//!   ServerThread { addr, stats, .. }
//!   stop() / drop: trigger, join ─────▶ returns Ok or its error
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::Shutdown;

/// A twin's runner: serves `config` until `shutdown`, calling `ready` with
/// the bound address once it listens.
pub(crate) type RunFn<C, S> =
    fn(&C, &Shutdown, Arc<S>, Box<dyn FnOnce(SocketAddr) + Send>) -> io::Result<()>;

/// A server on its own thread, with counters of type `S`. Dropping it stops
/// the server and waits for the thread, as [`stop`](ServerThread::stop)
/// does, but discards the result.
#[derive(Debug)]
pub struct ServerThread<S> {
    addr: SocketAddr,
    shutdown: Shutdown,
    stats: Arc<S>,
    /// What it is, in errors: "chat server", "echo server".
    what: &'static str,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl<S> ServerThread<S> {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's counters.
    pub fn stats(&self) -> &Arc<S> {
        &self.stats
    }

    /// The shutdown trigger.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Shuts the server down and waits for its thread.
    ///
    /// # Errors
    ///
    /// The server's own error, or `Other` if its thread panicked.
    pub fn stop(mut self) -> io::Result<()> {
        self.shutdown.trigger();
        self.join()
    }

    fn join(&mut self) -> io::Result<()> {
        match self.thread.take() {
            Some(t) => join(t, self.what),
            None => Ok(()),
        }
    }
}

impl<S> Drop for ServerThread<S> {
    fn drop(&mut self) {
        self.shutdown.trigger();
        let _ = self.join();
    }
}

fn join(thread: JoinHandle<io::Result<()>>, what: &str) -> io::Result<()> {
    thread
        .join()
        .unwrap_or_else(|_| Err(io::Error::other(format!("{what} thread panicked"))))
}

/// Starts `run` on a new thread named `thread_name` with fresh counters and
/// returns once it listens.
///
/// # Errors
///
/// The thread's spawn error, or the error `run` returned before listening
/// (`what` names the server in messages).
pub(crate) fn spawn<C, S>(
    config: C,
    thread_name: &str,
    what: &'static str,
    run: RunFn<C, S>,
) -> io::Result<ServerThread<S>>
where
    C: Send + 'static,
    S: Default + Send + Sync + 'static,
{
    let shutdown = Shutdown::new();
    let stats = Arc::new(S::default());
    let (tx, rx) = std::sync::mpsc::channel();
    let (sd, st) = (shutdown.clone(), stats.clone());
    let thread = std::thread::Builder::new()
        .name(thread_name.into())
        .spawn(move || {
            let ready_tx = tx.clone();
            let r = run(
                &config,
                &sd,
                st,
                Box::new(move |a| {
                    let _ = ready_tx.send(Ok(a));
                }),
            );
            if let Err(e) = &r {
                let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
            }
            r
        })?;
    match rx.recv() {
        Ok(Ok(addr)) => Ok(ServerThread {
            addr,
            shutdown,
            stats,
            what,
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        // The thread ended without a word: it panicked, or returned Ok
        // without listening.
        Err(_) => Err(join(thread, what)
            .err()
            .unwrap_or_else(|| io::Error::other(format!("{what} exited before listening")))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Count(std::sync::atomic::AtomicU32);

    #[test]
    fn runs_until_stopped_and_reports_early_failures() {
        let s = spawn((), "t-ok", "test server", |_, sd, st: Arc<Count>, ready| {
            ready("127.0.0.1:9".parse().unwrap());
            while !sd.is_triggered() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            st.0.store(7, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
        assert_eq!(s.addr().port(), 9);
        let stats = s.stats().clone();
        s.stop().unwrap();
        assert_eq!(stats.0.load(std::sync::atomic::Ordering::Relaxed), 7);

        let e = spawn((), "t-err", "test server", |_, _, _: Arc<Count>, _| {
            Err(io::Error::new(io::ErrorKind::AddrInUse, "taken"))
        })
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);

        let e = spawn(
            (),
            "t-quiet",
            "test server",
            |_, _, _: Arc<Count>, _| Ok(()),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("test server exited before listening"),
            "{e}"
        );
    }
}
