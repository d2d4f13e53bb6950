//! Differential fuzzing of the flat-JSON fast path: for any UTF-8 input the
//! fast scanner (with its serde fallback) and the serde path alone must give
//! identical records or identical errors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use routeproof::decode::flat_json_paths_agree;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        assert!(flat_json_paths_agree(line, &[]));
        assert!(flat_json_paths_agree(line, &["x-canary".to_owned()]));
    }
});
