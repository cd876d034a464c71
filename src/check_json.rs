//! `tracegap check --format json`, written while the checks run (see [`FindingsWriter`]). The
//! summary, computed last, is written last: the keys stay in alphabetical order (`checks`,
//! `findings`, `summary`).

use std::io::Write;
use std::sync::Mutex;
use std::sync::mpsc::Receiver;

use serde::ser::{Error as _, Serialize, SerializeSeq, Serializer};
use tracegap_analyze::Finding;

use crate::findings_writer::{FindingsWriter, Incoming};

#[derive(serde::Serialize)]
struct Report {
    checks: Vec<serde_json::Value>,
    findings: FindingsAsTheyCome,
    summary: SummaryWhenReady,
}

/// The findings array, written as the checks send their findings; it ends when they stop.
struct FindingsAsTheyCome(Mutex<Receiver<Vec<Finding>>>);

/// The summary, written once the analysis sends it.
struct SummaryWhenReady(Mutex<Receiver<serde_json::Value>>);

impl Serialize for FindingsAsTheyCome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let received = self.0.lock().map_err(|_| S::Error::custom("the findings' channel was poisoned"))?;
        let mut array = serializer.serialize_seq(None)?;
        while let Ok(findings) = received.recv() {
            for finding in &findings {
                array.serialize_element(finding)?;
            }
        }
        array.end()
    }
}

impl Serialize for SummaryWhenReady {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let received = self.0.lock().map_err(|_| S::Error::custom("the summary's channel was poisoned"))?;
        match received.recv() {
            Ok(summary) => summary.serialize(serializer),
            Err(_) => Err(S::Error::custom("the analysis stopped before its summary")),
        }
    }
}

/// Starts writing the JSON report to `out`, beginning with the checks' descriptions; its summary
/// is the `summary` object.
pub fn json_report(
    out: impl Write + Send + 'static,
    checks: Vec<serde_json::Value>,
) -> FindingsWriter<serde_json::Value> {
    FindingsWriter::start(out, "the JSON report", move |out, incoming: Incoming<serde_json::Value>| {
        let report = Report {
            checks,
            findings: FindingsAsTheyCome(Mutex::new(incoming.findings)),
            summary: SummaryWhenReady(Mutex::new(incoming.summary)),
        };
        serde_json::to_writer_pretty(&mut *out, &report).map_err(std::io::Error::from)?;
        out.write_all(b"\n")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings_writer::{SharedBuffer, test_finding as finding};

    #[derive(serde::Serialize)]
    struct Whole<'a> {
        checks: &'a [serde_json::Value],
        findings: &'a [Finding],
        summary: &'a serde_json::Value,
    }

    #[test]
    fn the_report_written_as_checks_run_is_the_report_written_at_once() {
        let checks = vec![serde_json::json!({"id": "orphaned_span"}), serde_json::json!({"id": "missing_parent"})];
        let summary = serde_json::json!({"completeness": 0.5, "judged_traces": 2});
        let (first, second) = (vec![finding("orphaned_span", "01"), finding("orphaned_span", "02")], vec![]);
        let third = vec![finding("missing_parent", "03")];
        let out = SharedBuffer::default();
        let writer = json_report(out.clone(), checks.clone());
        for findings in [first.clone(), second, third.clone()] {
            writer.write(findings);
        }
        writer.finish(summary.clone()).expect("written");

        let all: Vec<Finding> = first.into_iter().chain(third).collect();
        let mut expected =
            serde_json::to_string_pretty(&Whole { checks: &checks, findings: &all, summary: &summary }).unwrap();
        expected.push('\n');
        assert_eq!(out.text(), expected);
    }

    #[test]
    fn a_report_without_findings_has_an_empty_array() {
        let out = SharedBuffer::default();
        let writer = json_report(out.clone(), vec![]);
        writer.write(vec![]);
        writer.finish(serde_json::json!({})).expect("written");
        let written: serde_json::Value = serde_json::from_str(&out.text()).unwrap();
        assert_eq!(written, serde_json::json!({"checks": [], "findings": [], "summary": {}}));
    }
}
