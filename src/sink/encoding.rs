//! The Parquet value and level encodings the enriched-row writer needs, written
//! straight into byte buffers: the RLE / bit-packed hybrid (definition and
//! repetition levels, dictionary indices), `DELTA_BINARY_PACKED` (integers and
//! the lengths of `DELTA_LENGTH_BYTE_ARRAY`) and the `PLAIN` helpers.
//!
//! The parquet crate keeps its encoders behind its `experimental` feature, and
//! its column writers intern every string by hashing its bytes; writing these
//! few encodings here lets [`super::columns`] encode dictionary indices it
//! already holds. Formats follow the Parquet specification
//! (`Encodings.md`); the round trip through arrow-rs and DuckDB is tested in
//! [`super::columns`].

/// Bits needed to store every value in `0..=max` (0 for `max == 0`).
pub fn bit_width(max: u64) -> u8 {
    (64 - max.leading_zeros()) as u8
}

/// Appends `value` as an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends `value` zigzag-encoded as a varint.
fn put_zigzag(out: &mut Vec<u8>, value: i64) {
    put_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Packs values of a fixed bit width least-significant bit first, as both the
/// hybrid encoding and `DELTA_BINARY_PACKED` require.
struct BitPacker<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    bits: u32,
}

impl<'a> BitPacker<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self {
            out,
            acc: 0,
            bits: 0,
        }
    }

    /// Appends the low `width` (<= 32) bits of `value`; whole 32-bit words
    /// go out at once.
    #[inline]
    fn put32(&mut self, value: u64, width: u32) {
        debug_assert!(width <= 32);
        let value = value & ((1u64 << width) - 1);
        self.acc |= value << self.bits;
        self.bits += width;
        if self.bits >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.bits -= 32;
        }
    }

    /// Appends the low `width` (<= 64) bits of `value`.
    #[inline]
    fn put(&mut self, value: u64, width: u32) {
        if width > 32 {
            self.put32(value & 0xFFFF_FFFF, 32);
            self.put32(value >> 32, width - 32);
        } else {
            self.put32(value, width);
        }
    }

    /// Writes out the remaining bits, the last byte zero padded.
    fn finish(mut self) {
        while self.bits > 0 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.bits = self.bits.saturating_sub(8);
        }
    }
}

/// Shortest run of equal values worth an RLE run between bit-packed groups.
const MIN_RLE_RUN: usize = 8;

/// Appends `values` in the RLE / bit-packed hybrid encoding with `width` bits
/// per value (no length prefix; callers add the 4-byte length where the page
/// layout needs one). Every value must fit in `width` bits (`width` <= 32).
///
/// Runs of at least eight equal values become RLE runs; everything else is
/// bit-packed in groups of eight. Only the very last group is padded (with
/// zeros), which readers ignore because they know the value count.
pub fn put_hybrid<T: Copy + PartialEq + Into<u32> + Into<u64>>(
    out: &mut Vec<u8>,
    values: &[T],
    width: u8,
) {
    let width = u32::from(width);
    let value_bytes = width.div_ceil(8) as usize;
    let n = values.len();
    if width == 0 && n >= MIN_RLE_RUN {
        // A value of width 0 has no bits (a one-entry dictionary's indices,
        // all 0): one RLE run of `n`, the bytes the scan below writes for
        // `n` equal values, without comparing each value.
        put_varint(out, (n as u64) << 1);
        return;
    }
    let run_at = |i: usize| {
        let v = values[i];
        values[i..].iter().take_while(|&&x| x == v).count()
    };
    let mut i = 0;
    while i < n {
        let run = run_at(i);
        if run >= MIN_RLE_RUN {
            put_varint(out, (run as u64) << 1);
            let v: u32 = values[i].into();
            out.extend_from_slice(&v.to_le_bytes()[..value_bytes]);
            i += run;
            continue;
        }
        // Bit-packed groups of eight until a long run starts at a group boundary.
        let start = i;
        let mut groups = 0usize;
        loop {
            i = (i + 8).min(n);
            groups += 1;
            if i >= n {
                break;
            }
            // A run of at least MIN_RLE_RUN values starts here.
            let v = values[i];
            if values
                .get(i..i + MIN_RLE_RUN)
                .is_some_and(|next| next.iter().all(|&x| x == v))
            {
                break;
            }
        }
        put_varint(out, ((groups as u64) << 1) | 1);
        put_bit_packed_groups(out, &values[start..i], groups, width);
    }
}

