//! The generated corpus (healthy traffic, legitimate oddities, every injected break): per check,
//! the findings are exactly the labelled breaks (precision = recall = 1.0); and the same corpus
//! written as an OTLP protobuf dump and imported gives the same findings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use prost::Message;
use tracegap_analyze::findings::run_checks;
use tracegap_analyze::{Analysis, AnalysisOptions, load_catalog};
use tracegap_corpus::dump_writers::{DumpKind, jaeger_json, otlp_json, write_record, zipkin_json};
use tracegap_corpus::{CorpusOptions, generate};
use tracegap_ingest::Source;
use tracegap_ingest::dump_import::{ImportObserver, ImportOptions, import_dumps};
use tracegap_ingest::parquet_files::{SPANS_DIRECTORY, write_partitioned};
use tracegap_ingest::span_batch::{BatchContext, build_span_batch};

type Key = (String, String, String);

async fn finding_keys(data: &Path) -> BTreeSet<Key> {
    let analysis = Analysis::open(AnalysisOptions::batch(data)).await.unwrap();
    let catalog = load_catalog(None).unwrap();
    run_checks(&analysis, &catalog)
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.check.to_string(), f.trace_id.unwrap_or_default().into(), f.span_id.unwrap_or_default().into()))
        .collect()
}

struct Silent;
impl ImportObserver for Silent {
    fn problem(&mut self, message: &str) {
        panic!("unexpected import problem: {message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_check_finds_exactly_the_injected_breaks_and_nothing_in_healthy_traffic() {
    let options = CorpusOptions { traces: 4000, seed: 7, ..Default::default() };
    let context = BatchContext { receive_time_nano: 1, source: Source::Import, gts_keys: Arc::new(Default::default()) };
    let mut batches = Vec::new();
    let mut dump = Vec::new();
    let mut requests = Vec::new();
    let corpus = generate(&options, |request| {
        let encoded = request.encode_to_vec();
        dump.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        dump.extend_from_slice(&encoded);
        requests.push(request.clone());
        let spans = build_span_batch(&request, &context).unwrap();
        assert_eq!(spans.rejected, 0);
        batches.extend(spans.batch);
    });
    let data = tempfile::tempdir().unwrap();
    write_partitioned(&batches, &data.path().join(SPANS_DIRECTORY), "corpus", false).unwrap();
    let found = finding_keys(data.path()).await;
    let labelled: BTreeSet<Key> =
        corpus.labels.iter().map(|l| (l.check.to_owned(), l.trace_id.clone(), l.span_id.clone())).collect();

    let catalog = load_catalog(None).unwrap();
    let mut report = BTreeMap::new();
    for check in &catalog.checks {
        let of = |set: &BTreeSet<Key>| set.iter().filter(|k| k.0 == check.id).cloned().collect::<BTreeSet<Key>>();
        let (found, labelled) = (of(&found), of(&labelled));
        let true_positives = found.intersection(&labelled).count();
        assert!(!labelled.is_empty(), "the corpus injects no {} break", check.id);
        let precision = true_positives as f64 / found.len().max(1) as f64;
        let recall = true_positives as f64 / labelled.len() as f64;
        report.insert(check.id.clone(), (labelled.len(), found.len(), precision, recall));
        let unexpected: Vec<_> = found.difference(&labelled).take(3).collect();
        let missed: Vec<_> = labelled.difference(&found).take(3).collect();
        assert!(
            precision == 1.0 && recall == 1.0,
            "{}: precision {precision}, recall {recall}; unexpected {unexpected:?}; missed {missed:?}",
            check.id
        );
    }
    eprintln!(
        "{} spans, {} traces; per check (labelled, found, precision, recall): {report:?}",
        corpus.spans, options.traces
    );

    // The same corpus written in each dump format, imported, gives the same findings.
    let mut json_lines = Vec::new();
    for request in &requests {
        write_record(DumpKind::OtlpJsonLines, request, &mut json_lines).unwrap();
    }
    // One document or message holding everything: read in groups of elements, not whole.
    let single = tracegap_ingest::otlp_messages::ExportRequest {
        resource_spans: requests.iter().flat_map(|r| r.resource_spans.iter().cloned()).collect(),
    };
    let duplicates: BTreeSet<Key> = found.iter().filter(|k| k.0 == "duplicate_span_id").cloned().collect();
    for (name, bytes, expected) in [
        ("corpus.otlp.bin", dump, found.clone()),
        ("corpus.otlp.jsonl", json_lines, found.clone()),
        ("corpus.otlp.json", serde_json::to_vec_pretty(&otlp_json(&single)).unwrap(), found.clone()),
        ("corpus.otlp.single.bin", single.encode_to_vec(), found.clone()),
        ("corpus.jaeger.json", serde_json::to_vec(&jaeger_json(&requests)).unwrap(), found.clone()),
        // Zipkin merges the spans of one service that share an id (its own UI does the same), so a
        // span exported twice is one span there.
        (
            "corpus.zipkin.json",
            serde_json::to_vec(&zipkin_json(&requests)).unwrap(),
            found.difference(&duplicates).cloned().collect(),
        ),
    ] {
        let file = data.path().join(name);
        std::fs::write(&file, &bytes).unwrap();
        let imported = tempfile::tempdir().unwrap();
        let summary =
            import_dumps(&[file], &imported.path().join(SPANS_DIRECTORY), &ImportOptions::default(), &mut Silent)
                .unwrap();
        if !name.contains("zipkin") {
            assert_eq!(summary.spans as usize, corpus.spans, "{name}");
        }
        assert!(summary.records > 1, "{name} ({} bytes) is read in parts: {} records", bytes.len(), summary.records);
        let keys = finding_keys(imported.path()).await;
        let (missing, extra): (Vec<_>, Vec<_>) =
            (expected.difference(&keys).take(3).collect(), keys.difference(&expected).take(3).collect());
        assert!(keys == expected, "{name}: {} spans imported; missing {missing:?}; extra {extra:?}", summary.spans);
    }
}
