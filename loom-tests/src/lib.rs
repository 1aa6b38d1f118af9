//! loom models of pinstack (run with `RUSTFLAGS="--cfg pinstack_loom"`).
