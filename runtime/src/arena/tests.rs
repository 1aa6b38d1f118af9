//! Behaviour tests of the arena, its pool and its counters.
//!
//! Each test runs its body on a fresh thread, so it starts with an empty
//! thread-local pool and exact per-thread counters whatever else runs in the
//! process. Tests that read or change the process-wide settings hold
//! `CONFIG_LOCK`.

use super::*;
use crate::loom::sync::{Mutex, MutexGuard};
use std::cell::RefCell;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

static CONFIG_LOCK: Mutex<()> = Mutex::new(());

/// Serialises the tests that depend on the global settings.
fn config_lock() -> MutexGuard<'static, ()> {
    CONFIG_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `f` on a new thread (empty pool) and returns its result, re-raising
/// its panic.
fn on_fresh_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    match std::thread::spawn(f).join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The text of a caught panic.
fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    }
}

/// One request of the `arena` benchmark workload (BENCHMARKS.md): 50
/// objects of 16..256 bytes, every byte written, then a ~1 KiB string.
fn benchmark_request(a: &Arena, seed: u8) -> u64 {
    let mut checksum = 0u64;
    for i in 0..50 {
        let size = 16usize << (i % 5);
        let object = a.alloc_slice_fill_copy(size, 0u8);
        for (j, byte) in object.iter_mut().enumerate() {
            *byte = seed.wrapping_add(j as u8);
        }
        checksum += u64::from(object[size - 1]);
    }
    let mut s = a.string_with_capacity(1024);
    for i in 0..32 {
        write!(s, "{} wordwordwordword ", i * 1000).unwrap();
    }
    checksum + s.len() as u64
}

#[test]
fn reset_reuses_the_same_chunk() {
    let _config = config_lock();
    on_fresh_thread(|| {
        let first = with_arena(|a| {
            let x = a.alloc(0xdead_beef_u64);
            assert_eq!(*x, 0xdead_beef);
            (x as *mut u64 as usize, a.chunk_bytes())
        });
        for round in 0..3u64 {
            let again = with_arena(|a| {
                assert_eq!(a.chunk_bytes(), first.1, "chunk kept across the reset");
                let y = a.alloc(round);
                (y as *mut u64 as usize, a.chunk_bytes())
            });
            assert_eq!(again, first, "round {round}: same address, no new chunk");
        }
        let s = thread_stats();
        assert_eq!(s.created, 1, "one arena made, then reused");
        assert_eq!(s.resets, 4);
        assert_eq!(s.in_use, 0);
        assert_eq!(s.pooled, 1);
        assert_eq!(s.bytes_retained, first.1 as u64);
        assert_eq!(s.bytes_allocated, 4 * 8);
    });
}

#[test]
fn steady_state_requests_reuse_one_arena() {
    let _config = config_lock();
    on_fresh_thread(|| {
        let mut checksums = Vec::new();
        for seed in 0..200u8 {
            checksums.push(with_arena(|a| benchmark_request(a, seed)));
        }
        let warm = thread_stats();
        for seed in 0..200u8 {
            assert_eq!(
                with_arena(|a| benchmark_request(a, seed)),
                checksums[seed as usize]
            );
        }
        let s = thread_stats();
        assert_eq!(s.created, 1);
        assert_eq!(s.released_over_cap + s.released_pool_full, 0);
        assert_eq!(s.bytes_retained, warm.bytes_retained, "no growth once warm");
        assert!(s.bytes_retained <= retain_cap() as u64);
        // 50 objects: (16+32+64+128+256)*10 = 4960 bytes. (The string, the
        // newest allocation, gave its bytes back when it was dropped.)
        assert_eq!(s.bytes_allocated - warm.bytes_allocated, 200 * 4960);
    });
}

