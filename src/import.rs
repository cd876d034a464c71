//! `tracegap import FILE…`, and the dump reading `tracegap check FILE…` shares: expand the
//! inputs (files, directories, globs), import them with a progress bar on a terminal, report
//! every problem on stderr.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracegap_ingest::GtsKeys;
use tracegap_ingest::dump_files::DumpFormat;
use tracegap_ingest::dump_import::{ImportObserver, ImportOptions, ImportSummary, import_dumps};
use tracegap_ingest::parquet_files::SPANS_DIRECTORY;

use crate::serve::DEFAULT_DATA_DIRECTORY;

/// Problems printed one by one; past this, only counted.
const PRINTED_PROBLEMS: usize = 100;

/// How to read dumps (shared by `import` and `check FILE…`).
#[derive(Args, Debug, Clone)]
pub struct DumpArgs {
    /// Do not show progress.
    #[arg(long, short)]
    pub quiet: bool,
    /// Exit 0 even when records or spans were skipped.
    #[arg(long)]
    pub skip_bad: bool,
}

/// Options of `tracegap import`.
#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// Dump files, directories or globs: OTLP JSON (one document or JSON lines), OTLP protobuf
    /// (one message or length-prefixed records), Jaeger JSON, Zipkin v2 JSON; gzip or zstd.
    #[arg(required = true)]
    pub files: Vec<String>,
    /// Data directory to import into.
    #[arg(long = "data", env = "TRACEGAP_DATA", default_value = DEFAULT_DATA_DIRECTORY)]
    pub data_directory: PathBuf,
    /// The format of every file (otlp-json, otlp-proto, jaeger, zipkin); detected from content
    /// when not given.
    #[arg(long)]
    pub format: Option<DumpFormat>,
    #[command(flatten)]
    pub dump: DumpArgs,
}

/// Runs `tracegap import`.
pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let files = expand_inputs(&args.files)?;
    let summary = import_files(&files, &args.data_directory, args.format, &args.dump)?;
    print_summary(&summary, &files);
    Ok(if summary.had_problems() && !args.dump.skip_bad { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Files, directories (every file under them, sorted) and globs, in the order given.
pub fn expand_inputs(inputs: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        let path = Path::new(input);
        if path.exists() {
            collect(path, &mut files)?;
        } else if input.contains(['*', '?', '[']) {
            let mut matched = false;
            for entry in glob::glob(input).with_context(|| format!("bad glob {input:?}"))? {
                let entry = entry.with_context(|| format!("reading a match of {input:?}"))?;
                collect(&entry, &mut files)?;
                matched = true;
            }
            if !matched {
                bail!("{input}: no file matches");
            }
        } else {
            bail!("{input}: no such file or directory");
        }
    }
    Ok(files)
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading directory {}", path.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect();
        entries.sort();
        for entry in entries {
            collect(&entry, files)?;
        }
    } else {
        files.push(path.to_owned());
    }
    Ok(())
}

/// Imports files into a data directory, with progress on a terminal and problems on stderr.
pub fn import_files(
    files: &[PathBuf],
    data_directory: &Path,
    format: Option<DumpFormat>,
    dump: &DumpArgs,
) -> anyhow::Result<ImportSummary> {
    let total: u64 = files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let bar = if dump.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    };
    let mut observer = Observer { bar: bar.clone(), printed: 0 };
    let options = ImportOptions { format, gts_keys: Arc::new(GtsKeys::default()), ..Default::default() };
    let spans = data_directory.join(SPANS_DIRECTORY);
    let summary = import_dumps(files, &spans, &options, &mut observer).context("importing")?;
    bar.finish_and_clear();
    if observer.printed >= PRINTED_PROBLEMS {
        eprintln!("tracegap: ... more problems not shown (counted in the summary)");
    }
    Ok(summary)
}

/// Prints what an import did, on stderr.
pub fn print_summary(summary: &ImportSummary, files: &[PathBuf]) {
    eprintln!(
        "imported {} spans from {} of {} files ({} records, {:.1} MB); skipped: {} unreadable files, {} bad records, {} bad spans; {} spans without a service",
        summary.spans,
        summary.files,
        files.len(),
        summary.records,
        summary.bytes_read as f64 / 1e6,
        summary.bad_files,
        summary.bad_records,
        summary.rejected_spans,
        summary.warned_spans,
    );
}

struct Observer {
    bar: ProgressBar,
    printed: usize,
}

impl ImportObserver for Observer {
    fn file_started(&mut self, path: &Path, format: DumpFormat, _size: u64) {
        self.bar.set_message(format!("{} ({format})", path.display()));
    }

    fn progress(&mut self, bytes_read: u64, _spans: u64) {
        self.bar.set_position(bytes_read);
    }

    fn problem(&mut self, message: &str) {
        if self.printed < PRINTED_PROBLEMS {
            self.bar.suspend(|| eprintln!("tracegap: {message}"));
        }
        self.printed += 1;
    }
}
