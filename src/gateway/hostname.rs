//! Hostname rules of the Gateway API: wildcards, intersection, specificity.
//!
//! Spec: `apis/v1/shared_types.go` (Hostname), `apis/v1/httproute_types.go`
//! (Hostnames, ~lines 62-119), `site/content/en/docs/concepts/hostnames.md`.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::compile::same_bytes;

/// Strips a `:port` from a Host header value (IPv6 literals in brackets are kept
/// whole) and a trailing dot, and lower-cases it when needed.
///
/// The spec ignores the port for matching (`very.specific.com:1234` matches
/// `very.specific.com`). Case-folding is not specified; DNS names are
/// case-insensitive and proxies lower-case the authority, so we do too.
#[inline]
pub fn normalize_host(host: &str) -> Cow<'_, str> {
    // The common case, a lower-case name without port or trailing dot, is
    // returned as is after one SWAR pass (inline: it runs per request).
    let bytes = host.as_bytes();
    if bytes.first() != Some(&b'[') && bytes.last() != Some(&b'.') && !has_colon_or_upper(bytes) {
        return Cow::Borrowed(host);
    }
    normalize_host_slow(host)
}

/// [`normalize_host`] for a host that has a port, a trailing dot, an
/// upper-case letter or a bracket.
#[cold]
fn normalize_host_slow(host: &str) -> Cow<'_, str> {
    let bytes = host.as_bytes();
    // One pass: where the last `:` is, whether only digits follow it, and
    // whether anything needs lower-casing.
    let mut colon = None;
    let mut digits_after_colon = true;
    let mut upper = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b':' => {
                colon = Some(i);
                digits_after_colon = true;
            }
            b'0'..=b'9' => {}
            _ => {
                digits_after_colon = false;
                upper |= b.is_ascii_uppercase();
            }
        }
    }
    let without_port = if bytes.first() == Some(&b'[') {
        match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else {
        match colon {
            Some(c) if digits_after_colon => &host[..c],
            _ => host,
        }
    };
    let trimmed = without_port.strip_suffix('.').unwrap_or(without_port);
    if upper && trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    }
}

/// The high bit of each byte of `x` (eight bytes of a host) that is `:` or
/// in `A..=Z` (exact: no carries cross bytes, since every addend stays below
/// 0x80 per byte).
#[inline(always)]
fn colon_or_upper_bits(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const fn splat(b: u8) -> u64 {
        u64::from_ne_bytes([b; 8])
    }
    let low = x & LOW7;
    let colon = !(((low ^ splat(b':')) + LOW7) | (x ^ splat(b':'))) & HIGH;
    let ge_a = low + splat(0x80 - b'A');
    let ge_bracket = low + splat(0x80 - b'[');
    colon | (ge_a & !ge_bracket & !x & HIGH)
}

/// Bit 6 of each byte of `x` that *may* be `:` or an ASCII upper-case letter:
/// a cheaper superset of [`colon_or_upper_bits`] (six operations instead of
/// thirteen) for the per-request Host check, where a flagged byte only sends
/// the Host down the slower normalising path. Only bit 6 of each byte of the
/// result is meaningful; OR results together and test them with
/// [`MAY_NEED_NORMALIZING`].
///
/// A byte is flagged when its bits 6 and 5 are `1, 0` (`0x40..=0x5f`, which
/// holds `A..=Z`, and `0xc0..=0xdf`), or when it plus 6 is such a byte
/// (`0x3a..=0x3f`, which holds `:`; a carry from the byte below, possible only
/// from a byte of `0xfa` or more, adds 1 and still flags `0x3a..=0x3f`).
#[inline(always)]
pub(crate) fn may_be_colon_or_upper(x: u64) -> u64 {
    const SIX: u64 = 0x0606_0606_0606_0606;
    let shifted = x.wrapping_add(SIX);
    (x & !(x << 1)) | (shifted & !(shifted << 1))
}

/// The mask that tests what [`may_be_colon_or_upper`] accumulated.
pub(crate) const MAY_NEED_NORMALIZING: u64 = 0x4040_4040_4040_4040;

/// Whether `bytes` holds a `:` or an ASCII upper-case letter, eight bytes at a
/// time (SWAR; hosts are mostly shorter than a vector register, so the
/// compiler's auto-vectorised loop would run its scalar tail only).
#[inline]
fn has_colon_or_upper(bytes: &[u8]) -> bool {
    let flagged = colon_or_upper_bits;
    let word_at = |at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(word)
    };
    let n = bytes.len();
    if n < 8 {
        // The zero-padded bytes (a zero byte is neither `:` nor upper case).
        let word = bytes
            .iter()
            .rev()
            .fold(0u64, |w, &b| (w << 8) | u64::from(b));
        return flagged(word) != 0;
    }
    // Whole words, then the last 8 bytes (overlapping the last whole word:
    // bytes seen twice do not change the answer).
    let mut found = 0u64;
    let mut at = 0;
    while at + 8 <= n {
        found |= flagged(word_at(at));
        at += 8;
    }
    if at < n {
        found |= flagged(word_at(n - 8));
    }
    found != 0
}

