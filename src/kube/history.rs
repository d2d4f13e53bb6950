//! Time-versioned history of immutable index snapshots.
//!
//! Every published [`Snapshot`] holds a compiled [`RouteIndex`] and the
//! [`EndpointIndex`] built from the same object set, stamped with the time it
//! took effect (µs since the epoch), and the [`BackendServiceIds`] table of
//! the one in the other, built once when it is published so that records
//! judged against it compare Services by id as `replay` does. [`IndexHistory::at`] finds the snapshot in
//! force at a record's event time without taking a lock: the ring of snapshots
//! is an immutable `Vec` behind an [`ArcSwap`], replaced whole by the (single)
//! writer. Snapshots older than the retention are dropped, except the one still
//! in force at the retention horizon.
//!
//! The history also carries the health of its source: whether the initial
//! lists are synced (readiness), when the source last confirmed the index is
//! current (index age, staleness) and a few counters for `/metrics`.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use yoke::Yoke;

use crate::gateway::RouteIndex;
use crate::resolve::{BackendServiceIds, EndpointIndex};

/// A snapshot's Service-id table, attached to (borrowing from) the route
/// index it was built from.
type AttachedServiceIds = Yoke<BackendServiceIds<'static>, Arc<RouteIndex>>;

/// One immutable snapshot of the configuration.
#[derive(Debug)]
pub struct Snapshot {
    /// The index version (equal to `index.version`), monotonically increasing.
    pub version: u64,
    /// When the snapshot took effect, µs since the epoch (UTC).
    pub effective_us: i64,
    /// The compiled route index (shared with the Service-id table that
    /// borrows from it).
    pub index: Arc<RouteIndex>,
    /// The EndpointSlice index built from the same objects.
    pub endpoints: EndpointIndex,
    /// Whether the routing configuration (anything but EndpointSlices) changed
    /// from the previous snapshot; only such changes put records in transition.
    /// False for the first snapshot.
    pub changes_routing: bool,
    /// Service ids of `index`'s backends in `endpoints` (see
    /// [`Snapshot::service_ids`]).
    service_ids: Option<AttachedServiceIds>,
}

impl Snapshot {
    /// Service ids of [`index`](Self::index)'s backends in
    /// [`endpoints`](Self::endpoints), built once when the snapshot was
    /// published; `None` when a namespace or name contains `/` (see
    /// [`BackendServiceIds::build`]), and records compare names. This table
    /// belongs to this snapshot only: a record judged against another
    /// snapshot must use that one's ([`BackendServiceIds::is_for`] tells).
    pub fn service_ids(&self) -> Option<&BackendServiceIds<'_>> {
        self.service_ids.as_ref().map(Yoke::get)
    }
}

/// Settings of an [`IndexHistory`].
#[derive(Debug, Clone)]
pub struct HistoryOptions {
    /// How long superseded snapshots are kept (default 1 hour).
    pub retention: Duration,
    /// A record within this long *after* a change is `in_transition` when it
    /// disagrees with the configuration (default 30 s): gateways apply changes
    /// with a delay.
    pub grace: Duration,
    /// A record within this long *before* a change is also in transition
    /// (default 2 s): the gateway may apply a change before routeproof sees it.
    pub lead: Duration,
    /// Records carry `index_stale = true` once the source has not confirmed the
    /// index for this long (default 60 s).
    pub stale_after: Duration,
}

impl Default for HistoryOptions {
    fn default() -> Self {
        HistoryOptions {
            retention: Duration::from_secs(3600),
            grace: Duration::from_secs(30),
            lead: Duration::from_secs(2),
            stale_after: Duration::from_secs(60),
        }
    }
}

/// The snapshot in force at a time, and how much to trust it.
#[derive(Debug, Clone)]
pub struct At {
    /// The snapshot in force.
    pub snapshot: Arc<Snapshot>,
    /// A configuration change happened within the grace window around the time.
    pub in_transition: bool,
    /// The source has not confirmed the index for longer than `stale_after`.
    pub stale: bool,
}

/// The history loaded once (see [`IndexHistory::view`]).
#[derive(Debug, Clone)]
pub struct HistoryView {
    ring: Arc<Vec<Arc<Snapshot>>>,
    grace_us: i64,
    lead_us: i64,
    stale: bool,
}

/// What [`HistoryView::at`] found, borrowed from the view.
#[derive(Debug, Clone, Copy)]
pub struct AtRef<'v> {
    /// The snapshot in force.
    pub snapshot: &'v Arc<Snapshot>,
    /// A configuration change happened within the grace window around the time.
    pub in_transition: bool,
    /// The source had not confirmed the index for longer than `stale_after`
    /// when the view was taken.
    pub stale: bool,
}

