//! `placement::plan` and `placement::steal_order` on the sysfs trees in
//! `tests/data` (models of multi-socket hosts) and on hand-built topologies.

use std::path::Path;

use pinstack_numa::placement::{plan, steal_order};
use pinstack_numa::{CpuSet, NumaNode, NumaPolicy, PlacementError, Topology, WorkerPlacement};

fn load(name: &str) -> Topology {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    Topology::from_sysfs_dir(dir).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn cpus(list: &str) -> CpuSet {
    list.parse().unwrap()
}

fn nodes_of(p: &[WorkerPlacement]) -> Vec<usize> {
    p.iter().map(|w| w.node).collect()
}

fn cpus_of(p: &[WorkerPlacement]) -> Vec<String> {
    p.iter().map(|w| w.cpus.to_string()).collect()
}

fn assert_well_formed(p: &[WorkerPlacement], workers: usize) {
    assert_eq!(p.len(), workers);
    for (i, w) in p.iter().enumerate() {
        assert_eq!(w.worker, i);
        assert!(!w.cpus.is_empty());
    }
}

/// Two nodes of two CPUs each, without SMT.
fn two_by_two() -> Topology {
    let node = |id: usize, list: &str| NumaNode {
        id,
        cpus: cpus(list),
        memory_bytes: 1 << 30,
        has_memory: true,
    };
    Topology::new(
        vec![node(0, "0-1"), node(1, "2-3")],
        vec![],
        vec![vec![10, 21], vec![21, 10]],
    )
    .unwrap()
}

#[test]
fn four_workers_on_two_nodes_of_two_cpus() {
    let t = two_by_two();
    for policy in [NumaPolicy::Pin, NumaPolicy::Bind] {
        let p = plan(&t, &t.all_cpus(), 4, policy).unwrap();
        assert_well_formed(&p, 4);
        assert_eq!(nodes_of(&p), [0, 0, 1, 1]);
        assert_eq!(cpus_of(&p), ["0", "1", "2", "3"]);
        assert_eq!(
            p.iter().map(|w| w.memory_node).collect::<Vec<_>>(),
            [0, 0, 1, 1]
        );
        assert!(p.iter().all(|w| w.policy == policy));
    }
}

#[test]
fn two_socket_smt_uses_distinct_cores_before_siblings() {
    let t = load("two-socket-smt");
    // 8 workers: 4 per node, one per physical core (even CPUs), no sibling.
    let p = plan(&t, &t.all_cpus(), 8, NumaPolicy::Pin).unwrap();
    assert_well_formed(&p, 8);
    assert_eq!(nodes_of(&p), [0, 0, 0, 0, 1, 1, 1, 1]);
    assert_eq!(cpus_of(&p), ["0", "2", "4", "6", "8", "10", "12", "14"]);
    // 12 workers: 6 per node: 4 cores, then siblings of the first two.
    let p = plan(&t, &t.all_cpus(), 12, NumaPolicy::Pin).unwrap();
    assert_eq!(cpus_of(&p)[..6], ["0", "2", "4", "6", "1", "3"]);
    assert_eq!(cpus_of(&p)[6..], ["8", "10", "12", "14", "9", "11"]);
    // 16 workers: every CPU exactly once.
    let p = plan(&t, &t.all_cpus(), 16, NumaPolicy::Pin).unwrap();
    let all: CpuSet = p.iter().flat_map(|w| w.cpus.iter()).collect();
    assert_eq!(all, t.all_cpus());
    assert!(p.iter().all(|w| w.cpus.len() == 1));
}

#[test]
fn four_sockets_split_evenly_and_steal_by_distance() {
    let t = load("four-socket");
    let p = plan(&t, &t.all_cpus(), 8, NumaPolicy::Bind).unwrap();
    assert_well_formed(&p, 8);
    assert_eq!(nodes_of(&p), [0, 0, 1, 1, 2, 2, 3, 3]);
    assert_eq!(cpus_of(&p), ["0", "1", "4", "5", "8", "9", "12", "13"]);
    // Worker 0 (node 0): its node mate, then nodes 1 and 3 (distance 16, in
    // ring order from worker 0), then node 2 (distance 22).
    assert_eq!(steal_order(&p, 0), [1, 2, 3, 6, 7, 4, 5]);
    // Worker 5 (node 2): mate 4, then nodes 1 and 3 (16) in ring order from
    // 5 (6, 7, then 2, 3), then node 0 (22).
    assert_eq!(steal_order(&p, 5), [4, 6, 7, 2, 3, 0, 1]);
    assert_eq!(p[5].distance_to(0), Some(22));
    assert_eq!(p[5].distance_to(9), None);
    assert!(steal_order(&p, 8).is_empty(), "unknown worker");
}

#[test]
fn steal_order_puts_the_same_node_first_in_ring_order() {
    let t = load("two-socket-smt");
    let p = plan(&t, &t.all_cpus(), 6, NumaPolicy::Pin).unwrap();
    assert_eq!(nodes_of(&p), [0, 0, 0, 1, 1, 1]);
    assert_eq!(steal_order(&p, 0), [1, 2, 3, 4, 5]);
    assert_eq!(steal_order(&p, 1), [2, 0, 3, 4, 5]);
    assert_eq!(steal_order(&p, 4), [5, 3, 0, 1, 2]);
    for w in 0..6 {
        let mut order = steal_order(&p, w);
        assert_eq!(order.len(), 5);
        order.sort_unstable();
        assert_eq!(order, (0..6).filter(|&o| o != w).collect::<Vec<_>>());
    }
}

#[test]
fn memoryless_node_takes_memory_from_the_nearest_node_with_memory() {
    let t = load("memoryless-node");
    let p = plan(&t, &t.all_cpus(), 6, NumaPolicy::Bind).unwrap();
    assert_well_formed(&p, 6);
    assert_eq!(nodes_of(&p), [0, 0, 1, 1, 2, 2]);
    let memory: Vec<usize> = p.iter().map(|w| w.memory_node).collect();
    assert_eq!(
        memory,
        [0, 0, 2, 2, 2, 2],
        "node 1 is nearer node 2 (15) than node 0 (20)"
    );
}

#[test]
fn uneven_nodes_get_proportional_shares() {
    let t = load("uneven");
    let p = plan(&t, &t.all_cpus(), 4, NumaPolicy::Pin).unwrap();
    assert_eq!(nodes_of(&p), [0, 0, 0, 1]);
    assert_eq!(cpus_of(&p), ["0", "1", "2", "6"]);
    let p = plan(&t, &t.all_cpus(), 8, NumaPolicy::Pin).unwrap();
    assert_eq!(nodes_of(&p), [0, 0, 0, 0, 0, 0, 1, 1]);
    // One worker goes to the bigger node.
    let p = plan(&t, &t.all_cpus(), 1, NumaPolicy::Pin).unwrap();
    assert_eq!((p[0].node, p[0].cpus.to_string()), (0, "0".to_owned()));
}

#[test]
fn more_workers_than_cpus_share_their_nodes_cpus() {
    let t = two_by_two();
    let p = plan(&t, &t.all_cpus(), 6, NumaPolicy::Pin).unwrap();
    assert_well_formed(&p, 6);
    assert_eq!(nodes_of(&p), [0, 0, 0, 1, 1, 1]);
    assert_eq!(cpus_of(&p), ["0-1", "0-1", "0-1", "2-3", "2-3", "2-3"]);

    let t = load("uneven");
    let p = plan(&t, &t.all_cpus(), 16, NumaPolicy::Bind).unwrap();
    assert_eq!(p.iter().filter(|w| w.node == 0).count(), 12);
    assert_eq!(p.iter().filter(|w| w.node == 1).count(), 4);
    assert!(p.iter().all(|w| w.cpus == t.node(w.node).unwrap().cpus));
}

#[test]
fn affinity_mask_that_excludes_a_node() {
    let t = load("four-socket");
    // Node 2 (CPUs 8-11) is outside the mask: nobody runs there.
    let allowed = cpus("0-7,12-15");
    let p = plan(&t, &allowed, 6, NumaPolicy::Bind).unwrap();
    assert_well_formed(&p, 6);
    assert_eq!(nodes_of(&p), [0, 0, 1, 1, 3, 3]);
    assert!(p.iter().all(|w| w.cpus.is_subset(&allowed)));
    // A mask that keeps part of a node shrinks that node's share.
    let p = plan(&t, &cpus("0,4-7"), 5, NumaPolicy::Pin).unwrap();
    assert_eq!(nodes_of(&p), [0, 1, 1, 1, 1]);
    assert_eq!(cpus_of(&p), ["0", "4", "5", "6", "7"]);
}

#[test]
fn offline_cpus_are_never_placed() {
    let t = load("offline-cpus");
    let p = plan(&t, &cpus("0-7"), 6, NumaPolicy::Pin).unwrap();
    assert_eq!(cpus_of(&p), ["0", "1", "2", "4", "5", "7"]);
}

#[test]
fn off_policy_restricts_nothing_and_names_the_biggest_node() {
    let t = load("uneven");
    let p = plan(&t, &t.all_cpus(), 3, NumaPolicy::Off).unwrap();
    assert_well_formed(&p, 3);
    assert!(p
        .iter()
        .all(|w| w.cpus == t.all_cpus() && w.node == 0 && w.memory_node == 0));
    // The mask decides which node owns most allowed CPUs.
    let p = plan(&t, &cpus("5-7"), 2, NumaPolicy::Off).unwrap();
    assert!(p.iter().all(|w| w.node == 1 && w.cpus == cpus("5-7")));
    // Ties go to the lower node id.
    let t = two_by_two();
    let p = plan(&t, &t.all_cpus(), 1, NumaPolicy::Off).unwrap();
    assert_eq!(p[0].node, 0);
    // Applying Off changes nothing, so it cannot fail.
    p[0].apply().unwrap();
}

#[test]
fn impossible_requests_are_typed_errors() {
    let t = two_by_two();
    let e = plan(&t, &t.all_cpus(), 0, NumaPolicy::Pin).unwrap_err();
    assert_eq!(e, PlacementError::NoWorkers);
    assert!(e.to_string().contains("at least one worker"), "{e}");

    for allowed in [CpuSet::new(), cpus("8-9")] {
        let e = plan(&t, &allowed, 2, NumaPolicy::Bind).unwrap_err();
        assert!(matches!(e, PlacementError::NoUsableCpus { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("0-3") && msg.contains("affinity"), "{msg}");
    }

    let node = NumaNode {
        id: 0,
        cpus: cpus("0-1"),
        memory_bytes: 0,
        has_memory: false,
    };
    let t = Topology::new(vec![node], vec![], vec![]).unwrap();
    let e = plan(&t, &t.all_cpus(), 2, NumaPolicy::Bind).unwrap_err();
    assert_eq!(e, PlacementError::NoMemory { node: 0 });
    assert!(e.to_string().contains("`pin` or `off`"), "{e}");
}

#[test]
fn plans_are_deterministic() {
    let t = load("four-socket");
    let a = plan(&t, &t.all_cpus(), 11, NumaPolicy::Bind).unwrap();
    let b = plan(&t, &t.all_cpus(), 11, NumaPolicy::Bind).unwrap();
    assert_eq!(a, b);
    assert_eq!(nodes_of(&a), [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3]);
}

#[test]
fn plain_data_types_cross_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Topology>();
    send_sync::<WorkerPlacement>();
    send_sync::<CpuSet>();
    send_sync::<pinstack_numa::NodeSet>();
    send_sync::<PlacementError>();
    send_sync::<NumaPolicy>();
}
