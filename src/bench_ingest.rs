//! `tracegap bench ingest`: an OTLP load generator against a real `tracegap serve` (a child
//! process, durability on), and in the same run the in-process ceiling: decoding the same
//! requests and writing them to Parquet with no network.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{BufMut, Bytes};
use clap::Args;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status as SpanStatus, span};
use prost::Message;
use rayon::prelude::*;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tracegap_ingest::Source;
use tracegap_ingest::parquet_files::write_partitioned;
use tracegap_ingest::request_decoding::{BodyEncoding, decode_request};
use tracegap_ingest::span_batch::BatchContext;

use crate::cli_values::parse_duration;
use crate::report_output::report_line;

/// Options of `tracegap bench ingest`.
#[derive(Args, Debug, Clone)]
pub struct BenchIngestArgs {
    /// Load duration per protocol.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Concurrent connections per protocol.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Spans per request.
    #[arg(long, default_value_t = 500)]
    pub spans_per_request: usize,
    /// Protocols to drive: grpc, http, or both.
    #[arg(long, default_value = "both")]
    pub protocol: String,
    /// Directory for the server's data (a temporary one when absent).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Clone, serde::Serialize)]
struct LoadFigures {
    protocol: String,
    requests: u64,
    failed_requests: u64,
    spans: u64,
    seconds: f64,
    spans_per_second: f64,
    megabytes_per_second: f64,
    p50_latency_ms: f64,
    p99_latency_ms: f64,
    /// Cores the server kept busy on average (user and system time over wall time).
    server_cores: f64,
    /// Of which in the kernel (system time).
    server_system_cores: f64,
    /// Cores the load generator (this process) kept busy.
    load_generator_cores: f64,
    /// Spans acknowledged (durable in the write-ahead log) but not yet in Parquet when the load
    /// stopped: what the bounded queue absorbed beyond the rate of the Parquet writer.
    backlog_spans: u64,
    /// What the server answered to the first refused request (back-pressure, normally).
    first_failure: Option<String>,
}

/// Runs the benchmark and prints its figures.
pub fn run(args: BenchIngestArgs) -> anyhow::Result<ExitCode> {
    let requests = Arc::new(realistic_requests(32, args.spans_per_request));
    let request_bytes: usize = requests.iter().map(Bytes::len).sum::<usize>() / requests.len();
    report_line!(
        "tracegap bench ingest: {} spans/request (~{} attributes/span, {} KiB/request), {} connections, {:?} per protocol",
        args.spans_per_request,
        ATTRIBUTES_PER_SPAN,
        request_bytes / 1024,
        args.connections,
        args.duration
    );
    let temporary = tempfile::tempdir().context("creating a temporary data directory")?;
    let data = args.data.clone().unwrap_or_else(|| temporary.path().join("server"));
    let grpc_address = free_address()?;
    let http_address = free_address()?;
    let mut server = ServerProcess::start(&data, grpc_address, http_address)?;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut results = Vec::new();
    let protocols: Vec<&str> = match args.protocol.as_str() {
        "both" => vec!["grpc", "http"],
        "grpc" => vec!["grpc"],
        "http" => vec!["http"],
        other => bail!("--protocol must be grpc, http or both, not {other:?}"),
    };
    let mut acknowledged = 0;
    for protocol in protocols {
        let server_before = cpu_seconds_of(&server.child.id().to_string());
        let own_before = cpu_seconds_of("self");
        let mut figures = runtime.block_on(drive(protocol, grpc_address, http_address, requests.clone(), &args))?;
        let busy = |before: Option<(f64, f64)>, after: Option<(f64, f64)>| match (before, after) {
            (Some(before), Some(after)) => ((after.0 + after.1 - before.0 - before.1), after.1 - before.1),
            _ => (f64::NAN, f64::NAN),
        };
        let (server_busy, server_system) = busy(server_before, cpu_seconds_of(&server.child.id().to_string()));
        let (own_busy, _) = busy(own_before, cpu_seconds_of("self"));
        figures.server_cores = server_busy / figures.seconds;
        figures.server_system_cores = server_system / figures.seconds;
        figures.load_generator_cores = own_busy / figures.seconds;
        acknowledged += figures.spans;
        let in_parquet = tracegap_ingest::parquet_files::count_rows(&data.join("spans"))? as u64;
        figures.backlog_spans = acknowledged.saturating_sub(in_parquet);
        report_line!(
            "  {:<5} {:>10.0} spans/s  {:>7.1} MB/s  p50 {:>6.1} ms  p99 {:>6.1} ms  ({} requests, {} failed)",
            figures.protocol,
            figures.spans_per_second,
            figures.megabytes_per_second,
            figures.p50_latency_ms,
            figures.p99_latency_ms,
            figures.requests,
            figures.failed_requests
        );
        report_line!(
            "        cores busy: server {:.2} (of which kernel {:.2}), load generator {:.2}",
            figures.server_cores,
            figures.server_system_cores,
            figures.load_generator_cores
        );
        if let Some(failure) = &figures.first_failure {
            report_line!("        first refusal: {failure}");
        }
        report_line!(
            "        not yet in Parquet when the load stopped: {} spans ({:.1} s of this load; at most a \
             flush of 128 MiB or 15 s is normal)",
            figures.backlog_spans,
            figures.backlog_spans as f64 / figures.spans_per_second.max(1.0)
        );
        results.push(figures);
    }
    let peak_rss = server.peak_rss_bytes();
    server.stop()?;
    let stored = tracegap_ingest::parquet_files::count_rows(&data.join("spans"))? as u64;
    report_line!(
        "  server peak RSS {:.0} MiB; spans acknowledged {acknowledged}, in Parquet after shutdown {stored}",
        peak_rss as f64 / 1048576.0
    );
    if stored < acknowledged {
        bail!("{acknowledged} spans were acknowledged but only {stored} are in Parquet");
    }

    let ceiling_spans = results.iter().map(|r| r.spans).max().unwrap_or(1_000_000).max(200_000);
    let ceiling =
        in_process_ceiling(&requests, args.spans_per_request, ceiling_spans, &temporary.path().join("ceiling"))?;
    report_line!(
        "  in-process ceiling (decode + build + Parquet, no network, no log): {:.0} spans/s \
         ({} spans: decode and build {:.2} s on all cores, Parquet {:.2} s; {:.0} bytes of Arrow memory a span)",
        ceiling.spans_per_second,
        ceiling.spans,
        ceiling.decode_and_build_seconds,
        ceiling.parquet_seconds,
        ceiling.arrow_bytes_per_span
    );
    for figures in &results {
        let share = 100.0 * figures.spans_per_second / ceiling.spans_per_second;
        report_line!("  {} reaches {share:.0}% of the ceiling", figures.protocol);
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "spans_per_request": args.spans_per_request,
            "connections": args.connections,
            "server_peak_rss_bytes": peak_rss,
            "ceiling": ceiling,
            "protocols": results,
        });
        std::fs::write(path, format!("{json:#}\n")).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

const ATTRIBUTES_PER_SPAN: usize = 10;

fn string_attribute(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

fn int_attribute(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(value)) }),
        ..Default::default()
    }
}

