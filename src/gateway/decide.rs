//! Deciding one request against a [`RouteIndex`]: the spec's decision pipeline.
//!
//! 1. pick the Gateway and the listener (port, protocol, most specific hostname;
//!    SNI for HTTPS, with 421 detection);
//! 2. walk the listener's hostname buckets from the most specific (exact host,
//!    then wildcards by length, then routes without hostnames), each bucket
//!    already sorted by match precedence;
//! 3. the first match that certainly holds wins; matches ranked above it that
//!    depend on attributes the request does not carry are kept as alternatives;
//! 4. the winning rule's action (redirect, forward, 500) gives the outcome.
//!
//! The hot path allocates nothing unless the request is ambiguous or its Host
//! has upper-case letters.

use std::borrow::Cow;

use super::compile::{
    method_code, same_bytes, Bucket, Candidate, CompiledBackend, CompiledGateway, CompiledListener,
    CompiledRoute, CompiledRule, HostLookup, HostTable, MatchCondition, MatchEntry, PathKeys,
    RouteIndex, RouteKind, RuleAction, NO_RECORD,
};
use super::hostname;
use super::matcher::{Truth, ValueCondition};
use super::request::{Lookup, Protocol, Request, Scheme};

/// What happens to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded to a backend.
    Forward,
    /// Answered by the gateway with a redirect.
    Redirect,
    /// No listener accepts the request (404).
    NoListener,
    /// The listener has no matching route (404; gRPC: UNIMPLEMENTED).
    NoRoute,
    /// The matching rule has no usable backend (500; gRPC: UNAVAILABLE).
    Error,
    /// HTTPS request whose Host belongs to another listener than its SNI (421).
    Misdirected,
}

impl Outcome {
    /// The stable string used in JSON and Parquet.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Forward => "forward",
            Outcome::Redirect => "redirect",
            Outcome::NoListener => "no_listener",
            Outcome::NoRoute => "no_route",
            Outcome::Error => "error",
            Outcome::Misdirected => "misdirected",
        }
    }
}

/// A matched rule, as ids into the index it was decided on.
///
/// The decision loop only produces ids (it judges most candidates from the
/// path index's compact records without touching the match, route or rule),
/// and [`RuleHit::entry`], [`RuleHit::route`], [`RuleHit::rule`] and
/// [`RuleHit::listener`] resolve them on demand. Keeping the hit small and
/// lazy keeps the large route objects off the per-record path for callers
/// that only need the outcome.
///
/// Invariant: the ids were validated against `index` when the hit was built
/// (by [`Candidate::new`]), and the index is immutable, so resolving them
/// cannot fail.
#[derive(Clone, Copy)]
pub struct RuleHit<'i> {
    index: &'i RouteIndex,
    match_id: u32,
    route_id: u32,
    rule_pos: u32,
    listener_id: u32,
}

impl<'i> RuleHit<'i> {
    /// The match (its conditions and its position in the route).
    pub fn entry(&self) -> &'i MatchEntry {
        &self.index.matches[self.match_id as usize]
    }

    /// The match's route.
    pub fn route(&self) -> &'i CompiledRoute {
        &self.index.routes[self.route_id as usize]
    }

    /// The match's rule.
    pub fn rule(&self) -> &'i CompiledRule {
        &self.route().rules[self.rule_pos as usize]
    }

    /// The listener the match was found on.
    pub fn listener(&self) -> &'i CompiledListener {
        &self.index.listeners[self.listener_id as usize]
    }

    /// Index of the match in [`RouteIndex::matches`].
    pub fn match_id(&self) -> u32 {
        self.match_id
    }

    /// Index of the route in [`RouteIndex::routes`].
    pub fn route_id(&self) -> u32 {
        self.route_id
    }

    /// Position of the rule in its route's `rules`.
    pub fn rule_pos(&self) -> u32 {
        self.rule_pos
    }

    /// The rule's backends that may serve the request (valid, weight > 0, no
    /// backend-level redirect), in spec order:
    /// [`CompiledBackend::may_serve`] of `rule().backends`, precomputed.
    #[inline]
    pub fn allowed_backends(&self) -> &'i [CompiledBackend] {
        self.index.allowed_backends_of(self.route_id, self.rule_pos)
    }

    fn same_rule(&self, other: &RuleHit<'_>) -> bool {
        self.route_id == other.route_id && self.rule_pos == other.rule_pos
    }
}

impl std::fmt::Debug for RuleHit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleHit")
            .field("route", &self.route().key)
            .field("rule", &self.rule().index)
            .field("match", &self.entry().index)
            .field("listener", &self.listener().key)
            .finish()
    }
}

/// Why the decision could not be made exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Unknowns {
    /// A match depends on the method, which the request does not carry.
    pub method: bool,
    /// A match depends on a header not carried.
    pub headers: bool,
    /// A match depends on the query string, not carried.
    pub query: bool,
}

impl Unknowns {
    /// Whether anything was unknown.
    pub fn any(&self) -> bool {
        self.method || self.headers || self.query
    }

    /// A short reason naming the missing attributes (`"method,headers"`).
    pub fn reason(&self) -> &'static str {
        match (self.method, self.headers, self.query) {
            (false, false, false) => "",
            (true, false, false) => "method",
            (false, true, false) => "headers",
            (false, false, true) => "query",
            (true, true, false) => "method,headers",
            (true, false, true) => "method,query",
            (false, true, true) => "headers,query",
            (true, true, true) => "method,headers,query",
        }
    }
}

/// Why a decision was taken before any rule was reached (the reasons
/// [`Decision::reason`] reads that no rule holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TerminalReason {
    UnknownGateway,
    NoMatchingListener,
    MisdirectedRequest,
    HostDoesNotMatchListener,
}

impl TerminalReason {
    fn as_str(self) -> &'static str {
        match self {
            TerminalReason::UnknownGateway => "UnknownGateway",
            TerminalReason::NoMatchingListener => "NoMatchingListener",
            TerminalReason::MisdirectedRequest => "MisdirectedRequest",
            TerminalReason::HostDoesNotMatchListener => "HostDoesNotMatchListener",
        }
    }
}

/// A decision's alternatives ([`Decision::alternatives`]), read as a slice.
/// Almost every decision has none, so this is one word (no allocation when
/// empty) instead of a `Vec`'s three: a smaller [`Decision`] is less to
/// write per request.
///
/// The `Vec` is boxed on purpose: the box makes the field one pointer; the
/// second allocation is paid only by ambiguous decisions.
#[derive(Debug, Clone, Default)]
#[allow(clippy::box_collection)]
pub struct Alternatives<'i>(Option<Box<Vec<RuleHit<'i>>>>);

impl<'i> Alternatives<'i> {
    fn push(&mut self, hit: RuleHit<'i>) {
        self.0.get_or_insert_with(Box::default).push(hit);
    }
}

