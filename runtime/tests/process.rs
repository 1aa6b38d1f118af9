//! Child processes: exit statuses, pipes, environment, errors, kill, many
//! children at once, plain threads, and reaping of dropped children.
//!
//! Zombie and liveness checks read the kernel's view in `/proc/<pid>/stat`.
//! Loops that wait for the kernel have a generous deadline that fails the
//! test instead of hanging it; no assertion depends on how fast anything is.

use pinstack::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use pinstack::Runtime;
use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rt(workers: usize) -> Runtime {
    Runtime::builder()
        .worker_threads(workers)
        .build()
        .expect("runtime starts")
}

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script);
    c
}

/// `(state, parent pid, start time)` of `pid`, from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, u32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f[0].chars().next()?;
    let ppid = f[1].parse().ok()?;
    let start = f[19].parse().ok()?;
    Some((state, ppid, start))
}

const PATIENCE: Duration = Duration::from_secs(60);

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let give_up = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < give_up, "gave up waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until the process `(pid, start)` no longer exists: reaped (a
/// reused pid has another start time).
fn wait_reaped(pid: u32, start: u64) {
    wait_for(&format!("pid {pid} to be reaped"), || {
        proc_stat(pid).is_none_or(|(_, _, s)| s != start)
    });
}

/// No zombie child of ours with this pid.
fn assert_not_our_zombie(pid: u32) {
    let me = std::process::id();
    if let Some((state, ppid, _)) = proc_stat(pid) {
        assert!(
            !(state == 'Z' && ppid == me),
            "pid {pid} is still a zombie of this process"
        );
    }
}

fn numbers(from: u32, to: u32) -> String {
    (from..=to).map(|i| format!("{i}\n")).collect()
}

#[test]
fn exit_codes() {
    let rt = rt(2);
    rt.block_on(|| {
        for code in [0, 1, 3, 42, 255] {
            let st = sh(&format!("exit {code}")).status().unwrap();
            assert_eq!(st.code(), Some(code), "{st:?}");
            assert_eq!(st.success(), code == 0);
        }
        assert!(Command::new("true").status().unwrap().success());
        assert_eq!(Command::new("false").status().unwrap().code(), Some(1));
    });
}

#[test]
fn output_captures_stdout_and_stderr() {
    let rt = rt(2);
    let out = rt
        .block_on(|| sh("echo out; echo err >&2; exit 5").output())
        .unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.status.code(), Some(5));
}

/// Writes well over a pipe's capacity to stderr before anything to stdout:
/// a parent reading stdout first, alone, would deadlock.
const BIG: &str = "seq 1 200000 >&2; seq 1 300000; echo tail >&2";

fn check_big(out: &std::process::Output) {
    assert!(out.status.success(), "{:?}", out.status);
    let want_out = numbers(1, 300_000);
    let mut want_err = numbers(1, 200_000);
    want_err.push_str("tail\n");
    assert!(want_out.len() > 1 << 20 && want_err.len() > 1 << 20);
    assert_eq!(out.stdout.len(), want_out.len());
    assert!(out.stdout == want_out.as_bytes(), "stdout content differs");
    assert_eq!(out.stderr.len(), want_err.len());
    assert!(out.stderr == want_err.as_bytes(), "stderr content differs");
}

#[test]
fn large_output_on_both_pipes_in_a_task() {
    let rt = rt(2);
    let out = rt.block_on(|| sh(BIG).output()).unwrap();
    check_big(&out);
}

#[test]
fn large_output_on_both_pipes_on_a_plain_thread() {
    let out = std::thread::spawn(|| sh(BIG).output())
        .join()
        .unwrap()
        .unwrap();
    check_big(&out);
}

#[test]
fn stdin_piped_through_cat() {
    let rt = rt(2);
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let expect = data.clone();
    let back = rt
        .block_on(move || -> io::Result<Vec<u8>> {
            let mut child = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let mut stdin = child.stdin.take().unwrap();
            let writer = pinstack::spawn(move || stdin.write_all(&data));
            let mut back = Vec::new();
            child.stdout.take().unwrap().read_to_end(&mut back)?;
            writer.join().unwrap()?;
            assert!(child.wait()?.success());
            Ok(back)
        })
        .unwrap();
    assert_eq!(back.len(), expect.len());
    assert!(back == expect, "cat returned different bytes");
}

