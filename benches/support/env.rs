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

/// The routeproof binary to measure: `RP_BENCH_BIN` (another build, e.g. the
/// profile-guided one of `deploy/build-pgo.sh`), else the one Cargo built for
/// this bench.
pub fn routeproof_binary() -> PathBuf {
    path_var("RP_BENCH_BIN").unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_routeproof")))
}
