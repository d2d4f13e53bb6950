//! The per-bucket path index: which matches of a hostname bucket can accept a
//! request path, in the bucket's precedence order, without scanning the bucket.
//!
//! A bucket's matches are sorted by precedence (see [`super::precedence_key`]):
//! every `Exact` path, then every `PathPrefix` from the longest value to the
//! shortest, the root prefix `/` last among them, then regular expressions.
//! For a request path `P`:
//!
//! * an `Exact` match can only accept `P` when its value is `P`;
//! * a `PathPrefix` value `V` (stored without a trailing `/`) accepts `P`
//!   exactly when `P` starts with `V` and the next byte of `P` is `/` or the end,
//!   i.e. `V` is one of the *ancestor prefixes* of `P` cut at a `/` boundary;
//! * the root prefix, regexes and gRPC matches can accept any path.
//!
//! So the index groups `Exact` and non-root `PathPrefix` matches by their
//! value in a small open-addressing table, each group in bucket order, and keeps
//! the remaining matches ("always" candidates) in bucket order. A lookup visits
//! the `Exact` group of `P`, then the `PathPrefix` group of each ancestor prefix
//! of `P` from the longest to the shortest, then the always candidates. That is
//! the bucket order restricted to matches whose path condition can hold: the
//! index only *skips* matches whose path certainly rejects `P`, it never
//! reorders. [`PathIndex::build`] checks the ordering assumption and falls back
//! to "everything is an always candidate" (a plain ordered scan) if a bucket
//! ever violates it.
//!
//! Keys are found by a 64-bit hash of the key bytes ([`PathKeys`] computes it
//! per request only for the lengths a bucket holds, see the length masks) and
//! confirmed by comparing the bytes, so a hash collision can never produce a
//! false match.

use super::conditions::NO_RECORD;
use super::{CompiledRoute, MatchCondition, MatchEntry};
use crate::gateway::decide::Outcome;
use crate::gateway::matcher::PathCondition;
use crate::gateway::prefetch::prefetch;

/// Key kind of an `Exact` path value.
const KIND_EXACT: u32 = 0;
/// Key kind of a non-root `PathPrefix` value.
const KIND_PREFIX: u32 = 1;

/// Candidate flag: the match has no method, header or query condition, so it
/// holds as soon as its path condition does.
const PATH_ONLY: u8 = 1;
/// Candidate flag: the path condition is the root prefix `/`, which accepts
/// every path.
const ROOT_PREFIX: u8 = 2;
/// Candidate flags from this bit up: the [`method_code`] of a match whose only
/// condition besides a plain (non-regex) path is a standard method; 0 when the
/// match has no such lone method condition.
const METHOD_SHIFT: u8 = 3;

/// A small code for the standard methods (1-9), or `None` for any other
/// string. Method matching is exact and case-sensitive (compiled methods are
/// upper case), so two codes are equal exactly when the strings are, and a
/// request method without a code never equals a match method with one.
#[inline]
pub fn method_code(method: &str) -> Option<u8> {
    Some(match method {
        "GET" => 1,
        "HEAD" => 2,
        "POST" => 3,
        "PUT" => 4,
        "DELETE" => 5,
        "CONNECT" => 6,
        "OPTIONS" => 7,
        "TRACE" => 8,
        "PATCH" => 9,
        _ => return None,
    })
}

/// How many `/` boundaries of a request path [`PathKeys`] keeps. A path with
/// more is decided by a plain ordered scan instead (still exact, just slower).
pub const MAX_PATH_BOUNDARIES: usize = 16;

/// One match as the decision loop needs it: where it lives, precomputed
/// from its rule, what the rule does when it wins, and where its compact
/// condition record is (20 bytes, contiguous per bucket, so a candidate is
/// judged without touching the match, route or rule unless it has a regex or
/// conditions too unusual for a record, see [`super::conditions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Match id (index into [`super::RouteIndex::matches`]).
    pub id: u32,
    /// Route index (into [`super::RouteIndex::routes`]).
    pub route: u32,
    /// Position of the match's rule in the route's `rules` vector.
    pub rule_pos: u32,
    /// Status the rule answers with (0 = none: forwarded).
    status: u16,
    /// The rule's outcome when it wins.
    outcome: Outcome,
    /// `PATH_ONLY` | `ROOT_PREFIX` | method code << `METHOD_SHIFT`.
    flags: u8,
    /// Offset of the match's record in [`super::CompactConditions`], or
    /// [`NO_RECORD`].
    record: u32,
}

impl Candidate {
    /// The candidate for match `id` whose compact condition record is at
    /// `record` ([`NO_RECORD`]: none), or `None` when its rule is missing from
    /// the compiled route (such a match can never produce a hit).
    pub fn new(
        id: u32,
        entry: &MatchEntry,
        routes: &[CompiledRoute],
        record: u32,
    ) -> Option<Candidate> {
        let route = routes.get(entry.route as usize)?;
        let rule_pos = rule_position(route, entry.rule as usize)?;
        let (outcome, status, _) = crate::gateway::decide::rule_outcome(&route.rules[rule_pos]);
        let mut flags = 0;
        if let MatchCondition::Http(m) = &entry.condition {
            let plain_path = !matches!(m.path, PathCondition::Regex(..));
            if plain_path && m.headers.is_empty() && m.query.is_empty() {
                match m.method.as_deref().map(method_code) {
                    None => flags |= PATH_ONLY,
                    Some(Some(code)) => flags |= code << METHOD_SHIFT,
                    Some(None) => {}
                }
            }
            if matches!(&m.path, PathCondition::Prefix(p) if p == "/") {
                flags |= ROOT_PREFIX;
            }
        }
        Some(Candidate {
            id,
            route: entry.route,
            rule_pos: u32::try_from(rule_pos).ok()?,
            status: status.unwrap_or(0),
            outcome,
            flags,
            record,
        })
    }

    /// The offset of the match's compact condition record, when it has one
    /// and it applies to a request whose path condition is known to hold
    /// (`path_holds`, as the path index establishes for keyed candidates) or
    /// whose path condition is the root prefix (which always holds).
    #[inline]
    pub fn record_for(&self, path_holds: bool) -> Option<u32> {
        (self.record != NO_RECORD && (path_holds || self.flags & ROOT_PREFIX != 0))
            .then_some(self.record)
    }

    /// Whether the match certainly holds once the index has established that its
    /// path key is the request path (or one of its ancestor prefixes).
    #[inline]
    pub fn holds_when_keyed(&self) -> bool {
        self.flags & PATH_ONLY != 0
    }

    /// For a match whose only condition besides a plain path is a standard
    /// method: that method's [`method_code`], and whether the path condition is
    /// the root prefix (which holds for every path).
    #[inline]
    pub fn lone_method(&self) -> Option<(u8, bool)> {
        let code = self.flags >> METHOD_SHIFT;
        (code != 0).then_some((code, self.flags & ROOT_PREFIX != 0))
    }

    /// Whether the match certainly holds for every request (root prefix, no
    /// other condition).
    #[inline]
    pub fn always_holds(&self) -> bool {
        self.flags & (PATH_ONLY | ROOT_PREFIX) == PATH_ONLY | ROOT_PREFIX
    }

