//! A memory pool that gives `RepartitionExec` a budget of its own, so it does not spill.
//!
//! In DataFusion 55, a `RepartitionExec` that cannot reserve memory for a batch writes it to a
//! spill pool shared by its input partitions. When two inputs spill at once, the pool holds two
//! open files, its reader waits on the older one while the batch it needs is in the newer one, and
//! the query stops for good: every worker parked, no error (apache/datafusion#24883, fixed in a
//! later release). On 100M spans under 1 GiB, `calls_without_callee` stopped that way.
//!
//! Here repartitions get a budget of their own, as large as the limit (at least 256 MiB), beside
//! the pool: they do not spill within it, and they do not take the memory that hash joins and
//! sorts count on. Past their budget they spill as before. The bound matters: a repartition feeding a
//! slow consumer (a sort-merge join whose other side is spilling) can buffer without end
//! (apache/datafusion#22090); unbounded, a run over 100M spans under 1 GiB grew to 24 GB.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation};

/// Consumer names of the repartition operator's reservations (`RepartitionExec[3]`).
const REPARTITION_CONSUMER: &str = "RepartitionExec";

/// The least a repartition may hold past the limit: under a small limit, the limit itself was
/// still reached, and the reproduction of the deadlock below stopped again.
const REPARTITION_OVERFLOW_FLOOR: usize = 256 << 20;

/// Wraps a pool. Reservations of `RepartitionExec` are kept apart, in their own budget of the
/// memory limit (at least [`REPARTITION_OVERFLOW_FLOOR`]), so they neither spill early nor take
/// the memory a hash join or a sort counts on; others go to the inner pool.
#[derive(Debug)]
pub struct RepartitionInMemory {
    inner: Arc<dyn MemoryPool>,
    repartition_budget: usize,
    repartition_reserved: AtomicUsize,
    /// What the other consumers hold in the inner pool, mirrored here for the high-water marks.
    pool_reserved: AtomicUsize,
    pool_peak: AtomicUsize,
    repartition_peak: AtomicUsize,
}

/// The most memory reserved at once since the marks were last reset: in the pool, and by
/// repartitions in their own budget. Memory outside both (Parquet decoding, hash tables being
/// built, results being collected) is what the process holds beyond them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservedPeaks {
    /// Bytes reserved in the pool (hash joins, aggregations, sorts, materialised views).
    pub pool: usize,
    /// Bytes reserved by repartitions.
    pub repartitions: usize,
}

impl RepartitionInMemory {
    /// Wraps `inner`, whose limit is `memory_limit`.
    pub fn new(inner: Arc<dyn MemoryPool>, memory_limit: usize) -> RepartitionInMemory {
        RepartitionInMemory {
            inner,
            repartition_budget: memory_limit.max(REPARTITION_OVERFLOW_FLOOR),
            repartition_reserved: AtomicUsize::new(0),
            pool_reserved: AtomicUsize::new(0),
            pool_peak: AtomicUsize::new(0),
            repartition_peak: AtomicUsize::new(0),
        }
    }

    /// The high-water marks since the last call, which starts new ones from what is reserved now.
    pub fn take_peaks(&self) -> ReservedPeaks {
        let pool_now = self.pool_reserved.load(Ordering::Acquire);
        let repartitions_now = self.repartition_reserved.load(Ordering::Acquire);
        ReservedPeaks {
            pool: self.pool_peak.swap(pool_now, Ordering::AcqRel).max(pool_now),
            repartitions: self.repartition_peak.swap(repartitions_now, Ordering::AcqRel).max(repartitions_now),
        }
    }

    fn pool_grew(&self, additional: usize) {
        let reserved = self.pool_reserved.fetch_add(additional, Ordering::AcqRel) + additional;
        self.pool_peak.fetch_max(reserved, Ordering::AcqRel);
    }

    fn repartitions_grew(&self, reserved: usize) {
        self.repartition_peak.fetch_max(reserved, Ordering::AcqRel);
    }
}

impl std::fmt::Display for RepartitionInMemory {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.inner, formatter)
    }
}

fn is_repartition(consumer: &MemoryConsumer) -> bool {
    consumer.name().starts_with(REPARTITION_CONSUMER)
}

