//! Shipper envelopes: the raw line (optionally CRI-prefixed), Fluent Bit JSON
//! (`log` + `kubernetes`, with `Merge_Log` on or off), Vector JSON (`message` +
//! `kubernetes.pod_*`), and OpenTelemetry OTLP/JSON (`resourceLogs[]`, one or
//! many records per payload, body `stringValue` or `kvlistValue`).
//!
//! The envelope layer turns one payload into zero or more inner payloads, each
//! with its pod metadata ([`PodMeta`]). An inner line that was a JSON string is
//! unescaped, so it is a `Cow` that may own its text; records then borrow from
//! it, which is why the public entry point hands records to a callback.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::detect::Envelope;
use super::error::DecodeError;
use super::flat_keys::FlatKey;
use super::json_log::{key_names_header, FlatFields, JsonStr, Scalar};
use super::json_text::Reader;
use super::record::{AccessRecord, Text};
use super::timestamp::{from_epoch_nanos, from_epoch_seconds, parse_rfc3339};

/// Pod and gateway identity (and a fallback event time) taken from an envelope.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PodMeta<'a> {
    /// Which envelope this came from.
    pub(crate) envelope: Envelope,
    /// Pod name.
    pub(crate) pod_name: Option<Text<'a>>,
    /// Pod namespace.
    pub(crate) pod_namespace: Option<Text<'a>>,
    /// Container name.
    pub(crate) container_name: Option<Text<'a>>,
    /// Gateway identity from pod labels.
    pub(crate) labels: GatewayLabels<'a>,
    /// Envelope time (collection time), microseconds since the epoch.
    pub(crate) time_us: Option<i64>,
}

impl<'a> PodMeta<'a> {
    /// A bare envelope (no metadata).
    pub(crate) fn bare(envelope: Envelope) -> Self {
        PodMeta {
            envelope,
            ..PodMeta::default()
        }
    }

    /// True when the pod looks like an NGINX Gateway Fabric data plane
    /// (container `nginx` with a `gateway.networking.k8s.io/gateway-name` label).
    pub(crate) fn is_nginx_gateway_fabric(&self) -> bool {
        self.container_name.as_deref() == Some("nginx") && self.labels.gateway_api_name.is_some()
    }

    /// What `PodMeta::bare(envelope).apply_to(record)` does, without building
    /// and dropping a `PodMeta` (the plain-line path runs it per record): a
    /// bare one has no pod, container, time or labels.
    #[inline]
    pub(crate) fn apply_bare(envelope: Envelope, record: &mut AccessRecord<'a>) {
        record.envelope = envelope;
        record.pod_name = None;
        record.pod_namespace = None;
        record.container_name = None;
    }

    /// Copies the metadata into a record (cheap clones of borrowed text).
    pub(crate) fn apply_to(&self, record: &mut AccessRecord<'a>) {
        record.envelope = self.envelope;
        record.pod_name = self.pod_name.clone();
        record.pod_namespace = self.pod_namespace.clone();
        record.container_name = self.container_name.clone();
        if record.time_us.is_none() {
            record.time_us = self.time_us;
        }
        let labels = &self.labels;
        if let Some(name) = &labels.envoy_gateway_name {
            record.gateway_name = Some(name.clone());
            record.gateway_namespace = labels
                .envoy_gateway_namespace
                .clone()
                .or_else(|| self.pod_namespace.clone());
        } else if let Some(name) = labels
            .gateway_api_name
            .as_ref()
            .or(labels.contour_gateway_name.as_ref())
            .or(labels.istio_gateway_name.as_ref())
        {
            // Istio, Contour and NGF run the proxy in the Gateway's namespace.
            record.gateway_name = Some(name.clone());
            record.gateway_namespace = self.pod_namespace.clone();
        }
    }
}

/// The pod labels that identify a Gateway; every other label is skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct GatewayLabels<'a> {
    /// `gateway.envoyproxy.io/owning-gateway-name` (Envoy Gateway).
    pub(crate) envoy_gateway_name: Option<Text<'a>>,
    /// `gateway.envoyproxy.io/owning-gateway-namespace` (Envoy Gateway).
    pub(crate) envoy_gateway_namespace: Option<Text<'a>>,
    /// `gateway.networking.k8s.io/gateway-name` (Istio, Contour, NGF).
    pub(crate) gateway_api_name: Option<Text<'a>>,
    /// `projectcontour.io/owning-gateway-name` (Contour).
    pub(crate) contour_gateway_name: Option<Text<'a>>,
    /// `istio.io/gateway-name` (Istio; not in access-log-formats.md, set by
    /// Istio's gateway deployment controller alongside the Gateway API label).
    pub(crate) istio_gateway_name: Option<Text<'a>>,
}

impl<'a> GatewayLabels<'a> {
    /// Re-borrows for a shorter lifetime (covariance made explicit).
    fn shorten<'b>(self) -> GatewayLabels<'b>
    where
        'a: 'b,
    {
        self
    }

