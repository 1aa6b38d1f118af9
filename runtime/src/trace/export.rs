//! [`Trace`]: a copy of the workers' trace rings, and per-task summaries.

use super::event::{self, Event};
use super::task::{slot, Totals};
use crate::scheduler::Shared;
use std::collections::HashMap;
use std::io;
use std::panic::Location;
use std::time::Duration;

/// A snapshot of the runtime's trace: the events still held in every
/// worker's ring, oldest first. From [`Runtime::trace`](crate::Runtime::trace).
///
/// Export it with [`to_chrome_json`](Trace::to_chrome_json) (opens in
/// Perfetto and `chrome://tracing`), or read per-task time with
/// [`task_summaries`](Trace::task_summaries).
#[derive(Debug, Clone)]
pub struct Trace {
    pub(crate) workers: usize,
    /// Converts the events' ticks to nanoseconds since the runtime started.
    pub(crate) clock: crate::metrics::clock::Converter,
    pub(crate) events: Vec<Event>,
    pub(crate) lost: u64,
}

/// Where one task's time went, from its spawn to its end (or, for
/// [`current_task_summary`](super::current_task_summary), to the start of
/// its current resume).
///
/// The parts add up to the task's lifetime: every instant is either
/// running, runnable (queued, waiting for its worker), or waiting for one
/// reason.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskSummary {
    /// The task's trace id (unique in its runtime, in spawn order).
    pub id: u64,
    /// Its name, if it has one (cut to 32 bytes).
    pub name: Option<String>,
    /// Where it was spawned, if the trace still holds it.
    pub site: Option<&'static Location<'static>>,
    /// Time running on its worker.
    pub running: Duration,
    /// Time runnable but waiting for its worker (scheduling delay).
    pub runnable: Duration,
    /// Time waiting for socket readiness.
    pub io_wait: Duration,
    /// Time waiting for timers (sleeps, deadlines).
    pub timer_wait: Duration,
    /// Time waiting on channels, mutexes, condition variables, notifies,
    /// semaphores and wait groups.
    pub sync_wait: Duration,
    /// Time waiting for other tasks to finish (`join`).
    pub join_wait: Duration,
    /// Time waiting for futures (`block_on`).
    pub future_wait: Duration,
    /// Times it was resumed.
    pub resumes: u64,
}

impl TaskSummary {
    /// A summary from totals in ticks.
    pub(crate) fn from_totals(id: u64, t: &Totals, span: impl Fn(u64) -> u64) -> TaskSummary {
        let d = |i: usize| Duration::from_nanos(span(t.acc[i]));
        TaskSummary {
            id,
            name: None,
            site: None,
            running: d(slot::RUNNING),
            runnable: d(slot::RUNNABLE),
            io_wait: d(slot::WAIT),
            timer_wait: d(slot::WAIT + 1),
            sync_wait: d(slot::WAIT + 2),
            join_wait: d(slot::WAIT + 3),
            future_wait: d(slot::WAIT + 4),
            resumes: t.resumes,
        }
    }

    /// The sum of all parts: the time from spawn to the end of the last
    /// resume accounted.
    pub fn lifetime(&self) -> Duration {
        self.running
            + self.runnable
            + self.io_wait
            + self.timer_wait
            + self.sync_wait
            + self.join_wait
            + self.future_wait
    }
}

impl Trace {
    /// Copies every worker's ring; `None` with tracing off.
    pub(crate) fn collect(shared: &Shared) -> Option<Trace> {
        let obs = &shared.obs;
        if !obs.tracing {
            return None;
        }
        let mut events = Vec::new();
        let mut lost = 0;
        for w in obs.workers.iter() {
            if let Some(ring) = &w.ring {
                let (raw, l) = ring.read();
                lost += l;
                events.extend(raw.iter().map(Event::decode));
            }
        }
        events.sort_by_key(|e| e.ts);
        Some(Trace {
            workers: obs.workers.len(),
            clock: obs.base.converter(),
            events,
            lost,
        })
    }

