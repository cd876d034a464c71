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
    // The service as text, not as the spans' dictionary: DataFusion groups a dictionary column
    // row by row (on 10M spans, 2.4 s against 1.0 s for this grouping alone, `tracegap sql`).
    let by_service = rows(
        analysis,
        "by_service",
        &per_key(
            "SELECT DISTINCT coalesce(arrow_cast(service_name, 'Utf8'), '<no service>') AS key, trace_id \
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
    // A call's callee sides are the SERVER/CONSUMER spans whose parent it is, or that share its id
    // (Zipkin): a shared id is a repeated one (`repeated_span_ids`), which leaves few spans on that
    // side. (A join on the trace id alone with an `OR` compared every call with every server span
    // of its trace, which grows with the square of a trace's size.)
    // Each call is judged once with no grouping of the calls: the callee sides and the dropped
    // calls are grouped per caller span id first, so that a call meets at most one row of each.
    // Grouping the joined calls instead (by trace, span, service, peer, address) held one group
    // per call, 5M on 10M spans: on that corpus the figure took 2.9 to 3.1 s, against 1.3 to 1.5 s
    // so. Two calls can be the same call only when their span id is repeated or missing; those
    // few are made distinct, as the grouping did.
    let sql = "WITH answers AS ( \
          SELECT trace_id, caller_span_id, min(service_name) AS service_name, count(span_id) AS sides FROM ( \
            SELECT trace_id, parent_span_id AS caller_span_id, span_id, service_name FROM spans \
            WHERE kind IN ('SERVER', 'CONSUMER') AND parent_span_id IS NOT NULL \
            UNION ALL \
            SELECT s.trace_id, s.span_id AS caller_span_id, s.span_id, s.service_name FROM spans s \
            LEFT SEMI JOIN repeated_span_ids r ON r.span_id = s.span_id \
            WHERE s.kind IN ('SERVER', 'CONSUMER')) \
          GROUP BY trace_id, caller_span_id), \
        dropped AS ( \
          SELECT trace_id, span_id, min(callee) AS callee FROM unpropagated_calls GROUP BY trace_id, span_id), \
        calls AS ( \
          SELECT c.trace_id, c.span_id, c.service_name, c.peer_service, c.server_address FROM spans c \
          LEFT ANTI JOIN repeated_span_ids r ON r.span_id = c.span_id \
          WHERE c.kind IN ('CLIENT', 'PRODUCER') AND c.span_id IS NOT NULL \
          UNION ALL \
          SELECT DISTINCT trace_id, span_id, service_name, peer_service, server_address FROM spans \
          WHERE kind IN ('CLIENT', 'PRODUCER') \
            AND (span_id IS NULL OR span_id IN (SELECT span_id FROM repeated_span_ids))), \
        judged AS ( \
          SELECT coalesce(c.service_name, '<no service>') AS caller, \
                 coalesce(a.service_name, d.callee, c.peer_service, c.server_address, '<unknown>') AS callee, \
                 coalesce(a.sides, 0) > 0 AS propagated, d.span_id IS NOT NULL AS dropped \
          FROM calls c \
          LEFT JOIN answers a ON a.trace_id = c.trace_id AND a.caller_span_id = c.span_id \
          LEFT JOIN dropped d ON d.trace_id = c.trace_id AND d.span_id = c.span_id) \
        SELECT caller, callee, count(*) AS calls, \
               sum(CASE WHEN propagated THEN 1 ELSE 0 END) AS propagated, \
               sum(CASE WHEN dropped THEN 1 ELSE 0 END) AS dropped \
        FROM judged GROUP BY caller, callee ORDER BY caller, callee";
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

    /// An OTLP JSON span of trace `aa…01`: ids in hex, `kind` as OTLP numbers it, times in ms.
    fn span(id: &str, parent: &str, kind: u8, peer_service: &str) -> String {
        let attributes = match peer_service {
            "" => String::new(),
            peer => format!(r#"{{"key": "peer.service", "value": {{"stringValue": "{peer}"}}}}"#),
        };
        format!(
            r#"{{"traceId": "aaaaaaaaaaaaaaaaaaaaaaaaaaaa0001", "spanId": "{id}", "parentSpanId": "{parent}",
                "name": "span {id}", "kind": {kind}, "startTimeUnixNano": "1700000000000000000",
                "endTimeUnixNano": "1700000000100000000", "attributes": [{attributes}]}}"#
        )
    }

    fn service(name: &str, spans: &[String]) -> String {
        format!(
            r#"{{"resource": {{"attributes": [{{"key": "service.name", "value": {{"stringValue": "{name}"}}}}]}},
                "scopeSpans": [{{"scope": {{"name": "test"}}, "spans": [{}]}}]}}"#,
            spans.join(",")
        )
    }

    /// The edge figures count each call once however many callee sides answer it, find the callee
    /// side of Zipkin's shared ids, and count a call recorded twice (same ids, service, peer) once,
    /// as dropped when it is.
    #[tokio::test(flavor = "multi_thread")]
    async fn each_call_counts_once_in_the_edge_figures() {
        const SERVER: u8 = 2;
        const CLIENT: u8 = 3;
        const PRODUCER: u8 = 4;
        const CONSUMER: u8 = 5;
        let frontend = service(
            "frontend",
            &[
                span("00000000000000a1", "", SERVER, ""),
                // Answered by a payments span under it.
                span("00000000000000a2", "00000000000000a1", CLIENT, "payments"),
                // Answered by a payments span with the same id (Zipkin).
                span("00000000000000a3", "00000000000000a1", CLIENT, "payments"),
                // Consumed twice.
                span("00000000000000a4", "00000000000000a1", PRODUCER, "orders"),
                // Not answered, and recorded twice.
                span("00000000000000a5", "00000000000000a1", CLIENT, "payments"),
                span("00000000000000a5", "00000000000000a1", CLIENT, "payments"),
            ],
        );
        let payments = service(
            "payments",
            &[
                span("00000000000000b1", "00000000000000a2", SERVER, ""),
                span("00000000000000a3", "00000000000000a1", SERVER, ""),
            ],
        );
        let orders = service(
            "orders",
            &[
                span("00000000000000c1", "00000000000000a4", CONSUMER, ""),
                span("00000000000000c2", "00000000000000a4", CONSUMER, ""),
            ],
        );
        let body = format!(r#"{{"resourceSpans": [{frontend}, {payments}, {orders}]}}"#);
        let directory = tempfile::tempdir().expect("temporary directory");
        let spans = directory.path().join(tracegap_ingest::parquet_files::SPANS_DIRECTORY);
        tracegap_ingest::parquet_files::write_partitioned(
            &[crate::test_spans::span_batch(body)],
            &spans,
            "test",
            false,
        )
        .expect("Parquet");
        let analysis = Analysis::open(crate::AnalysisOptions::batch(directory.path())).await.expect("session");
        let catalog = crate::load_catalog(None).expect("built-in checks");
        crate::findings::register_views(&analysis, &catalog.views).await.expect("views");
        let edges = edges(&analysis).await.expect("edge figures");
        let figures: Vec<_> =
            edges.iter().map(|e| (e.caller.as_str(), e.callee.as_str(), e.calls, e.propagated, e.dropped)).collect();
        assert_eq!(figures, [("frontend", "orders", 1, 1, 0), ("frontend", "payments", 3, 2, 1)]);
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
