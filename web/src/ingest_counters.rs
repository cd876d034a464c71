//! Live ingest counters, read through a trait so the web crate does not depend on ingest: the
//! binary hands over whatever receives spans.

use serde::Serialize;

/// Totals since the server started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct IngestFigures {
    /// Export requests received.
    pub requests: u64,
    /// Requests refused as undecodable or invalid.
    pub requests_invalid: u64,
    /// Requests refused under back-pressure.
    pub requests_refused: u64,
    /// Request bytes received (as sent).
    pub bytes: u64,
    /// Spans accepted.
    pub spans_accepted: u64,
    /// Spans rejected (`partial_success`).
    pub spans_rejected: u64,
}

/// Something that counts what it received.
pub trait IngestCounters: Send + Sync {
    /// The totals now.
    fn figures(&self) -> IngestFigures;
}

/// Spans per second accepted, from two samples of the counters at least five seconds apart.
#[derive(Debug, Default)]
pub struct IngestRate {
    samples: std::sync::Mutex<RateSamples>,
}

#[derive(Debug, Default)]
struct RateSamples {
    last: Option<(std::time::Instant, u64)>,
    rate: f64,
}

impl IngestRate {
    /// Takes a sample of `spans_accepted` and returns the rate over the last interval.
    pub fn sample(&self, spans_accepted: u64) -> f64 {
        let now = std::time::Instant::now();
        let mut samples = self.samples.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match samples.last {
            None => samples.last = Some((now, spans_accepted)),
            Some((then, count)) => {
                let elapsed = now.duration_since(then).as_secs_f64();
                if elapsed >= 5.0 {
                    samples.rate = spans_accepted.saturating_sub(count) as f64 / elapsed;
                    samples.last = Some((now, spans_accepted));
                }
            }
        }
        samples.rate
    }
}
