//! Configuration of `routeproof run`: a TOML file, every key overridable from
//! the environment, checked at start-up with errors that name the key.
//!
//! # Environment overrides
//!
//! Every key lives in a section (`[kafka]`, `[routes]`, ...). The variable
//! `ROUTEPROOF_<SECTION>__<KEY>` (upper case, sections and keys joined with a
//! double underscore) overrides `<section>.<key>`; nested tables add more
//! `__`-separated parts, e.g. `ROUTEPROOF_KAFKA__BROKERS=localhost:9092` or
//! `ROUTEPROOF_PARQUET__MAX_FILE_ROWS=500000`. The value is read as a TOML value
//! when it parses as one (`42`, `true`, `["a", "b"]`, `"quoted"`), else as a
//! plain string; when the file already holds a string at that key, the value is
//! always taken as a string. Variables starting with `ROUTEPROOF_` but without
//! `__` are not overrides (e.g. `ROUTEPROOF_QUIET`). Keys of free-form tables
//! that contain dots (`kafka.properties`) can only be set in the file.
//!
//! The example `config/routeproof.toml` documents every key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "ROUTEPROOF_";

/// Errors reading or checking the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("parsing config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// An environment variable cannot be applied.
    #[error("environment variable {var}: {why}")]
    Env {
        /// The variable.
        var: String,
        /// Why.
        why: String,
    },
    /// A key holds a value of the wrong type, or is unknown or missing.
    #[error("config key `{key}`: {message}")]
    Key {
        /// Dotted key path.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    fn key(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Key {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The route index source.
    #[serde(default)]
    pub routes: RoutesConfig,
    /// The Kafka consumer (and the producer of alerts and dead letters).
    pub kafka: KafkaConfig,
    /// Decoding and worker threads.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// The enriched Parquet output.
    pub parquet: ParquetConfig,
    /// The alert topic.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Dead letters.
    #[serde(default)]
    pub dead_letters: DeadLettersConfig,
    /// Logging of lag and counters.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Secrets masked in dead letters.
    #[serde(default)]
    pub redaction: RedactionConfig,
}

/// `[redaction]`: request headers and query parameters whose values are
/// masked wherever raw input is kept (dead letters); see [`crate::redact`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionConfig {
    /// Header names (case-insensitive); absent: [`crate::redact::DEFAULT_HEADERS`].
    #[serde(default)]
    pub headers: Option<Vec<String>>,
    /// Query parameter names (case-insensitive); absent:
    /// [`crate::redact::DEFAULT_QUERY_KEYS`].
    #[serde(default)]
    pub query_keys: Option<Vec<String>>,
}

impl RedactionConfig {
    /// The configured redaction; each list replaces its default when given.
    pub fn redaction(&self) -> crate::redact::Redaction {
        use crate::redact::{Redaction, DEFAULT_HEADERS, DEFAULT_QUERY_KEYS};
        let defaults = |d: &[&str]| d.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        let headers = self
            .headers
            .clone()
            .unwrap_or_else(|| defaults(DEFAULT_HEADERS));
        let query_keys = self
            .query_keys
            .clone()
            .unwrap_or_else(|| defaults(DEFAULT_QUERY_KEYS));
        Redaction::new(&headers, &query_keys)
    }
}

/// Where the live route index of `run` comes from (`routes.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteSourceKind {
    /// Manifest files, re-read whenever they change (`routes.manifests`).
    Manifests,
    /// Watches of the Kubernetes API (in-cluster service account, KUBECONFIG,
    /// or `routes.kube_api_url`).
    Kube,
}

