//! Compiling an [`ObjectSet`] into an immutable [`RouteIndex`].
//!
//! Compilation does everything that does not depend on the request, once:
//! ListenerSet admission, listener conflicts, route attachment and its
//! `Accepted` condition per parentRef, hostname intersection, match and filter
//! validation, backendRef resolution (`ResolvedRefs`, ReferenceGrants), weights,
//! and the precedence order of every match. Each listener ends up with hostname
//! tables whose buckets hold match ids already sorted by precedence, so deciding a
//! request is a few hash lookups and a short scan (see [`super::decide`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::hostname;
use super::matcher::{
    anchored_regex, GrpcMatchCondition, GrpcNameCondition, HttpMatchCondition, PathCondition,
    ValueCondition,
};
use super::model::{
    AllowedRoutes, BackendObjectRef, Gateway, GrpcRoute, HttpBackendRef, HttpRoute,
    HttpRouteFilter, HttpRouteMatch, Listener, ObjectMeta, ObjectSet, ParentRef, PathModifier,
    RouteNamespaces, GATEWAY_GROUP, GATEWAY_X_GROUP,
};

/// Switches for behaviour the spec leaves to the implementation.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// Listener isolation (Extended feature `GatewayHTTPListenerIsolation`, on by
    /// default): only routes of the selected listener are considered. When off, a
    /// request no route of the most specific listener matches falls through to the
    /// next listener that accepts its host.
    pub listener_isolation: bool,
    /// Treat `ExternalName` Services as valid backends. The spec says they SHOULD
    /// NOT be supported (`apis/v1/object_reference_types.go`), so off by default.
    pub allow_external_name: bool,
    /// The version stamped on the index (monotonic per process).
    pub index_version: u64,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            listener_isolation: true,
            allow_external_name: false,
            index_version: 1,
        }
    }
}

/// Route kinds the engine decides for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKind {
    /// `HTTPRoute`.
    Http,
    /// `GRPCRoute`.
    Grpc,
}

impl RouteKind {
    /// The API kind name.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Http => "HTTPRoute",
            RouteKind::Grpc => "GRPCRoute",
        }
    }
}

/// A listener's protocol as far as HTTP routing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerProtocol {
    /// `HTTP`.
    Http,
    /// `HTTPS`.
    Https,
    /// `TLS`, `TCP`, `UDP` or an implementation-specific protocol: never serves
    /// HTTPRoutes/GRPCRoutes here.
    Other,
}

/// A compiled listener (of a Gateway or of a ListenerSet attached to it).
#[derive(Debug, Clone)]
pub struct CompiledListener {
    /// `namespace/owner/listener` where owner is the Gateway or ListenerSet.
    pub key: String,
    /// Listener name (`sectionName`).
    pub name: String,
    /// Index of the Gateway in [`RouteIndex::gateways`].
    pub gateway: usize,
    /// Whether the listener comes from a ListenerSet.
    pub from_listener_set: bool,
    /// Port.
    pub port: u16,
    /// Protocol as written.
    pub protocol_name: String,
    /// Protocol class.
    pub protocol: ListenerProtocol,
    /// Hostname (lower case); `None` = any.
    pub hostname: Option<String>,
    /// `Conflicted` reason (`HostnameConflict`, `ProtocolConflict`); a conflicted
    /// listener MUST NOT be used (`gateway_types.go`, "Handling indistinct Listeners").
    pub conflict: Option<&'static str>,
    /// HTTPRoute matches by hostname.
    pub http: HostTable,
    /// GRPCRoute matches by hostname.
    pub grpc: HostTable,
    /// Routes accepted on this listener (status `attachedRoutes`).
    pub attached_routes: usize,
    /// `allowedRoutes` as written.
    pub allowed_routes: Option<AllowedRoutes>,
}

/// Match ids bucketed by effective hostname; each bucket sorted by precedence.
#[derive(Debug, Clone, Default)]
pub struct HostTable {
    /// Exact hostnames.
    pub exact: HashMap<String, Vec<u32>>,
    /// Wildcards, keyed by the suffix without `*` (`.example.com`).
    pub wildcard: HashMap<String, Vec<u32>>,
    /// No hostname restriction.
    pub any: Vec<u32>,
}

impl HostTable {
    /// True when no route is attached.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty() && self.any.is_empty()
    }

    fn bucket_mut(&mut self, hostname: Option<&str>) -> &mut Vec<u32> {
        match hostname {
            None => &mut self.any,
            Some(h) if hostname::is_wildcard(h) => {
                self.wildcard.entry(h[1..].to_string()).or_default()
            }
            Some(h) => self.exact.entry(h.to_string()).or_default(),
        }
    }

    /// Every bucket with its hostname label (`None` = any), for audits.
    pub fn buckets(&self) -> impl Iterator<Item = (Option<String>, &Vec<u32>)> {
        self.exact
            .iter()
            .map(|(h, b)| (Some(h.clone()), b))
            .chain(
                self.wildcard
                    .iter()
                    .map(|(s, b)| (Some(format!("*{s}")), b)),
            )
            .chain(std::iter::once((None, &self.any)))
    }
}

/// A compiled Gateway.
#[derive(Debug, Clone)]
pub struct CompiledGateway {
    /// `namespace/name`.
    pub key: String,
    /// GatewayClass name.
    pub class_name: String,
    /// Listener indexes into [`RouteIndex::listeners`]: own listeners in spec order,
    /// then those of admitted ListenerSets (oldest first, then namespace/name).
    pub listeners: Vec<usize>,
    /// Per port, the usable (non-conflicted) HTTP/HTTPS listeners, most specific
    /// hostname first: `(port, protocol) -> listener indexes`.
    pub by_port: HashMap<(u16, bool), Vec<usize>>,
}

/// Why a backendRef is invalid (route `ResolvedRefs=False` reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefReason {
    /// Unsupported group/kind.
    InvalidKind,
    /// The referent (or its port) does not exist.
    BackendNotFound,
    /// Cross-namespace reference without a ReferenceGrant.
    RefNotPermitted,
}

impl RefReason {
    /// The API reason string.
    pub fn as_str(self) -> &'static str {
        match self {
            RefReason::InvalidKind => "InvalidKind",
            RefReason::BackendNotFound => "BackendNotFound",
            RefReason::RefNotPermitted => "RefNotPermitted",
        }
    }
}

/// A resolved backend reference (backendRef or mirror target).
#[derive(Debug, Clone)]
pub struct CompiledBackend {
    /// `Service`, or `group/Kind` for other kinds.
    pub kind: String,
    /// Namespace (defaulted).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `namespace/name`.
    pub key: String,
    /// Service port.
    pub port: Option<u16>,
    /// Weight (default 1; 0 = never).
    pub weight: u32,
    /// Resolved?
    pub invalid: Option<(RefReason, String)>,
    /// Backend-level RequestRedirect (answers instead of this backend).
    pub redirect: Option<RedirectSpec>,
    /// Backend-level URLRewrite.
    pub rewrite: Option<RewriteSpec>,
    /// Mirror percentage (mirrors only).
    pub mirror_percent: Option<f64>,
}

