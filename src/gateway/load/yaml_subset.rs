//! A fast reader for the plain subset of YAML that manifests are written in.
//!
//! Loading manifests through `serde_yaml` costs about 650 instructions per
//! byte: libyaml's scanner, then a `serde_yaml::Value`, then a JSON value. This
//! module reads the shapes that `kubectl get -o yaml` and hand-written
//! manifests use (block mappings and sequences, one-line flow collections,
//! plain and one-line quoted scalars, literal block scalars such as
//! `last-applied-configuration: |`, comments, `---` separators) into
//! [`Node`]s that borrow their strings from the text, at a small fraction of
//! that cost; the caller types them straight into the model.
//!
//! It never decides anything on its own: a document that leaves the subset
//! (anchors, aliases, tags, folded or multi-line scalars, complex or
//! non-string keys, a key given twice, anything unusual) is handed back as
//! [`Declined::Document`] with its text, which the caller reads alone with
//! serde_yaml; a text with tabs or non-ASCII characters, directives or `...`
//! is not read here at all, and the caller loads it through serde_yaml as
//! before, which then accepts or rejects it with its own message. So for
//! every document it reads, the node must be exactly the JSON that
//! `serde_json::to_value(serde_yaml::Value)` gives (`NodeRef::to_value`); the differential tests
//! below (repository manifests, edge cases, generated and edited text) pin
//! that, document by document too.

use std::borrow::Cow;

use serde_json::Number;

use super::yaml_node::{Node, Tree, TreeBuilder};

/// Deepest nesting of collections read here; deeper documents go to `serde_yaml`
/// (whose own limit is 128).
const MAX_DEPTH: usize = 64;

/// Longest key read here: libyaml rejects an implicit (simple) key longer than
/// 1024 characters, so longer ones go to it with some margin.
const MAX_KEY_LEN: usize = 1000;

/// The reader gave up on a document: it is outside the subset (or has a
/// repeated key). Carries nothing: the full path reports the real reason.
#[derive(Debug)]
struct OutsideSubset;

type Read<T> = Result<T, OutsideSubset>;

/// One line that holds content (blank and comment-only lines are dropped).
#[derive(Clone, Copy)]
struct Line<'a> {
    /// Number of leading spaces.
    indent: usize,
    /// The whole line, without its line break.
    text: &'a str,
    /// Its index among all the document's lines (for literal block scalars,
    /// whose blank and `#` lines are content).
    raw: usize,
}

/// Why a document was not read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Declined<'a> {
    /// This document, whose whole text is given, is outside the subset (or
    /// has a repeated key); the documents after it are still read.
    Document(&'a str),
    /// The text has a directive (`%`), a document end marker (`...`) or
    /// content after `---`, where this reader does not split documents; no
    /// more documents are read.
    Text,
}

/// The documents of a text, read one at a time so that only one is held as a
/// tree at once. An empty document reads as [`Node::Null`].
///
/// The text is printable ASCII, so its only line break is `\n` and every
/// `---` line found here is a document boundary for libyaml too, unless an
/// earlier document is malformed (then serde_yaml, given that document
/// alone, rejects it).
pub(super) struct Documents<'a> {
    /// The whole text.
    text: &'a str,
    /// Where the next document starts in `text`.
    offset: usize,
    /// The lines after the last document read; `None` once all are read.
    rest: Option<LineSplit<'a>>,
    /// The current document's content lines (kept to reuse the allocation).
    lines: Vec<Line<'a>>,
    /// All of the current document's lines.
    raw: Vec<&'a str>,
    /// Whether the text ends with a line break (else its last line has none).
    ends_with_newline: bool,
    /// Builds each document's tree, reusing the allocations of the last.
    builder: TreeBuilder<'a>,
}

/// The documents of `text`, or `None` when it holds characters this reader
/// leaves to serde_yaml.
pub(super) fn documents(text: &str) -> Option<Documents<'_>> {
    // Printable ASCII and line feeds only: no tabs, carriage returns, BOM,
    // control or non-ASCII characters, whose YAML rules (line breaks such as
    // U+2028, non-printable rejections) this reader does not replicate.
    is_printable_ascii(text.as_bytes()).then(|| Documents {
        text,
        offset: 0,
        rest: Some(LineSplit { text, next: 0 }),
        lines: Vec::new(),
        raw: Vec::new(),
        ends_with_newline: text.ends_with('\n'),
        builder: TreeBuilder::default(),
    })
}

/// The lines of a text as `text.split('\n')` gives them (the last one is
/// what follows the last line feed, possibly empty), found with `memchr`.
struct LineSplit<'a> {
    text: &'a str,
    /// Where the next line starts.
    next: usize,
}

impl<'a> Iterator for LineSplit<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let start = self.next;
        let rest = self.text.get(start..)?;
        match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(len) => {
                self.next = start + len + 1;
                Some(&rest[..len])
            }
            None => {
                // Past the end: no more lines.
                self.next = self.text.len() + 1;
                Some(rest)
            }
        }
    }
}

/// Where ` #` (a comment after a plain scalar) first occurs in `rest`: the
/// position of its space.
fn comment_start(rest: &str) -> Option<usize> {
    let bytes = rest.as_bytes();
    memchr::memchr_iter(b'#', bytes)
        .find(|&i| i > 0 && bytes[i - 1] == b' ')
        .map(|i| i - 1)
}

