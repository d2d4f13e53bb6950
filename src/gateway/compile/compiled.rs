//! The compiled, immutable data a [`RouteIndex`] holds: listeners with their
//! hostname tables, routes, rules, resolved backends and matches.

use super::*;
use crate::gateway::hostname;
use crate::gateway::matcher::{GrpcMatchCondition, HttpMatchCondition};
use crate::gateway::model::{AllowedRoutes, ParentRef};

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
///
/// The hostname buckets live in one vector and are found through flat
/// [`HostLookup`] tables, so that finding a request's bucket touches a few
/// small contiguous arrays rather than hash-map entries and key strings.
#[derive(Debug, Clone, Default)]
pub struct HostTable {
    /// The buckets of exact hostnames and wildcard suffixes.
    pub buckets: Vec<Bucket>,
    /// Exact hostname -> bucket number in `buckets`.
    pub exact: HostLookup,
    /// Wildcard, keyed by the suffix without `*` (`.example.com`) -> bucket
    /// number in `buckets`.
    pub wildcard: HostLookup,
    /// No hostname restriction.
    pub any: Bucket,
    /// Which wildcard suffix lengths (`.example.com` is 12) `wildcard` holds:
    /// bit `len` for lengths below 63, bit 63 for every longer one. `decide`
    /// probes `wildcard` only for the suffixes of a host whose length bit is
    /// set. Computed by `compile` once the table is complete.
    pub wildcard_lengths: u64,
}

/// One hostname bucket: match ids sorted by precedence, plus the path index
/// that `decide` uses to visit only the matches whose path can hold.
///
/// Scanning the ids alone means dependent cache misses per candidate (the
/// [`MatchEntry`], its path string, its route and rule); the index finds the
/// few candidates by a hash probe per ancestor prefix of the request path and
/// judges most of them from a contiguous 20-byte record.
///
/// Cache-line aligned, the index first: the index's hot fields (see
/// [`PathIndex`]) then share one line (128 bytes in all, as before).
#[derive(Debug, Clone, Default)]
#[repr(C, align(64))]
pub struct Bucket {
    /// The path index over `ids`; built by `compile`.
    pub index: PathIndex,
    /// Match ids (indexes into [`RouteIndex::matches`]), sorted by precedence.
    pub ids: Vec<u32>,
}

impl Bucket {
    /// Number of matches.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl HostTable {
    /// True when no route is attached.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty() && self.any.ids.is_empty()
    }

    /// The bucket of exact hostname `host`.
    #[inline]
    pub fn exact_bucket(&self, host: &str) -> Option<&Bucket> {
        self.buckets.get(self.exact.get(host)? as usize)
    }

    /// [`HostTable::exact_bucket`] with the host's [`HostLookup::hash_of`]
    /// already computed.
    #[inline]
    pub(crate) fn exact_bucket_hashed(&self, host: &str, hash: u64) -> Option<&Bucket> {
        self.buckets
            .get(self.exact.get_hashed(host.as_bytes(), hash)? as usize)
    }

    /// [`HostTable::wildcard_bucket`] with the suffix's [`HostLookup::hash_of`]
    /// already computed.
    #[inline]
    pub(crate) fn wildcard_bucket_hashed(&self, suffix: &str, hash: u64) -> Option<&Bucket> {
        self.buckets
            .get(self.wildcard.get_hashed(suffix.as_bytes(), hash)? as usize)
    }

    /// The bucket of wildcard suffix `suffix` (`.example.com`).
    #[inline]
    pub fn wildcard_bucket(&self, suffix: &str) -> Option<&Bucket> {
        self.buckets.get(self.wildcard.get(suffix)? as usize)
    }

    pub(super) fn bucket_mut(&mut self, hostname: Option<&str>) -> &mut Vec<u32> {
        let (lookup, key) = match hostname {
            None => return &mut self.any.ids,
            Some(h) if hostname::is_wildcard(h) => (&mut self.wildcard, &h[1..]),
            Some(h) => (&mut self.exact, h),
        };
        let at = match lookup.get(key) {
            Some(at) => at as usize,
            None => {
                lookup.insert(key, self.buckets.len() as u32);
                self.buckets.push(Bucket::default());
                self.buckets.len() - 1
            }
        };
        &mut self.buckets[at].ids
    }

    /// Every bucket with its hostname label (`None` = any), for audits.
    pub fn buckets(&self) -> impl Iterator<Item = (Option<String>, &Vec<u32>)> {
        let labelled = |lookup: &'_ HostLookup, wildcard: bool| {
            lookup
                .iter()
                .map(move |(key, at)| {
                    let label = if wildcard {
                        format!("*{key}")
                    } else {
                        key.to_string()
                    };
                    (Some(label), &self.buckets[at as usize].ids)
                })
                .collect::<Vec<_>>()
        };
        labelled(&self.exact, false)
            .into_iter()
            .chain(labelled(&self.wildcard, true))
            .chain(std::iter::once((None, &self.any.ids)))
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
    pub by_port: FastMap<(u16, bool), Vec<usize>>,
    /// `by_port` as a short list of `(port, tls, listeners)`, sorted: a
    /// Gateway has few ports, so `decide` finds its entry by comparing a few
    /// pairs instead of hashing one.
    pub(crate) port_list: Vec<(u16, bool, Vec<usize>)>,
}

impl CompiledGateway {
    /// The usable listeners of `(port, tls)`, most specific hostname first
    /// (the `by_port` entry).
    #[inline]
    pub fn listeners_on(&self, port: u16, tls: bool) -> Option<&[usize]> {
        self.port_list
            .iter()
            .find(|(p, t, _)| *p == port && *t == tls)
            .map(|(_, _, list)| list.as_slice())
    }
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

    /// Whether the backend may serve a request its rule wins: valid, weight
    /// above 0 and no backend-level redirect (which answers instead).
    pub fn may_serve(&self) -> bool {
        self.is_valid() && self.weight > 0 && self.redirect.is_none()
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