    /// Records one label if it is an identity label.
    fn set(&mut self, key: &str, value: Text<'a>) {
        let slot = match key {
            "gateway.envoyproxy.io/owning-gateway-name" => &mut self.envoy_gateway_name,
            "gateway.envoyproxy.io/owning-gateway-namespace" => &mut self.envoy_gateway_namespace,
            "gateway.networking.k8s.io/gateway-name" => &mut self.gateway_api_name,
            "projectcontour.io/owning-gateway-name" => &mut self.contour_gateway_name,
            "istio.io/gateway-name" => &mut self.istio_gateway_name,
            _ => return,
        };
        *slot = Some(value);
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for GatewayLabels<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LabelsVisitor;
        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = GatewayLabels<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a map of pod labels")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut labels = GatewayLabels::default();
                while let Some(JsonStr(key)) = map.next_key::<JsonStr<'de>>()? {
                    if let Scalar::Str(value) = map.next_value::<Scalar<'de>>()? {
                        labels.set(&key, value);
                    }
                }
                Ok(labels)
            }
        }
        deserializer
            .deserialize_map(LabelsVisitor)
            .map(GatewayLabels::shorten)
    }
}

/// The `kubernetes` object of Fluent Bit (`pod_name`, `namespace_name`,
/// `labels`) and Vector (`pod_name`, `pod_namespace`, `pod_labels`).
#[derive(Debug, Default, PartialEq, Deserialize)]
struct KubernetesObject<'a> {
    #[serde(borrow, default)]
    pod_name: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    namespace_name: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    pod_namespace: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    container_name: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    labels: Option<GatewayLabels<'a>>,
    #[serde(borrow, default)]
    pod_labels: Option<GatewayLabels<'a>>,
}

/// The members of a Fluent Bit / Vector envelope this module needs.
#[derive(Debug, Default, PartialEq)]
struct ShipperObject<'a> {
    log: Option<Cow<'a, str>>,
    message: Option<Cow<'a, str>>,
    kubernetes: Option<KubernetesObject<'a>>,
    time_us: Option<i64>,
    vector_markers: bool,
}

impl<'a> ShipperObject<'a> {
    /// Takes the value of one of the scalar members both readers (serde's
    /// and [`read_shipper_object`]) handle alike: `log`, `message`, `time`,
    /// `timestamp`, `@timestamp`. A value of another type is ignored.
    #[inline(always)]
    fn take_scalar(&mut self, key: &str, value: Scalar<'a>) {
        match (key, value) {
            ("log", Scalar::Str(text)) => self.log = Some(text),
            ("message", Scalar::Str(text)) => self.message = Some(text),
            // Fluent Bit / docker `time`, Vector `timestamp`: RFC 3339.
            // Envelope times are a fallback only; bad ones are ignored.
            ("time" | "timestamp", value) => {
                if let Scalar::Str(text) = value {
                    if self.time_us.is_none() {
                        self.time_us = parse_rfc3339("time", &text).ok();
                    }
                }
                self.vector_markers |= key == "timestamp";
            }
            // Fluent Bit's kafka output `timestamp_key` (double by default).
            ("@timestamp", Scalar::Float(seconds)) => {
                self.time_us = from_epoch_seconds("@timestamp", seconds)
                    .ok()
                    .or(self.time_us);
            }
            _ => {}
        }
    }
}

impl<'de> Deserialize<'de> for ShipperObject<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShipperVisitor;
        impl<'de> Visitor<'de> for ShipperVisitor {
            type Value = ShipperObject<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut shipper = ShipperObject::default();
                while let Some(JsonStr(key)) = map.next_key::<JsonStr<'de>>()? {
                    match key.as_ref() {
                        "kubernetes" => shipper.kubernetes = Some(map.next_value()?),
                        key @ ("log" | "message" | "time" | "timestamp" | "@timestamp") => {
                            shipper.take_scalar(key, map.next_value::<Scalar<'de>>()?);
                        }
                        "source_type" => {
                            shipper.vector_markers = true;
                            map.next_value::<IgnoredAny>()?;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(shipper)
            }
        }
        deserializer.deserialize_map(ShipperVisitor)
    }
}

/// Reads a Fluent Bit / Vector envelope object as the serde path
/// (`ShipperObject`'s `Deserialize`) does, in one validating pass with
/// [`Reader`]: the `log` / `message` string is unescaped once into a string of
/// the right size, unknown members are skipped without being built.
///
/// `None` whenever the serde path must decide: anything that is not an object,
/// escaped keys, a `kubernetes` member that is not an object or has a repeated
/// or non-string known field, and whatever [`Reader`] refuses. When it answers,
/// the serde path gives the same object.
fn read_shipper_object(payload: &str) -> Option<ShipperObject<'_>> {
    read_shipper_object_with_span(payload).map(|(shipper, _)| shipper)
}

/// [`read_shipper_object`], also giving the byte range of the last
/// `kubernetes` member's value (read and validated here), which
/// [`read_merged_fields`] then steps over instead of reading it again.
fn read_shipper_object_with_span(
    payload: &str,
) -> Option<(ShipperObject<'_>, Option<Range<usize>>)> {
    let mut reader = Reader::new(payload);
    let mut kubernetes_span = None;
    reader.eat(b'{')?;
    let mut shipper = ShipperObject::default();
    let mut more = reader.first_member()?;
    while more {
        let key = reader.key()?;
        match key {
            "kubernetes" => {
                let start = reader.position()?;
                shipper.kubernetes = Some(read_kubernetes_object(&mut reader)?);
                kubernetes_span = Some(start..reader.offset());
            }
            "log" | "message" | "time" | "timestamp" | "@timestamp" => {
                shipper.take_scalar(key, reader.scalar(1)?);
            }
            "source_type" => {
                shipper.vector_markers = true;
                reader.skip_value(1)?;
            }
            _ => reader.skip_value(1)?,
        }
        more = reader.next_member()?;
    }
    reader.at_end().then_some((shipper, kubernetes_span))
}

