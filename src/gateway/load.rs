//! Parsing Kubernetes manifests (text already in memory) into an [`ObjectSet`].
//!
//! Accepts YAML multi-document streams, JSON documents, and `kind: List` documents
//! as written by `kubectl get ... -o yaml|json`. Unknown kinds are skipped and
//! counted; a malformed document is an error naming the source and the 1-based
//! document number. Reading files is the caller's business (see
//! [`crate::manifest`]); this module does no I/O.
//!
//! Plain manifest YAML is read by the `yaml_subset` reader without
//! serde_yaml (about 6x fewer instructions); what it declines goes through
//! serde_yaml exactly as before.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::Deserialize;

mod yaml_node;
mod yaml_subset;

use yaml_node::{Node, NodeRef};
use yaml_subset::Declined;

use super::model::{
    EndpointSlice, Gateway, GatewayClass, GrpcRoute, HttpRoute, ListenerSet, Namespace, ObjectSet,
    ReferenceGrant, Service, GATEWAY_GROUP, GATEWAY_X_GROUP,
};

/// Why a manifest document could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: document {document}: {message}")]
pub struct LoadError {
    /// File name or other label of the text.
    pub source_name: String,
    /// 1-based document number within the source (items of a `List` count as
    /// `document.item` in the message).
    pub document: usize,
    /// What was wrong.
    pub message: String,
}

/// The envelope fields every Kubernetes object has, borrowed from the
/// document where it allows.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta<'a> {
    #[serde(default, borrow)]
    api_version: Cow<'a, str>,
    #[serde(default, borrow)]
    kind: Cow<'a, str>,
}

/// Adds every object in `text` to `set`. `source_name` labels errors.
///
/// JSON is valid YAML for this purpose, so one parser handles both; a JSON
/// stream of several concatenated objects is also accepted.
pub fn load_text(set: &mut ObjectSet, source_name: &str, text: &str) -> Result<(), LoadError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return load_json(set, source_name, text);
    }
    if let Some(mut documents) = yaml_subset::documents(text) {
        // The common case: plain manifest YAML, read without serde_yaml; a
        // document outside that subset is read alone by serde_yaml. Any
        // failure sends the whole text down the full path below, which then
        // reports the error exactly as it always has (message, document
        // number).
        let mut staged = ObjectSet::default();
        let mut all_loaded = true;
        while let Some(document) = documents.next() {
            all_loaded = match document {
                Ok(tree) => {
                    let root = tree.root();
                    let loaded = root.is_null() || add_value(&mut staged, root).is_ok();
                    documents.recycle(tree);
                    loaded
                }
                Err(Declined::Document(document)) => match document_via_serde_yaml(document) {
                    Some(value) => value.is_null() || add_value(&mut staged, value).is_ok(),
                    None => false,
                },
                Err(Declined::Text) => false,
            };
            if !all_loaded {
                break;
            }
        }
        if all_loaded {
            append(set, staged);
            return Ok(());
        }
    }
    load_yaml(set, source_name, text)
}

/// The JSON value of a text holding one YAML document, read by serde_yaml as
/// the full path reads it; `None` when that fails or the text does not hold
/// exactly one document.
fn document_via_serde_yaml(text: &str) -> Option<serde_json::Value> {
    let mut documents = serde_yaml::Deserializer::from_str(text);
    let value = serde_yaml::Value::deserialize(documents.next()?).ok()?;
    if documents.next().is_some() {
        return None;
    }
    if value.is_null() {
        // Skipped as the full path skips it: `is_null` is also true of a
        // tagged null (`!t` alone), which would not be JSON null.
        return Some(serde_json::Value::Null);
    }
    serde_json::to_value(&value).ok()
}

/// Moves every object of `staged` to the end of `set`, and adds its skipped
/// counts.
fn append(set: &mut ObjectSet, staged: ObjectSet) {
    // Destructured so that a new kind in `ObjectSet` cannot be forgotten here.
    let ObjectSet {
        gateway_classes,
        gateways,
        listener_sets,
        http_routes,
        grpc_routes,
        reference_grants,
        services,
        namespaces,
        endpoint_slices,
        skipped,
    } = staged;
    set.gateway_classes.extend(gateway_classes);
    set.gateways.extend(gateways);
    set.listener_sets.extend(listener_sets);
    set.http_routes.extend(http_routes);
    set.grpc_routes.extend(grpc_routes);
    set.reference_grants.extend(reference_grants);
    set.services.extend(services);
    set.namespaces.extend(namespaces);
    set.endpoint_slices.extend(endpoint_slices);
    for (kind, count) in skipped {
        *set.skipped.entry(kind).or_insert(0) += count;
    }
}

