//! One enriched record ([`EnrichedRow`]) and the Arrow schema of enriched
//! records ([`enriched_schema`], schema v1). Rows are written to Parquet by
//! [`super::columns`]; the Arrow column builders here (`EnrichedBatchBuilder`,
//! tests only) are the reference its output is checked against.
//!
//! The schema is versioned: `schemas/enriched-v1.json` describes every column
//! and a unit test keeps it equal to [`enriched_schema`]. Only additive changes
//! (new nullable columns at the end) are allowed within v1; see
//! `schemas/README.md`.
//!
//! Type choices:
//! - `event_time` is `timestamp[us, tz=UTC]` (Parquet `TIMESTAMP(MICROS, isAdjustedToUTC=true)`).
//! - `duration_ms` is `float64`: Envoy and HAProxy log whole milliseconds but NGINX logs
//!   `$request_time` in seconds with millisecond (sometimes finer) resolution; a float keeps
//!   sub-millisecond values without a second column.
//! - `index_version` is `int64` (not `uint64`): Spark and some Parquet readers do not support
//!   unsigned 64-bit integers. Versions above `i64::MAX` are clamped (never happens in practice).

use std::sync::Arc;

#[cfg(test)]
use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampMicrosecondBuilder,
};
#[cfg(test)]
use arrow_array::{ArrayRef, RecordBatch};
#[cfg(test)]
use arrow_schema::ArrowError;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Version of the enriched-record schema produced by [`enriched_schema`].
pub const ENRICHED_SCHEMA_VERSION: u32 = 1;

/// Key of the Arrow / Parquet metadata entry that names the schema version.
pub const ENRICHED_SCHEMA_METADATA_KEY: &str = "routeproof.schema";

/// Value of the [`ENRICHED_SCHEMA_METADATA_KEY`] metadata entry.
pub const ENRICHED_SCHEMA_METADATA_VALUE: &str = "enriched-v1";

/// Time zone of the `event_time` column.
pub const EVENT_TIME_ZONE: &str = "UTC";

/// Which signal identified the actual backend (column `actual_source`); owned by
/// the resolver.
pub use crate::resolve::ActualSource;

/// A borrowed list of strings, whatever the caller holds its strings in, so
/// that building an [`EnrichedRow`] never needs a temporary `Vec<&str>`.
#[derive(Debug, Clone, Copy, Default)]
pub enum StrList<'a> {
    /// No elements.
    #[default]
    Empty,
    /// A slice of borrowed strings.
    Borrowed(&'a [&'a str]),
    /// A slice of owned strings.
    Owned(&'a [String]),
    /// A slice of shared strings.
    Shared(&'a [Arc<str>]),
}

impl<'a> StrList<'a> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            StrList::Empty => 0,
            StrList::Borrowed(s) => s.len(),
            StrList::Owned(s) => s.len(),
            StrList::Shared(s) => s.len(),
        }
    }

    /// True when the list has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element at `index`, if any.
    pub fn get(&self, index: usize) -> Option<&'a str> {
        match *self {
            StrList::Empty => None,
            StrList::Borrowed(s) => s.get(index).copied(),
            StrList::Owned(s) => s.get(index).map(String::as_str),
            StrList::Shared(s) => s.get(index).map(|a| &**a),
        }
    }

    /// Bytes of all elements together (one pass over the variant's slice;
    /// [`ParquetSink::append`](super::ParquetSink::append) asks it per row).
    #[inline]
    pub fn total_len(&self) -> usize {
        match *self {
            StrList::Empty => 0,
            // The usual list, one upstream attempt: no loop.
            StrList::Borrowed([one]) => one.len(),
            StrList::Borrowed(s) => s.iter().map(|v| v.len()).sum(),
            StrList::Owned(s) => s.iter().map(String::len).sum(),
            StrList::Shared(s) => s.iter().map(|v| v.len()).sum(),
        }
    }

    /// Iterates over the elements in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        (0..self.len()).filter_map(move |i| self.get(i))
    }
}

impl<'a> From<&'a [&'a str]> for StrList<'a> {
    fn from(value: &'a [&'a str]) -> Self {
        StrList::Borrowed(value)
    }
}

