//! The owned, serializable form of a [`Decision`]: the stable JSON contract of
//! `routeproof explain`, plus a readable trace for people.
//!
//! Contract (keep stable; add fields only):
//! `{"outcome", "status", "listener", "route": {"kind","namespace","name","rule",
//! "rule_name","match"} | null, "backends": [{"kind","namespace","name","port",
//! "weight","valid","reason"}], "redirect": {...} | null, "rewrite": {...} | null,
//! "mirrors": [...], "explanation": [...]}`.

use serde::Serialize;

use super::compile::{
    CompiledBackend, MatchCondition, MatchEntry, RouteIndex, RouteKind, RuleAction,
};
use super::decide::{Decision, Outcome, RedirectTarget, RewriteTarget, RuleHit};
use super::matcher::{GrpcNameCondition, Truth, ValueCondition};
use super::request::Request;

/// The decision for one request, as written by `explain`.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionReport {
    /// `forward`, `redirect`, `no_listener`, `no_route`, `error`, `misdirected`.
    pub outcome: &'static str,
    /// The status the gateway answers itself, or null when forwarded.
    pub status: Option<u16>,
    /// `namespace/gateway/listener`.
    pub listener: Option<String>,
    /// The winning route and rule.
    pub route: Option<RouteReport>,
    /// The winning rule's backendRefs.
    pub backends: Vec<BackendReport>,
    /// Redirect answered by the gateway.
    pub redirect: Option<RedirectTarget>,
    /// URL rewrite applied before forwarding.
    pub rewrite: Option<RewriteTarget>,
    /// Mirror targets (they never answer the client).
    pub mirrors: Vec<BackendReport>,
    /// Human-readable steps.
    pub explanation: Vec<String>,
    /// Share of requests answered 500 because their backend is invalid.
    pub error_share: f64,
    /// What a gRPC client sees, for gRPC requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<&'static str>,
    /// True when the decision depends on request attributes that were not given.
    pub ambiguous: bool,
    /// Rules that would win for some value of the unknown attributes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<RouteReport>,
    /// Index version.
    pub index_version: u64,
}

/// A route and rule.
#[derive(Debug, Clone, Serialize)]
pub struct RouteReport {
    /// `HTTPRoute` or `GRPCRoute`.
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// 0-based rule index.
    pub rule: usize,
    /// Rule name.
    pub rule_name: Option<String>,
    /// The winning match.
    #[serde(rename = "match")]
    pub match_: serde_json::Value,
}

impl RouteReport {
    /// The report of a matched rule.
    fn of(h: &RuleHit<'_>) -> Self {
        RouteReport {
            kind: h.route().kind.as_str(),
            namespace: h.route().namespace.clone(),
            name: h.route().name.clone(),
            rule: h.rule().index,
            rule_name: h.rule().name.clone(),
            match_: match_json(h.entry()),
        }
    }
}

/// A backendRef (or mirror target).
#[derive(Debug, Clone, Serialize)]
pub struct BackendReport {
    /// `Service` or `group/Kind`.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Service port.
    pub port: Option<u16>,
    /// Weight.
    pub weight: u32,
    /// Share of the rule's traffic (weight / sum of weights).
    pub share: f64,
    /// Resolved?
    pub valid: bool,
    /// `ResolvedRefs` reason when invalid.
    pub reason: Option<&'static str>,
    /// Details when invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Mirror percentage (mirrors only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
}

fn backend_report(b: &CompiledBackend, total_weight: u64) -> BackendReport {
    BackendReport {
        kind: b.kind.clone(),
        namespace: b.namespace.clone(),
        name: b.name.clone(),
        port: b.port,
        weight: b.weight,
        share: if total_weight == 0 {
            0.0
        } else {
            f64::from(b.weight) / total_weight as f64
        },
        valid: b.is_valid(),
        reason: b.invalid.as_ref().map(|(r, _)| r.as_str()),
        message: b.invalid.as_ref().map(|(_, m)| m.clone()),
        percent: b.mirror_percent,
    }
}

