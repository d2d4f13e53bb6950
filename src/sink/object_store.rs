//! Where finished Parquet files are published: a local directory (`file://` or a
//! plain path) or object storage through the `object_store` crate (`s3://`).
//!
//! Files are always written locally first (by the [`ParquetSink`](super::ParquetSink)
//! in a staging directory) and only *published* here when complete, so the hot
//! path stays synchronous and object storage is touched once per file:
//!
//! - local: the staged file (already fsynced) is renamed into place, then the
//!   target directory is fsynced. Rename is atomic, so the file appears under its
//!   final name complete or not at all. The staging directory should be on the
//!   same file system (the default is); otherwise the file is copied to a hidden
//!   temporary name next to the target, fsynced and renamed.
//! - object storage: one `PUT` of the whole file (atomic: an object is visible
//!   complete under its key or not at all), then the staged copy is removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::SinkError;

/// A published-file destination.
pub enum OutputStore {
    /// A local directory.
    Local {
        /// Root of the dataset.
        root: PathBuf,
    },
    /// An object store under a key prefix.
    Remote {
        /// The store.
        store: Arc<dyn ObjectStore>,
        /// Key prefix of the dataset (no trailing slash).
        prefix: String,
        /// The URL, for messages.
        url: String,
        /// Runs the store's futures (object_store is async; the rest is not).
        runtime: tokio::runtime::Runtime,
    },
}

impl std::fmt::Debug for OutputStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputStore::Local { root } => f.debug_struct("Local").field("root", root).finish(),
            OutputStore::Remote { url, .. } => f.debug_struct("Remote").field("url", url).finish(),
        }
    }
}

fn store_error(operation: &'static str, path: &str, e: impl std::fmt::Display) -> SinkError {
    SinkError::Store {
        operation,
        path: path.to_string(),
        message: e.to_string(),
    }
}

impl OutputStore {
    /// Opens `output`: `file:///dir`, a plain path, or `s3://bucket/prefix` (with
    /// the `AWS_*` environment and `options`, keys as in `AmazonS3ConfigKey`, e.g.
    /// `aws_region`, `aws_endpoint`, `aws_allow_http`).
    pub fn open(output: &str, options: &BTreeMap<String, String>) -> Result<Self, SinkError> {
        if let Some(rest) = output.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            for (key, value) in options {
                let key: AmazonS3ConfigKey = key
                    .parse()
                    .map_err(|e| SinkError::Config(format!("parquet.object_store.{key}: {e}")))?;
                builder = builder.with_config(key, value);
            }
            let store = builder
                .build()
                .map_err(|e| SinkError::Config(format!("parquet.output {output}: {e}")))?;
            return Self::remote(Arc::new(store), prefix, output);
        }
        let root = PathBuf::from(output.strip_prefix("file://").unwrap_or(output));
        std::fs::create_dir_all(&root).map_err(|e| SinkError::io("create directory", &root, e))?;
        Ok(OutputStore::Local { root })
    }

    /// An output on any object store (e.g. `object_store::memory::InMemory` in tests).
    pub fn remote(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        url: impl Into<String>,
    ) -> Result<Self, SinkError> {
        let url = url.into();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SinkError::io("start runtime", &url, e))?;
        Ok(OutputStore::Remote {
            store,
            prefix: prefix.trim_matches('/').to_string(),
            url,
            runtime,
        })
    }

    /// The default staging directory for this output (see the module docs).
    pub fn default_staging_dir(&self) -> PathBuf {
        match self {
            OutputStore::Local { root } => {
                let mut name = root
                    .file_name()
                    .map(|n| n.to_os_string())
                    .unwrap_or_default();
                name.push(".staging");
                root.with_file_name(name)
            }
            OutputStore::Remote { .. } => std::env::temp_dir().join("routeproof-staging"),
        }
    }

    fn key(prefix: &str, rel: &str) -> ObjectPath {
        if prefix.is_empty() {
            ObjectPath::from(rel)
        } else {
            ObjectPath::from(format!("{prefix}/{rel}"))
        }
    }

    /// Every published `*.parquet` file, as a path relative to the dataset root
    /// with `/` separators (e.g. `dt=2024-05-01/hour=07/name.parquet`).
    pub fn list(&self) -> Result<Vec<String>, SinkError> {
        match self {
            OutputStore::Local { root } => {
                let mut out = Vec::new();
                list_local(root, root, &mut out)?;
                Ok(out)
            }
            OutputStore::Remote {
                store,
                prefix,
                runtime,
                ..
            } => {
                let list_prefix = (!prefix.is_empty()).then(|| ObjectPath::from(prefix.as_str()));
                let metas: Vec<_> = runtime
                    .block_on(store.list(list_prefix.as_ref()).try_collect())
                    .map_err(|e| store_error("list", prefix, e))?;
                let strip = if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}/")
                };
                Ok(metas
                    .into_iter()
                    .map(|m| m.location.to_string())
                    .filter(|l| l.ends_with(".parquet"))
                    .map(|l| l.strip_prefix(&strip).unwrap_or(&l).to_string())
                    .collect())
            }
        }
    }

    /// Publishes the complete, fsynced local file `local` under `rel` atomically;
    /// the local file is gone afterwards.
    pub fn publish(&self, local: &Path, rel: &str) -> Result<(), SinkError> {
        match self {
            OutputStore::Local { root } => {
                let target = root.join(rel);
                let dir = target
                    .parent()
                    .map_or_else(|| root.clone(), Path::to_path_buf);
                if !dir.is_dir() {
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| SinkError::io("create directory", &dir, e))?;
                    let mut d = dir.parent();
                    while let Some(p) = d {
                        sync_dir(p)?;
                        if p == root.as_path() {
                            break;
                        }
                        d = p.parent();
                    }
                }
                if std::fs::rename(local, &target).is_err() {
                    // Another file system: copy to a hidden name, fsync, rename.
                    let name = target
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let temp = dir.join(format!(".routeproof-publish-{name}.tmp"));
                    std::fs::copy(local, &temp).map_err(|e| SinkError::io("copy", &temp, e))?;
                    std::fs::File::open(&temp)
                        .and_then(|f| f.sync_all())
                        .map_err(|e| SinkError::io("fsync", &temp, e))?;
                    std::fs::rename(&temp, &target)
                        .map_err(|e| SinkError::io("rename", &temp, e))?;
                    std::fs::remove_file(local).map_err(|e| SinkError::io("remove", local, e))?;
                }
                sync_dir(&dir)
            }
            OutputStore::Remote {
                store,
                prefix,
                runtime,
                ..
            } => {
                let bytes = std::fs::read(local).map_err(|e| SinkError::io("read", local, e))?;
                let key = Self::key(prefix, rel);
                runtime
                    .block_on(store.put(&key, PutPayload::from(bytes)))
                    .map_err(|e| store_error("put", key.as_ref(), e))?;
                std::fs::remove_file(local).map_err(|e| SinkError::io("remove", local, e))
            }
        }
    }

    /// Deletes the published file `rel` (missing is fine).
    pub fn delete(&self, rel: &str) -> Result<(), SinkError> {
        match self {
            OutputStore::Local { root } => {
                let path = root.join(rel);
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        if let Some(dir) = path.parent() {
                            sync_dir(dir)?;
                        }
                        Ok(())
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(SinkError::io("remove", &path, e)),
                }
            }
            OutputStore::Remote {
                store,
                prefix,
                runtime,
                ..
            } => {
                let key = Self::key(prefix, rel);
                match runtime.block_on(store.delete(&key)) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(store_error("delete", key.as_ref(), e)),
                }
            }
        }
    }
}

