//! Splits a dump written as one big JSON document into groups of its array elements, so it is
//! read in bounded memory and parsed on all cores, like JSON lines.
//!
//! The documents of the dump formats keep their spans in one array: Zipkin's top-level array,
//! Jaeger's `{"data": [...]}`, OTLP's `{"resourceSpans": [...]}`. The splitter finds that array
//! and cuts it between elements; each group of elements is wrapped back into a small document of
//! the same shape (`{"data": [e1, e2]}`), so the format's own decoder reads it unchanged.
//!
//! It only tracks strings and bracket depth, which is all it takes to find where an element ends;
//! the decoder validates the JSON itself. A document with no such array (one Jaeger trace) is
//! returned whole, up to [`MAX_RECORD_BYTES`].
//!
//! serde_json's `StreamDeserializer` reads a sequence of documents, not the elements of one
//! array, and a `DeserializeSeed` visitor would parse on one thread only: hence this small scanner.

use std::io::{self, Read};

use crate::dump_files::{ElementGroup, ElementPlace, MAX_RECORD_BYTES};

/// A group is cut once it holds this many bytes: small enough to keep memory flat, big enough
/// that a group is decoded and turned into Arrow efficiently.
pub const GROUP_BYTES: usize = 4 << 20;

/// What the splitter returns.
#[derive(Debug)]
pub enum JsonPiece {
    /// Elements of the split array, wrapped as a document.
    Elements(ElementGroup),
    /// A whole top-level document that has no array to split.
    Document {
        /// The document's bytes.
        payload: Vec<u8>,
        /// The line it starts on.
        line: u64,
    },
}

/// Why the document cannot be split further; what was returned before stays valid.
#[derive(Debug, thiserror::Error)]
pub enum JsonSplitError {
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The document's structure is broken at this place.
    #[error("line {line} (byte {offset}): {message}")]
    Malformed {
        /// Line of the problem (1-based).
        line: u64,
        /// Byte offset of the problem.
        offset: u64,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Between top-level documents.
    Top,
    /// Among the members of a top-level object.
    Members,
    /// Among the elements of the split array.
    Elements,
    /// After an error or the end.
    Finished,
}

/// The splitter over a reader.
pub struct JsonElements<R> {
    input: R,
    buffer: Box<[u8]>,
    position: usize,
    filled: usize,
    /// Bytes consumed before `buffer[0]`.
    base_offset: u64,
    line: u64,
    split_keys: &'static [&'static str],
    group_bytes: usize,
    at: Position,
    /// Whether the current top-level document is an object (members resume after the array).
    in_object: bool,
    document_line: u64,
    /// The object's members other than the split array, in case it has none.
    envelope: Vec<u8>,
    split_found: bool,
    member_count: usize,
    array_name: String,
    prefix: Vec<u8>,
    suffix: &'static [u8],
    next_index: u64,
    group: Option<ElementGroup>,
    /// Whether an element was read and a `,` or `]` must come next.
    after_element: bool,
    pending_error: Option<JsonSplitError>,
}

