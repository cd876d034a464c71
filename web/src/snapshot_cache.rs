//! Snapshots per window, computed once and shared by every page, API call and scrape.
//!
//! Analysing a window takes from milliseconds to minutes, pages must answer in milliseconds: a
//! page is served from the last snapshot of its window, and a snapshot older than the refresh
//! interval is recomputed in the background (stale while revalidating). Only the first request
//! for a window waits, and a request finding a snapshot much older than the refresh interval
//! (nobody looked for a while) waits for a new one rather than showing old news. One analysis runs
//! at a time, so memory stays within one session's limit, and analyses run on their own threads,
//! so a long one never delays OTLP ingest or the pages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tracegap_analyze::session::now_nano;
use tracegap_analyze::trace_spans::{TraceSpans, trace_spans};
use tracegap_analyze::{Analysis, AnalysisOptions, Catalog, Snapshot, take_snapshot};

use crate::WebError;
use crate::window::Window;

/// Most windows kept; custom ranges beyond it push out the least recently used.
const MOST_WINDOWS: usize = 16;

/// A snapshot with the session it was computed in (for trace lookups and the SQL box).
pub struct Computed {
    /// The window.
    pub window: Window,
    /// What the checks found.
    pub snapshot: Snapshot,
    /// The session, with `findings` registered.
    pub analysis: Analysis,
    computed: Instant,
}

impl Computed {
    /// Wraps a snapshot computed elsewhere (the report command).
    pub fn new(window: Window, snapshot: Snapshot, analysis: Analysis) -> Computed {
        Computed { window, snapshot, analysis, computed: Instant::now() }
    }
}

#[derive(Default)]
struct Slot {
    current: Option<Arc<Computed>>,
    refreshing: bool,
    used: Option<Instant>,
}

/// The snapshots, per window.
pub struct SnapshotCache {
    base: AnalysisOptions,
    runtime: tokio::runtime::Handle,
    catalog: Arc<Catalog>,
    refresh: Duration,
    slots: Mutex<HashMap<Window, Slot>>,
    one_at_a_time: Semaphore,
}

impl SnapshotCache {
    /// A cache over `base`'s data directory and settings (its window is replaced per request).
    pub fn new(base: AnalysisOptions, catalog: Arc<Catalog>, refresh: Duration) -> SnapshotCache {
        SnapshotCache {
            base,
            runtime: analysis_runtime(),
            catalog,
            refresh,
            slots: Mutex::new(HashMap::new()),
            one_at_a_time: Semaphore::new(1),
        }
    }

    /// Runs DataFusion work on the analysis threads.
    pub async fn run<F>(&self, work: F) -> Result<F::Output, WebError>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(work).await.map_err(|error| WebError::Unavailable(format!("analysis stopped: {error}")))
    }

    /// The spans of a trace, from every stored file as of now (not as of the snapshot).
    pub async fn trace_spans(&self, trace_id: &str, max_spans: usize) -> Result<TraceSpans, WebError> {
        let mut options = self.base.clone();
        (options.since_nano, options.until_nano, options.settle) = (None, None, None);
        let trace_id = trace_id.to_owned();
        self.run(async move {
            let analysis = Analysis::open(options).await?;
            trace_spans(&analysis, &trace_id, max_spans).await
        })
        .await?
        .map_err(WebError::Analysis)
    }

    /// The catalogue the snapshots are computed with.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The snapshot of `window`: the current one (refreshed in the background when old), or a
    /// new one when there is none yet.
    pub async fn get(self: &Arc<Self>, window: &Window) -> Result<Arc<Computed>, WebError> {
        let stale = {
            let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let slot = slots.entry(window.clone()).or_default();
            slot.used = Some(Instant::now());
            match &slot.current {
                Some(current) if current.computed.elapsed() > self.longest_staleness() => None,
                Some(current) => {
                    let old = current.computed.elapsed() >= self.refresh;
                    if old && !slot.refreshing {
                        slot.refreshing = true;
                        Some((current.clone(), true))
                    } else {
                        Some((current.clone(), false))
                    }
                }
                None => None,
            }
        };
        match stale {
            Some((current, refresh)) => {
                if refresh {
                    let cache = self.clone();
                    let window = window.clone();
                    tokio::spawn(async move {
                        if let Err(error) = cache.compute(&window).await {
                            tracing::warn!(%error, window = %window.label(), "refreshing the dashboard's snapshot failed");
                        }
                    });
                }
                Ok(current)
            }
            None => self.compute(window).await,
        }
    }

    /// Computes the snapshot of `window` now and keeps it.
    pub async fn compute(&self, window: &Window) -> Result<Arc<Computed>, WebError> {
        let _turn = self.one_at_a_time.acquire().await.map_err(|_| WebError::Unavailable("shutting down".into()))?;
        // Another request may have computed it while this one waited.
        if let Some(current) = self.fresh(window) {
            return Ok(current);
        }
        let mut options = self.base.clone();
        options.now_nano = now_nano();
        (options.since_nano, options.until_nano) = window.bounds(options.now_nano);
        let catalog = self.catalog.clone();
        let started = Instant::now();
        let result = self.run(async move { take_snapshot(options, &catalog).await }).await?;
        match &result {
            Ok((snapshot, _)) => tracing::info!(
                window = %window.label(),
                spans = snapshot.window_spans,
                findings = snapshot.findings.len(),
                seconds = started.elapsed().as_secs_f64(),
                "analysed the window"
            ),
            Err(error) => tracing::warn!(window = %window.label(), %error, "analysing the window failed"),
        }
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = slots.entry(window.clone()).or_default();
        slot.refreshing = false;
        let (snapshot, analysis) = result.map_err(WebError::Analysis)?;
        let computed = Arc::new(Computed::new(window.clone(), snapshot, analysis));
        slot.current = Some(computed.clone());
        if slots.len() > MOST_WINDOWS {
            let oldest =
                slots.iter().filter(|(w, _)| *w != window).min_by_key(|(_, slot)| slot.used).map(|(w, _)| w.clone());
            if let Some(oldest) = oldest {
                slots.remove(&oldest);
            }
        }
        Ok(computed)
    }

    /// Past this age a snapshot is not shown while a new one is computed: the request waits.
    fn longest_staleness(&self) -> Duration {
        (self.refresh * 6).max(Duration::from_secs(60))
    }

    fn fresh(&self, window: &Window) -> Option<Arc<Computed>> {
        let slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = slots.get(window)?.current.as_ref()?;
        (current.computed.elapsed() < self.refresh).then(|| current.clone())
    }
}

/// A runtime for DataFusion alone, on threads of its own, kept for the life of the process.
fn analysis_runtime() -> tokio::runtime::Handle {
    let (handle_sender, handle_receiver) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().name("tracegap-analysis".into()).spawn(move || {
        let threads = std::thread::available_parallelism().map(usize::from).unwrap_or(2);
        match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("tracegap-analysis-worker")
            .enable_all()
            .build()
        {
            Ok(runtime) => {
                let _ = handle_sender.send(Some(runtime.handle().clone()));
                runtime.block_on(std::future::pending::<()>());
            }
            Err(_) => {
                let _ = handle_sender.send(None);
            }
        }
    });
    match spawned.ok().and_then(|_| handle_receiver.recv().ok().flatten()) {
        Some(handle) => handle,
        // No thread or runtime of its own: share the caller's.
        None => tokio::runtime::Handle::current(),
    }
}
