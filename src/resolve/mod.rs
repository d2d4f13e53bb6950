//! Which Service really served a request.
//!
//! Two signals (doc `access-log-formats.md` §10, §12.3):
//!
//! 1. the upstream cluster / upstream / backend name, parsed per implementation
//!    ([`naming`]); it names a Service directly (Istio, Contour, NGF, HAProxy,
//!    Traefik) or a route rule (Envoy Gateway, Kong);
//! 2. the answering upstream `ip:port`, mapped through EndpointSlices
//!    ([`endpoints::EndpointIndex`]).
//!
//! [`resolve_actual`] combines them with the compiled route index: a name that
//! names a Service wins; a name that names a rule is narrowed to one of the
//! rule's backends by the endpoint lookup; otherwise the endpoint lookup alone
//! decides. The gateway's own answers (no route, redirects, direct responses,
//! ...) are classified as a [`GatewayAction`] and have no backend.
//!
//! The input is an [`UpstreamEvidence`] that borrows from the decoded record,
//! so this module does not depend on the decoder. Resolution does not allocate.

pub mod endpoints;
pub mod ids;
pub mod memo;
pub mod naming;

use std::fmt;
use std::net::SocketAddr;

use crate::gateway::compile::{CompiledRoute, CompiledRule};
use crate::gateway::RouteIndex;

pub use endpoints::{
    choose_candidate, choose_candidate_where, parse_socket_addr, CandidateChoice,
    EndpointCandidate, EndpointIndex, ServiceEntry,
};
pub use ids::{BackendServiceIds, HitRule, RuleCluster, SoleWinner};
pub use memo::{NameMemo, RuleAt};
pub use naming::{
    answering_host, classify_gateway_action, parse_route_name, parse_upstream_name,
    DashedServiceRef, GatewayAction, Implementation, PortRef, RouteRef, RuleRef, ServiceRef,
    UnknownImplementation, UpstreamHost, UpstreamName,
};

/// What the access log says about the upstream of one request; filled by the
/// pipeline from the decoded record. Empty values (`-`, `null`) may be passed
/// as they are or as `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpstreamEvidence<'a> {
    /// The implementation that wrote the line, when known (pod labels,
    /// configuration); `None` = [`Implementation::Auto`].
    pub implementation_hint: Option<Implementation>,
    /// `%ROUTE_NAME%`, Kong `route.name`, Traefik `RouterName`.
    pub route_name: Option<&'a str>,
    /// `%UPSTREAM_CLUSTER[_RAW]%`, NGF `$proxy_host`, HAProxy `%b`, Kong
    /// `service.name`, Traefik `ServiceName`.
    pub upstream_cluster: Option<&'a str>,
    /// Upstream host attempts, `ip:port` each; the last one answered.
    pub upstream_hosts: &'a [&'a str],
    /// Envoy `%RESPONSE_FLAGS%` or HAProxy `%tsc`.
    pub response_flags: Option<&'a str>,
    /// Response status sent to the client.
    pub status: Option<u16>,
}

/// Where the actual backend came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ActualSource {
    /// The cluster/upstream name named the Service (or a rule with exactly one
    /// backend, or one backendRef of a rule).
    ClusterName,
    /// The upstream `ip:port`, through EndpointSlices.
    Endpoint,
    /// Not resolved.
    #[default]
    None,
}

impl ActualSource {
    /// The stable output string: `cluster_name`, `endpoint`, `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActualSource::ClusterName => "cluster_name",
            ActualSource::Endpoint => "endpoint",
            ActualSource::None => "none",
        }
    }
}

impl fmt::Display for ActualSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resolved Service backend, borrowed from the evidence or the indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendRef<'i> {
    /// Service namespace.
    pub namespace: &'i str,
    /// Service name.
    pub name: &'i str,
    /// Service port, when known.
    pub port: Option<u16>,
}

impl BackendRef<'_> {
    /// Whether this is the backend `namespace/name` (the key form of
    /// [`crate::gateway::compile::CompiledBackend::key`]), compared without
    /// allocating.
    pub fn key_matches(&self, key: &str) -> bool {
        key.split_once('/')
            .is_some_and(|(ns, name)| ns == self.namespace && name == self.name)
    }
}

