//! A fast path for flat JSON access-log lines: one allocation-free pass over
//! the bytes that feeds [`FlatFields`] exactly as the serde path does.
//!
//! Envoy Gateway's default JSON format (and the other flat layouts) is one
//! object of scalar members. The scanner walks it directly: it finds each key,
//! matches it, borrows string values straight from the line and skips the
//! values it does not need, eight bytes at a time.
//!
//! It is deliberately *narrower* than JSON, never wider: whenever it meets
//! something it does not handle itself it gives up ([`None`]) and the caller
//! decodes the line again with the serde path, which then produces the
//! record, or the dead-letter reason, exactly as before. It gives up on:
//!
//! * any backslash escape in a key or a value (the value would need
//!   unescaping; serde also validates the escape);
//! * control characters (`U+0000`-`U+001F`) inside strings (invalid JSON);
//! * nested objects or arrays (`Scalar::Nested` / skipped by serde);
//! * numbers other than a non-negative integer of at most 18 digits without
//!   leading zeros (negative numbers, fractions, exponents and very large
//!   integers have type-dependent meanings in serde_json, e.g. `-0` is a
//!   float);
//! * any literal other than `true`, `false`, `null`;
//! * anything structurally off (missing `:` or `,`, trailing comma, trailing
//!   characters, truncation);
//! * a field error from [`FlatFields::apply`] (serde reports it in the same
//!   order, so the error is re-derived there).
//!
//! Everything it accepts is valid JSON that serde_json parses to the same
//! sequence of `(key, Scalar)` pairs, so the record is identical; the
//! differential tests in `tests.rs` check that on random and mutated lines.

use std::borrow::Cow;

use super::flat_index::{scan_ascii_payload, scan_compact};
use super::flat_keys::FlatKey;
use super::json_log::{FlatFields, Scalar};
use super::scan::digit_word_value;

/// What a successful scan saw besides the members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FlatScan {
    /// Some string (key or value) is exactly one of the words the envelope
    /// sniffer looks for ([`is_envelope_word`]). Because the scanner accepts
    /// no escapes, every `"` of an accepted line delimits a string, so this is
    /// true exactly when `sniff_envelope` would find one of its quoted words
    /// in the line: a raw line for which it is false needs no sniffing.
    pub(crate) envelope_word_seen: bool,
}

impl FlatScan {
    /// Records that a string was an envelope word: out of line and rare, so
    /// a scan's loop keeps no flag to update per string.
    #[cold]
    #[inline(never)]
    pub(super) fn see_envelope_word(&mut self) {
        self.envelope_word_seen = true;
    }
}

/// Feeds every member of the flat JSON object `line` to `fields`. Returns
/// `None` (with `fields` in an unspecified state) when the line needs the
/// serde path; see the module docs for when.
///
/// Keys are first compared with the ones the previous line of this thread had
/// at the same member index ([`KeyOrder`]); the result is the same with or
/// without that memo.
pub(crate) fn scan_flat_object<'a>(
    line: &'a str,
    keep_headers: &[String],
    fields: &mut FlatFields<'a>,
) -> Option<FlatScan> {
    with_key_order(|memo| scan_with_key_order(line, keep_headers, fields, memo))
}

/// [`scan_flat_object`] of a payload not yet validated as UTF-8, through
/// the compact walk only ([`scan_ascii_payload`]): `None` unless the payload
/// is an ASCII object that walk accepts (the caller then takes the general
/// path); whenever it answers, [`scan_flat_object`] of the payload as text
/// answers the same. On `None`, `ascii_text` is set to the payload as text
/// when that walk's index pass found it all ASCII.
pub(crate) fn scan_ascii_object<'a>(
    payload: &'a [u8],
    keep_headers: &[String],
    fields: &mut FlatFields<'a>,
    ascii_text: &mut Option<&'a str>,
) -> Option<FlatScan> {
    with_key_order(|memo| scan_ascii_payload(payload, keep_headers, fields, memo, ascii_text))
}

/// Runs `scan` with this thread's key-order memo (a fresh one when it cannot
/// be had: the answer is the same, only slower).
#[inline(always)]
fn with_key_order<T>(mut scan: impl FnMut(&mut KeyOrder) -> T) -> T {
    let scanned = KEY_ORDER.try_with(|memo| match memo.try_borrow_mut() {
        Ok(mut memo) => scan(&mut memo),
        // Not reachable (the scan never re-enters itself); a fresh memo
        // gives the same answer.
        Err(_) => scan(&mut KeyOrder::new()),
    });
    match scanned {
        Ok(result) => result,
        // The thread is being torn down: scan without the memo.
        Err(_) => scan(&mut KeyOrder::new()),
    }
}

thread_local! {
    /// The key order of the last line this thread scanned. Constant-initialised
    /// and without a destructor, so an access is a TLS address and the
    /// `RefCell` flag, no lazy initialisation.
    static KEY_ORDER: std::cell::RefCell<KeyOrder> = const {
        std::cell::RefCell::new(KeyOrder::new())
    };
}

/// [`scan_flat_object`] with an explicit key-order memo (read and updated).
///
/// A compact line (no whitespace, escapes or control bytes; the shape every
/// gateway writes) takes the quote-index walk of [`super::flat_index`]; any
/// other line, or one that walk gives up on, the general scanner below from a
/// fresh [`FlatFields`]. The walk accepts only what the general scanner
/// accepts, with the same result, so the answer does not depend on which one
/// ran.
pub(crate) fn scan_with_key_order<'a>(
    line: &'a str,
    keep_headers: &[String],
    fields: &mut FlatFields<'a>,
    memo: &mut KeyOrder,
) -> Option<FlatScan> {
    #[cfg(test)]
    let hits_before = memo.hits;
    if let Some(scan) = scan_compact(line, keep_headers, fields, memo) {
        return Some(scan);
    }
    // Hits count the members of the scan that answers.
    #[cfg(test)]
    {
        memo.hits = hits_before;
    }
    *fields = FlatFields::default();
    scan_general(line, keep_headers, fields, memo)
}

