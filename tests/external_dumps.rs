//! Real dumps written by other tools (`testdata/external`, see its README): each imports with the
//! pinned span count and gives exactly the pinned findings (`testdata/external.expected`, checked
//! by hand: `docs/import.md`); the OTLP and Jaeger forms of the same traces give identical spans
//! and findings; the deliberately malformed file gives a precise error.

use std::path::{Path, PathBuf};

use tracegap_analyze::findings::run_checks;
use tracegap_analyze::{Analysis, AnalysisOptions, load_catalog};
use tracegap_ingest::dump_import::{ImportObserver, ImportOptions, ImportSummary, import_dumps};
use tracegap_ingest::parquet_files::SPANS_DIRECTORY;

fn external() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/external")
}

#[derive(Default)]
struct Problems(Vec<String>);

impl ImportObserver for Problems {
    fn problem(&mut self, message: &str) {
        self.0.push(message.to_owned());
    }
}

fn import(files: &[PathBuf]) -> (tempfile::TempDir, ImportSummary, Vec<String>) {
    let data = tempfile::tempdir().unwrap();
    let mut problems = Problems::default();
    let summary =
        import_dumps(files, &data.path().join(SPANS_DIRECTORY), &ImportOptions::default(), &mut problems).unwrap();
    (data, summary, problems.0)
}

async fn findings(data: &Path) -> Vec<String> {
    let analysis = Analysis::open(AnalysisOptions::batch(data)).await.unwrap();
    let catalog = load_catalog(None).unwrap();
    let mut lines: Vec<String> = run_checks(&analysis, &catalog)
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

/// Every dump of `testdata/external`, relative to it, in a stable order.
fn dumps() -> Vec<String> {
    let mut files = Vec::new();
    for folder in ["jaeger", "jaeger-ui", "jaeger-ui/trace-contract", "otlp-proto-examples", "zipkin"] {
        let mut names: Vec<String> = std::fs::read_dir(external().join(folder))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| (n.ends_with(".json") || n.ends_with(".json.txt")) && !n.contains("in-error"))
            .collect();
        names.sort();
        files.extend(names.into_iter().map(|n| format!("{folder}/{n}")));
    }
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn every_external_dump_gives_the_pinned_spans_and_findings() {
    let mut report = Vec::new();
    for dump in dumps() {
        let (data, summary, problems) = import(&[external().join(&dump)]);
        report.push(format!("== {dump}: {} spans", summary.spans));
        let root = format!("{}/", external().display());
        report.extend(problems.iter().map(|p| format!("problem {}", p.replace(&root, ""))));
        report.extend(findings(data.path()).await);
    }
    let report = report.join("\n") + "\n";
    let pinned_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/external.expected");
    if std::env::var_os("TRACEGAP_PIN").is_some() {
        std::fs::write(&pinned_path, &report).unwrap();
    }
    let pinned = std::fs::read_to_string(&pinned_path).unwrap();
    assert_eq!(report, pinned, "findings on the external dumps changed (TRACEGAP_PIN=1 rewrites the file; review it)");
}

/// The span columns a conversion must keep, as text, sorted. Jaeger keeps times in µs.
async fn span_rows(data: &Path) -> String {
    let analysis = Analysis::open(AnalysisOptions::batch(data)).await.unwrap();
    let batches = analysis
        .context()
        .sql(
            "SELECT hex_id(trace_id) AS trace, hex_id(span_id) AS span, hex_id(parent_span_id) AS parent, name, kind, \
             CAST(start_time AS BIGINT) / 1000 AS start_micros, duration_nano / 1000 AS duration_micros, status_code, service_name, scope_name, peer_service, attributes, \
             resource_attributes, events, links \
             FROM all_spans ORDER BY trace, span, start_time",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_otlp_and_jaeger_forms_of_the_same_traces_give_identical_spans_and_findings() {
    for (otlp, jaeger) in [
        ("jaeger-ui/otlp2jaeger-in.json", "jaeger-ui/otlp2jaeger-out.json"),
        ("jaeger-ui/otlp2jaeger-multi-in.json.txt", "jaeger-ui/oltp2jaeger-multi-out.json"),
    ] {
        let (otlp_data, otlp_summary, _) = import(&[external().join(otlp)]);
        let (jaeger_data, jaeger_summary, _) = import(&[external().join(jaeger)]);
        assert!(otlp_summary.spans > 0);
        assert_eq!(otlp_summary.spans, jaeger_summary.spans, "{otlp} vs {jaeger}");
        assert_eq!(span_rows(otlp_data.path()).await, span_rows(jaeger_data.path()).await, "{otlp} vs {jaeger}");
        assert_eq!(findings(otlp_data.path()).await, findings(jaeger_data.path()).await, "{otlp} vs {jaeger}");
    }
}

#[test]
fn the_deliberately_malformed_file_gives_a_precise_error() {
    let file = external().join("jaeger-ui/otlp2jaeger-in-error.json");
    let (_data, summary, problems) = import(&[file.clone()]);
    assert_eq!(
        problems,
        vec![format!(
            "{}: resource_spans[0].resource has no service.name; its 1 spans are stored without a service",
            file.display()
        )]
    );
    assert_eq!((summary.spans, summary.warned_spans), (1, 1));
    assert!(summary.had_problems());
}
