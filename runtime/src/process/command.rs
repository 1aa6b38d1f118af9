//! `Command`: the builder, and the one path that turns it into a child.
//!
//! `spawn` runs in three phases, so that once a child exists nothing can
//! fail except opening its pidfd (and that failure kills and reaps it):
//!
//! 1. Prepare: C strings for argv and envp, the program path, the three
//!    stdio slots (pipes created, the parent's ends made non-blocking,
//!    every descriptor the child must `dup2` moved above 2).
//! 2. `posix_spawnp` (see `sys.rs`): `clone(CLONE_VM | CLONE_VFORK)`, the
//!    file actions in the child, `execve`. The parent resumes once the
//!    child has exec'd or failed; a failure comes back as its errno.
//! 3. `pidfd_open`, and the parent's pipe ends wrapped into the `Child`.
//!
//! The child-side pipe ends and temporary copies live in `Prepared` and are
//! closed in the parent when it drops, after the spawn.

use super::child::Child;
use super::stdio::{ChildStderr, ChildStdin, ChildStdout, Repr, Stdio};
use super::sys::{self, FileAction};
use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output};

/// A child process builder, as `std::process::Command`, whose children are
/// started with `posix_spawn` (never `fork`) and waited for without
/// blocking the worker thread.
///
/// By default [`spawn`](Command::spawn) and [`status`](Command::status)
/// inherit the parent's stdin, stdout and stderr; [`output`](Command::output)
/// gives the child `/dev/null` as stdin and captures stdout and stderr.
///
/// # Examples
///
/// ```
/// use pinstack::process::Command;
///
/// let rt = pinstack::Runtime::new()?;
/// let out = rt.block_on(|| Command::new("sh").args(["-c", "echo hi; exit 3"]).output())?;
/// assert_eq!(out.stdout, b"hi\n");
/// assert_eq!(out.status.code(), Some(3));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    clear_env: bool,
    /// `Some(value)` sets, `None` removes.
    env: BTreeMap<OsString, Option<OsString>>,
    cwd: Option<PathBuf>,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
    kill_on_drop: bool,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env_clear", &self.clear_env)
            .field("env", &self.env)
            .field("current_dir", &self.cwd)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .field("kill_on_drop", &self.kill_on_drop)
            .finish()
    }
}

