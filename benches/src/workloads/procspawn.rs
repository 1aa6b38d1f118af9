//! The `procspawn` workload: spawn and reap `/bin/true`, one child at a
//! time, from a process with 0 and with 200,000 live parked coroutines,
//! through pinstack's [`Command`](pinstack::process::Command)
//! (`posix_spawn` + pidfd) and through a plain `fork` + `execv` + `waitpid`.
//!
//! | metric               | pinstack                              | `fork`                         |
//! |----------------------|---------------------------------------|--------------------------------|
//! | `us_per_child`       | spawn + exit + reap, 200,000 live     | the same with `fork`, 200,000 live |
//! | `loaded_vs_unloaded` | pinstack's us with 200,000 live / with 0 | fork's us with 200,000 live / with 0 |
//!
//! # What runs
//!
//! Each measurement is a fresh child process of `compare`, in one of two
//! states: *unloaded* (a pinstack runtime, 2 workers, no other task) or
//! *loaded* (the same runtime with `N` coroutines each parked on its own
//! never-signalled oneshot channel, so the process maps `N` pooled stacks of
//! the default 64 KiB class, each with its touched pages). In that state
//! the child runs three arms, alternating, three rounds:
//!
//! ```text
//! measuring process (runtime alive; N coroutines parked, never resumed)
//!  ├─ pinstack: in a block_on task:  Command::new("/bin/true").status()  × K   (task suspends on the pidfd)
//!  ├─ fork:     on the main thread:  fork() ─ child: execv("/bin/true") or _exit(127)
//!  │                                 parent: waitpid(pid)                × K
//!  └─ std:      on the main thread:  std::process::Command::status()     × K   (context only)
//! ```
//!
//! The fork arm runs on a plain thread (the measuring process's main thread,
//! outside the runtime, its workers idle), in the same address space as the
//! parked coroutines; after `fork` the child calls only `execv` and `_exit`,
//! both async-signal-safe, with argv prepared before the fork. Every arm
//! checks every child's exit status: a child that did not exit 0 is an
//! error, so a figure always stands for `K` children that ran.
//!
//! Rust's `std::process::Command` uses `posix_spawn` where it can (as here),
//! so it is not a fork baseline; its figure goes to stderr as context.
//!
//! # Medians
//!
//! A child process reports, per arm, the median of its three rounds; the
//! parent runs three children per state, alternating states (unloaded,
//! loaded, unloaded, ...), and takes the median per arm and state. The
//! `loaded_vs_unloaded` quotient of each side is its loaded median over its
//! unloaded median.
//!
//! # Memory maps
//!
//! On kernels with `MADV_GUARD_INSTALL` (6.13+) the pool's guard pages do
//! not split mappings, so `N` parked coroutines cost a few hundred mappings
//! and the default `vm.max_map_count` suffices. With `mprotect` guards each
//! stack costs two; then, and only then, the workload raises
//! `vm.max_map_count` as root for its run (restoring it after) and says so
//! on stderr. Either way stderr shows the setting it ran with, and the
//! loaded child's mapping count, RSS and page-table size.

use std::ffi::CString;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::Instant;

use pinstack_stackpool::{GuardMode, StackPool};

use super::{Child, Opts, Workload};
use crate::child::{run_in_child, status_kib};
use crate::report::{median, Figure};
use crate::runtimes::{self, arg_or};
use crate::workloads::spawn::check_count;
use crate::Result;

/// The workload's registry entry.
pub const WORKLOAD: Workload = Workload {
    name: NAME,
    run,
    children: &[Child {
        name: "child",
        run: child_procspawn,
    }],
};

const NAME: &str = "procspawn";
/// The program every arm runs.
pub const PROGRAM: &str = "/bin/true";
/// Live parked coroutines of the loaded state in a full run.
pub const FULL_LIVE: u64 = 200_000;
/// Live parked coroutines of the loaded state in a `--quick` run.
pub const QUICK_LIVE: u64 = 50_000;
/// Children per arm and round, full run (a loaded fork takes tens to
/// hundreds of milliseconds on the 2-core VMs).
pub const FULL_PER_BATCH: u64 = 20;
/// Children per arm and round, `--quick` run.
pub const QUICK_PER_BATCH: u64 = 5;
/// Alternating rounds inside one measuring process.
pub const ROUNDS: usize = 3;
/// Measuring processes per state.
pub const PROCESSES: usize = 3;

