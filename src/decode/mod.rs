//! Access-log decoding: shipper envelopes and gateway access-log formats.
