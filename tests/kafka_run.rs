//! `routeproof run` against a real Kafka-compatible broker.
//!
//! The broker address comes from `ROUTEPROOF_TEST_BROKERS` (`.ci/run` starts
//! tansu with memory storage and sets it; unset, these tests print that they
//! skip and pass). The broker-restart test (`ROUTEPROOF_TEST_BROKER_RESTART=1`,
//! also set by `.ci/run`) starts and stops its own sqlite-backed tansu
//! (`ROUTEPROOF_TEST_TANSU`, default `tansu` on `PATH` or in `~/.cargo/bin`)
//! on `ROUTEPROOF_TEST_RESTART_PORT` (default 19092). Every test uses its own
//! topics and consumer group. `ROUTEPROOF_TEST_KEEP=1` keeps the temporary
//! directories (run and broker logs, Parquet output) of every test.
//!
//! Tests run one at a time (a lock) so that timings stay sane on 2 cores.
//!
//! tansu 0.6.0 limits, worked around here (not in routeproof):
//! - its memory storage answers `ListOffsets(latest)` with the base offset of
//!   the newest record batch plus one, so the tests take the end offsets of what
//!   they produced from the producer's delivery reports ([`Produced`]);
//! - its memory storage answers a fetch from an offset inside a record batch
//!   from the next batch on, losing the rest of that batch for a consumer that
//!   resumes there, so the tests produce one record per batch ([`produce`]);
//! - while it shuts down it still accepts produce requests and fails them with
//!   an unknown server error; routeproof produces such alerts and dead letters
//!   again (the broker-restart test covers it).

#[path = "support/broker.rs"]
#[allow(dead_code)]
mod broker;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arrow_array::{Array, Int32Array, Int64Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{FileReader, SerializedFileReader};
use rdkafka::config::ClientConfig;
use rdkafka::message::Message;
use rdkafka::producer::{Producer, ThreadedProducer};
use routeproof::sink::kafka_files::GroupFileName;

use broker::{brokers, consume_all, create_topics, parquet_files, send_queued, unique};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The shared broker (`ROUTEPROOF_TEST_BROKERS`) and a new topic named after
/// `prefix` with `partitions`, plus its alert and dead-letter topics. `None`
/// (the test skips) without a broker.
fn broker_and_topic(prefix: &str, partitions: i32) -> Option<(String, String)> {
    let brokers = brokers()?;
    let topic = unique(prefix);
    create_topics(&brokers, &topic, partitions);
    Some((brokers, topic))
}

/// A temporary directory, kept (and its path printed) when
/// `ROUTEPROOF_TEST_KEEP` is set, to read the logs of a failed run.
fn test_dir() -> tempfile::TempDir {
    let keep = std::env::var_os("ROUTEPROOF_TEST_KEEP").is_some();
    let dir = tempfile::Builder::new()
        .prefix("routeproof-kafka-test")
        .disable_cleanup(keep)
        .tempdir()
        .unwrap();
    if keep {
        eprintln!("keeping {}", dir.path().display());
    }
    dir
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The demo log's lines (some are deliberately not UTF-8).
fn demo_lines() -> Vec<Vec<u8>> {
    std::fs::read(root().join("demo/logs/envoy-gateway.log"))
        .unwrap()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Offsets the broker acknowledged, per partition, from the producer's
/// delivery reports.
#[derive(Default)]
struct Deliveries {
    offsets: Mutex<BTreeMap<i32, Vec<i64>>>,
    failed: Mutex<Vec<String>>,
}

impl rdkafka::ClientContext for Deliveries {}

impl rdkafka::producer::ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => self
                .offsets
                .lock()
                .unwrap()
                .entry(m.partition())
                .or_default()
                .push(m.offset()),
            Err((e, _)) => self.failed.lock().unwrap().push(e.to_string()),
        }
    }
}

/// What was produced to a fresh topic: the end offset of every partition.
///
/// Taken from the delivery reports, not from the broker's high watermarks:
/// tansu 0.6.0's memory storage answers a `ListOffsets(latest)` request with the
/// base offset of the newest record batch plus one, not the offset after its
/// last record, so a watermark read back undercounts a batched topic.
#[derive(Debug, Default, Clone)]
struct Produced {
    end_offsets: BTreeMap<i32, i64>,
}