/// The full YAML path: any YAML serde_yaml reads, with its error messages.
fn load_yaml(set: &mut ObjectSet, source_name: &str, text: &str) -> Result<(), LoadError> {
    for (i, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let number = i + 1;
        // Through `serde_yaml::Value`, not straight into a JSON value: its
        // mappings reject a key given twice (`rules:` twice in one spec must
        // be an error, not "the last one wins" as a JSON map would have it),
        // and a custom tag becomes a one-entry mapping instead of an error.
        let value = serde_yaml::Value::deserialize(document).map_err(|e| LoadError {
            source_name: source_name.to_string(),
            document: number,
            message: format!("invalid YAML: {e}"),
        })?;
        if value.is_null() {
            continue;
        }
        let json = serde_json::to_value(&value).map_err(|e| LoadError {
            source_name: source_name.to_string(),
            document: number,
            message: format!("cannot represent document as JSON: {e}"),
        })?;
        add_value(set, json).map_err(|message| LoadError {
            source_name: source_name.to_string(),
            document: number,
            message,
        })?;
    }
    Ok(())
}

fn load_json(set: &mut ObjectSet, source_name: &str, text: &str) -> Result<(), LoadError> {
    let stream = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    for (i, value) in stream.enumerate() {
        let number = i + 1;
        let value = value.map_err(|e| LoadError {
            source_name: source_name.to_string(),
            document: number,
            message: format!("invalid JSON: {e}"),
        })?;
        let result = match value {
            serde_json::Value::Array(items) => {
                items.into_iter().enumerate().try_for_each(|(j, item)| {
                    add_value(set, item).map_err(|m| format!("item {}: {m}", j + 1))
                })
            }
            other => add_value(set, other),
        };
        result.map_err(|message| LoadError {
            source_name: source_name.to_string(),
            document: number,
            message,
        })?;
    }
    Ok(())
}

/// Adds one object given as JSON (or the items of a `List`) to the set, as a
/// manifest document would be: unknown kinds are counted in
/// [`ObjectSet::skipped`]. The error says what is wrong with the object. Used by
/// the live sources, which hold objects as JSON.
pub fn add_object(set: &mut ObjectSet, value: serde_json::Value) -> Result<(), String> {
    add_value(set, value)
}

/// A manifest document as [`add_value`] reads it: a JSON value, or a node of
/// the subset reader, typed straight into the model. Both must give the same
/// objects for the same document.
trait Document: Sized {
    /// Whether it is a mapping.
    fn is_object(&self) -> bool;
    /// Its `apiVersion` and `kind`.
    fn type_meta(&self) -> Result<TypeMeta<'_>, String>;
    /// Whether the mapping has `key`.
    fn has(&self, key: &str) -> bool;
    /// Its `items` when that is a sequence.
    fn into_items(self) -> Option<Vec<Self>>;
    /// The whole document as a `T`.
    fn parse<T: DeserializeOwned>(self) -> Result<T, String>;
}

impl Document for serde_json::Value {
    fn is_object(&self) -> bool {
        serde_json::Value::is_object(self)
    }

    fn type_meta(&self) -> Result<TypeMeta<'_>, String> {
        TypeMeta::deserialize(self).map_err(|e| format!("invalid object: {e}"))
    }

    fn has(&self, key: &str) -> bool {
        serde_json::Value::get(self, key).is_some()
    }

    fn into_items(self) -> Option<Vec<Self>> {
        match self {
            serde_json::Value::Object(mut map) => match map.remove("items") {
                Some(serde_json::Value::Array(items)) => Some(items),
                _ => None,
            },
            _ => None,
        }
    }

    fn parse<T: DeserializeOwned>(self) -> Result<T, String> {
        serde_json::from_value(self).map_err(|e| e.to_string())
    }
}

impl Document for NodeRef<'_, '_> {
    fn is_object(&self) -> bool {
        matches!(self.node(), Node::Mapping(_))
    }

