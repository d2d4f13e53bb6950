//! The route-decision engine: Gateway API objects in, routing decisions out.
//!
//! No I/O happens here. [`load`] parses manifest text into an
//! [`model::ObjectSet`]; [`RouteIndex::compile`] turns it into an immutable
//! index; [`RouteIndex::decide`] evaluates one [`Request`] into a [`Decision`];
//! [`report`] renders decisions for people and tools; [`audit`] computes the
//! static findings of `routeproof check`.
//!
//! The rules follow the Gateway API standard channel (v1.4+); see
//! `docs/gateway-api-semantics.md` for the restated spec with references.

pub mod audit;
mod batch;
pub mod compile;
pub mod decide;
pub mod hostname;
pub mod load;
pub mod matcher;
pub mod model;
pub(crate) mod prefetch;
pub mod report;
pub mod request;

pub use batch::DECIDE_BATCH_GROUP;
pub use compile::{CompileOptions, RouteIndex, RouteKind};
pub use decide::{Decision, Outcome};
pub use model::ObjectSet;
pub use request::{Headers, Protocol, Request, RequestSpec, Scheme};
