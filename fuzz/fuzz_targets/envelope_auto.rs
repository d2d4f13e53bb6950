//! Fuzzes envelope and format auto-detection (every envelope, auto format),
//! and checks the one-pass envelope reader and inner-line walk against the
//! serde and general paths.
#![no_main]

use libfuzzer_sys::fuzz_target;
use routeproof::decode::{decode_payload, envelope_paths_agree, DecodeOptions, Envelope, Format};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(
            envelope_paths_agree(text),
            "envelope paths disagree on {text:?}"
        );
    }
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
