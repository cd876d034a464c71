//! Reading dump files: decompression (gzip, zstd) and format detection from content, then the
//! file as a stream of records (a JSON line, a length-prefixed protobuf message, or a group of
//! elements cut from one big document), each with its place in the file for error messages.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::json_elements::{JsonElements, JsonPiece, JsonSplitError};
use crate::protobuf_elements::{ProtobufElements, ProtobufSplitError};

/// Largest length-prefixed protobuf record accepted (a larger prefix means a corrupt file).
pub const MAX_RECORD_BYTES: usize = 256 << 20;

/// The formats `tracegap import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpFormat {
    /// OTLP JSON: one `{"resourceSpans": …}` document, or JSON lines (the Collector's file
    /// exporter); Tempo's older `batches` key too.
    OtlpJson,
    /// OTLP protobuf: one `TracesData`/`ExportTraceServiceRequest`, or the file exporter's
    /// records, each prefixed by its 4-byte big-endian length.
    OtlpProtobuf,
    /// Jaeger JSON: `{"data": [traces]}` (UI download, query API) or one trace object.
    Jaeger,
    /// Zipkin v2 JSON: an array of spans, or of traces.
    Zipkin,
}

impl DumpFormat {
    /// The name used by `--format`.
    pub fn name(self) -> &'static str {
        match self {
            DumpFormat::OtlpJson => "otlp-json",
            DumpFormat::OtlpProtobuf => "otlp-proto",
            DumpFormat::Jaeger => "jaeger",
            DumpFormat::Zipkin => "zipkin",
        }
    }
}

impl fmt::Display for DumpFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DumpFormat {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "otlp-json" | "otlp" | "json" => Ok(DumpFormat::OtlpJson),
            "otlp-proto" | "otlp-protobuf" | "proto" | "protobuf" => Ok(DumpFormat::OtlpProtobuf),
            "jaeger" => Ok(DumpFormat::Jaeger),
            "zipkin" => Ok(DumpFormat::Zipkin),
            other => Err(format!("unknown format {other:?}: expected otlp-json, otlp-proto, jaeger or zipkin")),
        }
    }
}

/// Why a dump could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The content is none of the formats.
    #[error("{path}: {message}")]
    Unrecognised {
        /// The file.
        path: PathBuf,
        /// What was seen.
        message: String,
    },
    /// A length-prefixed record is cut or claims an impossible length: the rest of the file
    /// cannot be read.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the byte offset.
        message: String,
    },
}

/// One record of a dump.
#[derive(Debug, Clone)]
pub struct DumpRecord {
    /// Where it is: `file:N` (a line), `file: record N at byte X`, or `file` (a group of
    /// elements, whose places are in `group`).
    pub place: String,
    /// Its format.
    pub format: DumpFormat,
    /// Its bytes (decompressed): a document of the format.
    pub payload: Bytes,
    /// When the record is a group of elements cut from one big document: where each one is.
    pub group: Option<ElementGroup>,
}

impl DumpRecord {
    /// A record of a group of elements; the group's payload moves into the record's.
    fn of_group(place: String, format: DumpFormat, mut group: ElementGroup) -> DumpRecord {
        let payload = Bytes::from(std::mem::take(&mut group.payload));
        DumpRecord { place, format, payload, group: Some(group) }
    }
}

/// Elements of one big document's span array (`data`, `resourceSpans`, a Zipkin array, a
/// `TracesData`'s `resource_spans`), wrapped as a small document of the same format.
#[derive(Debug, Clone, Default)]
pub struct ElementGroup {
    /// The document: prefix, the elements, suffix (moved to [`DumpRecord::payload`] once read).
    pub payload: Vec<u8>,
    /// Length of the prefix (`{"data":[`).
    pub prefix_len: usize,
    /// The suffix (`]}`).
    pub suffix: &'static [u8],
    /// The array's name in the document (empty for a top-level array).
    pub array: String,
    /// Index of the first element in the whole array.
    pub first_index: u64,
    /// Each element.
    pub elements: Vec<ElementPlace>,
}

