//! Writing spans to Parquet: partitioned by the hour of their start time (hive style,
//! `spans/date=YYYY-MM-DD/hour=HH/`), rows sorted by trace id then start time, each file written
//! under a temporary name, fsync'd, then renamed, so readers never see a half-written file.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use arrow::datatypes::TimestampNanosecondType;
use arrow::error::ArrowError;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

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

/// The writer properties of span files.
pub fn writer_properties() -> WriterProperties {
    let schema = span_schema();
    let index = |name: &str| schema.index_of(name).unwrap_or_default() as i32;
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_sorting_columns(Some(vec![
            SortingColumn {
                column_idx: index(column::TRACE_ID),
                descending: false,
                nulls_first: true,
            },
            SortingColumn {
                column_idx: index(column::START_TIME),
                descending: false,
                nulls_first: true,
            },
        ]))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "tracegap.schema_version".into(),
            SCHEMA_VERSION.to_string(),
        )]))
        .build()
}

/// The hive partition directory (relative to the span table) of an hour since the epoch.
pub fn partition_directory(hour: i64) -> PathBuf {
    let seconds = hour.saturating_mul(3600);
    let days = seconds.div_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let hour_of_day = seconds.rem_euclid(86_400) / 3600;
    PathBuf::from(format!("date={year:04}-{month:02}-{day:02}"))
        .join(format!("hour={hour_of_day:02}"))
}

/// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's algorithm: shift the epoch to 0000-03-01, split into 400-year eras.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
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
    let schema = span_schema();
    let all = concat_batches(&schema, batches)?;
    if all.num_rows() == 0 {
        return Ok(Vec::new());
    }
    let start = all
        .column_by_name(column::START_TIME)
        .ok_or_else(|| ArrowError::SchemaError("no start_time column".into()))?
        .as_primitive::<TimestampNanosecondType>();
    let hours: Int64Array = start.unary(|nanos| nanos.div_euclid(NANOS_PER_HOUR));
    let hours: ArrayRef = Arc::new(hours);
    let column_named = |name: &str| {
        all.column_by_name(name)
            .cloned()
            .ok_or_else(|| ArrowError::SchemaError(format!("no {name} column")))
    };
    let indices = lexsort_to_indices(
        &[
            SortColumn {
                values: hours.clone(),
                options: None,
            },
            SortColumn {
                values: column_named(column::TRACE_ID)?,
                options: None,
            },
            SortColumn {
                values: column_named(column::START_TIME)?,
                options: None,
            },
        ],
        None,
    )?;
    let sorted = take_record_batch(&all, &indices)?;
    drop(all);
    let sorted_hours = arrow::compute::take(&hours, &indices, None)?;
    let sorted_hours = sorted_hours.as_primitive::<arrow::datatypes::Int64Type>();

    let mut written = Vec::new();
    let mut run_start = 0;
    while run_start < sorted.num_rows() {
        let hour = sorted_hours.value(run_start);
        let mut run_end = run_start + 1;
        while run_end < sorted.num_rows() && sorted_hours.value(run_end) == hour {
            run_end += 1;
        }
        let directory = spans_directory.join(partition_directory(hour));
        let path = directory.join(format!("{file_stem}.parquet"));
        if !(skip_existing && path.exists()) {
            write_file_atomically(
                &sorted.slice(run_start, run_end - run_start),
                &directory,
                &path,
            )?;
            written.push(path);
        }
        run_start = run_end;
    }
    Ok(written)
}

fn write_file_atomically(
    batch: &RecordBatch,
    directory: &Path,
    path: &Path,
) -> Result<(), ParquetFileError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ParquetFileError::Io { path, source }
    };
    fs::create_dir_all(directory).map_err(io(directory))?;
    let temporary = path.with_extension("parquet.tmp");
    let file = File::create(&temporary).map_err(io(&temporary))?;
    let parquet = |source| ParquetFileError::Parquet {
        path: temporary.clone(),
        source,
    };
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(writer_properties())).map_err(parquet)?;
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
    for path in list_span_files(spans_directory).map_err(|source| ParquetFileError::Io {
        path: spans_directory.to_owned(),
        source,
    })? {
        let file = File::open(&path).map_err(|source| ParquetFileError::Io {
            path: path.clone(),
            source,
        })?;
        let reader = parquet::file::serialized_reader::SerializedFileReader::new(file).map_err(
            |source| ParquetFileError::Parquet {
                path: path.clone(),
                source,
            },
        )?;
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
    batch.schema().fields() == span_schema().fields()
        && batch.columns().iter().all(|c| c.len() == batch.num_rows())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_directories_follow_the_calendar() {
        assert_eq!(
            partition_directory(0),
            PathBuf::from("date=1970-01-01/hour=00")
        );
        // 2026-11-25T15:00:00Z
        assert_eq!(
            partition_directory(1_795_618_800 / 3600),
            PathBuf::from("date=2026-11-25/hour=15")
        );
        // 2024-02-29T23:00:00Z, a leap day
        assert_eq!(
            partition_directory(1_709_247_600 / 3600),
            PathBuf::from("date=2024-02-29/hour=23")
        );
    }
}