/// Fluent Bit `Merge_Log On`: feeds the members of an envelope object to
/// `fields` as the flat-JSON serde path does (known keys and wanted headers
/// read as [`Scalar`]s in order, everything else skipped), so that the
/// object decodes without a second serde pass. `None` (with `fields` in an
/// unspecified state) whenever that path must decide: what [`Reader`]
/// refuses, escaped keys, and field errors (the serde path reports them).
///
/// `read_span` is a byte range of `object` holding a member value that
/// [`read_shipper_object`] already read through (the `kubernetes` object): a
/// skipped member whose value starts there is stepped over, not read again.
pub(crate) fn read_merged_fields<'a>(
    object: &'a str,
    keep_headers: &[String],
    fields: &mut FlatFields<'a>,
    read_span: Option<Range<usize>>,
) -> Option<()> {
    let mut reader = Reader::new(object);
    reader.eat(b'{')?;
    let mut more = reader.first_member()?;
    while more {
        let key = reader.key()?;
        match FlatKey::of(key) {
            Some(known) => fields.apply_known(known, reader.scalar(1)?).ok()?,
            None if keep_headers
                .iter()
                .any(|wanted| key_names_header(key, wanted)) =>
            {
                let value = reader.scalar(1)?;
                fields.apply_unknown(Cow::Borrowed(key), value, keep_headers);
            }
            None => match &read_span {
                Some(span) if reader.position()? == span.start => {
                    reader.step_over_read_value(span.end);
                }
                _ => reader.skip_value(1)?,
            },
        }
        more = reader.next_member()?;
    }
    reader.at_end().then_some(())
}

/// Whether the one-pass reader and the serde path agree on `payload`: the
/// reader answers nothing, or serde reads the same object (for the fuzz
/// target and the tests).
pub(crate) fn shipper_readers_agree(payload: &str) -> bool {
    match read_shipper_object(payload) {
        None => true,
        Some(fast) => {
            serde_json::from_str::<ShipperObject<'_>>(payload).is_ok_and(|serde| serde == fast)
        }
    }
}

/// The `kubernetes` value's byte range that [`unwrap_shipper`] hands on with
/// a `Merge_Log On` object, when the one-pass reader takes `payload` (for the
/// fuzz target and the tests).
pub(crate) fn kubernetes_span(payload: &str) -> Option<Range<usize>> {
    read_shipper_object_with_span(payload).and_then(|(_, span)| span)
}

/// [`read_shipper_object`] of the `kubernetes` member's value (depth 1).
fn read_kubernetes_object<'a>(reader: &mut Reader<'a>) -> Option<KubernetesObject<'a>> {
    /// A known field, at most once (serde's derive refuses a repeated
    /// field): `null`, or a value starting with `open` that `read` reads.
    fn nullable_field<'a, T>(
        reader: &mut Reader<'a>,
        slot: &mut Option<T>,
        seen: &mut bool,
        open: u8,
        read: impl FnOnce(&mut Reader<'a>) -> Option<T>,
    ) -> Option<()> {
        if std::mem::replace(seen, true) {
            return None;
        }
        *slot = match reader.peek()? {
            b'n' => match reader.scalar(2)? {
                Scalar::Null => None,
                _ => return None,
            },
            first if first == open => Some(read(reader)?),
            _ => return None,
        };
        Some(())
    }
    /// A string field: `null` or a string.
    fn text_field<'a>(
        reader: &mut Reader<'a>,
        slot: &mut Option<JsonStr<'a>>,
        seen: &mut bool,
    ) -> Option<()> {
        nullable_field(reader, slot, seen, b'"', |r| r.string().map(JsonStr))
    }
    /// A labels field: `null` or an object.
    fn labels_field<'a>(
        reader: &mut Reader<'a>,
        slot: &mut Option<GatewayLabels<'a>>,
        seen: &mut bool,
    ) -> Option<()> {
        nullable_field(reader, slot, seen, b'{', read_labels)
    }

    reader.eat(b'{')?;
    let mut kubernetes = KubernetesObject::default();
    let mut seen = [false; 6];
    let mut more = reader.first_member()?;
    while more {
        let k = &mut kubernetes;
        match reader.key()? {
            "pod_name" => text_field(reader, &mut k.pod_name, &mut seen[0])?,
            "namespace_name" => text_field(reader, &mut k.namespace_name, &mut seen[1])?,
            "pod_namespace" => text_field(reader, &mut k.pod_namespace, &mut seen[2])?,
            "container_name" => text_field(reader, &mut k.container_name, &mut seen[3])?,
            "labels" => labels_field(reader, &mut k.labels, &mut seen[4])?,
            "pod_labels" => labels_field(reader, &mut k.pod_labels, &mut seen[5])?,
            _ => reader.skip_value(2)?,
        }
        more = reader.next_member()?;
    }
    Some(kubernetes)
}

/// [`read_shipper_object`] of a pod-labels object (depth 2): every value is
/// read as a [`Scalar`], as [`GatewayLabels`]' `Deserialize` does.
fn read_labels<'a>(reader: &mut Reader<'a>) -> Option<GatewayLabels<'a>> {
    reader.eat(b'{')?;
    let mut labels = GatewayLabels::default();
    let mut more = reader.first_member()?;
    while more {
        let key = reader.key()?;
        if let Scalar::Str(value) = reader.scalar(3)? {
            labels.set(key, value);
        }
        more = reader.next_member()?;
    }
    Some(labels)
}

