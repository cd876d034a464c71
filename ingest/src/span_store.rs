//! The span store: durable appends (write-ahead log with group commit), an in-memory table of
//! recent spans, and background flushes of that table to Parquet.
//!
//! One commit thread owns the log and the in-memory table, so a segment of the log and the
//! table it fills always hold exactly the same requests: when the table is flushed, the
//! segment is deleted. After a crash, every segment left is replayed into Parquet.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow::array::RecordBatch;
use tokio::sync::oneshot;

use crate::parquet_files::{SPANS_DIRECTORY, remove_temporary_files, write_partitioned};
use crate::promoted_attributes::GtsKeys;
use crate::request_decoding::decode_logged_request;
use crate::span_batch::BatchContext;
use crate::write_ahead_log::{
    SegmentWriter, WalError, WalRecord, list_segments, read_segment, segment_path, sync_directory,
};

/// Directory of the write-ahead log under the data directory.
pub const WAL_DIRECTORY: &str = "wal";
/// Most bytes of requests written with one fsync.
const GROUP_COMMIT_BYTES: usize = 32 << 20;

/// How the store is set up.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The data directory: `spans/` (Parquet) and `wal/` go under it.
    pub data_directory: PathBuf,
    /// Flush the in-memory table to Parquet when it holds this many bytes of Arrow data.
    pub flush_bytes: usize,
    /// ... or when its oldest span arrived this long ago.
    pub flush_interval: Duration,
    /// Most bytes held for requests not yet in Parquet (in decoding, waiting for the log, or in
    /// the in-memory table). Past it, requests are refused as "try again later".
    pub queue_bytes: usize,
    /// GTS keys, to rebuild logged requests exactly as they were built when received.
    pub gts_keys: Arc<GtsKeys>,
}

impl StoreConfig {
    /// Defaults for a data directory: flush at 128 MiB or every 15 s, a 512 MiB queue.
    pub fn new(data_directory: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            data_directory: data_directory.into(),
            flush_bytes: 128 << 20,
            flush_interval: Duration::from_secs(15),
            queue_bytes: 512 << 20,
            gts_keys: Arc::new(GtsKeys::default()),
        }
    }
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The queue is full: the client should retry later.
    #[error("ingest queue full ({used} of {limit} bytes in use): retry later")]
    QueueFull {
        /// Bytes in use.
        used: usize,
        /// The limit.
        limit: usize,
    },
    /// The write-ahead log failed: the request is not durable.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// Writing Parquet failed.
    #[error("writing span Parquet: {0}")]
    Parquet(#[from] crate::parquet_files::ParquetFileError),
    /// Replaying a logged request failed.
    #[error("replaying {path}: {message}")]
    Replay {
        /// The segment.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// An I/O error outside the log.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The store is shut down.
    #[error("the span store is shut down")]
    Closed,
}

/// What recovery found when the store opened.
#[derive(Debug, Default, Clone)]
pub struct RecoveryReport {
    /// Log segments replayed.
    pub segments: usize,
    /// Requests replayed.
    pub requests: usize,
    /// Spans written to Parquet from them.
    pub spans: usize,
    /// Segments that stopped early on damage (moved to `wal/damaged/`), with the reason.
    pub damaged: Vec<String>,
    /// Temporary files of interrupted flushes removed.
    pub temporary_files_removed: usize,
}

/// Counters of the store, for metrics.
#[derive(Debug, Default)]
pub struct StoreCounters {
    /// fsyncs of the log.
    pub log_syncs: AtomicU64,
    /// Requests appended to the log.
    pub log_records: AtomicU64,
    /// Parquet files written.
    pub files_written: AtomicU64,
    /// Spans written to Parquet.
    pub spans_written: AtomicU64,
    /// Failed flush attempts (retried).
    pub flush_errors: AtomicU64,
}

/// The byte budget of the queue.
#[derive(Debug)]
struct Queue {
    used: AtomicUsize,
    limit: usize,
}

impl Queue {
    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Bytes of the queue held by one request; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    queue: Arc<Queue>,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.queue.release(self.bytes);
    }
}

