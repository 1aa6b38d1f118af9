//! Stack-overflow reporting: a SIGSEGV/SIGBUS handler that recognises faults
//! in our guard pages, prints which stack overflowed, and aborts.
//!
//! ```text
//!  fault ──► on_fault (on the thread's sigaltstack, SA_ONSTACK|SA_SIGINFO)
//!              │ registry::lookup(si_addr)
//!              ├─ in a slab, inside a slot's guard page
//!              │     └─► write report with write(2) from a stack buffer ─► abort()
//!              └─ anything else ─► chain to the handler that was installed
//!                    before ours (Rust std's thread-overflow handler, a
//!                    user's, or SIG_DFL: reset to default and return, so the
//!                    faulting instruction faults again and kills the process)
//! ```
//!
//! Rules the handler keeps: no allocation, no locks, no `std::io`; only
//! atomics, a const-initialised thread-local read and `write`/`sigaction`/
//! `abort`. It runs on the thread's alternate signal stack, because the
//! faulting stack has no room left: threads created by `std::thread` have
//! one (std installs it alongside its own overflow handler); threads created
//! by foreign code must `sigaltstack` themselves or the kernel kills the
//! process with a bare SIGSEGV.
//!
//! The handler is installed once per process, when the first pool is built.
//! The previous handlers are saved first (query, then install) so chaining
//! sees them; a handler installed by someone else after ours replaces ours.

use std::cell::Cell;
use std::io;

use crate::class::{self, SizeClass};
use crate::loom::statics::{AtomicUsize, Once, Ordering};
use crate::{registry, sys};

thread_local! {
    /// The label of the task running on this thread: (pointer, length).
    /// Const-initialised and without destructor, so reading it from the
    /// signal handler is a plain thread-local load.
    static LABEL: Cell<(*const u8, usize)> = const { Cell::new((std::ptr::null(), 0)) };
}

/// Sets the label printed if a stack overflow happens on this thread, e.g.
/// `task 'conn' (spawned at src/main.rs:12)`; the report then reads
/// `stack overflow in task 'conn' (spawned at src/main.rs:12): 16 KiB stack
/// class, stack 0x...-0x..., guard 0x...-0x...`. Pass `(null, 0)` to clear
/// it. A runtime sets it before resuming a task and clears it after.
///
/// # Safety
///
/// Until the label is cleared or replaced on this thread, `label` must point
/// to `len` initialised bytes that stay valid and unmodified: the overflow
/// handler may read them at any moment on this thread.
///
/// ```
/// static NAME: &str = "task 'conn' (spawned at src/main.rs:12)";
/// // SAFETY: a 'static string stays valid while set.
/// unsafe { pinstack_stackpool::set_overflow_label(NAME.as_ptr(), NAME.len()) };
/// // ... resume the task's coroutine ...
/// // SAFETY: (null, 0) clears the label.
/// unsafe { pinstack_stackpool::set_overflow_label(std::ptr::null(), 0) };
/// ```
pub unsafe fn set_overflow_label(label: *const u8, len: usize) {
    let value = if label.is_null() {
        (std::ptr::null(), 0)
    } else {
        (label, len)
    };
    LABEL.with(|l| l.set(value));
}

/// Names the task running on a thread, for the overflow report: called by
/// the signal handler with the context pointer given to
/// [`set_overflow_label_source`]; returns `(pointer, length)` of the label,
/// or `(null, 0)` when no task runs.
///
/// It runs inside a SIGSEGV handler on the faulting thread: it must only
/// read memory (no allocation, no locks).
pub type OverflowLabelFn = unsafe fn(ctx: *const ()) -> (*const u8, usize);

thread_local! {
    /// The label source of this thread: consulted when no label is set.
    static SOURCE: Cell<(Option<OverflowLabelFn>, *const ())> =
        const { Cell::new((None, std::ptr::null())) };
}