/// One inner payload produced by the envelope layer.
#[derive(Debug)]
pub(crate) enum Inner<'p> {
    /// A text (or JSON) line to decode with the access-log decoders.
    Line(Cow<'p, str>),
    /// Fluent Bit `Merge_Log On`: the access-log keys are at the top level of
    /// the envelope object itself; with the byte range of its `kubernetes`
    /// value when the one-pass reader read it (see [`read_merged_fields`]).
    Merged(&'p str, Option<Range<usize>>),
}

/// Where an envelope's object JSON came apart, or what the auto-detection found.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // returned by value once per payload; boxing would allocate
pub(crate) enum ShipperOutcome<'p> {
    /// An envelope with one inner payload.
    Unwrapped(Inner<'p>, PodMeta<'p>),
    /// Not an envelope after all (auto mode): decode the payload as a raw line.
    NotAnEnvelope,
}

/// The words whose quoted form (`"word"`) marks a JSON payload as a shipper
/// envelope for [`sniff_envelope`]: `kubernetes`, `log` and `message` (Fluent
/// Bit, Vector) and `resourceLogs` (OTLP).
pub(crate) const ENVELOPE_WORDS: [&str; 4] = ["kubernetes", "log", "message", "resourceLogs"];

static KUBERNETES_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"kubernetes\""));
static LOG_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"log\""));
static MESSAGE_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"message\""));
static RESOURCE_LOGS_KEY: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(b"\"resourceLogs\""));

/// Auto-detects the envelope of a trimmed, non-empty UTF-8 payload by cheap
/// substring checks; the JSON shipper envelopes are confirmed while parsing.
pub(crate) fn sniff_envelope(payload: &str) -> Envelope {
    let bytes = payload.as_bytes();
    match bytes.first() {
        Some(b'{') => {
            if RESOURCE_LOGS_KEY.find(bytes).is_some() {
                Envelope::OtlpJson
            } else if KUBERNETES_KEY.find(bytes).is_some()
                || LOG_KEY.find(bytes).is_some()
                || MESSAGE_KEY.find(bytes).is_some()
            {
                // Fluent Bit or Vector; told apart while parsing.
                Envelope::FluentBit
            } else {
                Envelope::Raw
            }
        }
        // The OTel Kafka exporter's `raw` encoding of a string body.
        Some(b'"') => Envelope::OtlpJson,
        _ => Envelope::Raw,
    }
}

/// True when `payload` holds the quoted word `"kubernetes"`.
pub(crate) fn has_kubernetes_key(payload: &str) -> bool {
    KUBERNETES_KEY.find(payload.as_bytes()).is_some()
}

/// [`sniff_envelope`] of a payload that starts with `{` and holds the quoted
/// word `"kubernetes"` (so it is a shipper envelope or OTLP), without
/// looking for that word again.
pub(crate) fn sniff_kubernetes_envelope(payload: &str) -> Envelope {
    if RESOURCE_LOGS_KEY.find(payload.as_bytes()).is_some() {
        Envelope::OtlpJson
    } else {
        Envelope::FluentBit
    }
}

/// Strips a CRI log prefix (`<RFC3339Nano> <stdout|stderr> <F|P> `) and returns
/// the line and the prefix time; lines without the prefix are returned as is.
pub(crate) fn strip_cri_prefix(line: &str) -> (&str, Option<i64>) {
    let bytes = line.as_bytes();
    if !bytes.first().is_some_and(u8::is_ascii_digit) {
        return (line, None);
    }
    let Some(space) = memchr::memchr(b' ', bytes) else {
        return (line, None);
    };
    let Some(rest) = line.get(space + 1..) else {
        return (line, None);
    };
    let Some(rest) = rest
        .strip_prefix("stdout ")
        .or_else(|| rest.strip_prefix("stderr "))
    else {
        return (line, None);
    };
    let Some(inner) = rest.strip_prefix("F ").or_else(|| rest.strip_prefix("P ")) else {
        return (line, None);
    };
    let time_us = line
        .get(..space)
        .and_then(|stamp| parse_rfc3339("time", stamp).ok());
    (inner, time_us)
}

