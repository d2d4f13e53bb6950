//! Route attachment per parentRef (`sectionName`, `port`, `allowedRoutes`
//! namespaces and kinds, hostname intersection) with the `Accepted` condition,
//! and the precedence-sorted hostname tables of every listener.

use std::collections::HashSet;

use super::listeners::{namespace_allowed, ListenerOwner};
use super::*;
use crate::gateway::hostname;
use crate::gateway::model::{ParentRef, RouteGroupKind, GATEWAY_GROUP, GATEWAY_X_GROUP};

impl RouteIndex {
    pub(super) fn attach_routes(
        &mut self,
        owners: &HashMap<(&'static str, String), ListenerOwner>,
        namespace_labels: &HashMap<String, BTreeMap<String, String>>,
    ) {
        // Matches grouped by route for table insertion.
        let mut matches_by_route: HashMap<u32, Vec<u32>> = HashMap::new();
        for (mi, m) in self.matches.iter().enumerate() {
            matches_by_route.entry(m.route).or_default().push(mi as u32);
        }
        let specs: Vec<Vec<ParentRef>> =
            self.routes.iter().map(|r| r.parent_refs.clone()).collect();
        for (ri, parent_refs) in specs.into_iter().enumerate() {
            let mut attached_listeners: HashSet<usize> = HashSet::new();
            let kind = self.routes[ri].kind;
            for (pi, pref) in parent_refs.into_iter().enumerate() {
                let route = &self.routes[ri];
                let mut status = RouteParentStatus {
                    route: ri,
                    parent_index: pi,
                    parent_ref: ParentRef {
                        namespace: Some(pref.namespace(&route.namespace).to_string()),
                        ..pref.clone()
                    },
                    accepted: None,
                    listeners: Vec::new(),
                };
                let owner_kind = match (pref.group(), pref.kind()) {
                    (GATEWAY_GROUP, "Gateway") => Some("Gateway"),
                    (GATEWAY_GROUP | GATEWAY_X_GROUP, "ListenerSet" | "XListenerSet") => {
                        Some("ListenerSet")
                    }
                    _ => None,
                };
                let owner = owner_kind.and_then(|k| {
                    owners.get(&(
                        k,
                        format!("{}/{}", pref.namespace(&route.namespace), pref.name),
                    ))
                });
                if let Some(owner) = owner {
                    let (accepted, listeners) = self.attach_one(ri, &pref, owner, namespace_labels);
                    status.accepted = Some(accepted);
                    status.listeners = listeners;
                }
                for &li in &status.listeners {
                    if attached_listeners.insert(li) {
                        self.listeners[li].attached_routes += 1;
                        let hostnames = effective_hostnames(
                            self.listeners[li].hostname.as_deref(),
                            &self.routes[ri].hostnames,
                        );
                        let listener = &mut self.listeners[li];
                        let table = match kind {
                            RouteKind::Http => &mut listener.http,
                            RouteKind::Grpc => &mut listener.grpc,
                        };
                        for h in &hostnames {
                            let bucket = table.bucket_mut(h.as_deref());
                            bucket.extend(matches_by_route.get(&(ri as u32)).into_iter().flatten());
                        }
                    }
                }
                self.route_parents.push(status);
            }
        }
    }

    pub(super) fn attach_one(
        &self,
        ri: usize,
        pref: &ParentRef,
        owner: &ListenerOwner,
        namespace_labels: &HashMap<String, BTreeMap<String, String>>,
    ) -> ((bool, &'static str, String), Vec<usize>) {
        let route = &self.routes[ri];
        let selected: Vec<usize> = owner
            .listeners
            .iter()
            .copied()
            .filter(|&li| {
                let l = &self.listeners[li];
                pref.section_name.as_ref().is_none_or(|s| *s == l.name)
                    && pref.port.is_none_or(|p| p == l.port)
            })
            .collect();
        if selected.is_empty() {
            return (
                (
                    false,
                    "NoMatchingParent",
                    format!(
                        "{} {}/{} has no listener{}{}",
                        owner.kind,
                        owner.namespace,
                        owner.name,
                        pref.section_name
                            .as_ref()
                            .map(|s| format!(" named {s}"))
                            .unwrap_or_default(),
                        pref.port
                            .map(|p| format!(" on port {p}"))
                            .unwrap_or_default()
                    ),
                ),
                Vec::new(),
            );
        }
        let allowed: Vec<usize> = selected
            .into_iter()
            .filter(|&li| {
                let l = &self.listeners[li];
                let allowed_routes = l.allowed_routes.as_ref();
                kind_allowed(
                    l,
                    allowed_routes.map(|a| &a.kinds[..]).unwrap_or(&[]),
                    route.kind,
                ) && namespace_allowed(
                    allowed_routes.and_then(|a| a.namespaces.as_ref()),
                    "Same",
                    &owner.namespace,
                    &route.namespace,
                    namespace_labels,
                )
            })
            .collect();
        if allowed.is_empty() {
            return (
                (
                    false,
                    "NotAllowedByListeners",
                    format!(
                        "no selected listener of {} {}/{} allows {} from namespace {}",
                        owner.kind,
                        owner.namespace,
                        owner.name,
                        route.kind.as_str(),
                        route.namespace
                    ),
                ),
                Vec::new(),
            );
        }
        let with_hosts: Vec<usize> = allowed
            .into_iter()
            .filter(|&li| {
                !effective_hostnames(self.listeners[li].hostname.as_deref(), &route.hostnames)
                    .is_empty()
            })
            .collect();
        if with_hosts.is_empty() {
            return (
                (
                    false,
                    "NoMatchingListenerHostname",
                    "no route hostname intersects a listener hostname".to_string(),
                ),
                Vec::new(),
            );
        }
        if let Some((reason, msg)) = &route.invalid {
            return ((false, reason, msg.clone()), Vec::new());
        }
        (
            (true, "Accepted", "route is accepted".to_string()),
            with_hosts,
        )
    }

    /// Sorts every bucket by precedence and builds its path index; `records`
    /// are the matches' compact condition records (by match id).
    pub(super) fn sort_tables(&mut self, records: &[u32]) {
        let matches = &self.matches;
        let routes = &self.routes;
        let key = |id: &u32| precedence_key(&matches[*id as usize]);
        for l in &mut self.listeners {
            for table in [&mut l.http, &mut l.grpc] {
                table.wildcard_lengths = table
                    .wildcard
                    .iter()
                    .fold(0, |mask, (suffix, _)| mask | 1u64 << suffix.len().min(63));
                table.exact.finish();
                table.wildcard.finish();
                for bucket in table
                    .buckets
                    .iter_mut()
                    .chain(std::iter::once(&mut table.any))
                {
                    bucket.ids.sort_by_cached_key(key);
                    bucket.ids.dedup();
                    bucket.index = PathIndex::build(&bucket.ids, matches, routes, records);
                }
            }
        }
    }
}

/// The effective hostnames of a route on a listener: the intersections, or the
/// listener hostname when the route has none.
pub fn effective_hostnames(listener: Option<&str>, route: &[String]) -> Vec<Option<String>> {
    if route.is_empty() {
        return vec![listener.map(str::to_string)];
    }
    let mut out: Vec<Option<String>> = route
        .iter()
        .filter_map(|h| hostname::intersect(listener, h).map(Some))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether a listener accepts routes of `kind`: the explicit `allowedRoutes.kinds`,
/// else the kinds its protocol implies (HTTP/HTTPS: HTTPRoute and GRPCRoute).
pub(super) fn kind_allowed(
    l: &CompiledListener,
    kinds: &[RouteGroupKind],
    kind: RouteKind,
) -> bool {
    if l.protocol == ListenerProtocol::Other {
        return false;
    }
    kinds.is_empty()
        || kinds.iter().any(|k| {
            k.group.as_deref().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP && k.kind == kind.as_str()
        })
}
