//! `resolve_actual` must not allocate on the hot path: this binary counts heap
//! allocations per thread around the calls.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use routeproof::gateway::load::load_text;
use routeproof::gateway::{CompileOptions, ObjectSet, RouteIndex};
use routeproof::resolve::{resolve_actual, EndpointIndex, Implementation, UpstreamEvidence};

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const MANIFESTS: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: storefront, namespace: shop}
spec:
  rules:
  - backendRefs: [{name: web, port: 80}]
  - backendRefs:
    - {name: api-v1, port: 80, weight: 80}
    - {name: api-v2, port: 80, weight: 20}
---
apiVersion: v1
kind: Service
metadata: {name: api-v1, namespace: shop}
spec: {ports: [{port: 80, targetPort: 9000}]}
---
apiVersion: v1
kind: Service
metadata: {name: api-v2, namespace: shop}
spec: {ports: [{port: 80, targetPort: 9000}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a2, namespace: shop, labels: {kubernetes.io/service-name: api-v2}}
addressType: IPv6
ports: [{port: 9000}]
endpoints: [{addresses: ["fd00::44"]}]
"#;

#[test]
fn resolve_actual_does_not_allocate() {
    let mut set = ObjectSet::default();
    load_text(&mut set, "t.yaml", MANIFESTS).expect("manifests load");
    let endpoints = EndpointIndex::build(&set);
    let routes = RouteIndex::compile(&set, CompileOptions::default());
    let hosts = ["10.244.2.31:9000, [fd00::44]:9000"];
    let cases = [
        (Implementation::EnvoyGateway, Some("httproute/shop/storefront/rule/1")),
        (Implementation::Auto, Some("outbound|80||api-v2.shop.svc.cluster.local;")),
        (
            Implementation::Traefik,
            Some("httproute-shop-storefront-gw-infra-gw-ep-web-1-9d3b6e0f12-svc-shop-api-v2-1@kubernetesgateway"),
        ),
        (Implementation::HaproxyUnifiedGateway, Some("hug_shop_api-v2_80__")),
        (Implementation::Auto, None),
    ];
    for (implementation, cluster) in cases {
        let evidence = UpstreamEvidence {
            implementation_hint: Some(implementation),
            route_name: Some("httproute/shop/storefront/rule/1/match/0/*"),
            upstream_cluster: cluster,
            upstream_hosts: &hosts,
            response_flags: Some("-"),
            status: Some(200),
        };
        let before = ALLOCATIONS.with(Cell::get);
        let actual = resolve_actual(&evidence, &endpoints, &routes, &["shop/api-v2"]);
        let after = ALLOCATIONS.with(Cell::get);
        assert_eq!(after - before, 0, "{implementation} allocated");
        let backend = actual.backend.expect("resolved");
        assert_eq!((backend.namespace, backend.name), ("shop", "api-v2"));
    }
}
