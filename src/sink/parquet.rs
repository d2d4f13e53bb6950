//! Rolling, hive-partitioned Parquet sink for [`EnrichedRow`]s.
//!
//! # Layout
//!
//! Files go under `root_dir/dt=YYYY-MM-DD/hour=HH/` by the row's `event_time`
//! (UTC). Rows without an event time go to
//! `root_dir/dt=__HIVE_DEFAULT_PARTITION__/hour=__HIVE_DEFAULT_PARTITION__/`, the
//! Hive convention for a null partition value that Spark, Arrow, Polars and
//! current DuckDB read as NULL (so `dt` and `hour` keep their date / integer
//! types). Each partition has at most one open file.
//!
//! # Atomic-write protocol
//!
//! 1. The partition directory is created if needed; its parent directories are fsynced.
//! 2. A file is created with `create_new` under a temporary, hidden name
//!    `.routeproof-<pid>-<n>.parquet.tmp` (leading dot: hidden from Hadoop / Spark
//!    listings; `.tmp` suffix: never matched by `*.parquet` globs, e.g. DuckDB).
//! 3. Row groups are appended as a partition's buffered rows fill one
//!    (encoded column by column by [`super::columns`]); the Parquet footer is
//!    written when the file rolls.
//! 4. The file is fsynced (`sync_all`).
//! 5. The final name is asked from the [`FileNamer`] *now*, so it can carry the
//!    first/last offsets of the rows in the file ([`FileRowSpan`]).
//! 6. The file is renamed to its final name (atomic within the directory; an
//!    existing file of that name is replaced, so names derived from offsets make a
//!    re-write after a restart idempotent), then the directory is fsynced.
//!
//! Readers therefore only ever see complete, durable `*.parquet` files. A crash
//! leaves at most `.tmp` files, which [`remove_temp_files`] deletes at start-up.
//!
//! # Rolling
//!
//! A file is finished when it holds `max_file_rows` rows (exactly), when its
//! estimated size reaches `max_file_bytes` (checked every `batch_rows` rows),
//! or when it is older than `max_file_age` (checked every `batch_rows` rows
//! and by [`ParquetSink::roll_aged_files`], which the caller should call
//! periodically). When more than `max_open_partitions` partitions
//! are open, the least recently used one is finished first.

use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use parquet::arrow::{add_encoded_arrow_schema_to_metadata, ArrowSchemaConverter};
use parquet::basic::ZstdLevel;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::TypePtr;

use super::columns::{ChunkEncoder, EnrichedColumns};
use super::row::{
    enriched_schema, EnrichedRow, ENRICHED_SCHEMA_METADATA_KEY, ENRICHED_SCHEMA_METADATA_VALUE,
};
use super::SinkError;

/// Directory value used for a null partition value (Hive convention).
pub const NULL_PARTITION_VALUE: &str = "__HIVE_DEFAULT_PARTITION__";

/// Prefix of temporary file names.
pub const TEMP_FILE_PREFIX: &str = ".routeproof-";

/// Suffix of temporary file names.
pub const TEMP_FILE_SUFFIX: &str = ".parquet.tmp";

const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// A partition's buffered rows are written as a row group once they hold
/// about this many bytes, even below `row_group_rows` (bounds the memory of
/// a partition with long rows).
const MAX_ROW_GROUP_BUFFER_BYTES: usize = 32 * 1024 * 1024;

/// Bytes gathered before each write to a Parquet file. The parquet crate
/// writes through an 8 KiB buffer; the kernel's buffered-write path costs per
/// call and per page-cache folio, and larger writes need fewer of both.
const FILE_WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// The buffered size is checked every this many rows, or sooner once the
/// rows since the last check carried [`BUFFER_CHECK_BYTES`] of input strings
/// (a line may be up to 1 MiB: 1,024 such rows must not pile up unchecked).
const BUFFER_CHECK_ROWS: usize = 1024;

/// See [`BUFFER_CHECK_ROWS`].
const BUFFER_CHECK_BYTES: usize = 1024 * 1024;

/// Settings of a [`ParquetSink`].
#[derive(Debug, Clone, PartialEq)]
pub struct ParquetSinkConfig {
    /// Root directory of the partitioned dataset.
    pub root_dir: PathBuf,
    /// The size and age limits are checked every this many rows of a file
    /// (default 8192); a partition's buffers start with room for this many rows.
    pub batch_rows: usize,
    /// Maximum rows per Parquet row group (default 131072; a row group is
    /// also cut when its buffered rows take about 32 MiB).
    pub row_group_rows: usize,
    /// Roll a file when it holds this many rows (default 1,000,000).
    pub max_file_rows: u64,
    /// Roll a file when its estimated size (bytes written plus the buffered
    /// rows at their uncompressed size) reaches this many bytes (default 256 MiB).
    pub max_file_bytes: u64,
    /// Roll a file when it has been open this long (default 10 minutes).
    pub max_file_age: Duration,
    /// zstd compression level, 1..=22 (default 1: on enriched rows it is
    /// about 10 % cheaper in CPU than 3 and the files come out no bigger,
    /// since most columns are dictionary- or run-length-encoded already).
    /// It applies to the strings (dictionaries, `path`, `request_id`); data
    /// pages of bit-packed numbers (dictionary indices, delta-packed
    /// integers, booleans) are compressed at zstd's fast level -7 when the
    /// level is 1, and at the level itself otherwise.
    pub zstd_level: i32,
    /// At most this many partitions keep an open file; the least recently used is
    /// finished when another one is needed (default 24).
    pub max_open_partitions: usize,
}

impl ParquetSinkConfig {
    /// The defaults, writing under `root_dir`.
    pub fn new(root_dir: impl Into<PathBuf>) -> Self {
        Self {
            root_dir: root_dir.into(),
            batch_rows: 8192,
            row_group_rows: 128 * 1024,
            max_file_rows: 1_000_000,
            max_file_bytes: 256 * 1024 * 1024,
            max_file_age: Duration::from_secs(600),
            zstd_level: 1,
            max_open_partitions: 24,
        }
    }