    fn type_meta(&self) -> Result<TypeMeta<'_>, String> {
        TypeMeta::deserialize(*self).map_err(|e| format!("invalid object: {e}"))
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn into_items(self) -> Option<Vec<Self>> {
        Some(self.get("items")?.items()?.collect())
    }

    fn parse<T: DeserializeOwned>(self) -> Result<T, String> {
        T::deserialize(self).map_err(|e| e.to_string())
    }
}

/// Adds one object (or the items of a `List`) to the set.
fn add_value<D: Document>(set: &mut ObjectSet, value: D) -> Result<(), String> {
    if !value.is_object() {
        return Err("expected a Kubernetes object (a mapping with apiVersion and kind)".into());
    }
    let meta = value.type_meta()?;
    if meta.kind.is_empty() {
        return Err("missing `kind`".into());
    }
    if meta.kind == "List" || meta.kind.ends_with("List") && value.has("items") {
        let Some(items) = value.into_items() else {
            return Err("`List` without an `items` array".into());
        };
        for (j, item) in items.into_iter().enumerate() {
            add_value(set, item).map_err(|m| format!("item {}: {m}", j + 1))?;
        }
        return Ok(());
    }
    let group = meta
        .api_version
        .rsplit_once('/')
        .map_or("", |(group, _version)| group);
    let gateway_group = group == GATEWAY_GROUP;
    match (meta.kind.as_ref(), group) {
        ("GatewayClass", _) if gateway_group => set.gateway_classes.push(parse(value, "")?),
        ("Gateway", _) if gateway_group => set.gateways.push(parse(value, "default")?),
        ("ListenerSet", g) | ("XListenerSet", g) if g == GATEWAY_GROUP || g == GATEWAY_X_GROUP => {
            set.listener_sets.push(parse(value, "default")?)
        }
        ("HTTPRoute", _) if gateway_group => set.http_routes.push(parse(value, "default")?),
        ("GRPCRoute", _) if gateway_group => set.grpc_routes.push(parse(value, "default")?),
        ("ReferenceGrant", _) if gateway_group => {
            set.reference_grants.push(parse(value, "default")?)
        }
        ("Service", "") => set.services.push(parse(value, "default")?),
        ("Namespace", "") => set.namespaces.push(parse(value, "")?),
        ("EndpointSlice", "discovery.k8s.io") => set.endpoint_slices.push(parse(value, "default")?),
        _ => {
            *set.skipped
                .entry(format!("{}/{}", meta.api_version, meta.kind))
                .or_insert(0) += 1
        }
    }
    Ok(())
}

/// Objects with a settable namespace.
trait HasMeta {
    fn meta_mut(&mut self) -> &mut super::model::ObjectMeta;
}

macro_rules! has_meta {
    ($($t:ty),*) => {$(
        impl HasMeta for $t {
            fn meta_mut(&mut self) -> &mut super::model::ObjectMeta {
                &mut self.metadata
            }
        }
    )*};
}
has_meta!(
    GatewayClass,
    Gateway,
    ListenerSet,
    HttpRoute,
    GrpcRoute,
    ReferenceGrant,
    Service,
    Namespace,
    EndpointSlice
);

