//! Watching the Kubernetes API: discovery of the served versions, one
//! kube-runtime watcher + reflector per kind, the debounce loop that compiles
//! changes into snapshots, and the connectivity probe behind `index_age_seconds`.
//!
//! Watchers retry with kube-runtime's default backoff and resume from their
//! last resourceVersion; a `410 Gone` makes them re-list (kube-runtime does
//! that). While the API server is unreachable the last snapshot keeps serving
//! and the index ages; the first successful probe or watch event afterwards
//! confirms it again.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ::kube::api::{Api, DynamicObject};
use ::kube::runtime::reflector::{self, store::Writer};
use ::kube::runtime::{watcher, WatchStreamExt};
use ::kube::Client;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::history::{now_us, IndexHistory};
use super::publish::Publisher;
use super::store::{read_stores, KindStore, WatchedKind, WATCHED_KINDS};
use super::{warn, LiveError};

/// Settings of the kube source.
#[derive(Debug, Clone)]
pub struct KubeOptions {
    /// Quiet time after a change before the index is rebuilt (default 250 ms);
    /// a burst of changes gives one rebuild.
    pub debounce: Duration,
    /// How often the API server is probed (`/version`) to confirm the index is
    /// current while no events arrive (default 10 s).
    pub probe_interval: Duration,
}

impl Default for KubeOptions {
    fn default() -> Self {
        KubeOptions {
            debounce: Duration::from_millis(250),
            probe_interval: Duration::from_secs(10),
        }
    }
}

/// Finds the version each watched kind is served at. A Gateway API kind whose
/// CRD is not installed is left out with a warning; an unreachable API server
/// is an error.
pub async fn discover(client: &Client) -> Result<Vec<(WatchedKind, String)>, LiveError> {
    let mut out = Vec::new();
    let mut served: Vec<(String, Option<Vec<String>>)> = Vec::new();
    for kind in WATCHED_KINDS {
        if kind.builtin {
            out.push((*kind, kind.versions[0].to_string()));
            continue;
        }
        let mut found = None;
        for version in kind.versions {
            let group_version = format!("{}/{version}", kind.group);
            let kinds = match served.iter().find(|(gv, _)| *gv == group_version) {
                Some((_, kinds)) => kinds.clone(),
                None => {
                    let kinds = match client.list_api_group_resources(&group_version).await {
                        Ok(list) => Some(
                            list.resources
                                .into_iter()
                                .filter(|r| !r.name.contains('/'))
                                .map(|r| r.kind)
                                .collect(),
                        ),
                        Err(::kube::Error::Api(e)) if e.code == 404 => None,
                        Err(e) => return Err(LiveError::Discovery(group_version, Box::new(e))),
                    };
                    served.push((group_version, kinds.clone()));
                    kinds
                }
            };
            if kinds.is_some_and(|k: Vec<String>| k.iter().any(|k| k == kind.kind)) {
                found = Some(version.to_string());
                break;
            }
        }
        match found {
            Some(version) => out.push((*kind, version)),
            None => warn(&format!(
                "{} ({}) is not served by the cluster (CRD not installed?); not watching it",
                kind.kind, kind.group
            )),
        }
    }
    Ok(out)
}

/// The running kube source: its tasks stop when this is dropped or
/// [`KubeSource::stop`] is called.
#[derive(Debug)]
pub struct KubeSource {
    tasks: Vec<JoinHandle<()>>,
}

