//! Reading manifest files and directories into an [`ObjectSet`].
//!
//! `--manifests PATH` may name a file or a directory; directories are walked
//! recursively (sorted, so the order is deterministic) for `.yaml`, `.yml` and
//! `.json` files. Parsing is done by [`crate::gateway::load`].

use std::path::{Path, PathBuf};

use crate::gateway::load::{load_text, LoadError};
use crate::gateway::ObjectSet;

/// Why manifests could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A document is malformed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A path holds no manifest file at all.
    #[error("{0}: no .yaml, .yml or .json files found")]
    Empty(PathBuf),
}

/// Loads every manifest under `paths` into one object set.
pub fn load_paths<P: AsRef<Path>>(paths: &[P]) -> Result<ObjectSet, ManifestError> {
    let mut set = ObjectSet::default();
    for path in paths {
        let path = path.as_ref();
        let mut files = Vec::new();
        collect_files(path, &mut files, true)?;
        if files.is_empty() {
            return Err(ManifestError::Empty(path.to_path_buf()));
        }
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| ManifestError::Io {
                path: file.clone(),
                source,
            })?;
            load_text(&mut set, &file.display().to_string(), &text)?;
        }
    }
    Ok(set)
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>, explicit: bool) -> Result<(), ManifestError> {
    let io = |source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        entries.sort();
        for entry in entries {
            let hidden = entry
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !hidden {
                collect_files(&entry, out, false)?;
            }
        }
    } else if explicit
        || matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        )
    {
        out.push(path.to_path_buf());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_directories_recursively_and_names_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            sub.join("svc.yaml"),
            "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: n}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        std::fs::write(
            dir.path().join("ns.json"),
            r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n"}}"#,
        )
        .unwrap();
        let set = load_paths(&[dir.path()]).unwrap();
        assert_eq!(set.services.len(), 1);
        assert_eq!(set.namespaces.len(), 1);

        std::fs::write(sub.join("bad.yml"), "kind: [").unwrap();
        let err = load_paths(&[dir.path()]).unwrap_err().to_string();
        assert!(err.contains("bad.yml: document 1"), "{err}");

        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            load_paths(&[empty.path()]),
            Err(ManifestError::Empty(_))
        ));
        assert!(matches!(
            load_paths(&[empty.path().join("missing")]),
            Err(ManifestError::Io { .. })
        ));
    }
}