/// The general scanner: every line the fast path accepts (whitespace between
/// tokens, `true` / `false`, empty objects, long lines), one 64-byte block of
/// bit masks at a time. `fields` must be fresh.
#[inline(never)]
pub(crate) fn scan_general<'a>(
    line: &'a str,
    keep_headers: &[String],
    fields: &mut FlatFields<'a>,
    memo: &mut KeyOrder,
) -> Option<FlatScan> {
    let bytes = line.as_bytes();
    let mut strings = StringEnds::new(bytes);
    let mut summary = FlatScan::default();
    let mut pos = skip_whitespace(bytes, 0);
    if bytes.get(pos) != Some(&b'{') {
        return None;
    }
    pos = skip_whitespace(bytes, pos + 1);
    if bytes.get(pos) == Some(&b'}') {
        pos += 1;
    } else {
        let mut member = 0usize;
        loop {
            if bytes.get(pos) != Some(&b'"') {
                return None;
            }
            // The key, through the key-order memo.
            let (key_end, known, envelope_word) =
                memo.key_at(member, line, pos + 1, |from| strings.string_end(from))?;
            member += 1;
            summary.envelope_word_seen |= envelope_word;
            let key_start = pos + 1;
            pos = skip_whitespace(bytes, key_end + 1);
            if bytes.get(pos) != Some(&b':') {
                return None;
            }
            pos = skip_whitespace(bytes, pos + 1);
            let (value, value_end) = scalar_at(line, pos, &mut strings)?;
            if let Scalar::Str(Cow::Borrowed(text)) = &value {
                summary.envelope_word_seen |= is_envelope_word(text);
            }
            pos = value_end;
            // The value is scanned (validated) either way; a known key's goes
            // to `apply_known`, an unknown key's only when some header is
            // wanted (`apply_unknown` keeps exactly the members serde's
            // visitor keeps).
            match known {
                Some(known) => fields.apply_known(known, value).ok()?,
                None if keep_headers.is_empty() => {}
                None => {
                    let key = line.get(key_start..key_end)?;
                    fields.apply_unknown(Cow::Borrowed(key), value, keep_headers);
                }
            }
            pos = skip_whitespace(bytes, pos);
            match bytes.get(pos) {
                Some(b',') => pos = skip_whitespace(bytes, pos + 1),
                Some(b'}') => {
                    pos += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_whitespace(bytes, pos) == bytes.len()).then_some(summary)
}

/// Members per line the key-order memo remembers (Envoy Gateway's default
/// format has 24); later members always take the generic lookup.
const MEMO_MEMBERS: usize = 32;
/// Longest remembered key, closing quote included, in bytes (a multiple of
/// eight). Longer keys are never remembered: they take the string-end search
/// and the hashed lookup every line. Every check reads this many bytes, so 32
/// (two 16-byte compares) rather than 40: of Envoy Gateway's keys only
/// `upstream_transport_failure_reason` (34 with its quote) is longer, and one
/// lookup per line costs less than a fifth word on every member.
const MEMO_KEY_BYTES: usize = 32;

/// A key-order memo: the keys of the last scanned line by member index.
///
/// Envoy (and the other gateways) write every line of a listener with the
/// same format string, so line after line the same keys come in the same
/// order. The scanner first checks whether the bytes at a member are the key
/// the previous line had at that index, followed by its closing quote: a few
/// word compares instead of the string-end search and the hashed lookup. On a
/// miss it does both and remembers the key in that index, so a format change
/// costs one line of misses. An entry only ever holds a key the scanner
/// accepted (no quote, backslash or control byte in it), so a hit ends the
/// string exactly where [`StringEnds::string_end`] would: the memo changes the
/// cost, never the result.
#[derive(Debug, Clone)]
pub(crate) struct KeyOrder {
    pub(super) keys: [RememberedKey; MEMO_MEMBERS],
    /// Members found through the memo so far (tests check the memo is used).
    #[cfg(test)]
    pub(super) hits: usize,
}

impl KeyOrder {
    /// An empty memo (every lookup misses).
    pub(crate) const fn new() -> Self {
        KeyOrder {
            keys: [RememberedKey::EMPTY; MEMO_MEMBERS],
            #[cfg(test)]
            hits: 0,
        }
    }

    /// The key of member `member` starting at `key_start` (just after its
    /// opening quote): its closing quote's position, the known field it is and
    /// whether it is an envelope word. First the key this member index had on
    /// the previous line, when the bytes there are that key and its closing
    /// quote; else `key_end` finds the closing quote and the generic lookup
    /// answers, remembered for the next line. `None` when `key_end` finds no
    /// end (or the key is not on a character boundary).
    #[inline(always)]
    pub(super) fn key_at(
        &mut self,
        member: usize,
        line: &str,
        key_start: usize,
        key_end: impl FnOnce(usize) -> Option<usize>,
    ) -> Option<(usize, Option<FlatKey>, bool)> {
        let bytes = line.as_bytes();
        match self.keys.get_mut(member) {
            Some(remembered) if remembered.matches(bytes, key_start) => {
                #[cfg(test)]
                {
                    self.hits += 1;
                }
                Some((
                    key_start - 1 + remembered.len,
                    remembered.known,
                    remembered.envelope_word,
                ))
            }
            remembered => Self::look_up(remembered, line, key_start, key_end),
        }
    }

    /// The miss path of [`key_at`](Self::key_at): `key_end` finds the
    /// closing quote, the generic lookup answers, and `remembered` (the
    /// member's entry, if it has one) learns the key. Out of line, so the
    /// hit path stays small.
    #[cold]
    #[inline(never)]
    fn look_up(
        remembered: Option<&mut RememberedKey>,
        line: &str,
        key_start: usize,
        key_end: impl FnOnce(usize) -> Option<usize>,
    ) -> Option<(usize, Option<FlatKey>, bool)> {
        let key_end = key_end(key_start)?;
        let key = line.get(key_start..key_end)?;
        let known = FlatKey::of(key);
        // A known key is never an envelope word (a test checks),
        // so only unknown keys are compared with them.
        let envelope_word = known.is_none() && is_envelope_word(key);
        if let Some(remembered) = remembered {
            *remembered =
                RememberedKey::learn(line.as_bytes(), key_start, key_end, known, envelope_word);
        }
        Some((key_end, known, envelope_word))
    }
}

/// One remembered key: its bytes and closing quote as little-endian words,
/// and what the generic lookup said about it.
#[derive(Debug, Clone, Copy)]
pub(super) struct RememberedKey {
    /// Bytes compared: the key and its closing quote (at least 1); 0 for an
    /// empty entry.
    pub(super) len: usize,
    /// The key and its closing quote as words (word `i` is bytes `8i..8i+8`),
    /// zero past `len`.
    words: [u64; MEMO_WORDS],
    /// Which bits of each word are the key's (all ones for whole words, the
    /// low bytes for the last partial one, zero past `len`).
    masks: [u64; MEMO_WORDS],
    /// [`FlatKey::of`] of the key.
    pub(super) known: Option<FlatKey>,
    /// [`is_envelope_word`] of the key, for an unknown key.
    pub(super) envelope_word: bool,
}

/// Words per remembered key.
const MEMO_WORDS: usize = MEMO_KEY_BYTES / 8;

impl RememberedKey {
    /// The empty entry: it asks for [`MEMO_KEY_BYTES`] bytes `0xff`, a byte
    /// that UTF-8 text never holds (and the zero padding of
    /// [`matches_near_the_end`](Self::matches_near_the_end) neither), so it
    /// never matches and the compare needs no separate emptiness check.
    const EMPTY: RememberedKey = RememberedKey {
        len: 0,
        words: [u64::MAX; MEMO_WORDS],
        masks: [u64::MAX; MEMO_WORDS],
        known: None,
        envelope_word: false,
    };

    /// The entry for the key at `start..key_end` of `bytes` (`key_end` is its
    /// closing quote, which the entry includes); empty when too long.
    pub(super) fn learn(
        bytes: &[u8],
        start: usize,
        key_end: usize,
        known: Option<FlatKey>,
        envelope_word: bool,
    ) -> Self {
        let Some(quoted) = bytes.get(start..=key_end) else {
            return Self::EMPTY;
        };
        if quoted.len() > MEMO_KEY_BYTES {
            return Self::EMPTY;
        }
        let mut padded = [0u8; MEMO_KEY_BYTES];
        let mut mask_bytes = [0u8; MEMO_KEY_BYTES];
        padded[..quoted.len()].copy_from_slice(quoted);
        mask_bytes[..quoted.len()].fill(0xff);
        RememberedKey {
            len: quoted.len(),
            words: words_of(&padded),
            masks: words_of(&mask_bytes),
            known,
            envelope_word,
        }
    }

    /// True when `bytes` at `start` are this key and its closing quote: the
    /// [`MEMO_KEY_BYTES`] bytes there, masked, compared word by word without
    /// a branch or a `memcmp` call. `bytes` must be UTF-8 text (every caller
    /// passes a `str`'s bytes), which the empty entry relies on.
    #[inline(always)]
    pub(super) fn matches(&self, bytes: &[u8], start: usize) -> bool {
        match bytes
            .get(start..start + MEMO_KEY_BYTES)
            .and_then(|window| <&[u8; MEMO_KEY_BYTES]>::try_from(window).ok())
        {
            Some(window) => self.matches_window(window),
            None => self.matches_near_the_end(bytes, start),
        }
    }

    /// [`matches`](Self::matches) when fewer than [`MEMO_KEY_BYTES`] bytes
    /// are left: the rest of the line, zero-padded. Exact, because a
    /// remembered key has no zero byte (no control byte) and ends with a quote,
    /// so it never matches padding.
    #[cold]
    #[inline(never)]
    fn matches_near_the_end(&self, bytes: &[u8], start: usize) -> bool {
        let rest = bytes.get(start..).unwrap_or_default();
        let mut padded = [0u8; MEMO_KEY_BYTES];
        let len = rest.len().min(MEMO_KEY_BYTES);
        padded[..len].copy_from_slice(&rest[..len]);
        self.matches_window(&padded)
    }

    /// The masked word compare of [`matches`](Self::matches).
    #[inline(always)]
    fn matches_window(&self, window: &[u8; MEMO_KEY_BYTES]) -> bool {
        let found = words_of(window);
        let difference = found
            .iter()
            .zip(&self.words)
            .zip(&self.masks)
            .fold(0, |difference, ((found, word), mask)| {
                difference | ((found ^ word) & mask)
            });
        difference == 0
    }
}

/// `bytes` as little-endian words.
#[inline(always)]
fn words_of(bytes: &[u8; MEMO_KEY_BYTES]) -> [u64; MEMO_WORDS] {
    let mut words = [0u64; MEMO_WORDS];
    for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(chunk);
        *word = u64::from_le_bytes(eight);
    }
    words
}

/// The JSON whitespace bytes (the same set serde_json skips). Compact lines
/// have none, so a byte above `' '` ends the loop after one compare.
#[inline]
fn skip_whitespace(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(&byte) = bytes.get(pos) {
        if byte > b' ' || !matches!(byte, b' ' | b'\n' | b'\t' | b'\r') {
            break;
        }
        pos += 1;
    }
    pos
}

/// The scalar value starting at `pos` and the position just after it, or
/// `None` when it is not one the fast path handles.
#[inline(always)]
fn scalar_at<'a>(
    line: &'a str,
    pos: usize,
    strings: &mut StringEnds<'_>,
) -> Option<(Scalar<'a>, usize)> {
    let bytes = line.as_bytes();
    match *bytes.get(pos)? {
        b'"' => {
            let end = strings.string_end(pos + 1)?;
            let text = line.get(pos + 1..end)?;
            Some((Scalar::Str(Cow::Borrowed(text)), end + 1))
        }
        b'0'..=b'9' => integer_at(bytes, pos),
        b't' => literal_at(bytes, pos, b"true", Scalar::Bool(true)),
        b'f' => literal_at(bytes, pos, b"false", Scalar::Bool(false)),
        b'n' => literal_at(bytes, pos, b"null", Scalar::Null),
        _ => None,
    }
}

/// The literal `word` at `pos` (a fixed-size compare: no `memcmp` call).
fn literal_at<'a, const N: usize>(
    bytes: &[u8],
    pos: usize,
    word: &[u8; N],
    value: Scalar<'a>,
) -> Option<(Scalar<'a>, usize)> {
    let end = pos.checked_add(N)?;
    let found = <&[u8; N]>::try_from(bytes.get(pos..end)?).ok()?;
    (found == word).then_some((value, end))
}

