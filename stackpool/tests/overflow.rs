//! Guard pages really fault, and the fault is reported: each test re-runs
//! itself in a child process (same test binary, `--exact` filter, an
//! environment variable selecting the child role), lets the child crash,
//! and checks how it died and what it printed.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

use corosensei::{Coroutine, Yielder};
use pinstack_stackpool::{set_overflow_label, GuardMode, StackPool};

const ROLE: &str = "PINSTACK_STACKPOOL_TEST_CHILD";

/// Runs `test` of this binary in a child with `ROLE` set.
fn run_child(test: &str) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

fn is_child() -> bool {
    std::env::var_os(ROLE).is_some()
}

#[inline(never)]
fn recurse_forever(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth as u8; 512]);
    if depth == u64::MAX {
        return frame[0] as u64;
    }
    recurse_forever(depth + 1) + std::hint::black_box(frame[3]) as u64
}

/// Parses `stack 0x..-0x..` out of the report.
fn reported_stack_range(stderr: &str) -> (usize, usize) {
    let rest = stderr
        .split("stack class, stack 0x")
        .nth(1)
        .expect("stack range in report");
    let (lo, rest) = rest.split_once("-0x").unwrap();
    let hi: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    (
        usize::from_str_radix(lo, 16).unwrap(),
        usize::from_str_radix(&hi, 16).unwrap(),
    )
}

/// Parses the child's `child-stack lo hi` line.
fn printed_stack_range(stderr: &str) -> (usize, usize) {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("child-stack "))
        .expect("child printed its stack");
    let mut it = line.split_whitespace().map(|v| v.parse::<usize>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

fn overflow_in_coroutine(mode: GuardMode) {
    static LABEL: &str = "task 'conn' (spawned at src/main.rs:12)";
    let pool = StackPool::builder().guard(mode).build().unwrap();
    let stack = pool.acquire(16 * 1024).unwrap();
    let r = stack.usable_range();
    eprintln!("child-stack {} {}", r.start, r.end);
    // SAFETY: a 'static str stays valid while set.
    unsafe { set_overflow_label(LABEL.as_ptr(), LABEL.len()) };
    let mut co = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| recurse_forever(0));
    co.resume(());
    unreachable!("the coroutine must overflow");
}

fn check_overflow_report(out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{:?}\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains(
            "stack overflow in task 'conn' (spawned at src/main.rs:12): 16 KiB stack class, stack 0x"
        ),
        "{stderr}"
    );
    assert!(stderr.contains(", guard 0x"), "{stderr}");
    assert_eq!(
        reported_stack_range(&stderr),
        printed_stack_range(&stderr),
        "{stderr}"
    );
}

#[test]
fn coroutine_overflow_with_madvise_guard_reports_task_and_aborts() {
    if is_child() {
        overflow_in_coroutine(GuardMode::Madvise);
    }
    check_overflow_report(&run_child(
        "coroutine_overflow_with_madvise_guard_reports_task_and_aborts",
    ));
}

#[test]
fn coroutine_overflow_with_mprotect_guard_reports_task_and_aborts() {
    if is_child() {
        overflow_in_coroutine(GuardMode::Mprotect);
    }
    check_overflow_report(&run_child(
        "coroutine_overflow_with_mprotect_guard_reports_task_and_aborts",
    ));
}

#[test]
fn write_into_guard_page_without_label_is_reported() {
    if is_child() {
        let pool = StackPool::new().unwrap();
        let stack = pool.acquire(0).unwrap();
        let g = stack.guard_range();
        eprintln!("child-guard {:#x}", g.start);
        // SAFETY: deliberately invalid: this write must fault.
        unsafe { std::ptr::write_volatile((g.end - 8) as *mut u64, 1) };
        unreachable!("the guard page must fault");
    }
    let out = run_child("write_into_guard_page_without_label_is_reported");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{stderr}");
    assert!(
        stderr.contains("stack overflow in a pinstack coroutine: 8 KiB stack class"),
        "{stderr}"
    );
    let guard = stderr
        .lines()
        .find_map(|l| l.strip_prefix("child-guard "))
        .unwrap()
        .to_string();
    assert!(stderr.contains(&format!(", guard {guard}-0x")), "{stderr}");
}

#[test]
fn fault_outside_guard_pages_chains_to_the_previous_handler() {
    if is_child() {
        let _pool = StackPool::new().unwrap();
        let _stack = _pool.acquire(0).unwrap();
        // SAFETY: mapping a fresh page and unmapping it at once.
        let addr = unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            libc::munmap(p, 4096);
            p as usize
        };
        // SAFETY: deliberately invalid: an unmapped address.
        unsafe { std::ptr::write_volatile(addr as *mut u64, 1) };
        unreachable!("the write must fault");
    }
    let out = run_child("fault_outside_guard_pages_chains_to_the_previous_handler");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Not ours: Rust's handler sees it is not a thread-stack overflow either
    // and restores the default action, so the process dies of SIGSEGV.
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{stderr}");
    assert!(!stderr.contains("stack overflow in"), "{stderr}");
}

#[test]
fn thread_stack_overflow_is_still_reported_by_rust() {
    if is_child() {
        let _pool = StackPool::new().unwrap();
        let t = std::thread::Builder::new()
            .name("deep".into())
            .stack_size(64 * 1024)
            .spawn(|| recurse_forever(0))
            .unwrap();
        let _ = t.join();
        unreachable!("the thread must overflow");
    }
    let out = run_child("thread_stack_overflow_is_still_reported_by_rust");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{stderr}");
    assert!(stderr.contains("thread 'deep'"), "{stderr}");
    assert!(stderr.contains("has overflowed its stack"), "{stderr}");
    assert!(!stderr.contains("stack overflow in"), "{stderr}");
}