impl fmt::Display for BackendRef<'_> {
    /// `namespace/name` or `namespace/name:port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// The backend that actually served a request, as far as the log tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActualBackend<'i> {
    /// The Service (namespace, name, Service port); `None` when the gateway
    /// answered itself or nothing identified a Service.
    pub backend: Option<BackendRef<'i>>,
    /// Which signal decided.
    pub source: ActualSource,
    /// What the gateway did.
    pub gateway_action: GatewayAction,
    /// Several Services matched and neither the rule nor the expected backends
    /// singled one out; `backend` is then only the first by key, and
    /// `candidates` holds all of them.
    pub ambiguous: bool,
    /// Several Services matched the address and the expected backends chose.
    pub tie_broken_by_expected: bool,
    /// Whether the endpoint lookup agrees with a name-derived backend: `None`
    /// when there was nothing to compare (no name, or the host is unknown).
    pub endpoint_consistent: Option<bool>,
    /// Every Service the answering address belongs to (empty if unknown).
    pub candidates: &'i [EndpointCandidate],
    /// A short fixed explanation of how the answer was reached.
    pub note: &'static str,
}

impl<'i> ActualBackend<'i> {
    /// The Service of `candidate`, which `choice` chose among `candidates`
    /// for the answering address.
    fn endpoint(
        candidate: &'i EndpointCandidate,
        choice: &CandidateChoice<'i>,
        gateway_action: GatewayAction,
        candidates: &'i [EndpointCandidate],
        endpoint_consistent: Option<bool>,
        note: &'static str,
    ) -> Self {
        ActualBackend {
            backend: Some(candidate_backend(candidate)),
            source: ActualSource::Endpoint,
            gateway_action,
            ambiguous: choice.ambiguous,
            tie_broken_by_expected: choice.tie_broken_by_expected,
            endpoint_consistent,
            candidates,
            note,
        }
    }

    fn none(
        gateway_action: GatewayAction,
        candidates: &'i [EndpointCandidate],
        note: &'static str,
    ) -> Self {
        ActualBackend {
            backend: None,
            source: ActualSource::None,
            gateway_action,
            ambiguous: false,
            tie_broken_by_expected: false,
            endpoint_consistent: None,
            candidates,
            note,
        }
    }
}

/// Resolves the Service that served the request described by `evidence`.
///
/// Order:
/// 1. the gateway's own answers (sentinel names/hosts, flags, status) →
///    no backend;
/// 2. a cluster name that names a Service → that Service (`cluster_name`),
///    cross-checked against the endpoint lookup (`endpoint_consistent`);
/// 3. a cluster or route name that names a route rule (Envoy Gateway, Kong,
///    Istio/Traefik route names) → the rule's backendRef when the name carries
///    its index or the rule has a single backend (`cluster_name`); otherwise
///    the rule's backends intersected with the endpoint candidates
///    (`endpoint`), ties broken by `expected_backend_keys`;
/// 4. the endpoint lookup alone (`endpoint`);
/// 5. nothing (`none`).
///
/// `expected_backend_keys` are the `namespace/name` keys the route decision
/// allows; they only break ties between Services selecting the same pod.
pub fn resolve_actual<'i>(
    evidence: &UpstreamEvidence<'i>,
    endpoints: &'i EndpointIndex,
    routes: &'i RouteIndex,
    expected_backend_keys: &[&str],
) -> ActualBackend<'i> {
    let names = EvidenceNames::parse(evidence);
    resolve_actual_named(evidence, &names, endpoints, routes, expected_backend_keys)
}

/// The cluster and route names of an [`UpstreamEvidence`], parsed once so
/// that the resolver and the caller (which compares the named rule with the
/// decision) share one parse per record.
#[derive(Debug, Clone, Copy, Default)]
pub struct EvidenceNames<'a> {
    /// `upstream_cluster` parsed by [`parse_upstream_name`].
    pub cluster: Option<UpstreamName<'a>>,
    /// `route_name` parsed by [`parse_route_name`].
    pub route_rule: Option<RuleRef<'a>>,
    /// Where the rule `cluster` names was found in a route index before, as
    /// a [`NameMemo`] remembered it ([`Resolution::cluster_rule_at`]): the
    /// resolver then takes the rule from there instead of looking it up by
    /// name. Only [`parse_memo`](Self::parse_memo) fills it.
    pub cluster_rule_at: Option<RuleAt>,
}

