//! Column-wise buffer of [`EnrichedRow`]s ([`EnrichedColumns`]) and the
//! encoder that writes one buffered row group as Parquet column chunks
//! ([`ChunkEncoder`]), without Arrow arrays or the parquet crate's column
//! writers.
//!
//! Each column keeps only what its encoding needs: dictionary columns a
//! per-row-group dictionary (its `PLAIN` page body built as values arrive) and
//! one `u32` index per value; unique strings their bytes back to back in the
//! final page layout; integers a `Vec<i64>`; nullable columns their
//! definition levels as runs. Appending a row therefore copies a few bytes
//! per column and, for dictionary columns, compares the value with the
//! column's previous one and otherwise does one hash lookup whose slot holds
//! the entry's bytes (up to 24); list items equal to the row's actual
//! backend / upstream reuse that column's lookup. A value that arrives with
//! an id ([`ValueIds`]: route, Gateway, listener and backends from the route
//! index; verdict, route kind, input format and actual source from closed
//! sets) skips the key and the hash: the column remembers per id which entry
//! the id's string became, in a short array (cleared with the dictionary;
//! the index ids also whenever the row's index version changes), and only an
//! id seen for the first time is interned by its bytes. Dictionaries keep
//! first-appearance order whichever way a value comes, so the output does
//! not depend on the ids. Nothing is allocated apart from the buffers'
//! amortised growth.
//!
//! At the end of a row group every column becomes one column chunk: an
//! optional dictionary page and one v1 data page, each compressed with zstd
//! (at the default level, a data page of bit-packed numbers at a faster
//! level than the strings: see [`packed_values_level`]), spliced into the
//! file with `SerializedRowGroupWriter::append_column`. The
//! per-column choices (which columns use a dictionary, `DELTA_BINARY_PACKED`,
//! `DELTA_LENGTH_BYTE_ARRAY`, which carry min/max statistics) are the ones
//! documented in [`super::parquet`]; the Parquet schema is derived from
//! [`enriched_schema`](super::row::enriched_schema) by arrow-rs, so types,
//! logical types and nullability are exactly those of the Arrow schema.

use std::io::Write;

use bytes::Bytes;
use parquet::basic::{Compression, Encoding, EncodingMask, Type as PhysicalType, ZstdLevel};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedFileWriter, SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

use super::encoding::{
    bit_width, put_delta_binary_packed, put_delta_binary_packed_repeated, put_hybrid,
    put_hybrid_repeated, put_hybrid_runs, put_plain_bools, put_plain_bytes,
};
use super::row::{EnrichedRow, StrList, ValueIds};
use crate::gateway::prefetch::prefetch;

/// Largest dictionary page kept: above it the chunk is written `PLAIN` (the
/// parquet crate's default dictionary page limit, 1 MiB).
const DICTIONARY_PAGE_LIMIT: usize = 1024 * 1024;

/// Byte-array min/max statistics are cut to at most this many bytes (the
/// parquet crate's default truncation length), marked inexact.
const STATISTICS_MAX_LEN: usize = 64;

/// Definition levels of a nullable flat column (1 = value present, 0 =
/// null) as runs of equal levels: most columns are present in every row (or
/// null in every row, like the Kafka columns in a file replay), so a row
/// costs one compare and an increment instead of a byte pushed per column.
/// The page encodes them from the runs.
#[derive(Debug)]
struct DefLevels {
    /// Finished runs: (level, rows).
    runs: Vec<(u8, usize)>,
    /// Level of the open run, or [`NO_RUN`] when none is open (so that a
    /// push tests one byte: no separate "is a run open" check, and a run
    /// counted in `usize` cannot overflow).
    level: u8,
    /// Rows in the open run.
    open: usize,
    /// Rows in the finished runs.
    finished: usize,
}

/// [`DefLevels::level`] while no run is open: never a pushed level.
const NO_RUN: u8 = u8::MAX;

impl Default for DefLevels {
    fn default() -> Self {
        Self {
            runs: Vec::new(),
            level: NO_RUN,
            open: 0,
            finished: 0,
        }
    }
}

impl DefLevels {
    #[inline(always)]
    fn push(&mut self, level: u8) {
        debug_assert!(level != NO_RUN);
        if level == self.level {
            self.open += 1;
        } else {
            self.start_run(level);
        }
    }

    /// Closes the open run (if any) and opens one of `level` with one row.
    #[cold]
    #[inline(never)]
    fn start_run(&mut self, level: u8) {
        if self.level != NO_RUN {
            self.runs.push((self.level, self.open));
            self.finished += self.open;
        }
        self.level = level;
        self.open = 1;
    }

    /// Levels pushed in total.
    fn len(&self) -> usize {
        self.finished + self.open
    }

    /// Bytes held: a byte per level, as the levels used to be kept (so the
    /// row group size bound trips where it did), or the runs' size when
    /// levels alternate so often that the runs take more.
    fn approx_bytes(&self) -> usize {
        self.len()
            .max(self.runs.len() * std::mem::size_of::<(u8, usize)>())
    }

    /// Appends the levels as a v1 data page level section ([`put_levels`]
    /// with a maximum level of 1), encoded from the runs
    /// ([`put_hybrid_runs`], which uses `scratch`).
    fn put(&self, out: &mut Vec<u8>, scratch: &mut Vec<u8>) {
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        // No run open means no rows: an empty level section.
        let open = (self.level != NO_RUN).then_some((self.level, self.open));
        let runs = self.runs.iter().copied().chain(open);
        put_hybrid_runs(out, runs, bit_width(1), scratch);
        let len = (out.len() - at - 4) as u32;
        out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }

    /// Replaces `out` with the levels, one byte per row.
    #[cfg(test)]
    fn expand(&self, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(self.len());
        for &(level, rows) in &self.runs {
            out.resize(out.len() + rows, level);
        }
        if self.level != NO_RUN {
            out.resize(out.len() + self.open, self.level);
        }
    }

    fn clear(&mut self) {
        self.runs.clear();
        self.level = NO_RUN;
        self.open = 0;
        self.finished = 0;
    }
}

/// Multiplier of the value hash (a 64-bit odd constant with well-mixed bits).
const HASH_MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// Folded 64x64->128-bit multiply: the mixing step of the value hash.
#[inline]
fn fold_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

#[inline]
fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[inline]
fn read_u32(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u64::from(u32::from_le_bytes(word))
}

/// A fast, non-cryptographic hash of a dictionary value. Dictionaries are
/// per row group and per column and a collision only costs a comparison, so
/// a few multiply-folds over the value's 8-byte words suffice; short values
/// (most dictionary values: methods, flags, verdicts) take one or two loads.
#[inline]
fn hash_value(bytes: &[u8]) -> u64 {
    let len = bytes.len();
    let (a, b) = if len >= 8 {
        let mut h = len as u64;
        let mut at = 0;
        while at + 16 < len {
            h = fold_multiply(
                read_u64(bytes, at) ^ h,
                read_u64(bytes, at + 8) ^ HASH_MULTIPLIER,
            );
            at += 16;
        }
        // The last 16 bytes (overlapping what came before) or 8..16 bytes.
        let tail = if len - at > 8 { read_u64(bytes, at) } else { 0 };
        (tail ^ h, read_u64(bytes, len - 8))
    } else if len >= 4 {
        (read_u32(bytes, 0), read_u32(bytes, len - 4))
    } else if len > 0 {
        (
            u64::from(bytes[0]) | u64::from(bytes[len / 2]) << 8 | u64::from(bytes[len - 1]) << 16,
            0,
        )
    } else {
        (0, 0)
    };
    fold_multiply(
        a ^ HASH_MULTIPLIER,
        b ^ (len as u64).rotate_left(32) ^ 0xA076_1D64_78BD_642F,
    )
}

/// The slot of a static string at `addr` in a [`BytesDictionary`]'s table
/// of static strings: the top bits of a multiplicative hash.
#[inline(always)]
fn static_slot(addr: usize) -> usize {
    ((addr as u64).wrapping_mul(HASH_MULTIPLIER) >> (64 - STATIC_SLOTS.trailing_zeros())) as usize
}

/// Byte-string equality without a `memcmp` call for the short values
/// dictionaries hold: whole 8-byte words, the last one overlapping.
#[inline(always)]
fn bytes_equal(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    if len >= 8 {
        let mut at = 0;
        while at + 8 < len {
            if read_u64(a, at) != read_u64(b, at) {
                return false;
            }
            at += 8;
        }
        read_u64(a, len - 8) == read_u64(b, len - 8)
    } else if len >= 4 {
        read_u32(a, 0) == read_u32(b, 0) && read_u32(a, len - 4) == read_u32(b, len - 4)
    } else {
        a == b
    }
}

/// Values up to this many bytes are held whole in a [`ValueKey`]; longer
/// ones by three 8-byte windows, and compared with the page on a match.
const INLINE_KEY_BYTES: usize = 24;

/// A value's length and its bytes read as three 8-byte words, so that the
/// dictionary compares short values (hosts, `ip:port` upstreams,
/// `namespace/name` keys: nearly all dictionary values) as three word
/// comparisons, without reading the dictionary page.
///
/// Which bytes each word holds depends only on the length: `0..8`, a middle
/// window and the last 8 bytes for 8..=24 bytes (the windows overlap and
/// cover every byte), two overlapping 4-byte windows for 4..8 bytes, the
/// first, middle and last byte below 4. Two values of equal length up to
/// [`INLINE_KEY_BYTES`] are therefore equal exactly when their words are.
/// A longer value's words cover bytes `0..16` and its last 8 only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ValueKey {
    words: [u64; 3],
    len: usize,
}

impl ValueKey {
    #[inline(always)]
    fn of(value: &[u8]) -> Self {
        let len = value.len();
        let words = if len >= 8 {
            let middle = if len <= INLINE_KEY_BYTES {
                (len - 8) / 2
            } else {
                8
            };
            [
                read_u64(value, 0),
                read_u64(value, middle),
                read_u64(value, len - 8),
            ]
        } else if len >= 4 {
            [read_u32(value, 0) | read_u32(value, len - 4) << 32, 0, 0]
        } else if len > 0 {
            [
                u64::from(value[0])
                    | u64::from(value[len / 2]) << 8
                    | u64::from(value[len - 1]) << 16,
                0,
                0,
            ]
        } else {
            [0; 3]
        };
        Self { words, len }
    }

    /// True when `words` and `len` are this key's, compared as scalars (a
    /// derived array compare goes through memory and a vector load).
    #[inline(always)]
    fn matches(&self, words: &[u64; 3], len: usize) -> bool {
        ((self.words[0] ^ words[0]) | (self.words[1] ^ words[1]) | (self.words[2] ^ words[2])) == 0
            && self.len == len
    }

    /// True when the key holds the whole value (no page compare needed).
    #[inline(always)]
    fn is_whole(&self) -> bool {
        self.len <= INLINE_KEY_BYTES
    }

    /// Hash of the value: from the words when they hold the whole value,
    /// else from every byte ([`hash_value`]), so that long values differing
    /// only between the windows still spread over the table.
    #[inline(always)]
    fn hash(&self, value: &[u8]) -> u64 {
        if !self.is_whole() {
            return hash_value(value);
        }
        let [a, b, c] = self.words;
        let h = fold_multiply(
            a ^ HASH_MULTIPLIER,
            b ^ (self.len as u64).rotate_left(32) ^ 0xA076_1D64_78BD_642F,
        );
        fold_multiply(h ^ c, HASH_MULTIPLIER)
    }
}

/// One slot of a [`BytesDictionary`] table: the entry's [`ValueKey`] and
/// number, so that a probe for a value of up to [`INLINE_KEY_BYTES`] bytes
/// reads this slot and nothing else.
#[derive(Debug, Clone, Copy, Default)]
struct DictionarySlot {
    words: [u64; 3],
    len: u32,
    /// Entry number + 1; 0 marks an empty slot.
    entry: u32,
}

/// Slots of a [`BytesDictionary`]'s table of static strings (see
/// [`BytesDictionary::intern_static`]); a power of two.
const STATIC_SLOTS: usize = 16;

/// One slot of a [`BytesDictionary`]'s table of static strings: the
/// string's address and length, and its entry.
#[derive(Debug, Clone, Copy, Default)]
struct StaticSlot {
    addr: usize,
    len: usize,
    /// Entry number + 1; 0 marks an empty slot.
    entry: u32,
}

/// The entry a [`BytesDictionary`] returned last, kept so that a column
/// repeating its previous value (a verdict, a gateway, a source file) is
/// answered by comparing keys, whatever address the value arrives at.
/// `index` is `None` before the first value.
#[derive(Debug, Clone, Copy, Default)]
struct LastEntry {
    key: ValueKey,
    index: Option<u32>,
}

/// A per-row-group dictionary of byte strings: an open-addressing table of
/// [`DictionarySlot`]s over the `PLAIN` dictionary page body itself, so that
/// interning a value already seen costs one key, one hash and one probe,
/// and a new value is copied once, into the page.
///
/// Values are always compared by their bytes, never by address: index-owned
/// strings live only as long as their index, and line buffers and reused
/// `String`s change under the same address.
#[derive(Debug, Default)]
struct BytesDictionary {
    /// The `PLAIN` dictionary page body: 4-byte length + bytes per entry.
    page: Vec<u8>,
    /// Start (after the length) and length of each entry in `page`.
    spans: Vec<(u32, u32)>,
    /// Hash of each entry (to re-insert them when the table grows).
    hashes: Vec<u64>,
    /// The table; length a power of two, at most half full.
    slots: Vec<DictionarySlot>,
    /// The entry interned last (see [`LastEntry`]).
    last: LastEntry,
    /// Entry + 1 per value id seen (0: not seen), see
    /// [`intern_id`](Self::intern_id).
    by_id: Vec<u32>,
    /// Direct-mapped table of the static strings seen, by address (see
    /// [`intern_static`](Self::intern_static)); [`STATIC_SLOTS`] long once
    /// used, empty before.
    by_static: Vec<StaticSlot>,
}

/// Ids at or above this are not remembered (their values go by their bytes),
/// so that an id table stays a few KiB whatever a caller passes: index ids
/// are positions in index arrays, far below it.
const MAX_REMEMBERED_ID: u32 = 1 << 16;

impl BytesDictionary {
    fn entry(&self, index: u32) -> &[u8] {
        let (start, len) = self.spans[index as usize];
        &self.page[start as usize..(start + len) as usize]
    }

    /// True when entry `index`, whose key equals `key`, is `value`: always
    /// for a whole key, else by comparing the page bytes.
    #[inline(always)]
    fn holds(&self, index: u32, key: &ValueKey, value: &[u8]) -> bool {
        key.is_whole()
            || self
                .spans
                .get(index as usize)
                .and_then(|&(start, len)| self.page.get(start as usize..(start + len) as usize))
                .is_some_and(|bytes| bytes_equal(bytes, value))
    }

