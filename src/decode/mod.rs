//! Access-log decoding: shipper envelopes and gateway access-log formats.
#![warn(missing_docs)]
//!
//! One payload (a Kafka message value or a line from a file) goes through two
//! layers:
//!
//! 1. the **envelope** ([`Envelope`]): a raw line (optionally CRI-prefixed),
//!    Fluent Bit JSON, Vector JSON, or OTLP/JSON (which can carry many records);
//! 2. the **format** ([`Format`]): Envoy Gateway / Istio / Contour JSON, Envoy
//!    and Istio text, NGINX combined / JSON / NGINX Gateway Fabric, HAProxy
//!    httplog / ingress.
//!
//! Both are auto-detected per payload unless forced in [`DecodeOptions`]. Every
//! record becomes an [`AccessRecord`] that borrows from the payload (or from
//! the envelope's unescaped inner line) wherever it can, or a [`DecodeError`]
//! with a stable reason code. Nothing panics on any input.
//!
//! ```
//! use routeproof::decode::{decode_payload, DecodeOptions, Format};
//!
//! let line = br#"[2026-08-20T10:15:30.123Z] "GET /products?id=42 HTTP/1.1" 200 - 0 5123 12 11 "203.0.113.7" "curl/8.5.0" "9b2f6c1e" "shop.example.com" "10.244.1.17:8080""#;
//! let mut statuses = Vec::new();
//! decode_payload(line, &DecodeOptions::default(), &mut |result| {
//!     let record = result.expect("valid line");
//!     assert_eq!(record.format, Format::EnvoyText);
//!     statuses.push(record.status);
//! });
//! assert_eq!(statuses, [Some(200)]);
//! ```

mod detect;
mod envelope;
mod envoy;
mod error;
mod flat_index;
mod flat_keys;
mod flat_scan;
mod haproxy;
mod json_log;
mod json_text;
mod nginx;
mod record;
mod scan;
mod timestamp;

pub use detect::{Envelope, Format, UnknownNameError};
pub use error::DecodeError;
pub use record::{AccessRecord, Protocol, Text, UpstreamAddrs};

use std::borrow::Cow;
use std::ops::Range;

use detect::{detect_line_shape, LineShape};
use envelope::{
    for_each_otlp_record, sniff_envelope, strip_cri_prefix, unwrap_shipper, Inner, OtlpItem,
    PodMeta, ShipperOutcome,
};

/// The default maximum payload length: 1 MiB.
pub const DEFAULT_MAX_LINE_LEN: usize = 1024 * 1024;

/// How to decode payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The access-log format; [`Format::Auto`] detects it per record.
    pub format: Format,
    /// The shipper envelope; [`Envelope::Auto`] detects it per payload.
    pub envelope: Envelope,
    /// Request headers to keep in [`AccessRecord::headers`] (matched ASCII
    /// case-insensitively, `-` = `_`; JSON keys may carry an `http_` /
    /// `request_` prefix). `user-agent`, `x-forwarded-for`, `x-request-id`,
    /// `referer` and `host` are taken from the fields every format logs.
    pub keep_headers: Vec<String>,
    /// Payloads longer than this many bytes are rejected with `too_long`.
    pub max_line_len: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            format: Format::Auto,
            envelope: Envelope::Auto,
            keep_headers: Vec::new(),
            max_line_len: DEFAULT_MAX_LINE_LEN,
        }
    }
}

