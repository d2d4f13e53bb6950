//! The flat-JSON access-log decoder shared by Envoy Gateway, Istio, Contour and
//! NGINX (`escape=json`) JSON formats.
//!
//! All of these write one flat JSON object per request with scalar values.
//! The object is read in a single borrowed pass (serde_json with a hand-written
//! map visitor): known keys are matched by name, values are taken typed or as
//! strings (Envoy Gateway <= v1.3 writes every value as a string, with `"-"` for
//! unset), and every other key is skipped without allocation. The key
//! vocabularies of the formats barely overlap, so one visitor serves them all
//! and the format is inferred from which keys were present.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::detect::Format;
use super::error::DecodeError;
use super::flat_keys::FlatKey;
use super::flat_scan::scan_flat_object;
use super::record::{split_borrowed_target, split_target, AccessRecord, Text, UpstreamAddrs};
use super::scan::{
    check_status, non_dash, parse_count, parse_port, parse_status, port_of_address_inline,
    seconds_to_ms,
};
use super::timestamp::{from_epoch_seconds, parse_rfc3339, parse_rfc3339_inline};

/// A JSON string that borrows from the input when it has no escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonStr<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for JsonStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = JsonStr<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Borrowed(value)))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Owned(value.to_owned())))
            }
            fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Owned(value)))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// One JSON value as the flat decoders see it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    /// `null`.
    Null,
    /// A string (borrowed when unescaped).
    Str(Cow<'a, str>),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer above `i64::MAX`.
    UInt(u64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// An object or array (skipped).
    Nested,
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(value))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(value).map_or(Scalar::UInt(value), Scalar::Int))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float(value))
            }
            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(value)))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(value.to_owned())))
            }
            fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(value)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Nested)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Nested)
            }
        }
        deserializer
            .deserialize_any(ScalarVisitor)
            .map(Scalar::shorten)
    }
}

impl<'a> Scalar<'a> {
    /// Re-borrows for a shorter lifetime (covariance made explicit).
    fn shorten<'b>(self) -> Scalar<'b>
    where
        'a: 'b,
    {
        self
    }

    /// A text value; `null`, `""` and `"-"` are unset. Numbers and booleans are
    /// rendered (allocates; only seen with unusual custom formats). The
    /// borrowed-string case is inlined (it is most members of every line).
    #[inline(always)]
    pub(crate) fn into_text(self) -> Option<Text<'a>> {
        match self {
            Scalar::Str(Cow::Borrowed(value)) => non_dash(value).map(Cow::Borrowed),
            Scalar::Null => None,
            other => other.into_text_rare(),
        }
    }

    /// [`into_text`](Self::into_text) of the other variants, out of line.
    #[inline(never)]
    fn into_text_rare(self) -> Option<Text<'a>> {
        match self {
            Scalar::Str(text) => match text {
                Cow::Borrowed(value) => non_dash(value).map(Cow::Borrowed),
                Cow::Owned(value) => non_dash(&value).is_some().then_some(Cow::Owned(value)),
            },
            Scalar::Int(value) => Some(Cow::Owned(value.to_string())),
            Scalar::UInt(value) => Some(Cow::Owned(value.to_string())),
            Scalar::Float(value) => Some(Cow::Owned(value.to_string())),
            Scalar::Bool(value) => Some(Cow::Borrowed(if value { "true" } else { "false" })),
            Scalar::Null | Scalar::Nested => None,
        }
    }

    /// A non-negative integer (typed or as a string).
    #[inline(always)]
    pub(crate) fn into_count(self, field: &'static str) -> Result<Option<u64>, DecodeError> {
        match self {
            Scalar::Null => Ok(None),
            Scalar::Int(value) => u64::try_from(value)
                .map(Some)
                .map_err(|_| DecodeError::absurd(field, value)),
            Scalar::UInt(value) => Ok(Some(value)),
            Scalar::Float(value) if value < 0.0 => Err(DecodeError::absurd(field, value)),
            Scalar::Float(value) if value.fract() == 0.0 && value <= 1.0e15 => {
                Ok(Some(value as u64))
            }
            Scalar::Str(text) => parse_count(field, &text),
            other => Err(other.invalid(field)),
        }
    }

    /// A float (typed or as a string), e.g. NGINX `$request_time`. Inlined
    /// (the text case out of line), so the callers never need the value in
    /// memory.
    #[inline(always)]
    fn into_float(self, field: &'static str) -> Result<Option<f64>, DecodeError> {
        match self {
            Scalar::Null => Ok(None),
            Scalar::Int(value) => Ok(Some(value as f64)),
            Scalar::UInt(value) => Ok(Some(value as f64)),
            Scalar::Float(value) => Ok(Some(value)),
            Scalar::Str(text) => float_of_text(field, &text),
            other => Err(other.invalid(field)),
        }
    }

    /// An HTTP status (typed or as a string).
    #[inline(always)]
    pub(crate) fn into_status(self, field: &'static str) -> Result<Option<u16>, DecodeError> {
        match self {
            Scalar::Null => Ok(None),
            Scalar::Int(value) => check_status(field, value),
            Scalar::Str(text) => parse_status(field, &text),
            other => Err(other.invalid(field)),
        }
    }

    /// The `invalid_value` error for this value in `field`. Out of line and
    /// by value, so the callers' hot paths never need the value in memory.
    #[cold]
    #[inline(never)]
    fn invalid(self, field: &'static str) -> DecodeError {
        DecodeError::invalid(field, &self.describe())
    }

    /// A short description for error messages.
    fn describe(&self) -> String {
        match self {
            Scalar::Null => "null".to_owned(),
            Scalar::Str(text) => text.to_string(),
            Scalar::Int(value) => value.to_string(),
            Scalar::UInt(value) => value.to_string(),
            Scalar::Float(value) => value.to_string(),
            Scalar::Bool(value) => value.to_string(),
            Scalar::Nested => "an object or array".to_owned(),
        }
    }
}