/// At most this many digits: any such integer fits in an `i64`.
const MAX_DIGITS: usize = 18;

/// A non-negative integer without leading zeros and without a fraction or
/// exponent (serde_json's `visit_u64`, which [`Scalar`] turns into `Int`).
#[inline]
fn integer_at(bytes: &[u8], pos: usize) -> Option<(Scalar<'static>, usize)> {
    integer_value_at(bytes, pos).map(|(value, end)| (Scalar::Int(value), end))
}

/// [`integer_at`]'s value and end: [`integer_digits_at`], then no `.`,
/// `e` or `E` after the digits.
#[inline(always)]
pub(super) fn integer_value_at(bytes: &[u8], pos: usize) -> Option<(i64, usize)> {
    let (value, end) = integer_digits_at(bytes, pos)?;
    if let Some(b'.' | b'e' | b'E') = bytes.get(end) {
        return None;
    }
    Some((value, end))
}

/// The non-negative integer without leading zeros whose digits start at
/// `pos` (at most [`MAX_DIGITS`]), and the end of its digits, without looking
/// at the byte after them: a caller must itself reject a fraction or an
/// exponent there. Up to seven digits (every status, duration, port and most
/// byte counts) are classified and converted as one little-endian word
/// (SWAR) when eight bytes are left; longer numbers and the last bytes of a
/// line take [`integer_value_by_byte`], which gives the same answer for
/// every input it accepts.
#[inline(always)]
pub(super) fn integer_digits_at(bytes: &[u8], pos: usize) -> Option<(i64, usize)> {
    if let Some(window) = bytes
        .get(pos..pos.wrapping_add(8))
        .and_then(|window| <[u8; 8]>::try_from(window).ok())
    {
        let word = u64::from_le_bytes(window);
        let digits = leading_digits(word);
        if digits < 8 {
            // No digit, or a leading zero that is not the whole number
            // ("01" is invalid JSON).
            if digits == 0 || (digits > 1 && window[0] == b'0') {
                return None;
            }
            return Some((digits_value(word, digits), pos + digits));
        }
    }
    integer_value_by_byte(bytes, pos)
}

