//! `routeproof explain`.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use routeproof::gateway::report::DecisionReport;
use routeproof::gateway::{RequestSpec, RouteIndex};

use super::{IndexArgs, OutputFormat};

/// Arguments of `explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    index: IndexArgs,
    /// Default Gateway (`NS/NAME`) for requests that do not name one.
    #[arg(long, value_name = "NS/NAME")]
    gateway: Option<String>,
    /// One request as JSON.
    #[arg(
        long,
        conflicts_with = "requests",
        required_unless_present = "requests"
    )]
    request: Option<String>,
    /// A JSON-lines file of requests (`-` for stdin): one decision per line out, same order.
    #[arg(long, value_name = "FILE")]
    requests: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    output: OutputFormat,
}

/// Runs `explain`. Exit code 0, or 1 when some request line was invalid
/// (its output line then carries `error`).
pub fn run(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let index = args.index.compile()?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if let Some(json) = &args.request {
        let report =
            explain_line(&index, args.gateway.as_deref(), json).context("invalid --request")?;
        write_report(&mut out, &report, args.output)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let path = args
        .requests
        .as_ref()
        .context("--request or --requests is required")?;
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        ))
    };
    let mut failed = false;
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match explain_line(&index, args.gateway.as_deref(), &line) {
            Ok(report) => write_report(&mut out, &report, args.output)?,
            Err(err) => {
                failed = true;
                let msg = format!("line {}: {err:#}", n + 1);
                match args.output {
                    OutputFormat::Json => {
                        serde_json::to_writer(
                            &mut out,
                            &serde_json::json!({"error": msg, "line": n + 1}),
                        )?;
                        writeln!(out)?;
                    }
                    OutputFormat::Text => writeln!(out, "error: {msg}")?,
                }
            }
        }
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn explain_line(
    index: &RouteIndex,
    gateway: Option<&str>,
    json: &str,
) -> anyhow::Result<DecisionReport> {
    let mut spec: RequestSpec =
        serde_json::from_str(json).context("request is not valid JSON of the expected shape")?;
    if spec.gateway.is_none() {
        spec.gateway = gateway.map(str::to_string);
    }
    let headers = spec.header_pairs();
    let request = spec.to_request(&headers)?;
    let decision = index.decide(&request);
    Ok(DecisionReport::new(index, &request, &decision))
}

fn write_report(
    out: &mut impl Write,
    report: &DecisionReport,
    format: OutputFormat,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => {
            serde_json::to_writer(&mut *out, report)?;
            writeln!(out)?;
        }
        OutputFormat::Text => write!(out, "{}", report.to_text())?,
    }
    Ok(())
}
