//! A bound on how deeply an OTLP protobuf request nests its messages, enforced while decoding.
//!
//! Attribute values nest without limit in the protocol (an array of arrays of key-value lists…).
//! prost stops at 100 levels by default, but the cluster build turns that limit off (Ballista's
//! plans for the checks are deeper), so untrusted requests are bounded here, the same way
//! whichever way prost was built. Only array and key-value list values can nest without bound:
//! their decoders (written by hand in `otlp_messages`) count the levels they enter on a
//! thread-local counter, as decoding runs on one thread from start to end. (A first version
//! walked the whole request before decoding it: 4.5% of the server's CPU samples under
//! `tracegap bench ingest`, for a check that only the nested values need.)

use std::cell::Cell;

use bytes::Bytes;
use prost::{DecodeError, Message};

/// Deepest nesting accepted, in messages from the request down (prost's default limit).
pub const MAX_DEPTH: usize = 100;

/// The most messages above an outermost attribute value: request, resource spans, scope spans,
/// span, event or link, key-value, and the value itself.
const OUTER_MESSAGES: usize = 7;

thread_local! {
    /// Messages entered through nested values by the decoding running on this thread.
    static NESTED_MESSAGES: Cell<usize> = const { Cell::new(0) };
    /// Whether that decoding went past the bound.
    static WENT_TOO_DEEP: Cell<bool> = const { Cell::new(false) };
}

/// Why a protobuf request did not decode.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufDecodeError {
    /// Nested deeper than [`MAX_DEPTH`]: refused before the stack could run out.
    #[error("messages nested more than {MAX_DEPTH} levels deep (attribute values inside values)")]
    TooDeep,
    /// Malformed wire data.
    #[error(transparent)]
    Malformed(#[from] DecodeError),
}

/// Decodes an `ExportTraceServiceRequest` (or `TracesData`: same fields), refusing nesting past
/// [`MAX_DEPTH`].
pub fn decode_bounded<M: Message + Default>(bytes: Bytes) -> Result<M, ProtobufDecodeError> {
    NESTED_MESSAGES.set(0);
    WENT_TOO_DEEP.set(false);
    let decoded = M::decode(bytes);
    if WENT_TOO_DEEP.replace(false) {
        return Err(ProtobufDecodeError::TooDeep);
    }
    Ok(decoded?)
}

/// Runs `decode` one nested value deeper, `messages` more messages down; past the bound, fails
/// instead (and [`decode_bounded`] then reports [`ProtobufDecodeError::TooDeep`]).
pub(crate) fn nested<T>(messages: usize, decode: impl FnOnce() -> Result<T, DecodeError>) -> Result<T, DecodeError> {
    let depth = NESTED_MESSAGES.get() + messages;
    if depth + OUTER_MESSAGES > MAX_DEPTH {
        WENT_TOO_DEEP.set(true);
        // Any error stops the decoding; the flag tells `decode_bounded` which one it was.
        #[allow(deprecated)]
        return Err(DecodeError::new("nested too deeply"));
    }
    NESTED_MESSAGES.set(depth);
    let result = decode();
    NESTED_MESSAGES.set(depth - messages);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp_messages::ExportRequest;

    /// A length-delimited field.
    fn field(number: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        prost::encoding::encode_varint(number << 3 | 2, &mut out);
        prost::encoding::encode_varint(payload.len() as u64, &mut out);
        out.extend_from_slice(payload);
        out
    }

    /// A request whose span has an attribute value nested `levels` arrays deep.
    fn nested(levels: usize) -> Vec<u8> {
        let mut value = field(1, b"bottom");
        for _ in 0..levels {
            value = field(5, &field(1, &value));
        }
        let attribute = [field(1, b"nested"), field(2, &value)].concat();
        let span = [field(1, &[1; 16]), field(2, &[2; 8]), field(5, b"deep"), field(9, &attribute)].concat();
        field(1, &field(2, &field(2, &span)))
    }

    fn decode(bytes: Vec<u8>) -> Result<ExportRequest, ProtobufDecodeError> {
        decode_bounded(Bytes::from(bytes))
    }

    #[test]
    fn ordinary_nesting_passes_and_decodes() {
        let request = decode(nested(40)).unwrap();
        assert_eq!(request.span_count(), 1);
        // 46 arrays: 7 + 2 × 46 = 99 messages, the deepest accepted.
        assert!(decode(nested(46)).is_ok());
    }

    #[test]
    fn deep_nesting_is_refused_while_decoding() {
        let error = decode(nested(47)).unwrap_err();
        assert!(matches!(error, ProtobufDecodeError::TooDeep), "{error}");
        assert!(error.to_string().contains("nested more than 100 levels"), "{error}");
        // Far past any stack: refused, not a crash.
        assert!(matches!(decode(nested(100_000)), Err(ProtobufDecodeError::TooDeep)));
        // The next request on the thread starts from zero.
        assert!(decode(nested(40)).is_ok());
    }

    #[test]
    fn key_value_lists_count_their_entries_as_a_level() {
        // A list value: AnyValue { kvlist_value (6): KeyValueList { values (1): KeyValue { key, value (2) } } }.
        let list = |levels: usize| {
            let mut value = field(1, b"bottom");
            for _ in 0..levels {
                value = field(6, &field(1, &[field(1, b"k"), field(2, &value)].concat()));
            }
            let attribute = [field(1, b"nested"), field(2, &value)].concat();
            let span = [field(1, &[1; 16]), field(2, &[2; 8]), field(5, b"deep"), field(9, &attribute)].concat();
            field(1, &field(2, &field(2, &span)))
        };
        assert!(decode(list(31)).is_ok());
        assert!(matches!(decode(list(32)), Err(ProtobufDecodeError::TooDeep)));
    }

    #[test]
    fn malformed_wire_data_is_named_by_the_decoder() {
        for bytes in [&[0x0a, 0xff][..], &[0x0a, 0x05, 0x01], &[0xff; 12], &[0x0b]] {
            assert!(matches!(decode(bytes.to_vec()), Err(ProtobufDecodeError::Malformed(_))));
        }
    }
}
