//! `routeproof check`.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use routeproof::gateway::audit::{audit, Severity};

use super::{IndexArgs, OutputFormat};

/// Severity threshold for a failing exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Any finding.
    Info,
    /// Warnings and errors.
    Warning,
    /// Errors only.
    Error,
    /// Never fail.
    Never,
}

/// Arguments of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    index: IndexArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    output: OutputFormat,
    /// Exit with code 1 when findings at or above this severity exist.
    #[arg(long, value_enum, default_value = "error")]
    fail_on: FailOn,
}

/// Runs `check`.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let index = args.index.compile()?;
    let report = audit(&index);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.output {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            writeln!(out, "Route parents ({}):", report.route_parents.len())?;
            for rp in &report.route_parents {
                let conds: Vec<String> = rp
                    .conditions
                    .iter()
                    .map(|c| format!("{}={} ({})", c.condition_type, c.status, c.reason))
                    .collect();
                writeln!(
                    out,
                    "  {} {}/{} -> {} {}/{}{}: {}",
                    rp.route.kind,
                    rp.route.namespace,
                    rp.route.name,
                    rp.parent_ref.kind,
                    rp.parent_ref.namespace,
                    rp.parent_ref.name,
                    rp.parent_ref
                        .section_name
                        .as_ref()
                        .map(|s| format!("/{s}"))
                        .unwrap_or_default(),
                    conds.join(", ")
                )?;
            }
            writeln!(out, "Findings ({}):", report.findings.len())?;
            for f in &report.findings {
                writeln!(
                    out,
                    "  [{:?}] {} {} {}/{}: {}",
                    f.severity, f.code, f.object.kind, f.object.namespace, f.object.name, f.message
                )?;
            }
        }
    }
    out.flush()?;
    let threshold = match args.fail_on {
        FailOn::Info => Some(Severity::Info),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Error => Some(Severity::Error),
        FailOn::Never => None,
    };
    let failed = matches!((threshold, report.max_severity()), (Some(t), Some(max)) if max >= t);
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
