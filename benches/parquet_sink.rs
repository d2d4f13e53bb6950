//! The Parquet stage alone: prebuilt [`EnrichedRow`]s shaped like the
//! `replay_vs_duckdb` bench's output (320 routes in 24 namespaces, UUID
//! request ids, pod `ip:port` upstreams, two hours of event times, 0.5 % each
//! of no-route, no-healthy-upstream and misrouted rows) are appended to a
//! [`ParquetSink`] and the sink is closed; nothing else is timed.
//!
//! Run: `cargo bench --bench parquet_sink` (prints thread CPU time per row,
//! wall time and output size). Environment: `RP_SINK_ROWS` (default
//! 1,000,000), `RP_SINK_ZSTD` (default 1), `RP_SINK_DIR` (output directory,
//! default a temp dir), `RP_SINK_IDS` (default 1: rows carry [`ValueIds`]
//! as the replay pipeline's do, route, backend, Gateway and listener ids and
//! the closed-set ids; 0: no ids, every value goes by its bytes; the output
//! is the same). For instruction counts, run the bench binary under
//! `valgrind --tool=callgrind --toggle-collect='*write_all_rows*'`.

use std::time::Instant;

use routeproof::decode::Format;
use routeproof::gateway::RouteKind;
use routeproof::sink::{
    ActualSource, EnrichedRow, ParquetSink, ParquetSinkConfig, SequentialFileNamer, StrList,
    ValueIds,
};
use routeproof::verdict::Verdict;

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

/// The owned strings of one row; numbers are derived from the row number.
struct RowData {
    host: String,
    method: &'static str,
    path: String,
    status: i32,
    flags: &'static str,
    request_id: String,
    actual_backend: Option<String>,
    upstream: Option<String>,
    source: ActualSource,
    expected: Vec<String>,
    /// Backend ids of `expected` (route * 5 + service variant).
    expected_ids: Vec<u32>,
    /// Backend id of `actual_backend` when it is an expected one.
    actual_id: Option<u32>,
    expected_status: Option<i32>,
    route: Option<String>,
    route_id: Option<u32>,
    rule: Option<i32>,
    verdict: Verdict,
    reason: &'static str,
    duration: f64,
    bytes_sent: i64,
}

const ROUTES: u64 = 320;
const DISTINCT_ROWS: usize = 100_000;
/// 2024-05-01T07:00:00Z in µs.
const START_US: i64 = 1_714_546_800_000_000;
const SPAN_US: i64 = 2 * 3_600_000_000;

fn make_rows() -> Vec<RowData> {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    (0..DISTINCT_ROWS)
        .map(|_| {
            let r = if rng.below(2) == 0 {
                rng.below(ROUTES / 8)
            } else {
                rng.below(ROUTES)
            };
            let ns = format!("team-{:02}", r % 24);
            let name = format!("app-{r:03}");
            let host = format!("{name}.{}.example.com", r / 2);
            let rule = rng.below(4) as i32;
            let prefix = format!("/r{}/api", r % 2);
            let path = match rng.below(4) {
                0 => format!("{prefix}/items/{}", rng.below(10_000)),
                1 => format!("{prefix}/list?page={}", rng.below(50)),
                2 => format!("{prefix}/v1/orders/{}", rng.below(100_000)),
                _ => format!("{prefix}/"),
            };
            let request_id = rng.uuid();
            let (service, variant) = match rule {
                0 => (format!("{ns}/{name}-canary"), 0),
                1 if rng.below(10) == 0 => (format!("{ns}/{name}-api-v2"), 1),
                1 => (format!("{ns}/{name}-api-v1"), 2),
                2 => (format!("{ns}/{name}-static"), 3),
                _ => (format!("{ns}/{name}-web"), 4),
            };
            let service_id = r as u32 * 5 + variant;
            let pod = rng.below(3300);
            let ip = format!("10.64.{}.{}:8080", pod >> 8, pod & 0xff);
            let roll = rng.below(1000);
            let duration = rng.below(250) as f64;
            let bytes_sent = 200 + rng.below(20_000) as i64;
            let method = ["GET", "GET", "GET", "POST", "PUT"][rng.below(5) as usize];
            if roll < 5 {
                RowData {
                    host: format!("unknown-{}.example.org", rng.below(100)),
                    method,
                    path,
                    status: 404,
                    flags: "NR",
                    request_id,
                    actual_backend: None,
                    upstream: None,
                    source: ActualSource::None,
                    expected: Vec::new(),
                    expected_ids: Vec::new(),
                    actual_id: None,
                    expected_status: Some(404),
                    route: None,
                    route_id: None,
                    rule: None,
                    verdict: Verdict::Ok,
                    reason: "no route expected, none taken",
                    duration,
                    bytes_sent: 0,
                }
            } else {
                let misrouted = (10..15).contains(&roll);
                RowData {
                    host,
                    method,
                    path,
                    status: if roll < 10 { 503 } else { 200 },
                    flags: if roll < 10 { "UH" } else { "-" },
                    request_id,
                    actual_backend: (roll >= 10).then(|| {
                        if misrouted {
                            format!("team-{:02}/app-{:03}-web", (r + 1) % 24, (r + 1) % ROUTES)
                        } else {
                            service.clone()
                        }
                    }),
                    upstream: (roll >= 10).then_some(ip),
                    source: if roll >= 10 {
                        ActualSource::ClusterName
                    } else {
                        ActualSource::None
                    },
                    expected: vec![service],
                    expected_ids: vec![service_id],
                    actual_id: (roll >= 10 && !misrouted).then_some(service_id),
                    expected_status: None,
                    route: Some(format!("{ns}/{name}")),
                    route_id: Some(r as u32),
                    rule: Some(rule),
                    verdict: if misrouted {
                        Verdict::Misrouted
                    } else {
                        Verdict::Ok
                    },
                    reason: if misrouted {
                        "served by a backend the rule does not reference"
                    } else {
                        "served by an expected backend"
                    },
                    duration,
                    bytes_sent,
                }
            }
        })
        .collect()
}

