//! Resolving backend references: kinds, Services and ports, and the
//! ReferenceGrants that cross-namespace references need.

use super::*;
use crate::gateway::model::{BackendObjectRef, Service, GATEWAY_GROUP};

/// Lookup tables for validating references.
pub(super) struct RefContext<'a> {
    services: HashMap<(&'a str, &'a str), &'a Service>,
    grants: HashMap<&'a str, Vec<usize>>,
    objects: &'a ObjectSet,
    allow_external_name: bool,
}

impl<'a> RefContext<'a> {
    pub(super) fn new(objects: &'a ObjectSet, options: &CompileOptions) -> Self {
        let services = objects
            .services
            .iter()
            .map(|s| ((s.metadata.namespace.as_str(), s.metadata.name.as_str()), s))
            .collect();
        let mut grants: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, g) in objects.reference_grants.iter().enumerate() {
            grants
                .entry(g.metadata.namespace.as_str())
                .or_default()
                .push(i);
        }
        RefContext {
            services,
            grants,
            objects,
            allow_external_name: options.allow_external_name,
        }
    }

    /// Resolves one backend reference from a route of `kind` in `route_ns`.
    ///
    /// Order of checks: kind, then the ReferenceGrant for cross-namespace refs
    /// (before existence, so status never reveals whether a target in another
    /// namespace exists: `referencegrant.md`, "Implementation Guidelines"), then
    /// the Service and its port. Returns the grant that permitted the ref.
    pub(super) fn resolve(
        &self,
        kind: RouteKind,
        route_ns: &str,
        target: &BackendObjectRef,
    ) -> (Option<(RefReason, String)>, Vec<usize>) {
        let ns = target.namespace(route_ns);
        if target.group() != "" || target.kind() != "Service" {
            return (
                Some((
                    RefReason::InvalidKind,
                    format!(
                        "unsupported backend kind {}/{}",
                        target.group(),
                        target.kind()
                    ),
                )),
                Vec::new(),
            );
        }
        let mut grant_used = Vec::new();
        if ns != route_ns {
            grant_used = self.grants_for(kind, route_ns, ns, "", "Service", &target.name);
            if grant_used.is_empty() {
                return (
                    Some((
                        RefReason::RefNotPermitted,
                        format!(
                            "no ReferenceGrant in namespace {ns} allows {} from namespace {route_ns} to Service {}",
                            kind.as_str(),
                            target.name
                        ),
                    )),
                    Vec::new(),
                );
            }
        }
        let Some(service) = self.services.get(&(ns, target.name.as_str())) else {
            return (
                Some((
                    RefReason::BackendNotFound,
                    format!("Service {ns}/{} not found", target.name),
                )),
                grant_used,
            );
        };
        if service.spec.service_type.as_deref() == Some("ExternalName") && !self.allow_external_name
        {
            return (
                Some((
                    RefReason::InvalidKind,
                    format!(
                        "Service {ns}/{} is of type ExternalName, which Gateway API implementations SHOULD NOT support",
                        target.name
                    ),
                )),
                grant_used,
            );
        }
        match target.port {
            None => (
                Some((
                    RefReason::BackendNotFound,
                    format!("backendRef to Service {ns}/{} has no port", target.name),
                )),
                grant_used,
            ),
            Some(p) if !service.spec.ports.iter().any(|sp| sp.port == p) => (
                Some((
                    RefReason::BackendNotFound,
                    format!("Service {ns}/{} has no port {p}", target.name),
                )),
                grant_used,
            ),
            Some(_) => (None, grant_used),
        }
    }

    /// Every ReferenceGrant in `target_ns` that lets a route of `kind` in
    /// `from_ns` refer to `to_group/to_kind/name`. Every field must match exactly
    /// (`referencegrant_types.go`); a `to` entry without a name covers all names.
    ///
    /// All of them are returned, not just the first: grants add up, and each one
    /// that permits a reference is in use (reporting all but the first as
    /// "unused" would depend on object order and invite deleting a live grant).
    pub(super) fn grants_for(
        &self,
        kind: RouteKind,
        from_ns: &str,
        target_ns: &str,
        to_group: &str,
        to_kind: &str,
        name: &str,
    ) -> Vec<usize> {
        let Some(candidates) = self.grants.get(target_ns) else {
            return Vec::new();
        };
        candidates
            .iter()
            .copied()
            .filter(|&i| {
                let spec = &self.objects.reference_grants[i].spec;
                spec.from.iter().any(|f| {
                    f.group == GATEWAY_GROUP && f.kind == kind.as_str() && f.namespace == from_ns
                }) && spec.to.iter().any(|t| {
                    t.group == to_group
                        && t.kind == to_kind
                        && t.name.as_deref().is_none_or(|n| n == name)
                })
            })
            .collect()
    }
}