impl<R: Read> JsonElements<R> {
    /// A splitter of `input` that splits the top-level array, or the array under one of
    /// `split_keys` in a top-level object.
    pub fn new(input: R, split_keys: &'static [&'static str]) -> Self {
        Self::with_group_bytes(input, split_keys, GROUP_BYTES)
    }

    /// As [`JsonElements::new`], with the size at which groups are cut.
    pub fn with_group_bytes(input: R, split_keys: &'static [&'static str], group_bytes: usize) -> Self {
        JsonElements {
            input,
            buffer: vec![0u8; 1 << 20].into_boxed_slice(),
            position: 0,
            filled: 0,
            base_offset: 0,
            line: 1,
            split_keys,
            group_bytes: group_bytes.max(1),
            at: Position::Top,
            in_object: false,
            document_line: 1,
            envelope: Vec::new(),
            split_found: false,
            member_count: 0,
            array_name: String::new(),
            prefix: Vec::new(),
            suffix: b"]",
            next_index: 0,
            group: None,
            after_element: false,
            pending_error: None,
        }
    }

    /// The next group of elements or whole document; `None` at the end.
    pub fn next_piece(&mut self) -> Result<Option<JsonPiece>, JsonSplitError> {
        if let Some(error) = self.pending_error.take() {
            self.at = Position::Finished;
            return Err(error);
        }
        match self.step() {
            Ok(piece) => Ok(piece),
            Err(error) => {
                self.at = Position::Finished;
                // What was read before the error is still good: return it first.
                match self.finish_group() {
                    Some(group) => {
                        self.pending_error = Some(error);
                        Ok(Some(JsonPiece::Elements(group)))
                    }
                    None => Err(error),
                }
            }
        }
    }

    fn step(&mut self) -> Result<Option<JsonPiece>, JsonSplitError> {
        loop {
            match self.at {
                Position::Finished => return Ok(None),
                Position::Top => {
                    self.skip_whitespace()?;
                    if self.base_offset == 0 && self.position == 0 && self.starts_with_bom()? {
                        self.position += 3;
                        self.skip_whitespace()?;
                    }
                    self.document_line = self.line;
                    match self.peek()? {
                        None => {
                            self.at = Position::Finished;
                            return Ok(None);
                        }
                        Some(b'[') => {
                            self.position += 1;
                            self.in_object = false;
                            self.start_array(String::new(), b"[".to_vec(), b"]");
                        }
                        Some(b'{') => {
                            self.position += 1;
                            self.in_object = true;
                            self.envelope = b"{".to_vec();
                            self.split_found = false;
                            self.member_count = 0;
                            self.at = Position::Members;
                        }
                        Some(other) => {
                            return Err(self.malformed(format!(
                                "expected a JSON object or array, found {}",
                                describe_byte(other)
                            )));
                        }
                    }
                }
                Position::Members => {
                    self.skip_whitespace()?;
                    match self.peek()? {
                        None => return Err(self.malformed("the document ends inside its top-level object".into())),
                        Some(b'}') => {
                            self.position += 1;
                            self.at = Position::Top;
                            if !self.split_found {
                                let mut payload = std::mem::take(&mut self.envelope);
                                payload.push(b'}');
                                return Ok(Some(JsonPiece::Document { payload, line: self.document_line }));
                            }
                            self.envelope.clear();
                        }
                        Some(b',') if self.member_count > 0 => self.position += 1,
                        Some(b'"') => self.read_member()?,
                        Some(other) => {
                            return Err(self.malformed(format!(
                                "expected a member name or `}}` in the top-level object, found {}",
                                describe_byte(other)
                            )));
                        }
                    }
                }
                Position::Elements => {
                    self.skip_whitespace()?;
                    match self.peek()? {
                        None => {
                            return Err(self.malformed(format!(
                                "the document ends inside {}[{}]",
                                self.array_name, self.next_index
                            )));
                        }
                        Some(b']') => {
                            self.position += 1;
                            self.at = if self.in_object { Position::Members } else { Position::Top };
                            if let Some(group) = self.finish_group() {
                                return Ok(Some(JsonPiece::Elements(group)));
                            }
                        }
                        Some(b',') if self.after_element => {
                            self.position += 1;
                            self.after_element = false;
                        }
                        Some(other) if self.after_element => {
                            return Err(self.malformed(format!(
                                "expected `,` or `]` after {}[{}], found {}",
                                self.array_name,
                                self.next_index - 1,
                                describe_byte(other)
                            )));
                        }
                        Some(_) => {
                            if let Some(group) = self.read_element()? {
                                return Ok(Some(JsonPiece::Elements(group)));
                            }
                        }
                    }
                }
            }
        }
    }

    fn start_array(&mut self, name: String, prefix: Vec<u8>, suffix: &'static [u8]) {
        self.array_name = name;
        self.prefix = prefix;
        self.suffix = suffix;
        self.next_index = 0;
        self.after_element = false;
        self.at = Position::Elements;
    }

    /// Reads one member of the top-level object: the split array is entered, anything else is
    /// kept in the envelope.
    fn read_member(&mut self) -> Result<(), JsonSplitError> {
        let mut key = Vec::new();
        self.copy_value(&mut key, 64 << 10)?;
        self.skip_whitespace()?;
        if self.peek()? != Some(b':') {
            return Err(self.malformed("expected `:` after a member name".into()));
        }
        self.position += 1;
        self.skip_whitespace()?;
        self.member_count += 1;
        let name = std::str::from_utf8(&key[1..key.len() - 1]).unwrap_or_default();
        if let Some(split_key) = self.split_keys.iter().find(|k| **k == name)
            && self.peek()? == Some(b'[')
        {
            self.position += 1;
            self.split_found = true;
            let prefix = format!("{{\"{split_key}\":[").into_bytes();
            self.start_array((*split_key).to_owned(), prefix, b"]}");
            return Ok(());
        }
        if self.envelope.len() > 1 {
            self.envelope.push(b',');
        }
        self.envelope.extend_from_slice(&key);
        self.envelope.push(b':');
        let room = MAX_RECORD_BYTES.saturating_sub(self.envelope.len());
        let mut envelope = std::mem::take(&mut self.envelope);
        let copied = self.copy_value(&mut envelope, room);
        self.envelope = envelope;
        copied
    }

    /// Reads one element into the current group; returns the group when it is full.
    fn read_element(&mut self) -> Result<Option<ElementGroup>, JsonSplitError> {
        let line = self.line;
        let offset = self.offset();
        let group = self.group.get_or_insert_with(|| ElementGroup {
            payload: self.prefix.clone(),
            prefix_len: self.prefix.len(),
            suffix: self.suffix,
            array: self.array_name.clone(),
            first_index: self.next_index,
            elements: Vec::new(),
        });
        let mut payload = std::mem::take(&mut group.payload);
        if !group.elements.is_empty() {
            payload.push(b',');
        }
        let start = payload.len();
        let copied = self.copy_value(&mut payload, MAX_RECORD_BYTES);
        let group = self.group.as_mut().expect("created above");
        if let Err(error) = copied {
            // Drop the partial element: the group up to it is still good.
            payload.truncate(if group.elements.is_empty() { group.prefix_len } else { start - 1 });
            group.payload = payload;
            return Err(error);
        }
        group.elements.push(ElementPlace { range: start..payload.len(), line, offset });
        group.payload = payload;
        self.next_index += 1;
        self.after_element = true;
        if group.payload.len() >= self.group_bytes {
            return Ok(self.finish_group());
        }
        Ok(None)
    }

    fn finish_group(&mut self) -> Option<ElementGroup> {
        let mut group = self.group.take()?;
        if group.elements.is_empty() {
            return None;
        }
        group.payload.extend_from_slice(group.suffix);
        Some(group)
    }

    /// Copies one JSON value (object, array, string or scalar) into `out`, up to `limit` bytes.
    fn copy_value(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), JsonSplitError> {
        let start_line = self.line;
        let start_offset = self.offset();
        let start_len = out.len();
        let mut scan = ValueScan::default();
        loop {
            if self.position == self.filled && !self.refill()? {
                if scan.is_scalar() {
                    return Ok(());
                }
                return Err(JsonSplitError::Malformed {
                    line: start_line,
                    offset: start_offset,
                    message: "the file ends inside this value (unclosed string, object or array)".into(),
                });
            }
            let available = &self.buffer[self.position..self.filled];
            let (taken, finished) = match scan.feed(available) {
                Some(end) => (end, true),
                None => (available.len(), false),
            };
            let taken_bytes = &available[..taken];
            self.line += count_newlines(taken_bytes);
            out.extend_from_slice(taken_bytes);
            self.position += taken;
            if let Some(message) = scan.error.take() {
                return Err(self.malformed(message));
            }
            if out.len() - start_len > limit {
                return Err(JsonSplitError::Malformed {
                    line: start_line,
                    offset: start_offset,
                    message: format!("one value is larger than {limit} bytes"),
                });
            }
            if finished {
                return Ok(());
            }
        }
    }

    fn skip_whitespace(&mut self) -> Result<(), JsonSplitError> {
        loop {
            if self.position == self.filled && !self.refill()? {
                return Ok(());
            }
            let byte = self.buffer[self.position];
            if !byte.is_ascii_whitespace() {
                return Ok(());
            }
            if byte == b'\n' {
                self.line += 1;
            }
            self.position += 1;
        }
    }

    fn peek(&mut self) -> Result<Option<u8>, JsonSplitError> {
        if self.position == self.filled && !self.refill()? {
            return Ok(None);
        }
        Ok(Some(self.buffer[self.position]))
    }

    fn starts_with_bom(&mut self) -> Result<bool, JsonSplitError> {
        while self.filled - self.position < 3 {
            let read = self.input.read(&mut self.buffer[self.filled..])?;
            if read == 0 {
                break;
            }
            self.filled += read;
        }
        Ok(self.buffer[self.position..self.filled].starts_with(&[0xEF, 0xBB, 0xBF]))
    }

    /// Reads more input into an empty buffer; false at the end.
    fn refill(&mut self) -> Result<bool, JsonSplitError> {
        self.base_offset += self.filled as u64;
        self.position = 0;
        self.filled = 0;
        loop {
            match self.input.read(&mut self.buffer) {
                Ok(read) => {
                    self.filled = read;
                    return Ok(read > 0);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }

    fn offset(&self) -> u64 {
        self.base_offset + self.position as u64
    }

    fn malformed(&self, message: String) -> JsonSplitError {
        JsonSplitError::Malformed { line: self.line, offset: self.offset(), message }
    }
}

/// Finds where one JSON value ends, across buffers.
#[derive(Default)]
struct ValueScan {
    started: bool,
    scalar: bool,
    depth: u32,
    in_string: bool,
    escaped: bool,
    error: Option<String>,
}

impl ValueScan {
    fn is_scalar(&self) -> bool {
        self.scalar
    }

    /// Feeds bytes; returns the end (exclusive) if the value ends within them.
    fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut index = 0;
        while index < bytes.len() {
            let byte = bytes[index];
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if byte == b'\\' {
                    self.escaped = true;
                } else if byte == b'"' {
                    self.in_string = false;
                    if self.depth == 0 {
                        return Some(index + 1);
                    }
                } else {
                    // Skip the plain run of the string at once.
                    let run =
                        bytes[index..].iter().position(|b| *b == b'"' || *b == b'\\').unwrap_or(bytes.len() - index);
                    index += run.max(1);
                    continue;
                }
                index += 1;
                continue;
            }
            if self.scalar {
                if matches!(byte, b',' | b']' | b'}' | b':') || byte.is_ascii_whitespace() {
                    return Some(index);
                }
                index += 1;
                continue;
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    if self.depth == 0 {
                        self.error = Some(format!("unexpected {}", describe_byte(byte)));
                        return Some(index);
                    }
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Some(index + 1);
                    }
                }
                _ if !self.started && !byte.is_ascii_whitespace() => self.scalar = true,
                _ => {}
            }
            self.started = true;
            index += 1;
        }
        None
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

