//! A small, panic-free field scanner for space-separated text access logs, and
//! the number/address helpers shared by every decoder.

use std::borrow::Cow;

use super::error::DecodeError;

/// A window over a line from which fields are taken from the front or the back.
///
/// Quoted fields are not escaped by Envoy (a `"` inside a header value is
/// printed as is), so a closing quote is a `"` followed by a space or the end of
/// the window, and an opening quote taken from the back is a `"` preceded by a
/// space or the start of the window. Taking the fixed fields from both ends
/// leaves a free-text field (User-Agent) in the middle.
#[derive(Debug, Clone)]
pub(crate) struct FieldCursor<'a> {
    line: &'a str,
    start: usize,
    end: usize,
}

impl<'a> FieldCursor<'a> {
    /// A cursor over the whole line.
    pub(crate) fn new(line: &'a str) -> Self {
        FieldCursor {
            line,
            start: 0,
            end: line.len(),
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.line.as_bytes()
    }

    /// Skips spaces at the front.
    fn skip_front_spaces(&mut self) {
        while self.start < self.end && self.bytes().get(self.start) == Some(&b' ') {
            self.start += 1;
        }
    }

    /// Skips spaces at the back.
    fn skip_back_spaces(&mut self) {
        while self.end > self.start && self.bytes().get(self.end - 1) == Some(&b' ') {
            self.end -= 1;
        }
    }

    /// The byte at the front of the window (after spaces), if any.
    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.skip_front_spaces();
        if self.start < self.end {
            self.bytes().get(self.start).copied()
        } else {
            None
        }
    }

    /// The unread window.
    pub(crate) fn rest(&self) -> &'a str {
        self.line.get(self.start..self.end).unwrap_or("")
    }

    /// True when nothing but spaces is left.
    pub(crate) fn is_empty(&mut self) -> bool {
        self.peek().is_none()
    }

    /// Takes a token up to the next space.
    pub(crate) fn bare(&mut self) -> Option<&'a str> {
        self.skip_front_spaces();
        if self.start >= self.end {
            return None;
        }
        let window = self.bytes().get(self.start..self.end)?;
        let len = memchr::memchr(b' ', window).unwrap_or(window.len());
        let token = self.line.get(self.start..self.start + len)?;
        self.start += len;
        Some(token)
    }

    /// Takes a `"quoted"` field; returns its content without the quotes.
    pub(crate) fn quoted(&mut self) -> Option<&'a str> {
        self.skip_front_spaces();
        let bytes = self.bytes();
        if bytes.get(self.start) != Some(&b'"') {
            return None;
        }
        let mut search = self.start + 1;
        loop {
            let window = bytes.get(search..self.end)?;
            let close = search + memchr::memchr(b'"', window)?;
            if close + 1 == self.end || bytes.get(close + 1) == Some(&b' ') {
                let content = self.line.get(self.start + 1..close)?;
                self.start = close + 1;
                return Some(content);
            }
            search = close + 1;
        }
    }

    /// Takes a field delimited by `open` and `close` bytes (e.g. `[...]`), up to
    /// the first `close`.
    pub(crate) fn delimited(&mut self, open: u8, close: u8) -> Option<&'a str> {
        self.skip_front_spaces();
        let bytes = self.bytes();
        if bytes.get(self.start) != Some(&open) {
            return None;
        }
        let window = bytes.get(self.start + 1..self.end)?;
        let close_at = self.start + 1 + memchr::memchr(close, window)?;
        let content = self.line.get(self.start + 1..close_at)?;
        self.start = close_at + 1;
        Some(content)
    }

    /// Takes a token from the back, up to the previous space.
    pub(crate) fn bare_back(&mut self) -> Option<&'a str> {
        self.skip_back_spaces();
        if self.end <= self.start {
            return None;
        }
        let window = self.bytes().get(self.start..self.end)?;
        let begin = memchr::memrchr(b' ', window).map_or(self.start, |at| self.start + at + 1);
        let token = self.line.get(begin..self.end)?;
        self.end = begin;
        Some(token)
    }

    /// Takes a `"quoted"` field from the back; returns its content.
    pub(crate) fn quoted_back(&mut self) -> Option<&'a str> {
        self.skip_back_spaces();
        let bytes = self.bytes();
        if self.end <= self.start + 1 || bytes.get(self.end - 1) != Some(&b'"') {
            return None;
        }
        let mut search_end = self.end - 1;
        loop {
            let window = bytes.get(self.start..search_end)?;
            let open = self.start + memchr::memrchr(b'"', window)?;
            if open == self.start || bytes.get(open - 1) == Some(&b' ') {
                let content = self.line.get(open + 1..self.end - 1)?;
                self.end = open;
                return Some(content);
            }
            search_end = open;
        }
    }
}