/// Whether every byte is printable ASCII or a line feed. No early exit within
/// a chunk, so that the loop compiles to vector instructions.
fn is_printable_ascii(bytes: &[u8]) -> bool {
    bytes.chunks(64).all(|chunk| {
        chunk.iter().fold(true, |ok, &b| {
            ok & ((b == b'\n') | (b.wrapping_sub(b' ') < 95))
        })
    })
}

impl<'a> Documents<'a> {
    /// Hands back a tree this reader gave, so that its allocations serve the
    /// next documents.
    pub(super) fn recycle(&mut self, tree: Tree<'a>) {
        self.builder.recycle(tree);
    }
}

impl<'a> Iterator for Documents<'a> {
    type Item = Result<Tree<'a>, Declined<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest.as_mut()?;
        self.lines.clear();
        self.raw.clear();
        let start = self.offset;
        let end = loop {
            let Some(text) = rest.next() else {
                self.rest = None;
                break self.text.len();
            };
            let line_start = self.offset;
            self.offset = (line_start + text.len() + 1).min(self.text.len());
            if let Some(after) = text.strip_prefix("---") {
                if after.is_empty() || after.starts_with(' ') {
                    // A document marker; only a comment may follow it.
                    if !is_blank_or_comment(after) {
                        self.rest = None;
                        return Some(Err(Declined::Text));
                    }
                    break line_start;
                }
            }
            if text.starts_with("...") || text.starts_with('%') {
                // Document end markers and directives.
                self.rest = None;
                return Some(Err(Declined::Text));
            }
            let indent = text.len() - text.trim_start_matches(' ').len();
            let raw = self.raw.len();
            self.raw.push(text);
            if !is_blank_or_comment(&text[indent..]) {
                self.lines.push(Line { indent, text, raw });
            }
        };
        let last_line_unterminated = self.rest.is_none() && !self.ends_with_newline;
        let document = read_document(
            &self.lines,
            &self.raw,
            last_line_unterminated,
            &mut self.builder,
        );
        Some(document.map_err(|OutsideSubset| Declined::Document(&self.text[start..end])))
    }
}

/// Whether `rest` (which starts at the beginning of a line's content or right
/// after a space) is empty, spaces, or a comment.
fn is_blank_or_comment(rest: &str) -> bool {
    let trimmed = rest.trim_start_matches(' ');
    trimmed.is_empty() || trimmed.starts_with('#')
}

fn read_document<'a>(
    lines: &[Line<'a>],
    raw: &[&'a str],
    last_line_unterminated: bool,
    tree: &mut TreeBuilder<'a>,
) -> Read<Tree<'a>> {
    tree.start();
    let Some(first) = lines.first() else {
        return Ok(tree.finish(Node::Null));
    };
    let mut reader = BlockReader {
        lines,
        raw,
        last_line_unterminated,
        next: 0,
        tree,
    };
    let root = reader.node(0, first.indent, 0)?;
    if reader.next != lines.len() {
        return Err(OutsideSubset);
    }
    Ok(reader.tree.finish(root))
}

/// Reads block collections line by line; `next` is the first line not yet read.
struct BlockReader<'l, 'a> {
    lines: &'l [Line<'a>],
    /// All lines of the document, for literal block scalars.
    raw: &'l [&'a str],
    /// Whether the document's last line has no line break after it.
    last_line_unterminated: bool,
    next: usize,
    /// Where collections put their children.
    tree: &'l mut TreeBuilder<'a>,
}

