//! Alerts (schema v1, `schemas/alert-v1.schema.json`): the [`Alert`] record,
//! the event-time driven [`AlertAggregator`] that deduplicates occurrences by
//! fingerprint, and the JSON-lines [`AlertFileSink`].
//!
//! # Fingerprint
//!
//! [`alert_fingerprint`] is FNV-1a 64 (offset basis `0xcbf29ce484222325`, prime
//! `0x100000001b3`) over this byte string, rendered as 16 lowercase hex digits:
//!
//! ```text
//! "v1" US type US gateway US route US rule US expected US actual
//! ```
//!
//! where `US` is the byte 0x1F, `type` is the alert type string (e.g. `misrouted`),
//! `rule` is the rule index in decimal ASCII, `expected` is the expected backends
//! sorted ascending, deduplicated and joined with the byte 0x1E, and an absent
//! value (`None`) is the single byte 0x00. The hash is fixed by this definition,
//! so fingerprints are stable across builds, platforms and routeproof versions.
//!
//! # Aggregation
//!
//! Time is the event time of the records (µs since the epoch), passed by the
//! caller; the aggregator's clock is the largest time seen so far, so replay is
//! deterministic. Per fingerprint:
//!
//! - the first occurrence emits a `firing` alert (count 1);
//! - later occurrences are counted; when at least `window` has passed since the
//!   alert was last emitted, the next occurrence re-emits it `firing` with the
//!   updated count and `last_seen` (so at most once per window);
//! - when `window` passes with no occurrence (clock ≥ `last_seen + window`), a
//!   `resolved` alert with the final count is emitted and the fingerprint is forgotten;
//!   a later occurrence starts a new alert;
//! - [`AlertAggregator::flush_all`] emits the current state (`firing`, final count)
//!   of every open alert, e.g. at the end of a replay.
//!
//! A live stream can go quiet (a gateway with no traffic, a condition that
//! stops together with the traffic): with no record, the event-time clock stands
//! still and nothing would ever resolve. [`QuietClock`] covers that case for
//! `routeproof run`: once no record arrived for a while, the clock moves on with
//! wall-clock time from the last record's event time, so an alert resolves a
//! window after its last occurrence whether or not other records follow.
//!
//! `count`, `first_seen` and `last_seen` are cumulative since the alert opened.
//! Memory grows with the number of distinct fingerprints open at once.
//!
//! Handles made with [`AlertAggregator::handle`] share one aggregation (the
//! worker threads of `run`); the clock is then the largest event time any
//! handle has brought in, so a partition far behind the others may see an
//! alert of its records resolve and open again. Instances of a consumer group
//! aggregate separately; alerts are keyed by fingerprint, so a compacted topic
//! keeps the latest state per instance's emission.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::jsonl::JsonLinesFile;
use super::row::StrList;
use super::SinkError;

/// Version of the alert schema written in [`Alert::schema_version`].
pub const ALERT_SCHEMA_VERSION: u32 = 1;

/// File name of the alert JSON-lines file.
pub const ALERTS_FILE_NAME: &str = "alerts.jsonl";

/// Kind of condition an alert reports. Serialized in `snake_case`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertType {
    /// A request was served by a backend the configuration does not allow.
    Misrouted,
    /// The gateway answered "no route" where the configuration has a matching route.
    UnexpectedNoRoute,
    /// A request was routed where the configuration has no matching route.
    UnexpectedRoute,
    /// A backend that the configuration makes invalid (e.g. no ReferenceGrant) served traffic.
    ServedInvalidBackend,
    /// A redirect differed from the configured redirect filter.
    RedirectMismatch,
    /// The gateway answered an error itself although the configuration has a valid backend.
    UnexpectedError,
    /// Requests fail because the configuration itself makes them fail (invalid backendRef share).
    ExpectedError,
    /// A route is not `Accepted` by its parent gateway.
    RouteNotAccepted,
    /// A backendRef does not resolve (`ResolvedRefs: False`).
    BackendRefUnresolved,
    /// A ReferenceGrant that a route depends on was removed.
    ReferencegrantRevoked,
    /// Status codes moved away from what the configuration implies.
    StatusDrift,
    /// A rule can never match because earlier rules take all its traffic.
    ShadowedRule,
}

