//! Tracing: per-task summaries on constructed workloads, and the Chrome
//! trace JSON (parsed, checked for the expected events).

use pinstack::sync::mpsc as pmpsc;
use pinstack::trace::{self, TaskSummary};
use pinstack::{task, Runtime};
use serde_json::Value;
use std::time::{Duration, Instant};

fn traced(workers: usize) -> Runtime {
    Runtime::builder()
        .worker_threads(workers)
        .ignore_environment()
        .tracing(true)
        .build()
        .expect("runtime starts")
}

fn summary(rt: &Runtime, name: &str) -> TaskSummary {
    let t = rt.trace().expect("tracing is on");
    t.task_summaries()
        .into_iter()
        .find(|s| s.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no summary for {name}"))
}

/// Polls `cond` until it holds; panics after 10 s (a hang, not a timing).
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_sleeping_task_shows_its_timer_wait() {
    let rt = traced(2);
    let t0 = Instant::now();
    let h = task::Builder::new()
        .name("sleeper")
        .spawn_on(|| pinstack::sleep(Duration::from_millis(51)), &rt.handle())
        .unwrap();
    h.join().unwrap();
    let outer = t0.elapsed();
    let s = summary(&rt, "sleeper");
    assert!(s.timer_wait >= Duration::from_millis(50), "{s:?}");
    assert!(s.lifetime() <= outer, "{s:?} longer than {outer:?}");
    assert_eq!(s.resumes, 2, "{s:?}");
    assert_eq!(
        s.sync_wait + s.io_wait + s.join_wait + s.future_wait,
        Duration::ZERO
    );
    assert!(
        s.site.is_some_and(|l| l.file().ends_with("obs_trace.rs")),
        "{s:?}"
    );
}

#[test]
fn a_task_blocked_on_a_channel_shows_channel_wait() {
    let rt = traced(2);
    let (tx, rx) = pmpsc::channel::<u32>(1);
    let t0 = Instant::now();
    let h = task::Builder::new()
        .name("receiver")
        .spawn_on(move || rx.recv().unwrap(), &rt.handle())
        .unwrap();
    // The suspension is counted after its timestamp is taken: from here on
    // the receiver has been waiting.
    wait_until("the receiver to park", || {
        rt.metrics()
            .workers
            .iter()
            .map(|w| w.suspends_sync)
            .sum::<u64>()
            >= 1
    });
    std::thread::sleep(Duration::from_millis(20));
    tx.send(5).unwrap();
    assert_eq!(h.join().unwrap(), 5);
    let outer = t0.elapsed();
    let s = summary(&rt, "receiver");
    assert!(s.sync_wait >= Duration::from_millis(20), "{s:?}");
    assert_eq!(
        s.timer_wait + s.io_wait + s.join_wait,
        Duration::ZERO,
        "{s:?}"
    );
    assert!(s.lifetime() <= outer, "{s:?}");
}

#[test]
fn current_task_summary_counts_its_own_resumes() {
    let rt = traced(1);
    let s = rt.block_on(|| {
        for _ in 0..3 {
            pinstack::yield_now();
        }
        trace::current_task_summary()
    });
    let s = s.expect("traced");
    assert_eq!(s.resumes, 3);
    assert_eq!(s.name.as_deref(), Some("block_on"));
    assert!(trace::current_task_summary().is_none(), "not in a task");
}

fn events(json: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(json).expect("valid JSON");
    v["traceEvents"].as_array().expect("traceEvents").clone()
}

fn named<'a>(evs: &'a [Value], ph: &str, name: &str) -> Vec<&'a Value> {
    evs.iter()
        .filter(|e| e["ph"] == ph && e["name"] == name)
        .collect()
}