/// `[routes]`: where the route index comes from and how its history is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutesConfig {
    /// `manifests` or `kube`; when absent: `manifests` if `manifests` is set,
    /// else `kube`. Read it through [`RoutesConfig::source_kind`].
    #[serde(default)]
    pub source: Option<RouteSourceKind>,
    /// Manifest files or directories (like `replay --manifests`).
    #[serde(default)]
    pub manifests: Vec<PathBuf>,
    /// How often the manifest files are checked for changes.
    #[serde(default = "default_poll_interval_seconds")]
    pub poll_interval_seconds: f64,
    /// API server URL used without credentials (e.g. `kubectl proxy` at
    /// `http://127.0.0.1:8001`); absent: in-cluster config or KUBECONFIG.
    #[serde(default)]
    pub kube_api_url: Option<String>,
    /// Quiet time after a watched change before the index is rebuilt.
    #[serde(default = "default_debounce_ms")]
    pub debounce_ms: u64,
    /// How long superseded snapshots are kept for late records.
    #[serde(default = "default_history_retention_seconds")]
    pub history_retention_seconds: u64,
    /// A record up to this long after a routing change that disagrees with the
    /// configuration is `in_transition`, not an alert.
    #[serde(default = "default_grace_seconds")]
    pub grace_seconds: f64,
    /// Likewise up to this long before a change (the gateway may apply it first).
    #[serde(default = "default_lead_seconds")]
    pub lead_seconds: f64,
    /// Rows carry `index_stale = true` once the source has not confirmed the
    /// index for this long.
    #[serde(default = "default_stale_after_seconds")]
    pub stale_after_seconds: f64,
    /// Turn off listener isolation.
    #[serde(default)]
    pub no_listener_isolation: bool,
    /// Treat ExternalName Services as valid backends.
    #[serde(default)]
    pub allow_external_name: bool,
}

impl Default for RoutesConfig {
    fn default() -> Self {
        RoutesConfig {
            source: None,
            manifests: Vec::new(),
            poll_interval_seconds: default_poll_interval_seconds(),
            kube_api_url: None,
            debounce_ms: default_debounce_ms(),
            history_retention_seconds: default_history_retention_seconds(),
            grace_seconds: default_grace_seconds(),
            lead_seconds: default_lead_seconds(),
            stale_after_seconds: default_stale_after_seconds(),
            no_listener_isolation: false,
            allow_external_name: false,
        }
    }
}

impl RoutesConfig {
    /// The effective source: `source`, or `manifests` when manifest paths are
    /// given, else `kube`.
    pub fn source_kind(&self) -> RouteSourceKind {
        self.source.unwrap_or(if self.manifests.is_empty() {
            RouteSourceKind::Kube
        } else {
            RouteSourceKind::Manifests
        })
    }
}

/// `[kafka]`: the consumer group and the connection settings shared with the producer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Consumer group id.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Topics to consume; an entry starting with `^` is a regular expression.
    pub topics: Vec<String>,
    /// Client id reported to the brokers.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// Where to start a partition with no committed offset and no output on
    /// storage: `earliest` or `latest`.
    #[serde(default = "default_offset_reset")]
    pub auto_offset_reset: String,
    /// Consumer session timeout.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// Upper bound of the messages librdkafka pre-fetches for each worker (the
    /// partitions of a worker share one queue), in KiB.
    #[serde(default = "default_queued_kbytes")]
    pub queued_max_messages_kbytes: u64,
    /// How long librdkafka waits before fetching a partition again once the
    /// pre-fetch bound above was reached (librdkafka's `fetch.queue.backoff.ms`).
    /// librdkafka's own default, 1,000 ms, idles a consumer that is slower than
    /// its broker for most of every second after the queue drains; a short
    /// wait keeps the queue topped up while memory stays bounded.
    #[serde(default = "default_fetch_queue_backoff_ms")]
    pub fetch_queue_backoff_ms: u64,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    #[serde(default)]
    pub security_protocol: Option<String>,
    /// `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`, `OAUTHBEARER`, `GSSAPI`.
    #[serde(default)]
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    #[serde(default)]
    pub sasl_username: Option<String>,
    /// SASL password.
    #[serde(default)]
    pub sasl_password: Option<String>,
    /// CA certificate file (PEM).
    #[serde(default)]
    pub ssl_ca_location: Option<String>,
    /// Client certificate file (PEM).
    #[serde(default)]
    pub ssl_certificate_location: Option<String>,
    /// Client private key file (PEM).
    #[serde(default)]
    pub ssl_key_location: Option<String>,
    /// Password of the client private key.
    #[serde(default)]
    pub ssl_key_password: Option<String>,
    /// Any other librdkafka property, passed through as is (applied last).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// `[pipeline]`: decoding options and threads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Access-log format (`auto`, `envoy-json`, ...; as `replay --format`).
    #[serde(default = "auto")]
    pub format: String,
    /// Shipper envelope (as `replay --envelope`).
    #[serde(default = "auto")]
    pub envelope: String,
    /// Gateway implementation (as `replay --implementation`).
    #[serde(default = "auto")]
    pub implementation: String,
    /// Default Gateway `ns/name` for records that do not name one.
    #[serde(default)]
    pub gateway: Option<String>,
    /// Request headers to keep (when the log carries them).
    #[serde(default)]
    pub keep_headers: Vec<String>,
    /// Worker threads doing the per-record work (0: one per CPU).
    #[serde(default)]
    pub workers: usize,
    /// Messages per batch handed to a worker.
    #[serde(default = "default_batch_messages")]
    pub batch_messages: usize,
    /// Batches queued per worker before fetching pauses.
    #[serde(default = "default_queue_batches")]
    pub queue_batches: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            format: auto(),
            envelope: auto(),
            implementation: auto(),
            gateway: None,
            keep_headers: Vec::new(),
            workers: 0,
            batch_messages: default_batch_messages(),
            queue_batches: default_queue_batches(),
        }
    }
}

