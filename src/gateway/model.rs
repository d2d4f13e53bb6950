//! The Gateway API and core Kubernetes objects the engine needs, as plain data.
//!
//! These types deserialize directly from Kubernetes manifests (`kubectl get -o yaml`
//! output, JSON, or hand-written YAML) but are deliberately *lenient*: enum-like
//! fields (path match type, filter type, `from`, protocol, ...) are kept as strings
//! so that an unknown value becomes an `Accepted=False/UnsupportedValue` condition
//! computed by the engine instead of a parse error. The strict generated types of
//! the `gateway-api` crate would reject such objects outright, and then the engine
//! could not explain what the controller does with them.
//!
//! Only the fields that influence routing are modelled; everything else in a
//! manifest is ignored. Defaults follow the CRD defaults of the standard channel
//! (`apis/v1/*.go` in kubernetes-sigs/gateway-api).

use std::collections::BTreeMap;

use serde::Deserialize;

/// The API group of the Gateway API kinds.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
/// The experimental group that carried `XListenerSet` in v1.3-v1.4.
pub const GATEWAY_X_GROUP: &str = "gateway.networking.x-k8s.io";

/// The subset of `metadata` the engine uses.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectMeta {
    /// Object name.
    pub name: String,
    /// Namespace; empty for cluster-scoped objects and for manifests that omit it
    /// (the loader fills in `default`, as `kubectl apply` would).
    pub namespace: String,
    /// Labels (namespace labels are matched by `allowedRoutes` selectors).
    pub labels: BTreeMap<String, String>,
    /// RFC 3339 creation time; routes are ranked oldest-first on precedence ties.
    pub creation_timestamp: Option<String>,
    /// `metadata.generation`, compared with `status.observedGeneration`.
    pub generation: Option<i64>,
}

/// `namespace/name`: the key of a namespaced object (see [`ObjectMeta::key`]),
/// built with one allocation of the exact size.
pub fn object_key(namespace: &str, name: &str) -> String {
    let mut key = String::with_capacity(namespace.len() + 1 + name.len());
    key.push_str(namespace);
    key.push('/');
    key.push_str(name);
    key
}

impl ObjectMeta {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        object_key(&self.namespace, &self.name)
    }

    /// Creation time in seconds since the epoch; `None` when absent or unparsable.
    ///
    /// Objects without a timestamp (hand-written manifests) rank after every object
    /// that has one, then by namespace/name, which keeps decisions deterministic.
    pub fn created_unix(&self) -> Option<i64> {
        let ts = self.creation_timestamp.as_deref()?;
        chrono::DateTime::parse_from_rfc3339(ts)
            .ok()
            .map(|t| t.timestamp())
    }
}

/// A `GatewayClass`: only its name and controller matter here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GatewayClass {
    /// Metadata (cluster-scoped: namespace empty).
    pub metadata: ObjectMeta,
    /// `spec.controllerName`.
    pub spec: GatewayClassSpec,
}

/// `GatewayClass.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GatewayClassSpec {
    /// The controller that implements Gateways of this class.
    pub controller_name: String,
}

/// A `Gateway`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Gateway {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: GatewaySpec,
    /// Status as reported by the controller (kept for drift detection).
    pub status: Option<serde_json::Value>,
}

/// `Gateway.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GatewaySpec {
    /// `gatewayClassName`.
    pub gateway_class_name: String,
    /// Listeners, in spec order.
    pub listeners: Vec<Listener>,
    /// `allowedListeners` (ListenerSet admission, default `None`).
    pub allowed_listeners: Option<AllowedListeners>,
}

/// `Gateway.spec.allowedListeners`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AllowedListeners {
    /// Which namespaces may attach ListenerSets.
    pub namespaces: Option<RouteNamespaces>,
}

/// A Gateway (or ListenerSet) listener.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Listener {
    /// Listener name (the `sectionName` routes use).
    pub name: String,
    /// Hostname; `None` matches every host.
    pub hostname: Option<String>,
    /// TCP/UDP port.
    pub port: u16,
    /// `HTTP`, `HTTPS`, `TLS`, `TCP`, `UDP` or an implementation-specific value.
    pub protocol: String,
    /// Which routes may attach.
    pub allowed_routes: Option<AllowedRoutes>,
}

/// `Listener.allowedRoutes`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AllowedRoutes {
    /// Namespace policy; default `from: Same`.
    pub namespaces: Option<RouteNamespaces>,
    /// Explicit kinds; empty = derived from the protocol.
    pub kinds: Vec<RouteGroupKind>,
}

/// `RouteNamespaces` (`from` + optional selector).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RouteNamespaces {
    /// `Same` (default), `All`, `Selector` or `None`.
    pub from: Option<String>,
    /// Label selector over Namespace labels, for `from: Selector`.
    pub selector: Option<LabelSelector>,
}

