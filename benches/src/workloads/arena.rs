//! The `arena` workload: 1,000,000 requests on the 2 workers of a pinstack
//! runtime, their memory from a per-request arena (`pinstack::arena`) or
//! from the global allocator (`malloc`). Only where memory comes from
//! differs between the arms.
//!
//! | metric           | what                                                   |
//! |------------------|--------------------------------------------------------|
//! | `ns_per_request` | wall time of all requests / requests                   |
//! | `peak_rss_mib`   | `VmHWM` of the child process that ran them             |
//! | `rss_growth_pct` | `VmRSS` at the end vs after the first tenth, percent   |
//!
//! A request (BENCHMARKS.md): 50 objects whose sizes cycle 16, 32, 64, 128,
//! 256 bytes, every byte written, all alive until the request ends, one byte
//! of each added to a checksum; then a string of about 1 KiB built by
//! `write!`-ing 32 integers and 32 copies of a 16-byte word separated by
//! spaces, its length added to the checksum. The arena arm opens
//! `with_arena` per request; the malloc arm uses `Box<[u8]>`, `Vec` and
//! `String`. An object is filled with one byte value (derived from the
//! request and object numbers) the idiomatic way of each arm:
//! `alloc_slice_fill_copy` and `vec![v; size]`; `black_box` keeps the
//! writes. (A per-byte computed pattern was tried first: its arithmetic,
//! the same in both arms, then dominated the arena arm.)
//!
//! Each arm runs in a fresh child process (three alternating runs each):
//!
//! ```text
//! child: runtime ─ [phase 1: first tenth of the requests] ─ VmRSS₁
//!                ─ [phase 2: the rest] ─ VmRSS₂, VmHWM
//! a phase: TASKS tasks, each a contiguous range of request numbers;
//!          the clock runs over both phases (the RSS read between is not timed)
//! ```
//!
//! The checksums of both arms must agree; the workload prints it to stderr.

use std::fmt::Write;
use std::hint::black_box;
use std::time::{Duration, Instant};

use super::{Child, Opts, Workload};
use crate::child::{peak_rss_kib, rss_kib, run_in_child};
use crate::report::{alternating, ns_per, Figure};
use crate::runtimes::{self, arg_or};
use crate::Result;

/// The workload's registry entry.
pub const WORKLOAD: Workload = Workload {
    name: NAME,
    run,
    children: &[Child {
        name: "child",
        run: child_arena,
    }],
};

const NAME: &str = "arena";
/// Requests of a full run.
pub const FULL_REQUESTS: u64 = 1_000_000;
/// Requests of a `--quick` run.
pub const QUICK_REQUESTS: u64 = 200_000;
/// Objects per request.
pub const OBJECTS: usize = 50;
/// Their sizes, cycled.
pub const SIZES: [usize; 5] = [16, 32, 64, 128, 256];
/// The word written 32 times into the string (16 bytes).
pub const WORD: &str = "pinstack-arena16";
/// Integers and words written into the string.
pub const PIECES: u64 = 32;
/// Tasks per phase: more than the workers, so stealing spreads them.
const TASKS: u64 = 16;

/// Where a request's memory comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arm {
    /// `pinstack::arena::with_arena`.
    Arena,
    /// The global allocator.
    Malloc,
    /// Profiling only, never a `compare` figure: the same work with no
    /// allocator at all (objects carved from a stack buffer, the string
    /// written into a fixed stack buffer). Its instruction count is the
    /// work common to both arms, so `arm - baseline` is an arm's
    /// allocation cost.
    Baseline,
}

impl Arm {
    fn name(self) -> &'static str {
        match self {
            Arm::Arena => "arena",
            Arm::Malloc => "malloc",
            Arm::Baseline => "baseline",
        }
    }

    fn parse(s: Option<&String>) -> Result<Arm> {
        match s.map(String::as_str) {
            Some("arena") => Ok(Arm::Arena),
            Some("malloc") => Ok(Arm::Malloc),
            Some("baseline") => Ok(Arm::Baseline),
            other => Err(
                format!("arena child: arm {other:?} is not arena, malloc or baseline").into(),
            ),
        }
    }

    /// Runs request `req` and returns its checksum contribution.
    pub fn request(self, req: u64) -> std::result::Result<u64, std::fmt::Error> {
        match self {
            Arm::Arena => request_arena(req),
            Arm::Malloc => request_malloc(req),
            Arm::Baseline => request_baseline(req),
        }
    }
}

