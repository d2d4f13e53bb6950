//! One focused test per rule of the route-decision engine, through the library
//! API: small manifests -> `load_text` -> `RouteIndex::compile` -> `decide`.
//!
//! The expectations follow `docs/gateway-api-semantics.md` (the spec restated);
//! section numbers in comments refer to it. Tests are grouped by area with a
//! name prefix: `listener_`, `attach_`, `host_`, `match_`, `prec_`, `grpc_`,
//! `filter_`, `backend_`, `unknown_`, `audit_`.

use routeproof::gateway::audit::{audit, AuditReport};
use routeproof::gateway::compile::{effective_hostnames, RuleAction};
use routeproof::gateway::load::load_text;
use routeproof::gateway::report::DecisionReport;
use routeproof::gateway::{
    CompileOptions, Decision, Headers, ObjectSet, Outcome, Protocol, Request, RouteIndex, Scheme,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Services `a`, `b`, `c`, `d`, `m` in `default` (port 8080) and `x` in `other`.
fn services() -> String {
    let mut out = String::new();
    for (ns, name) in [
        ("default", "a"),
        ("default", "b"),
        ("default", "c"),
        ("default", "d"),
        ("default", "m"),
        ("other", "x"),
    ] {
        out.push_str(&svc(ns, name, ""));
    }
    out
}

fn svc(ns: &str, name: &str, extra_spec: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{ports: [{{port: 8080}}]{extra_spec}}}\n"
    )
}

/// Gateway `default/gw` with the given listeners (flow YAML list), plus services.
fn gw(listeners: &str) -> String {
    gw_spec(&format!("listeners: {listeners}"))
}

fn gw_spec(spec_body: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: default}}\nspec: {{gatewayClassName: c, {spec_body}}}\n{}",
        services()
    )
}

const HTTP80: &str = "[{name: http, port: 80, protocol: HTTP}]";

/// An HTTPRoute; `meta` and `spec` are flow mappings.
fn route_doc(kind: &str, meta: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: {kind}\nmetadata: {meta}\nspec: {spec}\n"
    )
}

/// HTTPRoute `name` in `default`, parent `gw`, with spec `body` (e.g. `rules: [...]`).
fn hr(name: &str, body: &str) -> String {
    route_doc(
        "HTTPRoute",
        &format!("{{name: {name}}}"),
        &format!("{{parentRefs: [{{name: gw}}], {body}}}"),
    )
}

/// GRPCRoute `name` in `default`, parent `gw`.
fn gr(name: &str, body: &str) -> String {
    route_doc(
        "GRPCRoute",
        &format!("{{name: {name}}}"),
        &format!("{{parentRefs: [{{name: gw}}], {body}}}"),
    )
}

/// A rule with one match (flow mapping) and one backend (service in default).
fn rule(m: &str, backend: &str) -> String {
    format!("{{matches: [{m}], backendRefs: [{{name: {backend}, port: 8080}}]}}")
}

fn rules(rs: &[String]) -> String {
    format!("rules: [{}]", rs.join(", "))
}

fn prefix(v: &str) -> String {
    format!("{{path: {{type: PathPrefix, value: \"{v}\"}}}}")
}

fn exact(v: &str) -> String {
    format!("{{path: {{type: Exact, value: \"{v}\"}}}}")
}

fn objects(yaml: &str) -> ObjectSet {
    let mut set = ObjectSet::default();
    load_text(&mut set, "test.yaml", yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    set
}

fn index(yaml: &str) -> RouteIndex {
    RouteIndex::compile(&objects(yaml), CompileOptions::default())
}

fn index_with(yaml: &str, options: CompileOptions) -> RouteIndex {
    RouteIndex::compile(&objects(yaml), options)
}

/// A fully known GET request on port 80.
fn get(host: &'static str, path: &'static str) -> Request<'static> {
    Request {
        host: Some(host),
        method: Some("GET"),
        path,
        query: Some(""),
        headers: Headers {
            known: &[],
            others_unknown: false,
        },
        ..Default::default()
    }
}

/// `route#rule` of the winner, or the outcome when nothing matched.
fn who(d: &Decision<'_>) -> String {
    match d.hit {
        Some(h) => format!("{}#{}", h.route().name, h.rule().index),
        None => d.outcome.as_str().to_string(),
    }
}

fn at(idx: &RouteIndex, req: &Request<'_>) -> String {
    who(&idx.decide(req))
}

/// The `Accepted` reason of each parentRef of route `name` (`None` = no status entry).
fn accepted(idx: &RouteIndex, name: &str) -> Vec<Option<&'static str>> {
    idx.route_parents
        .iter()
        .filter(|p| idx.routes[p.route].name == name)
        .map(|p| p.accepted.as_ref().map(|a| a.1))
        .collect()
}

fn findings<'a>(report: &'a AuditReport, code: &str) -> Vec<&'a str> {
    report
        .findings
        .iter()
        .filter(|f| f.code == code)
        .map(|f| f.message.as_str())
        .collect()
}

fn allowed(d: &Decision<'_>) -> Vec<String> {
    let mut v: Vec<String> = d.allowed_backends().map(|b| b.key.clone()).collect();
    v.sort();
    v.dedup();
    v
}

fn invalid_reason(idx: &RouteIndex, host: &'static str, path: &'static str) -> Option<String> {
    let d = idx.decide(&get(host, path));
    d.hit
        .and_then(|h| h.rule().backends[0].invalid.as_ref())
        .map(|(r, _)| r.as_str().to_string())
}

// ---------------------------------------------------------------------------
// 1. Listener selection (§1)
// ---------------------------------------------------------------------------

#[test]
fn listener_port_and_protocol() {
    let idx = index(&format!(
        "{}{}{}",
        gw("[{name: http, port: 80, protocol: HTTP}, {name: https, port: 443, protocol: HTTPS}]"),
        route_doc(
            "HTTPRoute",
            "{name: plain}",
            "{parentRefs: [{name: gw, sectionName: http}], rules: [{backendRefs: [{name: a, port: 8080}]}]}"
        ),
        route_doc(
            "HTTPRoute",
            "{name: tls}",
            "{parentRefs: [{name: gw, sectionName: https}], rules: [{backendRefs: [{name: b, port: 8080}]}]}"
        ),
    ));
    assert_eq!(at(&idx, &get("x.com", "/")), "plain#0");
    let https = Request {
        scheme: Scheme::Https,
        ..get("x.com", "/")
    };
    assert_eq!(at(&idx, &https), "tls#0");
    // HTTP on the HTTPS port and HTTPS on the HTTP port: no listener.
    let wrong_proto = Request {
        port: Some(443),
        ..get("x.com", "/")
    };
    assert_eq!(at(&idx, &wrong_proto), "no_listener");
    let https80 = Request {
        port: Some(80),
        ..https
    };
    assert_eq!(at(&idx, &https80), "no_listener");
    let d = idx.decide(&Request {
        port: Some(8080),
        ..get("x.com", "/")
    });
    assert_eq!((d.outcome, d.status), (Outcome::NoListener, Some(404)));
}

