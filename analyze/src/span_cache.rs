//! The span table the checks read, with an optional in-memory copy of the columns they read.
//!
//! Each check scans `spans` again: on 10M spans, decoding the same Parquet columns ten times was a
//! fifth of the suite's CPU time. [`keep_spans_in_memory`] reads, once, the columns that the
//! catalogue's checks and views read (found in their optimised plans, so a check added with
//! `--queries` is covered too) into memory; scans of `spans` asking only for those columns then read
//! memory, any other scan (a column outside the copy, `SELECT *`) still reads the Parquet files.
//!
//! The copy is accounted in the session's memory pool and never takes more than half of it: with a
//! data window too large for that, the checks read Parquet as before. It is dropped with the
//! [`SpanCache`] guard, so follow-up queries (a trace's spans, the SQL box) hold nothing.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use futures::StreamExt;

use crate::AnalyzeError;
use crate::check_catalog::Catalog;
use crate::findings::{finding_query, register_views};
use crate::session::Analysis;
use crate::snapshot::integer;

/// The name the span table is registered under.
pub const SPANS: &str = "spans";

/// Partitions the copy reads in, for each partition of the queries.
const READ_PARTITIONS_PER_PARTITION: usize = 2;

/// The table `spans`: the judged spans of the window as stored, and, while a [`SpanCache`] is held,
/// a copy of some of their columns in memory.
#[derive(Debug)]
pub struct SpanTable {
    stored: Arc<dyn TableProvider>,
    copy: RwLock<Option<Arc<ColumnCopy>>>,
}

#[derive(Debug)]
struct ColumnCopy {
    table: MemTable,
    /// Held for as long as the copy lives, so the pool knows what it takes.
    _reservations: Vec<MemoryReservation>,
}

impl SpanTable {
    /// Wraps the stored spans (the view over the Parquet files).
    pub fn new(stored: Arc<dyn TableProvider>) -> SpanTable {
        SpanTable { stored, copy: RwLock::new(None) }
    }

    fn copy(&self) -> Option<Arc<ColumnCopy>> {
        self.copy.read().ok().and_then(|copy| copy.clone())
    }

    fn set_copy(&self, copy: Option<Arc<ColumnCopy>>) {
        if let Ok(mut slot) = self.copy.write() {
            *slot = copy;
        }
    }

    /// The copy's column indices for a projection of the stored columns, when it holds them all.
    fn copied_projection(&self, copy: &ColumnCopy, projection: Option<&Vec<usize>>) -> Option<Vec<usize>> {
        let stored = self.stored.schema();
        let copied = copy.table.schema();
        projection?.iter().map(|&index| copied.index_of(stored.field(index).name()).ok()).collect()
    }
}

#[async_trait]
impl TableProvider for SpanTable {
    fn schema(&self) -> SchemaRef {
        self.stored.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        // Not inlined into the queries that read it: its scans choose between memory and files.
        None
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // The stored view applies them (pruning partitions); the copy does not, so they are kept
        // above the scan too.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if let Some(copy) = self.copy() {
            if let Some(copied) = self.copied_projection(&copy, projection) {
                return copy.table.scan(state, Some(&copied), &[], limit).await;
            }
        }
        self.stored.scan(state, projection, filters, limit).await
    }
}

/// While held, scans of `spans` that ask only for the copied columns read memory. Dropping it
/// frees the copy and its share of the memory pool.
#[derive(Debug)]
pub struct SpanCache {
    table: Option<Arc<SpanTable>>,
    /// Bytes held in memory (0 when the spans were not copied).
    pub bytes: usize,
    /// Columns copied.
    pub columns: Vec<String>,
}

impl SpanCache {
    /// Whether the spans are in memory.
    pub fn is_active(&self) -> bool {
        self.table.is_some()
    }
}

impl Drop for SpanCache {
    fn drop(&mut self) {
        if let Some(table) = &self.table {
            table.set_copy(None);
        }
    }
}