/// What one measuring process saw: per-arm medians over its rounds, and the
/// state of the process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcRun {
    /// pinstack `Command`: wall microseconds per child (spawn + exit + reap).
    pub pinstack_us: f64,
    /// `fork` + `execv` + `waitpid`: wall microseconds per child.
    pub fork_us: f64,
    /// `std::process::Command::status`: wall microseconds per child.
    pub std_us: f64,
    /// CPU microseconds per child (see [`Batch::cpu_us_per_child`]),
    /// pinstack, fork, std.
    pub cpu_us: [f64; 3],
    /// Children that ran and exited 0, all arms and rounds.
    pub children: u64,
    /// `VmRSS` while the coroutines were parked, KiB.
    pub rss_kib: u64,
    /// `VmPTE` (page tables) while the coroutines were parked, KiB.
    pub pte_kib: u64,
    /// Lines of `/proc/self/maps` while the coroutines were parked.
    pub maps: u64,
}

impl ProcRun {
    fn line(&self) -> String {
        format!(
            "{} {} {} {} {} {} {} {} {} {}",
            self.pinstack_us,
            self.fork_us,
            self.std_us,
            self.cpu_us[0],
            self.cpu_us[1],
            self.cpu_us[2],
            self.children,
            self.rss_kib,
            self.pte_kib,
            self.maps
        )
    }

    fn parse(line: &str) -> Result<ProcRun> {
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("procspawn child printed {line:?}, not 6 numbers and 4 counts");
        if f.len() != 10 {
            return Err(bad().into());
        }
        let float = |s: &str| s.parse::<f64>().map_err(|_| bad());
        let count = |s: &str| s.parse::<u64>().map_err(|_| bad());
        Ok(ProcRun {
            pinstack_us: float(f[0])?,
            fork_us: float(f[1])?,
            std_us: float(f[2])?,
            cpu_us: [float(f[3])?, float(f[4])?, float(f[5])?],
            children: count(f[6])?,
            rss_kib: count(f[7])?,
            pte_kib: count(f[8])?,
            maps: count(f[9])?,
        })
    }
}

/// A batch's result: time per child, and how many children exited 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Batch {
    /// Wall time of the batch / children, microseconds.
    pub us_per_child: f64,
    /// CPU time of the batch / children, microseconds: this process (all
    /// threads, user + system) plus its reaped children, from `getrusage`.
    /// Less sensitive than wall time to other processes on the machine.
    pub cpu_us_per_child: f64,
    /// Children that ran and exited 0 (every one, or the batch fails).
    pub ok: u64,
}

fn check_status(arm: &str, program: &str, status: ExitStatus) -> Result<()> {
    if status.success() {
        Ok(())
    } else {
        Err(format!("procspawn ({arm}): {program} ended with {status}").into())
    }
}

/// CPU seconds used so far by this process and its reaped children.
fn cpu_seconds() -> f64 {
    let secs = |who| {
        // SAFETY: rusage is plain data, for which all zeroes is valid.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `u` is a valid out pointer; `who` is RUSAGE_SELF or
        // RUSAGE_CHILDREN, so the call cannot fail.
        unsafe { libc::getrusage(who, &mut u) };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
        tv(u.ru_utime) + tv(u.ru_stime)
    };
    secs(libc::RUSAGE_SELF) + secs(libc::RUSAGE_CHILDREN)
}

/// The start of a timed batch: wall clock and CPU time.
struct Clock {
    wall: Instant,
    cpu: f64,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            cpu: cpu_seconds(),
            wall: Instant::now(),
        }
    }

    fn batch(&self, ok: u64) -> Batch {
        let wall = self.wall.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - self.cpu;
        let per = |secs: f64| secs * 1e6 / ok.max(1) as f64;
        Batch {
            us_per_child: per(wall),
            cpu_us_per_child: per(cpu),
            ok,
        }
    }
}

/// pinstack: `k` times `Command::new(program).status()` in a task of `rt`
/// (the task suspends on the child's pidfd; the clock runs inside the task).
///
/// # Errors
///
/// A spawn or wait error, or a child that did not exit 0.
pub fn pinstack_batch(rt: &pinstack::Runtime, program: &str, k: u64) -> Result<Batch> {
    let program = program.to_string();
    rt.block_on(move || -> Result<Batch> {
        let clock = Clock::start();
        let mut ok = 0;
        for _ in 0..k {
            let status = pinstack::process::Command::new(&program)
                .status()
                .map_err(|e| format!("procspawn (pinstack): {program}: {e}"))?;
            check_status("pinstack", &program, status)?;
            ok += 1;
        }
        Ok(clock.batch(ok))
    })
}

