//! Expected vs actual: the verdict of one access-log record.
//!
//! The verdict values are a closed, stable set written to Parquet and alerts;
//! `schemas/verdicts.md` documents them. Each verdict carries a short static
//! reason; the details (expected backends, actual backend) live in their own
//! columns, so judging a record allocates nothing.

use crate::gateway::compile::RuleAction;
use crate::gateway::{Decision, Outcome};

/// The closed set of verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// The request was handled as the configuration says.
    Ok,
    /// Served by a backend the decision does not allow.
    Misrouted,
    /// The gateway answered "no route" but the configuration routes the request.
    UnexpectedNoRoute,
    /// The configuration has no route (404) but a backend served the request.
    UnexpectedRoute,
    /// Served by a backend whose reference is invalid (e.g. no ReferenceGrant).
    ServedInvalidBackend,
    /// The gateway answered 5xx without a backend, as the configuration says
    /// (invalid backend share, no backends).
    ExpectedError,
    /// The gateway answered 5xx without a backend although the configuration
    /// routes the request to a valid backend.
    UnexpectedError,
    /// A redirect was expected and not given, or given and not expected, or
    /// given with another status code.
    RedirectMismatch,
    /// A backend served the request but which one cannot be told.
    UnknownActual,
    /// The record's gateway is not in the route index.
    UnknownGateway,
    /// The configuration changed within the grace window before the record.
    InTransition,
}

impl Verdict {
    /// Every verdict, in a stable order.
    pub const ALL: [Verdict; 11] = [
        Verdict::Ok,
        Verdict::Misrouted,
        Verdict::UnexpectedNoRoute,
        Verdict::UnexpectedRoute,
        Verdict::ServedInvalidBackend,
        Verdict::ExpectedError,
        Verdict::UnexpectedError,
        Verdict::RedirectMismatch,
        Verdict::UnknownActual,
        Verdict::UnknownGateway,
        Verdict::InTransition,
    ];

    /// The stable string value.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Misrouted => "misrouted",
            Verdict::UnexpectedNoRoute => "unexpected_no_route",
            Verdict::UnexpectedRoute => "unexpected_route",
            Verdict::ServedInvalidBackend => "served_invalid_backend",
            Verdict::ExpectedError => "expected_error",
            Verdict::UnexpectedError => "unexpected_error",
            Verdict::RedirectMismatch => "redirect_mismatch",
            Verdict::UnknownActual => "unknown_actual",
            Verdict::UnknownGateway => "unknown_gateway",
            Verdict::InTransition => "in_transition",
        }
    }

    /// Whether the verdict signals a routing problem worth an alert.
    pub fn is_alert(self) -> bool {
        matches!(
            self,
            Verdict::Misrouted
                | Verdict::UnexpectedNoRoute
                | Verdict::UnexpectedRoute
                | Verdict::ServedInvalidBackend
                | Verdict::UnexpectedError
                | Verdict::RedirectMismatch
        )
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the gateway did with the request, as far as the log shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayAnswer {
    /// An upstream (backend) answered.
    Upstream,
    /// The gateway found no route (Envoy `NR`, 404 without upstream).
    NoRoute,
    /// The gateway answered with a redirect (3xx without upstream).
    Redirect,
    /// The gateway answered an error itself (5xx without upstream, direct response).
    Error,
    /// The gateway picked an upstream but could not reach it (`UH`, `UF`, 503).
    UpstreamFailure,
    /// The log does not say.
    Unknown,
}

/// What was observed for one record.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// `(namespace, name)` of the Service that served (or was tried), when resolved.
    pub actual_backend: Option<(&'a str, &'a str)>,
    /// What the gateway did.
    pub answer: GatewayAnswer,
    /// The HTTP status the client got.
    pub status: Option<u16>,
    /// When the log names the route rule the gateway used (Envoy Gateway
    /// cluster and route names): whether that rule is the decision's winner or
    /// one of its alternatives. `None` when the log names no rule.
    pub named_rule_expected: Option<bool>,
}

/// A verdict with its short reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    /// The verdict.
    pub verdict: Verdict,
    /// A short, stable reason (no per-record data).
    pub reason: &'static str,
}

