//! `/metrics`: completeness, findings and ingest counters in the Prometheus text format, from
//! the metrics window's snapshot, so SREs alert from their own Prometheus and Grafana.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::snapshot_cache::Computed;
use crate::{IngestFigures, WebError, WebState};

/// The metrics route.
pub fn routes() -> Router<WebState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<WebState>) -> Result<impl IntoResponse, WebError> {
    let computed = state.snapshots.get(&state.config.metrics_window).await?;
    let catalog = state.snapshots.catalog();
    let ingest = state.ingest.as_ref().map(|counters| counters.figures());
    let text = render(&computed, &catalog.checks.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ingest);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text))
}

/// Escapes a label value: backslash, double quote and newline, as the text format requires.
pub fn label_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The metrics text of a snapshot, every check of `check_ids` listed (zero when none).
pub fn render(computed: &Computed, check_ids: &[&str], ingest: Option<IngestFigures>) -> String {
    let snapshot = &computed.snapshot;
    let summary = &snapshot.completeness;
    let window = label_value(&computed.window.label());
    let mut out = String::new();
    family(
        &mut out,
        "tracegap_completeness_ratio",
        "gauge",
        "Judged traces without a break, over judged traces, in the window.",
    );
    let _ = writeln!(out, "tracegap_completeness_ratio{{window=\"{window}\"}} {}", summary.completeness);
    family(
        &mut out,
        "tracegap_service_completeness_ratio",
        "gauge",
        "Completeness of the traces that contain a span of the service.",
    );
    for row in &summary.by_service {
        let _ = writeln!(
            out,
            "tracegap_service_completeness_ratio{{window=\"{window}\",service=\"{}\"}} {}",
            label_value(&row.key),
            row.completeness
        );
    }
    family(&mut out, "tracegap_traces", "gauge", "Traces in the window: judged, broken, pending (still arriving).");
    for (state, count) in
        [("judged", summary.judged_traces), ("broken", summary.broken_traces), ("pending", summary.pending_traces)]
    {
        let _ = writeln!(out, "tracegap_traces{{window=\"{window}\",state=\"{state}\"}} {count}");
    }
    family(&mut out, "tracegap_pending_traces", "gauge", "Traces whose newest span arrived within the settle time.");
    let _ = writeln!(out, "tracegap_pending_traces{{window=\"{window}\"}} {}", summary.pending_traces);
    family(&mut out, "tracegap_findings", "gauge", "Findings per check in the window.");
    for id in check_ids {
        let count = snapshot.findings.iter().filter(|f| *f.check == **id).count();
        let _ = writeln!(out, "tracegap_findings{{window=\"{window}\",check=\"{}\"}} {count}", label_value(id));
    }
    family(&mut out, "tracegap_edge_calls", "gauge", "Calls along a service edge in the window, by outcome.");
    for edge in &summary.edges {
        let (caller, callee) = (label_value(&edge.caller), label_value(&edge.callee));
        for (outcome, count) in [("all", edge.calls), ("propagated", edge.propagated), ("dropped", edge.dropped)] {
            let _ = writeln!(
                out,
                "tracegap_edge_calls{{window=\"{window}\",caller=\"{caller}\",callee=\"{callee}\",outcome=\"{outcome}\"}} {count}"
            );
        }
    }
    family(&mut out, "tracegap_analysis_seconds", "gauge", "How long the last analysis of the window took.");
    let _ =
        writeln!(out, "tracegap_analysis_seconds{{window=\"{window}\"}} {}", snapshot.analysis_millis as f64 / 1000.0);
    if let Some(ingest) = ingest {
        family(&mut out, "tracegap_ingest_requests_total", "counter", "OTLP export requests received, by outcome.");
        let accepted = ingest.requests.saturating_sub(ingest.requests_invalid + ingest.requests_refused);
        for (outcome, count) in
            [("accepted", accepted), ("invalid", ingest.requests_invalid), ("refused", ingest.requests_refused)]
        {
            let _ = writeln!(out, "tracegap_ingest_requests_total{{outcome=\"{outcome}\"}} {count}");
        }
        family(&mut out, "tracegap_ingest_spans_total", "counter", "Spans received, accepted or rejected.");
        let _ = writeln!(out, "tracegap_ingest_spans_total{{outcome=\"accepted\"}} {}", ingest.spans_accepted);
        let _ = writeln!(out, "tracegap_ingest_spans_total{{outcome=\"rejected\"}} {}", ingest.spans_rejected);
        family(&mut out, "tracegap_ingest_bytes_total", "counter", "Request bytes received, as sent.");
        let _ = writeln!(out, "tracegap_ingest_bytes_total {}", ingest.bytes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::label_value;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(label_value("<script>"), "<script>");
    }
}
