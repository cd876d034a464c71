//! Decoding of the OTLP JSON encoding into [`ExportRequest`].
//!
//! Follows the OTLP specification's JSON rules: lowerCamelCase keys (the proto's snake_case
//! names are accepted too, as the Collector does), trace and span ids as hex (any letter case),
//! enums as integers (or their names), 64-bit integers as decimal strings or numbers, unknown
//! fields ignored. Tempo's older `batches` and the pre-1.0 `instrumentationLibrarySpans` keys are
//! accepted as aliases.
//!
//! An id that is not hex rejects its span alone; JSON that does not parse rejects the request,
//! with the line and column.

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::otlp_messages as otlp;

/// A JSON request that could not be decoded at all.
#[derive(Debug, thiserror::Error)]
#[error("invalid OTLP JSON: {0}")]
pub struct JsonDecodeError(#[from] pub serde_json::Error);

/// A decoded JSON request, and the spans dropped because an id was not hex.
#[derive(Debug, Default)]
pub struct DecodedJson {
    /// The request, without the dropped spans.
    pub request: otlp::ExportRequest,
    /// Number of dropped spans.
    pub rejected: usize,
    /// Why, for the first few, with their place in the request.
    pub rejections: Vec<String>,
}

/// Decodes one OTLP JSON `ExportTraceServiceRequest` (or `TracesData`). Strings without escapes
/// are not copied: they share `input`'s buffer.
pub fn decode_json_request(input: &Bytes) -> Result<DecodedJson, JsonDecodeError> {
    decode_json_request_from(input, 0)
}

/// As [`decode_json_request`], for a part of a bigger document whose first `resourceSpans`
/// element is number `first_index` there: rejections name the element by its index in the whole.
pub fn decode_json_request_from(input: &Bytes, first_index: u64) -> Result<DecodedJson, JsonDecodeError> {
    let parsed: JsonRequest<'_> = serde_json::from_slice(input)?;
    Ok(parsed.into_request(input, first_index))
}

#[derive(Deserialize)]
struct JsonRequest<'a> {
    #[serde(default, borrow, rename = "resourceSpans", alias = "resource_spans", alias = "batches")]
    resource_spans: Vec<JsonResourceSpans<'a>>,
}

#[derive(Deserialize)]
struct JsonResourceSpans<'a> {
    #[serde(default, borrow)]
    resource: Option<JsonResource<'a>>,
    #[serde(
        default,
        borrow,
        rename = "scopeSpans",
        alias = "scope_spans",
        alias = "instrumentationLibrarySpans",
        alias = "instrumentation_library_spans"
    )]
    scope_spans: Vec<JsonScopeSpans<'a>>,
    #[serde(default, borrow, deserialize_with = "borrowed_text", rename = "schemaUrl", alias = "schema_url")]
    schema_url: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct JsonResource<'a> {
    #[serde(default, borrow)]
    attributes: Vec<JsonKeyValue<'a>>,
    #[serde(
        default,
        rename = "droppedAttributesCount",
        alias = "dropped_attributes_count",
        deserialize_with = "flexible_u32"
    )]
    dropped_attributes_count: u32,
}

#[derive(Deserialize)]
struct JsonScopeSpans<'a> {
    #[serde(default, borrow, alias = "instrumentationLibrary", alias = "instrumentation_library")]
    scope: Option<JsonScope<'a>>,
    #[serde(default, borrow)]
    spans: Vec<JsonSpan<'a>>,
    #[serde(default, borrow, deserialize_with = "borrowed_text", rename = "schemaUrl", alias = "schema_url")]
    schema_url: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct JsonScope<'a> {
    #[serde(default, borrow, deserialize_with = "borrowed_text")]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_text")]
    version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    attributes: Vec<JsonKeyValue<'a>>,
    #[serde(
        default,
        rename = "droppedAttributesCount",
        alias = "dropped_attributes_count",
        deserialize_with = "flexible_u32"
    )]
    dropped_attributes_count: u32,
}

