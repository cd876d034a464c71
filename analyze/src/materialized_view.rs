//! Where the rows of a materialised view are kept between the queries that read them.
//!
//! A view marked `-- materialize` is computed once and then read by several checks. Its rows used
//! to stay in memory outside the memory pool: on 100M spans under 1 GiB the views held 2.1 GiB
//! before the first check ran. Now a view's rows stay in memory, counted in the pool, while all
//! views together hold at most a quarter of the memory limit ([`VIEWS_SHARE_OF_LIMIT`]); a view
//! that would go past that is written to Arrow IPC streams in DataFusion's temporary directory
//! and read from there. The file, or the pool's reservation, lives as long as the view is
//! registered.
//!
//! A view on disk is one file per partition, each read batch by batch. DataFusion's own reader of
//! Arrow files splits a file into byte ranges and loads each range whole before decoding it: a
//! check that reads a view eight times (`broken_b3`, from `b3_received`) held eight copies of the
//! file at once, a 1.8 GiB spike on 100M spans under 1 GiB.

use std::borrow::Cow;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::CompressionType;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Constraints, Statistics};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, SpillFile, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;

use crate::owned_batches::with_own_buffers_past;
use crate::session::Analysis;

/// All materialised views together keep at most this fraction (1/n) of the memory limit in
/// memory. The rest of the pool stays for the queries that read them, and for the in-memory copy
/// of the spans (at most half).
pub const VIEWS_SHARE_OF_LIMIT: usize = 4;

/// A kept batch holding more than this beyond what its rows use is copied.
const WASTE_KEPT: usize = 64 << 10;

/// Where a view's rows ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In memory, counted in the pool.
    Memory,
    /// In Arrow IPC streams on the temporary disk.
    Disk,
    /// In memory, outside the pool: a cluster's plans carry the rows to its executors, which
    /// cannot read this process's temporary files.
    Plan,
}

/// The bytes that materialised views of one analysis hold in memory.
#[derive(Debug, Default)]
pub struct ViewMemory {
    held: Arc<AtomicUsize>,
}

/// A materialised view's table and what keeps its rows: the pool's reservation or the file.
struct HeldView {
    inner: Arc<dyn TableProvider>,
    _reservation: Option<MemoryReservation>,
    _files: Vec<Arc<dyn SpillFile>>,
    held: Arc<AtomicUsize>,
    bytes: usize,
}

impl std::fmt::Debug for HeldView {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("HeldView").field("bytes", &self.bytes).field("files", &self._files.len()).finish()
    }
}