impl MemoryPool for RepartitionInMemory {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn register(&self, consumer: &MemoryConsumer) {
        if !is_repartition(consumer) {
            self.inner.register(consumer);
        }
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        if !is_repartition(consumer) {
            self.inner.unregister(consumer);
        }
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        if is_repartition(reservation.consumer()) {
            let reserved = self.repartition_reserved.fetch_add(additional, Ordering::AcqRel) + additional;
            self.repartitions_grew(reserved);
        } else {
            self.inner.grow(reservation, additional);
            self.pool_grew(additional);
        }
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        if is_repartition(reservation.consumer()) {
            self.repartition_reserved.fetch_sub(shrink, Ordering::AcqRel);
        } else {
            self.inner.shrink(reservation, shrink);
            self.pool_reserved.fetch_sub(shrink, Ordering::AcqRel);
        }
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        if !is_repartition(reservation.consumer()) {
            self.inner.try_grow(reservation, additional)?;
            self.pool_grew(additional);
            return Ok(());
        }
        let budget = self.repartition_budget;
        self.repartition_reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |reserved| {
                reserved.checked_add(additional).filter(|total| *total <= budget)
            })
            .map(|before| self.repartitions_grew(before + additional))
            .map_err(|reserved| {
                DataFusionError::ResourcesExhausted(format!(
                    "{} cannot reserve {additional} bytes: repartitions hold {reserved} of their {budget}",
                    reservation.consumer().name()
                ))
            })
    }

    fn reserved(&self) -> usize {
        self.inner.reserved() + self.repartition_reserved.load(Ordering::Acquire)
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use datafusion::execution::memory_pool::FairSpillPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;

    #[test]
    fn only_repartition_reservations_pass_the_limit() {
        let pool: Arc<dyn MemoryPool> = Arc::new(RepartitionInMemory::new(Arc::new(FairSpillPool::new(1000)), 1000));
        let repartition = MemoryConsumer::new("RepartitionExec[0]").with_can_spill(true).register(&pool);
        repartition.try_grow(5000).expect("a repartition reserves past the limit");
        assert_eq!(pool.reserved(), 5000, "and is counted");
        assert!(repartition.try_grow(REPARTITION_OVERFLOW_FLOOR).is_err(), "up to a budget of its own");
        let sorter = MemoryConsumer::new("ExternalSorter[0]").with_can_spill(true).register(&pool);
        assert!(sorter.try_grow(2000).is_err(), "others keep the limit");
        let merge = MemoryConsumer::new("ExternalSorterMerge[0]").register(&pool);
        merge.try_grow(1000).expect("the repartition does not take the others' memory");
        assert_eq!(pool.reserved(), 6000);
        drop(repartition);
        assert_eq!(pool.reserved(), 1000);
    }

    #[test]
    fn the_high_water_marks_are_kept_apart_and_start_again_from_what_is_held() {
        let wrapper = Arc::new(RepartitionInMemory::new(Arc::new(FairSpillPool::new(10_000)), 10_000));
        let pool: Arc<dyn MemoryPool> = wrapper.clone();
        let repartition = MemoryConsumer::new("RepartitionExec[1]").register(&pool);
        let sorter = MemoryConsumer::new("ExternalSorter[0]").with_can_spill(true).register(&pool);
        repartition.try_grow(3000).expect("repartition");
        sorter.try_grow(4000).expect("sorter");
        sorter.grow(1000);
        sorter.shrink(4500);
        repartition.shrink(2000);
        assert!(sorter.try_grow(20_000).is_err(), "a refused reservation is not counted");
        assert_eq!(wrapper.take_peaks(), ReservedPeaks { pool: 5000, repartitions: 3000 });
        assert_eq!(wrapper.take_peaks(), ReservedPeaks { pool: 500, repartitions: 1000 }, "what is held now");
        drop(sorter);
        drop(repartition);
        assert_eq!(wrapper.take_peaks(), ReservedPeaks { pool: 500, repartitions: 1000 });
        assert_eq!(wrapper.take_peaks(), ReservedPeaks { pool: 0, repartitions: 0 });
    }

    /// The upstream reproduction (apache/datafusion#24883): a grouped count of distinct values on
    /// two partitions under 2 MB, run several times; one run in a few never returned.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_grouped_distinct_count_under_a_tiny_limit_completes() {
        let pool = Arc::new(RepartitionInMemory::new(Arc::new(FairSpillPool::new(2 << 20)), 2 << 20));
        let runtime = RuntimeEnvBuilder::new().with_memory_pool(pool).build_arc().expect("runtime");
        let config = SessionConfig::new().with_target_partitions(2).with_batch_size(64);
        let context = SessionContext::new_with_config_rt(config, runtime);
        context
            .sql(
                "CREATE TABLE t AS SELECT v % 13 AS g, md5(CAST(v % 337 AS VARCHAR)) AS trace_id \
                 FROM generate_series(1, 40000) AS s(v)",
            )
            .await
            .expect("table")
            .collect()
            .await
            .expect("table rows");
        for attempt in 0..12 {
            let query = async {
                let frame = context.sql("SELECT g, count(DISTINCT trace_id) AS n FROM t GROUP BY g").await?;
                frame.collect().await
            };
            let batches = tokio::time::timeout(Duration::from_secs(20), query)
                .await
                .unwrap_or_else(|_| panic!("attempt {attempt} did not complete in 20 s"))
                .expect("query");
            let groups: usize = batches.iter().map(|b| b.num_rows()).sum();
            assert_eq!(groups, 13, "attempt {attempt}");
        }
    }
}