/// `[parquet]`: the enriched output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetConfig {
    /// `file:///dir`, a plain directory path, or `s3://bucket/prefix`.
    pub output: String,
    /// Local directory for files being written. Default: `<output>.staging` for
    /// a local output (same file system, so publishing is a rename), else
    /// `<tmp>/routeproof-staging`.
    #[serde(default)]
    pub staging_dir: Option<PathBuf>,
    /// Roll (and commit) when a partition's open files hold this many rows.
    #[serde(default = "default_max_file_rows")]
    pub max_file_rows: u64,
    /// Roll when a partition's open files reach this many (estimated) bytes.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Roll when a partition's open files are this old.
    #[serde(default = "default_max_file_age_seconds")]
    pub max_file_age_seconds: f64,
    /// zstd level, 1..=22 (default 1; see `ParquetSinkConfig::zstd_level`).
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
    /// Rows per row group.
    #[serde(default = "default_row_group_rows")]
    pub row_group_rows: usize,
    /// Options for the object store (e.g. `aws_region`, `aws_endpoint`,
    /// `aws_allow_http`), on top of the usual `AWS_*` environment variables.
    #[serde(default)]
    pub object_store: BTreeMap<String, String>,
}

/// `[alerts]`: the alert topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Topic alerts are produced to (keyed by fingerprint); empty: no alerts.
    #[serde(default = "default_alert_topic")]
    pub topic: String,
    /// Aggregation window.
    #[serde(default = "default_window_seconds")]
    pub window_seconds: u64,
    /// Request ids kept per alert.
    #[serde(default = "default_sample_ids")]
    pub max_sample_request_ids: usize,
}

impl AlertsConfig {
    /// The aggregation these settings describe.
    pub fn aggregation(&self) -> crate::sink::alerts::AlertAggregatorConfig {
        crate::sink::alerts::AlertAggregatorConfig {
            window: std::time::Duration::from_secs(self.window_seconds.max(1)),
            max_sample_request_ids: self.max_sample_request_ids,
        }
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            topic: default_alert_topic(),
            window_seconds: default_window_seconds(),
            max_sample_request_ids: default_sample_ids(),
        }
    }
}

/// `[dead_letters]`: where bad input goes (a topic or a quarantine directory).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLettersConfig {
    /// Topic for dead letters (reason and source in headers).
    #[serde(default)]
    pub topic: Option<String>,
    /// Directory for JSON-lines dead-letter files (one per worker).
    #[serde(default)]
    pub quarantine_dir: Option<PathBuf>,
    /// Raw bytes kept per dead letter.
    #[serde(default = "default_max_raw_bytes")]
    pub max_raw_bytes: usize,
}

impl Default for DeadLettersConfig {
    /// No destination (`run` requires one); `max_raw_bytes` as when the key is
    /// absent (a derived default would keep no raw bytes at all).
    fn default() -> Self {
        Self {
            topic: None,
            quarantine_dir: None,
            max_raw_bytes: default_max_raw_bytes(),
        }
    }
}

/// `[telemetry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Log consumer lag and counters this often (0: never).
    #[serde(default = "default_lag_interval")]
    pub log_interval_seconds: u64,
    /// Address of the `/readyz`, `/healthz` and `/metrics` server
    /// (e.g. `0.0.0.0:9090`); absent: no server.
    #[serde(default)]
    pub listen: Option<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_interval_seconds: default_lag_interval(),
            listen: None,
        }
    }
}