impl<'a> EvidenceNames<'a> {
    /// Parses the names of `evidence` with its implementation hint.
    ///
    /// The result equals [`parse_upstream_name`] of the cluster and
    /// [`parse_route_name`] of the route name. Envoy Gateway's route name is
    /// its rule's cluster name plus `/match/<m>/<host>`; when the cluster
    /// parsed as that rule, the route name is recognised by its prefix
    /// instead of being parsed again (half of the naming cost per record).
    pub fn parse(evidence: &UpstreamEvidence<'a>) -> Self {
        let implementation = evidence.implementation_hint.unwrap_or_default();
        let parsed = evidence
            .upstream_cluster
            .and_then(|c| naming::parse_upstream_name_scheme(implementation, c));
        Self::with_cluster(evidence, implementation, parsed)
    }

    /// [`parse`](Self::parse), with the cluster name looked up in (and added
    /// to) `memo`: the same result, without parsing a name seen before.
    pub fn parse_memo(evidence: &UpstreamEvidence<'a>, memo: &mut NameMemo) -> Self {
        let implementation = evidence.implementation_hint.unwrap_or_default();
        let (parsed, found) = match evidence.upstream_cluster {
            Some(c) => memo.parse_upstream_name_scheme_at(implementation, c),
            None => (None, None),
        };
        let mut names = Self::with_cluster(evidence, implementation, parsed);
        names.cluster_rule_at = found;
        names
    }

    /// [`parse`](Self::parse) of `evidence` whose cluster name is known to
    /// parse, under its implementation hint, to the Envoy Gateway route rule
    /// `rule` (borrowing from the cluster name), found at `at` in a route
    /// index (see [`RuleCluster`]): the same names, with the rule's position
    /// as [`parse_memo`](Self::parse_memo) gives a remembered one.
    pub fn of_rule_cluster(evidence: &UpstreamEvidence<'a>, rule: RuleRef<'a>, at: RuleAt) -> Self {
        if evidence.route_name.is_none() {
            // `with_cluster` without a route name to recognise or parse.
            return Self {
                cluster: Some(UpstreamName::Rule(rule)),
                route_rule: None,
                cluster_rule_at: Some(at),
            };
        }
        let implementation = evidence.implementation_hint.unwrap_or_default();
        let parsed = Some((Implementation::EnvoyGateway, UpstreamName::Rule(rule)));
        let mut names = Self::with_cluster(evidence, implementation, parsed);
        names.cluster_rule_at = Some(at);
        names
    }

    /// Remembers in `memo` where the resolver found the rule the cluster
    /// names (`resolution` must come from resolving these names), so that
    /// the next record with the same cluster name skips the lookup.
    ///
    /// Only a position the memo already holds is not stored again: a
    /// position found in another route index than the remembered one (live
    /// snapshots change the index) replaces it, or the name would lose the
    /// fast path for good after the first index change.
    pub fn remember_in(
        &self,
        evidence: &UpstreamEvidence<'_>,
        resolution: &Resolution<'_>,
        memo: &mut NameMemo,
    ) {
        if self.cluster_rule_at == resolution.cluster_rule_at {
            return;
        }
        if let (Some(at), Some(cluster)) = (resolution.cluster_rule_at, evidence.upstream_cluster) {
            memo.remember_rule_at(
                evidence.implementation_hint.unwrap_or_default(),
                cluster,
                at,
            );
        }
    }

    /// The rest of [`parse`](Self::parse) once the cluster name is parsed.
    fn with_cluster(
        evidence: &UpstreamEvidence<'a>,
        implementation: Implementation,
        parsed: Option<(Implementation, UpstreamName<'a>)>,
    ) -> Self {
        let cluster = parsed.map(|(_, name)| name);
        let route_rule = evidence.route_name.and_then(|r| {
            match (parsed, evidence.upstream_cluster.and_then(naming::present)) {
                (Some((Implementation::EnvoyGateway, UpstreamName::Rule(rule))), Some(c))
                    if rule.backend_index.is_none()
                        && naming::is_envoy_gateway_route_of_cluster(c, r.trim()) =>
                {
                    Some(rule)
                }
                _ => parse_route_name(implementation, r),
            }
        });
        Self {
            cluster,
            route_rule,
            cluster_rule_at: None,
        }
    }

    /// The route rule the log names: the route name's, else the cluster's
    /// when the cluster names a rule.
    pub fn named_rule(&self) -> Option<RuleRef<'a>> {
        self.route_rule.or(match self.cluster {
            Some(UpstreamName::Rule(rule)) => Some(rule),
            _ => None,
        })
    }
}

