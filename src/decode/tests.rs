//! End-to-end tests of [`decode_payload`]: envelopes, JSON formats, detection,
//! every error reason, and a property test that no input panics.

use super::*;
use proptest::prelude::*;

const T0: i64 = 1_787_220_930_000_000;

const EG_200: &str = r#"{":authority":"shop.example.com","bytes_received":0,"bytes_sent":5123,"connection_termination_details":null,"downstream_local_address":"10.244.0.12:10080","downstream_remote_address":"203.0.113.7:53422","duration":12,"method":"GET","protocol":"HTTP/1.1","requested_server_name":null,"response_code":200,"response_code_details":"via_upstream","response_flags":"-","route_name":"httproute/shop/storefront/rule/1/match/0/shop_example_com","start_time":"2026-08-20T10:15:30.123Z","upstream_cluster":"httproute/shop/storefront/rule/1","upstream_host":"10.244.3.44:9000","upstream_local_address":"10.244.0.12:41236","upstream_transport_failure_reason":null,"user-agent":"curl/8.5.0","x-envoy-origin-path":"/api/orders?page=2","x-envoy-upstream-service-time":null,"x-forwarded-for":"203.0.113.7","x-request-id":"9b2f6c1e-4d8a-4b51-9a0e-0c1b2f3e4d5a"}"#;
const EG_UH: &str = r#"{":authority":"shop.example.com","bytes_received":0,"bytes_sent":19,"connection_termination_details":null,"downstream_local_address":"10.244.0.12:10080","downstream_remote_address":"203.0.113.7:53424","duration":0,"method":"GET","protocol":"HTTP/1.1","requested_server_name":null,"response_code":503,"response_code_details":"no_healthy_upstream","response_flags":"UH","route_name":"httproute/shop/storefront/rule/1/match/0/shop_example_com","start_time":"2026-08-20T10:15:31.004Z","upstream_cluster":"httproute/shop/storefront/rule/1","upstream_host":null,"upstream_local_address":null,"upstream_transport_failure_reason":null,"user-agent":"curl/8.5.0","x-envoy-origin-path":"/api/orders","x-envoy-upstream-service-time":null,"x-forwarded-for":"203.0.113.7","x-request-id":"0f3a7c55-1b2e-4c3d-8e9f-a0b1c2d3e4f5"}"#;
const EG_NR: &str = r#"{":authority":"unknown.example.com","bytes_received":0,"bytes_sent":0,"connection_termination_details":null,"downstream_local_address":"10.244.0.12:10080","downstream_remote_address":"203.0.113.7:53426","duration":0,"method":"GET","protocol":"HTTP/1.1","requested_server_name":null,"response_code":404,"response_code_details":"route_not_found","response_flags":"NR","route_name":null,"start_time":"2026-08-20T10:15:32.950Z","upstream_cluster":null,"upstream_host":null,"upstream_local_address":null,"upstream_transport_failure_reason":null,"user-agent":"curl/8.5.0","x-envoy-origin-path":"/nope","x-envoy-upstream-service-time":null,"x-forwarded-for":"203.0.113.7","x-request-id":"5d6e7f80-9a1b-4c2d-8e3f-4a5b6c7d8e9f"}"#;
const EG_LISTENER_NR: &str = r#"{":authority":null,"bytes_received":517,"bytes_sent":0,"method":null,"protocol":null,"requested_server_name":"other.example.org","response_code":null,"response_code_details":null,"response_flags":"NR","route_name":null,"upstream_cluster":null,"upstream_host":null}"#;
const EG_OLD_STRINGS: &str = r#"{"start_time":"2026-08-20T10:15:30.123Z","method":"GET","x-envoy-origin-path":"/api/orders?page=2","protocol":"HTTP/1.1","response_code":"200","response_flags":"-","response_code_details":"via_upstream","connection_termination_details":"-","upstream_transport_failure_reason":"-","bytes_received":"0","bytes_sent":"5123","duration":"12","x-envoy-upstream-service-time":"11","x-forwarded-for":"203.0.113.7","user-agent":"curl/8.5.0","x-request-id":"9b2f6c1e","::authority":"x",":authority":"shop.example.com","upstream_host":"10.244.3.44:9000","upstream_cluster":"httproute/shop/storefront/rule/1","upstream_local_address":"-","downstream_local_address":"10.244.0.12:10080","downstream_remote_address":"203.0.113.7:53422","requested_server_name":"-","route_name":"httproute/shop/storefront/rule/1/match/0/shop_example_com"}"#;
const ISTIO_JSON: &str = r#"{"authority":"shop.example.com","bytes_received":0,"bytes_sent":5123,"connection_termination_details":null,"downstream_local_address":"10.244.0.12:80","downstream_remote_address":"203.0.113.7:53422","duration":12,"method":"GET","path":"/products?id=42","protocol":"HTTP/1.1","request_id":"9b2f6c1e-4d8a-4b51-9a0e-0c1b2f3e4d5a","requested_server_name":null,"response_code":200,"response_code_details":"via_upstream","response_flags":"-","route_name":"shop.storefront.0","start_time":"2026-08-20T10:15:30.123Z","upstream_cluster":"outbound|80||web.shop.svc.cluster.local;","upstream_host":"10.244.1.17:8080","upstream_local_address":"10.244.0.12:41236","upstream_service_time":"11","upstream_transport_failure_reason":null,"user_agent":"curl/8.5.0","x_forwarded_for":"203.0.113.7"}"#;
const CONTOUR_JSON: &str = r#"{"@timestamp":"2026-08-20T10:15:30.123Z","authority":"shop.example.com","bytes_received":0,"bytes_sent":5123,"downstream_local_address":"10.244.0.12:8080","downstream_remote_address":"203.0.113.7:53422","duration":12,"method":"GET","path":"/products?id=42","protocol":"HTTP/1.1","request_id":"9b2f6c1e-4d8a-4b51-9a0e-0c1b2f3e4d5a","response_code":200,"response_flags":"-","upstream_cluster":"shop_web_80","upstream_host":"10.244.1.17:8080","upstream_local_address":"10.244.0.12:41236","upstream_service_time":"11","user_agent":"curl/8.5.0","x_forwarded_for":"203.0.113.7"}"#;
const NGF_JSON_200: &str = r#"{"time":"2026-08-20T10:15:30+00:00","remote_addr":"203.0.113.7","host":"shop.example.com","http_host":"shop.example.com","server_name":"shop.example.com","server_port":"80","method":"GET","request_uri":"/api/orders?page=2","status":200,"body_bytes_sent":5123,"request_time":0.012,"upstream_addr":"10.244.3.44:9000","upstream_status":"200","upstream_response_time":"0.011","proxy_host":"shop_api-v2_80","request_id":"3c9e1f2a7b4d6e8f0a1b2c3d4e5f6a7b","x_forwarded_for":"","user_agent":"curl/8.5.0"}"#;
const NGF_JSON_404: &str = r#"{"time":"2026-08-20T10:15:32+00:00","remote_addr":"203.0.113.7","host":"unknown.example.com","http_host":"unknown.example.com","server_name":"","server_port":"80","method":"GET","request_uri":"/nope","status":404,"body_bytes_sent":153,"request_time":0.000,"upstream_addr":"","upstream_status":"","upstream_response_time":"","proxy_host":"","request_id":"1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d","x_forwarded_for":"","user_agent":"curl/8.5.0"}"#;
const NGINX_JSON_RETRIES: &str = r#"{"time":"2026-08-20T10:15:31+00:00","remote_addr":"203.0.113.7","host":"shop.example.com","method":"GET","request_uri":"/api/orders","status":502,"body_bytes_sent":157,"request_time":0.003,"upstream_addr":"10.244.2.31:9000, 10.244.3.44:9000 : 10.244.9.9:80","upstream_status":"502, 502 : 200","user_agent":"curl/8.5.0","http_x_canary":"always"}"#;
const ENVOY_TEXT: &str = r#"[2026-08-20T10:15:30.123Z] "GET /products?id=42 HTTP/1.1" 200 - 0 5123 12 11 "203.0.113.7" "curl/8.5.0" "9b2f6c1e-4d8a-4b51-9a0e-0c1b2f3e4d5a" "shop.example.com" "10.244.1.17:8080""#;
const ISTIO_TEXT: &str = r#"[2026-08-20T10:15:31.004Z] "GET /products HTTP/1.1" 503 UH no_healthy_upstream - "-" 0 19 0 - "203.0.113.7" "curl/8.5.0" "0f3a7c55-1b2e-4c3d-8e9f-a0b1c2d3e4f5" "shop.example.com" "-" outbound|80||web.shop.svc.cluster.local - 10.244.0.12:80 203.0.113.7:53424 - shop.storefront.0"#;
const NGINX_COMBINED: &str = r#"203.0.113.7 - - [20/Aug/2026:10:15:30 +0000] "GET /products?id=42 HTTP/1.1" 200 5123 "-" "curl/8.5.0""#;
const HAPROXY: &str = r#"203.0.113.7:53422 [20/Aug/2026:10:15:30.123] fe_http be_web/web2 0/0/1/10/11 200 5123 - - ---- 1/1/0/0/0 0/0 "GET /products?id=42 HTTP/1.1""#;
const HAPROXY_INGRESS: &str = r#"203.0.113.7:53424 [20/Aug/2026:10:15:31.004] http shop_svc_api-v1_http/<NOSRV> 0/-1/-1/-1/0 503 217 - - SC-- 1/1/0/0/0 0/0 "GET shop.example.com/api/orders HTTP/1.1""#;

