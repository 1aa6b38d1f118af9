//! The Prometheus text exposition format (version 0.0.4) of
//! [`RuntimeMetrics`]: `# HELP` and `# TYPE` lines, then samples.

use super::RuntimeMetrics;
use std::fmt::Write;

/// Renders `m` in the Prometheus text format, ready to serve on a
/// `/metrics` endpoint (content type `text/plain; version=0.0.4`).
///
/// Families: `pinstack_worker_*` (labelled by `worker`), the scheduling
/// delay histogram `pinstack_scheduling_delay_seconds`, `pinstack_live_tasks`,
/// `pinstack_stack_pool_*` (by `pool`), `pinstack_stack_site_*` (by `site`)
/// and `pinstack_arena_*`.
///
/// # Examples
///
/// ```
/// let rt = pinstack::Runtime::new()?;
/// rt.block_on(|| pinstack::yield_now());
/// let text = pinstack::metrics::render_prometheus(&rt.metrics());
/// assert!(text.contains("# TYPE pinstack_worker_resumes_total counter"));
/// assert!(text.contains("pinstack_scheduling_delay_seconds_count"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn render_prometheus(m: &RuntimeMetrics) -> String {
    let mut out = String::with_capacity(8192);
    let o = &mut out;
    worker_families(o, m);
    delay_family(o, m);
    family(
        o,
        "pinstack_live_tasks",
        "gauge",
        "Tasks spawned and not finished.",
    );
    sample(o, "pinstack_live_tasks", "", m.live_tasks);
    family(
        o,
        "pinstack_injector_depth",
        "gauge",
        "Unstarted tasks in the global queue.",
    );
    sample(o, "pinstack_injector_depth", "", m.injector_depth);
    family(
        o,
        "pinstack_task_memory_cached_bytes",
        "gauge",
        "Freed task memory kept for reuse in the process-wide depot.",
    );
    sample(
        o,
        "pinstack_task_memory_cached_bytes",
        "",
        m.task_memory_cached_bytes,
    );
    pool_families(o, m);
    site_families(o, m);
    arena_families(o, m);
    out
}

fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