fn auto() -> String {
    "auto".to_string()
}
fn default_group_id() -> String {
    "routeproof".to_string()
}
fn default_client_id() -> String {
    "routeproof".to_string()
}
fn default_offset_reset() -> String {
    "earliest".to_string()
}
fn default_session_timeout_ms() -> u64 {
    45_000
}
/// 16 MiB: with a short fetch backoff this keeps the workers fed (tens of
/// thousands of messages queued) while run's peak memory stays well below
/// what 64 MiB (librdkafka's default) gives: 184 against 242 MiB in
/// benches/kafka_throughput.rs, and faster, with less memory to churn.
fn default_queued_kbytes() -> u64 {
    16_384
}
fn default_fetch_queue_backoff_ms() -> u64 {
    10
}
fn default_batch_messages() -> usize {
    4096
}
fn default_queue_batches() -> usize {
    4
}
fn default_max_file_rows() -> u64 {
    1_000_000
}
fn default_max_file_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_max_file_age_seconds() -> f64 {
    60.0
}
fn default_zstd_level() -> i32 {
    1
}
fn default_row_group_rows() -> usize {
    128 * 1024
}
fn default_alert_topic() -> String {
    "routeproof-alerts".to_string()
}
fn default_window_seconds() -> u64 {
    300
}
fn default_sample_ids() -> usize {
    5
}
fn default_max_raw_bytes() -> usize {
    64 * 1024
}
fn default_lag_interval() -> u64 {
    10
}
fn default_poll_interval_seconds() -> f64 {
    5.0
}
fn default_debounce_ms() -> u64 {
    250
}
fn default_history_retention_seconds() -> u64 {
    3600
}
fn default_grace_seconds() -> f64 {
    30.0
}
fn default_lead_seconds() -> f64 {
    2.0
}
fn default_stale_after_seconds() -> f64 {
    60.0
}

/// Parses `text` (named `path` in errors), applies the `ROUTEPROOF_…`
/// overrides among `env` and deserializes; errors name the key.
fn deserialize<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut overrides: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k.contains("__"))
        .collect();
    overrides.sort();
    for (var, value) in overrides {
        apply_override(&mut table, &var, &value)?;
    }
    serde_path_to_error::deserialize(table).map_err(|e| {
        let key = e.path().to_string();
        ConfigError::key(&key, e.into_inner().to_string())
    })
}

/// An error naming `key` when `value` is 0.
fn at_least_one<N: PartialEq + Default>(key: &str, value: N) -> Result<(), ConfigError> {
    if value == N::default() {
        return Err(ConfigError::key(key, "must be at least 1"));
    }
    Ok(())
}

/// An error naming `parquet.zstd_level` when `level` is outside 1..=22.
fn zstd_level_in_range(level: i32) -> Result<(), ConfigError> {
    if !(1..=22).contains(&level) {
        return Err(ConfigError::key("parquet.zstd_level", "must be in 1..=22"));
    }
    Ok(())
}

/// A configuration read from a TOML file, with the `ROUTEPROOF_…`
/// environment overrides applied, and checked.
pub trait ConfigFile: serde::de::DeserializeOwned {
    /// Checks values that the types alone do not; errors name the key.
    fn validate(&self) -> Result<(), ConfigError>;

    /// Reads `path`, applies the process environment's overrides and checks the result.
    fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::from_toml_with_env(&read_text(path)?, path, std::env::vars())
    }

    /// Parses `text` (named `path` in errors), applies the overrides among `env` and checks.
    fn from_toml_with_env(
        text: &str,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let config: Self = deserialize(text, path, env)?;
        config.validate()?;
        Ok(config)
    }
}

