//! [`Topology`]: the machine's NUMA nodes, their CPUs and memory, and the
//! node distance matrix, as plain data.
//!
//! # Design
//!
//! Discovery is separate from policy (STYLE habit 7). Backends (`sysfs`,
//! `hwloc`) read the machine and call [`Topology::new`], which validates and
//! normalises; `placement` is a pure function of the result. Tests build fake
//! machines through the same constructor or from recorded sysfs trees, so
//! they run the production code path.
//!
//! What a `Topology` describes, and what it leaves out:
//!
//! * **Online CPUs only.** Offline CPUs are not in any node's set (sysfs
//!   keeps them in a node's `cpulist` on some architectures; the reader
//!   intersects with `cpu/online`).
//! * **The whole machine, not the process's affinity mask.** A process may be
//!   confined by `taskset`, a cgroup cpuset or a container runtime. The mask
//!   is applied later: [`placement::plan`](crate::placement::plan) takes the
//!   allowed CPUs as an argument (from [`thread_affinity`](crate::thread_affinity)),
//!   and [`Topology::allowed`] returns a restricted copy for callers that
//!   want one.
//! * **Memoryless nodes are kept.** A node may have CPUs and no memory (or
//!   memory and no CPUs). `has_memory` says which; placement sends the memory
//!   of a memoryless node's workers to the nearest node with memory.
//!
//! Nodes are stored sorted by id; node ids may be sparse (`node0`, `node2`).
//! Distances are an `n x n` row-major matrix indexed by *position* in that
//! sorted list, which is also the column order of sysfs `nodeN/distance`.

use std::collections::BTreeMap;
use std::fmt;

use crate::cpuset::{CpuSet, NodeSet};

/// Where one logical CPU sits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CpuLocation {
    /// Logical CPU number, as the kernel numbers it.
    pub cpu: usize,
    /// NUMA node id holding the CPU.
    pub node: usize,
    /// Physical package (socket) id.
    pub package: usize,
    /// Core id, unique within its package. SMT siblings (hyperthreads) share
    /// `(package, core)`.
    pub core: usize,
}

/// One NUMA node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NumaNode {
    /// The node id the kernel uses (`nodeN` in sysfs, bit N of a node mask).
    pub id: usize,
    /// Online CPUs of the node (may be empty: a memory-only node).
    pub cpus: CpuSet,
    /// Memory size in bytes (`MemTotal` of the node), 0 if unknown or none.
    pub memory_bytes: u64,
    /// Whether the kernel can allocate memory on this node. `false` for a
    /// memoryless node.
    pub has_memory: bool,
}

/// The NUMA layout of a machine: nodes, CPUs, memory and distances.
///
/// ```
/// use pinstack_numa::{CpuSet, NumaNode, Topology};
///
/// // A fake two-node machine: node 0 has CPUs 0-1, node 1 has CPUs 2-3.
/// let node = |id: usize, cpus: &str| NumaNode {
///     id,
///     cpus: cpus.parse().unwrap(),
///     memory_bytes: 1 << 30,
///     has_memory: true,
/// };
/// let topo = Topology::new(
///     vec![node(0, "0-1"), node(1, "2-3")],
///     vec![],
///     vec![vec![10, 21], vec![21, 10]],
/// )?;
/// assert_eq!(topo.node_of_cpu(3), Some(1));
/// assert_eq!(topo.distance(0, 1), Some(21));
/// assert_eq!(topo.all_cpus(), "0-3".parse::<CpuSet>()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Sorted by id, ids unique.
    nodes: Vec<NumaNode>,
    /// One per CPU of any node, sorted by CPU number.
    cpus: Vec<CpuLocation>,
    /// `nodes.len()` squared, row-major, indexed by position in `nodes`.
    distances: Vec<u32>,
}

/// Distance the kernel reports to the local node.
pub(crate) const LOCAL_DISTANCE: u32 = 10;
/// Distance the kernel reports between nodes when firmware gives no SLIT.
pub(crate) const REMOTE_DISTANCE: u32 = 20;

