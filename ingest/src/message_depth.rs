//! A bound on how deeply an OTLP protobuf request nests its messages, checked before decoding.
//!
//! Attribute values nest without limit in the protocol (an array of arrays of key-value lists…).
//! prost stops at 100 levels by default, but the cluster build turns that limit off (Ballista's
//! plans for the checks are deeper), so untrusted requests are bounded here, the same way
//! whichever way prost was built. Only the fields that lead to attributes are followed: one pass
//! over the request's structure, strings and ids skipped by their length.

/// Deepest nesting accepted, in messages from the request down (prost's default limit).
pub const MAX_DEPTH: usize = 100;

/// A request nesting deeper than [`MAX_DEPTH`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("messages nested more than {limit} levels deep (attribute values inside values), at byte {offset}")]
pub struct TooDeep {
    /// The limit.
    pub limit: usize,
    /// Where the message that went past it starts.
    pub offset: usize,
}

/// The messages on the way to attribute values.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Request,
    ResourceSpans,
    Resource,
    ScopeSpans,
    Scope,
    Span,
    Event,
    Link,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
}

/// The message kind of a length-delimited field, when it leads to attributes.
fn child(kind: Kind, field: u64) -> Option<Kind> {
    use Kind::*;
    Some(match (kind, field) {
        (Request, 1) => ResourceSpans,
        (ResourceSpans, 1) => Resource,
        (ResourceSpans, 2) => ScopeSpans,
        (Resource, 1) => KeyValue,
        (ScopeSpans, 1) => Scope,
        (ScopeSpans, 2) => Span,
        (Scope, 3) => KeyValue,
        (Span, 9) => KeyValue,
        (Span, 11) => Event,
        (Span, 13) => Link,
        (Event, 3) => KeyValue,
        (Link, 5) => KeyValue,
        (KeyValue, 2) => AnyValue,
        (AnyValue, 5) => ArrayValue,
        (AnyValue, 6) => KeyValueList,
        (ArrayValue, 1) => AnyValue,
        (KeyValueList, 1) => KeyValue,
        _ => return None,
    })
}

/// Checks an `ExportTraceServiceRequest` (or `TracesData`: same fields) for nesting past
/// [`MAX_DEPTH`]. Malformed wire data passes: the decoder names that problem precisely.
pub fn check_depth(request: &[u8]) -> Result<(), TooDeep> {
    walk(request, 0, Kind::Request, 1)
}

fn walk(bytes: &[u8], base: usize, kind: Kind, depth: usize) -> Result<(), TooDeep> {
    if depth > MAX_DEPTH {
        return Err(TooDeep { limit: MAX_DEPTH, offset: base });
    }
    let mut at = 0;
    while at < bytes.len() {
        let Some((key, used)) = varint(&bytes[at..]) else { return Ok(()) };
        at += used;
        match key & 7 {
            0 => match varint(&bytes[at..]) {
                Some((_, used)) => at += used,
                None => return Ok(()),
            },
            1 => at += 8,
            5 => at += 4,
            2 => {
                let Some((length, used)) = varint(&bytes[at..]) else { return Ok(()) };
                at += used;
                let Some(end) = usize::try_from(length).ok().and_then(|l| at.checked_add(l)) else { return Ok(()) };
                if end > bytes.len() {
                    return Ok(());
                }
                if let Some(kind) = child(kind, key >> 3) {
                    walk(&bytes[at..end], base + at, kind, depth + 1)?;
                }
                at = end;
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}

fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (index, byte) in bytes.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use prost::Message;

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

    #[test]
    fn ordinary_nesting_passes_and_decodes() {
        let request = nested(40);
        assert_eq!(check_depth(&request), Ok(()));
        assert!(ExportRequest::decode(request.as_slice()).is_ok());
    }

    #[test]
    fn deep_nesting_is_refused_before_decoding() {
        let error = check_depth(&nested(60)).unwrap_err();
        assert_eq!(error.limit, MAX_DEPTH);
        assert!(error.to_string().contains("nested more than 100 levels"), "{error}");
        // Far past any stack: refused just as cheaply.
        assert!(check_depth(&nested(100_000)).is_err());
    }

    #[test]
    fn malformed_wire_data_is_left_to_the_decoder() {
        for bytes in [&[0x0a, 0xff][..], &[0x0a, 0x05, 0x01], &[0xff; 12], &[0x0b]] {
            assert_eq!(check_depth(bytes), Ok(()));
        }
    }
}