/// Deserializes one object; namespaced kinds without a namespace get
/// `default_namespace` (what `kubectl apply` does without `-n`).
fn parse<T: DeserializeOwned + HasMeta>(
    value: impl Document,
    default_namespace: &str,
) -> Result<T, String> {
    let mut object: T = value.parse()?;
    let meta = object.meta_mut();
    if meta.name.is_empty() {
        return Err("missing metadata.name".into());
    }
    if meta.namespace.is_empty() {
        meta.namespace = default_namespace.to_string();
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_multi_document_with_unknown_kinds() {
        let text = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: eg
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
---
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw, namespace: infra}]
"#;
        let mut set = ObjectSet::default();
        load_text(&mut set, "a.yaml", text).unwrap();
        assert_eq!(set.gateways.len(), 1);
        assert_eq!(set.gateways[0].spec.listeners[0].port, 80);
        assert_eq!(set.http_routes.len(), 1);
        assert_eq!(set.http_routes[0].metadata.namespace, "default");
        assert!(set.http_routes[0].spec.rules.is_none());
        assert_eq!(set.skipped.get("apps/v1/Deployment"), Some(&1));
    }

    #[test]
    fn kubectl_list_json_and_yaml() {
        let json = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"a"},
             "spec":{"ports":[{"port":8080,"targetPort":"http"}]}},
            {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a","labels":{"x":"y"}}}]}"#;
        let mut set = ObjectSet::default();
        load_text(&mut set, "l.json", json).unwrap();
        assert_eq!(set.services.len(), 1);
        assert_eq!(set.namespaces[0].metadata.labels["x"], "y");
        assert_eq!(set.namespaces[0].metadata.namespace, "");

        let yaml = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: gateway.networking.k8s.io/v1\n  kind: HTTPRouteList\n  items: []\n- apiVersion: gateway.networking.k8s.io/v1\n  kind: ReferenceGrant\n  metadata: {name: g, namespace: b}\n  spec: {from: [], to: []}\n";
        load_text(&mut set, "l.yaml", yaml).unwrap();
        assert_eq!(set.reference_grants.len(), 1);
    }

    #[test]
    fn malformed_document_names_file_and_number() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\nkind: [unclosed\n";
        let mut set = ObjectSet::default();
        let err = load_text(&mut set, "bad.yaml", text).unwrap_err();
        assert_eq!(err.document, 2);
        assert!(
            err.to_string().starts_with("bad.yaml: document 2:"),
            "{err}"
        );

        let text =
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 99999}]}\n";
        let err = load_text(&mut set, "port.yaml", text).unwrap_err();
        assert_eq!(err.document, 1);

        let err = load_text(&mut set, "scalar.yaml", "just a string").unwrap_err();
        assert!(err.message.contains("Kubernetes object"));

        let err =
            load_text(&mut set, "noname.yaml", "apiVersion: v1\nkind: Service\n").unwrap_err();
        assert!(err.message.contains("metadata.name"));
    }

    #[test]
    fn xlistenerset_and_endpoint_slices() {
        let text = r#"
apiVersion: gateway.networking.x-k8s.io/v1alpha1
kind: XListenerSet
metadata: {name: ls, namespace: n}
spec:
  parentRef: {name: gw}
  listeners: [{name: a, port: 8080, protocol: HTTP, hostname: a.example.com}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s-abc, namespace: n, labels: {kubernetes.io/service-name: s}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1], conditions: {ready: true}}]
ports: [{name: http, port: 8080, protocol: TCP}]
"#;
        let mut set = ObjectSet::default();
        load_text(&mut set, "x.yaml", text).unwrap();
        assert_eq!(set.listener_sets.len(), 1);
        assert_eq!(set.endpoint_slices[0].service_name(), Some("s"));
    }

    /// YAML shapes JSON does not have still load: plain scalars that look like
    /// numbers or booleans as mapping keys (label keys, annotations) become
    /// string keys, and anchors/aliases are expanded.
    #[test]
    fn yaml_only_shapes_load_as_json_would() {
        let text = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: n
  labels: {1: one, true: yes-label, team: &team payments}
  annotations: {owner: *team}
"#;
        let mut set = ObjectSet::default();
        load_text(&mut set, "keys.yaml", text).unwrap();
        let labels = &set.namespaces[0].metadata.labels;
        assert_eq!(labels["1"], "one");
        assert_eq!(labels["true"], "yes-label");
        assert_eq!(labels["team"], "payments");
    }

    /// Loads `text` into copies of `before` through the subset reader's trees
    /// (`load_text`) and through the full path (`load_yaml`), asserts that both
    /// give the same result and the same objects (`context` names the text in
    /// a failure), and returns what the trees gave.
    fn load_both_ways(before: &ObjectSet, text: &str, context: &str) -> Result<ObjectSet, String> {
        let mut through_trees = before.clone();
        let mut through_values = before.clone();
        let typed = load_text(&mut through_trees, "t.yaml", text).map_err(|e| e.to_string());
        let full = load_yaml(&mut through_values, "t.yaml", text).map_err(|e| e.to_string());
        assert_eq!(typed, full, "{context}");
        assert_eq!(
            format!("{through_trees:?}"),
            format!("{through_values:?}"),
            "{context}"
        );
        typed.map(|()| through_trees)
    }

    /// An empty document (`---` twice, or a trailing separator) is skipped.
    #[test]
    fn empty_documents_are_skipped() {
        let text = "---
---
apiVersion: v1
kind: Namespace
metadata: {name: n}
---
";
        let mut set = ObjectSet::default();
        load_text(&mut set, "empty.yaml", text).unwrap();
        assert_eq!(set.namespaces.len(), 1);
    }

    /// Texts in the plain subset are read without serde_yaml and load exactly
    /// the objects (and skipped counts) the full path loads, after what the set
    /// already held; a text with one document outside the subset loads whole
    /// through the full path.
    #[test]
    fn subset_reader_loads_what_serde_yaml_loads() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/manifests");
        let mut texts: Vec<String> = std::fs::read_dir(root)
            .unwrap()
            .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
            .collect();
        let extra = r#"
