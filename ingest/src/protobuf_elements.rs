//! Splits one big OTLP protobuf `TracesData` (or `ExportTraceServiceRequest`) into groups of its
//! `resource_spans`, so a dump written as a single message is read in bounded memory and decoded
//! on all cores.
//!
//! Both messages are field 1 (`repeated ResourceSpans`) and nothing else, and concatenated
//! protobuf fields form a valid message: each group of raw `resource_spans` fields is itself a
//! `TracesData`, decoded by the usual decoder. Other fields are skipped by wire type.

use std::io::{self, Read};

use crate::dump_files::{ElementGroup, ElementPlace, MAX_RECORD_BYTES};
use crate::json_elements::GROUP_BYTES;

/// Why the message cannot be split further; groups returned before stay valid.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufSplitError {
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The message is cut or its framing is impossible at this byte.
    #[error("byte {offset}: {message}")]
    Malformed {
        /// Byte offset of the field.
        offset: u64,
        /// What is wrong.
        message: String,
    },
}

/// The splitter over a reader.
pub struct ProtobufElements<R> {
    input: R,
    offset: u64,
    next_index: u64,
    group_bytes: usize,
    pending_error: Option<ProtobufSplitError>,
    finished: bool,
}

impl<R: Read> ProtobufElements<R> {
    /// A splitter of `input`.
    pub fn new(input: R) -> Self {
        Self::with_group_bytes(input, GROUP_BYTES)
    }

    /// As [`ProtobufElements::new`], with the size at which groups are cut.
    pub fn with_group_bytes(input: R, group_bytes: usize) -> Self {
        ProtobufElements { input, offset: 0, next_index: 0, group_bytes, pending_error: None, finished: false }
    }

    /// The next group of `resource_spans`; `None` at the end.
    pub fn next_group(&mut self) -> Result<Option<ElementGroup>, ProtobufSplitError> {
        if let Some(error) = self.pending_error.take() {
            return Err(error);
        }
        if self.finished {
            return Ok(None);
        }
        let mut group = ElementGroup {
            payload: Vec::new(),
            prefix_len: 0,
            suffix: b"",
            array: "resource_spans".into(),
            first_index: self.next_index,
            elements: Vec::new(),
        };
        while group.payload.len() < self.group_bytes {
            match self.read_field(&mut group) {
                Ok(true) => {}
                Ok(false) => {
                    self.finished = true;
                    break;
                }
                Err(error) => {
                    self.finished = true;
                    if group.elements.is_empty() {
                        return Err(error);
                    }
                    self.pending_error = Some(error);
                    break;
                }
            }
        }
        Ok((!group.elements.is_empty()).then_some(group))
    }

    /// Reads one field: a `resource_spans` goes into the group, others are skipped. False at the end.
    fn read_field(&mut self, group: &mut ElementGroup) -> Result<bool, ProtobufSplitError> {
        let start = self.offset;
        let mut header = Vec::with_capacity(10);
        let Some(tag) = self.read_varint(&mut header, true)? else { return Ok(false) };
        let malformed = |message: String| ProtobufSplitError::Malformed { offset: start, message };
        let (field, wire_type) = (tag >> 3, tag & 7);
        let skip = match wire_type {
            0 => {
                self.read_varint(&mut header, false)?;
                0
            }
            1 => 8,
            5 => 4,
            2 => {
                let length = self.read_varint(&mut header, false)?.unwrap_or(0);
                if length > MAX_RECORD_BYTES as u64 {
                    return Err(malformed(format!(
                        "field {field} claims {length} bytes, more than {MAX_RECORD_BYTES}: not a TracesData, or corrupt"
                    )));
                }
                if field == 1 {
                    let element_start = group.payload.len();
                    group.payload.extend_from_slice(&header);
                    let body_start = group.payload.len();
                    group.payload.resize(body_start + length as usize, 0);
                    if let Err(error) = self.input.read_exact(&mut group.payload[body_start..]) {
                        group.payload.truncate(element_start);
                        return Err(self.cut(error, start, length));
                    }
                    self.offset += length;
                    group.elements.push(ElementPlace {
                        range: element_start..group.payload.len(),
                        line: 0,
                        offset: start,
                    });
                    self.next_index += 1;
                    return Ok(true);
                }
                length
            }
            other => {
                return Err(malformed(format!("field {field} has wire type {other}: not a TracesData, or corrupt")));
            }
        };
        let skipped = io::copy(&mut (&mut self.input).take(skip), &mut io::sink())?;
        self.offset += skipped;
        if skipped < skip {
            return Err(malformed(format!("field {field} is cut short: the file ends inside it")));
        }
        Ok(true)
    }

