//! The pinstack echo server over loopback (the cases shared with the tokio
//! twin, `common/echo_cases.rs`).

mod common;

use common::echo_cases;
use pinstack_examples::echo::pinstack_server;

#[test]
fn echoes_large_writes_exactly() {
    echo_cases::echoes_large_writes_exactly(pinstack_server::spawn);
}

#[test]
fn loadgen_measures_round_trips() {
    echo_cases::loadgen_measures_round_trips(pinstack_server::spawn);
}