fn decode_all(
    payload: &str,
    options: &DecodeOptions,
) -> Vec<Result<AccessRecord<'static>, DecodeError>> {
    decode_to_vec(payload.as_bytes(), options)
}

fn decode_one(
    payload: &str,
    options: &DecodeOptions,
) -> Result<AccessRecord<'static>, DecodeError> {
    let mut all = decode_all(payload, options);
    assert_eq!(all.len(), 1, "expected one record from {payload}");
    all.remove(0)
}

fn auto(payload: &str) -> AccessRecord<'static> {
    decode_one(payload, &DecodeOptions::default())
        .unwrap_or_else(|error| panic!("{error}: {payload}"))
}

fn reason(payload: &[u8], options: &DecodeOptions) -> &'static str {
    let mut reasons = Vec::new();
    decode_payload(payload, options, &mut |result| {
        reasons.push(result.expect_err("expected an error").reason());
    });
    assert_eq!(reasons.len(), 1);
    reasons[0]
}

fn forced(format: Format) -> DecodeOptions {
    DecodeOptions {
        format,
        ..DecodeOptions::default()
    }
}

/// Builds a Fluent Bit envelope (Merge_Log Off) around a line.
fn fluent_bit(line: &str, labels: &str) -> String {
    format!(
        r#"{{"@timestamp":1787220930.5,"time":"2026-08-20T10:15:30.123456789Z","stream":"stdout","_p":"F","log":{},"kubernetes":{{"pod_name":"envoy-infra-public-gw-6f2b1c9d-7c9f8d6b5-x2kqz","namespace_name":"envoy-gateway-system","pod_id":"0b7a","labels":{labels},"annotations":{{"prometheus.io/scrape":"true"}},"host":"node-1","pod_ip":"10.244.0.12","container_name":"envoy"}}}}"#,
        serde_json::to_string(&format!("{line}\n")).unwrap()
    )
}

const EG_LABELS: &str = r#"{"app.kubernetes.io/component":"proxy","app.kubernetes.io/managed-by":"envoy-gateway","app.kubernetes.io/name":"envoy","gateway.envoyproxy.io/owning-gateway-name":"public-gw","gateway.envoyproxy.io/owning-gateway-namespace":"infra","pod-template-hash":"7c9f8d6b5"}"#;

#[test]
fn envoy_gateway_typed_json() {
    let record = auto(EG_200);
    assert_eq!(record.format, Format::EnvoyJson);
    assert_eq!(record.envelope, Envelope::Raw);
    assert_eq!(record.time_us, Some(T0 + 123_000));
    assert_eq!(record.authority.as_deref(), Some("shop.example.com"));
    assert_eq!(record.method.as_deref(), Some("GET"));
    assert_eq!(record.path.as_deref(), Some("/api/orders"));
    assert_eq!(record.query.as_deref(), Some("page=2"));
    assert_eq!(record.protocol, Some(Protocol::Http11));
    assert_eq!(record.status, Some(200));
    assert_eq!(record.response_flags, None);
    assert_eq!(
        record.response_code_details.as_deref(),
        Some("via_upstream")
    );
    assert_eq!(record.duration_ms, Some(12));
    assert_eq!(record.bytes_sent, Some(5123));
    assert_eq!(record.bytes_received, Some(0));
    assert_eq!(record.listener_port, Some(10080));
    assert_eq!(record.client_address.as_deref(), Some("203.0.113.7:53422"));
    assert_eq!(
        record.route_name.as_deref(),
        Some("httproute/shop/storefront/rule/1/match/0/shop_example_com")
    );
    assert_eq!(
        record.upstream_cluster.as_deref(),
        Some("httproute/shop/storefront/rule/1")
    );
    assert_eq!(
        record.upstream_addrs.iter().collect::<Vec<_>>(),
        ["10.244.3.44:9000"]
    );
    assert_eq!(record.user_agent.as_deref(), Some("curl/8.5.0"));
    assert_eq!(record.x_forwarded_for.as_deref(), Some("203.0.113.7"));
    assert_eq!(
        record.request_id.as_deref(),
        Some("9b2f6c1e-4d8a-4b51-9a0e-0c1b2f3e4d5a")
    );
    assert_eq!(record.upstream_service_time_ms, None);
    assert!(record.headers.is_empty());
}

