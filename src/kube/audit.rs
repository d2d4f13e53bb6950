//! Config audits of consecutive snapshots: the [`ConfigAuditor`] diffs
//! snapshot N-1 against N and turns what became wrong into [`Alert`]s.
//!
//! Conditions (each alerted once, when it first appears):
//!
//! - `referencegrant_revoked`: a ReferenceGrant was removed or narrowed while
//!   routes depended on it: refs that were valid before and are
//!   `RefNotPermitted` now, one alert per grant naming the routes and backends
//!   that lost access (those refs are not alerted again as unresolved);
//! - `route_not_accepted`: a route parent the engine computes `Accepted=False`;
//! - `backend_ref_unresolved`: a backendRef (or mirror) that does not resolve;
//! - `status_drift`: the cluster's own `Accepted` / `ResolvedRefs` condition
//!   disagrees with the engine's (see [`parent_statuses`]);
//! - `shadowed_rule`: a match that can never win.
//!
//! The first snapshot is compared against nothing: every condition it has is
//! new (that is the start-up audit `replay` writes too).
//!
//! An alert stays open until its condition clears; then the same fingerprint
//! is sent once more with state `resolved` (so a compacted alert topic ends
//! with the resolution). A `referencegrant_revoked` alert clears when none of
//! the refs that lost access is `RefNotPermitted` any more (the grant came
//! back, or the routes stopped using those backends); the other types clear
//! when no condition with their fingerprint is left.

use std::collections::{BTreeMap, BTreeSet};

use crate::gateway::audit::audit;
use crate::gateway::compile::{CompiledRoute, RefReason};
use crate::gateway::RouteIndex;
use crate::sink::alerts::{
    alert_fingerprint, fingerprint_hex, format_event_time, Alert, AlertState, AlertType,
    ALERT_SCHEMA_VERSION,
};

/// The cluster's conditions next to the engine's for one route parentRef.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentStatus {
    /// Route kind (`HTTPRoute`, `GRPCRoute`).
    pub route_kind: &'static str,
    /// Route `namespace/name`.
    pub route: String,
    /// Parent `namespace/name` (section appended as `/section` when given).
    pub parent: String,
    /// `Accepted` as the engine computes it.
    pub computed_accepted: bool,
    /// Reason of the computed `Accepted`.
    pub computed_reason: &'static str,
    /// `Accepted` as the cluster reports it (`None`: no status entry yet).
    pub cluster_accepted: Option<bool>,
    /// `ResolvedRefs` as the engine computes it.
    pub computed_resolved: bool,
    /// `ResolvedRefs` as the cluster reports it.
    pub cluster_resolved: Option<bool>,
}

/// The engine's and the cluster's conditions of every route parent that has a
/// computed status entry.
pub fn parent_statuses(index: &RouteIndex) -> Vec<ParentStatus> {
    let mut out = Vec::new();
    for rp in &index.route_parents {
        let Some((accepted, reason, _)) = &rp.accepted else {
            continue;
        };
        let Some(route) = index.routes.get(rp.route) else {
            continue;
        };
        let pref = &rp.parent_ref;
        let parent_ns = pref
            .namespace
            .as_deref()
            .unwrap_or(route.namespace.as_str());
        let entry =
            cluster_parent_entry(route, parent_ns, &pref.name, pref.section_name.as_deref());
        let condition = |kind: &str| -> Option<bool> {
            entry?
                .get("conditions")?
                .as_array()?
                .iter()
                .find(|c| c.get("type").and_then(|t| t.as_str()) == Some(kind))
                .and_then(|c| c.get("status")?.as_str())
                .map(|s| s == "True")
        };
        out.push(ParentStatus {
            route_kind: route.kind.as_str(),
            route: route.key.clone(),
            parent: match &pref.section_name {
                Some(s) => format!("{parent_ns}/{}/{s}", pref.name),
                None => format!("{parent_ns}/{}", pref.name),
            },
            computed_accepted: *accepted,
            computed_reason: reason,
            cluster_accepted: condition("Accepted"),
            computed_resolved: route.unresolved.is_none(),
            cluster_resolved: condition("ResolvedRefs"),
        });
    }
    out
}

