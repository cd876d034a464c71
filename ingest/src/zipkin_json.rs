//! Zipkin v2 JSON (an array of spans, or an array of traces) into OTLP messages.
//!
//! Mapping (also in `docs/import.md`): `traceId`, `id`, `parentId` as given (a 64-bit trace id
//! stays 8 bytes: the checks must see it); `kind` → span kind (none → INTERNAL); `timestamp` and
//! `duration` µs → ns; `localEndpoint.serviceName` → resource `service.name`, its `ipv4`/`ipv6`
//! → resource `host.ip`; `remoteEndpoint.serviceName` → `peer.service`, its address and port →
//! `network.peer.address`/`network.peer.port`; `tags` → string attributes, the `error` tag →
//! status ERROR with the tag as message; `annotations` → events; `shared: true` →
//! `zipkin.shared`, `debug: true` → `zipkin.debug`. Fragments of one span (same trace id, id
//! and local service, at most one kind), which Zipkin itself merges before showing a trace, are
//! merged here too: missing fields filled, tags and annotations united.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Deserialize;

use crate::foreign_spans::{STATUS_ERROR, attribute, id_bytes, kind, kind_named, micros_to_nanos, string_attribute};
use crate::otlp_messages::{
    Event, ExportRequest, InstrumentationScope, Resource, ResourceSpans, ScopeSpans, Span, Status, Value,
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ZipkinSpan {
    trace_id: String,
    id: String,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    timestamp: Option<u64>,
    #[serde(default)]
    duration: Option<u64>,
    #[serde(default)]
    local_endpoint: Option<Endpoint>,
    #[serde(default)]
    remote_endpoint: Option<Endpoint>,
    #[serde(default)]
    annotations: Vec<Annotation>,
    #[serde(default)]
    tags: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    shared: Option<bool>,
    #[serde(default)]
    debug: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    #[serde(default)]
    service_name: Option<String>,
    #[serde(default)]
    ipv4: Option<String>,
    #[serde(default)]
    ipv6: Option<String>,
    #[serde(default)]
    port: Option<i64>,
}

#[derive(Deserialize)]
struct Annotation {
    timestamp: u64,
    value: String,
}

/// A converted document: the spans, and the spans that could not be converted (with their place).
#[derive(Debug, Default)]
pub struct Converted {
    /// The converted spans.
    pub request: ExportRequest,
    /// Each rejected element: its place in the document and what is wrong.
    pub rejections: Vec<String>,
}

/// Converts a Zipkin v2 document: an array of spans, or an array of arrays (traces).
/// `first_index` is the index of the first element in the whole array, when the document is a
/// part of a bigger one: rejections name elements by that index.
pub fn convert_zipkin(document: serde_json::Value, first_index: u64) -> Result<Converted, String> {
    let serde_json::Value::Array(elements) = document else {
        return Err("a Zipkin v2 document is an array of spans or of traces".into());
    };
    let mut converted = Converted::default();
    let mut parsed: Vec<(String, ZipkinSpan)> = Vec::new();
    let mut parse = |place: String, element: serde_json::Value, converted: &mut Converted| match serde_json::from_value::<
        ZipkinSpan,
    >(element)
    {
        Ok(span) => parsed.push((place, span)),
        Err(error) => converted.rejections.push(format!("{place}: {error}")),
    };
    for (index, element) in elements.into_iter().enumerate() {
        let index = first_index + index as u64;
        match element {
            serde_json::Value::Array(trace) => {
                for (position, span) in trace.into_iter().enumerate() {
                    parse(format!("[{index}][{position}]"), span, &mut converted);
                }
            }
            span => parse(format!("[{index}]"), span, &mut converted),
        }
    }
    let mut resources: BTreeMap<(String, String), Vec<Span>> = BTreeMap::new();
    for (place, span) in merge_fragments(parsed) {
        match convert_span(span) {
            Ok((resource, span)) => resources.entry(resource).or_default().push(span),
            Err(message) => converted.rejections.push(format!("{place}: {message}")),
        }
    }
    for ((service, address), spans) in resources {
        let mut attributes = Vec::new();
        if !service.is_empty() {
            attributes.push(string_attribute("service.name", &service));
        }
        if !address.is_empty() {
            attributes.push(string_attribute("host.ip", &address));
        }
        converted.request.resource_spans.push(ResourceSpans {
            resource: Some(Resource { attributes, dropped_attributes_count: 0 }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: Bytes::from_static(b"zipkin"), ..Default::default() }),
                spans,
                schema_url: Bytes::new(),
            }],
            schema_url: Bytes::new(),
        });
    }
    Ok(converted)
}