#[test]
fn envoy_gateway_error_shapes() {
    let uh = auto(EG_UH);
    assert_eq!(uh.status, Some(503));
    assert_eq!(uh.response_flags.as_deref(), Some("UH"));
    assert!(uh.upstream_addrs.is_empty());
    assert_eq!(
        uh.upstream_cluster.as_deref(),
        Some("httproute/shop/storefront/rule/1")
    );
    let nr = auto(EG_NR);
    assert_eq!(nr.response_flags.as_deref(), Some("NR"));
    assert_eq!(nr.route_name, None);
    assert_eq!(nr.upstream_cluster, None);
    let listener = auto(EG_LISTENER_NR);
    assert_eq!(listener.format, Format::EnvoyJson);
    assert_eq!(listener.status, None);
    assert_eq!(listener.method, None);
    assert_eq!(
        listener.requested_server_name.as_deref(),
        Some("other.example.org")
    );
}

#[test]
fn envoy_gateway_old_all_strings_json() {
    let record = auto(EG_OLD_STRINGS);
    assert_eq!(record.format, Format::EnvoyJson);
    assert_eq!(record.status, Some(200));
    assert_eq!(record.bytes_sent, Some(5123));
    assert_eq!(record.duration_ms, Some(12));
    assert_eq!(record.upstream_service_time_ms, Some(11));
    assert_eq!(record.requested_server_name, None);
    assert_eq!(record.listener_port, Some(10080));
    assert_eq!(record.authority.as_deref(), Some("shop.example.com"));
}

