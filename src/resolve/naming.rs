//! Upstream cluster, upstream and route names per gateway implementation.
//!
//! Every Gateway API implementation names the thing it proxies to differently
//! (see `docs/access-log-formats.md`, sections 2-10). Some names identify a
//! **Service** directly (Istio, Contour, NGINX Gateway Fabric, HAProxy, Traefik),
//! others identify a **route rule** whose backendRefs all share one cluster or
//! upstream (Envoy Gateway, Kong). This module turns those strings into
//! [`UpstreamName`]s and [`RuleRef`]s, recognises the sentinels a gateway uses
//! for its own answers, and classifies what the gateway did with the request as
//! a [`GatewayAction`].
//!
//! Everything here borrows from the input and never allocates or panics: a name
//! that does not fit a scheme is `None`, never an error, because a log line from
//! another implementation (or a customised format) is an expected input.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use crate::gateway::RouteKind;

use super::endpoints::parse_socket_addr;

/// The gateway implementation that wrote a log line; selects the naming scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Implementation {
    /// Unknown: try every scheme, most specific first.
    #[default]
    Auto,
    /// Envoy Gateway (`envoyproxy/gateway`).
    EnvoyGateway,
    /// Istio in gateway mode.
    Istio,
    /// Contour (`projectcontour/contour`).
    Contour,
    /// NGINX Gateway Fabric.
    NginxGatewayFabric,
    /// HAProxy Kubernetes Ingress Controller (`haproxytech/kubernetes-ingress`).
    HaproxyIngress,
    /// HAProxy Unified Gateway (HUG).
    HaproxyUnifiedGateway,
    /// Kong Ingress Controller + Kong Gateway.
    Kong,
    /// Traefik (`kubernetesgateway` / `kubernetescrd` / `kubernetes` providers).
    Traefik,
}

impl Implementation {
    /// Every value, `Auto` first.
    pub const ALL: [Implementation; 9] = [
        Implementation::Auto,
        Implementation::EnvoyGateway,
        Implementation::Istio,
        Implementation::Contour,
        Implementation::NginxGatewayFabric,
        Implementation::HaproxyIngress,
        Implementation::HaproxyUnifiedGateway,
        Implementation::Kong,
        Implementation::Traefik,
    ];

    /// The stable configuration / output string.
    pub fn as_str(self) -> &'static str {
        match self {
            Implementation::Auto => "auto",
            Implementation::EnvoyGateway => "envoy-gateway",
            Implementation::Istio => "istio",
            Implementation::Contour => "contour",
            Implementation::NginxGatewayFabric => "nginx-gateway-fabric",
            Implementation::HaproxyIngress => "haproxy-ingress",
            Implementation::HaproxyUnifiedGateway => "haproxy-unified-gateway",
            Implementation::Kong => "kong",
            Implementation::Traefik => "traefik",
        }
    }

    /// Whether the data plane is Envoy, so `response_flags` are Envoy flags.
    pub fn is_envoy(self) -> bool {
        matches!(
            self,
            Implementation::EnvoyGateway | Implementation::Istio | Implementation::Contour
        )
    }

    /// Whether the data plane is HAProxy, so `response_flags` is the `%tsc`
    /// termination state.
    pub fn is_haproxy(self) -> bool {
        matches!(
            self,
            Implementation::HaproxyIngress | Implementation::HaproxyUnifiedGateway
        )
    }

    /// Whether names of this implementation's scheme should be tried
    /// (`Auto` tries every scheme).
    pub(crate) fn tries(self, scheme: Implementation) -> bool {
        self == Implementation::Auto || self == scheme
    }
}

impl fmt::Display for Implementation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no known [`Implementation`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown gateway implementation `{0}`; expected one of auto, envoy-gateway, istio, contour, \
     nginx-gateway-fabric, haproxy-ingress, haproxy-unified-gateway, kong, traefik"
)]
pub struct UnknownImplementation(pub String);

impl FromStr for Implementation {
    type Err = UnknownImplementation;

    /// Parses the [`Implementation::as_str`] names, case-insensitively, plus the
    /// common short forms `eg`, `ngf`, `hug`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let found = Implementation::ALL
            .into_iter()
            .find(|i| i.as_str().eq_ignore_ascii_case(t));
        if let Some(i) = found {
            return Ok(i);
        }
        match t.to_ascii_lowercase().as_str() {
            "eg" | "envoygateway" | "envoy_gateway" => Ok(Implementation::EnvoyGateway),
            "ngf" | "nginx-gateway" => Ok(Implementation::NginxGatewayFabric),
            "hug" => Ok(Implementation::HaproxyUnifiedGateway),
            "haproxy" | "haproxy-kubernetes-ingress" => Ok(Implementation::HaproxyIngress),
            _ => Err(UnknownImplementation(s.to_string())),
        }
    }
}

