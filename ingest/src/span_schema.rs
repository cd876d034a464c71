//! The span table: one row per span. This schema is the contract between ingest and analysis,
//! documented column by column in `docs/schema.md`.
//!
//! Ids are normalised into fixed-width types (`trace_id` as 16 bytes, `span_id` and
//! `parent_span_id` as unsigned 64-bit integers) so that trace-level joins hash and compare
//! fixed-width keys instead of strings. An id received in another form (another length, empty:
//! malformed ids are evidence) is also kept exactly as received (`*_raw`, null otherwise).

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// Version of the span table layout, written into every Parquet file's metadata. Version 5 adds
/// [`column::LINKED_SPANS`], which files of version 4 and before lack: the analysis derives it from
/// their `links` on reading. Version 4 keeps
/// a raw id only when it differs from the normalised id's bytes; files of version 3 keep every raw
/// id, which reads the same way. Version 3 stores the [`NAMING_COLUMNS`] as dictionaries; files of
/// version 2 hold them as plain strings and are read as dictionaries (the same values, cast on
/// reading).
pub const SCHEMA_VERSION: &str = "5";

/// Names of the span table's columns.
pub mod column {
    #![allow(missing_docs)]
    pub const TRACE_ID: &str = "trace_id";
    pub const TRACE_ID_LOW: &str = "trace_id_low";
    pub const SPAN_ID: &str = "span_id";
    pub const PARENT_SPAN_ID: &str = "parent_span_id";
    pub const TRACE_ID_RAW: &str = "trace_id_raw";
    pub const SPAN_ID_RAW: &str = "span_id_raw";
    pub const PARENT_SPAN_ID_RAW: &str = "parent_span_id_raw";
    pub const TRACE_STATE: &str = "trace_state";
    pub const FLAGS: &str = "flags";
    pub const PARENT_IS_REMOTE: &str = "parent_is_remote";
    pub const NAME: &str = "name";
    pub const KIND: &str = "kind";
    pub const START_TIME: &str = "start_time";
    pub const END_TIME: &str = "end_time";
    pub const DURATION_NANO: &str = "duration_nano";
    pub const STATUS_CODE: &str = "status_code";
    pub const STATUS_MESSAGE: &str = "status_message";
    pub const SERVICE_NAME: &str = "service_name";
    pub const SERVICE_INSTANCE_ID: &str = "service_instance_id";
    pub const HOST_NAME: &str = "host_name";
    pub const HOST_ID: &str = "host_id";
    pub const HOST_IP: &str = "host_ip";
    pub const PEER_SERVICE: &str = "peer_service";
    pub const SERVER_ADDRESS: &str = "server_address";
    pub const HTTP_ROUTE: &str = "http_route";
    pub const DB_SYSTEM: &str = "db_system";
    pub const RPC_SYSTEM: &str = "rpc_system";
    pub const MESSAGING_SYSTEM: &str = "messaging_system";
    pub const HEADER_TRACEPARENT: &str = "header_traceparent";
    pub const HEADER_B3: &str = "header_b3";
    pub const HEADER_X_B3_TRACEID: &str = "header_x_b3_traceid";
    pub const HEADER_X_B3_SPANID: &str = "header_x_b3_spanid";
    pub const HEADER_X_B3_PARENTSPANID: &str = "header_x_b3_parentspanid";
    pub const HEADER_X_B3_SAMPLED: &str = "header_x_b3_sampled";
    pub const HEADER_X_B3_FLAGS: &str = "header_x_b3_flags";
    pub const GTS_GLOBAL_TX_ID: &str = "gts_global_tx_id";
    pub const GTS_BRANCH_TX_ID: &str = "gts_branch_tx_id";
    pub const GTS_PARENT_BRANCH_TX_ID: &str = "gts_parent_branch_tx_id";
    pub const ATTRIBUTES: &str = "attributes";
    pub const RESOURCE_ATTRIBUTES: &str = "resource_attributes";
    pub const SCOPE_ATTRIBUTES: &str = "scope_attributes";
    pub const EVENTS: &str = "events";
    pub const LINKS: &str = "links";
    pub const LINKED_SPANS: &str = "linked_spans";
    pub const SCOPE_NAME: &str = "scope_name";
    pub const SCOPE_VERSION: &str = "scope_version";
    pub const RESOURCE_SCHEMA_URL: &str = "resource_schema_url";
    pub const SCOPE_SCHEMA_URL: &str = "scope_schema_url";
    pub const DROPPED_ATTRIBUTES_COUNT: &str = "dropped_attributes_count";
    pub const DROPPED_EVENTS_COUNT: &str = "dropped_events_count";
    pub const DROPPED_LINKS_COUNT: &str = "dropped_links_count";
    pub const RESOURCE_DROPPED_ATTRIBUTES_COUNT: &str = "resource_dropped_attributes_count";
    pub const SCOPE_DROPPED_ATTRIBUTES_COUNT: &str = "scope_dropped_attributes_count";
    pub const RECEIVE_TIME: &str = "receive_time";
    pub const SOURCE: &str = "source";
}

