//! Jaeger JSON (UI download and query API `{"data": [traces]}`, or one trace object) into OTLP
//! messages.
//!
//! Mapping (also in `docs/import.md`), as Jaeger's own model reads it: ids are numbers, so short
//! hex is left-padded (trace ids to 16 bytes, span ids to 8). The parent is the first `CHILD_OF`
//! reference in the same trace, else the first `FOLLOWS_FROM` one (Jaeger's `ParentSpanID`);
//! every other reference becomes a link with `opentracing.ref_type` = `child_of` or
//! `follows_from`. `startTime`, `duration` and log timestamps µs → ns. Process → resource:
//! `serviceName` → `service.name`, the `hostname` tag → `host.name`, `ip` → `host.ip`, other tags
//! as they are. Tags keep their declared type; `span.kind` → span kind; `error=true` or
//! `otel.status_code=ERROR` → status ERROR (`otel.status_description` → message);
//! `otel.scope.name`/`otel.library.name` and their versions → scope; `w3c.tracestate` → trace
//! state. Logs → events named by their `event` field.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;

use crate::foreign_spans::{
    STATUS_ERROR, attribute, fixed_id_bytes, json_scalar_value, kind, kind_named, micros_to_nanos, string_attribute,
    text_value,
};
use crate::otlp_messages::{
    Event, InstrumentationScope, KeyValue, Link, Resource, ResourceSpans, ScopeSpans, Span, Status, Value,
};
pub use crate::zipkin_json::Converted;

#[derive(Deserialize, Default, Clone)]
struct Process {
    #[serde(default, rename = "serviceName")]
    service_name: String,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize, Clone)]
struct Tag {
    key: String,
    #[serde(default, rename = "type")]
    value_type: Option<String>,
    #[serde(default)]
    value: serde_json::Value,
}

#[derive(Deserialize)]
struct Reference {
    #[serde(rename = "refType")]
    ref_type: String,
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
}

#[derive(Deserialize)]
struct Log {
    #[serde(default)]
    timestamp: u64,
    #[serde(default)]
    fields: Vec<Tag>,
}

#[derive(Deserialize)]
struct JaegerSpan {
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
    #[serde(default, rename = "operationName")]
    operation_name: String,
    #[serde(default)]
    references: Vec<Reference>,
    #[serde(default, rename = "startTime")]
    start_time: u64,
    #[serde(default)]
    duration: u64,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    logs: Vec<Log>,
    #[serde(default, rename = "processID")]
    process_id: Option<String>,
    #[serde(default)]
    process: Option<Process>,
    #[serde(default)]
    flags: Option<u32>,
}

/// Converts a Jaeger document: `{"data": [trace, ...]}` or one trace `{"traceID", "spans",
/// "processes"}`. `first_index` is the index of the first trace in the whole `data` array, when
/// the document is a part of a bigger one: rejections name traces by that index.
pub fn convert_jaeger(document: serde_json::Value, first_index: u64) -> Result<Converted, String> {
    let serde_json::Value::Object(mut object) = document else {
        return Err("a Jaeger document is an object with `data` (an array of traces) or one trace".into());
    };
    let traces = match object.remove("data") {
        Some(serde_json::Value::Array(traces)) => traces,
        Some(serde_json::Value::Null) => Vec::new(),
        Some(_) => return Err("`data` is not an array of traces".into()),
        None if object.contains_key("spans") => vec![serde_json::Value::Object(object)],
        None => return Err("neither `data` nor `spans`: not a Jaeger document".into()),
    };
    let mut converted = Converted::default();
    let mut resources: BTreeMap<String, (Process, BTreeMap<(String, String), Vec<Span>>)> = BTreeMap::new();
    for (trace_index, trace) in traces.into_iter().enumerate() {
        let place = first_index + trace_index as u64;
        let serde_json::Value::Object(mut trace) = trace else {
            converted.rejections.push(format!("data[{place}]: not a trace object"));
            continue;
        };
        let processes: HashMap<String, Process> = match trace.remove("processes") {
            Some(value) => match serde_json::from_value(value) {
                Ok(processes) => processes,
                Err(error) => {
                    converted.rejections.push(format!("data[{place}].processes: {error}"));
                    HashMap::new()
                }
            },
            None => HashMap::new(),
        };
        let spans = match trace.remove("spans") {
            Some(serde_json::Value::Array(spans)) => spans,
            _ => {
                converted.rejections.push(format!("data[{place}]: no `spans` array"));
                continue;
            }
        };
        for (span_index, span) in spans.into_iter().enumerate() {
            let at = format!("data[{place}].spans[{span_index}]");
            let span: JaegerSpan = match serde_json::from_value(span) {
                Ok(span) => span,
                Err(error) => {
                    converted.rejections.push(format!("{at}: {error}"));
                    continue;
                }
            };
            let process = match (&span.process, &span.process_id) {
                (Some(process), _) => process.clone(),
                (None, Some(id)) => match processes.get(id) {
                    Some(process) => process.clone(),
                    None => {
                        converted.rejections.push(format!("{at}: processID {id:?} is not in the trace's processes"));
                        continue;
                    }
                },
                (None, None) => Process::default(),
            };
            match convert_span(span) {
                Ok((scope, span)) => {
                    let key =
                        serde_json::to_string(&(&process.service_name, process_key(&process))).unwrap_or_default();
                    let entry = resources.entry(key).or_insert_with(|| (process, BTreeMap::new()));
                    entry.1.entry(scope).or_default().push(span);
                }
                Err(message) => converted.rejections.push(format!("{at}: {message}")),
            }
        }
    }
    for (_, (process, scopes)) in resources {
        let mut attributes = Vec::new();
        if !process.service_name.is_empty() {
            attributes.push(string_attribute("service.name", &process.service_name));
        }
        for tag in &process.tags {
            let key = match tag.key.as_str() {
                "hostname" => "host.name",
                "ip" => "host.ip",
                other => other,
            };
            attributes.push(attribute(key, tag_value(tag)));
        }
        let scope_spans = scopes
            .into_iter()
            .map(|((name, version), spans)| ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: Bytes::from(name),
                    version: Bytes::from(version),
                    ..Default::default()
                }),
                spans,
                schema_url: Bytes::new(),
            })
            .collect();
        converted.request.resource_spans.push(ResourceSpans {
            resource: Some(Resource { attributes, dropped_attributes_count: 0 }),
            scope_spans,
            schema_url: Bytes::new(),
        });
    }
    Ok(converted)
}