/// [`Scalar::into_float`] of a string: `-` and empty are unset.
#[inline(never)]
fn float_of_text(field: &'static str, text: &str) -> Result<Option<f64>, DecodeError> {
    match non_dash(text) {
        None => Ok(None),
        Some(value) => value
            .parse::<f64>()
            .map(Some)
            .map_err(|_| DecodeError::invalid(field, value)),
    }
}

/// Which key vocabularies were seen (bit set), to infer the format.
mod evidence {
    /// Envoy Gateway's hyphenated keys (`:authority`, `x-envoy-origin-path`, ...).
    pub const ENVOY_GATEWAY: u8 = 1;
    /// Envoy operator keys shared by Istio and Contour JSON.
    pub const ENVOY: u8 = 2;
    /// `start_time` (Envoy Gateway, Istio).
    pub const START_TIME: u8 = 4;
    /// NGINX variables (`request_uri`, `upstream_addr`, `status`, ...).
    pub const NGINX: u8 = 8;
    /// NGINX Gateway Fabric's `proxy_host`.
    pub const PROXY_HOST: u8 = 16;
}

/// True when a JSON key names a wanted request header: ASCII case-insensitive,
/// `-` and `_` equivalent, optional `http_` / `request_` prefix (NGINX
/// `$http_x_canary`, Traefik `request_X-Canary`).
pub(crate) fn key_names_header(key: &str, wanted: &str) -> bool {
    let same = |a: &str, b: &str| {
        a.len() == b.len()
            && a.bytes().zip(b.bytes()).all(|(x, y)| {
                let norm = |c: u8| {
                    if c == b'_' {
                        b'-'
                    } else {
                        c.to_ascii_lowercase()
                    }
                };
                norm(x) == norm(y)
            })
    };
    if same(key, wanted) {
        return true;
    }
    ["http_", "request_"].iter().any(|prefix| {
        key.get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
            && key
                .get(prefix.len()..)
                .is_some_and(|tail| same(tail, wanted))
    })
}

/// Accumulates a record from flat key/value pairs (JSON object members, OTLP
/// kvlist entries, OTLP attributes).
#[derive(Debug, Default)]
pub(crate) struct FlatFields<'a> {
    /// The record being built.
    pub(crate) record: AccessRecord<'a>,
    evidence: u8,
    primary_time_us: Option<i64>,
    secondary_time_us: Option<i64>,
    http_host: Option<Text<'a>>,
    grpc_hint: bool,
    /// The first field error, if any.
    pub(crate) error: Option<DecodeError>,
}