/// `None` for the "unset" spellings (`-`, empty), else the value.
#[inline]
pub(crate) fn non_dash(value: &str) -> Option<&str> {
    match value {
        "" | "-" => None,
        value => Some(value),
    }
}

/// Parses an unsigned integer field; `-`/empty → `None`; a negative number →
/// `absurd_value`; anything else non-numeric → `invalid_value`.
pub(crate) fn parse_count(field: &'static str, raw: &str) -> Result<Option<u64>, DecodeError> {
    let Some(value) = non_dash(raw) else {
        return Ok(None);
    };
    let value = value.strip_prefix('+').unwrap_or(value);
    if let Ok(number) = value.parse::<u64>() {
        return Ok(Some(number));
    }
    if value.starts_with('-')
        && value
            .get(1..)
            .is_some_and(|digits| digits.parse::<u64>().is_ok())
    {
        return Err(DecodeError::absurd(field, raw));
    }
    Err(DecodeError::invalid(field, raw))
}

/// Parses a timer in ms where `-1` means "phase not reached" (HAProxy).
pub(crate) fn parse_timer(field: &'static str, raw: &str) -> Result<Option<u64>, DecodeError> {
    if raw == "-1" {
        return Ok(None);
    }
    parse_count(field, raw)
}

/// Validates an HTTP status: `0` (Envoy, no response sent) and `-1` (HAProxy)
/// mean none; anything else outside 100..=599 is `absurd_value`.
#[inline]
pub(crate) fn check_status(field: &'static str, status: i64) -> Result<Option<u16>, DecodeError> {
    match status {
        0 | -1 => Ok(None),
        100..=599 => Ok(u16::try_from(status).ok()),
        _ => Err(DecodeError::absurd(field, status)),
    }
}

/// Parses a status field given as text.
pub(crate) fn parse_status(field: &'static str, raw: &str) -> Result<Option<u16>, DecodeError> {
    let Some(value) = non_dash(raw) else {
        return Ok(None);
    };
    match value.parse::<i64>() {
        Ok(status) => check_status(field, status),
        Err(_) => Err(DecodeError::invalid(field, raw)),
    }
}

/// The port of an `ip:port` / `[v6]:port` address; `-`/unset → `None`, port 0
/// → `absurd_value`, no port or a bad one → `invalid_value`.
#[inline(never)]
pub(crate) fn port_of_address(field: &'static str, raw: &str) -> Result<Option<u16>, DecodeError> {
    let Some(address) = non_dash(raw) else {
        return Ok(None);
    };
    if let Some(port) = trailing_port(address.as_bytes()) {
        return if port == 0 {
            Err(DecodeError::absurd(field, raw))
        } else {
            Ok(Some(port))
        };
    }
    let Some((_, port)) = address.rsplit_once(':') else {
        return Err(DecodeError::invalid(field, raw));
    };
    parse_port(field, port, raw)
}

/// [`port_of_address`] with its common case (an address ending in `:` and
/// a port of eight bytes or more of text) inline; the same result.
#[inline(always)]
pub(crate) fn port_of_address_inline(
    field: &'static str,
    raw: &str,
) -> Result<Option<u16>, DecodeError> {
    match trailing_port_word(raw.as_bytes()) {
        Some(port) if port != 0 => Ok(Some(port)),
        _ => port_of_address(field, raw),
    }
}

