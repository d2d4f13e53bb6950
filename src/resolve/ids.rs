//! Service ids of a route index's backends, relative to one endpoint index.
//!
//! Per record, the resolver and the pipeline compared Service names as
//! strings: the endpoint candidates' with the logged rule's backends, the
//! expected (allowed) backends' with the candidates and with the actual
//! backend. Each compare read two strings from the indexes, nearly always
//! cache misses. [`BackendServiceIds`] gives every backend of a route index
//! the id its `(namespace, name)` has in an [`EndpointIndex`]
//! ([`EndpointIndex::service_id`]; backends of Services the endpoint index
//! does not know get ids of their own, past the endpoint index's), and keeps
//! per rule what the resolver needs (which backends are Services, the single
//! live backend), so a record compares integers and touches neither the
//! strings nor the backends it does not pick. The table also holds, next to
//! each id, what a record takes from the backend (its key; its namespace,
//! name and port), borrowed from the route index: a rule's entries sit side
//! by side, so a record reads one or two lines of the table instead of a
//! route, its rules, the rule's backends and each backend (a dependent cache
//! miss each).
//!
//! The table stands for pairs `(namespace, name)`; the code it replaces
//! compared keys (`namespace/name`) in places. The two agree unless a
//! namespace or name contains `/`, so no table is built then
//! ([`BackendServiceIds::build`] returns `None`) and the string compares stay.

use std::collections::HashMap;

use crate::gateway::compile::{CompiledBackend, CompiledRule};
use crate::gateway::{RouteIndex, RouteKind};

use super::endpoints::EndpointIndex;
use super::memo::RuleAt;
use super::naming::{self, Implementation, RouteRef, RuleRef, UpstreamName};

/// Id of a backend that is not a `Service` (never equal to a candidate's).
pub const NOT_A_SERVICE: u32 = u32::MAX;

/// An allowed backend ([`RouteIndex::allowed_backend`]) as a record uses it.
#[derive(Debug, Clone, Copy)]
pub struct AllowedService<'i> {
    /// Id of its `(namespace, name)`, whatever its kind.
    pub service: u32,
    /// Its key (`namespace/name`), borrowed from the route index.
    pub key: &'i str,
    /// Position of the route and of the rule in the route whose allowed
    /// backends it is one of.
    route: u32,
    rule_pos: u32,
}

/// What a record writes of the rule a decision hit (see
/// [`BackendServiceIds::hit_rule`]).
#[derive(Debug, Clone, Copy)]
pub struct HitRule<'i> {
    /// Position of the rule in its route's `rules`.
    pub rule_pos: u32,
    /// The rule's index (`CompiledRule::index`).
    pub rule_index: usize,
    /// The route's key (`namespace/name`), borrowed from the route index.
    pub route_key: &'i str,
    /// The route's kind.
    pub route_kind: RouteKind,
}

/// What a record takes from the table when one rule won its decision alone
/// (no alternatives; see [`BackendServiceIds::sole_winner`]): the rule's
/// allowed backends as the expected set, and the rule itself. It borrows the
/// table's entry for the rule; the accessors read what the record needs.
#[derive(Debug, Clone, Copy)]
pub struct SoleWinner<'t, 'i> {
    table: &'t BackendServiceIds<'i>,
    rule: &'t RuleIds,
    route: &'t RouteInfo<'i>,
    route_id: u32,
    rule_pos: u32,
}

