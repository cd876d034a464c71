//! From a request body to a span batch and the bytes to log: the one path every source takes.

use bytes::Bytes;
use prost::Message;

use crate::message_depth::{ProtobufDecodeError, decode_bounded};
use crate::otlp_json::decode_json_request;
use crate::otlp_messages::ExportRequest;
use crate::span_batch::{BatchContext, SpanBatch, build_span_batch};

/// The encoding of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    /// OTLP protobuf (`application/x-protobuf`, and gRPC).
    Protobuf,
    /// OTLP JSON (`application/json`).
    Json,
}

/// Why a request could not be decoded at all.
#[derive(Debug, thiserror::Error)]
pub enum RequestDecodeError {
    /// The protobuf is malformed or nests too deeply.
    #[error("invalid OTLP protobuf ExportTraceServiceRequest: {0}")]
    Protobuf(#[from] ProtobufDecodeError),
    /// The JSON is malformed.
    #[error(transparent)]
    Json(#[from] crate::otlp_json::JsonDecodeError),
    /// Building the Arrow columns failed (a bug, not bad input).
    #[error("building span columns: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// A decoded request.
#[derive(Debug)]
pub struct DecodedRequest {
    /// The accepted spans and the rejected ones.
    pub spans: SpanBatch,
    /// The request as OTLP protobuf, for the write-ahead log.
    pub log_bytes: Bytes,
}

/// Decodes a request body (already decompressed) and builds its span batch. CPU-bound: callers
/// on an async runtime run it on the blocking pool.
pub fn decode_request(
    body: Bytes,
    encoding: BodyEncoding,
    context: &BatchContext,
) -> Result<DecodedRequest, RequestDecodeError> {
    match encoding {
        BodyEncoding::Protobuf => {
            let request: ExportRequest = decode_bounded(body.clone())?;
            let spans = build_span_batch(&request, context)?;
            Ok(DecodedRequest { spans, log_bytes: body })
        }
        BodyEncoding::Json => {
            let decoded = decode_json_request(&body)?;
            let mut spans = build_span_batch(&decoded.request, context)?;
            spans.rejected += decoded.rejected;
            let mut rejections = decoded.rejections;
            rejections.append(&mut spans.rejections);
            rejections.truncate(5);
            spans.rejections = rejections;
            Ok(DecodedRequest { spans, log_bytes: Bytes::from(decoded.request.encode_to_vec()) })
        }
    }
}

/// Rebuilds the span batch of a logged request (recovery after a crash).
pub fn decode_logged_request(log_bytes: Bytes, context: &BatchContext) -> Result<SpanBatch, RequestDecodeError> {
    let request: ExportRequest = decode_bounded(log_bytes)?;
    Ok(build_span_batch(&request, context)?)
}