impl<'a, const N: usize> From<&'a [&'a str; N]> for StrList<'a> {
    fn from(value: &'a [&'a str; N]) -> Self {
        StrList::Borrowed(value)
    }
}

impl<'a> From<&'a [String]> for StrList<'a> {
    fn from(value: &'a [String]) -> Self {
        StrList::Owned(value)
    }
}

impl<'a> From<&'a Vec<String>> for StrList<'a> {
    fn from(value: &'a Vec<String>) -> Self {
        StrList::Owned(value)
    }
}

impl<'a> From<&'a [Arc<str>]> for StrList<'a> {
    fn from(value: &'a [Arc<str>]) -> Self {
        StrList::Shared(value)
    }
}

/// One enriched record: the access-log request, the backend that served it,
/// the backends the Gateway API configuration expects, and the verdict.
///
/// Borrows every string so that building one costs no allocation. Field names
/// equal the column names of [`enriched_schema`]. `Default` gives a row with
/// every nullable column null, `verdict` and `input_format` empty, and both
/// flags false.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnrichedRow<'a> {
    /// Request time in microseconds since the Unix epoch, UTC; `None` when the log had no
    /// usable timestamp (the row goes to the null partition).
    pub event_time: Option<i64>,
    /// Gateway as `namespace/name`.
    pub gateway: Option<&'a str>,
    /// Listener (section) name on the gateway.
    pub listener: Option<&'a str>,
    /// Request host (`:authority` / `Host`).
    pub host: Option<&'a str>,
    /// HTTP method.
    pub method: Option<&'a str>,
    /// Request path, with the query string when the log carries it.
    pub path: Option<&'a str>,
    /// Response status code.
    pub status: Option<i32>,
    /// Implementation-specific response flags (e.g. Envoy `UF,URX`).
    pub response_flags: Option<&'a str>,
    /// Total request duration in milliseconds.
    pub duration_ms: Option<f64>,
    /// Response body bytes sent downstream.
    pub bytes_sent: Option<i64>,
    /// Request id (`x-request-id` or equivalent).
    pub request_id: Option<&'a str>,
    /// The Service that actually served the request, `namespace/name`.
    pub actual_backend: Option<&'a str>,
    /// The raw upstream value from the log (cluster name or `ip:port`).
    pub actual_upstream: Option<&'a str>,
    /// Which signal identified `actual_backend`.
    pub actual_source: ActualSource,
    /// Backends (`namespace/name`) the configuration allows; `None` when no decision was
    /// made (e.g. unknown gateway), empty when the decision expects no backend (redirect,
    /// no route).
    pub expected_backends: Option<StrList<'a>>,
    /// Status the configuration implies without a backend (redirect code, 404, 500 for an
    /// invalid backendRef).
    pub expected_status: Option<i32>,
    /// Matched route, `namespace/name`.
    pub route: Option<&'a str>,
    /// Kind of the matched route (`HTTPRoute`, `GRPCRoute`).
    pub route_kind: Option<&'a str>,
    /// Index of the matched rule in the route.
    pub rule: Option<i32>,
    /// Verdict (`ok`, `misrouted`, ...); never null.
    pub verdict: &'a str,
    /// Short machine-readable reason for the verdict.
    pub verdict_reason: Option<&'a str>,
    /// Version of the route index the decision used.
    pub index_version: Option<u64>,
    /// Access-log format the record was decoded from (e.g. `envoy_json`); never null.
    pub input_format: &'a str,
    /// Input file path (file replay).
    pub source_file: Option<&'a str>,
    /// Byte offset of the record in `source_file` (file replay).
    pub source_offset: Option<i64>,
    /// Kafka topic (null in file replay).
    pub kafka_topic: Option<&'a str>,
    /// Kafka partition (null in file replay).
    pub kafka_partition: Option<i32>,
    /// Kafka offset (null in file replay).
    pub kafka_offset: Option<i64>,
    /// True when request attributes that routes match on were missing from the log and
    /// the expected set is the union over their possible values.
    pub decision_ambiguous: bool,
    /// Why the decision was ambiguous (e.g. `header:x-canary unknown`).
    pub ambiguity_reason: Option<&'a str>,
    /// Upstream hosts tried, in order, when the log records retries.
    pub upstream_attempts: StrList<'a>,
    /// True when the route index used was older than the allowed staleness.
    pub index_stale: bool,
    /// Stable ids of values whose identity the producer already knows, so
    /// that the Parquet writer maps them to dictionary entries without
    /// hashing their bytes; none by default (every value then goes by its
    /// bytes). The strings above stay authoritative: see [`ValueIds`].
    pub ids: ValueIds<'a>,
}

