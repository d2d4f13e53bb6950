//! Side-by-side throughput bench: `routeproof replay` against DuckDB converting
//! the same Envoy Gateway JSON access log to zstd Parquet.
//!
//! Run: `cargo bench --bench replay_vs_duckdb`
//!
//! It generates, deterministically,
//! * a route config written as YAML manifests (one Gateway, a few hundred
//!   HTTPRoutes over many hostnames, their Services and EndpointSlices with pod
//!   IPs), so the real `--manifests` loader runs, and
//! * N Envoy Gateway default JSON lines (typed, keys sorted, nulls;
//!   access-log-formats.md §2.1/§2.3) consistent with that config: the
//!   `upstream_cluster` is `httproute/<ns>/<name>/rule/<i>` of the rule that
//!   matches, `upstream_host` a pod of one of its backends (by weight), plus a
//!   small share of misroutes, `NR` (no route) and `UH` (no healthy upstream),
//!
//! then runs the release `routeproof replay` binary on the file (single
//! threaded, as replay is), measuring wall time and peak RSS, and DuckDB
//! (`SET threads=1; COPY (SELECT * FROM read_json(...)) TO ... (FORMAT
//! parquet, COMPRESSION zstd)`) on the same file, and prints a table.
//!
//! Environment:
//! * `RP_BENCH_LINES`: number of log lines (default 1,000,000);
//! * `RP_BENCH_DIR`: work directory (default a fresh temp dir, removed at the
//!   end unless `RP_BENCH_KEEP` is set);
//! * `RP_BENCH_ZSTD_LEVELS`: comma-separated zstd levels for routeproof
//!   (default `1,3`; the first, the default level, is the headline figure);
//! * `RP_BENCH_RUNS`: runs, each of routeproof (every level) then DuckDB;
//!   the best of each is reported (default 1), and the CPU-time ratio of each
//!   run's pair, whose median is the figure to quote on a VM whose speed
//!   drifts (the two sides of a pair run back to back);
//! * `RP_BENCH_SKIP_DUCKDB`: skip the DuckDB side;
//! * `RP_BENCH_ONLY_GENERATE`: write the manifests and the log and stop;
//! * `RP_BENCH_SEED`: mixed into the generator's seeds (default 0, the bench's
//!   own data set); `deploy/build-pgo.sh` trains on other seeds, so the
//!   profile-guided build never sees the measured file;
//! * `RP_BENCH_BIN`: the routeproof binary to measure (default: the one Cargo
//!   built for this bench), e.g. the profile-guided build of
//!   `deploy/build-pgo.sh`;
//! * `RP_BENCH_SHAPE`: `default` (all 24 keys of Envoy Gateway's default JSON
//!   format, about 872 bytes a line) or `compact` (about 400 bytes: a smaller
//!   Envoy JSON format with the 12 keys the decision and the resolution use:
//!   authority, method, origin path, status, flags, duration, bytes sent,
//!   start time, listener address, upstream cluster and host, request id);
//! * `RP_BENCH_ENVELOPE`: `none` (default), `fluent-bit` or `vector`: each
//!   line wrapped as that shipper sends it to Kafka, with the gateway pod's
//!   metadata (what `routeproof run` usually reads; DuckDB then converts the
//!   envelope objects, nested `kubernetes` struct included).
//!
//! DuckDB comes from PyPI (`pip install duckdb`); `python3` must import it.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GATEWAY_NS: &str = "infra";
const GATEWAY_NAME: &str = "public";
const NAMESPACES: usize = 24;
const ROUTES: usize = 320;
/// Two routes share each hostname (different path prefixes).
const ROUTES_PER_HOST: usize = 2;
/// Start of the generated traffic: 2026-08-20T10:00:00Z, spread over two hours.
const START_EPOCH_MS: i64 = 1_787_220_000_000;
const SPAN_MS: i64 = 2 * 3600 * 1000;

#[path = "support/env.rs"]
mod env;
#[path = "support/rng.rs"]
mod rng;
use env::{path_var, routeproof_binary};
use rng::Rng;

struct Backend {
    service: String,
    weight: u32,
    pods: Vec<String>,
}

struct Rule {
    /// Path prefix the rule matches (`None`: a rule with no matches, `/`).
    prefix: Option<String>,
    /// A header the rule also requires (canary); such rules are never the
    /// logged rule in this traffic, but make the decision ambiguous.
    header: Option<(&'static str, &'static str)>,
    backends: Vec<Backend>,
    /// Share of the route's traffic.
    traffic: u32,
}

struct Route {
    namespace: String,
    name: String,
    host: String,
    rules: Vec<Rule>,
}

