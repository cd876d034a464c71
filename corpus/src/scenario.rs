//! The kinds of trace the generator writes, and how often.

/// One kind of trace: healthy, legitimate-but-unusual, or one injected break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// Every call propagated.
    Healthy,
    /// Healthy, with fire-and-forget work: a PRODUCER that outlives its parent, and a background
    /// span started with a link instead of a parent.
    FireAndForget,
    /// Healthy, with the client and server of one call sharing a span id (Zipkin).
    ZipkinShared,
    /// Healthy, but the payments host's clock runs 80 ms behind: `clock_skew` (not a break).
    ClockSkew,
    /// The checkout SERVER span was never exported: its children are orphans.
    LostParent,
    /// A Redis call made on `context.Background()`: a CLIENT root.
    BackgroundRedis,
    /// checkout received `traceparent` but did not extract it.
    UnextractedTraceparent,
    /// frontend called checkout without the request context (no header sent).
    UnpropagatedHttp,
    /// checkout received B3 headers under a header name its propagator did not read.
    UnextractedB3,
    /// A proxy rewrote `X-B3-SpanId`: the server's parent is not the received span id.
    RewrittenB3,
    /// A B3 caller sent the 64-bit form of the trace id: the trace split in two.
    SixtyFourBitSplit,
    /// A render span outlived its synchronous parent in the same process.
    PrematureEnd,
    /// payments joined checkout's GTS global transaction under a new trace id.
    GtsSplit,
    /// payments' GTS branch names a parent branch that is not checkout's.
    GtsWrongBranch,
    /// A span with an all-zero span id.
    ZeroSpanId,
    /// One span exported twice under one id.
    DuplicateSpan,
    /// Two spans that name each other as parent.
    ParentCycle,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 17] = [
        Scenario::Healthy,
        Scenario::FireAndForget,
        Scenario::ZipkinShared,
        Scenario::ClockSkew,
        Scenario::LostParent,
        Scenario::BackgroundRedis,
        Scenario::UnextractedTraceparent,
        Scenario::UnpropagatedHttp,
        Scenario::UnextractedB3,
        Scenario::RewrittenB3,
        Scenario::SixtyFourBitSplit,
        Scenario::PrematureEnd,
        Scenario::GtsSplit,
        Scenario::GtsWrongBranch,
        Scenario::ZeroSpanId,
        Scenario::DuplicateSpan,
        Scenario::ParentCycle,
    ];
}

/// How often each scenario is drawn: weights, healthy traffic first.
#[derive(Debug, Clone)]
pub struct ScenarioMix {
    /// (scenario, weight).
    pub weights: Vec<(Scenario, u64)>,
}

impl Default for ScenarioMix {
    /// 80% healthy or legitimate traffic, 20% spread over the breaks.
    fn default() -> Self {
        let mut weights = vec![
            (Scenario::Healthy, 560),
            (Scenario::FireAndForget, 80),
            (Scenario::ZipkinShared, 80),
            (Scenario::ClockSkew, 80),
        ];
        let breaks = &Scenario::ALL[4..];
        weights.extend(breaks.iter().map(|s| (*s, 200 / breaks.len() as u64)));
        ScenarioMix { weights }
    }
}

impl ScenarioMix {
    /// The scenario for a draw in `0..total()`.
    pub fn pick(&self, mut draw: u64) -> Scenario {
        for (scenario, weight) in &self.weights {
            if draw < *weight {
                return *scenario;
            }
            draw -= weight;
        }
        Scenario::Healthy
    }

    /// The sum of the weights.
    pub fn total(&self) -> u64 {
        self.weights.iter().map(|(_, w)| w).sum()
    }
}