impl<'i> std::ops::Deref for Alternatives<'i> {
    type Target = [RuleHit<'i>];

    fn deref(&self) -> &[RuleHit<'i>] {
        self.0.as_deref().map_or(&[][..], |hits| hits.as_slice())
    }
}

impl<'a, 'i> IntoIterator for &'a Alternatives<'i> {
    type Item = &'a RuleHit<'i>;
    type IntoIter = std::slice::Iter<'a, RuleHit<'i>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The engine's decision for one request, borrowing from the index.
#[derive(Debug, Clone)]
pub struct Decision<'i> {
    /// What happens.
    pub outcome: Outcome,
    /// The HTTP status the gateway itself answers (`None` when forwarded).
    pub status: Option<u16>,
    /// The Gateway, when found.
    pub gateway: Option<&'i CompiledGateway>,
    /// The selected listener.
    pub listener: Option<&'i CompiledListener>,
    /// The winning rule.
    pub hit: Option<RuleHit<'i>>,
    /// Rules ranked above the winner whose matches depend on attributes the
    /// request does not carry: each would have won for some value of them.
    pub alternatives: Alternatives<'i>,
    /// Which attributes made the decision ambiguous.
    pub unknowns: Unknowns,
    /// Why a decision taken before any rule was reached was taken; read
    /// through [`Decision::reason`].
    terminal_reason: Option<TerminalReason>,
}

impl<'i> Decision<'i> {
    fn terminal(outcome: Outcome, status: u16, reason: TerminalReason) -> Decision<'i> {
        Decision {
            outcome,
            status: Some(status),
            gateway: None,
            listener: None,
            hit: None,
            alternatives: Alternatives::default(),
            unknowns: Unknowns::default(),
            terminal_reason: Some(reason),
        }
    }

    /// Why the gateway answers itself: for `Error`, the winning rule's
    /// reason (`NoBackends`, `AllBackendsInvalid`, `AllWeightsZero`); for
    /// `NoListener`, `UnknownGateway` or `NoMatchingListener`; for
    /// `Misdirected`, `MisdirectedRequest`; for a `NoRoute` whose Host no
    /// listener of the SNI accepts, `HostDoesNotMatchListener`. `None`
    /// otherwise.
    pub fn reason(&self) -> Option<&'static str> {
        if let Some(reason) = self.terminal_reason {
            return Some(reason.as_str());
        }
        match (self.outcome, self.hit) {
            (Outcome::Error, Some(hit)) => rule_outcome(hit.rule()).2,
            _ => None,
        }
    }

    /// Whether the decision depends on attributes the request did not carry.
    pub fn is_ambiguous(&self) -> bool {
        !self.alternatives.is_empty()
    }

    /// The backends that may serve the request (valid, weight > 0, no
    /// backend-level redirect) over the winner and every alternative.
    ///
    /// Read from the index's per-rule arrays ([`RuleHit::allowed_backends`]),
    /// without touching the routes and rules.
    pub fn allowed_backends(&self) -> impl Iterator<Item = &'i CompiledBackend> + '_ {
        self.hit
            .iter()
            .filter(|_| self.outcome == Outcome::Forward)
            .chain(self.alternatives.iter())
            .flat_map(|h| h.allowed_backends())
    }
}

/// How a hostname bucket is searched for the winning match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BucketScan {
    /// Through the bucket's path index (the default).
    Indexed,
    /// Every match in precedence order, fully evaluated: the reference the
    /// index is checked against.
    Linear,
}

/// The Gateway and listener chosen for a request (step 1), with its
/// normalised Host.
pub(super) struct ListenerSelection<'i, 'r> {
    pub(super) gateway: &'i CompiledGateway,
    /// The usable listeners of the request's port, most specific first.
    pub(super) candidates: &'i [usize],
    /// Position of the chosen listener in `candidates`.
    pub(super) pos: usize,
    /// The Host, normalised ([`hostname::normalize_host`]).
    pub(super) host: Option<Cow<'r, str>>,
    /// [`HostLookup::hash_of`] the normalised Host, when found on the way.
    pub(super) host_hash: Option<u64>,
}

impl<'i> ListenerSelection<'i, '_> {
    /// Index of the chosen listener in [`RouteIndex::listeners`].
    pub(super) fn chosen(&self) -> usize {
        self.candidates[self.pos]
    }
}

impl RouteIndex {
    /// Decides one request.
    pub fn decide<'i>(&'i self, req: &Request<'_>) -> Decision<'i> {
        self.decide_with(req, BucketScan::Indexed)
    }

    /// Decides one request like [`RouteIndex::decide`], but by evaluating every
    /// match of each hostname bucket in precedence order instead of using the
    /// buckets' path index. Slow; it exists so that tests can check that the
    /// index never changes a decision.
    pub fn decide_by_linear_scan<'i>(&'i self, req: &Request<'_>) -> Decision<'i> {
        self.decide_with(req, BucketScan::Linear)
    }

    fn decide_with<'i>(&'i self, req: &Request<'_>, mode: BucketScan) -> Decision<'i> {
        match self.select_listener(req) {
            Ok(selection) => {
                self.prefetch_host_slot(req, &selection);
                let mut keys = PathKeys::empty();
                keys.fill(req.path);
                let hashes = HostHashes {
                    exact: selection.host_hash,
                    wildcard: None,
                };
                self.decide_selected(req, &selection, &keys, hashes, mode)
            }
            Err(terminal) => terminal,
        }
    }

    /// Starts loading the slot where the lookup of the request's Host in the
    /// chosen listener's HTTPRoute table begins, so that the load (usually a
    /// cache miss: the index is far larger than the caches) overlaps finding
    /// the path keys instead of following it. A hint only: the scan does the
    /// lookup (in whichever table serves the request) as before.
    #[inline(always)]
    fn prefetch_host_slot(&self, req: &Request<'_>, selection: &ListenerSelection<'_, '_>) {
        if req.protocol != Protocol::Http {
            return;
        }
        if let (Some(hash), Some(listener)) =
            (selection.host_hash, self.listeners.get(selection.chosen()))
        {
            listener.http.exact.prefetch_home(hash);
        }
    }