/// Ids of an [`EnrichedRow`]'s values that come from the route index or from
/// a small closed set, next to the strings themselves.
///
/// The contract: within one scope, an id always stands for the same string
/// (the row's field). The Parquet writer then remembers, per row group and
/// column, which dictionary entry an id's string became, and looks the id up
/// in a short array instead of hashing the string; a value without an id
/// (`None`) is looked up by its bytes as before. The output does not depend
/// on the ids: dictionaries keep first-appearance order either way.
///
/// Scopes:
/// - **index ids** (`gateway`, `listener`, `route`, `actual_backend`,
///   `expected_backends`) are positions in one
///   [`RouteIndex`](crate::gateway::RouteIndex), named by
///   [`ValueIds::index`]: the writer drops what it learnt about them whenever
///   the index changes (the live `run` path judges records against several
///   snapshots, and the processor's own index may share a snapshot's
///   version), and ignores them on a row without an index.
/// - **closed-set ids** (`route_kind`, `verdict`, `input_format`) are the
///   enum discriminants of [`RouteKind`](crate::gateway::RouteKind),
///   [`Verdict`](crate::verdict::Verdict) and
///   [`Format`](crate::decode::Format): valid for the whole process.
///   `actual_source` needs none (the row holds its enum).
/// - the **upstream id** (`actual_upstream`) carries its own scope, an
///   endpoint index (see [`UpstreamId`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct ValueIds<'a> {
    /// The index the index ids are positions in
    /// ([`RouteIndex::instance`](crate::gateway::RouteIndex::instance));
    /// `None`: the index ids are ignored.
    pub index: Option<u64>,
    /// Position of the Gateway in the index's `gateways`.
    pub gateway: Option<u32>,
    /// Position of the listener in the index's `listeners`.
    pub listener: Option<u32>,
    /// Position of the route in the index's `routes` (`RuleHit::route_id`).
    pub route: Option<u32>,
    /// A backend id ([`RouteIndex::allowed_backend_id`](crate::gateway::RouteIndex::allowed_backend_id))
    /// of `actual_backend`.
    pub actual_backend: Option<u32>,
    /// Backend ids of the `expected_backends` items, in order: either one per
    /// item, or empty (the items then go by their bytes).
    pub expected_backends: &'a [u32],
    /// [`RouteKind`](crate::gateway::RouteKind) discriminant of `route_kind`.
    pub route_kind: Option<u32>,
    /// [`Verdict`](crate::verdict::Verdict) discriminant of `verdict`.
    pub verdict: Option<u32>,
    /// [`Format`](crate::decode::Format) discriminant of `input_format`.
    pub input_format: Option<u32>,
    /// An id of `actual_upstream` when the producer found that text in an
    /// endpoint index (see [`UpstreamId`]).
    pub actual_upstream: Option<UpstreamId>,
    /// `verdict_reason` again when it is a `&'static str` (the judge's
    /// reasons are): the same string as the row's field. The writer then
    /// recognises a reason it has seen by the string's address and length,
    /// without reading or hashing its bytes: a static string's bytes never
    /// change, so an address stands for one value for the whole process.
    pub verdict_reason: Option<&'static str>,
}