/// The value written to every byte of object `obj` of request `req`.
#[inline(always)]
fn fill(req: u64, obj: usize) -> u8 {
    (req as usize ^ obj.wrapping_mul(31)) as u8
}

/// The byte of an object that goes into the checksum.
#[inline(always)]
fn probe(req: u64, obj: usize, size: usize) -> usize {
    (req as usize).wrapping_add(obj) % size
}

/// One request with its memory from the worker's arena pool.
///
/// Both arms compute the same checksum for the same request:
///
/// ```
/// use pinstack_benches::workloads::arena::{request_arena, request_malloc};
/// assert_eq!(request_arena(42).unwrap(), request_malloc(42).unwrap());
/// ```
///
/// # Errors
///
/// When formatting into the arena string fails (its limit refused memory).
pub fn request_arena(req: u64) -> std::result::Result<u64, std::fmt::Error> {
    pinstack::arena::with_arena(|a| {
        let mut sum = 0u64;
        let mut objects = a.vec_with_capacity(OBJECTS);
        for i in 0..OBJECTS {
            let size = SIZES[i % SIZES.len()];
            let o: &mut [u8] = a.alloc_slice_fill_copy(size, fill(req, i));
            sum += u64::from(o[probe(req, i, size)]);
            objects.push(o);
        }
        black_box(&mut objects);
        let mut s = a.string();
        for k in 0..PIECES {
            write!(s, "{} {} ", req * 1_000_003 + k, WORD)?;
        }
        black_box(&mut s);
        Ok(sum + s.len() as u64)
    })
}

/// The same request with its memory from the global allocator.
///
/// # Errors
///
/// When formatting into the string fails (it does not with `String`).
pub fn request_malloc(req: u64) -> std::result::Result<u64, std::fmt::Error> {
    let mut sum = 0u64;
    let mut objects: Vec<Box<[u8]>> = Vec::with_capacity(OBJECTS);
    for i in 0..OBJECTS {
        let size = SIZES[i % SIZES.len()];
        let o: Box<[u8]> = vec![fill(req, i); size].into_boxed_slice();
        sum += u64::from(o[probe(req, i, size)]);
        objects.push(o);
    }
    black_box(&mut objects);
    let mut s = String::new();
    for k in 0..PIECES {
        write!(s, "{} {} ", req * 1_000_003 + k, WORD)?;
    }
    black_box(&mut s);
    Ok(sum + s.len() as u64)
}

/// Bytes of the 50 objects of one request: 10 x (16 + 32 + 64 + 128 + 256).
const OBJECT_BYTES: usize = 4960;

/// The stack-like buffers of [`request_baseline`], per thread so that no
/// request pays for zeroing them.
struct Buffers {
    objects: [u8; OBJECT_BYTES],
    string: [u8; 2048],
}

std::thread_local! {
    static BUFFERS: std::cell::RefCell<Buffers> = const {
        std::cell::RefCell::new(Buffers {
            objects: [0; OBJECT_BYTES],
            string: [0; 2048],
        })
    };
}