    /// Checks that every value is in range.
    pub fn validate(&self) -> Result<(), SinkError> {
        let bad = |what: &str| Err(SinkError::Config(what.to_string()));
        if self.batch_rows == 0 {
            return bad("batch_rows must be at least 1");
        }
        if self.row_group_rows == 0 {
            return bad("row_group_rows must be at least 1");
        }
        if self.max_file_rows == 0 {
            return bad("max_file_rows must be at least 1");
        }
        if self.max_file_bytes == 0 {
            return bad("max_file_bytes must be at least 1");
        }
        if self.max_open_partitions == 0 {
            return bad("max_open_partitions must be at least 1");
        }
        if ZstdLevel::try_new(self.zstd_level).is_err() {
            return Err(SinkError::Config(format!(
                "zstd_level {} is out of range 1..=22",
                self.zstd_level
            )));
        }
        Ok(())
    }
}

/// The event-time partition of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PartitionKey {
    /// Rows without an event time.
    NoEventTime,
    /// Rows whose event time falls in this hour, counted in hours since the Unix epoch (UTC).
    Hour(i64),
}

impl PartitionKey {
    /// The partition of a row with this event time (µs since the epoch, UTC).
    pub fn of(event_time_micros: Option<i64>) -> Self {
        match event_time_micros {
            Some(t) => PartitionKey::Hour(t.div_euclid(MICROS_PER_HOUR)),
            None => PartitionKey::NoEventTime,
        }
    }

    /// The event times (µs) of this partition's hour, `start..end`: a row's
    /// time in it has this key. Empty for [`NoEventTime`](Self::NoEventTime)
    /// and for an hour whose bounds do not fit in an `i64`.
    fn hour_micros(&self) -> std::ops::Range<i64> {
        let hour = match *self {
            PartitionKey::Hour(hour) => hour,
            PartitionKey::NoEventTime => return 0..0,
        };
        let start = hour.checked_mul(MICROS_PER_HOUR);
        let end = start.and_then(|start| start.checked_add(MICROS_PER_HOUR));
        match (start, end) {
            (Some(start), Some(end)) => start..end,
            _ => 0..0,
        }
    }

    /// The partition directory relative to the dataset root, e.g. `dt=2024-05-01/hour=07`.
    pub fn relative_dir(&self) -> PathBuf {
        let hour_start = match self {
            PartitionKey::NoEventTime => None,
            PartitionKey::Hour(h) => h
                .checked_mul(3600)
                .and_then(|secs| DateTime::<Utc>::from_timestamp(secs, 0)),
        };
        match hour_start {
            Some(t) => PathBuf::from(format!("dt={}", t.format("%Y-%m-%d")))
                .join(format!("hour={}", t.format("%H"))),
            // Out-of-range hours cannot be formatted as dates; treat them like a null time.
            None => PathBuf::from(format!("dt={NULL_PARTITION_VALUE}"))
                .join(format!("hour={NULL_PARTITION_VALUE}")),
        }
    }
}

/// The Kafka origin of the rows of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaOffsetSpan {
    /// Topic of the first row with Kafka coordinates.
    pub topic: String,
    /// Partition of the first row with Kafka coordinates.
    pub partition: i32,
    /// Smallest `kafka_offset` among rows from that topic-partition.
    pub first_offset: i64,
    /// Largest `kafka_offset` among rows from that topic-partition.
    pub last_offset: i64,
    /// True when the file also holds rows from another topic-partition (then the
    /// offsets above describe only the first topic-partition seen).
    pub mixed: bool,
}

/// What a finished file holds; given to the [`FileNamer`] before the final rename.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRowSpan {
    /// The event-time partition of the file.
    pub partition: PartitionKey,
    /// Sequence number of the file within this sink, from 0, unique per sink.
    pub sequence: u64,
    /// Number of rows in the file.
    pub rows: u64,
    /// Smallest `event_time` in the file (µs since the epoch).
    pub min_event_time: Option<i64>,
    /// Largest `event_time` in the file (µs since the epoch).
    pub max_event_time: Option<i64>,
    /// Smallest `source_offset` in the file.
    pub first_source_offset: Option<i64>,
    /// Largest `source_offset` in the file.
    pub last_source_offset: Option<i64>,
    /// Kafka topic, partition and offset range of the rows, if they came from Kafka.
    pub kafka: Option<KafkaOffsetSpan>,
}

impl FileRowSpan {
    fn empty(partition: PartitionKey) -> Self {
        Self {
            partition,
            sequence: 0,
            rows: 0,
            min_event_time: None,
            max_event_time: None,
            first_source_offset: None,
            last_source_offset: None,
            kafka: None,
        }
    }

    /// Adds one row; allocates only for the first Kafka row of a file (the topic name).
    fn observe(&mut self, row: &EnrichedRow<'_>) {
        self.rows += 1;
        fn widen(min: &mut Option<i64>, max: &mut Option<i64>, v: Option<i64>) {
            if let Some(v) = v {
                *min = Some(min.map_or(v, |m| m.min(v)));
                *max = Some(max.map_or(v, |m| m.max(v)));
            }
        }
        widen(
            &mut self.min_event_time,
            &mut self.max_event_time,
            row.event_time,
        );
        widen(
            &mut self.first_source_offset,
            &mut self.last_source_offset,
            row.source_offset,
        );
        if let (Some(topic), Some(partition), Some(offset)) =
            (row.kafka_topic, row.kafka_partition, row.kafka_offset)
        {
            match &mut self.kafka {
                None => {
                    self.kafka = Some(KafkaOffsetSpan {
                        topic: topic.to_string(),
                        partition,
                        first_offset: offset,
                        last_offset: offset,
                        mixed: false,
                    })
                }
                Some(span) if span.topic == topic && span.partition == partition => {
                    span.first_offset = span.first_offset.min(offset);
                    span.last_offset = span.last_offset.max(offset);
                }
                Some(span) => span.mixed = true,
            }
        }
    }
}

/// Chooses the final name of a finished file (a bare file name ending in
/// `.parquet`, not starting with `.`, without path separators).
///
/// Names must be unique within a partition directory, unless the same name
/// always means the same rows (e.g. derived from Kafka offsets): the final
/// rename replaces an existing file of the same name.
///
/// Any `FnMut(&FileRowSpan) -> String + Send` closure is a `FileNamer`.
pub trait FileNamer: Send {
    /// The final file name for the rows described by `span`.
    fn file_name(&mut self, span: &FileRowSpan) -> String;
}

impl<F> FileNamer for F
where
    F: FnMut(&FileRowSpan) -> String + Send,
{
    fn file_name(&mut self, span: &FileRowSpan) -> String {
        self(span)
    }
}

