//! A report of `tracegap check` written while the checks run: each check's findings go to the
//! output as soon as it has run and are then dropped, so that the process never holds every
//! finding (on 100M spans they are millions, and took 2 GB). A thread of its own writes, so that
//! the next check runs meanwhile. The summary, computed last, is written last.

use std::io::{BufWriter, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use anyhow::Context;
use tracegap_analyze::Finding;

/// What the writing thread receives: each check's findings as the checks run, then the summary.
pub struct Incoming<S> {
    /// One check's findings at a time; the channel closes when the checks are done.
    pub findings: Receiver<Vec<Finding>>,
    /// The summary, sent once every check has run.
    pub summary: Receiver<S>,
}

/// A report being written by a thread of its own, fed the findings of one check at a time and
/// then a summary of type `S`.
pub struct FindingsWriter<S> {
    findings: Option<SyncSender<Vec<Finding>>>,
    summary: Option<SyncSender<S>>,
    writer: Option<JoinHandle<std::io::Result<()>>>,
    /// What is written, for error messages ("the JSON report").
    what: &'static str,
}

impl<S: Send + 'static> FindingsWriter<S> {
    /// Starts the thread that writes `what` to `out` with `render`.
    pub fn start<W, R>(out: W, what: &'static str, render: R) -> FindingsWriter<S>
    where
        W: Write + Send + 'static,
        R: FnOnce(&mut BufWriter<W>, Incoming<S>) -> std::io::Result<()> + Send + 'static,
    {
        // One check's findings in flight while the next check runs.
        let (findings, findings_received) = sync_channel(1);
        let (summary, summary_received) = sync_channel(1);
        let writer = std::thread::spawn(move || {
            let mut out = BufWriter::new(out);
            render(&mut out, Incoming { findings: findings_received, summary: summary_received })?;
            out.flush()
        });
        FindingsWriter { findings: Some(findings), summary: Some(summary), writer: Some(writer), what }
    }

    /// Writes one check's findings (a reader that stopped, `| head`, is not an error: the
    /// analysis goes on for its exit code).
    pub fn write(&self, findings: Vec<Finding>) {
        if let Some(sender) = &self.findings {
            let _ = sender.send(findings);
        }
    }

    /// Ends the findings, writes the summary and waits for the report to be written.
    pub fn finish(mut self, summary: S) -> anyhow::Result<()> {
        self.findings = None;
        if let Some(sender) = self.summary.take() {
            let _ = sender.send(summary);
        }
        let written = match self.writer.take().map(JoinHandle::join) {
            Some(Ok(written)) => written,
            Some(Err(_)) => return Err(anyhow::anyhow!("the thread writing {} stopped", self.what)),
            None => Ok(()),
        };
        match written {
            // A reader that stopped early (`| head`) is not an error of the analysis.
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other.with_context(|| format!("writing {} to the output", self.what)),
        }
    }
}

impl<S> Drop for FindingsWriter<S> {
    /// On an analysis error: the report stops where it was, and the error goes to stderr as
    /// usual.
    fn drop(&mut self) {
        self.findings = None;
        self.summary = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// A buffer that a writer's thread writes into and a test reads.
#[cfg(test)]
#[derive(Clone, Default)]
pub struct SharedBuffer(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl SharedBuffer {
    /// What was written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("not poisoned").clone()).expect("UTF-8")
    }
}

#[cfg(test)]
impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A finding as tests write them.
#[cfg(test)]
pub fn test_finding(check: &str, span: &str) -> Finding {
    Finding {
        check: std::sync::Arc::from(check),
        severity: tracegap_analyze::Severity::Error,
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
