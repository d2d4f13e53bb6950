//! routeproof: makes Kubernetes Gateway API routing decisions observable.
//!
//! The data path (see `ARCHITECTURE.md`): access-log bytes are decoded into
//! [`decode::AccessRecord`]s, the backend that really served each request is
//! resolved ([`resolve`]), the route-decision engine ([`gateway`]) says which
//! backend the Gateway API configuration allows, a [`verdict`] compares the
//! two, and [`sink`]s write enriched Parquet, alerts and dead letters.

pub mod config;
pub mod decode;
pub mod gateway;
pub mod kube;
pub mod manifest;
pub mod pipeline;
pub mod redact;
pub mod resolve;
pub mod service;
pub mod sink;
pub mod source;
pub mod synth;
#[cfg(test)]
mod test_manifests;
pub mod verdict;
