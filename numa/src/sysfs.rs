//! The sysfs backend: reads a [`Topology`] from `/sys/devices/system` or a
//! directory tree laid out like it.
//!
//! # Files read (paths relative to the root)
//!
//! ```text
//! node/nodeN/cpulist      CPUs of node N, list syntax           required per node
//! node/nodeN/meminfo      "Node N MemTotal:  X kB"               optional (0 bytes)
//! node/nodeN/distance     "10 21 ...", one column per node       optional (10/20)
//! node/has_memory         nodes with memory, list syntax         optional (MemTotal > 0)
//! cpu/online              online CPUs, list syntax               optional (all online)
//! cpu/cpuN/topology/core_id              core of CPU N           optional (core = N)
//! cpu/cpuN/topology/physical_package_id  socket of CPU N         optional (= node)
//! ```
//!
//! Without a `node/` directory (a kernel built without `CONFIG_NUMA`, or a
//! container that hides it) the machine is one node 0 holding every online
//! CPU, with memory; [`Topology::detect`] then takes the memory size from
//! `/proc/meminfo`, and the CPUs from the thread's affinity mask if
//! `cpu/online` is missing too.
//!
//! Every failure names the file and what was wrong with it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::affinity::thread_affinity;
use crate::cpuset::{CpuSet, NodeSet};
use crate::topology::{CpuLocation, NumaNode, Topology};

/// Where the live machine's tree is.
const SYSFS_ROOT: &str = "/sys/devices/system";

impl Topology {
    /// Reads the running machine's topology from sysfs.
    ///
    /// The result describes the online CPUs of the whole machine; it does not
    /// apply the process's affinity mask. Pass
    /// [`thread_affinity()`](crate::thread_affinity) to
    /// [`placement::plan`](crate::placement::plan) (or call
    /// [`Topology::allowed`]) to stay within it.
    ///
    /// ```
    /// use pinstack_numa::Topology;
    ///
    /// let topo = Topology::detect()?;
    /// assert!(!topo.nodes().is_empty());
    /// println!("{topo}");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidData` naming the file for malformed sysfs content; I/O errors
    /// reading it.
    pub fn detect() -> io::Result<Topology> {
        let fallback = Fallback {
            meminfo: Some(PathBuf::from("/proc/meminfo")),
            use_affinity: true,
        };
        read_tree(Path::new(SYSFS_ROOT), &fallback)
    }

    /// Reads a topology from a directory laid out like `/sys/devices/system`
    /// (for tests and for topologies recorded on other machines: copy the
    /// files listed in the module documentation).
    ///
    /// ```
    /// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/two-socket-smt");
    /// let topo = pinstack_numa::Topology::from_sysfs_dir(dir)?;
    /// assert_eq!(topo.nodes().len(), 2);
    /// assert_eq!(topo.distance(0, 1), Some(21));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Topology::detect`]; also `NotFound` if the tree has neither
    /// `node/` nor `cpu/online`.
    pub fn from_sysfs_dir(root: impl AsRef<Path>) -> io::Result<Topology> {
        read_tree(
            root.as_ref(),
            &Fallback {
                meminfo: None,
                use_affinity: false,
            },
        )
    }
}

/// What to use when the tree has no `node/` directory.
struct Fallback {
    /// A `/proc/meminfo`-style file for the single node's memory size.
    meminfo: Option<PathBuf>,
    /// Whether to take the CPUs from the affinity mask if `cpu/online` is
    /// missing too.
    use_affinity: bool,
}

fn read_tree(root: &Path, fallback: &Fallback) -> io::Result<Topology> {
    let online = read_optional(&root.join("cpu/online"))?
        .map(|t| parse_list::<CpuSet>(&root.join("cpu/online"), &t))
        .transpose()?;
    let node_ids = list_nodes(&root.join("node"))?;
    if node_ids.is_empty() {
        return single_node(root, online, fallback);
    }

    let has_memory_path = root.join("node/has_memory");
    let has_memory = read_optional(&has_memory_path)?
        .map(|t| parse_list::<NodeSet>(&has_memory_path, &t))
        .transpose()?;

    let mut nodes = Vec::with_capacity(node_ids.len());
    let mut distances = Vec::new();
    let mut any_distance = false;
    for &id in &node_ids {
        let dir = root.join(format!("node/node{id}"));
        let cpulist = dir.join("cpulist");
        let text = fs::read_to_string(&cpulist).map_err(|e| annotate(&cpulist, e))?;
        let mut cpus = parse_list::<CpuSet>(&cpulist, &text)?;
        if let Some(online) = &online {
            cpus = cpus.intersection(online);
        }
        let meminfo = dir.join("meminfo");
        let memory_bytes = match read_optional(&meminfo)? {
            Some(text) => parse_mem_total(&meminfo, &text)?,
            None => 0,
        };
        let node_has_memory = match &has_memory {
            Some(set) => set.contains(id),
            None => memory_bytes > 0,
        };
        nodes.push(NumaNode {
            id,
            cpus,
            memory_bytes,
            has_memory: node_has_memory,
        });

        let distance = dir.join("distance");
        match read_optional(&distance)? {
            Some(text) => {
                any_distance = true;
                distances.push(parse_distances(&distance, &text, node_ids.len())?);
            }
            None => distances.push(Vec::new()),
        }
    }
    if !any_distance {
        distances.clear();
    } else if let Some(i) = distances.iter().position(Vec::is_empty) {
        let path = root.join(format!("node/node{}/distance", node_ids[i]));
        return Err(invalid(&path, "missing while other nodes have one".into()));
    }

    let cpus = cpu_locations(root, &nodes)?;
    Topology::new(nodes, cpus, distances).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", root.display()),
        )
    })
}