/// Parses a Fluent Bit or Vector envelope. `forced` is [`Envelope::Auto`],
/// [`Envelope::FluentBit`] or [`Envelope::Vector`].
pub(crate) fn unwrap_shipper(
    payload: &str,
    forced: Envelope,
) -> Result<ShipperOutcome<'_>, DecodeError> {
    let mut kubernetes_span = None;
    let parsed = match read_shipper_object_with_span(payload) {
        Some((shipper, span)) => {
            kubernetes_span = span;
            Ok(shipper)
        }
        None => serde_json::from_str::<ShipperObject<'_>>(payload),
    };
    let shipper = match parsed {
        Ok(shipper) => shipper,
        // In auto mode a JSON payload that is not an envelope object is decoded as
        // a raw line (the access-log decoder then reports what is wrong with it).
        Err(_) if forced == Envelope::Auto => return Ok(ShipperOutcome::NotAnEnvelope),
        Err(error) => return Err(DecodeError::from_json("envelope", &error)),
    };
    let kubernetes = shipper.kubernetes.unwrap_or_default();
    let vector_like = shipper.vector_markers
        || kubernetes.pod_namespace.is_some()
        || kubernetes.pod_labels.is_some()
        || (shipper.message.is_some() && shipper.log.is_none());
    let envelope = match forced {
        Envelope::Auto if vector_like => Envelope::Vector,
        Envelope::Auto => Envelope::FluentBit,
        other => other,
    };
    fn text(value: Option<JsonStr<'_>>) -> Option<Text<'_>> {
        value.map(|JsonStr(text)| text)
    }
    let meta = PodMeta {
        envelope,
        pod_name: text(kubernetes.pod_name),
        pod_namespace: text(kubernetes.namespace_name).or(text(kubernetes.pod_namespace)),
        container_name: text(kubernetes.container_name),
        labels: kubernetes
            .labels
            .or(kubernetes.pod_labels)
            .unwrap_or_default(),
        time_us: shipper.time_us,
    };
    let had_metadata = meta.pod_name.is_some()
        || meta.pod_namespace.is_some()
        || meta.labels != GatewayLabels::default();
    let line = match envelope {
        Envelope::Vector => shipper.message.or(shipper.log),
        _ => shipper.log.or(shipper.message),
    };
    if let Some(line) = line {
        return Ok(ShipperOutcome::Unwrapped(Inner::Line(trim_cow(line)), meta));
    }
    if had_metadata || (forced != Envelope::Auto) {
        // Merge_Log On (Keep_Log Off): the access-log keys are at the top level.
        if payload.starts_with('{') && (had_metadata || forced == Envelope::FluentBit) {
            return Ok(ShipperOutcome::Unwrapped(
                Inner::Merged(payload, kubernetes_span),
                meta,
            ));
        }
        return Err(DecodeError::MissingField {
            field: if envelope == Envelope::Vector {
                "message"
            } else {
                "log"
            },
            format: envelope.as_str(),
        });
    }
    Ok(ShipperOutcome::NotAnEnvelope)
}

/// Trims surrounding whitespace (docker's trailing `\n` inside `log`) without
/// giving up a borrow.
fn trim_cow(text: Cow<'_, str>) -> Cow<'_, str> {
    match text {
        Cow::Borrowed(value) => Cow::Borrowed(value.trim()),
        Cow::Owned(value) => {
            let trimmed = value.trim();
            if trimmed.len() == value.len() {
                Cow::Owned(value)
            } else {
                Cow::Owned(trimmed.to_owned())
            }
        }
    }
}

/// OTLP/JSON `LogsData`.
#[derive(Debug, Deserialize)]
pub(crate) struct LogsData<'a> {
    #[serde(rename = "resourceLogs", borrow, default)]
    resource_logs: Vec<ResourceLogs<'a>>,
}

#[derive(Debug, Deserialize)]
struct ResourceLogs<'a> {
    #[serde(borrow, default)]
    resource: Option<Resource<'a>>,
    #[serde(rename = "scopeLogs", borrow, default)]
    scope_logs: Vec<ScopeLogs<'a>>,
}

#[derive(Debug, Deserialize)]
struct Resource<'a> {
    #[serde(borrow, default)]
    attributes: Vec<KeyValue<'a>>,
}

#[derive(Debug, Deserialize)]
struct ScopeLogs<'a> {
    #[serde(rename = "logRecords", borrow, default)]
    log_records: Vec<LogRecord<'a>>,
}

#[derive(Debug, Deserialize)]
struct LogRecord<'a> {
    #[serde(rename = "timeUnixNano", borrow, default)]
    time_unix_nano: Option<Scalar<'a>>,
    #[serde(rename = "observedTimeUnixNano", borrow, default)]
    observed_time_unix_nano: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    body: Option<AnyValue<'a>>,
    #[serde(borrow, default)]
    attributes: Vec<KeyValue<'a>>,
}

#[derive(Debug, Deserialize)]
struct KeyValue<'a> {
    #[serde(borrow)]
    key: JsonStr<'a>,
    #[serde(borrow, default)]
    value: Option<AnyValue<'a>>,
}

/// OTLP `AnyValue` (only the variants the decoder uses; arrays and bytes are
/// skipped).
#[derive(Debug, Deserialize)]
struct AnyValue<'a> {
    #[serde(rename = "stringValue", borrow, default)]
    string_value: Option<JsonStr<'a>>,
    /// 64-bit integers are decimal strings in OTLP/JSON (numbers accepted too).
    #[serde(rename = "intValue", borrow, default)]
    int_value: Option<Scalar<'a>>,
    #[serde(rename = "doubleValue", default)]
    double_value: Option<f64>,
    #[serde(rename = "boolValue", default)]
    bool_value: Option<bool>,
    #[serde(rename = "kvlistValue", borrow, default)]
    kvlist_value: Option<KeyValueList<'a>>,
}

#[derive(Debug, Deserialize)]
struct KeyValueList<'a> {
    #[serde(borrow, default)]
    values: Vec<KeyValue<'a>>,
}