struct Config {
    routes: Vec<Route>,
}

fn pod_ip(n: u32) -> String {
    // 10.64.0.0/10, sequential.
    let n = n + 1;
    format!("10.{}.{}.{}", 64 + (n >> 16), (n >> 8) & 0xff, n & 0xff)
}

fn build_config(seed: u64) -> Config {
    let mut pod = 0u32;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed);
    let mut backend = |service: String, weight: u32, rng: &mut Rng| {
        let n = 1 + rng.below(4) as u32;
        let pods = (0..n)
            .map(|_| {
                pod += 1;
                pod_ip(pod)
            })
            .collect();
        Backend {
            service,
            weight,
            pods,
        }
    };
    let mut routes = Vec::with_capacity(ROUTES);
    for r in 0..ROUTES {
        let namespace = format!("team-{:02}", r % NAMESPACES);
        let name = format!("app-{r:03}");
        let host = format!(
            "svc-{:03}.{}.example.com",
            r / ROUTES_PER_HOST,
            ["shop", "api", "internal", "corp"][r % 4]
        );
        let base = format!("/r{}", r % ROUTES_PER_HOST);
        let mut rules = Vec::new();
        if r % 8 == 0 {
            rules.push(Rule {
                prefix: Some(format!("{base}/api")),
                header: Some(("x-canary", "true")),
                backends: vec![backend(format!("{name}-canary"), 1, &mut rng)],
                traffic: 0,
            });
        }
        rules.push(Rule {
            prefix: Some(format!("{base}/api")),
            header: None,
            backends: vec![
                backend(format!("{name}-api-v1"), 90, &mut rng),
                backend(format!("{name}-api-v2"), 10, &mut rng),
            ],
            traffic: 60,
        });
        rules.push(Rule {
            prefix: Some(format!("{base}/static")),
            header: None,
            backends: vec![backend(format!("{name}-static"), 1, &mut rng)],
            traffic: 25,
        });
        rules.push(Rule {
            prefix: Some(base.clone()),
            header: None,
            backends: vec![backend(format!("{name}-web"), 1, &mut rng)],
            traffic: 15,
        });
        routes.push(Route {
            namespace,
            name,
            host,
            rules,
        });
    }
    Config { routes }
}

fn write_manifests(config: &Config, dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut gw = String::new();
    gw.push_str(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: eg}\nspec: {controllerName: gateway.envoyproxy.io/gatewayclass-controller}\n",
    );
    let _ = write!(
        gw,
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {GATEWAY_NS}}}\n"
    );
    for n in 0..NAMESPACES {
        let _ = write!(
            gw,
            "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: team-{n:02}, labels: {{shared-gateway-access: \"true\"}}}}\n"
        );
    }
    let _ = write!(
        gw,
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: {GATEWAY_NAME}, namespace: {GATEWAY_NS}, creationTimestamp: \"2026-08-01T09:00:00Z\"}}\nspec:\n  gatewayClassName: eg\n  listeners:\n  - name: http\n    port: 80\n    protocol: HTTP\n    allowedRoutes:\n      namespaces:\n        from: Selector\n        selector: {{matchLabels: {{shared-gateway-access: \"true\"}}}}\n"
    );
    fs::write(dir.join("gateway.yaml"), gw)?;

    let mut routes = String::new();
    let mut services = String::new();
    for (i, route) in config.routes.iter().enumerate() {
        let _ = write!(
            routes,
            "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {}, namespace: {}, creationTimestamp: \"2026-08-02T{:02}:{:02}:00Z\"}}\nspec:\n  parentRefs: [{{name: {GATEWAY_NAME}, namespace: {GATEWAY_NS}}}]\n  hostnames: [{}]\n  rules:\n",
            route.name,
            route.namespace,
            i / 60 % 24,
            i % 60,
            route.host
        );
        for rule in &route.rules {
            routes.push_str("  - ");
            match (&rule.prefix, rule.header) {
                (Some(p), Some((h, v))) => {
                    let _ = write!(
                        routes,
                        "matches: [{{path: {{type: PathPrefix, value: {p}}}, headers: [{{name: {h}, value: \"{v}\"}}]}}]\n    "
                    );
                }
                (Some(p), None) => {
                    let _ = write!(
                        routes,
                        "matches: [{{path: {{type: PathPrefix, value: {p}}}}}]\n    "
                    );
                }
                (None, _) => {}
            }
            routes.push_str("backendRefs: [");
            for (j, b) in rule.backends.iter().enumerate() {
                if j > 0 {
                    routes.push_str(", ");
                }
                let _ = write!(
                    routes,
                    "{{name: {}, port: 80, weight: {}}}",
                    b.service, b.weight
                );
            }
            routes.push_str("]\n");
            for b in &rule.backends {
                let _ = write!(
                    services,
                    "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {svc}, namespace: {ns}}}\nspec:\n  selector: {{app: {svc}}}\n  ports: [{{name: http, port: 80, targetPort: http}}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {svc}-abcde\n  namespace: {ns}\n  labels: {{kubernetes.io/service-name: {svc}}}\naddressType: IPv4\nports: [{{name: http, port: 8080, protocol: TCP}}]\nendpoints:\n",
                    svc = b.service,
                    ns = route.namespace
                );
                for (k, ip) in b.pods.iter().enumerate() {
                    let _ = write!(
                        services,
                        "- addresses: [\"{ip}\"]\n  conditions: {{ready: true}}\n  targetRef: {{kind: Pod, name: {}-{k}, namespace: {}}}\n",
                        b.service, route.namespace
                    );
                }
            }
        }
    }
    fs::write(dir.join("routes.yaml"), routes)?;
    fs::write(dir.join("services.yaml"), services)?;
    Ok(())
}

