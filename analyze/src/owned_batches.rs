//! Aggregation and window results in batches of the session's batch size that own buffers of
//! their own size.
//!
//! A hash aggregation emits its groups as one large batch and hands it on in slices. Each slice
//! still holds the whole buffer, and a spilling sort reserves memory for what a batch holds, not
//! for what it shows: on 10M spans a sort in front of a sort-merge join asked for 212 MB for an
//! 8,192-row slice, more than its share of a 1 GiB pool, and the query failed although it could
//! have spilled. A window over unbounded partitions (`count(*) OVER (PARTITION BY trace_id)`)
//! does worse: it emits all its rows as one batch, which a sort must then hold whole.
//! [`OwnAggregateOutput`] puts an [`OwnedBatchesExec`] after every aggregation and window; it cuts
//! a batch into pieces of the batch size and copies those that hold far more than they show. Used
//! when a query is planned again to spill ([`crate::join_fallback`]).

use std::fmt;
use std::sync::Arc;

use arrow::array::{RecordBatch, UInt32Array};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;

/// A batch holding more than this many bytes beyond what its rows use is copied.
const WASTE_COPIED: usize = 8 << 20;

/// Passes its input's batches on, copying those that are slices of much larger buffers.
#[derive(Debug)]
pub struct OwnedBatchesExec {
    input: Arc<dyn ExecutionPlan>,
}

impl OwnedBatchesExec {
    /// Wraps `input`.
    pub fn new(input: Arc<dyn ExecutionPlan>) -> OwnedBatchesExec {
        OwnedBatchesExec { input }
    }
}

impl DisplayAs for OwnedBatchesExec {
    fn fmt_as(&self, _format: DisplayFormatType, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(formatter, "OwnedBatchesExec")
    }
}

impl ExecutionPlan for OwnedBatchesExec {
    fn name(&self) -> &str {
        "OwnedBatchesExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        _visit: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(format!("OwnedBatchesExec takes 1 child, not {}", children.len())));
        }
        Ok(Arc::new(OwnedBatchesExec::new(children.swap_remove(0))))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let rows = context.session_config().batch_size().max(1);
        let input = self.input.execute(partition, context)?;
        let schema = input.schema();
        let owned = input.flat_map(move |batch| {
            let pieces: Box<dyn Iterator<Item = Result<RecordBatch>> + Send> = match batch {
                Ok(batch) => Box::new(owned_pieces(batch, rows).map(|piece| piece.map_err(DataFusionError::from))),
                Err(error) => Box::new(std::iter::once(Err(error))),
            };
            futures::stream::iter(pieces)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, owned)))
    }
}

/// `batch` in pieces of at most `rows` rows, each with buffers of its own size (copied one at a
/// time as they are taken, so the large batch and all its copies are never held together).
pub fn owned_pieces(
    batch: RecordBatch,
    rows: usize,
) -> impl Iterator<Item = Result<RecordBatch, arrow::error::ArrowError>> + Send {
    let total = batch.num_rows();
    let rows = rows.max(1);
    let pieces = total.div_ceil(rows).max(1);
    (0..pieces).map(move |index| {
        let offset = index * rows;
        with_own_buffers(batch.slice(offset, rows.min(total - offset)))
    })
}

/// `batch` itself, or a copy of it when it holds much more memory than its rows use.
pub fn with_own_buffers(batch: RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    with_own_buffers_past(batch, WASTE_COPIED)
}

/// The bytes the rows of `batch` use, not counting what the buffers it slices hold beyond them
/// (the whole buffers when that cannot be told).
pub fn rows_memory_size(batch: &RecordBatch) -> usize {
    let held = batch.get_array_memory_size();
    batch.columns().iter().map(|column| column.to_data().get_slice_memory_size().unwrap_or(held)).sum()
}

/// `batch` itself, or a copy of it when it holds more than `waste` bytes beyond what its rows use.
pub fn with_own_buffers_past(batch: RecordBatch, waste: usize) -> Result<RecordBatch, arrow::error::ArrowError> {
    let held = batch.get_array_memory_size();
    let used = rows_memory_size(&batch);
    if held <= used.saturating_add(waste) {
        return Ok(batch);
    }
    let rows = UInt32Array::from_iter_values(0..batch.num_rows() as u32);
    arrow::compute::take_record_batch(&batch, &rows)
}