/// The tree has no node directory: one node 0 with every online CPU.
fn single_node(root: &Path, online: Option<CpuSet>, fallback: &Fallback) -> io::Result<Topology> {
    let cpus = match online {
        Some(cpus) => cpus,
        None if fallback.use_affinity => thread_affinity()?,
        None => {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{}: neither node/node*/ nor cpu/online exists; is this a sysfs tree (/sys/devices/system)?",
                    root.display()
                ),
            ))
        }
    };
    let memory_bytes = match &fallback.meminfo {
        Some(path) => match read_optional(path)? {
            Some(text) => parse_mem_total(path, &text)?,
            None => 0,
        },
        None => 0,
    };
    let node = NumaNode {
        id: 0,
        cpus,
        memory_bytes,
        has_memory: true,
    };
    let cpus = cpu_locations(root, std::slice::from_ref(&node))?;
    Topology::new(vec![node], cpus, Vec::new()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", root.display()),
        )
    })
}

/// Ids of the `nodeN` directories under `dir`, sorted; empty if `dir` does
/// not exist.
fn list_nodes(dir: &Path) -> io::Result<Vec<usize>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(annotate(dir, e)),
    };
    let mut ids = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| annotate(dir, e))?;
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_prefix("node")) else {
            continue;
        };
        if let Ok(id) = id.parse::<usize>() {
            if id < NodeSet::LIMIT {
                ids.push(id);
            }
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Core and package of each CPU of `nodes`, where sysfs says.
fn cpu_locations(root: &Path, nodes: &[NumaNode]) -> io::Result<Vec<CpuLocation>> {
    let mut locations = Vec::new();
    for node in nodes {
        for cpu in &node.cpus {
            let dir = root.join(format!("cpu/cpu{cpu}/topology"));
            let core = read_number(&dir.join("core_id"))?.unwrap_or(cpu as i64);
            let package = read_number(&dir.join("physical_package_id"))?.unwrap_or(-1);
            locations.push(CpuLocation {
                cpu,
                node: node.id,
                // -1 means "unknown" on some architectures.
                package: usize::try_from(package).unwrap_or(node.id),
                core: usize::try_from(core).unwrap_or(cpu),
            });
        }
    }
    Ok(locations)
}

/// Reads a file, `None` if it does not exist.
fn read_optional(path: &Path) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(annotate(path, e)),
    }
}

fn read_number(path: &Path) -> io::Result<Option<i64>> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    text.trim()
        .parse()
        .map(Some)
        .map_err(|_| invalid(path, format!("{:?} is not a number", text.trim())))
}

fn parse_list<T: std::str::FromStr<Err = crate::ParseIdSetError>>(
    path: &Path,
    text: &str,
) -> io::Result<T> {
    text.parse()
        .map_err(|e: crate::ParseIdSetError| invalid(path, e.to_string()))
}

/// `Node 0 MemTotal:       32768000 kB` (a per-node meminfo) or
/// `MemTotal:       32768000 kB` (`/proc/meminfo`), in bytes.
fn parse_mem_total(path: &Path, text: &str) -> io::Result<u64> {
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if key.split_whitespace().last() != Some("MemTotal") {
            continue;
        }
        let mut words = value.split_whitespace();
        let number = words.next().and_then(|n| n.parse::<u64>().ok());
        let scale = match words.next() {
            Some("kB") => Some(1024),
            None => Some(1),
            Some(_) => None,
        };
        return match (number, scale) {
            (Some(n), Some(scale)) => Ok(n.saturating_mul(scale)),
            _ => Err(invalid(
                path,
                format!("cannot read {:?} as \"N kB\"", line.trim()),
            )),
        };
    }
    Err(invalid(path, "no MemTotal line".into()))
}

fn parse_distances(path: &Path, text: &str, nodes: usize) -> io::Result<Vec<u32>> {
    let row = text
        .split_whitespace()
        .map(|d| {
            d.parse::<u32>()
                .map_err(|_| invalid(path, format!("{d:?} is not a distance")))
        })
        .collect::<io::Result<Vec<u32>>>()?;
    if row.len() != nodes {
        return Err(invalid(
            path,
            format!("{} distances for {nodes} nodes", row.len()),
        ));
    }
    Ok(row)
}

fn invalid(path: &Path, msg: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {msg}", path.display()),
    )
}

fn annotate(path: &Path, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_in_both_formats() {
        let p = Path::new("meminfo");
        assert_eq!(
            parse_mem_total(p, "Node 1 MemTotal:  2048 kB\nNode 1 MemFree: 1 kB\n").unwrap(),
            2048 * 1024
        );
        assert_eq!(
            parse_mem_total(p, "MemTotal:       16 kB\nMemFree: 3 kB\n").unwrap(),
            16 * 1024
        );
        let err = parse_mem_total(p, "Node 0 MemTotal: lots\n").unwrap_err();
        assert!(err.to_string().starts_with("meminfo: cannot read"), "{err}");
        assert!(parse_mem_total(p, "MemFree: 3 kB\n")
            .unwrap_err()
            .to_string()
            .contains("no MemTotal"));
    }

    #[test]
    fn distances_must_match_node_count() {
        let p = Path::new("node0/distance");
        assert_eq!(parse_distances(p, "10 21\n", 2).unwrap(), [10, 21]);
        let err = parse_distances(p, "10\n", 2).unwrap_err();
        assert_eq!(err.to_string(), "node0/distance: 1 distances for 2 nodes");
        assert!(parse_distances(p, "10 x\n", 2)
            .unwrap_err()
            .to_string()
            .contains("\"x\" is not a distance"));
    }
}
