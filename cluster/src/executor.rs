//! `tracegap cluster executor`: a Ballista executor that knows the checks' functions and
//! tracegap's plan codec.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};

use crate::ClusterError;
use crate::codec::TracegapLogicalCodec;
use crate::functions::function_registry;
use crate::object_stores::{runtime_env, session_config};
use crate::scheduler::MAX_MESSAGE_BYTES;

/// How an executor finds its scheduler, where it listens, and what it may use.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler, `HOST:PORT`.
    pub scheduler: String,
    /// Address of its Arrow Flight service (shuffle and result data); its gRPC service listens
    /// on `grpc_port` of the same host.
    pub bind: SocketAddr,
    /// Port of its gRPC service (tasks pushed by the scheduler).
    pub grpc_port: u16,
    /// Host name the scheduler and other executors use to reach it.
    pub external_host: Option<String>,
    /// Where shuffle files and spills go.
    pub work_directory: Option<PathBuf>,
    /// Tasks run at once (default: the cores).
    pub concurrent_tasks: Option<usize>,
    /// Memory shared by its tasks before they spill (default: Ballista's share of the host's).
    pub memory_limit: Option<u64>,
    /// How often it tells the scheduler it is alive.
    pub heartbeat_interval: Duration,
    /// Whether it asks for tasks (pull) or is sent them (push): its scheduler's policy.
    pub scheduling_policy: TaskSchedulingPolicy,
}

/// Runs an executor until the process ends.
pub async fn run_executor(options: ExecutorOptions) -> Result<(), ClusterError> {
    let (scheduler_host, scheduler_port) = split_address(&options.scheduler)?;
    let work_directory = options.work_directory.clone();
    let defaults = ExecutorProcessConfig::default();
    let config = ExecutorProcessConfig {
        bind_host: options.bind.ip().to_string(),
        port: options.bind.port(),
        grpc_port: options.grpc_port,
        external_host: options.external_host.clone(),
        scheduler_host,
        scheduler_port,
        vcores: options.concurrent_tasks.unwrap_or(defaults.vcores).max(1),
        work_dir: options.work_directory.as_ref().map(|path| path.display().to_string()),
        memory_pool_size: options.memory_limit,
        executor_heartbeat_interval_seconds: options.heartbeat_interval.as_secs().max(1),
        task_scheduling_policy: options.scheduling_policy,
        grpc_max_decoding_message_size: MAX_MESSAGE_BYTES,
        grpc_max_encoding_message_size: MAX_MESSAGE_BYTES,
        print_thread_info: false,
        override_function_registry: Some(Arc::new(function_registry())),
        override_config_producer: Some(Arc::new(session_config)),
        override_runtime_producer: Some(Arc::new(move |config| runtime_env(config, work_directory.clone()))),
        override_logical_codec: Some(Arc::new(TracegapLogicalCodec::default())),
        ..defaults
    };
    tracing::info!(address = %options.bind, scheduler = %options.scheduler, "Ballista executor with tracegap's functions starting");
    start_executor_process(Arc::new(config))
        .await
        .map_err(|source| ClusterError::Ballista { process: "executor", source })
}

fn split_address(address: &str) -> Result<(String, u16), ClusterError> {
    let invalid = |reason: &str| ClusterError::Address {
        flag: "--scheduler",
        value: address.to_owned(),
        reason: reason.to_owned(),
    };
    let (host, port) = address.rsplit_once(':').ok_or_else(|| invalid("no port"))?;
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    let port = port.parse().map_err(|_| invalid("the port is not a number from 0 to 65535"))?;
    Ok((host.trim_start_matches('[').trim_end_matches(']').to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_addresses_split_or_say_why_not() {
        assert_eq!(split_address("localhost:50050").unwrap(), ("localhost".to_owned(), 50050));
        assert_eq!(split_address("[::1]:50050").unwrap(), ("::1".to_owned(), 50050));
        for (address, reason) in [("localhost", "no port"), (":50050", "no host"), ("host:99999", "not a number")] {
            let error = split_address(address).unwrap_err().to_string();
            assert!(error.contains(reason) && error.contains("--scheduler"), "{address}: {error}");
        }
    }
}