    /// The index of `value`, added if new.
    #[cfg(test)]
    fn intern(&mut self, value: &[u8]) -> u32 {
        self.intern_keyed(ValueKey::of(value), value)
    }

    /// The index of `value`, whose key is `key`, added if new. The lookup of
    /// a value already seen is inlined into the column's push; adding one is
    /// out of line.
    #[inline(always)]
    fn intern_keyed(&mut self, key: ValueKey, value: &[u8]) -> u32 {
        if let Some(index) = self.last.index {
            if self.last.key.matches(&key.words, key.len) && self.holds(index, &key, value) {
                return index;
            }
        }
        let index = self.lookup(&key, value);
        self.last = LastEntry {
            key,
            index: Some(index),
        };
        index
    }

    /// The index of `value` (whose key is `key`) found through its hash,
    /// added if new.
    #[inline(always)]
    fn lookup(&mut self, key: &ValueKey, value: &[u8]) -> u32 {
        let hash = key.hash(value);
        let mask = self.slots.len().wrapping_sub(1);
        let mut at = (hash as usize) & mask;
        while let Some(slot) = self.slots.get(at) {
            if slot.entry == 0 {
                break;
            }
            if key.matches(&slot.words, slot.len as usize) && self.holds(slot.entry - 1, key, value)
            {
                return slot.entry - 1;
            }
            at = (at + 1) & mask;
        }
        self.insert(key, value, hash)
    }

    /// The index of `value`, whose id is `id` (see [`ValueIds`]: an id
    /// always stands for the same value while it is remembered): read from
    /// the id table, without hashing the value; the first time, interned by
    /// its bytes and remembered.
    #[inline(always)]
    fn intern_id(&mut self, id: u32, value: &[u8]) -> u32 {
        if let Some(&entry) = self.by_id.get(id as usize) {
            if entry != 0 {
                debug_assert_eq!(self.entry(entry - 1), value, "id {id} names two values");
                return entry - 1;
            }
        }
        self.learn_id(id, value)
    }

    /// Starts loading the id table slot [`intern_id`](Self::intern_id) will
    /// read for `id` (a hint: the tables of ids spread over thousands of
    /// routes, backends or endpoints miss L1 on most rows).
    /// An id past the table's end prefetches an address nothing reads (a
    /// prefetch never faults), which saves the bounds check.
    #[inline(always)]
    fn prefetch_id(&self, id: u32) {
        prefetch(self.by_id.as_ptr().wrapping_add(id as usize));
    }

    /// [`intern_id`](Self::intern_id) of an id not remembered yet.
    #[cold]
    #[inline(never)]
    fn learn_id(&mut self, id: u32, value: &[u8]) -> u32 {
        let index = self.intern_keyed(ValueKey::of(value), value);
        if id < MAX_REMEMBERED_ID {
            let at = id as usize;
            if self.by_id.len() <= at {
                self.by_id.resize(at + 1, 0);
            }
            self.by_id[at] = index + 1;
        }
        index
    }

    /// The index of the static string `value`: read from the slot of its
    /// address when the slot holds that address and length (a `&'static
    /// str`'s bytes never change, so they are the slot's entry's), else
    /// interned by its bytes and put into the slot.
    #[inline(always)]
    fn intern_static(&mut self, value: &'static str) -> u32 {
        let addr = value.as_ptr() as usize;
        let at = static_slot(addr);
        if let Some(slot) = self.by_static.get(at) {
            if slot.entry != 0 && slot.addr == addr && slot.len == value.len() {
                debug_assert_eq!(self.entry(slot.entry - 1), value.as_bytes());
                return slot.entry - 1;
            }
        }
        self.learn_static(value, at)
    }

    /// [`intern_static`](Self::intern_static) of a string not in slot `at`.
    #[cold]
    #[inline(never)]
    fn learn_static(&mut self, value: &'static str, at: usize) -> u32 {
        let index = self.intern_keyed(ValueKey::of(value.as_bytes()), value.as_bytes());
        if self.by_static.is_empty() {
            self.by_static = vec![StaticSlot::default(); STATIC_SLOTS];
        }
        if let Some(slot) = self.by_static.get_mut(at) {
            *slot = StaticSlot {
                addr: value.as_ptr() as usize,
                len: value.len(),
                entry: index + 1,
            };
        }
        index
    }

    /// Forgets every id (their values stay in the dictionary).
    fn forget_ids(&mut self) {
        self.by_id.clear();
    }

    /// Adds `value` (not in the dictionary) with its `key` and `hash`.
    #[cold]
    #[inline(never)]
    fn insert(&mut self, key: &ValueKey, value: &[u8], hash: u64) -> u32 {
        if self.slots.is_empty() {
            self.slots = vec![DictionarySlot::default(); 64];
        }
        // In range: a row group is written once its buffers hold about
        // 32 MiB (checked at least every MiB of input, see
        // `ParquetSink::append`), far below 4 GiB of dictionary page.
        let index = self.spans.len() as u32;
        put_plain_bytes(&mut self.page, value);
        debug_assert!(self.page.len() <= u32::MAX as usize);
        let start = (self.page.len() - value.len()) as u32;
        self.spans.push((start, value.len() as u32));
        self.hashes.push(hash);
        self.place(index, key.words, hash);
        if self.spans.len() * 2 > self.slots.len() {
            self.grow();
        }
        index
    }

    /// Puts entry `index` (already in `spans`) with its key `words` and
    /// `hash` into a free slot.
    fn place(&mut self, index: u32, words: [u64; 3], hash: u64) {
        let mask = self.slots.len() - 1;
        let mut at = (hash as usize) & mask;
        while self.slots[at].entry != 0 {
            at = (at + 1) & mask;
        }
        self.slots[at] = DictionarySlot {
            words,
            len: self.spans[index as usize].1,
            entry: index + 1,
        };
    }

    /// Doubles the table and re-inserts every entry.
    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        self.slots = vec![DictionarySlot::default(); old.len() * 2];
        for slot in old.iter().filter(|s| s.entry != 0) {
            let index = slot.entry - 1;
            self.place(index, slot.words, self.hashes[index as usize]);
        }
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    /// Empties the dictionary, keeping the table's size.
    fn clear(&mut self) {
        self.page.clear();
        self.spans.clear();
        self.hashes.clear();
        self.slots.fill(DictionarySlot::default());
        self.last = LastEntry::default();
        self.by_id.clear();
        self.by_static.fill(StaticSlot::default());
    }

    /// Smallest and largest entry (byte order), if any.
    fn min_max(&self) -> Option<(&[u8], &[u8])> {
        let mut it = (0..self.len() as u32).map(|i| self.entry(i));
        let first = it.next()?;
        Some(it.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v))))
    }
}

/// A per-row buffer of fixed-width values whose first value sits at a
/// chosen offset within a 4 KiB page.
///
/// Every row appends one value to each of some thirty such buffers. Large
/// allocations start at (nearly) the same page offset, so the buffers'
/// tails would advance through the same first-level cache sets together,
/// more of them than a set has ways: each append then evicts another
/// column's tail. Each buffer instead starts `pad` unused values into its
/// allocation, so that the tails fall in sets of their own.
#[derive(Debug, Default)]
struct RowBuffer<T> {
    values: Vec<T>,
    pad: usize,
}

/// Hands out page offset slots to the [`RowBuffer`]s of one set of columns,
/// one after another.
#[derive(Debug, Default)]
struct PageSlots(usize);

impl PageSlots {
    fn next(&mut self) -> usize {
        self.0 += 1;
        self.0 - 1
    }
}

impl<T: Copy + Default> RowBuffer<T> {
    #[inline(always)]
    fn push(&mut self, value: T) {
        self.values.push(value);
    }

    fn as_slice(&self) -> &[T] {
        self.values.get(self.pad..).unwrap_or(&[])
    }

    fn len(&self) -> usize {
        self.values.len() - self.pad
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn clear(&mut self) {
        self.values.truncate(self.pad);
    }

    fn resize(&mut self, len: usize, value: T) {
        self.values.resize(self.pad + len, value);
    }

    /// Room for `rows` more values, and the first value moved to the page
    /// offset of the next of `slots` (slots are five cache lines apart
    /// modulo 4 KiB, so 64 buffers start on 64 different lines).
    fn reserve(&mut self, rows: usize, slots: &mut PageSlots) {
        const PAGE: usize = 4096;
        let size = std::mem::size_of::<T>().max(1);
        self.values.reserve(rows + PAGE / size);
        let want = (slots.next() * 5 * 64) % PAGE;
        let base = self.values.as_ptr() as usize;
        let pad = ((want + PAGE - base % PAGE) % PAGE) / size;
        if pad != self.pad {
            let len = self.len();
            let old = self.pad;
            self.values.resize(pad.max(old) + len, T::default());
            self.values.copy_within(old..old + len, pad);
            self.values.truncate(pad + len);
            self.pad = pad;
        }
    }
}

/// A column's dictionary indices in value order.
///
/// With `ONE_VALUE_LIKELY`, while every index is 0 (the column has held one
/// distinct value so far, as `gateway`, `input_format` or `index_version`
/// usually do for a whole row group), only their count is kept: no four
/// bytes a row stored and read back. The zeros are written out when the
/// first other index arrives. Other columns push every index: for them the
/// check would cost more instructions than it saves.
#[derive(Debug, Default)]
struct DictionaryKeys<const ONE_VALUE_LIKELY: bool = false> {
    /// The indices, once one of them was not 0 (`zeros` is 0 then).
    keys: RowBuffer<u32>,
    /// Indices, all 0, not written to `keys` (while `keys` is empty).
    zeros: usize,
}

impl<const ONE_VALUE_LIKELY: bool> DictionaryKeys<ONE_VALUE_LIKELY> {
    #[inline(always)]
    fn push(&mut self, index: u32) {
        if ONE_VALUE_LIKELY && self.keys.is_empty() {
            if index == 0 {
                self.zeros += 1;
                return;
            }
            self.write_out_zeros();
        }
        self.keys.push(index);
    }

    /// Moves the counted zeros into `keys`, before its first other index.
    #[cold]
    #[inline(never)]
    fn write_out_zeros(&mut self) {
        self.keys.resize(self.zeros, 0);
        self.zeros = 0;
    }

    fn len(&self) -> usize {
        self.zeros + self.keys.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The indices in order.
    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        std::iter::repeat_n(0, self.zeros).chain(self.keys.as_slice().iter().copied())
    }

    /// Appends the indices as an `RLE_DICTIONARY` value section for a
    /// dictionary of `entries`: one byte of bit width, then the hybrid
    /// encoding.
    fn put(&self, out: &mut Vec<u8>, entries: usize) {
        let width = bit_width(entries.saturating_sub(1) as u64);
        out.push(width);
        if self.keys.is_empty() {
            put_hybrid_repeated(out, 0, self.zeros, width);
        } else {
            put_hybrid(out, self.keys.as_slice(), width);
        }
    }

    fn clear(&mut self) {
        self.keys.clear();
        self.zeros = 0;
    }

    fn reserve(&mut self, indices: usize, slots: &mut PageSlots) {
        self.keys.reserve(indices, slots);
    }
}

/// A nullable (`NULLABLE`) or required string column written with a
/// dictionary. Nullability is a type parameter so that a push tests it at
/// compile time, not per row.
#[derive(Debug, Default)]
struct DictionaryStrings<const NULLABLE: bool, const ONE_VALUE_LIKELY: bool = false> {
    /// Definition levels (nullable columns only).
    defs: DefLevels,
    statistics: bool,
    keys: DictionaryKeys<ONE_VALUE_LIKELY>,
    dictionary: BytesDictionary,
}

/// A nullable [`DictionaryStrings`] column.
type NullableStrings = DictionaryStrings<true>;

/// A required [`DictionaryStrings`] column (never null).
type RequiredStrings = DictionaryStrings<false>;

/// A nullable [`DictionaryStrings`] column that usually holds one value a
/// row group (see [`DictionaryKeys`]).
type NullableOneValueStrings = DictionaryStrings<true, true>;

/// A required [`DictionaryStrings`] column that usually holds one value a
/// row group (see [`DictionaryKeys`]).
type RequiredOneValueStrings = DictionaryStrings<false, true>;

impl<const NULLABLE: bool, const ONE_VALUE_LIKELY: bool>
    DictionaryStrings<NULLABLE, ONE_VALUE_LIKELY>
{
    fn new(statistics: bool) -> Self {
        Self {
            statistics,
            ..Self::default()
        }
    }

    /// Inlined into [`EnrichedColumns::push`]: one call per row, not per column.
    #[inline(always)]
    fn push(&mut self, value: Option<&str>) {
        self.push_keyed(value);
    }

    /// [`push`](Self::push) of a value with an optional id (see
    /// [`BytesDictionary::intern_id`]); without an id, by its bytes.
    #[inline(always)]
    fn push_id(&mut self, value: Option<&str>, id: Option<u32>) {
        match (value, id) {
            (Some(v), Some(id)) => {
                let index = self.dictionary.intern_id(id, v.as_bytes());
                self.keys.push(index);
                if NULLABLE {
                    self.defs.push(1);
                }
            }
            _ => self.push(value),
        }
    }

    /// [`push`](Self::push) of a value that is also given as a static
    /// string (`value` is `Some(stat)` then; see
    /// [`BytesDictionary::intern_static`]); without one, by its bytes.
    #[inline(always)]
    fn push_static(&mut self, value: Option<&str>, stat: Option<&'static str>) {
        match stat {
            Some(s) => {
                debug_assert_eq!(value, Some(s), "static string differs from the value");
                let index = self.dictionary.intern_static(s);
                self.keys.push(index);
                if NULLABLE {
                    self.defs.push(1);
                }
            }
            None => self.push(value),
        }
    }

    /// Forgets the ids (see [`BytesDictionary::forget_ids`]).
    fn forget_ids(&mut self) {
        self.dictionary.forget_ids();
    }

    /// [`push`](Self::push), returning the value with its key and index so
    /// that a list column can reuse them ([`SameValue`]).
    #[inline(always)]
    fn push_keyed<'v>(&mut self, value: Option<&'v str>) -> Option<SameValue<'v>> {
        match value {
            Some(v) => {
                let key = ValueKey::of(v.as_bytes());
                let index = self.dictionary.intern_keyed(key, v.as_bytes());
                Some(self.push_same(v, key, index))
            }
            None => {
                // Required columns are pushed `Some` by `EnrichedColumns::push`.
                debug_assert!(NULLABLE, "null in a required column");
                self.defs.push(0);
                None
            }
        }
    }

    /// [`push_keyed`](Self::push_keyed) of a value with an id (see
    /// [`BytesDictionary::intern_id`]): the dictionary's hash table is not
    /// probed for a value whose id was seen in this row group.
    #[inline(always)]
    fn push_id_keyed<'v>(&mut self, value: Option<&'v str>, id: u32) -> Option<SameValue<'v>> {
        match value {
            Some(v) => {
                let key = ValueKey::of(v.as_bytes());
                let index = self.dictionary.intern_id(id, v.as_bytes());
                Some(self.push_same(v, key, index))
            }
            None => self.push_keyed(None),
        }
    }

    /// Pushes dictionary entry `index`, the value `v` with key `key`.
    #[inline(always)]
    fn push_same<'v>(&mut self, v: &'v str, key: ValueKey, index: u32) -> SameValue<'v> {
        self.keys.push(index);
        if NULLABLE {
            self.defs.push(1);
        }
        SameValue {
            value: v,
            key,
            index,
        }
    }

    fn encode(&self, rows: usize, enc: &mut ChunkEncoder, descr: &ColumnDescPtr) -> Result<Chunk> {
        let statistics = if self.statistics {
            byte_array_statistics(self.dictionary.min_max(), (rows - self.keys.len()) as u64)
        } else {
            None
        };
        enc.body.clear();
        if NULLABLE {
            self.defs.put(&mut enc.body, &mut enc.levels);
        }
        write_dictionary_chunk(
            enc,
            descr,
            &self.keys,
            &self.dictionary,
            rows,
            rows,
            statistics,
        )
    }

    fn clear(&mut self) {
        self.defs.clear();
        self.keys.clear();
        self.dictionary.clear();
    }

    fn reserve(&mut self, rows: usize, slots: &mut PageSlots) {
        self.keys.reserve(rows, slots);
    }

    fn approx_bytes(&self) -> usize {
        self.defs.approx_bytes() + self.keys.len() * 4 + self.dictionary.page.len()
    }
}