/// What the gateway did with the request, as far as the log tells.
///
/// The stable strings ([`GatewayAction::as_str`]) are written to Parquet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GatewayAction {
    /// An upstream was selected and (as far as the log says) answered.
    Proxied,
    /// No route matched: Envoy `NR`, HUG `backend_not_found`, HAProxy ingress
    /// default backend, or a 404 with no route and no upstream.
    NoRoute,
    /// The route answered itself with a fixed status (Envoy `direct_response`,
    /// EG's 503/500 direct responses, `http-request return`).
    DirectResponse,
    /// A redirect: 3xx with no upstream.
    Redirect,
    /// The cluster/upstream exists but had no healthy host: Envoy `UH`, NGF's
    /// `nginx-503-server.sock`, HAProxy `SC` with `<NOSRV>`, Kong/Traefik 503
    /// without an upstream host.
    NoHealthyUpstream,
    /// The route points at a cluster that does not exist: Envoy `NC`, EG's
    /// `invalid-backend-cluster`.
    ClusterNotFound,
    /// The backendRef was invalid and the gateway answered 500 for it: NGF's
    /// `invalid-backend-ref` / `nginx-500-server.sock`.
    InvalidBackend,
    /// An upstream was tried and failed: Envoy `UF`, `URX`, `UC`, `UR`, `UT`,
    /// `UO`, ...; HAProxy `S`/`D` termination states with a server.
    UpstreamFailure,
    /// The client went away: Envoy `DC`, HAProxy `C` termination states.
    DownstreamDisconnect,
    /// Some other local reply: rate limit, ext-authz denial, fault injection,
    /// overload, HAProxy proxy/resource/internal termination.
    LocalReply,
    /// Not enough in the log to tell.
    Unknown,
}

impl GatewayAction {
    /// The stable output string.
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayAction::Proxied => "proxied",
            GatewayAction::NoRoute => "no_route",
            GatewayAction::DirectResponse => "direct_response",
            GatewayAction::Redirect => "redirect",
            GatewayAction::NoHealthyUpstream => "no_healthy_upstream",
            GatewayAction::ClusterNotFound => "cluster_not_found",
            GatewayAction::InvalidBackend => "invalid_backend",
            GatewayAction::UpstreamFailure => "upstream_failure",
            GatewayAction::DownstreamDisconnect => "downstream_disconnect",
            GatewayAction::LocalReply => "local_reply",
            GatewayAction::Unknown => "unknown",
        }
    }

    /// Whether the gateway answered without any backend being involved (no
    /// route, direct response, redirect, missing cluster, invalid backend).
    /// For these the actual backend is "none" by definition.
    pub fn is_gateway_answer(self) -> bool {
        matches!(
            self,
            GatewayAction::NoRoute
                | GatewayAction::DirectResponse
                | GatewayAction::Redirect
                | GatewayAction::ClusterNotFound
                | GatewayAction::InvalidBackend
                | GatewayAction::LocalReply
        )
    }
}

impl fmt::Display for GatewayAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Service port as a name carries it: a number, or (HAProxy ingress, Kong
/// `pname-`, Traefik CRD) a port name to resolve through the Service object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRef<'a> {
    /// A Service port number (never a target port in these schemes).
    Number(u16),
    /// A Service port name.
    Name(&'a str),
}

impl<'a> PortRef<'a> {
    /// A number if `s` is all digits and fits `u16`, otherwise a name when it is
    /// a valid port name (DNS label), otherwise `None`.
    fn parse(s: &'a str) -> Option<PortRef<'a>> {
        if let Some(n) = parse_port_number(s) {
            return Some(PortRef::Number(n));
        }
        is_port_name(s).then_some(PortRef::Name(s))
    }
}

/// A name that identifies one Service (and usually its port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceRef<'a> {
    /// Service namespace.
    pub namespace: &'a str,
    /// Service name.
    pub name: &'a str,
    /// Service port, when the scheme carries it.
    pub port: Option<PortRef<'a>>,
}

/// A Traefik service name, in which namespace and Service name are joined by
/// `-` (both may contain `-` themselves), so it can only be split against the
/// Services that exist. [`DashedServiceRef::splits`] yields every plausible
/// `(namespace, name)` split for the caller to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DashedServiceRef<'a> {
    /// The text holding `<ns>-<svc>` at its end (gateway form: after one of the
    /// `-svc-` markers; CRD form: the whole text).
    pub text: &'a str,
    /// Service port (CRD form) if present.
    pub port: Option<PortRef<'a>>,
    /// Gateway-provider form `<router>-svc-<ns>-<svc>-<idx>`: the `<ns>-<svc>`
    /// part follows a `-svc-` marker.
    pub after_svc_marker: bool,
}

impl<'a> DashedServiceRef<'a> {
    /// Every `(namespace, name)` split that is syntactically possible.
    pub fn splits(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let text = self.text;
        let after_marker = self.after_svc_marker;
        // Either the tails after each `-svc-` marker, or the whole text; chained
        // rather than boxed so that splitting does not allocate.
        let marker_tails = text
            .match_indices("-svc-")
            .filter(move |_| after_marker)
            .map(move |(i, m)| &text[i + m.len()..]);
        let whole = std::iter::once(text).filter(move |_| !after_marker);
        marker_tails.chain(whole).flat_map(|tail| {
            tail.match_indices('-')
                .map(move |(i, _)| (&tail[..i], &tail[i + 1..]))
                .filter(|(ns, name)| is_dns_label(ns) && is_dns_label(name))
        })
    }
}

/// How a route is identified in a rule-level name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteRef<'a> {
    /// Namespace and name are known exactly.
    Exact {
        /// Route namespace.
        namespace: &'a str,
        /// Route name.
        name: &'a str,
    },
    /// Traefik's normalised router name `<ns>-<name>-gw-<gwNs>-<gwName>-ep-...`
    /// (after the `httproute-` prefix), which can only be matched against
    /// known routes ([`RouteRef::matches`]).
    Dashed(&'a str),
}