impl CompiledBackend {
    /// Whether the reference resolved.
    pub fn is_valid(&self) -> bool {
        self.invalid.is_none()
    }
}

/// A compiled RequestRedirect filter.
#[derive(Debug, Clone)]
pub struct RedirectSpec {
    /// Scheme override.
    pub scheme: Option<String>,
    /// Host override.
    pub hostname: Option<String>,
    /// Path modifier.
    pub path: Option<PathRewrite>,
    /// Port override.
    pub port: Option<u16>,
    /// Status code (default 302).
    pub status_code: u16,
}

/// A compiled URLRewrite filter.
#[derive(Debug, Clone)]
pub struct RewriteSpec {
    /// Host rewrite.
    pub hostname: Option<String>,
    /// Path rewrite.
    pub path: Option<PathRewrite>,
}

/// `HTTPPathModifier`.
#[derive(Debug, Clone)]
pub enum PathRewrite {
    /// Replace the whole path.
    Full(String),
    /// Replace the matched prefix (whole segments).
    Prefix(String),
}

/// What a rule does when it wins, independent of the request.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleAction {
    /// A rule-level RequestRedirect answers (no backend).
    Redirect,
    /// Forward to the weighted valid backends; `error_share` of the traffic goes
    /// to invalid backends and gets 500 (`httproute_types.go` BackendRefs, ~line 265).
    Forward {
        /// Share of requests answered 500 because their backend is invalid.
        error_share: f64,
    },
    /// Every request gets 500.
    Error {
        /// `NoBackends`, `AllBackendsInvalid` or `AllWeightsZero`.
        reason: &'static str,
    },
}

/// A compiled route rule.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    /// Index in the route's rules.
    pub index: usize,
    /// Rule name.
    pub name: Option<String>,
    /// Action.
    pub action: RuleAction,
    /// Backends in spec order.
    pub backends: Vec<CompiledBackend>,
    /// Rule-level redirect.
    pub redirect: Option<RedirectSpec>,
    /// Rule-level rewrite.
    pub rewrite: Option<RewriteSpec>,
    /// Mirror targets (never primary).
    pub mirrors: Vec<CompiledBackend>,
}

/// The computed status of one route parentRef.
#[derive(Debug, Clone)]
pub struct RouteParentStatus {
    /// Route index in [`RouteIndex::routes`].
    pub route: usize,
    /// Index of the parentRef in the route spec.
    pub parent_index: usize,
    /// The parentRef as written, namespace defaulted.
    pub parent_ref: ParentRef,
    /// `None` when the parent does not exist or is not a supported kind: the
    /// spec gives such refs no status entry at all.
    pub accepted: Option<(bool, &'static str, String)>,
    /// Listener indexes the route attached to through this ref.
    pub listeners: Vec<usize>,
}

/// A compiled route.
#[derive(Debug, Clone)]
pub struct CompiledRoute {
    /// Kind.
    pub kind: RouteKind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `namespace/name`.
    pub key: String,
    /// Creation time (unix seconds).
    pub created: Option<i64>,
    /// Rules.
    pub rules: Vec<CompiledRule>,
    /// `Accepted=False` reason for the whole route (invalid values/filters).
    pub invalid: Option<(&'static str, String)>,
    /// `ResolvedRefs`: `None` = True, else the first failure (reason, message).
    pub unresolved: Option<(RefReason, String)>,
    /// Hostnames as written.
    pub hostnames: Vec<String>,
    /// Status reported by the cluster, if the manifests carried it.
    pub cluster_status: Option<serde_json::Value>,
    /// `parentRefs` as written.
    pub parent_refs: Vec<ParentRef>,
}

/// A compiled match with the route/rule it belongs to.
#[derive(Debug, Clone)]
pub struct MatchEntry {
    /// Route index.
    pub route: u32,
    /// Rule index within the route.
    pub rule: u32,
    /// Match index within the rule (implicit default match = 0).
    pub index: u32,
    /// Whether the match was implicit (no `matches` / no `rules`).
    pub implicit: bool,
    /// The condition.
    pub condition: MatchCondition,
}

/// An HTTP or gRPC match condition.
#[derive(Debug, Clone)]
pub enum MatchCondition {
    /// HTTPRoute match.
    Http(HttpMatchCondition),
    /// GRPCRoute match.
    Grpc(GrpcMatchCondition),
}

/// A ReferenceGrant, with whether any reference used it.
#[derive(Debug, Clone)]
pub struct GrantUse {
    /// `namespace/name`.
    pub key: String,
    /// References it permitted (`route -> backend`).
    pub permitted: Vec<String>,
}

/// The compiled, immutable route-decision index.
#[derive(Debug, Clone)]
pub struct RouteIndex {
    /// Version stamped by the caller.
    pub version: u64,
    /// Options used.
    pub options: CompileOptions,
    /// Gateways.
    pub gateways: Vec<CompiledGateway>,
    /// Gateway key -> index.
    pub gateway_by_key: HashMap<String, usize>,
    /// All listeners.
    pub listeners: Vec<CompiledListener>,
    /// All routes (HTTP and gRPC), sorted by precedence order (oldest, then
    /// namespace/name).
    pub routes: Vec<CompiledRoute>,
    /// All matches; listener tables refer to these by index.
    pub matches: Vec<MatchEntry>,
    /// Computed status of every route parentRef.
    pub route_parents: Vec<RouteParentStatus>,
    /// ReferenceGrants and what they permitted.
    pub grants: Vec<GrantUse>,
    /// ListenerSets that were not admitted, with the reason.
    pub rejected_listener_sets: Vec<(String, String)>,
    /// Documents skipped while loading, by kind.
    pub skipped: BTreeMap<String, usize>,
    /// Route namespace -> name -> indexes into `routes` (both kinds), so that
    /// a route named in a log line is found without a scan.
    pub route_by_name: HashMap<String, HashMap<String, Vec<usize>>>,
}

/// A rule that failed validation makes the whole route `Accepted=False`.
struct RouteInvalid(&'static str, String);

const HTTP_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Lookup tables for validating references.
struct RefContext<'a> {
    services: HashMap<(&'a str, &'a str), &'a super::model::Service>,
    grants: HashMap<&'a str, Vec<usize>>,
    objects: &'a ObjectSet,
    allow_external_name: bool,
}

impl<'a> RefContext<'a> {
    fn new(objects: &'a ObjectSet, options: &CompileOptions) -> Self {
        let services = objects
            .services
            .iter()
            .map(|s| ((s.metadata.namespace.as_str(), s.metadata.name.as_str()), s))
            .collect();
        let mut grants: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, g) in objects.reference_grants.iter().enumerate() {
            grants
                .entry(g.metadata.namespace.as_str())
                .or_default()
                .push(i);
        }
        RefContext {
            services,
            grants,
            objects,
            allow_external_name: options.allow_external_name,
        }
    }