#[test]
fn listener_most_specific_hostname_first() {
    let mut yaml = gw("[{name: any, port: 80, protocol: HTTP},
        {name: short, port: 80, protocol: HTTP, hostname: \"*.example.com\"},
        {name: exact, port: 80, protocol: HTTP, hostname: a.b.example.com},
        {name: long, port: 80, protocol: HTTP, hostname: \"*.b.example.com\"}]");
    for l in ["any", "short", "exact", "long"] {
        yaml.push_str(&route_doc(
            "HTTPRoute",
            &format!("{{name: r-{l}}}"),
            &format!("{{parentRefs: [{{name: gw, sectionName: {l}}}], rules: [{{backendRefs: [{{name: a, port: 8080}}]}}]}}"),
        ));
    }
    let idx = index(&yaml);
    let listener = |host: &'static str| {
        let d = idx.decide(&get(host, "/"));
        (d.listener.map(|l| l.name.clone()), who(&d))
    };
    assert_eq!(
        listener("a.b.example.com"),
        (Some("exact".into()), "r-exact#0".into())
    );
    assert_eq!(
        listener("x.b.example.com"),
        (Some("long".into()), "r-long#0".into())
    );
    assert_eq!(
        listener("x.example.com"),
        (Some("short".into()), "r-short#0".into())
    );
    assert_eq!(
        listener("example.com"),
        (Some("any".into()), "r-any#0".into())
    );
}

fn isolation_yaml() -> String {
    format!(
        "{}{}{}",
        gw("[{name: any, port: 80, protocol: HTTP}, {name: wild, port: 80, protocol: HTTP, hostname: \"*.example.com\"}]"),
        route_doc(
            "HTTPRoute",
            "{name: on-wild}",
            &format!("{{parentRefs: [{{name: gw, sectionName: wild}}], {}}}", rules(&[rule(&prefix("/a"), "a")]))
        ),
        route_doc(
            "HTTPRoute",
            "{name: on-any}",
            &format!("{{parentRefs: [{{name: gw, sectionName: any}}], {}}}", rules(&[rule(&prefix("/b"), "b")]))
        ),
    )
}

#[test]
fn listener_isolation_on_gives_404() {
    let idx = index(&isolation_yaml());
    let d = idx.decide(&get("x.example.com", "/b"));
    assert_eq!((d.outcome, d.status), (Outcome::NoRoute, Some(404)));
    assert_eq!(d.listener.unwrap().name, "wild");
    assert_eq!(at(&idx, &get("x.example.com", "/a")), "on-wild#0");
    assert_eq!(at(&idx, &get("other.org", "/b")), "on-any#0");
}

#[test]
fn listener_isolation_off_falls_through() {
    let idx = index_with(
        &isolation_yaml(),
        CompileOptions {
            listener_isolation: false,
            ..Default::default()
        },
    );
    let d = idx.decide(&get("x.example.com", "/b"));
    assert_eq!(who(&d), "on-any#0");
    assert_eq!(d.listener.unwrap().name, "any");
    // The more specific listener still wins when it has a match.
    assert_eq!(at(&idx, &get("x.example.com", "/a")), "on-wild#0");
}

#[test]
fn listener_conflicted_same_hostname_not_used() {
    let idx = index(&format!(
        "{}{}",
        gw("[{name: c1, port: 80, protocol: HTTP, hostname: a.com},
            {name: c2, port: 80, protocol: HTTP, hostname: a.com},
            {name: any, port: 80, protocol: HTTP}]"),
        hr("r", &rules(&[rule(&prefix("/"), "a")])),
    ));
    let conflicted: Vec<_> = idx
        .listeners
        .iter()
        .filter(|l| l.conflict.is_some())
        .map(|l| (l.name.as_str(), l.conflict.unwrap()))
        .collect();
    assert_eq!(
        conflicted,
        vec![("c1", "HostnameConflict"), ("c2", "HostnameConflict")]
    );
    let d = idx.decide(&get("a.com", "/"));
    assert_eq!(d.listener.unwrap().name, "any");
    assert_eq!(who(&d), "r#0");
}

#[test]
fn listener_conflicted_http_https_same_port_not_used() {
    let idx = index(&format!(
        "{}{}",
        gw("[{name: h, port: 8443, protocol: HTTP}, {name: s, port: 8443, protocol: HTTPS}]"),
        hr("r", &rules(&[rule(&prefix("/"), "a")])),
    ));
    assert!(idx
        .listeners
        .iter()
        .all(|l| l.conflict == Some("ProtocolConflict")));
    let http = Request {
        port: Some(8443),
        ..get("a.com", "/")
    };
    assert_eq!(at(&idx, &http), "no_listener");
    let https = Request {
        scheme: Scheme::Https,
        ..http
    };
    assert_eq!(at(&idx, &https), "no_listener");
}

#[test]
fn listener_https_sni_vs_host_421() {
    let idx = index(&format!(
        "{}{}",
        gw("[{name: any, port: 443, protocol: HTTPS}, {name: second, port: 443, protocol: HTTPS, hostname: second.example.org}]"),
        hr("r", &rules(&[rule(&prefix("/"), "a")])),
    ));
    let tls = |sni: &'static str, host: &'static str| Request {
        scheme: Scheme::Https,
        sni: Some(sni),
        ..get(host, "/")
    };
    // SNI lands on the catch-all, Host has its own listener: 421.
    let d = idx.decide(&tls("example.org", "second.example.org"));
    assert_eq!((d.outcome, d.status), (Outcome::Misdirected, Some(421)));
    // SNI and Host both on the catch-all (they differ): routed.
    assert_eq!(at(&idx, &tls("unknown.example.org", "example.org")), "r#0");
    assert_eq!(
        at(&idx, &tls("second.example.org", "second.example.org")),
        "r#0"
    );
    // SNI on `second`, Host best matched by the catch-all: 421 as well.
    assert_eq!(
        idx.decide(&tls("second.example.org", "other.org")).status,
        Some(421)
    );

    // No listener matches the Host at all: 404, not 421.
    let idx = index(&format!(
        "{}{}",
        gw("[{name: a, port: 443, protocol: HTTPS, hostname: a.example.org}, {name: w, port: 443, protocol: HTTPS, hostname: \"*.example.org\"}]"),
        hr("r", &rules(&[rule(&prefix("/"), "a")])),
    ));
    let d = idx.decide(&tls("a.example.org", "zzz.com"));
    assert_eq!((d.outcome, d.status), (Outcome::NoRoute, Some(404)));
    assert_eq!(d.reason(), Some("HostDoesNotMatchListener"));
    assert_eq!(at(&idx, &tls("a.example.org", "a.example.org")), "r#0");
}

/// The only listener of a port, without a hostname, takes every request on
/// that port: any Host, no Host, and on HTTPS any SNI (no 421 with one
/// listener); a listener with a hostname as the port's only one does not.
#[test]
fn listener_alone_on_port_without_hostname_takes_all() {
    let idx = index(&format!(
        "{}{}",
        gw("[{name: http, port: 80, protocol: HTTP}, {name: tls, port: 443, protocol: HTTPS}, {name: named, port: 8080, protocol: HTTP, hostname: a.example.org}]"),
        hr("r", &rules(&[rule(&prefix("/"), "a")])),
    ));
    assert_eq!(at(&idx, &get("anything.example.com", "/x")), "r#0");
    let no_host = Request {
        host: None,
        ..get("x.com", "/")
    };
    assert_eq!(at(&idx, &no_host), "r#0");
    let tls = Request {
        scheme: Scheme::Https,
        sni: Some("sni.example.org"),
        ..get("host.example.org", "/")
    };
    assert_eq!(at(&idx, &tls), "r#0");
    let named = |host: &'static str| Request {
        port: Some(8080),
        ..get(host, "/")
    };
    assert_eq!(at(&idx, &named("a.example.org")), "r#0");
    let d = idx.decide(&named("b.example.org"));
    assert_eq!((d.outcome, d.status), (Outcome::NoListener, Some(404)));
    let d = idx.decide(&Request {
        host: None,
        ..named("a.example.org")
    });
    assert_eq!(d.outcome, Outcome::NoListener);
}

// ---------------------------------------------------------------------------
// 2. Attachment (§2)
// ---------------------------------------------------------------------------

fn two_listeners() -> String {
    gw("[{name: l1, port: 80, protocol: HTTP, hostname: a.com},
         {name: l2, port: 80, protocol: HTTP, hostname: b.com},
         {name: l8080, port: 8080, protocol: HTTP}]")
}

fn parented(name: &str, parent: &str) -> String {
    route_doc(
        "HTTPRoute",
        &format!("{{name: {name}}}"),
        &format!(
            "{{parentRefs: [{parent}], {}}}",
            rules(&[rule(&prefix("/"), "a")])
        ),
    )
}

#[test]
fn attach_section_name() {
    let idx = index(&format!(
        "{}{}",
        two_listeners(),
        parented("r", "{name: gw, sectionName: l1}")
    ));
    assert_eq!(accepted(&idx, "r"), vec![Some("Accepted")]);
    assert_eq!(at(&idx, &get("a.com", "/")), "r#0");
    assert_eq!(at(&idx, &get("b.com", "/")), "no_route");
}

#[test]
fn attach_port() {
    let idx = index(&format!(
        "{}{}",
        two_listeners(),
        parented("r", "{name: gw, port: 8080}")
    ));
    assert_eq!(accepted(&idx, "r"), vec![Some("Accepted")]);
    let on8080 = Request {
        port: Some(8080),
        ..get("a.com:8080", "/")
    };
    assert_eq!(at(&idx, &on8080), "r#0");
    assert_eq!(at(&idx, &get("a.com", "/")), "no_route");
}

#[test]
fn attach_section_name_and_port() {
    let idx = index(&format!(
        "{}{}{}",
        two_listeners(),
        parented("bad", "{name: gw, sectionName: l1, port: 8080}"),
        parented("good", "{name: gw, sectionName: l8080, port: 8080}"),
    ));
    assert_eq!(accepted(&idx, "bad"), vec![Some("NoMatchingParent")]);
    assert_eq!(accepted(&idx, "good"), vec![Some("Accepted")]);
    assert_eq!(at(&idx, &get("a.com", "/")), "no_route");
}

/// A Gateway in `infra` whose listener has the given `allowedRoutes` (flow map),
/// and route `r` in `default`.
fn allowed_routes(ar: &str, extra: &str) -> RouteIndex {
    let yaml = format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: infra}}\nspec: {{gatewayClassName: c, listeners: [{{name: http, port: 80, protocol: HTTP, allowedRoutes: {ar}}}]}}\n{}{}{extra}",
        services(),
        parented("r", "{name: gw, namespace: infra}"),
    );
    index(&yaml)
}