fn pick_weighted<T>(items: &[T], weight: impl Fn(&T) -> u32, rng: &mut Rng) -> usize {
    let total: u32 = items.iter().map(&weight).sum();
    if total == 0 {
        return 0;
    }
    let mut x = rng.below(u64::from(total)) as u32;
    for (i, item) in items.iter().enumerate() {
        let w = weight(item);
        if x < w {
            return i;
        }
        x -= w;
    }
    items.len() - 1
}

fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

const USER_AGENTS: [&str; 5] = [
    "curl/8.5.0",
    "Mozilla/5.0 (X11; Linux x86_64)",
    "okhttp/4.12.0",
    "Go-http-client/1.1",
    "python-requests/2.32.3",
];

/// Counts of what the generator produced.
#[derive(Default, Debug)]
struct Mix {
    ok: u64,
    misrouted: u64,
    no_route: u64,
    no_healthy: u64,
}

/// Which Envoy JSON access-log format the generated lines use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineShape {
    /// Envoy Gateway's default format: all 24 keys.
    Default,
    /// A smaller custom Envoy JSON format (12 keys, no route name: the
    /// cluster name carries the rule).
    Compact,
}

/// The shipper envelope each generated line is wrapped in, as a Kafka topic
/// fed by a log shipper holds it (access-log-formats.md §11.1, §11.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShipperEnvelope {
    /// The bare access-log line.
    None,
    /// Fluent Bit JSON, `Merge_Log Off`: the line in `log`, with the pod
    /// metadata of the `kubernetes` filter.
    FluentBit,
    /// Vector's `kubernetes_logs` event, JSON codec: the line in `message`.
    Vector,
}

/// The `kubernetes` object Fluent Bit's filter adds for the gateway's pod.
const FLUENT_BIT_KUBERNETES: &str = concat!(
    r#"{"pod_name":"envoy-infra-public-6f2b1c9d-7c9f8d6b5-x2kqz","namespace_name":"envoy-gateway-system","#,
    r#""pod_id":"0b7a3c8e-5d4f-4e2a-9c1b-7f6e5d4c3b2a","labels":{"app.kubernetes.io/component":"proxy","#,
    r#""app.kubernetes.io/managed-by":"envoy-gateway","app.kubernetes.io/name":"envoy","#,
    r#""gateway.envoyproxy.io/owning-gateway-name":"public","#,
    r#""gateway.envoyproxy.io/owning-gateway-namespace":"infra","pod-template-hash":"7c9f8d6b5"},"#,
    r#""annotations":{"prometheus.io/scrape":"true"},"host":"node-1","pod_ip":"10.244.0.12","#,
    r#""container_name":"envoy","docker_id":"4b6c1e9f0a2d7e8f","#,
    r#""container_hash":"docker.io/envoyproxy/envoy@sha256:0f3a","#,
    r#""container_image":"docker.io/envoyproxy/envoy:distroless-v1.37.1"}"#
);

