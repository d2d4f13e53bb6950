//! `routeproof run` writing Parquet to S3-compatible object storage
//! (`parquet.output = "s3://..."` through the `object_store` crate), against a
//! real S3 HTTP server and the real broker: `.ci/run` starts moto's S3 server
//! (PyPI `moto[server]`) and sets `ROUTEPROOF_TEST_S3_ENDPOINT`, and tansu for
//! `ROUTEPROOF_TEST_BROKERS`. The process is killed with SIGKILL mid-run and
//! restarted: recovery reads the published objects back from the bucket, and
//! in the end every record is in exactly one object.

#[path = "support/broker.rs"]
#[allow(dead_code)]
mod broker;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, ObjectStoreExt};

use broker::{create_topics, kafka_sections, produce, read_columns, unique};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Creates a bucket with an unsigned `PUT /bucket` (moto accepts it).
fn create_bucket(endpoint: &str, bucket: &str) {
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(addr).expect("S3 endpoint");
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    s.read_to_string(&mut response).expect("read");
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "create bucket: {response}"
    );
}

/// Downloads every `.parquet` object under `prefix` into `into`; returns the
/// object count.
fn download(endpoint: &str, bucket: &str, prefix: &str, into: &Path) -> usize {
    let store = AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_bucket_name(bucket)
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .build()
        .expect("store");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _ = std::fs::remove_dir_all(into);
    std::fs::create_dir_all(into).expect("mkdir");
    rt.block_on(async {
        let prefix = object_store::path::Path::from(prefix);
        let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await.expect("list");
        let mut n = 0;
        for (i, meta) in objects.iter().enumerate() {
            if !meta.location.as_ref().ends_with(".parquet") {
                continue;
            }
            let bytes = store
                .get(&meta.location)
                .await
                .expect("get")
                .bytes()
                .await
                .expect("body");
            std::fs::write(into.join(format!("{i}.parquet")), &bytes).expect("write");
            n += 1;
        }
        n
    })
}

/// Per partition: rows, and the first missing offset ranges.
fn gaps(rows: &[Vec<Option<String>>]) -> String {
    let mut by_partition: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for r in rows {
        let offset = r[1].as_deref().and_then(|o| o.parse().ok()).unwrap_or(-1);
        by_partition
            .entry(r[0].clone().unwrap_or_default())
            .or_default()
            .push(offset);
    }
    let mut out = Vec::new();
    for (p, mut offsets) in by_partition {
        offsets.sort_unstable();
        let mut missing = Vec::new();
        let mut next = 0;
        for o in &offsets {
            if *o > next {
                missing.push(format!("{next}..{o}"));
            }
            next = next.max(o + 1);
        }
        missing.truncate(5);
        out.push(format!(
            "p{p}: {} rows, up to {next}, missing {missing:?}",
            offsets.len()
        ));
    }
    out.join("; ")
}

fn spawn_run(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log");
    Command::new(env!("CARGO_BIN_EXE_routeproof"))
        .args(["run", "--config"])
        .arg(config)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start routeproof run")
}

#[test]
fn run_publishes_to_s3_exactly_once_across_a_sigkill() {
    let Some(brokers) = broker::brokers() else {
        return;
    };
    let Ok(endpoint) = std::env::var("ROUTEPROOF_TEST_S3_ENDPOINT") else {
        eprintln!("ROUTEPROOF_TEST_S3_ENDPOINT is not set: skipping the S3 test");
        return;
    };
    let topic = unique("s3");
    create_topics(&brokers, &topic, 2);
    let bucket = unique("bucket").to_lowercase();
    create_bucket(&endpoint, &bucket);

    // Well-formed demo lines, cycled.
    let demo = std::fs::read(root().join("demo/logs/envoy-gateway.log")).expect("demo log");
    let lines: Vec<&[u8]> = demo
        .split(|b| *b == b'\n')
        .filter(|l| serde_json::from_slice::<serde_json::Value>(l).is_ok())
        .collect();
    const RECORDS: usize = 20_000;
    produce(
        &brokers,
        &topic,
        2,
        (0..RECORDS).map(|i| lines[i % lines.len()].to_vec()),
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("routeproof.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[routes]
manifests = ["{manifests}"]

{kafka}
[pipeline]
workers = 2
batch_messages = 500

[parquet]
output = "s3://{bucket}/routeproof"
staging_dir = "{staging}"
max_file_rows = 1500
max_file_age_seconds = 0.5

[parquet.object_store]
aws_endpoint = "{endpoint}"
aws_allow_http = "true"
aws_region = "us-east-1"

"#,
            manifests = root().join("demo/manifests").display(),
            kafka = kafka_sections(&brokers, &topic),
            staging = dir.path().join("staging").display(),
        ),
    )
    .expect("config");
    let log = dir.path().join("run.log");
    let local = dir.path().join("downloaded");
    let rows_now = || {
        download(&endpoint, &bucket, "routeproof", &local);
        read_columns(&local, &["kafka_partition"]).len()
    };

    // Kill it once some, but not all, records are published.
    let mut child = spawn_run(&config, &log);
    let deadline = Instant::now() + Duration::from_secs(120);
    while rows_now() == 0 {
        assert!(
            Instant::now() < deadline,
            "nothing published: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    let mut child = spawn_run(&config, &log);
    let deadline = Instant::now() + Duration::from_secs(180);
    while rows_now() < RECORDS {
        assert!(
            Instant::now() < deadline,
            "only {} of {RECORDS} rows ({}): {}",
            rows_now(),
            gaps(&read_columns(&local, &["kafka_partition", "kafka_offset"])),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit {status:?}");

    let objects = download(&endpoint, &bucket, "routeproof", &local);
    assert!(objects > 1, "rolled into several objects: {objects}");
    let rows = read_columns(&local, &["kafka_partition", "kafka_offset"]);
    let mut seen: HashMap<(String, String), u32> = HashMap::new();
    for r in &rows {
        let key = (
            r[0].clone().expect("partition"),
            r[1].clone().expect("offset"),
        );
        *seen.entry(key).or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(dups.is_empty(), "duplicated records: {dups:?}");
    for p in 0..2 {
        for o in 0..(RECORDS / 2) {
            assert!(
                seen.contains_key(&(p.to_string(), o.to_string())),
                "partition {p} offset {o} missing"
            );
        }
    }
    assert_eq!(rows.len(), RECORDS);
}
