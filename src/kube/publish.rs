//! Compiling an object set into a new snapshot, publishing it to the history
//! and auditing it against the previous one. Shared by the kube watchers and
//! the manifest poller.

use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Instant;

use crate::gateway::{CompileOptions, ObjectSet, RouteIndex};
use crate::resolve::EndpointIndex;
use crate::sink::alerts::Alert;

use super::audit::ConfigAuditor;
use super::history::{IndexHistory, Snapshot};

/// Compiles, publishes and audits snapshots.
#[derive(Debug)]
pub struct Publisher {
    history: Arc<IndexHistory>,
    compile: CompileOptions,
    auditor: ConfigAuditor,
    alerts: Option<Sender<Alert>>,
    last_digest: Option<u64>,
}

impl Publisher {
    /// A publisher into `history`, compiling with `compile` (its
    /// `index_version` is replaced by the history's next version), sending
    /// config-audit alerts to `alerts` (dropped when `None` or when the
    /// receiver is gone).
    pub fn new(
        history: Arc<IndexHistory>,
        compile: CompileOptions,
        alerts: Option<Sender<Alert>>,
    ) -> Self {
        Publisher {
            history,
            compile,
            auditor: ConfigAuditor::new(),
            alerts,
            last_digest: None,
        }
    }

    /// The history published into.
    pub fn history(&self) -> &Arc<IndexHistory> {
        &self.history
    }

    /// Compiles `objects` and publishes the snapshot as in effect from
    /// `effective_us`. `routing_digest` identifies the routing objects (all
    /// but EndpointSlices): when it equals the previous one, the snapshot is
    /// not a routing change (no `in_transition`, no audit).
    pub fn publish(
        &mut self,
        objects: &ObjectSet,
        routing_digest: u64,
        effective_us: i64,
    ) -> Arc<Snapshot> {
        let started = Instant::now();
        let version = self.history.next_version();
        let index = RouteIndex::compile(
            objects,
            CompileOptions {
                index_version: version,
                ..self.compile.clone()
            },
        );
        let endpoints = EndpointIndex::build(objects);
        let changes_routing = self.last_digest != Some(routing_digest);
        self.last_digest = Some(routing_digest);
        let stats = self.history.stats();
        stats.rebuilds.fetch_add(1, Ordering::Relaxed);
        stats.last_rebuild_us.store(
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let alerts = if changes_routing {
            self.auditor.observe(&index, effective_us)
        } else {
            Vec::new()
        };
        let snapshot = self
            .history
            .publish(index, endpoints, effective_us, changes_routing);
        stats
            .config_alerts
            .fetch_add(alerts.len() as u64, Ordering::Relaxed);
        if let Some(tx) = &self.alerts {
            for alert in alerts {
                if tx.send(alert).is_err() {
                    break;
                }
            }
        }
        snapshot
    }
}
