//! `tracegap bench web --data DIR`: latency of every dashboard page and API call over a data
//! directory (1M spans is the target), served as `tracegap serve` serves them, with p50/p99/max
//! per route. In the same run, the baseline: the static script asset, the floor of the HTTP stack,
//! so each route's figure is also a ratio. The first analysis (a cold snapshot) is timed apart.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tracegap_analyze::{AnalysisOptions, load_catalog};
use tracegap_web::{SnapshotCache, WebConfig, WebState, Window};

use crate::cli_values::parse_size;
use crate::report_output::report_line;

/// Options of `tracegap bench web`.
#[derive(Args, Debug, Clone)]
pub struct BenchWebArgs {
    /// Data directory (`tracegap generate --traces 125000 --data DIR` makes about 1M spans).
    #[arg(long = "data")]
    pub data_directory: PathBuf,
    /// Requests per route.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Memory for the analysis.
    #[arg(long, default_value = "2GiB", value_parser = parse_size)]
    pub memory_limit: usize,
}

/// The budget of the issue: every page and API call under 200 ms at p99.
const BUDGET: Duration = Duration::from_millis(200);

/// Runs `tracegap bench web`.
pub fn run(args: BenchWebArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args))
}

struct Route {
    name: &'static str,
    method: http::Method,
    paths: Vec<String>,
    body: Option<&'static str>,
}

impl Route {
    fn get(name: &'static str, paths: Vec<String>) -> Route {
        Route { name, method: http::Method::GET, paths, body: None }
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn bench(args: BenchWebArgs) -> anyhow::Result<ExitCode> {
    let catalog = Arc::new(load_catalog(None)?);
    let mut options = AnalysisOptions::batch(&args.data_directory);
    options.memory_limit = args.memory_limit;
    let window = Window::Range { since: None, until: None };
    let config = WebConfig { default_window: window.clone(), metrics_window: window.clone(), ..WebConfig::default() };
    // A refresh interval longer than the run: every request is served from the snapshot, as
    // pages are between two refreshes.
    let state = WebState::new(config, SnapshotCache::new(options, catalog, Duration::from_secs(24 * 3600)), None);
    let started = Instant::now();
    let computed = state.snapshots.get(&window).await.context("analysing the data directory")?;
    let cold = started.elapsed();
    let snapshot = &computed.snapshot;
    eprintln!(
        "cold snapshot: {} spans, {} judged traces, {} findings, analysed in {:.1} s",
        snapshot.window_spans,
        snapshot.completeness.judged_traces,
        snapshot.findings.len(),
        cold.as_secs_f64()
    );
    let traces: Vec<String> =
        snapshot.findings.iter().filter_map(|f| f.trace_id.as_deref().map(str::to_owned)).take(args.requests).collect();
    let edge = snapshot.completeness.edges.iter().max_by_key(|edge| edge.dropped);
    let pages = snapshot.findings.len().div_ceil(50).max(1);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address: SocketAddr = listener.local_addr()?;
    tokio::spawn(tracegap_web::serve_web(listener, state, std::future::pending()));

    let routes = vec![
        Route::get("/assets/app.js (baseline)", vec!["/assets/app.js".into()]),
        Route::get("/ (page shell)", vec!["/".into()]),
        Route::get("/api/overview", vec!["/api/overview".into()]),
        Route::get(
            "/api/findings (pages)",
            (1..=pages.min(args.requests)).map(|page| format!("/api/findings?page={page}")).collect(),
        ),
        Route::get("/api/findings?check=…", vec!["/api/findings?check=orphaned_span&service=checkout".into()]),
        Route::get("/api/traces/{id}", traces.iter().map(|trace| format!("/api/traces/{trace}")).collect()),
        Route::get("/api/service-map", vec!["/api/service-map".into()]),
        Route::get(
            "/api/edges",
            vec![edge.map(|e| format!("/api/edges?caller={}&callee={}", e.caller, e.callee)).unwrap_or_default()],
        ),
        Route::get("/api/checks", vec!["/api/checks".into()]),
        Route::get("/metrics", vec!["/metrics".into()]),
        Route {
            name: "/api/sql (findings by check)",
            method: http::Method::POST,
            paths: vec!["/api/sql".into()],
            body: Some(r#"{"query": "SELECT check, count(*) FROM findings GROUP BY check"}"#),
        },
    ];
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    report_line!(
        "{:<30} {:>9} {:>9} {:>9} {:>12} {:>8}",
        "route",
        "p50 ms",
        "p99 ms",
        "max ms",
        "p99/baseline",
        "budget"
    );
    let mut baseline = None;
    let mut over_budget = 0;
    for route in routes {
        if route.paths.is_empty() || route.paths[0].is_empty() {
            continue;
        }
        let mut latencies = Vec::with_capacity(args.requests);
        for index in 0..args.requests {
            let path = &route.paths[index % route.paths.len()];
            let request = http::Request::builder()
                .method(route.method.clone())
                .uri(format!("http://{address}{path}"))
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from_static(route.body.unwrap_or("").as_bytes())))?;
            let sent = Instant::now();
            let response = client.request(request).await?;
            let status = response.status();
            let _ = response.into_body().collect().await?;
            latencies.push(sent.elapsed());
            if !status.is_success() {
                anyhow::bail!("{path} answered {status}");
            }
        }
        latencies.sort();
        let (p50, p99, max) =
            (percentile(&latencies, 0.5), percentile(&latencies, 0.99), latencies[latencies.len() - 1]);
        let floor = *baseline.get_or_insert(p99);
        let within = p99 <= BUDGET;
        over_budget += usize::from(!within);
        report_line!(
            "{:<30} {:>9.2} {:>9.2} {:>9.2} {:>11.1}× {:>8}",
            route.name,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3,
            p99.as_secs_f64() / floor.as_secs_f64().max(1e-9),
            if within { "ok" } else { "OVER" }
        );
    }
    report_line!(
        "cold snapshot (first analysis of the window, then refreshed in the background): {:.1} s",
        cold.as_secs_f64()
    );
    Ok(if over_budget == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