/// The number of ASCII digits `word`'s bytes start with (little-endian, so
/// the first byte is the lowest), 0 to 8. A byte is a digit when its high
/// nibble is 3 and adding 6 keeps it so; the add can carry out of a byte
/// only from a non-digit (`0xfa` and up), into a later byte, which never
/// moves the first non-digit.
#[inline(always)]
fn leading_digits(word: u64) -> usize {
    const HIGH: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    const SIXES: u64 = 0x0606_0606_0606_0606;
    let not_three = (word & HIGH) ^ THREES;
    let over_nine = (word.wrapping_add(SIXES) & HIGH) ^ THREES;
    ((not_three | over_nine).trailing_zeros() / 8) as usize
}

/// The value of the first `digits` (1 to 7) bytes of `word`, all ASCII
/// digits: shifted up so the number ends at the top byte (the bytes shifted
/// in count as leading zeros).
#[inline(always)]
fn digits_value(word: u64, digits: usize) -> i64 {
    i64::from(digit_word_value(word << (8 * (8 - digits))))
}

/// [`integer_value_at`] one byte at a time (the reference the word version is
/// tested against, and the path for long numbers and line ends).
fn integer_value_by_byte(bytes: &[u8], pos: usize) -> Option<(i64, usize)> {
    let mut end = pos;
    let mut value: i64 = 0;
    while let Some(&digit @ b'0'..=b'9') = bytes.get(end) {
        if end - pos == MAX_DIGITS {
            return None;
        }
        value = value * 10 + i64::from(digit - b'0');
        end += 1;
    }
    if end == pos {
        return None;
    }
    // A leading zero must be the whole number ("01" is invalid JSON).
    if bytes.get(pos) == Some(&b'0') && end - pos > 1 {
        return None;
    }
    if let Some(b'.' | b'e' | b'E') = bytes.get(end) {
        return None;
    }
    Some((value, end))
}

/// Bytes per block of [`StringEnds`] (one bit per byte in a `u64`).
pub(super) const BLOCK: usize = 64;

/// Finds string ends from bit masks of the line's quotes and of the bytes a
/// fast-path string may not contain (`\` and control characters), computed
/// one 64-byte block at a time (SSE2 on x86-64) as the scan moves forward.
/// Each block is classified once, so finding the end of a string costs a
/// shift and a `trailing_zeros` instead of a loop over its bytes.
struct StringEnds<'b> {
    bytes: &'b [u8],
    /// The block `quotes` and `specials` describe (`usize::MAX` before the
    /// first load).
    block: usize,
    /// Bit `i` set when byte `block * 64 + i` is `"`.
    quotes: u64,
    /// Bit `i` set when that byte is `\` or below `0x20`.
    specials: u64,
}

impl<'b> StringEnds<'b> {
    fn new(bytes: &'b [u8]) -> Self {
        StringEnds {
            bytes,
            block: usize::MAX,
            quotes: 0,
            specials: 0,
        }
    }

    /// Classifies block `block` unless it is the current one. Bytes past the
    /// end of the line read as spaces (neither quote nor special).
    #[inline(always)]
    fn load(&mut self, block: usize) {
        if block == self.block {
            return;
        }
        let start = block * BLOCK;
        let masks = match self
            .bytes
            .get(start..start + BLOCK)
            .and_then(|chunk| <&[u8; BLOCK]>::try_from(chunk).ok())
        {
            Some(chunk) => block_masks(chunk),
            None => {
                let mut padded = [b' '; BLOCK];
                let tail = self.bytes.get(start..).unwrap_or_default();
                let len = tail.len().min(BLOCK);
                padded[..len].copy_from_slice(&tail[..len]);
                block_masks(&padded)
            }
        };
        (self.quotes, self.specials) = masks;
        self.block = block;
    }

    /// The index of the closing quote of the string whose contents start at
    /// `start`, or `None` if the string has an escape or a control
    /// character, or is not closed. Inlined: it runs for every key and string
    /// value, and a call costs more than its body.
    #[inline(always)]
    fn string_end(&mut self, start: usize) -> Option<usize> {
        let mut block = start / BLOCK;
        let mut shift = start % BLOCK;
        loop {
            if block * BLOCK >= self.bytes.len() {
                return None;
            }
            self.load(block);
            let quotes = self.quotes >> shift;
            let specials = self.specials >> shift;
            if quotes != 0 {
                let offset = quotes.trailing_zeros();
                let before = specials & ((1u64 << offset) - 1);
                return (before == 0).then_some(block * BLOCK + shift + offset as usize);
            }
            if specials != 0 {
                return None;
            }
            block += 1;
            shift = 0;
        }
    }
}

/// The quote and special-byte masks of one block (SSE2: 16 bytes per compare).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
pub(super) fn block_masks(block: &[u8; BLOCK]) -> (u64, u64) {
    // SAFETY: the only requirement of calling a `#[target_feature]` function
    // is that the CPU has the feature; SSE2 is enabled for the whole build
    // (the `cfg` above; it is part of the x86-64 baseline), so every CPU this
    // binary runs on has it. The function itself touches no raw pointers.
    unsafe { block_masks_sse2(block) }
}

