//! Builders for the nested columns: attribute maps, events and links.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, FixedSizeBinaryBuilder, Float64Builder, Int64Builder, ListArray, MapArray,
    StringBuilder, StructArray, TimestampNanosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields};
use arrow::error::ArrowError;
use base64::Engine;

use crate::otlp_messages::{AnyValue, Event, KeyValue, Link, Value};
use crate::span_ids::{normalized_span_id, normalized_trace_id, raw_span_id, raw_trace_id};
use crate::span_schema::{
    REFERENCE_TYPE_KEY, attribute_entries_field, attribute_value_fields, event_fields, link_fields, linked_span_fields,
};

/// Builds a column of `map<string, attribute value>`.
pub struct AttributeMapBuilder {
    keys: StringBuilder,
    string: StringBuilder,
    int: Int64Builder,
    double: Float64Builder,
    boolean: BooleanBuilder,
    bytes: BinaryBuilder,
    json: StringBuilder,
    offsets: Vec<i32>,
}

impl Default for AttributeMapBuilder {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl AttributeMapBuilder {
    /// A builder with room for `rows` maps.
    pub fn with_capacity(rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        AttributeMapBuilder {
            keys: StringBuilder::new(),
            string: StringBuilder::new(),
            int: Int64Builder::new(),
            double: Float64Builder::new(),
            boolean: BooleanBuilder::new(),
            bytes: BinaryBuilder::new(),
            json: StringBuilder::new(),
            offsets,
        }
    }

    /// Appends one map. The caller has checked that every key and string is UTF-8.
    pub fn append(&mut self, attributes: &[KeyValue]) {
        for attribute in attributes {
            self.keys.append_value(text(&attribute.key));
            self.append_value(attribute.value.as_ref());
        }
        let last = *self.offsets.last().unwrap_or(&0);
        self.offsets.push(last + attributes.len() as i32);
    }

    fn append_value(&mut self, value: Option<&AnyValue>) {
        let value = value.and_then(|v| v.value.as_ref());
        match value {
            Some(Value::String(s)) => self.string.append_value(text(s)),
            _ => self.string.append_null(),
        }
        match value {
            Some(Value::Int(i)) => self.int.append_value(*i),
            _ => self.int.append_null(),
        }
        match value {
            Some(Value::Double(d)) => self.double.append_value(*d),
            _ => self.double.append_null(),
        }
        match value {
            Some(Value::Bool(b)) => self.boolean.append_value(*b),
            _ => self.boolean.append_null(),
        }
        match value {
            Some(Value::Bytes(b)) => self.bytes.append_value(b),
            _ => self.bytes.append_null(),
        }
        match value {
            Some(complex @ (Value::Array(_) | Value::KeyValueList(_))) => {
                self.json.append_value(json_of(Some(complex)).to_string())
            }
            _ => self.json.append_null(),
        }
    }

    /// Finishes the column.
    pub fn finish(&mut self) -> Result<MapArray, ArrowError> {
        let values = StructArray::try_new(
            attribute_value_fields(),
            vec![
                Arc::new(self.string.finish()) as ArrayRef,
                Arc::new(self.int.finish()),
                Arc::new(self.double.finish()),
                Arc::new(self.boolean.finish()),
                Arc::new(self.bytes.finish()),
                Arc::new(self.json.finish()),
            ],
            None,
        )?;
        let DataType::Struct(entry_fields) = attribute_entries_field().data_type().clone() else {
            unreachable!("the entries field is a struct")
        };
        let entries =
            StructArray::try_new(entry_fields, vec![Arc::new(self.keys.finish()) as ArrayRef, Arc::new(values)], None)?;
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        MapArray::try_new(attribute_entries_field(), OffsetBuffer::new(offsets.into()), entries, None, false)
    }
}

/// Builds the `events` column.
pub struct EventListBuilder {
    time: TimestampNanosecondBuilder,
    name: StringBuilder,
    attributes: AttributeMapBuilder,
    dropped: UInt32Builder,
    offsets: Vec<i32>,
}

impl Default for EventListBuilder {
    fn default() -> Self {
        EventListBuilder {
            time: TimestampNanosecondBuilder::new().with_timezone("UTC"),
            name: StringBuilder::new(),
            attributes: AttributeMapBuilder::default(),
            dropped: UInt32Builder::new(),
            offsets: vec![0],
        }
    }
}

impl EventListBuilder {
    /// Appends the events of one span.
    pub fn append(&mut self, events: &[Event]) {
        for event in events {
            self.time.append_value(clamp_time(event.time_unix_nano));
            self.name.append_value(text(&event.name));
            self.attributes.append(&event.attributes);
            self.dropped.append_value(event.dropped_attributes_count);
        }
        end_list(&mut self.offsets, events.len());
    }