#[test]
fn retain_cap_releases_oversized_chunks() {
    let _config = config_lock();
    assert_eq!(retain_cap(), DEFAULT_RETAIN_CAP);
    on_fresh_thread(|| {
        with_arena(|a| {
            a.alloc_slice_fill_copy(1 << 20, 7u8);
            assert!(a.chunk_bytes() > DEFAULT_RETAIN_CAP);
        });
        let s = thread_stats();
        assert_eq!(s.released_over_cap, 1, "the 1 MiB chunk went back");
        assert_eq!((s.pooled, s.bytes_retained), (0, 0));
        with_arena(|a| assert_eq!(a.chunk_bytes(), 0, "fresh arena, no chunk"));
        assert_eq!(thread_stats().created, 2);
        // A small request stays under the cap and is pooled.
        with_arena(|a| {
            a.alloc_slice_fill_copy(1000, 1u8);
        });
        let s = thread_stats();
        assert_eq!((s.released_over_cap, s.pooled), (1, 1));
        assert!(s.bytes_retained > 0 && s.bytes_retained <= DEFAULT_RETAIN_CAP as u64);
    });
    // With a larger cap the big chunk is kept.
    set_retain_cap(4 << 20);
    let kept = on_fresh_thread(|| {
        with_arena(|a| {
            a.alloc_slice_fill_copy(1 << 20, 7u8);
        });
        thread_stats()
    });
    set_retain_cap(DEFAULT_RETAIN_CAP);
    assert_eq!(kept.released_over_cap, 0);
    assert!(kept.bytes_retained >= 1 << 20);
}

#[test]
fn limit_gives_a_typed_error_and_counts_a_hit() {
    on_fresh_thread(|| {
        with_arena_limit(64 * 1024, |a| {
            assert_eq!(a.limit(), 64 * 1024);
            let err = a.try_alloc_slice_fill_copy(100_000, 0u8).unwrap_err();
            assert!(err.is_limit_exceeded());
            assert!(!err.is_out_of_memory());
            assert_eq!(err.limit(), Some(64 * 1024));
            assert_eq!(err.requested(), Some(100_000));
            let msg = err.to_string();
            assert!(
                msg.contains("100000 bytes") && msg.contains("65536 bytes"),
                "{msg}"
            );
            assert!(msg.contains("with_arena_limit"), "{msg}");
            // The arena stays usable, and fills up to near its limit.
            let mut total = 0usize;
            while a.try_alloc_slice_fill_copy(1024, 1u8).is_ok() {
                total += 1024;
            }
            assert!(
                total >= 32 * 1024,
                "only {total} bytes fit under a 64 KiB limit"
            );
            assert!(a.chunk_bytes() <= 64 * 1024);
        });
        assert_eq!(
            thread_stats().limit_hits,
            2,
            "the big one and the last small one"
        );
    });
}

#[test]
fn limit_errors_from_collections_and_formatting() {
    on_fresh_thread(|| {
        with_arena_limit(8 * 1024, |a| {
            let mut v = a.vec::<u64>();
            let mut pushed = 0;
            let err = loop {
                match v.try_push(pushed) {
                    Ok(()) => pushed += 1,
                    Err(err) => break err,
                }
            };
            assert!(err.is_limit_exceeded());
            assert!(pushed >= 256, "only {pushed} u64s fit in 8 KiB");
            assert_eq!(v.len(), pushed as usize);
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64));
            assert!(a
                .try_vec_with_capacity::<u8>(1 << 20)
                .unwrap_err()
                .is_limit_exceeded());
            assert!(a.try_string_with_capacity(1 << 20).is_err());
            let mut s = a.string();
            let big = "x".repeat(10_000);
            let err = s.try_write_fmt(format_args!("{big}")).unwrap_err();
            assert!(err.is_limit_exceeded());
            assert!(a.try_format(format_args!("{big}{}", 1)).is_err());
            assert!(a.try_alloc_str(&big).is_err());
            assert!(a.try_alloc_slice_copy(big.as_bytes()).is_err());
        });
        assert!(thread_stats().limit_hits >= 6);
    });
}

