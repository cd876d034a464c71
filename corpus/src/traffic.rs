//! Traffic: traces built from the shop's call template, with one scenario applied each, grouped
//! into OTLP export requests, and the labels of the findings each break must produce.

use bytes::Bytes;
use tracegap_ingest::foreign_spans::{attribute, kind, string_attribute};
use tracegap_ingest::otlp_messages::{
    ExportRequest, InstrumentationScope, KeyValue, Link, Resource, ResourceSpans, ScopeSpans, Span, Value,
};

use crate::SplitMix64;
use crate::scenario::{Scenario, ScenarioMix};

const MS: u64 = 1_000_000;
/// `HAS_IS_REMOTE | IS_REMOTE | sampled`: a server span whose parent is in another process.
const REMOTE_PARENT_FLAGS: u32 = 0x300 | 1;
/// `HAS_IS_REMOTE | sampled`: a span whose parent is local (or a root).
const LOCAL_PARENT_FLAGS: u32 = 0x100 | 1;

/// What to generate.
#[derive(Debug, Clone)]
pub struct CorpusOptions {
    /// Seed: the same seed gives the same corpus.
    pub seed: u64,
    /// Number of traces (scenarios; some write two traces).
    pub traces: usize,
    /// Start time of the first trace, ns since the epoch.
    pub start_nano: u64,
    /// Time between two traces.
    pub interval_nano: u64,
    /// Traces per export request.
    pub traces_per_request: usize,
    /// How often each scenario is drawn.
    pub mix: ScenarioMix,
    /// Keep the labels (a benchmark corpus of millions of traces does not need them).
    pub keep_labels: bool,
}

impl Default for CorpusOptions {
    fn default() -> Self {
        CorpusOptions {
            seed: 42,
            traces: 1000,
            start_nano: 1_764_000_000_000_000_000,
            interval_nano: 10 * MS,
            traces_per_request: 100,
            mix: ScenarioMix::default(),
            keep_labels: true,
        }
    }
}

/// A finding the corpus must produce: check id, trace id and span id in lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    /// The check that must find it.
    pub check: &'static str,
    /// The trace (lowercase hex, as findings show it).
    pub trace_id: String,
    /// The span (16 lowercase hex digits).
    pub span_id: String,
    /// The scenario that injected it.
    pub scenario: Scenario,
}

/// What [`generate`] made.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    /// The labels of every injected break.
    pub labels: Vec<Label>,
    /// Spans written.
    pub spans: usize,
    /// Traces per scenario drawn.
    pub scenarios: std::collections::BTreeMap<Scenario, usize>,
}

/// Generates the corpus, handing each export request to `sink` as it is complete.
pub fn generate(options: &CorpusOptions, mut sink: impl FnMut(ExportRequest)) -> Corpus {
    let mut random = SplitMix64::new(options.seed);
    let mut corpus = Corpus::default();
    let mut request = RequestBuilder::default();
    let total = options.mix.total();
    for index in 0..options.traces {
        let scenario = options.mix.pick(random.below(total));
        *corpus.scenarios.entry(scenario).or_default() += 1;
        let start = options.start_nano + index as u64 * options.interval_nano;
        let mut labels = Vec::new();
        write_scenario(scenario, start, &mut random, &mut request, &mut labels);
        if options.keep_labels {
            corpus.labels.extend(labels);
        }
        if (index + 1) % options.traces_per_request.max(1) == 0 {
            corpus.spans += request.spans;
            sink(request.finish());
        }
    }
    if request.spans > 0 {
        corpus.spans += request.spans;
        sink(request.finish());
    }
    corpus
}

/// The shop's services, with their process identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Frontend,
    Checkout,
    Payments,
    Shipping,
    Batch,
}

impl Service {
    const ALL: [Service; 5] =
        [Service::Frontend, Service::Checkout, Service::Payments, Service::Shipping, Service::Batch];