enum Command {
    Append {
        record: WalRecord,
        batch: RecordBatch,
        reservation: Reservation,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    Flush {
        done: oneshot::Sender<Result<(), StoreError>>,
    },
}

struct FlushJob {
    segment_id: u64,
    segment_path: PathBuf,
    batches: Vec<RecordBatch>,
    bytes: usize,
    waiters: Vec<oneshot::Sender<Result<(), StoreError>>>,
}

/// The span store. Shared by the receivers; [`SpanStore::close`] flushes everything.
pub struct SpanStore {
    commands: Mutex<Option<mpsc::Sender<Command>>>,
    queue: Arc<Queue>,
    counters: Arc<StoreCounters>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    spans_directory: PathBuf,
}

impl SpanStore {
    /// Opens the store: replays any log left by a crash into Parquet, then starts the commit
    /// and flush threads.
    pub fn open(config: StoreConfig) -> Result<(SpanStore, RecoveryReport), StoreError> {
        let spans_directory = config.data_directory.join(SPANS_DIRECTORY);
        let wal_directory = config.data_directory.join(WAL_DIRECTORY);
        for directory in [&spans_directory, &wal_directory] {
            std::fs::create_dir_all(directory).map_err(|source| StoreError::Io { path: directory.clone(), source })?;
        }
        let report = recover(&config, &spans_directory, &wal_directory)?;
        let last_segment = list_segments(&wal_directory)?.last().copied().unwrap_or(0);
        let first_id = next_segment_id(last_segment);
        let segment = SegmentWriter::create(&wal_directory, first_id)?;

        let queue = Arc::new(Queue { used: AtomicUsize::new(0), limit: config.queue_bytes });
        let counters = Arc::new(StoreCounters::default());
        let (commands, command_receiver) = mpsc::channel();
        let (flush_sender, flush_receiver) = mpsc::channel();
        let shutting_down = Arc::new(AtomicBool::new(false));

        let commit = CommitLoop {
            commands: command_receiver,
            flushes: flush_sender,
            wal_directory,
            segment,
            table: Vec::new(),
            table_bytes: 0,
            table_since: None,
            // Flush before the queue fills, or a full table would refuse every request until
            // the flush interval passes.
            flush_bytes: config.flush_bytes.min(config.queue_bytes / 2).max(1),
            flush_interval: config.flush_interval,
            queue: queue.clone(),
            counters: counters.clone(),
            shutting_down: shutting_down.clone(),
        };
        let flusher = FlushLoop {
            jobs: flush_receiver,
            spans_directory: spans_directory.clone(),
            queue: queue.clone(),
            counters: counters.clone(),
            shutting_down: shutting_down.clone(),
        };
        let commit_thread = std::thread::Builder::new()
            .name("tracegap-commit".into())
            .spawn(move || commit.run())
            .map_err(|source| StoreError::Io { path: config.data_directory.clone(), source })?;
        let flush_thread = std::thread::Builder::new()
            .name("tracegap-flush".into())
            .spawn(move || flusher.run())
            .map_err(|source| StoreError::Io { path: config.data_directory.clone(), source })?;
        let store = SpanStore {
            commands: Mutex::new(Some(commands)),
            queue,
            counters,
            threads: Mutex::new(vec![commit_thread, flush_thread]),
            spans_directory,
        };
        Ok((store, report))
    }

    /// The directory of the span table's Parquet files.
    pub fn spans_directory(&self) -> &Path {
        &self.spans_directory
    }

    /// Counters for metrics.
    pub fn counters(&self) -> &StoreCounters {
        &self.counters
    }

    /// Bytes of the queue in use, and its limit.
    pub fn queue_usage(&self) -> (usize, usize) {
        (self.queue.used.load(Ordering::Acquire), self.queue.limit)
    }