    /// Steps 1 of the decision: the Gateway and the listener. `Err` is the
    /// final decision when no listener can serve the request (404, or 421 for
    /// a Host that belongs to another listener than the SNI).
    #[inline(always)]
    pub(super) fn select_listener<'i, 'r>(
        &'i self,
        req: &Request<'r>,
    ) -> Result<ListenerSelection<'i, 'r>, Decision<'i>> {
        let gateway = match (req.gateway, self.gateways.as_slice()) {
            // One Gateway (the common deployment): one comparison.
            (Some(key), [only]) => same_bytes(only.key.as_bytes(), key.as_bytes()).then_some(only),
            // A few Gateways: comparing keys beats hashing one (the last of equal
            // keys, as in `gateway_by_key`).
            (Some(key), _) if self.gateways.len() <= 8 => self
                .gateways
                .iter()
                .rev()
                .find(|g| same_bytes(g.key.as_bytes(), key.as_bytes())),
            (Some(key), _) => self.gateway_by_key.get(key).map(|&g| &self.gateways[g]),
            (None, [only]) => Some(only),
            (None, _) => None,
        };
        let Some(gateway) = gateway else {
            return Err(Decision::terminal(
                Outcome::NoListener,
                404,
                TerminalReason::UnknownGateway,
            ));
        };
        let with_gateway = |mut d: Decision<'i>| {
            d.gateway = Some(gateway);
            d
        };
        let tls = req.scheme == Scheme::Https;
        let Some(candidates) = gateway.listeners_on(req.effective_port(), tls) else {
            return Err(with_gateway(Decision::terminal(
                Outcome::NoListener,
                404,
                TerminalReason::NoMatchingListener,
            )));
        };
        // The normalised Host; when it is the Host as written (the common
        // case), its lookup hash comes from the same pass over its bytes.
        let (host, host_hash) = match req.host {
            Some(raw) => match HostLookup::hash_if_normalized(raw) {
                Some(hash) => (Some(Cow::Borrowed(raw)), Some(hash)),
                None => (Some(hostname::normalize_host(raw)), None),
            },
            None => (None, None),
        };
        let host_str = host.as_deref();
        let listener_matches = |li: usize, name: Option<&str>| match name {
            Some(h) => hostname::matches(self.listeners[li].hostname.as_deref(), h),
            None => self.listeners[li].hostname.is_none(),
        };

        // Listener selection. For HTTPS the SNI picks the listener at handshake
        // time; the Host is then checked against the other listeners on the port
        // (GEP-3567, `gateway_types.go` Listener.Hostname ~lines 395-410).
        // One normalisation per distinct name: the SNI is usually the Host, and
        // then the listener the Host selects is the one the SNI did, so the
        // 421 check below has nothing to compare.
        let mut sni_is_host = false;
        let sni = req.sni.filter(|_| tls).map(|s| match (req.host, &host) {
            (Some(raw), Some(normalized)) if same_bytes(raw.as_bytes(), s.as_bytes()) => {
                sni_is_host = true;
                Cow::Borrowed(normalized.as_ref())
            }
            _ => hostname::normalize_host(s),
        });
        let selector = if tls {
            sni.as_deref().or(host_str)
        } else {
            host_str
        };
        // A listener without a hostname accepts every request, Host or not; when
        // it is the port's only listener (the common deployment) it is chosen
        // without the search.
        let only_listener_takes_all = match candidates {
            [only] => self
                .listeners
                .get(*only)
                .is_some_and(|l| l.hostname.is_none()),
            _ => false,
        };
        let found = if only_listener_takes_all {
            Some(0)
        } else {
            candidates
                .iter()
                .position(|&li| listener_matches(li, selector))
        };
        let Some(pos) = found else {
            return Err(with_gateway(Decision::terminal(
                Outcome::NoListener,
                404,
                TerminalReason::NoMatchingListener,
            )));
        };
        let chosen = candidates[pos];
        if tls && sni.is_some() && host_str.is_some() && !sni_is_host {
            let best_for_host = candidates
                .iter()
                .copied()
                .find(|&li| listener_matches(li, host_str));
            match best_for_host {
                Some(li) if li != chosen => {
                    let mut d = with_gateway(Decision::terminal(
                        Outcome::Misdirected,
                        421,
                        TerminalReason::MisdirectedRequest,
                    ));
                    d.listener = Some(&self.listeners[chosen]);
                    return Err(d);
                }
                None => {
                    let mut d = with_gateway(Decision::terminal(
                        Outcome::NoRoute,
                        404,
                        TerminalReason::HostDoesNotMatchListener,
                    ));
                    d.listener = Some(&self.listeners[chosen]);
                    return Err(d);
                }
                _ => {}
            }
        }

        Ok(ListenerSelection {
            gateway,
            candidates,
            pos,
            host,
            host_hash,
        })
    }

    /// Steps 2-4 of the decision, for a request whose listener is selected,
    /// with the index keys of its path and whatever hashes of its host are
    /// already known.
    ///
    /// Inlined into both callers ([`RouteIndex::decide`] and the batch's last
    /// stage) with the chosen listener's scan: one frame from the request to
    /// its decision in the common case (the fall-through to less specific
    /// listeners is out of line).
    #[inline(always)]
    pub(super) fn decide_selected<'i>(
        &'i self,
        req: &Request<'_>,
        selection: &ListenerSelection<'i, '_>,
        keys: &PathKeys<'_>,
        host_hashes: HostHashes,
        mode: BucketScan,
    ) -> Decision<'i> {
        let ListenerSelection {
            gateway,
            candidates,
            pos,
            ref host,
            ..
        } = *selection;
        let host_str = host.as_deref();
        let chosen = candidates[pos];
        let mut alternatives = Alternatives::default();
        let mut unknowns = Unknowns::default();
        // A path with more segments than the index keeps is matched by a
        // linear scan of each bucket; hostnames are still looked up by hash.
        let hosts_indexed = mode == BucketScan::Indexed;
        let mode = if keys.is_complete() {
            mode
        } else {
            BucketScan::Linear
        };
        let mut scan = TableScan {
            listener_id: chosen as u32,
            req,
            keys,
            mode,
            hosts_indexed,
            host_hashes,
        };
        let mut found =
            self.scan_listener(chosen, host_str, &scan, &mut alternatives, &mut unknowns);
        // Listener isolation: only the chosen listener's routes. Without it, fall
        // through to the less specific listeners that also accept the host.
        if found.is_none() && !self.options.listener_isolation {
            found = self.scan_less_specific_listeners(
                &candidates[pos + 1..],
                host_str,
                &mut scan,
                &mut alternatives,
                &mut unknowns,
            );
        }
        match found {
            Some(c) => {
                let hit = self.hit_of(&c, &scan);
                let (outcome, status) = c.outcome();
                Decision {
                    outcome,
                    status,
                    gateway: Some(gateway),
                    listener: Some(hit.listener()),
                    hit: Some(hit),
                    alternatives,
                    unknowns,
                    terminal_reason: None,
                }
            }
            None => Decision {
                outcome: Outcome::NoRoute,
                status: Some(404),
                gateway: Some(gateway),
                listener: Some(&self.listeners[chosen]),
                hit: None,
                alternatives,
                unknowns,
                terminal_reason: None,
            },
        }
    }

    /// The decision for a request whose winner is `c`, on the listener of
    /// `scan`, after `alternatives` and `unknowns`: what
    /// [`RouteIndex::decide_selected`] builds when it finds a winner (it
    /// writes it out: calling this there changes how `decide` is inlined,
    /// +9 instructions a decision under callgrind).
    #[inline(always)]
    fn won<'i>(
        &'i self,
        gateway: &'i CompiledGateway,
        c: &Candidate,
        scan: &TableScan<'_, '_>,
        alternatives: Alternatives<'i>,
        unknowns: Unknowns,
    ) -> Decision<'i> {
        let hit = self.hit_of(c, scan);
        let (outcome, status) = c.outcome();
        Decision {
            outcome,
            status,
            gateway: Some(gateway),
            listener: Some(hit.listener()),
            hit: Some(hit),
            alternatives,
            unknowns,
            terminal_reason: None,
        }
    }

    /// The decision of [`RouteIndex::decide_selected`] when `c` wins, for an
    /// HTTP request whose path keys are complete and whose chosen
    /// listener's first scanned bucket visits first the keyed group whose
    /// first candidate is `c` (nothing is judged before it); `None` when `c`
    /// does not certainly hold (it loses, or depends on attributes the
    /// request does not carry): the scan then goes on past it, so the
    /// caller decides with `decide_selected`.
    #[inline(always)]
    pub(super) fn decide_by_first_candidate<'i>(
        &'i self,
        req: &Request<'_>,
        selection: &ListenerSelection<'i, '_>,
        keys: &PathKeys<'_>,
        c: &Candidate,
    ) -> Option<Decision<'i>> {
        let scan = TableScan::first_bucket(selection, req, keys);
        let mut alternatives = Alternatives::default();
        let mut unknowns = Unknowns::default();
        if !self.judge(
            c,
            Holds::when_keyed(c),
            &scan,
            &mut alternatives,
            &mut unknowns,
        ) {
            return None;
        }
        Some(self.won(selection.gateway, c, &scan, alternatives, unknowns))
    }

    /// The decision of [`RouteIndex::decide_selected`] when the winner is
    /// one of the candidates of `bucket` that are not keyed by path, for an
    /// HTTP request whose path keys are complete, whose chosen listener's
    /// first scanned bucket is `bucket` and whose path the bucket's keyed
    /// groups do not hold (the scan visits none); `None` when none of those
    /// candidates certainly holds (the scan then goes on to the next
    /// bucket), so the caller decides with `decide_selected`.
    #[inline(always)]
    pub(super) fn decide_by_unkeyed_candidates<'i>(
        &'i self,
        req: &Request<'_>,
        selection: &ListenerSelection<'i, '_>,
        keys: &PathKeys<'_>,
        bucket: &'i Bucket,
    ) -> Option<Decision<'i>> {
        let scan = TableScan::first_bucket(selection, req, keys);
        let mut alternatives = Alternatives::default();
        let mut unknowns = Unknowns::default();
        let c = self.scan_always(bucket, &scan, &mut alternatives, &mut unknowns)?;
        Some(self.won(selection.gateway, &c, &scan, alternatives, unknowns))
    }

    /// Without listener isolation, when the chosen listener has no matching
    /// route: the less specific listeners of the port (`rest`, in order) that
    /// also accept the host, until one has a match. Out of line: isolation is
    /// the default.
    #[inline(never)]
    fn scan_less_specific_listeners<'i>(
        &'i self,
        rest: &[usize],
        host_str: Option<&str>,
        scan: &mut TableScan<'_, '_>,
        alternatives: &mut Alternatives<'i>,
        unknowns: &mut Unknowns,
    ) -> Option<Candidate> {
        for &li in rest {
            let accepts = match host_str {
                Some(h) => hostname::matches(self.listeners[li].hostname.as_deref(), h),
                None => self.listeners[li].hostname.is_none(),
            };
            if !accepts {
                continue;
            }
            scan.listener_id = li as u32;
            let found = self.scan_listener(li, host_str, scan, alternatives, unknowns);
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Scans the route table of listener `li` that serves the request.
    #[inline(always)]
    fn scan_listener<'i>(
        &'i self,
        li: usize,
        host: Option<&str>,
        scan: &TableScan<'_, '_>,
        alternatives: &mut Alternatives<'i>,
        unknowns: &mut Unknowns,
    ) -> Option<Candidate> {
        let listener = self.listeners.get(li)?;
        let table = route_table(listener, scan.req.protocol, host);
        if scan.hosts_indexed && scan.mode == BucketScan::Indexed {
            self.scan_table_indexed(table, host.unwrap_or(""), scan, alternatives, unknowns)
        } else {
            self.scan_table(table, host, scan, alternatives, unknowns)
        }
    }

    /// [`RouteIndex::scan_table`] for the default mode (hashed hostname
    /// lookups, path index), written out: the buckets [`buckets_for`] yields,
    /// in its order (exact host, wildcard suffixes from the longest whose
    /// length the table holds, then routes without hostnames), without the
    /// iterator's state machine.
    fn scan_table_indexed<'i>(
        &'i self,
        table: &'i HostTable,
        host: &str,
        scan: &TableScan<'_, '_>,
        alternatives: &mut Alternatives<'i>,
        unknowns: &mut Unknowns,
    ) -> Option<Candidate> {
        if !host.is_empty() {
            if !table.exact.is_empty() {
                let bucket = match scan.host_hashes.exact {
                    Some(hash) => table.exact_bucket_hashed(host, hash),
                    None => table.exact_bucket(host),
                };
                if let Some(bucket) = bucket {
                    let found = self.scan_indexed(bucket, scan, alternatives, unknowns);
                    if found.is_some() {
                        return found;
                    }
                }
            }
            // As `BucketWalk`: suffixes start after the first byte (a host
            // whose first character is not one byte has none); none at all
            // when the table has no wildcard.
            let mut next_dot = if table.wildcard_lengths == 0 {
                usize::MAX
            } else {
                1
            };
            while let Some(i) = host
                .get(next_dot..)
                .and_then(|rest| hostname::find_dot(rest.as_bytes()))
            {
                let at = next_dot + i;
                next_dot = at + 1;
                if table.wildcard_lengths & (1u64 << (host.len() - at).min(63)) == 0 {
                    continue;
                }
                let suffix = &host[at..];
                let bucket = match scan.host_hashes.wildcard {
                    Some((len, hash)) if len == suffix.len() => {
                        table.wildcard_bucket_hashed(suffix, hash)
                    }
                    _ => table.wildcard_bucket(suffix),
                };
                if let Some(bucket) = bucket {
                    let found = self.scan_indexed(bucket, scan, alternatives, unknowns);
                    if found.is_some() {
                        return found;
                    }
                }
            }
        }
        self.scan_indexed(&table.any, scan, alternatives, unknowns)
    }

    /// Scans the hostname buckets of one table; returns the winner (with its
    /// candidate record) and collects ambiguous alternatives ranked above it.
    fn scan_table<'i>(
        &'i self,
        table: &'i HostTable,
        host: Option<&str>,
        scan: &TableScan<'_, '_>,
        alternatives: &mut Alternatives<'i>,
        unknowns: &mut Unknowns,
    ) -> Option<Candidate> {
        let mut walk = buckets_for(table, host);
        // The reference scan probes every wildcard suffix and finds hostnames by
        // comparing every key, so that comparing it with the indexed scan also
        // checks `HostTable::wildcard_lengths` and the hashed host lookups.
        walk.indexed = scan.hosts_indexed;
        walk.hashes = scan.host_hashes;
        walk.find_map(|bucket| match scan.mode {
            BucketScan::Indexed => self.scan_indexed(bucket, scan, alternatives, unknowns),
            BucketScan::Linear => self.scan_linear(bucket, scan, alternatives, unknowns),
        })
    }

    /// One bucket through its path index: the keyed groups (whose path is known
    /// to hold), then the always candidates; see [`super::compile::PathIndex`].
    fn scan_indexed<'i>(
        &'i self,
        bucket: &'i Bucket,
        scan: &TableScan<'_, '_>,
        alternatives: &mut Alternatives<'i>,
        unknowns: &mut Unknowns,
    ) -> Option<Candidate> {
        let mut judge_keyed = |c: &Candidate| {
            self.judge(c, Holds::when_keyed(c), scan, alternatives, unknowns)
                .then_some(*c)
        };
        // The group's first candidate is read from the key's slot; the rest
        // of the group is loaded only when it does not win.
        let keyed = bucket.index.find_in_keyed_groups(scan.keys, |group| {
            judge_keyed(group.first).or_else(|| group.rest().iter().find_map(&mut judge_keyed))
        });
        if keyed.is_some() {
            return keyed;
        }
        self.scan_always(bucket, scan, alternatives, unknowns)
    }

    /// The end of [`RouteIndex::scan_indexed`], and the batch's stage
    /// decision by unkeyed candidates: the bucket's candidates that are not
    /// keyed by path, in order, until one certainly holds.
    #[inline(always)]
    fn scan_always<'i>(
        &'i self,
        bucket: &'i Bucket,
        scan: &TableScan<'_, '_>,
        alternatives: &mut Alternatives<'i>,
        unknowns: &mut Unknowns,
    ) -> Option<Candidate> {
        for c in bucket.index.always() {
            let holds = if c.always_holds() {
                Holds::Certainly
            } else {
                Holds::Unknown
            };
            if self.judge(c, holds, scan, alternatives, unknowns) {
                return Some(*c);
            }
        }
        None
    }

    /// One bucket, every match in precedence order, fully evaluated.
    fn scan_linear<'i>(
        &'i self,
        bucket: &'i Bucket,
        scan: &TableScan<'_, '_>,
        alternatives: &mut Alternatives<'i>,
        unknowns: &mut Unknowns,
    ) -> Option<Candidate> {
        for &id in &bucket.ids {
            let Some(entry) = self.matches.get(id as usize) else {
                continue;
            };
            let Some(c) = Candidate::new(id, entry, &self.routes, NO_RECORD) else {
                continue;
            };
            // The reference: every match evaluated from its match object (no
            // compact record, no method-code shortcut).
            if self.judge_by_entry(&c, Holds::Unknown, scan, alternatives, unknowns) {
                return Some(c);
            }
        }
        None
    }

    /// Judges one candidate: true when it certainly holds (`holds`, or by
    /// evaluation), so that it wins; a match that depends on unknown
    /// attributes is recorded as an alternative.
    ///
    /// A candidate that certainly holds is judged from its compact record
    /// alone: the match, route and rule objects are not touched (the hit
    /// resolves them on demand); one with method, header or query conditions
    /// from its compact condition record when it has one.
    #[inline(always)]
    fn judge<'i>(
        &'i self,
        c: &Candidate,
        holds: Holds,
        scan: &TableScan<'_, '_>,
        alternatives: &mut Alternatives<'i>,
        unknowns: &mut Unknowns,
    ) -> bool {
        if holds == Holds::Certainly {
            return true;
        }
        // A lone standard-method condition is decided from the codes, without
        // the match object, once the path is known to hold and the request
        // carries a method (an absent method is unknown: evaluated below, so
        // that it is recorded as such).
        if let Some((code, root)) = c.lone_method() {
            if let Some(req_code) = scan.method_code() {
                if holds == Holds::PathOnly || root {
                    return req_code == Some(code);
                }
            }
        }
        if let Some(record) = c.record_for(holds == Holds::PathOnly) {
            return self.judge_by_record(c, record, scan, alternatives, unknowns);
        }
        self.judge_by_entry(c, holds, scan, alternatives, unknowns)
    }

    /// The hit a candidate gives on the listener of `scan`.
    #[inline(always)]
    fn hit_of<'i>(&'i self, c: &Candidate, scan: &TableScan<'_, '_>) -> RuleHit<'i> {
        RuleHit {
            index: self,
            match_id: c.id,
            route_id: c.route,
            rule_pos: c.rule_pos,
            listener_id: scan.listener_id,
        }
    }

    /// Records a candidate whose match depends on unknown attributes as an
    /// alternative, once per rule.
    fn note_alternative<'i>(
        &'i self,
        c: &Candidate,
        scan: &TableScan<'_, '_>,
        alternatives: &mut Alternatives<'i>,
    ) {
        let hit = self.hit_of(c, scan);
        if !alternatives.iter().any(|a| a.same_rule(&hit)) {
            alternatives.push(hit);
        }
    }

    /// [`RouteIndex::judge`] for a candidate judged from its compact
    /// condition record (its path condition known to hold): as
    /// [`RouteIndex::judge_by_entry`], without the match object.
    #[inline(never)]
    fn judge_by_record<'i>(
        &'i self,
        c: &Candidate,
        record: u32,
        scan: &TableScan<'_, '_>,
        alternatives: &mut Alternatives<'i>,
        unknowns: &mut Unknowns,
    ) -> bool {
        let judged = self.conditions.eval(record, scan.req, scan.method_code());
        match judged.truth {
            Truth::No => false,
            Truth::Yes => true,
            Truth::Unknown => {
                unknowns.method |= judged.method_unknown;
                unknowns.headers |= judged.headers_unknown;
                unknowns.query |= judged.query_unknown;
                self.note_alternative(c, scan, alternatives);
                false
            }
        }
    }

    /// [`RouteIndex::judge`] for a candidate that needs its match object
    /// evaluated (out of line: the common candidates are judged without it).
    #[inline(never)]
    fn judge_by_entry<'i>(
        &'i self,
        c: &Candidate,
        holds: Holds,
        scan: &TableScan<'_, '_>,
        alternatives: &mut Alternatives<'i>,
        unknowns: &mut Unknowns,
    ) -> bool {
        let Some(entry) = self.matches.get(c.id as usize) else {
            return false;
        };
        let truth = match (holds, &entry.condition) {
            (Holds::PathOnly, MatchCondition::Http(m)) => m.eval_given_path(scan.req),
            (_, MatchCondition::Http(m)) => m.eval(scan.req),
            (_, MatchCondition::Grpc(m)) => m.eval(scan.req),
        };
        match truth {
            Truth::No => false,
            Truth::Yes => true,
            Truth::Unknown => {
                note_unknowns(entry, scan.req, unknowns);
                self.note_alternative(c, scan, alternatives);
                false
            }
        }
    }

    /// Every match the winner had to beat, in precedence order, with how it
    /// evaluated: what `explain` shows a person. Cold path (allocates).
    pub fn considered<'i>(
        &'i self,
        req: &Request<'_>,
        decision: &Decision<'i>,
    ) -> Vec<(&'i MatchEntry, Truth)> {
        let mut out = Vec::new();
        let Some(listener) = decision.listener else {
            return out;
        };
        let host = req.host.map(hostname::normalize_host);
        let table = route_table(listener, req.protocol, host.as_deref());
        let winner = decision.hit.map(|h| h.match_id());
        for bucket in buckets_for(table, host.as_deref()) {
            for &id in &bucket.ids {
                let entry = &self.matches[id as usize];
                if Some(id) == winner {
                    return out;
                }
                let truth = match &entry.condition {
                    MatchCondition::Http(m) => m.eval(req),
                    MatchCondition::Grpc(m) => m.eval(req),
                };
                out.push((entry, truth));
            }
        }
        out
    }
}

