//! Every raw libc call of the process module: `posix_spawnp` and its
//! attribute and file-action objects, the pidfd syscalls, pipes and
//! descriptor flags.
//!
//! Nothing here calls `fork`. glibc's `posix_spawnp` (2.24 and later) starts
//! the child with `clone(CLONE_VM | CLONE_VFORK)` on a small stack of its
//! own: the child shares the parent's address space until it calls `execve`,
//! so no page table is copied whatever the parent has mapped.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

/// One step the child performs between `clone` and `execve`, in order.
#[derive(Debug)]
pub(crate) enum FileAction<'a> {
    /// `dup2(fd, target)`; the copy does not carry `FD_CLOEXEC`.
    Dup2 { fd: RawFd, target: RawFd },
    /// `open(path, flags)` placed at descriptor `target`.
    Open {
        target: RawFd,
        path: &'a CStr,
        flags: libc::c_int,
    },
    /// `chdir(path)`.
    Chdir(&'a CStr),
}

/// A `posix_spawn_file_actions_t`, destroyed on drop.
struct Actions(libc::posix_spawn_file_actions_t);

impl Actions {
    fn new() -> io::Result<Box<Actions>> {
        // SAFETY: an all-zero `posix_spawn_file_actions_t` is a valid place
        // for `posix_spawn_file_actions_init` to initialise (a plain C struct
        // of integers and a pointer); it is boxed so its address is stable.
        let mut a = Box::new(Actions(unsafe { std::mem::zeroed() }));
        // SAFETY: `a.0` is writable memory of the right type, initialised
        // exactly once here.
        let r = unsafe { libc::posix_spawn_file_actions_init(&mut a.0) };
        check_rc(r)?;
        Ok(a)
    }

    fn push(&mut self, action: &FileAction<'_>) -> io::Result<()> {
        // Paths are NUL-terminated `CStr`s that glibc copies into the
        // actions object before returning; `self.0` was initialised in `new`
        // and is destroyed only in `drop`.
        let r = match *action {
            FileAction::Dup2 { fd, target } => {
                // SAFETY: `self.0` is initialised (see above); plain integers.
                unsafe { libc::posix_spawn_file_actions_adddup2(&mut self.0, fd, target) }
            }
            FileAction::Open {
                target,
                path,
                flags,
            } => {
                // SAFETY: `self.0` is initialised; `path` is NUL-terminated
                // and copied by glibc.
                unsafe {
                    libc::posix_spawn_file_actions_addopen(
                        &mut self.0,
                        target,
                        path.as_ptr(),
                        flags,
                        0,
                    )
                }
            }
            FileAction::Chdir(path) => {
                // SAFETY: `self.0` is initialised; `path` is NUL-terminated
                // and copied by glibc (2.29+).
                unsafe { libc::posix_spawn_file_actions_addchdir_np(&mut self.0, path.as_ptr()) }
            }
        };
        check_rc(r)
    }
}

impl Drop for Actions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once, here.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

/// A `posix_spawnattr_t`, destroyed on drop.
struct Attr(libc::posix_spawnattr_t);

impl Attr {
    /// Attributes giving the child an empty signal mask and the default
    /// disposition of every signal (the parent may ignore `SIGPIPE`, as Rust
    /// programs do, and ignored signals survive `execve`).
    fn new() -> io::Result<Box<Attr>> {
        // SAFETY: an all-zero `posix_spawnattr_t` is a valid place for
        // `posix_spawnattr_init` (a plain C struct); boxed for a stable address.
        let mut a = Box::new(Attr(unsafe { std::mem::zeroed() }));
        // SAFETY: `a.0` is writable and initialised exactly once here.
        check_rc(unsafe { libc::posix_spawnattr_init(&mut a.0) })?;
        let mut empty = empty_sigset();
        let mut all = empty_sigset();
        // SAFETY: both sets are valid, initialised `sigset_t`s owned by this frame.
        unsafe {
            libc::sigemptyset(&mut empty);
            libc::sigfillset(&mut all);
        }
        let flags = (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short;
        // SAFETY: `a.0` was initialised above; the sets are copied in.
        unsafe {
            check_rc(libc::posix_spawnattr_setsigmask(&mut a.0, &empty))?;
            check_rc(libc::posix_spawnattr_setsigdefault(&mut a.0, &all))?;
            check_rc(libc::posix_spawnattr_setflags(&mut a.0, flags))?;
        }
        Ok(a)
    }
}

impl Drop for Attr {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once, here.
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

fn empty_sigset() -> libc::sigset_t {
    // SAFETY: `sigset_t` is a plain bit array; all-zero is a valid value
    // (and `sigemptyset` normalises it anyway).
    unsafe { std::mem::zeroed() }
}

fn check_rc(r: libc::c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(r))
    }
}

fn null_terminated(strings: &[CString]) -> Vec<*mut libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr().cast_mut())
        .chain(std::iter::once(ptr::null_mut()))
        .collect()
}