fn judged(verdict: Verdict, reason: &'static str) -> Judgement {
    Judgement { verdict, reason }
}

/// The outcomes the configuration allows for a decision: the winner's, and
/// every ambiguous alternative's (unknown attributes could select those).
#[derive(Debug, Clone, Copy, Default)]
struct Possible {
    forward: bool,
    redirect: bool,
    error: bool,
    not_found: bool,
}

fn possible_outcomes(decision: &Decision<'_>) -> Possible {
    let mut p = Possible::default();
    let mut add = |outcome: Outcome, action: Option<&RuleAction>| match outcome {
        Outcome::Forward => {
            p.forward = true;
            if let Some(RuleAction::Forward { error_share }) = action {
                p.error |= *error_share > 0.0;
            }
        }
        Outcome::Redirect => p.redirect = true,
        Outcome::Error => p.error = true,
        Outcome::NoRoute | Outcome::NoListener | Outcome::Misdirected => p.not_found = true,
    };
    add(decision.outcome, decision.hit.map(|h| &h.rule().action));
    for alt in &decision.alternatives {
        let outcome = match &alt.rule().action {
            RuleAction::Redirect => Outcome::Redirect,
            RuleAction::Error { .. } => Outcome::Error,
            RuleAction::Forward { .. } => Outcome::Forward,
        };
        add(outcome, Some(&alt.rule().action));
    }
    p
}

/// Whether `key` names one of the invalid backendRefs of the winner or an
/// alternative.
fn is_invalid_backend(decision: &Decision<'_>, (ns, name): (&str, &str)) -> bool {
    decision
        .hit
        .iter()
        .chain(decision.alternatives.iter())
        .flat_map(|h| h.rule().backends.iter())
        .any(|b| !b.is_valid() && b.namespace == ns && b.name == name)
}

/// Judges one record.
pub fn judge(decision: &Decision<'_>, observed: &Observation<'_>) -> Judgement {
    judge_known_allowed(decision, observed, None)
}