#[test]
fn attach_allowed_routes_from_same_and_all() {
    let same = allowed_routes("{namespaces: {from: Same}}", "");
    assert_eq!(accepted(&same, "r"), vec![Some("NotAllowedByListeners")]);
    assert_eq!(at(&same, &get("a.com", "/")), "no_route");
    // Default is Same.
    let default = allowed_routes("{}", "");
    assert_eq!(accepted(&default, "r"), vec![Some("NotAllowedByListeners")]);
    let all = allowed_routes("{namespaces: {from: All}}", "");
    assert_eq!(accepted(&all, "r"), vec![Some("Accepted")]);
    assert_eq!(at(&all, &get("a.com", "/")), "r#0");
}

#[test]
fn attach_allowed_routes_selector() {
    let ns = |labels: &str| {
        format!(
            "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: default, labels: {labels}}}\n"
        )
    };
    let labels = "{namespaces: {from: Selector, selector: {matchLabels: {team: web}}}}";
    assert_eq!(
        accepted(&allowed_routes(labels, &ns("{team: web}")), "r"),
        vec![Some("Accepted")]
    );
    assert_eq!(
        accepted(&allowed_routes(labels, &ns("{team: db}")), "r"),
        vec![Some("NotAllowedByListeners")]
    );
    let expr = "{namespaces: {from: Selector, selector: {matchExpressions: [{key: team, operator: In, values: [web, api]}]}}}";
    assert_eq!(
        accepted(&allowed_routes(expr, &ns("{team: api}")), "r"),
        vec![Some("Accepted")]
    );
    assert_eq!(
        accepted(&allowed_routes(expr, &ns("{}")), "r"),
        vec![Some("NotAllowedByListeners")]
    );
    let not_in = "{namespaces: {from: Selector, selector: {matchExpressions: [{key: team, operator: NotIn, values: [web]}]}}}";
    assert_eq!(
        accepted(&allowed_routes(not_in, &ns("{team: web}")), "r"),
        vec![Some("NotAllowedByListeners")]
    );
    // The implicit kubernetes.io/metadata.name label, even without a Namespace object.
    let by_name = "{namespaces: {from: Selector, selector: {matchLabels: {kubernetes.io/metadata.name: default}}}}";
    assert_eq!(
        accepted(&allowed_routes(by_name, ""), "r"),
        vec![Some("Accepted")]
    );
    assert_eq!(
        accepted(&allowed_routes(by_name, &ns("{team: web}")), "r"),
        vec![Some("Accepted")]
    );
    let other_name = "{namespaces: {from: Selector, selector: {matchLabels: {kubernetes.io/metadata.name: prod}}}}";
    assert_eq!(
        accepted(&allowed_routes(other_name, ""), "r"),
        vec![Some("NotAllowedByListeners")]
    );
}

#[test]
fn attach_allowed_kinds() {
    let only_grpc = allowed_routes("{namespaces: {from: All}, kinds: [{kind: GRPCRoute}]}", "");
    assert_eq!(
        accepted(&only_grpc, "r"),
        vec![Some("NotAllowedByListeners")]
    );
    let with_http = allowed_routes(
        "{namespaces: {from: All}, kinds: [{kind: GRPCRoute}, {group: gateway.networking.k8s.io, kind: HTTPRoute}]}",
        "",
    );
    assert_eq!(accepted(&with_http, "r"), vec![Some("Accepted")]);
    let wrong_group = allowed_routes(
        "{namespaces: {from: All}, kinds: [{group: example.com, kind: HTTPRoute}]}",
        "",
    );
    assert_eq!(
        accepted(&wrong_group, "r"),
        vec![Some("NotAllowedByListeners")]
    );
}

#[test]
fn attach_no_matching_listener_hostname() {
    let idx = index(&format!(
        "{}{}{}",
        gw("[{name: l1, port: 80, protocol: HTTP, hostname: a.com}]"),
        hr(
            "miss",
            &format!("hostnames: [b.com], {}", rules(&[rule(&prefix("/"), "a")]))
        ),
        hr(
            "hit",
            &format!(
                "hostnames: [b.com, a.com], {}",
                rules(&[rule(&prefix("/"), "b")])
            )
        ),
    ));
    assert_eq!(
        accepted(&idx, "miss"),
        vec![Some("NoMatchingListenerHostname")]
    );
    assert_eq!(accepted(&idx, "hit"), vec![Some("Accepted")]);
    assert_eq!(at(&idx, &get("a.com", "/")), "hit#0");
}

#[test]
fn attach_nonexistent_parent_has_no_status() {
    let idx = index(&format!("{}{}", gw(HTTP80), parented("r", "{name: nope}")));
    assert_eq!(accepted(&idx, "r"), vec![None]);
    let report = audit(&idx);
    assert!(report.route_parents.iter().all(|p| p.route.name != "r"));
    assert_eq!(findings(&report, "parent_not_found").len(), 1);
    assert_eq!(at(&idx, &get("a.com", "/")), "no_route");
}

fn listener_set_yaml(allowed: &str, ls_ns: &str, route_parent: &str) -> String {
    format!(
        "{}---\napiVersion: gateway.networking.k8s.io/v1\nkind: ListenerSet\nmetadata: {{name: ls, namespace: {ls_ns}}}\nspec: {{parentRef: {{name: gw, namespace: default}}, listeners: [{{name: extra, port: 8080, protocol: HTTP, allowedRoutes: {{namespaces: {{from: All}}}}}}]}}\n{}",
        gw_spec(&format!(
            "listeners: [{{name: http, port: 80, protocol: HTTP}}]{allowed}"
        )),
        parented("r", route_parent),
    )
}

fn on8080() -> Request<'static> {
    Request {
        port: Some(8080),
        ..get("a.com", "/")
    }
}

#[test]
fn attach_listener_set_admission() {
    let to_ls = "{kind: ListenerSet, name: ls}";
    // Default allowedListeners: None.
    let idx = index(&listener_set_yaml("", "default", to_ls));
    assert_eq!(idx.rejected_listener_sets.len(), 1);
    assert_eq!(at(&idx, &on8080()), "no_listener");
    let idx = index(&listener_set_yaml(
        ", allowedListeners: {namespaces: {from: Same}}",
        "default",
        to_ls,
    ));
    assert!(idx.rejected_listener_sets.is_empty());
    assert_eq!(accepted(&idx, "r"), vec![Some("Accepted")]);
    assert_eq!(at(&idx, &on8080()), "r#0");
    // Same does not admit a ListenerSet from another namespace; All does.
    let cross = "{kind: ListenerSet, name: ls, namespace: team}";
    let idx = index(&listener_set_yaml(
        ", allowedListeners: {namespaces: {from: Same}}",
        "team",
        cross,
    ));
    assert_eq!(idx.rejected_listener_sets.len(), 1);
    assert_eq!(at(&idx, &on8080()), "no_listener");
    let idx = index(&listener_set_yaml(
        ", allowedListeners: {namespaces: {from: All}}",
        "team",
        cross,
    ));
    assert_eq!(at(&idx, &on8080()), "r#0");
}

#[test]
fn attach_gateway_parent_does_not_reach_listener_set() {
    let all = ", allowedListeners: {namespaces: {from: All}}";
    let idx = index(&listener_set_yaml(all, "default", "{name: gw}"));
    assert_eq!(accepted(&idx, "r"), vec![Some("Accepted")]);
    assert_eq!(at(&idx, &get("a.com", "/")), "r#0");
    assert_eq!(at(&idx, &on8080()), "no_route");
    // A Gateway sectionName naming the ListenerSet's listener: NoMatchingParent.
    let idx = index(&listener_set_yaml(
        all,
        "default",
        "{name: gw, sectionName: extra}",
    ));
    assert_eq!(accepted(&idx, "r"), vec![Some("NoMatchingParent")]);
}

// ---------------------------------------------------------------------------
// 3. Hostnames (§3)
// ---------------------------------------------------------------------------

fn one_listener_route(listener_host: &str, route_hosts: &str) -> RouteIndex {
    index(&format!(
        "{}{}",
        gw(&format!(
            "[{{name: l, port: 80, protocol: HTTP, hostname: \"{listener_host}\"}}]"
        )),
        hr(
            "r",
            &format!(
                "hostnames: {route_hosts}, {}",
                rules(&[rule(&prefix("/"), "a")])
            )
        ),
    ))
}

#[test]
fn host_intersection_wildcard_listener_precise_route() {
    let idx = one_listener_route("*.specific.com", "[foo.specific.com]");
    assert_eq!(at(&idx, &get("foo.specific.com", "/")), "r#0");
    assert_eq!(at(&idx, &get("bar.specific.com", "/")), "no_route");
}