/// Appends the values given as runs of `(value, count)` in the hybrid
/// encoding: exactly the bytes [`put_hybrid`] writes for the values laid
/// out one by one, with work per run instead of per value (only bit-packed
/// sections, where runs are shorter than eight, are laid out, in
/// `scratch`). Runs may be empty or repeat the previous value.
pub fn put_hybrid_runs(
    out: &mut Vec<u8>,
    runs: impl IntoIterator<Item = (u8, usize)>,
    width: u8,
    scratch: &mut Vec<u8>,
) {
    let value_bytes = u32::from(width).div_ceil(8) as usize;
    // Maximal runs: empty ones dropped, equal neighbours merged.
    let mut runs = runs.into_iter().filter(|&(_, count)| count > 0).peekable();
    let mut next_run = move || {
        let (value, mut count) = runs.next()?;
        while let Some(&(_, more)) = runs.peek().filter(|&&(v, _)| v == value) {
            count += more;
            runs.next();
        }
        Some((value, count))
    };
    let mut current = next_run();
    while let Some((value, count)) = current {
        if count >= MIN_RLE_RUN {
            put_varint(out, (count as u64) << 1);
            out.extend_from_slice(&u32::from(value).to_le_bytes()[..value_bytes]);
            current = next_run();
            continue;
        }
        // Groups of eight until the values end or a run of at least
        // MIN_RLE_RUN starts at a group boundary (as in `put_hybrid`).
        scratch.clear();
        let mut groups = 0usize;
        loop {
            let mut wanted = 8;
            while wanted > 0 {
                let Some((value, count)) = current else { break };
                let taken = wanted.min(count);
                scratch.resize(scratch.len() + taken, value);
                wanted -= taken;
                current = if count > taken {
                    Some((value, count - taken))
                } else {
                    next_run()
                };
            }
            groups += 1;
            match current {
                Some((_, count)) if count < MIN_RLE_RUN => {}
                _ => break,
            }
        }
        put_varint(out, ((groups as u64) << 1) | 1);
        put_bit_packed_groups(out, scratch, groups, u32::from(width));
    }
}

