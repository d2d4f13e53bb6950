//! A flat hostname → bucket lookup for [`super::HostTable`].
//!
//! `decide` looks up the request host (and its wildcard suffixes) once per
//! request. A `HashMap<String, Bucket>` costs a dependent load per probe into
//! the entry and another into the key `String`'s heap allocation, each
//! scattered over the index. This table keeps what a probe touches in one
//! contiguous array of 64-byte slots (hash, bucket number and the key's first
//! 48 bytes, so that a probe confirms the key in the one line it loaded), with
//! the bytes of longer keys in an arena. The buckets themselves live in one
//! `Vec` next to it ([`super::HostTable::buckets`]).
//!
//! Open addressing with linear probing, a power-of-two length and at most half
//! full, so a probe chain is short. The hash is unseeded: the keys come from
//! configuration and requests only look them up, so a request cannot build a
//! collision chain. A hash match is always confirmed by comparing the bytes.

use super::path_index::{key_hash, key_hash_visiting, same_bytes};
use crate::gateway::hostname;
use crate::gateway::prefetch::prefetch;

/// Key kind mixed into the hash (distinct from the path index's kinds only
/// for readability; the tables are separate).
const KIND_HOST: u32 = 2;

/// How many leading key bytes a [`HostSlot`] holds itself: the rest of its
/// 64 bytes.
const HEAD: usize = 48;

/// One slot (one 64-byte cache line). `bucket == EMPTY` marks a free slot.
///
/// The slot holds the first [`HEAD`] bytes of its key, so a probe confirms a
/// hostname of up to 48 bytes (nearly all) in the line it has loaded anyway,
/// instead of in [`HostLookup::key_bytes`] (a second cache miss per request,
/// when the slots were 16 bytes).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct HostSlot {
    /// Low 32 bits of the key hash (the high bits chose the slot's home).
    tag: u32,
    /// The bucket number (index into [`super::HostTable::buckets`]).
    bucket: u32,
    /// Offset of the key in [`HostLookup::key_bytes`].
    key_offset: u32,
    /// Key length.
    key_len: u32,
    /// The key's first bytes, zero-padded.
    head: [u8; HEAD],
}

const _: () = assert!(std::mem::size_of::<HostSlot>() == 64);

const EMPTY: u32 = u32::MAX;

impl Default for HostSlot {
    fn default() -> Self {
        HostSlot {
            tag: 0,
            bucket: EMPTY,
            key_offset: 0,
            key_len: 0,
            head: [0; HEAD],
        }
    }
}

impl HostSlot {
    /// Whether the slot's key is `key` (whose length and tag already match):
    /// from the slot alone for a key of up to [`HEAD`] bytes.
    #[inline]
    fn holds(&self, key: &[u8], key_bytes: &[u8]) -> bool {
        match self.head.get(..key.len()) {
            Some(head) => same_bytes(head, key),
            None => self.holds_long(key, key_bytes),
        }
    }

    /// [`HostSlot::holds`] for a key longer than [`HEAD`] (out of line: rare).
    #[cold]
    #[inline(never)]
    fn holds_long(&self, key: &[u8], key_bytes: &[u8]) -> bool {
        let at = self.key_offset as usize;
        key_bytes
            .get(at..at + key.len())
            .is_some_and(|stored| same_bytes(stored, key))
    }
}

/// Hostname (or wildcard suffix) → bucket number; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct HostLookup {
    slots: Box<[HostSlot]>,
    /// Every key, concatenated in insertion order.
    key_bytes: Vec<u8>,
    len: usize,
}

