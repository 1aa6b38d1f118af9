//! Stack use per spawn site: the reported hint, class and high-water mark,
//! and the class learned for unhinted sites.

use pinstack::{task, Runtime};
use std::hint::black_box;

/// Recurses `depth` frames, each holding a 1 KiB array.
#[inline(never)]
fn use_stack(depth: u32) -> u64 {
    let buf = black_box([depth as u8; 1024]);
    if depth == 0 {
        return buf[7] as u64;
    }
    use_stack(depth - 1) + black_box(buf[1023]) as u64
}

#[test]
fn sites_report_hint_class_and_high_water_mark() {
    let rt = Runtime::builder()
        .worker_threads(2)
        .ignore_environment()
        .stack_sample_every(1)
        .build()
        .unwrap();
    rt.block_on(|| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                task::Builder::new()
                    .stack_size(32 * 1024)
                    .spawn(|| use_stack(12))
                    .unwrap()
            })
            .collect();
        hs.into_iter().for_each(|h| {
            h.join().unwrap();
        });
    });
    let sites = rt.metrics().stack_sites;
    let s = sites
        .iter()
        .find(|s| s.hint == Some(32 * 1024))
        .unwrap_or_else(|| panic!("no hinted site: {sites:?}"));
    assert!(s.site.file().ends_with("obs_stack.rs"), "{s:?}");
    assert_eq!(s.samples, 8);
    assert_eq!(s.class_bytes, 32 * 1024);
    assert!(s.max_touched >= 12 * 1024, "{s:?}");
    assert!(s.max_touched <= 32 * 1024, "{s:?}");
    assert!(
        s.mean_touched <= s.max_touched && s.mean_touched >= 12 * 1024,
        "{s:?}"
    );
    assert_eq!(s.learned_class_bytes, None);
    // block_on's own site is reported too, without a hint.
    assert!(sites
        .iter()
        .any(|s| s.hint.is_none() && s.class_bytes == 64 * 1024));
}

/// One spawn site for every call; returns its line.
fn spawn_shallow() -> (pinstack::JoinHandle<u64>, u32) {
    let line = line!() + 1;
    (pinstack::spawn(|| use_stack(4)), line)
}

#[test]
fn learning_picks_a_class_for_unhinted_sites() {
    let rt = Runtime::builder()
        .worker_threads(1)
        .ignore_environment()
        .default_stack_size(64 * 1024)
        .stack_sample_every(1)
        .learn_stack_sizes(true)
        .build()
        .unwrap();
    let line = spawn_shallow_line();
    let site = |rt: &Runtime| {
        rt.metrics()
            .stack_sites
            .into_iter()
            .find(|s| s.site.file().ends_with("obs_stack.rs") && s.site.line() == line)
    };
    for i in 0..4 {
        rt.block_on(|| spawn_shallow().0.join().unwrap());
        let s = site(&rt).expect("the site is sampled");
        assert_eq!(s.samples, i + 1);
        assert_eq!(s.class_bytes, 64 * 1024, "the default until learned");
    }
    let learned = site(&rt).and_then(|s| s.learned_class_bytes);
    // ~5 KiB of frames plus the coroutine's own: at most 16 KiB touched,
    // so the smallest class holding max + 16 KiB is 32 KiB.
    assert_eq!(learned, Some(32 * 1024), "{:?}", site(&rt));
    rt.block_on(|| spawn_shallow().0.join().unwrap());
    let s = site(&rt).unwrap();
    assert_eq!(s.samples, 5);
    assert_eq!(s.class_bytes, 32 * 1024, "the learned class is used: {s:?}");
}

/// The line of `spawn_shallow`'s spawn (run once on a throwaway runtime).
fn spawn_shallow_line() -> u32 {
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    rt.block_on(|| {
        let (h, line) = spawn_shallow();
        h.join().unwrap();
        line
    })
}