/// [`resolve_actual`] with the names already parsed (`names` must come from
/// [`EvidenceNames::parse`] of the same `evidence`).
pub fn resolve_actual_named<'i>(
    evidence: &UpstreamEvidence<'i>,
    names: &EvidenceNames<'i>,
    endpoints: &'i EndpointIndex,
    routes: &'i RouteIndex,
    expected_backend_keys: &[&str],
) -> ActualBackend<'i> {
    ResolveInput::new(evidence, names, endpoints, routes, expected_backend_keys)
        .resolve()
        .actual
}

/// What [`ResolveInput::resolve`] found.
#[derive(Debug, Clone, Copy)]
pub struct Resolution<'i> {
    /// The answer, as [`resolve_actual_named`] gives it.
    pub actual: ActualBackend<'i>,
    /// The Service id ([`BackendServiceIds`]) of `actual.backend`, when ids
    /// were used and tell it.
    pub service: Option<u32>,
    /// Where the rule the cluster name names was found in the route index
    /// given to the resolver (stamped with its instance), when the resolver
    /// looked for it (see [`EvidenceNames::remember_in`]).
    pub cluster_rule_at: Option<RuleAt>,
}

impl<'i> Resolution<'i> {
    /// An answer that did not look for the cluster's rule.
    fn of(actual: ActualBackend<'i>, service: Option<u32>) -> Self {
        Resolution {
            actual,
            service,
            cluster_rule_at: None,
        }
    }
}

/// Service ids for [`ResolveInput::ids`]: a table built from the route and
/// endpoint indexes being resolved against, and the expected backends' ids
/// in it ([`BackendServiceIds::allowed`] of each), one per expected key.
#[derive(Debug, Clone, Copy)]
pub struct ResolveIds<'t, 'i> {
    /// Built by [`BackendServiceIds::build`] from the same two indexes.
    pub table: &'t BackendServiceIds<'i>,
    /// The Service id of each expected backend key, in the same order.
    pub expected: &'t [u32],
}

/// The expected backends as the resolver compares them with candidates.
#[derive(Debug, Clone, Copy)]
enum Expected<'e> {
    /// `namespace/name` keys, compared with candidate keys.
    Keys(&'e [&'e str]),
    /// Service ids, compared with candidate ids (see [`ids`]).
    Ids(&'e [u32]),
}

/// The answering upstream of a record as the caller already found it in the
/// endpoint index ([`EndpointIndex::lookup_canonical_v4`] of the last
/// attempt, when that is a single canonical `a.b.c.d:port`).
///
/// Only that lookup makes one, so the address and its candidates always
/// belong together; the resolver still checks that the candidates are the
/// index's it resolves against ([`EndpointIndex::holds`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnsweredBy<'i> {
    /// The address, as [`answering_host`] parses the last attempt.
    addr: SocketAddr,
    /// Its candidates in the endpoint index it was found in.
    candidates: &'i [EndpointCandidate],
    /// See [`address_id`](Self::address_id).
    address_id: u32,
}

impl<'i> AnsweredBy<'i> {
    /// The address found.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its candidates in the endpoint index it was found in.
    pub fn candidates(&self) -> &'i [EndpointCandidate] {
        self.candidates
    }

    /// An id of the address in the endpoint index it was found in
    /// ([`EndpointIndex::instance`]): the position of its first candidate
    /// among the index's candidates. Within one index, two addresses with
    /// candidates have equal ids exactly when they are the same address, so
    /// the id stands for the address's canonical text (the text that was
    /// looked up). `None` for an address without candidates.
    pub fn address_id(&self) -> Option<u32> {
        (!self.candidates.is_empty()).then_some(self.address_id)
    }
}