/// Names files `<prefix>-<sequence, 6 digits>.parquet`, e.g. for a replay run
/// `replay-<run id>-000042.parquet`. The prefix should be unique per run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequentialFileNamer {
    prefix: String,
}

impl SequentialFileNamer {
    /// A namer using `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }
}

impl FileNamer for SequentialFileNamer {
    fn file_name(&mut self, span: &FileRowSpan) -> String {
        format!("{}-{:06}.parquet", self.prefix, span.sequence)
    }
}

/// A file that was finished and durably renamed to its final name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Final path of the file.
    pub path: PathBuf,
    /// Number of rows in the file.
    pub rows: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// What the file holds.
    pub span: FileRowSpan,
}

struct OpenFile {
    writer: SerializedFileWriter<BufWriter<File>>,
    temp_path: PathBuf,
}

struct Partition {
    key: PartitionKey,
    dir: PathBuf,
    columns: EnrichedColumns,
    file: Option<OpenFile>,
    /// Rows in the current file, written plus buffered in `columns`.
    span: FileRowSpan,
    /// When the first row of the current file arrived.
    opened_at: Instant,
    last_used: u64,
    /// Input-string bytes of the rows buffered since the last size check.
    unchecked_bytes: usize,
    /// `key.hour_micros()`: the row times of this partition, compared
    /// without dividing them into hours.
    hour_micros: std::ops::Range<i64>,
    /// `span.rows % batch_rows`, kept as a counter: the file's size and age
    /// are checked when it wraps to 0 (no division per row). Reset with
    /// `span` ([`Partition::restart_span`]).
    rows_since_roll_check: usize,
}

/// The rolling Parquet sink. See the [module documentation](self) for layout,
/// rolling and the atomic-write protocol.
///
/// Dropping the sink without [`close`](Self::close) loses buffered rows and
/// leaves temporary files behind (removed by [`remove_temp_files`]).
pub struct ParquetSink {
    config: ParquetSinkConfig,
    namer: Box<dyn FileNamer>,
    /// File-level properties: created-by and the key-value metadata (schema
    /// version, and the Arrow schema so arrow-rs reads `event_time` as `UTC`).
    properties: Arc<WriterProperties>,
    /// The Parquet schema, converted from [`enriched_schema`] by arrow-rs.
    schema: TypePtr,
    /// Where the column-chunk encoder comes from for each row group.
    encoders: ChunkEncoders,
    zstd: ZstdLevel,
    partitions: Vec<Partition>,
    last_partition: usize,
    use_clock: u64,
    next_sequence: u64,
    next_temp_id: u64,
    rows_appended: u64,
    finished: Vec<WrittenFile>,
}

impl std::fmt::Debug for ParquetSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSink")
            .field("config", &self.config)
            .field("open_partitions", &self.partitions.len())
            .field("rows_appended", &self.rows_appended)
            .field("finished_files", &self.finished.len())
            .finish()
    }
}

/// Column-chunk encoders shared by the sinks of one worker (or of a whole
/// process): each row group is written with an encoder taken from here and
/// given back afterwards.
///
/// An encoder keeps its scratch (page, compressed-page and chunk buffers of the
/// largest column chunk so far, a few MB, and the zstd contexts) between row
/// groups, so that writing one touches no fresh memory. Shared, that memory is
/// paid once per row group written *at the same time*, not once per sink: a
/// `run` worker holds a sink for each of its Kafka partitions, but writes one
/// row group at a time. The lock is taken twice per row group, never per row.
#[derive(Clone, Default)]
pub struct ChunkEncoders {
    idle: Arc<Mutex<Vec<ChunkEncoder>>>,
}

impl std::fmt::Debug for ChunkEncoders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkEncoders").finish_non_exhaustive()
    }
}

impl ChunkEncoders {
    /// An empty set: encoders are created when first needed.
    pub fn new() -> Self {
        Self::default()
    }

    /// An idle encoder compressing at `level`, or a new one.
    fn take(&self, level: ZstdLevel) -> parquet::errors::Result<ChunkEncoder> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        match idle.iter().rposition(|e| e.level() == level) {
            Some(at) => Ok(idle.swap_remove(at)),
            None => ChunkEncoder::new(level),
        }
    }

    /// Gives an encoder back for the next row group.
    fn give(&self, encoder: ChunkEncoder) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(encoder);
    }
}

impl ParquetSink {
    /// A sink writing under `config.root_dir` (created if missing), naming files with `namer`.
    pub fn new(
        config: ParquetSinkConfig,
        namer: impl FileNamer + 'static,
    ) -> Result<Self, SinkError> {
        Self::with_encoders(config, namer, ChunkEncoders::new())
    }

