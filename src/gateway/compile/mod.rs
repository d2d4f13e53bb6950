//! Compiling an [`ObjectSet`] into an immutable [`RouteIndex`].
//!
//! Compilation does everything that does not depend on the request, once:
//! ListenerSet admission, listener conflicts, route attachment and its
//! `Accepted` condition per parentRef, hostname intersection, match and filter
//! validation, backendRef resolution (`ResolvedRefs`, ReferenceGrants), weights,
//! and the precedence order of every match. Each listener ends up with hostname
//! tables whose buckets hold match ids already sorted by precedence, so deciding a
//! request is a few hash lookups and a short scan (see [`super::decide`]).

mod attach;
mod compiled;
mod conditions;
mod host_lookup;
mod listeners;
mod path_index;
mod refs;
mod rules;

use std::collections::{BTreeMap, HashMap};

pub use attach::effective_hostnames;
pub use compiled::*;
pub use conditions::CompactConditions;
pub(crate) use conditions::NO_RECORD;
pub use host_lookup::HostLookup;
pub use path_index::{
    method_code, Candidate, KeyedGroup, PathIndex, PathKeys, MAX_PATH_BOUNDARIES,
};
pub(crate) use path_index::{same_bytes, KeyProbe};

use super::matcher::GrpcNameCondition;
use super::model::{ObjectMeta, ObjectSet};
use listeners::namespace_labels;
use refs::RefContext;

/// The `HashMap` of the index's lookup tables (hostname buckets, gateways,
/// ports), which `decide` probes several times per request.
///
/// Uses foldhash instead of std's SipHash-1-3: hashing a short hostname is
/// several times faster, and the DoS resistance SipHash buys is not needed here:
/// the keys are inserted from configuration, requests only look them up, so a
/// request cannot build a collision chain. foldhash is still randomly seeded.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

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

/// The compiled, immutable route-decision index.
#[derive(Debug, Clone)]
pub struct RouteIndex {
    /// Version stamped by the caller.
    pub version: u64,
    /// Number of this compilation, unique in the process (see
    /// [`RouteIndex::instance`]).
    instance: u64,
    /// Options used.
    pub options: CompileOptions,
    /// Gateways.
    pub gateways: Vec<CompiledGateway>,
    /// Gateway key -> index.
    pub gateway_by_key: FastMap<String, usize>,
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
    /// Indexes into `routes` (both kinds) by a hash of the route's
    /// `(namespace, name)` ([`RouteIndex::routes_named`]), so that a route
    /// named in a log line is found without a scan: one flat map with a fast
    /// hash (looked up once per record), rather than a map of maps with
    /// SipHash. A bucket may hold routes of other names whose hash collides;
    /// `routes_named` filters them out.
    pub route_by_name: FastMap<u64, Vec<usize>>,
    /// Per route, the number of rules of the routes before it (one more
    /// entry at the end): rule position `p` of route `r` is rule number
    /// `rule_base[r] + p` of `rule_allowed`.
    pub(crate) rule_base: Vec<u32>,
    /// Per rule (numbered as in `rule_base`), its range in `allowed`.
    pub(crate) rule_allowed: Vec<(u32, u32)>,
    /// The backends that may serve a request a rule wins (valid, weight > 0,
    /// no backend-level redirect), copied from the rules contiguously, rule
    /// after rule: `Decision::allowed_backends` (per record in the replay
    /// pipeline) reads one short array instead of the route, its rules
    /// vector and the rule's backends vector (a dependent miss each).
    pub(crate) allowed: Vec<CompiledBackend>,
    /// Compact records of the matches' method, header and query conditions,
    /// which the path index's candidates point to: `decide` judges a
    /// conditional candidate from its record instead of its [`MatchEntry`].
    pub(crate) conditions: CompactConditions,
}

