//! `tracegap report`: one self-contained HTML file of an analysis (data directory or dumps).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tracegap_analyze::{load_catalog, take_snapshot_of};
use tracegap_web::Window;
use tracegap_web::report::{ReportLimits, render_report};
use tracegap_web::snapshot_cache::Computed;

use crate::check::{InputArgs, prepare_source, runtime};
use crate::cluster::open_analysis;

/// Options of `tracegap report`.
#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Where to write the HTML file.
    #[arg(short = 'o', long = "output", default_value = "tracegap-report.html")]
    pub output: PathBuf,
    /// Broken traces drawn as waterfalls (the first ones in time).
    #[arg(long, default_value_t = 100)]
    pub max_traces: usize,
}

/// Runs `tracegap report`.
pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let catalog = load_catalog(args.input.queries.as_deref())?;
    let (options, _store, input_problems) = prepare_source(&args.input)?;
    let window = match (args.input.source.last, options.since_nano, options.until_nano) {
        (Some(last), _, _) => Window::Last(last),
        (None, since, until) => Window::Range { since, until },
    };
    let limits = ReportLimits { traces: args.max_traces, ..ReportLimits::default() };
    let (html, summary) = runtime()?.block_on(async {
        let analysis = open_analysis(options, args.input.cluster.as_deref()).await?;
        let (snapshot, analysis) = take_snapshot_of(analysis, &catalog).await?;
        let summary =
            (snapshot.completeness.completeness, snapshot.findings.len(), snapshot.completeness.judged_traces);
        let computed = Computed::new(window, snapshot, analysis);
        let html = render_report(&computed, &catalog, limits).await?;
        anyhow::Ok((html, summary))
    })?;
    std::fs::write(&args.output, html).with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "tracegap: wrote {} (completeness {:.2}% of {} judged traces, {} findings)",
        args.output.display(),
        summary.0 * 100.0,
        summary.2,
        summary.1
    );
    if input_problems {
        eprintln!("tracegap: some input was skipped (see above); --skip-bad accepts that");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