/// Deterministic, realistic requests: traces of an HTTP entry span with client, database and
/// internal children, ten attributes per span, an occasional event, across a few services.
pub fn realistic_requests(count: usize, spans_per_request: usize) -> Vec<Bytes> {
    let services = ["frontend", "checkout", "cart", "payment", "shipping", "inventory"];
    let routes = ["/api/orders/{id}", "/api/cart", "/api/checkout", "/api/products/{id}", "/health"];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
    (0..count)
        .map(|request_index| {
            let service = services[request_index % services.len()];
            let mut spans = Vec::with_capacity(spans_per_request);
            let mut trace_id = Vec::new();
            let mut root_id = Vec::new();
            for index in 0..spans_per_request {
                if index % 8 == 0 {
                    trace_id = next().to_be_bytes().iter().chain(next().to_be_bytes().iter()).copied().collect();
                    root_id = next().to_be_bytes().to_vec();
                }
                let is_root = index % 8 == 0;
                let span_id = if is_root { root_id.clone() } else { next().to_be_bytes().to_vec() };
                let start = now - 60_000_000_000 + (next() % 50_000_000_000);
                let duration = 100_000 + next() % 200_000_000;
                let route = routes[(next() % routes.len() as u64) as usize];
                let kind = if is_root {
                    span::SpanKind::Server
                } else if index % 3 == 0 {
                    span::SpanKind::Client
                } else {
                    span::SpanKind::Internal
                };
                let mut attributes = vec![
                    string_attribute("http.request.method", "GET"),
                    string_attribute("http.route", route),
                    int_attribute("http.response.status_code", if next() % 50 == 0 { 500 } else { 200 }),
                    string_attribute(
                        "server.address",
                        format!("{}.svc.cluster.local", services[(next() % 6) as usize]),
                    ),
                    int_attribute("server.port", 8080),
                    string_attribute("url.scheme", "http"),
                    string_attribute("network.protocol.version", "1.1"),
                    string_attribute("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) tracegap-bench"),
                    string_attribute("peer.service", services[(next() % 6) as usize]),
                    int_attribute("thread.id", (next() % 64) as i64),
                ];
                attributes.truncate(ATTRIBUTES_PER_SPAN);
                let events = if index % 10 == 0 {
                    vec![span::Event {
                        time_unix_nano: start + duration / 2,
                        name: "cache.miss".into(),
                        attributes: vec![string_attribute("cache.key", format!("order:{}", next() % 100_000))],
                        dropped_attributes_count: 0,
                    }]
                } else {
                    Vec::new()
                };
                spans.push(Span {
                    trace_id: trace_id.clone(),
                    span_id,
                    parent_span_id: if is_root { Vec::new() } else { root_id.clone() },
                    name: format!("GET {route}"),
                    kind: kind as i32,
                    start_time_unix_nano: start,
                    end_time_unix_nano: start + duration,
                    attributes,
                    events,
                    status: Some(SpanStatus { code: 0, message: String::new() }),
                    flags: 0x101,
                    ..Default::default()
                });
            }
            let request = ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![
                            string_attribute("service.name", service),
                            string_attribute("service.instance.id", format!("{service}-{}", request_index % 3)),
                            string_attribute("host.name", format!("node-{}", request_index % 4)),
                            string_attribute("telemetry.sdk.language", "go"),
                        ],
                        ..Default::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "net/http".into(),
                            version: "0.60.0".into(),
                            ..Default::default()
                        }),
                        spans,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }],
            };
            Bytes::from(request.encode_to_vec())
        })
        .collect()
}