/// An id of an `actual_upstream` text: the address id
/// ([`AnsweredBy::address_id`](crate::resolve::AnsweredBy::address_id)) of
/// the endpoint index that text was found in as an address's canonical
/// spelling. Its scope is that index, named by `endpoints`: the writer drops
/// what it learnt about these ids whenever `endpoints` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamId {
    /// [`EndpointIndex::instance`](crate::resolve::EndpointIndex::instance)
    /// of the index.
    pub endpoints: u64,
    /// The address id in that index.
    pub address: u32,
}

impl EnrichedRow<'_> {
    /// Bytes of the strings taken from the input line (host, method, path,
    /// response flags, request id, upstream and its attempts): the part of a
    /// row whose size the input decides; the rest comes from the route index.
    #[inline]
    pub fn input_bytes(&self) -> usize {
        let len = |s: Option<&str>| s.map_or(0, str::len);
        len(self.host)
            + len(self.method)
            + len(self.path)
            + len(self.response_flags)
            + len(self.request_id)
            + len(self.actual_upstream)
            + self.upstream_attempts.total_len()
    }
}

fn list_field() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Utf8, false))
}

fn event_time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(EVENT_TIME_ZONE.into()))
}

/// The Arrow schema of enriched records, version 1 (`schemas/enriched-v1.json`).
///
/// The schema carries the metadata entry
/// [`ENRICHED_SCHEMA_METADATA_KEY`] = [`ENRICHED_SCHEMA_METADATA_VALUE`].
pub fn enriched_schema() -> SchemaRef {
    use DataType::{Boolean, Float64, Int32, Int64, Utf8};
    let list_utf8 = DataType::List(list_field());
    let fields = vec![
        Field::new("event_time", event_time_type(), true),
        Field::new("gateway", Utf8, true),
        Field::new("listener", Utf8, true),
        Field::new("host", Utf8, true),
        Field::new("method", Utf8, true),
        Field::new("path", Utf8, true),
        Field::new("status", Int32, true),
        Field::new("response_flags", Utf8, true),
        Field::new("duration_ms", Float64, true),
        Field::new("bytes_sent", Int64, true),
        Field::new("request_id", Utf8, true),
        Field::new("actual_backend", Utf8, true),
        Field::new("actual_upstream", Utf8, true),
        Field::new("actual_source", Utf8, false),
        Field::new("expected_backends", list_utf8.clone(), true),
        Field::new("expected_status", Int32, true),
        Field::new("route", Utf8, true),
        Field::new("route_kind", Utf8, true),
        Field::new("rule", Int32, true),
        Field::new("verdict", Utf8, false),
        Field::new("verdict_reason", Utf8, true),
        Field::new("index_version", Int64, true),
        Field::new("input_format", Utf8, false),
        Field::new("source_file", Utf8, true),
        Field::new("source_offset", Int64, true),
        Field::new("kafka_topic", Utf8, true),
        Field::new("kafka_partition", Int32, true),
        Field::new("kafka_offset", Int64, true),
        Field::new("decision_ambiguous", Boolean, false),
        Field::new("ambiguity_reason", Utf8, true),
        Field::new("upstream_attempts", list_utf8, false),
        Field::new("index_stale", Boolean, false),
    ];
    let metadata: std::collections::HashMap<String, String> = [(
        ENRICHED_SCHEMA_METADATA_KEY.to_string(),
        ENRICHED_SCHEMA_METADATA_VALUE.to_string(),
    )]
    .into_iter()
    .collect();
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

/// A short, stable name of an Arrow type as used in `schemas/enriched-v1.json`
/// (`utf8`, `int32`, `int64`, `float64`, `bool`, `timestamp[us, tz=UTC]`,
/// `list<utf8>`); other types fall back to their `Debug` form.
pub fn arrow_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 => "utf8".to_string(),
        DataType::Int32 => "int32".to_string(),
        DataType::Int64 => "int64".to_string(),
        DataType::Float64 => "float64".to_string(),
        DataType::Boolean => "bool".to_string(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) => format!("timestamp[us, tz={tz}]"),
        DataType::Timestamp(TimeUnit::Microsecond, None) => "timestamp[us]".to_string(),
        DataType::List(item) => format!("list<{}>", arrow_type_name(item.data_type())),
        other => format!("{other:?}"),
    }
}

