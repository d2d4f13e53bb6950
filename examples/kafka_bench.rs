//! Kafka → Parquet throughput of `routeproof run`, next to `replay` on the same data.
//!
//! ```sh
//! cargo build --release --bin routeproof --example kafka_bench
//! target/release/examples/kafka_bench BROKERS|mock [RECORDS] [PARTITIONS]
//! ```
//!
//! Produces RECORDS (default 1,000,000) Envoy JSON lines (the demo log, cycled)
//! round-robin to PARTITIONS (default 2) partitions of a new topic, then times
//! one `routeproof run` instance from start until every record is in published
//! Parquet files (read from the file footers), reads its peak memory (VmHWM)
//! and stops it with SIGTERM. Then times `routeproof replay` on the same lines.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use parquet::file::reader::{FileReader, SerializedFileReader};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

fn rows(dir: &Path) -> u64 {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                if let Some(r) = std::fs::File::open(&p)
                    .ok()
                    .and_then(|f| SerializedFileReader::new(f).ok())
                {
                    n += r.metadata().file_metadata().num_rows() as u64;
                }
            }
        }
    }
    n
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut brokers = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:9092".into());
    // `mock`: librdkafka's in-process mock cluster (keeps at most 5 MB per
    // partition, so use enough partitions); for an indicative figure only.
    let mock = (brokers == "mock").then(|| {
        let m = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
        brokers = m.bootstrap_servers();
        m
    });
    let total: usize = args
        .get(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let partitions: i32 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(2);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("routeproof")))
        .expect("routeproof next to the example");
    let demo = std::fs::read(root.join("demo/logs/envoy-gateway.log")).expect("demo");
    let lines: Vec<&[u8]> = demo
        .split(|b| *b == b'\n')
        // Well-formed records only, so that every record becomes one row.
        .filter(|l| serde_json::from_slice::<serde_json::Value>(l).is_ok())
        .collect();
    let work = tempfile::tempdir().expect("tempdir");
    let topic = format!("bench-{}", std::process::id());

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("admin");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (t, p) in [
        (topic.clone(), partitions),
        (format!("{topic}-alerts"), 1),
        (format!("{topic}-dead"), 1),
    ] {
        if let Some(m) = &mock {
            m.create_topic(&t, p, 1).expect("create topic");
            continue;
        }
        rt.block_on(admin.create_topics(
            [&NewTopic::new(&t, p, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        ))
        .expect("create topic");
    }

    let started = Instant::now();
    let producer: ThreadedProducer<_> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "50")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let mut input: Vec<u8> = Vec::new();
    for i in 0..total {
        let line = lines[i % lines.len()];
        input.extend_from_slice(line);
        input.push(b'\n');
        let mut record = BaseRecord::<(), [u8]>::to(&topic)
            .payload(line)
            .partition(i as i32 % partitions);
        while let Err((_, r)) = producer.send(record) {
            record = r;
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    producer.flush(Duration::from_secs(300)).expect("flush");
    let produce_secs = started.elapsed().as_secs_f64();
    println!(
        "produced {total} records to {partitions} partitions in {produce_secs:.2}s ({:.0}/s)",
        total as f64 / produce_secs
    );

    let out = work.path().join("parquet");
    let config = work.path().join("bench.toml");
    std::fs::write(
        &config,
        format!(
            r#"[routes]
manifests = ["{}"]
[kafka]
brokers = "{brokers}"
group_id = "bench-{topic}"
topics = ["{topic}"]
[pipeline]
workers = 2
[parquet]
output = "{}"
max_file_age_seconds = 5.0
[alerts]
topic = "{topic}-alerts"
[dead_letters]
topic = "{topic}-dead"
[telemetry]
log_interval_seconds = 0
"#,
            root.join("demo/manifests").display(),
            out.display()
        ),
    )
    .expect("config");
    let started = Instant::now();
    let mut child = Command::new(&exe)
        .args(["run", "--config"])
        .arg(&config)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start run");
    let mut peak = 0;
    while rows(&out) < total as u64 {
        peak = peak.max(vm_hwm_kib(child.id()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(Some(s)) = child.try_wait() {
            panic!("run exited early: {s}");
        }
    }
    let run_secs = started.elapsed().as_secs_f64();
    peak = peak.max(vm_hwm_kib(child.id()).unwrap_or(0));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    println!(
        "run:    {total} records in {run_secs:.2}s = {:.0} records/s (Kafka -> Parquet, incl. start-up), peak RSS {:.0} MiB",
        total as f64 / run_secs,
        peak as f64 / 1024.0
    );

    let input_path = work.path().join("input.log");
    std::fs::write(&input_path, input).expect("input");
    let started = Instant::now();
    let status = Command::new(&exe)
        .arg("replay")
        .arg("--manifests")
        .arg(root.join("demo/manifests"))
        .arg("--input")
        .arg(&input_path)
        .arg("--out")
        .arg(work.path().join("replay"))
        .arg("--no-progress")
        .stdout(Stdio::null())
        .env("ROUTEPROOF_QUIET", "1")
        .status()
        .expect("replay");
    let replay_secs = started.elapsed().as_secs_f64();
    assert!(status.success());
    println!(
        "replay: {total} records in {replay_secs:.2}s = {:.0} records/s (file -> Parquet, one thread)",
        total as f64 / replay_secs
    );
}