#[test]
fn host_intersection_precise_listener_wildcard_route() {
    let idx = one_listener_route("very.specific.com", "[\"*.specific.com\"]");
    assert_eq!(at(&idx, &get("very.specific.com", "/")), "r#0");
    assert_eq!(at(&idx, &get("other.specific.com", "/")), "no_listener");
}

#[test]
fn host_intersection_wildcard_by_wildcard() {
    // Listener more specific: the route serves only the listener's wildcard.
    let idx = one_listener_route("*.foo.example.com", "[\"*.example.com\"]");
    assert_eq!(at(&idx, &get("a.foo.example.com", "/")), "r#0");
    assert_eq!(
        effective_hostnames(Some("*.foo.example.com"), &["*.example.com".into()]),
        vec![Some("*.foo.example.com".to_string())]
    );
    // Route more specific: only its names.
    let idx = one_listener_route("*.example.com", "[\"*.foo.example.com\"]");
    assert_eq!(at(&idx, &get("a.foo.example.com", "/")), "r#0");
    assert_eq!(at(&idx, &get("a.bar.example.com", "/")), "no_route");
    // Disjoint wildcards: not accepted.
    let idx = one_listener_route("*.a.com", "[\"*.b.com\"]");
    assert_eq!(
        accepted(&idx, "r"),
        vec![Some("NoMatchingListenerHostname")]
    );
}

#[test]
fn host_port_stripped_and_case_folded() {
    let idx = one_listener_route("*.example.com", "[foo.example.com]");
    assert_eq!(at(&idx, &get("foo.example.com:1234", "/")), "r#0");
    assert_eq!(at(&idx, &get("FOO.Example.COM", "/")), "r#0");
    assert_eq!(at(&idx, &get("Foo.example.com:8080", "/")), "r#0");
}

#[test]
fn host_wildcard_matches_one_or_more_labels() {
    let idx = one_listener_route("*.example.com", "[\"*.example.com\"]");
    assert_eq!(at(&idx, &get("a.example.com", "/")), "r#0");
    assert_eq!(at(&idx, &get("a.b.example.com", "/")), "r#0");
    assert_eq!(at(&idx, &get("example.com", "/")), "no_listener");
    let idx = index(&format!(
        "{}{}",
        gw(HTTP80),
        hr(
            "r",
            &format!(
                "hostnames: [\"*.example.com\"], {}",
                rules(&[rule(&prefix("/"), "a")])
            )
        ),
    ));
    assert_eq!(at(&idx, &get("example.com", "/")), "no_route");
    assert_eq!(at(&idx, &get("x.y.example.com", "/")), "r#0");
}

#[test]
fn host_route_hostname_precedence_across_routes() {
    let mut yaml = gw(HTTP80);
    for (name, hosts, path) in [
        ("r-none", "[]", "/"),
        ("r-short", "[\"*.example.com\"]", "/"),
        ("r-long", "[\"*.b.example.com\"]", "/"),
        ("r-exact", "[a.b.example.com]", "/only"),
    ] {
        yaml.push_str(&hr(
            name,
            &format!("hostnames: {hosts}, {}", rules(&[rule(&prefix(path), "a")])),
        ));
    }
    let idx = index(&yaml);
    assert_eq!(at(&idx, &get("a.b.example.com", "/only/x")), "r-exact#0");
    // The exact route does not match the path: next most specific hostname.
    assert_eq!(at(&idx, &get("a.b.example.com", "/other")), "r-long#0");
    assert_eq!(at(&idx, &get("x.b.example.com", "/only")), "r-long#0");
    assert_eq!(at(&idx, &get("x.example.com", "/only")), "r-short#0");
    assert_eq!(at(&idx, &get("example.org", "/only")), "r-none#0");
}

// ---------------------------------------------------------------------------
// 4. Matching (§4)
// ---------------------------------------------------------------------------

fn single(m: &str) -> RouteIndex {
    index(&format!(
        "{}{}",
        gw(HTTP80),
        hr("r", &rules(&[rule(m, "a")]))
    ))
}

#[test]
fn match_exact_path() {
    let idx = single(&exact("/abc"));
    assert_eq!(at(&idx, &get("h", "/abc")), "r#0");
    for p in ["/abc/", "/Abc", "/abcd", "/ab"] {
        assert_eq!(at(&idx, &get("h", p)), "no_route", "{p}");
    }
}

#[test]
fn match_path_prefix_segments() {
    for configured in ["/abc", "/abc/"] {
        let idx = single(&prefix(configured));
        for p in ["/abc", "/abc/", "/abc/def"] {
            assert_eq!(at(&idx, &get("h", p)), "r#0", "{configured} {p}");
        }
        for p in ["/abcd", "/ab", "/", "/x/abc"] {
            assert_eq!(at(&idx, &get("h", p)), "no_route", "{configured} {p}");
        }
    }
    let root = single(&prefix("/"));
    for p in ["/", "/x", "/x/y/"] {
        assert_eq!(at(&root, &get("h", p)), "r#0", "{p}");
    }
}

#[test]
fn match_regex_path_is_anchored() {
    let idx = single("{path: {type: RegularExpression, value: \"/foo/[0-9]+\"}}");
    assert_eq!(at(&idx, &get("h", "/foo/123")), "r#0");
    assert_eq!(at(&idx, &get("h", "/foo/12x")), "no_route");
    assert_eq!(at(&idx, &get("h", "/x/foo/1")), "no_route");
    assert_eq!(at(&idx, &get("h", "/foo/1/")), "no_route");
}

#[test]
fn match_headers() {
    let idx = single("{headers: [{name: Version, value: two}]}");
    let with = |known: &'static [(&'static str, &'static str)]| Request {
        headers: Headers {
            known,
            others_unknown: false,
        },
        ..get("h", "/")
    };
    assert_eq!(at(&idx, &with(&[("version", "two")])), "r#0");
    assert_eq!(at(&idx, &with(&[("VERSION", "two")])), "r#0");
    assert_eq!(at(&idx, &with(&[("version", "Two")])), "no_route");
    assert_eq!(at(&idx, &with(&[])), "no_route");
    let re = single("{headers: [{type: RegularExpression, name: x, value: \"v[0-9]\"}]}");
    assert_eq!(at(&re, &with(&[("x", "v7")])), "r#0");
    assert_eq!(at(&re, &with(&[("x", "v77")])), "no_route");
    // Duplicate names in one match: only the first entry counts.
    let dup = single("{headers: [{name: x, value: \"1\"}, {name: X, value: \"2\"}]}");
    assert_eq!(at(&dup, &with(&[("x", "1")])), "r#0");
    assert_eq!(at(&dup, &with(&[("x", "2")])), "no_route");
}

#[test]
fn match_query_params() {
    let idx = single("{queryParams: [{name: animal, value: whale}]}");
    let q = |query: &'static str| Request {
        query: Some(query),
        ..get("h", "/")
    };
    assert_eq!(at(&idx, &q("animal=whale")), "r#0");
    assert_eq!(at(&idx, &q("x=1&animal=whale")), "r#0");
    assert_eq!(at(&idx, &q("ANIMAL=whale")), "no_route");
    assert_eq!(at(&idx, &q("animal=Whale")), "no_route");
    // A repeated parameter: the first value counts.
    assert_eq!(at(&idx, &q("animal=whale&animal=dolphin")), "r#0");
    assert_eq!(at(&idx, &q("animal=dolphin&animal=whale")), "no_route");
    assert_eq!(at(&idx, &q("")), "no_route");
}

#[test]
fn match_method_head_not_implied_by_get() {
    let idx = single("{method: GET}");
    assert_eq!(at(&idx, &get("h", "/")), "r#0");
    for m in ["HEAD", "POST", "get"] {
        let r = Request {
            method: Some(m),
            ..get("h", "/")
        };
        assert_eq!(at(&idx, &r), "no_route", "{m}");
    }
}

#[test]
fn match_and_within_or_across() {
    let idx = index(&format!(
        "{}{}",
        gw(HTTP80),
        hr(
            "r",
            "rules: [{matches: [{path: {type: Exact, value: /a}, method: POST, headers: [{name: x, value: \"1\"}]}, {path: {type: Exact, value: /b}}], backendRefs: [{name: a, port: 8080}]}]"
        )
    ));
    let post_x = Request {
        method: Some("POST"),
        headers: Headers {
            known: &[("x", "1")],
            others_unknown: false,
        },
        ..get("h", "/a")
    };
    assert_eq!(at(&idx, &post_x), "r#0");
    assert_eq!(
        at(
            &idx,
            &Request {
                method: Some("GET"),
                ..post_x
            }
        ),
        "no_route"
    );
    assert_eq!(
        at(
            &idx,
            &Request {
                headers: Headers::default(),
                ..post_x
            }
        ),
        "no_route"
    );
    assert_eq!(
        at(
            &idx,
            &Request {
                path: "/x",
                ..post_x
            }
        ),
        "no_route"
    );
    // The second match alone suffices.
    assert_eq!(at(&idx, &get("h", "/b")), "r#0");
}

