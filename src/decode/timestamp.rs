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
pub(crate) fn parse_rfc3339(field: &'static str, raw: &str) -> Result<i64, DecodeError> {
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
