//! `routeproof replay`: access-log files in; enriched Parquet, alerts and dead letters out.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use routeproof::config::{ConfigFile, ReplayConfig};
use routeproof::decode::DecodeError;
use routeproof::kube::static_config_alerts;
use routeproof::pipeline::{Origin, Outputs, PipelineOptions, PipelineStats, RecordProcessor};
use routeproof::redact::Redaction;
use routeproof::resolve::EndpointIndex;
use routeproof::sink::alerts::{AlertAggregator, AlertAggregatorConfig, AlertFileSink, AlertSink};
use routeproof::sink::deadletter::DeadLetterFileSink;
use routeproof::sink::parquet::{
    remove_temp_files, ParquetSink, ParquetSinkConfig, SequentialFileNamer, WrittenFile,
};
use routeproof::source::file::{expand_inputs, LineBatch, LineReader};
use routeproof::verdict::Verdict;

use super::IndexArgs;

/// Arguments of `replay`. Options that `--config` can also set win over the
/// file; defaults apply where neither sets them.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Manifest file or directory (recursive); repeatable. Or `routes.manifests`
    /// of `--config`.
    #[arg(long = "manifests", value_name = "PATH")]
    manifests: Vec<PathBuf>,
    /// Turn off listener isolation (for implementations that do not claim
    /// GatewayHTTPListenerIsolation): unmatched requests fall through to less
    /// specific listeners.
    #[arg(long)]
    no_listener_isolation: bool,
    /// Treat ExternalName Services as valid backends.
    #[arg(long)]
    allow_external_name: bool,
    /// Configuration file (TOML, the same as `run`'s: `[routes]`, `[pipeline]`,
    /// `[parquet]` zstd_level/max_file_rows/row_group_rows, `[alerts]`,
    /// `[dead_letters]` max_raw_bytes, `[redaction]`; `ROUTEPROOF_…` environment
    /// overrides apply).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Input files or glob patterns (plain or .gz); `-` reads stdin.
    #[arg(long = "input", required = true, num_args = 1.., value_name = "FILE_OR_GLOB")]
    inputs: Vec<String>,
    /// Access-log format (`auto`, `envoy-json`, `envoy-text`, `istio-text`, `istio-json`,
    /// `contour`, `nginx-combined`, `nginx-json`, `nginx-gateway-fabric`, `haproxy-httplog`,
    /// `haproxy-ingress`) [default: auto].
    #[arg(long)]
    format: Option<String>,
    /// Shipper envelope (`auto`, `raw`, `fluent-bit`, `vector`, `otlp-json`) [default: auto].
    #[arg(long)]
    envelope: Option<String>,
    /// Gateway implementation, for its upstream naming scheme (`auto`, `envoy-gateway`, `istio`,
    /// `contour`, `nginx-gateway-fabric`, `haproxy-ingress`, `haproxy-unified-gateway`, `kong`,
    /// `traefik`) [default: auto].
    #[arg(long)]
    implementation: Option<String>,
    /// Gateway (`NS/NAME`) for records whose envelope does not name one.
    #[arg(long, value_name = "NS/NAME")]
    gateway: Option<String>,
    /// Request header the log format carries and routes match on (repeatable).
    #[arg(long = "keep-header", value_name = "NAME")]
    keep_headers: Vec<String>,
    /// Output directory: `parquet/`, `alerts.jsonl`, `deadletters.jsonl`.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Add to an output directory that already holds results.
    #[arg(long)]
    append: bool,
    /// Alert aggregation window, in seconds of event time [default: 300].
    #[arg(long)]
    alert_window_seconds: Option<u64>,
    /// Rows per Parquet file before rolling [default: 1000000].
    #[arg(long)]
    max_file_rows: Option<u64>,
    /// zstd compression level of the Parquet files (1..=22) [default: 1].
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=22))]
    zstd_level: Option<i32>,
    /// Request header whose value is masked in dead letters (repeatable;
    /// replaces the default list: authorization, cookie, x-api-key, ...).
    #[arg(long = "redact-header", value_name = "NAME")]
    redact_headers: Vec<String>,
    /// Query parameter whose value is masked in dead letters (repeatable;
    /// replaces the default list: access_token, token, password, ...).
    #[arg(long = "redact-query-key", value_name = "NAME")]
    redact_query_keys: Vec<String>,
    /// No progress bar even on a terminal.
    #[arg(long)]
    no_progress: bool,
}

/// The settings of one replay: the options over `--config` over the defaults.
struct ReplaySettings {
    index: IndexArgs,
    pipeline: PipelineOptions,
    alerts: AlertAggregatorConfig,
    max_file_rows: u64,
    zstd_level: i32,
    row_group_rows: Option<usize>,
    max_raw_bytes: usize,
    redaction: Redaction,
}