impl<'a> FlatFields<'a> {
    /// Applies one key/value; unknown keys are kept only if they name a wanted
    /// header.
    pub(crate) fn apply(
        &mut self,
        key: Cow<'a, str>,
        value: Scalar<'a>,
        keep_headers: &[String],
    ) -> Result<(), DecodeError> {
        match FlatKey::of(&key) {
            Some(known) => self.apply_known(known, value),
            None => {
                self.apply_unknown(key, value, keep_headers);
                Ok(())
            }
        }
    }

    /// Keeps the member of an unknown key if it names a wanted header (a no-op
    /// when no header is wanted).
    pub(crate) fn apply_unknown(
        &mut self,
        key: Cow<'a, str>,
        value: Scalar<'a>,
        keep_headers: &[String],
    ) {
        if keep_headers
            .iter()
            .any(|wanted| key_names_header(&key, wanted))
        {
            if let Some(text) = value.into_text() {
                self.record.headers.push((key, text));
            }
        }
    }

    /// Applies the value of a known key.
    pub(crate) fn apply_known(
        &mut self,
        key: FlatKey,
        value: Scalar<'a>,
    ) -> Result<(), DecodeError> {
        self.apply_known_inline(key, value)
    }

    /// [`apply_known`](Self::apply_known) of a borrowed string, for the
    /// compact-line walk: the same code inlined with the value's kind known,
    /// so the compiler drops the conversions that cannot apply (the same
    /// result by construction).
    #[inline(always)]
    pub(crate) fn apply_known_str(
        &mut self,
        key: FlatKey,
        text: &'a str,
    ) -> Result<(), DecodeError> {
        self.apply_known_inline(key, Scalar::Str(Cow::Borrowed(text)))
    }

    /// [`apply_known`](Self::apply_known) of an integer (see
    /// [`apply_known_str`](Self::apply_known_str)).
    #[inline(always)]
    pub(crate) fn apply_known_int(&mut self, key: FlatKey, value: i64) -> Result<(), DecodeError> {
        self.apply_known_inline(key, Scalar::Int(value))
    }

    /// [`apply_known`](Self::apply_known) of `null` (see
    /// [`apply_known_str`](Self::apply_known_str)).
    #[inline(always)]
    pub(crate) fn apply_known_null(&mut self, key: FlatKey) -> Result<(), DecodeError> {
        self.apply_known_inline(key, Scalar::Null)
    }

