//! Property tests of the route-decision engine:
//! * the order of objects (documents in the YAML, items in the `ObjectSet`)
//!   never changes a decision;
//! * deciding never panics, whatever the request strings;
//! * hostname helpers (`normalize_host`, `matches`, `intersect`) keep their
//!   invariants.

use std::sync::OnceLock;

use proptest::prelude::*;
use routeproof::gateway::hostname::{intersect, matches, normalize_host};
use routeproof::gateway::load::load_text;
use routeproof::gateway::report::DecisionReport;
use routeproof::gateway::{
    CompileOptions, Headers, ObjectSet, Protocol, Request, RouteIndex, Scheme, DECIDE_BATCH_GROUP,
};

// ---------------------------------------------------------------------------
// Generated configurations
// ---------------------------------------------------------------------------

const NAMESPACES: [&str; 2] = ["default", "ns1"];
const TIMESTAMPS: [Option<&str>; 3] = [
    None,
    Some("2020-01-01T00:00:00Z"),
    Some("2021-01-01T00:00:00Z"),
];
const ROUTE_HOSTS: [&str; 4] = [
    "a.example.com",
    "\"*.example.com\"",
    "b.org",
    "\"*.a.example.com\"",
];
const SECTIONS: [&str; 4] = ["any", "wild", "exact", "alt"];
const PATHS: [&str; 4] = ["/", "/a", "/a/b", "/b"];
const BACKENDS: [&str; 4] = ["s1", "s2", "missing", "ns1/s1"];

#[derive(Debug, Clone)]
struct RuleGen {
    path_type: usize,
    path: usize,
    method: Option<usize>,
    header: Option<usize>,
    query: bool,
    backends: Vec<(usize, u32)>,
}

#[derive(Debug, Clone)]
struct RouteGen {
    grpc: bool,
    ns: usize,
    ts: usize,
    hosts: Vec<usize>,
    section: Option<usize>,
    rules: Vec<RuleGen>,
}

fn rule_strategy() -> impl Strategy<Value = RuleGen> {
    (
        0..3usize,
        0..PATHS.len(),
        proptest::option::of(0..2usize),
        proptest::option::of(0..2usize),
        any::<bool>(),
        proptest::collection::vec((0..BACKENDS.len(), 0..3u32), 0..3),
    )
        .prop_map(
            |(path_type, path, method, header, query, backends)| RuleGen {
                path_type,
                path,
                method,
                header,
                query,
                backends,
            },
        )
}

fn route_strategy() -> impl Strategy<Value = RouteGen> {
    (
        proptest::bool::weighted(0.2),
        0..NAMESPACES.len(),
        0..TIMESTAMPS.len(),
        proptest::sample::subsequence((0..ROUTE_HOSTS.len()).collect::<Vec<_>>(), 0..3),
        proptest::option::of(0..SECTIONS.len()),
        proptest::collection::vec(rule_strategy(), 1..4),
    )
        .prop_map(|(grpc, ns, ts, hosts, section, rules)| RouteGen {
            grpc,
            ns,
            ts,
            hosts,
            section,
            rules,
        })
}

fn backend_refs(rule: &RuleGen) -> String {
    let refs: Vec<String> = rule
        .backends
        .iter()
        .map(|&(b, w)| {
            let (ns, name) = BACKENDS[b]
                .split_once('/')
                .unwrap_or(("default", BACKENDS[b]));
            format!("{{name: {name}, namespace: {ns}, port: 8080, weight: {w}}}")
        })
        .collect();
    format!("[{}]", refs.join(", "))
}

