//! Manifests shared by unit tests of several modules (test builds only).

use crate::gateway::load::load_text;
use crate::gateway::ObjectSet;

/// A Gateway `infra/gw` (class `eg`, one HTTP listener on `port`) and
/// HTTPRoutes `shop/r1` (host `one.example.com`, rule 0 → Service `a`) and
/// `shop/r2` (`two.example.com` → `b`), created at `r1_at` and `r2_at` (the
/// older route comes first in the compiled index), followed by `extra`
/// (documents starting with `---`).
pub(crate) fn two_routes(port: u16, r1_at: &str, r2_at: &str, extra: &str) -> ObjectSet {
    let gateway = gateway_gw(port);
    let text = format!(
        r#"{gateway}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r1, namespace: shop, creationTimestamp: "{r1_at}"}}
spec:
  parentRefs: [{{name: gw, namespace: infra}}]
  hostnames: [one.example.com]
  rules: [{{backendRefs: [{{name: a, port: 80}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r2, namespace: shop, creationTimestamp: "{r2_at}"}}
spec:
  parentRefs: [{{name: gw, namespace: infra}}]
  hostnames: [two.example.com]
  rules: [{{backendRefs: [{{name: b, port: 80}}]}}]
{extra}"#
    );
    let mut set = ObjectSet::default();
    load_text(&mut set, "two-routes.yaml", &text).expect("test manifests load");
    set
}

/// GatewayClass `eg` and Gateway `infra/gw` with one HTTP listener `http`
/// on `port` that admits routes from every namespace.
pub(crate) fn gateway_gw(port: u16) -> String {
    format!(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: eg}}
spec: {{controllerName: gateway.envoyproxy.io/gatewayclass-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: infra}}
spec:
  gatewayClassName: eg
  listeners: [{{name: http, port: {port}, protocol: HTTP, allowedRoutes: {{namespaces: {{from: All}}}}}}]
"#
    )
}

/// Service `shop/<service>` (port 80 → 8080) and an EndpointSlice of it with
/// one pod address, as documents starting with `---`.
pub(crate) fn service_with_pod(service: &str, ip: &str) -> String {
    format!(
        r#"---
apiVersion: v1
kind: Service
metadata: {{name: {service}, namespace: shop}}
spec:
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {service}-1, namespace: shop, labels: {{kubernetes.io/service-name: {service}}}}}
addressType: IPv4
ports: [{{port: 8080}}]
endpoints: [{{addresses: ["{ip}"]}}]
"#
    )
}