    /// The rule's outcome and the status the gateway answers with, if any.
    #[inline]
    pub fn outcome(&self) -> (Outcome, Option<u16>) {
        (self.outcome, (self.status != 0).then_some(self.status))
    }
}

/// Position in `route.rules` of the rule with spec index `index`. A route that
/// keeps matches in the index compiled every rule, so it is almost always at
/// position `index`; the scan keeps this correct regardless.
pub fn rule_position(route: &CompiledRoute, index: usize) -> Option<usize> {
    match route.rules.get(index) {
        Some(rule) if rule.index == index => Some(index),
        _ => route.rules.iter().position(|r| r.index == index),
    }
}

/// One key lookup of [`PathIndex::find_in_keyed_groups`]: the request
/// path's `Exact` key or one of its prefix keys, with its hash. It lets the
/// lookup be split into steps ([`PathIndex::first_probe`], then
/// [`PathIndex::first_group`]) with the slot's load in between.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyProbe {
    hash: u64,
    kind: u32,
    /// The key's length: the path's for `Exact`, the prefix's otherwise.
    len: usize,
}

/// How many leading key bytes a [`KeySlot`] holds itself: what is left of
/// its 64 bytes after the other fields (12 bytes of length and group, 20 of
/// candidate), so that confirming a key of up to 32 bytes (nearly all path
/// keys) touches neither [`PathIndex::key_rests`] nor the second line of the
/// bucket that holds its address.
const HEAD: usize = 32;

/// One slot of a bucket's key table (one 64-byte cache line; `end == 0`
/// marks an empty slot). The slot holds the first [`HEAD`] bytes of its key,
/// so confirming a key of up to 32 bytes touches no other memory (longer
/// keys compare their rest in [`PathIndex::key_rests`]), and a
/// copy of the key's first candidate, so that a group whose first candidate
/// wins (most: a plain path match) is decided without loading
/// [`PathIndex::candidates`].
///
/// No hash tag: a probe compares the length and kind, then the head's bytes
/// (the first word differs for nearly every other key of the same length),
/// which leaves the tag's four bytes to the head.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct KeySlot {
    /// `len << 1 | kind`.
    len_kind: u32,
    /// The key's candidates: `candidates[start..end]`.
    start: u32,
    end: u32,
    /// The key's first bytes, zero-padded.
    head: [u8; HEAD],
    /// `candidates[start]`, copied.
    first: Candidate,
}

impl Default for KeySlot {
    fn default() -> Self {
        KeySlot {
            len_kind: 0,
            start: 0,
            end: 0,
            head: [0; HEAD],
            first: Candidate {
                id: 0,
                route: 0,
                rule_pos: 0,
                status: 0,
                outcome: Outcome::NoRoute,
                flags: 0,
                record: NO_RECORD,
            },
        }
    }
}

/// One keyed group as a lookup finds it: its first candidate (the copy in
/// the key's slot) and where the others are. [`KeyedGroup::rest`] finds
/// them only when asked: their address is in the bucket's second cache line,
/// which a decision won by the first candidate (most) never loads.
#[derive(Debug, Clone, Copy)]
pub struct KeyedGroup<'a> {
    /// The group's first candidate.
    pub first: &'a Candidate,
    /// The index the group belongs to.
    index: &'a PathIndex,
    /// The group is `index.candidates[start..end]`.
    start: u32,
    end: u32,
}

impl<'a> KeyedGroup<'a> {
    /// The group's other candidates, in bucket order.
    #[inline]
    pub fn rest(&self) -> &'a [Candidate] {
        if self.end - self.start <= 1 {
            return &[];
        }
        self.index
            .candidates
            .get(self.start as usize + 1..self.end as usize)
            .unwrap_or(&[])
    }

    /// Every candidate of the group, in bucket order.
    pub fn iter(&self) -> impl Iterator<Item = &'a Candidate> + 'a {
        std::iter::once(self.first).chain(self.rest())
    }
}

// A slot is exactly one cache line: `HEAD` fills the rest of it.
const _: () = assert!(std::mem::size_of::<KeySlot>() == 64);

impl KeySlot {
    /// Whether the slot's key is `value` (whose length and kind already
    /// match); the slot is at position `at` of `index`'s table. `index` is
    /// read only for a key longer than [`HEAD`], out of line, so that the
    /// bucket's line holding the address of its [`PathIndex::key_rests`] is
    /// not loaded for the others (inline, the load was hoisted out of the
    /// probe loop).
    #[inline]
    fn holds(&self, value: &[u8], index: &PathIndex, at: usize) -> bool {
        if value.len() < HEAD {
            // The stored key has `value`'s length, and the head is
            // zero-padded past it: its words compare with the value's
            // words, the last one zero-padded.
            let full = value.len() / 8 * 8;
            let mut word = 0;
            while word < full {
                if full_word(&self.head, word) != full_word(value, word) {
                    return false;
                }
                word += 8;
            }
            return full == value.len() || full_word(&self.head, full) == tail_word(value, full);
        }
        // The whole head: four 8-byte comparisons.
        if full_word(&self.head, 0) != full_word(value, 0)
            || full_word(&self.head, 8) != full_word(value, 8)
            || full_word(&self.head, 16) != full_word(value, 16)
            || full_word(&self.head, 24) != full_word(value, 24)
        {
            return false;
        }
        if value.len() == HEAD {
            return true;
        }
        index.holds_rest(at, &value[HEAD..])
    }
}

/// The bytes past [`HEAD`] of the key in slot `slot` of a table, for a key
/// longer than that.
#[derive(Debug, Clone)]
struct KeyRest {
    slot: u32,
    bytes: Box<[u8]>,
}

/// The path index of one hostname bucket (see the module documentation).
///
/// `repr(C)`, with what every lookup reads first (the filter, the length
/// masks and the slot table) in its first 64 bytes: [`super::Bucket`] is
/// cache-line aligned and starts with its index, so a lookup whose first
/// probed group wins touches one line of the bucket, not two or three.
#[derive(Debug, Clone, Default)]
#[repr(C)]
pub struct PathIndex {
    /// A 256-bit filter over the keys' hashes: bit [`filter_position`] of
    /// every key's hash is set, so a probe whose bit is clear is skipped
    /// without touching the table (a set bit means "maybe", as for the length
    /// masks).
    key_filter: [u64; 4],
    /// Which `Exact` key lengths the table holds ([`length_bit`] of each), so a
    /// lookup skips the probe for a length no key has.
    exact_lengths: u64,
    /// Which `PathPrefix` key lengths the table holds: most ancestor prefixes
    /// of a request path are skipped without touching the table.
    prefix_lengths: u64,
    /// Open-addressing table (linear probing, power-of-two length, at most half
    /// full); empty when the bucket has no `Exact`/`PathPrefix` match.
    slots: Box<[KeySlot]>,
    /// The bytes past [`HEAD`] of the keys longer than that, by slot
    /// position (ascending).
    key_rests: Box<[KeyRest]>,
    /// Candidates: one group per key (each in bucket order), then the always
    /// candidates (in bucket order) from `always_start` on.
    candidates: Box<[Candidate]>,
    always_start: u32,
}

/// The word and bit of a key hash in [`PathIndex::key_filter`]: from its top
/// eight bits (the low bits pick the slot, so the two are independent
/// enough).
#[inline]
fn filter_position(hash: u64) -> (usize, u64) {
    let bit = (hash >> 56) as usize;
    (bit >> 6, 1u64 << (bit & 63))
}

