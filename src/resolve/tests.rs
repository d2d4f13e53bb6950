//! Tests for naming schemes, the endpoint index and `resolve_actual`.
//!
//! Names come from `docs/access-log-formats.md` (the shop/storefront example:
//! rule 0 → `web:80`, rule 1 → `api-v1:80` w80 + `api-v2:80` w20).

use std::net::SocketAddr;

use proptest::prelude::*;

use super::*;
use crate::gateway::load::load_text;
use crate::gateway::{CompileOptions, ObjectSet, RouteKind};
use crate::test_manifests::service_with_pod;

const MANIFESTS: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: eg}
spec: {controllerName: gateway.envoyproxy.io/gatewayclass-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: public-gw, namespace: infra}
spec:
  gatewayClassName: eg
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes: {namespaces: {from: All}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: storefront, namespace: shop}
spec:
  parentRefs: [{name: public-gw, namespace: infra}]
  hostnames: [shop.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /products}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /api}}]
    backendRefs:
    - {name: api-v1, port: 80, weight: 80}
    - {name: api-v2, port: 80, weight: 20}
  - matches: [{path: {type: PathPrefix, value: /canary}}]
    backendRefs:
    - {name: web, port: 80, weight: 90}
    - {name: web-canary, port: 80, weight: 10}
  - matches: [{path: {type: PathPrefix, value: /drained}}]
    backendRefs:
    - {name: api-v1, port: 80, weight: 0}
    - {name: api-v2, port: 80, weight: 100}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-canary, namespace: shop}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: api-v1, namespace: shop}
spec:
  ports: [{port: 80, targetPort: 9000}]
---
apiVersion: v1
kind: Service
metadata: {name: api-v2, namespace: shop}
spec:
  ports: [{port: 80, targetPort: 9000}]
---
apiVersion: v1
kind: Service
metadata: {name: multi, namespace: shop}
spec:
  ports:
  - {name: http, port: 80, targetPort: web}
  - {name: metrics, port: 9090}
---
apiVersion: v1
kind: Service
metadata: {name: hand, namespace: shop}
spec:
  ports:
  - {name: api, port: 80, targetPort: grpc-api}
  - {name: other, port: 81, targetPort: 7000}
---
apiVersion: v1
kind: Service
metadata: {name: v6, namespace: shop}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-7xk2p
  namespace: shop
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- addresses: [10.244.1.17]
  conditions: {ready: true}
  targetRef: {kind: Pod, namespace: shop, name: web-5d9c7b8f6-abcde}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-canary-1
  namespace: shop
  labels: {kubernetes.io/service-name: web-canary}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.244.1.17]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: api-v1-1
  namespace: shop
  labels: {kubernetes.io/service-name: api-v1}
addressType: IPv4
ports: [{name: "", port: 9000}]
endpoints:
- addresses: [10.244.2.31]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: api-v2-1
  namespace: shop
  labels: {kubernetes.io/service-name: api-v2}
addressType: IPv4
ports: [{port: 9000}]
endpoints:
- addresses: [10.244.3.44]
  conditions: {ready: false, terminating: true}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: multi-1
  namespace: shop
  labels: {kubernetes.io/service-name: multi}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: metrics, port: 9090}]
endpoints:
- addresses: [10.244.4.4]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: hand-1
  namespace: shop
  labels: {kubernetes.io/service-name: hand}
addressType: IPv4
ports: [{name: grpc-api, port: 7443}, {name: whatever, port: 7000}]
endpoints:
- addresses: [10.244.5.5]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: v6-1
  namespace: shop
  labels: {kubernetes.io/service-name: v6}
addressType: IPv6
ports: [{name: http, port: 8080}]
endpoints:
- addresses: ["fd00::1"]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: orphan-1
  namespace: shop
  labels: {kubernetes.io/service-name: orphan}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.244.6.6, not-an-ip]
"#;

fn objects() -> ObjectSet {
    let mut set = ObjectSet::default();
    load_text(&mut set, "t.yaml", MANIFESTS).expect("test manifests load");
    set
}

fn fixture() -> (EndpointIndex, RouteIndex) {
    let set = objects();
    (
        EndpointIndex::build(&set),
        RouteIndex::compile(&set, CompileOptions::default()),
    )
}

fn addr(s: &str) -> SocketAddr {
    parse_socket_addr(s).expect("test address parses")
}

fn service(name: &UpstreamName<'_>) -> Option<(String, String, Option<String>)> {
    let port = |p: Option<PortRef<'_>>| {
        p.map(|p| match p {
            PortRef::Number(n) => n.to_string(),
            PortRef::Name(n) => format!("name:{n}"),
        })
    };
    match name {
        UpstreamName::Service(s) => Some((s.namespace.into(), s.name.into(), port(s.port))),
        _ => None,
    }
}

fn svc(ns: &str, name: &str, port: &str) -> Option<(String, String, Option<String>)> {
    Some((ns.into(), name.into(), Some(port.into())))
}

fn rule(ns: &'static str, name: &'static str, index: usize) -> RuleRef<'static> {
    RuleRef {
        kind: RouteKind::Http,
        route: RouteRef::Exact {
            namespace: ns,
            name,
        },
        rule_index: index,
        backend_index: None,
    }
}

// ---------------------------------------------------------------- naming

#[test]
fn implementation_round_trips() {
    for implementation in Implementation::ALL {
        assert_eq!(implementation.as_str().parse(), Ok(implementation));
        assert_eq!(implementation.to_string(), implementation.as_str());
    }
    assert_eq!("NGF".parse(), Ok(Implementation::NginxGatewayFabric));
    assert_eq!("Envoy-Gateway".parse(), Ok(Implementation::EnvoyGateway));
    let err = "nginx-ingress".parse::<Implementation>().unwrap_err();
    assert!(err.to_string().contains("nginx-ingress"));
}

#[test]
fn envoy_gateway_names() {
    let eg = Implementation::EnvoyGateway;
    assert_eq!(
        parse_upstream_name(eg, "httproute/shop/storefront/rule/1"),
        Some(UpstreamName::Rule(rule("shop", "storefront", 1)))
    );
    assert_eq!(
        parse_upstream_name(eg, "httproute/default/backend/rule/0"),
        Some(UpstreamName::Rule(rule("default", "backend", 0)))
    );
    assert_eq!(
        parse_route_name(
            eg,
            "httproute/shop/storefront/rule/1/match/0/shop_example_com"
        ),
        Some(rule("shop", "storefront", 1))
    );
    assert_eq!(
        parse_route_name(eg, "httproute/default/httproute-1/rule/0/match/-1/*"),
        Some(rule("default", "httproute-1", 0))
    );
    assert_eq!(
        parse_route_name(
            eg,
            "httproute/shop/storefront/rule/2/match/0/cors-preflight/*_example_com"
        ),
        Some(rule("shop", "storefront", 2))
    );
    let per_backend = RuleRef {
        backend_index: Some(1),
        ..rule("shop", "storefront", 1)
    };
    assert_eq!(
        parse_upstream_name(eg, "httproute/shop/storefront/rule/1/backend/1"),
        Some(UpstreamName::Rule(per_backend))
    );
    let grpc = parse_route_name(eg, "grpcroute/shop/echo/rule/0/match/0/*").map(|r| r.kind);
    assert_eq!(grpc, Some(RouteKind::Grpc));
    let merged = parse_upstream_name(eg, "service/shop/web/80/http").expect("merged backend");
    assert_eq!(service(&merged), svc("shop", "web", "80"));
    assert_eq!(
        parse_upstream_name(eg, "invalid-backend-cluster"),
        Some(UpstreamName::Gateway(GatewayAction::ClusterNotFound))
    );
    for bad in [
        "httproute/shop/storefront/rule/0-mirror-0",
        "tcproute/shop/db/rule/-1",
        "httproute/shop/storefront/rule/x",
        "httproute/shop/storefront/rules/0",
        "httproute/Shop/storefront/rule/0",
        "httproute//storefront/rule/0",
        "httproute/shop/storefront/rule/0/backend/1/extra",
        "service/shop/web/0",
        "service/shop/web/80/",
    ] {
        assert_eq!(parse_upstream_name(eg, bad), None, "{bad}");
    }
}

#[test]
fn istio_names() {
    let istio = Implementation::Istio;
    for (name, expected) in [
        (
            "outbound|80||api-v2.shop.svc.cluster.local",
            svc("shop", "api-v2", "80"),
        ),
        (
            "outbound|80||web.shop.svc.cluster.local;",
            svc("shop", "web", "80"),
        ),
        (
            "outbound|8080|v1|web.shop.svc.cluster.local",
            svc("shop", "web", "8080"),
        ),
        (
            "outbound|80||web.shop.svc.clusterset.local",
            svc("shop", "web", "80"),
        ),
    ] {
        let parsed = parse_upstream_name(istio, name).expect(name);
        assert_eq!(service(&parsed), expected, "{name}");
    }
    for bad in [
        "inbound|8080||",
        "outbound|80||httpbin.org",
        "outbound|http||web.shop.svc.cluster.local",
        "outbound|80||web.shop.svc.",
        "outbound|80||web.shop.svc.cluster.local|x",
    ] {
        assert_eq!(parse_upstream_name(istio, bad), None, "{bad}");
    }
    assert_eq!(
        parse_route_name(istio, "shop.storefront.1"),
        Some(rule("shop", "storefront", 1))
    );
    assert_eq!(parse_route_name(istio, "checkout"), None);
}

