//! The write-ahead log: every accepted request is appended here, and fsync'd, before its
//! success response is sent. Many concurrent requests share one fsync (group commit).
//!
//! A segment file starts with an 8-byte magic, then records:
//! `u32 LE payload length | u32 LE CRC-32 of payload | payload`, where the payload is
//! `u8 source | i64 LE receive time (ns) | OTLP ExportTraceServiceRequest protobuf`.
//! A segment is deleted once the spans of its records are durable in Parquet.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::{Buf, Bytes};

use crate::span_schema::Source;

const MAGIC: &[u8; 8] = b"TGWAL001";
const RECORD_HEADER: usize = 8;
const PAYLOAD_HEADER: usize = 9;
/// A record larger than this is corruption, not data (requests are limited far below it).
const MAX_RECORD: usize = 1 << 30;

/// Errors of the write-ahead log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An I/O error, with the file it happened on.
    #[error("write-ahead log {path}: {source}")]
    Io {
        /// The segment or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io { path: path.to_owned(), source }
}

/// One logged request.
#[derive(Debug, Clone, PartialEq)]
pub struct WalRecord {
    /// Where the request came from.
    pub source: Source,
    /// When it was received, ns since the Unix epoch.
    pub receive_time_nano: i64,
    /// The request, as OTLP protobuf.
    pub request: Bytes,
}

impl WalRecord {
    fn encoded_len(&self) -> usize {
        RECORD_HEADER + PAYLOAD_HEADER + self.request.len()
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        let payload_len = PAYLOAD_HEADER + self.request.len();
        let mut hasher = crc32fast::Hasher::new();
        let mut header = [0u8; PAYLOAD_HEADER];
        header[0] = self.source.code();
        header[1..].copy_from_slice(&self.receive_time_nano.to_le_bytes());
        hasher.update(&header);
        hasher.update(&self.request);
        out.extend_from_slice(&(payload_len as u32).to_le_bytes());
        out.extend_from_slice(&hasher.finalize().to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.request);
    }
}

/// The path of segment `id` in `directory`.
pub fn segment_path(directory: &Path, id: u64) -> PathBuf {
    directory.join(format!("{id:020}.wal"))
}

/// The ids of the segments in `directory`, oldest first.
pub fn list_segments(directory: &Path) -> Result<Vec<u64>, WalError> {
    let mut ids = Vec::new();
    let entries = match fs::read_dir(directory) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(ids),
        Err(error) => return Err(io_error(directory)(error)),
    };
    for entry in entries {
        let entry = entry.map_err(io_error(directory))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(id) = name.strip_suffix(".wal").and_then(|stem| stem.parse().ok()) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// The segment being appended to.
pub struct SegmentWriter {
    id: u64,
    path: PathBuf,
    file: File,
    buffer: Vec<u8>,
    records: usize,
}

impl SegmentWriter {
    /// Creates segment `id` and makes its creation durable.
    pub fn create(directory: &Path, id: u64) -> Result<SegmentWriter, WalError> {
        fs::create_dir_all(directory).map_err(io_error(directory))?;
        let path = segment_path(directory, id);
        let mut file = OpenOptions::new().create_new(true).write(true).open(&path).map_err(io_error(&path))?;
        file.write_all(MAGIC).map_err(io_error(&path))?;
        file.sync_all().map_err(io_error(&path))?;
        sync_directory(directory).map_err(io_error(directory))?;
        Ok(SegmentWriter { id, path, file, buffer: Vec::new(), records: 0 })
    }

    /// The segment's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The segment's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of records appended.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Appends records with one write and one fsync: when this returns `Ok`, they are durable.
    pub fn append_durably<'a>(&mut self, records: impl IntoIterator<Item = &'a WalRecord>) -> Result<(), WalError> {
        self.buffer.clear();
        for record in records {
            self.buffer.reserve(record.encoded_len());
            record.encode_into(&mut self.buffer);
            self.records += 1;
        }
        self.file.write_all(&self.buffer).map_err(io_error(&self.path))?;
        self.file.sync_data().map_err(io_error(&self.path))?;
        if self.buffer.capacity() > 64 << 20 {
            self.buffer = Vec::new();
        }
        Ok(())
    }
}