/// Puts an [`OwnedBatchesExec`] after every aggregation and window of a plan.
#[derive(Debug, Default)]
pub struct OwnAggregateOutput;

impl PhysicalOptimizerRule for OwnAggregateOutput {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if node.is::<AggregateExec>() || node.is::<WindowAggExec>() || node.is::<BoundedWindowAggExec>() {
                Ok(Transformed::yes(Arc::new(OwnedBatchesExec::new(node)) as Arc<dyn ExecutionPlan>))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "own_aggregate_output"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(rows: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("value", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..rows))]).expect("batch")
    }

    #[test]
    fn a_small_slice_of_a_large_batch_is_copied() {
        let large = batch(4 << 20);
        let slice = large.slice(1000, 8192);
        assert!(slice.get_array_memory_size() >= 32 << 20);
        let owned = with_own_buffers(slice.clone()).expect("copy");
        assert!(owned.get_array_memory_size() < 1 << 20, "{}", owned.get_array_memory_size());
        assert_eq!(owned, slice);
    }

    /// The plan of `sql` with the rule, as text, after checking that the rule keeps its result.
    async fn plan_with_the_rule(sql: &str) -> String {
        use datafusion::execution::session_state::SessionStateBuilder;
        use datafusion::physical_plan::displayable;
        use datafusion::prelude::{SessionConfig, SessionContext};

        let plain = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        let state = SessionStateBuilder::new_from_existing(plain.state())
            .with_physical_optimizer_rule(Arc::new(OwnAggregateOutput))
            .build();
        let ruled = SessionContext::new_with_state(state);
        let plan = ruled.sql(sql).await.expect("sql").create_physical_plan().await.expect("plan");
        let expected = plain.sql(sql).await.expect("sql").collect().await.expect("run");
        let got = ruled.sql(sql).await.expect("sql").collect().await.expect("run");
        assert_eq!(
            arrow::compute::concat_batches(&got[0].schema(), &got).expect("concat"),
            arrow::compute::concat_batches(&expected[0].schema(), &expected).expect("concat")
        );
        displayable(plan.as_ref()).indent(false).to_string()
    }

    #[tokio::test]
    async fn the_rule_puts_the_copy_after_every_aggregation_and_keeps_the_result() {
        let text = plan_with_the_rule(
            "SELECT value % 7 AS k, count(*) AS n FROM generate_series(1, 100000) GROUP BY value % 7 ORDER BY k",
        )
        .await;
        let aggregates = text.matches("AggregateExec").count();
        assert!(aggregates >= 1, "{text}");
        assert_eq!(text.matches("OwnedBatchesExec").count(), aggregates, "{text}");
    }

    #[test]
    fn one_large_batch_leaves_in_owned_pieces_of_the_batch_size() {
        let large = batch(100_000);
        let pieces: Vec<RecordBatch> = owned_pieces(large.clone(), 8192).collect::<Result<_, _>>().expect("pieces");
        assert_eq!(pieces.len(), 13);
        assert!(pieces.iter().all(|piece| piece.num_rows() <= 8192));
        assert!(pieces.iter().all(|piece| piece.get_array_memory_size() < 1 << 20));
        assert_eq!(arrow::compute::concat_batches(&large.schema(), &pieces).expect("concat"), large);
        // A batch of at most the batch size is one piece, and an empty one passes as it is.
        assert_eq!(owned_pieces(batch(100), 8192).count(), 1);
        assert_eq!(owned_pieces(batch(0), 8192).map(|piece| piece.expect("piece").num_rows()).sum::<usize>(), 0);
    }

    #[tokio::test]
    async fn a_window_over_whole_partitions_is_followed_by_the_copy() {
        let text = plan_with_the_rule(
            "SELECT value, count(*) OVER (PARTITION BY value % 3) AS n FROM generate_series(1, 50000) ORDER BY value",
        )
        .await;
        assert!(text.contains("WindowAggExec"), "{text}");
        assert!(text.contains("OwnedBatchesExec"), "{text}");
    }

    #[test]
    fn a_batch_of_its_own_is_passed_on() {
        let own = batch(8192);
        let passed = with_own_buffers(own.clone()).expect("pass");
        assert_eq!(passed.column(0).to_data().buffers()[0].as_ptr(), own.column(0).to_data().buffers()[0].as_ptr());
        assert_eq!(passed.column(0).len(), 8192);
    }
}