impl Topology {
    /// Builds a topology from its parts, validating them.
    ///
    /// * `nodes`: in any order; ids must be unique and a CPU may belong to
    ///   one node only. At least one node must have a CPU.
    /// * `cpus`: locations of some or all CPUs. A CPU without one gets
    ///   `package = node` and `core = cpu` (no known SMT siblings). Each
    ///   location must name the node that holds its CPU.
    /// * `distances`: one row per node, in increasing node id order, each with
    ///   one column per node; or empty for the kernel's defaults (10 to
    ///   itself, 20 to every other node).
    ///
    /// # Errors
    ///
    /// A [`TopologyError`] naming the inconsistency.
    pub fn new(
        mut nodes: Vec<NumaNode>,
        cpus: Vec<CpuLocation>,
        distances: Vec<Vec<u32>>,
    ) -> Result<Topology, TopologyError> {
        let err = |msg: String| Err(TopologyError { msg });
        nodes.sort_by_key(|n| n.id);
        if nodes.windows(2).any(|w| w[0].id == w[1].id) {
            return err("two nodes have the same id".into());
        }
        let mut owner = BTreeMap::new();
        for node in &nodes {
            for cpu in &node.cpus {
                if let Some(other) = owner.insert(cpu, node.id) {
                    return err(format!("CPU {cpu} is in node {other} and node {}", node.id));
                }
            }
        }
        if owner.is_empty() {
            return err("no node has an online CPU".into());
        }
        let mut located = BTreeMap::new();
        for loc in cpus {
            match owner.get(&loc.cpu) {
                None => return err(format!("CPU {} has a location but is in no node", loc.cpu)),
                Some(&node) if node != loc.node => {
                    return err(format!(
                        "CPU {} is in node {node} but its location names node {}",
                        loc.cpu, loc.node
                    ))
                }
                Some(_) => {}
            }
            if located.insert(loc.cpu, loc).is_some() {
                return err("a CPU has two locations".into());
            }
        }
        let cpus = owner
            .iter()
            .map(|(&cpu, &node)| {
                located.remove(&cpu).unwrap_or(CpuLocation {
                    cpu,
                    node,
                    package: node,
                    core: cpu,
                })
            })
            .collect();
        let n = nodes.len();
        let distances = if distances.is_empty() {
            (0..n * n)
                .map(|i| {
                    if i / n == i % n {
                        LOCAL_DISTANCE
                    } else {
                        REMOTE_DISTANCE
                    }
                })
                .collect()
        } else if distances.len() != n || distances.iter().any(|row| row.len() != n) {
            return err(format!(
                "the distance matrix must be {n} x {n}, one row and column per node"
            ));
        } else {
            distances.into_iter().flatten().collect()
        };
        Ok(Topology {
            nodes,
            cpus,
            distances,
        })
    }

    /// The nodes, sorted by id.
    pub fn nodes(&self) -> &[NumaNode] {
        &self.nodes
    }

    /// The node with id `id`.
    pub fn node(&self, id: usize) -> Option<&NumaNode> {
        self.index_of(id).map(|i| &self.nodes[i])
    }

    /// Every online CPU's location, sorted by CPU number.
    pub fn cpus(&self) -> &[CpuLocation] {
        &self.cpus
    }

    /// The location of `cpu`, if it is online.
    pub fn cpu(&self, cpu: usize) -> Option<&CpuLocation> {
        self.cpus
            .binary_search_by_key(&cpu, |c| c.cpu)
            .ok()
            .map(|i| &self.cpus[i])
    }

    /// All online CPUs.
    pub fn all_cpus(&self) -> CpuSet {
        self.cpus.iter().map(|c| c.cpu).collect()
    }

    /// Ids of the nodes that have memory.
    pub fn memory_nodes(&self) -> NodeSet {
        self.nodes
            .iter()
            .filter(|n| n.has_memory)
            .map(|n| n.id)
            .collect()
    }