#[derive(Deserialize)]
struct JsonSpan<'a> {
    #[serde(default, borrow, deserialize_with = "borrowed_text", rename = "traceId", alias = "trace_id")]
    trace_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_text", rename = "spanId", alias = "span_id")]
    span_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_text", rename = "traceState", alias = "trace_state")]
    trace_state: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_text", rename = "parentSpanId", alias = "parent_span_id")]
    parent_span_id: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "flexible_u32")]
    flags: u32,
    #[serde(default, borrow, deserialize_with = "borrowed_text")]
    name: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "span_kind")]
    kind: i32,
    #[serde(default, rename = "startTimeUnixNano", alias = "start_time_unix_nano", deserialize_with = "flexible_u64")]
    start_time_unix_nano: u64,
    #[serde(default, rename = "endTimeUnixNano", alias = "end_time_unix_nano", deserialize_with = "flexible_u64")]
    end_time_unix_nano: u64,
    #[serde(default, borrow)]
    attributes: Vec<JsonKeyValue<'a>>,
    #[serde(
        default,
        rename = "droppedAttributesCount",
        alias = "dropped_attributes_count",
        deserialize_with = "flexible_u32"
    )]
    dropped_attributes_count: u32,
    #[serde(default, borrow)]
    events: Vec<JsonEvent<'a>>,
    #[serde(default, rename = "droppedEventsCount", alias = "dropped_events_count", deserialize_with = "flexible_u32")]
    dropped_events_count: u32,
    #[serde(default, borrow)]
    links: Vec<JsonLink<'a>>,
    #[serde(default, rename = "droppedLinksCount", alias = "dropped_links_count", deserialize_with = "flexible_u32")]
    dropped_links_count: u32,
    #[serde(default, borrow)]
    status: Option<JsonStatus<'a>>,
}

#[derive(Deserialize)]
struct JsonEvent<'a> {
    #[serde(default, rename = "timeUnixNano", alias = "time_unix_nano", deserialize_with = "flexible_u64")]
    time_unix_nano: u64,
    #[serde(default, borrow, deserialize_with = "borrowed_text")]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    attributes: Vec<JsonKeyValue<'a>>,
    #[serde(
        default,
        rename = "droppedAttributesCount",
        alias = "dropped_attributes_count",
        deserialize_with = "flexible_u32"
    )]
    dropped_attributes_count: u32,
}

#[derive(Deserialize)]
struct JsonLink<'a> {
    #[serde(default, borrow, deserialize_with = "borrowed_text", rename = "traceId", alias = "trace_id")]
    trace_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_text", rename = "spanId", alias = "span_id")]
    span_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_text", rename = "traceState", alias = "trace_state")]
    trace_state: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    attributes: Vec<JsonKeyValue<'a>>,
    #[serde(
        default,
        rename = "droppedAttributesCount",
        alias = "dropped_attributes_count",
        deserialize_with = "flexible_u32"
    )]
    dropped_attributes_count: u32,
    #[serde(default, deserialize_with = "flexible_u32")]
    flags: u32,
}

#[derive(Deserialize)]
struct JsonStatus<'a> {
    #[serde(default, borrow, deserialize_with = "borrowed_text")]
    message: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "status_code")]
    code: i32,
}

#[derive(Deserialize)]
struct JsonKeyValue<'a> {
    #[serde(default, borrow, deserialize_with = "borrowed_text")]
    key: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    value: Option<JsonAnyValue<'a>>,
}

#[derive(Deserialize)]
struct JsonAnyValue<'a> {
    #[serde(default, borrow, deserialize_with = "borrowed_text", rename = "stringValue", alias = "string_value")]
    string_value: Option<Cow<'a, str>>,
    #[serde(default, rename = "boolValue", alias = "bool_value")]
    bool_value: Option<bool>,
    #[serde(default, rename = "intValue", alias = "int_value", deserialize_with = "flexible_optional_i64")]
    int_value: Option<i64>,
    #[serde(default, rename = "doubleValue", alias = "double_value", deserialize_with = "flexible_optional_f64")]
    double_value: Option<f64>,
    #[serde(default, borrow, rename = "arrayValue", alias = "array_value")]
    array_value: Option<JsonArray<'a>>,
    #[serde(default, borrow, rename = "kvlistValue", alias = "kvlist_value")]
    kvlist_value: Option<JsonKeyValueList<'a>>,
    #[serde(default, borrow, deserialize_with = "borrowed_text", rename = "bytesValue", alias = "bytes_value")]
    bytes_value: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct JsonArray<'a> {
    #[serde(default, borrow)]
    values: Vec<JsonAnyValue<'a>>,
}

#[derive(Deserialize)]
struct JsonKeyValueList<'a> {
    #[serde(default, borrow)]
    values: Vec<JsonKeyValue<'a>>,
}

/// Converts borrowed JSON text into [`Bytes`] sharing the input buffer when possible.
struct Text<'i> {
    input: &'i Bytes,
}

impl Text<'_> {
    fn bytes(&self, text: Option<Cow<'_, str>>) -> Bytes {
        match text {
            None => Bytes::new(),
            Some(Cow::Borrowed(s)) if within(self.input, s.as_bytes()) => self.input.slice_ref(s.as_bytes()),
            Some(s) => Bytes::copy_from_slice(s.as_bytes()),
        }
    }
}