#[test]
fn contour_ngf_haproxy_names() {
    let contour = Implementation::Contour;
    let parsed = parse_upstream_name(contour, "shop_web_80").expect("alt stat name");
    assert_eq!(service(&parsed), svc("shop", "web", "80"));
    let parsed = parse_upstream_name(contour, "shop/web/80/3f5c0b2a91").expect("raw cluster");
    assert_eq!(service(&parsed), svc("shop", "web", "80"));
    assert_eq!(parse_upstream_name(contour, "shop_web_http"), None);
    assert_eq!(parse_upstream_name(contour, "shop/web/80/zz"), None);

    let ngf = Implementation::NginxGatewayFabric;
    let parsed = parse_upstream_name(ngf, "shop_api-v2_80").expect("ngf upstream");
    assert_eq!(service(&parsed), svc("shop", "api-v2", "80"));
    let parsed = parse_upstream_name(ngf, "shop_web_80_0").expect("session persistence");
    assert_eq!(service(&parsed), svc("shop", "web", "80"));
    assert_eq!(
        parse_upstream_name(ngf, "invalid-backend-ref"),
        Some(UpstreamName::Gateway(GatewayAction::InvalidBackend))
    );

    let hap = Implementation::HaproxyIngress;
    let parsed = parse_upstream_name(hap, "shop_svc_web_http").expect("v3.2");
    assert_eq!(service(&parsed), svc("shop", "web", "name:http"));
    let parsed = parse_upstream_name(hap, "shop_svc_api-v1_80").expect("v3.2 numeric");
    assert_eq!(service(&parsed), svc("shop", "api-v1", "80"));
    let parsed = parse_upstream_name(hap, "shop_web_http").expect("v3.1");
    assert_eq!(service(&parsed), svc("shop", "web", "name:http"));
    let parsed = parse_upstream_name(hap, "shop_storefront-ing_svc_web_80").expect("standalone");
    assert_eq!(service(&parsed), svc("shop", "web", "80"));
    for default_backend in [
        "haproxy-controller_svc_default-local-service_http",
        "haproxy-controller_default-local-service_http",
    ] {
        assert_eq!(
            parse_upstream_name(hap, default_backend),
            Some(UpstreamName::Gateway(GatewayAction::NoRoute))
        );
    }
    assert_eq!(parse_upstream_name(hap, "ing_shop_storefront_80"), None);

    let hug = Implementation::HaproxyUnifiedGateway;
    let parsed = parse_upstream_name(hug, "hug_shop_web_80__").expect("hug");
    assert_eq!(service(&parsed), svc("shop", "web", "80"));
    let parsed =
        parse_upstream_name(hug, "hug_test_hello-world-offload_80__").expect("hug doc example");
    assert_eq!(service(&parsed), svc("test", "hello-world-offload", "80"));
    let parsed = parse_upstream_name(
        hug,
        "hug_default_blue_8888_0123456789abcdef0123456789abcdef",
    )
    .expect("hug with filter hash");
    assert_eq!(service(&parsed), svc("default", "blue", "8888"));
    let parsed = parse_upstream_name(hug, "my_link_shop_web_80__").expect("link id with _");
    assert_eq!(service(&parsed), svc("shop", "web", "80"));
    assert_eq!(
        parse_upstream_name(hug, "backend_not_found"),
        Some(UpstreamName::Gateway(GatewayAction::NoRoute))
    );
    assert_eq!(parse_upstream_name(hug, "shop_web_80__"), None);
    assert_eq!(parse_upstream_name(hug, "hug_shop_web_80_abc"), None);
}

#[test]
fn kong_and_traefik_names() {
    let kong = Implementation::Kong;
    assert_eq!(
        parse_upstream_name(kong, "httproute.shop.storefront.0"),
        Some(UpstreamName::Rule(rule("shop", "storefront", 0)))
    );
    assert_eq!(
        parse_route_name(kong, "httproute.shop.storefront.1.0"),
        Some(rule("shop", "storefront", 1))
    );
    for (name, expected) in [
        ("web.shop.80.svc", svc("shop", "web", "80")),
        ("web.shop.pnum-80.svc", svc("shop", "web", "80")),
        ("shop.web.80", svc("shop", "web", "80")),
        ("shop.web.pname-http", svc("shop", "web", "name:http")),
    ] {
        let parsed = parse_upstream_name(kong, name).expect(name);
        assert_eq!(service(&parsed), expected, "{name}");
    }
    assert_eq!(
        parse_upstream_name(kong, "httproute.shop.svc.shop.web.80.1_combined.abc"),
        None
    );
    assert_eq!(parse_upstream_name(kong, "kong_upstream"), None);

    let traefik = Implementation::Traefik;
    let leaf = "httproute-shop-storefront-gw-infra-public-gw-ep-web-1-9d3b6e0f12-svc-shop-api-v2-1@kubernetesgateway";
    let Some(UpstreamName::DashedService(dashed)) = parse_upstream_name(traefik, leaf) else {
        panic!("traefik leaf service parses");
    };
    let splits: Vec<_> = dashed.splits().collect();
    assert!(splits.contains(&("shop", "api-v2")), "{splits:?}");
    assert!(splits.contains(&("shop-api", "v2")), "{splits:?}");

    let crd = parse_upstream_name(traefik, "shop-web-80@kubernetescrd");
    let Some(UpstreamName::DashedService(dashed)) = crd else {
        panic!("traefik crd service parses");
    };
    assert_eq!(dashed.port, Some(PortRef::Number(80)));
    assert_eq!(dashed.splits().collect::<Vec<_>>(), vec![("shop", "web")]);

    let router =
        "httproute-shop-storefront-gw-infra-public-gw-ep-web-1-9d3b6e0f12@kubernetesgateway";
    let parsed = parse_route_name(traefik, router).expect("router parses");
    assert_eq!(parsed.rule_index, 1);
    assert!(parsed.route.matches("shop", "storefront"));
    assert!(!parsed.route.matches("shop", "store"));
    assert!(!parsed.route.matches("shop-storefront", "gw"));
    assert_eq!(
        parse_upstream_name(traefik, "httproute-x-wrr@kubernetesgateway"),
        None
    );
    assert_eq!(parse_upstream_name(traefik, "api@internal"), None);
}

#[test]
fn hint_restricts_schemes_and_auto_tries_all() {
    assert_eq!(
        parse_upstream_name(Implementation::Istio, "shop_web_80"),
        None
    );
    assert_eq!(
        parse_upstream_name(
            Implementation::EnvoyGateway,
            "outbound|80||web.shop.svc.cluster.local"
        ),
        None
    );
    for name in [
        "httproute/shop/storefront/rule/1",
        "outbound|80||web.shop.svc.cluster.local",
        "shop_web_80",
        "shop/web/80/3f5c0b2a91",
        "shop_svc_web_http",
        "hug_shop_web_80__",
        "httproute.shop.storefront.0",
        "web.shop.80.svc",
        "shop-web-80@kubernetescrd",
    ] {
        assert!(
            parse_upstream_name(Implementation::Auto, name).is_some(),
            "{name}"
        );
    }
}

#[test]
fn malformed_names_are_none() {
    for implementation in Implementation::ALL {
        for bad in [
            "",
            "-",
            "null",
            "/",
            "//",
            "|||",
            "___",
            "....",
            "@",
            "@kubernetesgateway",
            "httproute/",
            "outbound|",
            "a_b",
            "a.b",
            "x/y/z",
            "ñ_ñ_80",
            "shop_web_99999",
            "shop_web_-1",
            "httproute/shop/storefront/rule/99999999999999999999",
        ] {
            assert!(
                parse_upstream_name(implementation, bad).is_none(),
                "{implementation} {bad:?}"
            );
            assert!(
                parse_route_name(implementation, bad).is_none(),
                "{implementation} {bad:?}"
            );
        }
    }
}