fn sample(o: &mut String, name: &str, labels: &str, v: impl std::fmt::Display) {
    if labels.is_empty() {
        let _ = writeln!(o, "{name} {v}");
    } else {
        let _ = writeln!(o, "{name}{{{labels}}} {v}");
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// A per-worker family: name, help, and the value of one worker.
type WorkerRow = (&'static str, &'static str, fn(&super::WorkerMetrics) -> u64);

fn worker_families(o: &mut String, m: &RuntimeMetrics) {
    let counters: [WorkerRow; 5] = [
        ("pinstack_worker_resumes_total", "Coroutine resumes.", |w| {
            w.resumes
        }),
        (
            "pinstack_worker_parks_total",
            "Times the worker slept for lack of work.",
            |w| w.parks,
        ),
        (
            "pinstack_worker_spawned_total",
            "Tasks spawned onto the worker's own queue.",
            |w| w.spawned,
        ),
        (
            "pinstack_worker_handed_off_total",
            "Unstarted tasks handed to a less loaded peer to start there.",
            |w| w.handed_off,
        ),
        (
            "pinstack_worker_long_runs_total",
            "Resumes that ran past the long-run threshold.",
            |w| w.long_runs,
        ),
    ];
    per_worker(o, m, "counter", &counters);
    let n = "pinstack_worker_steals_total";
    family(
        o,
        n,
        "counter",
        "Unstarted tasks stolen, by victim's NUMA node.",
    );
    for w in &m.workers {
        sample(
            o,
            n,
            &format!("worker=\"{}\",node=\"local\"", w.index),
            w.steals,
        );
        sample(
            o,
            n,
            &format!("worker=\"{}\",node=\"remote\"", w.index),
            w.remote_steals,
        );
    }
    let n = "pinstack_worker_suspends_total";
    family(o, n, "counter", "Coroutine suspensions, by reason.");
    for w in &m.workers {
        for (reason, v) in [
            ("yield", w.yields),
            ("io", w.suspends_io),
            ("timer", w.suspends_timer),
            ("sync", w.suspends_sync),
            ("join", w.suspends_join),
            ("future", w.suspends_future),
        ] {
            sample(
                o,
                n,
                &format!("worker=\"{}\",reason=\"{reason}\"", w.index),
                v,
            );
        }
    }
    let gauges: [WorkerRow; 3] = [
        (
            "pinstack_worker_run_queue_depth",
            "Tasks queued on the worker.",
            |w| w.run_queue_depth,
        ),
        (
            "pinstack_worker_started_tasks",
            "Started tasks living on the worker (they never move).",
            |w| w.started_tasks,
        ),
        (
            "pinstack_worker_in_long_run",
            "1 while the worker is in a long run.",
            |w| u64::from(w.in_long_run),
        ),
    ];
    per_worker(o, m, "gauge", &gauges);
}

/// One family per row, one sample per worker.
fn per_worker(o: &mut String, m: &RuntimeMetrics, kind: &str, rows: &[WorkerRow]) {
    for (name, help, get) in rows {
        family(o, name, kind, help);
        for w in &m.workers {
            sample(o, name, &format!("worker=\"{}\"", w.index), get(w));
        }
    }
}

fn delay_family(o: &mut String, m: &RuntimeMetrics) {
    let n = "pinstack_scheduling_delay_seconds";
    family(
        o,
        n,
        "histogram",
        "Time from a task becoming runnable to it running (sampled).",
    );
    for w in &m.workers {
        let h = &w.scheduling_delay;
        for (le_ns, count) in h.cumulative_pow2() {
            let le = le_ns as f64 / 1e9;
            sample(
                o,
                &format!("{n}_bucket"),
                &format!("worker=\"{}\",le=\"{le}\"", w.index),
                count,
            );
        }
        let all: u64 = h.buckets().map(|(_, c)| c).sum();
        sample(
            o,
            &format!("{n}_bucket"),
            &format!("worker=\"{}\",le=\"+Inf\"", w.index),
            all,
        );
        let labels = format!("worker=\"{}\"", w.index);
        sample(o, &format!("{n}_sum"), &labels, h.sum().as_secs_f64());
        sample(o, &format!("{n}_count"), &labels, all);
    }
}

fn pool_families(o: &mut String, m: &RuntimeMetrics) {
    type Get = fn(&pinstack_stackpool::PoolStats) -> u64;
    let fams: [(&str, &str, &str, Get); 7] = [
        (
            "pinstack_stack_pool_acquires_total",
            "counter",
            "Stacks handed out.",
            |p| p.acquires,
        ),
        (
            "pinstack_stack_pool_releases_total",
            "counter",
            "Stacks returned.",
            |p| p.releases,
        ),
        (
            "pinstack_stack_pool_fresh_carves_total",
            "counter",
            "Stacks carved fresh from slabs.",
            |p| p.fresh_carves,
        ),
        (
            "pinstack_stack_pool_live_stacks",
            "gauge",
            "Stacks holding memory (checked out or cached).",
            |p| p.live_stacks as u64,
        ),
        (
            "pinstack_stack_pool_reserved_bytes",
            "gauge",
            "Address space reserved by slabs.",
            |p| p.bytes_reserved as u64,
        ),
        (
            "pinstack_stack_pool_resident_bytes",
            "gauge",
            "Estimated resident stack memory (from samples).",
            |p| p.bytes_resident as u64,
        ),
        (
            "pinstack_stack_pool_mappings",
            "gauge",
            "Kernel memory mappings held by the pool.",
            |p| p.mappings_created as u64,
        ),
    ];
    for (name, kind, help, get) in fams {
        family(o, name, kind, help);
        for (i, p) in m.stack_pools.iter().enumerate() {
            sample(o, name, &format!("pool=\"{i}\""), get(p));
        }
    }
}

fn site_families(o: &mut String, m: &RuntimeMetrics) {
    type Get = fn(&super::StackSite) -> u64;
    let fams: [(&str, &str, &str, Get); 5] = [
        (
            "pinstack_stack_site_samples_total",
            "counter",
            "Tasks whose stack use was sampled, by spawn site.",
            |s| s.samples,
        ),
        (
            "pinstack_stack_site_max_bytes",
            "gauge",
            "Largest sampled stack high-water mark, by spawn site.",
            |s| s.max_touched as u64,
        ),
        (
            "pinstack_stack_site_mean_bytes",
            "gauge",
            "Mean sampled stack high-water mark, by spawn site.",
            |s| s.mean_touched as u64,
        ),
        (
            "pinstack_stack_site_class_bytes",
            "gauge",
            "Stack class of the last sampled task, by spawn site.",
            |s| s.class_bytes as u64,
        ),
        (
            "pinstack_stack_site_hint_bytes",
            "gauge",
            "Stack size hint given at the site (0: none).",
            |s| s.hint.unwrap_or(0) as u64,
        ),
    ];
    for (name, kind, help, get) in fams {
        family(o, name, kind, help);
        for s in &m.stack_sites {
            sample(
                o,
                name,
                &format!("site=\"{}\"", label(&s.site.to_string())),
                get(s),
            );
        }
    }
}

fn arena_families(o: &mut String, m: &RuntimeMetrics) {
    let a = &m.arena;
    for (name, kind, help, v) in [
        (
            "pinstack_arena_in_use",
            "gauge",
            "Arenas checked out.",
            a.in_use,
        ),
        (
            "pinstack_arena_pooled",
            "gauge",
            "Idle arenas kept in pools.",
            a.pooled,
        ),
        (
            "pinstack_arena_retained_bytes",
            "gauge",
            "Chunk bytes held by idle pooled arenas.",
            a.bytes_retained,
        ),
        (
            "pinstack_arena_created_total",
            "counter",
            "Arenas created.",
            a.created,
        ),
        (
            "pinstack_arena_resets_total",
            "counter",
            "Arena scopes ended.",
            a.resets,
        ),
        (
            "pinstack_arena_allocated_bytes_total",
            "counter",
            "Bytes in use in arenas when their scopes ended.",
            a.bytes_allocated,
        ),
        (
            "pinstack_arena_limit_hits_total",
            "counter",
            "Allocations refused by an arena's byte limit.",
            a.limit_hits,
        ),
    ] {
        family(o, name, kind, help);
        sample(o, name, "", v);
    }
}

#[cfg(all(test, not(pinstack_loom)))]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