/// The `kubernetes` object of Vector's `kubernetes_logs` source for the same pod.
const VECTOR_KUBERNETES: &str = concat!(
    r#"{"container_id":"containerd://4b6c1e9f0a2d","#,
    r#""container_image":"docker.io/envoyproxy/envoy:distroless-v1.37.1","container_name":"envoy","#,
    r#""namespace_labels":{"kubernetes.io/metadata.name":"envoy-gateway-system"},"pod_annotations":{},"#,
    r#""pod_ip":"10.244.0.12","pod_ips":["10.244.0.12"],"pod_labels":{"app.kubernetes.io/component":"proxy","#,
    r#""app.kubernetes.io/managed-by":"envoy-gateway","app.kubernetes.io/name":"envoy","#,
    r#""gateway.envoyproxy.io/owning-gateway-name":"public","#,
    r#""gateway.envoyproxy.io/owning-gateway-namespace":"infra","pod-template-hash":"7c9f8d6b5"},"#,
    r#""pod_name":"envoy-infra-public-6f2b1c9d-7c9f8d6b5-x2kqz","pod_namespace":"envoy-gateway-system","#,
    r#""pod_node_name":"node-1","pod_owner":"ReplicaSet/envoy-infra-public-6f2b1c9d-7c9f8d6b5","#,
    r#""pod_uid":"8a1b2c3d"}"#
);

/// Writes `line` (an access-log line ending in a newline) to `out` in
/// `envelope`, `time_ms` being its event time; returns the bytes written.
fn write_in_envelope(
    out: &mut impl Write,
    line: &str,
    envelope: ShipperEnvelope,
    time_ms: i64,
    wrapped: &mut String,
) -> std::io::Result<u64> {
    if envelope == ShipperEnvelope::None {
        out.write_all(line.as_bytes())?;
        return Ok(line.len() as u64);
    }
    // The generated lines hold no backslashes or control bytes: quotes are
    // all there is to escape.
    let escaped = line.trim_end_matches('\n').replace('"', "\\\"");
    let time = format_time(time_ms);
    wrapped.clear();
    let _ = match envelope {
        ShipperEnvelope::FluentBit => writeln!(
            wrapped,
            r#"{{"@timestamp":{}.{:03}456,"time":"{time}","stream":"stdout","_p":"F","log":"{escaped}","kubernetes":{FLUENT_BIT_KUBERNETES}}}"#,
            time_ms.div_euclid(1000),
            time_ms.rem_euclid(1000),
        ),
        ShipperEnvelope::Vector => writeln!(
            wrapped,
            r#"{{"file":"/var/log/pods/envoy-gateway-system_envoy-infra-public-6f2b1c9d-7c9f8d6b5-x2kqz_8a1b2c3d/envoy/0.log","kubernetes":{VECTOR_KUBERNETES},"message":"{escaped}","source_type":"kubernetes_logs","stream":"stdout","timestamp":"{time}"}}"#,
        ),
        ShipperEnvelope::None => Ok(()),
    };
    out.write_all(wrapped.as_bytes())?;
    Ok(wrapped.len() as u64)
}

