//! An append-only JSON-lines file: the storage of the file alert and
//! dead-letter sinks.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::SinkError;

/// Bytes gathered before each write (`BufWriter`'s default is 8 KiB): a
/// replay writes megabytes of alert lines, and the kernel's buffered-write
/// path costs per call and per page-cache folio.
const WRITE_BUFFER_BYTES: usize = 1024 * 1024;

/// Appends one JSON document per line; [`JsonLinesFile::flush`] makes them durable.
#[derive(Debug)]
pub struct JsonLinesFile {
    path: PathBuf,
    out: BufWriter<File>,
}

impl JsonLinesFile {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SinkError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| SinkError::io("open", &path, e))?;
        Ok(Self {
            path,
            out: BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
        })
    }

    /// Writes `value` as one line.
    pub fn write<T: Serialize>(&mut self, value: &T) -> Result<(), SinkError> {
        serde_json::to_writer(&mut self.out, value)?;
        self.out
            .write_all(b"\n")
            .map_err(|e| SinkError::io("write", &self.path, e))
    }

    /// Flushes the buffer and fsyncs the file.
    pub fn flush(&mut self) -> Result<(), SinkError> {
        self.out
            .flush()
            .and_then(|()| self.out.get_ref().sync_data())
            .map_err(|e| SinkError::io("flush", &self.path, e))
    }
}