#[test]
fn wait_with_output_closes_stdin() {
    let rt = rt(2);
    let out = rt
        .block_on(|| {
            let mut child = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()?;
            child.stdin.as_mut().unwrap().write_all(b"abc")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"abc");
    assert!(out.stderr.is_empty());
}

#[test]
fn env_set_clear_and_remove() {
    let rt = rt(2);
    rt.block_on(|| {
        let out = sh("printf '%s|%s' \"$PINSTACK_A\" \"$PINSTACK_B\"")
            .env("PINSTACK_A", "one")
            .envs([("PINSTACK_B", "two")])
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"one|two");

        let out = Command::new("/usr/bin/env")
            .env("EARLY", "x")
            .env_clear()
            .env("ONLY", "1")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ONLY=1\n");

        // An inherited variable is passed on, unless removed.
        let (key, val) = std::env::vars()
            .find(|(k, v)| !k.is_empty() && !v.contains('\n'))
            .expect("the test runs with some environment");
        let line = format!("{key}={val}\n");
        let out = Command::new("/usr/bin/env").output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains(&line));
        let out = Command::new("/usr/bin/env")
            .env_remove(&key)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.lines().any(|l| l.starts_with(&format!("{key}="))),
            "{key} still set: {text}"
        );
    });
}

#[test]
fn path_set_for_the_child_is_searched() {
    let rt = rt(2);
    rt.block_on(|| {
        let err = Command::new("sh")
            .env("PATH", "/pinstack-nonexistent-dir")
            .status()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("`sh`"), "{err}");
        let st = Command::new("sh")
            .env("PATH", "/pinstack-nonexistent-dir:/bin")
            .args(["-c", "exit 4"])
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(4));
    });
}