fn process_key(process: &Process) -> Vec<(String, String)> {
    process.tags.iter().map(|t| (t.key.clone(), t.value.to_string())).collect()
}

fn tag_value(tag: &Tag) -> Value {
    let as_text = || match &tag.value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    match tag.value_type.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("string") => text_value(&as_text()),
        Some("bool") => match &tag.value {
            serde_json::Value::Bool(flag) => Value::Bool(*flag),
            other => Value::Bool(other.as_str() == Some("true")),
        },
        Some("int64") => match &tag.value {
            serde_json::Value::Number(n) => n.as_i64().map(Value::Int).unwrap_or_else(|| text_value(&as_text())),
            other => {
                other.as_str().and_then(|s| s.parse().ok()).map(Value::Int).unwrap_or_else(|| text_value(&as_text()))
            }
        },
        Some("float64") => match &tag.value {
            serde_json::Value::Number(n) => Value::Double(n.as_f64().unwrap_or_default()),
            other => {
                other.as_str().and_then(|s| s.parse().ok()).map(Value::Double).unwrap_or_else(|| text_value(&as_text()))
            }
        },
        Some("binary") => match base64::engine::general_purpose::STANDARD.decode(as_text()) {
            Ok(bytes) => Value::Bytes(Bytes::from(bytes)),
            Err(_) => text_value(&as_text()),
        },
        _ => json_scalar_value(&tag.value),
    }
}

