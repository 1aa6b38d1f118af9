//! `task::Builder`: spawning with a name, a stack size hint, or pinned.

use super::{spawn_current, spawn_on, JoinHandle, Meta, WorkerId};
use crate::Handle;
use pinstack_stackpool::SizeClass;
use std::borrow::Cow;
use std::io;
use std::panic::Location;

/// Configures a task before spawning it, like `std::thread::Builder`.
///
/// # Examples
///
/// ```
/// use pinstack::task::Builder;
///
/// let rt = pinstack::Runtime::new()?;
/// rt.block_on(|| -> std::io::Result<()> {
///     let h = Builder::new()
///         .name("conn")
///         .stack_size(32 * 1024)
///         .spawn(|| pinstack::task::current_name().map(String::from))?;
///     assert_eq!(h.join().unwrap().as_deref(), Some("conn"));
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<Cow<'static, str>>,
    stack_size: Option<usize>,
    pinned: bool,
    on: Option<WorkerId>,
}

impl Builder {
    /// A builder with no name, the runtime's default stack size, not pinned.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the task (shown in stack-overflow reports, metrics and traces).
    /// A `&'static str` is kept by reference, so naming a task costs no
    /// allocation; a `String` is moved in.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// The stack the task needs, in bytes. It is rounded up to the stack
    /// pool's size class (powers of two from 8 KiB to 8 MiB); only the pages
    /// the task touches become resident.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Starts the task on the calling worker and never lets another worker
    /// steal it: for tasks that share a socket or talk constantly with the
    /// caller. Outside a worker thread this has no effect.
    pub fn pin_to_current_worker(mut self) -> Builder {
        self.pinned = true;
        self
    }

    /// Starts the task on worker `worker` and keeps it there (it is never
    /// stolen): to put a task next to the tasks it talks to when they live
    /// on another worker (a started task never moves, so placement is
    /// decided here), or to give each worker its own shard of work.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinstack::task::{current_worker, Builder};
    ///
    /// let rt = pinstack::Runtime::new()?;
    /// for w in rt.handle().workers() {
    ///     let ran_on = Builder::new()
    ///         .on_worker(w)
    ///         .spawn_on(current_worker, &rt.handle())?
    ///         .join()
    ///         .unwrap();
    ///     assert_eq!(ran_on, Some(w));
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_worker(mut self, worker: WorkerId) -> Builder {
        self.on = Some(worker);
        self.pinned = true;
        self
    }

    /// Spawns the task on the current runtime.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a stack size above 8 MiB or a worker of another
    /// runtime ([`on_worker`](Builder::on_worker)); `Other` outside a
    /// runtime, after shutdown, or when the live-task limit is reached.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let on = self.on;
        let meta = self.into_meta(Location::caller())?;
        spawn_current(f, meta, on)
    }

    /// Spawns the task on the runtime of `handle`, from any thread.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Builder::spawn).
    #[track_caller]
    pub fn spawn_on<F, T>(self, f: F, handle: &Handle) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let on = self.on;
        let meta = self.into_meta(Location::caller())?;
        spawn_on(&handle.shared, f, meta, on)
    }

    fn into_meta(self, site: &'static Location<'static>) -> io::Result<Meta> {
        let stack_hint = match self.stack_size {
            Some(n) => {
                SizeClass::for_hint(n)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
                // At most 8 MiB: `for_hint` accepted it.
                u32::try_from(n.max(1)).unwrap_or(u32::MAX)
            }
            None => 0,
        };
        Ok(Meta {
            name: self.name.map(super::name::TaskName::new),
            stack_hint,
            pinned: self.pinned,
            site,
        })
    }
}
