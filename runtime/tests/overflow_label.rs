//! A task whose stack overflows is named in the report: the worker names
//! the running task through a label source installed once per worker thread
//! (no label is stored per resume). The test re-runs itself in a child
//! process, lets the child crash, and reads what it printed.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

const ROLE: &str = "PINSTACK_OVERFLOW_LABEL_CHILD";

#[inline(never)]
fn recurse_forever(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth as u8; 512]);
    if depth == u64::MAX {
        return frame[0] as u64;
    }
    recurse_forever(depth + 1) + std::hint::black_box(frame[3]) as u64
}

#[test]
fn a_named_task_that_overflows_is_named_in_the_report() {
    if std::env::var_os(ROLE).is_some() {
        let rt = pinstack::Runtime::builder()
            .worker_threads(1)
            .build()
            .unwrap();
        rt.block_on(|| {
            // Another task first, so the label is not a leftover of the
            // first resume.
            pinstack::spawn(|| 1).join().unwrap();
            let h = pinstack::task::Builder::new()
                .name("deep-recursion-task")
                .stack_size(16 * 1024)
                .spawn(|| recurse_forever(0))
                .unwrap();
            let _ = h.join();
        });
        unreachable!("the task must overflow");
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_named_task_that_overflows_is_named_in_the_report",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{stderr}");
    assert!(
        stderr.contains("stack overflow in deep-recursion-task: 16 KiB stack class"),
        "{stderr}"
    );
}