impl ReplaySettings {
    fn resolve(args: &ReplayArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => ReplayConfig::load(path)?,
            None => ReplayConfig::default(),
        };
        let manifests = if args.manifests.is_empty() {
            file.routes.manifests.clone()
        } else {
            args.manifests.clone()
        };
        anyhow::ensure!(
            !manifests.is_empty(),
            "no manifests: give --manifests PATH or routes.manifests in --config"
        );
        // Command-line options over the file's `[pipeline]`.
        let mut pipeline = file.pipeline.clone();
        for (cli, key) in [
            (&args.format, &mut pipeline.format),
            (&args.envelope, &mut pipeline.envelope),
            (&args.implementation, &mut pipeline.implementation),
        ] {
            if let Some(value) = cli {
                key.clone_from(value);
            }
        }
        if !args.keep_headers.is_empty() {
            pipeline.keep_headers.clone_from(&args.keep_headers);
        }
        if args.gateway.is_some() {
            pipeline.gateway.clone_from(&args.gateway);
        }
        let mut redaction = file.redaction.clone();
        if !args.redact_headers.is_empty() {
            redaction.headers = Some(args.redact_headers.clone());
        }
        if !args.redact_query_keys.is_empty() {
            redaction.query_keys = Some(args.redact_query_keys.clone());
        }
        Ok(Self {
            index: IndexArgs::new(
                manifests,
                args.no_listener_isolation || file.routes.no_listener_isolation,
                args.allow_external_name || file.routes.allow_external_name,
            ),
            pipeline: super::pipeline_options(&pipeline, |k| format!("--{k} (or pipeline.{k})"))?,
            alerts: {
                let mut alerts = file.alerts.clone();
                if let Some(seconds) = args.alert_window_seconds {
                    alerts.window_seconds = seconds;
                }
                alerts.aggregation()
            },
            max_file_rows: args
                .max_file_rows
                .or(file.parquet.max_file_rows)
                .unwrap_or(1_000_000)
                .max(1),
            zstd_level: args.zstd_level.or(file.parquet.zstd_level).unwrap_or(1),
            row_group_rows: file.parquet.row_group_rows,
            max_raw_bytes: file.dead_letters.max_raw_bytes,
            redaction: redaction.redaction(),
        })
    }
}