/// Reads the file at `path`.
fn read_text(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// What `replay --config FILE` reads of the configuration file: the same file
/// as `run`'s, where `[kafka]`, `[telemetry]` and the `[parquet]` keys about
/// output location and rolling by size or age are `run`'s alone (accepted,
/// not used). Command-line options win over the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayConfig {
    /// `manifests`, `no_listener_isolation`, `allow_external_name`.
    #[serde(default)]
    pub routes: RoutesConfig,
    /// `format`, `envelope`, `implementation`, `gateway`, `keep_headers`.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// `zstd_level`, `max_file_rows`, `row_group_rows`.
    #[serde(default)]
    pub parquet: ReplayParquetConfig,
    /// `window_seconds`, `max_sample_request_ids`.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// `max_raw_bytes`.
    #[serde(default)]
    pub dead_letters: DeadLettersConfig,
    /// Secrets masked in dead letters.
    #[serde(default)]
    pub redaction: RedactionConfig,
    /// `run` only.
    #[serde(default, rename = "kafka")]
    _kafka: serde::de::IgnoredAny,
    /// `run` only.
    #[serde(default, rename = "telemetry")]
    _telemetry: serde::de::IgnoredAny,
}

/// The `[parquet]` keys `replay` uses; `run`'s other keys are accepted and
/// ignored, any other key is an error (a misspelt `zstd_level` must not pass
/// silently).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayParquetConfig {
    /// zstd level, 1..=22 (default 1; see `ParquetSinkConfig::zstd_level`).
    #[serde(default)]
    pub zstd_level: Option<i32>,
    /// Rows per file before rolling.
    #[serde(default)]
    pub max_file_rows: Option<u64>,
    /// Rows per row group.
    #[serde(default)]
    pub row_group_rows: Option<usize>,
    /// `run` only.
    #[serde(default, rename = "output")]
    _output: serde::de::IgnoredAny,
    /// `run` only.
    #[serde(default, rename = "staging_dir")]
    _staging_dir: serde::de::IgnoredAny,
    /// `run` only.
    #[serde(default, rename = "max_file_bytes")]
    _max_file_bytes: serde::de::IgnoredAny,
    /// `run` only.
    #[serde(default, rename = "max_file_age_seconds")]
    _max_file_age_seconds: serde::de::IgnoredAny,
    /// `run` only.
    #[serde(default, rename = "object_store")]
    _object_store: serde::de::IgnoredAny,
}

impl ConfigFile for ReplayConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let q = &self.parquet;
        if let Some(level) = q.zstd_level {
            zstd_level_in_range(level)?;
        }
        if let Some(value) = q.max_file_rows {
            at_least_one("parquet.max_file_rows", value)?;
        }
        if let Some(value) = q.row_group_rows {
            at_least_one("parquet.row_group_rows", value)?;
        }
        at_least_one("alerts.window_seconds", self.alerts.window_seconds)
    }
}