    /// The body of [`apply_known`](Self::apply_known).
    #[inline(always)]
    fn apply_known_inline(&mut self, key: FlatKey, value: Scalar<'a>) -> Result<(), DecodeError> {
        use evidence::*;
        let record = &mut self.record;
        match key {
            // Envoy Gateway keys (hyphenated; EnvoyJSONLogFields).
            FlatKey::ColonAuthority => {
                self.evidence |= ENVOY_GATEWAY;
                record.authority = value.into_text();
            }
            FlatKey::XEnvoyOriginPath => {
                self.evidence |= ENVOY_GATEWAY;
                self.set_target(value);
            }
            FlatKey::UserAgentHyphen => {
                self.evidence |= ENVOY_GATEWAY;
                record.user_agent = value.into_text();
            }
            FlatKey::XForwardedForHyphen => {
                self.evidence |= ENVOY_GATEWAY;
                record.x_forwarded_for = value.into_text();
            }
            FlatKey::XRequestId => {
                self.evidence |= ENVOY_GATEWAY;
                record.request_id = value.into_text();
            }
            FlatKey::XEnvoyUpstreamServiceTime => {
                self.evidence |= ENVOY_GATEWAY;
                record.upstream_service_time_ms =
                    value.into_count("x-envoy-upstream-service-time")?;
            }
            // Envoy operators shared by Envoy Gateway, Istio and Contour.
            FlatKey::StartTime => {
                self.evidence |= START_TIME;
                if let Some(text) = value.into_text() {
                    self.primary_time_us = Some(parse_rfc3339_inline("start_time", &text)?);
                }
            }
            FlatKey::AtTimestamp => match value {
                // Contour's `%START_TIME%`.
                Scalar::Str(text) => {
                    if let Some(text) = non_dash(&text) {
                        self.primary_time_us = Some(parse_rfc3339("@timestamp", text)?);
                    }
                }
                // Fluent Bit's default `timestamp_format double` (merged envelope).
                Scalar::Float(seconds) => {
                    self.secondary_time_us = Some(from_epoch_seconds("@timestamp", seconds)?)
                }
                Scalar::Int(seconds) => {
                    self.secondary_time_us = Some(from_epoch_seconds("@timestamp", seconds as f64)?)
                }
                _ => {}
            },
            FlatKey::Authority => {
                self.evidence |= ENVOY;
                record.authority = value.into_text();
            }
            FlatKey::Path => {
                self.evidence |= ENVOY;
                self.set_target(value);
            }
            FlatKey::ResponseCode => {
                self.evidence |= ENVOY;
                record.status = value.into_status("response_code")?;
            }
            FlatKey::ResponseFlags => {
                self.evidence |= ENVOY;
                record.response_flags = value.into_text();
            }
            FlatKey::ResponseCodeDetails => {
                self.evidence |= ENVOY;
                record.response_code_details = value.into_text();
            }
            FlatKey::Duration => {
                self.evidence |= ENVOY;
                record.duration_ms = value.into_count("duration")?;
            }
            FlatKey::UpstreamServiceTime => {
                self.evidence |= ENVOY;
                record.upstream_service_time_ms = value.into_count("upstream_service_time")?;
            }
            FlatKey::UpstreamHost => {
                self.evidence |= ENVOY;
                record.upstream_addrs = value
                    .into_text()
                    .map(UpstreamAddrs::new)
                    .unwrap_or_default();
            }
            FlatKey::UpstreamCluster => {
                self.evidence |= ENVOY;
                record.upstream_cluster = value.into_text().map(strip_stat_delimiter);
            }
            FlatKey::DownstreamLocalAddress => {
                self.evidence |= ENVOY;
                if let Some(text) = value.into_text() {
                    record.listener_port =
                        port_of_address_inline("downstream_local_address", &text)?;
                }
            }
            FlatKey::DownstreamRemoteAddress => {
                self.evidence |= ENVOY;
                record.client_address = value.into_text();
            }
            FlatKey::RouteName => record.route_name = value.into_text(),
            FlatKey::BytesReceived => record.bytes_received = value.into_count("bytes_received")?,
            FlatKey::BytesSent => record.bytes_sent = value.into_count("bytes_sent")?,
            FlatKey::RequestedServerName => record.requested_server_name = value.into_text(),
            FlatKey::GrpcStatus | FlatKey::GrpcStatusNumber => {
                // Contour JSON optional fields: set only for gRPC requests.
                self.grpc_hint |= value.into_text().is_some();
            }
            // Shared by Istio/Contour and the NGINX JSON layout.
            FlatKey::Method => record.method = value.into_text(),
            FlatKey::Protocol => record.protocol_raw = value.into_text(),
            FlatKey::XForwardedForUnderscore => record.x_forwarded_for = value.into_text(),
            FlatKey::UserAgentUnderscore => record.user_agent = value.into_text(),
            FlatKey::RequestId => record.request_id = value.into_text(),
            // NGINX variables (access-log-formats.md §6.1 layout).
            FlatKey::Time => {
                // NGINX `$time_iso8601`, or the Fluent Bit / docker `time` of a
                // merged envelope: both RFC 3339.
                if let Some(text) = value.into_text() {
                    self.secondary_time_us = Some(parse_rfc3339("time", &text)?);
                }
            }
            FlatKey::RequestUri => {
                self.evidence |= NGINX;
                self.set_target(value);
            }
            FlatKey::Status => {
                self.evidence |= NGINX;
                record.status = value.into_status("status")?;
            }
            FlatKey::BodyBytesSent => {
                self.evidence |= NGINX;
                record.bytes_sent = value.into_count("body_bytes_sent")?;
            }
            FlatKey::RequestTime => {
                self.evidence |= NGINX;
                if let Some(seconds) = value.into_float("request_time")? {
                    record.duration_ms = Some(seconds_to_ms("request_time", seconds)?);
                }
            }
            FlatKey::UpstreamAddr => {
                self.evidence |= NGINX;
                record.upstream_addrs = value
                    .into_text()
                    .map(UpstreamAddrs::new)
                    .unwrap_or_default();
            }
            FlatKey::UpstreamStatus => {
                self.evidence |= NGINX;
                record.upstream_status = value.into_text();
            }
            FlatKey::ProxyHost => {
                self.evidence |= NGINX | PROXY_HOST;
                record.upstream_cluster = value.into_text();
            }
            FlatKey::RemoteAddr => {
                self.evidence |= NGINX;
                record.client_address = value.into_text();
            }
            FlatKey::Host => {
                self.evidence |= NGINX;
                record.authority = value.into_text();
            }
            FlatKey::HttpHost => {
                self.evidence |= NGINX;
                self.http_host = value.into_text();
            }
            FlatKey::ServerPort => {
                self.evidence |= NGINX;
                match value {
                    Scalar::Int(port) => {
                        // As `parse_port` judges text: 0 or out of range is absurd.
                        record.listener_port = match u16::try_from(port) {
                            Ok(0) | Err(_) => return Err(DecodeError::absurd("server_port", port)),
                            Ok(port) => Some(port),
                        };
                    }
                    other => {
                        if let Some(text) = other.into_text() {
                            record.listener_port = parse_port("server_port", &text, &text)?;
                        }
                    }
                }
            }
            FlatKey::HttpReferer | FlatKey::Referer => record.referer = value.into_text(),
        }
        Ok(())
    }

