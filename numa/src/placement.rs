//! Worker placement: which node and CPUs each worker thread gets, and in
//! which order a worker steals from the others. Pure functions of a
//! [`Topology`]; nothing here touches the machine except
//! [`WorkerPlacement::apply`], which a worker calls on itself.
//!
//! # The plan
//!
//! ```text
//!  allowed CPUs ∩ online CPUs ──► usable CPUs per node (c0, c1, ...)
//!                                        │
//!      workers W split over nodes in proportion to c_i (largest remainder;
//!      ties to the node with more CPUs, then the lower id), numbered node
//!      by node: node 0 gets workers 0..w0, node 1 gets w0..w0+w1, ...
//!                                        │
//!      within a node with w_i workers:   ▼
//!        w_i <= c_i : one CPU each, distinct physical cores first, then
//!                     SMT siblings (CPU order within each round)
//!        w_i >  c_i : every worker gets the node's whole usable set
//!                                        │
//!      memory_node = the node itself if it has memory, else the nearest
//!                    node with memory (by distance, ties to lower id)
//! ```
//!
//! With `Off` there is no restriction: each worker's CPU set is every usable
//! CPU and its node is the node owning most usable CPUs (ties to the lower
//! id), which is only a hint (the runtime neither pins nor binds).
//!
//! # Steal order
//!
//! [`steal_order`] sorts the other workers by the distance from the thief's
//! node to theirs (same node first), and within one distance by ring offset
//! from the thief (`w+1, w+2, ...` wrapping), so that the workers of a node
//! do not all raid the same victim first.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::affinity::set_thread_affinity;
use crate::cpuset::CpuSet;
use crate::memory::{set_thread_mempolicy, MemPolicy};
use crate::policy::NumaPolicy;
use crate::topology::Topology;
use crate::NodeSet;

/// Where one worker runs and takes its memory from.
///
/// Built by [`plan`]; carries a shared copy of the node distances so that
/// [`steal_order`] needs only the placements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerPlacement {
    /// The worker's index, `0..workers`.
    pub worker: usize,
    /// The node whose CPUs the worker runs on.
    pub node: usize,
    /// The node its memory comes from under `Bind`: `node`, or for a
    /// memoryless node the nearest node with memory.
    pub memory_node: usize,
    /// The CPUs the worker may run on: one CPU when pinned one-to-one, the
    /// node's usable CPUs when the node is oversubscribed, every usable CPU
    /// under `Off`.
    pub cpus: CpuSet,
    /// The policy this placement was planned for.
    pub policy: NumaPolicy,
    /// Node distances of the planned topology.
    distances: Arc<Distances>,
}

/// The node distance matrix, shared by the placements of one plan.
#[derive(Debug, PartialEq, Eq)]
struct Distances {
    /// Node ids, sorted.
    ids: Vec<usize>,
    /// `ids.len()` squared, row-major.
    matrix: Vec<u32>,
}

impl WorkerPlacement {
    /// The distance from this worker's node to `node` (10 = local), if the
    /// planned topology has that node.
    pub fn distance_to(&self, node: usize) -> Option<u32> {
        let d = &self.distances;
        let i = d.ids.binary_search(&self.node).ok()?;
        let j = d.ids.binary_search(&node).ok()?;
        d.matrix.get(i * d.ids.len() + j).copied()
    }