impl AlertType {
    /// The stable string of this type (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertType::Misrouted => "misrouted",
            AlertType::UnexpectedNoRoute => "unexpected_no_route",
            AlertType::UnexpectedRoute => "unexpected_route",
            AlertType::ServedInvalidBackend => "served_invalid_backend",
            AlertType::RedirectMismatch => "redirect_mismatch",
            AlertType::UnexpectedError => "unexpected_error",
            AlertType::ExpectedError => "expected_error",
            AlertType::RouteNotAccepted => "route_not_accepted",
            AlertType::BackendRefUnresolved => "backend_ref_unresolved",
            AlertType::ReferencegrantRevoked => "referencegrant_revoked",
            AlertType::StatusDrift => "status_drift",
            AlertType::ShadowedRule => "shadowed_rule",
        }
    }

    /// The severity alerts of this type get.
    pub fn severity(self) -> Severity {
        match self {
            AlertType::Misrouted
            | AlertType::UnexpectedNoRoute
            | AlertType::ServedInvalidBackend
            | AlertType::UnexpectedError
            | AlertType::ReferencegrantRevoked => Severity::Critical,
            AlertType::UnexpectedRoute
            | AlertType::RedirectMismatch
            | AlertType::ExpectedError
            | AlertType::RouteNotAccepted
            | AlertType::BackendRefUnresolved
            | AlertType::StatusDrift => Severity::Warning,
            AlertType::ShadowedRule => Severity::Info,
        }
    }

    /// A one-line hint for on-call.
    pub fn hint(self) -> &'static str {
        match self {
            AlertType::Misrouted => "Traffic reached a backend its route does not allow: look for a higher-precedence route, a recent HTTPRoute change or a gateway that has not applied the config.",
            AlertType::UnexpectedNoRoute => "The gateway answered no-route although a route matches: check the route's Accepted condition, listener attachment and hostnames on the gateway.",
            AlertType::UnexpectedRoute => "Traffic was routed although no route should match: look for a route routeproof does not see or a stale gateway config.",
            AlertType::ServedInvalidBackend => "A backend that should be rejected (missing ReferenceGrant, Service or unsupported kind) served traffic: the gateway config is stale or the grant check differs.",
            AlertType::RedirectMismatch => "A redirect differs from the configured RequestRedirect filter: check the filter's scheme, host, port, path and status code.",
            AlertType::UnexpectedError => "The gateway answers errors itself although the config has a valid backend: the gateway may consider a backendRef or ReferenceGrant invalid that routeproof sees as valid (controller drift), or its config is stale.",
            AlertType::ExpectedError => "Requests fail because the config makes them fail (invalid backendRef share answered with 500): fix the backendRef or its ReferenceGrant.",
            AlertType::RouteNotAccepted => "A route is not Accepted by its gateway: read the route's status conditions (parentRefs, allowedRoutes, hostnames).",
            AlertType::BackendRefUnresolved => "A backendRef does not resolve (ResolvedRefs False): the Service is missing, the port is wrong or a ReferenceGrant is missing.",
            AlertType::ReferencegrantRevoked => "A ReferenceGrant in use was removed: the cross-namespace backend now answers 500; restore the grant or move the backendRef.",
            AlertType::StatusDrift => "Status codes drifted from what the config implies: compare recent deploys of the backend and the route.",
            AlertType::ShadowedRule => "A rule can never match because an earlier, broader rule takes its traffic: reorder or narrow the matches.",
        }
    }
}

/// Whether the condition is ongoing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition is (still) occurring.
    Firing,
    /// No occurrence for a whole window.
    Resolved,
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Page someone: traffic is going to the wrong place or failing.
    Critical,
    /// Look soon.
    Warning,
    /// For the record.
    Info,
}

/// One alert, schema v1 (`schemas/alert-v1.schema.json`). Every key is always
/// present; absent values are `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Always [`ALERT_SCHEMA_VERSION`] (1).
    pub schema_version: u32,
    /// Stable identity of the condition: 16 hex digits, see [`alert_fingerprint`].
    pub fingerprint: String,
    /// What kind of condition this is.
    #[serde(rename = "type")]
    pub alert_type: AlertType,
    /// `firing` or `resolved`.
    pub state: AlertState,
    /// `critical`, `warning` or `info`.
    pub severity: Severity,
    /// Gateway, `namespace/name`.
    pub gateway: Option<String>,
    /// Route, `namespace/name`.
    pub route: Option<String>,
    /// Route kind (`HTTPRoute`, `GRPCRoute`).
    pub route_kind: Option<String>,
    /// Rule index within the route.
    pub rule: Option<i32>,
    /// Backends the configuration allows, `namespace/name`, sorted.
    pub expected_backends: Vec<String>,
    /// Backend that actually served, `namespace/name`.
    pub actual_backend: Option<String>,
    /// Occurrences since the alert opened.
    pub count: u64,
    /// Event time of the earliest occurrence, RFC 3339 UTC.
    pub first_seen: String,
    /// Event time of the latest occurrence, RFC 3339 UTC.
    pub last_seen: String,
    /// Request ids of the first occurrences (at most 5 by default).
    pub sample_request_ids: Vec<String>,
    /// One line for on-call.
    pub hint: String,
    /// Machine-readable reason from the first occurrence (e.g. the verdict reason).
    pub reason: String,
}

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const FIELD_SEPARATOR: u8 = 0x1f;
const LIST_SEPARATOR: u8 = 0x1e;
const ABSENT: u8 = 0x00;

/// FNV-1a 64-bit hash state.
#[derive(Debug, Clone, Copy)]
struct Fnv1a64(u64);

impl Fnv1a64 {
    fn new() -> Self {
        Fnv1a64(FNV_OFFSET_BASIS)
    }
    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }
    fn opt(&mut self, value: Option<&str>) {
        match value {
            Some(v) => self.bytes(v.as_bytes()),
            None => self.bytes(&[ABSENT]),
        }
    }
}