#[test]
fn gateway_actions() {
    use GatewayAction as A;
    let none = UpstreamHost::Absent;
    let host = UpstreamHost::Addr(addr("10.244.1.17:8080"));
    let eg = Implementation::EnvoyGateway;
    let auto = Implementation::Auto;
    let cases = [
        (eg, Some("NR"), Some(404), none, false, false, A::NoRoute),
        (auto, Some("NR"), None, none, false, false, A::NoRoute),
        (
            eg,
            Some("UH"),
            Some(503),
            none,
            true,
            true,
            A::NoHealthyUpstream,
        ),
        (
            eg,
            Some("NC"),
            Some(500),
            none,
            false,
            true,
            A::ClusterNotFound,
        ),
        (
            eg,
            Some("UF,URX"),
            Some(503),
            host,
            true,
            true,
            A::UpstreamFailure,
        ),
        (
            eg,
            Some("DC"),
            Some(0),
            host,
            true,
            true,
            A::DownstreamDisconnect,
        ),
        (eg, Some("RL"), Some(429), none, false, true, A::LocalReply),
        (eg, Some("-"), Some(200), host, true, true, A::Proxied),
        (eg, Some("-"), Some(302), none, false, true, A::Redirect),
        (
            eg,
            Some("-"),
            Some(503),
            none,
            false,
            true,
            A::DirectResponse,
        ),
        (auto, Some("-"), Some(301), none, false, false, A::Redirect),
        (
            auto,
            Some("-"),
            Some(404),
            none,
            false,
            false,
            A::DirectResponse,
        ),
        (
            Implementation::HaproxyIngress,
            Some("SC--"),
            Some(503),
            none,
            true,
            false,
            A::NoHealthyUpstream,
        ),
        (
            auto,
            Some("SC--"),
            Some(503),
            none,
            true,
            false,
            A::NoHealthyUpstream,
        ),
        (
            auto,
            Some("LR--"),
            Some(301),
            none,
            true,
            false,
            A::Redirect,
        ),
        (
            auto,
            Some("----"),
            Some(200),
            UpstreamHost::Named("SRV_1"),
            true,
            false,
            A::Proxied,
        ),
        (auto, Some("----"), Some(200), none, true, false, A::Proxied),
        (
            auto,
            Some("CD--"),
            Some(200),
            none,
            true,
            false,
            A::DownstreamDisconnect,
        ),
        (
            Implementation::Kong,
            None,
            Some(503),
            none,
            true,
            true,
            A::NoHealthyUpstream,
        ),
        (
            Implementation::Kong,
            None,
            Some(404),
            none,
            false,
            false,
            A::NoRoute,
        ),
        (
            Implementation::Traefik,
            None,
            Some(200),
            host,
            true,
            true,
            A::Proxied,
        ),
        (
            Implementation::Traefik,
            None,
            Some(301),
            none,
            false,
            true,
            A::Redirect,
        ),
        (auto, None, None, none, false, false, A::Unknown),
    ];
    for (implementation, flags, status, host, named_upstream, named_route, expected) in cases {
        assert_eq!(
            classify_gateway_action(
                implementation,
                flags,
                status,
                &host,
                named_upstream,
                named_route
            ),
            expected,
            "{implementation} {flags:?} {status:?} {host:?}"
        );
    }
    assert_eq!(A::NoHealthyUpstream.as_str(), "no_healthy_upstream");
}

#[test]
fn upstream_hosts() {
    let ngf = Implementation::NginxGatewayFabric;
    assert_eq!(
        answering_host(ngf, &["unix:/var/run/nginx/nginx-503-server.sock"]),
        UpstreamHost::Sentinel(GatewayAction::NoHealthyUpstream)
    );
    assert_eq!(
        answering_host(ngf, &["unix:/var/run/nginx/nginx-500-server.sock"]),
        UpstreamHost::Sentinel(GatewayAction::InvalidBackend)
    );
    assert_eq!(
        answering_host(ngf, &["shop_api-v1_80"]),
        UpstreamHost::Sentinel(GatewayAction::NoHealthyUpstream)
    );
    assert_eq!(
        answering_host(
            Implementation::Auto,
            &["10.244.2.31:9000, 10.244.3.44:9000"]
        ),
        UpstreamHost::Addr(addr("10.244.3.44:9000"))
    );
    assert_eq!(
        answering_host(
            Implementation::Auto,
            &["10.244.2.31:9000", "10.244.1.17:8080 : 10.244.3.44:9000"]
        ),
        UpstreamHost::Addr(addr("10.244.3.44:9000"))
    );
    assert_eq!(
        answering_host(Implementation::Auto, &[]),
        UpstreamHost::Absent
    );
    assert_eq!(
        answering_host(Implementation::Auto, &["-"]),
        UpstreamHost::Absent
    );
    assert_eq!(
        answering_host(Implementation::Auto, &["<NOSRV>"]),
        UpstreamHost::Absent
    );
    assert_eq!(
        answering_host(Implementation::Auto, &["api"]),
        UpstreamHost::Named("api")
    );
}

#[test]
fn socket_addresses_parse_without_allocation_paths() {
    assert_eq!(
        parse_socket_addr("10.244.1.17:8080"),
        Some(addr("10.244.1.17:8080"))
    );
    let v6 = parse_socket_addr("[fd00::1]:8080").expect("ipv6");
    assert!(v6.is_ipv6());
    assert_eq!(v6.port(), 8080);
    assert_eq!(
        parse_socket_addr("http://10.244.1.17:8080"),
        Some(addr("10.244.1.17:8080"))
    );
    assert_eq!(parse_socket_addr("http://[fd00::1]:8080/"), Some(v6));
    for bad in [
        "-",
        "",
        "10.244.1.17",
        "fd00::1",
        "fd00::1:8080",
        "unix:/x.sock",
        "SRV_1",
        "1.2.3.4:99999",
    ] {
        assert_eq!(parse_socket_addr(bad), None, "{bad}");
    }
}

// ---------------------------------------------------------------- endpoints

#[test]
fn endpoint_ports_map_to_service_ports() {
    let (index, _) = fixture();
    // Named port, numeric targetPort.
    let web = index.lookup(addr("10.244.1.17:8080"));
    let keys: Vec<_> = web
        .iter()
        .map(|c| (c.key.as_str(), c.service_port))
        .collect();
    assert_eq!(
        keys,
        vec![("shop/web", Some(80)), ("shop/web-canary", Some(80))]
    );
    assert_eq!(web[0].pod.as_deref(), Some("web-5d9c7b8f6-abcde"));
    assert_eq!(web[0].port_name.as_deref(), Some("http"));
    // Unnamed single port ("" and absent slice port name).
    assert_eq!(
        index.lookup(addr("10.244.2.31:9000"))[0].service_port,
        Some(80)
    );
    let v2 = index.lookup(addr("10.244.3.44:9000"));
    assert_eq!(v2[0].service_port, Some(80));
    assert!(
        !v2[0].ready,
        "not-ready endpoints are kept (EG drains them)"
    );
    // Named targetPort joined by port name; absent targetPort = port.
    assert_eq!(
        index.lookup(addr("10.244.4.4:8080"))[0].service_port,
        Some(80)
    );
    assert_eq!(
        index.lookup(addr("10.244.4.4:9090"))[0].service_port,
        Some(9090)
    );
    // Hand-written slice whose port name is the targetPort name.
    assert_eq!(
        index.lookup(addr("10.244.5.5:7443"))[0].service_port,
        Some(80)
    );
    // Numeric targetPort when the names do not line up.
    assert_eq!(
        index.lookup(addr("10.244.5.5:7000"))[0].service_port,
        Some(81)
    );
    // IPv6.
    let v6 = index.lookup_str("[fd00::1]:8080");
    assert_eq!(v6.len(), 1);
    assert_eq!(
        (v6[0].key.as_str(), v6[0].service_port),
        ("shop/v6", Some(80))
    );
    // ClusterIP routing.
    let cluster_ip = index.lookup(addr("10.96.0.10:80"));
    assert!(cluster_ip[0].via_cluster_ip && cluster_ip[0].is_service("shop", "web"));
    // Slice without a Service object; unparsable address skipped.
    assert_eq!(index.lookup(addr("10.244.6.6:8080"))[0].service_port, None);
    assert_eq!(index.skipped_addresses(), 1);
    // Unknown.
    assert!(index.lookup(addr("10.244.9.9:8080")).is_empty());
    assert!(index.lookup_str("garbage").is_empty());
    assert_eq!(
        index
            .service("shop", "multi")
            .and_then(|s| s.port_by_name("metrics")),
        Some(9090)
    );
    assert!(index.service("shop", "nope").is_none());
}

#[test]
fn two_services_on_one_pod_are_disambiguated_by_expected_backends() {
    let (index, _) = fixture();
    let candidates = index.lookup(addr("10.244.1.17:8080"));
    let choice = choose_candidate(candidates, &["shop/web-canary"]);
    assert_eq!(
        choice.chosen.map(|c| c.key.as_str()),
        Some("shop/web-canary")
    );
    assert!(!choice.ambiguous && choice.tie_broken_by_expected);

    let choice = choose_candidate(candidates, &[]);
    assert_eq!(choice.chosen.map(|c| c.key.as_str()), Some("shop/web"));
    assert!(choice.ambiguous);

    let choice = choose_candidate(candidates, &["shop/web", "shop/web-canary"]);
    assert!(choice.ambiguous);

    let single = choose_candidate(index.lookup(addr("10.244.2.31:9000")), &["shop/other"]);
    assert!(single.chosen.is_some() && !single.ambiguous && !single.tie_broken_by_expected);
    assert_eq!(choose_candidate(&[], &["shop/web"]).chosen, None);
}

