//! Every check on its hand-written fixture gives exactly the expected findings (and no other
//! check finds anything there).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use datafusion::physical_plan::displayable;
use tracegap_analyze::findings::{finding_query, register_views, run_checks};
use tracegap_analyze::span_cache::keep_spans_in_memory_up_to;
use tracegap_analyze::{Analysis, AnalysisOptions, Catalog, keep_spans_in_memory, load_catalog};
use tracegap_ingest::Source;
use tracegap_ingest::parquet_files::{SPANS_DIRECTORY, write_partitioned};
use tracegap_ingest::request_decoding::{BodyEncoding, decode_request};
use tracegap_ingest::span_batch::BatchContext;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/fixtures")
}

/// Imports an OTLP JSON file into a fresh data directory.
fn import(file: &Path, data: &Path) {
    import_received(file, data, 1, "fixture");
}

/// Imports an OTLP JSON file as received at a given time, into files named by `prefix`.
fn import_received(file: &Path, data: &Path, receive_time_nano: i64, prefix: &str) {
    write_partitioned(&[decode(file, receive_time_nano)], &data.join(SPANS_DIRECTORY), prefix, false).unwrap();
}

/// The spans of an OTLP JSON file as ingest stores them, received at a given time.
fn decode(file: &Path, receive_time_nano: i64) -> arrow::array::RecordBatch {
    let body = Bytes::from(std::fs::read(file).unwrap());
    let context = BatchContext { receive_time_nano, source: Source::Import, gts_keys: Arc::new(Default::default()) };
    let decoded = decode_request(body, BodyEncoding::Json, &context).unwrap();
    assert_eq!(decoded.spans.rejected, 0, "{}", file.display());
    decoded.spans.batch.unwrap()
}

/// One number from a query.
async fn count(analysis: &Analysis, sql: &str) -> i64 {
    let batches = analysis.collect(sql).await.unwrap();
    let column = arrow::compute::cast(batches[0].column(0), &arrow::datatypes::DataType::Int64).unwrap();
    column.as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().value(0)
}

/// Live data: the pending traces are found once, when the analysis opens, so the span table the
/// checks read is the files with a filter, not a grouping of every span joined into each query.
/// A trace with a span received after the settle threshold is pending; spans received after the
/// analysis's `now` are not read at all.
#[tokio::test(flavor = "multi_thread")]
async fn pending_traces_are_found_once_and_spans_after_now_are_not_read() {
    const SECOND: i64 = 1_000_000_000;
    let data = tempfile::tempdir().unwrap();
    import_received(&fixtures().join("orphaned_span.json"), data.path(), SECOND, "settled");
    import_received(&fixtures().join("premature_end.json"), data.path(), 10 * SECOND, "recent");
    let traces_of = |file: &'static str| async move {
        let alone = tempfile::tempdir().unwrap();
        import(&fixtures().join(file), alone.path());
        let analysis = Analysis::open(AnalysisOptions::batch(alone.path())).await.unwrap();
        count(&analysis, "SELECT count(DISTINCT trace_id) FROM spans").await
    };
    let (settled, recent) = (traces_of("orphaned_span.json").await, traces_of("premature_end.json").await);
    let spans_of_settled = {
        let alone = tempfile::tempdir().unwrap();
        import(&fixtures().join("orphaned_span.json"), alone.path());
        count(&Analysis::open(AnalysisOptions::batch(alone.path())).await.unwrap(), "SELECT count(*) FROM spans").await
    };
    let live = |now_nano: i64| AnalysisOptions {
        settle: Some(std::time::Duration::from_secs(5)),
        now_nano,
        ..AnalysisOptions::batch(data.path())
    };
    // Now = 12 s: the recent spans (10 s) are within the 5 s settle time.
    let analysis = Analysis::open(live(12 * SECOND)).await.unwrap();
    assert_eq!(count(&analysis, "SELECT count(DISTINCT trace_id) FROM spans").await, settled);
    assert_eq!(count(&analysis, "SELECT count(*) FROM pending_traces").await, recent);
    let plan = analysis.context().sql("SELECT * FROM spans").await.unwrap().create_physical_plan().await.unwrap();
    let text = displayable(plan.as_ref()).indent(false).to_string();
    assert!(!text.contains("AggregateExec") && !text.contains("HashJoinExec: mode=Partitioned"), "{text}");
    // Now = 8 s: the recent spans arrived after now; they are not read, and their traces wait.
    let analysis = Analysis::open(live(8 * SECOND)).await.unwrap();
    assert_eq!(count(&analysis, "SELECT count(*) FROM spans").await, spans_of_settled);
    assert_eq!(count(&analysis, "SELECT count(*) FROM pending_traces").await, recent);
    // Now = 20 s: everything settled.
    let analysis = Analysis::open(live(20 * SECOND)).await.unwrap();
    assert_eq!(count(&analysis, "SELECT count(DISTINCT trace_id) FROM spans").await, settled + recent);
    assert_eq!(count(&analysis, "SELECT count(*) FROM pending_traces").await, 0);
}

