//! Normalised forms of trace and span ids, for joins.
//!
//! W3C and OpenTelemetry left-pad short ids with zeros, so a 64-bit B3 trace id `a1b2…` (8
//! bytes) and its 128-bit form `0000000000000000a1b2…` normalise to the same 16 bytes. Ids longer
//! than the OTLP size have no normalised form (null); the raw column keeps them as evidence.
//!
//! The raw columns hold an id only when it is not the normalised id's own bytes: a 16-byte trace
//! id or an 8-byte span id is stored once, in its normalised column. Storing every id twice made
//! over a quarter of the span files' bytes and a fifth of the analysis's copy of the spans.

/// The 16-byte form of a trace id: left-padded with zeros; `None` when empty or over 16 bytes.
pub fn normalized_trace_id(raw: &[u8]) -> Option<[u8; 16]> {
    if raw.is_empty() || raw.len() > 16 {
        return None;
    }
    let mut id = [0u8; 16];
    id[16 - raw.len()..].copy_from_slice(raw);
    Some(id)
}

/// The low 64 bits of a normalised trace id: what Zipkin and jaeger-analytics group by.
pub fn trace_id_low(id: &[u8; 16]) -> u64 {
    u64::from_be_bytes(id[8..].try_into().unwrap_or_default())
}

/// A span id as an unsigned 64-bit integer (big-endian, left-padded); `None` when empty or over
/// 8 bytes.
pub fn normalized_span_id(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() || raw.len() > 8 {
        return None;
    }
    let mut id = [0u8; 8];
    id[8 - raw.len()..].copy_from_slice(raw);
    Some(u64::from_be_bytes(id))
}

/// A trace id as received, for the raw column: `None` when it is 16 bytes, the normalised id's
/// own bytes.
pub fn raw_trace_id(raw: &[u8]) -> Option<&[u8]> {
    (raw.len() != 16).then_some(raw)
}

/// A span or parent span id as received, for the raw column: `None` when it is 8 bytes (the
/// normalised id's own bytes) or, with `empty_is_normal`, empty (a root's absent parent).
pub fn raw_span_id(raw: &[u8], empty_is_normal: bool) -> Option<&[u8]> {
    (raw.len() != 8 && !(empty_is_normal && raw.is_empty())).then_some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_trace_ids_are_left_padded() {
        let short = [0xa1, 0xb2, 0, 0, 0, 0, 0, 0x01];
        let id = normalized_trace_id(&short).unwrap();
        assert_eq!(&id[..8], &[0; 8]);
        assert_eq!(&id[8..], &short);
        assert_eq!(trace_id_low(&id), 0xa1b2_0000_0000_0001);
    }

    #[test]
    fn empty_and_oversized_ids_have_no_normal_form() {
        assert_eq!(normalized_trace_id(&[]), None);
        assert_eq!(normalized_trace_id(&[1; 17]), None);
        assert_eq!(normalized_span_id(&[]), None);
        assert_eq!(normalized_span_id(&[1; 9]), None);
    }

    #[test]
    fn raw_ids_are_kept_only_when_not_the_normalised_bytes() {
        assert_eq!(raw_trace_id(&[7; 16]), None);
        assert_eq!(raw_trace_id(&[0; 16]), None, "an all-zero id is the normalised id's bytes too");
        assert_eq!(raw_trace_id(&[7; 8]), Some(&[7u8; 8][..]), "a 64-bit B3 trace id");
        assert_eq!(raw_trace_id(&[]), Some(&[][..]));
        assert_eq!(raw_trace_id(&[7; 20]), Some(&[7u8; 20][..]));
        assert_eq!(raw_span_id(&[7; 8], false), None);
        assert_eq!(raw_span_id(&[7; 3], false), Some(&[7u8; 3][..]));
        assert_eq!(raw_span_id(&[], false), Some(&[][..]), "a span without an id");
        assert_eq!(raw_span_id(&[], true), None, "a root's absent parent");
        assert_eq!(raw_span_id(&[7; 9], true), Some(&[7u8; 9][..]));
    }

    #[test]
    fn all_zero_ids_are_kept_as_zero() {
        assert_eq!(normalized_span_id(&[0; 8]), Some(0));
        assert_eq!(normalized_trace_id(&[0; 16]), Some([0; 16]));
        assert_eq!(normalized_span_id(&[0x01, 0x02]), Some(0x0102));
    }
}