#[test]
fn plain_forms_panic_with_the_error_message() {
    on_fresh_thread(|| {
        type Case = (&'static str, fn(&Arena));
        let cases: [Case; 4] = [
            ("alloc_slice_fill_copy", |a| {
                a.alloc_slice_fill_copy(10_000, 1u8);
            }),
            ("vec push", |a| {
                let mut v = a.vec();
                for i in 0..10_000u32 {
                    v.push(i);
                }
            }),
            ("write!", |a| {
                let mut s = a.string();
                for _ in 0..1000 {
                    s.write_str("0123456789").unwrap();
                }
            }),
            ("arena_format!", |a| {
                let big = "y".repeat(5000);
                crate::arena_format!(a, "{big}");
            }),
        ];
        for (name, case) in cases {
            let payload = catch_unwind(|| with_arena_limit(4096, case)).unwrap_err();
            let text = panic_text(payload);
            assert!(
                text.starts_with("pinstack arena limit exceeded"),
                "{name}: {text}"
            );
            assert!(
                text.contains("4096 bytes") && text.contains("set_default_limit"),
                "{text}"
            );
            // The scope was released while unwinding.
            assert_eq!(thread_stats().in_use, 0, "{name}");
        }
        assert_eq!(thread_stats().resets, 4);
        assert!(thread_stats().limit_hits >= 4);
    });
}

#[test]
fn default_limit_applies_to_new_scopes() {
    let _config = config_lock();
    set_default_limit(8 * 1024);
    let result = on_fresh_thread(|| {
        with_arena(|a| {
            (
                a.limit(),
                a.try_alloc_slice_fill_copy(20_000, 0u8).is_err(),
                RequestArena::new().limit(),
            )
        })
    });
    set_default_limit(DEFAULT_LIMIT);
    assert_eq!(result, (8 * 1024, true, 8 * 1024));
    assert_eq!(default_limit(), DEFAULT_LIMIT);
}

#[test]
fn smaller_limit_does_not_reuse_a_bigger_pooled_arena() {
    let _config = config_lock();
    on_fresh_thread(|| {
        with_arena(|a| {
            a.alloc_slice_fill_copy(30_000, 0u8);
        });
        let pooled = thread_stats();
        assert_eq!(pooled.pooled, 1);
        assert!(pooled.bytes_retained > 16 * 1024);
        with_arena_limit(4096, |a| {
            assert!(a.chunk_bytes() <= 4096);
            assert!(
                a.try_alloc_slice_fill_copy(8 * 1024, 0u8).is_err(),
                "limit enforced"
            );
        });
        let s = thread_stats();
        assert_eq!(s.created, 2);
        assert_eq!(s.released_over_cap, 1);
    });
}

#[test]
fn nested_scopes_get_distinct_arenas() {
    let _config = config_lock();
    on_fresh_thread(|| {
        with_arena(|outer| {
            let x = outer.alloc(1u64);
            with_arena(|inner| {
                assert!(!std::ptr::eq(outer, inner));
                let y = inner.alloc(2u64);
                assert_ne!(x as *mut u64, y as *mut u64);
                with_arena(|innermost| {
                    assert!(!std::ptr::eq(inner, innermost));
                    assert_eq!(thread_stats().in_use, 3);
                });
                assert_eq!(*y, 2);
            });
            assert_eq!(*x, 1, "the inner reset did not touch the outer arena");
            assert_eq!(thread_stats().in_use, 1);
        });
        let s = thread_stats();
        assert_eq!((s.in_use, s.pooled, s.created, s.resets), (0, 3, 3, 3));
        // The guard form nests the same way and reuses the pooled arenas.
        let a = RequestArena::new();
        let b = RequestArena::new();
        assert!(!std::ptr::eq(&*a, &*b));
        drop((a, b));
        assert_eq!(thread_stats().created, 3);
    });
}

#[test]
fn pool_keeps_at_most_max_pooled() {
    let _config = config_lock();
    set_max_pooled(2);
    let s = on_fresh_thread(|| {
        let guards: Vec<RequestArena> = (0..5)
            .map(|_| {
                let g = RequestArena::new();
                g.alloc(1u8);
                g
            })
            .collect();
        assert_eq!(thread_stats().in_use, 5);
        drop(guards);
        thread_stats()
    });
    set_max_pooled(DEFAULT_MAX_POOLED);
    assert_eq!((s.pooled, s.released_pool_full, s.in_use), (2, 3, 0));
}

#[test]
fn many_threads_at_once() {
    let _config = config_lock();
    const THREADS: usize = 8;
    const REQUESTS: u64 = 2000;
    let before = stats();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let expected = with_arena(|a| benchmark_request(a, t as u8));
                for _ in 0..REQUESTS - 1 {
                    let got = with_arena(|a| {
                        let tag = crate::arena_format!(a, "thread {t}");
                        let sum = benchmark_request(a, t as u8);
                        assert_eq!(tag, format!("thread {t}").as_str());
                        sum
                    });
                    assert_eq!(got, expected);
                }
                thread_stats()
            })
        })
        .collect();
    for handle in handles {
        let s = handle.join().unwrap();
        assert_eq!((s.resets, s.created, s.in_use), (REQUESTS, 1, 0));
    }
    // The exited threads' counts were folded into the process totals.
    let after = stats();
    assert!(after.resets - before.resets >= THREADS as u64 * REQUESTS);
    assert!(after.bytes_allocated - before.bytes_allocated >= THREADS as u64 * REQUESTS * 4960);
}

