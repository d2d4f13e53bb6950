//! The live route index: Kubernetes API watches (or polled manifest files)
//! compiled into a time-versioned history of immutable snapshots, with config
//! audits and health for `/readyz`, `/healthz` and `/metrics`.
//!
//! The parts are kept apart like kube-runtime's own watcher/reflector/store:
//!
//! - [`store`]: the watched kinds and how reflector stores become an
//!   [`crate::gateway::ObjectSet`];
//! - [`watcher`]: discovery, one watcher + reflector per kind, debounce and
//!   rebuild, the connectivity probe ([`KubeSource`]);
//! - [`manifests`]: the same index fed from manifest files re-read when they
//!   change ([`ManifestSource`]);
//! - [`publish`]: compile → publish → audit ([`Publisher`]);
//! - [`history`]: the snapshots by effective time ([`IndexHistory`]);
//! - [`audit`]: config-drift alerts from consecutive snapshots ([`ConfigAuditor`]);
//! - [`serve`]: the tiny health/metrics HTTP server.
//!
//! # Using it from a pipeline (e.g. `run`)
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::{mpsc, Arc};
//! use routeproof::gateway::CompileOptions;
//! use routeproof::kube::{HistoryOptions, IndexHistory, KubeOptions, KubeSource, Publisher};
//!
//! let history = Arc::new(IndexHistory::new(HistoryOptions::default()));
//! let (alerts_tx, alerts_rx) = mpsc::channel(); // config-audit alerts
//! let publisher = Publisher::new(history.clone(), CompileOptions::default(), Some(alerts_tx));
//! let client = kube::Client::try_default().await?;
//! let _source = KubeSource::start(client, publisher, KubeOptions::default()).await?;
//! // or: ManifestSource::start(paths, publisher, poll_interval)
//! let _server = routeproof::kube::serve::HealthServer::start("0.0.0.0:9090", history.clone())?;
//!
//! // Record threads: hold input until ready, then judge each record against
//! // the snapshot in force at its event time.
//! history.wait_ready(std::time::Duration::from_secs(60));
//! // processor.process_payload_live(payload, origin, &mut outputs, &history)?
//! //   -> Live::Held when not ready (keep the payload, retry later)
//! for alert in alerts_rx.try_iter() { /* send to the alert sink */ let _ = alert; }
//! # Ok(()) }
//! ```
//!
//! [`IndexHistory::at`] gives the snapshot in force at an event time, whether
//! the record is in the grace window of a routing change (`in_transition`:
//! alert-worthy verdicts become `in_transition`) and whether the index is stale
//! (`index_stale` column). It is lock-free; the writer replaces the ring whole.

pub mod audit;
pub mod history;
pub mod manifests;
pub mod publish;
pub mod serve;
pub mod store;
pub mod watcher;

pub use audit::{parent_statuses, static_config_alerts, ConfigAuditor, ParentStatus};
pub use history::{At, AtRef, HistoryOptions, HistoryView, IndexHistory, LiveStats, Snapshot};
pub use manifests::ManifestSource;
pub use publish::Publisher;
pub use watcher::{KubeOptions, KubeSource};

/// Errors of the live sources.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// Discovery of a group/version failed for another reason than "not served".
    #[error("discovery of {0} failed: {1}")]
    Discovery(String, #[source] Box<::kube::Error>),
    /// The API server URL does not parse.
    #[error("invalid API server URL {0}: {1}")]
    InvalidUrl(String, #[source] http::uri::InvalidUri),
    /// The kube client could not be built.
    #[error("kube client: {0}")]
    Client(#[source] Box<::kube::Error>),
    /// The manifests could not be loaded.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// The health server could not bind or run.
    #[error("health server on {addr}: {source}")]
    Serve {
        /// Address.
        addr: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Selects rustls' process-wide crypto provider (ring, as kube is built with).
///
/// Two providers are compiled in (ring for kube, aws-lc-rs pulled by
/// object_store's AWS support), so rustls cannot pick one by itself; call this
/// before building any kube client. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client for the API server at `url` without authentication (plain HTTP
/// works): for tests and for `kubectl proxy`.
pub fn client_for_url(url: &str) -> Result<::kube::Client, LiveError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| LiveError::InvalidUrl(url.to_string(), e))?;
    install_crypto_provider();
    ::kube::Client::try_from(::kube::Config::new(uri)).map_err(|e| LiveError::Client(Box::new(e)))
}

/// A client from the environment: the in-cluster service account, else
/// KUBECONFIG / `~/.kube/config` (as `kubectl` finds it).
pub async fn default_client() -> Result<::kube::Client, LiveError> {
    install_crypto_provider();
    ::kube::Client::try_default()
        .await
        .map_err(|e| LiveError::Client(Box::new(e)))
}

/// Writes a warning to stderr (silenced by `ROUTEPROOF_QUIET`).
pub(crate) fn warn(message: &str) {
    if std::env::var_os("ROUTEPROOF_QUIET").is_none() {
        eprintln!("routeproof: {message}");
    }
}
