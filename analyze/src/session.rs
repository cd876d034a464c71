//! The DataFusion session over a data directory: the span table, the analysis window, and the
//! judged and pending traces.
//!
//! Tables and views registered:
//! - `all_spans`: every span file (`<data>/spans/`, hive partitions `date`, `hour`);
//! - `window_spans`: the spans that started in the window (partitions outside it are pruned);
//! - `pending_traces`: traces whose newest span arrived less than the settle time ago (found once,
//!   when the analysis opens, and kept in memory);
//! - `spans`: the spans of judged traces: what the checks read.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::SpillCompression;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::AnalyzeError;
use crate::join_fallback::collect_within_memory;
use crate::linked_spans::LinkedSpansFromLinks;
use crate::materialized_view::ViewMemory;
use crate::owned_batches::rows_memory_size;
use crate::repartition_memory::{RepartitionInMemory, ReservedPeaks};
use crate::span_cache::{SPANS, SpanTable};
use crate::udfs::register_udfs;

/// Default memory limit of a query before it spills to disk.
pub const DEFAULT_MEMORY_LIMIT: usize = 2 << 30;
/// Default settle time: a trace whose newest span is younger is pending, not judged.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(120);

/// What to analyse, and with what resources.
#[derive(Debug, Clone)]
pub struct AnalysisOptions {
    /// The data directory (`spans/` under it).
    pub data_directory: PathBuf,
    /// Spans that started at or after this time (ns since the epoch), if set.
    pub since_nano: Option<i64>,
    /// ... and before this time, if set.
    pub until_nano: Option<i64>,
    /// Settle time for live data; `None` judges every trace (batch analysis of dumps).
    pub settle: Option<Duration>,
    /// "Now", ns since the epoch (the settle time counts back from it).
    pub now_nano: i64,
    /// Memory limit of the session; past it, operators spill to disk.
    pub memory_limit: usize,
    /// How far a synchronous child may outlast its parent before `premature_end` reports it.
    pub premature_end_tolerance: Duration,
    /// Called once an analysis learns that its spans do not fit in memory and its checks will read
    /// the files: the run is then bound by its memory limit rather than its speed (the binary
    /// makes its allocator give freed memory back sooner).
    pub when_spans_do_not_fit: Option<fn()>,
}

