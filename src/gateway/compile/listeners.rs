//! Gateways and their listeners: ListenerSet admission (`allowedListeners`),
//! listener conflicts, and namespace policies.

use super::*;
use crate::gateway::hostname;
use crate::gateway::model::{Gateway, Listener, RouteNamespaces, GATEWAY_GROUP};

/// Where a listener comes from, for attachment.
pub(super) struct ListenerOwner {
    /// `Gateway` or `ListenerSet`.
    pub(super) kind: &'static str,
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) listeners: Vec<usize>,
}

impl RouteIndex {
    pub(super) fn compile_listeners(
        &mut self,
        objects: &ObjectSet,
        namespace_labels: &HashMap<String, BTreeMap<String, String>>,
    ) -> HashMap<(&'static str, String), ListenerOwner> {
        let mut owners = HashMap::new();
        let mut gateways: Vec<&Gateway> = objects.gateways.iter().collect();
        gateways.sort_by_key(|g| g.metadata.key());
        gateways.dedup_by(|a, b| a.metadata.key() == b.metadata.key());
        let mut listener_sets: Vec<_> = objects.listener_sets.iter().collect();
        listener_sets.sort_by(|a, b| creation_order(&a.metadata, &b.metadata));

        for gw in gateways {
            let gi = self.gateways.len();
            let key = gw.metadata.key();
            let mut own = Vec::new();
            for l in &gw.spec.listeners {
                own.push(self.push_listener(gi, &gw.metadata, l, false));
            }
            let mut all = own.clone();
            owners.insert(
                ("Gateway", key.clone()),
                ListenerOwner {
                    kind: "Gateway",
                    namespace: gw.metadata.namespace.clone(),
                    name: gw.metadata.name.clone(),
                    listeners: own,
                },
            );
            for ls in &listener_sets {
                let parent = &ls.spec.parent_ref;
                if parent.kind() != "Gateway"
                    || parent.group() != GATEWAY_GROUP
                    || parent.name != gw.metadata.name
                    || parent.namespace(&ls.metadata.namespace) != gw.metadata.namespace
                {
                    continue;
                }
                let policy = gw
                    .spec
                    .allowed_listeners
                    .as_ref()
                    .and_then(|a| a.namespaces.as_ref());
                // `allowedListeners.namespaces.from` defaults to None
                // (`gateway_types.go` AllowedListeners, ~line 328).
                let admitted = namespace_allowed(
                    policy,
                    "None",
                    &gw.metadata.namespace,
                    &ls.metadata.namespace,
                    namespace_labels,
                );
                if !admitted {
                    self.rejected_listener_sets.push((
                        ls.metadata.key(),
                        format!("Gateway {key} does not allow ListenerSets from namespace {} (spec.allowedListeners)", ls.metadata.namespace),
                    ));
                    continue;
                }
                let mut set_listeners = Vec::new();
                for l in &ls.spec.listeners {
                    set_listeners.push(self.push_listener(gi, &ls.metadata, l, true));
                }
                all.extend(&set_listeners);
                owners.insert(
                    ("ListenerSet", ls.metadata.key()),
                    ListenerOwner {
                        kind: "ListenerSet",
                        namespace: ls.metadata.namespace.clone(),
                        name: ls.metadata.name.clone(),
                        listeners: set_listeners,
                    },
                );
            }
            self.mark_conflicts(&all);
            self.gateway_by_key.insert(key.clone(), gi);
            self.gateways.push(CompiledGateway {
                key,
                class_name: gw.spec.gateway_class_name.clone(),
                listeners: all,
                by_port: FastMap::default(),
                port_list: Vec::new(),
            });
        }
        for gi in 0..self.gateways.len() {
            let mut by_port: FastMap<(u16, bool), Vec<usize>> = FastMap::default();
            for &li in &self.gateways[gi].listeners {
                let l = &self.listeners[li];
                let tls = match l.protocol {
                    ListenerProtocol::Http => false,
                    ListenerProtocol::Https => true,
                    ListenerProtocol::Other => continue,
                };
                if l.conflict.is_none() {
                    by_port.entry((l.port, tls)).or_default().push(li);
                }
            }
            for list in by_port.values_mut() {
                list.sort_by(|&a, &b| {
                    hostname::specificity_order(
                        self.listeners[a].hostname.as_deref(),
                        self.listeners[b].hostname.as_deref(),
                    )
                    .then(a.cmp(&b))
                });
            }
            let mut port_list: Vec<(u16, bool, Vec<usize>)> = by_port
                .iter()
                .map(|(&(port, tls), list)| (port, tls, list.clone()))
                .collect();
            port_list.sort_unstable_by_key(|&(port, tls, _)| (port, tls));
            self.gateways[gi].port_list = port_list;
            self.gateways[gi].by_port = by_port;
        }
        owners
    }