/// Decodes one payload and calls `out` once per record it holds: once for a
/// raw line or a Fluent Bit / Vector envelope, once per log record for OTLP
/// (possibly zero times for an OTLP payload without records), and once with
/// the error when the payload as a whole is bad.
///
/// Records borrow from `payload`, or from an unescaped copy of an envelope's
/// inner line that lives only for the duration of the call, so `out` receives
/// records with a short lifetime; use [`AccessRecord::into_owned`] to keep
/// one. On the common paths (raw lines, unescaped envelope fields) no heap
/// allocation happens per record. [`decode_payload_in_place`] does the same
/// without moving each record into the callback.
pub fn decode_payload<F>(payload: &[u8], options: &DecodeOptions, out: &mut F)
where
    F: FnMut(Result<AccessRecord<'_>, DecodeError>),
{
    decode_payload_in_place(payload, options, &mut |result| {
        out(result.map(std::mem::take));
    });
}

/// [`decode_payload`], handing each record to `out` where it was built (a
/// record is about 600 bytes; on the per-record path of `replay` moving it
/// through the decoder's layers cost several `memcpy`s per line). The record
/// is the decoder's: `out` may read it, or take it with `std::mem::take`.
pub fn decode_payload_in_place<F>(payload: &[u8], options: &DecodeOptions, out: &mut F)
where
    F: FnMut(Result<&mut AccessRecord<'_>, DecodeError>),
{
    if payload.len() > options.max_line_len {
        out(Err(DecodeError::TooLong {
            len: payload.len(),
            max: options.max_line_len,
        }));
        return;
    }
    // Set when the pass below found the payload all ASCII (a shipper
    // envelope line, say): it then needs no second validation.
    let mut ascii_text = None;
    if options.envelope == Envelope::Auto {
        // The usual line: an ASCII flat JSON object, validated as UTF-8 by
        // the pass that indexes its quotes.
        let mut fields = json_log::FlatFields::default();
        if let Some(result) =
            decode_plain_ascii_json(payload, options, &mut fields, &mut ascii_text)
        {
            out(result.map(|()| &mut fields.record));
            return;
        }
    }
    // SIMD validation first (about a tenth of the standard validator's
    // instructions on an 870-byte line); the standard one only runs on
    // invalid input, to report where it stops being valid.
    let validated = match ascii_text {
        Some(text) => Ok(text),
        None => match simdutf8::basic::from_utf8(payload) {
            Ok(text) => Ok(text),
            Err(_) => std::str::from_utf8(payload),
        },
    };
    let text = match validated {
        Ok(text) => text,
        Err(error) => {
            out(Err(DecodeError::InvalidUtf8 {
                field: "payload",
                valid_up_to: error.valid_up_to(),
            }));
            return;
        }
    };
    let text = text.trim();
    if text.is_empty() {
        out(Err(DecodeError::EmptyLine));
        return;
    }
    let envelope = match options.envelope {
        // A `"kubernetes"` key marks a shipper envelope: the flat scan would
        // give up on it (or see the word), so it is not tried.
        Envelope::Auto if looks_like_kubernetes_envelope(text) => {
            envelope::sniff_kubernetes_envelope(text)
        }
        Envelope::Auto => {
            let mut fields = json_log::FlatFields::default();
            if let Some(result) = decode_plain_flat_json(text, options, &mut fields) {
                out(result.map(|()| &mut fields.record));
                return;
            }
            sniff_envelope(text)
        }
        forced => forced,
    };
    decode_trimmed(text, envelope, options, &mut |result| match result {
        Ok(mut record) => out(Ok(&mut record)),
        Err(error) => out(Err(error)),
    });
}

/// [`decode_payload`] after the length, UTF-8 and emptiness checks: decodes
/// what the `envelope` (sniffed, or the forced one) holds.
fn decode_trimmed<F>(text: &str, envelope: Envelope, options: &DecodeOptions, out: &mut F)
where
    F: FnMut(Result<AccessRecord<'_>, DecodeError>),
{
    match envelope {
        Envelope::Auto | Envelope::Raw => out(decode_raw(text, options)),
        Envelope::FluentBit | Envelope::Vector => {
            let forced = if options.envelope == Envelope::Auto {
                Envelope::Auto
            } else {
                envelope
            };
            match unwrap_shipper(text, forced) {
                Ok(ShipperOutcome::NotAnEnvelope) => out(decode_raw(text, options)),
                Ok(ShipperOutcome::Unwrapped(Inner::Line(line), meta)) => {
                    decode_inner_line(&line, options, &meta, out);
                }
                Ok(ShipperOutcome::Unwrapped(Inner::Merged(object, read_span), meta)) => {
                    decode_merged_object(object, read_span, options, &meta, out);
                }
                Err(error) => out(Err(error)),
            }
        }
        Envelope::OtlpJson => {
            let result =
                for_each_otlp_record(text, &options.keep_headers, &mut |item| match item {
                    OtlpItem::Line(line, meta) => out(decode_line(line, options, &meta)),
                    OtlpItem::Fields(fields, meta) => {
                        let forced = options.format;
                        match fields.inferred_format() {
                            None => out(Err(DecodeError::UnknownFormat {
                                hint: "OTLP structured record without any known access-log key",
                            })),
                            Some(inferred) => {
                                let mut record = fields.finish(if forced == Format::Auto {
                                    inferred
                                } else {
                                    forced
                                });
                                meta.apply_to(&mut record);
                                attach_known_headers(&mut record, &options.keep_headers);
                                out(Ok(record));
                            }
                        }
                    }
                    OtlpItem::Error(error) => out(Err(error)),
                });
            if let Err(error) = result {
                out(Err(error));
            }
        }
    }
}

/// Decodes every record of a payload into owned records (a convenience for
/// tests, tools and cold paths; allocates).
pub fn decode_to_vec(
    payload: &[u8],
    options: &DecodeOptions,
) -> Vec<Result<AccessRecord<'static>, DecodeError>> {
    let mut records = Vec::new();
    decode_payload(payload, options, &mut |result| {
        records.push(result.map(AccessRecord::into_owned));
    });
    records
}

/// Differential check of the flat-JSON decoder, for the `flat_json` fuzz
/// target: decodes `line` with the fast scanner (and its serde fallback) and
/// with the serde path alone, for every JSON format label, and returns whether
/// the records, or the errors, are identical. Not part of the stable API.
#[doc(hidden)]
pub fn flat_json_paths_agree(line: &str, keep_headers: &[String]) -> bool {
    [Format::Auto, Format::EnvoyJson, Format::NginxJson]
        .into_iter()
        .all(|forced| {
            json_log::decode_flat_json(line, forced, keep_headers)
                == json_log::decode_flat_json_reference(line, forced, keep_headers)
        })
}

/// Differential check of the shipper-envelope reader, for the
/// `envelope_auto` fuzz target: the one-pass reader of a Fluent Bit / Vector
/// envelope object reads `payload` as serde_json does (or leaves it to
/// serde), and an inner line decoded through the ASCII walk, or an object
/// through the `Merge_Log On` reader, gives what the general line decoder
/// gives, for every format. Not part of the stable API.
#[doc(hidden)]
pub fn envelope_paths_agree(payload: &str) -> bool {
    if !envelope::shipper_readers_agree(payload) {
        return false;
    }
    let line = payload.trim();
    if line.is_empty() {
        return true;
    }
    let meta = PodMeta::bare(Envelope::FluentBit);
    Format::ALL.into_iter().all(|format| {
        let options = DecodeOptions {
            format,
            ..DecodeOptions::default()
        };
        let reference = decode_line(line, &options, &meta).map(AccessRecord::into_owned);
        let mut fast = Vec::new();
        decode_inner_line(line, &options, &meta, &mut |result| {
            fast.push(result.map(AccessRecord::into_owned));
        });
        let mut merged = Vec::new();
        if line.starts_with('{') {
            let read_span = envelope::kubernetes_span(line);
            decode_merged_object(line, read_span, &options, &meta, &mut |result| {
                merged.push(result.map(AccessRecord::into_owned));
            });
        } else {
            merged.push(reference.clone());
        }
        fast == [reference.clone()] && merged == [reference]
    })
}

/// The common case in one pass: a trimmed payload that is a flat JSON access
/// log line itself (no envelope), with a JSON format configured or `auto`.
///
/// Returns `None`, having done nothing observable (`fields` is then in an
/// unspecified state), unless the flat scanner accepts the line and no string
/// in it is an envelope word; then the record is built in `fields.record`
/// (or the error returned) exactly as the general path gives it
/// (`sniff_envelope` → raw → no CRI prefix on a `{` →
/// [`json_log::decode_flat_json`] → bare raw metadata), without sniffing the
/// line for envelope keys first.
fn decode_plain_flat_json<'a>(
    text: &'a str,
    options: &DecodeOptions,
    fields: &mut json_log::FlatFields<'a>,
) -> Option<Result<(), DecodeError>> {
    if !text.starts_with('{') {
        return None;
    }
    let forced = plain_json_format(options.format)?;
    let keep_headers = &options.keep_headers;
    let scan = flat_scan::scan_flat_object(text, keep_headers, fields)?;
    finish_plain_flat_json(scan, forced, keep_headers, fields)
}

/// [`decode_plain_flat_json`] of a payload not yet validated as UTF-8,
/// through the compact walk alone ([`flat_scan::scan_ascii_object`]: an
/// ASCII object, validated by the pass that indexes its quotes; starting
/// with `{` and ending with `}`, it is its own trimmed text). `None`, having
/// done nothing observable, whenever [`decode_plain_flat_json`] would return
/// `None` or the payload is not such an object; otherwise the same result.
/// `ascii_text` is as [`flat_scan::scan_ascii_object`] sets it.
fn decode_plain_ascii_json<'a>(
    payload: &'a [u8],
    options: &DecodeOptions,
    fields: &mut json_log::FlatFields<'a>,
    ascii_text: &mut Option<&'a str>,
) -> Option<Result<(), DecodeError>> {
    let forced = plain_json_format(options.format)?;
    let keep_headers = &options.keep_headers;
    let scan = flat_scan::scan_ascii_object(payload, keep_headers, fields, ascii_text)?;
    finish_plain_flat_json(scan, forced, keep_headers, fields)
}