/// What is already known about a candidate before [`RouteIndex::judge`]
/// evaluates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holds {
    /// Nothing: evaluate the whole match.
    Unknown,
    /// Its path condition holds (the path index found it under the request
    /// path's key); evaluate the method, header and query conditions.
    PathOnly,
    /// The whole match holds (path established, no other condition).
    Certainly,
}

impl Holds {
    /// What is known of a candidate found under the request path's key.
    #[inline(always)]
    fn when_keyed(c: &Candidate) -> Holds {
        if c.holds_when_keyed() {
            Holds::Certainly
        } else {
            Holds::PathOnly
        }
    }
}

/// What one table scan judges against: the listener, the request and its
/// path keys, and how buckets are searched.
struct TableScan<'r, 'k> {
    /// Index of the listener in [`RouteIndex::listeners`].
    listener_id: u32,
    req: &'r Request<'r>,
    keys: &'k PathKeys<'r>,
    /// How each bucket is searched.
    mode: BucketScan,
    /// Whether hostnames are found through the table's hashed lookup and
    /// wildcard-length mask (the reference scan compares every key).
    hosts_indexed: bool,
    /// Host hashes computed before the scan.
    host_hashes: HostHashes,
}

impl<'r, 'k> TableScan<'r, 'k> {
    /// The scan of the chosen listener's first bucket in the default mode,
    /// as the batch's stages take it (hashes are not needed: the bucket is
    /// already found).
    #[inline(always)]
    fn first_bucket(
        selection: &ListenerSelection<'_, '_>,
        req: &'r Request<'r>,
        keys: &'k PathKeys<'r>,
    ) -> Self {
        TableScan {
            listener_id: selection.chosen() as u32,
            req,
            keys,
            mode: BucketScan::Indexed,
            hosts_indexed: true,
            host_hashes: HostHashes::default(),
        }
    }
}