/// Everything the resolver reads for one record, borrowed: the evidence and
/// its parsed names, the two indexes, the expected backends, and what the
/// caller already knows (Service ids, the answering upstream). The optional
/// parts only save work: [`resolve`](Self::resolve) gives the same
/// [`ActualBackend`] with or without them.
#[derive(Debug, Clone, Copy)]
pub struct ResolveInput<'a, 'i> {
    /// What the log says about the upstream.
    pub evidence: &'a UpstreamEvidence<'i>,
    /// The names of `evidence`, from [`EvidenceNames::parse`] or
    /// [`EvidenceNames::parse_memo`] (then the cluster's rule is taken from
    /// where the memo says it was found before, when that was in `routes`).
    pub names: &'a EvidenceNames<'i>,
    /// Endpoint index of the answering address.
    pub endpoints: &'i EndpointIndex,
    /// Route index the logged rule is looked up in.
    pub routes: &'i RouteIndex,
    /// The `namespace/name` keys the route decision allows; they only break
    /// ties between Services selecting the same pod.
    pub expected_backend_keys: &'a [&'a str],
    /// Service ids to compare Services by, one per expected key; ignored
    /// unless built from `routes` and `endpoints` with as many ids as keys.
    pub ids: Option<ResolveIds<'a, 'i>>,
    /// The answering upstream as the caller found it
    /// ([`EndpointIndex::lookup_canonical_v4`] of the last attempt): the last
    /// attempt is then neither classified nor parsed again. Candidates that
    /// are not `endpoints`' own are ignored and looked up.
    pub answered: Option<AnsweredBy<'i>>,
}