/// The `status.parents[]` entry of a route for one parentRef.
fn cluster_parent_entry<'r>(
    route: &'r CompiledRoute,
    parent_ns: &str,
    parent_name: &str,
    section: Option<&str>,
) -> Option<&'r serde_json::Value> {
    route
        .cluster_status
        .as_ref()?
        .get("parents")?
        .as_array()?
        .iter()
        .find(|p| {
            let Some(r) = p.get("parentRef") else {
                return false;
            };
            let s = |k: &str| r.get(k).and_then(|v| v.as_str());
            s("name") == Some(parent_name)
                && s("namespace").unwrap_or(route.namespace.as_str()) == parent_ns
                && s("sectionName") == section
        })
}

/// One config condition, before it becomes an alert.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ConfigCondition {
    alert_type: AlertType,
    route: Option<String>,
    route_kind: Option<&'static str>,
    rule: Option<i32>,
    backends: Vec<String>,
    reason: String,
}

/// A ref `(route kind, route key, rule, backend key)`.
type RefKey = (&'static str, String, usize, String);

/// Diffs consecutive snapshots into config-audit alerts.
#[derive(Debug, Default)]
pub struct ConfigAuditor {
    previous: Option<Audited>,
    /// Firing alerts by fingerprint, until their condition clears.
    open: BTreeMap<String, OpenAlert>,
}

/// A firing config alert and what keeps it firing.
#[derive(Debug)]
struct OpenAlert {
    alert: Alert,
    /// For `referencegrant_revoked`: the `(route, backend)` refs that lost access.
    lost: Vec<(String, String)>,
}

#[derive(Debug)]
struct Audited {
    conditions: BTreeSet<ConfigCondition>,
    valid_refs: BTreeSet<RefKey>,
    /// `route_ns -> backend key` -> grant keys that permitted it.
    grants: BTreeMap<String, Vec<String>>,
}

impl ConfigAuditor {
    /// An auditor that has seen no snapshot.
    pub fn new() -> Self {
        ConfigAuditor::default()
    }

    /// Audits `index` (in force from `effective_us`) against the previous one
    /// given to this auditor and returns the alerts of what is new.
    pub fn observe(&mut self, index: &RouteIndex, effective_us: i64) -> Vec<Alert> {
        let current = audited(index);
        let mut alerts = Vec::new();
        let mut revoked_refs: BTreeSet<(String, String)> = BTreeSet::new();
        if let Some(previous) = &self.previous {
            // grant key -> (routes, backends, lost refs)
            let mut by_grant: BTreeMap<String, Vec<&RefKey>> = BTreeMap::new();
            let now_not_permitted = not_permitted_refs(index);
            for r in previous.valid_refs.iter() {
                if !now_not_permitted.contains(r) {
                    continue;
                }
                let route_ns = r.1.split_once('/').map_or("", |(ns, _)| ns);
                let grant = previous
                    .grants
                    .get(&format!("{route_ns} -> {}", r.3))
                    .and_then(|g| g.first())
                    .cloned()
                    .unwrap_or_else(|| "unknown".into());
                by_grant.entry(grant).or_default().push(r);
            }
            for (grant, refs) in by_grant {
                let backends: BTreeSet<String> = refs.iter().map(|r| r.3.clone()).collect();
                let lost: Vec<String> = refs
                    .iter()
                    .map(|r| format!("{} {} rule {} -> {}", r.0, r.1, r.2, r.3))
                    .collect();
                for r in &refs {
                    revoked_refs.insert((r.1.clone(), r.3.clone()));
                }
                let first = refs.first().copied();
                let lost_refs: Vec<(String, String)> =
                    refs.iter().map(|r| (r.1.clone(), r.3.clone())).collect();
                alerts.push((
                    lost_refs,
                    alert(
                        ConfigCondition {
                            alert_type: AlertType::ReferencegrantRevoked,
                            route: first.map(|r| r.1.clone()),
                            route_kind: first.map(|r| r.0),
                            rule: first.and_then(|r| i32::try_from(r.2).ok()),
                            backends: backends.into_iter().collect(),
                            reason: format!(
                                "ReferenceGrant {grant} removed or narrowed; lost access: {}",
                                lost.join(", ")
                            ),
                        },
                        effective_us,
                    ),
                ));
            }
        }
        for c in &current.conditions {
            let seen = self
                .previous
                .as_ref()
                .is_some_and(|p| p.conditions.contains(c));
            let covered = c.alert_type == AlertType::BackendRefUnresolved
                && c.route.as_ref().is_some_and(|route| {
                    c.backends
                        .iter()
                        .all(|b| revoked_refs.contains(&(route.clone(), b.clone())))
                });
            if !seen && !covered {
                alerts.push((Vec::new(), alert(c.clone(), effective_us)));
            }
        }
        let mut out = self.resolve_cleared(index, &current, effective_us);
        for (lost, a) in alerts {
            if !self.open.contains_key(&a.fingerprint) {
                self.open.insert(
                    a.fingerprint.clone(),
                    OpenAlert {
                        alert: a.clone(),
                        lost,
                    },
                );
            }
            out.push(a);
        }
        self.previous = Some(current);
        out
    }

    /// Closes the open alerts whose condition no longer holds in `index`,
    /// returning their `resolved` messages.
    fn resolve_cleared(
        &mut self,
        index: &RouteIndex,
        current: &Audited,
        effective_us: i64,
    ) -> Vec<Alert> {
        if self.open.is_empty() {
            return Vec::new();
        }
        let holding: BTreeSet<String> = current
            .conditions
            .iter()
            .map(|c| fingerprint_of(c.alert_type, c.route.as_deref(), c.rule, &c.backends))
            .collect();
        let not_permitted: BTreeSet<(String, String)> = not_permitted_refs(index)
            .into_iter()
            .map(|r| (r.1, r.3))
            .collect();
        let cleared: Vec<String> = self
            .open
            .iter()
            .filter(|(fingerprint, open)| match open.alert.alert_type {
                AlertType::ReferencegrantRevoked => {
                    !open.lost.iter().any(|r| not_permitted.contains(r))
                }
                _ => !holding.contains(*fingerprint),
            })
            .map(|(fingerprint, _)| fingerprint.clone())
            .collect();
        let when = format_event_time(effective_us);
        cleared
            .into_iter()
            .filter_map(|fingerprint| self.open.remove(&fingerprint))
            .map(|open| Alert {
                state: AlertState::Resolved,
                last_seen: when.clone(),
                ..open.alert
            })
            .collect()
    }
}

/// The fingerprint of a config condition (backends sorted and deduplicated).
fn fingerprint_of(
    alert_type: AlertType,
    route: Option<&str>,
    rule: Option<i32>,
    backends: &[String],
) -> String {
    let mut backends: Vec<&str> = backends.iter().map(String::as_str).collect();
    backends.sort_unstable();
    backends.dedup();
    fingerprint_hex(alert_fingerprint(
        alert_type, None, route, rule, backends, None,
    ))
}

fn each_ref(index: &RouteIndex, mut f: impl FnMut(RefKey, Option<RefReason>, String)) {
    for route in &index.routes {
        for rule in &route.rules {
            for b in rule.backends.iter().chain(&rule.mirrors) {
                f(
                    (
                        route.kind.as_str(),
                        route.key.clone(),
                        rule.index,
                        b.key.clone(),
                    ),
                    b.invalid.as_ref().map(|(r, _)| *r),
                    b.invalid
                        .as_ref()
                        .map(|(_, m)| m.clone())
                        .unwrap_or_default(),
                );
            }
        }
    }
}

fn not_permitted_refs(index: &RouteIndex) -> BTreeSet<RefKey> {
    let mut out = BTreeSet::new();
    each_ref(index, |key, reason, _| {
        if reason == Some(RefReason::RefNotPermitted) {
            out.insert(key);
        }
    });
    out
}

fn audited(index: &RouteIndex) -> Audited {
    let mut conditions = BTreeSet::new();
    let mut valid_refs = BTreeSet::new();
    each_ref(index, |key, reason, message| match reason {
        None => {
            valid_refs.insert(key);
        }
        Some(reason) => {
            conditions.insert(ConfigCondition {
                alert_type: AlertType::BackendRefUnresolved,
                route: Some(key.1.clone()),
                route_kind: Some(key.0),
                rule: i32::try_from(key.2).ok(),
                backends: vec![key.3.clone()],
                reason: format!("{}: {message}", reason.as_str()),
            });
        }
    });
    let report = audit(index);
    for f in &report.findings {
        let alert_type = match f.code {
            "route_not_accepted" => AlertType::RouteNotAccepted,
            "shadowed_match" => AlertType::ShadowedRule,
            _ => continue,
        };
        conditions.insert(ConfigCondition {
            alert_type,
            route: Some(format!("{}/{}", f.object.namespace, f.object.name)),
            route_kind: match f.object.kind.as_str() {
                "HTTPRoute" => Some("HTTPRoute"),
                "GRPCRoute" => Some("GRPCRoute"),
                _ => None,
            },
            rule: None,
            backends: Vec::new(),
            reason: f.message.clone(),
        });
    }
    for p in parent_statuses(index) {
        let mut drift = Vec::new();
        if let Some(cluster) = p.cluster_accepted {
            if cluster != p.computed_accepted {
                drift.push(format!(
                    "cluster reports Accepted={} for parent {} but the spec implies Accepted={} ({})",
                    title(cluster),
                    p.parent,
                    title(p.computed_accepted),
                    p.computed_reason
                ));
            }
        }
        if let Some(cluster) = p.cluster_resolved {
            if cluster != p.computed_resolved {
                drift.push(format!(
                    "cluster reports ResolvedRefs={} for parent {} but the spec implies ResolvedRefs={}",
                    title(cluster),
                    p.parent,
                    title(p.computed_resolved)
                ));
            }
        }
        for reason in drift {
            conditions.insert(ConfigCondition {
                alert_type: AlertType::StatusDrift,
                route: Some(p.route.clone()),
                route_kind: Some(p.route_kind),
                rule: None,
                backends: Vec::new(),
                reason,
            });
        }
    }
    let mut grants: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for g in &index.grants {
        for p in &g.permitted {
            grants.entry(p.clone()).or_default().push(g.key.clone());
        }
    }
    Audited {
        conditions,
        valid_refs,
        grants,
    }
}

fn title(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

fn alert(c: ConfigCondition, effective_us: i64) -> Alert {
    let fingerprint = fingerprint_of(c.alert_type, c.route.as_deref(), c.rule, &c.backends);
    let mut backends = c.backends;
    backends.sort();
    backends.dedup();
    let when = format_event_time(effective_us);
    Alert {
        schema_version: ALERT_SCHEMA_VERSION,
        fingerprint,
        alert_type: c.alert_type,
        state: AlertState::Firing,
        severity: c.alert_type.severity(),
        gateway: None,
        route: c.route,
        route_kind: c.route_kind.map(str::to_string),
        rule: c.rule,
        expected_backends: backends,
        actual_backend: None,
        count: 1,
        first_seen: when.clone(),
        last_seen: when,
        sample_request_ids: Vec::new(),
        hint: c.alert_type.hint().to_string(),
        reason: c.reason,
    }
}

/// The config-audit alerts of one static index (what `replay` writes at start):
/// everything [`ConfigAuditor::observe`] reports for a first snapshot.
pub fn static_config_alerts(index: &RouteIndex, effective_us: i64) -> Vec<Alert> {
    ConfigAuditor::new().observe(index, effective_us)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::load::load_text;
    use crate::gateway::{CompileOptions, ObjectSet};

    const BASE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: eg
  listeners: [{name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}]
---
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: backend}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {ports: [{port: 80}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: cart, namespace: shop}
spec:
  parentRefs: [{name: gw, namespace: infra}]
  rules: [{backendRefs: [{name: orders, namespace: backend, port: 80}]}]
status:
  parents:
  - parentRef: {name: gw, namespace: infra}
    controllerName: example.com/gateway
    conditions:
    - {type: Accepted, status: "True", reason: Accepted}
    - {type: ResolvedRefs, status: "True", reason: ResolvedRefs}
"#;
    const GRANT: &str = r#"
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: allow-shop, namespace: backend}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: shop}]
  to: [{group: "", kind: Service}]