// ---------------------------------------------------------------- resolve_actual

fn evidence<'a>(
    implementation: Implementation,
    cluster: Option<&'a str>,
    route: Option<&'a str>,
    hosts: &'a [&'a str],
    flags: Option<&'a str>,
    status: u16,
) -> UpstreamEvidence<'a> {
    UpstreamEvidence {
        implementation_hint: Some(implementation),
        route_name: route,
        upstream_cluster: cluster,
        upstream_hosts: hosts,
        response_flags: flags,
        status: Some(status),
    }
}

fn shown(actual: &ActualBackend<'_>) -> String {
    format!(
        "{} {} {} {}",
        actual
            .backend
            .map(|b| b.to_string())
            .unwrap_or_else(|| "-".into()),
        actual.source,
        actual.gateway_action,
        if actual.ambiguous {
            "ambiguous"
        } else {
            "clear"
        },
    )
}

#[test]
fn envoy_gateway_rule_cluster_is_narrowed_by_the_endpoint() {
    let (endpoints, routes) = fixture();
    let eg = Implementation::EnvoyGateway;
    let cluster = Some("httproute/shop/storefront/rule/1");
    let route = Some("httproute/shop/storefront/rule/1/match/0/shop_example_com");

    let ev = evidence(eg, cluster, route, &["10.244.3.44:9000"], Some("-"), 200);
    let actual = resolve_actual(&ev, &endpoints, &routes, &[]);
    assert_eq!(shown(&actual), "shop/api-v2:80 endpoint proxied clear");
    assert_eq!(actual.endpoint_consistent, Some(true));

    // UH: the rule has two backends and no host answered.
    let ev = evidence(eg, cluster, route, &[], Some("UH"), 503);
    let actual = resolve_actual(&ev, &endpoints, &routes, &[]);
    assert_eq!(shown(&actual), "- none no_healthy_upstream clear");

    // A single-backend rule names its Service even without a host.
    let ev = evidence(
        eg,
        Some("httproute/shop/storefront/rule/0"),
        None,
        &[],
        Some("UH"),
        503,
    );
    let actual = resolve_actual(&ev, &endpoints, &routes, &[]);
    assert_eq!(
        shown(&actual),
        "shop/web:80 cluster_name no_healthy_upstream clear"
    );

    // Cluster per backendRef.
    let ev = evidence(
        eg,
        Some("httproute/shop/storefront/rule/1/backend/0"),
        None,
        &["10.244.2.31:9000"],
        Some("-"),
        200,
    );
    let actual = resolve_actual(&ev, &endpoints, &routes, &[]);
    assert_eq!(shown(&actual), "shop/api-v1:80 cluster_name proxied clear");
    assert_eq!(actual.endpoint_consistent, Some(true));

    // Only the route name (custom format without the cluster).
    let ev = evidence(eg, None, route, &["10.244.2.31:9000"], Some("-"), 200);
    let actual = resolve_actual(&ev, &endpoints, &routes, &[]);
    assert_eq!(shown(&actual), "shop/api-v1:80 endpoint proxied clear");

    // Rule 2 holds both Services that select the pod: expected breaks the tie.
    let cluster2 = Some("httproute/shop/storefront/rule/2");
    let ev = evidence(eg, cluster2, None, &["10.244.1.17:8080"], Some("-"), 200);
    let actual = resolve_actual(&ev, &endpoints, &routes, &["shop/web-canary"]);
    assert_eq!(shown(&actual), "shop/web-canary:80 endpoint proxied clear");
    assert!(actual.tie_broken_by_expected);
    assert_eq!(actual.candidates.len(), 2);
    let actual = resolve_actual(&ev, &endpoints, &routes, &[]);
    assert_eq!(shown(&actual), "shop/web:80 endpoint proxied ambiguous");

    // The endpoint belongs to no backend of the logged rule.
    let ev = evidence(eg, cluster, None, &["10.244.4.4:8080"], Some("-"), 200);
    let actual = resolve_actual(&ev, &endpoints, &routes, &[]);
    assert_eq!(shown(&actual), "shop/multi:80 endpoint proxied clear");
    assert_eq!(actual.note, "endpoint outside the logged rule's backends");

    // A rule the index does not know (config drift).
    let ev = evidence(
        eg,
        Some("httproute/shop/gone/rule/0"),
        None,
        &["10.244.2.31:9000"],
        Some("-"),
        200,
    );
    let actual = resolve_actual(&ev, &endpoints, &routes, &[]);
    assert_eq!(shown(&actual), "shop/api-v1:80 endpoint proxied clear");
    assert!(actual.note.contains("not in the route index"));

    // Upstream failure still names the host that was tried.
    let ev = evidence(
        eg,
        cluster,
        route,
        &["10.244.3.44:9000"],
        Some("UF,URX"),
        503,
    );
    let actual = resolve_actual(&ev, &endpoints, &routes, &[]);
    assert_eq!(
        shown(&actual),
        "shop/api-v2:80 endpoint upstream_failure clear"
    );
}

#[test]
fn a_single_live_backend_yields_to_contradicting_endpoint_evidence() {
    let (endpoints, routes) = fixture();
    let eg = Implementation::EnvoyGateway;
    // Rule 3 sends everything to api-v2 (api-v1 has weight 0), yet the host
    // that answered is an api-v1 pod: the gateway still uses the drained
    // backend, and the endpoint says so.
    let drained = Some("httproute/shop/storefront/rule/3");
    let ev = evidence(eg, drained, None, &["10.244.2.31:9000"], Some("-"), 200);
    let actual = resolve_actual(&ev, &endpoints, &routes, &["shop/api-v2"]);
    assert_eq!(shown(&actual), "shop/api-v1:80 endpoint proxied clear");
    assert_eq!(actual.note, "endpoint within the logged rule's backends");
    // An api-v2 pod agrees with the single live backend.
    let ev = evidence(eg, drained, None, &["10.244.3.44:9000"], Some("-"), 200);
    let actual = resolve_actual(&ev, &endpoints, &routes, &["shop/api-v2"]);
    assert_eq!(shown(&actual), "shop/api-v2:80 cluster_name proxied clear");
    assert_eq!(actual.endpoint_consistent, Some(true));
    // A single-backend rule answered by another Service's pod.
    let ev = evidence(
        eg,
        Some("httproute/shop/storefront/rule/0"),
        None,
        &["10.244.2.31:9000"],
        Some("-"),
        200,
    );
    let actual = resolve_actual(&ev, &endpoints, &routes, &["shop/web"]);
    assert_eq!(shown(&actual), "shop/api-v1:80 endpoint proxied clear");
    assert_eq!(actual.note, "endpoint outside the logged rule's backends");
}

#[test]
fn gateway_answers_have_no_backend() {
    let (endpoints, routes) = fixture();
    let eg = Implementation::EnvoyGateway;
    let cases = [
        (
            evidence(eg, None, None, &[], Some("NR"), 404),
            "- none no_route clear",
        ),
        (
            evidence(
                eg,
                None,
                Some("httproute/shop/to-https/rule/0/match/0/shop_example_com"),
                &[],
                Some("-"),
                302,
            ),
            "- none redirect clear",
        ),
        (
            evidence(
                eg,
                None,
                Some("httproute/shop/storefront/rule/0/match/0/shop_example_com"),
                &[],
                Some("-"),
                503,
            ),
            "- none direct_response clear",
        ),
        (
            evidence(
                Implementation::HaproxyUnifiedGateway,
                Some("backend_not_found"),
                None,
                &["<NOSRV>"],
                Some("LR--"),
                404,
            ),
            "- none no_route clear",
        ),
        (
            evidence(
                Implementation::NginxGatewayFabric,
                Some("invalid-backend-ref"),
                None,
                &["unix:/var/run/nginx/nginx-500-server.sock"],
                None,
                500,
            ),
            "- none invalid_backend clear",
        ),
    ];
    for (ev, expected) in cases {
        assert_eq!(
            shown(&resolve_actual(&ev, &endpoints, &routes, &[])),
            expected,
            "{ev:?}"
        );
    }
}

