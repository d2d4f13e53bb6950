//! Dead letters (schema v1, `schemas/deadletter-v1.schema.json`): input that could
//! not be processed, kept with a reason code, where it came from and its raw
//! bytes, and the JSON-lines [`DeadLetterFileSink`] with per-reason counters.
//!
//! Raw bytes are stored losslessly: as a string when they are valid UTF-8
//! (`raw_encoding: "utf8"`), otherwise base64 (RFC 4648, with padding;
//! `raw_encoding: "base64"`). They are cut to a maximum length (default 64 KiB)
//! and `truncated` says so; a cut never splits a UTF-8 character. `raw_len` is
//! always the original length.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::jsonl::JsonLinesFile;
use super::SinkError;
use crate::redact::Redaction;

/// Version of the dead-letter schema written in [`DeadLetter::schema_version`].
pub const DEADLETTER_SCHEMA_VERSION: u32 = 1;

/// File name of the dead-letter JSON-lines file.
pub const DEADLETTERS_FILE_NAME: &str = "deadletters.jsonl";

/// Default maximum of raw bytes kept per dead letter (64 KiB).
pub const DEFAULT_MAX_RAW_BYTES: usize = 64 * 1024;

/// Where the bad input came from. Serialized with a `kind` tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeadLetterSource {
    /// A file (replay, backfill).
    File {
        /// File path.
        path: String,
        /// Byte offset of the record's first byte.
        byte_offset: Option<u64>,
        /// 1-based line number.
        line: Option<u64>,
    },
    /// Standard input.
    Stdin {
        /// Byte offset of the record's first byte.
        byte_offset: Option<u64>,
        /// 1-based line number.
        line: Option<u64>,
    },
    /// A Kafka message.
    Kafka {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
    },
}

/// How [`DeadLetter::raw`] is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RawEncoding {
    /// The bytes as a UTF-8 string.
    Utf8,
    /// The bytes in standard base64 with padding.
    Base64,
}

/// One record that could not be processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// Always [`DEADLETTER_SCHEMA_VERSION`] (1).
    pub schema_version: u32,
    /// Stable reason code, e.g. `envoy_json_invalid`, `line_too_long`.
    pub reason: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// Where the record came from.
    pub source: DeadLetterSource,
    /// The raw bytes (possibly truncated), encoded per `raw_encoding`.
    pub raw: String,
    /// Encoding of `raw`.
    pub raw_encoding: RawEncoding,
    /// Length of the original record in bytes.
    pub raw_len: u64,
    /// True when `raw` holds only a prefix of the record.
    pub truncated: bool,
}

impl DeadLetter {
    /// A dead letter for `raw`, keeping at most `max_raw_bytes` of it.
    pub fn new(
        reason: &'static str,
        message: impl Into<String>,
        source: DeadLetterSource,
        raw: &[u8],
        max_raw_bytes: usize,
    ) -> Self {
        Self::build(reason, message.into(), source, raw, max_raw_bytes, None)
    }

    /// As [`new`](Self::new), with the values `redaction` recognises masked in
    /// the kept bytes and in `message`. The cut comes first, so only the kept
    /// prefix is scanned and `truncated` compares original lengths; a value
    /// the cut splits still runs to the end of the kept bytes and is masked.
    pub fn redacted(
        reason: &'static str,
        message: &str,
        source: DeadLetterSource,
        raw: &[u8],
        max_raw_bytes: usize,
        redaction: &Redaction,
    ) -> Self {
        let message = redaction.apply_str(message).into_owned();
        Self::build(reason, message, source, raw, max_raw_bytes, Some(redaction))
    }

