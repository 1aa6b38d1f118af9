//! Chrome trace-event JSON (the "JSON object format" Perfetto and
//! `chrome://tracing` open).
//!
//! | trace event        | JSON                                                        |
//! |--------------------|-------------------------------------------------------------|
//! | worker i           | `M` thread_name "worker i", tid i (tid = workers: outside)  |
//! | RUN                | `X` slice named after the task, cat `task`, args: task, site, end |
//! | RUN's wake-up / spawn | `i` instant "wake" / "spawn" on the waker's / spawner's track, args: task, name, by |
//! | REGION within a resume | `X` slice, cat `region` (nests inside the task's slice) |
//! | REGION over suspensions | async `b`/`e` pair, cat `region`, id = task id        |
//! | SUMMARY            | `i` instant "finish" with the task's time split (µs)        |

use super::event::{self, Event};
use super::export::Trace;
use std::collections::HashMap;
use std::fmt::Write;
use std::panic::Location;

/// Writes `s` as a JSON string literal.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Nanoseconds as microseconds with three decimals.
fn us(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

fn outcome_name(aux: u8) -> &'static str {
    use super::task::outcome::*;
    match aux {
        YIELD => "yield",
        FINISHED => "finished",
        PANICKED => "panicked",
        x if x == PARK => "park(io)",
        x if x == PARK + 1 => "park(timer)",
        x if x == PARK + 2 => "park(sync)",
        x if x == PARK + 3 => "park(join)",
        x if x == PARK + 4 => "park(future)",
        _ => "unknown",
    }
}

type Labels = HashMap<u64, (Option<String>, Option<&'static Location<'static>>)>;

struct Out<'a> {
    s: String,
    first: bool,
    trace: &'a Trace,
    labels: Labels,
}

impl Out<'_> {
    /// Starts a new element of `traceEvents`.
    fn item(&mut self) -> &mut String {
        if !self.first {
            self.s.push_str(",\n");
        }
        self.first = false;
        &mut self.s
    }

    fn tid(&self, track: u16) -> usize {
        if track == event::EXTERNAL {
            self.trace.workers
        } else {
            track as usize
        }
    }

    /// A tick as microseconds since the runtime started.
    fn ts(&self, t: u64) -> String {
        us(self.trace.clock.since_base(t))
    }

    /// A span of ticks in microseconds.
    fn dur(&self, from: u64, to: u64) -> String {
        us(self.trace.clock.span(to.saturating_sub(from)))
    }

    fn task_name(&self, id: u64) -> String {
        match self.labels.get(&id) {
            Some((Some(n), _)) => n.clone(),
            Some((None, Some(site))) => format!("task {id} @ {}:{}", site.file(), site.line()),
            _ => format!("task {id}"),
        }
    }

    fn site(&self, id: u64) -> String {
        match self.labels.get(&id) {
            Some((_, Some(s))) => s.to_string(),
            _ => String::new(),
        }
    }

    fn who(&self, w: u64) -> String {
        let (kind, track, value) = event::who_parts(w);
        match kind {
            event::WHO_TASK => format!("task {value} ({})", self.task_name(value)),
            event::WHO_WORKER => format!("worker {track}"),
            event::WHO_TIMER => format!("timer of worker {track}"),
            event::WHO_THREAD => "a thread outside the runtime".into(),
            _ => "unknown".into(),
        }
    }

    /// An instant event on `track` about task `task`.
    fn instant(&mut self, name: &str, track: u16, ts: u64, task: u64, by: Option<u64>) {
        let tid = self.tid(track);
        let ts = self.ts(ts);
        let tname = self.task_name(task);
        let site = self.site(task);
        let by = by.map(|b| self.who(b));
        let s = self.item();
        s.push_str("{\"name\":");
        json_str(s, name);
        let _ = write!(
            s,
            ",\"cat\":\"sched\",\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":{tid},\"ts\":{ts},\"args\":{{\"task\":{task},\"name\":"
        );
        json_str(s, &tname);
        s.push_str(",\"site\":");
        json_str(s, &site);
        if let Some(by) = by {
            s.push_str(",\"by\":");
            json_str(s, &by);
        }
        s.push_str("}}");
    }

    fn metadata(&mut self) {
        let workers = self.trace.workers;
        let s = self.item();
        s.push_str(
            "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"args\":{\"name\":\"pinstack\"}}",
        );
        for i in 0..=workers {
            let label = if i == workers {
                "outside the runtime".to_string()
            } else {
                format!("worker {i}")
            };
            let s = self.item();
            let _ = write!(
                s,
                "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{i},\"args\":{{\"name\":"
            );
            json_str(s, &label);
            s.push_str("}}");
            let s = self.item();
            let _ = write!(
                s,
                "{{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":1,\"tid\":{i},\"args\":{{\"sort_index\":{i}}}}}"
            );
        }
    }

    fn run(&mut self, e: &Event) {
        let tid = self.tid(e.track);
        let ts = self.ts(e.ts);
        let dur = self.dur(e.ts, e.a);
        let name = self.task_name(e.task);
        let site = self.site(e.task);
        let s = self.item();
        s.push_str("{\"name\":");
        json_str(s, &name);
        let _ = write!(
            s,
            ",\"cat\":\"task\",\"ph\":\"X\",\"pid\":1,\"tid\":{tid},\"ts\":{ts},\"dur\":{dur},\"args\":{{\"task\":{},\"site\":",
            e.task
        );
        json_str(s, &site);
        s.push_str(",\"end\":");
        json_str(s, outcome_name(e.aux & !event::FIRST));
        s.push_str("}}");
    }

    fn region(&mut self, begin: &Event, end: &Event) {
        // SAFETY: REGION words are written by `trace::region` with
        // `str_words` of a `&'static str`, and come from validated copies.
        let name = unsafe { event::words_str(begin.a, begin.b) };
        let tid = self.tid(end.track);
        let (ts, te) = (self.ts(begin.ts), self.ts(end.ts));
        let task = end.task;
        if begin.c == end.c {
            let dur = self.dur(begin.ts, end.ts);
            let s = self.item();
            s.push_str("{\"name\":");
            json_str(s, name);
            let _ = write!(
                s,
                ",\"cat\":\"region\",\"ph\":\"X\",\"pid\":1,\"tid\":{tid},\"ts\":{ts},\"dur\":{dur},\"args\":{{\"task\":{task}}}}}"
            );
        } else {
            for (ph, t) in [("b", ts), ("e", te)] {
                let s = self.item();
                s.push_str("{\"name\":");
                json_str(s, name);
                let _ = write!(
                    s,
                    ",\"cat\":\"region\",\"ph\":\"{ph}\",\"id\":{task},\"pid\":1,\"tid\":{tid},\"ts\":{t},\"args\":{{\"task\":{task}}}}}"
                );
            }
        }
    }

    fn finish(&mut self, e: &Event, t: &super::task::Totals) {
        let tid = self.tid(e.track);
        let ts = self.ts(e.ts);
        let name = self.task_name(e.task);
        let c = self.trace.clock;
        let v = |i: usize| us(c.span(t.acc[i]));
        let s = self.item();
        let _ = write!(
            s,
            "{{\"name\":\"finish\",\"cat\":\"sched\",\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":{tid},\"ts\":{ts},\"args\":{{\"task\":{},\"name\":",
            e.task
        );
        json_str(s, &name);
        let _ = write!(
            s,
            ",\"running_us\":{},\"runnable_us\":{},\"io_wait_us\":{},\"timer_wait_us\":{},\"sync_wait_us\":{},\"join_wait_us\":{},\"future_wait_us\":{},\"resumes\":{}}}}}",
            v(0),
            v(1),
            v(2),
            v(3),
            v(4),
            v(5),
            v(6),
            t.resumes
        );
    }
}

