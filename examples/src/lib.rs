//! pinstack's example servers, their tokio twins and load generators.