async fn drive(
    protocol: &str,
    grpc_address: SocketAddr,
    http_address: SocketAddr,
    requests: Arc<Vec<Bytes>>,
    args: &BenchIngestArgs,
) -> anyhow::Result<LoadFigures> {
    let deadline = Instant::now() + args.duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for connection in 0..args.connections {
        let requests = requests.clone();
        let task = match protocol {
            "grpc" => tokio::spawn(grpc_connection(grpc_address, requests, connection, deadline)),
            _ => tokio::spawn(http_connection(http_address, requests, connection, deadline)),
        };
        tasks.push(task);
    }
    let mut latencies = Vec::new();
    let (mut sent, mut failed, mut bytes) = (0u64, 0u64, 0u64);
    let mut first_failure = None;
    for task in tasks {
        let outcome = task.await??;
        latencies.extend(outcome.latencies);
        sent += outcome.succeeded;
        failed += outcome.failed;
        bytes += outcome.bytes;
        first_failure = first_failure.or(outcome.first_failure);
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        if latencies.is_empty() {
            return 0.0;
        }
        let index = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index].as_secs_f64() * 1000.0
    };
    let spans = sent * args.spans_per_request as u64;
    Ok(LoadFigures {
        protocol: protocol.into(),
        requests: sent,
        failed_requests: failed,
        spans,
        seconds,
        spans_per_second: spans as f64 / seconds,
        megabytes_per_second: bytes as f64 / seconds / 1e6,
        p50_latency_ms: percentile(0.50),
        p99_latency_ms: percentile(0.99),
        // Filled in by the caller, which sees the processes.
        server_cores: 0.0,
        server_system_cores: 0.0,
        load_generator_cores: 0.0,
        backlog_spans: 0,
        first_failure,
    })
}