#[test]
fn match_default_match() {
    // A rule without matches matches everything.
    let idx = index(&format!(
        "{}{}",
        gw(HTTP80),
        hr("r", "rules: [{backendRefs: [{name: a, port: 8080}]}]")
    ));
    let d = idx.decide(&get("h", "/any/path"));
    assert_eq!(who(&d), "r#0");
    assert!(d.hit.unwrap().entry().implicit);
    // A match without a path is PathPrefix /.
    let idx = single("{method: GET}");
    assert_eq!(at(&idx, &get("h", "/deep/path")), "r#0");
}

#[test]
fn match_omitted_rules_answer_500() {
    let idx = index(&format!("{}{}", gw(HTTP80), hr("r", "hostnames: [h]")));
    let d = idx.decide(&get("h", "/whatever"));
    assert_eq!(who(&d), "r#0");
    assert_eq!(
        (d.outcome, d.status, d.reason()),
        (Outcome::Error, Some(500), Some("NoBackends"))
    );
}

// ---------------------------------------------------------------------------
// 5. Precedence (§5): each pair differs in one criterion; the loser comes first.
// ---------------------------------------------------------------------------

/// Route with `loser` as rule 0 and `winner` as rule 1; returns the winner of `req`.
fn prec(loser: &str, winner: &str, req: &Request<'_>) -> String {
    let idx = index(&format!(
        "{}{}",
        gw(HTTP80),
        hr("r", &rules(&[rule(loser, "a"), rule(winner, "b")]))
    ));
    at(&idx, req)
}

#[test]
fn prec_exact_over_prefix() {
    assert_eq!(prec(&prefix("/a"), &exact("/a"), &get("h", "/a")), "r#1");
}

#[test]
fn prec_longer_prefix() {
    assert_eq!(
        prec(&prefix("/a"), &prefix("/a/b"), &get("h", "/a/b/c")),
        "r#1"
    );
}

#[test]
fn prec_prefix_length_over_method() {
    assert_eq!(
        prec(
            "{path: {value: /}, method: GET}",
            &prefix("/a"),
            &get("h", "/a")
        ),
        "r#1"
    );
}

#[test]
fn prec_method() {
    assert_eq!(
        prec(
            &prefix("/a"),
            "{path: {value: /a}, method: GET}",
            &get("h", "/a")
        ),
        "r#1"
    );
}

#[test]
fn prec_method_over_headers() {
    let r = Request {
        headers: Headers {
            known: &[("x", "1"), ("y", "1")],
            others_unknown: false,
        },
        ..get("h", "/")
    };
    assert_eq!(
        prec(
            "{headers: [{name: x, value: \"1\"}, {name: y, value: \"1\"}]}",
            "{method: GET}",
            &r
        ),
        "r#1"
    );
}

#[test]
fn prec_header_count() {
    let r = Request {
        headers: Headers {
            known: &[("x", "1"), ("y", "1")],
            others_unknown: false,
        },
        ..get("h", "/")
    };
    assert_eq!(
        prec(
            "{headers: [{name: x, value: \"1\"}]}",
            "{headers: [{name: x, value: \"1\"}, {name: y, value: \"1\"}]}",
            &r
        ),
        "r#1"
    );
}

#[test]
fn prec_headers_over_query() {
    let r = Request {
        query: Some("q=1&p=1"),
        headers: Headers {
            known: &[("x", "1")],
            others_unknown: false,
        },
        ..get("h", "/")
    };
    assert_eq!(
        prec(
            "{queryParams: [{name: q, value: \"1\"}, {name: p, value: \"1\"}]}",
            "{headers: [{name: x, value: \"1\"}]}",
            &r
        ),
        "r#1"
    );
}

#[test]
fn prec_query_count() {
    let r = Request {
        query: Some("q=1&p=1"),
        ..get("h", "/")
    };
    assert_eq!(
        prec(
            "{queryParams: [{name: q, value: \"1\"}]}",
            "{queryParams: [{name: q, value: \"1\"}, {name: p, value: \"1\"}]}",
            &r
        ),
        "r#1"
    );
}

#[test]
fn prec_rule_order() {
    assert_eq!(prec(&prefix("/a"), &prefix("/a"), &get("h", "/a")), "r#0");
}

fn two_routes(meta1: &str, meta2: &str) -> RouteIndex {
    let body = format!(
        "{{parentRefs: [{{name: gw, namespace: default}}], {}}}",
        rules(&[rule(&prefix("/"), "a")])
    );
    index(&format!(
        "{}{}{}",
        gw_spec("listeners: [{name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}]"),
        route_doc("HTTPRoute", meta1, &body),
        route_doc("HTTPRoute", meta2, &body),
    ))
}

fn winner_key(idx: &RouteIndex) -> String {
    let d = idx.decide(&get("h", "/"));
    d.hit.unwrap().route().key.clone()
}

#[test]
fn prec_oldest_creation_timestamp() {
    let idx = two_routes(
        "{name: a, creationTimestamp: \"2024-06-01T00:00:00Z\"}",
        "{name: b, creationTimestamp: \"2023-06-01T00:00:00Z\"}",
    );
    assert_eq!(winner_key(&idx), "default/b");
    // A route with a timestamp ranks before one without.
    let idx = two_routes(
        "{name: a}",
        "{name: b, creationTimestamp: \"2024-06-01T00:00:00Z\"}",
    );
    assert_eq!(winner_key(&idx), "default/b");
}

#[test]
fn prec_namespace_name() {
    let idx = two_routes("{name: b}", "{name: a}");
    assert_eq!(winner_key(&idx), "default/a");
    let idx = two_routes("{name: a, namespace: zeta}", "{name: z, namespace: alpha}");
    assert_eq!(winner_key(&idx), "alpha/z");
    // Alphabetical order of the "<namespace>/<name>" string: '-' (0x2d) sorts
    // before '/' (0x2f), so "a-b/c" comes before "a/z".
    let idx = two_routes("{name: z, namespace: a}", "{name: c, namespace: a-b}");
    assert_eq!(winner_key(&idx), "a-b/c");
}

// ---------------------------------------------------------------------------
// 6. GRPCRoute (§9)
// ---------------------------------------------------------------------------