    /// Applies the placement to the **calling thread**, per its policy:
    /// `Off` does nothing; `Pin` sets the thread's CPU affinity to `cpus`;
    /// `Bind` also sets its memory policy to `MPOL_BIND` on `memory_node`.
    ///
    /// ```no_run
    /// use pinstack_numa::{placement, thread_affinity, NumaPolicy, Topology};
    ///
    /// let topo = Topology::detect()?;
    /// let plan = placement::plan(&topo, &thread_affinity()?, 2, NumaPolicy::Bind)?;
    /// let workers: Vec<_> = plan
    ///     .into_iter()
    ///     .map(|p| std::thread::spawn(move || p.apply()))
    ///     .collect();
    /// for w in workers {
    ///     w.join().unwrap()?;
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The error of `sched_setaffinity` or `set_mempolicy` (see
    /// [`set_thread_affinity`] and [`set_thread_mempolicy`]).
    pub fn apply(&self) -> io::Result<()> {
        if self.policy.pins_threads() {
            set_thread_affinity(&self.cpus)?;
        }
        if self.policy.binds_memory() {
            set_thread_mempolicy(&MemPolicy::Bind(NodeSet::single(self.memory_node)))?;
        }
        Ok(())
    }
}

/// Places `workers` worker threads on the CPUs in `allowed_cpus` (usually
/// the process's [`thread_affinity`](crate::thread_affinity)) of `topology`,
/// per `policy`. See the module documentation for the rules.
///
/// ```
/// use pinstack_numa::{placement, NumaPolicy, Topology};
///
/// // The sysfs tree of a 2-socket host (tests/data): 2 nodes x 4 cores x
/// // 2 threads, SMT siblings numbered next to each other (CPUs 0 and 1
/// // share core 0).
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/two-socket-smt");
/// let topo = Topology::from_sysfs_dir(dir)?;
/// let plan = placement::plan(&topo, &topo.all_cpus(), 4, NumaPolicy::Pin)?;
/// let nodes: Vec<usize> = plan.iter().map(|p| p.node).collect();
/// assert_eq!(nodes, [0, 0, 1, 1]);
/// // Distinct physical cores: CPUs 0 and 2, not the SMT siblings 0 and 1.
/// assert_eq!(plan[1].cpus.to_string(), "2");
/// assert_eq!(placement::steal_order(&plan, 0), [1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`PlacementError`] if `workers` is 0, if `allowed_cpus` holds none of
/// the topology's CPUs, or (under `Bind`) if no node has memory.
pub fn plan(
    topology: &Topology,
    allowed_cpus: &CpuSet,
    workers: usize,
    policy: NumaPolicy,
) -> Result<Vec<WorkerPlacement>, PlacementError> {
    if workers == 0 {
        return Err(PlacementError::NoWorkers);
    }
    let usable = topology.all_cpus().intersection(allowed_cpus);
    if usable.is_empty() {
        return Err(PlacementError::NoUsableCpus {
            allowed: allowed_cpus.clone(),
            online: topology.all_cpus(),
        });
    }
    let distances = Arc::new(Distances {
        ids: topology.nodes().iter().map(|n| n.id).collect(),
        matrix: topology
            .nodes()
            .iter()
            .flat_map(|n| topology.distances_from(n.id).unwrap_or_default().to_vec())
            .collect(),
    });
    // (node id, usable CPUs of the node), nodes without usable CPUs dropped.
    let per_node: Vec<(usize, CpuSet)> = topology
        .nodes()
        .iter()
        .map(|n| (n.id, n.cpus.intersection(&usable)))
        .filter(|(_, cpus)| !cpus.is_empty())
        .collect();
    let memory_node = |node: usize| {
        topology
            .nearest_memory_node(node)
            .ok_or(PlacementError::NoMemory { node })
    };
    let placement = |worker, node, memory_node, cpus| WorkerPlacement {
        worker,
        node,
        memory_node,
        cpus,
        policy,
        distances: Arc::clone(&distances),
    };

    if policy == NumaPolicy::Off {
        // max_by_key keeps the last maximum; iterate in reverse for the first.
        let node = per_node
            .iter()
            .rev()
            .max_by_key(|(_, cpus)| cpus.len())
            .map_or(0, |(id, _)| *id);
        // Under Off nothing is bound, so a machine without memory nodes is
        // not an error: fall back to the node itself.
        let mem = topology.nearest_memory_node(node).unwrap_or(node);
        return Ok((0..workers)
            .map(|w| placement(w, node, mem, usable.clone()))
            .collect());
    }

    let counts: Vec<usize> = per_node.iter().map(|(_, cpus)| cpus.len()).collect();
    let shares = proportional_shares(workers, &counts);
    let mut out = Vec::with_capacity(workers);
    for ((node, cpus), share) in per_node.iter().zip(shares) {
        if share == 0 {
            continue;
        }
        let mem = memory_node(*node)?;
        if share <= cpus.len() {
            for cpu in core_first_order(topology, cpus).into_iter().take(share) {
                out.push(placement(out.len(), *node, mem, CpuSet::single(cpu)));
            }
        } else {
            for _ in 0..share {
                out.push(placement(out.len(), *node, mem, cpus.clone()));
            }
        }
    }
    Ok(out)
}

/// The other workers in the order `worker` should try to steal from them:
/// nearest node first (same node first of all), then by ring offset from
/// `worker`. Empty if `worker` is not in `placements`.
///
/// ```
/// use pinstack_numa::{placement, NumaPolicy, Topology};
///
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/two-socket-smt");
/// let topo = Topology::from_sysfs_dir(dir)?;
/// let plan = placement::plan(&topo, &topo.all_cpus(), 6, NumaPolicy::Pin)?;
/// // Workers 0-2 on node 0, 3-5 on node 1; worker 4 steals from 5 and 3
/// // (its node, ring order) before 0, 1, 2.
/// assert_eq!(placement::steal_order(&plan, 4), [5, 3, 0, 1, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn steal_order(placements: &[WorkerPlacement], worker: usize) -> Vec<usize> {
    let Some(me) = placements.iter().find(|p| p.worker == worker) else {
        return Vec::new();
    };
    let n = placements.len();
    let mut others: Vec<(u32, usize, usize)> = placements
        .iter()
        .filter(|p| p.worker != worker)
        .map(|p| {
            let distance = if p.node == me.node {
                0
            } else {
                me.distance_to(p.node).unwrap_or(u32::MAX)
            };
            let ring = (p.worker + n - worker % n) % n;
            (distance, ring, p.worker)
        })
        .collect();
    others.sort_unstable();
    others.into_iter().map(|(_, _, w)| w).collect()
}