/// Whether `filter` may hold a key whose hash is `hash`.
#[inline]
fn filter_may_hold(filter: &[u64; 4], hash: u64) -> bool {
    let (word, bit) = filter_position(hash);
    filter[word] & bit != 0
}

/// The bit of a key length in [`PathIndex`]'s length masks: bit `len` for
/// lengths below 63, bit 63 for every longer one (a filter: a set bit means
/// "maybe", a clear bit means "no key of this length").
#[inline]
fn length_bit(len: usize) -> u64 {
    1u64 << len.min(63)
}

/// The key of a match in the index, or `None` for an always candidate.
fn key_of(entry: &MatchEntry) -> Option<(u32, &str)> {
    match &entry.condition {
        MatchCondition::Http(m) => match &m.path {
            PathCondition::Exact(v) => Some((KIND_EXACT, v.as_str())),
            PathCondition::Prefix(v) if v != "/" => Some((KIND_PREFIX, v.as_str())),
            _ => None,
        },
        MatchCondition::Grpc(_) => None,
    }
}

/// Whether visiting keyed groups (exact, then prefixes by decreasing length),
/// then the always candidates, preserves the order of `keyed` (the bucket's
/// matches in precedence order, with their keys).
fn order_is_indexable(keyed: &[(Candidate, Option<(u32, &str)>)]) -> bool {
    // Rank: exact 0, prefix 1, always 2; must not decrease, and prefix lengths
    // must not increase.
    let rank = |k: &Option<(u32, &str)>| match k {
        Some((KIND_EXACT, _)) => (0u8, 0usize),
        Some((_, v)) => (1, usize::MAX - v.len()),
        None => (2, 0),
    };
    keyed.windows(2).all(|w| rank(&w[0].1) <= rank(&w[1].1))
}

impl PathIndex {
    /// Builds the index of a bucket whose match `ids` are in precedence order.
    /// `records` gives each match id's compact condition record
    /// ([`super::CompactConditions::build`]).
    pub fn build(
        ids: &[u32],
        matches: &[MatchEntry],
        routes: &[CompiledRoute],
        records: &[u32],
    ) -> PathIndex {
        let mut keyed: Vec<(Candidate, Option<(u32, &str)>)> = ids
            .iter()
            .filter_map(|&id| {
                let entry = matches.get(id as usize)?;
                let record = records.get(id as usize).copied().unwrap_or(NO_RECORD);
                Some((Candidate::new(id, entry, routes, record)?, key_of(entry)))
            })
            .collect();
        let (Ok(_), true) = (u32::try_from(keyed.len()), order_is_indexable(&keyed)) else {
            // Not expected from the precedence sort; stay exact with an ordered scan.
            for (_, key) in &mut keyed {
                *key = None;
            }
            return PathIndex::from_groups(Vec::new(), &keyed);
        };
        // Group keyed candidates by key, keeping first-appearance order of keys
        // and bucket order within each group.
        let mut group_of: std::collections::HashMap<(u32, &str), usize> =
            std::collections::HashMap::new();
        let mut groups: Vec<((u32, &str), Vec<Candidate>)> = Vec::new();
        for (cand, key) in &keyed {
            if let Some(key) = key {
                let g = *group_of.entry(*key).or_insert_with(|| {
                    groups.push((*key, Vec::new()));
                    groups.len() - 1
                });
                groups[g].1.push(*cand);
            }
        }
        PathIndex::from_groups(groups, &keyed)
    }

    fn from_groups(
        groups: Vec<((u32, &str), Vec<Candidate>)>,
        keyed: &[(Candidate, Option<(u32, &str)>)],
    ) -> PathIndex {
        let table_len = if groups.is_empty() {
            0
        } else {
            (groups.len() * 2).next_power_of_two()
        };
        let mask = table_len.wrapping_sub(1);
        let mut slots = vec![KeySlot::default(); table_len];
        let mut key_rests = Vec::new();
        let mut candidates = Vec::with_capacity(keyed.len());
        let (mut exact_lengths, mut prefix_lengths) = (0u64, 0u64);
        let mut key_filter = [0u64; 4];
        for ((kind, value), group) in groups {
            if kind == KIND_EXACT {
                exact_lengths |= length_bit(value.len());
            } else {
                prefix_lengths |= length_bit(value.len());
            }
            let hash = key_hash(value.as_bytes(), kind);
            let (word, bit) = filter_position(hash);
            key_filter[word] |= bit;
            let mut head = [0u8; HEAD];
            let head_len = value.len().min(HEAD);
            head[..head_len].copy_from_slice(&value.as_bytes()[..head_len]);
            let slot = KeySlot {
                len_kind: (value.len() as u32) << 1 | kind,
                start: candidates.len() as u32,
                end: (candidates.len() + group.len()) as u32,
                head,
                first: group[0],
            };
            candidates.extend(group);
            let mut i = hash as usize & mask;
            while slots[i].end != 0 {
                i = (i + 1) & mask;
            }
            slots[i] = slot;
            if let Some(rest) = value.as_bytes().get(HEAD..).filter(|r| !r.is_empty()) {
                key_rests.push(KeyRest {
                    slot: i as u32,
                    bytes: rest.into(),
                });
            }
        }
        key_rests.sort_unstable_by_key(|r| r.slot);
        let always_start = candidates.len() as u32;
        candidates.extend(keyed.iter().filter(|(_, k)| k.is_none()).map(|(c, _)| *c));
        PathIndex {
            slots: slots.into_boxed_slice(),
            key_rests: key_rests.into_boxed_slice(),
            candidates: candidates.into_boxed_slice(),
            always_start,
            exact_lengths,
            prefix_lengths,
            key_filter,
        }
    }