fn describe_byte(byte: u8) -> String {
    if byte.is_ascii_graphic() { format!("`{}`", byte as char) } else { format!("byte 0x{byte:02x}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str, keys: &'static [&'static str], group_bytes: usize) -> Vec<Result<JsonPiece, String>> {
        let mut splitter = JsonElements::with_group_bytes(text.as_bytes(), keys, group_bytes);
        let mut out = Vec::new();
        loop {
            match splitter.next_piece() {
                Ok(Some(piece)) => out.push(Ok(piece)),
                Ok(None) => break,
                Err(error) => {
                    out.push(Err(error.to_string()));
                    break;
                }
            }
        }
        out
    }

    fn group(piece: &Result<JsonPiece, String>) -> &ElementGroup {
        match piece {
            Ok(JsonPiece::Elements(group)) => group,
            other => panic!("expected a group, got {other:?}"),
        }
    }

    #[test]
    fn splits_the_named_array_into_valid_documents() {
        let text = "{\"total\": 3,\n \"data\": [\n {\"a\": \"x]}\\\"\"},\n {\"b\": [1, {\"c\": 2}]},\n {\"d\": null}\n ], \"errors\": null}";
        let out = pieces(text, &["data"], 30);
        assert_eq!(out.len(), 2, "{out:?}");
        let first = group(&out[0]);
        let second = group(&out[1]);
        assert_eq!(first.array, "data");
        assert_eq!(first.first_index, 0);
        assert_eq!(second.first_index, 2);
        assert_eq!(first.elements.iter().map(|e| e.line).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(second.elements[0].line, 5);
        for piece in [first, second] {
            let value: serde_json::Value = serde_json::from_slice(&piece.payload).expect("a valid document");
            assert!(value["data"].is_array());
        }
        let value: serde_json::Value = serde_json::from_slice(&first.payload).unwrap();
        assert_eq!(value["data"][0]["a"], "x]}\"");
        assert_eq!(value["data"][1]["b"][1]["c"], 2);
        assert_eq!(&first.payload[first.elements[1].range.clone()], b"{\"b\": [1, {\"c\": 2}]}");
        assert_eq!(first.wrap_one(&first.payload, 1), b"{\"data\":[{\"b\": [1, {\"c\": 2}]}]}".to_vec());
    }

    #[test]
    fn a_top_level_array_and_documents_without_the_array() {
        let out = pieces("\u{feff}[ [1,2], [3] ,\"s\", 4 ]\n{\"traceID\": \"1\", \"spans\": []}", &["data"], 1 << 20);
        assert_eq!(out.len(), 2, "{out:?}");
        let array = group(&out[0]);
        assert_eq!(array.array, "");
        assert_eq!(array.elements.len(), 4);
        let value: serde_json::Value = serde_json::from_slice(&array.payload).unwrap();
        assert_eq!(value, serde_json::json!([[1, 2], [3], "s", 4]));
        match &out[1] {
            Ok(JsonPiece::Document { payload, line }) => {
                assert_eq!(*line, 2);
                let value: serde_json::Value = serde_json::from_slice(payload).unwrap();
                assert_eq!(value, serde_json::json!({"traceID": "1", "spans": []}));
            }
            other => panic!("expected the whole document, got {other:?}"),
        }
    }

    #[test]
    fn a_cut_file_returns_the_good_elements_then_the_place_of_the_problem() {
        let out = pieces("{\"data\": [\n{\"a\": 1},\n{\"b\": [2,\n", &["data"], 1 << 20);
        assert_eq!(out.len(), 2, "{out:?}");
        let good = group(&out[0]);
        assert_eq!(good.elements.len(), 1);
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&good.payload).unwrap()["data"][0]["a"], 1);
        let error = out[1].as_ref().unwrap_err();
        assert!(error.starts_with("line 3 (byte 21)") && error.contains("file ends inside this value"), "{error}");

        let out = pieces("[{\"a\": 1} {\"b\": 2}]", &[], 1 << 20);
        let error = out.last().unwrap().as_ref().unwrap_err();
        assert!(error.contains("expected `,` or `]` after [0], found `{`"), "{error}");
        assert_eq!(group(&out[0]).elements.len(), 1);

        let out = pieces("  true", &[], 1 << 20);
        assert!(out[0].as_ref().unwrap_err().contains("expected a JSON object or array, found `t`"), "{out:?}");
    }
}
