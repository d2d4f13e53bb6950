//! `routeproof run` on a live route index fed from manifest files that change
//! mid-run, against a real Kafka-compatible broker (`ROUTEPROOF_TEST_BROKERS`,
//! set by `.ci/run`): each record is judged against the configuration in force
//! at its event time, a routing change gives `in_transition` inside the grace
//! window, a revoked ReferenceGrant is one alert on the alert topic, and the
//! health server reports readiness and the index version over real HTTP.

#[path = "support/broker.rs"]
#[allow(dead_code)]
mod broker;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use broker::{consume_all, create_topic, produce, read_columns, unique};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One GET over a fresh connection: (status code, body).
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// The `routeproof_index_version` gauge.
fn index_version(addr: &str) -> Option<u64> {
    let (_, body) = http_get(addr, "/metrics")?;
    body.lines()
        .find(|l| l.starts_with("routeproof_index_version "))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn wait_until(
    what: &str,
    timeout: Duration,
    log: &dyn Fn() -> String,
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; routeproof's log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An Envoy Gateway access-log line (the demo's format) for `path` on the
/// storefront/checkout routes of the demo manifests.
fn line(
    template: &Value,
    id: &str,
    at: DateTime<Utc>,
    path: &str,
    route_rule: &str,
    status: u16,
    upstream: Option<&str>,
) -> Vec<u8> {
    let mut v = template.clone();
    v["x-request-id"] = Value::from(id);
    v["start_time"] = Value::from(at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
    v["x-envoy-origin-path"] = Value::from(path);
    v["route_name"] = Value::from(format!(
        "httproute/shop/{route_rule}/match/0/shop_example_com"
    ));
    v["response_code"] = Value::from(status);
    match upstream {
        Some(host) => {
            v["upstream_cluster"] = Value::from(format!("httproute/shop/{route_rule}"));
            v["upstream_host"] = Value::from(host);
            v["response_code_details"] = Value::from("via_upstream");
        }
        None => {
            v["upstream_cluster"] = Value::Null;
            v["upstream_host"] = Value::Null;
            v["response_code_details"] = Value::from("direct_response");
        }
    }
    serde_json::to_vec(&v).expect("json")
}

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[test]
fn run_judges_records_by_event_time_across_a_manifest_change() {
    let Some(brokers) = broker::brokers() else {
        return;
    };
    let topic = unique("live");
    for t in [
        topic.clone(),
        format!("{topic}-alerts"),
        format!("{topic}-dead"),
    ] {
        create_topic(&brokers, &t, 1);
    }

    // Manifests: the demo's, then v2 flips the orders split (orders-v1 90 ->
    // 0, orders-v2 10 -> 100) and deletes the checkout ReferenceGrant.
    let dir = tempfile::tempdir().expect("tempdir");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).expect("mkdir");
    for f in ["gateway.yaml", "services.yaml", "routes.yaml"] {
        std::fs::copy(root().join("demo/manifests").join(f), manifests.join(f)).expect("copy");
    }
    let v1 = std::fs::read_to_string(manifests.join("routes.yaml")).expect("routes");
    let split =
        "[{name: orders-v1, port: 8080, weight: 90}, {name: orders-v2, port: 8080, weight: 10}]";
    assert!(v1.contains(split), "demo routes changed: update this test");
    let grant_at = v1.find("---\napiVersion: gateway.networking.k8s.io/v1\nkind: ReferenceGrant");
    let grant_at = grant_at.expect("demo routes end with the checkout ReferenceGrant");
    let v2 = v1[..grant_at].replace(
        split,
        "[{name: orders-v1, port: 8080, weight: 0}, {name: orders-v2, port: 8080, weight: 100}]",
    );

    let health = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").to_string()
    };
    let out = dir.path().join("parquet");
    let config = dir.path().join("routeproof.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[routes]
manifests = ["{manifests}"]
poll_interval_seconds = 0.2
grace_seconds = 30.0
lead_seconds = 2.0

[kafka]
brokers = "{brokers}"
group_id = "{group}"
topics = ["{topic}"]
session_timeout_ms = 6000

[pipeline]
workers = 1

[parquet]
output = "file://{out}"
max_file_age_seconds = 0.5

[alerts]
topic = "{topic}-alerts"

[dead_letters]
topic = "{topic}-dead"

[telemetry]
log_interval_seconds = 5
listen = "{health}"
"#,
            manifests = manifests.display(),
            group = unique("g"),
            out = out.display(),
        ),
    )
    .expect("config");
    let log_path = dir.path().join("run.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_routeproof"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log"))
        .spawn()
        .expect("start routeproof run");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    wait_until("/readyz", Duration::from_secs(60), &log, || {
        http_get(&health, "/readyz").is_some_and(|(s, _)| s == 200)
    });
    assert_eq!(index_version(&health), Some(1), "{}", log());

    let template: Value = {
        // The demo log holds deliberately broken lines; its first is well formed.
        let demo = std::fs::read(root().join("demo/logs/envoy-gateway.log")).expect("demo log");
        let first = demo.split(|b| *b == b'\n').next().expect("a line");
        serde_json::from_slice(first).expect("json")
    };
    let orders = "storefront/rule/1";
    let (orders_v1, orders_v2) = (Some("10.244.1.11:9000"), Some("10.244.1.12:9000"));
    let checkout = Some("10.244.2.30:8080");

    // Records flowing before the change.
    let early = Utc::now() - chrono::Duration::seconds(60);
    produce(
        &brokers,
        &topic,
        1,
        (0..10).map(|i| {
            let id = format!("flow-{i}");
            line(
                &template,
                &id,
                early,
                "/api/orders/1",
                orders,
                200,
                orders_v1,
            )
        }),
    );
    wait_until("the first rows", Duration::from_secs(60), &log, || {
        read_columns(&out, &["request_id"]).len() == 10
    });

    let before_change = Utc::now();
    write_atomically(&manifests.join("routes.yaml"), &v2);
    wait_until("index version 2", Duration::from_secs(30), &log, || {
        index_version(&health) == Some(2)
    });
    let after_change = Utc::now();

    let late = before_change - chrono::Duration::seconds(120);
    let settled = after_change + chrono::Duration::seconds(60);
    let in_grace = after_change + chrono::Duration::seconds(5);
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        // (id, line, verdict, index_version)
        (
            "late-v1",
            line(
                &template,
                "late-v1",
                late,
                "/api/orders/2",
                orders,
                200,
                orders_v1,
            ),
            "ok",
            "1",
        ),
        (
            "late-checkout",
            line(
                &template,
                "late-checkout",
                late,
                "/checkout/pay",
                "checkout/rule/0",
                200,
                checkout,
            ),
            "ok",
            "1",
        ),
        (
            "new-v2",
            line(
                &template,
                "new-v2",
                settled,
                "/api/orders/3",
                orders,
                200,
                orders_v2,
            ),
            "ok",
            "2",
        ),
        (
            "new-v1",
            line(
                &template,
                "new-v1",
                settled,
                "/api/orders/4",
                orders,
                200,
                orders_v1,
            ),
            "misrouted",
            "2",
        ),
        (
            "grace-v1",
            line(
                &template,
                "grace-v1",
                in_grace,
                "/api/orders/5",
                orders,
                200,
                orders_v1,
            ),
            "in_transition",
            "2",
        ),
        (
            "new-checkout-served",
            line(
                &template,
                "new-checkout-served",
                settled,
                "/checkout/pay",
                "checkout/rule/0",
                200,
                checkout,
            ),
            "served_invalid_backend",
            "2",
        ),
        (
            "new-checkout-500",
            line(
                &template,
                "new-checkout-500",
                settled,
                "/checkout/pay",
                "checkout/rule/0",
                500,
                None,
            ),
            "expected_error",
            "2",
        ),
    ];
    produce(&brokers, &topic, 1, cases.iter().map(|c| c.1.clone()));
    let expected_rows = 10 + cases.len();
    wait_until("all rows", Duration::from_secs(60), &log, || {
        read_columns(&out, &["request_id"]).len() >= expected_rows
    });

    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit {status:?}: {}", log());

    let rows = read_columns(
        &out,
        &["request_id", "verdict", "index_version", "index_stale"],
    );
    let explain = read_columns(
        &out,
        &[
            "request_id",
            "actual_backend",
            "actual_source",
            "verdict_reason",
            "expected_backends",
        ],
    );
    assert_eq!(rows.len(), expected_rows, "each record once");
    let by_id: BTreeMap<String, (String, String, String)> = rows
        .into_iter()
        .map(|r| {
            let [id, verdict, version, stale] =
                <[Option<String>; 4]>::try_from(r).expect("4 columns");
            (
                id.expect("request id"),
                (
                    verdict.expect("verdict"),
                    version.expect("index version"),
                    stale.expect("stale flag"),
                ),
            )
        })
        .collect();
    for i in 0..10 {
        let row = &by_id[&format!("flow-{i}")];
        assert_eq!((row.0.as_str(), row.1.as_str()), ("ok", "1"), "flow-{i}");
    }
    for (id, _, verdict, version) in &cases {
        let row = &by_id[*id];
        assert_eq!(
            (row.0.as_str(), row.1.as_str(), row.2.as_str()),
            (*verdict, *version, "false"),
            "{id}: {:?}",
            explain.iter().find(|r| r[0].as_deref() == Some(*id))
        );
    }

    let alerts: Vec<Value> = consume_all(
        &brokers,
        &format!("{topic}-alerts"),
        usize::MAX,
        Duration::from_secs(5),
    )
    .iter()
    .map(|(_, v, _)| serde_json::from_slice(v).expect("alert json"))
    .collect();
    let of_type = |t: &str| alerts.iter().filter(|a| a["type"] == t).collect::<Vec<_>>();
    let revoked = of_type("referencegrant_revoked");
    assert_eq!(revoked.len(), 1, "{alerts:#?}");
    assert_eq!(revoked[0]["route"], "shop/checkout");
    assert_eq!(revoked[0]["expected_backends"][0], "payments/checkout");
    let misrouted = of_type("misrouted");
    assert!(
        misrouted
            .iter()
            .any(|a| a["actual_backend"] == "shop/orders-v1"),
        "{alerts:#?}"
    );
    assert!(
        of_type("in_transition").is_empty(),
        "in_transition is not an alert: {alerts:#?}"
    );
}
