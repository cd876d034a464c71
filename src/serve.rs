//! `tracegap serve`: the OTLP target.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::sync::watch;
use tracegap_ingest::{GtsKeys, Receiver, RequestLimits, SpanStore, StoreConfig};

use tracegap_analyze::session::DEFAULT_SETTLE;
use tracegap_analyze::{AnalysisOptions, load_catalog};
use tracegap_web::{IngestCounters, IngestFigures, SnapshotCache, WebConfig, WebState, Window};

use crate::cli_values::{parse_duration, parse_size};

/// The data directory used when none is given.
pub const DEFAULT_DATA_DIRECTORY: &str = "tracegap-data";

/// Options of `tracegap serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Data directory (Parquet under spans/, write-ahead log under wal/).
    #[arg(long = "data", env = "TRACEGAP_DATA", default_value = DEFAULT_DATA_DIRECTORY)]
    pub data_directory: PathBuf,
    /// OTLP/gRPC listen address.
    #[arg(long, env = "TRACEGAP_GRPC_ADDRESS", default_value = "0.0.0.0:4317")]
    pub grpc_address: SocketAddr,
    /// OTLP/HTTP listen address.
    #[arg(long, env = "TRACEGAP_HTTP_ADDRESS", default_value = "0.0.0.0:4318")]
    pub http_address: SocketAddr,
    /// Largest request body as sent (HTTP body, gRPC message).
    #[arg(long, env = "TRACEGAP_MAX_REQUEST_SIZE", default_value = "20MiB", value_parser = parse_size)]
    pub max_request_size: usize,
    /// Largest request body after decompression.
    #[arg(long, env = "TRACEGAP_MAX_DECOMPRESSED_SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub max_decompressed_size: usize,
    /// Most bytes held for spans not yet in Parquet; past it, requests get 503 / UNAVAILABLE.
    #[arg(long, env = "TRACEGAP_QUEUE_SIZE", default_value = "512MiB", value_parser = parse_size)]
    pub queue_size: usize,
    /// Flush the in-memory spans to Parquet at this many bytes...
    #[arg(long, env = "TRACEGAP_FLUSH_SIZE", default_value = "128MiB", value_parser = parse_size)]
    pub flush_size: usize,
    /// ... or at this age of the oldest span [default: 15s, 5s with --demo].
    #[arg(long, env = "TRACEGAP_FLUSH_INTERVAL", value_parser = parse_duration)]
    pub flush_interval: Option<Duration>,
    /// Attribute key of the GTS global transaction id (span or resource).
    #[arg(long, env = "TRACEGAP_GTS_GLOBAL_KEY", default_value = "gts.global_tx_id")]
    pub gts_global_key: String,
    /// Attribute key of the GTS branch transaction id.
    #[arg(long, env = "TRACEGAP_GTS_BRANCH_KEY", default_value = "gts.branch_tx_id")]
    pub gts_branch_key: String,
    /// Attribute key of the GTS parent branch transaction id.
    #[arg(long, env = "TRACEGAP_GTS_PARENT_BRANCH_KEY", default_value = "gts.parent_branch_tx_id")]
    pub gts_parent_branch_key: String,
    #[command(flatten)]
    pub web: WebArgs,
}

/// Options of the dashboard served by `tracegap serve`.
#[derive(Args, Debug, Clone)]
pub struct WebArgs {
    /// Dashboard, JSON API and /metrics listen address (loopback unless told otherwise).
    #[arg(long, env = "TRACEGAP_WEB_ADDRESS", default_value = "127.0.0.1:8080")]
    pub web_address: SocketAddr,
    /// A bearer token required on every page, API call and scrape.
    #[arg(long, env = "TRACEGAP_WEB_TOKEN", hide_env_values = true)]
    pub web_token: Option<String>,
    /// Also send live synthetic traffic with every kind of break, for a populated dashboard.
    #[arg(long)]
    pub demo: bool,
    /// Traces per second of demo traffic (breaks split some of them in two).
    #[arg(long, default_value_t = 5)]
    pub demo_rate: usize,
    /// A trace whose newest span arrived less than this ago is pending [default: 2m, 20s with --demo].
    #[arg(long, value_parser = parse_duration)]
    pub settle: Option<Duration>,
    /// The window a page shows unless it picks one.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub window: Duration,
    /// The window /metrics reports.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub metrics_window: Duration,
    /// Recompute a window's analysis when it is older than this (in the background).
    #[arg(long, env = "TRACEGAP_WEB_REFRESH", default_value = "10s", value_parser = parse_duration)]
    pub refresh: Duration,
    /// Memory for one analysis; past it, DataFusion spills to disk.
    #[arg(long, env = "TRACEGAP_MEMORY_LIMIT", default_value = "2GiB", value_parser = parse_size)]
    pub memory_limit: usize,
    /// Longest time a SQL box query may run.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub sql_timeout: Duration,
    /// A directory of check files (*.sql) adding to or overriding the built-in checks.
    #[arg(long)]
    pub queries: Option<PathBuf>,
}