impl AnalysisOptions {
    /// Judge every span of a data directory (batch analysis).
    pub fn batch(data_directory: impl Into<PathBuf>) -> AnalysisOptions {
        AnalysisOptions {
            data_directory: data_directory.into(),
            since_nano: None,
            until_nano: None,
            settle: None,
            now_nano: now_nano(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            premature_end_tolerance: Duration::from_millis(1),
            when_spans_do_not_fit: None,
        }
    }
}

/// The current time in ns since the epoch.
pub fn now_nano() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// How many of the largest memory consumers an out-of-memory error names.
const MEMORY_CONSUMERS_NAMED: NonZeroUsize = NonZeroUsize::new(5).expect("non-zero");

/// What one sorted run read back from disk is assumed to hold in memory while merged: a batch of
/// 8,192 span rows and the same again for the merge's own buffer.
const SPILL_MERGE_STREAM_BYTES: usize = 8 << 20;

/// How many spilled runs one merge pass of a sort reads at once. DataFusion's merge takes all the
/// memory it can get for its runs (without a limit, one partition's merge of 200 runs held the
/// whole pool of 1 GiB on 100M spans, and the other partition's sort failed). Bounded to a quarter
/// of a partition's share of the pool; more runs are merged in more passes.
pub fn spill_merge_fan_in(memory_limit: usize, partitions: usize) -> usize {
    (memory_limit / partitions.max(1) / 4 / SPILL_MERGE_STREAM_BYTES).clamp(4, 128)
}

/// An open analysis session.
pub struct Analysis {
    context: SessionContext,
    options: AnalysisOptions,
    replanned_queries: AtomicUsize,
    /// Whether the session executes in this process (not on a cluster).
    local: bool,
    /// The table `spans`, which can keep columns in memory (local sessions only: a cluster's
    /// plans are serialised, and read the files).
    span_table: Option<Arc<SpanTable>>,
    /// What the materialised views hold in memory.
    view_memory: ViewMemory,
    /// The memory pool of a local session, for its high-water marks.
    memory_pool: Option<Arc<RepartitionInMemory>>,
}

/// Spill files are compressed with LZ4 unless this variable says otherwise: 100M spans under
/// 1 GiB wrote up to 25.7 GB of uncompressed spill files at once. On 10M spans under 1 GiB, LZ4
/// took the peak of spill files from 1.5 to 1.9 GB down to 1.0 GB, in the same time (32.6 to
/// 34.4 s both ways; docs/benchmarks.md, session 17).
const SPILL_COMPRESSION_VARIABLE: &str = "DATAFUSION_EXECUTION_SPILL_COMPRESSION";

/// Overrides [`single_partition_join_bytes`] when set.
const SINGLE_PARTITION_JOIN_VARIABLE: &str = "DATAFUSION_OPTIMIZER_HASH_JOIN_SINGLE_PARTITION_THRESHOLD";

/// The largest build side (in estimated bytes) that a hash join hashes once for all partitions
/// instead of repartitioning both sides by the key. DataFusion's default, 1 MB, repartitioned all
/// 10M spans to meet a materialised view of 138K rows (10 MB); hashing such a view once, the spans
/// are read where they are. 16 MiB, and at most a sixteenth of the memory limit, so that a small
/// limit does not hold one large table where partitions would hold halves. Joins of every span
/// with every span are estimated far above it and stay partitioned.
pub fn single_partition_join_bytes(memory_limit: usize) -> usize {
    (16 << 20).min(memory_limit / 16)
}

impl Analysis {
    /// Opens a local session over the data directory: all cores, `memory_limit` before spilling.
    pub async fn open(options: AnalysisOptions) -> Result<Analysis, AnalyzeError> {
        // Tracked, so that running out of memory names the operators holding it.
        let pool = TrackConsumersPool::new(FairSpillPool::new(options.memory_limit), MEMORY_CONSUMERS_NAMED);
        // Repartitions get a budget of their own: their spilling can stop a query for good
        // (DataFusion 55).
        let pool = Arc::new(RepartitionInMemory::new(Arc::new(pool), options.memory_limit));
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(2);
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(pool.clone())
            .with_max_spill_merge_fan_in(spill_merge_fan_in(options.memory_limit, cores))
            .build_arc()?;
        // DataFusion's own options may be tuned through `DATAFUSION_*` environment variables
        // (`DATAFUSION_EXECUTION_BATCH_SIZE=4096`); the partitions follow the cores.
        let mut config = SessionConfig::from_env()?.with_target_partitions(cores).with_information_schema(true);
        if std::env::var_os(SPILL_COMPRESSION_VARIABLE).is_none() {
            config.options_mut().execution.spill_compression = SpillCompression::Lz4Frame;
        }
        if std::env::var_os(SINGLE_PARTITION_JOIN_VARIABLE).is_none() {
            config.options_mut().optimizer.hash_join_single_partition_threshold =
                single_partition_join_bytes(options.memory_limit);
        }
        let mut analysis =
            Analysis::open_with(SessionContext::new_with_config_rt(config, runtime), options, true).await?;
        analysis.memory_pool = Some(pool);
        Ok(analysis)
    }

    /// Opens the analysis on a session made elsewhere (a Ballista cluster's client session, say):
    /// registers the helper functions, the span table and the views on it. The data directory
    /// must be readable wherever that session executes its plans.
    pub async fn open_on(context: SessionContext, options: AnalysisOptions) -> Result<Analysis, AnalyzeError> {
        Analysis::open_with(context, options, false).await
    }