/// Position of the first `.` in `bytes`: a plain byte loop, inline (a host's
/// labels are a few bytes long; a `memchr` call costs more than the scan).
#[inline]
pub(crate) fn find_dot(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'.')
}

/// The `:port` part of a Host header value, if any.
pub fn host_port(host: &str) -> Option<u16> {
    let rest = if host.starts_with('[') {
        &host[host.find(']')? + 1..]
    } else {
        &host[host.rfind(':')?..]
    };
    rest.strip_prefix(':')?.parse().ok()
}

/// Whether `name` is a wildcard hostname (`*.example.com`).
#[inline]
pub fn is_wildcard(name: &str) -> bool {
    name.starts_with("*.")
}

/// Whether the wildcard `pattern` (`*.suffix`) covers `name`, which may itself be
/// a wildcard. A Gateway API wildcard matches **one or more** labels:
/// `*.example.com` covers `a.example.com`, `a.b.example.com` and
/// `*.foo.example.com`, but not `example.com`.
fn wildcard_covers(pattern: &str, name: &str) -> bool {
    let suffix = &pattern[1..]; // ".example.com"
    let name = name.strip_prefix('*').unwrap_or(name);
    name.len() > suffix.len() && name.ends_with(suffix)
}

/// Whether a (listener or route) hostname `pattern` matches a concrete request
/// host. `None` (no hostname) matches every host.
///
/// Per request on the decision path (listener selection): byte comparisons
/// inline, no `memcmp` call; the same rule as [`wildcard_covers`].
#[inline]
pub fn matches(pattern: Option<&str>, host: &str) -> bool {
    let Some(pattern) = pattern else {
        return true;
    };
    let (p, h) = (pattern.as_bytes(), host.as_bytes());
    if !is_wildcard(pattern) {
        return same_bytes(p, h);
    }
    if is_wildcard(host) {
        return false;
    }
    let suffix = &p[1..];
    let name = h.strip_prefix(b"*").unwrap_or(h);
    name.len() > suffix.len() && same_bytes(&name[name.len() - suffix.len()..], suffix)
}

/// The intersection of a listener hostname and a route hostname, or `None` when
/// they do not intersect.
///
/// precise×precise: equal only; wildcard×precise: the precise name if covered;
/// wildcard×wildcard: the more specific one if the other covers it
/// (`hostnames.md`, "Hostname Intersection"). A listener without a hostname
/// accepts every route hostname unchanged.
pub fn intersect(listener: Option<&str>, route: &str) -> Option<String> {
    let Some(listener) = listener else {
        return Some(route.to_string());
    };
    let result = match (is_wildcard(listener), is_wildcard(route)) {
        (false, false) => (listener == route).then_some(listener),
        (true, false) => wildcard_covers(listener, route).then_some(route),
        (false, true) => wildcard_covers(route, listener).then_some(listener),
        (true, true) => {
            if listener == route || wildcard_covers(listener, route) {
                Some(route)
            } else if wildcard_covers(route, listener) {
                Some(listener)
            } else {
                None
            }
        }
    };
    result.map(str::to_string)
}

