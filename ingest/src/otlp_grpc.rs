//! OTLP/gRPC receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.
//!
//! The service is written against tonic's server primitives rather than the generated
//! `TraceServiceServer`, so that the request arrives as raw bytes: decoding then runs off the
//! async workers, on the same path as OTLP/HTTP. gzip-compressed messages are accepted; tonic
//! enforces the decompressed size limit while inflating.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use prost::Message;
use tonic::body::Body;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

use crate::receiver::{ReceiveError, Receiver};
use crate::request_decoding::BodyEncoding;
use crate::span_schema::Source;

/// The gRPC path of the trace export method.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The OTLP trace service, as a tower service for tonic's router.
#[derive(Clone)]
pub struct TraceServiceHandler {
    receiver: Arc<Receiver>,
}

impl TraceServiceHandler {
    /// A handler feeding `receiver`.
    pub fn new(receiver: Arc<Receiver>) -> Self {
        TraceServiceHandler { receiver }
    }
}

impl NamedService for TraceServiceHandler {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl<B> tower_service::Service<http::Request<B>> for TraceServiceHandler
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let receiver = self.receiver.clone();
        if request.uri().path() != EXPORT_PATH {
            return Box::pin(async move {
                Ok(Status::unimplemented("only TraceService/Export is served here").into_http())
            });
        }
        Box::pin(async move {
            let limit = receiver.limits().max_decompressed_bytes;
            let mut grpc = Grpc::new(RawRequestCodec)
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(limit);
            Ok(grpc.unary(ExportMethod { receiver }, request).await)
        })
    }
}

struct ExportMethod {
    receiver: Arc<Receiver>,
}

impl UnaryService<Bytes> for ExportMethod {
    type Response = ExportTraceServiceResponse;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response<Self::Response>, Status>> + Send>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let receiver = self.receiver.clone();
        Box::pin(async move {
            let body = request.into_inner();
            if body.len() > receiver.limits().max_request_bytes {
                return Err(Status::resource_exhausted(format!(
                    "message of {} bytes exceeds the limit of {} bytes",
                    body.len(),
                    receiver.limits().max_request_bytes
                )));
            }
            match receiver.receive(body, None, BodyEncoding::Protobuf, Source::Grpc).await {
                Ok(outcome) => Ok(Response::new(ExportTraceServiceResponse {
                    partial_success: outcome.rejection_message.map(|error_message| ExportTracePartialSuccess {
                        rejected_spans: outcome.rejected as i64,
                        error_message,
                    }),
                })),
                Err(error) => Err(status_of(error)),
            }
        })
    }
}

/// The gRPC status of a refused request, as the OTLP specification assigns them: retryable
/// `UNAVAILABLE` for back-pressure and storage failures, `INVALID_ARGUMENT` for bad data.
fn status_of(error: ReceiveError) -> Status {
    match error {
        ReceiveError::Invalid(message) | ReceiveError::UnsupportedEncoding(message) => {
            Status::invalid_argument(message)
        }
        ReceiveError::TooLarge(message) => Status::resource_exhausted(message),
        ReceiveError::Overloaded(message) | ReceiveError::Unavailable(message) => Status::unavailable(message),
    }
}

/// A codec whose requests are the raw message bytes and whose responses are protobuf.
#[derive(Clone, Copy)]
struct RawRequestCodec;

impl Codec for RawRequestCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = Bytes;
    type Encoder = ResponseEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> ResponseEncoder {
        ResponseEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

struct ResponseEncoder;

impl Encoder for ResponseEncoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, buffer: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buffer).map_err(|error| Status::internal(format!("encoding the response: {error}")))
    }
}

struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, buffer: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let length = buffer.remaining();
        Ok(Some(buffer.copy_to_bytes(length)))
    }
}

/// Serves OTLP/gRPC on `address` until `shutdown` completes.
pub async fn serve_grpc(
    receiver: Arc<Receiver>,
    address: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(TraceServiceHandler::new(receiver))
        .serve_with_shutdown(address, shutdown)
        .await
}

/// Serves OTLP/gRPC on an already-bound listener until `shutdown` completes.
pub async fn serve_grpc_on(
    receiver: Arc<Receiver>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(TraceServiceHandler::new(receiver))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