    /// Resolves one backend reference from a route of `kind` in `route_ns`.
    ///
    /// Order of checks: kind, then the ReferenceGrant for cross-namespace refs
    /// (before existence, so status never reveals whether a target in another
    /// namespace exists: `referencegrant.md`, "Implementation Guidelines"), then
    /// the Service and its port. Returns the grant that permitted the ref.
    fn resolve(
        &self,
        kind: RouteKind,
        route_ns: &str,
        target: &BackendObjectRef,
    ) -> (Option<(RefReason, String)>, Option<usize>) {
        let ns = target.namespace(route_ns);
        if target.group() != "" || target.kind() != "Service" {
            return (
                Some((
                    RefReason::InvalidKind,
                    format!(
                        "unsupported backend kind {}/{}",
                        target.group(),
                        target.kind()
                    ),
                )),
                None,
            );
        }
        let mut grant_used = None;
        if ns != route_ns {
            grant_used = self.grant_for(kind, route_ns, ns, "", "Service", &target.name);
            if grant_used.is_none() {
                return (
                    Some((
                        RefReason::RefNotPermitted,
                        format!(
                            "no ReferenceGrant in namespace {ns} allows {} from namespace {route_ns} to Service {}",
                            kind.as_str(),
                            target.name
                        ),
                    )),
                    None,
                );
            }
        }
        let Some(service) = self.services.get(&(ns, target.name.as_str())) else {
            return (
                Some((
                    RefReason::BackendNotFound,
                    format!("Service {ns}/{} not found", target.name),
                )),
                grant_used,
            );
        };
        if service.spec.service_type.as_deref() == Some("ExternalName") && !self.allow_external_name
        {
            return (
                Some((
                    RefReason::InvalidKind,
                    format!(
                        "Service {ns}/{} is of type ExternalName, which Gateway API implementations SHOULD NOT support",
                        target.name
                    ),
                )),
                grant_used,
            );
        }
        match target.port {
            None => (
                Some((
                    RefReason::BackendNotFound,
                    format!("backendRef to Service {ns}/{} has no port", target.name),
                )),
                grant_used,
            ),
            Some(p) if !service.spec.ports.iter().any(|sp| sp.port == p) => (
                Some((
                    RefReason::BackendNotFound,
                    format!("Service {ns}/{} has no port {p}", target.name),
                )),
                grant_used,
            ),
            Some(_) => (None, grant_used),
        }
    }

    /// The first ReferenceGrant in `target_ns` that lets a route of `kind` in
    /// `from_ns` refer to `to_group/to_kind/name`. Every field must match exactly
    /// (`referencegrant_types.go`); a `to` entry without a name covers all names.
    fn grant_for(
        &self,
        kind: RouteKind,
        from_ns: &str,
        target_ns: &str,
        to_group: &str,
        to_kind: &str,
        name: &str,
    ) -> Option<usize> {
        self.grants.get(target_ns)?.iter().copied().find(|&i| {
            let spec = &self.objects.reference_grants[i].spec;
            spec.from.iter().any(|f| {
                f.group == GATEWAY_GROUP && f.kind == kind.as_str() && f.namespace == from_ns
            }) && spec.to.iter().any(|t| {
                t.group == to_group
                    && t.kind == to_kind
                    && t.name.as_deref().is_none_or(|n| n == name)
            })
        })
    }
}

/// Where a listener comes from, for attachment.
struct ListenerOwner {
    /// `Gateway` or `ListenerSet`.
    kind: &'static str,
    namespace: String,
    name: String,
    listeners: Vec<usize>,
}

impl RouteIndex {
    /// Compiles the object set. Never fails: invalid objects become conditions
    /// and findings, as a controller would report them.
    pub fn compile(objects: &ObjectSet, options: CompileOptions) -> RouteIndex {
        let mut index = RouteIndex {
            version: options.index_version,
            options: options.clone(),
            gateways: Vec::new(),
            gateway_by_key: HashMap::new(),
            listeners: Vec::new(),
            routes: Vec::new(),
            matches: Vec::new(),
            route_parents: Vec::new(),
            grants: objects
                .reference_grants
                .iter()
                .map(|g| GrantUse {
                    key: g.metadata.key(),
                    permitted: Vec::new(),
                })
                .collect(),
            rejected_listener_sets: Vec::new(),
            skipped: objects.skipped.clone(),
            route_by_name: HashMap::new(),
        };
        let namespace_labels = namespace_labels(objects);
        let owners = index.compile_listeners(objects, &namespace_labels);
        let refs = RefContext::new(objects, &options);
        index.compile_routes(objects, &refs);
        index.attach_routes(&owners, &namespace_labels);
        index.sort_tables();
        for (i, route) in index.routes.iter().enumerate() {
            index
                .route_by_name
                .entry(route.namespace.clone())
                .or_default()
                .entry(route.name.clone())
                .or_default()
                .push(i);
        }
        index
    }

    /// Indexes into `routes` of the routes (of any kind) named `namespace/name`,
    /// in `routes` order.
    pub fn routes_named(&self, namespace: &str, name: &str) -> &[usize] {
        self.route_by_name
            .get(namespace)
            .and_then(|names| names.get(name))
            .map_or(&[], Vec::as_slice)
    }

