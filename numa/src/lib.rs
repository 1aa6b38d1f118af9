//! NUMA topology discovery, CPU placement and memory policy for pinstack.
//!
//! (Placeholder: being written.)