#[test]
fn istio_and_contour_json() {
    let istio = auto(ISTIO_JSON);
    assert_eq!(istio.format, Format::IstioJson);
    assert_eq!(
        istio.upstream_cluster.as_deref(),
        Some("outbound|80||web.shop.svc.cluster.local")
    );
    assert_eq!(istio.path.as_deref(), Some("/products"));
    assert_eq!(istio.query.as_deref(), Some("id=42"));
    assert_eq!(istio.upstream_service_time_ms, Some(11));
    assert_eq!(istio.route_name.as_deref(), Some("shop.storefront.0"));
    assert_eq!(istio.listener_port, Some(80));
    let contour = auto(CONTOUR_JSON);
    assert_eq!(contour.format, Format::Contour);
    assert_eq!(contour.time_us, Some(T0 + 123_000));
    assert_eq!(contour.upstream_cluster.as_deref(), Some("shop_web_80"));
    assert_eq!(contour.listener_port, Some(8080));
    assert_eq!(
        contour.request_id.as_deref(),
        Some("9b2f6c1e-4d8a-4b51-9a0e-0c1b2f3e4d5a")
    );
    let grpc = CONTOUR_JSON.replace(r#""duration":12,"#, r#""duration":12,"grpc_status":"OK","#);
    assert_eq!(auto(&grpc).protocol, Some(Protocol::Grpc));
}

#[test]
fn numeric_server_port_is_judged_like_text() {
    for (port, expected) in [("8080", Some(8080)), ("\"8080\"", Some(8080))] {
        let line =
            NGF_JSON_200.replace("\"server_port\":\"80\"", &format!("\"server_port\":{port}"));
        assert_eq!(auto(&line).listener_port, expected, "{line}");
    }
    for port in ["0", "\"0\"", "70000", "\"70000\"", "-1"] {
        let line =
            NGF_JSON_200.replace("\"server_port\":\"80\"", &format!("\"server_port\":{port}"));
        let error = decode_one(&line, &DecodeOptions::default()).expect_err(port);
        assert!(error.to_string().contains("server_port"), "{port}: {error}");
    }
}

#[test]
fn nginx_gateway_fabric_and_nginx_json() {
    let ngf = auto(NGF_JSON_200);
    assert_eq!(ngf.format, Format::NginxGatewayFabric);
    assert_eq!(ngf.time_us, Some(T0));
    assert_eq!(ngf.status, Some(200));
    assert_eq!(ngf.duration_ms, Some(12));
    assert_eq!(ngf.listener_port, Some(80));
    assert_eq!(ngf.upstream_cluster.as_deref(), Some("shop_api-v2_80"));
    assert_eq!(ngf.upstream_addrs.last(), Some("10.244.3.44:9000"));
    assert_eq!(ngf.x_forwarded_for, None);
    assert_eq!(ngf.path.as_deref(), Some("/api/orders"));
    let not_found = auto(NGF_JSON_404);
    assert!(not_found.upstream_addrs.is_empty());
    assert_eq!(not_found.upstream_cluster, None);
    assert_eq!(not_found.status, Some(404));

    let options = DecodeOptions {
        keep_headers: vec!["X-Canary".to_owned(), "user-agent".to_owned()],
        ..DecodeOptions::default()
    };
    let retries = decode_one(NGINX_JSON_RETRIES, &options).unwrap();
    assert_eq!(retries.format, Format::NginxJson);
    assert_eq!(
        retries.upstream_addrs.iter().collect::<Vec<_>>(),
        ["10.244.2.31:9000", "10.244.3.44:9000", "10.244.9.9:80"]
    );
    assert_eq!(retries.upstream_status.as_deref(), Some("502, 502 : 200"));
    assert_eq!(retries.header("x-canary"), Some("always"));
    assert_eq!(retries.header("User-Agent"), Some("curl/8.5.0"));
    assert_eq!(retries.headers.len(), 2);
}

#[test]
fn text_formats_auto_detected() {
    assert_eq!(auto(ENVOY_TEXT).format, Format::EnvoyText);
    assert_eq!(auto(ISTIO_TEXT).format, Format::IstioText);
    assert_eq!(auto(NGINX_COMBINED).format, Format::NginxCombined);
    assert_eq!(auto(HAPROXY).format, Format::HaproxyHttplog);
    assert_eq!(auto(HAPROXY_INGRESS).format, Format::HaproxyIngress);
    assert_eq!(auto(EG_200).format, Format::EnvoyJson);
    assert_eq!(auto(ISTIO_JSON).format, Format::IstioJson);
    assert_eq!(auto(CONTOUR_JSON).format, Format::Contour);
    assert_eq!(auto(NGF_JSON_200).format, Format::NginxGatewayFabric);
    assert_eq!(auto(NGINX_JSON_RETRIES).format, Format::NginxJson);
}

#[test]
fn forced_formats_label_and_reject() {
    assert_eq!(
        decode_one(ENVOY_TEXT, &forced(Format::Contour))
            .unwrap()
            .format,
        Format::Contour
    );
    assert_eq!(
        decode_one(CONTOUR_JSON, &forced(Format::Contour))
            .unwrap()
            .format,
        Format::Contour
    );
    assert_eq!(
        decode_one(EG_200, &forced(Format::EnvoyJson))
            .unwrap()
            .format,
        Format::EnvoyJson
    );
    assert_eq!(
        decode_one(ISTIO_JSON, &forced(Format::IstioJson))
            .unwrap()
            .format,
        Format::IstioJson
    );
    assert_eq!(
        decode_one(NGINX_COMBINED, &forced(Format::NginxGatewayFabric))
            .unwrap()
            .format,
        Format::NginxGatewayFabric
    );
    assert_eq!(
        decode_one(NGF_JSON_200, &forced(Format::NginxJson))
            .unwrap()
            .format,
        Format::NginxJson
    );
    assert_eq!(
        decode_one(HAPROXY, &forced(Format::HaproxyIngress))
            .unwrap()
            .format,
        Format::HaproxyIngress
    );
    assert_eq!(
        reason(ENVOY_TEXT.as_bytes(), &forced(Format::EnvoyJson)),
        "unknown_format"
    );
    assert_eq!(
        reason(ENVOY_TEXT.as_bytes(), &forced(Format::NginxJson)),
        "unknown_format"
    );
    assert_eq!(
        reason(ISTIO_TEXT.as_bytes(), &forced(Format::EnvoyText)),
        "unknown_format"
    );
    assert_eq!(
        reason(EG_200.as_bytes(), &forced(Format::NginxCombined)),
        "missing_field"
    );
    assert_eq!(
        reason(NGINX_COMBINED.as_bytes(), &forced(Format::HaproxyHttplog)),
        "missing_field"
    );
}

#[test]
fn fluent_bit_envelope_merge_log_off() {
    let payload = fluent_bit(EG_200, EG_LABELS);
    let record = auto(&payload);
    assert_eq!(record.envelope, Envelope::FluentBit);
    assert_eq!(record.format, Format::EnvoyJson);
    assert_eq!(record.gateway_name.as_deref(), Some("public-gw"));
    assert_eq!(record.gateway_namespace.as_deref(), Some("infra"));
    assert_eq!(
        record.pod_name.as_deref(),
        Some("envoy-infra-public-gw-6f2b1c9d-7c9f8d6b5-x2kqz")
    );
    assert_eq!(
        record.pod_namespace.as_deref(),
        Some("envoy-gateway-system")
    );
    assert_eq!(record.container_name.as_deref(), Some("envoy"));
    assert_eq!(record.status, Some(200));
    // The line's own time wins over the envelope's.
    assert_eq!(record.time_us, Some(T0 + 123_000));
    let forced_envelope = DecodeOptions {
        envelope: Envelope::FluentBit,
        ..DecodeOptions::default()
    };
    assert_eq!(
        decode_one(&payload, &forced_envelope)
            .unwrap()
            .upstream_addrs
            .last(),
        Some("10.244.3.44:9000")
    );
}

#[test]
fn fluent_bit_envelope_merge_log_on() {
    let merged = EG_200.trim_end_matches('}').to_owned()
        + r#","@timestamp":1787220930.5,"time":"2026-08-20T10:15:30.9Z","stream":"stdout","_p":"F","kubernetes":{"pod_name":"envoy-x","namespace_name":"envoy-gateway-system","labels":{"gateway.envoyproxy.io/owning-gateway-name":"public-gw","gateway.envoyproxy.io/owning-gateway-namespace":"infra"},"container_name":"envoy"}}"#;
    let record = auto(&merged);
    assert_eq!(record.envelope, Envelope::FluentBit);
    assert_eq!(record.format, Format::EnvoyJson);
    assert_eq!(record.gateway_name.as_deref(), Some("public-gw"));
    assert_eq!(record.time_us, Some(T0 + 123_000));
    assert_eq!(
        record.upstream_cluster.as_deref(),
        Some("httproute/shop/storefront/rule/1")
    );
}

#[test]
fn fluent_bit_text_line_and_docker_newline() {
    let labels = r#"{"gateway.networking.k8s.io/gateway-name":"public-gw","gateway.istio.io/managed":"istio.io-gateway-controller"}"#;
    let payload = fluent_bit(ISTIO_TEXT, labels).replace("envoy-gateway-system", "infra");
    let record = auto(&payload);
    assert_eq!(record.format, Format::IstioText);
    assert_eq!(record.gateway_name.as_deref(), Some("public-gw"));
    assert_eq!(record.gateway_namespace.as_deref(), Some("infra"));
    assert_eq!(record.user_agent.as_deref(), Some("curl/8.5.0"));
}

#[test]
fn vector_envelope_and_ngf_detection() {
    let payload = r#"{"file":"/var/log/pods/infra_public-gw-nginx-5c7d9f8b6-q8rtz_8a1b/nginx/0.log","kubernetes":{"container_id":"containerd://4b6c","container_image":"ghcr.io/nginx/nginx-gateway-fabric/nginx:2.6.7","container_name":"nginx","namespace_labels":{"kubernetes.io/metadata.name":"infra"},"pod_annotations":{},"pod_ip":"10.244.0.12","pod_ips":["10.244.0.12"],"pod_labels":{"gateway.networking.k8s.io/gateway-name":"public-gw","app.kubernetes.io/name":"public-gw-nginx"},"pod_name":"public-gw-nginx-5c7d9f8b6-q8rtz","pod_namespace":"infra","pod_node_name":"node-1","pod_owner":"ReplicaSet/public-gw-nginx-5c7d9f8b6","pod_uid":"8a1b"},"message":"203.0.113.7 - - [20/Aug/2026:10:15:30 +0000] \"GET /products?id=42 HTTP/1.1\" 200 5123 \"-\" \"curl/8.5.0\"","source_type":"kubernetes_logs","stream":"stdout","timestamp":"2026-08-20T10:15:30.123456789Z"}"#;
    let record = auto(payload);
    assert_eq!(record.envelope, Envelope::Vector);
    assert_eq!(record.format, Format::NginxGatewayFabric);
    assert_eq!(record.gateway_name.as_deref(), Some("public-gw"));
    assert_eq!(record.gateway_namespace.as_deref(), Some("infra"));
    assert_eq!(
        record.pod_name.as_deref(),
        Some("public-gw-nginx-5c7d9f8b6-q8rtz")
    );
    assert_eq!(record.path.as_deref(), Some("/products"));
    assert_eq!(record.time_us, Some(T0));
    let forced_vector = DecodeOptions {
        envelope: Envelope::Vector,
        ..DecodeOptions::default()
    };
    assert_eq!(
        decode_one(payload, &forced_vector).unwrap().envelope,
        Envelope::Vector
    );
    let no_message = r#"{"source_type":"kubernetes_logs","timestamp":"2026-08-20T10:15:30Z"}"#;
    assert_eq!(
        reason(no_message.as_bytes(), &forced_vector),
        "missing_field"
    );
}

fn otlp(records: &str) -> String {
    format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"k8s.namespace.name","value":{{"stringValue":"infra"}}}},{{"key":"k8s.pod.name","value":{{"stringValue":"public-gw-istio-7d9c8b7f6-2xk8p"}}}},{{"key":"k8s.container.name","value":{{"stringValue":"istio-proxy"}}}},{{"key":"k8s.pod.labels.gateway.networking.k8s.io/gateway-name","value":{{"stringValue":"public-gw"}}}},{{"key":"k8s.pod.uid","value":{{"stringValue":"..."}}}}]}},"scopeLogs":[{{"scope":{{}},"logRecords":[{records}]}}]}}]}}"#
    )
}

