//! The compact-line walk of the flat JSON fast path: a whole-line quote index
//! (the first stage of simdjson's structural indexing, reduced to what a flat
//! object without escapes needs) and a member walk that jumps from quote to
//! quote with trailing-zero counts.
//!
//! Gateways write access-log lines as `{"key":value,"key":value,...}`: no
//! whitespace, no escapes, scalar values. For such a line the bit masks of one
//! SSE2 pass over the whole line say everything the walk needs: with no
//! backslash and no control byte anywhere, every `"` delimits a string, so a
//! string ends at the next quote bit. Each member then costs the key-order
//! memo's word compare (or the hashed lookup on a miss), one quote search for
//! a string value (or a SWAR integer parse), and a typed call into
//! [`FlatFields`]. The same pass ORs the bytes together, so a payload that
//! is all ASCII needs no separate UTF-8 validation
//! ([`scan_ascii_payload`]).
//!
//! This walk is narrower than the general scanner in `flat_scan.rs`, which
//! stays the single definition of what the fast path accepts: it gives up
//! ([`None`]) on anything else (a backslash or a control byte anywhere in the
//! line, whitespace between tokens, `true` / `false`, an empty object, lines
//! over [`MAX_LINE`] bytes, any field error, anything malformed), and the
//! caller then runs the general scanner from a fresh [`FlatFields`]. Whatever
//! it accepts, the general scanner accepts with the same members in the same
//! order and the same [`Scalar`] values, so the record is identical (checked
//! by the differential tests below and in `flat_scan.rs`).

use std::borrow::Cow;

use super::flat_scan::{
    block_masks, integer_digits_at, is_envelope_word, FlatScan, KeyOrder, BLOCK,
};
use super::json_log::{FlatFields, Scalar};

/// Blocks of the whole-line index (lines up to 2 KiB; Envoy Gateway's
/// default-format lines are about 900 bytes). Longer lines take the general
/// scanner, which classifies one block at a time.
const MAX_BLOCKS: usize = 32;
/// The longest line the index covers, in bytes.
pub(crate) const MAX_LINE: usize = MAX_BLOCKS * BLOCK;

/// Quote positions of a whole line with neither a backslash nor a control
/// byte (`U+0000`-`U+001F`): bit `i` of word `b` is set when byte
/// `64 * b + i` is `"`.
struct QuoteIndex {
    /// One quote mask per 64-byte block; zero past the line (so a search
    /// needs no line length: it runs off the end of `words` instead).
    words: [u64; MAX_BLOCKS],
}

impl QuoteIndex {
    /// An index of no line (filled in place by
    /// [`index_plain_line`](Self::index_plain_line): the 264-byte value is
    /// never moved).
    #[inline(always)]
    fn new() -> Self {
        QuoteIndex {
            words: [0; MAX_BLOCKS],
        }
    }

    /// Indexes `bytes`; false when the line is longer than [`MAX_LINE`] or
    /// has a backslash or control byte anywhere (then a string could hold an
    /// escaped quote, or be invalid JSON, and the general scanner decides).
    #[inline(always)]
    fn index_plain_line(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > MAX_LINE {
            return false;
        }
        !line_masks(bytes, &mut self.words).special
    }