/// A value just interned into another column's dictionary of the same row
/// (`actual_upstream` for `upstream_attempts`, `actual_backend` for
/// `expected_backends`): an item equal to it is translated through that
/// column's entry index instead of being looked up again.
#[derive(Debug, Clone, Copy)]
struct SameValue<'v> {
    value: &'v str,
    key: ValueKey,
    /// Entry index in the other column's dictionary.
    index: u32,
}

impl SameValue<'_> {
    /// True when `item` (whose key is `key`) has the same bytes: the same
    /// slice (two borrows alive in one row cannot differ), or equal whole keys.
    #[inline(always)]
    fn equals(&self, item: &str, key: &ValueKey) -> bool {
        (std::ptr::eq(self.value.as_ptr(), item.as_ptr()) && self.value.len() == item.len())
            || (key.is_whole() && self.key.matches(&key.words, key.len))
    }
}

/// A list-of-strings column (`expected_backends`, `upstream_attempts`) with a
/// dictionary for its items; the list itself nullable or required.
#[derive(Debug, Default)]
struct DictionaryStringLists {
    nullable: bool,
    /// Repetition level per level entry (0: first of a row, 1: continuation).
    reps: RowBuffer<u8>,
    /// Definition level per level entry: see [`Self::push`].
    defs: RowBuffer<u8>,
    keys: DictionaryKeys,
    dictionary: BytesDictionary,
    /// Own entry index per entry index of the [`SameValue`] column
    /// (`u32::MAX`: not seen yet); cleared with the dictionaries.
    from_same: Vec<u32>,
}

impl DictionaryStringLists {
    fn new(nullable: bool) -> Self {
        Self {
            nullable,
            ..Self::default()
        }
    }

    /// Levels, with `n` = 1 for a nullable list, 0 for a required one: a
    /// null list has definition level 0, an empty list `n`, an item `n + 1`.
    /// Items go by `ids` when it holds one id per item (see
    /// [`BytesDictionary::intern_id`]), else by their bytes, an item equal
    /// to `same` translated from that column's entry.
    /// Inlined into [`EnrichedColumns::push`]: one call per row, not per column.
    #[inline(always)]
    fn push(&mut self, value: Option<StrList<'_>>, ids: &[u32], same: Option<SameValue<'_>>) {
        let n = u8::from(self.nullable);
        match value {
            None => {
                self.reps.push(0);
                self.defs.push(0);
            }
            Some(list) if list.is_empty() => {
                self.reps.push(0);
                self.defs.push(n);
            }
            Some(list) if ids.len() == list.len() => {
                // The pipeline's lists are borrowed slices: walked directly,
                // not through `StrList::get`'s match per item.
                match list {
                    StrList::Borrowed(items) => {
                        self.push_items_by_id(items.iter().copied(), ids, n)
                    }
                    _ => self.push_items_by_id(list.iter(), ids, n),
                }
            }
            Some(list) => match list {
                StrList::Borrowed(items) => self.push_items(items.iter().copied(), same, n),
                _ => self.push_items(list.iter(), same, n),
            },
        }
    }

    /// The items of a non-empty list, with one id each.
    #[inline(always)]
    fn push_items_by_id<'i>(&mut self, items: impl Iterator<Item = &'i str>, ids: &[u32], n: u8) {
        let mut rep = 0;
        for (item, &id) in items.zip(ids) {
            self.reps.push(rep);
            rep = 1;
            self.defs.push(n + 1);
            let index = self.dictionary.intern_id(id, item.as_bytes());
            self.keys.push(index);
        }
    }

    /// The items of a non-empty list, by their bytes or translated from
    /// `same`.
    #[inline(always)]
    fn push_items<'i>(
        &mut self,
        items: impl Iterator<Item = &'i str>,
        same: Option<SameValue<'_>>,
        n: u8,
    ) {
        let mut rep = 0;
        for item in items {
            self.reps.push(rep);
            rep = 1;
            self.defs.push(n + 1);
            let key = ValueKey::of(item.as_bytes());
            let index = match same {
                Some(same) if same.equals(item, &key) => self.translate(same, key),
                _ => self.dictionary.intern_keyed(key, item.as_bytes()),
            };
            self.keys.push(index);
        }
    }

    /// Own index of `same`'s value (whose key here is `key`): remembered
    /// per index of the other column, interned the first time.
    #[inline(always)]
    fn translate(&mut self, same: SameValue<'_>, key: ValueKey) -> u32 {
        match self.from_same.get(same.index as usize) {
            Some(&index) if index != u32::MAX => index,
            _ => {
                let index = self.dictionary.intern_keyed(key, same.value.as_bytes());
                let at = same.index as usize;
                if self.from_same.len() <= at {
                    self.from_same.resize(at + 1, u32::MAX);
                }
                self.from_same[at] = index;
                index
            }
        }
    }

    /// Forgets the item ids (see [`BytesDictionary::forget_ids`]).
    fn forget_ids(&mut self) {
        self.dictionary.forget_ids();
    }

    fn encode(&self, rows: usize, enc: &mut ChunkEncoder, descr: &ColumnDescPtr) -> Result<Chunk> {
        enc.body.clear();
        put_levels(&mut enc.body, self.reps.as_slice(), 1);
        put_levels(
            &mut enc.body,
            self.defs.as_slice(),
            u8::from(self.nullable) + 1,
        );
        write_dictionary_chunk(
            enc,
            descr,
            &self.keys,
            &self.dictionary,
            self.defs.len(),
            rows,
            None,
        )
    }

    fn clear(&mut self) {
        self.reps.clear();
        self.defs.clear();
        self.keys.clear();
        self.dictionary.clear();
        self.from_same.clear();
    }

    /// Room for `rows` rows of up to two items.
    fn reserve(&mut self, rows: usize, slots: &mut PageSlots) {
        self.reps.reserve(rows * 2, slots);
        self.defs.reserve(rows * 2, slots);
        self.keys.reserve(rows * 2, slots);
    }

    fn approx_bytes(&self) -> usize {
        self.defs.len() * 2 + self.keys.len() * 4 + self.dictionary.page.len()
    }
}

/// A nullable string column of (nearly) unique values written without a
/// dictionary: `PLAIN` (`path`) or `DELTA_LENGTH_BYTE_ARRAY` (`request_id`).
///
/// `data` starts with [`head`](Self::head) free bytes, then the values, so
/// that the page body is assembled in place: the level (and length)
/// sections are written into the free bytes just before the values, which
/// are compressed from where they were pushed instead of being copied
/// after those sections. Sections longer than the free bytes are written
/// the ordinary way (values copied after them).
#[derive(Debug)]
struct UniqueStrings {
    defs: DefLevels,
    delta_length: bool,
    /// [`head`](Self::head) free bytes, then, `PLAIN`: length + bytes per
    /// value; delta length: the bytes only.
    data: Vec<u8>,
    /// Value lengths (delta length only), once they differ: empty while
    /// every value has length `same_length` (request ids all do), so that a
    /// row stores no length and the page writes them as one repeated delta.
    lengths: Vec<i64>,
    /// The length of every value pushed while `lengths` is empty.
    same_length: i64,
    values: usize,
}

/// Free bytes in front of a `PLAIN` [`UniqueStrings`] column's values: the
/// level section of a column that is one run (or a few) of levels.
const PLAIN_HEAD_BYTES: usize = 64;

/// Free bytes in front of a `DELTA_LENGTH_BYTE_ARRAY` [`UniqueStrings`]
/// column's values: also the lengths, which take about 5 bytes a block of
/// 128 values when they are all equal (as request ids' are), so that a
/// default row group (128 Ki rows: about 5 KiB) fits.
const DELTA_LENGTH_HEAD_BYTES: usize = 8 * 1024;

impl UniqueStrings {
    fn new(delta_length: bool) -> Self {
        let head = if delta_length {
            DELTA_LENGTH_HEAD_BYTES
        } else {
            PLAIN_HEAD_BYTES
        };
        Self {
            defs: DefLevels::default(),
            delta_length,
            data: vec![0; head],
            lengths: Vec::new(),
            same_length: 0,
            values: 0,
        }
    }

    /// Free bytes in front of the values in `data`.
    fn head(&self) -> usize {
        if self.delta_length {
            DELTA_LENGTH_HEAD_BYTES
        } else {
            PLAIN_HEAD_BYTES
        }
    }

    /// Inlined into [`EnrichedColumns::push`]: one call per row, not per column.
    #[inline(always)]
    fn push(&mut self, value: Option<&str>) {
        match value {
            Some(v) => {
                if self.delta_length {
                    let len = v.len() as i64;
                    if !self.lengths.is_empty() {
                        self.lengths.push(len);
                    } else if len != self.same_length {
                        self.first_other_length(len);
                    }
                    self.data.extend_from_slice(v.as_bytes());
                } else {
                    put_plain_bytes(&mut self.data, v.as_bytes());
                }
                self.values += 1;
                self.defs.push(1);
            }
            None => self.defs.push(0),
        }
    }

    /// A delta-length value of length `len` while `lengths` is empty and
    /// `len` is not `same_length`: the first value's length becomes
    /// `same_length`; a later one writes out the lengths so far.
    #[cold]
    #[inline(never)]
    fn first_other_length(&mut self, len: i64) {
        if self.values == 0 {
            self.same_length = len;
        } else {
            self.lengths.resize(self.values, self.same_length);
            self.lengths.push(len);
        }
    }

    fn encode(
        &mut self,
        rows: usize,
        enc: &mut ChunkEncoder,
        descr: &ColumnDescPtr,
    ) -> Result<Chunk> {
        enc.body.clear();
        self.defs.put(&mut enc.body, &mut enc.levels);
        let encoding = if self.delta_length {
            if self.lengths.is_empty() {
                put_delta_binary_packed_repeated(&mut enc.body, self.same_length, self.values);
            } else {
                put_delta_binary_packed(&mut enc.body, &self.lengths);
            }
            Encoding::DELTA_LENGTH_BYTE_ARRAY
        } else {
            Encoding::PLAIN
        };
        let head = self.head();
        let sections = enc.body.len();
        if sections > head {
            enc.body.extend_from_slice(&self.data[head..]);
            return enc.write_chunk(descr, None, rows, rows, encoding, None);
        }
        let start = head - sections;
        self.data[start..head].copy_from_slice(&enc.body);
        enc.write_data_chunk(&self.data[start..], descr, rows, rows, encoding, None)
    }

    fn clear(&mut self) {
        self.defs.clear();
        let head = self.head();
        self.data.truncate(head);
        self.lengths.clear();
        self.same_length = 0;
        self.values = 0;
    }

    /// Room for `rows` values of `bytes_per_value` bytes (`lengths` grows
    /// only if lengths differ).
    fn reserve(&mut self, rows: usize, bytes_per_value: usize) {
        self.data.reserve(rows * (bytes_per_value + 4));
    }

    /// Bytes held, counting 8 a delta-length value (as when every length
    /// was stored), so that the row group size bound trips where it did.
    fn approx_bytes(&self) -> usize {
        let lengths = if self.delta_length {
            self.values * 8
        } else {
            0
        };
        self.defs.approx_bytes() + (self.data.len() - self.head()) + lengths
    }
}

/// A nullable 64-bit integer column written `DELTA_BINARY_PACKED`
/// (`event_time`, `bytes_sent`, `source_offset`, `kafka_offset`).
#[derive(Debug, Default)]
struct DeltaIntegers {
    defs: DefLevels,
    values: RowBuffer<i64>,
}

impl DeltaIntegers {
    /// Inlined into [`EnrichedColumns::push`]: one call per row, not per column.
    #[inline(always)]
    fn push(&mut self, value: Option<i64>) {
        match value {
            Some(v) => {
                self.values.push(v);
                self.defs.push(1);
            }
            None => self.defs.push(0),
        }
    }