#[test]
fn otlp_many_records_with_string_bodies() {
    let body = |line: &str| {
        format!(
            r#"{{"timeUnixNano":"1787220930123456789","observedTimeUnixNano":"1787220930200000000","body":{{"stringValue":{}}},"attributes":[{{"key":"log.iostream","value":{{"stringValue":"stdout"}}}}],"traceId":"","spanId":""}}"#,
            serde_json::to_string(line).unwrap()
        )
    };
    let payload = otlp(&format!(
        "{},{},{}",
        body(ISTIO_TEXT),
        body(ENVOY_TEXT),
        body("garbage")
    ));
    let results = decode_all(&payload, &DecodeOptions::default());
    assert_eq!(results.len(), 3);
    let first = results[0].as_ref().unwrap();
    assert_eq!(first.envelope, Envelope::OtlpJson);
    assert_eq!(first.format, Format::IstioText);
    assert_eq!(
        first.pod_name.as_deref(),
        Some("public-gw-istio-7d9c8b7f6-2xk8p")
    );
    assert_eq!(first.gateway_name.as_deref(), Some("public-gw"));
    assert_eq!(first.gateway_namespace.as_deref(), Some("infra"));
    assert_eq!(first.container_name.as_deref(), Some("istio-proxy"));
    assert_eq!(results[1].as_ref().unwrap().format, Format::EnvoyText);
    assert_eq!(results[2].as_ref().unwrap_err().reason(), "unknown_format");
}

