//! Synthetic Gateway API configurations and matching requests for benchmarks,
//! tests and demos.
//!
//! [`generate`] builds a deterministic (seeded) [`ObjectSet`] that looks like a
//! large multi-tenant cluster: one Gateway `infra/gw` with an HTTP listener on
//! port 80 (any host) and an HTTPS listener on 443 (`*.example.com`), many
//! HTTPRoutes spread over many hostnames (exact names and some wildcards), a
//! realistic mix of path/header/method/query matches, weighted backendRefs to
//! Services (some cross-namespace, permitted by ReferenceGrants), Namespaces and
//! creation timestamps. [`requests`] derives requests from such a configuration:
//! most are built to satisfy a randomly chosen route match, the rest miss.
//!
//! The generator only depends on its [`SynthSpec`]: the same spec gives the same
//! objects and, with the same seed, the same requests.

use std::collections::BTreeMap;

use crate::gateway::model::{
    AllowedRoutes, BackendObjectRef, Gateway, GatewayClass, GatewayClassSpec, GatewaySpec,
    HttpBackendRef, HttpPathMatch, HttpRoute, HttpRouteMatch, HttpRouteRule, HttpRouteSpec,
    Listener, Namespace, ObjectMeta, ObjectSet, ParentRef, ReferenceGrant, ReferenceGrantFrom,
    ReferenceGrantSpec, ReferenceGrantTo, RouteNamespaces, Service, ServicePort, ServiceSpec,
    ValueMatch, GATEWAY_GROUP,
};
use crate::gateway::request::RequestSpec;

/// The key of the generated Gateway.
pub const GATEWAY_KEY: &str = "infra/gw";

/// The port every generated Service (and backendRef) uses.
pub const SERVICE_PORT: u16 = 8080;

/// What to generate. [`Default`] is the benchmark size: 10,000 routes, 50,000
/// matches, 2,000 hostnames.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    /// PRNG seed; the output is a pure function of the spec.
    pub seed: u64,
    /// Number of HTTPRoutes.
    pub routes: usize,
    /// Number of distinct route hostnames (about 10% wildcards).
    pub hostnames: usize,
    /// Total number of `HTTPRouteMatch`es over all routes (at least one per route).
    pub matches: usize,
    /// Number of tenant namespaces the routes live in.
    pub namespaces: usize,
    /// Services per tenant namespace that backendRefs pick from.
    pub services_per_namespace: usize,
}

impl Default for SynthSpec {
    fn default() -> Self {
        SynthSpec {
            seed: 0x5eed,
            routes: 10_000,
            hostnames: 2_000,
            matches: 50_000,
            namespaces: 50,
            services_per_namespace: 40,
        }
    }
}

impl SynthSpec {
    /// A small configuration (100 routes) for tests and demos.
    pub fn small() -> Self {
        SynthSpec {
            routes: 100,
            hostnames: 30,
            matches: 500,
            namespaces: 5,
            services_per_namespace: 8,
            ..SynthSpec::default()
        }
    }
}

/// A generated configuration.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    /// The spec it was generated from.
    pub spec: SynthSpec,
    /// The objects, ready for [`crate::gateway::RouteIndex::compile`].
    pub objects: ObjectSet,
}

/// Shared services that cross-namespace backendRefs point at (per shared namespace).
const SHARED_NAMESPACES: usize = 3;
const SHARED_SERVICES: usize = 10;

const SEGMENTS: &[&str] = &[
    "api", "v1", "v2", "v3", "users", "orders", "items", "cart", "search", "static", "admin",
    "auth", "login", "health", "metrics", "images", "docs", "blog", "products", "checkout",
    "account", "billing", "reports", "events", "feed", "media", "assets", "graphql", "upload",
    "settings",
];
const HEADER_NAMES: &[&str] = &[
    "x-version",
    "x-canary",
    "x-tenant",
    "x-region",
    "x-user-group",
];
const HEADER_VALUES: &[&str] = &["1", "2", "true", "beta", "eu", "us", "gold", "internal"];
const QUERY_NAMES: &[&str] = &["debug", "variant", "lang", "preview"];
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH"];
const WEIGHTS: &[u32] = &[1, 10, 20, 30, 50, 80, 90, 100];