    fn cut(&self, error: io::Error, start: u64, length: u64) -> ProtobufSplitError {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            ProtobufSplitError::Malformed {
                offset: start,
                message: format!("resource_spans[{}] is cut short: expected {length} bytes", self.next_index),
            }
        } else {
            error.into()
        }
    }

    /// A varint, its bytes appended to `raw`; `None` at a clean end (only where `end_allowed`).
    fn read_varint(&mut self, raw: &mut Vec<u8>, end_allowed: bool) -> Result<Option<u64>, ProtobufSplitError> {
        let start = self.offset;
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let mut byte = [0u8];
            match self.input.read_exact(&mut byte) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                    if end_allowed && shift == 0 {
                        return Ok(None);
                    }
                    return Err(ProtobufSplitError::Malformed {
                        offset: start,
                        message: "the file ends inside a field header".into(),
                    });
                }
                Err(error) => return Err(error.into()),
            }
            self.offset += 1;
            raw.push(byte[0]);
            value |= u64::from(byte[0] & 0x7f) << shift.min(63);
            if byte[0] & 0x80 == 0 {
                return Ok(Some(value));
            }
        }
        Err(ProtobufSplitError::Malformed { offset: start, message: "a varint longer than 10 bytes".into() })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::otlp_messages::{ExportRequest, ResourceSpans, ScopeSpans, Span};

    fn request(spans: usize) -> ExportRequest {
        ExportRequest {
            resource_spans: (0..spans)
                .map(|i| ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans: vec![Span { name: format!("span {i}").into(), ..Default::default() }],
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn groups_decode_to_the_original_resource_spans() {
        let original = request(50);
        let encoded = original.encode_to_vec();
        let mut splitter = ProtobufElements::with_group_bytes(encoded.as_slice(), 100);
        let mut names = Vec::new();
        let mut groups = 0;
        while let Some(group) = splitter.next_group().unwrap() {
            groups += 1;
            assert_eq!(group.first_index as usize, names.len());
            let decoded = ExportRequest::decode(group.payload.as_slice()).unwrap();
            assert_eq!(decoded.resource_spans.len(), group.elements.len());
            names.extend(decoded.resource_spans.iter().map(|r| r.scope_spans[0].spans[0].name.clone()));
        }
        assert!(groups > 3, "{groups} groups");
        let expected: Vec<_> = original.resource_spans.iter().map(|r| r.scope_spans[0].spans[0].name.clone()).collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn a_cut_message_returns_the_whole_fields_then_the_place() {
        let encoded = request(3).encode_to_vec();
        let cut = &encoded[..encoded.len() - 2];
        let mut splitter = ProtobufElements::new(cut);
        let group = splitter.next_group().unwrap().expect("the two whole fields");
        assert_eq!(group.elements.len(), 2);
        assert_eq!(ExportRequest::decode(group.payload.as_slice()).unwrap().resource_spans.len(), 2);
        let error = splitter.next_group().unwrap_err().to_string();
        let third = group.elements[1].range.end as u64;
        assert_eq!(
            error,
            format!(
                "byte {third}: resource_spans[2] is cut short: expected {} bytes",
                encoded.len() as u64 - third - 2
            )
        );
        assert!(splitter.next_group().unwrap().is_none());
    }
}