/// Writes `n` Envoy Gateway JSON lines of `shape`, each in `envelope`;
/// returns the mix and the bytes.
fn write_log(
    config: &Config,
    path: &Path,
    n: u64,
    shape: LineShape,
    envelope: ShipperEnvelope,
    seed: u64,
) -> std::io::Result<(Mix, u64)> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ seed);
    let mut mix = Mix::default();
    let mut line = String::with_capacity(1024);
    let mut wrapped = String::with_capacity(4096);
    let mut bytes = 0u64;
    let routes = &config.routes;
    for i in 0..n {
        line.clear();
        let t = START_EPOCH_MS + (i as i64 * SPAN_MS) / n as i64 + rng.below(50) as i64;
        // Skewed route popularity: half the traffic to the first eighth of the routes.
        let r = if rng.below(2) == 0 {
            rng.below((ROUTES / 8) as u64) as usize
        } else {
            rng.below(ROUTES as u64) as usize
        };
        let route = &routes[r];
        let roll = rng.below(1000);
        let client_port = 1024 + rng.below(60_000);
        let client = format!("203.0.113.{}", 1 + rng.below(250));
        let ua = USER_AGENTS[rng.below(USER_AGENTS.len() as u64) as usize];
        let request_id = rng.uuid();
        let duration = rng.below(250);
        let start_time = format_time(t);
        let rule_idx = pick_weighted(&route.rules, |r| r.traffic, &mut rng);
        let rule = &route.rules[rule_idx];
        let prefix = rule.prefix.as_deref().unwrap_or("");
        let path = match rng.below(4) {
            0 => format!("{prefix}/items/{}", rng.below(10_000)),
            1 => format!("{prefix}/list?page={}", rng.below(50)),
            2 => format!("{prefix}/v1/orders/{}", rng.below(100_000)),
            _ => format!("{prefix}/"),
        };
        let path = if prefix.is_empty() {
            path.trim_start_matches('/').to_string()
        } else {
            path
        };
        let host = route.host.as_str();
        let (authority, status, flags, details, route_name, cluster, upstream, bytes_sent) =
            if roll < 5 {
                // No route: unknown host.
                mix.no_route += 1;
                (
                    format!("unknown-{}.example.org", rng.below(100)),
                    404,
                    "NR",
                    "route_not_found",
                    None,
                    None,
                    None,
                    0,
                )
            } else {
                let route_name = format!(
                    "httproute/{}/{}/rule/{rule_idx}/match/0/{}",
                    route.namespace,
                    route.name,
                    host.replace('.', "_")
                );
                let cluster = format!(
                    "httproute/{}/{}/rule/{rule_idx}",
                    route.namespace, route.name
                );
                if roll < 10 {
                    mix.no_healthy += 1;
                    (
                        host.to_string(),
                        503,
                        "UH",
                        "no_healthy_upstream",
                        Some(route_name),
                        Some(cluster),
                        None,
                        19,
                    )
                } else if roll < 15 {
                    // Misrouted: the gateway used another route's catch-all rule
                    // (its route, cluster and pod), as a drifted controller would.
                    mix.misrouted += 1;
                    let _ = (route_name, cluster);
                    let o = (r + 1 + rng.below(ROUTES as u64 - 1) as usize) % ROUTES;
                    let other = &routes[o];
                    let other_rule = other.rules.len() - 1;
                    let b = &other.rules[other_rule].backends[0];
                    let ip = &b.pods[rng.below(b.pods.len() as u64) as usize];
                    (
                        host.to_string(),
                        200,
                        "-",
                        "via_upstream",
                        Some(format!(
                            "httproute/{}/{}/rule/{other_rule}/match/0/{}",
                            other.namespace,
                            other.name,
                            other.host.replace('.', "_")
                        )),
                        Some(format!(
                            "httproute/{}/{}/rule/{other_rule}",
                            other.namespace, other.name
                        )),
                        Some(format!("{ip}:8080")),
                        200 + rng.below(20_000),
                    )
                } else {
                    mix.ok += 1;
                    let b = &rule.backends[pick_weighted(&rule.backends, |b| b.weight, &mut rng)];
                    let ip = &b.pods[rng.below(b.pods.len() as u64) as usize];
                    (
                        host.to_string(),
                        200,
                        "-",
                        "via_upstream",
                        Some(route_name),
                        Some(cluster),
                        Some(format!("{ip}:8080")),
                        200 + rng.below(20_000),
                    )
                }
            };
        let opt = |v: &Option<String>| match v {
            Some(s) => format!("\"{s}\""),
            None => "null".to_string(),
        };
        let upstream_local = if upstream.is_some() {
            format!("\"10.244.0.12:{}\"", 32768 + rng.below(28_000))
        } else {
            "null".to_string()
        };
        if shape == LineShape::Compact {
            let _ = write!(
                line,
                concat!(
                    r#"{{":authority":"{authority}","bytes_sent":{bytes_sent},"#,
                    r#""downstream_local_address":"10.244.0.12:10080","duration":{duration},"#,
                    r#""method":"GET","response_code":{status},"response_flags":"{flags}","#,
                    r#""start_time":"{start_time}","upstream_cluster":{cluster},"#,
                    r#""upstream_host":{upstream},"x-envoy-origin-path":"{path}","#,
                    r#""x-request-id":"{request_id}"}}"#,
                    "\n"
                ),
                authority = authority,
                bytes_sent = bytes_sent,
                duration = duration,
                status = status,
                flags = flags,
                start_time = start_time,
                cluster = opt(&cluster),
                upstream = opt(&upstream),
                path = path,
                request_id = request_id,
            );
            bytes += write_in_envelope(&mut out, &line, envelope, t, &mut wrapped)?;
            continue;
        }
        let _ = write!(
            line,
            concat!(
                r#"{{":authority":"{authority}","bytes_received":0,"bytes_sent":{bytes_sent},"#,
                r#""connection_termination_details":null,"downstream_local_address":"10.244.0.12:10080","#,
                r#""downstream_remote_address":"{client}:{client_port}","duration":{duration},"#,
                r#""method":"GET","protocol":"HTTP/1.1","requested_server_name":null,"#,
                r#""response_code":{status},"response_code_details":"{details}","response_flags":"{flags}","#,
                r#""route_name":{route_name},"start_time":"{start_time}","upstream_cluster":{cluster},"#,
                r#""upstream_host":{upstream},"upstream_local_address":{upstream_local},"#,
                r#""upstream_transport_failure_reason":null,"user-agent":"{ua}","#,
                r#""x-envoy-origin-path":"{path}","x-envoy-upstream-service-time":null,"#,
                r#""x-forwarded-for":"{client}","x-request-id":"{request_id}"}}"#,
                "\n"
            ),
            authority = authority,
            bytes_sent = bytes_sent,
            client = client,
            client_port = client_port,
            duration = duration,
            status = status,
            details = details,
            flags = flags,
            route_name = opt(&route_name),
            start_time = start_time,
            cluster = opt(&cluster),
            upstream = opt(&upstream),
            upstream_local = upstream_local,
            ua = ua,
            path = path,
            request_id = request_id,
        );
        bytes += write_in_envelope(&mut out, &line, envelope, t, &mut wrapped)?;
    }
    out.flush()?;
    Ok((mix, bytes))
}

