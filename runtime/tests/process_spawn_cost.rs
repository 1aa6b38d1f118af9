//! Hand measurement (ignored by default): does the cost of starting a child
//! grow with the parent's mapped memory? `posix_spawn` (pinstack's
//! `Command`) against `fork` + `execve` + `waitpid`, first with nothing
//! extra mapped, then with 20 GiB reserved (`PROT_NONE | MAP_NORESERVE`, as
//! a pool of a million stacks would be) and 200,000 pages of it touched.
//!
//! ```text
//! cargo test --release -p pinstack --test process_spawn_cost -- --ignored --nocapture
//! ```
//!
//! It prints microseconds per child and asserts only that every child ran
//! and exited 0: the numbers are for a human to read, never a pass/fail
//! threshold (machines are shared and noisy).

use pinstack::process::Command;
use std::ffi::CString;
use std::time::Instant;

const CHILDREN: u32 = 200;
const RESERVE: usize = 20 << 30;
const TOUCHED_PAGES: usize = 200_000;

fn per_child_spawn() -> f64 {
    let t = Instant::now();
    for _ in 0..CHILDREN {
        let st = Command::new("/bin/true").status().expect("spawn /bin/true");
        assert!(st.success());
    }
    t.elapsed().as_secs_f64() * 1e6 / CHILDREN as f64
}

fn per_child_fork() -> f64 {
    let path = CString::new("/bin/true").unwrap();
    let argv = [path.as_ptr(), std::ptr::null()];
    let t = Instant::now();
    for _ in 0..CHILDREN {
        // SAFETY: between fork and execv the child calls only the
        // async-signal-safe `execv` and `_exit`, on memory prepared before
        // the fork, so the other threads' locks do not matter.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: as above; `argv` is NULL-terminated and `path` lives.
            unsafe {
                libc::execv(path.as_ptr(), argv.as_ptr());
                libc::_exit(127);
            }
        }
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(r, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }
    t.elapsed().as_secs_f64() * 1e6 / CHILDREN as f64
}

fn vm_line(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[test]
#[ignore = "hand measurement: prints spawn cost with and without 20 GiB mapped"]
fn spawn_cost_does_not_grow_with_mapped_memory() {
    // Warm up (page cache, dynamic loader) before measuring.
    per_child_spawn();
    per_child_fork();
    let spawn_small = per_child_spawn();
    let fork_small = per_child_fork();
    println!(
        "nothing mapped (VmSize {}, VmRSS {}): posix_spawn {spawn_small:.0} us/child, \
         fork+exec {fork_small:.0} us/child",
        vm_line("VmSize:"),
        vm_line("VmRSS:")
    );

    // SAFETY: a fresh anonymous private reservation; no existing memory is
    // affected and the result is checked.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            RESERVE,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(
        base,
        libc::MAP_FAILED,
        "{}",
        std::io::Error::last_os_error()
    );
    let spawn_reserved = per_child_spawn();
    let fork_reserved = per_child_fork();
    println!(
        "20 GiB reserved, untouched (VmSize {}, VmRSS {}): posix_spawn {spawn_reserved:.0} \
         us/child, fork+exec {fork_reserved:.0} us/child",
        vm_line("VmSize:"),
        vm_line("VmRSS:")
    );

    let touched = TOUCHED_PAGES * 4096;
    // SAFETY: `[base, base + touched)` lies inside the reservation above.
    let r = unsafe { libc::mprotect(base, touched, libc::PROT_READ | libc::PROT_WRITE) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    for i in 0..TOUCHED_PAGES {
        // SAFETY: page `i` lies in the read-write part made above.
        unsafe { (base as *mut u8).add(i * 4096).write_volatile(1) };
    }

    let spawn_big = per_child_spawn();
    let fork_big = per_child_fork();
    // Again after the forks, to tell a trend from noise.
    let spawn_big = (spawn_big + per_child_spawn()) / 2.0;
    println!(
        "20 GiB reserved, {TOUCHED_PAGES} pages touched (VmSize {}, VmRSS {}): \
         posix_spawn {spawn_big:.0} us/child, fork+exec {fork_big:.0} us/child",
        vm_line("VmSize:"),
        vm_line("VmRSS:")
    );
    println!(
        "growth: posix_spawn x{:.2}, fork+exec x{:.2}",
        spawn_big / spawn_small,
        fork_big / fork_small
    );

    // SAFETY: unmaps exactly the reservation made above; nothing refers to it.
    assert_eq!(unsafe { libc::munmap(base, RESERVE) }, 0);
}