impl KubeSource {
    /// Discovers the served kinds, starts a watcher + reflector per kind, the
    /// debounce/rebuild loop and the probe. Returns once the watches are
    /// started; the history becomes ready when every initial list is synced.
    /// Must be called within a tokio runtime.
    pub async fn start(
        client: Client,
        publisher: Publisher,
        options: KubeOptions,
    ) -> Result<KubeSource, LiveError> {
        let kinds = discover(&client).await?;
        let history = Arc::clone(publisher.history());
        let (tx, rx) = mpsc::unbounded_channel::<Change>();
        let mut tasks = Vec::new();
        let mut stores = Vec::new();
        for (i, (kind, version)) in kinds.iter().enumerate() {
            let resource = kind.api_resource(version);
            let writer: Writer<DynamicObject> = Writer::new(resource.clone());
            stores.push(KindStore {
                kind: *kind,
                resource: resource.clone(),
                store: writer.as_reader(),
            });
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
                .default_backoff();
            let tx = tx.clone();
            let history = Arc::clone(&history);
            let name = kind.kind;
            tasks.push(tokio::spawn(async move {
                let mut stream = std::pin::pin!(stream);
                let mut failing = false;
                let mut listed = false;
                while let Some(event) = stream.next().await {
                    match event {
                        Ok(event) => {
                            history.touch();
                            if failing {
                                warn(&format!("watch of {name} recovered"));
                                failing = false;
                            }
                            let change = match event {
                                watcher::Event::Init => {
                                    if listed {
                                        history.stats().relists.fetch_add(1, Ordering::Relaxed);
                                    }
                                    None
                                }
                                watcher::Event::InitApply(_) => None,
                                watcher::Event::InitDone => {
                                    listed = true;
                                    Some(Change::Synced(i))
                                }
                                watcher::Event::Apply(_) | watcher::Event::Delete(_) => {
                                    Some(Change::Changed)
                                }
                            };
                            if let Some(change) = change {
                                if tx.send(change).is_err() {
                                    return;
                                }
                            }
                        }
                        Err(e) => {
                            history.stats().watch_errors.fetch_add(1, Ordering::Relaxed);
                            if !failing {
                                warn(&format!("watch of {name} failed (retrying): {e}"));
                                failing = true;
                            }
                        }
                    }
                }
            }));
        }
        drop(tx);
        tasks.push(tokio::spawn(rebuild_loop(
            rx,
            stores,
            publisher,
            options.debounce,
        )));
        tasks.push(tokio::spawn(probe_loop(
            client,
            history,
            options.probe_interval,
        )));
        Ok(KubeSource { tasks })
    }

    /// Stops every task.
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for KubeSource {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a watcher tells the rebuild loop.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// The initial (or a re-) list of kind `i` completed.
    Synced(usize),
    /// An object was applied or deleted.
    Changed,
}

/// Waits for every initial list, publishes the first snapshot and marks the
/// history ready; then rebuilds after each debounced burst of changes. A
/// snapshot takes effect at the time the first change of its burst was seen.
async fn rebuild_loop(
    mut rx: mpsc::UnboundedReceiver<Change>,
    stores: Vec<KindStore>,
    mut publisher: Publisher,
    debounce: Duration,
) {
    let mut synced = vec![false; stores.len()];
    let mut first_change_us: Option<i64> = None;
    while !synced.iter().all(|s| *s) {
        match rx.recv().await {
            Some(Change::Synced(i)) => {
                if let Some(s) = synced.get_mut(i) {
                    *s = true;
                }
            }
            Some(Change::Changed) => {}
            None => return,
        }
    }
    let history = Arc::clone(publisher.history());
    publish(&mut publisher, &stores, now_us());
    history.set_ready();
    loop {
        let Some(_) = rx.recv().await else { return };
        first_change_us.get_or_insert_with(now_us);
        // Debounce: wait until no change arrived for `debounce`.
        loop {
            match tokio::time::timeout(debounce, rx.recv()).await {
                Ok(Some(_)) => continue,
                Ok(None) => return,
                Err(_) => break,
            }
        }
        if let Some(t) = first_change_us.take() {
            publish(&mut publisher, &stores, t);
        }
    }
}

fn publish(publisher: &mut Publisher, stores: &[KindStore], effective_us: i64) {
    let read = read_stores(stores);
    if !read.rejected.is_empty() {
        publisher
            .history()
            .stats()
            .bad_objects
            .fetch_add(read.rejected.len() as u64, Ordering::Relaxed);
        for why in &read.rejected {
            warn(&format!("skipping object: {why}"));
        }
    }
    publisher.publish(&read.objects, read.routing_digest, effective_us);
}

/// Probes `/version`; each success confirms the index is current.
async fn probe_loop(client: Client, history: Arc<IndexHistory>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        if client.apiserver_version().await.is_ok() {
            history.touch();
        }
    }
}