    /// The candidates of key (`kind`, `value`) whose hash is `hash`.
    #[inline(always)]
    fn group(&self, hash: u64, kind: u32, value: &[u8]) -> Option<KeyedGroup<'_>> {
        if self.slots.is_empty() || !filter_may_hold(&self.key_filter, hash) {
            return None;
        }
        let mask = self.slots.len() - 1;
        let len_kind = (value.len() as u32) << 1 | kind;
        let mut i = hash as usize & mask;
        loop {
            let slot = &self.slots[i];
            if slot.end == 0 {
                return None;
            }
            if slot.len_kind == len_kind && slot.holds(value, self, i) {
                return Some(self.keyed_group(&slot.first, slot.start, slot.end));
            }
            i = (i + 1) & mask;
        }
    }

    /// Whether the key in slot `at` continues past [`HEAD`] with `rest`
    /// (out of line: keys longer than [`HEAD`] bytes are rare).
    #[cold]
    #[inline(never)]
    fn holds_rest(&self, at: usize, rest: &[u8]) -> bool {
        self.key_rests
            .binary_search_by_key(&(at as u32), |r| r.slot)
            .ok()
            .and_then(|found| self.key_rests.get(found))
            .is_some_and(|stored| same_bytes(&stored.bytes, rest))
    }

    /// The group `candidates[start..end]` whose first candidate is `first`.
    #[inline]
    fn keyed_group<'a>(&'a self, first: &'a Candidate, start: u32, end: u32) -> KeyedGroup<'a> {
        KeyedGroup {
            first,
            index: self,
            start,
            end: end.max(start),
        }
    }

    /// The candidates that may accept the request path of `keys`, as groups,
    /// passed to `visit` until it returns `Some`: the `Exact` group, then the
    /// `PathPrefix` groups from the longest ancestor to the shortest. Every
    /// candidate in them has its path condition satisfied (see
    /// [`Candidate::holds_when_keyed`]). Followed by [`PathIndex::always`], this
    /// is the bucket's precedence order with only matches whose path certainly
    /// rejects the request left out.
    ///
    /// `keys` must be complete ([`PathKeys::is_complete`]).
    #[inline]
    pub fn find_in_keyed_groups<T>(
        &self,
        keys: &PathKeys<'_>,
        mut visit: impl FnMut(KeyedGroup<'_>) -> Option<T>,
    ) -> Option<T> {
        if self.slots.is_empty() {
            return None;
        }
        let path = keys.path.as_bytes();
        if self.exact_lengths & length_bit(path.len()) != 0 {
            let exact = self.group(keys.exact_hash(), KIND_EXACT, path);
            if let Some(exact) = exact {
                if let Some(found) = visit(exact) {
                    return Some(found);
                }
            }
        }
        for (len, hash) in keys.prefix_lengths(self.prefix_lengths) {
            let value = path.get(..len).unwrap_or_default();
            let group = self.group(hash, KIND_PREFIX, value);
            if let Some(group) = group {
                if let Some(found) = visit(group) {
                    return Some(found);
                }
            }
        }
        None
    }

    /// The first key [`PathIndex::find_in_keyed_groups`] looks up in the
    /// slot table for `keys` (length and filter bits set), or `None` when it
    /// looks up none (no keyed group can hold the path, or `keys` are
    /// incomplete).
    #[inline]
    pub(crate) fn first_probe(&self, keys: &PathKeys<'_>) -> Option<KeyProbe> {
        if !keys.is_complete() {
            return None;
        }
        self.probe_after(keys, None)
    }

    /// Prefetch hint: starts loading the slot where the lookup of `probe`
    /// begins.
    #[inline]
    pub(crate) fn prefetch_probe(&self, probe: &KeyProbe) {
        if let Some(slot) = self
            .slots
            .get(probe.hash as usize & self.slots.len().wrapping_sub(1))
        {
            prefetch(slot);
        }
    }

    /// The first group [`PathIndex::find_in_keyed_groups`] visits for
    /// `keys`, given its first lookup `first` ([`PathIndex::first_probe`]):
    /// `first`'s group, else that of the first key after it that the
    /// table holds.
    #[inline]
    pub(crate) fn first_group(
        &self,
        keys: &PathKeys<'_>,
        first: KeyProbe,
    ) -> Option<KeyedGroup<'_>> {
        let path = keys.path.as_bytes();
        let mut probe = Some(first);
        while let Some(p) = probe {
            let value = path.get(..p.len).unwrap_or_default();
            if let Some(group) = self.group(p.hash, p.kind, value) {
                return Some(group);
            }
            probe = self.probe_after(keys, Some(p));
        }
        None
    }

    /// The key [`PathIndex::find_in_keyed_groups`] looks up in the slot
    /// table after `after` (`None`: the first), in its order: the `Exact`
    /// key, then the prefixes from the longest; only keys whose length and
    /// filter bits are set. Always inlined: each caller then keeps only
    /// its own case of `after` (plain `#[inline]` left it a call).
    #[inline(always)]
    fn probe_after(&self, keys: &PathKeys<'_>, after: Option<KeyProbe>) -> Option<KeyProbe> {
        if self.slots.is_empty() {
            return None;
        }
        let below = match after {
            None => {
                let len = keys.path.len();
                if self.exact_lengths & length_bit(len) != 0 {
                    let hash = keys.exact_hash();
                    if filter_may_hold(&self.key_filter, hash) {
                        return Some(KeyProbe {
                            hash,
                            kind: KIND_EXACT,
                            len,
                        });
                    }
                }
                usize::MAX
            }
            Some(p) if p.kind == KIND_EXACT => usize::MAX,
            Some(p) => p.len,
        };
        keys.prefix_lengths_below(self.prefix_lengths, below)
            .find(|&(_, hash)| filter_may_hold(&self.key_filter, hash))
            .map(|(len, hash)| KeyProbe {
                hash,
                kind: KIND_PREFIX,
                len,
            })
    }

    /// Whether judging the candidate needs its match object (conditions
    /// without a compact record: a regex, a non-standard method), unless a
    /// candidate before it wins first.
    #[inline]
    pub(crate) fn needs_entry_when_keyed(c: &Candidate) -> bool {
        !c.holds_when_keyed() && c.lone_method().is_none() && c.record_for(true).is_none()
    }

    /// The candidates that are not keyed by path, in bucket order.
    #[inline]
    pub fn always(&self) -> &[Candidate] {
        self.candidates
            .get(self.always_start as usize..)
            .unwrap_or(&[])
    }
}

const HASH_SEED: u64 = 0x243f_6a88_85a3_08d3;
const HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline]
fn absorb(h: u64, word: u64) -> u64 {
    #[cfg(test)]
    WORDS_HASHED.with(|n| n.set(n.get() + 1));
    (h ^ word).wrapping_mul(HASH_MUL).rotate_left(31)
}

#[cfg(test)]
thread_local! {
    /// Test-only: how many words [`absorb`] has hashed on this thread, so
    /// that tests can pin how much hashing a lookup costs without timing it.
    static WORDS_HASHED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The state with the length and the kind mixed in: one multiply, whose
/// high half is well mixed (every word was already multiplied in by
/// [`absorb`]), folded onto the low half so that both halves are (the path
/// index takes a slot from the low bits and its filter bit from the high
/// ones; [`super::HostLookup`] the other way round). Cheaper than
/// Murmur3's finaliser (two multiplies, three shifts), which a request pays
/// for its Host and each path key it probes.
#[inline]
fn finish(h: u64, len: usize, kind: u32) -> u64 {
    let x = (h ^ ((len as u64) << 1 | u64::from(kind))).wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 32)
}

/// The bytes of `bytes` from `at` to the end (fewer than 8), little-endian,
/// zero-padded. Without a variable-length copy (which costs a `memcpy` call):
/// one overlapping 8-byte load when the slice is long enough.
#[inline]
fn tail_word(bytes: &[u8], at: usize) -> u64 {
    let rest = bytes.len() - at;
    if rest == 0 {
        0
    } else if bytes.len() >= 8 {
        full_word(bytes, bytes.len() - 8) >> (8 * (8 - rest))
    } else {
        bytes[at..]
            .iter()
            .rev()
            .fold(0u64, |w, &b| (w << 8) | u64::from(b))
    }
}

#[inline]
fn full_word(bytes: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(buf)
}

/// `a == b`, word by word and inline (keys are short; a `memcmp` call costs
/// more than the comparison).
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let full = a.len() / 8 * 8;
    let mut at = 0;
    while at < full {
        if full_word(a, at) != full_word(b, at) {
            return false;
        }
        at += 8;
    }
    tail_word(a, full) == tail_word(b, full)
}