#[test]
fn service_naming_clusters_win_and_are_cross_checked() {
    let (endpoints, routes) = fixture();
    // Istio names the Service; the host agrees.
    let ev = evidence(
        Implementation::Istio,
        Some("outbound|80||api-v2.shop.svc.cluster.local"),
        Some("shop.storefront.1"),
        &["10.244.3.44:9000"],
        Some("-"),
        200,
    );
    let actual = resolve_actual(&ev, &endpoints, &routes, &[]);
    assert_eq!(shown(&actual), "shop/api-v2:80 cluster_name proxied clear");
    assert_eq!(actual.endpoint_consistent, Some(true));

    // ... and when the host belongs to another Service, that is reported.
    let ev = evidence(
        Implementation::Auto,
        Some("outbound|80||api-v2.shop.svc.cluster.local;"),
        None,
        &["10.244.2.31:9000"],
        Some("-"),
        200,
    );
    let actual = resolve_actual(&ev, &endpoints, &routes, &[]);
    assert_eq!(actual.endpoint_consistent, Some(false));

    // Istio UH: the cluster still names the Service.
    let ev = evidence(
        Implementation::Istio,
        Some("outbound|80||web.shop.svc.cluster.local"),
        None,
        &["-"],
        Some("UH"),
        503,
    );
    assert_eq!(
        shown(&resolve_actual(&ev, &endpoints, &routes, &[])),
        "shop/web:80 cluster_name no_healthy_upstream clear"
    );

    // HAProxy port name resolved through the Service.
    let ev = evidence(
        Implementation::HaproxyIngress,
        Some("shop_svc_multi_metrics"),
        None,
        &["SRV_1"],
        Some("----"),
        200,
    );
    assert_eq!(
        shown(&resolve_actual(&ev, &endpoints, &routes, &[])),
        "shop/multi:9090 cluster_name proxied clear"
    );

    // Contour JSON alt-stat name; NGF $proxy_host with a 503 socket.
    let ev = evidence(
        Implementation::Contour,
        Some("shop_web_80"),
        None,
        &["10.244.1.17:8080"],
        Some("-"),
        200,
    );
    let actual = resolve_actual(&ev, &endpoints, &routes, &[]);
    assert_eq!(shown(&actual), "shop/web:80 cluster_name proxied clear");
    assert_eq!(actual.candidates.len(), 2);
    let ev = evidence(
        Implementation::NginxGatewayFabric,
        Some("shop_web_80"),
        None,
        &["unix:/var/run/nginx/nginx-503-server.sock"],
        None,
        503,
    );
    assert_eq!(
        shown(&resolve_actual(&ev, &endpoints, &routes, &[])),
        "shop/web:80 cluster_name no_healthy_upstream clear"
    );

    // Traefik: the dashed leaf service name is split against known Services.
    let ev = evidence(
        Implementation::Traefik,
        Some("httproute-shop-storefront-gw-infra-public-gw-ep-web-1-9d3b6e0f12-svc-shop-api-v2-1@kubernetesgateway"),
        Some("httproute-shop-storefront-gw-infra-public-gw-ep-web-1-9d3b6e0f12@kubernetesgateway"),
        &["http://10.244.3.44:9000"],
        None,
        200,
    );
    assert_eq!(
        shown(&resolve_actual(&ev, &endpoints, &routes, &[])),
        "shop/api-v2 cluster_name proxied clear"
    );

    // Traefik router only (common format): the rule narrows the endpoint.
    let ev = evidence(
        Implementation::Traefik,
        None,
        Some("httproute-shop-storefront-gw-infra-public-gw-ep-web-1-9d3b6e0f12@kubernetesgateway"),
        &["http://10.244.2.31:9000"],
        None,
        200,
    );
    let actual = resolve_actual(&ev, &endpoints, &routes, &[]);
    assert_eq!(shown(&actual), "shop/api-v1:80 endpoint proxied clear");
    assert_eq!(actual.note, "endpoint within the logged rule's backends");
}

#[test]
fn endpoint_only_formats() {
    let (endpoints, routes) = fixture();
    // Contour default text: only the upstream host.
    let ev = evidence(
        Implementation::Contour,
        None,
        None,
        &["10.244.2.31:9000"],
        Some("-"),
        200,
    );
    assert_eq!(
        shown(&resolve_actual(&ev, &endpoints, &routes, &[])),
        "shop/api-v1:80 endpoint proxied clear"
    );
    // IPv6 upstream.
    let ev = evidence(
        Implementation::Auto,
        None,
        None,
        &["[fd00::1]:8080"],
        Some("-"),
        200,
    );
    assert_eq!(
        shown(&resolve_actual(&ev, &endpoints, &routes, &[])),
        "shop/v6:80 endpoint proxied clear"
    );
    // Unknown address.
    let ev = evidence(
        Implementation::Auto,
        None,
        None,
        &["10.1.1.1:80"],
        Some("-"),
        200,
    );
    let actual = resolve_actual(&ev, &endpoints, &routes, &[]);
    assert_eq!(shown(&actual), "- none proxied clear");
    assert_eq!(actual.note, "upstream host matches no EndpointSlice");
    // Nothing at all.
    let actual = resolve_actual(&UpstreamEvidence::default(), &endpoints, &routes, &[]);
    assert_eq!(shown(&actual), "- none unknown clear");
    assert_eq!(ActualSource::ClusterName.as_str(), "cluster_name");
}

// ---------------------------------------------------------------- properties

proptest! {
    #[test]
    fn arbitrary_names_never_panic(text in ".{0,80}", hint in 0usize..9) {
        let implementation = Implementation::ALL[hint];
        let _ = parse_upstream_name(implementation, &text);
        let _ = parse_route_name(implementation, &text);
        let _ = parse_socket_addr(&text);
        let _ = answering_host(implementation, &[&text]);
        let _ = text.parse::<Implementation>();
        if let Some(UpstreamName::DashedService(d)) = parse_upstream_name(implementation, &text) {
            let _ = d.splits().count();
        }
        if let Some(r) = parse_route_name(implementation, &text) {
            let _ = r.route.matches("shop", "storefront");
        }
    }

    #[test]
    fn structured_names_never_panic(
        parts in proptest::collection::vec("[a-z0-9_./|@;-]{0,12}", 0..8),
        sep in "[/_.|-]",
        hint in 0usize..9,
    ) {
        let text = parts.join(&sep);
        let implementation = Implementation::ALL[hint];
        let _ = parse_upstream_name(implementation, &text);
        let _ = parse_route_name(implementation, &text);
    }

    #[test]
    fn resolve_never_panics(
        cluster in proptest::option::of("[a-z0-9_./|@-]{0,40}"),
        route in proptest::option::of("[a-z0-9_./|@-]{0,40}"),
        host in "[0-9a-f.:\\[\\]-]{0,24}",
        flags in proptest::option::of("[A-Z,-]{0,6}"),
        status in proptest::option::of(0u16..600),
        hint in 0usize..9,
    ) {
        static FIXTURE: std::sync::OnceLock<(EndpointIndex, RouteIndex)> = std::sync::OnceLock::new();
        let (endpoints, routes) = FIXTURE.get_or_init(fixture);
        let hosts = [host.as_str()];
        let ev = UpstreamEvidence {
            implementation_hint: Some(Implementation::ALL[hint]),
            route_name: route.as_deref(),
            upstream_cluster: cluster.as_deref(),
            upstream_hosts: &hosts,
            response_flags: flags.as_deref(),
            status,
        };
        let actual = resolve_actual(&ev, endpoints, routes, &["shop/web"]);
        prop_assert!(actual.backend.is_some() || actual.source == ActualSource::None);
    }
}

/// The IPv4 fast path of `parse_socket_addr` must agree with the standard
/// parser, including on non-canonical texts it leaves to it.
#[test]
fn socket_address_fast_path_agrees_with_std() {
    for text in [
        "10.244.1.17:8080",
        "0.0.0.0:0",
        "255.255.255.255:65535",
        "256.1.1.1:80",
        "1.2.3.4:65536",
        "01.2.3.4:80",
        "1.2.3.4:080",
        "1.2.3.4:",
        "1.2.3:80",
        "1.2.3.4.5:80",
        "1.2.3.4:80x",
        "1.2.3.4:123456",
        "1..3.4:80",
        "1.2.3.4",
        "1.2.3.4:00",
        "1.2.3.4:0",
        "00.1.2.3:1",
        "1.2.3.4:65535",
        "1.2.3.4:99999",
        "1.2.3.4:012345",
        "1.2.3.1000:80",
    ] {
        assert_eq!(
            parse_socket_addr(text),
            text.parse::<SocketAddr>().ok(),
            "{text}"
        );
    }
}

/// The canonical text of every indexed IPv4 address finds it and its
/// candidates; other spellings, unknown addresses and other text do not.
#[test]
fn indexed_ipv4_addresses_are_found_by_their_canonical_text() {
    let (endpoints, _) = fixture();
    let mut found = 0;
    for ip in ["10.244.1.17", "10.244.2.31", "10.244.3.44", "10.96.0.10"] {
        for port in [80, 8080, 9000] {
            let text = format!("{ip}:{port}");
            let candidates = endpoints.lookup(addr(&text));
            match endpoints.lookup_canonical_v4(&text) {
                Some(hit) => {
                    let by_text = hit.candidates();
                    assert_eq!(hit.addr(), addr(&text));
                    assert_eq!(by_text, candidates, "{text}");
                    assert!(endpoints.holds(by_text));
                    found += 1;
                }
                None => assert!(candidates.is_empty(), "{text} is indexed"),
            }
        }
    }
    assert!(found >= 4, "indexed addresses found ({found})");
    assert!(!endpoints
        .lookup("10.244.1.17:8080".parse().unwrap())
        .is_empty());
    for other in [
        "010.244.1.17:8080",
        "10.244.1.17:08080",
        " 10.244.1.17:8080",
        "10.244.1.17:8080 ",
        "10.244.1.17:8080/",
        "http://10.244.1.17:8080",
        "10.244.1.17",
        "10.244.1.18:8080",
        "",
        "-",
    ] {
        assert_eq!(endpoints.lookup_canonical_v4(other), None, "{other}");
    }
    // A run of another index's candidates is not this index's.
    let (other, _) = fixture();
    let theirs = other.lookup("10.244.1.17:8080".parse().unwrap());
    assert!(!endpoints.holds(theirs));
    assert!(!endpoints.holds(&[]));
}

