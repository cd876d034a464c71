//! Writing spans to Parquet: partitioned by the hour of their start time (hive style,
//! `spans/date=YYYY-MM-DD/hour=HH/`), rows sorted by trace id then start time, each file written
//! under a temporary name, fsync'd, then renamed, so readers never see a half-written file.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, TimestampNanosecondType};
use arrow::error::ArrowError;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::row_gather::gather_batch;
use crate::span_schema::{SCHEMA_VERSION, column, span_schema};
use crate::write_ahead_log::sync_directory;

/// Directory of the span table under the data directory.
pub const SPANS_DIRECTORY: &str = "spans";
/// Rows per Parquet row group: small enough that a trace id lookup reads little, large enough
/// for good compression.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;
const NANOS_PER_HOUR: i64 = 3_600_000_000_000;

/// Errors writing Parquet.
#[derive(Debug, thiserror::Error)]
pub enum ParquetFileError {
    /// An I/O error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Parquet encoding failed.
    #[error("{path}: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The error.
        source: ParquetError,
    },
    /// Sorting or slicing the batches failed.
    #[error("preparing spans for Parquet: {0}")]
    Arrow(#[from] ArrowError),
}

/// Most rows in a data page: small enough that looking up one trace reads little.
const TRACE_LOOKUP_PAGE_ROWS: usize = 8192;

/// Columns whose values are (nearly) all distinct.
const UNIQUE_COLUMNS: [&str; 10] = [
    column::TRACE_ID,
    column::TRACE_ID_LOW,
    column::SPAN_ID,
    column::PARENT_SPAN_ID,
    column::TRACE_ID_RAW,
    column::SPAN_ID_RAW,
    column::PARENT_SPAN_ID_RAW,
    column::START_TIME,
    column::END_TIME,
    column::DURATION_NANO,
];

/// The writer properties of span files.
pub fn writer_properties() -> WriterProperties {
    let schema = span_schema();
    let index = |name: &str| schema.index_of(name).unwrap_or_default() as i32;
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        // Statistics where a reader prunes with them: numeric ids, times, counts and codes. None on
        // text and raw byte columns: rows are sorted by trace id, so every row group holds every
        // service and name and their min/max prune nothing, while computing them compared every
        // value twice (a fifth of the flush thread's time). None on the attribute, event and link
        // leaves either, where min/max of mixed values prune nothing.
        .set_statistics_enabled(EnabledStatistics::None)
        .set_sorting_columns(Some(vec![
            SortingColumn { column_idx: index(column::TRACE_ID), descending: false, nulls_first: true },
            SortingColumn { column_idx: index(column::START_TIME), descending: false, nulls_first: true },
        ]))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "tracegap.schema_version".into(),
            SCHEMA_VERSION.to_string(),
        )]));
    for field in span_schema().fields() {
        if has_chunk_statistics(field.data_type()) {
            builder = builder
                .set_column_statistics_enabled(ColumnPath::from(field.name().as_str()), EnabledStatistics::Chunk);
        }
    }
    // Rows are sorted by trace id: a page index on it lets a trace lookup read a few pages of
    // each column instead of whole row groups (the dashboard's trace view).
    builder = builder
        .set_column_statistics_enabled(ColumnPath::from(column::TRACE_ID), EnabledStatistics::Page)
        .set_data_page_row_count_limit(TRACE_LOOKUP_PAGE_ROWS);
    // Ids and times are nearly all distinct: a dictionary costs time and saves nothing there.
    for name in UNIQUE_COLUMNS {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(name), false);
    }
    builder.build()
}

/// Whether a top-level column of this type gets column chunk statistics (see `writer_properties`).
fn has_chunk_statistics(data_type: &DataType) -> bool {
    !data_type.is_nested()
        && !matches!(
            data_type,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary | DataType::Dictionary(..)
        )
}

/// The hive partition directory (relative to the span table) of an hour since the epoch.
pub fn partition_directory(hour: i64) -> PathBuf {
    let seconds = hour.saturating_mul(3600);
    let days = seconds.div_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let hour_of_day = seconds.rem_euclid(86_400) / 3600;
    PathBuf::from(format!("date={year:04}-{month:02}-{day:02}")).join(format!("hour={hour_of_day:02}"))
}

/// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's algorithm: shift the epoch to 0000-03-01, split into 400-year eras.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Sorts the batches by hour, trace id and start time, and writes one file per hour partition,
/// named `<file_stem>.parquet`. With `skip_existing`, a partition that already has that file is
/// left alone (replaying a log whose flush was interrupted after some renames).
pub fn write_partitioned(
    batches: &[RecordBatch],
    spans_directory: &Path,
    file_stem: &str,
    skip_existing: bool,
) -> Result<Vec<PathBuf>, ParquetFileError> {
    let all = concat_batches(&span_schema(), batches)?;
    let order = sort_order(&all)?;
    let mut written = Vec::new();
    let mut run_start = 0;
    while run_start < order.len() {
        let hour = order[run_start].hour;
        let run_end = run_start + order[run_start..].iter().take_while(|key| key.hour == hour).count();
        let directory = spans_directory.join(partition_directory(hour));
        let path = directory.join(format!("{file_stem}.parquet"));
        if !(skip_existing && path.exists()) {
            // Concatenating, then gathering in sorted order, is much cheaper than gathering row
            // by row from each batch (`interleave`) for the nested attribute, event and link
            // columns.
            let indices = UInt32Array::from_iter_values(order[run_start..run_end].iter().map(|key| key.row));
            let sorted = gather_batch(&all, &indices)?;
            write_file_atomically(&sorted, &directory, &path)?;
            written.push(path);
        }
        run_start = run_end;
    }
    Ok(written)
}

/// Where a row goes: its partition hour, then its place in the sort order.
struct SortKey {
    hour: i64,
    /// The 16 id bytes as a big-endian integer: the same order as the bytes, compared in one
    /// instruction instead of a `memcmp` call (which was a third of the flush thread's time).
    trace_id: Option<u128>,
    start: i64,
    row: u32,
}

fn sort_order(batch: &RecordBatch) -> Result<Vec<SortKey>, ArrowError> {
    let mut keys = Vec::with_capacity(batch.num_rows());
    let column =
        |name: &str| batch.column_by_name(name).ok_or_else(|| ArrowError::SchemaError(format!("no {name} column")));
    let start = column(column::START_TIME)?.as_primitive::<TimestampNanosecondType>();
    let trace_id = column(column::TRACE_ID)?.as_fixed_size_binary();
    for row in 0..batch.num_rows() {
        let nanos = start.value(row);
        keys.push(SortKey {
            hour: nanos.div_euclid(NANOS_PER_HOUR),
            trace_id: trace_id
                .is_valid(row)
                .then(|| u128::from_be_bytes(trace_id.value(row).try_into().unwrap_or_default())),
            start: nanos,
            row: row as u32,
        });
    }
    keys.sort_unstable_by_key(|key| (key.hour, key.trace_id, key.start));
    Ok(keys)
}

fn write_file_atomically(batch: &RecordBatch, directory: &Path, path: &Path) -> Result<(), ParquetFileError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ParquetFileError::Io { path, source }
    };
    fs::create_dir_all(directory).map_err(io(directory))?;
    let temporary = path.with_extension("parquet.tmp");
    let file = File::create(&temporary).map_err(io(&temporary))?;
    let parquet = |source| ParquetFileError::Parquet { path: temporary.clone(), source };
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(writer_properties())).map_err(parquet)?;
    writer.write(batch).map_err(parquet)?;
    let file = writer.into_inner().map_err(parquet)?;
    file.sync_all().map_err(io(&temporary))?;
    drop(file);
    fs::rename(&temporary, path).map_err(io(path))?;
    sync_directory(directory).map_err(io(directory))?;
    Ok(())
}

