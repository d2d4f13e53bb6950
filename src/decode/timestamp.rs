//! Hand-written timestamp parsers for the formats gateways log (no allocation,
//! no chrono on the hot path).

use super::error::DecodeError;

/// Microseconds at 1970-01-01T00:00:00Z.
const MIN_US: i64 = 0;
/// Microseconds at 2200-01-01T00:00:00Z (the upper sanity bound).
const MAX_US: i64 = 7_258_118_400_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Reads exactly `N` ASCII digits at `pos`.
fn digits<const N: usize>(bytes: &[u8], pos: usize) -> Option<u32> {
    let slice = bytes.get(pos..pos + N)?;
    let mut value = 0u32;
    for &byte in slice {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(byte - b'0');
    }
    Some(value)
}

/// Reads an optional `.fraction` at `pos`; returns (microseconds, next position).
fn fraction_us(bytes: &[u8], mut pos: usize) -> (i64, usize) {
    if bytes.get(pos) != Some(&b'.') && bytes.get(pos) != Some(&b',') {
        return (0, pos);
    }
    pos += 1;
    let mut micros = 0i64;
    let mut scale = 100_000i64;
    while let Some(byte) = bytes.get(pos).filter(|byte| byte.is_ascii_digit()) {
        micros += i64::from(byte - b'0') * scale;
        scale /= 10;
        pos += 1;
    }
    (micros, pos)
}