#[derive(Default)]
struct ConnectionOutcome {
    latencies: Vec<Duration>,
    succeeded: u64,
    failed: u64,
    bytes: u64,
    first_failure: Option<String>,
}

async fn grpc_connection(
    address: SocketAddr,
    requests: Arc<Vec<Bytes>>,
    offset: usize,
    deadline: Instant,
) -> anyhow::Result<ConnectionOutcome> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?.connect().await?;
    let mut client = tonic::client::Grpc::new(channel);
    let path = http::uri::PathAndQuery::from_static(tracegap_ingest::otlp_grpc::EXPORT_PATH);
    let mut outcome = ConnectionOutcome::default();
    let mut index = offset;
    while Instant::now() < deadline {
        let body = requests[index % requests.len()].clone();
        index += 1;
        let started = Instant::now();
        client.ready().await?;
        let length = body.len() as u64;
        match client
            .unary::<Bytes, ExportTraceServiceResponse, _>(tonic::Request::new(body), path.clone(), PrebuiltCodec)
            .await
        {
            Ok(_) => {
                outcome.succeeded += 1;
                outcome.bytes += length;
                outcome.latencies.push(started.elapsed());
            }
            Err(status) => {
                outcome.failed += 1;
                outcome.first_failure.get_or_insert_with(|| format!("{:?}: {}", status.code(), status.message()));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    Ok(outcome)
}

async fn http_connection(
    address: SocketAddr,
    requests: Arc<Vec<Bytes>>,
    offset: usize,
    deadline: Instant,
) -> anyhow::Result<ConnectionOutcome> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1).build_http();
    let uri: http::Uri = format!("http://{address}/v1/traces").parse()?;
    let mut outcome = ConnectionOutcome::default();
    let mut index = offset;
    while Instant::now() < deadline {
        let body = requests[index % requests.len()].clone();
        index += 1;
        let length = body.len() as u64;
        let request = http::Request::post(uri.clone())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(body))?;
        let started = Instant::now();
        let response = client.request(request).await?;
        let status = response.status();
        let _ = response.into_body().collect().await?;
        if status.is_success() {
            outcome.succeeded += 1;
            outcome.bytes += length;
            outcome.latencies.push(started.elapsed());
        } else {
            outcome.failed += 1;
            outcome.first_failure.get_or_insert_with(|| format!("HTTP {status}"));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(outcome)
}

/// A client codec sending pre-encoded requests, so the load generator spends no CPU encoding.
#[derive(Clone, Copy)]
struct PrebuiltCodec;

impl Codec for PrebuiltCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = PrebuiltCodec;
    type Decoder = PrebuiltCodec;
    fn encoder(&mut self) -> Self {
        *self
    }
    fn decoder(&mut self) -> Self {
        *self
    }
}

impl Encoder for PrebuiltCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, buffer: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buffer.put(item);
        Ok(())
    }
}

