//! The live index fed from manifest files (`kubectl get -o yaml` dumps or
//! directories of YAML), for clusters that export snapshots instead of
//! granting API access. A thread polls the files' modification times and
//! sizes; when they change, everything is re-read and a new snapshot published.
//! A read or parse error keeps the last snapshot serving (and the index ages).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::manifest::load_paths;

use super::history::now_us;
use super::publish::Publisher;
use super::{warn, LiveError};

/// A running manifest poller; stops when dropped.
#[derive(Debug)]
pub struct ManifestSource {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ManifestSource {
    /// Loads the manifests once (an error here is returned), publishes the
    /// first snapshot, marks the history ready and starts polling every
    /// `interval`.
    pub fn start(
        paths: Vec<PathBuf>,
        mut publisher: Publisher,
        interval: Duration,
    ) -> Result<ManifestSource, LiveError> {
        let objects = load_paths(&paths)?;
        let mut stamp = fingerprint(&paths);
        publisher.publish(&objects, stamp, now_us());
        publisher.history().touch();
        publisher.history().set_ready();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("routeproof-manifests".into())
            .spawn(move || {
                while !stop_flag.load(Ordering::SeqCst) {
                    std::thread::sleep(interval);
                    let now = fingerprint(&paths);
                    if now == stamp {
                        publisher.history().touch();
                        continue;
                    }
                    match load_paths(&paths) {
                        Ok(objects) => {
                            stamp = now;
                            publisher.publish(&objects, stamp, now_us());
                            publisher.history().touch();
                        }
                        Err(e) => warn(&format!("manifests not reloaded: {e}")),
                    }
                }
            })
            .map_err(|source| LiveError::Serve {
                addr: "manifest poller thread".into(),
                source,
            })?;
        Ok(ManifestSource {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for ManifestSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A digest of the names, sizes and modification times of every file under
/// `paths` (directories recursively).
fn fingerprint(paths: &[PathBuf]) -> u64 {
    let mut entries: Vec<(PathBuf, u64, Option<SystemTime>)> = Vec::new();
    for p in paths {
        collect(p, &mut entries);
    }
    entries.sort();
    let mut h = DefaultHasher::new();
    entries.hash(&mut h);
    h.finish()
}

fn collect(path: &Path, out: &mut Vec<(PathBuf, u64, Option<SystemTime>)>) {
    let Ok(meta) = std::fs::metadata(path) else {
        out.push((path.to_path_buf(), u64::MAX, None));
        return;
    };
    if meta.is_dir() {
        if let Ok(rd) = std::fs::read_dir(path) {
            for entry in rd.flatten() {
                collect(&entry.path(), out);
            }
        }
    } else {
        out.push((path.to_path_buf(), meta.len(), meta.modified().ok()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::CompileOptions;
    use crate::kube::{HistoryOptions, IndexHistory};

    const SVC: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: x}\nspec: {ports: [{port: 80}]}\n";

    #[test]
    fn reloads_changed_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("objects.yaml");
        std::fs::write(&file, SVC).expect("write");
        let history = Arc::new(IndexHistory::new(HistoryOptions::default()));
        let publisher = Publisher::new(history.clone(), CompileOptions::default(), None);
        let _source = ManifestSource::start(
            vec![dir.path().to_path_buf()],
            publisher,
            Duration::from_millis(20),
        )
        .expect("start");
        assert!(history.is_ready());
        assert_eq!(history.current().map(|s| s.version), Some(1));
        std::fs::write(
            &file,
            format!("{SVC}---\n{}", SVC.replace("name: a", "name: b")),
        )
        .expect("write");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while history.current().map(|s| s.version) == Some(1) {
            assert!(std::time::Instant::now() < deadline, "no reload");
            std::thread::sleep(Duration::from_millis(10));
        }
        let current = history.current().expect("snapshot");
        assert!(current.endpoints.service("x", "b").is_some());
        assert!(current.changes_routing);
    }
}
