//! The key vocabulary of the flat JSON access-log formats and its lookup.
//!
//! [`FlatFields::apply`](super::json_log::FlatFields::apply) sees every member
//! of every JSON line (24 on an Envoy Gateway default line), so matching the
//! key against the 44 known names is on the per-record path. A `match` on
//! strings compares them one after the other; here a key is hashed once from
//! its length and its first and last eight bytes into a 128-slot open
//! addressing table built at compile time, and confirmed with one comparison.
//! With the current names every key lands in its own slot (a perfect hash, so
//! one probe per known key and usually none for an unknown one); a name added
//! later still works through linear probing, only a little slower.

/// One key [`FlatFields::apply`](super::json_log::FlatFields::apply)
/// understands. Each variant documents the JSON key it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlatKey {
    /// `:authority` (Envoy Gateway).
    ColonAuthority,
    /// `x-envoy-origin-path` (Envoy Gateway).
    XEnvoyOriginPath,
    /// `user-agent` (Envoy Gateway).
    UserAgentHyphen,
    /// `x-forwarded-for` (Envoy Gateway).
    XForwardedForHyphen,
    /// `x-request-id` (Envoy Gateway).
    XRequestId,
    /// `x-envoy-upstream-service-time` (Envoy Gateway).
    XEnvoyUpstreamServiceTime,
    /// `start_time`.
    StartTime,
    /// `@timestamp` (Contour; Fluent Bit merged envelopes).
    AtTimestamp,
    /// `authority`.
    Authority,
    /// `path`.
    Path,
    /// `response_code`.
    ResponseCode,
    /// `response_flags`.
    ResponseFlags,
    /// `response_code_details`.
    ResponseCodeDetails,
    /// `duration`.
    Duration,
    /// `upstream_service_time`.
    UpstreamServiceTime,
    /// `upstream_host`.
    UpstreamHost,
    /// `upstream_cluster`.
    UpstreamCluster,
    /// `downstream_local_address`.
    DownstreamLocalAddress,
    /// `downstream_remote_address`.
    DownstreamRemoteAddress,
    /// `route_name`.
    RouteName,
    /// `bytes_received`.
    BytesReceived,
    /// `bytes_sent`.
    BytesSent,
    /// `requested_server_name`.
    RequestedServerName,
    /// `grpc_status` (Contour).
    GrpcStatus,
    /// `grpc_status_number` (Contour).
    GrpcStatusNumber,
    /// `method`.
    Method,
    /// `protocol`.
    Protocol,
    /// `x_forwarded_for`.
    XForwardedForUnderscore,
    /// `user_agent`.
    UserAgentUnderscore,
    /// `request_id`.
    RequestId,
    /// `time` (NGINX `$time_iso8601`, or a merged envelope's time).
    Time,
    /// `request_uri` (NGINX).
    RequestUri,
    /// `status` (NGINX).
    Status,
    /// `body_bytes_sent` (NGINX).
    BodyBytesSent,
    /// `request_time` (NGINX).
    RequestTime,
    /// `upstream_addr` (NGINX).
    UpstreamAddr,
    /// `upstream_status` (NGINX).
    UpstreamStatus,
    /// `proxy_host` (NGINX Gateway Fabric).
    ProxyHost,
    /// `remote_addr` (NGINX).
    RemoteAddr,
    /// `host` (NGINX).
    Host,
    /// `http_host` (NGINX).
    HttpHost,
    /// `server_port` (NGINX).
    ServerPort,
    /// `http_referer` (NGINX).
    HttpReferer,
    /// `referer`.
    Referer,
}

