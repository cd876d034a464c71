//! Queries whose hash joins do not fit in the memory limit.
//!
//! DataFusion's hash join holds its whole build side in memory and cannot spill (DataFusion 55);
//! its sort-merge join sorts both inputs, and sorts spill to disk. Hash joins are the faster of
//! the two when they fit, so a query first runs as planned; only when it runs out of memory is
//! it planned again with sort-merge joins, in a session that shares the same tables and memory
//! pool. The analysis of a large data directory under a small `--memory-limit` then completes,
//! spilling, instead of failing.
//!
//! Under a small limit the sort-merge plan can still run out: its sorts fill their share of the
//! pool, and a sort whose input fitted there merges its sorted batches in memory, growing a
//! reservation that cannot spill; with several sorts doing so at once, one fails (on 10M spans
//! under 256 MiB, `calls_without_callee` failed so). The query then runs again with a
//! part of the pool, in proportion to the limit, reserved for each sort's merge before it buffers
//! anything ([`MERGE_SHARES_OF_LIMIT`]): each sort buffers less, spills sooner, and its merge starts
//! with the memory it needs. A query with many sorts at once may need a smaller part, so a smaller
//! one is tried last.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::{MemoryLimit, human_readable_size};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::physical_plan::display::DisplayableExecutionPlan;
use datafusion::prelude::SessionContext;

use crate::owned_batches::OwnAggregateOutput;

/// On the further runs, the part of the memory limit each sort reserves for its merge: one
/// eighth, then one thirty-second. On 10M spans under 256 MiB, 32 MiB let `calls_without_callee`
/// complete where DataFusion's default, 10 MiB, did not; under 128 MiB, `broken_gts` has too many
/// sorts at once for 16 MiB each. Under a pool of 8 MiB, 1 MiB let a join of four inputs complete
/// where the default could not even be reserved.
pub const MERGE_SHARES_OF_LIMIT: [usize; 2] = [8, 32];

/// The result of a query, and how it ran.
#[derive(Debug)]
pub struct Collected {
    /// The result.
    pub batches: Vec<RecordBatch>,
    /// Whether it ran out of memory with hash joins and ran again with sort-merge joins.
    pub replanned: bool,
}

/// Runs `sql` and collects its result; on running out of memory, runs it once more with
/// sort-merge joins instead of hash joins (see the module documentation). `local`: the session
/// executes in this process, so the re-planned query may also use this crate's own operators
/// ([`OwnAggregateOutput`]), which a cluster could not ship to its executors.
pub async fn collect_within_memory(
    context: &SessionContext,
    sql: &str,
    local: bool,
) -> Result<Collected, DataFusionError> {
    match collect(context, sql).await {
        Ok(batches) => Ok(Collected { batches, replanned: false }),
        Err(error) if is_out_of_memory(&error) && prefers_hash_join(context) => {
            tracing::info!(
                error = %error.find_root(),
                "out of memory with hash joins: the query runs again with sort-merge joins, which spill"
            );
            let batches = match collect(&sort_merge_joins(context, local, None), sql).await {
                Err(error) if is_out_of_memory(&error) => collect_reserving_merges(context, sql, local, error).await?,
                collected => collected?,
            };
            Ok(Collected { batches, replanned: true })
        }
        Err(error) => Err(error),
    }
}

/// The further runs (see the module documentation), each with one of [`MERGE_SHARES_OF_LIMIT`]
/// reserved for every sort's merge, when the memory limit is known; until one completes or fails
/// otherwise than for memory.
async fn collect_reserving_merges(
    context: &SessionContext,
    sql: &str,
    local: bool,
    mut error: DataFusionError,
) -> Result<Vec<RecordBatch>, DataFusionError> {
    let MemoryLimit::Finite(limit) = context.runtime_env().memory_pool.memory_limit() else {
        return Err(error);
    };
    let configured = context.state().config().options().execution.sort_spill_reservation_bytes;
    for share in MERGE_SHARES_OF_LIMIT {
        let reservation = limit / share;
        if reservation == configured {
            continue;
        }
        tracing::info!(
            error = %error.find_root(),
            merge_reservation = reservation,
            "out of memory with sort-merge joins: the query runs again with another reservation for each sort's merge"
        );
        match collect(&sort_merge_joins(context, local, Some(reservation)), sql).await {
            Err(failed) if is_out_of_memory(&failed) => error = failed,
            collected => return collected,
        }
    }
    Err(DataFusionError::ResourcesExhausted(format!(
        "the query does not fit in the memory limit of {}, neither with hash joins nor with sort-merge \
         joins that spill; raise the memory limit. Last attempt: {}",
        human_readable_size(limit),
        error.find_root()
    )))
}

