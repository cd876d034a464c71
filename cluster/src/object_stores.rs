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
    use super::*;

    #[test]
    fn s3_settings_are_session_options() {
        let mut config = session_config();
        config.options_mut().set("s3.region", "eu-west-3").unwrap();
        let entries = config.options().entries();
        assert!(entries.iter().any(|e| e.key == "s3.region" && e.value.as_deref() == Some("eu-west-3")));
        assert!(runtime_env(&config, None).is_ok());
    }
}
