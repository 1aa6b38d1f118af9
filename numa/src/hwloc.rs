//! The hwloc backend (cargo feature `hwloc`): reads a [`Topology`] through
//! the hwloc library (crate `hwlocality`, system `libhwloc-dev`).
//!
//! hwloc sees more than sysfs on some machines (firmware tables, PMEM and
//! CXL memory nodes, non-Linux systems) and can build **synthetic**
//! topologies from a one-line description, which is how tests get machines
//! that this host is not.
//!
//! # Mapping
//!
//! ```text
//! hwloc NUMANode   os_index ─► NumaNode::id, total memory ─► memory_bytes
//! hwloc PU         os_index ─► CpuLocation::cpu
//!   parent Core    os_index ─► CpuLocation::core   (PU os_index if none)
//!   parent Package os_index ─► CpuLocation::package (node id if none)
//! NUMANode distance matrix   ─► distances (10/20 defaults if hwloc has none)
//! ```
//!
//! A PU belongs to the lowest-numbered NUMA node whose CPU set holds it:
//! hwloc gives a memory-only node (PMEM, CXL, HBM) the CPU set of the
//! package it hangs off, which would otherwise put a CPU in two nodes.
//! Differences from sysfs: hwloc by default drops CPUs outside the process's
//! allowed set, and describes CPU-only (memoryless) nodes by attaching their
//! CPUs to a node with memory.

use std::io;

use hwlocality::object::types::ObjectType;
use hwlocality::object::TopologyObject;

use crate::cpuset::CpuSet;
use crate::topology::{CpuLocation, NumaNode, Topology};

impl Topology {
    /// Reads the running machine's topology through hwloc.
    ///
    /// ```no_run
    /// let topo = pinstack_numa::Topology::from_hwloc()?;
    /// println!("{topo}");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// hwloc's error if it cannot discover the machine; `InvalidData` if
    /// what it reports is inconsistent.
    pub fn from_hwloc() -> io::Result<Topology> {
        let topo = hwlocality::Topology::new()
            .map_err(|e| io::Error::other(format!("hwloc topology discovery failed: {e}")))?;
        convert(&topo)
    }

    /// Builds a topology from an hwloc synthetic description such as
    /// `"pack:2 numa:1 core:4 pu:2"` (2 packages, each one NUMA node of 4
    /// cores with 2 hardware threads). See hwloc's "Synthetic topologies"
    /// documentation for the syntax (`numa:2(memory=8GB)`, ...).
    ///
    /// ```
    /// let topo = pinstack_numa::Topology::from_hwloc_synthetic("pack:2 numa:1 core:4 pu:2")?;
    /// assert_eq!(topo.nodes().len(), 2);
    /// assert_eq!(topo.node(1).unwrap().cpus.to_string(), "8-15");
    /// // PUs 0 and 1 are the two threads of core 0.
    /// assert_eq!(topo.cpu(1).unwrap().core, topo.cpu(0).unwrap().core);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidInput` with hwloc's message for a description it rejects.
    pub fn from_hwloc_synthetic(description: &str) -> io::Result<Topology> {
        let builder = hwlocality::Topology::builder().from_synthetic(description).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid hwloc synthetic topology {description:?}: {e} (example: \"pack:2 numa:1 core:4 pu:2\")"),
            )
        })?;
        let topo = builder.build().map_err(|e| {
            io::Error::other(format!(
                "hwloc could not build synthetic topology {description:?}: {e}"
            ))
        })?;
        convert(&topo)
    }
}

/// Converts an hwloc topology into the plain data type.
fn convert(topo: &hwlocality::Topology) -> io::Result<Topology> {
    let invalid =
        |msg: String| io::Error::new(io::ErrorKind::InvalidData, format!("hwloc topology: {msg}"));

    let mut hw_nodes: Vec<&TopologyObject> = topo.objects_with_type(ObjectType::NUMANode).collect();
    hw_nodes.sort_by_key(|n| n.os_index());
    let node_ids = hw_nodes
        .iter()
        .map(|n| {
            n.os_index()
                .ok_or_else(|| invalid("a NUMA node has no OS index".into()))
        })
        .collect::<io::Result<Vec<usize>>>()?;

    let mut cpus = Vec::new();
    let mut node_cpus = vec![CpuSet::new(); hw_nodes.len()];
    for pu in topo.objects_with_type(ObjectType::PU) {
        let cpu = pu
            .os_index()
            .ok_or_else(|| invalid("a PU has no OS index".into()))?;
        let Some(pos) = hw_nodes
            .iter()
            .position(|n| n.cpuset().is_some_and(|set| set.is_set(cpu)))
        else {
            continue;
        };
        let node = node_ids[pos];
        node_cpus[pos]
            .try_insert(cpu)
            .map_err(|e| invalid(e.to_string()))?;
        let ancestor_index = |ty| {
            pu.first_ancestor_with_type(ty)
                .and_then(TopologyObject::os_index)
        };
        cpus.push(CpuLocation {
            cpu,
            node,
            core: ancestor_index(ObjectType::Core).unwrap_or(cpu),
            package: ancestor_index(ObjectType::Package).unwrap_or(node),
        });
    }

    let nodes = hw_nodes
        .iter()
        .zip(&node_ids)
        .zip(node_cpus)
        .map(|((obj, &id), cpus)| NumaNode {
            id,
            cpus,
            memory_bytes: obj.total_memory(),
            has_memory: obj.total_memory() > 0,
        })
        .collect();

    let distances = node_distances(topo, &hw_nodes)?;
    Topology::new(nodes, cpus, distances).map_err(|e| invalid(e.to_string()))
}

/// The NUMA node distance matrix in `nodes` order, or empty (defaults) if
/// hwloc has none covering every node.
fn node_distances(
    topo: &hwlocality::Topology,
    nodes: &[&TopologyObject],
) -> io::Result<Vec<Vec<u32>>> {
    let matrices = topo
        .distances_with_type(None, ObjectType::NUMANode)
        .map_err(|e| io::Error::other(format!("hwloc could not report NUMA distances: {e}")))?;
    for matrix in &matrices {
        let Some(idx) = nodes
            .iter()
            .map(|n| matrix.object_idx(n))
            .collect::<Option<Vec<usize>>>()
        else {
            continue;
        };
        let n = matrix.num_objects();
        let values = matrix.distances();
        let rows = idx
            .iter()
            .map(|&i| {
                idx.iter()
                    .map(|&j| u32::try_from(values[i * n + j]).unwrap_or(u32::MAX))
                    .collect()
            })
            .collect();
        return Ok(rows);
    }
    Ok(Vec::new())
}