    /// Indexes `payload` when it is a compact-walk candidate that needs no
    /// UTF-8 validation: it starts with `{` and ends with `}` (so trimming
    /// would remove nothing), is at most [`MAX_LINE`] bytes and has no
    /// backslash, control or non-ASCII byte, with `masks` as the line pass
    /// (one of the [`line_masks`] versions). Returns the payload as text,
    /// validated by the same SIMD pass that indexes its quotes; `None` (the
    /// index then unspecified) for anything else. When the pass found every
    /// byte ASCII but the payload is not a candidate, `ascii_text` is set to
    /// the payload as text.
    ///
    /// # Safety
    ///
    /// `masks` must report `ascii` only when every byte of the bytes it is
    /// given is below 0x80 (every [`line_masks`] version does; tests check
    /// each against `is_ascii`): the text is made from that answer.
    #[inline(always)]
    unsafe fn index_ascii_object_with<'p>(
        &mut self,
        payload: &'p [u8],
        masks: impl FnOnce(&[u8], &mut [u64; MAX_BLOCKS]) -> LineBytes,
        ascii_text: &mut Option<&'p str>,
    ) -> Option<&'p str> {
        if payload.first() != Some(&b'{') || payload.last() != Some(&b'}') {
            return None;
        }
        if payload.len() > MAX_LINE {
            return None;
        }
        let found = masks(payload, &mut self.words);
        if !found.ascii {
            return None;
        }
        // SAFETY: every byte of `payload` is below 0x80 (`found.ascii`,
        // truthful by this function's contract), and a sequence of ASCII
        // bytes is valid UTF-8.
        let text = unsafe { std::str::from_utf8_unchecked(payload) };
        if found.special {
            *ascii_text = Some(text);
            return None;
        }
        Some(text)
    }

    /// The text of `line` strictly between the quotes at `open` and `close`
    /// (`None` unless both bytes are `"` and `open < close`): `open` a
    /// position the caller saw holding `"`, `close` one
    /// [`next_quote`](Self::next_quote) returned. Without the char-boundary
    /// checks of `str` slicing: two byte compares show both ends sit next to
    /// an ASCII byte.
    #[inline(always)]
    fn text_between<'l>(&self, line: &'l str, open: usize, close: usize) -> Option<&'l str> {
        let bytes = line.as_bytes();
        if bytes.get(open) != Some(&b'"') || bytes.get(close) != Some(&b'"') {
            return None;
        }
        let inner = bytes.get(open + 1..close)?;
        // SAFETY: `line` is valid UTF-8, and `inner` starts just after the
        // `"` at `open` and ends just before the `"` at `close` (both checked
        // above). A `"` is a one-byte character, so both ends of `inner` are
        // char boundaries of `line` and `inner` is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(inner) })
    }

    /// The position of the first quote at or after `from`, if any. The words
    /// past the line are zero, so a search that finds no quote in the line
    /// runs on to the end of `words` and answers `None`.
    #[inline(always)]
    fn next_quote(&self, from: usize) -> Option<usize> {
        let mut block = from / BLOCK;
        let mut bits = *self.words.get(block)? >> (from % BLOCK);
        let mut base = from;
        while bits == 0 {
            block += 1;
            bits = *self.words.get(block)?;
            base = block * BLOCK;
        }
        Some(base + bits.trailing_zeros() as usize)
    }
}

/// What [`line_masks`] found in a line besides its quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LineBytes {
    /// Some byte is a backslash or a control byte (`U+0000`-`U+001F`).
    special: bool,
    /// Every byte is ASCII (below 0x80).
    ascii: bool,
}

/// Fills `words` with the quote masks of the blocks of `bytes` (at most
/// [`MAX_LINE`] bytes; bytes past the end read as spaces) and says whether
/// any byte is a backslash or a control byte and whether all are ASCII. AVX2
/// (32 bytes per compare) when the CPU has it, detected at run time (a cached
/// flag); else the SSE2 block masks of the general scanner.
#[inline(always)]
fn line_masks(bytes: &[u8], words: &mut [u64; MAX_BLOCKS]) -> LineBytes {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: calling a `#[target_feature]` function requires only
            // that the CPU has the feature, which was checked just above.
            return unsafe { line_masks_avx2(bytes, words) };
        }
    }
    line_masks_by_block(bytes, words)
}

/// [`line_masks`] one [`block_masks`] call per block (any architecture; the
/// reference the AVX2 version is tested against).
fn line_masks_by_block(bytes: &[u8], words: &mut [u64; MAX_BLOCKS]) -> LineBytes {
    LineBytes {
        special: quote_masks_by_block(bytes, words),
        ascii: bytes.is_ascii(),
    }
}

/// The quote masks of [`line_masks_by_block`]; whether any byte is special.
fn quote_masks_by_block(bytes: &[u8], words: &mut [u64; MAX_BLOCKS]) -> bool {
    let mut specials = 0u64;
    let mut chunks = bytes.chunks_exact(BLOCK);
    for (word, chunk) in words.iter_mut().zip(&mut chunks) {
        let (quotes, special) = match <&[u8; BLOCK]>::try_from(chunk) {
            Ok(block) => block_masks(block),
            // Not reachable: `chunks_exact` yields whole blocks.
            Err(_) => return true,
        };
        *word = quotes;
        specials |= special;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut padded = [b' '; BLOCK];
        padded[..tail.len()].copy_from_slice(tail);
        let (quotes, special) = block_masks(&padded);
        match words.get_mut(bytes.len() / BLOCK) {
            Some(word) => *word = quotes,
            None => return true,
        }
        specials |= special;
    }
    specials != 0
}

/// [`line_masks`] with AVX2: per 64-byte block two loads, the quote compare
/// and its two movemasks; the backslash compares, the bytes' running minimum
/// (for control bytes) and the bytes themselves (for their high bits) are
/// kept in three vectors for the whole line and tested once at the end.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn line_masks_avx2(bytes: &[u8], words: &mut [u64; MAX_BLOCKS]) -> LineBytes {
    masks_avx2::<false>(bytes, words)
}