impl TableScan<'_, '_> {
    /// The request method's [`method_code`]: `None` when the method is
    /// unknown, `Some(None)` for a method without a code. Computed when a
    /// candidate needs it (a method condition), not per request: most
    /// decisions are won by a candidate without one.
    #[inline]
    fn method_code(&self) -> Option<Option<u8>> {
        self.req.method.map(method_code)
    }
}

/// Hashes ([`super::compile::HostLookup::hash_of`]) of the normalised host
/// and of one of its wildcard suffixes, when the caller computed them already
/// ([`RouteIndex::decide_batch`] does, to prefetch). A hash depends only on
/// the string, not on the table, so it serves every table the host is looked
/// up in.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct HostHashes {
    /// The host's hash.
    pub(super) exact: Option<u64>,
    /// `(suffix length, hash)` of a wildcard suffix (`.example.com`) of the host.
    pub(super) wildcard: Option<(usize, u64)>,
}

/// The route table a request is matched against: gRPC requests use the
/// GRPCRoutes that serve their host, and fall back to HTTPRoutes when no
/// GRPCRoute does (an HTTPRoute may carry gRPC traffic; the two kinds are never
/// merged for precedence, `grpcroute_types.go` ~line 126).
fn route_table<'t>(
    listener: &'t CompiledListener,
    protocol: Protocol,
    host: Option<&str>,
) -> &'t HostTable {
    let grpc_serves_host = || buckets_for(&listener.grpc, host).any(|b| !b.ids.is_empty());
    if protocol == Protocol::Grpc && grpc_serves_host() {
        &listener.grpc
    } else {
        &listener.http
    }
}

