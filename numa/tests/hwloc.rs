//! The hwloc backend (`--features hwloc`): agreement with sysfs on this
//! machine, and placement on synthetic machines.
#![cfg(feature = "hwloc")]

use pinstack_numa::placement::{plan, steal_order};
use pinstack_numa::{CpuSet, NumaPolicy, Topology};

fn synthetic(description: &str) -> Topology {
    Topology::from_hwloc_synthetic(description).unwrap_or_else(|e| panic!("{description}: {e}"))
}

#[test]
fn hwloc_and_sysfs_agree_on_this_machine() {
    let sysfs = Topology::detect().unwrap();
    let hwloc = Topology::from_hwloc().unwrap();
    // hwloc leaves out CPUs outside the process's affinity mask; compare on
    // the allowed part.
    let allowed = pinstack_numa::thread_affinity().unwrap();
    let sysfs = sysfs.allowed(&allowed).unwrap();
    let hwloc = hwloc.allowed(&allowed).unwrap();

    let ids = |t: &Topology| t.nodes().iter().map(|n| n.id).collect::<Vec<_>>();
    assert_eq!(ids(&hwloc), ids(&sysfs));
    for (h, s) in hwloc.nodes().iter().zip(sysfs.nodes()) {
        assert_eq!(h.cpus, s.cpus, "node {}", s.id);
        assert_eq!(h.has_memory, s.has_memory, "node {}", s.id);
        // hwloc subtracts huge pages reserved at boot from a node's memory;
        // with none reserved the sizes match exactly.
        if no_hugepages(s.id) {
            assert_eq!(h.memory_bytes, s.memory_bytes, "node {}", s.id);
        } else {
            assert!(h.memory_bytes <= s.memory_bytes);
        }
        assert_eq!(
            hwloc.distances_from(h.id),
            sysfs.distances_from(s.id),
            "node {}",
            s.id
        );
    }
    assert_eq!(
        hwloc.cpus(),
        sysfs.cpus(),
        "CPU locations (node, package, core)"
    );
}

/// Whether node `node` has no huge pages reserved (per sysfs).
fn no_hugepages(node: usize) -> bool {
    let path = format!("/sys/devices/system/node/node{node}/meminfo");
    std::fs::read_to_string(path).map_or(true, |text| {
        text.lines()
            .filter(|l| l.contains("HugePages_Total"))
            .all(|l| l.split_whitespace().last() == Some("0"))
    })
}

#[test]
fn synthetic_two_sockets_with_smt() {
    let t = synthetic("pack:2 numa:1 core:4 pu:2");
    assert_eq!(t.nodes().len(), 2);
    assert_eq!(t.node(0).unwrap().cpus.to_string(), "0-7");
    assert_eq!(t.node(1).unwrap().cpus.to_string(), "8-15");
    assert!(t.nodes().iter().all(|n| n.has_memory));
    // hwloc numbers PUs depth-first: PUs 2k and 2k+1 are the threads of one
    // core.
    let core_of = |cpu: usize| {
        let c = t.cpu(cpu).unwrap();
        (c.package, c.core)
    };
    assert_eq!(core_of(0), core_of(1));
    assert_ne!(core_of(1), core_of(2));
    assert_eq!(t.cpu(9).unwrap().package, 1);

    let p = plan(&t, &t.all_cpus(), 4, NumaPolicy::Bind).unwrap();
    let nodes: Vec<usize> = p.iter().map(|w| w.node).collect();
    let cpus: Vec<String> = p.iter().map(|w| w.cpus.to_string()).collect();
    assert_eq!(nodes, [0, 0, 1, 1]);
    assert_eq!(
        cpus,
        ["0", "2", "8", "10"],
        "distinct cores before SMT siblings"
    );
    assert_eq!(
        p.iter().map(|w| w.memory_node).collect::<Vec<_>>(),
        [0, 0, 1, 1]
    );
}

#[test]
fn synthetic_four_sockets_more_workers_than_cpus() {
    let t = synthetic("pack:4 numa:1 core:2 pu:1");
    assert_eq!(t.nodes().len(), 4);
    // No distances in a synthetic description: the kernel defaults.
    assert_eq!(t.distances_from(2), Some(&[20, 20, 10, 20][..]));
    let p = plan(&t, &t.all_cpus(), 12, NumaPolicy::Pin).unwrap();
    assert_eq!(p.iter().filter(|w| w.node == 3).count(), 3);
    assert!(p
        .iter()
        .all(|w| w.cpus == t.node(w.node).unwrap().cpus && w.cpus.len() == 2));
    // Same node first, then the rest in ring order.
    assert_eq!(steal_order(&p, 4), [5, 3, 6, 7, 8, 9, 10, 11, 0, 1, 2]);
}

#[test]
fn synthetic_two_nodes_per_package_with_an_affinity_mask() {
    let t = synthetic("pack:2 numa:2 core:2 pu:2");
    assert_eq!(t.nodes().len(), 4);
    assert_eq!(t.node(1).unwrap().cpus.to_string(), "4-7");
    assert_eq!(t.cpu(4).unwrap().package, 0);
    assert_eq!(t.cpu(8).unwrap().package, 1);
    // A mask that leaves out node 1 entirely.
    let allowed: CpuSet = "0-3,8-15".parse().unwrap();
    let p = plan(&t, &allowed, 6, NumaPolicy::Pin).unwrap();
    let nodes: Vec<usize> = p.iter().map(|w| w.node).collect();
    assert_eq!(nodes, [0, 0, 2, 2, 3, 3]);
    assert!(p
        .iter()
        .all(|w| w.cpus.len() == 1 && w.cpus.is_subset(&allowed)));
}

#[test]
fn synthetic_memory_sizes_are_read() {
    let t = synthetic("pack:2 numa:1(memory=4GB) core:1 pu:1");
    // hwloc's GB is 10^9 bytes.
    assert_eq!(t.node(0).unwrap().memory_bytes, 4_000_000_000);
    assert_eq!(t.node(1).unwrap().memory_bytes, 4_000_000_000);
    assert_eq!(t.memory_nodes().to_string(), "0-1");
}

#[test]
fn invalid_synthetic_description_is_an_input_error() {
    let e = Topology::from_hwloc_synthetic("pack:two").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let msg = e.to_string();
    assert!(
        msg.contains("\"pack:two\"") && msg.contains("example"),
        "{msg}"
    );
}