impl ConfigFile for Config {
    fn validate(&self) -> Result<(), ConfigError> {
        let k = &self.kafka;
        if k.brokers.trim().is_empty() {
            return Err(ConfigError::key("kafka.brokers", "must not be empty"));
        }
        if k.group_id.trim().is_empty() {
            return Err(ConfigError::key("kafka.group_id", "must not be empty"));
        }
        // librdkafka's range for fetch.queue.backoff.ms.
        if k.fetch_queue_backoff_ms > 300_000 {
            return Err(ConfigError::key(
                "kafka.fetch_queue_backoff_ms",
                "must be at most 300000",
            ));
        }
        if k.topics.is_empty() || k.topics.iter().any(|t| t.trim().is_empty()) {
            return Err(ConfigError::key(
                "kafka.topics",
                "needs at least one non-empty topic name or ^regex",
            ));
        }
        for t in k.topics.iter().filter(|t| t.starts_with('^')) {
            if let Err(e) = regex::Regex::new(t) {
                return Err(ConfigError::key(
                    "kafka.topics",
                    format!("invalid regex {t:?}: {e}"),
                ));
            }
        }
        if !matches!(k.auto_offset_reset.as_str(), "earliest" | "latest") {
            return Err(ConfigError::key(
                "kafka.auto_offset_reset",
                format!("must be earliest or latest, not {:?}", k.auto_offset_reset),
            ));
        }
        if let Some(p) = &k.security_protocol {
            if !matches!(
                p.to_ascii_lowercase().as_str(),
                "plaintext" | "ssl" | "sasl_plaintext" | "sasl_ssl"
            ) {
                return Err(ConfigError::key(
                    "kafka.security_protocol",
                    format!("must be plaintext, ssl, sasl_plaintext or sasl_ssl, not {p:?}"),
                ));
            }
        }
        let r = &self.routes;
        if r.source_kind() == RouteSourceKind::Manifests && r.manifests.is_empty() {
            return Err(ConfigError::key(
                "routes.manifests",
                "needs at least one manifest file or directory (with routes.source = \"manifests\")",
            ));
        }
        if let Some(url) = &r.kube_api_url {
            if url
                .parse::<http::Uri>()
                .map_or(true, |u| u.scheme().is_none())
            {
                return Err(ConfigError::key(
                    "routes.kube_api_url",
                    format!("not an absolute URL: {url:?}"),
                ));
            }
        }
        for (key, value) in [
            ("routes.poll_interval_seconds", r.poll_interval_seconds),
            ("routes.stale_after_seconds", r.stale_after_seconds),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(ConfigError::key(key, "must be a positive number"));
            }
        }
        for (key, value) in [
            ("routes.grace_seconds", r.grace_seconds),
            ("routes.lead_seconds", r.lead_seconds),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(ConfigError::key(key, "must be zero or a positive number"));
            }
        }
        if let Some(addr) = &self.telemetry.listen {
            if addr.parse::<std::net::SocketAddr>().is_err() {
                return Err(ConfigError::key(
                    "telemetry.listen",
                    format!("not an ip:port address: {addr:?}"),
                ));
            }
        }
        let p = &self.pipeline;
        at_least_one("pipeline.batch_messages", p.batch_messages)?;
        at_least_one("pipeline.queue_batches", p.queue_batches)?;
        let q = &self.parquet;
        if q.output.trim().is_empty() {
            return Err(ConfigError::key("parquet.output", "must not be empty"));
        }
        if let Some((scheme, _)) = q.output.split_once("://") {
            if !matches!(scheme, "file" | "s3") {
                return Err(ConfigError::key(
                    "parquet.output",
                    format!("scheme {scheme}:// is not supported (file://, s3:// or a path)"),
                ));
            }
        }
        at_least_one("parquet.max_file_rows", q.max_file_rows)?;
        at_least_one("parquet.max_file_bytes", q.max_file_bytes)?;
        if !(q.max_file_age_seconds.is_finite() && q.max_file_age_seconds > 0.0) {
            return Err(ConfigError::key(
                "parquet.max_file_age_seconds",
                "must be a positive number",
            ));
        }
        zstd_level_in_range(q.zstd_level)?;
        at_least_one("parquet.row_group_rows", q.row_group_rows)?;
        at_least_one("alerts.window_seconds", self.alerts.window_seconds)?;
        match (&self.dead_letters.topic, &self.dead_letters.quarantine_dir) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::key(
                    "dead_letters",
                    "set either `topic` or `quarantine_dir`, not both",
                ))
            }
            (None, None) => {
                return Err(ConfigError::key(
                    "dead_letters",
                    "set `topic` or `quarantine_dir`",
                ))
            }
            (Some(t), None) if t.trim().is_empty() => {
                return Err(ConfigError::key("dead_letters.topic", "must not be empty"))
            }
            _ => {}
        }
        Ok(())
    }
}

impl Config {
    /// The roll age as a duration.
    pub fn max_file_age(&self) -> Duration {
        Duration::from_secs_f64(self.parquet.max_file_age_seconds)
    }

    /// The history settings of `[routes]`.
    pub fn history_options(&self) -> crate::kube::HistoryOptions {
        let r = &self.routes;
        crate::kube::HistoryOptions {
            retention: Duration::from_secs(r.history_retention_seconds),
            grace: Duration::from_secs_f64(r.grace_seconds),
            lead: Duration::from_secs_f64(r.lead_seconds),
            stale_after: Duration::from_secs_f64(r.stale_after_seconds),
        }
    }

