//! NUMA topology discovery, CPU placement and memory policy for pinstack.
//!
//! This crate knows nothing of coroutines. The pinstack runtime uses it to
//! place its worker threads on a multi-socket machine and to order work
//! stealing by node distance. It has three layers, kept apart so that the
//! middle one can be tested on machines this host is not:
//!
//! 1. **Discovery** reads the machine into plain data, a [`Topology`]:
//!    nodes, their online CPUs (with core and package ids), memory sizes and
//!    the node distance matrix. [`Topology::detect`] reads sysfs;
//!    [`Topology::from_sysfs_dir`] reads a saved or hand-made tree; with the `hwloc`
//!    feature, `Topology::from_hwloc` and `Topology::from_hwloc_synthetic`
//!    read the same data through hwloc.
//! 2. **Placement** is a pure function: [`placement::plan`] turns a topology,
//!    the allowed CPUs, a worker count and a [`NumaPolicy`] into one
//!    [`WorkerPlacement`] per worker, and [`placement::steal_order`] lists
//!    whom a worker steals from, nearest first.
//! 3. **Mechanism**: safe wrappers over the syscalls, all acting on the
//!    calling thread or on an address range: [`set_thread_affinity`],
//!    [`thread_affinity`], [`set_thread_mempolicy`], [`thread_mempolicy`],
//!    [`mbind`], [`address_mempolicy`], and for verification
//!    [`node_of_address`], [`page_nodes`] (`move_pages`) and
//!    [`numa_maps_entry`] (`/proc/self/numa_maps`).
//!
//! # Example
//!
//! Plan four workers on the two-socket sysfs tree shipped with the
//! tests, then start them on this one (on a one-node host every worker
//! lands on node 0):
//!
//! ```
//! use pinstack_numa::{placement, thread_affinity, NumaPolicy, Topology};
//!
//! // A 2-socket host's sysfs tree: node 0 = CPUs 0-7, node 1 = CPUs 8-15, SMT.
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/two-socket-smt");
//! let two_socket = Topology::from_sysfs_dir(dir)?;
//! let plan = placement::plan(&two_socket, &two_socket.all_cpus(), 4, NumaPolicy::Bind)?;
//! for p in &plan {
//!     println!("worker {} -> node {} cpus {} memory from node {}", p.worker, p.node, p.cpus, p.memory_node);
//! }
//! assert_eq!(plan.iter().map(|p| p.node).collect::<Vec<_>>(), [0, 0, 1, 1]);
//!
//! // The same on the running machine, within this process's affinity mask.
//! let policy: NumaPolicy = std::env::var("PINSTACK_NUMA").unwrap_or_default().parse().unwrap_or_default();
//! let here = Topology::detect()?;
//! let plan = placement::plan(&here, &thread_affinity()?, 2, policy)?;
//! let threads: Vec<_> = plan
//!     .into_iter()
//!     .map(|p| {
//!         // Each worker applies its own placement: pins (Pin, Bind) and
//!         // binds its memory (Bind).
//!         std::thread::spawn(move || p.apply())
//!     })
//!     .collect();
//! for t in threads {
//!     t.join().expect("worker panicked")?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Cargo features
//!
//! * `hwloc` (off by default): `Topology::from_hwloc()` and
//!   `Topology::from_hwloc_synthetic("pack:2 numa:1 core:4 pu:2")`, through
//!   the `hwlocality` crate. Needs the system's hwloc library and headers
//!   (Debian: `apt-get install libhwloc-dev libudev-dev pkg-config`).
//!
//! # Platform
//!
//! Linux only. Every fallible call returns an error that names what failed
//! and what to check; nothing here panics on what the OS reports.

#![doc(test(attr(deny(warnings))))]

mod affinity;
mod cpuset;
#[cfg(feature = "hwloc")]
mod hwloc;
mod memory;
mod numa_maps;
pub mod placement;
mod policy;
mod sys;
mod sysfs;
mod topology;

pub use affinity::{set_thread_affinity, thread_affinity};
pub use cpuset::{
    Cpu, CpuSet, IdKind, IdLimitError, IdSet, Iter as IdSetIter, Node, NodeSet, ParseIdSetError,
};
pub use memory::{
    address_mempolicy, mbind, node_of_address, page_nodes, set_thread_mempolicy, thread_mempolicy,
    MbindFlags, MemPolicy, PageStatus,
};
pub use numa_maps::{numa_maps_entry, parse_numa_maps, NumaMapsEntry, ParseNumaMapsError};
pub use placement::{PlacementError, WorkerPlacement};
pub use policy::{NumaPolicy, ParseNumaPolicyError};
pub use topology::{CpuLocation, NumaNode, Topology, TopologyError};