/// [`line_masks_avx2`] for a caller that takes only plain ASCII lines: one
/// running signed minimum finds control and non-ASCII bytes together (as
/// `i8`, a byte above 0x7f is negative, a control byte below 0x20), one
/// vector operation per half block fewer. `ascii` is exact; `special` is
/// exact when `ascii` is true.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn ascii_line_masks_avx2(bytes: &[u8], words: &mut [u64; MAX_BLOCKS]) -> LineBytes {
    masks_avx2::<true>(bytes, words)
}

/// The body of [`line_masks_avx2`] (`ASCII_ONLY` false) and
/// [`ascii_line_masks_avx2`] (true).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn masks_avx2<const ASCII_ONLY: bool>(bytes: &[u8], words: &mut [u64; MAX_BLOCKS]) -> LineBytes {
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_min_epu8, _mm256_movemask_epi8,
        _mm256_set1_epi8, _mm256_setzero_si256, _mm256_testz_si256,
    };
    let mut seen = SeenBytes {
        backslashes: _mm256_setzero_si256(),
        lowest: _mm256_set1_epi8(if ASCII_ONLY { i8::MAX } else { -1 }),
        high_bits: _mm256_setzero_si256(),
    };
    let mut chunks = bytes.chunks_exact(BLOCK);
    for (word, chunk) in words.iter_mut().zip(&mut chunks) {
        match <&[u8; BLOCK]>::try_from(chunk) {
            Ok(block) => *word = block_quotes_avx2::<ASCII_ONLY>(block, &mut seen),
            // Not reachable: `chunks_exact` yields whole blocks.
            Err(_) => {
                return LineBytes {
                    special: true,
                    ascii: false,
                }
            }
        }
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        // A plain `match` rather than an `Option` chain, whose closures were
        // left out of line here (a call per line).
        let last_block = match bytes.len() >= BLOCK {
            true => bytes.get(bytes.len() - BLOCK..),
            false => None,
        };
        let quotes = match last_block.map(<&[u8; BLOCK]>::try_from) {
            // The line's last 64 bytes (overlapping the block before): the
            // tail is their top `tail.len()` bytes, so their quote bits
            // shifted down; every byte is the line's, so folding them into
            // `seen` is exact. No copy.
            Some(Ok(last)) => {
                block_quotes_avx2::<ASCII_ONLY>(last, &mut seen) >> (BLOCK - tail.len())
            }
            // A line shorter than a block: padded with spaces.
            _ => {
                let mut padded = [b' '; BLOCK];
                padded[..tail.len()].copy_from_slice(tail);
                block_quotes_avx2::<ASCII_ONLY>(&padded, &mut seen)
            }
        };
        match words.get_mut(bytes.len() / BLOCK) {
            Some(word) => *word = quotes,
            None => {
                return LineBytes {
                    special: true,
                    ascii: false,
                }
            }
        }
    }
    let lowest = seen.lowest;
    let (control, ascii) = if ASCII_ONLY {
        // Signed `lowest < 0x20`: a control byte, or (then `ascii` is
        // false) a non-ASCII one; a negative lane is a non-ASCII byte.
        (
            _mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), lowest),
            _mm256_movemask_epi8(lowest) == 0,
        )
    } else {
        // Unsigned `lowest <= 0x1f` is `min(lowest, 0x1f) == lowest`.
        (
            _mm256_cmpeq_epi8(_mm256_min_epu8(lowest, _mm256_set1_epi8(0x1f)), lowest),
            _mm256_movemask_epi8(seen.high_bits) == 0,
        )
    };
    LineBytes {
        special: _mm256_testz_si256(seen.backslashes, seen.backslashes) == 0
            || _mm256_testz_si256(control, control) == 0,
        ascii,
    }
}

/// What [`block_quotes_avx2`] folds in from every block, per byte lane.
#[cfg(target_arch = "x86_64")]
struct SeenBytes {
    /// All ones in a lane once a backslash was in it.
    backslashes: std::arch::x86_64::__m256i,
    /// The smallest byte seen in the lane: unsigned, or signed for
    /// [`ascii_line_masks_avx2`].
    lowest: std::arch::x86_64::__m256i,
    /// The OR of the lane's bytes: its high bit is set once a byte was not
    /// ASCII (not kept for [`ascii_line_masks_avx2`]).
    high_bits: std::arch::x86_64::__m256i,
}

