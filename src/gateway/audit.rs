//! Static audit of a compiled index: the findings of `routeproof check` and the
//! computed `Accepted` / `ResolvedRefs` conditions of every route parent.

use std::collections::HashMap;

use serde::Serialize;

use super::compile::{MatchCondition, RouteIndex, RuleAction};
use super::matcher::{GrpcMatchCondition, GrpcNameCondition, PathCondition};
use super::report::match_summary;

/// How serious a finding is. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Probably a mistake.
    Warning,
    /// Traffic is or will be mishandled.
    Error,
}

impl Severity {
    /// Parses `info`, `warning`, `error`.
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

/// The object a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectRef {
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// One audit finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Severity.
    pub severity: Severity,
    /// Stable code (`route_not_accepted`, `backend_unresolved`,
    /// `reference_grant_missing`, `reference_grant_unused`, `shadowed_match`,
    /// `listener_conflict`, `parent_not_found`, `rule_always_errors`,
    /// `listener_set_not_allowed`).
    pub code: &'static str,
    /// The object concerned.
    pub object: ObjectRef,
    /// What is wrong, for a person.
    pub message: String,
}

/// A computed status condition.
#[derive(Debug, Clone, Serialize)]
pub struct Condition {
    /// `Accepted` or `ResolvedRefs`.
    #[serde(rename = "type")]
    pub condition_type: &'static str,
    /// `True` or `False`.
    pub status: &'static str,
    /// Reason.
    pub reason: &'static str,
    /// Message.
    pub message: String,
}

/// The computed status of one route parentRef.
#[derive(Debug, Clone, Serialize)]
pub struct RouteParentReport {
    /// The route.
    pub route: ObjectRef,
    /// The parentRef (namespace defaulted).
    pub parent_ref: ParentRefReport,
    /// Conditions.
    pub conditions: Vec<Condition>,
    /// Listeners the route attached to through this ref.
    pub listeners: Vec<String>,
}

/// A parentRef in reports.
#[derive(Debug, Clone, Serialize)]
pub struct ParentRefReport {
    /// Kind (`Gateway`, `ListenerSet`).
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Section name.
    pub section_name: Option<String>,
    /// Port.
    pub port: Option<u16>,
}

/// Everything `check` reports.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// Computed conditions of every route parent that has a status entry.
    pub route_parents: Vec<RouteParentReport>,
}

