//! The hooks the scheduler calls: around each resume, at wake-ups and at
//! spawns. Each hook first tests for the default, metrics without tracing
//! (one load and a branch), then for tracing; with both off that is two.
//!
//! ```text
//! spawn_on ........ on_spawn        trace record + stamp (tracing), or stamp 1 spawn in N
//! run_task ........ resume_begin    delay = now - runnable_at (if stamped); trace: RUN start,
//!                                   first run: SPAWN + NAME, WAKE (stamp, waker)
//!          ........ resume_end      arm 1 suspension in N; ready depth; long-run name;
//!                                   trace: RUN event, accounting, SUMMARY at finish
//! Unparker::unpark  on_wake         stamp runnable_at if ARMED or TRACED (+ waker)
//! fire_timers ..... on_timer_wake   same, the waker being the worker's timer wheel
//! ```
//!
//! Clock reads (`clock::now`, a TSC read where the kernel trusts it): none
//! on an unsampled path with tracing off; with tracing on, one at each
//! resume end, wake-up by a task or another thread, and spawn. A resume
//! start reads the clock only if the worker did something else since its
//! last traced resume ended (`break_chain`: fired timers, polled, stole,
//! spun or slept); otherwise that end is the start (the `chain`), so back
//! to back resumes share one read per boundary, and the hand-over between
//! them (finishing the last task, picking the next, giving a new task its
//! stack: usually tens of nanoseconds) counts as the next task's running
//! time. A wake-up the worker makes in that hand-over (a finished task's
//! joiner) takes the same reading. A traced pingpong round trip thus reads
//! the clock 4 times (2 boundaries, 2 wake-ups), not 6. Reads are most of
//! what tracing costs on a VM, where a TSC read takes 20 to 50 ns (see
//! `clock.rs`).
//!
//! A traced resume writes one RUN event (the wake-up or spawn that led to
//! it rides along), plus a NAME event now and then for named tasks and a
//! SUMMARY when the task ends.
//!
//! `HERE`, a thread-local, tells the hooks (and `trace::region`) what this
//! thread is doing: whose worker it is (set at its first resume), and,
//! during a traced resume, the worker's ring and the task's trace id. The
//! ring pointer is set only for the duration of a resume, while the worker
//! holds the `Arc<Shared>` that owns the ring.

use super::clock;
use super::obs::{Obs, WorkerObs};
use super::LiveTasks;
use crate::loom::sync::atomic::Ordering::Relaxed;
use crate::scheduler::{Core, Shared};
use crate::task::{Header, Suspend};
use crate::trace::event::{self, Event};
use crate::trace::ring::Ring;
use crate::trace::task::{outcome, slot, TaskTrace, ARMED, TRACED};
use corosensei::CoroutineResult;
use std::cell::{Cell, RefCell};
use std::ptr;

/// What this thread is doing, for the hooks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Here {
    /// The live-task counters of the runtime whose worker this thread is
    /// (compared, never dereferenced); null on other threads.
    pub(crate) live: *const LiveTasks,
    pub(crate) worker: usize,
    /// During a traced resume: the worker's ring; else null.
    pub(crate) ring: *const Ring,
    /// During a traced resume (and until the finished task is counted):
    /// the task's trace id; else 0.
    pub(crate) task: u64,
    /// During a traced resume: the worker's resume sequence number.
    pub(crate) resume: u64,
}

/// The thread-local behind [`here`]: plain cells, so a hook writes only
/// the words it changes.
struct HereCells {
    live: Cell<*const LiveTasks>,
    worker: Cell<usize>,
    ring: Cell<*const Ring>,
    task: Cell<u64>,
    resume: Cell<u64>,
    /// The tick at which this worker's last traced resume ended, while the
    /// worker goes straight from that resume to the next (0: it did
    /// something else since, see [`break_chain`]).
    chain: Cell<u64>,
}

thread_local! {
    static HERE: HereCells = const {
        HereCells {
            live: Cell::new(ptr::null()),
            worker: Cell::new(0),
            ring: Cell::new(ptr::null()),
            task: Cell::new(0),
            resume: Cell::new(0),
            chain: Cell::new(0),
        }
    };
}