/// The columns of `spans` that the catalogue's checks and views read, from their optimised plans.
/// Registers the views (not materialised) to plan the checks.
pub async fn columns_read(analysis: &Analysis, catalog: &Catalog) -> Result<BTreeSet<String>, AnalyzeError> {
    let views: Vec<_> = catalog.views.iter().cloned().map(|view| crate::View { materialize: false, ..view }).collect();
    register_views(analysis, &views).await?;
    let queries = catalog.views.iter().map(|view| view.sql.clone());
    let queries = queries.chain(catalog.checks.iter().map(|check| finding_query(&check.sql)));
    // Planned side by side: each plan is optimised on one core, and the copy waits for them all
    // (on 10M spans, 0.16 s from the start of the copy step to the first read against 0.25 s).
    let plans = queries.map(|sql| {
        let context = analysis.context().clone();
        tokio::spawn(async move { context.sql(&sql).await?.into_optimized_plan() })
    });
    let mut columns = BTreeSet::new();
    for plan in
        futures::future::try_join_all(plans).await.map_err(|error| DataFusionError::External(Box::new(error)))?
    {
        plan?.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                if scan.table_name.table() == SPANS {
                    columns.extend(scan.projected_schema.fields().iter().map(|field| field.name().clone()));
                    for filter in &scan.filters {
                        columns.extend(filter.column_refs().into_iter().map(|column| column.name.clone()));
                    }
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
    }
    Ok(columns)
}

/// Copies the columns of `spans` that `catalog` reads into memory, if the copy fits in half the
/// session's memory limit; otherwise (or on a cluster) returns an inactive guard, and the checks
/// read the files.
pub async fn keep_spans_in_memory(analysis: &Analysis, catalog: &Catalog) -> Result<SpanCache, AnalyzeError> {
    keep_spans_in_memory_up_to(analysis, catalog, analysis.options().memory_limit / 2).await
}

/// As [`keep_spans_in_memory`], with the copy's budget given in bytes.
pub async fn keep_spans_in_memory_up_to(
    analysis: &Analysis,
    catalog: &Catalog,
    budget: usize,
) -> Result<SpanCache, AnalyzeError> {
    let inactive = |columns: Vec<String>| SpanCache { table: None, bytes: 0, columns };
    let Some(table) = analysis.span_table() else {
        return Ok(inactive(Vec::new()));
    };
    let columns: Vec<String> = columns_read(analysis, catalog).await?.into_iter().collect();
    if columns.is_empty() {
        return Ok(inactive(columns));
    }
    let started = std::time::Instant::now();
    // Without a time window every stored span is read: their count, from the Parquet footers,
    // tells from the first batch whether the copy can fit.
    let unbounded = analysis.options().since_nano.is_none() && analysis.options().until_nano.is_none();
    let stored_rows = if unbounded { stored_rows(analysis).await? } else { 0 };
    let list = columns.iter().map(|name| format!("\"{}\"", name.replace('"', "\"\""))).collect::<Vec<_>>().join(", ");
    let frame = analysis.context().sql(&format!("SELECT {list} FROM {SPANS}")).await?;
    let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
    // Read in twice as many partitions as the queries use: a partition waiting for its file's
    // bytes leaves its core to another that decodes (on 10M spans the copy took 2.11-2.19 s
    // against 2.32-2.37 s, three interleaved runs, session 31). Joined back below, so the queries
    // see the session's partition count.
    let partitions = analysis.context().state().config().target_partitions().max(1);
    let mut reading = analysis.context().state();
    reading.config_mut().options_mut().execution.target_partitions = partitions * READ_PARTITIONS_PER_PARTITION;
    let plan = reading.create_physical_plan(frame.logical_plan()).await?;
    let task = Arc::new(TaskContext::from(&reading));
    let streams = (0..plan.properties().output_partitioning().partition_count())
        .map(|partition| plan.execute(partition, task.clone()))
        .collect::<Result<Vec<_>>>()?;
    let pool = analysis.context().runtime_env().memory_pool.clone();
    let held = Arc::new(AtomicUsize::new(0));
    // One task per partition, so that decoding uses every core.
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            let reservation = MemoryConsumer::new("span cache").register(&pool);
            let held = held.clone();
            tokio::spawn(async move {
                let mut batches = Vec::new();
                let mut projected_once = false;
                while let Some(batch) = stream.next().await {
                    let batch: RecordBatch = batch?;
                    let bytes = batch.get_array_memory_size();
                    let total = held.fetch_add(bytes, Ordering::Relaxed) + bytes;
                    // The first full batch tells the size of a row: give up at once if all rows will
                    // not fit. (Small batches, the ends of files and row groups, carry fixed overheads.)
                    let projected = match batch.num_rows() {
                        rows if !projected_once && rows >= 1024 => {
                            projected_once = true;
                            stored_rows.saturating_mul(bytes / rows)
                        }
                        _ => 0,
                    };
                    if total > budget || projected > budget || reservation.try_grow(bytes).is_err() {
                        return Ok::<_, DataFusionError>(None);
                    }
                    batches.push(batch);
                }
                Ok(Some((batches, reservation)))
            })
        })
        .collect();
    let mut copied: Vec<Vec<RecordBatch>> = vec![Vec::new(); partitions];
    let mut reservations = Vec::new();
    let mut fits = true;
    for (index, task) in tasks.into_iter().enumerate() {
        match task.await.map_err(|error| DataFusionError::External(Box::new(error)))?? {
            Some((batches, reservation)) => {
                copied[index % partitions].extend(batches);
                reservations.push(reservation);
            }
            None => fits = false,
        }
    }
    let bytes = held.load(Ordering::Relaxed);
    if !fits {
        tracing::debug!(
            budget,
            columns = columns.join(","),
            bytes,
            seconds = started.elapsed().as_secs_f64(),
            "spans do not fit in memory; checks read files"
        );
        if let Some(hook) = analysis.options().when_spans_do_not_fit {
            hook();
        }
        return Ok(inactive(columns));
    }
    let copy = ColumnCopy { table: MemTable::try_new(schema, copied)?, _reservations: reservations };
    table.set_copy(Some(Arc::new(copy)));
    tracing::debug!(bytes, columns = columns.len(), seconds = started.elapsed().as_secs_f64(), "spans kept in memory");
    Ok(SpanCache { table: Some(table), bytes, columns })
}

/// Rows in the span files, from the Parquet footers.
async fn stored_rows(analysis: &Analysis) -> Result<usize, AnalyzeError> {
    let counted = analysis.context().sql("SELECT count(*) FROM all_spans").await?.collect().await?;
    let rows = match counted.first() {
        Some(batch) if batch.num_rows() > 0 => integer(batch, 0, 0)?.unwrap_or(0),
        _ => 0,
    };
    Ok(usize::try_from(rows).unwrap_or(0))
}