fn within(buffer: &[u8], part: &[u8]) -> bool {
    let start = buffer.as_ptr() as usize;
    let end = start + buffer.len();
    let part_start = part.as_ptr() as usize;
    part_start >= start && part_start + part.len() <= end
}

/// Decodes a hex id (any letter case, any even length). `Err` names what is wrong.
pub(crate) fn hex_id(text: Option<&str>) -> Result<Bytes, String> {
    let Some(text) = text else {
        return Ok(Bytes::new());
    };
    if text.len() % 2 != 0 {
        return Err(format!("{text:?} has an odd number of hex digits"));
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(text.len() / 2);
    for (index, pair) in text.as_bytes().chunks(2).enumerate() {
        match (digit(pair[0]), digit(pair[1])) {
            (Some(high), Some(low)) => out.push(high << 4 | low),
            _ => return Err(format!("{text:?} is not hex (at character {})", index * 2)),
        }
    }
    Ok(Bytes::from(out))
}

impl<'a> JsonRequest<'a> {
    fn into_request(self, input: &Bytes, first_index: u64) -> DecodedJson {
        let text = Text { input };
        let mut decoded = DecodedJson::default();
        for (resource_index, resource_spans) in self.resource_spans.into_iter().enumerate() {
            let mut scope_spans_out = Vec::with_capacity(resource_spans.scope_spans.len());
            for (scope_index, scope_spans) in resource_spans.scope_spans.into_iter().enumerate() {
                let mut spans = Vec::with_capacity(scope_spans.spans.len());
                for (span_index, span) in scope_spans.spans.into_iter().enumerate() {
                    match convert_span(span, &text) {
                        Ok(span) => spans.push(span),
                        Err(reason) => {
                            decoded.rejected += 1;
                            if decoded.rejections.len() < 5 {
                                let resource_index = first_index + resource_index as u64;
                                decoded.rejections.push(format!(
                                    "resourceSpans[{resource_index}].scopeSpans[{scope_index}].spans[{span_index}].{reason}"
                                ));
                            }
                        }
                    }
                }
                scope_spans_out.push(otlp::ScopeSpans {
                    scope: scope_spans.scope.map(|scope| otlp::InstrumentationScope {
                        name: text.bytes(scope.name),
                        version: text.bytes(scope.version),
                        attributes: convert_attributes(scope.attributes, &text),
                        dropped_attributes_count: scope.dropped_attributes_count,
                    }),
                    spans,
                    schema_url: text.bytes(scope_spans.schema_url),
                });
            }
            decoded.request.resource_spans.push(otlp::ResourceSpans {
                resource: resource_spans.resource.map(|resource| otlp::Resource {
                    attributes: convert_attributes(resource.attributes, &text),
                    dropped_attributes_count: resource.dropped_attributes_count,
                }),
                scope_spans: scope_spans_out,
                schema_url: text.bytes(resource_spans.schema_url),
            });
        }
        decoded
    }
}

fn convert_span(span: JsonSpan<'_>, text: &Text<'_>) -> Result<otlp::Span, String> {
    let id = |value: &Option<Cow<'_, str>>, field: &str| hex_id(value.as_deref()).map_err(|e| format!("{field}: {e}"));
    let trace_id = id(&span.trace_id, "traceId")?;
    let span_id = id(&span.span_id, "spanId")?;
    let parent_span_id = id(&span.parent_span_id, "parentSpanId")?;
    let mut links = Vec::with_capacity(span.links.len());
    for (index, link) in span.links.into_iter().enumerate() {
        links.push(otlp::Link {
            trace_id: id(&link.trace_id, &format!("links[{index}].traceId"))?,
            span_id: id(&link.span_id, &format!("links[{index}].spanId"))?,
            trace_state: text.bytes(link.trace_state),
            attributes: convert_attributes(link.attributes, text),
            dropped_attributes_count: link.dropped_attributes_count,
            flags: link.flags,
        });
    }
    let mut attributes = Vec::with_capacity(span.attributes.len());
    for (index, attribute) in span.attributes.into_iter().enumerate() {
        attributes.push(convert_attribute(attribute, text).map_err(|e| format!("attributes[{index}].{e}"))?);
    }
    let mut events = Vec::with_capacity(span.events.len());
    for event in span.events {
        events.push(otlp::Event {
            time_unix_nano: event.time_unix_nano,
            name: text.bytes(event.name),
            attributes: convert_attributes(event.attributes, text),
            dropped_attributes_count: event.dropped_attributes_count,
        });
    }
    Ok(otlp::Span {
        trace_id,
        span_id,
        trace_state: text.bytes(span.trace_state),
        parent_span_id,
        name: text.bytes(span.name),
        kind: span.kind,
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        attributes,
        dropped_attributes_count: span.dropped_attributes_count,
        events,
        dropped_events_count: span.dropped_events_count,
        links,
        dropped_links_count: span.dropped_links_count,
        status: span.status.map(|status| otlp::Status { message: text.bytes(status.message), code: status.code }),
        flags: span.flags,
    })
}

/// Attributes of resources, scopes, events and links: a bad `bytesValue` keeps the key with an
/// empty value rather than dropping the whole span.
fn convert_attributes(attributes: Vec<JsonKeyValue<'_>>, text: &Text<'_>) -> Vec<otlp::KeyValue> {
    attributes
        .into_iter()
        .map(|attribute| {
            let key = text.bytes(attribute.key);
            let value = attribute.value.and_then(|v| convert_value(v, text).ok());
            otlp::KeyValue { key, value }
        })
        .collect()
}

fn convert_attribute(attribute: JsonKeyValue<'_>, text: &Text<'_>) -> Result<otlp::KeyValue, String> {
    let key = text.bytes(attribute.key);
    let value = match attribute.value {
        Some(value) => Some(convert_value(value, text).map_err(|e| format!("value: {e}"))?),
        None => None,
    };
    Ok(otlp::KeyValue { key, value })
}

fn convert_value(value: JsonAnyValue<'_>, text: &Text<'_>) -> Result<otlp::AnyValue, String> {
    use otlp::Value;
    let converted = if let Some(s) = value.string_value {
        Some(Value::String(text.bytes(Some(s))))
    } else if let Some(b) = value.bool_value {
        Some(Value::Bool(b))
    } else if let Some(i) = value.int_value {
        Some(Value::Int(i))
    } else if let Some(d) = value.double_value {
        Some(Value::Double(d))
    } else if let Some(array) = value.array_value {
        let values = array.values.into_iter().map(|v| convert_value(v, text)).collect::<Result<_, _>>()?;
        Some(Value::Array(otlp::ArrayValue { values }))
    } else if let Some(list) = value.kvlist_value {
        let values = list.values.into_iter().map(|kv| convert_attribute(kv, text)).collect::<Result<_, _>>()?;
        Some(Value::KeyValueList(otlp::KeyValueList { values }))
    } else if let Some(encoded) = value.bytes_value {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .map_err(|e| format!("bytesValue is not base64: {e}"))?;
        Some(Value::Bytes(Bytes::from(decoded)))
    } else {
        None
    };
    Ok(otlp::AnyValue { value: converted })
}

/// Text borrowed from the input when it has no escapes (serde's own `Option<Cow<str>>` always
/// copies).
fn borrowed_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct TextVisitor;
    impl<'de> Visitor<'de> for TextVisitor {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a string")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    deserializer.deserialize_any(TextVisitor)
}

/// An integer given as a JSON number or as a decimal string.
struct FlexibleInteger;

impl<'de> Visitor<'de> for FlexibleInteger {
    type Value = i128;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an integer, as a number or a decimal string")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
        Ok(v.into())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
        Ok(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i128, E> {
        if v.fract() == 0.0 && v.abs() < 1e38 {
            Ok(v as i128)
        } else {
            Err(E::custom(format!("{v} is not an integer")))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i128, E> {
        v.trim().parse().map_err(|_| E::custom(format!("{v:?} is not a decimal integer")))
    }

    fn visit_unit<E: de::Error>(self) -> Result<i128, E> {
        Ok(0)
    }
}

fn flexible_integer<'de, D: Deserializer<'de>, T: TryFrom<i128>>(deserializer: D, what: &str) -> Result<T, D::Error> {
    let value = deserializer.deserialize_any(FlexibleInteger)?;
    T::try_from(value).map_err(|_| de::Error::custom(format!("{value} is out of range for {what}")))
}

fn flexible_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    flexible_integer(deserializer, "an unsigned 64-bit integer")
}

fn flexible_u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    flexible_integer(deserializer, "an unsigned 32-bit integer")
}

fn flexible_optional_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    flexible_integer(deserializer, "a signed 64-bit integer").map(Some)
}

fn flexible_optional_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    struct FlexibleDouble;
    impl<'de> Visitor<'de> for FlexibleDouble {
        type Value = f64;
        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a number, or \"NaN\", \"Infinity\", \"-Infinity\"")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            v.parse().map_err(|_| E::custom(format!("{v:?} is not a number")))
        }
    }
    deserializer.deserialize_any(FlexibleDouble).map(Some)
}

