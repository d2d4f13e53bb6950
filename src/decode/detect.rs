//! Format and envelope names (for the configuration) and per-record auto-detection.

use std::fmt;
use std::str::FromStr;

/// An access-log format, selectable by its kebab-case name in the configuration.
///
/// [`Format::Auto`] detects the format of every record from its shape (and, for
/// NGINX Gateway Fabric, from the envelope's pod metadata). The concrete
/// variants force one format; a record that does not fit it is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Detect per record (default).
    #[default]
    Auto,
    /// Envoy `json_format` output: Envoy Gateway >= v1.4 typed JSON (sorted keys,
    /// `null` for unset values) and Envoy Gateway <= v1.3 all-strings JSON (`"-"`
    /// for unset values). Keys as in Envoy Gateway's `EnvoyJSONLogFields`.
    EnvoyJson,
    /// Envoy's built-in default text format (15 fields; also Contour's default).
    EnvoyText,
    /// Istio's default text format (`EnvoyTextLogFormat`, 22 fields).
    IstioText,
    /// Istio's JSON format (`EnvoyJSONLogFormatIstio`).
    IstioJson,
    /// Contour: its `json` access-log type (`@timestamp`, omit-empty) or, when
    /// forced, its default `envoy` type, which is Envoy's default text format.
    Contour,
    /// NGINX `combined` (and the Docker image's `main`, Kong's `kong_log_format`).
    NginxCombined,
    /// NGINX JSON written with `log_format ... escape=json`.
    NginxJson,
    /// NGINX Gateway Fabric: its default (`combined`) or the NGF JSON layout with
    /// `proxy_host` / `upstream_addr` (access-log-formats.md §6.1).
    NginxGatewayFabric,
    /// HAProxy `option httplog` default format.
    HaproxyHttplog,
    /// HAProxy Kubernetes Ingress (and HAProxy Unified Gateway) default layout:
    /// httplog with `"%HM %[var(txn.base)] %HV"` (host + path, no query).
    HaproxyIngress,
}

impl Format {
    /// Every format, in declaration order.
    pub const ALL: [Format; 11] = [
        Format::Auto,
        Format::EnvoyJson,
        Format::EnvoyText,
        Format::IstioText,
        Format::IstioJson,
        Format::Contour,
        Format::NginxCombined,
        Format::NginxJson,
        Format::NginxGatewayFabric,
        Format::HaproxyHttplog,
        Format::HaproxyIngress,
    ];

    /// The kebab-case configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::EnvoyJson => "envoy-json",
            Format::EnvoyText => "envoy-text",
            Format::IstioText => "istio-text",
            Format::IstioJson => "istio-json",
            Format::Contour => "contour",
            Format::NginxCombined => "nginx-combined",
            Format::NginxJson => "nginx-json",
            Format::NginxGatewayFabric => "nginx-gateway-fabric",
            Format::HaproxyHttplog => "haproxy-httplog",
            Format::HaproxyIngress => "haproxy-ingress",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the known format or envelope names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} name {name:?} (expected one of: {expected})")]
pub struct UnknownNameError {
    /// `format` or `envelope`.
    pub kind: &'static str,
    /// The name that was given.
    pub name: String,
    /// The accepted names, comma separated.
    pub expected: &'static str,
}

impl FromStr for Format {
    type Err = UnknownNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|format| format.as_str().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| UnknownNameError {
                kind: "format",
                name: name.to_owned(),
                expected: "auto, envoy-json, envoy-text, istio-text, istio-json, contour, \
                           nginx-combined, nginx-json, nginx-gateway-fabric, haproxy-httplog, \
                           haproxy-ingress",
            })
    }
}

/// A shipper envelope around the access-log line, selectable by kebab-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Envelope {
    /// Detect per payload (default).
    #[default]
    Auto,
    /// The bare access-log line (optionally with a CRI `<time> <stream> <F|P> `
    /// prefix, which is stripped).
    Raw,
    /// Fluent Bit (or Fluentd / docker json-file) JSON: the line in `log`, or
    /// merged into the top level (`Merge_Log On`), Kubernetes metadata in
    /// `kubernetes{pod_name, namespace_name, labels{...}}`.
    FluentBit,
    /// Vector `kubernetes_logs` JSON: the line in `message`, metadata in
    /// `kubernetes{pod_name, pod_namespace, pod_labels{...}}`.
    Vector,
    /// OpenTelemetry OTLP/JSON `LogsData` (`resourceLogs[].scopeLogs[].logRecords[]`),
    /// one or many records per payload; also the OTel Kafka exporter's `raw`
    /// encoding of a string body (a JSON string literal).
    OtlpJson,
}