impl<'a> BlockReader<'_, 'a> {
    /// The node whose content starts at column `col` of line `line` (its
    /// indentation for collections is `col`).
    fn node(&mut self, line: usize, col: usize, depth: usize) -> Read<Node<'a>> {
        if depth > MAX_DEPTH {
            return Err(OutsideSubset);
        }
        let text = self.lines[line].text;
        if is_sequence_entry(text, col) {
            return self.sequence(line, col, depth + 1);
        }
        if let Some(first_key) = mapping_key(text, col)? {
            return self.mapping(line, col, first_key, depth + 1);
        }
        let value = inline_value(text, col, depth, self.tree)?;
        self.next = line + 1;
        Ok(value)
    }

    /// The node on the lines after `line`, more indented than `indent`, or
    /// null when there is none (`key:` or `-` with nothing after it).
    fn nested(&mut self, line: usize, indent: usize, depth: usize) -> Read<Node<'a>> {
        self.next = line + 1;
        match self.lines.get(self.next) {
            Some(child) if child.indent > indent => self.node(self.next, child.indent, depth),
            _ => Ok(Node::Null),
        }
    }

    /// The value starting at column `pos` of line `line`, after a key or a
    /// `- ` of a collection at column `indent`: a literal block scalar, or a
    /// value that ends on that line.
    fn value_on_line(
        &mut self,
        line: usize,
        pos: usize,
        indent: usize,
        depth: usize,
    ) -> Read<Node<'a>> {
        let text = self.lines[line].text;
        if text.as_bytes().get(pos) == Some(&b'|') {
            return self.literal(line, pos, indent);
        }
        let value = inline_value(text, pos, depth, self.tree)?;
        self.next = line + 1;
        Ok(value)
    }

    /// A literal block scalar (`|` or `|-`) whose indicator is at column `pos`
    /// of line `line`, in a collection at column `indent`: libyaml's rules
    /// (`yaml_parser_scan_block_scalar`) for an auto-detected indentation set
    /// by the first line, which must hold text. Keep chomping (`|+`),
    /// explicit indentation, leading blank lines and an unterminated last line
    /// are left to serde_yaml.
    fn literal(&mut self, line: usize, pos: usize, indent: usize) -> Read<Node<'a>> {
        let header = &self.lines[line].text[pos + 1..];
        let (strip, after) = match header.strip_prefix('-') {
            Some(after) => (true, after),
            None => (false, header),
        };
        if !(after.is_empty() || after.starts_with(' ') && is_blank_or_comment(after)) {
            return Err(OutsideSubset);
        }
        let first = self.lines[line].raw + 1;
        let first_line = self.raw.get(first).ok_or(OutsideSubset)?;
        let content_indent = first_line.len() - first_line.trim_start_matches(' ').len();
        if content_indent <= indent || content_indent == first_line.len() {
            return Err(OutsideSubset);
        }
        let mut value = String::new();
        let mut blank_lines = 0;
        let mut last_content = first;
        let mut end = self.raw.len();
        for (i, raw_line) in self.raw.iter().enumerate().skip(first) {
            if !raw_line.bytes().take(content_indent).all(|b| b == b' ') {
                // Text left of the content's column ends the scalar.
                end = i;
                break;
            }
            match raw_line.get(content_indent..) {
                // Only indentation (or less): an empty line.
                None | Some("") => blank_lines += 1,
                Some(content) => {
                    if i > first {
                        value.push('\n');
                    }
                    for _ in 0..blank_lines {
                        value.push('\n');
                    }
                    blank_lines = 0;
                    value.push_str(content);
                    last_content = i;
                }
            }
        }
        if !strip {
            // Clip: the last content line's break, which must be there.
            if last_content + 1 == self.raw.len() && self.last_line_unterminated {
                return Err(OutsideSubset);
            }
            value.push('\n');
        }
        self.next = line + 1;
        while self.lines.get(self.next).is_some_and(|l| l.raw < end) {
            self.next += 1;
        }
        Ok(Node::String(Cow::Owned(value)))
    }

    /// A block sequence whose `-` indicators are at column `indent`; the first
    /// is on line `line`.
    fn sequence(&mut self, mut line: usize, indent: usize, depth: usize) -> Read<Node<'a>> {
        if depth > MAX_DEPTH {
            return Err(OutsideSubset);
        }
        let mark = self.tree.item_mark();
        loop {
            let text = self.lines[line].text;
            if !is_sequence_entry(text, indent) {
                return Err(OutsideSubset);
            }
            let col = skip_spaces(text, indent + 1);
            let item = if is_blank_or_comment(&text[indent + 1..]) {
                self.nested(line, indent, depth)?
            } else if is_sequence_entry(text, col) {
                // `- - a`: a compact nested sequence.
                return Err(OutsideSubset);
            } else if let Some(first_key) = mapping_key(text, col)? {
                // `- key: value`: a mapping whose keys are at `col`.
                self.mapping(line, col, first_key, depth + 1)?
            } else {
                self.value_on_line(line, col, indent, depth)?
            };
            self.tree.push_item(item);
            match self.lines.get(self.next) {
                Some(following)
                    if following.indent == indent && is_sequence_entry(following.text, indent) =>
                {
                    line = self.next;
                }
                // A same-indentation line that is not an entry ends a sequence
                // that is a mapping value (`rules:` then `- ...` at the key's
                // column); the caller checks it is a key.
                Some(following) if following.indent > indent => return Err(OutsideSubset),
                _ => return self.tree.sequence(mark).ok_or(OutsideSubset),
            }
        }
    }

    /// A block mapping whose keys are at column `indent`; the first key,
    /// already read as `first_key`, is on line `line` (possibly after a `- `).
    fn mapping(
        &mut self,
        mut line: usize,
        indent: usize,
        first_key: (Cow<'a, str>, usize),
        depth: usize,
    ) -> Read<Node<'a>> {
        if depth > MAX_DEPTH {
            return Err(OutsideSubset);
        }
        let mark = self.tree.entry_mark();
        let (mut key, mut after_colon) = first_key;
        loop {
            let text = self.lines[line].text;
            let value = if !is_blank_or_comment(&text[after_colon..]) {
                self.value_on_line(line, skip_spaces(text, after_colon), indent, depth)?
            } else {
                match self.lines.get(line + 1) {
                    // `key:` then `- ...` at the key's column: YAML lets a
                    // sequence that is a mapping value start there.
                    Some(child)
                        if child.indent == indent && is_sequence_entry(child.text, indent) =>
                    {
                        self.sequence(line + 1, indent, depth + 1)?
                    }
                    _ => self.nested(line, indent, depth)?,
                }
            };
            self.tree.push_entry(key, value);
            match self.lines.get(self.next) {
                Some(following) if following.indent == indent => {
                    line = self.next;
                    (key, after_colon) =
                        mapping_key(following.text, indent)?.ok_or(OutsideSubset)?;
                }
                Some(following) if following.indent > indent => return Err(OutsideSubset),
                // A repeated key is an error (`None`); serde_yaml words it.
                _ => return self.tree.mapping(mark).ok_or(OutsideSubset),
            }
        }
    }
}

/// Whether column `col` of `text` holds a block sequence indicator (`-`
/// followed by a space or the end of the line).
fn is_sequence_entry(text: &str, col: usize) -> bool {
    let bytes = text.as_bytes();
    bytes.get(col) == Some(&b'-') && bytes.get(col + 1).is_none_or(|&b| b == b' ')
}