/// What this thread is doing.
#[inline]
pub(crate) fn here() -> Here {
    HERE.with(|x| Here {
        live: x.live.get(),
        worker: x.worker.get(),
        ring: x.ring.get(),
        task: x.task.get(),
        resume: x.resume.get(),
    })
}

/// Forgets the finished task this worker thread was running (its
/// completion has woken its joiner by now).
#[inline]
pub(crate) fn clear_finished_task() {
    HERE.with(|x| x.task.set(0));
}

/// The worker is about to do something other than hand over from one
/// resume to the next (poll for I/O, fire timers, steal, spin or sleep):
/// the next traced resume reads the clock for its start instead of reusing
/// the end of the last one. Called by the worker loop; one thread-local
/// store.
#[inline]
pub(crate) fn break_chain() {
    HERE.with(|x| x.chain.set(0));
}

/// What `resume_begin` hands to `resume_end` for a traced resume: its start
/// (0: not traced), the task's id, the RUN event's `c` and `d` words (the
/// wake-up or spawn that led to it) and its FIRST flag.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probe {
    start: u64,
    id: u64,
    why: u64,
    when: u64,
    first: bool,
}

impl Probe {
    const NONE: Probe = Probe {
        start: 0,
        id: 0,
        why: 0,
        when: 0,
        first: false,
    };
}

/// Tells the hooks that this thread is worker `worker` of `shared`'s
/// runtime. Called once by each worker thread, before its first resume.
pub(crate) fn enter_worker(shared: &Shared, worker: usize) {
    let live: *const LiveTasks = &shared.live;
    HERE.with(|x| {
        x.live.set(live);
        x.worker.set(worker);
        x.ring.set(ptr::null());
        x.task.set(0);
        x.resume.set(0);
        x.chain.set(0);
    });
}

/// Before a coroutine is resumed; `w` is the worker's own observability
/// state (looked up once per worker thread, not per resume) and `seq` its
/// (odd) resume sequence number. Metrics only: one load and a compare.
#[inline]
pub(crate) fn resume_begin(obs: &Obs, w: &WorkerObs, worker: usize, h: &Header, seq: u64) -> Probe {
    if obs.metrics_only {
        let t = h.obs.runnable_at.load(Relaxed);
        if t > TRACED {
            record_delay(w, h, t);
        }
        return Probe::NONE;
    }
    if obs.tracing {
        return trace_begin(obs, w, worker, h, seq);
    }
    Probe::NONE
}

#[cold]
fn record_delay(w: &WorkerObs, h: &Header, t: u64) {
    let now = clock::now();
    w.delay.record(clock::delta_ns(now.saturating_sub(t)));
    h.obs.runnable_at.store(0, Relaxed);
}

/// How a resume ended, as a trace outcome.
#[inline]
fn outcome_of(res: &std::thread::Result<CoroutineResult<Suspend, ()>>) -> u8 {
    match res {
        Ok(CoroutineResult::Yield(Suspend::Yield)) => outcome::YIELD,
        Ok(CoroutineResult::Yield(Suspend::Park(r))) => outcome::PARK + *r as u8,
        Ok(CoroutineResult::Return(())) => outcome::FINISHED,
        Err(_) => outcome::PANICKED,
    }
}

/// After a resume returned (or unwound): samples one resume in
/// `delay_mask + 1`, notes a long run, writes
/// the trace event. The resume is counted by the worker's match on `res`
/// (`WorkerCounters::resume_ended`), which knows its outcome without
/// decoding `res` again; here `res` is decoded only on the sampled and
/// traced paths.
#[inline]
#[allow(clippy::too_many_arguments)]
pub(crate) fn resume_end(
    obs: &Obs,
    w: &WorkerObs,
    worker: usize,
    core: &RefCell<Core>,
    h: &Header,
    probe: Probe,
    seq: u64,
    res: &std::thread::Result<CoroutineResult<Suspend, ()>>,
) {
    if obs.metrics_only {
        // Metrics on is known here: no test of `obs.metrics`, no trace.
        end_metrics(obs, w, worker, core, h, seq, res, true);
    } else if obs.tracing {
        end_metrics(obs, w, worker, core, h, seq, res, obs.metrics);
        if probe.start != 0 {
            trace_end(w, worker, h, probe, outcome_of(res));
        }
    }
}