fn list_local(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), SinkError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(SinkError::io("list", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| SinkError::io("list", dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_dir = entry
            .file_type()
            .map_err(|e| SinkError::io("stat", &path, e))?
            .is_dir();
        if is_dir {
            list_local(root, &path, out)?;
        } else if name.ends_with(".parquet") && !name.starts_with('.') {
            if let Ok(rel) = path.strip_prefix(root) {
                let parts: Vec<_> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
    }
    Ok(())
}

/// fsyncs a directory so that entries created or renamed in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SinkError::io("fsync directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(store: &OutputStore, staging: &Path) {
        let local = staging.join("a.parquet");
        std::fs::write(&local, b"data").expect("write");
        store
            .publish(&local, "dt=2024-01-01/hour=00/t+0+1+2+1of1.parquet")
            .expect("publish");
        assert!(!local.exists(), "the staged file is moved or removed");
        assert_eq!(
            store.list().expect("list"),
            vec!["dt=2024-01-01/hour=00/t+0+1+2+1of1.parquet".to_string()]
        );
        store
            .delete("dt=2024-01-01/hour=00/t+0+1+2+1of1.parquet")
            .expect("delete");
        store
            .delete("dt=2024-01-01/hour=00/t+0+1+2+1of1.parquet")
            .expect("deleting a missing file is fine");
        assert!(store.list().expect("list").is_empty());
    }

    #[test]
    fn local_publish_list_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("out");
        let store = OutputStore::open(&format!("file://{}", root.display()), &BTreeMap::new())
            .expect("open");
        let staging = store.default_staging_dir();
        assert_eq!(staging, dir.path().join("out.staging"));
        std::fs::create_dir_all(&staging).expect("staging");
        round_trip(&store, &staging);
    }

    #[test]
    fn object_store_publish_list_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let memory = Arc::new(object_store::memory::InMemory::new());
        let store =
            OutputStore::remote(memory, "/datasets/routeproof/", "memory://").expect("store");
        round_trip(&store, dir.path());
    }
}