/// The promoted propagation-header columns, with the header each one records.
pub const HEADER_COLUMNS: [(&str, &str); 7] = [
    ("traceparent", column::HEADER_TRACEPARENT),
    ("b3", column::HEADER_B3),
    ("x-b3-traceid", column::HEADER_X_B3_TRACEID),
    ("x-b3-spanid", column::HEADER_X_B3_SPANID),
    ("x-b3-parentspanid", column::HEADER_X_B3_PARENTSPANID),
    ("x-b3-sampled", column::HEADER_X_B3_SAMPLED),
    ("x-b3-flags", column::HEADER_X_B3_FLAGS),
];

/// The text columns that name something from a small set (services, hosts, operations, kinds,
/// statuses, peers, routes, systems): stored as dictionaries, so that a reader gets each distinct
/// value once per column chunk and a 4-byte key per span instead of the text again and again. On
/// 10M spans this took the analysis's in-memory copy of the spans from 3.12 to 2.32 GiB
/// (`docs/benchmarks.md`, session 27). In Parquet they stay UTF-8 byte arrays (dictionary-encoded,
/// as before): any engine reads them as text.
pub const NAMING_COLUMNS: [&str; 14] = [
    column::NAME,
    column::KIND,
    column::STATUS_CODE,
    column::SERVICE_NAME,
    column::SERVICE_INSTANCE_ID,
    column::HOST_NAME,
    column::HOST_ID,
    column::HOST_IP,
    column::PEER_SERVICE,
    column::SERVER_ADDRESS,
    column::HTTP_ROUTE,
    column::DB_SYSTEM,
    column::RPC_SYSTEM,
    column::MESSAGING_SYSTEM,
];

/// The type of the [`NAMING_COLUMNS`]: text keyed by 32-bit integers.
pub fn naming_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// A timestamp column type: nanoseconds since the Unix epoch, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// The fields of one attribute value: exactly one is set, by the value's OTLP type. Arrays and
/// key-value lists are kept as JSON text.
pub fn attribute_value_fields() -> Fields {
    Fields::from(vec![
        Field::new("string", DataType::Utf8, true),
        Field::new("int", DataType::Int64, true),
        Field::new("double", DataType::Float64, true),
        Field::new("bool", DataType::Boolean, true),
        Field::new("bytes", DataType::Binary, true),
        Field::new("json", DataType::Utf8, true),
    ])
}

/// The `map<string, attribute value>` type of every attribute column.
pub fn attribute_map_type() -> DataType {
    DataType::Map(attribute_entries_field(), false)
}

/// The entries field of the attribute map type.
pub fn attribute_entries_field() -> Arc<Field> {
    Arc::new(Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Struct(attribute_value_fields()), true),
        ])),
        false,
    ))
}

/// The fields of one event.
pub fn event_fields() -> Fields {
    Fields::from(vec![
        Field::new("time", timestamp_type(), false),
        Field::new("name", DataType::Utf8, false),
        Field::new("attributes", attribute_map_type(), false),
        Field::new("dropped_attributes_count", DataType::UInt32, false),
    ])
}

/// The fields of one link.
pub fn link_fields() -> Fields {
    Fields::from(vec![
        Field::new("trace_id", DataType::FixedSizeBinary(16), true),
        Field::new("span_id", DataType::UInt64, true),
        Field::new("trace_id_raw", DataType::Binary, true),
        Field::new("span_id_raw", DataType::Binary, true),
        Field::new("trace_state", DataType::Utf8, false),
        Field::new("flags", DataType::UInt32, false),
        Field::new("attributes", attribute_map_type(), false),
        Field::new("dropped_attributes_count", DataType::UInt32, false),
    ])
}

/// The attribute of a link that names its OpenTracing reference type (`child_of`,
/// `follows_from`), as Jaeger and the OpenTracing bridges set it.
pub const REFERENCE_TYPE_KEY: &str = "opentracing.ref_type";

/// The fields of one linked span (`linked_spans`): a link's normalised ids and the text of its
/// [`REFERENCE_TYPE_KEY`] attribute. The few leaves the checks read of a link, kept apart from
/// `links`, whose fourteen leaves cost as much to decode as every other column the checks read.
pub fn linked_span_fields() -> Fields {
    Fields::from(vec![
        Field::new("trace_id", DataType::FixedSizeBinary(16), true),
        Field::new("span_id", DataType::UInt64, true),
        Field::new("ref_type", DataType::Utf8, true),
    ])
}

/// The type of `linked_spans`.
pub fn linked_spans_type() -> DataType {
    list_of(linked_span_fields())
}

fn list_of(fields: Fields) -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Struct(fields), false)))
}