fn route_yaml(i: usize, r: &RouteGen) -> String {
    let ts = TIMESTAMPS[r.ts]
        .map(|t| format!(", creationTimestamp: \"{t}\""))
        .unwrap_or_default();
    let section = r
        .section
        .map(|s| format!(", sectionName: {}", SECTIONS[s]))
        .unwrap_or_default();
    let hosts: Vec<&str> = r.hosts.iter().map(|&h| ROUTE_HOSTS[h]).collect();
    let rules: Vec<String> = r
        .rules
        .iter()
        .map(|rule| {
            let header = rule
                .header
                .map(|v| format!("headers: [{{name: x, value: \"{}\"}}]", v + 1))
                .unwrap_or_else(|| "headers: []".into());
            let m = if r.grpc {
                let service = ["svc.A", "svc.B", "svc.A"][rule.path % 3];
                let method = rule
                    .method
                    .map(|m| format!(", method: {}", ["Get", "Put"][m]))
                    .unwrap_or_default();
                format!("{{method: {{service: {service}{method}}}, {header}}}")
            } else {
                let ptype = ["Exact", "PathPrefix", "RegularExpression"][rule.path_type];
                let value = if rule.path_type == 2 {
                    format!("{}.*", PATHS[rule.path])
                } else {
                    PATHS[rule.path].to_string()
                };
                let method = rule
                    .method
                    .map(|m| format!(", method: {}", ["GET", "POST"][m]))
                    .unwrap_or_default();
                let query = if rule.query {
                    ", queryParams: [{name: q, value: \"1\"}]"
                } else {
                    ""
                };
                format!("{{path: {{type: {ptype}, value: \"{value}\"}}{method}, {header}{query}}}")
            };
            format!("{{matches: [{m}], backendRefs: {}}}", backend_refs(rule))
        })
        .collect();
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: {}\nmetadata: {{name: r{i}, namespace: {}{ts}}}\nspec: {{parentRefs: [{{name: gw, namespace: default{section}}}], hostnames: [{}], rules: [{}]}}\n",
        if r.grpc { "GRPCRoute" } else { "HTTPRoute" },
        NAMESPACES[r.ns],
        hosts.join(", "),
        rules.join(", ")
    )
}

/// The fixed objects every generated configuration has.
fn fixed_docs() -> Vec<String> {
    let mut docs = vec![
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\nspec:\n  gatewayClassName: c\n  listeners:\n  - {name: any, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}\n  - {name: wild, port: 80, protocol: HTTP, hostname: \"*.example.com\", allowedRoutes: {namespaces: {from: All}}}\n  - {name: exact, port: 80, protocol: HTTP, hostname: a.example.com, allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {team: web}}}}}\n  - {name: alt, port: 8080, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}\n".to_string(),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns1, labels: {team: web}}\n".to_string(),
        "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g, namespace: ns1}\nspec: {from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}], to: [{group: \"\", kind: Service}]}\n".to_string(),
    ];
    for (ns, name) in [("default", "s1"), ("default", "s2"), ("ns1", "s1")] {
        docs.push(format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{ports: [{{port: 8080}}]}}\n"
        ));
    }
    docs
}

fn config_docs() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(route_strategy(), 1..7).prop_map(|routes| {
        let mut docs = fixed_docs();
        docs.extend(routes.iter().enumerate().map(|(i, r)| route_yaml(i, r)));
        docs
    })
}

fn load(docs: &[String]) -> ObjectSet {
    let mut set = ObjectSet::default();
    let text = docs.join("---\n");
    load_text(&mut set, "gen.yaml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    set
}

/// Requests covering hosts, paths, methods, headers, query strings, ports and
/// protocols, with some attributes unknown.
fn requests() -> Vec<Request<'static>> {
    let hosts = [
        Some("a.example.com"),
        Some("x.example.com"),
        Some("z.a.example.com"),
        Some("B.org:80"),
        None,
    ];
    let paths = ["/", "/a", "/a/b", "/b", "/a/bc"];
    let methods = [Some("GET"), Some("POST"), None];
    let headers: [Headers<'static>; 3] = [
        Headers {
            known: &[],
            others_unknown: false,
        },
        Headers {
            known: &[("X", "1")],
            others_unknown: false,
        },
        Headers {
            known: &[],
            others_unknown: true,
        },
    ];
    let queries = [Some(""), Some("q=1"), None];
    let mut out = Vec::new();
    let mut i = 0usize;
    for host in hosts {
        for path in paths {
            for port in [80u16, 8080] {
                out.push(Request {
                    host,
                    path,
                    port: Some(port),
                    method: methods[i % 3],
                    headers: headers[(i / 3) % 3],
                    query: queries[(i / 2) % 3],
                    ..Default::default()
                });
                i += 1;
            }
        }
        out.push(Request {
            host,
            path: "/",
            port: Some(9999),
            ..Default::default()
        });
        for path in ["/svc.A/Get", "/svc.B/Put", "/other.S/Get"] {
            out.push(Request {
                host,
                path,
                method: Some("POST"),
                headers: headers[i % 3],
                query: Some(""),
                protocol: Protocol::Grpc,
                ..Default::default()
            });
            i += 1;
        }
    }
    out
}

