//! Span batches for the unit tests, built by ingest from OTLP JSON as an import would.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;

/// The spans of an OTLP JSON export request, as ingest stores them.
pub(crate) fn span_batch(otlp_json: String) -> RecordBatch {
    let context = tracegap_ingest::span_batch::BatchContext {
        receive_time_nano: 1,
        source: tracegap_ingest::Source::Import,
        gts_keys: Arc::new(Default::default()),
    };
    let decoded = tracegap_ingest::request_decoding::decode_request(
        bytes::Bytes::from(otlp_json),
        tracegap_ingest::request_decoding::BodyEncoding::Json,
        &context,
    )
    .expect("OTLP JSON");
    decoded.spans.batch.expect("spans")
}
