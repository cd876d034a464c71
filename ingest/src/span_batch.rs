//! Turns decoded OTLP requests into Arrow record batches of the span table.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, FixedSizeBinaryBuilder, Int64Builder, RecordBatch, StringBuilder,
    StringDictionaryBuilder, TimestampNanosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow::datatypes::Int32Type;
use arrow::error::ArrowError;

use crate::attribute_columns::{
    AttributeMapBuilder, EventListBuilder, LinkListBuilder, LinkedSpanListBuilder, clamp_time, text,
};
use crate::otlp_messages::{ExportRequest, KeyValue, Span, Value};
use crate::promoted_attributes::{GtsKeys, ResourcePromotions, resource_promotions, span_promotions};
use crate::span_ids::{normalized_span_id, normalized_trace_id, raw_span_id, raw_trace_id, trace_id_low};
use crate::span_schema::{Source, column, kind_name, span_schema, status_code_name};

/// How many rejection reasons a response quotes; the count covers all of them.
const QUOTED_REJECTIONS: usize = 5;

/// What a batch is built with besides the request.
#[derive(Debug, Clone)]
pub struct BatchContext {
    /// When the request was received, ns since the Unix epoch.
    pub receive_time_nano: i64,
    /// Where it came from.
    pub source: Source,
    /// Attribute keys of the GTS transaction ids.
    pub gts_keys: Arc<GtsKeys>,
}

/// The spans of one request as a record batch, and the spans that could not be stored.
#[derive(Debug)]
pub struct SpanBatch {
    /// The accepted spans; `None` when there are none.
    pub batch: Option<RecordBatch>,
    /// Number of accepted spans.
    pub accepted: usize,
    /// Number of rejected spans.
    pub rejected: usize,
    /// Why spans were rejected (the first few), each naming the span's place in the request.
    pub rejections: Vec<String>,
}

impl SpanBatch {
    /// The `partial_success.error_message` for the rejected spans.
    pub fn rejection_message(&self) -> String {
        let mut message = format!("{} of {} spans rejected: ", self.rejected, self.rejected + self.accepted);
        message.push_str(&self.rejections.join("; "));
        if self.rejected > self.rejections.len() {
            message.push_str("; ...");
        }
        message
    }
}

/// Builds the span batch of a request. Spans with text that is not UTF-8 are rejected one by
/// one (with their place in the request); everything else is stored as received.
pub fn build_span_batch(request: &ExportRequest, context: &BatchContext) -> Result<SpanBatch, ArrowError> {
    let mut builder = SpanRowsBuilder::with_capacity(request.span_count());
    let mut rejected = 0;
    let mut rejections = Vec::new();
    let mut reject = |count: usize, reason: String| {
        rejected += count;
        if rejections.len() < QUOTED_REJECTIONS {
            rejections.push(reason);
        }
    };
    for (resource_index, resource_spans) in request.resource_spans.iter().enumerate() {
        let resource = resource_spans.resource.as_ref();
        let resource_attributes = resource.map(|r| r.attributes.as_slice()).unwrap_or_default();
        let resource_count: usize = resource_spans.scope_spans.iter().map(|s| s.spans.len()).sum();
        let resource_path = format!("resource_spans[{resource_index}]");
        if let Err(field) = check_attributes(resource_attributes)
            .map_err(in_field("resource.attributes"))
            .and_then(|_| check_text(&resource_spans.schema_url).map_err(in_field("schema_url")))
        {
            reject(
                resource_count,
                format!("{resource_path}.{field}: not valid UTF-8, its {resource_count} spans rejected"),
            );
            continue;
        }
        let resource_found = resource_promotions(resource_attributes, &context.gts_keys);
        for (scope_index, scope_spans) in resource_spans.scope_spans.iter().enumerate() {
            let scope = scope_spans.scope.as_ref();
            let scope_path = format!("{resource_path}.scope_spans[{scope_index}]");
            let scope_check = match scope {
                Some(scope) => check_text(&scope.name)
                    .map_err(in_field("scope.name"))
                    .and_then(|_| check_text(&scope.version).map_err(in_field("scope.version")))
                    .and_then(|_| check_attributes(&scope.attributes).map_err(in_field("scope.attributes"))),
                None => Ok(()),
            }
            .and_then(|_| check_text(&scope_spans.schema_url).map_err(in_field("schema_url")));
            if let Err(field) = scope_check {
                let count = scope_spans.spans.len();
                reject(count, format!("{scope_path}.{field}: not valid UTF-8, its {count} spans rejected"));
                continue;
            }
            let shared = SharedColumns {
                resource_attributes,
                resource_dropped: resource.map(|r| r.dropped_attributes_count).unwrap_or(0),
                resource_schema_url: text(&resource_spans.schema_url),
                resource_found: &resource_found,
                scope_name: scope.map(|s| text(&s.name)).unwrap_or_default(),
                scope_version: scope.map(|s| text(&s.version)).unwrap_or_default(),
                scope_attributes: scope.map(|s| s.attributes.as_slice()).unwrap_or_default(),
                scope_dropped: scope.map(|s| s.dropped_attributes_count).unwrap_or(0),
                scope_schema_url: text(&scope_spans.schema_url),
            };
            for (span_index, span) in scope_spans.spans.iter().enumerate() {
                if let Err(field) = check_span(span) {
                    reject(1, format!("{scope_path}.spans[{span_index}].{field}: not valid UTF-8"));
                    continue;
                }
                builder.append(span, &shared, context)?;
            }
        }
    }
    let accepted = builder.rows;
    let batch = if accepted > 0 { Some(builder.finish()?) } else { None };
    Ok(SpanBatch { batch, accepted, rejected, rejections })
}