    /// The number of worker threads to start.
    pub fn worker_count(&self) -> usize {
        if self.pipeline.workers > 0 {
            self.pipeline.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

/// Applies one `ROUTEPROOF_A__B=value` override to the table.
fn apply_override(table: &mut toml::Table, var: &str, value: &str) -> Result<(), ConfigError> {
    let path: Vec<String> = var[ENV_PREFIX.len()..]
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect();
    if path.iter().any(String::is_empty) {
        return Err(ConfigError::Env {
            var: var.to_string(),
            why: "empty key part (use single `_` inside a key, `__` between sections and keys)"
                .to_string(),
        });
    }
    let (last, parents) = path.split_last().ok_or_else(|| ConfigError::Env {
        var: var.to_string(),
        why: "no key".to_string(),
    })?;
    let mut current = table;
    for (i, part) in parents.iter().enumerate() {
        let entry = current
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(ConfigError::Env {
                    var: var.to_string(),
                    why: format!("`{}` is not a table", path[..=i].join(".")),
                })
            }
        };
    }
    let parsed = match current.get(last.as_str()) {
        Some(toml::Value::String(_)) => toml::Value::String(value.to_string()),
        _ => parse_env_value(value),
    };
    current.insert(last.clone(), parsed);
    Ok(())
}

/// A TOML value when `value` is one, else the string itself.
fn parse_env_value(value: &str) -> toml::Value {
    let doc = format!("v = {value}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(value.to_string())),
        Err(_) => toml::Value::String(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../config/routeproof.toml");

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_toml_with_env(
            text,
            Path::new("test.toml"),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn example_config_loads() {
        let c = load(EXAMPLE, &[]).expect("example config is valid");
        assert_eq!(c.kafka.topics, vec!["gateway-access-logs".to_string()]);
    }

    #[test]
    fn env_overrides_keys() {
        let c = load(
            EXAMPLE,
            &[
                ("ROUTEPROOF_KAFKA__BROKERS", "other:9093"),
                ("ROUTEPROOF_PARQUET__MAX_FILE_ROWS", "42"),
                ("ROUTEPROOF_KAFKA__TOPICS", r#"["a", "^b.*"]"#),
                ("ROUTEPROOF_QUIET", "1"),
            ],
        )
        .expect("valid");
        assert_eq!(c.kafka.brokers, "other:9093");
        assert_eq!(c.parquet.max_file_rows, 42);
        assert_eq!(c.kafka.topics, vec!["a".to_string(), "^b.*".to_string()]);
    }

    #[test]
    fn fetch_queue_backoff_defaults_short_and_is_bounded() {
        let without = EXAMPLE.replace("fetch_queue_backoff_ms = 10\n", "");
        assert_ne!(without, EXAMPLE, "the example documents the key");
        let c = load(&without, &[]).expect("valid");
        assert_eq!(c.kafka.fetch_queue_backoff_ms, 10);
        let e = load(
            EXAMPLE,
            &[("ROUTEPROOF_KAFKA__FETCH_QUEUE_BACKOFF_MS", "300001")],
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("kafka.fetch_queue_backoff_ms"),
            "{e}"
        );
    }

    #[test]
    fn redaction_lists_replace_the_defaults() {
        let c = load(EXAMPLE, &[]).expect("valid");
        let r = c.redaction.redaction();
        assert_eq!(
            r.apply_str("/a?access_token=x&session=y").as_ref(),
            "/a?access_token=[REDACTED]&session=y"
        );
        let c = load(
            EXAMPLE,
            &[("ROUTEPROOF_REDACTION__QUERY_KEYS", r#"["session"]"#)],
        )
        .expect("valid");
        assert_eq!(
            c.redaction
                .redaction()
                .apply_str("/a?access_token=x&session=y")
                .as_ref(),
            "/a?access_token=x&session=[REDACTED]"
        );
    }

    #[test]
    fn replay_reads_the_run_config_file() {
        let c = ReplayConfig::from_toml_with_env(
            EXAMPLE,
            Path::new("test.toml"),
            [(
                "ROUTEPROOF_PARQUET__ZSTD_LEVEL".to_string(),
                "7".to_string(),
            )],
        )
        .expect("the example serves replay too");
        assert_eq!(c.parquet.zstd_level, Some(7));
        assert_eq!(c.pipeline.format, "auto");
        let e = ReplayConfig::from_toml_with_env(
            "[pipeline]\nformatt = \"auto\"\n",
            Path::new("test.toml"),
            [],
        )
        .unwrap_err();
        assert!(e.to_string().contains("pipeline"), "{e}");
        let e = ReplayConfig::from_toml_with_env(
            "[parquet]\nzstd_level = 0\n",
            Path::new("test.toml"),
            [],
        )
        .unwrap_err();
        assert!(e.to_string().contains("parquet.zstd_level"), "{e}");
        let e = ReplayConfig::from_toml_with_env(
            "[parquet]\nzstd_levle = 3\n",
            Path::new("test.toml"),
            [],
        )
        .unwrap_err();
        assert!(e.to_string().contains("zstd_levle"), "{e}");
        let empty = ReplayConfig::from_toml_with_env("", Path::new("t.toml"), []).expect("empty");
        assert!(empty.routes.manifests.is_empty());
        assert_eq!(empty.alerts.window_seconds, 300);
        assert_eq!(empty.dead_letters.max_raw_bytes, 64 * 1024);
    }

    #[test]
    fn errors_name_the_key() {
        let e = load(EXAMPLE, &[("ROUTEPROOF_PIPELINE__WORKERS", "many")]).unwrap_err();
        assert!(e.to_string().contains("pipeline.workers"), "{e}");
        let e = load(EXAMPLE, &[("ROUTEPROOF_KAFKA__BROKERZ", "x")]).unwrap_err();
        assert!(e.to_string().contains("brokerz"), "{e}");
        let e = load(EXAMPLE, &[("ROUTEPROOF_PARQUET__ZSTD_LEVEL", "99")]).unwrap_err();
        assert!(e.to_string().contains("parquet.zstd_level"), "{e}");
        let e = load(EXAMPLE, &[("ROUTEPROOF_KAFKA__TOPICS", "[]")]).unwrap_err();
        assert!(e.to_string().contains("kafka.topics"), "{e}");
    }

    #[test]
    fn route_source_follows_the_manifests_unless_set() {
        let c = load(EXAMPLE, &[]).expect("valid");
        assert_eq!(c.routes.source_kind(), RouteSourceKind::Manifests);
        let c = load(EXAMPLE, &[("ROUTEPROOF_ROUTES__MANIFESTS", "[]")]).expect("valid");
        assert_eq!(c.routes.source_kind(), RouteSourceKind::Kube);
        let c = load(EXAMPLE, &[("ROUTEPROOF_ROUTES__SOURCE", "kube")]).expect("valid");
        assert_eq!(c.routes.source_kind(), RouteSourceKind::Kube);
        let e = load(
            EXAMPLE,
            &[
                ("ROUTEPROOF_ROUTES__SOURCE", "manifests"),
                ("ROUTEPROOF_ROUTES__MANIFESTS", "[]"),
            ],
        )
        .unwrap_err();
        assert!(e.to_string().contains("routes.manifests"), "{e}");
        let e = load(EXAMPLE, &[("ROUTEPROOF_ROUTES__SOURCE", "etcd")]).unwrap_err();
        assert!(e.to_string().contains("routes.source"), "{e}");
    }

    #[test]
    fn history_and_telemetry_keys_are_checked() {
        let c = load(
            EXAMPLE,
            &[
                ("ROUTEPROOF_ROUTES__GRACE_SECONDS", "5"),
                ("ROUTEPROOF_ROUTES__HISTORY_RETENTION_SECONDS", "600"),
            ],
        )
        .expect("valid");
        let h = c.history_options();
        assert_eq!(h.grace, Duration::from_secs(5));
        assert_eq!(h.retention, Duration::from_secs(600));
        assert_eq!(h.stale_after, Duration::from_secs(60));
        for (var, value, key) in [
            (
                "ROUTEPROOF_ROUTES__GRACE_SECONDS",
                "-1",
                "routes.grace_seconds",
            ),
            (
                "ROUTEPROOF_ROUTES__POLL_INTERVAL_SECONDS",
                "0",
                "routes.poll_interval_seconds",
            ),
            (
                "ROUTEPROOF_ROUTES__KUBE_API_URL",
                "not a url",
                "routes.kube_api_url",
            ),
            (
                "ROUTEPROOF_TELEMETRY__LISTEN",
                "localhost",
                "telemetry.listen",
            ),
        ] {
            let e = load(EXAMPLE, &[(var, value)]).unwrap_err();
            assert!(e.to_string().contains(key), "{var}: {e}");
        }
        let c = load(
            EXAMPLE,
            &[("ROUTEPROOF_TELEMETRY__LISTEN", "127.0.0.1:9090")],
        )
        .expect("valid");
        assert_eq!(c.telemetry.listen.as_deref(), Some("127.0.0.1:9090"));
    }
}
