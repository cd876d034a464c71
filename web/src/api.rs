//! The JSON API behind every page (`docs/api.md`). Handlers are small: pick the window's
//! snapshot, select, serialise.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracegap_analyze::completeness::{CompletenessRow, EdgeRow};
use tracegap_analyze::read_only_sql::query_read_only;
use tracegap_analyze::snapshot::DroppedCall;
use tracegap_analyze::trace_spans::{TraceSpans, normalise_trace_id};
use tracegap_analyze::{Check, Finding};

use crate::snapshot_cache::Computed;
use crate::window::{Window, WindowQuery, clip, time_parameter};
use crate::{WebError, WebState};

/// The API routes.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/api/overview", get(overview))
        .route("/api/findings", get(findings))
        .route("/api/traces/{trace_id}", get(trace))
        .route("/api/service-map", get(service_map))
        .route("/api/edges", get(edge))
        .route("/api/checks", get(checks))
        .route("/api/sql", post(sql))
}

/// Rows in the "worst" lists of the overview.
const WORST: usize = 10;
/// Largest page of findings.
const MOST_PER_PAGE: usize = 500;

pub(crate) async fn snapshot_for(state: &WebState, query: &WindowQuery) -> Result<Arc<Computed>, WebError> {
    let window = Window::from_query(query, &state.config.default_window)?;
    state.snapshots.get(&window).await
}

/// The window a response describes.
#[derive(Debug, Serialize)]
pub struct WindowInfo {
    /// `1h`, `all` or a range.
    pub label: String,
    /// Start, ns since the epoch.
    pub since_nano: Option<i64>,
    /// End, ns since the epoch.
    pub until_nano: Option<i64>,
    /// When the snapshot was computed.
    pub computed_at_nano: i64,
    /// How long its analysis took.
    pub analysis_millis: u64,
}

pub(crate) fn window_info(computed: &Computed) -> WindowInfo {
    WindowInfo {
        label: computed.window.label(),
        since_nano: computed.snapshot.since_nano,
        until_nano: computed.snapshot.until_nano,
        computed_at_nano: computed.snapshot.computed_at_nano,
        analysis_millis: computed.snapshot.analysis_millis,
    }
}

fn worst(rows: &[CompletenessRow]) -> Vec<&CompletenessRow> {
    let mut sorted: Vec<&CompletenessRow> = rows.iter().filter(|row| row.broken > 0).collect();
    sorted.sort_by(|a, b| a.completeness.total_cmp(&b.completeness).then(b.broken.cmp(&a.broken)));
    sorted.truncate(WORST);
    sorted
}

fn propagation_rate(edge: &EdgeRow) -> f64 {
    if edge.calls == 0 { 1.0 } else { (edge.calls - edge.dropped) as f64 / edge.calls as f64 }
}

/// The overview: completeness now and per minute, trace counts, ingest, findings per check, the
/// worst services, entry endpoints and edges.
pub fn overview_json(computed: &Computed, catalog_checks: &[Check], ingest: Option<Value>) -> Value {
    let snapshot = &computed.snapshot;
    let summary = &snapshot.completeness;
    let mut edges: Vec<&EdgeRow> = summary.edges.iter().filter(|edge| edge.dropped > 0).collect();
    edges.sort_by(|a, b| propagation_rate(a).total_cmp(&propagation_rate(b)).then(b.dropped.cmp(&a.dropped)));
    edges.truncate(WORST);
    let by_check: Vec<Value> = catalog_checks
        .iter()
        .map(|check| {
            let count = snapshot.findings.iter().filter(|f| *f.check == *check.id).count();
            json!({"check": check.id, "title": check.title, "severity": check.severity, "is_break": check.is_break, "findings": count})
        })
        .collect();
    json!({
        "window": window_info(computed),
        "completeness": summary.completeness,
        "judged_traces": summary.judged_traces,
        "pending_traces": summary.pending_traces,
        "broken_traces": summary.broken_traces,
        "window_spans": snapshot.window_spans,
        "by_minute": summary.by_minute,
        "ingest_by_minute": snapshot.ingest_by_minute,
        "ingest": ingest,
        "findings_by_check": by_check,
        "worst_services": worst(&summary.by_service),
        "worst_entry_points": worst(&summary.by_root_operation),
        "worst_edges": edges.iter().map(|edge| edge_json(edge)).collect::<Vec<_>>(),
    })
}