proptest! {
    #[test]
    fn socket_address_fast_path_matches_std(text in "[0-9.:]{0,24}") {
        prop_assert_eq!(parse_socket_addr(&text), text.trim().parse::<SocketAddr>().ok());
    }

    /// The canonical IPv4 parser alone: whatever it accepts, std parses to
    /// the same address.
    #[test]
    fn canonical_ipv4_parser_never_disagrees_with_std(text in "[0-9.:]{0,24}") {
        if let Some(addr) = super::endpoints::parse_canonical_ipv4_socket(text.as_bytes()) {
            prop_assert_eq!(Some(addr), text.parse::<SocketAddr>().ok());
        }
    }

    /// ... and it accepts every canonically written `a.b.c.d:port`.
    #[test]
    fn canonical_ipv4_parser_accepts_canonical_text(octets in any::<[u8; 4]>(), port in any::<u16>()) {
        let addr = SocketAddr::from((octets, port));
        let text = addr.to_string();
        prop_assert_eq!(
            super::endpoints::parse_canonical_ipv4_socket(text.as_bytes()),
            Some(addr)
        );
    }

    #[test]
    fn answering_host_without_spaces_is_the_trimmed_host(host in "[0-9a-z.:/-]{0,30}") {
        let full = answering_host(Implementation::Auto, &[host.as_str()]);
        let spaced = format!("x , {host}");
        prop_assert_eq!(answering_host(Implementation::Auto, &[spaced.as_str()]), full);
    }
}

/// `EvidenceNames::parse` (with its route-name shortcut) equals the two
/// parses it stands for.
fn assert_names_agree(cluster: Option<&str>, route: Option<&str>) -> Result<(), TestCaseError> {
    for implementation in [
        Implementation::Auto,
        Implementation::EnvoyGateway,
        Implementation::Kong,
        Implementation::Istio,
        Implementation::Traefik,
    ] {
        let evidence = UpstreamEvidence {
            implementation_hint: Some(implementation),
            route_name: route,
            upstream_cluster: cluster,
            ..UpstreamEvidence::default()
        };
        let names = EvidenceNames::parse(&evidence);
        prop_assert_eq!(
            names.cluster,
            cluster.and_then(|c| parse_upstream_name(implementation, c)),
            "{:?} {:?}",
            implementation,
            cluster
        );
        prop_assert_eq!(
            names.route_rule,
            route.and_then(|r| parse_route_name(implementation, r)),
            "{:?} {:?} {:?}",
            implementation,
            cluster,
            route
        );
    }
    Ok(())
}

#[test]
fn route_name_shortcut_matches_a_full_parse() {
    let cluster = "httproute/shop/storefront/rule/1";
    for route in [
        "httproute/shop/storefront/rule/1/match/0/shop_example_com",
        "httproute/shop/storefront/rule/1/match/-1/shop_example_com",
        "httproute/shop/storefront/rule/1/match/12",
        "httproute/shop/storefront/rule/1/match/",
        "httproute/shop/storefront/rule/1/match/x/host",
        "httproute/shop/storefront/rule/1/match/01/host",
        "httproute/shop/storefront/rule/10/match/0/host",
        " httproute/shop/storefront/rule/1/match/0/host ",
        "httproute/shop/storefront/rule/1/backend/0",
        "httproute/shop/other/rule/1/match/0/host",
        "-",
        "",
    ] {
        for cluster in [
            cluster,
            " httproute/shop/storefront/rule/1 ",
            "httproute/shop/storefront/rule/1/backend/0",
            "httproute/shop/storefront/rule",
            "grpcroute/shop/storefront/rule/1",
            "-",
        ] {
            assert_names_agree(Some(cluster), Some(route)).unwrap();
        }
        assert_names_agree(None, Some(route)).unwrap();
    }
    let names = EvidenceNames::parse(&UpstreamEvidence {
        implementation_hint: Some(Implementation::EnvoyGateway),
        route_name: Some("httproute/shop/storefront/rule/1/match/0/shop_example_com"),
        upstream_cluster: Some(cluster),
        ..UpstreamEvidence::default()
    });
    assert!(matches!(
        names.route_rule,
        Some(RuleRef {
            rule_index: 1,
            backend_index: None,
            ..
        })
    ));
}

proptest! {
    #[test]
    fn route_name_shortcut_matches_on_random_names(
        cluster in "(httproute|grpcroute|service|kong)?/[a-z0-9.-]{0,6}/[a-z0-9.-]{0,6}/(rule|x)/[0-9-]{0,3}(/backend/[0-9]{1,2})?",
        tail in "(/match/[0-9-]{0,3}(/[a-z_]{0,5})?)?",
        other in "[a-z0-9/._|-]{0,30}",
    ) {
        let route = format!("{cluster}{tail}");
        assert_names_agree(Some(&cluster), Some(&route))?;
        assert_names_agree(Some(&cluster), Some(&other))?;
        assert_names_agree(Some(&other), Some(&route))?;
    }
}

// ------------------------------------------------------- Service ids and memo

/// Every cluster name (each rule of each route, with and without a
/// backendRef index, plus names of other shapes) x every indexed address
/// (and unknown ones) x expected sets x answers: resolving with Service ids
/// and with the rule position remembered by a memo gives the same answer as
/// comparing names, and the id it returns is the answer's Service.
#[test]
fn service_ids_and_remembered_rules_answer_as_names_do() {
    let (endpoints, routes) = fixture();
    let table = BackendServiceIds::build(&routes, &endpoints).expect("no `/` in names");
    let eg = Implementation::EnvoyGateway;

    let mut clusters: Vec<String> = vec![
        "service/shop/web/8080".into(),
        "httproute/shop/missing/rule/0".into(),
        "-".into(),
    ];
    for route in &routes.routes {
        for rule in &route.rules {
            let base = format!(
                "{}/{}/{}/rule/{}",
                route.kind.as_str().to_ascii_lowercase(),
                route.namespace,
                route.name,
                rule.index
            );
            for j in 0..rule.backends.len() + 1 {
                clusters.push(format!("{base}/backend/{j}"));
            }
            clusters.push(base);
        }
    }
    let mut hosts: Vec<String> = vec!["10.9.9.9:80".into(), "-".into()];
    for (ns, name) in [("shop", "web"), ("shop", "api-v2"), ("shop", "web-canary")] {
        assert!(endpoints.service_id(ns, name).is_some(), "{ns}/{name}");
    }
    for ip in [
        "10.244.1.17",
        "10.244.2.31",
        "10.244.3.44",
        "10.244.4.4",
        "10.244.5.5",
        "10.244.6.6",
        "10.96.0.10",
    ] {
        for port in [80, 8080, 9000] {
            hosts.push(format!("{ip}:{port}"));
        }
    }
    let known = hosts.iter().filter(|h| !endpoints.lookup_str(h).is_empty());
    assert!(known.count() >= 5, "hosts of the fixture are indexed");
    // Expected sets: nothing, each allowed backend, and pairs of them.
    let mut allowed: Vec<(String, u32)> = Vec::new();
    let mut id = 0;
    while let Some(backend) = routes.allowed_backend(id) {
        let service = table
            .allowed(id)
            .expect("an id per allowed backend")
            .service;
        if !allowed.iter().any(|(k, _)| *k == backend.key) {
            allowed.push((backend.key.clone(), service));
        }
        id += 1;
    }
    assert!(allowed.len() >= 2, "fixture has allowed backends");
    let mut expected_sets: Vec<Vec<(String, u32)>> = vec![Vec::new()];
    for (i, a) in allowed.iter().enumerate() {
        expected_sets.push(vec![a.clone()]);
        for b in allowed.iter().skip(i + 1) {
            expected_sets.push(vec![a.clone(), b.clone()]);
        }
    }

    // A second index of the same objects: its candidates are not this one's.
    let (other_endpoints, _) = fixture();
    let mut memo = NameMemo::new();
    let (mut by_id, mut remembered, mut answered_by_text) = (0, 0, 0);
    for cluster in &clusters {
        for host in &hosts {
            let host_list = [host.as_str()];
            for (flags, status) in [("-", 200), ("UF", 503)] {
                let ev = evidence(eg, Some(cluster), None, &host_list, Some(flags), status);
                for set in &expected_sets {
                    let keys: Vec<&str> = set.iter().map(|(k, _)| k.as_str()).collect();
                    let ids: Vec<u32> = set.iter().map(|(_, s)| *s).collect();
                    let names = EvidenceNames::parse(&ev);
                    let reference = resolve_actual_named(&ev, &names, &endpoints, &routes, &keys);
                    let resolve_ids = ResolveIds {
                        table: &table,
                        expected: &ids,
                    };
                    // With the answering upstream found by its text, as the
                    // pipeline hands it over: the same answer.
                    if let Some(found) = endpoints.lookup_canonical_v4(host) {
                        let with_ids = ResolveInput {
                            ids: Some(resolve_ids),
                            ..ResolveInput::new(&ev, &names, &endpoints, &routes, &keys)
                        };
                        let plain = with_ids.resolve();
                        // Found in this index, and (ignored, looked up
                        // again) in another one: the whole resolution is
                        // the same as without it.
                        let theirs = other_endpoints.lookup_canonical_v4(host);
                        assert!(theirs.is_some(), "{host} is in both fixtures");
                        for answered_by in [Some(found), theirs] {
                            let answered = ResolveInput {
                                answered: answered_by,
                                ..with_ids
                            }
                            .resolve();
                            assert_eq!(answered.actual, reference, "{cluster} {host} {keys:?}");
                            assert_eq!(answered.actual, plain.actual);
                            assert_eq!(answered.service, plain.service);
                            assert_eq!(answered.cluster_rule_at, plain.cluster_rule_at);
                        }
                        answered_by_text += 1;
                    }
                    // Twice through the memo: the second time the rule's
                    // position is remembered.
                    for _ in 0..2 {
                        let names = EvidenceNames::parse_memo(&ev, &mut memo);
                        remembered += usize::from(names.cluster_rule_at.is_some());
                        let resolution = ResolveInput {
                            ids: Some(resolve_ids),
                            ..ResolveInput::new(&ev, &names, &endpoints, &routes, &keys)
                        }
                        .resolve();
                        names.remember_in(&ev, &resolution, &mut memo);
                        assert_eq!(resolution.actual, reference, "{cluster} {host} {keys:?}");
                        if let Some(service) = resolution.service {
                            by_id += 1;
                            let b = reference.backend.expect("an id names a backend");
                            assert_eq!(endpoints.service_id(b.namespace, b.name), Some(service));
                        }
                    }
                }
            }
        }
    }
    assert!(by_id > 100, "ids were used ({by_id})");
    assert!(
        answered_by_text > 100,
        "hosts found by text ({answered_by_text})"
    );
    assert!(
        remembered > 100,
        "rule positions were remembered ({remembered})"
    );
}

