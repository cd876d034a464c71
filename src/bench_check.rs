//! `tracegap bench check --data DIR`: the whole check suite over a data directory (wall time,
//! spans/s, peak RSS), and in the same run the same SQL on the same Parquet with DuckDB (the
//! python `duckdb` package), with the ratio and the findings of each check compared.
//!
//! tracegap's side runs in this process; DuckDB's in a Python child process (its own peak RSS).
//! The plan handed to DuckDB holds the shared views and each check's finding query exactly as
//! `run_checks` runs them; `bench_check_duckdb.py` bridges only the spelling differences (helper
//! functions as DuckDB macros, times as integer nanoseconds, integer division).

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use tracegap_analyze::completeness::{BrokenTraces, completeness_of};
use tracegap_analyze::findings::{finding_query, register_views, run_check};
use tracegap_analyze::{Analysis, AnalysisOptions, keep_spans_in_memory, load_catalog};
use tracegap_ingest::parquet_files::{SPANS_DIRECTORY, count_rows};

use crate::bench_ingest::peak_rss_of;
use crate::check::runtime;
use crate::cli_values::{parse_duration, parse_size};
use crate::report_output::report_line;

/// The DuckDB side, embedded so the bench runs from the binary alone.
const DUCKDB_SCRIPT: &str = include_str!("bench_check_duckdb.py");

/// Options of `tracegap bench check`.
#[derive(Args, Debug, Clone)]
pub struct BenchCheckArgs {
    /// Data directory to analyse (`tracegap generate --traces N --data DIR` makes one).
    #[arg(long = "data")]
    pub data_directory: PathBuf,
    /// Memory for each engine; past it, both spill to disk.
    #[arg(long, default_value = "2GiB", value_parser = parse_size)]
    pub memory_limit: usize,
    /// How far a synchronous child may outlast its parent before premature_end reports it.
    #[arg(long, default_value = "1ms", value_parser = parse_duration)]
    pub premature_end_tolerance: Duration,
    /// Extra or overriding checks, as for `tracegap check --queries`.
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// A Python with the `duckdb` package (`pip install duckdb`).
    #[arg(long, env = "TRACEGAP_PYTHON", default_value = "python3")]
    pub python: PathBuf,
    /// Only tracegap's side, without DuckDB.
    #[arg(long)]
    pub no_duckdb: bool,
    /// Every check reads the span files, as when the spans do not fit in memory (a baseline for
    /// the in-memory copy).
    #[arg(long)]
    pub read_files: bool,
}

/// What the DuckDB side reports.
#[derive(Deserialize)]
struct DuckdbMeasure {
    version: String,
    seconds: f64,
    peak_rss: u64,
    steps: Vec<DuckdbStep>,
}

#[derive(Deserialize)]
struct DuckdbStep {
    name: String,
    seconds: f64,
    rows: Option<u64>,
}

/// One view or check, measured.
struct Step {
    name: String,
    /// How the table names it.
    label: String,
    seconds: f64,
    /// Findings of a check; `None` for a view.
    findings: Option<u64>,
    /// Whether a query of the step ran out of memory with hash joins and ran again with
    /// sort-merge joins.
    replanned: bool,
}

