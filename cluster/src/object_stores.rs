//! Where cluster processes read span Parquet from: local paths (a filesystem every executor
//! shares), `s3://` buckets and `http(s)://` servers, through Ballista's object store registry.
//!
//! S3 credentials come from each process's `AWS_*` environment (the object store's own
//! discovery: keys, region, endpoint, instance roles). The client also forwards
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP` as the session's `s3.*` options, which Ballista
//! sends to the executors with each job.

use std::path::PathBuf;
use std::sync::Arc;

use ballista_core::extension::SessionConfigExt;
use ballista_core::object_store::{CustomObjectStoreRegistry, S3Options, session_config_with_s3_support};
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::SessionConfig;

use crate::codec::TracegapLogicalCodec;

/// Environment variables forwarded as `s3.*` session options, by option name.
const FORWARDED: [(&str, &[&str]); 6] = [
    ("access_key_id", &["AWS_ACCESS_KEY_ID"]),
    ("secret_access_key", &["AWS_SECRET_ACCESS_KEY"]),
    ("session_token", &["AWS_SESSION_TOKEN"]),
    ("region", &["AWS_REGION", "AWS_DEFAULT_REGION"]),
    ("endpoint", &["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]),
    ("allow_http", &["AWS_ALLOW_HTTP"]),
];

/// The session configuration of every cluster process: Ballista's, with the `s3.*` options and
/// tracegap's plan codec.
pub fn session_config() -> SessionConfig {
    let mut config = session_config_with_s3_support()
        .with_ballista_logical_extension_codec(Arc::new(TracegapLogicalCodec::default()));
    // Ballista 55's scheduler cannot rebuild an `InterleaveExec` once its inputs become shuffle
    // reads ("new children can not be interleaved") and the job then never ends: keep unions
    // as unions.
    config.options_mut().optimizer.prefer_existing_union = true;
    // The span files record that they are sorted by trace id, and with statistics on DataFusion
    // reads that order from them and plans hash repartitions that preserve it, for sort-merge
    // joins and sorted aggregates above them. Ballista 55's static planner turns each such
    // repartition into a shuffle whose reader concatenates the map outputs, unsorted, while the
    // operators above still expect order: a sort-merge join then silently missed rows
    // (`parent_cycle` found 330 of 440 loops on one executor). Without the file statistics no
    // order is known, and every sort is planned after the shuffle.
    config.options_mut().execution.collect_statistics = false;
    // Ballista 55's adaptive planner loses track of a stage it rolls back when an executor is
    // lost ("Can't find active stage to update stage outputs") and the job never ends; the
    // static planner runs the lost tasks again.
    config.with_ballista_adaptive_query_planner(false)
}

/// The client's session configuration: [`session_config`] with the S3 settings of its
/// environment, for the executors.
pub fn client_session_config() -> Result<SessionConfig> {
    let mut config = session_config();
    for (option, variables) in FORWARDED {
        if let Some(value) = variables.iter().find_map(|name| std::env::var(name).ok()).filter(|v| !v.is_empty()) {
            config.options_mut().set(&format!("s3.{option}"), &value)?;
        }
    }
    Ok(config)
}

/// A runtime for `config` reading through the object store registry, spilling under
/// `spill_directory` when given.
pub fn runtime_env(config: &SessionConfig, spill_directory: Option<PathBuf>) -> Result<Arc<RuntimeEnv>> {
    let s3 = config
        .options()
        .extensions
        .get::<S3Options>()
        .ok_or_else(|| DataFusionError::Configuration("the session has no s3 options".to_owned()))?;
    let mut builder =
        RuntimeEnvBuilder::new().with_object_store_registry(Arc::new(CustomObjectStoreRegistry::new(s3.clone())));
    if let Some(directory) = spill_directory {
        builder = builder.with_temp_file_path(directory);
    }
    builder.build_arc()
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::metadata::SortingColumn;
    use datafusion::parquet::file::properties::WriterProperties;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{ParquetReadOptions, SessionContext};

    use super::*;

    /// Writes two Parquet files sorted by `trace_id` that say so in their metadata, as ingest's do.
    fn write_sorted_spans(directory: &std::path::Path) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("trace_id", DataType::Int64, false),
            Field::new("parent_span_id", DataType::Int64, true),
        ]));
        let sorted = WriterProperties::builder()
            .set_sorting_columns(Some(vec![SortingColumn { column_idx: 0, descending: false, nulls_first: true }]))
            .build();
        for file in 0..2_i64 {
            let traces: Vec<i64> = (0..1000).map(|row| row / 4 * 2 + file).collect();
            let parents: Vec<Option<i64>> = (0..1000).map(|row| (row % 4 != 0).then_some(row)).collect();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from(traces)), Arc::new(Int64Array::from(parents))],
            )
            .unwrap();
            let out = std::fs::File::create(directory.join(format!("{file}.parquet"))).unwrap();
            let mut writer = ArrowWriter::try_new(out, schema.clone(), Some(sorted.clone())).unwrap();
            writer.write(&batch).unwrap();
            writer.close().unwrap();
        }
    }

    async fn physical_plan(config: SessionConfig, directory: &std::path::Path) -> String {
        let context = SessionContext::new_with_config(config);
        let path = format!("{}/", directory.display());
        context.register_parquet("spans", &path, ParquetReadOptions::default()).await.unwrap();
        // The shape of `rootless_spans`: a grouping by trace joined back to the spans by trace.
        let sql = "WITH rootless AS (SELECT trace_id, count(*) AS span_count FROM spans GROUP BY trace_id \
                   HAVING sum(CASE WHEN parent_span_id IS NULL THEN 1 ELSE 0 END) = 0) \
                   SELECT s.trace_id, r.span_count FROM rootless r JOIN spans s ON s.trace_id = r.trace_id";
        let plan = context.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
        displayable(plan.as_ref()).indent(true).to_string()
    }

    #[tokio::test]
    async fn cluster_plans_never_rely_on_the_files_being_sorted() {
        let directory = tempfile::tempdir().unwrap();
        write_sorted_spans(directory.path());
        // A Ballista shuffle concatenates its inputs: a repartition that "preserves order" does
        // not once it is cut into stages, and a sort-merge join above it misses rows.
        let plan = physical_plan(session_config(), directory.path()).await;
        assert!(plan.contains("SortMergeJoin"), "{plan}");
        assert!(!plan.contains("preserve_order=true"), "{plan}");
        // The same session with the files' statistics (and so their order) read, to show the
        // assertion above can fail.
        let mut reading_order = session_config();
        reading_order.options_mut().execution.collect_statistics = true;
        reading_order.options_mut().optimizer.hash_join_single_partition_threshold = 0;
        reading_order.options_mut().optimizer.hash_join_single_partition_threshold_rows = 0;
        let plan = physical_plan(reading_order, directory.path()).await;
        assert!(plan.contains("preserve_order=true"), "{plan}");
    }

    #[test]
    fn s3_settings_are_session_options() {
        let mut config = session_config();
        config.options_mut().set("s3.region", "eu-west-3").unwrap();
        let entries = config.options().entries();
        assert!(entries.iter().any(|e| e.key == "s3.region" && e.value.as_deref() == Some("eu-west-3")));
        assert!(runtime_env(&config, None).is_ok());
    }
}