/// What reading a segment found.
#[derive(Debug, Default)]
pub struct SegmentContents {
    /// The complete, checksummed records.
    pub records: Vec<WalRecord>,
    /// Where reading stopped early, and why: a torn last write after a crash (those records were
    /// never acknowledged), or corruption.
    pub stopped: Option<(u64, String)>,
}

/// Reads every intact record of a segment.
pub fn read_segment(path: &Path) -> Result<SegmentContents, WalError> {
    let data = Bytes::from(fs::read(path).map_err(io_error(path))?);
    let mut contents = SegmentContents::default();
    if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
        contents.stopped = Some((0, "not a tracegap write-ahead log segment (bad magic)".into()));
        return Ok(contents);
    }
    let mut rest = data.slice(MAGIC.len()..);
    loop {
        let offset = (data.len() - rest.len()) as u64;
        if rest.is_empty() {
            break;
        }
        if rest.len() < RECORD_HEADER {
            contents.stopped = Some((offset, "truncated record header".into()));
            break;
        }
        let length = u32::from_le_bytes(rest[..4].try_into().unwrap_or_default()) as usize;
        let checksum = u32::from_le_bytes(rest[4..8].try_into().unwrap_or_default());
        if !(PAYLOAD_HEADER..=MAX_RECORD).contains(&length) {
            contents.stopped = Some((offset, format!("impossible record length {length}")));
            break;
        }
        if rest.len() < RECORD_HEADER + length {
            contents.stopped = Some((
                offset,
                format!("truncated record: {length} bytes announced, {} present", rest.len() - RECORD_HEADER),
            ));
            break;
        }
        rest.advance(RECORD_HEADER);
        let payload = rest.split_to(length);
        if crc32fast::hash(&payload) != checksum {
            contents.stopped = Some((offset, "checksum mismatch".into()));
            break;
        }
        let Some(source) = Source::from_code(payload[0]) else {
            contents.stopped = Some((offset, format!("unknown source code {}", payload[0])));
            break;
        };
        let receive_time_nano = i64::from_le_bytes(payload[1..9].try_into().unwrap_or_default());
        contents.records.push(WalRecord { source, receive_time_nano, request: payload.slice(PAYLOAD_HEADER..) });
    }
    Ok(contents)
}

/// Makes a directory's entries (created, renamed or deleted files) durable.
pub fn sync_directory(directory: &Path) -> io::Result<()> {
    File::open(directory)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u8) -> WalRecord {
        WalRecord {
            source: Source::Grpc,
            receive_time_nano: 1_000 + n as i64,
            request: Bytes::from(vec![n; 100 + n as usize]),
        }
    }

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = SegmentWriter::create(dir.path(), 7).unwrap();
        let first = [record(1), record(2)];
        writer.append_durably(&first).unwrap();
        writer.append_durably(&[record(3)]).unwrap();
        let contents = read_segment(writer.path()).unwrap();
        assert_eq!(contents.records, vec![record(1), record(2), record(3)]);
        assert!(contents.stopped.is_none());
        assert_eq!(list_segments(dir.path()).unwrap(), vec![7]);
    }

    #[test]
    fn a_torn_tail_keeps_the_records_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = SegmentWriter::create(dir.path(), 1).unwrap();
        writer.append_durably(&[record(1), record(2)]).unwrap();
        let path = writer.path().to_owned();
        drop(writer);
        let length = fs::metadata(&path).unwrap().len();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(length - 10).unwrap();
        let contents = read_segment(&path).unwrap();
        assert_eq!(contents.records, vec![record(1)]);
        let (offset, reason) = contents.stopped.unwrap();
        assert_eq!(offset, (MAGIC.len() + record(1).encoded_len()) as u64);
        assert!(reason.starts_with("truncated record"), "{reason}");
    }

    #[test]
    fn a_flipped_bit_is_caught_by_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = SegmentWriter::create(dir.path(), 1).unwrap();
        writer.append_durably(&[record(1)]).unwrap();
        let path = writer.path().to_owned();
        let mut data = fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 1;
        fs::write(&path, data).unwrap();
        let contents = read_segment(&path).unwrap();
        assert!(contents.records.is_empty());
        assert_eq!(contents.stopped.unwrap().1, "checksum mismatch");
    }
}
