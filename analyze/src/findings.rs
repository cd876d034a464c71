//! Running checks: each check's query becomes findings, every id in lowercase hex.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use datafusion::datasource::MemTable;
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::AnalyzeError;
use crate::check_catalog::{Catalog, Check, Severity, View};
use crate::materialized_view::hold_view;
use crate::session::Analysis;

/// One break (or informational finding) in one trace.
///
/// Held compactly: on 100M spans a run has millions of them. The check's id is shared by its
/// findings, text is boxed to its length, and the RFC 3339 time is written only when serialised
/// (152 bytes inline instead of 240, and two allocations fewer per finding).
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The check that found it.
    pub check: Arc<str>,
    /// Its severity.
    pub severity: Severity,
    /// Whether it makes its trace incomplete.
    pub is_break: bool,
    /// Trace id (lowercase hex).
    pub trace_id: Option<Box<str>>,
    /// Span id (lowercase hex).
    pub span_id: Option<Box<str>>,
    /// Service of the span.
    pub service: Option<Box<str>>,
    /// Span name.
    pub span_name: Option<Box<str>>,
    /// When (the span's start), ns since the epoch.
    pub time_nano: Option<i64>,
    /// One line with the concrete values.
    pub explanation: Box<str>,
    /// The related trace (the other half of a break), if any.
    pub related_trace_id: Option<Box<str>>,
    /// The related span, if any.
    pub related_span_id: Option<Box<str>>,
}

impl Finding {
    /// When, RFC 3339.
    pub fn time(&self) -> Option<String> {
        self.time_nano.map(rfc3339)
    }
}

/// The fields in alphabetical order (as `tracegap check --format json` has always written them),
/// with `time` in RFC 3339 beside `time_nano`.
impl Serialize for Finding {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut finding = serializer.serialize_struct("Finding", 12)?;
        finding.serialize_field("check", &*self.check)?;
        finding.serialize_field("explanation", &self.explanation)?;
        finding.serialize_field("is_break", &self.is_break)?;
        finding.serialize_field("related_span_id", &self.related_span_id)?;
        finding.serialize_field("related_trace_id", &self.related_trace_id)?;
        finding.serialize_field("service", &self.service)?;
        finding.serialize_field("severity", &self.severity)?;
        finding.serialize_field("span_id", &self.span_id)?;
        finding.serialize_field("span_name", &self.span_name)?;
        finding.serialize_field("time", &self.time())?;
        finding.serialize_field("time_nano", &self.time_nano)?;
        finding.serialize_field("trace_id", &self.trace_id)?;
        finding.end()
    }
}