/// The metrics part of `resume_end`: names a long run (if `long_runs`:
/// metrics on) and samples one resume in `delay_mask + 1`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn end_metrics(
    obs: &Obs,
    w: &WorkerObs,
    worker: usize,
    core: &RefCell<Core>,
    h: &Header,
    seq: u64,
    res: &std::thread::Result<CoroutineResult<Suspend, ()>>,
    long_runs: bool,
) {
    if long_runs && w.long_run_seq.load(Relaxed) == seq {
        obs.record_long_run(worker, h);
    }
    if sampled(obs, seq) {
        sample_suspension(h, outcome_of(res), core, w);
    }
}

/// Whether resume `seq` (odd: the worker's count of resumes is `seq / 2`)
/// is one of the sampled ones.
#[inline(always)]
fn sampled(obs: &Obs, seq: u64) -> bool {
    seq & obs.seq_mask == 0
}

/// Arms the delay measurement of the task's next wake-up (a yield is
/// runnable at once: stamped now), and publishes the ready-queue depth.
#[cold]
fn sample_suspension(h: &Header, out: u8, core: &RefCell<Core>, w: &WorkerObs) {
    let at = &h.obs.runnable_at;
    if at.load(Relaxed) == 0 {
        if out == outcome::YIELD {
            at.store(clock::now(), Relaxed);
        } else if out < outcome::FINISHED {
            at.store(ARMED, Relaxed);
        }
    }
    if let Ok(core) = core.try_borrow() {
        w.ready_depth.store(core.ready.len(), Relaxed);
    }
}

/// A waker moved the task from idle to scheduled (`Unpark::Schedule`),
/// before queueing it.
#[inline]
pub(crate) fn on_wake(h: &Header) {
    let v = h.obs.runnable_at.load(Relaxed);
    if v == ARMED || v == TRACED {
        stamp_wake(h, v, None);
    }
}

/// This worker's timer wheel scheduled the task.
#[inline]
pub(crate) fn on_timer_wake(h: &Header) {
    let v = h.obs.runnable_at.load(Relaxed);
    if v == ARMED || v == TRACED {
        stamp_wake(h, v, Some(here().worker));
    }
}

#[inline(always)]
fn stamp_wake(h: &Header, v: u64, timer: Option<usize>) {
    // A worker waking a task straight after a traced resume (a finished
    // task's joiner) takes that resume's end as the wake-up time, as the
    // next resume takes it as its start; anywhere else, read the clock.
    let now = match HERE.with(|x| x.chain.get()) {
        0 => clock::now(),
        c => c,
    };
    h.obs.runnable_at.store(now, Relaxed);
    if v == TRACED {
        if let Some(t) = h.obs.trace() {
            let by = match timer {
                Some(w) => event::who(event::WHO_TIMER, w as u16, w as u64),
                None => who_here(),
            };
            t.woken_by.store(by, Relaxed);
        }
    }
}

/// Who the calling thread is, for spawn and wake events.
fn who_here() -> u64 {
    let x = here();
    if x.task != 0 {
        event::who(event::WHO_TASK, x.worker as u16, x.task)
    } else if !x.live.is_null() {
        event::who(event::WHO_WORKER, x.worker as u16, x.worker as u64)
    } else {
        event::who(event::WHO_THREAD, event::EXTERNAL, 0)
    }
}

/// A task was created and is about to be queued; `number` is its count
/// on the live-task counter of the spawning thread (`LiveTasks::try_spawn`,
/// counting whenever metrics are on): the spawns whose number has the
/// bits of `delay_mask` clear are sampled.
#[inline]
pub(crate) fn on_spawn(shared: &Shared, h: &Header, number: u64) {
    let obs = &shared.obs;
    if obs.metrics_only {
        if number & u64::from(obs.delay_mask) == 0 {
            h.obs.runnable_at.store(clock::now(), Relaxed);
        }
    } else if obs.tracing {
        trace_spawn(h);
    }
}

fn trace_spawn(h: &Header) {
    h.obs.spawner.store(who_here(), Relaxed);
    h.obs.runnable_at.store(clock::now(), Relaxed);
}