fn value_json(c: &ValueCondition) -> serde_json::Value {
    match c {
        ValueCondition::Exact(v) => serde_json::json!({"type": "Exact", "value": v}),
        ValueCondition::Regex(re) => {
            let pattern = re.as_str();
            let inner = pattern
                .strip_prefix("^(?:")
                .and_then(|p| p.strip_suffix(")$"))
                .unwrap_or(pattern);
            serde_json::json!({"type": "RegularExpression", "value": inner})
        }
    }
}

/// The JSON description of a match.
pub fn match_json(entry: &MatchEntry) -> serde_json::Value {
    match &entry.condition {
        MatchCondition::Http(m) => serde_json::json!({
            "index": entry.index,
            "implicit": entry.implicit,
            "path": {"type": m.path.type_name(), "value": m.path.value()},
            "method": m.method,
            "headers": m.headers.iter().map(|(n, c)| {
                let mut v = value_json(c);
                v["name"] = n.clone().into();
                v
            }).collect::<Vec<_>>(),
            "query_params": m.query.iter().map(|(n, c)| {
                let mut v = value_json(c);
                v["name"] = n.clone().into();
                v
            }).collect::<Vec<_>>(),
        }),
        MatchCondition::Grpc(m) => serde_json::json!({
            "index": entry.index,
            "implicit": entry.implicit,
            "service": m.service.as_ref().map(GrpcNameCondition::value),
            "method": m.method.as_ref().map(GrpcNameCondition::value),
            "headers": m.headers.iter().map(|(n, c)| {
                let mut v = value_json(c);
                v["name"] = n.clone().into();
                v
            }).collect::<Vec<_>>(),
        }),
    }
}

/// A one-line description of a match for traces.
pub fn match_summary(entry: &MatchEntry) -> String {
    match &entry.condition {
        MatchCondition::Http(m) => {
            let mut s = format!("{} {}", m.path.type_name(), m.path.value());
            if let Some(method) = &m.method {
                s.push_str(&format!(", method {method}"));
            }
            for (n, c) in &m.headers {
                s.push_str(&format!(", header {n}{}", condition_text(c)));
            }
            for (n, c) in &m.query {
                s.push_str(&format!(", query {n}{}", condition_text(c)));
            }
            if entry.implicit {
                s.push_str(" (implicit default match)");
            }
            s
        }
        MatchCondition::Grpc(m) => {
            let svc = m.service.as_ref().map_or("*", GrpcNameCondition::value);
            let method = m.method.as_ref().map_or("*", GrpcNameCondition::value);
            let mut s = format!("/{svc}/{method}");
            for (n, c) in &m.headers {
                s.push_str(&format!(", header {n}{}", condition_text(c)));
            }
            s
        }
    }
}

fn condition_text(c: &ValueCondition) -> String {
    match c {
        ValueCondition::Exact(v) => format!("={v}"),
        ValueCondition::Regex(re) => format!("~{}", re.as_str()),
    }
}