fn decisions(set: &ObjectSet, options: &CompileOptions) -> Vec<String> {
    let idx = RouteIndex::compile(set, options.clone());
    requests()
        .iter()
        .map(|r| {
            let d = idx.decide(r);
            serde_json::to_string(&DecisionReport::new(&idx, r, &d)).unwrap()
        })
        .collect()
}

fn reversed(set: &ObjectSet) -> ObjectSet {
    let mut s = set.clone();
    s.gateways.reverse();
    s.listener_sets.reverse();
    s.http_routes.reverse();
    s.grpc_routes.reverse();
    s.reference_grants.reverse();
    s.services.reverse();
    s.namespaces.reverse();
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Shuffling documents in the YAML, or reversing each object list, never
    /// changes any decision (with and without listener isolation).
    #[test]
    fn object_order_never_changes_decisions(
        (docs, shuffled) in config_docs().prop_flat_map(|d| (Just(d.clone()), Just(d).prop_shuffle())),
        isolation in any::<bool>(),
    ) {
        let options = CompileOptions { listener_isolation: isolation, ..Default::default() };
        let original = load(&docs);
        let expected = decisions(&original, &options);
        let got = decisions(&load(&shuffled), &options);
        for (i, (e, g)) in expected.iter().zip(&got).enumerate() {
            prop_assert_eq!(e, g, "request {} after shuffling documents", i);
        }
        let got = decisions(&reversed(&original), &options);
        for (i, (e, g)) in expected.iter().zip(&got).enumerate() {
            prop_assert_eq!(e, g, "request {} after reversing object lists", i);
        }
    }
}

// ---------------------------------------------------------------------------
// Deciding never panics
// ---------------------------------------------------------------------------

fn rich_index() -> &'static RouteIndex {
    static INDEX: OnceLock<RouteIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut docs = fixed_docs();
        docs.push("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: tls, namespace: default}\nspec:\n  gatewayClassName: c\n  listeners:\n  - {name: any, port: 443, protocol: HTTPS}\n  - {name: one, port: 443, protocol: HTTPS, hostname: a.example.com}\n".into());
        docs.push("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: rich, namespace: default}\nspec:\n  parentRefs: [{name: gw}, {name: tls}]\n  rules:\n  - matches: [{path: {type: PathPrefix, value: /p/}}]\n    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /q}}}]\n  - matches: [{path: {type: PathPrefix, value: /w}}]\n    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]\n    backendRefs: [{name: s1, port: 8080}]\n  - matches: [{path: {type: RegularExpression, value: \"/r/[a-z]+\"}, headers: [{type: RegularExpression, name: x, value: \".*\"}], queryParams: [{name: q, value: \"1\"}], method: PUT}]\n    backendRefs: [{name: s1, port: 8080}, {name: missing, port: 8080}]\n  - matches: [{path: {type: Exact, value: /}}]\n    backendRefs: [{name: s2, port: 8080, filters: [{type: RequestRedirect, requestRedirect: {scheme: https, path: {type: ReplaceFullPath, replaceFullPath: /x}}}]}]\n  - backendRefs: [{name: s2, port: 8080}]\n".into());
        docs.push("apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: g, namespace: default}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n  - matches: [{method: {type: RegularExpression, service: \"svc\\\\..*\"}, headers: [{name: x, value: \"1\"}]}]\n    backendRefs: [{name: s1, port: 8080}]\n".into());
        RouteIndex::compile(&load(&docs), CompileOptions::default())
    })
}

