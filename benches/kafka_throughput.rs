//! Kafka → Parquet throughput of `routeproof run`, next to the broker's raw
//! consume rate and `replay` on the same data (a benchmark, not a test).
//!
//! ```sh
//! tansu broker --storage-engine memory://tansu/ --listener-url tcp://127.0.0.1:19192 \
//!     --advertised-listener-url tcp://127.0.0.1:19192 &
//! RP_BENCH_BROKERS=127.0.0.1:19192 cargo bench --bench kafka_throughput
//! ```
//!
//! Settings (environment): `RP_BENCH_BROKERS` (default `127.0.0.1:19192`, or
//! `mock` for librdkafka's in-process mock cluster), `RP_BENCH_KAFKA_RECORDS`
//! (default 1,000,000), `RP_BENCH_PARTITIONS` (default 2), `RP_BENCH_WORKERS`
//! (`pipeline.workers`, default 2), `RP_BENCH_FETCH_WAIT_MS` (the consumers'
//! `fetch.wait.max.ms`, default 10: tansu 0.6.0 sleeps for half of what is left
//! of it after *every* fetch, even one that found records, so librdkafka's
//! default of 500 ms caps a consumer at a few fetches per second; against
//! Kafka, which answers as soon as it has data, the default is fine),
//! `RP_BENCH_FETCH_MAX_BYTES` (`fetch.max.bytes`, default 50 MiB; tansu fills a
//! response from the first partition asked for, so a smaller value interleaves
//! partitions more finely), `RP_BENCH_FILE_ROWS` (`parquet.max_file_rows`,
//! default 125,000) and `RP_BENCH_FILE_AGE_S` (`parquet.max_file_age_seconds`,
//! default 1.0; see "Roll policy" below), `RP_BENCH_BIN` (the routeproof
//! binary to measure, e.g. the profile-guided build; default the one Cargo
//! built), `RP_BENCH_BROKER_PID` (the broker's process id when it runs on this machine:
//! its CPU time is reported for the consume-only and run steps),
//! `RP_BENCH_KAFKA_INPUT` and `RP_BENCH_KAFKA_MANIFESTS` (a file of JSON log
//! lines and the manifests they were generated for, instead of the demo set:
//! e.g. the ~400-byte lines of `RP_BENCH_SHAPE=compact RP_BENCH_DIR=…
//! RP_BENCH_ONLY_GENERATE=1 cargo bench --bench replay_vs_duckdb`).
//!
//! Steps:
//! 1. produce the records (the demo's well-formed Envoy JSON lines, cycled)
//!    round-robin to the partitions of a new topic;
//! 2. **consume only**: one rdkafka consumer reads every message and does
//!    nothing with it: the most the broker and client can deliver here;
//! 3. **run**: one `routeproof run` instance from start until every record is
//!    in published Parquet files (file footers), peak RSS (VmHWM) and CPU time
//!    (utime + stime of the process), then SIGTERM;
//! 4. **replay** on the same lines (one thread), wall and CPU time.
//!
//! **Roll policy.** Files are rolled by record count, with the age roll as a
//! safety net, as a busy production instance rolls them (by size or count,
//! long before its age limit). The records go round-robin to the partitions,
//! so with the defaults every partition's last file is rolled by count right
//! after its last record, and "start to last row" measures processing, not a
//! wait. With an age roll alone (`RP_BENCH_FILE_ROWS=0`), each partition's
//! last file is published only when it is `RP_BENCH_FILE_AGE_S` old: its
//! first group opens at about 0.2 s and rolls at about 1.2 s, the next cannot
//! publish before about 2.2 s, so 1,000,000 records can never show more than
//! about 450,000 records/s start to last row, however fast the processing.
//!
//! CPU times are reported with every wall time: the machine is shared. With a
//! broker pid, the run step also prints the CPU ceiling: the rate at which
//! `run` and the broker together would keep every core busy.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use parquet::file::reader::{FileReader, SerializedFileReader};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

#[path = "support/env.rs"]
mod env;
use env::{path_var, routeproof_binary};

