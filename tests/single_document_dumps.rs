//! A dump written as one big document (Jaeger `{"data": [...]}`) is read element by element: a
//! malformed trace in the middle is reported at its own line and index, and every other trace is
//! imported.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tracegap_corpus::dump_writers::jaeger_json;
use tracegap_corpus::{CorpusOptions, generate};
use tracegap_ingest::dump_files::{DumpFormat, DumpReader};
use tracegap_ingest::dump_import::{ImportObserver, ImportOptions, import_dumps};
use tracegap_ingest::parquet_files::SPANS_DIRECTORY;

struct Problems(Vec<String>);
impl ImportObserver for Problems {
    fn problem(&mut self, message: &str) {
        self.0.push(message.to_owned());
    }
}

#[test]
fn a_malformed_trace_in_a_big_jaeger_document_costs_only_that_trace() {
    let mut requests = Vec::new();
    generate(&CorpusOptions { traces: 3000, seed: 11, ..Default::default() }, |request| requests.push(request));
    let document = jaeger_json(&requests);
    let traces = document["data"].as_array().unwrap();
    let victim = traces.len() / 2;
    let victim_spans = traces[victim]["spans"].as_array().unwrap().len() as u64;
    let total_spans: u64 = traces.iter().map(|t| t["spans"].as_array().unwrap().len() as u64).sum();

    // Each trace pretty-printed, so lines mean something; the victim's first `"spanID":` loses
    // its colon.
    let mut text = String::from("{\n  \"data\": [\n");
    let mut victim_line = 0;
    let mut line = 0;
    for (index, trace) in traces.iter().enumerate() {
        if index > 0 {
            text.push_str(",\n");
        }
        let mut printed = serde_json::to_string_pretty(trace).unwrap();
        if index == victim {
            victim_line = text.matches('\n').count() as u64 + 1;
            let at = printed.find("\"spanID\":").unwrap();
            line = victim_line + printed[..at].matches('\n').count() as u64;
            printed.replace_range(at..at + "\"spanID\":".len(), "\"spanID\"");
        }
        text.push_str(&printed);
    }
    text.push_str("\n  ],\n  \"total\": 0\n}\n");
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("big.jaeger.json");
    std::fs::write(&file, &text).unwrap();
    assert!(text.len() > 3 * tracegap_ingest::json_elements::GROUP_BYTES, "{} bytes", text.len());

    // The reader cuts the document into groups of traces.
    let mut reader = DumpReader::open(&file, None, Arc::new(AtomicU64::new(0))).unwrap();
    assert_eq!(reader.format(), DumpFormat::Jaeger);
    let mut elements = 0;
    let mut records = 0;
    while let Some(record) = reader.next_record().unwrap() {
        let group = record.group.expect("a group of traces");
        assert_eq!(group.first_index, elements);
        elements += group.elements.len() as u64;
        records += 1;
    }
    assert_eq!(elements, traces.len() as u64);
    assert!(records > 3, "{records} records");

    let mut problems = Problems(Vec::new());
    let store = tempfile::tempdir().unwrap();
    let summary =
        import_dumps(&[file.clone()], &store.path().join(SPANS_DIRECTORY), &ImportOptions::default(), &mut problems)
            .unwrap();
    assert_eq!(summary.bad_records, 1, "{:?}", problems.0);
    assert_eq!(summary.spans, total_spans - victim_spans);
    assert_eq!(summary.bytes_read, text.len() as u64);
    assert_eq!(problems.0.len(), 1, "{:?}", problems.0);
    let expected =
        format!("{}:{victim_line}: data[{victim}]: invalid JSON: expected `:` (line {line})", file.display());
    assert_eq!(problems.0[0], expected);
}