/// The findings on a fixture, read from the files; the same findings must come from the spans
/// kept in memory.
async fn findings_of(name: &str) -> Vec<String> {
    let data = tempfile::tempdir().unwrap();
    import(&fixtures().join(format!("{name}.json")), data.path());
    let analysis = Analysis::open(AnalysisOptions::batch(data.path())).await.unwrap();
    let catalog = load_catalog(None).unwrap();
    let from_files = finding_lines(&analysis, &catalog).await;
    let in_memory = keep_spans_in_memory(&analysis, &catalog).await.unwrap();
    assert!(in_memory.is_active(), "a fixture fits in memory");
    assert_eq!(finding_lines(&analysis, &catalog).await, from_files, "{name}: from memory and from files");
    from_files
}

async fn finding_lines(analysis: &Analysis, catalog: &Catalog) -> Vec<String> {
    let mut lines: Vec<String> = run_checks(analysis, catalog)
        .await
        .unwrap()
        .into_iter()
        .map(|f| {
            format!(
                "{} {} {} {}",
                f.check,
                f.trace_id.unwrap_or_default(),
                f.span_id.unwrap_or_default(),
                f.explanation
            )
        })
        .collect();
    lines.sort();
    lines
}

fn expected(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixtures().join(format!("{name}.expected"))).unwrap();
    let mut lines: Vec<String> = text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect();
    lines.sort();
    lines
}

macro_rules! fixture_test {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread")]
        async fn $name() {
            assert_eq!(findings_of(stringify!($name)).await, expected(stringify!($name)));
        }
    };
}

fixture_test!(orphaned_span);
fixture_test!(missing_parent);
fixture_test!(invalid_id);
fixture_test!(duplicate_span_id);
fixture_test!(premature_end);
fixture_test!(unpropagated_call);
fixture_test!(broken_b3);
fixture_test!(broken_gts);

/// A batch as schema version 3 stored it: every raw id filled in, the ids of normal length too
/// (version 4 leaves those null), and no `linked_spans` (version 5 added it).
fn as_schema_version_3(batch: &arrow::array::RecordBatch) -> arrow::array::RecordBatch {
    use arrow::array::{Array, AsArray, BinaryArray};
    use arrow::datatypes::UInt64Type;
    let column = |name: &str| batch.column_by_name(name).unwrap().clone();
    let span_bytes = |values: &dyn Array, row: usize| -> Vec<u8> {
        let ids = values.as_primitive::<UInt64Type>();
        if ids.is_null(row) { Vec::new() } else { ids.value(row).to_be_bytes().to_vec() }
    };
    let filled = |raw_name: &str, normal: &dyn Fn(usize) -> Vec<u8>| -> Arc<dyn Array> {
        let raw = column(raw_name);
        let raw = raw.as_binary::<i32>();
        let values: Vec<Vec<u8>> =
            (0..raw.len()).map(|row| if raw.is_null(row) { normal(row) } else { raw.value(row).to_vec() }).collect();
        Arc::new(BinaryArray::from_iter_values(values))
    };
    let trace_ids = column("trace_id");
    let (span_ids, parent_ids) = (column("span_id"), column("parent_span_id"));
    let mut columns = batch.columns().to_vec();
    let schema = batch.schema();
    for (index, field) in schema.fields().iter().enumerate() {
        columns[index] = match field.name().as_str() {
            "trace_id_raw" => filled("trace_id_raw", &|row| trace_ids.as_fixed_size_binary().value(row).to_vec()),
            "span_id_raw" => filled("span_id_raw", &|row| span_bytes(span_ids.as_ref(), row)),
            "parent_span_id_raw" => filled("parent_span_id_raw", &|row| span_bytes(parent_ids.as_ref(), row)),
            _ => continue,
        };
    }
    let kept: Vec<usize> = (0..columns.len()).filter(|&index| schema.field(index).name() != "linked_spans").collect();
    assert_eq!(kept.len() + 1, columns.len(), "version 5 has linked_spans");
    let schema = Arc::new(schema.project(&kept).unwrap());
    arrow::array::RecordBatch::try_new(schema, kept.iter().map(|&index| columns[index].clone()).collect()).unwrap()
}

