//! Bench settings read from the environment. Shared by the benches through
//! `#[path]`.

use std::path::PathBuf;

/// The path in environment variable `name`, when it is set and not empty
/// (an empty value, as `VAR= cargo bench` gives, means "not set").
pub fn path_var(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}