    fn encode(&self, rows: usize, enc: &mut ChunkEncoder, descr: &ColumnDescPtr) -> Result<Chunk> {
        let nulls = (rows - self.values.len()) as u64;
        // One pass for both bounds.
        let (min, max) = match self.values.as_slice().split_first() {
            Some((&first, rest)) => {
                let (lo, hi) = rest
                    .iter()
                    .fold((first, first), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                (Some(lo), Some(hi))
            }
            None => (None, None),
        };
        let statistics = ValueStatistics::new(min, max, None, Some(nulls), false)
            .with_backwards_compatible_min_max(true)
            .into();
        enc.body.clear();
        self.defs.put(&mut enc.body, &mut enc.levels);
        put_delta_binary_packed(&mut enc.body, self.values.as_slice());
        enc.write_chunk(
            descr,
            None,
            rows,
            rows,
            Encoding::DELTA_BINARY_PACKED,
            Some(statistics),
        )
    }

    fn clear(&mut self) {
        self.defs.clear();
        self.values.clear();
    }

    fn reserve(&mut self, rows: usize, slots: &mut PageSlots) {
        self.values.reserve(rows, slots);
    }

    fn approx_bytes(&self) -> usize {
        self.defs.approx_bytes() + self.values.len() * 8
    }
}

/// A fixed-width value a [`DictionaryNumbers`] column holds.
trait DictionaryNumber: Copy + PartialOrd + std::fmt::Debug + Default {
    /// Bits that identify the value exactly (its dictionary key).
    fn bits(self) -> u64;
    /// Appends the `PLAIN` encoding of the value.
    fn put_plain(self, out: &mut Vec<u8>);
    /// True for a floating-point NaN (left out of min/max).
    fn is_nan(self) -> bool {
        false
    }
    /// Statistics over the dictionary values.
    fn statistics(min: Option<Self>, max: Option<Self>, nulls: u64, nans: u64) -> Statistics;
}

impl DictionaryNumber for i32 {
    fn bits(self) -> u64 {
        self as u32 as u64
    }
    fn put_plain(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn statistics(min: Option<Self>, max: Option<Self>, nulls: u64, _: u64) -> Statistics {
        ValueStatistics::new(min, max, None, Some(nulls), false)
            .with_backwards_compatible_min_max(true)
            .into()
    }
}

impl DictionaryNumber for i64 {
    fn bits(self) -> u64 {
        self as u64
    }
    fn put_plain(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn statistics(min: Option<Self>, max: Option<Self>, nulls: u64, _: u64) -> Statistics {
        ValueStatistics::new(min, max, None, Some(nulls), false)
            .with_backwards_compatible_min_max(true)
            .into()
    }
}

impl DictionaryNumber for f64 {
    fn bits(self) -> u64 {
        self.to_bits()
    }
    fn put_plain(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn is_nan(self) -> bool {
        self.is_nan()
    }
    /// As the specification asks: a zero minimum is written `-0.0`, a zero maximum `+0.0`.
    fn statistics(min: Option<Self>, max: Option<Self>, nulls: u64, nans: u64) -> Statistics {
        let min = min.map(|v| if v == 0.0 { -0.0 } else { v });
        let max = max.map(|v| if v == 0.0 { 0.0 } else { v });
        ValueStatistics::new(min, max, None, Some(nulls), false)
            .with_backwards_compatible_min_max(true)
            .with_nan_count(Some(nans))
            .into()
    }
}

/// The entry number of each distinct value of a [`DictionaryNumbers`]
/// column, by the value's bits: an open-addressing table of (bits, entry + 1)
/// pairs, at most half full, so that a lookup is one multiply and usually
/// one slot read (a general hash map costs several times that, and a
/// column like `duration_ms` changes value on nearly every row).
#[derive(Debug, Default)]
struct NumberIndex {
    /// (bits, entry + 1); entry 0 marks an empty slot. Length a power of two.
    slots: Vec<(u64, u32)>,
    len: usize,
}

impl NumberIndex {
    /// The entry of `bits`, or `next` (recorded as its entry) when new.
    #[inline(always)]
    fn get_or_insert(&mut self, bits: u64, next: u32) -> u32 {
        let mask = self.slots.len().wrapping_sub(1);
        let mut at = (fold_multiply(bits, HASH_MULTIPLIER) as usize) & mask;
        while let Some(&(slot_bits, entry)) = self.slots.get(at) {
            if entry == 0 {
                break;
            }
            if slot_bits == bits {
                return entry - 1;
            }
            at = (at + 1) & mask;
        }
        self.insert(bits, next);
        next
    }

    /// Records `bits` (not present) as entry `entry`.
    #[cold]
    #[inline(never)]
    fn insert(&mut self, bits: u64, entry: u32) {
        if (self.len + 1) * 2 > self.slots.len() {
            let old = std::mem::take(&mut self.slots);
            self.slots = vec![(0, 0); (old.len() * 2).max(16)];
            for &(b, e) in old.iter().filter(|s| s.1 != 0) {
                self.place(b, e);
            }
        }
        self.place(bits, entry + 1);
        self.len += 1;
    }

    /// Puts (`bits`, `stored`) into the first free slot of its probe sequence.
    fn place(&mut self, bits: u64, stored: u32) {
        let mask = self.slots.len() - 1;
        let mut at = (fold_multiply(bits, HASH_MULTIPLIER) as usize) & mask;
        while self.slots[at].1 != 0 {
            at = (at + 1) & mask;
        }
        self.slots[at] = (bits, stored);
    }

    /// Forgets every value, keeping the table's size.
    fn clear(&mut self) {
        self.slots.fill((0, 0));
        self.len = 0;
    }
}

/// A nullable number column written with a dictionary (`status`,
/// `duration_ms`, `rule`, `index_version`, ...).
#[derive(Debug, Default)]
struct DictionaryNumbers<T: DictionaryNumber, const ONE_VALUE_LIKELY: bool = false> {
    defs: DefLevels,
    keys: DictionaryKeys<ONE_VALUE_LIKELY>,
    entries: Vec<T>,
    index: NumberIndex,
    /// Bits and key of the previous value: most rows repeat it (status 200,
    /// one index version), which then costs no hash lookup.
    last: Option<(u64, u32)>,
}

impl<T: DictionaryNumber, const ONE_VALUE_LIKELY: bool> DictionaryNumbers<T, ONE_VALUE_LIKELY> {
    /// Inlined into [`EnrichedColumns::push`]: one call per row, not per column.
    #[inline(always)]
    fn push(&mut self, value: Option<T>) {
        match value {
            Some(v) => {
                let bits = v.bits();
                let key = match self.last {
                    Some((last, key)) if last == bits => key,
                    _ => {
                        let next = self.entries.len() as u32;
                        let key = self.index.get_or_insert(bits, next);
                        if key == next {
                            self.entries.push(v);
                        }
                        self.last = Some((bits, key));
                        key
                    }
                };
                self.keys.push(key);
                self.defs.push(1);
            }
            None => self.defs.push(0),
        }
    }

    fn encode(&self, rows: usize, enc: &mut ChunkEncoder, descr: &ColumnDescPtr) -> Result<Chunk> {
        let mut min: Option<T> = None;
        let mut max: Option<T> = None;
        let mut nans = 0u64;
        for &v in &self.entries {
            if v.is_nan() {
                continue;
            }
            if min.is_none_or(|m| v < m) {
                min = Some(v);
            }
            if max.is_none_or(|m| v > m) {
                max = Some(v);
            }
        }
        if self.entries.iter().any(|v| v.is_nan()) {
            nans = self
                .keys
                .iter()
                .filter(|&k| self.entries[k as usize].is_nan())
                .count() as u64;
        }
        let statistics = T::statistics(min, max, (rows - self.keys.len()) as u64, nans);
        enc.body.clear();
        self.defs.put(&mut enc.body, &mut enc.levels);
        enc.dictionary.clear();
        for v in &self.entries {
            v.put_plain(&mut enc.dictionary);
        }
        if self.keys.is_empty() || enc.dictionary.len() > DICTIONARY_PAGE_LIMIT {
            for k in self.keys.iter() {
                self.entries[k as usize].put_plain(&mut enc.body);
            }
            return enc.write_chunk(descr, None, rows, rows, Encoding::PLAIN, Some(statistics));
        }
        self.keys.put(&mut enc.body, self.entries.len());
        let dictionary = std::mem::take(&mut enc.dictionary);
        let chunk = enc.write_chunk(
            descr,
            Some((&dictionary, self.entries.len())),
            rows,
            rows,
            Encoding::RLE_DICTIONARY,
            Some(statistics),
        );
        enc.dictionary = dictionary;
        chunk
    }

    fn clear(&mut self) {
        self.defs.clear();
        self.keys.clear();
        self.entries.clear();
        self.index.clear();
        self.last = None;
    }

    fn reserve(&mut self, rows: usize, slots: &mut PageSlots) {
        self.keys.reserve(rows, slots);
    }

    fn approx_bytes(&self) -> usize {
        self.defs.approx_bytes() + self.keys.len() * 4 + self.entries.len() * 16
    }
}

/// A required boolean column written `PLAIN` (bit-packed).
#[derive(Debug, Default)]
struct Booleans {
    values: RowBuffer<bool>,
}

impl Booleans {
    fn encode(&self, rows: usize, enc: &mut ChunkEncoder, descr: &ColumnDescPtr) -> Result<Chunk> {
        let any_true = self.values.as_slice().iter().any(|&v| v);
        let any_false = self.values.as_slice().iter().any(|&v| !v);
        let min = (!self.values.is_empty()).then_some(!any_false);
        let max = (!self.values.is_empty()).then_some(any_true);
        let statistics = Statistics::boolean(min, max, None, Some(0), false);
        enc.body.clear();
        put_plain_bools(&mut enc.body, self.values.as_slice());
        enc.write_chunk(descr, None, rows, rows, Encoding::PLAIN, Some(statistics))
    }
}

/// Appends `levels` as a v1 data page level section: 4-byte length, then the
/// hybrid encoding with the bit width of `max_level`.
fn put_levels(out: &mut Vec<u8>, levels: &[u8], max_level: u8) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    put_hybrid(out, levels, bit_width(u64::from(max_level)));
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// Finishes a dictionary-encoded string chunk whose level sections are in
/// `enc.body` already: dictionary page + indices, or `PLAIN` values when the
/// dictionary is empty or too large.
fn write_dictionary_chunk<const ONE_VALUE_LIKELY: bool>(
    enc: &mut ChunkEncoder,
    descr: &ColumnDescPtr,
    keys: &DictionaryKeys<ONE_VALUE_LIKELY>,
    dictionary: &BytesDictionary,
    levels: usize,
    rows: usize,
    statistics: Option<Statistics>,
) -> Result<Chunk> {
    if keys.is_empty() || dictionary.page.len() > DICTIONARY_PAGE_LIMIT {
        for k in keys.iter() {
            put_plain_bytes(&mut enc.body, dictionary.entry(k));
        }
        return enc.write_chunk(descr, None, levels, rows, Encoding::PLAIN, statistics);
    }
    keys.put(&mut enc.body, dictionary.len());
    enc.write_chunk(
        descr,
        Some((&dictionary.page, dictionary.len())),
        levels,
        rows,
        Encoding::RLE_DICTIONARY,
        statistics,
    )
}

/// Byte-array statistics of UTF-8 values from a min/max pair and the null
/// count. A bound longer than [`STATISTICS_MAX_LEN`] is cut, at a character
/// boundary, and marked inexact: the minimum to a prefix (still a lower
/// bound); the maximum to a prefix whose last character is then raised by
/// one (an upper bound), or left out when no such prefix exists.
fn byte_array_statistics(min_max: Option<(&[u8], &[u8])>, nulls: u64) -> Option<Statistics> {
    let Some((min, max)) = min_max else {
        return Some(Statistics::byte_array(None, None, None, Some(nulls), false));
    };
    let (min, min_exact) = match min.len() > STATISTICS_MAX_LEN {
        true => (Some(utf8_prefix(min, STATISTICS_MAX_LEN).to_vec()), false),
        false => (Some(min.to_vec()), true),
    };
    let (max, max_exact) = match max.len() > STATISTICS_MAX_LEN {
        true => (utf8_upper_bound(max, STATISTICS_MAX_LEN), false),
        false => (Some(max.to_vec()), true),
    };
    let statistics = ValueStatistics::new(
        min.map(ByteArray::from),
        max.map(ByteArray::from),
        None,
        Some(nulls),
        false,
    )
    .with_min_is_exact(min_exact)
    .with_max_is_exact(max_exact);
    Some(Statistics::ByteArray(statistics))
}

/// The longest prefix of `value` of at most `len` bytes that ends at a UTF-8
/// character boundary (a byte prefix when `value` is not UTF-8).
fn utf8_prefix(value: &[u8], len: usize) -> &[u8] {
    let mut end = len.min(value.len());
    if std::str::from_utf8(value).is_ok() {
        // Continuation bytes are 0b10xx_xxxx.
        while end > 0 && end < value.len() && value[end] & 0xC0 == 0x80 {
            end -= 1;
        }
    }
    &value[..end]
}

/// A value of at most `len` bytes greater than every value that starts with
/// `value`'s prefix of `len` bytes (so greater than `value`): that prefix
/// with its last character raised to the next one, dropping characters that
/// cannot be raised. `None` when `value` is not UTF-8 or nothing fits.
fn utf8_upper_bound(value: &[u8], len: usize) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(utf8_prefix(value, len)).ok()?;
    let mut chars: Vec<char> = text.chars().collect();
    while let Some(last) = chars.pop() {
        // The next scalar value, skipping the surrogate range.
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            let mut bound: String = chars.into_iter().collect();
            bound.push(next);
            // A raised character may take more bytes than it replaced.
            return (bound.len() <= len).then(|| bound.into_bytes());
        }
    }
    None
}

/// What encoding a column chunk returns: what the row group writer needs to
/// know about it. The chunk's bytes are left in [`ChunkEncoder::chunk`], to
/// be appended before the next column is encoded.
type Chunk = ColumnCloseResult;

/// Lends the bytes of `buf` to `f` as [`Bytes`] (what the parquet crate's
/// page and column-chunk writers take) and takes the allocation back
/// afterwards, so that a buffer reused from chunk to chunk stays one
/// allocation whose pages are touched once, not a fresh one per chunk. If
/// `f` kept a clone, the allocation stays with it and `buf` starts empty.
fn lend_bytes<T>(buf: &mut Vec<u8>, f: impl FnOnce(&Bytes) -> Result<T>) -> Result<T> {
    let bytes = Bytes::from(std::mem::take(buf));
    let result = f(&bytes);
    if let Ok(unique) = bytes.try_into_mut() {
        *buf = unique.into();
    }
    result
}

/// The zstd level of data pages of bit-packed numbers at the default level
/// (see [`packed_values_level`]).
const PACKED_VALUES_FAST_LEVEL: i32 = -7;

/// True when a data page of `encoding` holds bit-packed numbers:
/// dictionary indices (`RLE_DICTIONARY`), `DELTA_BINARY_PACKED` integers,
/// or booleans (bit-packed `PLAIN`). Byte-array values (`PLAIN`,
/// `DELTA_LENGTH_BYTE_ARRAY`) and dictionary pages are not.
fn holds_packed_values(encoding: Encoding, physical_type: PhysicalType) -> bool {
    matches!(
        encoding,
        Encoding::RLE_DICTIONARY | Encoding::DELTA_BINARY_PACKED
    ) || (encoding == Encoding::PLAIN && physical_type == PhysicalType::BOOLEAN)
}

/// The zstd level of data pages of bit-packed numbers when `level` is
/// configured. At the default level 1 (chosen for speed), one of zstd's
/// fast levels, [`PACKED_VALUES_FAST_LEVEL`]: it skips the Huffman coding
/// of literals, which is most of what zstd spends on these pages and gains
/// them 0-6 % (their bytes are near random), for about 2 % bigger files.
/// A higher level asks for smaller files, so every page keeps it; the
/// strings (values and dictionaries) always keep `level`.
fn packed_values_level(level: i32) -> i32 {
    if level <= 1 {
        PACKED_VALUES_FAST_LEVEL
    } else {
        level
    }
}

/// Compresses pages and assembles column chunks; its buffers are reused
/// across columns and row groups.
pub(crate) struct ChunkEncoder {
    /// Dictionary pages and data pages of byte arrays, at `level`.
    compressor: zstd::bulk::Compressor<'static>,
    /// Data pages of bit-packed numbers, when [`packed_values_level`] is
    /// not `level` (else `compressor` takes them too).
    packed: Option<zstd::bulk::Compressor<'static>>,
    level: ZstdLevel,
    /// The data page body being assembled (levels, then values).
    body: Vec<u8>,
    /// Definition levels of a flat column expanded to one byte per row.
    levels: Vec<u8>,
    /// A numeric dictionary page body being assembled.
    dictionary: Vec<u8>,
    /// The last compressed page body.
    compressed: Vec<u8>,
    /// The last encoded column chunk (pages with their headers).
    chunk: Vec<u8>,
}

impl std::fmt::Debug for ChunkEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkEncoder")
            .field("level", &self.level)
            .finish()
    }
}