/// An enum given as its integer value or as its name.
fn enum_value<'de, D: Deserializer<'de>>(deserializer: D, names: &'static [&'static str]) -> Result<i32, D::Error> {
    struct EnumVisitor(&'static [&'static str]);
    impl<'de> Visitor<'de> for EnumVisitor {
        type Value = i32;
        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(formatter, "an enum value as an integer or one of {:?}", self.0)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i32, E> {
            i32::try_from(v).map_err(|_| E::custom(format!("enum value {v} out of range")))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i32, E> {
            i32::try_from(v).map_err(|_| E::custom(format!("enum value {v} out of range")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i32, E> {
            match self.0.iter().position(|name| *name == v) {
                Some(index) => Ok(index as i32),
                None => Err(E::custom(format!("unknown enum name {v:?}"))),
            }
        }
    }
    deserializer.deserialize_any(EnumVisitor(names))
}

fn span_kind<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    enum_value(
        deserializer,
        &[
            "SPAN_KIND_UNSPECIFIED",
            "SPAN_KIND_INTERNAL",
            "SPAN_KIND_SERVER",
            "SPAN_KIND_CLIENT",
            "SPAN_KIND_PRODUCER",
            "SPAN_KIND_CONSUMER",
        ],
    )
}

fn status_code<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    enum_value(deserializer, &["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp_messages::Value;

    fn decode(text: &str) -> DecodedJson {
        decode_json_request(&Bytes::from(text.to_owned())).unwrap()
    }

    #[test]
    fn decodes_ids_numbers_and_enums_in_every_accepted_form() {
        let decoded = decode(
            r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"a"}}]},
            "scopeSpans":[{"scope":{"name":"lib"},"spans":[
              {"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","name":"one",
               "kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,
               "attributes":[{"key":"n","value":{"intValue":"-12"}},{"key":"m","value":{"intValue":7}},
                             {"key":"d","value":{"doubleValue":"NaN"}}],
               "status":{"code":"STATUS_CODE_ERROR"},"unknownField":{"x":1}},
              {"trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b175","kind":"SPAN_KIND_CLIENT"}
            ]}]}]}"#,
        );
        assert_eq!(decoded.rejected, 0);
        let spans = &decoded.request.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans[0].trace_id[0], 0x5b);
        assert_eq!(spans[0].start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(spans[0].end_time_unix_nano, 1_544_712_661_000_000_000);
        assert_eq!(spans[0].kind, 2);
        assert_eq!(spans[0].status.as_ref().unwrap().code, 2);
        assert_eq!(spans[0].attributes[0].value.as_ref().unwrap().value, Some(Value::Int(-12)));
        assert_eq!(spans[0].attributes[1].value.as_ref().unwrap().value, Some(Value::Int(7)));
        assert!(matches!(spans[0].attributes[2].value.as_ref().unwrap().value, Some(Value::Double(d)) if d.is_nan()));
        assert_eq!(spans[1].kind, 3);
        assert_eq!(spans[1].span_id.as_ref(), &[0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x75]);
    }

    #[test]
    fn a_span_with_a_non_hex_id_is_rejected_alone() {
        let decoded = decode(
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"01"},{"spanId":"0102"}]}]}]}"#,
        );
        assert_eq!(decoded.rejected, 1);
        assert_eq!(
            decoded.rejections,
            vec![r#"resourceSpans[0].scopeSpans[0].spans[0].traceId: "zz" is not hex (at character 0)"#]
        );
        assert_eq!(decoded.request.span_count(), 1);
    }

    #[test]
    fn wrong_length_ids_are_kept() {
        let decoded = decode(
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102","spanId":"00000000000000000000"}]}]}]}"#,
        );
        let span = &decoded.request.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.trace_id.as_ref(), &[1, 2]);
        assert_eq!(span.span_id.len(), 10);
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let error =
            decode_json_request(&Bytes::from_static(b"{\"resourceSpans\": [\n  {\"scopeSpans\": 5}]}")).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("line 2 column"), "{message}");
        assert!(message.starts_with("invalid OTLP JSON: invalid type: integer `5`"), "{message}");
    }

    #[test]
    fn unescaped_strings_share_the_input_buffer() {
        let input = Bytes::from_static(
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"plain","traceState":"a\"b"}]}]}]}"#,
        );
        let decoded = decode_json_request(&input).unwrap();
        let span = &decoded.request.resource_spans[0].scope_spans[0].spans[0];
        assert!(within(&input, &span.name));
        assert_eq!(span.trace_state.as_ref(), b"a\"b");
    }
}