/// Runs `replay`.
pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let ReplaySettings {
        index: index_args,
        pipeline: options,
        alerts,
        max_file_rows,
        zstd_level,
        row_group_rows,
        max_raw_bytes,
        redaction,
    } = ReplaySettings::resolve(&args)?;
    let inputs = expand_inputs(&args.inputs)?;

    let objects = index_args.load()?;
    let index = index_args.compile_objects(&objects);
    let endpoints = EndpointIndex::build(&objects);
    if let Some(g) = &options.default_gateway {
        anyhow::ensure!(
            index.gateway_by_key.contains_key(g),
            "--gateway {g}: no such Gateway in the manifests"
        );
    }

    let parquet_dir = args.out.join("parquet");
    prepare_output(&args.out, &parquet_dir, args.append)?;
    let run_id = chrono::Utc::now().format("%Y%m%dT%H%M%S").to_string();
    let mut sink_config = ParquetSinkConfig::new(&parquet_dir);
    sink_config.max_file_rows = max_file_rows;
    sink_config.zstd_level = zstd_level;
    if let Some(rows) = row_group_rows {
        sink_config.row_group_rows = rows;
    }
    let mut parquet = ParquetSink::new(
        sink_config,
        SequentialFileNamer::new(format!("replay-{run_id}-{}", std::process::id())),
    )?;
    let mut alert_file = AlertFileSink::open(args.out.join("alerts.jsonl"))?;
    let mut dead_letters =
        DeadLetterFileSink::open(args.out.join("deadletters.jsonl"), max_raw_bytes)?
            .with_redaction(redaction);
    let mut aggregator = AlertAggregator::new(alerts);
    // Config audits of the (static) manifests first: route_not_accepted,
    // backend_ref_unresolved, shadowed_rule, status_drift.
    let config_alerts = static_config_alerts(&index, chrono::Utc::now().timestamp_micros());
    for alert in &config_alerts {
        alert_file.send(alert)?;
    }
    let mut alert_queue = Vec::new();
    let mut processor = RecordProcessor::new(&index, &endpoints, &options);

    let total_bytes: u64 = inputs
        .iter()
        .filter_map(|i| match i {
            routeproof::source::file::InputSpec::File(p) => {
                std::fs::metadata(p).ok().map(|m| m.len())
            }
            routeproof::source::file::InputSpec::Stdin => None,
        })
        .sum();
    let progress = (!args.no_progress && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(total_bytes);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });

    let mut batch = LineBatch::default();
    let mut bytes_done = 0u64;
    for input in &inputs {
        let mut reader = LineReader::open(input, options.decode.max_line_len)?;
        let name = input.name();
        loop {
            let more = reader.next_batch(&mut batch)?;
            let mut outputs = Outputs {
                parquet: &mut parquet,
                alerts: &mut aggregator,
                alert_queue: &mut alert_queue,
                dead_letters: &mut dead_letters,
            };
            for over in &batch.oversized {
                let origin = Origin::File {
                    name: &name,
                    offset: over.offset,
                    line: over.line,
                };
                let error = DecodeError::TooLong {
                    len: usize::try_from(over.len).unwrap_or(usize::MAX),
                    max: options.decode.max_line_len,
                };
                processor.dead_letter(&error, b"", origin, &mut outputs)?;
            }
            for line in batch.lines() {
                let origin = Origin::File {
                    name: &name,
                    offset: line.offset,
                    line: line.number,
                };
                processor.process_payload(line.bytes, origin, &mut outputs)?;
            }
            for alert in alert_queue.drain(..) {
                alert_file.send(&alert)?;
            }
            if let Some(bar) = &progress {
                bar.set_position(bytes_done + reader.bytes_read());
                bar.set_message(format!("{} records", processor.stats().records));
            }
            if !more {
                break;
            }
        }
        bytes_done += reader.bytes_read();
    }
    aggregator.flush_all(&mut alert_queue);
    let final_alerts = alert_queue.len() as u64;
    for alert in alert_queue.drain(..) {
        alert_file.send(&alert)?;
    }
    let files = parquet.close()?;
    alert_file.close()?;
    let dead_counts = dead_letters.close()?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let elapsed = started.elapsed();
    println!("config audit alerts at start: {}", config_alerts.len());
    print_summary(
        processor.stats(),
        final_alerts,
        &dead_counts,
        &files,
        bytes_done,
        elapsed,
        &args.out,
    );
    drop(processor);
    super::leave_to_exit((objects, index, endpoints));
    Ok(ExitCode::SUCCESS)
}

/// Creates the output directories; refuses to mix with earlier results unless `append`.
fn prepare_output(out: &Path, parquet_dir: &Path, append: bool) -> anyhow::Result<()> {
    let has_results = out.join("alerts.jsonl").exists()
        || out.join("deadletters.jsonl").exists()
        || parquet_dir.exists();
    if has_results && !append {
        anyhow::bail!(
            "{} already holds results of an earlier run; pass --append to add to them, or choose another --out",
            out.display()
        );
    }
    std::fs::create_dir_all(parquet_dir)
        .with_context(|| format!("cannot create {}", parquet_dir.display()))?;
    let removed = remove_temp_files(parquet_dir)?;
    if !removed.is_empty() {
        eprintln!(
            "routeproof: removed {} partial file(s) left by an interrupted run",
            removed.len()
        );
    }
    Ok(())
}

fn print_summary(
    stats: &PipelineStats,
    final_alerts: u64,
    dead: &std::collections::BTreeMap<&'static str, u64>,
    files: &[WrittenFile],
    bytes: u64,
    elapsed: Duration,
    out: &Path,
) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!("verdict                   records");
    for v in Verdict::ALL {
        let n = stats.verdict(v);
        if n > 0 {
            println!("{:<24} {:>8}", v.as_str(), n);
        }
    }
    println!("{:<24} {:>8}", "total", stats.records);
    println!(
        "ambiguous decisions: {} (request attributes routes match on are missing from the log)",
        stats.ambiguous
    );
    if stats.dead_letters > 0 {
        println!("dead letters: {}", stats.dead_letters);
        for (reason, n) in dead {
            println!("  {reason:<22} {n:>8}");
        }
    }
    println!(
        "alert messages: {} during the run, {} open at the end",
        stats.alerts, final_alerts
    );
    let rows: u64 = files.iter().map(|f| f.rows).sum();
    println!(
        "wrote {} rows in {} Parquet file(s) under {}",
        rows,
        files.len(),
        out.join("parquet").display()
    );
    println!(
        "read {:.1} MiB in {:.2} s: {:.0} records/s",
        bytes as f64 / (1024.0 * 1024.0),
        secs,
        stats.records as f64 / secs
    );
}
