//! Redaction of secrets in input bytes before they leave the process.
//!
//! The enriched Parquet holds no request headers and no query strings (the
//! `path` column is the path alone), so the only place where raw input is kept
//! is a dead letter: the bytes of a record that could not be decoded. Access
//! logs carry secrets more often than they should (`?access_token=…` in a
//! logged URL, an `authorization` field in a custom JSON format), so every
//! dead letter is passed through a [`Redaction`] first: the values of the
//! configured request headers and query parameters are replaced by
//! [`REDACTED`].
//!
//! What is recognised (names compared ASCII case-insensitively):
//! - a query parameter `name=value` right after `?`, `&` or `;`; the value runs
//!   to the next `&`, `;`, `#`, quote, backslash or whitespace;
//! - a header as a JSON member `"name": "value"` (the string is replaced,
//!   escapes included), as `name: value` (to the end of the line or the next
//!   quote) and as `name=value` (logfmt; to the next whitespace or quote).
//!
//! A secret in a positional field of a text format (e.g. an `Authorization`
//! value logged by `%REQ(AUTHORIZATION)%` without its name) cannot be told
//! from other text; do not log such headers.

use std::borrow::Cow;

/// What replaces a redacted value.
pub const REDACTED: &str = "[REDACTED]";

/// Headers redacted when the configuration names none.
pub const DEFAULT_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
];

/// Query parameters redacted when the configuration names none.
pub const DEFAULT_QUERY_KEYS: &[&str] = &[
    "access_token",
    "id_token",
    "refresh_token",
    "token",
    "api_key",
    "apikey",
    "password",
    "secret",
    "client_secret",
    "signature",
    "x-amz-signature",
    "x-amz-security-token",
];

/// Header names and query keys whose values are masked (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    headers: Vec<Vec<u8>>,
    query_keys: Vec<Vec<u8>>,
}

impl Default for Redaction {
    /// [`DEFAULT_HEADERS`] and [`DEFAULT_QUERY_KEYS`].
    fn default() -> Self {
        Self::new(DEFAULT_HEADERS, DEFAULT_QUERY_KEYS)
    }
}

impl Redaction {
    /// Redacts the given header names and query keys (empty names are ignored).
    pub fn new<H: AsRef<str>, Q: AsRef<str>>(headers: &[H], query_keys: &[Q]) -> Self {
        let lower = |names: &[&str]| -> Vec<Vec<u8>> {
            names
                .iter()
                .map(|n| n.trim().to_ascii_lowercase().into_bytes())
                .filter(|n| !n.is_empty())
                .collect()
        };
        let headers: Vec<&str> = headers.iter().map(AsRef::as_ref).collect();
        let query_keys: Vec<&str> = query_keys.iter().map(AsRef::as_ref).collect();
        Self {
            headers: lower(&headers),
            query_keys: lower(&query_keys),
        }
    }

    /// Redacts nothing.
    pub fn none() -> Self {
        Self {
            headers: Vec::new(),
            query_keys: Vec::new(),
        }
    }

    /// `raw` with every recognised secret value replaced by [`REDACTED`];
    /// borrowed when there is nothing to mask.
    pub fn apply<'a>(&self, raw: &'a [u8]) -> Cow<'a, [u8]> {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for name in &self.query_keys {
            query_values(raw, name, &mut spans);
        }
        for name in &self.headers {
            header_values(raw, name, &mut spans);
        }
        if spans.is_empty() {
            return Cow::Borrowed(raw);
        }
        spans.sort_unstable();
        let mut out = Vec::with_capacity(raw.len());
        let mut at = 0;
        for (start, end) in spans {
            if start < at {
                continue; // overlaps a span already masked
            }
            out.extend_from_slice(&raw[at..start]);
            out.extend_from_slice(REDACTED.as_bytes());
            at = end;
        }
        out.extend_from_slice(&raw[at..]);
        Cow::Owned(out)
    }

    /// [`apply`](Self::apply) for text.
    pub fn apply_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.apply(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // Only ASCII-delimited spans are replaced by ASCII, so the result
            // stays UTF-8; lossy conversion is a no-op kept for safety.
            Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
        }
    }
}

/// Positions where `name` occurs case-insensitively in `raw`.
fn occurrences<'a>(raw: &'a [u8], name: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    (0..(raw.len() + 1).saturating_sub(name.len().max(1)))
        .filter(move |&i| raw[i..i + name.len()].eq_ignore_ascii_case(name))
}

/// Index of the first byte at or after `from` for which `stop` holds.
fn run_until(raw: &[u8], from: usize, stop: impl Fn(u8) -> bool) -> usize {
    raw[from..]
        .iter()
        .position(|&b| stop(b))
        .map_or(raw.len(), |p| from + p)
}