    /// Reserves queue room for a request of `bytes`, or refuses at once when the queue is full.
    pub fn reserve(&self, bytes: usize) -> Result<Reservation, StoreError> {
        let limit = self.queue.limit;
        let mut used = self.queue.used.load(Ordering::Acquire);
        loop {
            if used + bytes > limit && used > 0 {
                return Err(StoreError::QueueFull { used, limit });
            }
            match self.queue.used.compare_exchange_weak(used, used + bytes, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    return Ok(Reservation { queue: self.queue.clone(), bytes });
                }
                Err(now) => used = now,
            }
        }
    }

    /// Appends a request durably: returns once its log record is fsync'd and its batch is in the
    /// in-memory table (so it reaches Parquet at the next flush, or at recovery).
    pub async fn append(
        &self,
        reservation: Reservation,
        record: WalRecord,
        batch: RecordBatch,
    ) -> Result<(), StoreError> {
        let (done, finished) = oneshot::channel();
        self.send(Command::Append { record, batch, reservation, done })?;
        finished.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Flushes the in-memory table to Parquet and waits until the files are durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (done, finished) = oneshot::channel();
        self.send(Command::Flush { done })?;
        finished.await.unwrap_or(Err(StoreError::Closed))
    }

    fn send(&self, command: Command) -> Result<(), StoreError> {
        let commands = self.commands.lock().map_err(|_| StoreError::Closed)?;
        commands.as_ref().ok_or(StoreError::Closed)?.send(command).map_err(|_| StoreError::Closed)
    }