/// The next [`RouteIndex::instance`].
static NEXT_INSTANCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl RouteIndex {
    /// A number that identifies this compiled index within the process (a
    /// clone keeps it: same content). Unlike [`RouteIndex::version`], which
    /// the caller chooses and which two indexes may share, it tells which
    /// index the ids of [`RouteIndex::gateway_id`] and friends belong to.
    /// Caches keyed by it (Parquet ids, Service-id tables, the pipeline's
    /// listener memo) rely on the index being immutable: a clone must never
    /// be modified through its public fields.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    pub fn compile(objects: &ObjectSet, options: CompileOptions) -> RouteIndex {
        let mut index = RouteIndex {
            version: options.index_version,
            instance: NEXT_INSTANCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            options: options.clone(),
            gateways: Vec::new(),
            gateway_by_key: FastMap::default(),
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
            route_by_name: FastMap::default(),
            rule_base: Vec::new(),
            rule_allowed: Vec::new(),
            allowed: Vec::new(),
            conditions: CompactConditions::default(),
        };
        let namespace_labels = namespace_labels(objects);
        let owners = index.compile_listeners(objects, &namespace_labels);
        let refs = RefContext::new(objects, &options);
        index.compile_routes(objects, &refs);
        index.attach_routes(&owners, &namespace_labels);
        let (conditions, records) = CompactConditions::build(&index.matches);
        index.conditions = conditions;
        index.sort_tables(&records);
        index.index_allowed_backends();
        for (i, route) in index.routes.iter().enumerate() {
            let key = index.route_name_key(&route.namespace, &route.name);
            index.route_by_name.entry(key).or_default().push(i);
        }
        index
    }

    /// The `route_by_name` key of `namespace/name`: the map's own (randomly
    /// seeded) hasher over both strings, so a key is computed with one hash
    /// pass and no allocation.
    fn route_name_key(&self, namespace: &str, name: &str) -> u64 {
        use std::hash::BuildHasher;
        self.route_by_name.hasher().hash_one((namespace, name))
    }

    /// Fills `rule_base`, `rule_allowed` and `allowed` from the compiled
    /// routes.
    fn index_allowed_backends(&mut self) {
        let mut rule_base = Vec::with_capacity(self.routes.len() + 1);
        let mut rule_allowed = Vec::new();
        let mut allowed = Vec::new();
        for route in &self.routes {
            rule_base.push(rule_allowed.len() as u32);
            for rule in &route.rules {
                let start = allowed.len() as u32;
                allowed.extend(rule.backends.iter().filter(|b| b.may_serve()).cloned());
                rule_allowed.push((start, allowed.len() as u32));
            }
        }
        rule_base.push(rule_allowed.len() as u32);
        allowed.shrink_to_fit();
        self.rule_base = rule_base;
        self.rule_allowed = rule_allowed;
        self.allowed = allowed;
    }

    /// Position of `gateway` in [`RouteIndex::gateways`] when it is one of
    /// this index's Gateways (found by address, nothing is compared), else
    /// `None`: an id of the Gateway, valid for this index only.
    #[inline]
    pub fn gateway_id(&self, gateway: &CompiledGateway) -> Option<u32> {
        position_in(&self.gateways, gateway)
    }

    /// Position of `listener` in [`RouteIndex::listeners`] when it is one of
    /// this index's listeners (by address), else `None`; valid for this index
    /// only.
    #[inline]
    pub fn listener_id(&self, listener: &CompiledListener) -> Option<u32> {
        position_in(&self.listeners, listener)
    }

    /// Position of `backend` in the index's per-rule allowed backends (the
    /// array [`RouteIndex::allowed_backends_of`] slices) when it is one of
    /// them (by address), else `None`: an id of the backend reference, valid
    /// for this index only. Several ids may name the same Service (one per
    /// rule that allows it).
    #[inline]
    pub fn allowed_backend_id(&self, backend: &CompiledBackend) -> Option<u32> {
        position_in(&self.allowed, backend)
    }

    /// The allowed backend whose id ([`RouteIndex::allowed_backend_id`]) is
    /// `id`, if any.
    #[inline]
    pub fn allowed_backend(&self, id: u32) -> Option<&CompiledBackend> {
        self.allowed.get(id as usize)
    }

    /// The backends that may serve a request won by the rule at position
    /// `rule_pos` of route `route` (valid, weight > 0, no backend-level
    /// redirect), in spec order; empty for an unknown rule.
    #[inline]
    pub fn allowed_backends_of(&self, route: u32, rule_pos: u32) -> &[CompiledBackend] {
        let route = route as usize;
        let (Some(&base), Some(&next)) = (self.rule_base.get(route), self.rule_base.get(route + 1))
        else {
            return &[];
        };
        let rule = base as usize + rule_pos as usize;
        if rule >= next as usize {
            return &[];
        }
        match self.rule_allowed.get(rule) {
            Some(&(start, end)) => self
                .allowed
                .get(start as usize..end as usize)
                .unwrap_or(&[]),
            None => &[],
        }
    }

    /// Indexes into `routes` of the routes (of any kind) named `namespace/name`,
    /// in `routes` order. Does not allocate.
    pub fn routes_named<'s>(
        &'s self,
        namespace: &'s str,
        name: &'s str,
    ) -> impl Iterator<Item = usize> + 's {
        self.route_by_name
            .get(&self.route_name_key(namespace, name))
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .copied()
            .filter(move |&i| {
                self.routes
                    .get(i)
                    .is_some_and(|r| r.namespace == namespace && r.name == name)
            })
    }

    pub fn route_of(&self, entry: &MatchEntry) -> &CompiledRoute {
        &self.routes[entry.route as usize]
    }

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

