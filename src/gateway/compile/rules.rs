//! Compiling routes: rules, matches and filters (validated, with the
//! `UnsupportedValue` / `IncompatibleFilters` conditions), backendRefs and
//! weights.

use std::collections::HashSet;

use super::*;
use crate::gateway::matcher::{
    anchored_regex, GrpcMatchCondition, GrpcNameCondition, HttpMatchCondition, PathCondition,
    ValueCondition,
};
use crate::gateway::model::{
    BackendObjectRef, GrpcRoute, HttpBackendRef, HttpRoute, HttpRouteFilter, HttpRouteMatch,
    PathModifier,
};

/// A rule that failed validation makes the whole route `Accepted=False`.
pub(super) struct RouteInvalid(&'static str, String);

pub(super) const HTTP_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

impl RouteIndex {
    pub(super) fn compile_routes(&mut self, objects: &ObjectSet, refs: &RefContext<'_>) {
        // The timestamp is parsed once per route, not once per comparison.
        let mut order: Vec<(RouteKind, usize, &ObjectMeta, i64)> = objects
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
            .map(|(kind, i, meta)| (kind, i, meta, creation_ts(meta)))
            .collect();
        // Precedence ties across routes: oldest creationTimestamp, then
        // "namespace/name" alphabetically (`httproute_types.go` ~line 200).
        order.sort_by(|a, b| {
            a.3.cmp(&b.3)
                .then_with(|| name_order(a.2, b.2))
                .then(a.0.cmp(&b.0))
        });
        let mut seen = HashSet::new();
        for (kind, i, meta, _) in order {
            // Duplicate objects (same kind/namespace/name in several files): first
            // wins. The check must come *before* compiling: compiling registers
            // the route's matches under the next route id, so a compiled-then-
            // dropped duplicate would lend its matches to the following route.
            if !seen.insert((kind, meta.key())) {
                continue;
            }
            let compiled = match kind {
                RouteKind::Http => self.compile_http_route(&objects.http_routes[i], refs),
                RouteKind::Grpc => self.compile_grpc_route(&objects.grpc_routes[i], refs),
            };
            self.routes.push(compiled);
        }
    }

    pub(super) fn compile_http_route(
        &mut self,
        route: &HttpRoute,
        refs: &RefContext<'_>,
    ) -> CompiledRoute {
        let ns = &route.metadata.namespace;
        let route_id = self.routes.len() as u32;
        let mut compiled = new_route(RouteKind::Http, &route.metadata, &route.spec.hostnames);
        compiled.cluster_status = route.status.clone();
        compiled.parent_refs = route.spec.parent_refs.clone();
        // Omitted rules: the CRD default is one rule matching `PathPrefix /` with
        // no backends (`httproute_types.go` Rules, ~lines 121-135).
        let default_rules = [crate::gateway::model::HttpRouteRule::default()];
        let rules = route.spec.rules.as_deref().unwrap_or(&default_rules);
        self.compile_rules(&mut compiled, rules, |index, ri, rule| {
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
                index.push_match(route_id, ri, mi, implicit, MatchCondition::Http(condition));
            }
            let backends = rule.backend_refs.as_deref().unwrap_or(&[]);
            let filters = compile_filters(&rule.filters, RouteKind::Http, !backends.is_empty())?;
            let path_modifiers = [
                filters.redirect.as_ref().and_then(|r| r.path.as_ref()),
                filters.rewrite.as_ref().and_then(|r| r.path.as_ref()),
            ];
            for modifier in path_modifiers.into_iter().flatten() {
                require_single_prefix(modifier, prefix_matches, matches.len())?;
            }
            let rule_kind = RuleSource {
                index: ri,
                name: rule.name.clone(),
                kind: RouteKind::Http,
                namespace: ns,
            };
            compile_rule(rule_kind, filters, backends, refs, index)
        });
        compiled
    }

    pub(super) fn compile_grpc_route(
        &mut self,
        route: &GrpcRoute,
        refs: &RefContext<'_>,
    ) -> CompiledRoute {
        let ns = &route.metadata.namespace;
        let route_id = self.routes.len() as u32;
        let mut compiled = new_route(RouteKind::Grpc, &route.metadata, &route.spec.hostnames);
        compiled.cluster_status = route.status.clone();
        compiled.parent_refs = route.spec.parent_refs.clone();
        self.compile_rules(&mut compiled, &route.spec.rules, |index, ri, rule| {
            let implicit = rule.matches.is_empty();
            if implicit {
                // No matches: every gRPC request matches (`grpcroute_types.go`).
                let any = GrpcMatchCondition {
                    service: None,
                    method: None,
                    headers: Vec::new(),
                };
                index.push_match(route_id, ri, 0, implicit, MatchCondition::Grpc(any));
            }
            for (mi, m) in rule.matches.iter().enumerate() {
                let condition = compile_grpc_match(m)?;
                index.push_match(route_id, ri, mi, implicit, MatchCondition::Grpc(condition));
            }
            let backends = rule.backend_refs.as_deref().unwrap_or(&[]);
            let filters = compile_filters(&rule.filters, RouteKind::Grpc, !backends.is_empty())?;
            let rule_kind = RuleSource {
                index: ri,
                name: rule.name.clone(),
                kind: RouteKind::Grpc,
                namespace: ns,
            };
            compile_rule(rule_kind, filters, backends, refs, index)
        });
        compiled
    }

    /// Compiles every rule with `compile_one`. The first invalid rule makes the
    /// whole route `Accepted=False` (its reason kept) and withdraws the route's
    /// matches, so it serves nothing; `ResolvedRefs` is then computed.
    fn compile_rules<R>(
        &mut self,
        compiled: &mut CompiledRoute,
        rules: &[R],
        mut compile_one: impl FnMut(&mut RouteIndex, usize, &R) -> Result<CompiledRule, RouteInvalid>,
    ) {
        let first_match = self.matches.len();
        for (ri, rule) in rules.iter().enumerate() {
            match compile_one(self, ri, rule) {
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
    }

    fn push_match(
        &mut self,
        route: u32,
        rule: usize,
        index: usize,
        implicit: bool,
        condition: MatchCondition,
    ) {
        self.matches.push(MatchEntry {
            route,
            rule: rule as u32,
            index: index as u32,
            implicit,
            condition,
        });
    }
}

pub(super) fn new_route(kind: RouteKind, meta: &ObjectMeta, hostnames: &[String]) -> CompiledRoute {
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

pub(super) fn unsupported(msg: String) -> RouteInvalid {
    RouteInvalid("UnsupportedValue", msg)
}

pub(super) fn value_condition(
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

pub(super) fn compile_http_match(m: &HttpRouteMatch) -> Result<HttpMatchCondition, RouteInvalid> {
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

pub(super) fn compile_grpc_match(
    m: &crate::gateway::model::GrpcRouteMatch,
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
pub(super) struct Filters<'a> {
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
pub(super) fn compile_filters(
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

pub(super) fn path_rewrite(p: &PathModifier) -> Result<PathRewrite, RouteInvalid> {
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
pub(super) fn require_single_prefix(
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

/// Which rule [`compile_rule`] compiles.
pub(super) struct RuleSource<'a> {
    /// Rule index in the route.
    pub(super) index: usize,
    /// Rule name.
    pub(super) name: Option<String>,
    /// Route kind (the `from` of ReferenceGrants).
    pub(super) kind: RouteKind,
    /// Route namespace.
    pub(super) namespace: &'a str,
}

pub(super) fn compile_rule(
    source: RuleSource<'_>,
    filters: Filters<'_>,
    backend_refs: &[HttpBackendRef],
    refs: &RefContext<'_>,
    idx: &mut RouteIndex,
) -> Result<CompiledRule, RouteInvalid> {
    let RuleSource {
        index,
        name,
        kind,
        namespace: route_ns,
    } = source;
    let route_key = |target: &BackendObjectRef| {
        format!(
            "{route_ns} -> {}/{}",
            target.namespace(route_ns),
            target.name
        )
    };
    let resolve = |target: &BackendObjectRef, idx: &mut RouteIndex| {
        let (invalid, grants) = refs.resolve(kind, route_ns, target);
        for g in grants {
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

pub(super) fn backend(
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

pub(super) fn first_unresolved(rules: &[CompiledRule]) -> Option<(RefReason, String)> {
    rules
        .iter()
        .flat_map(|r| r.backends.iter().chain(&r.mirrors))
        .find_map(|b| b.invalid.clone())
}