/// Installs a label source for this thread: when a stack overflows here and
/// no label was set with [`set_overflow_label`], the handler calls
/// `f(ctx)` to name the running task. A runtime installs it once per worker
/// thread (with a pointer to its "current task" slot), instead of storing a
/// label before every resume. Pass `None` to remove it.
///
/// # Safety
///
/// Until it is removed or replaced on this thread, `f(ctx)` must be safe to
/// call at any moment on this thread (from the signal handler: reads only),
/// and the label it returns must point to that many initialised bytes.
///
/// ```
/// unsafe fn label(ctx: *const ()) -> (*const u8, usize) {
///     // SAFETY: the caller passes the `&'static str` installed below.
///     let s = unsafe { *(ctx as *const &'static str) };
///     (s.as_ptr(), s.len())
/// }
/// static NAME: &str = "task 'conn'";
/// // SAFETY: `label` only reads the 'static string `ctx` points to.
/// unsafe {
///     pinstack_stackpool::set_overflow_label_source(Some(label), &NAME as *const &str as *const ())
/// };
/// // ... resume tasks ...
/// // SAFETY: removing the source is always allowed.
/// unsafe { pinstack_stackpool::set_overflow_label_source(None, std::ptr::null()) };
/// ```
pub unsafe fn set_overflow_label_source(f: Option<OverflowLabelFn>, ctx: *const ()) {
    SOURCE.with(|s| s.set((f, ctx)));
}

/// The label to report: the one set, else the source's.
fn current_label() -> (*const u8, usize) {
    let (label, len) = LABEL.with(|l| l.get());
    if !label.is_null() && len != 0 {
        return (label, len);
    }
    match SOURCE.with(|s| s.get()) {
        // SAFETY: `set_overflow_label_source`'s contract: callable on this
        // thread while installed.
        (Some(f), ctx) => unsafe { f(ctx) },
        (None, _) => (std::ptr::null(), 0),
    }
}

/// The handler that was in place before ours, per signal.
struct Previous {
    /// `sa_sigaction` (or `sa_handler`) as an address; SIG_DFL is 0.
    handler: AtomicUsize,
    /// `sa_flags`, to know how to call it.
    flags: AtomicUsize,
}

static PREV_SEGV: Previous = Previous {
    handler: AtomicUsize::new(libc::SIG_DFL),
    flags: AtomicUsize::new(0),
};
static PREV_BUS: Previous = Previous {
    handler: AtomicUsize::new(libc::SIG_DFL),
    flags: AtomicUsize::new(0),
};
static INSTALL: Once = Once::new();
/// errno of a failed installation, 0 when it succeeded.
static INSTALL_ERRNO: AtomicUsize = AtomicUsize::new(0);

/// Installs the SIGSEGV and SIGBUS handlers once per process.
pub(crate) fn install_handler() -> io::Result<()> {
    INSTALL.call_once(|| {
        for (sig, prev) in [(libc::SIGSEGV, &PREV_SEGV), (libc::SIGBUS, &PREV_BUS)] {
            let res = sys::sigaction_query(sig).and_then(|old| {
                prev.handler.store(old.sa_sigaction, Ordering::Release);
                prev.flags.store(old.sa_flags as usize, Ordering::Release);
                sys::sigaction_install(sig, on_fault)
            });
            if let Err(e) = res {
                let errno = e.raw_os_error().unwrap_or(libc::EINVAL);
                INSTALL_ERRNO.store(errno as usize, Ordering::Release);
                return;
            }
        }
    });
    match INSTALL_ERRNO.load(Ordering::Acquire) {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno as i32)),
    }
}

/// A guard-page hit, located.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GuardHit {
    pub(crate) class: SizeClass,
    /// Lowest address of the slot = start of its guard page.
    pub(crate) slot: usize,
    pub(crate) page: usize,
    pub(crate) stride: usize,
}