    /// Stops accepting appends, flushes everything to Parquet and waits for the threads. Blocks.
    pub fn close(&self) {
        if let Ok(mut commands) = self.commands.lock() {
            commands.take();
        }
        let threads = self.threads.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for SpanStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// A segment id larger than every earlier one and than the current time in µs, so file names
/// never repeat even when the log directory was emptied.
fn next_segment_id(previous: u64) -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
    now.max(previous + 1)
}

fn file_stem(segment_id: u64) -> String {
    format!("part-{segment_id:020}")
}

struct CommitLoop {
    commands: mpsc::Receiver<Command>,
    flushes: mpsc::Sender<FlushJob>,
    wal_directory: PathBuf,
    segment: SegmentWriter,
    table: Vec<RecordBatch>,
    table_bytes: usize,
    table_since: Option<Instant>,
    flush_bytes: usize,
    flush_interval: Duration,
    queue: Arc<Queue>,
    counters: Arc<StoreCounters>,
    shutting_down: Arc<AtomicBool>,
}

impl CommitLoop {
    fn run(mut self) {
        loop {
            let wait = match self.table_since {
                Some(since) => self.flush_interval.saturating_sub(since.elapsed()),
                None => Duration::from_secs(3600),
            };
            match self.commands.recv_timeout(wait) {
                Ok(command) => {
                    let mut group = Vec::new();
                    let mut flushes = Vec::new();
                    let mut group_bytes = 0;
                    let mut next = Some(command);
                    while let Some(command) = next.take() {
                        match command {
                            Command::Append { record, batch, reservation, done } => {
                                group_bytes += record.request.len();
                                group.push((record, batch, reservation, done));
                            }
                            Command::Flush { done } => flushes.push(done),
                        }
                        if group_bytes < GROUP_COMMIT_BYTES {
                            next = self.commands.try_recv().ok();
                        }
                    }
                    self.commit_group(group);
                    if !flushes.is_empty() {
                        self.rotate(flushes);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.shutting_down.store(true, Ordering::Release);
                    self.rotate(Vec::new());
                    // What is left is the fresh, empty segment: a clean stop leaves no log.
                    if self.segment.records() == 0 {
                        let _ = std::fs::remove_file(self.segment.path());
                    }
                    return;
                }
            }
            let too_old = self.table_since.is_some_and(|since| since.elapsed() >= self.flush_interval);
            if self.table_bytes >= self.flush_bytes || too_old {
                self.rotate(Vec::new());
            }
        }
    }

    fn commit_group(&mut self, group: Vec<GroupEntry>) {
        if group.is_empty() {
            return;
        }
        let written = self.segment.append_durably(group.iter().map(|(record, ..)| record));
        self.counters.log_syncs.fetch_add(1, Ordering::Relaxed);
        match written {
            Ok(()) => {
                self.counters.log_records.fetch_add(group.len() as u64, Ordering::Relaxed);
                for (_, batch, reservation, done) in group {
                    // The batch now holds queue room by its Arrow size until it is in Parquet;
                    // the request's reservation is released when dropped here.
                    let bytes = batch.get_array_memory_size();
                    self.queue.used.fetch_add(bytes, Ordering::AcqRel);
                    self.table_bytes += bytes;
                    self.table.push(batch);
                    self.table_since.get_or_insert_with(Instant::now);
                    drop(reservation);
                    let _ = done.send(Ok(()));
                }
            }
            Err(error) => {
                tracing::error!(%error, "write-ahead log append failed; requests refused");
                let message = error.to_string();
                for (.., done) in group {
                    let _ = done.send(Err(StoreError::Io {
                        path: self.segment.path().to_owned(),
                        source: std::io::Error::other(message.clone()),
                    }));
                }
                // The segment's tail may now hold a partial record: start a fresh one so later
                // records are never written after garbage.
                self.rotate(Vec::new());
            }
        }
    }

    /// Hands the table and its segment to the flusher and starts a new segment.
    fn rotate(&mut self, waiters: Vec<oneshot::Sender<Result<(), StoreError>>>) {
        if self.segment.records() == 0 && self.table.is_empty() {
            for waiter in waiters {
                let _ = waiter.send(Ok(()));
            }
            return;
        }
        let next_id = next_segment_id(self.segment.id());
        let next = match SegmentWriter::create(&self.wal_directory, next_id) {
            Ok(next) => next,
            Err(error) => {
                tracing::error!(%error, "cannot start a new write-ahead log segment");
                for waiter in waiters {
                    let _ = waiter.send(Err(StoreError::Wal(WalError::Io {
                        path: segment_path(&self.wal_directory, next_id),
                        source: std::io::Error::other(error.to_string()),
                    })));
                }
                return;
            }
        };
        let old = std::mem::replace(&mut self.segment, next);
        let job = FlushJob {
            segment_id: old.id(),
            segment_path: old.path().to_owned(),
            batches: std::mem::take(&mut self.table),
            bytes: std::mem::take(&mut self.table_bytes),
            waiters,
        };
        self.table_since = None;
        drop(old);
        if let Err(mpsc::SendError(job)) = self.flushes.send(job) {
            for waiter in job.waiters {
                let _ = waiter.send(Err(StoreError::Closed));
            }
        }
    }
}

type GroupEntry = (WalRecord, RecordBatch, Reservation, oneshot::Sender<Result<(), StoreError>>);

struct FlushLoop {
    jobs: mpsc::Receiver<FlushJob>,
    spans_directory: PathBuf,
    queue: Arc<Queue>,
    counters: Arc<StoreCounters>,
    shutting_down: Arc<AtomicBool>,
}

impl FlushLoop {
    fn run(self) {
        while let Ok(job) = self.jobs.recv() {
            let result = self.flush(&job);
            self.queue.release(job.bytes);
            for waiter in job.waiters {
                let _ = waiter.send(match &result {
                    Ok(()) => Ok(()),
                    Err(error) => Err(StoreError::Io {
                        path: job.segment_path.clone(),
                        source: std::io::Error::other(error.to_string()),
                    }),
                });
            }
        }
    }