fn query_values(raw: &[u8], name: &[u8], spans: &mut Vec<(usize, usize)>) {
    for i in occurrences(raw, name) {
        let after = i + name.len();
        let preceded = i > 0 && matches!(raw[i - 1], b'?' | b'&' | b';');
        if !preceded || raw.get(after) != Some(&b'=') {
            continue;
        }
        let start = after + 1;
        let end = run_until(raw, start, |b| {
            matches!(b, b'&' | b';' | b'#' | b'"' | b'\'' | b'\\') || b.is_ascii_whitespace()
        });
        if end > start {
            spans.push((start, end));
        }
    }
}

fn header_values(raw: &[u8], name: &[u8], spans: &mut Vec<(usize, usize)>) {
    for i in occurrences(raw, name) {
        let before = if i > 0 { raw[i - 1] } else { b' ' };
        let after = i + name.len();
        // The name must stand alone, not be part of a longer word.
        if before.is_ascii_alphanumeric() || matches!(before, b'-' | b'_') {
            continue;
        }
        if before == b'"' && raw.get(after) == Some(&b'"') {
            // JSON member: "name" <ws> : <ws> "value"
            let colon = skip_space(raw, after + 1);
            if raw.get(colon) != Some(&b':') {
                continue;
            }
            let open = skip_space(raw, colon + 1);
            if raw.get(open) != Some(&b'"') {
                continue;
            }
            let start = open + 1;
            let mut end = start;
            while end < raw.len() && raw[end] != b'"' {
                end += if raw[end] == b'\\' { 2 } else { 1 };
            }
            let end = end.min(raw.len());
            if end > start {
                spans.push((start, end));
            }
            continue;
        }
        match raw.get(after) {
            Some(b':') => {
                let start = skip_space(raw, after + 1);
                let end = run_until(raw, start, |b| matches!(b, b'\n' | b'\r' | b'"'));
                if end > start {
                    spans.push((start, end));
                }
            }
            Some(b'=') => {
                let start = after + 1;
                let end = run_until(raw, start, |b| b == b'"' || b.is_ascii_whitespace());
                if end > start {
                    spans.push((start, end));
                }
            }
            _ => {}
        }
    }
}

fn skip_space(raw: &[u8], from: usize) -> usize {
    run_until(raw, from, |b| !matches!(b, b' ' | b'\t'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(raw: &str) -> String {
        Redaction::default().apply_str(raw).into_owned()
    }

    #[test]
    fn query_values_are_masked_after_separators_only() {
        assert_eq!(
            redact(r#"GET /cb?code=1&access_token=abc.def&x=1 HTTP/1.1"#),
            r#"GET /cb?code=1&access_token=[REDACTED]&x=1 HTTP/1.1"#
        );
        assert_eq!(
            redact(r#"{"path":"/a?TOKEN=s3cr3t#frag"}"#),
            r#"{"path":"/a?TOKEN=[REDACTED]#frag"}"#
        );
        // Not a query parameter: no separator before the name.
        assert_eq!(redact("mytoken=abc"), "mytoken=abc");
        assert_eq!(redact("/a?tokens=abc"), "/a?tokens=abc");
    }

    #[test]
    fn json_header_members_are_masked_with_escapes() {
        assert_eq!(
            redact(r#"{"Authorization": "Bearer a\"b","path":"/"}"#),
            r#"{"Authorization": "[REDACTED]","path":"/"}"#
        );
        assert_eq!(
            redact(r#"{"x-authorization":"keep"}"#),
            r#"{"x-authorization":"keep"}"#
        );
    }

    #[test]
    fn text_and_logfmt_headers_are_masked() {
        assert_eq!(
            redact("cookie: session=1; theme=dark\nnext"),
            "cookie: [REDACTED]\nnext"
        );
        assert_eq!(
            redact("method=GET x-api-key=k123 status=200"),
            "method=GET x-api-key=[REDACTED] status=200"
        );
    }

    #[test]
    fn nothing_to_mask_borrows_and_none_masks_nothing() {
        let raw = "GET /products?id=42";
        assert!(matches!(
            Redaction::default().apply_str(raw),
            Cow::Borrowed(_)
        ));
        let secret = "/a?token=x authorization: y";
        assert_eq!(Redaction::none().apply_str(secret), secret);
    }

    #[test]
    fn configured_names_replace_the_defaults() {
        let r = Redaction::new(&["X-Tenant-Key"], &["session"]);
        assert_eq!(
            r.apply_str("/a?session=1&token=2 x-tenant-key: k").as_ref(),
            "/a?session=[REDACTED]&token=2 x-tenant-key: [REDACTED]"
        );
    }

    #[test]
    fn truncated_and_odd_input_never_panics() {
        let r = Redaction::default();
        for raw in [
            &b"\"authorization\""[..],
            b"\"authorization\":",
            b"\"authorization\": \"unterminated\\",
            b"?token=",
            b"token",
            b"",
            b"\xff?token=\xfe",
        ] {
            let _ = r.apply(raw);
        }
        assert_eq!(
            r.apply(b"\xff?token=\xfe x").as_ref(),
            b"\xff?token=[REDACTED] x"
        );
    }
}
