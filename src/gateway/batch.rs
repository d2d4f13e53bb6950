//! Deciding a batch of requests with their cache misses overlapped.
//!
//! Deciding one request is a chain of dependent loads into an index far larger
//! than the caches: the host's slot in the hostname lookup, the hostname
//! bucket, the bucket's path-index slot, the candidates. One request at a time,
//! each load waits for the previous one. [`RouteIndex::decide_batch`] takes
//! [`DECIDE_BATCH_GROUP`] requests at a time through the chain in stages
//! (group prefetching): every stage takes, for each request of the group, one
//! step of the decision on the link the previous stage prefetched (by now
//! loaded) and prefetches the next. The misses of the group's requests are
//! then in flight together instead of one after another.
//!
//! The stages are the decision's own first steps, done once: the listener,
//! the path keys and the host's hash; the host's bucket (the first one
//! [`RouteIndex::decide`] scans); the first key its path index looks up; the
//! group of that key (or of the next one the bucket holds). When that
//! group's first candidate wins, as for most requests, it is the decision
//! (nothing was judged before it). When the bucket holds no key of the path,
//! its unkeyed candidates (regular expressions, catch-alls) are judged as
//! the scan judges them, and the first that holds is the decision. Any other
//! request (a first candidate that loses or depends on what the request
//! does not carry, no unkeyed candidate that holds, gRPC, a path with too
//! many segments) is decided by `decide`'s code on what the stages
//! computed, so a batch decides exactly as `decide` does (the property tests
//! check it).

use super::compile::{
    Bucket, Candidate, HostLookup, HostTable, KeyProbe, PathIndex, PathKeys, RouteIndex,
};
use super::decide::{BucketScan, Decision, HostHashes, ListenerSelection};
use super::hostname;
use super::prefetch::{prefetch, prefetch_object};
use super::request::{Protocol, Request};

/// How many requests [`RouteIndex::decide_batch`] takes through the stages
/// together. Enough to cover a miss's latency with the other requests' work
/// of a stage, few enough that a group's prefetched lines stay in L1/L2 until
/// they are used.
pub const DECIDE_BATCH_GROUP: usize = 16;

