//! Input sources: files and stdin (`file`); Kafka comes with `routeproof run`.

pub mod file;