    /// [`ParquetSink::new`] with its column-chunk encoders taken from
    /// `encoders`, which other sinks may share (see [`ChunkEncoders`]).
    pub fn with_encoders(
        config: ParquetSinkConfig,
        namer: impl FileNamer + 'static,
        encoders: ChunkEncoders,
    ) -> Result<Self, SinkError> {
        config.validate()?;
        std::fs::create_dir_all(&config.root_dir)
            .map_err(|e| SinkError::io("create directory", &config.root_dir, e))?;
        let zstd = ZstdLevel::try_new(config.zstd_level)
            .map_err(|e| SinkError::Config(format!("zstd_level: {e}")))?;
        let arrow_schema = enriched_schema();
        let mut properties = WriterProperties::builder()
            .set_created_by(format!("routeproof {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(vec![KeyValue::new(
                ENRICHED_SCHEMA_METADATA_KEY.to_string(),
                ENRICHED_SCHEMA_METADATA_VALUE.to_string(),
            )]))
            .build();
        add_encoded_arrow_schema_to_metadata(&arrow_schema, &mut properties);
        let parquet_error = |source| SinkError::Parquet {
            path: config.root_dir.clone(),
            source,
        };
        let schema = ArrowSchemaConverter::new()
            .convert(&arrow_schema)
            .map_err(parquet_error)?
            .root_schema_ptr();
        // One encoder now: a bad level fails here, not at the first row group.
        encoders.give(encoders.take(zstd).map_err(parquet_error)?);
        Ok(Self {
            config,
            namer: Box::new(namer),
            properties: Arc::new(properties),
            schema,
            encoders,
            zstd,
            partitions: Vec::new(),
            last_partition: 0,
            use_clock: 0,
            next_sequence: 0,
            next_temp_id: 0,
            rows_appended: 0,
            finished: Vec::new(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ParquetSinkConfig {
        &self.config
    }

    /// Rows appended since the sink was created.
    pub fn rows_appended(&self) -> u64 {
        self.rows_appended
    }

    /// Estimated bytes of all open files: written plus the buffered rows at
    /// their uncompressed size.
    pub fn estimated_bytes(&self) -> u64 {
        self.partitions.iter().map(Partition::estimated_bytes).sum()
    }

    /// Number of partitions currently holding buffered rows or an open file.
    pub fn open_partitions(&self) -> usize {
        self.partitions.len()
    }

    /// Appends one row to its partition's buffer; writes a row group when the
    /// buffer is full and finishes the file when it reaches a roll limit.
    pub fn append(&mut self, row: &EnrichedRow<'_>) -> Result<(), SinkError> {
        // Rows usually fall in the last row's partition: it is checked
        // first by the time's range, without computing the key.
        let index = match self.partitions.get(self.last_partition) {
            Some(last) if last.holds(row.event_time) => self.last_partition,
            _ => self.partition_index(PartitionKey::of(row.event_time))?,
        };
        self.use_clock += 1;
        let max_file_rows = self.config.max_file_rows;
        let partition = &mut self.partitions[index];
        if partition.span.rows == 0 {
            partition.opened_at = Instant::now();
        }
        partition.last_used = self.use_clock;
        partition.columns.push(row);
        partition.span.observe(row);
        partition.rows_since_roll_check += 1;
        let roll_check = partition.rows_since_roll_check == self.config.batch_rows;
        if roll_check {
            partition.rows_since_roll_check = 0;
        }
        debug_assert_eq!(
            partition.rows_since_roll_check as u64,
            partition.span.rows % self.config.batch_rows as u64
        );
        self.rows_appended += 1;

        partition.unchecked_bytes += row.input_bytes();

        let buffered = partition.columns.len();
        if buffered == self.config.batch_rows && buffered < self.config.row_group_rows {
            // The buffers started with room for `batch_rows` rows: size them
            // for the whole row group now, once (a no-op when an earlier row
            // group of this partition grew them already).
            partition
                .columns
                .reserve(self.config.row_group_rows - buffered);
        }
        let file_full = partition.span.rows >= max_file_rows;
        let check_size =
            buffered % BUFFER_CHECK_ROWS == 0 || partition.unchecked_bytes >= BUFFER_CHECK_BYTES;
        if check_size {
            partition.unchecked_bytes = 0;
        }
        let group_full = buffered >= self.config.row_group_rows
            || (check_size && partition.columns.approx_bytes() >= MAX_ROW_GROUP_BUFFER_BYTES);
        if group_full || file_full {
            self.write_buffered(index)?;
        }
        let partition = &self.partitions[index];
        if file_full
            || (roll_check
                && (partition.estimated_bytes() >= self.config.max_file_bytes
                    || partition.opened_at.elapsed() >= self.config.max_file_age))
        {
            self.finish_file(index)?;
        }
        Ok(())
    }

    /// Finishes every file that has been open for `max_file_age` or longer.
    /// Call it periodically (e.g. once a second) so quiet partitions still roll.
    pub fn roll_aged_files(&mut self) -> Result<(), SinkError> {
        self.roll_files_older_than(Instant::now())
    }

    /// Like [`roll_aged_files`](Self::roll_aged_files), with "now" given by the caller.
    pub fn roll_files_older_than(&mut self, now: Instant) -> Result<(), SinkError> {
        for index in 0..self.partitions.len() {
            let partition = &self.partitions[index];
            if partition.span.rows > 0
                && now.saturating_duration_since(partition.opened_at) >= self.config.max_file_age
            {
                self.finish_file(index)?;
            }
        }
        Ok(())
    }

    /// Finishes every open file (e.g. before committing Kafka offsets), so that all
    /// rows appended so far are in durable files.
    pub fn roll_all(&mut self) -> Result<(), SinkError> {
        self.partitions.sort_by_key(|p| p.key);
        self.last_partition = 0;
        for index in 0..self.partitions.len() {
            self.finish_file(index)?;
        }
        self.partitions.clear();
        Ok(())
    }

    /// Takes the list of files finished since the last call (or since creation).
    pub fn take_finished_files(&mut self) -> Vec<WrittenFile> {
        std::mem::take(&mut self.finished)
    }

    /// Writes all buffered rows, finishes every file and returns the files finished
    /// since the last [`take_finished_files`](Self::take_finished_files) call (all
    /// files of the sink if it was never called), in the order they were finished.
    pub fn close(mut self) -> Result<Vec<WrittenFile>, SinkError> {
        self.roll_all()?;
        Ok(std::mem::take(&mut self.finished))
    }

    /// Index of the partition for `key`, opening it (and evicting the least recently
    /// used partition if too many are open) when needed.
    fn partition_index(&mut self, key: PartitionKey) -> Result<usize, SinkError> {
        if let Some(p) = self.partitions.get(self.last_partition) {
            if p.key == key {
                return Ok(self.last_partition);
            }
        }
        if let Some(index) = self.partitions.iter().position(|p| p.key == key) {
            self.last_partition = index;
            return Ok(index);
        }
        if self.partitions.len() >= self.config.max_open_partitions {
            let lru = self
                .partitions
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| p.last_used)
                .map(|(i, _)| i);
            if let Some(lru) = lru {
                self.finish_file(lru)?;
                self.partitions.swap_remove(lru);
            }
        }
        let dir = self.config.root_dir.join(key.relative_dir());
        self.partitions.push(Partition {
            key,
            hour_micros: key.hour_micros(),
            dir,
            columns: EnrichedColumns::with_capacity(
                self.config.batch_rows.min(self.config.row_group_rows),
            ),
            file: None,
            span: FileRowSpan::empty(key),
            opened_at: Instant::now(),
            last_used: self.use_clock,
            unchecked_bytes: 0,
            rows_since_roll_check: 0,
        });
        self.last_partition = self.partitions.len() - 1;
        Ok(self.last_partition)
    }

    /// Writes the partition's buffered rows as one row group, creating the
    /// temporary file first if needed.
    fn write_buffered(&mut self, index: usize) -> Result<(), SinkError> {
        if self.partitions[index].columns.is_empty() {
            return Ok(());
        }
        if self.partitions[index].file.is_none() {
            let file = self.create_temp_file(index)?;
            self.partitions[index].file = Some(file);
        }
        let partition = &mut self.partitions[index];
        if let Some(open) = partition.file.as_mut() {
            let written = self.encoders.take(self.zstd).and_then(|mut encoder| {
                let written = partition
                    .columns
                    .write_row_group(&mut open.writer, &mut encoder);
                self.encoders.give(encoder);
                written
            });
            if let Err(source) = written {
                let path = open.temp_path.clone();
                partition.columns.clear();
                partition.abandon_file();
                return Err(SinkError::Parquet { path, source });
            }
        }
        Ok(())
    }

    fn create_temp_file(&mut self, index: usize) -> Result<OpenFile, SinkError> {
        let dir = self.partitions[index].dir.clone();
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir)
                .map_err(|e| SinkError::io("create directory", &dir, e))?;
            // Make the new directory entries durable: hour=HH in dt=..., dt=... in root.
            if let Some(dt_dir) = dir.parent() {
                sync_dir(dt_dir)?;
            }
            sync_dir(&self.config.root_dir)?;
        }
        let temp_path = dir.join(format!(
            "{TEMP_FILE_PREFIX}{}-{}{TEMP_FILE_SUFFIX}",
            std::process::id(),
            self.next_temp_id
        ));
        self.next_temp_id += 1;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
            .map_err(|e| SinkError::io("create", &temp_path, e))?;
        let file = BufWriter::with_capacity(FILE_WRITE_BUFFER_BYTES, file);
        match SerializedFileWriter::new(file, self.schema.clone(), self.properties.clone()) {
            Ok(writer) => Ok(OpenFile { writer, temp_path }),
            Err(source) => {
                let _ = std::fs::remove_file(&temp_path);
                Err(SinkError::Parquet {
                    path: temp_path,
                    source,
                })
            }
        }
    }

    /// Writes buffered rows, then finishes, fsyncs and renames the partition's file.
    /// On error the temporary file is removed and the rows of that file are dropped
    /// (the error says so; a Kafka caller must not commit their offsets).
    fn finish_file(&mut self, index: usize) -> Result<(), SinkError> {
        self.write_buffered(index)?;
        let partition = &mut self.partitions[index];
        let Some(mut open) = partition.file.take() else {
            return Ok(());
        };
        let mut span = partition.restart_span();
        span.sequence = self.next_sequence;
        self.next_sequence += 1;
        let dir = partition.dir.clone();

        let result = (|| {
            open.writer.finish().map_err(|source| SinkError::Parquet {
                path: open.temp_path.clone(),
                source,
            })?;
            // `finish` flushed the buffers down to the file.
            open.writer
                .inner()
                .get_ref()
                .sync_all()
                .map_err(|e| SinkError::io("fsync", &open.temp_path, e))?;
            let bytes = open.writer.bytes_written() as u64;
            let name = self.namer.file_name(&span);
            validate_file_name(&name)?;
            let final_path = dir.join(&name);
            std::fs::rename(&open.temp_path, &final_path)
                .map_err(|e| SinkError::io("rename", &open.temp_path, e))?;
            sync_dir(&dir)?;
            Ok(WrittenFile {
                path: final_path,
                rows: span.rows,
                bytes,
                span,
            })
        })();
        match result {
            Ok(written) => {
                self.finished.push(written);
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&open.temp_path);
                Err(e)
            }
        }
    }
}