impl ChunkEncoder {
    /// An encoder compressing with zstd at `level`.
    pub(crate) fn new(level: ZstdLevel) -> Result<Self> {
        let compressor = zstd::bulk::Compressor::new(level.compression_level())
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        let packed_level = packed_values_level(level.compression_level());
        let packed = if packed_level == level.compression_level() {
            None
        } else {
            Some(
                zstd::bulk::Compressor::new(packed_level)
                    .map_err(|e| ParquetError::External(Box::new(e)))?,
            )
        };
        Ok(Self {
            compressor,
            packed,
            level,
            body: Vec::new(),
            levels: Vec::new(),
            dictionary: Vec::new(),
            compressed: Vec::new(),
            chunk: Vec::new(),
        })
    }

    /// The zstd level it compresses at.
    pub(crate) fn level(&self) -> ZstdLevel {
        self.level
    }

    /// Compresses `data` into `self.compressed`; `packed`: it holds
    /// bit-packed numbers ([`holds_packed_values`]).
    fn compress(&mut self, data: &[u8], packed: bool) -> Result<()> {
        let compressor = match (&mut self.packed, packed) {
            (Some(fast), true) => fast,
            _ => &mut self.compressor,
        };
        self.compressed.clear();
        // Room for the worst case, so compression cannot run out of space.
        self.compressed
            .reserve(zstd::zstd_safe::compress_bound(data.len()));
        compressor
            .compress_to_buffer(data, &mut self.compressed)
            .map(|_| ())
            .map_err(|e| ParquetError::External(Box::new(e)))
    }

    /// Writes an optional dictionary page and one data page whose body is
    /// `self.body` into `self.chunk`; `levels` is the number of level entries
    /// (values including nulls and empty lists), `rows` the number of rows.
    fn write_chunk(
        &mut self,
        descr: &ColumnDescPtr,
        dictionary: Option<(&[u8], usize)>,
        levels: usize,
        rows: usize,
        encoding: Encoding,
        statistics: Option<Statistics>,
    ) -> Result<Chunk> {
        let body = std::mem::take(&mut self.body);
        let chunk = self.write_pages(&body, descr, dictionary, levels, rows, encoding, statistics);
        self.body = body;
        chunk
    }

    /// [`write_chunk`](Self::write_chunk) without a dictionary page, of a
    /// data page body assembled elsewhere.
    fn write_data_chunk(
        &mut self,
        body: &[u8],
        descr: &ColumnDescPtr,
        levels: usize,
        rows: usize,
        encoding: Encoding,
        statistics: Option<Statistics>,
    ) -> Result<Chunk> {
        self.write_pages(body, descr, None, levels, rows, encoding, statistics)
    }

    /// Writes an optional dictionary page and one data page of `body` into
    /// `self.chunk` (see [`write_chunk`](Self::write_chunk)).
    #[allow(clippy::too_many_arguments)]
    fn write_pages(
        &mut self,
        body: &[u8],
        descr: &ColumnDescPtr,
        dictionary: Option<(&[u8], usize)>,
        levels: usize,
        rows: usize,
        encoding: Encoding,
        statistics: Option<Statistics>,
    ) -> Result<Chunk> {
        let mut chunk = std::mem::take(&mut self.chunk);
        chunk.clear();
        let mut sink = TrackedWrite::new(chunk);
        let mut total_compressed = 0u64;
        let mut total_uncompressed = 0u64;
        let mut encodings = vec![Encoding::RLE, encoding];
        let mut dictionary_offset = None;
        {
            let mut pages = SerializedPageWriter::new(&mut sink);
            if let Some((page, entries)) = dictionary {
                self.compress(page, false)?;
                let num_values = count_u32(entries)?;
                let spec = lend_bytes(&mut self.compressed, |buf| {
                    pages.write_page(CompressedPage::new(
                        Page::DictionaryPage {
                            buf: buf.clone(),
                            num_values,
                            encoding: Encoding::PLAIN,
                            is_sorted: false,
                        },
                        page.len(),
                    ))
                })?;
                dictionary_offset = Some(spec.offset as i64);
                total_compressed += spec.compressed_size as u64;
                total_uncompressed += spec.uncompressed_size as u64;
                encodings.push(Encoding::PLAIN);
            }
            let packed = holds_packed_values(encoding, descr.physical_type());
            self.compress(body, packed)?;
            let uncompressed_len = body.len();
            let num_values = count_u32(levels)?;
            let spec = lend_bytes(&mut self.compressed, |buf| {
                pages.write_page(CompressedPage::new(
                    Page::DataPage {
                        buf: buf.clone(),
                        num_values,
                        encoding,
                        def_level_encoding: Encoding::RLE,
                        rep_level_encoding: Encoding::RLE,
                        statistics: None,
                    },
                    uncompressed_len,
                ))
            })?;
            total_compressed += spec.compressed_size as u64;
            total_uncompressed += spec.uncompressed_size as u64;
            let data_offset = spec.offset as i64;
            pages.close()?;
            let mut metadata = ColumnChunkMetaData::builder(descr.clone())
                .set_compression(Compression::ZSTD(self.level))
                .set_encodings_mask(EncodingMask::new_from_encodings(encodings.iter()))
                .set_total_compressed_size(total_compressed as i64)
                .set_total_uncompressed_size(total_uncompressed as i64)
                .set_num_values(levels as i64)
                .set_data_page_offset(data_offset)
                .set_dictionary_page_offset(dictionary_offset);
            if let Some(statistics) = statistics {
                metadata = metadata.set_statistics(statistics);
            }
            let metadata = metadata.build()?;
            self.chunk = sink.into_inner()?;
            Ok(ColumnCloseResult {
                bytes_written: self.chunk.len() as u64,
                rows_written: rows as u64,
                metadata,
                bloom_filter: None,
                column_index: None,
                offset_index: None,
            })
        }
    }
}

fn count_u32(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| ParquetError::General(format!("{n} values in one page")))
}

/// Buffered rows of one row group, column by column, in the column order of
/// [`enriched_schema`](super::row::enriched_schema). See the module docs.
#[derive(Debug)]
pub(crate) struct EnrichedColumns {
    rows: usize,
    /// The index ([`ValueIds::index`]) the index ids remembered by the
    /// columns belong to; `None` before the first row with one.
    ids_index: Option<u64>,
    /// The endpoint index ([`UpstreamId::endpoints`](super::row::UpstreamId::endpoints)) the upstream ids
    /// remembered by `actual_upstream` belong to.
    upstream_ids_endpoints: Option<u64>,
    event_time: DeltaIntegers,
    gateway: NullableOneValueStrings,
    listener: NullableOneValueStrings,
    host: NullableStrings,
    method: NullableStrings,
    path: UniqueStrings,
    status: DictionaryNumbers<i32>,
    response_flags: NullableStrings,
    duration_ms: DictionaryNumbers<f64>,
    bytes_sent: DeltaIntegers,
    request_id: UniqueStrings,
    actual_backend: NullableStrings,
    actual_upstream: NullableStrings,
    actual_source: RequiredStrings,
    expected_backends: DictionaryStringLists,
    expected_status: DictionaryNumbers<i32>,
    route: NullableStrings,
    route_kind: NullableStrings,
    rule: DictionaryNumbers<i32>,
    verdict: RequiredStrings,
    verdict_reason: NullableStrings,
    index_version: DictionaryNumbers<i64, true>,
    input_format: RequiredOneValueStrings,
    source_file: NullableOneValueStrings,
    source_offset: DeltaIntegers,
    kafka_topic: NullableOneValueStrings,
    kafka_partition: DictionaryNumbers<i32>,
    kafka_offset: DeltaIntegers,
    decision_ambiguous: Booleans,
    ambiguity_reason: NullableStrings,
    upstream_attempts: DictionaryStringLists,
    index_stale: Booleans,
}

/// Number of leaf columns of the enriched schema.
pub(crate) const ENRICHED_LEAF_COLUMNS: usize = 32;

impl Default for EnrichedColumns {
    fn default() -> Self {
        // Statistics (or not) per string column as documented in
        // `super::parquet` (NO_STATISTICS_COLUMNS).
        let strings = NullableStrings::new;
        let required = RequiredStrings::new;
        Self {
            rows: 0,
            ids_index: None,
            upstream_ids_endpoints: None,
            event_time: DeltaIntegers::default(),
            gateway: NullableOneValueStrings::new(true),
            listener: NullableOneValueStrings::new(true),
            host: strings(false),
            method: strings(true),
            path: UniqueStrings::new(false),
            status: DictionaryNumbers::default(),
            response_flags: strings(true),
            duration_ms: DictionaryNumbers::default(),
            bytes_sent: DeltaIntegers::default(),
            request_id: UniqueStrings::new(true),
            actual_backend: strings(false),
            actual_upstream: strings(false),
            actual_source: required(true),
            expected_backends: DictionaryStringLists::new(true),
            expected_status: DictionaryNumbers::default(),
            route: strings(false),
            route_kind: strings(true),
            rule: DictionaryNumbers::default(),
            verdict: required(true),
            verdict_reason: strings(false),
            index_version: DictionaryNumbers::default(),
            input_format: RequiredOneValueStrings::new(true),
            source_file: NullableOneValueStrings::new(true),
            source_offset: DeltaIntegers::default(),
            kafka_topic: NullableOneValueStrings::new(true),
            kafka_partition: DictionaryNumbers::default(),
            kafka_offset: DeltaIntegers::default(),
            decision_ambiguous: Booleans::default(),
            ambiguity_reason: strings(true),
            upstream_attempts: DictionaryStringLists::new(false),
            index_stale: Booleans::default(),
        }
    }
}

impl EnrichedColumns {
    /// Buffers with room for `rows` rows before they grow (so that a
    /// partition's first rows do not regrow every buffer from zero).
    pub(crate) fn with_capacity(rows: usize) -> Self {
        let mut columns = Self::default();
        columns.reserve(rows);
        columns
    }

    /// Room for `rows` more rows in every buffer (value strings at a typical
    /// length), so that a row group that outgrows the first allocation is
    /// sized once instead of doubling (and copying) each buffer several
    /// times on the per-row path.
    pub(crate) fn reserve(&mut self, rows: usize) {
        let c = self;
        let slots = &mut PageSlots::default();
        c.event_time.reserve(rows, slots);
        c.bytes_sent.reserve(rows, slots);
        c.source_offset.reserve(rows, slots);
        c.kafka_offset.reserve(rows, slots);
        for strings in [
            &mut c.host,
            &mut c.method,
            &mut c.response_flags,
            &mut c.actual_backend,
            &mut c.actual_upstream,
            &mut c.route,
            &mut c.route_kind,
            &mut c.verdict_reason,
            &mut c.ambiguity_reason,
        ] {
            strings.reserve(rows, slots);
        }
        for strings in [
            &mut c.gateway,
            &mut c.listener,
            &mut c.source_file,
            &mut c.kafka_topic,
        ] {
            strings.reserve(rows, slots);
        }
        for strings in [&mut c.actual_source, &mut c.verdict] {
            strings.reserve(rows, slots);
        }
        c.input_format.reserve(rows, slots);
        c.path.reserve(rows, 48);
        c.request_id.reserve(rows, 36);
        c.expected_backends.reserve(rows, slots);
        c.upstream_attempts.reserve(rows, slots);
        c.status.reserve(rows, slots);
        c.expected_status.reserve(rows, slots);
        c.rule.reserve(rows, slots);
        c.kafka_partition.reserve(rows, slots);
        c.duration_ms.reserve(rows, slots);
        c.index_version.reserve(rows, slots);
        c.decision_ambiguous.values.reserve(rows, slots);
        c.index_stale.values.reserve(rows, slots);
    }

    /// Rows buffered since the last [`write_row_group`](Self::write_row_group).
    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    /// True when no row is buffered.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row. Allocates only when a buffer grows.
    pub(crate) fn push(&mut self, row: &EnrichedRow<'_>) {
        // Index ids are valid with the row's index only. Borrowed, not
        // copied, in the usual case.
        let closed_set_ids;
        let ids = match row.ids.index {
            Some(index) => {
                if self.ids_index != Some(index) {
                    self.forget_index_ids(index);
                }
                &row.ids
            }
            None => {
                closed_set_ids = ValueIds {
                    gateway: None,
                    listener: None,
                    route: None,
                    actual_backend: None,
                    expected_backends: &[],
                    ..row.ids
                };
                &closed_set_ids
            }
        };
        self.prefetch_ids(ids, row);
        self.event_time.push(row.event_time);
        self.gateway.push_id(row.gateway, ids.gateway);
        self.listener.push_id(row.listener, ids.listener);
        self.host.push(row.host);
        self.method.push(row.method);
        self.path.push(row.path);
        self.status.push(row.status);
        self.response_flags.push(row.response_flags);
        self.duration_ms.push(row.duration_ms);
        self.bytes_sent.push(row.bytes_sent);
        self.request_id.push(row.request_id);
        // Usually one expected backend is the actual one, and the last
        // attempt the actual upstream: without ids, translated, not looked
        // up again.
        let backend = match ids.actual_backend {
            Some(id) => {
                self.actual_backend.push_id(row.actual_backend, Some(id));
                None
            }
            None => self.actual_backend.push_keyed(row.actual_backend),
        };
        let upstream = match row.ids.actual_upstream {
            Some(id) => {
                if self.upstream_ids_endpoints != Some(id.endpoints) {
                    self.forget_upstream_ids(id.endpoints);
                }
                self.actual_upstream
                    .push_id_keyed(row.actual_upstream, id.address)
            }
            None => self.actual_upstream.push_keyed(row.actual_upstream),
        };
        self.actual_source.push_id(
            Some(row.actual_source.as_str()),
            Some(row.actual_source as u32),
        );
        self.expected_backends
            .push(row.expected_backends, ids.expected_backends, backend);
        self.expected_status.push(row.expected_status);
        self.route.push_id(row.route, ids.route);
        self.route_kind.push_id(row.route_kind, ids.route_kind);
        self.rule.push(row.rule);
        self.verdict.push_id(Some(row.verdict), ids.verdict);
        self.verdict_reason
            .push_static(row.verdict_reason, ids.verdict_reason);
        // Versions above i64::MAX are clamped (see `super::row`).
        self.index_version.push(
            row.index_version
                .map(|v| i64::try_from(v).unwrap_or(i64::MAX)),
        );
        self.input_format
            .push_id(Some(row.input_format), ids.input_format);
        self.source_file.push(row.source_file);
        self.source_offset.push(row.source_offset);
        self.kafka_topic.push(row.kafka_topic);
        self.kafka_partition.push(row.kafka_partition);
        self.kafka_offset.push(row.kafka_offset);
        self.decision_ambiguous.values.push(row.decision_ambiguous);
        self.ambiguity_reason.push(row.ambiguity_reason);
        self.upstream_attempts
            .push(Some(row.upstream_attempts), &[], upstream);
        self.index_stale.values.push(row.index_stale);
        self.rows += 1;
    }