/// Where one element is, in its group and in the file.
#[derive(Debug, Clone)]
pub struct ElementPlace {
    /// Its bytes in the group's document.
    pub range: Range<usize>,
    /// Its line in the file (0 when the file has no lines).
    pub line: u64,
    /// Its byte offset in the (decompressed) file.
    pub offset: u64,
}

impl ElementGroup {
    /// Element `index` of the group alone, wrapped as a document; `document` is the group's.
    pub fn wrap_one(&self, document: &[u8], index: usize) -> Vec<u8> {
        let range = self.elements[index].range.clone();
        let mut one = Vec::with_capacity(self.prefix_len + range.len() + self.suffix.len());
        one.extend_from_slice(&document[..self.prefix_len]);
        one.extend_from_slice(&document[range]);
        one.extend_from_slice(self.suffix);
        one
    }

    /// The element's name in the document, such as `data[17]`.
    pub fn label(&self, index: usize) -> String {
        format!("{}[{}]", self.array, self.first_index + index as u64)
    }
}

/// Counts the bytes read from the file itself (before decompression), for progress.
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.count.fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

/// An open dump: its format, and its records one by one.
pub struct DumpReader {
    path: PathBuf,
    format: DumpFormat,
    layout: Layout,
    record_index: u64,
    line: u64,
    offset: u64,
    done: bool,
}

type Input = Box<dyn BufRead + Send>;

/// How records are cut from the file.
enum Layout {
    /// One document per line.
    Lines(Input),
    /// Protobuf messages behind a 4-byte length.
    LengthPrefixed(Input),
    /// One JSON document (or several), cut between the elements of its span array.
    JsonElements(JsonElements<Input>),
    /// One protobuf message, cut between its `resource_spans`.
    ProtobufElements(ProtobufElements<Input>),
}

/// Keys under which a top-level object keeps its span array, per format.
const OTLP_ARRAY_KEYS: &[&str] = &["resourceSpans", "resource_spans", "batches"];
const JAEGER_ARRAY_KEYS: &[&str] = &["data"];

