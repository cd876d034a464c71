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
    /// ... or at this age of the oldest span.
    #[arg(long, env = "TRACEGAP_FLUSH_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub flush_interval: Duration,
    /// Attribute key of the GTS global transaction id (span or resource).
    #[arg(long, env = "TRACEGAP_GTS_GLOBAL_KEY", default_value = "gts.global_tx_id")]
    pub gts_global_key: String,
    /// Attribute key of the GTS branch transaction id.
    #[arg(long, env = "TRACEGAP_GTS_BRANCH_KEY", default_value = "gts.branch_tx_id")]
    pub gts_branch_key: String,
    /// Attribute key of the GTS parent branch transaction id.
    #[arg(long, env = "TRACEGAP_GTS_PARENT_BRANCH_KEY", default_value = "gts.parent_branch_tx_id")]
    pub gts_parent_branch_key: String,
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
        flush_interval: args.flush_interval,
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

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let served = runtime.block_on(serve(receiver, &args));
    runtime.shutdown_timeout(Duration::from_secs(5));
    tracing::info!("flushing spans to Parquet");
    store.close();
    served?;
    tracing::info!("stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

async fn serve(receiver: Arc<Receiver>, args: &ServeArgs) -> anyhow::Result<()> {
    let grpc_listener = tokio::net::TcpListener::bind(args.grpc_address)
        .await
        .with_context(|| format!("binding OTLP/gRPC to {}", args.grpc_address))?;
    let http_listener = tokio::net::TcpListener::bind(args.http_address)
        .await
        .with_context(|| format!("binding OTLP/HTTP to {}", args.http_address))?;
    tracing::info!(
        grpc = %grpc_listener.local_addr()?,
        http = %http_listener.local_addr()?,
        data = %args.data_directory.display(),
        "tracegap serve: receiving OTLP traces"
    );
    let (stop, stopped) = watch::channel(false);
    let wait = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let grpc =
        tokio::spawn(tracegap_ingest::otlp_grpc::serve_grpc_on(receiver.clone(), grpc_listener, wait(stopped.clone())));
    let http = tokio::spawn(tracegap_ingest::otlp_http::serve_http_on(receiver, http_listener, wait(stopped)));
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    let _ = stop.send(true);
    grpc.await?.context("OTLP/gRPC server")?;
    http.await?.context("OTLP/HTTP server")?;
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