    fn name(self) -> &'static str {
        match self {
            Service::Frontend => "frontend",
            Service::Checkout => "checkout",
            Service::Payments => "payments",
            Service::Shipping => "shipping",
            Service::Batch => "batch",
        }
    }

    fn resource(self) -> Resource {
        let name = self.name();
        Resource {
            attributes: vec![
                string_attribute("service.name", name),
                string_attribute("service.instance.id", &format!("{name}-7d9f-1")),
                string_attribute("host.name", &format!("{name}-host-1")),
            ],
            dropped_attributes_count: 0,
        }
    }
}

/// Spans of one export request, by service.
#[derive(Default)]
struct RequestBuilder {
    by_service: [Vec<Span>; 5],
    spans: usize,
}

impl RequestBuilder {
    fn add(&mut self, service: Service, span: Span) {
        let index = Service::ALL.iter().position(|s| *s == service).unwrap_or(0);
        self.by_service[index].push(span);
        self.spans += 1;
    }

    fn finish(&mut self) -> ExportRequest {
        let mut request = ExportRequest::default();
        for (index, spans) in self.by_service.iter_mut().enumerate() {
            if spans.is_empty() {
                continue;
            }
            request.resource_spans.push(ResourceSpans {
                resource: Some(Service::ALL[index].resource()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: Bytes::from_static(b"tracegap-corpus"),
                        ..Default::default()
                    }),
                    spans: std::mem::take(spans),
                    schema_url: Bytes::new(),
                }],
                schema_url: Bytes::new(),
            });
        }
        self.spans = 0;
        request
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn trace_id(random: &mut SplitMix64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&(random.next_u64() | 1 << 63).to_be_bytes());
    id[8..].copy_from_slice(&random.next_u64().to_be_bytes());
    id
}

fn span_id(random: &mut SplitMix64) -> [u8; 8] {
    (random.next_u64() | 1).to_be_bytes()
}

/// One span of the template, before it is placed in a trace.
#[derive(Clone)]
struct Planned {
    service: Service,
    trace: [u8; 16],
    id: [u8; 8],
    parent: Option<[u8; 8]>,
    name: &'static str,
    kind: i32,
    start: u64,
    end: u64,
    attributes: Vec<KeyValue>,
    links: Vec<Link>,
    flags: u32,
}

impl Planned {
    fn span(&self) -> Span {
        Span {
            trace_id: Bytes::copy_from_slice(&self.trace),
            span_id: Bytes::copy_from_slice(&self.id),
            parent_span_id: self.parent.map(|p| Bytes::copy_from_slice(&p)).unwrap_or_default(),
            name: Bytes::from_static(self.name.as_bytes()),
            kind: self.kind,
            start_time_unix_nano: self.start,
            end_time_unix_nano: self.end,
            attributes: self.attributes.clone(),
            links: self.links.clone(),
            flags: self.flags,
            ..Default::default()
        }
    }

    fn label(&self, check: &'static str, scenario: Scenario) -> Label {
        Label { check, trace_id: hex(&self.trace), span_id: hex(&self.id), scenario }
    }
}

/// The shop's call template for one request starting at `t0`.
struct Shop {
    frontend_server: Planned,
    frontend_client: Planned,
    checkout_server: Planned,
    redis: Planned,
    payments_client: Planned,
    payments_server: Planned,
    produce: Planned,
    consume: Planned,
}

fn common_attributes(random: &mut SplitMix64) -> Vec<KeyValue> {
    vec![
        string_attribute("http.request.method", "POST"),
        attribute("http.response.status_code", Value::Int(200)),
        string_attribute("user.tier", ["free", "pro", "team"][random.below(3) as usize]),
        attribute("retry.count", Value::Int(random.below(3) as i64)),
        attribute("cart.items", Value::Int(1 + random.below(9) as i64)),
        attribute("sampling.priority", Value::Double(1.0)),
        attribute("feature.new_checkout", Value::Bool(random.below(2) == 0)),
        string_attribute("deployment.region", "eu-west-1"),
    ]
}