    /// The node holding `cpu`, if it is online.
    pub fn node_of_cpu(&self, cpu: usize) -> Option<usize> {
        self.cpu(cpu).map(|c| c.node)
    }

    /// The distance from node `from` to node `to` (10 means local; larger is
    /// farther), if both exist.
    pub fn distance(&self, from: usize, to: usize) -> Option<u32> {
        let (i, j) = (self.index_of(from)?, self.index_of(to)?);
        Some(self.distances[i * self.nodes.len() + j])
    }

    /// The distance row of node `from`, one entry per node in id order.
    pub fn distances_from(&self, from: usize) -> Option<&[u32]> {
        let n = self.nodes.len();
        let i = self.index_of(from)?;
        Some(&self.distances[i * n..(i + 1) * n])
    }

    /// The node with memory nearest to `node` (itself if it has memory),
    /// ties going to the lower id; `None` if `node` does not exist or no
    /// node has memory.
    pub fn nearest_memory_node(&self, node: usize) -> Option<usize> {
        self.nodes
            .iter()
            .filter(|n| n.has_memory)
            .filter_map(|n| Some((self.distance(node, n.id)?, n.id != node, n.id)))
            .min()
            .map(|(_, _, id)| id)
    }

    /// A copy restricted to the CPUs in `mask` (for example the process's
    /// affinity mask). Nodes left without CPUs are kept (their memory is
    /// still usable); CPU locations outside `mask` are dropped.
    ///
    /// # Errors
    ///
    /// If `mask` holds none of this topology's CPUs.
    pub fn allowed(&self, mask: &CpuSet) -> Result<Topology, TopologyError> {
        let nodes = self
            .nodes
            .iter()
            .map(|n| NumaNode {
                cpus: n.cpus.intersection(mask),
                ..n.clone()
            })
            .collect();
        let cpus = self
            .cpus
            .iter()
            .filter(|c| mask.contains(c.cpu))
            .cloned()
            .collect();
        let rows = self
            .distances
            .chunks(self.nodes.len())
            .map(<[u32]>::to_vec)
            .collect();
        Topology::new(nodes, cpus, rows).map_err(|_| TopologyError {
            msg: format!(
                "the CPU mask {mask} holds none of the online CPUs {}",
                self.all_cpus()
            ),
        })
    }

    /// Position of node `id` in `nodes`.
    pub(crate) fn index_of(&self, id: usize) -> Option<usize> {
        self.nodes.binary_search_by_key(&id, |n| n.id).ok()
    }
}

/// One line per node: `node 0: cpus 0-3, 16 GiB, distances 10 21`.
impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, node) in self.nodes.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let cpus = if node.cpus.is_empty() {
                "none".to_owned()
            } else {
                node.cpus.to_string()
            };
            write!(f, "node {}: cpus {cpus}, ", node.id)?;
            if node.has_memory {
                write!(f, "{} MiB", node.memory_bytes >> 20)?;
            } else {
                write!(f, "no memory")?;
            }
            write!(f, ", distances")?;
            for d in self.distances_from(node.id).unwrap_or_default() {
                write!(f, " {d}")?;
            }
        }
        Ok(())
    }
}

/// The parts given to [`Topology::new`] do not describe a consistent machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyError {
    msg: String,
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "inconsistent NUMA topology: {}", self.msg)
    }
}

