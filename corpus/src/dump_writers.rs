//! Writes export requests as the dumps other tools produce, so the corpus can be imported back:
//! OTLP JSON lines (the Collector's file exporter), OTLP protobuf records (4-byte length
//! prefixes), Jaeger JSON (`{"data": [...]}`) and Zipkin v2 JSON (an array of spans).

use std::collections::BTreeMap;
use std::io::{self, Write};

use prost::Message;
use serde_json::{Value as Json, json};
use tracegap_ingest::otlp_messages::{AnyValue, ExportRequest, KeyValue, Span, Value};

/// A dump format the writers produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpKind {
    /// One `{"resourceSpans": …}` per line.
    OtlpJsonLines,
    /// Length-prefixed protobuf `TracesData` records.
    OtlpProtobufRecords,
    /// Jaeger JSON: every request's traces under `data`.
    Jaeger,
    /// Zipkin v2 JSON: an array of spans.
    Zipkin,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn any_value_json(value: Option<&AnyValue>) -> Json {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::String(s)) => json!({"stringValue": text(s)}),
        Some(Value::Bool(b)) => json!({"boolValue": b}),
        Some(Value::Int(i)) => json!({"intValue": i.to_string()}),
        Some(Value::Double(d)) => json!({"doubleValue": d}),
        Some(Value::Array(a)) => {
            json!({"arrayValue": {"values": a.values.iter().map(|v| any_value_json(Some(v))).collect::<Vec<_>>()}})
        }
        Some(Value::KeyValueList(l)) => json!({"kvlistValue": {"values": attributes_json(&l.values)}}),
        Some(Value::Bytes(b)) => json!({"bytesValue": base64_encode(b)}),
        None => json!({}),
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn attributes_json(attributes: &[KeyValue]) -> Vec<Json> {
    attributes.iter().map(|a| json!({"key": text(&a.key), "value": any_value_json(a.value.as_ref())})).collect()
}

/// One export request as OTLP JSON (hex ids, 64-bit integers as strings, enums as integers).
pub fn otlp_json(request: &ExportRequest) -> Json {
    let resource_spans: Vec<Json> = request
        .resource_spans
        .iter()
        .map(|resource_spans| {
            let resource = resource_spans.resource.as_ref().map(|r| attributes_json(&r.attributes)).unwrap_or_default();
            let scopes: Vec<Json> = resource_spans
                .scope_spans
                .iter()
                .map(|scope_spans| {
                    let scope =
                        scope_spans.scope.as_ref().map(|s| json!({"name": text(&s.name), "version": text(&s.version)}));
                    let spans: Vec<Json> = scope_spans.spans.iter().map(span_json).collect();
                    json!({"scope": scope, "spans": spans})
                })
                .collect();
            json!({"resource": {"attributes": resource}, "scopeSpans": scopes})
        })
        .collect();
    json!({"resourceSpans": resource_spans})
}

fn span_json(span: &Span) -> Json {
    let mut object = json!({
        "traceId": hex(&span.trace_id),
        "spanId": hex(&span.span_id),
        "name": text(&span.name),
        "kind": span.kind,
        "startTimeUnixNano": span.start_time_unix_nano.to_string(),
        "endTimeUnixNano": span.end_time_unix_nano.to_string(),
        "attributes": attributes_json(&span.attributes),
        "flags": span.flags,
    });
    if !span.parent_span_id.is_empty() {
        object["parentSpanId"] = json!(hex(&span.parent_span_id));
    }
    if !span.links.is_empty() {
        object["links"] = span
            .links
            .iter()
            .map(|l| json!({"traceId": hex(&l.trace_id), "spanId": hex(&l.span_id), "attributes": attributes_json(&l.attributes)}))
            .collect();
    }
    if !span.events.is_empty() {
        object["events"] = span
            .events
            .iter()
            .map(|e| json!({"timeUnixNano": e.time_unix_nano.to_string(), "name": text(&e.name), "attributes": attributes_json(&e.attributes)}))
            .collect();
    }
    if let Some(status) = &span.status {
        object["status"] = json!({"code": status.code, "message": text(&status.message)});
    }
    object
}

fn tag_json(attribute: &KeyValue) -> Json {
    let key = text(&attribute.key);
    match attribute.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::Bool(b)) => json!({"key": key, "type": "bool", "value": b}),
        Some(Value::Int(i)) => json!({"key": key, "type": "int64", "value": i}),
        Some(Value::Double(d)) => json!({"key": key, "type": "float64", "value": d}),
        Some(Value::String(s)) => json!({"key": key, "type": "string", "value": text(s)}),
        _ => json!({"key": key, "type": "string", "value": scalar_text(attribute.value.as_ref())}),
    }
}

/// An attribute as one string: arrays by their first element (recorded headers are one-element
/// arrays; Jaeger and Zipkin tags have no arrays).
fn scalar_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::String(s)) => text(s),
        Some(Value::Int(i)) => i.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Double(d)) => d.to_string(),
        Some(Value::Array(a)) => a.values.first().map(|v| scalar_text(Some(v))).unwrap_or_default(),
        _ => any_value_json(value).to_string(),
    }
}