/// Renders the trace as Chrome trace-event JSON.
pub(crate) fn render(trace: &Trace) -> String {
    let mut o = Out {
        s: String::with_capacity(256 + trace.events.len() * 160),
        first: true,
        trace,
        labels: trace.labels(),
    };
    let _ = writeln!(
        o.s,
        "{{\"displayTimeUnit\":\"ns\",\"otherData\":{{\"workers\":{},\"lost_events\":{}}},\"traceEvents\":[",
        trace.workers, trace.lost
    );
    o.metadata();
    let mut open: HashMap<u64, Vec<&Event>> = HashMap::new();
    for e in &trace.events {
        match e.kind {
            event::RUN => {
                if e.c != 0 {
                    let what = if e.aux & event::FIRST != 0 {
                        "spawn"
                    } else {
                        "wake"
                    };
                    let (_, track, _) = event::who_parts(e.c);
                    o.instant(what, track, e.d, e.task, Some(e.c));
                }
                o.run(e);
                if let Some(t) = super::export::one_resume_totals(e) {
                    let mut end = *e;
                    end.ts = e.a;
                    o.finish(&end, &t);
                }
            }
            event::REGION_BEGIN => open.entry(e.task).or_default().push(e),
            event::REGION_END => {
                let stack = open.entry(e.task).or_default();
                if let Some(i) = stack.iter().rposition(|b| b.a == e.a && b.b == e.b) {
                    let begin = stack.remove(i);
                    o.region(begin, e);
                }
            }
            event::SUMMARY => o.finish(e, &super::export::unpack_summary(e)),
            _ => {}
        }
    }
    o.s.push_str("\n]}\n");
    o.s
}

#[cfg(all(test, not(pinstack_loom)))]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\n\u{1}é");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0001é\"");
        assert_eq!(us(1_234_567), "1234.567");
        assert_eq!(us(5), "0.005");
    }
}