/// A fixed buffer for [`request_baseline`]'s string: `write_str` is a bounds
/// check and a `copy_from_slice`, the least any string must do.
struct FixedString<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Write for FixedString<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The request's work without any allocator, for profiling ([`Arm::Baseline`]):
/// the same fills, checksum bytes and formatting, into per-thread buffers.
///
/// ```
/// use pinstack_benches::workloads::arena::{request_baseline, request_malloc};
/// assert_eq!(request_baseline(42).unwrap(), request_malloc(42).unwrap());
/// ```
///
/// # Errors
///
/// When the string would not fit its 2 KiB buffer (it does).
pub fn request_baseline(req: u64) -> std::result::Result<u64, std::fmt::Error> {
    BUFFERS.with(|buffers| {
        let buffers = &mut *buffers.borrow_mut();
        let mut sum = 0u64;
        let mut rest: &mut [u8] = &mut buffers.objects;
        let mut objects: [&mut [u8]; OBJECTS] = std::array::from_fn(|_| <&mut [u8]>::default());
        for (i, slot) in objects.iter_mut().enumerate() {
            let size = SIZES[i % SIZES.len()];
            let (o, tail) = std::mem::take(&mut rest).split_at_mut(size);
            o.fill(fill(req, i));
            sum += u64::from(o[probe(req, i, size)]);
            *slot = o;
            rest = tail;
        }
        black_box(&mut objects);
        let mut s = FixedString {
            buf: &mut buffers.string,
            len: 0,
        };
        for k in 0..PIECES {
            write!(s, "{} {} ", req * 1_000_003 + k, WORD)?;
        }
        black_box(&mut s);
        Ok(sum + s.len as u64)
    })
}

/// Runs requests `range` on `TASKS` tasks of `rt`; returns the checksum and
/// the wall time.
fn phase(
    rt: &pinstack::Runtime,
    arm: Arm,
    range: std::ops::Range<u64>,
) -> Result<(u64, Duration)> {
    rt.block_on(move || -> Result<(u64, Duration)> {
        let len = range.end - range.start;
        let start = Instant::now();
        let handles: Vec<_> = (0..TASKS)
            .map(|k| {
                let lo = range.start + len * k / TASKS;
                let hi = range.start + len * (k + 1) / TASKS;
                pinstack::spawn(move || -> std::result::Result<u64, std::fmt::Error> {
                    let mut sum = 0u64;
                    for req in lo..hi {
                        sum = sum.wrapping_add(arm.request(req)?);
                    }
                    Ok(sum)
                })
            })
            .collect();
        let mut sum = 0u64;
        for h in handles {
            let part = h
                .join()
                .map_err(|e| format!("arena: join: {e}"))?
                .map_err(|e| format!("arena: formatting a request's string failed: {e}"))?;
            sum = sum.wrapping_add(part);
        }
        Ok((sum, start.elapsed()))
    })
}

/// What one child run of an arm measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArenaRun {
    /// Wall time per request, ns.
    pub ns_per_request: f64,
    /// Peak RSS of the process, MiB.
    pub peak_rss_mib: f64,
    /// RSS growth from after the first tenth to the end, percent.
    pub rss_growth_pct: f64,
    /// Checksum of all requests.
    pub checksum: u64,
}

impl ArenaRun {
    fn line(&self) -> String {
        format!(
            "{} {} {} {}",
            self.ns_per_request, self.peak_rss_mib, self.rss_growth_pct, self.checksum
        )
    }

    fn parse(line: &str) -> Result<ArenaRun> {
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("arena child printed {line:?}, not 3 numbers and a checksum");
        if f.len() != 4 {
            return Err(bad().into());
        }
        let num = |s: &str| s.parse::<f64>().map_err(|_| bad());
        Ok(ArenaRun {
            ns_per_request: num(f[0])?,
            peak_rss_mib: num(f[1])?,
            rss_growth_pct: num(f[2])?,
            checksum: f[3].parse().map_err(|_| bad())?,
        })
    }
}

/// Runs `n` requests of `arm` in this process, in two phases (first tenth,
/// rest), and measures time and memory.
///
/// # Errors
///
/// A failed task, or `/proc`.
pub fn measure(arm: Arm, n: u64) -> Result<ArenaRun> {
    let rt = runtimes::pinstack()?;
    let tenth = (n / 10).max(1).min(n);
    let (s1, t1) = phase(&rt, arm, 0..tenth)?;
    let rss_tenth = rss_kib()?;
    let (s2, t2) = phase(&rt, arm, tenth..n)?;
    let rss_end = rss_kib()?;
    Ok(ArenaRun {
        ns_per_request: ns_per(t1 + t2, n),
        peak_rss_mib: peak_rss_kib()? as f64 / 1024.0,
        rss_growth_pct: (rss_end as f64 - rss_tenth as f64) * 100.0 / rss_tenth.max(1) as f64,
        checksum: s1.wrapping_add(s2),
    })
}