/// The hostname buckets a request host reaches, most specific first: the exact
/// host, then wildcards from the longest suffix (`*.b.example.com` before
/// `*.example.com`), then routes without hostnames. Lazy, allocation-free.
fn buckets_for<'t, 'h>(table: &'t HostTable, host: Option<&'h str>) -> BucketWalk<'t, 'h> {
    BucketWalk {
        table,
        host: host.unwrap_or(""),
        next_dot: 0,
        stage: WalkStage::Exact,
        indexed: true,
        hashes: HostHashes::default(),
    }
}

/// Iterator state of [`buckets_for`].
struct BucketWalk<'t, 'h> {
    table: &'t HostTable,
    host: &'h str,
    /// Where to look for the next `.` in `host`.
    next_dot: usize,
    stage: WalkStage,
    /// Skip wildcard suffixes whose length no wildcard bucket has
    /// ([`HostTable::wildcard_lengths`]) and find buckets through the hashed
    /// lookups; when false (the reference scan), probe every suffix and find
    /// buckets by comparing every key.
    indexed: bool,
    /// Host hashes already computed (used when `indexed`).
    hashes: HostHashes,
}

impl<'t> BucketWalk<'t, '_> {
    fn exact(&self) -> Option<&'t Bucket> {
        if self.indexed {
            match self.hashes.exact {
                Some(hash) => self.table.exact_bucket_hashed(self.host, hash),
                None => self.table.exact_bucket(self.host),
            }
        } else {
            let at = self.table.exact.get_by_scan(self.host)?;
            self.table.buckets.get(at as usize)
        }
    }

    fn wildcard(&self, suffix: &str) -> Option<&'t Bucket> {
        if self.indexed {
            match self.hashes.wildcard {
                Some((len, hash)) if len == suffix.len() => {
                    self.table.wildcard_bucket_hashed(suffix, hash)
                }
                _ => self.table.wildcard_bucket(suffix),
            }
        } else {
            let at = self.table.wildcard.get_by_scan(suffix)?;
            self.table.buckets.get(at as usize)
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WalkStage {
    Exact,
    Wildcards,
    Any,
    Done,
}

impl<'t> Iterator for BucketWalk<'t, '_> {
    type Item = &'t Bucket;

    fn next(&mut self) -> Option<&'t Bucket> {
        loop {
            match self.stage {
                WalkStage::Exact => {
                    self.stage = WalkStage::Wildcards;
                    self.next_dot = 1;
                    if self.host.is_empty() {
                        self.stage = WalkStage::Any;
                    } else if self.table.wildcard.is_empty() {
                        self.stage = WalkStage::Any;
                        if let Some(b) = self.exact() {
                            return Some(b);
                        }
                    } else if let Some(b) = self.exact() {
                        return Some(b);
                    }
                }
                WalkStage::Wildcards => {
                    let rest = self.host.get(self.next_dot..).unwrap_or("");
                    match memchr::memchr(b'.', rest.as_bytes()) {
                        None => self.stage = WalkStage::Any,
                        Some(i) => {
                            let at = self.next_dot + i;
                            self.next_dot = at + 1;
                            let len_bit = 1u64 << (self.host.len() - at).min(63);
                            if self.indexed && self.table.wildcard_lengths & len_bit == 0 {
                                continue;
                            }
                            if let Some(b) = self.wildcard(&self.host[at..]) {
                                return Some(b);
                            }
                        }
                    }
                }
                WalkStage::Any => {
                    self.stage = WalkStage::Done;
                    return Some(&self.table.any);
                }
                WalkStage::Done => return None,
            }
        }
    }
}

