//! Small builders shared by the converters of other tools' formats (Jaeger, Zipkin) into OTLP
//! messages, so every source ends in the same span builder.

use bytes::Bytes;

use crate::otlp_messages::{AnyValue, KeyValue, Value};

/// OTLP span kinds.
pub mod kind {
    /// SPAN_KIND_INTERNAL.
    pub const INTERNAL: i32 = 1;
    /// SPAN_KIND_SERVER.
    pub const SERVER: i32 = 2;
    /// SPAN_KIND_CLIENT.
    pub const CLIENT: i32 = 3;
    /// SPAN_KIND_PRODUCER.
    pub const PRODUCER: i32 = 4;
    /// SPAN_KIND_CONSUMER.
    pub const CONSUMER: i32 = 5;
}

/// OTLP status code ERROR.
pub const STATUS_ERROR: i32 = 2;

/// The span kind named by a Zipkin `kind` or a Jaeger `span.kind` tag (any case).
pub fn kind_named(name: &str) -> Option<i32> {
    match name.to_ascii_lowercase().as_str() {
        "server" => Some(kind::SERVER),
        "client" => Some(kind::CLIENT),
        "producer" => Some(kind::PRODUCER),
        "consumer" => Some(kind::CONSUMER),
        "internal" => Some(kind::INTERNAL),
        _ => None,
    }
}

/// An attribute with a value.
pub fn attribute(key: &str, value: Value) -> KeyValue {
    KeyValue { key: Bytes::copy_from_slice(key.as_bytes()), value: Some(AnyValue { value: Some(value) }) }
}

/// A string attribute.
pub fn string_attribute(key: &str, value: &str) -> KeyValue {
    attribute(key, text_value(value))
}

/// A string value.
pub fn text_value(value: &str) -> Value {
    Value::String(Bytes::copy_from_slice(value.as_bytes()))
}

/// Decodes a hex id as given: an odd number of digits is left-padded with one zero (Jaeger drops
/// leading zeros); the length is kept, so a 64-bit trace id stays 8 bytes.
pub fn id_bytes(text: &str) -> Result<Bytes, String> {
    if text.len() % 2 == 1 {
        crate::otlp_json::hex_id(Some(&format!("0{text}")))
    } else {
        crate::otlp_json::hex_id(Some(text))
    }
}

/// Decodes a hex id into a fixed width (`bytes` long), left-padding short ids with zeros, as
/// Jaeger's own model does (its ids are numbers: 128-bit trace ids, 64-bit span ids).
pub fn fixed_id_bytes(text: &str, bytes: usize) -> Result<Bytes, String> {
    if text.len() > bytes * 2 {
        return Err(format!("{text:?} has {} hex digits, more than {}", text.len(), bytes * 2));
    }
    crate::otlp_json::hex_id(Some(&format!("{text:0>width$}", width = bytes * 2)))
}

/// Microseconds to nanoseconds, saturating.
pub fn micros_to_nanos(micros: u64) -> u64 {
    micros.saturating_mul(1000)
}

/// A JSON scalar as an attribute value (for tags without a declared type).
pub fn json_scalar_value(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::String(text) => text_value(text),
        serde_json::Value::Bool(flag) => Value::Bool(*flag),
        serde_json::Value::Number(number) => match number.as_i64() {
            Some(integer) => Value::Int(integer),
            None => Value::Double(number.as_f64().unwrap_or_default()),
        },
        serde_json::Value::Null => text_value(""),
        other => text_value(&other.to_string()),
    }
}