impl AuditReport {
    /// The most severe finding's severity.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Audits the index.
pub fn audit(index: &RouteIndex) -> AuditReport {
    let mut findings = Vec::new();
    let mut route_parents = Vec::new();
    let route_ref = |ri: usize| {
        let r = &index.routes[ri];
        ObjectRef {
            kind: r.kind.as_str().into(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
        }
    };

    for rp in &index.route_parents {
        let route = &index.routes[rp.route];
        let pref = &rp.parent_ref;
        let parent_desc = format!(
            "{} {}/{}{}",
            pref.kind(),
            pref.namespace.as_deref().unwrap_or_default(),
            pref.name,
            pref.section_name
                .as_ref()
                .map(|s| format!(" section {s}"))
                .unwrap_or_default()
        );
        let Some((accepted, reason, message)) = &rp.accepted else {
            findings.push(Finding {
                severity: Severity::Error,
                code: "parent_not_found",
                object: route_ref(rp.route),
                message: format!(
                    "parentRef {} names a parent that is not in the manifests (or an unsupported kind): the route is silently not attached there and gets no status entry",
                    parent_desc
                ),
            });
            continue;
        };
        if !accepted {
            findings.push(Finding {
                severity: Severity::Error,
                code: "route_not_accepted",
                object: route_ref(rp.route),
                message: format!("not accepted by {parent_desc}: {reason}: {message}"),
            });
        }
        let resolved = match &route.unresolved {
            None => Condition {
                condition_type: "ResolvedRefs",
                status: "True",
                reason: "ResolvedRefs",
                message: "all references resolved".into(),
            },
            Some((r, m)) => Condition {
                condition_type: "ResolvedRefs",
                status: "False",
                reason: r.as_str(),
                message: m.clone(),
            },
        };
        route_parents.push(RouteParentReport {
            route: route_ref(rp.route),
            parent_ref: ParentRefReport {
                kind: pref.kind().to_string(),
                namespace: pref.namespace.clone().unwrap_or_default(),
                name: pref.name.clone(),
                section_name: pref.section_name.clone(),
                port: pref.port,
            },
            conditions: vec![
                Condition {
                    condition_type: "Accepted",
                    status: if *accepted { "True" } else { "False" },
                    reason,
                    message: message.clone(),
                },
                resolved,
            ],
            listeners: rp
                .listeners
                .iter()
                .map(|&l| index.listeners[l].key.clone())
                .collect(),
        });
    }

    for (ri, route) in index.routes.iter().enumerate() {
        for rule in &route.rules {
            for b in rule.backends.iter().chain(&rule.mirrors) {
                if let Some((reason, msg)) = &b.invalid {
                    let missing_grant = reason.as_str() == "RefNotPermitted";
                    findings.push(Finding {
                        severity: Severity::Error,
                        code: if missing_grant {
                            "reference_grant_missing"
                        } else {
                            "backend_unresolved"
                        },
                        object: route_ref(ri),
                        message: format!(
                            "rule {} {} {}: {}: {msg}{}",
                            rule.index,
                            if b.mirror_percent.is_some() { "mirror" } else { "backendRef" },
                            b.key,
                            reason.as_str(),
                            if missing_grant {
                                format!(
                                    "; create a ReferenceGrant in namespace {} from {} in namespace {} to Service {}",
                                    b.namespace,
                                    route.kind.as_str(),
                                    route.namespace,
                                    b.name
                                )
                            } else {
                                String::new()
                            }
                        ),
                    });
                }
            }
            if let RuleAction::Error { reason } = rule.action {
                findings.push(Finding {
                    severity: Severity::Warning,
                    code: "rule_always_errors",
                    object: route_ref(ri),
                    message: format!(
                        "rule {} answers every request with 500: {reason}",
                        rule.index
                    ),
                });
            }
        }
    }

    for g in &index.grants {
        if g.permitted.is_empty() {
            let (namespace, name) = g.key.split_once('/').unwrap_or(("", &g.key));
            findings.push(Finding {
                severity: Severity::Info,
                code: "reference_grant_unused",
                object: ObjectRef {
                    kind: "ReferenceGrant".into(),
                    namespace: namespace.into(),
                    name: name.into(),
                },
                message: "no route reference uses this ReferenceGrant".into(),
            });
        }
    }

    for l in &index.listeners {
        if let Some(reason) = l.conflict {
            let gw = &index.gateways[l.gateway].key;
            let (namespace, name) = gw.split_once('/').unwrap_or(("", gw));
            findings.push(Finding {
                severity: Severity::Error,
                code: "listener_conflict",
                object: ObjectRef {
                    kind: "Gateway".into(),
                    namespace: namespace.into(),
                    name: name.into(),
                },
                message: format!(
                    "listener {} (port {}, {}, hostname {}) is Conflicted ({reason}) and must not serve traffic",
                    l.key,
                    l.port,
                    l.protocol_name,
                    l.hostname.as_deref().unwrap_or("any")
                ),
            });
        }
    }

    for (key, why) in &index.rejected_listener_sets {
        let (namespace, name) = key.split_once('/').unwrap_or(("", key));
        findings.push(Finding {
            severity: Severity::Warning,
            code: "listener_set_not_allowed",
            object: ObjectRef {
                kind: "ListenerSet".into(),
                namespace: namespace.into(),
                name: name.into(),
            },
            message: why.clone(),
        });
    }

    findings.extend(shadowed_matches(index));
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.code.cmp(b.code))
            .then_with(|| {
                (&a.object.namespace, &a.object.name).cmp(&(&b.object.namespace, &b.object.name))
            })
    });
    AuditReport {
        findings,
        route_parents,
    }
}

/// Matches that can never win: in every hostname bucket where they appear, a
/// higher-precedence match accepts every request they accept.
fn shadowed_matches(index: &RouteIndex) -> Vec<Finding> {
    // match id -> (buckets it appears in, buckets where it is shadowed, by whom)
    let mut tally: HashMap<u32, (usize, usize, Option<u32>)> = HashMap::new();
    for l in &index.listeners {
        for table in [&l.http, &l.grpc] {
            for (_host, bucket) in table.buckets() {
                shadowed_in_bucket(index, bucket, &mut tally);
            }
        }
    }
    let mut ids: Vec<_> = tally
        .into_iter()
        .filter(|(_, (seen, shadowed, _))| seen == shadowed)
        .collect();
    ids.sort_by_key(|(id, _)| *id);
    ids.into_iter()
        .filter_map(|(id, (_, _, by))| {
            let entry = &index.matches[id as usize];
            let by = &index.matches[by? as usize];
            let route = index.route_of(entry);
            let winner = index.route_of(by);
            Some(Finding {
                severity: Severity::Warning,
                code: "shadowed_match",
                object: ObjectRef {
                    kind: route.kind.as_str().into(),
                    namespace: route.namespace.clone(),
                    name: route.name.clone(),
                },
                message: format!(
                    "rule {} match {} ({}) can never win: {} {} rule {} match {} ({}) takes precedence for every request it accepts",
                    entry.rule,
                    entry.index,
                    match_summary(entry),
                    winner.kind.as_str(),
                    winner.key,
                    by.rule,
                    by.index,
                    match_summary(by)
                ),
            })
        })
        .collect()
}