/// One `fork` + `execv(program)` + `waitpid`, on the calling thread.
fn fork_exec_wait(program: &CString) -> Result<ExitStatus> {
    let argv = [program.as_ptr(), std::ptr::null()];
    // SAFETY: fork has no preconditions; in the child (pid 0) only the
    // async-signal-safe execv and _exit run, on argv built before the fork,
    // so the other threads' locks and state do not matter there.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: argv is a NUL-terminated array of pointers to C strings
        // that outlive the call; _exit does not return.
        unsafe {
            libc::execv(program.as_ptr(), argv.as_ptr());
            libc::_exit(127)
        }
    }
    if pid < 0 {
        return Err(format!("procspawn (fork): fork: {}", std::io::Error::last_os_error()).into());
    }
    let mut status = 0;
    loop {
        // SAFETY: pid is our child, not yet reaped; status is a valid out
        // pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(ExitStatus::from_raw(status));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("procspawn (fork): waitpid({pid}): {e}").into());
        }
    }
}

/// fork: `k` times `fork` + `execv(program)` + `waitpid` on the calling
/// (plain) thread. A failed `execv` shows as exit status 127.
///
/// # Errors
///
/// A fork or wait error, or a child that did not exit 0.
pub fn fork_batch(program: &str, k: u64) -> Result<Batch> {
    let c = CString::new(program).map_err(|e| format!("procspawn (fork): {e}"))?;
    let clock = Clock::start();
    let mut ok = 0;
    for _ in 0..k {
        check_status("fork", program, fork_exec_wait(&c)?)?;
        ok += 1;
    }
    Ok(clock.batch(ok))
}

/// std: `k` times `std::process::Command::new(program).status()` on the
/// calling thread (std uses `posix_spawn` here: context, not a fork figure).
///
/// # Errors
///
/// A spawn or wait error, or a child that did not exit 0.
pub fn std_batch(program: &str, k: u64) -> Result<Batch> {
    let clock = Clock::start();
    let mut ok = 0;
    for _ in 0..k {
        let status = std::process::Command::new(program)
            .status()
            .map_err(|e| format!("procspawn (std): {program}: {e}"))?;
        check_status("std", program, status)?;
        ok += 1;
    }
    Ok(clock.batch(ok))
}

/// `live` coroutines of `rt`, each parked on its own oneshot channel until
/// [`Parked::release`].
pub struct Parked {
    senders: Vec<pinstack::sync::oneshot::Sender<()>>,
    handles: Vec<pinstack::JoinHandle<bool>>,
}

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parked")
            .field("live", &self.handles.len())
            .finish()
    }
}

impl Parked {
    /// Spawns `live` coroutines on `rt` and returns once every one is parked.
    ///
    /// # Errors
    ///
    /// A failed spawn.
    pub fn new(rt: &pinstack::Runtime, live: u64) -> Result<Parked> {
        use pinstack::sync::oneshot;
        rt.block_on(move || -> Result<Parked> {
            let parked = Arc::new(AtomicU64::new(0));
            let mut senders = Vec::with_capacity(live as usize);
            let mut handles = Vec::with_capacity(live as usize);
            for _ in 0..live {
                let (tx, rx) = oneshot::channel::<()>();
                let parked = parked.clone();
                handles.push(pinstack::task::Builder::new().spawn(move || {
                    parked.fetch_add(1, Release);
                    rx.recv().is_err()
                })?);
                senders.push(tx);
            }
            while parked.load(Acquire) < live {
                pinstack::yield_now();
            }
            Ok(Parked { senders, handles })
        })
    }

    /// Releases every coroutine (drops the senders) and joins them.
    ///
    /// # Errors
    ///
    /// A failed join, or a coroutine that was woken by anything else.
    pub fn release(self, rt: &pinstack::Runtime) -> Result<()> {
        let Parked { senders, handles } = self;
        let live = handles.len() as u64;
        drop(senders);
        rt.block_on(move || -> Result<()> {
            let mut released = 0;
            for h in handles {
                released += u64::from(h.join().map_err(|e| format!("procspawn: join: {e}"))?);
            }
            check_count("procspawn parked coroutines released", released, live)
        })
    }
}

fn maps_lines() -> Result<u64> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    Ok(maps.lines().count() as u64)
}