    async fn open_with(
        context: SessionContext,
        options: AnalysisOptions,
        local: bool,
    ) -> Result<Analysis, AnalyzeError> {
        register_udfs(&context);
        register_span_table(&context, &options.data_directory).await?;
        let mut analysis = Analysis {
            context,
            options,
            replanned_queries: AtomicUsize::new(0),
            local,
            span_table: None,
            view_memory: ViewMemory::default(),
            memory_pool: None,
        };
        analysis.register_views().await?;
        if local {
            let stored = analysis.context.table_provider(SPANS).await?;
            let table = Arc::new(SpanTable::new(stored));
            analysis.context.deregister_table(SPANS)?;
            analysis.context.register_table(SPANS, table.clone())?;
            analysis.span_table = Some(table);
        }
        Ok(analysis)
    }

    /// The DataFusion session.
    pub fn context(&self) -> &SessionContext {
        &self.context
    }

    /// The table `spans` of a local session.
    pub fn span_table(&self) -> Option<Arc<SpanTable>> {
        self.span_table.clone()
    }

    /// Whether the session executes its plans in this process (not on a cluster).
    pub fn is_local(&self) -> bool {
        self.local
    }

    /// What the materialised views of this analysis hold in memory.
    pub fn view_memory(&self) -> &ViewMemory {
        &self.view_memory
    }

    /// The options the session was opened with.
    pub fn options(&self) -> &AnalysisOptions {
        &self.options
    }

    /// Runs a query of the analysis and collects its result. A query whose hash joins do not fit
    /// in the memory limit runs again with sort-merge joins, which spill ([`join_fallback`]).
    pub async fn collect(&self, sql: &str) -> Result<Vec<RecordBatch>, DataFusionError> {
        // Queries of an analysis run one after another: the marks taken now start this one's.
        let _ = self.reserved_peaks();
        let collected = collect_within_memory(&self.context, sql, self.local).await?;
        self.replanned_queries.fetch_add(usize::from(collected.replanned), Ordering::Relaxed);
        if let Some(peaks) = self.reserved_peaks() {
            // The rows' own bytes: a result sliced from one large batch would count it per slice.
            let result: usize = collected.batches.iter().map(rows_memory_size).sum();
            tracing::debug!(pool = peaks.pool, repartitions = peaks.repartitions, result, "query memory at most");
        }
        Ok(collected.batches)
    }

    /// The most memory the pool and the repartitions held at once since the last call (local
    /// sessions; a cluster's memory is its executors').
    pub fn reserved_peaks(&self) -> Option<ReservedPeaks> {
        self.memory_pool.as_ref().map(|pool| pool.take_peaks())
    }

    /// How many queries of this analysis ran out of memory with hash joins and ran again with
    /// sort-merge joins.
    pub fn replanned_queries(&self) -> usize {
        self.replanned_queries.load(Ordering::Relaxed)
    }