impl Decoder for PrebuiltCodec {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;
    fn decode(&mut self, buffer: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, tonic::Status> {
        ExportTraceServiceResponse::decode(buffer).map(Some).map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

/// Time of each stage of the in-process path, and its overall rate.
#[derive(Debug, Clone, serde::Serialize)]
struct Ceiling {
    spans_per_second: f64,
    decode_and_build_seconds: f64,
    parquet_seconds: f64,
    spans: usize,
    /// Arrow memory of a decoded request, per span: what a span holds of the queue until it is
    /// in Parquet.
    arrow_bytes_per_span: f64,
}

/// Decoding, building and writing Parquet in a loop over the same requests, on all cores.
fn in_process_ceiling(
    requests: &[Bytes],
    spans_per_request: usize,
    spans: u64,
    directory: &Path,
) -> anyhow::Result<Ceiling> {
    let context = BatchContext { receive_time_nano: 0, source: Source::Grpc, gts_keys: Arc::new(Default::default()) };
    let requests_needed = (spans as usize).div_ceil(spans_per_request);
    let chunk = (128 << 20) / requests[0].len().max(1) / 2;
    let started = Instant::now();
    let (mut decoding, mut writing) = (Duration::ZERO, Duration::ZERO);
    let mut done = 0;
    let mut file = 0;
    let mut arrow_bytes = 0;
    while done < requests_needed {
        let count = chunk.min(requests_needed - done);
        let stage = Instant::now();
        let batches = (done..done + count)
            .into_par_iter()
            .map(|index| {
                let decoded =
                    decode_request(requests[index % requests.len()].clone(), BodyEncoding::Protobuf, &context)?;
                Ok(decoded.spans.batch)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let batches: Vec<_> = batches.into_iter().flatten().collect();
        decoding += stage.elapsed();
        arrow_bytes += batches.iter().map(|batch| batch.get_array_memory_size()).sum::<usize>();
        let stage = Instant::now();
        write_partitioned(&batches, directory, &format!("ceiling-{file}"), false)?;
        writing += stage.elapsed();
        file += 1;
        done += count;
    }
    Ok(Ceiling {
        spans_per_second: (done * spans_per_request) as f64 / started.elapsed().as_secs_f64(),
        decode_and_build_seconds: decoding.as_secs_f64(),
        parquet_seconds: writing.as_secs_f64(),
        spans: done * spans_per_request,
        arrow_bytes_per_span: arrow_bytes as f64 / (done * spans_per_request).max(1) as f64,
    })
}

fn free_address() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

struct ServerProcess {
    child: Child,
}

impl ServerProcess {
    fn start(data: &Path, grpc: SocketAddr, http: SocketAddr) -> anyhow::Result<ServerProcess> {
        let executable = std::env::current_exe()?;
        let child = Command::new(executable)
            .arg("serve")
            .arg("--data")
            .arg(data)
            .arg("--grpc-address")
            .arg(grpc.to_string())
            .arg("--http-address")
            .arg(http.to_string())
            .arg("--web-address")
            .arg("127.0.0.1:0")
            .env("TRACEGAP_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("starting tracegap serve")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(http).is_err() || std::net::TcpStream::connect(grpc).is_err() {
            if Instant::now() > deadline {
                bail!("tracegap serve did not start listening within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(ServerProcess { child })
    }

    /// Peak resident set size (VmHWM) of the server, in bytes.
    fn peak_rss_bytes(&self) -> u64 {
        peak_rss_of(self.child.id()).unwrap_or(0)
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let status = self.child.wait()?;
        if !status.success() {
            bail!("tracegap serve exited with {status}");
        }
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User and system CPU seconds of a process (`self` or a pid), from `/proc/<pid>/stat`.
fn cpu_seconds_of(pid: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces, and ends at the last ')'): state is
    // field 3, utime and stime fields 14 and 15, in clock ticks (100 a second on Linux).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index - 3)?.parse::<f64>().ok();
    Some((ticks(14)? / 100.0, ticks(15)? / 100.0))
}

/// Peak resident set size of a process, from `/proc/<pid>/status`.
pub fn peak_rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