impl<'t, 'i> SoleWinner<'t, 'i> {
    /// Keys of the rule's allowed backends ([`RouteIndex::allowed_backends_of`]),
    /// in order, each Service once (its first backend): the expected set of a
    /// forwarding decision.
    #[inline]
    pub fn keys(&self) -> &'t [&'i str] {
        self.table
            .expected_keys
            .get(self.expected_range())
            .unwrap_or(&[])
    }

    /// The allowed backend id ([`RouteIndex::allowed_backend_id`]) of each key.
    #[inline]
    pub fn allowed_ids(&self) -> &'t [u32] {
        self.table
            .expected_allowed
            .get(self.expected_range())
            .unwrap_or(&[])
    }

    /// The Service id ([`BackendServiceIds::allowed`]) of each key.
    #[inline]
    pub fn services(&self) -> &'t [u32] {
        self.table
            .expected_services
            .get(self.expected_range())
            .unwrap_or(&[])
    }

    /// The rule, as [`BackendServiceIds::hit_rule`] tells it.
    #[inline]
    pub fn rule(&self) -> HitRule<'i> {
        HitRule {
            rule_pos: self.rule_pos,
            rule_index: self.rule.index,
            route_key: self.route.key,
            route_kind: self.route.kind,
        }
    }

    /// The Envoy Gateway cluster name of the rule, when the table has one.
    #[inline]
    pub fn cluster(&self) -> Option<RuleCluster<'t, 'i>> {
        Some(RuleCluster {
            text: self.rule.cluster.as_deref()?,
            namespace: self.route.namespace,
            name: self.route.name,
            kind: self.route.kind,
            rule_index: self.rule.index,
            route: self.route_id,
            rule_pos: self.rule_pos,
            index: self.table.route_instance,
        })
    }

    fn expected_range(&self) -> std::ops::Range<usize> {
        self.rule.expected_start as usize..self.rule.expected_end as usize
    }
}

/// The Envoy Gateway cluster name of one rule (`httproute/<ns>/<name>/rule/<i>`),
/// checked when the table was built: the naming parser reads it (under the
/// Envoy Gateway and the `Auto` hint) as exactly this rule, and the
/// resolver's lookup of that rule by name finds this rule's position.
///
/// A record whose upstream cluster is this text (the usual record: the
/// gateway used the rule the decision chose) then needs neither the parser
/// nor the [`NameMemo`](super::NameMemo)'s hash lookup: [`parse`](Self::parse)
/// gives the parser's answer and [`at`](Self::at) where the rule is.
#[derive(Debug, Clone, Copy)]
pub struct RuleCluster<'t, 'i> {
    /// The cluster name.
    text: &'t str,
    /// The route's namespace and name, borrowed from the route index.
    namespace: &'i str,
    name: &'i str,
    kind: RouteKind,
    rule_index: usize,
    /// Position of the route and of the rule, in the table's route index.
    route: u32,
    rule_pos: u32,
    /// [`RouteIndex::instance`] of that index.
    index: u64,
}

impl<'i> RuleCluster<'_, 'i> {
    /// Whether the parser gives [`parse`](Self::parse)'s answer under the
    /// implementation hint `implementation` (the Envoy Gateway scheme, or
    /// `Auto`, which tries it first).
    #[inline]
    pub fn applies_to(implementation: Implementation) -> bool {
        matches!(
            implementation,
            Implementation::EnvoyGateway | Implementation::Auto
        )
    }

    /// `raw`'s parse ([`naming::parse_upstream_name_scheme`] under a hint
    /// [`applies_to`](Self::applies_to) accepts) when `raw` is this rule's
    /// cluster name; `None` otherwise (then nothing is known: parse it). The
    /// namespace and name are the route's, borrowed from the route index:
    /// equal to the parser's, which borrows them from `raw`.
    #[inline]
    pub fn parse(&self, raw: &str) -> Option<RuleRef<'i>> {
        (raw == self.text).then_some(RuleRef {
            kind: self.kind,
            route: RouteRef::Exact {
                namespace: self.namespace,
                name: self.name,
            },
            rule_index: self.rule_index,
            backend_index: None,
        })
    }

    /// Where the rule sits in the table's route index (what the resolver's
    /// lookup by name finds).
    #[inline]
    pub fn at(&self) -> RuleAt {
        RuleAt {
            index: self.index,
            route: self.route,
            rule: self.rule_pos,
        }
    }
}

/// A route as a record uses it.
#[derive(Debug, Clone, Copy)]
struct RouteInfo<'i> {
    key: &'i str,
    kind: RouteKind,
    namespace: &'i str,
    name: &'i str,
}

/// A backend of a rule as the resolver uses it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleBackend<'i> {
    /// Its Service id, or [`NOT_A_SERVICE`] when it is another kind.
    pub service: u32,
    /// Service port.
    pub port: Option<u16>,
    /// Namespace and name, borrowed from the route index.
    pub namespace: &'i str,
    pub name: &'i str,
}