/// Every key with its JSON name; [`FlatKey::of`] is the inverse.
const KEYS: [(FlatKey, &str); 44] = [
    (FlatKey::ColonAuthority, ":authority"),
    (FlatKey::XEnvoyOriginPath, "x-envoy-origin-path"),
    (FlatKey::UserAgentHyphen, "user-agent"),
    (FlatKey::XForwardedForHyphen, "x-forwarded-for"),
    (FlatKey::XRequestId, "x-request-id"),
    (
        FlatKey::XEnvoyUpstreamServiceTime,
        "x-envoy-upstream-service-time",
    ),
    (FlatKey::StartTime, "start_time"),
    (FlatKey::AtTimestamp, "@timestamp"),
    (FlatKey::Authority, "authority"),
    (FlatKey::Path, "path"),
    (FlatKey::ResponseCode, "response_code"),
    (FlatKey::ResponseFlags, "response_flags"),
    (FlatKey::ResponseCodeDetails, "response_code_details"),
    (FlatKey::Duration, "duration"),
    (FlatKey::UpstreamServiceTime, "upstream_service_time"),
    (FlatKey::UpstreamHost, "upstream_host"),
    (FlatKey::UpstreamCluster, "upstream_cluster"),
    (FlatKey::DownstreamLocalAddress, "downstream_local_address"),
    (
        FlatKey::DownstreamRemoteAddress,
        "downstream_remote_address",
    ),
    (FlatKey::RouteName, "route_name"),
    (FlatKey::BytesReceived, "bytes_received"),
    (FlatKey::BytesSent, "bytes_sent"),
    (FlatKey::RequestedServerName, "requested_server_name"),
    (FlatKey::GrpcStatus, "grpc_status"),
    (FlatKey::GrpcStatusNumber, "grpc_status_number"),
    (FlatKey::Method, "method"),
    (FlatKey::Protocol, "protocol"),
    (FlatKey::XForwardedForUnderscore, "x_forwarded_for"),
    (FlatKey::UserAgentUnderscore, "user_agent"),
    (FlatKey::RequestId, "request_id"),
    (FlatKey::Time, "time"),
    (FlatKey::RequestUri, "request_uri"),
    (FlatKey::Status, "status"),
    (FlatKey::BodyBytesSent, "body_bytes_sent"),
    (FlatKey::RequestTime, "request_time"),
    (FlatKey::UpstreamAddr, "upstream_addr"),
    (FlatKey::UpstreamStatus, "upstream_status"),
    (FlatKey::ProxyHost, "proxy_host"),
    (FlatKey::RemoteAddr, "remote_addr"),
    (FlatKey::Host, "host"),
    (FlatKey::HttpHost, "http_host"),
    (FlatKey::ServerPort, "server_port"),
    (FlatKey::HttpReferer, "http_referer"),
    (FlatKey::Referer, "referer"),
];

/// Table size (a power of two, about three times the number of keys).
const SLOT_BITS: u32 = 7;
/// An odd multiplier under which the 44 names hash to 44 distinct slots
/// (found by a search over random odd constants; any odd value is correct,
/// this one is collision-free).
const MULTIPLIER: u64 = 0x0bad_e29f_2095_4e91;
/// Longer keys are not known keys (the longest is 29 bytes).
const MAX_KEY_LEN: usize = 32;

/// A key as the words the lookup hashes and compares: its length, its first
/// eight bytes (little-endian, zero-padded), its last eight (zero when
/// shorter than eight), and for longer keys the bytes 8..16 (when longer than
/// 16) and 16..24 (when longer than 24). Together they cover every byte of a
/// key of at most [`MAX_KEY_LEN`] bytes, so two such keys are equal exactly
/// when their words are: a key is confirmed by comparing five integers,
/// inlined, instead of calling `memcmp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyWords {
    len: usize,
    head: u64,
    tail: u64,
    middle: [u64; 2],
}

/// The little-endian word of `key` at `at`, zero-padded past its end
/// (compile-time version, byte by byte).
const fn const_word(key: &[u8], at: usize) -> u64 {
    let mut word = 0u64;
    let mut j = 0;
    while j < 8 && at + j < key.len() {
        word |= (key[at + j] as u64) << (8 * j);
        j += 1;
    }
    word
}

/// [`KeyWords`] of `key` at compile time (the reference of [`key_words_fast`]).
const fn key_words(key: &[u8]) -> KeyWords {
    let len = key.len();
    KeyWords {
        len,
        head: const_word(key, 0),
        tail: if len >= 8 {
            const_word(key, len - 8)
        } else {
            0
        },
        middle: [
            if len > 16 { const_word(key, 8) } else { 0 },
            if len > 24 { const_word(key, 16) } else { 0 },
        ],
    }
}

/// [`key_words`] with word loads (the same value; checked by a test).
#[inline(always)]
fn key_words_fast(key: &[u8]) -> KeyWords {
    let len = key.len();
    let head = if len >= 8 {
        u64::from_le_bytes(word_at(key, 0))
    } else {
        let mut padded = [0u8; 8];
        padded[..len].copy_from_slice(key);
        u64::from_le_bytes(padded)
    };
    let word = |at: usize, present: bool| {
        if present {
            u64::from_le_bytes(word_at(key, at))
        } else {
            0
        }
    };
    KeyWords {
        len,
        head,
        tail: word(len.wrapping_sub(8), len >= 8),
        middle: [word(8, len > 16), word(16, len > 24)],
    }
}