    /// Finishes the column.
    pub fn finish(&mut self) -> Result<ListArray, ArrowError> {
        let columns = vec![
            Arc::new(self.time.finish()) as ArrayRef,
            Arc::new(self.name.finish()),
            Arc::new(self.attributes.finish()?),
            Arc::new(self.dropped.finish()),
        ];
        list_of_structs(event_fields(), columns, &mut self.offsets)
    }
}

/// Builds the `links` column.
pub struct LinkListBuilder {
    trace_id: FixedSizeBinaryBuilder,
    span_id: UInt64Builder,
    trace_id_raw: BinaryBuilder,
    span_id_raw: BinaryBuilder,
    trace_state: StringBuilder,
    flags: UInt32Builder,
    attributes: AttributeMapBuilder,
    dropped: UInt32Builder,
    offsets: Vec<i32>,
}

impl Default for LinkListBuilder {
    fn default() -> Self {
        LinkListBuilder {
            trace_id: FixedSizeBinaryBuilder::new(16),
            span_id: UInt64Builder::new(),
            trace_id_raw: BinaryBuilder::new(),
            span_id_raw: BinaryBuilder::new(),
            trace_state: StringBuilder::new(),
            flags: UInt32Builder::new(),
            attributes: AttributeMapBuilder::default(),
            dropped: UInt32Builder::new(),
            offsets: vec![0],
        }
    }
}

impl LinkListBuilder {
    /// Appends the links of one span.
    pub fn append(&mut self, links: &[Link]) -> Result<(), ArrowError> {
        for link in links {
            append_trace_id(&mut self.trace_id, &link.trace_id)?;
            self.span_id.append_option(normalized_span_id(&link.span_id));
            self.trace_id_raw.append_option(raw_trace_id(&link.trace_id));
            self.span_id_raw.append_option(raw_span_id(&link.span_id, false));
            self.trace_state.append_value(text(&link.trace_state));
            self.flags.append_value(link.flags);
            self.attributes.append(&link.attributes);
            self.dropped.append_value(link.dropped_attributes_count);
        }
        end_list(&mut self.offsets, links.len());
        Ok(())
    }

    /// Finishes the column.
    pub fn finish(&mut self) -> Result<ListArray, ArrowError> {
        let columns = vec![
            Arc::new(self.trace_id.finish()) as ArrayRef,
            Arc::new(self.span_id.finish()),
            Arc::new(self.trace_id_raw.finish()),
            Arc::new(self.span_id_raw.finish()),
            Arc::new(self.trace_state.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.attributes.finish()?),
            Arc::new(self.dropped.finish()),
        ];
        list_of_structs(link_fields(), columns, &mut self.offsets)
    }
}

/// Builds a column of `list<linked span>`: one item per link of a span, in the order of `links`.
pub struct LinkedSpanListBuilder {
    trace_id: FixedSizeBinaryBuilder,
    span_id: UInt64Builder,
    ref_type: StringBuilder,
    offsets: Vec<i32>,
}

impl Default for LinkedSpanListBuilder {
    fn default() -> Self {
        LinkedSpanListBuilder {
            trace_id: FixedSizeBinaryBuilder::new(16),
            span_id: UInt64Builder::new(),
            ref_type: StringBuilder::new(),
            offsets: vec![0],
        }
    }
}

impl LinkedSpanListBuilder {
    /// Appends the linked spans of one span.
    pub fn append(&mut self, links: &[Link]) -> Result<(), ArrowError> {
        for link in links {
            append_trace_id(&mut self.trace_id, &link.trace_id)?;
            self.span_id.append_option(normalized_span_id(&link.span_id));
            self.ref_type.append_option(reference_type(&link.attributes));
        }
        end_list(&mut self.offsets, links.len());
        Ok(())
    }

