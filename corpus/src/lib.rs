//! A deterministic, seeded generator of synthetic microservice traffic: healthy traces, the
//! legitimate cases that must not be flagged (fire-and-forget work, messaging with links, Zipkin
//! shared span ids, clock skew on another host), and every kind of propagation break tracegap
//! checks for, each labelled with the findings it must produce.
//!
//! The shop: `frontend` → `checkout` (HTTP) → `payments` (gRPC), `redis` (a database), and a
//! Kafka topic consumed by `shipping` (a linked CONSUMER span in its own trace).
//!
//! The random numbers come from a SplitMix64 written here rather than the `rand` crate: the corpus
//! must stay byte-identical across versions of every dependency, and `rand` does not promise a
//! stable stream for its default generators.

pub mod dump_writers;
mod scenario;
mod traffic;

pub use scenario::{Scenario, ScenarioMix};
pub use traffic::{Corpus, CorpusOptions, Label, generate};

/// SplitMix64: tiny, fast, and stable forever.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }
}