impl<'a, 'i> ResolveInput<'a, 'i> {
    /// The input without ids or a known answering upstream.
    pub fn new(
        evidence: &'a UpstreamEvidence<'i>,
        names: &'a EvidenceNames<'i>,
        endpoints: &'i EndpointIndex,
        routes: &'i RouteIndex,
        expected_backend_keys: &'a [&'a str],
    ) -> Self {
        ResolveInput {
            evidence,
            names,
            endpoints,
            routes,
            expected_backend_keys,
            ids: None,
            answered: None,
        }
    }

    /// Resolves the Service that served the request, in the order of
    /// [`resolve_actual`], comparing Services by id when [`Self::ids`]
    /// applies, and says where the cluster's rule was found.
    pub fn resolve(&self) -> Resolution<'i> {
        let ResolveInput {
            evidence,
            names,
            endpoints,
            routes,
            expected_backend_keys,
            ids,
            answered,
        } = *self;
        let ids = ids.filter(|i| {
            i.table.is_for(routes, endpoints) && i.expected.len() == expected_backend_keys.len()
        });
        let expected = match ids {
            Some(i) => Expected::Ids(i.expected),
            None => Expected::Keys(expected_backend_keys),
        };
        let implementation = evidence.implementation_hint.unwrap_or_default();
        let (host, candidates) = match answered.filter(|a| endpoints.holds(a.candidates)) {
            Some(a) => (UpstreamHost::Addr(a.addr), a.candidates),
            None => {
                let host = answering_host(implementation, evidence.upstream_hosts);
                let candidates = match host {
                    UpstreamHost::Addr(addr) => endpoints.lookup(addr),
                    _ => &[],
                };
                (host, candidates)
            }
        };
        // Borrowed, not copied: the parsed names are large.
        let cluster = &names.cluster;
        let selected = host.is_selected();
        // Whether a name was logged matters only when no upstream host was
        // selected (see `classify_gateway_action`): the trims are skipped
        // for the usual record.
        let named_upstream = !selected
            && evidence
                .upstream_cluster
                .and_then(naming::present)
                .is_some();
        let named_route = !selected && evidence.route_name.and_then(naming::present).is_some();

        let action = match (cluster, host) {
            (Some(UpstreamName::Gateway(action)), _) => *action,
            (_, UpstreamHost::Sentinel(action)) => action,
            _ => classify_gateway_action(
                implementation,
                evidence.response_flags,
                evidence.status,
                &host,
                named_upstream,
                named_route,
            ),
        };
        if action.is_gateway_answer() {
            return Resolution::of(
                ActualBackend::none(action, candidates, "the gateway answered itself"),
                None,
            );
        }

        // 2. A name that identifies one Service.
        let named_service = match cluster {
            Some(UpstreamName::Service(service)) => Some(service_backend(endpoints, *service)),
            Some(UpstreamName::DashedService(dashed)) => dashed
                .splits()
                .find_map(|(ns, name)| endpoints.service(ns, name))
                .map(|entry| BackendRef {
                    namespace: entry.namespace.as_str(),
                    name: entry.name.as_str(),
                    port: match dashed.port {
                        Some(PortRef::Number(n)) => Some(n),
                        Some(PortRef::Name(n)) => entry.port_by_name(n),
                        None => None,
                    },
                }),
            _ => None,
        };
        if let Some(backend) = named_service {
            return Resolution::of(
                ActualBackend {
                    backend: Some(backend),
                    source: ActualSource::ClusterName,
                    gateway_action: action,
                    ambiguous: false,
                    tie_broken_by_expected: false,
                    endpoint_consistent: consistency(candidates, &backend),
                    candidates,
                    note: "cluster name names the Service",
                },
                None,
            );
        }

        // 3. A name that identifies a route rule.
        let rule_ref = match cluster {
            Some(UpstreamName::Rule(rule)) => Some(rule),
            _ => names.route_rule.as_ref(),
        };
        let mut fallback_note = if matches!(cluster, Some(UpstreamName::DashedService(_))) {
            "service name matched no known Service; endpoint lookup"
        } else {
            "endpoint lookup"
        };
        let mut cluster_rule_at = None;
        if let Some(rule_ref) = rule_ref {
            let from_cluster = matches!(cluster, Some(UpstreamName::Rule(_)));
            let remembered = names
                .cluster_rule_at
                .filter(|at| from_cluster && at.index == routes.instance());
            // Positions of the rule: remembered, or looked up by name.
            let found = match remembered {
                Some(at) => Some((at.route as usize, at.rule as usize)),
                None => find_rule(routes, rule_ref).map(|f| (f.route_pos, f.rule_pos)),
            };
            // With ids, the table holds what is needed of the rule's backends;
            // else the compiled rule (a remembered position is checked).
            let in_rule = found.and_then(|(route_pos, rule_pos)| {
                ids.and_then(|i| i.table.rule(route_pos, rule_pos))
                    .map(InRule::Ids)
                    .or_else(|| {
                        routes
                            .routes
                            .get(route_pos)
                            .and_then(|r| r.rules.get(rule_pos))
                            .map(InRule::Rule)
                    })
            });
            if from_cluster {
                cluster_rule_at = found
                    .filter(|_| in_rule.is_some())
                    .and_then(|(route, rule)| {
                        Some(RuleAt {
                            index: routes.instance(),
                            route: u32::try_from(route).ok()?,
                            rule: u32::try_from(rule).ok()?,
                        })
                    });
            }
            match in_rule {
                Some(in_rule) => {
                    let resolved =
                        resolve_in_rule(&in_rule, rule_ref, candidates, expected, action);
                    if let Some((actual, service)) = resolved {
                        return Resolution {
                            actual,
                            service,
                            cluster_rule_at,
                        };
                    }
                    fallback_note = "endpoint outside the logged rule's backends";
                }
                None => fallback_note = "logged rule not in the route index; endpoint lookup",
            }
        }

        // 4. The endpoint alone.
        let choice = choose_among(candidates, expected, |_| true);
        let (actual, service) = match choice.chosen {
            Some(candidate) => (
                ActualBackend::endpoint(
                    candidate,
                    &choice,
                    action,
                    candidates,
                    None,
                    fallback_note,
                ),
                ids.map(|_| candidate.service),
            ),
            None => (
                ActualBackend::none(
                    action,
                    candidates,
                    match host {
                        UpstreamHost::Addr(_) => "upstream host matches no EndpointSlice",
                        UpstreamHost::Named(_) => "upstream host is not an address",
                        _ if rule_ref.is_some() => "rule has several backends and no upstream host",
                        _ => "no upstream name or host",
                    },
                ),
                None,
            ),
        };
        Resolution {
            actual,
            service,
            cluster_rule_at,
        }
    }
}