/// Whether `addr` lies in the guard page of a slot of a registered slab.
pub(crate) fn find_guard(addr: usize) -> Option<GuardHit> {
    let slab = registry::lookup(addr)?;
    let class = SizeClass::from_index(slab.class_index)?;
    let page = sys::page_size();
    let stride = class::stride_for(class, page);
    let slot = slab.base + (addr - slab.base) / stride * stride;
    (addr - slot < page).then_some(GuardHit {
        class,
        slot,
        page,
        stride,
    })
}

unsafe extern "C" fn on_fault(
    sig: libc::c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler;
    // si_addr is defined for SIGSEGV and SIGBUS.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some(hit) = find_guard(addr) {
        report(hit, addr);
        sys::abort();
    }
    // SAFETY: forwarding the arguments the kernel gave us, unchanged.
    unsafe { chain(sig, info, ctx) }
}

/// Hands a fault that is not ours to the previous handler.
///
/// # Safety
///
/// Must be called from the signal handler with the kernel's arguments.
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let prev = if sig == libc::SIGBUS {
        &PREV_BUS
    } else {
        &PREV_SEGV
    };
    let handler = prev.handler.load(Ordering::Acquire);
    let flags = prev.flags.load(Ordering::Acquire) as libc::c_int;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Default action: reset and return. A real fault re-executes and now
        // kills the process; a signal sent by kill/raise (si_code <= 0) is
        // re-raised, pending until this handler returns.
        sys::sigaction_reset_default(sig);
        // SAFETY: `info` is the kernel's valid siginfo.
        if unsafe { (*info).si_code } <= 0 {
            sys::raise(sig);
        }
        return;
    }
    if flags & libc::SA_SIGINFO != 0 {
        // SAFETY: with SA_SIGINFO set, the saved address is an SA_SIGINFO
        // handler; it was installed by its owner with that signature.
        let f: sys::SigInfoHandler =
            unsafe { std::mem::transmute::<usize, sys::SigInfoHandler>(handler) };
        // SAFETY: calling the previous handler as the kernel would have.
        unsafe { f(sig, info, ctx) }
    } else {
        // SAFETY: without SA_SIGINFO, the saved address is a plain
        // `void (*)(int)` handler.
        let f: extern "C" fn(libc::c_int) =
            unsafe { std::mem::transmute::<usize, extern "C" fn(libc::c_int)>(handler) };
        f(sig)
    }
}

/// A fixed buffer for building the report without allocating.
struct Buf {
    bytes: [u8; 320],
    len: usize,
}