/// One measuring process's work: parks `live` coroutines on a fresh
/// runtime, then runs `rounds` alternating rounds of `per_batch` children
/// per arm (pinstack, fork, std), then releases the coroutines.
///
/// # Errors
///
/// As the batches and [`Parked`]; or a child count other than
/// `3 * rounds * per_batch`.
pub fn measure(live: u64, per_batch: u64, rounds: usize, program: &str) -> Result<ProcRun> {
    let rt = runtimes::pinstack()?;
    let parked = Parked::new(&rt, live)?;
    let (rss_kib, pte_kib, maps) = (status_kib("VmRSS")?, status_kib("VmPTE")?, maps_lines()?);
    // One untimed child per arm: the first spawn pays one-time costs (PATH
    // lookup caches, the pidfd's first registration, page faults in libc).
    let mut children = pinstack_batch(&rt, program, 1)?.ok
        + fork_batch(program, 1)?.ok
        + std_batch(program, 1)?.ok;
    // Wall and CPU samples of the arms: pinstack, fork, std.
    let mut wall: [Vec<f64>; 3] = Default::default();
    let mut cpu: [Vec<f64>; 3] = Default::default();
    for _ in 0..rounds.max(1) {
        let arms = [
            pinstack_batch(&rt, program, per_batch)?,
            fork_batch(program, per_batch)?,
            std_batch(program, per_batch)?,
        ];
        for (i, arm) in arms.iter().enumerate() {
            children += arm.ok;
            wall[i].push(arm.us_per_child);
            cpu[i].push(arm.cpu_us_per_child);
        }
    }
    parked.release(&rt)?;
    check_count(
        "procspawn children",
        children,
        3 * (rounds.max(1) as u64 * per_batch + 1),
    )?;
    Ok(ProcRun {
        pinstack_us: median(&wall[0]),
        fork_us: median(&wall[1]),
        std_us: median(&wall[2]),
        cpu_us: [median(&cpu[0]), median(&cpu[1]), median(&cpu[2])],
        children,
        rss_kib,
        pte_kib,
        maps,
    })
}

/// Child: `procspawn.child LIVE PER_BATCH`: one [`measure`] of
/// [`PROGRAM`] in this fresh process; prints [`ProcRun`]'s fields.
fn child_procspawn(args: &[String]) -> Result<String> {
    let live = arg_or(args, 0, FULL_LIVE)?;
    let per_batch = arg_or(args, 1, FULL_PER_BATCH)?;
    Ok(measure(live, per_batch, ROUNDS, PROGRAM)?.line())
}

const MAX_MAP_COUNT: &str = "/proc/sys/vm/max_map_count";

fn read_max_map_count() -> Result<u64> {
    let s = std::fs::read_to_string(MAX_MAP_COUNT)?;
    Ok(s.trim()
        .parse()
        .map_err(|e| format!("{MAX_MAP_COUNT}: {s:?}: {e}"))?)
}

/// `vm.max_map_count` for the run: raised (and restored on drop) only when
/// the pool's guards split mappings and the limit is too low.
struct MapCount {
    value: u64,
    restore: Option<u64>,
}

impl MapCount {
    fn for_live(live: u64) -> Result<MapCount> {
        let value = read_max_map_count()?;
        let mode = StackPool::builder()
            .max_stacks(1)
            .build()
            .map_err(|e| format!("procspawn: probing the guard mode: {e}"))?
            .guard_mode();
        // mprotect guards: two mappings per stack; the pools use at most
        // 7/8 of the limit; leave room for everything else.
        let needed = if mode == GuardMode::Mprotect {
            (2 * live + 10_000) * 8 / 7
        } else {
            0
        };
        if value >= needed {
            return Ok(MapCount {
                value,
                restore: None,
            });
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(format!(
                "procspawn: {live} coroutines with mprotect guards need vm.max_map_count >= \
                 {needed} (it is {value}); run as root or raise it"
            )
            .into());
        }
        std::fs::write(MAX_MAP_COUNT, needed.to_string())
            .map_err(|e| format!("procspawn: raising vm.max_map_count to {needed}: {e}"))?;
        eprintln!(
            "procspawn: mprotect guards: raised vm.max_map_count from {value} to {needed} \
             for this run"
        );
        Ok(MapCount {
            value: needed,
            restore: Some(value),
        })
    }
}

impl Drop for MapCount {
    fn drop(&mut self) {
        if let Some(old) = self.restore {
            if let Err(e) = std::fs::write(MAX_MAP_COUNT, old.to_string()) {
                eprintln!("procspawn: could not restore vm.max_map_count to {old}: {e}");
            }
        }
    }
}