/// Resolves within the rule the log named; `None` when the endpoint lookup
/// found candidates but none of them is a backend of the rule. Read from a
/// [`BackendServiceIds`] table, it compares Service ids and also returns the
/// answer's id; read from the compiled rule, it compares names.
fn resolve_in_rule<'i>(
    in_rule: &InRule<'_, 'i>,
    rule_ref: &RuleRef<'_>,
    candidates: &'i [EndpointCandidate],
    expected: Expected<'_>,
    action: GatewayAction,
) -> Option<(ActualBackend<'i>, Option<u32>)> {
    let named = rule_ref
        .backend_index
        .and_then(|j| in_rule.service_backend(j));
    // A rule with a single live backend implies that backend, unless the
    // upstream host belongs to other Services only: then the gateway sent the
    // request elsewhere (e.g. it still uses a backend whose weight went to 0),
    // and the endpoint is the better evidence. A backendRef named by the
    // cluster itself is trusted as named.
    let single = in_rule
        .single()
        .filter(|b| b.consistency(candidates) != Some(false));
    if let Some(picked) = named.or(single) {
        return Some((
            ActualBackend {
                backend: Some(picked.backend),
                source: ActualSource::ClusterName,
                gateway_action: action,
                ambiguous: false,
                tie_broken_by_expected: false,
                endpoint_consistent: picked.consistency(candidates),
                candidates,
                note: if named.is_some() {
                    "cluster name names the rule's backendRef"
                } else {
                    "the logged rule has a single backend"
                },
            },
            picked.service,
        ));
    }
    let choice = choose_among(candidates, expected, |c| in_rule.contains(c));
    match choice.chosen {
        Some(candidate) => Some((
            ActualBackend::endpoint(
                candidate,
                &choice,
                action,
                candidates,
                Some(true),
                "endpoint within the logged rule's backends",
            ),
            in_rule.service_of(candidate),
        )),
        None if candidates.is_empty() => Some((
            ActualBackend::none(
                action,
                candidates,
                "rule has several backends and the upstream host is unknown",
            ),
            None,
        )),
        None => None,
    }
}

/// Where [`find_rule`] found a rule.
struct FoundRule {
    /// Position of the route in [`RouteIndex::routes`].
    route_pos: usize,
    /// Position of the rule in the route's `rules`.
    rule_pos: usize,
}

/// The logged rule as the resolver reads it: from a [`BackendServiceIds`]
/// table, or the compiled rule itself.
enum InRule<'t, 'i> {
    Ids(ids::RuleServices<'t, 'i>),
    Rule(&'i CompiledRule),
}

impl<'i> InRule<'_, 'i> {
    /// The rule's `j`-th backend, when it is a Service.
    fn service_backend(&self, j: usize) -> Option<PickedBackend<'i>> {
        match self {
            InRule::Ids(services) => services
                .backends
                .get(j)
                .filter(|b| b.service != ids::NOT_A_SERVICE)
                .map(|b| PickedBackend {
                    backend: BackendRef {
                        namespace: b.namespace,
                        name: b.name,
                        port: b.port,
                    },
                    service: Some(b.service),
                }),
            InRule::Rule(rule) => rule
                .backends
                .get(j)
                .filter(|b| ids::is_service(b))
                .map(|b| PickedBackend {
                    backend: BackendRef {
                        namespace: b.namespace.as_str(),
                        name: b.name.as_str(),
                        port: b.port,
                    },
                    service: None,
                }),
        }
    }

    /// The rule's single live backend ([`ids::single_live_backend`]).
    fn single(&self) -> Option<PickedBackend<'i>> {
        let at = match self {
            InRule::Ids(services) => services.single,
            InRule::Rule(rule) => ids::single_live_backend(rule),
        };
        self.service_backend(usize::try_from(at?).ok()?)
    }

    /// Whether an endpoint candidate is one of the rule's Service backends.
    #[inline]
    fn contains(&self, c: &EndpointCandidate) -> bool {
        match self {
            InRule::Ids(services) => services
                .backends
                .iter()
                .any(|b| b.service != ids::NOT_A_SERVICE && b.service == c.service),
            InRule::Rule(rule) => rule
                .backends
                .iter()
                .any(|b| ids::is_service(b) && c.is_service(&b.namespace, &b.name)),
        }
    }

    /// The Service id of a chosen candidate, when ids are compared.
    fn service_of(&self, c: &EndpointCandidate) -> Option<u32> {
        match self {
            InRule::Ids(_) => Some(c.service),
            InRule::Rule(_) => None,
        }
    }
}

