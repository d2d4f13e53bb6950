//! Deciding a batch of requests with their cache misses overlapped.
//!
//! Deciding one request is a chain of dependent loads into an index far larger
//! than the caches: the host's slot in the hostname lookup, the hostname
//! bucket, the bucket's path-index slot, the candidates. One request at a time,
//! each load waits for the previous one. [`RouteIndex::decide_batch`] takes
//! [`DECIDE_BATCH_GROUP`] requests at a time through the chain in stages
//! (group prefetching): every stage issues, for each request of the group,
//! the prefetch of its next link, whose address the previous stage's
//! (prefetched, by now loaded) link gives. The misses of the group's requests
//! are then in flight together instead of one after another.
//!
//! The stages only *prefetch*: a stage that guesses wrong (a hash tag that
//! matches another key, a request that is decided in another bucket) only
//! wastes a load. The decision itself is [`RouteIndex::decide`]'s code, on the
//! listener selection, path keys and host hashes computed in the first stage
//! (the same values `decide` computes), so a batch decides exactly as `decide`
//! does (the property tests check it).

use super::compile::{
    Bucket, HostLookup, HostTable, KeyProbes, KeyedGroup, PathIndex, PathKeys, RouteIndex,
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

/// One request of a group, between stages. A group's flights are allocated
/// once per call and refilled in place (moving them would cost more than the
/// stages).
struct InFlight<'i, 'r> {
    /// Step 1 of the decision; `None` when no listener serves the request
    /// (decided by [`RouteIndex::decide`] then: a terminal decision).
    selection: Option<ListenerSelection<'i, 'r>>,
    /// The path's index keys.
    keys: PathKeys<'r>,
    /// The chosen listener's HTTPRoute table, when prefetching applies.
    table: Option<&'i HostTable>,
    /// Hashes of the host (exact lookup) and of its longest wildcard suffix
    /// that the table may hold; the decision reuses them.
    host_hashes: HostHashes,
    /// The hostname buckets the request probably reaches first.
    buckets: [Option<&'i Bucket>; 2],
    /// What the path-index hints found in each of `buckets`.
    probes: [KeyProbes; 2],
}

impl InFlight<'_, '_> {
    fn empty() -> Self {
        InFlight {
            selection: None,
            keys: PathKeys::empty(),
            table: None,
            host_hashes: HostHashes::default(),
            buckets: [None; 2],
            probes: [KeyProbes::default(); 2],
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
            // Stage 1: listener, path keys, host hashes -> host slots.
            for (flight, req) in flights.iter_mut().zip(group) {
                self.launch(flight, req);
            }
            // Stage 2: host slots (loaded) -> hostname buckets.
            for flight in flights.iter_mut() {
                flight.locate_buckets();
            }
            // Stage 3: buckets -> path-index slots.
            for flight in flights.iter_mut() {
                for (bucket, probes) in flight.buckets.iter().zip(&mut flight.probes) {
                    if let Some(bucket) = bucket {
                        bucket.index.prefetch_slots(&flight.keys, probes);
                    }
                }
            }
            // Stage 4: path-index slots -> candidates.
            for flight in flights.iter_mut() {
                for (bucket, probes) in flight.buckets.iter().zip(&mut flight.probes) {
                    if let Some(bucket) = bucket {
                        bucket.index.prefetch_candidates(probes);
                    }
                }
            }
            // Stage 5: candidates -> the match objects the decision may have
            // to evaluate (header/query conditions).
            for flight in flights.iter() {
                for (bucket, probes) in flight.buckets.iter().zip(&flight.probes) {
                    if let Some(bucket) = bucket {
                        for group in bucket.index.hinted_groups(probes) {
                            self.prefetch_entries(group);
                        }
                    }
                }
            }
            // Stage 6: decide.
            for (k, (flight, req)) in flights.iter().zip(group).enumerate() {
                let decision = match &flight.selection {
                    Some(selection) => self.decide_selected(
                        req,
                        selection,
                        &flight.keys,
                        flight.host_hashes,
                        BucketScan::Indexed,
                    ),
                    None => self.decide(req),
                };
                f(g * DECIDE_BATCH_GROUP + k, decision);
            }
        }
    }

    /// Prefetches the compact condition records, or the match objects, of the
    /// first candidates of `group` that are judged from them, up to the first candidate that
    /// certainly holds once keyed (the decision stops there).
    fn prefetch_entries(&self, group: KeyedGroup<'_>) {
        for c in group.iter().take(4) {
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
    }

    /// Stage 1: selects the listener, finds the path keys, hashes the host
    /// and prefetches the host's slot in the listener's exact-hostname lookup.
    fn launch<'i, 'r>(&'i self, flight: &mut InFlight<'i, 'r>, req: &Request<'r>) {
        flight.selection = self.select_listener(req).ok();
        flight.keys.fill(req.path);
        flight.table = None;
        flight.host_hashes = HostHashes::default();
        flight.buckets = [None; 2];
        let Some(selection) = &flight.selection else {
            return;
        };
        // gRPC requests may be decided on the GRPCRoute table: not prefetched.
        if req.protocol != Protocol::Http {
            return;
        }
        let Some(listener) = self.listeners.get(selection.chosen()) else {
            return;
        };
        let table = &listener.http;
        flight.table = Some(table);
        let host = selection.host.as_deref().unwrap_or("");
        if host.is_empty() {
            return;
        }
        if !table.exact.is_empty() {
            let hash = selection
                .host_hash
                .unwrap_or_else(|| HostLookup::hash_of(host));
            table.exact.prefetch_home(hash);
            flight.host_hashes.exact = Some(hash);
        }
        // The wildcard suffix is looked for in stage 2, only when the host
        // has no exact bucket (most requests are decided in theirs).
    }
}

impl InFlight<'_, '_> {
    /// Stage 2: the exact bucket the host's slot names (by tag,
    /// unconfirmed); when there is none, the bucket of the host's longest
    /// wildcard suffix the table may hold; when neither, the table's bucket
    /// of routes without hostnames. Starts loading it.
    fn locate_buckets(&mut self) {
        let Some(table) = self.table else {
            return;
        };
        self.buckets[0] = self
            .host_hashes
            .exact
            .and_then(|h| table.exact.bucket_hint(h))
            .and_then(|b| table.buckets.get(b as usize));
        if self.buckets[0].is_none() {
            // No exact bucket: the longest wildcard suffix the table may
            // hold (its lookup table is small: its slot is likely cached).
            let host = self
                .selection
                .as_ref()
                .and_then(|s| s.host.as_deref())
                .unwrap_or("");
            if let Some(suffix) = longest_wildcard_suffix(table, host) {
                let hash = HostLookup::hash_of(suffix);
                self.host_hashes.wildcard = Some((suffix.len(), hash));
                self.buckets[1] = table
                    .wildcard
                    .bucket_hint(hash)
                    .and_then(|b| table.buckets.get(b as usize));
            }
        }
        if self.buckets.iter().all(Option::is_none) {
            self.buckets[0] = Some(&table.any);
        }
        for bucket in self.buckets.iter().flatten() {
            prefetch_object(*bucket);
        }
    }
}

/// The longest wildcard suffix of `host` (`.example.com` of `a.example.com`)
/// whose length `table` holds: the first wildcard bucket `decide` probes.
fn longest_wildcard_suffix<'h>(table: &HostTable, host: &'h str) -> Option<&'h str> {
    if table.wildcard.is_empty() {
        return None;
    }
    let bytes = host.as_bytes();
    let mut from = 1;
    while let Some(i) = bytes.get(from..).and_then(hostname::find_dot) {
        let at = from + i;
        if table.wildcard_lengths & (1u64 << (host.len() - at).min(63)) != 0 {
            return host.get(at..);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::CompileOptions;
    use crate::synth::{self, SynthSpec};

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
        let summary = |d: &Decision<'_>| {
            (
                d.outcome,
                d.status,
                d.reason,
                d.hit.map(|h| (h.match_id(), h.route_id())),
                d.alternatives
                    .iter()
                    .map(|h| h.match_id())
                    .collect::<Vec<_>>(),
                d.unknowns,
                d.listener.map(|l| l.key.clone()),
            )
        };
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
            forwarded = out
                .iter()
                .filter(|d| d.outcome == super::super::Outcome::Forward)
                .count();
        }
        assert!(forwarded > reqs.len() / 2, "{forwarded} forwarded");
    }
}