    /// Sets the path and query from a request target. A borrowed string
    /// (nearly every line) is split inline; other values out of line.
    #[inline(always)]
    fn set_target(&mut self, value: Scalar<'a>) {
        match value {
            Scalar::Str(Cow::Borrowed(text)) => {
                if let Some(target) = non_dash(text) {
                    let (path, query) = split_borrowed_target(target);
                    self.record.path = Some(Cow::Borrowed(path));
                    self.record.query = query.map(Cow::Borrowed);
                }
            }
            Scalar::Null => {}
            other => self.set_target_rare(other),
        }
    }

    /// [`set_target`](Self::set_target) of any other value.
    #[inline(never)]
    fn set_target_rare(&mut self, value: Scalar<'a>) {
        if let Some(target) = value.into_text() {
            let (path, query) = split_target(target);
            self.record.path = Some(path);
            self.record.query = query;
        }
    }

    /// The format the keys point at, if any.
    pub(crate) fn inferred_format(&self) -> Option<Format> {
        use evidence::*;
        if self.evidence & ENVOY_GATEWAY != 0 {
            Some(Format::EnvoyJson)
        } else if self.evidence & ENVOY != 0 {
            Some(if self.evidence & START_TIME != 0 {
                Format::IstioJson
            } else {
                Format::Contour
            })
        } else if self.evidence & PROXY_HOST != 0 {
            Some(Format::NginxGatewayFabric)
        } else if self.evidence & NGINX != 0 {
            Some(Format::NginxJson)
        } else {
            None
        }
    }

    /// Completes the record with the given format.
    pub(crate) fn finish(mut self, format: Format) -> AccessRecord<'a> {
        self.finish_in_place(format);
        self.record
    }

    /// [`finish`](Self::finish) without moving the record out.
    pub(crate) fn finish_in_place(&mut self, format: Format) {
        self.record.format = format;
        self.record.time_us = self.primary_time_us.or(self.secondary_time_us);
        if self.record.authority.is_none() {
            self.record.authority = self.http_host.take();
        }
        self.record.finish_protocol(self.grpc_hint);
    }
}