/// RFC 3339 (UTC, ns) of a time in ns since the epoch.
pub fn rfc3339(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The query that collects a check's findings from its SQL: the columns of a [`Finding`], ids in
/// lowercase hex, each finding once, in time order.
pub fn finding_query(check_sql: &str) -> String {
    format!(
        "SELECT DISTINCT hex_id(trace_id) AS trace_id, hex_id(span_id) AS span_id, \
         CAST(service AS VARCHAR) AS service, CAST(span_name AS VARCHAR) AS span_name, \
         CAST(time AS BIGINT) AS time, CAST(explanation AS VARCHAR) AS explanation, \
         hex_id(related_trace_id) AS related_trace_id, hex_id(related_span_id) AS related_span_id \
         FROM ({check_sql}) AS finding ORDER BY time, trace_id, span_id"
    )
}

/// Registers the catalogue's shared views, then runs its checks over the session's judged spans,
/// in catalogue order.
pub async fn run_checks(analysis: &Analysis, catalog: &Catalog) -> Result<Vec<Finding>, AnalyzeError> {
    register_views(analysis, &catalog.views).await?;
    let mut findings = Vec::new();
    for check in &catalog.checks {
        findings.extend(run_check(analysis, check).await?);
    }
    Ok(findings)
}

/// Runs one check over the session's judged spans (the views it reads must be registered).
pub async fn run_check(analysis: &Analysis, check: &Check) -> Result<Vec<Finding>, AnalyzeError> {
    let mut findings = Vec::new();
    let sql = finding_query(&check.sql);
    let failed = |source| AnalyzeError::Check { id: check.id.clone(), origin: check.origin.clone(), source };
    let started = std::time::Instant::now();
    let batches = analysis.collect(&sql).await.map_err(failed)?;
    tracing::debug!(check = %check.id, seconds = started.elapsed().as_secs_f64(), "check ran");
    for batch in batches {
        let text = |index: usize| -> Result<StringArray, AnalyzeError> {
            let column = arrow::compute::cast(batch.column(index), &DataType::Utf8)?;
            Ok(column.as_string::<i32>().clone())
        };
        let (trace, span, service, name, explanation, related_trace, related_span) =
            (text(0)?, text(1)?, text(2)?, text(3)?, text(5)?, text(6)?, text(7)?);
        let time = arrow::compute::cast(batch.column(4), &DataType::Int64)?;
        let time = time.as_primitive::<Int64Type>();
        let value = |array: &StringArray, row: usize| array.is_valid(row).then(|| Box::from(array.value(row)));
        let id: Arc<str> = Arc::from(check.id.as_str());
        for row in 0..batch.num_rows() {
            let time_nano = time.is_valid(row).then(|| time.value(row));
            findings.push(Finding {
                check: id.clone(),
                severity: check.severity,
                is_break: check.is_break,
                trace_id: value(&trace, row),
                span_id: value(&span, row),
                service: value(&service, row),
                span_name: value(&name, row),
                time_nano,
                explanation: value(&explanation, row).unwrap_or_default(),
                related_trace_id: value(&related_trace, row),
                related_span_id: value(&related_span, row),
            });
        }
    }
    Ok(findings)
}

/// Registers (or replaces) the views the checks share.
pub async fn register_views(analysis: &Analysis, views: &[View]) -> Result<(), AnalyzeError> {
    for view in views {
        let failed = |source| AnalyzeError::View { name: view.name.clone(), origin: view.origin.clone(), source };
        let _ = analysis.context().deregister_table(view.name.as_str());
        let statement = format!("CREATE OR REPLACE VIEW {} AS {}", view.name, view.sql);
        analysis.context().sql(&statement).await.map_err(failed)?.collect().await.map_err(failed)?;
        if view.materialize {
            // Once, now, instead of once per reader.
            let started = std::time::Instant::now();
            let frame = analysis.context().table(view.name.as_str()).await.map_err(failed)?;
            let batches = analysis.collect(&format!("SELECT * FROM {}", view.name)).await.map_err(failed)?;
            // The batches' own schema where there are any: the planned one can declare a column
            // non-nullable (`coalesce(x, false)`) that the executed plan marks nullable.
            let schema = match batches.first() {
                Some(batch) => batch.schema(),
                None => Arc::new(frame.schema().as_arrow().clone()),
            };
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            analysis.context().deregister_table(view.name.as_str()).map_err(failed)?;
            let (table, placement, bytes) = hold_view(analysis, &view.name, schema, batches).await.map_err(failed)?;
            analysis.context().register_table(view.name.as_str(), table).map_err(failed)?;
            tracing::debug!(view = %view.name, rows, bytes, ?placement, seconds = started.elapsed().as_secs_f64(), "view materialized");
        }
    }
    Ok(())
}

/// Registers findings as the table `findings`, so SQL can join them with `spans`.
pub fn register_findings(analysis: &Analysis, findings: &[Finding]) -> Result<(), AnalyzeError> {
    let text = |values: Vec<Option<&str>>| Arc::new(StringArray::from(values)) as ArrayRef;
    let schema = Arc::new(Schema::new(vec![
        Field::new("check", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        Field::new("is_break", DataType::Boolean, false),
        Field::new("trace_id", DataType::Utf8, true),
        Field::new("span_id", DataType::Utf8, true),
        Field::new("service", DataType::Utf8, true),
        Field::new("span_name", DataType::Utf8, true),
        Field::new("time_nano", DataType::Int64, true),
        Field::new("explanation", DataType::Utf8, false),
        Field::new("related_trace_id", DataType::Utf8, true),
        Field::new("related_span_id", DataType::Utf8, true),
    ]));
    let column = |get: fn(&Finding) -> Option<&str>| text(findings.iter().map(get).collect());
    let severities: Vec<Option<String>> = findings
        .iter()
        .map(|finding| Some(serde_json::to_value(finding.severity).ok()?.as_str()?.to_owned()))
        .collect();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            text(findings.iter().map(|f| Some(&*f.check)).collect()),
            text(severities.iter().map(Option::as_deref).collect()),
            Arc::new(BooleanArray::from(findings.iter().map(|f| f.is_break).collect::<Vec<_>>())),
            column(|f| f.trace_id.as_deref()),
            column(|f| f.span_id.as_deref()),
            column(|f| f.service.as_deref()),
            column(|f| f.span_name.as_deref()),
            Arc::new(Int64Array::from(findings.iter().map(|f| f.time_nano).collect::<Vec<_>>())),
            text(findings.iter().map(|f| Some(&*f.explanation)).collect()),
            column(|f| f.related_trace_id.as_deref()),
            column(|f| f.related_span_id.as_deref()),
        ],
    )?;
    let _ = analysis.context().deregister_table("findings");
    analysis.context().register_table("findings", Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding() -> Finding {
        Finding {
            check: Arc::from("orphaned_span"),
            severity: Severity::Error,
            is_break: true,
            trace_id: Some(Box::from("4bf92f3577b34da6a3ce929d0e0e4736")),
            span_id: Some(Box::from("00f067aa0ba902b7")),
            service: Some(Box::from("checkout")),
            span_name: None,
            time_nano: Some(1_700_000_000_010_000_000),
            explanation: Box::from("parent 3f2a not in trace of 14 spans"),
            related_trace_id: None,
            related_span_id: None,
        }
    }

    #[test]
    fn a_finding_is_held_compactly() {
        // Millions of findings on 100M spans: every inline byte counts (240 with `String`s and
        // the RFC 3339 time stored).
        assert!(std::mem::size_of::<Finding>() <= 152, "{} bytes", std::mem::size_of::<Finding>());
    }

    #[test]
    fn a_finding_serialises_its_fields_in_alphabetical_order_with_the_time_in_rfc_3339() {
        let json = serde_json::to_string(&finding()).unwrap();
        assert_eq!(
            json,
            "{\"check\":\"orphaned_span\",\"explanation\":\"parent 3f2a not in trace of 14 spans\",\
             \"is_break\":true,\"related_span_id\":null,\"related_trace_id\":null,\"service\":\"checkout\",\
             \"severity\":\"error\",\"span_id\":\"00f067aa0ba902b7\",\"span_name\":null,\
             \"time\":\"2023-11-14T22:13:20.010000000Z\",\"time_nano\":1700000000010000000,\
             \"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}"
        );
    }
}