/// A `RouteGroupKind` in `allowedRoutes.kinds`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct RouteGroupKind {
    /// Group; defaults to `gateway.networking.k8s.io`.
    pub group: Option<String>,
    /// Kind, e.g. `HTTPRoute`.
    pub kind: String,
}

/// A Kubernetes label selector.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LabelSelector {
    /// Exact label matches.
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LabelSelectorRequirement {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
    pub operator: String,
    /// Values for `In` / `NotIn`.
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether `labels` satisfy this selector (all requirements ANDed; an empty
    /// selector matches everything, as in Kubernetes). An unknown operator matches
    /// nothing, so a typo never widens access.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|req| {
                let value = labels.get(&req.key);
                match req.operator.as_str() {
                    "In" => value.is_some_and(|v| req.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !req.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

/// A `ListenerSet` (standard channel since v1.5; `XListenerSet` before).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListenerSet {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: ListenerSetSpec,
}

/// `ListenerSet.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListenerSetSpec {
    /// The Gateway this set attaches to.
    pub parent_ref: ParentRef,
    /// Listeners, in spec order.
    pub listeners: Vec<Listener>,
}

/// A route's `parentRefs` entry (also used for `ListenerSet.spec.parentRef`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct ParentRef {
    /// Group; default `gateway.networking.k8s.io`.
    pub group: Option<String>,
    /// Kind; default `Gateway`.
    pub kind: Option<String>,
    /// Namespace; default the route's namespace.
    pub namespace: Option<String>,
    /// Parent name.
    pub name: String,
    /// Listener name.
    pub section_name: Option<String>,
    /// Listener port.
    pub port: Option<u16>,
}

impl ParentRef {
    /// Effective group (defaulted).
    pub fn group(&self) -> &str {
        self.group.as_deref().unwrap_or(GATEWAY_GROUP)
    }

    /// Effective kind (defaulted).
    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("Gateway")
    }

    /// Effective namespace: the referrer's when unset.
    pub fn namespace<'a>(&'a self, referrer_ns: &'a str) -> &'a str {
        self.namespace.as_deref().unwrap_or(referrer_ns)
    }
}

/// An `HTTPRoute`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRoute {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: HttpRouteSpec,
    /// Status as reported by the controller (kept for drift detection).
    pub status: Option<serde_json::Value>,
}

/// `HTTPRoute.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteSpec {
    /// Parents.
    pub parent_refs: Vec<ParentRef>,
    /// Hostnames; empty = every host the listener accepts.
    pub hostnames: Vec<String>,
    /// Rules; `None` (omitted) is defaulted by the CRD to one rule matching
    /// `PathPrefix /` with no backends (`apis/v1/httproute_types.go`, Rules).
    pub rules: Option<Vec<HttpRouteRule>>,
}

/// One `HTTPRoute` rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteRule {
    /// Optional rule name (standard since v1.4).
    pub name: Option<String>,
    /// Matches, ORed; empty = one `PathPrefix /` match.
    pub matches: Vec<HttpRouteMatch>,
    /// Rule-level filters, in order.
    pub filters: Vec<HttpRouteFilter>,
    /// Backends; `None` and `[]` both mean "no backends" (500 unless a filter answers).
    pub backend_refs: Option<Vec<HttpBackendRef>>,
}

/// One `HTTPRouteMatch`: every present condition must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteMatch {
    /// Path condition; default `PathPrefix /`.
    pub path: Option<HttpPathMatch>,
    /// Header conditions (names case-insensitive).
    pub headers: Vec<ValueMatch>,
    /// Query parameter conditions (names case-sensitive).
    pub query_params: Vec<ValueMatch>,
    /// HTTP method.
    pub method: Option<String>,
}

/// `HTTPPathMatch`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpPathMatch {
    /// `Exact`, `PathPrefix` (default) or `RegularExpression`.
    #[serde(rename = "type")]
    pub match_type: Option<String>,
    /// Value; default `/`.
    pub value: Option<String>,
}

/// A header or query parameter match (`HTTPHeaderMatch`, `HTTPQueryParamMatch`,
/// `GRPCHeaderMatch` share this shape).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ValueMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(rename = "type")]
    pub match_type: Option<String>,
    /// Header or parameter name.
    pub name: String,
    /// Value to compare.
    pub value: String,
}