fn edge_json(edge: &EdgeRow) -> Value {
    json!({"caller": edge.caller, "callee": edge.callee, "calls": edge.calls, "propagated": edge.propagated,
           "dropped": edge.dropped, "propagation_rate": propagation_rate(edge)})
}

async fn overview(State(state): State<WebState>, Query(query): Query<WindowQuery>) -> Result<Json<Value>, WebError> {
    let computed = snapshot_for(&state, &query).await?;
    let figures = state.ingest.as_ref().map(|counters| counters.figures());
    let mut overview = overview_json(&computed, &state.snapshots.catalog().checks, figures.map(|f| json!(f)));
    if let Some(figures) = figures {
        overview["ingest_rate"] = json!(state.ingest_rate.sample(figures.spans_accepted));
    }
    Ok(Json(overview))
}

/// `GET /api/findings` parameters: the window, filters and the page.
#[derive(Debug, Default, Deserialize)]
pub struct FindingsQuery {
    window: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// Only this check.
    check: Option<String>,
    /// Only this service.
    service: Option<String>,
    /// Only this trace.
    trace_id: Option<String>,
    /// Findings at or after this time (RFC 3339), within the window.
    from: Option<String>,
    /// Findings before this time (RFC 3339).
    to: Option<String>,
    /// Page number, from 1.
    page: Option<usize>,
    /// Findings per page (at most 500).
    page_size: Option<usize>,
}

/// Selects findings; `None` filters match everything.
pub fn filter_findings<'a>(
    findings: &'a [Finding],
    check: Option<&str>,
    service: Option<&str>,
    trace_id: Option<&str>,
    from: Option<i64>,
    to: Option<i64>,
) -> Vec<&'a Finding> {
    findings
        .iter()
        .filter(|f| check.is_none_or(|check| &*f.check == check))
        .filter(|f| service.is_none_or(|service| f.service.as_deref() == Some(service)))
        .filter(|f| trace_id.is_none_or(|trace| f.trace_id.as_deref() == Some(trace)))
        .filter(|f| from.is_none_or(|from| f.time_nano.is_some_and(|t| t >= from)))
        .filter(|f| to.is_none_or(|to| f.time_nano.is_some_and(|t| t < to)))
        .collect()
}

async fn findings(State(state): State<WebState>, Query(query): Query<FindingsQuery>) -> Result<Json<Value>, WebError> {
    let window = WindowQuery { window: query.window.clone(), since: query.since.clone(), until: query.until.clone() };
    let computed = snapshot_for(&state, &window).await?;
    let nonempty =
        |value: &Option<String>| value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let trace_id = match nonempty(&query.trace_id) {
        Some(text) => Some(
            normalise_trace_id(&text)
                .ok_or_else(|| WebError::BadRequest(format!("trace_id: {:?} is not a trace id", clip(&text))))?,
        ),
        None => None,
    };
    let (check, service) = (nonempty(&query.check), nonempty(&query.service));
    let (from, to) = (time_parameter("from", &query.from)?, time_parameter("to", &query.to)?);
    let selected = filter_findings(
        &computed.snapshot.findings,
        check.as_deref(),
        service.as_deref(),
        trace_id.as_deref(),
        from,
        to,
    );
    let page_size = query.page_size.unwrap_or(50).clamp(1, MOST_PER_PAGE);
    let page = query.page.unwrap_or(1).max(1);
    let rows: Vec<&&Finding> = selected.iter().skip((page - 1).saturating_mul(page_size)).take(page_size).collect();
    let services: BTreeSet<&str> = computed.snapshot.findings.iter().filter_map(|f| f.service.as_deref()).collect();
    Ok(Json(json!({
        "window": window_info(&computed),
        "total": selected.len(),
        "page": page,
        "page_size": page_size,
        "pages": selected.len().div_ceil(page_size).max(1),
        "findings": rows,
        "services": services,
    })))
}

