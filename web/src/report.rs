//! `tracegap report`: one self-contained HTML file — overview, findings, service map and the
//! waterfalls of broken traces — that opens offline. The data travels as JSON in a
//! non-executable script element, the same script as the dashboard renders it, and a
//! Content-Security-Policy allows only that script and style (by hash).

use std::collections::BTreeSet;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tracegap_analyze::Catalog;
use tracegap_analyze::trace_spans::trace_spans;

use crate::WebError;
use crate::api::{overview_json, service_map_json, trace_json};
use crate::pages::{APP_SCRIPT, STYLE, shell};
use crate::snapshot_cache::Computed;

/// How much a report holds, so a huge analysis still gives a file a browser opens.
#[derive(Debug, Clone, Copy)]
pub struct ReportLimits {
    /// Findings listed.
    pub findings: usize,
    /// Broken traces drawn as waterfalls.
    pub traces: usize,
    /// Spans per waterfall.
    pub spans_per_trace: usize,
}

impl Default for ReportLimits {
    fn default() -> Self {
        ReportLimits { findings: 10_000, traces: 100, spans_per_trace: 1000 }
    }
}

/// Renders the report of a snapshot.
pub async fn render_report(computed: &Computed, catalog: &Catalog, limits: ReportLimits) -> Result<String, WebError> {
    // The report reads the session it was analysed in: one consistent picture.
    let findings = &computed.snapshot.findings;
    let mut broken: Vec<&str> = Vec::new();
    let mut seen = BTreeSet::new();
    for finding in findings.iter().filter(|f| f.is_break) {
        if let Some(trace) = finding.trace_id.as_deref()
            && broken.len() < limits.traces
            && seen.insert(trace)
        {
            broken.push(trace);
        }
    }
    let mut traces = Map::new();
    for trace in broken {
        let spans = trace_spans(&computed.analysis, trace, limits.spans_per_trace).await?;
        match trace_json(computed, &catalog.checks, spans) {
            Ok(value) => {
                traces.insert(trace.to_owned(), value);
            }
            Err(WebError::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
    }
    let data = json!({
        "generated_at_nano": tracegap_analyze::session::now_nano(),
        "overview": overview_json(computed, &catalog.checks, None),
        "findings": findings.iter().take(limits.findings).collect::<Vec<_>>(),
        "findings_total": findings.len(),
        "service_map": service_map_json(computed),
        "dropped_calls": computed.snapshot.dropped_calls.iter().take(limits.findings).collect::<Vec<_>>(),
        "checks": catalog.checks,
        "traces": Value::Object(traces),
    });
    Ok(report_html(&data))
}

/// Makes JSON safe inside a `<script>` element: no `<`, `>` or `&` can end it or open a comment.
pub fn script_safe_json(value: &Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn hash(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

fn report_html(data: &Value) -> String {
    let policy = format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; img-src data:; base-uri 'none'; form-action 'none'",
        hash(APP_SCRIPT),
        hash(STYLE)
    );
    let head = format!("<meta http-equiv=\"Content-Security-Policy\" content=\"{policy}\">\n<style>{STYLE}</style>");
    let body_end = format!(
        "<script type=\"application/json\" id=\"tracegap-report\">{}</script>\n<script>{APP_SCRIPT}</script>",
        script_safe_json(data)
    );
    shell(&head, &body_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_cannot_close_its_script_element() {
        let text = script_safe_json(&json!({"name": "</script><script>alert(1)</script> & <!--"}));
        assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["name"], "</script><script>alert(1)</script> & <!--");
    }
}