    /// Writes the job's Parquet files, retrying on failure (a full disk may be freed): the log
    /// segment keeps the spans safe meanwhile, and is deleted only once the files are durable.
    fn flush(&self, job: &FlushJob) -> Result<(), StoreError> {
        let rows: usize = job.batches.iter().map(RecordBatch::num_rows).sum();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match write_partitioned(&job.batches, &self.spans_directory, &file_stem(job.segment_id), attempt > 1) {
                Ok(files) => {
                    self.counters.files_written.fetch_add(files.len() as u64, Ordering::Relaxed);
                    self.counters.spans_written.fetch_add(rows as u64, Ordering::Relaxed);
                    break;
                }
                Err(error) => {
                    self.counters.flush_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(%error, attempt, "flush to Parquet failed; the write-ahead log keeps the spans");
                    if attempt >= 3 && self.shutting_down.load(Ordering::Acquire) {
                        return Err(error.into());
                    }
                    std::thread::sleep(Duration::from_millis(500 * attempt.min(10)));
                }
            }
        }
        std::fs::remove_file(&job.segment_path)
            .map_err(|source| StoreError::Io { path: job.segment_path.clone(), source })?;
        if let Some(directory) = job.segment_path.parent() {
            sync_directory(directory).map_err(|source| StoreError::Io { path: directory.to_owned(), source })?;
        }
        Ok(())
    }
}

/// Replays every log segment left in `wal_directory` into Parquet, oldest first.
fn recover(config: &StoreConfig, spans_directory: &Path, wal_directory: &Path) -> Result<RecoveryReport, StoreError> {
    let mut report = RecoveryReport {
        temporary_files_removed: remove_temporary_files(spans_directory)
            .map_err(|source| StoreError::Io { path: spans_directory.to_owned(), source })?,
        ..RecoveryReport::default()
    };
    for id in list_segments(wal_directory)? {
        let path = segment_path(wal_directory, id);
        let contents = read_segment(&path)?;
        let mut batches = Vec::with_capacity(contents.records.len());
        for record in &contents.records {
            let context = BatchContext {
                receive_time_nano: record.receive_time_nano,
                source: record.source,
                gts_keys: config.gts_keys.clone(),
            };
            let spans = decode_logged_request(record.request.clone(), &context)
                .map_err(|error| StoreError::Replay { path: path.clone(), message: error.to_string() })?;
            report.spans += spans.accepted;
            batches.extend(spans.batch);
        }
        write_partitioned(&batches, spans_directory, &file_stem(id), true)?;
        report.segments += 1;
        report.requests += contents.records.len();
        match contents.stopped {
            Some((offset, reason)) if !reason.starts_with("truncated") => {
                let damaged = wal_directory.join("damaged");
                std::fs::create_dir_all(&damaged).map_err(|source| StoreError::Io { path: damaged.clone(), source })?;
                let target = damaged.join(path.file_name().unwrap_or_default());
                std::fs::rename(&path, &target).map_err(|source| StoreError::Io { path: path.clone(), source })?;
                report.damaged.push(format!("{}: stopped at byte {offset}: {reason}", target.display()));
            }
            stopped => {
                if let Some((offset, reason)) = stopped {
                    tracing::info!(segment = %path.display(), offset, reason, "unacknowledged torn write at the end of the log ignored");
                }
                std::fs::remove_file(&path).map_err(|source| StoreError::Io { path: path.clone(), source })?;
            }
        }
    }
    sync_directory(wal_directory).map_err(|source| StoreError::Io { path: wal_directory.to_owned(), source })?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp_messages::{ExportRequest, ResourceSpans, ScopeSpans, Span};
    use crate::parquet_files::count_rows;
    use crate::span_schema::Source;
    use bytes::Bytes;
    use prost::Message;

    fn logged_request(spans: usize, start: u64) -> WalRecord {
        let request = ExportRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: (0..spans)
                        .map(|i| Span {
                            trace_id: Bytes::from(vec![i as u8 + 1; 16]),
                            span_id: Bytes::from(vec![i as u8 + 1; 8]),
                            name: Bytes::from_static(b"replayed"),
                            start_time_unix_nano: start,
                            end_time_unix_nano: start + 1,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        WalRecord { source: Source::Grpc, receive_time_nano: 5, request: Bytes::from(request.encode_to_vec()) }
    }

    #[test]
    fn open_replays_a_left_over_log_into_parquet() {
        let data = tempfile::tempdir().unwrap();
        let wal = data.path().join(WAL_DIRECTORY);
        let mut segment = SegmentWriter::create(&wal, 42).unwrap();
        // Two hours apart: two partitions.
        segment.append_durably(&[logged_request(3, 1_000), logged_request(2, 7_300_000_000_000)]).unwrap();
        drop(segment);
        let (store, report) = SpanStore::open(StoreConfig::new(data.path())).unwrap();
        assert_eq!((report.segments, report.requests, report.spans), (1, 2, 5));
        assert!(report.damaged.is_empty());
        assert_eq!(count_rows(store.spans_directory()).unwrap(), 5);
        assert!(store.spans_directory().join("date=1970-01-01/hour=00/part-00000000000000000042.parquet").exists());
        assert!(store.spans_directory().join("date=1970-01-01/hour=02/part-00000000000000000042.parquet").exists());
        assert!(!segment_path(&wal, 42).exists());
    }

    #[test]
    fn a_replay_interrupted_after_some_renames_is_completed_not_duplicated() {
        let data = tempfile::tempdir().unwrap();
        let wal = data.path().join(WAL_DIRECTORY);
        let mut segment = SegmentWriter::create(&wal, 7).unwrap();
        segment.append_durably(&[logged_request(3, 1_000), logged_request(2, 7_300_000_000_000)]).unwrap();
        drop(segment);
        // A first replay that wrote every file, then "crashed" before deleting the segment.
        let batches: Vec<_> = read_segment(&segment_path(&wal, 7))
            .unwrap()
            .records
            .iter()
            .map(|record| {
                let context = BatchContext { receive_time_nano: 5, source: Source::Grpc, gts_keys: Default::default() };
                decode_logged_request(record.request.clone(), &context).unwrap().batch.unwrap()
            })
            .collect();
        let spans = data.path().join(SPANS_DIRECTORY);
        write_partitioned(&batches[..1], &spans, &file_stem(7), false).unwrap();
        let (store, _) = SpanStore::open(StoreConfig::new(data.path())).unwrap();
        assert_eq!(count_rows(store.spans_directory()).unwrap(), 5);
    }

    #[tokio::test]
    async fn appended_spans_reach_parquet_on_flush_and_the_segment_goes() {
        let data = tempfile::tempdir().unwrap();
        let (store, _) = SpanStore::open(StoreConfig::new(data.path())).unwrap();
        let record = logged_request(4, 1_000);
        let context = BatchContext { receive_time_nano: 5, source: Source::Grpc, gts_keys: Default::default() };
        let batch = decode_logged_request(record.request.clone(), &context).unwrap().batch.unwrap();
        let reservation = store.reserve(record.request.len()).unwrap();
        store.append(reservation, record, batch).await.unwrap();
        assert_eq!(count_rows(store.spans_directory()).unwrap(), 0);
        store.flush().await.unwrap();
        assert_eq!(count_rows(store.spans_directory()).unwrap(), 4);
        assert_eq!(list_segments(&data.path().join(WAL_DIRECTORY)).unwrap().len(), 1, "only the new, empty segment");
        assert_eq!(store.queue_usage().0, 0, "the queue is empty once flushed");
    }

    #[test]
    fn a_full_queue_refuses_at_once() {
        let data = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(data.path());
        config.queue_bytes = 1000;
        let (store, _) = SpanStore::open(config).unwrap();
        let first = store.reserve(600).unwrap();
        assert!(matches!(store.reserve(600), Err(StoreError::QueueFull { used: 600, limit: 1000 })));
        drop(first);
        // An empty queue always admits one request, however large, so big requests can't starve.
        let _big = store.reserve(5000).unwrap();
    }
}