// Inlined into the worker loop, as are `trace_end` and `stamp_wake`: as
// calls, their prologues, epilogues and the `Probe` passed through memory
// were a quarter of tracing's cost on the `overhead` pingpong (measured:
// 29-33 ns per round trip over off as calls, 21-24 ns inlined; off itself
// unchanged).
#[inline(always)]
fn trace_begin(obs: &Obs, w: &WorkerObs, worker: usize, h: &Header, seq: u64) -> Probe {
    let t = h.obs.runnable_at.load(Relaxed);
    // Straight from the worker's last traced resume: its end is this start
    // (the hand-over between them, picking this task and, on a first run,
    // giving it a stack, counts as this task's running time), unless the
    // task became runnable later than that (woken or spawned from another
    // thread meanwhile): then from that stamp.
    let now = match HERE.with(|x| x.chain.replace(0)) {
        0 => clock::now(),
        c => c.max(t),
    };
    let woke = (t > TRACED).then_some(t);
    if let Some(t) = woke {
        // The delay histogram takes the resumes `resume_end` samples (one
        // in `delay_mask + 1`); the trace has every delay anyway.
        if sampled(obs, seq) {
            w.delay.record(clock::delta_ns(now.saturating_sub(t)));
        }
    }
    let tt = h.obs.trace();
    let spawner = h.obs.spawner.load(Relaxed);
    let Some(ring) = w.ring.as_ref().filter(|_| spawner != 0) else {
        // Spawned before tracing could see it (cannot happen today).
        h.obs.runnable_at.store(0, Relaxed);
        HERE.with(|x| {
            x.ring.set(ptr::null());
            x.task.set(0);
        });
        return Probe::NONE;
    };
    h.obs.runnable_at.store(TRACED, Relaxed);
    let (id, first, why, when) = match tt {
        Some(tt) => {
            tt.begin(now, woke);
            let by = tt.woken_by.load(Relaxed);
            if by != 0 {
                tt.woken_by.store(0, Relaxed);
            }
            (
                tt.id,
                false,
                by,
                if by != 0 { woke.unwrap_or(0) } else { 0 },
            )
        }
        None => {
            // First run: the task gets its id from its home worker
            // (`(worker + 1) << 40 | n`, no shared write).
            let n = w.ids.load(Relaxed) + 1;
            w.ids.store(n, Relaxed);
            let id = ((worker as u64 + 1) << 40) | n;
            (id, true, spawner, woke.unwrap_or(now))
        }
    };
    if let Some(name) = &h.meta.name {
        name_event(ring, worker, tt, id, first, now, name);
    }
    HERE.with(|x| {
        x.ring.set(ring);
        x.task.set(id);
        x.resume.set(seq);
    });
    Probe {
        start: now,
        id,
        why,
        when,
        first,
    }
}

/// Names a task in the trace at its first run, and again once half the
/// ring has passed since, so its slices rarely outlive its name in the
/// ring.
fn name_event(
    ring: &Ring,
    worker: usize,
    tt: Option<&TaskTrace>,
    id: u64,
    first: bool,
    now: u64,
    name: &str,
) {
    let pos = ring.written();
    let last = tt.map_or(0, |t| t.named_at.load(Relaxed));
    if first || pos - last >= ring.capacity() / 2 {
        if let Some(tt) = tt {
            tt.named_at.store(pos, Relaxed);
        }
        let (words, len) = event::name_words(name);
        let mut e = Event::new(event::NAME, worker as u16, now, id);
        e.aux = len;
        [e.a, e.b, e.c, e.d] = words;
        ring.push(e.encode());
    }
}