impl Buf {
    fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    fn push_hex(&mut self, v: usize) {
        let mut digits = [0u8; 18];
        digits[0] = b'0';
        digits[1] = b'x';
        let nibbles = (usize::BITS as usize / 4).max(1);
        let mut started = false;
        let mut n = 2;
        for i in (0..nibbles).rev() {
            let d = (v >> (i * 4)) & 0xf;
            if d != 0 || started || i == 0 {
                started = true;
                digits[n] = b"0123456789abcdef"[d];
                n += 1;
            }
        }
        self.push(&digits[..n]);
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Builds the part of the report after the label:
/// `: 16 KiB stack class, stack 0x..-0x.., guard 0x..-0x.. (fault at 0x..)\n`.
fn describe(hit: GuardHit, addr: usize) -> Buf {
    let mut buf = Buf {
        bytes: [0; 320],
        len: 0,
    };
    let mut name = [0u8; 16];
    let n = class::write_class_name(hit.class, &mut name);
    buf.push(b": ");
    buf.push(&name[..n]);
    buf.push(b" stack class, stack ");
    buf.push_hex(hit.slot + hit.page);
    buf.push(b"-");
    buf.push_hex(hit.slot + hit.stride);
    buf.push(b", guard ");
    buf.push_hex(hit.slot);
    buf.push(b"-");
    buf.push_hex(hit.slot + hit.page);
    buf.push(b" (fault at ");
    buf.push_hex(addr);
    buf.push(b"); aborting\n");
    buf
}

/// Writes the overflow report to stderr (async-signal-safe).
fn report(hit: GuardHit, addr: usize) {
    let (label, len) = current_label();
    sys::write_stderr(b"\nstack overflow in ");
    if label.is_null() || len == 0 {
        sys::write_stderr(b"a pinstack coroutine");
    } else {
        // SAFETY: set_overflow_label's (or the source's) contract keeps
        // `len` bytes at `label` valid while it is set on this thread.
        sys::write_stderr(unsafe { std::slice::from_raw_parts(label, len) });
    }
    sys::write_stderr(describe(hit, addr).as_slice());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_class_and_ranges_in_hex() {
        let hit = GuardHit {
            class: SizeClass::for_hint(16 << 10).unwrap(),
            slot: 0x7f00_0000_0000,
            page: 4096,
            stride: 4096 + (16 << 10),
        };
        let text = String::from_utf8(describe(hit, 0x7f00_0000_0ff8).as_slice().to_vec()).unwrap();
        assert_eq!(
            text,
            ": 16 KiB stack class, stack 0x7f0000001000-0x7f0000005000, \
             guard 0x7f0000000000-0x7f0000001000 (fault at 0x7f0000000ff8); aborting\n"
        );
    }

    #[test]
    fn hex_of_zero_and_max() {
        let mut b = Buf {
            bytes: [0; 320],
            len: 0,
        };
        b.push_hex(0);
        b.push(b" ");
        b.push_hex(usize::MAX);
        assert_eq!(b.as_slice(), b"0x0 0xffffffffffffffff");
    }

    #[test]
    fn label_round_trips_and_null_clears() {
        let name = "task 'x'";
        // SAFETY: a 'static str stays valid while set.
        unsafe { set_overflow_label(name.as_ptr(), name.len()) };
        assert_eq!(LABEL.with(|l| l.get()), (name.as_ptr(), name.len()));
        // SAFETY: clearing is always allowed.
        unsafe { set_overflow_label(std::ptr::null(), 5) };
        assert_eq!(LABEL.with(|l| l.get()), (std::ptr::null(), 0));
    }

    #[test]
    fn a_set_label_wins_over_the_source_and_the_source_fills_in() {
        unsafe fn src(ctx: *const ()) -> (*const u8, usize) {
            // SAFETY: the caller passes a pointer to a live `&'static str`.
            let s = unsafe { *(ctx as *const &'static str) };
            (s.as_ptr(), s.len())
        }
        static FROM_SOURCE: &str = "task 'from source'";
        let set = "task 'set'";
        // SAFETY: `src` reads the 'static string `ctx` points to.
        unsafe { set_overflow_label_source(Some(src), &FROM_SOURCE as *const &str as *const ()) };
        assert_eq!(current_label(), (FROM_SOURCE.as_ptr(), FROM_SOURCE.len()));
        // SAFETY: a 'static str stays valid while set.
        unsafe { set_overflow_label(set.as_ptr(), set.len()) };
        assert_eq!(current_label(), (set.as_ptr(), set.len()));
        // SAFETY: clearing and removing are always allowed.
        unsafe {
            set_overflow_label(std::ptr::null(), 0);
            set_overflow_label_source(None, std::ptr::null());
        }
        assert_eq!(current_label(), (std::ptr::null(), 0));
    }

    #[test]
    fn handler_installation_succeeds_and_is_idempotent() {
        install_handler().unwrap();
        install_handler().unwrap();
        let act = sys::sigaction_query(libc::SIGSEGV).unwrap();
        assert_eq!(act.sa_sigaction, on_fault as *const () as usize);
        assert_ne!(act.sa_flags & libc::SA_ONSTACK, 0);
        assert_ne!(act.sa_flags & libc::SA_SIGINFO, 0);
    }
}