impl HistoryView {
    /// The snapshot in force at `event_time_us`, as [`IndexHistory::at`].
    pub fn at(&self, event_time_us: i64) -> Option<AtRef<'_>> {
        let ring = &self.ring;
        let n = ring.partition_point(|s| s.effective_us <= event_time_us);
        let snapshot = ring.get(n.saturating_sub(1))?;
        // Any routing change in (t - grace, t + lead]: walk out from the
        // partition point (a few snapshots at most).
        let before = ring[..n]
            .iter()
            .rev()
            .take_while(|s| event_time_us - s.effective_us < self.grace_us)
            .any(|s| s.changes_routing);
        let after = ring[n..]
            .iter()
            .take_while(|s| s.effective_us - event_time_us <= self.lead_us)
            .any(|s| s.changes_routing);
        Some(AtRef {
            snapshot,
            in_transition: before || after,
            stale: self.stale,
        })
    }
}

/// Counters and gauges of the control path, for `/metrics`.
#[derive(Debug, Default)]
pub struct LiveStats {
    /// Snapshots published.
    pub rebuilds: AtomicU64,
    /// Duration of the last rebuild (compile + endpoint index), µs.
    pub last_rebuild_us: AtomicU64,
    /// Watch/list errors seen (the watchers retry with backoff).
    pub watch_errors: AtomicU64,
    /// Watch restarts that re-listed everything (e.g. after `410 Gone`).
    pub relists: AtomicU64,
    /// Config-audit alerts emitted.
    pub config_alerts: AtomicU64,
    /// Objects that could not be read into the model and were skipped.
    pub bad_objects: AtomicU64,
}

/// The history of snapshots, shared between the source (writer) and the
/// record path (readers).
#[derive(Debug)]
pub struct IndexHistory {
    ring: ArcSwap<Vec<Arc<Snapshot>>>,
    options: HistoryOptions,
    versions: AtomicU64,
    writer: Mutex<()>,
    ready: AtomicBool,
    last_contact_us: AtomicI64,
    stats: LiveStats,
}

