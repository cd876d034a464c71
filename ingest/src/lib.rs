//! tracegap's ingest: OTLP receivers (gRPC and HTTP) and the span store, which writes every
//! acknowledged span durably (write-ahead log) and then as Parquet, partitioned by hour.
//!
//! Data flows one way: receiver → [`request_decoding`] → [`span_batch`] → [`span_store`] →
//! [`parquet_files`]. Dumps of other tools take the same road: [`dump_files`] → [`dump_import`]
//! (with [`jaeger_json`] and [`zipkin_json`] converting to OTLP messages first). Nothing here knows about the checks; the Parquet schema in
//! [`span_schema`] is the contract with the analysis.

pub mod attribute_columns;
pub mod content_encoding;
pub mod dump_files;
pub mod dump_import;
pub mod foreign_spans;
pub mod jaeger_json;
pub mod json_elements;
pub mod message_depth;
pub mod otlp_grpc;
pub mod otlp_http;
pub mod otlp_json;
pub mod otlp_messages;
pub mod parquet_files;
pub mod promoted_attributes;
pub mod protobuf_elements;
pub mod receiver;
pub mod request_decoding;
pub mod row_gather;
pub mod span_batch;
pub mod span_ids;
pub mod span_schema;
pub mod span_store;
pub mod write_ahead_log;
pub mod zipkin_json;

pub use promoted_attributes::GtsKeys;
pub use receiver::{Receiver, RequestLimits};
pub use span_schema::{Source, span_schema};
pub use span_store::{SpanStore, StoreConfig};
