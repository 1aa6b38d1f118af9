//! `runtime::Builder`: configuring and starting a runtime.

use crate::config::External;
// Hooks are plain std `Arc`s (trait objects; not modelled by loom).
use crate::runtime::Runtime;
use pinstack_numa::{NumaPolicy, Topology};
use pinstack_stackpool::SizeClass;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

type Hook = Arc<dyn Fn() + Send + Sync + 'static>;

/// The settings a running runtime keeps.
#[derive(Clone)]
pub(crate) struct Config {
    /// Metrics and tracing settings (`metrics/config.rs`).
    pub(crate) obs: crate::metrics::ObsConfig,
    pub(crate) workers: usize,
    pub(crate) numa: NumaPolicy,
    /// A topology given by the builder (tests, recorded machines); else
    /// the runtime detects it.
    pub(crate) topology: Option<Topology>,
    pub(crate) thread_name: String,
    pub(crate) default_stack_size: usize,
    pub(crate) max_live_tasks: Option<usize>,
    pub(crate) on_thread_start: Option<Hook>,
    pub(crate) on_thread_stop: Option<Hook>,
    pub(crate) max_blocking_threads: usize,
    pub(crate) blocking_keep_alive: Duration,
    pub(crate) monitor_period: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("workers", &self.workers)
            .field("thread_name", &self.thread_name)
            .field("default_stack_size", &self.default_stack_size)
            .field("max_live_tasks", &self.max_live_tasks)
            .field("max_blocking_threads", &self.max_blocking_threads)
            .finish_non_exhaustive()
    }
}

/// The default stack size of a task: 64 KiB (only touched pages cost memory).
pub const DEFAULT_STACK_SIZE: usize = 64 * 1024;