impl WebArgs {
    fn web_state(&self, data_directory: &std::path::Path, receiver: Arc<Receiver>) -> anyhow::Result<WebState> {
        let catalog = Arc::new(load_catalog(self.queries.as_deref())?);
        let settle = self.settle.unwrap_or(if self.demo { Duration::from_secs(20) } else { DEFAULT_SETTLE });
        let mut options = AnalysisOptions::batch(data_directory);
        options.settle = Some(settle);
        options.memory_limit = self.memory_limit;
        options.when_spans_do_not_fit = Some(crate::allocator::return_freed_memory_when_memory_bound);
        let config = WebConfig {
            default_window: Window::Last(self.window),
            metrics_window: Window::Last(self.metrics_window),
            token: self.web_token.clone().filter(|token| !token.is_empty()),
            sql_timeout: self.sql_timeout,
            ..WebConfig::default()
        };
        Ok(WebState::new(
            config,
            SnapshotCache::new(options, catalog, self.refresh),
            Some(Arc::new(ReceiverCounts(receiver))),
        ))
    }
}

/// The receiver's counters, as the dashboard reads them.
struct ReceiverCounts(Arc<Receiver>);

impl IngestCounters for ReceiverCounts {
    fn figures(&self) -> IngestFigures {
        let counters = self.0.counters();
        let read = |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
        IngestFigures {
            requests: read(&counters.requests),
            requests_invalid: read(&counters.requests_invalid),
            requests_refused: read(&counters.requests_refused),
            bytes: read(&counters.bytes),
            spans_accepted: read(&counters.spans_accepted),
            spans_rejected: read(&counters.spans_rejected),
        }
    }
}

impl ServeArgs {
    fn gts_keys(&self) -> GtsKeys {
        GtsKeys {
            global_tx_id: self.gts_global_key.clone(),
            branch_tx_id: self.gts_branch_key.clone(),
            parent_branch_tx_id: self.gts_parent_branch_key.clone(),
        }
    }
}

/// Runs the server until SIGTERM or Ctrl-C, then flushes and exits.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let gts_keys = Arc::new(args.gts_keys());
    let store_config = StoreConfig {
        data_directory: args.data_directory.clone(),
        flush_bytes: args.flush_size,
        flush_interval: args.flush_interval.unwrap_or(Duration::from_secs(if args.web.demo { 5 } else { 15 })),
        queue_bytes: args.queue_size,
        gts_keys: gts_keys.clone(),
    };
    let (store, recovery) = SpanStore::open(store_config)
        .with_context(|| format!("opening the data directory {}", args.data_directory.display()))?;
    if recovery.segments > 0 {
        tracing::info!(
            segments = recovery.segments,
            requests = recovery.requests,
            spans = recovery.spans,
            "recovered acknowledged spans from the write-ahead log into Parquet"
        );
    }
    for damaged in &recovery.damaged {
        tracing::warn!(%damaged, "damaged write-ahead log segment kept aside");
    }
    let store = Arc::new(store);
    let limits =
        RequestLimits { max_request_bytes: args.max_request_size, max_decompressed_bytes: args.max_decompressed_size };
    let receiver = Arc::new(Receiver::new(store.clone(), limits, gts_keys));
    let web = args.web.web_state(&args.data_directory, receiver.clone())?;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let served = runtime.block_on(serve(receiver, web, &args));
    runtime.shutdown_timeout(Duration::from_secs(5));
    tracing::info!("flushing spans to Parquet");
    store.close();
    served?;
    tracing::info!("stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

async fn serve(receiver: Arc<Receiver>, web: WebState, args: &ServeArgs) -> anyhow::Result<()> {
    let grpc_listener = tokio::net::TcpListener::bind(args.grpc_address)
        .await
        .with_context(|| format!("binding OTLP/gRPC to {}", args.grpc_address))?;
    let http_listener = tokio::net::TcpListener::bind(args.http_address)
        .await
        .with_context(|| format!("binding OTLP/HTTP to {}", args.http_address))?;
    let web_listener = tokio::net::TcpListener::bind(args.web.web_address)
        .await
        .with_context(|| format!("binding the dashboard to {}", args.web.web_address))?;
    let http_address = http_listener.local_addr()?;
    tracing::info!(
        grpc = %grpc_listener.local_addr()?,
        http = %http_address,
        data = %args.data_directory.display(),
        "tracegap serve: receiving OTLP traces"
    );
    tracing::info!(
        "dashboard on http://{}/{}",
        web_listener.local_addr()?,
        if web.config.token.is_some() { " (token required)" } else { "" }
    );
    let (stop, stopped) = watch::channel(false);
    let wait = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let grpc =
        tokio::spawn(tracegap_ingest::otlp_grpc::serve_grpc_on(receiver.clone(), grpc_listener, wait(stopped.clone())));
    let http = tokio::spawn(tracegap_ingest::otlp_http::serve_http_on(receiver, http_listener, wait(stopped.clone())));
    // The first page should not wait for the first analysis.
    for window in [web.config.default_window.clone(), web.config.metrics_window.clone()] {
        let snapshots = web.snapshots.clone();
        tokio::spawn(async move { snapshots.get(&window).await.map(|_| ()) });
    }
    let dashboard = tokio::spawn(tracegap_web::serve_web(web_listener, web, wait(stopped.clone())));
    let demo = args.web.demo.then(|| tokio::spawn(crate::demo::run_demo(http_address, args.web.demo_rate, stopped)));
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    let _ = stop.send(true);
    grpc.await?.context("OTLP/gRPC server")?;
    http.await?.context("OTLP/HTTP server")?;
    dashboard.await?.context("dashboard")?;
    if let Some(demo) = demo {
        demo.await?;
    }
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