#[test]
fn chrome_json_holds_tasks_wakes_regions_and_tracks() {
    let rt = traced(2);
    let (tx, rx) = pmpsc::channel::<u32>(1);
    rt.block_on(move || {
        let waiter = task::Builder::new()
            .name("waiter")
            .spawn(move || {
                trace::region("parse", || "17".parse::<u32>().unwrap()) + rx.recv().unwrap()
            })
            .unwrap();
        let sender = task::Builder::new()
            .name("sender")
            .spawn(move || {
                pinstack::sleep(Duration::from_millis(2));
                tx.send(25).unwrap();
            })
            .unwrap();
        sender.join().unwrap();
        assert_eq!(waiter.join().unwrap(), 42);
    });
    let trace = rt.trace().unwrap();
    assert_eq!(trace.lost_events(), 0);
    let evs = events(&trace.to_chrome_json());

    // One named track per worker.
    for w in 0..2 {
        assert!(
            evs.iter().any(|e| e["ph"] == "M"
                && e["name"] == "thread_name"
                && e["tid"] == w
                && e["args"]["name"] == format!("worker {w}")),
            "no track for worker {w}"
        );
    }
    // Resumes are slices named after the task, on a worker's track.
    for name in ["waiter", "sender", "block_on"] {
        let runs = named(&evs, "X", name);
        assert!(!runs.is_empty(), "no slice for {name}");
        for r in &runs {
            assert_eq!(r["cat"], "task");
            assert!(r["ts"].as_f64().unwrap() >= 0.0 && r["dur"].as_f64().unwrap() >= 0.0);
            assert!(r["tid"].as_u64().unwrap() < 2);
            assert!(r["args"]["site"].as_str().unwrap().contains("obs_trace.rs"));
        }
    }
    let ends: Vec<_> = named(&evs, "X", "waiter")
        .iter()
        .map(|r| r["args"]["end"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ends.last().map(String::as_str),
        Some("finished"),
        "{ends:?}"
    );
    assert!(ends.iter().any(|e| e == "park(sync)"), "{ends:?}");
    let sender_ends: Vec<_> = named(&evs, "X", "sender")
        .iter()
        .map(|r| r["args"]["end"].as_str().unwrap().to_string())
        .collect();
    assert!(
        sender_ends.iter().any(|e| e == "park(timer)"),
        "{sender_ends:?}"
    );

    // Spawns name the spawner; the waiter's wake-up names the sender.
    let spawns = named(&evs, "i", "spawn");
    assert!(spawns
        .iter()
        .any(|e| e["args"]["name"] == "waiter"
            && e["args"]["by"].as_str().unwrap().contains("block_on")));
    let wakes = named(&evs, "i", "wake");
    assert!(
        wakes.iter().any(|e| e["args"]["name"] == "waiter"
            && e["args"]["by"].as_str().unwrap().contains("(sender)")),
        "{wakes:?}"
    );
    assert!(
        wakes.iter().any(|e| e["args"]["name"] == "sender"
            && e["args"]["by"].as_str().unwrap().starts_with("timer")),
        "{wakes:?}"
    );
    // The region nests inside the waiter's first slice.
    let parse = named(&evs, "X", "parse");
    assert_eq!(parse.len(), 1);
    assert_eq!(parse[0]["cat"], "region");
    let first_run = named(&evs, "X", "waiter")[0];
    let (ps, pd) = (
        parse[0]["ts"].as_f64().unwrap(),
        parse[0]["dur"].as_f64().unwrap(),
    );
    let (rs, rd) = (
        first_run["ts"].as_f64().unwrap(),
        first_run["dur"].as_f64().unwrap(),
    );
    assert!(
        ps >= rs && ps + pd <= rs + rd + 0.001,
        "region {ps}+{pd} in run {rs}+{rd}"
    );
    // A finish event per task, with its time split.
    let fin = named(&evs, "i", "finish");
    assert!(fin
        .iter()
        .any(|e| e["args"]["name"] == "sender"
            && e["args"]["timer_wait_us"].as_f64().unwrap() >= 2000.0));
    assert_eq!(trace.task_summaries().len(), 3);
}

#[test]
fn a_region_over_a_suspension_is_an_async_span() {
    let rt = traced(1);
    rt.block_on(|| {
        trace::region("handshake", || {
            pinstack::yield_now();
            pinstack::sleep(Duration::from_millis(1));
        })
    });
    let evs = events(&rt.trace().unwrap().to_chrome_json());
    let b = named(&evs, "b", "handshake");
    let e = named(&evs, "e", "handshake");
    assert_eq!((b.len(), e.len()), (1, 1));
    assert_eq!(b[0]["id"], e[0]["id"]);
    assert!(e[0]["ts"].as_f64().unwrap() - b[0]["ts"].as_f64().unwrap() >= 1000.0);
    assert!(named(&evs, "X", "handshake").is_empty());
}

#[test]
fn regions_just_run_without_tracing() {
    assert_eq!(trace::region("outside", || 3), 3);
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    assert_eq!(rt.block_on(|| trace::region("untraced", || 4)), 4);
    assert!(rt.trace().is_none());
}

#[test]
fn a_full_ring_keeps_the_newest_events_and_counts_the_lost() {
    let rt = Runtime::builder()
        .worker_threads(1)
        .ignore_environment()
        .tracing(true)
        .trace_buffer_events(64)
        .build()
        .unwrap();
    rt.block_on(|| {
        for _ in 0..1000 {
            pinstack::yield_now();
        }
    });
    let t = rt.trace().unwrap();
    assert_eq!(t.len(), 64);
    assert!(t.lost_events() >= 1000 - 64, "{}", t.lost_events());
    let evs = events(&t.to_chrome_json());
    assert!(named(&evs, "X", "block_on").len() >= 30);
    assert!(rt.trace().unwrap().len() == 64);
}

#[test]
fn bad_trace_settings_are_errors() {
    let e = Runtime::builder()
        .tracing(true)
        .trace_buffer_events(0)
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("trace_buffer_events"), "{e}");
    let e = Runtime::builder()
        .scheduling_delay_sample_every(0)
        .build()
        .unwrap_err();
    assert!(
        e.to_string().contains("scheduling_delay_sample_every"),
        "{e}"
    );
}

#[test]
fn a_task_done_in_one_resume_has_a_summary_too() {
    let rt = traced(1);
    let t0 = Instant::now();
    let h = task::Builder::new()
        .name("quick")
        .spawn_on(|| (0..1000u64).sum::<u64>(), &rt.handle())
        .unwrap();
    assert_eq!(h.join().unwrap(), 499_500);
    let outer = t0.elapsed();
    let s = summary(&rt, "quick");
    assert_eq!(s.resumes, 1);
    assert_eq!(s.lifetime(), s.running + s.runnable, "{s:?}");
    assert!(s.lifetime() <= outer, "{s:?}");
    let evs = events(&rt.trace().unwrap().to_chrome_json());
    let fin = named(&evs, "i", "finish");
    assert!(fin
        .iter()
        .any(|e| e["args"]["name"] == "quick" && e["args"]["resumes"] == 1));
    let spawn = named(&evs, "i", "spawn");
    assert!(spawn.iter().any(|e| e["args"]["name"] == "quick"
        && e["args"]["by"] == "a thread outside the runtime"
        && e["tid"] == 1));
}