"#;

    fn index(text: &str, version: u64) -> RouteIndex {
        let mut set = ObjectSet::default();
        load_text(&mut set, "test", text).expect("load");
        RouteIndex::compile(
            &set,
            CompileOptions {
                index_version: version,
                ..CompileOptions::default()
            },
        )
    }

    fn types(alerts: &[Alert]) -> Vec<AlertType> {
        alerts.iter().map(|a| a.alert_type).collect()
    }

    #[test]
    fn grant_revocation_is_one_alert_and_status_drift_is_reported() {
        let mut auditor = ConfigAuditor::new();
        let with_grant = format!("{BASE}{GRANT}");
        assert!(auditor.observe(&index(&with_grant, 1), 0).is_empty());
        let alerts = auditor.observe(&index(BASE, 2), 1);
        let revoked: Vec<&Alert> = alerts
            .iter()
            .filter(|a| a.alert_type == AlertType::ReferencegrantRevoked)
            .collect();
        assert_eq!(revoked.len(), 1, "{alerts:?}");
        assert!(revoked[0].reason.contains("backend/allow-shop"));
        assert!(revoked[0]
            .reason
            .contains("HTTPRoute shop/cart rule 0 -> backend/orders"));
        // The cluster still says ResolvedRefs True: drift.
        assert!(
            alerts.iter().any(|a| a.alert_type == AlertType::StatusDrift
                && a.reason.contains("ResolvedRefs=True")),
            "{alerts:?}"
        );
        assert!(!types(&alerts).contains(&AlertType::BackendRefUnresolved));
        // Nothing new the next time.
        assert!(auditor.observe(&index(BASE, 3), 2).is_empty());
        // The grant comes back: the revocation and the drift resolve, once,
        // under the fingerprints they fired with.
        let resolved = auditor.observe(&index(&with_grant, 4), 3);
        assert_eq!(resolved.len(), 2, "{resolved:?}");
        assert!(resolved.iter().all(|a| a.state == AlertState::Resolved));
        for r in &resolved {
            assert!(
                alerts
                    .iter()
                    .any(|a| a.fingerprint == r.fingerprint && a.alert_type == r.alert_type),
                "{r:?}"
            );
        }
        assert!(auditor.observe(&index(&with_grant, 5), 4).is_empty());
    }

    #[test]
    fn a_condition_that_clears_is_resolved_once_and_can_fire_again() {
        // The grant is in place but the Service is missing: BackendNotFound.
        let fixed = format!("{BASE}{GRANT}");
        let broken = fixed.replace("metadata: {name: orders,", "metadata: {name: other,");
        assert_ne!(broken, fixed);
        let mut auditor = ConfigAuditor::new();
        let fired = auditor.observe(&index(&broken, 1), 0);
        let unresolved: Vec<&Alert> = fired
            .iter()
            .filter(|a| a.alert_type == AlertType::BackendRefUnresolved)
            .collect();
        assert_eq!(unresolved.len(), 1, "{fired:?}");
        assert_eq!(unresolved[0].state, AlertState::Firing);
        // Still broken: nothing.
        assert!(auditor.observe(&index(&broken, 2), 1).is_empty());
        // Fixed (the Service is back): resolved.
        let out = auditor.observe(&index(&fixed, 3), 2_000_000);
        let resolved: Vec<&Alert> = out
            .iter()
            .filter(|a| a.fingerprint == unresolved[0].fingerprint)
            .collect();
        assert_eq!(resolved.len(), 1, "{out:?}");
        assert_eq!(resolved[0].state, AlertState::Resolved);
        assert_eq!(resolved[0].last_seen, format_event_time(2_000_000));
        // Broken again: fires again.
        let again = auditor.observe(&index(&broken, 4), 3_000_000);
        assert!(
            again.iter().any(
                |a| a.fingerprint == unresolved[0].fingerprint && a.state == AlertState::Firing
            ),
            "{again:?}"
        );
    }

    #[test]
    fn static_audit_reports_unresolved_not_accepted_and_shadowed() {
        let text = format!(
            "{BASE}{GRANT}{}",
            r#"
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: shop}
spec:
  parentRefs: [{name: gw, namespace: infra}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: missing, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: lost, namespace: shop}
spec:
  parentRefs: [{name: gw, namespace: infra, sectionName: nope}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#
        );
        let alerts = static_config_alerts(&index(&text, 1), 0);
        let t = types(&alerts);
        assert!(t.contains(&AlertType::BackendRefUnresolved), "{alerts:?}");
        assert!(t.contains(&AlertType::RouteNotAccepted), "{alerts:?}");
        assert!(t.contains(&AlertType::ShadowedRule), "{alerts:?}");
        let statuses = parent_statuses(&index(&text, 1));
        let cart = statuses
            .iter()
            .find(|p| p.route == "shop/cart")
            .expect("cart");
        assert_eq!(cart.cluster_accepted, Some(true));
        assert!(cart.computed_accepted);
    }
}