/// Records which unknown attributes a `Truth::Unknown` match depends on.
///
/// A header counts only when its own lookup is unknown: a header the log does
/// carry (in `known`) is decided even when `others_unknown` is set, so it must
/// not be named as a reason for the ambiguity.
fn note_unknowns(entry: &MatchEntry, req: &Request<'_>, unknowns: &mut Unknowns) {
    let header_unknown = |headers: &[(String, ValueCondition)]| {
        headers
            .iter()
            .any(|(name, _)| req.headers.get(name) == Lookup::Unknown)
    };
    match &entry.condition {
        MatchCondition::Http(m) => {
            unknowns.method |= m.method.is_some() && req.method.is_none();
            unknowns.query |= !m.query.is_empty() && req.query.is_none();
            unknowns.headers |= header_unknown(&m.headers);
        }
        MatchCondition::Grpc(m) => {
            unknowns.headers |= header_unknown(&m.headers);
        }
    }
}

/// The outcome of a winning rule, before any per-request redirect details.
/// Precomputed per match by the path index ([`Candidate`]).
pub(crate) fn rule_outcome(rule: &CompiledRule) -> (Outcome, Option<u16>, Option<&'static str>) {
    match &rule.action {
        RuleAction::Redirect => (
            Outcome::Redirect,
            rule.redirect.as_ref().map(|r| r.status_code),
            None,
        ),
        RuleAction::Error { reason } => (Outcome::Error, Some(500), Some(reason)),
        RuleAction::Forward { .. } => {
            // Backend-level RequestRedirect (Extended): when every backend that can
            // be picked redirects, the request is answered by the gateway.
            let mut picked = rule
                .backends
                .iter()
                .filter(|b| b.is_valid() && b.weight > 0);
            let first = picked.clone().next();
            match first.and_then(|b| b.redirect.as_ref()) {
                Some(r) if picked.all(|b| b.redirect.is_some()) => {
                    (Outcome::Redirect, Some(r.status_code), None)
                }
                _ => (Outcome::Forward, None, None),
            }
        }
    }
}

/// The redirect target a decision answers with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RedirectTarget {
    /// Scheme.
    pub scheme: String,
    /// Host (no port).
    pub host: String,
    /// Port; `None` when it is the scheme's default and so left out of Location.
    pub port: Option<u16>,
    /// Path.
    pub path: String,
    /// Status code.
    pub status_code: u16,
}

/// A URL rewrite applied before forwarding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RewriteTarget {
    /// New Host, when rewritten.
    pub host: Option<String>,
    /// New path, when rewritten.
    pub path: Option<String>,
}

impl Decision<'_> {
    /// The redirect this decision answers with, computed for `req`.
    ///
    /// Location = scheme (filter or request) + host (filter or request Host
    /// without port) + port + path. Port: explicit wins; else, if the filter sets
    /// a scheme, that scheme's well-known port; else the listener port. Port 80
    /// for http and 443 for https are left out (`httproute_types.go`
    /// HTTPRequestRedirectFilter, ~line 1209).
    pub fn redirect(&self, req: &Request<'_>) -> Option<RedirectTarget> {
        if self.outcome != Outcome::Redirect {
            return None;
        }
        let hit = self.hit?;
        let rule = hit.rule();
        let spec = rule.redirect.as_ref().or_else(|| {
            rule.backends
                .iter()
                .find(|b| b.is_valid() && b.weight > 0)
                .and_then(|b| b.redirect.as_ref())
        })?;
        let scheme = spec
            .scheme
            .clone()
            .unwrap_or_else(|| req.scheme.as_str().to_string());
        let host = spec.hostname.clone().unwrap_or_else(|| {
            req.host
                .map(|h| hostname::normalize_host(h).into_owned())
                .unwrap_or_default()
        });
        let port = spec.port.unwrap_or(match spec.scheme.as_deref() {
            Some("https") => 443,
            Some(_) => 80,
            None => hit.listener().port,
        });
        let default_port = (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
        let path = match &spec.path {
            Some(p) => apply_path_rewrite(p, hit.entry(), req.path),
            None => req.path.to_string(),
        };
        Some(RedirectTarget {
            scheme,
            host,
            port: (!default_port).then_some(port),
            path,
            status_code: spec.status_code,
        })
    }

    /// The URL rewrite applied when forwarding (rule-level, else the backend's
    /// when every weighted backend carries the same one).
    pub fn rewrite(&self, req: &Request<'_>) -> Option<RewriteTarget> {
        if self.outcome != Outcome::Forward {
            return None;
        }
        let hit = self.hit?;
        let rule = hit.rule();
        let spec = rule.rewrite.as_ref().or_else(|| {
            rule.backends
                .iter()
                .find(|b| b.is_valid() && b.weight > 0)
                .and_then(|b| b.rewrite.as_ref())
        })?;
        Some(RewriteTarget {
            host: spec.hostname.clone(),
            path: spec
                .path
                .as_ref()
                .map(|p| apply_path_rewrite(p, hit.entry(), req.path)),
        })
    }
}

/// Applies a path modifier. `ReplacePrefixMatch` replaces whole matched segments:
/// `/foo/bar` with prefix `/foo` and replacement `/xyz` gives `/xyz/bar`; a
/// replacement of `/` gives `/bar` (`httproute_types.go`, table at ~line 1190).
pub fn apply_path_rewrite(
    rewrite: &super::compile::PathRewrite,
    entry: &MatchEntry,
    path: &str,
) -> String {
    use super::compile::PathRewrite;
    use super::matcher::PathCondition;
    match rewrite {
        PathRewrite::Full(p) => p.clone(),
        PathRewrite::Prefix(replacement) => {
            let prefix = match &entry.condition {
                MatchCondition::Http(m) => match &m.path {
                    PathCondition::Prefix(p) if p != "/" => p.as_str(),
                    _ => "",
                },
                MatchCondition::Grpc(_) => "",
            };
            let rest = path.get(prefix.len()..).unwrap_or("");
            let base = replacement.trim_end_matches('/');
            let joined: Cow<'_, str> = if rest.is_empty() {
                Cow::Borrowed(if base.is_empty() { "/" } else { base })
            } else if base.is_empty() {
                Cow::Borrowed(rest)
            } else {
                Cow::Owned(format!("{base}{rest}"))
            };
            if joined.starts_with('/') {
                joined.into_owned()
            } else {
                format!("/{joined}")
            }
        }
    }
}