#[cfg(test)]
thread_local! {
    /// How many decisions the batch took in its stages, without
    /// `decide_selected` (tests check which requests do).
    static DECIDED_IN_STAGES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One request of a group, between stages. A group's flights are allocated
/// once per call and refilled in place (moving them would cost more than the
/// stages).
struct InFlight<'i, 'r> {
    /// Step 1 of the decision; `None` when no listener serves the request
    /// (decided by [`RouteIndex::decide`] then: a terminal decision).
    selection: Option<ListenerSelection<'i, 'r>>,
    /// The path's index keys.
    keys: PathKeys<'r>,
    /// The chosen listener's HTTPRoute table, when the stages apply (an
    /// HTTP request whose path keys are complete).
    table: Option<&'i HostTable>,
    /// Hashes of the host (exact lookup) and of the wildcard suffix whose
    /// bucket was found; the decision reuses them.
    host_hashes: HostHashes,
    /// The first hostname bucket the decision scans.
    bucket: Option<&'i Bucket>,
    /// The first key the bucket's path index looks up.
    probe: Option<KeyProbe>,
    /// The first candidate of the first keyed group the decision visits;
    /// `None` with a bucket when the bucket's keyed groups hold no key of
    /// the path (its unkeyed candidates decide, unless none holds).
    first: Option<Candidate>,
}

impl InFlight<'_, '_> {
    fn empty() -> Self {
        InFlight {
            selection: None,
            keys: PathKeys::empty(),
            table: None,
            host_hashes: HostHashes::default(),
            bucket: None,
            probe: None,
            first: None,
        }
    }
}

impl RouteIndex {
    /// Decides every request of `reqs`, in order, appending the decisions to
    /// `out`: the same decisions as [`RouteIndex::decide`] on each, faster on
    /// large indexes because the cache misses of [`DECIDE_BATCH_GROUP`]
    /// requests overlap (see the module documentation).
    pub fn decide_batch<'i>(&'i self, reqs: &[Request<'_>], out: &mut Vec<Decision<'i>>) {
        out.reserve(reqs.len());
        self.decide_each(reqs, |_, d| out.push(d));
    }

    /// [`RouteIndex::decide_batch`] handing each decision to `f` with the
    /// position of its request in `reqs`, in order.
    pub fn decide_each<'i, 'r>(
        &'i self,
        reqs: &[Request<'r>],
        mut f: impl FnMut(usize, Decision<'i>),
    ) {
        let mut flights: [InFlight<'i, 'r>; DECIDE_BATCH_GROUP] =
            std::array::from_fn(|_| InFlight::empty());
        for (g, group) in reqs.chunks(DECIDE_BATCH_GROUP).enumerate() {
            // The next group's request strings, for its stage 1.
            if let Some(next) = reqs.get((g + 1) * DECIDE_BATCH_GROUP..) {
                for req in next.iter().take(DECIDE_BATCH_GROUP) {
                    prefetch(req.path.as_ptr());
                    for s in [req.gateway, req.host].into_iter().flatten() {
                        prefetch(s.as_ptr());
                    }
                }
            }
            let flights = &mut flights[..group.len()];
            // Stage 1: listener, path keys, host hash -> host slot.
            for (flight, req) in flights.iter_mut().zip(group) {
                self.launch(flight, req);
            }
            // Stage 2: host slot -> the first bucket scanned.
            for flight in flights.iter_mut() {
                flight.find_bucket();
            }
            // Stage 3: bucket -> the slot of its first key lookup, or its
            // unkeyed candidates when it looks up no key.
            for flight in flights.iter_mut() {
                if let Some(bucket) = flight.bucket {
                    flight.probe = bucket.index.first_probe(&flight.keys);
                    match &flight.probe {
                        Some(probe) => bucket.index.prefetch_probe(probe),
                        None => prefetch_unkeyed(bucket),
                    }
                }
            }
            // Stage 4: slot -> the first keyed group's first candidate, and
            // what judging it reads.
            for flight in flights.iter_mut() {
                let Some(bucket) = flight.bucket else {
                    continue;
                };
                flight.first = flight
                    .probe
                    .and_then(|probe| bucket.index.first_group(&flight.keys, probe))
                    .map(|group| *group.first);
                match &flight.first {
                    Some(c) => self.prefetch_judged(c),
                    // Not prefetched yet when a key was looked up.
                    None if flight.probe.is_some() => prefetch_unkeyed(bucket),
                    None => {}
                }
            }
            // Stage 5: decide.
            for (k, (flight, req)) in flights.iter().zip(group).enumerate() {
                let decision = match &flight.selection {
                    Some(selection) => {
                        let won = match (&flight.first, flight.bucket) {
                            (Some(c), _) => {
                                self.decide_by_first_candidate(req, selection, &flight.keys, c)
                            }
                            (None, Some(bucket)) => self.decide_by_unkeyed_candidates(
                                req,
                                selection,
                                &flight.keys,
                                bucket,
                            ),
                            _ => None,
                        };
                        match won {
                            Some(decision) => {
                                #[cfg(test)]
                                DECIDED_IN_STAGES.with(|n| n.set(n.get() + 1));
                                decision
                            }
                            None => self.decide_selected(
                                req,
                                selection,
                                &flight.keys,
                                flight.host_hashes,
                                BucketScan::Indexed,
                            ),
                        }
                    }
                    None => self.decide(req),
                };
                f(g * DECIDE_BATCH_GROUP + k, decision);
            }
        }
    }

    /// Prefetches what judging keyed candidate `c` reads: nothing when it
    /// certainly holds once keyed, else its compact condition record or,
    /// without one, its match object.
    #[inline]
    fn prefetch_judged(&self, c: &Candidate) {
        if c.holds_when_keyed() {
            return;
        }
        if let Some(record) = c.record_for(true) {
            self.conditions.prefetch(record);
        } else if PathIndex::needs_entry_when_keyed(c) {
            if let Some(entry) = self.matches.get(c.id as usize) {
                prefetch_object(entry);
            }
        }
    }

    /// Stage 1: selects the listener, finds the path keys, hashes the host
    /// and prefetches the host's slot in the listener's exact-hostname lookup.
    fn launch<'i, 'r>(&'i self, flight: &mut InFlight<'i, 'r>, req: &Request<'r>) {
        flight.selection = self.select_listener(req).ok();
        flight.keys.fill(req.path);
        flight.table = None;
        flight.host_hashes = HostHashes::default();
        flight.bucket = None;
        flight.probe = None;
        flight.first = None;
        let Some(selection) = &flight.selection else {
            return;
        };
        // gRPC requests may be decided on the GRPCRoute table, and a path
        // with too many segments by a linear scan: not staged.
        if req.protocol != Protocol::Http || !flight.keys.is_complete() {
            return;
        }
        let Some(listener) = self.listeners.get(selection.chosen()) else {
            return;
        };
        let table = &listener.http;
        flight.table = Some(table);
        let host = selection.host.as_deref().unwrap_or("");
        if !host.is_empty() && !table.exact.is_empty() {
            let hash = selection
                .host_hash
                .unwrap_or_else(|| HostLookup::hash_of(host));
            table.exact.prefetch_home(hash);
            flight.host_hashes.exact = Some(hash);
        }
    }
}

impl InFlight<'_, '_> {
    /// Stage 2: the first bucket the decision scans (the host's exact
    /// bucket, else the bucket of its longest wildcard suffix the table
    /// holds, else the table's bucket of routes without hostnames), found
    /// as the decision finds it; starts loading its path index.
    fn find_bucket(&mut self) {
        let Some(table) = self.table else {
            return;
        };
        let host = self
            .selection
            .as_ref()
            .and_then(|s| s.host.as_deref())
            .unwrap_or("");
        let bucket = first_bucket(table, host, &mut self.host_hashes);
        // The index's lookup fields are the bucket's first line; the
        // second says where its candidates are.
        prefetch_object(bucket);
        self.bucket = Some(bucket);
    }
}

/// Starts loading the first unkeyed candidates of `bucket` (the line its
/// list starts on).
#[inline]
fn prefetch_unkeyed(bucket: &Bucket) {
    if let Some(c) = bucket.index.always().first() {
        prefetch(c);
    }
}

/// The first bucket of `table` that the decision scans for `host`, as
/// `scan_table_indexed` finds it: the exact bucket (through `hashes.exact`,
/// set when the host is not empty and the table has exact hostnames), else
/// the first wildcard suffix from the longest whose length the table holds
/// and that has a bucket (its hash noted in `hashes.wildcard`), else
/// `table.any`.
fn first_bucket<'t>(table: &'t HostTable, host: &str, hashes: &mut HostHashes) -> &'t Bucket {
    if host.is_empty() {
        return &table.any;
    }
    if let Some(bucket) = hashes
        .exact
        .and_then(|hash| table.exact_bucket_hashed(host, hash))
    {
        return bucket;
    }
    if table.wildcard_lengths == 0 {
        return &table.any;
    }
    let mut from = 1;
    while let Some(i) = host
        .get(from..)
        .and_then(|rest| hostname::find_dot(rest.as_bytes()))
    {
        let at = from + i;
        from = at + 1;
        if table.wildcard_lengths & (1u64 << (host.len() - at).min(63)) == 0 {
            continue;
        }
        let suffix = &host[at..];
        let hash = HostLookup::hash_of(suffix);
        if let Some(bucket) = table.wildcard_bucket_hashed(suffix, hash) {
            hashes.wildcard = Some((suffix.len(), hash));
            return bucket;
        }
    }
    &table.any
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::decide::Unknowns;
    use crate::gateway::CompileOptions;
    use crate::gateway::Outcome;
    use crate::synth::{self, SynthSpec};
    use crate::test_manifests::gateway_gw;

    /// A route table (behind [`gateway_gw`]'s Gateway on port 80) with
    /// exact, wildcard and hostname-less routes: a header-matched canary
    /// ranked before a plain match of the same prefix, an `Exact` key, a lone
    /// method condition, a regex (not keyed), a catch-all; a rule without
    /// backends.
    const ROUTES: &str = r#"---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: exact, namespace: shop}
spec:
  parentRefs: [{name: gw, namespace: infra}]
  hostnames: [a.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}, headers: [{name: x-canary, value: "1"}]}]
    backendRefs: [{name: canary, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /api}}, {path: {type: Exact, value: /api/v1/items}}]
    backendRefs: [{name: a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /m}, method: POST}]
    backendRefs: [{name: a, port: 80}]
  - matches: [{path: {type: RegularExpression, value: "/re/[0-9]+"}}]
    backendRefs: [{name: a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /empty}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: wild, namespace: shop}