/// The alert fingerprint as a number (see the [module documentation](self) for the
/// exact definition). `expected_backends` must be sorted ascending; duplicates are
/// skipped.
pub fn alert_fingerprint<'e>(
    alert_type: AlertType,
    gateway: Option<&str>,
    route: Option<&str>,
    rule: Option<i32>,
    expected_backends: impl IntoIterator<Item = &'e str>,
    actual_backend: Option<&str>,
) -> u64 {
    let mut h = Fnv1a64::new();
    h.bytes(b"v1");
    h.bytes(&[FIELD_SEPARATOR]);
    h.bytes(alert_type.as_str().as_bytes());
    h.bytes(&[FIELD_SEPARATOR]);
    h.opt(gateway);
    h.bytes(&[FIELD_SEPARATOR]);
    h.opt(route);
    h.bytes(&[FIELD_SEPARATOR]);
    match rule {
        Some(rule) => {
            // Decimal ASCII without allocating.
            let mut digits = [0u8; 12];
            let mut n = i64::from(rule).unsigned_abs();
            let mut i = digits.len();
            loop {
                i -= 1;
                digits[i] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            if rule < 0 {
                i -= 1;
                digits[i] = b'-';
            }
            h.bytes(&digits[i..]);
        }
        None => h.bytes(&[ABSENT]),
    }
    h.bytes(&[FIELD_SEPARATOR]);
    let mut previous: Option<&str> = None;
    for backend in expected_backends {
        if previous == Some(backend) {
            continue;
        }
        if previous.is_some() {
            h.bytes(&[LIST_SEPARATOR]);
        }
        h.bytes(backend.as_bytes());
        previous = Some(backend);
    }
    h.bytes(&[FIELD_SEPARATOR]);
    h.opt(actual_backend);
    h.0
}

/// Renders a fingerprint as 16 lowercase hex digits.
pub fn fingerprint_hex(fingerprint: u64) -> String {
    format!("{fingerprint:016x}")
}

/// Formats µs since the epoch as RFC 3339 UTC with milliseconds
/// (`2024-05-01T07:00:00.000Z`); out-of-range times are clamped to the epoch.
pub fn format_event_time(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One occurrence of an alert condition, as fed to [`AlertAggregator::observe`].
#[derive(Debug, Clone, Copy)]
pub struct AlertOccurrence<'a> {
    /// What kind of condition.
    pub alert_type: AlertType,
    /// Gateway, `namespace/name`.
    pub gateway: Option<&'a str>,
    /// Route, `namespace/name`.
    pub route: Option<&'a str>,
    /// Route kind.
    pub route_kind: Option<&'a str>,
    /// Rule index.
    pub rule: Option<i32>,
    /// Expected backends, any order (sorted internally; allocation only if unsorted).
    pub expected_backends: StrList<'a>,
    /// Actual backend.
    pub actual_backend: Option<&'a str>,
    /// Machine-readable reason (kept from the first occurrence).
    pub reason: &'a str,
    /// Event time, µs since the epoch (UTC).
    pub event_time: i64,
    /// Request id of this occurrence, if known.
    pub request_id: Option<&'a str>,
}

impl AlertOccurrence<'_> {
    /// The fingerprint of this occurrence's condition.
    pub fn fingerprint(&self) -> u64 {
        let list = self.expected_backends;
        let sorted = (1..list.len()).all(|i| list.get(i - 1) <= list.get(i));
        if sorted {
            alert_fingerprint(
                self.alert_type,
                self.gateway,
                self.route,
                self.rule,
                list.iter(),
                self.actual_backend,
            )
        } else {
            let mut backends: Vec<&str> = list.iter().collect();
            backends.sort_unstable();
            alert_fingerprint(
                self.alert_type,
                self.gateway,
                self.route,
                self.rule,
                backends,
                self.actual_backend,
            )
        }
    }
}

/// Settings of an [`AlertAggregator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertAggregatorConfig {
    /// Re-emit at most once per window; resolve after a window without occurrence
    /// (default 5 minutes).
    pub window: Duration,
    /// Request ids kept per alert (default 5).
    pub max_sample_request_ids: usize,
}

impl Default for AlertAggregatorConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(300),
            max_sample_request_ids: 5,
        }
    }
}

#[derive(Debug)]
struct OpenAlert {
    /// Emitted copy, kept up to date at emission time.
    alert: Alert,
    count: u64,
    first_seen: i64,
    last_seen: i64,
    last_emitted: i64,
}

/// Deduplicates alert occurrences by fingerprint over an event-time window.
/// See the [module documentation](self) for the exact semantics.
///
/// [`AlertAggregator::handle`] gives another handle on the same state, so the
/// worker threads of `run` aggregate together: a burst spread over partitions
/// and workers is still one alert with one count. Records that raise no alert
/// take no lock (only an atomic load); the lock is taken per alert-worthy
/// record and when an open alert may resolve.
///
/// The aggregation's clock is a **watermark**: the smallest of the handles'
/// clocks (each the largest event time its thread has seen; handles that saw
/// nothing do not count). Partitions are consumed at different paces, so one
/// worker may be minutes of event time ahead of another; with the largest
/// clock, every occurrence from the worker behind would look a window old and
/// resolve as soon as it fired (a burst became one firing/resolved pair per
/// record). With the smallest, nothing resolves before every worker is past it.
#[derive(Debug)]
pub struct AlertAggregator {
    shared: Arc<SharedAggregation>,
    /// This handle's slot in [`AggregationState::clocks`].
    slot: usize,
    /// Largest event time this handle has seen (merged into the shared clocks
    /// whenever the lock is taken).
    local_clock: Option<i64>,
    /// The lock-free check of [`advance_to`](Self::advance_to) found an alert
    /// possibly due but the watermark (held back by another handle) was not:
    /// do not look again before this handle's clock passes this time.
    recheck_at: i64,
}