/// Columns that are the same for every span of one scope.
struct SharedColumns<'a> {
    resource_attributes: &'a [KeyValue],
    resource_dropped: u32,
    resource_schema_url: &'a str,
    resource_found: &'a ResourcePromotions,
    scope_name: &'a str,
    scope_version: &'a str,
    scope_attributes: &'a [KeyValue],
    scope_dropped: u32,
    scope_schema_url: &'a str,
}

// The checks build the path of a bad field only on failure, from the inside out: formatting
// it for every attribute of every span would cost more than the check itself.

fn check_text(bytes: &[u8]) -> Result<(), String> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(()),
        Err(error) => Err(format!(" (byte {})", error.valid_up_to())),
    }
}

fn in_field(field: &'static str) -> impl Fn(String) -> String {
    move |inner| format!("{field}{inner}")
}

fn check_attributes(attributes: &[KeyValue]) -> Result<(), String> {
    for (index, attribute) in attributes.iter().enumerate() {
        check_text(&attribute.key).map_err(|e| format!("[{index}].key{e}"))?;
        if let Some(value) = attribute.value.as_ref().and_then(|v| v.value.as_ref()) {
            check_value(value).map_err(|e| format!("[{index}].value{e}"))?;
        }
    }
    Ok(())
}

fn check_value(value: &Value) -> Result<(), String> {
    match value {
        Value::String(s) => check_text(s),
        Value::Array(array) => {
            for (index, item) in array.values.iter().enumerate() {
                if let Some(item) = &item.value {
                    check_value(item).map_err(|e| format!("[{index}]{e}"))?;
                }
            }
            Ok(())
        }
        Value::KeyValueList(list) => check_attributes(&list.values),
        Value::Bool(_) | Value::Int(_) | Value::Double(_) | Value::Bytes(_) => Ok(()),
    }
}