impl Partition {
    /// Whether a row with this event time belongs to this partition.
    #[inline]
    fn holds(&self, event_time: Option<i64>) -> bool {
        match event_time {
            Some(t) => self.hour_micros.contains(&t),
            None => self.key == PartitionKey::NoEventTime,
        }
    }

    /// Bytes written to the current file plus the buffered rows at their
    /// uncompressed size (an over-estimate of what they add).
    fn estimated_bytes(&self) -> u64 {
        self.file
            .as_ref()
            .map_or(0, |f| f.writer.bytes_written() as u64)
            + self.columns.approx_bytes() as u64
    }

    /// Drops the current file after a write error: removes the temporary file and
    /// forgets the rows of that file.
    fn abandon_file(&mut self) {
        if let Some(open) = self.file.take() {
            let _ = std::fs::remove_file(&open.temp_path);
        }
        self.restart_span();
    }

    /// Starts the span of a new file (and the roll-check count with it),
    /// returning the finished file's span.
    fn restart_span(&mut self) -> FileRowSpan {
        self.rows_since_roll_check = 0;
        std::mem::replace(&mut self.span, FileRowSpan::empty(self.key))
    }
}

fn validate_file_name(name: &str) -> Result<(), SinkError> {
    let why = if name.is_empty() {
        Some("empty")
    } else if name.starts_with('.') {
        Some("starts with '.' (hidden)")
    } else if name.contains(['/', '\\', '\0']) {
        Some("contains a path separator or NUL")
    } else if !name.ends_with(".parquet") {
        Some("does not end with .parquet")
    } else {
        None
    };
    match why {
        Some(why) => Err(SinkError::InvalidFileName {
            name: name.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SinkError::io("fsync directory", dir, e))
}

/// Deletes temporary files (`.routeproof-*.parquet.tmp`) left under
/// `root_dir/*/*/` by a crashed writer and returns their paths. Call it only
/// while no other writer uses `root_dir`.
pub fn remove_temp_files(root_dir: &Path) -> Result<Vec<PathBuf>, SinkError> {
    let mut removed = Vec::new();
    let read = |dir: &Path| std::fs::read_dir(dir).map_err(|e| SinkError::io("list", dir, e));
    if !root_dir.is_dir() {
        return Ok(removed);
    }
    for dt in read(root_dir)? {
        let dt = dt.map_err(|e| SinkError::io("list", root_dir, e))?.path();
        if !dt.is_dir() {
            continue;
        }
        for hour in read(&dt)? {
            let hour = hour.map_err(|e| SinkError::io("list", &dt, e))?.path();
            if !hour.is_dir() {
                continue;
            }
            for entry in read(&hour)? {
                let path = entry.map_err(|e| SinkError::io("list", &hour, e))?.path();
                let is_temp = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with(TEMP_FILE_PREFIX) && n.ends_with(TEMP_FILE_SUFFIX)
                });
                if is_temp {
                    std::fs::remove_file(&path).map_err(|e| SinkError::io("remove", &path, e))?;
                    removed.push(path);
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::row::{enriched_schema, ActualSource};
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};
    use arrow_array::{Array, RecordBatch};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::Encoding;

    /// 2024-05-01T07:00:00Z in µs.
    const HOUR_07: i64 = 1_714_546_800_000_000;

    fn row(event_time: Option<i64>, offset: i64, request_id: &str) -> EnrichedRow<'_> {
        EnrichedRow {
            event_time,
            gateway: Some("infra/public"),
            host: Some("shop.example.com"),
            method: Some("GET"),
            path: Some("/cart"),
            status: Some(200),
            duration_ms: Some(1.5),
            bytes_sent: Some(512),
            request_id: Some(request_id),
            actual_backend: Some("shop/cart"),
            actual_source: ActualSource::ClusterName,
            route: Some("shop/cart-route"),
            route_kind: Some("HTTPRoute"),
            rule: Some(0),
            verdict: "ok",
            input_format: "envoy_json",
            source_file: Some("/logs/access.log"),
            source_offset: Some(offset),
            index_version: Some(7),
            ..EnrichedRow::default()
        }
    }

    fn read_file(path: &Path) -> Vec<RecordBatch> {
        let file = File::open(path).expect("open parquet");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("reader")
            .build()
            .expect("build reader");
        reader.map(|b| b.expect("batch")).collect()
    }

    fn all_files(root: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).expect("read_dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }

    /// Sinks sharing their encoders write what sinks with their own write
    /// (byte for byte), and leave one idle encoder per level behind when they
    /// write one row group at a time.
    #[test]
    fn sinks_sharing_encoders_write_the_same_files_with_one_encoder() {
        let write = |root: &Path, encoders: Option<&ChunkEncoders>| -> Vec<Vec<u8>> {
            let mut sinks: Vec<ParquetSink> = (0..3)
                .map(|k| {
                    let mut config = ParquetSinkConfig::new(root.join(format!("p{k}")));
                    config.row_group_rows = 7;
                    let namer = SequentialFileNamer::new("s");
                    match encoders {
                        Some(shared) => ParquetSink::with_encoders(config, namer, shared.clone()),
                        None => ParquetSink::new(config, namer),
                    }
                    .expect("sink")
                })
                .collect();
            let ids: Vec<String> = (0..60).map(|i| format!("req-{i}")).collect();
            for (i, id) in ids.iter().enumerate() {
                sinks[i % 3]
                    .append(&row(Some(HOUR_07 + i as i64), i as i64, id))
                    .expect("append");
            }
            sinks
                .into_iter()
                .flat_map(|s| s.close().expect("close"))
                .map(|f| std::fs::read(&f.path).expect("read"))
                .collect()
        };
        let own = tempfile::tempdir().expect("tempdir");
        let shared_dir = tempfile::tempdir().expect("tempdir");
        let shared = ChunkEncoders::new();
        let with_own = write(own.path(), None);
        let with_shared = write(shared_dir.path(), Some(&shared));
        assert_eq!(with_own.len(), 3);
        assert_eq!(with_own, with_shared);
        let idle = shared.idle.lock().expect("lock");
        assert_eq!(idle.len(), 1, "one row group at a time needs one encoder");

        // Another level is another encoder; an idle one of the right level is reused.
        drop(idle);
        let level = |n| ZstdLevel::try_new(n).expect("level");
        let other = shared.take(level(5)).expect("take");
        assert_eq!(other.level(), level(5));
        shared.give(other);
        assert_eq!(shared.take(level(1)).expect("take").level(), level(1));
        assert_eq!(shared.idle.lock().expect("lock").len(), 1);
    }

    #[test]
    fn partitions_by_hour_and_null_time_and_reads_back() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut sink = ParquetSink::new(
            ParquetSinkConfig::new(tmp.path()),
            SequentialFileNamer::new("replay-run1"),
        )
        .expect("sink");
        let ids: Vec<String> = (0..30).map(|i| format!("req-{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            let t = match i % 3 {
                0 => Some(HOUR_07 + i as i64 * 1_000_000),
                1 => Some(HOUR_07 + MICROS_PER_HOUR + 59 * 60 * 1_000_000),
                _ => None,
            };
            sink.append(&row(t, i as i64 * 100, id)).expect("append");
        }
        let files = sink.close().expect("close");
        assert_eq!(files.len(), 3);
        let dirs: Vec<String> = files
            .iter()
            .map(|f| {
                f.path
                    .parent()
                    .and_then(|p| p.strip_prefix(tmp.path()).ok())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            dirs,
            vec![
                "dt=__HIVE_DEFAULT_PARTITION__/hour=__HIVE_DEFAULT_PARTITION__",
                "dt=2024-05-01/hour=07",
                "dt=2024-05-01/hour=08",
            ]
        );
        let names: Vec<String> = files
            .iter()
            .map(|f| {
                f.path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into()
            })
            .collect();
        assert_eq!(
            names,
            vec![
                "replay-run1-000000.parquet",
                "replay-run1-000001.parquet",
                "replay-run1-000002.parquet"
            ]
        );
        for f in &files {
            assert_eq!(f.rows, 10);
            assert!(f.bytes > 0);
            assert_eq!(std::fs::metadata(&f.path).expect("stat").len(), f.bytes);
            let batches = read_file(&f.path);
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            assert_eq!(rows, 10);
            assert_eq!(batches[0].schema().fields(), enriched_schema().fields());
        }
        // Values of the hour-07 file: event times and offsets of rows 0, 3, 6, ...
        let hour7 = &files[1];
        assert_eq!(hour7.span.first_source_offset, Some(0));
        assert_eq!(hour7.span.last_source_offset, Some(2700));
        assert_eq!(hour7.span.min_event_time, Some(HOUR_07));
        let batch = &read_file(&hour7.path)[0];
        let times = batch
            .column_by_name("event_time")
            .expect("event_time")
            .as_primitive::<TimestampMicrosecondType>();
        let offsets = batch
            .column_by_name("source_offset")
            .expect("source_offset")
            .as_primitive::<Int64Type>();
        let ids_col = batch
            .column_by_name("request_id")
            .expect("request_id")
            .as_string::<i32>();
        for r in 0..10 {
            let i = r as i64 * 3;
            assert_eq!(times.value(r), HOUR_07 + i * 1_000_000);
            assert_eq!(offsets.value(r), i * 100);
            assert_eq!(ids_col.value(r), format!("req-{i}"));
        }
        let status = batch
            .column_by_name("status")
            .expect("status")
            .as_primitive::<Int32Type>();
        assert!(status.values().iter().all(|s| *s == 200));
        assert!(batch
            .column_by_name("kafka_topic")
            .expect("kafka_topic")
            .is_null(0));
        let null_file = &read_file(&files[0].path)[0];
        assert_eq!(
            null_file
                .column_by_name("event_time")
                .expect("event_time")
                .null_count(),
            10
        );
        // Only final files remain: no temporary file.
        let on_disk = all_files(tmp.path());
        assert_eq!(on_disk.len(), 3);
        assert!(on_disk
            .iter()
            .all(|p| p.extension().is_some_and(|e| e == "parquet")));
    }

    #[test]
    fn columns_use_the_chosen_encodings_and_statistics() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut sink = ParquetSink::new(
            ParquetSinkConfig::new(tmp.path()),
            SequentialFileNamer::new("enc"),
        )
        .expect("sink");
        let ids: Vec<String> = (0..200).map(|i| format!("{i:08x}-request")).collect();
        for (i, id) in ids.iter().enumerate() {
            sink.append(&row(Some(HOUR_07 + i as i64 * 1000), i as i64 * 400, id))
                .expect("append");
        }
        let files = sink.close().expect("close");
        let reader = SerializedFileReader::new(File::open(&files[0].path).expect("open"))
            .expect("parquet reader");
        let row_group = reader.metadata().row_group(0);
        let column = |name: &str| {
            row_group
                .columns()
                .iter()
                .find(|c| c.column_path().string() == name)
                .unwrap_or_else(|| panic!("column {name}"))
        };
        for name in ["event_time", "bytes_sent", "source_offset", "kafka_offset"] {
            let encodings: Vec<Encoding> = column(name).encodings().collect();
            assert!(
                encodings.contains(&Encoding::DELTA_BINARY_PACKED),
                "{name}: {encodings:?}"
            );
        }
        let request_id: Vec<Encoding> = column("request_id").encodings().collect();
        assert!(request_id.contains(&Encoding::DELTA_LENGTH_BYTE_ARRAY));
        assert!(column("request_id").dictionary_page_offset().is_none());
        for name in [
            "gateway",
            "route",
            "verdict",
            "duration_ms",
            "actual_backend",
        ] {
            assert!(
                column(name).dictionary_page_offset().is_some(),
                "{name} keeps its dictionary"
            );
        }
        assert!(column("host").statistics().is_none());
        assert!(column("request_id").statistics().is_none());
        let verdict = column("verdict").statistics().expect("verdict statistics");
        assert_eq!(verdict.min_bytes_opt(), Some(&b"ok"[..]));
        let offsets = column("source_offset")
            .statistics()
            .expect("source_offset statistics");
        assert_eq!(
            offsets.max_bytes_opt(),
            Some(&(199i64 * 400).to_le_bytes()[..])
        );
        // The values read back unchanged through the delta encodings.
        let batch = &read_file(&files[0].path)[0];
        let ids_col = batch
            .column_by_name("request_id")
            .expect("request_id")
            .as_string::<i32>();
        let times = batch
            .column_by_name("event_time")
            .expect("event_time")
            .as_primitive::<TimestampMicrosecondType>();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(ids_col.value(i), id);
            assert_eq!(times.value(i), HOUR_07 + i as i64 * 1000);
        }
    }

    #[test]
    fn rolls_by_row_count_into_exact_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = ParquetSinkConfig {
            batch_rows: 64,
            max_file_rows: 250,
            ..ParquetSinkConfig::new(tmp.path())
        };
        let mut sink = ParquetSink::new(config, SequentialFileNamer::new("roll")).expect("sink");
        for i in 0..1000 {
            sink.append(&row(Some(HOUR_07 + i), i, "r"))
                .expect("append");
            // Files become visible as they roll, before close.
            if i == 250 {
                let done = sink.take_finished_files();
                assert_eq!(done.len(), 1);
                assert_eq!(done[0].rows, 250);
                assert!(done[0].path.exists());
            }
        }
        let files = sink.close().expect("close");
        // One file was taken above; close returns the other three.
        assert_eq!(files.len(), 3);
        assert!(files.iter().all(|f| f.rows == 250));
        let mut total = 250;
        for f in &files {
            let n: usize = read_file(&f.path).iter().map(|b| b.num_rows()).sum();
            assert_eq!(n, 250);
            total += n;
        }
        assert_eq!(total, 1000);
        assert_eq!(files[2].span.first_source_offset, Some(750));
        assert_eq!(files[2].span.last_source_offset, Some(999));
        assert_eq!(all_files(tmp.path()).len(), 4);
        assert!(remove_temp_files(tmp.path()).expect("scan").is_empty());
    }

    #[test]
    fn long_rows_are_written_out_before_the_buffer_passes_its_bound() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut sink = ParquetSink::new(
            ParquetSinkConfig::new(tmp.path()),
            SequentialFileNamer::new("long"),
        )
        .expect("sink");
        // 1 MiB paths (the longest line the decoder accepts): far fewer rows
        // than a size check every BUFFER_CHECK_ROWS would wait for.
        let path = format!("/{}", "p".repeat(1024 * 1024 - 1));
        for i in 0..48 {
            let mut r = row(Some(HOUR_07 + i), i, "r");
            r.path = Some(&path);
            sink.append(&r).expect("append");
            let buffered = sink.partitions[0].columns.approx_bytes();
            assert!(
                buffered < MAX_ROW_GROUP_BUFFER_BYTES + 2 * 1024 * 1024,
                "row {i}: {buffered} bytes buffered"
            );
        }
        let files = sink.close().expect("close");
        let rows: usize = files
            .iter()
            .flat_map(|f| read_file(&f.path))
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(rows, 48);
    }

    #[test]
    fn rolls_by_age_and_size() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = ParquetSinkConfig {
            batch_rows: 10,
            max_file_age: Duration::from_secs(60),
            max_file_bytes: 1,
            ..ParquetSinkConfig::new(tmp.path())
        };
        let mut sink = ParquetSink::new(config, SequentialFileNamer::new("s")).expect("sink");
        // Size: every written batch pushes the file over 1 byte, so each batch is a file.
        for i in 0..30 {
            sink.append(&row(Some(HOUR_07), i, "r")).expect("append");
        }
        assert_eq!(sink.take_finished_files().len(), 3);
        // Age: buffered rows roll once the file is older than max_file_age.
        for i in 0..5 {
            sink.append(&row(Some(HOUR_07), i, "r")).expect("append");
        }
        sink.roll_files_older_than(Instant::now())
            .expect("young file stays");
        assert!(sink.take_finished_files().is_empty());
        sink.roll_files_older_than(Instant::now() + Duration::from_secs(61))
            .expect("roll");
        let aged = sink.take_finished_files();
        assert_eq!(aged.len(), 1);
        assert_eq!(aged[0].rows, 5);
        assert!(sink.close().expect("close").is_empty());
    }

    #[test]
    fn kafka_offsets_reach_the_namer() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let namer = |span: &FileRowSpan| match &span.kafka {
            Some(k) => format!(
                "{}-{}-{:020}-{:020}.parquet",
                k.topic, k.partition, k.first_offset, k.last_offset
            ),
            None => format!("unknown-{}.parquet", span.sequence),
        };
        let mut sink = ParquetSink::new(ParquetSinkConfig::new(tmp.path()), namer).expect("sink");
        for offset in 100..110 {
            sink.append(&EnrichedRow {
                kafka_topic: Some("gw-logs"),
                kafka_partition: Some(3),
                kafka_offset: Some(offset),
                ..row(Some(HOUR_07), 0, "r")
            })
            .expect("append");
        }
        let files = sink.close().expect("close");
        assert_eq!(files.len(), 1);
        assert_eq!(
            files[0].path.file_name().and_then(|n| n.to_str()),
            Some("gw-logs-3-00000000000000000100-00000000000000000109.parquet")
        );
        let kafka = files[0].span.kafka.as_ref().expect("kafka span");
        assert!(!kafka.mixed);
    }

    #[test]
    fn rejects_bad_file_names_and_leaves_no_temp_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut sink = ParquetSink::new(ParquetSinkConfig::new(tmp.path()), |_: &FileRowSpan| {
            "../escape.parquet".to_string()
        })
        .expect("sink");
        sink.append(&row(Some(HOUR_07), 0, "r")).expect("append");
        let err = sink.close().expect_err("bad name");
        assert!(matches!(err, SinkError::InvalidFileName { .. }), "{err}");
        assert!(all_files(tmp.path()).is_empty());
    }

    #[test]
    fn evicts_least_recently_used_partition() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = ParquetSinkConfig {
            max_open_partitions: 2,
            ..ParquetSinkConfig::new(tmp.path())
        };
        let mut sink = ParquetSink::new(config, SequentialFileNamer::new("lru")).expect("sink");
        for h in 0..5 {
            sink.append(&row(Some(HOUR_07 + h * MICROS_PER_HOUR), h, "r"))
                .expect("append");
            assert!(sink.open_partitions() <= 2);
        }
        assert_eq!(sink.take_finished_files().len(), 3);
        assert_eq!(sink.close().expect("close").len(), 2);
    }

    #[test]
    fn removes_stale_temp_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("dt=2024-05-01/hour=07");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let stale = dir.join(".routeproof-1-0.parquet.tmp");
        std::fs::write(&stale, b"partial").expect("write");
        std::fs::write(dir.join("keep.parquet"), b"x").expect("write");
        let removed = remove_temp_files(tmp.path()).expect("remove");
        assert_eq!(removed, vec![stale.clone()]);
        assert!(!stale.exists());
        assert!(dir.join("keep.parquet").exists());
    }

    #[test]
    fn hour_range_holds_exactly_the_times_of_its_key() {
        let hour = PartitionKey::of(Some(HOUR_07));
        let range = hour.hour_micros();
        assert_eq!(range, HOUR_07..HOUR_07 + MICROS_PER_HOUR);
        for t in [
            HOUR_07 - 1,
            HOUR_07,
            HOUR_07 + 1,
            HOUR_07 + MICROS_PER_HOUR - 1,
            HOUR_07 + MICROS_PER_HOUR,
            -1,
            0,
        ] {
            assert_eq!(range.contains(&t), PartitionKey::of(Some(t)) == hour, "{t}");
        }
        // Before the epoch, the hour is floored: -1 µs is in the hour before 0.
        assert_eq!(
            PartitionKey::of(Some(-1)).hour_micros(),
            -MICROS_PER_HOUR..0
        );
        // Hours whose bounds overflow, and the no-time partition, hold no time
        // by range (their rows take the keyed lookup).
        for t in [i64::MIN, i64::MAX] {
            let extreme = PartitionKey::of(Some(t));
            assert!(extreme.hour_micros().is_empty(), "{t}");
        }
        assert!(PartitionKey::NoEventTime.hour_micros().is_empty());
    }

    #[test]
    fn rows_alternating_between_partitions_land_in_their_own() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut sink = ParquetSink::new(
            ParquetSinkConfig::new(tmp.path()),
            SequentialFileNamer::new("alternating"),
        )
        .expect("sink");
        let times = [
            Some(HOUR_07),
            None,
            Some(HOUR_07 + MICROS_PER_HOUR),
            Some(HOUR_07 + MICROS_PER_HOUR - 1),
            None,
            Some(HOUR_07 + MICROS_PER_HOUR),
            Some(HOUR_07 - 1),
        ];
        for (offset, &event_time) in times.iter().enumerate() {
            sink.append(&row(event_time, offset as i64, "r"))
                .expect("append");
        }
        let mut files = sink.close().expect("close");
        files.sort_by_key(|f| f.span.first_source_offset);
        let spans: Vec<_> = files
            .iter()
            .map(|f| {
                (
                    f.rows,
                    f.span.first_source_offset,
                    f.span.last_source_offset,
                )
            })
            .collect();
        // Hour 07: offsets 0 and 3; no time: 1 and 4; hour 08: 2 and 5; hour 06: 6.
        assert_eq!(
            spans,
            vec![
                (2, Some(0), Some(3)),
                (2, Some(1), Some(4)),
                (2, Some(2), Some(5)),
                (1, Some(6), Some(6)),
            ]
        );
    }

    #[test]
    fn sink_can_move_to_a_writer_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<ParquetSink>();
    }

    #[test]
    fn invalid_config_is_an_error() {
        let config = ParquetSinkConfig {
            zstd_level: 99,
            ..ParquetSinkConfig::new("/nonexistent")
        };
        assert!(matches!(config.validate(), Err(SinkError::Config(_))));
        assert_eq!(
            PartitionKey::of(Some(-1)).relative_dir(),
            PathBuf::from("dt=1969-12-31/hour=23")
        );
    }
}