/// Counts drops into a shared log.
struct Noisy {
    id: u32,
    log: Rc<RefCell<Vec<u32>>>,
}

impl Drop for Noisy {
    fn drop(&mut self) {
        self.log.borrow_mut().push(self.id);
    }
}

#[test]
fn plain_alloc_never_runs_destructors() {
    on_fresh_thread(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        with_arena(|a| {
            let n = a.alloc(Noisy {
                id: 1,
                log: log.clone(),
            });
            assert_eq!(n.id, 1);
        });
        assert!(log.borrow().is_empty(), "bumpalo semantics: no drop");
        assert_eq!(
            Rc::strong_count(&log),
            2,
            "the leaked clone is still counted"
        );
    });
}

#[test]
fn alloc_with_drop_runs_destructors_at_scope_end_newest_first() {
    on_fresh_thread(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        with_arena(|a| {
            for id in 1..=3 {
                let n = a.alloc_with_drop(Noisy {
                    id,
                    log: log.clone(),
                });
                n.id *= 10;
                a.alloc_slice_fill_copy(100, 0u8);
            }
            assert!(
                log.borrow().is_empty(),
                "nothing dropped before the scope ends"
            );
        });
        assert_eq!(*log.borrow(), vec![30, 20, 10]);
        assert_eq!(Rc::strong_count(&log), 1);
        // Guard form, and an ArenaVec drops its elements (into_slice does not).
        let guard = RequestArena::new();
        let mut v = guard.vec();
        v.push(Noisy {
            id: 7,
            log: log.clone(),
        });
        drop(v);
        let mut kept = guard.vec();
        kept.push(Noisy {
            id: 8,
            log: log.clone(),
        });
        let slice = kept.into_slice();
        assert_eq!(slice[0].id, 8);
        guard.alloc_with_drop(Noisy {
            id: 9,
            log: log.clone(),
        });
        drop(guard);
        assert_eq!(*log.borrow(), vec![30, 20, 10, 7, 9]);
    });
}

#[test]
fn panicking_destructor_still_runs_the_others() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("bomb destructor");
        }
    }
    let _config = config_lock();
    on_fresh_thread(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let result = catch_unwind(AssertUnwindSafe(|| {
            with_arena(|a| {
                a.alloc_with_drop(Noisy {
                    id: 1,
                    log: log.clone(),
                });
                a.alloc_with_drop(Bomb);
                a.alloc_with_drop(Noisy {
                    id: 3,
                    log: log.clone(),
                });
            })
        }));
        assert!(panic_text(result.unwrap_err()).contains("bomb destructor"));
        assert_eq!(*log.borrow(), vec![3, 1]);
        let s = thread_stats();
        assert_eq!(s.in_use, 0);
        // The arena was freed, not pooled; the pool still works.
        assert_eq!(s.pooled, 0);
        with_arena(|a| assert_eq!(*a.alloc(5), 5));
        assert_eq!(thread_stats().pooled, 1);
    });
}