fn check_span(span: &Span) -> Result<(), String> {
    check_text(&span.name).map_err(in_field("name"))?;
    check_text(&span.trace_state).map_err(in_field("trace_state"))?;
    if let Some(status) = &span.status {
        check_text(&status.message).map_err(in_field("status.message"))?;
    }
    check_attributes(&span.attributes).map_err(in_field("attributes"))?;
    for (index, event) in span.events.iter().enumerate() {
        check_text(&event.name).map_err(|e| format!("events[{index}].name{e}"))?;
        check_attributes(&event.attributes).map_err(|e| format!("events[{index}].attributes{e}"))?;
    }
    for (index, link) in span.links.iter().enumerate() {
        check_text(&link.trace_state).map_err(|e| format!("links[{index}].trace_state{e}"))?;
        check_attributes(&link.attributes).map_err(|e| format!("links[{index}].attributes{e}"))?;
    }
    Ok(())
}

/// Column builders of the span table.
struct SpanRowsBuilder {
    rows: usize,
    trace_id: FixedSizeBinaryBuilder,
    trace_id_low: UInt64Builder,
    span_id: UInt64Builder,
    parent_span_id: UInt64Builder,
    trace_id_raw: BinaryBuilder,
    span_id_raw: BinaryBuilder,
    parent_span_id_raw: BinaryBuilder,
    trace_state: StringBuilder,
    flags: UInt32Builder,
    parent_is_remote: BooleanBuilder,
    name: NamingBuilder,
    kind: NamingBuilder,
    start_time: TimestampNanosecondBuilder,
    end_time: TimestampNanosecondBuilder,
    duration_nano: Int64Builder,
    status_code: NamingBuilder,
    status_message: StringBuilder,
    service_name: NamingBuilder,
    service_instance_id: NamingBuilder,
    host_name: NamingBuilder,
    host_id: NamingBuilder,
    host_ip: NamingBuilder,
    peer_service: NamingBuilder,
    server_address: NamingBuilder,
    http_route: NamingBuilder,
    db_system: NamingBuilder,
    rpc_system: NamingBuilder,
    messaging_system: NamingBuilder,
    headers: [StringBuilder; 7],
    gts: [StringBuilder; 3],
    attributes: AttributeMapBuilder,
    resource_attributes: AttributeMapBuilder,
    scope_attributes: AttributeMapBuilder,
    events: EventListBuilder,
    links: LinkListBuilder,
    linked_spans: LinkedSpanListBuilder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    resource_schema_url: StringBuilder,
    scope_schema_url: StringBuilder,
    dropped_attributes_count: UInt32Builder,
    dropped_events_count: UInt32Builder,
    dropped_links_count: UInt32Builder,
    resource_dropped_attributes_count: UInt32Builder,
    scope_dropped_attributes_count: UInt32Builder,
    receive_time: TimestampNanosecondBuilder,
    source: StringBuilder,
}

/// A builder of one of the dictionary-encoded naming columns (`span_schema::NAMING_COLUMNS`).
type NamingBuilder = StringDictionaryBuilder<Int32Type>;

/// Appends a value (or a null) to a naming column. (`append` rather than `append_value`: a key
/// overflow is an error, not a panic.)
fn append_naming(builder: &mut NamingBuilder, value: Option<&str>) -> Result<(), ArrowError> {
    match value {
        Some(value) => builder.append(value).map(|_| ()),
        None => {
            builder.append_null();
            Ok(())
        }
    }
}

fn timestamps(rows: usize) -> TimestampNanosecondBuilder {
    TimestampNanosecondBuilder::with_capacity(rows).with_timezone("UTC")
}

