//! tracegap's checks on an Apache DataFusion Ballista cluster.
//!
//! The same SQL files and helper functions as the local analysis run on a Ballista scheduler
//! and its executors. Every process needs the same two additions to stock Ballista:
//! - [`functions`]: the checks' helper functions (plans carry functions by name, so each process
//!   resolves them from its own registry);
//! - [`codec`]: in-memory tables (the findings of a run, materialised views) travel inside the
//!   plan as Arrow IPC, so a query over them runs on the cluster like any other.
//!
//! [`client`] opens the session `tracegap check|report --cluster` analyses on; [`scheduler`] and
//! [`executor`] run the processes of `tracegap cluster scheduler|executor`.

pub mod client;
pub mod codec;
pub mod executor;
pub mod functions;
pub mod object_stores;
pub mod scheduler;

pub use ballista_core::config::TaskSchedulingPolicy;
pub use client::connect;
pub use executor::{ExecutorOptions, run_executor};
pub use scheduler::{SchedulerOptions, run_scheduler};

/// Errors of the cluster processes and of connecting to one.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The scheduler URL is not `df://HOST:PORT`.
    #[error("cluster URL {url:?}: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The scheduler could not be reached or refused the session.
    #[error("connecting to the Ballista scheduler at {url}: {source}")]
    Connect {
        /// The URL given.
        url: String,
        /// The error.
        source: datafusion::error::DataFusionError,
    },
    /// An address flag does not parse.
    #[error("{flag} {value:?} is not a host:port address: {reason}")]
    Address {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: String,
        /// Why.
        reason: String,
    },
    /// A Ballista process failed.
    #[error("{process}: {source}")]
    Ballista {
        /// `scheduler` or `executor`.
        process: &'static str,
        /// The error.
        source: ballista_core::error::BallistaError,
    },
}