fn arbitrary_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9.:*\\[\\]/-]{0,24}",
        "(/[a-z%.]{0,4}){0,5}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn deciding_never_panics(
        host in proptest::option::of(arbitrary_text()),
        sni in proptest::option::of(arbitrary_text()),
        path in arbitrary_text(),
        method in proptest::option::of(arbitrary_text()),
        query in proptest::option::of(arbitrary_text()),
        headers in proptest::collection::vec((arbitrary_text(), arbitrary_text()), 0..4),
        others_unknown in any::<bool>(),
        gateway in proptest::option::of(prop_oneof![Just("default/gw".to_string()), Just("default/tls".to_string()), arbitrary_text()]),
        port in proptest::option::of(prop_oneof![Just(80u16), Just(443u16), Just(8080u16), any::<u16>()]),
        https in any::<bool>(),
        grpc in any::<bool>(),
    ) {
        let idx = rich_index();
        let known: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let req = Request {
            gateway: gateway.as_deref(),
            port,
            scheme: if https { Scheme::Https } else { Scheme::Http },
            sni: sni.as_deref(),
            host: host.as_deref(),
            method: method.as_deref(),
            path: &path,
            query: query.as_deref(),
            headers: Headers { known: &known, others_unknown },
            protocol: if grpc { Protocol::Grpc } else { Protocol::Http },
        };
        let d = idx.decide(&req);
        let _ = d.redirect(&req);
        let _ = d.rewrite(&req);
        let _ = d.allowed_backends().count();
        let report = DecisionReport::new(idx, &req, &d);
        let _ = report.to_text();
        serde_json::to_string(&report).unwrap();
        // A decision with alternatives always names what was unknown.
        prop_assert_eq!(d.is_ambiguous(), d.unknowns.any());
    }
}

// ---------------------------------------------------------------------------
// Hostname invariants
// ---------------------------------------------------------------------------

fn concrete_host() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![Just("a"), Just("b"), Just("ex"), Just("com")],
        1..5,
    )
    .prop_map(|labels| labels.join("."))
}

fn pattern() -> impl Strategy<Value = String> {
    (any::<bool>(), concrete_host()).prop_map(|(wild, h)| if wild { format!("*.{h}") } else { h })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// `intersect(a, b)` is matched only by hosts both match, and by every such host.
    #[test]
    fn intersection_is_exact(a in pattern(), b in pattern(), h in concrete_host()) {
        let both = matches(Some(&a), &h) && matches(Some(&b), &h);
        match intersect(Some(&a), &b) {
            Some(i) => prop_assert_eq!(matches(Some(&i), &h), both, "{} ∩ {} = {} for {}", a, b, i, h),
            None => prop_assert!(!both, "{} ∩ {} empty but {} matches both", a, b, h),
        }
        // Symmetric, and a listener without hostname keeps the route name.
        prop_assert_eq!(intersect(Some(&a), &b), intersect(Some(&b), &a));
        prop_assert_eq!(intersect(None, &b), Some(b.clone()));
        prop_assert_eq!(intersect(Some(&a), &a), Some(a.clone()));
    }

    /// Wildcards match one or more labels, never the bare suffix.
    #[test]
    fn wildcard_label_rules(suffix in concrete_host(), prefix in concrete_host()) {
        let wild = format!("*.{suffix}");
        let sub = format!("{prefix}.{suffix}");
        prop_assert!(matches(Some(&wild), &sub));
        prop_assert!(!matches(Some(&wild), &suffix));
        prop_assert!(matches(Some(&suffix), &suffix));
        prop_assert!(matches(None, &sub));
    }

    /// `normalize_host` is idempotent, drops the port and the case.
    #[test]
    fn normalize_host_invariants(h in concrete_host(), port in proptest::option::of(any::<u16>()), upper in any::<bool>()) {
        let written = if upper { h.to_ascii_uppercase() } else { h.clone() };
        let with_port = match port {
            Some(p) => format!("{written}:{p}"),
            None => written,
        };
        let n = normalize_host(&with_port);
        prop_assert_eq!(n.as_ref(), h.as_str());
        let again = normalize_host(&n);
        prop_assert_eq!(again.as_ref(), n.as_ref());
        prop_assert!(matches(Some(&h), &n));
    }

    /// On arbitrary text: never panics, never grows, never leaves upper case.
    #[test]
    fn normalize_host_never_grows(s in any::<String>()) {
        let n = normalize_host(&s);
        prop_assert!(n.len() <= s.len());
        prop_assert!(!n.bytes().any(|b| b.is_ascii_uppercase()));
    }
}

/// The generated configurations are not vacuous: across a deterministic sample
/// they forward, answer 500 and 404, and stay ambiguous on some requests.
#[test]
fn generator_exercises_the_engine() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut outcomes = std::collections::BTreeMap::new();
    let mut ambiguous = 0;
    for _ in 0..20 {
        let docs = config_docs().new_tree(&mut runner).unwrap().current();
        let idx = RouteIndex::compile(&load(&docs), CompileOptions::default());
        for r in requests() {
            let d = idx.decide(&r);
            *outcomes.entry(d.outcome.as_str()).or_insert(0) += 1;
            ambiguous += usize::from(d.is_ambiguous());
        }
    }
    for o in ["forward", "error", "no_route", "no_listener"] {
        assert!(
            outcomes.get(o).copied().unwrap_or(0) > 0,
            "{o}: {outcomes:?}"
        );
    }
    assert!(ambiguous > 0);
}

