//! A lenient, zero-copy view of the OTLP trace messages.
//!
//! These are the messages of `opentelemetry/proto/collector/trace/v1` with the same field tags as
//! the generated types of `opentelemetry-proto`, with one difference: every `string` field is
//! decoded as raw bytes. The generated types reject a whole request when one string in one span
//! is not UTF-8; here the bytes are kept, borrowed from the request buffer, and the span builder
//! checks each string on its own, so one bad span is rejected alone (a partial success) and the
//! good spans of the same request are kept.
//!
//! The JSON decoder produces the same messages, so every source ends in one builder, and the
//! write-ahead log stores every request in one encoding (this protobuf).

use bytes::Bytes;

/// `ExportTraceServiceRequest`, and the identical `TracesData`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportRequest {
    /// The spans, grouped by resource.
    #[prost(message, repeated, tag = "1")]
    pub resource_spans: Vec<ResourceSpans>,
}

/// Spans of one resource.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceSpans {
    /// The entity that produced the spans.
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    /// The spans, grouped by instrumentation scope.
    #[prost(message, repeated, tag = "2")]
    pub scope_spans: Vec<ScopeSpans>,
    /// Schema URL of the resource.
    #[prost(bytes = "bytes", tag = "3")]
    pub schema_url: Bytes,
}

/// A resource: the attributes of the process or entity that produced spans.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Resource {
    /// Resource attributes (`service.name`, `host.name`, ...).
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
    /// Attributes the producer dropped.
    #[prost(uint32, tag = "2")]
    pub dropped_attributes_count: u32,
}

/// Spans of one instrumentation scope.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScopeSpans {
    /// The instrumentation library.
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    /// The spans.
    #[prost(message, repeated, tag = "2")]
    pub spans: Vec<Span>,
    /// Schema URL of the scope.
    #[prost(bytes = "bytes", tag = "3")]
    pub schema_url: Bytes,
}

/// An instrumentation scope (library name and version).
#[derive(Clone, PartialEq, prost::Message)]
pub struct InstrumentationScope {
    /// Library name.
    #[prost(bytes = "bytes", tag = "1")]
    pub name: Bytes,
    /// Library version.
    #[prost(bytes = "bytes", tag = "2")]
    pub version: Bytes,
    /// Scope attributes.
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
    /// Attributes the producer dropped.
    #[prost(uint32, tag = "4")]
    pub dropped_attributes_count: u32,
}

/// One span, as received.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Span {
    /// Trace id, 16 bytes when well formed.
    #[prost(bytes = "bytes", tag = "1")]
    pub trace_id: Bytes,
    /// Span id, 8 bytes when well formed.
    #[prost(bytes = "bytes", tag = "2")]
    pub span_id: Bytes,
    /// W3C tracestate.
    #[prost(bytes = "bytes", tag = "3")]
    pub trace_state: Bytes,
    /// Parent span id; empty on a root span.
    #[prost(bytes = "bytes", tag = "4")]
    pub parent_span_id: Bytes,
    /// Span name.
    #[prost(bytes = "bytes", tag = "5")]
    pub name: Bytes,
    /// Span kind (enum value).
    #[prost(int32, tag = "6")]
    pub kind: i32,
    /// Start time, ns since the Unix epoch.
    #[prost(fixed64, tag = "7")]
    pub start_time_unix_nano: u64,
    /// End time, ns since the Unix epoch.
    #[prost(fixed64, tag = "8")]
    pub end_time_unix_nano: u64,
    /// Span attributes.
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    /// Attributes the producer dropped.
    #[prost(uint32, tag = "10")]
    pub dropped_attributes_count: u32,
    /// Events.
    #[prost(message, repeated, tag = "11")]
    pub events: Vec<Event>,
    /// Events the producer dropped.
    #[prost(uint32, tag = "12")]
    pub dropped_events_count: u32,
    /// Links to other spans.
    #[prost(message, repeated, tag = "13")]
    pub links: Vec<Link>,
    /// Links the producer dropped.
    #[prost(uint32, tag = "14")]
    pub dropped_links_count: u32,
    /// Status.
    #[prost(message, optional, tag = "15")]
    pub status: Option<Status>,
    /// Trace flags and the `HAS_IS_REMOTE` (bit 8) and `IS_REMOTE` (bit 9) bits.
    #[prost(fixed32, tag = "16")]
    pub flags: u32,
}

/// A span event.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Time of the event, ns since the Unix epoch.
    #[prost(fixed64, tag = "1")]
    pub time_unix_nano: u64,
    /// Event name.
    #[prost(bytes = "bytes", tag = "2")]
    pub name: Bytes,
    /// Event attributes.
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
    /// Attributes the producer dropped.
    #[prost(uint32, tag = "4")]
    pub dropped_attributes_count: u32,
}

