//! tracegap's analysis: DataFusion SQL checks over the span Parquet written by ingest, producing
//! findings (where trace propagation broke, and why) and completeness metrics.
//!
//! Data flows one way: [`session`] (the span table and the window) → [`check_catalog`] (the SQL
//! files of `queries/`) → [`findings`] → [`completeness`], gathered for one window by [`snapshot`].

pub mod check_catalog;
pub mod completeness;
pub mod findings;
pub mod join_fallback;
pub mod linked_spans;
pub mod materialized_view;
pub mod owned_batches;
pub mod read_only_sql;
pub mod repartition_memory;
pub mod session;
pub mod snapshot;
pub mod span_cache;
#[cfg(test)]
mod test_spans;
pub mod trace_spans;
pub mod udfs;

pub use check_catalog::{Catalog, Check, Severity, View, load_catalog, load_checks};
pub use completeness::Completeness;
pub use findings::Finding;
pub use session::{Analysis, AnalysisOptions};
pub use snapshot::{Snapshot, take_snapshot, take_snapshot_of};
pub use span_cache::{SpanCache, keep_spans_in_memory};

/// Errors of the analysis.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// DataFusion failed outside a check.
    #[error("query failed: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// A check's query failed.
    #[error("check {id} ({origin}) failed: {source}")]
    Check {
        /// The check id.
        id: String,
        /// Where the check came from.
        origin: String,
        /// The error.
        source: datafusion::error::DataFusionError,
    },
    /// A shared view of the checks could not be registered.
    #[error("view {name} ({origin}) failed: {source}")]
    View {
        /// The view name.
        name: String,
        /// Where it came from.
        origin: String,
        /// The error.
        source: datafusion::error::DataFusionError,
    },
    /// Arrow failed converting results.
    #[error("reading results: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The check catalogue could not be loaded.
    #[error(transparent)]
    Catalog(#[from] check_catalog::CatalogError),
    /// User SQL was refused.
    #[error("{0}")]
    Refused(String),
}