/// Writes a batch into one span file with the batch's own columns, as an older tracegap wrote it
/// (ingest writes the current schema only).
fn write_with_own_schema(batch: &arrow::array::RecordBatch, spans: &Path) {
    let directory = spans.join("date=2026-01-01").join("hour=00");
    std::fs::create_dir_all(&directory).unwrap();
    let file = std::fs::File::create(directory.join("old.parquet")).unwrap();
    let mut writer = datafusion::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

/// Files written before schema version 4 hold every id as received, also the ids stored once
/// since, and files written before version 5 have no `linked_spans` (derived from `links` on
/// reading, `analyze/src/linked_spans.rs`): every fixture gives the same findings from such files,
/// `orphaned_span`'s `child_of` links included.
#[tokio::test(flavor = "multi_thread")]
async fn files_of_schema_version_3_give_the_same_findings() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|entry| entry.unwrap().file_name().to_str()?.strip_suffix(".expected").map(str::to_owned))
        .collect();
    names.sort();
    assert!(names.len() >= 8, "every check's fixture: {names:?}");
    for name in &names {
        let data = tempfile::tempdir().unwrap();
        let batch = decode(&fixtures().join(format!("{name}.json")), 1);
        let raw_nulls = |batch: &arrow::array::RecordBatch| batch.column_by_name("span_id_raw").unwrap().null_count();
        let old = as_schema_version_3(&batch);
        assert!(
            raw_nulls(&batch) > 0 && raw_nulls(&old) == 0,
            "{name}: version 4 leaves normal ids out, version 3 not"
        );
        write_with_own_schema(&old, &data.path().join(SPANS_DIRECTORY));
        let analysis = Analysis::open(AnalysisOptions::batch(data.path())).await.unwrap();
        let catalog = load_catalog(None).unwrap();
        assert_eq!(finding_lines(&analysis, &catalog).await, expected(name), "{name}, stored as version 3");
    }
}

/// No built-in check or view is planned with a window over whole partitions: DataFusion 55's
/// `WindowAggExec` holds all of its input outside the memory pool until the input ends (in
/// `missing_parent` on 100M spans, 8 GB within seconds).
#[tokio::test(flavor = "multi_thread")]
async fn no_check_holds_a_whole_window_in_memory() {
    let data = tempfile::tempdir().unwrap();
    import(&fixtures().join("missing_parent.json"), data.path());
    let analysis = Analysis::open(AnalysisOptions::batch(data.path())).await.unwrap();
    let catalog = load_catalog(None).unwrap();
    register_views(&analysis, &catalog.views).await.unwrap();
    let queries = catalog.checks.iter().map(|c| (&c.id, finding_query(&c.sql)));
    for (name, sql) in queries.chain(catalog.views.iter().map(|v| (&v.name, v.sql.clone()))) {
        let plan = analysis.context().sql(&sql).await.unwrap().create_physical_plan().await.unwrap();
        let text = displayable(plan.as_ref()).indent(false).to_string();
        assert!(!text.lines().any(|line| line.trim_start().starts_with("WindowAggExec")), "{name}:\n{text}");
    }
}

/// Text of the physical plan of a check.
async fn plan_of(analysis: &Analysis, check: &str) -> String {
    let catalog = load_catalog(None).unwrap();
    let check = catalog.checks.iter().find(|c| c.id == check).unwrap();
    let plan = analysis.context().sql(&finding_query(&check.sql)).await.unwrap().create_physical_plan().await.unwrap();
    displayable(plan.as_ref()).indent(false).to_string()
}

