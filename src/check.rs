//! `tracegap check` and `tracegap sql`: the checks over a data directory, for people and CI.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use tracegap_analyze::completeness::{BrokenTraces, Completeness, completeness_of};
use tracegap_analyze::findings::{register_findings, register_views, run_check as run_one_check, run_checks};
use tracegap_analyze::read_only_sql::query_read_only;
use tracegap_analyze::session::now_nano;
use tracegap_analyze::{Analysis, AnalysisOptions, Catalog, keep_spans_in_memory, load_catalog};

use tracegap_ingest::dump_files::DumpFormat;

use crate::check_json::json_report;
use crate::check_table::table_report;
use crate::cli_values::{parse_duration, parse_size, parse_time};
use crate::cluster::open_analysis;
use crate::findings_writer::FindingsWriter;
use crate::import::{DumpArgs, expand_inputs, import_files, print_summary};
use crate::report_output::report_line;
use crate::serve::DEFAULT_DATA_DIRECTORY;

/// Output format of `tracegap check`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// A readable table.
    Table,
    /// JSON: a `summary` object and a `findings` array.
    Json,
}

/// What to analyse.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// Data directory written by `tracegap serve`.
    #[arg(long = "data", env = "TRACEGAP_DATA", default_value = DEFAULT_DATA_DIRECTORY)]
    pub data_directory: PathBuf,
    /// Only spans that started at or after this time (RFC 3339, e.g. 2026-11-25T14:00:00Z).
    #[arg(long, value_parser = parse_time, conflicts_with = "last")]
    pub since: Option<i64>,
    /// Only spans that started before this time (RFC 3339).
    #[arg(long, value_parser = parse_time, conflicts_with = "last")]
    pub until: Option<i64>,
    /// Only spans that started in this last period (e.g. 1h).
    #[arg(long, value_parser = parse_duration)]
    pub last: Option<Duration>,
    /// A trace whose newest span arrived less than this ago is pending, not judged.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub settle: Duration,
    /// Memory for the analysis; past it, DataFusion spills to disk.
    #[arg(long, env = "TRACEGAP_MEMORY_LIMIT", default_value = "2GiB", value_parser = parse_size)]
    pub memory_limit: usize,
    /// How far a synchronous child may outlast its parent before premature_end reports it.
    #[arg(long, default_value = "1ms", value_parser = parse_duration)]
    pub premature_end_tolerance: Duration,
}

impl SourceArgs {
    /// The analysis options these flags ask for.
    pub fn options(&self) -> AnalysisOptions {
        let now = now_nano();
        let since = self.last.map(|last| now - last.as_nanos() as i64).or(self.since);
        AnalysisOptions {
            data_directory: self.data_directory.clone(),
            since_nano: since,
            until_nano: self.until,
            settle: (!self.settle.is_zero()).then_some(self.settle),
            now_nano: now,
            memory_limit: self.memory_limit,
            premature_end_tolerance: self.premature_end_tolerance,
            when_spans_do_not_fit: Some(crate::allocator::return_freed_memory_when_memory_bound),
        }
    }
}

/// What `tracegap check` and `tracegap report` analyse: dumps, or a data directory and window,
/// with which checks.
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// Dump files, directories or globs to analyse directly (through a temporary store) instead
    /// of the data directory; every trace in them is judged.
    pub files: Vec<String>,
    /// The format of the dump files (otlp-json, otlp-proto, jaeger, zipkin); detected from
    /// content when not given.
    #[arg(long)]
    pub input_format: Option<DumpFormat>,
    #[command(flatten)]
    pub dump: DumpArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    /// A directory of check files (*.sql) adding to or overriding the built-in checks.
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// Run the checks on the Ballista cluster whose scheduler is at df://HOST:PORT. Every
    /// executor must read --data at the same path (a shared filesystem), or use an s3:// URL.
    #[arg(long, env = "TRACEGAP_CLUSTER")]
    pub cluster: Option<String>,
}

/// Options of `tracegap check`.
#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Exit 1 when completeness is under this ratio (a CI gate), e.g. 0.99.
    #[arg(long)]
    pub fail_under: Option<f64>,
}

/// Options of `tracegap sql`.
#[derive(Args, Debug, Clone)]
pub struct SqlArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Most rows printed.
    #[arg(long, default_value_t = 1000)]
    pub max_rows: usize,
    /// The query, over `spans` (and `findings`, `all_spans`, `pending_traces`).
    pub query: String,
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")
}