/// SplitMix64: tiny, fast, good enough for synthetic data (not cryptographic).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x2545_f491_4f6c_dd1d)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn meta(namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: name.to_string(),
        namespace: namespace.to_string(),
        ..ObjectMeta::default()
    }
}

fn timestamp(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn tenant_ns(i: usize) -> String {
    format!("team-{i}")
}

fn shared_ns(i: usize) -> String {
    format!("shared-{i}")
}

/// The `i`-th route hostname: index 0 is `*.example.com`; about 10% are
/// wildcards one level below `example.com`, about 15% live under `example.org`
/// (only the HTTP listener accepts them), the rest are exact `example.com` names
/// of varying depth.
fn hostname(i: usize) -> String {
    if i == 0 {
        return "*.example.com".to_string();
    }
    match i % 20 {
        7 | 17 => format!("*.t{i}.example.com"),
        3 | 11 | 19 => format!("app{i}.example.org"),
        5 | 13 => format!("api{i}.prod.example.com"),
        9 => format!("www{i}.shop.eu.example.com"),
        _ => format!("svc{i}.example.com"),
    }
}

fn path_of(rng: &mut Rng, segments: usize) -> String {
    let mut p = String::new();
    for _ in 0..segments {
        p.push('/');
        let seg = SEGMENTS[rng.below(SEGMENTS.len())];
        p.push_str(seg);
    }
    p
}

fn value_match(rng: &mut Rng, names: &[&str], regex_share: f64) -> ValueMatch {
    let name = rng.pick(names).to_string();
    if rng.chance(regex_share) {
        ValueMatch {
            match_type: Some("RegularExpression".into()),
            name,
            value: "v[0-9]+".into(),
        }
    } else {
        ValueMatch {
            match_type: None,
            name,
            value: rng.pick(HEADER_VALUES).to_string(),
        }
    }
}

/// One match: PathPrefix of 1-4 segments (~60%), Exact (~20%), a regex (~1%)
/// or no path (`PathPrefix /`); headers on ~15%, a method on ~10%, query
/// parameters on ~5%.
fn gen_match(rng: &mut Rng, catch_all_allowed: bool) -> HttpRouteMatch {
    let roll = rng.below(100);
    let path = if roll < 60 {
        let n = 1 + rng.below(4);
        Some(HttpPathMatch {
            match_type: Some("PathPrefix".into()),
            value: Some(path_of(rng, n)),
        })
    } else if roll < 80 {
        let n = 2 + rng.below(3);
        Some(HttpPathMatch {
            match_type: Some("Exact".into()),
            value: Some(path_of(rng, n)),
        })
    } else if roll < 81 {
        let base = path_of(rng, 1);
        let tail = rng.pick(SEGMENTS);
        Some(HttpPathMatch {
            match_type: Some("RegularExpression".into()),
            value: Some(format!("{base}/[0-9]+/{tail}")),
        })
    } else if catch_all_allowed {
        None
    } else {
        Some(HttpPathMatch {
            match_type: Some("PathPrefix".into()),
            value: Some(path_of(rng, 2)),
        })
    };
    let mut m = HttpRouteMatch {
        path,
        ..HttpRouteMatch::default()
    };
    if rng.chance(0.15) {
        m.headers.push(value_match(rng, HEADER_NAMES, 0.1));
        if rng.chance(0.2) {
            m.headers.push(value_match(rng, HEADER_NAMES, 0.0));
        }
    }
    if rng.chance(0.10) {
        m.method = Some(rng.pick(METHODS).to_string());
    }
    if rng.chance(0.05) {
        m.query_params.push(value_match(rng, QUERY_NAMES, 0.0));
    }
    m
}

fn gen_backends(rng: &mut Rng, spec: &SynthSpec) -> Vec<HttpBackendRef> {
    let n = 1 + rng.below(3);
    (0..n)
        .map(|_| {
            let cross = rng.chance(0.05);
            let target = if cross {
                BackendObjectRef {
                    name: format!("common-{}", rng.below(SHARED_SERVICES)),
                    namespace: Some(shared_ns(rng.below(SHARED_NAMESPACES))),
                    port: Some(SERVICE_PORT),
                    ..BackendObjectRef::default()
                }
            } else {
                BackendObjectRef {
                    name: format!("svc-{}", rng.below(spec.services_per_namespace.max(1))),
                    namespace: None,
                    port: Some(SERVICE_PORT),
                    ..BackendObjectRef::default()
                }
            };
            HttpBackendRef {
                target,
                weight: if n == 1 && rng.chance(0.8) {
                    None
                } else {
                    Some(*rng.pick(WEIGHTS))
                },
                filters: Vec::new(),
            }
        })
        .collect()
}

/// Per-route match counts summing to `total` (each at least 1), around the mean.
fn match_counts(rng: &mut Rng, routes: usize, total: usize) -> Vec<usize> {
    let total = total.max(routes);
    let base = total / routes;
    let mut counts = vec![base; routes];
    for c in counts.iter_mut().take(total % routes) {
        *c += 1;
    }
    // Move matches between random routes for variety, keeping the total.
    for _ in 0..routes {
        let (a, b) = (rng.below(routes), rng.below(routes));
        let k = rng.below(base.max(1));
        if counts[a] > k {
            counts[a] -= k;
            counts[b] += k;
        }
    }
    counts
}

/// Generates the configuration described by `spec`.
pub fn generate(spec: &SynthSpec) -> SynthConfig {
    let mut rng = Rng::new(spec.seed);
    let namespaces = spec.namespaces.max(1);
    let hostnames = spec.hostnames.max(1);
    let mut objects = ObjectSet::default();
    let epoch = 1_704_067_200; // 2024-01-01T00:00:00Z

    objects.gateway_classes.push(GatewayClass {
        metadata: meta("", "synthetic"),
        spec: GatewayClassSpec {
            controller_name: "example.com/gateway-controller".into(),
        },
    });
    let from_all = || {
        Some(AllowedRoutes {
            namespaces: Some(RouteNamespaces {
                from: Some("All".into()),
                selector: None,
            }),
            kinds: Vec::new(),
        })
    };
    let mut gw_meta = meta("infra", "gw");
    gw_meta.creation_timestamp = Some(timestamp(epoch - 86_400));
    objects.gateways.push(Gateway {
        metadata: gw_meta,
        spec: GatewaySpec {
            gateway_class_name: "synthetic".into(),
            listeners: vec![
                Listener {
                    name: "http".into(),
                    hostname: None,
                    port: 80,
                    protocol: "HTTP".into(),
                    allowed_routes: from_all(),
                },
                Listener {
                    name: "https".into(),
                    hostname: Some("*.example.com".into()),
                    port: 443,
                    protocol: "HTTPS".into(),
                    allowed_routes: from_all(),
                },
            ],
            allowed_listeners: None,
        },
        status: None,
    });

    // Namespaces and Services.
    let mut ns_names = vec!["infra".to_string()];
    ns_names.extend((0..namespaces).map(tenant_ns));
    ns_names.extend((0..SHARED_NAMESPACES).map(shared_ns));
    for name in &ns_names {
        let mut m = meta("", name);
        m.labels
            .insert("routeproof.dev/synthetic".into(), "true".into());
        objects.namespaces.push(Namespace { metadata: m });
    }
    let service = |ns: &str, name: String| Service {
        metadata: meta(ns, &name),
        spec: ServiceSpec {
            service_type: None,
            ports: vec![ServicePort {
                name: Some("http".into()),
                port: SERVICE_PORT,
                target_port: Some(serde_json::json!(8080)),
                protocol: None,
                app_protocol: None,
            }],
            selector: Some(BTreeMap::from([("app".to_string(), name.clone())])),
            cluster_ip: None,
        },
    };
    for t in 0..namespaces {
        let ns = tenant_ns(t);
        for s in 0..spec.services_per_namespace.max(1) {
            objects.services.push(service(&ns, format!("svc-{s}")));
        }
    }
    for s in 0..SHARED_NAMESPACES {
        let ns = shared_ns(s);
        for k in 0..SHARED_SERVICES {
            objects.services.push(service(&ns, format!("common-{k}")));
        }
        // Every tenant namespace may refer to the shared Services.
        objects.reference_grants.push(ReferenceGrant {
            metadata: meta(&ns, "allow-tenants"),
            spec: ReferenceGrantSpec {
                from: (0..namespaces)
                    .map(|t| ReferenceGrantFrom {
                        group: GATEWAY_GROUP.into(),
                        kind: "HTTPRoute".into(),
                        namespace: tenant_ns(t),
                    })
                    .collect(),
                to: vec![ReferenceGrantTo {
                    group: String::new(),
                    kind: "Service".into(),
                    name: None,
                }],
            },
        });
    }

    // Routes.
    let counts = match_counts(&mut rng, spec.routes.max(1), spec.matches);
    let mut created = epoch;
    for (r, &count) in counts.iter().enumerate().take(spec.routes) {
        let ns = tenant_ns(r % namespaces);
        // About 1 route in 500 has no hostnames (catch-all for every host).
        let route_hostnames = if r % 500 == 499 {
            Vec::new()
        } else {
            let mut hs = vec![hostname(r % hostnames)];
            if rng.chance(0.2) {
                let extra = hostname(rng.below(hostnames));
                if !hs.contains(&extra) {
                    hs.push(extra);
                }
            }
            hs
        };
        let catch_all_allowed = !route_hostnames.is_empty();
        let rules_n = (1 + rng.below(3)).min(count);
        let mut per_rule = vec![1usize; rules_n];
        for _ in rules_n..count {
            per_rule[rng.below(rules_n)] += 1;
        }
        let rules = per_rule
            .iter()
            .enumerate()
            .map(|(i, &n)| HttpRouteRule {
                name: (i > 0 && rng.chance(0.3)).then(|| format!("rule-{i}")),
                matches: (0..n)
                    .map(|_| gen_match(&mut rng, catch_all_allowed))
                    .collect(),
                filters: Vec::new(),
                backend_refs: Some(gen_backends(&mut rng, spec)),
            })
            .collect();
        let parent_ref = ParentRef {
            namespace: Some("infra".into()),
            name: "gw".into(),
            section_name: rng.chance(0.1).then(|| "http".to_string()),
            ..ParentRef::default()
        };
        // Mostly increasing timestamps, with some ties (same second).
        if !rng.chance(0.05) {
            created += 1 + rng.below(600) as i64;
        }
        let mut m = meta(&ns, &format!("route-{r}"));
        m.creation_timestamp = Some(timestamp(created));
        m.generation = Some(1);
        objects.http_routes.push(HttpRoute {
            metadata: m,
            spec: HttpRouteSpec {
                parent_refs: vec![parent_ref],
                hostnames: route_hostnames,
                rules: Some(rules),
            },
            status: None,
        });
    }

    SynthConfig {
        spec: spec.clone(),
        objects,
    }
}

/// A concrete value satisfying a generated value condition.
fn satisfy_value(v: &ValueMatch) -> String {
    if v.match_type.as_deref() == Some("RegularExpression") {
        v.value.replace("[0-9]+", "7")
    } else {
        v.value.clone()
    }
}

/// A host covered by a route hostname (a wildcard gets a random first label).
fn concrete_host(rng: &mut Rng, h: &str) -> String {
    match h.strip_prefix('*') {
        Some(suffix) => format!("w{}{suffix}", rng.below(1000)),
        None => h.to_string(),
    }
}

/// `n` requests over `config`: about 90% are built to satisfy a randomly chosen
/// match of a randomly chosen route (they usually forward, though a
/// higher-precedence match of another route may win), about 10% are misses
/// (unknown hosts, or known hosts with paths nothing routes). Every attribute
/// is known (as for `explain`); `gateway` is [`GATEWAY_KEY`]; about 40% of the
/// requests to `*.example.com` hosts arrive over HTTPS with a matching SNI.
pub fn requests(config: &SynthConfig, n: usize, seed: u64) -> Vec<RequestSpec> {
    let mut rng = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ config.spec.seed);
    let routes = &config.objects.http_routes;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut req = RequestSpec {
            gateway: Some(GATEWAY_KEY.to_string()),
            method: Some("GET".into()),
            ..RequestSpec::default()
        };
        let hit = !routes.is_empty() && rng.chance(0.9);
        let mut https_ok = true;
        if hit {
            let route = rng.pick(routes);
            let rules = route.spec.rules.as_deref().unwrap_or(&[]);
            let host = if route.spec.hostnames.is_empty() {
                format!("any{}.example.com", rng.below(1000))
            } else {
                let h = rng.pick(&route.spec.hostnames).clone();
                concrete_host(&mut rng, &h)
            };
            https_ok &= route
                .spec
                .parent_refs
                .iter()
                .all(|p| p.section_name.is_none());
            req.host = Some(host);
            let m = match rules.get(rng.below(rules.len().max(1))) {
                Some(rule) if !rule.matches.is_empty() => Some(rng.pick(&rule.matches)),
                _ => None,
            };
            let path_match = m.and_then(|m| m.path.as_ref());
            req.path = match path_match.map(|p| (p.match_type.as_deref(), p.value.as_deref())) {
                Some((Some("Exact"), Some(v))) => v.to_string(),
                Some((Some("RegularExpression"), Some(v))) => v.replace("[0-9]+", "42"),
                Some((_, Some(v))) => match rng.below(3) {
                    0 => v.to_string(),
                    1 => format!("{v}/"),
                    _ => format!("{v}/{}", rng.pick(SEGMENTS)),
                },
                _ => {
                    let n = 1 + rng.below(3);
                    path_of(&mut rng, n)
                }
            };
            if let Some(m) = m {
                if let Some(method) = &m.method {
                    req.method = Some(method.clone());
                } else if rng.chance(0.2) {
                    req.method = Some("POST".into());
                }
                for h in &m.headers {
                    req.headers.insert(h.name.clone(), satisfy_value(h));
                }
                let query: Vec<String> = m
                    .query_params
                    .iter()
                    .map(|q| format!("{}={}", q.name, satisfy_value(q)))
                    .collect();
                req.query = Some(query.join("&"));
            }
        } else if rng.chance(0.5) {
            req.host = Some(format!("nohost{}.example.net", rng.below(100_000)));
            let n = 1 + rng.below(3);
            req.path = path_of(&mut rng, n);
            req.query = Some(String::new());
        } else {
            let h = hostname(rng.below(config.spec.hostnames.max(1)));
            req.host = Some(concrete_host(&mut rng, &h));
            req.path = format!("/zz-miss/{}", rng.below(100_000));
            req.query = Some(String::new());
        }
        // Headers a real request carries anyway.
        req.headers
            .insert("user-agent".into(), "synthetic/1.0".into());
        req.headers.insert("accept".into(), "*/*".into());
        let host = req.host.as_deref().unwrap_or_default();
        if https_ok && host.ends_with(".example.com") && rng.chance(0.4) {
            req.scheme = Some("https".into());
            req.sni = Some(host.to_string());
        }
        out.push(req);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::{CompileOptions, Outcome, RouteIndex};

    #[test]
    fn deterministic_and_sized() {
        let spec = SynthSpec::small();
        let a = generate(&spec);
        let b = generate(&spec);
        assert_eq!(a.objects.http_routes.len(), 100);
        let total: usize = a
            .objects
            .http_routes
            .iter()
            .flat_map(|r| r.spec.rules.iter().flatten())
            .map(|rule| rule.matches.len())
            .sum();
        assert_eq!(total, 500);
        let names = |c: &SynthConfig| {
            c.objects
                .http_routes
                .iter()
                .map(|r| format!("{:?}{:?}", r.spec.hostnames, r.metadata.creation_timestamp))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&a), names(&b));
        let ra = requests(&a, 50, 1);
        let rb = requests(&b, 50, 1);
        assert_eq!(format!("{ra:?}"), format!("{rb:?}"));
    }

    #[test]
    fn requests_mostly_forward() {
        let config = generate(&SynthSpec::small());
        let index = RouteIndex::compile(&config.objects, CompileOptions::default());
        assert!(index.routes.iter().all(|r| r.invalid.is_none()));
        assert!(index.routes.iter().all(|r| r.unresolved.is_none()));
        let reqs = requests(&config, 2_000, 7);
        let mut forwarded = 0;
        for spec in &reqs {
            let pairs = spec.header_pairs();
            let req = spec.to_request(&pairs).expect("valid request");
            if index.decide(&req).outcome == Outcome::Forward {
                forwarded += 1;
            }
        }
        // ~90% are built to hit; some misses still land on catch-all matches.
        assert!(forwarded > 1_600, "{forwarded} of 2000 forwarded");
    }
}
