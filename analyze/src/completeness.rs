//! Completeness metrics. A judged trace is complete when no break finding names it (clock skew
//! and other informational findings do not count). Completeness = complete / judged traces.

use std::sync::Arc;

use arrow::array::{Array, AsArray, FixedSizeBinaryBuilder, RecordBatch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use datafusion::datasource::MemTable;
use serde::Serialize;

use crate::AnalyzeError;
use crate::findings::Finding;
use crate::session::Analysis;

/// The table of the distinct trace ids (hex) that break findings name, registered by
/// [`completeness`] for its figures.
const BROKEN_TRACE_IDS: &str = "broken_trace_ids";

/// Completeness of one group of traces.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompletenessRow {
    /// What the group is (service, `service operation`, `caller -> callee`, minute).
    pub key: String,
    /// Judged traces in the group.
    pub traces: i64,
    /// Of them, traces with a break.
    pub broken: i64,
    /// `(traces - broken) / traces`; 1 when there is no trace.
    pub completeness: f64,
}

/// Calls along one service edge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeRow {
    /// Calling service.
    pub caller: String,
    /// Called service (the server span's service, else `peer.service`, else `server.address`).
    pub callee: String,
    /// CLIENT and PRODUCER spans from caller to callee.
    pub calls: i64,
    /// Of them, calls whose SERVER or CONSUMER side is their child in the same trace.
    pub propagated: i64,
    /// Of them, calls to an instrumented callee whose server side is not in the trace (the
    /// `unpropagated_call` findings).
    pub dropped: i64,
}

/// Every completeness figure of an analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completeness {
    /// Traces judged.
    pub judged_traces: i64,
    /// Traces still arriving (not judged).
    pub pending_traces: i64,
    /// Judged traces with a break.
    pub broken_traces: i64,
    /// Complete / judged; 1 when nothing was judged.
    pub completeness: f64,
    /// Per service (traces containing a span of the service).
    pub by_service: Vec<CompletenessRow>,
    /// Per root operation (entry endpoint: service and name of the root span).
    pub by_root_operation: Vec<CompletenessRow>,
    /// Per minute of the traces' start.
    pub by_minute: Vec<CompletenessRow>,
    /// Per service edge.
    pub edges: Vec<EdgeRow>,
}

fn ratio(traces: i64, broken: i64) -> f64 {
    if traces == 0 { 1.0 } else { (traces - broken) as f64 / traces as f64 }
}

/// The traces with a break, as the binary ids the spans have: the findings name them in hex, and
/// turning the few broken ids back into binary spares formatting the id of every span (the
/// figures took twice the time on 10M spans).
const BROKEN_TRACES: &str = "WITH broken AS (SELECT trace_id FROM broken_trace_ids)";

/// The distinct trace ids that break findings name, 16 bytes each. Gathered while findings go by,
/// so that a caller need not keep millions of findings for the figures (on 100M spans they took
/// 2 GB). A hex id of another length than 16 bytes names no judged trace and is left out.
#[derive(Debug, Default, Clone)]
pub struct BrokenTraces {
    ids: std::collections::HashSet<[u8; 16]>,
}

impl BrokenTraces {
    /// The broken traces that `findings` name.
    pub fn of(findings: &[Finding]) -> BrokenTraces {
        let mut broken = BrokenTraces::default();
        broken.add(findings);
        broken
    }

    /// Adds the traces that the break findings among `findings` name.
    pub fn add(&mut self, findings: &[Finding]) {
        let named =
            findings.iter().filter(|finding| finding.is_break).filter_map(|finding| finding.trace_id.as_deref());
        self.ids.extend(named.filter_map(trace_id_bytes));
    }