    /// Prefetches the id table slots of the row's ids into large id spaces,
    /// read later in [`push`](Self::push), so that their misses overlap the
    /// columns pushed before them.
    #[inline(always)]
    fn prefetch_ids(&self, ids: &ValueIds<'_>, row: &EnrichedRow<'_>) {
        if let Some(id) = ids.route {
            self.route.dictionary.prefetch_id(id);
        }
        if let Some(id) = ids.actual_backend {
            self.actual_backend.dictionary.prefetch_id(id);
        }
        if let Some(&id) = ids.expected_backends.first() {
            self.expected_backends.dictionary.prefetch_id(id);
        }
        if let Some(id) = row.ids.actual_upstream {
            self.actual_upstream.dictionary.prefetch_id(id.address);
        }
    }

    /// Forgets the index ids of every column (rows of another index follow):
    /// their ids may name other values. Closed-set ids are kept.
    #[cold]
    #[inline(never)]
    fn forget_index_ids(&mut self, index: u64) {
        self.gateway.forget_ids();
        self.listener.forget_ids();
        self.route.forget_ids();
        self.actual_backend.forget_ids();
        self.expected_backends.forget_ids();
        self.ids_index = Some(index);
    }

    /// Forgets the upstream ids (rows of another endpoint index follow).
    #[cold]
    #[inline(never)]
    fn forget_upstream_ids(&mut self, endpoints: u64) {
        self.actual_upstream.forget_ids();
        self.upstream_ids_endpoints = Some(endpoints);
    }

    /// Approximate bytes held by the buffered rows (the id tables, a few
    /// KiB, are left out).
    pub(crate) fn approx_bytes(&self) -> usize {
        let strings = [
            &self.host,
            &self.method,
            &self.response_flags,
            &self.actual_backend,
            &self.actual_upstream,
            &self.route,
            &self.route_kind,
            &self.verdict_reason,
            &self.ambiguity_reason,
        ];
        let one_value = [
            &self.gateway,
            &self.listener,
            &self.source_file,
            &self.kafka_topic,
        ];
        let required = [&self.actual_source, &self.verdict];
        strings.iter().map(|c| c.approx_bytes()).sum::<usize>()
            + one_value.iter().map(|c| c.approx_bytes()).sum::<usize>()
            + required.iter().map(|c| c.approx_bytes()).sum::<usize>()
            + self.input_format.approx_bytes()
            + [
                &self.event_time,
                &self.bytes_sent,
                &self.source_offset,
                &self.kafka_offset,
            ]
            .iter()
            .map(|c| c.approx_bytes())
            .sum::<usize>()
            + self.path.approx_bytes()
            + self.request_id.approx_bytes()
            + self.expected_backends.approx_bytes()
            + self.upstream_attempts.approx_bytes()
            + self.status.approx_bytes()
            + self.expected_status.approx_bytes()
            + self.rule.approx_bytes()
            + self.kafka_partition.approx_bytes()
            + self.duration_ms.approx_bytes()
            + self.index_version.approx_bytes()
            + self.rows * 2
    }

