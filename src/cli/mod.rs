//! Command-line definitions and dispatch.

mod check;
mod explain;
mod replay;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use routeproof::gateway::{CompileOptions, ObjectSet, RouteIndex};

/// Makes Kubernetes Gateway API routing decisions observable.
#[derive(Debug, Parser)]
#[command(name = "routeproof", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Say what the Gateway API spec says must happen to a request.
    Explain(explain::ExplainArgs),
    /// Audit the manifests: route status, unresolved refs, shadowed matches, conflicts.
    Check(check::CheckArgs),
    /// Judge access-log files against the manifests; write enriched Parquet, alerts, dead letters.
    Replay(replay::ReplayArgs),
    /// Consume access logs from Kafka; write exactly-once Parquet, alerts and dead letters.
    Run(run::RunArgs),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Text,
    /// One JSON object (or one per line with --requests).
    Json,
}

/// The manifests and engine switches shared by commands.
#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Manifest file or directory (recursive); repeatable.
    #[arg(long = "manifests", required = true, value_name = "PATH")]
    manifests: Vec<PathBuf>,
    /// Turn off listener isolation (for implementations that do not claim
    /// GatewayHTTPListenerIsolation): unmatched requests fall through to less
    /// specific listeners.
    #[arg(long)]
    no_listener_isolation: bool,
    /// Treat ExternalName Services as valid backends.
    #[arg(long)]
    allow_external_name: bool,
}

impl IndexArgs {
    /// The manifests and switches of a command that reads them from elsewhere too.
    pub fn new(
        manifests: Vec<PathBuf>,
        no_listener_isolation: bool,
        allow_external_name: bool,
    ) -> Self {
        Self {
            manifests,
            no_listener_isolation,
            allow_external_name,
        }
    }

    /// Loads the manifests.
    pub fn load(&self) -> anyhow::Result<ObjectSet> {
        let objects = routeproof::manifest::load_paths(&self.manifests)?;
        for (kind, count) in &objects.skipped {
            log_skipped(kind, *count);
        }
        Ok(objects)
    }

    /// Compiles loaded manifests with the engine switches given.
    pub fn compile_objects(&self, objects: &ObjectSet) -> RouteIndex {
        RouteIndex::compile(
            objects,
            CompileOptions {
                listener_isolation: !self.no_listener_isolation,
                allow_external_name: self.allow_external_name,
                ..CompileOptions::default()
            },
        )
    }

    /// Loads and compiles the manifests, for a one-shot command: the loaded
    /// objects are left to the process exit (see [`leave_to_exit`]).
    pub fn compile(&self) -> anyhow::Result<RouteIndex> {
        let objects = self.load()?;
        let index = self.compile_objects(&objects);
        leave_to_exit(objects);
        Ok(index)
    }
}

/// Leaves `value` to the process exit instead of dropping it: for the loaded
/// manifests and the indexes of a one-shot command, which hold a great many
/// small allocations (freeing those of a big manifest directory costs about a
/// tenth of start-up), and whose drops do nothing but free memory.
fn leave_to_exit<T>(value: T) {
    std::mem::forget(value);
}

/// The per-record pipeline's options from a `[pipeline]` section (with any
/// command-line overrides already applied); `key` names a key in errors.
fn pipeline_options(
    p: &routeproof::config::PipelineConfig,
    key: impl Fn(&str) -> String,
) -> anyhow::Result<routeproof::pipeline::PipelineOptions> {
    use routeproof::decode::{DecodeOptions, Envelope, Format};
    use routeproof::resolve::Implementation;
    Ok(routeproof::pipeline::PipelineOptions {
        decode: DecodeOptions {
            format: p
                .format
                .parse::<Format>()
                .map_err(|e| anyhow::anyhow!("{}: {e}", key("format")))?,
            envelope: p
                .envelope
                .parse::<Envelope>()
                .map_err(|e| anyhow::anyhow!("{}: {e}", key("envelope")))?,
            keep_headers: p.keep_headers.clone(),
            ..DecodeOptions::default()
        },
        implementation: Some(
            p.implementation
                .parse::<Implementation>()
                .map_err(|e| anyhow::anyhow!("{}: {e}", key("implementation")))?,
        ),
        default_gateway: p.gateway.clone(),
    })
}

fn log_skipped(kind: &str, count: usize) {
    if std::env::var_os("ROUTEPROOF_QUIET").is_none() {
        eprintln!("routeproof: skipped {count} document(s) of kind {kind}");
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Explain(args) => explain::run(args),
        Command::Check(args) => check::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Run(args) => run::run(args),
    }
}