fn run(opts: &Opts) -> Result<Vec<Figure>> {
    let n = opts.size(FULL_REQUESTS, QUICK_REQUESTS);
    let n_arg = n.to_string();
    let (mut arena_runs, mut malloc_runs) = (Vec::new(), Vec::new());
    let m = alternating(
        3,
        &mut [
            &mut || {
                let r = ArenaRun::parse(&run_in_child("arena.child", &["arena", &n_arg])?)?;
                arena_runs.push(r);
                Ok(r.ns_per_request)
            },
            &mut || {
                let r = ArenaRun::parse(&run_in_child("arena.child", &["malloc", &n_arg])?)?;
                malloc_runs.push(r);
                Ok(r.ns_per_request)
            },
        ],
    )?;
    let runs = [arena_runs, malloc_runs];
    let sums: Vec<u64> = runs.iter().flatten().map(|r| r.checksum).collect();
    if sums.windows(2).any(|w| w[0] != w[1]) {
        return Err(format!("arena: the arms' checksums differ: {sums:?}").into());
    }
    eprintln!("arena: n={n} checksum={} (both arms, every run)", sums[0]);
    let med = |i: usize, f: fn(&ArenaRun) -> f64| {
        crate::report::median(&runs[i].iter().map(f).collect::<Vec<_>>())
    };
    Ok(vec![
        Figure::lower(NAME, "ns_per_request", n, m[0], "malloc", m[1]),
        Figure::lower(
            NAME,
            "peak_rss_mib",
            n,
            med(0, |r| r.peak_rss_mib),
            "malloc",
            med(1, |r| r.peak_rss_mib),
        ),
        Figure::lower(
            NAME,
            "rss_growth_pct",
            n,
            med(0, |r| r.rss_growth_pct),
            "malloc",
            med(1, |r| r.rss_growth_pct),
        ),
    ])
}

/// Child: `arena.child <arena|malloc> [N]`: prints `ns_per_request
/// peak_rss_mib rss_growth_pct checksum`.
fn child_arena(args: &[String]) -> Result<String> {
    let arm = Arm::parse(args.first())?;
    let n = arg_or(args, 1, FULL_REQUESTS)?;
    eprintln!("arena child: {} arm, {n} requests", arm.name());
    Ok(measure(arm, n)?.line())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_arms_compute_the_same_request() {
        for req in [0, 1, 7, 999_999] {
            let a = request_arena(req).unwrap();
            let m = request_malloc(req).unwrap();
            assert_eq!(a, m, "request {req}");
            assert_eq!(request_baseline(req).unwrap(), m, "request {req}");
        }
        // The string is about 1 KiB: 32 x (integer + space + word + space).
        let mut s = String::new();
        for k in 0..PIECES {
            write!(s, "{} {} ", 999_999u64 * 1_000_003 + k, WORD).unwrap();
        }
        assert!((900..=1100).contains(&s.len()), "{}", s.len());
        assert_eq!(WORD.len(), 16);
    }

    #[test]
    fn measured_runs_agree_and_use_arenas() {
        let before = pinstack::arena::stats();
        let a = measure(Arm::Arena, 2_000).unwrap();
        let after = pinstack::arena::stats();
        let m = measure(Arm::Malloc, 2_000).unwrap();
        assert_eq!(a.checksum, m.checksum);
        assert!(a.peak_rss_mib > 0.0 && a.ns_per_request > 0.0);
        assert_eq!(ArenaRun::parse(&a.line()).unwrap(), a);
        // Every arena request ended a scope (other tests may add more).
        assert!(after.resets >= before.resets + 2_000, "{before:?} {after:?}");
    }
}
