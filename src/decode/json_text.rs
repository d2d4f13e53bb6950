//! A small validating JSON reader over text already known to be UTF-8: string
//! scanning and unescaping, number tokens and value skipping, for the shipper
//! envelope fast path ([`super::envelope`]).
//!
//! Every method answers `None` whenever the input is not JSON that serde_json
//! surely accepts with the same value: bad escapes, lone surrogates, control
//! bytes in strings, numbers serde_json cannot hold, nesting deeper than
//! [`MAX_DEPTH`]. The caller then takes the serde path, which decides and
//! names the error, so errors never come from here.

use std::borrow::Cow;

use super::json_log::Scalar;

/// Deepest nesting the reader follows (serde_json's own limit is 128).
pub(crate) const MAX_DEPTH: u32 = 100;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A mask with the high bit set in (at least) the lowest byte of `word`
/// (little-endian) that is `"`, `\` or a control byte (< 0x20); bits above
/// that byte may be spurious, bits below it never are.
#[inline(always)]
fn special_mask(word: u64) -> u64 {
    let quotes = word ^ (ONES * u64::from(b'"'));
    let backslashes = word ^ (ONES * u64::from(b'\\'));
    ((quotes.wrapping_sub(ONES) & !quotes)
        | (backslashes.wrapping_sub(ONES) & !backslashes)
        | (word.wrapping_sub(ONES * 0x20) & !word))
        & HIGHS
}

/// True for the bytes a JSON string cannot hold unescaped, and its quote.
#[inline(always)]
fn is_special(byte: u8) -> bool {
    byte == b'"' || byte == b'\\' || byte < 0x20
}

/// The eight bytes at `at` as a little-endian word, if there are eight.
#[inline(always)]
fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// Bytes per [`special_bits`] step.
const CHUNK: usize = 16;

/// Bit `i` set when byte `i` of `chunk` is `"`, `\` or a control byte.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn special_bits(chunk: &[u8; CHUNK]) -> u32 {
    // SAFETY: the only requirement of calling a `#[target_feature]` function
    // is that the CPU has the feature; SSE2 is enabled for the whole build
    // (the `cfg` above; it is part of the x86-64 baseline), so every CPU this
    // binary runs on has it. The function itself touches no raw pointers.
    unsafe { special_bits_sse2(chunk) }
}

/// [`special_bits`] with SSE2 intrinsics.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
#[inline]
fn special_bits_sse2(chunk: &[u8; CHUNK]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_set_epi64x,
    };
    // Bytes go in through `_mm_set_epi64x` from safe array reads (the
    // compiler makes it one unaligned load): no pointer is dereferenced.
    let (low, high) = chunk.split_at(8);
    let mut low_word = [0u8; 8];
    let mut high_word = [0u8; 8];
    low_word.copy_from_slice(low);
    high_word.copy_from_slice(high);
    let bytes = _mm_set_epi64x(i64::from_le_bytes(high_word), i64::from_le_bytes(low_word));
    let is_quote = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'"' as i8));
    let is_backslash = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'\\' as i8));
    // Unsigned `byte <= 0x1f` is `min(byte, 0x1f) == byte`.
    let is_control = _mm_cmpeq_epi8(_mm_min_epu8(bytes, _mm_set1_epi8(0x1f)), bytes);
    _mm_movemask_epi8(_mm_or_si128(
        _mm_or_si128(is_quote, is_backslash),
        is_control,
    )) as u32
}