/// An `HTTPRouteFilter` (also used for GRPCRoute filters, a subset).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteFilter {
    /// Filter type, e.g. `RequestRedirect`.
    #[serde(rename = "type")]
    pub filter_type: String,
    /// Set for `RequestRedirect`.
    pub request_redirect: Option<RequestRedirect>,
    /// Set for `URLRewrite`.
    #[serde(rename = "urlRewrite")]
    pub url_rewrite: Option<UrlRewrite>,
    /// Set for `RequestMirror`.
    pub request_mirror: Option<RequestMirror>,
    /// Set for `ExtensionRef`.
    pub extension_ref: Option<LocalObjectRef>,
}

/// `HTTPRequestRedirectFilter`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestRedirect {
    /// `http` or `https`.
    pub scheme: Option<String>,
    /// Replacement host.
    pub hostname: Option<String>,
    /// Path modifier.
    pub path: Option<PathModifier>,
    /// Replacement port.
    pub port: Option<u16>,
    /// 301, 302 (default), 303, 307, 308.
    pub status_code: Option<u16>,
}

/// `HTTPURLRewriteFilter`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UrlRewrite {
    /// Replacement host.
    pub hostname: Option<String>,
    /// Path modifier.
    pub path: Option<PathModifier>,
}

/// `HTTPPathModifier`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PathModifier {
    /// `ReplaceFullPath` or `ReplacePrefixMatch`.
    #[serde(rename = "type")]
    pub modifier_type: String,
    /// For `ReplaceFullPath`.
    pub replace_full_path: Option<String>,
    /// For `ReplacePrefixMatch`.
    pub replace_prefix_match: Option<String>,
}

/// `HTTPRequestMirrorFilter`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestMirror {
    /// Where copies go.
    pub backend_ref: BackendObjectRef,
    /// Percentage of requests mirrored (0-100).
    pub percent: Option<u32>,
    /// Fraction of requests mirrored.
    pub fraction: Option<Fraction>,
}

/// A `numerator/denominator` fraction.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Fraction {
    /// Numerator.
    pub numerator: u32,
    /// Denominator (default 100).
    pub denominator: Option<u32>,
}

/// A `LocalObjectReference` (ExtensionRef filters).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalObjectRef {
    /// Group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
}

/// `BackendObjectReference`: what a backendRef or mirror points at.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct BackendObjectRef {
    /// Group; default `""` (core).
    pub group: Option<String>,
    /// Kind; default `Service`.
    pub kind: Option<String>,
    /// Name.
    pub name: String,
    /// Namespace; default the route's.
    pub namespace: Option<String>,
    /// Service port (not targetPort).
    pub port: Option<u16>,
}

impl BackendObjectRef {
    /// Effective group (defaulted to core `""`).
    pub fn group(&self) -> &str {
        self.group.as_deref().unwrap_or("")
    }

    /// Effective kind (defaulted to `Service`).
    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("Service")
    }

    /// Effective namespace: the referrer's when unset.
    pub fn namespace<'a>(&'a self, referrer_ns: &'a str) -> &'a str {
        self.namespace.as_deref().unwrap_or(referrer_ns)
    }
}

/// `HTTPBackendRef` / `GRPCBackendRef`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpBackendRef {
    /// The referenced object.
    #[serde(flatten)]
    pub target: BackendObjectRef,
    /// Weight; default 1.
    pub weight: Option<u32>,
    /// Filters applied only when this backend is picked.
    pub filters: Vec<HttpRouteFilter>,
}

/// A `GRPCRoute`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcRoute {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: GrpcRouteSpec,
    /// Status as reported by the controller.
    pub status: Option<serde_json::Value>,
}

/// `GRPCRoute.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcRouteSpec {
    /// Parents.
    pub parent_refs: Vec<ParentRef>,
    /// Hostnames.
    pub hostnames: Vec<String>,
    /// Rules.
    pub rules: Vec<GrpcRouteRule>,
}

/// One `GRPCRoute` rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcRouteRule {
    /// Optional rule name.
    pub name: Option<String>,
    /// Matches, ORed; empty = every gRPC request.
    pub matches: Vec<GrpcRouteMatch>,
    /// Filters.
    pub filters: Vec<HttpRouteFilter>,
    /// Backends.
    pub backend_refs: Option<Vec<HttpBackendRef>>,
}

/// `GRPCRouteMatch`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcRouteMatch {
    /// Service/method condition.
    pub method: Option<GrpcMethodMatch>,
    /// Header conditions.
    pub headers: Vec<ValueMatch>,
}

/// `GRPCMethodMatch`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcMethodMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(rename = "type")]
    pub match_type: Option<String>,
    /// Fully qualified service, e.g. `foo.bar.Echo`.
    pub service: Option<String>,
    /// Method name.
    pub method: Option<String>,
}

/// A `ReferenceGrant` (v1 or v1beta1).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReferenceGrant {
    /// Metadata; the namespace is the *target* namespace.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: ReferenceGrantSpec,
}