    fn build(
        reason: &'static str,
        message: String,
        source: DeadLetterSource,
        raw: &[u8],
        max_raw_bytes: usize,
        redaction: Option<&Redaction>,
    ) -> Self {
        let mut kept = &raw[..raw.len().min(max_raw_bytes)];
        let truncated = kept.len() < raw.len();
        // The cut split a character at the end: back off to the last whole one.
        if truncated {
            if let Err(e) = std::str::from_utf8(kept) {
                if e.error_len().is_none() {
                    kept = &kept[..e.valid_up_to()];
                }
            }
        }
        let masked = redaction.map(|r| r.apply(kept));
        let kept = masked.as_deref().unwrap_or(kept);
        let (raw_text, raw_encoding) = match std::str::from_utf8(kept) {
            Ok(text) => (text.to_string(), RawEncoding::Utf8),
            Err(_) => (base64_encode(kept), RawEncoding::Base64),
        };
        Self {
            schema_version: DEADLETTER_SCHEMA_VERSION,
            reason,
            message,
            source,
            raw: raw_text,
            raw_encoding,
            raw_len: raw.len() as u64,
            truncated,
        }
    }
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648 §4) with `=` padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = [18, 12, 6, 0].map(|shift| BASE64_ALPHABET[((n >> shift) & 63) as usize]);
        for (i, s) in symbols.iter().enumerate() {
            out.push(if i <= chunk.len() {
                char::from(*s)
            } else {
                '='
            });
        }
    }
    out
}

/// A destination for dead letters (a file now; a Kafka topic later).
pub trait DeadLetterSink {
    /// Writes one dead letter.
    fn send(&mut self, dead_letter: &DeadLetter) -> Result<(), SinkError>;
    /// Makes every dead letter sent so far durable.
    fn flush(&mut self) -> Result<(), SinkError>;
    /// Raw bytes kept per dead letter by [`record`](Self::record) (default 64 KiB).
    fn max_raw_bytes(&self) -> usize {
        64 * 1024
    }
    /// What is masked in the raw bytes and the message.
    fn redaction(&self) -> &Redaction;
    /// Builds a dead letter (cut to [`max_raw_bytes`](Self::max_raw_bytes), then
    /// secrets masked per [`redaction`](Self::redaction)) and sends it.
    fn record(
        &mut self,
        reason: &'static str,
        message: String,
        source: DeadLetterSource,
        raw: &[u8],
    ) -> Result<(), SinkError> {
        let dead_letter = DeadLetter::redacted(
            reason,
            &message,
            source,
            raw,
            self.max_raw_bytes(),
            self.redaction(),
        );
        self.send(&dead_letter)
    }
}

/// Appends dead letters as JSON lines to a file (conventionally
/// [`DEADLETTERS_FILE_NAME`]) and counts them per reason.
#[derive(Debug)]
pub struct DeadLetterFileSink {
    out: JsonLinesFile,
    max_raw_bytes: usize,
    redaction: Redaction,
    counts: BTreeMap<&'static str, u64>,
}

impl DeadLetterFileSink {
    /// Opens (creating if needed) `path` for appending; raw bytes are cut to
    /// `max_raw_bytes` by [`record`](Self::record).
    pub fn open(path: impl AsRef<Path>, max_raw_bytes: usize) -> Result<Self, SinkError> {
        Ok(Self {
            out: JsonLinesFile::open(path)?,
            max_raw_bytes,
            redaction: Redaction::default(),
            counts: BTreeMap::new(),
        })
    }

    /// Masks what `redaction` recognises (instead of [`Redaction::default`]).
    pub fn with_redaction(mut self, redaction: Redaction) -> Self {
        self.redaction = redaction;
        self
    }

    /// Builds a dead letter (secrets masked, `raw` cut to this sink's
    /// maximum) and writes it.
    pub fn record(
        &mut self,
        reason: &'static str,
        message: impl Into<String>,
        source: DeadLetterSource,
        raw: &[u8],
    ) -> Result<(), SinkError> {
        DeadLetterSink::record(self, reason, message.into(), source, raw)
    }

    /// Dead letters written, per reason code.
    pub fn counts(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts
    }

    /// Dead letters written in total.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Flushes, fsyncs and closes the file; returns the per-reason counts.
    pub fn close(mut self) -> Result<BTreeMap<&'static str, u64>, SinkError> {
        DeadLetterSink::flush(&mut self)?;
        Ok(std::mem::take(&mut self.counts))
    }
}