impl HostLookup {
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bucket number of `key`, if present. Allocation-free.
    #[inline]
    pub fn get(&self, key: &str) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let key = key.as_bytes();
        let hash = key_hash(key, KIND_HOST);
        self.get_hashed(key, hash)
    }

    /// The hash [`HostLookup::get`] probes `key` with.
    #[inline]
    pub(crate) fn hash_of(key: &str) -> u64 {
        key_hash(key.as_bytes(), KIND_HOST)
    }

    /// [`HostLookup::hash_of`] of a request Host that
    /// [`hostname::normalize_host`] would return unchanged (no `:port`,
    /// upper-case letter, trailing dot or bracket), found in the one pass
    /// that checks it; `None` for a Host that may need normalising (the
    /// check, [`hostname::may_be_colon_or_upper`], also flags a few bytes
    /// that never need it, such as `_`: such a Host is normalised and
    /// hashed on the slower path, with the same result).
    #[inline]
    pub(crate) fn hash_if_normalized(host: &str) -> Option<u64> {
        let bytes = host.as_bytes();
        if bytes.first() == Some(&b'[') || bytes.last() == Some(&b'.') {
            return None;
        }
        let mut flagged = 0;
        let hash = key_hash_visiting(bytes, KIND_HOST, |word| {
            flagged |= hostname::may_be_colon_or_upper(word);
        });
        (flagged & hostname::MAY_NEED_NORMALIZING == 0).then_some(hash)
    }

    /// Prefetch hint: starts loading the slot a probe for `hash` begins at.
    #[inline]
    pub(crate) fn prefetch_home(&self, hash: u64) {
        if let Some(slot) = self.slots.get(home(hash, self.slots.len().wrapping_sub(1))) {
            prefetch(slot);
        }
    }

    /// [`HostLookup::get`] with the key's hash ([`HostLookup::hash_of`])
    /// already computed.
    #[inline]
    pub(crate) fn get_hashed(&self, key: &[u8], hash: u64) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = home(hash, mask);
        loop {
            let slot = self.slots.get(i)?;
            if slot.bucket == EMPTY {
                return None;
            }
            if slot.tag == hash as u32
                && slot.key_len as usize == key.len()
                && slot.holds(key, &self.key_bytes)
            {
                return Some(slot.bucket);
            }
            i = (i + 1) & mask;
        }
    }

    /// The bucket number of `key` by comparing every key: the slow reference
    /// [`HostLookup::get`] is checked against.
    pub fn get_by_scan(&self, key: &str) -> Option<u32> {
        self.iter().find(|(k, _)| *k == key).map(|(_, at)| at)
    }

    /// Adds `key` with `bucket`; `key` must not be present yet (compile time).
    pub(super) fn insert(&mut self, key: &str, bucket: u32) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let key_offset = self.key_bytes.len() as u32;
        self.key_bytes.extend_from_slice(key.as_bytes());
        let mut head = [0; HEAD];
        let head_len = key.len().min(HEAD);
        head[..head_len].copy_from_slice(&key.as_bytes()[..head_len]);
        self.place(HostSlot {
            tag: key_hash(key.as_bytes(), KIND_HOST) as u32,
            bucket,
            key_offset,
            key_len: key.len() as u32,
            head,
        });
        self.len += 1;
    }

    /// Every key with its bucket number, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.slots.iter().filter(|s| s.bucket != EMPTY).map(|s| {
            let at = s.key_offset as usize;
            let bytes = &self.key_bytes[at..at + s.key_len as usize];
            // Keys are inserted from `&str`, whole: always valid UTF-8.
            (std::str::from_utf8(bytes).unwrap_or_default(), s.bucket)
        })
    }

    fn grow(&mut self) {
        let len = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![HostSlot::default(); len].into());
        for slot in old.iter().filter(|s| s.bucket != EMPTY) {
            self.place(*slot);
        }
    }

    /// Puts `slot` at the first free position of its probe sequence.
    fn place(&mut self, slot: HostSlot) {
        let at = slot.key_offset as usize;
        let key = &self.key_bytes[at..at + slot.key_len as usize];
        let mask = self.slots.len() - 1;
        let mut i = home(key_hash(key, KIND_HOST), mask);
        while self.slots[i].bucket != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    /// Shrinks the key arena to its size once the table is complete.
    pub(super) fn finish(&mut self) {
        self.key_bytes.shrink_to_fit();
    }
}

/// The home slot of a hash: its high bits (the tag holds the low ones).
#[inline]
fn home(hash: u64, mask: usize) -> usize {
    (hash >> 32) as usize & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `hash_if_normalized` hashes exactly the Hosts that normalising
    /// leaves unchanged (and only some of those it declines), with the
    /// lookup's hash.
    #[test]
    fn hash_if_normalized_only_for_normalized_hosts() {
        let hosts = [
            "",
            "a",
            "example.com",
            "Example.com",
            "example.coM",
            "a:80",
            "abcdefgh:",
            "abcdefghijklmnoZ",
            "svc-12.example.com",
            "x.y.",
            "[::1]:80",
            "under_score.io",
            "h0123456789.example.com:8443",
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "z.example.com:",
        ];
        let mut hashed = 0;
        for host in hosts {
            let normalized = hostname::normalize_host(host);
            match HostLookup::hash_if_normalized(host) {
                Some(hash) => {
                    assert_eq!(normalized, host, "{host:?}");
                    assert_eq!(hash, HostLookup::hash_of(host), "{host:?}");
                    hashed += 1;
                }
                None => assert!(normalized != host || host.contains('_'), "{host:?}"),
            }
        }
        assert_eq!(hashed, 4);
    }

    /// Keys longer than a slot's head are confirmed by their rest too: keys
    /// equal in length and in their first 48 bytes but not after are told
    /// apart, around the head's length.
    #[test]
    fn long_keys_compare_past_the_head() {
        let mut t = HostLookup::default();
        let mut keys = Vec::new();
        for len in HEAD - 2..=HEAD + 10 {
            for last in ['a', 'b'] {
                let mut k = "h".repeat(len - 1);
                k.push(last);
                keys.push(k);
            }
        }
        for (i, k) in keys.iter().enumerate() {
            t.insert(k, i as u32);
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.get(k), Some(i as u32), "{k}");
            let mut other = k.clone();
            other.pop();
            other.push('c');
            assert_eq!(t.get(&other), None, "{other}");
        }
    }

    #[test]
    fn finds_every_key_and_nothing_else() {
        let mut t = HostLookup::default();
        assert_eq!(t.get("a.example.com"), None);
        let keys: Vec<String> = (0..1000).map(|i| format!("svc{i}.example.com")).collect();
        for (i, k) in keys.iter().enumerate() {
            t.insert(k, i as u32);
        }
        assert_eq!(t.len(), 1000);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.get(k), Some(i as u32), "{k}");
            assert_eq!(t.get_by_scan(k), Some(i as u32), "{k}");
        }
        for miss in [
            "",
            "svc1000.example.com",
            "svc1.example.co",
            "vc1.example.com",
        ] {
            assert_eq!(t.get(miss), None, "{miss}");
            assert_eq!(t.get_by_scan(miss), None, "{miss}");
        }
        let mut listed: Vec<(String, u32)> = t.iter().map(|(k, b)| (k.to_string(), b)).collect();
        listed.sort_by_key(|(_, b)| *b);
        assert_eq!(listed.into_iter().map(|(k, _)| k).collect::<Vec<_>>(), keys);
    }
}
