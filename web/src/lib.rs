//! tracegap's web side: the dashboard pages, the JSON API behind them, the Prometheus metrics and
//! the self-contained HTML report. Everything shown comes from [`tracegap_analyze`]'s snapshots;
//! nothing is computed twice.
//!
//! - [`window`]: the time window a page asks for;
//! - [`snapshot_cache`]: one snapshot per window, refreshed in the background;
//! - [`api`]: the JSON API (`/api/…`), documented in `docs/api.md`;
//! - [`pages`]: the HTML shell and the embedded script and style that render the API;
//! - [`metrics`]: `/metrics`;
//! - [`security`]: the Content-Security-Policy and the optional bearer token;
//! - [`report`]: `tracegap report`'s single HTML file.

pub mod api;
pub mod ingest_counters;
pub mod metrics;
pub mod pages;
pub mod report;
pub mod security;
pub mod snapshot_cache;
pub mod window;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub use ingest_counters::{IngestCounters, IngestFigures};
pub use snapshot_cache::SnapshotCache;
pub use window::Window;

/// Settings of the dashboard.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The window shown when a page does not ask for one.
    pub default_window: Window,
    /// The window of `/metrics`.
    pub metrics_window: Window,
    /// A bearer token required on every page and API call, when set.
    pub token: Option<String>,
    /// Longest time a SQL box query may run.
    pub sql_timeout: Duration,
    /// Most rows a SQL box query returns.
    pub sql_max_rows: usize,
    /// Most spans the trace view loads.
    pub trace_max_spans: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            default_window: Window::Last(Duration::from_secs(3600)),
            metrics_window: Window::Last(Duration::from_secs(900)),
            token: None,
            sql_timeout: Duration::from_secs(10),
            sql_max_rows: 1000,
            trace_max_spans: 5000,
        }
    }
}

/// What every handler gets.
#[derive(Clone)]
pub struct WebState {
    /// Settings.
    pub config: Arc<WebConfig>,
    /// The snapshots.
    pub snapshots: Arc<SnapshotCache>,
    /// Live ingest counters, when the server also receives OTLP.
    pub ingest: Option<Arc<dyn IngestCounters>>,
    /// The ingest rate, sampled from the counters.
    pub ingest_rate: Arc<ingest_counters::IngestRate>,
}

impl WebState {
    /// State for a dashboard over `snapshots`, with live counters when given.
    pub fn new(config: WebConfig, snapshots: SnapshotCache, ingest: Option<Arc<dyn IngestCounters>>) -> WebState {
        WebState {
            config: Arc::new(config),
            snapshots: Arc::new(snapshots),
            ingest,
            ingest_rate: Arc::new(ingest_counters::IngestRate::default()),
        }
    }
}

/// The dashboard's routes: pages, `/api/…`, `/metrics`, with the security layers.
pub fn router(state: WebState) -> Router {
    let routes = Router::new().merge(pages::routes()).merge(api::routes()).merge(metrics::routes());
    security::secure(routes, state.clone()).with_state(state)
}

/// Serves the dashboard on `listener` until `shutdown` completes.
pub async fn serve_web(
    listener: tokio::net::TcpListener,
    state: WebState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

/// Errors answered to a request.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The request is wrong: which parameter, and why.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing with that id.
    #[error("{0}")]
    NotFound(String),
    /// The analysis failed.
    #[error("analysis failed: {0}")]
    Analysis(#[from] tracegap_analyze::AnalyzeError),
    /// The server cannot answer now.
    #[error("{0}")]
    Unavailable(String),
    /// A query ran past its time limit.
    #[error("{0}")]
    Timeout(String),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = match &self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Analysis(tracegap_analyze::AnalyzeError::Refused(_)) => StatusCode::BAD_REQUEST,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::Analysis(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        };
        (status, axum::Json(serde_json::json!({ "error": self.to_string() }))).into_response()
    }
}