/// The analysis options for a data directory, or for dump files imported into a temporary store
/// (kept alive by the returned directory; every trace in it is judged). Also says whether some
/// input was skipped and that matters (no `--skip-bad`).
pub fn prepare_source(input: &InputArgs) -> anyhow::Result<(AnalysisOptions, Option<tempfile::TempDir>, bool)> {
    let (files, dump) = (&input.files, &input.dump);
    let mut options = input.source.options();
    if files.is_empty() {
        return Ok((options, None, false));
    }
    let files = expand_inputs(files)?;
    let store = tempfile::Builder::new().prefix("tracegap-check-").tempdir().context("creating a temporary store")?;
    let imported = import_files(&files, store.path(), input.input_format, dump)?;
    if imported.had_problems() || dump.quiet {
        print_summary(&imported, &files);
    }
    options.data_directory = store.path().to_owned();
    options.settle = None;
    Ok((options, Some(store), imported.had_problems() && !dump.skip_bad))
}

/// Runs `tracegap check`.
pub fn run_check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let catalog = load_catalog(args.input.queries.as_deref())?;
    let checks = &catalog.checks;
    let (options, _store, input_problems) = prepare_source(&args.input)?;
    let summary = match args.format {
        Format::Table => {
            let start = || table_report(std::io::stdout(), checks.clone());
            run_and_write(options, &args, &catalog, start, |summary, _| summary.clone())?
        }
        Format::Json => {
            let descriptions = checks
                .iter()
                .map(|check| {
                    serde_json::json!({
                        "id": check.id, "title": check.title, "severity": check.severity, "is_break": check.is_break,
                        "meaning": check.meaning, "causes": check.causes, "fix": check.fix,
                    })
                })
                .collect();
            let start = || json_report(std::io::stdout(), descriptions);
            run_and_write(options, &args, &catalog, start, |summary, by_check| {
                serde_json::json!({
                    "judged_traces": summary.judged_traces,
                    "pending_traces": summary.pending_traces,
                    "broken_traces": summary.broken_traces,
                    "completeness": summary.completeness,
                    "findings_by_check": by_check,
                    "by_service": summary.by_service,
                    "by_root_operation": summary.by_root_operation,
                    "by_minute": summary.by_minute,
                    "edges": summary.edges,
                })
            })?
        }
    };
    if let Some(threshold) = args.fail_under
        && summary.completeness < threshold
    {
        eprintln!("tracegap: completeness {:.4} is under --fail-under {threshold}", summary.completeness);
        return Ok(ExitCode::from(1));
    }
    if input_problems {
        eprintln!("tracegap: some input was skipped (see above); --skip-bad accepts that");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs every check and hands each check's findings to the report that `start` begins (once the
/// data is open and the views computed, where most failures happen: a failure after that leaves
/// the report unfinished), then the summary that `summarise` makes of the completeness figures
/// and the findings counted by check. Only the broken traces are kept, for the figures.
fn run_and_write<S: Send + 'static>(
    options: AnalysisOptions,
    args: &CheckArgs,
    catalog: &Catalog,
    start: impl FnOnce() -> FindingsWriter<S>,
    summarise: impl FnOnce(&Completeness, &BTreeMap<&str, usize>) -> S,
) -> anyhow::Result<Completeness> {
    let (summary, by_check, report) = runtime()?.block_on(async {
        let analysis = open_analysis(options, args.input.cluster.as_deref()).await?;
        // Held until the findings and completeness are computed; dropping it frees the copy.
        let _in_memory = keep_spans_in_memory(&analysis, catalog).await?;
        register_views(&analysis, &catalog.views).await?;
        let report = start();
        let mut by_check: BTreeMap<&str, usize> = catalog.checks.iter().map(|c| (c.id.as_str(), 0)).collect();
        let mut broken = BrokenTraces::default();
        for check in &catalog.checks {
            let findings = run_one_check(&analysis, check).await?;
            *by_check.entry(check.id.as_str()).or_default() += findings.len();
            broken.add(&findings);
            report.write(findings);
        }
        let summary = completeness_of(&analysis, &broken).await?;
        anyhow::Ok((summary, by_check, report))
    })?;
    report.finish(summarise(&summary, &by_check))?;
    Ok(summary)
}

/// Runs `tracegap sql`.
pub fn run_sql(args: SqlArgs) -> anyhow::Result<ExitCode> {
    let catalog = load_catalog(None)?;
    let result = runtime()?.block_on(async {
        let analysis = Analysis::open(args.source.options()).await?;
        if args.query.to_lowercase().contains("findings") {
            let findings = run_checks(&analysis, &catalog).await?;
            register_findings(&analysis, &findings)?;
        } else {
            // A one-off query computes what it reads, nothing ahead.
            let views: Vec<_> = catalog
                .views
                .iter()
                .cloned()
                .map(|view| tracegap_analyze::View { materialize: false, ..view })
                .collect();
            register_views(&analysis, &views).await?;
            register_findings(&analysis, &[])?;
        }
        query_read_only(&analysis, &args.query, args.max_rows).await
    });
    match result {
        Ok(batches) => {
            report_line!("{}", datafusion::arrow::util::pretty::pretty_format_batches(&batches)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("tracegap sql: {error}");
            Ok(ExitCode::from(2))
        }
    }
}
