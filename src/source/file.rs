//! Line batches from files (plain or gzip), glob patterns and stdin.
//!
//! Input is read in large chunks and split into lines with `memchr`; a batch
//! borrows every line from one buffer, so the per-record path copies nothing.
//! Each line keeps its byte offset in the (decompressed) stream and its 1-based
//! line number, which the dead letters and the `source_offset` column report.
//! A line longer than the configured maximum is not buffered whole: it is
//! reported as [`LineBatch::oversized`] and skipped to its end.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

/// Why input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Opening or reading failed.
    #[error("cannot read {name}: {source}")]
    Io {
        /// File name (or `-`).
        name: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A glob pattern is malformed or matched nothing.
    #[error("input pattern {pattern:?}: {why}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// What is wrong.
        why: String,
    },
}

/// One input: a file path, or stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSpec {
    /// Standard input (`-`).
    Stdin,
    /// A file.
    File(PathBuf),
}

impl InputSpec {
    /// The name used in output columns and messages.
    pub fn name(&self) -> String {
        match self {
            InputSpec::Stdin => "-".to_string(),
            InputSpec::File(p) => p.display().to_string(),
        }
    }
}

/// Expands inputs: `-` is stdin, a path with `*`, `?` or `[` is a glob (matches
/// sorted), anything else must exist as given.
pub fn expand_inputs(patterns: &[String]) -> Result<Vec<InputSpec>, SourceError> {
    let mut out = Vec::new();
    for pattern in patterns {
        if pattern == "-" {
            out.push(InputSpec::Stdin);
        } else if pattern.contains(['*', '?', '[']) {
            let matches = glob::glob(pattern).map_err(|e| SourceError::Pattern {
                pattern: pattern.clone(),
                why: e.to_string(),
            })?;
            let mut files: Vec<PathBuf> = matches
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            if files.is_empty() {
                return Err(SourceError::Pattern {
                    pattern: pattern.clone(),
                    why: "matched no file".into(),
                });
            }
            files.sort();
            out.extend(files.into_iter().map(InputSpec::File));
        } else {
            let path = PathBuf::from(pattern);
            std::fs::metadata(&path).map_err(|source| SourceError::Io {
                name: pattern.clone(),
                source,
            })?;
            out.push(InputSpec::File(path));
        }
    }
    Ok(out)
}

/// A line longer than the maximum, skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OversizedLine {
    /// Byte offset of the line start.
    pub offset: u64,
    /// 1-based line number.
    pub line: u64,
    /// Its length in bytes (without the newline).
    pub len: u64,
}

/// A batch of lines borrowed from one buffer.
#[derive(Debug, Default)]
pub struct LineBatch {
    /// Read buffer; only `buf[..filled]` holds input. Its length only grows
    /// (the bytes past `filled` are stale input, kept initialised so a read
    /// needs no zeroing: `resize` per 1 MiB read cost ~470 instructions per
    /// 400-byte line).
    buf: Vec<u8>,
    /// Bytes of `buf` holding this batch's input.
    filled: usize,
    /// `(start, end, line number)` of each line in `buf` (no newline, no trailing `\r`).
    spans: Vec<(usize, usize, u64)>,
    /// Stream offset of `buf[0]`.
    base_offset: u64,
    /// Lines over the maximum length, skipped.
    pub oversized: Vec<OversizedLine>,
}

/// One line of a batch.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// The bytes.
    pub bytes: &'a [u8],
    /// Byte offset in the stream.
    pub offset: u64,
    /// 1-based line number.
    pub number: u64,
}

impl LineBatch {
    /// Number of lines.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when the batch holds no line.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The lines, in order.
    pub fn lines(&self) -> impl Iterator<Item = Line<'_>> + '_ {
        self.spans.iter().map(move |&(s, e, number)| Line {
            bytes: self.buf[s..e]
                .strip_suffix(b"\r")
                .unwrap_or(&self.buf[s..e]),
            offset: self.base_offset + s as u64,
            number,
        })
    }
}

/// Bytes asked of the input per read (and so about the bytes of a batch).
///
/// A quarter of this CPU's L2 (1 MiB a core on the bench VM): the batch's
/// lines are still cached when they are judged, and the read does not evict
/// the index and dictionary lines the judging reads. Against 1 MiB reads:
/// 3-4 % less CPU on the replay bench's compact lines (round 17; 64 and
/// 128 KiB the same as 256 within the noise).
pub const READ_CHUNK_BYTES: usize = 256 << 10;

/// Reads line batches from one input.
pub struct LineReader {
    name: String,
    reader: Box<dyn Read + Send>,
    /// Bytes read but not yet handed out (a partial line).
    carry: Vec<u8>,
    /// Stream offset of `carry[0]`.
    carry_offset: u64,
    next_line: u64,
    chunk_size: usize,
    max_line: usize,
    /// Skipping the rest of an oversized line.
    skipping: Option<OversizedLine>,
    eof: bool,
    bytes_read: u64,
}