apiVersion: v1
kind: Service
metadata: {name: s, namespace: n, labels: {"app": 'web', tier: "1"}}
spec:
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - name: grpc
    port: 81
    targetPort: grpc # named
  clusterIP: 10.0.0.1
status: {loadBalancer: {}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  generation: 3
spec:
  gatewayClassName: eg
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {a: b}}}}
status:
  conditions:
  - {type: Accepted, status: "True", observedGeneration: 3, reason: ~}
  listeners: []
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
"#;
        texts.push(extra.to_string());
        for text in &texts {
            let documents: Result<Vec<_>, _> = yaml_subset::documents(text).unwrap().collect();
            assert!(documents.is_ok(), "outside the subset:\n{text}");
        }
        // One document outside the subset (a folded scalar) sends the whole text
        // down the full path.
        texts.push(format!(
            "{extra}---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: n\n  annotations:\n    note: >\n      two\n      lines\n"
        ));
        assert!(yaml_subset::documents(texts.last().unwrap())
            .unwrap()
            .any(|document| document.is_err()));
        for text in &texts {
            let mut before = ObjectSet::default();
            load_text(&mut before, "before.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: first}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n").unwrap();
            let through_subset = load_both_ways(&before, text, text).unwrap();
            assert_eq!(through_subset.namespaces[0].metadata.name, "first");
        }
    }

    /// Every manifest text of the decision cases loads, typed straight from
    /// the subset reader's trees, into exactly the objects the full path
    /// (serde_yaml, then serde_json values) gives.
    #[test]
    fn decision_case_manifests_load_as_through_json_values() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
        let mut count = 0;
        for entry in std::fs::read_dir(root).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let case: serde_yaml::Value =
                serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let Some(text) = case.get("manifests").and_then(|m| m.as_str()) else {
                continue;
            };
            // Loading may fail (a case about an invalid manifest): the same
            // error both ways then.
            let _ = load_both_ways(&ObjectSet::default(), text, &path.display().to_string());
            count += 1;
        }
        assert!(count > 50, "{count} cases");
    }

    /// What the model reads in ways a tree could get wrong: null options,
    /// flattened backend references with their own fields, JSON-valued
    /// fields (status, targetRef), negative and large numbers, quoted
    /// numbers, a struct given as a sequence; and a document the model
    /// rejects (a negative port) is reported by the full path, unchanged.
    #[test]
    fn trees_type_the_model_as_json_values_do() {
        let text = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: n, labels: {a: "1"}, generation: 9223372036854775807}
spec:
  parentRefs: [{name: gw, sectionName: ~, port: 443}]
  hostnames: []
  rules:
  - backendRefs:
    - {name: a, port: 80, weight: 0, group: "", kind: Service, filters: []}
    - name: b
      namespace: other
      port: 8080
    matches: [{path: {type: Exact, value: "/x y"}, headers: [{name: h, value: '-1'}]}]
