//! `routeproof run` on a live route index that changes mid-run, fed from
//! manifest files and from the Kubernetes API (an in-process server speaking
//! the real list/watch protocol, `tests/support/fake_apiserver.rs`), against a
//! real Kafka-compatible broker (`ROUTEPROOF_TEST_BROKERS`, set by `.ci/run`):
//! each record is judged against the configuration in force at its event
//! time, a routing change gives `in_transition` inside the grace window, a
//! revoked ReferenceGrant is one alert on the alert topic, and the health
//! server reports readiness and the index version over real HTTP.

#[path = "support/broker.rs"]
#[allow(dead_code)]
mod broker;
mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use broker::{consume_all, create_topics, kafka_sections, produce, read_columns, unique};
use support::fake_apiserver::{standard_resources, FakeApiServer};

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

/// The demo manifests (v1) and the change: v2 flips the orders split
/// (orders-v1 90 -> 0, orders-v2 10 -> 100) and deletes the checkout
/// ReferenceGrant.
struct Manifests {
    v1: String,
    v2: String,
}

fn demo_manifests() -> Manifests {
    let read = |f: &str| std::fs::read_to_string(root().join("demo/manifests").join(f)).expect(f);
    let routes = read("routes.yaml");
    let split =
        "[{name: orders-v1, port: 8080, weight: 90}, {name: orders-v2, port: 8080, weight: 10}]";
    assert!(
        routes.contains(split),
        "demo routes changed: update this test"
    );
    let grant_at =
        routes.find("---\napiVersion: gateway.networking.k8s.io/v1\nkind: ReferenceGrant");
    let grant_at = grant_at.expect("demo routes end with the checkout ReferenceGrant");
    let routes_v2 = routes[..grant_at].replace(
        split,
        "[{name: orders-v1, port: 8080, weight: 0}, {name: orders-v2, port: 8080, weight: 100}]",
    );
    let base = format!(
        "{}\n---\n{}\n---\n",
        read("gateway.yaml"),
        read("services.yaml")
    );
    Manifests {
        v1: format!("{base}{routes}"),
        v2: format!("{base}{routes_v2}"),
    }
}

/// The objects of a multi-document YAML text.
fn yaml_objects(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .filter_map(|doc| {
            let v: Value = serde::Deserialize::deserialize(doc).expect("yaml");
            v.is_object().then_some(v)
        })
        .collect()
}

/// How the live index is fed.
enum Feed {
    /// A manifest directory, rewritten for the change.
    Files(PathBuf),
    /// The fake API server, and the runtime it runs on (kept alive).
    Kube {
        server: FakeApiServer,
        _runtime: tokio::runtime::Runtime,
    },
}

impl Feed {
    fn files(dir: &Path, m: &Manifests) -> Feed {
        let manifests = dir.join("manifests");
        std::fs::create_dir(&manifests).expect("mkdir");
        std::fs::write(manifests.join("objects.yaml"), &m.v1).expect("write");
        Feed::Files(manifests)
    }

    fn kube(m: &Manifests) -> Feed {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = runtime.block_on(FakeApiServer::start(standard_resources()));
        let feed = Feed::Kube {
            server,
            _runtime: runtime,
        };
        for object in yaml_objects(&m.v1) {
            feed.apply(object);
        }
        feed
    }

    fn apply(&self, object: Value) {
        if let Feed::Kube { server, .. } = self {
            let kind = object["kind"].as_str().unwrap_or_default();
            // Kinds the fake server does not serve (GatewayClass) are left out,
            // as a cluster without that CRD would.
            if let Some(r) = standard_resources().into_iter().find(|r| r.kind == kind) {
                server.apply(&r.path(), object);
            }
        }
    }

    /// The `[routes]` keys of the run's config.
    fn routes_config(&self) -> String {
        match self {
            Feed::Files(dir) => format!(
                "manifests = [\"{}\"]\npoll_interval_seconds = 0.2",
                dir.display()
            ),
            Feed::Kube { server, .. } => format!(
                "source = \"kube\"\nkube_api_url = \"{}\"\ndebounce_ms = 100",
                server.url()
            ),
        }
    }

    /// Applies v2.
    fn change(&self, m: &Manifests) {
        match self {
            Feed::Files(dir) => write_atomically(&dir.join("objects.yaml"), &m.v2),
            Feed::Kube { server, .. } => {
                let storefront = yaml_objects(&m.v2)
                    .into_iter()
                    .find(|o| o["kind"] == "HTTPRoute" && o["metadata"]["name"] == "storefront")
                    .expect("storefront route");
                self.apply(storefront);
                let grants = standard_resources()
                    .into_iter()
                    .find(|r| r.kind == "ReferenceGrant")
                    .expect("grants served");
                server.delete(&grants.path(), "payments", "shop-to-checkout");
            }
        }
    }
}

/// Waits until the gauge has not moved for a second and returns it (a change
/// may be published as one snapshot or several).
fn settled_index_version(health: &str, log: &dyn Fn() -> String) -> u64 {
    let mut last = (index_version(health), Instant::now());
    wait_until(
        "a settled index version",
        Duration::from_secs(30),
        log,
        || {
            let now = index_version(health);
            if now != last.0 {
                last = (now, Instant::now());
            }
            last.0.is_some() && last.1.elapsed() >= Duration::from_secs(1)
        },
    );
    last.0.unwrap_or_default()
}

#[test]
fn run_judges_records_by_event_time_across_a_manifest_file_change() {
    scenario(Feed::files);
}

#[test]
fn run_judges_records_by_event_time_across_a_kubernetes_api_change() {
    scenario(|_, m| Feed::kube(m));
}

fn scenario(feed: impl FnOnce(&Path, &Manifests) -> Feed) {
    let Some(brokers) = broker::brokers() else {
        return;
    };
    let topic = unique("live");
    create_topics(&brokers, &topic, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let manifests = demo_manifests();
    let feed = feed(dir.path(), &manifests);

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
{routes}
grace_seconds = 30.0
lead_seconds = 2.0

{kafka}
[pipeline]
workers = 1

[parquet]
output = "file://{out}"
max_file_age_seconds = 0.5

[telemetry]
log_interval_seconds = 5
listen = "{health}"
"#,
            routes = feed.routes_config(),
            kafka = kafka_sections(&brokers, &topic),
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
    let version_before = settled_index_version(&health, &log).to_string();

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
    feed.change(&manifests);
    wait_until("a new index version", Duration::from_secs(30), &log, || {
        index_version(&health).is_some_and(|v| v.to_string() != version_before)
    });
    let version_after = settled_index_version(&health, &log).to_string();
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
            version_before.as_str(),
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
            version_before.as_str(),
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
            version_after.as_str(),
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
            version_after.as_str(),
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
            version_after.as_str(),
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
            version_after.as_str(),
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
            version_after.as_str(),
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
        assert_eq!(
            (row.0.as_str(), row.1.as_str()),
            ("ok", version_before.as_str()),
            "flow-{i}"
        );
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