impl RouteRef<'_> {
    /// Whether this reference names the route `namespace/name`.
    pub fn matches(&self, namespace: &str, name: &str) -> bool {
        match *self {
            RouteRef::Exact {
                namespace: ns,
                name: n,
            } => ns == namespace && n == name,
            RouteRef::Dashed(text) => {
                // `<ns>-<name>-gw-`; Traefik's Normalize turns every run of
                // non-alphanumerics (including `.` in route names) into `-`.
                let Some(rest) = text.strip_prefix(namespace) else {
                    return false;
                };
                let Some(rest) = rest.strip_prefix('-') else {
                    return false;
                };
                let mut rest = rest.as_bytes();
                for b in name.bytes() {
                    let want = if b.is_ascii_alphanumeric() { b } else { b'-' };
                    match rest.split_first() {
                        Some((&c, tail)) if c == want => rest = tail,
                        _ => return false,
                    }
                }
                rest.starts_with(b"-gw-")
            }
        }
    }
}

/// A name that identifies a route rule (and, for Envoy Gateway's
/// cluster-per-backendRef mode, one backendRef of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRef<'a> {
    /// HTTPRoute or GRPCRoute.
    pub kind: RouteKind,
    /// Which route.
    pub route: RouteRef<'a>,
    /// Rule index in `spec.rules` (positional: it shifts when rules are inserted).
    pub rule_index: usize,
    /// The backendRef index when the name carries one
    /// (`.../rule/<i>/backend/<j>`).
    pub backend_index: Option<usize>,
}

/// What an upstream cluster / upstream / backend name identifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamName<'a> {
    /// One Service.
    Service(ServiceRef<'a>),
    /// One Service, with namespace and name joined by `-` (Traefik).
    DashedService(DashedServiceRef<'a>),
    /// A route rule; the Service must come from the upstream host.
    Rule(RuleRef<'a>),
    /// A sentinel the gateway uses for its own answer.
    Gateway(GatewayAction),
}

/// What one upstream host attempt (`%UPSTREAM_HOST%`, `$upstream_addr`, ...) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamHost<'a> {
    /// An `ip:port` (IPv6 `[addr]:port`; a `http://` URL prefix is accepted).
    Addr(SocketAddr),
    /// A sentinel socket or name meaning the gateway answered itself.
    Sentinel(GatewayAction),
    /// Some other non-empty value: a server name (`SRV_1`), a unix socket, an
    /// nginx upstream group name. An upstream was involved but its address is
    /// unknown.
    Named(&'a str),
    /// `-`, empty, `null`, or HAProxy `<NOSRV>`: no upstream host.
    Absent,
}

impl UpstreamHost<'_> {
    /// Whether an upstream host (addressed or named) was selected.
    pub fn is_selected(&self) -> bool {
        matches!(self, UpstreamHost::Addr(_) | UpstreamHost::Named(_))
    }
}

/// Classifies the answering upstream host: the last of `attempts`, and within
/// it the last of nginx's `", "`-separated retries and `" : "`-separated internal
/// redirects.
pub fn answering_host<'a>(
    implementation: Implementation,
    attempts: &[&'a str],
) -> UpstreamHost<'a> {
    let Some(last) = attempts.last() else {
        return UpstreamHost::Absent;
    };
    // The usual value: one canonical `a.b.c.d:port`, which `classify_host`
    // would also parse to this address after trims and prefix checks that
    // cannot apply to it (it has no whitespace, scheme, `/` or separator).
    if let Some(addr) = super::endpoints::parse_canonical_ipv4_socket(last.as_bytes()) {
        return UpstreamHost::Addr(addr);
    }
    // Both separators contain a space; a single `ip:port` (the usual case)
    // has none, and skipping the substring searches halves the cost here.
    let last = if last.as_bytes().contains(&b' ') {
        let last = last.rsplit(" : ").next().unwrap_or(last);
        last.rsplit(", ").next().unwrap_or(last).trim()
    } else {
        last.trim()
    };
    classify_host(implementation, last)
}

fn classify_host(implementation: Implementation, host: &str) -> UpstreamHost<'_> {
    if host.is_empty() || host == "-" || host == "null" || host == "<NOSRV>" {
        return UpstreamHost::Absent;
    }
    if let Some(addr) = parse_socket_addr(host) {
        return UpstreamHost::Addr(addr);
    }
    if implementation.tries(Implementation::NginxGatewayFabric) {
        // NGF: `upstreams.go createUpstream` / `types.Nginx503Server`.
        match host {
            "unix:/var/run/nginx/nginx-503-server.sock" => {
                return UpstreamHost::Sentinel(GatewayAction::NoHealthyUpstream)
            }
            "unix:/var/run/nginx/nginx-500-server.sock" => {
                return UpstreamHost::Sentinel(GatewayAction::InvalidBackend)
            }
            _ => {}
        }
        // nginx prints the upstream *group* name when no server could be
        // selected; for NGF that group is `<ns>_<svc>_<port>`.
        if implementation == Implementation::NginxGatewayFabric
            && nginx_gateway_fabric(host).is_some()
        {
            return UpstreamHost::Sentinel(GatewayAction::NoHealthyUpstream);
        }
    }
    UpstreamHost::Named(host)
}