// ---------------------------------------------------------------------------
// The path index never diverges from a plain linear scan
// ---------------------------------------------------------------------------

/// Path values routes match on: prefixes with and without a trailing slash,
/// siblings sharing leading bytes (`/a` vs `/ab`), nested paths, the root.
/// Values longer than 12 bytes share their first 12 bytes, which the path
/// index keeps in its slots (the rest is compared elsewhere).
/// The last seven straddle byte 64, where the request's prefix lengths move
/// from the bit mask to the list of long cuts and where all longer key lengths
/// share one bit of a bucket's length masks: values of 62 to 66 bytes (each a
/// byte prefix of the longer ones, never a `/` cut of them) and values with a
/// `/` at byte 63 and at byte 64 (whose cut is the 63- or 64-byte value).
const INDEX_PATHS: [&str; 21] = [
    "/",
    "/a",
    "/a/",
    "/ab",
    "/a/b",
    "/a/b/",
    "/a/bc",
    "/b",
    "/b/a",
    "/a/b/c",
    "/abcdefghijk/l",
    "/abcdefghijk/lm",
    "/abcdefghijk",
    "/abcdefghijk/l/n",
    "/lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll",
    "/llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll",
    "/lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll",
    "/llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll",
    "/lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll",
    "/llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll/m",
    "/lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll/m",
];
/// Regexes overlapping the plain values above.
const INDEX_REGEXES: [&str; 4] = ["/a/[a-z]+", "/a.*", "/b/?", "/(a|b)/b?c?"];
const INDEX_HOSTS: [&str; 4] = [
    "a.example.com",
    "\"*.example.com\"",
    "b.org",
    "\"*.b.example.com\"",
];

#[derive(Debug, Clone)]
struct IndexMatchGen {
    /// 0 Exact, 1 PathPrefix, 2 RegularExpression, 3 no path (`PathPrefix /`).
    path_type: usize,
    value: usize,
    method: Option<usize>,
    header: bool,
    query: bool,
}

fn index_match_strategy() -> impl Strategy<Value = IndexMatchGen> {
    (
        prop_oneof![3 => Just(0usize), 4 => Just(1usize), 1 => Just(2usize), 1 => Just(3usize)],
        0..INDEX_PATHS.len(),
        proptest::option::of(0..2usize),
        proptest::bool::weighted(0.25),
        proptest::bool::weighted(0.15),
    )
        .prop_map(|(path_type, value, method, header, query)| IndexMatchGen {
            path_type,
            value,
            method,
            header,
            query,
        })
}

fn index_match_yaml(m: &IndexMatchGen) -> String {
    let mut parts = Vec::new();
    match m.path_type {
        0 => parts.push(format!(
            "path: {{type: Exact, value: \"{}\"}}",
            INDEX_PATHS[m.value]
        )),
        1 => parts.push(format!(
            "path: {{type: PathPrefix, value: \"{}\"}}",
            INDEX_PATHS[m.value]
        )),
        2 => parts.push(format!(
            "path: {{type: RegularExpression, value: \"{}\"}}",
            INDEX_REGEXES[m.value % INDEX_REGEXES.len()]
        )),
        _ => {}
    }
    if let Some(method) = m.method {
        parts.push(format!("method: {}", ["GET", "POST"][method]));
    }
    if m.header {
        parts.push("headers: [{name: x, value: \"1\"}]".into());
    }
    if m.query {
        parts.push("queryParams: [{name: q, value: \"1\"}]".into());
    }
    format!("{{{}}}", parts.join(", "))
}