    async fn register_views(&self) -> Result<(), AnalyzeError> {
        let mut window = vec!["TRUE".to_owned()];
        if let Some(since) = self.options.since_nano {
            window.push(format!("CAST(start_time AS BIGINT) >= {since}"));
            window.push(format!("date >= '{}'", date_of(since)));
        }
        if let Some(until) = self.options.until_nano {
            window.push(format!("CAST(start_time AS BIGINT) < {until}"));
            window.push(format!("date <= '{}'", date_of(until)));
        }
        let window = window.join(" AND ");
        // A cluster's executors read the files without the adapter that derives `linked_spans` for
        // files written before schema version 5 (`crate::linked_spans`): there it is derived here,
        // at the cost of decoding `links` wherever the checks read it.
        let columns = match self.local {
            true => "*",
            false => "* REPLACE (coalesce(linked_spans, linked_spans_of_links(links)) AS linked_spans)",
        };
        self.execute(&format!("CREATE VIEW window_spans AS SELECT {columns} FROM all_spans WHERE {window}")).await?;
        self.execute(&format!(
            "CREATE VIEW settings AS SELECT CAST({} AS BIGINT) AS premature_end_tolerance_nano",
            self.options.premature_end_tolerance.as_nanos()
        ))
        .await?;
        let Some(settle) = self.options.settle else {
            // Batch analysis: every trace is judged.
            self.execute("CREATE VIEW pending_traces AS SELECT trace_id FROM window_spans WHERE FALSE").await?;
            return self.execute("CREATE VIEW spans AS SELECT * FROM window_spans").await;
        };
        // The pending traces are found once, now, and kept: a trace is pending when one of its
        // spans arrived after the settle threshold, so a filter on one column finds them without
        // grouping every span by trace. The spans that arrived after `now` are left out too, so
        // that every query of the analysis sees the same traces, however long it runs. (As a view
        // joined into `spans`, the pending traces cost `tracegap check` on 10M spans a grouping
        // and a hash table of every span in every query: the in-memory copy took 12.4 s instead of
        // 2.7 s, and 10.4 GB.)
        let (now, threshold) = (self.options.now_nano, self.options.now_nano - settle.as_nanos() as i64);
        let pending_query = format!(
            "SELECT DISTINCT trace_id FROM window_spans \
             WHERE trace_id IS NOT NULL AND CAST(receive_time AS BIGINT) > {threshold}"
        );
        let frame = self.context.sql(&pending_query).await?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let pending = self.collect(&pending_query).await?;
        let any_pending = pending.iter().any(|batch| batch.num_rows() > 0);
        self.context.register_table("pending_traces", Arc::new(MemTable::try_new(schema, vec![pending])?))?;
        let arrived = format!("(receive_time IS NULL OR CAST(receive_time AS BIGINT) <= {now})");
        self.execute(&match any_pending {
            // The pending traces are the small side: the hash table is theirs, not every span's.
            true => format!(
                "CREATE VIEW spans AS SELECT w.* FROM window_spans w \
                 LEFT ANTI JOIN pending_traces pending ON pending.trace_id = w.trace_id WHERE {arrived}"
            ),
            false => format!("CREATE VIEW spans AS SELECT * FROM window_spans WHERE {arrived}"),
        })
        .await
    }