#[test]
fn destructor_may_open_a_scope() {
    struct Reentrant(Rc<RefCell<Vec<u32>>>);
    impl Drop for Reentrant {
        fn drop(&mut self) {
            let n = with_arena(|a| *a.alloc(41u32) + 1);
            self.0.borrow_mut().push(n);
        }
    }
    on_fresh_thread(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        with_arena(|a| {
            a.alloc_with_drop(Reentrant(log.clone()));
        });
        assert_eq!(*log.borrow(), vec![42]);
        assert_eq!(thread_stats().in_use, 0);
    });
}

#[test]
fn strings_vectors_and_formatting() {
    on_fresh_thread(|| {
        with_arena(|a| {
            let s = crate::arena_format!(a, "{}-{:04}", "id", 7);
            assert_eq!(s, "id-0007");
            let lit = a.format(format_args!("literal"));
            assert_eq!(lit.as_str(), "literal");
            let mut line = a.string();
            line.push_str("ab");
            line.push('c');
            write!(line, "{}", 12).unwrap();
            assert_eq!(line.pop(), Some('2'));
            assert_eq!(&*line, "abc1");
            let frozen: &str = line.into_str();
            let copied = a.alloc_str(frozen);
            copied.make_ascii_uppercase();
            assert_eq!((frozen, &*copied), ("abc1", "ABC1"));

            let mut v = a.vec_with_capacity(4);
            v.extend_from_slice(&[5u16, 6]);
            v.extend(7..10);
            assert_eq!(v, [5, 6, 7, 8, 9]);
            assert_eq!(v.iter().sum::<u16>(), 35);
            v.truncate(2);
            let owned: Vec<u16> = v.into_iter().collect();
            assert_eq!(owned, [5, 6]);
            let squares = a.alloc_slice_fill_with(4, |i| i * i);
            assert_eq!(squares, &[0, 1, 4, 9]);
        });
    });
}

/// Every piece length the string's copy distinguishes (0, 1-3, 4-7, 8-16,
/// over 16), written with `write_str`, `write!`, `push` and `push_str`, gives
/// the same text as `std::string::String`.
#[test]
fn string_write_matches_std_for_every_piece_length() {
    on_fresh_thread(|| {
        with_arena(|a| {
            let text: String = (0..200u32)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let mut ours = a.string();
            let mut std_string = String::new();
            for len in (0..=40).chain([63, 64, 65, 127, 200]) {
                let piece = &text[..len];
                ours.write_str(piece).unwrap();
                std_string.push_str(piece);
                let accent = char::from_u32(0xe9 + len as u32).unwrap();
                write!(ours, "{len}|{piece}|{accent:>3}").unwrap();
                write!(std_string, "{len}|{piece}|{accent:>3}").unwrap();
                ours.push('→');
                std_string.push('→');
                ours.push_str(piece);
                std_string.push_str(piece);
                assert_eq!(ours.as_str(), std_string, "after pieces of {len}");
            }
            assert!(ours.capacity() >= ours.len());
        });
    });
}