/// Column builders for [`EnrichedRow`]s, one per column, named after the column:
/// the straightforward Arrow form of rows, kept for tests as the reference the
/// Parquet writer ([`super::columns`]) must read back equal to.
///
/// [`append`](Self::append) copies a row into the builders;
/// [`finish`](Self::finish) turns the rows appended so far into a
/// [`RecordBatch`] and empties the builders.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct EnrichedBatchBuilder {
    schema: SchemaRef,
    rows: usize,
    /// The rows the builders are sized for; restored after every
    /// [`finish`](Self::finish) (Arrow builders hand their buffers to the
    /// array and would otherwise regrow from zero, copying, every batch).
    capacity: usize,
    event_time: TimestampMicrosecondBuilder,
    gateway: StringBuilder,
    listener: StringBuilder,
    host: StringBuilder,
    method: StringBuilder,
    path: StringBuilder,
    status: Int32Builder,
    response_flags: StringBuilder,
    duration_ms: Float64Builder,
    bytes_sent: Int64Builder,
    request_id: StringBuilder,
    actual_backend: StringBuilder,
    actual_upstream: StringBuilder,
    actual_source: StringBuilder,
    expected_backends: ListBuilder<StringBuilder>,
    expected_status: Int32Builder,
    route: StringBuilder,
    route_kind: StringBuilder,
    rule: Int32Builder,
    verdict: StringBuilder,
    verdict_reason: StringBuilder,
    index_version: Int64Builder,
    input_format: StringBuilder,
    source_file: StringBuilder,
    source_offset: Int64Builder,
    kafka_topic: StringBuilder,
    kafka_partition: Int32Builder,
    kafka_offset: Int64Builder,
    decision_ambiguous: BooleanBuilder,
    ambiguity_reason: StringBuilder,
    upstream_attempts: ListBuilder<StringBuilder>,
    index_stale: BooleanBuilder,
}

#[cfg(test)]
impl Default for EnrichedBatchBuilder {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

#[cfg(test)]
impl EnrichedBatchBuilder {
    /// Builders with room for `rows` rows before they grow.
    pub fn with_capacity(rows: usize) -> Self {
        // Rough per-value byte estimate for string columns, to avoid early regrowth.
        let s = |bytes_per_row: usize| StringBuilder::with_capacity(rows, rows * bytes_per_row);
        let list = || {
            ListBuilder::with_capacity(StringBuilder::with_capacity(rows, rows * 24), rows)
                .with_field(list_field())
        };
        Self {
            schema: enriched_schema(),
            rows: 0,
            capacity: rows,
            event_time: TimestampMicrosecondBuilder::with_capacity(rows)
                .with_timezone(EVENT_TIME_ZONE),
            gateway: s(24),
            listener: s(8),
            host: s(24),
            method: s(4),
            path: s(48),
            status: Int32Builder::with_capacity(rows),
            response_flags: s(2),
            duration_ms: Float64Builder::with_capacity(rows),
            bytes_sent: Int64Builder::with_capacity(rows),
            request_id: s(36),
            actual_backend: s(24),
            actual_upstream: s(40),
            actual_source: s(12),
            expected_backends: list(),
            expected_status: Int32Builder::with_capacity(rows),
            route: s(24),
            route_kind: s(9),
            rule: Int32Builder::with_capacity(rows),
            verdict: s(8),
            verdict_reason: s(16),
            index_version: Int64Builder::with_capacity(rows),
            input_format: s(10),
            source_file: s(32),
            source_offset: Int64Builder::with_capacity(rows),
            kafka_topic: s(0),
            kafka_partition: Int32Builder::with_capacity(rows),
            kafka_offset: Int64Builder::with_capacity(rows),
            decision_ambiguous: BooleanBuilder::with_capacity(rows),
            ambiguity_reason: s(0),
            upstream_attempts: list(),
            index_stale: BooleanBuilder::with_capacity(rows),
        }
    }