fn grpc(path: &'static str) -> Request<'static> {
    Request {
        protocol: Protocol::Grpc,
        method: Some("POST"),
        ..get("h", path)
    }
}

fn grpc_rule(m: &str, backend: &str) -> String {
    rule(m, backend)
}

fn grpc_index(rs: &[String]) -> RouteIndex {
    index(&format!("{}{}", gw(HTTP80), gr("g", &rules(rs))))
}

#[test]
fn grpc_exact_service_and_method() {
    let idx = grpc_index(&[grpc_rule(
        "{method: {service: foo.Echo, method: Hello}}",
        "a",
    )]);
    assert_eq!(at(&idx, &grpc("/foo.Echo/Hello")), "g#0");
    for p in [
        "/foo.Echo/hello",
        "/foo.echo/Hello",
        "/foo.Echo/Other",
        "/foo.Echo",
    ] {
        assert_eq!(at(&idx, &grpc(p)), "no_route", "{p}");
    }
}

#[test]
fn grpc_regex_service_and_method() {
    let idx = grpc_index(&[grpc_rule(
        "{method: {type: RegularExpression, service: \"foo\\\\..*\", method: \"Get.*\"}}",
        "a",
    )]);
    assert_eq!(at(&idx, &grpc("/foo.Echo/GetX")), "g#0");
    assert_eq!(at(&idx, &grpc("/foo.Echo/SetX")), "no_route");
    assert_eq!(at(&idx, &grpc("/fooXEcho/GetX")), "no_route");
}

#[test]
fn grpc_headers() {
    let idx = grpc_index(&[grpc_rule(
        "{method: {service: foo.Echo}, headers: [{name: Env, value: canary}]}",
        "a",
    )]);
    let r = Request {
        headers: Headers {
            known: &[("env", "canary")],
            others_unknown: false,
        },
        ..grpc("/foo.Echo/X")
    };
    assert_eq!(at(&idx, &r), "g#0");
    assert_eq!(at(&idx, &grpc("/foo.Echo/X")), "no_route");
}

#[test]
fn grpc_precedence_service_method_headers() {
    // More service characters beats a method-only match.
    let idx = grpc_index(&[
        grpc_rule("{method: {method: Hello}}", "a"),
        grpc_rule("{method: {service: foo.Echo}}", "b"),
    ]);
    assert_eq!(at(&idx, &grpc("/foo.Echo/Hello")), "g#1");
    // Same service: more method characters wins.
    let idx = grpc_index(&[
        grpc_rule("{method: {service: foo.Echo}}", "a"),
        grpc_rule("{method: {service: foo.Echo, method: Hello}}", "b"),
    ]);
    assert_eq!(at(&idx, &grpc("/foo.Echo/Hello")), "g#1");
    // Same service and method: more headers wins.
    let idx = grpc_index(&[
        grpc_rule("{method: {service: foo.Echo}}", "a"),
        grpc_rule(
            "{method: {service: foo.Echo}, headers: [{name: x, value: \"1\"}]}",
            "b",
        ),
    ]);
    let r = Request {
        headers: Headers {
            known: &[("x", "1")],
            others_unknown: false,
        },
        ..grpc("/foo.Echo/Hello")
    };
    assert_eq!(at(&idx, &r), "g#1");
    // Identical matches: rule order.
    let idx = grpc_index(&[
        grpc_rule("{method: {service: foo.Echo}}", "a"),
        grpc_rule("{method: {service: foo.Echo}}", "b"),
    ]);
    assert_eq!(at(&idx, &grpc("/foo.Echo/Hello")), "g#0");
}

#[test]
fn grpc_no_match_is_unimplemented() {
    let idx = grpc_index(&[grpc_rule("{method: {service: foo.Echo}}", "a")]);
    let req = grpc("/bar.Echo/Hello");
    let d = idx.decide(&req);
    assert_eq!((d.outcome, d.status), (Outcome::NoRoute, Some(404)));
    let report = DecisionReport::new(&idx, &req, &d);
    assert_eq!(report.grpc_status, Some("UNIMPLEMENTED"));
}

#[test]
fn grpc_falls_back_to_httproutes_without_grpcroute() {
    let idx = index(&format!(
        "{}{}",
        gw(HTTP80),
        hr("web", &rules(&[rule(&prefix("/"), "a")]))
    ));
    assert_eq!(at(&idx, &grpc("/foo.Echo/Hello")), "web#0");
    // With a GRPCRoute on the listener, gRPC requests use GRPCRoutes only.
    let idx = index(&format!(
        "{}{}{}",
        gw(HTTP80),
        hr("web", &rules(&[rule(&prefix("/"), "a")])),
        gr(
            "g",
            &rules(&[grpc_rule("{method: {service: foo.Echo}}", "b")])
        ),
    ));
    assert_eq!(at(&idx, &grpc("/foo.Echo/Hello")), "g#0");
    assert_eq!(at(&idx, &grpc("/bar.Echo/Hello")), "no_route");
    assert_eq!(at(&idx, &get("h", "/foo.Echo/Hello")), "web#0");
    // The fallback is per host: a GRPCRoute for another host does not take
    // this host's gRPC requests away from its HTTPRoute.
    let idx = index(&format!(
        "{}{}{}",
        gw(HTTP80),
        hr("web", &rules(&[rule(&prefix("/"), "a")])),
        gr(
            "g",
            &format!(
                "hostnames: [grpc.example.com], {}",
                rules(&[grpc_rule("{method: {service: foo.Echo}}", "b")])
            )
        ),
    ));
    assert_eq!(at(&idx, &grpc("/foo.Echo/Hello")), "web#0");
    let on_grpc_host = Request {
        host: Some("grpc.example.com"),
        ..grpc("/bar.Echo/Hello")
    };
    assert_eq!(at(&idx, &on_grpc_host), "no_route");
}

// ---------------------------------------------------------------------------
// 7. Filters (§6)
// ---------------------------------------------------------------------------

fn redirect_index(listeners: &str, redirect: &str, m: &str) -> RouteIndex {
    index(&format!(
        "{}{}",
        gw(listeners),
        hr(
            "r",
            &format!("rules: [{{matches: [{m}], filters: [{{type: RequestRedirect, requestRedirect: {redirect}}}]}}]")
        )
    ))
}

#[test]
fn filter_redirect_defaults_and_host() {
    let idx = redirect_index(HTTP80, "{hostname: example.org}", &prefix("/"));
    let req = get("h:80", "/p");
    let d = idx.decide(&req);
    assert_eq!((d.outcome, d.status), (Outcome::Redirect, Some(302)));
    assert!(allowed(&d).is_empty());
    let t = d.redirect(&req).unwrap();
    assert_eq!(
        (t.scheme.as_str(), t.host.as_str(), t.port, t.path.as_str()),
        ("http", "example.org", None, "/p")
    );
    let idx = redirect_index(HTTP80, "{statusCode: 301}", &prefix("/"));
    let d = idx.decide(&req);
    assert_eq!(d.status, Some(301));
    let t = d.redirect(&req).unwrap();
    assert_eq!(
        t.host, "h",
        "host defaults to the request Host without port"
    );
}

#[test]
fn filter_redirect_port_rules() {
    let l8080 = "[{name: http, port: 8080, protocol: HTTP}]";
    let req = Request {
        port: Some(8080),
        ..get("h:8080", "/p")
    };
    let port_of = |redirect: &str| {
        let idx = redirect_index(l8080, redirect, &prefix("/"));
        let d = idx.decide(&req);
        let t = d.redirect(&req).unwrap();
        (t.scheme, t.port)
    };
    // No scheme, no port: the listener port (kept because it is not the default).
    assert_eq!(port_of("{hostname: x}"), ("http".into(), Some(8080)));
    // Scheme set: the scheme's well-known port, left out of Location.
    assert_eq!(port_of("{scheme: https}"), ("https".into(), None));
    assert_eq!(port_of("{scheme: http}"), ("http".into(), None));
    // Explicit port wins.
    assert_eq!(
        port_of("{scheme: https, port: 8443}"),
        ("https".into(), Some(8443))
    );
    assert_eq!(port_of("{port: 80}"), ("http".into(), None));
    assert_eq!(port_of("{port: 443}"), ("http".into(), Some(443)));
}

#[test]
fn filter_redirect_paths() {
    let req = get("h", "/foo/bar");
    let idx = redirect_index(
        HTTP80,
        "{path: {type: ReplaceFullPath, replaceFullPath: /new}}",
        &prefix("/foo"),
    );
    assert_eq!(idx.decide(&req).redirect(&req).unwrap().path, "/new");
    for (replacement, expected) in [("/xyz", "/xyz/bar"), ("/xyz/", "/xyz/bar"), ("/", "/bar")] {
        let idx = redirect_index(
            HTTP80,
            &format!(
                "{{path: {{type: ReplacePrefixMatch, replacePrefixMatch: \"{replacement}\"}}}}"
            ),
            &prefix("/foo/"),
        );
        assert_eq!(
            idx.decide(&req).redirect(&req).unwrap().path,
            expected,
            "{replacement}"
        );
    }
    let idx = redirect_index(
        HTTP80,
        "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /xyz}}",
        &prefix("/foo"),
    );
    let exact_req = get("h", "/foo");
    assert_eq!(
        idx.decide(&exact_req).redirect(&exact_req).unwrap().path,
        "/xyz"
    );
}

#[test]
fn filter_url_rewrite_recorded() {
    let idx = index(&format!(
        "{}{}",
        gw(HTTP80),
        hr(
            "r",
            "rules: [{matches: [{path: {value: /foo}}], filters: [{type: URLRewrite, urlRewrite: {hostname: new.host, path: {type: ReplacePrefixMatch, replacePrefixMatch: /bar}}}], backendRefs: [{name: a, port: 8080}]}]"
        )
    ));
    let req = get("h", "/foo/x");
    let d = idx.decide(&req);
    assert_eq!(d.outcome, Outcome::Forward);
    assert_eq!(allowed(&d), vec!["default/a"]);
    let rw = d.rewrite(&req).unwrap();
    assert_eq!(
        (rw.host.as_deref(), rw.path.as_deref()),
        (Some("new.host"), Some("/bar/x"))
    );
    assert!(d.redirect(&req).is_none());
}

#[test]
fn filter_mirror_never_primary() {
    let idx = index(&format!(
        "{}{}",
        gw(HTTP80),
        hr(
            "r",
            "rules: [{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 8080}, percent: 40}}], backendRefs: [{name: a, port: 8080}]}]"
        )
    ));
    let req = get("h", "/");
    let d = idx.decide(&req);
    assert_eq!(d.outcome, Outcome::Forward);
    assert_eq!(allowed(&d), vec!["default/a"]);
    let report = DecisionReport::new(&idx, &req, &d);
    assert_eq!(report.mirrors.len(), 1);
    assert_eq!(report.mirrors[0].name, "m");
    assert_eq!(report.mirrors[0].percent, Some(40.0));
    assert!(report.backends.iter().all(|b| b.name == "a"));
}

#[test]
fn filter_backend_level_redirect() {
    let idx = index(&format!(
        "{}{}",
        gw(HTTP80),
        hr(
            "r",
            "rules: [{backendRefs: [{name: a, port: 8080, filters: [{type: RequestRedirect, requestRedirect: {hostname: elsewhere, statusCode: 301}}]}]}]"
        )
    ));
    let req = get("h", "/p");
    let d = idx.decide(&req);
    assert_eq!((d.outcome, d.status), (Outcome::Redirect, Some(301)));
    assert_eq!(d.redirect(&req).unwrap().host, "elsewhere");
    assert!(allowed(&d).is_empty());
}

fn route_reason(body: &str) -> Vec<Option<&'static str>> {
    let idx = index(&format!("{}{}", gw(HTTP80), hr("r", body)));
    assert_eq!(
        at(&idx, &get("h", "/")),
        "no_route",
        "an unaccepted route serves nothing"
    );
    accepted(&idx, "r")
}