#[derive(Debug)]
struct SharedAggregation {
    window_micros: i64,
    max_sample_request_ids: usize,
    state: Mutex<AggregationState>,
    /// No open alert can resolve before this time (a lower bound), readable
    /// without the lock.
    next_expiry: AtomicI64,
    /// Handles created (the next slot).
    handles: AtomicUsize,
}

#[derive(Debug, Default)]
struct AggregationState {
    open: HashMap<u64, OpenAlert>,
    /// Each handle's clock as of its last lock (`None`: no record yet).
    clocks: Vec<Option<i64>>,
}

impl AggregationState {
    /// Records `clock` for `slot` and returns the watermark: the smallest
    /// clock of the handles that saw a record (at least `clock`'s handle).
    fn watermark(&mut self, slot: usize, clock: i64) -> i64 {
        if self.clocks.len() <= slot {
            self.clocks.resize(slot + 1, None);
        }
        self.clocks[slot] = Some(clock);
        self.clocks.iter().flatten().copied().min().unwrap_or(clock)
    }
}

impl AlertAggregator {
    /// An aggregator with these settings.
    pub fn new(config: AlertAggregatorConfig) -> Self {
        let window_micros = i64::try_from(config.window.as_micros())
            .unwrap_or(i64::MAX)
            .max(1);
        Self {
            shared: Arc::new(SharedAggregation {
                window_micros,
                max_sample_request_ids: config.max_sample_request_ids,
                state: Mutex::new(AggregationState::default()),
                next_expiry: AtomicI64::new(i64::MAX),
                handles: AtomicUsize::new(1),
            }),
            slot: 0,
            local_clock: None,
            recheck_at: i64::MIN,
        }
    }

    /// Another handle on the same aggregation (for another thread).
    pub fn handle(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            slot: self.shared.handles.fetch_add(1, Ordering::Relaxed),
            local_clock: None,
            recheck_at: i64::MIN,
        }
    }

    /// The largest event time (µs) this handle has seen, if any.
    pub fn clock(&self) -> Option<i64> {
        self.local_clock
    }

    /// Number of open (firing) alerts.
    pub fn open_alerts(&self) -> usize {
        self.lock().open.len()
    }

    fn lock(&self) -> MutexGuard<'_, AggregationState> {
        // The state stays consistent between statements, so a panic on
        // another thread does not invalidate it.
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one occurrence; pushes to `out` the alerts it causes: `resolved` alerts
    /// whose quiet window has passed, then a `firing` alert for this occurrence's
    /// condition if it is new or was last emitted at least a window ago.
    pub fn observe(&mut self, occurrence: &AlertOccurrence<'_>, out: &mut Vec<Alert>) {
        let t = occurrence.event_time;
        self.local_clock = Some(self.local_clock.map_or(t, |c| c.max(t)));
        let shared = &*self.shared;
        let slot = self.slot;
        let local = self.local_clock.unwrap_or(t);
        let mut state = self.lock();
        let now = state.watermark(slot, local);
        shared.resolve_due(&mut state, now, out);
        let fingerprint = occurrence.fingerprint();
        let window = shared.window_micros;
        match state.open.get_mut(&fingerprint) {
            Some(open) => {
                open.count += 1;
                open.first_seen = open.first_seen.min(t);
                open.last_seen = open.last_seen.max(t);
                if open.alert.sample_request_ids.len() < shared.max_sample_request_ids {
                    if let Some(id) = occurrence.request_id {
                        open.alert.sample_request_ids.push(id.to_string());
                    }
                }
                if now.saturating_sub(open.last_emitted) >= window {
                    open.last_emitted = now;
                    out.push(open.snapshot(AlertState::Firing));
                }
            }
            None => {
                let mut expected: Vec<String> = occurrence
                    .expected_backends
                    .iter()
                    .map(str::to_string)
                    .collect();
                expected.sort_unstable();
                expected.dedup();
                let alert = Alert {
                    schema_version: ALERT_SCHEMA_VERSION,
                    fingerprint: fingerprint_hex(fingerprint),
                    alert_type: occurrence.alert_type,
                    state: AlertState::Firing,
                    severity: occurrence.alert_type.severity(),
                    gateway: occurrence.gateway.map(str::to_string),
                    route: occurrence.route.map(str::to_string),
                    route_kind: occurrence.route_kind.map(str::to_string),
                    rule: occurrence.rule,
                    expected_backends: expected,
                    actual_backend: occurrence.actual_backend.map(str::to_string),
                    count: 0,
                    first_seen: String::new(),
                    last_seen: String::new(),
                    sample_request_ids: occurrence
                        .request_id
                        .filter(|_| shared.max_sample_request_ids > 0)
                        .map(|id| vec![id.to_string()])
                        .unwrap_or_default(),
                    hint: occurrence.alert_type.hint().to_string(),
                    reason: occurrence.reason.to_string(),
                };
                let open = OpenAlert {
                    alert,
                    count: 1,
                    first_seen: t,
                    last_seen: t,
                    last_emitted: now,
                };
                out.push(open.snapshot(AlertState::Firing));
                shared
                    .next_expiry
                    .fetch_min(t.saturating_add(window), Ordering::Relaxed);
                state.open.insert(fingerprint, open);
            }
        }
    }

    /// Moves the clock to `event_time` (if later) and pushes a `resolved` alert for
    /// every open alert whose last occurrence is a window or more in the past, ordered
    /// by first occurrence, then fingerprint. Takes no lock unless an alert may
    /// be due.
    pub fn advance_to(&mut self, event_time: i64, out: &mut Vec<Alert>) {
        let local = self.local_clock.map_or(event_time, |c| c.max(event_time));
        self.local_clock = Some(local);
        if local < self.shared.next_expiry.load(Ordering::Relaxed) || local < self.recheck_at {
            return;
        }
        let shared = &*self.shared;
        let slot = self.slot;
        let now = {
            let mut state = self.lock();
            let now = state.watermark(slot, local);
            shared.resolve_due(&mut state, now, out);
            now
        };
        // Held back by a handle behind: look again after a second of this
        // handle's event time, not at every record (no lock per record).
        self.recheck_at = if now < local {
            local.saturating_add(1_000_000)
        } else {
            i64::MIN
        };
    }

    /// Pushes the current state (`firing`, cumulative count) of every open alert,
    /// ordered by first occurrence then fingerprint, and forgets them all.
    pub fn flush_all(&mut self, out: &mut Vec<Alert>) {
        let mut state = self.lock();
        let mut open: Vec<(u64, OpenAlert)> = state.open.drain().collect();
        open.sort_unstable_by_key(|(f, a)| (a.first_seen, *f));
        out.extend(
            open.into_iter()
                .map(|(_, a)| a.snapshot(AlertState::Firing)),
        );
        self.shared.next_expiry.store(i64::MAX, Ordering::Relaxed);
    }
}

