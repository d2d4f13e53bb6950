//! Index rebuild time: compiling a config of 10,000 HTTPRoutes (plus their
//! Services, EndpointSlices, namespaces and cross-namespace grants) into a
//! RouteIndex and an EndpointIndex, as the live index does after every
//! debounced change. The config generator is local to this bench.

use criterion::{criterion_group, criterion_main, Criterion};

use routeproof::gateway::load::load_text;
use routeproof::gateway::{CompileOptions, ObjectSet, RouteIndex};
use routeproof::resolve::EndpointIndex;

/// `routes` HTTPRoutes over 100 namespaces on one Gateway with an HTTP and an
/// HTTPS listener; every 10th route sends to a shared backend namespace through
/// a ReferenceGrant; routes share hostnames in groups of 20 with distinct path
/// prefixes and a header match every 3rd rule.
fn generate(routes: usize) -> ObjectSet {
    let mut y = String::new();
    y.push_str(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: infra}\n\
         spec:\n  gatewayClassName: eg\n  listeners:\n\
         \x20 - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}\n\
         \x20 - {name: https, port: 443, protocol: HTTPS, hostname: '*.example.com', allowedRoutes: {namespaces: {from: All}}}\n---\n",
    );
    for ns in 0..100 {
        y.push_str(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: team-{ns}, labels: {{team: t{ns}}}}}\n---\n"
        ));
    }
    y.push_str("apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: shared, namespace: shared}\nspec:\n  from:\n");
    for ns in 0..100 {
        y.push_str(&format!(
            "  - {{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: team-{ns}}}\n"
        ));
    }
    y.push_str("  to: [{group: '', kind: Service}]\n---\n");
    for i in 0..routes {
        let ns = format!("team-{}", i % 100);
        let (bns, svc) = if i % 10 == 0 {
            ("shared".to_string(), format!("shared-{i}"))
        } else {
            (ns.clone(), format!("svc-{i}"))
        };
        let host = format!("app-{}.example.com", i / 20);
        let header = if i % 3 == 0 {
            ", headers: [{name: x-canary, value: 'true'}]"
        } else {
            ""
        };
        y.push_str(&format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r-{i}, namespace: {ns}}}\n\
             spec:\n  parentRefs: [{{name: gw, namespace: infra}}]\n  hostnames: ['{host}']\n  rules:\n\
             \x20 - matches: [{{path: {{type: PathPrefix, value: /p{i}}}{header}}}]\n\
             \x20   backendRefs: [{{name: {svc}, namespace: {bns}, port: 80, weight: 90}}, {{name: {svc}, namespace: {bns}, port: 80, weight: 10}}]\n\
             \x20 - matches: [{{path: {{type: Exact, value: /p{i}/health}}}}]\n\
             \x20   backendRefs: [{{name: {svc}, namespace: {bns}, port: 80}}]\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {{name: {svc}, namespace: {bns}}}\nspec: {{ports: [{{port: 80, targetPort: 8080}}]}}\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {svc}-x, namespace: {bns}, labels: {{kubernetes.io/service-name: {svc}}}}}\n\
             addressType: IPv4\nendpoints: [{{addresses: ['10.{}.{}.{}']}}]\nports: [{{port: 8080}}]\n---\n",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        ));
    }
    let mut set = ObjectSet::default();
    if let Err(e) = load_text(&mut set, "generated", &y) {
        panic!("generated config does not load: {e}");
    }
    set
}

fn rebuild(c: &mut Criterion) {
    let objects = generate(10_000);
    assert_eq!(objects.http_routes.len(), 10_000);
    let mut group = c.benchmark_group("rebuild");
    group.sample_size(10);
    group.bench_function("compile_10k_routes", |b| {
        b.iter(|| RouteIndex::compile(&objects, CompileOptions::default()))
    });
    group.bench_function("compile_and_endpoints_10k_routes", |b| {
        b.iter(|| {
            (
                RouteIndex::compile(&objects, CompileOptions::default()),
                EndpointIndex::build(&objects),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, rebuild);
criterion_main!(benches);