/// Rows in the published Parquet files under `dir`, and how many Kafka
/// partitions those files cover (file names are
/// `<topic>+<partition>+<first>+<last>+<i>of<n>.parquet`).
fn rows(dir: &Path) -> (u64, usize) {
    let mut n = 0;
    let mut partitions = std::collections::BTreeSet::new();
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
                    let name = p.file_name().and_then(|f| f.to_str()).unwrap_or("");
                    if let Some(partition) = name.split('+').nth(1) {
                        partitions.insert(partition.to_string());
                    }
                }
            }
        }
    }
    (n, partitions.len())
}

/// Peak resident set size of a running process, KiB.
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

/// CPU time (user + system, all threads) of a running process.
fn cpu_of(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|h| *h > 0).unwrap_or(100);
    Some(Duration::from_micros(ticks * 1_000_000 / hz))
}

/// CPU time of the broker process named by `RP_BENCH_BROKER_PID` (when it runs
/// on this machine), to show how much of the machine the broker itself takes.
fn broker_cpu() -> Option<Duration> {
    cpu_of(&std::env::var("RP_BENCH_BROKER_PID").ok()?)
}

/// ", broker CPU …s" since `before`, or nothing without a broker pid.
fn broker_cpu_since(before: Option<Duration>) -> String {
    match (before, broker_cpu()) {
        (Some(b), Some(a)) => format!(", broker CPU {:.2}s", a.saturating_sub(b).as_secs_f64()),
        _ => String::new(),
    }
}