/// What the resolver needs of one rule, precomputed.
#[derive(Debug, Clone)]
struct RuleIds {
    /// Range of the rule's backends in [`BackendServiceIds::rule_backends`].
    start: u32,
    end: u32,
    /// Position of the rule's single live backend (valid `Service`, weight
    /// above 0, every live backend of the same Service), if any.
    single: Option<u32>,
    /// The rule's index (`CompiledRule::index`).
    index: usize,
    /// Range of the rule's expected set in [`BackendServiceIds::expected_keys`]
    /// (and the two arrays beside it).
    expected_start: u32,
    expected_end: u32,
    /// The rule's checked Envoy Gateway cluster name (see [`RuleCluster`]).
    cluster: Option<Box<str>>,
}

/// Service ids of one route index's backends in one endpoint index (see the
/// module docs). Built for one pair of indexes; [`BackendServiceIds::is_for`]
/// tells whether it belongs to a pair. `Yokeable`: a live snapshot keeps its
/// table next to the route index it borrows from (see
/// [`crate::kube::Snapshot::service_ids`]).
#[derive(Debug, Clone, yoke::Yokeable)]
pub struct BackendServiceIds<'i> {
    /// [`RouteIndex::instance`] of the route index.
    route_instance: u64,
    /// [`EndpointIndex::instance`] of the endpoint index.
    endpoint_instance: u64,
    /// Number of allowed backends and routes of the route index (checked by
    /// `is_for`).
    allowed_len: usize,
    routes_len: usize,
    /// Per allowed backend id ([`RouteIndex::allowed_backend_id`]).
    allowed: Vec<AllowedService<'i>>,
    /// Per route, the number of rules of the routes before it (one more
    /// entry at the end).
    rule_base: Vec<u32>,
    /// Per rule (numbered as in `rule_base`).
    rules: Vec<RuleIds>,
    /// Per rule backend (in `rules` ranges).
    rule_backends: Vec<RuleBackend<'i>>,
    /// Per route.
    routes: Vec<RouteInfo<'i>>,
    /// Per rule, in `rules` ranges: the keys of the rule's allowed backends,
    /// each Service once (see [`SoleWinner`]), with their allowed backend
    /// ids and Service ids side by side.
    expected_keys: Vec<&'i str>,
    expected_allowed: Vec<u32>,
    expected_services: Vec<u32>,
}