impl Command {
    /// A command running `program`: a path, or a name searched in `PATH`
    /// (the `PATH` given with [`env`](Command::env) if any, else the
    /// parent's).
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            clear_env: false,
            env: BTreeMap::new(),
            cwd: None,
            stdin: None,
            stdout: None,
            stderr: None,
            kill_on_drop: false,
        }
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.env
            .insert(key.as_ref().to_owned(), Some(val.as_ref().to_owned()));
        self
    }

    /// Sets several environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self.env(k, v);
        }
        self
    }

    /// Removes an environment variable (inherited or set earlier).
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        let key = key.as_ref().to_owned();
        if self.clear_env {
            self.env.remove(&key);
        } else {
            self.env.insert(key, None);
        }
        self
    }

    /// Starts the child with no environment except what is set afterwards.
    pub fn env_clear(&mut self) -> &mut Command {
        self.clear_env = true;
        self.env.clear();
        self
    }

    /// The child's working directory. A relative program path (`./run.sh`)
    /// is then resolved against this directory, since the child changes
    /// directory before `execve`.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// The child's standard input.
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.stdin = Some(cfg.into());
        self
    }

    /// The child's standard output.
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.stdout = Some(cfg.into());
        self
    }

    /// The child's standard error.
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.stderr = Some(cfg.into());
        self
    }

    /// Whether dropping the [`Child`] un-waited sends it `SIGKILL` (default
    /// `false`, as std: the child keeps running). Either way the dropped
    /// child is reaped once it exits (see the module docs).
    pub fn kill_on_drop(&mut self, kill: bool) -> &mut Command {
        self.kill_on_drop = kill;
        self
    }

    /// Starts the child.
    ///
    /// The calling thread is held only for the `clone` + `execve` of the
    /// child (it shares the address space until then), independent of how
    /// much memory the parent maps.
    ///
    /// # Errors
    ///
    /// `NotFound` naming the program (or the missing `current_dir`),
    /// `PermissionDenied` for a file that is not executable, `InvalidInput`
    /// for a NUL byte in an argument or variable, or the OS error (out of
    /// processes, descriptors or memory) with what was being done.
    pub fn spawn(&mut self) -> io::Result<Child> {
        self.spawn_with(Repr::Inherit, Repr::Inherit, Repr::Inherit)
    }

    /// Runs the child to completion and collects its output. Stdin is
    /// `/dev/null` unless set; stdout and stderr are captured unless set.
    ///
    /// Suspends the calling task (not the worker) while the child runs; on
    /// a plain thread, blocks it.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Command::spawn), or a read or wait error.
    pub fn output(&mut self) -> io::Result<Output> {
        self.spawn_with(Repr::Null, Repr::Piped, Repr::Piped)?
            .wait_with_output()
    }

    /// Runs the child to completion (stdio inherited unless set) and
    /// returns how it ended.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Command::spawn), or a wait error.
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn_with(Repr::Inherit, Repr::Inherit, Repr::Inherit)?
            .wait()
    }

    fn spawn_with(&mut self, d_in: Repr, d_out: Repr, d_err: Repr) -> io::Result<Child> {
        let name = self.program.to_string_lossy().into_owned();
        let mut p = Prepared::default();
        let program = self.resolve_program(&name)?;
        let argv = std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| cstring(a.as_bytes(), "an argument"))
            .collect::<io::Result<Vec<_>>>()?;
        let envp = self.envp()?;
        let cwd = match &self.cwd {
            Some(d) => Some(cstring(d.as_os_str().as_bytes(), "current_dir")?),
            None => None,
        };
        let stdin = p.slot(self.stdin.as_ref().map_or(&d_in, |s| &s.0), 0)?;
        let stdout = p.slot(self.stdout.as_ref().map_or(&d_out, |s| &s.0), 1)?;
        let stderr = p.slot(self.stderr.as_ref().map_or(&d_err, |s| &s.0), 2)?;
        let stdin = stdin.map(ChildStdin::new).transpose()?;
        let stdout = stdout.map(ChildStdout::new).transpose()?;
        let stderr = stderr.map(ChildStderr::new).transpose()?;

        let mut actions = Vec::with_capacity(4);
        if let Some(c) = &cwd {
            actions.push(FileAction::Chdir(c));
        }
        actions.extend(p.actions.iter().map(|a| a.as_action()));
        let pid = sys::spawnp(&program, &argv, &envp, &actions)
            .map_err(|e| self.spawn_error(&name, e))?;
        drop(actions);
        // Close the child's ends in the parent, so end of file reaches us
        // once the child (and its descendants) close theirs.
        drop(p);

        let pidfd = match sys::pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) => {
                sys::kill_and_reap(pid);
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "pidfd_open for `{name}` (pid {pid}) failed, so the child was killed: {e} \
                         (pinstack needs Linux 5.3 or later and a free descriptor)"
                    ),
                ));
            }
        };
        Ok(Child::new(
            pid as u32,
            pidfd,
            self.kill_on_drop,
            stdin,
            stdout,
            stderr,
        ))
    }

    /// The path handed to `posix_spawnp`: the program itself, unless it is a
    /// bare name and this command sets `PATH`, in which case the child's
    /// `PATH` is searched here (glibc would search the parent's).
    fn resolve_program(&self, name: &str) -> io::Result<CString> {
        let bytes = self.program.as_bytes();
        if bytes.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the program name is empty",
            ));
        }
        let Some(Some(path)) = self.env.get(OsStr::new("PATH")) else {
            return cstring(bytes, "the program name");
        };
        if bytes.contains(&b'/') {
            return cstring(bytes, "the program name");
        }
        for dir in std::env::split_paths(path) {
            let candidate = dir.join(&self.program);
            let executable = std::fs::metadata(&candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            if executable {
                return cstring(candidate.as_os_str().as_bytes(), "the program path");
            }
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "program `{name}` not found in the PATH set for it ({})",
                path.to_string_lossy()
            ),
        ))
    }

    /// `KEY=value` strings: the parent's environment (unless cleared) with
    /// this command's changes applied.
    fn envp(&self) -> io::Result<Vec<CString>> {
        let mut vars: BTreeMap<OsString, OsString> = if self.clear_env {
            BTreeMap::new()
        } else {
            std::env::vars_os().collect()
        };
        for (k, v) in &self.env {
            match v {
                Some(v) => vars.insert(k.clone(), v.clone()),
                None => vars.remove(k),
            };
        }
        vars.into_iter()
            .map(|(k, v)| {
                if k.is_empty() || k.as_bytes().contains(&b'=') {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "environment variable name {k:?} is empty or contains '=': \
                             it cannot be passed to a child"
                        ),
                    ));
                }
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                cstring(&kv, "an environment variable")
            })
            .collect()
    }

    fn spawn_error(&self, name: &str, e: io::Error) -> io::Error {
        let detail = e.to_string();
        match e.raw_os_error() {
            Some(libc::ENOENT) => {
                if let Some(dir) = &self.cwd {
                    if !dir.is_dir() {
                        return io::Error::new(
                            io::ErrorKind::NotFound,
                            format!(
                                "cannot start `{name}`: current_dir `{}` does not exist",
                                dir.display()
                            ),
                        );
                    }
                }
                let where_ = if self.program.as_bytes().contains(&b'/') {
                    "no such file".to_owned()
                } else {
                    let path = std::env::var_os("PATH").unwrap_or_default();
                    format!("not found in PATH ({})", path.to_string_lossy())
                };
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("program `{name}`: {where_}"),
                )
            }
            Some(libc::EACCES) => io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "program `{name}` cannot be executed: permission denied \
                     (not executable, or a directory on its path or current_dir \
                     is not searchable)"
                ),
            ),
            Some(libc::ENOEXEC) => io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("program `{name}` is not an executable format the kernel knows"),
            ),
            _ => io::Error::new(e.kind(), format!("spawning `{name}`: {detail}")),
        }
    }
}

