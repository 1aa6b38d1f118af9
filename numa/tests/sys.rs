//! The syscall wrappers, for real. Each test runs in a fresh thread so that
//! an affinity or memory policy it sets does not leak into other tests.
//!
//! Node-count-aware: every check that binds memory runs once per node with
//! memory, so on a one-node host it covers node 0 and under the two-node
//! emulator (`NUMA_VM=1`, see shared/numa-vm) node 1 too; there the tests
//! also insist on seeing more than one node.

use std::io;
use std::ptr::NonNull;

use pinstack_numa::{
    address_mempolicy, mbind, node_of_address, numa_maps_entry, page_nodes, placement,
    set_thread_affinity, set_thread_mempolicy, thread_affinity, thread_mempolicy, CpuSet,
    MbindFlags, MemPolicy, NodeSet, NumaPolicy, PageStatus, Topology,
};

const MIB: usize = 1 << 20;
const PAGE: usize = 4096;

/// Serialises the tests of this file: they map, unmap and look up real
/// address ranges, and a range one test unmapped can be mapped again by a
/// concurrent test before the first looks it up.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` on a new thread (so its policy does not leak) and returns its
/// result (a panic fails the test), one test at a time.
fn in_fresh_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    std::thread::spawn(f).join().expect("test thread panicked")
}

fn topology() -> Topology {
    let t = Topology::detect().expect("sysfs topology");
    if std::env::var_os("NUMA_VM").is_some() {
        assert!(
            t.nodes().len() >= 2,
            "under numa-vm the guest must show several nodes:\n{t}"
        );
        eprintln!("numa-vm guest topology:\n{t}");
    }
    t
}

/// Ids of the nodes that have memory (at least node 0 on any Linux host).
fn memory_nodes() -> Vec<usize> {
    let nodes: Vec<usize> = topology().memory_nodes().iter().collect();
    assert!(!nodes.is_empty());
    nodes
}