impl<'i> BackendServiceIds<'i> {
    /// The ids of `routes`' backends in `endpoints`; `None` when a namespace
    /// or name on either side contains `/` (see the module docs).
    pub fn build(routes: &'i RouteIndex, endpoints: &EndpointIndex) -> Option<Self> {
        if !endpoints.keys_unambiguous() {
            return None;
        }
        let mut others: HashMap<(&str, &str), u32> = HashMap::new();
        let base = endpoints.service_count();
        let mut id_of = |b: &'i CompiledBackend| -> Option<u32> {
            let (ns, name) = (b.namespace.as_str(), b.name.as_str());
            if ns.contains('/') || name.contains('/') {
                return None;
            }
            if let Some(id) = endpoints.service_id(ns, name) {
                return Some(id);
            }
            let next = u32::try_from(base + others.len()).ok()?;
            if next == NOT_A_SERVICE {
                return None;
            }
            Some(*others.entry((ns, name)).or_insert(next))
        };
        let mut allowed = Vec::new();
        while let Some(backend) = routes.allowed_backend(allowed.len() as u32) {
            allowed.push(AllowedService {
                service: id_of(backend)?,
                key: backend.key.as_str(),
                route: u32::MAX,
                rule_pos: u32::MAX,
            });
        }
        // Which rule each allowed backend belongs to (each rule's allowed
        // backends are a range of the index's array).
        for (r, route) in routes.routes.iter().enumerate() {
            for p in 0..route.rules.len() {
                let (route_at, rule_pos) = (u32::try_from(r).ok()?, u32::try_from(p).ok()?);
                for backend in routes.allowed_backends_of(route_at, rule_pos) {
                    let id = routes.allowed_backend_id(backend)?;
                    let entry = allowed.get_mut(id as usize)?;
                    entry.route = route_at;
                    entry.rule_pos = rule_pos;
                }
            }
        }
        let mut rule_base = Vec::with_capacity(routes.routes.len() + 1);
        let mut rules = Vec::new();
        let mut rule_backends = Vec::new();
        let (mut expected_keys, mut expected_allowed, mut expected_services) =
            (Vec::new(), Vec::new(), Vec::new());
        for (r, route) in routes.routes.iter().enumerate() {
            rule_base.push(u32::try_from(rules.len()).ok()?);
            for (p, rule) in route.rules.iter().enumerate() {
                // The expected set as a record builds it from the decision's
                // allowed backends: keys in order, a Service's first only.
                let expected_start = expected_keys.len();
                let (route_at, rule_pos) = (u32::try_from(r).ok()?, u32::try_from(p).ok()?);
                for backend in routes.allowed_backends_of(route_at, rule_pos) {
                    let id = routes.allowed_backend_id(backend)?;
                    let entry = allowed.get(id as usize)?;
                    if !expected_services[expected_start..].contains(&entry.service) {
                        expected_keys.push(entry.key);
                        expected_allowed.push(id);
                        expected_services.push(entry.service);
                    }
                }
                let start = u32::try_from(rule_backends.len()).ok()?;
                for backend in &rule.backends {
                    let id = id_of(backend)?;
                    rule_backends.push(RuleBackend {
                        service: if is_service(backend) {
                            id
                        } else {
                            NOT_A_SERVICE
                        },
                        port: backend.port,
                        namespace: backend.namespace.as_str(),
                        name: backend.name.as_str(),
                    });
                }
                let end = u32::try_from(rule_backends.len()).ok()?;
                rules.push(RuleIds {
                    start,
                    end,
                    single: single_live_backend(rule),
                    index: rule.index,
                    expected_start: u32::try_from(expected_start).ok()?,
                    expected_end: u32::try_from(expected_keys.len()).ok()?,
                    cluster: rule_cluster_name(routes, r, p),
                });
            }
        }
        rule_base.push(u32::try_from(rules.len()).ok()?);
        Some(BackendServiceIds {
            route_instance: routes.instance(),
            allowed_len: allowed.len(),
            routes_len: routes.routes.len(),
            endpoint_instance: endpoints.instance(),
            allowed,
            rule_base,
            rules,
            rule_backends,
            routes: routes
                .routes
                .iter()
                .map(|r| RouteInfo {
                    key: r.key.as_str(),
                    kind: r.kind,
                    namespace: r.namespace.as_str(),
                    name: r.name.as_str(),
                })
                .collect(),
            expected_keys,
            expected_allowed,
            expected_services,
        })
    }

    /// The rule at position `rule_pos` of route `route_id` as the sole
    /// winner of a decision (no alternatives): its expected set, read from
    /// the table instead of collected from the decision's allowed backends
    /// per record, and what the row writes of the rule. The same values as
    /// collecting them: a forwarding decision's expected backends are its
    /// winner's allowed backends (a Service once), and other outcomes expect
    /// none (the caller drops the set). `None` for a rule not in the index.
    #[inline]
    pub fn sole_winner(&self, route_id: u32, rule_pos: u32) -> Option<SoleWinner<'_, 'i>> {
        let route = self.routes.get(route_id as usize)?;
        let base = *self.rule_base.get(route_id as usize)? as usize;
        let next = *self.rule_base.get(route_id as usize + 1)? as usize;
        let at = base + rule_pos as usize;
        if at >= next {
            return None;
        }
        Some(SoleWinner {
            table: self,
            rule: self.rules.get(at)?,
            route,
            route_id,
            rule_pos,
        })
    }

    /// The rule a decision hit on route `route_id` (position in
    /// [`RouteIndex::routes`]), found through `first_allowed`, the first of
    /// the hit's allowed backends (`RuleHit::allowed_backends`): the table
    /// knows which rule each allowed backend belongs to, so neither the
    /// route nor the rule is read. `None` when `first_allowed` is not an
    /// allowed backend of that route in this table's index.
    #[inline]
    pub fn hit_rule(
        &self,
        routes: &RouteIndex,
        route_id: u32,
        first_allowed: &CompiledBackend,
    ) -> Option<HitRule<'i>> {
        let id = routes.allowed_backend_id(first_allowed)?;
        let entry = self.allowed.get(id as usize)?;
        if entry.route != route_id {
            return None;
        }
        let route = self.routes.get(route_id as usize)?;
        let base = *self.rule_base.get(route_id as usize)? as usize;
        let rule = self.rules.get(base + entry.rule_pos as usize)?;
        Some(HitRule {
            rule_pos: entry.rule_pos,
            rule_index: rule.index,
            route_key: route.key,
            route_kind: route.kind,
        })
    }

    /// Whether the table was built from `routes` and `endpoints` (or clones
    /// of them): both indexes' instance numbers must match, since two
    /// endpoint indexes with as many Services may number them differently,
    /// and two route indexes may order their routes differently.
    #[inline]
    pub fn is_for(&self, routes: &RouteIndex, endpoints: &EndpointIndex) -> bool {
        self.route_instance == routes.instance()
            && self.endpoint_instance == endpoints.instance()
            && self.routes_len == routes.routes.len()
            && routes.allowed_backend(self.allowed_len as u32).is_none()
    }

    /// The allowed backend `id` ([`RouteIndex::allowed_backend_id`]): its
    /// Service id (whatever its kind) and key.
    #[inline]
    pub fn allowed(&self, id: u32) -> Option<AllowedService<'i>> {
        self.allowed.get(id as usize).copied()
    }

    /// The rule at position `rule_pos` of route `route` (positions in
    /// [`RouteIndex::routes`] and the route's `rules`).
    #[inline]
    pub(crate) fn rule(&self, route: usize, rule_pos: usize) -> Option<RuleServices<'_, 'i>> {
        let base = *self.rule_base.get(route)? as usize;
        let next = *self.rule_base.get(route + 1)? as usize;
        let at = base + rule_pos;
        if at >= next {
            return None;
        }
        let ids = self.rules.get(at)?;
        Some(RuleServices {
            backends: self
                .rule_backends
                .get(ids.start as usize..ids.end as usize)?,
            single: ids.single,
        })
    }
}