/// A parser for one implementation's upstream names.
type NameParser = fn(&str) -> Option<UpstreamName<'_>>;

/// Parses an upstream cluster / upstream / backend name per `implementation`
/// (`Auto` tries every scheme, most specific first). Istio's trailing `;`
/// (its `alt_stat_name`) is ignored. `None` when the name fits no scheme.
pub fn parse_upstream_name(implementation: Implementation, raw: &str) -> Option<UpstreamName<'_>> {
    parse_upstream_name_scheme(implementation, raw).map(|(_, name)| name)
}

/// `raw` trimmed, unless it is empty or a log's placeholder (`-`, `null`).
pub(crate) fn present(raw: &str) -> Option<&str> {
    let name = raw.trim();
    (!matches!(name, "" | "-" | "null")).then_some(name)
}

/// As [`parse_upstream_name`], with the scheme that parsed the name.
pub(crate) fn parse_upstream_name_scheme(
    implementation: Implementation,
    raw: &str,
) -> Option<(Implementation, UpstreamName<'_>)> {
    use Implementation as I;
    let name = present(raw)?;
    let parsers: [(Implementation, NameParser); 8] = [
        (I::EnvoyGateway, envoy_gateway),
        (I::Istio, istio),
        (I::Traefik, traefik_service),
        (I::HaproxyUnifiedGateway, haproxy_unified_gateway),
        (I::HaproxyIngress, haproxy_ingress),
        (I::Contour, contour),
        (I::NginxGatewayFabric, nginx_gateway_fabric),
        (I::Kong, kong_upstream),
    ];
    parsers
        .iter()
        .filter(|(scheme, _)| implementation.tries(*scheme))
        .find_map(|(scheme, parse)| parse(name).map(|n| (*scheme, n)))
}

/// Parses a route name (`%ROUTE_NAME%`, Kong `route.name`, Traefik
/// `RouterName`) into the rule it names. `None` when it fits no scheme or does
/// not name a rule by position (Istio rules with a `name`, Contour, NGF, HAProxy).
pub fn parse_route_name(implementation: Implementation, raw: &str) -> Option<RuleRef<'_>> {
    use Implementation as I;
    let name = present(raw)?;
    if implementation.tries(I::EnvoyGateway) {
        if let Some(UpstreamName::Rule(rule)) = envoy_gateway(name) {
            return Some(rule);
        }
    }
    if implementation.tries(I::Kong) {
        if let Some(rule) = kong_route(name) {
            return Some(rule);
        }
    }
    if implementation.tries(I::Traefik) {
        if let Some(rule) = traefik_router(name) {
            return Some(rule);
        }
    }
    if implementation.tries(I::Istio) {
        if let Some(rule) = istio_route(name) {
            return Some(rule);
        }
    }
    None
}

/// True when `route_name` is `<cluster>/match/<m>[/...]` with a valid match
/// index `m` (`-1` or a decimal): then, if [`envoy_gateway`] parses `cluster`
/// to a rule without a backend index, it parses `route_name` to the same rule
/// (the same leading segments, then the `match` branch, which ignores what
/// follows `m`). Lets the resolver skip the second parse for the usual pair
/// `httproute/ns/name/rule/i` + `httproute/ns/name/rule/i/match/m/host`.
pub(crate) fn is_envoy_gateway_route_of_cluster(cluster: &str, route_name: &str) -> bool {
    let Some(tail) = route_name
        .strip_prefix(cluster)
        .and_then(|rest| rest.strip_prefix("/match/"))
    else {
        return false;
    };
    // The match index ends at the next `/` (a byte search: the index is a
    // few bytes, and `/` is ASCII, so the slice is on a char boundary).
    let m = match tail.bytes().position(|b| b == b'/') {
        Some(end) => tail.get(..end).unwrap_or(tail),
        None => tail,
    };
    m == "-1" || parse_index(m).is_some()
}

/// Envoy Gateway cluster and route names (doc §2.2, `internal/gatewayapi/helpers.go`):
///
/// * `httproute/<ns>/<name>/rule/<i>`: the cluster of a rule (all its backendRefs);
/// * `httproute/<ns>/<name>/rule/<i>/backend/<j>`: cluster per backendRef;
/// * `httproute/<ns>/<name>/rule/<i>/match/<j>/<host>`: the route name;
/// * `grpcroute/...` likewise;
/// * `service/<ns>/<name>/<port>[/<protocol>]`: MergeBackends, one Service;
/// * `invalid-backend-cluster`: the missing cluster for invalid backendRefs.
///
/// Mirror clusters (`rule/<i>-mirror-<k>`), TCP/UDP/TLS routes (`rule/-1`) and
/// custom `clusterStatName` patterns give `None`.
pub fn envoy_gateway(name: &str) -> Option<UpstreamName<'_>> {
    if name == "invalid-backend-cluster" {
        return Some(UpstreamName::Gateway(GatewayAction::ClusterNotFound));
    }
    let mut parts = SlashSegments::new(name);
    let head = parts.next()?;
    if head == "service" {
        let namespace = parts.next().filter(|s| is_dns_label(s))?;
        let service = parts.next().filter(|s| is_dns_label(s))?;
        let port = parse_port_number(parts.next()?)?;
        let protocol = parts.next();
        if parts.next().is_some() || protocol.is_some_and(str::is_empty) {
            return None;
        }
        return Some(UpstreamName::Service(ServiceRef {
            namespace,
            name: service,
            port: Some(PortRef::Number(port)),
        }));
    }
    let kind = match head {
        "httproute" => RouteKind::Http,
        "grpcroute" => RouteKind::Grpc,
        _ => return None,
    };
    let namespace = parts.next().filter(|s| is_dns_label(s))?;
    let route = parts.next().filter(|s| is_dns_subdomain(s))?;
    if parts.next()? != "rule" {
        return None;
    }
    let rule_index = parse_index(parts.next()?)?;
    let backend_index = match parts.next() {
        None => None,
        Some("backend") => {
            let j = parse_index(parts.next()?)?;
            if parts.next().is_some() {
                return None;
            }
            Some(j)
        }
        Some("match") => {
            // matchIdx is -1 for a rule without matches; the host segment may
            // be preceded by `cors-preflight`.
            let m = parts.next()?;
            if m != "-1" {
                parse_index(m)?;
            }
            None
        }
        Some(_) => return None,
    };
    Some(UpstreamName::Rule(RuleRef {
        kind,
        route: RouteRef::Exact {
            namespace,
            name: route,
        },
        rule_index,
        backend_index,
    }))
}