/// tracegap's side, measured.
struct Measure {
    checks_seconds: f64,
    completeness_seconds: f64,
    /// Each view (registered, and materialised when marked so) and each check, in order.
    steps: Vec<Step>,
    peak_rss: u64,
    /// The columns kept in memory, when they were.
    span_columns: Option<Vec<String>>,
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Runs `tracegap bench check`.
pub fn run(args: BenchCheckArgs) -> anyhow::Result<ExitCode> {
    let catalog = load_catalog(args.queries.as_deref())?;
    let options = AnalysisOptions {
        memory_limit: args.memory_limit,
        premature_end_tolerance: args.premature_end_tolerance,
        when_spans_do_not_fit: Some(crate::allocator::return_freed_memory_when_memory_bound),
        ..AnalysisOptions::batch(&args.data_directory)
    };
    let spans_directory = args.data_directory.join(SPANS_DIRECTORY);
    let spans = count_rows(&spans_directory)? as u64;
    let measure = runtime()?.block_on(async {
        let analysis = Analysis::open(options).await?;
        let started = Instant::now();
        let mut steps = Vec::new();
        let in_memory = if args.read_files { None } else { Some(keep_spans_in_memory(&analysis, &catalog).await?) };
        // As `check` does when the spans do not fit (`when_spans_do_not_fit` covers that case).
        if args.read_files {
            crate::allocator::return_freed_memory_when_memory_bound();
        }
        if let Some(cache) = &in_memory {
            steps.push(Step {
                name: "spans in memory".to_owned(),
                label: match cache.is_active() {
                    true => format!(
                        "(spans in memory: {} columns, {:.2} GiB)",
                        cache.columns.len(),
                        gib(cache.bytes as u64)
                    ),
                    false => "(spans do not fit in memory)".to_owned(),
                },
                seconds: started.elapsed().as_secs_f64(),
                findings: None,
                replanned: false,
            });
        }
        for view in &catalog.views {
            let (view_started, replanned) = (Instant::now(), analysis.replanned_queries());
            register_views(&analysis, std::slice::from_ref(view)).await?;
            steps.push(Step {
                name: view.name.clone(),
                label: format!("(view {})", view.name),
                seconds: view_started.elapsed().as_secs_f64(),
                findings: None,
                replanned: analysis.replanned_queries() > replanned,
            });
        }
        // Only the broken traces are kept: on 100M spans the findings take 2 GB.
        let mut broken = BrokenTraces::default();
        for check in &catalog.checks {
            let (check_started, replanned) = (Instant::now(), analysis.replanned_queries());
            let found = run_check(&analysis, check).await?;
            steps.push(Step {
                name: check.id.clone(),
                label: check.id.clone(),
                seconds: check_started.elapsed().as_secs_f64(),
                findings: Some(found.len() as u64),
                replanned: analysis.replanned_queries() > replanned,
            });
            broken.add(&found);
        }
        let checks_seconds = started.elapsed().as_secs_f64();
        let started = Instant::now();
        completeness_of(&analysis, &broken).await?;
        let completeness_seconds = started.elapsed().as_secs_f64();
        let span_columns = in_memory.as_ref().filter(|cache| cache.is_active()).map(|cache| cache.columns.clone());
        drop(in_memory);
        let peak_rss = peak_rss_of(std::process::id()).unwrap_or(0);
        anyhow::Ok(Measure { checks_seconds, completeness_seconds, steps, peak_rss, span_columns })
    })?;
    report_line!(
        "tracegap (DataFusion): {} spans; views and checks {:.1} s ({:.0} spans/s), completeness {:.1} s more; peak RSS {:.2} GiB",
        spans,
        measure.checks_seconds,
        spans as f64 / measure.checks_seconds,
        measure.completeness_seconds,
        gib(measure.peak_rss)
    );
    let duckdb =
        if args.no_duckdb { None } else { Some(run_duckdb(&args, &catalog, measure.span_columns.as_deref())?) };
    if let Some(duckdb) = &duckdb {
        report_line!(
            "DuckDB {}: views and checks {:.1} s ({:.0} spans/s); peak RSS {:.2} GiB",
            duckdb.version,
            duckdb.seconds,
            spans as f64 / duckdb.seconds,
            gib(duckdb.peak_rss)
        );
        report_line!("tracegap / DuckDB time: {:.2}x", measure.checks_seconds / duckdb.seconds);
    }
    report_line!("\n{:<28} {:>10} {:>10} {:>10} {:>10}", "step", "tracegap", "DuckDB", "tracegap s", "DuckDB s");
    let mut differing = 0;
    for step in &measure.steps {
        let theirs = duckdb.as_ref().and_then(|duckdb| duckdb.steps.iter().find(|theirs| theirs.name == step.name));
        let (duckdb_rows, duckdb_seconds) = match theirs {
            Some(theirs) => {
                (theirs.rows.map_or("-".to_owned(), |rows| rows.to_string()), format!("{:.2}", theirs.seconds))
            }
            None => ("-".to_owned(), "-".to_owned()),
        };
        let differs =
            duckdb.is_some() && step.findings.is_some() && step.findings != theirs.and_then(|theirs| theirs.rows);
        differing += usize::from(differs);
        report_line!(
            "{:<28} {:>10} {duckdb_rows:>10} {:>10.2} {duckdb_seconds:>10}{}{}",
            step.label,
            step.findings.map_or("-".to_owned(), |rows| rows.to_string()),
            step.seconds,
            if step.replanned { "  sort-merge joins (a hash join did not fit)" } else { "" },
            if differs { "  differs" } else { "" }
        );
    }
    anyhow::ensure!(differing == 0, "{differing} checks found a different number of findings on DuckDB");
    Ok(ExitCode::SUCCESS)
}

/// DuckDB runs the same views and checks on the same files. When tracegap kept the spans' columns
/// in memory, DuckDB first loads the same columns into a table of its own, so both engines read
/// the files once.
fn run_duckdb(
    args: &BenchCheckArgs,
    catalog: &tracegap_analyze::Catalog,
    span_columns: Option<&[String]>,
) -> anyhow::Result<DuckdbMeasure> {
    let work = tempfile::tempdir().context("creating a temporary directory")?;
    let spans = args.data_directory.join(SPANS_DIRECTORY);
    let spans = spans.canonicalize().with_context(|| format!("reading {}", spans.display()))?;
    let plan = serde_json::json!({
        "span_files": format!("{}/**/*.parquet", spans.display()),
        "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "memory_limit_bytes": args.memory_limit,
        "temp_directory": work.path().join("spill"),
        "premature_end_tolerance_nano": args.premature_end_tolerance.as_nanos() as u64,
        "span_columns": span_columns,
        "views": catalog.views.iter().map(|view| serde_json::json!({
            "name": view.name, "sql": view.sql, "materialize": view.materialize,
        })).collect::<Vec<_>>(),
        "checks": catalog.checks.iter().map(|check| serde_json::json!({
            "id": check.id, "sql": finding_query(&check.sql),
        })).collect::<Vec<_>>(),
    });
    let plan_path = work.path().join("plan.json");
    std::fs::write(&plan_path, serde_json::to_vec(&plan)?).context("writing the DuckDB plan")?;
    let script = work.path().join("bench_check_duckdb.py");
    std::fs::write(&script, DUCKDB_SCRIPT).context("writing the DuckDB script")?;
    let output = Command::new(&args.python)
        .arg(&script)
        .arg(&plan_path)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {} (set --python to a Python with duckdb)", args.python.display()))?;
    // The last `duckdb:` line above says which step it reached.
    anyhow::ensure!(
        output.status.success(),
        "the DuckDB side failed ({}) after the steps listed above; it needs a Python with the duckdb \
         package (--python PATH)",
        output.status
    );
    serde_json::from_slice(&output.stdout).context("reading the DuckDB side's measure")
}
