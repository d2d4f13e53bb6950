//! The object store: which kinds are watched, and how the reflectors' stores
//! become an [`ObjectSet`] for the engine.
//!
//! The watched objects are held as [`DynamicObject`]s in kube-runtime
//! reflector [`Store`]s (one per kind); turning them into the engine's lenient
//! model goes through the same code as manifest files
//! ([`crate::gateway::load::add_object`]), so the live index and `replay` read
//! objects identically.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use ::kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use ::kube::runtime::reflector::Store;

use crate::gateway::load::add_object;
use crate::gateway::model::{GATEWAY_GROUP, GATEWAY_X_GROUP};
use crate::gateway::ObjectSet;

/// A kind routeproof watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchedKind {
    /// API group (`""` for core).
    pub group: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Resource (plural) name.
    pub plural: &'static str,
    /// Versions to use, preferred first; the first one the server serves wins.
    pub versions: &'static [&'static str],
    /// Built into every cluster (no discovery needed): core and discovery kinds.
    pub builtin: bool,
}

/// Everything watched. Gateway API kinds are looked up by discovery; a kind the
/// cluster does not serve (CRD not installed) is skipped with a warning.
pub const WATCHED_KINDS: &[WatchedKind] = &[
    WatchedKind {
        group: GATEWAY_GROUP,
        kind: "Gateway",
        plural: "gateways",
        versions: &["v1", "v1beta1"],
        builtin: false,
    },
    WatchedKind {
        group: GATEWAY_GROUP,
        kind: "HTTPRoute",
        plural: "httproutes",
        versions: &["v1", "v1beta1"],
        builtin: false,
    },
    WatchedKind {
        group: GATEWAY_GROUP,
        kind: "GRPCRoute",
        plural: "grpcroutes",
        versions: &["v1"],
        builtin: false,
    },
    WatchedKind {
        group: GATEWAY_GROUP,
        kind: "ReferenceGrant",
        plural: "referencegrants",
        versions: &["v1", "v1beta1"],
        builtin: false,
    },
    WatchedKind {
        group: GATEWAY_GROUP,
        kind: "ListenerSet",
        plural: "listenersets",
        versions: &["v1"],
        builtin: false,
    },
    WatchedKind {
        group: GATEWAY_X_GROUP,
        kind: "XListenerSet",
        plural: "xlistenersets",
        versions: &["v1alpha1"],
        builtin: false,
    },
    WatchedKind {
        group: "",
        kind: "Service",
        plural: "services",
        versions: &["v1"],
        builtin: true,
    },
    WatchedKind {
        group: "discovery.k8s.io",
        kind: "EndpointSlice",
        plural: "endpointslices",
        versions: &["v1"],
        builtin: true,
    },
    WatchedKind {
        group: "",
        kind: "Namespace",
        plural: "namespaces",
        versions: &["v1"],
        builtin: true,
    },
];

impl WatchedKind {
    /// The API resource at `version`.
    pub fn api_resource(&self, version: &str) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, version, self.kind),
            self.plural,
        )
    }

    /// Whether changes of this kind change routing (everything but
    /// EndpointSlices, which only move `ip:port` ownership).
    pub fn affects_routing(&self) -> bool {
        self.kind != "EndpointSlice"
    }
}

/// The reflector store of one watched kind.
#[derive(Clone)]
pub struct KindStore {
    /// What is watched.
    pub kind: WatchedKind,
    /// The resource (with the version discovery chose).
    pub resource: ApiResource,
    /// The reflector's reader.
    pub store: Store<DynamicObject>,
}

/// An [`ObjectSet`] read from the stores, with a digest of the routing objects.
#[derive(Debug, Default)]
pub struct StoreSnapshot {
    /// The objects.
    pub objects: ObjectSet,
    /// Order-independent digest of `(kind, namespace, name, resourceVersion)` of
    /// every object whose kind affects routing; equal digests mean no routing
    /// change.
    pub routing_digest: u64,
    /// Objects that could not be read into the model (skipped), with why.
    pub rejected: Vec<String>,
}

/// Reads every store into an object set. Objects are added in
/// `(namespace, name)` order per kind, so the result does not depend on the
/// stores' hash order.
pub fn read_stores(stores: &[KindStore]) -> StoreSnapshot {
    let mut out = StoreSnapshot::default();
    for ks in stores {
        let mut objects = ks.store.state();
        objects.sort_by(|a, b| {
            (&a.metadata.namespace, &a.metadata.name)
                .cmp(&(&b.metadata.namespace, &b.metadata.name))
        });
        for object in objects {
            if ks.kind.affects_routing() {
                let mut h = DefaultHasher::new();
                (
                    ks.kind.kind,
                    &object.metadata.namespace,
                    &object.metadata.name,
                    &object.metadata.resource_version,
                )
                    .hash(&mut h);
                out.routing_digest = out.routing_digest.wrapping_add(h.finish());
            }
            if let Err(why) = add_dynamic(&mut out.objects, &ks.resource, &object) {
                out.rejected.push(format!(
                    "{} {}/{}: {why}",
                    ks.kind.kind,
                    object.metadata.namespace.as_deref().unwrap_or(""),
                    object.metadata.name.as_deref().unwrap_or("")
                ));
            }
        }
    }
    out
}

/// Adds one watched object to the set through the manifest loader. List items
/// from the API carry no `apiVersion`/`kind`, so they are set from the resource.
pub fn add_dynamic(
    set: &mut ObjectSet,
    resource: &ApiResource,
    object: &DynamicObject,
) -> Result<(), String> {
    let mut value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    if let Some(map) = value.as_object_mut() {
        map.insert(
            "apiVersion".into(),
            serde_json::Value::String(resource.api_version.clone()),
        );
        map.insert(
            "kind".into(),
            serde_json::Value::String(resource.kind.clone()),
        );
    }
    add_object(set, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_objects_read_like_manifests() {
        let kind = WATCHED_KINDS[3];
        let resource = kind.api_resource("v1beta1");
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "allow", "namespace": "backend", "resourceVersion": "7"},
            "spec": {
                "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "shop"}],
                "to": [{"group": "", "kind": "Service"}]
            }
        }))
        .expect("object");
        let mut set = ObjectSet::default();
        add_dynamic(&mut set, &resource, &object).expect("added");
        assert_eq!(set.reference_grants.len(), 1);
        assert_eq!(set.reference_grants[0].spec.from[0].namespace, "shop");
    }
}