/// The first growth gives `MIN_STRING_CAPACITY` bytes and later ones at
/// least double, so a 4 KiB string built a byte at a time regrows only a few
/// times; and while the string is the arena's newest allocation, growing
/// reuses its old bytes: bumpalo bumps downwards, so the grown buffer ends
/// where the old one ended.
#[test]
fn string_growth_doubles_from_the_minimum_and_reuses_the_newest_buffer() {
    on_fresh_thread(|| {
        // A first scope leaves a pooled arena with a 48 KiB chunk, so the
        // second one builds its string without needing a new chunk.
        with_arena(|a| {
            a.alloc_slice_fill_copy(48 * 1024, 0u8);
        });
        with_arena(|a| {
            let chunk = a.chunk_bytes();
            assert!(chunk >= 48 * 1024);
            let mut s = a.string();
            assert_eq!(s.capacity(), 0, "no buffer before the first write");
            let mut capacities = Vec::new();
            let mut end = None;
            for _ in 0..4096 {
                s.push_str("x");
                if capacities.last() != Some(&s.capacity()) {
                    capacities.push(s.capacity());
                    let this_end = s.as_ptr() as usize + s.capacity();
                    assert_eq!(*end.get_or_insert(this_end), this_end, "{capacities:?}");
                }
            }
            assert_eq!(s.len(), 4096);
            assert!(s.bytes().all(|b| b == b'x'));
            assert_eq!(a.chunk_bytes(), chunk, "no new chunk");
            assert_eq!(capacities[0], MIN_STRING_CAPACITY);
            assert!(
                capacities.windows(2).all(|w| w[1] >= 2 * w[0]),
                "{capacities:?}"
            );
            // 64, 128, ..., 4096.
            assert_eq!(capacities.len(), 7, "{capacities:?}");
        });
    });
}

/// A string that outgrows the arena's chunk moves to a new chunk with its
/// contents intact, also when other allocations sit after it (no in-place
/// growth possible), and the text matches std's.
#[test]
fn string_growth_across_chunk_boundaries_keeps_the_contents() {
    on_fresh_thread(|| {
        with_arena(|a| {
            let mut s = a.string();
            let mut expected = String::new();
            let mut blockers = Vec::new();
            let first_chunk = {
                s.push_str("start;");
                expected.push_str("start;");
                a.chunk_bytes()
            };
            for i in 0..3000u32 {
                write!(s, "{i:>5};").unwrap();
                write!(expected, "{i:>5};").unwrap();
                if i % 100 == 0 {
                    // Allocated after the string: its next growth cannot
                    // reuse its bytes.
                    blockers.push(a.alloc_slice_fill_copy(100, i as u8));
                }
            }
            assert_eq!(s.as_str(), expected);
            assert!(a.chunk_bytes() > first_chunk, "the arena grew new chunks");
            for (k, b) in blockers.iter().enumerate() {
                assert!(b.iter().all(|&x| x == (k * 100) as u8));
            }
        });
    });
}

/// At the byte limit, `write!` through `try_write_fmt` stops with a limit
/// error and keeps every whole piece written before it; the plain
/// `fmt::Write` path panics with the arena's message; each refusal counts one
/// limit hit.
#[test]
fn string_write_at_the_byte_limit() {
    on_fresh_thread(|| {
        let limit = 16 * 1024;
        let (err, written) = with_arena_limit(limit, |a| {
            let mut s = a.string();
            let mut pieces = 0u32;
            let err = loop {
                match s.try_write_fmt(format_args!("{pieces:08} ")) {
                    Ok(()) => pieces += 1,
                    Err(err) => break err,
                }
            };
            // What was written before the refusal is kept: every whole
            // piece, and the start of the refused one.
            let mut expected = String::new();
            for k in 0..=pieces {
                write!(expected, "{k:08} ").unwrap();
            }
            assert!(s.len() >= pieces as usize * 9 && s.len() < expected.len());
            assert!(expected.starts_with(s.as_str()));
            assert!(a.chunk_bytes() <= limit);
            (err, s.len())
        });
        assert!(err.is_limit_exceeded(), "{err}");
        assert!(
            written >= limit / 4,
            "only {written} bytes fit under {limit}"
        );
        assert!(written < limit);
        assert_eq!(thread_stats().limit_hits, 1);

        let payload = catch_unwind(|| {
            with_arena_limit(limit, |a| {
                let mut s = a.string();
                for k in 0..limit {
                    write!(s, "{k:08} ").unwrap();
                }
            })
        })
        .unwrap_err();
        let text = panic_text(payload);
        assert!(text.starts_with("pinstack arena limit exceeded"), "{text}");
        assert_eq!(thread_stats().limit_hits, 2);
    });
}