/// The hash of a key value: 8-byte words absorbed in order, the zero-padded
/// tail, then length and kind. [`PathKeys`] computes the same function for
/// every ancestor prefix of a path in one pass.
pub(super) fn key_hash(value: &[u8], kind: u32) -> u64 {
    key_hash_visiting(value, kind, |_| {})
}

/// [`key_hash`], handing every word it absorbs (the whole words, then the
/// zero-padded tail) to `visit` too: for a caller that checks the bytes in
/// the same pass.
#[inline(always)]
pub(super) fn key_hash_visiting(value: &[u8], kind: u32, mut visit: impl FnMut(u64)) -> u64 {
    let full = value.len() / 8;
    let mut h = HASH_SEED;
    for w in 0..full {
        let word = full_word(value, w * 8);
        visit(word);
        h = absorb(h, word);
    }
    if value.len() % 8 > 0 {
        let word = tail_word(value, full * 8);
        visit(word);
        h = absorb(h, word);
    }
    finish(h, value.len(), kind)
}

/// The index keys of one request path, found once per request and reused for
/// every bucket it is looked up in: the whole path (for `Exact`) and every
/// ancestor prefix cut before a `/` or at the end (for `PathPrefix`). Prefixes
/// ending in `/` are left out: no stored prefix value ends in `/` except the
/// root, which is an always candidate.
///
/// One SWAR pass over the path's 8-byte words finds where the prefixes end:
/// below byte 64 as one bit per length (`short`), so that a bucket's length
/// mask selects the lengths worth probing with one AND; from byte 64 on in a
/// short list. The hashes ([`key_hash`]) of keys shorter than 64 bytes are
/// computed only for the lengths a bucket may hold, when it is probed (most
/// prefixes of a path are never hashed; each costs at most 8 words). Keys of
/// 64 bytes or more (the long prefixes and, for a path of 64 bytes or more,
/// the `Exact` key) are hashed once per request, in one incremental pass over
/// the path when it is filled, and the probes reuse those hashes: hashing a
/// request's keys costs O(path length) once, however many buckets it is
/// looked up in and however many long keys they hold (all long lengths share
/// one bit of the length masks, so per-probe hashing would hash every long
/// cut in every bucket with one long key).
#[derive(Debug, Clone)]
pub struct PathKeys<'p> {
    path: &'p str,
    /// Bit `len` set: the prefix of length `len` (below 64) is a key.
    short: u64,
    /// Lengths of the prefixes of 64 bytes or more, shortest first.
    long: [u16; MAX_PATH_BOUNDARIES],
    /// `key_hash(path[..long[i]], KIND_PREFIX)`, for the first `long_count`
    /// (when the keys are complete).
    long_hashes: [u64; MAX_PATH_BOUNDARIES],
    /// `key_hash(path, KIND_EXACT)` when the path is 64 bytes or longer (and
    /// the keys are complete); unused for shorter paths.
    long_exact_hash: u64,
    long_count: u8,
    complete: bool,
}

/// `0x2f` (`/`) in every byte.
const SLASHES: u64 = 0x2f2f_2f2f_2f2f_2f2f;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;
/// Gathers the high bits of a word's eight bytes (`x >> 7`, one bit per
/// byte at bit `8k`) into the top byte, byte `k` at bit `56 + k`: the
/// partial products never overlap, so nothing carries.
const GATHER: u64 = 0x0102_0408_1020_4080;

/// The high bit of every byte of `word` that is `/` (exact: no false
/// positives, unlike the borrow-based zero-byte trick).
#[inline]
fn slash_bits(word: u64) -> u64 {
    let x = word ^ SLASHES;
    !(((x & LOW7) + LOW7) | x) & HIGH
}

/// One bit per byte of a word's high-bit mask (`HIGH`-aligned, as
/// [`slash_bits`] gives): bit `k` for byte `k`.
#[inline]
fn byte_mask(high_bits: u64) -> u64 {
    ((high_bits >> 7).wrapping_mul(GATHER)) >> 56
}

impl<'p> PathKeys<'p> {
    /// Finds the keys of `path` in one pass over its 8-byte words (no
    /// allocation).
    pub fn new(path: &'p str) -> PathKeys<'p> {
        let mut keys = PathKeys::empty();
        keys.fill(path);
        keys
    }

    /// The keys of the empty path, to be [`PathKeys::fill`]ed.
    pub fn empty() -> PathKeys<'p> {
        PathKeys {
            path: "",
            short: 0,
            long: [0; MAX_PATH_BOUNDARIES],
            long_hashes: [0; MAX_PATH_BOUNDARIES],
            long_exact_hash: 0,
            long_count: 0,
            complete: true,
        }
    }

    /// Replaces the keys with those of `path`, in place ([`PathKeys::new`]
    /// without moving the result).
    pub fn fill(&mut self, path: &'p str) {
        let bytes = path.as_bytes();
        let n = bytes.len();
        self.path = path;
        self.short = 0;
        self.long_count = 0;
        // Lengths are kept as `u16`: a longer path is scanned, not indexed.
        self.complete = u16::try_from(n).is_ok();
        if !self.complete {
            return;
        }
        // 0x80 when the byte before the current word is a `/` (a `/` right
        // after it is a doubled slash, not a cut); set at the start so that
        // the leading `/` is not a cut either.
        let mut carry = 0x80;
        let mut at = 0;
        let mut short = 0u64;
        // The words wholly below byte 64: their cuts are bits of `short`.
        while at + 8 <= n.min(64) {
            let slashes = slash_bits(full_word(bytes, at));
            short |= byte_mask(slashes & !((slashes << 8) | carry)) << at;
            carry = (slashes >> 63) << 7;
            at += 8;
        }
        if at < n.min(64) {
            // The zero-padded tail (a zero byte is no `/`).
            let slashes = slash_bits(tail_word(bytes, at));
            short |= byte_mask(slashes & !((slashes << 8) | carry)) << at;
        }
        self.short = short;
        if n >= 64 {
            self.fill_long(bytes, carry);
        } else if n > 0 && bytes[n - 1] != b'/' {
            // The whole path is a prefix key unless it ends with `/`.
            self.short |= 1 << n;
        }
    }

    /// [`PathKeys::fill`] of a path of 64 bytes or more, from byte 64 on
    /// (`carry` as after the word at byte 56): the cuts (and the whole path
    /// unless it ends with `/`) go to the `long` list, then
    /// [`PathKeys::hash_long_keys`] hashes them.
    #[cold]
    fn fill_long(&mut self, bytes: &[u8], mut carry: u64) {
        let n = bytes.len();
        let mut at = 64;
        while at < n {
            let word = if at + 8 <= n {
                full_word(bytes, at)
            } else {
                tail_word(bytes, at)
            };
            let slashes = slash_bits(word);
            let mut cuts = slashes & !((slashes << 8) | carry);
            while cuts != 0 {
                let offset = (cuts.trailing_zeros() / 8) as usize;
                cuts &= cuts - 1;
                self.push_long(at + offset);
            }
            carry = (slashes >> 63) << 7;
            at += 8;
        }
        // The whole path is a prefix key unless it ends with `/`.
        if bytes[n - 1] != b'/' {
            self.push_long(n);
        }
        if self.complete {
            self.hash_long_keys(bytes);
        }
    }