impl SpanRowsBuilder {
    fn with_capacity(rows: usize) -> Self {
        let strings = || StringBuilder::with_capacity(rows, rows * 8);
        // Few distinct values: a small dictionary, a key per row.
        let naming = || NamingBuilder::with_capacity(rows, 64, 1024);
        SpanRowsBuilder {
            rows: 0,
            trace_id: FixedSizeBinaryBuilder::with_capacity(rows, 16),
            trace_id_low: UInt64Builder::with_capacity(rows),
            span_id: UInt64Builder::with_capacity(rows),
            parent_span_id: UInt64Builder::with_capacity(rows),
            trace_id_raw: BinaryBuilder::with_capacity(rows, 0),
            span_id_raw: BinaryBuilder::with_capacity(rows, 0),
            parent_span_id_raw: BinaryBuilder::with_capacity(rows, 0),
            trace_state: strings(),
            flags: UInt32Builder::with_capacity(rows),
            parent_is_remote: BooleanBuilder::with_capacity(rows),
            name: naming(),
            kind: naming(),
            start_time: timestamps(rows),
            end_time: timestamps(rows),
            duration_nano: Int64Builder::with_capacity(rows),
            status_code: naming(),
            status_message: strings(),
            service_name: naming(),
            service_instance_id: naming(),
            host_name: naming(),
            host_id: naming(),
            host_ip: naming(),
            peer_service: naming(),
            server_address: naming(),
            http_route: naming(),
            db_system: naming(),
            rpc_system: naming(),
            messaging_system: naming(),
            headers: std::array::from_fn(|_| StringBuilder::new()),
            gts: std::array::from_fn(|_| StringBuilder::new()),
            attributes: AttributeMapBuilder::with_capacity(rows),
            resource_attributes: AttributeMapBuilder::with_capacity(rows),
            scope_attributes: AttributeMapBuilder::with_capacity(rows),
            events: EventListBuilder::default(),
            links: LinkListBuilder::default(),
            linked_spans: LinkedSpanListBuilder::default(),
            scope_name: strings(),
            scope_version: strings(),
            resource_schema_url: strings(),
            scope_schema_url: strings(),
            dropped_attributes_count: UInt32Builder::with_capacity(rows),
            dropped_events_count: UInt32Builder::with_capacity(rows),
            dropped_links_count: UInt32Builder::with_capacity(rows),
            resource_dropped_attributes_count: UInt32Builder::with_capacity(rows),
            scope_dropped_attributes_count: UInt32Builder::with_capacity(rows),
            receive_time: timestamps(rows),
            source: strings(),
        }
    }

    fn append(&mut self, span: &Span, shared: &SharedColumns<'_>, context: &BatchContext) -> Result<(), ArrowError> {
        self.rows += 1;
        match normalized_trace_id(&span.trace_id) {
            Some(id) => {
                self.trace_id.append_value(id)?;
                self.trace_id_low.append_value(trace_id_low(&id));
            }
            None => {
                self.trace_id.append_null();
                self.trace_id_low.append_null();
            }
        }
        self.span_id.append_option(normalized_span_id(&span.span_id));
        self.parent_span_id.append_option(normalized_span_id(&span.parent_span_id));
        self.trace_id_raw.append_option(raw_trace_id(&span.trace_id));
        self.span_id_raw.append_option(raw_span_id(&span.span_id, false));
        self.parent_span_id_raw.append_option(raw_span_id(&span.parent_span_id, true));
        self.trace_state.append_value(text(&span.trace_state));
        self.flags.append_value(span.flags);
        // Bit 8: the producer knows whether the parent is remote; bit 9: it is.
        self.parent_is_remote.append_option((span.flags & 0x100 != 0).then_some(span.flags & 0x200 != 0));
        append_naming(&mut self.name, Some(text(&span.name)))?;
        append_naming(&mut self.kind, Some(&kind_name(span.kind)))?;
        let start = clamp_time(span.start_time_unix_nano);
        let end = clamp_time(span.end_time_unix_nano);
        self.start_time.append_value(start);
        self.end_time.append_value(end);
        let duration = i128::from(span.end_time_unix_nano) - i128::from(span.start_time_unix_nano);
        self.duration_nano.append_value(duration.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64);
        let status = span.status.as_ref();
        append_naming(&mut self.status_code, Some(&status_code_name(status.map(|s| s.code).unwrap_or(0))))?;
        self.status_message.append_value(status.map(|s| text(&s.message)).unwrap_or_default());

        let resource = shared.resource_found;
        append_naming(&mut self.service_name, resource.service_name.as_deref())?;
        append_naming(&mut self.service_instance_id, resource.service_instance_id.as_deref())?;
        append_naming(&mut self.host_name, resource.host_name.as_deref())?;
        append_naming(&mut self.host_id, resource.host_id.as_deref())?;
        append_naming(&mut self.host_ip, resource.host_ip.as_deref())?;
        let found = span_promotions(&span.attributes, &context.gts_keys);
        append_naming(&mut self.peer_service, found.peer_service.as_deref())?;
        append_naming(&mut self.server_address, found.server_address.as_deref())?;
        append_naming(&mut self.http_route, found.http_route.as_deref())?;
        append_naming(&mut self.db_system, found.db_system.as_deref())?;
        append_naming(&mut self.rpc_system, found.rpc_system.as_deref())?;
        append_naming(&mut self.messaging_system, found.messaging_system.as_deref())?;
        for (builder, value) in self.headers.iter_mut().zip(&found.headers) {
            builder.append_option(value.as_deref());
        }
        for ((builder, on_span), on_resource) in self.gts.iter_mut().zip(&found.gts).zip(&resource.gts) {
            builder.append_option(on_span.as_deref().or(on_resource.as_deref()));
        }

        self.attributes.append(&span.attributes);
        self.resource_attributes.append(shared.resource_attributes);
        self.scope_attributes.append(shared.scope_attributes);
        self.events.append(&span.events);
        self.links.append(&span.links)?;
        self.linked_spans.append(&span.links)?;
        self.scope_name.append_value(shared.scope_name);
        self.scope_version.append_value(shared.scope_version);
        self.resource_schema_url.append_value(shared.resource_schema_url);
        self.scope_schema_url.append_value(shared.scope_schema_url);
        self.dropped_attributes_count.append_value(span.dropped_attributes_count);
        self.dropped_events_count.append_value(span.dropped_events_count);
        self.dropped_links_count.append_value(span.dropped_links_count);
        self.resource_dropped_attributes_count.append_value(shared.resource_dropped);
        self.scope_dropped_attributes_count.append_value(shared.scope_dropped);
        self.receive_time.append_value(context.receive_time_nano);
        self.source.append_value(context.source.as_str());
        Ok(())
    }

    fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        use column::*;
        let mut columns: HashMap<&str, ArrayRef> = HashMap::new();
        let mut put = |name: &'static str, array: ArrayRef| {
            columns.insert(name, array);
        };
        put(TRACE_ID, Arc::new(self.trace_id.finish()));
        put(TRACE_ID_LOW, Arc::new(self.trace_id_low.finish()));
        put(SPAN_ID, Arc::new(self.span_id.finish()));
        put(PARENT_SPAN_ID, Arc::new(self.parent_span_id.finish()));
        put(TRACE_ID_RAW, Arc::new(self.trace_id_raw.finish()));
        put(SPAN_ID_RAW, Arc::new(self.span_id_raw.finish()));
        put(PARENT_SPAN_ID_RAW, Arc::new(self.parent_span_id_raw.finish()));
        put(TRACE_STATE, Arc::new(self.trace_state.finish()));
        put(FLAGS, Arc::new(self.flags.finish()));
        put(PARENT_IS_REMOTE, Arc::new(self.parent_is_remote.finish()));
        put(NAME, Arc::new(self.name.finish()));
        put(KIND, Arc::new(self.kind.finish()));
        put(START_TIME, Arc::new(self.start_time.finish()));
        put(END_TIME, Arc::new(self.end_time.finish()));
        put(DURATION_NANO, Arc::new(self.duration_nano.finish()));
        put(STATUS_CODE, Arc::new(self.status_code.finish()));
        put(STATUS_MESSAGE, Arc::new(self.status_message.finish()));
        put(SERVICE_NAME, Arc::new(self.service_name.finish()));
        put(SERVICE_INSTANCE_ID, Arc::new(self.service_instance_id.finish()));
        put(HOST_NAME, Arc::new(self.host_name.finish()));
        put(HOST_ID, Arc::new(self.host_id.finish()));
        put(HOST_IP, Arc::new(self.host_ip.finish()));
        put(PEER_SERVICE, Arc::new(self.peer_service.finish()));
        put(SERVER_ADDRESS, Arc::new(self.server_address.finish()));
        put(HTTP_ROUTE, Arc::new(self.http_route.finish()));
        put(DB_SYSTEM, Arc::new(self.db_system.finish()));
        put(RPC_SYSTEM, Arc::new(self.rpc_system.finish()));
        put(MESSAGING_SYSTEM, Arc::new(self.messaging_system.finish()));
        for ((_, name), builder) in crate::span_schema::HEADER_COLUMNS.iter().zip(self.headers.iter_mut()) {
            put(name, Arc::new(builder.finish()));
        }
        let [global, branch, parent_branch] = &mut self.gts;
        put(GTS_GLOBAL_TX_ID, Arc::new(global.finish()));
        put(GTS_BRANCH_TX_ID, Arc::new(branch.finish()));
        put(GTS_PARENT_BRANCH_TX_ID, Arc::new(parent_branch.finish()));
        put(ATTRIBUTES, Arc::new(self.attributes.finish()?));
        put(RESOURCE_ATTRIBUTES, Arc::new(self.resource_attributes.finish()?));
        put(SCOPE_ATTRIBUTES, Arc::new(self.scope_attributes.finish()?));
        put(EVENTS, Arc::new(self.events.finish()?));
        put(LINKS, Arc::new(self.links.finish()?));
        put(LINKED_SPANS, Arc::new(self.linked_spans.finish()?));
        put(SCOPE_NAME, Arc::new(self.scope_name.finish()));
        put(SCOPE_VERSION, Arc::new(self.scope_version.finish()));
        put(RESOURCE_SCHEMA_URL, Arc::new(self.resource_schema_url.finish()));
        put(SCOPE_SCHEMA_URL, Arc::new(self.scope_schema_url.finish()));
        put(DROPPED_ATTRIBUTES_COUNT, Arc::new(self.dropped_attributes_count.finish()));
        put(DROPPED_EVENTS_COUNT, Arc::new(self.dropped_events_count.finish()));
        put(DROPPED_LINKS_COUNT, Arc::new(self.dropped_links_count.finish()));
        put(RESOURCE_DROPPED_ATTRIBUTES_COUNT, Arc::new(self.resource_dropped_attributes_count.finish()));
        put(SCOPE_DROPPED_ATTRIBUTES_COUNT, Arc::new(self.scope_dropped_attributes_count.finish()));
        put(RECEIVE_TIME, Arc::new(self.receive_time.finish()));
        put(SOURCE, Arc::new(self.source.finish()));
        let schema = span_schema();
        let ordered = schema
            .fields()
            .iter()
            .map(|field| {
                columns
                    .remove(field.name().as_str())
                    .ok_or_else(|| ArrowError::SchemaError(format!("span builder has no column {}", field.name())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(schema, ordered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp_messages::{AnyValue, Resource, ResourceSpans, ScopeSpans, Status};
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{TimestampNanosecondType, UInt64Type};
    use bytes::Bytes;

    fn context() -> BatchContext {
        BatchContext { receive_time_nano: 42, source: Source::Http, gts_keys: Arc::new(GtsKeys::default()) }
    }

    fn attribute(key: &'static str, value: Value) -> KeyValue {
        KeyValue { key: Bytes::from_static(key.as_bytes()), value: Some(AnyValue { value: Some(value) }) }
    }

    fn request(spans: Vec<Span>) -> ExportRequest {
        ExportRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![attribute("service.name", Value::String(Bytes::from_static(b"checkout")))],
                    dropped_attributes_count: 0,
                }),
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn stores_ids_raw_and_normalised_and_a_signed_duration() {
        let span = Span {
            trace_id: Bytes::from_static(&[0xab; 8]),
            span_id: Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 7]),
            parent_span_id: Bytes::new(),
            start_time_unix_nano: 2_000,
            end_time_unix_nano: 1_000,
            kind: 3,
            flags: 0x301,
            status: Some(Status { message: Bytes::from_static(b"boom"), code: 2 }),
            ..Default::default()
        };
        let built = build_span_batch(&request(vec![span]), &context()).unwrap();
        let batch = built.batch.unwrap();
        let trace_id = batch.column_by_name("trace_id").unwrap().as_fixed_size_binary();
        assert_eq!(trace_id.value(0), [[0; 8], [0xab; 8]].concat().as_slice());
        assert_eq!(batch.column_by_name("trace_id_raw").unwrap().as_binary::<i32>().value(0), &[0xab; 8]);
        assert_eq!(batch.column_by_name("span_id").unwrap().as_primitive::<UInt64Type>().value(0), 7);
        // An 8-byte span id is its normalised column's bytes: not stored again; nor is an empty parent.
        assert!(batch.column_by_name("span_id_raw").unwrap().is_null(0));
        assert!(batch.column_by_name("parent_span_id").unwrap().is_null(0));
        assert!(batch.column_by_name("parent_span_id_raw").unwrap().is_null(0));
        let duration = batch.column_by_name("duration_nano").unwrap().as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(duration.value(0), -1_000);
        // The naming columns are dictionaries: their value, read through the dictionary.
        let naming = |name: &str| {
            let column = batch.column_by_name(name).unwrap();
            assert_eq!(column.data_type(), &crate::span_schema::naming_type(), "{name}");
            let text = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8).unwrap();
            text.as_string::<i32>().value(0).to_owned()
        };
        assert_eq!(naming("kind"), "CLIENT");
        assert_eq!(naming("status_code"), "ERROR");
        assert!(batch.column_by_name("parent_is_remote").unwrap().as_boolean().value(0));
        assert_eq!(naming("service_name"), "checkout");
        let receive = batch.column_by_name("receive_time").unwrap().as_primitive::<TimestampNanosecondType>();
        assert_eq!(receive.value(0), 42);
    }

    #[test]
    fn a_span_with_bad_utf8_is_rejected_alone() {
        let good =
            Span { name: Bytes::from_static(b"good"), span_id: Bytes::from_static(&[1; 8]), ..Default::default() };
        let bad = Span {
            name: Bytes::from_static(b"fine"),
            attributes: vec![attribute("k", Value::String(Bytes::from_static(b"ab\xffcd")))],
            ..Default::default()
        };
        let built = build_span_batch(&request(vec![good, bad]), &context()).unwrap();
        assert_eq!(built.accepted, 1);
        assert_eq!(built.rejected, 1);
        assert_eq!(
            built.rejections,
            vec!["resource_spans[0].scope_spans[0].spans[1].attributes[0].value (byte 2): not valid UTF-8"]
        );
        assert_eq!(built.batch.unwrap().num_rows(), 1);
    }

    #[test]
    fn attribute_values_keep_their_type() {
        let span = Span {
            attributes: vec![
                attribute("s", Value::String(Bytes::from_static(b"text"))),
                attribute("i", Value::Int(-5)),
                attribute("d", Value::Double(1.5)),
                attribute("b", Value::Bool(true)),
                attribute(
                    "a",
                    Value::Array(crate::otlp_messages::ArrayValue {
                        values: vec![AnyValue { value: Some(Value::Int(1)) }, AnyValue { value: Some(Value::Int(2)) }],
                    }),
                ),
            ],
            ..Default::default()
        };
        let built = build_span_batch(&request(vec![span]), &context()).unwrap();
        let batch = built.batch.unwrap();
        let map = batch.column_by_name("attributes").unwrap().as_map();
        let values = map.values().as_struct();
        assert_eq!(values.column_by_name("string").unwrap().as_string::<i32>().value(0), "text");
        assert_eq!(values.column_by_name("int").unwrap().as_primitive::<arrow::datatypes::Int64Type>().value(1), -5);
        assert!(values.column_by_name("int").unwrap().is_null(0));
        assert_eq!(values.column_by_name("json").unwrap().as_string::<i32>().value(4), "[1,2]");
    }
}