/// Removes temporary files a crash left behind (they were never renamed, so never visible).
pub fn remove_temporary_files(spans_directory: &Path) -> io::Result<usize> {
    let mut removed = 0;
    let Ok(entries) = fs::read_dir(spans_directory) else {
        return Ok(0);
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            removed += remove_temporary_files(&path)?;
        } else if path.extension().is_some_and(|e| e == "tmp") {
            fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Counts the rows of every span file under the span table (for tests and diagnostics).
pub fn count_rows(spans_directory: &Path) -> Result<usize, ParquetFileError> {
    let mut rows = 0;
    for path in list_span_files(spans_directory)
        .map_err(|source| ParquetFileError::Io { path: spans_directory.to_owned(), source })?
    {
        let file = File::open(&path).map_err(|source| ParquetFileError::Io { path: path.clone(), source })?;
        let reader = parquet::file::serialized_reader::SerializedFileReader::new(file)
            .map_err(|source| ParquetFileError::Parquet { path: path.clone(), source })?;
        use parquet::file::reader::FileReader;
        rows += reader.metadata().file_metadata().num_rows() as usize;
    }
    Ok(rows)
}

/// Every `.parquet` file under a directory, recursively, sorted.
pub fn list_span_files(directory: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let Ok(entries) = fs::read_dir(directory) else {
        return Ok(files);
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            files.extend(list_span_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Checks that a batch has the span table's schema (used where batches come from elsewhere).
pub fn has_span_schema(batch: &RecordBatch) -> bool {
    batch.schema().fields() == span_schema().fields() && batch.columns().iter().all(|c| c.len() == batch.num_rows())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn rows_sort_by_hour_then_trace_id_bytes_then_start() {
        use arrow::array::{FixedSizeBinaryArray, TimestampNanosecondArray};
        use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
        let id = |first: u8, last: u8| {
            let mut bytes = [0u8; 16];
            bytes[0] = first;
            bytes[15] = last;
            bytes
        };
        let ids = [Some(id(0xff, 0)), Some(id(0x01, 9)), None, Some(id(0x80, 0)), Some(id(0x01, 2)), Some(id(0x01, 9))];
        let starts = [10, 30, 20, 5, 7, 4 + NANOS_PER_HOUR];
        let schema = Schema::new(vec![
            Field::new(column::TRACE_ID, DataType::FixedSizeBinary(16), true),
            Field::new(column::START_TIME, DataType::Timestamp(TimeUnit::Nanosecond, None), false),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(FixedSizeBinaryArray::try_from_sparse_iter_with_size(ids.iter().copied(), 16).unwrap()),
                Arc::new(TimestampNanosecondArray::from(starts.to_vec())),
            ],
        )
        .unwrap();
        let order: Vec<u32> = sort_order(&batch).unwrap().iter().map(|key| key.row).collect();
        // Hour 0: no id first, then ids as unsigned bytes (0x01.. < 0x80.. < 0xff..); hour 1 last.
        assert_eq!(order, vec![2, 4, 1, 3, 0, 5]);
    }

    /// One span (service `checkout`, name `GET /cart`) written as a span file in `directory`.
    fn one_span_file(directory: &Path) -> PathBuf {
        let request = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
            "scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
            "name":"GET /cart","kind":2,"startTimeUnixNano":"1764000000000000000","endTimeUnixNano":"1764000000100000000"}]}]}]}"#;
        let context = crate::span_batch::BatchContext {
            receive_time_nano: 1,
            source: crate::Source::Http,
            gts_keys: Arc::new(Default::default()),
        };
        let decoded = crate::request_decoding::decode_request(
            bytes::Bytes::from_static(request),
            crate::request_decoding::BodyEncoding::Json,
            &context,
        )
        .unwrap();
        let batch = decoded.spans.batch.unwrap();
        write_partitioned(&[batch], directory, "one", false).unwrap().remove(0)
    }

    #[test]
    fn statistics_cover_ids_and_times_but_not_text() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let directory = tempfile::tempdir().unwrap();
        let written = one_span_file(directory.path());
        let reader = SerializedFileReader::new(File::open(&written).unwrap()).unwrap();
        let row_group = reader.metadata().row_group(0);
        let statistics_of = |name: &str| {
            row_group
                .columns()
                .iter()
                .find(|chunk| chunk.column_path().string() == name)
                .unwrap()
                .statistics()
                .is_some()
        };
        for name in [column::TRACE_ID, column::SPAN_ID, column::START_TIME, column::FLAGS] {
            assert!(statistics_of(name), "{name} should have statistics");
        }
        for name in [column::NAME, column::KIND, column::SERVICE_NAME, column::TRACE_ID_RAW, column::SPAN_ID_RAW] {
            assert!(!statistics_of(name), "{name} should have no statistics");
        }
    }

    #[test]
    fn naming_columns_read_back_as_dictionaries_and_are_text_to_any_reader() {
        use arrow::array::AsArray;
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        use parquet::basic::{LogicalType, Type as PhysicalType};
        let directory = tempfile::tempdir().unwrap();
        let written = one_span_file(directory.path());
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&written).unwrap()).unwrap();
        // Without the Arrow schema in the footer, a reader sees UTF-8 byte arrays.
        let parquet_schema = builder.parquet_schema().clone();
        let batch = builder.build().unwrap().next().unwrap().unwrap();
        for name in crate::span_schema::NAMING_COLUMNS {
            assert_eq!(batch.schema().field_with_name(name).unwrap().data_type(), &crate::span_schema::naming_type());
            let leaf = parquet_schema.columns().iter().find(|c| c.path().string() == name).unwrap();
            assert_eq!(leaf.physical_type(), PhysicalType::BYTE_ARRAY, "{name}");
            assert_eq!(leaf.logical_type_ref(), Some(&LogicalType::String), "{name}");
        }
        let text = |name: &str| {
            let column = arrow::compute::cast(batch.column_by_name(name).unwrap(), &DataType::Utf8).unwrap();
            column.as_string::<i32>().value(0).to_owned()
        };
        assert_eq!(
            (text(column::SERVICE_NAME), text(column::NAME), text(column::KIND)),
            ("checkout".to_owned(), "GET /cart".to_owned(), "SERVER".to_owned())
        );
        assert!(batch.column_by_name(column::PEER_SERVICE).unwrap().is_null(0));
    }

    #[test]
    fn partition_directories_follow_the_calendar() {
        assert_eq!(partition_directory(0), PathBuf::from("date=1970-01-01/hour=00"));
        // 2026-11-25T15:00:00Z
        assert_eq!(partition_directory(1_795_618_800 / 3600), PathBuf::from("date=2026-11-25/hour=15"));
        // 2024-02-29T23:00:00Z, a leap day
        assert_eq!(partition_directory(1_709_247_600 / 3600), PathBuf::from("date=2024-02-29/hour=23"));
    }
}