impl Drop for HeldView {
    fn drop(&mut self) {
        self.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Keeps the rows of the view `name` where they fit (see the module's documentation) and returns
/// the table to register under its name, with where they went and their size in memory (before
/// any compression on disk).
pub async fn hold_view(
    analysis: &Analysis,
    name: &str,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<(Arc<dyn TableProvider>, Placement, usize)> {
    if !analysis.is_local() {
        let bytes = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        return Ok((Arc::new(MemTable::try_new(schema, vec![batches])?), Placement::Plan, bytes));
    }
    // Kept for a whole analysis: a batch that is a slice of a larger one (a join's or an
    // aggregation's output) is copied, so that it holds only its rows. On 10M spans the 138K rows
    // of `children_outside_parent_ids` held 208 MB as slices.
    let batches =
        batches.into_iter().map(|batch| with_own_buffers_past(batch, WASTE_KEPT)).collect::<Result<Vec<_>, _>>()?;
    let bytes: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
    let held = analysis.view_memory().held.clone();
    let budget = analysis.options().memory_limit / VIEWS_SHARE_OF_LIMIT;
    let pool = &analysis.context().runtime_env().memory_pool;
    let reservation = MemoryConsumer::new(format!("materialized view {name}")).register(pool);
    let within_budget = held.load(Ordering::Acquire).saturating_add(bytes) <= budget;
    if within_budget && reservation.try_grow(bytes).is_ok() {
        held.fetch_add(bytes, Ordering::AcqRel);
        let inner = Arc::new(MemTable::try_new(schema, vec![batches])?);
        let view = HeldView { inner, _reservation: Some(reservation), _files: Vec::new(), held, bytes };
        return Ok((Arc::new(view), Placement::Memory, bytes));
    }
    drop(reservation);
    let partitions = analysis.context().state().config().target_partitions().max(1);
    let files = write_to_disk(analysis, name, &schema, batches, partitions)?;
    let mut streams: Vec<Arc<dyn PartitionStream>> = Vec::with_capacity(files.len());
    for file in &files {
        let path = file.path().ok_or_else(|| {
            DataFusionError::Execution(format!("materialized view {name}: its file has no local path"))
        })?;
        streams.push(Arc::new(ViewFile { schema: schema.clone(), path: path.to_path_buf() }));
    }
    let inner = Arc::new(StreamingTable::try_new(schema, streams)?);
    let view = HeldView { inner, _reservation: None, _files: files, held, bytes: 0 };
    Ok((Arc::new(view), Placement::Disk, bytes))
}

/// Writes the batches to `partitions` new temporary files (Arrow IPC streams, LZ4-compressed like
/// DataFusion's spills), in turn, freeing each as it is written. Streams, not the IPC file format:
/// a dictionary column (the spans' naming columns) carries a dictionary per batch, and the file
/// format allows one per column for the whole file (on 100M spans under 1 GiB, `b3_received`
/// failed to go to disk so).
fn write_to_disk(
    analysis: &Analysis,
    name: &str,
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
    partitions: usize,
) -> Result<Vec<Arc<dyn SpillFile>>> {
    let disk_manager = &analysis.context().runtime_env().disk_manager;
    let options = IpcWriteOptions::default().try_with_compression(Some(CompressionType::LZ4_FRAME))?;
    let mut files = Vec::with_capacity(partitions);
    let mut writers = Vec::with_capacity(partitions);
    for partition in 0..partitions {
        let file = disk_manager.create_tmp_file(&format!("materialized view {name}, partition {partition}"))?;
        let writer = std::io::BufWriter::new(file.open_writer()?);
        writers.push(StreamWriter::try_new_with_options(writer, schema, options.clone())?);
        files.push(file);
    }
    for (index, batch) in batches.into_iter().enumerate() {
        writers[index % partitions].write(&batch)?;
    }
    for mut writer in writers {
        writer.finish()?;
        let mut inner =
            writer.into_inner()?.into_inner().map_err(|error| DataFusionError::IoError(error.into_error()))?;
        inner.finish()?;
    }
    Ok(files)
}

/// One partition of a view on disk: its file, read one batch at a time at each scan.
#[derive(Debug)]
struct ViewFile {
    schema: SchemaRef,
    path: PathBuf,
}

impl PartitionStream for ViewFile {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _context: Arc<TaskContext>) -> SendableRecordBatchStream {
        let path = self.path.clone();
        let opened = File::open(&path)
            .map_err(DataFusionError::IoError)
            .and_then(|file| StreamReader::try_new(std::io::BufReader::new(file), None).map_err(DataFusionError::from));
        let batches: std::pin::Pin<Box<dyn futures::Stream<Item = Result<RecordBatch>> + Send>> = match opened {
            Ok(reader) => Box::pin(futures::stream::iter(reader.map(|batch| batch.map_err(DataFusionError::from)))),
            Err(error) => Box::pin(futures::stream::iter([Err(DataFusionError::Context(
                format!("materialized view file {}", path.display()),
                Box::new(error),
            ))])),
        };
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}

#[async_trait]
impl TableProvider for HeldView {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.inner.constraints()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        self.inner.get_logical_plan()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner.scan(state, projection, filters, limit).await
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
    }
}

impl ViewMemory {
    /// Bytes held in memory by the materialised views now registered.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::View;
    use crate::findings::register_views;
    use crate::session::AnalysisOptions;
    use crate::snapshot::{integer, text};

    fn view(name: &str, rows: usize) -> View {
        View {
            name: name.to_owned(),
            // Rows of two columns, one of them text, so that the size grows with `rows`.
            sql: format!(
                "SELECT n, concat('row number ', CAST(n AS VARCHAR)) AS label FROM (SELECT unnest(range(0, {rows})) AS n)"
            ),
            origin: "test".to_owned(),
            materialize: true,
        }
    }

    async fn count_and_sum(analysis: &Analysis, name: &str) -> (i64, i64) {
        let batches = analysis.collect(&format!("SELECT count(*), sum(n) FROM {name}")).await.expect("query");
        (integer(&batches[0], 0, 0).unwrap().unwrap(), integer(&batches[0], 1, 0).unwrap().unwrap())
    }

    #[tokio::test]
    async fn views_stay_in_memory_within_their_share_of_the_pool_and_go_to_disk_past_it() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let mut options = AnalysisOptions::batch(directory.path());
        options.memory_limit = 64 << 20;
        let analysis = Analysis::open(options).await.expect("session");
        let pool = analysis.context().runtime_env().memory_pool.clone();
        let reserved_before = pool.reserved();

        register_views(&analysis, &[view("small_view", 1_000)]).await.expect("small view");
        let held = analysis.view_memory().held();
        assert!(held > 0, "the small view is held in memory");
        assert!(pool.reserved() >= reserved_before + held, "and counted in the pool");
        assert_eq!(count_and_sum(&analysis, "small_view").await, (1_000, 499_500));

        // About 40 MB of rows: past a quarter of 64 MiB.
        register_views(&analysis, &[view("large_view", 1_000_000)]).await.expect("large view");
        assert_eq!(analysis.view_memory().held(), held, "the large view is not in memory");
        assert_eq!(pool.reserved(), reserved_before + held);
        assert_eq!(count_and_sum(&analysis, "large_view").await, (1_000_000, 499_999_500_000));
        let labels = analysis
            .collect("SELECT label FROM large_view WHERE n = 123456")
            .await
            .expect("a row read back from the file");
        assert_eq!(text(&labels[0], 0, 0).unwrap().as_deref(), Some("row number 123456"));
        // One file per partition, each streamed anew by every scan: eight scans in one query, as
        // `broken_b3` reads `b3_received`.
        let partitions = analysis.context().state().config().target_partitions();
        let table = analysis.context().table_provider("large_view").await.expect("table");
        assert!(format!("{table:?}").contains(&format!("files: {partitions}")), "{table:?}");
        let eight = vec!["SELECT n FROM large_view"; 8].join(" UNION ALL ");
        let counted = analysis.collect(&format!("SELECT count(*), sum(n) FROM ({eight})")).await.expect("eight scans");
        assert_eq!(integer(&counted[0], 0, 0).unwrap(), Some(8_000_000));
        assert_eq!(integer(&counted[0], 1, 0).unwrap(), Some(8 * 499_999_500_000));

        // A dictionary column with a dictionary of its own in every batch, as the spans' naming
        // columns read from Parquet: its rows go to disk and come back.
        let named = View {
            sql: "SELECT n, arrow_cast(concat('name ', CAST(n AS VARCHAR)), 'Dictionary(Int32, Utf8)') AS label \
                  FROM (SELECT unnest(range(0, 1000000)) AS n)"
                .to_owned(),
            ..view("named_view", 0)
        };
        register_views(&analysis, &[named]).await.expect("a view of dictionaries on disk");
        assert_eq!(analysis.view_memory().held(), held, "the view of dictionaries is not in memory");
        assert_eq!(count_and_sum(&analysis, "named_view").await, (1_000_000, 499_999_500_000));
        let labels = analysis
            .collect("SELECT CAST(label AS VARCHAR) FROM named_view WHERE n = 654321")
            .await
            .expect("a row read back from the file");
        assert_eq!(text(&labels[0], 0, 0).unwrap().as_deref(), Some("name 654321"));

        // Replacing the views frees what they held.
        let empty = |name: &str| View { sql: "SELECT 1 AS n WHERE FALSE".to_owned(), ..view(name, 0) };
        register_views(&analysis, &[empty("small_view"), empty("large_view"), empty("named_view")])
            .await
            .expect("replaced");
        assert_eq!(analysis.view_memory().held(), 0);
        assert_eq!(pool.reserved(), reserved_before);
    }
}