struct Measured {
    wall: Duration,
    /// User + system CPU time of the child (from `/usr/bin/time`), which is
    /// what to compare on a shared machine.
    cpu: Option<Duration>,
    peak_rss_kib: Option<u64>,
    stdout: String,
}

/// Runs a command, measuring wall time and peak RSS (`/usr/bin/time -f` when
/// present, else polling `VmHWM` in `/proc/<pid>/status`).
fn run_measured(program: &Path, args: &[String]) -> Measured {
    let gnu_time = Path::new("/usr/bin/time");
    let rss_file = std::env::temp_dir().join(format!("rp-bench-rss-{}", std::process::id()));
    let mut command = if gnu_time.exists() {
        let mut c = Command::new(gnu_time);
        c.arg("-f")
            .arg("%M %U %S")
            .arg("-o")
            .arg(&rss_file)
            .arg(program);
        c
    } else {
        Command::new(program)
    };
    command
        .args(args)
        .env("ROUTEPROOF_QUIET", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn");
    let pid = child.id();
    let mut polled: Option<u64> = None;
    let mut stdout = String::new();
    let reader = child.stdout.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut buf = String::new();
            let _ = std::io::Read::read_to_string(&mut s, &mut buf);
            buf
        })
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if let Ok(text) = fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                polled = Some(polled.map_or(kib, |p| p.max(kib)));
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = started.elapsed();
    if let Some(r) = reader {
        stdout = r.join().unwrap_or_default();
    }
    assert!(
        status.success(),
        "{} failed: {status}\n{stdout}",
        program.display()
    );
    let (peak_rss_kib, cpu) = if gnu_time.exists() {
        let text = fs::read_to_string(&rss_file).unwrap_or_default();
        let _ = fs::remove_file(&rss_file);
        let fields: Vec<&str> = text
            .lines()
            .last()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let rss = fields.first().and_then(|v| v.parse().ok());
        let cpu = match (fields.get(1), fields.get(2)) {
            (Some(u), Some(s)) => match (u.parse::<f64>(), s.parse::<f64>()) {
                (Ok(u), Ok(s)) => Some(Duration::from_secs_f64(u + s)),
                _ => None,
            },
            _ => None,
        };
        (rss, cpu)
    } else {
        (polled, None)
    };
    Measured {
        wall,
        cpu,
        peak_rss_kib,
        stdout,
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                total += dir_size(&p);
            } else if let Ok(m) = e.metadata() {
                total += m.len();
            }
        }
    }
    total
}