/// The slot of a key: its head, tail and length mixed by a multiplication;
/// the top bits choose the slot.
#[inline(always)]
const fn slot_of_words(words: &KeyWords) -> usize {
    let signature = words.head ^ (words.tail << 1) ^ ((words.len as u64) << 56);
    (signature.wrapping_mul(MULTIPLIER) >> (64 - SLOT_BITS)) as usize
}

/// The slot of `key` (compile time).
const fn slot_of(key: &[u8]) -> usize {
    slot_of_words(&key_words(key))
}

/// Eight bytes at `at` (the caller guarantees `at + 8 <= bytes.len()`; zeros
/// otherwise, which only costs a probe).
#[inline(always)]
fn word_at(bytes: &[u8], at: usize) -> [u8; 8] {
    let mut word = [0u8; 8];
    if let Some(chunk) = bytes.get(at..at + 8) {
        word.copy_from_slice(chunk);
    }
    word
}

/// Slot contents: 0 for empty, else 1 + the index in [`KEYS`].
static SLOTS: [u8; 1 << SLOT_BITS] = build_slots();

/// The [`KeyWords`] of every name in [`KEYS`], in the same order.
static WORDS: [KeyWords; KEYS.len()] = build_words();

const fn build_slots() -> [u8; 1 << SLOT_BITS] {
    let mut slots = [0u8; 1 << SLOT_BITS];
    let mut k = 0;
    while k < KEYS.len() {
        let mut slot = slot_of(KEYS[k].1.as_bytes());
        while slots[slot] != 0 {
            slot = (slot + 1) & ((1 << SLOT_BITS) - 1);
        }
        slots[slot] = k as u8 + 1;
        k += 1;
    }
    slots
}

const fn build_words() -> [KeyWords; KEYS.len()] {
    let mut words = [KeyWords {
        len: 0,
        head: 0,
        tail: 0,
        middle: [0; 2],
    }; KEYS.len()];
    let mut k = 0;
    while k < KEYS.len() {
        words[k] = key_words(KEYS[k].1.as_bytes());
        k += 1;
    }
    words
}

impl FlatKey {
    /// The known key named exactly `key` (case-sensitive), if any. Inlined
    /// into the one caller on the per-member path.
    #[inline(always)]
    pub(crate) fn of(key: &str) -> Option<FlatKey> {
        let bytes = key.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_KEY_LEN {
            return None;
        }
        let words = key_words_fast(bytes);
        let mut slot = slot_of_words(&words);
        loop {
            let entry = usize::from(SLOTS[slot]);
            let index = entry.checked_sub(1)?;
            if WORDS[index] == words {
                return Some(KEYS[index].0);
            }
            slot = (slot + 1) & ((1 << SLOT_BITS) - 1);
        }
    }

    /// The JSON name of the key.
    #[cfg(test)]
    fn name(self) -> &'static str {
        KEYS.iter()
            .find(|(k, _)| *k == self)
            .map_or("", |(_, name)| name)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn every_name_maps_to_its_key_in_one_probe() {
        let mut seen = std::collections::HashSet::new();
        for (key, name) in KEYS {
            assert_eq!(FlatKey::of(name), Some(key), "{name}");
            assert_eq!(key.name(), name);
            assert_eq!(key_words(name.as_bytes()), key_words_fast(name.as_bytes()));
            assert!(
                seen.insert(slot_of(name.as_bytes())),
                "{name} collides: pick another MULTIPLIER"
            );
            assert!(name.len() <= MAX_KEY_LEN);
        }
    }

    #[test]
    fn near_misses_are_unknown() {
        for key in [
            "",
            "Method",
            "method ",
            "metho",
            "x-forwarded_for",
            "upstream_hos",
            "upstream_hostx",
            "x-envoy-upstream-service-timex",
            "connection_termination_details",
            "upstream_local_address",
            "a_key_that_is_longer_than_thirty_two_bytes",
        ] {
            assert_eq!(FlatKey::of(key), None, "{key}");
        }
    }

    proptest! {
        #[test]
        fn lookup_agrees_with_a_linear_search(key in "[a-z_:@-]{0,30}", byte in any::<u8>()) {
            let expected = KEYS.iter().find(|(_, name)| *name == key).map(|(k, _)| *k);
            prop_assert_eq!(FlatKey::of(&key), expected);
            prop_assert_eq!(key_words(key.as_bytes()), key_words_fast(key.as_bytes()));
            let mut other = key.into_bytes();
            other.push(byte);
            prop_assert_eq!(key_words(&other), key_words_fast(&other));
        }
    }
}