    /// How many distinct traces.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no trace is broken.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The 16 bytes of a trace id written in 32 hex digits.
fn trace_id_bytes(hex: &str) -> Option<[u8; 16]> {
    let digits = hex.as_bytes();
    if digits.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        let digit = |value: u8| (value as char).to_digit(16);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(bytes)
}

/// Registers (or replaces) [`BROKEN_TRACE_IDS`]: each broken trace's id, once, sorted (so that
/// the figures never depend on the order of a hash set).
fn register_broken_trace_ids(analysis: &Analysis, broken: &BrokenTraces) -> Result<(), AnalyzeError> {
    let mut ids: Vec<&[u8; 16]> = broken.ids.iter().collect();
    ids.sort_unstable();
    // A builder, not `try_from_iter`: that one cannot tell the width of no values at all.
    let mut array = FixedSizeBinaryBuilder::with_capacity(ids.len(), 16);
    for id in ids {
        array.append_value(id)?;
    }
    let array = array.finish();
    let schema = Arc::new(Schema::new(vec![Field::new("trace_id", DataType::FixedSizeBinary(16), false)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(array)])?;
    let _ = analysis.context().deregister_table(BROKEN_TRACE_IDS);
    analysis.context().register_table(BROKEN_TRACE_IDS, Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))?;
    Ok(())
}

/// Traces and broken traces per key; `keyed` yields `key, trace_id` with each pair once.
fn per_key(keyed: &str) -> String {
    format!(
        "{BROKEN_TRACES}, keyed AS ({keyed}) \
         SELECT key, count(*) AS traces, count(broken.trace_id) AS broken \
         FROM keyed LEFT JOIN broken ON keyed.trace_id = broken.trace_id GROUP BY key ORDER BY key"
    )
}

/// Computes the completeness figures of the traces judged by `analysis`, given its findings.
pub async fn completeness(analysis: &Analysis, findings: &[Finding]) -> Result<Completeness, AnalyzeError> {
    completeness_of(analysis, &BrokenTraces::of(findings)).await
}

/// Computes the completeness figures of the traces judged by `analysis`, given the traces that
/// its break findings name.
pub async fn completeness_of(analysis: &Analysis, broken: &BrokenTraces) -> Result<Completeness, AnalyzeError> {
    register_broken_trace_ids(analysis, broken)?;
    let by_service = rows(
        analysis,
        "by_service",
        &per_key(
            "SELECT DISTINCT coalesce(service_name, '<no service>') AS key, trace_id \
             FROM spans WHERE trace_id IS NOT NULL",
        ),
    )
    .await?;
    let by_root_operation = rows(
        analysis,
        "by_root_operation",
        &per_key(
            "SELECT DISTINCT coalesce(service_name, '<no service>') || ' ' || name AS key, trace_id \
             FROM spans WHERE trace_id IS NOT NULL AND parent_span_id IS NULL",
        ),
    )
    .await?;
    // Each trace counts in the minute of its first span; the minutes are formatted once grouped.
    let by_minute = rows(
        analysis,
        "by_minute",
        &format!(
            "{BROKEN_TRACES}, traces AS ( \
               SELECT trace_id, date_trunc('minute', min(start_time)) AS minute \
               FROM spans WHERE trace_id IS NOT NULL GROUP BY trace_id) \
             SELECT to_char(minute, '%Y-%m-%dT%H:%M') AS key, traces, broken FROM ( \
               SELECT minute, count(*) AS traces, count(broken.trace_id) AS broken \
               FROM traces LEFT JOIN broken ON traces.trace_id = broken.trace_id GROUP BY minute) \
             ORDER BY key"
        ),
    )
    .await?;
    // Every judged trace is in exactly one minute.
    let judged_traces = by_minute.iter().map(|row| row.traces).sum();
    let broken_traces = by_minute.iter().map(|row| row.broken).sum();
    let pending = analysis.collect("SELECT count(*) FROM pending_traces").await?;
    let pending_traces = pending.first().map(|b| integer(b, 0, 0)).unwrap_or(0);
    let edges = edges(analysis).await?;
    Ok(Completeness {
        judged_traces,
        pending_traces,
        broken_traces,
        completeness: ratio(judged_traces, broken_traces),
        by_service,
        by_root_operation,
        by_minute,
        edges,
    })
}

fn integer(batch: &RecordBatch, column: usize, row: usize) -> i64 {
    arrow::compute::cast(batch.column(column), &DataType::Int64)
        .map(|c| c.as_primitive::<Int64Type>().value(row))
        .unwrap_or(0)
}

fn text(batch: &RecordBatch, column: usize, row: usize) -> String {
    arrow::compute::cast(batch.column(column), &DataType::Utf8)
        .map(|c| {
            let strings = c.as_string::<i32>();
            if strings.is_valid(row) { strings.value(row).to_owned() } else { String::new() }
        })
        .unwrap_or_default()
}

/// The rows of one figure (`figure` names it in the debug log, with the time it took).
async fn rows(analysis: &Analysis, figure: &str, sql: &str) -> Result<Vec<CompletenessRow>, AnalyzeError> {
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    for batch in analysis.collect(sql).await? {
        for row in 0..batch.num_rows() {
            let (traces, broken) = (integer(&batch, 1, row), integer(&batch, 2, row));
            out.push(CompletenessRow {
                key: text(&batch, 0, row),
                traces,
                broken,
                completeness: ratio(traces, broken),
            });
        }
    }
    tracing::debug!(
        figure,
        rows = out.len(),
        seconds = started.elapsed().as_secs_f64(),
        "completeness figure computed"
    );
    Ok(out)
}

async fn edges(analysis: &Analysis) -> Result<Vec<EdgeRow>, AnalyzeError> {
    // Dropped calls are exactly the `unpropagated_call` findings (the shared view), so the edge
    // figures and the findings never disagree.
    // The callee sides are looked up by equality on either id they may share with the call (the
    // call is their parent, or Zipkin's shared span id): a join on the trace id alone with an `OR`
    // compared every call with every server span of its trace, which grows with the square of a
    // trace's size.
    let sql = "WITH callee_sides AS ( \
          SELECT trace_id, parent_span_id AS caller_span_id, span_id, service_name FROM spans \
          WHERE kind IN ('SERVER', 'CONSUMER') AND parent_span_id IS NOT NULL \
          UNION ALL \
          SELECT trace_id, span_id AS caller_span_id, span_id, service_name FROM spans \
          WHERE kind IN ('SERVER', 'CONSUMER') AND span_id IS NOT NULL), \
        calls AS ( \
          SELECT coalesce(c.service_name, '<no service>') AS caller, \
                 coalesce(min(s.service_name), min(u.callee), c.peer_service, c.server_address, '<unknown>') AS callee, \
                 count(s.span_id) > 0 AS propagated, count(u.span_id) > 0 AS dropped \
          FROM spans c \
          LEFT JOIN callee_sides s ON s.trace_id = c.trace_id AND s.caller_span_id = c.span_id \
          LEFT JOIN unpropagated_calls u ON u.trace_id = c.trace_id AND u.span_id = c.span_id \
          WHERE c.kind IN ('CLIENT', 'PRODUCER') \
          GROUP BY c.trace_id, c.span_id, c.service_name, c.peer_service, c.server_address) \
        SELECT caller, callee, count(*) AS calls, \
               sum(CASE WHEN propagated THEN 1 ELSE 0 END) AS propagated, \
               sum(CASE WHEN dropped THEN 1 ELSE 0 END) AS dropped \
        FROM calls GROUP BY caller, callee ORDER BY caller, callee";
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    for batch in analysis.collect(sql).await? {
        for row in 0..batch.num_rows() {
            out.push(EdgeRow {
                caller: text(&batch, 0, row),
                callee: text(&batch, 1, row),
                calls: integer(&batch, 2, row),
                propagated: integer(&batch, 3, row),
                dropped: integer(&batch, 4, row),
            });
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    tracing::debug!(figure = "edges", rows = out.len(), seconds, "completeness figure computed");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check_catalog::Severity;

    fn finding(trace_id: &str, is_break: bool) -> Finding {
        Finding {
            check: Arc::from("orphaned_span"),
            severity: Severity::Error,
            is_break,
            trace_id: Some(Box::from(trace_id)),
            span_id: None,
            service: None,
            span_name: None,
            time_nano: None,
            explanation: Box::from(""),
            related_trace_id: None,
            related_span_id: None,
        }
    }

    #[test]
    fn broken_traces_are_the_distinct_ids_of_break_findings_in_16_bytes() {
        let broken = BrokenTraces::of(&[
            finding("4bf92f3577b34da6a3ce929d0e0e4736", true),
            finding("4BF92F3577B34DA6A3CE929D0E0E4736", true),
            finding("00000000000000000000000000000001", false),
            finding("a3ce929d0e0e4736", true),
            finding("zz000000000000000000000000000000", true),
        ]);
        assert_eq!(broken.len(), 1);
        let expected = [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36];
        assert!(broken.ids.contains(&expected));
    }

    #[tokio::test]
    async fn figures_of_an_analysis_without_any_broken_trace() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let analysis = Analysis::open(crate::AnalysisOptions::batch(directory.path())).await.expect("session");
        let catalog = crate::load_catalog(None).expect("built-in checks");
        crate::findings::register_views(&analysis, &catalog.views).await.expect("views");
        let figures = completeness_of(&analysis, &BrokenTraces::default()).await.expect("figures");
        assert_eq!((figures.judged_traces, figures.broken_traces, figures.completeness), (0, 0, 1.0));
    }
}