/// A trace with its findings and the traces related to it (the other halves of its breaks).
///
/// The spans come from `spans` (see [`crate::SnapshotCache::trace_spans`]), the findings from the
/// snapshot.
pub fn trace_json(computed: &Computed, catalog: &[Check], spans: TraceSpans) -> Result<Value, WebError> {
    let trace_id = spans.trace_id.clone();
    if spans.spans.is_empty() {
        return Err(WebError::NotFound(format!("no span of trace {trace_id} is stored")));
    }
    let findings: Vec<&Finding> =
        computed.snapshot.findings.iter().filter(|f| f.trace_id.as_deref() == Some(trace_id.as_str())).collect();
    let mut related: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for finding in &computed.snapshot.findings {
        if finding.trace_id.as_deref() == Some(trace_id.as_str())
            && let Some(other) = finding.related_trace_id.as_deref().filter(|other| *other != trace_id)
        {
            related.entry(other.to_owned()).or_default().insert(finding.check.to_string());
        }
        if finding.related_trace_id.as_deref() == Some(trace_id.as_str())
            && let Some(other) = finding.trace_id.as_deref().filter(|other| *other != trace_id)
        {
            related.entry(other.to_owned()).or_default().insert(finding.check.to_string());
        }
    }
    let found: BTreeSet<&str> = findings.iter().map(|f| &*f.check).collect();
    let checks: Vec<&Check> = catalog.iter().filter(|check| found.contains(check.id.as_str())).collect();
    Ok(json!({
        "trace_id": trace_id,
        "spans": spans.spans,
        "truncated": spans.truncated,
        "findings": findings,
        "checks": checks,
        "related": related.into_iter().map(|(trace_id, checks)| json!({"trace_id": trace_id, "checks": checks})).collect::<Vec<_>>(),
    }))
}

async fn trace(
    State(state): State<WebState>,
    Path(trace_id): Path<String>,
    Query(query): Query<WindowQuery>,
) -> Result<Json<Value>, WebError> {
    let trace_id = normalise_trace_id(&trace_id)
        .ok_or_else(|| WebError::BadRequest(format!("{:?} is not a trace id (1 to 32 hex digits)", clip(&trace_id))))?;
    let computed = snapshot_for(&state, &query).await?;
    let spans = state.snapshots.trace_spans(&trace_id, state.config.trace_max_spans).await?;
    Ok(Json(trace_json(&computed, &state.snapshots.catalog().checks, spans)?))
}

/// Services (nodes) and calls between them (edges), with propagation rates.
pub fn service_map_json(computed: &Computed) -> Value {
    let summary = &computed.snapshot.completeness;
    let mut nodes: BTreeMap<&str, Value> = summary
        .by_service
        .iter()
        .map(|row| (row.key.as_str(), json!({"service": row.key, "traces": row.traces, "broken": row.broken, "completeness": row.completeness})))
        .collect();
    for edge in &summary.edges {
        for service in [&edge.caller, &edge.callee] {
            nodes
                .entry(service.as_str())
                .or_insert_with(|| json!({"service": service, "traces": 0, "broken": 0, "completeness": 1.0}));
        }
    }
    json!({
        "window": window_info(computed),
        "nodes": nodes.into_values().collect::<Vec<_>>(),
        "edges": summary.edges.iter().map(edge_json).collect::<Vec<_>>(),
    })
}