/// Istio cluster `outbound|<servicePort>|<subset>|<svc>.<ns>.svc.<domain>` (doc §3.2,
/// `model.BuildSubsetKey`), with the `;` that Istio ≥1.23's `alt_stat_name`
/// appends stripped. The subset is ignored. Hostnames that are not
/// `<svc>.<ns>.svc.*` (ServiceEntry hosts) give `None`.
pub fn istio(name: &str) -> Option<UpstreamName<'_>> {
    let name = name.strip_suffix(';').unwrap_or(name);
    let mut parts = name.split('|');
    if parts.next()? != "outbound" {
        return None;
    }
    let port = parse_port_number(parts.next()?)?;
    let _subset = parts.next()?;
    let host = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let mut labels = host.split('.');
    let service = labels.next().filter(|s| is_dns_label(s))?;
    let namespace = labels.next().filter(|s| is_dns_label(s))?;
    if labels.next()? != "svc" || labels.next().is_none_or(str::is_empty) {
        return None;
    }
    Some(UpstreamName::Service(ServiceRef {
        namespace,
        name: service,
        port: Some(PortRef::Number(port)),
    }))
}

/// Istio route name `<routeNs>.<routeName>.<ruleIdx>` (doc §3.2,
/// `conversion.go`). Rules with a `name` log that bare name, which names no
/// position and gives `None`.
pub fn istio_route(name: &str) -> Option<RuleRef<'_>> {
    let (namespace, rest) = name.split_once('.')?;
    let (route, index) = rest.rsplit_once('.')?;
    if !is_dns_label(namespace) || !is_dns_subdomain(route) {
        return None;
    }
    Some(RuleRef {
        kind: RouteKind::Http,
        route: RouteRef::Exact {
            namespace,
            name: route,
        },
        rule_index: parse_index(index)?,
        backend_index: None,
    })
}

/// Contour (doc §4.2): the `alt_stat_name` `<ns>_<svc>_<servicePort>` that
/// `%UPSTREAM_CLUSTER%` prints, or the real cluster name
/// `<ns>/<svc>/<servicePort>/<10 hex>` (`%UPSTREAM_CLUSTER_RAW%`). Names that
/// Contour shortened with a hash suffix (over 60 characters) parse, but name a
/// Service that will not be found.
pub fn contour(name: &str) -> Option<UpstreamName<'_>> {
    if name.contains('/') {
        let mut parts = name.split('/');
        let namespace = parts.next().filter(|s| is_dns_label(s))?;
        let service = parts.next().filter(|s| is_dns_label(s))?;
        let port = parse_port_number(parts.next()?)?;
        let hash = parts.next()?;
        if parts.next().is_some() || hash.is_empty() || !is_hex(hash) {
            return None;
        }
        return Some(service_ref(namespace, service, PortRef::Number(port)));
    }
    ns_svc_port(name, false)
}

/// NGINX Gateway Fabric upstream name `<ns>_<svc>_<servicePort>`, plus
/// `_<sessionPersistenceIdx>` with session persistence (doc §6.2,
/// `backend_refs.go ServicePortReference`); `invalid-backend-ref` is the
/// sentinel upstream for invalid backendRefs.
pub fn nginx_gateway_fabric(name: &str) -> Option<UpstreamName<'_>> {
    if name == "invalid-backend-ref" {
        return Some(UpstreamName::Gateway(GatewayAction::InvalidBackend));
    }
    let mut parts = name.split('_');
    let namespace = parts.next().filter(|s| is_dns_label(s))?;
    let service = parts.next().filter(|s| is_dns_label(s))?;
    let port = parse_port_number(parts.next()?)?;
    if let Some(session_index) = parts.next() {
        parse_index(session_index)?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(service_ref(namespace, service, PortRef::Number(port)))
}