fn main() {
    // `cargo bench` passes `--bench`; criterion-style filters are ignored.
    let lines = env_u64("RP_BENCH_LINES", 1_000_000);
    let runs = env_u64("RP_BENCH_RUNS", 1).max(1);
    let levels: Vec<i32> = std::env::var("RP_BENCH_ZSTD_LEVELS")
        .unwrap_or_else(|_| "1,3".to_string())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let (work, _guard) = match path_var("RP_BENCH_DIR") {
        Some(d) => {
            fs::create_dir_all(&d).expect("create RP_BENCH_DIR");
            (d, None)
        }
        None => {
            let t = tempfile::tempdir().expect("tempdir");
            let p = t.path().to_path_buf();
            let keep = std::env::var_os("RP_BENCH_KEEP").is_some();
            (p, if keep { None } else { Some(t) })
        }
    };
    if _guard.is_none() {
        eprintln!("work directory: {}", work.display());
    }

    let seed = env_u64("RP_BENCH_SEED", 0);
    let config = build_config(seed);
    let manifests = work.join("manifests");
    write_manifests(&config, &manifests).expect("write manifests");
    let log = work.join("envoy-gateway.log");
    let t = Instant::now();
    let shape = match std::env::var("RP_BENCH_SHAPE").as_deref() {
        Ok("compact") => LineShape::Compact,
        Ok("default") | Err(_) => LineShape::Default,
        Ok(other) => panic!("RP_BENCH_SHAPE must be `default` or `compact`, not {other:?}"),
    };
    let envelope = match std::env::var("RP_BENCH_ENVELOPE").as_deref() {
        Ok("none") | Err(_) => ShipperEnvelope::None,
        Ok("fluent-bit") => ShipperEnvelope::FluentBit,
        Ok("vector") => ShipperEnvelope::Vector,
        Ok(other) => {
            panic!("RP_BENCH_ENVELOPE must be `none`, `fluent-bit` or `vector`, not {other:?}")
        }
    };
    let (mix, bytes) = write_log(&config, &log, lines, shape, envelope, seed).expect("write log");
    let services: usize = config
        .routes
        .iter()
        .map(|r| r.rules.iter().map(|x| x.backends.len()).sum::<usize>())
        .sum();
    println!(
        "generated {lines} Envoy Gateway JSON lines ({shape:?} shape, envelope {envelope:?}, {:.1} MiB, {:.0} bytes/line) in {:.1} s: {} routes, {} hostnames, {services} Services; mix {mix:?}",
        bytes as f64 / 1048576.0,
        bytes as f64 / lines.max(1) as f64,
        t.elapsed().as_secs_f64(),
        config.routes.len(),
        config.routes.len() / ROUTES_PER_HOST,
    );
    if std::env::var_os("RP_BENCH_ONLY_GENERATE").is_some() {
        println!("manifests: {}\nlog: {}", manifests.display(), log.display());
        return;
    }

    let binary = routeproof_binary();
    assert!(
        binary.exists(),
        "{} not found: run `cargo build --release` first",
        binary.display()
    );
    let skip_duckdb = std::env::var_os("RP_BENCH_SKIP_DUCKDB").is_some();
    // Best run per routeproof level, with its output size.
    let mut best_rp: Vec<Option<(Measured, u64)>> = levels.iter().map(|_| None).collect();
    let mut duckdb: Option<DuckdbRun> = None;
    // CPU-time ratio of each run's DuckDB copy to the same run's headline
    // routeproof replay: the runs alternate, so a pair shares the VM's speed.
    let mut paired_ratios = Vec::new();
    for run in 0..runs {
        let mut headline_cpu = None;
        for (i, &level) in levels.iter().enumerate() {
            let (m, out_bytes) = run_routeproof(&binary, &work, &manifests, &log, level, run);
            if run == 0 && i == 0 {
                print!("{}", m.stdout);
            }
            if i == 0 {
                headline_cpu = m.cpu;
            }
            let key = |m: &Measured| m.cpu.unwrap_or(m.wall);
            if best_rp[i].as_ref().is_none_or(|(b, _)| key(&m) < key(b)) {
                best_rp[i] = Some((m, out_bytes));
            }
        }
        if skip_duckdb {
            continue;
        }
        let d = run_duckdb(&work, &log, run);
        if let Some(rp) = headline_cpu {
            paired_ratios.push(d.copy_cpu.as_secs_f64() / rp.as_secs_f64().max(1e-9));
        }
        if duckdb.as_ref().is_none_or(|b| d.copy_cpu < b.copy_cpu) {
            duckdb = Some(d);
        }
    }
    let rows: Vec<(String, Measured, u64)> = levels
        .iter()
        .zip(best_rp)
        .filter_map(|(level, best)| {
            best.map(|(m, size)| (format!("routeproof replay (zstd {level})"), m, size))
        })
        .collect();

    let rate = |d: Duration| lines as f64 / d.as_secs_f64().max(1e-9);
    let secs =
        |d: Option<Duration>| d.map_or("?".to_string(), |d| format!("{:.3}", d.as_secs_f64()));
    let per_cpu = |d: Option<Duration>| d.map_or("?".to_string(), |d| format!("{:.0}", rate(d)));
    let mib = |k: Option<u64>| k.map_or("?".to_string(), |k| format!("{:.1}", k as f64 / 1024.0));
    println!();
    println!(
        "{:<30} {:>9} {:>12} {:>9} {:>14} {:>13} {:>11}",
        "", "wall s", "records/s", "CPU s", "records/CPU-s", "peak RSS MiB", "output MiB"
    );
    for (name, m, size) in &rows {
        println!(
            "{:<30} {:>9.3} {:>12.0} {:>9} {:>14} {:>13} {:>11.1}",
            name,
            m.wall.as_secs_f64(),
            rate(m.wall),
            secs(m.cpu),
            per_cpu(m.cpu),
            mib(m.peak_rss_kib),
            *size as f64 / 1048576.0
        );
    }
    if let Some(DuckdbRun {
        copy,
        wall,
        size,
        peak_rss_kib: rss,
        copy_cpu,
    }) = duckdb
    {
        println!(
            "{:<30} {:>9.3} {:>12.0} {:>9} {:>14} {:>13} {:>11.1}",
            "duckdb COPY (threads=1)",
            copy.as_secs_f64(),
            rate(copy),
            secs(Some(copy_cpu)),
            per_cpu(Some(copy_cpu)),
            mib(rss),
            size as f64 / 1048576.0
        );
        println!(
            "{:<30} {:>9.3} {:>12.0}",
            "  (incl. python + import)",
            wall.as_secs_f64(),
            rate(wall)
        );
        let (_, first, _) = &rows[0];
        let ratio_wall = copy.as_secs_f64() / first.wall.as_secs_f64();
        println!();
        println!(
            "ratio routeproof/duckdb: {ratio_wall:.2}x by wall time, {} by CPU time (target >= 1.8x)",
            first.cpu.map_or("?".to_string(), |c| format!(
                "{:.2}x",
                copy_cpu.as_secs_f64() / c.as_secs_f64()
            ))
        );
        if !paired_ratios.is_empty() {
            paired_ratios.sort_by(f64::total_cmp);
            let list: Vec<String> = paired_ratios.iter().map(|r| format!("{r:.2}")).collect();
            println!(
                "ratio by CPU time per alternated run (routeproof then DuckDB): median {:.2}x over {} run(s) [{}]",
                paired_ratios[paired_ratios.len() / 2],
                paired_ratios.len(),
                list.join(", ")
            );
        }
        println!(
            "routeproof {:.0} records/s wall, {} records/CPU-s (target >= 1,000,000); peak RSS {} MiB (target < 256)",
            rate(first.wall),
            per_cpu(first.cpu),
            mib(first.peak_rss_kib)
        );
    }
}

