//! User regions: named spans of a task's work, drawn inside its slices.

use super::event::{self, Event};
use super::ring::Ring;
use crate::metrics::probe::{self, Here};
use std::marker::PhantomData;

/// Calls `f` with the ring of the traced resume running on this thread, if
/// any. Only the worker's own thread sees a non-null ring (set for the
/// duration of a resume), so it is the ring's single producer.
#[inline]
pub(crate) fn with_ring(f: impl FnOnce(&Ring, Here)) -> bool {
    let here = probe::here();
    if here.ring.is_null() {
        return false;
    }
    // SAFETY: `here.ring` is non-null only between `resume_begin` and
    // `resume_end` of a traced resume on this thread (`metrics/probe.rs`);
    // it points into `Shared::obs`, which the worker keeps alive through its
    // `Arc<Shared>` for the whole resume.
    let ring = unsafe { &*here.ring };
    f(ring, here);
    true
}

/// Runs `f` as a region named `name` of the current task: with tracing on,
/// the region appears in the trace inside the task's slice (or, if the task
/// suspends inside it, as an async span over the suspension). Without
/// tracing, or outside a task, it just runs `f`.
///
/// # Examples
///
/// ```
/// let rt = pinstack::Runtime::builder().tracing(true).build()?;
/// let n = rt.block_on(|| pinstack::trace::region("parse", || "42".parse::<u32>()));
/// assert_eq!(n, Ok(42));
/// let json = rt.trace().expect("tracing is on").to_chrome_json();
/// assert!(json.contains("\"name\":\"parse\""));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn region<R>(name: &'static str, f: impl FnOnce() -> R) -> R {
    let _g = enter(name);
    f()
}

/// Opens a region named `name`; it closes when the guard drops (also when
/// unwinding). See [`region`].
pub fn enter(name: &'static str) -> RegionGuard {
    let mut task = 0;
    with_ring(|ring, here| {
        task = here.task;
        ring.push(region_event(event::REGION_BEGIN, name, here).encode());
    });
    RegionGuard {
        name,
        task,
        _not_send: PhantomData,
    }
}

/// Records the start of a region without a guard (the `tracing` layer).
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn begin(name: &'static str) {
    with_ring(|ring, here| ring.push(region_event(event::REGION_BEGIN, name, here).encode()));
}

/// Records the end of a region opened with [`begin`].
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn end(name: &'static str) {
    with_ring(|ring, here| ring.push(region_event(event::REGION_END, name, here).encode()));
}

fn region_event(kind: u8, name: &'static str, here: Here) -> Event {
    let mut e = Event::new(
        kind,
        here.worker as u16,
        crate::metrics::clock::now(),
        here.task,
    );
    (e.a, e.b) = event::str_words(name);
    e.c = here.resume;
    e
}

/// An open region; closes it on drop. Not `Send`: a region belongs to the
/// task that opened it.
#[must_use = "the region closes when this guard is dropped"]
#[derive(Debug)]
pub struct RegionGuard {
    name: &'static str,
    /// The traced task that opened it (0: not recorded).
    task: u64,
    _not_send: PhantomData<*const ()>,
}

impl Drop for RegionGuard {
    fn drop(&mut self) {
        if self.task == 0 {
            return;
        }
        let (task, name) = (self.task, self.name);
        with_ring(|ring, here| {
            if here.task == task {
                ring.push(region_event(event::REGION_END, name, here).encode());
            }
        });
    }
}