/// The configured format when it is a JSON one (or `auto`): the formats
/// [`decode_plain_flat_json`] decodes.
#[inline]
fn plain_json_format(format: Format) -> Option<Format> {
    match format {
        format @ (Format::Auto
        | Format::EnvoyJson
        | Format::IstioJson
        | Format::Contour
        | Format::NginxJson
        | Format::NginxGatewayFabric) => Some(format),
        Format::EnvoyText
        | Format::IstioText
        | Format::NginxCombined
        | Format::HaproxyHttplog
        | Format::HaproxyIngress => None,
    }
}

/// The end of [`decode_plain_flat_json`] after a successful scan: `None`
/// when a string was an envelope word, else the finished record.
#[inline]
fn finish_plain_flat_json(
    scan: flat_scan::FlatScan,
    forced: Format,
    keep_headers: &[String],
    fields: &mut json_log::FlatFields<'_>,
) -> Option<Result<(), DecodeError>> {
    if scan.envelope_word_seen {
        return None;
    }
    Some(json_log::finish_flat_in_place(fields, forced).map(|()| {
        PodMeta::apply_bare(Envelope::Raw, &mut fields.record);
        attach_known_headers(&mut fields.record, keep_headers);
    }))
}

/// True when a trimmed payload is an object holding a `"kubernetes"` string:
/// [`sniff_envelope`] then answers a shipper envelope (or OTLP), never raw.
#[inline]
fn looks_like_kubernetes_envelope(text: &str) -> bool {
    text.starts_with('{') && envelope::has_kubernetes_key(text)
}