impl LineReader {
    /// Opens an input; `.gz` files (by name or by magic bytes) are decompressed.
    pub fn open(input: &InputSpec, max_line: usize) -> Result<LineReader, SourceError> {
        let name = input.name();
        let reader: Box<dyn Read + Send> = match input {
            InputSpec::Stdin => Box::new(std::io::stdin()),
            InputSpec::File(path) => open_file(path).map_err(|source| SourceError::Io {
                name: name.clone(),
                source,
            })?,
        };
        Ok(Self::from_reader(name, reader, max_line))
    }

    /// Wraps any reader (tests, in-memory input).
    pub fn from_reader(name: String, reader: Box<dyn Read + Send>, max_line: usize) -> LineReader {
        LineReader {
            name,
            reader,
            carry: Vec::new(),
            carry_offset: 0,
            next_line: 1,
            chunk_size: READ_CHUNK_BYTES,
            max_line: max_line.max(1),
            skipping: None,
            eof: false,
            bytes_read: 0,
        }
    }

    /// Sets the read chunk size (default [`READ_CHUNK_BYTES`]).
    pub fn with_chunk_size(mut self, size: usize) -> Self {
        self.chunk_size = size.max(1);
        self
    }

    /// Input name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes read so far (decompressed).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Fills `batch` with the next lines. Returns `false` at end of input (the
    /// batch may still hold lines then: a last line without newline).
    pub fn next_batch(&mut self, batch: &mut LineBatch) -> Result<bool, SourceError> {
        batch.spans.clear();
        batch.oversized.clear();
        // The partial line carried over goes first (usually shorter than a line).
        let carried = self.carry.len();
        if batch.buf.len() < carried {
            batch.buf.resize(carried, 0);
        }
        batch.buf[..carried].copy_from_slice(&self.carry);
        batch.filled = carried;
        batch.base_offset = self.carry_offset;
        loop {
            if self.eof {
                break;
            }
            let start = batch.filled;
            let want = start + self.chunk_size;
            if batch.buf.len() < want {
                batch.buf.resize(want, 0);
            }
            let n = loop {
                match self.reader.read(&mut batch.buf[start..want]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        return Err(SourceError::Io {
                            name: self.name.clone(),
                            source,
                        });
                    }
                }
            };
            batch.filled = start + n;
            self.bytes_read += n as u64;
            if n == 0 {
                self.eof = true;
                break;
            }
            if memchr::memchr(b'\n', &batch.buf[start..batch.filled]).is_some()
                || batch.filled > self.max_line
            {
                break;
            }
        }
        // Split complete lines.
        let mut pos = 0;
        let buf = &batch.buf[..batch.filled];
        while pos < buf.len() {
            let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) else {
                break;
            };
            let end = pos + nl;
            self.finish_line(
                &mut batch.spans,
                &mut batch.oversized,
                pos,
                end,
                batch.base_offset,
            );
            pos = end + 1;
        }
        let rest = &batch.buf[pos..batch.filled];
        let rest_offset = batch.base_offset + pos as u64;
        self.carry.clear();
        if self.eof {
            if !rest.is_empty() || self.skipping.is_some() {
                let (s, e) = (pos, batch.filled);
                self.finish_line(
                    &mut batch.spans,
                    &mut batch.oversized,
                    s,
                    e,
                    batch.base_offset,
                );
            }
            self.carry_offset = batch.base_offset + batch.filled as u64;
        } else if rest.len() > self.max_line || self.skipping.is_some() {
            // An oversized line in progress: drop what we have, remember it.
            let skip = self.skipping.get_or_insert(OversizedLine {
                offset: rest_offset,
                line: self.next_line,
                len: 0,
            });
            skip.len += rest.len() as u64;
            self.carry_offset = rest_offset + rest.len() as u64;
        } else {
            self.carry.extend_from_slice(rest);
            self.carry_offset = rest_offset;
        }
        Ok(!self.eof || !self.carry.is_empty())
    }

    /// Records the line `buf[s..e]` (or completes an oversized one).
    fn finish_line(
        &mut self,
        spans: &mut Vec<(usize, usize, u64)>,
        oversized: &mut Vec<OversizedLine>,
        s: usize,
        e: usize,
        base: u64,
    ) {
        if let Some(mut skip) = self.skipping.take() {
            skip.len += (e - s) as u64;
            oversized.push(skip);
            self.next_line += 1;
            return;
        }
        let len = e - s;
        if len > self.max_line {
            oversized.push(OversizedLine {
                offset: base + s as u64,
                line: self.next_line,
                len: len as u64,
            });
        } else {
            spans.push((s, e, self.next_line));
        }
        self.next_line += 1;
    }
}