    /// Gateways, ListenerSet admission and listener conflicts.
    fn compile_listeners(
        &mut self,
        objects: &ObjectSet,
        namespace_labels: &HashMap<String, BTreeMap<String, String>>,
    ) -> HashMap<(&'static str, String), ListenerOwner> {
        let mut owners = HashMap::new();
        let mut gateways: Vec<&Gateway> = objects.gateways.iter().collect();
        gateways.sort_by_key(|g| g.metadata.key());
        gateways.dedup_by(|a, b| a.metadata.key() == b.metadata.key());
        let mut listener_sets: Vec<_> = objects.listener_sets.iter().collect();
        listener_sets.sort_by(|a, b| creation_order(&a.metadata, &b.metadata));

        for gw in gateways {
            let gi = self.gateways.len();
            let key = gw.metadata.key();
            let mut own = Vec::new();
            for l in &gw.spec.listeners {
                own.push(self.push_listener(gi, &gw.metadata, l, false));
            }
            let mut all = own.clone();
            owners.insert(
                ("Gateway", key.clone()),
                ListenerOwner {
                    kind: "Gateway",
                    namespace: gw.metadata.namespace.clone(),
                    name: gw.metadata.name.clone(),
                    listeners: own,
                },
            );
            for ls in &listener_sets {
                let parent = &ls.spec.parent_ref;
                if parent.kind() != "Gateway"
                    || parent.group() != GATEWAY_GROUP
                    || parent.name != gw.metadata.name
                    || parent.namespace(&ls.metadata.namespace) != gw.metadata.namespace
                {
                    continue;
                }
                let policy = gw
                    .spec
                    .allowed_listeners
                    .as_ref()
                    .and_then(|a| a.namespaces.as_ref());
                // `allowedListeners.namespaces.from` defaults to None
                // (`gateway_types.go` AllowedListeners, ~line 328).
                let admitted = namespace_allowed(
                    policy,
                    "None",
                    &gw.metadata.namespace,
                    &ls.metadata.namespace,
                    namespace_labels,
                );
                if !admitted {
                    self.rejected_listener_sets.push((
                        ls.metadata.key(),
                        format!("Gateway {key} does not allow ListenerSets from namespace {} (spec.allowedListeners)", ls.metadata.namespace),
                    ));
                    continue;
                }
                let mut set_listeners = Vec::new();
                for l in &ls.spec.listeners {
                    set_listeners.push(self.push_listener(gi, &ls.metadata, l, true));
                }
                all.extend(&set_listeners);
                owners.insert(
                    ("ListenerSet", ls.metadata.key()),
                    ListenerOwner {
                        kind: "ListenerSet",
                        namespace: ls.metadata.namespace.clone(),
                        name: ls.metadata.name.clone(),
                        listeners: set_listeners,
                    },
                );
            }
            self.mark_conflicts(&all);
            self.gateway_by_key.insert(key.clone(), gi);
            self.gateways.push(CompiledGateway {
                key,
                class_name: gw.spec.gateway_class_name.clone(),
                listeners: all,
                by_port: HashMap::new(),
            });
        }
        for gi in 0..self.gateways.len() {
            let mut by_port: HashMap<(u16, bool), Vec<usize>> = HashMap::new();
            for &li in &self.gateways[gi].listeners {
                let l = &self.listeners[li];
                let tls = match l.protocol {
                    ListenerProtocol::Http => false,
                    ListenerProtocol::Https => true,
                    ListenerProtocol::Other => continue,
                };
                if l.conflict.is_none() {
                    by_port.entry((l.port, tls)).or_default().push(li);
                }
            }
            for list in by_port.values_mut() {
                list.sort_by(|&a, &b| {
                    hostname::specificity_order(
                        self.listeners[a].hostname.as_deref(),
                        self.listeners[b].hostname.as_deref(),
                    )
                    .then(a.cmp(&b))
                });
            }
            self.gateways[gi].by_port = by_port;
        }
        owners
    }

    fn push_listener(
        &mut self,
        gateway: usize,
        owner: &ObjectMeta,
        l: &Listener,
        from_listener_set: bool,
    ) -> usize {
        let protocol = match l.protocol.as_str() {
            "HTTP" => ListenerProtocol::Http,
            "HTTPS" => ListenerProtocol::Https,
            _ => ListenerProtocol::Other,
        };
        self.listeners.push(CompiledListener {
            key: format!("{}/{}/{}", owner.namespace, owner.name, l.name),
            name: l.name.clone(),
            gateway,
            from_listener_set,
            port: l.port,
            protocol_name: l.protocol.clone(),
            protocol,
            hostname: l.hostname.as_ref().map(|h| h.to_ascii_lowercase()),
            conflict: None,
            http: HostTable::default(),
            grpc: HostTable::default(),
            attached_routes: 0,
            allowed_routes: l.allowed_routes.clone(),
        });
        self.listeners.len() - 1
    }

    /// Marks listeners that are not distinct (`gateway_types.go`, "Distinct
    /// Listeners"): on one port, HTTP may not mix with HTTPS/TLS or TCP/UDP, and
    /// listeners of the same protocol family need distinct hostnames (TCP/UDP:
    /// distinct ports). Both Gateway listeners of a conflicting pair are marked;
    /// a ListenerSet listener conflicting with an earlier listener is the one
    /// marked (parent listeners win, GEP-1713).
    fn mark_conflicts(&mut self, ordered: &[usize]) {
        fn family(p: &str) -> &str {
            match p {
                "HTTP" => "http",
                "HTTPS" | "TLS" => "tls",
                other => other,
            }
        }
        for (i, &a) in ordered.iter().enumerate() {
            for &b in &ordered[i + 1..] {
                let (la, lb) = (&self.listeners[a], &self.listeners[b]);
                if la.port != lb.port {
                    continue;
                }
                let (fa, fb) = (family(&la.protocol_name), family(&lb.protocol_name));
                let conflict = if fa != fb {
                    // TCP and UDP may share a port number (different transports).
                    let transports = [fa, fb];
                    if transports.contains(&"TCP") && transports.contains(&"UDP") {
                        None
                    } else {
                        Some("ProtocolConflict")
                    }
                } else if fa == "http" || fa == "tls" {
                    (la.hostname == lb.hostname).then_some("HostnameConflict")
                } else {
                    Some("ProtocolConflict")
                };
                if let Some(reason) = conflict {
                    if !lb.from_listener_set || la.from_listener_set {
                        self.listeners[a].conflict.get_or_insert(reason);
                    }
                    self.listeners[b].conflict.get_or_insert(reason);
                }
            }
        }
    }

    /// Compiles every route's rules, matches and backends.
    fn compile_routes(&mut self, objects: &ObjectSet, refs: &RefContext<'_>) {
        let mut order: Vec<(RouteKind, usize, &ObjectMeta)> = objects
            .http_routes
            .iter()
            .enumerate()
            .map(|(i, r)| (RouteKind::Http, i, &r.metadata))
            .chain(
                objects
                    .grpc_routes
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (RouteKind::Grpc, i, &r.metadata)),
            )
            .collect();
        // Precedence ties across routes: oldest creationTimestamp, then
        // "namespace/name" alphabetically (`httproute_types.go` ~line 200).
        order.sort_by(|a, b| creation_order(a.2, b.2).then(a.0.cmp(&b.0)));
        let mut seen = HashSet::new();
        for (kind, i, _) in order {
            let compiled = match kind {
                RouteKind::Http => self.compile_http_route(&objects.http_routes[i], refs),
                RouteKind::Grpc => self.compile_grpc_route(&objects.grpc_routes[i], refs),
            };
            // Duplicate objects (same kind/namespace/name in several files): first wins.
            if seen.insert((kind, compiled.key.clone())) {
                self.routes.push(compiled);
            }
        }
    }