/// Marks the shadowed matches of one precedence-sorted bucket. Candidates for
/// the shadowing match are looked up by path (same value, or a prefix that is an
/// ancestor), so large buckets stay near-linear.
fn shadowed_in_bucket(
    index: &RouteIndex,
    bucket: &[u32],
    tally: &mut HashMap<u32, (usize, usize, Option<u32>)>,
) {
    let mut by_path: HashMap<(u8, &str), Vec<usize>> = HashMap::new();
    for (pos, &id) in bucket.iter().enumerate() {
        let key = match &index.matches[id as usize].condition {
            MatchCondition::Http(m) => (m.path.class(), m.path.value()),
            MatchCondition::Grpc(m) => (3, m.service.as_ref().map_or("", GrpcNameCondition::value)),
        };
        by_path.entry(key).or_default().push(pos);
    }
    for (pos, &id) in bucket.iter().enumerate() {
        let entry = &index.matches[id as usize];
        let mut candidates: Vec<usize> = Vec::new();
        match &entry.condition {
            MatchCondition::Http(m) => {
                let value = m.path.value();
                candidates.extend(by_path.get(&(m.path.class(), value)).into_iter().flatten());
                if !matches!(m.path, PathCondition::Regex(..)) {
                    // Every ancestor prefix of the path (including `/`).
                    let mut p = value;
                    loop {
                        if m.path.class() == 0 || p != value {
                            candidates.extend(by_path.get(&(1, p)).into_iter().flatten());
                        }
                        match p.rfind('/') {
                            Some(0) if p != "/" => p = "/",
                            Some(i) if i > 0 => p = &p[..i],
                            _ => break,
                        }
                    }
                }
            }
            MatchCondition::Grpc(m) => {
                let svc = m.service.as_ref().map_or("", GrpcNameCondition::value);
                candidates.extend(by_path.get(&(3, svc)).into_iter().flatten());
                if !svc.is_empty() {
                    candidates.extend(by_path.get(&(3, "")).into_iter().flatten());
                }
            }
        }
        let shadow = candidates
            .into_iter()
            .filter(|&c| c < pos)
            .map(|c| bucket[c])
            .find(|&other| {
                let o = &index.matches[other as usize];
                o.route != entry.route || o.rule != entry.rule
            })
            .filter(|_| true)
            .and_then(|_| {
                // Re-scan in precedence order for the first real subsumer.
                bucket[..pos].iter().copied().find(|&other| {
                    let o = &index.matches[other as usize];
                    (o.route != entry.route || o.rule != entry.rule)
                        && subsumes(&o.condition, &entry.condition)
                })
            });
        let t = tally.entry(id).or_insert((0, 0, None));
        t.0 += 1;
        if let Some(by) = shadow {
            t.1 += 1;
            t.2.get_or_insert(by);
        }
    }
}

fn subsumes(general: &MatchCondition, specific: &MatchCondition) -> bool {
    match (general, specific) {
        (MatchCondition::Http(g), MatchCondition::Http(s)) => g.subsumes(s),
        (MatchCondition::Grpc(g), MatchCondition::Grpc(s)) => grpc_subsumes(g, s),
        _ => false,
    }
}

fn grpc_subsumes(g: &GrpcMatchCondition, s: &GrpcMatchCondition) -> bool {
    let name_covers = |a: &Option<GrpcNameCondition>, b: &Option<GrpcNameCondition>| match (a, b) {
        (None, _) => true,
        (Some(GrpcNameCondition::Exact(x)), Some(GrpcNameCondition::Exact(y))) => x == y,
        (Some(GrpcNameCondition::Regex(_, x)), Some(GrpcNameCondition::Regex(_, y))) => x == y,
        _ => false,
    };
    name_covers(&g.service, &s.service)
        && name_covers(&g.method, &s.method)
        && g.headers
            .iter()
            .all(|(n, c)| s.headers.iter().any(|(n2, c2)| n == n2 && c.same_as(c2)))
}