    /// Writes the buffered rows as one row group of `writer` and empties the
    /// buffers (keeping their capacity). Does nothing without rows.
    pub(crate) fn write_row_group<W: Write + Send>(
        &mut self,
        writer: &mut SerializedFileWriter<W>,
        enc: &mut ChunkEncoder,
    ) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let columns: Vec<ColumnDescPtr> = writer.schema_descr().columns().to_vec();
        if columns.len() != ENRICHED_LEAF_COLUMNS {
            return Err(ParquetError::General(format!(
                "enriched schema has {} leaf columns, expected {ENRICHED_LEAF_COLUMNS}",
                columns.len()
            )));
        }
        let rows = self.rows;
        let mut group = writer.next_row_group()?;
        let c = &columns;
        // Each chunk is appended as soon as it is encoded, so one chunk
        // buffer serves every column.
        let mut append = |close: Chunk, enc: &mut ChunkEncoder| {
            lend_bytes(&mut enc.chunk, |bytes| group.append_column(bytes, close))
        };
        append(self.event_time.encode(rows, enc, &c[0])?, enc)?;
        append(self.gateway.encode(rows, enc, &c[1])?, enc)?;
        append(self.listener.encode(rows, enc, &c[2])?, enc)?;
        append(self.host.encode(rows, enc, &c[3])?, enc)?;
        append(self.method.encode(rows, enc, &c[4])?, enc)?;
        append(self.path.encode(rows, enc, &c[5])?, enc)?;
        append(self.status.encode(rows, enc, &c[6])?, enc)?;
        append(self.response_flags.encode(rows, enc, &c[7])?, enc)?;
        append(self.duration_ms.encode(rows, enc, &c[8])?, enc)?;
        append(self.bytes_sent.encode(rows, enc, &c[9])?, enc)?;
        append(self.request_id.encode(rows, enc, &c[10])?, enc)?;
        append(self.actual_backend.encode(rows, enc, &c[11])?, enc)?;
        append(self.actual_upstream.encode(rows, enc, &c[12])?, enc)?;
        append(self.actual_source.encode(rows, enc, &c[13])?, enc)?;
        append(self.expected_backends.encode(rows, enc, &c[14])?, enc)?;
        append(self.expected_status.encode(rows, enc, &c[15])?, enc)?;
        append(self.route.encode(rows, enc, &c[16])?, enc)?;
        append(self.route_kind.encode(rows, enc, &c[17])?, enc)?;
        append(self.rule.encode(rows, enc, &c[18])?, enc)?;
        append(self.verdict.encode(rows, enc, &c[19])?, enc)?;
        append(self.verdict_reason.encode(rows, enc, &c[20])?, enc)?;
        append(self.index_version.encode(rows, enc, &c[21])?, enc)?;
        append(self.input_format.encode(rows, enc, &c[22])?, enc)?;
        append(self.source_file.encode(rows, enc, &c[23])?, enc)?;
        append(self.source_offset.encode(rows, enc, &c[24])?, enc)?;
        append(self.kafka_topic.encode(rows, enc, &c[25])?, enc)?;
        append(self.kafka_partition.encode(rows, enc, &c[26])?, enc)?;
        append(self.kafka_offset.encode(rows, enc, &c[27])?, enc)?;
        append(self.decision_ambiguous.encode(rows, enc, &c[28])?, enc)?;
        append(self.ambiguity_reason.encode(rows, enc, &c[29])?, enc)?;
        append(self.upstream_attempts.encode(rows, enc, &c[30])?, enc)?;
        append(self.index_stale.encode(rows, enc, &c[31])?, enc)?;
        group.close()?;
        self.clear();
        Ok(())
    }

    /// Empties every buffer, keeping capacity.
    pub(crate) fn clear(&mut self) {
        self.rows = 0;
        self.event_time.clear();
        self.gateway.clear();
        self.listener.clear();
        self.host.clear();
        self.method.clear();
        self.path.clear();
        self.status.clear();
        self.response_flags.clear();
        self.duration_ms.clear();
        self.bytes_sent.clear();
        self.request_id.clear();
        self.actual_backend.clear();
        self.actual_upstream.clear();
        self.actual_source.clear();
        self.expected_backends.clear();
        self.expected_status.clear();
        self.route.clear();
        self.route_kind.clear();
        self.rule.clear();
        self.verdict.clear();
        self.verdict_reason.clear();
        self.index_version.clear();
        self.input_format.clear();
        self.source_file.clear();
        self.source_offset.clear();
        self.kafka_topic.clear();
        self.kafka_partition.clear();
        self.kafka_offset.clear();
        self.decision_ambiguous.values.clear();
        self.ambiguity_reason.clear();
        self.upstream_attempts.clear();
        self.index_stale.values.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::fs::File;

    use arrow_array::Array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use crate::sink::parquet::{ParquetSink, ParquetSinkConfig, SequentialFileNamer};
    use crate::sink::row::{ActualSource, EnrichedBatchBuilder, EnrichedRow, StrList, ValueIds};

    use super::{
        byte_array_statistics, holds_packed_values, packed_values_level, utf8_prefix,
        utf8_upper_bound, Encoding, PhysicalType, Statistics, STATISTICS_MAX_LEN,
    };

    #[test]
    fn only_pages_of_packed_numbers_take_the_fast_level() {
        use Encoding::{DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, PLAIN, RLE_DICTIONARY};
        use PhysicalType::{BOOLEAN, BYTE_ARRAY, INT64};
        assert!(holds_packed_values(RLE_DICTIONARY, BYTE_ARRAY));
        assert!(holds_packed_values(DELTA_BINARY_PACKED, INT64));
        assert!(holds_packed_values(PLAIN, BOOLEAN));
        assert!(!holds_packed_values(PLAIN, BYTE_ARRAY));
        assert!(!holds_packed_values(PLAIN, INT64));
        assert!(!holds_packed_values(DELTA_LENGTH_BYTE_ARRAY, BYTE_ARRAY));
        // The default level 1 gives one of zstd's fast (negative) levels.
        assert_eq!(packed_values_level(1), -7);
        // An explicit higher level asks for size: every page keeps it.
        assert_eq!(packed_values_level(2), 2);
        assert_eq!(packed_values_level(22), 22);
    }

    /// Owned strings of one generated row.
    struct Owned {
        host: String,
        path: String,
        request_id: String,
        backend: String,
        expected: Vec<String>,
        attempts: Vec<String>,
        reason: String,
    }

    #[test]
    fn long_string_statistics_are_cut_to_inexact_bounds() {
        let long_min = format!("/{}", "a".repeat(100));
        let long_max = format!("/{}é{}", "z".repeat(62), "q".repeat(30));
        let Some(Statistics::ByteArray(stats)) =
            byte_array_statistics(Some((long_min.as_bytes(), long_max.as_bytes())), 3)
        else {
            panic!("byte-array statistics expected");
        };
        assert_eq!(stats.null_count_opt(), Some(3));
        let min = stats.min_opt().expect("min").data();
        let max = stats.max_opt().expect("max").data();
        assert!(min.len() <= STATISTICS_MAX_LEN && max.len() <= STATISTICS_MAX_LEN);
        assert!(min <= long_min.as_bytes() && max > long_max.as_bytes());
        assert!(!stats.min_is_exact() && !stats.max_is_exact());
        // "é" straddles byte 64: cut before it, then the last 'z' is raised.
        assert_eq!(max, format!("/{}{{", "z".repeat(61)).as_bytes());

        let Some(Statistics::ByteArray(short)) = byte_array_statistics(Some((b"a", b"b")), 0)
        else {
            panic!("byte-array statistics expected");
        };
        assert!(short.min_is_exact() && short.max_is_exact());
        assert_eq!(short.max_opt().expect("max").data(), b"b");
    }

    #[test]
    fn upper_bounds_skip_what_cannot_be_raised() {
        assert_eq!(utf8_prefix("ab\u{e9}".as_bytes(), 3), b"ab");
        assert_eq!(utf8_upper_bound(b"abc", 2), Some(b"ac".to_vec()));
        let top = format!("a{}", char::MAX);
        assert_eq!(utf8_upper_bound(top.as_bytes(), 16), Some(b"b".to_vec()));
        assert_eq!(utf8_upper_bound(char::MAX.to_string().as_bytes(), 16), None);
        // U+D7FF is followed by U+E000 (surrogates are not characters).
        let below_surrogates = "\u{d7ff}".to_string();
        assert_eq!(
            utf8_upper_bound(below_surrogates.as_bytes(), 16),
            Some("\u{e000}".as_bytes().to_vec())
        );
        // Raising 0x7F takes a second byte, which does not fit in one.
        assert_eq!(utf8_upper_bound(b"\x7f", 1), None);
        assert_eq!(utf8_upper_bound(&[0xff, 0xfe], 2), None);
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn owned(rng: &mut Rng, i: usize) -> Owned {
        let long = rng.below(50) == 0;
        let backend = match rng.below(8) {
            0 => format!(
                "ns-{}/svc-{}-{}",
                rng.below(5),
                rng.below(30),
                "b".repeat(20)
            ),
            _ => format!("ns-{}/svc-{}", rng.below(5), rng.below(30)),
        };
        Owned {
            host: if long {
                format!("{}.example.com", "h".repeat(70 + i % 7))
            } else {
                format!("app-{}.example.com", rng.below(40))
            },
            path: format!(
                "/p/{}/{}",
                rng.below(1000),
                "x".repeat(rng.below(30) as usize)
            ),
            request_id: format!("{:016x}-{i}", rng.next()),
            backend: backend.clone(),
            // Some lists hold the row's backend (a copy) or end with its
            // upstream (the same slice): translated, not looked up again.
            expected: (0..rng.below(4))
                .map(|k| match rng.below(3) {
                    0 => backend.clone(),
                    1 => format!("ns/exp-{}-{}", k + rng.below(20), "l".repeat(20)),
                    _ => format!("ns/exp-{}", (k + rng.below(20))),
                })
                .collect(),
            attempts: (0..rng.below(3))
                .map(|k| match rng.below(4) {
                    0 => format!("10.0.{}.{k}:8080.{}", rng.below(200), "x".repeat(20)),
                    _ => format!("10.0.{}.{k}:8080", rng.below(200)),
                })
                .collect(),
            reason: format!("reason {}", rng.below(6)),
        }
    }

    /// A [`row`] of each of `data`, numbered in order.
    fn rows_of<'a>(rng: &mut Rng, data: &'a [Owned]) -> Vec<EnrichedRow<'a>> {
        data.iter()
            .enumerate()
            .map(|(i, o)| row(rng, i, o))
            .collect()
    }

    /// A row using every column, with nulls, empty and null lists, NaN and
    /// signed zeros, chosen by `rng`.
    fn row<'a>(rng: &mut Rng, i: usize, o: &'a Owned) -> EnrichedRow<'a> {
        let mut maybe = |p: u64| rng.below(100) >= p;
        let sources = [
            ActualSource::ClusterName,
            ActualSource::Endpoint,
            ActualSource::None,
        ];
        let durations = [0.0, -0.0, 1.5, f64::NAN, 250.0, 3.25];
        EnrichedRow {
            event_time: maybe(5).then_some(1_714_546_800_000_000 + i as i64 * 997),
            gateway: maybe(3).then_some("infra/gw"),
            listener: maybe(50).then_some(if i % 3 == 0 { "http" } else { "https" }),
            host: maybe(4).then_some(o.host.as_str()),
            method: maybe(2).then_some(["GET", "POST", "PUT"][i % 3]),
            path: maybe(5).then_some(o.path.as_str()),
            status: maybe(5).then_some([200, 404, 503, -1][i % 4]),
            response_flags: maybe(30).then_some(["-", "UH", "NR"][i % 3]),
            duration_ms: maybe(5).then_some(durations[i % durations.len()]),
            bytes_sent: maybe(5).then_some(if i % 11 == 0 { i64::MIN } else { i as i64 * 13 }),
            request_id: maybe(5).then_some(o.request_id.as_str()),
            actual_backend: maybe(20).then_some(o.backend.as_str()),
            actual_upstream: maybe(20).then_some(match o.attempts.last() {
                Some(last) if i % 3 != 0 => last.as_str(),
                _ if i % 2 == 0 => "10.0.0.1:80",
                _ => "c",
            }),
            actual_source: sources[i % 3],
            expected_backends: maybe(20).then_some(StrList::Owned(&o.expected)),
            expected_status: maybe(90).then_some(404),
            route: maybe(10).then_some(o.backend.as_str()),
            route_kind: maybe(10).then_some("HTTPRoute"),
            rule: maybe(10).then_some((i % 5) as i32),
            verdict: ["ok", "misrouted", "unknown_gateway"][i % 3],
            verdict_reason: maybe(10).then_some(o.reason.as_str()),
            index_version: maybe(10).then_some(if i % 17 == 0 { u64::MAX } else { 7 }),
            input_format: "envoy_json",
            source_file: maybe(10).then_some("/logs/a.log"),
            source_offset: maybe(0).then_some(i as i64 * 400),
            kafka_topic: maybe(80).then_some("t"),
            kafka_partition: maybe(80).then_some(3),
            kafka_offset: maybe(80).then_some(i as i64 * 3 - 100),
            decision_ambiguous: i % 7 == 0,
            ambiguity_reason: (i % 7 == 0).then_some("header:x-canary unknown"),
            upstream_attempts: StrList::Owned(&o.attempts),
            index_stale: i % 13 == 0,
            ids: ValueIds::default(),
        }
    }

    /// Rows written by the sink read back through arrow-rs equal to the same
    /// rows built with Arrow builders, column by column, across several row
    /// groups (so dictionaries restart), with every kind of null.
    #[test]
    fn written_rows_read_back_equal_to_arrow_reference() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let n = 5000;
        let data: Vec<Owned> = (0..n).map(|i| owned(&mut rng, i)).collect();
        let rows = rows_of(&mut rng, &data);
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = ParquetSinkConfig {
            row_group_rows: 1500,
            ..ParquetSinkConfig::new(tmp.path())
        };
        let mut sink = ParquetSink::new(config, SequentialFileNamer::new("t")).expect("sink");
        let mut reference = EnrichedBatchBuilder::with_capacity(n);
        // Rows without an event time go to another file: compare per partition.
        let mut timed = EnrichedBatchBuilder::with_capacity(n);
        for r in &rows {
            sink.append(r).expect("append");
            if r.event_time.is_some() {
                timed.append(r);
            } else {
                reference.append(r);
            }
        }
        let files = sink.close().expect("close");
        assert_eq!(files.len(), 2);
        let null_time = reference.finish().expect("reference");
        let timed = timed.finish().expect("reference");
        for (file, expected) in files.iter().zip([&null_time, &timed]) {
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(File::open(&file.path).expect("open"))
                    .expect("reader")
                    .with_batch_size(n)
                    .build()
                    .expect("build");
            let batches: Vec<_> = reader.map(|b| b.expect("batch")).collect();
            assert_eq!(batches.len(), 1);
            let actual = &batches[0];
            assert_eq!(actual.schema().fields(), expected.schema().fields());
            assert_eq!(actual.num_rows(), expected.num_rows());
            for (i, field) in expected.schema().fields().iter().enumerate() {
                let (a, e) = (actual.column(i), expected.column(i));
                assert_eq!(a.to_data(), e.to_data(), "column {}", field.name());
            }
        }
        // Several row groups, each dictionary-encoded where chosen.
        let reader = SerializedFileReader::new(File::open(&files[1].path).expect("open"))
            .expect("parquet reader");
        assert!(reader.metadata().num_row_groups() >= 3);
        let group = reader.metadata().row_group(0);
        let gateway = &group.columns()[1];
        assert!(gateway.dictionary_page_offset().is_some());
        let stats = gateway.statistics().expect("gateway statistics");
        assert_eq!(stats.min_bytes_opt(), Some(&b"infra/gw"[..]));
        assert!(stats.null_count_opt().is_some_and(|n| n > 0));
    }

    /// Interning returns one index per distinct value, in first-seen order,
    /// through table growth and after `clear`; the page holds each value once.
    #[test]
    fn dictionary_interns_each_distinct_value_once() {
        let mut dictionary = super::BytesDictionary::default();
        let values: Vec<String> = (0..5000)
            .map(|i| "v".repeat(i % 40) + &i.to_string())
            .chain(["".to_string()])
            .collect();
        for round in 0..2 {
            for (i, v) in values.iter().enumerate() {
                assert_eq!(dictionary.intern(v.as_bytes()), i as u32, "round {round}");
            }
            for (i, v) in values.iter().enumerate().rev() {
                assert_eq!(dictionary.intern(v.as_bytes()), i as u32);
                assert_eq!(dictionary.entry(i as u32), v.as_bytes());
            }
            assert_eq!(dictionary.len(), values.len());
            let expected: usize = values.iter().map(|v| v.len() + 4).sum();
            assert_eq!(dictionary.page.len(), expected);
            dictionary.clear();
        }
        assert_ne!(
            super::hash_value(b"abcdefgh1"),
            super::hash_value(b"abcdefgh2")
        );
        let long = "0123456789abcdefghijklmnopqrstuvwxyz".as_bytes();
        for len in 0..long.len() {
            let a = &long[..len];
            assert!(super::bytes_equal(a, a));
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 1;
                assert!(!super::bytes_equal(a, &b), "len {len} at {at}");
            }
            assert!(!super::bytes_equal(a, &long[..len + 1]));
        }
        assert_ne!(super::hash_value(b"GET"), super::hash_value(b"PUT"));
    }

    /// Levels pushed as runs expand back to the same sequence, through
    /// single-row runs, long runs and `clear`.
    #[test]
    fn definition_level_runs_expand_to_the_pushed_levels() {
        let mut levels = super::DefLevels::default();
        let mut out = Vec::new();
        levels.expand(&mut out);
        assert!(out.is_empty());
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        for _ in 0..2 {
            let pushed: Vec<u8> = (0..5000)
                .map(|i| match i / 1000 {
                    0 => 1,
                    1 => (rng.below(2)) as u8,
                    2 => 0,
                    _ => u8::from(rng.below(50) != 0),
                })
                .collect();
            for &level in &pushed {
                levels.push(level);
            }
            assert_eq!(levels.len(), pushed.len());
            levels.expand(&mut out);
            assert_eq!(out, pushed);
            // Encoded from the runs: the bytes of the levels one by one.
            let (mut encoded, mut scratch) = (Vec::new(), Vec::new());
            levels.put(&mut encoded, &mut scratch);
            let mut expected = Vec::new();
            super::put_levels(&mut expected, &pushed, 1);
            assert_eq!(encoded, expected);
            levels.clear();
            assert_eq!(levels.len(), 0);
        }
    }

    #[test]
    fn number_index_numbers_values_in_first_seen_order() {
        let mut index = super::NumberIndex::default();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut seen: Vec<u64> = Vec::new();
        for round in 0..3 {
            for _ in 0..20_000 {
                let bits = match rng.below(4) {
                    0 => rng.below(300),
                    1 => (-0.0f64).to_bits(),
                    2 => 0.0f64.to_bits(),
                    _ => f64::NAN.to_bits() ^ rng.below(3),
                };
                let expected = seen.iter().position(|&b| b == bits);
                let next = seen.len() as u32;
                let entry = index.get_or_insert(bits, next);
                match expected {
                    Some(at) => assert_eq!(entry, at as u32, "round {round} bits {bits:x}"),
                    None => {
                        assert_eq!(entry, next);
                        seen.push(bits);
                    }
                }
            }
            assert_eq!(index.len, seen.len());
            index.clear();
            seen.clear();
        }
    }

    /// A lent buffer comes back as the same allocation with the same bytes
    /// (so chunk after chunk touches no new pages); if the borrower keeps
    /// a clone, the buffer is left empty and the clone keeps the bytes.
    #[test]
    fn lent_bytes_come_back_as_the_same_allocation() {
        let mut buf = Vec::with_capacity(1 << 20);
        buf.extend_from_slice(b"page bytes");
        let at = buf.as_ptr();
        let seen = super::lend_bytes(&mut buf, |bytes| Ok(bytes.to_vec())).expect("lend");
        assert_eq!(seen, b"page bytes");
        assert_eq!(buf, b"page bytes");
        assert_eq!(buf.as_ptr(), at);
        assert_eq!(buf.capacity(), 1 << 20);

        let kept = super::lend_bytes(&mut buf, |bytes| Ok(bytes.clone())).expect("lend");
        assert!(buf.is_empty());
        assert_eq!(kept, &b"page bytes"[..]);
    }

    /// A row buffer moved to its page slot keeps its values, starts on a
    /// line, does not move while the reserved rows are pushed, and buffers
    /// reserved one after another start on different page offsets.
    #[test]
    fn row_buffers_keep_their_values_and_start_on_staggered_lines() {
        let mut offsets = Vec::new();
        let slots = &mut super::PageSlots::default();
        for n in [0usize, 1, 7, 300, 5000] {
            let mut buffer = super::RowBuffer::<u32>::default();
            let pushed: Vec<u32> = (0..n as u32)
                .map(|v| v.wrapping_mul(2_654_435_761))
                .collect();
            for &v in &pushed {
                buffer.push(v);
            }
            buffer.reserve(10_000, slots);
            assert_eq!(buffer.as_slice(), pushed.as_slice(), "{n} values");
            assert_eq!(buffer.len(), n);
            // The first value sits at a line start of its page slot.
            let start = buffer.as_slice().as_ptr() as usize;
            assert_eq!(start % 64, 0, "{n} values: start {start:#x}");
            offsets.push(start % 4096);
            // Reserved room: the next rows do not move the buffer.
            for v in 0..10_000 {
                buffer.push(v);
            }
            assert_eq!(buffer.as_slice().as_ptr() as usize, start);
            assert_eq!(buffer.len(), n + 10_000);
            assert_eq!(&buffer.as_slice()[..n], pushed.as_slice());
            buffer.clear();
            assert!(buffer.is_empty());
            buffer.resize(3, 9);
            assert_eq!(buffer.as_slice(), &[9, 9, 9]);
            assert_eq!(buffer.as_slice().as_ptr() as usize, start);
        }
        offsets.sort_unstable();
        offsets.dedup();
        assert_eq!(offsets.len(), 5, "each buffer on a page offset of its own");
    }

    /// Indices kept as a count of zeros while all are 0 read back and
    /// encode exactly as the plain sequence, for all-zero columns of every
    /// length (below and above one RLE run) and for zeros followed by other
    /// indices; `clear` starts counting again.
    #[test]
    fn dictionary_keys_encode_as_the_plain_indices() {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let mut keys = super::DictionaryKeys::<true>::default();
        let mut plain = super::DictionaryKeys::<false>::default();
        for zeros in [0usize, 1, 7, 8, 9, 1000] {
            for tail in [0usize, 1, 50] {
                let mut pushed: Vec<u32> = vec![0; zeros];
                pushed.extend((0..tail).map(|i| if i == 0 { 1 } else { rng.below(5) as u32 }));
                for &k in &pushed {
                    keys.push(k);
                    plain.push(k);
                }
                assert_eq!(plain.keys.as_slice(), pushed.as_slice());
                assert_eq!(keys.len(), pushed.len());
                assert_eq!(keys.is_empty(), pushed.is_empty());
                assert_eq!(keys.iter().collect::<Vec<_>>(), pushed);
                if tail == 0 {
                    assert!(keys.keys.is_empty(), "{zeros} zeros were stored");
                }
                for entries in [1usize, 5, 300] {
                    let width = super::bit_width(entries.saturating_sub(1) as u64);
                    let mut expected = vec![width];
                    super::put_hybrid(&mut expected, &pushed, width);
                    let mut out = Vec::new();
                    keys.put(&mut out, entries);
                    assert_eq!(
                        out, expected,
                        "{zeros} zeros, {tail} more, {entries} entries"
                    );
                    out.clear();
                    plain.put(&mut out, entries);
                    assert_eq!(out, expected, "plain: {zeros} zeros, {tail} more");
                }
                keys.clear();
                plain.clear();
                assert!(keys.is_empty());
            }
        }
    }

    #[test]
    fn definition_levels_of_no_rows_and_of_one_run_encode_as_put_levels() {
        for (level, rows) in [(0u8, 0usize), (1, 0), (1, 1), (0, 7), (1, 8), (0, 100_000)] {
            let mut levels = super::DefLevels::default();
            for _ in 0..rows {
                levels.push(level);
            }
            let (mut out, mut scratch) = (Vec::new(), Vec::new());
            levels.put(&mut out, &mut scratch);
            let mut expected = Vec::new();
            super::put_levels(&mut expected, &vec![level; rows], 1);
            assert_eq!(out, expected, "level {level} rows {rows}");
        }
    }

    /// A key holds every byte of a value up to `INLINE_KEY_BYTES` long (one
    /// changed byte changes it); longer values that share their key windows
    /// are still told apart, by the page compare, and keep distinct indices.
    #[test]
    fn value_keys_tell_values_apart() {
        use super::{ValueKey, INLINE_KEY_BYTES};
        let text = "0123456789abcdefghijklmnopqrstuvwxyz".as_bytes();
        for len in 0..=INLINE_KEY_BYTES {
            let a = &text[..len];
            assert!(ValueKey::of(a).is_whole());
            let copy = a.to_vec();
            assert_eq!(ValueKey::of(a), ValueKey::of(&copy));
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 0x20;
                assert_ne!(ValueKey::of(a), ValueKey::of(&b), "len {len} at {at}");
            }
        }
        // Long values equal in bytes 0..16 and the last 8: same key, different values.
        let long: Vec<String> = (0..300)
            .map(|i| format!("{}{i:05}{}", "p".repeat(16), "s".repeat(8)))
            .collect();
        assert_eq!(
            ValueKey::of(long[0].as_bytes()),
            ValueKey::of(long[1].as_bytes())
        );
        let mut dictionary = super::BytesDictionary::default();
        for _ in 0..2 {
            for (i, v) in long.iter().enumerate() {
                assert_eq!(dictionary.intern(v.as_bytes()), i as u32);
                // Each value right after itself: answered by the last entry.
                assert_eq!(dictionary.intern(v.as_bytes()), i as u32);
            }
        }
        assert_eq!(dictionary.len(), long.len());
    }

    /// Ids for the id tests: per scope (index) and id space, the
    /// first value seen gets 0, the next new one 1, and so on; so one id
    /// names different values in different scopes.
    #[derive(Default)]
    struct IdSpaces(HashMap<(u64, &'static str), HashMap<String, u32>>);

    impl IdSpaces {
        fn id(&mut self, scope: u64, space: &'static str, value: &str) -> u32 {
            let ids = self.0.entry((scope, space)).or_default();
            let next = ids.len() as u32;
            *ids.entry(value.to_string()).or_insert(next)
        }
    }

    /// Writes `rows` to a fresh directory; returns each file's name and bytes.
    fn written_bytes(rows: &[EnrichedRow<'_>]) -> Vec<(String, Vec<u8>)> {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = ParquetSinkConfig {
            row_group_rows: 1500,
            ..ParquetSinkConfig::new(tmp.path())
        };
        let mut sink = ParquetSink::new(config, SequentialFileNamer::new("t")).expect("sink");
        for r in rows {
            sink.append(r).expect("append");
        }
        let files = sink.close().expect("close");
        files
            .iter()
            .map(|f| {
                let name = f.path.strip_prefix(tmp.path()).expect("under root");
                let bytes = std::fs::read(&f.path).expect("read");
                (name.display().to_string(), bytes)
            })
            .collect()
    }

    /// Rows carrying ids (index ids per index version, numbered differently
    /// in each version; closed-set ids) are written byte for byte as the
    /// same rows without ids, across row groups and version changes; rows
    /// without a version carry wrong index ids, which must be ignored.
    #[test]
    fn ids_leave_the_output_unchanged() {
        let mut rng = Rng(0x5851_F42D_4C95_7F2D);
        let n = 5000;
        let data: Vec<Owned> = (0..n).map(|i| owned(&mut rng, i)).collect();
        let plain = rows_of(&mut rng, &data);
        let mut spaces = IdSpaces::default();
        let mut id_lists: Vec<Vec<u32>> = Vec::with_capacity(n);
        let mut ids: Vec<ValueIds<'static>> = Vec::with_capacity(n);
        // Each reason as five static strings at five addresses (more
        // addresses than static slots, so slots are shared and overwritten).
        let mut statics: HashMap<String, Vec<&'static str>> = HashMap::new();
        for (i, r) in plain.iter().enumerate() {
            let verdict_reason = r.verdict_reason.map(|reason| {
                let copies = statics.entry(reason.to_string()).or_insert_with(|| {
                    (0..5)
                        .map(|_| &*Box::leak(reason.to_string().into_boxed_str()))
                        .collect()
                });
                copies[i % copies.len()]
            });
            // Without a version: version 7's ids shifted by one (wrong).
            let (scope, shift) = match r.index_version {
                Some(v) => (v, 0),
                None => (7, 1),
            };
            let mut id =
                |space, value: Option<&str>| value.map(|v| spaces.id(scope, space, v) + shift);
            let gateway = id("gateway", r.gateway);
            let listener = id("listener", r.listener);
            let route = id("route", r.route);
            let actual_backend = id("backend", r.actual_backend);
            id_lists.push(
                r.expected_backends
                    .iter()
                    .flat_map(|list| list.iter())
                    .map(|b| spaces.id(scope, "backend", b) + shift)
                    .collect(),
            );
            let verdict = ["ok", "misrouted", "unknown_gateway"]
                .iter()
                .position(|v| *v == r.verdict)
                .map(|p| p as u32);
            assert!(verdict.is_some());
            ids.push(ValueIds {
                index: r.index_version,
                gateway,
                listener,
                route,
                actual_backend,
                expected_backends: &[],
                route_kind: r.route_kind.map(|_| 3),
                verdict,
                input_format: Some(1),
                actual_upstream: None,
                verdict_reason,
            });
        }
        let files = assert_written_alike(&plain, &ids, &id_lists);
        assert_eq!(files, 2);
    }

    /// Ids far past every id table (at and above the remembered range, up
    /// to `u32::MAX`) are written as the same rows without ids: such ids go
    /// by their bytes, and reading (or prefetching) their table slots must
    /// not change what is written.
    #[test]
    fn ids_past_the_id_tables_leave_the_output_unchanged() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let n = 3000;
        let data: Vec<Owned> = (0..n).map(|i| owned(&mut rng, i)).collect();
        let plain = rows_of(&mut rng, &data);
        let mut spaces = IdSpaces::default();
        let mut id_lists: Vec<Vec<u32>> = Vec::with_capacity(n);
        let mut ids: Vec<ValueIds<'static>> = Vec::with_capacity(n);
        for (i, r) in plain.iter().enumerate() {
            let scope = r.index_version.unwrap_or(0);
            // Alternately just above the remembered range and near u32::MAX.
            let far = |id: u32| match i % 2 {
                0 => super::MAX_REMEMBERED_ID + id,
                _ => u32::MAX - id,
            };
            let mut id =
                |space, value: Option<&str>| value.map(|v| far(spaces.id(scope, space, v)));
            let gateway = id("gateway", r.gateway);
            let listener = id("listener", r.listener);
            let route = id("route", r.route);
            let actual_backend = id("backend", r.actual_backend);
            id_lists.push(
                r.expected_backends
                    .iter()
                    .flat_map(|list| list.iter())
                    .map(|b| far(spaces.id(scope, "backend", b)))
                    .collect(),
            );
            ids.push(ValueIds {
                index: r.index_version,
                gateway,
                listener,
                route,
                actual_backend,
                expected_backends: &[],
                route_kind: None,
                verdict: None,
                input_format: None,
                actual_upstream: r
                    .actual_upstream
                    .map(|address| crate::sink::row::UpstreamId {
                        endpoints: 1,
                        address: far(spaces.id(1, "upstream", address)),
                    }),
                verdict_reason: None,
            });
        }
        let files = assert_written_alike(&plain, &ids, &id_lists);
        assert!(files > 0);
    }

    /// Writes `plain` as they are and with `ids` (and each row's expected
    /// backend ids from `id_lists`) attached, asserts that both give the
    /// same files byte for byte, and returns how many files there are.
    fn assert_written_alike(
        plain: &[EnrichedRow<'_>],
        ids: &[ValueIds<'_>],
        id_lists: &[Vec<u32>],
    ) -> usize {
        let with_ids: Vec<EnrichedRow<'_>> = plain
            .iter()
            .zip(ids)
            .zip(id_lists)
            .map(|((r, ids), list)| EnrichedRow {
                ids: ValueIds {
                    expected_backends: list,
                    ..*ids
                },
                ..*r
            })
            .collect();
        assert_same_files(plain, &with_ids)
    }

    /// Writes `expected` and `actual`, asserts that both give the same files
    /// byte for byte, and returns how many files there are.
    fn assert_same_files(expected: &[EnrichedRow<'_>], actual: &[EnrichedRow<'_>]) -> usize {
        let expected = written_bytes(expected);
        let actual = written_bytes(actual);
        assert_eq!(actual.len(), expected.len());
        for ((name_a, bytes_a), (name_e, bytes_e)) in actual.iter().zip(&expected) {
            assert_eq!(name_a, name_e);
            assert!(bytes_a == bytes_e, "{name_a} differs");
        }
        expected.len()
    }

    /// One id names another route, Gateway, listener and backend in each
    /// index: a column must not answer a row of index 2 with what it learnt
    /// from index 1, even when both carry the same index version (the
    /// processor's own index and a live snapshot can), and a row without an
    /// index goes by its strings.
    #[test]
    fn index_ids_are_dropped_when_the_index_changes() {
        let values = |v: u64| {
            (
                ["ns/route-a", "ns/route-b"][v as usize % 2],
                ["infra/gw-a", "infra/gw-b"][v as usize % 2],
                ["ns/svc-a", "ns/svc-b"][v as usize % 2],
            )
        };
        let expected_lists = [["ns/svc-a"], ["ns/svc-b"]];
        let zero = [0u32];
        let versions = [Some(1), Some(2), Some(2), None, Some(1), Some(3), Some(1)];
        let rows: Vec<EnrichedRow<'_>> = versions
            .iter()
            .map(|&version| {
                // Without a version the strings are version 2's, the ids 0.
                let (route, gateway, backend) = values(version.unwrap_or(2));
                let list = &expected_lists[version.unwrap_or(2) as usize % 2];
                EnrichedRow {
                    event_time: Some(1_714_546_800_000_000),
                    gateway: Some(gateway),
                    listener: Some(route),
                    route: Some(route),
                    actual_backend: Some(backend),
                    expected_backends: Some(StrList::Borrowed(list)),
                    verdict: "ok",
                    input_format: "envoy_json",
                    // Every index has the same version: only `ids.index`
                    // tells them apart.
                    index_version: Some(1),
                    ids: ValueIds {
                        index: version,
                        gateway: Some(0),
                        listener: Some(0),
                        route: Some(0),
                        actual_backend: Some(0),
                        expected_backends: &zero,
                        ..ValueIds::default()
                    },
                    ..EnrichedRow::default()
                }
            })
            .collect();
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut sink = ParquetSink::new(
            ParquetSinkConfig::new(tmp.path()),
            SequentialFileNamer::new("v"),
        )
        .expect("sink");
        for r in &rows {
            sink.append(r).expect("append");
        }
        let files = sink.close().expect("close");
        assert_eq!(files.len(), 1);
        let batch =
            ParquetRecordBatchReaderBuilder::try_new(File::open(&files[0].path).expect("open"))
                .expect("reader")
                .build()
                .expect("build")
                .next()
                .expect("one batch")
                .expect("batch");
        let strings = |name: &str| -> Vec<String> {
            let column = batch.column_by_name(name).expect(name);
            let column = column
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .expect("strings");
            (0..column.len())
                .map(|i| column.value(i).to_string())
                .collect()
        };
        let items: Vec<String> = {
            let column = batch.column_by_name("expected_backends").expect("list");
            let list = column
                .as_any()
                .downcast_ref::<arrow_array::ListArray>()
                .expect("list");
            (0..list.len())
                .map(|i| {
                    let item = list.value(i);
                    let item = item
                        .as_any()
                        .downcast_ref::<arrow_array::StringArray>()
                        .expect("strings");
                    assert_eq!(item.len(), 1);
                    item.value(0).to_string()
                })
                .collect()
        };
        let want =
            |pick: fn((&'static str, &'static str, &'static str)) -> &'static str| -> Vec<String> {
                versions
                    .iter()
                    .map(|v| pick(values(v.unwrap_or(2))).to_string())
                    .collect()
            };
        assert_eq!(strings("route"), want(|v| v.0));
        assert_eq!(strings("listener"), want(|v| v.0));
        assert_eq!(strings("gateway"), want(|v| v.1));
        assert_eq!(strings("actual_backend"), want(|v| v.2));
        assert_eq!(items, want(|v| v.2));
    }

    /// Rows whose upstream carries an endpoint-index id are written byte for
    /// byte as the same rows without ids, across row groups and endpoint
    /// index changes that give each id another text (an id remembered from
    /// the previous index would write the wrong upstream).
    #[test]
    fn upstream_ids_leave_the_output_unchanged() {
        let texts: Vec<String> = (0..50).map(|i| format!("10.0.{i}.7:8080")).collect();
        let attempts: Vec<[&str; 1]> = texts.iter().map(|t| [t.as_str()]).collect();
        // Endpoint index instance per block of 700 rows: the same instance
        // comes back after another one.
        let instances = [1u64, 2, 1, 3, 3, 2];
        let n = 700 * instances.len();
        let mut plain = Vec::with_capacity(n);
        let mut with_ids = Vec::with_capacity(n);
        for i in 0..n {
            let instance = instances[i / 700];
            let text = (i * 7 + i / 13) % texts.len();
            let row = EnrichedRow {
                event_time: Some(1_714_546_800_000_000 + i as i64),
                actual_upstream: Some(&texts[text]),
                upstream_attempts: StrList::Borrowed(&attempts[text]),
                verdict: "ok",
                input_format: "envoy_json",
                ..EnrichedRow::default()
            };
            // Each instance numbers the texts differently.
            let address = ((text as u64 + instance * 17) % texts.len() as u64) as u32;
            plain.push(row);
            with_ids.push(EnrichedRow {
                ids: ValueIds {
                    actual_upstream: Some(crate::sink::row::UpstreamId {
                        endpoints: instance,
                        address,
                    }),
                    ..ValueIds::default()
                },
                ..row
            });
        }
        assert!(assert_same_files(&plain, &with_ids) > 0);
    }

    /// A dictionary larger than the page limit falls back to `PLAIN` values.
    #[test]
    fn oversized_dictionary_is_written_plain() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut sink = ParquetSink::new(
            ParquetSinkConfig::new(tmp.path()),
            SequentialFileNamer::new("d"),
        )
        .expect("sink");
        let hosts: Vec<String> = (0..1200)
            .map(|i| format!("{i:04}{}", "h".repeat(1000)))
            .collect();
        for host in &hosts {
            sink.append(&EnrichedRow {
                event_time: Some(1_714_546_800_000_000),
                host: Some(host),
                verdict: "ok",
                input_format: "envoy_json",
                ..EnrichedRow::default()
            })
            .expect("append");
        }
        let files = sink.close().expect("close");
        let reader = SerializedFileReader::new(File::open(&files[0].path).expect("open"))
            .expect("parquet reader");
        let host = &reader.metadata().row_group(0).columns()[3];
        assert!(host.dictionary_page_offset().is_none());
        let batch =
            ParquetRecordBatchReaderBuilder::try_new(File::open(&files[0].path).expect("open"))
                .expect("reader")
                .with_batch_size(2000)
                .build()
                .expect("build")
                .next()
                .expect("one batch")
                .expect("batch");
        let column = batch.column(3);
        let strings = column
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .expect("strings");
        for (i, host) in hosts.iter().enumerate() {
            assert_eq!(strings.value(i), host);
        }
    }
}