/// Appends `values` bit-packed with `width` bits each, zero padded to
/// `groups` groups of eight values (`values.len()` is at most
/// `groups * 8`). Each group of eight takes exactly `width` bytes: widths
/// up to 32 (every dictionary index and level this writer produces, and the
/// deltas of event times and byte counts, 15-17 bits) pack each group into
/// two 128-bit words with shifts fixed at compile time ([`pack_groups`]);
/// wider values go through [`BitPacker`].
/// The bytes are those of packing value by value, least-significant bit
/// first.
fn put_bit_packed_groups<T: Copy + Into<u64>>(
    out: &mut Vec<u8>,
    values: &[T],
    groups: usize,
    width: u32,
) {
    debug_assert!(values.len() <= groups * 8);
    match width {
        0 => {}
        1 => pack_groups::<1, T>(out, values, groups),
        2 => pack_groups::<2, T>(out, values, groups),
        3 => pack_groups::<3, T>(out, values, groups),
        4 => pack_groups::<4, T>(out, values, groups),
        5 => pack_groups::<5, T>(out, values, groups),
        6 => pack_groups::<6, T>(out, values, groups),
        7 => pack_groups::<7, T>(out, values, groups),
        8 => pack_groups::<8, T>(out, values, groups),
        9 => pack_groups::<9, T>(out, values, groups),
        10 => pack_groups::<10, T>(out, values, groups),
        11 => pack_groups::<11, T>(out, values, groups),
        12 => pack_groups::<12, T>(out, values, groups),
        13 => pack_groups::<13, T>(out, values, groups),
        14 => pack_groups::<14, T>(out, values, groups),
        15 => pack_groups::<15, T>(out, values, groups),
        16 => pack_groups::<16, T>(out, values, groups),
        17 => pack_groups::<17, T>(out, values, groups),
        18 => pack_groups::<18, T>(out, values, groups),
        19 => pack_groups::<19, T>(out, values, groups),
        20 => pack_groups::<20, T>(out, values, groups),
        21 => pack_groups::<21, T>(out, values, groups),
        22 => pack_groups::<22, T>(out, values, groups),
        23 => pack_groups::<23, T>(out, values, groups),
        24 => pack_groups::<24, T>(out, values, groups),
        25 => pack_groups::<25, T>(out, values, groups),
        26 => pack_groups::<26, T>(out, values, groups),
        27 => pack_groups::<27, T>(out, values, groups),
        28 => pack_groups::<28, T>(out, values, groups),
        29 => pack_groups::<29, T>(out, values, groups),
        30 => pack_groups::<30, T>(out, values, groups),
        31 => pack_groups::<31, T>(out, values, groups),
        32 => pack_groups::<32, T>(out, values, groups),
        _ => {
            let mut packer = BitPacker::new(out);
            for &v in values {
                packer.put(v.into(), width);
            }
            for _ in values.len()..groups * 8 {
                packer.put(0, width);
            }
            packer.finish();
        }
    }
}

/// [`put_bit_packed_groups`] for a width `W` of 1..=32 bits: eight values
/// make one 256-bit group (`W` bytes) held as two 128-bit words, value `k`
/// at bit `k * W`; the shifts, and which word a value goes to (both when it
/// straddles bit 128), are constants.
#[inline(never)]
fn pack_groups<const W: u32, T: Copy + Into<u64>>(out: &mut Vec<u8>, values: &[T], groups: usize) {
    const { assert!(W >= 1 && W <= 32) };
    let mask = (1u64 << W) - 1;
    let bytes = W as usize;
    let pack = |group: [u64; 8]| {
        let (mut low, mut high) = (0u128, 0u128);
        for (k, v) in group.into_iter().enumerate() {
            let v = u128::from(v & mask);
            let at = k as u32 * W;
            if at < 128 {
                low |= v << at;
                if at + W > 128 {
                    high |= v >> (128 - at);
                }
            } else {
                high |= v << (at - 128);
            }
        }
        let mut word = [0u8; 32];
        word[..16].copy_from_slice(&low.to_le_bytes());
        word[16..].copy_from_slice(&high.to_le_bytes());
        word
    };
    out.reserve(groups * bytes);
    let mut chunks = values.chunks_exact(8);
    for group in &mut chunks {
        let group: [u64; 8] = std::array::from_fn(|k| group[k].into());
        out.extend_from_slice(&pack(group)[..bytes]);
    }
    let rest = chunks.remainder();
    let mut written = values.len() / 8;
    if !rest.is_empty() {
        // The last, partial group: zero padded.
        let group: [u64; 8] = std::array::from_fn(|k| rest.get(k).map_or(0, |&v| v.into()));
        out.extend_from_slice(&pack(group)[..bytes]);
        written += 1;
    }
    // Whole zero groups beyond the values (`put_hybrid` never asks for
    // them, the contract allows them).
    for _ in written..groups {
        out.extend_from_slice(&[0u8; 32][..bytes]);
    }
}