/// HAProxy Kubernetes Ingress backend names (doc §7.2, `service.go GetBackendName`):
///
/// * v3.2+: `<ns>_svc_<svc>_<portName|port>`, standalone `<ingNs>_<ing>_svc_<svc>_<port>`;
/// * ≤ v3.1: `<ns>_<svc>_<portName|port>`;
/// * the default backend `<ctrlNs>_svc_default-local-service_http` (or
///   `<ctrlNs>_default-local-service_http`) answers unmatched requests: no route.
///
/// The ≤ v3.1 standalone form `ing_<ns>_<ing>_<port>` names an Ingress, not a
/// Service, and gives `None`.
pub fn haproxy_ingress(name: &str) -> Option<UpstreamName<'_>> {
    let mut parts = [""; 6];
    let mut count = 0;
    for part in name.split('_') {
        if count == parts.len() {
            return None;
        }
        parts[count] = part;
        count += 1;
    }
    let (namespace, service, port) = match &parts[..count] {
        [ns, "svc", svc, port] => (*ns, *svc, *port),
        [ns, _ingress, "svc", svc, port] => (*ns, *svc, *port),
        [ns, svc, port] if *ns != "ing" => (*ns, *svc, *port),
        _ => return None,
    };
    if !is_dns_label(namespace) || !is_dns_label(service) {
        return None;
    }
    if service == "default-local-service" {
        return Some(UpstreamName::Gateway(GatewayAction::NoRoute));
    }
    Some(service_ref(namespace, service, PortRef::parse(port)?))
}

/// HAProxy Unified Gateway backend `<link>_<ns>_<svc>_<port>_<filterHash>` (doc
/// §7.3), where the filter hash is `_` (no filters, giving a trailing `__`) or
/// 32 hex digits; `backend_not_found` is the no-route default backend. Parsed
/// from the right, so a link id containing `_` still works.
pub fn haproxy_unified_gateway(name: &str) -> Option<UpstreamName<'_>> {
    if name == "backend_not_found" {
        return Some(UpstreamName::Gateway(GatewayAction::NoRoute));
    }
    let rest = if let Some(rest) = name.strip_suffix("__") {
        rest
    } else {
        let (rest, hash) = name.rsplit_once('_')?;
        if hash.len() != 32 || !is_hex(hash) {
            return None;
        }
        rest
    };
    let (rest, port) = rest.rsplit_once('_')?;
    let (rest, service) = rest.rsplit_once('_')?;
    let (link, namespace) = rest.rsplit_once('_')?;
    if link.is_empty() || !is_dns_label(namespace) || !is_dns_label(service) {
        return None;
    }
    Some(service_ref(
        namespace,
        service,
        PortRef::Number(parse_port_number(port)?),
    ))
}

/// Kong upstream / Kong service names (doc §8.2):
///
/// * `httproute.<ns>.<name>.<firstRuleIdx>` (also `grpcroute.`): one upstream per
///   rule group, so a [`RuleRef`];
/// * `<svc>.<ns>.<port>.svc`: the upstream host of Ingress-derived services;
/// * `<ns>.<svc>.<port>`: the Kong service name of Ingress-derived services. The
///   doc is silent on this one; it follows KIC's Ingress translator, whose port
///   part is the number or `pnum-<n>` / `pname-<name>` (both accepted here).
///
/// `--combined-services-from-different-httproutes` names
/// (`httproute.<ns>.svc.<bns>.<bname>...`) give `None`.
pub fn kong_upstream(name: &str) -> Option<UpstreamName<'_>> {
    if let Some(rule) = kong_rule(name, false) {
        return Some(UpstreamName::Rule(rule));
    }
    if name.starts_with("httproute.") || name.starts_with("grpcroute.") {
        return None;
    }
    if let Some(rest) = name.strip_suffix(".svc") {
        let mut parts = rest.split('.');
        let service = parts.next().filter(|s| is_dns_label(s))?;
        let namespace = parts.next().filter(|s| is_dns_label(s))?;
        let port = kong_port(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        return Some(service_ref(namespace, service, port));
    }
    let mut parts = name.split('.');
    let namespace = parts.next().filter(|s| is_dns_label(s))?;
    let service = parts.next().filter(|s| is_dns_label(s))?;
    let port = kong_port(parts.next()?)?;
    if parts.next().is_some() {
        return None;
    }
    Some(service_ref(namespace, service, port))
}

/// Kong route name, traditional router: `httproute.<ns>.<name>.<ruleIdx>.<matchIdx>`
/// (doc §8.2). The expressions-router form inserts the hostname before the
/// rule index; it parses with the hostname folded into the route name, which
/// then matches no route.
pub fn kong_route(name: &str) -> Option<RuleRef<'_>> {
    kong_rule(name, true)
}

fn kong_rule(name: &str, with_match_index: bool) -> Option<RuleRef<'_>> {
    let (kind, rest) = if let Some(rest) = name.strip_prefix("httproute.") {
        (RouteKind::Http, rest)
    } else {
        (RouteKind::Grpc, name.strip_prefix("grpcroute.")?)
    };
    let (namespace, rest) = rest.split_once('.')?;
    let rest = if with_match_index {
        let (rest, match_index) = rest.rsplit_once('.')?;
        parse_index(match_index)?;
        rest
    } else {
        rest
    };
    let (route, rule) = rest.rsplit_once('.')?;
    if !is_dns_label(namespace) || !is_dns_subdomain(route) {
        return None;
    }
    Some(RuleRef {
        kind,
        route: RouteRef::Exact {
            namespace,
            name: route,
        },
        rule_index: parse_index(rule)?,
        backend_index: None,
    })
}

fn kong_port(s: &str) -> Option<PortRef<'_>> {
    if let Some(n) = s.strip_prefix("pnum-") {
        return parse_port_number(n).map(PortRef::Number);
    }
    if let Some(n) = s.strip_prefix("pname-") {
        return is_port_name(n).then_some(PortRef::Name(n));
    }
    parse_port_number(s).map(PortRef::Number)
}