fn cstring(bytes: &[u8], what: &str) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{what} contains a NUL byte and cannot be passed to a child: {:?}",
                String::from_utf8_lossy(bytes)
            ),
        )
    })
}

const DEV_NULL: &CStr = c"/dev/null";

/// A file action owning what it refers to.
enum Action {
    Dup2 {
        fd: OwnedFd,
        target: i32,
    },
    /// `dup2` of a descriptor the `Command` owns (a `Stdio::from(fd)`).
    Dup2Borrowed {
        fd: i32,
        target: i32,
    },
    OpenNull {
        target: i32,
        flags: i32,
    },
}

impl Action {
    fn as_action(&self) -> FileAction<'_> {
        match self {
            Action::Dup2 { fd, target } => FileAction::Dup2 {
                fd: fd.as_raw_fd(),
                target: *target,
            },
            Action::Dup2Borrowed { fd, target } => FileAction::Dup2 {
                fd: *fd,
                target: *target,
            },
            Action::OpenNull { target, flags } => FileAction::Open {
                target: *target,
                path: DEV_NULL,
                flags: *flags,
            },
        }
    }
}

/// What a spawn holds until the child has started.
#[derive(Default)]
struct Prepared {
    actions: Vec<Action>,
}

impl Prepared {
    /// Sets up slot `target` (0, 1 or 2); returns the parent's pipe end for
    /// `Piped`.
    fn slot(&mut self, how: &Repr, target: i32) -> io::Result<Option<OwnedFd>> {
        let name = ["stdin", "stdout", "stderr"][target as usize];
        match how {
            Repr::Inherit => Ok(None),
            Repr::Null => {
                let flags = if target == 0 {
                    libc::O_RDONLY
                } else {
                    libc::O_WRONLY
                };
                self.actions.push(Action::OpenNull { target, flags });
                Ok(None)
            }
            Repr::Piped => {
                let (r, w) = sys::pipe().map_err(|e| {
                    io::Error::new(e.kind(), format!("creating the {name} pipe: {e}"))
                })?;
                let (child, parent) = if target == 0 { (r, w) } else { (w, r) };
                let child = above_stdio(child)?;
                self.actions.push(Action::Dup2 { fd: child, target });
                Ok(Some(parent))
            }
            Repr::Fd(fd) => {
                if fd.as_raw_fd() <= 2 {
                    let copy = dup_above_stdio(fd.as_fd())?;
                    self.actions.push(Action::Dup2 { fd: copy, target });
                } else {
                    self.actions.push(Action::Dup2Borrowed {
                        fd: fd.as_raw_fd(),
                        target,
                    });
                }
                Ok(None)
            }
            Repr::Failed(kind, msg) => Err(io::Error::new(*kind, format!("{name}: {msg}"))),
        }
    }
}

/// A child-side descriptor numbered 0..=2 (possible when the parent closed
/// its own stdio) could be overwritten by an earlier `dup2` in the child;
/// move it above 2.
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    dup_above_stdio(fd.as_fd())
}

fn dup_above_stdio(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    sys::dup_min(fd, 3).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("duplicating a descriptor for the child: {e}"),
        )
    })
}