impl std::error::Error for TopologyError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: usize, cpus: &str, mem: bool) -> NumaNode {
        NumaNode {
            id,
            cpus: cpus.parse().unwrap(),
            memory_bytes: if mem { 1 << 30 } else { 0 },
            has_memory: mem,
        }
    }

    #[test]
    fn sorts_nodes_and_fills_default_locations_and_distances() {
        let t = Topology::new(
            vec![node(2, "2-3", true), node(0, "0-1", true)],
            vec![],
            vec![],
        )
        .unwrap();
        assert_eq!(t.nodes().iter().map(|n| n.id).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(t.distance(0, 2), Some(REMOTE_DISTANCE));
        assert_eq!(t.distance(2, 2), Some(LOCAL_DISTANCE));
        assert_eq!(t.distance(1, 2), None);
        assert_eq!(
            t.cpu(3),
            Some(&CpuLocation {
                cpu: 3,
                node: 2,
                package: 2,
                core: 3
            })
        );
        assert_eq!(t.cpu(4), None);
        assert_eq!(t.to_string(), "node 0: cpus 0-1, 1024 MiB, distances 10 20\nnode 2: cpus 2-3, 1024 MiB, distances 20 10");
    }

    #[test]
    fn rejects_inconsistent_parts() {
        type Case = (Vec<NumaNode>, Vec<CpuLocation>, Vec<Vec<u32>>, &'static str);
        let cases: [Case; 6] = [
            (
                vec![node(0, "0-1", true), node(0, "2", true)],
                vec![],
                vec![],
                "same id",
            ),
            (
                vec![node(0, "0-1", true), node(1, "1-2", true)],
                vec![],
                vec![],
                "CPU 1 is in node 0 and node 1",
            ),
            (
                vec![node(0, "", true)],
                vec![],
                vec![],
                "no node has an online CPU",
            ),
            (
                vec![node(0, "0", true)],
                vec![CpuLocation {
                    cpu: 5,
                    node: 0,
                    package: 0,
                    core: 0,
                }],
                vec![],
                "CPU 5 has a location",
            ),
            (
                vec![node(0, "0", true)],
                vec![CpuLocation {
                    cpu: 0,
                    node: 1,
                    package: 0,
                    core: 0,
                }],
                vec![],
                "names node 1",
            ),
            (
                vec![node(0, "0", true), node(1, "1", true)],
                vec![],
                vec![vec![10, 20]],
                "2 x 2",
            ),
        ];
        for (nodes, cpus, dist, needle) in cases {
            let msg = Topology::new(nodes, cpus, dist).unwrap_err().to_string();
            assert!(msg.contains(needle), "{msg}");
        }
    }

    #[test]
    fn nearest_memory_node_uses_distance_then_id() {
        let t = Topology::new(
            vec![
                node(0, "0", true),
                node(1, "1", false),
                node(2, "2", true),
                node(3, "3", false),
            ],
            vec![],
            vec![
                vec![10, 20, 20, 20],
                vec![20, 10, 15, 20],
                vec![20, 15, 10, 20],
                vec![20, 20, 20, 10],
            ],
        )
        .unwrap();
        assert_eq!(t.nearest_memory_node(0), Some(0));
        assert_eq!(t.nearest_memory_node(1), Some(2));
        assert_eq!(t.nearest_memory_node(3), Some(0));
        assert_eq!(t.nearest_memory_node(9), None);
        assert_eq!(t.memory_nodes().to_string(), "0,2");
    }

    #[test]
    fn allowed_restricts_cpus_and_keeps_nodes() {
        let t = Topology::new(
            vec![node(0, "0-1", true), node(1, "2-3", true)],
            vec![],
            vec![],
        )
        .unwrap();
        let r = t.allowed(&"1-2".parse().unwrap()).unwrap();
        assert_eq!(r.nodes().len(), 2);
        assert_eq!(r.all_cpus().to_string(), "1-2");
        assert_eq!(r.node(0).unwrap().cpus.to_string(), "1");
        let r = t.allowed(&"2-3".parse().unwrap()).unwrap();
        assert!(r.node(0).unwrap().cpus.is_empty());
        assert_eq!(r.distance(0, 1), Some(20));
        let msg = t.allowed(&"8-9".parse().unwrap()).unwrap_err().to_string();
        assert!(msg.contains("8-9") && msg.contains("0-3"), "{msg}");
    }
}