/// [`block_masks`] with SSE2 intrinsics (bytes go in through `_mm_set_epi64x`
/// from safe array reads, no pointer loads).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
#[inline]
fn block_masks_sse2(block: &[u8; BLOCK]) -> (u64, u64) {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_set_epi64x,
    };
    let quote = _mm_set1_epi8(b'"' as i8);
    let backslash = _mm_set1_epi8(b'\\' as i8);
    let last_control = _mm_set1_epi8(0x1f);
    let mut quotes = 0u64;
    let mut specials = 0u64;
    for (lane, chunk) in block.chunks_exact(16).enumerate() {
        let mut low = [0u8; 8];
        let mut high = [0u8; 8];
        low.copy_from_slice(&chunk[..8]);
        high.copy_from_slice(&chunk[8..]);
        let bytes = _mm_set_epi64x(i64::from_le_bytes(high), i64::from_le_bytes(low));
        let is_quote = _mm_cmpeq_epi8(bytes, quote);
        let is_backslash = _mm_cmpeq_epi8(bytes, backslash);
        // Unsigned `byte <= 0x1f` is `min(byte, 0x1f) == byte`.
        let is_control = _mm_cmpeq_epi8(_mm_min_epu8(bytes, last_control), bytes);
        let quote_bits = u64::from(_mm_movemask_epi8(is_quote) as u16);
        let special_bits =
            u64::from(_mm_movemask_epi8(_mm_or_si128(is_backslash, is_control)) as u16);
        quotes |= quote_bits << (16 * lane);
        specials |= special_bits << (16 * lane);
    }
    (quotes, specials)
}