/// Orders hostnames from most to least specific: exact names before wildcards,
/// longer before shorter within each group, catch-all (`None`) last. This is the
/// listener ordering of `gateway_types.go` ("Listeners that are distinct only by
/// Hostname") and the route hostname precedence of `httproute_types.go`
/// (~lines 104-112: most characters in a non-wildcard name, then in any name).
pub fn specificity_order(a: Option<&str>, b: Option<&str>) -> Ordering {
    fn rank(h: Option<&str>) -> (u8, usize) {
        match h {
            None => (2, 0),
            Some(h) if is_wildcard(h) => (1, usize::MAX - h.len()),
            Some(h) => (0, usize::MAX - h.len()),
        }
    }
    rank(a).cmp(&rank(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_and_case_are_ignored() {
        assert_eq!(
            normalize_host("very.specific.com:1234"),
            "very.specific.com"
        );
        assert_eq!(normalize_host("Foo.COM"), "foo.com");
        assert_eq!(normalize_host("foo.com."), "foo.com");
        assert_eq!(normalize_host("[::1]:8080"), "[::1]");
        assert_eq!(host_port("foo.com:8080"), Some(8080));
        assert_eq!(host_port("[::1]:80"), Some(80));
        assert_eq!(host_port("foo.com"), None);
    }

    #[test]
    fn colon_and_upper_case_detection_matches_the_bytes() {
        let samples = [
            "",
            "a",
            "example.com",
            "Example.com",
            "example.coM",
            "a:80",
            "abcdefgh:",
            "abcdefghijklmnoZ",
            "@[`{",
            "\u{e9}t\u{e9}.fr",
            ":",
            "ZZZZZZZZZ",
        ];
        for s in samples {
            let want = s.bytes().any(|b| b == b':' || b.is_ascii_uppercase());
            assert_eq!(has_colon_or_upper(s.as_bytes()), want, "{s:?}");
        }
        for b in 0..=255u8 {
            let bytes = [b'a', b'b', b, b'c', b'd', b'e', b'f', b'g', b'h', b];
            let want = b == b':' || b.is_ascii_uppercase();
            assert_eq!(has_colon_or_upper(&bytes), want, "byte {b:#x}");
            assert_eq!(has_colon_or_upper(&bytes[2..3]), want, "byte {b:#x} alone");
        }
    }

    /// The cheap Host check never misses a `:` or an upper-case letter, in
    /// any position and after any byte (carries), and passes plain lower-case
    /// host names.
    #[test]
    fn cheap_host_check_flags_every_colon_and_upper_case_letter() {
        let flagged = |bytes: [u8; 8]| {
            may_be_colon_or_upper(u64::from_le_bytes(bytes)) & MAY_NEED_NORMALIZING != 0
        };
        for b in 0..=255u8 {
            for before in 0..=255u8 {
                for at in 1..8 {
                    let mut word = *b"ab-9.z0y";
                    word[at - 1] = before;
                    word[at] = b;
                    if b == b':' || b.is_ascii_uppercase() {
                        assert!(flagged(word), "{b:#x} after {before:#x} at {at}");
                    }
                }
            }
            let mut word = [0u8; 8];
            word[0] = b;
            if b == b':' || b.is_ascii_uppercase() {
                assert!(flagged(word), "{b:#x} first");
            }
        }
        for host in ["example.com", "a-b.c0-9.xyz", "svc-12.ns_1", "0123456789-."] {
            let mut word = [0u8; 8];
            for chunk in host.as_bytes().chunks(8) {
                word[..chunk.len()].copy_from_slice(chunk);
                word[chunk.len()..].fill(0);
                let plain = !chunk.contains(&b'_');
                assert!(!plain || !flagged(word), "{host:?}");
            }
        }
    }

    #[test]
    fn wildcards_match_one_or_more_labels() {
        assert!(matches(Some("*.example.com"), "a.example.com"));
        assert!(matches(Some("*.example.com"), "a.b.example.com"));
        assert!(!matches(Some("*.example.com"), "example.com"));
        assert!(matches(Some("*.com"), "example.com"));
        assert!(!matches(Some("*.foo.com"), "foo.com"));
        assert!(matches(None, "anything"));
        assert!(matches(Some("foo.bar.com"), "foo.bar.com"));
        assert!(!matches(Some("foo.bar.com"), "baz.bar.com"));
    }

    #[test]
    fn intersection_rules() {
        assert_eq!(intersect(Some("a.com"), "a.com").as_deref(), Some("a.com"));
        assert_eq!(intersect(Some("a.com"), "b.com"), None);
        assert_eq!(
            intersect(Some("*.specific.com"), "foo.specific.com").as_deref(),
            Some("foo.specific.com")
        );
        assert_eq!(
            intersect(Some("very.specific.com"), "*.specific.com").as_deref(),
            Some("very.specific.com")
        );
        assert_eq!(
            intersect(Some("*.foo.example.com"), "*.example.com").as_deref(),
            Some("*.foo.example.com")
        );
        assert_eq!(
            intersect(Some("*.example.com"), "*.foo.example.com").as_deref(),
            Some("*.foo.example.com")
        );
        assert_eq!(intersect(Some("*.a.com"), "*.b.com"), None);
        assert_eq!(intersect(Some("*.foo.com"), "foo.com"), None);
        assert_eq!(intersect(None, "*.x.com").as_deref(), Some("*.x.com"));
    }

    #[test]
    fn specificity() {
        let mut names = vec![
            None,
            Some("*.com"),
            Some("a.b.com"),
            Some("*.b.com"),
            Some("b.com"),
        ];
        names.sort_by(|a, b| specificity_order(*a, *b));
        assert_eq!(
            names,
            vec![
                Some("a.b.com"),
                Some("b.com"),
                Some("*.b.com"),
                Some("*.com"),
                None
            ]
        );
    }
}