#[test]
fn filter_incompatible_filters() {
    assert_eq!(
        route_reason("rules: [{filters: [{type: RequestRedirect, requestRedirect: {hostname: x}}, {type: URLRewrite, urlRewrite: {hostname: y}}]}]"),
        vec![Some("IncompatibleFilters")]
    );
    assert_eq!(
        route_reason("rules: [{filters: [{type: RequestRedirect, requestRedirect: {hostname: x}}], backendRefs: [{name: a, port: 8080}]}]"),
        vec![Some("IncompatibleFilters")]
    );
}

#[test]
fn filter_unsupported_values() {
    for body in [
        "rules: [{filters: [{type: Teleport}], backendRefs: [{name: a, port: 8080}]}]",
        "rules: [{matches: [{path: {type: Glob, value: /x}}], backendRefs: [{name: a, port: 8080}]}]",
        "rules: [{matches: [{path: {type: RegularExpression, value: \"/(unclosed\"}}], backendRefs: [{name: a, port: 8080}]}]",
        "rules: [{matches: [{headers: [{type: RegularExpression, name: x, value: \"[\"}]}], backendRefs: [{name: a, port: 8080}]}]",
        "rules: [{matches: [{method: FETCH}], backendRefs: [{name: a, port: 8080}]}]",
    ] {
        assert_eq!(route_reason(body), vec![Some("UnsupportedValue")], "{body}");
    }
}

// ---------------------------------------------------------------------------
// 8. BackendRefs (§7, §8)
// ---------------------------------------------------------------------------

fn backends_index(backend_refs: &str, extra: &str) -> RouteIndex {
    index(&format!(
        "{}{}{extra}",
        gw(HTTP80),
        hr("r", &format!("rules: [{{backendRefs: {backend_refs}}}]"))
    ))
}

#[test]
fn backend_weights_and_shares() {
    let idx = backends_index(
        "[{name: a, port: 8080, weight: 0}, {name: b, port: 8080, weight: 1}, {name: c, port: 8080, weight: 3}]",
        "",
    );
    let req = get("h", "/");
    let d = idx.decide(&req);
    assert_eq!(d.outcome, Outcome::Forward);
    assert_eq!(allowed(&d), vec!["default/b", "default/c"]);
    let report = DecisionReport::new(&idx, &req, &d);
    let shares: Vec<f64> = report.backends.iter().map(|b| b.share).collect();
    assert_eq!(shares, vec![0.0, 0.25, 0.75]);
    // Default weight 1.
    let idx = backends_index("[{name: a, port: 8080}, {name: b, port: 8080}]", "");
    let d = idx.decide(&req);
    assert_eq!(allowed(&d), vec!["default/a", "default/b"]);
    assert!(d.hit.unwrap().rule().backends.iter().all(|b| b.weight == 1));
}

#[test]
fn backend_invalid_refs() {
    let reason = |refs: &str, extra: &str| invalid_reason(&backends_index(refs, extra), "h", "/");
    assert_eq!(
        reason("[{name: nope, port: 8080}]", "").as_deref(),
        Some("BackendNotFound")
    );
    assert_eq!(
        reason("[{name: a}]", "").as_deref(),
        Some("BackendNotFound")
    );
    assert_eq!(
        reason("[{name: a, port: 9999}]", "").as_deref(),
        Some("BackendNotFound")
    );
    // Cross-namespace without a grant: RefNotPermitted, existing or not.
    assert_eq!(
        reason("[{name: x, namespace: other, port: 8080}]", "").as_deref(),
        Some("RefNotPermitted")
    );
    assert_eq!(
        reason("[{name: ghost, namespace: other, port: 8080}]", "").as_deref(),
        Some("RefNotPermitted")
    );
    assert_eq!(
        reason(
            "[{group: unknownkind.example.com, kind: NonExistent, name: a, port: 8080}]",
            ""
        )
        .as_deref(),
        Some("InvalidKind")
    );
    assert_eq!(
        reason(
            "[{kind: ServiceImport, group: multicluster.x-k8s.io, name: a, port: 8080}]",
            ""
        )
        .as_deref(),
        Some("InvalidKind")
    );
    // ExternalName: invalid by default, allowed by option.
    let ext = svc(
        "default",
        "ext",
        ", type: ExternalName, externalName: example.org",
    );
    assert_eq!(
        reason("[{name: ext, port: 8080}]", &ext).as_deref(),
        Some("InvalidKind")
    );
    let idx = index_with(
        &format!(
            "{}{}{ext}",
            gw(HTTP80),
            hr("r", "rules: [{backendRefs: [{name: ext, port: 8080}]}]")
        ),
        CompileOptions {
            allow_external_name: true,
            ..Default::default()
        },
    );
    assert_eq!(idx.decide(&get("h", "/")).outcome, Outcome::Forward);
}

fn grant(ns: &str, from: &str, to: &str) -> String {
    format!(
        "---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {{name: g, namespace: {ns}}}\nspec: {{from: [{from}], to: [{to}]}}\n"
    )
}

const FROM_OK: &str = "{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}";
const TO_OK: &str = "{group: \"\", kind: Service, name: x}";

#[test]
fn backend_reference_grant_exactness() {
    let cross = "[{name: x, namespace: other, port: 8080}]";
    let check = |g: String| invalid_reason(&backends_index(cross, &g), "h", "/");
    assert_eq!(check(grant("other", FROM_OK, TO_OK)), None);
    // `to.name` is optional.
    assert_eq!(
        check(grant("other", FROM_OK, "{group: \"\", kind: Service}")),
        None
    );
    let wrong = [
        grant("default", FROM_OK, TO_OK),
        grant(
            "other",
            "{group: example.com, kind: HTTPRoute, namespace: default}",
            TO_OK,
        ),
        grant(
            "other",
            "{group: gateway.networking.k8s.io, kind: Gateway, namespace: default}",
            TO_OK,
        ),
        grant(
            "other",
            "{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: elsewhere}",
            TO_OK,
        ),
        grant("other", FROM_OK, "{group: apps, kind: Service, name: x}"),
        grant("other", FROM_OK, "{group: \"\", kind: Secret, name: x}"),
        grant("other", FROM_OK, "{group: \"\", kind: Service, name: y}"),
    ];
    for (i, g) in wrong.into_iter().enumerate() {
        assert_eq!(check(g).as_deref(), Some("RefNotPermitted"), "variant {i}");
    }
    // A grant for a missing Service: BackendNotFound once permitted.
    let idx = backends_index(
        "[{name: ghost, namespace: other, port: 8080}]",
        &grant("other", FROM_OK, "{group: \"\", kind: Service}"),
    );
    assert_eq!(
        invalid_reason(&idx, "h", "/").as_deref(),
        Some("BackendNotFound")
    );
}

#[test]
fn backend_partial_invalid_forwards_with_error_share() {
    let idx = backends_index(
        "[{name: a, port: 8080, weight: 3}, {name: nope, port: 8080, weight: 1}]",
        "",
    );
    let req = get("h", "/");
    let d = idx.decide(&req);
    assert_eq!(d.outcome, Outcome::Forward);
    assert_eq!(allowed(&d), vec!["default/a"]);
    assert_eq!(
        d.hit.unwrap().rule().action,
        RuleAction::Forward { error_share: 0.25 }
    );
    assert_eq!(DecisionReport::new(&idx, &req, &d).error_share, 0.25);
}

#[test]
fn backend_rules_that_always_error() {
    let error = |refs: &str| {
        let idx = backends_index(refs, "");
        let d = idx.decide(&get("h", "/"));
        (d.outcome, d.status, d.reason())
    };
    assert_eq!(
        error("[{name: nope, port: 8080}, {name: x, namespace: other, port: 8080}]"),
        (Outcome::Error, Some(500), Some("AllBackendsInvalid"))
    );
    assert_eq!(error("[]"), (Outcome::Error, Some(500), Some("NoBackends")));
    assert_eq!(
        error("[{name: a, port: 8080, weight: 0}, {name: b, port: 8080, weight: 0}]"),
        (Outcome::Error, Some(500), Some("AllWeightsZero"))
    );
    // An erroring rule still wins: it does not fall through to a lower rule.
    let idx = index(&format!(
        "{}{}",
        gw(HTTP80),
        hr(
            "r",
            &format!(
                "rules: [{{matches: [{}]}}, {}]",
                exact("/a"),
                rule(&prefix("/"), "a")
            )
        )
    ));
    assert_eq!(idx.decide(&get("h", "/a")).outcome, Outcome::Error);
    assert_eq!(idx.decide(&get("h", "/b")).outcome, Outcome::Forward);
}