status: {parents: [{parentRef: {name: gw}, conditions: [{type: Accepted, status: "True", observedGeneration: -3}]}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s-1, namespace: n, labels: {kubernetes.io/service-name: s}}
addressType: IPv4
endpoints:
- addresses: ["10.0.0.1"]
  conditions: {ready: false, serving: ~}
  targetRef: {kind: Pod, name: p, uid: "0"}
ports: [{name: ~, port: 8080}]
"#;
        assert!(yaml_subset::documents(text).unwrap().all(|d| d.is_ok()));
        let through_trees = load_both_ways(&ObjectSet::default(), text, "route").unwrap();
        assert_eq!(through_trees.http_routes.len(), 1);
        assert_eq!(through_trees.endpoint_slices.len(), 1);

        // A struct given as a sequence: its fields in order, both ways.
        let text = "apiVersion: v1\nkind: Service\nmetadata: [a, b]\n";
        assert!(yaml_subset::documents(text).unwrap().all(|d| d.is_ok()));
        let through_trees = load_both_ways(&ObjectSet::default(), text, "sequence").unwrap();
        assert_eq!(through_trees.services[0].metadata.namespace, "b");

        let text =
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: -1}]}\n";
        let err = load_text(&mut ObjectSet::default(), "e.yaml", text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "e.yaml: document 1: invalid value: integer `-1`, expected u16"
        );
    }

    /// A document outside the subset is read alone by serde_yaml while the
    /// others are read by the subset reader; an error in any document, or a
    /// directive, sends the whole text down the full path (same message and
    /// document number).
    #[test]
    fn documents_outside_the_subset_are_read_alone() {
        let plain = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n";
        let folded = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: b\n  annotations:\n    note: >\n      folded\n      text\n";
        let anchored = "apiVersion: v1\nkind: Service\nmetadata: {name: &n c, labels: {app: *n}}\nspec: {ports: [{port: 80}]}\n";
        let text = format!("{plain}---\n{folded}---\n{anchored}---\n{plain}");
        let declined: Vec<_> = yaml_subset::documents(&text)
            .unwrap()
            .filter_map(|document| match document {
                Err(Declined::Document(document)) => Some(document.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(declined, [folded, anchored]);
        let through_subset = load_both_ways(&ObjectSet::default(), &text, &text).unwrap();
        assert_eq!(through_subset.services[0].metadata.labels["app"], "c");

        // The messages are the full path's, for the whole text (document
        // numbers and lines counted from its start, not from a document
        // read alone).
        for (text, document, message) in [
            // A bad port in a document read alone.
            (
                format!("{plain}---\n{anchored}").replace("80", "99999"),
                2,
                "e.yaml: document 2: invalid value: integer `99999`, expected u16",
            ),
            // A syntax error after a declined document.
            (
                format!("{plain}---\n{folded}---\nkind: [unclosed\n"),
                3,
                "e.yaml: document 3: invalid YAML: did not find expected ',' or ']' \
                 at line 15 column 1, while parsing a flow sequence at line 14 column 7",
            ),
            // A repeated key in a declined document.
            (
                format!("{folded}    note: again\n"),
                1,
                "e.yaml: document 1: invalid YAML: metadata.annotations: duplicate entry \
                 with key \"note\" at line 6 column 5",
            ),
            // A directive: no document is read by the subset reader.
            (
                format!("%YAML 1.2\n---\n{plain}---\nkind: [\n"),
                2,
                "e.yaml: document 2: invalid YAML: did not find expected node content \
                 at line 8 column 1, while parsing a flow node",
            ),
        ] {
            let err = load_text(&mut ObjectSet::default(), "e.yaml", &text).unwrap_err();
            assert_eq!(err.to_string(), message);
            assert_eq!(err.document, document, "{err}");
        }
    }

    /// A repeated key is an error wherever it is: in a flow mapping, in a map
    /// field (labels), plain against quoted.
    #[test]
    fn repeated_key_in_maps_is_an_error() {
        for (text, line) in [
            ("apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {x: '1', x: '2'}}\n", 3),
            ("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  labels:\n    x: y\n    'x': z\n", 6),
        ] {
            let mut set = ObjectSet::default();
            let err = load_text(&mut set, "dup.yaml", text).unwrap_err();
            assert_eq!(err.document, 1);
            assert!(err.message.contains("duplicate"), "{err}");
            assert!(err.message.contains(&format!("line {line}")), "{err}");
        }
    }

    /// A key given twice in one mapping is an error naming the document, not
    /// silently "the last one wins" (a route would lose its first rules).
    #[test]
    fn repeated_key_is_an_error() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: a}\nspec:\n  rules: []\n  rules: []\n";
        let mut set = ObjectSet::default();
        let err = load_text(&mut set, "dup.yaml", text).unwrap_err();
        assert_eq!(err.document, 2);
        assert!(err.message.contains("duplicate"), "{err}");
    }
}
