//! `tracegap import`: dump files → span batches → Parquet, through the same span builder as the
//! OTLP receivers.
//!
//! One thread reads and decompresses (records in chunks of a few MiB, at most two chunks ahead),
//! rayon decodes the records of a chunk in parallel, and the span batches are written as Parquet
//! every `file_rows` spans (128 Ki, about 270 MB of Arrow rows): memory stays flat whatever the
//! size of the dump. A bad record is reported with its place (file and line, or byte offset),
//! counted and skipped; the rest of the file is still imported.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use arrow::array::RecordBatch;
use bytes::Bytes;
use rayon::prelude::*;

use crate::dump_files::{DumpError, DumpFormat, DumpReader, DumpRecord};
use crate::otlp_messages::ExportRequest;
use crate::parquet_files::{ParquetFileError, write_partitioned};
use crate::span_batch::{BatchContext, build_span_batch};
use crate::{GtsKeys, Source};

/// Bytes of records handed to the parallel decoder at once.
const CHUNK_BYTES: usize = 8 << 20;
/// Records handed to the parallel decoder at once.
const CHUNK_RECORDS: usize = 4096;

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The format of every file; `None` detects it per file from its content.
    pub format: Option<DumpFormat>,
    /// Attribute keys of the GTS transaction ids.
    pub gts_keys: Arc<GtsKeys>,
    /// Spans per Parquet write (each write is one file per hour partition).
    pub file_rows: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { format: None, gts_keys: Arc::new(GtsKeys::default()), file_rows: 128 * 1024 }
    }
}

/// What the importer tells its caller as it goes.
pub trait ImportObserver {
    /// A file is opened (its size on disk, and its format).
    fn file_started(&mut self, _path: &Path, _format: DumpFormat, _size: u64) {}
    /// Total bytes read from the files so far (before decompression).
    fn progress(&mut self, _bytes_read: u64, _spans: u64) {}
    /// Something was wrong and was skipped (or kept with a warning): the message names where.
    fn problem(&mut self, message: &str);
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportSummary {
    /// Files read (opened and recognised).
    pub files: u64,
    /// Files that could not be read at all (or were cut short).
    pub bad_files: u64,
    /// Records read (JSON lines, protobuf messages, whole documents).
    pub records: u64,
    /// Records skipped whole (undecodable).
    pub bad_records: u64,
    /// Spans stored.
    pub spans: u64,
    /// Spans skipped (bad ids, bad text, ...).
    pub rejected_spans: u64,
    /// Spans stored with a warning (a resource without `service.name`).
    pub warned_spans: u64,
    /// Bytes read from the files (compressed size).
    pub bytes_read: u64,
    /// Parquet files written.
    pub written_files: Vec<PathBuf>,
}

impl ImportSummary {
    /// Whether anything was skipped or warned about.
    pub fn had_problems(&self) -> bool {
        self.bad_files + self.bad_records + self.rejected_spans + self.warned_spans > 0
    }
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Writing Parquet failed.
    #[error(transparent)]
    Write(#[from] ParquetFileError),
    /// The thread writing Parquet stopped without saying why (a bug).
    #[error("the Parquet writer thread stopped unexpectedly")]
    WriterStopped,
}

/// The outcome of decoding one record.
#[derive(Default)]
struct DecodedRecord {
    batches: Vec<RecordBatch>,
    spans: usize,
    rejected: usize,
    warned: usize,
    /// Records (or elements of a group) that could not be decoded at all.
    bad: u64,
    problems: Vec<String>,
}

impl DecodedRecord {
    fn failed(place: &str, message: String) -> DecodedRecord {
        DecodedRecord { bad: 1, problems: vec![format!("{place}: {message}")], ..Default::default() }
    }