/// Now, µs since the epoch.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl IndexHistory {
    /// An empty, not-ready history.
    pub fn new(options: HistoryOptions) -> Self {
        IndexHistory {
            ring: ArcSwap::from_pointee(Vec::new()),
            options,
            versions: AtomicU64::new(0),
            writer: Mutex::new(()),
            ready: AtomicBool::new(false),
            last_contact_us: AtomicI64::new(0),
            stats: LiveStats::default(),
        }
    }

    /// The settings.
    pub fn options(&self) -> &HistoryOptions {
        &self.options
    }

    /// Reserves the next index version (stamp it into `CompileOptions`).
    pub fn next_version(&self) -> u64 {
        self.versions.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Publishes a snapshot that took effect at `effective_us` (`index.version`
    /// should come from [`IndexHistory::next_version`]). Effective times
    /// are kept monotonic (a time before the latest snapshot is moved up to it).
    /// Snapshots superseded before `effective_us - retention` are dropped.
    /// The snapshot's Service-id table is built here, before the writer lock
    /// is taken (about as long as compiling the endpoint index).
    pub fn publish(
        &self,
        index: RouteIndex,
        endpoints: EndpointIndex,
        effective_us: i64,
        changes_routing: bool,
    ) -> Arc<Snapshot> {
        let index = Arc::new(index);
        let service_ids =
            AttachedServiceIds::try_attach_to_cart(Arc::clone(&index), |routes: &RouteIndex| {
                BackendServiceIds::build(routes, &endpoints).ok_or(())
            })
            .ok();
        let _guard = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.ring.load_full();
        let effective_us = current
            .last()
            .map_or(effective_us, |last| effective_us.max(last.effective_us));
        let snapshot = Arc::new(Snapshot {
            version: index.version,
            effective_us,
            index,
            endpoints,
            changes_routing: changes_routing && !current.is_empty(),
            service_ids,
        });
        let horizon = effective_us.saturating_sub(micros(self.options.retention));
        // Keep the last snapshot in force at the horizon and everything after.
        let first_kept = current
            .iter()
            .rposition(|s| s.effective_us <= horizon)
            .unwrap_or(0);
        let mut next: Vec<Arc<Snapshot>> = current[first_kept.min(current.len())..].to_vec();
        next.push(Arc::clone(&snapshot));
        self.ring.store(Arc::new(next));
        snapshot
    }

    /// The newest snapshot, if any was published.
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.ring.load().last().cloned()
    }

    /// Number of snapshots held.
    pub fn len(&self) -> usize {
        self.ring.load().len()
    }

    /// True before the first snapshot is published.
    pub fn is_empty(&self) -> bool {
        self.ring.load().is_empty()
    }

    /// The snapshot in force at `event_time_us` (µs since the epoch): the latest
    /// one that took effect at or before it, or the oldest held when the time is
    /// before all of them. `None` until the first snapshot is published.
    ///
    /// `in_transition` is set when a routing change
    /// ([`Snapshot::changes_routing`]) took effect within `grace` before or `lead` after the
    /// time. Lock-free; allocates nothing. To judge many records, take a
    /// [`view`](Self::view) once instead.
    pub fn at(&self, event_time_us: i64) -> Option<At> {
        let view = self.view_unchecked();
        let at = view.at(event_time_us)?;
        Some(At {
            snapshot: Arc::clone(at.snapshot),
            in_transition: at.in_transition,
            stale: at.stale,
        })
    }

    /// The history as it is now, for judging a batch of records: `None` until
    /// it is [ready](Self::is_ready). The ring is loaded and the staleness
    /// read once, so per-record lookups touch no shared reference count and
    /// read no clock; a snapshot published meanwhile is seen by the next view.
    pub fn view(&self) -> Option<HistoryView> {
        if !self.ready.load(Ordering::SeqCst) {
            return None;
        }
        let view = self.view_unchecked();
        (!view.ring.is_empty()).then_some(view)
    }

    fn view_unchecked(&self) -> HistoryView {
        HistoryView {
            ring: self.ring.load_full(),
            grace_us: micros(self.options.grace),
            lead_us: micros(self.options.lead),
            stale: self.is_stale(),
        }
    }

    /// Marks the initial lists as synced: from now on the index is ready.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Whether the initial lists are synced and a snapshot is published.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.is_empty()
    }

    /// Blocks (polling) until ready or the timeout passes; returns readiness.
    /// Callers hold records until this is true rather than judge them against
    /// an empty index.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let start = Instant::now();
        while !self.is_ready() {
            if start.elapsed() >= timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// The source confirmed that the index is current (a successful watch event,
    /// probe or manifest poll).
    pub fn touch(&self) {
        self.last_contact_us.store(now_us(), Ordering::SeqCst);
    }

    /// Seconds since the source last confirmed the index (0 before any contact).
    pub fn index_age_seconds(&self) -> f64 {
        let last = self.last_contact_us.load(Ordering::SeqCst);
        if last == 0 {
            return 0.0;
        }
        (now_us() - last).max(0) as f64 / 1e6
    }

    /// Whether the index is older than `stale_after`.
    pub fn is_stale(&self) -> bool {
        self.index_age_seconds() > self.options.stale_after.as_secs_f64()
    }

    /// Counters of the control path.
    pub fn stats(&self) -> &LiveStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::{CompileOptions, ObjectSet};

    fn publish(h: &IndexHistory, t: i64) -> Arc<Snapshot> {
        let objects = ObjectSet::default();
        let version = h.next_version();
        let index = RouteIndex::compile(
            &objects,
            CompileOptions {
                index_version: version,
                ..CompileOptions::default()
            },
        );
        h.publish(index, EndpointIndex::build(&objects), t, true)
    }

    const S: i64 = 1_000_000;

    #[test]
    fn lookup_by_time_and_transition() {
        let h = IndexHistory::new(HistoryOptions {
            grace: Duration::from_secs(10),
            lead: Duration::from_secs(1),
            ..HistoryOptions::default()
        });
        assert!(h.at(0).is_none());
        publish(&h, 100 * S);
        publish(&h, 200 * S);
        let v = |t| h.at(t).map(|a| (a.snapshot.version, a.in_transition));
        assert_eq!(v(50 * S), Some((1, false)), "before all: oldest");
        assert_eq!(v(150 * S), Some((1, false)));
        assert_eq!(v(199 * S + 500_000), Some((1, true)), "lead window");
        assert_eq!(v(200 * S), Some((2, true)));
        assert_eq!(v(209 * S), Some((2, true)));
        assert_eq!(v(210 * S), Some((2, false)));
        assert_eq!(
            v(100 * S),
            Some((1, false)),
            "the first snapshot is no change"
        );
    }

    #[test]
    fn retention_keeps_the_snapshot_in_force_at_the_horizon() {
        let h = IndexHistory::new(HistoryOptions {
            retention: Duration::from_secs(100),
            ..HistoryOptions::default()
        });
        publish(&h, 0);
        publish(&h, 50 * S);
        publish(&h, 120 * S);
        assert_eq!(h.len(), 3);
        publish(&h, 300 * S);
        // horizon 200 s: the snapshot of 120 s is in force there.
        assert_eq!(h.len(), 2);
        assert_eq!(h.at(0).map(|a| a.snapshot.version), Some(3));
        // Effective times never go backwards.
        let s = publish(&h, 10 * S);
        assert_eq!(s.effective_us, 300 * S);
        assert_eq!(s.version, 5);
    }
}
