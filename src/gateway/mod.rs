//! The route-decision engine: Gateway API objects in, routing decisions out. No I/O.