/// The quote mask of one block; its bytes are folded into `seen` (see
/// [`masks_avx2`] for `ASCII_ONLY`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn block_quotes_avx2<const ASCII_ONLY: bool>(block: &[u8; BLOCK], seen: &mut SeenBytes) -> u64 {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_min_epi8, _mm256_min_epu8,
        _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8,
    };
    let quote = _mm256_set1_epi8(b'"' as i8);
    let backslash = _mm256_set1_epi8(b'\\' as i8);
    let (low, high) = block.split_at(BLOCK / 2);
    let mut quotes = 0u64;
    for (half, shift) in [(low, 0), (high, 32)] {
        // SAFETY: `half` is 32 bytes of a `[u8; 64]` (`split_at` of the
        // block at 32), so the unaligned 32-byte load reads only bytes of
        // `block`; `_mm256_loadu_si256` has no alignment requirement.
        let chunk = unsafe { _mm256_loadu_si256(half.as_ptr().cast::<__m256i>()) };
        let is_quote = _mm256_cmpeq_epi8(chunk, quote);
        quotes |= u64::from(_mm256_movemask_epi8(is_quote) as u32) << shift;
        let is_backslash = _mm256_cmpeq_epi8(chunk, backslash);
        seen.backslashes = _mm256_or_si256(seen.backslashes, is_backslash);
        if ASCII_ONLY {
            seen.lowest = _mm256_min_epi8(seen.lowest, chunk);
        } else {
            seen.lowest = _mm256_min_epu8(seen.lowest, chunk);
            seen.high_bits = _mm256_or_si256(seen.high_bits, chunk);
        }
    }
    quotes
}

/// Walks a compact flat JSON line (see the module docs) and feeds its members
/// to `fields`, which must be fresh ([`FlatFields::default`]). `None` when the
/// line needs the general scanner; `fields` is then in an unspecified state.
#[inline(always)]
pub(crate) fn scan_compact<'a>(
    line: &'a str,
    keep_headers: &[String],
    fields: &mut FlatFields<'a>,
    memo: &mut KeyOrder,
) -> Option<FlatScan> {
    let bytes = line.as_bytes();
    // An empty object (`{}`) is left to the general scanner.
    if bytes.first() != Some(&b'{') || bytes.last() != Some(&b'}') || bytes.len() < 3 {
        return None;
    }
    let mut quotes = QuoteIndex::new();
    if !quotes.index_plain_line(bytes) {
        return None;
    }
    walk_indexed(line, &quotes, keep_headers, fields, memo)
}

/// [`scan_compact`] of a payload not yet validated as UTF-8: taken only when
/// [`QuoteIndex::index_ascii_object_with`] accepts it (an ASCII object, validated
/// by the pass that indexes its quotes), else `None`, as when the walk gives
/// up. Whenever it answers, [`scan_compact`] of the payload as text answers
/// the same. On `None`, `ascii_text` is set to the payload as text when that
/// pass found it all ASCII (the caller then need not validate it again).
///
/// On a CPU with AVX2 the whole scan is one function compiled for it
/// ([`scan_ascii_payload_avx2`]: the line pass inlined, no second feature
/// check); elsewhere the same code with the portable line pass.
#[inline(always)]
pub(crate) fn scan_ascii_payload<'a>(
    payload: &'a [u8],
    keep_headers: &[String],
    fields: &mut FlatFields<'a>,
    memo: &mut KeyOrder,
    ascii_text: &mut Option<&'a str>,
) -> Option<FlatScan> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: calling a `#[target_feature]` function requires only
            // that the CPU has the feature, which was checked just above.
            return unsafe {
                scan_ascii_payload_avx2(payload, keep_headers, fields, memo, ascii_text)
            };
        }
    }
    scan_ascii_payload_portable(payload, keep_headers, fields, memo, ascii_text)
}

/// [`scan_ascii_payload`] with the line pass [`line_masks`] picks (any CPU;
/// tests check it answers as the AVX2 version).
#[inline(always)]
fn scan_ascii_payload_portable<'a>(
    payload: &'a [u8],
    keep_headers: &[String],
    fields: &mut FlatFields<'a>,
    memo: &mut KeyOrder,
    ascii_text: &mut Option<&'a str>,
) -> Option<FlatScan> {
    // SAFETY: `line_masks` reports `ascii` exactly (tests check it).
    unsafe { scan_ascii_payload_with(payload, line_masks, keep_headers, fields, memo, ascii_text) }
}