    /// Finishes the column.
    pub fn finish(&mut self) -> Result<ListArray, ArrowError> {
        let columns = vec![
            Arc::new(self.trace_id.finish()) as ArrayRef,
            Arc::new(self.span_id.finish()),
            Arc::new(self.ref_type.finish()),
        ];
        list_of_structs(linked_span_fields(), columns, &mut self.offsets)
    }
}

/// Ends a span's list in a list column: its items are the `items` appended since the last end.
fn end_list(offsets: &mut Vec<i32>, items: usize) {
    let last = *offsets.last().unwrap_or(&0);
    offsets.push(last + items as i32);
}

/// A list column of structs of `fields` from the items' columns and the lists' ends, which are
/// reset for the next batch.
fn list_of_structs(fields: Fields, columns: Vec<ArrayRef>, offsets: &mut Vec<i32>) -> Result<ListArray, ArrowError> {
    let items = StructArray::try_new(fields.clone(), columns, None)?;
    let offsets = std::mem::replace(offsets, vec![0]);
    ListArray::try_new(
        Arc::new(Field::new("item", DataType::Struct(fields), false)),
        OffsetBuffer::new(offsets.into()),
        Arc::new(items),
        None,
    )
}

/// Appends a link's trace id, normalised, or null when it has no normal form.
fn append_trace_id(builder: &mut FixedSizeBinaryBuilder, id: &[u8]) -> Result<(), ArrowError> {
    match normalized_trace_id(id) {
        Some(id) => builder.append_value(id),
        None => {
            builder.append_null();
            Ok(())
        }
    }
}

/// The text of a link's first [`REFERENCE_TYPE_KEY`] attribute, when it is a string (as a map
/// lookup of the attribute's `string` field reads it).
fn reference_type(attributes: &[KeyValue]) -> Option<&str> {
    let attribute = attributes.iter().find(|attribute| attribute.key.as_ref() == REFERENCE_TYPE_KEY.as_bytes())?;
    match attribute.value.as_ref()?.value.as_ref()? {
        Value::String(bytes) => Some(text(bytes)),
        _ => None,
    }
}

/// A nanosecond time as stored: OTLP times are unsigned, Arrow timestamps signed; a time past
/// year 2262 (only seen in broken data) is clamped to the largest timestamp.
pub fn clamp_time(nanos: u64) -> i64 {
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

/// Text of a field the caller has already checked to be UTF-8 (every string of a span is
/// checked before any of its columns is appended); anything else becomes empty text.
pub fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// The JSON form of a value, used for arrays and key-value lists: strings, numbers and booleans
/// as themselves, bytes in base64 as in OTLP JSON, nested lists as JSON objects.
pub fn json_of(value: Option<&Value>) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        None => Json::Null,
        Some(Value::String(s)) => Json::String(text(s).to_owned()),
        Some(Value::Bool(b)) => Json::Bool(*b),
        Some(Value::Int(i)) => Json::from(*i),
        Some(Value::Double(d)) => {
            serde_json::Number::from_f64(*d).map(Json::Number).unwrap_or_else(|| Json::String(d.to_string()))
        }
        Some(Value::Bytes(b)) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Some(Value::Array(array)) => Json::Array(array.values.iter().map(|v| json_of(v.value.as_ref())).collect()),
        Some(Value::KeyValueList(list)) => Json::Object(
            list.values
                .iter()
                .map(|kv| (text(&kv.key).to_owned(), json_of(kv.value.as_ref().and_then(|v| v.value.as_ref()))))
                .collect(),
        ),
    }
}