/// Decodes an envelope's inner line as [`decode_line`] does, through the
/// compact ASCII walk when the line is such an object and a JSON format (or
/// `auto`) is configured; the inner line is not sniffed for envelope words.
fn decode_inner_line<F>(line: &str, options: &DecodeOptions, meta: &PodMeta<'_>, out: &mut F)
where
    F: FnMut(Result<AccessRecord<'_>, DecodeError>),
{
    if let Some(forced) = plain_json_format(options.format) {
        let keep_headers = &options.keep_headers;
        let mut fields = json_log::FlatFields::default();
        if flat_scan::scan_ascii_object(line.as_bytes(), keep_headers, &mut fields, &mut None)
            .is_some()
        {
            finish_enveloped_fields(&mut fields, forced, keep_headers, meta, out);
            return;
        }
    }
    out(decode_line(line, options, meta));
}

/// Hands on the record of `fields` read from an envelope (finished for
/// `forced`, with the envelope's metadata and the kept headers) or the error
/// finishing it gave: what [`decode_line`] gives for the same text.
fn finish_enveloped_fields<'a, F>(
    fields: &mut json_log::FlatFields<'a>,
    forced: Format,
    keep_headers: &[String],
    meta: &PodMeta<'a>,
    out: &mut F,
) where
    F: FnMut(Result<AccessRecord<'_>, DecodeError>),
{
    match json_log::finish_flat_in_place(fields, forced) {
        Ok(()) => {
            let mut record = std::mem::take(&mut fields.record);
            meta.apply_to(&mut record);
            attach_known_headers(&mut record, keep_headers);
            out(Ok(record));
        }
        Err(error) => out(Err(error)),
    }
}

/// Decodes a `Merge_Log On` envelope object (the access-log keys at its top
/// level) as [`decode_line`] does, reading its members in one pass when a
/// JSON format (or `auto`) is configured and the reader takes the object.
/// `read_span` is passed on to [`envelope::read_merged_fields`].
fn decode_merged_object<F>(
    object: &str,
    read_span: Option<Range<usize>>,
    options: &DecodeOptions,
    meta: &PodMeta<'_>,
    out: &mut F,
) where
    F: FnMut(Result<AccessRecord<'_>, DecodeError>),
{
    if let Some(forced) = plain_json_format(options.format) {
        let keep_headers = &options.keep_headers;
        let mut fields = json_log::FlatFields::default();
        if envelope::read_merged_fields(object, keep_headers, &mut fields, read_span).is_some() {
            finish_enveloped_fields(&mut fields, forced, keep_headers, meta, out);
            return;
        }
    }
    out(decode_line(object, options, meta));
}

/// A raw line: strips an optional CRI prefix, then decodes.
fn decode_raw<'a>(text: &'a str, options: &DecodeOptions) -> Result<AccessRecord<'a>, DecodeError> {
    let (line, cri_time) = strip_cri_prefix(text);
    let meta = PodMeta {
        time_us: cri_time,
        ..PodMeta::bare(Envelope::Raw)
    };
    decode_line(line, options, &meta)
}

/// Decodes one access-log line with the configured (or detected) format and
/// applies the envelope metadata.
fn decode_line<'a>(
    line: &'a str,
    options: &DecodeOptions,
    meta: &PodMeta<'a>,
) -> Result<AccessRecord<'a>, DecodeError> {
    let line = line.trim();
    if line.is_empty() {
        return Err(DecodeError::EmptyLine);
    }
    let keep_headers = &options.keep_headers;
    let starts_json = line.starts_with('{');
    let not_json = || DecodeError::UnknownFormat {
        hint: "the configured format is JSON but the line is not a JSON object",
    };
    let mut record = match options.format {
        Format::Auto => match detect_line_shape(line) {
            Some(LineShape::Json) => json_log::decode_flat_json(line, Format::Auto, keep_headers)?,
            Some(LineShape::EnvoyText) => envoy::decode_envoy_text(line, Format::Auto)?,
            Some(LineShape::NginxCombined) => {
                let label = if meta.is_nginx_gateway_fabric() {
                    Format::NginxGatewayFabric
                } else {
                    Format::NginxCombined
                };
                nginx::decode_nginx_combined(line, label)?
            }
            Some(LineShape::Haproxy) => haproxy::decode_haproxy(line, Format::Auto)?,
            None => {
                return Err(DecodeError::UnknownFormat {
                    hint: "not JSON, Envoy/Istio text, NGINX combined or HAProxy httplog",
                })
            }
        },
        format @ (Format::EnvoyJson | Format::IstioJson) => {
            if !starts_json {
                return Err(not_json());
            }
            envoy::decode_envoy_json(line, format, keep_headers)?
        }
        Format::NginxJson => {
            if !starts_json {
                return Err(not_json());
            }
            nginx::decode_nginx_json(line, Format::NginxJson, keep_headers)?
        }
        Format::Contour if starts_json => {
            envoy::decode_envoy_json(line, Format::Contour, keep_headers)?
        }
        Format::NginxGatewayFabric if starts_json => {
            nginx::decode_nginx_json(line, Format::NginxGatewayFabric, keep_headers)?
        }
        format @ (Format::EnvoyText | Format::IstioText | Format::Contour) => {
            envoy::decode_envoy_text(line, format)?
        }
        format @ (Format::NginxCombined | Format::NginxGatewayFabric) => {
            nginx::decode_nginx_combined(line, format)?
        }
        format @ (Format::HaproxyHttplog | Format::HaproxyIngress) => {
            haproxy::decode_haproxy(line, format)?
        }
    };
    meta.apply_to(&mut record);
    attach_known_headers(&mut record, keep_headers);
    Ok(record)
}