/// CPU time of the waited-for children so far.
fn children_cpu() -> Duration {
    // SAFETY: `usage` is a valid out-pointer for getrusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let mut brokers =
        std::env::var("RP_BENCH_BROKERS").unwrap_or_else(|_| "127.0.0.1:19192".into());
    let total: usize = env_or("RP_BENCH_KAFKA_RECORDS", 1_000_000);
    let partitions: i32 = env_or("RP_BENCH_PARTITIONS", 2);
    let workers: usize = env_or("RP_BENCH_WORKERS", 2);
    let fetch_wait_ms: u64 = env_or("RP_BENCH_FETCH_WAIT_MS", 10);
    let partition_fetch_bytes: u64 = env_or("RP_BENCH_PARTITION_FETCH_BYTES", 1 << 20);
    let fetch_max_bytes: u64 = env_or("RP_BENCH_FETCH_MAX_BYTES", 50 << 20);
    // 0: no count roll (`max_file_rows` is then the default's 1,000,000 per
    // file, more than a partition gets here).
    let file_rows: u64 = env_or("RP_BENCH_FILE_ROWS", 125_000);
    let file_age_s: f64 = env_or("RP_BENCH_FILE_AGE_S", 1.0);
    // `mock`: librdkafka's in-process mock cluster, for an indicative figure.
    let mock = (brokers == "mock").then(|| {
        let m = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
        brokers = m.bootstrap_servers();
        m
    });
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let exe = routeproof_binary();
    let input_file = path_var("RP_BENCH_KAFKA_INPUT");
    let manifests =
        path_var("RP_BENCH_KAFKA_MANIFESTS").unwrap_or_else(|| root.join("demo/manifests"));
    let source = input_file
        .clone()
        .unwrap_or_else(|| root.join("demo/logs/envoy-gateway.log"));
    let log = std::fs::read(&source).expect("input lines");
    let lines: Vec<&[u8]> = log
        .split(|b| *b == b'\n')
        .take(if input_file.is_some() {
            total
        } else {
            usize::MAX
        })
        // Well-formed records only, so that every record becomes one row.
        .filter(|l| serde_json::from_slice::<serde_json::Value>(l).is_ok())
        .collect();
    let work = tempfile::tempdir().expect("tempdir");
    let topic = format!("bench-{}", std::process::id());
    println!(
        "kafka_throughput: {total} records from {}, {partitions} partitions, broker {}, fetch.wait.max.ms {fetch_wait_ms}",
        source.display(),
        if mock.is_some() { "mock" } else { &brokers }
    );

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

    // 1. Produce.
    let started = Instant::now();
    let producer: ThreadedProducer<_> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "50")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let mut input: Vec<u8> = Vec::new();
    let mut bytes = 0usize;
    for i in 0..total {
        let line = lines[i % lines.len()];
        bytes += line.len();
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
    producer.flush(Duration::from_secs(600)).expect("flush");
    drop(producer);
    let produce = started.elapsed();
    println!(
        "produce:      {total} records ({:.0} MiB) in {:.2}s = {:.0} records/s",
        bytes as f64 / (1 << 20) as f64,
        produce.as_secs_f64(),
        rate(total, produce)
    );

    // 2. Consume only: the broker's and librdkafka's ceiling.
    let own_cpu = || cpu_of("self").unwrap_or_default();
    let broker_before = broker_cpu();
    let cpu_before = own_cpu();
    let started = Instant::now();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("bench-raw-{topic}"))
        .set("enable.auto.commit", "false")
        .set("queued.max.messages.kbytes", "65536")
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        .set(
            "max.partition.fetch.bytes",
            partition_fetch_bytes.to_string(),
        )
        .set("fetch.max.bytes", fetch_max_bytes.to_string())
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(&topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let (mut n, mut payload_bytes) = (0usize, 0usize);
    // Runs of consecutive messages from one partition: how evenly the broker
    // interleaves partitions (what partition-affine workers need).
    let (mut runs, mut last_partition, mut longest, mut current) = (0usize, -1, 0usize, 0usize);
    let deadline = Instant::now() + Duration::from_secs(600);
    while n < total && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            n += 1;
            payload_bytes += m.payload().map_or(0, <[u8]>::len);
            if m.partition() != last_partition {
                runs += 1;
                last_partition = m.partition();
                current = 0;
            }
            current += 1;
            longest = longest.max(current);
        }
    }
    drop(consumer);
    let consume = started.elapsed();
    let consume_cpu = own_cpu().saturating_sub(cpu_before);
    let consume_broker = broker_cpu_since(broker_before);
    assert_eq!(n, total, "consume only: not every record arrived");
    println!(
        "consume only: {n} records ({:.0} MiB) in {:.2}s = {:.0} records/s, CPU {:.2}s (client side){consume_broker}",
        payload_bytes as f64 / (1 << 20) as f64,
        consume.as_secs_f64(),
        rate(n, consume),
        consume_cpu.as_secs_f64()
    );
    println!(
        "consume only: partitions interleaved in {runs} runs, {:.0} messages per run on average, longest {longest}",
        n as f64 / runs.max(1) as f64
    );

    // 3. routeproof run.
    let out = work.path().join("parquet");
    let config = work.path().join("bench.toml");
    let file_rows_line = if file_rows > 0 {
        format!("max_file_rows = {file_rows}\n")
    } else {
        String::new()
    };
    std::fs::write(
        &config,
        format!(
            r#"[routes]
manifests = ["{}"]
[kafka]
brokers = "{brokers}"
group_id = "bench-{topic}"
topics = ["{topic}"]
session_timeout_ms = 10000
[pipeline]
workers = {workers}
[parquet]
output = "{}"
max_file_age_seconds = {file_age_s:?}
{file_rows_line}[alerts]
topic = "{topic}-alerts"
[dead_letters]
topic = "{topic}-dead"
[telemetry]
log_interval_seconds = 0
[kafka.properties]
"fetch.wait.max.ms" = "{fetch_wait_ms}"
"max.partition.fetch.bytes" = "{partition_fetch_bytes}"
"fetch.max.bytes" = "{fetch_max_bytes}"
"#,
            manifests.display(),
            out.display()
        ),
    )
    .expect("config");
    let broker_before = broker_cpu();
    let started = Instant::now();
    // RP_BENCH_RUN_WRAPPER (e.g. "perf record -g -o /tmp/run.data") runs
    // `run` under a profiler; the pid polled is then the wrapper's.
    let wrapper = std::env::var("RP_BENCH_RUN_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    // run's log, for its timeline line (a wrapper may redirect it elsewhere).
    let run_log = work.path().join("run.err");
    let mut child = command
        .args(["run", "--config"])
        .arg(&config)
        .stderr(
            std::fs::File::create(&run_log)
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        )
        .spawn()
        .expect("start run");
    let pid = child.id().to_string();
    let (mut peak, mut first_rows, mut cpu) = (0, None, Duration::ZERO);
    loop {
        let (n, published_partitions) = rows(&out);
        // The steady span starts once every partition has published a file:
        // from then on the rows on storage lag the records consumed by about
        // one group per partition at both ends. Starting at the very first
        // file would count the other partitions' unpublished groups as
        // work done inside the span and overstate the rate.
        if published_partitions >= partitions as usize && first_rows.is_none() {
            first_rows = Some((Instant::now(), n, cpu_of(&pid).unwrap_or_default()));
        }
        peak = peak.max(vm_hwm_kib(child.id()).unwrap_or(0));
        cpu = cpu_of(&pid).unwrap_or(cpu);
        if n >= total as u64 {
            break;
        }
        if let Ok(Some(s)) = child.try_wait() {
            panic!("run exited early: {s}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let finished = Instant::now();
    let run = finished - started;
    let run_broker_cpu = match (broker_before, broker_cpu()) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b)),
        _ => None,
    };
    let run_broker = broker_cpu_since(broker_before);
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = child.wait();
    let roll = if file_rows > 0 {
        format!("{file_rows} rows or {file_age_s} s")
    } else {
        format!("{file_age_s} s of age")
    };
    println!(
        "run:          {total} records in {:.2}s = {:.0} records/s (start to last row, incl. group join; files rolled at {roll}), CPU {:.2}s, peak RSS {:.0} MiB{run_broker}",
        run.as_secs_f64(),
        rate(total, run),
        cpu.as_secs_f64(),
        peak as f64 / 1024.0
    );
    // What this machine allows at best: every core busy with `run` or the
    // broker, at the CPU per record they just used. When `run` is near this
    // figure, adding cores (or moving the broker off the machine) is what
    // raises it; far below it, scheduling or waiting is the limit.
    if let Some(broker) = run_broker_cpu {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per_record = (cpu + broker).as_secs_f64() / total as f64;
        if per_record > 0.0 {
            println!(
                "run:          CPU ceiling on {cores} cores = {:.0} records/s ({:.2} µs of run + broker CPU per record, broker {:.0}%)",
                cores as f64 / per_record,
                per_record * 1e6,
                100.0 * broker.as_secs_f64() / (cpu + broker).as_secs_f64()
            );
        }
    }
    if let Some((at, n0, cpu0)) = first_rows {
        // Both ends lag the records by about one file (its roll), so the
        // span is the steady-state rate without group join and start-up.
        let span = finished - at;
        let n = total - n0 as usize;
        if n > 0 && !span.is_zero() {
            println!(
                "run:          {n} records after every partition's first file in {:.2}s = {:.0} records/s, CPU {:.2}s",
                span.as_secs_f64(),
                rate(n, span),
                cpu.saturating_sub(cpu0).as_secs_f64()
            );
        }
    }

    // An extra figure, from run's own log (its stop summary): the rate from
    // the first message read to the last record processed, i.e. without the
    // group join and start-up before, and without waiting for the last
    // groups' roll after (the figures above include both).
    if let Some((first, last)) = std::fs::read_to_string(&run_log)
        .ok()
        .as_deref()
        .and_then(run_timeline)
    {
        if last > first {
            println!(
                "run:          first message read to last record processed (run's own log; no group join, no final roll): {:.2}s = {:.0} records/s",
                last - first,
                total as f64 / (last - first)
            );
        }
    }

    // 4. replay on the same lines.
    let input_path = work.path().join("input.log");
    std::fs::write(&input_path, input).expect("input");
    let cpu_before = children_cpu();
    let started = Instant::now();
    let status = Command::new(&exe)
        .arg("replay")
        .arg("--manifests")
        .arg(&manifests)
        .arg("--input")
        .arg(&input_path)
        .arg("--out")
        .arg(work.path().join("replay"))
        .arg("--no-progress")
        .stdout(Stdio::null())
        .env("ROUTEPROOF_QUIET", "1")
        .status()
        .expect("replay");
    let replay = started.elapsed();
    let replay_cpu = children_cpu().saturating_sub(cpu_before);
    assert!(status.success());
    println!(
        "replay:       {total} records in {:.2}s = {:.0} records/s (file -> Parquet, one thread), CPU {:.2}s",
        replay.as_secs_f64(),
        rate(total, replay),
        replay_cpu.as_secs_f64()
    );
}

/// `first_message_read` and `last_record_processed` (seconds) from the
/// timeline line `run` logs when it stops.
fn run_timeline(log: &str) -> Option<(f64, f64)> {
    let line = log.lines().find(|l| l.contains("timeline since start:"))?;
    let value = |key: &str| -> Option<f64> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.split(|c: char| c == 's' || c.is_whitespace())
            .next()?
            .parse()
            .ok()
    };
    Some((
        value("first_message_read=")?,
        value("last_record_processed=")?,
    ))
}