fn kind_name(kind: i32) -> Option<&'static str> {
    match kind {
        1 => Some("internal"),
        2 => Some("server"),
        3 => Some("client"),
        4 => Some("producer"),
        5 => Some("consumer"),
        _ => None,
    }
}

/// Export requests as one Jaeger JSON document (traces grouped by trace id, processes by resource).
pub fn jaeger_json(requests: &[ExportRequest]) -> Json {
    let mut traces: BTreeMap<String, (Vec<Json>, BTreeMap<String, Json>)> = BTreeMap::new();
    for request in requests {
        for (resource_index, resource_spans) in request.resource_spans.iter().enumerate() {
            let attributes = resource_spans.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
            let service = attributes
                .iter()
                .find(|a| a.key.as_ref() == b"service.name")
                .and_then(|a| match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(Value::String(s)) => Some(text(s)),
                    _ => None,
                })
                .unwrap_or_default();
            let process_tags: Vec<Json> =
                attributes.iter().filter(|a| a.key.as_ref() != b"service.name").map(tag_json).collect();
            let process_id = format!("p{resource_index}-{service}");
            for scope_spans in &resource_spans.scope_spans {
                for span in &scope_spans.spans {
                    let trace = hex(&span.trace_id);
                    let mut references = Vec::new();
                    if !span.parent_span_id.is_empty() {
                        references.push(
                            json!({"refType": "CHILD_OF", "traceID": trace, "spanID": hex(&span.parent_span_id)}),
                        );
                    }
                    for link in &span.links {
                        references.push(json!({"refType": "FOLLOWS_FROM", "traceID": hex(&link.trace_id), "spanID": hex(&link.span_id)}));
                    }
                    let mut tags: Vec<Json> = span.attributes.iter().map(tag_json).collect();
                    if let Some(kind) = kind_name(span.kind) {
                        tags.push(json!({"key": "span.kind", "type": "string", "value": kind}));
                    }
                    let entry = traces.entry(trace.clone()).or_default();
                    entry.0.push(json!({
                        "traceID": trace, "spanID": hex(&span.span_id), "operationName": text(&span.name),
                        "references": references, "startTime": span.start_time_unix_nano / 1000,
                        "duration": span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano) / 1000,
                        "tags": tags, "logs": [], "processID": process_id,
                    }));
                    entry.1.insert(process_id.clone(), json!({"serviceName": service, "tags": process_tags}));
                }
            }
        }
    }
    let data: Vec<Json> = traces
        .into_iter()
        .map(|(trace, (spans, processes))| json!({"traceID": trace, "spans": spans, "processes": processes}))
        .collect();
    json!({"data": data})
}

/// Export requests as one Zipkin v2 JSON array of spans (string tags; links are not in Zipkin).
pub fn zipkin_json(requests: &[ExportRequest]) -> Json {
    let mut spans = Vec::new();
    for request in requests {
        for resource_spans in &request.resource_spans {
            let attributes = resource_spans.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
            let lookup = |key: &[u8]| {
                attributes.iter().find(|a| a.key.as_ref() == key).and_then(|a| {
                    match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(Value::String(s)) => Some(text(s)),
                        _ => None,
                    }
                })
            };
            let service = lookup(b"service.name").unwrap_or_default();
            // Zipkin names hosts by address: a stable 10.x address per host name.
            let host = lookup(b"host.name").unwrap_or_default();
            let address = format!(
                "10.0.0.{}",
                1 + host.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % 250
            );
            for scope_spans in &resource_spans.scope_spans {
                for span in &scope_spans.spans {
                    let mut tags = serde_json::Map::new();
                    for attribute in &span.attributes {
                        tags.insert(text(&attribute.key), json!(scalar_text(attribute.value.as_ref())));
                    }
                    let mut object = json!({
                        "traceId": hex(&span.trace_id), "id": hex(&span.span_id), "name": text(&span.name),
                        "timestamp": span.start_time_unix_nano / 1000,
                        "duration": span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano) / 1000,
                        "localEndpoint": {"serviceName": service, "ipv4": address}, "tags": tags,
                    });
                    if let Some(kind) = kind_name(span.kind).filter(|k| *k != "internal") {
                        object["kind"] = json!(kind.to_ascii_uppercase());
                    }
                    if !span.parent_span_id.is_empty() {
                        object["parentId"] = json!(hex(&span.parent_span_id));
                    }
                    spans.push(object);
                }
            }
        }
    }
    Json::Array(spans)
}

/// Writes one export request in a streaming format (JSON lines or protobuf records).
pub fn write_record(kind: DumpKind, request: &ExportRequest, out: &mut dyn Write) -> io::Result<()> {
    match kind {
        DumpKind::OtlpJsonLines => {
            serde_json::to_writer(&mut *out, &otlp_json(request))?;
            out.write_all(b"\n")
        }
        DumpKind::OtlpProtobufRecords => {
            let encoded = request.encode_to_vec();
            out.write_all(&(encoded.len() as u32).to_be_bytes())?;
            out.write_all(&encoded)
        }
        DumpKind::Jaeger | DumpKind::Zipkin => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "Jaeger and Zipkin dumps are whole documents: use jaeger_json or zipkin_json",
        )),
    }
}