fn skip_spaces(text: &str, mut pos: usize) -> usize {
    while text.as_bytes().get(pos) == Some(&b' ') {
        pos += 1;
    }
    pos
}

/// If a block mapping key starts at column `col` of `text`: the key and the
/// position right after its `:`. `Ok(None)` when the line holds no key there.
fn mapping_key(text: &str, col: usize) -> Read<Option<(Cow<'_, str>, usize)>> {
    let bytes = text.as_bytes();
    let (key, end) = match bytes.get(col) {
        Some(b'"' | b'\'') => {
            let (key, end) = quoted(text, col)?;
            (Some(key), end)
        }
        Some(_) if is_plain_start(bytes, col) => {
            let end = col + bytes[col..].iter().take_while(|&&b| is_key_byte(b)).count();
            (None, end)
        }
        _ => return Ok(None),
    };
    if bytes.get(end) != Some(&b':') || bytes.get(end + 1).is_some_and(|&b| b != b' ') {
        return Ok(None);
    }
    if end - col > MAX_KEY_LEN {
        return Err(OutsideSubset);
    }
    let key = match key {
        Some(quoted) => quoted,
        // A plain key must read as a string (`1:` or `true:` keys are numbers
        // and booleans in serde_yaml's mapping).
        None => match plain_scalar(&text[col..end])? {
            Node::String(key) => key,
            _ => return Err(OutsideSubset),
        },
    };
    Ok(Some((key, end + 1)))
}

/// Bytes a plain key may hold here (a conservative subset of YAML's).
fn is_key_byte(b: u8) -> bool {
    KEY_BYTES[usize::from(b)]
}

/// [`is_key_byte`] as a table: letters, digits, `.`, `_`, `/`, `-`.
static KEY_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'/' | b'-');
        b += 1;
    }
    table
};

/// Bytes that end a plain scalar in a flow collection (see
/// [`flow_plain_end`]).
static FLOW_PLAIN_STOPS: [bool; 256] = {
    let mut table = [false; 256];
    let stops = *b",[]{}:#";
    let mut i = 0;
    while i < stops.len() {
        table[stops[i] as usize] = true;
        i += 1;
    }
    table
};

/// Whether a plain scalar may start at `pos` in this subset: not a YAML
/// indicator, except `-` before a letter, digit, `-`, `.`, `/` or `_`
/// (negative numbers, command-line flags such as `--port=80`).
fn is_plain_start(bytes: &[u8], pos: usize) -> bool {
    match bytes[pos] {
        b'-' => bytes
            .get(pos + 1)
            .is_some_and(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'/' | b'_')),
        b'?' | b':' | b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|'
        | b'>' | b'\'' | b'"' | b'%' | b'@' | b'`' | b' ' => false,
        _ => true,
    }
}

/// The value that fills the rest of the line from `pos` (a flow collection, a
/// quoted or a plain scalar), followed at most by a comment.
fn inline_value<'a>(
    text: &'a str,
    pos: usize,
    depth: usize,
    tree: &mut TreeBuilder<'a>,
) -> Read<Node<'a>> {
    let bytes = text.as_bytes();
    let (value, end) = match bytes.get(pos) {
        Some(b'[' | b'{') => flow_node(text, pos, depth + 1, tree)?,
        Some(b'"' | b'\'') => {
            let (s, end) = quoted(text, pos)?;
            (Node::String(s), end)
        }
        Some(_) if is_plain_start(bytes, pos) => {
            let rest = &text[pos..];
            // A plain scalar ends at a comment (` #`).
            let scalar = rest[..comment_start(rest).unwrap_or(rest.len())].trim_end_matches(' ');
            if scalar.ends_with(':') || scalar.contains(": ") {
                return Err(OutsideSubset);
            }
            return plain_scalar(scalar);
        }
        _ => return Err(OutsideSubset),
    };
    let rest = &text[end..];
    if rest.is_empty() || rest.starts_with(' ') && is_blank_or_comment(rest) {
        Ok(value)
    } else {
        Err(OutsideSubset)
    }
}