/// Runs `sql` and collects its result. With `TRACEGAP_LOG=tracegap_analyze=trace`, the executed
/// plan is logged with each operator's metrics (rows, compute time, memory), which is how a slow
/// check is taken apart without a profiler.
async fn collect(context: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, DataFusionError> {
    let frame = context.sql(sql).await?;
    if !tracing::enabled!(tracing::Level::TRACE) {
        return frame.collect().await;
    }
    let task = Arc::new(frame.task_ctx());
    let plan = frame.create_physical_plan().await?;
    let batches = datafusion::physical_plan::collect(Arc::clone(&plan), task).await?;
    let metrics = DisplayableExecutionPlan::with_metrics(plan.as_ref()).indent(true).to_string();
    tracing::trace!(query = sql, plan = %metrics, "query ran");
    Ok(batches)
}

/// Whether the query failed for want of memory in the pool (whatever operator it reached).
pub fn is_out_of_memory(error: &DataFusionError) -> bool {
    matches!(error.find_root(), DataFusionError::ResourcesExhausted(_))
}

fn prefers_hash_join(context: &SessionContext) -> bool {
    context.state().config().options().optimizer.prefer_hash_join
}

/// A session over the same catalogue, functions and runtime (memory pool, spill directory) that
/// plans equi-joins as sort-merge joins, and when `local`, copies aggregation results that are
/// slices of larger batches before they reach the sorts. `merge_reservation`: what each sort
/// reserves for its merge, when not the session's.
fn sort_merge_joins(context: &SessionContext, local: bool, merge_reservation: Option<usize>) -> SessionContext {
    let mut state = context.state();
    let options = state.config_mut().options_mut();
    if let Some(bytes) = merge_reservation {
        options.execution.sort_spill_reservation_bytes = bytes;
    }
    options.optimizer.prefer_hash_join = false;
    // DataFusion plans a sort-merge join only over repartitioned inputs, so at least two
    // partitions even on one core.
    options.optimizer.repartition_joins = true;
    options.execution.target_partitions = options.execution.target_partitions.max(2);
    if local {
        state = SessionStateBuilder::new_from_existing(state)
            .with_physical_optimizer_rule(Arc::new(OwnAggregateOutput))
            .build();
    }
    SessionContext::new_with_state(state)
}

#[cfg(test)]
mod tests {
    use datafusion::execution::memory_pool::FairSpillPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::prelude::SessionConfig;

    use super::*;

    /// A join of two 200k-row inputs on distinct keys, in a pool far smaller than its build side.
    const JOIN: &str = "SELECT count(*) AS matched FROM \
        (SELECT value AS k, value * 2 AS v FROM generate_series(1, 200000)) a \
        JOIN (SELECT value AS k, value * 3 AS w FROM generate_series(1, 200000)) b ON a.k = b.k";

    fn small_pool_context() -> SessionContext {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(2 << 20)))
            .build_arc()
            .expect("runtime");
        let config = SessionConfig::new().with_target_partitions(1).with_batch_size(1024);
        SessionContext::new_with_config_rt(config, runtime)
    }

    fn matched(batches: &[RecordBatch]) -> i64 {
        let column = batches[0].column(0).as_any().downcast_ref::<arrow::array::Int64Array>().expect("count");
        column.value(0)
    }

    #[tokio::test]
    async fn a_hash_join_over_the_limit_fails_as_planned() {
        let context = small_pool_context();
        let error = context.sql(JOIN).await.expect("plan").collect().await.expect_err("over the pool");
        assert!(is_out_of_memory(&error), "{error}");
    }

    #[tokio::test]
    async fn the_same_join_completes_with_sort_merge_joins() {
        let context = small_pool_context();
        let collected = collect_within_memory(&context, JOIN, true).await.expect("spilling join");
        assert!(collected.replanned);
        assert_eq!(matched(&collected.batches), 200_000);
        // The session itself still prefers hash joins for the next query.
        assert!(prefers_hash_join(&context));
    }

    #[tokio::test]
    async fn a_join_that_fits_runs_as_planned() {
        let context = small_pool_context();
        let small = JOIN.replace("200000", "1000");
        let collected = collect_within_memory(&context, &small, true).await.expect("join in memory");
        assert!(!collected.replanned);
        assert_eq!(matched(&collected.batches), 1000);
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let context = small_pool_context();
        let error =
            collect_within_memory(&context, "SELECT * FROM no_such_table", true).await.expect_err("unknown table");
        assert!(!is_out_of_memory(&error));
    }

    /// Four inputs joined: under sort-merge joins, eight sorts at once.
    const FOUR_INPUTS: &str = "SELECT count(*) AS matched FROM \
        (SELECT value AS k, repeat('x', 40) AS pad FROM generate_series(1, 300000)) a \
        JOIN (SELECT value AS k, repeat('y', 40) AS pad FROM generate_series(1, 300000)) b ON a.k = b.k \
        LEFT JOIN (SELECT value AS k, repeat('z', 40) AS pad FROM generate_series(1, 300000)) c ON c.k = a.k \
        LEFT ANTI JOIN (SELECT value * 2 AS k FROM generate_series(1, 300000)) d ON d.k = a.k";

    fn two_partitions_in_a_pool_of(bytes: usize) -> SessionContext {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(bytes)))
            .build_arc()
            .expect("runtime");
        SessionContext::new_with_config_rt(SessionConfig::new().with_target_partitions(2), runtime)
    }

    #[tokio::test]
    async fn sorts_that_run_out_run_again_with_their_merges_reserved() {
        let context = two_partitions_in_a_pool_of(8 << 20);
        let error = collect(&sort_merge_joins(&context, true, None), FOUR_INPUTS).await.expect_err("sort-merge alone");
        assert!(is_out_of_memory(&error), "{error}");
        let collected = collect_within_memory(&context, FOUR_INPUTS, true).await.expect("a further run");
        assert!(collected.replanned);
        assert_eq!(matched(&collected.batches), 150_000, "the odd keys of 1..=300000");
    }

    #[tokio::test]
    async fn a_query_that_never_fits_says_to_raise_the_limit() {
        let context = two_partitions_in_a_pool_of(1 << 20);
        let error = collect_within_memory(&context, FOUR_INPUTS, true).await.expect_err("1 MiB");
        assert!(is_out_of_memory(&error), "{error}");
        assert!(error.to_string().contains("raise the memory limit"), "{error}");
    }
}