#[test]
fn current_dir() {
    let rt = rt(2);
    let dir = std::env::temp_dir().join(format!("pinstack-cwd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    let d2 = dir.clone();
    rt.block_on(move || {
        let out = Command::new("pwd").current_dir(&d2).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{}\n", d2.display())
        );
        let missing = d2.join("no-such-subdir");
        let err = Command::new("pwd")
            .current_dir(&missing)
            .output()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_program_is_not_found_and_named() {
    let rt = rt(2);
    rt.block_on(|| {
        for prog in ["pinstack-no-such-program", "/nonexistent/pinstack-prog"] {
            let err = Command::new(prog).spawn().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
            assert!(err.to_string().contains(prog), "{err}");
        }
    });
}

#[test]
fn non_executable_file_is_permission_denied() {
    let path = std::env::temp_dir().join(format!("pinstack-noexec-{}", std::process::id()));
    std::fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
    let err = Command::new(&path).status().unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("pinstack-noexec"), "{err}");
}

#[test]
fn nul_byte_in_argument_is_invalid_input() {
    let err = Command::new("echo").arg("a\0b").status().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
}

#[test]
fn kill_then_wait_reports_the_signal() {
    let rt = rt(2);
    rt.block_on(|| {
        let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
        assert!(child.try_wait().unwrap().is_none());
        child.kill().unwrap();
        let st = child.wait().unwrap();
        assert_eq!(st.signal(), Some(libc::SIGKILL), "{st:?}");
        assert_eq!(st.code(), None);
        assert!(!st.success());
        // Reaped: kill is a no-op and the status is remembered.
        child.kill().unwrap();
        assert_eq!(child.try_wait().unwrap(), Some(st));
        assert_eq!(child.wait().unwrap(), st);
        assert_not_our_zombie(child.id());
    });
}

#[test]
fn wait_timeout_gives_up_without_reaping() {
    let rt = rt(2);
    rt.block_on(|| {
        let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
        assert_eq!(child.wait_timeout(Duration::from_millis(20)).unwrap(), None);
        let (state, _, _) = proc_stat(child.id()).expect("still there");
        assert_ne!(state, 'Z');
        child.kill().unwrap();
        let st = child.wait_timeout(PATIENCE).unwrap().expect("exited");
        assert_eq!(st.signal(), Some(libc::SIGKILL));
    });
}

#[test]
fn many_children_from_many_tasks() {
    let rt = rt(2);
    let results: Vec<(u32, i32, i32)> = rt.block_on(|| {
        let tasks: Vec<_> = (0..50)
            .map(|t| {
                pinstack::spawn(move || {
                    (0..4)
                        .map(|k| {
                            let want = (t * 4 + k) % 256;
                            let mut c = if k == 0 {
                                Command::new("/bin/true")
                            } else {
                                sh(&format!("exit {want}"))
                            };
                            let mut child = c.spawn().unwrap();
                            let got = child.wait().unwrap().code().unwrap();
                            (child.id(), if k == 0 { 0 } else { want }, got)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        tasks.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.len(), 200);
    for (pid, want, got) in results {
        assert_eq!(want, got, "child {pid}");
        assert_not_our_zombie(pid);
    }
}

/// With one worker, a task waiting for a child must let the other task
/// run: the child exits only after the other task has counted to 100 and
/// written to its stdin. A blocked worker would let `timeout` kill the
/// child instead (status 124), failing the test rather than hanging it.
#[test]
fn wait_suspends_the_task_not_the_worker() {
    let rt = rt(1);
    let count = Arc::new(AtomicUsize::new(0));
    let c2 = count.clone();
    let (status, seen) = rt.block_on(move || {
        let mut child = Command::new("timeout")
            .args(["60", "sh", "-c", "read x; exit 7"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let ticker = pinstack::spawn(move || {
            for _ in 0..100 {
                c2.fetch_add(1, SeqCst);
                pinstack::yield_now();
            }
            stdin.write_all(b"go\n").unwrap();
        });
        let status = child.wait().unwrap();
        let seen = count.load(SeqCst);
        ticker.join().unwrap();
        (status, seen)
    });
    assert_eq!(status.code(), Some(7), "{status:?}");
    assert_eq!(seen, 100);
}

/// As above, for a task suspended reading the child's stdout.
#[test]
fn pipe_read_suspends_the_task_not_the_worker() {
    let rt = rt(1);
    let count = Arc::new(AtomicUsize::new(0));
    let c2 = count.clone();
    let (text, seen) = rt.block_on(move || {
        let mut child = Command::new("timeout")
            .args(["60", "sh", "-c", "read x; echo \"got $x\""])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let ticker = pinstack::spawn(move || {
            for _ in 0..100 {
                c2.fetch_add(1, SeqCst);
                pinstack::yield_now();
            }
            stdin.write_all(b"hi\n").unwrap();
        });
        let mut text = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        let seen = count.load(SeqCst);
        ticker.join().unwrap();
        assert!(child.wait().unwrap().success());
        (text, seen)
    });
    assert_eq!(text, "got hi\n");
    assert_eq!(seen, 100);
}

#[test]
fn works_from_a_plain_thread() {
    std::thread::spawn(|| {
        assert!(!pinstack::task::in_task());
        assert_eq!(sh("exit 9").status().unwrap().code(), Some(9));
        let out = sh("echo x; echo y >&2").output().unwrap();
        assert_eq!(
            (&out.stdout[..], &out.stderr[..]),
            (&b"x\n"[..], &b"y\n"[..])
        );

        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let data = vec![b'z'; 500_000];
        let writer = std::thread::spawn(move || stdin.write_all(&data));
        let mut back = Vec::new();
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        writer.join().unwrap().unwrap();
        assert_eq!(back.len(), 500_000);
        assert!(back.iter().all(|&b| b == b'z'));
        assert!(child.wait().unwrap().success());

        let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
        child.kill().unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    })
    .join()
    .unwrap();
}

#[test]
fn pipeline_from_child_stdout() {
    let rt = rt(2);
    let out = rt
        .block_on(|| -> io::Result<_> {
            let mut first = sh("echo hello; echo world")
                .stdout(Stdio::piped())
                .spawn()?;
            let out = Command::new("tr")
                .args(["a-z", "A-Z"])
                .stdin(first.stdout.take().unwrap())
                .output()?;
            assert!(first.wait()?.success());
            Ok(out)
        })
        .unwrap();
    assert_eq!(out.stdout, b"HELLO\nWORLD\n");
}

#[test]
fn stdio_null() {
    let rt = rt(2);
    let out = rt
        .block_on(|| {
            // stdin from /dev/null reads as empty; stderr discarded.
            sh("cat; echo gone >&2; echo done")
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
        })
        .unwrap();
    assert_eq!(out.stdout, b"done\n");
    assert!(out.stderr.is_empty());
}

#[test]
fn dropped_exited_child_is_reaped() {
    let child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    wait_for("the child to become a zombie", || {
        matches!(proc_stat(pid), Some(('Z', _, _)))
    });
    let (_, ppid, start) = proc_stat(pid).unwrap();
    assert_eq!(ppid, std::process::id());
    drop(child);
    wait_reaped(pid, start);
}

#[test]
fn dropped_running_child_is_reaped_when_it_exits() {
    let rt = rt(2);
    let child = rt.block_on(|| Command::new("sleep").arg("1000").spawn().unwrap());
    let pid = child.id();
    let (state, _, start) = proc_stat(pid).unwrap();
    assert_ne!(state, 'Z');
    drop(child);
    // Dropping did not kill it.
    let (state, _, s2) = proc_stat(pid).expect("still running after drop");
    assert_eq!(s2, start);
    assert_ne!(state, 'Z');
    // SAFETY: `pid` is our child, not yet reaped (it is running), so the
    // pid cannot name another process.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    wait_reaped(pid, start);
}

#[test]
fn kill_on_drop_kills_and_reaps() {
    let mut cmd = Command::new("sleep");
    cmd.arg("1000").kill_on_drop(true);
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let (_, _, start) = proc_stat(pid).unwrap();
    drop(child);
    wait_reaped(pid, start);
}

#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Command>();
    send_sync::<Child>();
    send_sync::<ChildStdin>();
    send_sync::<ChildStdout>();
    send_sync::<ChildStderr>();
    send_sync::<Stdio>();
}