/// One `routeproof replay` run at zstd `level` into a fresh output directory
/// (removed afterwards); returns the measurement and the Parquet bytes.
fn run_routeproof(
    binary: &Path,
    work: &Path,
    manifests: &Path,
    log: &Path,
    level: i32,
    run: u64,
) -> (Measured, u64) {
    let out = work.join(format!("out-rp-zstd{level}-{run}"));
    let _ = fs::remove_dir_all(&out);
    let args: Vec<String> = vec![
        "replay".into(),
        "--manifests".into(),
        manifests.display().to_string(),
        "--input".into(),
        log.display().to_string(),
        "--format".into(),
        "envoy-json".into(),
        "--implementation".into(),
        "envoy-gateway".into(),
        "--no-progress".into(),
        "--zstd-level".into(),
        level.to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    let m = run_measured(binary, &args);
    let out_bytes = dir_size(&out.join("parquet"));
    let _ = fs::remove_dir_all(&out);
    (m, out_bytes)
}

/// One DuckDB conversion of the log to zstd Parquet.
struct DuckdbRun {
    /// Wall time of the `COPY` alone.
    copy: Duration,
    /// Wall time of the whole `python3` process (interpreter and import too).
    wall: Duration,
    /// Size of the Parquet file.
    size: u64,
    peak_rss_kib: Option<u64>,
    /// CPU time of the `COPY` alone (`time.process_time`).
    copy_cpu: Duration,
}

/// Converts `log` with DuckDB (`SET threads=1`), as the issue specifies.
fn run_duckdb(work: &Path, log: &Path, run: u64) -> DuckdbRun {
    let out = work.join(format!("duckdb-{run}.parquet"));
    let script = format!(
        "import time, duckdb\ncon = duckdb.connect()\ncon.execute(\"SET threads=1\")\nt = time.perf_counter()\nc = time.process_time()\ncon.execute(\"COPY (SELECT * FROM read_json('{}')) TO '{}' (FORMAT parquet, COMPRESSION zstd)\")\nprint('copy_seconds', time.perf_counter() - t)\nprint('copy_cpu_seconds', time.process_time() - c)\n",
        log.display(),
        out.display()
    );
    let m = run_measured(Path::new("python3"), &["-c".to_string(), script]);
    let seconds = |prefix: &str| {
        m.stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(Duration::from_secs_f64)
    };
    let copy = seconds("copy_seconds ").unwrap_or(m.wall);
    let copy_cpu = seconds("copy_cpu_seconds ").unwrap_or(copy);
    let size = fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    let _ = fs::remove_file(&out);
    DuckdbRun {
        copy,
        wall: m.wall,
        size,
        peak_rss_kib: m.peak_rss_kib,
        copy_cpu,
    }
}
