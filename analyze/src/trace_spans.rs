//! The spans of one trace, every column, for the trace view: looked up by trace id over every
//! stored span (a trace is shown whole, even where it crosses the window's edge).

use serde_json::{Map, Value};

use crate::AnalyzeError;
use crate::session::Analysis;

/// The spans of one trace, as JSON objects (one per span, ids in lowercase hex, times in ns).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TraceSpans {
    /// The trace id, normalised (32 lowercase hex digits).
    pub trace_id: String,
    /// The spans, by start time.
    pub spans: Vec<Map<String, Value>>,
    /// Whether more than the limit were stored (only the first spans are returned).
    pub truncated: bool,
}

/// Normalises a trace id typed or linked by a user: hex, 1 to 32 digits, left-padded to 32, as
/// the `trace_id` column stores a 64-bit id. `None` when it is not a trace id.
pub fn normalise_trace_id(text: &str) -> Option<String> {
    let text = text.trim().to_ascii_lowercase();
    if text.is_empty() || text.len() > 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(format!("{text:0>32}"))
}

// The ids as received: the raw column, or, where it is null, the normalised id's own bytes.
const COLUMNS: &str = "hex_id(trace_id) AS trace_id, hex_id(span_id) AS span_id, \
    hex_id(parent_span_id) AS parent_span_id, \
    coalesce(encode(trace_id_raw, 'hex'), hex_id(trace_id)) AS trace_id_raw, \
    coalesce(encode(span_id_raw, 'hex'), hex_id(span_id)) AS span_id_raw, \
    coalesce(encode(parent_span_id_raw, 'hex'), hex_id(parent_span_id), '') AS parent_span_id_raw, \
    trace_state, flags, parent_is_remote, name, kind, CAST(start_time AS BIGINT) AS start_time_nano, \
    CAST(end_time AS BIGINT) AS end_time_nano, duration_nano, status_code, status_message, service_name, \
    service_instance_id, host_name, host_id, host_ip, scope_name, scope_version, attributes, resource_attributes, \
    scope_attributes, events, links, dropped_attributes_count, dropped_events_count, dropped_links_count, \
    CAST(receive_time AS BIGINT) AS receive_time_nano, source";

/// Reads the spans of `trace_id` (see [`normalise_trace_id`]), at most `max_spans`.
pub async fn trace_spans(analysis: &Analysis, trace_id: &str, max_spans: usize) -> Result<TraceSpans, AnalyzeError> {
    let Some(trace_id) = normalise_trace_id(trace_id) else {
        return Err(AnalyzeError::Refused(format!("not a trace id: {:?} (1 to 32 hex digits)", clip(trace_id))));
    };
    // Files are sorted by trace id: the typed literal lets row-group statistics and the page index
    // prune, and filter pushdown decodes the other columns of matching rows only.
    let sql = format!(
        "SELECT {COLUMNS} FROM all_spans WHERE trace_id = arrow_cast(X'{trace_id}', 'FixedSizeBinary(16)') \
         ORDER BY start_time_nano, span_id LIMIT {}",
        max_spans + 1
    );
    analysis.context().sql("SET datafusion.execution.parquet.pushdown_filters = true").await?.collect().await?;
    let batches = analysis.context().sql(&sql).await?.collect().await?;
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    for batch in &batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    let bytes = writer.into_inner();
    let mut spans: Vec<Map<String, Value>> =
        if bytes.is_empty() { Vec::new() } else { serde_json::from_slice(&bytes).unwrap_or_default() };
    let truncated = spans.len() > max_spans;
    spans.truncate(max_spans);
    spans.iter_mut().for_each(links_with_ids_as_received);
    Ok(TraceSpans { trace_id, spans, truncated })
}

/// Fills each link's `trace_id_raw` and `span_id_raw` where the files leave them out (ids of the
/// normal length are stored once, normalised), as the span's own raw ids are in [`COLUMNS`].
fn links_with_ids_as_received(span: &mut Map<String, Value>) {
    let Some(Value::Array(links)) = span.get_mut("links") else {
        return;
    };
    for link in links.iter_mut().filter_map(Value::as_object_mut) {
        if link.get("trace_id_raw").is_none_or(Value::is_null) {
            let trace_id = link.get("trace_id").cloned().unwrap_or(Value::Null);
            link.insert("trace_id_raw".to_owned(), trace_id);
        }
        if link.get("span_id_raw").is_none_or(Value::is_null) {
            let span_id = link.get("span_id").and_then(Value::as_u64).map(|id| Value::String(format!("{id:016x}")));
            link.insert("span_id_raw".to_owned(), span_id.unwrap_or(Value::Null));
        }
    }
}

fn clip(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::normalise_trace_id;

    #[test]
    fn links_show_their_ids_as_received() {
        let mut span = serde_json::json!({"links": [
            {"trace_id": "0000000000000000000000000000abcd", "span_id": 18446744073709551615u64},
            {"trace_id": "0000000000000000000000000000abcd", "span_id": 1, "trace_id_raw": "abcd", "span_id_raw": "0001"},
        ]});
        super::links_with_ids_as_received(span.as_object_mut().unwrap());
        let links = span["links"].as_array().unwrap();
        assert_eq!(links[0]["trace_id_raw"], "0000000000000000000000000000abcd");
        assert_eq!(links[0]["span_id_raw"], "ffffffffffffffff", "a u64 beyond JavaScript's integers, in hex");
        assert_eq!((links[1]["trace_id_raw"].as_str(), links[1]["span_id_raw"].as_str()), (Some("abcd"), Some("0001")));
    }

    #[test]
    fn trace_ids_are_padded_and_checked() {
        assert_eq!(normalise_trace_id("ABC").as_deref(), Some("00000000000000000000000000000abc"));
        assert_eq!(normalise_trace_id(&"f".repeat(32)).as_deref(), Some("ffffffffffffffffffffffffffffffff"));
        assert_eq!(normalise_trace_id(&"f".repeat(33)), None);
        assert_eq!(normalise_trace_id("x'); DROP"), None);
        assert_eq!(normalise_trace_id(""), None);
    }
}
