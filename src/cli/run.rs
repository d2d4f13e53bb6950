//! `routeproof run`: Kafka in; exactly-once Parquet, an alert topic and dead letters out.
//!
//! The route index is live: manifest files re-read when they change
//! (`routes.source = "manifests"`) or watches of the Kubernetes API
//! (`routes.source = "kube"`), kept as a time-versioned history so that each
//! record is judged against the configuration in force at its event time.
//! Consumption starts only once the initial index is ready.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use routeproof::config::{Config, ConfigFile, RouteSourceKind};
use routeproof::gateway::CompileOptions;
use routeproof::kube::serve::HealthServer;
use routeproof::kube::{IndexHistory, KubeOptions, KubeSource, ManifestSource, Publisher};

/// Arguments of `routeproof run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// TOML configuration (see config/routeproof.toml); every key can be
    /// overridden by ROUTEPROOF_<SECTION>__<KEY> environment variables.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Manifest files or directories, re-read when they change; replaces
    /// `routes.manifests` of the config (and selects the manifest source
    /// unless `routes.source` says otherwise).
    #[arg(long = "manifests", value_name = "PATH")]
    manifests: Vec<PathBuf>,
}

/// The running source of the live index.
enum LiveSource {
    Manifests(ManifestSource),
    Kube {
        watches: KubeSource,
        runtime: tokio::runtime::Runtime,
    },
}

impl LiveSource {
    /// Stops polling or watching.
    fn stop(self) {
        match self {
            LiveSource::Manifests(poller) => drop(poller),
            LiveSource::Kube { watches, runtime } => {
                watches.stop();
                runtime.shutdown_timeout(Duration::from_secs(1));
            }
        }
    }
}

/// Runs the service until SIGTERM/SIGINT (then flushes, commits and exits 0).
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut config = Config::load(&args.config)?;
    if !args.manifests.is_empty() {
        config.routes.manifests = args.manifests.clone();
    }
    let options =
        super::pipeline_options(&config.pipeline, |k| format!("config key `pipeline.{k}`"))?;

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())
            .context("installing the signal handler")?;
    }

    let history = Arc::new(IndexHistory::new(config.history_options()));
    let (alerts_tx, alerts_rx) = mpsc::channel();
    let publisher = Publisher::new(
        history.clone(),
        CompileOptions {
            listener_isolation: !config.routes.no_listener_isolation,
            allow_external_name: config.routes.allow_external_name,
            ..CompileOptions::default()
        },
        Some(alerts_tx),
    );
    let _health = match &config.telemetry.listen {
        Some(addr) => Some(
            HealthServer::start(addr, history.clone()).context("config key `telemetry.listen`")?,
        ),
        None => None,
    };
    let source = start_source(&config, publisher)?;
    if !wait_until_ready(&history, &stop) {
        eprintln!("routeproof: stopped before the route index was ready");
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(g) = &config.pipeline.gateway {
        let known = history
            .current()
            .is_some_and(|s| s.index.gateway_by_key.contains_key(g));
        if !known {
            // With a live source the Gateway may appear later; say so loudly.
            eprintln!(
                "routeproof: warning: config key `pipeline.gateway`: no Gateway {g} in the current route index"
            );
        }
    }

    let summary =
        routeproof::service::run(&config, &history, &options, Some(alerts_rx), stop.clone())?;
    source.stop();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "routeproof: stopped after {secs:.1}s: {} messages, {} records, {} dead letters, {} alerts, {} files, {} commits, {} resume gaps, {} read one per poll, index version {}",
        summary.messages,
        summary.records,
        summary.dead_letters,
        summary.alerts,
        summary.files,
        summary.commits,
        summary.resume_gaps,
        summary.polled_messages,
        history.current().map_or(0, |s| s.version),
    );
    Ok(ExitCode::SUCCESS)
}

/// The decode and resolve settings of `[pipeline]`.
/// Starts the configured source of the live index.
fn start_source(config: &Config, publisher: Publisher) -> anyhow::Result<LiveSource> {
    let r = &config.routes;
    match r.source_kind() {
        RouteSourceKind::Manifests => {
            let source = ManifestSource::start(
                r.manifests.clone(),
                publisher,
                Duration::from_secs_f64(r.poll_interval_seconds),
            )
            .context("config key `routes.manifests`")?;
            Ok(LiveSource::Manifests(source))
        }
        RouteSourceKind::Kube => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("routeproof-kube")
                .enable_all()
                .build()
                .context("starting the Kubernetes watch runtime")?;
            let options = KubeOptions {
                debounce: Duration::from_millis(r.debounce_ms),
                ..KubeOptions::default()
            };
            let source = runtime.block_on(async {
                let client = match &r.kube_api_url {
                    Some(url) => routeproof::kube::client_for_url(url)
                        .context("config key `routes.kube_api_url`")?,
                    None => routeproof::kube::default_client()
                        .await
                        .context("Kubernetes client (in-cluster or KUBECONFIG)")?,
                };
                KubeSource::start(client, publisher, options)
                    .await
                    .context("starting the Kubernetes watches")
            })?;
            Ok(LiveSource::Kube {
                watches: source,
                runtime,
            })
        }
    }
}

/// Blocks until the history is ready (initial lists synced) or `stop` is set;
/// logs every 10 s while waiting. Records are held (not consumed) meanwhile.
fn wait_until_ready(history: &IndexHistory, stop: &AtomicBool) -> bool {
    let started = Instant::now();
    let mut next_log = Duration::from_secs(10);
    while !history.wait_ready(Duration::from_millis(200)) {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        if started.elapsed() >= next_log {
            eprintln!(
                "routeproof: waiting for the initial route index ({:.0}s)",
                started.elapsed().as_secs_f64()
            );
            next_log += Duration::from_secs(10);
        }
    }
    true
}