/// An anonymous private mapping, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> Mapping {
        // SAFETY: an anonymous private mapping at an address of the kernel's
        // choosing touches no existing memory; the result is checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(
            ptr,
            libc::MAP_FAILED,
            "mmap: {}",
            io::Error::last_os_error()
        );
        Mapping {
            ptr: NonNull::new(ptr.cast()).expect("mmap returned null"),
            len,
        }
    }

    fn addr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// Writes one byte in every page, faulting all pages in.
    fn touch(&self) {
        for offset in (0..self.len).step_by(PAGE) {
            // SAFETY: `offset < len`, so the byte lies inside this live,
            // writable mapping, which nothing else references.
            unsafe { self.ptr.as_ptr().add(offset).write_volatile(1) };
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr..ptr+len` is exactly the mapping created in `new`, and
        // no reference into it outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

fn count_on(statuses: &[PageStatus], node: usize) -> usize {
    statuses
        .iter()
        .filter(|s| **s == PageStatus::Node(node))
        .count()
}

#[test]
fn pin_a_thread_and_read_it_back() {
    let allowed = thread_affinity().unwrap();
    assert!(!allowed.is_empty());
    let cpu0 = allowed.first().unwrap();
    let got = in_fresh_thread(move || {
        set_thread_affinity(&CpuSet::single(cpu0)).unwrap();
        thread_affinity().unwrap()
    });
    assert_eq!(got, CpuSet::single(cpu0));
    // Every allowed CPU, one at a time (4 CPUs under numa-vm).
    for cpu in &allowed {
        let got = in_fresh_thread(move || {
            set_thread_affinity(&CpuSet::single(cpu)).unwrap();
            thread_affinity().unwrap()
        });
        assert_eq!(got, CpuSet::single(cpu));
    }
    // The pin did not leak into this thread.
    assert_eq!(thread_affinity().unwrap(), allowed);
}

#[test]
fn affinity_set_to_every_allowed_cpu_reads_back_whole() {
    let allowed = thread_affinity().unwrap();
    let got = in_fresh_thread(move || {
        set_thread_affinity(&allowed).unwrap();
        thread_affinity().unwrap()
    });
    assert_eq!(got, thread_affinity().unwrap());
}

#[test]
fn bind_thread_policy_reads_back_for_every_memory_node() {
    for node in memory_nodes() {
        let got = in_fresh_thread(move || {
            set_thread_mempolicy(&MemPolicy::Bind(NodeSet::single(node))).unwrap();
            thread_mempolicy().unwrap()
        });
        assert_eq!(got, MemPolicy::Bind(NodeSet::single(node)));
    }
    assert_eq!(
        thread_mempolicy().unwrap(),
        MemPolicy::Default,
        "the policy leaked into the test thread"
    );
}

#[test]
fn other_policies_read_back() {
    let nodes: NodeSet = memory_nodes().into_iter().collect();
    let first = nodes.first().unwrap();
    let cases = [
        MemPolicy::Preferred(first),
        MemPolicy::Interleave(nodes.clone()),
        MemPolicy::Local,
        MemPolicy::Default,
    ];
    for policy in cases {
        let want = policy.clone();
        let got = in_fresh_thread(move || {
            set_thread_mempolicy(&MemPolicy::Bind(NodeSet::single(first))).unwrap();
            set_thread_mempolicy(&policy).unwrap();
            thread_mempolicy().unwrap()
        });
        assert_eq!(got, want);
    }
}

#[test]
fn mbind_4mib_then_numa_maps_and_move_pages_agree() {
    for node in memory_nodes() {
        in_fresh_thread(move || {
            let map = Mapping::new(4 * MIB);
            let policy = MemPolicy::Bind(NodeSet::single(node));
            mbind(map.addr(), map.len, &policy, MbindFlags::NONE).unwrap();
            assert_eq!(address_mempolicy(map.addr()).unwrap(), policy);

            let before = page_nodes(map.addr(), map.len).unwrap();
            assert_eq!(before.len(), 1024);
            assert!(
                before.iter().all(|s| *s == PageStatus::NotPresent),
                "untouched pages: {:?}",
                &before[..4]
            );

            // A read maps the shared zero page, not a page of the mapping's own.
            // SAFETY: the address is inside the live, readable mapping.
            let zero = unsafe { map.addr().read_volatile() };
            assert_eq!(zero, 0);
            assert_eq!(
                page_nodes(map.addr(), PAGE).unwrap(),
                [PageStatus::NotPresent]
            );

            map.touch();
            // The kernel may merge this mapping with an adjacent one of the
            // same policy (another test thread's), so the entry contains the
            // range and counts at least its pages; `page_nodes` below checks
            // the range exactly.
            let entry = numa_maps_entry(map.addr()).unwrap();
            assert!(
                entry.start <= map.addr() as usize,
                "numa_maps entry: {entry:?}"
            );
            assert_eq!(entry.policy, format!("bind:{node}"));
            assert!(entry.pages_on(node) >= 1024, "numa_maps entry: {entry:?}");
            assert!(entry.total_pages() >= 1024);

            let after = page_nodes(map.addr(), map.len).unwrap();
            assert_eq!(count_on(&after, node), 1024);
            assert_eq!(
                node_of_address(map.addr().wrapping_add(MIB + 5)).unwrap(),
                node
            );
        });
    }
}

#[test]
fn thread_bind_policy_places_new_pages_on_that_node() {
    for node in memory_nodes() {
        in_fresh_thread(move || {
            set_thread_mempolicy(&MemPolicy::Bind(NodeSet::single(node))).unwrap();
            let map = Mapping::new(MIB);
            map.touch();
            let pages = page_nodes(map.addr(), map.len).unwrap();
            assert_eq!(count_on(&pages, node), 256, "pages: {:?}", &pages[..4]);
            let entry = numa_maps_entry(map.addr()).unwrap();
            // The kernel may merge the mapping with an adjacent anonymous
            // one, so the entry counts at least our pages (exact count above).
            assert!(entry.pages_on(node) >= 256, "{entry:?}");
            // The mapping itself has no policy: the thread's applied.
            assert_eq!(address_mempolicy(map.addr()).unwrap(), MemPolicy::Default);
        });
    }
}

#[test]
fn mbind_with_move_migrates_present_pages_to_the_last_node() {
    let nodes = memory_nodes();
    let (first, last) = (nodes[0], *nodes.last().unwrap());
    in_fresh_thread(move || {
        let map = Mapping::new(MIB);
        mbind(
            map.addr(),
            map.len,
            &MemPolicy::Bind(NodeSet::single(first)),
            MbindFlags::NONE,
        )
        .unwrap();
        map.touch();
        assert_eq!(
            count_on(&page_nodes(map.addr(), map.len).unwrap(), first),
            256
        );
        mbind(
            map.addr(),
            map.len,
            &MemPolicy::Bind(NodeSet::single(last)),
            MbindFlags::MOVE | MbindFlags::STRICT,
        )
        .unwrap();
        assert_eq!(
            count_on(&page_nodes(map.addr(), map.len).unwrap(), last),
            256
        );
        assert_eq!(
            numa_maps_entry(map.addr()).unwrap().policy,
            format!("bind:{last}")
        );
    });
}

#[test]
fn placement_apply_pins_and_binds_each_worker() {
    let topo = topology();
    let allowed = thread_affinity().unwrap();
    let workers = allowed.len().max(2);
    let plan = placement::plan(&topo, &allowed, workers, NumaPolicy::Bind).unwrap();
    let threads: Vec<_> = plan
        .into_iter()
        .map(|p| {
            std::thread::spawn(move || {
                p.apply().unwrap();
                assert_eq!(thread_affinity().unwrap(), p.cpus);
                assert_eq!(
                    thread_mempolicy().unwrap(),
                    MemPolicy::Bind(NodeSet::single(p.memory_node))
                );
                let map = Mapping::new(MIB);
                map.touch();
                let pages = page_nodes(map.addr(), map.len).unwrap();
                (p.node, p.memory_node, count_on(&pages, p.memory_node))
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for &(_, _, on_node) in &results {
        assert_eq!(on_node, 256, "{results:?}");
    }
    let nodes_used: NodeSet = results.iter().map(|r| r.0).collect();
    assert_eq!(
        nodes_used.len(),
        topo.nodes()
            .iter()
            .filter(|n| !n.cpus.intersection(&allowed).is_empty())
            .count()
            .min(workers)
    );
}

#[test]
fn invalid_input_gives_clear_errors() {
    let inherited = thread_affinity().unwrap();
    in_fresh_thread(move || {
        let e = set_thread_affinity(&CpuSet::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("CPU set is empty"), "{e}");

        let offline = CpuSet::single(CpuSet::LIMIT - 1);
        let e = set_thread_affinity(&offline).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("sched_setaffinity(65535)") && msg.contains("online"),
            "{msg}"
        );
        assert_eq!(
            thread_affinity().unwrap(),
            inherited,
            "a failed pin changed nothing"
        );

        let missing = topology().nodes().last().unwrap().id + 1;
        for policy in [
            MemPolicy::Bind(NodeSet::single(missing)),
            MemPolicy::Bind(NodeSet::single(1000)),
        ] {
            let e = set_thread_mempolicy(&policy).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("set_mempolicy({policy})")) && msg.contains("has_memory"),
                "{msg}"
            );
        }
        assert_eq!(
            thread_mempolicy().unwrap(),
            MemPolicy::Default,
            "a failed set changed nothing"
        );

        let e = set_thread_mempolicy(&MemPolicy::Interleave(NodeSet::new())).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("node set is empty"), "{e}");

        let map = Mapping::new(4 * PAGE);
        let e = mbind(
            map.addr().wrapping_add(1),
            PAGE,
            &MemPolicy::Bind(NodeSet::single(0)),
            MbindFlags::NONE,
        )
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("page-aligned"), "{e}");
        let e = mbind(
            map.addr(),
            PAGE,
            &MemPolicy::Bind(NodeSet::single(missing)),
            MbindFlags::NONE,
        )
        .unwrap_err();
        assert!(e.to_string().contains(&format!("bind:{missing}")), "{e}");
        assert_eq!(address_mempolicy(map.addr()).unwrap(), MemPolicy::Default);
    });
}

#[test]
fn unmapped_addresses_are_errors_not_crashes() {
    in_fresh_thread(|| {
        // A 4-page hole inside a 6-page mapping: known to be free, and too
        // small for anything this process maps meanwhile (malloc arenas,
        // thread stacks) to land in, unlike a freshly unmapped range.
        let outer = Mapping::new(6 * PAGE);
        let addr = outer.addr() as usize + PAGE;
        // SAFETY: the 4 pages lie inside `outer`, which nothing else uses;
        // `outer`'s own munmap later covers the whole range, holes included.
        let rc = unsafe { libc::munmap(addr as *mut libc::c_void, 4 * PAGE) };
        assert_eq!(rc, 0);
        let addr = addr as *const u8;
        let e = mbind(
            addr,
            4 * PAGE,
            &MemPolicy::Bind(NodeSet::single(0)),
            MbindFlags::NONE,
        )
        .unwrap_err();
        assert!(e.to_string().contains("must be mapped"), "{e}");
        assert_eq!(
            node_of_address(addr).unwrap_err().raw_os_error(),
            Some(libc::EFAULT)
        );
        assert_eq!(
            address_mempolicy(addr).unwrap_err().raw_os_error(),
            Some(libc::EFAULT)
        );
        let statuses = page_nodes(addr, 4 * PAGE).unwrap();
        assert_eq!(statuses, [PageStatus::Unmapped; 4]);
        let e = numa_maps_entry(addr).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    });
}
