//! End to end: `routeproof replay` on the demo set (real files in, real Parquet,
//! alert and dead-letter files out), read back and checked.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use arrow_array::{Array, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn replay(out: &Path, extra: &[&str]) -> std::process::Output {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_routeproof"));
    cmd.args([
        "replay",
        "--manifests",
        &format!("{root}/demo/manifests"),
        "--out",
    ])
    .arg(out)
    .args(extra);
    cmd.output().expect("run routeproof")
}

fn read_rows(dir: &Path) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                assert!(
                    name.ends_with(".parquet") && !name.starts_with('.'),
                    "stray file {name}"
                );
                let reader =
                    ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&p).unwrap())
                        .unwrap()
                        .build()
                        .unwrap();
                batches.extend(reader.map(Result::unwrap));
            }
        }
    }
    batches
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a StringArray {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("column {name}"))
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap()
}

#[test]
fn demo_replay_finds_the_planted_problems() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let root = env!("CARGO_MANIFEST_DIR");
    let output = replay(
        &out,
        &["--input", &format!("{root}/demo/logs/envoy-gateway.log")],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let batches = read_rows(&out.join("parquet"));
    let mut verdicts: BTreeMap<String, usize> = BTreeMap::new();
    let mut misrouted_actual = BTreeMap::new();
    for b in &batches {
        let verdict = column(b, "verdict");
        let actual = column(b, "actual_backend");
        for i in 0..b.num_rows() {
            *verdicts.entry(verdict.value(i).to_string()).or_default() += 1;
            if verdict.value(i) == "misrouted" {
                *misrouted_actual
                    .entry(actual.value(i).to_string())
                    .or_insert(0) += 1;
            }
        }
    }
    // 522 lines: 520 records and 2 dead letters. The planted problems (see
    // demo/generate_logs.py) come out exactly; everything else is ok or the
    // configured 500 of the backendRef without a ReferenceGrant.
    assert_eq!(verdicts.values().sum::<usize>(), 520, "{verdicts:?}");
    assert_eq!(verdicts.get("misrouted"), Some(&12), "{verdicts:?}");
    assert_eq!(
        verdicts.get("unexpected_no_route"),
        Some(&4),
        "{verdicts:?}"
    );
    assert_eq!(verdicts.get("unexpected_route"), Some(&1), "{verdicts:?}");
    assert_eq!(
        verdicts.get("served_invalid_backend"),
        Some(&3),
        "{verdicts:?}"
    );
    assert!(
        verdicts.get("expected_error").copied().unwrap_or(0) > 0,
        "{verdicts:?}"
    );
    assert_eq!(verdicts.get("unknown_actual"), None, "{verdicts:?}");
    assert_eq!(misrouted_actual.get("shop/web"), Some(&12));
    // Hive partitions by event time: the demo spans 09:58 to 11:00 on 2026-11-20.
    assert!(out.join("parquet/dt=2026-11-20/hour=09").is_dir());
    assert!(out.join("parquet/dt=2026-11-20/hour=10").is_dir());

    let dead = std::fs::read_to_string(out.join("deadletters.jsonl")).unwrap();
    let reasons: Vec<String> = dead
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{dead}");
    assert!(
        reasons.contains(&"truncated_json".to_string()),
        "{reasons:?}"
    );
    assert!(reasons.contains(&"invalid_utf8".to_string()), "{reasons:?}");

    let alerts: Vec<serde_json::Value> = std::fs::read_to_string(out.join("alerts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let misrouted_final = alerts
        .iter()
        .filter(|a| a["type"] == "misrouted")
        .map(|a| a["count"].as_u64().unwrap())
        .max();
    assert_eq!(misrouted_final, Some(12), "{alerts:?}");
    for t in [
        "unexpected_no_route",
        "served_invalid_backend",
        "unexpected_route",
    ] {
        assert!(
            alerts.iter().any(|a| a["type"] == t),
            "no {t} alert in {alerts:?}"
        );
    }
    assert!(
        !alerts.iter().any(|a| a["type"] == "expected_error"),
        "expected errors are not alerts"
    );
    // The start-up config audit of the manifests: the checkout route's
    // cross-namespace backendRef has no ReferenceGrant.
    assert!(
        alerts.iter().any(|a| a["type"] == "backend_ref_unresolved"
            && a["route"] == "shop/checkout"
            && a["reason"].as_str().unwrap().starts_with("RefNotPermitted")),
        "{alerts:?}"
    );

    // A second run into the same directory is refused without --append.
    let again = replay(
        &out,
        &["--input", &format!("{root}/demo/logs/envoy-gateway.log")],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--append"));
}

#[test]
fn gzip_and_stdin_inputs_give_the_same_rows() {
    use std::io::Write;
    let root = env!("CARGO_MANIFEST_DIR");
    let log = std::fs::read(format!("{root}/demo/logs/envoy-gateway.log")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("access.log.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&log).unwrap();
    enc.finish().unwrap();
    let out_gz = dir.path().join("gz");
    let output = replay(&out_gz, &["--input", gz.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows_gz: usize = read_rows(&out_gz.join("parquet"))
        .iter()
        .map(RecordBatch::num_rows)
        .sum();

    let out_stdin = dir.path().join("stdin");
    let mut child = Command::new(env!("CARGO_BIN_EXE_routeproof"))
        .args([
            "replay",
            "--manifests",
            &format!("{root}/demo/manifests"),
            "--input",
            "-",
            "--out",
        ])
        .arg(&out_stdin)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&log).unwrap();
    assert!(child.wait().unwrap().success());
    let batches = read_rows(&out_stdin.join("parquet"));
    let rows_stdin: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows_gz, 520);
    assert_eq!(rows_stdin, 520);
    let source = column(&batches[0], "source_file");
    assert_eq!(source.value(0), "-");
    assert!(batches[0].column_by_name("kafka_topic").unwrap().is_null(0));
}

#[test]
fn bad_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let log = format!("{root}/demo/logs/envoy-gateway.log");
    for (args, needle) in [
        (
            vec!["--input", log.as_str(), "--format", "klingon"],
            "--format",
        ),
        (vec!["--input", "/no/such/file.log"], "/no/such/file.log"),
        (vec!["--input", log.as_str(), "--gateway", "x/y"], "x/y"),
    ] {
        let output = replay(&dir.path().join("o"), &args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

/// `--config` supplies what the options do not (manifests, format, file size),
/// and dead letters carry no secrets: the values of the configured query keys
/// and the default headers are masked.
#[test]
fn config_file_and_redacted_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let demo = std::fs::read(format!("{root}/demo/logs/envoy-gateway.log")).unwrap();
    let valid: Vec<&[u8]> = demo
        .split(|&b| b == b'\n')
        .filter(|l| serde_json::from_slice::<serde_json::Value>(l).is_ok())
        .take(3)
        .collect();
    let mut log = Vec::new();
    for line in &valid {
        log.extend_from_slice(line);
        log.push(b'\n');
    }
    // Truncated JSON with a secret header and secret query parameters.
    let bad = br#"{"authorization":"Bearer s3cret-bearer","path":"/cb?access_token=abc123&session=sess42&token=tok7","#;
    let bad_len = bad.len();
    log.extend_from_slice(bad);
    log.push(b'\n');
    let input = dir.path().join("in.log");
    std::fs::write(&input, &log).unwrap();
    let config = dir.path().join("replay.toml");
    std::fs::write(
        &config,
        format!(
            r#"[routes]
manifests = ["{root}/demo/manifests"]
[pipeline]
format = "envoy-json"
[parquet]
max_file_rows = 1
[kafka]
brokers = "unused:9092"
topics = ["unused"]
[redaction]
query_keys = ["access_token", "session"]
"#
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_routeproof"))
        .args(["replay", "--no-progress", "--config"])
        .arg(&config)
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run routeproof");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // max_file_rows = 1 from the file: one Parquet file per row.
    let rows: usize = read_rows(&out.join("parquet"))
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(rows, valid.len());
    let mut files = 0;
    let mut stack = vec![out.join("parquet")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                files += 1;
            }
        }
    }
    assert_eq!(files, valid.len());
    let dead = std::fs::read_to_string(out.join("deadletters.jsonl")).unwrap();
    assert_eq!(dead.lines().count(), 1, "{dead}");
    let letter: serde_json::Value = serde_json::from_str(dead.trim()).unwrap();
    let raw = letter["raw"].as_str().unwrap();
    for secret in ["s3cret-bearer", "abc123", "sess42"] {
        assert!(!dead.contains(secret), "{secret} leaked: {dead}");
    }
    assert!(raw.contains(r#""authorization":"[REDACTED]""#), "{raw}");
    assert!(
        raw.contains("access_token=[REDACTED]&session=[REDACTED]&token=tok7"),
        "{raw}"
    );
    // The length of the record as it arrived, before masking.
    assert_eq!(letter["raw_len"].as_u64(), Some(bad_len as u64));
}