    /// Hashes the long prefix keys and the `Exact` key of `bytes` (the path,
    /// 64 bytes or more) in one pass: the words are absorbed in order once,
    /// and at each cut the state so far absorbs the cut's partial word (zero
    /// padded, as [`key_hash`] pads its tail) and is finished with the cut's
    /// length; so each hash equals [`key_hash`] of its key.
    fn hash_long_keys(&mut self, bytes: &[u8]) {
        let count = usize::from(self.long_count);
        let mut h = HASH_SEED;
        let mut at = 0;
        for (len, hash) in self.long[..count].iter().zip(&mut self.long_hashes) {
            let len = usize::from(*len);
            while at + 8 <= len {
                h = absorb(h, full_word(bytes, at));
                at += 8;
            }
            let state = if at < len {
                absorb(h, tail_word(&bytes[..len], at))
            } else {
                h
            };
            *hash = finish(state, len, KIND_PREFIX);
        }
        let n = bytes.len();
        while at + 8 <= n {
            h = absorb(h, full_word(bytes, at));
            at += 8;
        }
        if at < n {
            h = absorb(h, tail_word(bytes, at));
        }
        self.long_exact_hash = finish(h, n, KIND_EXACT);
    }

    /// `key_hash(path, KIND_EXACT)`: hashed now for a path shorter than 64
    /// bytes (at most 8 words), taken from [`PathKeys::fill`]'s pass for a
    /// longer one.
    #[inline]
    fn exact_hash(&self) -> u64 {
        let path = self.path.as_bytes();
        if path.len() < 64 {
            key_hash(path, KIND_EXACT)
        } else {
            self.long_exact_hash
        }
    }

    /// Notes a prefix key of length `len` (64 or more, below `u16::MAX`,
    /// checked by [`PathKeys::fill`]); past [`MAX_PATH_BOUNDARIES`] of them
    /// the keys are incomplete.
    fn push_long(&mut self, len: usize) {
        match self.long.get_mut(usize::from(self.long_count)) {
            Some(slot) => {
                *slot = len as u16;
                self.long_count += 1;
            }
            None => self.complete = false,
        }
    }

    /// The lengths and hashes of the ancestor prefixes whose [`length_bit`]
    /// is in `lengths` (a bucket's mask), longest first.
    #[inline]
    fn prefix_lengths(&self, lengths: u64) -> PrefixLengths<'_> {
        let count = if lengths & length_bit(64) != 0 {
            usize::from(self.long_count)
        } else {
            0
        };
        PrefixLengths {
            path: self.path.as_bytes(),
            long: &self.long[..count],
            long_hashes: &self.long_hashes[..count],
            short: self.short & lengths,
        }
    }

    /// [`PathKeys::prefix_lengths`] of the prefixes shorter than `below`.
    #[inline]
    fn prefix_lengths_below(&self, lengths: u64, below: usize) -> PrefixLengths<'_> {
        let mut lengths = self.prefix_lengths(lengths);
        let keep = lengths
            .long
            .partition_point(|&len| usize::from(len) < below);
        lengths.long = lengths.long.get(..keep).unwrap_or_default();
        lengths.long_hashes = lengths.long_hashes.get(..keep).unwrap_or_default();
        if below < 64 {
            lengths.short &= (1u64 << below) - 1;
        }
        lengths
    }

    /// False when the path has more than [`MAX_PATH_BOUNDARIES`] `/`
    /// boundaries from byte 64 on (or is 64 KiB or longer): the index cannot
    /// be used, scan the bucket.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// `(length, hash)` of the ancestor prefixes, longest first.
    #[cfg(test)]
    fn prefixes(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.prefix_lengths(u64::MAX)
    }
}

/// Iterator of [`PathKeys::prefix_lengths`], `(length, hash)`: the long
/// lengths from the end of their list with their hashes (computed by
/// [`PathKeys::fill`]), then the bits of the short mask from the highest,
/// each hashed now (at most 8 words).
struct PrefixLengths<'k> {
    path: &'k [u8],
    long: &'k [u16],
    long_hashes: &'k [u64],
    short: u64,
}