    fn compile_http_route(&mut self, route: &HttpRoute, refs: &RefContext<'_>) -> CompiledRoute {
        let ns = &route.metadata.namespace;
        let route_id = self.routes.len() as u32;
        let mut compiled = new_route(RouteKind::Http, &route.metadata, &route.spec.hostnames);
        compiled.cluster_status = route.status.clone();
        compiled.parent_refs = route.spec.parent_refs.clone();
        // Omitted rules: the CRD default is one rule matching `PathPrefix /` with
        // no backends (`httproute_types.go` Rules, ~lines 121-135).
        let default_rules = [super::model::HttpRouteRule::default()];
        let rules = route.spec.rules.as_deref().unwrap_or(&default_rules);
        let first_match = self.matches.len();
        for (ri, rule) in rules.iter().enumerate() {
            let result = (|| -> Result<CompiledRule, RouteInvalid> {
                let default_match = [HttpRouteMatch::default()];
                let implicit = rule.matches.is_empty();
                let matches = if implicit {
                    &default_match[..]
                } else {
                    &rule.matches[..]
                };
                let mut prefix_matches = 0;
                for (mi, m) in matches.iter().enumerate() {
                    let condition = compile_http_match(m)?;
                    if matches!(condition.path, PathCondition::Prefix(_)) {
                        prefix_matches += 1;
                    }
                    self.matches.push(MatchEntry {
                        route: route_id,
                        rule: ri as u32,
                        index: mi as u32,
                        implicit,
                        condition: MatchCondition::Http(condition),
                    });
                }
                let backends = rule.backend_refs.as_deref().unwrap_or(&[]);
                let filters =
                    compile_filters(&rule.filters, RouteKind::Http, !backends.is_empty())?;
                let path_modifiers = [
                    filters.redirect.as_ref().and_then(|r| r.path.as_ref()),
                    filters.rewrite.as_ref().and_then(|r| r.path.as_ref()),
                ];
                for modifier in path_modifiers.into_iter().flatten() {
                    require_single_prefix(modifier, prefix_matches, matches.len())?;
                }
                compile_rule(
                    ri,
                    rule.name.clone(),
                    filters,
                    backends,
                    RouteKind::Http,
                    ns,
                    refs,
                    self,
                )
            })();
            match result {
                Ok(r) => compiled.rules.push(r),
                Err(RouteInvalid(reason, msg)) => {
                    compiled
                        .invalid
                        .get_or_insert((reason, format!("rule {ri}: {msg}")));
                }
            }
        }
        if compiled.invalid.is_some() {
            self.matches.truncate(first_match);
        }
        compiled.unresolved = first_unresolved(&compiled.rules);
        compiled
    }

    fn compile_grpc_route(&mut self, route: &GrpcRoute, refs: &RefContext<'_>) -> CompiledRoute {
        let ns = &route.metadata.namespace;
        let route_id = self.routes.len() as u32;
        let mut compiled = new_route(RouteKind::Grpc, &route.metadata, &route.spec.hostnames);
        compiled.cluster_status = route.status.clone();
        compiled.parent_refs = route.spec.parent_refs.clone();
        let first_match = self.matches.len();
        for (ri, rule) in route.spec.rules.iter().enumerate() {
            let result = (|| -> Result<CompiledRule, RouteInvalid> {
                let implicit = rule.matches.is_empty();
                if implicit {
                    // No matches: every gRPC request matches (`grpcroute_types.go`).
                    self.matches.push(MatchEntry {
                        route: route_id,
                        rule: ri as u32,
                        index: 0,
                        implicit,
                        condition: MatchCondition::Grpc(GrpcMatchCondition {
                            service: None,
                            method: None,
                            headers: Vec::new(),
                        }),
                    });
                }
                for (mi, m) in rule.matches.iter().enumerate() {
                    let condition = compile_grpc_match(m)?;
                    self.matches.push(MatchEntry {
                        route: route_id,
                        rule: ri as u32,
                        index: mi as u32,
                        implicit,
                        condition: MatchCondition::Grpc(condition),
                    });
                }
                let backends = rule.backend_refs.as_deref().unwrap_or(&[]);
                let filters =
                    compile_filters(&rule.filters, RouteKind::Grpc, !backends.is_empty())?;
                compile_rule(
                    ri,
                    rule.name.clone(),
                    filters,
                    backends,
                    RouteKind::Grpc,
                    ns,
                    refs,
                    self,
                )
            })();
            match result {
                Ok(r) => compiled.rules.push(r),
                Err(RouteInvalid(reason, msg)) => {
                    compiled
                        .invalid
                        .get_or_insert((reason, format!("rule {ri}: {msg}")));
                }
            }
        }
        if compiled.invalid.is_some() {
            self.matches.truncate(first_match);
        }
        compiled.unresolved = first_unresolved(&compiled.rules);
        compiled
    }