impl RouteKind {
    /// The status a gRPC client sees for an outcome, when relevant.
    pub fn grpc_status(outcome: Outcome) -> Option<&'static str> {
        match outcome {
            Outcome::NoRoute | Outcome::NoListener => Some("UNIMPLEMENTED"),
            Outcome::Error => Some("UNAVAILABLE"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::load::load_text;
    use crate::gateway::{CompileOptions, Headers, ObjectSet};
    use crate::synth::{self, SynthSpec};

    /// A decision fits one cache line: `decide_batch` writes one per
    /// request, and a second line per decision costs a write miss.
    #[test]
    fn a_decision_fits_a_cache_line() {
        assert!(std::mem::size_of::<Decision<'_>>() <= 64);
    }

    /// The alternatives read as the hits pushed, in order; none without a
    /// push.
    #[test]
    fn alternatives_read_as_pushed() {
        let config = synth::generate(&SynthSpec::small());
        let index = RouteIndex::compile(&config.objects, CompileOptions::default());
        let hit = |match_id: u32| RuleHit {
            index: &index,
            match_id,
            route_id: 0,
            rule_pos: 0,
            listener_id: 0,
        };
        let mut alternatives = Alternatives::default();
        assert!(alternatives.is_empty());
        alternatives.push(hit(3));
        alternatives.push(hit(1));
        let ids: Vec<u32> = alternatives.iter().map(|h| h.match_id()).collect();
        assert_eq!(ids, [3, 1]);
        assert_eq!((&alternatives).into_iter().count(), 2);
    }

    /// Every rule's precomputed serving backends against the filter over its
    /// backends that `allowed_backends` applied before; returns how many were
    /// compared.
    fn check_allowed_backends(index: &RouteIndex) -> usize {
        let mut compared = 0;
        for (r, route) in index.routes.iter().enumerate() {
            for (p, rule) in route.rules.iter().enumerate() {
                let want: Vec<&str> = rule
                    .backends
                    .iter()
                    .filter(|b| b.is_valid() && b.weight > 0 && b.redirect.is_none())
                    .map(|b| b.key.as_str())
                    .collect();
                let got: Vec<&str> = index
                    .allowed_backends_of(r as u32, p as u32)
                    .iter()
                    .map(|b| b.key.as_str())
                    .collect();
                assert_eq!(got, want, "{} rule {p}", route.key);
                compared += rule.backends.len();
            }
            let past_the_end = index.allowed_backends_of(r as u32, route.rules.len() as u32);
            assert!(past_the_end.is_empty(), "{}", route.key);
        }
        assert!(index
            .allowed_backends_of(index.routes.len() as u32, 0)
            .is_empty());
        compared
    }

    /// On the synthetic configuration (header, method and query conditions,
    /// most judged from compact records), `decide` agrees with the reference
    /// scan, which evaluates every match object, also when the method, the
    /// query string or the headers are unknown, as in access logs: same
    /// winner, alternatives and unknowns.
    #[test]
    fn compact_conditions_decide_as_the_match_objects() {
        let config = synth::generate(&SynthSpec::small());
        let index = RouteIndex::compile(&config.objects, CompileOptions::default());
        let specs = synth::requests(&config, 800, 11);
        let pairs: Vec<Vec<(&str, &str)>> = specs.iter().map(|s| s.header_pairs()).collect();
        let summary = |d: &Decision<'_>| {
            (
                d.outcome,
                d.status,
                d.hit.map(|h| h.match_id()),
                d.alternatives
                    .iter()
                    .map(|h| h.match_id())
                    .collect::<Vec<_>>(),
                d.unknowns,
            )
        };
        let (mut ambiguous, mut conditional_wins) = (0, 0);
        for (spec, pairs) in specs.iter().zip(&pairs) {
            let full = spec
                .to_request(pairs)
                .expect("synthetic requests are valid");
            let first_header = &pairs[..pairs.len().min(1)];
            let variants = [
                full,
                Request {
                    method: None,
                    ..full
                },
                Request {
                    query: None,
                    ..full
                },
                Request {
                    headers: Headers {
                        known: first_header,
                        others_unknown: true,
                    },
                    ..full
                },
                Request {
                    method: None,
                    query: None,
                    headers: Headers {
                        known: &[],
                        others_unknown: true,
                    },
                    ..full
                },
            ];
            for req in &variants {
                let d = index.decide(req);
                assert_eq!(
                    summary(&d),
                    summary(&index.decide_by_linear_scan(req)),
                    "{req:?}"
                );
                ambiguous += usize::from(d.is_ambiguous());
                if let Some(MatchCondition::Http(m)) = d.hit.map(|h| &h.entry().condition) {
                    conditional_wins += usize::from(!m.headers.is_empty() || !m.query.is_empty());
                }
            }
        }
        assert!(ambiguous > 100, "{ambiguous} ambiguous decisions");
        assert!(conditional_wins > 50, "{conditional_wins} conditional wins");
    }

    /// The per-rule arrays behind `Decision::allowed_backends` hold exactly
    /// the backends a rule may send to (valid, weight > 0, no backend-level
    /// redirect), in spec order: on the synthetic configuration, the demo and
    /// every engine test case (invalid refs, zero weights, backend redirects).
    #[test]
    fn allowed_backends_are_each_rules_serving_backends() {
        let config = synth::generate(&SynthSpec::small());
        let index = RouteIndex::compile(&config.objects, CompileOptions::default());
        assert!(check_allowed_backends(&index) > 100);

        let root = env!("CARGO_MANIFEST_DIR");
        let mut demo = ObjectSet::default();
        for file in ["gateway.yaml", "routes.yaml", "services.yaml"] {
            let path = format!("{root}/demo/manifests/{file}");
            let text = std::fs::read_to_string(&path).expect("demo manifests");
            load_text(&mut demo, &path, &text).expect("demo manifests load");
        }
        let index = RouteIndex::compile(&demo, CompileOptions::default());
        assert!(check_allowed_backends(&index) > 5);
        let dropped = index
            .routes
            .iter()
            .flat_map(|r| &r.rules)
            .flat_map(|rule| &rule.backends)
            .filter(|b| !b.may_serve())
            .count();
        assert!(dropped > 0, "the demo has a backend that cannot serve");

        let mut cases = 0;
        for entry in std::fs::read_dir(format!("{root}/tests/cases")).expect("test cases") {
            let path = entry.expect("test case").path();
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("test case");
            let case: serde_yaml::Value = serde_yaml::from_str(&text).expect("test case yaml");
            let Some(manifests) = case.get("manifests").and_then(|m| m.as_str()) else {
                continue;
            };
            let mut set = ObjectSet::default();
            load_text(&mut set, &path.to_string_lossy(), manifests).expect("case manifests");
            check_allowed_backends(&RouteIndex::compile(&set, CompileOptions::default()));
            cases += 1;
        }
        assert!(cases > 20, "{cases} cases");
    }
}