async fn span_count(analysis: &Analysis) -> usize {
    let batches = analysis.context().sql("SELECT span_id FROM spans").await.unwrap().collect().await.unwrap();
    batches.iter().map(|batch| batch.num_rows()).sum()
}

/// While the copy is held, the checks read memory, and the memory pool counts it; once dropped,
/// the checks read the files again and the pool is free.
#[tokio::test(flavor = "multi_thread")]
async fn checks_read_the_spans_kept_in_memory_while_they_are_held() {
    let data = tempfile::tempdir().unwrap();
    import(&fixtures().join("orphaned_span.json"), data.path());
    let analysis = Analysis::open(AnalysisOptions::batch(data.path())).await.unwrap();
    let catalog = load_catalog(None).unwrap();
    let pool = analysis.context().runtime_env().memory_pool.clone();
    register_views(&analysis, &catalog.views).await.unwrap();
    assert!(plan_of(&analysis, "orphaned_span").await.contains("file_type=parquet"));
    let from_files = span_count(&analysis).await;
    let in_memory = keep_spans_in_memory(&analysis, &catalog).await.unwrap();
    assert!(in_memory.is_active());
    assert!(in_memory.bytes > 0);
    assert!(pool.reserved() >= in_memory.bytes, "{} reserved, {} held", pool.reserved(), in_memory.bytes);
    for column in ["trace_id", "span_id", "parent_span_id", "linked_spans", "host_ip"] {
        assert!(in_memory.columns.iter().any(|c| c == column), "{column} in {:?}", in_memory.columns);
    }
    for column in ["attributes", "links"] {
        assert!(!in_memory.columns.iter().any(|c| c == column), "no check reads {column}");
    }
    let plan = plan_of(&analysis, "orphaned_span").await;
    assert!(!plan.contains("file_type=parquet"), "{plan}");
    // Read in more partitions than the queries use, the copy is handed to them in as many as the
    // session has, every span in it.
    let partitions = analysis.context().state().config().target_partitions();
    assert!(plan.contains(&format!("DataSourceExec: partitions={partitions},")), "{plan}");
    assert_eq!(span_count(&analysis).await, from_files, "every span, from the copy");
    drop(in_memory);
    assert_eq!(pool.reserved(), 0);
    assert!(plan_of(&analysis, "orphaned_span").await.contains("file_type=parquet"));
}

/// A query asking for a column that is not in the copy reads the files, with the copy held.
#[tokio::test(flavor = "multi_thread")]
async fn columns_outside_the_copy_are_read_from_the_files() {
    let data = tempfile::tempdir().unwrap();
    import(&fixtures().join("broken_b3.json"), data.path());
    let analysis = Analysis::open(AnalysisOptions::batch(data.path())).await.unwrap();
    let catalog = load_catalog(None).unwrap();
    let count = |sql: &'static str| {
        let analysis = &analysis;
        async move {
            let batches = analysis.context().sql(sql).await.unwrap().collect().await.unwrap();
            batches.iter().map(|b| b.num_rows()).sum::<usize>()
        }
    };
    let sql = "SELECT span_id, attributes, scope_name FROM spans WHERE cardinality(map_keys(attributes)) >= 0";
    let from_files = count(sql).await;
    assert!(from_files > 0);
    let in_memory = keep_spans_in_memory(&analysis, &catalog).await.unwrap();
    assert!(in_memory.is_active());
    assert_eq!(count(sql).await, from_files);
    assert_eq!(count("SELECT * FROM spans").await, from_files);
    assert_eq!(count("SELECT trace_id FROM spans").await, from_files);
}

/// Spans that do not fit in the copy's budget stay in the files: nothing is held, the pool is
/// free, and the findings are those of the files.
#[tokio::test(flavor = "multi_thread")]
async fn spans_over_the_budget_are_not_kept() {
    let data = tempfile::tempdir().unwrap();
    import(&fixtures().join("missing_parent.json"), data.path());
    let analysis = Analysis::open(AnalysisOptions::batch(data.path())).await.unwrap();
    let catalog = load_catalog(None).unwrap();
    let from_files = finding_lines(&analysis, &catalog).await;
    let in_memory = keep_spans_in_memory_up_to(&analysis, &catalog, 1024).await.unwrap();
    assert!(!in_memory.is_active());
    assert_eq!(in_memory.bytes, 0);
    assert_eq!(analysis.context().runtime_env().memory_pool.reserved(), 0);
    assert!(plan_of(&analysis, "missing_parent").await.contains("file_type=parquet"));
    assert_eq!(finding_lines(&analysis, &catalog).await, from_files);
}

