//! The live index against an in-process fake API server speaking the real
//! list/watch protocol (see `tests/support/fake_apiserver.rs`): the real kube
//! client, watcher and reflector run.

mod support;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use routeproof::gateway::CompileOptions;
use routeproof::kube::{
    client_for_url, HistoryOptions, IndexHistory, KubeOptions, KubeSource, Publisher,
};
use routeproof::pipeline::{LiveOutcome, Origin, Outputs, PipelineOptions, RecordProcessor};
use routeproof::sink::alerts::{Alert, AlertAggregator, AlertAggregatorConfig, AlertType};
use routeproof::sink::deadletter::DeadLetterFileSink;
use routeproof::sink::parquet::{ParquetSink, ParquetSinkConfig, SequentialFileNamer};
use routeproof::verdict::Verdict;
use support::fake_apiserver::{standard_resources, FakeApiServer};

const GATEWAYS: &str = "/apis/gateway.networking.k8s.io/v1/gateways";
const ROUTES: &str = "/apis/gateway.networking.k8s.io/v1/httproutes";
const GRANTS: &str = "/apis/gateway.networking.k8s.io/v1beta1/referencegrants";
const SERVICES: &str = "/api/v1/services";
const SLICES: &str = "/apis/discovery.k8s.io/v1/endpointslices";

fn seed(server: &FakeApiServer, route_backends: Value) {
    server.apply(
        GATEWAYS,
        json!({"metadata": {"name": "gw", "namespace": "infra"}, "spec": {"gatewayClassName": "eg",
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}]}}),
    );
    server.apply(
        ROUTES,
        json!({"metadata": {"name": "cart", "namespace": "shop"}, "spec": {
            "parentRefs": [{"name": "gw", "namespace": "infra"}], "hostnames": ["shop.example.com"],
            "rules": [{"backendRefs": route_backends}]}}),
    );
    server.apply(
        GRANTS,
        json!({"metadata": {"name": "allow-shop", "namespace": "backend"}, "spec": {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "shop"}],
            "to": [{"group": "", "kind": "Service"}]}}),
    );
    for (ns, name, ip) in [
        ("backend", "orders", "10.0.0.5"),
        ("shop", "a", "10.0.1.1"),
        ("shop", "b", "10.0.1.2"),
    ] {
        server.apply(
            SERVICES,
            json!({"metadata": {"name": name, "namespace": ns}, "spec": {"ports": [{"port": 80, "targetPort": 8080}]}}),
        );
        server.apply(
            SLICES,
            json!({"metadata": {"name": format!("{name}-x"), "namespace": ns, "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4", "endpoints": [{"addresses": [ip]}], "ports": [{"port": 8080}]}),
        );
    }
}

struct Live {
    history: Arc<IndexHistory>,
    alerts: mpsc::Receiver<Alert>,
    _source: KubeSource,
}