impl DumpReader {
    /// Opens a dump, decompressing gzip or zstd by their magic bytes, and detects its format
    /// (unless `format` is given). `bytes_read` counts the bytes read from the file.
    pub fn open(path: &Path, format: Option<DumpFormat>, bytes_read: Arc<AtomicU64>) -> Result<DumpReader, DumpError> {
        let io = |source| DumpError::Io { path: path.to_owned(), source };
        let file = File::open(path).map_err(io)?;
        let mut raw = BufReader::with_capacity(1 << 20, CountingReader { inner: file, count: bytes_read });
        let magic = raw.fill_buf().map_err(io)?.get(..4).map(<[u8]>::to_vec).unwrap_or_default();
        let mut reader: Box<dyn BufRead + Send> = if magic.starts_with(&[0x1f, 0x8b]) {
            Box::new(BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(raw)))
        } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
            Box::new(BufReader::with_capacity(1 << 20, zstd::stream::read::Decoder::with_buffer(raw).map_err(io)?))
        } else {
            Box::new(raw)
        };
        let head = fill_at_least(&mut reader, 64 << 10).map_err(io)?;
        let format = match format {
            Some(format) => format,
            None => detect(&head).ok_or_else(|| DumpError::Unrecognised {
                path: path.to_owned(),
                message: describe_unrecognised(&head),
            })?,
        };
        // A JSON-lines record can be longer than the head: read the whole first line to decide.
        let head = if format == DumpFormat::OtlpJson && !head.contains(&b'\n') && head.len() >= 64 << 10 {
            peek_first_line(&mut reader).map_err(io)?
        } else {
            head
        };
        let layout = match format {
            DumpFormat::OtlpJson if first_line_is_a_document(&head) => Layout::Lines(reader),
            DumpFormat::OtlpJson => Layout::JsonElements(JsonElements::new(reader, OTLP_ARRAY_KEYS)),
            DumpFormat::OtlpProtobuf if head.first().is_some_and(|b| *b != 0x0a) => Layout::LengthPrefixed(reader),
            DumpFormat::OtlpProtobuf => Layout::ProtobufElements(ProtobufElements::new(reader)),
            DumpFormat::Jaeger => Layout::JsonElements(JsonElements::new(reader, JAEGER_ARRAY_KEYS)),
            DumpFormat::Zipkin => Layout::JsonElements(JsonElements::new(reader, &[])),
        };
        Ok(DumpReader { path: path.to_owned(), format, layout, record_index: 0, line: 0, offset: 0, done: false })
    }

    /// The detected (or given) format.
    pub fn format(&self) -> DumpFormat {
        self.format
    }

    /// The next record, `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<DumpRecord>, DumpError> {
        if self.done {
            return Ok(None);
        }
        let io = |source| DumpError::Io { path: self.path.clone(), source };
        let display = self.path.display().to_string();
        let corrupt = |message: String| DumpError::Corrupt { path: self.path.clone(), message };
        let format = self.format;
        match &mut self.layout {
            Layout::JsonElements(splitter) => {
                let piece = splitter.next_piece().map_err(|error| match error {
                    JsonSplitError::Io(error) => io(error),
                    error => corrupt(format!("{error}; the rest of the file is unreadable")),
                });
                let record = piece.map(|piece| {
                    piece.map(|piece| match piece {
                        JsonPiece::Elements(group) => DumpRecord::of_group(display, format, group),
                        JsonPiece::Document { payload, line } => DumpRecord {
                            place: if line > 1 { format!("{display}:{line}") } else { display },
                            format,
                            payload: Bytes::from(payload),
                            group: None,
                        },
                    })
                });
                self.done = !matches!(record, Ok(Some(_)));
                record
            }
            Layout::ProtobufElements(splitter) => {
                let group = splitter.next_group().map_err(|error| match error {
                    ProtobufSplitError::Io(error) => io(error),
                    error => corrupt(format!("{error}; the rest of the file is unreadable")),
                });
                let record = group.map(|group| group.map(|group| DumpRecord::of_group(display, format, group)));
                self.done = !matches!(record, Ok(Some(_)));
                record
            }
            Layout::Lines(reader) => loop {
                let mut line = Vec::new();
                let read = reader.read_until(b'\n', &mut line).map_err(io)?;
                if read == 0 {
                    self.done = true;
                    return Ok(None);
                }
                self.line += 1;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(DumpRecord {
                    place: format!("{display}:{}", self.line),
                    format: self.format,
                    payload: Bytes::from(line),
                    group: None,
                }));
            },
            Layout::LengthPrefixed(reader) => {
                let mut prefix = [0u8; 4];
                let mut filled = 0;
                while filled < 4 {
                    let read = reader.read(&mut prefix[filled..]).map_err(io)?;
                    if read == 0 {
                        break;
                    }
                    filled += read;
                }
                if filled == 0 {
                    self.done = true;
                    return Ok(None);
                }
                let at = self.offset;
                if filled < 4 {
                    self.done = true;
                    return Err(corrupt(format!(
                        "record {} at byte {at}: length prefix cut after {filled} bytes",
                        self.record_index + 1
                    )));
                }
                let length = u32::from_be_bytes(prefix) as usize;
                if length > MAX_RECORD_BYTES {
                    self.done = true;
                    return Err(corrupt(format!(
                        "record {} at byte {at}: length prefix says {length} bytes, more than {MAX_RECORD_BYTES}; the rest of the file is unreadable",
                        self.record_index + 1
                    )));
                }
                let mut payload = vec![0u8; length];
                if let Err(error) = reader.read_exact(&mut payload) {
                    self.done = true;
                    return Err(if error.kind() == io::ErrorKind::UnexpectedEof {
                        corrupt(format!(
                            "record {} at byte {at}: cut short, expected {length} bytes",
                            self.record_index + 1
                        ))
                    } else {
                        io(error)
                    });
                }
                self.record_index += 1;
                self.offset += 4 + length as u64;
                Ok(Some(DumpRecord {
                    place: format!("{display}: record {} at byte {at}", self.record_index),
                    format: self.format,
                    payload: Bytes::from(payload),
                    group: None,
                }))
            }
        }
    }
}