#[test]
fn otlp_kvlist_body_and_attributes() {
    let kvlist = r#"{"timeUnixNano":"1787220930123456789","body":{"kvlistValue":{"values":[{"key":"start_time","value":{"stringValue":"2026-08-20T10:15:30.123Z"}},{"key":":authority","value":{"stringValue":"shop.example.com"}},{"key":"response_code","value":{"intValue":"200"}},{"key":"duration","value":{"intValue":12}},{"key":"upstream_host","value":{"stringValue":"10.244.3.44:9000"}},{"key":"x-envoy-origin-path","value":{"stringValue":"/api/orders?page=2"}}]}}}"#;
    let attributes = r#"{"timeUnixNano":"1787220931000000000","attributes":[{"key":"k8s.pod.name","value":{"stringValue":"envoy-x"}},{"key":"response_code","value":{"intValue":"503"}},{"key":"response_flags","value":{"stringValue":"UH"}},{"key":"x-envoy-origin-path","value":{"stringValue":"/products"}}]}"#;
    let no_body = r#"{"timeUnixNano":"1787220931000000000"}"#;
    let payload = otlp(&format!("{kvlist},{attributes},{no_body}"));
    let results = decode_all(&payload, &DecodeOptions::default());
    assert_eq!(results.len(), 3);
    let first = results[0].as_ref().unwrap();
    assert_eq!(first.format, Format::EnvoyJson);
    assert_eq!(first.status, Some(200));
    assert_eq!(first.duration_ms, Some(12));
    assert_eq!(first.query.as_deref(), Some("page=2"));
    assert_eq!(first.time_us, Some(T0 + 123_000));
    let second = results[1].as_ref().unwrap();
    assert_eq!(second.status, Some(503));
    assert_eq!(second.response_flags.as_deref(), Some("UH"));
    assert_eq!(second.time_us, Some(T0 + 1_000_000));
    assert_eq!(results[2].as_ref().unwrap_err().reason(), "missing_field");
    assert!(results[2]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("body"));
    // An OTLP payload with no records yields nothing.
    assert!(decode_all(r#"{"resourceLogs":[]}"#, &DecodeOptions::default()).is_empty());
}

#[test]
fn otlp_raw_string_and_cri_prefix() {
    let raw = serde_json::to_string(ENVOY_TEXT).unwrap();
    let record = auto(&raw);
    assert_eq!(record.envelope, Envelope::OtlpJson);
    assert_eq!(record.format, Format::EnvoyText);
    assert_eq!(record.status, Some(200));
    let cri = format!("2026-08-20T10:15:30.999999999Z stdout F {NGINX_COMBINED}");
    let record = auto(&cri);
    assert_eq!(record.envelope, Envelope::Raw);
    assert_eq!(record.format, Format::NginxCombined);
    assert_eq!(record.time_us, Some(T0));
}

#[test]
fn raw_json_with_envelope_words_is_not_an_envelope() {
    let tricky = EG_200.replace("curl/8.5.0", "\\\"log\\\" \\\"kubernetes\\\"");
    let record = auto(&tricky);
    assert_eq!(record.envelope, Envelope::Raw);
    assert_eq!(record.user_agent.as_deref(), Some("\"log\" \"kubernetes\""));
}

#[test]
fn every_reason_code_is_reachable() {
    let options = DecodeOptions::default();
    assert_eq!(reason(b"\xff\xfe", &options), "invalid_utf8");
    assert_eq!(
        reason(b"{\":authority\":\"shop", &options),
        "truncated_json"
    );
    assert_eq!(reason(b"{\":authority\" 1}", &options), "invalid_json");
    assert_eq!(reason(b"hello world", &options), "unknown_format");
    assert_eq!(reason(b"{\"foo\":1}", &options), "unknown_format");
    let truncated_text = &ENVOY_TEXT[..ENVOY_TEXT.len() - 40];
    assert_eq!(reason(truncated_text.as_bytes(), &options), "missing_field");
    assert_eq!(
        reason(
            EG_200
                .replace("\"duration\":12", "\"duration\":\"soon\"")
                .as_bytes(),
            &options
        ),
        "invalid_value"
    );
    assert_eq!(
        reason(
            EG_200
                .replace("\"response_code\":200", "\"response_code\":700")
                .as_bytes(),
            &options
        ),
        "absurd_value"
    );
    assert_eq!(
        reason(
            EG_200
                .replace("\"duration\":12", "\"duration\":-3")
                .as_bytes(),
            &options
        ),
        "absurd_value"
    );
    assert_eq!(
        reason(
            EG_200
                .replace("10.244.0.12:10080", "10.244.0.12:0")
                .as_bytes(),
            &options
        ),
        "absurd_value"
    );
    assert_eq!(
        reason(
            EG_200
                .replace("2026-08-20T10:15:30.123Z", "2250-01-01T00:00:00Z")
                .as_bytes(),
            &options
        ),
        "absurd_value"
    );
    assert_eq!(reason(b"", &options), "empty_line");
    assert_eq!(reason(b" \r\n", &options), "empty_line");
    let small = DecodeOptions {
        max_line_len: 16,
        ..DecodeOptions::default()
    };
    assert_eq!(reason(ENVOY_TEXT.as_bytes(), &small), "too_long");
    assert_eq!(
        reason(&vec![b'a'; DEFAULT_MAX_LINE_LEN + 1], &options),
        "too_long"
    );
    // Reason codes are stable and listed.
    for code in [
        "invalid_utf8",
        "truncated_json",
        "invalid_json",
        "unknown_format",
        "missing_field",
        "invalid_value",
        "absurd_value",
        "empty_line",
        "too_long",
    ] {
        assert!(DecodeError::REASONS.contains(&code));
    }
}

#[test]
fn error_messages_name_the_field() {
    let error = decode_one(
        &EG_200.replace("\"response_code\":200", "\"response_code\":700"),
        &DecodeOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "absurd value for field `response_code`: 700"
    );
    let error = decode_one(
        &EG_200.replace("\"duration\":12", "\"duration\":true"),
        &DecodeOptions::default(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("`duration`"), "{error}");
    let error = decode_one(
        "{\"log\":",
        &DecodeOptions {
            envelope: Envelope::FluentBit,
            ..DecodeOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(error.reason(), "truncated_json");
    assert!(error.to_string().contains("envelope"));
}

#[test]
fn borrowed_on_the_hot_path() {
    let mut checked = false;
    decode_payload(
        EG_200.as_bytes(),
        &DecodeOptions::default(),
        &mut |result| {
            let record = result.unwrap();
            assert!(matches!(record.authority, Some(Cow::Borrowed(_))));
            assert!(matches!(record.path, Some(Cow::Borrowed(_))));
            assert!(matches!(record.upstream_cluster, Some(Cow::Borrowed(_))));
            checked = true;
        },
    );
    assert!(checked);
}

#[test]
fn grpc_detection() {
    let grpc_path = ENVOY_TEXT.replace(
        "/products?id=42 HTTP/1.1",
        "/helloworld.Greeter/SayHello HTTP/2",
    );
    assert_eq!(auto(&grpc_path).protocol, Some(Protocol::Grpc));
    let grpc_route = EG_200.replace("httproute/shop", "grpcroute/shop");
    assert_eq!(auto(&grpc_route).protocol, Some(Protocol::Grpc));
    let with_content_type = EG_200.replace(
        "\"method\"",
        "\"content-type\":\"application/grpc+proto\",\"method\"",
    );
    let options = DecodeOptions {
        keep_headers: vec!["content-type".to_owned()],
        ..DecodeOptions::default()
    };
    let record = decode_one(&with_content_type, &options).unwrap();
    assert_eq!(record.protocol, Some(Protocol::Grpc));
    assert_eq!(
        record.header("content-type"),
        Some("application/grpc+proto")
    );
    assert_eq!(auto(EG_200).protocol, Some(Protocol::Http11));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for format in Format::ALL {
            for envelope in Envelope::ALL {
                let options = DecodeOptions { format, envelope, keep_headers: vec!["x-canary".to_owned()], max_line_len: 4096 };
                let mut count = 0usize;
                decode_payload(&bytes, &options, &mut |_| count += 1);
                prop_assert!(count <= bytes.len() + 1);
            }
        }
    }

    #[test]
    fn mutated_real_lines_never_panic(
        which in 0usize..8,
        cut in 0usize..1200,
        insert in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let samples = [EG_200, EG_OLD_STRINGS, ISTIO_TEXT, ENVOY_TEXT, NGINX_COMBINED, HAPROXY, HAPROXY_INGRESS, NGF_JSON_200];
        let base = samples[which].as_bytes();
        let at = cut % (base.len() + 1);
        let mut bytes = base[..at].to_vec();
        bytes.extend_from_slice(&insert);
        bytes.extend_from_slice(&base[at..]);
        let mut results = 0;
        decode_payload(&bytes, &DecodeOptions::default(), &mut |_| results += 1);
        prop_assert_eq!(results, 1);
    }
}

/// The one-pass path for plain flat JSON lines gives what the general path
/// (envelope sniffing, raw line, format dispatch) gives, whenever it answers;
/// so does the ASCII path (the line indexed and validated in one pass) and
/// [`decode_payload`] as a whole, on the untrimmed payload.
fn assert_plain_path_agrees(payload: &str) -> Result<(), TestCaseError> {
    assert_ascii_path_agrees(payload)?;
    let text = payload.trim();
    for format in Format::ALL {
        let options = DecodeOptions {
            format,
            keep_headers: vec!["x-canary".to_owned(), "user-agent".to_owned()],
            ..DecodeOptions::default()
        };
        let Some(fast) = plain_flat_json(text, &options) else {
            continue;
        };
        let mut general = Vec::new();
        super::decode_trimmed(text, super::sniff_envelope(text), &options, &mut |r| {
            general.push(r.map(AccessRecord::into_owned))
        });
        prop_assert_eq!(general.len(), 1);
        prop_assert_eq!(
            &general[0],
            &fast.map(AccessRecord::into_owned),
            "{:?} {}",
            format,
            text
        );
    }
    Ok(())
}

#[test]
fn plain_path_takes_flat_lines_and_leaves_envelopes() {
    let options = DecodeOptions::default();
    for line in [EG_200, EG_UH, EG_NR, ISTIO_JSON, CONTOUR_JSON] {
        assert!(plain_flat_json(line, &options).is_some(), "{line}");
        assert_plain_path_agrees(line).unwrap();
    }
    // Fractions (NGINX `request_time`) are left to the serde path.
    for line in [NGF_JSON_200, NGINX_JSON_RETRIES] {
        assert!(plain_flat_json(line, &options).is_none(), "{line}");
    }
    // Envelope words as whole strings (keys or values) send the line to the
    // sniffer; as parts of strings they do not.
    for word in ["log", "message", "kubernetes", "resourceLogs"] {
        let as_value = EG_200.replace("\"GET\"", &format!("\"{word}\""));
        assert!(plain_flat_json(&as_value, &options).is_none());
        assert_plain_path_agrees(&as_value).unwrap();
        let as_part = EG_200.replace("\"GET\"", &format!("\"{word}s\""));
        assert!(plain_flat_json(&as_part, &options).is_some());
        assert_plain_path_agrees(&as_part).unwrap();
    }
    let fluent = fluent_bit(EG_200, EG_LABELS);
    assert!(plain_flat_json(&fluent, &options).is_none());
    for format in [
        Format::EnvoyText,
        Format::NginxCombined,
        Format::HaproxyHttplog,
    ] {
        assert!(plain_flat_json(EG_200, &forced(format)).is_none());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn plain_path_agrees_with_the_general_path(
        which in 0usize..7,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec![
            "\"log\"", "\"message\"", "\"kubernetes\"", "\"resourceLogs\"", "\"log\":\"x\",",
            "\"kubernetes\":{},", "\\", "\"", ",", "}", "{", " ", "\t", "\u{1}", "é", "1", "null",
        ])), 0..3),
    ) {
        let samples = [EG_200, EG_UH, EG_OLD_STRINGS, ISTIO_JSON, CONTOUR_JSON, NGF_JSON_200, NGINX_JSON_RETRIES];
        let mut line = samples[which].to_owned();
        for (at, piece) in edits {
            let mut pos = at.index(line.len() + 1);
            while !line.is_char_boundary(pos) {
                pos -= 1;
            }
            line.insert_str(pos, piece);
        }
        assert_plain_path_agrees(&line)?;
    }
}

/// [`decode_payload`] of `payload` (every format, envelope auto) equals
/// the general path alone (UTF-8 check, trim, envelope sniffing, format
/// dispatch); and whenever the ASCII path answers, it answers the same.
fn assert_ascii_path_agrees(payload: &str) -> Result<(), TestCaseError> {
    for format in Format::ALL {
        let options = DecodeOptions {
            format,
            keep_headers: vec!["x-canary".to_owned(), "user-agent".to_owned()],
            ..DecodeOptions::default()
        };
        let mut general = Vec::new();
        let text = payload.trim();
        if text.is_empty() {
            continue;
        }
        super::decode_trimmed(text, super::sniff_envelope(text), &options, &mut |r| {
            general.push(r.map(AccessRecord::into_owned))
        });
        let whole = decode_to_vec(payload.as_bytes(), &options);
        prop_assert_eq!(&whole, &general, "{:?} {}", format, payload);
        let mut fields = super::json_log::FlatFields::default();
        let mut ascii_text = None;
        if let Some(result) = super::decode_plain_ascii_json(
            payload.as_bytes(),
            &options,
            &mut fields,
            &mut ascii_text,
        ) {
            prop_assert!(payload.is_ascii() && payload == text);
            let fast = result.map(|()| fields.record.into_owned());
            prop_assert_eq!(general.len(), 1);
            prop_assert_eq!(&general[0], &fast, "{:?} {}", format, payload);
        }
        // Text handed back on a decline is the payload, and only ASCII.
        if let Some(ascii) = ascii_text {
            prop_assert!(ascii == payload && payload.is_ascii(), "{}", payload);
        }
    }
    Ok(())
}

/// A payload the ASCII path declines comes back as text when, and only when,
/// its index pass found it all ASCII (the caller then skips validation).
#[test]
fn declined_ascii_payloads_come_back_as_text() {
    let options = DecodeOptions::default();
    let declined = |payload: &str| {
        let mut fields = super::json_log::FlatFields::default();
        let mut ascii_text = None;
        let taken = super::decode_plain_ascii_json(
            payload.as_bytes(),
            &options,
            &mut fields,
            &mut ascii_text,
        );
        assert!(taken.is_none(), "{payload}");
        ascii_text.map(str::to_owned)
    };
    for ascii in [
        r#"{"log":"{\"a\":1}","kubernetes":{"pod_name":"p"}}"#,
        r#"{"response_code":200,"kubernetes":{"pod_name":"p"}}"#,
    ] {
        assert_eq!(declined(ascii).as_deref(), Some(ascii));
    }
    for other in [
        r#"{"log":"\u00e9 é","kubernetes":{}}"#,
        r#"["not","an","object"]"#,
    ] {
        assert_eq!(declined(other), None, "{other}");
    }
}

/// The ASCII path takes gateway lines as they are written, and leaves to the
/// general path every payload it cannot validate or index in one pass.
#[test]
fn ascii_path_takes_compact_ascii_objects_only() {
    let options = DecodeOptions::default();
    let takes = |payload: &str| {
        let mut fields = super::json_log::FlatFields::default();
        super::decode_plain_ascii_json(payload.as_bytes(), &options, &mut fields, &mut None)
            .is_some()
    };
    for line in [EG_200, EG_UH, EG_NR, ISTIO_JSON, CONTOUR_JSON] {
        assert!(takes(line), "{line}");
        assert_plain_path_agrees(line).unwrap();
    }
    let sample = EG_200;
    for payload in [
        format!(" {sample}"),
        format!("{sample}\n"),
        format!("{sample} "),
        sample.replace("GET", "GÉT"),
        sample.replace("GET", "G\\u0045T"),
        sample.replace("GET", "G\u{1}T"),
        sample.replace("\"GET\"", "true"),
        "{}".to_owned(),
        "{\"method\":\"GET\"".to_owned(),
        format!("{{\"x\":\"{}\",{}", "a".repeat(2100), &sample[1..]),
    ] {
        assert!(!takes(&payload), "{payload}");
        assert_plain_path_agrees(&payload).unwrap();
    }
}

/// The plain flat-JSON fast path with its result moved out, as the tests
/// above compare it.
fn plain_flat_json<'a>(
    text: &'a str,
    options: &DecodeOptions,
) -> Option<Result<AccessRecord<'a>, DecodeError>> {
    let mut fields = super::json_log::FlatFields::default();
    super::decode_plain_flat_json(text, options, &mut fields)
        .map(|result| result.map(|()| fields.record))
}