async fn service_map(State(state): State<WebState>, Query(query): Query<WindowQuery>) -> Result<Json<Value>, WebError> {
    let computed = snapshot_for(&state, &query).await?;
    Ok(Json(service_map_json(&computed)))
}

/// `GET /api/edges` parameters.
#[derive(Debug, Deserialize)]
pub struct EdgeQuery {
    window: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// Calling service.
    caller: String,
    /// Called service.
    callee: String,
}

async fn edge(State(state): State<WebState>, Query(query): Query<EdgeQuery>) -> Result<Json<Value>, WebError> {
    let window = WindowQuery { window: query.window.clone(), since: query.since.clone(), until: query.until.clone() };
    let computed = snapshot_for(&state, &window).await?;
    let summary =
        computed.snapshot.completeness.edges.iter().find(|e| e.caller == query.caller && e.callee == query.callee);
    let dropped: Vec<&DroppedCall> = computed
        .snapshot
        .dropped_calls
        .iter()
        .filter(|call| call.caller == query.caller && call.callee == query.callee)
        .take(MOST_PER_PAGE)
        .collect();
    Ok(Json(json!({
        "window": window_info(&computed),
        "caller": query.caller,
        "callee": query.callee,
        "edge": summary.map(edge_json),
        "dropped_calls": dropped,
    })))
}

async fn checks(State(state): State<WebState>) -> Json<Value> {
    Json(json!({ "checks": state.snapshots.catalog().checks }))
}

/// `POST /api/sql` body.
#[derive(Debug, Deserialize)]
pub struct SqlRequest {
    /// One SELECT over `spans`, `findings`, `window_spans`, `all_spans`.
    pub query: String,
}

/// Longest query text accepted.
const LONGEST_QUERY: usize = 64 * 1024;
/// Longest cell text returned.
const LONGEST_CELL: usize = 2000;

async fn sql(
    State(state): State<WebState>,
    Query(window): Query<WindowQuery>,
    Json(request): Json<SqlRequest>,
) -> Result<Json<Value>, WebError> {
    if request.query.len() > LONGEST_QUERY {
        return Err(WebError::BadRequest(format!("query: longer than {LONGEST_QUERY} bytes")));
    }
    let computed = snapshot_for(&state, &window).await?;
    let started = std::time::Instant::now();
    let limit = state.config.sql_timeout;
    let batches =
        tokio::time::timeout(limit, query_read_only(&computed.analysis, &request.query, state.config.sql_max_rows))
            .await
            .map_err(|_| {
                WebError::Timeout(format!("query: stopped after the {} limit", humantime::format_duration(limit)))
            })??;
    let mut columns: Vec<String> = Vec::new();
    let mut rows: Vec<Vec<Option<String>>> = Vec::new();
    let options = arrow::util::display::FormatOptions::default();
    for batch in &batches {
        if columns.is_empty() {
            columns = batch.schema().fields().iter().map(|field| field.name().clone()).collect();
        }
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|column| arrow::util::display::ArrayFormatter::try_new(column.as_ref(), &options))
            .collect::<Result<_, _>>()
            .map_err(|error| WebError::Analysis(error.into()))?;
        for row in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(column, formatter)| {
                        column.is_valid(row).then(|| {
                            let text = formatter.value(row).to_string();
                            if text.len() > LONGEST_CELL {
                                format!("{}…", text.chars().take(LONGEST_CELL).collect::<String>())
                            } else {
                                text
                            }
                        })
                    })
                    .collect(),
            );
        }
    }
    if columns.is_empty()
        && let Some(batch) = batches.first()
    {
        columns = batch.schema().fields().iter().map(|field| field.name().clone()).collect();
    }
    Ok(Json(json!({
        "columns": columns,
        "rows": rows,
        "truncated": rows.len() >= state.config.sql_max_rows,
        "elapsed_millis": started.elapsed().as_millis() as u64,
    })))
}
