//! NUMA policies verified through what the kernel reports: `get_mempolicy`,
//! `sched_getaffinity`, `/proc/self/numa_maps` and `move_pages`.
//!
//! On a one-node host this checks `Bind` to node 0. Under the two-node
//! emulator (`NUMA_VM=1`, see `scripts/numa-vm-test`) the same test binary
//! also checks that workers 2-3 live on node 1 with their stacks and
//! allocations there; it fails if the guest does not show two nodes.

use pinstack::{NumaPolicy, Runtime};
use pinstack_numa::{
    node_of_address, numa_maps_entry, page_nodes, thread_affinity, thread_mempolicy, MemPolicy,
    PageStatus, Topology,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The worker index from the thread name `PREFIX-worker-N`.
fn worker_index() -> usize {
    let t = std::thread::current();
    let name = t.name().expect("worker threads are named");
    name.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("name ends in the index")
}

#[derive(Debug, Clone)]
struct WorkerReport {
    policy: String,
    cpus: String,
}

fn runtime(
    policy: NumaPolicy,
    workers: usize,
    reports: Arc<Mutex<BTreeMap<usize, WorkerReport>>>,
) -> Runtime {
    Runtime::builder()
        .worker_threads(workers)
        .numa_policy(policy)
        .thread_name("numa")
        .on_thread_start(move || {
            let name = std::thread::current().name().unwrap_or("").to_string();
            if !name.contains("-worker-") {
                return;
            }
            let policy = thread_mempolicy().expect("get_mempolicy").to_string();
            let cpus = thread_affinity().expect("sched_getaffinity").to_string();
            reports
                .lock()
                .unwrap()
                .insert(worker_index(), WorkerReport { policy, cpus });
        })
        .build()
        .expect("runtime starts")
}

#[test]
fn bind_mode_binds_every_worker_and_its_stacks() {
    let nodes = Topology::detect().unwrap().nodes().len();
    if std::env::var_os("NUMA_VM").is_some() {
        assert!(nodes >= 2, "NUMA_VM=1 but the guest shows {nodes} node(s)");
    }
    let workers = if nodes >= 2 { 4 } else { 2 };
    let reports = Arc::new(Mutex::new(BTreeMap::new()));
    let rt = runtime(NumaPolicy::Bind, workers, reports.clone());
    // Each task reports its worker, the node of its own stack page, and the
    // numa_maps policy of the stack's mapping.
    let seen: Arc<Mutex<BTreeMap<usize, (usize, String)>>> = Default::default();
    for _round in 0..50 {
        let hs: Vec<_> = (0..16)
            .map(|_| {
                let seen = seen.clone();
                rt.spawn(move || {
                    let marker = [7u8; 64];
                    let addr = std::hint::black_box(&marker).as_ptr();
                    let node = node_of_address(addr).expect("get_mempolicy(MPOL_F_ADDR)");
                    let policy = numa_maps_entry(addr).expect("numa_maps").policy;
                    seen.lock().unwrap().insert(worker_index(), (node, policy));
                    pinstack::sleep(Duration::from_millis(5));
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        if seen.lock().unwrap().len() == workers {
            break;
        }
    }
    let reports = reports.lock().unwrap().clone();
    assert_eq!(reports.len(), workers, "every worker reported: {reports:?}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), workers, "tasks ran on every worker: {seen:?}");
    for w in 0..workers {
        let expect_node = if nodes >= 2 { w / 2 } else { 0 };
        let r = &reports[&w];
        assert_eq!(
            r.policy,
            format!("bind:{expect_node}"),
            "worker {w} mempolicy"
        );
        let cpus = r.cpus.parse::<pinstack_numa::CpuSet>().unwrap();
        assert_eq!(
            cpus.len(),
            1,
            "worker {w} pinned to one CPU, got {}",
            r.cpus
        );
        let (stack_node, maps_policy) = &seen[&w];
        assert_eq!(
            *stack_node, expect_node,
            "worker {w}'s coroutine stack page"
        );
        assert_eq!(
            maps_policy,
            &format!("bind:{expect_node}"),
            "numa_maps of worker {w}'s stack slab"
        );
    }
    if nodes >= 2 {
        // 64 MiB allocated inside a coroutine on a node-1 worker lands on node 1.
        let placed = Arc::new(Mutex::new(None));
        for _ in 0..200 {
            let placed2 = placed.clone();
            rt.spawn(move || {
                if worker_index() < 2 {
                    return;
                }
                let v = vec![1u8; 64 << 20];
                let pages = page_nodes(v.as_ptr(), v.len()).expect("move_pages");
                let on1 = pages.iter().filter(|p| **p == PageStatus::Node(1)).count();
                *placed2.lock().unwrap() = Some((on1, pages.len()));
            })
            .join()
            .unwrap();
            if placed.lock().unwrap().is_some() {
                break;
            }
        }
        let (on1, total) = placed.lock().unwrap().expect("a task ran on worker 2 or 3");
        assert_eq!(on1, total, "all {total} pages of the 64 MiB on node 1");
    }
}

#[test]
fn pin_mode_pins_without_binding() {
    let reports = Arc::new(Mutex::new(BTreeMap::new()));
    let rt = runtime(NumaPolicy::Pin, 2, reports.clone());
    drop(rt);
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 2);
    let mut cpus = Vec::new();
    for r in reports.values() {
        assert_eq!(r.policy, MemPolicy::Default.to_string());
        let set = r.cpus.parse::<pinstack_numa::CpuSet>().unwrap();
        assert_eq!(set.len(), 1, "pinned to one CPU: {}", r.cpus);
        cpus.push(r.cpus.clone());
    }
    if thread_affinity().unwrap().len() >= 2 {
        assert_ne!(cpus[0], cpus[1], "two workers on two CPUs");
    }
}

#[test]
fn off_mode_leaves_threads_alone() {
    let reports = Arc::new(Mutex::new(BTreeMap::new()));
    let rt = runtime(NumaPolicy::Off, 2, reports.clone());
    drop(rt);
    let all = thread_affinity().unwrap().to_string();
    for r in reports.lock().unwrap().values() {
        assert_eq!(r.policy, MemPolicy::Default.to_string());
        assert_eq!(r.cpus, all);
    }
}

#[test]
fn placement_on_a_topology_without_those_cpus_is_a_clear_error() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../numa/tests/data/four-socket"
    );
    let Ok(topo) = Topology::from_sysfs_dir(dir) else {
        panic!("recorded topology {dir} readable");
    };
    let max_cpu = topo.all_cpus().last().unwrap_or(0);
    let host = thread_affinity().unwrap();
    if host.last().unwrap_or(0) >= max_cpu {
        return; // a host this large can pin there for real
    }
    let err = Runtime::builder()
        .worker_threads(8)
        .numa_policy(NumaPolicy::Pin)
        .topology(topo)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("cannot place worker"), "{err}");
}