    /// Number of rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when no row was appended since the last [`finish`](Self::finish).
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row. Does not allocate beyond the builders' amortised growth.
    pub fn append(&mut self, row: &EnrichedRow<'_>) {
        self.event_time.append_option(row.event_time);
        self.gateway.append_option(row.gateway);
        self.listener.append_option(row.listener);
        self.host.append_option(row.host);
        self.method.append_option(row.method);
        self.path.append_option(row.path);
        self.status.append_option(row.status);
        self.response_flags.append_option(row.response_flags);
        self.duration_ms.append_option(row.duration_ms);
        self.bytes_sent.append_option(row.bytes_sent);
        self.request_id.append_option(row.request_id);
        self.actual_backend.append_option(row.actual_backend);
        self.actual_upstream.append_option(row.actual_upstream);
        self.actual_source.append_value(row.actual_source.as_str());
        match row.expected_backends {
            Some(list) => {
                for backend in list.iter() {
                    self.expected_backends.values().append_value(backend);
                }
                self.expected_backends.append(true);
            }
            None => self.expected_backends.append(false),
        }
        self.expected_status.append_option(row.expected_status);
        self.route.append_option(row.route);
        self.route_kind.append_option(row.route_kind);
        self.rule.append_option(row.rule);
        self.verdict.append_value(row.verdict);
        self.verdict_reason.append_option(row.verdict_reason);
        self.index_version.append_option(
            row.index_version
                .map(|v| i64::try_from(v).unwrap_or(i64::MAX)),
        );
        self.input_format.append_value(row.input_format);
        self.source_file.append_option(row.source_file);
        self.source_offset.append_option(row.source_offset);
        self.kafka_topic.append_option(row.kafka_topic);
        self.kafka_partition.append_option(row.kafka_partition);
        self.kafka_offset.append_option(row.kafka_offset);
        self.decision_ambiguous.append_value(row.decision_ambiguous);
        self.ambiguity_reason.append_option(row.ambiguity_reason);
        for attempt in row.upstream_attempts.iter() {
            self.upstream_attempts.values().append_value(attempt);
        }
        self.upstream_attempts.append(true);
        self.index_stale.append_value(row.index_stale);
        self.rows += 1;
    }