/// Fills the reader's buffer with at least `want` bytes (or the whole stream), and returns a
/// copy of them without consuming.
fn fill_at_least(reader: &mut Box<dyn BufRead + Send>, want: usize) -> io::Result<Vec<u8>> {
    // A BufRead only exposes its current buffer; read ahead into our own and chain it back.
    let mut head = Vec::with_capacity(want);
    (&mut *reader).take(want as u64).read_to_end(&mut head)?;
    let rest = std::mem::replace(reader, Box::new(io::empty()));
    *reader = Box::new(BufReader::with_capacity(1 << 20, io::Cursor::new(head.clone()).chain(rest)));
    Ok(head)
}

/// The first line (up to [`MAX_RECORD_BYTES`]), without consuming it.
fn peek_first_line(reader: &mut Box<dyn BufRead + Send>) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    (&mut *reader).take(MAX_RECORD_BYTES as u64).read_until(b'\n', &mut line)?;
    let rest = std::mem::replace(reader, Box::new(io::empty()));
    *reader = Box::new(BufReader::with_capacity(1 << 20, io::Cursor::new(line.clone()).chain(rest)));
    Ok(line)
}

/// The format of a dump, from its first bytes.
pub fn detect(head: &[u8]) -> Option<DumpFormat> {
    let text_start = head.iter().position(|b| !b.is_ascii_whitespace());
    match text_start.map(|i| head[i]) {
        Some(b'[') => Some(DumpFormat::Zipkin),
        Some(b'{') => {
            let window = String::from_utf8_lossy(&head[..head.len().min(64 << 10)]);
            let position = |key: &str| window.find(key);
            let otlp =
                ["\"resourceSpans\"", "\"resource_spans\"", "\"batches\""].iter().filter_map(|k| position(k)).min();
            let jaeger = ["\"data\"", "\"traceID\"", "\"processes\""].iter().filter_map(|k| position(k)).min();
            match (otlp, jaeger) {
                (Some(o), Some(j)) => Some(if o < j { DumpFormat::OtlpJson } else { DumpFormat::Jaeger }),
                (Some(_), None) => Some(DumpFormat::OtlpJson),
                (None, Some(_)) => Some(DumpFormat::Jaeger),
                (None, None) => None,
            }
        }
        // Not JSON: a TracesData starts with field 1 (0x0a, which is also a newline, hence the raw
        // first byte), or with a 4-byte big-endian length prefix and then field 1.
        _ if head.first() == Some(&0x0a) => Some(DumpFormat::OtlpProtobuf),
        _ if head.len() >= 5 && head[0] == 0 && head[4] == 0x0a => Some(DumpFormat::OtlpProtobuf),
        _ => None,
    }
}

fn describe_unrecognised(head: &[u8]) -> String {
    if head.is_empty() {
        return "empty file".into();
    }
    let shown: String = String::from_utf8_lossy(&head[..head.len().min(40)])
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    format!(
        "format not recognised (starts with {shown:?}): expected OTLP JSON or protobuf, Jaeger JSON or Zipkin v2 JSON; use --format to say which"
    )
}

fn first_line_is_a_document(head: &[u8]) -> bool {
    let Some(end) = head.iter().position(|b| *b == b'\n') else { return false };
    let line = &head[..end];
    if line.iter().all(u8::is_ascii_whitespace) {
        return false;
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format_from_content() {
        assert_eq!(detect(b"  {\"resourceSpans\": []}"), Some(DumpFormat::OtlpJson));
        assert_eq!(detect(b"{\"batches\": []}"), Some(DumpFormat::OtlpJson));
        assert_eq!(detect(b"{\"data\": [{\"traceID\": \"1\"}]}"), Some(DumpFormat::Jaeger));
        assert_eq!(detect(b"{\"traceID\": \"1\", \"spans\": []}"), Some(DumpFormat::Jaeger));
        assert_eq!(detect(b"[{\"traceId\": \"1\"}]"), Some(DumpFormat::Zipkin));
        assert_eq!(detect(&[0x0a, 0x02, 0x0a, 0x00]), Some(DumpFormat::OtlpProtobuf));
        assert_eq!(detect(&[0, 0, 0, 4, 0x0a, 0x02, 0x0a, 0x00]), Some(DumpFormat::OtlpProtobuf));
        assert_eq!(detect(b"hello"), None);
    }
}
