//! CPU affinity of the calling thread: safe wrappers over
//! `sched_setaffinity(2)`/`sched_getaffinity(2)`.
//!
//! Both act on the **calling thread** only (pid 0), never the whole process:
//! a runtime worker pins itself when it starts. A thread inherits its
//! creator's mask, so the main thread's mask at startup is the process's
//! allowed set (`taskset`, cgroup cpusets and container limits all show up
//! here), which is what [`placement::plan`](crate::placement::plan) takes as
//! `allowed_cpus`.

use std::io;

use crate::cpuset::CpuSet;
use crate::sys;

/// Pins the calling thread to the CPUs in `cpus`.
///
/// ```no_run
/// use pinstack_numa::{set_thread_affinity, thread_affinity, CpuSet};
///
/// std::thread::spawn(|| -> std::io::Result<()> {
///     set_thread_affinity(&CpuSet::single(0))?;
///     assert_eq!(thread_affinity()?, CpuSet::single(0));
///     Ok(())
/// })
/// .join()
/// .unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// `InvalidInput` for an empty set; the kernel's `EINVAL` (with the set and
/// the currently allowed CPUs in the message) when none of `cpus` is online
/// and allowed to this thread's cgroup.
pub fn set_thread_affinity(cpus: &CpuSet) -> io::Result<()> {
    if cpus.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "sched_setaffinity: the CPU set is empty; a thread needs at least one CPU to run on",
        ));
    }
    sys::sched_setaffinity(&sys::to_kernel_words(cpus.words())).map_err(|e| {
        let allowed = thread_affinity().map_or_else(|e| format!("unknown: {e}"), |c| c.to_string());
        let hint = if e.raw_os_error() == Some(libc::EINVAL) {
            "; name CPUs that are online (/sys/devices/system/cpu/online) and allowed by the cgroup cpuset"
        } else {
            ""
        };
        io::Error::new(
            e.kind(),
            format!("sched_setaffinity({cpus}) failed: {e} (this thread may run on {allowed}){hint}"),
        )
    })
}

/// The CPUs the calling thread may run on.
///
/// # Errors
///
/// The kernel's error, which does not happen in practice for the calling
/// thread.
pub fn thread_affinity() -> io::Result<CpuSet> {
    let words = sys::sched_getaffinity()?;
    Ok(CpuSet::from_words(sys::from_kernel_words(&words)))
}