    pub(super) fn push_listener(
        &mut self,
        gateway: usize,
        owner: &ObjectMeta,
        l: &Listener,
        from_listener_set: bool,
    ) -> usize {
        let protocol = match l.protocol.as_str() {
            "HTTP" => ListenerProtocol::Http,
            "HTTPS" => ListenerProtocol::Https,
            _ => ListenerProtocol::Other,
        };
        self.listeners.push(CompiledListener {
            key: format!("{}/{}/{}", owner.namespace, owner.name, l.name),
            name: l.name.clone(),
            gateway,
            from_listener_set,
            port: l.port,
            protocol_name: l.protocol.clone(),
            protocol,
            hostname: l.hostname.as_ref().map(|h| h.to_ascii_lowercase()),
            conflict: None,
            http: HostTable::default(),
            grpc: HostTable::default(),
            attached_routes: 0,
            allowed_routes: l.allowed_routes.clone(),
        });
        self.listeners.len() - 1
    }

    pub(super) fn mark_conflicts(&mut self, ordered: &[usize]) {
        fn family(p: &str) -> &str {
            match p {
                "HTTP" => "http",
                "HTTPS" | "TLS" => "tls",
                other => other,
            }
        }
        for (i, &a) in ordered.iter().enumerate() {
            for &b in &ordered[i + 1..] {
                let (la, lb) = (&self.listeners[a], &self.listeners[b]);
                if la.port != lb.port {
                    continue;
                }
                let (fa, fb) = (family(&la.protocol_name), family(&lb.protocol_name));
                let conflict = if fa != fb {
                    // TCP and UDP may share a port number (different transports).
                    let transports = [fa, fb];
                    if transports.contains(&"TCP") && transports.contains(&"UDP") {
                        None
                    } else {
                        Some("ProtocolConflict")
                    }
                } else if fa == "http" || fa == "tls" {
                    (la.hostname == lb.hostname).then_some("HostnameConflict")
                } else {
                    Some("ProtocolConflict")
                };
                if let Some(reason) = conflict {
                    if !lb.from_listener_set || la.from_listener_set {
                        self.listeners[a].conflict.get_or_insert(reason);
                    }
                    self.listeners[b].conflict.get_or_insert(reason);
                }
            }
        }
    }
}

/// Whether namespace `candidate` passes a `RouteNamespaces` policy of an owner in
/// `owner_ns`. Unknown `from` values allow nothing.
pub(super) fn namespace_allowed(
    policy: Option<&RouteNamespaces>,
    default_from: &str,
    owner_ns: &str,
    candidate: &str,
    namespace_labels: &HashMap<String, BTreeMap<String, String>>,
) -> bool {
    let from = policy
        .and_then(|p| p.from.as_deref())
        .unwrap_or(default_from);
    match from {
        "Same" => owner_ns == candidate,
        "All" => true,
        "Selector" => {
            let Some(selector) = policy.and_then(|p| p.selector.as_ref()) else {
                return false;
            };
            let implicit;
            let labels = match namespace_labels.get(candidate) {
                Some(l) => l,
                None => {
                    implicit = BTreeMap::from([(
                        "kubernetes.io/metadata.name".to_string(),
                        candidate.to_string(),
                    )]);
                    &implicit
                }
            };
            selector.matches(labels)
        }
        _ => false,
    }
}

/// Namespace labels, with the `kubernetes.io/metadata.name` label Kubernetes sets
/// on every namespace.
pub(super) fn namespace_labels(objects: &ObjectSet) -> HashMap<String, BTreeMap<String, String>> {
    objects
        .namespaces
        .iter()
        .map(|n| {
            let mut labels = n.metadata.labels.clone();
            labels
                .entry("kubernetes.io/metadata.name".into())
                .or_insert_with(|| n.metadata.name.clone());
            (n.metadata.name.clone(), labels)
        })
        .collect()
}
