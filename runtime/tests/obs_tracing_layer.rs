//! The `tracing` integration: spans entered inside traced tasks become
//! regions in the Chrome trace.
#![cfg(feature = "tracing")]

use pinstack::trace::PinstackLayer;
use pinstack::Runtime;
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn spans_inside_tasks_become_regions() {
    // Workers are other threads: the layer must be the global subscriber.
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(PinstackLayer::new()),
    )
    .expect("the only global subscriber of this test binary");
    let rt = Runtime::builder()
        .worker_threads(2)
        .ignore_environment()
        .tracing(true)
        .build()
        .unwrap();
    let n = rt.block_on(|| {
        let span = tracing::info_span!("decode");
        let _g = span.enter();
        let inner = tracing::info_span!("checksum").in_scope(|| 40);
        inner + 2
    });
    assert_eq!(n, 42);
    // Outside a task, spans are ignored (and must not crash).
    tracing::info_span!("outside").in_scope(|| ());
    let json = rt.trace().unwrap().to_chrome_json();
    let v: Value = serde_json::from_str(&json).unwrap();
    let evs = v["traceEvents"].as_array().unwrap();
    let region = |name: &str| {
        evs.iter()
            .filter(|e| e["cat"] == "region" && e["name"] == name && e["ph"] == "X")
            .count()
    };
    assert_eq!(region("decode"), 1);
    assert_eq!(region("checksum"), 1);
    assert_eq!(region("outside"), 0);
}
