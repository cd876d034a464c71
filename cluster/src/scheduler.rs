//! `tracegap cluster scheduler`: a Ballista scheduler that knows the checks' functions and
//! tracegap's plan codec.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::extension::{
    SessionConfigExt, ballista_aggregate_functions, ballista_scalar_functions, ballista_window_functions,
};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::prelude::SessionConfig;

use crate::ClusterError;
use crate::codec::TracegapLogicalCodec;
use crate::functions::helper_functions;
use crate::object_stores::{runtime_env, session_config};

/// Largest plan or result message between cluster processes. Plans carry the in-memory tables
/// of an analysis (findings, materialised views), so Ballista's 16 MiB is raised.
pub const MAX_MESSAGE_BYTES: u32 = 256 << 20;

/// How a scheduler listens and how quickly it gives up on a silent executor.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Address to listen on (gRPC of clients and executors).
    pub bind: SocketAddr,
    /// Host name executors and clients use to reach it.
    pub external_host: String,
    /// An executor silent this long is lost: its tasks run elsewhere.
    pub executor_timeout: Duration,
    /// How often lost executors are looked for.
    pub expire_interval: Duration,
    /// How many times a task is tried before its job fails.
    pub task_max_failures: usize,
    /// Whether executors ask for tasks (pull) or the scheduler sends them (push); executors
    /// must use the same.
    pub scheduling_policy: TaskSchedulingPolicy,
}

/// Runs a scheduler until the process ends.
pub async fn run_scheduler(options: SchedulerOptions) -> Result<(), ClusterError> {
    let failed = |source| ClusterError::Ballista { process: "scheduler", source };
    let config = SchedulerConfig {
        bind_host: options.bind.ip().to_string(),
        bind_port: options.bind.port(),
        external_host: options.external_host.clone(),
        executor_timeout_seconds: options.executor_timeout.as_secs().max(1),
        expire_dead_executor_interval_seconds: options.expire_interval.as_secs().max(1),
        no_executors_grace_period_seconds: options.executor_timeout.as_secs().max(1),
        task_max_failures: options.task_max_failures,
        scheduling_policy: options.scheduling_policy,
        grpc_server_max_decoding_message_size: MAX_MESSAGE_BYTES,
        grpc_server_max_encoding_message_size: MAX_MESSAGE_BYTES,
        grpc_client_max_message_size: MAX_MESSAGE_BYTES,
        override_logical_codec: Some(Arc::new(TracegapLogicalCodec::default())),
        ..SchedulerConfig::default()
    }
    .with_override_config_producer(Arc::new(session_config))
    .with_override_session_builder(Arc::new(session_state));
    let cluster = BallistaCluster::new_from_config(&config).await.map_err(failed)?;
    tracing::info!(address = %options.bind, "Ballista scheduler with tracegap's functions listening");
    start_server(cluster, options.bind, Arc::new(config)).await.map_err(failed)
}

/// The scheduler's session for a job: the client's settings, the object stores, and every
/// function a check may call (the logical plan it receives names them).
pub fn session_state(mut config: SessionConfig) -> datafusion::common::Result<SessionState> {
    // Whatever the client sent: see `session_config`.
    config.options_mut().optimizer.prefer_existing_union = true;
    let config = config.with_ballista_adaptive_query_planner(false);
    let runtime = runtime_env(&config, None)?;
    let mut scalar_functions = ballista_scalar_functions();
    scalar_functions.extend(helper_functions());
    Ok(SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        // The client sends a plan it already analysed and optimised: only physical planning
        // happens here.
        .with_analyzer_rules(vec![])
        .with_optimizer_rules(vec![])
        .with_scalar_functions(scalar_functions)
        .with_aggregate_functions(ballista_aggregate_functions())
        .with_window_functions(ballista_window_functions())
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheduler_session_knows_the_helper_functions() {
        let state = session_state(session_config()).unwrap();
        for name in ["hex_id", "id_problem", "b3_part", "traceparent_part"] {
            assert!(state.scalar_functions().contains_key(name), "{name} missing");
        }
    }

    #[test]
    fn the_scheduler_keeps_unions_and_the_static_planner_whatever_the_client_asks() {
        let mut client = session_config();
        client.options_mut().optimizer.prefer_existing_union = false;
        let client = client.with_ballista_adaptive_query_planner(true);
        let state = session_state(client).unwrap();
        assert!(state.config().options().optimizer.prefer_existing_union);
        assert!(!state.config().ballista_adaptive_query_planner_enabled());
    }
}