/// The completeness figures match the findings: a trace is judged once, broken when a break
/// finding names it (by its hex id), and per service it counts in every service it passes.
#[tokio::test(flavor = "multi_thread")]
async fn completeness_counts_each_trace_once_and_every_broken_trace() {
    let data = tempfile::tempdir().unwrap();
    import(&fixtures().join("unpropagated_call.json"), data.path());
    import(&fixtures().join("orphaned_span.json"), data.path());
    let analysis = Analysis::open(AnalysisOptions::batch(data.path())).await.unwrap();
    let catalog = load_catalog(None).unwrap();
    let findings = run_checks(&analysis, &catalog).await.unwrap();
    let summary = tracegap_analyze::completeness::completeness(&analysis, &findings).await.unwrap();

    let broken: std::collections::BTreeSet<_> =
        findings.iter().filter(|f| f.is_break).filter_map(|f| f.trace_id.clone()).collect();
    assert!(!broken.is_empty());
    let pairs = analysis
        .collect("SELECT DISTINCT service_name, hex_id(trace_id) FROM spans WHERE trace_id IS NOT NULL")
        .await
        .unwrap();
    let mut traces = std::collections::BTreeSet::new();
    let mut per_service = std::collections::BTreeMap::<String, (i64, i64)>::new();
    for batch in &pairs {
        let services = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        let ids = arrow::compute::cast(batch.column(1), &arrow::datatypes::DataType::Utf8).unwrap();
        let (services, ids) = (
            services.as_any().downcast_ref::<arrow::array::StringArray>().unwrap(),
            ids.as_any().downcast_ref::<arrow::array::StringArray>().unwrap(),
        );
        for row in 0..batch.num_rows() {
            let id: Box<str> = Box::from(ids.value(row));
            let entry = per_service.entry(services.value(row).to_owned()).or_default();
            entry.0 += 1;
            entry.1 += i64::from(broken.contains(&id));
            traces.insert(id);
        }
    }
    assert_eq!(summary.judged_traces, traces.len() as i64);
    assert_eq!(summary.broken_traces, traces.intersection(&broken).count() as i64);
    assert_eq!(summary.by_minute.iter().map(|row| row.traces).sum::<i64>(), summary.judged_traces);
    let by_service: std::collections::BTreeMap<_, _> =
        summary.by_service.iter().map(|row| (row.key.clone(), (row.traces, row.broken))).collect();
    assert_eq!(by_service, per_service);
}

/// How many times [`count_spans_not_fitting`] was called.
static SPANS_NOT_FITTING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count_spans_not_fitting() {
    SPANS_NOT_FITTING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// An analysis tells the binary, through `when_spans_do_not_fit`, that its spans do not fit
/// under the memory limit, before its checks run, whichever command took it (`check`, or a
/// snapshot for `report` and the dashboard); spans that fit say nothing.
#[tokio::test(flavor = "multi_thread")]
async fn an_analysis_says_when_its_spans_do_not_fit() {
    let data = tempfile::tempdir().unwrap();
    import(&fixtures().join("orphaned_span.json"), data.path());
    let catalog = load_catalog(None).unwrap();
    let options =
        AnalysisOptions { when_spans_do_not_fit: Some(count_spans_not_fitting), ..AnalysisOptions::batch(data.path()) };
    let calls = || SPANS_NOT_FITTING.load(std::sync::atomic::Ordering::SeqCst);
    let (snapshot, analysis) = tracegap_analyze::take_snapshot(options, &catalog).await.unwrap();
    assert!(!snapshot.findings.is_empty());
    assert_eq!(calls(), 0, "the fixture fits in the default limit");
    let in_memory = keep_spans_in_memory_up_to(&analysis, &catalog, 1024).await.unwrap();
    assert!(!in_memory.is_active());
    assert_eq!(calls(), 1);
}
