//! Fuzzes the envoy-family decoders with each format forced (raw envelope).
#![no_main]

use libfuzzer_sys::fuzz_target;
use routeproof::decode::{decode_payload, DecodeOptions, Envelope, Format};

fuzz_target!(|data: &[u8]| {
    for format in [Format::EnvoyJson, Format::EnvoyText, Format::IstioText, Format::IstioJson, Format::Contour] {
        let options = DecodeOptions {
            format,
            envelope: Envelope::Raw,
            keep_headers: vec!["x-canary".to_owned()],
            ..DecodeOptions::default()
        };
        decode_payload(data, &options, &mut |result| {
            if let Ok(record) = result {
                assert!(record.status.is_none_or(|status| (100..=599).contains(&status)));
                let _ = record.upstream_addrs.last();
            }
        });
    }
});