impl Drop for AlertAggregator {
    /// A dropped handle no longer holds the watermark back.
    fn drop(&mut self) {
        let mut state = self.lock();
        if let Some(c) = state.clocks.get_mut(self.slot) {
            *c = None;
        }
    }
}

impl SharedAggregation {
    /// Resolves the open alerts quiet for a window at `now` (lock held).
    fn resolve_due(&self, state: &mut AggregationState, now: i64, out: &mut Vec<Alert>) {
        if now < self.next_expiry.load(Ordering::Relaxed) {
            return;
        }
        let window = self.window_micros;
        let mut due: Vec<u64> = state
            .open
            .iter()
            .filter(|(_, a)| now.saturating_sub(a.last_seen) >= window)
            .map(|(f, _)| *f)
            .collect();
        due.sort_unstable_by_key(|f| (state.open.get(f).map(|a| a.first_seen), *f));
        for fingerprint in due {
            if let Some(open) = state.open.remove(&fingerprint) {
                out.push(open.snapshot(AlertState::Resolved));
            }
        }
        let next = state
            .open
            .values()
            .map(|a| a.last_seen.saturating_add(window))
            .min()
            .unwrap_or(i64::MAX);
        self.next_expiry.store(next, Ordering::Relaxed);
    }
}

/// Event time that keeps moving while a live stream is quiet (see the
/// [module documentation](self)).
///
/// After each batch of records the caller notes the aggregator's clock with
/// [`records_seen`](Self::records_seen); while no record arrives,
/// [`extrapolated`](Self::extrapolated) gives that event time plus the wall-clock
/// time since, to pass to [`AlertAggregator::advance_to`]. Short pauses between
/// batches are ignored (`min_quiet`), so a busy stream, including a backlog read
/// far behind real time, is judged by its own event times only.
#[derive(Debug, Clone, Copy)]
pub struct QuietClock {
    /// The aggregator's clock (µs) after the last records.
    event_time: Option<i64>,
    /// When the last records were processed.
    at: std::time::Instant,
}

impl QuietClock {
    /// A clock with no record seen yet (it extrapolates nothing).
    pub fn new(now: std::time::Instant) -> Self {
        Self {
            event_time: None,
            at: now,
        }
    }

    /// Notes that records were processed at `now`, leaving the aggregator's
    /// clock at `event_time`.
    pub fn records_seen(&mut self, event_time: Option<i64>, now: std::time::Instant) {
        self.event_time = event_time;
        self.at = now;
    }

    /// The event time to move the aggregator to at `now`: the last records'
    /// event time plus the time elapsed since they were processed, once that is
    /// at least `min_quiet`; `None` before, or when no record was seen.
    pub fn extrapolated(&self, now: std::time::Instant, min_quiet: Duration) -> Option<i64> {
        let quiet = now.saturating_duration_since(self.at);
        if quiet < min_quiet {
            return None;
        }
        let micros = i64::try_from(quiet.as_micros()).unwrap_or(i64::MAX);
        Some(self.event_time?.saturating_add(micros))
    }
}

impl OpenAlert {
    fn snapshot(&self, state: AlertState) -> Alert {
        Alert {
            state,
            count: self.count,
            first_seen: format_event_time(self.first_seen),
            last_seen: format_event_time(self.last_seen),
            ..self.alert.clone()
        }
    }
}