impl Envelope {
    /// Every envelope, in declaration order.
    pub const ALL: [Envelope; 5] = [
        Envelope::Auto,
        Envelope::Raw,
        Envelope::FluentBit,
        Envelope::Vector,
        Envelope::OtlpJson,
    ];

    /// The kebab-case configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Envelope::Auto => "auto",
            Envelope::Raw => "raw",
            Envelope::FluentBit => "fluent-bit",
            Envelope::Vector => "vector",
            Envelope::OtlpJson => "otlp-json",
        }
    }
}

impl fmt::Display for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Envelope {
    type Err = UnknownNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Envelope::ALL
            .into_iter()
            .find(|envelope| envelope.as_str().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| UnknownNameError {
                kind: "envelope",
                name: name.to_owned(),
                expected: "auto, raw, fluent-bit, vector, otlp-json",
            })
    }
}

/// The family of decoder a text line belongs to, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineShape {
    /// Starts with `{`: a flat JSON access log (Envoy, Istio, Contour, NGINX JSON).
    Json,
    /// Starts with `[`: Envoy / Istio / Contour text.
    EnvoyText,
    /// `ip:port [dd/Mon/yyyy:HH:MM:SS.mmm] ...`: HAProxy.
    Haproxy,
    /// `addr - user [dd/Mon/yyyy:HH:MM:SS +zzzz] "...`: NGINX combined family.
    NginxCombined,
}

/// Classifies a (non-empty, trimmed) access-log line by its shape.
///
/// The checks are cheap prefix scans: `{` → JSON, `[` → Envoy text; otherwise
/// the first space-separated token is the client: `<addr> - ` (remote user
/// follows) → NGINX, `<addr>:<port> [` → HAProxy.
pub(crate) fn detect_line_shape(line: &str) -> Option<LineShape> {
    let bytes = line.as_bytes();
    match bytes.first()? {
        b'{' => return Some(LineShape::Json),
        b'[' => return Some(LineShape::EnvoyText),
        _ => {}
    }
    let space = memchr::memchr(b' ', bytes)?;
    let rest = bytes.get(space + 1..)?;
    // HAProxy: "client:port [20/Aug/2026:10:15:30.123] "
    if rest.first() == Some(&b'[') {
        let bracket_end = memchr::memchr(b']', rest)?;
        let stamp = rest.get(1..bracket_end)?;
        if stamp.contains(&b' ') {
            // NGINX-like without user fields (a custom format): not supported.
            return None;
        }
        return Some(LineShape::Haproxy);
    }
    // NGINX combined / main / Kong: "addr remote_user_or_dash ... [time] \"".
    if rest.starts_with(b"- ") || memchr::memmem::find(rest, b" [").is_some() {
        let open = memchr::memchr(b'[', rest)?;
        let close = memchr::memchr(b']', rest)?;
        if close > open && rest.get(close + 1..close + 3) == Some(b" \"") {
            return Some(LineShape::NginxCombined);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for format in Format::ALL {
            assert_eq!(format.as_str().parse::<Format>(), Ok(format));
            assert_eq!(format.to_string(), format.as_str());
        }
        assert_eq!("Envoy-JSON".parse::<Format>(), Ok(Format::EnvoyJson));
        let err = "apache".parse::<Format>().unwrap_err();
        assert!(err.to_string().contains("apache"));
        assert!(err.to_string().contains("nginx-gateway-fabric"));
    }

    #[test]
    fn envelope_names_round_trip() {
        for envelope in Envelope::ALL {
            assert_eq!(envelope.as_str().parse::<Envelope>(), Ok(envelope));
        }
        assert_eq!(" fluent-bit ".parse::<Envelope>(), Ok(Envelope::FluentBit));
        assert!("fluentd".parse::<Envelope>().is_err());
        assert_eq!(Envelope::default(), Envelope::Auto);
        assert_eq!(Format::default(), Format::Auto);
    }

    #[test]
    fn line_shapes() {
        assert_eq!(detect_line_shape("{\"a\":1}"), Some(LineShape::Json));
        assert_eq!(
            detect_line_shape("[2026-08-20T10:15:30.123Z] \"GET / HTTP/1.1\" 200"),
            Some(LineShape::EnvoyText)
        );
        assert_eq!(
            detect_line_shape(
                "203.0.113.7 - - [20/Aug/2026:10:15:30 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\""
            ),
            Some(LineShape::NginxCombined)
        );
        assert_eq!(
            detect_line_shape(
                "203.0.113.7:53422 [20/Aug/2026:10:15:30.123] fe be/s 0/0/1/10/11 200 5 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\""
            ),
            Some(LineShape::Haproxy)
        );
        assert_eq!(detect_line_shape("hello world"), None);
        assert_eq!(detect_line_shape("x"), None);
    }
}
