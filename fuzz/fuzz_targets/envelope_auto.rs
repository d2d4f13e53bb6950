//! Fuzzes envelope and format auto-detection (every envelope, auto format).
#![no_main]

use libfuzzer_sys::fuzz_target;
use routeproof::decode::{decode_payload, DecodeOptions, Envelope, Format};

fuzz_target!(|data: &[u8]| {
    for envelope in Envelope::ALL {
        let options = DecodeOptions {
            format: Format::Auto,
            envelope,
            keep_headers: vec!["x-canary".to_owned(), "user-agent".to_owned()],
            ..DecodeOptions::default()
        };
        decode_payload(data, &options, &mut |result| {
            if let Ok(record) = result {
                assert_ne!(record.format, Format::Auto);
                assert_ne!(record.envelope, Envelope::Auto);
                let _ = record.into_owned();
            }
        });
    }
});
