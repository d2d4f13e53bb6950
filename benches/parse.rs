//! Parse throughput per access-log format and envelope (records/s).
//!
//! Run: `cargo bench --bench parse -- --quick` (or
//! `--warm-up-time 1 --measurement-time 3`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use routeproof::decode::{decode_payload, DecodeOptions};

const LINES: usize = 4000;

/// Deterministic pseudo-random numbers (xorshift) so lines differ.
fn numbers(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

fn envoy_gateway_json(i: usize, next: &mut dyn FnMut() -> u64) -> String {
    let n = next();
    format!(
        r#"{{":authority":"shop.example.com","bytes_received":0,"bytes_sent":{},"connection_termination_details":null,"downstream_local_address":"10.244.0.12:10080","downstream_remote_address":"203.0.113.7:{}","duration":{},"method":"GET","protocol":"HTTP/1.1","requested_server_name":null,"response_code":200,"response_code_details":"via_upstream","response_flags":"-","route_name":"httproute/shop/storefront/rule/1/match/0/shop_example_com","start_time":"2026-08-20T10:15:{:02}.{:03}Z","upstream_cluster":"httproute/shop/storefront/rule/1","upstream_host":"10.244.3.{}:9000","upstream_local_address":"10.244.0.12:41236","upstream_transport_failure_reason":null,"user-agent":"curl/8.5.0","x-envoy-origin-path":"/api/orders?page={}","x-envoy-upstream-service-time":null,"x-forwarded-for":"203.0.113.7","x-request-id":"9b2f6c1e-4d8a-4b51-9a0e-{:012x}"}}"#,
        n % 100_000,
        1024 + n % 60_000,
        n % 500,
        i % 60,
        n % 1000,
        n % 250,
        i,
        n & 0xffff_ffff_ffff
    )
}

/// The 12-key compact Envoy Gateway line of the replay bench's
/// `RP_BENCH_SHAPE=compact` (about 400 bytes: what the decision and the
/// resolution use).
fn envoy_gateway_json_compact(i: usize, next: &mut dyn FnMut() -> u64) -> String {
    let n = next();
    format!(
        r#"{{":authority":"svc-{:03}.shop.example.com","bytes_sent":{},"downstream_local_address":"10.244.0.12:10080","duration":{},"method":"GET","response_code":200,"response_flags":"-","start_time":"2026-08-20T10:15:{:02}.{:03}Z","upstream_cluster":"httproute/team-{:02}/app-{:03}/rule/1","upstream_host":"10.64.{}.{}:8080","x-envoy-origin-path":"/r1/static/list?page={}","x-request-id":"9b2f6c1e-4d8a-4b51-9a0e-{:012x}"}}"#,
        n % 160,
        n % 100_000,
        n % 500,
        i % 60,
        n % 1000,
        n % 24,
        n % 320,
        n % 16,
        n % 250,
        i,
        n & 0xffff_ffff_ffff
    )
}

fn envoy_text(i: usize, next: &mut dyn FnMut() -> u64) -> String {
    let n = next();
    format!(
        r#"[2026-08-20T10:15:{:02}.{:03}Z] "GET /products?id={} HTTP/1.1" 200 - 0 {} {} 11 "203.0.113.7" "curl/8.5.0" "9b2f6c1e-4d8a-4b51-9a0e-{:012x}" "shop.example.com" "10.244.1.{}:8080""#,
        i % 60,
        n % 1000,
        i,
        n % 100_000,
        n % 500,
        n & 0xffff_ffff_ffff,
        n % 250
    )
}

fn istio_text(i: usize, next: &mut dyn FnMut() -> u64) -> String {
    let n = next();
    format!(
        r#"[2026-08-20T10:15:{:02}.{:03}Z] "GET /api/orders?page={} HTTP/1.1" 200 - via_upstream - "-" 0 {} {} 11 "203.0.113.7" "curl/8.5.0" "9b2f6c1e-4d8a-4b51-9a0e-{:012x}" "shop.example.com" "10.244.3.{}:9000" outbound|80||api-v2.shop.svc.cluster.local 10.244.0.12:41236 10.244.0.12:80 203.0.113.7:53422 - shop.storefront.1"#,
        i % 60,
        n % 1000,
        i,
        n % 100_000,
        n % 500,
        n & 0xffff_ffff_ffff,
        n % 250
    )
}

fn nginx_combined(i: usize, next: &mut dyn FnMut() -> u64) -> String {
    let n = next();
    format!(
        r#"203.0.113.{} - - [20/Aug/2026:10:15:{:02} +0000] "GET /products?id={} HTTP/1.1" 200 {} "-" "Mozilla/5.0 (X11; Linux x86_64) curl/8.5.0""#,
        n % 250,
        i % 60,
        i,
        n % 100_000
    )
}

fn nginx_gateway_fabric_json(i: usize, next: &mut dyn FnMut() -> u64) -> String {
    let n = next();
    format!(
        r#"{{"time":"2026-08-20T10:15:{:02}+00:00","remote_addr":"203.0.113.7","host":"shop.example.com","http_host":"shop.example.com","server_name":"shop.example.com","server_port":"80","method":"GET","request_uri":"/api/orders?page={}","status":200,"body_bytes_sent":{},"request_time":0.0{:02},"upstream_addr":"10.244.3.{}:9000, 10.244.2.31:9000","upstream_status":"502, 200","upstream_response_time":"0.011","proxy_host":"shop_api-v2_80","request_id":"{:032x}","x_forwarded_for":"","user_agent":"curl/8.5.0"}}"#,
        i % 60,
        i,
        n % 100_000,
        n % 100,
        n % 250,
        n
    )
}

fn haproxy_httplog(i: usize, next: &mut dyn FnMut() -> u64) -> String {
    let n = next();
    format!(
        r#"203.0.113.7:{} [20/Aug/2026:10:15:{:02}.{:03}] fe_http be_web/web{} 0/0/1/{}/{} 200 {} - - ---- 1/1/0/0/0 0/0 "GET /products?id={} HTTP/1.1""#,
        1024 + n % 60_000,
        i % 60,
        n % 1000,
        n % 4,
        n % 50,
        n % 60,
        n % 100_000,
        i
    )
}

fn fluent_bit(line: &str) -> String {
    format!(
        r#"{{"@timestamp":1787220930.123456,"time":"2026-08-20T10:15:30.123456789Z","stream":"stdout","_p":"F","log":{},"kubernetes":{{"pod_name":"envoy-infra-public-gw-6f2b1c9d-7c9f8d6b5-x2kqz","namespace_name":"envoy-gateway-system","pod_id":"0b7a3c8e-5d4f-4e2a-9c1b-7f6e5d4c3b2a","labels":{{"app.kubernetes.io/component":"proxy","app.kubernetes.io/managed-by":"envoy-gateway","app.kubernetes.io/name":"envoy","gateway.envoyproxy.io/owning-gateway-name":"public-gw","gateway.envoyproxy.io/owning-gateway-namespace":"infra","pod-template-hash":"7c9f8d6b5"}},"annotations":{{"prometheus.io/scrape":"true"}},"host":"node-1","pod_ip":"10.244.0.12","container_name":"envoy"}}}}"#,
        serde_json::to_string(line).expect("string")
    )
}

fn otlp_batch(lines: &[String]) -> String {
    let records: Vec<String> = lines
        .iter()
        .map(|line| {
            format!(
                r#"{{"timeUnixNano":"1787220930123456789","body":{{"stringValue":{}}},"attributes":[{{"key":"log.iostream","value":{{"stringValue":"stdout"}}}}]}}"#,
                serde_json::to_string(line).expect("string")
            )
        })
        .collect();
    format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"k8s.namespace.name","value":{{"stringValue":"infra"}}}},{{"key":"k8s.pod.name","value":{{"stringValue":"public-gw-istio-7d9c8b7f6-2xk8p"}}}}]}},"scopeLogs":[{{"scope":{{}},"logRecords":[{}]}}]}}]}}"#,
        records.join(",")
    )
}