/// Appends `rows` rows (cycling over `data`) and closes the sink; returns the
/// bytes written. Not inlined, so callgrind can collect just this function.
#[inline(never)]
fn write_all_rows(sink: ParquetSink, data: &[RowData], rows: u64, with_ids: bool) -> u64 {
    let mut sink = sink;
    let attempts_storage: Vec<[&str; 1]> = data
        .iter()
        .map(|d| [d.upstream.as_deref().unwrap_or("")])
        .collect();
    for i in 0..rows {
        let k = (i % data.len() as u64) as usize;
        let d = &data[k];
        let attempts: &[&str] = if d.upstream.is_some() {
            &attempts_storage[k]
        } else {
            &[]
        };
        // The old bench's spelling; its id, as the pipeline's, is the
        // format's discriminant.
        let (format, format_id) = ("envoy_json", Format::EnvoyJson as u32);
        let ids = if with_ids {
            ValueIds {
                index: Some(1),
                gateway: Some(0),
                listener: Some(0),
                route: d.route_id,
                actual_backend: d.actual_id,
                expected_backends: &d.expected_ids,
                route_kind: d.route_id.map(|_| RouteKind::Http as u32),
                verdict: Some(d.verdict as u32),
                input_format: Some(format_id),
                actual_upstream: None,
                verdict_reason: Some(d.reason),
            }
        } else {
            ValueIds::default()
        };
        let row = EnrichedRow {
            event_time: Some(START_US + (i as i64 * SPAN_US) / rows as i64),
            gateway: Some("infra/public-gateway"),
            listener: Some("http"),
            host: Some(&d.host),
            method: Some(d.method),
            path: Some(&d.path),
            status: Some(d.status),
            response_flags: Some(d.flags),
            duration_ms: Some(d.duration),
            bytes_sent: Some(d.bytes_sent),
            request_id: Some(&d.request_id),
            actual_backend: d.actual_backend.as_deref(),
            actual_upstream: d.upstream.as_deref(),
            actual_source: d.source,
            expected_backends: Some(StrList::Owned(&d.expected)),
            expected_status: d.expected_status,
            route: d.route.as_deref(),
            route_kind: d.route.as_ref().map(|_| RouteKind::Http.as_str()),
            rule: d.rule,
            verdict: d.verdict.as_str(),
            verdict_reason: Some(d.reason),
            index_version: Some(1),
            input_format: format,
            source_file: Some("/tmp/bench/access.log"),
            source_offset: Some(i as i64 * 385),
            upstream_attempts: StrList::Borrowed(attempts),
            ids,
            ..EnrichedRow::default()
        };
        sink.append(&row).expect("append");
    }
    let files = sink.close().expect("close");
    files.iter().map(|f| f.bytes).sum()
}

fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn main() {
    let rows: u64 = std::env::var("RP_SINK_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let zstd: i32 = std::env::var("RP_SINK_ZSTD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let with_ids = std::env::var("RP_SINK_IDS").map_or(true, |v| v != "0");
    let data = make_rows();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::env::var_os("RP_SINK_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let _ = std::fs::remove_dir_all(&dir);
    let config = ParquetSinkConfig {
        zstd_level: zstd,
        ..ParquetSinkConfig::new(&dir)
    };
    let sink = ParquetSink::new(config, SequentialFileNamer::new("bench")).expect("sink");
    let cpu = thread_cpu_seconds();
    let wall = Instant::now();
    let bytes = write_all_rows(sink, &data, rows, with_ids);
    let cpu = thread_cpu_seconds() - cpu;
    let wall = wall.elapsed().as_secs_f64();
    println!(
        "parquet_sink: {rows} rows, zstd {zstd}, ids {with_ids}: thread CPU {cpu:.3} s ({:.0} ns/row, {:.0} rows/CPU-s), wall {wall:.3} s, output {:.2} MiB ({:.1} B/row)",
        cpu * 1e9 / rows as f64,
        rows as f64 / cpu,
        bytes as f64 / 1048576.0,
        bytes as f64 / rows as f64,
    );
}
