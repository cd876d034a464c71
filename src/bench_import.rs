//! `tracegap bench import FILE`: import throughput of a dump (MB/s, spans/s, peak RSS) and, in the
//! same run, the ceiling of only parsing the same file with serde_json (every line into a
//! `serde_json::Value`, on all cores), so the figure is a ratio on this machine.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use rayon::prelude::*;
use tracegap_ingest::dump_import::{ImportObserver, ImportOptions, import_dumps};
use tracegap_ingest::parquet_files::SPANS_DIRECTORY;

use crate::bench_ingest::peak_rss_of;

/// Options of `tracegap bench import`.
#[derive(Args, Debug, Clone)]
pub struct BenchImportArgs {
    /// An OTLP JSON lines dump (`tracegap generate --format otlp-json -o FILE` makes one).
    pub file: PathBuf,
}

struct Count(u64);
impl ImportObserver for Count {
    fn problem(&mut self, _message: &str) {
        self.0 += 1;
    }
}

/// Runs `tracegap bench import`.
pub fn run(args: BenchImportArgs) -> anyhow::Result<ExitCode> {
    let size = std::fs::metadata(&args.file).with_context(|| format!("reading {}", args.file.display()))?.len();
    let megabytes = size as f64 / 1e6;

    let store = tempfile::Builder::new().prefix("tracegap-bench-import-").tempdir()?;
    let started = Instant::now();
    let mut problems = Count(0);
    let summary = import_dumps(
        std::slice::from_ref(&args.file),
        &store.path().join(SPANS_DIRECTORY),
        &ImportOptions::default(),
        &mut problems,
    )?;
    let import_seconds = started.elapsed().as_secs_f64();
    let import_rss = peak_rss_of(std::process::id()).unwrap_or(0);

    let started = Instant::now();
    let mut lines = 0u64;
    let reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&args.file)?);
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
        lines += 1;
        chunk_bytes += line.len();
        chunk.push(line);
        if chunk_bytes >= 8 << 20 {
            parse(&mut chunk)?;
            chunk_bytes = 0;
        }
    }
    parse(&mut chunk)?;
    let ceiling_seconds = started.elapsed().as_secs_f64();

    println!("file: {} ({megabytes:.0} MB, {lines} lines, {} spans)", args.file.display(), summary.spans);
    println!(
        "import:  {:>8.1} MB/s {:>10.0} spans/s  {:.1} s  peak RSS {} MiB  ({} problems)",
        megabytes / import_seconds,
        summary.spans as f64 / import_seconds,
        import_seconds,
        import_rss >> 20,
        problems.0
    );
    println!(
        "ceiling: {:>8.1} MB/s (serde_json::Value per line, all cores)  {:.1} s",
        megabytes / ceiling_seconds,
        ceiling_seconds
    );
    println!("import / ceiling time: {:.2}x", import_seconds / ceiling_seconds);
    Ok(ExitCode::SUCCESS)
}