/// [`special_bits`] byte by byte (other architectures; also the reference
/// the SSE2 version is tested against).
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline]
fn special_bits_portable(chunk: &[u8; CHUNK]) -> u32 {
    let mut bits = 0;
    for (i, &byte) in chunk.iter().enumerate() {
        bits |= u32::from(is_special(byte)) << i;
    }
    bits
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn special_bits(chunk: &[u8; CHUNK]) -> u32 {
    special_bits_portable(chunk)
}

/// The [`CHUNK`] bytes at `at`, if there are that many.
#[inline(always)]
fn chunk_at(bytes: &[u8], at: usize) -> Option<&[u8; CHUNK]> {
    bytes.get(at..at.checked_add(CHUNK)?)?.try_into().ok()
}

/// The index of the first `"`, `\` or control byte at or after `at`, or
/// `bytes.len()`: sixteen bytes a step, then eight, then one.
#[inline]
fn find_special(bytes: &[u8], mut at: usize) -> usize {
    while let Some(chunk) = chunk_at(bytes, at) {
        let bits = special_bits(chunk);
        if bits != 0 {
            return at + bits.trailing_zeros() as usize;
        }
        at += CHUNK;
    }
    while let Some(word) = word_at(bytes, at) {
        let mask = special_mask(word);
        if mask != 0 {
            return at + (mask.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while let Some(&byte) = bytes.get(at) {
        if is_special(byte) {
            return at;
        }
        at += 1;
    }
    at
}

/// The value of four hex digits.
#[inline]
fn hex4(digits: &[u8]) -> Option<u32> {
    let mut value = 0;
    for &digit in digits.get(..4)? {
        value = value * 16 + char::from(digit).to_digit(16)?;
    }
    Some(value)
}

/// Decodes the `\u` escape at `at` (the backslash), with its low half when it
/// is a high surrogate. Returns the character and the escape's length; `None`
/// for bad hex digits and lone or mismatched surrogates.
#[inline]
fn unicode_escape(bytes: &[u8], at: usize) -> Option<(char, usize)> {
    let first = hex4(bytes.get(at + 2..)?)?;
    match first {
        0xD800..=0xDBFF => {
            if bytes.get(at + 6..at + 8)? != b"\\u" {
                return None;
            }
            let second = hex4(bytes.get(at + 8..)?)?;
            if !(0xDC00..=0xDFFF).contains(&second) {
                return None;
            }
            let code = 0x1_0000 + ((first - 0xD800) << 10) + (second - 0xDC00);
            Some((char::from_u32(code)?, 12))
        }
        0xDC00..=0xDFFF => None,
        _ => Some((char::from_u32(first)?, 6)),
    }
}

/// The character a one-letter escape (`\"`, `\n`, ...) stands for.
#[inline]
fn simple_escape(letter: u8) -> Option<u8> {
    Some(match letter {
        b'"' => b'"',
        b'\\' => b'\\',
        b'/' => b'/',
        b'b' => 0x08,
        b'f' => 0x0C,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        _ => return None,
    })
}

/// Exact powers of ten (every one up to 1e22 is an `f64`).
const POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The value serde_json gives a number token (already checked against the
/// JSON grammar) that is a plain non-negative decimal: digits, optionally a
/// fraction, no sign or exponent, all its digits read as an integer below
/// 2^53. An integer is [`Scalar::Int`] (serde_json's `visit_u64`); a fraction
/// is `digits / 10^k`, both operands exact, so one correctly rounded
/// division, which is what serde_json computes for it (with or without its
/// `float_roundtrip` feature). `None` for any other token.
#[inline]
fn plain_number(token: &str) -> Option<Scalar<'static>> {
    let mut significand: u64 = 0;
    let mut fraction_digits: Option<usize> = None;
    for &byte in token.as_bytes() {
        match byte {
            b'0'..=b'9' => {
                significand = significand * 10 + u64::from(byte - b'0');
                if significand >= 1 << 53 {
                    return None;
                }
                if let Some(count) = &mut fraction_digits {
                    *count += 1;
                }
            }
            b'.' if fraction_digits.is_none() => fraction_digits = Some(0),
            _ => return None,
        }
    }
    match fraction_digits {
        None => Some(Scalar::Int(i64::try_from(significand).ok()?)),
        Some(count) => Some(Scalar::Float(
            significand as f64 / POWERS_OF_TEN.get(count)?,
        )),
    }
}

/// A cursor over one JSON text.
pub(crate) struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `text`.
    pub(crate) fn new(text: &'a str) -> Self {
        Reader { text, pos: 0 }
    }

    #[inline(always)]
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// Skips JSON whitespace and returns the next byte, if any.
    #[inline]
    pub(crate) fn peek(&mut self) -> Option<u8> {
        let bytes = self.bytes();
        while let Some(&byte) = bytes.get(self.pos) {
            if !matches!(byte, b' ' | b'\n' | b'\t' | b'\r') {
                return Some(byte);
            }
            self.pos += 1;
        }
        None
    }

    /// Skips whitespace and consumes `byte`, or answers `None`.
    #[inline]
    pub(crate) fn eat(&mut self, byte: u8) -> Option<()> {
        if self.peek()? != byte {
            return None;
        }
        self.pos += 1;
        Some(())
    }

    /// Skips whitespace and returns the position of the next byte (`None`
    /// at the end of the text).
    #[inline]
    pub(crate) fn position(&mut self) -> Option<usize> {
        self.peek()?;
        Some(self.pos)
    }

    /// The position just after what was read last.
    #[inline]
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    /// Moves to `end`, past a value starting at the current position that
    /// an earlier reader already read through to `end` over this same text:
    /// a valid value starting at one position has one end, so this is what
    /// [`Reader::skip_value`] would do.
    #[inline]
    pub(crate) fn step_over_read_value(&mut self, end: usize) {
        self.pos = end;
    }

    /// True when only whitespace is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// Starts reading an object's members after its `{`: `Some(true)` when a
    /// member follows, `Some(false)` when the object is empty (its `}` eaten).
    #[inline]
    pub(crate) fn first_member(&mut self) -> Option<bool> {
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(false);
        }
        Some(true)
    }

    /// After a member's value: `Some(true)` when another member follows (its
    /// `,` eaten), `Some(false)` at the object's `}` (eaten).
    #[inline]
    pub(crate) fn next_member(&mut self) -> Option<bool> {
        match self.peek()? {
            b',' => {
                self.pos += 1;
                Some(true)
            }
            b'}' => {
                self.pos += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// Reads a member key and its `:`. Keys with escapes answer `None`
    /// (serde_json unescapes keys; no shipper writes escaped keys).
    #[inline]
    pub(crate) fn key(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.pos;
        let end = find_special(self.bytes(), start);
        if self.bytes().get(end) != Some(&b'"') {
            return None;
        }
        self.pos = end + 1;
        self.eat(b':')?;
        self.text.get(start..end)
    }

    /// Reads a string value (after whitespace): borrowed when it has no
    /// escapes, else unescaped into a `String` of the text's size.
    #[inline]
    pub(crate) fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.pos;
        let bytes = self.bytes();
        let end = find_special(bytes, start);
        match bytes.get(end)? {
            b'"' => {
                self.pos = end + 1;
                self.text.get(start..end).map(Cow::Borrowed)
            }
            b'\\' => self.unescape(start, end).map(Cow::Owned),
            _ => None,
        }
    }

    /// Unescapes the string whose text starts at `start` and whose first
    /// escape is at `first_escape`; leaves the reader after its closing quote.
    fn unescape(&mut self, start: usize, first_escape: usize) -> Option<String> {
        let bytes = self.bytes();
        // An escape is never shorter than what it stands for, so the output
        // never runs ahead of the input: with a buffer the size of the rest
        // of the text, a sixteen-byte step (which copies a whole chunk of the
        // input and then keeps only the bytes before its special byte) always
        // fits. Writing through a cursor keeps the length bookkeeping out of
        // the per-escape loop.
        let mut out = vec![0u8; bytes.len() - start];
        let prefix = bytes.get(start..first_escape)?;
        out.get_mut(..prefix.len())?.copy_from_slice(prefix);
        let mut written = prefix.len();
        let mut at = first_escape;
        loop {
            // `at` is at a special byte.
            match *bytes.get(at)? {
                b'"' => break,
                b'\\' => {
                    let letter = *bytes.get(at + 1)?;
                    if letter == b'u' {
                        let (decoded, len) = unicode_escape(bytes, at)?;
                        let mut buffer = [0; 4];
                        let encoded = decoded.encode_utf8(&mut buffer).as_bytes();
                        out.get_mut(written..written + encoded.len())?
                            .copy_from_slice(encoded);
                        written += encoded.len();
                        at += len;
                    } else {
                        *out.get_mut(written)? = simple_escape(letter)?;
                        written += 1;
                        at += 2;
                    }
                }
                _ => return None,
            }
            // Copy up to the next special byte, sixteen bytes at a time.
            loop {
                let Some(chunk) = chunk_at(bytes, at) else {
                    let end = find_special(bytes, at);
                    let run = bytes.get(at..end)?;
                    out.get_mut(written..written + run.len())?
                        .copy_from_slice(run);
                    written += run.len();
                    at = end;
                    break;
                };
                out.get_mut(written..written + CHUNK)?
                    .copy_from_slice(chunk);
                let bits = special_bits(chunk);
                if bits != 0 {
                    let run = bits.trailing_zeros() as usize;
                    written += run;
                    at += run;
                    break;
                }
                written += CHUNK;
                at += CHUNK;
            }
        }
        self.pos = at + 1;
        out.truncate(written);
        String::from_utf8(out).ok()
    }

    /// Skips a string (after whitespace), validating it as [`Reader::string`]
    /// does, without building it.
    #[inline]
    fn skip_string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        let bytes = self.bytes();
        let mut at = self.pos;
        loop {
            at = find_special(bytes, at);
            match *bytes.get(at)? {
                b'"' => break,
                b'\\' => {
                    let letter = *bytes.get(at + 1)?;
                    at += if letter == b'u' {
                        unicode_escape(bytes, at)?.1
                    } else {
                        simple_escape(letter)?;
                        2
                    };
                }
                _ => return None,
            }
        }
        self.pos = at + 1;
        Some(())
    }

    /// Reads a number token (after whitespace) as the JSON grammar has it:
    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number_token(&mut self) -> Option<&'a str> {
        self.peek()?;
        let bytes = self.bytes();
        let start = self.pos;
        let mut at = start;
        let digits = |at: &mut usize| {
            let from = *at;
            while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at > from
        };
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        match bytes.get(at)? {
            b'0' => at += 1,
            b'1'..=b'9' => {
                digits(&mut at);
            }
            _ => return None,
        }
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            if !digits(&mut at) {
                return None;
            }
        }
        if matches!(bytes.get(at), Some(b'e' | b'E')) {
            at += 1;
            if matches!(bytes.get(at), Some(b'+' | b'-')) {
                at += 1;
            }
            if !digits(&mut at) {
                return None;
            }
        }
        self.pos = at;
        self.text.get(start..at)
    }

    /// Reads `word` (`true`, `false`, `null`).
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos + word.len();
        if self.bytes().get(self.pos..end)? != word {
            return None;
        }
        self.pos = end;
        Some(())
    }

    /// Reads any value as a [`Scalar`] (objects and arrays are skipped and
    /// read as [`Scalar::Nested`]). `depth` is the nesting of the value.
    pub(crate) fn scalar(&mut self, depth: u32) -> Option<Scalar<'a>> {
        match self.peek()? {
            b'"' => self.string().map(Scalar::Str),
            b'{' | b'[' => {
                self.skip_value(depth)?;
                Some(Scalar::Nested)
            }
            b't' => self.literal(b"true").map(|()| Scalar::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Scalar::Bool(false)),
            b'n' => self.literal(b"null").map(|()| Scalar::Null),
            _ => {
                let token = self.number_token()?;
                // serde_json decides any other number (and rejects what it
                // cannot hold).
                plain_number(token).or_else(|| serde_json::from_str(token).ok())
            }
        }
    }

    /// Skips any value (after whitespace), validating it. `depth` is the
    /// nesting of the value.
    pub(crate) fn skip_value(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.pos += 1;
                let mut more = self.first_member()?;
                while more {
                    self.skip_string()?;
                    self.eat(b':')?;
                    self.skip_value(depth + 1)?;
                    more = self.next_member()?;
                }
                Some(())
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.pos += 1;
                if self.peek()? == b']' {
                    self.pos += 1;
                    return Some(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    match self.peek()? {
                        b',' => self.pos += 1,
                        b']' => {
                            self.pos += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number_token().map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference: serde_json's own reading of a string literal.
    fn serde_string(literal: &str) -> Option<String> {
        serde_json::from_str::<String>(literal).ok()
    }

    fn read_string(literal: &str) -> Option<String> {
        let mut reader = Reader::new(literal);
        let text = reader.string()?;
        reader.at_end().then(|| text.into_owned())
    }

    fn skips(literal: &str) -> bool {
        let mut reader = Reader::new(literal);
        reader.skip_value(0).is_some() && reader.at_end()
    }

    #[test]
    fn strings_read_as_serde_reads_them() {
        let cases = [
            r#""""#,
            r#""plain""#,
            r#""a\"b""#,
            r#""\\\/\b\f\n\r\t""#,
            r#""\u0000""#,
            r#""\u00e9 \u20AC \uFFFF""#,
            r#""\ud83d\ude00""#,
            r#""x\uD83D\uDE00y""#,
            r#""{\"k\":\"v\",\"n\":1}""#,
            r#""0123456789abcdef\"0123456789abcdef\n""#,
            "\"é ü 日本 \\n 🦀\"",
            r#""long run without escapes, long enough for several words\"""#,
        ];
        for case in cases {
            let expected = serde_string(case);
            assert!(expected.is_some(), "{case}");
            assert_eq!(read_string(case), expected, "{case}");
            assert!(skips(case), "{case}");
        }
    }

    #[test]
    fn bad_strings_are_refused() {
        let cases = [
            r#""\ud800""#,
            r#""\ud800x""#,
            r#""\ud800\u0041""#,
            r#""\udc00""#,
            r#""\udc00\ud800""#,
            r#""\u12""#,
            r#""\u12g4""#,
            r#""\x41""#,
            r#""\'""#,
            "\"a\tb\"",
            "\"a\nb\"",
            "\"\u{1}\"",
            r#""unterminated"#,
            r#""unterminated\""#,
            r#""\"#,
        ];
        for case in cases {
            assert_eq!(read_string(case), None, "{case}");
        }
        for case in [r#""\x41""#, "\"a\tb\"", r#""unterminated"#, r#""\u12g4""#] {
            assert!(!skips(case), "{case}");
        }
    }

    #[test]
    fn numbers_follow_the_grammar() {
        for good in ["0", "-0", "12", "-12.5", "1e5", "1E+5", "1.5e-3", "1e999"] {
            assert!(skips(good), "{good}");
        }
        for bad in [
            "01", "-", "1.", ".5", "1e", "1e+", "+1", "--1", "0x1", "1.e3",
        ] {
            assert!(!skips(bad), "{bad}");
        }
        // Out of f64 range: serde_json refuses it as a value.
        assert_eq!(Reader::new("1e999").scalar(0), None);
        assert_eq!(Reader::new("-1.5").scalar(0), Some(Scalar::Float(-1.5)));
        assert_eq!(Reader::new("7").scalar(0), Some(Scalar::Int(7)));
    }

    #[test]
    fn values_are_skipped_and_nesting_is_bounded() {
        for good in [
            "{}",
            "[]",
            r#"{"a":[1,2,{"b":null}],"c":true,"d":false}"#,
            " { \"a\" : [ 1 , \"x\" ] } ",
        ] {
            assert!(skips(good), "{good}");
        }
        for bad in [
            "{,}",
            "[1,]",
            r#"{"a":1,}"#,
            r#"{"a"}"#,
            r#"{"a":}"#,
            "[1 2]",
            "tru",
            "nul",
            "{",
        ] {
            assert!(!skips(bad), "{bad}");
        }
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(skips(&deep(MAX_DEPTH as usize)));
        assert!(!skips(&deep(MAX_DEPTH as usize + 1)));
    }

    /// The first special byte at or after `at`, one byte at a time.
    fn find_special_bytewise(bytes: &[u8], at: usize) -> usize {
        bytes
            .iter()
            .skip(at)
            .position(|&byte| is_special(byte))
            .map_or(bytes.len(), |offset| at + offset)
    }

    #[test]
    fn special_bits_mark_quotes_backslashes_and_control_bytes() {
        let mut chunk = *b"ab\"cd\\ef\x1f gh\x7f\xff\x00z";
        assert_eq!(special_bits(&chunk), special_bits_portable(&chunk));
        assert_eq!(special_bits(&chunk), 0b0100_0001_0010_0100);
        chunk = [b' '; CHUNK];
        assert_eq!(special_bits(&chunk), 0);
        for byte in 0..=255u8 {
            chunk[7] = byte;
            let expected = if is_special(byte) { 1 << 7 } else { 0 };
            assert_eq!(special_bits(&chunk), expected, "{byte:#x}");
        }
    }

    #[test]
    fn plain_numbers_read_as_serde_reads_them() {
        for token in [
            "0",
            "7",
            "1787220930.123456",
            "0.1",
            "0.3000000000000004",
            "1.50",
            "9007199254740991",
            "900719925474099.1",
        ] {
            let expected: Scalar<'_> = serde_json::from_str(token).unwrap_or(Scalar::Null);
            assert_eq!(plain_number(token), Some(expected), "{token}");
        }
        for token in [
            "-1",
            "1e5",
            "9007199254740992",
            "0.30000000000000004",
            "0.00000000000000000000001",
        ] {
            assert_eq!(plain_number(token), None, "{token}");
        }
    }

    proptest! {
        /// The SSE2 chunk mask is the byte-by-byte one, and the search finds
        /// the first special byte from any start.
        #[test]
        fn special_search_matches_a_byte_loop(
            bytes in proptest::collection::vec(
                prop_oneof![Just(b'"'), Just(b'\\'), Just(0x1fu8), Just(0x80u8), b' '..=b'~'],
                0..80,
            ),
            start in 0usize..80,
        ) {
            if let Some(chunk) = chunk_at(&bytes, 0) {
                prop_assert_eq!(special_bits(chunk), special_bits_portable(chunk));
            }
            let start = start.min(bytes.len());
            prop_assert_eq!(find_special(&bytes, start), find_special_bytewise(&bytes, start));
        }
    }

    proptest! {
        /// Every number the grammar takes reads to serde_json's value, bit
        /// for bit.
        #[test]
        fn numbers_read_as_serde_reads_them(
            negative in any::<bool>(),
            integer in prop_oneof![Just("0".to_owned()), "[1-9][0-9]{0,19}"],
            fraction in proptest::option::of("[0-9]{1,20}"),
            exponent in proptest::option::of("[eE][+-]?[0-9]{1,3}"),
        ) {
            let token = format!(
                "{}{integer}{}{}",
                if negative { "-" } else { "" },
                fraction.map(|digits| format!(".{digits}")).unwrap_or_default(),
                exponent.unwrap_or_default(),
            );
            let expected: Option<Scalar<'_>> = serde_json::from_str(&token).ok();
            let got = Reader::new(&token).scalar(0);
            match (&got, &expected) {
                (Some(Scalar::Float(got)), Some(Scalar::Float(expected))) => {
                    prop_assert_eq!(got.to_bits(), expected.to_bits(), "{}", token);
                }
                _ => prop_assert_eq!(&got, &expected, "{}", token),
            }
        }

        /// Any string literal that serde_json reads is read to the same text;
        /// one it refuses is refused.
        #[test]
        fn string_reading_agrees_with_serde(
            parts in proptest::collection::vec(
                prop_oneof![
                    "[a-z0-9 ]{0,12}",
                    Just("\\\"".to_owned()),
                    Just("\\\\".to_owned()),
                    Just("\\n".to_owned()),
                    Just("\\/".to_owned()),
                    Just("é".to_owned()),
                    Just("\\u00e9".to_owned()),
                    Just("\\ud83d".to_owned()),
                    Just("\\ude00".to_owned()),
                    Just("\\u0000".to_owned()),
                    Just("\\q".to_owned()),
                    Just("\t".to_owned()),
                    Just("\"".to_owned()),
                    Just("\\".to_owned()),
                ],
                0..24,
            )
        ) {
            let literal = format!("\"{}\"", parts.concat());
            let expected = serde_string(&literal);
            let got = read_string(&literal);
            // Refusing is always allowed (serde then decides); reading
            // differently never is. Only lone surrogates may be refused
            // where serde_json reads.
            match (&got, &expected) {
                (Some(got), Some(expected)) => prop_assert_eq!(got, expected),
                (Some(got), None) => prop_assert!(false, "read {got:?} where serde refuses {literal}"),
                (None, Some(_)) => prop_assert!(literal.contains("\\ud"), "{literal}"),
                (None, None) => {}
            }
            if got.is_some() {
                prop_assert!(skips(&literal));
            }
        }
    }
}