/// Splits `total` into shares proportional to `weights` (largest remainder
/// method). Ties in the remainder go to the larger weight, then the earlier
/// index. The shares sum to `total`; if `total <= sum(weights)`, no share
/// exceeds its weight.
fn proportional_shares(total: usize, weights: &[usize]) -> Vec<usize> {
    let sum: usize = weights.iter().sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let mut shares: Vec<usize> = weights.iter().map(|&w| total * w / sum).collect();
    let mut left = total - shares.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Remainder of total * w / sum, scaled by sum: larger first.
    order.sort_by_key(|&i| {
        (
            std::cmp::Reverse(total * weights[i] % sum),
            std::cmp::Reverse(weights[i]),
            i,
        )
    });
    for i in order {
        if left == 0 {
            break;
        }
        shares[i] += 1;
        left -= 1;
    }
    shares
}

/// The CPUs of `cpus` ordered so that each physical core's first thread
/// comes before any core's second thread: round r holds the r-th SMT thread
/// (by CPU number) of every core, rounds in order, CPU order within a round.
fn core_first_order(topology: &Topology, cpus: &CpuSet) -> Vec<usize> {
    let mut seen = std::collections::BTreeMap::<(usize, usize), usize>::new();
    let mut ranked: Vec<(usize, usize)> = cpus
        .iter()
        .map(|cpu| {
            let key = topology
                .cpu(cpu)
                .map_or((usize::MAX, cpu), |l| (l.package, l.core));
            let round = seen.entry(key).or_insert(0);
            *round += 1;
            (*round - 1, cpu)
        })
        .collect();
    ranked.sort_unstable();
    ranked.into_iter().map(|(_, cpu)| cpu).collect()
}

/// [`plan`] cannot place the workers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlacementError {
    /// Zero workers were asked for.
    NoWorkers,
    /// The allowed CPU set holds none of the topology's online CPUs.
    NoUsableCpus {
        /// The allowed set given.
        allowed: CpuSet,
        /// The topology's online CPUs.
        online: CpuSet,
    },
    /// A worker's node has no memory and no node with memory is known.
    NoMemory {
        /// The worker's node.
        node: usize,
    },
}

impl fmt::Display for PlacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlacementError::NoWorkers => write!(f, "cannot place 0 workers: ask for at least one worker thread"),
            PlacementError::NoUsableCpus { allowed, online } => write!(
                f,
                "no usable CPU: the allowed CPUs ({}) and the online CPUs ({online}) do not overlap; \
                 check the process's affinity (taskset, cgroup cpuset) and the topology source",
                if allowed.is_empty() { "none".to_owned() } else { allowed.to_string() }
            ),
            PlacementError::NoMemory { node } => write!(
                f,
                "node {node} has no memory and no node with memory is known, so memory cannot be bound; \
                 use the `pin` or `off` NUMA policy"
            ),
        }
    }
}

impl std::error::Error for PlacementError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_proportional_and_sum_to_total() {
        assert_eq!(proportional_shares(4, &[2, 2]), [2, 2]);
        assert_eq!(proportional_shares(3, &[2, 2]), [2, 1]);
        assert_eq!(proportional_shares(1, &[2, 4]), [0, 1]);
        assert_eq!(proportional_shares(4, &[6, 2]), [3, 1]);
        assert_eq!(proportional_shares(2, &[6, 2]), [2, 0]);
        assert_eq!(proportional_shares(10, &[1, 1, 1]), [4, 3, 3]);
        assert_eq!(proportional_shares(0, &[1, 1]), [0, 0]);
        for total in 0..40 {
            for weights in [&[1usize, 7, 3][..], &[5, 5, 5, 5], &[16, 1]] {
                let shares = proportional_shares(total, weights);
                assert_eq!(shares.iter().sum::<usize>(), total);
                if total <= weights.iter().sum::<usize>() {
                    assert!(
                        shares.iter().zip(weights).all(|(s, w)| s <= w),
                        "{total} {weights:?} {shares:?}"
                    );
                }
            }
        }
    }
}