/// A Service backend of the logged rule, with its Service id when the rule
/// was read from a [`BackendServiceIds`] table.
#[derive(Clone, Copy)]
struct PickedBackend<'i> {
    backend: BackendRef<'i>,
    service: Option<u32>,
}

impl PickedBackend<'_> {
    /// Whether the endpoint lookup agrees (`None`: nothing to compare),
    /// by id when there is one, else by name.
    fn consistency(&self, candidates: &[EndpointCandidate]) -> Option<bool> {
        match self.service {
            Some(id) => {
                (!candidates.is_empty()).then(|| candidates.iter().any(|c| c.service == id))
            }
            None => consistency(candidates, &self.backend),
        }
    }
}

/// Finds the rule a [`RuleRef`] names: an exact `ns/name` through the index's
/// name map (no scan, no allocation); Traefik's dashed names by a scan.
fn find_rule(routes: &RouteIndex, rule_ref: &RuleRef<'_>) -> Option<FoundRule> {
    let rule_of = |(route_pos, r): (usize, &CompiledRoute)| {
        r.rules
            .iter()
            .position(|rule| rule.index == rule_ref.rule_index)
            .map(|rule_pos| FoundRule {
                route_pos,
                rule_pos,
            })
    };
    match rule_ref.route {
        RouteRef::Exact { namespace, name } => routes
            .routes_named(namespace, name)
            .filter_map(|i| routes.routes.get(i).map(|r| (i, r)))
            .filter(|(_, r)| r.kind == rule_ref.kind)
            .find_map(rule_of),
        RouteRef::Dashed(_) => routes
            .routes
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.kind == rule_ref.kind && rule_ref.route.matches(&r.namespace, &r.name)
            })
            .find_map(rule_of),
    }
}

/// [`choose_candidate_where`] comparing as `expected` says: Service ids
/// (one integer compare a candidate) or keys. The comparison is chosen once
/// per call, not per candidate.
fn choose_among<'c>(
    candidates: &'c [EndpointCandidate],
    expected: Expected<'_>,
    keep: impl Fn(&EndpointCandidate) -> bool,
) -> CandidateChoice<'c> {
    match expected {
        Expected::Ids(ids) => endpoints::choose_candidate_by(
            candidates,
            |c| ids.contains(&c.service),
            |a, b| a.service == b.service,
            keep,
        ),
        Expected::Keys(keys) => endpoints::choose_candidate_by(
            candidates,
            |c| keys.contains(&c.key.as_str()),
            |a, b| a.key == b.key,
            keep,
        ),
    }
}

/// A name-derived Service, borrowing from the index when the Service is known
/// (and resolving a port name there).
fn service_backend<'i>(endpoints: &'i EndpointIndex, service: ServiceRef<'i>) -> BackendRef<'i> {
    let entry = endpoints.service(service.namespace, service.name);
    let port = match service.port {
        Some(PortRef::Number(n)) => Some(n),
        Some(PortRef::Name(name)) => entry.and_then(|e| e.port_by_name(name)),
        None => None,
    };
    match entry {
        Some(e) => BackendRef {
            namespace: e.namespace.as_str(),
            name: e.name.as_str(),
            port,
        },
        None => BackendRef {
            namespace: service.namespace,
            name: service.name,
            port,
        },
    }
}

fn candidate_backend(candidate: &EndpointCandidate) -> BackendRef<'_> {
    BackendRef {
        namespace: candidate.namespace.as_str(),
        name: candidate.name.as_str(),
        port: candidate.service_port,
    }
}

fn consistency(candidates: &[EndpointCandidate], backend: &BackendRef<'_>) -> Option<bool> {
    (!candidates.is_empty()).then(|| {
        candidates
            .iter()
            .any(|c| c.is_service(backend.namespace, backend.name))
    })
}

#[cfg(test)]
mod tests;