impl Iterator for PrefixLengths<'_> {
    type Item = (usize, u64);

    #[inline]
    fn next(&mut self) -> Option<(usize, u64)> {
        if let (Some((&last, rest)), Some((&hash, hashes))) =
            (self.long.split_last(), self.long_hashes.split_last())
        {
            self.long = rest;
            self.long_hashes = hashes;
            return Some((usize::from(last), hash));
        }
        if self.short == 0 {
            return None;
        }
        let len = 63 - self.short.leading_zeros() as usize;
        self.short &= !(1u64 << len);
        let value = self.path.get(..len).unwrap_or_default();
        Some((len, key_hash(value, KIND_PREFIX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_keys_hash_like_stored_keys() {
        let path = "/api/v1/users/12345678/orders";
        let keys = PathKeys::new(path);
        assert!(keys.is_complete());
        let got: Vec<(usize, u64)> = keys.prefixes().collect();
        let want: Vec<(usize, u64)> = [29, 22, 13, 7, 4]
            .iter()
            .map(|&n| (n, key_hash(&path.as_bytes()[..n], KIND_PREFIX)))
            .collect();
        assert_eq!(got, want);
    }

    /// The prefix lengths byte by byte: before every `/` that is not the
    /// first byte and does not follow a `/`, and the whole path unless it
    /// ends with `/`; longest first.
    fn naive_prefix_lengths(path: &str) -> Vec<usize> {
        let b = path.as_bytes();
        let mut lens: Vec<usize> = (1..b.len())
            .filter(|&i| b[i] == b'/' && b[i - 1] != b'/')
            .collect();
        if !b.is_empty() && b[b.len() - 1] != b'/' {
            lens.push(b.len());
        }
        lens.reverse();
        lens
    }

    /// The SWAR pass finds the prefixes the byte-by-byte rule finds, for cuts
    /// at every position in a word, at word boundaries, in the tail and
    /// around byte 64 (where the bit mask hands over to the list), and a
    /// bucket's length mask selects exactly the lengths whose bit it holds.
    #[test]
    fn prefix_lengths_are_the_cuts_of_the_path() {
        let mut paths: Vec<String> = [
            "/abcdefg/hijklmn/opq",
            "/abcdef/ghijklmno/pqrstuvw/x",
            "/a/b/c/d/e/f/g/h/i/j",
            "/abcdefghijklmno",
            "/abcdefghijklmnop/",
            "/abcdefg",
            "abcdefgh/ijklmnop",
            "/é/ü/Straße/x",
            "/a//b///c",
            "/",
            "",
            "//",
            "/a/",
        ]
        .iter()
        .map(|p| p.to_string())
        .collect();
        for n in 56..=72 {
            for cut in [n - 1, n, n + 1] {
                let mut p: Vec<u8> = std::iter::once(b'/')
                    .chain(std::iter::repeat_n(b'x', n))
                    .collect();
                if let Some(b) = p.get_mut(cut) {
                    *b = b'/';
                }
                paths.push(String::from_utf8(p).expect("ascii"));
            }
            paths.push(format!("/{}/", "y".repeat(n)));
            paths.push(format!("{}/z", "/a".repeat(n / 2)));
        }
        for path in &paths {
            let keys = PathKeys::new(path);
            assert!(keys.is_complete(), "{path}");
            let lens: Vec<usize> = keys.prefixes().map(|(n, _)| n).collect();
            assert_eq!(lens, naive_prefix_lengths(path), "{path}");
            for (n, hash) in keys.prefixes() {
                let want = key_hash(&path.as_bytes()[..n], KIND_PREFIX);
                assert_eq!(hash, want, "{path} prefix {n}");
            }
            assert_eq!(
                keys.exact_hash(),
                key_hash(path.as_bytes(), KIND_EXACT),
                "{path}"
            );
            for mask in [0, length_bit(3), length_bit(63), 0x5555_5555_5555_5555] {
                let got: Vec<usize> = keys.prefix_lengths(mask).map(|(n, _)| n).collect();
                let want: Vec<usize> = naive_prefix_lengths(path)
                    .into_iter()
                    .filter(|&n| mask & length_bit(n) != 0)
                    .collect();
                assert_eq!(got, want, "{path} {mask:x}");
            }
        }
    }

    #[test]
    fn trailing_and_double_slashes_are_not_prefix_keys() {
        let keys = PathKeys::new("/a//b/");
        let lens: Vec<usize> = keys.prefixes().map(|(n, _)| n).collect();
        assert_eq!(lens, vec![5, 2]);
        let root = PathKeys::new("/");
        assert_eq!(root.prefixes().count(), 0);
        let relative = PathKeys::new("abc/d");
        let lens: Vec<usize> = relative.prefixes().map(|(n, _)| n).collect();
        assert_eq!(lens, vec![5, 3]);
    }

    #[test]
    fn word_helpers_match_byte_semantics() {
        let text = b"/abcdefghijklmnopq";
        for start in 0..text.len() {
            let bytes = &text[start..];
            for at in (0..=bytes.len()).filter(|at| bytes.len() - at < 8) {
                let mut want = [0u8; 8];
                want[..bytes.len() - at].copy_from_slice(&bytes[at..]);
                assert_eq!(tail_word(bytes, at), u64::from_le_bytes(want));
            }
            for end in 0..=bytes.len() {
                assert!(same_bytes(&bytes[..end], &bytes[..end]));
                if end > 0 {
                    let mut other = bytes[..end].to_vec();
                    other[end - 1] ^= 1;
                    assert!(!same_bytes(&bytes[..end], &other));
                    assert!(!same_bytes(&bytes[..end], &bytes[..end - 1]));
                }
            }
        }
    }

    /// A slot confirms its key by the bytes it holds and, past [`HEAD`], by
    /// its rest in `key_rests`: keys equal in length and head but not in
    /// their rest differ, around the head's length.
    #[test]
    fn slots_compare_head_and_rest() {
        let head = "/abcdefghijklmnopqrstuvwxyz0123"; // HEAD - 1 bytes
        assert_eq!(head.len(), HEAD - 1);
        let keys = [
            format!("{head}/l"),
            format!("{head}/c"),
            format!("{head}/lmnopqrstu"),
            format!("{head}/lmnopqrstv"),
            "/ab".to_string(),
            head.to_string(),
            format!("{head}x"),
            format!("{head}y"),
            "/abcdefghijk/l".to_string(),
            "/abcdefghijk/c".to_string(),
            "/abcdefghijklm/l".to_string(),
            "/abcdefghijklm/c".to_string(),
            "/abcdefghijklmnopqrstu/l".to_string(),
            "/abcdefghijklmnopqrstu/c".to_string(),
            "/a".to_string(),
            "/b".to_string(),
        ];
        let mut key_rests = Vec::new();
        let slots: Vec<KeySlot> = keys
            .iter()
            .enumerate()
            .map(|(at, k)| {
                let mut head = [0u8; HEAD];
                let n = k.len().min(HEAD);
                head[..n].copy_from_slice(&k.as_bytes()[..n]);
                if k.len() > HEAD {
                    key_rests.push(KeyRest {
                        slot: at as u32,
                        bytes: k.as_bytes()[HEAD..].into(),
                    });
                }
                KeySlot {
                    head,
                    ..KeySlot::default()
                }
            })
            .collect();
        let index = PathIndex {
            key_rests: key_rests.into_boxed_slice(),
            ..PathIndex::default()
        };
        for (at, (slot, key)) in slots.iter().zip(&keys).enumerate() {
            for other in keys.iter().filter(|o| o.len() == key.len()) {
                assert_eq!(
                    slot.holds(other.as_bytes(), &index, at),
                    other == key,
                    "{key} vs {other}"
                );
            }
        }
        assert!(!slots[4].holds(b"/ac", &index, 4));
        // A rest is found by its slot's position only.
        assert!(!slots[0].holds(keys[0].as_bytes(), &index, 1));
    }

    /// What a lookup reads first sits in the first cache line of a bucket.
    #[test]
    fn hot_fields_share_the_first_line() {
        use super::super::Bucket;
        assert_eq!(std::mem::align_of::<Bucket>(), 64);
        assert_eq!(std::mem::size_of::<Bucket>(), 128);
        assert_eq!(std::mem::offset_of!(Bucket, index), 0);
        let slots_end =
            std::mem::offset_of!(PathIndex, slots) + std::mem::size_of::<Box<[KeySlot]>>();
        assert!(slots_end <= 64, "{slots_end}");
        assert!(std::mem::offset_of!(PathIndex, key_filter) < 64);
        assert!(std::mem::offset_of!(PathIndex, prefix_lengths) < 64);
    }

    /// A bucket whose groups are `keys` (kind, value), one candidate each
    /// (candidate id = position in `keys`).
    fn bucket_of(keys: &[(u32, &str)]) -> PathIndex {
        let groups = keys
            .iter()
            .enumerate()
            .map(|(id, &key)| {
                let first = Candidate {
                    id: id as u32,
                    ..KeySlot::default().first
                };
                (key, vec![first])
            })
            .collect();
        PathIndex::from_groups(groups, &[])
    }

    /// Hashing a request's keys costs O(path length) once, not once per
    /// bucket and probed key: a bucket with a long `Exact` key and a long
    /// `PathPrefix` key (length mask bit 63: every long cut is probed) hashes
    /// nothing more at lookup, and only short prefixes (at most 8 words each)
    /// are hashed when probed. Counted in hashed words, not timed.
    #[test]
    fn long_keys_are_hashed_once_per_request() {
        let path = format!("/a/bc{}{}", "p".repeat(60_000), "/q".repeat(15));
        let n = path.len();
        let cut = n - 2 * 8;
        let bucket = bucket_of(&[
            (KIND_EXACT, &path),
            (KIND_EXACT, &path[..70]),
            (KIND_PREFIX, &path[..cut]),
            (KIND_PREFIX, &path[..70]),
            (KIND_PREFIX, "/a"),
        ]);
        let before = WORDS_HASHED.with(|w| w.get());
        let keys = PathKeys::new(&path);
        let filled = WORDS_HASHED.with(|w| w.get()) - before;
        assert!(keys.is_complete());
        assert_eq!(keys.long_count as usize, MAX_PATH_BOUNDARIES);
        // Every word once, plus one partial word per cut and the tail.
        assert!(filled <= n / 8 + MAX_PATH_BOUNDARIES + 1, "{filled}");
        for _ in 0..8 {
            let before = WORDS_HASHED.with(|w| w.get());
            let mut found = Vec::new();
            bucket.find_in_keyed_groups(&keys, |group| {
                found.push(group.first.id);
                None::<()>
            });
            let probed = WORDS_HASHED.with(|w| w.get()) - before;
            assert_eq!(found, vec![0, 2, 4]);
            // The short cuts of the path are "/a" (1 word) and "/a/bc..."
            // (not a key length of the bucket): one short key hashed.
            assert_eq!(probed, 1);
            // The stepwise lookup hashes no more.
            let before = WORDS_HASHED.with(|w| w.get());
            let first = bucket.first_probe(&keys).expect("the exact key is probed");
            let group = bucket.first_group(&keys, first).expect("found");
            assert_eq!(group.first.id, 0);
            assert_eq!(WORDS_HASHED.with(|w| w.get()) - before, 0);
        }
    }

    /// The stepwise lookup (first probe, then the first group from it)
    /// finds the group the lookup visits first: the exact key, else the
    /// longest prefix the bucket holds, for keys shorter and longer than a
    /// word and past a key whose length the bucket holds but not the key
    /// (the probes go on after it); none for a path no key holds.
    #[test]
    fn stepwise_lookup_finds_the_first_visited_group() {
        let bucket = bucket_of(&[
            (KIND_PREFIX, "/a"),
            (KIND_PREFIX, "/a/bcdefgh"),
            (KIND_EXACT, "/a/bcdefgh/ij"),
            (KIND_PREFIX, "/a/bcdefgh/ij"),
            (KIND_PREFIX, "/b"),
            (KIND_PREFIX, "/x/yz"),
            (KIND_EXACT, "/c/d"),
        ]);
        let long = format!("/a/bcdefgh/{}", "k".repeat(70));
        let long_child = format!("{long}/m");
        let cases: [(&str, Option<u32>); 9] = [
            ("/a/bcdefgh/ij", Some(2)),
            ("/a/bcdefgh/ij/k", Some(3)),
            ("/a/bcdefgh/x", Some(1)),
            // Prefix lengths 5 ("/a/bc" is no key) and 2.
            ("/a/bc/d", Some(0)),
            ("/a/x", Some(0)),
            // The exact length of "/c/d" but another key.
            ("/c/e", None),
            ("/c/d", Some(6)),
            (&long, Some(1)),
            (&long_child, Some(1)),
        ];
        for (path, want) in cases {
            let keys = PathKeys::new(path);
            let visited = bucket.find_in_keyed_groups(&keys, |group| Some(group.first.id));
            assert_eq!(visited, want, "{path}");
            let stepwise = bucket
                .first_probe(&keys)
                .and_then(|first| bucket.first_group(&keys, first))
                .map(|group| group.first.id);
            assert_eq!(stepwise, want, "{path}");
        }
        assert!(bucket.first_probe(&PathKeys::new("/q/r")).is_none());
    }

    /// Resuming after each probed key visits the keys in the lookup's
    /// order: on a bucket that holds every length, the exact key, then
    /// every prefix from the longest (long ones first), each once.
    #[test]
    fn probes_resume_in_lookup_order() {
        let path = format!("/a/b/{}/c/d", "e".repeat(70));
        let keys = PathKeys::new(&path);
        let mut bucket = bucket_of(&[(KIND_EXACT, "/"), (KIND_PREFIX, "/z")]);
        bucket.exact_lengths = u64::MAX;
        bucket.prefix_lengths = u64::MAX;
        bucket.key_filter = [u64::MAX; 4];
        let mut order = Vec::new();
        let mut probe = bucket.first_probe(&keys);
        while let Some(p) = probe {
            order.push((p.kind, p.len));
            probe = bucket.probe_after(&keys, Some(p));
        }
        let mut want = vec![(KIND_EXACT, path.len())];
        want.extend(keys.prefixes().map(|(len, _)| (KIND_PREFIX, len)));
        assert_eq!(order, want);
        assert_eq!(order.len(), 6, "{order:?}");
    }

    #[test]
    fn too_many_boundaries_is_incomplete() {
        // Below byte 64 every cut fits the mask; from byte 64 on, at most
        // `MAX_PATH_BOUNDARIES` (the whole path counting as one).
        let head = "/a".repeat(32);
        assert!(PathKeys::new(&head).is_complete());
        let fits = format!("{head}{}", "/b".repeat(MAX_PATH_BOUNDARIES - 1));
        assert!(PathKeys::new(&fits).is_complete());
        // 31 cuts in the head (the leading `/` is none), the rest after it.
        assert_eq!(
            PathKeys::new(&fits).prefixes().count(),
            31 + MAX_PATH_BOUNDARIES
        );
        let long = format!("{head}{}", "/b".repeat(MAX_PATH_BOUNDARIES + 1));
        assert!(!PathKeys::new(&long).is_complete());
    }

    /// On every bucket of the synthetic configuration, the index visits exactly
    /// the matches whose path condition holds, in bucket (precedence) order, and
    /// its keyed groups never contain a match whose path does not hold.
    #[test]
    fn synthetic_buckets_visit_the_path_matches_in_order() {
        use crate::gateway::request::split_path_query;
        use crate::gateway::{CompileOptions, RouteIndex};
        use crate::synth::{self, SynthSpec};

        let config = synth::generate(&SynthSpec::small());
        let index = RouteIndex::compile(&config.objects, CompileOptions::default());
        let mut paths: Vec<String> = Vec::new();
        for r in synth::requests(&config, 300, 3) {
            let p = split_path_query(&r.path).0;
            paths.push(p.to_string());
            paths.push(format!("{p}/"));
            paths.push(format!("{}x", p.trim_end_matches('/')));
            paths.push(p.rsplit_once('/').map_or("/", |(head, _)| head).to_string());
        }
        let path_holds = |id: u32, path: &str| match &index.matches[id as usize].condition {
            MatchCondition::Http(m) => m.path.matches(path),
            MatchCondition::Grpc(_) => true,
        };
        let mut keyed_visits = 0usize;
        for listener in &index.listeners {
            for table in [&listener.http, &listener.grpc] {
                let buckets = table.buckets.iter().chain(std::iter::once(&table.any));
                for bucket in buckets {
                    for path in &paths {
                        let keys = PathKeys::new(path);
                        assert!(keys.is_complete());
                        let mut visited = Vec::new();
                        bucket.index.find_in_keyed_groups(&keys, |group| {
                            for c in group.iter() {
                                assert!(path_holds(c.id, path), "keyed {} for {path}", c.id);
                                visited.push(c.id);
                                keyed_visits += 1;
                            }
                            None::<()>
                        });
                        visited.extend(
                            bucket
                                .index
                                .always()
                                .iter()
                                .map(|c| c.id)
                                .filter(|&id| path_holds(id, path)),
                        );
                        let linear: Vec<u32> = bucket
                            .ids
                            .iter()
                            .copied()
                            .filter(|&id| path_holds(id, path))
                            .filter(|&id| {
                                let entry = &index.matches[id as usize];
                                Candidate::new(id, entry, &index.routes, NO_RECORD).is_some()
                            })
                            .collect();
                        assert_eq!(visited, linear, "bucket order for {path}");
                    }
                }
            }
        }
        assert!(keyed_visits > 1_000, "only {keyed_visits} keyed visits");
    }
}