/// Appends `count` copies of `value` in the hybrid encoding: exactly the
/// bytes [`put_hybrid`] writes for them, without building the slice when
/// there are enough for a single RLE run (a column present, or null, in
/// every row of a row group).
pub fn put_hybrid_repeated(out: &mut Vec<u8>, value: u8, count: usize, width: u8) {
    if count >= MIN_RLE_RUN {
        put_varint(out, (count as u64) << 1);
        let bytes = u32::from(value).to_le_bytes();
        out.extend_from_slice(&bytes[..u32::from(width).div_ceil(8) as usize]);
    } else {
        put_hybrid(out, &[value; MIN_RLE_RUN][..count], width);
    }
}

/// Values per `DELTA_BINARY_PACKED` block.
const DELTA_BLOCK: usize = 128;
/// Miniblocks per `DELTA_BINARY_PACKED` block.
const DELTA_MINIBLOCKS: usize = 4;
/// Values per miniblock.
const DELTA_MINIBLOCK: usize = DELTA_BLOCK / DELTA_MINIBLOCKS;

/// Appends `values` in the `DELTA_BINARY_PACKED` encoding (blocks of 128
/// values in four miniblocks, the layout parquet-rs writes). Deltas wrap on
/// overflow, as the specification and readers do. 32-bit values (e.g. the
/// lengths of `DELTA_LENGTH_BYTE_ARRAY`) are passed widened: for values whose
/// deltas fit in 32 bits the bytes are the same as a 32-bit encoder's.
pub fn put_delta_binary_packed(out: &mut Vec<u8>, values: &[i64]) {
    put_varint(out, DELTA_BLOCK as u64);
    put_varint(out, DELTA_MINIBLOCKS as u64);
    put_varint(out, values.len() as u64);
    put_zigzag(out, values.first().copied().unwrap_or(0));
    if values.len() <= 1 {
        return;
    }
    let mut deltas = [0i64; DELTA_BLOCK];
    let mut previous = values[0];
    for block in values[1..].chunks(DELTA_BLOCK) {
        let mut min_delta = i64::MAX;
        for (slot, &v) in deltas.iter_mut().zip(block) {
            let delta = v.wrapping_sub(previous);
            *slot = delta;
            min_delta = min_delta.min(delta);
            previous = v;
        }
        let deltas = &deltas[..block.len()];
        put_zigzag(out, min_delta);
        let used = block.len().div_ceil(DELTA_MINIBLOCK);
        // Each miniblock's deltas above the minimum, zero padded to a whole
        // miniblock; its width is that of the largest, i.e. of their OR
        // (both have the same highest set bit).
        let mut adjusted = [[0u64; DELTA_MINIBLOCK]; DELTA_MINIBLOCKS];
        let mut widths = [0u8; DELTA_MINIBLOCKS];
        for (m, chunk) in deltas.chunks(DELTA_MINIBLOCK).enumerate() {
            let mut any = 0u64;
            for (slot, &d) in adjusted[m].iter_mut().zip(chunk) {
                *slot = d.wrapping_sub(min_delta) as u64;
                any |= *slot;
            }
            widths[m] = bit_width(any);
        }
        out.extend_from_slice(&widths);
        for (miniblock, &width) in adjusted.iter().zip(&widths).take(used) {
            put_miniblock(out, miniblock, u32::from(width));
        }
    }
}

/// Appends `count` copies of `value` in the `DELTA_BINARY_PACKED` encoding:
/// exactly the bytes [`put_delta_binary_packed`] writes for them, without
/// the slice. Every delta is 0, so each block is a zero minimum delta and
/// four zero miniblock widths, with no miniblock bytes.
pub fn put_delta_binary_packed_repeated(out: &mut Vec<u8>, value: i64, count: usize) {
    put_varint(out, DELTA_BLOCK as u64);
    put_varint(out, DELTA_MINIBLOCKS as u64);
    put_varint(out, count as u64);
    put_zigzag(out, if count == 0 { 0 } else { value });
    if count <= 1 {
        return;
    }
    let blocks = (count - 1).div_ceil(DELTA_BLOCK);
    out.resize(out.len() + blocks * (1 + DELTA_MINIBLOCKS), 0);
}