#[inline(always)]
fn trace_end(w: &WorkerObs, worker: usize, h: &Header, probe: Probe, out: u8) {
    let now = clock::now();
    let finished = out >= outcome::FINISHED;
    HERE.with(|x| {
        x.chain.set(now);
        x.ring.set(ptr::null());
        if !finished {
            x.task.set(0);
        }
    });
    let Some(ring) = w.ring.as_ref() else {
        return;
    };
    let tt = match h.obs.trace() {
        Some(tt) => {
            tt.end(probe.start, now, out);
            Some(tt)
        }
        None if !finished => {
            // It suspended: from now on it needs its own accounting.
            let tt = Box::new(TaskTrace::new(probe.id, probe.when));
            tt.begin(probe.start, Some(probe.when));
            tt.end(probe.start, now, out);
            tt.named_at.store(ring.written(), Relaxed);
            h.obs.set_trace(tt);
            h.obs.trace()
        }
        None => None,
    };
    let mut e = Event::new(event::RUN, worker as u16, probe.start, probe.id);
    e.aux = out | if probe.first { event::FIRST } else { 0 };
    e.a = now;
    e.b = event::site_word(h.meta.site);
    e.c = probe.why;
    e.d = probe.when;
    ring.push(e.encode());
    if out == outcome::YIELD {
        h.obs.runnable_at.store(now, Relaxed);
    }
    // A task done in one resume needs no summary: its RUN event says it all
    // (spawned at `d`, ran from `ts` to `a`).
    if let Some(tt) = tt.filter(|_| finished) {
        summary_event(ring, worker, now, tt);
    }
}

#[cold]
fn summary_event(ring: &Ring, worker: usize, now: u64, tt: &TaskTrace) {
    let s = tt.totals();
    let f = |i: usize| event::f32_bits(s.acc[i]);
    let mut e = Event::new(event::SUMMARY, worker as u16, now, tt.id);
    e.a = event::pack(f(slot::RUNNING), f(slot::RUNNABLE));
    e.b = event::pack(f(slot::WAIT), f(slot::WAIT + 1));
    e.c = event::pack(f(slot::WAIT + 2), f(slot::WAIT + 3));
    e.d = event::pack(f(slot::WAIT + 4), s.resumes.min(u32::MAX as u64) as u32);
    ring.push(e.encode());
}

#[cfg(all(test, not(pinstack_loom)))]
mod tests {
    use crate::trace::event::{self, Event};
    use crate::trace::task::outcome;
    use crate::Runtime;

    fn runs(rt: &Runtime) -> Vec<Event> {
        let t = rt.trace().expect("tracing is on");
        assert_eq!(t.lost_events(), 0);
        t.events
            .into_iter()
            .filter(|e| e.kind == event::RUN)
            .collect()
    }

    #[test]
    fn back_to_back_resumes_share_their_boundary() {
        let rt = Runtime::builder()
            .worker_threads(1)
            .ignore_environment()
            .tracing(true)
            .build()
            .unwrap();
        let n = 200;
        rt.block_on(move || {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    crate::spawn(move || {
                        for _ in 0..n {
                            crate::yield_now();
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        });
        let runs = runs(&rt);
        // Two tasks of n + 1 resumes each, plus block_on's.
        assert!(runs.len() > 2 * n, "{}", runs.len());
        let mut touching = 0;
        for w in runs.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            // One worker: slices never overlap, and each ends after it starts.
            assert!(a.ts <= a.a && a.a <= b.ts, "{a:?} then {b:?}");
            if b.ts == a.a {
                touching += 1;
            }
        }
        // Yielding back and forth, the worker goes straight from one resume
        // to the next; only its periodic maintenance breaks the chain.
        assert!(
            touching * 4 >= runs.len() * 3,
            "{touching} of {}",
            runs.len()
        );
        for e in &runs {
            // A slice never starts before the spawn or wake-up behind it.
            if e.aux & event::FIRST != 0 || e.c != 0 {
                assert!(e.d <= e.ts, "{e:?}");
            }
            assert!(e.aux & !event::FIRST <= outcome::PANICKED);
        }
    }

    #[test]
    fn a_resume_after_sleeping_reads_the_clock_again() {
        let rt = Runtime::builder()
            .worker_threads(1)
            .ignore_environment()
            .tracing(true)
            .build()
            .unwrap();
        rt.block_on(|| {
            for _ in 0..3 {
                crate::sleep(std::time::Duration::from_millis(2));
            }
        });
        let runs = runs(&rt);
        assert_eq!(runs.len(), 4);
        for w in runs.windows(2) {
            // The worker slept in between: the next slice starts at its
            // wake-up by the timer, not where the last one ended.
            assert!(w[1].ts > w[0].a, "{:?} then {:?}", w[0], w[1]);
            assert!(w[1].ts >= w[1].d && w[1].d > w[0].a);
        }
    }
}
