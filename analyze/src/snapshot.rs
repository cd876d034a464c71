//! A snapshot: everything the checks say about one window at one time — findings, completeness,
//! dropped calls per edge, stored spans per minute. The CLI prints one, the dashboard serves one,
//! the HTML report embeds one; they are computed here once, the same way for all three.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use serde::Serialize;

use crate::AnalyzeError;
use crate::check_catalog::Catalog;
use crate::completeness::{Completeness, completeness};
use crate::findings::{Finding, register_findings, run_checks};
use crate::session::{Analysis, AnalysisOptions, now_nano};
use crate::span_cache::keep_spans_in_memory;

/// Spans stored in one minute (by receive time).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MinuteCount {
    /// The minute, `YYYY-MM-DDTHH:MM` (UTC).
    pub minute: String,
    /// Spans received in it.
    pub spans: i64,
}

/// One call whose callee side is missing from its trace (a row of the `unpropagated_calls` view).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DroppedCall {
    /// Calling service.
    pub caller: String,
    /// Called service.
    pub callee: String,
    /// Trace of the call.
    pub trace_id: Option<String>,
    /// The CLIENT or PRODUCER span.
    pub span_id: Option<String>,
    /// Its name.
    pub span_name: Option<String>,
    /// Its start, ns since the epoch.
    pub time_nano: Option<i64>,
    /// The root the callee started during the call, if found: the other half.
    pub callee_trace_id: Option<String>,
}

/// The result of analysing one window.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// When it was computed, ns since the epoch.
    pub computed_at_nano: i64,
    /// How long the analysis took, ms.
    pub analysis_millis: u64,
    /// Window start (ns since the epoch), if bounded.
    pub since_nano: Option<i64>,
    /// Window end, if bounded.
    pub until_nano: Option<i64>,
    /// Spans that started in the window (judged and pending traces).
    pub window_spans: i64,
    /// Every finding, in time order per check.
    pub findings: Vec<Finding>,
    /// Completeness figures.
    pub completeness: Completeness,
    /// Calls whose callee side is missing, per edge.
    pub dropped_calls: Vec<DroppedCall>,
    /// Spans received per minute.
    pub ingest_by_minute: Vec<MinuteCount>,
}

impl Snapshot {
    /// Findings per check id, every check of the catalogue included (zero when none).
    pub fn findings_by_check(&self, catalog: &Catalog) -> Vec<(String, usize)> {
        catalog
            .checks
            .iter()
            .map(|check| (check.id.clone(), self.findings.iter().filter(|f| *f.check == *check.id).count()))
            .collect()
    }
}

/// Opens a session for `options`, runs every check of `catalog` and the completeness figures.
/// The session is returned too, with `findings` registered, for follow-up queries (a trace's
/// spans, the SQL box).
pub async fn take_snapshot(options: AnalysisOptions, catalog: &Catalog) -> Result<(Snapshot, Analysis), AnalyzeError> {
    take_snapshot_of(Analysis::open(options).await?, catalog).await
}

/// As [`take_snapshot`], on an analysis already open (on a cluster, say).
pub async fn take_snapshot_of(analysis: Analysis, catalog: &Catalog) -> Result<(Snapshot, Analysis), AnalyzeError> {
    let started = std::time::Instant::now();
    let (since_nano, until_nano) = (analysis.options().since_nano, analysis.options().until_nano);
    let in_memory = keep_spans_in_memory(&analysis, catalog).await?;
    let findings = run_checks(&analysis, catalog).await?;
    register_findings(&analysis, &findings)?;
    let checked = std::time::Instant::now();
    let completeness = completeness(&analysis, &findings).await?;
    tracing::debug!(seconds = checked.elapsed().as_secs_f64(), "completeness computed");
    drop(in_memory);
    let counted = analysis.collect("SELECT count(*) FROM window_spans").await?;
    let window_spans = match counted.first() {
        Some(batch) if batch.num_rows() > 0 => integer(batch, 0, 0)?.unwrap_or(0),
        _ => 0,
    };
    let counted = std::time::Instant::now();
    let dropped_calls = dropped_calls(&analysis).await?;
    let ingest_by_minute = ingest_by_minute(&analysis).await?;
    tracing::debug!(seconds = counted.elapsed().as_secs_f64(), "dropped calls and spans per minute counted");
    let snapshot = Snapshot {
        computed_at_nano: now_nano(),
        analysis_millis: started.elapsed().as_millis() as u64,
        since_nano,
        until_nano,
        window_spans,
        findings,
        completeness,
        dropped_calls,
        ingest_by_minute,
    };
    Ok((snapshot, analysis))
}

async fn dropped_calls(analysis: &Analysis) -> Result<Vec<DroppedCall>, AnalyzeError> {
    let sql = "SELECT coalesce(service_name, '<no service>'), callee, hex_id(trace_id), hex_id(span_id), \
               CAST(name AS VARCHAR), CAST(start_time AS BIGINT), hex_id(root_trace_id) \
               FROM unpropagated_calls ORDER BY 1, 2, 6";
    let mut calls = Vec::new();
    for batch in analysis.collect(sql).await? {
        for row in 0..batch.num_rows() {
            calls.push(DroppedCall {
                caller: text(&batch, 0, row)?.unwrap_or_default(),
                callee: text(&batch, 1, row)?.unwrap_or_default(),
                trace_id: text(&batch, 2, row)?,
                span_id: text(&batch, 3, row)?,
                span_name: text(&batch, 4, row)?,
                time_nano: integer(&batch, 5, row)?,
                callee_trace_id: text(&batch, 6, row)?,
            });
        }
    }
    Ok(calls)
}

async fn ingest_by_minute(analysis: &Analysis) -> Result<Vec<MinuteCount>, AnalyzeError> {
    let sql = "SELECT to_char(date_trunc('minute', receive_time), '%Y-%m-%dT%H:%M') AS minute, count(*) \
               FROM window_spans GROUP BY 1 ORDER BY 1";
    let mut minutes = Vec::new();
    for batch in analysis.collect(sql).await? {
        for row in 0..batch.num_rows() {
            minutes.push(MinuteCount {
                minute: text(&batch, 0, row)?.unwrap_or_default(),
                spans: integer(&batch, 1, row)?.unwrap_or(0),
            });
        }
    }
    Ok(minutes)
}

pub(crate) fn integer(batch: &RecordBatch, column: usize, row: usize) -> Result<Option<i64>, AnalyzeError> {
    let values = arrow::compute::cast(batch.column(column), &DataType::Int64)?;
    let values = values.as_primitive::<Int64Type>();
    Ok(values.is_valid(row).then(|| values.value(row)))
}

pub(crate) fn text(batch: &RecordBatch, column: usize, row: usize) -> Result<Option<String>, AnalyzeError> {
    let values = arrow::compute::cast(batch.column(column), &DataType::Utf8)?;
    let values = values.as_string::<i32>();
    Ok(values.is_valid(row).then(|| values.value(row).to_owned()))
}