/// A destination for alerts (a file now; a Kafka producer later).
pub trait AlertSink {
    /// Writes one alert.
    fn send(&mut self, alert: &Alert) -> Result<(), SinkError>;
    /// Makes every alert sent so far durable.
    fn flush(&mut self) -> Result<(), SinkError>;
}

/// Appends alerts as JSON lines to a file (conventionally [`ALERTS_FILE_NAME`]).
#[derive(Debug)]
pub struct AlertFileSink {
    out: JsonLinesFile,
    written: u64,
}

impl AlertFileSink {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SinkError> {
        Ok(Self {
            out: JsonLinesFile::open(path)?,
            written: 0,
        })
    }

    /// Alerts written by this sink.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes, fsyncs and closes the file.
    pub fn close(mut self) -> Result<(), SinkError> {
        AlertSink::flush(&mut self)
    }
}

impl AlertSink for AlertFileSink {
    fn send(&mut self, alert: &Alert) -> Result<(), SinkError> {
        self.out.write(alert)?;
        self.written += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALERT_V1_SCHEMA: &str = include_str!("../../schemas/alert-v1.schema.json");
    const MINUTE: i64 = 60_000_000;
    /// 2024-05-01T07:00:00Z in µs.
    const T0: i64 = 1_714_546_800_000_000;

    fn misroute<'a>(t: i64, request_id: Option<&'a str>) -> AlertOccurrence<'a> {
        AlertOccurrence {
            alert_type: AlertType::Misrouted,
            gateway: Some("infra/public"),
            route: Some("shop/cart"),
            route_kind: Some("HTTPRoute"),
            rule: Some(1),
            expected_backends: StrList::Borrowed(&["shop/cart-v2", "shop/cart-v1"]),
            actual_backend: Some("shop/legacy"),
            reason: "actual_not_in_expected",
            event_time: t,
            request_id,
        }
    }

    fn aggregator(window_minutes: u64) -> AlertAggregator {
        AlertAggregator::new(AlertAggregatorConfig {
            window: Duration::from_secs(window_minutes * 60),
            ..AlertAggregatorConfig::default()
        })
    }

    #[test]
    fn handles_on_other_threads_aggregate_into_one_alert() {
        let mut first = aggregator(5);
        let mut out = Vec::new();
        let emitted: usize = std::thread::scope(|scope| {
            let mut workers = Vec::new();
            for worker in 0..2 {
                let mut handle = first.handle();
                let ids: Vec<String> = (0..1000).map(|i| format!("w{worker}-{i}")).collect();
                workers.push(scope.spawn(move || {
                    let mut local = Vec::new();
                    for (i, id) in ids.iter().enumerate() {
                        // Second by second over one minute: one window.
                        let t = T0 + (i as i64 % 60) * 1_000_000;
                        handle.observe(&misroute(t, Some(id)), &mut local);
                        handle.advance_to(t, &mut local);
                    }
                    local
                }));
            }
            workers
                .into_iter()
                .map(|w| w.join().map_or(usize::MAX, |local| local.len()))
                .sum()
        });
        // One condition, one firing emission in all (the first occurrence).
        assert_eq!(emitted, 1);
        first.observe(&misroute(T0 + 2 * MINUTE, None), &mut out);
        assert!(out.is_empty(), "re-emitted inside the window: {out:?}");
        first.advance_to(T0 + 8 * MINUTE, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].state, AlertState::Resolved);
        assert_eq!(out[0].count, 2001, "both workers' occurrences counted once");
        assert_eq!(first.open_alerts(), 0);
    }

    #[test]
    fn a_firing_alert_is_emitted_once_across_handles() {
        let mut a = aggregator(5);
        let mut b = a.handle();
        let (mut from_a, mut from_b) = (Vec::new(), Vec::new());
        a.observe(&misroute(T0, Some("r1")), &mut from_a);
        b.observe(&misroute(T0 + 1_000_000, Some("r2")), &mut from_b);
        assert_eq!(from_a.len(), 1);
        assert!(from_b.is_empty(), "{from_b:?}");
        // b's clock passes the window, a's does not: the watermark (a) holds
        // the re-emission back, a burst seen by b ahead of a is not re-sent.
        b.observe(&misroute(T0 + 5 * MINUTE, Some("r3")), &mut from_b);
        assert!(from_b.is_empty(), "{from_b:?}");
        // Once a is past the window too, the next occurrence re-emits with the
        // shared count.
        a.advance_to(T0 + 5 * MINUTE, &mut from_a);
        assert_eq!(from_a.len(), 1, "nothing resolves: r3 is recent");
        b.observe(&misroute(T0 + 5 * MINUTE, Some("r4")), &mut from_b);
        assert_eq!(from_b.len(), 1);
        assert_eq!(from_b[0].count, 4);
        assert_eq!(from_b[0].sample_request_ids, ["r1", "r2", "r3", "r4"]);
    }

    #[test]
    fn a_handle_behind_does_not_resolve_its_own_burst() {
        // Two partitions consumed at different paces: `ahead` is 40 minutes of
        // event time past `behind`, whose burst must still be one alert.
        let mut ahead = aggregator(5);
        let mut behind = ahead.handle();
        let mut out = Vec::new();
        ahead.advance_to(T0 + 40 * MINUTE, &mut out);
        for i in 0..12 {
            behind.observe(&misroute(T0 + i * 14_000_000, None), &mut out);
            ahead.advance_to(T0 + 41 * MINUTE, &mut out);
        }
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].state, AlertState::Firing);
        // `behind` catches up: resolved once, with every occurrence.
        behind.advance_to(T0 + 41 * MINUTE, &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[1].state, AlertState::Resolved);
        assert_eq!(out[1].count, 12);
        // A dropped handle no longer holds the watermark back.
        drop(behind);
        ahead.observe(&misroute(T0 + 50 * MINUTE, None), &mut out);
        ahead.advance_to(T0 + 56 * MINUTE, &mut out);
        assert_eq!(out.len(), 4, "{out:?}");
        assert_eq!(out[3].state, AlertState::Resolved);
    }

    #[test]
    fn fingerprint_is_fixed_fnv1a_and_order_independent() {
        // FNV-1a 64 reference values.
        let mut h = Fnv1a64::new();
        assert_eq!(h.0, 0xcbf29ce484222325);
        h.bytes(b"a");
        assert_eq!(h.0, 0xaf63dc4c8601ec8c);
        let mut h = Fnv1a64::new();
        h.bytes(b"foobar");
        assert_eq!(h.0, 0x85944171f73967e8);

        let a = misroute(T0, None);
        let b = AlertOccurrence {
            expected_backends: StrList::Borrowed(&["shop/cart-v1", "shop/cart-v2"]),
            ..a
        };
        assert_eq!(a.fingerprint(), b.fingerprint());
        // Pinned value (checked with an independent Python FNV-1a of the documented
        // byte string): changing it breaks alert identity for consumers.
        assert_eq!(fingerprint_hex(a.fingerprint()), "3736c459f1227a51");
        let other_actual = AlertOccurrence {
            actual_backend: Some("shop/other"),
            ..a
        };
        assert_ne!(a.fingerprint(), other_actual.fingerprint());
        let no_rule = AlertOccurrence { rule: None, ..a };
        assert_ne!(a.fingerprint(), no_rule.fingerprint());
        let negative = AlertOccurrence {
            rule: Some(-12),
            ..a
        };
        let manual = alert_fingerprint(
            AlertType::Misrouted,
            Some("infra/public"),
            Some("shop/cart"),
            Some(-12),
            ["shop/cart-v1", "shop/cart-v2"],
            Some("shop/legacy"),
        );
        assert_eq!(negative.fingerprint(), manual);
    }

    #[test]
    fn burst_yields_one_firing_alert_and_final_count() {
        let mut agg = aggregator(5);
        let mut out = Vec::new();
        let ids: Vec<String> = (0..10).map(|i| format!("req-{i}")).collect();
        for i in 0..100_000i64 {
            // 100,000 occurrences within one minute (< window).
            let id = ids.get(i as usize).map(String::as_str);
            agg.observe(&misroute(T0 + i * 600, id), &mut out);
        }
        assert_eq!(out.len(), 1, "one firing alert for the whole burst");
        assert_eq!(out[0].state, AlertState::Firing);
        assert_eq!(out[0].count, 1);
        assert_eq!(out[0].severity, Severity::Critical);
        assert_eq!(out[0].first_seen, "2024-05-01T07:00:00.000Z");
        assert_eq!(out[0].expected_backends, ["shop/cart-v1", "shop/cart-v2"]);
        out.clear();
        agg.flush_all(&mut out);
        assert_eq!(out.len(), 1);
        let last = &out[0];
        assert_eq!(last.state, AlertState::Firing);
        assert_eq!(last.count, 100_000);
        assert_eq!(last.last_seen, format_event_time(T0 + 99_999 * 600));
        assert_eq!(
            last.sample_request_ids,
            ["req-0", "req-1", "req-2", "req-3", "req-4"]
        );
        assert_eq!(agg.open_alerts(), 0);
    }

    #[test]
    fn refires_once_per_window_then_resolves_after_quiet_window() {
        let mut agg = aggregator(5);
        let mut out = Vec::new();
        // One occurrence per minute for 12 minutes: fires at 0, re-fires at 5 and 10.
        for m in 0..12 {
            agg.observe(&misroute(T0 + m * MINUTE, None), &mut out);
        }
        let counts: Vec<(AlertState, u64)> = out.iter().map(|a| (a.state, a.count)).collect();
        assert_eq!(
            counts,
            [
                (AlertState::Firing, 1),
                (AlertState::Firing, 6),
                (AlertState::Firing, 11)
            ]
        );
        assert_eq!(out[1].last_seen, "2024-05-01T07:05:00.000Z");
        out.clear();
        // Still within the window after the last occurrence (minute 11): nothing.
        agg.advance_to(T0 + 15 * MINUTE, &mut out);
        assert!(out.is_empty());
        // A full quiet window after minute 11: resolved with the final count.
        agg.advance_to(T0 + 16 * MINUTE, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].state, AlertState::Resolved);
        assert_eq!(out[0].count, 12);
        assert_eq!(out[0].last_seen, "2024-05-01T07:11:00.000Z");
        assert_eq!(agg.open_alerts(), 0);
        // A new occurrence later opens a new alert, same fingerprint, count 1.
        out.clear();
        agg.observe(&misroute(T0 + 30 * MINUTE, None), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].state, out[0].count), (AlertState::Firing, 1));
        let mut final_state = Vec::new();
        agg.flush_all(&mut final_state);
        assert_eq!(final_state[0].fingerprint, out[0].fingerprint);
    }

    #[test]
    fn quiet_stream_resolves_by_wall_clock_after_the_window() {
        let start = std::time::Instant::now();
        let mut agg = aggregator(5);
        let mut clock = QuietClock::new(start);
        assert_eq!(
            clock.extrapolated(start + Duration::from_secs(600), Duration::ZERO),
            None
        );
        let mut out = Vec::new();
        agg.observe(&misroute(T0 + 10 * MINUTE, Some("r1")), &mut out);
        assert_eq!(out.len(), 1);
        out.clear();
        clock.records_seen(agg.clock(), start);
        // Pauses shorter than `min_quiet` do not move the clock.
        let min_quiet = Duration::from_secs(1);
        assert_eq!(
            clock.extrapolated(start + Duration::from_millis(900), min_quiet),
            None
        );
        // Quiet for less than the window: still firing.
        let t = clock
            .extrapolated(start + Duration::from_secs(240), min_quiet)
            .expect("quiet");
        assert_eq!(t, T0 + 14 * MINUTE);
        agg.advance_to(t, &mut out);
        assert!(out.is_empty(), "{out:?}");
        // A full window of quiet: resolved, with the count so far.
        let t = clock
            .extrapolated(start + Duration::from_secs(300), min_quiet)
            .expect("quiet");
        agg.advance_to(t, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].state, AlertState::Resolved);
        assert_eq!(out[0].count, 1);
        assert_eq!(agg.open_alerts(), 0);
    }

    #[test]
    fn other_conditions_resolve_independently_and_in_order() {
        let mut agg = aggregator(5);
        let mut out = Vec::new();
        agg.observe(&misroute(T0, None), &mut out);
        let other = AlertOccurrence {
            alert_type: AlertType::ExpectedError,
            actual_backend: None,
            ..misroute(T0 + MINUTE, None)
        };
        agg.observe(&other, &mut out);
        assert_eq!(out.len(), 2);
        out.clear();
        // The misroute keeps occurring; the expected_error does not.
        for m in 2..8 {
            agg.observe(&misroute(T0 + m * MINUTE, None), &mut out);
        }
        let resolved: Vec<AlertType> = out
            .iter()
            .filter(|a| a.state == AlertState::Resolved)
            .map(|a| a.alert_type)
            .collect();
        assert_eq!(resolved, [AlertType::ExpectedError]);
        assert_eq!(agg.open_alerts(), 1);
        // Late events do not move the clock back.
        out.clear();
        agg.observe(&misroute(T0, None), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn serialized_alert_has_every_required_key_of_the_schema() {
        let schema: serde_json::Value =
            serde_json::from_str(ALERT_V1_SCHEMA).expect("alert schema is JSON");
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        let required: Vec<&str> = schema["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let properties = schema["properties"].as_object().expect("properties");
        let mut out = Vec::new();
        let mut agg = aggregator(5);
        agg.observe(&misroute(T0, Some("abc")), &mut out);
        let value = serde_json::to_value(&out[0]).expect("serialize");
        let object = value.as_object().expect("object");
        for key in &required {
            assert!(object.contains_key(*key), "missing required key {key}");
        }
        for key in object.keys() {
            assert!(properties.contains_key(key), "key {key} not in schema");
            assert!(required.contains(&key.as_str()), "key {key} not required");
        }
        assert_eq!(object["type"], "misrouted");
        assert_eq!(object["state"], "firing");
        assert_eq!(object["schema_version"], 1);
        let type_enum: Vec<&str> = properties["type"]["enum"]
            .as_array()
            .expect("type enum")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        for t in [
            AlertType::Misrouted,
            AlertType::UnexpectedNoRoute,
            AlertType::UnexpectedRoute,
            AlertType::ServedInvalidBackend,
            AlertType::RedirectMismatch,
            AlertType::UnexpectedError,
            AlertType::ExpectedError,
            AlertType::RouteNotAccepted,
            AlertType::BackendRefUnresolved,
            AlertType::ReferencegrantRevoked,
            AlertType::StatusDrift,
            AlertType::ShadowedRule,
        ] {
            assert!(
                type_enum.contains(&t.as_str()),
                "{} not in schema",
                t.as_str()
            );
            assert_eq!(serde_json::to_value(t).expect("serialize type"), t.as_str());
        }
    }

    #[test]
    fn file_sink_writes_json_lines_that_round_trip() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join(ALERTS_FILE_NAME);
        let mut agg = aggregator(5);
        let mut out = Vec::new();
        agg.observe(&misroute(T0, Some("r1")), &mut out);
        agg.flush_all(&mut out);
        let mut sink = AlertFileSink::open(&path).expect("open");
        for alert in &out {
            sink.send(alert).expect("send");
        }
        assert_eq!(sink.written(), 2);
        sink.close().expect("close");
        let text = std::fs::read_to_string(&path).expect("read");
        let back: Vec<Alert> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("alert line"))
            .collect();
        assert_eq!(back, out);
    }
}