spec:
  parentRefs: [{name: gw, namespace: infra}]
  hostnames: ["*.example.com"]
  rules:
  - matches: [{path: {type: PathPrefix, value: /w}}, {path: {type: PathPrefix, value: /m}}]
    backendRefs: [{name: b, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: any, namespace: shop}
spec:
  parentRefs: [{name: gw, namespace: infra}]
  rules:
  - matches: [{path: {type: Exact, value: /z}}]
    backendRefs: [{name: c, port: 80}]
  - backendRefs: [{name: c, port: 80}]
"#;

    /// What a batch decision must share with `decide`'s: outcome, status,
    /// reason, winner, alternatives, unknowns and listener.
    type Summary = (
        Outcome,
        Option<u16>,
        Option<&'static str>,
        Option<(u32, u32)>,
        Vec<u32>,
        Unknowns,
        Option<String>,
    );

    fn summary(d: &Decision<'_>) -> Summary {
        (
            d.outcome,
            d.status,
            d.reason(),
            d.hit.map(|h| (h.match_id(), h.route_id())),
            d.alternatives.iter().map(|h| h.match_id()).collect(),
            d.unknowns,
            d.listener.map(|l| l.key.clone()),
        )
    }

    /// Where the batch takes a decision in its stages (the first candidate
    /// of the first keyed group of the first bucket, or the first bucket's
    /// unkeyed candidates), and where it leaves it to `decide`'s scan: each
    /// request decided alone and in one batch with the others, always as
    /// `decide` decides it.
    #[test]
    fn stage_decisions_stop_where_the_scan_would_go_on() {
        let mut set = crate::gateway::ObjectSet::default();
        let table = gateway_gw(80) + ROUTES;
        crate::gateway::load::load_text(&mut set, "batch.yaml", &table).expect("manifests load");
        let index = RouteIndex::compile(&set, CompileOptions::default());
        let canary = [("x-canary", "1")];
        let known = |known| crate::gateway::Headers {
            known,
            others_unknown: false,
        };
        let base = Request {
            host: Some("a.example.com"),
            method: Some("GET"),
            path: "/api/x",
            query: Some(""),
            headers: known(&[]),
            ..Request::default()
        };
        let deep = format!("/api{}", "/s".repeat(40));
        let cases: Vec<(&str, Request<'_>, bool)> = vec![
            ("plain prefix behind a canary that loses", base, false),
            (
                "canary wins",
                Request {
                    headers: known(&canary),
                    ..base
                },
                true,
            ),
            (
                "canary unknown: an alternative",
                Request {
                    headers: crate::gateway::Headers {
                        known: &[],
                        others_unknown: true,
                    },
                    ..base
                },
                false,
            ),
            (
                "exact key",
                Request {
                    path: "/api/v1/items",
                    ..base
                },
                true,
            ),
            (
                "lone method holds",
                Request {
                    method: Some("POST"),
                    path: "/m/x",
                    ..base
                },
                true,
            ),
            (
                "lone method fails: the wildcard bucket",
                Request {
                    path: "/m/x",
                    ..base
                },
                false,
            ),
            (
                "unknown method",
                Request {
                    method: None,
                    path: "/m/x",
                    ..base
                },
                false,
            ),
            (
                "regex: no keyed group",
                Request {
                    path: "/re/42",
                    ..base
                },
                true,
            ),
            (
                "no keyed group, the regex fails: the next buckets",
                Request {
                    path: "/re/abc",
                    ..base
                },
                false,
            ),
            (
                "rule without backends",
                Request {
                    path: "/empty/x",
                    ..base
                },
                true,
            ),
            (
                "wildcard bucket first",
                Request {
                    host: Some("b.example.com"),
                    path: "/w/x",
                    ..base
                },
                true,
            ),
            (
                "wildcard of a deeper host",
                Request {
                    host: Some("x.b.example.com"),
                    path: "/w",
                    ..base
                },
                true,
            ),
            (
                "host to normalise",
                Request {
                    host: Some("A.Example.COM:80"),
                    path: "/api/v1/items",
                    ..base
                },
                true,
            ),
            (
                "hostname-less bucket",
                Request {
                    host: Some("other.org"),
                    path: "/z",
                    ..base
                },
                true,
            ),
            (
                "no host",
                Request {
                    host: None,
                    path: "/z",
                    ..base
                },
                true,
            ),
            (
                "catch-all: not keyed",
                Request {
                    host: Some("other.org"),
                    path: "/y",
                    ..base
                },
                true,
            ),
            (
                "too many segments for the index",
                Request {
                    path: &deep,
                    ..base
                },
                false,
            ),
            (
                "gRPC",
                Request {
                    protocol: Protocol::Grpc,
                    path: "/api/v1/items",
                    ..base
                },
                false,
            ),
        ];
        let decided_in_stages = || DECIDED_IN_STAGES.with(|n| n.get());
        for (what, req, in_stages) in &cases {
            let mut out = Vec::new();
            let before = decided_in_stages();
            index.decide_batch(std::slice::from_ref(req), &mut out);
            assert_eq!(
                decided_in_stages() - before,
                usize::from(*in_stages),
                "{what}"
            );
            assert_eq!(summary(&out[0]), summary(&index.decide(req)), "{what}");
        }
        let reqs: Vec<Request<'_>> = cases.iter().map(|(_, r, _)| *r).collect();
        let mut out = Vec::new();
        let before = decided_in_stages();
        index.decide_batch(&reqs, &mut out);
        let in_stages = cases.iter().filter(|(_, _, b)| *b).count();
        assert_eq!(decided_in_stages() - before, in_stages);
        for ((what, req, _), got) in cases.iter().zip(&out) {
            assert_eq!(summary(got), summary(&index.decide(req)), "{what} (batch)");
        }
    }

    /// On the synthetic configuration (exact and wildcard hostnames, HTTPS
    /// with SNI, header/method/query conditions), every batch decides as
    /// `decide` does, for group-boundary batch sizes.
    #[test]
    fn batches_decide_like_decide_on_the_synthetic_config() {
        let config = synth::generate(&SynthSpec::small());
        let index = RouteIndex::compile(&config.objects, CompileOptions::default());
        let specs = synth::requests(&config, 600, 7);
        let pairs: Vec<Vec<(&str, &str)>> = specs.iter().map(|s| s.header_pairs()).collect();
        let reqs: Vec<Request<'_>> = specs
            .iter()
            .zip(&pairs)
            .filter_map(|(s, p)| s.to_request(p).ok())
            .collect();
        assert_eq!(reqs.len(), specs.len());
        let k = DECIDE_BATCH_GROUP;
        let mut forwarded = 0;
        for size in [0, 1, k - 1, k, k + 1, 3 * k + 5, reqs.len()] {
            let mut out = Vec::new();
            for batch in reqs
                .chunks(size.max(1))
                .take(if size == 0 { 0 } else { usize::MAX })
            {
                index.decide_batch(batch, &mut out);
            }
            if size == 0 {
                index.decide_batch(&[], &mut out);
                assert!(out.is_empty());
                continue;
            }
            assert_eq!(out.len(), reqs.len());
            for (req, got) in reqs.iter().zip(&out) {
                assert_eq!(
                    summary(got),
                    summary(&index.decide(req)),
                    "batch {size}: {req:?}"
                );
            }
            forwarded = out.iter().filter(|d| d.outcome == Outcome::Forward).count();
        }
        assert!(forwarded > reqs.len() / 2, "{forwarded} forwarded");
        // Most requests are decided in the stages (no scan after them).
        let before = DECIDED_IN_STAGES.with(|n| n.get());
        index.decide_batch(&reqs, &mut Vec::new());
        let in_stages = DECIDED_IN_STAGES.with(|n| n.get()) - before;
        assert!(
            in_stages > reqs.len() * 3 / 4,
            "{in_stages} decided in the stages"
        );
    }
}