/// Strips the `;` Istio >= 1.23 appends through `alt_stat_name`.
fn strip_stat_delimiter(cluster: Text<'_>) -> Text<'_> {
    match cluster {
        Cow::Borrowed(name) => Cow::Borrowed(name.strip_suffix(';').unwrap_or(name)),
        Cow::Owned(mut name) => {
            if name.ends_with(';') {
                name.pop();
            }
            Cow::Owned(name)
        }
    }
}

/// Drives [`FlatFields`] over one JSON object.
struct FlatObjectSeed<'s, 'a, 'o> {
    fields: &'s mut FlatFields<'a>,
    keep_headers: &'o [String],
}

impl<'de, 's, 'o> DeserializeSeed<'de> for FlatObjectSeed<'s, 'de, 'o> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, 's, 'o> Visitor<'de> for FlatObjectSeed<'s, 'de, 'o> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(JsonStr(key)) = map.next_key::<JsonStr<'de>>()? {
            // One key lookup per member: known keys are applied, wanted
            // headers kept, everything else skipped without being built.
            match FlatKey::of(&key) {
                Some(known) => {
                    let value = map.next_value::<Scalar<'de>>()?;
                    if let Err(error) = self.fields.apply_known(known, value) {
                        self.fields.error = Some(error);
                        return Err(de::Error::custom("field error"));
                    }
                }
                None if self
                    .keep_headers
                    .iter()
                    .any(|wanted| key_names_header(&key, wanted)) =>
                {
                    let value = map.next_value::<Scalar<'de>>()?;
                    self.fields.apply_unknown(key, value, self.keep_headers);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Decodes one flat JSON access-log object. `forced` is the configured format
/// (or [`Format::Auto`]); the result is labelled with the forced format, or
/// with the inferred one.
pub(crate) fn decode_flat_json<'a>(
    line: &'a str,
    forced: Format,
    keep_headers: &[String],
) -> Result<AccessRecord<'a>, DecodeError> {
    let mut fields = FlatFields::default();
    if scan_flat_object(line, keep_headers, &mut fields).is_none() {
        // Escapes, nesting, unusual numbers or malformed input: the serde
        // path decides (and names the error).
        fields = FlatFields::default();
        decode_flat_json_serde(line, keep_headers, &mut fields)?;
    }
    finish_flat(fields, forced)
}

/// [`finish_flat`] in place: completes `fields.record`.
pub(crate) fn finish_flat_in_place(
    fields: &mut FlatFields<'_>,
    forced: Format,
) -> Result<(), DecodeError> {
    let inferred = fields.inferred_format().ok_or(DecodeError::UnknownFormat {
        hint: "JSON object without any known access-log key",
    })?;
    fields.finish_in_place(if forced == Format::Auto {
        inferred
    } else {
        forced
    });
    Ok(())
}

/// Labels the record with the forced format, or the inferred one.
pub(crate) fn finish_flat(
    fields: FlatFields<'_>,
    forced: Format,
) -> Result<AccessRecord<'_>, DecodeError> {
    let inferred = fields.inferred_format().ok_or(DecodeError::UnknownFormat {
        hint: "JSON object without any known access-log key",
    })?;
    let format = if forced == Format::Auto {
        inferred
    } else {
        forced
    };
    Ok(fields.finish(format))
}

/// Feeds one JSON object to `fields` through serde_json (the reference path:
/// handles every valid JSON line and names every error).
fn decode_flat_json_serde<'a>(
    line: &'a str,
    keep_headers: &[String],
    fields: &mut FlatFields<'a>,
) -> Result<(), DecodeError> {
    let mut deserializer = serde_json::Deserializer::from_str(line);
    let parsed = FlatObjectSeed {
        fields: &mut *fields,
        keep_headers,
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end());
    if let Some(error) = fields.error.take() {
        return Err(error);
    }
    parsed.map_err(|error| DecodeError::from_json("access log", &error))
}

/// Decodes one flat JSON object with the serde path only (the reference the
/// fast path is tested and fuzzed against).
pub(crate) fn decode_flat_json_reference<'a>(
    line: &'a str,
    forced: Format,
    keep_headers: &[String],
) -> Result<AccessRecord<'a>, DecodeError> {
    let mut fields = FlatFields::default();
    decode_flat_json_serde(line, keep_headers, &mut fields)?;
    finish_flat(fields, forced)
}
