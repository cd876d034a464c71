//! `tracegap check` as a readable table, written while the checks run (see [`FindingsWriter`]):
//! one row per finding as each check ends, then what each check found means, the completeness of
//! each service, and the overall completeness last, where a terminal leaves it in view.

use std::collections::BTreeSet;
use std::io::Write;

use tracegap_analyze::completeness::Completeness;
use tracegap_analyze::{Check, Finding, Severity};

use crate::findings_writer::{FindingsWriter, Incoming};

/// Starts writing the table to `out`; `checks` describe the findings' checks at the end.
pub fn table_report(out: impl Write + Send + 'static, checks: Vec<Check>) -> FindingsWriter<Completeness> {
    FindingsWriter::start(out, "the table of findings", move |out, incoming: Incoming<Completeness>| {
        let mut found = BTreeSet::new();
        while let Ok(findings) = incoming.findings.recv() {
            for finding in &findings {
                if found.is_empty() {
                    writeln!(
                        out,
                        "{:<18} {:<8} {:<32} {:<16} {:<16} {:<24} EXPLANATION",
                        "CHECK", "SEVERITY", "TRACE", "SPAN", "SERVICE", "SPAN NAME"
                    )?;
                }
                if !found.contains(&*finding.check) {
                    found.insert(finding.check.to_string());
                }
                write_finding(out, finding)?;
            }
            // Shown as each check ends, not when the buffer fills.
            out.flush()?;
        }
        let Ok(summary) = incoming.summary.recv() else {
            return Ok(());
        };
        if found.is_empty() {
            writeln!(out, "no findings")?;
        }
        for check in checks.iter().filter(|check| found.contains(&check.id)) {
            writeln!(out)?;
            writeln!(out, "{}: {}. {}", check.id, check.title, check.meaning)?;
            if let Some(cause) = check.causes.first() {
                writeln!(out, "  usually: {cause}")?;
            }
            writeln!(out, "  fix: {}", check.fix)?;
        }
        write_completeness(out, &summary)
    })
}

fn write_finding(out: &mut impl Write, finding: &Finding) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<18} {:<8} {:<32} {:<16} {:<16} {:<24} {}",
        finding.check,
        severity_name(finding.severity),
        finding.trace_id.as_deref().unwrap_or("-"),
        finding.span_id.as_deref().unwrap_or("-"),
        clip(finding.service.as_deref().unwrap_or("-"), 16),
        clip(finding.span_name.as_deref().unwrap_or("-"), 24),
        finding.explanation
    )
}

/// The completeness of each service, then of all judged traces.
fn write_completeness(out: &mut impl Write, summary: &Completeness) -> std::io::Result<()> {
    if !summary.by_service.is_empty() {
        writeln!(out)?;
        writeln!(out, "{:<32} {:>8} {:>8} {:>12}", "SERVICE", "TRACES", "BROKEN", "COMPLETE")?;
        for row in &summary.by_service {
            writeln!(
                out,
                "{:<32} {:>8} {:>8} {:>11.2}%",
                clip(&row.key, 32),
                row.traces,
                row.broken,
                row.completeness * 100.0
            )?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "completeness {:.2}%: {} of {} judged traces complete, {} broken, {} pending",
        summary.completeness * 100.0,
        summary.judged_traces - summary.broken_traces,
        summary.judged_traces,
        summary.broken_traces,
        summary.pending_traces
    )
}

/// The severity as the JSON output spells it.
fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}

/// `text` cut to `width` characters, its end marked.
fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut clipped: String = text.chars().take(width - 1).collect();
        clipped.push('…');
        clipped
    }
}

#[cfg(test)]
mod tests {
    use tracegap_analyze::completeness::CompletenessRow;

    use super::*;
    use crate::findings_writer::{SharedBuffer, test_finding as finding};

    fn check(id: &str) -> Check {
        let mut check = tracegap_analyze::load_catalog(None).expect("built-in catalogue").checks.remove(0);
        check.id = id.to_owned();
        check.title = format!("Title of {id}");
        check
    }

    fn summary(judged_traces: i64, broken_traces: i64) -> Completeness {
        Completeness {
            judged_traces,
            pending_traces: 1,
            broken_traces,
            completeness: (judged_traces - broken_traces) as f64 / judged_traces as f64,
            by_service: vec![CompletenessRow {
                key: "checkout".to_owned(),
                traces: judged_traces,
                broken: broken_traces,
                completeness: (judged_traces - broken_traces) as f64 / judged_traces as f64,
            }],
            by_root_operation: vec![],
            by_minute: vec![],
            edges: vec![],
        }
    }

    #[test]
    fn findings_come_first_as_checks_run_and_completeness_last() {
        let out = SharedBuffer::default();
        let writer =
            table_report(out.clone(), vec![check("orphaned_span"), check("missing_parent"), check("invalid_id")]);
        writer.write(vec![]);
        writer.write(vec![finding("orphaned_span", "0000000000000001"), finding("orphaned_span", "0000000000000002")]);
        // Written before the summary exists: nothing waits for the analysis to end.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !out.text().contains("0000000000000002") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(out.text().contains("0000000000000002"), "rows are written before the summary");
        writer.write(vec![finding("missing_parent", "0000000000000003")]);
        writer.finish(summary(4, 2)).expect("written");

        let text = out.text();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("CHECK") && lines[0].ends_with("EXPLANATION"), "{text}");
        assert!(lines[1].starts_with("orphaned_span      error    4bf92f3577b34da6a3ce929d0e0e4736 0000000000000001"));
        assert!(lines[3].starts_with("missing_parent"));
        assert!(text.contains("\norphaned_span: Title of orphaned_span. "));
        assert!(text.contains("\nmissing_parent: Title of missing_parent. "));
        assert!(!text.contains("invalid_id:"), "a check without findings is not explained");
        assert!(text.contains("\ncheckout                                4        2       50.00%\n"));
        assert_eq!(lines.last(), Some(&"completeness 50.00%: 2 of 4 judged traces complete, 2 broken, 1 pending"));
    }

    #[test]
    fn a_table_without_findings_says_so() {
        let out = SharedBuffer::default();
        let writer = table_report(out.clone(), vec![check("orphaned_span")]);
        writer.write(vec![]);
        writer.finish(summary(3, 0)).expect("written");
        let text = out.text();
        assert!(text.starts_with("no findings\n"), "{text}");
        assert!(text.ends_with("completeness 100.00%: 3 of 3 judged traces complete, 0 broken, 1 pending\n"));
    }

    #[test]
    fn long_names_are_clipped_to_their_column() {
        assert_eq!(clip("checkout", 16), "checkout");
        assert_eq!(clip("a-service-with-a-long-name", 16), "a-service-with-…");
    }
}