/// A flow collection or scalar starting at `pos` (within one line); the value
/// and the position after it.
fn flow_node<'a>(
    text: &'a str,
    pos: usize,
    depth: usize,
    tree: &mut TreeBuilder<'a>,
) -> Read<(Node<'a>, usize)> {
    if depth > MAX_DEPTH {
        return Err(OutsideSubset);
    }
    let bytes = text.as_bytes();
    match bytes.get(pos) {
        Some(b'[') => {
            let mark = tree.item_mark();
            let mut pos = skip_spaces(text, pos + 1);
            if bytes.get(pos) == Some(&b']') {
                let empty = tree.sequence(mark).ok_or(OutsideSubset)?;
                return Ok((empty, pos + 1));
            }
            loop {
                let (item, end) = flow_node(text, pos, depth + 1, tree)?;
                tree.push_item(item);
                let end = skip_spaces(text, end);
                match bytes.get(end) {
                    Some(b',') => pos = skip_spaces(text, end + 1),
                    Some(b']') => return Ok((tree.sequence(mark).ok_or(OutsideSubset)?, end + 1)),
                    _ => return Err(OutsideSubset),
                }
            }
        }
        Some(b'{') => {
            let mark = tree.entry_mark();
            let mut pos = skip_spaces(text, pos + 1);
            if bytes.get(pos) == Some(&b'}') {
                let empty = tree.mapping(mark).ok_or(OutsideSubset)?;
                return Ok((empty, pos + 1));
            }
            loop {
                let (key, end) = match bytes.get(pos) {
                    Some(b'"' | b'\'') => {
                        // libyaml's limit on a simple key holds for quoted
                        // flow keys too.
                        let (key, end) = quoted(text, pos)?;
                        if end - pos > MAX_KEY_LEN {
                            return Err(OutsideSubset);
                        }
                        (key, end)
                    }
                    Some(_) if is_plain_start(bytes, pos) => {
                        let end = flow_plain_end(bytes, pos);
                        if end - pos > MAX_KEY_LEN {
                            return Err(OutsideSubset);
                        }
                        let Node::String(key) = plain_scalar(text[pos..end].trim_end_matches(' '))?
                        else {
                            return Err(OutsideSubset);
                        };
                        (key, end)
                    }
                    _ => return Err(OutsideSubset),
                };
                if bytes.get(end) != Some(&b':') || bytes.get(end + 1) != Some(&b' ') {
                    return Err(OutsideSubset);
                }
                let (value, end) = flow_node(text, skip_spaces(text, end + 1), depth + 1, tree)?;
                tree.push_entry(key, value);
                let end = skip_spaces(text, end);
                match bytes.get(end) {
                    Some(b',') => pos = skip_spaces(text, end + 1),
                    // A repeated key (`None`) is left to serde_yaml.
                    Some(b'}') => return Ok((tree.mapping(mark).ok_or(OutsideSubset)?, end + 1)),
                    _ => return Err(OutsideSubset),
                }
            }
        }
        Some(b'"' | b'\'') => {
            let (s, end) = quoted(text, pos)?;
            Ok((Node::String(s), end))
        }
        Some(_) if is_plain_start(bytes, pos) => {
            let end = flow_plain_end(bytes, pos);
            match bytes.get(end) {
                // A `:` inside a flow scalar, or a collection starting inside
                // one: left to serde_yaml.
                Some(b':' | b'[' | b'{') => Err(OutsideSubset),
                _ => Ok((plain_scalar(text[pos..end].trim_end_matches(' '))?, end)),
            }
        }
        _ => Err(OutsideSubset),
    }
}

/// Where a plain scalar in a flow collection starting at `pos` ends: at a flow
/// indicator, a `:` or the end of the line. A comment inside a flow collection
/// is left to serde_yaml (it ends the scalar at `#` here, which no caller
/// accepts).
fn flow_plain_end(bytes: &[u8], pos: usize) -> usize {
    pos + bytes[pos..]
        .iter()
        .take_while(|&&b| !FLOW_PLAIN_STOPS[usize::from(b)])
        .count()
}

/// A one-line quoted scalar starting at `pos` (on its quote): the text and the
/// position after the closing quote.
fn quoted(text: &str, pos: usize) -> Read<(Cow<'_, str>, usize)> {
    let bytes = text.as_bytes();
    let quote = bytes[pos];
    let mut out = String::new();
    // The run of characters since the last escape, copied as it is.
    let mut run = pos + 1;
    let mut i = pos + 1;
    loop {
        let Some(&b) = bytes.get(i) else {
            // Continues on the next line: folding rules left to serde_yaml.
            return Err(OutsideSubset);
        };
        if b == quote {
            if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                // `''` is one `'`.
                out.push_str(&text[run..=i]);
                i += 2;
                run = i;
                continue;
            }
            if run == pos + 1 {
                // No escapes: the text between the quotes as it is.
                return Ok((Cow::Borrowed(&text[run..i]), i + 1));
            }
            out.push_str(&text[run..i]);
            return Ok((Cow::Owned(out), i + 1));
        }
        if quote == b'"' && b == b'\\' {
            let unescaped = match bytes.get(i + 1) {
                Some(b'\\') => '\\',
                Some(b'"') => '"',
                Some(b'/') => '/',
                Some(b'n') => '\n',
                Some(b't') => '\t',
                Some(b'r') => '\r',
                Some(b'0') => '\0',
                _ => return Err(OutsideSubset),
            };
            out.push_str(&text[run..i]);
            out.push(unescaped);
            i += 2;
            run = i;
            continue;
        }
        i += 1;
    }
}

/// What serde_yaml makes of an untagged plain scalar, as JSON, for the
/// spellings this reader resolves itself: the YAML 1.2 core schema's null and
/// boolean words, decimal integers without a sign or leading zero (ports,
/// weights, counts), and strings that cannot be a number. Every other spelling
/// that may be a number (floats, exponents, `+5`, `007`, `0x1F`, `.inf`,
/// integers beyond 64 bits) is left to serde_yaml, whose rules decide it.
fn plain_scalar(s: &str) -> Read<Node<'_>> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Node::Null),
        "true" | "True" | "TRUE" => return Ok(Node::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Node::Bool(false)),
        _ => {}
    }
    let bytes = s.as_bytes();
    // A number starts with a digit, a sign or a dot (`inf` and `nan` spelled
    // without a dot are strings in YAML).
    if !matches!(bytes.first(), Some(b'0'..=b'9' | b'+' | b'-' | b'.')) {
        return Ok(Node::String(Cow::Borrowed(s)));
    }
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let decimal = !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits.len() == 1 || digits[0] != b'0');
    if decimal {
        let number = if negative {
            s.parse::<i64>().ok().map(Number::from)
        } else {
            s.parse::<u64>().ok().map(Number::from)
        };
        return number.map(Node::Number).ok_or(OutsideSubset);
    }
    if may_be_number(s) {
        return Err(OutsideSubset);
    }
    Ok(Node::String(Cow::Borrowed(s)))
}