/// A link to another span.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Link {
    /// Linked trace id.
    #[prost(bytes = "bytes", tag = "1")]
    pub trace_id: Bytes,
    /// Linked span id.
    #[prost(bytes = "bytes", tag = "2")]
    pub span_id: Bytes,
    /// W3C tracestate of the link.
    #[prost(bytes = "bytes", tag = "3")]
    pub trace_state: Bytes,
    /// Link attributes.
    #[prost(message, repeated, tag = "4")]
    pub attributes: Vec<KeyValue>,
    /// Attributes the producer dropped.
    #[prost(uint32, tag = "5")]
    pub dropped_attributes_count: u32,
    /// Trace flags of the link.
    #[prost(fixed32, tag = "6")]
    pub flags: u32,
}

/// Span status.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// Status message.
    #[prost(bytes = "bytes", tag = "2")]
    pub message: Bytes,
    /// Status code (0 unset, 1 ok, 2 error).
    #[prost(int32, tag = "3")]
    pub code: i32,
}

/// One attribute.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    /// Attribute key.
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    /// Attribute value.
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// An attribute value of any OTLP type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyValue {
    /// The value; absent means an empty value.
    #[prost(oneof = "Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<Value>,
}

/// The typed content of an [`AnyValue`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Value {
    /// A string (raw bytes, checked for UTF-8 when stored).
    #[prost(bytes = "bytes", tag = "1")]
    String(Bytes),
    /// A boolean.
    #[prost(bool, tag = "2")]
    Bool(bool),
    /// A signed 64-bit integer.
    #[prost(int64, tag = "3")]
    Int(i64),
    /// A double.
    #[prost(double, tag = "4")]
    Double(f64),
    /// An array of values.
    #[prost(message, tag = "5")]
    Array(ArrayValue),
    /// A list of key-value pairs.
    #[prost(message, tag = "6")]
    KeyValueList(KeyValueList),
    /// Raw bytes.
    #[prost(bytes = "bytes", tag = "7")]
    Bytes(Bytes),
}

/// An array attribute value.
#[derive(Clone, PartialEq, Default, Debug)]
pub struct ArrayValue {
    /// The elements.
    pub values: Vec<AnyValue>,
}

/// A key-value list attribute value.
#[derive(Clone, PartialEq, Default, Debug)]
pub struct KeyValueList {
    /// The entries.
    pub values: Vec<KeyValue>,
}

// The two messages through which values nest without bound, written by hand (as prost's derive
// would, with one field numbered 1) so that decoding their elements counts the nesting depth.
macro_rules! nesting_message {
    ($message:ty, $messages_per_level:expr) => {
        impl prost::Message for $message {
            fn encode_raw(&self, buf: &mut impl bytes::BufMut) {
                prost::encoding::message::encode_repeated(1, &self.values, buf);
            }

            fn merge_field(
                &mut self,
                tag: u32,
                wire_type: prost::encoding::WireType,
                buf: &mut impl bytes::Buf,
                ctx: prost::encoding::DecodeContext,
            ) -> Result<(), prost::DecodeError> {
                if tag == 1 {
                    crate::message_depth::nested($messages_per_level, || {
                        prost::encoding::message::merge_repeated(wire_type, &mut self.values, buf, ctx)
                    })
                } else {
                    prost::encoding::skip_field(wire_type, tag, buf, ctx)
                }
            }

            fn encoded_len(&self) -> usize {
                prost::encoding::message::encoded_len_repeated(1, &self.values)
            }

            fn clear(&mut self) {
                self.values.clear();
            }
        }
    };
}

// An array level is the array and its element values; a list level adds the key-value entries.
nesting_message!(ArrayValue, 2);
nesting_message!(KeyValueList, 3);

impl ExportRequest {
    /// Number of spans in the request.
    pub fn span_count(&self) -> usize {
        self.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue as PbAnyValue, KeyValue as PbKeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::{
        ResourceSpans as PbResourceSpans, ScopeSpans as PbScopeSpans, Span as PbSpan,
    };
    use prost::Message;

    #[test]
    fn decodes_what_the_generated_types_encode() {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![PbResourceSpans {
                scope_spans: vec![PbScopeSpans {
                    spans: vec![PbSpan {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        name: "GET /orders".into(),
                        kind: 2,
                        start_time_unix_nano: 10,
                        end_time_unix_nano: 20,
                        flags: 0x301,
                        attributes: vec![PbKeyValue {
                            key: "http.status_code".into(),
                            value: Some(PbAnyValue { value: Some(any_value::Value::IntValue(200)) }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let encoded = Bytes::from(request.encode_to_vec());
        let decoded = ExportRequest::decode(encoded).unwrap();
        let span = &decoded.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.name.as_ref(), b"GET /orders");
        assert_eq!(span.flags, 0x301);
        assert_eq!(span.attributes[0].value.as_ref().unwrap().value, Some(Value::Int(200)));
        assert_eq!(decoded.span_count(), 1);
    }

    #[test]
    fn keeps_strings_that_are_not_utf8() {
        let span = Span { name: Bytes::from_static(b"bad \xff name"), ..Default::default() };
        let decoded = Span::decode(Bytes::from(span.encode_to_vec())).unwrap();
        assert_eq!(decoded.name.as_ref(), b"bad \xff name");
    }
}
