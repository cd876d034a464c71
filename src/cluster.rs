//! `tracegap cluster scheduler|executor`, and the session `check|report --cluster` analyse on.
//! The Ballista parts are built with `--features cluster`; without it these commands say so.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use tracegap_analyze::{Analysis, AnalysisOptions};

use crate::cli_values::{parse_duration, parse_size};

/// How a scheduler hands tasks to its executors.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedulingPolicy {
    /// Idle executors ask for tasks. The default: with Ballista 55, a job whose executor is lost
    /// can stall under push scheduling when nothing wakes the scheduler up again.
    Pull,
    /// The scheduler sends tasks as slots free up: lower latency.
    Push,
}

#[cfg(feature = "cluster")]
impl From<SchedulingPolicy> for tracegap_cluster::TaskSchedulingPolicy {
    fn from(policy: SchedulingPolicy) -> Self {
        match policy {
            SchedulingPolicy::Pull => Self::PullStaged,
            SchedulingPolicy::Push => Self::PushStaged,
        }
    }
}

/// `tracegap cluster …`.
#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Run a Ballista scheduler with tracegap's functions and codecs.
    Scheduler(SchedulerArgs),
    /// Run a Ballista executor with tracegap's functions and codecs.
    Executor(ExecutorArgs),
}

/// Options of `tracegap cluster scheduler`.
#[derive(Args, Debug)]
pub struct SchedulerArgs {
    /// Address to listen on for clients and executors.
    #[arg(long, env = "TRACEGAP_SCHEDULER_ADDRESS", default_value = "127.0.0.1:50050")]
    pub bind: SocketAddr,
    /// Host name executors and clients reach this scheduler by.
    #[arg(long, default_value = "localhost")]
    pub external_host: String,
    /// An executor silent this long is lost, and its tasks are run elsewhere.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub executor_timeout: Duration,
    /// How often lost executors are looked for.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub expire_interval: Duration,
    /// Tries of a task before its query fails.
    #[arg(long, default_value_t = 4)]
    pub task_max_failures: usize,
    /// How tasks reach executors; every executor must be started with the same.
    #[arg(long, value_enum, default_value_t = SchedulingPolicy::Pull)]
    pub scheduling_policy: SchedulingPolicy,
}

/// Options of `tracegap cluster executor`.
#[derive(Args, Debug)]
pub struct ExecutorArgs {
    /// The scheduler, HOST:PORT.
    #[arg(long, env = "TRACEGAP_SCHEDULER", default_value = "localhost:50050")]
    pub scheduler: String,
    /// Address of the executor's Arrow Flight service (shuffle and result data).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub bind: SocketAddr,
    /// Port of the executor's gRPC service, on the --bind host.
    #[arg(long, default_value_t = 50052)]
    pub grpc_port: u16,
    /// Host name the scheduler and other executors reach this executor by.
    #[arg(long)]
    pub external_host: Option<String>,
    /// Where shuffle files and spills go (default: a temporary directory).
    #[arg(long)]
    pub work_directory: Option<PathBuf>,
    /// Tasks run at once (default: the cores).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Memory its tasks share before they spill (e.g. 4GiB; default: Ballista's share of the host).
    #[arg(long, value_parser = parse_size)]
    pub memory_limit: Option<usize>,
    /// How often the executor tells the scheduler it is alive.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,
    /// How tasks reach it: its scheduler's `--scheduling-policy`.
    #[arg(long, value_enum, default_value_t = SchedulingPolicy::Pull)]
    pub scheduling_policy: SchedulingPolicy,
}

/// Opens the analysis locally, or on the Ballista cluster at `cluster` (`df://HOST:PORT`).
pub async fn open_analysis(options: AnalysisOptions, cluster: Option<&str>) -> anyhow::Result<Analysis> {
    match cluster {
        None => Ok(Analysis::open(options).await?),
        Some(url) => open_on_cluster(options, url).await,
    }
}

#[cfg(feature = "cluster")]
async fn open_on_cluster(options: AnalysisOptions, url: &str) -> anyhow::Result<Analysis> {
    let context = tracegap_cluster::connect(url).await?;
    Ok(Analysis::open_on(context, options).await?)
}

#[cfg(not(feature = "cluster"))]
async fn open_on_cluster(_: AnalysisOptions, url: &str) -> anyhow::Result<Analysis> {
    anyhow::bail!("--cluster {url}: this tracegap was built without cluster support; build it with --features cluster")
}

/// Runs `tracegap cluster …`.
#[cfg(feature = "cluster")]
pub fn run(command: ClusterCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Ballista's plans recurse deeply when they are decoded.
        .thread_stack_size(32 << 20)
        .build()?;
    match command {
        ClusterCommand::Scheduler(args) => {
            runtime.block_on(tracegap_cluster::run_scheduler(tracegap_cluster::SchedulerOptions {
                bind: args.bind,
                external_host: args.external_host,
                executor_timeout: args.executor_timeout,
                expire_interval: args.expire_interval,
                task_max_failures: args.task_max_failures,
                scheduling_policy: args.scheduling_policy.into(),
            }))?
        }
        ClusterCommand::Executor(args) => {
            runtime.block_on(tracegap_cluster::run_executor(tracegap_cluster::ExecutorOptions {
                scheduler: args.scheduler,
                bind: args.bind,
                grpc_port: args.grpc_port,
                external_host: args.external_host,
                work_directory: args.work_directory,
                concurrent_tasks: args.concurrency,
                memory_limit: args.memory_limit.map(|bytes| bytes as u64),
                heartbeat_interval: args.heartbeat_interval,
                scheduling_policy: args.scheduling_policy.into(),
            }))?
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `tracegap cluster …`.
#[cfg(not(feature = "cluster"))]
pub fn run(_: ClusterCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this tracegap was built without cluster support; build it with --features cluster")
}