/// Whether a YAML reader could take `s` (which starts with a digit, sign or
/// dot) for a number: a radix-prefixed integer (`0x`, `0o`, `0b`, signed or
/// not), a `.inf`/`.nan` spelling, or anything Rust's float parser accepts
/// (which covers every decimal integer and float form, signed or not). What is
/// none of these (`10.0.0.1`, `1.2.3`, `2024-01-01`, `8080/TCP`, `-`) is a
/// string for any reader.
fn may_be_number(s: &str) -> bool {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    ["0x", "0o", "0b"].iter().any(|p| unsigned.starts_with(p))
        || unsigned.starts_with('.') && unsigned.len() == 4
        || s.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;
    use serde_json::Value;

    /// What the full path makes of `text`: every non-null document through
    /// `serde_yaml::Value` and `serde_json::to_value`, or its first error.
    fn through_serde_yaml(text: &str) -> Result<Vec<Value>, String> {
        let mut documents = Vec::new();
        for document in serde_yaml::Deserializer::from_str(text) {
            let value = serde_yaml::Value::deserialize(document).map_err(|e| e.to_string())?;
            if !value.is_null() {
                documents.push(serde_json::to_value(&value).map_err(|e| e.to_string())?);
            }
        }
        Ok(documents)
    }

    /// The subset reader's non-null documents, or `None` where it gives up.
    fn parse_documents(text: &str) -> Option<Vec<Value>> {
        let documents: Result<Vec<Tree>, _> = documents(text)?.collect();
        Some(
            documents
                .ok()?
                .iter()
                .map(Tree::root)
                .filter(|d| !d.is_null())
                .map(|d| d.to_value())
                .collect(),
        )
    }

    /// The fast reader either declines `text` or reads exactly what the full
    /// path reads; returns whether it read it.
    fn agrees(text: &str) -> bool {
        agrees_document_by_document(text);
        match parse_documents(text) {
            None => false,
            Some(documents) => {
                let expected = through_serde_yaml(text);
                assert_eq!(
                    Ok(documents),
                    expected,
                    "the subset reader accepted a text the full path reads differently:\n{text}"
                );
                true
            }
        }
    }

    /// Documents read here, with the declined ones read alone by serde_yaml
    /// (as `load_text` does), give what the full path gives for the whole
    /// text, whenever all of them succeed.
    fn agrees_document_by_document(text: &str) {
        let Some(items) = documents(text) else {
            return;
        };
        let mut combined = Vec::new();
        for item in items {
            let value = match item {
                Ok(tree) => tree.root().to_value(),
                Err(Declined::Document(document)) => {
                    match super::super::document_via_serde_yaml(document) {
                        Some(value) => value,
                        None => return,
                    }
                }
                Err(Declined::Text) => return,
            };
            if !value.is_null() {
                combined.push(value);
            }
        }
        assert_eq!(
            Ok(combined),
            through_serde_yaml(text),
            "document by document, the text reads differently: {text:?}"
        );
    }

    /// Every manifest in the repository (demo set, decision cases) is in the
    /// subset and reads as it does through serde_yaml.
    #[test]
    fn repository_manifests_read_as_serde_yaml_does() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut texts = Vec::new();
        for entry in std::fs::read_dir(root.join("demo/manifests")).unwrap() {
            texts.push(std::fs::read_to_string(entry.unwrap().path()).unwrap());
        }
        for entry in std::fs::read_dir(root.join("tests/cases")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let case: serde_yaml::Value =
                    serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                if let Some(manifests) = case.get("manifests").and_then(|m| m.as_str()) {
                    texts.push(manifests.to_string());
                }
            }
        }
        assert!(texts.len() > 50, "{} texts", texts.len());
        let declined: Vec<_> = texts.iter().filter(|text| !agrees(text)).collect();
        assert!(declined.is_empty(), "declined: {declined:#?}");
    }

    /// Shapes inside the subset are read, exactly as serde_yaml reads them;
    /// shapes outside it are declined or read the same.
    #[test]
    fn subset_shapes_read_as_serde_yaml_does() {
        let taken = [
            "a: 1\nb: -2\nc: 0\nd: 18446744073709551615\ne: -9223372036854775808\nf: 10.0.0.1\ng: 1.2.3\nh: 8080/TCP\ni: 2026-08-02\nj: 0-1\n",
            "a: true\nb: False\nc: ~\nd: null\ne:\nf: NULL\ng: yes\nh: inf\ni: nan\nj: 1_000\n",
            "a: http://x:80/p?q=1#f\nb: a#b\nc: a b  # comment\nd: 2026-08-02T00:00:00Z\n",
            "a: 'it''s'\nb: \"q\\\"s\\\\ \\n\\t/\"\nc: '' # x\n\"d\": 1\n'e f': 2\n",
            "a: \"\\/\\0\\r\"\nb: '\\n'\nc: \"#\"\n",
            "a: [b, 'c', \"d\", [], {}, [e, [f]], {g: h, 'i': [j]}]\nk: {l: m n, o: -1}\n",
            "rules:\n- matches:\n  - path: {type: PathPrefix, value: /}\n  backendRefs: []\n- name: x\nafter: 1\n",
            "a:\n  b:\n    - 1\n    -\n    - c: d\n      e: f\n  g: h\n",
            "# leading comment\n---\n---\na: 1 # c\n\n   # indented comment\nb:\n  c: d\n---\n- x\n- y\n--- # c\nz\n",
            "  a: 1\n  b: 2\n",
            "[a, b]\n",
            "-\n- a\n-   b: c\n    d: e\n",
            "a: |\n  x\n\n   y: z\n  # not a comment\n\n\nb: |- # c\n    p\n    q\n   \nc: 1\n",
            "- |\n  x\n-   k: |\n      v\n    l: 2\n- |-\n x\n",
            "metadata:\n  annotations:\n    last-applied: |\n      {\"a\":1,\"b\":[\"c\"]}\n  name: n\n---\nx: y\n",
            "args:\n- --port=80\n- -conf\n- -v\n- -15\n- -./x\n-a: 1\n",
        ];
        for text in taken {
            assert!(agrees(text), "declined:\n{text}");
        }
        let others = [
            // Number spellings other than plain decimal integers: serde_yaml decides.
            "a: 0x1F\nb: 012\nc: 1.5\nd: 1e3\ne: +7\nf: 0o17\ng: -0b101\nh: .5\ni: -1.5\n",
            "a: 18446744073709551616\n",
            "a: -.inf\nb: .NaN\n",
            "key: value with spaces and : colon\n",
            "key: -a\n",
            "key: - a\n",
            "key: a\n  continued\n",
            "key: 'a\n  b'\n",
            "a: 1\na: 2\n",
            "{a: 1, a: 2}\n",
            "a: {b: 1, b: 2}\n",
            "1: a\n",
            "a: 340282366920938463463374607431768211455\n",
            "a: .inf\n",
            "a: &x 1\nb: *x\n",
            "a: !t 1\n",
            "a: |\n  x\n",
            "a: [b,]\n",
            "a: [b: c]\n",
            "a: {b}\n",
            "a: {b:c}\n",
            "a: [x #c]\n",
            "- - a\n",
            "a: 1\n- b\n",
            "- a\nb: 1\n",
            "...\n",
            "%YAML 1.2\n---\na: 1\n",
            "a:\tb\n",
            "a: b\r\n",
            "a: \u{e9}\n",
            "a: \"\\u00e9\"\n",
            "a : b\n",
            "? a\n: b\n",
            "a: |+\n  x\n\n",
            "a: |2\n   x\n",
            "a: |\n\n  x\n",
            "a: |\n  x",
            "a: |-\n  x",
            "a: >\n  x\n",
            "a: |\nb: 1\n",
            "a: |\n  x\n y\n",
            "- |\n x\n",
            "a: |\n  x\n---\nb: 1\n",
        ];
        for text in others {
            agrees(text);
        }
    }

    /// Keys longer than libyaml's simple-key limit are declined in every
    /// position (block, plain flow, quoted flow), so serde_yaml reports them.
    #[test]
    fn overlong_keys_are_declined() {
        let long = "k".repeat(1100);
        for text in [
            format!("{long}: v\n"),
            format!("a: {{{long}: v}}\n"),
            format!("a: {{\"{long}\": v}}\n"),
            format!("a: {{'{long}': v}}\n"),
        ] {
            assert!(parse_documents(&text).is_none(), "read: {text:.40}");
            assert!(
                through_serde_yaml(&text).is_err(),
                "serde_yaml reads {text:.40}"
            );
        }
    }

    /// A key given twice is never read here (the full path reports it).
    #[test]
    fn repeated_keys_are_declined() {
        for text in [
            "a: 1\na: 2\n",
            "a: 1\n'a': 2\n",
            "m: {x: 1, \"x\": 2}\n",
            "- a: 1\n  a: 1\n",
        ] {
            assert!(parse_documents(text).is_none(), "{text}");
            assert!(through_serde_yaml(text).is_err(), "{text}");
        }
    }

    /// Only printable ASCII and line feeds are read here (YAML has its own
    /// rules for tabs, CR, NEL, U+2028, BOM and non-printable characters).
    #[test]
    fn only_printable_ascii_is_read() {
        let long = format!("a: {}\n", "x".repeat(300));
        assert!(documents(&long).is_some());
        assert!(documents(" ~\n").is_some());
        for bad in [
            "\t", "\r", "\u{7f}", "\u{0}", "\u{85}", "\u{2028}", "\u{feff}", "é",
        ] {
            assert!(
                documents(&format!("{long}b: c{bad}\n")).is_none(),
                "{bad:?}"
            );
            assert!(documents(&format!("{bad}{long}")).is_none(), "{bad:?}");
        }
    }

    /// Lines and comments are found as `split('\n')` and `find(" #")` find them.
    #[test]
    fn lines_and_comments_are_found_as_std_finds_them() {
        for text in [
            "",
            "\n",
            "a",
            "a\n",
            "a\nb",
            "a\n\nb\n",
            "\n\n",
            "x: 1 # c\n---\ny",
        ] {
            let lines: Vec<&str> = LineSplit { text, next: 0 }.collect();
            assert_eq!(lines, text.split('\n').collect::<Vec<_>>(), "{text:?}");
        }
        for rest in [
            "", "#", " #", "a#b", "a #b", "a#b #c", "a  # c", "##", "a# #",
        ] {
            assert_eq!(comment_start(rest), rest.find(" #"), "{rest:?}");
        }
    }

    /// The byte tables hold exactly the bytes their rules name.
    #[test]
    fn byte_tables_match_their_rules() {
        for b in 0..=255u8 {
            let key = b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-');
            assert_eq!(is_key_byte(b), key, "{b}");
            let stop = matches!(b, b',' | b'[' | b']' | b'{' | b'}' | b':' | b'#');
            assert_eq!(FLOW_PLAIN_STOPS[usize::from(b)], stop, "{b}");
        }
    }

    /// Deep nesting is declined instead of recursing without bound.
    #[test]
    fn deep_nesting_is_declined() {
        let flow = format!("a: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse_documents(&flow).is_none());
        let mut block = String::new();
        for depth in 0..200 {
            block.push_str(&" ".repeat(depth * 2));
            block.push_str("- a:\n");
        }
        assert!(parse_documents(&block).is_none());
    }

    fn fragment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "", " ", "  ", "- ", "-", "a", "b", "kind", "1", "-1", "0x1F", "012", "1.5", "1e3",
            ".5", "+1", "true", "null", "~", "inf", ": ", ":", "#c", " #c", "a#b", "[", "]", "{",
            "}", ", ", ",", "'", "\"", "''", "\\\"", "\\n", "\\x", "a b", "http://x", "&a", "*a",
            "!t", "|", ">", "?", "---", "...", "%", "@", "`", "{a: 1}", "[a, b]", "[]", "{}", "|-",
            "|+", "\n  ", "\n ", "\n",
        ])
    }

    fn line() -> impl Strategy<Value = String> {
        prop::collection::vec(fragment(), 0..6).prop_map(|parts| parts.concat())
    }

    /// JSON values shaped like manifests, with awkward strings and keys.
    fn manifest_like_value() -> impl Strategy<Value = Value> {
        let scalar = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e9..1e9f64).prop_map(Value::from),
            prop::sample::select(vec![
                "",
                " ",
                "a",
                "a b",
                " lead",
                "trail ",
                "true",
                "False",
                "null",
                "~",
                "1",
                "-1",
                "0123",
                "1.5",
                "1e3",
                ".inf",
                "0x1F",
                "+1",
                "a: b",
                "a:b",
                "#x",
                "a #x",
                "a#x",
                "-",
                "- x",
                "[a]",
                "{a: b}",
                "'",
                "\"",
                "\\",
                "it's",
                "multi\nline",
                "a\n",
                "a\nb\n",
                "a\n\nb",
                "a\n\n",
                "x\n  y",
                "x\n#y",
                "\nx",
                " x\ny",
                "x \ny",
                "---\nx",
                "x\n...",
                "tab\tx",
                "http://x:80/y",
                "2026-08-02T00:00:00Z",
                "10.0.0.1",
                "*a",
                "&a",
                "!t",
                "|",
                ">",
                "?",
                "%",
                "@",
                "`",
                "---",
                "...",
                ",",
                "é",
            ])
            .prop_map(|s| Value::String(s.to_string())),
        ];
        scalar.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop::sample::select(vec![
                            "a", "kind", "metadata", "a.b/c-d", "x_y", "1", "true", "null", "a b",
                            "-a", "a:", "", "'", "#", "é",
                        ]),
                        inner
                    ),
                    0..4
                )
                .prop_map(|entries| Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect()
                )),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// What serde_yaml writes (block style, its own quoting) reads back
        /// here exactly as through serde_yaml, as one document or several.
        #[test]
        fn reads_what_serde_yaml_writes(values in prop::collection::vec(manifest_like_value(), 1..3)) {
            let text = values
                .iter()
                .map(|value| serde_yaml::to_string(value).unwrap())
                .collect::<Vec<_>>()
                .join("---\n");
            agrees(&text);
        }

        /// On arbitrary YAML-like text, the reader declines or agrees with
        /// serde_yaml.
        #[test]
        fn never_disagrees_with_serde_yaml(lines in prop::collection::vec(line(), 0..8)) {
            agrees(&lines.join("\n"));
        }

        /// Same on the demo manifests with a fragment put in, or a stretch
        /// taken out, anywhere.
        #[test]
        fn never_disagrees_on_edited_manifests(
            file in prop::sample::select(vec!["gateway.yaml", "routes.yaml", "services.yaml"]),
            at in 0.0..1.0f64,
            removed in 0..4usize,
            inserted in prop::collection::vec(fragment(), 0..3),
        ) {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/manifests").join(file);
            let text = std::fs::read_to_string(path).unwrap();
            let at = (text.len() as f64 * at) as usize;
            let end = (at + removed).min(text.len());
            let edited = format!("{}{}{}", &text[..at], inserted.concat(), &text[end..]);
            agrees(&edited);
        }

        /// Same on text built from key/value lines (more of it is accepted).
        #[test]
        fn never_disagrees_on_mapping_like_text(
            lines in prop::collection::vec(
                (0..3usize, prop::sample::select(vec!["", "- ", "- - ", "-"]),
                 prop::sample::select(vec!["a", "b", "'a'", "\"b\"", "1", "c d", "e/f.g"]),
                 prop::sample::select(vec![": ", ":", " : ", ": - "]),
                 line()),
                0..10)
        ) {
            let text: String = lines
                .iter()
                .map(|(indent, dash, key, colon, value)| {
                    format!("{}{dash}{key}{colon}{value}\n", "  ".repeat(*indent))
                })
                .collect();
            agrees(&text);
        }
    }
}