impl<'a> AnyValue<'a> {
    /// The value as a flat scalar (kvlists become [`Scalar::Nested`]).
    fn to_scalar(&self) -> Scalar<'a> {
        if let Some(JsonStr(text)) = &self.string_value {
            return Scalar::Str(text.clone());
        }
        if let Some(int) = &self.int_value {
            return match int {
                Scalar::Str(text) => text
                    .parse::<i64>()
                    .map_or_else(|_| Scalar::Str(text.clone()), Scalar::Int),
                other => other.clone(),
            };
        }
        if let Some(double) = self.double_value {
            return Scalar::Float(double);
        }
        if let Some(boolean) = self.bool_value {
            return Scalar::Bool(boolean);
        }
        if self.kvlist_value.is_some() {
            return Scalar::Nested;
        }
        Scalar::Null
    }
}

/// Reads a `...UnixNano` value (decimal string or number).
fn unix_nanos(value: Option<&Scalar<'_>>) -> Option<u64> {
    match value? {
        Scalar::Str(text) => text.parse::<u64>().ok(),
        Scalar::Int(nanos) => u64::try_from(*nanos).ok(),
        Scalar::UInt(nanos) => Some(*nanos),
        _ => None,
    }
}

/// Pod metadata from OTLP resource attributes: `k8s.pod.name`,
/// `k8s.namespace.name`, `k8s.container.name`, and pod labels as added by the
/// collector's `k8sattributes` processor (`k8s.pod.labels.<label>`).
fn otlp_resource_meta<'a>(resource: Option<&Resource<'a>>) -> PodMeta<'a> {
    let mut meta = PodMeta::bare(Envelope::OtlpJson);
    for attribute in resource
        .map(|resource| resource.attributes.as_slice())
        .unwrap_or_default()
    {
        let Some(Scalar::Str(value)) = attribute.value.as_ref().map(AnyValue::to_scalar) else {
            continue;
        };
        match attribute.key.0.as_ref() {
            "k8s.pod.name" => meta.pod_name = Some(value),
            "k8s.namespace.name" => meta.pod_namespace = Some(value),
            "k8s.container.name" => meta.container_name = Some(value),
            key => {
                if let Some(label) = key.strip_prefix("k8s.pod.labels.") {
                    meta.labels.set(label, value);
                }
            }
        }
    }
    meta
}