fn run(opts: &Opts) -> Result<Vec<Figure>> {
    let live = opts.size(FULL_LIVE, QUICK_LIVE);
    let per_batch = if opts.quick {
        QUICK_PER_BATCH
    } else {
        FULL_PER_BATCH
    };
    let map_count = MapCount::for_live(live)?;
    let per_arg = per_batch.to_string();
    let mut unloaded = Vec::new();
    let mut loaded = Vec::new();
    for _ in 0..PROCESSES {
        for (l, out) in [(0, &mut unloaded), (live, &mut loaded)] {
            let line = run_in_child("procspawn.child", &[&l.to_string(), &per_arg])?;
            out.push(ProcRun::parse(&line)?);
        }
    }
    let med = |runs: &[ProcRun], f: fn(&ProcRun) -> f64| {
        median(&runs.iter().map(f).collect::<Vec<_>>())
    };
    let (p0, f0, s0) = (
        med(&unloaded, |r| r.pinstack_us),
        med(&unloaded, |r| r.fork_us),
        med(&unloaded, |r| r.std_us),
    );
    let (p1, f1, s1) = (
        med(&loaded, |r| r.pinstack_us),
        med(&loaded, |r| r.fork_us),
        med(&loaded, |r| r.std_us),
    );
    let cpu = |runs: &[ProcRun], i: usize| {
        median(&runs.iter().map(|r| r.cpu_us[i]).collect::<Vec<_>>())
    };
    let l = &loaded[0];
    eprintln!(
        "procspawn: live={live}, {per_batch} children per arm x {ROUNDS} rounds x {PROCESSES} \
         processes per state, vm.max_map_count={} ({}); loaded process: {} maps, VmRSS {} MiB, \
         VmPTE {} KiB; us/child unloaded -> loaded: pinstack {p0:.1} -> {p1:.1}, \
         fork {f0:.1} -> {f1:.1}, std::process::Command (posix_spawn, context) {s0:.1} -> {s1:.1}; \
         CPU us/child (process + reaped children) unloaded -> loaded: pinstack {:.1} -> {:.1}, \
         fork {:.1} -> {:.1}, std {:.1} -> {:.1}",
        map_count.value,
        if map_count.restore.is_some() {
            "raised for this run"
        } else {
            "as found"
        },
        l.maps,
        l.rss_kib / 1024,
        l.pte_kib,
        cpu(&unloaded, 0),
        cpu(&loaded, 0),
        cpu(&unloaded, 1),
        cpu(&loaded, 1),
        cpu(&unloaded, 2),
        cpu(&loaded, 2),
    );
    drop(map_count);
    Ok(vec![
        Figure::lower(NAME, "us_per_child", live, p1, "fork", f1),
        Figure::lower(NAME, "loaded_vs_unloaded", live, p1 / p0, "fork", f1 / f0).with_decimals(2),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_arm_runs_children_and_checks_their_status() {
        let rt = runtimes::pinstack().unwrap();
        let parked = Parked::new(&rt, 1_000).unwrap();
        assert_eq!(pinstack_batch(&rt, PROGRAM, 3).unwrap().ok, 3);
        assert_eq!(fork_batch(PROGRAM, 3).unwrap().ok, 3);
        assert_eq!(std_batch(PROGRAM, 3).unwrap().ok, 3);
        // A child that exits 1, or whose exec fails (127), is an error.
        let err = pinstack_batch(&rt, "/bin/false", 1).unwrap_err().to_string();
        assert!(err.contains("pinstack") && err.contains("/bin/false"), "{err}");
        let err = fork_batch("/bin/false", 1).unwrap_err().to_string();
        assert!(err.contains("exit status: 1"), "{err}");
        let err = fork_batch("/nonexistent/true", 1).unwrap_err().to_string();
        assert!(err.contains("exit status: 127"), "{err}");
        assert!(std_batch("/bin/false", 1).is_err());
        parked.release(&rt).unwrap();
    }

    #[test]
    fn measure_counts_every_child_and_sees_the_parked_stacks() {
        let r = measure(2_000, 2, 2, PROGRAM).unwrap();
        assert_eq!(r.children, 3 * (2 * 2 + 1));
        assert!(r.pinstack_us > 0.0 && r.fork_us > 0.0 && r.std_us > 0.0, "{r:?}");
        // 2,000 parked coroutines touch at least one 4 KiB stack page each.
        assert!(r.rss_kib >= 8_000, "{r:?}");
        assert_eq!(ProcRun::parse(&r.line()).unwrap(), r);
        assert!(ProcRun::parse("1 2 3").is_err());
        assert!(ProcRun::parse("1 2 3 4 5 6 x 8 9 10").is_err());
    }
}
