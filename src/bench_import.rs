//! `tracegap bench import FILE…`: import throughput of each dump (MB/s, spans/s, peak RSS) and, in
//! the same run, for JSON-lines dumps, the ceiling of only parsing the same file with serde_json
//! (every line into a `serde_json::Value`, on all cores), so the figure is a ratio on this
//! machine. Each import runs in a fresh process of its own, so each peak RSS is its own.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tracegap_ingest::dump_import::{ImportObserver, ImportOptions, import_dumps};
use tracegap_ingest::parquet_files::SPANS_DIRECTORY;

use crate::bench_ingest::peak_rss_of;
use crate::report_output::report_line;

/// Options of `tracegap bench import`.
#[derive(Args, Debug, Clone)]
pub struct BenchImportArgs {
    /// Dumps of any import format (`tracegap generate --format FORMAT -o FILE` makes them).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Import the one file in this process and print the measure as JSON (used by the bench
    /// itself, one process per file).
    #[arg(long, hide = true)]
    pub measure_one: bool,
}

/// One import, measured.
#[derive(Serialize, Deserialize)]
struct Measure {
    format: String,
    seconds: f64,
    spans: u64,
    records: u64,
    problems: u64,
    peak_rss: u64,
}

struct Count(u64);
impl ImportObserver for Count {
    fn problem(&mut self, _message: &str) {
        self.0 += 1;
    }
}

/// Runs `tracegap bench import`.
pub fn run(args: BenchImportArgs) -> anyhow::Result<ExitCode> {
    if args.measure_one {
        let [file] = args.files.as_slice() else { anyhow::bail!("--measure-one takes one file") };
        report_line!("{}", serde_json::to_string(&measure(file)?)?);
        return Ok(ExitCode::SUCCESS);
    }
    let executable = std::env::current_exe().context("finding tracegap's own executable")?;
    report_line!(
        "{:<32} {:>10} {:>8} {:>10} {:>12} {:>7} {:>9}  ceiling (serde_json::Value per line, all cores)",
        "file",
        "format",
        "MB",
        "MB/s",
        "spans/s",
        "s",
        "peak RSS"
    );
    for file in &args.files {
        let size = std::fs::metadata(file).with_context(|| format!("reading {}", file.display()))?.len();
        let megabytes = size as f64 / 1e6;
        let output = std::process::Command::new(&executable)
            .args(["bench", "import", "--measure-one"])
            .arg(file)
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running the import")?;
        anyhow::ensure!(output.status.success(), "importing {} failed", file.display());
        let measure: Measure = serde_json::from_slice(&output.stdout).context("reading the import's measure")?;
        let ceiling = match json_lines_ceiling(file)? {
            Some(seconds) => format!(
                "{:.1} MB/s, {seconds:.1} s; import / ceiling time {:.2}x",
                megabytes / seconds,
                measure.seconds / seconds
            ),
            None => "not JSON lines".to_owned(),
        };
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        report_line!(
            "{name:<32} {:>10} {megabytes:>8.0} {:>10.1} {:>12.0} {:>7.1} {:>5} MiB  {ceiling}",
            measure.format,
            megabytes / measure.seconds,
            measure.spans as f64 / measure.seconds,
            measure.seconds,
            measure.peak_rss >> 20,
        );
        if measure.problems > 0 {
            report_line!("  {} problems reported ({} records)", measure.problems, measure.records);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Imports one file into a temporary store, in this process.
fn measure(file: &Path) -> anyhow::Result<Measure> {
    let format = tracegap_ingest::dump_files::DumpReader::open(file, None, Default::default())
        .with_context(|| format!("opening {}", file.display()))?
        .format();
    let store = tempfile::Builder::new().prefix("tracegap-bench-import-").tempdir()?;
    let started = Instant::now();
    let mut problems = Count(0);
    let summary = import_dumps(
        std::slice::from_ref(&file.to_path_buf()),
        &store.path().join(SPANS_DIRECTORY),
        &ImportOptions::default(),
        &mut problems,
    )?;
    Ok(Measure {
        format: format.name().to_owned(),
        seconds: started.elapsed().as_secs_f64(),
        spans: summary.spans,
        records: summary.records,
        problems: problems.0,
        peak_rss: peak_rss_of(std::process::id()).unwrap_or(0),
    })
}

/// Seconds to parse every line of a JSON-lines file into `serde_json::Value` on all cores; `None`
/// when the file is not JSON lines.
fn json_lines_ceiling(file: &Path) -> anyhow::Result<Option<f64>> {
    let mut reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(file)?);
    let mut first = Vec::new();
    (&mut reader).take(256 << 20).read_until(b'\n', &mut first)?;
    if serde_json::from_slice::<serde::de::IgnoredAny>(&first).is_err() {
        return Ok(None);
    }
    let started = Instant::now();
    let reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(file)?);
    let mut chunk: Vec<Vec<u8>> = Vec::new();
    let mut chunk_bytes = 0;
    let parse = |chunk: &mut Vec<Vec<u8>>| -> anyhow::Result<()> {
        let parsed: Result<Vec<()>, _> =
            chunk.par_iter().map(|line| serde_json::from_slice::<serde_json::Value>(line).map(|_| ())).collect();
        parsed.context("the ceiling could not parse a line")?;
        chunk.clear();
        Ok(())
    };
    for line in reader.split(b'\n') {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        chunk_bytes += line.len();
        chunk.push(line);
        if chunk_bytes >= 8 << 20 {
            parse(&mut chunk)?;
            chunk_bytes = 0;
        }
    }
    parse(&mut chunk)?;
    Ok(Some(started.elapsed().as_secs_f64()))
}
