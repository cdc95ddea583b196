//! Running apps: one launch (`launch`) and its Landlock confinement (`confine`), the actor per app (`supervisor`), each app's output
//! (`logs`) and the log files it writes itself (`log_files`), the CPU and memory sampler
//! (`sampler`) and the history of its figures (`monitor`).
//!
//! [`Core`] is what the running side shares: the engine owns one and hands it to the loops
//! that follow it (sampling, history, log files).
//!
//! Invariant: imports only `base` and `store`; never the engine's operations or a front door.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::base::config::Config;
use crate::base::home::Home;
use crate::store::registry::Registry;

pub mod confine;
pub mod launch;
pub mod log_files;
pub mod logs;
pub mod monitor;
pub mod runtimes;
pub mod sampler;
pub mod supervisor;

/// The running side of one engine: the home and configuration it runs with, the registry, the
/// supervisor of every app and the stream of its events, and what samples and follows them.
pub struct Core {
    pub home: Home,
    /// The configuration the engine started with; its runtimes are `runtimes`' first set.
    pub config: Arc<Config>,
    /// The runtimes in force (a reload replaces them).
    pub runtimes: Arc<runtimes::Runtimes>,
    pub registry: Registry,
    pub supervisor: supervisor::Supervisor,
    pub events: broadcast::Sender<supervisor::Event>,
    pub sampler: sampler::Sampler,
    /// History of the figures, timeline of events, live feed.
    pub monitor: Arc<monitor::Monitor>,
    /// Followers of the log files apps write themselves.
    pub log_files: log_files::LogFiles,
}