/// The backends of one rule (see [`BackendServiceIds::rule`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleServices<'t, 'i> {
    /// Per backend of the rule, in order.
    pub backends: &'t [RuleBackend<'i>],
    /// Position of the rule's single live backend, if any.
    pub single: Option<u32>,
}

/// The Envoy Gateway cluster name of the rule at position `rule_pos` of
/// route `route_pos` (`<kind>/<namespace>/<name>/rule/<index>`), when the
/// checks of [`RuleCluster`] hold: the parser reads the text as this rule
/// under both hints that [`RuleCluster::applies_to`] accepts, and the
/// resolver's lookup by name finds this rule (not another route of the same
/// name). Otherwise `None`.
fn rule_cluster_name(routes: &RouteIndex, route_pos: usize, rule_pos: usize) -> Option<Box<str>> {
    let route = routes.routes.get(route_pos)?;
    let rule = route.rules.get(rule_pos)?;
    let kind = match route.kind {
        RouteKind::Http => "httproute",
        RouteKind::Grpc => "grpcroute",
    };
    let text = format!(
        "{kind}/{}/{}/rule/{}",
        route.namespace, route.name, rule.index
    );
    let expected = RuleRef {
        kind: route.kind,
        route: RouteRef::Exact {
            namespace: &route.namespace,
            name: &route.name,
        },
        rule_index: rule.index,
        backend_index: None,
    };
    let parsed_as_expected = |hint| {
        naming::parse_upstream_name_scheme(hint, &text)
            == Some((Implementation::EnvoyGateway, UpstreamName::Rule(expected)))
    };
    if !parsed_as_expected(Implementation::EnvoyGateway)
        || !parsed_as_expected(Implementation::Auto)
    {
        return None;
    }
    let found = super::find_rule(routes, &expected)?;
    if (found.route_pos, found.rule_pos) != (route_pos, rule_pos) {
        return None;
    }
    Some(text.into_boxed_str())
}

/// Whether a backend is a core `Service`.
pub(crate) fn is_service(backend: &CompiledBackend) -> bool {
    backend.kind == "Service"
}

/// Position of the rule's single live backend: the first valid `Service`
/// with a weight, when every such backend has its key.
pub(crate) fn single_live_backend(rule: &CompiledRule) -> Option<u32> {
    let mut live = rule
        .backends
        .iter()
        .enumerate()
        .filter(|(_, b)| is_service(b) && b.is_valid() && b.weight > 0);
    let (at, first) = live.next()?;
    if live.all(|(_, b)| b.key == first.key) {
        u32::try_from(at).ok()
    } else {
        None
    }
}