/// Starts `program` (searched in the parent's `PATH` when it has no `/`)
/// with `argv` and `envp`, after applying `actions` in the child.
///
/// Returns the child's pid; the error is the child's `execve` (or file
/// action) error as glibc reports it: `ENOENT`, `EACCES`, `ENOEXEC`, ...
pub(crate) fn spawnp(
    program: &CStr,
    argv: &[CString],
    envp: &[CString],
    actions: &[FileAction<'_>],
) -> io::Result<libc::pid_t> {
    let mut fa = Actions::new()?;
    for a in actions {
        fa.push(a)?;
    }
    let attr = Attr::new()?;
    let argv = null_terminated(argv);
    let envp = null_terminated(envp);
    let mut pid: libc::pid_t = 0;
    // SAFETY: [1] `program` is NUL-terminated; [2] `argv` and `envp` are
    // NULL-terminated arrays of pointers to NUL-terminated strings, all
    // borrowed from the caller's `CString`s which outlive the call (glibc
    // never writes through them); [3] `fa` and `attr` are initialised and
    // live until after the call; [4] `pid` is a valid out-pointer.
    let r = unsafe {
        libc::posix_spawnp(
            &mut pid,
            program.as_ptr(),
            &fa.0,
            &attr.0,
            argv.as_ptr(),
            envp.as_ptr(),
        )
    };
    check_rc(r)?;
    Ok(pid)
}

/// `pidfd_open(pid, 0)`: a descriptor that becomes readable when the child
/// exits and names this process even after its pid is reused.
pub(crate) fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: `pidfd_open` takes a pid and flags by value and touches no
    // memory of ours.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a fresh descriptor (close-on-exec by
    // kernel default) that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// `waitid(P_PIDFD, fd, WEXITED | WNOHANG)`: reaps the child if it has
/// exited and returns its wait status in the `waitpid` encoding; `None`
/// while it runs.
///
/// `ECHILD` means somebody else reaped it (`SIGCHLD` set to `SIG_IGN`, or a
/// `waitpid(-1)` elsewhere in the process).
pub(crate) fn pidfd_try_wait(fd: BorrowedFd<'_>) -> io::Result<Option<libc::c_int>> {
    loop {
        // SAFETY: `siginfo_t` is plain data; zeroed so `si_pid` reads 0 when
        // WNOHANG finds nothing to reap (as POSIX asks callers to do).
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid out-pointer for the duration of the call;
        // `fd` is a live pidfd borrowed for the call.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                fd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return Ok(None),
                Some(libc::ECHILD) => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        "the child was reaped by someone else: is SIGCHLD set to SIG_IGN, \
                         or does other code in this process call waitpid(-1)?",
                    ))
                }
                _ => return Err(e),
            }
        }
        // SAFETY: `waitid` returned 0, so `info` is either still zeroed or a
        // SIGCHLD siginfo filled by the kernel; both union reads are of
        // plain integers in the child-status layout.
        let (pid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        let raw = match code {
            libc::CLD_EXITED => (status & 0xff) << 8,
            libc::CLD_KILLED => status & 0x7f,
            libc::CLD_DUMPED => (status & 0x7f) | 0x80,
            other => {
                return Err(io::Error::other(format!(
                    "waitid reported an unexpected child state (si_code {other})"
                )))
            }
        };
        return Ok(Some(raw));
    }
}

/// `pidfd_send_signal(fd, sig, NULL, 0)`.
pub(crate) fn pidfd_send_signal(fd: BorrowedFd<'_>, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: `fd` is a live pidfd; a null siginfo asks the kernel to build
    // the default one; no memory of ours is touched.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            ptr::null::<libc::siginfo_t>(),
            0 as libc::c_uint,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Kills and reaps a child we could not open a pidfd for. Blocks until the
/// SIGKILL lands (immediate for a process that is not in an uninterruptible
/// sleep). The pid is ours until we reap it, so it cannot name a stranger.
pub(crate) fn kill_and_reap(pid: libc::pid_t) {
    // SAFETY: `pid` is our un-reaped child; kill takes integers by value.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer for the call.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// `pipe2(O_CLOEXEC)`: `(read end, write end)`, both blocking.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid two-int out-array.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `pipe2` succeeded, so both are fresh descriptors owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, min)`: a close-on-exec copy numbered at
/// least `min`.
pub(crate) fn dup_min(fd: BorrowedFd<'_>, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a live descriptor with an integer argument.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// Sets or clears `O_NONBLOCK` on the open file description of `fd`.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL on a live descriptor reads its flags; no memory is passed.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let next = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if next != flags {
        // SAFETY: F_SETFL with an integer flag word on a live descriptor.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, next) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Blocks the calling thread until at least one of `fds` is readable (or
/// hung up). Spurious returns are fine: callers retry their reads.
pub(crate) fn poll_readable(fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `pfds` is a valid array of `pfds.len()` pollfds for the call.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, -1) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}