    /// Builds a record batch from the rows appended so far and empties the builders.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_time.finish()),
            Arc::new(self.gateway.finish()),
            Arc::new(self.listener.finish()),
            Arc::new(self.host.finish()),
            Arc::new(self.method.finish()),
            Arc::new(self.path.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.response_flags.finish()),
            Arc::new(self.duration_ms.finish()),
            Arc::new(self.bytes_sent.finish()),
            Arc::new(self.request_id.finish()),
            Arc::new(self.actual_backend.finish()),
            Arc::new(self.actual_upstream.finish()),
            Arc::new(self.actual_source.finish()),
            Arc::new(self.expected_backends.finish()),
            Arc::new(self.expected_status.finish()),
            Arc::new(self.route.finish()),
            Arc::new(self.route_kind.finish()),
            Arc::new(self.rule.finish()),
            Arc::new(self.verdict.finish()),
            Arc::new(self.verdict_reason.finish()),
            Arc::new(self.index_version.finish()),
            Arc::new(self.input_format.finish()),
            Arc::new(self.source_file.finish()),
            Arc::new(self.source_offset.finish()),
            Arc::new(self.kafka_topic.finish()),
            Arc::new(self.kafka_partition.finish()),
            Arc::new(self.kafka_offset.finish()),
            Arc::new(self.decision_ambiguous.finish()),
            Arc::new(self.ambiguity_reason.finish()),
            Arc::new(self.upstream_attempts.finish()),
            Arc::new(self.index_stale.finish()),
        ];
        let capacity = self.capacity;
        *self = Self::with_capacity(capacity);
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, TimestampMicrosecondType};
    use arrow_array::Array;

    /// `schemas/enriched-v1.json`, the published description of schema v1.
    const ENRICHED_V1_JSON: &str = include_str!("../../schemas/enriched-v1.json");

    #[test]
    fn total_len_adds_up_every_variant() {
        let borrowed = ["10.0.0.1:8080", "", "10.0.0.2:80"];
        let owned: Vec<String> = borrowed.iter().map(|s| s.to_string()).collect();
        let shared: Vec<Arc<str>> = borrowed.iter().map(|&s| Arc::from(s)).collect();
        for list in [
            StrList::Borrowed(&borrowed),
            StrList::Owned(&owned),
            StrList::Shared(&shared),
        ] {
            assert_eq!(list.total_len(), 24);
            assert_eq!(list.total_len(), list.iter().map(str::len).sum::<usize>());
        }
        assert_eq!(StrList::Empty.total_len(), 0);
        // One element (the usual upstream list) and none, borrowed.
        assert_eq!(StrList::Borrowed(&borrowed[..1]).total_len(), 13);
        assert_eq!(StrList::Borrowed(&borrowed[1..2]).total_len(), 0);
        assert_eq!(StrList::Borrowed(&[]).total_len(), 0);
    }

    #[test]
    fn enriched_schema_equals_published_v1_description() {
        let doc: serde_json::Value =
            serde_json::from_str(ENRICHED_V1_JSON).expect("enriched-v1.json is valid JSON");
        assert_eq!(doc["version"], 1);
        let columns = doc["columns"].as_array().expect("columns array");
        let schema = enriched_schema();
        let described: Vec<(String, String, bool)> = columns
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().expect("name").to_string(),
                    c["arrow_type"].as_str().expect("arrow_type").to_string(),
                    c["nullable"].as_bool().expect("nullable"),
                )
            })
            .collect();
        let actual: Vec<(String, String, bool)> = schema
            .fields()
            .iter()
            .map(|f| {
                (
                    f.name().clone(),
                    arrow_type_name(f.data_type()),
                    f.is_nullable(),
                )
            })
            .collect();
        assert_eq!(described, actual);
        for c in columns {
            let meaning = c["meaning"].as_str().unwrap_or_default();
            assert!(!meaning.is_empty(), "column {} has no meaning", c["name"]);
        }
    }

    #[test]
    fn builder_produces_batch_matching_schema() {
        let mut builder = EnrichedBatchBuilder::with_capacity(4);
        let expected = ["ns/a", "ns/b"];
        let owned = vec!["10.0.0.1:80".to_string(), "10.0.0.2:80".to_string()];
        builder.append(&EnrichedRow {
            event_time: Some(1_700_000_000_000_000),
            gateway: Some("infra/gw"),
            status: Some(200),
            actual_source: ActualSource::Endpoint,
            expected_backends: Some((&expected).into()),
            upstream_attempts: (&owned).into(),
            verdict: "ok",
            input_format: "envoy_json",
            ..EnrichedRow::default()
        });
        builder.append(&EnrichedRow {
            verdict: "unknown_gateway",
            input_format: "nginx_combined",
            ..EnrichedRow::default()
        });
        assert_eq!(builder.len(), 2);
        let batch = builder.finish().expect("batch");
        assert!(builder.is_empty());
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), enriched_schema());
        let time = batch
            .column_by_name("event_time")
            .expect("event_time")
            .as_primitive::<TimestampMicrosecondType>();
        assert_eq!(time.value(0), 1_700_000_000_000_000);
        assert!(time.is_null(1));
        let status = batch
            .column_by_name("status")
            .expect("status")
            .as_primitive::<Int32Type>();
        assert_eq!(status.value(0), 200);
        let expected_col = batch
            .column_by_name("expected_backends")
            .expect("expected_backends")
            .as_list::<i32>();
        assert!(expected_col.is_null(1));
        let first = expected_col.value(0);
        let first = first.as_string::<i32>();
        assert_eq!(first.value(0), "ns/a");
        assert_eq!(first.value(1), "ns/b");
        let attempts = batch
            .column_by_name("upstream_attempts")
            .expect("upstream_attempts")
            .as_list::<i32>();
        assert_eq!(attempts.value(0).len(), 2);
        assert_eq!(attempts.value(1).len(), 0);
        let source = batch
            .column_by_name("actual_source")
            .expect("actual_source")
            .as_string::<i32>();
        assert_eq!(source.value(0), "endpoint");
        assert_eq!(source.value(1), "none");
    }
}