/// A name with `/` in it would make keys and pairs disagree: no table.
#[test]
fn no_service_ids_when_a_name_holds_a_slash() {
    let mut set = objects();
    load_text(
        &mut set,
        "odd.yaml",
        r#"
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: odd-1, namespace: shop, labels: {kubernetes.io/service-name: "a/b"}}
addressType: IPv4
ports: [{port: 80}]
endpoints: [{addresses: [10.250.0.1]}]
"#,
    )
    .unwrap();
    let endpoints = EndpointIndex::build(&set);
    let routes = RouteIndex::compile(&set, CompileOptions::default());
    assert!(!endpoints.keys_unambiguous());
    assert!(BackendServiceIds::build(&routes, &endpoints).is_none());
    let (endpoints, routes) = fixture();
    assert!(BackendServiceIds::build(&routes, &endpoints).is_some());
}

/// The rule a hit names is found through its first allowed backend: the
/// same position, index, route key and kind as reading the route, and
/// nothing for a backend of another route.
#[test]
fn hit_rules_come_from_the_table_as_from_the_index() {
    let (endpoints, routes) = fixture();
    let table = BackendServiceIds::build(&routes, &endpoints).expect("no `/` in names");
    let mut checked = 0;
    for (r, route) in routes.routes.iter().enumerate() {
        for (p, rule) in route.rules.iter().enumerate() {
            let Some(first) = routes.allowed_backends_of(r as u32, p as u32).first() else {
                continue;
            };
            let hit = table
                .hit_rule(&routes, r as u32, first)
                .expect("an allowed backend's rule");
            assert_eq!(hit.rule_pos, p as u32);
            assert_eq!(hit.rule_index, rule.index);
            assert_eq!(hit.route_key, route.key);
            assert_eq!(hit.route_kind, route.kind);
            let other_route = (r as u32 + 1) % routes.routes.len() as u32;
            if other_route != r as u32 {
                assert!(table.hit_rule(&routes, other_route, first).is_none());
            }
            checked += 1;
        }
    }
    assert!(checked >= 3, "rules with allowed backends ({checked})");
}

// ------------------------------------------- tables and positions of other indexes

/// A Gateway, and HTTPRoutes `shop/r1` (rule 0 → `a`) and `shop/r2` (rule 0
/// → `b`) created at `r1_at` and `r2_at` (the older route comes first in the
/// compiled index), plus `extra`.
fn two_routes(r1_at: &str, r2_at: &str, extra: &str) -> ObjectSet {
    crate::test_manifests::two_routes(80, r1_at, r2_at, extra)
}

/// The Service ids of `expected` keys in `table` (allowed backends only).
fn expected_ids(routes: &RouteIndex, table: &BackendServiceIds<'_>, keys: &[&str]) -> Vec<u32> {
    keys.iter()
        .map(|k| {
            let mut id = 0;
            while let Some(b) = routes.allowed_backend(id) {
                if b.key == *k {
                    return table.allowed(id).expect("an allowed backend").service;
                }
                id += 1;
            }
            panic!("{k} is not an allowed backend");
        })
        .collect()
}

/// A table built from (routes, E1) does not serve (routes, E2) even when
/// both endpoint indexes hold as many Services: E1 numbers `a`=0, `b`=1, E2
/// `b`=0, `x`=1, so with E1's table the pod of `x` would pass for `b`, a
/// backend of the logged rule. The id path must answer as the name path.
#[test]
fn a_table_serves_only_the_endpoint_index_it_was_built_from() {
    let e1_set = two_routes(
        "2020-01-01T00:00:00Z",
        "2021-01-01T00:00:00Z",
        &(service_with_pod("a", "10.1.0.1") + &service_with_pod("b", "10.1.0.2")),
    );
    let e2_set = two_routes(
        "2020-01-01T00:00:00Z",
        "2021-01-01T00:00:00Z",
        &(service_with_pod("b", "10.1.0.2") + &service_with_pod("x", "10.1.0.3")),
    );
    // One route index: the rule `shop/r` of the scenario is r1 with [a, b].
    let mut routes_set = e1_set.clone();
    load_text(
        &mut routes_set,
        "r.yaml",
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: shop}
spec:
  parentRefs: [{name: gw, namespace: infra}]
  rules: [{backendRefs: [{name: a, port: 80}, {name: b, port: 80}]}]
"#,
    )
    .expect("route loads");
    let routes = RouteIndex::compile(&routes_set, CompileOptions::default());
    let (e1, e2) = (EndpointIndex::build(&e1_set), EndpointIndex::build(&e2_set));
    assert_eq!(e1.service_count(), e2.service_count());
    assert_eq!(e1.service_id("shop", "a"), Some(0));
    assert_eq!(e2.service_id("shop", "x"), Some(1));
    let table = BackendServiceIds::build(&routes, &e1).expect("no `/` in names");
    assert!(table.is_for(&routes, &e1));
    assert!(
        table.is_for(&routes, &e1.clone()),
        "a clone is the same index"
    );
    assert!(!table.is_for(&routes, &e2));

    let hosts = ["10.1.0.3:8080"];
    let ev = evidence(
        Implementation::EnvoyGateway,
        Some("httproute/shop/r/rule/0"),
        None,
        &hosts,
        Some("-"),
        200,
    );
    let keys = ["shop/a", "shop/b"];
    let ids = expected_ids(&routes, &table, &keys);
    let names = EvidenceNames::parse(&ev);
    let by_name = resolve_actual_named(&ev, &names, &e2, &routes, &keys);
    let by_id = ResolveInput {
        ids: Some(ResolveIds {
            table: &table,
            expected: &ids,
        }),
        ..ResolveInput::new(&ev, &names, &e2, &routes, &keys)
    }
    .resolve();
    assert_eq!(by_id.actual, by_name, "E1's ids must not judge E2's pods");
    assert_eq!(by_name.backend.map(|b| b.name), Some("x"));
}