impl DeadLetterSink for DeadLetterFileSink {
    fn max_raw_bytes(&self) -> usize {
        self.max_raw_bytes
    }

    fn redaction(&self) -> &Redaction {
        &self.redaction
    }

    fn send(&mut self, dead_letter: &DeadLetter) -> Result<(), SinkError> {
        self.out.write(dead_letter)?;
        *self.counts.entry(dead_letter.reason).or_insert(0) += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLETTER_V1_SCHEMA: &str = include_str!("../../schemas/deadletter-v1.schema.json");

    fn file_source(line: u64) -> DeadLetterSource {
        DeadLetterSource::File {
            path: "/logs/a.log".into(),
            byte_offset: Some(10),
            line: Some(line),
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(input.as_bytes()), expected);
        }
        assert_eq!(base64_encode(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn truncates_to_max_and_flags_it() {
        let raw = vec![b'x'; 100_000];
        let dl = DeadLetter::new(
            "line_too_long",
            "line exceeds limit",
            file_source(1),
            &raw,
            DEFAULT_MAX_RAW_BYTES,
        );
        assert!(dl.truncated);
        assert_eq!(dl.raw.len(), 65_536);
        assert_eq!(dl.raw_len, 100_000);
        assert_eq!(dl.raw_encoding, RawEncoding::Utf8);

        let short = DeadLetter::new("bad", "m", file_source(2), b"abc", 16);
        assert!(!short.truncated);
        assert_eq!(short.raw, "abc");
    }

    #[test]
    fn truncation_never_splits_a_character_and_binary_goes_base64() {
        // "é" is two bytes; a 2-byte cut of "aé" would split it.
        let dl = DeadLetter::new("bad", "m", file_source(1), "aé".as_bytes(), 2);
        assert!(dl.truncated);
        assert_eq!(dl.raw, "a");
        assert_eq!(dl.raw_encoding, RawEncoding::Utf8);

        let binary = DeadLetter::new("bad", "m", file_source(1), &[0x80, 0x81, b'a'], 64);
        assert_eq!(binary.raw_encoding, RawEncoding::Base64);
        assert_eq!(binary.raw, "gIFh");
        assert!(!binary.truncated);
    }

    #[test]
    fn file_sink_writes_lines_counts_reasons_and_matches_schema() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join(DEADLETTERS_FILE_NAME);
        let mut sink = DeadLetterFileSink::open(&path, 8).expect("open");
        sink.record(
            "envoy_json_invalid",
            "expected ':'",
            file_source(3),
            b"{\"a\" 1}",
        )
        .expect("record");
        sink.record(
            "envoy_json_invalid",
            "eof",
            DeadLetterSource::Kafka {
                topic: "gw-logs".into(),
                partition: 2,
                offset: 77,
            },
            b"{\"start_time\":",
        )
        .expect("record");
        sink.record(
            "no_timestamp",
            "missing",
            DeadLetterSource::Stdin {
                byte_offset: None,
                line: Some(9),
            },
            b"-",
        )
        .expect("record");
        assert_eq!(sink.total(), 3);
        let counts = sink.close().expect("close");
        assert_eq!(counts.get("envoy_json_invalid"), Some(&2));
        assert_eq!(counts.get("no_timestamp"), Some(&1));

        let schema: serde_json::Value =
            serde_json::from_str(DEADLETTER_V1_SCHEMA).expect("schema is JSON");
        let required: Vec<&str> = schema["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 3);
        for line in &lines {
            for key in &required {
                assert!(line.get(*key).is_some(), "missing {key}");
            }
        }
        assert_eq!(lines[1]["source"]["kind"], "kafka");
        assert_eq!(lines[1]["source"]["offset"], 77);
        assert_eq!(lines[1]["truncated"], true);
        assert_eq!(lines[1]["raw"], "{\"start_");
        assert_eq!(lines[0]["source"]["line"], 3);
    }
}
