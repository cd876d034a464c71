//! `tracegap generate`: the seeded synthetic corpus (healthy shop traffic plus every labelled
//! break) into a data directory, or as a dump file of any import format.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};
use rayon::prelude::*;
use tracegap_corpus::dump_writers::{DumpKind, jaeger_json, write_record, zipkin_json};
use tracegap_corpus::{CorpusOptions, generate};
use tracegap_ingest::Source;
use tracegap_ingest::otlp_messages::ExportRequest;
use tracegap_ingest::parquet_files::{SPANS_DIRECTORY, write_partitioned};
use tracegap_ingest::span_batch::{BatchContext, build_span_batch};

use crate::serve::DEFAULT_DATA_DIRECTORY;

/// Dump formats `generate --output` writes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    /// OTLP JSON lines (the Collector's file exporter).
    OtlpJson,
    /// OTLP protobuf, length-prefixed records.
    OtlpProto,
    /// Jaeger JSON (`{"data": [...]}`).
    Jaeger,
    /// Zipkin v2 JSON (an array of spans).
    Zipkin,
}

/// Options of `tracegap generate`.
#[derive(Args, Debug, Clone)]
pub struct GenerateArgs {
    /// Number of traces (about 8 spans each).
    #[arg(long, default_value_t = 10_000)]
    pub traces: usize,
    /// Seed: the same seed gives the same corpus.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Start time of the first trace (RFC 3339); default: `traces` × 10 ms before now.
    #[arg(long, value_parser = crate::cli_values::parse_time)]
    pub start: Option<i64>,
    /// Data directory to write Parquet into (when no --output is given).
    #[arg(long = "data", env = "TRACEGAP_DATA", default_value = DEFAULT_DATA_DIRECTORY)]
    pub data_directory: PathBuf,
    /// Write a dump file instead, in --format.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Format of --output.
    #[arg(long, value_enum, default_value = "otlp-json")]
    pub format: OutputFormat,
    /// Also write the labels of the injected breaks (JSON lines: check, trace_id, span_id, scenario).
    #[arg(long)]
    pub labels: Option<PathBuf>,
}

/// Runs `tracegap generate`.
pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let interval = 10_000_000u64;
    let now = tracegap_analyze::session::now_nano() as u64;
    let start = args.start.map(|s| s as u64).unwrap_or(now.saturating_sub(args.traces as u64 * interval));
    let options = CorpusOptions {
        seed: args.seed,
        traces: args.traces,
        start_nano: start - start % 1_000_000,
        interval_nano: interval,
        keep_labels: args.labels.is_some(),
        ..Default::default()
    };
    let corpus = match &args.output {
        Some(path) => write_dump(&options, path, args.format)?,
        None => write_parquet(&options, &args.data_directory)?,
    };
    if let Some(path) = &args.labels {
        let mut out =
            BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?);
        for label in &corpus.labels {
            let line = serde_json::json!({"check": label.check, "trace_id": label.trace_id, "span_id": label.span_id,
                "scenario": format!("{:?}", label.scenario)});
            writeln!(out, "{line}")?;
        }
    }
    eprintln!(
        "generated {} traces, {} spans, {} labelled breaks{}",
        args.traces,
        corpus.spans,
        corpus.labels.len(),
        if args.labels.is_none() { " (not kept: use --labels FILE)" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

fn write_parquet(options: &CorpusOptions, data_directory: &std::path::Path) -> anyhow::Result<tracegap_corpus::Corpus> {
    let spans_directory = data_directory.join(SPANS_DIRECTORY);
    let context = BatchContext { receive_time_nano: 0, source: Source::Import, gts_keys: Arc::new(Default::default()) };
    let run = format!("generated-{}-{}", options.seed, tracegap_analyze::session::now_nano());
    let mut pending: Vec<ExportRequest> = Vec::new();
    let mut sequence = 0;
    let mut failure = None;
    let mut flush = |pending: &mut Vec<ExportRequest>| {
        if pending.is_empty() || failure.is_some() {
            return;
        }
        let batches: Vec<_> = pending
            .par_iter()
            .filter_map(|request| build_span_batch(request, &context).ok().and_then(|b| b.batch))
            .collect();
        sequence += 1;
        if let Err(error) = write_partitioned(&batches, &spans_directory, &format!("{run}-{sequence:05}"), false) {
            failure = Some(error);
        }
        pending.clear();
    };
    // About 256k spans per write: 320 requests of 100 traces of 8 spans.
    let corpus = generate(options, |request| {
        pending.push(request);
        if pending.len() >= 320 {
            flush(&mut pending);
        }
    });
    flush(&mut pending);
    if let Some(error) = failure {
        return Err(error).context("writing the corpus");
    }
    Ok(corpus)
}

fn write_dump(
    options: &CorpusOptions,
    path: &std::path::Path,
    format: OutputFormat,
) -> anyhow::Result<tracegap_corpus::Corpus> {
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    // Jaeger and Zipkin are one document: its array is written request by request (a trace
    // split between two requests becomes two Jaeger trace objects with the same id), so memory
    // stays flat however big the dump.
    let (opening, closing): (&[u8], &[u8]) = match format {
        OutputFormat::Jaeger => (b"{\"data\":[", b"]}\n"),
        OutputFormat::Zipkin => (b"[", b"]\n"),
        OutputFormat::OtlpJson | OutputFormat::OtlpProto => (b"", b""),
    };
    out.write_all(opening)?;
    let mut elements = 0usize;
    let mut write_request = |request: &ExportRequest, out: &mut BufWriter<std::fs::File>| -> std::io::Result<()> {
        let array = match format {
            OutputFormat::OtlpJson => return write_record(DumpKind::OtlpJsonLines, request, out),
            OutputFormat::OtlpProto => return write_record(DumpKind::OtlpProtobufRecords, request, out),
            OutputFormat::Jaeger => jaeger_json(std::slice::from_ref(request))["data"].take(),
            OutputFormat::Zipkin => zipkin_json(std::slice::from_ref(request)),
        };
        for element in array.as_array().into_iter().flatten() {
            if elements > 0 {
                out.write_all(b",")?;
            }
            elements += 1;
            serde_json::to_writer(&mut *out, element)?;
        }
        Ok(())
    };
    let mut failure = None;
    let corpus = generate(options, |request| {
        if failure.is_none()
            && let Err(error) = write_request(&request, &mut out)
        {
            failure = Some(error);
        }
    });
    if let Some(error) = failure {
        return Err(error).with_context(|| format!("writing {}", path.display()));
    }
    out.write_all(closing)?;
    out.flush()?;
    Ok(corpus)
}