/// One OTLP log record's payload for the access-log decoders.
#[allow(clippy::large_enum_variant)] // handed by value to a callback; boxing would allocate
pub(crate) enum OtlpItem<'r, 'p> {
    /// A text body (`stringValue`).
    Line(&'r Cow<'p, str>, PodMeta<'p>),
    /// Structured fields (a `kvlistValue` body, or record attributes when there
    /// is no body, as Envoy's OpenTelemetry access-log sink emits them).
    Fields(FlatFields<'p>, PodMeta<'p>),
    /// A record that could not be used.
    Error(DecodeError),
}

/// Parses an OTLP/JSON payload (or a JSON string literal from the `raw`
/// encoding) and hands every log record to `each`.
pub(crate) fn for_each_otlp_record<'p>(
    payload: &'p str,
    keep_headers: &[String],
    each: &mut dyn FnMut(OtlpItem<'_, 'p>),
) -> Result<(), DecodeError> {
    if payload.starts_with('"') {
        let JsonStr(line) = serde_json::from_str::<JsonStr<'p>>(payload)
            .map_err(|error| DecodeError::from_json("envelope", &error))?;
        let line = trim_cow(line);
        each(OtlpItem::Line(&line, PodMeta::bare(Envelope::OtlpJson)));
        return Ok(());
    }
    let logs: LogsData<'p> = serde_json::from_str(payload)
        .map_err(|error| DecodeError::from_json("envelope", &error))?;
    for resource_logs in &logs.resource_logs {
        let resource_meta = otlp_resource_meta(resource_logs.resource.as_ref());
        for record in resource_logs
            .scope_logs
            .iter()
            .flat_map(|scope| scope.log_records.iter())
        {
            let mut meta = resource_meta.clone();
            let nanos = unix_nanos(record.time_unix_nano.as_ref())
                .filter(|nanos| *nanos != 0)
                .or_else(|| unix_nanos(record.observed_time_unix_nano.as_ref()));
            match nanos.map(|nanos| from_epoch_nanos("timeUnixNano", nanos)) {
                Some(Ok(time_us)) => meta.time_us = time_us,
                Some(Err(error)) => {
                    each(OtlpItem::Error(error));
                    continue;
                }
                None => {}
            }
            let body = record.body.as_ref();
            if let Some(JsonStr(line)) = body.and_then(|body| body.string_value.as_ref()) {
                each(OtlpItem::Line(line, meta));
                continue;
            }
            let entries = match body.and_then(|body| body.kvlist_value.as_ref()) {
                Some(list) => list.values.as_slice(),
                None if !record.attributes.is_empty() => record.attributes.as_slice(),
                None => {
                    each(OtlpItem::Error(DecodeError::MissingField {
                        field: "body",
                        format: Envelope::OtlpJson.as_str(),
                    }));
                    continue;
                }
            };
            let mut fields = FlatFields::default();
            let mut failed = None;
            for entry in entries {
                let value = entry
                    .value
                    .as_ref()
                    .map_or(Scalar::Null, AnyValue::to_scalar);
                if let Err(error) = fields.apply(entry.key.0.clone(), value, keep_headers) {
                    failed = Some(error);
                    break;
                }
            }
            match failed {
                Some(error) => each(OtlpItem::Error(error)),
                None => each(OtlpItem::Fields(fields, meta)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod sniff_word_tests {
    use super::*;

    #[test]
    fn apply_bare_is_applying_a_bare_meta() {
        for envelope in [Envelope::Raw, Envelope::FluentBit, Envelope::Vector] {
            let filled = AccessRecord {
                pod_name: Some("p".into()),
                pod_namespace: Some("ns".into()),
                container_name: Some("c".into()),
                gateway_name: Some("gw".into()),
                gateway_namespace: Some("infra".into()),
                time_us: Some(7),
                method: Some("GET".into()),
                ..AccessRecord::default()
            };
            for start in [filled, AccessRecord::default()] {
                let mut by_meta = start.clone();
                PodMeta::bare(envelope).apply_to(&mut by_meta);
                let mut by_bare = start;
                PodMeta::apply_bare(envelope, &mut by_bare);
                assert_eq!(by_bare, by_meta, "{envelope:?}");
            }
        }
    }

    #[test]
    fn the_kubernetes_sniff_is_the_sniff() {
        for payload in [
            r#"{"kubernetes":{}}"#,
            r#"{"log":"x","kubernetes":{"pod_name":"p"}}"#,
            r#"{"resourceLogs":[],"kubernetes":1}"#,
            r#"{"a":"\"resourceLogs","kubernetes":1}"#,
            r#"{"kubernetes":1,"message":"resourceLogs"}"#,
        ] {
            assert!(payload.starts_with('{') && has_kubernetes_key(payload));
            assert_eq!(
                sniff_kubernetes_envelope(payload),
                sniff_envelope(payload),
                "{payload}"
            );
        }
    }

    /// The flat-JSON fast path hands a line to [`sniff_envelope`] when it sees
    /// one of [`ENVELOPE_WORDS`]; the sniff's finders must look for exactly
    /// those words, or an envelope would slip through the fast path.
    #[test]
    fn the_sniff_finders_look_for_the_envelope_words() {
        let mut needles: Vec<Vec<u8>> =
            [&KUBERNETES_KEY, &LOG_KEY, &MESSAGE_KEY, &RESOURCE_LOGS_KEY]
                .iter()
                .map(|f| f.needle().to_vec())
                .collect();
        let mut words: Vec<Vec<u8>> = ENVELOPE_WORDS
            .iter()
            .map(|w| format!("\"{w}\"").into_bytes())
            .collect();
        needles.sort();
        words.sort();
        assert_eq!(needles, words);
    }
}

#[cfg(test)]
mod reader_tests {
    use super::*;
    use proptest::prelude::*;

    /// What the one-pass reader says about `payload`, checked against the
    /// serde path: when it reads an object, serde reads the same one.
    /// Returns whether the reader took the payload.
    fn check(payload: &str) -> Result<bool, TestCaseError> {
        let reference = serde_json::from_str::<ShipperObject<'_>>(payload);
        match read_shipper_object(payload) {
            Some(fast) => {
                prop_assert!(
                    reference.is_ok(),
                    "read {payload} where serde fails: {reference:?}"
                );
                prop_assert_eq!(Some(fast), reference.ok(), "{}", payload);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn fluent(log_literal: &str) -> String {
        format!(
            r#"{{"@timestamp":1787220930.5,"time":"2026-08-20T10:15:30.123Z","stream":"stdout","_p":"F","log":{log_literal},"kubernetes":{{"pod_name":"envoy-x","namespace_name":"envoy-gateway-system","pod_id":"0b7a","labels":{{"app":"envoy","gateway.envoyproxy.io/owning-gateway-name":"public","gateway.envoyproxy.io/owning-gateway-namespace":"infra"}},"annotations":{{"prometheus.io/scrape":"true","n":[1,2.5e3,{{"x":null}}]}},"host":"node-1","container_name":"envoy"}}}}"#
        )
    }

    fn vector(message_literal: &str) -> String {
        format!(
            r#"{{"file":"/var/log/pods/x/0.log","kubernetes":{{"container_image":"envoy:1","container_name":"envoy","namespace_labels":{{"kubernetes.io/metadata.name":"infra"}},"pod_annotations":{{}},"pod_ips":["10.244.0.12"],"pod_labels":{{"gateway.networking.k8s.io/gateway-name":"public"}},"pod_name":"gw-x","pod_namespace":"infra","pod_uid":"8a1b"}},"message":{message_literal},"source_type":"kubernetes_logs","stream":"stdout","timestamp":"2026-08-20T10:15:30.5Z"}}"#
        )
    }

    /// Log literals the reader must take, with the text serde gives them.
    const GOOD_LOGS: [&str; 10] = [
        r#""plain text line""#,
        r#""{\"a\":\"b\",\"n\":1}\n""#,
        r#""\" \\ \/ \b \f \n \r \t""#,
        r#""nul \u0000 here""#,
        r#""\u00e9\u20ac\uFFFF""#,
        r#""pair \ud83d\ude00 end""#,
        r#""\uD83D\uDE00""#,
        "\"raw é ü 日本 🦀 \\\"\"",
        r#""""#,
        r#""\\""#,
    ];

    /// Log literals the reader leaves to serde (which refuses all of them).
    const BAD_LOGS: [&str; 9] = [
        r#""lone \ud800 high""#,
        r#""lone \udc00 low""#,
        r#""\ud800\u0041""#,
        r#""bad \x41""#,
        r#""bad \'""#,
        r#""\u12""#,
        r#""\u12G4""#,
        "\"tab\there\"",
        r#""unterminated"#,
    ];

    #[test]
    fn envelopes_read_as_serde_reads_them() {
        for log in GOOD_LOGS {
            for payload in [fluent(log), vector(log)] {
                assert!(check(&payload).unwrap(), "not taken: {payload}");
            }
        }
        for log in BAD_LOGS {
            for payload in [fluent(log), vector(log)] {
                assert!(!check(&payload).unwrap(), "taken: {payload}");
                assert!(serde_json::from_str::<ShipperObject<'_>>(&payload).is_err());
            }
        }
    }

    #[test]
    fn odd_shapes_agree_with_serde() {
        let taken = [
            // Duplicate keys: the last string `log` wins, a non-string keeps it.
            r#"{"log":"a","log":"b"}"#,
            r#"{"log":"a","log":5,"log":null,"log":{"x":[1]},"log":[true]}"#,
            r#"{"message":"m","log":"l"}"#,
            r#"{"kubernetes":{"pod_name":"a"},"kubernetes":{"pod_name":"b"}}"#,
            // Known kubernetes fields as null.
            r#"{"log":"x","kubernetes":{"pod_name":null,"labels":null,"pod_labels":null}}"#,
            // Label values of any type; repeated labels.
            r#"{"log":"x","kubernetes":{"labels":{"istio.io/gateway-name":"a","istio.io/gateway-name":"b","n":1,"o":{},"l":[],"t":true}}}"#,
            // Times: bad, repeated, `@timestamp` integer, float, before and after.
            r#"{"time":"nope","timestamp":"2026-08-20T10:15:30Z","log":"x"}"#,
            r#"{"@timestamp":1787220930,"log":"x"}"#,
            r#"{"log":"x","time":"2026-08-20T10:15:30Z","@timestamp":1787220931.25}"#,
            r#"{"@timestamp":1787220931.25,"time":"2026-08-20T10:15:30Z","log":"x"}"#,
            r#"{"@timestamp":-1e300,"log":"x"}"#,
            // Vector markers without a message; Merge_Log On.
            r#"{"source_type":{"deep":[[[]]]},"log":"x"}"#,
            r#"{"method":"GET","response_code":200,"kubernetes":{"pod_name":"p","labels":{"gateway.networking.k8s.io/gateway-name":"g"}}}"#,
            // Whitespace everywhere JSON allows it; empty objects.
            " { \"log\" : \"x\" ,\n\t\"kubernetes\" : { \"pod_name\" : \"p\" } } ",
            "{}",
            r#"{"kubernetes":{}}"#,
            r#"{"big":18446744073709551616,"neg":-0,"e":1E-7,"log":"x"}"#,
        ];
        for payload in taken {
            assert!(check(payload).unwrap(), "not taken: {payload}");
        }
        let left = [
            // Serde refuses these.
            r#"{"log":"x"} trailing"#,
            r#"{"log":"x",}"#,
            r#"{"log" "x"}"#,
            r#"{"kubernetes":null}"#,
            r#"{"kubernetes":{"pod_name":"a","pod_name":"b"}}"#,
            r#"{"kubernetes":{"pod_name":5}}"#,
            r#"{"kubernetes":{"labels":[]}}"#,
            r#"{"@timestamp":1e999,"log":"x"}"#,
            r#"{"x":01}"#,
            r#"{"x":tru}"#,
            r#"["log"]"#,
            // Escaped keys are left to serde whatever it says.
            r#"{"l\u006fg":"x"}"#,
        ];
        for payload in left {
            assert!(!check(payload).unwrap(), "taken: {payload}");
        }
        let deep = format!(
            r#"{{"x":{}1{},"log":"y"}}"#,
            "[".repeat(150),
            "]".repeat(150)
        );
        assert!(!check(&deep).unwrap());
        let shallow = format!(r#"{{"x":{}1{},"log":"y"}}"#, "[".repeat(20), "]".repeat(20));
        assert!(check(&shallow).unwrap());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Mutated envelope lines: whatever the reader takes, serde reads the
        /// same way; and unmutated ones are always taken.
        #[test]
        fn mutated_envelopes_agree_with_serde(
            which in 0usize..4,
            log in 0usize..GOOD_LOGS.len(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec![
                "\"", "\\", "\\u", "\\ud83d", "\\ude00", "\\n", "u", "{", "}", "[", "]", ",", ":",
                " ", "\t", "\u{1}", "é", "0", "-", ".", "e", "null", "\"log\":\"z\",",
                "\"kubernetes\":{},", "\"pod_name\":\"q\",", "\"labels\":{\"a\":\"b\"},",
            ])), 0..4),
        ) {
            let mut payload = match which {
                0 => fluent(GOOD_LOGS[log]),
                1 => vector(GOOD_LOGS[log]),
                2 => r#"{"time":"2026-08-20T10:15:30Z","method":"GET","kubernetes":{"pod_name":"p","labels":{"a":"b"}}}"#.to_owned(),
                _ => fluent(&serde_json::to_string(&fluent(GOOD_LOGS[log])).unwrap()),
            };
            if edits.is_empty() {
                prop_assert!(check(&payload)?);
            }
            for (at, piece) in edits {
                let mut pos = at.index(payload.len() + 1);
                while !payload.is_char_boundary(pos) {
                    pos -= 1;
                }
                payload.insert_str(pos, piece);
            }
            check(&payload)?;
        }
    }
}