/// Routes whose rules carry several matches each, all on one HTTP listener
/// (plus one with a hostname), so buckets hold many competing matches.
fn index_config_docs() -> impl Strategy<Value = Vec<String>> {
    let route = (
        0..NAMESPACES.len(),
        0..TIMESTAMPS.len(),
        proptest::sample::subsequence((0..INDEX_HOSTS.len()).collect::<Vec<_>>(), 0..3),
        proptest::collection::vec(
            (
                proptest::collection::vec(index_match_strategy(), 1..4),
                0..BACKENDS.len(),
            ),
            1..4,
        ),
    );
    proptest::collection::vec(route, 1..8).prop_map(|routes| {
        let mut docs = fixed_docs();
        for (i, (ns, ts, hosts, rules)) in routes.iter().enumerate() {
            let ts = TIMESTAMPS[*ts]
                .map(|t| format!(", creationTimestamp: \"{t}\""))
                .unwrap_or_default();
            let hosts: Vec<&str> = hosts.iter().map(|&h| INDEX_HOSTS[h]).collect();
            let rules: Vec<String> = rules
                .iter()
                .map(|(matches, backend)| {
                    let matches: Vec<String> = matches.iter().map(index_match_yaml).collect();
                    let (bns, bname) = BACKENDS[*backend]
                        .split_once('/')
                        .unwrap_or(("default", BACKENDS[*backend]));
                    format!(
                        "{{matches: [{}], backendRefs: [{{name: {bname}, namespace: {bns}, port: 8080}}]}}",
                        matches.join(", ")
                    )
                })
                .collect();
            docs.push(format!(
                "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: ix{i}, namespace: {}{ts}}}\nspec: {{parentRefs: [{{name: gw, namespace: default}}], hostnames: [{}], rules: [{}]}}\n",
                NAMESPACES[*ns],
                hosts.join(", "),
                rules.join(", ")
            ));
        }
        docs
    })
}

/// Request paths: the configured values, their trailing-slash and child
/// variants, siblings that share leading bytes, doubled slashes, no leading
/// slash, and a path with more `/` boundaries than the index keeps.
fn index_request_path() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0..INDEX_PATHS.len(), 0..5usize).prop_map(|(v, variant)| {
            let v = INDEX_PATHS[v];
            match variant {
                0 => v.to_string(),
                1 => format!("{v}/"),
                2 => format!("{v}/c"),
                3 => format!("{v}c"),
                _ => format!("{}/", v.trim_end_matches('/')),
            }
        }),
        3 => "(/(a|b|ab|bc|c)?){0,5}",
        1 => "[ab/]{0,6}",
        1 => Just("/a".repeat(40)),
        // Long values with cuts from byte 64 on: as many as the index keeps,
        // and more (decided by a scan).
        1 => (17..21usize, 0..2usize).prop_map(|(v, cuts)| {
            format!("{}{}", INDEX_PATHS[v], "/q".repeat([14, 17][cuts]))
        }),
    ]
}