static SPAN_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use column::*;
    let utf8 = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let naming = |name: &str, nullable: bool| Field::new(name, naming_type(), nullable);
    let u32_field = |name: &str| Field::new(name, DataType::UInt32, false);
    let mut fields = vec![
        Field::new(TRACE_ID, DataType::FixedSizeBinary(16), true),
        Field::new(TRACE_ID_LOW, DataType::UInt64, true),
        Field::new(SPAN_ID, DataType::UInt64, true),
        Field::new(PARENT_SPAN_ID, DataType::UInt64, true),
        Field::new(TRACE_ID_RAW, DataType::Binary, true),
        Field::new(SPAN_ID_RAW, DataType::Binary, true),
        Field::new(PARENT_SPAN_ID_RAW, DataType::Binary, true),
        utf8(TRACE_STATE, false),
        u32_field(FLAGS),
        Field::new(PARENT_IS_REMOTE, DataType::Boolean, true),
        naming(NAME, false),
        naming(KIND, false),
        Field::new(START_TIME, timestamp_type(), false),
        Field::new(END_TIME, timestamp_type(), false),
        Field::new(DURATION_NANO, DataType::Int64, false),
        naming(STATUS_CODE, false),
        utf8(STATUS_MESSAGE, false),
        naming(SERVICE_NAME, true),
        naming(SERVICE_INSTANCE_ID, true),
        naming(HOST_NAME, true),
        naming(HOST_ID, true),
        naming(HOST_IP, true),
        naming(PEER_SERVICE, true),
        naming(SERVER_ADDRESS, true),
        naming(HTTP_ROUTE, true),
        naming(DB_SYSTEM, true),
        naming(RPC_SYSTEM, true),
        naming(MESSAGING_SYSTEM, true),
    ];
    fields.extend(HEADER_COLUMNS.iter().map(|(_, name)| utf8(name, true)));
    fields.extend([
        utf8(GTS_GLOBAL_TX_ID, true),
        utf8(GTS_BRANCH_TX_ID, true),
        utf8(GTS_PARENT_BRANCH_TX_ID, true),
        Field::new(ATTRIBUTES, attribute_map_type(), false),
        Field::new(RESOURCE_ATTRIBUTES, attribute_map_type(), false),
        Field::new(SCOPE_ATTRIBUTES, attribute_map_type(), false),
        Field::new(EVENTS, list_of(event_fields()), false),
        Field::new(LINKS, list_of(link_fields()), false),
        // Nullable: a file written before version 5 has none (derived from `links` on reading).
        Field::new(LINKED_SPANS, linked_spans_type(), true),
        utf8(SCOPE_NAME, false),
        utf8(SCOPE_VERSION, false),
        utf8(RESOURCE_SCHEMA_URL, false),
        utf8(SCOPE_SCHEMA_URL, false),
        u32_field(DROPPED_ATTRIBUTES_COUNT),
        u32_field(DROPPED_EVENTS_COUNT),
        u32_field(DROPPED_LINKS_COUNT),
        u32_field(RESOURCE_DROPPED_ATTRIBUTES_COUNT),
        u32_field(SCOPE_DROPPED_ATTRIBUTES_COUNT),
        Field::new(RECEIVE_TIME, timestamp_type(), false),
        utf8(SOURCE, false),
    ]);
    Arc::new(Schema::new(fields))
});

/// The Arrow schema of the span table.
pub fn span_schema() -> SchemaRef {
    SPAN_SCHEMA.clone()
}

/// Where a span came from: written into the `source` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP (protobuf or JSON).
    Http,
    /// `tracegap import` of a dump file.
    Import,
}

impl Source {
    /// The value stored in the `source` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Grpc => "grpc",
            Source::Http => "http",
            Source::Import => "import",
        }
    }

    /// The one-byte code used in the write-ahead log.
    pub fn code(self) -> u8 {
        match self {
            Source::Grpc => 1,
            Source::Http => 2,
            Source::Import => 3,
        }
    }

    /// The source of a write-ahead log code.
    pub fn from_code(code: u8) -> Option<Source> {
        match code {
            1 => Some(Source::Grpc),
            2 => Some(Source::Http),
            3 => Some(Source::Import),
            _ => None,
        }
    }
}

/// The name stored in the `kind` column for an OTLP span kind value.
pub fn kind_name(kind: i32) -> std::borrow::Cow<'static, str> {
    match kind {
        0 => "UNSPECIFIED".into(),
        1 => "INTERNAL".into(),
        2 => "SERVER".into(),
        3 => "CLIENT".into(),
        4 => "PRODUCER".into(),
        5 => "CONSUMER".into(),
        other => format!("UNKNOWN_{other}").into(),
    }
}

/// The name stored in the `status_code` column for an OTLP status code value.
pub fn status_code_name(code: i32) -> std::borrow::Cow<'static, str> {
    match code {
        0 => "UNSET".into(),
        1 => "OK".into(),
        2 => "ERROR".into(),
        other => format!("UNKNOWN_{other}").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_are_unique() {
        let schema = span_schema();
        let mut names: Vec<_> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count);
    }

    #[test]
    fn naming_columns_are_dictionaries_and_no_other_is() {
        let schema = span_schema();
        for field in schema.fields() {
            let named = NAMING_COLUMNS.contains(&field.name().as_str());
            assert_eq!(field.data_type() == &naming_type(), named, "{}", field.name());
        }
    }

    #[test]
    fn source_codes_round_trip() {
        for source in [Source::Grpc, Source::Http, Source::Import] {
            assert_eq!(Source::from_code(source.code()), Some(source));
        }
        assert_eq!(Source::from_code(0), None);
    }
}