/// `ReferenceGrant.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReferenceGrantSpec {
    /// Who may refer.
    pub from: Vec<ReferenceGrantFrom>,
    /// What may be referred to.
    pub to: Vec<ReferenceGrantTo>,
}

/// `ReferenceGrantFrom`: all fields required, compared exactly.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct ReferenceGrantFrom {
    /// Referrer group.
    pub group: String,
    /// Referrer kind.
    pub kind: String,
    /// Referrer namespace.
    pub namespace: String,
}

/// `ReferenceGrantTo`: no name = every object of the group/kind.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct ReferenceGrantTo {
    /// Target group (`""` for core).
    pub group: String,
    /// Target kind.
    pub kind: String,
    /// Target name.
    pub name: Option<String>,
}

/// A core `Service`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Service {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: ServiceSpec,
}

/// `Service.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceSpec {
    /// `ClusterIP` (default), `NodePort`, `LoadBalancer`, `ExternalName`.
    #[serde(rename = "type")]
    pub service_type: Option<String>,
    /// Ports.
    pub ports: Vec<ServicePort>,
    /// Pod selector.
    pub selector: Option<BTreeMap<String, String>>,
    /// Cluster IP.
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<String>,
}

/// A Service port.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServicePort {
    /// Port name.
    pub name: Option<String>,
    /// Service port.
    pub port: u16,
    /// Target port: a number or a container port name.
    pub target_port: Option<serde_json::Value>,
    /// `TCP` (default), `UDP`, `SCTP`.
    pub protocol: Option<String>,
    /// Application protocol (`kubernetes.io/h2c`, `http`, ...).
    pub app_protocol: Option<String>,
}

/// A core `Namespace` (only labels matter).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Namespace {
    /// Metadata (labels).
    pub metadata: ObjectMeta,
}

/// A `discovery.k8s.io/v1` `EndpointSlice`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointSlice {
    /// Metadata; label `kubernetes.io/service-name` names the owning Service.
    pub metadata: ObjectMeta,
    /// `IPv4`, `IPv6` or `FQDN`.
    pub address_type: Option<String>,
    /// Endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Ports (name, port = target port on the pod).
    pub ports: Vec<EndpointPort>,
}

impl EndpointSlice {
    /// The Service this slice belongs to (`kubernetes.io/service-name` label).
    pub fn service_name(&self) -> Option<&str> {
        self.metadata
            .labels
            .get("kubernetes.io/service-name")
            .map(String::as_str)
    }
}

/// One endpoint of an EndpointSlice.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Endpoint {
    /// Addresses (usually one IP).
    pub addresses: Vec<String>,
    /// Readiness conditions.
    pub conditions: Option<EndpointConditions>,
    /// The pod behind the endpoint.
    pub target_ref: Option<serde_json::Value>,
}

/// `Endpoint.conditions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointConditions {
    /// Ready (nil = ready).
    pub ready: Option<bool>,
    /// Serving.
    pub serving: Option<bool>,
    /// Terminating.
    pub terminating: Option<bool>,
}

/// An EndpointSlice port.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointPort {
    /// Port name (matches the Service port name).
    pub name: Option<String>,
    /// Port number on the endpoint.
    pub port: Option<u16>,
    /// Protocol.
    pub protocol: Option<String>,
}

/// Every object the engine was given, grouped by kind. The input of
/// [`crate::gateway::RouteIndex::compile`].
#[derive(Debug, Clone, Default)]
pub struct ObjectSet {
    /// GatewayClasses.
    pub gateway_classes: Vec<GatewayClass>,
    /// Gateways.
    pub gateways: Vec<Gateway>,
    /// ListenerSets (and XListenerSets).
    pub listener_sets: Vec<ListenerSet>,
    /// HTTPRoutes.
    pub http_routes: Vec<HttpRoute>,
    /// GRPCRoutes.
    pub grpc_routes: Vec<GrpcRoute>,
    /// ReferenceGrants.
    pub reference_grants: Vec<ReferenceGrant>,
    /// Services.
    pub services: Vec<Service>,
    /// Namespaces.
    pub namespaces: Vec<Namespace>,
    /// EndpointSlices.
    pub endpoint_slices: Vec<EndpointSlice>,
    /// Documents of other kinds, counted by `apiVersion/kind`.
    pub skipped: BTreeMap<String, usize>,
}

impl ObjectSet {
    /// Total number of objects held (skipped kinds not included).
    pub fn len(&self) -> usize {
        self.gateway_classes.len()
            + self.gateways.len()
            + self.listener_sets.len()
            + self.http_routes.len()
            + self.grpc_routes.len()
            + self.reference_grants.len()
            + self.services.len()
            + self.namespaces.len()
            + self.endpoint_slices.len()
    }

    /// True when no object is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