/// Appends one `DELTA_BINARY_PACKED` miniblock, `width` bits per value
/// (four groups of eight, [`put_bit_packed_groups`]).
fn put_miniblock(out: &mut Vec<u8>, values: &[u64; DELTA_MINIBLOCK], width: u32) {
    put_bit_packed_groups(out, values, DELTA_MINIBLOCK / 8, width);
}

/// Appends one `PLAIN` byte array: 4-byte little-endian length, then the bytes.
#[inline]
pub fn put_plain_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Values longer than 4 GiB cannot occur: an input line is far shorter.
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Appends `PLAIN` booleans: one bit per value, least significant bit first.
pub fn put_plain_bools(out: &mut Vec<u8>, values: &[bool]) {
    for chunk in values.chunks(8) {
        let mut byte = 0u8;
        for (i, &v) in chunk.iter().enumerate() {
            byte |= u8::from(v) << i;
        }
        out.push(byte);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reference decoder of the hybrid encoding, straight from the specification.
    fn decode_hybrid(mut data: &[u8], width: u32, count: usize) -> Vec<u32> {
        fn varint(data: &mut &[u8]) -> u64 {
            let mut v = 0u64;
            let mut shift = 0;
            loop {
                let b = data[0];
                *data = &data[1..];
                v |= u64::from(b & 0x7f) << shift;
                if b < 0x80 {
                    return v;
                }
                shift += 7;
            }
        }
        let mut out = Vec::new();
        while out.len() < count {
            let header = varint(&mut data);
            if header & 1 == 0 {
                let bytes = width.div_ceil(8) as usize;
                let mut v = [0u8; 4];
                v[..bytes].copy_from_slice(&data[..bytes]);
                data = &data[bytes..];
                for _ in 0..header >> 1 {
                    out.push(u32::from_le_bytes(v));
                }
            } else {
                let n = (header >> 1) as usize * 8;
                let mut bit = 0usize;
                for _ in 0..n {
                    let mut v = 0u32;
                    for b in 0..width as usize {
                        let pos = bit + b;
                        v |= u32::from((data[pos / 8] >> (pos % 8)) & 1) << b;
                    }
                    bit += width as usize;
                    out.push(v);
                }
                data = &data[(n * width as usize).div_ceil(8)..];
            }
        }
        assert!(data.is_empty(), "trailing bytes");
        out.truncate(count);
        out
    }

    #[test]
    fn hybrid_round_trips_runs_literals_and_padding() {
        let mut next = xorshift(0x1234_5678);
        for width in [0u8, 1, 2, 3, 7, 8, 9, 13, 16, 17, 24, 31, 32] {
            for len in [0usize, 1, 7, 8, 9, 15, 16, 17, 100, 1000] {
                let max = if width == 0 { 0 } else { (1u64 << width) - 1 };
                let mut values = Vec::with_capacity(len);
                while values.len() < len {
                    let v = (next() & max) as u32;
                    let repeat = if next() % 3 == 0 { next() % 40 } else { 1 };
                    for _ in 0..repeat {
                        values.push(v);
                    }
                }
                values.truncate(len);
                let mut out = Vec::new();
                put_hybrid(&mut out, &values, width);
                assert_eq!(
                    decode_hybrid(&out, u32::from(width), len),
                    values,
                    "width {width} len {len}"
                );
            }
        }
    }

    #[test]
    fn runs_encode_as_put_hybrid_does() {
        let mut next = xorshift(0x9E37_79B9);
        let mut scratch = Vec::new();
        for width in [1u8, 2, 3, 8, 9] {
            let max = (1u64 << width.min(8)) - 1;
            for case in 0..400 {
                let mut runs = Vec::new();
                for _ in 0..(next() % 30) {
                    let value = (next() & max) as u8;
                    // Mostly short runs, some long, some empty.
                    let count = match next() % 4 {
                        0 => (next() % 40) as usize,
                        _ => (next() % 4) as usize,
                    };
                    runs.push((value, count));
                }
                if case % 7 == 0 {
                    runs.push((1, 100_000));
                }
                let values: Vec<u8> = runs
                    .iter()
                    .flat_map(|&(v, n)| std::iter::repeat_n(v, n))
                    .collect();
                let mut expected = Vec::new();
                put_hybrid(&mut expected, &values, width);
                let mut actual = Vec::new();
                put_hybrid_runs(&mut actual, runs.iter().copied(), width, &mut scratch);
                assert_eq!(actual, expected, "width {width} runs {runs:?}");
            }
        }
    }

    #[test]
    fn repeated_values_encode_as_put_hybrid_does() {
        for width in [0u8, 1, 2, 8, 9] {
            for value in [0u8, 1] {
                for count in (0..40).chain([131_072, 1 << 20]) {
                    let mut expected = Vec::new();
                    put_hybrid(&mut expected, &vec![value; count], width);
                    let mut actual = Vec::new();
                    put_hybrid_repeated(&mut actual, value, count, width);
                    assert_eq!(
                        actual, expected,
                        "width {width} value {value} count {count}"
                    );
                }
            }
        }
    }

    /// A xorshift64 generator from `seed` (non-zero): test values without
    /// a dependency.
    fn xorshift(mut rng: u64) -> impl FnMut() -> u64 {
        move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        }
    }

    /// The reference: every value through [`BitPacker`], one at a time.
    fn packed_value_by_value(values: &[u64], groups: usize, width: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut packer = BitPacker::new(&mut out);
        for &v in values {
            packer.put(v & ((1u128 << width) - 1) as u64, width);
        }
        for _ in values.len()..groups * 8 {
            packer.put(0, width);
        }
        packer.finish();
        out
    }

    #[test]
    fn group_packing_writes_the_bytes_of_value_by_value_packing() {
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15u64);
        for width in 0..=64u32 {
            for len in [0usize, 1, 7, 8, 9, 16, 23, 24, 32] {
                let max = if width == 64 {
                    u64::MAX
                } else {
                    (1u64 << width) - 1
                };
                let values: Vec<u64> = (0..len).map(|_| next() & max).collect();
                for groups in [len.div_ceil(8), len.div_ceil(8) + 2] {
                    if groups == 0 && len == 0 {
                        continue;
                    }
                    let mut fast = Vec::new();
                    put_bit_packed_groups(&mut fast, &values, groups, width);
                    assert_eq!(
                        fast,
                        packed_value_by_value(&values, groups, width),
                        "width {width} len {len} groups {groups}"
                    );
                    assert_eq!(fast.len(), groups * width as usize);
                }
            }
        }
    }

    /// `DELTA_BINARY_PACKED` as written before the grouped packing: min and
    /// max per miniblock, every value through [`BitPacker::put`].
    fn delta_reference(values: &[i64]) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, DELTA_BLOCK as u64);
        put_varint(&mut out, DELTA_MINIBLOCKS as u64);
        put_varint(&mut out, values.len() as u64);
        put_zigzag(&mut out, values.first().copied().unwrap_or(0));
        if values.len() <= 1 {
            return out;
        }
        let deltas: Vec<i64> = values.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
        for block in deltas.chunks(DELTA_BLOCK) {
            let min_delta = block.iter().copied().min().unwrap_or(0);
            put_zigzag(&mut out, min_delta);
            let minis: Vec<&[i64]> = block.chunks(DELTA_MINIBLOCK).collect();
            let mut widths = [0u8; DELTA_MINIBLOCKS];
            for (m, chunk) in minis.iter().enumerate() {
                let max = chunk
                    .iter()
                    .map(|&d| d.wrapping_sub(min_delta) as u64)
                    .max();
                widths[m] = bit_width(max.unwrap_or(0));
            }
            out.extend_from_slice(&widths);
            for (m, chunk) in minis.iter().enumerate() {
                let width = u32::from(widths[m]);
                let mut packer = BitPacker::new(&mut out);
                for &d in *chunk {
                    packer.put(d.wrapping_sub(min_delta) as u64, width);
                }
                for _ in chunk.len()..DELTA_MINIBLOCK {
                    packer.put(0, width);
                }
                packer.finish();
            }
        }
        out
    }

    #[test]
    fn delta_binary_packed_matches_the_value_by_value_reference() {
        let mut next = xorshift(0x2545_F491_4F6C_DD1Du64);
        for spread_bits in [0u32, 1, 5, 12, 16, 17, 31, 40, 63, 64] {
            for len in [0usize, 1, 2, 33, 128, 129, 130, 300, 1000] {
                let mut t = 1_714_546_800_000_000i64;
                let values: Vec<i64> = (0..len)
                    .map(|_| {
                        let step = if spread_bits == 64 {
                            next() as i64
                        } else {
                            (next() & ((1u64 << spread_bits) - 1)) as i64
                        };
                        t = t.wrapping_add(step);
                        t
                    })
                    .collect();
                let mut out = Vec::new();
                put_delta_binary_packed(&mut out, &values);
                assert_eq!(
                    out,
                    delta_reference(&values),
                    "bits {spread_bits} len {len}"
                );
            }
        }
        let extremes = [i64::MIN, i64::MAX, 0, -1, i64::MAX, i64::MIN];
        let mut out = Vec::new();
        put_delta_binary_packed(&mut out, &extremes);
        assert_eq!(out, delta_reference(&extremes));
    }

    #[test]
    fn hybrid_uses_rle_for_long_runs() {
        let mut out = Vec::new();
        put_hybrid(&mut out, &[1u32; 1000], 1);
        // One RLE run: varint(2000) then one value byte.
        assert_eq!(out, vec![0xd0, 0x0f, 0x01]);
    }

    #[test]
    fn repeated_deltas_encode_as_put_delta_binary_packed_does() {
        for value in [0i64, 1, 36, -5, i64::MAX, i64::MIN] {
            for count in (0..300).chain([131_071, 131_072, 131_073]) {
                let mut expected = Vec::new();
                put_delta_binary_packed(&mut expected, &vec![value; count]);
                let mut actual = Vec::new();
                put_delta_binary_packed_repeated(&mut actual, value, count);
                assert_eq!(actual, expected, "value {value} count {count}");
            }
        }
    }

    #[test]
    fn delta_header_and_single_block() {
        let mut out = Vec::new();
        put_delta_binary_packed(&mut out, &[7]);
        assert_eq!(out, vec![0x80, 0x01, 4, 1, 14]);
        let mut out = Vec::new();
        put_delta_binary_packed(&mut out, &[]);
        assert_eq!(out, vec![0x80, 0x01, 4, 0, 0]);
        // 1,2,3: deltas 1,1 -> min delta 1, width 0 for the one used miniblock.
        let mut out = Vec::new();
        put_delta_binary_packed(&mut out, &[1, 2, 3]);
        assert_eq!(out, vec![0x80, 0x01, 4, 3, 2, 2, 0, 0, 0, 0]);
    }

    #[test]
    fn widths_and_plain_helpers() {
        assert_eq!(bit_width(0), 0);
        assert_eq!(bit_width(1), 1);
        assert_eq!(bit_width(255), 8);
        assert_eq!(bit_width(256), 9);
        assert_eq!(bit_width(u64::MAX), 64);
        let mut out = Vec::new();
        put_plain_bools(
            &mut out,
            &[true, false, true, true, false, false, false, false, true],
        );
        assert_eq!(out, vec![0b0000_1101, 0b1]);
        let mut out = Vec::new();
        put_plain_bytes(&mut out, b"ab");
        assert_eq!(out, vec![2, 0, 0, 0, b'a', b'b']);
    }
}