/// Merges the fragments of one span, as Zipkin does: same trace id, id and local service, and
/// kinds that do not contradict (a CLIENT and a SERVER sharing an id stay two spans).
fn merge_fragments(spans: Vec<(String, ZipkinSpan)>) -> Vec<(String, ZipkinSpan)> {
    let mut merged: Vec<(String, ZipkinSpan)> = Vec::with_capacity(spans.len());
    let mut index: std::collections::HashMap<(String, String, String), Vec<usize>> = std::collections::HashMap::new();
    for (place, span) in spans {
        let key = (
            span.trace_id.to_ascii_lowercase(),
            span.id.to_ascii_lowercase(),
            span.local_endpoint.as_ref().and_then(|e| e.service_name.clone()).unwrap_or_default(),
        );
        let candidates = index.entry(key).or_default();
        let compatible = candidates.iter().copied().find(|&i| {
            let other = &merged[i].1;
            other.kind.is_none() || span.kind.is_none() || other.kind == span.kind
        });
        match compatible {
            Some(i) => merge_into(&mut merged[i].1, span),
            None => {
                candidates.push(merged.len());
                merged.push((place, span));
            }
        }
    }
    merged
}

fn merge_into(target: &mut ZipkinSpan, fragment: ZipkinSpan) {
    if target.kind.is_none() {
        target.kind = fragment.kind;
    }
    if target.parent_id.as_deref().is_none_or(str::is_empty) {
        target.parent_id = fragment.parent_id;
    }
    if target.name.as_deref().is_none_or(|n| n.is_empty() || n == "unknown") {
        target.name = fragment.name.or(target.name.take());
    }
    match (target.timestamp, fragment.timestamp) {
        (None, Some(_)) => {
            target.timestamp = fragment.timestamp;
            target.duration = fragment.duration.or(target.duration);
        }
        _ => target.duration = target.duration.or(fragment.duration),
    }
    if target.remote_endpoint.is_none() {
        target.remote_endpoint = fragment.remote_endpoint;
    }
    target.annotations.extend(fragment.annotations);
    for (key, value) in fragment.tags {
        target.tags.entry(key).or_insert(value);
    }
    target.shared = Some(target.shared == Some(true) || fragment.shared == Some(true)).filter(|s| *s);
    target.debug = Some(target.debug == Some(true) || fragment.debug == Some(true)).filter(|d| *d);
}