/// Builds a [`Runtime`] with custom settings.
///
/// # Examples
///
/// ```
/// let rt = pinstack::Runtime::builder()
///     .worker_threads(2)
///     .thread_name("chat")
///     .default_stack_size(32 * 1024)
///     .build()?;
/// assert_eq!(rt.block_on(|| 1 + 1), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    pub(crate) config: Config,
    /// Which settings the code gave explicitly (they beat the environment).
    explicit_workers: bool,
    explicit_numa: bool,
    explicit_stack: bool,
    read_environment: bool,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl Builder {
    /// Defaults: one worker per CPU this process may run on, threads named
    /// `pinstack-worker-N`, 64 KiB default stacks, NUMA policy `Off`, no
    /// live-task limit, up to 512 blocking threads kept alive 10 s.
    ///
    /// Worker count, NUMA policy and default stack size can also come from
    /// the environment (`PINSTACK_WORKERS`, `PINSTACK_NUMA`,
    /// `PINSTACK_STACK_SIZE`) or a TOML file named by `PINSTACK_CONFIG`
    /// (keys `workers`, `numa`, `default_stack_size`). Precedence, highest
    /// first: a call on this builder, the environment, the file, the default.
    pub fn new() -> Builder {
        Builder {
            explicit_workers: false,
            explicit_numa: false,
            explicit_stack: false,
            read_environment: true,
            config: Config {
                obs: Default::default(),
                workers: 0,
                numa: NumaPolicy::Off,
                topology: None,
                thread_name: "pinstack".into(),
                default_stack_size: DEFAULT_STACK_SIZE,
                max_live_tasks: None,
                on_thread_start: None,
                on_thread_stop: None,
                max_blocking_threads: 512,
                blocking_keep_alive: Duration::from_secs(10),
                monitor_period: Duration::from_millis(10),
            },
        }
    }

    /// The number of worker threads (default: the CPUs this process may run on).
    pub fn worker_threads(mut self, n: usize) -> Builder {
        self.config.workers = n;
        self.explicit_workers = true;
        self
    }

    /// The NUMA policy (default `Off`):
    ///
    /// * `Off`: workers float over the allowed CPUs.
    /// * `Pin`: each worker is pinned to CPUs of one node, workers grouped by
    ///   node; stealing prefers the thief's own node.
    /// * `Bind`: pinned, and each worker thread's memory policy is
    ///   `MPOL_BIND` to its node, with its stacks from a stack pool whose
    ///   slabs are bound to that node. On a one-node machine this binds to
    ///   node 0.
    pub fn numa_policy(mut self, policy: NumaPolicy) -> Builder {
        self.config.numa = policy;
        self.explicit_numa = true;
        self
    }

    /// Places workers on this topology instead of the detected one (for
    /// recorded or synthetic machines in tests).
    pub fn topology(mut self, topology: Topology) -> Builder {
        self.config.topology = Some(topology);
        self
    }

    /// Ignores `PINSTACK_*` environment variables and `PINSTACK_CONFIG`
    /// (benchmarks and tests that must run exactly as written).
    pub fn ignore_environment(mut self) -> Builder {
        self.read_environment = false;
        self
    }

    /// The prefix of the worker threads' names (`PREFIX-worker-N`).
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Builder {
        self.config.thread_name = prefix.into();
        self
    }

    /// The stack size of tasks spawned without a hint (default 64 KiB),
    /// rounded up to the stack pool's size class.
    pub fn default_stack_size(mut self, bytes: usize) -> Builder {
        self.config.default_stack_size = bytes;
        self.explicit_stack = true;
        self
    }

    /// The most tasks alive at once; beyond it `task::Builder::spawn` returns
    /// an error and `spawn` panics. Default: no limit.
    pub fn max_live_tasks(mut self, n: usize) -> Builder {
        self.config.max_live_tasks = Some(n);
        self
    }

    /// Runs `f` on each worker and blocking thread when it starts.
    pub fn on_thread_start(mut self, f: impl Fn() + Send + Sync + 'static) -> Builder {
        self.config.on_thread_start = Some(Arc::new(f));
        self
    }

    /// Runs `f` on each worker and blocking thread before it exits.
    pub fn on_thread_stop(mut self, f: impl Fn() + Send + Sync + 'static) -> Builder {
        self.config.on_thread_stop = Some(Arc::new(f));
        self
    }

    /// The most threads `spawn_blocking` may start (default 512).
    pub fn max_blocking_threads(mut self, n: usize) -> Builder {
        self.config.max_blocking_threads = n;
        self
    }

    /// How long an idle blocking thread waits for work before exiting.
    pub fn blocking_keep_alive(mut self, d: Duration) -> Builder {
        self.config.blocking_keep_alive = d;
        self
    }

    /// How often the monitor samples workers; a resume longer than this
    /// counts as a long run (default 10 ms).
    pub fn long_run_threshold(mut self, d: Duration) -> Builder {
        self.config.monitor_period = d;
        self
    }

    /// Starts the runtime's threads.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for settings out of range (zero workers given
    /// explicitly is taken as "default"; a default stack size above 8 MiB,
    /// a bad `PINSTACK_*` variable or config file,
    /// a live-task limit or blocking-thread maximum of zero); an OS error if
    /// threads, pollers or the stack pool cannot be created.
    pub fn build(self) -> io::Result<Runtime> {
        let mut config = self.config;
        let ext = if self.read_environment {
            External::load()?
        } else {
            External::default()
        };
        if !self.explicit_workers {
            config.workers = ext.workers.unwrap_or(0);
        }
        if !self.explicit_numa {
            config.numa = ext.numa.unwrap_or(NumaPolicy::Off);
        }
        if !self.explicit_stack {
            config.default_stack_size = ext.default_stack_size.unwrap_or(DEFAULT_STACK_SIZE);
        }
        if config.workers == 0 {
            config.workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        }
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
        if config.workers > 4096 {
            return Err(invalid(format!(
                "worker_threads({}) is more than 4096: use at most one worker per CPU",
                config.workers
            )));
        }
        SizeClass::for_hint(config.default_stack_size).map_err(|e| {
            invalid(format!(
                "default_stack_size({}): {e}",
                config.default_stack_size
            ))
        })?;
        if config.max_live_tasks == Some(0) {
            return Err(invalid(
                "max_live_tasks(0) would forbid every task: give at least 1".into(),
            ));
        }
        if config.max_blocking_threads == 0 {
            return Err(invalid(
                "max_blocking_threads(0) would make spawn_blocking hang: give at least 1".into(),
            ));
        }
        if config.monitor_period.is_zero() {
            return Err(invalid("long_run_threshold must be more than zero".into()));
        }
        config.obs.validate()?;
        Runtime::start(config)
    }
}