/// [`scan_ascii_payload`] compiled for AVX2, with [`ascii_line_masks_avx2`]
/// as the line pass.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_ascii_payload_avx2<'a>(
    payload: &'a [u8],
    keep_headers: &[String],
    fields: &mut FlatFields<'a>,
    memo: &mut KeyOrder,
    ascii_text: &mut Option<&'a str>,
) -> Option<FlatScan> {
    // The closure's call is safe: this function has the AVX2 feature the
    // line pass needs. Its `special` may be off only when `ascii` is false,
    // which rejects the payload all the same.
    let masks = |bytes: &[u8], words: &mut [u64; MAX_BLOCKS]| ascii_line_masks_avx2(bytes, words);
    // SAFETY: `ascii_line_masks_avx2` reports `ascii` exactly (tests check
    // it against `is_ascii`).
    unsafe { scan_ascii_payload_with(payload, masks, keep_headers, fields, memo, ascii_text) }
}

/// The body of both [`scan_ascii_payload`] versions: index with `masks`,
/// then walk; the payload's text is handed back in `ascii_text` when it is
/// all ASCII but declined.
///
/// # Safety
///
/// As [`QuoteIndex::index_ascii_object_with`]: `masks` reports `ascii`
/// only for all-ASCII bytes.
#[inline(always)]
unsafe fn scan_ascii_payload_with<'a>(
    payload: &'a [u8],
    masks: impl FnOnce(&[u8], &mut [u64; MAX_BLOCKS]) -> LineBytes,
    keep_headers: &[String],
    fields: &mut FlatFields<'a>,
    memo: &mut KeyOrder,
    ascii_text: &mut Option<&'a str>,
) -> Option<FlatScan> {
    let mut quotes = QuoteIndex::new();
    // SAFETY: passed on from this function's contract.
    let line = unsafe { quotes.index_ascii_object_with(payload, masks, ascii_text) }?;
    let scan = walk_indexed(line, &quotes, keep_headers, fields, memo);
    if scan.is_none() {
        *ascii_text = Some(line);
    }
    scan
}