/// Traefik service names (doc §9):
///
/// * `<router>-svc-<ns>-<svc>-<backendIdx>@kubernetesgateway`: the per-backendRef
///   leaf service of the Gateway API provider;
/// * `<ns>-<svc>-<port>@kubernetescrd` / `@kubernetes`: IngressRoute / Ingress
///   services (the doc is silent; this is Traefik's documented
///   `namespace-name-port` service naming for those providers).
///
/// The WRR parent `<router>-wrr` names no Service and gives `None`.
pub fn traefik_service(name: &str) -> Option<UpstreamName<'_>> {
    let (body, provider) = name.rsplit_once('@')?;
    match provider {
        "kubernetesgateway" => {
            let (text, backend_index) = body.rsplit_once('-')?;
            parse_index(backend_index)?;
            if !text.contains("-svc-") {
                return None;
            }
            Some(UpstreamName::DashedService(DashedServiceRef {
                text,
                port: None,
                after_svc_marker: true,
            }))
        }
        "kubernetescrd" | "kubernetes" => {
            let (text, port) = body.rsplit_once('-')?;
            let port = PortRef::parse(port)?;
            if !text.contains('-') {
                return None;
            }
            Some(UpstreamName::DashedService(DashedServiceRef {
                text,
                port: Some(port),
                after_svc_marker: false,
            }))
        }
        _ => None,
    }
}

/// Traefik Gateway API router
/// `httproute-<ns>-<name>-gw-<gwNs>-<gwName>-ep-<entryPoint>-<ruleIdx>-<10 hex>@kubernetesgateway`
/// (doc §9). The route is a [`RouteRef::Dashed`].
pub fn traefik_router(name: &str) -> Option<RuleRef<'_>> {
    let body = name.strip_suffix("@kubernetesgateway")?;
    let (kind, body) = if let Some(rest) = body.strip_prefix("httproute-") {
        (RouteKind::Http, rest)
    } else {
        (RouteKind::Grpc, body.strip_prefix("grpcroute-")?)
    };
    let (body, hash) = body.rsplit_once('-')?;
    if hash.is_empty() || !is_hex(hash) {
        return None;
    }
    let (route, rule) = body.rsplit_once('-')?;
    if !route.contains("-gw-") {
        return None;
    }
    Some(RuleRef {
        kind,
        route: RouteRef::Dashed(route),
        rule_index: parse_index(rule)?,
        backend_index: None,
    })
}

/// `<ns>_<svc>_<port>` shared by Contour's alt-stat name, NGF and HAProxy ≤ v3.1;
/// a port name is accepted only when `allow_port_name`.
fn ns_svc_port(name: &str, allow_port_name: bool) -> Option<UpstreamName<'_>> {
    let mut parts = name.split('_');
    let namespace = parts.next().filter(|s| is_dns_label(s))?;
    let service = parts.next().filter(|s| is_dns_label(s))?;
    let port = parts.next()?;
    let port = if allow_port_name {
        PortRef::parse(port)?
    } else {
        PortRef::Number(parse_port_number(port)?)
    };
    if parts.next().is_some() {
        return None;
    }
    Some(service_ref(namespace, service, port))
}

fn service_ref<'a>(namespace: &'a str, name: &'a str, port: PortRef<'a>) -> UpstreamName<'a> {
    UpstreamName::Service(ServiceRef {
        namespace,
        name,
        port: Some(port),
    })
}

/// Classifies what the gateway did from the flags/termination state, status and
/// whether an upstream host was selected.
///
/// * `response_flags` holds Envoy `%RESPONSE_FLAGS%` (comma-separated, `-` for
///   none) or, for HAProxy, the 4-character `%tsc` termination state. Under
///   `Auto` a 4-character value with `--` at the end (or `----`) is read as
///   `%tsc`, anything else as Envoy flags.
/// * `named_upstream` / `named_route`: the log carried a cluster/upstream name
///   or route name (used for implementations without flags: Kong, Traefik, NGF).
///   Only read when `host` was not selected ([`UpstreamHost::is_selected`]):
///   a caller may pass `false` for a selected host without changing the answer.
///
/// Sentinel names and hosts (NGF sockets, `backend_not_found`, ...) are
/// classified by [`parse_upstream_name`] and [`answering_host`]; the caller
/// gives those precedence.
#[inline]
pub fn classify_gateway_action(
    implementation: Implementation,
    response_flags: Option<&str>,
    status: Option<u16>,
    host: &UpstreamHost<'_>,
    named_upstream: bool,
    named_route: bool,
) -> GatewayAction {
    // The usual record: Envoy's "no flags" and a selected upstream host. `-`
    // is no HAProxy `%tsc` (under `Auto` it reads as Envoy flags), and Envoy
    // flags `-` decide nothing, so the host decides, as below.
    if response_flags == Some("-") && host.is_selected() && !implementation.is_haproxy() {
        return GatewayAction::Proxied;
    }
    let flags = response_flags
        .map(str::trim)
        .filter(|f| !f.is_empty() && *f != "null");
    let selected = host.is_selected();
    let looks_like_tsc =
        |f: &str| f.len() == 4 && f.is_ascii() && (f == "----" || f.ends_with("--"));
    let haproxy = implementation.is_haproxy()
        || (implementation == Implementation::Auto && flags.is_some_and(looks_like_tsc));
    if let Some(f) = flags {
        if haproxy {
            if let Some(action) = haproxy_termination(f, status, selected) {
                return action;
            }
        } else if f != "-" {
            if let Some(action) = envoy_flags(f, selected) {
                return action;
            }
        }
    }
    if selected {
        return GatewayAction::Proxied;
    }
    let envoy =
        implementation.is_envoy() || (implementation == Implementation::Auto && flags == Some("-"));
    match status {
        Some(300..=399) => GatewayAction::Redirect,
        Some(_) if envoy => GatewayAction::DirectResponse,
        Some(_) if haproxy && named_upstream => GatewayAction::Proxied,
        Some(404) if !named_upstream && !named_route => GatewayAction::NoRoute,
        Some(503) if named_upstream || named_route => GatewayAction::NoHealthyUpstream,
        Some(_) => GatewayAction::DirectResponse,
        None => GatewayAction::Unknown,
    }
}

