//! What every OTLP receiver does with a request, whatever the transport: reserve queue room,
//! decompress and decode off the async workers, append durably, and report what was kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::content_encoding::{DecompressError, decompress};
use crate::promoted_attributes::GtsKeys;
use crate::request_decoding::{BodyEncoding, RequestDecodeError, decode_request};
use crate::span_batch::BatchContext;
use crate::span_schema::Source;
use crate::span_store::{SpanStore, StoreError};
use crate::write_ahead_log::WalRecord;

/// Size limits of requests.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Largest request body as sent (compressed), in bytes. Default 20 MiB, as the Collector's
    /// OTLP/HTTP receiver.
    pub max_request_bytes: usize,
    /// Largest body after decompression, in bytes. Default 64 MiB.
    pub max_decompressed_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits { max_request_bytes: 20 << 20, max_decompressed_bytes: 64 << 20 }
    }
}

/// Counters of the receivers, for metrics.
#[derive(Debug, Default)]
pub struct ReceiverCounters {
    /// Requests received, by any transport.
    pub requests: AtomicU64,
    /// Request bytes received (as sent).
    pub bytes: AtomicU64,
    /// Spans stored.
    pub spans_accepted: AtomicU64,
    /// Spans rejected (partial success).
    pub spans_rejected: AtomicU64,
    /// Requests refused as undecodable or too large.
    pub requests_invalid: AtomicU64,
    /// Requests refused because the queue was full or the store failed.
    pub requests_refused: AtomicU64,
}

/// What a request became.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiveOutcome {
    /// Spans stored.
    pub accepted: usize,
    /// Spans rejected.
    pub rejected: usize,
    /// Why, when some were rejected.
    pub rejection_message: Option<String>,
}

/// Why a request was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The body could not be decoded: do not retry.
    #[error("{0}")]
    Invalid(String),
    /// The body is larger than allowed: do not retry.
    #[error("{0}")]
    TooLarge(String),
    /// The queue is full: retry later.
    #[error("{0}")]
    Overloaded(String),
    /// The store could not make the spans durable: retry later.
    #[error("{0}")]
    Unavailable(String),
    /// The content encoding is not supported.
    #[error("{0}")]
    UnsupportedEncoding(String),
}

/// The shared receiving pipeline.
pub struct Receiver {
    store: Arc<SpanStore>,
    limits: RequestLimits,
    gts_keys: Arc<GtsKeys>,
    counters: ReceiverCounters,
}

impl Receiver {
    /// A receiver storing into `store`.
    pub fn new(store: Arc<SpanStore>, limits: RequestLimits, gts_keys: Arc<GtsKeys>) -> Receiver {
        Receiver { store, limits, gts_keys, counters: ReceiverCounters::default() }
    }

    /// The size limits.
    pub fn limits(&self) -> RequestLimits {
        self.limits
    }

    /// The counters.
    pub fn counters(&self) -> &ReceiverCounters {
        &self.counters
    }

    /// The store.
    pub fn store(&self) -> &Arc<SpanStore> {
        &self.store
    }

    /// Receives one request body.
    pub async fn receive(
        &self,
        body: Bytes,
        content_encoding: Option<String>,
        encoding: BodyEncoding,
        source: Source,
    ) -> Result<ReceiveOutcome, ReceiveError> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        let result = self.receive_counted(body, content_encoding, encoding, source).await;
        match &result {
            Ok(outcome) => {
                self.counters.spans_accepted.fetch_add(outcome.accepted as u64, Ordering::Relaxed);
                self.counters.spans_rejected.fetch_add(outcome.rejected as u64, Ordering::Relaxed);
            }
            Err(ReceiveError::Overloaded(_) | ReceiveError::Unavailable(_)) => {
                self.counters.requests_refused.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.counters.requests_invalid.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }

    async fn receive_counted(
        &self,
        body: Bytes,
        content_encoding: Option<String>,
        encoding: BodyEncoding,
        source: Source,
    ) -> Result<ReceiveOutcome, ReceiveError> {
        if body.len() > self.limits.max_request_bytes {
            return Err(ReceiveError::TooLarge(format!(
                "request body of {} bytes exceeds the limit of {} bytes",
                body.len(),
                self.limits.max_request_bytes
            )));
        }
        let mut reservation = Some(self.store.reserve(body.len()).map_err(refused)?);
        let receive_time_nano = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0);
        let context = BatchContext { receive_time_nano, source, gts_keys: self.gts_keys.clone() };
        let limit = self.limits.max_decompressed_bytes;
        let compressed = content_encoding.as_deref().is_some_and(|e| !matches!(e.trim(), "" | "identity"));
        let decoded = run_off_runtime(move || {
            let body = decompress(body, content_encoding.as_deref(), limit)?;
            Ok::<_, DecodeFailure>((body.len(), decode_request(body, encoding, &context)?))
        })
        .await?;
        let (decompressed_len, decoded) = decoded;
        if compressed {
            // Hold room for what the body became, not what it was on the wire.
            reservation = Some(self.store.reserve(decompressed_len).map_err(refused)?);
        }
        let spans = decoded.spans;
        let rejection_message = (spans.rejected > 0).then(|| spans.rejection_message());
        if let (Some(batch), Some(reservation)) = (spans.batch, reservation) {
            let record = WalRecord { source, receive_time_nano, request: decoded.log_bytes };
            self.store.append(reservation, record, batch).await.map_err(|error| match error {
                StoreError::QueueFull { .. } => refused(error),
                other => ReceiveError::Unavailable(format!("spans not stored: {other}")),
            })?;
        }
        Ok(ReceiveOutcome { accepted: spans.accepted, rejected: spans.rejected, rejection_message })
    }
}

fn refused(error: StoreError) -> ReceiveError {
    ReceiveError::Overloaded(error.to_string())
}

enum DecodeFailure {
    Decompress(DecompressError),
    Decode(RequestDecodeError),
}

impl From<DecompressError> for DecodeFailure {
    fn from(error: DecompressError) -> Self {
        DecodeFailure::Decompress(error)
    }
}

impl From<RequestDecodeError> for DecodeFailure {
    fn from(error: RequestDecodeError) -> Self {
        DecodeFailure::Decode(error)
    }
}

impl From<DecodeFailure> for ReceiveError {
    fn from(failure: DecodeFailure) -> Self {
        match failure {
            DecodeFailure::Decompress(error @ DecompressError::TooLarge { .. }) => {
                ReceiveError::TooLarge(error.to_string())
            }
            DecodeFailure::Decompress(error @ DecompressError::Unsupported(_)) => {
                ReceiveError::UnsupportedEncoding(error.to_string())
            }
            DecodeFailure::Decompress(error) => ReceiveError::Invalid(error.to_string()),
            DecodeFailure::Decode(error) => ReceiveError::Invalid(error.to_string()),
        }
    }
}

/// Runs CPU-bound work on the rayon pool so the async workers keep serving connections.
async fn run_off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, DecodeFailure> + Send + 'static,
) -> Result<T, ReceiveError> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let _ = sender.send(work());
    });
    match receiver.await {
        Ok(result) => result.map_err(ReceiveError::from),
        Err(_) => Err(ReceiveError::Unavailable("decoding worker stopped".into())),
    }
}
