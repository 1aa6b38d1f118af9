//! The `compare` binary end to end: every workload at a tiny size prints
//! exactly its documented lines (BENCHMARKS.md format) and nothing else on
//! stdout; server children start, serve and stop.
//!
//! Sizes are tiny, so the figures themselves mean nothing here; only the
//! shape of the output and the success of every run are checked.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pinstack_benches::child::ServerChild;

const EXE: &str = env!("CARGO_BIN_EXE_compare");

/// One parsed figure line.
#[derive(Debug)]
struct Line {
    workload: String,
    metric: String,
    n: u64,
    pinstack: f64,
    baseline: String,
    other: f64,
    /// Half a unit of the last printed decimal of the values.
    rounding: f64,
    ratio: f64,
    /// Half a unit of the last printed decimal of the ratio.
    ratio_rounding: f64,
    better_higher: bool,
}

fn parse_line(line: &str) -> Line {
    let fields: Vec<(&str, &str)> = line
        .split(' ')
        .map(|f| {
            f.split_once('=')
                .unwrap_or_else(|| panic!("field {f:?} in {line:?}"))
        })
        .collect();
    assert!(
        fields.len() == 6 || fields.len() == 7,
        "{} fields in {line:?}",
        fields.len()
    );
    let keys: Vec<&str> = fields.iter().map(|f| f.0).collect();
    assert_eq!(
        &keys[..4],
        ["workload", "metric", "n", "pinstack"],
        "{line:?}"
    );
    assert_eq!(keys[5], "ratio", "{line:?}");
    let better_higher = fields.len() == 7;
    if better_higher {
        assert_eq!(fields[6], ("better", "higher"), "{line:?}");
    }
    let num = |s: &str| -> f64 {
        s.parse()
            .unwrap_or_else(|e| panic!("{s:?} in {line:?}: {e}"))
    };
    let half_unit = |s: &str| {
        let decimals = s.split_once('.').map_or(0, |(_, d)| d.len());
        0.5 * 10f64.powi(-(decimals as i32))
    };
    Line {
        rounding: half_unit(fields[3].1),
        ratio_rounding: half_unit(fields[5].1),
        workload: fields[0].1.to_string(),
        metric: fields[1].1.to_string(),
        n: fields[2].1.parse().expect("n is an integer"),
        pinstack: num(fields[3].1),
        baseline: fields[4].0.to_string(),
        other: num(fields[4].1),
        ratio: num(fields[5].1),
        better_higher,
    }
}

/// Runs `compare ARGS`, asserts success, and returns its parsed lines.
fn compare(args: &[&str]) -> Vec<Line> {
    let out = Command::new(EXE).args(args).output().expect("run compare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "compare {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let lines: Vec<Line> = stdout.lines().map(parse_line).collect();
    for l in &lines {
        assert!(l.pinstack.is_finite() && l.other.is_finite(), "{l:?}");
        if l.other > l.rounding {
            // The printed values are rounded: the ratio lies between the
            // quotients of their extremes (and is itself rounded).
            let lo = (l.pinstack - l.rounding).max(0.0) / (l.other + l.rounding);
            let hi = (l.pinstack + l.rounding) / (l.other - l.rounding);
            assert!(
                l.ratio + l.ratio_rounding >= lo && l.ratio - l.ratio_rounding <= hi,
                "ratio {} outside [{lo}, {hi}]: {l:?}",
                l.ratio
            );
        }
    }
    lines
}

fn metrics(lines: &[Line]) -> Vec<(&str, &str, u64)> {
    lines
        .iter()
        .map(|l| (l.metric.as_str(), l.baseline.as_str(), l.n))
        .collect()
}

#[test]
fn spawn_yield_pingpong_print_their_lines() {
    let l = compare(&["spawn", "--quick", "--n", "3000"]);
    assert_eq!(
        metrics(&l),
        [
            ("ns_per_task", "tokio", 3000),
            ("peak_rss_mib", "tokio", 3000)
        ]
    );
    assert!(l.iter().all(|l| l.workload == "spawn" && !l.better_higher));
    assert!(
        l[1].pinstack >= 1.0 && l[1].other >= 1.0,
        "peak RSS in MiB: {l:?}"
    );

    let l = compare(&["yield", "--n", "20"]);
    assert_eq!(metrics(&l), [("ns_per_yield", "tokio", 20_000)]);

    let l = compare(&["pingpong", "--n", "2000"]);
    assert_eq!(metrics(&l), [("ns_per_round_trip", "tokio", 2000)]);
}

#[test]
fn idle_deepstack_arena_print_their_lines() {
    let l = compare(&["idle", "--n", "3000"]);
    assert_eq!(
        metrics(&l),
        [
            ("kib_per_task", "tokio", 3000),
            ("ns_per_create", "tokio", 3000)
        ]
    );
    // Each parked pinstack task holds at least one touched stack page.
    assert!(l[0].pinstack >= 4.0, "{l:?}");

    let l = compare(&["deepstack", "--n", "2000"]);
    assert_eq!(
        metrics(&l),
        [
            ("ns_per_task", "tokio", 2000),
            ("cost_vs_spawn", "tokio", 2000)
        ]
    );

    let l = compare(&["arena", "--n", "5000"]);
    assert_eq!(
        metrics(&l),
        [
            ("ns_per_request", "malloc", 5000),
            ("peak_rss_mib", "malloc", 5000),
            ("rss_growth_pct", "malloc", 5000),
        ]
    );
}

#[test]
fn echo_prints_rps_and_latencies() {
    let l = compare(&["echo", "--quick", "--n", "50"]);
    assert_eq!(
        metrics(&l),
        [
            ("rps", "tokio", 50),
            ("p99_us", "tokio", 50),
            ("p50_us", "tokio", 50),
            ("p999_us", "tokio", 50),
        ]
    );
    assert!(l[0].better_higher && l[0].pinstack > 0.0 && l[0].other > 0.0);
    assert!(l[1..].iter().all(|l| !l.better_higher));
}

#[test]
fn procspawn_prints_per_child_and_loaded_quotients() {
    let l = compare(&["procspawn", "--quick", "--n", "2000"]);
    assert_eq!(
        metrics(&l),
        [
            ("us_per_child", "fork", 2000),
            ("loaded_vs_unloaded", "fork", 2000)
        ]
    );
    assert!(l.iter().all(|l| l.pinstack > 0.0 && l.other > 0.0), "{l:?}");
}

#[test]
fn echo_server_children_serve_and_stop_on_stdin_eof() {
    for rt in ["pinstack", "tokio"] {
        let server = ServerChild::start_exe(Path::new(EXE), "echo.server", &[rt]).unwrap();
        let addr: SocketAddr = server
            .first_line()
            .strip_prefix("listening on ")
            .expect("readiness line")
            .parse()
            .unwrap();
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"hello, echo").unwrap();
        let mut back = [0u8; 11];
        c.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"hello, echo");
        drop(c);
        assert_eq!(
            server.stop(Duration::from_secs(20)).unwrap(),
            "stopped",
            "{rt}"
        );
    }
}

#[test]
fn bad_invocations_fail_with_a_message() {
    let out = Command::new(EXE).arg("nope").output().unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("known workloads") && err.contains("deepstack"),
        "{err}"
    );

    let out = Command::new(EXE)
        .args(["spawn", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = Command::new(EXE)
        .args(["--pinstack-bench-child", "idle.child", "neither"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pinstack or tokio"));
}