#[test]
fn backend_resolved_refs_condition_per_route() {
    let idx = index(&format!(
        "{}{}{}",
        gw(HTTP80),
        hr("bad", &rules(&[rule(&exact("/bad"), "nope")])),
        hr("good", &rules(&[rule(&exact("/good"), "a")])),
    ));
    let report = audit(&idx);
    let cond = |route: &str| {
        let p = report
            .route_parents
            .iter()
            .find(|p| p.route.name == route)
            .unwrap();
        let get = |t: &str| {
            let c = p.conditions.iter().find(|c| c.condition_type == t).unwrap();
            (c.status, c.reason)
        };
        (get("Accepted"), get("ResolvedRefs"))
    };
    assert_eq!(
        cond("bad"),
        (("True", "Accepted"), ("False", "BackendNotFound"))
    );
    assert_eq!(
        cond("good"),
        (("True", "Accepted"), ("True", "ResolvedRefs"))
    );
}

// ---------------------------------------------------------------------------
// 9. Unknown attributes (log-derived requests)
// ---------------------------------------------------------------------------

fn unknown_index() -> RouteIndex {
    index(&format!(
        "{}{}",
        gw(HTTP80),
        hr(
            "r",
            &rules(&[
                rule("{queryParams: [{name: q, value: \"1\"}]}", "c"),
                rule(&prefix("/"), "d"),
                rule("{method: POST}", "a"),
                rule("{headers: [{name: x, value: \"1\"}]}", "b"),
            ])
        )
    ))
}

fn log_request() -> Request<'static> {
    Request {
        method: None,
        query: None,
        headers: Headers {
            known: &[],
            others_unknown: true,
        },
        ..get("h", "/")
    }
}

#[test]
fn unknown_alternatives_and_winner() {
    let idx = unknown_index();
    let d = idx.decide(&log_request());
    assert_eq!(who(&d), "r#1", "the first certain match wins");
    let alts: Vec<usize> = d.alternatives.iter().map(|a| a.rule().index).collect();
    assert_eq!(alts, vec![2, 3, 0], "method, then headers, then query");
    assert!(d.is_ambiguous());
    assert!(d.unknowns.method && d.unknowns.headers && d.unknowns.query);
    assert_eq!(d.unknowns.reason(), "method,headers,query");
    assert_eq!(
        allowed(&d),
        vec!["default/a", "default/b", "default/c", "default/d"]
    );
}

#[test]
fn unknown_only_missing_attributes_are_named() {
    let idx = unknown_index();
    // Method and query known: only the header rule stays ambiguous.
    let d = idx.decide(&Request {
        method: Some("GET"),
        query: Some(""),
        ..log_request()
    });
    assert_eq!(who(&d), "r#1");
    let alts: Vec<usize> = d.alternatives.iter().map(|a| a.rule().index).collect();
    assert_eq!(alts, vec![3]);
    assert_eq!(d.unknowns.reason(), "headers");
    assert_eq!(allowed(&d), vec!["default/b", "default/d"]);
    // A known header that decides the match: not ambiguous.
    let d = idx.decide(&Request {
        method: Some("GET"),
        query: Some(""),
        headers: Headers {
            known: &[("x", "1")],
            others_unknown: true,
        },
        ..log_request()
    });
    assert_eq!(who(&d), "r#3");
    assert!(!d.is_ambiguous());
}

#[test]
fn unknown_known_headers_are_not_reported_unknown() {
    // Match: method POST + header x=1. The log carries x=1 but not the method:
    // the decision depends on the method only.
    let idx = index(&format!(
        "{}{}",
        gw(HTTP80),
        hr(
            "r",
            &rules(&[
                rule("{method: POST, headers: [{name: x, value: \"1\"}]}", "a"),
                rule(&prefix("/"), "b"),
            ])
        )
    ));
    let d = idx.decide(&Request {
        query: Some(""),
        headers: Headers {
            known: &[("x", "1")],
            others_unknown: true,
        },
        ..log_request()
    });
    assert_eq!(who(&d), "r#1");
    assert_eq!(d.alternatives.len(), 1);
    assert_eq!(d.unknowns.reason(), "method");
}

// ---------------------------------------------------------------------------
// 10. Audit
// ---------------------------------------------------------------------------

#[test]
fn audit_shadowed_matches() {
    let idx = index(&format!(
        "{}{}{}",
        gw(HTTP80),
        route_doc(
            "HTTPRoute",
            "{name: old, creationTimestamp: \"2020-01-01T00:00:00Z\"}",
            &format!(
                "{{parentRefs: [{{name: gw}}], {}}}",
                rules(&[rule(&prefix("/a"), "a")])
            )
        ),
        route_doc(
            "HTTPRoute",
            "{name: new, creationTimestamp: \"2021-01-01T00:00:00Z\"}",
            &format!(
                "{{parentRefs: [{{name: gw}}], {}}}",
                rules(&[
                    rule(&prefix("/a"), "b"),
                    rule(&prefix("/a/b"), "c"),
                    rule("{path: {value: /a}, method: GET}", "d")
                ])
            )
        ),
    ));
    let report = audit(&idx);
    let shadowed: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.code == "shadowed_match")
        .map(|f| {
            (
                f.object.name.as_str(),
                f.message.split(" (").next().unwrap(),
            )
        })
        .collect();
    assert_eq!(shadowed, vec![("new", "rule 0 match 0")]);
}

#[test]
fn audit_unused_reference_grant() {
    let idx = backends_index("[{name: a, port: 8080}]", &grant("other", FROM_OK, TO_OK));
    assert_eq!(findings(&audit(&idx), "reference_grant_unused").len(), 1);
    let idx = backends_index(
        "[{name: x, namespace: other, port: 8080}]",
        &grant("other", FROM_OK, TO_OK),
    );
    assert!(findings(&audit(&idx), "reference_grant_unused").is_empty());
}

#[test]
fn audit_every_permitting_grant_is_used() {
    // Two grants both permit the reference: neither is unused.
    let g2 =
        grant("other", FROM_OK, "{group: \"\", kind: Service}").replace("name: g,", "name: g2,");
    let idx = backends_index(
        "[{name: x, namespace: other, port: 8080}]",
        &format!("{}{g2}", grant("other", FROM_OK, TO_OK)),
    );
    assert_eq!(
        findings(&audit(&idx), "reference_grant_unused"),
        Vec::<&str>::new()
    );
}

#[test]
fn audit_listener_conflict() {
    let idx = index(&gw(
        "[{name: a, port: 80, protocol: HTTP}, {name: b, port: 80, protocol: HTTP}]",
    ));
    assert_eq!(findings(&audit(&idx), "listener_conflict").len(), 2);
    let idx = index(&gw(
        "[{name: a, port: 80, protocol: HTTP}, {name: b, port: 81, protocol: HTTP}]",
    ));
    assert!(findings(&audit(&idx), "listener_conflict").is_empty());
}

#[test]
fn audit_rule_always_errors() {
    let idx = index(&format!(
        "{}{}",
        gw(HTTP80),
        hr(
            "r",
            &format!(
                "rules: [{{matches: [{}]}}, {}]",
                exact("/x"),
                rule(&prefix("/"), "a")
            )
        )
    ));
    let report = audit(&idx);
    let msgs = findings(&report, "rule_always_errors");
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].starts_with("rule 0 "), "{}", msgs[0]);
}

// ---------------------------------------------------------------------------
// Loader edge cases that affect decisions
// ---------------------------------------------------------------------------

#[test]
fn duplicate_route_objects_do_not_leak_matches() {
    // The same HTTPRoute twice (e.g. in two files): the first copy wins and the
    // second copy's matches must not be attributed to another route.
    let idx = index(&format!(
        "{}{}{}{}",
        gw(HTTP80),
        hr("a", &rules(&[rule(&exact("/a"), "a")])),
        hr("a", &rules(&[rule(&exact("/dup"), "b")])),
        hr("b", &rules(&[rule(&exact("/b"), "c")])),
    ));
    assert_eq!(at(&idx, &get("h", "/a")), "a#0");
    assert_eq!(at(&idx, &get("h", "/b")), "b#0");
    assert_eq!(at(&idx, &get("h", "/dup")), "no_route");
}