async fn start(server: &FakeApiServer, options: HistoryOptions) -> Live {
    let history = Arc::new(IndexHistory::new(options));
    let (tx, alerts) = mpsc::channel();
    let publisher = Publisher::new(history.clone(), CompileOptions::default(), Some(tx));
    let client = client_for_url(&server.url()).expect("client");
    let source = KubeSource::start(
        client,
        publisher,
        KubeOptions {
            debounce: Duration::from_millis(50),
            probe_interval: Duration::from_millis(100),
        },
    )
    .await
    .expect("start");
    Live {
        history,
        alerts,
        _source: source,
    }
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Judges single records and reads their verdicts from the stats.
struct Judge {
    _dir: tempfile::TempDir,
    parquet: ParquetSink,
    aggregator: AlertAggregator,
    queue: Vec<Alert>,
    dead: DeadLetterFileSink,
}

impl Judge {
    fn new() -> Judge {
        let dir = tempfile::tempdir().expect("tempdir");
        let parquet = ParquetSink::new(
            ParquetSinkConfig::new(dir.path().join("parquet")),
            SequentialFileNamer::new("live"),
        )
        .expect("parquet");
        let dead = DeadLetterFileSink::open(dir.path().join("dead.jsonl"), 1024).expect("dead");
        Judge {
            _dir: dir,
            parquet,
            aggregator: AlertAggregator::new(AlertAggregatorConfig::default()),
            queue: Vec::new(),
            dead,
        }
    }

    fn judge(&mut self, history: &IndexHistory, line: &str) -> (LiveOutcome, Option<Verdict>) {
        let options = PipelineOptions::default();
        let mut processor = RecordProcessor::new_live(&options);
        let mut out = Outputs {
            parquet: &mut self.parquet,
            alerts: &mut self.aggregator,
            alert_queue: &mut self.queue,
            dead_letters: &mut self.dead,
        };
        let origin = Origin::File {
            name: "test",
            offset: 0,
            line: 1,
        };
        let outcome = processor
            .process_payload_live(line.as_bytes(), origin, &mut out, history)
            .expect("sinks");
        let verdict = Verdict::ALL
            .into_iter()
            .find(|v| processor.stats().verdict(*v) == 1);
        (outcome, verdict)
    }
}

fn iso(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// An Envoy JSON access-log record served by `upstream` (`None`: the gateway
/// answered `status` itself).
fn record(time_us: i64, upstream: Option<&str>, status: u16) -> String {
    json!({"start_time": iso(time_us), ":authority": "shop.example.com", "method": "GET",
        "x-envoy-origin-path": "/", "protocol": "HTTP/1.1", "response_code": status,
        "response_flags": "-", "response_code_details": if upstream.is_some() { "via_upstream" } else { "direct_response" },
        "upstream_host": upstream, "downstream_local_address": "10.0.0.1:10080",
        "x-request-id": format!("r-{time_us}"), "duration": 1, "bytes_sent": 10})
    .to_string()
}

const S: i64 = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referencegrant_deleted_while_records_flow() {
    let server = FakeApiServer::start(standard_resources()).await;
    seed(
        &server,
        json!([{"name": "orders", "namespace": "backend", "port": 80}]),
    );
    let live = start(
        &server,
        HistoryOptions {
            grace: Duration::from_secs(5),
            ..HistoryOptions::default()
        },
    )
    .await;
    let mut judge = Judge::new();
    wait_for("ready", || live.history.is_ready()).await;
    let first = live.history.current().expect("snapshot");
    // The start-up audit has nothing to say about this config.
    let startup: Vec<Alert> = live.alerts.try_iter().collect();
    assert!(startup.is_empty(), "{startup:?}");

    server.delete(GRANTS, "backend", "allow-shop");
    wait_for("new snapshot", || {
        live.history
            .current()
            .is_some_and(|s| s.version > first.version)
    })
    .await;
    let changed = live.history.current().expect("snapshot");
    let t = changed.effective_us;

    let served = Some("10.0.0.5:8080");
    assert_eq!(
        judge
            .judge(&live.history, &record(t - 60 * S, served, 200))
            .1,
        Some(Verdict::Ok)
    );
    assert_eq!(
        judge
            .judge(&live.history, &record(t - 3 * S, served, 200))
            .1,
        Some(Verdict::Ok)
    );
    assert_eq!(
        judge.judge(&live.history, &record(t + 10 * S, None, 500)).1,
        Some(Verdict::ExpectedError)
    );
    assert_eq!(
        judge
            .judge(&live.history, &record(t + 10 * S, served, 200))
            .1,
        Some(Verdict::ServedInvalidBackend)
    );
    // Inside the grace window the stale gateway is not alerted on.
    assert_eq!(
        judge.judge(&live.history, &record(t + S, served, 200)).1,
        Some(Verdict::InTransition)
    );

    let alerts: Vec<Alert> = live.alerts.try_iter().collect();
    let revoked: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.alert_type == AlertType::ReferencegrantRevoked)
        .collect();
    assert_eq!(revoked.len(), 1, "{alerts:?}");
    assert_eq!(revoked[0].route.as_deref(), Some("shop/cart"));
    assert_eq!(
        revoked[0].expected_backends,
        vec!["backend/orders".to_string()]
    );
    assert!(
        revoked[0].reason.contains("backend/allow-shop"),
        "{}",
        revoked[0].reason
    );
    assert!(
        !alerts
            .iter()
            .any(|a| a.alert_type == AlertType::BackendRefUnresolved),
        "the revoked ref is not alerted twice: {alerts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_flip_is_in_transition_not_misrouted() {
    let server = FakeApiServer::start(standard_resources()).await;
    let weights = |a: u32, b: u32| json!([{"name": "a", "port": 80, "weight": a}, {"name": "b", "port": 80, "weight": b}]);
    seed(&server, weights(100, 0));
    let live = start(
        &server,
        HistoryOptions {
            grace: Duration::from_secs(5),
            lead: Duration::from_secs(1),
            ..HistoryOptions::default()
        },
    )
    .await;
    let mut judge = Judge::new();
    wait_for("ready", || live.history.is_ready()).await;
    let first = live.history.current().expect("snapshot");

    let mut route: Value = json!({"metadata": {"name": "cart", "namespace": "shop"}, "spec": {
        "parentRefs": [{"name": "gw", "namespace": "infra"}], "hostnames": ["shop.example.com"],
        "rules": [{"backendRefs": weights(0, 100)}]}});
    server.apply(ROUTES, route.take());
    wait_for("new snapshot", || {
        live.history
            .current()
            .is_some_and(|s| s.version > first.version)
    })
    .await;
    let t = live.history.current().expect("snapshot").effective_us;

    let (a, b) = (Some("10.0.1.1:8080"), Some("10.0.1.2:8080"));
    let mut verdicts = Vec::new();
    for (dt, upstream, expect) in [
        (-30 * S, a, Verdict::Ok),
        (-S / 2, a, Verdict::Ok),
        (-S / 2, b, Verdict::InTransition), // the gateway was ahead of the watch
        (S, a, Verdict::InTransition),      // the gateway has not applied it yet
        (S, b, Verdict::Ok),
        (30 * S, b, Verdict::Ok),
    ] {
        let v = judge.judge(&live.history, &record(t + dt, upstream, 200)).1;
        verdicts.push(v);
        assert_eq!(v, Some(expect), "record at {dt} µs served by {upstream:?}");
    }
    assert!(!verdicts.contains(&Some(Verdict::Misrouted)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_outage_goes_stale_and_recovers_without_missing_changes() {
    let server = FakeApiServer::start(standard_resources()).await;
    seed(&server, json!([{"name": "a", "port": 80}]));
    let live = start(
        &server,
        HistoryOptions {
            stale_after: Duration::from_millis(700),
            ..HistoryOptions::default()
        },
    )
    .await;
    wait_for("ready", || live.history.is_ready()).await;
    assert!(!live.history.is_stale());
    let before = live.history.current().expect("snapshot");

    server.set_down(true);
    wait_for("stale", || live.history.is_stale()).await;
    let at = live
        .history
        .at(routeproof::kube::history::now_us())
        .expect("still serving");
    assert!(at.stale);
    assert_eq!(
        at.snapshot.version, before.version,
        "the last index keeps serving"
    );
    // A change while the API server is unreachable for routeproof.
    server.apply(
        ROUTES,
        json!({"metadata": {"name": "cart", "namespace": "shop"}, "spec": {
            "parentRefs": [{"name": "gw", "namespace": "infra"}], "hostnames": ["shop.example.com"],
            "rules": [{"backendRefs": [{"name": "b", "port": 80}]}]}}),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.set_down(false);
    wait_for("the change after recovery", || {
        live.history.current().is_some_and(|s| {
            s.index.routes.iter().any(|r| {
                r.rules
                    .iter()
                    .any(|rule| rule.backends.iter().any(|b| b.key == "shop/b"))
            })
        })
    })
    .await;
    wait_for("fresh", || !live.history.is_stale()).await;
    assert!(
        live.history
            .stats()
            .watch_errors
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );

    // 410 Gone: history compacted while watches were closed -> re-list.
    server.expire_history();
    server.apply(
        SERVICES,
        json!({"metadata": {"name": "c", "namespace": "shop"}, "spec": {"ports": [{"port": 80}]}}),
    );
    wait_for("re-listed change", || {
        live.history
            .current()
            .is_some_and(|s| s.endpoints.service("shop", "c").is_some())
    })
    .await;
    assert!(
        live.history
            .stats()
            .relists
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_held_until_synced_and_missing_crds_are_warnings() {
    // No ReferenceGrant or GRPCRoute CRD served.
    let resources: Vec<_> = standard_resources()
        .into_iter()
        .filter(|r| r.kind != "ReferenceGrant" && r.kind != "GRPCRoute")
        .collect();
    let server = FakeApiServer::start(resources).await;
    seed_without_grant(&server);
    let history = Arc::new(IndexHistory::new(HistoryOptions::default()));
    let mut judge = Judge::new();
    assert_eq!(
        judge
            .judge(&history, &record(0, Some("10.0.1.1:8080"), 200))
            .0,
        LiveOutcome::Held
    );
    let publisher = Publisher::new(history.clone(), CompileOptions::default(), None);
    let client = client_for_url(&server.url()).expect("client");
    let _source = KubeSource::start(client, publisher, KubeOptions::default())
        .await
        .expect("start");
    wait_for("ready", || history.is_ready()).await;
    let now = routeproof::kube::history::now_us();
    assert_eq!(
        judge.judge(&history, &record(now, Some("10.0.1.1:8080"), 200)),
        (LiveOutcome::Processed, Some(Verdict::Ok))
    );
    let text = routeproof::kube::serve::metrics_text(&history);
    assert!(text.contains("routeproof_index_ready 1"), "{text}");
    assert!(!server
        .requests()
        .iter()
        .any(|r| r.contains("referencegrants")));
}

fn seed_without_grant(server: &FakeApiServer) {
    server.apply(
        GATEWAYS,
        json!({"metadata": {"name": "gw", "namespace": "infra"}, "spec": {"gatewayClassName": "eg",
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}]}}),
    );
    server.apply(
        ROUTES,
        json!({"metadata": {"name": "cart", "namespace": "shop"}, "spec": {
            "parentRefs": [{"name": "gw", "namespace": "infra"}], "hostnames": ["shop.example.com"],
            "rules": [{"backendRefs": [{"name": "a", "port": 80}]}]}}),
    );
    server.apply(
        SERVICES,
        json!({"metadata": {"name": "a", "namespace": "shop"}, "spec": {"ports": [{"port": 80, "targetPort": 8080}]}}),
    );
    server.apply(
        SLICES,
        json!({"metadata": {"name": "a-x", "namespace": "shop", "labels": {"kubernetes.io/service-name": "a"}},
            "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.1.1"]}], "ports": [{"port": 8080}]}),
    );
}