impl DecisionReport {
    /// Builds the report of `decision` for `req`.
    pub fn new(index: &RouteIndex, req: &Request<'_>, decision: &Decision<'_>) -> DecisionReport {
        let mut explanation = Vec::new();
        let port = req.effective_port();
        match decision.gateway {
            Some(g) => explanation.push(format!(
                "gateway {}: {} request on port {port}, host {}",
                g.key,
                req.scheme.as_str(),
                req.host.unwrap_or("(none)")
            )),
            None => explanation.push(match req.gateway {
                Some(g) => format!("gateway {g} is not in the manifests"),
                None => format!(
                    "no gateway given and the manifests hold {} gateways; pass --gateway NS/NAME",
                    index.gateways.len()
                ),
            }),
        }
        if let Some(l) = decision.listener {
            explanation.push(format!(
                "listener {} selected ({} port {}, hostname {})",
                l.key,
                l.protocol_name,
                l.port,
                l.hostname.as_deref().unwrap_or("any")
            ));
        }
        let route = decision.hit.as_ref().map(RouteReport::of);
        let alternatives: Vec<RouteReport> =
            decision.alternatives.iter().map(RouteReport::of).collect();
        explain_losers(index, req, decision, &mut explanation);
        for a in &decision.alternatives {
            explanation.push(format!(
                "{} {} rule {} ranks higher but depends on {} not given ({})",
                a.route().kind.as_str(),
                a.route().key,
                a.rule().index,
                decision.unknowns.reason(),
                match_summary(a.entry())
            ));
        }
        let mut backends = Vec::new();
        let mut mirrors = Vec::new();
        let mut error_share = 0.0;
        if let Some(h) = decision.hit {
            explanation.push(format!(
                "matched {} {} rule {}{} by {}",
                h.route().kind.as_str(),
                h.route().key,
                h.rule().index,
                h.rule()
                    .name
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default(),
                match_summary(h.entry())
            ));
            let total: u64 = h.rule().backends.iter().map(|b| u64::from(b.weight)).sum();
            backends = h
                .rule()
                .backends
                .iter()
                .map(|b| backend_report(b, total))
                .collect();
            mirrors = h
                .rule()
                .mirrors
                .iter()
                .map(|b| backend_report(b, 0))
                .collect();
            for b in &h.rule().backends {
                match &b.invalid {
                    Some((reason, msg)) => explanation.push(format!(
                        "backend {} (weight {}) is invalid: {} ({msg}); its share gets 500",
                        b.key,
                        b.weight,
                        reason.as_str()
                    )),
                    None => explanation.push(format!(
                        "backend {} port {} weight {}{}",
                        b.key,
                        b.port.map_or("-".to_string(), |p| p.to_string()),
                        b.weight,
                        if b.weight == 0 {
                            " (never receives traffic)"
                        } else {
                            ""
                        }
                    )),
                }
            }
            match &h.rule().action {
                RuleAction::Forward { error_share: s } => error_share = *s,
                RuleAction::Error { reason } => {
                    error_share = 1.0;
                    explanation.push(match *reason {
                        "NoBackends" => "the rule has no backendRefs: every request gets 500".into(),
                        "AllWeightsZero" => "every backendRef has weight 0: the spec leaves this unspecified; treated as 500 (most implementations answer 500 or 503)".into(),
                        _ => "no backendRef of the rule is valid: every request gets 500".into(),
                    });
                }
                RuleAction::Redirect => {}
            }
        } else if decision.outcome == Outcome::NoRoute {
            explanation.push("no route on the listener matches: 404".into());
        }
        let redirect = decision.redirect(req);
        if let Some(r) = &redirect {
            explanation.push(format!(
                "answered by the gateway with {} to {}://{}{}{}",
                r.status_code,
                r.scheme,
                r.host,
                r.port.map(|p| format!(":{p}")).unwrap_or_default(),
                r.path
            ));
        }
        let rewrite = decision.rewrite(req);
        if let Some(r) = &rewrite {
            explanation.push(format!(
                "rewritten before forwarding: host {}, path {}",
                r.host.as_deref().unwrap_or("(unchanged)"),
                r.path.as_deref().unwrap_or("(unchanged)")
            ));
        }
        if decision.outcome == Outcome::Misdirected {
            explanation.push("the Host belongs to another listener than the TLS SNI: 421".into());
        }
        let grpc_status = (req.protocol == super::request::Protocol::Grpc)
            .then(|| RouteKind::grpc_status(decision.outcome))
            .flatten();
        DecisionReport {
            outcome: decision.outcome.as_str(),
            status: decision.status,
            listener: decision.listener.map(|l| l.key.clone()),
            route,
            backends,
            redirect,
            rewrite,
            mirrors,
            explanation,
            error_share,
            grpc_status,
            ambiguous: decision.is_ambiguous(),
            alternatives,
            index_version: index.version,
        }
    }

    /// A readable multi-line trace.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "outcome: {}{}\n",
            self.outcome,
            self.status
                .map(|s| format!(" (status {s})"))
                .unwrap_or_default()
        );
        for (i, step) in self.explanation.iter().enumerate() {
            out.push_str(&format!("  {}. {step}\n", i + 1));
        }
        out
    }
}