/// The quote and special-byte masks of one block, byte by byte (other
/// architectures; also the reference the SSE2 version is tested against).
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
fn block_masks_portable(block: &[u8; BLOCK]) -> (u64, u64) {
    let mut quotes = 0u64;
    let mut specials = 0u64;
    for (i, &byte) in block.iter().enumerate() {
        quotes |= u64::from(byte == b'"') << i;
        specials |= u64::from(byte == b'\\' || byte < 0x20) << i;
    }
    (quotes, specials)
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
pub(super) fn block_masks(block: &[u8; BLOCK]) -> (u64, u64) {
    block_masks_portable(block)
}

/// True for the strings whose quoted form the envelope sniffer looks for
/// (`"kubernetes"`, `"log"`, `"message"`, `"resourceLogs"`).
/// Dispatches on the length first: most strings have none of the four
/// lengths and cost one compare.
#[inline]
pub(super) fn is_envelope_word(text: &str) -> bool {
    match text.len() {
        3 | 7 | 10 | 12 => super::envelope::ENVELOPE_WORDS.contains(&text),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::detect::Format;
    use super::super::json_log::{decode_flat_json, decode_flat_json_reference};
    use super::*;

    const EG_200: &str = r#"{":authority":"shop.example.com","bytes_received":0,"bytes_sent":5123,"connection_termination_details":null,"downstream_local_address":"10.244.0.12:10080","downstream_remote_address":"203.0.113.7:53422","duration":12,"method":"GET","protocol":"HTTP/1.1","requested_server_name":null,"response_code":200,"response_code_details":"via_upstream","response_flags":"-","route_name":"httproute/shop/storefront/rule/1/match/0/shop_example_com","start_time":"2026-08-20T10:15:30.123Z","upstream_cluster":"httproute/shop/storefront/rule/1","upstream_host":"10.244.3.44:9000","upstream_local_address":"10.244.0.12:41236","upstream_transport_failure_reason":null,"user-agent":"curl/8.5.0","x-envoy-origin-path":"/api/orders?page=2","x-envoy-upstream-service-time":null,"x-forwarded-for":"203.0.113.7","x-request-id":"9b2f6c1e-4d8a-4b51-9a0e-0c1b2f3e4d5a"}"#;
    const EG_OLD_STRINGS: &str = r#"{"start_time":"2026-08-20T10:15:30.123Z","method":"GET","x-envoy-origin-path":"/api/orders?page=2","protocol":"HTTP/1.1","response_code":"200","response_flags":"-","bytes_received":"0","bytes_sent":"5123","duration":"12","x-envoy-upstream-service-time":"11","x-forwarded-for":"203.0.113.7","user-agent":"curl/8.5.0","x-request-id":"9b2f6c1e",":authority":"shop.example.com","upstream_host":"10.244.3.44:9000","upstream_cluster":"httproute/shop/storefront/rule/1","downstream_local_address":"10.244.0.12:10080","route_name":"r"}"#;
    const ISTIO_JSON: &str = r#"{"authority":"shop.example.com","bytes_received":0,"bytes_sent":5123,"duration":12,"method":"GET","path":"/products?id=42","protocol":"HTTP/1.1","request_id":"9b2f","response_code":200,"response_flags":"-","route_name":"shop.storefront.0","start_time":"2026-08-20T10:15:30.123Z","upstream_cluster":"outbound|80||web.shop.svc.cluster.local;","upstream_host":"10.244.1.17:8080","upstream_service_time":"11","user_agent":"curl/8.5.0"}"#;
    const NGINX_JSON: &str = r#"{"time":"2026-08-20T10:15:31+00:00","remote_addr":"203.0.113.7","host":"shop.example.com","method":"GET","request_uri":"/api/orders","status":502,"server_port":"80","body_bytes_sent":157,"upstream_addr":"10.244.2.31:9000, 10.244.3.44:9000","upstream_status":"502, 200","proxy_host":"shop_api_80","user_agent":"curl/8.5.0","http_x_canary":"always"}"#;
    const SAMPLES: [&str; 4] = [EG_200, EG_OLD_STRINGS, ISTIO_JSON, NGINX_JSON];

    fn headers() -> Vec<String> {
        vec!["x-canary".to_owned()]
    }

    /// The fast path's answer (with its serde fallback) equals serde's alone.
    fn assert_same(line: &str, keep_headers: &[String]) -> Result<(), TestCaseError> {
        for forced in [Format::Auto, Format::EnvoyJson, Format::NginxJson] {
            let fast = decode_flat_json(line, forced, keep_headers);
            let reference = decode_flat_json_reference(line, forced, keep_headers);
            prop_assert_eq!(&fast, &reference, "line: {:?}", line);
        }
        Ok(())
    }

    #[test]
    fn real_lines_take_the_fast_path_and_match_serde() {
        for line in SAMPLES {
            let mut fields = FlatFields::default();
            assert!(
                scan_flat_object(line, &headers(), &mut fields).is_some(),
                "{line}"
            );
            let inferred = fields.inferred_format().unwrap();
            let fast = fields.finish(inferred);
            let reference = decode_flat_json_reference(line, Format::Auto, &headers()).unwrap();
            assert_eq!(fast, reference);
            assert!(matches!(fast.authority, Some(Cow::Borrowed(_))));
        }
        let record = decode_flat_json(NGINX_JSON, Format::Auto, &headers()).unwrap();
        assert_eq!(record.header("http_x_canary"), Some("always"));
    }

    #[test]
    fn gives_up_on_what_serde_must_decide() {
        let cases = [
            r#"{"method":"G\"ET"}"#,
            r#"{"meth\u006fd":"GET"}"#,
            r#"{"method":"GET","duration":-0}"#,
            r#"{"method":"GET","duration":1.0}"#,
            r#"{"method":"GET","duration":1e3}"#,
            r#"{"method":"GET","duration":01}"#,
            r#"{"method":"GET","duration":1234567890123456789}"#,
            r#"{"method":"GET","other":{"a":1}}"#,
            r#"{"method":"GET","other":[1]}"#,
            r#"{"method":"GET",}"#,
            r#"{"method":"GET"} x"#,
            r#"{"method":"GET""#,
            r#"{"method":"GET","duration":nul}"#,
            "{\"method\":\"G\tET\"}",
            r#"{"method":"GET","response_code":99999}"#,
            r#"{"method" "GET"}"#,
        ];
        for line in cases {
            let mut fields = FlatFields::default();
            assert!(scan_flat_object(line, &[], &mut fields).is_none(), "{line}");
            assert_same(line, &[]).unwrap();
        }
    }

    #[test]
    fn accepts_whitespace_literals_and_empty_objects() {
        for line in [
            "{ \"method\" :\t\"GET\" ,\r\n\"duration\": 0 , \"x\": true, \"y\": false, \"z\": null }",
            "{}",
            " { } ",
            r#"{"method":"GET","method":"POST","duration":999999999999999999}"#,
        ] {
            let mut fields = FlatFields::default();
            assert!(scan_flat_object(line, &[], &mut fields).is_some(), "{line}");
            assert_same(line, &[]).unwrap();
        }
    }

    /// The scanner checks only unknown keys for envelope words.
    #[test]
    fn no_known_key_is_an_envelope_word() {
        for word in super::super::envelope::ENVELOPE_WORDS {
            assert_eq!(FlatKey::of(word), None, "{word}");
            assert!(is_envelope_word(word), "{word}");
        }
        for other in [
            "",
            "lo",
            "logs",
            "messages",
            "kubernetes!",
            "resourcelogs",
            "method",
        ] {
            assert!(!is_envelope_word(other), "{other}");
        }
    }

    #[test]
    fn integer_words_agree_with_the_byte_loop() {
        let mut cases: Vec<String> = Vec::new();
        for digits in 1..=20 {
            for lead in ["1", "9", "0", "5"] {
                let number = format!("{lead}{}", "7".repeat(digits - 1));
                for suffix in [
                    "", ",", "}", ".5", "e3", "E", "x", "/", ":", "\u{ff}", "        ",
                ] {
                    cases.push(format!("{number}{suffix}"));
                }
            }
        }
        cases.extend(
            [
                "0",
                "00",
                "01",
                "10",
                "100,",
                "9999999,",
                "10000000,",
                "99999999}",
            ]
            .map(String::from),
        );
        // Bytes next to the digit range ('/' and ':'), and high bytes whose
        // +6 carries into the next byte.
        for byte in [b'/', b':', 0xfa, 0xff, 0x80, b' '] {
            for at in 0..9 {
                let mut raw = b"123456789".to_vec();
                raw[at] = byte;
                cases.push(String::from_utf8_lossy(&raw).into_owned());
                let mut raw = b"123456789".to_vec();
                raw.insert(at, byte);
                raw.insert(0, b'4');
                cases.push(String::from_utf8_lossy(&raw).into_owned());
            }
        }
        for case in &cases {
            for lead in ["", "x", "\"abc\":"] {
                let line = format!("{lead}{case}");
                let bytes = line.as_bytes();
                assert_eq!(
                    integer_value_at(bytes, lead.len()),
                    integer_value_by_byte(bytes, lead.len()),
                    "{line:?}"
                );
            }
        }
        assert_eq!(integer_value_at(b"1234567,xx", 0), Some((1_234_567, 7)));
        assert_eq!(integer_value_at(b"42}       ", 0), Some((42, 2)));
        assert_eq!(integer_value_at(b"0,        ", 0), Some((0, 1)));
        assert_eq!(integer_value_at(b"012       ", 0), None);
    }

    proptest! {
        #[test]
        fn integer_words_agree_on_random_bytes(raw in prop::collection::vec(prop_oneof![4 => 0x30u8..0x3a, 1 => any::<u8>()], 0..24), at in 0usize..4) {
            prop_assert_eq!(integer_value_at(&raw, at), integer_value_by_byte(&raw, at));
        }
    }

    #[test]
    fn block_masks_match_the_byte_by_byte_reference() {
        let mut block = [0u8; BLOCK];
        for seed in 0u32..2000 {
            let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
            for byte in block.iter_mut() {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                // Mostly interesting bytes: quotes, backslashes, controls, high bytes.
                *byte = match state % 8 {
                    0 => b'"',
                    1 => b'\\',
                    2 => (state >> 8) as u8 & 0x3f,
                    3 => 0x80 | (state >> 8) as u8,
                    _ => (state >> 8) as u8,
                };
            }
            assert_eq!(block_masks(&block), block_masks_portable(&block));
        }
    }

    #[test]
    fn string_ends_across_block_boundaries() {
        for len in [0usize, 1, 7, 8, 62, 63, 64, 65, 127, 128, 129, 200] {
            for lead in [0usize, 1, 30, 62, 63, 64] {
                let body = "a".repeat(len);
                let line = format!("{}\"{body}\"tail", " ".repeat(lead));
                let mut ends = StringEnds::new(line.as_bytes());
                assert_eq!(
                    ends.string_end(lead + 1),
                    Some(lead + 1 + len),
                    "{len} {lead}"
                );
                // Unterminated, escaped, or with a control byte before the quote.
                let open = format!("{}\"{body}", " ".repeat(lead));
                assert_eq!(StringEnds::new(open.as_bytes()).string_end(lead + 1), None);
                for bad in ["\\", "\u{1}", "\n"] {
                    let line = format!("{}\"{body}{bad}\"", " ".repeat(lead));
                    assert_eq!(StringEnds::new(line.as_bytes()).string_end(lead + 1), None);
                    // A special byte after the closing quote does not matter.
                    let line = format!("{}\"{body}\"{bad}", " ".repeat(lead));
                    assert_eq!(
                        StringEnds::new(line.as_bytes()).string_end(lead + 1),
                        Some(lead + 1 + len)
                    );
                }
            }
        }
    }

    #[test]
    fn reports_envelope_words_only_as_whole_strings() {
        let seen = |line: &str| {
            let mut fields = FlatFields::default();
            scan_flat_object(line, &[], &mut fields).map(|s| s.envelope_word_seen)
        };
        assert_eq!(seen(EG_200), Some(false));
        assert_eq!(seen(r#"{"log":"x"}"#), Some(true));
        assert_eq!(seen(r#"{"method":"message"}"#), Some(true));
        assert_eq!(seen(r#"{"kubernetes":1,"x":2}"#), Some(true));
        assert_eq!(seen(r#"{"a":"resourceLogs"}"#), Some(true));
        assert_eq!(seen(r#"{"logs":"messages","x":"a log"}"#), Some(false));
    }

    /// What one scan with `memo` gives: the summary and the finished record
    /// (labelled with the inferred format), or `None` when the line needs
    /// the serde path.
    fn scan_with<'a>(
        line: &'a str,
        memo: &mut KeyOrder,
    ) -> Option<(FlatScan, Option<crate::decode::AccessRecord<'a>>)> {
        let mut fields = FlatFields::default();
        let scan = scan_with_key_order(line, &headers(), &mut fields, memo)?;
        let record = fields.inferred_format().map(|format| fields.finish(format));
        Some((scan, record))
    }

    /// Scans `lines` in order with one memo and returns the memo hits per
    /// line, checking every answer against a scan with a fresh memo and the
    /// whole decode against serde.
    fn hits_per_line(lines: &[&str]) -> Vec<usize> {
        let mut memo = KeyOrder::new();
        lines
            .iter()
            .map(|line| {
                let before = memo.hits;
                let warm = scan_with(line, &mut memo);
                let cold = scan_with(line, &mut KeyOrder::new());
                assert_eq!(warm, cold, "{line}");
                assert_same(line, &headers()).unwrap();
                memo.hits - before
            })
            .collect()
    }

    #[test]
    fn key_order_memo_hits_repeated_lines() {
        // 24 members on the first line, all remembered but
        // `upstream_transport_failure_reason` (longer than the memo keeps);
        // every other key of the second line is found through the memo.
        assert_eq!(hits_per_line(&[EG_200, EG_200]), [0, 23]);
        // Different values, same keys: still all hits.
        let other = EG_200
            .replace("shop.example.com", "api.example.org")
            .replace(":200,", ":503,")
            .replace("\"duration\":12", "\"duration\":1234567");
        assert_eq!(hits_per_line(&[EG_200, &other, EG_200]), [0, 23, 23]);
        // A line with whitespace around the members hits as well (the memo
        // compares the key and its quote only).
        let spaced = EG_200
            .replacen('{', "{ ", 1)
            .replace(",\"", " ,\t\"")
            .replace("\"method\":", "\"method\"\t:  ");
        assert_eq!(hits_per_line(&[EG_200, &spaced]), [0, 23]);
    }

    #[test]
    fn key_order_memo_relearns_when_the_order_changes() {
        // Envoy Gateway typed, then the old all-strings format (another key
        // order), then back: each change costs misses on one line only.
        let lines = [EG_200, EG_OLD_STRINGS, EG_OLD_STRINGS, EG_200, EG_200];
        let hits = hits_per_line(&lines);
        assert_eq!(hits[2], 18, "{hits:?}");
        assert_eq!(hits[4], 23, "{hits:?}");
        assert!(hits[1] < 18 && hits[3] < 23, "{hits:?}");
        // Other formats in between (Istio, NGINX JSON) decode the same.
        let mixed = [
            EG_200, ISTIO_JSON, NGINX_JSON, EG_200, NGINX_JSON, NGINX_JSON,
        ];
        let hits = hits_per_line(&mixed);
        assert_eq!(hits[5], 13, "{hits:?}");
    }

    #[test]
    fn key_order_memo_handles_missing_extra_and_duplicate_keys() {
        let base = r#"{"method":"GET","path":"/a","response_code":200,"duration":5,"upstream_host":"10.0.0.1:80"}"#;
        // A key missing: the later ones shift to other member indexes.
        let missing =
            r#"{"method":"GET","response_code":404,"duration":5,"upstream_host":"10.0.0.1:80"}"#;
        // An extra (unknown) key in the middle, and one at the end.
        let extra = r#"{"method":"GET","path":"/a","x_canary":"always","response_code":200,"duration":5,"upstream_host":"10.0.0.1:80","z":null}"#;
        // A duplicate key: the last value wins, as with serde.
        let duplicate = r#"{"method":"GET","path":"/a","response_code":200,"duration":5,"duration":7,"upstream_host":"10.0.0.1:80"}"#;
        let hits = hits_per_line(&[base, missing, base, extra, base, duplicate, duplicate]);
        // `missing` hits `method` only; `base` then hits `method` and, at
        // index 4, `upstream_host` (still remembered from `base`); `extra`
        // hits its first two; `base` the same two; `duplicate` its first four
        // and `upstream_host` at index 5 (remembered from `extra`); then all.
        assert_eq!(hits, [0, 1, 2, 2, 2, 5, 6]);
        let mut memo = KeyOrder::new();
        scan_with(base, &mut memo);
        let (_, record) = scan_with(duplicate, &mut memo).unwrap();
        assert_eq!(record.unwrap().duration_ms, Some(7));
        let (_, record) = scan_with(missing, &mut memo).unwrap();
        assert_eq!(record.unwrap().path, None);
    }

    #[test]
    fn key_order_memo_never_matches_a_different_key() {
        let base = r#"{"method":"GET","response_code":200,"upstream_host":"10.0.0.1:80","x":"......................................"}"#;
        // Keys that start like the remembered ones (and ones the remembered
        // keys start like), a key with an escaped quote at the remembered
        // quote's place, and a value with an escaped quote.
        for line in [
            r#"{"metho":"GET","response_code_details":"x","upstream_hostx":"10.0.0.1:80","x":"......................................"}"#,
            r#"{"methodx":"GET","response_cod":200,"upstream_hos":"10.0.0.1:80","x":"......................................"}"#,
            r#"{"method\"":"GET","response_code":200,"upstream_host":"10.0.0.1:80","x":"......................................"}"#,
            r#"{"method":"G\"ET","response_code":200,"upstream_host":"10.0.0.1:80","x":"......................................"}"#,
            r#"{"Method":"GET","response_code":"200","upstream_host":null,"x":"......................................"}"#,
        ] {
            let mut memo = KeyOrder::new();
            scan_with(base, &mut memo).unwrap();
            let warm = scan_with(line, &mut memo);
            let cold = scan_with(line, &mut KeyOrder::new());
            assert_eq!(warm, cold, "{line}");
            assert_same(line, &headers()).unwrap();
        }
        // The prefix cases hit only the unchanged key (`x`).
        let mut memo = KeyOrder::new();
        scan_with(base, &mut memo).unwrap();
        scan_with(
            r#"{"metho":"GET","response_code_details":"x","upstream_hostx":"10.0.0.1:80","x":"......................................"}"#,
            &mut memo,
        )
        .unwrap();
        assert_eq!(memo.hits, 1);
    }

    #[test]
    fn remembered_keys_compare_exactly_their_bytes() {
        let line = r#"{"a":1,"method":"GET","x-envoy-upstream-service-time":null,"upstream_transport_failure_reason":null,"a_key_longer_than_forty_bytes_is_never_kept":1}"#;
        let bytes = line.as_bytes();
        for key in ["a", "method", "x-envoy-upstream-service-time"] {
            let start = line.find(&format!("\"{key}\"")).unwrap() + 1;
            let entry = RememberedKey::learn(bytes, start, start + key.len(), None, false);
            assert_eq!(entry.len, key.len() + 1);
            assert!(entry.matches(bytes, start), "{key}");
            assert!(!entry.matches(bytes, start + 1), "{key}");
            assert!(!entry.matches(bytes, start - 1), "{key}");
            // Fewer bytes left than a window: compared on the rest.
            assert!(entry.matches(&bytes[..start + key.len() + 1], start));
            assert!(!entry.matches(&bytes[..start + key.len()], start));
            assert!(!entry.matches(bytes, bytes.len()));
        }
        // Keys longer than the memo holds (with their quote) are not kept.
        for long in [
            "\"upstream_transport_failure_reason",
            "\"a_key_longer_than_forty_bytes",
        ] {
            let start = line.find(long).unwrap() + 1;
            let key_end = start + line[start..].find('"').unwrap();
            assert!(key_end + 1 - start > MEMO_KEY_BYTES);
            let entry = RememberedKey::learn(bytes, start, key_end, None, false);
            assert_eq!(entry.len, 0);
            assert!(!entry.matches(bytes, start));
        }
        assert!(!RememberedKey::EMPTY.matches(bytes, 1));
        // The empty entry matches no window of UTF-8 text, near the end
        // (zero padding) included.
        for text in [
            "\u{0}".repeat(40),
            "\u{7f}".repeat(40),
            "\u{10ffff}".repeat(10),
            "é".repeat(20),
        ] {
            for start in 0..=text.len() {
                assert!(!RememberedKey::EMPTY.matches(text.as_bytes(), start));
            }
        }
    }

    /// Pieces that make JSON interesting at a byte position.
    const PIECES: [&str; 28] = [
        "{", "}", "[", "]", "\"", ":", ",", "\\", "\\\"", "\\u0041", "\\ud800", " ", "\t", "\n",
        "0", "7", "-", ".", "e", "E", "true", "null", "fals", "\u{1}", "é", "\u{7f}", "{}",
        "\"x\":1",
    ];

    fn value_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9 /:.?=&-]{0,40}".prop_map(|s| format!("\"{s}\"")),
            "[a-z\\\\\"\u{1}é]{0,6}".prop_map(|s| format!("\"{s}\"")),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            (0u32..1000).prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|n| n.to_string()),
            Just("-0".to_owned()),
            Just("007".to_owned()),
            Just("1.5e3".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            Just("null".to_owned()),
            Just("\"-\"".to_owned()),
            Just("{\"a\":[1,{}]}".to_owned()),
            Just("[]".to_owned()),
            Just("\"2026-08-20T10:15:30.123Z\"".to_owned()),
            Just("\"10.244.0.12:10080\"".to_owned()),
        ]
    }

    fn key_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                ":authority",
                "x-envoy-origin-path",
                "user-agent",
                "x-request-id",
                "x-envoy-upstream-service-time",
                "start_time",
                "@timestamp",
                "authority",
                "path",
                "response_code",
                "response_flags",
                "duration",
                "upstream_host",
                "upstream_cluster",
                "downstream_local_address",
                "route_name",
                "bytes_sent",
                "method",
                "time",
                "request_uri",
                "status",
                "request_time",
                "proxy_host",
                "server_port",
                "host",
                "http_host",
                "http_x_canary",
                "X_Canary",
                "grpc_status",
                "other",
            ])
            .prop_map(str::to_owned),
            "[a-z_:@-]{0,12}",
        ]
    }

    fn whitespace() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["", "", "", " ", "\t", "\r\n "])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn random_objects_match_serde(
            members in prop::collection::vec((key_strategy(), value_strategy(), whitespace()), 0..12),
            keep in any::<bool>(),
        ) {
            let mut line = String::from("{");
            for (i, (key, value, space)) in members.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                line.push_str(space);
                line.push_str(&format!("\"{key}\"{space}:{space}{value}{space}"));
            }
            line.push('}');
            let keep_headers = if keep { headers() } else { Vec::new() };
            assert_same(&line, &keep_headers)?;
        }

        /// Lines sharing keys in the same order with some members left out
        /// (so the memo both hits and misses): scanning them in a row with one
        /// memo gives what each gives with a fresh memo, and serde's record.
        #[test]
        fn key_order_memo_matches_fresh_scans(
            members in prop::collection::vec((key_strategy(), value_strategy(), whitespace()), 0..14),
            masks in prop::collection::vec(any::<u16>(), 1..6),
        ) {
            let lines: Vec<String> = masks
                .iter()
                .map(|mask| {
                    let kept: Vec<String> = members
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| mask & (1 << i) != 0 || *i >= 12)
                        .map(|(_, (key, value, space))| format!("{space}\"{key}\"{space}:{value}"))
                        .collect();
                    format!("{{{}}}", kept.join(","))
                })
                .collect();
            let mut memo = KeyOrder::new();
            for line in &lines {
                let warm = scan_with(line, &mut memo);
                let cold = scan_with(line, &mut KeyOrder::new());
                prop_assert_eq!(warm, cold, "line: {:?}", line);
                assert_same(line, &headers())?;
            }
        }

        #[test]
        fn mutated_lines_match_serde(
            which in 0usize..SAMPLES.len(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..3, prop::sample::select(PIECES.to_vec())), 1..4),
        ) {
            let mut line = SAMPLES[which].to_owned();
            for (at, kind, piece) in edits {
                let mut pos = at.index(line.len() + 1);
                while !line.is_char_boundary(pos) {
                    pos -= 1;
                }
                match kind {
                    0 => line.insert_str(pos, piece),
                    1 => {
                        let mut end = (pos + piece.len()).min(line.len());
                        while !line.is_char_boundary(end) {
                            end += 1;
                        }
                        line.replace_range(pos..end, "");
                    }
                    _ => {
                        let mut end = (pos + 1).min(line.len());
                        while !line.is_char_boundary(end) {
                            end += 1;
                        }
                        line.replace_range(pos..end, piece);
                    }
                }
            }
            assert_same(&line, &headers())?;
        }
    }
}
