//! `routeproof run`: Kafka in; exactly-once Parquet, an alert topic and dead letters out.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use routeproof::config::Config;
use routeproof::decode::{DecodeOptions, Envelope, Format};
use routeproof::gateway::{CompileOptions, RouteIndex};
use routeproof::pipeline::PipelineOptions;
use routeproof::resolve::{EndpointIndex, Implementation};

/// Arguments of `routeproof run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// TOML configuration (see config/routeproof.toml); every key can be
    /// overridden by ROUTEPROOF_<SECTION>__<KEY> environment variables.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Manifest files or directories; replaces `routes.manifests` of the config.
    #[arg(long = "manifests", value_name = "PATH")]
    manifests: Vec<PathBuf>,
}

/// Runs the service until SIGTERM/SIGINT (then flushes, commits and exits 0).
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut config = Config::load(&args.config)?;
    if !args.manifests.is_empty() {
        config.routes.manifests = args.manifests.clone();
    }
    let options = PipelineOptions {
        decode: DecodeOptions {
            format: config
                .pipeline
                .format
                .parse::<Format>()
                .map_err(|e| anyhow::anyhow!("config key `pipeline.format`: {e}"))?,
            envelope: config
                .pipeline
                .envelope
                .parse::<Envelope>()
                .map_err(|e| anyhow::anyhow!("config key `pipeline.envelope`: {e}"))?,
            keep_headers: config.pipeline.keep_headers.clone(),
            ..DecodeOptions::default()
        },
        implementation: Some(
            config
                .pipeline
                .implementation
                .parse::<Implementation>()
                .map_err(|e| anyhow::anyhow!("config key `pipeline.implementation`: {e}"))?,
        ),
        default_gateway: config.pipeline.gateway.clone(),
    };
    let objects = routeproof::manifest::load_paths(&config.routes.manifests)
        .context("config key `routes.manifests`")?;
    let index = RouteIndex::compile(
        &objects,
        CompileOptions {
            listener_isolation: !config.routes.no_listener_isolation,
            allow_external_name: config.routes.allow_external_name,
            ..CompileOptions::default()
        },
    );
    let endpoints = EndpointIndex::build(&objects);
    if let Some(g) = &config.pipeline.gateway {
        anyhow::ensure!(
            index.gateway_by_key.contains_key(g),
            "config key `pipeline.gateway`: no Gateway {g} in the manifests"
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())
            .context("installing the signal handler")?;
    }
    let summary = routeproof::service::run(&config, &index, &endpoints, &options, stop)?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "routeproof: stopped after {secs:.1}s: {} messages, {} records, {} dead letters, {} alerts, {} files, {} commits",
        summary.messages,
        summary.records,
        summary.dead_letters,
        summary.alerts,
        summary.files,
        summary.commits
    );
    Ok(ExitCode::SUCCESS)
}