fn convert_span(zipkin: ZipkinSpan) -> Result<((String, String), Span), String> {
    let trace_id = id_bytes(&zipkin.trace_id).map_err(|e| format!("traceId {e}"))?;
    let span_id = id_bytes(&zipkin.id).map_err(|e| format!("id {e}"))?;
    let parent_span_id = match zipkin.parent_id.as_deref() {
        Some(parent) if !parent.is_empty() => id_bytes(parent).map_err(|e| format!("parentId {e}"))?,
        _ => Bytes::new(),
    };
    let span_kind = match zipkin.kind.as_deref() {
        Some(name) => {
            kind_named(name).ok_or_else(|| format!("kind {name:?} is not CLIENT, SERVER, PRODUCER or CONSUMER"))?
        }
        None => kind::INTERNAL,
    };
    // A span without a timestamp (a fragment Zipkin could not merge) starts at its first annotation.
    let timestamp = zipkin.timestamp.or_else(|| zipkin.annotations.iter().map(|a| a.timestamp).min());
    let start = micros_to_nanos(timestamp.unwrap_or(0));
    let end = start.saturating_add(micros_to_nanos(zipkin.duration.unwrap_or(0)));
    let mut attributes = Vec::new();
    let mut status = None;
    for (key, value) in &zipkin.tags {
        let value = match value {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        if key == "error" {
            status = Some(Status { message: Bytes::from(value), code: STATUS_ERROR });
        } else {
            attributes.push(string_attribute(key, &value));
        }
    }
    if let Some(remote) = &zipkin.remote_endpoint {
        if let Some(service) = remote.service_name.as_deref().filter(|s| !s.is_empty()) {
            attributes.push(string_attribute("peer.service", service));
        }
        if let Some(address) = remote.ipv4.as_deref().or(remote.ipv6.as_deref()) {
            attributes.push(string_attribute("network.peer.address", address));
        }
        if let Some(port) = remote.port {
            attributes.push(attribute("network.peer.port", Value::Int(port)));
        }
    }
    if zipkin.shared == Some(true) {
        attributes.push(attribute("zipkin.shared", Value::Bool(true)));
    }
    if zipkin.debug == Some(true) {
        attributes.push(attribute("zipkin.debug", Value::Bool(true)));
    }
    let events = zipkin
        .annotations
        .iter()
        .map(|annotation| Event {
            time_unix_nano: micros_to_nanos(annotation.timestamp),
            name: Bytes::copy_from_slice(annotation.value.as_bytes()),
            ..Default::default()
        })
        .collect();
    let local = zipkin.local_endpoint.unwrap_or_default();
    let resource = (local.service_name.unwrap_or_default(), local.ipv4.or(local.ipv6).unwrap_or_default());
    let span = Span {
        trace_id,
        span_id,
        parent_span_id,
        name: Bytes::from(zipkin.name.unwrap_or_default()),
        kind: span_kind,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        events,
        status,
        ..Default::default()
    };
    Ok((resource, span))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_kinds_ids_endpoints_and_times() {
        let document = serde_json::json!([
            {"traceId": "1e223ff1f80f1c69", "id": "74280ae0c10d8062", "parentId": "bf396325699c84bf", "kind": "SERVER",
             "name": "post", "timestamp": 1470150004008761u64, "duration": 93577, "shared": true,
             "localEndpoint": {"serviceName": "serviceb", "ipv4": "192.0.0.0"},
             "remoteEndpoint": {"serviceName": "servicea", "port": 8080},
             "tags": {"http.path": "/api", "error": "boom"}, "annotations": [{"timestamp": 1470150004008762u64, "value": "wr"}]},
            {"traceId": "zz", "id": "74280ae0c10d8062"},
            {"traceId": "1e223ff1f80f1c69", "id": "74280ae0c10d8062", "localEndpoint": {"serviceName": "serviceb"},
             "tags": {"fragment": "yes"}}
        ]);
        let converted = convert_zipkin(document, 0).unwrap();
        assert_eq!(converted.rejections, vec!["[1]: traceId \"zz\" is not hex (at character 0)".to_owned()]);
        let span = &converted.request.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.trace_id.len(), 8, "a 64-bit trace id is kept as 8 bytes");
        assert_eq!(span.kind, kind::SERVER);
        assert_eq!(span.start_time_unix_nano, 1470150004008761000);
        assert_eq!(span.end_time_unix_nano - span.start_time_unix_nano, 93577000);
        assert_eq!(span.status.as_ref().unwrap().code, STATUS_ERROR);
        assert_eq!(span.events[0].time_unix_nano, 1470150004008762000);
        let keys: Vec<&[u8]> = span.attributes.iter().map(|a| a.key.as_ref()).collect();
        assert!(keys.contains(&&b"peer.service"[..]) && keys.contains(&&b"zipkin.shared"[..]), "{keys:?}");
        assert!(keys.contains(&&b"fragment"[..]), "the kind-less fragment of the same span is merged: {keys:?}");
        assert_eq!(converted.request.span_count(), 1);
    }
}
