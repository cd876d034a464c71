//! OTLP/HTTP receiver: `POST /v1/traces` with `application/x-protobuf` or `application/json`.
//!
//! Responses follow the OTLP/HTTP specification: 200 with an `ExportTraceServiceResponse` (in
//! the request's encoding, with `partial_success` when spans were rejected); 400 with a
//! `google.rpc.Status` body for undecodable requests; 413 for oversized ones; 415 for an
//! unsupported media type; 503 with `Retry-After` under back-pressure.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use prost::Message;

use crate::receiver::{ReceiveError, ReceiveOutcome, Receiver};
use crate::request_decoding::BodyEncoding;
use crate::span_schema::Source;

/// Seconds a client is told to wait before retrying under back-pressure.
const RETRY_AFTER_SECONDS: &str = "1";

/// `google.rpc.Status`, the body of OTLP/HTTP error responses.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// The gRPC code.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// What went wrong.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// The router of the OTLP/HTTP receiver.
pub fn otlp_http_router(receiver: Arc<Receiver>) -> Router {
    Router::new()
        .route("/v1/traces", post(export_traces))
        .with_state(receiver)
        // Bodies are read under our own limit, to answer with an OTLP error body.
        .layer(axum::extract::DefaultBodyLimit::disable())
}

async fn export_traces(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Body) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let encoding = match media_type.as_str() {
        "application/x-protobuf" | "application/protobuf" => BodyEncoding::Protobuf,
        "application/json" => BodyEncoding::Json,
        _ => {
            let message =
                format!("unsupported Content-Type {content_type:?}: send application/x-protobuf or application/json");
            return error_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, 3, message, BodyEncoding::Protobuf);
        }
    };
    let limit = receiver.limits().max_request_bytes;
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(body) => body,
        Err(error) => {
            let message = format!("request body exceeds the limit of {limit} bytes or could not be read: {error}");
            return error_response(StatusCode::PAYLOAD_TOO_LARGE, 8, message, encoding);
        }
    };
    let content_encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().map(str::to_owned).unwrap_or_else(|_| "<not text>".into()));
    match receiver.receive(body, content_encoding, encoding, Source::Http).await {
        Ok(outcome) => success_response(outcome, encoding),
        Err(error) => {
            let (status, code) = match &error {
                ReceiveError::Invalid(_) => (StatusCode::BAD_REQUEST, 3),
                ReceiveError::UnsupportedEncoding(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, 3),
                ReceiveError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, 8),
                ReceiveError::Overloaded(_) | ReceiveError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, 14),
            };
            error_response(status, code, error.to_string(), encoding)
        }
    }
}

fn success_response(outcome: ReceiveOutcome, encoding: BodyEncoding) -> Response {
    let partial_success = outcome
        .rejection_message
        .map(|error_message| ExportTracePartialSuccess { rejected_spans: outcome.rejected as i64, error_message });
    match encoding {
        BodyEncoding::Protobuf => {
            let body = ExportTraceServiceResponse { partial_success }.encode_to_vec();
            with_content_type(StatusCode::OK, body, "application/x-protobuf")
        }
        BodyEncoding::Json => {
            let body = match partial_success {
                // int64 is a string in OTLP JSON.
                Some(p) => serde_json::json!({
                    "partialSuccess": {"rejectedSpans": p.rejected_spans.to_string(), "errorMessage": p.error_message}
                }),
                None => serde_json::json!({}),
            };
            with_content_type(StatusCode::OK, body.to_string(), "application/json")
        }
    }
}

fn error_response(status: StatusCode, code: i32, message: String, encoding: BodyEncoding) -> Response {
    let mut response = match encoding {
        BodyEncoding::Protobuf => {
            with_content_type(status, RpcStatus { code, message }.encode_to_vec(), "application/x-protobuf")
        }
        BodyEncoding::Json => with_content_type(
            status,
            serde_json::json!({"code": code, "message": message}).to_string(),
            "application/json",
        ),
    };
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
    }
    response
}

fn with_content_type(status: StatusCode, body: impl Into<Bytes>, content_type: &'static str) -> Response {
    let mut response = (status, body.into()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Serves OTLP/HTTP on an already-bound listener until `shutdown` completes.
pub async fn serve_http_on(
    receiver: Arc<Receiver>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, otlp_http_router(receiver)).with_graceful_shutdown(shutdown).await
}

/// Binds `address` and serves OTLP/HTTP until `shutdown` completes.
pub async fn serve_http(
    receiver: Arc<Receiver>,
    address: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    serve_http_on(receiver, listener, shutdown).await
}
