//! Task-local storage: `thread_local!` for coroutines.
//!
//! Many coroutines share one worker thread, so a `thread_local!` is shared
//! by all of them and survives across their suspensions: state kept there
//! leaks from one request to another. A `task_local!` gives every task its
//! own lazily initialised value, dropped when the task finishes (on its home
//! thread). Outside a task (a plain thread) the value is per thread.
//!
//! Values never cross threads (a task never leaves its home worker), so they
//! need not be `Send`.

use crate::scheduler;
use crate::task::Header;
use std::any::Any;
use std::cell::RefCell;
use std::fmt;

/// The values of one task (or thread): key address -> boxed value.
pub(crate) type LocalMap = Vec<(usize, Box<dyn Any>)>;

thread_local! {
    static THREAD_LOCALS: RefCell<LocalMap> = const { RefCell::new(Vec::new()) };
}

/// Declares task-local keys. Each task sees its own value, initialised on
/// first access.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
///
/// pinstack::task_local! {
///     static REQUESTS: Cell<u32> = Cell::new(0);
/// }
///
/// let rt = pinstack::Runtime::new()?;
/// rt.block_on(|| {
///     REQUESTS.with(|r| r.set(r.get() + 1));
///     let other = pinstack::spawn(|| REQUESTS.with(|r| r.get())).join().unwrap();
///     assert_eq!(other, 0); // a different task sees its own value
///     assert_eq!(REQUESTS.with(|r| r.get()), 1);
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
#[macro_export]
macro_rules! task_local {
    ($($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr;)+) => {
        $(
            $(#[$attr])*
            $vis static $name: $crate::task_local::LocalKey<$t> = {
                fn __init() -> $t {
                    $init
                }
                $crate::task_local::LocalKey::new(__init)
            };
        )+
    };
}

/// A key declared with [`task_local!`](crate::task_local!).
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalKey { .. }")
    }
}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey { init }
    }

    /// Calls `f` with the current task's value, initialising it first if
    /// this task has not used the key yet. Use `Cell`/`RefCell` inside for
    /// mutation, as with `thread_local!`.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let key = self as *const LocalKey<T> as usize;
        let task_map = scheduler::with_current_task_header(|h| {
            // SAFETY: we are on the task's home thread, resuming it.
            unsafe { h.locals() as *mut Option<Box<LocalMap>> }
        });
        let value: *const T = match task_map {
            // SAFETY: the map belongs to the running task and is only used on
            // this thread; it is not dropped before the task finishes.
            Some(map) => unsafe {
                lookup(
                    map.as_mut()
                        .expect("non-null")
                        .get_or_insert_with(Default::default),
                    key,
                    self.init,
                )
            },
            None => THREAD_LOCALS.with(|m| {
                let mut m = m.borrow_mut();
                // SAFETY: as above, per thread.
                unsafe { lookup(&mut m, key, self.init) }
            }),
        };
        // SAFETY: the value is boxed, so it stays put while the map grows,
        // and entries are removed only when the task (or thread) ends, which
        // cannot happen during this call.
        f(unsafe { &*value })
    }
}

/// # Safety
/// `map` is used only by the current thread and not dropped during the
/// caller's use of the returned pointer.
unsafe fn lookup<T: 'static>(map: &mut LocalMap, key: usize, init: fn() -> T) -> *const T {
    if let Some((_, v)) = map.iter().find(|(k, _)| *k == key) {
        return v.downcast_ref::<T>().expect("one type per key") as *const T;
    }
    // `init` may itself use task-locals: it runs before this entry exists.
    let v: Box<dyn Any> = Box::new(init());
    let p = v.downcast_ref::<T>().expect("just boxed") as *const T;
    map.push((key, v));
    p
}

/// Drops the task-locals of a finished task, on its home thread.
pub(crate) fn drop_all(h: &Header) {
    // SAFETY: called by the home worker after the coroutine ended.
    let map = unsafe { h.locals() }.take();
    drop(map);
}