impl Shop {
    fn new(t0: u64, random: &mut SplitMix64) -> Shop {
        let trace = trace_id(random);
        let plan =
            |service, name, kind, parent: Option<[u8; 8]>, from: u64, to: u64, random: &mut SplitMix64| Planned {
                service,
                trace,
                id: span_id(random),
                parent,
                name,
                kind,
                start: t0 + from * MS,
                end: t0 + to * MS,
                attributes: common_attributes(random),
                links: Vec::new(),
                flags: LOCAL_PARENT_FLAGS,
            };
        let mut frontend_server = plan(Service::Frontend, "GET /checkout", kind::SERVER, None, 0, 100, random);
        frontend_server.attributes.push(string_attribute("http.route", "/checkout"));
        let mut frontend_client =
            plan(Service::Frontend, "POST", kind::CLIENT, Some(frontend_server.id), 5, 95, random);
        frontend_client.attributes.push(string_attribute("peer.service", "checkout"));
        let mut checkout_server =
            plan(Service::Checkout, "POST /orders", kind::SERVER, Some(frontend_client.id), 10, 90, random);
        checkout_server.flags = REMOTE_PARENT_FLAGS;
        checkout_server.attributes.push(string_attribute("http.route", "/orders"));
        checkout_server.attributes.push(string_attribute(
            "http.request.header.traceparent",
            &format!("00-{}-{}-01", hex(&trace), hex(&frontend_client.id)),
        ));
        let mut redis = plan(Service::Checkout, "GET", kind::CLIENT, Some(checkout_server.id), 15, 20, random);
        redis.attributes.push(string_attribute("db.system", "redis"));
        redis.attributes.push(string_attribute("server.address", "redis"));
        let mut payments_client =
            plan(Service::Checkout, "payments.Payments/Charge", kind::CLIENT, Some(checkout_server.id), 25, 60, random);
        payments_client.attributes.push(string_attribute("rpc.system", "grpc"));
        payments_client.attributes.push(string_attribute("server.address", "payments"));
        let mut payments_server =
            plan(Service::Payments, "payments.Payments/Charge", kind::SERVER, Some(payments_client.id), 30, 55, random);
        payments_server.flags = REMOTE_PARENT_FLAGS;
        payments_server.attributes.push(string_attribute("rpc.system", "grpc"));
        let mut produce =
            plan(Service::Checkout, "orders publish", kind::PRODUCER, Some(checkout_server.id), 65, 70, random);
        produce.attributes.push(string_attribute("messaging.system", "kafka"));
        produce.attributes.push(string_attribute("server.address", "kafka"));
        let mut consume = plan(Service::Shipping, "orders process", kind::CONSUMER, None, 200, 260, random);
        consume.trace = trace_id(random);
        consume.attributes.push(string_attribute("messaging.system", "kafka"));
        consume.links.push(Link {
            trace_id: Bytes::copy_from_slice(&produce.trace),
            span_id: Bytes::copy_from_slice(&produce.id),
            ..Default::default()
        });
        Shop {
            frontend_server,
            frontend_client,
            checkout_server,
            redis,
            payments_client,
            payments_server,
            produce,
            consume,
        }
    }

    /// Moves the checkout side (server, its children, payments) to another trace.
    fn move_checkout_side(&mut self, trace: [u8; 16]) {
        for span in [
            &mut self.checkout_server,
            &mut self.redis,
            &mut self.payments_client,
            &mut self.payments_server,
            &mut self.produce,
        ] {
            span.trace = trace;
        }
        self.consume.links[0].trace_id = Bytes::copy_from_slice(&trace);
    }

    fn spans(&self) -> Vec<&Planned> {
        vec![
            &self.frontend_server,
            &self.frontend_client,
            &self.checkout_server,
            &self.redis,
            &self.payments_client,
            &self.payments_server,
            &self.produce,
            &self.consume,
        ]
    }
}