/// [`judge`], told by the caller whether the observed actual backend is one
/// of the decision's allowed backends (`actual_allowed`, when the caller
/// already compared them, e.g. by id); `None`: compared here by name. Given,
/// it must be what that comparison would say.
#[inline(always)]
pub fn judge_known_allowed(
    decision: &Decision<'_>,
    observed: &Observation<'_>,
    actual_allowed: Option<bool>,
) -> Judgement {
    if decision.gateway.is_none() {
        return judged(Verdict::UnknownGateway, "gateway not in the route index");
    }
    let allowed = |(ns, name): (&str, &str)| {
        actual_allowed.unwrap_or_else(|| {
            decision
                .allowed_backends()
                .any(|b| b.namespace == ns && b.name == name)
        })
    };
    match observed.answer {
        GatewayAnswer::Upstream | GatewayAnswer::UpstreamFailure => {
            let failed = observed.answer == GatewayAnswer::UpstreamFailure;
            // The usual answer first: an allowed backend served (the
            // possible outcomes are not needed for it).
            if observed.actual_backend.is_some_and(allowed) {
                return if failed {
                    judged(Verdict::Ok, "routed as configured; the upstream failed")
                } else {
                    judged(Verdict::Ok, "served by an allowed backend")
                };
            }
            let possible = possible_outcomes(decision);
            let Some(actual) = observed.actual_backend else {
                if !possible.forward && !possible.error {
                    return if possible.redirect {
                        judged(
                            Verdict::RedirectMismatch,
                            "config redirects but an upstream served",
                        )
                    } else {
                        judged(
                            Verdict::UnexpectedRoute,
                            "config has no route but an upstream served",
                        )
                    };
                }
                return match observed.named_rule_expected {
                    Some(true) => judged(
                        Verdict::Ok,
                        "the gateway used the expected rule; its backend was not identified",
                    ),
                    Some(false) => judged(
                        Verdict::Misrouted,
                        "the gateway used a route rule the config does not select",
                    ),
                    None => judged(
                        Verdict::UnknownActual,
                        "upstream could not be resolved to a Service",
                    ),
                };
            };
            if is_invalid_backend(decision, actual) {
                return judged(
                    Verdict::ServedInvalidBackend,
                    "served by a backendRef the config says is invalid",
                );
            }
            if !possible.forward && !possible.error {
                return if possible.redirect {
                    judged(
                        Verdict::RedirectMismatch,
                        "config redirects but a backend served",
                    )
                } else {
                    judged(
                        Verdict::UnexpectedRoute,
                        "config has no route but a backend served",
                    )
                };
            }
            judged(
                Verdict::Misrouted,
                "served by a backend the config does not allow",
            )
        }
        GatewayAnswer::NoRoute => {
            if possible_outcomes(decision).not_found {
                judged(Verdict::Ok, "no route, as configured")
            } else {
                judged(
                    Verdict::UnexpectedNoRoute,
                    "gateway found no route but the config routes it",
                )
            }
        }
        GatewayAnswer::Redirect => {
            if !possible_outcomes(decision).redirect {
                return judged(
                    Verdict::RedirectMismatch,
                    "gateway redirected but the config does not",
                );
            }
            let mut expected_statuses = decision
                .hit
                .iter()
                .chain(decision.alternatives.iter())
                .filter_map(|h| {
                    h.rule()
                        .redirect
                        .as_ref()
                        .map(|r| r.status_code)
                        .or_else(|| {
                            h.rule()
                                .backends
                                .iter()
                                .find_map(|b| b.redirect.as_ref())
                                .map(|r| r.status_code)
                        })
                })
                .peekable();
            let known = expected_statuses.peek().is_some();
            match observed.status {
                Some(s) if known && !expected_statuses.any(|e| e == s) => judged(
                    Verdict::RedirectMismatch,
                    "redirect status differs from the config",
                ),
                _ => judged(Verdict::Ok, "redirected, as configured"),
            }
        }
        GatewayAnswer::Error => {
            let possible = possible_outcomes(decision);
            if possible.error {
                judged(
                    Verdict::ExpectedError,
                    "error answered by the gateway, as configured",
                )
            } else if possible.not_found && observed.status == Some(404) {
                judged(Verdict::Ok, "no route, as configured")
            } else {
                judged(
                    Verdict::UnexpectedError,
                    "gateway answered an error itself but the config has a valid backend",
                )
            }
        }
        GatewayAnswer::Unknown => {
            judged(Verdict::UnknownActual, "the log does not say what served")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::load::load_text;
    use crate::gateway::{CompileOptions, Headers, ObjectSet, Request, RouteIndex};

    const MANIFESTS: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: c
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /canary}, headers: [{name: x-canary, value: "1"}]}]
    backendRefs: [{name: canary, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /canary}}]
    backendRefs: [{name: stable, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters: [{type: RequestRedirect, requestRedirect: {hostname: new.example.com, statusCode: 301}}]
  - matches: [{path: {type: PathPrefix, value: /split}}]
    backendRefs: [{name: stable, port: 80}, {name: secret, namespace: other, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /empty}}]
---
apiVersion: v1
kind: Service
metadata: {name: canary, namespace: infra}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: stable, namespace: infra}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: secret, namespace: other}
spec: {ports: [{port: 80}]}
"#;

    fn index() -> RouteIndex {
        let mut set = ObjectSet::default();
        load_text(&mut set, "t.yaml", MANIFESTS).unwrap();
        RouteIndex::compile(&set, CompileOptions::default())
    }

    fn log_request(path: &str) -> Request<'_> {
        Request {
            host: Some("example.com"),
            method: Some("GET"),
            path,
            query: Some(""),
            headers: Headers {
                known: &[],
                others_unknown: true,
            },
            ..Default::default()
        }
    }

    fn upstream(backend: &str) -> Observation<'_> {
        Observation {
            actual_backend: backend.split_once('/'),
            answer: GatewayAnswer::Upstream,
            status: Some(200),
            named_rule_expected: None,
        }
    }

    #[test]
    fn ambiguous_header_rule_allows_both_backends() {
        let idx = index();
        let d = idx.decide(&log_request("/canary/x"));
        assert!(d.is_ambiguous());
        assert_eq!(judge(&d, &upstream("infra/canary")).verdict, Verdict::Ok);
        assert_eq!(judge(&d, &upstream("infra/stable")).verdict, Verdict::Ok);
        assert_eq!(
            judge(&d, &upstream("infra/other")).verdict,
            Verdict::Misrouted
        );
    }

    #[test]
    fn no_route_cases() {
        let idx = index();
        let d = idx.decide(&log_request("/nothing"));
        assert_eq!(
            judge(&d, &upstream("infra/stable")).verdict,
            Verdict::UnexpectedRoute
        );
        let nr = Observation {
            actual_backend: None,
            answer: GatewayAnswer::NoRoute,
            status: Some(404),
            named_rule_expected: None,
        };
        assert_eq!(judge(&d, &nr).verdict, Verdict::Ok);
        let d = idx.decide(&log_request("/canary"));
        assert_eq!(judge(&d, &nr).verdict, Verdict::UnexpectedNoRoute);
    }

    #[test]
    fn redirects() {
        let idx = index();
        let d = idx.decide(&log_request("/old/page"));
        let redirected = |status| Observation {
            actual_backend: None,
            answer: GatewayAnswer::Redirect,
            status: Some(status),
            named_rule_expected: None,
        };
        assert_eq!(judge(&d, &redirected(301)).verdict, Verdict::Ok);
        assert_eq!(
            judge(&d, &redirected(302)).verdict,
            Verdict::RedirectMismatch
        );
        assert_eq!(
            judge(&d, &upstream("infra/stable")).verdict,
            Verdict::RedirectMismatch
        );
        let d = idx.decide(&log_request("/canary"));
        assert_eq!(
            judge(&d, &redirected(302)).verdict,
            Verdict::RedirectMismatch
        );
    }

    #[test]
    fn invalid_backends_and_errors() {
        let idx = index();
        let d = idx.decide(&log_request("/split"));
        assert_eq!(
            judge(&d, &upstream("other/secret")).verdict,
            Verdict::ServedInvalidBackend
        );
        let err = Observation {
            actual_backend: None,
            answer: GatewayAnswer::Error,
            status: Some(500),
            named_rule_expected: None,
        };
        assert_eq!(judge(&d, &err).verdict, Verdict::ExpectedError);
        let d = idx.decide(&log_request("/empty"));
        assert_eq!(judge(&d, &err).verdict, Verdict::ExpectedError);
        let d = idx.decide(&log_request("/canary"));
        assert_eq!(judge(&d, &err).verdict, Verdict::UnexpectedError);
    }

    #[test]
    fn unknowns() {
        let idx = index();
        let d = idx.decide(&log_request("/canary"));
        let unresolved = Observation {
            actual_backend: None,
            answer: GatewayAnswer::Upstream,
            status: Some(200),
            named_rule_expected: None,
        };
        assert_eq!(judge(&d, &unresolved).verdict, Verdict::UnknownActual);
        let same_rule = Observation {
            named_rule_expected: Some(true),
            ..unresolved
        };
        assert_eq!(judge(&d, &same_rule).verdict, Verdict::Ok);
        let other_rule = Observation {
            named_rule_expected: Some(false),
            ..unresolved
        };
        assert_eq!(judge(&d, &other_rule).verdict, Verdict::Misrouted);
        let other_gw = Request {
            gateway: Some("x/y"),
            ..log_request("/")
        };
        let d = idx.decide(&other_gw);
        assert_eq!(
            judge(&d, &upstream("infra/stable")).verdict,
            Verdict::UnknownGateway
        );
        let failed = Observation {
            actual_backend: Some(("infra", "stable")),
            answer: GatewayAnswer::UpstreamFailure,
            status: Some(503),
            named_rule_expected: None,
        };
        let d = idx.decide(&log_request("/canary"));
        assert_eq!(judge(&d, &failed).verdict, Verdict::Ok);
    }

    #[test]
    fn stable_strings() {
        let names: Vec<&str> = Verdict::ALL.iter().map(|v| v.as_str()).collect();
        let doc = include_str!("../schemas/verdicts.md");
        for n in &names {
            assert!(
                doc.contains(&format!("`{n}`")),
                "schemas/verdicts.md lacks {n}"
            );
        }
    }
}