    fn absorb(&mut self, other: DecodedRecord) {
        self.batches.extend(other.batches);
        self.spans += other.spans;
        self.rejected += other.rejected;
        self.warned += other.warned;
        self.bad += other.bad;
        self.problems.extend(other.problems);
    }
}

/// Imports dump files into `spans_directory`.
pub fn import_dumps(
    paths: &[PathBuf],
    spans_directory: &Path,
    options: &ImportOptions,
    observer: &mut dyn ImportObserver,
) -> Result<ImportSummary, ImportError> {
    let bytes_read = Arc::new(AtomicU64::new(0));
    let run = format!("import-{}-{}", now_nano(), std::process::id());
    let context =
        BatchContext { receive_time_nano: now_nano(), source: Source::Import, gts_keys: options.gts_keys.clone() };
    let mut summary = ImportSummary::default();
    let mut pending: Vec<RecordBatch> = Vec::new();
    let mut pending_rows = 0usize;
    // Parquet is written on its own thread, so the next records are decoded meanwhile. The
    // channel has no room: a finished batch waits for the writer to be free, so at most one
    // write and one batch being collected are in memory.
    let (to_writer, writer_inbox) = mpsc::sync_channel::<Vec<RecordBatch>>(0);
    let writer = {
        let directory = spans_directory.to_owned();
        std::thread::spawn(move || -> Result<Vec<PathBuf>, ParquetFileError> {
            let mut written = Vec::new();
            for (sequence, batches) in writer_inbox.into_iter().enumerate() {
                let stem = format!("{run}-{:05}", sequence + 1);
                written.extend(write_partitioned(&batches, &directory, &stem, false)?);
            }
            Ok(written)
        })
    };
    let finish_writer = |writer: std::thread::JoinHandle<Result<Vec<PathBuf>, ParquetFileError>>| {
        writer.join().map_err(|_| ImportError::WriterStopped)?.map_err(ImportError::Write)
    };
    // A send fails only when the writer stopped on an error, which its join returns.
    let flush = move |pending: &mut Vec<RecordBatch>, pending_rows: &mut usize| -> bool {
        *pending_rows = 0;
        pending.is_empty() || to_writer.send(std::mem::take(pending)).is_ok()
    };
    for path in paths {
        let (sender, receiver) = mpsc::sync_channel::<Result<Vec<DumpRecord>, DumpError>>(2);
        let reader = match DumpReader::open(path, options.format, bytes_read.clone()) {
            Ok(reader) => reader,
            Err(error) => {
                summary.bad_files += 1;
                observer.problem(&error.to_string());
                continue;
            }
        };
        summary.files += 1;
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        observer.file_started(path, reader.format(), size);
        let reading = std::thread::spawn(move || read_chunks(reader, sender));
        for chunk in receiver {
            let records = match chunk {
                Ok(records) => records,
                Err(error) => {
                    summary.bad_files += 1;
                    observer.problem(&error.to_string());
                    continue;
                }
            };
            summary.records += records.len() as u64;
            let decoded: Vec<DecodedRecord> =
                records.into_par_iter().map(|record| decode_record(record, &context)).collect();
            for record in decoded {
                for problem in &record.problems {
                    observer.problem(problem);
                }
                summary.bad_records += record.bad;
                summary.rejected_spans += record.rejected as u64;
                summary.warned_spans += record.warned as u64;
                summary.spans += record.spans as u64;
                for batch in record.batches {
                    pending_rows += batch.num_rows();
                    pending.push(batch);
                }
            }
            if pending_rows >= options.file_rows && !flush(&mut pending, &mut pending_rows) {
                drop(flush);
                return Err(finish_writer(writer).err().unwrap_or(ImportError::WriterStopped));
            }
            summary.bytes_read = bytes_read.load(Ordering::Relaxed);
            observer.progress(summary.bytes_read, summary.spans);
        }
        let _ = reading.join();
    }
    flush(&mut pending, &mut pending_rows);
    drop(flush);
    summary.written_files = finish_writer(writer)?;
    summary.bytes_read = bytes_read.load(Ordering::Relaxed);
    Ok(summary)
}

fn read_chunks(mut reader: DumpReader, sender: mpsc::SyncSender<Result<Vec<DumpRecord>, DumpError>>) {
    let mut chunk = Vec::new();
    let mut chunk_bytes = 0;
    loop {
        match reader.next_record() {
            Ok(Some(record)) => {
                chunk_bytes += record.payload.len();
                chunk.push(record);
                if chunk_bytes >= CHUNK_BYTES || chunk.len() >= CHUNK_RECORDS {
                    if sender.send(Ok(std::mem::take(&mut chunk))).is_err() {
                        return;
                    }
                    chunk_bytes = 0;
                }
            }
            Ok(None) => break,
            Err(error) => {
                if !chunk.is_empty() {
                    let _ = sender.send(Ok(std::mem::take(&mut chunk)));
                }
                let _ = sender.send(Err(error));
                return;
            }
        }
    }
    if !chunk.is_empty() {
        let _ = sender.send(Ok(chunk));
    }
}

fn decode_record(record: DumpRecord, context: &BatchContext) -> DecodedRecord {
    let Some(group) = &record.group else {
        return decode_document(&record.payload, record.format, &record.place, 0, None, context);
    };
    let whole = decode_document(&record.payload, record.format, &record.place, group.first_index, None, context);
    if whole.bad == 0 {
        return whole;
    }
    // Some element is malformed: decode each alone, so only the bad ones are lost and each is
    // reported at its own line.
    let mut merged = DecodedRecord::default();
    for (index, element) in group.elements.iter().enumerate() {
        let document = Bytes::from(group.wrap_one(&record.payload, index));
        let place = match element.line {
            0 => format!("{}: byte {}: {}", record.place, element.offset, group.label(index)),
            line => format!("{}:{line}: {}", record.place, group.label(index)),
        };
        let first_index = group.first_index + index as u64;
        let line = (element.line > 0).then_some(element.line);
        merged.absorb(decode_document(&document, record.format, &place, first_index, line, context));
    }
    merged
}

/// Decodes one document of `format`. `first_index` numbers its span array's elements in the
/// whole file; `line`, when the document is one element, makes JSON error lines the file's.
fn decode_document(
    payload: &Bytes,
    format: DumpFormat,
    place: &str,
    first_index: u64,
    line: Option<u64>,
    context: &BatchContext,
) -> DecodedRecord {
    let json_error = |error: &serde_json::Error| match line {
        Some(line) => {
            let text = error.to_string();
            let message = text.rsplit_once(" at line ").map_or(text.as_str(), |(message, _)| message);
            format!("{message} (line {})", line + error.line() as u64 - 1)
        }
        None => error.to_string(),
    };
    let mut problems = Vec::new();
    let mut rejected = 0;
    let request = match format {
        DumpFormat::OtlpProtobuf => match crate::message_depth::decode_bounded::<ExportRequest>(payload.clone()) {
            Ok(request) => request,
            Err(error) => return DecodedRecord::failed(place, format!("invalid OTLP protobuf TracesData: {error}")),
        },
        DumpFormat::OtlpJson => match crate::otlp_json::decode_json_request_from(payload, first_index) {
            Ok(decoded) => {
                rejected += decoded.rejected;
                problems.extend(decoded.rejections.iter().map(|r| format!("{place}: {r}")));
                decoded.request
            }
            Err(error) => return DecodedRecord::failed(place, format!("invalid OTLP JSON: {}", json_error(&error.0))),
        },
        DumpFormat::Jaeger | DumpFormat::Zipkin => {
            let document: serde_json::Value = match serde_json::from_slice(payload) {
                Ok(document) => document,
                Err(error) => return DecodedRecord::failed(place, format!("invalid JSON: {}", json_error(&error))),
            };
            let converted = if format == DumpFormat::Jaeger {
                crate::jaeger_json::convert_jaeger(document, first_index)
            } else {
                crate::zipkin_json::convert_zipkin(document, first_index)
            };
            match converted {
                Ok(converted) => {
                    rejected += converted.rejections.len();
                    problems.extend(converted.rejections.iter().map(|r| format!("{place}: {r}")));
                    converted.request
                }
                Err(message) => return DecodedRecord::failed(place, message),
            }
        }
    };
    let mut warned = 0;
    for (index, resource_spans) in request.resource_spans.iter().enumerate() {
        let has_service = resource_spans
            .resource
            .as_ref()
            .is_some_and(|r| r.attributes.iter().any(|a| a.key.as_ref() == b"service.name"));
        let count: usize = resource_spans.scope_spans.iter().map(|s| s.spans.len()).sum();
        if !has_service && count > 0 {
            warned += count;
            let index = first_index + index as u64;
            problems.push(format!(
                "{place}: resource_spans[{index}].resource has no service.name; its {count} spans are stored without a service"
            ));
        }
    }
    match build_span_batch(&request, context) {
        Ok(spans) => {
            rejected += spans.rejected;
            if spans.rejected > 0 {
                problems.push(format!("{place}: {}", spans.rejection_message()));
            }
            DecodedRecord {
                batches: spans.batch.into_iter().collect(),
                spans: spans.accepted,
                rejected,
                warned,
                bad: 0,
                problems,
            }
        }
        Err(error) => DecodedRecord::failed(place, format!("building span columns: {error}")),
    }
}

fn now_nano() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}