/// The common `…:<1 to 5 digits>` ending, read backwards without the string
/// search and the general integer parser; `None` for anything else (a sign,
/// more digits, no colon, a value over 65535), which the general path then
/// decides. Whenever it answers, the general path answers the same.
#[inline]
fn trailing_port(bytes: &[u8]) -> Option<u16> {
    if bytes.len() >= 8 {
        trailing_port_word(bytes)
    } else {
        trailing_port_by_byte(bytes)
    }
}

/// [`trailing_port`] of a text of at least eight bytes (`None` for a shorter
/// one): the last eight bytes as one word, the digits the text ends with
/// its top bytes, counted with one `leading_zeros`.
#[inline(always)]
fn trailing_port_word(bytes: &[u8]) -> Option<u16> {
    let last = bytes
        .len()
        .checked_sub(8)
        .and_then(|start| bytes.get(start..))
        .and_then(|last| <[u8; 8]>::try_from(last).ok())?;
    let word = u64::from_le_bytes(last);
    let digits = (non_digit_bytes(word).leading_zeros() / 8) as usize;
    // 1 to 5 digits after a ':' (more than 5: the byte before the last 5 is
    // a digit, not a ':').
    if !(1..=5).contains(&digits) || last[7 - digits] != b':' {
        return None;
    }
    let number = word & (u64::MAX << (8 * (8 - digits)));
    u16::try_from(digit_word_value(number)).ok()
}

/// [`trailing_port`] one byte at a time (short texts; the reference the
/// word version is tested against).
fn trailing_port_by_byte(bytes: &[u8]) -> Option<u16> {
    let mut value = 0u32;
    let mut scale = 1u32;
    let mut at = bytes.len();
    while at > 0 && bytes.len() - at < 5 {
        let digit = bytes[at - 1];
        if !digit.is_ascii_digit() {
            break;
        }
        value += u32::from(digit - b'0') * scale;
        scale *= 10;
        at -= 1;
    }
    if at == bytes.len() || at == 0 || bytes[at - 1] != b':' {
        return None;
    }
    u16::try_from(value).ok()
}

/// A byte mask of `word`: each byte is nonzero exactly when that byte of
/// `word` is not an ASCII digit (high nibble 3 and low nibble at most 9,
/// tested per nibble, so no carry crosses bytes).
#[inline(always)]
pub(crate) fn non_digit_bytes(word: u64) -> u64 {
    const HIGH: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    const LOW: u64 = 0x0f0f_0f0f_0f0f_0f0f;
    const THREES: u64 = 0x3030_3030_3030_3030;
    const SIXES: u64 = 0x0606_0606_0606_0606;
    const SIXTEENS: u64 = 0x1010_1010_1010_1010;
    let not_three = (word & HIGH) ^ THREES;
    let over_nine = ((word & LOW) + SIXES) & SIXTEENS;
    not_three | over_nine
}

/// The number whose ASCII digits are the bytes of `word` read from the
/// lowest (the most significant digit) up, with zero bytes as leading zeros
/// (at most eight digits): pairs, quads and octets combined with three
/// multiplications (simdjson's `parse_eight_digits_unrolled`).
#[inline(always)]
pub(crate) fn digit_word_value(word: u64) -> u32 {
    let ones = word & 0x0f0f_0f0f_0f0f_0f0f;
    let pairs = (ones.wrapping_mul(10 << 8 | 1) >> 8) & 0x00ff_00ff_00ff_00ff;
    let quads = (pairs.wrapping_mul(100 << 16 | 1) >> 16) & 0x0000_ffff_0000_ffff;
    // At most 99,999,999: fits.
    (quads.wrapping_mul(10_000 << 32 | 1) >> 32) as u32
}

/// Parses a port number; 0 is `absurd_value`.
pub(crate) fn parse_port(
    field: &'static str,
    port: &str,
    raw: &str,
) -> Result<Option<u16>, DecodeError> {
    match port.parse::<u16>() {
        Ok(0) => Err(DecodeError::absurd(field, raw)),
        Ok(port) => Ok(Some(port)),
        Err(_) => Err(DecodeError::invalid(field, raw)),
    }
}