/// An envelope's inner line decoded through the ASCII walk gives what
/// [`decode_line`] gives, for every format, with pod metadata applied.
fn assert_inner_line_agrees(line: &str) -> Result<(), TestCaseError> {
    let meta = PodMeta {
        envelope: Envelope::FluentBit,
        pod_name: Some("envoy-x".into()),
        pod_namespace: Some("infra-ns".into()),
        container_name: Some("nginx".into()),
        labels: envelope::GatewayLabels {
            gateway_api_name: Some("public".into()),
            ..Default::default()
        },
        time_us: Some(T0),
    };
    for format in Format::ALL {
        let options = DecodeOptions {
            format,
            keep_headers: vec!["x-canary".to_owned(), "user-agent".to_owned()],
            ..DecodeOptions::default()
        };
        let reference = decode_line(line, &options, &meta).map(AccessRecord::into_owned);
        let mut fast = Vec::new();
        decode_inner_line(line, &options, &meta, &mut |r| {
            fast.push(r.map(AccessRecord::into_owned))
        });
        prop_assert_eq!(fast.len(), 1);
        prop_assert_eq!(&fast[0], &reference, "{:?} {}", format, line);
    }
    Ok(())
}

#[test]
fn inner_lines_take_the_ascii_walk_with_the_same_result() {
    for line in [
        EG_200,
        EG_UH,
        EG_NR,
        EG_LISTENER_NR,
        EG_OLD_STRINGS,
        ISTIO_JSON,
        CONTOUR_JSON,
        NGF_JSON_200,
        NGINX_JSON_RETRIES,
        ENVOY_TEXT,
        NGINX_COMBINED,
        HAPROXY,
        r#"{"log":"x","method":"GET"}"#,
        r#"{"unknown":1}"#,
    ] {
        assert_inner_line_agrees(line).unwrap();
    }
    // The metadata reaches records that took the walk.
    let payload = fluent_bit(EG_200, EG_LABELS);
    let record = auto(&payload);
    assert_eq!(
        record.pod_name.as_deref(),
        Some("envoy-infra-public-gw-6f2b1c9d-7c9f8d6b5-x2kqz")
    );
    assert_eq!(record.gateway_name.as_deref(), Some("public-gw"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn inner_line_walk_agrees_with_decode_line(
        which in 0usize..5,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec![
            "\"log\"", "\\", "\"", ",", "}", "{", " ", "\u{1}", "é", "1", "null", "\"x\":1,",
        ])), 0..3),
    ) {
        let samples = [EG_200, EG_UH, ISTIO_JSON, CONTOUR_JSON, NGF_JSON_200];
        let mut line = samples[which].to_owned();
        for (at, piece) in edits {
            let mut pos = at.index(line.len() + 1);
            while !line.is_char_boundary(pos) {
                pos -= 1;
            }
            line.insert_str(pos, piece);
        }
        let line = line.trim();
        if !line.is_empty() {
            assert_inner_line_agrees(line)?;
        }
    }
}

