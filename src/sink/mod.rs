//! Output sinks: enriched Parquet, alert lines and dead letters.
//!
//! - [`row`]: one enriched record ([`EnrichedRow`]), the versioned Arrow schema
//!   ([`enriched_schema`]).
//! - [`parquet`]: the rolling, hive-partitioned, atomically written Parquet sink
//!   ([`ParquetSink`]).
//! - [`alerts`]: the alert record ([`Alert`]), the event-time driven
//!   [`AlertAggregator`] and the JSON-lines [`AlertFileSink`].
//! - [`deadletter`]: bad input kept with a reason code ([`DeadLetter`]) and the
//!   JSON-lines [`DeadLetterFileSink`].
//!
//! - [`kafka`]: alert and dead-letter producers for `routeproof run`.
//! - [`object_store`]: where finished Parquet files are published (a local
//!   directory or object storage).
//! - [`kafka_files`]: per-Kafka-partition Parquet writing with exactly-once
//!   file naming and recovery (the protocol is documented there).
//!
//! The published schemas live in `schemas/` at the repository root.

pub mod alerts;
mod columns;
pub mod deadletter;
mod encoding;
pub mod jsonl;
pub mod kafka;
pub mod kafka_files;
pub mod object_store;
pub mod parquet;
pub mod row;

use std::path::PathBuf;

pub use alerts::{
    Alert, AlertAggregator, AlertAggregatorConfig, AlertFileSink, AlertOccurrence, AlertSink,
    AlertState, AlertType, Severity,
};
pub use deadletter::{DeadLetter, DeadLetterFileSink, DeadLetterSink, DeadLetterSource};
pub use parquet::{
    ChunkEncoders, FileNamer, FileRowSpan, KafkaOffsetSpan, ParquetSink, ParquetSinkConfig,
    PartitionKey, SequentialFileNamer, WrittenFile,
};
pub use row::{enriched_schema, ActualSource, EnrichedRow, StrList, UpstreamId, ValueIds};

/// Errors of the output sinks.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A file-system operation failed.
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was being done (e.g. `create`, `rename`, `fsync`).
        operation: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The Parquet writer failed.
    #[error("writing Parquet file {path}: {source}")]
    Parquet {
        /// The (temporary) file being written.
        path: PathBuf,
        /// The underlying error.
        source: ::parquet::errors::ParquetError,
    },
    /// A [`FileNamer`] returned a name that cannot be used.
    #[error("invalid output file name {name:?}: {why}")]
    InvalidFileName {
        /// The name returned.
        name: String,
        /// Why it was rejected.
        why: &'static str,
    },
    /// A sink configuration value is out of range.
    #[error("invalid sink configuration: {0}")]
    Config(String),
    /// An object-store operation failed.
    #[error("object store {operation} {path}: {message}")]
    Store {
        /// What was being done (`put`, `list`, `delete`).
        operation: &'static str,
        /// The object path concerned.
        path: String,
        /// The underlying error.
        message: String,
    },
    /// Producing to Kafka failed.
    #[error("producing to Kafka topic {topic}: {message}")]
    Kafka {
        /// The topic.
        topic: String,
        /// The underlying error.
        message: String,
    },
    /// Messages to Kafka are not delivered yet (e.g. the broker is restarting);
    /// they are kept and produced again: try again later, nothing is lost.
    #[error("Kafka messages not delivered yet: {0}")]
    DeliveryPending(String),
    /// Serializing a record to JSON failed.
    #[error("serializing JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl SinkError {
    /// Wraps an I/O error with the operation and path it concerns.
    pub(crate) fn io(
        operation: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        SinkError::Io {
            operation,
            path: path.into(),
            source,
        }
    }
}