/// Converts seconds with a fraction (NGINX `$request_time`, `0.012`) into
/// whole milliseconds, rounding; negative → `absurd_value`.
pub(crate) fn seconds_to_ms(field: &'static str, seconds: f64) -> Result<u64, DecodeError> {
    if !seconds.is_finite() || !(0.0..=1.0e12).contains(&seconds) {
        return Err(DecodeError::absurd(field, seconds));
    }
    // Bounded above, so the cast cannot saturate surprisingly.
    Ok((seconds * 1000.0).round() as u64)
}

/// Undoes NGINX `escape=default` (`\xXX`) escaping; borrows when there is none.
pub(crate) fn unescape_nginx(raw: &str) -> Cow<'_, str> {
    if memchr::memmem::find(raw.as_bytes(), b"\\x").is_none() {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'\\' && bytes.get(index + 1) == Some(&b'x') {
            let hex = bytes
                .get(index + 2..index + 4)
                .and_then(|pair| std::str::from_utf8(pair).ok())
                .and_then(|pair| u8::from_str_radix(pair, 16).ok());
            if let Some(decoded) = hex {
                out.push(decoded);
                index += 4;
                continue;
            }
        }
        out.push(byte);
        index += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Splits an HTTP request line `METHOD TARGET VERSION` into its three parts.
/// Returns `None` for `-` or a line without two spaces (garbage requests).
pub(crate) fn split_request_line(request: &str) -> Option<(&str, &str, &str)> {
    let request = request.trim();
    let (method, rest) = request.split_once(' ')?;
    let (target, version) = rest.rsplit_once(' ')?;
    if method.is_empty() || target.is_empty() {
        return None;
    }
    Some((method, target.trim(), version))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `port_of_address` without the `trailing_port` shortcut.
    fn port_of_address_reference(raw: &str) -> Result<Option<u16>, DecodeError> {
        let Some(address) = non_dash(raw) else {
            return Ok(None);
        };
        let Some((_, port)) = address.rsplit_once(':') else {
            return Err(DecodeError::invalid("f", raw));
        };
        parse_port("f", port, raw)
    }

    proptest::proptest! {
        /// The word version of `trailing_port` answers as the byte loop.
        #[test]
        fn trailing_port_word_agrees_with_the_byte_loop(
            raw in proptest::collection::vec(proptest::prop_oneof![6 => 0x30u8..0x3a, 2 => proptest::strategy::Just(b':'), 1 => proptest::num::u8::ANY], 0..14),
        ) {
            proptest::prop_assert_eq!(trailing_port(&raw), trailing_port_by_byte(&raw));
        }
    }

    #[test]
    fn port_shortcut_agrees_with_the_general_parse() {
        let mut cases: Vec<String> = [
            "10.0.0.1:80",
            "10.0.0.1:0",
            "10.0.0.1:00080",
            "10.0.0.1:65535",
            "10.0.0.1:65536",
            "10.0.0.1:99999",
            "10.0.0.1:123456",
            "10.0.0.1:+80",
            "10.0.0.1:",
            ":",
            ":1",
            "1",
            "80",
            "-",
            "",
            "[::1]:8080",
            "a:b:7",
            "host:8a",
            "host:a8",
            "x:000000",
            "x:00000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for port in [0u32, 1, 9, 10, 99, 100, 1000, 10080, 65535, 65536, 99999] {
            cases.push(format!("10.244.0.12:{port}"));
        }
        for raw in &cases {
            assert_eq!(
                port_of_address("f", raw),
                port_of_address_reference(raw),
                "{raw}"
            );
            assert_eq!(
                port_of_address_inline("f", raw),
                port_of_address_reference(raw),
                "{raw}"
            );
        }
    }

    proptest::proptest! {
        /// The inline word case answers as the general parse on addresses
        /// of every length, digits and colons dense.
        #[test]
        fn port_of_address_inline_agrees_with_the_general_parse(
            raw in "[0-9:.a\\-]{0,14}",
        ) {
            proptest::prop_assert_eq!(
                port_of_address_inline("f", &raw),
                port_of_address_reference(&raw)
            );
        }
    }

    #[test]
    fn cursor_front_and_back() {
        let line = r#"[ts] "GET / HTTP/1.1" 200 - "a "quoted" ua" "id" "host""#;
        let mut cursor = FieldCursor::new(line);
        assert_eq!(cursor.delimited(b'[', b']'), Some("ts"));
        assert_eq!(cursor.quoted(), Some("GET / HTTP/1.1"));
        assert_eq!(cursor.bare(), Some("200"));
        assert_eq!(cursor.bare(), Some("-"));
        assert_eq!(cursor.quoted_back(), Some("host"));
        assert_eq!(cursor.quoted_back(), Some("id"));
        // From the front, a quote followed by a space closes the field; the
        // Envoy decoder therefore takes the free-text middle with `rest`.
        assert_eq!(cursor.rest().trim(), r#""a "quoted" ua""#);
        assert_eq!(cursor.quoted(), Some(r#"a "quoted"#));
        assert_eq!(cursor.bare(), Some(r#"ua""#));
        assert!(cursor.is_empty());
        assert_eq!(cursor.bare(), None);
        assert_eq!(cursor.bare_back(), None);
        assert_eq!(cursor.quoted_back(), None);
    }

    #[test]
    fn cursor_handles_degenerate_input() {
        for line in ["", " ", "\"", "\"\"", "[", "]", " \" ", "a\"", "\"a"] {
            let mut cursor = FieldCursor::new(line);
            let _ = cursor.quoted();
            let _ = cursor.quoted_back();
            let _ = cursor.delimited(b'[', b']');
            let _ = cursor.bare_back();
            let _ = cursor.bare();
        }
        let mut cursor = FieldCursor::new("\"\"");
        assert_eq!(cursor.quoted(), Some(""));
    }

    #[test]
    fn numbers_and_addresses() {
        assert_eq!(parse_count("f", "12"), Ok(Some(12)));
        assert_eq!(parse_count("f", "-"), Ok(None));
        assert_eq!(parse_count("f", "-5").unwrap_err().reason(), "absurd_value");
        assert_eq!(parse_count("f", "x").unwrap_err().reason(), "invalid_value");
        assert_eq!(parse_timer("f", "-1"), Ok(None));
        assert_eq!(parse_status("s", "200"), Ok(Some(200)));
        assert_eq!(parse_status("s", "0"), Ok(None));
        assert_eq!(
            parse_status("s", "700").unwrap_err().reason(),
            "absurd_value"
        );
        assert_eq!(port_of_address("a", "10.0.0.1:10080"), Ok(Some(10080)));
        assert_eq!(port_of_address("a", "[fd00::1]:8080"), Ok(Some(8080)));
        assert_eq!(
            port_of_address("a", "10.0.0.1:0").unwrap_err().reason(),
            "absurd_value"
        );
        assert_eq!(
            port_of_address("a", "10.0.0.1").unwrap_err().reason(),
            "invalid_value"
        );
        assert_eq!(seconds_to_ms("t", 0.012), Ok(12));
        assert_eq!(
            seconds_to_ms("t", -0.5).unwrap_err().reason(),
            "absurd_value"
        );
    }

    #[test]
    fn nginx_unescape() {
        assert!(matches!(unescape_nginx("plain"), Cow::Borrowed("plain")));
        assert_eq!(unescape_nginx(r"say \x22hi\x22"), "say \"hi\"");
        assert_eq!(unescape_nginx(r"bad \xZZ end\x"), r"bad \xZZ end\x");
        assert_eq!(
            split_request_line("GET /a?b HTTP/1.1"),
            Some(("GET", "/a?b", "HTTP/1.1"))
        );
        assert_eq!(split_request_line("-"), None);
    }
}