fn open_file(path: &Path) -> std::io::Result<Box<dyn Read + Send>> {
    let mut file = File::open(path)?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic)?;
    drop(file);
    let file = File::open(path)?;
    let gz = path.extension().is_some_and(|e| e == "gz") || (n == 2 && magic == [0x1f, 0x8b]);
    Ok(if gz {
        Box::new(MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file)))
    } else {
        Box::new(file)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(
        data: &[u8],
        chunk: usize,
        max_line: usize,
    ) -> (Vec<(String, u64, u64)>, Vec<OversizedLine>) {
        drain(reader_of(data, max_line).with_chunk_size(chunk))
    }

    fn reader_of(data: &[u8], max_line: usize) -> LineReader {
        LineReader::from_reader(
            "t".into(),
            Box::new(std::io::Cursor::new(data.to_vec())),
            max_line,
        )
    }

    /// Every line (text, offset, number) and every oversized line of `reader`.
    fn drain(mut reader: LineReader) -> (Vec<(String, u64, u64)>, Vec<OversizedLine>) {
        let mut batch = LineBatch::default();
        let mut lines = Vec::new();
        let mut oversized = Vec::new();
        loop {
            let more = reader.next_batch(&mut batch).unwrap();
            for l in batch.lines() {
                lines.push((
                    String::from_utf8_lossy(l.bytes).into_owned(),
                    l.offset,
                    l.number,
                ));
            }
            oversized.extend(batch.oversized.iter().copied());
            if !more {
                break;
            }
        }
        (lines, oversized)
    }

    #[test]
    fn lines_offsets_and_numbers_for_any_chunk_size() {
        let data = b"alpha\nbeta\r\n\ngamma";
        for chunk in [1, 2, 3, 7, 64] {
            let (lines, oversized) = read_all(data, chunk, 100);
            assert!(oversized.is_empty());
            assert_eq!(
                lines,
                vec![
                    ("alpha".to_string(), 0, 1),
                    ("beta".to_string(), 6, 2),
                    ("".to_string(), 12, 3),
                    ("gamma".to_string(), 13, 4)
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn lines_longer_than_a_read_are_whole_at_the_default_sizes() {
        // The default read (256 KiB) is shorter than the default longest
        // line (1 MiB): a line spanning reads still comes out whole, and one
        // over the limit is reported, with the lines around them intact.
        let max = crate::decode::DEFAULT_MAX_LINE_LEN;
        assert!(READ_CHUNK_BYTES < max);
        let long = "y".repeat(READ_CHUNK_BYTES * 2 + 17);
        let too_long = "z".repeat(max + 1);
        let data = format!("a\n{long}\nb\n{too_long}\nc\n");
        let (lines, oversized) = drain(reader_of(data.as_bytes(), max));
        let lines: Vec<_> = lines.iter().map(|(t, o, n)| (t.len(), *o, *n)).collect();
        let long_at = 2u64;
        let b_at = long_at + long.len() as u64 + 1;
        let c_at = b_at + 2 + too_long.len() as u64 + 1;
        assert_eq!(
            lines,
            vec![
                (1, 0, 1),
                (long.len(), long_at, 2),
                (1, b_at, 3),
                (1, c_at, 5)
            ]
        );
        assert_eq!(
            oversized,
            vec![OversizedLine {
                offset: b_at + 2,
                line: 4,
                len: too_long.len() as u64
            }]
        );
    }

    #[test]
    fn oversized_lines_are_reported_and_skipped() {
        let long = "x".repeat(50);
        let data = format!("ok1\n{long}\nok2\n{long}");
        for chunk in [4, 16, 1000] {
            let (lines, oversized) = read_all(data.as_bytes(), chunk, 10);
            let texts: Vec<_> = lines.iter().map(|l| (l.0.as_str(), l.2)).collect();
            assert_eq!(texts, vec![("ok1", 1), ("ok2", 3)], "chunk {chunk}");
            assert_eq!(oversized.len(), 2, "chunk {chunk}");
            assert_eq!(
                oversized[0],
                OversizedLine {
                    offset: 4,
                    line: 2,
                    len: 50
                }
            );
            assert_eq!(oversized[1].line, 4);
            assert_eq!(oversized[1].len, 50);
        }
    }

    #[test]
    fn gzip_files_and_globs() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let gz_path = dir.path().join("a.log.gz");
        let mut enc = flate2::write::GzEncoder::new(
            File::create(&gz_path).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(b"one\ntwo\n").unwrap();
        enc.finish().unwrap();
        std::fs::write(dir.path().join("b.log"), "three\n").unwrap();
        let pattern = format!("{}/*.log*", dir.path().display());
        let inputs = expand_inputs(&[pattern]).unwrap();
        assert_eq!(inputs.len(), 2);
        let mut all = Vec::new();
        for input in &inputs {
            let (lines, _) = drain(LineReader::open(input, 1024).unwrap());
            all.extend(lines.into_iter().map(|(text, _, _)| text));
        }
        assert_eq!(all, vec!["one", "two", "three"]);
        assert!(matches!(
            expand_inputs(&[format!("{}/*.none", dir.path().display())]),
            Err(SourceError::Pattern { .. })
        ));
        assert!(matches!(
            expand_inputs(&["/definitely/missing.log".to_string()]),
            Err(SourceError::Io { .. })
        ));
    }
}