/// Envoy response flags (`source/common/stream_info/utility.cc` short names),
/// most decisive first.
fn envoy_flags(flags: &str, selected: bool) -> Option<GatewayAction> {
    let has = |want: &str| flags.split(',').any(|f| f.trim() == want);
    const UPSTREAM: [&str; 11] = [
        "UF", "URX", "UC", "UR", "UT", "UO", "UPE", "UMSDR", "LR", "LH", "UDO",
    ];
    const LOCAL: [&str; 11] = [
        "RL", "UAEX", "RLSE", "FI", "DI", "IH", "SI", "DF", "NFCF", "OM", "DO",
    ];
    if has("NR") {
        Some(GatewayAction::NoRoute)
    } else if has("NC") {
        Some(GatewayAction::ClusterNotFound)
    } else if has("UH") {
        Some(GatewayAction::NoHealthyUpstream)
    } else if UPSTREAM.iter().any(|f| has(f)) {
        Some(GatewayAction::UpstreamFailure)
    } else if has("DC") || has("DPE") || has("DT") {
        Some(GatewayAction::DownstreamDisconnect)
    } else if LOCAL.iter().any(|f| has(f)) {
        Some(if selected {
            GatewayAction::Proxied
        } else {
            GatewayAction::LocalReply
        })
    } else {
        None
    }
}

/// HAProxy `%tsc`: the first character says who ended the session.
fn haproxy_termination(
    tsc: &str,
    status: Option<u16>,
    server_involved: bool,
) -> Option<GatewayAction> {
    let first = tsc.chars().next()?;
    let second = tsc.chars().nth(1)?;
    Some(match first {
        'L' => {
            if matches!(status, Some(300..=399)) {
                GatewayAction::Redirect
            } else {
                GatewayAction::DirectResponse
            }
        }
        'C' | 'c' => GatewayAction::DownstreamDisconnect,
        'S' | 's' | 'D' => {
            if second == 'C' && !server_involved {
                GatewayAction::NoHealthyUpstream
            } else {
                GatewayAction::UpstreamFailure
            }
        }
        'P' | 'R' | 'I' | 'K' | 'U' => GatewayAction::LocalReply,
        _ => return None,
    })
}

/// A decimal port 1..=65535.
fn parse_port_number(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p != 0)
}

/// The `/`-separated segments of a name, like `str::split('/')` but scanning
/// bytes directly: the names are short and the generic `CharSearcher` set-up
/// per segment cost more than the parse itself (Envoy Gateway names are
/// parsed for every record). Splitting at an ASCII byte always lands on a
/// UTF-8 boundary, so every segment is a valid `&str`.
struct SlashSegments<'a> {
    rest: Option<&'a str>,
}

impl<'a> SlashSegments<'a> {
    fn new(text: &'a str) -> Self {
        Self { rest: Some(text) }
    }
}

impl<'a> Iterator for SlashSegments<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match rest.bytes().position(|b| b == b'/') {
            Some(at) => {
                self.rest = rest.get(at + 1..);
                rest.get(..at)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// A decimal index (rule, match, backend) without sign.
fn parse_index(s: &str) -> Option<usize> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// RFC 1123 label: 1-63 of `[a-z0-9-]`, alphanumeric at both ends (namespaces,
/// Service names, port names).
pub(crate) fn is_dns_label(s: &str) -> bool {
    is_dns_label_bytes(s.as_bytes())
}

/// [`is_dns_label`] on bytes.
fn is_dns_label_bytes(b: &[u8]) -> bool {
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A Service port name (IANA_SVC_NAME): a DNS label of at most 15 characters
/// with at least one letter, so it never looks like a number.
fn is_port_name(s: &str) -> bool {
    s.len() <= 15 && is_dns_label(s) && s.bytes().any(|b| b.is_ascii_lowercase())
}

/// RFC 1123 subdomain (route names): dot-separated labels, at most 253 bytes.
fn is_dns_subdomain(s: &str) -> bool {
    // Same as `s.split('.').all(is_dns_label)`, one pass over the bytes.
    let b = s.as_bytes();
    if b.len() > 253 {
        return false;
    }
    let mut label_start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'.' {
            if !is_dns_label_bytes(&b[label_start..i]) {
                return false;
            }
            label_start = i + 1;
        }
    }
    is_dns_label_bytes(&b[label_start..])
}