/// The fuzz target's differential check holds on its seeds (every envelope
/// and plain layout).
#[test]
fn envelope_fuzz_check_holds_on_the_seeds() {
    let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/envelope_auto");
    let mut checked = 0;
    for entry in std::fs::read_dir(seeds).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(envelope_paths_agree(&text), "{text}");
        checked += 1;
    }
    assert!(checked >= 10);
    let payload = fluent_bit(EG_200, EG_LABELS);
    assert!(envelope_paths_agree(&payload));
    assert!(envelope_paths_agree(EG_200));
}

/// A `Merge_Log On` object read in one pass gives what [`decode_line`]
/// gives, for every format, with pod metadata and wanted headers.
fn assert_merged_agrees(object: &str) -> Result<(), TestCaseError> {
    let meta = PodMeta {
        envelope: Envelope::FluentBit,
        pod_name: Some("envoy-x".into()),
        pod_namespace: Some("infra-ns".into()),
        time_us: Some(T0),
        ..PodMeta::default()
    };
    for format in Format::ALL {
        let options = DecodeOptions {
            format,
            keep_headers: vec!["x-canary".to_owned(), "user-agent".to_owned()],
            ..DecodeOptions::default()
        };
        let reference = decode_line(object, &options, &meta).map(AccessRecord::into_owned);
        // Without and with the span of the `kubernetes` value read first.
        for read_span in [None, envelope::kubernetes_span(object)] {
            let mut fast = Vec::new();
            decode_merged_object(object, read_span.clone(), &options, &meta, &mut |r| {
                fast.push(r.map(AccessRecord::into_owned))
            });
            prop_assert_eq!(fast.len(), 1);
            prop_assert_eq!(
                &fast[0],
                &reference,
                "{:?} {} {:?}",
                format,
                object,
                read_span
            );
        }
    }
    Ok(())
}

fn merged(line: &str) -> String {
    line.trim_end_matches('}').to_owned()
        + r#","@timestamp":1787220930.5,"time":"2026-08-20T10:15:30.9Z","stream":"stdout","_p":"F","kubernetes":{"pod_name":"envoy-x","namespace_name":"envoy-gateway-system","labels":{"gateway.envoyproxy.io/owning-gateway-name":"public-gw"},"annotations":{"a":[1,{"b":null}]},"container_name":"envoy"}}"#
}

#[test]
fn merged_objects_read_in_one_pass_with_the_same_result() {
    for line in [
        EG_200,
        EG_UH,
        EG_OLD_STRINGS,
        ISTIO_JSON,
        CONTOUR_JSON,
        NGF_JSON_200,
        NGINX_JSON_RETRIES,
    ] {
        let object = merged(line);
        assert_merged_agrees(&object).unwrap();
        let span = envelope::kubernetes_span(&object);
        assert!(span.is_some(), "{object}");
        for read_span in [None, span] {
            let mut fields = json_log::FlatFields::default();
            assert!(
                envelope::read_merged_fields(&object, &[], &mut fields, read_span).is_some(),
                "{object}"
            );
        }
    }
    for object in [
        // Field errors, duplicates, escapes, headers, nothing known.
        r#"{"response_code":"abc","kubernetes":{}}"#,
        r#"{"method":"GET","method":"POST","response_code":200,"kubernetes":{}}"#,
        r#"{"method":"G\u0045T","x-envoy-origin-path":"/a\/b","response_code":200,"x-canary":"yes","kubernetes":{}}"#,
        r#"{"x-canary":{"nested":true},"user-agent":"curl","response_code":200}"#,
        r#"{"kubernetes":{"pod_name":"p"}}"#,
        r#"{"response_code":200,"kubernetes":{"pod_name":"p"}} trailing"#,
        r#"{"resp\u006fnse_code":200}"#,
    ] {
        assert_merged_agrees(object).unwrap();
    }
    // The metadata reaches a record read in one pass.
    let record = auto(&merged(EG_200));
    assert_eq!(record.envelope, Envelope::FluentBit);
    assert_eq!(record.gateway_name.as_deref(), Some("public-gw"));
    assert_eq!(record.pod_name.as_deref(), Some("envoy-x"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn merged_reader_agrees_with_decode_line(
        which in 0usize..5,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec![
            "\"log\"", "\\", "\\\"", "\"", ",", "}", "{", "[", " ", "\u{1}", "é", "1", "-", "null",
            "\"x-canary\":\"c\",", "\"response_code\":\"x\",", "\"method\":7,",
        ])), 0..3),
    ) {
        let samples = [EG_200, EG_UH, ISTIO_JSON, CONTOUR_JSON, NGF_JSON_200];
        let mut object = merged(samples[which]);
        for (at, piece) in edits {
            let mut pos = at.index(object.len() + 1);
            while !object.is_char_boundary(pos) {
                pos -= 1;
            }
            object.insert_str(pos, piece);
        }
        let object = object.trim();
        if object.starts_with('{') {
            assert_merged_agrees(object)?;
        }
    }
}