/// Everything a decision says, for comparing two ways of reaching it.
fn decision_summary(
    idx: &RouteIndex,
    req: &Request<'_>,
    d: &routeproof::gateway::Decision<'_>,
) -> String {
    // A hit's ids resolve to one consistent match, route and rule.
    for h in d.hit.iter().chain(&d.alternatives) {
        let entry = h.entry();
        assert_eq!(entry.route, h.route_id());
        assert!(std::ptr::eq(h.route(), &idx.routes[h.route_id() as usize]));
        assert_eq!(h.rule().index, entry.rule as usize);
        assert!(std::ptr::eq(entry, &idx.matches[h.match_id() as usize]));
    }
    let hit = d
        .hit
        .map(|h| format!("{}#{}.{}", h.route().key, h.rule().index, h.entry().index));
    let alternatives: Vec<String> = d
        .alternatives
        .iter()
        .map(|h| format!("{}#{}.{}", h.route().key, h.rule().index, h.entry().index))
        .collect();
    format!(
        "{:?} {:?} {:?} {:?} {:?} {:?} {}",
        d.outcome,
        d.status,
        d.reason(),
        hit,
        alternatives,
        d.unknowns,
        serde_json::to_string(&DecisionReport::new(idx, req, d)).unwrap()
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Deciding through the buckets' path index gives exactly the decision of
    /// evaluating every match of each bucket in precedence order: winner,
    /// status, ambiguous alternatives (in order) and unknowns.
    #[test]
    fn path_index_agrees_with_linear_scan(
        docs in index_config_docs(),
        paths in proptest::collection::vec(index_request_path(), 1..12),
        isolation in any::<bool>(),
    ) {
        let options = CompileOptions { listener_isolation: isolation, ..Default::default() };
        let idx = RouteIndex::compile(&load(&docs), options);
        let headers: [Headers<'static>; 4] = [
            Headers { known: &[], others_unknown: false },
            Headers { known: &[("X", "1")], others_unknown: false },
            Headers { known: &[], others_unknown: true },
            Headers { known: &[("x", "2"), ("X", "1")], others_unknown: false },
        ];
        for (i, path) in paths.iter().enumerate() {
            let hosts = [
                Some("a.example.com"),
                Some("z.example.com"),
                Some("x.b.example.com"),
                Some("b.org"),
                None,
            ];
            for host in hosts {
                let req = Request {
                    host,
                    path,
                    method: [Some("GET"), Some("POST"), None][i % 3],
                    headers: headers[(i / 3) % 4],
                    query: [Some(""), Some("q=1"), None, Some("q=2&q=1")][(i + 1) % 4],
                    ..Default::default()
                };
                let indexed = decision_summary(&idx, &req, &idx.decide(&req));
                let linear = decision_summary(&idx, &req, &idx.decide_by_linear_scan(&req));
                prop_assert_eq!(indexed, linear, "path {:?} host {:?}", path, host);
            }
        }
    }
}

/// Batch sizes around the group size of `decide_batch` (0, 1, K-1, K, K+1,
/// 2K+1) and a few arbitrary ones.
fn batch_size() -> impl Strategy<Value = usize> {
    let k = DECIDE_BATCH_GROUP;
    prop_oneof![
        3 => proptest::sample::select(vec![0, 1, k - 1, k, k + 1, 2 * k + 1]),
        1 => 0..3 * k,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// `decide_batch` decides every request of a batch exactly as `decide`
    /// (and so as the linear scan) does, whatever the batch sizes: winner,
    /// status, alternatives, unknowns and the explain report.
    #[test]
    fn decide_batch_agrees_with_decide(
        docs in index_config_docs(),
        paths in proptest::collection::vec(index_request_path(), 1..12),
        sizes in proptest::collection::vec(batch_size(), 1..8),
        isolation in any::<bool>(),
    ) {
        let options = CompileOptions { listener_isolation: isolation, ..Default::default() };
        let idx = RouteIndex::compile(&load(&docs), options);
        let hosts = [
            Some("a.example.com"),
            Some("Z.Example.com:80"),
            Some("x.b.example.com"),
            Some("b.org"),
            None,
        ];
        // Known headers too: repeated names in either case, and values that
        // differ between the repeats (as do the repeated query parameters).
        let header_sets: [Headers<'static>; 4] = [
            Headers { known: &[], others_unknown: false },
            Headers { known: &[("x", "2"), ("X", "1")], others_unknown: false },
            Headers { known: &[("X", "1"), ("x", "2")], others_unknown: true },
            Headers { known: &[], others_unknown: true },
        ];
        let mut reqs = Vec::new();
        for (i, path) in paths.iter().enumerate() {
            for (j, host) in hosts.iter().enumerate() {
                reqs.push(Request {
                    host: *host,
                    path,
                    method: [Some("GET"), Some("POST"), None][i % 3],
                    headers: header_sets[(i + j) % 4],
                    query: [Some(""), Some("q=1"), None, Some("q=2&q=1")][(i + 2 * j + 1) % 4],
                    scheme: if j == 1 { Scheme::Https } else { Scheme::Http },
                    sni: (j == 1).then_some("z.example.com"),
                    protocol: if j == 3 { Protocol::Grpc } else { Protocol::Http },
                    ..Default::default()
                });
            }
        }
        // Consecutive batches of the drawn sizes (cycled), then the rest.
        let mut rest = &reqs[..];
        let mut out = Vec::new();
        let rounds = sizes.iter().cycle().take(reqs.len() + sizes.len()).copied();
        for size in rounds.chain(std::iter::once(usize::MAX)) {
            let (batch, tail) = rest.split_at(size.min(rest.len()));
            out.clear();
            idx.decide_batch(batch, &mut out);
            prop_assert_eq!(out.len(), batch.len());
            for (req, got) in batch.iter().zip(&out) {
                let single = decision_summary(&idx, req, &idx.decide(req));
                let batched = decision_summary(&idx, req, got);
                let linear = decision_summary(&idx, req, &idx.decide_by_linear_scan(req));
                prop_assert_eq!(&batched, &single, "batch of {}: {:?}", size, req);
                prop_assert_eq!(&batched, &linear, "batch of {}: {:?}", size, req);
            }
            rest = tail;
        }
        prop_assert!(rest.is_empty());
    }
}