    /// Route attachment per parentRef (`shared_types.go` ParentReference,
    /// `gateway_types.go` AllowedRoutes) and hostname intersection; fills the
    /// listeners' host tables.
    fn attach_routes(
        &mut self,
        owners: &HashMap<(&'static str, String), ListenerOwner>,
        namespace_labels: &HashMap<String, BTreeMap<String, String>>,
    ) {
        // Matches grouped by route for table insertion.
        let mut matches_by_route: HashMap<u32, Vec<u32>> = HashMap::new();
        for (mi, m) in self.matches.iter().enumerate() {
            matches_by_route.entry(m.route).or_default().push(mi as u32);
        }
        let specs: Vec<Vec<ParentRef>> =
            self.routes.iter().map(|r| r.parent_refs.clone()).collect();
        for (ri, parent_refs) in specs.into_iter().enumerate() {
            let mut attached_listeners: HashSet<usize> = HashSet::new();
            let kind = self.routes[ri].kind;
            for (pi, pref) in parent_refs.into_iter().enumerate() {
                let route = &self.routes[ri];
                let mut status = RouteParentStatus {
                    route: ri,
                    parent_index: pi,
                    parent_ref: ParentRef {
                        namespace: Some(pref.namespace(&route.namespace).to_string()),
                        ..pref.clone()
                    },
                    accepted: None,
                    listeners: Vec::new(),
                };
                let owner_kind = match (pref.group(), pref.kind()) {
                    (GATEWAY_GROUP, "Gateway") => Some("Gateway"),
                    (GATEWAY_GROUP | GATEWAY_X_GROUP, "ListenerSet" | "XListenerSet") => {
                        Some("ListenerSet")
                    }
                    _ => None,
                };
                let owner = owner_kind.and_then(|k| {
                    owners.get(&(
                        k,
                        format!("{}/{}", pref.namespace(&route.namespace), pref.name),
                    ))
                });
                if let Some(owner) = owner {
                    let (accepted, listeners) = self.attach_one(ri, &pref, owner, namespace_labels);
                    status.accepted = Some(accepted);
                    status.listeners = listeners;
                }
                for &li in &status.listeners {
                    if attached_listeners.insert(li) {
                        self.listeners[li].attached_routes += 1;
                        let hostnames = effective_hostnames(
                            self.listeners[li].hostname.as_deref(),
                            &self.routes[ri].hostnames,
                        );
                        let listener = &mut self.listeners[li];
                        let table = match kind {
                            RouteKind::Http => &mut listener.http,
                            RouteKind::Grpc => &mut listener.grpc,
                        };
                        for h in &hostnames {
                            let bucket = table.bucket_mut(h.as_deref());
                            bucket.extend(matches_by_route.get(&(ri as u32)).into_iter().flatten());
                        }
                    }
                }
                self.route_parents.push(status);
            }
        }
    }

    /// Attaches route `ri` through one parentRef to `owner`'s listeners.
    fn attach_one(
        &self,
        ri: usize,
        pref: &ParentRef,
        owner: &ListenerOwner,
        namespace_labels: &HashMap<String, BTreeMap<String, String>>,
    ) -> ((bool, &'static str, String), Vec<usize>) {
        let route = &self.routes[ri];
        let selected: Vec<usize> = owner
            .listeners
            .iter()
            .copied()
            .filter(|&li| {
                let l = &self.listeners[li];
                pref.section_name.as_ref().is_none_or(|s| *s == l.name)
                    && pref.port.is_none_or(|p| p == l.port)
            })
            .collect();
        if selected.is_empty() {
            return (
                (
                    false,
                    "NoMatchingParent",
                    format!(
                        "{} {}/{} has no listener{}{}",
                        owner.kind,
                        owner.namespace,
                        owner.name,
                        pref.section_name
                            .as_ref()
                            .map(|s| format!(" named {s}"))
                            .unwrap_or_default(),
                        pref.port
                            .map(|p| format!(" on port {p}"))
                            .unwrap_or_default()
                    ),
                ),
                Vec::new(),
            );
        }
        let allowed: Vec<usize> = selected
            .into_iter()
            .filter(|&li| {
                let l = &self.listeners[li];
                let allowed_routes = l.allowed_routes.as_ref();
                kind_allowed(
                    l,
                    allowed_routes.map(|a| &a.kinds[..]).unwrap_or(&[]),
                    route.kind,
                ) && namespace_allowed(
                    allowed_routes.and_then(|a| a.namespaces.as_ref()),
                    "Same",
                    &owner.namespace,
                    &route.namespace,
                    namespace_labels,
                )
            })
            .collect();
        if allowed.is_empty() {
            return (
                (
                    false,
                    "NotAllowedByListeners",
                    format!(
                        "no selected listener of {} {}/{} allows {} from namespace {}",
                        owner.kind,
                        owner.namespace,
                        owner.name,
                        route.kind.as_str(),
                        route.namespace
                    ),
                ),
                Vec::new(),
            );
        }
        let with_hosts: Vec<usize> = allowed
            .into_iter()
            .filter(|&li| {
                !effective_hostnames(self.listeners[li].hostname.as_deref(), &route.hostnames)
                    .is_empty()
            })
            .collect();
        if with_hosts.is_empty() {
            return (
                (
                    false,
                    "NoMatchingListenerHostname",
                    "no route hostname intersects a listener hostname".to_string(),
                ),
                Vec::new(),
            );
        }
        if let Some((reason, msg)) = &route.invalid {
            return ((false, reason, msg.clone()), Vec::new());
        }
        (
            (true, "Accepted", "route is accepted".to_string()),
            with_hosts,
        )
    }

    /// Sorts every bucket by precedence (`httproute_types.go` ~lines 184-210;
    /// `grpcroute_types.go` ~line 195).
    fn sort_tables(&mut self) {
        let matches = &self.matches;
        let key = |id: &u32| precedence_key(&matches[*id as usize]);
        for l in &mut self.listeners {
            for table in [&mut l.http, &mut l.grpc] {
                for bucket in table
                    .exact
                    .values_mut()
                    .chain(table.wildcard.values_mut())
                    .chain(std::iter::once(&mut table.any))
                {
                    bucket.sort_by_cached_key(key);
                    bucket.dedup();
                }
            }
        }
    }

    /// The route a match belongs to.
    pub fn route_of(&self, entry: &MatchEntry) -> &CompiledRoute {
        &self.routes[entry.route as usize]
    }

    /// The rule a match belongs to; `None` if the route's rule was dropped.
    pub fn rule_of(&self, entry: &MatchEntry) -> Option<&CompiledRule> {
        self.routes[entry.route as usize]
            .rules
            .iter()
            .find(|r| r.index == entry.rule as usize)
    }
}

/// The sort key of a match within one hostname bucket. Lower sorts first.
///
/// HTTPRoute: Exact path, then longest prefix (regexes last), then a method,
/// then most headers, then most query params, then route order (oldest, then
/// namespace/name), then rule order. GRPCRoute: most characters in the service,
/// then in the method, then most headers, then route order, then rule order.
pub fn precedence_key(entry: &MatchEntry) -> (u8, usize, u8, usize, usize, u32, u32, u32) {
    let inv = |n: usize| usize::MAX - n;
    match &entry.condition {
        MatchCondition::Http(m) => (
            m.path.class(),
            inv(m.path.value().len()),
            u8::from(m.method.is_none()),
            inv(m.headers.len()),
            inv(m.query.len()),
            entry.route,
            entry.rule,
            entry.index,
        ),
        MatchCondition::Grpc(m) => (
            0,
            inv(m.service.as_ref().map_or(0, GrpcNameCondition::char_count)),
            0,
            inv(m.method.as_ref().map_or(0, GrpcNameCondition::char_count)),
            inv(m.headers.len()),
            entry.route,
            entry.rule,
            entry.index,
        ),
    }
}

fn new_route(kind: RouteKind, meta: &ObjectMeta, hostnames: &[String]) -> CompiledRoute {
    CompiledRoute {
        kind,
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
        key: meta.key(),
        created: meta.created_unix(),
        rules: Vec::new(),
        invalid: None,
        unresolved: None,
        hostnames: hostnames.iter().map(|h| h.to_ascii_lowercase()).collect(),
        cluster_status: None,
        parent_refs: Vec::new(),
    }
}

/// The effective hostnames of a route on a listener: the intersections, or the
/// listener hostname when the route has none.
pub fn effective_hostnames(listener: Option<&str>, route: &[String]) -> Vec<Option<String>> {
    if route.is_empty() {
        return vec![listener.map(str::to_string)];
    }
    let mut out: Vec<Option<String>> = route
        .iter()
        .filter_map(|h| hostname::intersect(listener, h).map(Some))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether a listener accepts routes of `kind`: the explicit `allowedRoutes.kinds`,
/// else the kinds its protocol implies (HTTP/HTTPS: HTTPRoute and GRPCRoute).
fn kind_allowed(
    l: &CompiledListener,
    kinds: &[super::model::RouteGroupKind],
    kind: RouteKind,
) -> bool {
    if l.protocol == ListenerProtocol::Other {
        return false;
    }
    kinds.is_empty()
        || kinds.iter().any(|k| {
            k.group.as_deref().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP && k.kind == kind.as_str()
        })
}

/// Whether namespace `candidate` passes a `RouteNamespaces` policy of an owner in
/// `owner_ns`. Unknown `from` values allow nothing.
fn namespace_allowed(
    policy: Option<&RouteNamespaces>,
    default_from: &str,
    owner_ns: &str,
    candidate: &str,
    namespace_labels: &HashMap<String, BTreeMap<String, String>>,
) -> bool {
    let from = policy
        .and_then(|p| p.from.as_deref())
        .unwrap_or(default_from);
    match from {
        "Same" => owner_ns == candidate,
        "All" => true,
        "Selector" => {
            let Some(selector) = policy.and_then(|p| p.selector.as_ref()) else {
                return false;
            };
            let implicit;
            let labels = match namespace_labels.get(candidate) {
                Some(l) => l,
                None => {
                    implicit = BTreeMap::from([(
                        "kubernetes.io/metadata.name".to_string(),
                        candidate.to_string(),
                    )]);
                    &implicit
                }
            };
            selector.matches(labels)
        }
        _ => false,
    }
}

/// Namespace labels, with the `kubernetes.io/metadata.name` label Kubernetes sets
/// on every namespace.
fn namespace_labels(objects: &ObjectSet) -> HashMap<String, BTreeMap<String, String>> {
    objects
        .namespaces
        .iter()
        .map(|n| {
            let mut labels = n.metadata.labels.clone();
            labels
                .entry("kubernetes.io/metadata.name".into())
                .or_insert_with(|| n.metadata.name.clone());
            (n.metadata.name.clone(), labels)
        })
        .collect()
}

/// Oldest first (objects without a timestamp last), then namespace/name.
fn creation_order(a: &ObjectMeta, b: &ObjectMeta) -> std::cmp::Ordering {
    let ts = |m: &ObjectMeta| m.created_unix().unwrap_or(i64::MAX);
    ts(a)
        .cmp(&ts(b))
        .then_with(|| a.namespace.cmp(&b.namespace))
        .then_with(|| a.name.cmp(&b.name))
}

fn unsupported(msg: String) -> RouteInvalid {
    RouteInvalid("UnsupportedValue", msg)
}

fn value_condition(
    match_type: Option<&str>,
    value: &str,
    what: &str,
) -> Result<ValueCondition, RouteInvalid> {
    match match_type.unwrap_or("Exact") {
        "Exact" => Ok(ValueCondition::Exact(value.to_string())),
        "RegularExpression" => anchored_regex(value)
            .map(ValueCondition::Regex)
            .map_err(|e| unsupported(format!("invalid {what} regular expression {value:?}: {e}"))),
        other => Err(unsupported(format!(
            "unsupported {what} match type {other:?}"
        ))),
    }
}

fn compile_http_match(m: &HttpRouteMatch) -> Result<HttpMatchCondition, RouteInvalid> {
    let (ptype, pvalue) = m
        .path
        .as_ref()
        .map(|p| (p.match_type.as_deref(), p.value.as_deref()))
        .unwrap_or((None, None));
    let pvalue = pvalue.unwrap_or("/");
    let path = match ptype.unwrap_or("PathPrefix") {
        "Exact" | "PathPrefix" if !pvalue.starts_with('/') => {
            return Err(unsupported(format!(
                "path value {pvalue:?} must start with '/'"
            )))
        }
        "Exact" => PathCondition::Exact(pvalue.to_string()),
        "PathPrefix" => PathCondition::prefix(pvalue),
        "RegularExpression" => PathCondition::Regex(
            anchored_regex(pvalue).map_err(|e| {
                unsupported(format!("invalid path regular expression {pvalue:?}: {e}"))
            })?,
            pvalue.to_string(),
        ),
        other => {
            return Err(unsupported(format!(
                "unsupported path match type {other:?}"
            )))
        }
    };
    let method = match &m.method {
        Some(method) if !HTTP_METHODS.contains(&method.as_str()) => {
            return Err(unsupported(format!("unsupported method {method:?}")))
        }
        other => other.clone(),
    };
    let mut headers: Vec<(String, ValueCondition)> = Vec::new();
    for h in &m.headers {
        let name = h.name.to_ascii_lowercase();
        // Several entries with equivalent names: only the first counts (HTTPHeaderMatch).
        if headers.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let cond = value_condition(h.match_type.as_deref(), &h.value, "header")?;
        headers.push((name, cond));
    }
    let mut query: Vec<(String, ValueCondition)> = Vec::new();
    for q in &m.query_params {
        if query.iter().any(|(n, _)| *n == q.name) {
            continue;
        }
        let cond = value_condition(q.match_type.as_deref(), &q.value, "query parameter")?;
        query.push((q.name.clone(), cond));
    }
    Ok(HttpMatchCondition {
        path,
        method,
        headers,
        query,
    })
}

fn compile_grpc_match(
    m: &super::model::GrpcRouteMatch,
) -> Result<GrpcMatchCondition, RouteInvalid> {
    let (service, method) = match &m.method {
        None => (None, None),
        Some(mm) => {
            if mm.service.is_none() && mm.method.is_none() {
                return Err(unsupported(
                    "GRPCMethodMatch must set service or method".to_string(),
                ));
            }
            let make = |v: &Option<String>| -> Result<Option<GrpcNameCondition>, RouteInvalid> {
                let Some(v) = v else { return Ok(None) };
                match mm.match_type.as_deref().unwrap_or("Exact") {
                    "Exact" => Ok(Some(GrpcNameCondition::Exact(v.clone()))),
                    "RegularExpression" => anchored_regex(v)
                        .map(|re| Some(GrpcNameCondition::Regex(re, v.clone())))
                        .map_err(|e| {
                            unsupported(format!("invalid gRPC regular expression {v:?}: {e}"))
                        }),
                    other => Err(unsupported(format!(
                        "unsupported gRPC method match type {other:?}"
                    ))),
                }
            };
            (make(&mm.service)?, make(&mm.method)?)
        }
    };
    let mut headers: Vec<(String, ValueCondition)> = Vec::new();
    for h in &m.headers {
        let name = h.name.to_ascii_lowercase();
        if headers.iter().any(|(n, _)| *n == name) {
            continue;
        }
        headers.push((
            name,
            value_condition(h.match_type.as_deref(), &h.value, "header")?,
        ));
    }
    Ok(GrpcMatchCondition {
        service,
        method,
        headers,
    })
}

/// The routing-relevant filters of a rule (or backendRef).
#[derive(Default)]
struct Filters<'a> {
    redirect: Option<RedirectSpec>,
    rewrite: Option<RewriteSpec>,
    mirrors: Vec<(&'a BackendObjectRef, Option<f64>)>,
}

/// Validates and compiles filters (`httproute_types.go` HTTPRouteFilter, ~line 824).
///
/// Each core filter type may appear once (RequestMirror and ExtensionRef may
/// repeat); URLRewrite and RequestRedirect are incompatible; a RequestRedirect
/// cannot coexist with backendRefs. Violations give `IncompatibleFilters`; an
/// unknown type gives `UnsupportedValue`.
fn compile_filters(
    filters: &[HttpRouteFilter],
    kind: RouteKind,
    has_backends: bool,
) -> Result<Filters<'_>, RouteInvalid> {
    let mut out = Filters::default();
    let mut seen: HashSet<&str> = HashSet::new();
    for f in filters {
        let t = f.filter_type.as_str();
        let allowed = match kind {
            RouteKind::Http => matches!(
                t,
                "RequestHeaderModifier"
                    | "ResponseHeaderModifier"
                    | "RequestMirror"
                    | "RequestRedirect"
                    | "URLRewrite"
                    | "ExtensionRef"
                    | "CORS"
                    | "ExternalAuth"
            ),
            RouteKind::Grpc => matches!(
                t,
                "RequestHeaderModifier"
                    | "ResponseHeaderModifier"
                    | "RequestMirror"
                    | "ExtensionRef"
            ),
        };
        if !allowed {
            return Err(unsupported(format!(
                "unsupported filter type {t:?} for {}",
                kind.as_str()
            )));
        }
        if !matches!(t, "RequestMirror" | "ExtensionRef") && !seen.insert(t) {
            return Err(RouteInvalid(
                "IncompatibleFilters",
                format!("filter {t} appears more than once"),
            ));
        }
        match t {
            "RequestRedirect" => {
                let r = f.request_redirect.as_ref().ok_or_else(|| {
                    unsupported("RequestRedirect filter without requestRedirect".into())
                })?;
                let status_code = r.status_code.unwrap_or(302);
                if ![301, 302, 303, 307, 308].contains(&status_code) {
                    return Err(unsupported(format!(
                        "unsupported redirect status {status_code}"
                    )));
                }
                if let Some(s) = &r.scheme {
                    if s != "http" && s != "https" {
                        return Err(unsupported(format!("unsupported redirect scheme {s:?}")));
                    }
                }
                out.redirect = Some(RedirectSpec {
                    scheme: r.scheme.clone(),
                    hostname: r.hostname.clone(),
                    path: r.path.as_ref().map(path_rewrite).transpose()?,
                    port: r.port,
                    status_code,
                });
            }
            "URLRewrite" => {
                let r = f
                    .url_rewrite
                    .as_ref()
                    .ok_or_else(|| unsupported("URLRewrite filter without urlRewrite".into()))?;
                out.rewrite = Some(RewriteSpec {
                    hostname: r.hostname.clone(),
                    path: r.path.as_ref().map(path_rewrite).transpose()?,
                });
            }
            "RequestMirror" => {
                let m = f.request_mirror.as_ref().ok_or_else(|| {
                    unsupported("RequestMirror filter without requestMirror".into())
                })?;
                let percent = m.percent.map(f64::from).or_else(|| {
                    m.fraction.as_ref().map(|fr| {
                        let d = fr.denominator.unwrap_or(100).max(1);
                        100.0 * f64::from(fr.numerator) / f64::from(d)
                    })
                });
                out.mirrors.push((&m.backend_ref, percent));
            }
            _ => {}
        }
    }
    if out.redirect.is_some() && out.rewrite.is_some() {
        return Err(RouteInvalid(
            "IncompatibleFilters",
            "RequestRedirect and URLRewrite cannot be combined".into(),
        ));
    }
    if out.redirect.is_some() && has_backends {
        return Err(RouteInvalid(
            "IncompatibleFilters",
            "RequestRedirect cannot be used with backendRefs".into(),
        ));
    }
    Ok(out)
}

fn path_rewrite(p: &PathModifier) -> Result<PathRewrite, RouteInvalid> {
    match p.modifier_type.as_str() {
        "ReplaceFullPath" => Ok(PathRewrite::Full(
            p.replace_full_path.clone().unwrap_or_else(|| "/".into()),
        )),
        "ReplacePrefixMatch" => Ok(PathRewrite::Prefix(
            p.replace_prefix_match.clone().unwrap_or_else(|| "/".into()),
        )),
        other => Err(unsupported(format!("unsupported path modifier {other:?}"))),
    }
}

/// `ReplacePrefixMatch` needs exactly one `PathPrefix` match in the rule
/// (`httproute_types.go` HTTPPathModifier, CEL).
fn require_single_prefix(
    p: &PathRewrite,
    prefix_matches: usize,
    total: usize,
) -> Result<(), RouteInvalid> {
    if matches!(p, PathRewrite::Prefix(_)) && (prefix_matches != 1 || total != 1) {
        return Err(RouteInvalid(
            "IncompatibleFilters",
            "ReplacePrefixMatch requires exactly one PathPrefix match".into(),
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn compile_rule(
    index: usize,
    name: Option<String>,
    filters: Filters<'_>,
    backend_refs: &[HttpBackendRef],
    kind: RouteKind,
    route_ns: &str,
    refs: &RefContext<'_>,
    idx: &mut RouteIndex,
) -> Result<CompiledRule, RouteInvalid> {
    let route_key = |target: &BackendObjectRef| {
        format!(
            "{route_ns} -> {}/{}",
            target.namespace(route_ns),
            target.name
        )
    };
    let resolve = |target: &BackendObjectRef, idx: &mut RouteIndex| {
        let (invalid, grant) = refs.resolve(kind, route_ns, target);
        if let Some(g) = grant {
            idx.grants[g].permitted.push(route_key(target));
        }
        invalid
    };
    let mut backends = Vec::new();
    let mut mirrors = Vec::new();
    for (target, percent) in &filters.mirrors {
        let invalid = resolve(target, idx);
        mirrors.push(backend(
            target,
            route_ns,
            0,
            invalid,
            Some(percent.unwrap_or(100.0)),
        ));
    }
    for b in backend_refs {
        let bf = compile_filters(&b.filters, kind, false)?;
        for (target, percent) in &bf.mirrors {
            let invalid = resolve(target, idx);
            mirrors.push(backend(
                target,
                route_ns,
                0,
                invalid,
                Some(percent.unwrap_or(100.0)),
            ));
        }
        let invalid = resolve(&b.target, idx);
        let mut cb = backend(&b.target, route_ns, b.weight.unwrap_or(1), invalid, None);
        cb.redirect = bf.redirect;
        cb.rewrite = bf.rewrite;
        backends.push(cb);
    }
    let total: u64 = backends.iter().map(|b| u64::from(b.weight)).sum();
    let valid: u64 = backends
        .iter()
        .filter(|b| b.is_valid())
        .map(|b| u64::from(b.weight))
        .sum();
    let action = if filters.redirect.is_some() {
        RuleAction::Redirect
    } else if backends.is_empty() {
        RuleAction::Error {
            reason: "NoBackends",
        }
    } else if total == 0 {
        RuleAction::Error {
            reason: "AllWeightsZero",
        }
    } else if valid == 0 {
        RuleAction::Error {
            reason: "AllBackendsInvalid",
        }
    } else {
        RuleAction::Forward {
            error_share: (total - valid) as f64 / total as f64,
        }
    };
    Ok(CompiledRule {
        index,
        name,
        action,
        backends,
        redirect: filters.redirect,
        rewrite: filters.rewrite,
        mirrors,
    })
}

fn backend(
    target: &BackendObjectRef,
    route_ns: &str,
    weight: u32,
    invalid: Option<(RefReason, String)>,
    mirror_percent: Option<f64>,
) -> CompiledBackend {
    let namespace = target.namespace(route_ns).to_string();
    let kind = if target.group().is_empty() {
        target.kind().to_string()
    } else {
        format!("{}/{}", target.group(), target.kind())
    };
    CompiledBackend {
        key: format!("{namespace}/{}", target.name),
        kind,
        namespace,
        name: target.name.clone(),
        port: target.port,
        weight,
        invalid,
        redirect: None,
        rewrite: None,
        mirror_percent,
    }
}

fn first_unresolved(rules: &[CompiledRule]) -> Option<(RefReason, String)> {
    rules
        .iter()
        .flat_map(|r| r.backends.iter().chain(&r.mirrors))
        .find_map(|b| b.invalid.clone())
}