/// A name resolved against index A, A, then B, B: the memo holds B's
/// position at the end (a position of another index is replaced, not kept
/// for good), and the second record against B is served from it.
#[test]
fn the_memo_follows_the_route_index_in_use() {
    let set = two_routes(
        "2020-01-01T00:00:00Z",
        "2021-01-01T00:00:00Z",
        &service_with_pod("a", "10.1.0.1"),
    );
    let endpoints = EndpointIndex::build(&set);
    let a = RouteIndex::compile(&set, CompileOptions::default());
    let b = RouteIndex::compile(&set, CompileOptions::default());
    assert_ne!(a.instance(), b.instance());
    let hosts = ["10.1.0.1:8080"];
    let ev = evidence(
        Implementation::EnvoyGateway,
        Some("httproute/shop/r1/rule/0"),
        None,
        &hosts,
        Some("-"),
        200,
    );
    let mut memo = NameMemo::new();
    let mut seen = Vec::new();
    for routes in [&a, &a, &b, &b] {
        let names = EvidenceNames::parse_memo(&ev, &mut memo);
        seen.push(names.cluster_rule_at.map(|at| at.index));
        let resolution = ResolveInput::new(&ev, &names, &endpoints, routes, &["shop/a"]).resolve();
        assert_eq!(
            resolution.cluster_rule_at.map(|at| at.index),
            Some(routes.instance())
        );
        names.remember_in(&ev, &resolution, &mut memo);
    }
    let (ia, ib) = (Some(a.instance()), Some(b.instance()));
    assert_eq!(seen, [None, ia, ia, ib], "remembered before each record");
    let names = EvidenceNames::parse_memo(&ev, &mut memo);
    assert_eq!(
        names.cluster_rule_at.map(|at| at.index),
        ib,
        "the memo is at B"
    );
}

/// Index A orders `r1` before `r2`, index B after: positions remembered
/// for A and a table built for A, used with B, must answer as B's names
/// do (the remembered position's instance check and `is_for`'s route
/// check keep them out).
#[test]
fn positions_and_tables_of_another_route_order_are_not_used() {
    let slices = service_with_pod("a", "10.1.0.1") + &service_with_pod("b", "10.1.0.2");
    let a_set = two_routes("2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z", &slices);
    let b_set = two_routes("2021-01-01T00:00:00Z", "2020-01-01T00:00:00Z", &slices);
    let endpoints = EndpointIndex::build(&a_set);
    let a = RouteIndex::compile(&a_set, CompileOptions::default());
    let b = RouteIndex::compile(&b_set, CompileOptions::default());
    let order = |i: &RouteIndex| i.routes.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
    assert_eq!(order(&a), ["r1", "r2"]);
    assert_eq!(order(&b), ["r2", "r1"]);
    let table_a = BackendServiceIds::build(&a, &endpoints).expect("no `/` in names");
    assert!(!table_a.is_for(&b, &endpoints));

    let eg = Implementation::EnvoyGateway;
    let mut checked = 0;
    for cluster in ["httproute/shop/r1/rule/0", "httproute/shop/r2/rule/0"] {
        for host in ["10.1.0.1:8080", "10.1.0.2:8080"] {
            let hosts = [host];
            let ev = evidence(eg, Some(cluster), None, &hosts, Some("-"), 200);
            // Expected sets by id are A's (same allowed backends in both).
            for keys in [&[][..], &["shop/a"][..], &["shop/b"][..]] {
                let ids = expected_ids(&a, &table_a, keys);
                let reference =
                    resolve_actual_named(&ev, &EvidenceNames::parse(&ev), &endpoints, &b, keys);
                // The memo remembers the position in A...
                let mut memo = NameMemo::new();
                let names = EvidenceNames::parse_memo(&ev, &mut memo);
                let in_a = ResolveInput::new(&ev, &names, &endpoints, &a, keys).resolve();
                names.remember_in(&ev, &in_a, &mut memo);
                let names = EvidenceNames::parse_memo(&ev, &mut memo);
                assert_eq!(names.cluster_rule_at.map(|at| at.index), Some(a.instance()));
                // ... and A's table is offered: B answers by its own names.
                for ids_of_a in [
                    None,
                    Some(ResolveIds {
                        table: &table_a,
                        expected: &ids,
                    }),
                ] {
                    let in_b = ResolveInput {
                        ids: ids_of_a,
                        ..ResolveInput::new(&ev, &names, &endpoints, &b, keys)
                    }
                    .resolve();
                    assert_eq!(in_b.actual, reference, "{cluster} {host} {keys:?}");
                    let at = in_b.cluster_rule_at.expect("the rule is in B");
                    assert_eq!(at.index, b.instance());
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 24);
}

/// Routes beside [`MANIFESTS`]': a rule that lists Service `web` twice, and a route whose name the Envoy Gateway scheme does not accept
/// (not a DNS subdomain), so its rules get no cluster name in the table.
const SOLE_WINNER_ROUTES: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: dupes, namespace: shop}
spec:
  parentRefs: [{name: public-gw, namespace: infra}]
  hostnames: [dupes.example.com]
  rules:
  - backendRefs:
    - {name: web, port: 80, weight: 50}
    - {name: web-canary, port: 80, weight: 10}
    - {name: web, port: 80, weight: 40}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: Odd_Name, namespace: shop}
spec:
  parentRefs: [{name: public-gw, namespace: infra}]
  hostnames: [odd.example.com]
  rules:
  - backendRefs: [{name: web, port: 80}]
"#;

/// A rule read from the table as a decision's sole winner: its expected set
/// is its allowed backends with each key once (compared here by key, the
/// table goes by Service id), with their ids; its rule is the route's; and
/// its cluster name, when it has one, parses as the parser reads that text
/// under both hints it applies to, at the position the name lookup finds.
#[test]
fn sole_winners_match_the_collected_set_and_the_parsed_cluster_name() {
    let mut set = objects();
    load_text(&mut set, "sole.yaml", SOLE_WINNER_ROUTES).expect("manifests load");
    let endpoints = EndpointIndex::build(&set);
    let routes = RouteIndex::compile(&set, CompileOptions::default());
    let table = BackendServiceIds::build(&routes, &endpoints).expect("no `/` in names");
    let (mut deduplicated, mut named, mut unnamed) = (0, 0, 0);
    for (r, route) in routes.routes.iter().enumerate() {
        for (p, rule) in route.rules.iter().enumerate() {
            let (r32, p32) = (r as u32, p as u32);
            let sole = table
                .sole_winner(r32, p32)
                .expect("every rule has an entry");
            let allowed = routes.allowed_backends_of(r32, p32);
            let mut keys: Vec<&str> = Vec::new();
            let mut ids: Vec<u32> = Vec::new();
            for backend in allowed {
                if !keys.contains(&backend.key.as_str()) {
                    keys.push(backend.key.as_str());
                    ids.push(routes.allowed_backend_id(backend).expect("an allowed id"));
                }
            }
            deduplicated += usize::from(allowed.len() > keys.len());
            assert_eq!(sole.keys(), keys.as_slice(), "{} rule {p}", route.key);
            assert_eq!(sole.allowed_ids(), ids.as_slice());
            let services: Vec<u32> = ids
                .iter()
                .map(|&id| {
                    table
                        .allowed(id)
                        .expect("an id per allowed backend")
                        .service
                })
                .collect();
            assert_eq!(sole.services(), services.as_slice());
            let hit = sole.rule();
            assert_eq!(
                (hit.rule_pos, hit.rule_index, hit.route_key, hit.route_kind),
                (p32, rule.index, route.key.as_str(), route.kind)
            );
            let text = format!(
                "httproute/{}/{}/rule/{}",
                route.namespace, route.name, rule.index
            );
            let Some(cluster) = sole.cluster() else {
                assert!(
                    naming::parse_upstream_name_scheme(Implementation::EnvoyGateway, &text)
                        .is_none(),
                    "{text} parses, so the table should hold it"
                );
                unnamed += 1;
                continue;
            };
            named += 1;
            for hint in [Implementation::EnvoyGateway, Implementation::Auto] {
                assert!(RuleCluster::applies_to(hint));
                let parsed = cluster
                    .parse(&text)
                    .map(|rule| (Implementation::EnvoyGateway, UpstreamName::Rule(rule)));
                assert_eq!(parsed, naming::parse_upstream_name_scheme(hint, &text));
            }
            assert!(!RuleCluster::applies_to(Implementation::Istio));
            let rule_ref = cluster.parse(&text).expect("its own text");
            let found = find_rule(&routes, &rule_ref).expect("the rule is found by name");
            assert_eq!((found.route_pos, found.rule_pos), (r, p));
            assert_eq!(
                cluster.at(),
                RuleAt {
                    index: routes.instance(),
                    route: r32,
                    rule: p32
                }
            );
            // Any other text is not known: a backendRef suffix, another rule.
            assert!(cluster.parse(&format!("{text}/backend/0")).is_none());
            assert!(cluster
                .parse(&format!(
                    "httproute/{}/{}/rule/{}",
                    route.namespace,
                    route.name,
                    rule.index + 1
                ))
                .is_none());
        }
    }
    assert_eq!(deduplicated, 1, "the rule listing `web` twice");
    assert!(named >= 5, "rules with cluster names ({named})");
    assert_eq!(unnamed, 1, "the route whose name does not parse");
}