/// Adds the configured headers that every format logs as named fields
/// (`user-agent`, `x-forwarded-for`, `x-request-id`, `referer`, `host`).
#[inline]
fn attach_known_headers<'a>(record: &mut AccessRecord<'a>, keep_headers: &[String]) {
    if keep_headers.is_empty() {
        return;
    }
    attach_wanted_headers(record, keep_headers);
}

/// [`attach_known_headers`] when some header is wanted.
fn attach_wanted_headers<'a>(record: &mut AccessRecord<'a>, keep_headers: &[String]) {
    for wanted in keep_headers {
        let (name, value): (&'static str, Option<&Text<'a>>) = if wanted
            .eq_ignore_ascii_case("user-agent")
        {
            ("user-agent", record.user_agent.as_ref())
        } else if wanted.eq_ignore_ascii_case("x-forwarded-for") {
            ("x-forwarded-for", record.x_forwarded_for.as_ref())
        } else if wanted.eq_ignore_ascii_case("x-request-id") {
            ("x-request-id", record.request_id.as_ref())
        } else if wanted.eq_ignore_ascii_case("referer") {
            ("referer", record.referer.as_ref())
        } else if wanted.eq_ignore_ascii_case("host") || wanted.eq_ignore_ascii_case(":authority") {
            ("host", record.authority.as_ref())
        } else {
            continue;
        };
        if let Some(value) = value.cloned() {
            if record.header(name).is_none() {
                record.headers.push((Cow::Borrowed(name), value));
            }
        }
    }
}

#[cfg(test)]
mod tests;
