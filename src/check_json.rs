//! `tracegap check --format json`, written while the checks run: each check's findings go to
//! stdout as soon as it has run and are then dropped, so that the process never holds every
//! finding (on 100M spans they are millions, and took 2 GB). The summary, computed last, is
//! written last: the keys stay in alphabetical order (`checks`, `findings`, `summary`).

use std::io::Write;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use anyhow::Context;
use serde::ser::{Error as _, Serialize, SerializeSeq, Serializer};
use tracegap_analyze::Finding;

/// The report being written by a thread of its own, fed the findings of one check at a time.
pub struct JsonReportWriter {
    findings: Option<SyncSender<Vec<Finding>>>,
    summary: Option<SyncSender<serde_json::Value>>,
    writer: Option<JoinHandle<std::io::Result<()>>>,
}

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

impl JsonReportWriter {
    /// Starts writing the report to stdout, beginning with the checks' descriptions.
    pub fn start(checks: Vec<serde_json::Value>) -> JsonReportWriter {
        JsonReportWriter::start_to(std::io::stdout(), checks)
    }

    /// Starts writing the report to `out`.
    pub fn start_to(out: impl Write + Send + 'static, checks: Vec<serde_json::Value>) -> JsonReportWriter {
        // One check's findings in flight while the next check runs.
        let (findings, findings_received) = sync_channel(1);
        let (summary, summary_received) = sync_channel(1);
        let report = Report {
            checks,
            findings: FindingsAsTheyCome(Mutex::new(findings_received)),
            summary: SummaryWhenReady(Mutex::new(summary_received)),
        };
        let writer = std::thread::spawn(move || {
            let mut out = std::io::BufWriter::new(out);
            serde_json::to_writer_pretty(&mut out, &report)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush())
        });
        JsonReportWriter { findings: Some(findings), summary: Some(summary), writer: Some(writer) }
    }

    /// Writes one check's findings (a reader that stopped, `| head`, is not an error: the
    /// analysis goes on for its exit code).
    pub fn write(&self, findings: Vec<Finding>) {
        if let Some(sender) = &self.findings {
            let _ = sender.send(findings);
        }
    }

    /// Ends the findings, writes the summary and waits for the report to be written.
    pub fn finish(mut self, summary: serde_json::Value) -> anyhow::Result<()> {
        self.findings = None;
        if let Some(sender) = self.summary.take() {
            let _ = sender.send(summary);
        }
        let written = match self.writer.take().map(JoinHandle::join) {
            Some(Ok(written)) => written,
            Some(Err(_)) => return Err(anyhow::anyhow!("the thread writing the JSON report stopped")),
            None => Ok(()),
        };
        match written {
            // A reader that stopped early (`| head`) is not an error of the analysis.
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other.context("writing the JSON report to stdout"),
        }
    }
}

impl Drop for JsonReportWriter {
    /// On an analysis error: the report stops where it was (its JSON unfinished), and the error
    /// goes to stderr as usual.
    fn drop(&mut self) {
        self.findings = None;
        self.summary = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracegap_analyze::Severity;

    use super::*;

    /// A buffer the writer's thread writes into and the test reads.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn finding(check: &str, span: &str) -> Finding {
        Finding {
            check: Arc::from(check),
            severity: Severity::Error,
            is_break: true,
            trace_id: Some(Box::from("4bf92f3577b34da6a3ce929d0e0e4736")),
            span_id: Some(Box::from(span)),
            service: Some(Box::from("checkout")),
            span_name: None,
            time_nano: Some(1_700_000_000_010_000_000),
            explanation: Box::from("parent 3f2a not in trace of 14 spans"),
            related_trace_id: None,
            related_span_id: None,
        }
    }

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
        let out = Shared::default();
        let writer = JsonReportWriter::start_to(out.clone(), checks.clone());
        for findings in [first.clone(), second, third.clone()] {
            writer.write(findings);
        }
        writer.finish(summary.clone()).expect("written");

        let all: Vec<Finding> = first.into_iter().chain(third).collect();
        let mut expected =
            serde_json::to_string_pretty(&Whole { checks: &checks, findings: &all, summary: &summary }).unwrap();
        expected.push('\n');
        assert_eq!(String::from_utf8(out.0.lock().unwrap().clone()).unwrap(), expected);
    }

    #[test]
    fn a_report_without_findings_has_an_empty_array() {
        let out = Shared::default();
        let writer = JsonReportWriter::start_to(out.clone(), vec![]);
        writer.write(vec![]);
        writer.finish(serde_json::json!({})).expect("written");
        let written: serde_json::Value = serde_json::from_slice(&out.0.lock().unwrap()).unwrap();
        assert_eq!(written, serde_json::json!({"checks": [], "findings": [], "summary": {}}));
    }
}