fn write_scenario(
    scenario: Scenario,
    t0: u64,
    random: &mut SplitMix64,
    request: &mut RequestBuilder,
    labels: &mut Vec<Label>,
) {
    let mut shop = Shop::new(t0, random);
    let mut extra: Vec<Planned> = Vec::new();
    let mut omit_checkout_server = false;
    let mut label = |span: &Planned, check: &'static str| labels.push(span.label(check, scenario));
    match scenario {
        Scenario::Healthy => {}
        Scenario::FireAndForget => {
            // The PRODUCER outlives its parent (allowed: async), and an audit task is started with a
            // link to the request instead of as its child.
            shop.produce.end = shop.checkout_server.end + 40 * MS;
            let mut audit = shop.redis.clone();
            audit.trace = trace_id(random);
            audit.id = span_id(random);
            audit.parent = None;
            audit.name = "audit.write";
            audit.kind = kind::INTERNAL;
            audit.attributes = vec![string_attribute("audit.kind", "order")];
            audit.links.push(Link {
                trace_id: Bytes::copy_from_slice(&shop.checkout_server.trace),
                span_id: Bytes::copy_from_slice(&shop.checkout_server.id),
                ..Default::default()
            });
            audit.start = shop.checkout_server.end - 5 * MS;
            audit.end = shop.checkout_server.end + 50 * MS;
            extra.push(audit);
        }
        Scenario::ZipkinShared => {
            // The server shares the client's span id and names the client's parent.
            let shared = shop.frontend_client.id;
            let old = shop.checkout_server.id;
            shop.checkout_server.id = shared;
            shop.checkout_server.parent = Some(shop.frontend_server.id);
            shop.checkout_server.attributes.retain(|a| !a.key.starts_with(b"http.request.header"));
            shop.checkout_server.attributes.push(string_attribute(
                "http.request.header.b3",
                &format!("{}-{}-1-{}", hex(&shop.frontend_server.trace), hex(&shared), hex(&shop.frontend_server.id)),
            ));
            for child in [&mut shop.redis, &mut shop.payments_client, &mut shop.produce] {
                if child.parent == Some(old) {
                    child.parent = Some(shared);
                }
            }
        }
        Scenario::ClockSkew => {
            shop.payments_server.start -= 80 * MS;
            shop.payments_server.end -= 80 * MS;
            label(&shop.payments_server, "clock_skew");
        }
        Scenario::LostParent => {
            omit_checkout_server = true;
            label(&shop.redis, "orphaned_span");
            label(&shop.payments_client, "orphaned_span");
            label(&shop.produce, "orphaned_span");
        }
        Scenario::BackgroundRedis => {
            shop.redis.trace = trace_id(random);
            shop.redis.parent = None;
            label(&shop.redis, "missing_parent");
        }
        Scenario::UnextractedTraceparent | Scenario::UnpropagatedHttp | Scenario::UnextractedB3 => {
            let received_trace = shop.frontend_server.trace;
            shop.move_checkout_side(trace_id(random));
            shop.checkout_server.parent = None;
            shop.checkout_server.flags = LOCAL_PARENT_FLAGS;
            shop.checkout_server.attributes.retain(|a| !a.key.starts_with(b"http.request.header"));
            if scenario == Scenario::UnextractedTraceparent {
                shop.checkout_server.attributes.push(string_attribute(
                    "http.request.header.traceparent",
                    &format!("00-{}-{}-01", hex(&received_trace), hex(&shop.frontend_client.id)),
                ));
            }
            if scenario == Scenario::UnextractedB3 {
                let array = |text: String| {
                    Value::Array(tracegap_ingest::otlp_messages::ArrayValue {
                        values: vec![tracegap_ingest::otlp_messages::AnyValue {
                            value: Some(Value::String(Bytes::from(text))),
                        }],
                    })
                };
                shop.checkout_server
                    .attributes
                    .push(attribute("http.request.header.x-b3-traceid", array(hex(&received_trace))));
                shop.checkout_server
                    .attributes
                    .push(attribute("http.request.header.x-b3-spanid", array(hex(&shop.frontend_client.id))));
                shop.checkout_server.attributes.push(attribute("http.request.header.x-b3-sampled", array("1".into())));
                label(&shop.checkout_server, "broken_b3");
            }
            label(&shop.frontend_client, "unpropagated_call");
            label(&shop.checkout_server, "missing_parent");
        }
        Scenario::RewrittenB3 => {
            shop.checkout_server
                .attributes
                .push(string_attribute("http.request.header.x-b3-traceid", &hex(&shop.checkout_server.trace)));
            shop.checkout_server
                .attributes
                .push(string_attribute("http.request.header.x-b3-spanid", &hex(&span_id(random))));
            label(&shop.checkout_server, "broken_b3");
        }
        Scenario::SixtyFourBitSplit => {
            let mut narrow = [0u8; 16];
            narrow[8..].copy_from_slice(&shop.frontend_server.trace[8..]);
            shop.move_checkout_side(narrow);
            shop.checkout_server.attributes.retain(|a| !a.key.starts_with(b"http.request.header"));
            shop.checkout_server
                .attributes
                .push(string_attribute("http.request.header.x-b3-traceid", &hex(&narrow[8..])));
            shop.checkout_server
                .attributes
                .push(string_attribute("http.request.header.x-b3-spanid", &hex(&shop.frontend_client.id)));
            label(&shop.checkout_server, "broken_b3");
            label(&shop.checkout_server, "orphaned_span");
            label(&shop.frontend_client, "unpropagated_call");
        }
        Scenario::PrematureEnd => {
            let mut render = shop.redis.clone();
            render.id = span_id(random);
            render.name = "render";
            render.kind = kind::INTERNAL;
            render.attributes = vec![string_attribute("template", "order.html")];
            render.start = shop.checkout_server.end - 10 * MS;
            render.end = shop.checkout_server.end + 30 * MS;
            label(&render, "premature_end");
            extra.push(render);
        }
        Scenario::GtsSplit | Scenario::GtsWrongBranch => {
            let global = format!("gtx-{:016x}", random.next_u64());
            let branch = format!("br-{:08x}", random.below(1 << 32));
            for span in [&mut shop.checkout_server, &mut shop.redis, &mut shop.payments_client] {
                span.attributes.push(string_attribute("gts.global_tx_id", &global));
                span.attributes.push(string_attribute("gts.branch_tx_id", &branch));
            }
            let payments = &mut shop.payments_server;
            payments.attributes.push(string_attribute("gts.global_tx_id", &global));
            payments
                .attributes
                .push(string_attribute("gts.branch_tx_id", &format!("br-{:08x}", random.below(1 << 32))));
            if scenario == Scenario::GtsSplit {
                payments.attributes.push(string_attribute("gts.parent_branch_tx_id", &branch));
                payments.trace = trace_id(random);
                payments.parent = None;
                payments.flags = LOCAL_PARENT_FLAGS;
                label(&shop.payments_client, "unpropagated_call");
                label(&shop.payments_server, "missing_parent");
                label(&shop.payments_server, "broken_gts");
            } else {
                payments.attributes.push(string_attribute("gts.parent_branch_tx_id", "br-elsewhere"));
                label(&shop.payments_server, "broken_gts");
            }
        }
        Scenario::ZeroSpanId => {
            shop.redis.id = [0; 8];
            label(&shop.redis, "invalid_id");
        }
        Scenario::DuplicateSpan => {
            extra.push(shop.redis.clone());
            label(&shop.redis, "duplicate_span_id");
        }
        Scenario::ParentCycle => {
            let trace = trace_id(random);
            let (a, b) = (span_id(random), span_id(random));
            let mut first = shop.redis.clone();
            first.service = Service::Batch;
            first.trace = trace;
            first.kind = kind::INTERNAL;
            first.name = "reconcile";
            first.attributes = vec![string_attribute("job", "nightly")];
            first.id = a;
            first.parent = Some(b);
            let mut second = first.clone();
            second.id = b;
            second.parent = Some(a);
            second.start += MS;
            label(&first, "parent_cycle");
            extra.push(first);
            extra.push(second);
        }
    }
    for span in shop.spans() {
        if omit_checkout_server && std::ptr::eq(span, &shop.checkout_server) {
            continue;
        }
        request.add(span.service, span.span());
    }
    for span in extra {
        request.add(span.service, span.span());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_corpus() {
        let options = CorpusOptions { traces: 200, ..Default::default() };
        let mut first = Vec::new();
        let mut second = Vec::new();
        let a = generate(&options, |r| first.push(r));
        let b = generate(&options, |r| second.push(r));
        assert_eq!(first, second);
        assert_eq!(a.labels, b.labels);
        assert!(a.scenarios.len() > 10, "{:?}", a.scenarios);
    }
}
