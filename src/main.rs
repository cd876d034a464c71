//! The `tracegap` command: wires the ingest, analysis and web crates together.

mod allocator;
mod bench_check;
mod bench_import;
mod bench_ingest;
mod bench_web;
mod check;
mod check_json;
mod check_table;
mod cli_values;
mod cluster;
mod demo;
mod error_message;
mod findings_writer;
mod generate;
mod import;
mod report;
mod report_output;
mod serve;

use clap::{Parser, Subcommand};

/// Finds broken distributed traces: an OTLP target that stores spans as Parquet, and checks
/// that say where trace propagation broke and why.
#[derive(Parser)]
#[command(name = "tracegap", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Receive OTLP traces (gRPC :4317, HTTP :4318) and store them as Parquet.
    Serve(serve::ServeArgs),
    /// Run the checks: findings and completeness, as a table or JSON; exit 1 under --fail-under.
    Check(check::CheckArgs),
    /// Write one self-contained HTML report (overview, findings, service map, broken traces).
    Report(report::ReportArgs),
    /// Import dump files (OTLP JSON/protobuf, Jaeger, Zipkin) into the data directory.
    Import(import::ImportArgs),
    /// Generate synthetic shop traffic with every kind of break, labelled (Parquet or a dump).
    Generate(generate::GenerateArgs),
    /// Run a read-only SQL query over `spans` (and `findings`).
    Sql(check::SqlArgs),
    /// Run a process of a Ballista cluster (`check|report --cluster` analyse on it).
    Cluster {
        #[command(subcommand)]
        process: cluster::ClusterCommand,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        bench: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Load a `tracegap serve` over OTLP/gRPC and OTLP/HTTP and compare with the in-process
    /// ceiling of decoding and writing the same requests.
    Ingest(bench_ingest::BenchIngestArgs),
    /// The check suite over a data directory, and the same SQL on the same Parquet with DuckDB.
    Check(bench_check::BenchCheckArgs),
    /// Import a dump and compare with the ceiling of only parsing it with serde_json.
    Import(bench_import::BenchImportArgs),
    /// Latency (p50, p99) of every dashboard page and API call over a data directory.
    Web(bench_web::BenchWebArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("TRACEGAP_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve(args) => {
            allocator::return_freed_memory_after(std::time::Duration::from_secs(10));
            serve::run(args)
        }
        Command::Check(args) => {
            allocator::keep_freed_memory();
            allocator::no_transparent_huge_pages();
            check::run_check(args)
        }
        Command::Sql(args) => check::run_sql(args),
        Command::Report(args) => {
            allocator::keep_freed_memory();
            allocator::no_transparent_huge_pages();
            report::run(args)
        }
        Command::Import(args) => {
            allocator::keep_freed_memory();
            import::run(args)
        }
        Command::Generate(args) => {
            allocator::keep_freed_memory();
            generate::run(args)
        }
        Command::Cluster { process } => cluster::run(process),
        Command::Bench { bench: BenchCommand::Ingest(args) } => {
            // The in-process ceiling runs with the server's allocator setting.
            allocator::return_freed_memory_after(std::time::Duration::from_secs(10));
            bench_ingest::run(args)
        }
        Command::Bench { bench: BenchCommand::Import(args) } => {
            allocator::keep_freed_memory();
            bench_import::run(args)
        }
        Command::Bench { bench: BenchCommand::Check(args) } => {
            allocator::keep_freed_memory();
            allocator::no_transparent_huge_pages();
            bench_check::run(args)
        }
        Command::Bench { bench: BenchCommand::Web(args) } => bench_web::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("tracegap: error: {}", error_message::error_message(&error));
            std::process::ExitCode::from(2)
        }
    }
}
