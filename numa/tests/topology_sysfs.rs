//! The sysfs backend on the trees in `tests/data/` and on this machine.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use pinstack_numa::{CpuLocation, CpuSet, Topology};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn load(name: &str) -> Topology {
    Topology::from_sysfs_dir(data(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn cpus(list: &str) -> CpuSet {
    list.parse().unwrap()
}

const GIB: u64 = 1 << 30;

#[test]
fn two_socket_smt_tree() {
    let t = load("two-socket-smt");
    let nodes = t.nodes();
    assert_eq!(nodes.len(), 2);
    assert_eq!(
        (nodes[0].id, nodes[0].cpus.to_string()),
        (0, "0-7".to_owned())
    );
    assert_eq!(
        (nodes[1].id, nodes[1].cpus.to_string()),
        (1, "8-15".to_owned())
    );
    assert!(nodes
        .iter()
        .all(|n| n.has_memory && n.memory_bytes == 32 * GIB));
    assert_eq!(t.distances_from(0), Some(&[10, 21][..]));
    assert_eq!(t.distance(1, 0), Some(21));
    // Siblings are adjacent: CPUs 8 and 9 are core 0 of package 1.
    assert_eq!(
        t.cpu(8),
        Some(&CpuLocation {
            cpu: 8,
            node: 1,
            package: 1,
            core: 0
        })
    );
    assert_eq!(t.cpu(9).map(|c| (c.package, c.core)), Some((1, 0)));
    assert_eq!(t.cpu(10).map(|c| (c.package, c.core)), Some((1, 1)));
    assert_eq!(t.cpus().len(), 16);
}

#[test]
fn four_socket_tree() {
    let t = load("four-socket");
    assert_eq!(t.nodes().len(), 4);
    assert_eq!(t.node(3).unwrap().cpus, cpus("12-15"));
    assert_eq!(t.node(2).unwrap().memory_bytes, 32 * GIB);
    assert_eq!(t.distances_from(0), Some(&[10, 16, 22, 16][..]));
    assert_eq!(t.distance(1, 3), Some(22));
    assert_eq!(t.node_of_cpu(7), Some(1));
    assert_eq!(t.memory_nodes().to_string(), "0-3");
}

#[test]
fn memoryless_node_tree() {
    let t = load("memoryless-node");
    let n1 = t.node(1).unwrap();
    assert_eq!(n1.cpus, cpus("4-7"));
    assert!(!n1.has_memory);
    assert_eq!(n1.memory_bytes, 0);
    assert_eq!(t.memory_nodes().to_string(), "0,2");
    assert_eq!(
        t.nearest_memory_node(1),
        Some(2),
        "node 2 is at 15, node 0 at 20"
    );
}

#[test]
fn uneven_tree() {
    let t = load("uneven");
    let sizes: Vec<usize> = t.nodes().iter().map(|n| n.cpus.len()).collect();
    assert_eq!(sizes, [6, 2]);
}

#[test]
fn offline_cpus_are_dropped_even_when_a_node_lists_them() {
    let t = load("offline-cpus");
    assert_eq!(t.node(0).unwrap().cpus, cpus("0-2"));
    assert_eq!(t.node(1).unwrap().cpus, cpus("4-5,7"));
    assert_eq!(t.all_cpus(), cpus("0-2,4-5,7"));
    assert_eq!(t.cpu(3), None);
    assert_eq!(t.node_of_cpu(6), None);
}

#[test]
fn no_node_directory_means_one_node_with_every_online_cpu() {
    let t = load("no-node-dir");
    assert_eq!(t.nodes().len(), 1);
    let n = &t.nodes()[0];
    assert_eq!(
        (n.id, n.cpus.to_string(), n.has_memory),
        (0, "0-3".to_owned(), true)
    );
    assert_eq!(t.distance(0, 0), Some(10));
    // Core ids still come from cpu/cpuN/topology.
    assert_eq!(t.cpu(3).map(|c| c.core), Some(1));
}

#[test]
fn recorded_tree_of_this_host_is_readable() {
    let t = load("this-host-1node");
    assert_eq!(t.nodes().len(), 1);
    assert_eq!(t.node(0).unwrap().cpus, cpus("0-1"));
    assert!(t.node(0).unwrap().memory_bytes > 0);
}

#[test]
fn detect_matches_the_live_tree_and_covers_our_affinity() {
    let detected = Topology::detect().unwrap();
    let again = Topology::from_sysfs_dir("/sys/devices/system").unwrap();
    assert_eq!(detected.nodes().len(), again.nodes().len());
    assert_eq!(detected.all_cpus(), again.all_cpus());
    let online: CpuSet = fs::read_to_string("/sys/devices/system/cpu/online")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(detected.all_cpus(), online);
    let affinity = pinstack_numa::thread_affinity().unwrap();
    assert!(
        affinity.is_subset(&online),
        "affinity {affinity} outside online {online}"
    );
    let node_dirs = fs::read_dir("/sys/devices/system/node")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("node"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(detected.nodes().len(), node_dirs.max(1));
}

/// A scratch copy of a recorded tree, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn copy_of(name: &str, tag: &str) -> Scratch {
        let dest = std::env::temp_dir().join(format!("pinstack-numa-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dest);
        copy_dir(&data(name), &dest).unwrap();
        Scratch(dest)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

fn error_for(tag: &str, edit: impl FnOnce(&Path)) -> io::Error {
    let scratch = Scratch::copy_of("two-socket-smt", tag);
    edit(&scratch.0);
    Topology::from_sysfs_dir(&scratch.0).unwrap_err()
}

#[test]
fn malformed_files_are_named_in_the_error() {
    let e = error_for("bad-cpulist", |d| {
        fs::write(d.join("node/node1/cpulist"), "8-x\n").unwrap()
    });
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    let msg = e.to_string();
    assert!(
        msg.contains("node/node1/cpulist") && msg.contains("\"x\" is not a CPU number"),
        "{msg}"
    );

    let e = error_for("bad-distance", |d| {
        fs::write(d.join("node/node0/distance"), "10 21 30\n").unwrap()
    });
    let msg = e.to_string();
    assert!(
        msg.contains("node/node0/distance: 3 distances for 2 nodes"),
        "{msg}"
    );

    let e = error_for("missing-cpulist", |d| {
        fs::remove_file(d.join("node/node0/cpulist")).unwrap()
    });
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(e.to_string().contains("node/node0/cpulist"), "{e}");

    let e = error_for("bad-meminfo", |d| {
        fs::write(d.join("node/node1/meminfo"), "Node 1 MemTotal: many kB\n").unwrap()
    });
    assert!(
        e.to_string().contains("node/node1/meminfo: cannot read"),
        "{e}"
    );

    let e = error_for("overlap", |d| {
        fs::write(d.join("node/node1/cpulist"), "7-15\n").unwrap()
    });
    assert!(
        e.to_string().contains("CPU 7 is in node 0 and node 1"),
        "{e}"
    );

    let e = error_for("half-distances", |d| {
        fs::remove_file(d.join("node/node1/distance")).unwrap()
    });
    assert!(
        e.to_string().contains("node/node1/distance: missing"),
        "{e}"
    );
}

#[test]
fn a_directory_that_is_not_sysfs_is_not_found() {
    let e = Topology::from_sysfs_dir(data("no-such-tree")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(
        e.to_string().contains("neither node/node*/ nor cpu/online"),
        "{e}"
    );
}

#[test]
fn allowed_mask_that_excludes_a_node() {
    let t = load("four-socket").allowed(&cpus("0-7,12-15")).unwrap();
    assert!(t.node(2).unwrap().cpus.is_empty());
    assert!(
        t.node(2).unwrap().has_memory,
        "a node without allowed CPUs keeps its memory"
    );
    assert_eq!(t.all_cpus(), cpus("0-7,12-15"));
}