type Generator = fn(usize, &mut dyn FnMut() -> u64) -> String;

fn generate(generator: impl Fn(usize, &mut dyn FnMut() -> u64) -> String) -> Vec<String> {
    let mut next = numbers(0x9e37_79b9_7f4a_7c15);
    (0..LINES).map(|i| generator(i, &mut next)).collect()
}

fn bench_payloads(c: &mut Criterion, name: &str, payloads: &[String], records_per_pass: usize) {
    let options = DecodeOptions::default();
    // Sanity: every payload decodes.
    let mut ok = 0usize;
    for payload in payloads {
        decode_payload(payload.as_bytes(), &options, &mut |result| {
            assert!(result.is_ok(), "{name}: {:?}", result.err());
            ok += 1;
        });
    }
    assert_eq!(ok, records_per_pass, "{name}");
    let bytes: usize = payloads.iter().map(String::len).sum();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(records_per_pass as u64));
    group.bench_function(
        format!("{name} ({} B/record)", bytes / records_per_pass),
        |b| {
            b.iter(|| {
                let mut statuses = 0u64;
                for payload in payloads {
                    decode_payload(black_box(payload.as_bytes()), &options, &mut |result| {
                        if let Ok(record) = result {
                            statuses += u64::from(record.status.unwrap_or(0));
                        }
                    });
                }
                black_box(statuses)
            });
        },
    );
    group.finish();
}

fn parse(c: &mut Criterion) {
    let generators: [(&str, Generator); 7] = [
        ("envoy-json", |i, next| envoy_gateway_json(i, next)),
        ("envoy-json-compact", |i, next| {
            envoy_gateway_json_compact(i, next)
        }),
        ("envoy-text", |i, next| envoy_text(i, next)),
        ("istio-text", |i, next| istio_text(i, next)),
        ("nginx-combined", |i, next| nginx_combined(i, next)),
        ("nginx-gateway-fabric-json", |i, next| {
            nginx_gateway_fabric_json(i, next)
        }),
        ("haproxy-httplog", |i, next| haproxy_httplog(i, next)),
    ];
    for (name, generator) in generators {
        let lines = generate(generator);
        bench_payloads(c, name, &lines, LINES);
    }
    let envoy_json = generate(|i, next| envoy_gateway_json(i, next));
    let wrapped: Vec<String> = envoy_json.iter().map(|line| fluent_bit(line)).collect();
    bench_payloads(c, "fluent-bit+envoy-json", &wrapped, LINES);
    let istio = generate(|i, next| istio_text(i, next));
    let batches: Vec<String> = istio.chunks(100).map(otlp_batch).collect();
    bench_payloads(c, "otlp-json(100/msg)+istio-text", &batches, LINES);
}

criterion_group!(benches, parse);
criterion_main!(benches);