fn tag_text(tag: &Tag) -> String {
    match &tag.value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn convert_span(jaeger: JaegerSpan) -> Result<((String, String), Span), String> {
    let trace_id = fixed_id_bytes(&jaeger.trace_id, 16).map_err(|e| format!("traceID {e}"))?;
    let span_id = fixed_id_bytes(&jaeger.span_id, 8).map_err(|e| format!("spanID {e}"))?;
    let mut references = Vec::with_capacity(jaeger.references.len());
    for (index, reference) in jaeger.references.iter().enumerate() {
        let at = |e: String| format!("references[{index}]: {e}");
        let ref_trace = fixed_id_bytes(&reference.trace_id, 16).map_err(at)?;
        let ref_span = fixed_id_bytes(&reference.span_id, 8).map_err(at)?;
        let ref_type = match reference.ref_type.to_ascii_uppercase().as_str() {
            "CHILD_OF" => "child_of",
            "FOLLOWS_FROM" => "follows_from",
            other => return Err(format!("references[{index}]: refType {other:?} is not CHILD_OF or FOLLOWS_FROM")),
        };
        references.push((ref_type, ref_trace, ref_span));
    }
    // Jaeger's ParentSpanID: the first CHILD_OF in the same trace, else the first FOLLOWS_FROM.
    let parent = references
        .iter()
        .position(|(t, trace, _)| *t == "child_of" && *trace == trace_id)
        .or_else(|| references.iter().position(|(t, trace, _)| *t == "follows_from" && *trace == trace_id));
    let parent_span_id = parent.map(|index| references[index].2.clone()).unwrap_or_default();
    let links = references
        .into_iter()
        .enumerate()
        .filter(|(index, _)| Some(*index) != parent)
        .map(|(_, (ref_type, trace_id, span_id))| Link {
            trace_id,
            span_id,
            attributes: vec![string_attribute("opentracing.ref_type", ref_type)],
            ..Default::default()
        })
        .collect();
    let mut span_kind = 0;
    let mut status: Option<Status> = None;
    let mut status_message = None;
    let (mut scope_name, mut scope_version) = (String::new(), String::new());
    let mut trace_state = Bytes::new();
    let mut attributes = Vec::with_capacity(jaeger.tags.len());
    for tag in &jaeger.tags {
        match tag.key.as_str() {
            "span.kind" => span_kind = kind_named(&tag_text(tag)).unwrap_or(kind::INTERNAL),
            "error" if tag_text(tag) == "true" => status = Some(Status { code: STATUS_ERROR, ..Default::default() }),
            "otel.status_code" => {
                if tag_text(tag).eq_ignore_ascii_case("ERROR") {
                    status = Some(Status { code: STATUS_ERROR, ..Default::default() });
                } else if tag_text(tag).eq_ignore_ascii_case("OK") {
                    status = Some(Status { code: 1, ..Default::default() });
                }
            }
            "otel.status_description" => status_message = Some(tag_text(tag)),
            "otel.scope.name" | "otel.library.name" => scope_name = tag_text(tag),
            "otel.scope.version" | "otel.library.version" => scope_version = tag_text(tag),
            "w3c.tracestate" => trace_state = Bytes::from(tag_text(tag)),
            _ => attributes.push(attribute(&tag.key, tag_value(tag))),
        }
    }
    if let (Some(status), Some(message)) = (status.as_mut(), status_message) {
        status.message = Bytes::from(message);
    }
    let events = jaeger
        .logs
        .iter()
        .map(|log| {
            let name = log.fields.iter().find(|f| f.key == "event").map(tag_text).unwrap_or_default();
            let attributes: Vec<KeyValue> =
                log.fields.iter().filter(|f| f.key != "event").map(|f| attribute(&f.key, tag_value(f))).collect();
            Event {
                time_unix_nano: micros_to_nanos(log.timestamp),
                name: Bytes::from(name),
                attributes,
                ..Default::default()
            }
        })
        .collect();
    let start = micros_to_nanos(jaeger.start_time);
    let span = Span {
        trace_id,
        span_id,
        trace_state,
        parent_span_id,
        name: Bytes::from(jaeger.operation_name),
        kind: span_kind,
        start_time_unix_nano: start,
        end_time_unix_nano: start.saturating_add(micros_to_nanos(jaeger.duration)),
        attributes,
        events,
        links,
        status,
        flags: jaeger.flags.unwrap_or(0) & 0xff,
        ..Default::default()
    };
    Ok(((scope_name, scope_version), span))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_become_a_parent_and_links_as_jaeger_reads_them() {
        let document = serde_json::json!({"traceID": "f77950feed55c1ce91dd8e87896623a6",
        "processes": {"p1": {"serviceName": "svc", "tags": [{"key": "hostname", "type": "string", "value": "h1"}]}},
        "spans": [
          {"traceID": "f77950feed55c1ce91dd8e87896623a6", "spanID": "23", "operationName": "op",
           "references": [{"refType": "FOLLOWS_FROM", "traceID": "f77950feed55c1ce91dd8e87896623a6", "spanID": "20"},
                          {"refType": "CHILD_OF", "traceID": "f77950feed55c1ce91dd8e87896623a6", "spanID": "21"},
                          {"refType": "CHILD_OF", "traceID": "f77950feed55c1ce91dd8e87896623a6", "spanID": "22"}],
           "startTime": 1586160015434000u64, "duration": 34000, "processID": "p1",
           "tags": [{"key": "span.kind", "type": "string", "value": "client"}, {"key": "n", "type": "int64", "value": 3}],
           "logs": [{"timestamp": 1586160015434001u64, "fields": [{"key": "event", "value": "retry"}]}]},
          {"traceID": "f77950feed55c1ce91dd8e87896623a6", "spanID": "24", "processID": "p9"}
        ]});
        let converted = convert_jaeger(document, 0).unwrap();
        assert_eq!(
            converted.rejections,
            vec!["data[0].spans[1]: processID \"p9\" is not in the trace's processes".to_owned()]
        );
        let resource = &converted.request.resource_spans[0];
        assert_eq!(resource.resource.as_ref().unwrap().attributes[1].key.as_ref(), b"host.name");
        let span = &resource.scope_spans[0].spans[0];
        assert_eq!(span.span_id.as_ref(), &[0, 0, 0, 0, 0, 0, 0, 0x23]);
        assert_eq!(span.parent_span_id.as_ref(), &[0, 0, 0, 0, 0, 0, 0, 0x21], "the first CHILD_OF is the parent");
        assert_eq!(span.links.len(), 2);
        assert_eq!(span.kind, kind::CLIENT);
        assert_eq!(span.end_time_unix_nano - span.start_time_unix_nano, 34_000_000);
        assert_eq!(span.events[0].name.as_ref(), b"retry");
    }
}