/// Adds a step for every higher-ranked match whose path (or gRPC method)
/// matched but that lost on another condition: the "why not my rule?" of a trace.
fn explain_losers(
    index: &RouteIndex,
    req: &Request<'_>,
    decision: &Decision<'_>,
    explanation: &mut Vec<String>,
) {
    const MAX_STEPS: usize = 10;
    let mut shown = 0;
    let mut hidden = 0;
    for (entry, truth) in index.considered(req, decision) {
        if truth != Truth::No {
            continue;
        }
        let Some(why) = why_not(entry, req) else {
            continue;
        };
        if shown == MAX_STEPS {
            hidden += 1;
            continue;
        }
        shown += 1;
        let route = index.route_of(entry);
        explanation.push(format!(
            "{} {} rule {} ({}) ranks higher but does not match: {why}",
            route.kind.as_str(),
            route.key,
            entry.rule,
            match_summary(entry)
        ));
    }
    if hidden > 0 {
        explanation.push(format!(
            "... and {hidden} more higher-ranked matches that do not match"
        ));
    }
}

/// Why a match whose path matched rejects the request; `None` when the path
/// itself does not match (not worth a step).
fn why_not(entry: &MatchEntry, req: &Request<'_>) -> Option<String> {
    use super::request::Lookup;
    let describe = |what: &str, name: &str, cond: &ValueCondition, got: Lookup<'_>| match got {
        Lookup::Present(v) => format!("{what} {name} is {v:?}, wants {}", condition_text(cond)),
        Lookup::Absent => format!("{what} {name} is absent, wants {}", condition_text(cond)),
        Lookup::Unknown => format!("{what} {name} is unknown"),
    };
    match &entry.condition {
        MatchCondition::Http(m) => {
            if !m.path.matches(req.path) {
                return None;
            }
            if let (Some(want), Some(got)) = (&m.method, req.method) {
                if want != got {
                    return Some(format!("method is {got}, wants {want}"));
                }
            }
            for (name, cond) in &m.headers {
                let got = req.headers.get(name);
                if cond.eval(got) == Truth::No {
                    return Some(describe("header", name, cond, got));
                }
            }
            for (name, cond) in &m.query {
                let got = req.query_param(name);
                if cond.eval(got) == Truth::No {
                    return Some(describe("query parameter", name, cond, got));
                }
            }
            None
        }
        MatchCondition::Grpc(m) => {
            let (service, method) = super::matcher::split_grpc_path(req.path)?;
            let name_ok = |c: &Option<GrpcNameCondition>, v: &str| {
                c.as_ref().is_none_or(|c| match c {
                    GrpcNameCondition::Exact(e) => e == v,
                    GrpcNameCondition::Regex(re, _) => re.is_match(v),
                })
            };
            if !name_ok(&m.service, service) || !name_ok(&m.method, method) {
                return None;
            }
            m.headers.iter().find_map(|(name, cond)| {
                let got = req.headers.get(name);
                (cond.eval(got) == Truth::No).then(|| describe("header", name, cond, got))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::load::load_text;
    use crate::gateway::{CompileOptions, ObjectSet, RequestSpec};

    #[test]
    fn trace_says_why_higher_ranked_rules_lost() {
        let yaml = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec: {gatewayClassName: c, listeners: [{name: http, port: 80, protocol: HTTP}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {value: /api}, headers: [{name: x-canary, value: "true"}]}]
    backendRefs: [{name: canary, port: 80}]
  - matches: [{path: {value: /api}, method: POST}]
    backendRefs: [{name: writer, port: 80}]
  - matches: [{path: {value: /other}}]
    backendRefs: [{name: other, port: 80}]
  - backendRefs: [{name: web, port: 80}]
"#;
        let mut set = ObjectSet::default();
        load_text(&mut set, "t.yaml", yaml).unwrap();
        let index = RouteIndex::compile(&set, CompileOptions::default());
        let spec: RequestSpec =
            serde_json::from_str(r#"{"path":"/api/x","headers":{"x-canary":"false"}}"#).unwrap();
        let headers = spec.header_pairs();
        let req = spec.to_request(&headers).unwrap();
        let report = DecisionReport::new(&index, &req, &index.decide(&req));
        let text = report.to_text();
        assert_eq!(report.route.as_ref().map(|r| r.rule), Some(3), "{text}");
        assert!(
            text.contains("rule 0 (PathPrefix /api, header x-canary=true) ranks higher but does not match: header x-canary is \"false\", wants =true"),
            "{text}"
        );
        assert!(text.contains("rule 1 (PathPrefix /api, method POST) ranks higher but does not match: method is GET, wants POST"), "{text}");
        // A rule whose path does not match is not worth a step.
        assert!(!text.contains("/other"), "{text}");
    }
}