/// Oldest first (objects without a timestamp last), then namespace/name.
///
/// The tie-breaker is the alphabetical order of the *string*
/// `"<namespace>/<name>"` (`httproute_types.go` ~line 200), which is not the
/// same as comparing namespace then name: `a-b/c` sorts before `a/z` because
/// `-` (0x2d) < `/` (0x2f), while namespace-first would put `a` first.
pub(super) fn creation_order(a: &ObjectMeta, b: &ObjectMeta) -> std::cmp::Ordering {
    creation_ts(a)
        .cmp(&creation_ts(b))
        .then_with(|| name_order(a, b))
}

/// Alphabetical order of `"<namespace>/<name>"`, compared without allocating.
pub(super) fn name_order(a: &ObjectMeta, b: &ObjectMeta) -> std::cmp::Ordering {
    fn key(m: &ObjectMeta) -> impl Iterator<Item = u8> + '_ {
        m.namespace
            .bytes()
            .chain(std::iter::once(b'/'))
            .chain(m.name.bytes())
    }
    key(a).cmp(key(b))
}

/// The creation-order sort key: unix seconds, `i64::MAX` when unknown.
pub(super) fn creation_ts(meta: &ObjectMeta) -> i64 {
    meta.created_unix().unwrap_or(i64::MAX)
}

/// Position of `item` in `items` when it is one of its elements (by address:
/// no element is read), else `None`.
#[inline]
fn position_in<T>(items: &[T], item: &T) -> Option<u32> {
    let size = std::mem::size_of::<T>();
    if size == 0 {
        return None;
    }
    let offset = (item as *const T as usize).wrapping_sub(items.as_ptr() as usize);
    let at = offset / size;
    // An address inside an element but not at its start is not one.
    match items.get(at) {
        Some(found) if std::ptr::eq(found, item) => u32::try_from(at).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod id_tests {
    use super::*;
    use crate::gateway::load::load_text;

    const MANIFESTS: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: eg
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - {name: alt, port: 8080, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: app}
spec:
  parentRefs: [{name: gw, namespace: infra}]
  rules:
  - backendRefs: [{name: a, port: 80}, {name: b, port: 80}]
  - backendRefs: [{name: a, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: app}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: app}
spec: {ports: [{port: 80}]}
"#;

    /// Gateway, listener and allowed-backend ids are the positions of the
    /// index's own elements, and `None` for anything else (an equal element
    /// of another index, an element of another array).
    #[test]
    fn ids_are_positions_of_this_index_elements_only() {
        let mut set = ObjectSet::default();
        load_text(&mut set, "m.yaml", MANIFESTS).expect("manifests");
        let index = RouteIndex::compile(&set, CompileOptions::default());
        let other = index.clone();
        assert_eq!(index.gateways.len(), 1);
        assert_eq!(index.gateway_id(&index.gateways[0]), Some(0));
        assert_eq!(index.gateway_id(&other.gateways[0]), None);
        assert_eq!(index.listeners.len(), 2);
        for (i, listener) in index.listeners.iter().enumerate() {
            assert_eq!(index.listener_id(listener), Some(i as u32));
            assert_eq!(other.listener_id(listener), None);
        }
        let first = index.allowed_backends_of(0, 0);
        let second = index.allowed_backends_of(0, 1);
        assert_eq!((first.len(), second.len()), (2, 1));
        let ids: Vec<_> = first
            .iter()
            .chain(second)
            .map(|b| index.allowed_backend_id(b))
            .collect();
        assert_eq!(ids, [Some(0), Some(1), Some(2)]);
        for (id, backend) in first.iter().chain(second).enumerate() {
            let found = index.allowed_backend(id as u32).expect("allowed backend");
            assert!(std::ptr::eq(found, backend));
        }
        assert!(index.allowed_backend(3).is_none());
        assert_eq!(other.allowed_backend_id(&first[0]), None);
        // A backend of the rule itself (not the allowed copy) has no id.
        let rule_backend = &index.routes[0].rules[0].backends[0];
        assert_eq!(index.allowed_backend_id(rule_backend), None);
    }
}