    async fn execute(&self, statement: &str) -> Result<(), AnalyzeError> {
        self.context.sql(statement).await?.collect().await?;
        Ok(())
    }
}

/// `YYYY-MM-DD` of a time in ns since the epoch, as the partition directories name it.
fn date_of(nanos: i64) -> String {
    let hour = nanos.div_euclid(3_600_000_000_000);
    let directory = tracegap_ingest::parquet_files::partition_directory(hour);
    let first = directory.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
    first.trim_start_matches("date=").to_owned()
}

/// The object store URL of a data location given as text (`s3://bucket/prefix`), if it is one;
/// anything else is a local path.
pub fn object_store_url(data_directory: &Path) -> Option<String> {
    let text = data_directory.to_str()?;
    let (scheme, rest) = text.split_once("://")?;
    let is_scheme = !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    (is_scheme && scheme != "file" && !rest.is_empty()).then(|| text.trim_end_matches('/').to_owned())
}

async fn register_span_table(context: &SessionContext, data_directory: &Path) -> Result<(), AnalyzeError> {
    let schema = tracegap_ingest::span_schema();
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(vec![("date".into(), DataType::Utf8), ("hour".into(), DataType::Utf8)]);
    if let Some(url) = object_store_url(data_directory) {
        // Listed by the session's object store at planning time; no files is an empty table.
        let url = ListingTableUrl::parse(format!("{url}/{}/", tracegap_ingest::parquet_files::SPANS_DIRECTORY))?;
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema)
            .with_expr_adapter_factory(Arc::new(LinkedSpansFromLinks));
        context.register_table("all_spans", Arc::new(ListingTable::try_new(config)?))?;
        return Ok(());
    }
    let spans = data_directory.join(tracegap_ingest::parquet_files::SPANS_DIRECTORY);
    let has_files =
        tracegap_ingest::parquet_files::list_span_files(&spans).map(|files| !files.is_empty()).unwrap_or(false);
    if !has_files {
        // An empty table with the same columns, partition columns included.
        let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
        fields.push(Arc::new(datafusion::arrow::datatypes::Field::new("date", DataType::Utf8, true)));
        fields.push(Arc::new(datafusion::arrow::datatypes::Field::new("hour", DataType::Utf8, true)));
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
        context.register_table("all_spans", Arc::new(MemTable::try_new(schema, vec![vec![]])?))?;
        return Ok(());
    }
    let url = ListingTableUrl::parse(format!("{}/", spans.canonicalize().unwrap_or(spans.clone()).display()))?;
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema)
        .with_expr_adapter_factory(Arc::new(LinkedSpansFromLinks));
    context.register_table("all_spans", Arc::new(ListingTable::try_new(config)?))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_store_urls_are_told_from_paths() {
        assert_eq!(object_store_url(Path::new("s3://traces/prod/")), Some("s3://traces/prod".to_owned()));
        assert_eq!(object_store_url(Path::new("gs://b")), Some("gs://b".to_owned()));
        for path in ["/var/lib/tracegap", "data", "file:///var/lib/tracegap", "weird://", "a b://x"] {
            assert_eq!(object_store_url(Path::new(path)), None, "{path}");
        }
    }

    #[tokio::test]
    async fn merges_of_spilled_runs_are_bounded_by_the_memory_limit() {
        assert_eq!(spill_merge_fan_in(1 << 30, 2), 16);
        assert_eq!(spill_merge_fan_in(64 << 20, 2), 4, "at least a few runs per pass");
        assert_eq!(spill_merge_fan_in(64 << 30, 2), 128, "never unbounded");
        let directory = tempfile::tempdir().expect("temporary directory");
        let mut options = AnalysisOptions::batch(directory.path());
        options.memory_limit = 1 << 30;
        let analysis = Analysis::open(options).await.expect("session");
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(2);
        assert_eq!(
            analysis.context().runtime_env().disk_manager.max_spill_merge_fan_in(),
            spill_merge_fan_in(1 << 30, cores)
        );
    }

    #[tokio::test]
    async fn spill_files_are_compressed_unless_the_user_says_otherwise() {
        if std::env::var_os(SPILL_COMPRESSION_VARIABLE).is_some() {
            panic!("{SPILL_COMPRESSION_VARIABLE} is set: the user's choice is kept, unset it to run this test");
        }
        let directory = tempfile::tempdir().expect("temporary directory");
        let analysis = Analysis::open(AnalysisOptions::batch(directory.path())).await.expect("session");
        let state = analysis.context().state();
        assert_eq!(state.config().options().execution.spill_compression, SpillCompression::Lz4Frame);
    }

    #[tokio::test]
    async fn a_join_with_a_table_of_a_few_megabytes_hashes_it_once() {
        assert_eq!(single_partition_join_bytes(2 << 30), 16 << 20);
        assert_eq!(single_partition_join_bytes(64 << 20), 4 << 20, "a small limit, a smaller table");
        let directory = tempfile::tempdir().expect("temporary directory");
        let analysis = Analysis::open(AnalysisOptions::batch(directory.path())).await.expect("session");
        let context = analysis.context();
        // 200K rows of two 64-bit ids (3.2 MB) against 2M: past DataFusion's own 1 MB threshold.
        let ids = |rows: u64| {
            let id = Arc::new(datafusion::arrow::array::UInt64Array::from_iter_values(0..rows));
            RecordBatch::try_from_iter([("id", id.clone() as _), ("other", id as _)]).expect("batch")
        };
        context.register_batch("pairs", ids(200_000)).expect("pairs");
        context.register_batch("every_span", ids(2_000_000)).expect("spans");
        let plan = analysis
            .collect("EXPLAIN SELECT count(*) FROM pairs p JOIN every_span s ON s.id = p.id AND s.other = p.other")
            .await
            .expect("explain");
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&plan).expect("plan").to_string();
        assert!(text.contains("mode=CollectLeft"), "the small side hashed once:\n{text}");
        assert!(!text.contains("RepartitionExec: partitioning=Hash"), "neither side repartitioned:\n{text}");
    }

    /// A span batch of one SERVER span of `service`, as ingest builds it.
    fn one_span(service: &str, span_id: &str) -> RecordBatch {
        let body = format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},
            "scopeSpans":[{{"spans":[{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"{span_id}",
            "name":"GET /cart","kind":2,"startTimeUnixNano":"1764000000000000000","endTimeUnixNano":"1764000000100000000"}}]}}]}}]}}"#
        );
        crate::test_spans::span_batch(body)
    }

    #[tokio::test]
    async fn files_with_the_naming_columns_as_plain_text_read_as_dictionaries() {
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::{Field, Schema};
        let directory = tempfile::tempdir().expect("temporary directory");
        let spans = directory.path().join(tracegap_ingest::parquet_files::SPANS_DIRECTORY);
        tracegap_ingest::parquet_files::write_partitioned(&[one_span("new", "00000000000000a1")], &spans, "new", false)
            .expect("a file of schema version 3");
        // Schema version 2: the same columns, the naming ones as plain text.
        let batch = one_span("old", "00000000000000a2");
        let mut fields = Vec::new();
        let mut columns = Vec::new();
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            if tracegap_ingest::span_schema::NAMING_COLUMNS.contains(&field.name().as_str()) {
                fields.push(Field::new(field.name(), DataType::Utf8, field.is_nullable()));
                columns.push(datafusion::arrow::compute::cast(column, &DataType::Utf8).expect("text"));
            } else {
                fields.push(field.as_ref().clone());
                columns.push(column.clone());
            }
        }
        let old = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("old batch");
        let hour = spans.join(tracegap_ingest::parquet_files::partition_directory(1_764_000_000 / 3600));
        let file = std::fs::File::create(hour.join("old.parquet")).expect("old file");
        let mut writer = datafusion::parquet::arrow::ArrowWriter::try_new(file, old.schema(), None).expect("writer");
        writer.write(&old).expect("write");
        writer.close().expect("close");

        let analysis = Analysis::open(AnalysisOptions::batch(directory.path())).await.expect("session");
        let batches = analysis
            .collect("SELECT CAST(service_name AS VARCHAR), arrow_typeof(service_name), name = 'GET /cart' FROM spans ORDER BY 1")
            .await
            .expect("both files read");
        let rows: Vec<(String, String, bool)> = batches
            .iter()
            .flat_map(|batch| {
                // (`VARCHAR` is a string view to DataFusion 55.)
                let text = |column: usize| {
                    datafusion::arrow::compute::cast(batch.column(column), &DataType::Utf8).expect("text")
                };
                let (service, service_type) = (text(0), text(1));
                let (service, service_type) = (service.as_string::<i32>(), service_type.as_string::<i32>());
                let named = batch.column(2).as_boolean();
                (0..batch.num_rows())
                    .map(|row| (service.value(row).to_owned(), service_type.value(row).to_owned(), named.value(row)))
                    .collect::<Vec<_>>()
            })
            .collect();
        let dictionary = "Dictionary(Int32, Utf8)".to_owned();
        assert_eq!(rows, [("new".to_owned(), dictionary.clone(), true), ("old".to_owned(), dictionary, true)]);
    }

    #[tokio::test]
    async fn a_query_leaves_the_most_memory_it_reserved_for_the_debug_log() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let analysis = Analysis::open(AnalysisOptions::batch(directory.path())).await.expect("session");
        let grouped = "SELECT v % 1000 AS g, count(DISTINCT v) AS n FROM generate_series(1, 200000) AS s(v) GROUP BY g";
        let batches = analysis.collect(grouped).await.expect("query");
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1000);
        // `collect` took the query's marks; what a query reserved is freed when it ends.
        let after = analysis.reserved_peaks().expect("a local session has a pool");
        assert_eq!(after.pool, 0, "nothing held once the query ended");
        // Run outside `collect`, whose own log takes the marks: they are this query's.
        let frame = analysis.context().sql(grouped).await.expect("plan");
        let _ = frame.collect().await.expect("rows");
        let peaks = analysis.reserved_peaks().expect("marks");
        assert!(peaks.pool > 0, "the aggregation reserved memory in the pool: {peaks:?}");
    }
}