    /// Events held.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Events overwritten in the rings before this snapshot read them
    /// (raise [`Builder::trace_buffer_events`](crate::Builder::trace_buffer_events)
    /// to keep more).
    pub fn lost_events(&self) -> u64 {
        self.lost
    }

    /// Task names (from the name events) and sites (from spawn and run
    /// events), by task id.
    pub(crate) fn labels(
        &self,
    ) -> HashMap<u64, (Option<String>, Option<&'static Location<'static>>)> {
        let mut m: HashMap<u64, (Option<String>, Option<&'static Location<'static>>)> =
            HashMap::new();
        for e in &self.events {
            match e.kind {
                event::NAME => {
                    m.entry(e.task).or_default().0 =
                        Some(event::words_name([e.a, e.b, e.c, e.d], e.aux));
                }
                event::RUN => {
                    // SAFETY: a RUN event's `b` word is written by `probe`
                    // with `site_word` of the task's `&'static` site, and
                    // comes from a copy the ring validated.
                    let site = unsafe { event::word_site(e.b) };
                    let entry = m.entry(e.task).or_default();
                    if entry.1.is_none() {
                        entry.1 = site;
                    }
                }
                _ => {}
            }
        }
        m
    }

    /// Summaries of the tasks that finished while the trace held their
    /// final events, in finishing order.
    pub fn task_summaries(&self) -> Vec<TaskSummary> {
        let labels = self.labels();
        self.events
            .iter()
            .filter_map(|e| match e.kind {
                event::SUMMARY => Some((e, unpack_summary(e))),
                event::RUN => one_resume_totals(e).map(|t| (e, t)),
                _ => None,
            })
            .map(|(e, t)| {
                let mut s = TaskSummary::from_totals(e.task, &t, |x| self.clock.span(x));
                if let Some((name, site)) = labels.get(&e.task) {
                    s.name.clone_from(name);
                    s.site = *site;
                }
                s
            })
            .collect()
    }

    /// The trace as Chrome trace-event JSON (the "JSON object format"):
    /// one track per worker, a slice per resume named after the task,
    /// instant events for spawns and wake-ups, regions as nested slices.
    /// Opens in Perfetto (ui.perfetto.dev) and `chrome://tracing`.
    pub fn to_chrome_json(&self) -> String {
        super::chrome::render(self)
    }

    /// Writes [`to_chrome_json`](Trace::to_chrome_json) to `w`.
    ///
    /// # Errors
    ///
    /// The writer's error.
    pub fn write_chrome_json(&self, mut w: impl io::Write) -> io::Result<()> {
        w.write_all(self.to_chrome_json().as_bytes())
    }
}

/// The totals (in ticks) a SUMMARY event carries.
pub(crate) fn unpack_summary(e: &Event) -> Totals {
    let mut t = Totals::default();
    let (a0, a1) = event::unpack(e.a);
    let (b0, b1) = event::unpack(e.b);
    let (c0, c1) = event::unpack(e.c);
    let (d0, resumes) = event::unpack(e.d);
    for (i, bits) in [a0, a1, b0, b1, c0, c1, d0].into_iter().enumerate() {
        t.acc[i] = event::from_f32_bits(bits);
    }
    t.resumes = resumes as u64;
    t
}

/// The totals of a task that finished in its first resume, from its RUN
/// event (no SUMMARY is written for it).
pub(crate) fn one_resume_totals(e: &Event) -> Option<Totals> {
    use super::task::outcome::FINISHED;
    if e.kind != event::RUN || e.aux & event::FIRST == 0 || e.aux & !event::FIRST < FINISHED {
        return None;
    }
    let mut t = Totals::default();
    t.acc[slot::RUNNING] = e.a.saturating_sub(e.ts);
    t.acc[slot::RUNNABLE] = e.ts.saturating_sub(e.d);
    t.resumes = 1;
    Some(t)
}