/// Builds microseconds from calendar parts, validating ranges.
fn to_micros(year: u32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Option<i64> {
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let seconds =
        days * 86_400 + i64::from(hour) * 3_600 + i64::from(minute) * 60 + i64::from(second);
    Some(seconds * 1_000_000)
}

/// Parses a zone suffix: `Z`, `+hh:mm`, `+hhmm`, or nothing (UTC). Returns the
/// offset in seconds, or `None` when malformed or trailing garbage follows.
fn zone_offset_s(bytes: &[u8], pos: usize) -> Option<i64> {
    let rest = bytes.get(pos..)?;
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    match rest {
        [] | [b'Z'] | [b'z'] => Some(0),
        [sign @ (b'+' | b'-'), tail @ ..] => {
            let hours = digits::<2>(tail, 0)?;
            let minute_pos = if tail.get(2) == Some(&b':') { 3 } else { 2 };
            let minutes = digits::<2>(tail, minute_pos)?;
            if tail.len() != minute_pos + 2 || hours > 23 || minutes > 59 {
                return None;
            }
            let offset = i64::from(hours * 3600 + minutes * 60);
            Some(if *sign == b'-' { -offset } else { offset })
        }
        _ => None,
    }
}

/// Rejects times before 1970 or after 2200 with `absurd_value`.
pub(crate) fn check_range(field: &'static str, micros: i64, raw: &str) -> Result<i64, DecodeError> {
    if (MIN_US..=MAX_US).contains(&micros) {
        Ok(micros)
    } else {
        Err(DecodeError::absurd(field, raw))
    }
}

/// Parses RFC 3339 / ISO 8601 (`2026-08-20T10:15:30.123Z`,
/// `2026-08-20T10:15:30+00:00`, nanosecond fractions) into microseconds since
/// the epoch.
///
/// Envoy's `%START_TIME%` (every Envoy Gateway, Istio and Contour JSON line)
/// is always `YYYY-MM-DDTHH:MM:SS.mmmZ`; that exact shape takes
/// [`parse_millis_utc`] (a third of the instructions); anything else, and any
/// out-of-range field, the general parser, which gives the same value for
/// that shape and names the error.
pub(crate) fn parse_rfc3339(field: &'static str, raw: &str) -> Result<i64, DecodeError> {
    parse_rfc3339_inline(field, raw)
}

/// [`parse_rfc3339`] with the in-range `YYYY-MM-DDTHH:MM:SS.mmmZ` case
/// inline (for the flat-JSON decoder's `start_time`); anything else out of
/// line. The same result.
#[inline(always)]
pub(crate) fn parse_rfc3339_inline(field: &'static str, raw: &str) -> Result<i64, DecodeError> {
    match parse_millis_utc(raw.as_bytes()) {
        Some(micros) if (MIN_US..=MAX_US).contains(&micros) => Ok(micros),
        _ => parse_rfc3339_rest(field, raw),
    }
}

/// [`parse_rfc3339`] of everything [`parse_rfc3339_inline`] does not answer
/// itself (every other shape, such as NGINX's `+00:00` offsets).
#[inline(never)]
fn parse_rfc3339_rest(field: &'static str, raw: &str) -> Result<i64, DecodeError> {
    match parse_millis_utc(raw.as_bytes()) {
        Some(micros) => check_range(field, micros, raw),
        None => parse_rfc3339_general(field, raw),
    }
}

/// The byte classes of `YYYY-MM-DDTHH:MM:SS.mmmZ`: `d` a digit, anything
/// else itself.
const MILLIS_UTC_SHAPE: &[u8; 24] = b"dddd-dd-ddTdd:dd:dd.dddZ";

/// Per 8-byte word of [`MILLIS_UTC_SHAPE`]: the bits to keep (a digit's high
/// nibble, a separator's whole byte) and what they must be (`0x3_` for a
/// digit, the separator itself).
const MILLIS_UTC_KEEP: [u64; 3] = shape_words(0xf0, Some(0xff));
/// See [`MILLIS_UTC_KEEP`].
const MILLIS_UTC_EXPECT: [u64; 3] = shape_words(0x30, None);
/// 6 in every digit byte: a digit byte `0x3_` plus 6 stays below `0x40`
/// exactly when its low nibble is at most 9 (and never carries into the next
/// byte).
const MILLIS_UTC_SIX: [u64; 3] = shape_words(0x06, Some(0));
/// The high nibble of every digit byte.
const MILLIS_UTC_DIGIT_HIGH: [u64; 3] = shape_words(0xf0, Some(0));

/// One byte per position of [`MILLIS_UTC_SHAPE`], as three little-endian
/// words: `digit` at a digit; at a separator `separator`, or the separator
/// itself when `None`.
const fn shape_words(digit: u8, separator: Option<u8>) -> [u64; 3] {
    let mut words = [0u64; 3];
    let mut i = 0;
    while i < 24 {
        let class = MILLIS_UTC_SHAPE[i];
        let byte = match (class, separator) {
            (b'd', _) => digit,
            (_, Some(byte)) => byte,
            (_, None) => class,
        };
        words[i / 8] |= (byte as u64) << (8 * (i % 8));
        i += 1;
    }
    words
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` exactly, in microseconds (not range-checked),
/// or `None` for any other shape or a field out of range. The shape is
/// checked on three words (separators equal, digits `0`-`9`) before any digit
/// is read; the minute (`YYYY-MM-DDTHH:MM`, the first two words) comes from
/// [`minute_micros`].
#[inline]
fn parse_millis_utc(bytes: &[u8]) -> Option<i64> {
    let text = <&[u8; 24]>::try_from(bytes).ok()?;
    let word = |word_index: usize| {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(&text[8 * word_index..8 * word_index + 8]);
        u64::from_le_bytes(eight)
    };
    let words = [word(0), word(1), word(2)];
    // The minute's words are shape-checked by `minute_micros` (a remembered
    // minute was checked when it was stored).
    if !word_has_shape(words[2], 2) {
        return None;
    }
    let minute = minute_micros(words[0], words[1])?;
    // Bytes 16-23 `:SS.mmmZ`.
    let ones = words[2] & 0x0f0f_0f0f_0f0f_0f0f;
    let pairs = digit_pairs(ones);
    let second = byte_at(pairs, 1);
    if second > 60 {
        return None;
    }
    let millis = byte_at(ones, 4) * 100 + byte_at(pairs, 5);
    Some(minute + i64::from(second) * 1_000_000 + i64::from(millis) * 1000)
}

/// Whether `word` is word `word_index` of [`MILLIS_UTC_SHAPE`]: the
/// separators equal, the digits `0`-`9`.
#[inline(always)]
fn word_has_shape(word: u64, word_index: usize) -> bool {
    let (keep, expect, six, high) = (
        MILLIS_UTC_KEEP[word_index],
        MILLIS_UTC_EXPECT[word_index],
        MILLIS_UTC_SIX[word_index],
        MILLIS_UTC_DIGIT_HIGH[word_index],
    );
    word & keep == expect && word.wrapping_add(six) & high == expect & high
}

/// Every two-digit field of a word from one multiplication: with the digits'
/// values in the bytes (`ones`, each `& 0x0f`), `(ones * (10 << 8 | 1)) >> 8`
/// holds `10 * byte[i] + byte[i + 1]` in byte `i` (at most 165, so no byte
/// carries into the next).
#[inline(always)]
fn digit_pairs(ones: u64) -> u64 {
    ones.wrapping_mul(10 << 8 | 1) >> 8
}

/// Byte `at` of a little-endian word.
#[inline(always)]
fn byte_at(word: u64, at: usize) -> u32 {
    ((word >> (8 * at)) & 0xff) as u32
}

/// The last minute [`minute_micros`] converted on this thread.
#[derive(Debug, Clone, Copy)]
struct MinuteMemo {
    /// The first two words of the timestamp (`YYYY-MM-` and `DDTHH:MM`);
    /// zero when empty, which no checked shape has (byte 4 is `-`).
    words: [u64; 2],
    /// [`minute_of`] of `words`.
    micros: i64,
}

thread_local! {
    /// Access-log lines come in time order, so most lines repeat the previous
    /// line's minute. Constant-initialised, no destructor: an access is a TLS
    /// address, no lazy initialisation.
    static LAST_MINUTE: std::cell::Cell<MinuteMemo> = const {
        std::cell::Cell::new(MinuteMemo { words: [0; 2], micros: 0 })
    };
}

/// [`checked_minute_of`], remembered for the thread's last minute (the same
/// value with or without the memo; only checked, valid minutes are
/// remembered, so a hit needs no shape check).
#[inline]
fn minute_micros(word0: u64, word1: u64) -> Option<i64> {
    let words = [word0, word1];
    LAST_MINUTE
        .try_with(|memo| {
            let last = memo.get();
            if last.words == words {
                return Some(last.micros);
            }
            let micros = checked_minute_of(word0, word1)?;
            memo.set(MinuteMemo { words, micros });
            Some(micros)
        })
        // The thread is being torn down: no memo.
        .unwrap_or_else(|_| checked_minute_of(word0, word1))
}

/// [`minute_of`] after checking the two words' shape (`YYYY-MM-`,
/// `DDTHH:MM`); `None` when either is off.
fn checked_minute_of(word0: u64, word1: u64) -> Option<i64> {
    if !(word_has_shape(word0, 0) && word_has_shape(word1, 1)) {
        return None;
    }
    minute_of(word0, word1)
}

/// Microseconds at the start of the minute `YYYY-MM-DDTHH:MM` given as two
/// shape-checked words (bytes 0-7 `YYYY-MM-`, 8-15 `DDTHH:MM`), or `None`
/// when a field is out of range.
fn minute_of(word0: u64, word1: u64) -> Option<i64> {
    let pairs0 = digit_pairs(word0 & 0x0f0f_0f0f_0f0f_0f0f);
    let pairs1 = digit_pairs(word1 & 0x0f0f_0f0f_0f0f_0f0f);
    let year = byte_at(pairs0, 0) * 100 + byte_at(pairs0, 2);
    to_micros(
        year,
        byte_at(pairs0, 5),
        byte_at(pairs1, 0),
        byte_at(pairs1, 3),
        byte_at(pairs1, 6),
        0,
    )
}

/// [`parse_rfc3339`] for every shape (the reference of [`parse_millis_utc`]).
fn parse_rfc3339_general(field: &'static str, raw: &str) -> Result<i64, DecodeError> {
    let bytes = raw.as_bytes();
    let parsed = (|| {
        let year = digits::<4>(bytes, 0)?;
        let month = digits::<2>(bytes, 5)?;
        let day = digits::<2>(bytes, 8)?;
        if bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
            return None;
        }
        if !matches!(bytes.get(10), Some(b'T' | b't' | b' ')) {
            return None;
        }
        let hour = digits::<2>(bytes, 11)?;
        let minute = digits::<2>(bytes, 14)?;
        let second = digits::<2>(bytes, 17)?;
        if bytes.get(13) != Some(&b':') || bytes.get(16) != Some(&b':') {
            return None;
        }
        let (micros, pos) = fraction_us(bytes, 19);
        let offset = zone_offset_s(bytes, pos)?;
        Some(to_micros(year, month, day, hour, minute, second)? + micros - offset * 1_000_000)
    })();
    match parsed {
        Some(micros) => check_range(field, micros, raw),
        None => Err(DecodeError::invalid(field, raw)),
    }
}

/// Month number from a three-letter English abbreviation.
fn month_from_abbrev(abbrev: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let position = MONTHS.iter().position(|month| month.as_slice() == abbrev)?;
    u32::try_from(position + 1).ok()
}

/// Parses the common-log time `20/Aug/2026:10:15:30 +0000` (NGINX
/// `$time_local`) or HAProxy's `20/Aug/2026:10:15:30.123` (local time without a
/// zone, taken as UTC) into microseconds since the epoch.
pub(crate) fn parse_clf(field: &'static str, raw: &str) -> Result<i64, DecodeError> {
    let bytes = raw.as_bytes();
    let parsed = (|| {
        let day = digits::<2>(bytes, 0)?;
        let month = month_from_abbrev(bytes.get(3..6)?)?;
        let year = digits::<4>(bytes, 7)?;
        if bytes.get(2) != Some(&b'/')
            || bytes.get(6) != Some(&b'/')
            || bytes.get(11) != Some(&b':')
        {
            return None;
        }
        let hour = digits::<2>(bytes, 12)?;
        let minute = digits::<2>(bytes, 15)?;
        let second = digits::<2>(bytes, 18)?;
        if bytes.get(14) != Some(&b':') || bytes.get(17) != Some(&b':') {
            return None;
        }
        let (micros, pos) = fraction_us(bytes, 20);
        let offset = zone_offset_s(bytes, pos)?;
        Some(to_micros(year, month, day, hour, minute, second)? + micros - offset * 1_000_000)
    })();
    match parsed {
        Some(micros) => check_range(field, micros, raw),
        None => Err(DecodeError::invalid(field, raw)),
    }
}

/// Converts epoch seconds as a float (Fluent Bit's default `@timestamp`) into
/// microseconds.
pub(crate) fn from_epoch_seconds(field: &'static str, seconds: f64) -> Result<i64, DecodeError> {
    let micros = (seconds * 1_000_000.0).round();
    if !micros.is_finite() || micros < MIN_US as f64 || micros > MAX_US as f64 {
        return Err(DecodeError::absurd(field, seconds));
    }
    // In range, so the cast is exact enough and cannot overflow.
    Ok(micros as i64)
}

/// Converts epoch nanoseconds (OTLP `timeUnixNano`) into microseconds; `0`
/// means unset in OTLP.
pub(crate) fn from_epoch_nanos(
    field: &'static str,
    nanos: u64,
) -> Result<Option<i64>, DecodeError> {
    if nanos == 0 {
        return Ok(None);
    }
    let micros = i64::try_from(nanos / 1_000).map_err(|_| DecodeError::absurd(field, nanos))?;
    check_range(field, micros, &nanos.to_string()).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T_2026_08_20_101530: i64 = 1_787_220_930_000_000;

    #[test]
    fn rfc3339_variants() {
        assert_eq!(
            parse_rfc3339("t", "2026-08-20T10:15:30Z"),
            Ok(T_2026_08_20_101530)
        );
        assert_eq!(
            parse_rfc3339("t", "2026-08-20T10:15:30.123Z"),
            Ok(T_2026_08_20_101530 + 123_000)
        );
        assert_eq!(
            parse_rfc3339("t", "2026-08-20T10:15:30.123456789Z"),
            Ok(T_2026_08_20_101530 + 123_456)
        );
        assert_eq!(
            parse_rfc3339("t", "2026-08-20T12:15:30+02:00"),
            Ok(T_2026_08_20_101530)
        );
        assert_eq!(
            parse_rfc3339("t", "2026-08-20T10:15:30+0000"),
            Ok(T_2026_08_20_101530)
        );
        assert_eq!(parse_rfc3339("t", "1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339("t", "1969-12-31T23:59:59Z")
                .unwrap_err()
                .reason(),
            "absurd_value"
        );
        assert_eq!(
            parse_rfc3339("t", "2201-01-01T00:00:00Z")
                .unwrap_err()
                .reason(),
            "absurd_value"
        );
        for bad in [
            "",
            "2026",
            "2026-13-20T10:15:30Z",
            "2026-08-20T10:15:30Zjunk",
            "2026-08-20X10:15:30Z",
            "2026-08-20T10:15:30+5",
        ] {
            assert_eq!(
                parse_rfc3339("t", bad).unwrap_err().reason(),
                "invalid_value",
                "{bad}"
            );
        }
    }

    /// The fast path gives the general parser's answer: on the shape, on
    /// every one-byte change of it, and on random strings close to it.
    #[test]
    fn millis_utc_fast_path_matches_the_general_parser() {
        let same = |raw: &str| {
            assert_eq!(
                parse_rfc3339("t", raw),
                parse_rfc3339_general("t", raw),
                "{raw:?}"
            );
        };
        let base = "2026-08-20T10:15:30.123Z";
        assert_eq!(
            parse_millis_utc(base.as_bytes()),
            Some(T_2026_08_20_101530 + 123_000)
        );
        same(base);
        for at in 0..base.len() {
            for byte in [
                b'0', b'9', b'/', b':', b'-', b'.', b'T', b't', b'Z', b'z', b' ', b'a', 0x7f,
            ] {
                let mut raw = base.as_bytes().to_vec();
                raw[at] = byte;
                same(std::str::from_utf8(&raw).unwrap());
            }
        }
        for raw in [
            "1970-01-01T00:00:00.000Z",
            "1969-12-31T23:59:59.999Z",
            "2199-12-31T23:59:59.999Z",
            "2200-01-01T00:00:00.001Z",
            "2026-02-31T24:00:00.000Z",
            "2026-00-10T10:00:00.000Z",
            "2026-12-31T23:59:60.999Z",
            "2026-12-31T23:60:59.999Z",
            "2026-08-20T10:15:30.123+",
            "2026-08-20T10:15:30.1234Z",
            "2026-08-20T10:15:30.12Z",
        ] {
            same(raw);
        }
    }

    /// Forgets the thread's remembered minute.
    fn forget_minute() {
        LAST_MINUTE.with(|memo| {
            memo.set(MinuteMemo {
                words: [0; 2],
                micros: 0,
            })
        });
    }

    /// The minute memo changes the cost, never the answer: a run of
    /// timestamps (same minute, next minute, bad seconds and bad minutes
    /// after a remembered one, a minute whose words differ only in one digit)
    /// parses as the general parser and as a parse with the memo emptied
    /// before every line; a bad minute is never remembered.
    #[test]
    fn minute_memo_gives_the_same_answers() {
        let run = [
            "2026-08-20T10:15:30.123Z",
            "2026-08-20T10:15:59.999Z",
            "2026-08-20T10:15:60.000Z",
            "2026-08-20T10:15:61.000Z",
            "2026-08-20T10:15:00.000Z",
            "2026-08-20T10:16:00.000Z",
            "2026-08-20T10:15:30.123Z",
            "2026-08-20T10:60:00.000Z",
            "2026-08-20T10:60:00.000Z",
            "2026-08-20T24:15:30.123Z",
            "2026-13-20T10:15:30.123Z",
            "2026-08-20T10:15:30.123Z",
            "2026-08-21T10:15:30.123Z",
            "2027-08-21T10:15:30.123Z",
            "2026-02-29T10:15:30.123Z",
            "2028-02-29T10:15:30.123Z",
            "2028-02-29T10:15:30.123+",
            "1969-12-31T23:59:59.999Z",
            "2026-08-20T10:15:30.123Z",
        ];
        forget_minute();
        for raw in run {
            let remembered = parse_rfc3339("t", raw);
            let memo_after = LAST_MINUTE.with(|memo| memo.get());
            forget_minute();
            assert_eq!(remembered, parse_rfc3339("t", raw), "{raw}");
            assert_eq!(remembered, parse_rfc3339_general("t", raw), "{raw}");
            LAST_MINUTE.with(|memo| memo.set(memo_after));
            // Only a valid minute is ever remembered, with its value.
            if memo_after.words != [0; 2] {
                assert_eq!(
                    minute_of(memo_after.words[0], memo_after.words[1]),
                    Some(memo_after.micros)
                );
            }
        }
        // A hit reads the minute from the memo: a planted wrong value shows.
        forget_minute();
        let raw = "2026-08-20T10:15:30.123Z";
        assert_eq!(parse_rfc3339("t", raw), Ok(T_2026_08_20_101530 + 123_000));
        let words = LAST_MINUTE.with(|memo| memo.get().words);
        LAST_MINUTE.with(|memo| memo.set(MinuteMemo { words, micros: 0 }));
        assert_eq!(parse_millis_utc(raw.as_bytes()), Some(30_123_000));
        forget_minute();
    }

    proptest::proptest! {
        #[test]
        fn millis_utc_agrees_on_random_near_shapes(
            raw in "[0-9]{4}[-/][0-1][0-9][-:][0-3][0-9][T ][0-2][0-9]:[0-6][0-9][:.][0-6][0-9][.,][0-9]{3}[Zz+]",
        ) {
            proptest::prop_assert_eq!(parse_rfc3339("t", &raw), parse_rfc3339_general("t", &raw));
        }

        /// Every digit value at every digit position of the exact shape
        /// (the word-wise digit pairs against the general parser).
        #[test]
        fn millis_utc_agrees_on_every_digit(
            raw in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z",
        ) {
            proptest::prop_assert_eq!(parse_rfc3339("t", &raw), parse_rfc3339_general("t", &raw));
        }
    }

    /// Every value (valid or not) of each field of the exact shape, the
    /// other fields valid, against the general parser: random digits alone
    /// rarely make a real date, so this covers the in-range values.
    #[test]
    fn millis_utc_agrees_on_every_field_value() {
        let base = "2026-08-20T10:15:30.123Z";
        // (byte offset, digits) of every field.
        let fields = [(0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2), (20, 3)];
        let mut checked = 0;
        for (at, digits) in fields {
            let values = 10u32.pow(digits as u32).min(10_000);
            for v in 0..values {
                let mut raw = base.to_string();
                raw.replace_range(at..at + digits, &format!("{v:0digits$}"));
                assert_eq!(
                    parse_rfc3339("t", &raw),
                    parse_rfc3339_general("t", &raw),
                    "{raw}"
                );
                checked += 1;
            }
        }
        // 2029-02-29 (not a leap year) and 2028-02-29 (one).
        for raw in ["2029-02-29T00:00:00.000Z", "2028-02-29T23:59:59.999Z"] {
            assert_eq!(parse_rfc3339("t", raw), parse_rfc3339_general("t", raw));
        }
        assert_eq!(checked, 10_000 + 5 * 100 + 1_000);
    }

    #[test]
    fn clf_variants() {
        assert_eq!(
            parse_clf("t", "20/Aug/2026:10:15:30 +0000"),
            Ok(T_2026_08_20_101530)
        );
        assert_eq!(
            parse_clf("t", "20/Aug/2026:12:15:30 +0200"),
            Ok(T_2026_08_20_101530)
        );
        assert_eq!(
            parse_clf("t", "20/Aug/2026:10:15:30.123"),
            Ok(T_2026_08_20_101530 + 123_000)
        );
        assert_eq!(
            parse_clf("t", "20/Foo/2026:10:15:30 +0000")
                .unwrap_err()
                .reason(),
            "invalid_value"
        );
    }

    #[test]
    fn epoch_conversions() {
        assert_eq!(
            from_epoch_seconds("t", 1_787_220_930.123456),
            Ok(T_2026_08_20_101530 + 123_456)
        );
        assert_eq!(
            from_epoch_seconds("t", -1.0).unwrap_err().reason(),
            "absurd_value"
        );
        assert_eq!(
            from_epoch_seconds("t", f64::NAN).unwrap_err().reason(),
            "absurd_value"
        );
        assert_eq!(
            from_epoch_nanos("t", 1_787_220_930_123_456_789),
            Ok(Some(T_2026_08_20_101530 + 123_456))
        );
        assert_eq!(from_epoch_nanos("t", 0), Ok(None));
        assert_eq!(
            from_epoch_nanos("t", u64::MAX).unwrap_err().reason(),
            "absurd_value"
        );
    }
}