impl Produced {
    /// Adds delivered offsets; they must continue each partition without a gap.
    fn add(&mut self, mut delivered: BTreeMap<i32, Vec<i64>>) {
        for (partition, offsets) in &mut delivered {
            offsets.sort_unstable();
            let end = self.end_offsets.entry(*partition).or_insert(0);
            for o in offsets.iter() {
                assert_eq!(
                    *o, *end,
                    "partition {partition}: delivered offsets not contiguous"
                );
                *end += 1;
            }
        }
    }

    fn total(&self) -> i64 {
        self.end_offsets.values().sum()
    }
}

/// Produces `payloads` round-robin over `partitions` partitions of the shared
/// (memory-storage) broker and records the acknowledged offsets in `produced`;
/// every delivery must succeed.
fn produce(
    brokers: &str,
    topic: &str,
    partitions: i32,
    payloads: impl Iterator<Item = Vec<u8>>,
    produced: &mut Produced,
) {
    produce_batched(brokers, topic, partitions, payloads, produced, 1);
}

/// [`produce`] with up to `batch_records` records per record batch.
///
/// `produce` sends one record per record batch: tansu 0.6.0's memory storage
/// answers a fetch from an offset inside a batch with the batches that *start*
/// at or after it, skipping the rest of that batch (Kafka returns the whole
/// batch and the client skips the records before the offset). A consumer
/// resuming mid-batch (after a crash or a rebalance) would never see those
/// records. A request then carries one record per partition, so each partition
/// gets its own producer (connection), in parallel.
fn produce_batched(
    brokers: &str,
    topic: &str,
    partitions: i32,
    payloads: impl Iterator<Item = Vec<u8>>,
    produced: &mut Produced,
    batch_records: usize,
) {
    let started = Instant::now();
    let mut per_partition: Vec<Vec<Vec<u8>>> = vec![Vec::new(); partitions as usize];
    let mut count = 0;
    for (i, payload) in payloads.enumerate() {
        count += 1;
        per_partition[i % partitions as usize].push(payload);
    }
    let delivered: Vec<BTreeMap<i32, Vec<i64>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = per_partition
            .into_iter()
            .enumerate()
            .map(|(partition, payloads)| {
                scope.spawn(move || {
                    produce_partition(brokers, topic, partition as i32, payloads, batch_records)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!(
        "produced {count} records to {topic} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    for d in delivered {
        produced.add(d);
    }
}

/// Produces `payloads` to one partition; returns the delivered offsets.
fn produce_partition(
    brokers: &str,
    topic: &str,
    partition: i32,
    payloads: Vec<Vec<u8>>,
    batch_records: usize,
) -> BTreeMap<i32, Vec<i64>> {
    let producer: ThreadedProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("batch.num.messages", batch_records.to_string())
        .set("queue.buffering.max.messages", "500000")
        .set("message.timeout.ms", "300000")
        .create_with_context(Deliveries::default())
        .unwrap();
    for payload in &payloads {
        send_queued(&producer, topic, partition, payload);
    }
    producer.flush(Duration::from_secs(300)).expect("flush");
    let failed = producer.context().failed.lock().unwrap().clone();
    assert!(failed.is_empty(), "deliveries failed: {failed:?}");
    let delivered = std::mem::take(&mut *producer.context().offsets.lock().unwrap());
    drop(producer);
    delivered
}

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    out: PathBuf,
}

/// A config for `routeproof run` on `topic` as `group`, with an alert window of
/// `alert_window_seconds`.
fn setup(brokers: &str, topic: &str, group: &str, alert_window_seconds: u64) -> Setup {
    let dir = test_dir();
    let out = dir.path().join("parquet");
    let config = dir.path().join("routeproof.toml");
    let text = format!(
        r#"
[routes]
manifests = ["{manifests}"]

[kafka]
brokers = "{brokers}"
group_id = "{group}"
topics = ["{topic}"]
# Heartbeats stall on a loaded 2-core machine: 6 s lost assignments.
session_timeout_ms = 15000

[pipeline]
workers = 2
batch_messages = 2000

[parquet]
output = "file://{out}"
max_file_rows = 20000
max_file_age_seconds = 1.0

[alerts]
topic = "{topic}-alerts"
window_seconds = {alert_window_seconds}

[dead_letters]
topic = "{topic}-dead"

[kafka.properties]
"max.poll.interval.ms" = "20000"

[telemetry]
log_interval_seconds = 5
"#,
        manifests = root().join("demo/manifests").display(),
        out = out.display(),
    );
    std::fs::write(&config, text).unwrap();
    Setup { dir, config, out }
}

/// A `routeproof run` process, killed when dropped so that a failed assertion
/// leaves no consumer behind in the group (or on the machine).
struct Running(Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Changes the consumer group of the config of `setup`.
fn set_group(setup: &Setup, group: &str) {
    let text = std::fs::read_to_string(&setup.config).unwrap();
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("group_id = ") {
                format!("group_id = \"{group}\"")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&setup.config, text.join("\n")).unwrap();
}

fn spawn_run(setup: &Setup, name: &str) -> Running {
    spawn_run_with(setup, name, &[])
}

/// [`spawn_run`] with extra environment (`ROUTEPROOF_<SECTION>__<KEY>`
/// overrides of the config).
fn spawn_run_with(setup: &Setup, name: &str, env: &[(&str, &str)]) -> Running {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(setup.dir.path().join(format!("{name}.log")))
        .unwrap();
    Running(
        Command::new(env!("CARGO_BIN_EXE_routeproof"))
            .arg("run")
            .arg("--config")
            .arg(&setup.config)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start routeproof run"),
    )
}

fn log_of(setup: &Setup, name: &str) -> String {
    std::fs::read_to_string(setup.dir.path().join(format!("{name}.log"))).unwrap_or_default()
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id() as i32;
    // SAFETY-free: use the kill command to send SIGTERM.
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "routeproof did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Rows on storage, from the files' footers only (cheap).
fn row_count(dir: &Path) -> u64 {
    parquet_files(dir)
        .iter()
        .filter_map(|p| {
            let f = std::fs::File::open(p).ok()?;
            let r = SerializedFileReader::new(f).ok()?;
            Some(r.metadata().file_metadata().num_rows() as u64)
        })
        .sum()
}

/// Rows per published offset group `(partition, first, last)`, from the
/// file names and footers.
fn group_rows(dir: &Path) -> BTreeMap<(i32, i64, i64), u64> {
    let mut groups = BTreeMap::new();
    for p in parquet_files(dir) {
        let name = p.to_string_lossy().to_string();
        let group = GroupFileName::parse(&name).unwrap_or_else(|| panic!("group name: {name}"));
        let rows = SerializedFileReader::new(std::fs::File::open(&p).unwrap())
            .unwrap()
            .metadata()
            .file_metadata()
            .num_rows() as u64;
        *groups
            .entry((group.partition, group.first, group.last))
            .or_insert(0) += rows;
    }
    groups
}

/// `(kafka_partition, kafka_offset, verdict)` of every row.
fn read_rows(dir: &Path) -> Vec<(i32, i64, String)> {
    let mut rows = Vec::new();
    for p in parquet_files(dir) {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&p).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let part = batch
                .column_by_name("kafka_partition")
                .unwrap()
                .as_any()
                .downcast_ref::<Int32Array>()
                .unwrap();
            let off = batch
                .column_by_name("kafka_offset")
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            let verdict = batch
                .column_by_name("verdict")
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            for i in 0..batch.num_rows() {
                rows.push((part.value(i), off.value(i), verdict.value(i).to_string()));
            }
        }
    }
    rows
}

/// Waits until `expected` rows are on storage; fails early (with its log) if a
/// `routeproof run` process of `running` (name, process) exited.
fn wait_for_rows(
    setup: &Setup,
    running: &mut [(&str, &mut Running)],
    expected: u64,
    timeout: Duration,
    what: &str,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let n = row_count(&setup.out);
        if n >= expected {
            return;
        }
        for (name, child) in running.iter_mut() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "{what}: {name} exited ({status}) with {n} of {expected} rows:\n{}",
                    log_of(setup, name)
                );
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what}: only {n} of {expected} rows after {timeout:?}:\n{}",
            running
                .iter()
                .map(|(name, _)| format!("--- {name}:\n{}", log_of(setup, name)))
                .collect::<String>()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Asserts every offset `0..per_partition[p]` of every partition is in the
/// output exactly once.
fn assert_exactly_once(rows: &[(i32, i64, String)], per_partition: &BTreeMap<i32, i64>) {
    let mut seen: HashMap<(i32, i64), u32> = HashMap::new();
    for (p, o, _) in rows {
        *seen.entry((*p, *o)).or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(10).collect();
    assert!(dups.is_empty(), "duplicated rows, e.g. {dups:?}");
    for (p, n) in per_partition {
        let missing: Vec<i64> = (0..*n)
            .filter(|o| !seen.contains_key(&(*p, *o)))
            .take(10)
            .collect();
        assert!(
            missing.is_empty(),
            "partition {p}: missing offsets, e.g. {missing:?}"
        );
    }
    let expected: i64 = per_partition.values().sum();
    assert_eq!(rows.len() as i64, expected, "row count");
}

/// End to end: demo records plus malformed lines in; the same verdicts as
/// `replay` on the same lines, alerts on the alert topic, dead letters with
/// their source in headers.
#[test]
fn end_to_end_parquet_alerts_and_dead_letters() {
    let _guard = serial();
    let Some((brokers, topic)) = broker_and_topic("e2e", 2) else {
        return;
    };

    let mut lines = demo_lines();
    let malformed = [
        "{\"not\": \"closed\"",
        "this is not an access log line",
        "{\"start_time\": \"2026-11-20T09:58:00.096Z\", \"method\": ",
    ];
    for (i, bad) in malformed.iter().enumerate() {
        lines.insert(50 + i * 97, bad.as_bytes().to_vec());
    }
    let mut produced = Produced::default();
    produce(&brokers, &topic, 2, lines.iter().cloned(), &mut produced);

    // The oracle: replay over the same lines.
    let replay_dir = test_dir();
    let input = replay_dir.path().join("input.log");
    let mut text = lines.join(&b'\n');
    text.push(b'\n');
    std::fs::write(&input, text).unwrap();
    let replay_out = replay_dir.path().join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_routeproof"))
        .arg("replay")
        .arg("--manifests")
        .arg(root().join("demo/manifests"))
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(&replay_out)
        .arg("--no-progress")
        .env("ROUTEPROOF_QUIET", "1")
        .output()
        .unwrap();
    assert!(status.status.success(), "replay failed: {status:?}");
    let replay_rows = {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for p in parquet_files(&replay_out.join("parquet")) {
            let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&p).unwrap())
                .unwrap()
                .build()
                .unwrap();
            for b in reader {
                let b = b.unwrap();
                let v = b
                    .column_by_name("verdict")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .clone();
                for i in 0..v.len() {
                    *counts.entry(v.value(i).to_string()).or_default() += 1;
                }
            }
        }
        counts
    };
    let replay_alerts: BTreeSet<String> = std::fs::read_to_string(replay_out.join("alerts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["fingerprint"].as_str().unwrap().to_string()
        })
        .collect();
    let expected_rows: u64 = replay_rows.values().sum();
    let expected_dead = std::fs::read_to_string(replay_out.join("deadletters.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert!(
        expected_dead >= malformed.len(),
        "replay saw {expected_dead} dead letters"
    );
    assert_eq!(expected_rows as usize, lines.len() - expected_dead);
    assert!(
        replay_rows.get("misrouted").copied().unwrap_or(0) > 0,
        "the demo holds misroutes: {replay_rows:?}"
    );

    let s = setup(&brokers, &topic, &unique("g"), 300);
    let mut child = spawn_run(&s, "run");
    wait_for_rows(
        &s,
        &mut [("run", &mut child)],
        expected_rows,
        Duration::from_secs(120),
        "end to end",
    );
    let status = terminate(&mut child);
    assert!(status.success(), "exit {status:?}: {}", log_of(&s, "run"));
    // Every partition is routed to the batch-read message queue before it is
    // assigned, so no message comes one per poll.
    assert!(
        log_of(&s, "run").contains(" 0 read one per poll,"),
        "messages read one per poll: {}",
        log_of(&s, "run")
    );

    let rows = read_rows(&s.out);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for (_, _, v) in &rows {
        *counts.entry(v.clone()).or_default() += 1;
    }
    assert_eq!(counts, replay_rows, "verdicts of run vs replay");
    let dead = consume_all(
        &brokers,
        &format!("{topic}-dead"),
        expected_dead,
        Duration::from_secs(30),
    );
    assert_eq!(dead.len(), expected_dead, "dead letters");
    let mut dead_offsets = BTreeSet::new();
    for (_, value, headers) in &dead {
        assert!(headers.contains_key("routeproof.reason"), "{headers:?}");
        assert_eq!(headers.get("routeproof.source.topic"), Some(&topic));
        let p: i32 = headers["routeproof.source.partition"].parse().unwrap();
        let o: i64 = headers["routeproof.source.offset"].parse().unwrap();
        dead_offsets.insert((p, o));
        let v: serde_json::Value = serde_json::from_slice(value).unwrap();
        assert_eq!(v["schema_version"], 1);
    }
    // Every offset is either a row or a dead letter, once.
    let mut all: Vec<(i32, i64, String)> = rows.clone();
    all.extend(
        dead_offsets
            .iter()
            .map(|(p, o)| (*p, *o, "dead".to_string())),
    );
    assert_exactly_once(&all, &produced.end_offsets);

    let alerts = consume_all(
        &brokers,
        &format!("{topic}-alerts"),
        usize::MAX,
        Duration::from_secs(5),
    );
    assert!(!alerts.is_empty(), "no alerts on the alert topic");
    let mut fingerprints = BTreeSet::new();
    for (key, value, _) in &alerts {
        let v: serde_json::Value = serde_json::from_slice(value).unwrap();
        assert_eq!(v["schema_version"], 1);
        let fp = v["fingerprint"].as_str().unwrap().to_string();
        assert_eq!(key.as_deref(), Some(fp.as_bytes()), "keyed by fingerprint");
        fingerprints.insert(fp);
    }
    assert_eq!(
        fingerprints, replay_alerts,
        "alert fingerprints of run vs replay"
    );
    // Aggregated: fewer misrouted alert messages than misrouted records (the
    // demo holds a burst), each carrying the count so far.
    let misrouted_alerts: Vec<serde_json::Value> = alerts
        .iter()
        .map(|(_, v, _)| serde_json::from_slice::<serde_json::Value>(v).unwrap())
        .filter(|v| v["type"] == "misrouted")
        .collect();
    let misrouted_rows = rows.iter().filter(|r| r.2 == "misrouted").count();
    assert!(!misrouted_alerts.is_empty());
    assert!(
        misrouted_alerts.len() < misrouted_rows,
        "{} misrouted alerts for {misrouted_rows} misrouted records: {:?}",
        misrouted_alerts.len(),
        misrouted_alerts
            .iter()
            .map(|v| format!(
                "{} {} count {} {}..{}",
                v["fingerprint"], v["state"], v["count"], v["first_seen"], v["last_seen"]
            ))
            .collect::<Vec<_>>()
    );
    let max_count = misrouted_alerts
        .iter()
        .filter_map(|v| v["count"].as_u64())
        .max()
        .unwrap_or(0);
    assert!(max_count >= 1);
}

/// Alert types reported per record (the config audits sent at start-up, such
/// as `backend_ref_unresolved`, describe the manifests and never resolve).
const TRAFFIC_ALERT_TYPES: [&str; 6] = [
    "misrouted",
    "unexpected_no_route",
    "unexpected_route",
    "served_invalid_backend",
    "redirect_mismatch",
    "unexpected_error",
];

/// When the traffic stops, every open alert gets a `resolved` message a window
/// after its last occurrence (the alert clock runs on with wall-clock time while
/// the stream is quiet), so the latest message of each fingerprint, what a
/// compacted topic keeps, is `resolved` with the final count.
#[test]
fn alerts_resolve_when_the_traffic_stops() {
    let _guard = serial();
    let Some((brokers, topic)) = broker_and_topic("resolve", 1) else {
        return;
    };
    let lines = demo_lines();
    let mut produced = Produced::default();
    produce(&brokers, &topic, 1, lines.iter().cloned(), &mut produced);
    let window = 2;
    let s = setup(&brokers, &topic, &unique("g"), window);
    let mut child = spawn_run(&s, "run");
    let rows = lines
        .iter()
        .filter(|l| serde_json::from_slice::<serde_json::Value>(l).is_ok())
        .count() as u64;
    wait_for_rows(
        &s,
        &mut [("run", &mut child)],
        rows,
        Duration::from_secs(120),
        "all records",
    );
    // Latest message per fingerprint, until all traffic alerts are resolved.
    let deadline = Instant::now() + Duration::from_secs(60);
    let latest = loop {
        let mut latest: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        for (_, value, _) in consume_all(
            &brokers,
            &format!("{topic}-alerts"),
            usize::MAX,
            Duration::from_secs(3),
        ) {
            let v: serde_json::Value = serde_json::from_slice(&value).unwrap();
            if TRAFFIC_ALERT_TYPES.contains(&v["type"].as_str().unwrap_or_default()) {
                latest.insert(v["fingerprint"].as_str().unwrap().to_string(), v);
            }
        }
        if !latest.is_empty() && latest.values().all(|v| v["state"] == "resolved") {
            break latest;
        }
        assert!(
            Instant::now() < deadline,
            "not every alert resolved: {latest:#?}\n{}",
            log_of(&s, "run")
        );
    };
    let status = terminate(&mut child);
    assert!(status.success(), "exit {status:?}: {}", log_of(&s, "run"));
    // At least one alert was still open when the records ran out (its last
    // occurrence within a window of the newest event time): only the quiet
    // clock can have resolved it.
    let newest = latest
        .values()
        .filter_map(|v| v["last_seen"].as_str())
        .max()
        .unwrap()
        .to_string();
    let newest = chrono::DateTime::parse_from_rfc3339(&newest).unwrap();
    let open_at_end = latest
        .values()
        .filter(|v| {
            let last =
                chrono::DateTime::parse_from_rfc3339(v["last_seen"].as_str().unwrap()).unwrap();
            (newest - last).num_seconds() < window as i64
        })
        .count();
    assert!(open_at_end > 0, "{latest:#?}");
    for v in latest.values() {
        assert!(v["count"].as_u64().unwrap_or(0) >= 1, "{v}");
    }
}

/// Small deterministic generator (no extra dependency).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// `n` valid Envoy JSON records (the demo's well-formed lines, cycled).
fn records(n: usize) -> impl Iterator<Item = Vec<u8>> {
    let lines: Vec<Vec<u8>> = demo_lines()
        .into_iter()
        .filter(|l| serde_json::from_slice::<serde_json::Value>(l).is_ok())
        .collect();
    (0..n).map(move |i| lines[i % lines.len()].clone())
}

/// Crash safety: SIGKILL at random points of a 200,000-record run, restarted
/// each time; in the end every record is in the output exactly once.
#[test]
fn crash_safety_sigkill_at_random_points() {
    let _guard = serial();
    let partitions = 2;
    let total = 200_000;
    let Some((brokers, topic)) = broker_and_topic("crash", partitions) else {
        return;
    };
    let mut produced = Produced::default();
    produce(&brokers, &topic, partitions, records(total), &mut produced);
    assert_eq!(produced.total(), total as i64);

    let s = setup(&brokers, &topic, &unique("g"), 300);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("crash test seed {seed}");
    let mut rng = Lcg(seed);
    for round in 0..4 {
        let name = format!("run{round}");
        // A new consumer group for every instance: after a SIGKILL, tansu
        // 0.6.0's group coordinator sometimes never assigned the partitions to
        // the restarted member of the same group (seen: 90 s without an
        // assignment, after the killed instance had lost its assignment under
        // load). Resuming does not depend on the group: the files are the
        // source of truth (`sink::kafka_files`), the committed offset only
        // counts after groups of dead letters alone, and there are none here.
        set_group(&s, &unique(&format!("g{round}")));
        let mut child = spawn_run(&s, &name);
        // Wait until this instance owns partitions, then kill it at a random
        // point: after a random number of further rows plus a random delay.
        let deadline = Instant::now() + Duration::from_secs(90);
        while !log_of(&s, &name).contains("assigned") {
            assert!(
                Instant::now() < deadline,
                "no assignment: {}",
                log_of(&s, &name)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let before = row_count(&s.out);
        let target = (before + 5_000 + rng.next() % 30_000).min(total as u64 - 20_000);
        let deadline = Instant::now() + Duration::from_secs(60);
        while row_count(&s.out) < target && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(rng.next() % 800));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        eprintln!(
            "round {round}: killed with {} rows on storage",
            row_count(&s.out)
        );
    }
    set_group(&s, &unique("g-final"));
    let mut child = spawn_run(&s, "run");
    wait_for_rows(
        &s,
        &mut [("run", &mut child)],
        total as u64,
        Duration::from_secs(300),
        "after crashes",
    );
    // Give a duplicate (if the protocol were wrong) the time to appear.
    std::thread::sleep(Duration::from_secs(2));
    let status = terminate(&mut child);
    assert!(status.success(), "exit {status:?}: {}", log_of(&s, "run"));
    let rows = read_rows(&s.out);
    assert_exactly_once(&rows, &produced.end_offsets);
    // No partial files remain in the output.
    for p in parquet_files(&s.out) {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        assert!(name.starts_with(&topic), "{name}");
    }
}

/// `parquet.max_file_rows` is exact: a group is rolled as soon as it holds
/// that many rows, between two records of a batch, and the rest of the batch
/// starts the next group. With 7,000 rows and batches of 2,000 messages,
/// rolling only after the batch that crossed the limit made groups of 8,000,
/// and the last 4,000 of these 28,000 records then waited for the age roll
/// (10 minutes here) instead of being published with the fourth full group.
#[test]
fn row_limit_rolls_groups_at_exactly_max_file_rows() {
    let _guard = serial();
    let total = 28_000;
    let Some((brokers, topic)) = broker_and_topic("rows", 1) else {
        return;
    };
    let mut produced = Produced::default();
    produce(&brokers, &topic, 1, records(total), &mut produced);
    assert_eq!(produced.total(), total as i64);
    let s = setup(&brokers, &topic, &unique("g"), 300);
    // No age roll during the test: every group is rolled by count.
    let mut child = spawn_run_with(
        &s,
        "run",
        &[
            ("ROUTEPROOF_PARQUET__MAX_FILE_ROWS", "7000"),
            ("ROUTEPROOF_PARQUET__MAX_FILE_AGE_SECONDS", "600"),
        ],
    );
    wait_for_rows(
        &s,
        &mut [("run", &mut child)],
        total as u64,
        Duration::from_secs(120),
        "four full groups",
    );
    let status = terminate(&mut child);
    assert!(status.success(), "exit {status:?}: {}", log_of(&s, "run"));
    let sizes: Vec<u64> = group_rows(&s.out).into_values().collect();
    assert_eq!(sizes, [7_000; 4], "{}", log_of(&s, "run"));
    assert_exactly_once(&read_rows(&s.out), &produced.end_offsets);
}

struct Tansu {
    child: Child,
}

impl Tansu {
    fn binary() -> PathBuf {
        if let Ok(p) = std::env::var("ROUTEPROOF_TEST_TANSU") {
            return PathBuf::from(p);
        }
        let home = std::env::var("HOME").unwrap_or_default();
        let cargo = PathBuf::from(home).join(".cargo/bin/tansu");
        if cargo.exists() {
            cargo
        } else {
            PathBuf::from("tansu")
        }
    }

    /// Starts tansu with sqlite storage in `dir` (tansu resolves the sqlite
    /// path against its working directory: `sqlite://data/tansu.db`).
    fn start(dir: &Path, port: u16, log: &Path) -> Self {
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(Self::binary())
            .args(tansu_args("sqlite://data/tansu.db", port))
            .current_dir(dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start tansu (set ROUTEPROOF_TEST_TANSU)");
        let t = Tansu { child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        t
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.wait();
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Command-line arguments of a tansu broker on `port` with `storage`.
fn tansu_args(storage: &str, port: u16) -> Vec<String> {
    vec![
        "broker".to_string(),
        "--storage-engine".to_string(),
        storage.to_string(),
        "--listener-url".to_string(),
        format!("tcp://127.0.0.1:{port}"),
        "--advertised-listener-url".to_string(),
        format!("tcp://127.0.0.1:{port}"),
    ]
}

/// `n` valid records with a malformed line every `every`-th place.
fn records_with_malformed(n: usize, every: usize) -> impl Iterator<Item = Vec<u8>> {
    records(n).enumerate().map(move |(i, r)| {
        if i % every == every - 1 {
            b"{\"start_time\": trunc".to_vec()
        } else {
            r
        }
    })
}

/// The broker (sqlite storage) restarts mid-run: the run goes on and loses
/// nothing: every record is a row once, or a dead letter (at least once: a
/// delivery cut by the restart is produced again).
#[test]
fn broker_restart_mid_run() {
    // It needs the tansu binary: on when `.ci/run` (or the caller) says so.
    if std::env::var_os("ROUTEPROOF_TEST_BROKER_RESTART").is_none() {
        eprintln!("ROUTEPROOF_TEST_BROKER_RESTART is not set: skipping the broker-restart test");
        return;
    }
    let _guard = serial();
    let port: u16 = std::env::var("ROUTEPROOF_TEST_RESTART_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(19092);
    let data = test_dir();
    let db = data.path().to_path_buf();
    let tansu_log = data.path().join("tansu.log");
    let brokers = format!("127.0.0.1:{port}");
    let broker = Tansu::start(&db, port, &tansu_log);
    let topic = unique("restart");
    let partitions = 2;
    create_topics(&brokers, &topic, partitions);
    let half = 10_000;
    let every = 250;
    let malformed = 2 * (half / every);
    let mut produced = Produced::default();
    // sqlite storage keeps records one by one: fetching from inside a batch
    // works, so batches can be large.
    produce_batched(
        &brokers,
        &topic,
        partitions,
        records_with_malformed(half, every),
        &mut produced,
        10_000,
    );

    let s = setup(&brokers, &topic, &unique("g"), 300);
    let mut child = spawn_run(&s, "run");
    wait_for_rows(
        &s,
        &mut [("run", &mut child)],
        2_000,
        Duration::from_secs(120),
        "before the restart",
    );
    broker.stop();
    std::thread::sleep(Duration::from_secs(2));
    let broker = Tansu::start(&db, port, &tansu_log);
    produce_batched(
        &brokers,
        &topic,
        partitions,
        records_with_malformed(half, every),
        &mut produced,
        10_000,
    );
    assert_eq!(produced.total(), 2 * half as i64);
    wait_for_rows(
        &s,
        &mut [("run", &mut child)],
        (2 * half - malformed) as u64,
        Duration::from_secs(180),
        "after the restart",
    );
    std::thread::sleep(Duration::from_secs(1));
    let status = terminate(&mut child);
    assert!(status.success(), "exit {status:?}: {}", log_of(&s, "run"));
    // Read until the time is up: a dead letter may be on the topic twice.
    let dead: BTreeSet<(i32, i64)> = consume_all(
        &brokers,
        &format!("{topic}-dead"),
        usize::MAX,
        Duration::from_secs(10),
    )
    .iter()
    .map(|(_, _, headers)| {
        (
            headers["routeproof.source.partition"].parse().unwrap(),
            headers["routeproof.source.offset"].parse().unwrap(),
        )
    })
    .collect();
    assert_eq!(dead.len(), malformed, "distinct dead letters");
    let mut all = read_rows(&s.out);
    all.extend(dead.iter().map(|(p, o)| (*p, *o, "dead".to_string())));
    assert_exactly_once(&all, &produced.end_offsets);
    broker.stop();
}

/// A second instance joins the group mid-run and leaves again: still exactly
/// once, and the first instance reads the partitions it gets back.
#[test]
fn rebalance_second_instance_joins() {
    let _guard = serial();
    let partitions = 4;
    let total = 100_000;
    let Some((brokers, topic)) = broker_and_topic("rebalance", partitions) else {
        return;
    };
    // Everything is produced before the instances start: tansu 0.6.0's memory
    // storage lists every record batch of a partition on each fetch, and with
    // one record per batch (see `produce`) producing while two consumers poll
    // the end of the log crawls (about 250 records/s here). The second
    // instance still joins mid-run, with most records not consumed yet.
    let mut produced = Produced::default();
    produce(&brokers, &topic, partitions, records(total), &mut produced);
    assert_eq!(produced.total(), total as i64);

    let s = setup(&brokers, &topic, &unique("g"), 300);
    let mut first = spawn_run(&s, "first");
    wait_for_rows(
        &s,
        &mut [("first", &mut first)],
        10_000,
        Duration::from_secs(120),
        "first instance",
    );
    let mut second = spawn_run(&s, "second");
    let deadline = Instant::now() + Duration::from_secs(90);
    while !log_of(&s, "second").contains("assigned") {
        assert!(
            Instant::now() < deadline,
            "second instance never got a partition: {}",
            log_of(&s, "second")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "second instance assigned with {} of {total} rows on storage",
        row_count(&s.out)
    );
    // Both work for a while, then the second leaves mid-run: its partitions
    // go back to the first instance, which held them before (librdkafka
    // clears a partition's queue forward when it is revoked: the first
    // instance must route it again, or it stops reading it).
    let joined_at = row_count(&s.out);
    wait_for_rows(
        &s,
        &mut [("first", &mut first), ("second", &mut second)],
        (joined_at + 10_000).min(total as u64),
        Duration::from_secs(300),
        "both instances",
    );
    let a = terminate(&mut second);
    eprintln!(
        "second instance left with {} of {total} rows on storage",
        row_count(&s.out)
    );
    // New records on every partition, so the partitions the first instance
    // gets back certainly have something to read, however far the run got.
    let more = 1_000;
    produce(&brokers, &topic, partitions, records(more), &mut produced);
    assert_eq!(produced.total(), (total + more) as i64);
    wait_for_rows(
        &s,
        &mut [("first", &mut first)],
        (total + more) as u64,
        Duration::from_secs(300),
        "the first instance after the second left",
    );
    std::thread::sleep(Duration::from_secs(2));
    let b = terminate(&mut first);
    assert!(a.success() && b.success(), "{a:?} {b:?}");
    assert_exactly_once(&read_rows(&s.out), &produced.end_offsets);
    assert!(
        log_of(&s, "first").contains("revoked"),
        "the first instance gave up no partition: {}",
        log_of(&s, "first")
    );
    assert!(
        log_of(&s, "first").matches("assigned").count() >= 2,
        "the first instance was not assigned partitions again: {}",
        log_of(&s, "first")
    );
    // Revoked and re-assigned partitions stay routed to the message queue.
    for name in ["first", "second"] {
        assert!(
            log_of(&s, name).contains(" 0 read one per poll,"),
            "{name}: messages read one per poll: {}",
            log_of(&s, name)
        );
    }
}