/// The member walk of [`scan_compact`] over a line already indexed into
/// `quotes` (by [`QuoteIndex::index_plain_line`] or
/// [`QuoteIndex::index_ascii_object_with`]: a line of at most [`MAX_LINE`] bytes
/// without backslash or control bytes). Both callers have checked that the
/// line starts with `{` and ends with `}`; an empty object (`{}`) fails the
/// first member's quote check below and is left to the general scanner.
/// Gives up on the same lines, with the same result.
#[inline(always)]
fn walk_indexed<'a>(
    line: &'a str,
    quotes: &QuoteIndex,
    keep_headers: &[String],
    fields: &mut FlatFields<'a>,
    memo: &mut KeyOrder,
) -> Option<FlatScan> {
    let bytes = line.as_bytes();
    let mut summary = FlatScan::default();
    // The opening quote of the current member's key (a later member's is
    // checked together with the comma before it).
    let mut pos = 1usize;
    if bytes.get(pos) != Some(&b'"') {
        return None;
    }
    let mut member = 0usize;
    loop {
        let key_start = pos + 1;
        // As in the general scanner, through the key-order memo (with no
        // backslash in the line, the next quote ends the key).
        let (key_end, known, envelope_word) =
            memo.key_at(member, line, key_start, |from| quotes.next_quote(from))?;
        member += 1;
        if envelope_word {
            summary.see_envelope_word();
        }
        // The colon and the value's first byte, with one bounds check.
        let value_first = match bytes.get(key_end + 1..key_end + 3) {
            Some(&[b':', first]) => first,
            _ => return None,
        };
        let value_at = key_end + 2;
        let value_end = match value_first {
            b'"' => {
                let end = quotes.next_quote(value_at + 1)?;
                let text = quotes.text_between(line, value_at, end)?;
                if is_envelope_word(text) {
                    summary.see_envelope_word();
                }
                match known {
                    Some(known) => fields.apply_known_str(known, text).ok()?,
                    None if keep_headers.is_empty() => {}
                    None => {
                        let key = line.get(key_start..key_end)?;
                        fields.apply_unknown(
                            Cow::Borrowed(key),
                            Scalar::Str(Cow::Borrowed(text)),
                            keep_headers,
                        );
                    }
                }
                end + 1
            }
            b'0'..=b'9' => {
                // A fraction or exponent after the digits fails the
                // separator check below.
                let (value, end) = integer_digits_at(bytes, value_at)?;
                match known {
                    Some(known) => fields.apply_known_int(known, value).ok()?,
                    None if keep_headers.is_empty() => {}
                    None => {
                        let key = line.get(key_start..key_end)?;
                        fields.apply_unknown(Cow::Borrowed(key), Scalar::Int(value), keep_headers);
                    }
                }
                end
            }
            b'n' => {
                if bytes.get(value_at..value_at + 4) != Some(b"null".as_slice()) {
                    return None;
                }
                match known {
                    Some(known) => fields.apply_known_null(known).ok()?,
                    None if keep_headers.is_empty() => {}
                    None => {
                        let key = line.get(key_start..key_end)?;
                        fields.apply_unknown(Cow::Borrowed(key), Scalar::Null, keep_headers);
                    }
                }
                value_at + 4
            }
            _ => return None,
        };
        // A comma and the next key's opening quote, or the closing brace as
        // the line's last byte.
        match bytes.get(value_end..value_end + 2) {
            Some(b",\"") => pos = value_end + 1,
            _ => {
                return (bytes.get(value_end) == Some(&b'}') && value_end + 1 == bytes.len())
                    .then_some(summary)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::flat_scan::scan_general;
    use super::*;

    /// What the compact walk and the general scanner give for `line`, each
    /// with a fresh memo: the summaries and the finished records.
    fn both(line: &str, keep_headers: &[String]) -> (Option<String>, Option<String>) {
        let run = |compact: bool| {
            let mut fields = FlatFields::default();
            let mut memo = KeyOrder::new();
            let scan = if compact {
                scan_compact(line, keep_headers, &mut fields, &mut memo)
            } else {
                scan_general(line, keep_headers, &mut fields, &mut memo)
            };
            scan.map(|scan| {
                let format = fields.inferred_format();
                let record = format.map(|format| fields.finish(format));
                format!("{scan:?} {record:?}")
            })
        };
        (run(true), run(false))
    }

    /// Whenever the compact walk accepts a line, the general scanner accepts
    /// it with the same summary and record; the payload scan (AVX2 where the
    /// CPU has it) answers as its portable version, and as the compact walk
    /// whenever it accepts.
    fn assert_compact_agrees(line: &str) -> Result<(), TestCaseError> {
        for keep_headers in [Vec::new(), vec!["x-canary".to_owned()]] {
            let (compact, general) = both(line, &keep_headers);
            if compact.is_some() {
                prop_assert_eq!(&compact, &general, "line: {:?}", line);
            }
            let payload = |portable: bool| {
                let mut fields = FlatFields::default();
                let mut memo = KeyOrder::new();
                let bytes = line.as_bytes();
                let mut ascii_text = None;
                let scan = if portable {
                    scan_ascii_payload_portable(
                        bytes,
                        &keep_headers,
                        &mut fields,
                        &mut memo,
                        &mut ascii_text,
                    )
                } else {
                    scan_ascii_payload(
                        bytes,
                        &keep_headers,
                        &mut fields,
                        &mut memo,
                        &mut ascii_text,
                    )
                };
                // Text is handed back only when the scan declines, and then
                // exactly when the payload is an ASCII object.
                assert_eq!(
                    ascii_text,
                    (scan.is_none()
                        && line.is_ascii()
                        && line.len() <= MAX_LINE
                        && line.starts_with('{')
                        && line.ends_with('}'))
                    .then_some(line)
                );
                scan.map(|scan| {
                    let format = fields.inferred_format();
                    let record = format.map(|format| fields.finish(format));
                    format!("{scan:?} {record:?}")
                })
            };
            let fast = payload(false);
            prop_assert_eq!(&fast, &payload(true), "line: {:?}", line);
            if fast.is_some() {
                prop_assert_eq!(&fast, &compact, "line: {:?}", line);
            }
        }
        Ok(())
    }

    const COMPACT: &str = r#"{":authority":"svc-145.corp.example.com","bytes_sent":2021,"downstream_local_address":"10.244.0.12:10080","duration":101,"method":"GET","response_code":200,"response_flags":"-","start_time":"2026-08-20T10:00:00.018Z","upstream_cluster":"httproute/team-03/app-291/rule/1","upstream_host":"10.64.11.185:8080","x-envoy-origin-path":"/r1/static/list?page=8","x-request-id":"5e65ab38-dcaf-47dc-8b81-87fc5dcac558"}"#;

    #[test]
    fn takes_compact_lines() {
        let (compact, general) = both(COMPACT, &[]);
        assert!(compact.is_some());
        assert_eq!(compact, general);
        let nulls = COMPACT.replace(r#""duration":101"#, r#""duration":null,"x_canary":"a""#);
        let (compact, general) = both(&nulls, &["x-canary".to_owned()]);
        assert!(compact.is_some());
        assert_eq!(compact, general);
        assert!(compact.unwrap().contains("x_canary"));
    }

    #[test]
    fn leaves_everything_else_to_the_general_scanner() {
        for line in [
            "{}",
            "{ \"method\":\"GET\"}",
            "{\"method\" :\"GET\"}",
            "{\"method\":\"GET\" }",
            "{\"method\":\"GET\"}\n",
            "{\"method\":\"G\\\"ET\"}",
            "{\"method\":\"GET\",\"x\":\"\\\\\"}",
            "{\"method\":\"G\tET\"}",
            "{\"method\":\"GET\",\"x\":true}",
            "{\"method\":\"GET\",\"x\":false}",
            "{\"method\":\"GET\",\"duration\":nul}",
            "{\"method\":\"GET\",\"duration\":nulll}",
            "{\"method\":\"GET\",\"duration\":-1}",
            "{\"method\":\"GET\",\"duration\":01}",
            "{\"method\":\"GET\",\"duration\":1.5}",
            "{\"method\":\"GET\",\"duration\":1e3}",
            "{\"method\":\"GET\",\"x\":{}}",
            "{\"method\":\"GET\",}",
            "{\"method\":\"GET\"}}",
            "{\"method\":\"GET\"",
            "{\"method\":\"GET",
            "{\"method\"}",
            "{\"response_code\":99999}",
        ] {
            let mut fields = FlatFields::default();
            let mut memo = KeyOrder::new();
            assert!(
                scan_compact(line, &[], &mut fields, &mut memo).is_none(),
                "{line:?}"
            );
        }
        let long = format!(
            "{{\"method\":\"GET\",\"x\":\"{}\"}}",
            "a".repeat(MAX_LINE - 20)
        );
        assert!(long.len() > MAX_LINE);
        let mut memo = KeyOrder::new();
        assert!(scan_compact(&long, &[], &mut FlatFields::default(), &mut memo).is_none());
        let fits = format!(
            "{{\"method\":\"GET\",\"x\":\"{}\"}}",
            "a".repeat(MAX_LINE - 23)
        );
        assert_eq!(fits.len(), MAX_LINE);
        assert!(scan_compact(&fits, &[], &mut FlatFields::default(), &mut memo).is_some());
    }

    /// Strings, escapes, control bytes and non-ASCII text placed so that
    /// they start, end or straddle a 64-byte block edge.
    #[test]
    fn block_edges() {
        for pad in 0..140 {
            let filler = "a".repeat(pad);
            for value in [
                "\"x\"",
                "\"\"",
                "\"-\"",
                "\"é€\"",
                "\"a\\\"b\"",
                "\"\\u0041\"",
                "\"a\u{1}\"",
                "\"\\\\\"",
                "12345678",
                "123456789012",
                "0",
                "null",
            ] {
                let line = format!(
                    "{{\"x-request-id\":\"{filler}\",\"method\":{value},\"other\":{value},\"path\":\"/{filler}\"}}"
                );
                assert_compact_agrees(&line).unwrap();
                // Taken exactly when nothing needs the general scanner.
                let escaped = line.contains('\\') || line.contains('\u{1}');
                let (compact, _) = both(&line, &[]);
                assert_eq!(compact.is_some(), !escaped, "{line}");
            }
            // A truncated line at every length around the edge.
            let line = format!("{{\"method\":\"{filler}\",\"duration\":7}}");
            for cut in 0..line.len() {
                if line.is_char_boundary(cut) {
                    assert_compact_agrees(&line[..cut]).unwrap();
                }
            }
        }
    }

    /// The line masks (AVX2 where the CPU has it) equal the block-by-block
    /// reference for every length up to [`MAX_LINE`], with quotes,
    /// backslashes and control bytes at and around the block edges and in
    /// the last partial block.
    #[test]
    fn line_masks_match_the_block_reference() {
        let mut state = 0x9e37_79b9_u32;
        for len in (0..=MAX_LINE)
            .step_by(7)
            .chain([63, 64, 65, 127, 128, 129, MAX_LINE - 1])
        {
            for round in 0..4 {
                let line: Vec<u8> = (0..len)
                    .map(|at| {
                        state ^= state << 13;
                        state ^= state >> 17;
                        state ^= state << 5;
                        let edge = at % BLOCK == 0 || at % BLOCK == BLOCK - 1 || at % 32 == 0;
                        match (round, state % 16) {
                            (0, _) => b'a' + (state % 26) as u8,
                            (_, 0) => b'"',
                            (1, 1) if edge => b'\\',
                            (2, 1) if edge => (state >> 8) as u8 & 0x1f,
                            (3, 1) => 0x80 | (state >> 8) as u8,
                            (3, 2) => b' ',
                            _ if edge && state % 3 == 0 => b'"',
                            _ => b'a' + (state % 26) as u8,
                        }
                    })
                    .collect();
                let mut fast = [0u64; MAX_BLOCKS];
                let mut reference = [0u64; MAX_BLOCKS];
                let fast_found = line_masks(&line, &mut fast);
                let reference_found = line_masks_by_block(&line, &mut reference);
                assert_ascii_masks_agree(&line, &reference, reference_found);
                assert_eq!(fast, reference, "{len} {round}");
                assert_eq!(fast_found, reference_found, "{len} {round}");
                assert_eq!(
                    fast_found.special,
                    line.iter().any(|&b| b == b'\\' || b < 0x20),
                    "{len} {round}"
                );
                assert_eq!(fast_found.ascii, line.is_ascii(), "{len} {round}");
                let quotes: u32 = fast.iter().map(|word| word.count_ones()).sum();
                assert_eq!(quotes as usize, line.iter().filter(|&&b| b == b'"').count());
            }
        }
    }

    /// The ASCII-only AVX2 pass (where the CPU has AVX2) gives the reference
    /// quote words and `ascii`, and the reference `special` when `ascii`.
    fn assert_ascii_masks_agree(line: &[u8], reference: &[u64; MAX_BLOCKS], found: LineBytes) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut words = [0u64; MAX_BLOCKS];
                // SAFETY: the CPU has AVX2 (checked just above).
                let ascii_found = unsafe { ascii_line_masks_avx2(line, &mut words) };
                assert_eq!(&words, reference, "{line:?}");
                assert_eq!(ascii_found.ascii, found.ascii, "{line:?}");
                if found.ascii {
                    assert_eq!(ascii_found.special, found.special, "{line:?}");
                }
            }
        }
    }

    /// One non-ASCII byte anywhere in a line (first byte, block edges, the
    /// overlapping last block, the padded short line) clears the ASCII flag.
    #[test]
    fn line_masks_see_a_single_non_ascii_byte_anywhere() {
        for len in [1, 2, 31, 32, 33, 63, 64, 65, 127, 129, 200, MAX_LINE] {
            let mut line = vec![b'a'; len];
            let mut words = [0u64; MAX_BLOCKS];
            assert!(line_masks(&line, &mut words).ascii, "{len}");
            for at in 0..len {
                line[at] = 0xc3;
                let found = line_masks(&line, &mut words);
                assert!(!found.ascii && !found.special, "{len} {at}");
                let mut reference = [0u64; MAX_BLOCKS];
                let reference_found = line_masks_by_block(&line, &mut reference);
                assert_ascii_masks_agree(&line, &reference, reference_found);
                line[at] = b'a';
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Random members (keys known and unknown, values of every kind),
        /// with a quote, backslash or control byte sometimes dropped in.
        #[test]
        fn random_lines_agree_with_the_general_scanner(
            members in prop::collection::vec(
                (
                    prop::sample::select(vec![
                        ":authority", "x-request-id", "start_time", "method", "duration",
                        "response_code", "upstream_host", "x-envoy-origin-path", "status",
                        "server_port", "log", "x_canary", "other", "time", "bytes_sent",
                    ]),
                    prop_oneof![
                        "[a-zA-Z0-9 /:.?=&é-]{0,90}".prop_map(|s| format!("\"{s}\"")),
                        any::<u64>().prop_map(|n| n.to_string()),
                        (0u32..100_000).prop_map(|n| n.to_string()),
                        Just("null".to_owned()),
                        Just("\"2026-08-20T10:15:30.123Z\"".to_owned()),
                        Just("\"message\"".to_owned()),
                        Just("\"10.0.0.1:0\"".to_owned()),
                        Just("-3".to_owned()),
                    ],
                ),
                1..16,
            ),
            noise in prop::option::of((any::<prop::sample::Index>(), prop::sample::select(vec!["\"", "\\", "\u{1}", " ", ",", "}", "x"]))),
        ) {
            let body: Vec<String> = members
                .iter()
                .map(|(key, value)| format!("\"{key}\":{value}"))
                .collect();
            let mut line = format!("{{{}}}", body.join(","));
            if let Some((at, piece)) = noise {
                let mut pos = at.index(line.len() + 1);
                while !line.is_char_boundary(pos) {
                    pos -= 1;
                }
                line.insert_str(pos, piece);
            }
            assert_compact_agrees(&line)?;
        }
    }
}
